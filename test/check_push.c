/*
 * check_push.c: pushes through the real mailpushd, mailpush-hook and
 * mailpush-listen on loopback (issue 4, item 6): delivery from the hook,
 * isolation between users, every registration of a user, mailbox
 * filters, retransmission and its limit, send errors, and coalescing with
 * exact counts.
 *
 * A push with a bad MAC or a foreign context is tested against the client
 * library in check_client.c (t_push_bad_mac, t_push_foreign), not here.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "harness.h"

static struct mpd_proc P;

static void
setup(void)
{
	memset(&P, 0, sizeof(P));
	P.pid = -1;
}

static void
teardown(void)
{
	if (P.dir[0] != '\0')
		ck_assert_msg(mpd_finish(&P) == 0,
		    "mailpushd did not exit cleanly (see stderr)");
}

static void
start(const char *extra)
{
	ck_assert_msg(mpd_setup(&P, extra) == 0, "mailpushd did not start "
	    "(log %s)", P.log);
}

static uint32_t
reg_ok(struct tclient *c, const char *ctx)
{
	struct mp_reply rp;

	ck_assert_int_eq(tc_register(c, ctx, strlen(ctx), &rp), 0);
	ck_assert_msg(rp.type == PROTO_REGISTERED, "%s: %s, reason %u",
	    ctx, proto_type_name(rp.type), rp.reason);
	return rp.reg_id;
}

/* Open a raw client and register it. */
static uint32_t
client(struct tclient *c, int v6, const char *user, const char *ctx)
{
	ck_assert_int_eq(tc_open(c, &P, v6, NULL, user), 0);
	return reg_ok(c, ctx);
}

/* Wait for a push for id and ctx (MAC checked); acknowledge it unless
 * no_ack. */
static void
get_push(struct tclient *c, uint32_t id, const char *ctx, int ms,
    struct mp_push *p, int no_ack)
{
	int rc;

	rc = tc_push(c, p, ms);
	ck_assert_msg(rc == 0, "%s/%s: %s", c->user, ctx, rc == -2 ?
	    "a push with a bad MAC" : "no push in time");
	ck_assert_uint_eq(p->reg_id, id);
	ck_assert_int_eq(p->ctx_len, (int)strlen(ctx));
	ck_assert_mem_eq(p->ctx, ctx, strlen(ctx));
	if (!no_ack)
		ck_assert_int_eq(tc_ack(c, p), 0);
}

/* A push with exactly this seq, count and total, acknowledged. */
static void
expect_push(struct tclient *c, uint32_t id, const char *ctx, uint32_t seq,
    uint32_t count, uint32_t total)
{
	struct mp_push p;
	long long before = mpd_stat(&P, "acks") + mpd_stat(&P, "acks_stale");
	int i;

	/* late copies of an earlier push (a retransmission that left before
	 * its acknowledgement arrived, on a busy machine) are skipped, as a
	 * client skips them */
	do
		get_push(c, id, ctx, 3000, &p, 0);
	while (p.seq < seq);
	/* let the daemon take the acknowledgement before the test goes on:
	 * an event that overtakes it is counted in the next push too */
	for (i = 0; i < 100 && mpd_stat(&P, "acks") +
	    mpd_stat(&P, "acks_stale") <= before; i++)
		usleep(10000);
	ck_assert_uint_eq(p.seq, seq);
	ck_assert_uint_eq(p.count, count);
	ck_assert_uint_eq(p.total, total);
}

static void
expect_nothing(struct tclient *c, int ms)
{
	uint8_t buf[PROTO_MAX_DATAGRAM];
	int n = tc_recv(c, buf, sizeof(buf), ms);

	ck_assert_msg(n < 0, "%s got a %d-byte datagram of type %d", c->user,
	    n, n > 0 ? proto_type(buf, (size_t)n) : -1);
}

/* Nothing within ms but late copies of push seq (a retransmission that
 * left before the acknowledgement arrived, on a busy machine). */
