/*
 * check_proto.c: the UDP protocol codec, version 2 (shared/proto.c),
 * against mailpush-protocol(7): round trips of every message, the example
 * vectors printed in the page, every malformed datagram a decoder must
 * refuse, encoders refusing what they cannot encode, MAC verification,
 * push sealing (a push opens under the right token and device and under
 * nothing else), token derivation and the hex helpers for key and token
 * files.
 *
 * Decoders are always handed a heap copy of exactly the bytes under test,
 * so that a read past the end shows up under `make SANITIZE=1'.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <sodium.h>

#include "proto.h"
#include "wire.h"

Suite	*make_proto_suite(void);

/* The example of mailpush-protocol(7): key 0x00..0x1f, user "alice",
 * device d0..df, epoch 0123456789abcdef, push nonce 40..57. */
static const char alice_token_hex[] =
    "6eefad2bed97b6d93ee663d67a44b460"
    "16b3d79dcad54ada39b61a1d14874d1b";
static const char alice_push_key_hex[] =
    "476fa4e5d08140e82158e46fec37b430"
    "a5ae2e5bf3909c9aa19a155c958e3bc8";
#define EPOCH	0x0123456789abcdefULL

/* EXAMPLES 1: REGISTER, no cookie, padded (151 bytes) */
static const char v_register[] =
    "4d50020101050003d0d1d2d3d4d5d6d7d8d9dadbdcdddedf0000018bcfe56800"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "616c696365637478000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000035632deb23d1f69d36"
    "94e6b42bc1d5382a892f9f29e83c7186d031ab31ab7ca0";

/* EXAMPLES 2: COOKIE (28 bytes) */
static const char v_cookie[] =
    "4d5002040000018bcfe56800a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";

/* EXAMPLES 3: REGISTER with cookie and mailbox INBOX, padded (151 bytes) */
static const char v_register2[] =
    "4d50020101050003d0d1d2d3d4d5d6d7d8d9dadbdcdddedf0000018bcfe56801"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf01000000000000000000000000000000"
    "616c69636563747805494e424f58000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000e70bc73952c7732071"
    "653d41c614b2a64091729a9a99f7ac5162bbefc27eadde";

/* EXAMPLES 4: REGISTERED (68 bytes) */
static const char v_registered[] =
    "4d5002050000018bcfe568010123456789abcdef0000002a0000025800000000"
    "000f012c9b0e03f8e34c5576d279db9df027242ad33c88079e1a82b4be2e5820"
    "b14cdd99";

/* EXAMPLES 5: PUSH (83 bytes) */
static const char v_push[] =
    "4d500207404142434445464748494a4b4c4d4e4f50515253545556573e6e9023"
    "da060fead340d911a749994346b8df2768531d72f9de0c3e1c4a6a31ef85c32d"
    "7ec29f29d5c7ec37a8296e8afcd3f75992508e";

/* EXAMPLES 6: PUSH_ACK (101 bytes) */
static const char v_ack[] =
    "4d50020801050000d0d1d2d3d4d5d6d7d8d9dadbdcdddedf0000018bcfe65454"
    "0000000000000000000000000000000000000000000000010123456789abcdef"
    "616c696365847b4e7930294788ea170e8a721d7491f7b12eb5da9af6f8359bb8"
    "29a80d72e0";

/* EXAMPLES 7: KEEPALIVE (8 bytes) */
static const char v_keepalive[] =
    "4d5002090000002a";

/* EXAMPLES 8: PROBE, 30 seconds, padded (151 bytes) */
static const char v_probe[] =
    "4d50020a01050003d0d1d2d3d4d5d6d7d8d9dadbdcdddedf0000018bcfe67970"
    "00000000000000000000000000000000000000000000001e0000000000000000"
    "616c696365637478000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000003912e386de54cb6103"
    "31076b29fc945c4725e467432857e52559692104c174af";

/* EXAMPLES 9: PROBE_ECHO (44 bytes) */
static const char v_probe_echo[] =
    "4d50020b0000018bcfe67970510a2399e74f2d1880e97dd1fde7c7f4b6a46393"
    "8284c49e947999a3bc4d21d1";

/* EXAMPLES 10: KICK (8 bytes) */
static const char v_kick[] =
    "4d50020c0000002a";

/* EXAMPLES 11: REFUSED TOO_MANY limit 8 (60 bytes) */
static const char v_refused[] =
    "4d5002060000018bcfe9fbe003000000000000080000000000000000af1c523a"
    "3ca027f67d8929fd9e3bf2648d4e4142baa6a9cd289f79a78c734719";

static uint8_t	key[MP_KEY_LEN];
static uint8_t	token[MP_TOKEN_LEN];
static uint8_t	device[PROTO_DEVICE_LEN];
static uint8_t	pkey[32];
static uint8_t	nonce[PROTO_PUSH_NONCE_LEN];

static void
setup(void)
{
	int i;

	ck_assert_int_ne(sodium_init(), -1);
	for (i = 0; i < MP_KEY_LEN; i++)
		key[i] = (uint8_t)i;
	for (i = 0; i < PROTO_DEVICE_LEN; i++)
		device[i] = (uint8_t)(0xd0 + i);
	for (i = 0; i < PROTO_PUSH_NONCE_LEN; i++)
		nonce[i] = (uint8_t)(0x40 + i);
	proto_token(key, "alice", 5, token);
	proto_push_key(token, pkey);
}

/* A heap copy of exactly len bytes (for the sanitizer). */
static uint8_t *
dup_bytes(const uint8_t *p, size_t len)
{
	uint8_t *q = malloc(len ? len : 1);

	ck_assert_ptr_nonnull(q);
	memcpy(q, p, len);
	return q;
}

static size_t
unhex(const char *hex, uint8_t *out, size_t max)
{
	size_t len;

	ck_assert_int_eq(sodium_hex2bin(out, max, hex, strlen(hex), NULL,
	    &len, NULL), 0);
	return len;
}

