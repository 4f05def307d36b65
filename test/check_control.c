/*
 * check_control.c: mailpushctl against the real mailpushd: status, stats,
 * list, drop, token, genkey, text and JSON, and the exit statuses for a
 * daemon that is not running and a socket the caller may not use.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <sodium.h>

#include "ops.h"

static struct mpd_proc P;
static char out[65536], err[8192];

static void
setup(void)
{
	ck_assert_int_eq(mpd_setup(&P, NULL), 0);
}

static void
setup_retry(void)
{
	/* pushes give up after one try, 100 ms */
	ck_assert_int_eq(mpd_setup(&P, "[limits]\npush_retries = 0\n"
	    "push_retry_interval = 100ms\nmin_push_interval = 0\n"), 0);
}

/* The daemon must exit 0 on SIGTERM, with no sanitizer report. */
static void
teardown(void)
{
	ck_assert_msg(mpd_finish(&P) == 0, "mailpushd in %s did not end "
	    "cleanly", P.dir);
}

/* Well-formed JSON, by our strict checker and by Python's when present. */
#define ck_assert_json(text) do {					\
	char why_[128];							\
	int py_;							\
	ck_assert_msg(json_check((text), why_, sizeof(why_)) == 0,	\
	    "not JSON (%s): %s", why_, (text));				\
	py_ = json_python(text);					\
	ck_assert_msg(py_ != 0, "python3 rejects the JSON: %s", (text));\
} while (0)

static uint16_t
client_port(const struct tclient *c)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	ck_assert_int_eq(getsockname(c->fd, (struct sockaddr *)&sin, &len), 0);
	return ntohs(sin.sin_port);
}

static uint32_t
do_register(struct tclient *c, const char *user, const char *ctx)
{
	struct mp_reply rp;

	ck_assert_int_eq(tc_open(c, &P, 0, NULL, user), 0);
	ck_assert_int_eq(tc_register(c, ctx, strlen(ctx), &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	return rp.reg_id;
}

/* `mailpushctl -j list USER' until "state" is want, within ms. */
static int
wait_state(const char *user, const char *want, int ms)
{
	uint64_t until = now_ms() + (uint64_t)ms;
	char st[32];

	do {
		if (ops_ctl(&P, out, sizeof(out), err, sizeof(err), "-j",
		    "list", user, NULL) == 0 &&
		    json_strval(out, "state", st, sizeof(st)) == 0 &&
		    strcmp(st, want) == 0)
			return 0;
		usleep(20000);
	} while (now_ms() < until);
	return -1;
}

START_TEST(status_text_and_json)
{
	char want[64];
	long long v;

	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "status", NULL), 0);
	snprintf(want, sizeof(want), "running, pid %ld,", (long)P.pid);
	ck_assert_msg(strstr(out, want) != NULL, "status: %s", out);
	snprintf(want, sizeof(want), "listening on 127.0.0.1:%d\n", P.port);
	ck_assert_msg(strstr(out, want) != NULL, "status: %s", out);
	snprintf(want, sizeof(want), "listening on [::1]:%d\n", P.port);
	ck_assert_msg(strstr(out, want) != NULL, "status: %s", out);

	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err), "-j",
	    "status", NULL), 0);
	ck_assert_json(out);
	ck_assert_int_eq(json_num(out, "pid", &v), 0);
	ck_assert_int_eq(v, P.pid);
	ck_assert_int_eq(json_num(out, "registrations", &v), 0);
	ck_assert_int_eq(v, 0);
	snprintf(want, sizeof(want), "\"127.0.0.1:%d\"", P.port);
	ck_assert_msg(strstr(out, want) != NULL, "status -j: %s", out);
}
END_TEST