static void
expect_no_new_push(struct tclient *c, int ms, uint32_t seq)
{
	uint8_t buf[PROTO_MAX_DATAGRAM];
	static struct mp_push p;
	uint64_t until = now_ms() + (uint64_t)ms;
	const char *why;
	int n;

	while (now_ms() < until) {
		n = tc_recv(c, buf, sizeof(buf), (int)(until - now_ms()));
		if (n < 0)
			return;
		ck_assert_msg(proto_type(buf, (size_t)n) == PROTO_PUSH &&
		    proto_push_open(buf, (size_t)n, c->push_key, &p, &why) ==
		    0 && p.seq == seq, "%s got a %d-byte datagram of type %d",
		    c->user, n, proto_type(buf, (size_t)n));
	}
}

/* Read what is waiting on a non-blocking fd into buf. */
static void
slurp(int fd, char *buf, size_t len)
{
	size_t off = strlen(buf);
	ssize_t n;

	while (off + 1 < len && (n = read(fd, buf + off, len - 1 - off)) > 0)
		off += (size_t)n;
	buf[off] = '\0';
}

/* Core */

/*
 * mailpush-hook, standalone and as a wrapper, to mailpush-listen and a raw
 * client: the counts add up to the messages delivered.
 */
START_TEST(hook_to_listen)
{
	static const char mail[] = "From: a@example.org\nSubject: hi\n\n"
	    "body\n";
	static char out[65536], err[65536];
	struct tclient c;
	struct mp_push p;
	char token[160], server[64];
	uint32_t id, sum = 0, seq = 0;
	uint64_t until;
	size_t off = 0;
	pid_t pid;
	int ofd, efd, rc;
	char *standalone[] = { (char *)BUILDDIR "/mailpush-hook",
	    (char *)"-c", P.conf, (char *)"-u", (char *)"alice", (char *)"-m",
	    (char *)"INBOX", NULL };
	char *wrapper[] = { (char *)BUILDDIR "/mailpush-hook", (char *)"-c",
	    P.conf, (char *)"-u", (char *)"Alice+lists", (char *)"--",
	    (char *)"/bin/cat", NULL };
	char *failing[] = { (char *)BUILDDIR "/mailpush-hook", (char *)"-c",
	    P.conf, (char *)"-u", (char *)"alice", (char *)"--",
	    (char *)"/bin/sh", (char *)"-c", (char *)"cat >/dev/null; exit 67",
	    NULL };

	start(NULL);
	id = client(&c, 0, "alice", "raw");
	snprintf(token, sizeof(token), "%s/alice.token", P.dir);
	ck_assert_int_eq(mpd_write_token(&P, "alice", token), 0);
	snprintf(server, sizeof(server), "127.0.0.1:%d", P.port);
	{
		char *argv[] = { (char *)BUILDDIR "/mailpush-listen",
		    (char *)"-1", (char *)"-t", (char *)"10", (char *)"-s",
		    server, (char *)"-u", (char *)"alice", (char *)"-K", token,
		    NULL };

		pid = spawn_cmd(argv, &ofd, &efd);
	}
	ck_assert_int_gt(pid, 0);
	ck_assert_msg(mpd_stat_wait(&P, "registrations", 2, 5000) == 0,
	    "mailpush-listen did not register");

	/* standalone: silent, exit 0 */
	rc = run_cmd(standalone, out, sizeof(out), err, sizeof(err), 5000);
	ck_assert_msg(rc == 0, "mailpush-hook exited %d: %s", rc, err);
	ck_assert_str_eq(out, "");
	ck_assert_msg(!sanitizer_report(err), "mailpush-hook: %s", err);
	ck_assert_msg(read_until(ofd, out, sizeof(out), &off,
	    "push user=alice seq=1 count=1 new=1 total=1 time=", 5000) == 0,
	    "mailpush-listen printed \"%s\"", out);
	rc = wait_cmd(pid, 3000);
	err[0] = '\0';
	slurp(efd, err, sizeof(err));
	ck_assert_msg(rc == 0, "mailpush-listen -1 exited %d: %s", rc, err);
	ck_assert_msg(!sanitizer_report(err), "mailpush-listen: %s", err);
	close(ofd);
	close(efd);
	get_push(&c, id, "raw", 3000, &p, 0);
	ck_assert_uint_eq(p.seq, 1);
	ck_assert_uint_eq(p.count, 1);
	ck_assert_uint_eq(p.total, 1);
	sum = 1;
	seq = 1;
	/* -1 unregistered on its way out */
	ck_assert_int_eq(mpd_stat_wait(&P, "unregistered", 1, 2000), 0);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);

	/* wrapper: the agent gets stdin untouched; its status is ours */
	rc = run_cmd_input(wrapper, mail, out, sizeof(out), err, sizeof(err),
	    5000);
	ck_assert_msg(rc == 0, "wrapper exited %d: %s", rc, err);
	ck_assert_str_eq(out, mail);
	ck_assert_msg(!sanitizer_report(err), "mailpush-hook: %s", err);
	/* an agent that fails: its status, and no event */
	rc = run_cmd_input(failing, mail, out, sizeof(out), err, sizeof(err),
	    5000);
	ck_assert_int_eq(rc, 67);
	ck_assert_msg(!sanitizer_report(err), "mailpush-hook: %s", err);
	ck_assert_int_eq(mpd_hook(&P, "alice", "INBOX"), 0);

	/* the two delivered messages arrive, coalesced or not */
	until = now_ms() + 5000;
	while (p.total < 3 && now_ms() < until) {
		get_push(&c, id, "raw", 3000, &p, 0);
		ck_assert_uint_eq(p.seq, seq + 1);
		seq = p.seq;
		/* count is what is not acknowledged yet: an event that
		 * overtakes our acknowledgement (a busy machine) is counted
		 * again; the totals are what add up */
		ck_assert_uint_gt(p.total, sum);
		ck_assert_uint_ge(p.count, p.total - sum);
		sum = p.total;
	}
	ck_assert_uint_eq(sum, 3);
	expect_nothing(&c, 700);	/* beyond min_push_interval */
	ck_assert_int_eq(mpd_stat(&P, "events_in"), 3);
	tc_close(&c);
}
END_TEST

