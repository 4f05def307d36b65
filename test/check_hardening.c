/*
 * check_hardening.c: the audit's findings, each through the real daemon:
 * the hook's forgiving configuration, log escaping, slow control clients,
 * socket and state directories, sockets made as the daemon's user, the
 * state file's owner, auth = none without a key file, and the event
 * queue length warning.  Tests that need root say so and skip otherwise.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <sodium.h>

#include "harness.h"
#include "proto.h"

/* a daemon user made by the test, of this process only */
static char duser[32];
#define DUSER	duser

static struct mpd_proc P;
static int made_user;

static void
teardown(void)
{
	mpd_cleanup(&P);
	char cmd[96];

	snprintf(cmd, sizeof(cmd), "userdel %s 2>/dev/null", duser);
	if (made_user && system(cmd) != 0)
		fprintf(stderr, "hardening: %s failed\n", cmd);
	made_user = 0;
}

static int
need_root(const char *what)
{
	if (geteuid() == 0)
		return 1;
	fprintf(stderr, "hardening: not root: skipped %s\n", what);
	return 0;
}

static struct passwd *
daemon_user(void)
{
	char cmd[192];

	snprintf(duser, sizeof(duser), "mpt12d%ld", (long)getpid());
	if (getpwnam(DUSER) == NULL) {
		snprintf(cmd, sizeof(cmd), "useradd --system --no-create-home "
		    "--home-dir /nonexistent --shell /usr/sbin/nologin -U %s",
		    duser);
		ck_assert_int_eq(system(cmd), 0);
		made_user = 1;
	}
	return getpwnam(DUSER);
}

/* Does a line of the daemon's log begin with prefix? */
static int
log_line_starts(const char *prefix)
{
	FILE *fp = fopen(P.log, "r");
	char line[4096];
	int n = 0;

	if (fp == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strncmp(line, prefix, strlen(prefix)) == 0)
			n++;
	fclose(fp);
	return n;
}

/* F5: a mailbox name with a newline cannot forge a log line (-v). */
START_TEST(mailbox_escaped_in_log)
{
	ck_assert_int_eq(mpd_setup(&P, NULL), 0);
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX\nmailpushd: error: "
	    "forged\x1b[2J\\", 1), 0);
	ck_assert_int_eq(mpd_stat_wait(&P, "events_in", 1, 2000), 0);
	ck_assert_int_eq(mpd_log_wait(&P, "in INBOX\\x0amailpushd: error: "
	    "forged\\x1b[2J\\\\ (uid 0)", 1, 2000), 0);
	ck_assert_int_eq(log_line_starts("mailpushd: error: forged"), 0);
}
END_TEST

/* The hook: a broken [limits] does not stop the event (real daemon). */
START_TEST(hook_broken_limits_still_sends)
{
	char conf[192], text[1024], *argv[8];
	int rc;

	ck_assert_int_eq(mpd_setup(&P, NULL), 0);
	/* what an administrator has half edited: the daemon's own file,
	 * with a bad value in [limits] and a typo elsewhere */
	snprintf(conf, sizeof(conf), "%s/hook.conf", P.dir);
	snprintf(text, sizeof(text), "[events]\nsocket = %s\n\n[limits]\n"
	    "max_registrations = lots\npush_retries = 99\n[limts]\nx = 1\n",
	    P.events);
	ck_assert_int_eq(write_text(conf, text, 0644), 0);
	argv[0] = (char *)BUILDDIR "/mailpushd";
	argv[1] = (char *)"-n";
	argv[2] = (char *)"-c";
	argv[3] = conf;
	argv[4] = NULL;
	/* the daemon refuses this file */
	ck_assert_int_eq(run_cmd(argv, NULL, 0, NULL, 0, 5000), 78);
	argv[0] = (char *)BUILDDIR "/mailpush-hook";
	argv[1] = (char *)"-c";
	argv[2] = conf;
	argv[3] = (char *)"-u";
	argv[4] = (char *)"alice";
	argv[5] = NULL;
	rc = run_cmd(argv, NULL, 0, NULL, 0, 5000);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(mpd_stat_wait(&P, "events_in", 1, 2000), 0);
}
END_TEST

