/*
 * check_interop.c: an independent client, written in Python from
 * mailpush-protocol(7) alone (test/interop/client.py), against the real
 * daemon: the page is enough to write a working client.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "harness.h"

static struct mpd_proc P;

static void
setup(void)
{
	ck_assert_int_eq(mpd_setup(&P, "[limits]\nmin_push_interval = 0\n"), 0);
}

static void
teardown(void)
{
	mpd_cleanup(&P);
}

static int
have_python(void)
{
	return access("/usr/bin/python3", X_OK) == 0;
}

START_TEST(python_client_gets_push)
{
	char tok[160], server[64], out[4096], err[4096];
	char *argv[] = { (char *)"/usr/bin/python3", (char *)"test/interop/client.py",
	    (char *)"--server", server, (char *)"--user", (char *)"alice",
	    (char *)"--token-file", tok, (char *)"--timeout", (char *)"10",
	    NULL };
	pid_t pid;
	int status, i;
	FILE *fp;

	if (!have_python()) {
		fprintf(stderr, "interop: no /usr/bin/python3, skipped\n");
		return;
	}
	snprintf(tok, sizeof(tok), "%s/alice.token", P.dir);
	ck_assert_int_eq(mpd_write_token(&P, "alice", tok), 0);
	snprintf(server, sizeof(server), "127.0.0.1:%d", P.port);
	snprintf(out, sizeof(out), "%s/py.out", P.dir);
	if ((pid = fork()) == 0) {
		if (freopen(out, "w", stdout) == NULL ||
		    freopen(out, "a", stderr) == NULL)
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	/* wait for its registration, then deliver */
	for (i = 0; i < 200 && mpd_stat(&P, "registrations") != 1; i++)
		usleep(25000);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	ck_assert_int_eq(mpd_hook(&P, "Alice+lists", "INBOX"), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	fp = fopen(out, "r");
	ck_assert_ptr_nonnull(fp);
	memset(err, 0, sizeof(err));
	if (fread(err, 1, sizeof(err) - 1, fp) == 0)
		err[0] = '\0';
	fclose(fp);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "client.py failed: %s", err);
	for (i = 0; i < 100 && mpd_stat(&P, "acks") != 1; i++)
		usleep(20000);
	ck_assert_int_eq(mpd_stat(&P, "acks"), 1);
	ck_assert_int_eq(mpd_stat(&P, "retransmits"), 0);
}
END_TEST

START_TEST(python_selftest_matches_page)
{
	char out[8192], err[8192];
	char *argv[] = { (char *)"/usr/bin/python3",
	    (char *)"test/interop/client.py", (char *)"--selftest", NULL };

	if (!have_python())
		return;
	ck_assert_msg(run_cmd(argv, out, sizeof(out), err, sizeof(err),
	    20000) == 0, "selftest: %s%s", out, err);
}
END_TEST

Suite *
make_interop_suite(void)
{
	Suite *s = suite_create("interop");
	TCase *tc = tcase_create("python");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 40);
	tcase_add_test(tc, python_client_gets_push);
	tcase_add_test(tc, python_selftest_matches_page);
	suite_add_tcase(s, tc);
	return s;
}