/* alice's events never reach bob, and the other way round. */
START_TEST(users_isolated)
{
	struct tclient a1, a2, b;
	uint32_t ida1, ida2, idb;

	start(NULL);
	ida1 = client(&a1, 0, "alice", "a1");
	ida2 = client(&a2, 1, "alice", "a2");
	idb = client(&b, 0, "bob", "b");
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 2), 0);
	expect_push(&a1, ida1, "a1", 1, 2, 2);
	expect_push(&a2, ida2, "a2", 1, 2, 2);
	expect_nothing(&b, 300);
	/* names are normalised: Bob+lists is bob */
	ck_assert_int_eq(mpd_event(&P, "Bob+lists", "INBOX", 1), 0);
	expect_push(&b, idb, "b", 1, 1, 1);	/* MAC under bob's token */
	ck_assert_int_eq(mpd_event(&P, "carol", "INBOX", 1), 0);
	expect_nothing(&a1, 200);
	expect_nothing(&a2, 1);
	expect_nothing(&b, 1);
	ck_assert_int_eq(mpd_stat(&P, "events_no_registration"), 1);
	ck_assert_int_eq(mpd_stat(&P, "pushes"), 3);
	ck_assert_int_eq(mpd_stat_wait(&P, "acks", 3, 2000), 0);
	tc_close(&a1);
	tc_close(&a2);
	tc_close(&b);
}
END_TEST

