/*
 * push.c: from new-mail events to PUSH datagrams.
 *
 * A push carries the messages counted since the last acknowledged push
 * (count) and the running total; events that arrive within
 * min_push_interval of the last push are added to the total and go out as
 * one push when the interval is over, so no event is lost or counted
 * twice.  New mail after the interval gets a new push even while the last
 * one is unacknowledged (a lost acknowledgement must not delay the next
 * mail by a retry interval); only the newest push is retransmitted, after
 * push_retry_interval, doubling, push_retries times; then the registration
 * is marked unreachable (it is kept; the next event or refresh tries
 * again).
 *
 * Every push is sealed for its user (XChaCha20-Poly1305 under
 * proto_push_key of the user's token) with a nonce that never repeats: 16
 * random bytes drawn at the first push and a 64-bit counter; the reg_id
 * inside tells the user's devices apart.  It
 * carries the restart epoch, so a client tells a restarted server's
 * pushes from retransmissions whatever sequence numbers the server lost.
 *
 * When the client is heard from in an authenticated request at its
 * registration's address (REFRESH, REGISTER, PROBE), what it is owed goes
 * out at once (push_owed), if it fits in the bytes the request brought.
 *
 * Datagrams are queued and leave in batches through sendmmsg(2), one call
 * per run of datagrams from the same listener: an event for a user with
 * eight registrations costs one system call, not eight.
 *
 * A send error is counted against its registration and costs nobody
 * else a push.  Errors that come back later as ICMP (udp.c reads them)
 * name only a destination address: a ring of the last pushes sent maps it
 * back to the registration.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "journal.h"
#include "log.h"
#include "mailpushd.h"

/* Datagrams per sendmmsg(2); PUSH_BATCH=1 builds the unbatched daemon
 * that `make bench-batch' measures against. */
#ifndef PUSH_BATCH
#define PUSH_BATCH	64
#endif
#define BATCH	PUSH_BATCH
#define PUSH_MAX PROTO_PUSH_LEN(MP_CONTEXT_MAX)
#define OWED_AFTER_MS	1000	/* an unacknowledged push older than this
				   is owed (the acknowledgement is late) */
#define SENT_RING 256		/* recent pushes, for late send errors */

/* The datagrams are packed one after the other in buf (used bytes of
 * it), not in slots of the largest push's size: a batch of short pushes
 * then stays in a few kilobytes the cache keeps. */
static struct {
	struct mmsghdr	msgs[BATCH];
	struct iovec	iov[BATCH];
	uint8_t		buf[BATCH * PUSH_MAX];
	size_t		used;
	union mp_addr	to[BATCH];
	struct reg	*reg[BATCH];
	int		listener[BATCH];
	unsigned	n;
} Q;

static struct {
	union mp_addr	to;
	uint32_t	id;
} sent[SENT_RING];
static unsigned	sent_next;

static void
sent_record(const union mp_addr *to, const struct reg *r)
{
	if (r == NULL)
		return;
	memcpy(&sent[sent_next].to, to, sizeof(*to));
	sent[sent_next].id = r->id;
	sent_next = (sent_next + 1) % SENT_RING;
}

/* An ICMP error for a datagram sent to `to': charge its registration. */
void
push_send_error(const union mp_addr *to)
{
	struct reg *r;
	unsigned i, k;

	for (i = 1; i <= SENT_RING; i++) {
		k = (sent_next + SENT_RING - i) % SENT_RING;
		if (sent[k].id == 0 || !addr_equal(&sent[k].to, to))
			continue;
		if ((r = registry_find(sent[k].id)) != NULL &&
		    addr_equal(&r->addr, to))
			r->failures++;
		return;
	}
}

