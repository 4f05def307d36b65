/*
 * check_events.c: the event socket of the real daemon: who may post
 * (kernel credentials against [events] allow_users), malformed events, and
 * the socket's mode.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "event.h"
#include "harness.h"

static struct mpd_proc P;

static void
teardown(void)
{
	mpd_cleanup(&P);
}

/* Post one event as another user, from a child with no extra groups. */
static int
event_as(const char *who, const char *user)
{
	struct passwd *pw = getpwnam(who);
	pid_t pid;
	int status;

	if (pw == NULL)
		return -1;
	if ((pid = fork()) == 0) {
		if (setgroups(0, NULL) == -1 || setgid(pw->pw_gid) == -1 ||
		    setuid(pw->pw_uid) == -1)
			_exit(2);
		_exit(mpd_event(&P, user, "INBOX", 1) == 0 ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int
wait_stat(const char *name, long long want)
{
	int i;

	for (i = 0; i < 100; i++) {
		if (mpd_stat(&P, name) == want)
			return 1;
		usleep(20000);
	}
	return 0;
}

START_TEST(socket_mode_and_any_user)
{
	struct stat st;

	ck_assert_int_eq(mpd_setup(&P, NULL), 0);
	ck_assert_int_eq(stat(P.events, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0666);
	if (geteuid() != 0) {
		fprintf(stderr, "events: not root, cannot post as nobody\n");
		return;
	}
	/* no allow_users: anybody may post (for itself: check_trust.c),
	 * even without groups */
	ck_assert_int_eq(event_as("nobody", "nobody"), 0);
	ck_assert(wait_stat("events_in", 1));
	ck_assert_int_eq(mpd_stat(&P, "events_denied"), 0);
}
END_TEST

START_TEST(allow_users_decides)
{
	if (geteuid() != 0) {
		fprintf(stderr, "events: not root, skipped allow_users\n");
		return;
	}
	ck_assert_int_eq(mpd_setup(&P, "allow_users = daemon\n"), 0);
	/* nobody is not listed: refused, logged, counted */
	ck_assert_int_eq(event_as("nobody", "nobody"), 0);
	ck_assert(wait_stat("events_denied", 1));
	ck_assert_int_eq(mpd_stat(&P, "events_in"), 0);
	ck_assert_int_eq(mpd_log_wait(&P, "refused: not in [events] "
	    "allow_users", 1, 2000), 0);
	/* daemon is listed */
	ck_assert_int_eq(event_as("daemon", "daemon"), 0);
	ck_assert(wait_stat("events_in", 1));
	/* root (the daemon's own user here) always may */
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	ck_assert(wait_stat("events_in", 2));
}
END_TEST

START_TEST(malformed_events_counted)
{
	struct sockaddr_un sun;
	uint8_t good[EVENT_MAX_LEN], bad[EVENT_MAX_LEN];
	struct mp_event ev;
	const char *why;
	int fd, n, i, sent = 0;

	ck_assert_int_eq(mpd_setup(&P, NULL), 0);
	ck_assert_int_eq(event_set(&ev, "alice", "INBOX", 1, 0, &why), 0);
	n = event_encode(&ev, good, sizeof(good), &why);
	ck_assert_int_gt(n, 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", P.events);
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	ck_assert_int_ge(fd, 0);
	/* every truncation, a bad magic, a bad user name */
	for (i = 0; i < n; i++)
		sent += sendto(fd, good, (size_t)i, 0,
		    (struct sockaddr *)&sun, sizeof(sun)) == i;
	memcpy(bad, good, (size_t)n);
	bad[0] ^= 0xff;
	sent += sendto(fd, bad, (size_t)n, 0, (struct sockaddr *)&sun,
	    sizeof(sun)) == n;
	ck_assert_int_eq(event_set(&ev, "al ice", "INBOX", 1, 0, &why), 0);
	n = event_encode(&ev, bad, sizeof(bad), &why);
	sent += sendto(fd, bad, (size_t)n, 0, (struct sockaddr *)&sun,
	    sizeof(sun)) == n;
	close(fd);
	ck_assert_int_eq(sent, 24 + 2);
	ck_assert(wait_stat("events_malformed", sent));
	ck_assert_int_eq(mpd_stat(&P, "events_in"), 0);
	/* still alive and taking good events */
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	ck_assert(wait_stat("events_in", 1));
	/* the warnings are rate-limited: far fewer lines than bad events */
	ck_assert_int_le(mpd_log_count(&P, "event"), 8);
}
END_TEST

/*
 * A control connection still open at shutdown is freed (under SANITIZE=1
 * LeakSanitizer would report it, and mpd_cleanup fails the test).
 */
START_TEST(control_open_at_shutdown)
{
	struct sockaddr_un sun;
	int fd;

	ck_assert_int_eq(mpd_setup(&P, NULL), 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", P.control);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(write(fd, "sta", 3), 3);	/* half a request */
	usleep(100000);
	ck_assert_int_eq(mpd_stop(&P), 0);
	close(fd);
	ck_assert_int_eq(mpd_log_count(&P, "LeakSanitizer"), 0);
}
END_TEST

Suite *
make_events_suite(void)
{
	Suite *s = suite_create("events");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, socket_mode_and_any_user);
	tcase_add_test(tc, allow_users_decides);
	tcase_add_test(tc, malformed_events_counted);
	tcase_add_test(tc, control_open_at_shutdown);
	suite_add_tcase(s, tc);
	return s;
}