/* All 8 registrations of one user get the push, each its own. */
START_TEST(all_eight)
{
	struct tclient c[8];
	uint32_t id[8];
	char ctx[8][8];
	int i;

	start(NULL);
	for (i = 0; i < 8; i++) {
		snprintf(ctx[i], sizeof(ctx[i]), "dev%d", i);
		id[i] = client(&c[i], i % 2, "alice", ctx[i]);
	}
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 3), 0);
	/* all eight acknowledged first, then the counters: asking
	 * mailpushctl between them could outlast the retransmission
	 * interval on a slow (sanitizer) build */
	for (i = 0; i < 8; i++) {
		struct mp_push p;

		get_push(&c[i], id[i], ctx[i], 3000, &p, 0);
		ck_assert_uint_eq(p.seq, 1);
		ck_assert_uint_eq(p.count, 3);
		ck_assert_uint_eq(p.total, 3);
	}
	for (i = 0; i < 8; i++)
		expect_nothing(&c[i], i == 0 ? 200 : 1);
	ck_assert_int_eq(mpd_stat(&P, "pushes"), 8);
	ck_assert_int_eq(mpd_stat_wait(&P, "acks", 8, 2000), 0);
	ck_assert_int_eq(mpd_stat(&P, "retransmits"), 0);
	for (i = 0; i < 8; i++)
		tc_close(&c[i]);
}
END_TEST

