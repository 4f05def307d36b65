/*
 * proto.c: codec for mailpush-protocol(7).  Decoders check every length
 * before reading the bytes it covers; encoders refuse out-of-range fields.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "proto.h"
#include "wire.h"

static void
put_hdr(uint8_t *buf, uint8_t type)
{
	put16(buf, PROTO_MAGIC);
	buf[2] = PROTO_VERSION;
	buf[3] = type;
}

static void
put_mac(uint8_t *buf, size_t off, const uint8_t *token)
{
	if (token == NULL)
		memset(buf + off, 0, PROTO_MAC_LEN);
	else
		crypto_auth_hmacsha256(buf + off, buf, off, token);
}

int
proto_type(const uint8_t *buf, size_t len)
{
	if (len < PROTO_HDR_LEN || len > PROTO_MAX_DATAGRAM)
		return -1;
	if (get16(buf) != PROTO_MAGIC || buf[2] != PROTO_VERSION)
		return -1;
	if (buf[3] < PROTO_REGISTER || buf[3] > PROTO_PUSH_ACK)
		return -1;
	return buf[3];
}

void
proto_token(const uint8_t key[MP_KEY_LEN], const char *user, size_t user_len,
    uint8_t token[MP_TOKEN_LEN])
{
	crypto_auth_hmacsha256(token, (const unsigned char *)user, user_len,
	    key);
}

int
proto_verify(const uint8_t *buf, size_t len, const uint8_t token[MP_TOKEN_LEN])
{
	if (len < PROTO_HDR_LEN + PROTO_MAC_LEN)
		return -1;
	return crypto_auth_hmacsha256_verify(buf + len - PROTO_MAC_LEN, buf,
	    len - PROTO_MAC_LEN, token) == 0 ? 0 : -1;
}

int
proto_request_encode(const struct mp_request *rq,
    const uint8_t token[MP_TOKEN_LEN], uint8_t *buf, size_t len)
{
	size_t off, i, need;

	if (rq->type < PROTO_REGISTER || rq->type > PROTO_UNREGISTER ||
	    rq->user_len == 0 || rq->ctx_len > MP_CONTEXT_MAX ||
	    rq->n_mailboxes > MP_MAILBOXES_MAX)
		return -1;
	/* Never produce what proto_request_decode refuses: no NUL bytes. */
	if (memchr(rq->user, '\0', rq->user_len) != NULL)
		return -1;
	need = PROTO_REQ_FIXED + rq->user_len + rq->ctx_len + PROTO_MAC_LEN;
	for (i = 0; i < rq->n_mailboxes; i++) {
		if (rq->mailboxes[i].len == 0 ||
		    memchr(rq->mailboxes[i].name, '\0',
		    rq->mailboxes[i].len) != NULL)
			return -1;
		need += 1 + rq->mailboxes[i].len;
	}
	if (need > len || need > PROTO_MAX_DATAGRAM)
		return -1;
	put_hdr(buf, rq->type);
	put64(buf + 4, rq->timestamp);
	put32(buf + 12, rq->nonce);
	put32(buf + 16, rq->reg_id);
	memcpy(buf + 20, rq->cookie, PROTO_COOKIE_LEN);
	buf[36] = rq->user_len;
	buf[37] = rq->n_mailboxes;
	put16(buf + 38, rq->ctx_len);
	off = PROTO_REQ_FIXED;
	memcpy(buf + off, rq->user, rq->user_len);
	off += rq->user_len;
	memcpy(buf + off, rq->ctx, rq->ctx_len);
	off += rq->ctx_len;
	for (i = 0; i < rq->n_mailboxes; i++) {
		buf[off++] = rq->mailboxes[i].len;
		memcpy(buf + off, rq->mailboxes[i].name, rq->mailboxes[i].len);
		off += rq->mailboxes[i].len;
	}
	put_mac(buf, off, token);
	return (int)need;
}