START_TEST(stats_count_and_json)
{
	struct tclient c;
	struct mp_reply rp;
	struct mp_push push;
	long long v;
	static const char big[] = "0123456789abcdefX";	/* 17 > 16 bytes */

	do_register(&c, "alice", "ctx");
	ck_assert_int_eq(tc_register(&c, big, sizeof(big) - 1, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REFUSED);
	ck_assert_int_eq(rp.reason, REASON_CONTEXT_SIZE);
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	ck_assert_int_eq(tc_push(&c, &push, 2000), 0);
	ck_assert_int_eq(tc_ack(&c, &push), 0);
	ck_assert_int_eq(mpd_stat_wait(&P, "acks", 1, 2000), 0);

	ck_assert_int_eq(mpd_stat(&P, "registered"), 1);
	ck_assert_int_eq(mpd_stat(&P, "events_in"), 1);
	ck_assert_int_eq(mpd_stat(&P, "pushes"), 1);
	ck_assert_int_eq(mpd_stat(&P, "registrations_active"), 1);
	ck_assert_int_eq(mpd_stat(&P, "refused_context_size"), 1);
	ck_assert_int_eq(mpd_stat(&P, "refused_too_many"), 0);

	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err), "-j",
	    "stats", NULL), 0);
	ck_assert_json(out);
	ck_assert_int_eq(json_num(out, "registered", &v), 0);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(json_num(out, "acks", &v), 0);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(json_num(out, "context_size", &v), 0);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(json_num(out, "registrations_unreachable", &v), 0);
	ck_assert_int_eq(v, 0);
	tc_close(&c);
}
END_TEST

START_TEST(list_shows_push_and_ack)
{
	struct tclient c;
	struct mp_push push;
	char line[256], id[9], s[64];
	long long v;
	uint32_t reg;

	reg = do_register(&c, "alice", "ctx");
	reg_hex(reg, id);

	/* text: one line with everything an administrator looks for */
	ck_assert_int_eq(mpd_list(&P, NULL, out, sizeof(out)), 1);
	snprintf(line, sizeof(line), "alice %s 127.0.0.1:%u active age ", id,
	    client_port(&c));
	ck_assert_msg(strstr(out, line) != NULL, "list: %s", out);
	ck_assert_msg(strstr(out, " expires in ") != NULL, "list: %s", out);
	ck_assert_msg(strstr(out, " last push never last ack never "
	    "failures 0\n") != NULL, "list: %s", out);

	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err), "-j",
	    "list", NULL), 0);
	ck_assert_json(out);
	ck_assert_int_eq(json_strval(out, "id", s, sizeof(s)), 0);
	ck_assert_str_eq(s, id);
	snprintf(line, sizeof(line), "127.0.0.1:%u", client_port(&c));
	ck_assert_int_eq(json_strval(out, "address", s, sizeof(s)), 0);
	ck_assert_str_eq(s, line);
	ck_assert_int_eq(json_num(out, "age", &v), 0);
	ck_assert(v >= 0 && v <= 5);
	ck_assert_int_eq(json_num(out, "expires_in", &v), 0);
	ck_assert_msg(v >= 590 && v <= 601, "expires_in %lld", v);
	ck_assert_int_eq(json_strval(out, "last_push", s, sizeof(s)), 0);
	ck_assert_str_eq(s, "null");
	ck_assert_int_eq(json_strval(out, "last_ack", s, sizeof(s)), 0);
	ck_assert_str_eq(s, "null");
	ck_assert_int_eq(json_num(out, "failures", &v), 0);
	ck_assert_int_eq(v, 0);

	/* a push out, not acknowledged: "pushing", last push set */
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 2), 0);
	ck_assert_int_eq(tc_push(&c, &push, 2000), 0);
	ck_assert_int_eq(wait_state("alice", "pushing", 2000), 0);
	ck_assert_int_eq(json_strval(out, "last_push", s, sizeof(s)), 0);
	ck_assert_msg(strlen(s) == 20 && s[10] == 'T' && s[19] == 'Z',
	    "last_push %s", s);
	ck_assert_int_eq(json_strval(out, "last_ack", s, sizeof(s)), 0);
	ck_assert_str_eq(s, "null");
	ck_assert_int_eq(json_num(out, "seq", &v), 0);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(json_num(out, "total", &v), 0);
	ck_assert_int_eq(v, 2);

	/* acknowledged: "active", last ack set */
	ck_assert_int_eq(tc_ack(&c, &push), 0);
	ck_assert_int_eq(wait_state("alice", "active", 2000), 0);
	ck_assert_json(out);
	ck_assert_int_eq(json_strval(out, "last_ack", s, sizeof(s)), 0);
	ck_assert_msg(strlen(s) == 20 && s[19] == 'Z', "last_ack %s", s);
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "last push never") == NULL &&
	    strstr(out, "last ack never") == NULL, "list: %s", out);
	tc_close(&c);
}
END_TEST