/* A registration for some mailboxes gets pushes for those only. */
START_TEST(mailbox_filter)
{
	static const char *const inbox[] = { "INBOX" };
	static const char *const multi[] = { "inbox", "Work" };
	struct tclient ci, cm, ca;
	struct mp_reply rp;
	uint32_t idi, idm, ida;

	start("[limits]\nmin_push_interval = 0\n");
	ck_assert_int_eq(tc_open(&ci, &P, 0, NULL, "alice"), 0);
	ck_assert_int_eq(tc_register_mailboxes(&ci, "i", 1, inbox, 1, &rp),
	    0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	idi = rp.reg_id;
	ck_assert_int_eq(tc_open(&cm, &P, 0, NULL, "alice"), 0);
	ck_assert_int_eq(tc_register_mailboxes(&cm, "m", 1, multi, 2, &rp),
	    0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	idm = rp.reg_id;
	ida = client(&ca, 0, "alice", "a");

	ck_assert_int_eq(mpd_event(&P, "alice", "Junk", 1), 0);
	expect_push(&ca, ida, "a", 1, 1, 1);
	expect_nothing(&ci, 200);
	expect_nothing(&cm, 1);
	ck_assert_int_eq(mpd_stat(&P, "events_filtered"), 2);
	/* INBOX in any case; the Junk message is not counted.  Each event
	 * waits for the acknowledgements of the last: an event that beats
	 * them gets a push counting the unacknowledged message too. */
	ck_assert_int_eq(mpd_stat_wait(&P, "acks", 1, 2000), 0);
	ck_assert_int_eq(mpd_event(&P, "alice", "inbox", 1), 0);
	expect_push(&ci, idi, "i", 1, 1, 1);
	expect_push(&cm, idm, "m", 1, 1, 1);
	expect_push(&ca, ida, "a", 2, 1, 2);
	ck_assert_int_eq(mpd_stat_wait(&P, "acks", 4, 2000), 0);
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	expect_push(&ci, idi, "i", 2, 1, 2);
	expect_push(&cm, idm, "m", 2, 1, 2);
	expect_push(&ca, ida, "a", 3, 1, 3);
	/* other names exactly */
	ck_assert_int_eq(mpd_stat_wait(&P, "acks", 7, 2000), 0);
	ck_assert_int_eq(mpd_event(&P, "alice", "work", 1), 0);
	expect_push(&ca, ida, "a", 4, 1, 4);
	ck_assert_int_eq(mpd_stat_wait(&P, "acks", 8, 2000), 0);
	ck_assert_int_eq(mpd_event(&P, "alice", "Work", 1), 0);
	expect_push(&cm, idm, "m", 3, 1, 3);
	expect_push(&ca, ida, "a", 5, 1, 5);
	expect_nothing(&ci, 200);
	expect_nothing(&cm, 1);
	ck_assert_int_eq(mpd_stat(&P, "events_filtered"), 2 + 1 + 1 + 1);
	tc_close(&ci);
	tc_close(&cm);
	tc_close(&ca);
}
END_TEST

/* Retry */

/*
 * No acknowledgement: the same push push_retries more times, the
 * interval doubling, then nothing; the registration is unreachable until
 * it is refreshed, and the refresh brings the unacknowledged count back.
 */
START_TEST(withheld_ack)
{
	struct tclient c;
	struct mp_reply rp;
	static struct mp_request rq;
	uint8_t fbuf[PROTO_MAX_DATAGRAM], buf[PROTO_MAX_DATAGRAM];
	static struct mp_push first, cp;
	const char *why;
	uint64_t t[4], start_ms;
	char out[4096];
	uint32_t id;
	int n, len = 0, copies = 0;

	/* 250 ms: an acknowledgement is surely in before the next copy,
	 * even on a busy machine */
	start("[limits]\npush_retries = 2\npush_retry_interval = 250ms\n"
	    "min_push_interval = 0\n");
	id = client(&c, 0, "alice", "ctx");
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	start_ms = now_ms();
	while (now_ms() < start_ms + 1500) {
		n = tc_recv(&c, buf, sizeof(buf), (int)(start_ms + 1500 -
		    now_ms()));
		if (n < 0)
			break;
		ck_assert_int_eq(proto_type(buf, (size_t)n), PROTO_PUSH);
		ck_assert_int_lt(copies, 3);
		t[copies] = now_ms();
		ck_assert_int_eq(proto_push_open(buf, (size_t)n, c.push_key,
		    &cp, &why), 0);
		if (copies++ == 0) {
			first = cp;
			len = n;
		} else {
			/* the same push, sealed again under a fresh nonce */
			ck_assert_int_eq(n, len);
			ck_assert_mem_ne(buf + 4, fbuf + 4, PROTO_PUSH_NONCE_LEN);
			ck_assert_uint_eq(cp.seq, first.seq);
			ck_assert_uint_eq(cp.count, first.count);
			ck_assert_uint_eq(cp.total, first.total);
			ck_assert_uint_eq(cp.epoch, first.epoch);
		}
		memcpy(fbuf, buf, (size_t)n);
	}
	ck_assert_int_eq(copies, 3);
	/* 250 ms, then 500 ms.  Receive times are late by the machine's
	 * load (under valgrind the first copy was read 60 ms late), so the
	 * bounds are taken from the event, which precedes the first send:
	 * no copy before its time, and the second gap the longer one
	 * unless the first copy was read late. */
	ck_assert_msg(t[1] - start_ms >= 245 && t[2] - start_ms >= 745 &&
	    t[2] - t[0] >= 500, "copies %llu, %llu and %llu ms after the "
	    "event", (unsigned long long)(t[0] - start_ms),
	    (unsigned long long)(t[1] - start_ms),
	    (unsigned long long)(t[2] - start_ms));
	ck_assert_int_eq(mpd_stat_wait(&P, "pushes_given_up", 1, 2000), 0);
	ck_assert_int_eq(mpd_stat(&P, "pushes"), 1);
	ck_assert_int_eq(mpd_stat(&P, "retransmits"), 2);
	ck_assert_int_eq(mpd_stat(&P, "registrations_unreachable"), 1);
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "unreachable") != NULL, "%s", out);

	/* a refresh: reachable again, and told about the message */
	tc_req(&c, &rq, PROTO_REFRESH, NULL, 0);
	ck_assert_int_eq(tc_call(&c, &rq, &rp, 0), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_uint_eq(rp.seq, 1);
	expect_push(&c, id, "ctx", 2, 1, 1);
	ck_assert_int_eq(mpd_stat_wait(&P, "acks", 1, 2000), 0);
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, " active ") != NULL, "%s", out);
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	expect_push(&c, id, "ctx", 3, 1, 2);
	/* a copy of seq 3 may have left before its acknowledgement was read
	 * (a busy machine, a sanitizer build); nothing else may come */
	expect_no_new_push(&c, 300, 3);
	ck_assert_int_ge(mpd_stat(&P, "retransmits"), 2);
	tc_close(&c);
}
END_TEST

