/*
 * check_reload.c: SIGHUP and `mailpushctl reload' on the real mailpushd:
 * a bad file changes nothing, a good one changes the limits for new
 * registrations and the listeners, and no registration is lost.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <sodium.h>

#include "ops.h"

static struct mpd_proc P;
static char out[65536], err[8192];

/* The daemon must exit 0 on SIGTERM, with no sanitizer report. */
static void
teardown(void)
{
	ck_assert_msg(mpd_finish(&P) == 0, "mailpushd in %s did not end "
	    "cleanly", P.dir);
}

static void
config(const char *listen, const char *extra)
{
	char main_[512];

	snprintf(main_, sizeof(main_), "user =\nlisten = %s\n", listen);
	ck_assert_int_eq(ops_write_config(&P, main_, extra), 0);
}

static void
start(const char *extra)
{
	char listen[128];

	ck_assert_int_eq(ops_prepare(&P, NULL, NULL), 0);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d [::1]:%d", P.port,
	    P.port);
	config(listen, extra);
	ck_assert_int_eq(mpd_start(&P), 0);
}

static void
set_port(struct tclient *c, int port)
{
	((struct sockaddr_in *)&c->srv)->sin_port = htons((uint16_t)port);
}

/* REGISTER with ctx; the reply type, reason and limit. */
static int
reg(struct tclient *c, const char *ctx, struct mp_reply *rp)
{
	ck_assert_int_eq(tc_register(c, ctx, strlen(ctx), rp), 0);
	return rp->type;
}

static void
expect_refused(struct tclient *c, const char *ctx, unsigned limit)
{
	struct mp_reply rp;

	ck_assert_int_eq(reg(c, ctx, &rp), PROTO_REFUSED);
	ck_assert_int_eq(rp.reason, REASON_TOO_MANY);
	ck_assert_uint_eq(rp.limit, limit);
}

static void
expect_registered(struct tclient *c, const char *ctx)
{
	struct mp_reply rp;

	ck_assert_int_eq(reg(c, ctx, &rp), PROTO_REGISTERED);
}

START_TEST(bad_file_keeps_old)
{
	struct tclient c;
	char listen[128];

	start("[limits]\nmax_registrations_per_client = 2\n");
	snprintf(listen, sizeof(listen), "127.0.0.1:%d [::1]:%d", P.port,
	    P.port);
	ck_assert_int_eq(tc_open(&c, &P, 0, NULL, "alice"), 0);
	expect_registered(&c, "c1");
	expect_registered(&c, "c2");
	expect_refused(&c, "c3", 2);

	/* a bad file, through mailpushctl: refused with a message */
	config(listen, "[limits]\nmax_registrations_per_client = 5\n"
	    "max_context_size = lots\n");
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "reload", NULL), 1);
	ck_assert_msg(strstr(err, "reload failed") != NULL, "%s", err);
	ck_assert_msg(strstr(err, "old configuration stays in force") != NULL,
	    "%s", err);
	ck_assert_int_eq(mpd_log_count(&P, "reload failed"), 1);
	ck_assert_int_eq(mpd_log_count(&P, "[limits] max_context_size"), 1);
	expect_refused(&c, "c3", 2);

	/* the same through SIGHUP */
	ck_assert_int_eq(mpd_signal(&P, SIGHUP), 0);
	ck_assert_int_eq(mpd_log_wait(&P, "reload failed", 2, 3000), 0);
	expect_refused(&c, "c3", 2);
	ck_assert_int_eq(mpd_log_count(&P, "configuration reloaded"), 0);

	/* a good file through SIGHUP: the new limit for new registrations */
	config(listen, "[limits]\nmax_registrations_per_client = 3\n");
	ck_assert_int_eq(mpd_signal(&P, SIGHUP), 0);
	ck_assert_int_eq(mpd_log_wait(&P, "configuration reloaded", 1, 3000),
	    0);
	expect_registered(&c, "c3");
	expect_refused(&c, "c4", 3);

	/* and through mailpushctl */
	config(listen, "[limits]\nmax_registrations_per_client = 4\n");
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "reload", NULL), 0);
	ck_assert_msg(strstr(out, "reloaded") != NULL, "%s", out);
	expect_registered(&c, "c4");
	expect_refused(&c, "c5", 4);
	/* none lost on the way */
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 4);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "status", NULL), 0);
	tc_close(&c);
}
END_TEST

