/*
 * proto.c: codec for mailpush-protocol(7).  Decoders check every length
 * before reading the bytes it covers; encoders refuse out-of-range fields.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
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
	if (buf[3] < PROTO_REGISTER || buf[3] > PROTO_TYPE_MAX)
		return -1;
	return buf[3];
}

int
proto_is_request(int type)
{
	return type == PROTO_REGISTER || type == PROTO_REFRESH ||
	    type == PROTO_UNREGISTER || type == PROTO_PUSH_ACK ||
	    type == PROTO_PROBE;
}

void
proto_token(const uint8_t key[MP_KEY_LEN], const char *user, size_t user_len,
    uint8_t token[MP_TOKEN_LEN])
{
	crypto_auth_hmacsha256(token, (const unsigned char *)user, user_len,
	    key);
}

void
proto_push_key(const uint8_t token[MP_TOKEN_LEN], uint8_t key[32])
{
	static const uint8_t personal[crypto_generichash_blake2b_PERSONALBYTES]
	    = "mailpush-push-v2";

	crypto_generichash_blake2b_salt_personal(key, 32, NULL, 0, token,
	    MP_TOKEN_LEN, NULL, personal);
}

/*
 * XChaCha20-Poly1305 is ChaCha20-Poly1305 (IETF) under the HChaCha20
 * subkey of the key and the nonce's first 16 bytes, with the nonce's last
 * 8 bytes behind four zero bytes as the 12-byte nonce: libsodium's own
 * construction, split so that the subkey can be kept (check_proto compares
 * the result with crypto_aead_xchacha20poly1305_ietf_encrypt).
 */
void
proto_push_subkey(const uint8_t key[32], const uint8_t prefix[16],
    uint8_t subkey[32])
{
	crypto_core_hchacha20(subkey, prefix, key, NULL);
}

int
proto_verify(const uint8_t *buf, size_t len, const uint8_t token[MP_TOKEN_LEN])
{
	if (len < PROTO_HDR_LEN + PROTO_MAC_LEN)
		return -1;
	return crypto_auth_hmacsha256_verify(buf + len - PROTO_MAC_LEN, buf,
	    len - PROTO_MAC_LEN, token) == 0 ? 0 : -1;
}

size_t
proto_request_pad(size_t ctx_len)
{
	return PROTO_REGISTERED_LEN + PROTO_PUSH_LEN(ctx_len);
}