/* An event while unreachable tries again, with the count it owes. */
START_TEST(unreachable_event)
{
	struct tclient c;
	struct mp_push p;
	uint32_t id;
	int i;

	start("[limits]\npush_retries = 1\npush_retry_interval = 50ms\n"
	    "min_push_interval = 0\n");
	id = client(&c, 0, "alice", "ctx");
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	for (i = 0; i < 2; i++) {
		get_push(&c, id, "ctx", 2000, &p, 1);
		ck_assert_uint_eq(p.seq, 1);
	}
	ck_assert_int_eq(mpd_stat_wait(&P, "pushes_given_up", 1, 2000), 0);
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 2), 0);
	expect_push(&c, id, "ctx", 2, 3, 3);
	expect_no_new_push(&c, 300, 2);
	ck_assert_int_eq(mpd_stat(&P, "registrations_unreachable"), 0);
	tc_close(&c);
}
END_TEST

/*
 * Mail that arrives inside min_push_interval while a push is out, when
 * that push then runs out of retries before the interval is over: the
 * registration is marked unreachable, but the waiting mail still goes out
 * at the end of the interval (it was once left until the next event or
 * refresh, minutes later).
 */
START_TEST(given_up_pending)
{
	struct tclient c;
	struct mp_push p;
	uint64_t t0;
	uint32_t id;

	start("[limits]\npush_retries = 1\npush_retry_interval = 100ms\n"
	    "min_push_interval = 2s\n");
	id = client(&c, 0, "alice", "ctx");
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	get_push(&c, id, "ctx", 2000, &p, 1);	/* never acknowledged */
	t0 = now_ms();
	ck_assert_uint_eq(p.seq, 1);
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	get_push(&c, id, "ctx", 2000, &p, 1);	/* the one retransmission */
	ck_assert_uint_eq(p.seq, 1);
	ck_assert_int_eq(mpd_stat_wait(&P, "pushes_given_up", 1, 2000), 0);
	/* the second message, at the end of the 2 s window */
	get_push(&c, id, "ctx", 4000, &p, 0);
	ck_assert_uint_ge(now_ms() - t0, 1500);
	ck_assert_uint_eq(p.seq, 2);
	ck_assert_uint_eq(p.count, 2);		/* nothing acknowledged */
	ck_assert_uint_eq(p.total, 2);
	ck_assert_int_eq(mpd_stat_wait(&P, "acks", 1, 2000), 0);
	ck_assert_int_eq(mpd_stat(&P, "pushes"), 2);
	tc_close(&c);
}
END_TEST

/* Acknowledging a retransmission stops it. */
START_TEST(ack_stops_retransmission)
{
	struct tclient c;
	struct mp_push p;
	uint32_t id;

	start("[limits]\npush_retries = 5\npush_retry_interval = 100ms\n");
	id = client(&c, 0, "alice", "ctx");
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	get_push(&c, id, "ctx", 2000, &p, 1);
	get_push(&c, id, "ctx", 2000, &p, 0);	/* the copy, acked */
	ck_assert_uint_eq(p.seq, 1);
	expect_nothing(&c, 500);
	ck_assert_int_eq(mpd_stat(&P, "retransmits"), 1);
	ck_assert_int_eq(mpd_stat(&P, "acks"), 1);
	/* a second ack of it is stale, and changes nothing */
	ck_assert_int_eq(tc_ack(&c, &p), 0);
	ck_assert_int_eq(mpd_stat_wait(&P, "acks_stale", 1, 2000), 0);
	ck_assert_int_eq(mpd_stat(&P, "registrations_active"), 1);
	tc_close(&c);
}
END_TEST

/*
 * A registration whose client has gone (ICMP port unreachable): the error
 * is counted against it, and the others, before and after it in the same
 * batch, get their pushes.
 */
