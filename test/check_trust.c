/*
 * check_trust.c: the local trust rule (notifier/trust.c) through the real
 * daemon, with real local users the test creates (useradd; needs root,
 * skipped with a message otherwise): a user posts only for itself, a
 * trusted uid for anybody, and the poster of each documented pipeline
 * (local(8), pipe(8), LMTP) gets through with the documented setting.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "harness.h"

/* Names unique to this suite, so parallel test runs never collide. */
/*
 * Users of this test process only (the pid in the name): parallel runs of
 * the suite never see, or delete, each other's users.
 */
static char ua[32], ub[32], up[32];
#define UA	ua		/* a mail user */
#define UB	ub		/* another one */
#define UP	up		/* a pipe(8) transport's user */

static struct mpd_proc P;
static int made[3];
static const char *const names[3] = { ua, ub, up };
static char hook[160];

static int
need_root(const char *what)
{
	if (geteuid() == 0)
		return 1;
	fprintf(stderr, "trust: not root, cannot create local users: "
	    "skipped %s\n", what);
	return 0;
}

/* name@example.org, in one of two buffers */
static const char *
at(const char *name)
{
	static char buf[2][64];
	static int n;

	snprintf(buf[n % 2], sizeof(buf[0]), "%s@example.org", name);
	return buf[n++ % 2];
}

static void
make_users(void)
{
	char cmd[256];
	int i;

	snprintf(ua, sizeof(ua), "mpt12a%ld", (long)getpid());
	snprintf(ub, sizeof(ub), "mpt12b%ld", (long)getpid());
	snprintf(up, sizeof(up), "mpt12p%ld", (long)getpid());
	for (i = 0; i < 3; i++) {
		if (getpwnam(names[i]) != NULL)
			continue;
		snprintf(cmd, sizeof(cmd), "useradd --system --no-create-home "
		    "--home-dir /nonexistent --shell /usr/sbin/nologin %s",
		    names[i]);
		ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
		made[i] = 1;
	}
}

static void
teardown(void)
{
	char cmd[128];
	int i;

	mpd_cleanup(&P);
	for (i = 0; i < 3; i++)
		if (made[i]) {
			snprintf(cmd, sizeof(cmd), "userdel %s 2>/dev/null",
			    names[i]);
			if (system(cmd) != 0)
				fprintf(stderr, "trust: %s failed\n", cmd);
			made[i] = 0;
		}
}

