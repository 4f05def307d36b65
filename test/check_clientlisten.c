/*
 * check_clientlisten.c: mailpush-listen(1), the real binary, against the
 * fake server of check_client.h: one push and its output line, the
 * command (-C, -x) and its coalescing, refusals, a full server, usage
 * errors, the timeout and SIGTERM.
 */
#include <regex.h>

#include "check_client.h"

#define LISTEN_BIN	BUILDDIR "/mailpush-listen"
#define TIME_RE		"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:" \
			"[0-9]{2}\\.[0-9]{3}Z"

/* ---- mailpush-listen ---- */

static char	tmpdir[64];
static char	tokpath[128];
static char	outpath[128];
static pid_t	lpid = -1;

static void
listen_cleanup(void)
{
	if (lpid > 0) {
		kill(lpid, SIGKILL);
		waitpid(lpid, NULL, 0);
		lpid = -1;
	}
	if (tmpdir[0] != '\0') {
		unlink(tokpath);
		unlink(outpath);
		rmdir(tmpdir);
		tmpdir[0] = '\0';
	}
}

static void
listen_setup(void)
{
	static int registered;
	char hex[2 * MP_TOKEN_LEN + 1];
	FILE *f;

	setup();
	if (!registered) {
		/* Failing tests exit without teardown in fork mode. */
		atexit(listen_cleanup);
		registered = 1;
	}
	strcpy(tmpdir, "/tmp/mpclient.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(tokpath, sizeof(tokpath), "%s/token", tmpdir);
	snprintf(outpath, sizeof(outpath), "%s/out", tmpdir);
	proto_hex_encode(token, sizeof(token), hex);
	ck_assert_ptr_nonnull(f = fopen(tokpath, "w"));
	fprintf(f, "%s\n", hex);
	ck_assert_int_eq(fclose(f), 0);
}

static void
listen_teardown(void)
{
	listen_cleanup();
	teardown();
}

/* Start mailpush-listen with stdout and stderr on pipes. */
static void
listen_run(const char *const argv[], int *out, int *err)
{
	int po[2], pe[2];

	ck_assert_msg(access(LISTEN_BIN, X_OK) == 0,
	    "%s not built (make %s)", LISTEN_BIN, LISTEN_BIN);
	ck_assert_int_eq(pipe2(po, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(pe, O_CLOEXEC), 0);
	ck_assert_int_ne(lpid = fork(), -1);
	if (lpid == 0) {
		dup2(po[1], STDOUT_FILENO);
		dup2(pe[1], STDERR_FILENO);
		execv(LISTEN_BIN, (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	*out = po[0];
	*err = pe[0];
}

static int
listen_wait(int ms)
{
	int status, i;
	pid_t r;

	for (i = 0; i < ms / 10; i++) {
		if ((r = waitpid(lpid, &status, WNOHANG)) == lpid) {
			lpid = -1;
			ck_assert_msg(WIFEXITED(status),
			    "mailpush-listen killed by signal %d",
			    WTERMSIG(status));
			return WEXITSTATUS(status);
		}
		ck_assert_int_eq(r, 0);
		poll(NULL, 0, 10);
	}
	ck_abort_msg("mailpush-listen did not exit within %d ms", ms);
	return -1;
}

/* Everything up to EOF, bounded. */
static void
read_all(int fd, char *buf, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t off = 0;
	ssize_t n;

	for (;;) {
		ck_assert_msg(poll(&pfd, 1, WAIT_MS) == 1, "output not closed");
		n = read(fd, buf + off, len - 1 - off);
		ck_assert_int_ge(n, 0);
		if (n == 0)
			break;
		off += (size_t)n;
		ck_assert_uint_lt(off, len - 1);
	}
	buf[off] = '\0';
	close(fd);
}

/* Read lines from fd until one contains what. */
static void
wait_for_line(int fd, const char *what)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char buf[4096];
	size_t off = 0;
	ssize_t n;

	for (;;) {
		ck_assert_msg(poll(&pfd, 1, WAIT_MS) == 1, "no \"%s\"", what);
		n = read(fd, buf + off, sizeof(buf) - 1 - off);
		ck_assert_int_gt(n, 0);
		off += (size_t)n;
		buf[off] = '\0';
		if (strstr(buf, what) != NULL)
			return;
		ck_assert_uint_lt(off, sizeof(buf) - 1);
	}
}

/*
 * Play the server for mailpush-listen: the next request of this type
 * (skipping retransmissions of others), decoded and MAC-checked.
 */
static void
srv_next(struct srv *s, int type, struct mp_request *rq)
{
	uint8_t buf[PROTO_MAX_DATAGRAM + 1];
	const char *why = "";
	ssize_t n;
	int i;

	for (i = 0; i < 20; i++) {
		n = srv_recv(s, buf, sizeof(buf), WAIT_MS);
		ck_assert_msg(n > 0, "no %s from mailpush-listen",
		    proto_type_name((unsigned)type));
		if (proto_type(buf, (size_t)n) != type)
			continue;
		ck_assert_msg(proto_request_decode(buf, (size_t)n, rq,
		    &why) == 0, "bad request: %s", why);
		ck_assert_msg(proto_verify(buf, (size_t)n, token) == 0,
		    "request MAC does not verify");
		memcpy(srv_device, rq->device, sizeof(srv_device));
		return;
	}
	ck_abort_msg("no %s", proto_type_name((unsigned)type));
}

static void
srv_next_ack(struct srv *s, uint32_t id, uint32_t seq)
{
	static struct mp_request rq;

	(void)id;
	srv_next(s, PROTO_PUSH_ACK, &rq);
	ck_assert_uint_eq(rq.seq, seq);
	ck_assert_uint_eq(rq.epoch, srv_epoch);
}

/* Cookie round trip, then REGISTERED(id) or REFUSED(reason, limit). */
static void
srv_handshake(struct srv *s, struct mp_request *rq, uint32_t id,
    uint8_t reason, uint32_t limit)
{
	int i;

	for (i = 0; i < 10; i++) {
		srv_next(s, PROTO_REGISTER, rq);
		if (memcmp(rq->cookie, cookie, sizeof(cookie)) != 0) {
			srv_cookie(s, rq->timestamp);
			continue;
		}
		if (reason == 0)
			srv_registered(s, rq->timestamp, id, 600, 0, token);
		else
			srv_refused(s, rq->timestamp, reason, limit,
			    (uint64_t)time(NULL), token);
		return;
	}
	ck_abort_msg("no REGISTER with the cookie");
}

static void
srv_answer_unregister(struct srv *s, uint32_t id)
{
	struct mp_request rq;

	srv_next(s, PROTO_UNREGISTER, &rq);
	srv_registered(s, rq.timestamp, id, 0, 0, token);
}

static void
assert_match(const char *re, const char *s)
{
	regex_t r;

	ck_assert_int_eq(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
	ck_assert_msg(regexec(&r, s, 0, NULL, 0) == 0, "\"%s\" !~ /%s/", s,
	    re);
	regfree(&r);
}

START_TEST(t_listen_once)
{
	struct mp_request rq;
	char addr[64], out[1024], err[1024];
	const char *argv[] = { "mailpush-listen", "-s", addr, "-u", "alice",
	    "-K", tokpath, "-m", "INBOX", "-1", "-t", "10", NULL };
	int fo, fe;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
	listen_run(argv, &fo, &fe);
	srv_handshake(&srv, &rq, 7, 0, 0);
	ck_assert_str_eq(rq.user, "alice");
	ck_assert_uint_eq(rq.ctx_len, 15);
	ck_assert_mem_eq(rq.ctx, "mailpush-listen", 15);
	ck_assert_uint_eq(rq.n_mailboxes, 1);
	ck_assert_str_eq(rq.mailboxes[0].name, "INBOX");
	srv_push(&srv, 7, 1, 2, 5, (const uint8_t *)"mailpush-listen", 15,
	    token);
	srv_next_ack(&srv, 7, 1);
	srv_answer_unregister(&srv, 7);
	ck_assert_int_eq(listen_wait(WAIT_MS), 0);
	read_all(fo, out, sizeof(out));
	read_all(fe, err, sizeof(err));
	assert_match("^push user=alice seq=1 count=2 new=2 total=5 time="
	    TIME_RE "\n$", out);
	ck_assert_str_eq(err, "");
}
END_TEST

/* Over IPv6 with -C and -x: the command sees the push in its environment. */
START_TEST(t_listen_command_v6)
{
	struct srv s6;
	struct mp_request rq;
	char addr[64], cmd[512], out[1024], err[1024], file[256];
	const char *argv[] = { "mailpush-listen", "-s", addr, "-u", "alice",
	    "-K", tokpath, "-C", "phone", "-x", cmd, "-1", "-t", "10", NULL };
	struct srv *s = &s6;
	FILE *f;
	int fo, fe;

	if (srv_open(&s6, AF_INET6) == 0)
		snprintf(addr, sizeof(addr), "[::1]:%d", s6.port);
	else {
		/* No IPv6 loopback here: test -x over IPv4 instead. */
		fprintf(stderr, "check_client: no ::1, -x over 127.0.0.1\n");
		s = &srv;
		snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
	}
	snprintf(cmd, sizeof(cmd), "printf '%%s|%%s|%%s|%%s|%%s|%%s\\n' "
	    "\"$MAILPUSH_USER\" \"$MAILPUSH_SEQ\" \"$MAILPUSH_COUNT\" "
	    "\"$MAILPUSH_NEW\" \"$MAILPUSH_TOTAL\" \"$MAILPUSH_TIME\" > %s",
	    outpath);
	listen_run(argv, &fo, &fe);
	srv_handshake(s, &rq, 9, 0, 0);
	ck_assert_uint_eq(rq.ctx_len, 5);
	ck_assert_mem_eq(rq.ctx, "phone", 5);
	ck_assert_uint_eq(rq.n_mailboxes, 0);
	srv_push(s, 9, 4, 3, 10, (const uint8_t *)"phone", 5, token);
	srv_next_ack(s, 9, 4);
	srv_answer_unregister(s, 9);
	ck_assert_int_eq(listen_wait(WAIT_MS), 0);
	read_all(fo, out, sizeof(out));
	read_all(fe, err, sizeof(err));
	ck_assert_str_eq(out, "");
	ck_assert_str_eq(err, "");
	ck_assert_ptr_nonnull(f = fopen(outpath, "r"));
	ck_assert_ptr_nonnull(fgets(file, sizeof(file), f));
	fclose(f);
	assert_match("^alice\\|4\\|3\\|3\\|10\\|" TIME_RE "\n$", file);
	if (s == &s6)
		close(s6.fd);
}
END_TEST

static long
elapsed_ms(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (b.tv_sec - a->tv_sec) * 1000 +
	    (b.tv_nsec - a->tv_nsec) / 1000000;
}

/*
 * -x with a slow command: pushes are acked at once while it runs, and
 * those that arrived meanwhile run it once more, added up.
 */
START_TEST(t_listen_command_coalesce)
{
	struct mp_request rq;
	struct timespec t;
	char addr[64], cmd[512], out[1024], err[1024], file[256];
	const char *argv[] = { "mailpush-listen", "-s", addr, "-u", "alice",
	    "-K", tokpath, "-x", cmd, "-t", "10", NULL };
	const uint8_t *c = (const uint8_t *)"mailpush-listen";
	FILE *f;
	size_t n;
	int fo, fe, i;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
	file[0] = '\0';
	snprintf(cmd, sizeof(cmd), "echo \"$MAILPUSH_SEQ $MAILPUSH_COUNT "
	    "$MAILPUSH_NEW $MAILPUSH_TOTAL\" >> %s; sleep 1", outpath);
	listen_run(argv, &fo, &fe);
	srv_handshake(&srv, &rq, 5, 0, 0);
	srv_push(&srv, 5, 1, 1, 1, c, 15, token);
	srv_next_ack(&srv, 5, 1);
	clock_gettime(CLOCK_MONOTONIC, &t);
	srv_push(&srv, 5, 2, 2, 3, c, 15, token);
	srv_next_ack(&srv, 5, 2);
	srv_push(&srv, 5, 3, 1, 4, c, 15, token);
	srv_next_ack(&srv, 5, 3);
	ck_assert_msg(elapsed_ms(&t) < 700, "acks waited for the command");
	/* The second run ends about 2 s after the first push. */
	for (i = 0; i < 500; i++) {
		if ((f = fopen(outpath, "r")) != NULL) {
			n = fread(file, 1, sizeof(file) - 1, f);
			fclose(f);
			file[n] = '\0';
			if (strchr(file, '\n') != strrchr(file, '\n'))
				break;
		}
		poll(NULL, 0, 10);
	}
	ck_assert_str_eq(file, "1 1 1 1\n3 3 3 4\n");
	poll(NULL, 0, 1100);	/* let the second sleep end */
	ck_assert_int_eq(kill(lpid, SIGTERM), 0);
	srv_answer_unregister(&srv, 5);
	ck_assert_int_eq(listen_wait(WAIT_MS), 0);
	read_all(fo, out, sizeof(out));
	read_all(fe, err, sizeof(err));
	ck_assert_str_eq(out, "");
	ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(t_listen_refused)
{
	struct mp_request rq;
	char addr[64], out[1024], err[1024];
	const char *argv[] = { "mailpush-listen", "-s", addr, "-u", "alice",
	    "-K", tokpath, "-t", "10", NULL };
	int fo, fe;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
	listen_run(argv, &fo, &fe);
	srv_handshake(&srv, &rq, 0, REASON_TOO_MANY, 8);
	ck_assert_int_eq(listen_wait(WAIT_MS), 2);
	read_all(fo, out, sizeof(out));
	read_all(fe, err, sizeof(err));
	ck_assert_str_eq(out, "");
	ck_assert_str_eq(err, "mailpush-listen: registration refused: "
	    "too many registrations for this user (limit 8)\n");
}
END_TEST

/* Issue 13 item 7: a full server is not a reason to exit: it says so on
 * stderr and keeps running (registering again later); SIGTERM ends it. */
START_TEST(t_listen_full_keeps_running)
{
	struct mp_request rq;
	char addr[64], out[1024], err[1024];
	const char *argv[] = { "mailpush-listen", "-s", addr, "-u", "alice",
	    "-K", tokpath, NULL };
	int fo, fe;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
	listen_run(argv, &fo, &fe);
	srv_handshake(&srv, &rq, 0, REASON_TABLE_FULL, 100000);
	wait_for_line(fe, "mailpush-listen: registration refused: "
	    "registration table full (limit 100000); retrying in 30s\n");
	/* still there a second later */
	poll(NULL, 0, 1000);
	ck_assert_int_eq(waitpid(lpid, NULL, WNOHANG), 0);
	ck_assert_int_eq(kill(lpid, SIGTERM), 0);
	ck_assert_int_eq(listen_wait(WAIT_MS), 0);
	read_all(fo, out, sizeof(out));
	read_all(fe, err, sizeof(err));
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(t_listen_usage)
{
	static const char *const bad[][12] = {
		{ "mailpush-listen", NULL },
		{ "mailpush-listen", "-u", "alice", "-K", "/dev/null", NULL },
		{ "mailpush-listen", "-s", "127.0.0.1", "-K", "/dev/null",
		    NULL },
		{ "mailpush-listen", "-s", "127.0.0.1", "-u", "alice", NULL },
		{ "mailpush-listen", "-s", "[::1", "-u", "alice", "-K",
		    "/dev/null", NULL },
		{ "mailpush-listen", "-s", "127.0.0.1:99999", "-u", "alice",
		    "-K", "/dev/null", NULL },
		{ "mailpush-listen", "-s", "127.0.0.1:", "-u", "alice",
		    "-K", "/dev/null", NULL },
		{ "mailpush-listen", "-s", "127.0.0.1", "-u", "alice", "-K",
		    "/dev/null", "-t", "0", NULL },
		{ "mailpush-listen", "-s", "127.0.0.1", "-u", "alice", "-K",
		    "/dev/null", "extra", NULL },
		{ "mailpush-listen", "-s", "127.0.0.1", "-u", "alice", "-K",
		    "/dev/null", "-q", NULL },
	};
	char out[1024], err[1024];
	size_t i;
	int fo, fe;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		listen_run(bad[i], &fo, &fe);
		ck_assert_msg(listen_wait(WAIT_MS) == 64, "case %zu", i);
		read_all(fo, out, sizeof(out));
		read_all(fe, err, sizeof(err));
		ck_assert_str_eq(out, "");
		ck_assert_ptr_nonnull(strstr(err, "usage: mailpush-listen"));
	}
}
END_TEST

START_TEST(t_listen_timeout)
{
	struct mp_request rq;
	struct timespec a, b;
	char addr[64], out[1024], err[1024];
	const char *argv[] = { "mailpush-listen", "-s", addr, "-u", "alice",
	    "-K", tokpath, "-t", "1", NULL };
	int fo, fe;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &a);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
	listen_run(argv, &fo, &fe);
	srv_handshake(&srv, &rq, 3, 0, 0);
	srv_answer_unregister(&srv, 3);
	ck_assert_int_eq(listen_wait(WAIT_MS), 3);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	ck_assert_int_ge(ms, 900);
	read_all(fo, out, sizeof(out));
	read_all(fe, err, sizeof(err));
	ck_assert_str_eq(out, "");
	ck_assert_str_eq(err, "mailpush-listen: no push within 1 seconds\n");
}
END_TEST

/* SIGTERM: UNREGISTER, exit 0; -v reports the registration. */
START_TEST(t_listen_sigterm)
{
	struct mp_request rq;
	char addr[64], out[1024], err[1024];
	const char *argv[] = { "mailpush-listen", "-v", "-s", addr, "-u",
	    "alice", "-K", tokpath, "-t", "10", NULL };
	int fo, fe;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
	listen_run(argv, &fo, &fe);
	srv_handshake(&srv, &rq, 11, 0, 0);
	wait_for_line(fe, "registered id=0000000b lifetime=600s keepalive=65535s "
	    "(server allows 65535-65535s)\n");
	srv_push(&srv, 11, 1, 1, 1, (const uint8_t *)"mailpush-listen", 15,
	    token);
	srv_next_ack(&srv, 11, 1);
	ck_assert_int_eq(kill(lpid, SIGTERM), 0);
	srv_answer_unregister(&srv, 11);
	ck_assert_int_eq(listen_wait(WAIT_MS), 0);
	read_all(fo, out, sizeof(out));
	read_all(fe, err, sizeof(err));
	assert_match("^push user=alice seq=1 count=1 new=1 total=1 time="
	    TIME_RE "\n$", out);
}
END_TEST
Suite *
make_clientlisten_suite(void)
{
	Suite *s = suite_create("clientlisten");
	TCase *tc;

	tc = tcase_create("listen");
	tcase_add_checked_fixture(tc, listen_setup, listen_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, t_listen_once);
	tcase_add_test(tc, t_listen_command_v6);
	tcase_add_test(tc, t_listen_command_coalesce);
	tcase_add_test(tc, t_listen_refused);
	tcase_add_test(tc, t_listen_full_keeps_running);
	tcase_add_test(tc, t_listen_usage);
	tcase_add_test(tc, t_listen_timeout);
	tcase_add_test(tc, t_listen_sigterm);
	suite_add_tcase(s, tc);
	return s;
}