/* Connect to the control socket; -1 on failure. */
static int
ctl_connect(void)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", P.control);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* F6: 40 slow clients trickling bytes never lock out mailpushctl. */
START_TEST(slow_control_clients)
{
	char out[4096];
	uint64_t t0;
	pid_t pid;
	int status;

	ck_assert_int_eq(mpd_setup(&P, NULL), 0);
	if ((pid = fork()) == 0) {
		int fds[40], i, k;

		for (i = 0; i < 40; i++)
			fds[i] = ctl_connect();
		/* one byte per client every 100 ms for 4 s: an idle timeout
		 * never fires */
		for (k = 0; k < 40; k++) {
			for (i = 0; i < 40; i++)
				if (fds[i] != -1 && send(fds[i], "s", 1,
				    MSG_NOSIGNAL | MSG_DONTWAIT) != 1) {
					close(fds[i]);
					fds[i] = -1;
				}
			usleep(100000);
		}
		_exit(0);
	}
	usleep(400000);		/* all 40 are connected and trickling */
	t0 = now_ms();
	ck_assert_int_eq(mpd_ctl(&P, out, sizeof(out), "status", NULL), 0);
	ck_assert_ptr_nonnull(strstr(out, "running"));
	ck_assert_uint_lt(now_ms() - t0, 3000);
	waitpid(pid, &status, 0);
}
END_TEST

/* F6: a connection that trickles bytes is closed at its total deadline. */
START_TEST(control_total_deadline)
{
	struct pollfd pfd;
	uint64_t t0;
	char c;
	int fd, closed = 0;

	ck_assert_int_eq(mpd_setup(&P, NULL), 0);
	ck_assert_int_ge(fd = ctl_connect(), 0);
	t0 = now_ms();
	while (now_ms() - t0 < 6000 && !closed) {
		if (send(fd, "s", 1, MSG_NOSIGNAL) != 1)
			closed = 1;
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 200) == 1 && read(fd, &c, 1) <= 0)
			closed = 1;
	}
	ck_assert_msg(closed, "a trickling control client was never closed");
	ck_assert_uint_lt(now_ms() - t0, 4000);
	close(fd);
}
END_TEST

/* Run mailpushd -d on P.conf to its end (it must refuse); its status. */
static int
daemon_refuses(char *err, size_t errlen)
{
	char *argv[] = { (char *)BUILDDIR "/mailpushd", (char *)"-d",
	    (char *)"-c", P.conf, NULL };
	int rc = run_cmd(argv, NULL, 0, err, errlen, 5000);

	if (rc == -1)
		fprintf(stderr, "hardening: mailpushd did not refuse:\n%s\n",
		    err);
	return rc;
}

/* F7: a world-writable socket directory is refused, saying the fix. */
START_TEST(world_writable_socket_dir)
{
	char dir[160], err[8192], want[512];

	ck_assert_int_eq(mpd_prepare(&P), 0);
	snprintf(dir, sizeof(dir), "%s/ww", P.dir);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	ck_assert_int_eq(chmod(dir, 0777), 0);
	snprintf(P.events, sizeof(P.events), "%s/event.sock", dir);
	ck_assert_int_eq(mpd_rewrite(&P, NULL), 0);
	ck_assert_int_eq(daemon_refuses(err, sizeof(err)), 78);
	snprintf(want, sizeof(want), "error: event socket directory %s is "
	    "writable by others (mode 0777): anybody there could replace what "
	    "mailpushd keeps in it; refusing to use it (chmod go-w %s, or use "
	    "a directory such as /run/mailpush that only root and mailpushd's "
	    "user can write)", dir, dir);
	ck_assert_msg(strstr(err, want) != NULL, "got:\n%s", err);
	/* the same with the sticky bit (/tmp): still refused */
	ck_assert_int_eq(chmod(dir, 01777), 0);
	ck_assert_int_eq(daemon_refuses(err, sizeof(err)), 78);
	ck_assert_ptr_nonnull(strstr(err, "(mode 1777)"));
	/* fixed as the message says: it starts */
	ck_assert_int_eq(chmod(dir, 0755), 0);
	ck_assert_int_eq(mpd_start(&P), 0);
}
END_TEST

