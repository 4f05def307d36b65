/*
 * check_state.c: the snapshot and the journal through the real mailpushd:
 * a clean snapshot at SIGTERM (epoch and sequence numbers kept), answered
 * registrations back after kill -9 (epoch new, sequence numbers ahead),
 * expiries extended by the downtime, entries of other [names] rules
 * dropped, a damaged or older-format snapshot or journal moved aside or
 * its tail discarded while the daemon starts.  The files are read and
 * made with the daemon's own record.c (test/lib/statefile.c).
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
#include "statefile.h"

static struct mpd_proc P;
static char out[65536], err[4096];

/* Device ids of the registrations the tests write. */
static const uint8_t DEV_A[PROTO_DEVICE_LEN] = { 0xa0, 0xa1, 0xa2, 0xa3,
    0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf };
static const uint8_t DEV_B[PROTO_DEVICE_LEN] = { 0xb0, 0xb1, 0xb2, 0xb3,
    0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf };

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

static uint64_t last_epoch;	/* of the last REGISTERED */

static uint32_t
reg_client(struct tclient *c, const char *user, const char *ctx)
{
	struct mp_reply rp;

	ck_assert_int_eq(tc_open(c, &P, 0, NULL, user), 0);
	ck_assert_int_eq(tc_register(c, ctx, strlen(ctx), &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_uint_eq(rp.seq, 0);
	last_epoch = rp.epoch;
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

/* A REFRESH from the client's own address: the id and seq it gets; the
 * restart epoch. */
static uint64_t
refresh_expect(struct tclient *c, uint32_t id, uint32_t seq, const char *ctx)
{
	static struct mp_request rq;
	struct mp_reply rp;

	tc_req(c, &rq, PROTO_REFRESH, ctx, strlen(ctx));
	ck_assert_int_eq(tc_call(c, &rq, &rp, 0), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_uint_eq(rp.reg_id, id);
	ck_assert_uint_eq(rp.seq, seq);
	return rp.epoch;
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

START_TEST(sigterm_clean_snapshot)
{
	struct tclient c;
	struct sf sf;
	struct sf_rec *r;
	struct stat st;
	char id[9], text[256];
	uint64_t gens[8];
	uint32_t reg;
	long long v;

	prepare("state_save_interval = 1h\n");
	ck_assert_int_eq(mpd_start(&P), 0);
	reg = reg_client(&c, "alice", "ctx1");
	reg_hex(reg, id);
	push_and_ack(&c, reg, 1, 1);
	ck_assert_int_eq(mpd_stat_wait(&P, "acks", 1, 2000), 0);
	/* a journal exists while it runs; no snapshot yet */
	ck_assert_uint_eq(sf_journals(P.state, gens, 8), 1);
	ck_assert_int_eq(access(P.state, F_OK), -1);

	ck_assert_int_eq(mpd_stop(&P), 0);
	/* a clean snapshot, mode 0600, and no journal left */
	ck_assert_int_eq(stat(P.state, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_uint_eq(sf_journals(P.state, gens, 8), 0);
	ck_assert_int_eq(sf_read(P.state, &sf), 0);
	ck_assert_uint_eq(sf.hdr.kind, REC_KIND_SNAPSHOT);
	ck_assert_uint_eq(sf.hdr.clean, 1);
	ck_assert_uint_eq(sf.good, sf.len);
	ck_assert_ptr_nonnull(r = sf_find(&sf, REC_REG, reg));
	ck_assert_str_eq(r->f.user, "alice");
	ck_assert_uint_eq(ntohs(r->f.addr.sin.sin_port), client_port(&c));
	ck_assert_uint_eq(r->f.seq, 1);
	ck_assert_uint_eq(r->f.acked, 1);
	ck_assert_uint_eq(sf.recs[sf.n - 1].f.type, REC_END);
	ck_assert_uint_eq(sf.recs[sf.n - 1].f.count, 1);
	sf_free(&sf);

	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(mpd_log_count(&P, "state: 1 registrations restored"),
	    1);
	ck_assert_int_eq(mpd_log_count(&P, "kept: the last shutdown was "
	    "clean"), 1);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err), "-j",
	    "list", "alice", NULL), 0);
	ck_assert_int_eq(json_strval(out, "id", text, sizeof(text)), 0);
	ck_assert_str_eq(text, id);
	ck_assert_int_eq(json_num(out, "seq", &v), 0);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(json_strval(out, "last_ack", text, sizeof(text)), 0);
	ck_assert_str_ne(text, "null");
	/* exact state: the epoch is kept and the next push goes on from
	 * the saved number */
	ck_assert_uint_eq(refresh_expect(&c, reg, 1, "ctx1"), last_epoch);
	push_and_ack(&c, reg, 2, 2);
	tc_close(&c);
}
END_TEST

START_TEST(unacked_push_after_restart)
{
	struct tclient c;
	struct mp_push p;
	uint32_t reg;

	prepare("state_save_interval = 1h\n");
	ck_assert_int_eq(mpd_start(&P), 0);
	reg = reg_client(&c, "alice", "ctx1");
	push_and_ack(&c, reg, 1, 1);
	ck_assert_int_eq(mpd_stat_wait(&P, "acks", 1, 2000), 0);
	/* two more messages; the push is not acknowledged */
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 2), 0);
	ck_assert_int_eq(tc_push(&c, &p, 3000), 0);
	ck_assert_uint_eq(p.seq, 2);
	ck_assert_int_eq(mpd_stop(&P), 0);
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

/*
 * kill -9 right after the answers: registrations, a move, an unregister
 * and a drop are all as answered; the push sequence moves ahead so the
 * client takes the next push for a new one.
 */
START_TEST(kill9_keeps_answered)
{
	static struct mp_request rq;
	struct tclient a, b, b2, d, e;
	struct mp_reply rp;
	struct mp_push p;
	char idb[9], ide[9];
	uint32_t ra, rb, re;

	prepare("state_save_interval = 1h\n");
	ck_assert_int_eq(mpd_start(&P), 0);
	ra = reg_client(&a, "alice", "a");
	push_and_ack(&a, ra, 1, 1);
	rb = reg_client(&b, "bob", "b");
	(void)reg_client(&d, "dave", "d");
	re = reg_client(&e, "erin", "e");
	/* bob moves to another port */
	ck_assert_int_eq(tc_open(&b2, &P, 0, NULL, "bob"), 0);
	tc_use_reg(&b2, rb);
	tc_req(&b2, &rq, PROTO_REFRESH, "b", 1);
	ck_assert_int_eq(tc_call(&b2, &rq, &rp, 0), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	/* dave unregisters, erin is dropped */
	tc_req(&d, &rq, PROTO_UNREGISTER, "d", 1);
	ck_assert_int_eq(tc_call(&d, &rq, &rp, 0), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	reg_hex(re, ide);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "drop", "erin", ide, NULL), 0);
	/* a push not acknowledged, then the crash */
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	ck_assert_int_eq(tc_push(&a, &p, 3000), 0);
	ck_assert_uint_eq(p.seq, 2);
	/* written, not synced, at the end of the iteration that sent it */
	{
		uint64_t until = now_ms() + 2000, gens[8];
		char jname[256];
		struct sf sf;
		struct sf_rec *r = NULL;

		ck_assert_uint_eq(sf_journals(P.state, gens, 8), 1);
		snprintf(jname, sizeof(jname), "%s.journal.%llu", P.state,
		    (unsigned long long)gens[0]);
		do {
			ck_assert_int_eq(sf_read(jname, &sf), 0);
			r = sf_find(&sf, REC_SEQ, ra);
			if (r != NULL && r->f.seq == 2) {
				sf_free(&sf);
				break;
			}
			r = NULL;
			sf_free(&sf);
			usleep(10000);
		} while (now_ms() < until);
		ck_assert_msg(r != NULL, "no SEQ record of push 2");
	}
	kill9();

	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(mpd_log_count(&P, "no clean shutdown"), 1);
	ck_assert_int_eq(mpd_list(&P, NULL, out, sizeof(out)), 2);
	reg_hex(rb, idb);
	ck_assert_int_eq(mpd_list(&P, "bob", out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, idb) != NULL, "%s", out);
	{
		char want[32];

		snprintf(want, sizeof(want), "127.0.0.1:%u",
		    client_port(&b2));
		ck_assert_msg(strstr(out, want) != NULL, "bob not at %s: %s",
		    want, out);
	}
	ck_assert_int_eq(mpd_list(&P, "dave", out, sizeof(out)), 0);
	ck_assert_int_eq(mpd_list(&P, "erin", out, sizeof(out)), 0);
	/* the unacknowledged push comes again under a new restart epoch
	 * (the client reports it whatever its sequence number), its counts
	 * marked as possibly inexact */
	{
		uint64_t old = p.epoch;

		ck_assert_int_eq(tc_push(&a, &p, 3000), 0);
		ck_assert_uint_eq(p.reg_id, ra);
		ck_assert_uint_ne(p.epoch, old);
		ck_assert_uint_eq(p.seq, 3);
		ck_assert_uint_eq(p.total, 2);
		ck_assert_uint_eq(p.count, 1);
		ck_assert_uint_ne(p.flags & PUSH_FLAG_COUNT_UNKNOWN, 0);
	}
	tc_close(&a);
	tc_close(&b);
	tc_close(&b2);
	tc_close(&d);
	tc_close(&e);
}
END_TEST

/* A REG record for the crafted snapshots, for this test's daemon. */
static void
mk_reg(struct sf_rec *r, uint32_t id, const char *user, int v6,
    uint16_t port, uint32_t created, uint32_t expires)
{
	sf_mk_reg(r, id, user, v6, port, (uint16_t)P.port, created, expires);
}

START_TEST(expired_skipped_downtime_added)
{
	static struct sf_rec r[4];
	struct tclient c, c6;
	struct rec_hdr h;
	uint32_t now = (uint32_t)time(NULL);
	struct mp_push p;
	long long v;

	prepare(NULL);
	ck_assert_int_eq(tc_open(&c, &P, 0, NULL, "alice"), 0);
	ck_assert_int_eq(tc_open(&c6, &P, 1, NULL, "bob"), 0);
	/* written 100 s ago (a clean shutdown): alice live, seq 7; carol
	 * expired before the shutdown; bob over IPv6 with two mailboxes
	 * and 5 s left at the shutdown; dave had 5 s left too */
	sf_mk_hdr(&h, REC_KIND_SNAPSHOT, 1, 1, now - 100);
	mk_reg(&r[0], 0x0a0b0c0d, "alice", 0, client_port(&c), now - 200,
	    now + 300);
	memcpy(r[0].f.device, DEV_A, PROTO_DEVICE_LEN);
	tc_set_device(&c, DEV_A);
	r[0].f.seq = 7;
	r[0].f.total = r[0].f.sent = r[0].f.acked = 9;
	r[0].f.ctx_len = 4;
	memcpy(r[0].f.ctx, "ctx1", 4);
	mk_reg(&r[1], 0x01020304, "carol", 0, 9, now - 800, now - 110);
	mk_reg(&r[2], 0x0e0e0e0e, "bob", 1, client_port(&c6), now - 105,
	    now - 95);
	memcpy(r[2].f.device, DEV_B, PROTO_DEVICE_LEN);
	tc_set_device(&c6, DEV_B);
	r[2].f.n_mailboxes = 2;
	strcpy(r[2].f.mailboxes[0], "INBOX");
	strcpy(r[2].f.mailboxes[1], "Work");
	ck_assert_int_eq(sf_write(P.state, &h, r, 3, 1), 0);
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(mpd_log_count(&P, "state: 2 registrations restored"),
	    1);
	ck_assert_int_eq(mpd_log_count(&P, "1 expired"), 1);
	ck_assert_int_eq(mpd_list(&P, NULL, out, sizeof(out)), 2);
	ck_assert_msg(strstr(out, "carol") == NULL, "%s", out);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err), "-j",
	    "list", "bob", NULL), 0);
	ck_assert_msg(strstr(out, "\"mailboxes\":[\"INBOX\",\"Work\"]") != NULL,
	    "%s", out);
	/* its 5 s left at the shutdown are left after the downtime */
	ck_assert_int_eq(json_num(out, "expires_in", &v), 0);
	ck_assert_msg(v >= 2 && v <= 6, "expires in %lld", v);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err), "-j",
	    "list", "alice", NULL), 0);
	ck_assert_int_eq(json_num(out, "age", &v), 0);
	ck_assert(v >= 200 && v <= 205);
	ck_assert_int_eq(json_num(out, "context_bytes", &v), 0);
	ck_assert_int_eq(v, 4);

	/* a clean snapshot: exact sequence numbers */
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
	tc_close(&c);
	tc_close(&c6);
}
END_TEST