static void
send_batch(unsigned from, unsigned n)
{
	int listener = Q.listener[from];
	struct mp_listener *l = &mpd->listeners[listener];
	unsigned i, done = 0;
	int rc, tries = 0;

	while (done < n) {
		rc = sendmmsg(l->fd, &Q.msgs[from + done], n - done, 0);
		if (rc > 0) {
			for (i = 0; i < (unsigned)rc; i++) {
				mpd->stats.bytes_out +=
				    Q.msgs[from + done + i].msg_len;
				sent_record(&Q.to[from + done + i],
				    Q.reg[from + done + i]);
			}
			done += (unsigned)rc;
			tries = 0;
			continue;
		}
		if (rc == -1 && errno == EINTR)
			continue;
		/* An error an earlier datagram caused (ICMP) is reported
		 * by the next send, whichever: not this one's fault. */
		if (udp_send_retry(listener, errno, ++tries))
			continue;
		/* The datagram at `done' failed (unreachable, no buffer
		 * space...): count it against its registration, go on. */
		mpd->stats.send_errors++;
		if (Q.reg[from + done] != NULL)
			Q.reg[from + done]->failures++;
		log_debug("push to %s: %s", addr_str(&Q.to[from + done]),
		    strerror(errno));
		done++;
		tries = 0;
	}
}

/* Datagrams whose listener was closed by a reload: a send error each. */
static void
unsent(unsigned from, unsigned n)
{
	unsigned i;

	for (i = from; i < from + n; i++) {
		mpd->stats.send_errors++;
		if (Q.reg[i] != NULL)
			Q.reg[i]->failures++;
	}
}

void
push_flush(void)
{
	unsigned i, start = 0;

	/* after a durable change, pushes wait with its answer for the
	 * sync, and never overtake it (an owed push after a takeover) */
	for (i = 0; i < Q.n && journal_holding(); i++)
		journal_hold(Q.listener[i], &Q.to[i], Q.iov[i].iov_base,
		    Q.iov[i].iov_len);
	if (i > 0)
		Q.n = 0;
	for (i = 1; i <= Q.n; i++)
		if (i == Q.n || Q.listener[i] != Q.listener[start] ||
		    !mpd->listeners[Q.listener[start]].in_use) {
			if (mpd->listeners[Q.listener[start]].in_use)
				send_batch(start, i - start);
			else
				unsent(start, i - start);
			start = i;
		}
	Q.n = 0;
	Q.used = 0;
	/* Every callback ends here: keep the timer on the next deadline. */
	mpd_rearm();
}

/*
 * HMAC-SHA256 with its key already hashed in (the key's two blocks are
 * half the work of a MAC over a short message): one state for the server
 * key, from which users' tokens are made, and one for the last token used,
 * since an event for a user with eight registrations makes eight pushes
 * under the same token.
 */
struct keyed {
	uint8_t				key[32];
	crypto_auth_hmacsha256_state	st;
	int				ready;
};
static struct keyed server_key;
static struct {
	uint8_t		token[MP_TOKEN_LEN];
	uint8_t		subkey[32];
	int		ready;
} last_key;			/* the sealing key of the last token used */
static uint8_t	nonce_prefix[16];
static uint64_t	nonce_counter;

static void
keyed_mac(struct keyed *k, const uint8_t key[32], const uint8_t *in,
    size_t len, uint8_t out[crypto_auth_hmacsha256_BYTES])
{
	crypto_auth_hmacsha256_state st;

	/* memcmp, not sodium_memcmp: both sides are the daemon's own keys,
	 * no value a peer chose, so the time it takes tells nobody anything */
	if (!k->ready || memcmp(k->key, key, 32) != 0) {
		crypto_auth_hmacsha256_init(&k->st, key, 32);
		memcpy(k->key, key, 32);
		k->ready = 1;
	}
	st = k->st;
	crypto_auth_hmacsha256_update(&st, in, len);
	crypto_auth_hmacsha256_final(&st, out);
}

/*
 * The key a push to the token's user is sealed under: the HChaCha20 subkey
 * of the user's push key for this run's nonce prefix (proto_push_subkey),
 * made once for all the pushes of an event, not once per push.
 */
