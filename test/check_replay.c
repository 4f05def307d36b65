/*
 * check_replay.c: protocol v2 behaviour through the real mailpushd on
 * loopback (issue 13): no replayed request of any type has an effect,
 * before or after UNREGISTER, from the same or another address, and no
 * answer is larger than what it answers; KEEPALIVE and KICK; owed pushes
 * at once on a REFRESH, a KICK and a takeover; two devices behind one
 * address; a device that moves leaves nothing behind; kill -9 right after
 * a push and a restart: mailpush-listen reports the next push; -v logs
 * dropped datagrams, rate-limited.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <sodium.h>

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

/* A request as the client sends it (fresh timestamp, cookie, token). */
static int
make_req(struct tclient *c, uint8_t type, const char *ctx, uint32_t seq,
    uint64_t epoch, uint8_t *buf, size_t len)
{
	static struct mp_request rq;
	int n;

	tc_req(c, &rq, type, ctx, ctx ? strlen(ctx) : 0);
	rq.seq = seq;
	rq.epoch = epoch;
	n = tc_encode(c, &rq, buf, len);
	ck_assert_int_gt(n, 0);
	return n;
}

/* The first reply to a datagram just sent, of this type; its length. */
static int
reply_of(struct tclient *c, int type, struct mp_reply *rp, int ms)
{
	uint8_t buf[PROTO_MAX_DATAGRAM];
	const char *why;
	int n;

	n = tc_recv(c, buf, sizeof(buf), ms);
	ck_assert_msg(n > 0, "no %s", proto_type_name((unsigned)type));
	ck_assert_msg(proto_type(buf, (size_t)n) == type, "%s instead of %s",
	    proto_type_name(buf[3]), proto_type_name((unsigned)type));
	ck_assert_int_eq(proto_reply_decode(buf, (size_t)n, rp, &why), 0);
	return n;
}

/* The counters that any effect of a request would move. */
static const char *const watched[] = { "registrations", "registered",
    "replaced", "refreshed", "unregistered", "acks", "pushes",
    "retransmits", "probes", "owed_pushes_sent" };
#define NWATCH	(sizeof(watched) / sizeof(watched[0]))

static void
snap(long long v[NWATCH])
{
	size_t i;

	for (i = 0; i < NWATCH; i++)
		v[i] = mpd_stat(&P, watched[i]);
}

static void
same(const long long a[NWATCH], const char *what)
{
	long long b[NWATCH];
	size_t i;

	snap(b);
	for (i = 0; i < NWATCH; i++)
		ck_assert_msg(a[i] == b[i], "%s: %s went from %lld to %lld",
		    what, watched[i], a[i], b[i]);
}

/*
 * Send each captured datagram from c, and count what comes back: every
 * answer must be a REFUSED REPLAY or a COOKIE (or nothing for a PUSH_ACK),
 * no larger than the datagram, and never a PUSH.
 */
static void
replay_all(struct tclient *c, uint8_t (*dg)[PROTO_MAX_DATAGRAM],
    const int *len, int n, const char *what)
{
	uint8_t buf[PROTO_MAX_DATAGRAM];
	struct mp_reply rp;
	const char *why;
	int i, got;

	for (i = 0; i < n; i++) {
		ck_assert_int_eq(tc_send(c, dg[i], (size_t)len[i]), 0);
		while ((got = tc_recv(c, buf, sizeof(buf), 200)) > 0) {
			ck_assert_msg(got <= len[i], "%s: %d bytes in answer "
			    "to %d", what, got, len[i]);
			ck_assert_msg(proto_type(buf, (size_t)got) !=
			    PROTO_PUSH, "%s: a PUSH after replaying %s", what,
			    proto_type_name(dg[i][3]));
			ck_assert_int_eq(proto_reply_decode(buf, (size_t)got,
			    &rp, &why), 0);
			ck_assert_msg(rp.type == PROTO_COOKIE ||
			    (rp.type == PROTO_REFUSED &&
			    rp.reason == REASON_REPLAY), "%s: %s (reason %u) "
			    "after replaying %s", what,
			    proto_type_name(rp.type), rp.reason,
			    proto_type_name(dg[i][3]));
		}
	}
}

