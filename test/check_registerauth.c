/*
 * check_registerauth.c: authentication of registrations through the real
 * mailpushd over UDP: a wrong token, a stale timestamp, a replay from
 * another address, auth = none with the allow list, a token with it; and
 * malformed datagrams.  Every test starts its own daemon
 * (check_register.h).
 */
#include "check_register.h"

/* Authentication */

/* The reply to a request, raw, with its MAC checked under token. */
static int
raw_call(struct tclient *c, struct mp_request *rq, uint8_t *buf, size_t len,
    struct mp_reply *rp)
{
	uint8_t req[PROTO_MAX_DATAGRAM];
	const char *why;
	int n;

	n = encode(c, rq, req, sizeof(req));
	ck_assert_int_eq(tc_send(c, req, (size_t)n), 0);
	n = tc_recv(c, buf, len, 2000);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(proto_reply_decode(buf, (size_t)n, rp, &why), 0);
	ck_assert_uint_eq(rp->timestamp, rq->timestamp);
	return n;
}

START_TEST(wrong_token)
{
	struct tclient c;
	struct mp_reply rp;
	static struct mp_request rq;
	uint8_t buf[PROTO_MAX_DATAGRAM], right[MP_TOKEN_LEN];
	int n;

	start(NULL);
	open_client(&c, NULL, "alice");
	memcpy(right, c.token, sizeof(right));
	mpd_token(&P, "mallory", c.token);
	/* get a cookie: that needs no token */
	tc_req(&c, &rq, PROTO_REGISTER, "ctx", 3);
	ck_assert_int_eq(tc_call(&c, &rq, &rp, 1), 0);
	ck_assert_int_eq(rp.type, PROTO_COOKIE);
	memcpy(c.cookie, rp.cookie, sizeof(c.cookie));
	tc_req(&c, &rq, PROTO_REGISTER, "ctx", 3);
	n = raw_call(&c, &rq, buf, sizeof(buf), &rp);
	ck_assert_int_eq(rp.type, PROTO_REFUSED);
	ck_assert_uint_eq(rp.reason, REASON_AUTH);
	ck_assert_int_eq(n, PROTO_REFUSED_LEN);
	/* signed under alice's real token, which the client cannot check */
	ck_assert_int_eq(proto_verify(buf, (size_t)n, right), 0);
	ck_assert_int_ne(proto_verify(buf, (size_t)n, c.token), 0);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	ck_assert_int_eq(refused_count(REASON_AUTH), 1);
	/* the right token: REGISTERED, signed under it */
	memcpy(c.token, right, sizeof(right));
	tc_req(&c, &rq, PROTO_REGISTER, "ctx", 3);
	n = raw_call(&c, &rq, buf, sizeof(buf), &rp);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_int_eq(n, PROTO_REGISTERED_LEN);
	ck_assert_int_eq(proto_verify(buf, (size_t)n, right), 0);
	/* a REFRESH and an UNREGISTER with the wrong token do nothing */
	mpd_token(&P, "mallory", c.token);
	tc_req(&c, &rq, PROTO_UNREGISTER, NULL, 0);
	raw_call(&c, &rq, buf, sizeof(buf), &rp);
	ck_assert_int_eq(rp.type, PROTO_REFUSED);
	ck_assert_uint_eq(rp.reason, REASON_AUTH);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	ck_assert_int_eq(mpd_stat(&P, "unregistered"), 0);
	tc_close(&c);
}
END_TEST

START_TEST(stale_timestamp)
{
	struct tclient c;
	struct mp_reply rp;
	int64_t skews[] = { -3600, 3600, -125, 125 };
	size_t i;

	start(NULL);
	open_client(&c, NULL, "alice");
	for (i = 0; i < sizeof(skews) / sizeof(skews[0]); i++) {
		c.clock_skew = skews[i];
		c.last_ts = 0;
		ck_assert_int_eq(tc_register(&c, "ctx", 3, &rp), 0);
		ck_assert_int_eq(rp.type, PROTO_REFUSED);
		ck_assert_uint_eq(rp.reason, REASON_STALE);
		ck_assert_uint_eq(rp.limit, 120);
		/* the server's clock, in ms */
		ck_assert_msg(rp.value / 1000 + 2 >= (uint64_t)time(NULL) &&
		    rp.value / 1000 <= (uint64_t)time(NULL) + 2,
		    "server time %llu", (unsigned long long)rp.value);
	}
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	ck_assert_int_eq(refused_count(REASON_STALE), 4);
	/* inside the window is fine */
	c.clock_skew = -100;
	c.last_ts = 0;
	reg_ok(&c, "ctx");
	tc_close(&c);
}
END_TEST