START_TEST(list_shows_unreachable)
{
	struct tclient c;
	struct mp_push push;
	long long v;

	do_register(&c, "alice", "ctx");
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	ck_assert_int_eq(tc_push(&c, &push, 2000), 0);	/* never acked */
	ck_assert_int_eq(wait_state("alice", "unreachable", 3000), 0);
	ck_assert_json(out);
	ck_assert_int_eq(json_num(out, "failures", &v), 0);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, " unreachable ") != NULL &&
	    strstr(out, " failures 1\n") != NULL, "list: %s", out);
	ck_assert_int_eq(mpd_stat(&P, "registrations_unreachable"), 1);
	ck_assert_int_eq(mpd_stat(&P, "pushes_given_up"), 1);
	tc_close(&c);
}
END_TEST

START_TEST(list_by_user)
{
	struct tclient a1, a2, b;

	ck_assert_int_eq(mpd_list(&P, NULL, out, sizeof(out)), 0);
	ck_assert_msg(strstr(out, "no registrations") != NULL, "%s", out);
	do_register(&a1, "alice", "one");
	do_register(&a2, "alice", "two");
	do_register(&b, "bob", "one");
	ck_assert_int_eq(mpd_list(&P, NULL, out, sizeof(out)), 3);
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 2);
	ck_assert_msg(strstr(out, "bob") == NULL, "%s", out);
	/* the name is normalised as the daemon does it */
	ck_assert_int_eq(mpd_list(&P, "Alice+news", out, sizeof(out)), 2);
	ck_assert_int_eq(mpd_list(&P, "bob", out, sizeof(out)), 1);
	ck_assert_int_eq(mpd_list(&P, "carol", out, sizeof(out)), 0);

	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err), "-j",
	    "list", NULL), 0);
	ck_assert_json(out);
	ck_assert_msg(out[0] == '[', "%s", out);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err), "-j",
	    "list", "carol", NULL), 0);
	ck_assert_str_eq(out, "[]\n");
	tc_close(&a1);
	tc_close(&a2);
	tc_close(&b);
}
END_TEST

START_TEST(list_escapes_names)
{
	struct tclient c;
	struct mp_reply rp;
	static const char *const boxes[] = { "INBOX", "a\"b\\c",
	    "bad\xff\x01utf8", "K\xc3\xa4se" };

	ck_assert_int_eq(tc_open(&c, &P, 0, NULL, "alice"), 0);
	ck_assert_int_eq(tc_register_mailboxes(&c, "x", 1, boxes, 4, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err), "-j",
	    "list", NULL), 0);
	ck_assert_json(out);
	ck_assert_msg(strstr(out, "\"mailboxes\":[\"INBOX\",\"a\\\"b\\\\c\","
	    "\"bad\\ufffd\\u0001utf8\",\"K\xc3\xa4se\"]") != NULL, "%s", out);
	ck_assert_int_eq(mpd_list(&P, NULL, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, " mailboxes INBOX,a\"b\\x5cc,bad\\xff\\x01utf8,"
	    "K\xc3\xa4se\n") != NULL, "%s", out);
	tc_close(&c);
}
END_TEST

