/*
 * check_register.c: registrations through the real mailpushd over UDP
 * (issue 3, item 6): the cookie, replacement, refresh, moving and
 * unregistering, expiry, IPv6, and a cookie that is not echoed.  The
 * limits: check_registerlimits.c; authentication, the allow list and
 * malformed datagrams: check_registerauth.c.  Every test starts its own
 * daemon (check_register.h).
 */
#include "check_register.h"

/* Core */

START_TEST(cookie_then_registered)
{
	struct tclient c;
	struct mp_reply rp;
	static struct mp_request rq;

	start(NULL);
	open_client(&c, NULL, "alice");
	tc_req(&c, &rq, PROTO_REGISTER, "ctx", 3);
	ck_assert_int_eq(tc_call(&c, &rq, &rp, 1), 0);
	ck_assert_int_eq(rp.type, PROTO_COOKIE);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	ck_assert_int_eq(mpd_stat(&P, "cookies_sent"), 1);
	ck_assert_int_eq(tc_register(&c, "ctx", 3, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_uint_ne(rp.reg_id, 0);
	ck_assert_uint_eq(rp.lifetime, 600);
	ck_assert_uint_eq(rp.seq, 0);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	ck_assert_int_eq(mpd_stat(&P, "registered"), 1);
	tc_close(&c);
}
END_TEST

/*
 * The same user and device replace (take over) their registration from
 * anywhere; another device is another registration, even from the same
 * address and port.
 */
START_TEST(replace_same_client)
{
	struct tclient c1, c2, c3;
	char out[4096], want[64];
	uint32_t id;

	start(NULL);
	open_client(&c1, NULL, "alice");
	open_client(&c2, NULL, "alice");
	open_client(&c3, "127.0.0.2", "alice");
	id = reg_ok(&c1, "phone");
	ck_assert_uint_eq(reg_ok(&c2, "phone"), id);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	ck_assert_int_eq(mpd_stat(&P, "replaced"), 1);
	/* it moved to c2's port */
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 1);
	snprintf(want, sizeof(want), "127.0.0.1:%d", client_port(&c2));
	ck_assert_msg(strstr(out, want) != NULL, "list: %s", out);
	/* another device is another registration, from the same port */
	ck_assert_uint_ne(reg_ok(&c2, "laptop"), id);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 2);
	/* the same device from another address takes its own over */
	ck_assert_uint_eq(reg_ok(&c3, "phone"), id);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 2);
	ck_assert_int_eq(mpd_stat(&P, "replaced"), 2);
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 2);
	snprintf(want, sizeof(want), "127.0.0.2:%d", client_port(&c3));
	ck_assert_msg(strstr(out, want) != NULL, "list: %s", out);
	tc_close(&c1);
	tc_close(&c2);
	tc_close(&c3);
}
END_TEST