START_TEST(send_error)
{
	struct tclient c[6];
	uint32_t id[6];
	char ctx[6][8], out[8192], *line, want[32];
	int i, k;

	/* retransmissions only after 2 s: the failures are send errors */
	start("[limits]\nmin_push_interval = 0\n");
	/* v4 and v6; the gone ones (1 and 4) sit between live ones */
	for (i = 0; i < 6; i++) {
		snprintf(ctx[i], sizeof(ctx[i]), "c%d", i);
		id[i] = client(&c[i], i >= 3, "alice", ctx[i]);
	}
	tc_close(&c[1]);
	tc_close(&c[4]);
	for (k = 1; k <= 2; k++) {
		ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
		for (i = 0; i < 6; i++)
			if (i != 1 && i != 4)
				expect_push(&c[i], id[i], ctx[i], (uint32_t)k,
				    1, (uint32_t)k);
	}
	ck_assert_msg(mpd_stat_wait(&P, "send_errors", 2, 2000) == 0,
	    "send_errors %lld", mpd_stat(&P, "send_errors"));
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 6);
	for (line = strtok(out, "\n"); line != NULL; line = strtok(NULL,
	    "\n")) {
		int gone = 0;

		for (i = 0; i < 6; i++) {
			snprintf(want, sizeof(want), "%08x", id[i]);
			if (strstr(line, want) != NULL)
				gone = i == 1 || i == 4;
		}
		if (gone)
			ck_assert_msg(strstr(line, "failures 0") == NULL,
			    "no failure counted: %s", line);
		else
			ck_assert_msg(strstr(line, "failures 0") != NULL,
			    "failure counted against a live one: %s", line);
	}
	ck_assert_int_eq(mpd_stat_wait(&P, "acks", 8, 2000), 0);
	for (i = 0; i < 6; i++)
		if (i != 1 && i != 4)
			tc_close(&c[i]);
}
END_TEST

/*
 * An ICMP error is also reported by the kernel as the failure of the next
 * send on the socket, whatever its destination.  Here that next send is
 * the first of a batch: 64 datagrams (a full read batch) end with a
 * REFRESH whose answer goes to a closed port, and an event for alice is
 * read right after them.  alice's push must not pay for it.
 */
