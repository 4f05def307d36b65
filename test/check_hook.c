/*
 * check_hook.c: mailpush-hook through the real binary, run as Postfix runs
 * it (bare environment, PATH=/usr/bin:/bin, no HOME), against a datagram
 * socket the test binds in a temp directory (check_hook.h).
 *
 * Covered: exit status passthrough and signals; stdin byte for byte (10 MB
 * and every byte value); argv passthrough; the event in wrapper and
 * standalone modes and never after a failed agent; USER/LOGNAME; the send
 * timeout with no socket, a stale socket and a full socket; silence on
 * success.  The INI file, -s/-t, misconfiguration and usage errors:
 * check_hookconf.c.
 */
#include "check_hook.h"

Suite	*make_hook_suite(void);

/* core: the agent */

START_TEST(test_status_passthrough)
{
	static const int codes[] = { 0, 1, 67, 75, 100, 255 };
	char script[32];
	struct run r;
	size_t i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		snprintf(script, sizeof(script), "exit %d", codes[i]);
		HOOK(&r, env_bare, NULL, 0, "-c", conf, "-u", "alice", "--",
		    SH, "-c", script);
		ck_assert_int_eq(r.status, codes[i]);
		assert_silent(&r);
		run_free(&r);
		if (codes[i] == 0)
			assert_event(evfd, "alice", "INBOX");
		else
			assert_no_event(evfd);
	}
}
END_TEST

START_TEST(test_signal_is_tempfail)
{
	struct run r;

	HOOK(&r, env_bare, NULL, 0, "-c", conf, "-u", "alice", "--", SH,
	    "-c", "kill -KILL $$");
	ck_assert_int_eq(r.status, 75);
	assert_no_event(evfd);
	run_free(&r);

	HOOK(&r, env_bare, NULL, 0, "-d", "-c", conf, "-u", "alice", "--", SH,
	    "-c", "kill -TERM $$");
	ck_assert_int_eq(r.status, 75);
	ck_assert_ptr_nonnull(strstr(r.err, "killed by signal 15"));
	ck_assert_ptr_nonnull(strstr(r.err, "(mail deferred)"));
	assert_no_event(evfd);
	run_free(&r);
}
END_TEST

START_TEST(test_exec_failure)
{
	char nx[PATH_MAX];
	struct run r;

	tpath(nx, "no-such-agent");
	HOOK(&r, env_bare, NULL, 0, "-c", conf, "-u", "alice", "--", nx,
	    "-d", "alice");
	ck_assert_int_eq(r.status, 75);
	ck_assert_ptr_nonnull(strstr(r.err, "cannot execute"));
	ck_assert_ptr_nonnull(strstr(r.err, "No such file or directory"));
	assert_no_event(evfd);
	run_free(&r);

	/* A relative agent is not looked up in PATH: deferred. */
	HOOK(&r, env_bare, NULL, 0, "-c", conf, "-u", "alice", "--", "sh",
	    "-c", "exit 0");
	ck_assert_int_eq(r.status, 75);
	ck_assert_ptr_nonnull(strstr(r.err, "absolute path"));
	assert_no_event(evfd);
	run_free(&r);
}
END_TEST

/* The agent reads stdin into tmp/got; compare with what was fed. */
static void
check_stdin(const unsigned char *msg, size_t len)
{
	char got[PATH_MAX];
	struct run r;
	char *data;
	size_t n;

	tpath(got, "got");
	HOOK(&r, env_bare, msg, len, "-c", conf, "-u", "alice", "--", SH,
	    "-c", "exec /bin/cat > \"$1\"", "sh", got);
	ck_assert_int_eq(r.status, 0);
	assert_silent(&r);
	run_free(&r);
	data = read_file(got, &n);
	ck_assert_ptr_nonnull(data);
	ck_assert_uint_eq(n, len);
	ck_assert_msg(memcmp(data, msg, len) == 0, "stdin was altered");
	free(data);
	assert_event(evfd, "alice", "INBOX");
}

START_TEST(test_stdin_10mb)
{
	size_t len = 10 * 1024 * 1024, i;
	unsigned char *msg = malloc(len);
	uint32_t x = 2463534242U;

	ck_assert_ptr_nonnull(msg);
	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		msg[i] = (unsigned char)x;
	}
	memcpy(msg, "From: a@example.org\nSubject: big\n\n", 34);
	check_stdin(msg, len);
	free(msg);
}
END_TEST

START_TEST(test_stdin_every_byte)
{
	unsigned char msg[256 * 4 + 3];
	size_t i;

	/* Every value, in order and reversed, no trailing newline. */
	for (i = 0; i < 256; i++) {
		msg[i] = (unsigned char)i;
		msg[256 + i] = (unsigned char)(255 - i);
		msg[512 + i] = (unsigned char)i;
		msg[768 + i] = (unsigned char)(i * 7);
	}
	msg[1024] = '\r';
	msg[1025] = '\0';
	msg[1026] = 0xff;
	check_stdin(msg, sizeof(msg));
}
END_TEST