static void
req_fill(struct mp_request *rq, uint8_t type, const char *user,
    const char *ctx, size_t nbox)
{
	size_t i;

	memset(rq, 0, sizeof(*rq));
	rq->type = type;
	rq->key_id = 1;
	memcpy(rq->device, device, sizeof(device));
	rq->timestamp = 1700000000000ULL;
	rq->user_len = (uint8_t)strlen(user);
	memcpy(rq->user, user, rq->user_len);
	rq->ctx_len = (uint16_t)strlen(ctx);
	memcpy(rq->ctx, ctx, rq->ctx_len);
	for (i = 0; i < nbox; i++) {
		rq->mailboxes[i].len = (uint8_t)snprintf(rq->mailboxes[i].name,
		    sizeof(rq->mailboxes[i].name), "box%zu", i);
	}
	rq->n_mailboxes = (uint8_t)nbox;
}

/* Every decoder on these bytes: how many accepted them. */
static unsigned
decode_all(const uint8_t *buf, size_t len)
{
	static struct mp_request rq;
	static struct mp_push p;
	struct mp_reply rp;
	const char *why;
	uint8_t *copy = dup_bytes(buf, len);
	uint32_t id;
	unsigned n = 0;

	n += proto_request_decode(copy, len, &rq, &why) == 0;
	n += proto_reply_decode(copy, len, &rp, &why) == 0;
	n += proto_keepalive_decode(copy, len, &id, &why) == 0;
	n += proto_push_open(copy, len, pkey, &p, &why) == 0;
	free(copy);
	return n;
}

static void
request_bad(const uint8_t *buf, size_t len, const char *what)
{
	static struct mp_request rq;
	const char *why = NULL;
	uint8_t *copy = dup_bytes(buf, len);

	ck_assert_msg(proto_request_decode(copy, len, &rq, &why) == -1,
	    "%s: accepted", what);
	ck_assert_ptr_nonnull(why);
	free(copy);
}

/* Core */

START_TEST(test_request_round_trip)
{
	static const uint8_t types[] = { PROTO_REGISTER, PROTO_REFRESH,
	    PROTO_UNREGISTER, PROTO_PUSH_ACK, PROTO_PROBE };
	static struct mp_request rq, out;
	uint8_t buf[PROTO_MAX_DATAGRAM], *copy;
	const char *why;
	size_t nbox = (size_t)_i % (MP_MAILBOXES_MAX + 1);
	int n, pad = _i / (MP_MAILBOXES_MAX + 1) % 2;
	unsigned t;

	for (t = 0; t < sizeof(types); t++) {
		req_fill(&rq, types[t], "alice", "context", nbox);
		rq.seq = 7;
		rq.epoch = EPOCH;
		rq.cookie[3] = 0x99;
		if (pad)
			rq.pad_to = (uint16_t)proto_request_pad(rq.ctx_len);
		n = proto_request_encode(&rq, token, buf, sizeof(buf));
		ck_assert_int_gt(n, 0);
		if (pad)
			ck_assert_int_ge(n, (int)proto_request_pad(7));
		ck_assert_int_eq(proto_type(buf, (size_t)n), types[t]);
		ck_assert(proto_is_request(types[t]));
		ck_assert_int_eq(proto_verify(buf, (size_t)n, token), 0);
		copy = dup_bytes(buf, (size_t)n);
		ck_assert_int_eq(proto_request_decode(copy, (size_t)n, &out,
		    &why), 0);
		free(copy);
		ck_assert_int_eq(out.type, types[t]);
		ck_assert_int_eq(out.key_id, 1);
		ck_assert_mem_eq(out.device, device, sizeof(device));
		ck_assert_uint_eq(out.timestamp, rq.timestamp);
		ck_assert_mem_eq(out.cookie, rq.cookie, PROTO_COOKIE_LEN);
		ck_assert_uint_eq(out.seq, 7);
		ck_assert_uint_eq(out.epoch, EPOCH);
		ck_assert_str_eq(out.user, "alice");
		ck_assert_int_eq(out.ctx_len, 7);
		ck_assert_mem_eq(out.ctx, "context", 7);
		ck_assert_int_eq(out.n_mailboxes, nbox);
		if (nbox > 0)
			ck_assert_str_eq(out.mailboxes[nbox - 1].name,
			    rq.mailboxes[nbox - 1].name);
	}
}
END_TEST