/* The hook binary, copied where any user can run it. */
static void
copy_hook(void)
{
	char buf[65536];
	ssize_t n;
	int in, out;

	snprintf(hook, sizeof(hook), "%s/mailpush-hook", P.dir);
	in = open(BUILDDIR "/mailpush-hook", O_RDONLY);
	out = open(hook, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	ck_assert(in >= 0 && out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		ck_assert_int_eq(write(out, buf, (size_t)n), n);
	close(in);
	fchmod(out, 0755);
	close(out);
}

/*
 * Run the real mailpush-hook as `who' (no supplementary groups, as
 * Postfix runs it) with -u user; returns its exit status.
 */
static int
hook_as(const char *who, const char *user)
{
	struct passwd *pw = getpwnam(who);
	pid_t pid;
	int status, fd;

	ck_assert_ptr_nonnull(pw);
	if ((pid = fork()) == 0) {
		if (setgroups(0, NULL) == -1 || setgid(pw->pw_gid) == -1 ||
		    setuid(pw->pw_uid) == -1)
			_exit(2);
		if ((fd = open("/dev/null", O_RDWR)) != -1) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(hook, "mailpush-hook", "-c", P.conf, "-u", user,
		    (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int
wait_stat(const char *name, long long want)
{
	int i;

	for (i = 0; i < 150; i++) {
		if (mpd_stat(&P, name) == want)
			return 1;
		usleep(20000);
	}
	fprintf(stderr, "trust: %s is %lld, not %lld\n", name,
	    mpd_stat(&P, name), want);
	return 0;
}

START_TEST(user_posts_only_for_itself)
{
	char needle[160];

	if (!need_root("user_posts_only_for_itself"))
		return;
	make_users();
	ck_assert_int_eq(mpd_setup(&P, NULL), 0);
	copy_hook();
	/* bob for alice: refused, counted, logged with uid and both names */
	ck_assert_int_eq(hook_as(UB, UA), 0);
	ck_assert(wait_stat("trust_refused", 1));
	ck_assert_int_eq(mpd_stat(&P, "events_denied"), 1);
	ck_assert_int_eq(mpd_stat(&P, "events_in"), 0);
	snprintf(needle, sizeof(needle), "event socket: uid %ld (%s) may not "
	    "act for %s", (long)getpwnam(UB)->pw_uid, UB, UA);
	ck_assert_int_eq(mpd_log_wait(&P, needle, 1, 2000), 0);
	/* bob for bob, and for Bob+news (the [names] rule) */
	ck_assert_int_eq(hook_as(UB, UB), 0);
	{
		char upper[48];
		size_t i;

		snprintf(upper, sizeof(upper), "%s+news", UB);
		for (i = 0; upper[i] != '\0'; i++)
			if (upper[i] >= 'a' && upper[i] <= 'z')
				upper[i] = (char)(upper[i] - 'a' + 'A');
		ck_assert_int_eq(hook_as(UB, upper), 0);
	}
	ck_assert(wait_stat("events_in", 2));
	ck_assert_int_eq(mpd_stat(&P, "trust_refused"), 1);
	/* alice for herself */
	ck_assert_int_eq(hook_as(UA, UA), 0);
	ck_assert(wait_stat("events_in", 3));
	/* a user that is not trusted cannot post for a virtual address */
	ck_assert_int_eq(hook_as(UA, at(UB)), 0);
	ck_assert(wait_stat("trust_refused", 2));
}
END_TEST

START_TEST(refusals_rate_limited)
{
	uint64_t t0, secs;
	int i, lines;

	if (!need_root("refusals_rate_limited"))
		return;
	make_users();
	ck_assert_int_eq(mpd_setup(&P, NULL), 0);
	copy_hook();
	t0 = now_ms();
	for (i = 0; i < 30; i++)
		ck_assert_int_eq(hook_as(UB, UA), 0);
	ck_assert(wait_stat("trust_refused", 30));
	secs = (now_ms() - t0) / 1000;
	/* at most one line a second, whatever the machine's speed (30 forks
	 * take 14 s under ASan on a busy machine): one for each second that
	 * began, not one per refusal */
	lines = mpd_log_count(&P, "may not act for");
	ck_assert_int_ge(lines, 1);
	ck_assert_int_le(lines, secs + 2);
	if (secs + 2 >= 30)
		fprintf(stderr, "trust: 30 hooks took %llu s: the rate limit "
		    "could not be seen\n", (unsigned long long)secs);
}
END_TEST

START_TEST(trusted_uid_posts_for_anyone)
{
	char extra[128];

	if (!need_root("trusted_uid_posts_for_anyone"))
		return;
	make_users();
	/* pipe(8) with user=mpt12pipe, before it is trusted: refused */
	ck_assert_int_eq(mpd_setup(&P, NULL), 0);
	copy_hook();
	ck_assert_int_eq(hook_as(UP, at(UA)), 0);
	ck_assert(wait_stat("trust_refused", 1));
	ck_assert_int_eq(mpd_stat(&P, "events_in"), 0);
	/* the documented setting for pipe(8): the pipe's user is trusted
	 * (a reload applies it) */
	snprintf(extra, sizeof(extra), "trusted_users = root postfix "
	    "dovecot %s\n", UP);
	ck_assert_int_eq(mpd_rewrite(&P, extra), 0);
	ck_assert_int_eq(mpd_ctl(&P, NULL, 0, "reload", NULL), 0);
	ck_assert_int_eq(hook_as(UP, at(UA)), 0);
	ck_assert_int_eq(hook_as(UP, UB), 0);
	ck_assert(wait_stat("events_in", 2));
	ck_assert_int_eq(mpd_stat(&P, "trust_refused"), 1);
	/* a trusted name that does not exist is skipped with a warning,
	 * and the pipe's user is no longer trusted */
	ck_assert_int_eq(mpd_rewrite(&P, "trusted_users = mpt12nosuch\n"), 0);
	ck_assert_int_eq(mpd_ctl(&P, NULL, 0, "reload", NULL), 0);
	ck_assert_int_eq(mpd_log_wait(&P, "[events] trusted_users: no such "
	    "user \"mpt12nosuch\" (skipped)", 1, 2000), 0);
	ck_assert_int_eq(hook_as(UP, UB), 0);
	ck_assert(wait_stat("trust_refused", 2));
}
END_TEST

/*
 * The three pipelines of mailpush-hook(8) with their documented settings:
 * local(8) runs the hook as the recipient (no setting: it posts for
 * itself); pipe(8) as the pipe's user (in trusted_users, above); Dovecot
 * LMTP as root or dovecot (trusted by default).
 */
START_TEST(pipelines_default_settings)
{
	if (!need_root("pipelines_default_settings"))
		return;
	make_users();
	ck_assert_int_eq(mpd_setup(&P, NULL), 0);
	copy_hook();
	/* local(8): mailbox_command = mailpush-hook -u "$USER" -- ... */
	ck_assert_int_eq(hook_as(UA, UA), 0);
	ck_assert(wait_stat("events_in", 1));
	/* LMTP: the driver posts as root, or as dovecot when it exists */
	ck_assert_int_eq(mpd_event(&P, at(UA), "INBOX", 1), 0);
	ck_assert(wait_stat("events_in", 2));
	if (getpwnam("dovecot") != NULL) {
		ck_assert_int_eq(hook_as("dovecot", at(UB)), 0);
		ck_assert(wait_stat("events_in", 3));
	} else
		fprintf(stderr, "trust: no dovecot user, its case skipped\n");
	ck_assert_int_eq(mpd_stat(&P, "trust_refused"), 0);
}
END_TEST

Suite *
make_trust_suite(void)
{
	Suite *s = suite_create("trust");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, user_posts_only_for_itself);
	tcase_add_test(tc, refusals_rate_limited);
	tcase_add_test(tc, trusted_uid_posts_for_anyone);
	tcase_add_test(tc, pipelines_default_settings);
	suite_add_tcase(s, tc);
	return s;
}