/* A captured valid REGISTER replayed from elsewhere gets only a COOKIE. */
START_TEST(replay_other_address)
{
	struct tclient c, port2, addr2;
	struct mp_reply rp;
	static struct mp_request rq;
	uint8_t req[PROTO_MAX_DATAGRAM], buf[PROTO_MAX_DATAGRAM];
	int n, m;

	start(NULL);
	open_client(&c, NULL, "alice");
	open_client(&port2, NULL, "alice");
	open_client(&addr2, "127.0.0.2", "alice");
	tc_req(&c, &rq, PROTO_REGISTER, "ctx", 3);
	ck_assert_int_eq(tc_call(&c, &rq, &rp, 1), 0);
	ck_assert_int_eq(rp.type, PROTO_COOKIE);
	memcpy(c.cookie, rp.cookie, sizeof(c.cookie));
	tc_req(&c, &rq, PROTO_REGISTER, "ctx", 3);
	n = encode(&c, &rq, req, sizeof(req));
	/* the same bytes from another port and from another address */
	ck_assert_int_eq(tc_send(&port2, req, (size_t)n), 0);
	ck_assert_int_eq(tc_send(&addr2, req, (size_t)n), 0);
	m = tc_recv(&port2, buf, sizeof(buf), 1000);
	ck_assert_int_eq(m, PROTO_COOKIE_DGRAM_LEN);
	ck_assert_int_eq(proto_type(buf, (size_t)m), PROTO_COOKIE);
	m = tc_recv(&addr2, buf, sizeof(buf), 1000);
	ck_assert_int_eq(m, PROTO_COOKIE_DGRAM_LEN);
	ck_assert_int_eq(proto_type(buf, (size_t)m), PROTO_COOKIE);
	ck_assert_int_eq(tc_recv(&port2, buf, sizeof(buf), 200), -1);
	ck_assert_int_eq(tc_recv(&addr2, buf, sizeof(buf), 1), -1);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	/* the datagram itself was valid: from its own source it registers */
	ck_assert_int_eq(tc_send(&c, req, (size_t)n), 0);
	m = tc_recv(&c, buf, sizeof(buf), 1000);
	ck_assert_int_eq(m, PROTO_REGISTERED_LEN);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	/* and replaying it after that still moves nothing */
	ck_assert_int_eq(tc_send(&addr2, req, (size_t)n), 0);
	m = tc_recv(&addr2, buf, sizeof(buf), 1000);
	ck_assert_int_eq(m, PROTO_COOKIE_DGRAM_LEN);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	ck_assert_int_eq(mpd_stat(&P, "replaced"), 0);
	tc_close(&c);
	tc_close(&port2);
	tc_close(&addr2);
}
END_TEST