int
proto_request_decode(const uint8_t *buf, size_t len, struct mp_request *rq,
    const char **why)
{
	size_t off, end, i;
	int type = proto_type(buf, len);

	if (type < PROTO_REGISTER || type > PROTO_UNREGISTER) {
		*why = "not a mailpush request";
		return -1;
	}
	if (len < PROTO_REQ_MIN) {
		*why = "request shorter than 73 bytes";
		return -1;
	}
	rq->type = (uint8_t)type;
	rq->timestamp = get64(buf + 4);
	rq->nonce = get32(buf + 12);
	rq->reg_id = get32(buf + 16);
	memcpy(rq->cookie, buf + 20, PROTO_COOKIE_LEN);
	rq->user_len = buf[36];
	rq->n_mailboxes = buf[37];
	rq->ctx_len = get16(buf + 38);
	if (rq->user_len == 0) {
		*why = "request has an empty user name";
		return -1;
	}
	if (rq->ctx_len > MP_CONTEXT_MAX) {
		*why = "request context longer than 1024 bytes";
		return -1;
	}
	if (rq->n_mailboxes > MP_MAILBOXES_MAX) {
		*why = "request names more than 16 mailboxes";
		return -1;
	}
	end = len - PROTO_MAC_LEN;
	off = PROTO_REQ_FIXED;
	if (end - off < (size_t)rq->user_len + rq->ctx_len) {
		*why = "request truncated in user name or context";
		return -1;
	}
	memcpy(rq->user, buf + off, rq->user_len);
	rq->user[rq->user_len] = '\0';
	if (memchr(rq->user, '\0', rq->user_len) != NULL) {
		*why = "request user name contains a NUL byte";
		return -1;
	}
	off += rq->user_len;
	memcpy(rq->ctx, buf + off, rq->ctx_len);
	off += rq->ctx_len;
	for (i = 0; i < rq->n_mailboxes; i++) {
		uint8_t ml;

		if (off >= end) {
			*why = "request truncated in mailbox list";
			return -1;
		}
		ml = buf[off++];
		if (ml == 0 || end - off < ml) {
			*why = "request mailbox name empty or truncated";
			return -1;
		}
		rq->mailboxes[i].len = ml;
		memcpy(rq->mailboxes[i].name, buf + off, ml);
		rq->mailboxes[i].name[ml] = '\0';
		if (memchr(rq->mailboxes[i].name, '\0', ml) != NULL) {
			*why = "request mailbox name contains a NUL byte";
			return -1;
		}
		off += ml;
	}
	if (off != end) {
		*why = "request has trailing bytes before its MAC";
		return -1;
	}
	return 0;
}

int
proto_reply_encode(const struct mp_reply *rp, const uint8_t token[MP_TOKEN_LEN],
    uint8_t *buf, size_t len)
{
	switch (rp->type) {
	case PROTO_COOKIE:
		if (len < PROTO_COOKIE_LEN_DGRAM)
			return -1;
		put_hdr(buf, rp->type);
		put32(buf + 4, rp->nonce);
		memcpy(buf + 8, rp->cookie, PROTO_COOKIE_LEN);
		return PROTO_COOKIE_LEN_DGRAM;
	case PROTO_REGISTERED:
		if (len < PROTO_REGISTERED_LEN)
			return -1;
		put_hdr(buf, rp->type);
		put32(buf + 4, rp->nonce);
		put32(buf + 8, rp->reg_id);
		put32(buf + 12, rp->lifetime);
		put32(buf + 16, rp->seq);
		put_mac(buf, 20, token);
		return PROTO_REGISTERED_LEN;
	case PROTO_REFUSED:
		if (len < PROTO_REFUSED_LEN || rp->reason == 0 ||
		    rp->reason > REASON_MAX)
			return -1;
		put_hdr(buf, rp->type);
		put32(buf + 4, rp->nonce);
		buf[8] = rp->reason;
		buf[9] = buf[10] = buf[11] = 0;
		put32(buf + 12, rp->limit);
		put64(buf + 16, rp->server_time);
		put_mac(buf, 24, token);
		return PROTO_REFUSED_LEN;
	default:
		return -1;
	}
}

int
proto_reply_decode(const uint8_t *buf, size_t len, struct mp_reply *rp,
    const char **why)
{
	int type = proto_type(buf, len);

	memset(rp, 0, sizeof(*rp));
	switch (type) {
	case PROTO_COOKIE:
		if (len != PROTO_COOKIE_LEN_DGRAM) {
			*why = "COOKIE is not 24 bytes";
			return -1;
		}
		rp->nonce = get32(buf + 4);
		memcpy(rp->cookie, buf + 8, PROTO_COOKIE_LEN);
		break;
	case PROTO_REGISTERED:
		if (len != PROTO_REGISTERED_LEN) {
			*why = "REGISTERED is not 52 bytes";
			return -1;
		}
		rp->nonce = get32(buf + 4);
		rp->reg_id = get32(buf + 8);
		rp->lifetime = get32(buf + 12);
		rp->seq = get32(buf + 16);
		break;
	case PROTO_REFUSED:
		if (len != PROTO_REFUSED_LEN) {
			*why = "REFUSED is not 56 bytes";
			return -1;
		}
		rp->nonce = get32(buf + 4);
		rp->reason = buf[8];
		rp->limit = get32(buf + 12);
		rp->server_time = get64(buf + 16);
		if (rp->reason == 0 || rp->reason > REASON_MAX) {
			*why = "REFUSED has an unknown reason";
			return -1;
		}
		break;
	default:
		*why = "not a mailpush reply";
		return -1;
	}
	rp->type = (uint8_t)type;
	return 0;
}

