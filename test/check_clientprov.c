/*
 * check_clientprov.c: the client side of provisioning that needs no IMAP
 * server (client/provision.c): the cache file, its path, the password
 * from a file or a command.  The IMAP part runs in make e2e
 * (test/e2e/provision.sh) against a real Dovecot.
 */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "harness.h"
#include "provision.h"
#include "srv.h"

static char dir[64];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mp-clientprov.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(cache_roundtrip)
{
	struct mpc_provision a, b;
	char path[128];
	const char *why;
	struct stat st;

	memset(&a, 0, sizeof(a));
	snprintf(a.user, sizeof(a.user), "alice@example.org");
	a.key_id = 7;
	memset(a.token, 0x5a, sizeof(a.token));
	snprintf(a.servers, sizeof(a.servers), "push1.example.org:4650 "
	    "[2001:db8::1]:4650");
	snprintf(path, sizeof(path), "%s/cache", dir);
	ck_assert_int_eq(mpc_provision_save(path, &a, &why), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(mpc_provision_load(path, &b, &why), 0);
	ck_assert_str_eq(b.user, a.user);
	ck_assert_uint_eq(b.key_id, 7);
	ck_assert_int_eq(memcmp(a.token, b.token, sizeof(a.token)), 0);
	ck_assert_str_eq(b.servers, a.servers);
	/* readable by others: refused */
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(mpc_provision_load(path, &b, &why), -1);
	ck_assert_int_eq(write_text(path, "user x\n", 0600), 0);
	ck_assert_int_eq(mpc_provision_load(path, &b, &why), -1);
	ck_assert_int_eq(write_text(path, "user x\ntoken 1:zz\n", 0600), 0);
	ck_assert_int_eq(mpc_provision_load(path, &b, &why), -1);
}
END_TEST

START_TEST(cache_path)
{
	char path[512], want[256];
	const char *why;

	setenv("XDG_STATE_HOME", dir, 1);
	ck_assert_int_eq(mpc_provision_cache_path("imaps://alice%40example."
	    "org@mail.example.org:993/", path, sizeof(path), &why), 0);
	snprintf(want, sizeof(want), "%s/mailpush/provision-alice%%40example."
	    "org@mail.example.org", dir);
	ck_assert_str_eq(path, want);
	ck_assert_int_eq(mpc_provision_cache_path("imaps://mail.example.org/",
	    path, sizeof(path), &why), -1);
	unsetenv("XDG_STATE_HOME");
}
END_TEST

START_TEST(passwords)
{
	char path[128], pw[64], err[256], cmd[256];

	snprintf(path, sizeof(path), "%s/pw", dir);
	ck_assert_int_eq(write_text(path, "s3cret\nignored\n", 0600), 0);
	ck_assert_int_eq(mpc_password_file(path, pw, sizeof(pw), err,
	    sizeof(err)), 0);
	ck_assert_str_eq(pw, "s3cret");
	ck_assert_int_eq(chmod(path, 0604), 0);
	ck_assert_int_eq(mpc_password_file(path, pw, sizeof(pw), err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "must not be readable by others"));
	ck_assert_int_eq(write_text(path, "\n", 0600), 0);
	ck_assert_int_eq(mpc_password_file(path, pw, sizeof(pw), err,
	    sizeof(err)), -1);
	snprintf(cmd, sizeof(cmd), "printf 'from-cmd\\r\\nx\\n'");
	ck_assert_int_eq(mpc_password_command(cmd, pw, sizeof(pw), err,
	    sizeof(err)), 0);
	ck_assert_str_eq(pw, "from-cmd");
	ck_assert_int_eq(mpc_password_command("exit 3", pw, sizeof(pw), err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "status 3"));
	ck_assert_int_eq(mpc_password_command("true", pw, sizeof(pw), err,
	    sizeof(err)), -1);
}
END_TEST

START_TEST(bad_url)
{
	struct mpc_provision_opts o = { "http://example.org/", "pw", NULL, 0 };
	struct mpc_provision pv;
	char err[256];

	ck_assert_int_eq(mpc_provision_fetch(&o, &pv, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not an imaps:// or imap:// URL"));
}
END_TEST

START_TEST(srv_order_and_text)
{
	struct mpc_srv s[4];
	char text[256];
	int i, first_b = 0;

	/* priority first; within a priority, weight 0 is drawn last unless
	   everything is 0 (RFC 2782); run it often: the order is random */
	for (i = 0; i < 200; i++) {
		memset(s, 0, sizeof(s));
		snprintf(s[0].host, sizeof(s[0].host), "late.example.org");
		s[0].port = 3, s[0].priority = 20, s[0].weight = 5;
		snprintf(s[1].host, sizeof(s[1].host), "a.example.org");
		s[1].port = 1, s[1].priority = 10, s[1].weight = 0;
		snprintf(s[2].host, sizeof(s[2].host), "b.example.org");
		s[2].port = 2, s[2].priority = 10, s[2].weight = 100;
		snprintf(s[3].host, sizeof(s[3].host), "2001:db8::1");
		s[3].port = 4, s[3].priority = 30, s[3].weight = 0;
		mpc_srv_order(s, 4);
		ck_assert_uint_eq(s[0].priority, 10);
		ck_assert_uint_eq(s[1].priority, 10);
		ck_assert_str_eq(s[2].host, "late.example.org");
		ck_assert_str_eq(s[3].host, "2001:db8::1");
		first_b += strcmp(s[0].host, "b.example.org") == 0;
	}
	/* weight 100 against 0: b first nearly always, a sometimes */
	ck_assert_int_gt(first_b, 150);
	ck_assert_int_eq(mpc_srv_text(s, 4, text, sizeof(text)), 0);
	ck_assert_ptr_nonnull(strstr(text, "late.example.org:3 "
	    "[2001:db8::1]:4"));
	ck_assert_int_eq(mpc_srv_text(s, 4, text, 20), -1);
}
END_TEST

START_TEST(srv_errors)
{
	struct mpc_srv l[MPC_SRV_MAX];
	char err[256];

	ck_assert_int_eq(mpc_srv_lookup("", NULL, l, err, sizeof(err)), -1);
	ck_assert_int_eq(mpc_srv_lookup("example.org", "not-an-ip", l, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "bad resolver"));
	ck_assert_int_eq(mpc_srv_lookup("example.org", "127.0.0.1:0", l,
	    err, sizeof(err)), -1);
}
END_TEST

/*
 * A lone CR in an IMAP answer (not followed by LF), or a CR as its last
 * byte, once made the lexer return an empty atom without moving on: the
 * parser spun for ever (R15-1).  alarm() turns a hang into a failure.
 */
START_TEST(imap_lone_cr)
{
	static const char *const bad[] = {
		"* FOO \rX\r\nmp1 OK done\r\n",
		"* METADATA \"\" (\r)\r\nmp1 OK done\r\n",
		"* FOO bar\r",
		"\r",
	};
	struct mpc_provision pv;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		alarm(5);
		err[0] = '\0';
		ck_assert_int_eq(mpc_provision_parse(bad[i], strlen(bad[i]),
		    &pv, err, sizeof(err)), -1);
		alarm(0);
		ck_assert_msg(err[0] != '\0', "no message for case %zu", i);
	}
}
END_TEST

Suite *
make_clientprov_suite(void)
{
	Suite *s = suite_create("clientprov");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, cache_roundtrip);
	tcase_add_test(tc, cache_path);
	tcase_add_test(tc, passwords);
	tcase_add_test(tc, bad_url);
	tcase_add_test(tc, srv_order_and_text);
	tcase_add_test(tc, srv_errors);
	tcase_add_test(tc, imap_lone_cr);
	suite_add_tcase(s, tc);
	return s;
}
