/*
 * check_health.c: `mailpushctl status' as a monitoring check (each socket
 * and the state file), `mailpushctl stats' text columns and its
 * Prometheus output (checked by promtool and by a strict reading here),
 * and a reload that names the key file when the key is the problem.
 * All against the real mailpushd and mailpushctl.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <pwd.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "ops.h"

static struct mpd_proc P;
static char out[65536], err[8192];

static void
setup(void)
{
	ck_assert_int_eq(mpd_setup(&P, NULL), 0);
}

static void
teardown(void)
{
	/* a test may have left the directory read-only */
	(void)chmod(P.dir, 0700);
	ck_assert_msg(mpd_finish(&P) == 0, "mailpushd in %s did not end "
	    "cleanly", P.dir);
}

START_TEST(healthy)
{
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "status", NULL), 0);
	ck_assert_msg(strstr(out, "health: ok\n") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "problem:") == NULL, "%s", out);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "-j", "status", NULL), 0);
	ck_assert_msg(strstr(out, "\"problems\":[],\"healthy\":true}") != NULL,
	    "%s", out);
}
END_TEST

START_TEST(event_socket_removed)
{
	char want[256];

	ck_assert_int_eq(unlink(P.events), 0);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "status", NULL), 2);
	snprintf(want, sizeof(want), "event socket: %s (missing)\n", P.events);
	ck_assert_msg(strstr(out, want) != NULL, "%s", out);
	snprintf(want, sizeof(want), "problem: event socket %s is missing",
	    P.events);
	ck_assert_msg(strstr(out, want) != NULL, "%s", out);
	ck_assert_msg(strstr(out, "health: 1 problem\n") != NULL, "%s", out);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "-j", "status", NULL), 2);
	ck_assert_msg(json_check(out, err, sizeof(err)) == 0, "%s: %s", err,
	    out);
	ck_assert_msg(strstr(out, "\"healthy\":false") != NULL, "%s", out);
	/* a file of another kind in its place is named as such */
	ck_assert_int_eq(write_text(P.events, "x\n", 0666), 0);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "status", NULL), 2);
	ck_assert_msg(strstr(out, "is not a socket any more") != NULL, "%s",
	    out);
	ck_assert_int_eq(unlink(P.events), 0);
}
END_TEST

START_TEST(control_socket_mode_changed)
{
	ck_assert_int_eq(chmod(P.control, 0666), 0);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "status", NULL), 2);
	ck_assert_msg(strstr(out, "has mode 0666, not the configured 0660")
	    != NULL, "%s", out);
}
END_TEST

/*
 * The state directory made read-only under a running daemon.  As root the
 * daemon runs as nobody (root would write anyway); otherwise as the caller.
 */