int
proto_request_encode(const struct mp_request *rq,
    const uint8_t token[MP_TOKEN_LEN], uint8_t *buf, size_t len)
{
	size_t off, i, need;

	if (!proto_is_request(rq->type) || rq->user_len == 0 ||
	    rq->ctx_len > MP_CONTEXT_MAX ||
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
	if (need < rq->pad_to)
		need = rq->pad_to;
	if (need > len || need > PROTO_MAX_DATAGRAM)
		return -1;
	put_hdr(buf, rq->type);
	buf[4] = rq->key_id;
	buf[5] = rq->user_len;
	put16(buf + 6, rq->ctx_len);
	memcpy(buf + 8, rq->device, PROTO_DEVICE_LEN);
	put64(buf + 24, rq->timestamp);
	memcpy(buf + 32, rq->cookie, PROTO_COOKIE_LEN);
	buf[48] = rq->n_mailboxes;
	buf[49] = buf[50] = buf[51] = 0;
	put32(buf + 52, rq->seq);
	put64(buf + 56, rq->epoch);
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
	memset(buf + off, 0, need - PROTO_MAC_LEN - off);	/* padding */
	put_mac(buf, need - PROTO_MAC_LEN, token);
	return (int)need;
}

int
proto_request_decode(const uint8_t *buf, size_t len, struct mp_request *rq,
    const char **why)
{
	size_t off, end, i;
	int type = proto_type(buf, len);

	if (!proto_is_request(type)) {
		*why = "not a mailpush request";
		return -1;
	}
	if (len < PROTO_REQ_MIN) {
		*why = "request shorter than 97 bytes";
		return -1;
	}
	rq->type = (uint8_t)type;
	rq->key_id = buf[4];
	rq->user_len = buf[5];
	rq->ctx_len = get16(buf + 6);
	memcpy(rq->device, buf + 8, PROTO_DEVICE_LEN);
	rq->timestamp = get64(buf + 24);
	memcpy(rq->cookie, buf + 32, PROTO_COOKIE_LEN);
	rq->n_mailboxes = buf[48];
	rq->seq = get32(buf + 52);
	rq->epoch = get64(buf + 56);
	rq->pad_to = 0;
	if (buf[49] != 0 || buf[50] != 0 || buf[51] != 0) {
		*why = "request has non-zero reserved bytes";
		return -1;
	}
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
	for (; off < end; off++)
		if (buf[off] != 0) {
			*why = "request padding before its MAC is not zero";
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
		if (len < PROTO_COOKIE_DGRAM_LEN)
			return -1;
		put_hdr(buf, rp->type);
		put64(buf + 4, rp->timestamp);
		memcpy(buf + 12, rp->cookie, PROTO_COOKIE_LEN);
		return PROTO_COOKIE_DGRAM_LEN;
	case PROTO_REGISTERED:
		if (len < PROTO_REGISTERED_LEN)
			return -1;
		put_hdr(buf, rp->type);
		put64(buf + 4, rp->timestamp);
		put64(buf + 12, rp->epoch);
		put32(buf + 20, rp->reg_id);
		put32(buf + 24, rp->lifetime);
		put32(buf + 28, rp->seq);
		put16(buf + 32, rp->keepalive_min);
		put16(buf + 34, rp->keepalive_max);
		put_mac(buf, 36, token);
		return PROTO_REGISTERED_LEN;
	case PROTO_REFUSED:
		if (len < PROTO_REFUSED_LEN || rp->reason == 0 ||
		    rp->reason > REASON_MAX)
			return -1;
		put_hdr(buf, rp->type);
		put64(buf + 4, rp->timestamp);
		buf[12] = rp->reason;
		buf[13] = buf[14] = buf[15] = 0;
		put32(buf + 16, rp->limit);
		put64(buf + 20, rp->value);
		put_mac(buf, 28, token);
		return PROTO_REFUSED_LEN;
	case PROTO_PROBE_ECHO:
		if (len < PROTO_PROBE_ECHO_LEN)
			return -1;
		put_hdr(buf, rp->type);
		put64(buf + 4, rp->timestamp);
		put_mac(buf, 12, token);
		return PROTO_PROBE_ECHO_LEN;
	case PROTO_KICK:
		if (len < PROTO_KICK_LEN)
			return -1;
		put_hdr(buf, rp->type);
		put32(buf + 4, rp->reg_id);
		return PROTO_KICK_LEN;
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
		if (len != PROTO_COOKIE_DGRAM_LEN) {
			*why = "COOKIE is not 28 bytes";
			return -1;
		}
		rp->timestamp = get64(buf + 4);
		memcpy(rp->cookie, buf + 12, PROTO_COOKIE_LEN);
		break;
	case PROTO_REGISTERED:
		if (len != PROTO_REGISTERED_LEN) {
			*why = "REGISTERED is not 68 bytes";
			return -1;
		}
		rp->timestamp = get64(buf + 4);
		rp->epoch = get64(buf + 12);
		rp->reg_id = get32(buf + 20);
		rp->lifetime = get32(buf + 24);
		rp->seq = get32(buf + 28);
		rp->keepalive_min = get16(buf + 32);
		rp->keepalive_max = get16(buf + 34);
		break;
	case PROTO_REFUSED:
		if (len != PROTO_REFUSED_LEN) {
			*why = "REFUSED is not 60 bytes";
			return -1;
		}
		rp->timestamp = get64(buf + 4);
		rp->reason = buf[12];
		rp->limit = get32(buf + 16);
		rp->value = get64(buf + 20);
		if (rp->reason == 0 || rp->reason > REASON_MAX) {
			*why = "REFUSED has an unknown reason";
			return -1;
		}
		break;
	case PROTO_PROBE_ECHO:
		if (len != PROTO_PROBE_ECHO_LEN) {
			*why = "PROBE_ECHO is not 44 bytes";
			return -1;
		}
		rp->timestamp = get64(buf + 4);
		break;
	case PROTO_KICK:
		if (len != PROTO_KICK_LEN) {
			*why = "KICK is not 8 bytes";
			return -1;
		}
		rp->reg_id = get32(buf + 4);
		break;
	default:
		*why = "not a mailpush reply";
		return -1;
	}
	rp->type = (uint8_t)type;
	return 0;
}

int
proto_keepalive_encode(uint32_t reg_id, uint8_t *buf, size_t len)
{
	if (len < PROTO_KEEPALIVE_LEN)
		return -1;
	put_hdr(buf, PROTO_KEEPALIVE);
	put32(buf + 4, reg_id);
	return PROTO_KEEPALIVE_LEN;
}

int
proto_keepalive_decode(const uint8_t *buf, size_t len, uint32_t *reg_id,
    const char **why)
{
	if (proto_type(buf, len) != PROTO_KEEPALIVE ||
	    len != PROTO_KEEPALIVE_LEN) {
		*why = "not a KEEPALIVE of 8 bytes";
		return -1;
	}
	*reg_id = get32(buf + 4);
	return 0;
}

int
proto_push_seal_sub(const struct mp_push *p, const uint8_t subkey[32],
    const uint8_t nonce[PROTO_PUSH_NONCE_LEN], uint8_t *buf, size_t len)
{
	uint8_t plain[PROTO_PUSH_PLAIN_FIXED + MP_CONTEXT_MAX];
	uint8_t n12[crypto_aead_chacha20poly1305_IETF_NPUBBYTES] = { 0 };
	size_t plen = PROTO_PUSH_PLAIN_FIXED + (size_t)p->ctx_len;
	size_t need = PROTO_PUSH_LEN(p->ctx_len);
	unsigned long long clen;

	if (p->ctx_len > MP_CONTEXT_MAX || need > len)
		return -1;
	put_hdr(buf, PROTO_PUSH);
	memcpy(buf + PROTO_HDR_LEN, nonce, PROTO_PUSH_NONCE_LEN);
	put64(plain, p->epoch);
	put32(plain + 8, p->reg_id);
	put32(plain + 12, p->seq);
	put32(plain + 16, p->count);
	put32(plain + 20, p->total);
	put64(plain + 24, p->server_time);
	put16(plain + 32, p->flags);
	put16(plain + 34, p->ctx_len);
	memcpy(plain + PROTO_PUSH_PLAIN_FIXED, p->ctx, p->ctx_len);
	memcpy(n12 + 4, nonce + 16, 8);
	crypto_aead_chacha20poly1305_ietf_encrypt(
	    buf + PROTO_HDR_LEN + PROTO_PUSH_NONCE_LEN, &clen, plain, plen,
	    buf, PROTO_HDR_LEN, NULL, n12, subkey);
	if (clen + PROTO_HDR_LEN + PROTO_PUSH_NONCE_LEN != need)
		abort();
	return (int)need;
}

int
proto_push_seal(const struct mp_push *p, const uint8_t key[32],
    const uint8_t nonce[PROTO_PUSH_NONCE_LEN], uint8_t *buf, size_t len)
{
	uint8_t subkey[32];
	int n;

	proto_push_subkey(key, nonce, subkey);
	n = proto_push_seal_sub(p, subkey, nonce, buf, len);
	sodium_memzero(subkey, sizeof(subkey));
	return n;
}

int
proto_push_open(const uint8_t *buf, size_t len, const uint8_t key[32],
    struct mp_push *p, const char **why)
{
	uint8_t plain[PROTO_PUSH_PLAIN_FIXED + MP_CONTEXT_MAX];
	unsigned long long plen;
	const size_t off = PROTO_HDR_LEN + PROTO_PUSH_NONCE_LEN;

	if (proto_type(buf, len) != PROTO_PUSH || len < PROTO_PUSH_FIXED) {
		*why = "not a PUSH or shorter than 80 bytes";
		return -1;
	}
	if (len > PROTO_PUSH_LEN(MP_CONTEXT_MAX)) {
		*why = "PUSH longer than its largest context allows";
		return -1;
	}
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plen, NULL,
	    buf + off, len - off, buf, PROTO_HDR_LEN, buf + PROTO_HDR_LEN,
	    key) != 0) {
		*why = "PUSH does not decrypt under our key";
		return -1;
	}
	p->epoch = get64(plain);
	p->reg_id = get32(plain + 8);
	p->seq = get32(plain + 12);
	p->count = get32(plain + 16);
	p->total = get32(plain + 20);
	p->server_time = get64(plain + 24);
	p->flags = get16(plain + 32);
	p->ctx_len = get16(plain + 34);
	if (p->ctx_len > MP_CONTEXT_MAX ||
	    plen != PROTO_PUSH_PLAIN_FIXED + (size_t)p->ctx_len) {
		*why = "PUSH length does not match its context length";
		return -1;
	}
	memcpy(p->ctx, plain + PROTO_PUSH_PLAIN_FIXED, p->ctx_len);
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
		"replayed or reordered request",
	};

	return reason <= REASON_MAX ? names[reason] : "unknown reason";
}

const char *
proto_type_name(unsigned type)
{
	static const char *names[] = {
		"?", "REGISTER", "REFRESH", "UNREGISTER", "COOKIE",
		"REGISTERED", "REFUSED", "PUSH", "PUSH_ACK", "KEEPALIVE",
		"PROBE", "PROBE_ECHO", "KICK",
	};

	return type <= PROTO_TYPE_MAX ? names[type] : "?";
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