/* Is anything bound to 127.0.0.1:port (UDP)? */
static int
port_taken(int port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), rc;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	rc = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 &&
	    errno == EADDRINUSE;
	close(fd);
	return rc;
}

START_TEST(listeners_follow)
{
	struct tclient ca, cb, cx;
	struct mp_reply rp;
	static struct mp_request rq;
	struct mp_push p;
	struct sockaddr_in from;
	socklen_t fromlen = sizeof(from);
	uint8_t buf[PROTO_MAX_DATAGRAM];
	char listen[128], want[64];
	const char *why;
	uint32_t bid;
	int a, b, n;

	start(NULL);
	a = P.port;
	ck_assert_int_ne(b = mpd_free_port(), -1);
	ck_assert_int_ne(b, a);
	ck_assert_int_eq(tc_open(&ca, &P, 0, NULL, "alice"), 0);
	expect_registered(&ca, "a");
	ck_assert(!port_taken(b));

	/* add 127.0.0.1:B */
	snprintf(listen, sizeof(listen), "127.0.0.1:%d [::1]:%d 127.0.0.1:%d",
	    a, a, b);
	config(listen, NULL);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "reload", NULL), 0);
	ck_assert(port_taken(b));
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "status", NULL), 0);
	snprintf(want, sizeof(want), "listening on 127.0.0.1:%d\n", b);
	ck_assert_msg(strstr(out, want) != NULL, "%s", out);
	ck_assert_int_eq(tc_open(&cb, &P, 0, NULL, "bob"), 0);
	set_port(&cb, b);
	ck_assert_int_eq(reg(&cb, "b", &rp), PROTO_REGISTERED);
	bid = rp.reg_id;

	/* remove 127.0.0.1:A (SIGHUP this time) */
	snprintf(listen, sizeof(listen), "127.0.0.1:%d [::1]:%d", b, a);
	config(listen, NULL);
	ck_assert_int_eq(mpd_signal(&P, SIGHUP), 0);
	snprintf(want, sizeof(want), "no longer listening on 127.0.0.1:%d",
	    a);
	ck_assert_int_eq(mpd_log_wait(&P, want, 1, 3000), 0);
	ck_assert(!port_taken(a));
	ck_assert(port_taken(b));
	/* nobody answers on A any more */
	ck_assert_int_eq(tc_open(&cx, &P, 0, NULL, "carol"), 0);
	tc_req(&cx, &rq, PROTO_REGISTER, "x", 1);
	n = tc_encode(&cx, &rq, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(tc_send(&cx, buf, (size_t)n), 0);
	ck_assert_int_eq(tc_recv(&cx, buf, sizeof(buf), 300), -1);
	/* B still does */
	tc_req(&cb, &rq, PROTO_REFRESH, "b", 1);
	ck_assert_int_eq(tc_call(&cb, &rq, &rp, 0), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_uint_eq(rp.reg_id, bid);
	set_port(&cx, b);
	expect_registered(&cx, "x");
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "status", NULL), 0);
	snprintf(want, sizeof(want), "listening on 127.0.0.1:%d\n", a);
	ck_assert_msg(strstr(out, want) == NULL, "%s", out);
	snprintf(want, sizeof(want), "listening on [::1]:%d\n", a);
	ck_assert_msg(strstr(out, want) != NULL, "%s", out);

	/* alice, registered through A, is kept and pushed to from B */
	ck_assert_int_eq(mpd_list(&P, NULL, out, sizeof(out)), 3);
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	{
		struct pollfd pfd = { ca.fd, POLLIN, 0 };

		ck_assert_int_eq(poll(&pfd, 1, 3000), 1);
	}
	n = (int)recvfrom(ca.fd, buf, sizeof(buf), 0,
	    (struct sockaddr *)&from, &fromlen);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(proto_push_open(buf, (size_t)n, ca.push_key, &p,
	    &why), 0);
	ck_assert_int_eq(ntohs(from.sin_port), b);
	/* the acknowledgement goes to B, and is taken */
	set_port(&ca, b);
	ck_assert_int_eq(tc_ack(&ca, &p), 0);
	ck_assert_int_eq(mpd_stat_wait(&P, "acks", 1, 2000), 0);
	tc_close(&ca);
	tc_close(&cb);
	tc_close(&cx);
}
END_TEST