/*
 * Issue 13 item 4: REGISTER, REFRESH, PROBE, PUSH_ACK and UNREGISTER,
 * each captured as it went, replayed from the same address and from
 * another: no state changes and no push, while registered and after
 * UNREGISTER.
 */
START_TEST(replay_every_request_type)
{
	struct tclient a, b;
	struct mp_reply rp;
	struct mp_push p;
	uint8_t dg[5][PROTO_MAX_DATAGRAM];
	int len[5], n = 0;
	long long v[NWATCH];
	char out[4096], want[64];
	uint32_t id;

	start("[limits]\nmin_push_interval = 0\npush_retry_interval = 10s\n"
	    "keepalive_min = 1s\n");
	ck_assert_int_eq(tc_open(&a, &P, 0, NULL, "alice"), 0);
	ck_assert_int_eq(tc_open(&b, &P, 0, "127.0.0.2", "alice"), 0);
	/* REGISTER with a cookie, as it registered */
	len[n] = make_req(&a, PROTO_REGISTER, "ctx", 0, 0, dg[n],
	    sizeof(dg[n]));
	ck_assert_int_eq(tc_send(&a, dg[n], (size_t)len[n]), 0);
	reply_of(&a, PROTO_COOKIE, &rp, 2000);
	memcpy(a.cookie, rp.cookie, sizeof(a.cookie));
	len[n] = make_req(&a, PROTO_REGISTER, "ctx", 0, 0, dg[n],
	    sizeof(dg[n]));
	ck_assert_int_eq(tc_send(&a, dg[n], (size_t)len[n]), 0);
	reply_of(&a, PROTO_REGISTERED, &rp, 2000);
	id = rp.reg_id;
	n++;
	/* a push and its PUSH_ACK */
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	ck_assert_int_eq(tc_push(&a, &p, 2000), 0);
	len[n] = make_req(&a, PROTO_PUSH_ACK, NULL, p.seq, p.epoch, dg[n],
	    sizeof(dg[n]));
	ck_assert_int_eq(tc_send(&a, dg[n], (size_t)len[n]), 0);
	ck_assert_int_eq(mpd_stat_wait(&P, "acks", 1, 2000), 0);
	n++;
	/* REFRESH */
	len[n] = make_req(&a, PROTO_REFRESH, "ctx", 0, 0, dg[n],
	    sizeof(dg[n]));
	ck_assert_int_eq(tc_send(&a, dg[n], (size_t)len[n]), 0);
	reply_of(&a, PROTO_REGISTERED, &rp, 2000);
	n++;
	/* PROBE for 1 s, and its echo */
	len[n] = make_req(&a, PROTO_PROBE, "ctx", 1, 0, dg[n], sizeof(dg[n]));
	ck_assert_int_eq(tc_send(&a, dg[n], (size_t)len[n]), 0);
	reply_of(&a, PROTO_PROBE_ECHO, &rp, 3000);
	n++;

	snprintf(want, sizeof(want), "127.0.0.1:");
	snap(v);
	replay_all(&a, dg, len, n, "same address");
	replay_all(&b, dg, len, n, "another address");
	same(v, "replays while registered");
	ck_assert_int_ge(mpd_stat(&P, "replays"), 3);
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, want) != NULL, "it moved: %s", out);
	/* no PROBE_ECHO came of the replayed PROBE */
	ck_assert_int_eq(tc_recv(&a, (uint8_t *)out, sizeof(out), 1200), -1);

	/* UNREGISTER, then every one of them again */
	len[n] = make_req(&a, PROTO_UNREGISTER, NULL, 0, 0, dg[n],
	    sizeof(dg[n]));
	ck_assert_int_eq(tc_send(&a, dg[n], (size_t)len[n]), 0);
	reply_of(&a, PROTO_REGISTERED, &rp, 2000);
	ck_assert_uint_eq(rp.lifetime, 0);
	n++;
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	ck_assert_int_eq(mpd_stat(&P, "tombstones"), 1);
	snap(v);
	replay_all(&a, dg, len, n, "same address, unregistered");
	replay_all(&b, dg, len, n, "another address, unregistered");
	same(v, "replays after UNREGISTER");
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	ck_assert_int_eq(tc_recv(&a, (uint8_t *)out, sizeof(out), 300), -1);
	ck_assert_int_eq(tc_recv(&b, (uint8_t *)out, sizeof(out), 1), -1);
	/* the device itself, with a fresh request, registers again */
	(void)id;
	ck_assert_int_eq(tc_register(&a, "ctx", 3, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	tc_close(&a);
	tc_close(&b);
}
END_TEST

/* A REGISTER refused at the limit and replayed once room is made. */
START_TEST(replay_refused_register)
{
	struct tclient a1, a2;
	struct mp_reply rp;
	uint8_t dg[1][PROTO_MAX_DATAGRAM];
	int len[1];

	start("[limits]\nmax_registrations_per_client = 1\n");
	ck_assert_int_eq(tc_open(&a1, &P, 0, NULL, "alice"), 0);
	ck_assert_int_eq(tc_open(&a2, &P, 0, NULL, "alice"), 0);
	ck_assert_int_eq(tc_register(&a1, "one", 3, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_int_eq(tc_register(&a2, "two", 3, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REFUSED);
	ck_assert_int_eq(rp.reason, REASON_TOO_MANY);
	len[0] = make_req(&a2, PROTO_REGISTER, "two", 0, 0, dg[0],
	    sizeof(dg[0]));
	ck_assert_int_eq(tc_send(&a2, dg[0], (size_t)len[0]), 0);
	reply_of(&a2, PROTO_REFUSED, &rp, 2000);
	/* room again: the captured REGISTER still does nothing */
	ck_assert_int_eq(tc_register(&a1, "one", 3, &rp), 0);
	{
		static struct mp_request rq;

		tc_req(&a1, &rq, PROTO_UNREGISTER, NULL, 0);
		ck_assert_int_eq(tc_call(&a1, &rq, &rp, 0), 0);
		ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	}
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	replay_all(&a2, dg, len, 1, "refused REGISTER");
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	tc_close(&a1);
	tc_close(&a2);
}
END_TEST

/*
 * A REGISTER captured before an UNREGISTER, replayed from the device's
 * own address after a restart that lost the tombstone (kill -9, then a
 * clean stop): tombstones are not saved, but the replay carries a cookie
 * of the daemon before (the cookie secret is new at every start), so it
 * is answered with a COOKIE and changes nothing, within the timestamp
 * window as after it.
 */
START_TEST(replay_after_restart)
{
	struct tclient a;
	struct mp_reply rp;
	uint8_t dg[1][PROTO_MAX_DATAGRAM], un[PROTO_MAX_DATAGRAM];
	int len[1], n, round, status;
	long long v[NWATCH];

	start("[mailpushd]\nstate_save_interval = 1s\n");
	ck_assert_int_eq(tc_open(&a, &P, 0, NULL, "alice"), 0);
	len[0] = make_req(&a, PROTO_REGISTER, "ctx", 0, 0, dg[0],
	    sizeof(dg[0]));
	ck_assert_int_eq(tc_send(&a, dg[0], (size_t)len[0]), 0);
	reply_of(&a, PROTO_COOKIE, &rp, 2000);
	memcpy(a.cookie, rp.cookie, sizeof(a.cookie));
	len[0] = make_req(&a, PROTO_REGISTER, "ctx", 0, 0, dg[0],
	    sizeof(dg[0]));
	ck_assert_int_eq(tc_send(&a, dg[0], (size_t)len[0]), 0);
	reply_of(&a, PROTO_REGISTERED, &rp, 2000);
	n = make_req(&a, PROTO_UNREGISTER, NULL, 0, 0, un, sizeof(un));
	ck_assert_int_eq(tc_send(&a, un, (size_t)n), 0);
	reply_of(&a, PROTO_REGISTERED, &rp, 2000);
	ck_assert_uint_eq(rp.lifetime, 0);
	ck_assert_int_eq(mpd_stat(&P, "tombstones"), 1);
	/* the same replay first succeeds nowhere while the daemon runs */
	replay_all(&a, dg, len, 1, "before the restart");
	usleep(1300 * 1000);	/* a state save with the removal in it */
	for (round = 0; round < 2; round++) {
		if (round == 0) {
			ck_assert_int_eq(kill(P.pid, SIGKILL), 0);
			ck_assert_int_eq(waitpid(P.pid, &status, 0), P.pid);
			P.pid = -1;
		} else
			ck_assert_int_eq(mpd_stop(&P), 0);
		ck_assert_int_eq(mpd_start(&P), 0);
		ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
		ck_assert_int_eq(mpd_stat(&P, "tombstones"), 0);
		snap(v);
		replay_all(&a, dg, len, 1, round == 0 ? "after kill -9" :
		    "after a clean restart");
		ck_assert_int_eq(mpd_stat(&P, "cookies_sent"), 1);
		same(v, "a REGISTER replayed after a restart");
		ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	}
	/* the device itself, with a fresh request, registers again */
	ck_assert_int_eq(tc_register(&a, "ctx", 3, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	tc_close(&a);
}
END_TEST

/*
 * KEEPALIVE: nothing from the registration's address, an 8-byte KICK
 * from another (no move), nothing for an unknown reg_id; a KICK too when
 * a push is owed, and the REFRESH it asks for brings the push at once.
 */
START_TEST(keepalive_and_kick)
{
	struct tclient a, b;
	struct mp_reply rp;
	struct mp_push p;
	static struct mp_request rq;
	uint8_t buf[PROTO_MAX_DATAGRAM];
	char out[4096];
	uint32_t id;
	uint64_t t;
	int n;

	start("[limits]\nmin_push_interval = 0\npush_retry_interval = 30s\n");
	ck_assert_int_eq(tc_open(&a, &P, 0, NULL, "alice"), 0);
	ck_assert_int_eq(tc_open(&b, &P, 0, "127.0.0.2", "alice"), 0);
	ck_assert_int_eq(tc_register(&a, "ctx", 3, &rp), 0);
	id = rp.reg_id;
	ck_assert_uint_eq(rp.keepalive_min, 15);
	ck_assert_uint_eq(rp.keepalive_max, 300);
	ck_assert_int_eq(tc_keepalive(&a, id), 0);
	ck_assert_int_eq(tc_recv(&a, buf, sizeof(buf), 200), -1);
	ck_assert_int_eq(tc_keepalive(&a, id ^ 1), 0);
	ck_assert_int_eq(tc_recv(&a, buf, sizeof(buf), 200), -1);
	ck_assert_int_eq(mpd_stat(&P, "keepalives"), 1);
	ck_assert_int_eq(mpd_stat(&P, "keepalives_unknown"), 1);
	/* from elsewhere (a NAT's new mapping): KICK, and it stays put */
	ck_assert_int_eq(tc_keepalive(&b, id), 0);
	n = reply_of(&b, PROTO_KICK, &rp, 1000);
	ck_assert_int_eq(n, PROTO_KICK_LEN);
	ck_assert_uint_eq(rp.reg_id, id);
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "127.0.0.1:") != NULL, "%s", out);

	/* a push the client never sees (not acknowledged) */
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 2), 0);
	ck_assert_int_eq(tc_push(&a, &p, 2000), 0);
	usleep(1100 * 1000);		/* owed after a second */
	ck_assert_int_eq(tc_keepalive(&a, id), 0);
	reply_of(&a, PROTO_KICK, &rp, 1000);
	/* the REFRESH it asks for: REGISTERED and the push, at once */
	t = now_ms();
	tc_req(&a, &rq, PROTO_REFRESH, "ctx", 3);
	ck_assert_int_eq(tc_call(&a, &rq, &rp, 0), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_int_eq(tc_push(&a, &p, 1000), 0);
	ck_assert_msg(now_ms() - t < 1000, "owed push after %llu ms",
	    (unsigned long long)(now_ms() - t));
	ck_assert_uint_eq(p.count, 2);
	ck_assert_int_eq(mpd_stat(&P, "owed_pushes_sent"), 1);
	ck_assert_int_eq(tc_ack(&a, &p), 0);
	ck_assert_int_eq(mpd_stat_wait(&P, "acks", 1, 2000), 0);
	/* settled: a keep-alive gets nothing again */
	ck_assert_int_eq(tc_keepalive(&a, id), 0);
	ck_assert_int_eq(tc_recv(&a, buf, sizeof(buf), 300), -1);
	tc_close(&a);
	tc_close(&b);
}
END_TEST

/* Issue 13 item 1: two devices of one user behind one address (one NAT)
 * each have their own registration and both get every push. */
START_TEST(two_devices_one_address)
{
	struct tclient d1, d2;
	struct mp_reply rp;
	struct mp_push p;
	uint8_t dev[PROTO_DEVICE_LEN];
	int i;

	start("[limits]\nmin_push_interval = 0\n");
	ck_assert_int_eq(tc_open(&d1, &P, 0, NULL, "alice"), 0);
	ck_assert_int_eq(tc_open(&d2, &P, 0, NULL, "alice"), 0);
	randombytes_buf(dev, sizeof(dev));
	tc_set_device(&d1, dev);
	dev[0] ^= 1;
	tc_set_device(&d2, dev);
	/* the same context, as two copies of one program would send */
	ck_assert_int_eq(tc_register(&d1, "mailpush-listen", 15, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_int_eq(tc_register(&d2, "mailpush-listen", 15, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 2);
	for (i = 1; i <= 6; i++) {
		ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
		ck_assert_int_eq(tc_push(&d1, &p, 2000), 0);
		ck_assert_uint_eq(p.total, (unsigned)i);
		ck_assert_int_eq(tc_ack(&d1, &p), 0);
		ck_assert_int_eq(tc_push(&d2, &p, 2000), 0);
		ck_assert_uint_eq(p.total, (unsigned)i);
		ck_assert_int_eq(tc_ack(&d2, &p), 0);
		ck_assert_int_eq(mpd_stat_wait(&P, "acks", 2 * i, 2000), 0);
	}
	/* one leaving does not take the other with it */
	{
		static struct mp_request rq;

		tc_req(&d1, &rq, PROTO_UNREGISTER, NULL, 0);
		ck_assert_int_eq(tc_call(&d1, &rq, &rp, 0), 0);
	}
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	ck_assert_int_eq(tc_push(&d2, &p, 2000), 0);
	tc_close(&d1);
	tc_close(&d2);
}
END_TEST

/*
 * A device that restarts behind another address takes its registration
 * over (nothing left behind), and gets what it was owed there at once.
 */
START_TEST(device_moves)
{
	struct tclient here, there;
	struct mp_reply rp;
	struct mp_push p;
	char out[4096];
	uint32_t id;
	uint64_t t;

	start("[limits]\nmin_push_interval = 0\npush_retry_interval = 30s\n"
	    "max_registrations_per_client = 2\n");
	ck_assert_int_eq(tc_open(&here, &P, 0, NULL, "alice"), 0);
	ck_assert_int_eq(tc_open(&there, &P, 0, "127.0.0.2", "alice"), 0);
	tc_set_device(&here, here.device);
	tc_set_device(&there, here.device);
	ck_assert_int_eq(tc_register(&here, "ctx", 3, &rp), 0);
	id = rp.reg_id;
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	ck_assert_int_eq(tc_push(&here, &p, 2000), 0);	/* never acked */
	/* it restarts behind another address: still one registration */
	there.last_ts = here.last_ts;
	t = now_ms();
	ck_assert_int_eq(tc_register(&there, "ctx", 3, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_uint_eq(rp.reg_id, id);
	ck_assert_uint_eq(rp.seq, 1);
	ck_assert_int_eq(tc_push(&there, &p, 1000), 0);
	ck_assert_msg(now_ms() - t < 1000, "owed push after %llu ms",
	    (unsigned long long)(now_ms() - t));
	ck_assert_uint_eq(p.seq, 2);
	ck_assert_uint_eq(p.count, 1);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "127.0.0.2:") != NULL, "%s", out);
	ck_assert_int_eq(tc_recv(&here, (uint8_t *)out, sizeof(out), 200),
	    -1);
	tc_close(&here);
	tc_close(&there);
}
END_TEST

/*
 * Issue 13 item 5: kill -9 right after a push, between two state saves;
 * after the restart the daemon's sequence numbers repeat, but the new
 * epoch makes mailpush-listen report the next push.
 */
START_TEST(kill9_next_push_reported)
{
	char tok[192], server[64], outbuf[8192];
	char *argv[] = { (char *)BUILDDIR "/mailpush-listen", (char *)"-v",
	    (char *)"-s", server, (char *)"-u", (char *)"alice", (char *)"-K",
	    tok, (char *)"-N", NULL };
	size_t off = 0;
	int out = -1, err = -1, status;
	pid_t lpid;

	start("[mailpushd]\nstate_save_interval = 1s\n"
	    "[limits]\nmin_push_interval = 0\n");
	snprintf(tok, sizeof(tok), "%s/alice.token", P.dir);
	ck_assert_int_eq(mpd_write_token(&P, "alice", tok), 0);
	snprintf(server, sizeof(server), "127.0.0.1:%d", P.port);
	ck_assert_int_ne(lpid = spawn_cmd(argv, &out, &err), -1);
	ck_assert_int_eq(mpd_stat_wait(&P, "registrations", 1, 5000), 0);
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	ck_assert_int_eq(read_until(out, outbuf, sizeof(outbuf), &off,
	    "seq=1 ", 5000), 0);
	/* saved with seq 1 */
	ck_assert_int_eq(mpd_stat_wait(&P, "acks", 1, 2000), 0);
	usleep(1600 * 1000);
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	ck_assert_int_eq(read_until(out, outbuf, sizeof(outbuf), &off,
	    "seq=2 ", 5000), 0);
	ck_assert_int_eq(kill(P.pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(P.pid, &status, 0), P.pid);
	P.pid = -1;
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(mpd_log_count(&P, "state: 1 registrations restored"),
	    1);
	/* the restored registration pushes seq 2 again, in a new epoch */
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	ck_assert_msg(read_until(out, outbuf, sizeof(outbuf), &off,
	    "restarted=1", 5000) == 0, "no push reported after the restart: "
	    "%s", outbuf);
	ck_assert_msg(strstr(outbuf, "seq=2 count=1 new=1 total=2") != NULL,
	    "%s", outbuf);
	ck_assert_int_eq(kill(lpid, SIGTERM), 0);
	ck_assert_int_eq(wait_cmd(lpid, 5000), 0);
	close(out);
	close(err);
}
END_TEST

/* Item 10: -v logs every dropped datagram with its reason, at most 10 a
 * second, and how many were held back. */
START_TEST(dropped_logged_rate_limited)
{
	struct tclient c;
	uint8_t junk[64];
	int i, lines;

	start(NULL);
	ck_assert_int_eq(tc_open(&c, &P, 0, NULL, "alice"), 0);
	memset(junk, 0x41, sizeof(junk));
	for (i = 0; i < 50; i++)
		ck_assert_int_eq(tc_send(&c, junk, sizeof(junk)), 0);
	ck_assert_int_eq(mpd_stat_wait(&P, "datagrams_malformed", 50, 2000),
	    0);
	usleep(1100 * 1000);
	ck_assert_int_eq(tc_send(&c, junk, 3), 0);
	ck_assert_int_eq(mpd_log_wait(&P, "more dropped datagrams not logged",
	    1, 2000), 0);
	lines = mpd_log_count(&P, "dropped datagram from 127.0.0.1:");
	ck_assert_msg(lines >= 10 && lines <= 21, "%d lines", lines);
	ck_assert_int_eq(mpd_log_count(&P, "not mailpush version 2"), lines);
	tc_close(&c);
}
END_TEST

Suite	*make_replay_suite(void);

Suite *
make_replay_suite(void)
{
	Suite *s = suite_create("replay");
	TCase *tc;

	tc = tcase_create("replay");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, replay_every_request_type);
	tcase_add_test(tc, replay_refused_register);
	tcase_add_test(tc, replay_after_restart);
	suite_add_tcase(s, tc);

	tc = tcase_create("paths");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, keepalive_and_kick);
	tcase_add_test(tc, two_devices_one_address);
	tcase_add_test(tc, device_moves);
	tcase_add_test(tc, kill9_next_push_reported);
	tcase_add_test(tc, dropped_logged_rate_limited);
	suite_add_tcase(s, tc);
	return s;
}