START_TEST(send_error_pending)
{
	struct tclient a, g, f;
	struct mp_reply rp;
	static struct mp_request rq;
	uint8_t buf[PROTO_MAX_DATAGRAM];
	uint32_t ida, idg;
	int i, n;

	/* a lost push would come again only after 10 s */
	start("[limits]\nmin_push_interval = 0\npush_retry_interval = 10s\n");
	ida = client(&a, 0, "alice", "a");
	idg = client(&g, 0, "bob", "g");
	ck_assert_uint_ne(idg, 0);
	ck_assert_int_eq(tc_open(&f, &P, 0, NULL, "carol"), 0);
	tc_req(&g, &rq, PROTO_REFRESH, NULL, 0);
	memcpy(rq.cookie, g.cookie, sizeof(rq.cookie));
	n = tc_encode(&g, &rq, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);

	ck_assert_int_eq(mpd_pause(&P), 0);
	for (i = 0; i < 63; i++)
		ck_assert_int_eq(tc_send(&f, (const uint8_t *)"junk", 4), 0);
	ck_assert_int_eq(tc_send(&g, buf, (size_t)n), 0);
	tc_close(&g);			/* its answer: port unreachable */
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	ck_assert_int_eq(mpd_signal(&P, SIGCONT), 0);

	expect_push(&a, ida, "a", 1, 1, 1);
	ck_assert_int_eq(mpd_stat_wait(&P, "send_errors", 1, 2000), 0);
	ck_assert_int_eq(mpd_stat(&P, "retransmits"), 0);
	ck_assert_int_eq(mpd_list(&P, "alice", (char *)buf, sizeof(buf)), 1);
	ck_assert_msg(strstr((char *)buf, "failures 0") != NULL, "%s", buf);
	ck_assert_int_eq(mpd_stat(&P, "datagrams_malformed"), 63);
	ck_assert_int_eq(mpd_stat(&P, "refreshed"), 1);
	/* and the daemon goes on answering */
	ck_assert_int_eq(tc_register(&f, "f", 1, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	tc_close(&a);
	tc_close(&f);
}
END_TEST

/* Coalesce */

/* 1,000 events inside the window: pushes whose counts sum to 1,000. */
START_TEST(burst_1000)
{
	struct tclient c;
	struct mp_push p;
	uint32_t id, sum = 0, seq = 0, pushes = 0;
	uint64_t until, first = 0, last = 0;
	int i;

	start("[limits]\nmin_push_interval = 300ms\n");
	id = client(&c, 0, "alice", "ctx");
	for (i = 0; i < 1000; i++)
		ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	until = now_ms() + 10000;
	while (sum < 1000 && now_ms() < until) {
		get_push(&c, id, "ctx", 3000, &p, 0);
		ck_assert_uint_eq(p.seq, seq + 1);
		seq = p.seq;
		/* as above: an acknowledgement overtaken by an event
		 * leaves that event in the next count too */
		ck_assert_uint_gt(p.total, sum);
		ck_assert_uint_ge(p.count, p.total - sum);
		sum = p.total;
		if (pushes++ == 0)
			first = now_ms();
		last = now_ms();
	}
	ck_assert_uint_eq(sum, 1000);
	/* the daemon sends them 300 ms apart; one receive time can be late
	 * (valgrind) and bring the next one closer, but on average they are
	 * apart, where without coalescing they would be ~0 apart */
	if (pushes > 1)
		ck_assert_msg((last - first) / (pushes - 1) >= 150, "%u pushes "
		    "%llu ms apart on average", pushes, (unsigned long long)
		    ((last - first) / (pushes - 1)));
	ck_assert_uint_lt(pushes, 20);
	expect_nothing(&c, 400);
	ck_assert_int_eq(mpd_stat(&P, "events_in"), 1000);
	ck_assert_int_eq(mpd_stat(&P, "pushes"), pushes);
	ck_assert_int_eq(mpd_stat(&P, "retransmits"), 0);
	tc_close(&c);
}
END_TEST

/*
 * Events while a push is unacknowledged are coalesced for
 * min_push_interval, then go out in a new push that counts everything
 * since the last acknowledgement: a lost acknowledgement does not hold new
 * mail back until the retransmission.
 */
START_TEST(coalesce_unacked)
{
	struct tclient c;
	struct mp_push p;
	uint64_t t0;
	uint32_t id;
	int i;

	start("[limits]\nmin_push_interval = 300ms\n"
	    "push_retry_interval = 5s\n");
	id = client(&c, 0, "alice", "ctx");
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	get_push(&c, id, "ctx", 2000, &p, 1);	/* not acknowledged */
	t0 = now_ms();
	ck_assert_uint_eq(p.seq, 1);
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 2), 0);
	expect_nothing(&c, 150);		/* inside the window */
	get_push(&c, id, "ctx", 2000, &p, 0);
	ck_assert_uint_lt(now_ms() - t0, 2000);	/* not the 5 s retry */
	ck_assert_uint_eq(p.seq, 2);
	ck_assert_uint_eq(p.count, 11);		/* nothing acknowledged yet */
	ck_assert_uint_eq(p.total, 11);
	usleep(350000);				/* a quiet interval */
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 7), 0);
	expect_push(&c, id, "ctx", 3, 7, 18);
	ck_assert_int_eq(mpd_stat(&P, "pushes"), 3);
	ck_assert_int_eq(mpd_stat(&P, "retransmits"), 0);
	tc_close(&c);
}
END_TEST

Suite *make_push_suite(void);

Suite *
make_push_suite(void)
{
	Suite *s = suite_create("push");
	TCase *tc;

	tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, hook_to_listen);
	tcase_add_test(tc, users_isolated);
	tcase_add_test(tc, all_eight);
	tcase_add_test(tc, mailbox_filter);
	suite_add_tcase(s, tc);

	tc = tcase_create("retry");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, withheld_ack);
	tcase_add_test(tc, unreachable_event);
	tcase_add_test(tc, given_up_pending);
	tcase_add_test(tc, ack_stops_retransmission);
	tcase_add_test(tc, send_error);
	tcase_add_test(tc, send_error_pending);
	suite_add_tcase(s, tc);

	tc = tcase_create("coalesce");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, burst_1000);
	tcase_add_test(tc, coalesce_unacked);
	suite_add_tcase(s, tc);
	return s;
}