START_TEST(listener_conflict_keeps_old)
{
	struct tclient c;
	struct sockaddr_in sin;
	char listen[128], want[64];
	int fd, busy;

	start("[limits]\nmax_registrations_per_client = 1\n");
	ck_assert_int_eq(tc_open(&c, &P, 0, NULL, "alice"), 0);
	expect_registered(&c, "c1");
	expect_refused(&c, "c2", 1);

	/* a port somebody else holds */
	ck_assert_int_ne(fd = socket(AF_INET, SOCK_DGRAM, 0), -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	{
		socklen_t len = sizeof(sin);

		ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin,
		    &len), 0);
	}
	busy = ntohs(sin.sin_port);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d [::1]:%d 127.0.0.1:%d",
	    P.port, P.port, busy);
	config(listen, "[limits]\nmax_registrations_per_client = 5\n");
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "reload", NULL), 1);
	ck_assert_msg(strstr(err, "reload failed") != NULL, "%s", err);
	snprintf(want, sizeof(want), "cannot listen on 127.0.0.1:%d", busy);
	ck_assert_int_eq(mpd_log_count(&P, want), 1);
	/* nothing of the new file applies */
	expect_refused(&c, "c2", 1);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "status", NULL), 0);
	snprintf(want, sizeof(want), ":%d\n", busy);
	ck_assert_msg(strstr(out, want) == NULL, "%s", out);
	close(fd);
	tc_close(&c);
}
END_TEST

START_TEST(restart_only_keys_warn)
{
	char listen[128], main_[256];
	struct stat st;

	start(NULL);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d [::1]:%d", P.port,
	    P.port);
	snprintf(main_, sizeof(main_), "user =\nlisten = %s\n"
	    "control_socket_mode = 0600\n", listen);
	ck_assert_int_eq(ops_write_config(&P, main_, NULL), 0);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "reload", NULL), 0);
	ck_assert_int_eq(mpd_log_count(&P, "reload: [mailpushd] "
	    "control_socket_mode changed; it takes effect at the next "
	    "restart"), 1);
	ck_assert_int_eq(stat(P.control, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0660);
	/* a second reload of the same file warns again: the running value
	 * is still the old one */
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "reload", NULL), 0);
	ck_assert_int_eq(mpd_log_count(&P, "control_socket_mode changed"), 2);
}
END_TEST

START_TEST(key_reloaded)
{
	struct tclient c;
	struct mp_reply rp;
	uint8_t key[MP_KEY_LEN];
	char hex[2 * MP_KEY_LEN + 2];

	start(NULL);
	ck_assert_int_eq(tc_open(&c, &P, 0, NULL, "alice"), 0);
	expect_registered(&c, "c1");
	/* a new key: the old token stops working, the new one works */
	randombytes_buf(key, sizeof(key));
	sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
	strcat(hex, "\n");
	ck_assert_int_eq(write_text(P.key_file, hex, 0600), 0);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "reload", NULL), 0);
	ck_assert_int_eq(reg(&c, "c2", &rp), PROTO_REFUSED);
	ck_assert_int_eq(rp.reason, REASON_AUTH);
	memcpy(P.key, key, sizeof(key));
	mpd_token(&P, "alice", c.token);
	expect_registered(&c, "c2");
	/* a key file the daemon may not use: reload refused, key kept */
	ck_assert_int_eq(chmod(P.key_file, 0644), 0);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "reload", NULL), 1);
	ck_assert_int_eq(mpd_log_count(&P, "chmod 600"), 1);
	expect_registered(&c, "c3");
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 3);
	tc_close(&c);
}
END_TEST

Suite *
make_reload_suite(void)
{
	Suite *s = suite_create("reload");
	TCase *tc = tcase_create("reload");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, bad_file_keeps_old);
	tcase_add_test(tc, listeners_follow);
	tcase_add_test(tc, listener_conflict_keeps_old);
	tcase_add_test(tc, restart_only_keys_warn);
	tcase_add_test(tc, key_reloaded);
	suite_add_tcase(s, tc);
	return s;
}