/*
 * The [names] rules changed between two runs (here fold_case, off when
 * "Bob" was saved): an entry whose user name the new rules would write
 * differently is dropped with a warning; the others are restored and the
 * file is not taken for corrupt.
 */
START_TEST(names_changed_entry_skipped)
{
	static struct sf_rec r[2];
	struct rec_hdr h;
	uint32_t now = (uint32_t)time(NULL);

	prepare(NULL);
	sf_mk_hdr(&h, REC_KIND_SNAPSHOT, 1, 1, now);
	mk_reg(&r[0], 0x0a0b0c0d, "alice", 0, 4000, now - 10, now + 300);
	mk_reg(&r[1], 0x01020304, "Bob", 0, 4001, now - 10, now + 300);
	ck_assert_int_eq(sf_write(P.state, &h, r, 2, 1), 0);
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(mpd_log_count(&P, "moved aside"), 0);
	ck_assert_int_eq(mpd_log_count(&P, "state: 1 registrations restored"),
	    1);
	ck_assert_int_eq(mpd_log_count(&P, "1 registrations dropped: their "
	    "user name"), 1);
	ck_assert_int_eq(mpd_list(&P, NULL, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "alice") != NULL, "%s", out);
}
END_TEST

#define STR(x)	#x
#define XSTR(x)	STR(x)		/* REC_VERSION as a string */

