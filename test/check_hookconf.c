/*
 * check_hookconf.c: mailpush-hook's configuration through the real
 * binary (check_hook.h): -s/-t against the INI file, no file needed,
 * misconfiguration in wrapper mode (the agent still runs), an agent not
 * found, usage errors.
 */
#include "check_hook.h"

Suite	*make_hookconf_suite(void);

/* config: INI file against -s and -t */

START_TEST(test_ini_sockets)
{
	char other[PATH_MAX], text[2 * PATH_MAX];
	struct run r;
	int ofd;

	/* [hook] socket is used (setup wrote it into conf). */
	HOOK(&r, env_alice, NULL, 0, "-c", conf);
	ck_assert_int_eq(r.status, 0);
	run_free(&r);
	assert_event(evfd, "alice", "INBOX");

	/* With [hook] socket empty, the [events] socket is. */
	tpath(other, "events.sock");
	ofd = bind_dgram(other);
	snprintf(text, sizeof(text), "[events]\nsocket = %s\n\n[hook]\n"
	    "socket =\ntimeout = 50ms\n", other);
	write_file(conf, text);
	HOOK(&r, env_alice, NULL, 0, "-c", conf, "--", SH, "-c", "exit 0");
	ck_assert_int_eq(r.status, 0);
	assert_silent(&r);
	run_free(&r);
	assert_event(ofd, "alice", "INBOX");
	assert_no_event(evfd);

	/* [hook] socket wins over [events] socket. */
	snprintf(text, sizeof(text), "[events]\nsocket = %s\n\n[hook]\n"
	    "socket = %s\n", other, evpath);
	write_file(conf, text);
	HOOK(&r, env_alice, NULL, 0, "-c", conf, "--", SH, "-c", "exit 0");
	ck_assert_int_eq(r.status, 0);
	run_free(&r);
	assert_event(evfd, "alice", "INBOX");
	assert_no_event(ofd);
	close(ofd);
}
END_TEST

START_TEST(test_s_overrides_ini)
{
	char other[PATH_MAX];
	struct run r;
	int ofd;

	tpath(other, "other.sock");
	ofd = bind_dgram(other);
	HOOK(&r, env_alice, NULL, 0, "-c", conf, "-s", other, "--", SH, "-c",
	    "exit 0");
	ck_assert_int_eq(r.status, 0);
	assert_silent(&r);
	run_free(&r);
	assert_event(ofd, "alice", "INBOX");
	assert_no_event(evfd);

	/* Standalone too. */
	HOOK(&r, env_alice, NULL, 0, "-c", conf, "-s", other);
	ck_assert_int_eq(r.status, 0);
	run_free(&r);
	assert_event(ofd, "alice", "INBOX");
	assert_no_event(evfd);
	close(ofd);
}
END_TEST

START_TEST(test_ini_timeout_honoured)
{
	char text[PATH_MAX + 64];
	struct run r;

	snprintf(text, sizeof(text), "[hook]\nsocket = %s\ntimeout = 400ms\n",
	    evpath);
	write_file(conf, text);
	fill_socket(evpath);
	HOOK(&r, env_alice, NULL, 0, "-d", "-c", conf, "--", SH, "-c",
	    "exit 0");
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(r.secs >= 0.39 && r.secs < 2.0, "took %.3f s for a "
	    "400ms timeout", r.secs);
	ck_assert_ptr_nonnull(strstr(r.err, "timed out after 400ms"));
	run_free(&r);
}
END_TEST

START_TEST(test_t_overrides_ini)
{
	char text[PATH_MAX + 64];
	struct run r;

	snprintf(text, sizeof(text), "[hook]\nsocket = %s\ntimeout = 10s\n",
	    evpath);
	write_file(conf, text);
	fill_socket(evpath);
	HOOK(&r, env_alice, NULL, 0, "-d", "-c", conf, "-t", "100ms", "--",
	    SH, "-c", "exit 0");
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(r.secs >= 0.099 && r.secs < 1.0, "took %.3f s for a "
	    "100ms timeout", r.secs);
	ck_assert_ptr_nonnull(strstr(r.err, "timed out after 100ms"));
	run_free(&r);
}
END_TEST