START_TEST(drop_user_and_id)
{
	struct tclient a1, a2, b;
	static struct mp_request rq;
	struct mp_reply rp;
	char id[9];
	uint32_t r1;
	long long v;

	r1 = do_register(&a1, "alice", "one");
	do_register(&a2, "alice", "two");
	do_register(&b, "bob", "one");
	reg_hex(r1, id);

	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "drop", "alice", id, NULL), 0);
	ck_assert_str_eq(out, "dropped 1 registration of alice\n");
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, id) == NULL, "%s", out);
	/* gone from the table, not only from the list */
	tc_req(&a1, &rq, PROTO_REFRESH, "one", 3);
	ck_assert_int_eq(tc_call(&a1, &rq, &rp, 0), 0);
	ck_assert_int_eq(rp.type, PROTO_REFUSED);
	ck_assert_int_eq(rp.reason, REASON_UNKNOWN);

	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "drop", "ALICE", NULL), 0);
	ck_assert_str_eq(out, "dropped 1 registration of alice\n");
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 0);
	ck_assert_int_eq(mpd_stat(&P, "dropped"), 2);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);

	/* errors: exit 1, a message, nothing dropped */
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "drop", "alice", NULL), 1);
	ck_assert_msg(strstr(err, "no registrations for alice") != NULL, "%s",
	    err);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "drop", "bob", "deadbeef", NULL), 1);
	ck_assert_msg(strstr(err, "bob has no registration deadbeef") != NULL,
	    "%s", err);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "drop", "bob", "xyz", NULL), 1);
	ck_assert_msg(strstr(err, "bad registration id") != NULL, "%s", err);
	ck_assert_int_eq(mpd_list(&P, "bob", out, sizeof(out)), 1);

	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err), "-j",
	    "drop", "bob", NULL), 0);
	ck_assert_json(out);
	ck_assert_int_eq(json_num(out, "dropped", &v), 0);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	tc_close(&a1);
	tc_close(&a2);
	tc_close(&b);
}
END_TEST

START_TEST(reload_json)
{
	long long v;

	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err), "-j",
	    "reload", NULL), 0);
	ck_assert_json(out);
	ck_assert_int_eq(json_num(out, "registrations", &v), 0);
	ck_assert_int_eq(mpd_log_count(&P, "configuration reloaded"), 1);
}
END_TEST

START_TEST(not_running)
{
	ck_assert_int_eq(mpd_stop(&P), 0);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "status", NULL), 69);
	ck_assert_msg(strstr(err, "mailpushd is not running") != NULL, "%s",
	    err);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err), "-j",
	    "list", NULL), 69);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "reload", NULL), 69);
}
END_TEST

/*
 * The daemon at its limit of control connections: a new one closes the
 * oldest (check_hardening.c has the slow clients), so mailpushctl is
 * served; it must never die of SIGPIPE writing its request either (it
 * did, silently, when the daemon turned new connections away).
 */
START_TEST(busy_daemon)
{
	struct sockaddr_un sun;
	int fds[32], i, rc, errors = 0;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", P.control);
	for (i = 0; i < 32; i++) {
		ck_assert_int_ne(fds[i] = socket(AF_UNIX, SOCK_STREAM, 0), -1);
		ck_assert_int_eq(connect(fds[i], (struct sockaddr *)&sun,
		    sizeof(sun)), 0);
	}
	usleep(100000);		/* accepted; all 32 slots taken */
	for (i = 0; i < 5; i++) {
		rc = ops_ctl(&P, out, sizeof(out), err, sizeof(err), "status",
		    NULL);
		ck_assert_msg(rc < 128, "mailpushctl killed by signal %d",
		    rc - 128);
		if (rc != 0) {
			ck_assert_msg(strncmp(err, "mailpushctl: ", 13) == 0,
			    "exit %d without a message: %s", rc, err);
			errors++;
		}
	}
	ck_assert_int_eq(errors, 0);
	for (i = 0; i < 32; i++)
		close(fds[i]);
}
END_TEST