/* Bad snapshots: made by bad_snapshot(i) below. */
static const struct {
	const char *name, *why;
} bad[] = {
	{ "garbage", "not a mailpush state or journal file" },
	{ "text format of version 1", "an older format (the text state "
	  "file of version 1)" },
	{ "binary format of version 1", "format version 1 (this mailpushd "
	  "reads version " XSTR(REC_VERSION) ")" },
	{ "no end record", "truncated (no end record)" },
	{ "cut in a record", "torn record" },
	{ "count wrong", "count does not match the end record" },
	{ "bit flipped", "checksum mismatch" },
	{ "empty", "empty file" },
	{ "data after end", "data after the end record" },
	{ "a journal for a snapshot", "a journal where a snapshot belongs" },
};

static size_t
bad_snapshot(int i, uint8_t *buf, size_t max)
{
	static struct sf_rec r[2];
	struct rec_hdr h;
	uint32_t now = (uint32_t)time(NULL);
	struct jbuf b = { NULL, 0, 0, 0 };
	size_t len;

	sf_mk_hdr(&h, i == 9 ? REC_KIND_JOURNAL : REC_KIND_SNAPSHOT, 1, 1, now);
	if (i == 2)
		h.version = 1;
	mk_reg(&r[0], 0x0a0b0c0d, "alice", 0, 4000, now - 10, now + 300);
	mk_reg(&r[1], 0x0b0b0c0d, "alice", 0, 4001, now - 10, now + 300);
	record_hdr(&b, &h);
	record_fields(&b, &r[0].f);
	if (i != 3 && i != 4)
		record_fields(&b, &r[1].f);
	else if (i == 4) {
		record_fields(&b, &r[1].f);
		b.len -= 9;
	}
	if (i != 3 && i != 4)
		record_end(&b, i == 5 ? 3 : 2);
	if (i == 6)
		b.p[b.len / 2] ^= 0x10;
	if (i == 8)
		record_del(&b, 0x0a0b0c0d);
	len = b.len;
	if (i == 0)
		len = (size_t)snprintf((char *)b.p, b.cap,
		    "\x01\x02 this is not a state file\n");
	if (i == 1)
		len = (size_t)snprintf((char *)b.p, b.cap, "mailpush-state 1\n"
		    "reg 0a0b0c0d alice 127.0.0.1 4000 127.0.0.1:%d 1 %u 0 0 "
		    "0 0 0 0 0 0 - -\nend 1\n", P.port, now + 300);
	if (i == 7)
		len = 0;
	ck_assert_uint_le(len, max);
	memcpy(buf, b.p, len);
	jbuf_free(&b);
	return len;
}