static const uint8_t *
push_subkey(const uint8_t *token)
{
	uint8_t key[32];

	if (!last_key.ready ||
	    memcmp(last_key.token, token, MP_TOKEN_LEN) != 0) {	/* as above */
		proto_push_key(token, key);
		proto_push_subkey(key, nonce_prefix, last_key.subkey);
		sodium_memzero(key, sizeof(key));
		memcpy(last_key.token, token, MP_TOKEN_LEN);
		last_key.ready = 1;
	}
	return last_key.subkey;
}

static void
queue_push(struct reg *r, const uint8_t *token)
{
	static struct mp_push p;
	uint8_t nonce[PROTO_PUSH_NONCE_LEN];
	unsigned i;
	int len;

	if (Q.n == BATCH)
		push_flush();
	i = Q.n;
	if (nonce_counter == 0) {
		randombytes_buf(nonce_prefix, sizeof(nonce_prefix));
		last_key.ready = 0;	/* subkeys are of the prefix */
	}
	memcpy(nonce, nonce_prefix, sizeof(nonce_prefix));
	nonce_counter++;
	memcpy(nonce + 16, &nonce_counter, 8);
	p.epoch = mpd->epoch;
	p.reg_id = r->id;
	p.seq = r->seq;
	p.count = r->sent_total - r->acked_total;
	p.total = r->sent_total;
	p.server_time = r->last_push_ms / 1000;
	p.flags = (r->flags & (REG_F_RESTORED | REG_F_CATCHUP)) ?
	    PUSH_FLAG_COUNT_UNKNOWN : 0;
	p.ctx_len = r->ctx_len;
	memcpy(p.ctx, r->ctx, r->ctx_len);
	/* room for the largest push is left: fewer than BATCH are queued */
	len = proto_push_seal_sub(&p, push_subkey(token), nonce,
	    Q.buf + Q.used, PUSH_MAX);
	if (len < 0)
		abort();
	memcpy(&Q.to[i], &r->addr, sizeof(r->addr));
	Q.iov[i].iov_base = Q.buf + Q.used;
	Q.iov[i].iov_len = (size_t)len;
	Q.used += (size_t)len;
	memset(&Q.msgs[i], 0, sizeof(Q.msgs[i]));
	Q.msgs[i].msg_hdr.msg_name = &Q.to[i];
	Q.msgs[i].msg_hdr.msg_namelen = addr_len(&r->addr);
	Q.msgs[i].msg_hdr.msg_iov = &Q.iov[i];
	Q.msgs[i].msg_hdr.msg_iovlen = 1;
	Q.reg[i] = r;
	Q.listener[i] = r->listener;
	Q.n++;
}

/* A registration is going away: forget its queued datagrams' owner. */
static void
unqueue(struct reg *r)
{
	unsigned i;

	for (i = 0; i < Q.n; i++)
		if (Q.reg[i] == r)
			Q.reg[i] = NULL;
}

/* proto_token() under the key the registration's token came from */
static void
user_token(const struct reg *r, uint8_t token[MP_TOKEN_LEN])
{
	/* the key it registered with is retired (mailpushctl key retire):
	 * the current one, which the client cannot use until it fetches a
	 * new token; its next REFRESH is refused AUTH and tells it so */
	if (push_token(r->user->name, r->user->name_len, r->key_id, token)
	    != 0 && push_token(r->user->name, r->user->name_len,
	    mpd->keys.cur_id, token) != 0)
		abort();
}

/*
 * The token for a user (proto_token), from the keyed state of the server
 * key; the one function that makes tokens in the daemon.  -1 if there is
 * no key with that id.
 */
int
push_token(const char *name, size_t len, uint8_t key_id,
    uint8_t token[MP_TOKEN_LEN])
{
	const uint8_t *key = mpd_key(key_id);

	if (key == NULL)
		return -1;
	keyed_mac(&server_key, key, (const uint8_t *)name, len, token);
	return 0;
}

