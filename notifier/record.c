/*
 * record.c: the binary records of the snapshot and the journal.
 *
 * Both files are a sequence of records, each framed and checksummed on
 * its own so that a torn or damaged tail is found at the first record
 * that does not verify:
 *
 *	u32 LEN | u8 TYPE | BODY (LEN bytes) | SUM (16 bytes)
 *
 * SUM is SipHash-128 (libsodium crypto_shorthash_siphashx24) under a fixed,
 * public key (rec_sum_key) over LEN, TYPE and BODY: a checksum against
 * torn writes and damaged disks, not against an adversary (the files are
 * the daemon's, mode 0600), and a tenth of a BLAKE2b's cost on the short
 * records that every push writes.  The journal's buffers are summed by the
 * thread that writes them (jbuf_seal), not by the daemon's loop.
 * Integers are little-endian.  Every file starts with
 * a HDR record (magic, format version, kind, generation, epoch, clean
 * flag, time); a snapshot ends with an END record giving its count.
 *
 *	HDR  "mailpush" u16 version u8 kind u64 gen u64 epoch u8 clean u64 time
 *	REG  u32 id, u8 len user, u8 device[16], u8 key_id, u64 hwm,
 *	     u8 family u16 port addr[4|16], u8 len listener, u32 created
 *	     expires last_ack seq total sent acked failures, u64
 *	     last_push_ms, u8 state, u16 len ctx, u8 n mailboxes (u8 len
 *	     name each)
 *	DEL  u32 id
 *	SEQ  u32 id seq total sent acked last_ack, u64 last_push_ms hwm,
 *	     u8 state
 *	EXP  u32 id expires, u64 hwm
 *	END  u64 count
 *
 * REG carries a registration's whole durable state, so replaying it is
 * an upsert and replaying a record twice is harmless; SEQ and EXP update
 * one that exists and are ignored otherwise.
 */
#include <sys/types.h>
#include <endian.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "journal.h"
#include "log.h"

void
jbuf_reserve(struct jbuf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 4096;
	uint8_t *p;

	if (b->len + more <= b->cap)
		return;
	while (cap < b->len + more)
		cap *= 2;
	if ((p = realloc(b->p, cap)) == NULL)
		fatal("journal buffer");
	b->p = p;
	b->cap = cap;
}