/* REFRESH from the same address needs no cookie; from another it moves. */
START_TEST(refresh_move_unregister)
{
	struct tclient c1, c2;
	struct mp_reply rp;
	static struct mp_request rq;
	char out[4096], want[64];
	long long cookies;
	uint32_t id;

	start(NULL);
	open_client(&c1, NULL, "alice");
	open_client(&c2, NULL, "alice");
	id = reg_ok(&c1, "ctx");
	cookies = mpd_stat(&P, "cookies_sent");
	/* a zero cookie is fine from the registration's own address */
	memset(c1.cookie, 0, sizeof(c1.cookie));
	ck_assert_int_eq(refresh(&c1, PROTO_REFRESH, id, &rp),
	    PROTO_REGISTERED);
	ck_assert_uint_eq(rp.reg_id, id);
	ck_assert_uint_eq(rp.lifetime, 600);
	ck_assert_int_eq(mpd_stat(&P, "cookies_sent"), cookies);
	ck_assert_int_eq(mpd_stat(&P, "refreshed"), 1);
	/* another port: COOKIE first, then it moves there */
	tc_req(&c2, &rq, PROTO_REFRESH, NULL, 0);
	ck_assert_int_eq(tc_call(&c2, &rq, &rp, 1), 0);
	ck_assert_int_eq(rp.type, PROTO_COOKIE);
	ck_assert_int_eq(refresh(&c2, PROTO_REFRESH, id, &rp),
	    PROTO_REGISTERED);
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 1);
	snprintf(want, sizeof(want), "127.0.0.1:%d", client_port(&c2));
	ck_assert_msg(strstr(out, want) != NULL, "list: %s", out);
	/* pushes follow it */
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	{
		struct mp_push p;

		ck_assert_int_eq(tc_push(&c2, &p, 2000), 0);
		ck_assert_uint_eq(p.reg_id, id);
		ck_assert_int_eq(tc_recv(&c1, (uint8_t *)out, sizeof(out), 100),
		    -1);
		ck_assert_int_eq(tc_ack(&c2, &p), 0);
	}
	/* UNREGISTER: lifetime 0, gone; a REFRESH then gets UNKNOWN */
	ck_assert_int_eq(refresh(&c2, PROTO_UNREGISTER, id, &rp),
	    PROTO_REGISTERED);
	ck_assert_uint_eq(rp.lifetime, 0);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	ck_assert_int_eq(mpd_stat(&P, "unregistered"), 1);
	ck_assert_int_eq(refresh(&c2, PROTO_REFRESH, id, &rp), PROTO_REFUSED);
	ck_assert_uint_eq(rp.reason, REASON_UNKNOWN);
	/* someone else's id is unknown too */
	tc_close(&c1);
	tc_close(&c2);
}
END_TEST

START_TEST(refresh_other_users_id)
{
	struct tclient a, b;
	struct mp_reply rp;
	uint32_t id;

	start(NULL);
	open_client(&a, NULL, "alice");
	open_client(&b, NULL, "bob");
	id = reg_ok(&a, "ctx");
	reg_ok(&b, "ctx");
	ck_assert_int_eq(refresh(&b, PROTO_UNREGISTER, id, &rp),
	    PROTO_REFUSED);
	ck_assert_uint_eq(rp.reason, REASON_UNKNOWN);
	ck_assert_int_eq(refresh(&b, PROTO_REFRESH, id, &rp), PROTO_REFUSED);
	ck_assert_uint_eq(rp.reason, REASON_UNKNOWN);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 2);
	tc_close(&a);
	tc_close(&b);
}
END_TEST

/* Not refreshed: gone after registration_lifetime; refreshed: stays. */
START_TEST(expiry)
{
	struct tclient c;
	struct mp_reply rp;
	uint32_t a, b;
	uint64_t t0, gone = 0;

	start("[limits]\nregistration_lifetime = 2s\n");
	open_client(&c, NULL, "alice");
	a = reg_ok(&c, "a");
	b = reg_ok(&c, "b");
	ck_assert_int_eq(tc_register(&c, "a", 1, &rp), 0);	/* replace */
	ck_assert_uint_eq(rp.lifetime, 2);
	t0 = now_ms();
	while (now_ms() < t0 + 4000) {
		ck_assert_int_eq(refresh(&c, PROTO_REFRESH, b, &rp),
		    PROTO_REGISTERED);
		if (mpd_stat(&P, "registrations") == 1) {
			gone = now_ms();
			break;
		}
		usleep(250000);
	}
	ck_assert_msg(gone != 0, "the unrefreshed registration is still "
	    "there after 4 s");
	/* it lived for at least the lifetime it was given */
	ck_assert_msg(gone - t0 >= 1900, "expired after %llu ms of a 2 s "
	    "lifetime", (unsigned long long)(gone - t0));
	ck_assert_int_eq(mpd_stat(&P, "expired"), 1);
	ck_assert_int_eq(refresh(&c, PROTO_REFRESH, a, &rp), PROTO_REFUSED);
	ck_assert_uint_eq(rp.reason, REASON_UNKNOWN);
	ck_assert_int_eq(refresh(&c, PROTO_REFRESH, b, &rp),
	    PROTO_REGISTERED);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	tc_close(&c);
}
END_TEST