int
proto_push_encode(const struct mp_push *p, const uint8_t token[MP_TOKEN_LEN],
    uint8_t *buf, size_t len)
{
	size_t need = PROTO_PUSH_FIXED + (size_t)p->ctx_len + PROTO_MAC_LEN;

	if (p->ctx_len > MP_CONTEXT_MAX || need > len)
		return -1;
	put_hdr(buf, PROTO_PUSH);
	put32(buf + 4, p->reg_id);
	put32(buf + 8, p->seq);
	put32(buf + 12, p->count);
	put32(buf + 16, p->total);
	put64(buf + 20, p->server_time);
	put16(buf + 28, p->ctx_len);
	put16(buf + 30, 0);
	memcpy(buf + PROTO_PUSH_FIXED, p->ctx, p->ctx_len);
	put_mac(buf, PROTO_PUSH_FIXED + p->ctx_len, token);
	return (int)need;
}

int
proto_push_decode(const uint8_t *buf, size_t len, struct mp_push *p,
    const char **why)
{
	if (proto_type(buf, len) != PROTO_PUSH ||
	    len < PROTO_PUSH_FIXED + PROTO_MAC_LEN) {
		*why = "not a PUSH or shorter than 64 bytes";
		return -1;
	}
	p->reg_id = get32(buf + 4);
	p->seq = get32(buf + 8);
	p->count = get32(buf + 12);
	p->total = get32(buf + 16);
	p->server_time = get64(buf + 20);
	p->ctx_len = get16(buf + 28);
	if (p->ctx_len > MP_CONTEXT_MAX ||
	    len != PROTO_PUSH_FIXED + (size_t)p->ctx_len + PROTO_MAC_LEN) {
		*why = "PUSH length does not match its context length";
		return -1;
	}
	memcpy(p->ctx, buf + PROTO_PUSH_FIXED, p->ctx_len);
	return 0;
}

int
proto_ack_encode(const struct mp_ack *a, const uint8_t token[MP_TOKEN_LEN],
    uint8_t *buf, size_t len)
{
	if (len < PROTO_ACK_LEN)
		return -1;
	put_hdr(buf, PROTO_PUSH_ACK);
	put32(buf + 4, a->reg_id);
	put32(buf + 8, a->seq);
	put_mac(buf, 12, token);
	return PROTO_ACK_LEN;
}

int
proto_ack_decode(const uint8_t *buf, size_t len, struct mp_ack *a,
    const char **why)
{
	if (proto_type(buf, len) != PROTO_PUSH_ACK || len != PROTO_ACK_LEN) {
		*why = "not a PUSH_ACK of 44 bytes";
		return -1;
	}
	a->reg_id = get32(buf + 4);
	a->seq = get32(buf + 8);
	return 0;
}

const char *
proto_reason_name(unsigned reason)
{
	static const char *names[] = {
		"none", "authentication failed", "timestamp outside window",
		"too many registrations for this user", "context too large",
		"registration table full", "too many registrations from this address",
		"not allowed", "unknown registration", "bad request",
	};

	return reason <= REASON_MAX ? names[reason] : "unknown reason";
}

const char *
proto_type_name(unsigned type)
{
	static const char *names[] = {
		"?", "REGISTER", "REFRESH", "UNREGISTER", "COOKIE",
		"REGISTERED", "REFUSED", "PUSH", "PUSH_ACK",
	};

	return type <= PROTO_PUSH_ACK ? names[type] : "?";
}

int
proto_hex_decode(const char *hex, uint8_t *out, size_t outlen)
{
	size_t binlen;
	const char *end;

	if (sodium_hex2bin(out, outlen, hex, strlen(hex), NULL, &binlen,
	    &end) != 0 || binlen != outlen)
		return -1;
	while (*end == '\n' || *end == '\r')
		end++;
	return *end == '\0' ? 0 : -1;
}

void
proto_hex_encode(const uint8_t *in, size_t len, char *out)
{
	sodium_bin2hex(out, len * 2 + 1, in, len);
}

int
proto_read_hexfd(int fd, uint8_t out[32], const char **why)
{
	char buf[131];		/* 64 digits and newlines; 130 is too long */
	size_t len = 0;
	ssize_t n;
	int rc = -1;

	/* Read to the end, so a long file cannot pass on its first bytes. */
	for (;;) {
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if ((len += (size_t)n) == sizeof(buf) - 1)
			break;
	}
	if (n < 0)
		*why = strerror(errno);
	else {
		buf[len] = '\0';
		if (len == sizeof(buf) - 1 || memchr(buf, '\0', len) != NULL ||
		    proto_hex_decode(buf, out, 32) != 0)
			*why = "not 64 hexadecimal digits";
		else
			rc = 0;
	}
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

int
proto_read_hexfile(const char *path, uint8_t out[32], const char **why)
{
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		*why = strerror(errno);
		return -1;
	}
	rc = proto_read_hexfd(fd, out, why);
	close(fd);
	return rc;
}