static void
send_new_push(struct reg *r, const uint8_t *token)
{
	r->seq++;
	r->sent_total = r->total;
	r->last_push_ms = mpd->now_ms;
	r->retries = 0;
	r->state = REG_PUSHING;
	queue_push(r, token);
	r->push_at = mpd->now_ms + mpd->cfg.push_retry_interval;
	registry_push_scheduled(r);
	mpd->stats.pushes++;
	mpd->state_dirty = 1;
	journal_log_seq(r);
}

/*
 * Something new to tell r: push now, or when the interval allows.  The
 * user's token is made only when a push goes out (*have says whether
 * token holds it already): most events in a burst are coalesced.
 */
static void
kick(struct reg *r, uint8_t *token, int *have)
{
	uint64_t t = r->last_push_ms + mpd->cfg.min_push_interval;

	if (r->total == r->sent_total)
		return;		/* nothing new */
	/*
	 * Something new: push now, or once the interval since the last push
	 * is over.  An unacknowledged push does not hold new mail back: the
	 * new push counts everything since the last acknowledged one, so a
	 * lost acknowledgement costs nothing but a larger count.
	 */
	if (r->seq == 0 || mpd->now_ms >= t) {
		if (!*have) {
			user_token(r, token);
			*have = 1;
		}
		send_new_push(r, token);
	} else if (r->push_at == 0 || r->push_at > t) {
		r->push_at = t;
		registry_push_scheduled(r);
	}
}

void
push_event(const char *user, const char *mailbox, unsigned count)
{
	struct mp_user *u = registry_user(user, 0);
	uint8_t token[MP_TOKEN_LEN];
	struct reg *r;
	int have_token = 0;
	uint8_t key_id = 0;

	if (u == NULL) {
		mpd->stats.events_no_user++;
		return;
	}
	for (r = u->regs; r != NULL; r = r->user_next) {
		if (!registry_wants(r, mailbox)) {
			mpd->stats.events_filtered++;
			continue;
		}
		r->total += count;
		if (have_token && r->key_id != key_id)
			have_token = 0;	/* another key's token */
		key_id = r->key_id;
		kick(r, token, &have_token);
		journal_log_seq(r);
	}
	mpd->state_dirty = 1;
	journal_serialize_touched();	/* while u's entries are cached */
}

void
push_timer(struct reg *r, uint64_t now_ms)
{
	uint8_t token[MP_TOKEN_LEN];
	const struct mp_config *cfg = &mpd->cfg;

	user_token(r, token);
	if (r->total != r->sent_total &&
	    now_ms >= r->last_push_ms + cfg->min_push_interval) {
		/* the coalescing window is over: a new push for new mail */
		send_new_push(r, token);
		return;
	}
	if (r->state != REG_PUSHING) {
		/* new mail still inside the window waits for its end */
		r->push_at = r->total != r->sent_total ?
		    r->last_push_ms + cfg->min_push_interval : 0;
		registry_push_scheduled(r);
		return;
	}
	if (r->retries < cfg->push_retries) {
		r->retries++;
		queue_push(r, token);
		r->push_at = now_ms + (cfg->push_retry_interval << r->retries);
		/* new mail waiting for the window goes at its end */
		if (r->total != r->sent_total && r->push_at >
		    r->last_push_ms + cfg->min_push_interval)
			r->push_at = r->last_push_ms + cfg->min_push_interval;
		mpd->stats.retransmits++;
		registry_push_scheduled(r);
		return;
	}
	/* out of retries; new mail waiting for the window still goes at its
	 * end (the window is not over: see the first case) */
	r->state = REG_UNREACHABLE;
	r->failures++;
	r->push_at = r->total != r->sent_total ?
	    r->last_push_ms + cfg->min_push_interval : 0;
	mpd->stats.push_given_up++;
	log_debug("push %u to %s at %s not acknowledged after %u retries",
	    r->seq, r->user->name, addr_str(&r->addr), cfg->push_retries);
	registry_push_scheduled(r);
	journal_log_seq(r);	/* the state is in the SEQ record */
}

