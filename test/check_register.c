/*
 * check_register.c: registrations through the real mailpushd over UDP.
 */
#include <string.h>

#include <check.h>

#include "harness.h"

static struct mpd_proc P;

static void
setup(void)
{
	ck_assert_int_eq(mpd_setup(&P, NULL), 0);
}

static void
teardown(void)
{
	mpd_cleanup(&P);
}

START_TEST(cookie_then_registered)
{
	struct tclient c;
	struct mp_reply rp;
	static struct mp_request rq;

	ck_assert_int_eq(tc_open(&c, &P, 0, NULL, "alice"), 0);
	tc_req(&c, &rq, PROTO_REGISTER, 0, "ctx", 3);
	ck_assert_int_eq(tc_call(&c, &rq, &rp, 1), 0);
	ck_assert_int_eq(rp.type, PROTO_COOKIE);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	ck_assert_int_eq(tc_register(&c, "ctx", 3, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_uint_ne(rp.reg_id, 0);
	ck_assert_uint_eq(rp.lifetime, 600);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	tc_close(&c);
}
END_TEST

Suite *
make_register_suite(void)
{
	Suite *s = suite_create("register");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, cookie_then_registered);
	suite_add_tcase(s, tc);
	return s;
}
