/*
 * check_clusterjson.c: what comes from [cluster] into `mailpushctl -j
 * status' is escaped (R16-5): a relay whose Redis socket path holds '"'
 * and '\' (no Redis needed: the link stays down) answers valid JSON that
 * gives the path back.
 */
#include <stdio.h>
#include <string.h>

#include <check.h>

#include "harness.h"
#include "ops.h"

static struct mpd_proc P;

START_TEST(redis_path_escaped)
{
	static char out[16384], err[4096];
	char why[256];
	int rc;

	memset(&P, 0, sizeof(P));
	P.pid = -1;
	ck_assert_int_eq(mpd_setup(&P, "[cluster]\nrole = relay\nredis = "
	    "/tmp/mp-none/a\"b\\c.sock\nreconnect_max = 300ms\n"), 0);
	rc = ops_ctl(&P, out, sizeof(out), err, sizeof(err), "-j", "status",
	    NULL);
	ck_assert_msg(rc == 0 || rc == 2, "exit %d: %s", rc, err);
	ck_assert_msg(json_check(out, why, sizeof(why)) == 0, "%s: %s", why,
	    out);
	ck_assert_msg(strstr(out, "\"redis\":\"/tmp/mp-none/a\\\"b\\\\c.sock\"")
	    != NULL, "%s", out);
	ck_assert_int_eq(mpd_finish(&P), 0);
}
END_TEST

Suite *
make_clusterjson_suite(void)
{
	Suite *s = suite_create("clusterjson");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, redis_path_escaped);
	suite_add_tcase(s, tc);
	return s;
}
