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
	suite_add_tcase(s, tc);
	return s;
}