START_TEST(state_dir_read_only)
{
	struct tclient c;
	struct mp_reply rp;
	struct passwd *pw;
	char main_[256];
	int i, rc = 0;

	mpd_cleanup(&P);
	ck_assert_int_eq(ops_prepare(&P, NULL, NULL), 0);
	snprintf(main_, sizeof(main_), "%sstate_save_interval = 1s\n"
	    "listen = 127.0.0.1:%d [::1]:%d\n", geteuid() == 0 ?
	    "user = nobody\n" : "user =\n", P.port, P.port);
	ck_assert_int_eq(ops_write_config(&P, main_, NULL), 0);
	if (geteuid() == 0) {
		ck_assert_ptr_nonnull(pw = getpwnam("nobody"));
		ck_assert_int_eq(chown(P.dir, pw->pw_uid, pw->pw_gid), 0);
		ck_assert_int_eq(chown(P.key_file, pw->pw_uid, pw->pw_gid),
		    0);
	}
	rc = mpd_start(&P);
	if (rc != 0) {
		read_text(P.log, out, sizeof(out));
		ck_abort_msg("mailpushd did not start: %s", out);
	}
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "status", NULL), 0);
	ck_assert_int_eq(chmod(P.dir, 0555), 0);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "status", NULL), 2);
	ck_assert_msg(strstr(out, "problem: state directory ") != NULL &&
	    strstr(out, "is not writable by uid") != NULL, "%s", out);
	/* a registration makes the state dirty: the save fails, and says so */
	ck_assert_int_eq(tc_open(&c, &P, 0, NULL, "alice"), 0);
	ck_assert_int_eq(tc_register(&c, "ctx", 3, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	/* up to 10 s each: the disk is retried every second, later on a
	 * busy machine */
	for (i = 0; i < 200; i++) {
		rc = ops_ctl(&P, out, sizeof(out), err, sizeof(err), "status",
		    NULL);
		if (strstr(out, "is not being saved") != NULL)
			break;
		usleep(50000);
	}
	ck_assert_int_eq(rc, 2);
	ck_assert_msg(strstr(out, "is not being saved (Permission denied")
	    != NULL, "%s", out);
	ck_assert_msg(strstr(out, "health: 2 problems\n") != NULL, "%s", out);
	/* writable again: the next save clears it */
	ck_assert_int_eq(chmod(P.dir, 0700), 0);
	ck_assert_int_eq(tc_register(&c, "ctx2", 4, &rp), 0);
	for (i = 0; i < 200; i++) {
		rc = ops_ctl(&P, out, sizeof(out), err, sizeof(err), "status",
		    NULL);
		if (rc == 0)
			break;
		usleep(50000);
	}
	ck_assert_msg(rc == 0, "%s", out);
	tc_close(&c);
}
END_TEST

/* The state file removed or opened up after a save. */
START_TEST(state_file_checks)
{
	struct tclient c;
	struct mp_reply rp;
	char main_[256];
	int i;

	mpd_cleanup(&P);
	ck_assert_int_eq(ops_prepare(&P, NULL, NULL), 0);
	snprintf(main_, sizeof(main_), "user =\nstate_save_interval = 1s\n"
	    "listen = 127.0.0.1:%d [::1]:%d\n", P.port, P.port);
	ck_assert_int_eq(ops_write_config(&P, main_, NULL), 0);
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(tc_open(&c, &P, 0, NULL, "alice"), 0);
	ck_assert_int_eq(tc_register(&c, "ctx", 3, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	for (i = 0; i < 60 && access(P.state, F_OK) != 0; i++)
		usleep(50000);
	ck_assert_int_eq(access(P.state, F_OK), 0);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "status", NULL), 0);
	ck_assert_int_eq(chmod(P.state, 0644), 0);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "status", NULL), 2);
	ck_assert_msg(strstr(out, "has mode 0644: it holds every client's") !=
	    NULL, "%s", out);
	ck_assert_int_eq(unlink(P.state), 0);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "status", NULL), 2);
	ck_assert_msg(strstr(out, "is missing (removed since it was saved")
	    != NULL, "%s", out);
	tc_close(&c);
}
END_TEST

/* Every text line: NAME, spaces, VALUE, with all values in one column. */
START_TEST(stats_columns)
{
	char *line, *save = NULL;
	long col = -1;
	size_t n = 0;

	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "stats", NULL), 0);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save), n++) {
		char *sp = strchr(line, ' '), *v;

		ck_assert_msg(sp != NULL, "no value: %s", line);
		for (v = sp; *v == ' '; v++)
			;
		ck_assert_msg(*v >= '0' && *v <= '9', "%s", line);
		if (col == -1)
			col = v - line;
		ck_assert_msg(v - line == col, "column %ld, not %ld: %s",
		    (long)(v - line), col, line);
	}
	ck_assert_uint_gt(n, 30);
	/* the longest name still has a space before its value */
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "stats", NULL), 0);
	ck_assert_msg(strstr(out, "registrations_unreachable 0\n") != NULL ||
	    strstr(out, "registrations_unreachable  ") != NULL, "%s", out);
}
END_TEST