START_TEST(auth_none_allow)
{
	struct tclient in, out;
	struct mp_reply rp;

	start("[mailpushd]\nauth = none\nallow = 127.0.0.2/32\n");
	open_client(&out, NULL, "alice");
	open_client(&in, "127.0.0.2", "alice");
	/* no token needed: any 32 bytes will do as the MAC */
	randombytes_buf(out.token, sizeof(out.token));
	randombytes_buf(in.token, sizeof(in.token));
	reg_refused(&out, "ctx", 3, REASON_NOT_ALLOWED, 0);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	ck_assert_int_eq(refused_count(REASON_NOT_ALLOWED), 1);
	ck_assert_int_eq(tc_register(&in, "ctx", 3, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	/* the one outside may not refresh it either */
	ck_assert_int_eq(refresh(&out, PROTO_REFRESH, rp.reg_id, &rp),
	    PROTO_REFUSED);
	ck_assert_uint_eq(rp.reason, REASON_NOT_ALLOWED);
	tc_close(&in);
	tc_close(&out);
}
END_TEST

/* auth = token with an allow list: outside refused even with the token. */
START_TEST(token_allow)
{
	struct tclient in, out;

	start("[mailpushd]\nallow = 127.0.0.2/32 ::1/128\n");
	open_client(&out, "127.0.0.3", "alice");
	open_client(&in, "127.0.0.2", "alice");
	reg_refused(&out, "ctx", 3, REASON_NOT_ALLOWED, 0);
	reg_ok(&in, "ctx");
	randombytes_buf(in.token, sizeof(in.token));
	reg_refused(&in, "ctx2", 4, REASON_AUTH, 0);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	tc_close(&in);
	tc_close(&out);
}
END_TEST

/* Malformed */

START_TEST(malformed)
{
	struct tclient c;
	struct mp_reply rp;
	static struct mp_request rq;
	uint8_t good[PROTO_MAX_DATAGRAM], buf[2048];
	long long bad0, unexp0, in0;
	int n, i, nbad = 0, nunexp = 0;

	start(NULL);
	open_client(&c, NULL, "alice");
	c.no_pad = 1;	/* so that every truncation breaks the layout */
	/* a cookie, so that the requests below would be answered if good */
	tc_req(&c, &rq, PROTO_REGISTER, "ctx", 3);
	ck_assert_int_eq(tc_call(&c, &rq, &rp, 1), 0);
	memcpy(c.cookie, rp.cookie, sizeof(c.cookie));
	tc_req(&c, &rq, PROTO_REGISTER, "ctx", 3);
	n = encode(&c, &rq, good, sizeof(good));
	bad0 = mpd_stat(&P, "datagrams_malformed");
	unexp0 = mpd_stat(&P, "datagrams_unexpected");
	in0 = mpd_stat(&P, "datagrams_in");

#define SEND_BAD(p, len) do {						\
	ck_assert_int_eq(tc_send(&c, (p), (len)), 0);			\
	nbad++;								\
} while (0)
	/* truncated */
	SEND_BAD(good, (size_t)n - 1);
	SEND_BAD(good, (size_t)n - PROTO_MAC_LEN);
	SEND_BAD(good, PROTO_REQ_MIN - 1);
	SEND_BAD(good, 40);
	SEND_BAD(good, 4);
	SEND_BAD(good, 3);
	SEND_BAD(good, 1);
	/* too long: a byte more (padding must be zeros), oversized */
	memcpy(buf, good, (size_t)n);
	buf[n] = 0x55;
	SEND_BAD(buf, (size_t)n + 1);
	memset(buf, 0, sizeof(buf));
	memcpy(buf, good, (size_t)n);
	SEND_BAD(buf, PROTO_MAX_DATAGRAM + 1);
	SEND_BAD(buf, 1500);
	/* garbage */
	for (i = 0; i < 4; i++) {
		randombytes_buf(buf, 200);
		buf[2] = 0;		/* no version 0: never valid */
		SEND_BAD(buf, 200);
	}
	/* wrong version, wrong magic, unknown types */
	memcpy(buf, good, (size_t)n);
	buf[2] = 1;
	SEND_BAD(buf, (size_t)n);
	buf[2] = 0;
	SEND_BAD(buf, (size_t)n);
	memcpy(buf, good, (size_t)n);
	buf[0] = 0x50;
	SEND_BAD(buf, (size_t)n);
	memcpy(buf, good, (size_t)n);
	buf[3] = 0;
	SEND_BAD(buf, (size_t)n);
	buf[3] = PROTO_TYPE_MAX + 1;
	SEND_BAD(buf, (size_t)n);
	buf[3] = PROTO_KEEPALIVE;	/* a KEEPALIVE is 8 bytes */
	SEND_BAD(buf, (size_t)n);
	buf[3] = 255;
	SEND_BAD(buf, (size_t)n);
	/* a lying length field */
	memcpy(buf, good, (size_t)n);
	buf[6] = 0x04;			/* context_len 1027 */
	SEND_BAD(buf, (size_t)n);
	memcpy(buf, good, (size_t)n);
	buf[5] = 0;			/* empty user name */
	SEND_BAD(buf, (size_t)n);
	memcpy(buf, good, (size_t)n);
	buf[48] = 1;			/* a mailbox that is not there */
	SEND_BAD(buf, (size_t)n);
	memcpy(buf, good, (size_t)n);
	buf[50] = 1;			/* reserved bytes not zero */
	SEND_BAD(buf, (size_t)n);
	/* a PUSH_ACK too short for a request */
	memcpy(buf, good, (size_t)n);
	buf[3] = PROTO_PUSH_ACK;
	SEND_BAD(buf, PROTO_REQ_MIN - 1);
#undef SEND_BAD

	/* reply types sent to the server: never answered */
	for (i = PROTO_COOKIE; i <= PROTO_PUSH; i++) {
		memcpy(buf, good, (size_t)n);
		buf[3] = (uint8_t)i;
		ck_assert_int_eq(tc_send(&c, buf, (size_t)n), 0);
		nunexp++;
	}
	ck_assert_int_eq(tc_recv(&c, buf, sizeof(buf), 300), -1);
	ck_assert_int_eq(mpd_stat(&P, "datagrams_in"), in0 + nbad + nunexp);
	ck_assert_int_eq(mpd_stat(&P, "datagrams_malformed"), bad0 + nbad);
	ck_assert_int_eq(mpd_stat(&P, "datagrams_unexpected"),
	    unexp0 + nunexp);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	ck_assert_int_eq(mpd_stat(&P, "cookies_sent"), 1);
	/* and the daemon still works: the good one registers */
	ck_assert_int_eq(tc_send(&c, good, (size_t)n), 0);
	ck_assert_int_eq(tc_recv(&c, buf, sizeof(buf), 2000),
	    PROTO_REGISTERED_LEN);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	tc_close(&c);
}
END_TEST

Suite *
make_registerauth_suite(void)
{
	Suite *s = suite_create("registerauth");
	TCase *tc;

	tc = tcase_create("auth");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, wrong_token);
	tcase_add_test(tc, stale_timestamp);
	tcase_add_test(tc, replay_other_address);
	tcase_add_test(tc, auth_none_allow);
	tcase_add_test(tc, token_allow);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, malformed);
	suite_add_tcase(s, tc);
	return s;
}