START_TEST(permission_denied)
{
	char *argv[] = { (char *)BUILDDIR "/mailpushctl", (char *)"-c",
	    P.conf, (char *)"status", NULL };
	struct passwd *pw;
	int rc;

	if (geteuid() != 0) {
		/* the owner is refused too when the mode gives nobody
		 * anything (root would not be) */
		ck_assert_int_eq(chmod(P.control, 0), 0);
		rc = ops_ctl(&P, out, sizeof(out), err, sizeof(err), "status",
		    NULL);
		chmod(P.control, 0600);
		ck_assert_int_eq(rc, 77);
		ck_assert_msg(strstr(err, "permission denied") != NULL, "%s",
		    err);
		return;
	}
	ck_assert_ptr_nonnull(pw = getpwnam("nobody"));
	/* the socket is root's, mode 0660 (the default): nobody is out */
	rc = ops_run_as(pw->pw_uid, pw->pw_gid, argv, out, sizeof(out), err,
	    sizeof(err), 10000);
	ck_assert_int_eq(rc, 77);
	ck_assert_msg(strstr(err, "permission denied") != NULL, "%s", err);
	ck_assert_str_eq(out, "");
	/* and in with the mode open: the refusal was the mode's doing */
	ck_assert_int_eq(chmod(P.control, 0666), 0);
	rc = ops_run_as(pw->pw_uid, pw->pw_gid, argv, out, sizeof(out), err,
	    sizeof(err), 10000);
	/* 2: status itself reports the changed mode (health.c) */
	ck_assert_int_eq(rc, 2);
	ck_assert_msg(strstr(out, "running") != NULL, "%s", out);
	ck_assert_int_eq(chmod(P.control, 0600), 0);
	rc = ops_run_as(pw->pw_uid, pw->pw_gid, argv, out, sizeof(out), err,
	    sizeof(err), 10000);
	ck_assert_int_eq(rc, 77);
}
END_TEST

START_TEST(socket_mode_from_config)
{
	struct stat st;

	/* the harness leaves control_socket_mode at its default, 0660 */
	ck_assert_int_eq(stat(P.control, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0660);
	ck_assert_int_eq(mpd_stop(&P), 0);
	ck_assert_int_eq(access(P.control, F_OK), -1);	/* removed at exit */
	{
		char main_[256];

		snprintf(main_, sizeof(main_), "user =\nlisten = "
		    "127.0.0.1:%d\ncontrol_socket_mode = 0600\n", P.port);
		ck_assert_int_eq(ops_write_config(&P, main_, NULL), 0);
	}
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(stat(P.control, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
}
END_TEST

START_TEST(refuses_non_socket)
{
	char text[64];

	/* something that is not a socket where the control socket goes is
	 * never removed: the daemon refuses to start */
	ck_assert_int_eq(mpd_stop(&P), 0);
	ck_assert_int_eq(write_text(P.control, "precious\n", 0644), 0);
	ck_assert_int_eq(ops_mailpushd_fails(&P, err, sizeof(err)), 69);
	ck_assert_msg(strstr(err, "is not a socket") != NULL, "%s", err);
	ck_assert_int_eq(read_text(P.control, text, sizeof(text)), 9);
	ck_assert_str_eq(text, "precious\n");
	/* a stale socket (no daemon behind it) is replaced */
	ck_assert_int_eq(unlink(P.control), 0);
	{
		struct sockaddr_un sun;
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);

		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", P.control);
		ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun,
		    sizeof(sun)), 0);
		close(fd);
	}
	ck_assert_int_eq(mpd_start(&P), 0);
	/* and a second daemon on the same socket refuses: 69 */
	ck_assert_int_eq(ops_mailpushd_fails(&P, err, sizeof(err)), 69);
	ck_assert_msg(strstr(err, "another mailpushd is running") != NULL,
	    "%s", err);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "status", NULL), 0);
}
END_TEST