START_TEST(bad_snapshot_moved_aside)
{
	static uint8_t text[8192], got[8192];
	char aside[256] = "", name[64];
	struct tclient c;
	struct mp_reply rp;
	struct dirent *de;
	size_t len;
	FILE *fp;
	DIR *d;
	int n = 0;

	prepare(NULL);
	len = bad_snapshot(_i, text, sizeof(text));
	ck_assert_ptr_nonnull(fp = fopen(P.state, "w"));
	ck_assert_uint_eq(fwrite(text, 1, len, fp), len);
	fclose(fp);
	ck_assert_msg(mpd_start(&P) == 0, "%s: the daemon did not start",
	    bad[_i].name);
	ck_assert_msg(mpd_log_count(&P, bad[_i].why) == 1, "%s: no \"%s\" in "
	    "the log", bad[_i].name, bad[_i].why);
	ck_assert_int_eq(mpd_log_count(&P, "moved aside to"), 1);
	ck_assert_int_eq(mpd_list(&P, NULL, out, sizeof(out)), 0);

	/* state.corrupt-YYYYmmddTHHMMSS, holding what was there */
	ck_assert_ptr_nonnull(d = opendir(P.dir));
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "state.corrupt", 13) == 0) {
			snprintf(aside, sizeof(aside), "%s/%s", P.dir,
			    de->d_name);
			snprintf(name, sizeof(name), "%s", de->d_name);
			n++;
		}
	closedir(d);
	ck_assert_int_eq(n, 1);
	ck_assert_msg(strlen(name) == 14 + 15 && name[22] == 'T' &&
	    strspn(name + 14, "0123456789") == 8 &&
	    strspn(name + 23, "0123456789") == 6, "moved to %s", name);
	/* a good snapshot of what there is replaces it at once */
	ck_assert_int_eq(mpd_log_wait(&P, "state: snapshot of 0 "
	    "registrations", 1, 3000), 0);
	{
		struct sf sf;

		ck_assert_int_eq(sf_read(P.state, &sf), 0);
		ck_assert_uint_eq(sf.hdr.version, REC_VERSION);
		ck_assert_uint_eq(sf.good, sf.len);
		sf_free(&sf);
	}
	ck_assert_ptr_nonnull(fp = fopen(aside, "r"));
	ck_assert_uint_eq(fread(got, 1, sizeof(got), fp), len);
	fclose(fp);
	ck_assert_int_eq(memcmp(got, text, len), 0);

	/* and keeps running: registers, and saves a good file at the end */
	ck_assert_int_eq(tc_open(&c, &P, 0, NULL, "alice"), 0);
	ck_assert_int_eq(tc_register(&c, "x", 1, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_int_eq(mpd_stop(&P), 0);
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(mpd_log_count(&P, "moved aside to"), 1);
	ck_assert_int_eq(mpd_list(&P, NULL, out, sizeof(out)), 1);
	tc_close(&c);
}
END_TEST

/*
 * Journals: a torn tail and a flipped bit are discarded from that point
 * with a log line, what comes before is restored; a journal of another
 * format version is moved aside; one older than the snapshot is removed.
 */
static void
journal_with_three(uint32_t ids[3], char *jname, size_t len)
{
	struct tclient c[3];
	uint64_t gens[8];
	int i;

	prepare("state_save_interval = 1h\n");
	ck_assert_int_eq(mpd_start(&P), 0);
	for (i = 0; i < 3; i++) {
		char user[16];

		snprintf(user, sizeof(user), "u%d", i);
		ids[i] = reg_client(&c[i], user, "c");
		tc_close(&c[i]);
	}
	kill9();
	ck_assert_uint_eq(sf_journals(P.state, gens, 8), 1);
	snprintf(jname, len, "%s.journal.%llu", P.state,
	    (unsigned long long)gens[0]);
}

static void
cut_file(const char *path, size_t keep)
{
	ck_assert_int_eq(truncate(path, (off_t)keep), 0);
}

START_TEST(journal_torn_tail)
{
	char jname[256];
	uint32_t ids[3];
	struct sf sf;
	struct sf_rec *r;

	journal_with_three(ids, jname, sizeof(jname));
	ck_assert_int_eq(sf_read(jname, &sf), 0);
	ck_assert_ptr_nonnull(r = sf_find(&sf, REC_REG, ids[2]));
	/* the last registration's record, cut in its middle */
	cut_file(jname, r->off + r->size / 2);
	sf_free(&sf);
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(mpd_log_wait(&P, "torn record", 1, 2000), 0);
	ck_assert_int_eq(mpd_log_count(&P, "bytes are discarded"), 1);
	ck_assert_int_eq(mpd_list(&P, NULL, out, sizeof(out)), 2);
	ck_assert_int_eq(mpd_list(&P, "u2", out, sizeof(out)), 0);
}
END_TEST

START_TEST(journal_bit_flipped)
{
	char jname[256];
	uint32_t ids[3];
	struct sf sf;
	struct sf_rec *r;
	FILE *fp;
	int ch;

	journal_with_three(ids, jname, sizeof(jname));
	ck_assert_int_eq(sf_read(jname, &sf), 0);
	ck_assert_ptr_nonnull(r = sf_find(&sf, REC_REG, ids[1]));
	/* one bit in the second registration's record */
	ck_assert_ptr_nonnull(fp = fopen(jname, "r+"));
	ck_assert_int_eq(fseek(fp, (long)(r->off + 12), SEEK_SET), 0);
	ch = fgetc(fp);
	ck_assert_int_eq(fseek(fp, (long)(r->off + 12), SEEK_SET), 0);
	fputc(ch ^ 0x04, fp);
	fclose(fp);
	sf_free(&sf);
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(mpd_log_wait(&P, "checksum mismatch", 1, 2000), 0);
	ck_assert_int_eq(mpd_log_count(&P, "bytes are discarded"), 1);
	ck_assert_int_eq(mpd_list(&P, NULL, out, sizeof(out)), 1);
	ck_assert_int_eq(mpd_list(&P, "u0", out, sizeof(out)), 1);
}
END_TEST

START_TEST(journal_older_format)
{
	char jname[256];
	uint32_t ids[3];
	struct rec_hdr h;

	journal_with_three(ids, jname, sizeof(jname));
	/* the same name, a header of format version 1 */
	sf_mk_hdr(&h, REC_KIND_JOURNAL, 1, 0, (uint64_t)time(NULL));
	h.version = 1;
	ck_assert_int_eq(sf_write(jname, &h, NULL, 0, 0), 0);
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(mpd_log_count(&P, "format version 1 (this "
	    "mailpushd reads version " XSTR(REC_VERSION) "); moved aside"), 1);
	ck_assert_int_eq(mpd_list(&P, NULL, out, sizeof(out)), 0);
}
END_TEST

START_TEST(stale_journal_and_leftover_tmp)
{
	static struct sf_rec r[2];
	struct rec_hdr h;
	char tmp[192], old[192];
	uint32_t now = (uint32_t)time(NULL);
	uint64_t gens[8];

	prepare(NULL);
	/* a snapshot holding generations below 5; journal 4 is a
	 * left-over (it would re-add a registration the snapshot lacks);
	 * a crash while writing a snapshot leaves FILE.tmp */
	sf_mk_hdr(&h, REC_KIND_SNAPSHOT, 5, 0, now);
	mk_reg(&r[0], 0x0a0b0c0d, "alice", 0, 4000, now - 10, now + 300);
	ck_assert_int_eq(sf_write(P.state, &h, r, 1, 1), 0);
	sf_mk_hdr(&h, REC_KIND_JOURNAL, 4, 0, now);
	mk_reg(&r[1], 0x0b0b0c0d, "bob", 0, 4000, now - 10, now + 300);
	snprintf(old, sizeof(old), "%s.journal.4", P.state);
	ck_assert_int_eq(sf_write(old, &h, &r[1], 1, 0), 0);
	snprintf(tmp, sizeof(tmp), "%s.tmp", P.state);
	ck_assert_int_eq(write_text(tmp, "half a fi", 0600), 0);
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(mpd_list(&P, NULL, out, sizeof(out)), 1);
	ck_assert_int_eq(mpd_list(&P, "bob", out, sizeof(out)), 0);
	ck_assert_int_eq(access(old, F_OK), -1);
	/* it writes generation 5 on */
	ck_assert_uint_eq(sf_journals(P.state, gens, 8), 1);
	ck_assert_uint_eq(gens[0], 5);
	ck_assert_int_eq(mpd_stop(&P), 0);
	ck_assert_int_eq(access(tmp, F_OK), -1);
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
	tcase_add_test(tc, sigterm_clean_snapshot);
	tcase_add_test(tc, unacked_push_after_restart);
	tcase_add_test(tc, kill9_keeps_answered);
	tcase_add_test(tc, expired_skipped_downtime_added);
	tcase_add_test(tc, names_changed_entry_skipped);
	tcase_add_test(tc, stale_journal_and_leftover_tmp);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(tb, NULL, teardown);
	tcase_set_timeout(tb, 30);
	tcase_add_loop_test(tb, bad_snapshot_moved_aside, 0,
	    (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tb, journal_torn_tail);
	tcase_add_test(tb, journal_bit_flipped);
	tcase_add_test(tb, journal_older_format);
	suite_add_tcase(s, tb);
	return s;
}
