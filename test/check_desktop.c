/*
 * check_desktop.c: what a desktop user's -x command gets from the real
 * mailpush-listen, registered with the real mailpushd and pushed to by
 * the real mailpush-hook: the user, the mailbox and the count in its
 * environment (mailpush-listen(1), ENVIRONMENT and EXAMPLES).
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "ops.h"

static struct mpd_proc P;

static void
setup(void)
{
	ck_assert_int_eq(mpd_setup(&P, NULL), 0);
}

static void
teardown(void)
{
	ck_assert_msg(mpd_finish(&P) == 0, "mailpushd in %s did not end "
	    "cleanly", P.dir);
}

/* mailpush-listen -1 with these -m names, one push by the hook to box */
static void
listen_once(const char *m1, const char *m2, const char *box, char *file,
    size_t len)
{
	char token[160], outpath[160], server[64], cmd[512];
	char *argv[20];
	int i, n = 0, status;
	pid_t pid;
	FILE *f;

	snprintf(token, sizeof(token), "%s/alice.token", P.dir);
	snprintf(outpath, sizeof(outpath), "%s/x.out", P.dir);
	unlink(outpath);
	ck_assert_int_eq(mpd_write_token(&P, "alice", token), 0);
	snprintf(server, sizeof(server), "127.0.0.1:%d", P.port);
	snprintf(cmd, sizeof(cmd), "printf '%%s|%%s|%%s|%%s\\n' "
	    "\"$MAILPUSH_USER\" \"$MAILPUSH_MAILBOX\" \"$MAILPUSH_COUNT\" "
	    "\"$MAILPUSH_MAILBOXES\" > %s", outpath);
	argv[n++] = (char *)BUILDDIR "/mailpush-listen";
	argv[n++] = (char *)"-1";
	argv[n++] = (char *)"-t";
	argv[n++] = (char *)"10";
	argv[n++] = (char *)"-s";
	argv[n++] = server;
	argv[n++] = (char *)"-u";
	argv[n++] = (char *)"alice";
	argv[n++] = (char *)"-K";
	argv[n++] = token;
	argv[n++] = (char *)"-x";
	argv[n++] = cmd;
	if (m1 != NULL) {
		argv[n++] = (char *)"-m";
		argv[n++] = (char *)m1;
	}
	if (m2 != NULL) {
		argv[n++] = (char *)"-m";
		argv[n++] = (char *)m2;
	}
	argv[n] = NULL;
	ck_assert_int_ne(pid = fork(), -1);
	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	for (i = 0; i < 100 && mpd_stat(&P, "registrations") != 1; i++)
		usleep(50000);
	if (mpd_stat(&P, "registrations") != 1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		ck_abort_msg("mailpush-listen did not register");
	}
	ck_assert_int_eq(mpd_hook(&P, "alice", box), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "mailpush-listen -1: status %d", status);
	ck_assert_ptr_nonnull(f = fopen(outpath, "r"));
	n = (int)fread(file, 1, len - 1, f);
	file[n] = '\0';
	fclose(f);
	/* -1 unregistered on its way out: the next run starts afresh */
	for (i = 0; i < 40 && mpd_stat(&P, "registrations") != 0; i++)
		usleep(50000);
}

START_TEST(command_environment)
{
	char file[512];

	listen_once("INBOX", NULL, "INBOX", file, sizeof(file));
	ck_assert_str_eq(file, "alice|INBOX|1|INBOX\n");
	/* several mailboxes: the push does not say which, the list does */
	listen_once("INBOX", "Lists/dev", "Lists/dev", file, sizeof(file));
	ck_assert_str_eq(file, "alice||1|INBOX\nLists/dev\n");
	/* none: every mailbox, both empty */
	listen_once(NULL, NULL, "INBOX", file, sizeof(file));
	ck_assert_str_eq(file, "alice||1|\n");
}
END_TEST

Suite *
make_desktop_suite(void)
{
	Suite *s = suite_create("desktop");
	TCase *tc = tcase_create("listen");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 40);
	tcase_add_test(tc, command_environment);
	suite_add_tcase(s, tc);
	return s;
}
