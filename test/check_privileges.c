/*
 * check_privileges.c: who the real mailpushd runs as, and the key file
 * checks.  Started as root with a user it binds, then runs as that user
 * (read from /proc); started as anybody else it stays that user.  Tests
 * that need root say so on stderr and do nothing else when not root (CI
 * runs them as root).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "ops.h"
#include "statefile.h"

static struct mpd_proc P;
static char out[65536], err[8192];
static struct passwd nobody;

#define NEED_ROOT(name) do {					\
	if (geteuid() != 0) {						\
		fprintf(stderr, "privileges: %s skipped: needs root\n",	\
		    name);						\
		return;							\
	}								\
} while (0)

static void
setup(void)
{
	struct passwd *pw = getpwnam("nobody");

	ck_assert_ptr_nonnull(pw);
	nobody = *pw;
}

/* The daemon must exit 0 on SIGTERM, with no sanitizer report. */
static void
teardown(void)
{
	ck_assert_msg(mpd_finish(&P) == 0, "mailpushd in %s did not end "
	    "cleanly", P.dir);
}

/* Prepare P with these [mailpushd] lines before listen. */
static void
prepare(const char *mainlines)
{
	char main_[512];

	ck_assert_int_eq(ops_prepare(&P, NULL, NULL), 0);
	snprintf(main_, sizeof(main_), "%slisten = 127.0.0.1:%d [::1]:%d\n",
	    mainlines, P.port, P.port);
	ck_assert_int_eq(ops_write_config(&P, main_, NULL), 0);
}

static void
give_to_nobody(void)
{
	ck_assert_int_eq(chown(P.dir, nobody.pw_uid, nobody.pw_gid), 0);
	ck_assert_int_eq(chown(P.key_file, nobody.pw_uid, nobody.pw_gid), 0);
}

/* Registration and push work through the daemon. */
static void
works(void)
{
	struct tclient c;
	struct mp_reply rp;
	struct mp_push p;

	ck_assert_int_eq(tc_open(&c, &P, 0, NULL, "alice"), 0);
	ck_assert_int_eq(tc_register(&c, "ctx", 3, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	ck_assert_int_eq(tc_push(&c, &p, 3000), 0);
	ck_assert_int_eq(tc_ack(&c, &p), 0);
	ck_assert_int_eq(mpd_stat_wait(&P, "acks", 1, 2000), 0);
	tc_close(&c);
}

/* Real, effective, saved and fs ids; supplementary groups exactly
 * `groups' unless NULL. */
static void
expect_ids(pid_t pid, long uid, long gid, const char *want_groups)
{
	long u[4], g[4];
	char groups[256];
	int i;

	ck_assert_int_eq(proc_ids(pid, u, g, groups, sizeof(groups)), 0);
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(u[i], uid);
		ck_assert_int_eq(g[i], gid);
	}
	if (want_groups != NULL)
		ck_assert_msg(strcmp(groups, want_groups) == 0, "Groups: %s, "
		    "not %s", groups, want_groups);
}

START_TEST(drops_to_configured_user)
{
	struct stat st;
	char want[64];

	NEED_ROOT("drops_to_configured_user");
	prepare("user = nobody\n");
	give_to_nobody();
	ck_assert_int_eq(mpd_start(&P), 0);
	/* setgroups(1, gid): the group list is its own group alone */
	snprintf(want, sizeof(want), "%ld", (long)nobody.pw_gid);
	expect_ids(P.pid, (long)nobody.pw_uid, (long)nobody.pw_gid, want);
	snprintf(want, sizeof(want), "running as uid %ld gid %ld",
	    (long)nobody.pw_uid, (long)nobody.pw_gid);
	ck_assert_int_eq(mpd_log_count(&P, want), 1);
	/* the sockets were made for it */
	ck_assert_int_eq(stat(P.control, &st), 0);
	ck_assert_uint_eq(st.st_uid, nobody.pw_uid);
	ck_assert_uint_eq(st.st_gid, nobody.pw_gid);
	ck_assert_uint_eq(st.st_mode & 0777, 0660);
	ck_assert_int_eq(stat(P.events, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0666);
	works();
	/* reload runs as nobody: it can still read the file and the key */
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "reload", NULL), 0);
	ck_assert_int_eq(mpd_log_count(&P, "is not writable"), 0);
	ck_assert_int_eq(mpd_stop(&P), 0);
	/* and the state file was written as nobody */
	ck_assert_int_eq(stat(P.state, &st), 0);
	ck_assert_uint_eq(st.st_uid, nobody.pw_uid);
	{
		struct sf sf;
		size_t i, alice = 0;

		ck_assert_int_eq(sf_read(P.state, &sf), 0);
		for (i = 0; i < sf.n; i++)
			alice += sf.recs[i].f.type == REC_REG &&
			    strcmp(sf.recs[i].f.user, "alice") == 0;
		sf_free(&sf);
		ck_assert_uint_eq(alice, 1);
	}
}
END_TEST

START_TEST(unwritable_state_dir_reported)
{
	NEED_ROOT("unwritable_state_dir_reported");
	prepare("user = nobody\n");
	/* the key is nobody's, the directory stays root's */
	ck_assert_int_eq(chown(P.key_file, nobody.pw_uid, nobody.pw_gid), 0);
	ck_assert_int_eq(mpd_start(&P), 0);
	expect_ids(P.pid, (long)nobody.pw_uid, (long)nobody.pw_gid, NULL);
	ck_assert_int_eq(mpd_log_count(&P, "is not writable by uid"), 1);
	works();
}
END_TEST