START_TEST(test_stdin_empty)
{
	check_stdin((const unsigned char *)"", 0);
}
END_TEST

START_TEST(test_argv_env_passthrough)
{
	const char *const env[] = { "PATH=/usr/bin:/bin", "FOO=bar baz",
	    NULL };
	char got[PATH_MAX];
	struct run r;
	char *data;
	size_t n;

	tpath(got, "args");
	HOOK(&r, env, NULL, 0, "-c", conf, "-u", "alice", "--", SH, "-c",
	    "exec > \"$1\"; shift; printf '[%s]\\n' \"$@\" \"$FOO\"", "sh",
	    got, "-u", "--", "", "two words", "-d", "-h");
	ck_assert_int_eq(r.status, 0);
	assert_silent(&r);
	run_free(&r);
	data = read_file(got, &n);
	ck_assert_ptr_nonnull(data);
	ck_assert_str_eq(data, "[-u]\n[--]\n[]\n[two words]\n[-d]\n[-h]\n"
	    "[bar baz]\n");
	free(data);
	assert_event(evfd, "alice", "INBOX");
}
END_TEST

/* core: the event */

START_TEST(test_event_wrapper)
{
	struct run r;

	HOOK(&r, env_bare, "x\n", 2, "-c", conf, "-u", "Alice+news@Example.com",
	    "-m", "Lists/misc", "--", SH, "-c", "exec /bin/cat >/dev/null");
	ck_assert_int_eq(r.status, 0);
	assert_silent(&r);
	run_free(&r);
	/* The hook passes the name as given; the daemon normalises. */
	assert_event(evfd, "Alice+news@Example.com", "Lists/misc");
	assert_no_event(evfd);
}
END_TEST

START_TEST(test_event_standalone)
{
	struct run r;

	HOOK(&r, env_bare, NULL, 0, "-c", conf, "-u", "bob", "-m", "Archive");
	ck_assert_int_eq(r.status, 0);
	assert_silent(&r);
	run_free(&r);
	assert_event(evfd, "bob", "Archive");
	assert_no_event(evfd);

	/* Default mailbox, UTF-8 passes through. */
	HOOK(&r, env_bare, NULL, 0, "-c", conf, "-u", "j\xc3\xbcrgen");
	ck_assert_int_eq(r.status, 0);
	assert_silent(&r);
	run_free(&r);
	assert_event(evfd, "j\xc3\xbcrgen", "INBOX");
}
END_TEST

START_TEST(test_user_from_environment)
{
	const char *const env_both[] = { "PATH=/usr/bin:/bin", "USER=bob",
	    "LOGNAME=carol", NULL };
	const char *const env_log[] = { "PATH=/usr/bin:/bin", "LOGNAME=carol",
	    NULL };
	const char *const env_empty[] = { "PATH=/usr/bin:/bin", "USER=",
	    "LOGNAME=dave", NULL };
	struct run r;

	HOOK(&r, env_both, NULL, 0, "-c", conf);
	ck_assert_int_eq(r.status, 0);
	run_free(&r);
	assert_event(evfd, "bob", "INBOX");

	HOOK(&r, env_log, NULL, 0, "-c", conf);
	ck_assert_int_eq(r.status, 0);
	run_free(&r);
	assert_event(evfd, "carol", "INBOX");

	HOOK(&r, env_empty, NULL, 0, "-c", conf);
	ck_assert_int_eq(r.status, 0);
	run_free(&r);
	assert_event(evfd, "dave", "INBOX");

	/* -u wins over the environment. */
	HOOK(&r, env_both, NULL, 0, "-c", conf, "-u", "erin");
	ck_assert_int_eq(r.status, 0);
	run_free(&r);
	assert_event(evfd, "erin", "INBOX");

	/* Wrapper mode, from LOGNAME. */
	HOOK(&r, env_log, NULL, 0, "-c", conf, "--", SH, "-c", "exit 0");
	ck_assert_int_eq(r.status, 0);
	assert_silent(&r);
	run_free(&r);
	assert_event(evfd, "carol", "INBOX");
	assert_no_event(evfd);
}
END_TEST

/* timeout: the daemon is never a reason to wait long or to fail */