START_TEST(test_request_limits)
{
	static struct mp_request rq, out;
	uint8_t buf[PROTO_MAX_DATAGRAM];
	const char *why;
	int n;

	/* the largest context and user name still fit, padded */
	req_fill(&rq, PROTO_REGISTER, "u", "", 0);
	rq.user_len = MP_USER_MAX;
	memset(rq.user, 'u', MP_USER_MAX);
	rq.ctx_len = MP_CONTEXT_MAX - MP_USER_MAX;
	memset(rq.ctx, 'c', rq.ctx_len);
	rq.pad_to = (uint16_t)proto_request_pad(rq.ctx_len);
	n = proto_request_encode(&rq, token, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(proto_request_decode(buf, (size_t)n, &out, &why), 0);
	/* a whole 1024-byte context padded fits in 1232 bytes */
	ck_assert_uint_le(proto_request_pad(MP_CONTEXT_MAX),
	    PROTO_MAX_DATAGRAM);
	req_fill(&rq, PROTO_REGISTER, "alice", "", 0);
	rq.ctx_len = MP_CONTEXT_MAX;
	rq.pad_to = (uint16_t)proto_request_pad(rq.ctx_len);
	ck_assert_int_gt(proto_request_encode(&rq, token, buf, sizeof(buf)),
	    0);
}
END_TEST

START_TEST(test_reply_round_trip)
{
	struct mp_reply rp, out;
	uint8_t buf[128], *copy;
	const char *why;
	static const uint8_t types[] = { PROTO_COOKIE, PROTO_REGISTERED,
	    PROTO_REFUSED, PROTO_PROBE_ECHO, PROTO_KICK };
	static const int lens[] = { PROTO_COOKIE_DGRAM_LEN,
	    PROTO_REGISTERED_LEN, PROTO_REFUSED_LEN, PROTO_PROBE_ECHO_LEN,
	    PROTO_KICK_LEN };
	unsigned i;
	int n;

	for (i = 0; i < sizeof(types); i++) {
		memset(&rp, 0, sizeof(rp));
		rp.type = types[i];
		rp.timestamp = 1700000000123ULL;
		memset(rp.cookie, 0x5a, sizeof(rp.cookie));
		rp.epoch = EPOCH;
		rp.reg_id = 0xdeadbeef;
		rp.lifetime = 600;
		rp.seq = 9;
		rp.keepalive_min = 15;
		rp.keepalive_max = 300;
		rp.reason = REASON_REPLAY;
		rp.limit = 8;
		rp.value = 1700000000999ULL;
		n = proto_reply_encode(&rp, token, buf, sizeof(buf));
		ck_assert_int_eq(n, lens[i]);
		copy = dup_bytes(buf, (size_t)n);
		ck_assert_int_eq(proto_reply_decode(copy, (size_t)n, &out,
		    &why), 0);
		free(copy);
		ck_assert_int_eq(out.type, types[i]);
		switch (types[i]) {
		case PROTO_COOKIE:
			ck_assert_uint_eq(out.timestamp, rp.timestamp);
			ck_assert_mem_eq(out.cookie, rp.cookie,
			    PROTO_COOKIE_LEN);
			break;
		case PROTO_REGISTERED:
			ck_assert_uint_eq(out.timestamp, rp.timestamp);
			ck_assert_uint_eq(out.epoch, EPOCH);
			ck_assert_uint_eq(out.reg_id, rp.reg_id);
			ck_assert_uint_eq(out.lifetime, 600);
			ck_assert_uint_eq(out.seq, 9);
			ck_assert_uint_eq(out.keepalive_min, 15);
			ck_assert_uint_eq(out.keepalive_max, 300);
			ck_assert_int_eq(proto_verify(buf, (size_t)n, token),
			    0);
			break;
		case PROTO_REFUSED:
			ck_assert_uint_eq(out.reason, REASON_REPLAY);
			ck_assert_uint_eq(out.limit, 8);
			ck_assert_uint_eq(out.value, rp.value);
			ck_assert_int_eq(proto_verify(buf, (size_t)n, token),
			    0);
			break;
		case PROTO_PROBE_ECHO:
			ck_assert_uint_eq(out.timestamp, rp.timestamp);
			ck_assert_int_eq(proto_verify(buf, (size_t)n, token),
			    0);
			break;
		case PROTO_KICK:
			ck_assert_uint_eq(out.reg_id, rp.reg_id);
			break;
		}
	}
}
END_TEST

START_TEST(test_push_round_trip)
{
	static struct mp_push p, out;
	uint8_t buf[PROTO_MAX_DATAGRAM], *copy;
	const char *why;
	size_t len;
	int n;

	for (len = 0; len <= MP_CONTEXT_MAX; len += 341) {
		memset(&p, 0, sizeof(p));
		p.epoch = EPOCH;
		p.reg_id = 0x2a;
		p.seq = 3;
		p.count = 4;
		p.total = 5;
		p.server_time = 1700000060;
		p.flags = PUSH_FLAG_COUNT_UNKNOWN;
		p.ctx_len = (uint16_t)len;
		memset(p.ctx, 'q', len);
		n = proto_push_seal(&p, pkey, nonce, buf, sizeof(buf));
		ck_assert_int_eq(n, (int)PROTO_PUSH_LEN(len));
		copy = dup_bytes(buf, (size_t)n);
		ck_assert_int_eq(proto_push_open(copy, (size_t)n, pkey, &out,
		    &why), 0);
		free(copy);
		ck_assert_uint_eq(out.epoch, EPOCH);
		ck_assert_uint_eq(out.reg_id, 0x2a);
		ck_assert_uint_eq(out.seq, 3);
		ck_assert_uint_eq(out.count, 4);
		ck_assert_uint_eq(out.total, 5);
		ck_assert_uint_eq(out.server_time, 1700000060);
		ck_assert_uint_eq(out.flags, PUSH_FLAG_COUNT_UNKNOWN);
		ck_assert_uint_eq(out.ctx_len, len);
		ck_assert_mem_eq(out.ctx, p.ctx, len);
		/* nothing of the plaintext shows on the wire */
		ck_assert_ptr_null(memmem(buf, (size_t)n, "\x00\x00\x00\x2a",
		    4));
	}
}
END_TEST

/*
 * Item 6 of issue 13: a push read by a party without the token is
 * unreadable; with the right token it opens (every device of the user has
 * the token; the reg_id inside says whose registration it is for).
 */
START_TEST(test_push_wrong_token)
{
	static struct mp_push p, out;
	uint8_t buf[PROTO_MAX_DATAGRAM], other[MP_TOKEN_LEN], k2[32];
	const char *why;
	int n;

	memset(&p, 0, sizeof(p));
	p.epoch = EPOCH;
	p.reg_id = 0x2a;
	p.seq = 1;
	p.count = 2;
	p.total = 2;
	p.ctx_len = 3;
	memcpy(p.ctx, "ctx", 3);
	n = proto_push_seal(&p, pkey, nonce, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_ptr_null(memmem(buf, (size_t)n, "ctx", 3));
	/* the right token */
	ck_assert_int_eq(proto_push_open(buf, (size_t)n, pkey, &out, &why),
	    0);
	ck_assert_uint_eq(out.reg_id, 0x2a);
	/* bob's token */
	proto_token(key, "bob", 3, other);
	proto_push_key(other, k2);
	ck_assert_int_eq(proto_push_open(buf, (size_t)n, k2, &out, &why), -1);
	ck_assert_str_eq(why, "PUSH does not decrypt under our key");
	/* a token from another server key */
	key[0] ^= 1;
	proto_token(key, "alice", 5, other);
	key[0] ^= 1;
	proto_push_key(other, k2);
	ck_assert_int_eq(proto_push_open(buf, (size_t)n, k2, &out, &why), -1);
	/* the token itself is not the key */
	ck_assert_int_eq(proto_push_open(buf, (size_t)n, token, &out, &why),
	    -1);
}
END_TEST

/*
 * The daemon seals under a kept HChaCha20 subkey (proto_push_seal_sub):
 * the datagram must be libsodium's XChaCha20-Poly1305 byte for byte, for
 * any key, nonce and context length.
 */
START_TEST(test_push_subkey_is_xchacha)
{
	static struct mp_push p;
	uint8_t a[PROTO_MAX_DATAGRAM], b[PROTO_MAX_DATAGRAM];
	uint8_t c[PROTO_MAX_DATAGRAM], k[32], sub[32];
	uint8_t n24[PROTO_PUSH_NONCE_LEN], plain[64 + MP_CONTEXT_MAX];
	unsigned long long clen;
	int i, na, nb;

	for (i = 0; i < 200; i++) {
		memset(&p, 0, sizeof(p));
		randombytes_buf(k, sizeof(k));
		randombytes_buf(n24, sizeof(n24));
		p.epoch = randombytes_random();
		p.reg_id = randombytes_random();
		p.seq = (uint32_t)i;
		p.ctx_len = (uint16_t)randombytes_uniform(MP_CONTEXT_MAX + 1);
		randombytes_buf(p.ctx, p.ctx_len);
		proto_push_subkey(k, n24, sub);
		na = proto_push_seal(&p, k, n24, a, sizeof(a));
		nb = proto_push_seal_sub(&p, sub, n24, b, sizeof(b));
		ck_assert_int_eq(na, (int)PROTO_PUSH_LEN(p.ctx_len));
		ck_assert_int_eq(na, nb);
		ck_assert_mem_eq(a, b, (size_t)na);
		/* and libsodium's XChaCha20-Poly1305 of the same plaintext
		 * under the key itself gives the same ciphertext */
		ck_assert_int_eq(crypto_aead_xchacha20poly1305_ietf_decrypt(
		    plain, &clen, NULL, a + PROTO_HDR_LEN + PROTO_PUSH_NONCE_LEN,
		    (size_t)na - PROTO_HDR_LEN - PROTO_PUSH_NONCE_LEN, a,
		    PROTO_HDR_LEN, n24, k), 0);
		crypto_aead_xchacha20poly1305_ietf_encrypt(c, &clen, plain,
		    clen, a, PROTO_HDR_LEN, NULL, n24, k);
		ck_assert_mem_eq(c, a + PROTO_HDR_LEN + PROTO_PUSH_NONCE_LEN,
		    (size_t)clen);
	}
}
END_TEST

START_TEST(test_type_and_names)
{
	uint8_t buf[8] = { 0x4d, 0x50, 0x02, 0, 0, 0, 0, 0 };
	int t;

	for (t = 0; t <= 255; t++) {
		buf[3] = (uint8_t)t;
		ck_assert_int_eq(proto_type(buf, sizeof(buf)),
		    t >= 1 && t <= PROTO_TYPE_MAX ? t : -1);
	}
	ck_assert_str_eq(proto_type_name(PROTO_KEEPALIVE), "KEEPALIVE");
	ck_assert_str_eq(proto_type_name(PROTO_KICK), "KICK");
	ck_assert_str_eq(proto_type_name(PROTO_TYPE_MAX + 1), "?");
	ck_assert_str_eq(proto_reason_name(REASON_REPLAY),
	    "replayed or reordered request");
	ck_assert_str_eq(proto_reason_name(REASON_MAX + 1), "unknown reason");
	ck_assert(!proto_is_request(PROTO_KEEPALIVE));
	ck_assert(!proto_is_request(PROTO_COOKIE));
	ck_assert_uint_eq(proto_request_pad(3), 68 + 80 + 3);
}
END_TEST

/* The hex dumps of mailpush-protocol(7) EXAMPLES, computed by the code. */
START_TEST(test_page_vectors)
{
	static struct mp_request rq, out;
	struct mp_reply rp;
	static struct mp_push p;
	uint8_t buf[PROTO_MAX_DATAGRAM], want[PROTO_MAX_DATAGRAM];
	char hex[2 * MP_TOKEN_LEN + 1];
	const char *why;
	size_t wl;
	int n;

	proto_hex_encode(token, sizeof(token), hex);
	ck_assert_str_eq(hex, alice_token_hex);
	proto_hex_encode(pkey, sizeof(pkey), hex);
	ck_assert_str_eq(hex, alice_push_key_hex);

	req_fill(&rq, PROTO_REGISTER, "alice", "ctx", 0);
	rq.pad_to = (uint16_t)proto_request_pad(3);
	n = proto_request_encode(&rq, token, buf, sizeof(buf));
	wl = unhex(v_register, want, sizeof(want));
	ck_assert_int_eq(n, (int)wl);
	ck_assert_mem_eq(buf, want, wl);

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_COOKIE;
	rp.timestamp = rq.timestamp;
	for (n = 0; n < PROTO_COOKIE_LEN; n++)
		rp.cookie[n] = (uint8_t)(0xa0 + n);
	n = proto_reply_encode(&rp, NULL, buf, sizeof(buf));
	wl = unhex(v_cookie, want, sizeof(want));
	ck_assert_int_eq(n, (int)wl);
	ck_assert_mem_eq(buf, want, wl);

	rq.timestamp++;
	memcpy(rq.cookie, rp.cookie, PROTO_COOKIE_LEN);
	rq.n_mailboxes = 1;
	rq.mailboxes[0].len = 5;
	memcpy(rq.mailboxes[0].name, "INBOX", 6);
	n = proto_request_encode(&rq, token, buf, sizeof(buf));
	wl = unhex(v_register2, want, sizeof(want));
	ck_assert_int_eq(n, (int)wl);
	ck_assert_mem_eq(buf, want, wl);
	ck_assert_int_eq(proto_request_decode(want, wl, &out, &why), 0);
	ck_assert_str_eq(out.mailboxes[0].name, "INBOX");

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_REGISTERED;
	rp.timestamp = rq.timestamp;
	rp.epoch = EPOCH;
	rp.reg_id = 0x2a;
	rp.lifetime = 600;
	rp.keepalive_min = 15;
	rp.keepalive_max = 300;
	n = proto_reply_encode(&rp, token, buf, sizeof(buf));
	wl = unhex(v_registered, want, sizeof(want));
	ck_assert_int_eq(n, (int)wl);
	ck_assert_mem_eq(buf, want, wl);

	memset(&p, 0, sizeof(p));
	p.epoch = EPOCH;
	p.reg_id = 0x2a;
	p.seq = 1;
	p.count = 2;
	p.total = 2;
	p.server_time = 1700000060;
	p.ctx_len = 3;
	memcpy(p.ctx, "ctx", 3);
	n = proto_push_seal(&p, pkey, nonce, buf, sizeof(buf));
	wl = unhex(v_push, want, sizeof(want));
	ck_assert_int_eq(n, (int)wl);
	ck_assert_mem_eq(buf, want, wl);

	req_fill(&rq, PROTO_PUSH_ACK, "alice", "", 0);
	rq.timestamp = 1700000060500ULL;
	rq.seq = 1;
	rq.epoch = EPOCH;
	n = proto_request_encode(&rq, token, buf, sizeof(buf));
	wl = unhex(v_ack, want, sizeof(want));
	ck_assert_int_eq(n, (int)wl);
	ck_assert_mem_eq(buf, want, wl);

	n = proto_keepalive_encode(0x2a, buf, sizeof(buf));
	wl = unhex(v_keepalive, want, sizeof(want));
	ck_assert_int_eq(n, (int)wl);
	ck_assert_mem_eq(buf, want, wl);

	req_fill(&rq, PROTO_PROBE, "alice", "ctx", 0);
	rq.timestamp = 1700000070000ULL;
	rq.seq = 30;
	rq.pad_to = (uint16_t)proto_request_pad(3);
	n = proto_request_encode(&rq, token, buf, sizeof(buf));
	wl = unhex(v_probe, want, sizeof(want));
	ck_assert_int_eq(n, (int)wl);
	ck_assert_mem_eq(buf, want, wl);

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_PROBE_ECHO;
	rp.timestamp = rq.timestamp;
	n = proto_reply_encode(&rp, token, buf, sizeof(buf));
	wl = unhex(v_probe_echo, want, sizeof(want));
	ck_assert_int_eq(n, (int)wl);
	ck_assert_mem_eq(buf, want, wl);

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_KICK;
	rp.reg_id = 0x2a;
	n = proto_reply_encode(&rp, NULL, buf, sizeof(buf));
	wl = unhex(v_kick, want, sizeof(want));
	ck_assert_int_eq(n, (int)wl);
	ck_assert_mem_eq(buf, want, wl);

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_REFUSED;
	rp.timestamp = 1700000300000ULL;
	rp.reason = REASON_TOO_MANY;
	rp.limit = 8;
	n = proto_reply_encode(&rp, token, buf, sizeof(buf));
	wl = unhex(v_refused, want, sizeof(want));
	ck_assert_int_eq(n, (int)wl);
	ck_assert_mem_eq(buf, want, wl);
}
END_TEST

/* Malformed */

/* Every prefix of every example is refused by every decoder. */
START_TEST(test_truncated)
{
	static const char *const vecs[] = { v_register, v_cookie,
	    v_register2, v_registered, v_push, v_ack, v_keepalive, v_probe,
	    v_probe_echo, v_kick, v_refused };
	uint8_t buf[PROTO_MAX_DATAGRAM];
	size_t i, len, k;

	for (i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++) {
		len = unhex(vecs[i], buf, sizeof(buf));
		ck_assert_uint_eq(decode_all(buf, len), 1);
		for (k = 0; k < len; k++) {
			/* a padded request cut inside its padding is still
			 * a request, with a MAC that does not verify */
			unsigned n = decode_all(buf, k);

			if (n != 0) {
				static struct mp_request rq;
				const char *why;

				ck_assert(proto_request_decode(buf, k, &rq,
				    &why) == 0);
				ck_assert_int_ne(proto_verify(buf, k, token),
				    0);
			}
		}
	}
}
END_TEST

START_TEST(test_oversized)
{
	uint8_t buf[PROTO_MAX_DATAGRAM + 2];
	size_t len;

	memset(buf, 0, sizeof(buf));
	len = unhex(v_registered, buf, sizeof(buf));
	ck_assert_uint_eq(decode_all(buf, len + 1), 0);
	ck_assert_uint_eq(decode_all(buf, PROTO_MAX_DATAGRAM + 1), 0);
	len = unhex(v_keepalive, buf, sizeof(buf));
	ck_assert_uint_eq(decode_all(buf, len + 1), 0);
	len = unhex(v_kick, buf, sizeof(buf));
	ck_assert_uint_eq(decode_all(buf, len + 1), 0);
	len = unhex(v_push, buf, sizeof(buf));
	ck_assert_uint_eq(decode_all(buf, len + 1), 0);
}
END_TEST

START_TEST(test_bad_header)
{
	static const char *const vecs[] = { v_register, v_cookie,
	    v_registered, v_push, v_ack, v_keepalive, v_probe_echo, v_kick,
	    v_refused };
	uint8_t buf[PROTO_MAX_DATAGRAM];
	size_t i, len;

	for (i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++) {
		len = unhex(vecs[i], buf, sizeof(buf));
		buf[0] ^= 1;
		ck_assert_uint_eq(decode_all(buf, len), 0);
		buf[0] ^= 1;
		buf[2] = 1;	/* version 1 is gone */
		ck_assert_uint_eq(decode_all(buf, len), 0);
		buf[2] = 3;
		ck_assert_uint_eq(decode_all(buf, len), 0);
		buf[2] = 2;
		buf[3] = 0;
		ck_assert_uint_eq(decode_all(buf, len), 0);
		buf[3] = PROTO_TYPE_MAX + 1;
		ck_assert_uint_eq(decode_all(buf, len), 0);
	}
}
END_TEST

START_TEST(test_request_fields)
{
	static struct mp_request rq;
	uint8_t good[PROTO_MAX_DATAGRAM], buf[PROTO_MAX_DATAGRAM];
	int n;

	req_fill(&rq, PROTO_REGISTER, "alice", "ctx", 1);
	n = proto_request_encode(&rq, token, good, sizeof(good));
	ck_assert_int_gt(n, 0);
#define BAD(off, val, what) do {					\
	memcpy(buf, good, (size_t)n);					\
	buf[off] = (val);						\
	request_bad(buf, (size_t)n, what);				\
} while (0)
	BAD(5, 0, "empty user name");
	BAD(5, 200, "user name longer than the datagram");
	BAD(6, 0x04, "context longer than 1024");
	BAD(7, 0xff, "context longer than the datagram");
	BAD(48, 17, "more than 16 mailboxes");
	BAD(48, 2, "a mailbox that is not there");
	BAD(49, 1, "reserved byte 49");
	BAD(50, 1, "reserved byte 50");
	BAD(51, 1, "reserved byte 51");
	BAD(64, 0, "NUL in the user name");
	BAD(72, 0, "empty mailbox name");
	BAD(72, 30, "mailbox name longer than the datagram");
	BAD(73, 0, "NUL in a mailbox name");
#undef BAD
	/* padding must be zeros */
	rq.pad_to = (uint16_t)proto_request_pad(3);
	n = proto_request_encode(&rq, token, good, sizeof(good));
	memcpy(buf, good, (size_t)n);
	buf[n - PROTO_MAC_LEN - 1] = 1;
	request_bad(buf, (size_t)n, "non-zero padding");
	/* a reply type is no request */
	memcpy(buf, good, (size_t)n);
	buf[3] = PROTO_REGISTERED;
	request_bad(buf, (size_t)n, "REGISTERED as a request");
	buf[3] = PROTO_KEEPALIVE;
	request_bad(buf, (size_t)n, "KEEPALIVE as a request");
}
END_TEST

START_TEST(test_reply_fields)
{
	struct mp_reply rp;
	uint8_t buf[PROTO_MAX_DATAGRAM];
	const char *why;
	size_t len;

	len = unhex(v_refused, buf, sizeof(buf));
	buf[12] = 0;
	ck_assert_int_eq(proto_reply_decode(buf, len, &rp, &why), -1);
	buf[12] = REASON_MAX + 1;
	ck_assert_int_eq(proto_reply_decode(buf, len, &rp, &why), -1);
	ck_assert_str_eq(why, "REFUSED has an unknown reason");
	buf[12] = REASON_MAX;
	ck_assert_int_eq(proto_reply_decode(buf, len, &rp, &why), 0);
	/* a request is no reply */
	len = unhex(v_ack, buf, sizeof(buf));
	ck_assert_int_eq(proto_reply_decode(buf, len, &rp, &why), -1);
}
END_TEST

START_TEST(test_push_fields)
{
	static struct mp_push p;
	uint8_t buf[PROTO_MAX_DATAGRAM];
	const char *why;
	size_t len, i;

	/* any bit flipped anywhere: refused */
	len = unhex(v_push, buf, sizeof(buf));
	for (i = 0; i < len * 8; i++) {
		buf[i / 8] ^= (uint8_t)(1 << (i % 8));
		ck_assert_int_eq(proto_push_open(buf, len, pkey, &p, &why),
		    -1);
		buf[i / 8] ^= (uint8_t)(1 << (i % 8));
	}
	ck_assert_int_eq(proto_push_open(buf, len, pkey, &p, &why), 0);
	/* a context length that lies, sealed properly, is refused */
	memset(&p, 0, sizeof(p));
	p.ctx_len = 3;
	ck_assert_int_gt(proto_push_seal(&p, pkey, nonce, buf, sizeof(buf)),
	    0);
}
END_TEST

/* Encoders */

START_TEST(test_request_encode_refuses)
{
	static struct mp_request rq;
	uint8_t buf[PROTO_MAX_DATAGRAM];

	req_fill(&rq, PROTO_REGISTER, "alice", "ctx", 0);
	ck_assert_int_eq(proto_request_encode(&rq, token, buf, 50), -1);
	rq.type = PROTO_COOKIE;
	ck_assert_int_eq(proto_request_encode(&rq, token, buf, sizeof(buf)),
	    -1);
	rq.type = PROTO_KEEPALIVE;
	ck_assert_int_eq(proto_request_encode(&rq, token, buf, sizeof(buf)),
	    -1);
	req_fill(&rq, PROTO_REGISTER, "alice", "ctx", 0);
	rq.user_len = 0;
	ck_assert_int_eq(proto_request_encode(&rq, token, buf, sizeof(buf)),
	    -1);
	req_fill(&rq, PROTO_REGISTER, "alice", "ctx", 0);
	rq.user[1] = '\0';
	ck_assert_int_eq(proto_request_encode(&rq, token, buf, sizeof(buf)),
	    -1);
	req_fill(&rq, PROTO_REGISTER, "alice", "ctx", 0);
	rq.ctx_len = MP_CONTEXT_MAX + 1;
	ck_assert_int_eq(proto_request_encode(&rq, token, buf, sizeof(buf)),
	    -1);
	req_fill(&rq, PROTO_REGISTER, "alice", "ctx", 1);
	rq.mailboxes[0].len = 0;
	ck_assert_int_eq(proto_request_encode(&rq, token, buf, sizeof(buf)),
	    -1);
	req_fill(&rq, PROTO_REGISTER, "alice", "ctx", 0);
	rq.n_mailboxes = MP_MAILBOXES_MAX + 1;
	ck_assert_int_eq(proto_request_encode(&rq, token, buf, sizeof(buf)),
	    -1);
	req_fill(&rq, PROTO_REGISTER, "alice", "ctx", 0);
	rq.pad_to = PROTO_MAX_DATAGRAM + 1;
	ck_assert_int_eq(proto_request_encode(&rq, token, buf, sizeof(buf)),
	    -1);
}
END_TEST

START_TEST(test_reply_encode_refuses)
{
	struct mp_reply rp;
	uint8_t buf[128];
	static struct mp_push p;

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_REFUSED;
	ck_assert_int_eq(proto_reply_encode(&rp, token, buf, sizeof(buf)),
	    -1);
	rp.reason = REASON_MAX + 1;
	ck_assert_int_eq(proto_reply_encode(&rp, token, buf, sizeof(buf)),
	    -1);
	rp.reason = REASON_AUTH;
	ck_assert_int_eq(proto_reply_encode(&rp, token, buf,
	    PROTO_REFUSED_LEN - 1), -1);
	rp.type = PROTO_PUSH;
	ck_assert_int_eq(proto_reply_encode(&rp, token, buf, sizeof(buf)),
	    -1);
	rp.type = PROTO_REGISTERED;
	ck_assert_int_eq(proto_reply_encode(&rp, token, buf,
	    PROTO_REGISTERED_LEN - 1), -1);
	ck_assert_int_eq(proto_keepalive_encode(1, buf, 7), -1);
	memset(&p, 0, sizeof(p));
	p.ctx_len = MP_CONTEXT_MAX + 1;
	ck_assert_int_eq(proto_push_seal(&p, pkey, nonce, buf, sizeof(buf)),
	    -1);
	p.ctx_len = 100;
	ck_assert_int_eq(proto_push_seal(&p, pkey, nonce, buf, sizeof(buf)),
	    -1);
}
END_TEST

START_TEST(test_null_token)
{
	static struct mp_request rq;
	uint8_t buf[PROTO_MAX_DATAGRAM], zero[PROTO_MAC_LEN];
	int n;

	memset(zero, 0, sizeof(zero));
	req_fill(&rq, PROTO_REFRESH, "alice", "", 0);
	n = proto_request_encode(&rq, NULL, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_mem_eq(buf + n - PROTO_MAC_LEN, zero, PROTO_MAC_LEN);
	ck_assert_int_ne(proto_verify(buf, (size_t)n, token), 0);
}
END_TEST

/* Crypto */

START_TEST(test_verify_bit_flips)
{
	uint8_t buf[PROTO_MAX_DATAGRAM];
	size_t len, i;

	len = unhex(v_register2, buf, sizeof(buf));
	ck_assert_int_eq(proto_verify(buf, len, token), 0);
	for (i = 0; i < len * 8; i++) {
		buf[i / 8] ^= (uint8_t)(1 << (i % 8));
		ck_assert_int_ne(proto_verify(buf, len, token), 0);
		buf[i / 8] ^= (uint8_t)(1 << (i % 8));
	}
	ck_assert_int_ne(proto_verify(buf, 10, token), 0);
}
END_TEST

/* HMAC-SHA256 of the name under the key, nothing else. */
START_TEST(test_token_known_answer)
{
	uint8_t t[MP_TOKEN_LEN], direct[crypto_auth_hmacsha256_BYTES];
	uint8_t fixed[MP_TOKEN_LEN];
	char hex[2 * MP_TOKEN_LEN + 1];

	ck_assert_int_eq(proto_hex_decode(alice_token_hex, fixed,
	    sizeof(fixed)), 0);
	proto_token(key, "alice", 5, t);
	crypto_auth_hmacsha256(direct, (const unsigned char *)"alice", 5, key);
	ck_assert_mem_eq(t, direct, sizeof(t));
	ck_assert_mem_eq(t, fixed, sizeof(t));
	proto_hex_encode(t, sizeof(t), hex);
	ck_assert_str_eq(hex, alice_token_hex);

	/* Only the given bytes count: no terminator, no normalising. */
	proto_token(key, "alice@example.com", 5, t);
	ck_assert_mem_eq(t, fixed, sizeof(t));
	proto_token(key, "Alice", 5, t);
	ck_assert_mem_ne(t, fixed, sizeof(t));
	proto_token(key, "alice", 6, t);
	ck_assert_mem_ne(t, fixed, sizeof(t));

	/* Another user and another key give other tokens. */
	proto_token(key, "bob", 3, t);
	crypto_auth_hmacsha256(direct, (const unsigned char *)"bob", 3, key);
	ck_assert_mem_eq(t, direct, sizeof(t));
	ck_assert_mem_ne(t, fixed, sizeof(t));
	key[0] ^= 1;
	proto_token(key, "alice", 5, t);
	ck_assert_mem_ne(t, fixed, sizeof(t));
	key[0] ^= 1;

	/* A 255-byte name, under a random key. */
	{
		uint8_t k[MP_KEY_LEN];
		char name[MP_USER_MAX];

		randombytes_buf(k, sizeof(k));
		memset(name, 'z', sizeof(name));
		proto_token(k, name, sizeof(name), t);
		crypto_auth_hmacsha256(direct, (const unsigned char *)name,
		    sizeof(name), k);
		ck_assert_mem_eq(t, direct, sizeof(t));
	}
}
END_TEST

START_TEST(test_mac_is_over_everything_before_it)
{
	uint8_t buf[PROTO_MAX_DATAGRAM], mac[PROTO_MAC_LEN];
	size_t len;

	len = unhex(v_registered, buf, sizeof(buf));
	crypto_auth_hmacsha256(mac, buf, len - PROTO_MAC_LEN, token);
	ck_assert_mem_eq(mac, buf + len - PROTO_MAC_LEN, PROTO_MAC_LEN);
	len = unhex(v_ack, buf, sizeof(buf));
	crypto_auth_hmacsha256(mac, buf, len - PROTO_MAC_LEN, token);
	ck_assert_mem_eq(mac, buf + len - PROTO_MAC_LEN, PROTO_MAC_LEN);
}
END_TEST

/* Hex */

START_TEST(test_hex)
{
	static const char lower[] =
	    "000102030405060708090a0b0c0d0e0f"
	    "101112131415161718191a1b1c1d1e1f";
	static const char upper[] =
	    "000102030405060708090A0B0C0D0E0F"
	    "101112131415161718191A1B1C1D1E1F";
	static const char *bad[] = {
		"",
		"\n",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f0",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f ",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\nx",
		" 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"0x0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"00 01",
	};
	uint8_t out[32];
	char hex[65];
	char buf[80];
	size_t i;

	proto_hex_encode(key, sizeof(key), hex);
	ck_assert_str_eq(hex, lower);
	proto_hex_encode(key, 0, hex);
	ck_assert_str_eq(hex, "");
	proto_hex_encode((const uint8_t *)"\xff\x00\xa5", 3, hex);
	ck_assert_str_eq(hex, "ff00a5");

	memset(out, 0, sizeof(out));
	ck_assert_int_eq(proto_hex_decode(lower, out, sizeof(out)), 0);
	ck_assert_mem_eq(out, key, sizeof(key));
	memset(out, 0, sizeof(out));
	ck_assert_int_eq(proto_hex_decode(upper, out, sizeof(out)), 0);
	ck_assert_mem_eq(out, key, sizeof(key));
	snprintf(buf, sizeof(buf), "%s\n", lower);
	ck_assert_int_eq(proto_hex_decode(buf, out, sizeof(out)), 0);
	snprintf(buf, sizeof(buf), "%s\r\n", lower);
	ck_assert_int_eq(proto_hex_decode(buf, out, sizeof(out)), 0);
	ck_assert_mem_eq(out, key, sizeof(key));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(proto_hex_decode(bad[i], out, sizeof(out)) == -1,
		    "accepted \"%s\"", bad[i]);
	/* Other lengths. */
	ck_assert_int_eq(proto_hex_decode("a5ff", out, 2), 0);
	ck_assert_uint_eq(out[0], 0xa5);
	ck_assert_uint_eq(out[1], 0xff);
	ck_assert_int_eq(proto_hex_decode("a5ff", out, 3), -1);
	ck_assert_int_eq(proto_hex_decode("a5ff", out, 1), -1);
}
END_TEST

static char	tmpdir[64];

static void
tmp_setup(void)
{
	setup();
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_proto.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
tmp_teardown(void)
{
	char path[sizeof(tmpdir) + 256 + 2];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(tmpdir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(tmpdir);
}

/* Write len bytes to tmpdir/name; returns the path (static). */
static const char *
write_file(const char *name, const void *data, size_t len)
{
	static char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

START_TEST(test_read_hexfile)
{
	static const char good[] =
	    "6eefad2bed97b6d93ee663d67a44b460"
	    "16b3d79dcad54ada39b61a1d14874d1b";
	uint8_t out[32], fixed[32];
	char buf[300];
	const char *why, *path;
	size_t i;

	ck_assert_int_eq(proto_hex_decode(good, fixed, sizeof(fixed)), 0);

	/* As mailpushctl writes it, without newline, CR LF, upper case. */
	snprintf(buf, sizeof(buf), "%s\n", good);
	path = write_file("token", buf, strlen(buf));
	why = NULL;
	memset(out, 0, sizeof(out));
	ck_assert_int_eq(proto_read_hexfile(path, out, &why), 0);
	ck_assert_mem_eq(out, fixed, sizeof(out));
	ck_assert_mem_eq(out, token, sizeof(out));
	path = write_file("nonl", good, 64);
	ck_assert_int_eq(proto_read_hexfile(path, out, &why), 0);
	ck_assert_mem_eq(out, fixed, sizeof(out));
	snprintf(buf, sizeof(buf), "%s\r\n", good);
	path = write_file("crlf", buf, strlen(buf));
	ck_assert_int_eq(proto_read_hexfile(path, out, &why), 0);
	for (i = 0; i < 64; i++)
		buf[i] = (char)(good[i] >= 'a' ? good[i] - 32 : good[i]);
	path = write_file("upper", buf, 64);
	memset(out, 0, sizeof(out));
	ck_assert_int_eq(proto_read_hexfile(path, out, &why), 0);
	ck_assert_mem_eq(out, fixed, sizeof(out));

	/* Missing file and a directory: the system's reason. */
	why = NULL;
	snprintf(buf, sizeof(buf), "%s/missing", tmpdir);
	ck_assert_int_eq(proto_read_hexfile(buf, out, &why), -1);
	ck_assert_str_eq(why, strerror(ENOENT));
	why = NULL;
	ck_assert_int_eq(proto_read_hexfile(tmpdir, out, &why), -1);
	ck_assert_str_eq(why, strerror(EISDIR));

	/* Bad contents. */
	{
		static const struct {
			const char	*name;
			const char	*data;
			size_t		 len;
		} bad[] = {
			{ "empty", "", 0 },
			{ "newline", "\n", 1 },
			{ "short", good, 63 },
			{ "odd", "6eef\n", 5 },
			{ "space", " 6eefad2bed97b6d93ee663d67a44b46016b3d79dcad54ada39b61a1d14874d1b\n", 66 },
			{ "long", "6eefad2bed97b6d93ee663d67a44b46016b3d79dcad54ada39b61a1d14874d1b00\n", 67 },
			{ "junk", "6eefad2bed97b6d93ee663d67a44b46016b3d79dcad54ada39b61a1d14874d1b\nkey\n", 69 },
			{ "nul", "6eefad2bed97b6d93ee663d67a44b46016b3d79dcad54ada39b61a1d14874d1b\0junk", 69 },
			{ "garbage", "this is not a token file at all\n", 32 },
		};

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			path = write_file(bad[i].name, bad[i].data,
			    bad[i].len);
			why = NULL;
			ck_assert_msg(proto_read_hexfile(path, out, &why) ==
			    -1, "%s accepted", bad[i].name);
			ck_assert_str_eq(why, "not 64 hexadecimal digits");
		}
	}

	/* Good digits followed by enough newlines to fill a buffer and
	 * then junk: refused (the whole file counts). */
	memset(buf, '\n', sizeof(buf));
	memcpy(buf, good, 64);
	memcpy(buf + 200, "junk", 4);
	path = write_file("padded", buf, 204);
	ck_assert_int_eq(proto_read_hexfile(path, out, &why), -1);
	path = write_file("padded2", buf, 129);
	ck_assert_int_eq(proto_read_hexfile(path, out, &why), 0);
	path = write_file("padded3", buf, 130);
	ck_assert_int_eq(proto_read_hexfile(path, out, &why), -1);
}
END_TEST

Suite *
make_proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc;

	tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_loop_test(tc, test_request_round_trip, 0,
	    2 * (MP_MAILBOXES_MAX + 1));
	tcase_add_test(tc, test_request_limits);
	tcase_add_test(tc, test_reply_round_trip);
	tcase_add_test(tc, test_push_round_trip);
	tcase_add_test(tc, test_push_wrong_token);
	tcase_add_test(tc, test_push_subkey_is_xchacha);
	tcase_add_test(tc, test_type_and_names);
	tcase_add_test(tc, test_page_vectors);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_oversized);
	tcase_add_test(tc, test_bad_header);
	tcase_add_test(tc, test_request_fields);
	tcase_add_test(tc, test_reply_fields);
	tcase_add_test(tc, test_push_fields);
	suite_add_tcase(s, tc);

	tc = tcase_create("encode");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_request_encode_refuses);
	tcase_add_test(tc, test_reply_encode_refuses);
	tcase_add_test(tc, test_null_token);
	suite_add_tcase(s, tc);

	tc = tcase_create("crypto");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_verify_bit_flips);
	tcase_add_test(tc, test_token_known_answer);
	tcase_add_test(tc, test_mac_is_over_everything_before_it);
	suite_add_tcase(s, tc);

	tc = tcase_create("hex");
	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_test(tc, test_hex);
	tcase_add_test(tc, test_read_hexfile);
	suite_add_tcase(s, tc);
	return s;
}