START_TEST(token_matches)
{
	uint8_t tok[MP_TOKEN_LEN];
	char hex[2 * MP_TOKEN_LEN + 4], s[80];

	mpd_token(&P, "alice", tok);
	/* "ID:HEX"; the harness's key file has no id: key 1 */
	memcpy(hex, "1:", 2);
	sodium_bin2hex(hex + 2, sizeof(hex) - 2, tok, sizeof(tok));
	strcat(hex, "\n");
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "token", "alice", NULL), 0);
	ck_assert_str_eq(out, hex);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "token", "Alice+news", NULL), 0);
	ck_assert_str_eq(out, hex);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err), "-j",
	    "token", "Alice", NULL), 0);
	ck_assert_json(out);
	ck_assert_int_eq(json_strval(out, "token", s, sizeof(s)), 0);
	hex[66] = '\0';
	ck_assert_str_eq(s, hex);
	ck_assert_int_eq(json_strval(out, "user", s, sizeof(s)), 0);
	ck_assert_str_eq(s, "alice");
	/* a name the daemon would refuse */
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "token", "al ice", NULL), 65);
	ck_assert_msg(strstr(err, "bad user name") != NULL, "%s", err);
	/* a key file that is not a key */
	ck_assert_int_eq(write_text(P.key_file, "nonsense\n", 0600), 0);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "token", "alice", NULL), 78);
	ck_assert_msg(strstr(err, "lines must be \"key ID HEX\"") != NULL,
	    "%s", err);
}
END_TEST

/* What genkey writes: a comment line, then "key 1 HEX". */
static int
is_key_text(const char *s)
{
	size_t i;

	if ((s = strstr(s, "\nkey 1 ")) == NULL)
		return 0;
	s += 7;
	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[64] == '\n' && s[65] == '\0';
}

START_TEST(genkey_mode_and_overwrite)
{
	char path[192], k1[512], k2[512];
	struct stat st;
	mode_t old;

	snprintf(path, sizeof(path), "%s/newkey", P.dir);
	ck_assert_int_eq(mpd_stop(&P), 0);
	{
		char text[1024];

		snprintf(text, sizeof(text), "[mailpushd]\nuser =\nkey_file = "
		    "%s\ncontrol_socket = %s\n", path, P.control);
		ck_assert_int_eq(write_text(P.conf, text, 0644), 0);
	}
	old = umask(0);		/* the mode must not depend on the umask */
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "genkey", NULL), 0);
	umask(old);
	ck_assert_msg(strstr(out, "wrote a new key to") != NULL, "%s", out);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_int_gt(read_text(path, k1, sizeof(k1)), 72);
	ck_assert(is_key_text(k1));

	/* never overwritten without -f */
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "genkey", NULL), 73);
	ck_assert_msg(strstr(err, "exists") != NULL, "%s", err);
	ck_assert_int_gt(read_text(path, k2, sizeof(k2)), 72);
	ck_assert_str_eq(k1, k2);

	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err), "-j",
	    "genkey", "-f", NULL), 0);
	ck_assert_json(out);
	ck_assert_int_gt(read_text(path, k2, sizeof(k2)), 72);
	ck_assert(is_key_text(k2));
	ck_assert_str_ne(k1, k2);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_uint_eq(st.st_uid, geteuid());
	/* no temporary file left behind */
	{
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "test -z \"$(ls '%s' | grep "
		    "'newkey\\.')\"", P.dir);
		ck_assert_int_eq(system(cmd), 0);
	}
}
END_TEST

/*
 * A write of the key file cut short (here by a file size limit) sets no
 * errno: the message said "Success" or an older error (R15-8).
 */
