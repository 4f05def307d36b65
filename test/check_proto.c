/*
 * check_proto.c: the UDP protocol codec, version 2 (shared/proto.c),
 * against mailpush-protocol(7): round trips of every message, the limits
 * of a request, push sealing (a push opens under the right token and
 * device and under nothing else, with an XChaCha20 subkey), type names,
 * and the example vectors printed in the page.  Malformed datagrams and
 * refused encodings: check_protobad.c; MACs, token derivation and the
 * hex files: check_protocrypto.c.  The vectors and the fixture are in
 * check_proto.h.
 */
#include "check_proto.h"

Suite	*make_proto_suite(void);

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
	return s;
}
