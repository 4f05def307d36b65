/*
 * check_interop.c: an independent client, written in Python from
 * mailpush-protocol(7) alone (test/interop/client.py), against the real
 * daemon: the page is enough to write a working client.  The client
 * checks what it sees on the wire; this file checks what the daemon
 * counted.
 */
#include <stdarg.h>
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
	if (access("/usr/bin/python3", X_OK) == 0)
		return 1;
	fprintf(stderr, "interop: no /usr/bin/python3, skipped\n");
	return 0;
}

/*
 * Run client.py for alice against the daemon with the extra arguments
 * (NULL-terminated), deliver one message once it has registered, and
 * return its exit status; its output is in out.
 */
static int
run_client(const char *server, char *out, size_t outlen, ...)
{
	char tok[160], path[160], *argv[32];
	const char *a;
	va_list ap;
	pid_t pid;
	int status, i, n = 0;
	FILE *fp;
	size_t len;

	snprintf(tok, sizeof(tok), "%s/alice.token", P.dir);
	ck_assert_int_eq(mpd_write_token(&P, "alice", tok), 0);
	argv[n++] = (char *)"/usr/bin/python3";
	argv[n++] = (char *)"test/interop/client.py";
	argv[n++] = (char *)"--server";
	argv[n++] = (char *)server;
	argv[n++] = (char *)"--user";
	argv[n++] = (char *)"alice";
	argv[n++] = (char *)"--token-file";
	argv[n++] = tok;
	argv[n++] = (char *)"--timeout";
	argv[n++] = (char *)"15";
	argv[n++] = (char *)"-v";
	va_start(ap, outlen);
	while ((a = va_arg(ap, const char *)) != NULL && n < 31)
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;

	snprintf(path, sizeof(path), "%s/py.out", P.dir);
	if ((pid = fork()) == 0) {
		if (freopen(path, "w", stdout) == NULL ||
		    freopen(path, "a", stderr) == NULL)
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	ck_assert_int_gt(pid, 0);
	/* wait for its registration, then deliver */
	for (i = 0; i < 300 && mpd_stat(&P, "registered") < 1; i++)
		usleep(25000);
	ck_assert_int_eq(mpd_stat(&P, "registered"), 1);
	ck_assert_int_eq(mpd_hook(&P, "Alice+lists", "INBOX"), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	memset(out, 0, outlen);
	if ((fp = fopen(path, "r")) != NULL) {
		len = fread(out, 1, outlen - 1, fp);
		out[len] = '\0';
		fclose(fp);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

START_TEST(python_client_gets_push)
{
	char server[64], out[8192];
	int i;

	if (!have_python())
		return;
	snprintf(server, sizeof(server), "127.0.0.1:%d", P.port);
	ck_assert_msg(run_client(server, out, sizeof(out), NULL) == 0,
	    "client.py failed: %s", out);
	ck_assert_msg(strstr(out, "push user=alice ") != NULL &&
	    strstr(out, " seq=1 count=1 new=1 total=1 flags=0 ") != NULL,
	    "client.py output: %s", out);
	for (i = 0; i < 100 && mpd_stat(&P, "acks") != 1; i++)
		usleep(20000);
	ck_assert_int_eq(mpd_stat(&P, "acks"), 1);
	ck_assert_int_eq(mpd_stat(&P, "retransmits"), 0);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
}
END_TEST

/*
 * Over IPv6, with a clock 300 s fast, a replayed REGISTER (on the
 * registered port and another), KEEPALIVEs (from the registered port
 * and another), a 1-second PROBE, a replayed PUSH_ACK, UNREGISTER and
 * the REGISTER replayed after it: the client checks the answers, the
 * daemon's counters show what had an effect.
 */
START_TEST(python_client_checks)
{
	char server[64], out[8192];

	if (!have_python())
		return;
	snprintf(server, sizeof(server), "[::1]:%d", P.port);
	ck_assert_msg(run_client(server, out, sizeof(out), "--skew", "300",
	    "--replay", "--keepalive", "--probe", "1", "--unregister",
	    "--context", "interop", NULL) == 0, "client.py failed: %s", out);
	ck_assert_msg(strstr(out, " context=interop") != NULL,
	    "client.py output: %s", out);
	ck_assert_int_eq(mpd_stat(&P, "refused_stale"), 1);
	ck_assert_int_eq(mpd_stat(&P, "refused_replay"), 2);
	ck_assert_int_eq(mpd_stat(&P, "registered"), 1);
	ck_assert_int_eq(mpd_stat(&P, "refreshed"), 0);
	ck_assert_int_eq(mpd_stat(&P, "keepalives"), 2);
	ck_assert_int_eq(mpd_stat(&P, "kicks_sent"), 1);
	ck_assert_int_eq(mpd_stat(&P, "probes"), 1);
	ck_assert_int_eq(mpd_stat(&P, "pushes"), 1);
	ck_assert_int_eq(mpd_stat(&P, "acks"), 1);
	ck_assert_int_eq(mpd_stat(&P, "retransmits"), 0);
	ck_assert_int_eq(mpd_stat(&P, "unregistered"), 1);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
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
	ck_assert_msg(strstr(out, "selftest: 11 examples") != NULL,
	    "selftest: %s", out);
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
	tcase_add_test(tc, python_client_checks);
	tcase_add_test(tc, python_selftest_matches_page);
	suite_add_tcase(s, tc);
	return s;
}
