/*
 * check_state.c: the state file through the real mailpushd: saved on
 * SIGTERM and every state_save_interval while something changed, read
 * back at start (sequence numbers kept, expired entries skipped), and a
 * corrupt, truncated or foreign file moved aside while the daemon starts
 * empty.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "ops.h"

static struct mpd_proc P;
static char out[65536], err[4096];

/* Device ids in the state files the tests write. */
#define DEV_A	"a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
#define DEV_B	"b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"

static void
use_device(struct tclient *c, const char *hex)
{
	uint8_t d[PROTO_DEVICE_LEN];

	ck_assert_int_eq(proto_hex_decode(hex, d, sizeof(d)), 0);
	tc_set_device(c, d);
}

/* The daemon must exit 0 on SIGTERM, with no sanitizer report. */
static void
teardown(void)
{
	ck_assert_msg(mpd_finish(&P) == 0, "mailpushd in %s did not end "
	    "cleanly", P.dir);
}

/* Prepare P with extra [mailpushd] lines; do not start. */
static void
prepare(const char *mainextra)
{
	char main_[512];

	ck_assert_int_eq(ops_prepare(&P, NULL, NULL), 0);
	snprintf(main_, sizeof(main_), "user =\nlisten = 127.0.0.1:%d "
	    "[::1]:%d\n%s", P.port, P.port, mainextra ? mainextra : "");
	ck_assert_int_eq(ops_write_config(&P, main_, NULL), 0);
}