START_TEST(key_owned_by_another)
{
	char want[64];

	NEED_ROOT("key_owned_by_another");
	prepare("user = nobody\n");
	ck_assert_int_eq(chown(P.dir, nobody.pw_uid, nobody.pw_gid), 0);
	/* the key stays root's */
	ck_assert_int_eq(ops_mailpushd_fails(&P, err, sizeof(err)), 78);
	snprintf(want, sizeof(want), "must be owned by uid %ld",
	    (long)nobody.pw_uid);
	ck_assert_msg(strstr(err, want) != NULL, "%s", err);
	ck_assert_int_eq(access(P.control, F_OK), -1);
	/* as it would be the other way round: root's daemon, nobody's key */
	mpd_cleanup(&P);
	prepare("user =\n");
	ck_assert_int_eq(chown(P.key_file, nobody.pw_uid, nobody.pw_gid), 0);
	ck_assert_int_eq(ops_mailpushd_fails(&P, err, sizeof(err)), 78);
	ck_assert_msg(strstr(err, "must be owned by uid 0") != NULL, "%s",
	    err);
}
END_TEST

START_TEST(key_file_checks)
{
	char link[192];

	/* whoever runs this: a key readable by others is refused */
	prepare("user =\n");
	ck_assert_int_eq(chmod(P.key_file, 0644), 0);
	ck_assert_int_eq(ops_mailpushd_fails(&P, err, sizeof(err)), 78);
	ck_assert_msg(strstr(err, "must not be accessible by group or others "
	    "(mode 0644; chmod 600 it)") != NULL, "%s", err);
	ck_assert_int_eq(access(P.control, F_OK), -1);
	ck_assert_int_eq(chmod(P.key_file, 0640), 0);
	ck_assert_int_eq(ops_mailpushd_fails(&P, err, sizeof(err)), 78);
	/* a symbolic link is not followed */
	ck_assert_int_eq(chmod(P.key_file, 0600), 0);
	snprintf(link, sizeof(link), "%s/keylink", P.dir);
	ck_assert_int_eq(symlink(P.key_file, link), 0);
	snprintf(P.key_file, sizeof(P.key_file), "%s", link);
	{
		char main_[256];

		snprintf(main_, sizeof(main_), "user =\nlisten = "
		    "127.0.0.1:%d\n", P.port);
		ck_assert_int_eq(ops_write_config(&P, main_, NULL), 0);
	}
	ck_assert_int_eq(ops_mailpushd_fails(&P, err, sizeof(err)), 78);
	ck_assert_msg(strstr(err, "cannot open key file") != NULL, "%s", err);
	/* missing, and not a key */
	ck_assert_int_eq(unlink(link), 0);
	ck_assert_int_eq(ops_mailpushd_fails(&P, err, sizeof(err)), 78);
	ck_assert_msg(strstr(err, "mailpushctl genkey") != NULL, "%s", err);
	ck_assert_int_eq(write_text(link, "0123abc\n", 0600), 0);
	ck_assert_int_eq(ops_mailpushd_fails(&P, err, sizeof(err)), 78);
	ck_assert_msg(strstr(err, "not 64 hexadecimal digits") != NULL, "%s",
	    err);
}
END_TEST

START_TEST(unprivileged_from_start)
{
	long uid = (long)geteuid(), gid = (long)getegid();

	if (geteuid() != 0) {
		/* the harness's own daemon: the caller's ids, untouched */
		ck_assert_int_eq(mpd_setup(&P, NULL), 0);
		expect_ids(P.pid, uid, gid, NULL);
		works();
		return;
	}
	/* root starts it as nobody; the file's user (the default,
	 * "mailpush", whether it exists or not) is not used */
	prepare("");
	give_to_nobody();
	ck_assert_int_eq(ops_start_as(&P, nobody.pw_uid, nobody.pw_gid), 0);
	/* it was started without supplementary groups and added none */
	expect_ids(P.pid, (long)nobody.pw_uid, (long)nobody.pw_gid, "");
	ck_assert_int_eq(mpd_log_count(&P, "not started as root"), 1);
	works();
	ck_assert_int_eq(mpd_stop(&P), 0);
	ck_assert_int_gt(read_text(P.state, out, sizeof(out)), 0);
}
END_TEST

START_TEST(root_with_unknown_user)
{
	NEED_ROOT("root_with_unknown_user");
	/* named in the file: a configuration error */
	prepare("user = mp-no-such-user\n");
	ck_assert_int_eq(ops_mailpushd_fails(&P, err, sizeof(err)), 78);
	ck_assert_msg(strstr(err, "no such user") != NULL, "%s", err);
	mpd_cleanup(&P);
	/* the built-in default, when it does not exist here */
	if (getpwnam("mailpush") != NULL) {
		fprintf(stderr, "privileges: default user part skipped: a "
		    "mailpush user exists\n");
		return;
	}
	prepare("");
	ck_assert_int_eq(ops_mailpushd_fails(&P, err, sizeof(err)), 78);
	ck_assert_msg(strstr(err, "[mailpushd] user: no such user "
	    "\"mailpush\"") != NULL, "%s", err);
}
END_TEST

Suite *
make_privileges_suite(void)
{
	Suite *s = suite_create("privileges");
	TCase *tc = tcase_create("privileges");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, drops_to_configured_user);
	tcase_add_test(tc, unwritable_state_dir_reported);
	tcase_add_test(tc, key_owned_by_another);
	tcase_add_test(tc, key_file_checks);
	tcase_add_test(tc, unprivileged_from_start);
	tcase_add_test(tc, root_with_unknown_user);
	suite_add_tcase(s, tc);
	return s;
}