/* A verified, fresh PUSH_ACK for r (udp.c checked MAC and replay). */
void
push_ack(struct reg *r, const struct mp_request *rq)
{
	uint8_t token[MP_TOKEN_LEN];
	int have_token = 1;

	if (rq->epoch != mpd->epoch || rq->seq != r->seq ||
	    r->state == REG_ACTIVE) {
		mpd->stats.acks_stale++;
		return;
	}
	mpd->stats.acks++;
	r->acked_total = r->sent_total;
	r->state = REG_ACTIVE;
	/* the client has our counts */
	r->flags &= (uint8_t)~(REG_F_RESTORED | REG_F_CATCHUP);
	r->last_ack = (uint32_t)(mpd->now_ms / 1000);
	r->push_at = 0;		/* its queued deadline is dropped when due */
	user_token(r, token);
	kick(r, token, &have_token);
	journal_log_seq(r);
}

void
push_forget(struct reg *r)
{
	unqueue(r);	/* the ring of sent pushes checks ids when used */
}

/* Does r's client owe us an acknowledgement we have waited for? */
int
push_is_owed(const struct reg *r)
{
	if (r->total == r->acked_total)
		return 0;
	return r->state == REG_UNREACHABLE || (r->state == REG_PUSHING &&
	    mpd->now_ms >= r->last_push_ms + OWED_AFTER_MS);
}

/*
 * The client has been heard from at r's address in an authenticated
 * request: what it has not acknowledged goes out now, if budget (what the
 * request brought less what was answered) allows; otherwise at the next
 * retransmission.  The push in flight is sent again as it is, or, if new
 * mail came, it was given up, or the client registered anew (fresh: it
 * may have restarted and forgotten what it saw), a new push with the next
 * seq counts everything unacknowledged.
 */
void
push_owed(struct reg *r, size_t budget, int fresh)
{
	uint8_t token[MP_TOKEN_LEN];

	if (r->total == r->acked_total || (!fresh && !push_is_owed(r)))
		return;
	if (PROTO_PUSH_LEN(r->ctx_len) > budget) {
		/* The request was not padded: no answer larger than it.  A
		 * new push goes after push_retry_interval instead (not a
		 * retransmission the client may count as seen). */
		if (fresh || r->state == REG_UNREACHABLE) {
			r->sent_total = r->acked_total;
			r->state = REG_ACTIVE;
			r->push_at = mpd->now_ms + mpd->cfg.push_retry_interval;
			registry_push_scheduled(r);
			journal_log_seq(r);
		}
		return;
	}
	user_token(r, token);
	mpd->stats.owed_sent++;
	if (!fresh && r->state == REG_PUSHING && r->total == r->sent_total) {
		queue_push(r, token);
		mpd->stats.retransmits++;
		return;
	}
	send_new_push(r, token);
}

/*
 * A cluster notifier may have missed events for r (mailpush-cluster(7)):
 * one push now, with the next sequence number, the counts as far as this
 * daemon knows them and the flag that says they may be inexact, so the
 * client looks at its mailbox.
 */
void
push_catchup(struct reg *r)
{
	uint8_t token[MP_TOKEN_LEN];

	user_token(r, token);
	r->flags |= REG_F_CATCHUP;
	send_new_push(r, token);
}

/* The delay a PROBE asked for is over: answer at the registration's
 * address, 44 bytes authenticated under the token. */
void
push_probe_echo(struct reg *r)
{
	uint8_t token[MP_TOKEN_LEN], buf[PROTO_PROBE_ECHO_LEN];
	struct mp_reply rp;
	int n;

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_PROBE_ECHO;
	/* the timestamp of the device's last request: the PROBE, unless it
	 * sent another since, and then the client's probe proves nothing
	 * anyway (it was not silent) */
	rp.timestamp = r->hwm;
	r->probe_at = 0;
	registry_schedule(r);
	user_token(r, token);
	if ((n = proto_reply_encode(&rp, token, buf, sizeof(buf))) > 0)
		udp_send(r->listener, &r->addr, buf, (size_t)n);
}