static uint16_t
client_port(const struct tclient *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	ck_assert_int_eq(getsockname(c->fd, (struct sockaddr *)&ss, &len), 0);
	return ntohs(ss.ss_family == AF_INET ?
	    ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/*
 * The fields of the state file's line for registration id (21 of them, in
 * buf), or -1 if there is none.
 */
static int
state_entry(const char *id, char *buf, size_t len, char *f[21])
{
	char *line, *save = NULL, *tok, text[16384];
	size_t n = 0;

	if (read_text(P.state, text, sizeof(text)) < 0)
		return -1;
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char want[16];

		snprintf(want, sizeof(want), "reg %s ", id);
		if (strncmp(line, want, strlen(want)) == 0)
			break;
	}
	if (line == NULL)
		return -1;
	snprintf(buf, len, "%s", line);
	save = NULL;
	for (tok = strtok_r(buf, " ", &save); tok != NULL && n < 21;
	    tok = strtok_r(NULL, " ", &save))
		f[n++] = tok;
	return n == 21 ? 0 : -1;
}

/* Wait until the state file holds id with SEQ seq and ACKED acked. */
static int
wait_saved(const char *id, const char *seq, const char *acked, int ms)
{
	uint64_t until = now_ms() + (uint64_t)ms;
	char buf[4096], *f[21];

	do {
		if (state_entry(id, buf, sizeof(buf), f) == 0 &&
		    strcmp(f[13], seq) == 0 && strcmp(f[16], acked) == 0)
			return 0;
		usleep(20000);
	} while (now_ms() < until);
	return -1;
}

static ino_t
state_inode(void)
{
	struct stat st;

	return stat(P.state, &st) == 0 ? st.st_ino : 0;
}

static uint32_t
reg_client(struct tclient *c, const char *user, const char *ctx)
{
	struct mp_reply rp;

	ck_assert_int_eq(tc_open(c, &P, 0, NULL, user), 0);
	ck_assert_int_eq(tc_register(c, ctx, strlen(ctx), &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_uint_eq(rp.seq, 0);
	return rp.reg_id;
}

static void
push_and_ack(struct tclient *c, uint32_t id, uint32_t seq, uint32_t total)
{
	struct mp_push p;

	ck_assert_int_eq(mpd_event(&P, c->user, "INBOX", 1), 0);
	ck_assert_int_eq(tc_push(c, &p, 3000), 0);
	ck_assert_uint_eq(p.reg_id, id);
	ck_assert_uint_eq(p.seq, seq);
	ck_assert_uint_eq(p.total, total);
	ck_assert_int_eq(tc_ack(c, &p), 0);
}

/* A REFRESH from the client's own address: the id and seq it gets. */
static void
refresh_expect(struct tclient *c, uint32_t id, uint32_t seq, const char *ctx)
{
	static struct mp_request rq;
	struct mp_reply rp;

	tc_req(c, &rq, PROTO_REFRESH, ctx, strlen(ctx));
	ck_assert_int_eq(tc_call(c, &rq, &rp, 0), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_uint_eq(rp.reg_id, id);
	ck_assert_uint_eq(rp.seq, seq);
}

static void
kill9(void)
{
	int status;

	ck_assert_int_eq(kill(P.pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(P.pid, &status, 0), P.pid);
	ck_assert(WIFSIGNALED(status));
	P.pid = -1;
}

START_TEST(sigterm_saves)
{
	struct tclient c;
	char id[9], buf[4096], *f[21], text[256];
	uint32_t reg;
	long long v;

	prepare("state_save_interval = 1h\n");	/* only SIGTERM saves */
	ck_assert_int_eq(mpd_start(&P), 0);
	reg = reg_client(&c, "alice", "ctx1");
	reg_hex(reg, id);
	push_and_ack(&c, reg, 1, 1);
	ck_assert_int_eq(mpd_stat_wait(&P, "acks", 1, 2000), 0);
	ck_assert_int_eq(access(P.state, F_OK), -1);	/* nothing yet */

	ck_assert_int_eq(mpd_stop(&P), 0);
	ck_assert_int_eq(read_text(P.state, text, sizeof(text)) > 0, 1);
	ck_assert_msg(strncmp(text, "mailpush-state 2\n", 17) == 0, "%s", text);
	ck_assert_int_eq(state_entry(id, buf, sizeof(buf), f), 0);
	ck_assert_str_eq(f[2], "alice");
	ck_assert_str_eq(f[6], "127.0.0.1");
	ck_assert_int_eq(atoi(f[7]), client_port(&c));
	ck_assert_str_eq(f[13], "1");	/* seq */
	ck_assert_str_eq(f[16], "1");	/* acked */
	{
		struct stat st;

		ck_assert_int_eq(stat(P.state, &st), 0);
		ck_assert_uint_eq(st.st_mode & 0777, 0600);
	}

	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(mpd_log_count(&P, "state: 1 registrations restored"),
	    1);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err), "-j",
	    "list", "alice", NULL), 0);
	ck_assert_int_eq(json_strval(out, "id", text, sizeof(text)), 0);
	ck_assert_str_eq(text, id);
	ck_assert_int_eq(json_num(out, "seq", &v), 0);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(json_strval(out, "last_ack", text, sizeof(text)), 0);
	ck_assert_str_ne(text, "null");
	ck_assert_int_eq(json_strval(out, "last_push", text, sizeof(text)), 0);
	ck_assert_str_ne(text, "null");
	refresh_expect(&c, reg, 1, "ctx1");
	/* the next push goes on from the saved sequence number */
	push_and_ack(&c, reg, 2, 2);
	tc_close(&c);
}
END_TEST

START_TEST(unacked_push_after_restart)
{
	struct tclient c;
	struct mp_push p;
	char id[9], buf[4096], *f[21];
	uint32_t reg;

	prepare("state_save_interval = 1h\n");
	ck_assert_int_eq(mpd_start(&P), 0);
	reg = reg_client(&c, "alice", "ctx1");
	reg_hex(reg, id);
	push_and_ack(&c, reg, 1, 1);
	ck_assert_int_eq(mpd_stat_wait(&P, "acks", 1, 2000), 0);
	/* two more messages; the push is not acknowledged */
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 2), 0);
	ck_assert_int_eq(tc_push(&c, &p, 3000), 0);
	ck_assert_uint_eq(p.seq, 2);
	ck_assert_int_eq(mpd_stop(&P), 0);
	ck_assert_int_eq(state_entry(id, buf, sizeof(buf), f), 0);
	ck_assert_str_eq(f[18], "1");	/* pushing */
	ck_assert_str_eq(f[14], "3");	/* total */
	ck_assert_str_eq(f[16], "1");	/* acked */
	/* the restarted daemon pushes again what was not acknowledged */
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(tc_push(&c, &p, 3000), 0);
	ck_assert_uint_eq(p.reg_id, reg);
	ck_assert_uint_eq(p.seq, 3);
	ck_assert_uint_eq(p.total, 3);
	ck_assert_uint_eq(p.count, 2);
	ck_assert_int_eq(tc_ack(&c, &p), 0);
	ck_assert_int_eq(mpd_stat_wait(&P, "acks", 1, 2000), 0);
	tc_close(&c);
}
END_TEST