START_TEST(test_no_file_needed)
{
	char nx[PATH_MAX];
	struct run r;

	/* -s and -t leave nothing to read; the default file is not needed. */
	HOOK(&r, env_alice, NULL, 0, "-s", evpath, "-t", "50ms", "--", SH,
	    "-c", "exit 0");
	ck_assert_int_eq(r.status, 0);
	assert_silent(&r);
	run_free(&r);
	assert_event(evfd, "alice", "INBOX");

	/* A file named with -c that is missing is one warning, and the
	 * built-in defaults; the event still goes to the -s socket. */
	tpath(nx, "missing.conf");
	HOOK(&r, env_alice, NULL, 0, "-d", "-c", nx, "-s", evpath, "-t",
	    "50ms", "--", SH, "-c", "exit 0");
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.err, "cannot open configuration"));
	ck_assert_ptr_nonnull(strstr(r.err, "uses the built-in defaults"));
	run_free(&r);
	assert_event(evfd, "alice", "INBOX");

	/* standalone, no -s: the default socket, which is not there here */
	HOOK(&r, env_alice, NULL, 0, "-c", nx);
	ck_assert_int_eq(r.status, 0);
	run_free(&r);
	assert_no_event(evfd);
}
END_TEST

/* config: misconfiguration never stops the agent */

START_TEST(test_broken_ini_wrapper)
{
	char marker[PATH_MAX], script[PATH_MAX + 64], text[PATH_MAX + 256];
	struct run r;

	/*
	 * Errors in what the hook uses ([hook] timeout) mean that key's
	 * default; errors elsewhere (a bad line, an unknown section, a bad
	 * [limits] value) are one log line; the event is still sent.
	 */
	snprintf(text, sizeof(text), "[events]\nsocket = %s\n[hook]\n"
	    "timeout = forever\nthis is not ini\n[nosuch]\nkey = 1\n"
	    "[limits]\nmax_registrations = lots\n", evpath);
	write_file(conf, text);
	tpath(marker, "ran");
	snprintf(script, sizeof(script), "echo ran > %s; exit 67", marker);
	HOOK(&r, env_alice, NULL, 0, "-c", conf, "--", SH, "-c", script);
	ck_assert_int_eq(r.status, 67);
	ck_assert(exists(marker));
	assert_silent(&r);	/* the warnings went to syslog */
	run_free(&r);
	assert_no_event(evfd);	/* the agent failed: no event */

	ck_assert_int_eq(unlink(marker), 0);
	snprintf(script, sizeof(script), "echo ran > %s; exit 0", marker);
	HOOK(&r, env_alice, NULL, 0, "-d", "-c", conf, "--", SH, "-c", script);
	ck_assert_int_eq(r.status, 0);
	ck_assert(exists(marker));
	ck_assert_ptr_nonnull(strstr(r.err, "[hook] timeout: must be a "
	    "duration"));
	ck_assert_ptr_nonnull(strstr(r.err, "(mailpush-hook uses the "
	    "built-in default)"));
	ck_assert_ptr_nonnull(strstr(r.err, "3 errors in parts mailpush-hook "
	    "does not use, ignored (first: "));
	ck_assert_ptr_null(strstr(r.err, "max_registrations"));
	run_free(&r);
	assert_event(evfd, "alice", "INBOX");

	/* Standalone: the same, exit 0 */
	HOOK(&r, env_alice, NULL, 0, "-c", conf);
	ck_assert_int_eq(r.status, 0);
	run_free(&r);
	assert_event(evfd, "alice", "INBOX");

	/* A bad [hook] socket keeps its default (empty: the [events]
	 * socket), so the event goes there */
	snprintf(text, sizeof(text), "[events]\nsocket = %s\n[hook]\n"
	    "socket = relative/path\n", evpath);
	write_file(conf, text);
	HOOK(&r, env_alice, NULL, 0, "-d", "-c", conf);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.err, "[hook] socket: must be an "
	    "absolute path"));
	run_free(&r);
	assert_event(evfd, "alice", "INBOX");
	assert_no_event(evfd);
}
END_TEST