void
jbuf_free(struct jbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static void
put(struct jbuf *b, const void *p, size_t n)
{
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void
put_u8(struct jbuf *b, uint8_t v)
{
	b->p[b->len++] = v;
}

/* the low n bytes of v, least significant first: one store, not n */
static inline void
put_le(struct jbuf *b, uint64_t v, int n)
{
	uint64_t le = htole64(v);

	memcpy(b->p + b->len, &le, (size_t)n);
	b->len += (size_t)n;
}

/* Start a record: room for its largest body; returns the frame offset. */
static size_t
rec_begin(struct jbuf *b, uint8_t type, size_t body_max)
{
	size_t at;

	jbuf_reserve(b, REC_FRAME + body_max + REC_SUM);
	at = b->len;
	b->len += 4;
	put_u8(b, type);
	return at;
}

static const uint8_t rec_sum_key[crypto_shorthash_siphashx24_KEYBYTES] =
    "mailpush-record";

static void
rec_sum(const uint8_t *p, size_t len, uint8_t sum[REC_SUM])
{
	crypto_shorthash_siphashx24(sum, p, len, rec_sum_key);
}

static void
rec_end(struct jbuf *b, size_t at)
{
	uint32_t len = (uint32_t)(b->len - at - REC_FRAME);
	int i;

	for (i = 0; i < 4; i++)
		b->p[at + (size_t)i] = (uint8_t)(len >> (8 * i));
	if (!b->deferred)
		rec_sum(b->p + at, b->len - at, b->p + b->len);
	b->len += REC_SUM;
}

/*
 * The sums of a deferred buffer's records (struct jbuf), made by the
 * thread that writes it.  The frames are the buffer's own, so a length
 * that overruns it is this program's bug, not bad input.
 */
void
jbuf_seal(struct jbuf *b)
{
	size_t at = 0, n;

	if (!b->deferred)
		return;
	while (at < b->len) {
		if (b->len - at < REC_FRAME + REC_SUM)
			fatalx("journal buffer: torn record at %zu", at);
		n = REC_FRAME + ((size_t)b->p[at] | (size_t)b->p[at + 1] << 8 |
		    (size_t)b->p[at + 2] << 16 | (size_t)b->p[at + 3] << 24);
		if (b->len - at - REC_SUM < n)
			fatalx("journal buffer: record at %zu overruns it", at);
		rec_sum(b->p + at, n, b->p + at + n);
		at += n + REC_SUM;
	}
	b->deferred = 0;
}

void
record_hdr(struct jbuf *b, const struct rec_hdr *h)
{
	size_t at = rec_begin(b, REC_HDR, 64);

	put(b, REC_MAGIC, 8);
	put_le(b, h->version, 2);
	put_u8(b, h->kind);
	put_le(b, h->gen, 8);
	put_le(b, h->epoch, 8);
	put_u8(b, h->clean);
	put_le(b, h->time, 8);
	rec_end(b, at);
}

/* A REG record from its fields. */
void
record_fields(struct jbuf *b, const struct rec_fields *g)
{
	size_t at, n, i;

	at = rec_begin(b, REC_REG, REC_BODY_MAX);
	put_le(b, g->id, 4);
	n = strlen(g->user);
	put_u8(b, (uint8_t)n);
	put(b, g->user, n);
	put(b, g->device, PROTO_DEVICE_LEN);
	put_u8(b, g->key_id);
	put_le(b, g->hwm, 8);
	if (g->addr.sa.sa_family == AF_INET) {
		put_u8(b, 4);
		put(b, &g->addr.sin.sin_port, 2);
		put(b, &g->addr.sin.sin_addr, 4);
	} else {
		put_u8(b, 6);
		put(b, &g->addr.sin6.sin6_port, 2);
		put(b, &g->addr.sin6.sin6_addr, 16);
	}
	n = strlen(g->listener);
	put_u8(b, (uint8_t)n);
	put(b, g->listener, n);
	put_le(b, g->created, 4);
	put_le(b, g->expires, 4);
	put_le(b, g->last_ack, 4);
	put_le(b, g->seq, 4);
	put_le(b, g->total, 4);
	put_le(b, g->sent, 4);
	put_le(b, g->acked, 4);
	put_le(b, g->failures, 4);
	put_le(b, g->last_push_ms, 8);
	put_u8(b, g->state);
	put_le(b, g->ctx_len, 2);
	put(b, g->ctx, g->ctx_len);
	put_u8(b, g->n_mailboxes);
	for (i = 0; i < g->n_mailboxes; i++) {
		n = strlen(g->mailboxes[i]);
		put_u8(b, (uint8_t)n);
		put(b, g->mailboxes[i], n);
	}
	rec_end(b, at);
}

void
record_del(struct jbuf *b, uint32_t id)
{
	size_t at = rec_begin(b, REC_DEL, 4);

	put_le(b, id, 4);
	rec_end(b, at);
}

void
record_seq(struct jbuf *b, const struct reg *r)
{
	size_t at = rec_begin(b, REC_SEQ, 48);

	put_le(b, r->id, 4);
	put_le(b, r->seq, 4);
	put_le(b, r->total, 4);
	put_le(b, r->sent_total, 4);
	put_le(b, r->acked_total, 4);
	put_le(b, r->last_ack, 4);
	put_le(b, r->last_push_ms, 8);
	put_le(b, r->hwm, 8);
	put_u8(b, r->state);
	rec_end(b, at);
}

void
record_exp(struct jbuf *b, const struct reg *r)
{
	size_t at = rec_begin(b, REC_EXP, 16);

	put_le(b, r->id, 4);
	put_le(b, r->expires, 4);
	put_le(b, r->hwm, 8);
	rec_end(b, at);
}

void
record_end(struct jbuf *b, uint64_t count)
{
	size_t at = rec_begin(b, REC_END, 8);

	put_le(b, count, 8);
	rec_end(b, at);
}

/* Reading */

struct rd {
	const uint8_t	*p;
	size_t		 len, off;
	int		 bad;
};

static const uint8_t *
get(struct rd *d, size_t n)
{
	const uint8_t *p;

	if (d->bad || d->len - d->off < n) {
		d->bad = 1;
		return NULL;
	}
	p = d->p + d->off;
	d->off += n;
	return p;
}

static uint64_t
get_le(struct rd *d, int n)
{
	const uint8_t *p = get(d, (size_t)n);
	uint64_t v = 0;

	if (p != NULL)
		memcpy(&v, p, (size_t)n);	/* n <= 8 */
	return le64toh(v);
}

/*
 * The record at buf (avail bytes): 0 with its type, body and length in
 * *out, or -1 and *why if it is torn (too short) or does not verify.
 */
int
record_next(const uint8_t *buf, size_t avail, struct rec_view *out,
    const char **why)
{
	uint8_t sum[REC_SUM];
	uint32_t len;

	if (avail < REC_FRAME + REC_SUM) {
		*why = "torn record (file ends inside a record header)";
		return -1;
	}
	len = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 |
	    (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 24;
	if (len > REC_BODY_MAX) {
		*why = "bad record length";
		return -1;
	}
	if (avail < REC_FRAME + (size_t)len + REC_SUM) {
		*why = "torn record (file ends inside a record)";
		return -1;
	}
	rec_sum(buf, REC_FRAME + len, sum);
	if (sodium_memcmp(sum, buf + REC_FRAME + len, REC_SUM) != 0) {
		*why = "checksum mismatch";
		return -1;
	}
	out->type = buf[4];
	out->body = buf + REC_FRAME;
	out->len = len;
	out->size = REC_FRAME + len + REC_SUM;
	return 0;
}

int
record_parse_hdr(const struct rec_view *v, struct rec_hdr *h)
{
	struct rd d = { v->body, v->len, 0, 0 };
	const uint8_t *m = get(&d, 8);

	if (v->type != REC_HDR || m == NULL || memcmp(m, REC_MAGIC, 8) != 0)
		return -1;
	h->version = (uint16_t)get_le(&d, 2);
	h->kind = (uint8_t)get_le(&d, 1);
	h->gen = get_le(&d, 8);
	h->epoch = get_le(&d, 8);
	h->clean = (uint8_t)get_le(&d, 1);
	h->time = get_le(&d, 8);
	return d.bad ? -1 : 0;
}

/*
 * A REG, SEQ, EXP, DEL or END body into *g (strings NUL-terminated).
 * Returns 0, or -1 when the body does not parse: a record that verified
 * but does not parse was written by a different format.
 */
int
record_parse(const struct rec_view *v, struct rec_fields *g)
{
	struct rd d = { v->body, v->len, 0, 0 };
	const uint8_t *p;
	size_t n, i;

	memset(g, 0, offsetof(struct rec_fields, ctx));
	g->type = v->type;
	switch (v->type) {
	case REC_DEL:
		g->id = (uint32_t)get_le(&d, 4);
		break;
	case REC_END:
		g->count = get_le(&d, 8);
		break;
	case REC_EXP:
		g->id = (uint32_t)get_le(&d, 4);
		g->expires = (uint32_t)get_le(&d, 4);
		g->hwm = get_le(&d, 8);
		break;
	case REC_SEQ:
		g->id = (uint32_t)get_le(&d, 4);
		g->seq = (uint32_t)get_le(&d, 4);
		g->total = (uint32_t)get_le(&d, 4);
		g->sent = (uint32_t)get_le(&d, 4);
		g->acked = (uint32_t)get_le(&d, 4);
		g->last_ack = (uint32_t)get_le(&d, 4);
		g->last_push_ms = get_le(&d, 8);
		g->hwm = get_le(&d, 8);
		g->state = (uint8_t)get_le(&d, 1);
		break;
	case REC_REG:
		g->id = (uint32_t)get_le(&d, 4);
		n = (size_t)get_le(&d, 1);
		if (n == 0 || (p = get(&d, n)) == NULL ||
		    memchr(p, '\0', n) != NULL)
			return -1;
		memcpy(g->user, p, n);
		g->user[n] = '\0';
		if ((p = get(&d, PROTO_DEVICE_LEN)) == NULL)
			return -1;
		memcpy(g->device, p, PROTO_DEVICE_LEN);
		g->key_id = (uint8_t)get_le(&d, 1);
		g->hwm = get_le(&d, 8);
		memset(&g->addr, 0, sizeof(g->addr));
		switch (get_le(&d, 1)) {
		case 4:
			g->addr.sin.sin_family = AF_INET;
			if ((p = get(&d, 2)) != NULL)
				memcpy(&g->addr.sin.sin_port, p, 2);
			if ((p = get(&d, 4)) != NULL)
				memcpy(&g->addr.sin.sin_addr, p, 4);
			break;
		case 6:
			g->addr.sin6.sin6_family = AF_INET6;
			if ((p = get(&d, 2)) != NULL)
				memcpy(&g->addr.sin6.sin6_port, p, 2);
			if ((p = get(&d, 16)) != NULL)
				memcpy(&g->addr.sin6.sin6_addr, p, 16);
			break;
		default:
			return -1;
		}
		n = (size_t)get_le(&d, 1);
		if ((p = get(&d, n)) == NULL || n >= sizeof(g->listener))
			return -1;
		memcpy(g->listener, p, n);
		g->listener[n] = '\0';
		g->created = (uint32_t)get_le(&d, 4);
		g->expires = (uint32_t)get_le(&d, 4);
		g->last_ack = (uint32_t)get_le(&d, 4);
		g->seq = (uint32_t)get_le(&d, 4);
		g->total = (uint32_t)get_le(&d, 4);
		g->sent = (uint32_t)get_le(&d, 4);
		g->acked = (uint32_t)get_le(&d, 4);
		g->failures = (uint32_t)get_le(&d, 4);
		g->last_push_ms = get_le(&d, 8);
		g->state = (uint8_t)get_le(&d, 1);
		n = (size_t)get_le(&d, 2);
		if (n > MP_CONTEXT_MAX || (p = get(&d, n)) == NULL)
			return -1;
		memcpy(g->ctx, p, n);
		g->ctx_len = (uint16_t)n;
		g->n_mailboxes = (uint8_t)get_le(&d, 1);
		if (g->n_mailboxes > MP_MAILBOXES_MAX)
			return -1;
		for (i = 0; i < g->n_mailboxes; i++) {
			n = (size_t)get_le(&d, 1);
			if (n == 0 || (p = get(&d, n)) == NULL ||
			    memchr(p, '\0', n) != NULL)
				return -1;
			memcpy(g->mailboxes[i], p, n);
			g->mailboxes[i][n] = '\0';
		}
		break;
	default:
		return -1;
	}
	if (d.bad || d.off != d.len || (v->type != REC_END && g->id == 0))
		return -1;
	if (v->type == REC_REG && (g->created > g->expires ||
	    g->acked > g->sent || g->sent > g->total ||
	    g->state > REG_UNREACHABLE))
		return -1;
	if (v->type == REC_SEQ && (g->acked > g->sent || g->sent > g->total ||
	    g->state > REG_UNREACHABLE))
		return -1;
	return 0;
}