START_TEST(periodic_save_survives_kill9)
{
	struct tclient c;
	char id[9];
	uint32_t reg;
	ino_t ino;
	long long v;

	prepare("state_save_interval = 1s\n");
	ck_assert_int_eq(mpd_start(&P), 0);
	reg = reg_client(&c, "alice", "ctx1");
	reg_hex(reg, id);
	ck_assert_int_eq(wait_saved(id, "0", "0", 3000), 0);

	/* nothing changes: nothing is written (every save is a new file) */
	ino = state_inode();
	ck_assert_uint_ne(ino, 0);
	usleep(2300 * 1000);
	ck_assert_uint_eq(state_inode(), ino);

	/* a push and its acknowledgement: saved within the interval */
	push_and_ack(&c, reg, 1, 1);
	ck_assert_int_eq(wait_saved(id, "1", "1", 3000), 0);
	ck_assert_uint_ne(state_inode(), ino);

	kill9();
	/* a stale socket: nobody answers */
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "status", NULL), 69);
	ck_assert_msg(strstr(err, "not running") != NULL, "%s", err);
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(mpd_log_count(&P, "state: 1 registrations restored"),
	    1);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err), "-j",
	    "list", "alice", NULL), 0);
	ck_assert_msg(strstr(out, id) != NULL, "%s", out);
	ck_assert_int_eq(json_num(out, "seq", &v), 0);
	ck_assert_int_eq(v, 1);
	push_and_ack(&c, reg, 2, 2);
	tc_close(&c);
}
END_TEST

START_TEST(expired_entries_skipped)
{
	struct tclient c, c6;
	char text[4096], buf[4096], *f[21];
	uint32_t now = (uint32_t)time(NULL);
	struct mp_push p;
	long long v;

	prepare(NULL);
	ck_assert_int_eq(tc_open(&c, &P, 0, NULL, "alice"), 0);
	ck_assert_int_eq(tc_open(&c6, &P, 1, NULL, "bob"), 0);
	use_device(&c, DEV_A);
	use_device(&c6, DEV_B);
	/* alice: live, seq 7; carol: expired 10 s ago; bob: live, over
	 * IPv6, two mailboxes (INBOX, Work) */
	snprintf(text, sizeof(text),
	    "mailpush-state 2\n"
	    "reg 0a0b0c0d alice " DEV_A " 1 0 127.0.0.1 %u 127.0.0.1:%d %u %u %u %u 7 9 9 9 "
	    "0 0 63747831 -\n"
	    "reg 01020304 carol " DEV_A " 1 0 127.0.0.1 9 127.0.0.1:%d %u %u 0 0 0 0 0 0 0 "
	    "0 - -\n"
	    "reg 0e0e0e0e bob " DEV_B " 1 0 ::1 %u [::1]:%d %u %u 0 0 0 0 0 0 0 0 - "
	    "494e424f58,576f726b\n"
	    "end 3\n",
	    client_port(&c), P.port, now - 100, now + 300, now - 50, now - 49,
	    P.port, now - 700, now - 10,
	    client_port(&c6), P.port, now - 5, now + 300);
	ck_assert_int_eq(write_text(P.state, text, 0600), 0);
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(mpd_log_count(&P, "state: 2 registrations restored"),
	    1);
	ck_assert_int_eq(mpd_log_count(&P, "1 expired skipped"), 1);
	ck_assert_int_eq(mpd_list(&P, NULL, out, sizeof(out)), 2);
	ck_assert_msg(strstr(out, "carol") == NULL, "%s", out);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err), "-j",
	    "list", "bob", NULL), 0);
	ck_assert_msg(strstr(out, "\"mailboxes\":[\"INBOX\",\"Work\"]") != NULL,
	    "%s", out);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err), "-j",
	    "list", "alice", NULL), 0);
	ck_assert_int_eq(json_num(out, "age", &v), 0);
	ck_assert(v >= 100 && v <= 105);
	ck_assert_int_eq(json_num(out, "context_bytes", &v), 0);
	ck_assert_int_eq(v, 4);

	refresh_expect(&c, 0x0a0b0c0d, 7, "ctx1");
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	ck_assert_int_eq(tc_push(&c, &p, 3000), 0);
	ck_assert_uint_eq(p.reg_id, 0x0a0b0c0d);
	ck_assert_uint_eq(p.seq, 8);
	ck_assert_uint_eq(p.total, 10);
	ck_assert_uint_eq(p.count, 1);
	ck_assert_int_eq(p.ctx_len, 4);
	ck_assert_int_eq(memcmp(p.ctx, "ctx1", 4), 0);
	/* bob's mailbox filter came back too */
	ck_assert_int_eq(mpd_event(&P, "bob", "Junk", 1), 0);
	ck_assert_int_eq(tc_push(&c6, &p, 300), -1);
	ck_assert_int_eq(mpd_event(&P, "bob", "Work", 1), 0);
	ck_assert_int_eq(tc_push(&c6, &p, 3000), 0);
	ck_assert_uint_eq(p.reg_id, 0x0e0e0e0e);

	/* the expired entry is not written back */
	ck_assert_int_eq(mpd_stop(&P), 0);
	ck_assert_int_eq(read_text(P.state, text, sizeof(text)) > 0, 1);
	ck_assert_msg(strstr(text, "carol") == NULL, "%s", text);
	ck_assert_msg(strstr(text, "\nend 2\n") != NULL, "%s", text);
	ck_assert_int_eq(state_entry("0e0e0e0e", buf, sizeof(buf), f), 0);
	ck_assert_str_eq(f[20], "494e424f58,576f726b");
	tc_close(&c);
	tc_close(&c6);
}
END_TEST