/* F7: a socket directory owned by another user is refused. */
START_TEST(foreign_socket_dir)
{
	char dir[160], err[8192];

	if (!need_root("foreign_socket_dir"))
		return;
	ck_assert_int_eq(mpd_prepare(&P), 0);
	snprintf(dir, sizeof(dir), "%s/other", P.dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	ck_assert_int_eq(chown(dir, getpwnam("nobody")->pw_uid, 0), 0);
	snprintf(P.control, sizeof(P.control), "%s/control.sock", dir);
	ck_assert_int_eq(mpd_rewrite(&P, NULL), 0);
	ck_assert_int_eq(daemon_refuses(err, sizeof(err)), 78);
	ck_assert_msg(strstr(err, "control socket directory") != NULL &&
	    strstr(err, "not by root or uid 0") != NULL && strstr(err,
	    "refusing to use it (chown root") != NULL, "got:\n%s", err);
}
END_TEST

/* [mailpushd] user = is empty in the harness: set it to DUSER */
static void
set_daemon_user(void)
{
	FILE *fp;
	char text[8192], line[64], *u;
	size_t n, ll;

	snprintf(line, sizeof(line), "user = %s\n", DUSER);
	ll = strlen(line);
	ck_assert_int_eq(mpd_rewrite(&P, NULL), 0);
	fp = fopen(P.conf, "r");
	ck_assert_ptr_nonnull(fp);
	n = fread(text, 1, sizeof(text) - 1, fp);
	fclose(fp);
	text[n] = '\0';
	u = strstr(text, "user =\n");
	ck_assert_ptr_nonnull(u);
	memmove(u + ll, u + 7, strlen(u + 7) + 1);
	memcpy(u, line, ll);
	ck_assert_int_eq(write_text(P.conf, text, 0644), 0);
}

/*
 * Start the daemon (as root, user DUSER) with its sockets in a directory
 * of mode, owner and group given; they must be born DUSER's with their
 * final modes, whoever made them.
 */
static void
sockets_in_dir(mode_t mode, int dir_owner_is_root)
{
	struct passwd *pw;
	struct stat st;
	char dir[160];

	pw = daemon_user();
	ck_assert_ptr_nonnull(pw);
	ck_assert_int_eq(mpd_prepare(&P), 0);
	snprintf(dir, sizeof(dir), "%s/run", P.dir);
	ck_assert_int_eq(mkdir(dir, mode), 0);
	ck_assert_int_eq(chown(dir, dir_owner_is_root ? 0 : pw->pw_uid,
	    pw->pw_gid), 0);
	ck_assert_int_eq(chmod(dir, mode), 0);
	snprintf(P.events, sizeof(P.events), "%s/event.sock", dir);
	snprintf(P.control, sizeof(P.control), "%s/control.sock", dir);
	ck_assert_int_eq(chown(P.key_file, pw->pw_uid, pw->pw_gid), 0);
	set_daemon_user();
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(lstat(P.events, &st), 0);
	ck_assert_uint_eq(st.st_uid, pw->pw_uid);
	ck_assert_uint_eq(st.st_mode & 07777, 0666);
	ck_assert_int_eq(lstat(P.control, &st), 0);
	ck_assert_uint_eq(st.st_uid, pw->pw_uid);
	ck_assert_uint_eq(st.st_gid, pw->pw_gid);
	ck_assert_uint_eq(st.st_mode & 07777, 0660);
}

/*
 * F7: started as root, the daemon makes its sockets in a directory its
 * user owns as that user: they are born with their final owner (no root
 * unlink, bind or chown by path there).
 */
START_TEST(sockets_made_as_daemon_user)
{
	if (!need_root("sockets_made_as_daemon_user"))
		return;
	sockets_in_dir(0755, 0);
}
END_TEST

/*
 * F7 too: a directory of root's that the daemon's group may write (mode
 * 0770, group the daemon's) is accepted by dirs_check, so the sockets
 * there are made as the daemon's user as well: the event socket, which
 * root would make and never chown, is born the daemon's.
 */
START_TEST(sockets_in_group_dir_made_as_daemon_user)
{
	if (!need_root("sockets_in_group_dir_made_as_daemon_user"))
		return;
	sockets_in_dir(0770, 1);
}
END_TEST

/* F7: a state file that another user owns is not loaded. */
START_TEST(state_file_owner)
{
	char text[512];

	if (!need_root("state_file_owner"))
		return;
	ck_assert_int_eq(mpd_prepare(&P), 0);
	snprintf(text, sizeof(text), "mailpush-state 1\nreg 0badcafe alice "
	    "127.0.0.1 4000 127.0.0.1:%d 1699999000 4000000000 0 3 5 4 0 "
	    "637478 -\nend 1\n", P.port);
	ck_assert_int_eq(write_text(P.state, text, 0600), 0);
	ck_assert_int_eq(chown(P.state, getpwnam("nobody")->pw_uid, 0), 0);
	ck_assert_int_eq(mpd_rewrite(&P, NULL), 0);
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(mpd_log_wait(&P, "is owned by uid", 1, 2000), 0);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
}
END_TEST

/* F8: auth = none without a key file: the zero key forges nothing. */
START_TEST(auth_none_not_zero_key)
{
	struct tclient c;
	struct mp_reply rp;
	struct mp_push push;
	uint8_t zero[MP_KEY_LEN];

	ck_assert_int_eq(mpd_prepare(&P), 0);
	ck_assert_int_eq(unlink(P.key_file), 0);
	ck_assert_int_eq(mpd_rewrite(&P, "[mailpushd]\nauth = none\n"
	    "allow = 127.0.0.1/32\n"), 0);
	/* the harness wrote [mailpushd] first: the second one is a
	 * duplicate section only for the keys it names */
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(tc_open(&c, &P, 0, NULL, "alice"), 0);
	/* the token anybody could compute under the all-zero key */
	memset(zero, 0, sizeof(zero));
	proto_token(zero, "alice", 5, c.token);
	ck_assert_int_eq(tc_register(&c, "ctx", 3, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	ck_assert_int_eq(mpd_stat_wait(&P, "pushes", 1, 2000), 0);
	/* the push came, but does not verify under the zero-key token */
	ck_assert_int_ne(tc_push(&c, &push, 1500), 0);
	tc_close(&c);
	ck_assert_int_eq(mpd_log_wait(&P, "using a random key kept in memory",
	    1, 2000), 0);
}
END_TEST

/*
 * F3: the daemon warns when net.unix.max_dgram_qlen is small.  The test
 * runs it in a network namespace of its own (the sysctl is per
 * namespace; a new one starts at the kernel default, 10).
 */
static pid_t
start_in_netns(const char *qlen)
{
	pid_t pid;
	int fd;

	if ((pid = fork()) == 0) {
		if (unshare(CLONE_NEWNET) == -1)
			_exit(126);
		if (system("ip link set lo up") != 0)
			_exit(126);
		if (qlen != NULL) {
			fd = open("/proc/sys/net/unix/max_dgram_qlen",
			    O_WRONLY);
			if (fd == -1 || write(fd, qlen, strlen(qlen)) !=
			    (ssize_t)strlen(qlen))
				_exit(126);
			close(fd);
		}
		if ((fd = open(P.log, O_WRONLY | O_CREAT | O_APPEND, 0644))
		    == -1)
			_exit(127);
		dup2(fd, 2);
		execl(BUILDDIR "/mailpushd", "mailpushd", "-d", "-v", "-c",
		    P.conf, (char *)NULL);
		_exit(127);
	}
	return pid;
}

START_TEST(qlen_warning)
{
	if (!need_root("qlen_warning (needs a network namespace)"))
		return;
	if (access("/proc/sys/net/unix/max_dgram_qlen", R_OK) == -1 ||
	    system("command -v ip > /dev/null") != 0) {
		fprintf(stderr, "hardening: no max_dgram_qlen sysctl or no "
		    "ip(8): skipped qlen_warning\n");
		return;
	}
	ck_assert_int_eq(mpd_prepare(&P), 0);
	ck_assert_int_eq(mpd_rewrite(&P, NULL), 0);
	P.pid = start_in_netns(NULL);
	ck_assert_int_eq(mpd_wait_ready(&P, 5000), 0);
	ck_assert_int_eq(mpd_log_wait(&P, "warning: net.unix.max_dgram_qlen "
	    "is 10: the event socket queues at most 10 events", 1, 2000), 0);
	ck_assert_int_eq(mpd_log_count(&P, "sysctl -w "
	    "net.unix.max_dgram_qlen=512, and net.unix.max_dgram_qlen = 512 "
	    "in /etc/sysctl.d/"), 1);
	ck_assert_int_eq(mpd_stop(&P), 0);
	/* set as the message says: no warning */
	P.pid = start_in_netns("512");
	ck_assert_int_eq(mpd_wait_ready(&P, 5000), 0);
	ck_assert_int_eq(mpd_stop(&P), 0);
	ck_assert_int_eq(mpd_log_count(&P, "max_dgram_qlen is"), 1);
}
END_TEST

Suite *
make_hardening_suite(void)
{
	Suite *s = suite_create("hardening");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, mailbox_escaped_in_log);
	tcase_add_test(tc, hook_broken_limits_still_sends);
	tcase_add_test(tc, slow_control_clients);
	tcase_add_test(tc, control_total_deadline);
	tcase_add_test(tc, world_writable_socket_dir);
	tcase_add_test(tc, foreign_socket_dir);
	tcase_add_test(tc, sockets_made_as_daemon_user);
	tcase_add_test(tc, sockets_in_group_dir_made_as_daemon_user);
	tcase_add_test(tc, state_file_owner);
	tcase_add_test(tc, auth_none_not_zero_key);
	tcase_add_test(tc, qlen_warning);
	suite_add_tcase(s, tc);
	return s;
}
