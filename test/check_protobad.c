/*
 * check_protobad.c: what the protocol codec (shared/proto.c) refuses:
 * every malformed datagram a decoder must refuse (truncated, oversized,
 * a bad header, bad fields of requests, replies and pushes), and the
 * encoders refusing what they cannot encode.  The vectors and the
 * fixture are in check_proto.h.
 */
#include "check_proto.h"

Suite	*make_protobad_suite(void);

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

Suite *
make_protobad_suite(void)
{
	Suite *s = suite_create("protobad");
	TCase *tc;

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
	return s;
}