/*
 * The [names] rules changed between two runs (here fold_case, off when
 * "Bob" was saved): an entry whose user name the new rules would write
 * differently is dropped with a warning; the others are restored and the
 * file is not taken for corrupt (it once was, and every registration of
 * every user was lost).
 */
START_TEST(names_changed_entry_skipped)
{
	char text[4096];
	uint32_t now = (uint32_t)time(NULL);

	prepare(NULL);
	snprintf(text, sizeof(text),
	    "mailpush-state 2\n"
	    "reg 0a0b0c0d alice " DEV_A " 1 0 127.0.0.1 4000 127.0.0.1:%d %u %u 0 0 0 0 0 0 "
	    "0 0 - -\n"
	    "reg 01020304 Bob " DEV_B " 1 0 127.0.0.1 4001 127.0.0.1:%d %u %u 0 0 0 0 0 0 "
	    "0 0 - -\n"
	    "end 2\n", P.port, now - 10, now + 300, P.port, now - 10,
	    now + 300);
	ck_assert_int_eq(write_text(P.state, text, 0600), 0);
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(mpd_log_count(&P, "moved aside"), 0);
	ck_assert_int_eq(mpd_log_count(&P, "state: 1 registrations restored"),
	    1);
	ck_assert_int_eq(mpd_log_count(&P, "1 registrations dropped: their "
	    "user name"), 1);
	ck_assert_int_eq(mpd_list(&P, NULL, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "alice") != NULL, "%s", out);
	/* the next save leaves it out */
	ck_assert_int_eq(mpd_stop(&P), 0);
	ck_assert_int_gt(read_text(P.state, text, sizeof(text)), 0);
	ck_assert_msg(strstr(text, "Bob") == NULL &&
	    strstr(text, "\nend 1\n") != NULL, "%s", text);
}
END_TEST

/* Bad state files; %1$u: now + 300, %2$d: the daemon's port. */
static const struct {
	const char *name, *text, *why;
} bad[] = {
	{ "garbage", "\x01\x02 this is not a state file\n",
	  "not a mailpush state file" },
	{ "foreign version", "mailpush-state 1\nend 0\n",
	  "another version of the state file format" },
	{ "no end line", "mailpush-state 2\n"
	  "reg 0a0b0c0d alice " DEV_A " 1 0 127.0.0.1 4000 127.0.0.1:%2$d 1 %1$u 0 0 0 0 0 "
	  "0 0 0 - -\n", "truncated (no end line)" },
	{ "cut in a line", "mailpush-state 2\n"
	  "reg 0a0b0c0d alice " DEV_A " 1 0 127.0.0.1 4000 127.0.0.1:%2$d 1 %1$u 0 0 0 0 0 "
	  "0 0 0 - -\nreg 0b0b0c0d alice 127.0.0.1 40", "truncated line" },
	{ "count wrong", "mailpush-state 2\n"
	  "reg 0a0b0c0d alice " DEV_A " 1 0 127.0.0.1 4000 127.0.0.1:%2$d 1 %1$u 0 0 0 0 0 "
	  "0 0 0 - -\nend 2\n", "entry count does not match" },
	{ "bad field", "mailpush-state 2\n"
	  "reg 0a0b0c0d alice " DEV_A " 1 0 127.0.0.1 4000 127.0.0.1:%2$d 1 %1$u 0 0 0 3 5 "
	  "0 0 0 - -\nend 1\n", "inconsistent" },
	{ "empty", "", "empty file" },
	{ "data after end", "mailpush-state 2\nend 0\nreg\n",
	  "data after the end line" },
};