START_TEST(test_timeout_no_socket)
{
	char nx[PATH_MAX];
	struct run r;

	tpath(nx, "none.sock");
	HOOK(&r, env_alice, NULL, 0, "-c", conf, "-s", nx, "-t", "100ms",
	    "--", SH, "-c", "exit 0");
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(r.secs < 1.0, "took %.3f s", r.secs);
	assert_silent(&r);	/* logged to syslog only */
	run_free(&r);

	HOOK(&r, env_alice, NULL, 0, "-d", "-c", conf, "-s", nx, "--", SH,
	    "-c", "exit 0");
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(r.secs < 1.0, "took %.3f s", r.secs);
	ck_assert_ptr_nonnull(strstr(r.err, "cannot notify mailpushd at "));
	ck_assert_ptr_nonnull(strstr(r.err, " for alice: No such file or "
	    "directory (mail delivered, no push)\n"));
	/* Exactly one line. */
	ck_assert_ptr_eq(strchr(r.err, '\n'), r.err + r.errlen - 1);
	run_free(&r);

	/* Standalone: still 0. */
	HOOK(&r, env_alice, NULL, 0, "-d", "-c", conf, "-s", nx);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.err, "(no push)"));
	run_free(&r);
}
END_TEST

START_TEST(test_timeout_stale_socket)
{
	char stale[PATH_MAX];
	struct run r;
	int fd;

	/* The socket file exists, nobody is bound to it any more. */
	tpath(stale, "stale.sock");
	fd = bind_dgram(stale);
	close(fd);
	ck_assert(exists(stale));
	HOOK(&r, env_alice, NULL, 0, "-d", "-c", conf, "-s", stale, "-t", "5s",
	    "--", SH, "-c", "exit 0");
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(r.secs < 1.0, "took %.3f s", r.secs);
	ck_assert_ptr_nonnull(strstr(r.err, "Connection refused"));
	run_free(&r);
}
END_TEST

START_TEST(test_timeout_full_socket)
{
	struct run r;

	fill_socket(evpath);
	HOOK(&r, env_alice, NULL, 0, "-c", conf, "-t", "100ms", "--", SH,
	    "-c", "exit 0");
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(r.secs >= 0.099 && r.secs < 1.0, "took %.3f s", r.secs);
	assert_silent(&r);
	run_free(&r);

	/* The agent's status survives the timeout; -d shows the one line. */
	HOOK(&r, env_alice, NULL, 0, "-d", "-c", conf, "-t", "100ms", "--",
	    SH, "-c", "exec /bin/cat >/dev/null", "sh");
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(r.secs < 1.0, "took %.3f s", r.secs);
	ck_assert_ptr_nonnull(strstr(r.err, "timed out after 100ms"));
	ck_assert_ptr_nonnull(strstr(r.err, "(mail delivered, no push)\n"));
	ck_assert_ptr_eq(strchr(r.err, '\n'), r.err + r.errlen - 1);
	run_free(&r);

	/* The default timeout (100 ms) holds as well. */
	HOOK(&r, env_alice, NULL, 0, "-s", evpath, "-c", conf);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(r.secs >= 0.099 && r.secs < 1.0, "took %.3f s", r.secs);
	run_free(&r);
}
END_TEST

START_TEST(test_full_socket_drains)
{
	struct mp_event ev;
	uint8_t buf[64];
	struct run r;

	/* A slow daemon that reads within the timeout gets the event. */
	fill_socket(evpath);
	HOOK_START(&r, env_alice, NULL, 0, "-d", "-c", conf, "-t", "5s", "--",
	    SH, "-c", "exit 0");
	poll(NULL, 0, 300);
	ck_assert_int_eq(recv(evfd, buf, sizeof(buf), MSG_DONTWAIT), 1);
	hook_reap(&r);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(r.secs >= 0.29 && r.secs < 3.0, "took %.3f s", r.secs);
	ck_assert_msg(r.errlen == 0, "stderr: %s", r.err);
	run_free(&r);
	ck_assert_int_eq(recv_event(evfd, &ev, 1000), 0);
	ck_assert_str_eq(ev.user, "alice");
}
END_TEST

Suite *
make_hook_suite(void)
{
	Suite *s = suite_create("hook");
	TCase *tc;

	tc = tcase_create("core");
	tcase_add_unchecked_fixture(tc, tcase_setup, tcase_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_status_passthrough);
	tcase_add_test(tc, test_signal_is_tempfail);
	tcase_add_test(tc, test_exec_failure);
	tcase_add_test(tc, test_stdin_10mb);
	tcase_add_test(tc, test_stdin_every_byte);
	tcase_add_test(tc, test_stdin_empty);
	tcase_add_test(tc, test_argv_env_passthrough);
	tcase_add_test(tc, test_event_wrapper);
	tcase_add_test(tc, test_event_standalone);
	tcase_add_test(tc, test_user_from_environment);
	suite_add_tcase(s, tc);

	tc = tcase_create("timeout");
	tcase_add_unchecked_fixture(tc, tcase_setup, tcase_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_timeout_no_socket);
	tcase_add_test(tc, test_timeout_stale_socket);
	tcase_add_test(tc, test_timeout_full_socket);
	tcase_add_test(tc, test_full_socket_drains);
	suite_add_tcase(s, tc);
	return s;
}