START_TEST(ipv6)
{
	struct tclient c;
	struct mp_reply rp;
	struct mp_push p;
	char out[4096], want[64];
	uint32_t id;

	start(NULL);
	ck_assert_int_eq(tc_open(&c, &P, 1, NULL, "alice"), 0);
	id = reg_ok(&c, "v6");
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 1);
	snprintf(want, sizeof(want), "[::1]:%d", client_port(&c));
	ck_assert_msg(strstr(out, want) != NULL, "list: %s", out);
	ck_assert_int_eq(refresh(&c, PROTO_REFRESH, id, &rp),
	    PROTO_REGISTERED);
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 2), 0);
	ck_assert_int_eq(tc_push(&c, &p, 2000), 0);
	ck_assert_uint_eq(p.reg_id, id);
	ck_assert_uint_eq(p.count, 2);
	ck_assert_int_eq(p.ctx_len, 2);
	ck_assert_mem_eq(p.ctx, "v6", 2);
	ck_assert_int_eq(tc_ack(&c, &p), 0);
	ck_assert_int_eq(mpd_stat_wait(&P, "acks", 1, 2000), 0);
	ck_assert_int_eq(refresh(&c, PROTO_UNREGISTER, id, &rp),
	    PROTO_REGISTERED);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	tc_close(&c);
}
END_TEST

/*
 * A source that never echoes the cookie gets 24-byte COOKIEs and nothing
 * else, never more bytes than it sent, and leaves no state, whatever it
 * sends: REGISTER with no cookie or a made-up one, a bad MAC, a REFRESH
 * or UNREGISTER of somebody else's registration.
 */
START_TEST(no_cookie_echo)
{
	struct tclient c, other;
	static struct mp_request rq;
	uint8_t buf[PROTO_MAX_DATAGRAM];
	size_t sent = 0, got = 0;
	uint32_t id;
	int i, n, answers = 0;

	start(NULL);
	open_client(&other, "127.0.0.3", "alice");
	id = reg_ok(&other, "x");
	open_client(&c, "127.0.0.2", "alice");
	for (i = 0; i < 8; i++) {
		uint8_t type = i < 5 ? PROTO_REGISTER : i == 5 ?
		    PROTO_REFRESH : PROTO_UNREGISTER;

		if (type != PROTO_REGISTER)
			tc_use_reg(&c, id);
		tc_req(&c, &rq, type, "ctx", 3);
		if (i == 1 || i == 4)
			randombytes_buf(c.cookie, sizeof(c.cookie));
		else
			memset(c.cookie, 0, sizeof(c.cookie));
		n = encode(&c, &rq, buf, sizeof(buf));
		if (i == 4)
			buf[n - 1] ^= 1;	/* and a bad MAC */
		ck_assert_int_eq(tc_send(&c, buf, (size_t)n), 0);
		sent += (size_t)n;
	}
	while ((n = tc_recv(&c, buf, sizeof(buf), 300)) >= 0) {
		answers++;
		got += (size_t)n;
		ck_assert_int_eq(n, PROTO_COOKIE_DGRAM_LEN);
		ck_assert_int_eq(proto_type(buf, (size_t)n), PROTO_COOKIE);
	}
	ck_assert_int_eq(answers, 8);
	ck_assert_uint_le(got, sent);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	ck_assert_int_eq(mpd_stat(&P, "registered"), 1);
	ck_assert_int_eq(mpd_stat(&P, "refreshed"), 0);
	ck_assert_int_eq(mpd_stat(&P, "unregistered"), 0);
	ck_assert_int_eq(refused_count(REASON_AUTH), 0);
	/* the registration it tried to take stays where it was */
	{
		char out[4096];

		ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 1);
		ck_assert_msg(strstr(out, "127.0.0.3:") != NULL, "%s", out);
	}
	tc_close(&c);
	tc_close(&other);
}
END_TEST

Suite *
make_register_suite(void)
{
	Suite *s = suite_create("register");
	TCase *tc;

	tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, cookie_then_registered);
	tcase_add_test(tc, replace_same_client);
	tcase_add_test(tc, refresh_move_unregister);
	tcase_add_test(tc, refresh_other_users_id);
	tcase_add_test(tc, expiry);
	tcase_add_test(tc, ipv6);
	tcase_add_test(tc, no_cookie_echo);
	suite_add_tcase(s, tc);
	return s;
}