START_TEST(bad_file_moved_aside)
{
	char text[2048], got[2048], aside[256] = "", name[64];
	struct tclient c;
	struct mp_reply rp;
	struct dirent *de;
	DIR *d;
	int n = 0;

	prepare(NULL);
	snprintf(text, sizeof(text), bad[_i].text,
	    (unsigned)time(NULL) + 300, P.port);
	ck_assert_int_eq(write_text(P.state, text, 0600), 0);
	ck_assert_msg(mpd_start(&P) == 0, "%s: the daemon did not start",
	    bad[_i].name);
	ck_assert_msg(mpd_log_count(&P, bad[_i].why) == 1, "%s: no \"%s\" in "
	    "the log", bad[_i].name, bad[_i].why);
	ck_assert_int_eq(mpd_log_count(&P, "moved aside to"), 1);
	ck_assert_int_eq(mpd_list(&P, NULL, out, sizeof(out)), 0);

	/* state.corrupt-YYYYmmddTHHMMSS, holding what was there */
	ck_assert_ptr_nonnull(d = opendir(P.dir));
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "state.", 6) == 0) {
			snprintf(aside, sizeof(aside), "%s/%s", P.dir,
			    de->d_name);
			snprintf(name, sizeof(name), "%s", de->d_name);
			n++;
		}
	closedir(d);
	ck_assert_int_eq(n, 1);
	ck_assert_msg(strlen(name) == 14 + 15 && strncmp(name,
	    "state.corrupt-", 14) == 0 && name[22] == 'T' &&
	    strspn(name + 14, "0123456789") == 8 &&
	    strspn(name + 23, "0123456789") == 6, "moved to %s", name);
	ck_assert_int_eq(access(P.state, F_OK), -1);
	ck_assert_int_eq(read_text(aside, got, sizeof(got)), strlen(text));
	ck_assert_str_eq(got, text);

	/* and keeps running: registers, and saves a good file at the end */
	ck_assert_int_eq(tc_open(&c, &P, 0, NULL, "alice"), 0);
	ck_assert_int_eq(tc_register(&c, "x", 1, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_int_eq(mpd_stop(&P), 0);
	ck_assert_int_gt(read_text(P.state, got, sizeof(got)), 0);
	ck_assert_msg(strncmp(got, "mailpush-state 2\nreg ", 21) == 0 &&
	    strstr(got, "\nend 1\n") != NULL, "%s", got);
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(mpd_list(&P, NULL, out, sizeof(out)), 1);
	tc_close(&c);
}
END_TEST

START_TEST(leftover_tmp_and_no_file)
{
	char tmp[192];

	/* a crash while saving leaves FILE.tmp: it is not read, and it
	 * does not stop the next save */
	prepare(NULL);
	snprintf(tmp, sizeof(tmp), "%s.tmp", P.state);
	ck_assert_int_eq(write_text(tmp, "half a fi", 0600), 0);
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(mpd_log_count(&P, "no state file"), 1);
	ck_assert_int_eq(mpd_stop(&P), 0);
	ck_assert_int_eq(access(tmp, F_OK), -1);
	ck_assert_int_eq(read_text(P.state, out, sizeof(out)), 23);
	ck_assert_str_eq(out, "mailpush-state 2\nend 0\n");
}
END_TEST

Suite *
make_state_suite(void)
{
	Suite *s = suite_create("state");
	TCase *tc = tcase_create("save");
	TCase *tb = tcase_create("bad");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, sigterm_saves);
	tcase_add_test(tc, unacked_push_after_restart);
	tcase_add_test(tc, periodic_save_survives_kill9);
	tcase_add_test(tc, expired_entries_skipped);
	tcase_add_test(tc, leftover_tmp_and_no_file);
	tcase_add_test(tc, names_changed_entry_skipped);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(tb, NULL, teardown);
	tcase_set_timeout(tb, 30);
	tcase_add_loop_test(tb, bad_file_moved_aside, 0,
	    (int)(sizeof(bad) / sizeof(bad[0])));
	suite_add_tcase(s, tb);
	return s;
}