START_TEST(test_bad_options_wrapper)
{
	const char *const bad[][2] = {
		{ "-t", "soon" },
		{ "-t", "0" },
		{ "-t", "11s" },
		{ "-s", "relative.sock" },
		{ "-x", "-d" },
		{ "-u", "" },
		{ "-m", "" },
	};
	size_t i;
	struct run r;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		HOOK(&r, env_alice, NULL, 0, "-c", conf, bad[i][0], bad[i][1],
		    "--", SH, "-c", "exit 3");
		ck_assert_msg(r.status == 3, "%s %s: status %d", bad[i][0],
		    bad[i][1], r.status);
		run_free(&r);
		HOOK(&r, env_alice, NULL, 0, "-d", "-c", conf, bad[i][0],
		    bad[i][1], "--", SH, "-c", "exit 0");
		ck_assert_msg(r.status == 0, "%s %s: status %d", bad[i][0],
		    bad[i][1], r.status);
		ck_assert_msg(strstr(r.err, "(running " SH ", no push)") !=
		    NULL, "%s %s: %s", bad[i][0], bad[i][1], r.err);
		run_free(&r);
		assert_no_event(evfd);
	}

	/* No user anywhere: the agent runs, no event. */
	HOOK(&r, env_bare, NULL, 0, "-d", "-c", conf, "--", SH, "-c", "exit 0");
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.err, "no user"));
	run_free(&r);
	assert_no_event(evfd);

	/* -u lost its argument to `--': the agent is still found. */
	HOOK(&r, env_alice, NULL, 0, "-d", "-c", conf, "-u", "--", SH, "-c",
	    "exit 5");
	ck_assert_int_eq(r.status, 5);
	ck_assert_ptr_nonnull(strstr(r.err, "needs an argument"));
	run_free(&r);
	assert_no_event(evfd);

	/* A stray argument before `--'. */
	HOOK(&r, env_alice, NULL, 0, "-c", conf, "stray", "--", SH, "-c",
	    "exit 0");
	ck_assert_int_eq(r.status, 0);
	run_free(&r);
	assert_no_event(evfd);
}
END_TEST

START_TEST(test_agent_not_found)
{
	char marker[PATH_MAX], script[PATH_MAX + 64];
	struct run r;

	tpath(marker, "ran");
	snprintf(script, sizeof(script), "echo ran > %s", marker);

	/* The `--' was forgotten: the agent is not run, mail deferred. */
	HOOK(&r, env_alice, "mail\n", 5, "-c", conf, "-u", "alice", SH, "-c",
	    script);
	ck_assert_int_eq(r.status, 75);
	ck_assert(!exists(marker));
	ck_assert_ptr_nonnull(strstr(r.err, "no -- before the delivery agent"));
	ck_assert_ptr_nonnull(strstr(r.err, "(mail deferred)"));
	run_free(&r);

	/* Broken options and no `--'. */
	HOOK(&r, env_alice, NULL, 0, "-x", "-t", "bogus", SH, "-c", script);
	ck_assert_int_eq(r.status, 75);
	ck_assert(!exists(marker));
	ck_assert_uint_gt(r.errlen, 0);
	run_free(&r);

	/* `--' and nothing after it. */
	HOOK(&r, env_alice, NULL, 0, "-c", conf, "-u", "alice", "--");
	ck_assert_int_eq(r.status, 75);
	ck_assert_ptr_nonnull(strstr(r.err, "no delivery agent after --"));
	run_free(&r);
	assert_no_event(evfd);
}
END_TEST

START_TEST(test_usage_standalone)
{
	struct run r;

	HOOK(&r, env_alice, NULL, 0, "-h");
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "usage: mailpush-hook"));
	ck_assert_uint_eq(r.errlen, 0);
	run_free(&r);

	HOOK(&r, env_alice, NULL, 0, "-c", conf, "-x");
	ck_assert_int_eq(r.status, 64);
	ck_assert_ptr_nonnull(strstr(r.err, "unknown option -x"));
	ck_assert_ptr_nonnull(strstr(r.err, "usage:"));
	run_free(&r);

	HOOK(&r, env_alice, NULL, 0, "-c", conf, "-t", "later");
	ck_assert_int_eq(r.status, 64);
	ck_assert_ptr_nonnull(strstr(r.err, "-t"));
	run_free(&r);

	HOOK(&r, env_alice, NULL, 0, "-c", conf, "-m");
	ck_assert_int_eq(r.status, 64);
	ck_assert_ptr_nonnull(strstr(r.err, "needs an argument"));
	run_free(&r);

	HOOK(&r, env_bare, NULL, 0, "-c", conf);
	ck_assert_int_eq(r.status, 64);
	ck_assert_ptr_nonnull(strstr(r.err, "no user"));
	run_free(&r);
	assert_no_event(evfd);
}
END_TEST

Suite *
make_hookconf_suite(void)
{
	Suite *s = suite_create("hookconf");
	TCase *tc;

	tc = tcase_create("config");
	tcase_add_unchecked_fixture(tc, tcase_setup, tcase_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_ini_sockets);
	tcase_add_test(tc, test_s_overrides_ini);
	tcase_add_test(tc, test_ini_timeout_honoured);
	tcase_add_test(tc, test_t_overrides_ini);
	tcase_add_test(tc, test_no_file_needed);
	tcase_add_test(tc, test_broken_ini_wrapper);
	tcase_add_test(tc, test_bad_options_wrapper);
	tcase_add_test(tc, test_agent_not_found);
	tcase_add_test(tc, test_usage_standalone);
	suite_add_tcase(s, tc);
	return s;
}