/* promtool check metrics on stdin: its exit status, its complaints in why */
static int
promtool(const char *text, char *why, size_t len)
{
	char path[256], cmd[512];
	FILE *fp;
	size_t n;
	int st;

	snprintf(path, sizeof(path), "%s/metrics.prom", P.dir);
	ck_assert_int_eq(write_text(path, text, 0644), 0);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' 2>&1", path);
	ck_assert_ptr_nonnull(fp = popen(cmd, "r"));
	n = fread(why, 1, len - 1, fp);
	why[n] = '\0';
	st = pclose(fp);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(stats_prometheus)
{
	static const char *const sample_re =
	    "^mailpush_[a-z_]+(\\{[a-z]+=\"[a-z_0-9.]+\"\\})? "
	    "[0-9]+(\\.[0-9]+)?$";
	char *line, *save = NULL, last_type[128] = "", why[4096];
	regex_t re;
	int samples = 0;

	/* something to count first */
	ck_assert_int_eq(mpd_hook(&P, "alice", "INBOX"), 0);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "stats", "-o", "prometheus", NULL), 0);
	ck_assert_msg(access("/usr/bin/promtool", X_OK) == 0, "promtool "
	    "(Debian package prometheus) is needed: make deps installs it");
	ck_assert_msg(promtool(out, why, sizeof(why)) == 0, "promtool: %s\n%s",
	    why, out);
	ck_assert_msg(why[0] == '\0', "promtool complains: %s", why);
	ck_assert_msg(strstr(out, "mailpush_build_info{version=\"")
	    != NULL, "%s", out);
	ck_assert_msg(strstr(out, "\nmailpush_events_received_total 1\n")
	    != NULL, "%s", out);
	ck_assert_msg(strstr(out, "mailpush_registrations_refused_total"
	    "{reason=\"auth\"} 0\n") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "\nmailpush_health_problems 0\n") != NULL,
	    "%s", out);
	/* a count of what the table holds now can fall: a gauge */
	ck_assert_msg(strstr(out, "# TYPE mailpush_tombstones gauge\n") !=
	    NULL, "mailpush_tombstones is not a gauge");
	/* a time in seconds, with the microseconds of the text output */
	ck_assert_msg(strstr(out, "\nmailpush_state_loop_max_seconds 0.") !=
	    NULL, "no mailpush_state_loop_max_seconds 0.NNNNNN");
	/* and a strict reading: HELP and TYPE before each family's samples */
	ck_assert_int_eq(regcomp(&re, sample_re, REG_EXTENDED | REG_NOSUB), 0);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char name[128];

		if (strncmp(line, "# HELP ", 7) == 0)
			continue;
		if (sscanf(line, "# TYPE %127s", last_type) == 1) {
			const char *t = strchr(line + 7, ' ') + 1;

			ck_assert_msg(strcmp(t, "counter") == 0 ||
			    strcmp(t, "gauge") == 0, "%s", line);
			if (strcmp(t, "counter") == 0)
				ck_assert_msg(strlen(last_type) > 6 &&
				    strcmp(last_type + strlen(last_type) - 6,
				    "_total") == 0, "counter without _total: "
				    "%s", line);
			continue;
		}
		ck_assert_msg(regexec(&re, line, 0, NULL, 0) == 0,
		    "not a sample line: %s", line);
		ck_assert_msg(strstr(line, "user=") == NULL, "%s", line);
		sscanf(line, "%127[a-z_]", name);
		ck_assert_msg(strcmp(name, last_type) == 0, "sample %s under "
		    "TYPE %s", name, last_type);
		samples++;
	}
	regfree(&re);
	ck_assert_int_gt(samples, 30);
	/* unknown formats and -p elsewhere are refused */
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "stats", "-o", "xml", NULL), 64);
	ck_assert_msg(strstr(err, "not text, json or prometheus") != NULL,
	    "%s", err);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "stats", "-o", "json", NULL), 0);
	ck_assert_msg(json_check(out, why, sizeof(why)) == 0, "%s", out);
}
END_TEST

START_TEST(reload_without_key)
{
	int rc;

	ck_assert_int_eq(unlink(P.key_file), 0);
	rc = ops_ctl(&P, out, sizeof(out), err, sizeof(err), "reload", NULL);
	ck_assert_msg(rc == 1, "exit %d: %s", rc, err);
	ck_assert_msg(strstr(err, "reload failed: cannot open key file ") !=
	    NULL && strstr(err, "No such file or directory (create it with "
	    "mailpushctl genkey); the old configuration stays in force") !=
	    NULL, "%s", err);
	ck_assert_msg(strstr(err, "has errors") == NULL, "%s", err);
	/* a bad file is still called that */
	ck_assert_int_eq(mpd_rewrite(&P, "[nosuchsection]\n"), 0);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "reload", NULL), 1);
	ck_assert_msg(strstr(err, "has errors") != NULL, "%s", err);
}
END_TEST

Suite *
make_health_suite(void)
{
	Suite *s = suite_create("health");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, healthy);
	tcase_add_test(tc, event_socket_removed);
	tcase_add_test(tc, control_socket_mode_changed);
	tcase_add_test(tc, state_dir_read_only);
	tcase_add_test(tc, state_file_checks);
	tcase_add_test(tc, stats_columns);
	tcase_add_test(tc, stats_prometheus);
	tcase_add_test(tc, reload_without_key);
	suite_add_tcase(s, tc);
	return s;
}