START_TEST(genkey_short_write)
{
	char path[192], text[1024];
	char *argv[] = { (char *)"/usr/bin/prlimit", (char *)"--fsize=20",
	    (char *)BUILDDIR "/mailpushctl", (char *)"-c", P.conf,
	    (char *)"genkey", NULL };

	if (access(argv[0], X_OK) != 0) {
		fprintf(stderr, "control: genkey_short_write skipped: no "
		    "prlimit(1)\n");
		return;
	}
	snprintf(path, sizeof(path), "%s/shortkey", P.dir);
	snprintf(text, sizeof(text), "[mailpushd]\nuser =\nkey_file = %s\n"
	    "control_socket = %s\n", path, P.control);
	ck_assert_int_eq(write_text(P.conf, text, 0644), 0);
	ck_assert_int_eq(run_cmd(argv, out, sizeof(out), err, sizeof(err),
	    5000), 74);
	ck_assert_msg(strstr(err, "short write (20 of ") != NULL, "%s", err);
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

START_TEST(genkey_owner_as_root)
{
	char path[192], text[1024];
	struct passwd *pw;
	struct stat st;

	if (geteuid() != 0) {
		fprintf(stderr, "control: genkey_owner_as_root skipped: "
		    "needs root\n");
		return;
	}
	ck_assert_ptr_nonnull(pw = getpwnam("nobody"));
	snprintf(path, sizeof(path), "%s/nobodykey", P.dir);
	snprintf(text, sizeof(text), "[mailpushd]\nuser = nobody\nkey_file = "
	    "%s\ncontrol_socket = %s\n", path, P.control);
	ck_assert_int_eq(write_text(P.conf, text, 0644), 0);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "genkey", NULL), 0);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert_uint_eq(st.st_uid, pw->pw_uid);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
}
END_TEST

START_TEST(usage_and_bad_requests)
{
	char *argv[] = { (char *)BUILDDIR "/mailpushctl", NULL };
	struct sockaddr_un sun;
	char buf[256];
	ssize_t n;
	int fd;

	ck_assert_int_eq(run_cmd(argv, out, sizeof(out), err, sizeof(err),
	    5000), 64);
	ck_assert_msg(strstr(err, "usage:") != NULL, "%s", err);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "frobnicate", NULL), 64);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "drop", NULL), 64);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "status", "extra", NULL), 64);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "genkey", "-x", NULL), 64);

	/* the daemon's side of the protocol */
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", P.control);
	ck_assert_int_ne(fd = socket(AF_UNIX, SOCK_STREAM, 0), -1);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(write(fd, "list a b c\n", 11), 11);
	n = read(fd, buf, sizeof(buf) - 1);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_msg(strncmp(buf, "error: too many arguments", 25) == 0,
	    "%s", buf);
	close(fd);
	ck_assert_int_ne(fd = socket(AF_UNIX, SOCK_STREAM, 0), -1);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	memset(out, 'x', 2000);
	ck_assert_int_eq(write(fd, out, 2000), 2000);
	n = read(fd, buf, sizeof(buf) - 1);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "error: request too long\n");
	close(fd);
	/* still serving */
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "status", NULL), 0);
}
END_TEST

Suite *
make_control_suite(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("commands");
	TCase *tr = tcase_create("unreachable");
	TCase *te = tcase_create("errors");
	TCase *tk = tcase_create("keys");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, status_text_and_json);
	tcase_add_test(tc, stats_count_and_json);
	tcase_add_test(tc, list_shows_push_and_ack);
	tcase_add_test(tc, list_by_user);
	tcase_add_test(tc, list_escapes_names);
	tcase_add_test(tc, drop_user_and_id);
	tcase_add_test(tc, reload_json);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(tr, setup_retry, teardown);
	tcase_set_timeout(tr, 30);
	tcase_add_test(tr, list_shows_unreachable);
	suite_add_tcase(s, tr);

	tcase_add_checked_fixture(te, setup, teardown);
	tcase_set_timeout(te, 30);
	tcase_add_test(te, not_running);
	tcase_add_test(te, busy_daemon);
	tcase_add_test(te, permission_denied);
	tcase_add_test(te, socket_mode_from_config);
	tcase_add_test(te, refuses_non_socket);
	tcase_add_test(te, usage_and_bad_requests);
	suite_add_tcase(s, te);

	tcase_add_checked_fixture(tk, setup, teardown);
	tcase_set_timeout(tk, 30);
	tcase_add_test(tk, token_matches);
	tcase_add_test(tk, genkey_mode_and_overwrite);
	tcase_add_test(tk, genkey_owner_as_root);
	tcase_add_test(tk, genkey_short_write);
	suite_add_tcase(s, tk);
	return s;
}
