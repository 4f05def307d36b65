/*
 * check_cluster.c: [cluster] through a real redis-server (issue 16):
 * relays fed by the real mailpush-hook, notifiers pushing to raw clients,
 * Redis killed and restarted under a stream of events, the relay buffer's
 * bound, garbage and oversized channel messages, a wrong Redis password.
 * Redis listens on a Unix socket in a temporary directory.  Skipped with
 * a message when redis-server is not installed (make deps installs it).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <sodium.h>

#include "harness.h"
#include "redis.h"

#define NODES	4

static struct redis_proc R;
static char redis_addr[160];	/* TCP address, or "": R.sock */
static struct mpd_proc	 N[NODES];

static int
skip(const char *name)
{
	if (redis_available())
		return 0;
	fprintf(stderr, "cluster: %s skipped: no %s (make deps installs "
	    "redis-server)\n", name, REDIS_SERVER);
	return 1;
}

static void
setup(void)
{
	size_t i;

	memset(&R, 0, sizeof(R));
	R.pid = -1;
	redis_addr[0] = '\0';
	memset(N, 0, sizeof(N));
	for (i = 0; i < NODES; i++)
		N[i].pid = -1;
}

static void
teardown(void)
{
	size_t i;
	int bad = 0;

	for (i = 0; i < NODES; i++)
		if (N[i].dir[0] != '\0' && mpd_finish(&N[i]) != 0)
			bad++;
	redis_cleanup(&R);
	ck_assert_msg(bad == 0, "a mailpushd did not exit cleanly (see stderr)");
}

static void
redis_up(void)
{
	ck_assert_int_eq(redis_prepare(&R), 0);
	ck_assert_msg(redis_start(&R) == 0, "redis-server did not start (log "
	    "%s)", R.log);
}

/*
 * Start node i with role; every node shares node 0's key (tokens verify
 * at every notifier).  Short heartbeats and backoff keep the tests fast.
 */
static void
node(int i, const char *role, const char *more)
{
	char extra[2048], hex[2 * MP_KEY_LEN + 2];
	struct mpd_proc *p = &N[i];

	ck_assert_int_eq(mpd_prepare(p), 0);
	if (i > 0) {
		memcpy(p->key, N[0].key, sizeof(p->key));
		sodium_bin2hex(hex, sizeof(hex), p->key, sizeof(p->key));
		strcat(hex, "\n");
		ck_assert_int_eq(write_text(p->key_file, hex, 0600), 0);
	}
	snprintf(extra, sizeof(extra),
	    "[limits]\nmin_push_interval = 0\n\n"
	    "[cluster]\nrole = %s\nredis = %s\nheartbeat_interval = 200ms\n"
	    "heartbeat_timeout = 1s\nreconnect_max = 300ms\n%s\n",
	    role, redis_addr[0] ? redis_addr : R.sock, more ? more : "");
	ck_assert_int_eq(mpd_rewrite(p, extra), 0);
	ck_assert_msg(mpd_start(p) == 0, "mailpushd %d did not start (log %s)",
	    i, p->log);
}

/* Wait until `mailpushctl status' of node i shows text. */
static int
status_wait(int i, const char *text, int ms)
{
	static char out[8192];
	uint64_t until = now_ms() + (uint64_t)ms;

	do {
		if (mpd_ctl(&N[i], out, sizeof(out), "status", NULL) == 0 &&
		    strstr(out, text) != NULL)
			return 0;
		usleep(20000);
	} while (now_ms() < until);
	fprintf(stderr, "status of node %d:\n%s", i, out);
	return -1;
}

static uint32_t
client(struct tclient *c, int i, const char *user, const char *ctx)
{
	struct mp_reply rp;

	ck_assert_int_eq(tc_open(c, &N[i], 0, NULL, user), 0);
	ck_assert_int_eq(tc_register(c, ctx, strlen(ctx), &rp), 0);
	ck_assert_msg(rp.type == PROTO_REGISTERED, "%s at node %d: %s", user,
	    i, proto_type_name(rp.type));
	return rp.reg_id;
}

/*
 * Take pushes (acknowledging them) until one carries total `want'; then
 * nothing beyond it may come for 300 ms.  Returns the pushes seen;
 * unknown counts those flagged COUNT_UNKNOWN (catch-up pushes).
 */
static int unknown;

static int
pushes_until(struct tclient *c, uint32_t id, uint32_t want, int ms)
{
	uint64_t until = now_ms() + (uint64_t)ms;
	struct mp_push p;
	uint32_t total = 0;
	int n = 0, rc;

	while (total < want && now_ms() < until) {
		rc = tc_push(c, &p, (int)(until - now_ms()));
		ck_assert_msg(rc != -2, "%s: a push with a bad MAC", c->user);
		if (rc != 0)
			break;
		ck_assert_uint_eq(p.reg_id, id);
		ck_assert_int_eq(tc_ack(c, &p), 0);
		total = p.total;
		if (p.flags & PUSH_FLAG_COUNT_UNKNOWN)
			unknown++;
		n++;
	}
	ck_assert_msg(total == want, "%s: pushes counted %u messages, %u were "
	    "sent", c->user, total, want);
	while (tc_push(c, &p, 300) == 0) {
		ck_assert_msg(p.total == want, "%s: a push counting %u after "
		    "%u", c->user, p.total, want);
		tc_ack(c, &p);
		if (p.flags & PUSH_FLAG_COUNT_UNKNOWN)
			unknown++;
		n++;
	}
	return n;
}

static void
hooks(int i, const char *user, int n)
{
	while (n-- > 0)
		ck_assert_int_eq(mpd_hook(&N[i], user, "INBOX"), 0);
}

/*
 * Two relays (nodes 0, 1) fed by mailpush-hook, two notifiers (2, 3),
 * one Redis: every user gets exactly their own events, from either
 * backend, at whichever notifier they registered; the counters add up.
 */
START_TEST(t_two_by_two)
{
	struct tclient a, b, c2, c3;
	uint32_t ia, ib, ic2, ic3;

	if (skip("two_by_two"))
		return;
	redis_up();
	node(0, "relay", NULL);
	node(1, "relay", NULL);
	node(2, "notifier", NULL);
	node(3, "notifier", NULL);
	ck_assert_int_eq(status_wait(2, "subscribe link: ready", 3000), 0);
	ck_assert_int_eq(status_wait(3, "subscribe link: ready", 3000), 0);
	ia = client(&a, 2, "alice", "a@2");
	ib = client(&b, 3, "bob", "b@3");
	ic2 = client(&c2, 2, "carol", "c@2");
	ic3 = client(&c3, 3, "carol", "c@3");

	hooks(0, "alice", 3);
	hooks(1, "alice", 2);
	hooks(1, "bob", 4);
	hooks(0, "carol", 1);
	hooks(1, "carol", 1);
	hooks(0, "dave", 2);		/* registered nowhere */

	pushes_until(&a, ia, 5, 5000);
	pushes_until(&b, ib, 4, 5000);
	pushes_until(&c2, ic2, 2, 5000);
	pushes_until(&c3, ic3, 2, 5000);

	ck_assert_int_eq(mpd_stat(&N[0], "cluster_published") +
	    mpd_stat(&N[1], "cluster_published"), 13);
	ck_assert_int_eq(mpd_stat(&N[0], "events_in"), 6);
	ck_assert_int_eq(mpd_stat(&N[1], "events_in"), 7);
	ck_assert_int_eq(mpd_stat(&N[2], "cluster_received"), 13);
	ck_assert_int_eq(mpd_stat(&N[3], "cluster_received"), 13);
	/* each notifier pushes only for the users registered with it */
	ck_assert_int_eq(mpd_stat(&N[2], "events_no_registration"), 6);
	ck_assert_int_eq(mpd_stat(&N[3], "events_no_registration"), 7);
	ck_assert_int_eq(mpd_stat(&N[2], "cluster_malformed"), 0);
	ck_assert_int_eq(mpd_stat(&N[0], "cluster_dropped"), 0);
	/* a relay pushes nothing itself */
	ck_assert_int_eq(mpd_stat(&N[0], "pushes"), 0);
	{
		static char out[8192];

		ck_assert_int_eq(mpd_ctl(&N[2], out, sizeof(out), "-j",
		    "status", NULL), 0);
		ck_assert_ptr_nonnull(strstr(out, "\"cluster\":{\"role\":"
		    "\"notifier\""));
		ck_assert_ptr_nonnull(strstr(out, "\"subscribe_link\":"
		    "\"ready\""));
		ck_assert_int_eq(mpd_ctl(&N[0], out, sizeof(out), "-j",
		    "status", NULL), 0);
		ck_assert_ptr_nonnull(strstr(out, "\"subscribers\":2"));
	}
	tc_close(&a);
	tc_close(&b);
	tc_close(&c2);
	tc_close(&c3);
}
END_TEST

/*
 * Redis killed (SIGKILL) in the middle of a stream and started again:
 * every event the relay accepted is pushed after the restart, and the
 * client was told once more (catch-up) that it may have missed mail.
 */
START_TEST(t_redis_restart)
{
	struct tclient a;
	uint32_t ia;
	uint64_t t0;
	long long held;

	if (skip("redis_restart"))
		return;
	redis_up();
	node(0, "relay", NULL);
	node(1, "notifier", NULL);
	ck_assert_int_eq(status_wait(1, "subscribe link: ready", 3000), 0);
	ia = client(&a, 1, "alice", "a");
	hooks(0, "alice", 10);
	pushes_until(&a, ia, 10, 5000);

	held = mpd_stat(&N[0], "cluster_held");
	redis_kill(&R);
	ck_assert_int_eq(status_wait(0, "publish link: down", 3000), 0);
	hooks(0, "alice", 15);		/* accepted while Redis is away */
	ck_assert_int_eq(status_wait(0, "relay buffer: 15 of", 1000), 0);
	ck_assert_int_eq(mpd_stat(&N[0], "events_in"), 25);

	t0 = now_ms();
	unknown = 0;
	ck_assert_int_eq(redis_start(&R), 0);
	/* all 25 counted; the catch-up push carries no new total and says
	 * its counts may be inexact */
	pushes_until(&a, ia, 25, 5000);
	ck_assert_int_ge(unknown, 1);
	fprintf(stderr, "cluster: 15 held events pushed %llu ms after Redis "
	    "came back\n", (unsigned long long)(now_ms() - t0));
	ck_assert_int_eq(mpd_stat_wait(&N[0], "cluster_published", 25, 2000),
	    0);
	ck_assert_int_eq(mpd_stat(&N[0], "cluster_held") - held, 15);
	ck_assert_int_eq(mpd_stat(&N[0], "cluster_buffer"), 0);
	ck_assert_int_eq(mpd_stat(&N[0], "cluster_dropped"), 0);
	ck_assert_int_eq(mpd_stat(&N[1], "cluster_received"), 25);
	ck_assert_int_ge(mpd_stat(&N[1], "cluster_catchups"), 2);
	ck_assert_int_ge(mpd_stat(&N[1], "cluster_catchup_pushes"), 1);
	ck_assert_int_ge(mpd_stat(&N[0], "cluster_disconnects"), 1);
	ck_assert_int_ge(mpd_log_count(&N[0], "publish link lost"), 1);
	tc_close(&a);
}
END_TEST

/*
 * A Redis that stops answering without closing anything (SIGSTOP: the
 * connections stay open, nothing comes back): the heartbeats notice it
 * within heartbeat_timeout (1 s here), the links are dropped and made
 * again; events taken meanwhile are pushed once Redis answers again.
 */
START_TEST(t_redis_frozen)
{
	struct tclient a;
	uint32_t ia;

	if (skip("redis_frozen"))
		return;
	redis_up();
	node(0, "relay", NULL);
	node(1, "notifier", NULL);
	ck_assert_int_eq(status_wait(1, "subscribe link: ready", 3000), 0);
	ia = client(&a, 1, "alice", "a");
	hooks(0, "alice", 1);
	pushes_until(&a, ia, 1, 5000);

	ck_assert_int_eq(kill(R.pid, SIGSTOP), 0);
	ck_assert_int_eq(mpd_log_wait(&N[0], "publish link lost: heartbeat "
	    "not answered within 1000 ms", 1, 4000), 0);
	ck_assert_int_eq(mpd_log_wait(&N[1], "link lost:", 1, 4000), 0);
	hooks(0, "alice", 3);
	ck_assert_int_eq(mpd_stat(&N[0], "cluster_buffer"), 3);
	ck_assert_int_eq(kill(R.pid, SIGCONT), 0);
	pushes_until(&a, ia, 4, 8000);
	ck_assert_int_eq(mpd_stat_wait(&N[0], "cluster_published", 4, 3000),
	    0);
	ck_assert_int_eq(mpd_stat(&N[1], "cluster_received"), 4);
	tc_close(&a);
}
END_TEST

/*
 * A notifier restarted with its registrations (state file): at its first
 * subscription each gets one catch-up push, flagged COUNT_UNKNOWN, since
 * events published while it was down never reached it.
 */
START_TEST(t_notifier_restart)
{
	struct tclient a;
	struct mp_push p;
	uint32_t ia;
	int rc;

	if (skip("notifier_restart"))
		return;
	redis_up();
	node(0, "relay", NULL);
	node(1, "notifier", NULL);
	ck_assert_int_eq(status_wait(1, "subscribe link: ready", 3000), 0);
	ia = client(&a, 1, "alice", "a");
	hooks(0, "alice", 1);
	pushes_until(&a, ia, 1, 5000);
	ck_assert_int_eq(mpd_stop(&N[1]), 0);
	hooks(0, "alice", 2);		/* nobody hears these */
	ck_assert_int_eq(mpd_start(&N[1]), 0);
	ck_assert_int_eq(mpd_stat(&N[1], "registrations"), 1);
	rc = tc_push(&a, &p, 5000);
	ck_assert_msg(rc == 0, "no catch-up push after the restart");
	ck_assert_uint_eq(p.reg_id, ia);
	ck_assert_msg(p.flags & PUSH_FLAG_COUNT_UNKNOWN, "the catch-up push "
	    "does not say its counts may be inexact");
	ck_assert_int_eq(tc_ack(&a, &p), 0);
	ck_assert_int_eq(mpd_stat_wait(&N[1], "cluster_catchup_pushes", 1,
	    2000), 0);
	ck_assert_int_ge(mpd_log_count(&N[1], "catch-up: pushed to 1 "
	    "registrations"), 1);
	tc_close(&a);
}
END_TEST

/* One process as relay+notifier: its own events come back through
 * Redis, once. */
START_TEST(t_both_roles)
{
	struct tclient a;
	uint32_t ia;

	if (skip("both_roles"))
		return;
	redis_up();
	node(0, "relay+notifier", NULL);
	ck_assert_int_eq(status_wait(0, "subscribe link: ready", 3000), 0);
	ck_assert_int_eq(status_wait(0, "cluster: relay+notifier", 100), 0);
	ia = client(&a, 0, "alice", "a");
	hooks(0, "alice", 3);
	pushes_until(&a, ia, 3, 5000);
	ck_assert_int_eq(mpd_stat(&N[0], "events_in"), 3);
	ck_assert_int_eq(mpd_stat(&N[0], "cluster_published"), 3);
	ck_assert_int_eq(mpd_stat(&N[0], "cluster_received"), 3);
	ck_assert_int_eq(status_wait(0, "lag: ", 3000), 0);
	tc_close(&a);
}
END_TEST

/* The relay buffer's bound: the oldest events go, counted and logged;
 * the notifier sees the gap and sends a catch-up push. */
START_TEST(t_relay_bound)
{
	struct tclient a;
	struct mp_push p;
	uint32_t ia;

	if (skip("relay_bound"))
		return;
	redis_up();
	node(0, "relay", "relay_buffer = 5");
	node(1, "notifier", NULL);
	ck_assert_int_eq(status_wait(1, "subscribe link: ready", 3000), 0);
	ia = client(&a, 1, "alice", "a");
	hooks(0, "alice", 1);
	pushes_until(&a, ia, 1, 5000);

	redis_kill(&R);
	ck_assert_int_eq(status_wait(0, "publish link: down", 3000), 0);
	hooks(0, "alice", 8);
	ck_assert_int_eq(mpd_stat(&N[0], "cluster_dropped"), 3);
	ck_assert_int_eq(mpd_stat(&N[0], "cluster_buffer"), 5);
	ck_assert_int_eq(mpd_log_count(&N[0], "relay buffer full ([cluster] "
	    "relay_buffer = 5"), 1);
	ck_assert_int_eq(redis_start(&R), 0);
	/* 1 + the 5 kept; the client is told once more besides */
	pushes_until(&a, ia, 6, 5000);
	ck_assert_int_eq(mpd_stat_wait(&N[1], "cluster_gaps", 1, 2000), 0);
	ck_assert_int_eq(mpd_stat(&N[1], "cluster_received"), 6);
	ck_assert_int_eq(mpd_log_count(&N[1], "never arrived"), 1);
	(void)p;
	tc_close(&a);
}
END_TEST

/* Garbage and an oversized message on the channel: counted, ignored,
 * and the next real event still goes through. */
START_TEST(t_bad_messages)
{
	static const char garbage[] = "this is not a mailpush message at all";
	char big[4096];
	struct tclient a;
	uint32_t ia;
	uint8_t hdr[32];

	if (skip("bad_messages"))
		return;
	redis_up();
	node(0, "relay", NULL);
	node(1, "notifier", NULL);
	ck_assert_int_eq(status_wait(1, "subscribe link: ready", 3000), 0);
	ia = client(&a, 1, "alice", "a");

	ck_assert_int_eq(redis_publish(&R, NULL, NULL, "mailpush", garbage,
	    sizeof(garbage) - 1), 1);
	memset(big, 'x', sizeof(big));
	memcpy(big, "MPCL\001\001", 6);
	ck_assert_int_eq(redis_publish(&R, NULL, NULL, "mailpush", big,
	    sizeof(big)), 1);
	/* a correct header with a truncated event */
	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, "MPCL\001\001", 6);
	hdr[23] = 1;
	ck_assert_int_eq(redis_publish(&R, NULL, NULL, "mailpush", hdr,
	    sizeof(hdr)), 1);
	ck_assert_int_eq(mpd_stat_wait(&N[1], "cluster_malformed", 2, 2000),
	    0);
	ck_assert_int_eq(mpd_stat(&N[1], "cluster_oversized"), 1);
	ck_assert_int_eq(mpd_stat(&N[1], "cluster_received"), 0);
	ck_assert_int_ge(mpd_log_count(&N[1], "message of 37 bytes ignored: "
	    "bad magic number"), 1);

	hooks(0, "alice", 2);
	pushes_until(&a, ia, 2, 5000);
	ck_assert_int_eq(mpd_stat(&N[1], "cluster_received"), 2);
	ck_assert_int_eq(mpd_stat(&N[1], "cluster_malformed"), 2);

	/* a mailbox name from the channel is escaped in the notifier's
	 * log too (-v): it cannot forge a line */
	ck_assert_int_eq(mpd_event(&N[0], "alice", "INBOX\nmailpushd: "
	    "error: forged", 1), 0);
	ck_assert_int_eq(mpd_stat_wait(&N[1], "cluster_received", 3, 2000),
	    0);
	ck_assert_int_eq(mpd_log_wait(&N[1], "in INBOX\\x0amailpushd: "
	    "error: forged", 1, 2000), 0);
	tc_close(&a);
}
END_TEST

/*
 * Redis with an ACL user: a relay with the wrong password says so
 * clearly and keeps taking mail (the hook is never held up); one with
 * the right password publishes to the notifier.
 */
START_TEST(t_wrong_password)
{
	char path[160];
	struct tclient a;
	uint32_t ia;
	uint64_t t0, base;

	if (skip("wrong_password"))
		return;
	ck_assert_int_eq(redis_prepare(&R), 0);
	snprintf(R.extra[R.n_extra++], sizeof(R.extra[0]), "default off");
	snprintf(R.extra[R.n_extra++], sizeof(R.extra[0]),
	    "mailpush on >right-secret resetchannels &mailpush -@all "
	    "+publish +subscribe +pubsub|numsub +ping");	/* as in the manual */
	ck_assert_int_eq(redis_start(&R), 0);

	snprintf(path, sizeof(path), "%s/pw-right", R.dir);
	ck_assert_int_eq(write_text(path, "right-secret\n", 0600), 0);
	{
		char more[256];

		snprintf(more, sizeof(more), "redis_user = mailpush\n"
		    "redis_password_file = %s", path);
		node(0, "notifier", more);
		node(1, "relay", more);
		snprintf(path, sizeof(path), "%s/pw-wrong", R.dir);
		ck_assert_int_eq(write_text(path, "wrong-secret\n", 0600), 0);
		snprintf(more, sizeof(more), "redis_user = mailpush\n"
		    "redis_password_file = %s", path);
		node(2, "relay", more);
	}
	ck_assert_int_eq(status_wait(0, "subscribe link: ready", 3000), 0);
	ck_assert_int_eq(mpd_log_wait(&N[2], "AUTH as mailpush refused: "
	    "WRONGPASS", 1, 3000), 0);
	ia = client(&a, 0, "alice", "a");

	/* the hook's time at a relay that works (for bob, registered
	 * nowhere), against the misconfigured one: the same, not a send
	 * timeout each (a fixed bound fails under ASan on a busy machine) */
	t0 = now_ms();
	hooks(1, "bob", 5);
	base = now_ms() - t0;
	t0 = now_ms();
	hooks(2, "alice", 5);		/* the misconfigured backend */
	ck_assert_msg(now_ms() - t0 < 2 * base + 400, "the hook was held up: "
	    "%llu ms for 5 events, %llu ms at a working relay",
	    (unsigned long long)(now_ms() - t0), (unsigned long long)base);
	ck_assert_int_eq(mpd_stat(&N[2], "events_in"), 5);
	ck_assert_int_eq(mpd_stat(&N[2], "cluster_held"), 5);
	ck_assert_int_eq(mpd_stat(&N[2], "cluster_buffer"), 5);
	ck_assert_int_ge(mpd_stat(&N[2], "cluster_auth_failures"), 1);
	ck_assert_int_eq(status_wait(2, "last error: WRONGPASS", 1000), 0);

	hooks(1, "alice", 3);		/* the good one */
	pushes_until(&a, ia, 3, 5000);
	/* bob's 5 from the working relay and alice's 3 */
	ck_assert_int_eq(mpd_stat_wait(&N[0], "cluster_received", 8, 2000),
	    0);
	/* one warning a minute, not one per attempt */
	ck_assert_int_eq(mpd_log_count(&N[2], "AUTH as mailpush refused"), 1);
	tc_close(&a);
}
END_TEST

/* Lines in text that start with "push user=". */
static int
push_lines(const char *text)
{
	const char *s;
	int n = 0;

	for (s = text; (s = strstr(s, "push user=")) != NULL; s++)
		if (s == text || s[-1] == '\n')
			n++;
	return n;
}

/* Read fd into out until it holds n push lines, or ms pass. */
static int
wait_pushes(int fd, char *out, size_t len, size_t *off, int n, int ms)
{
	uint64_t until = now_ms() + (uint64_t)ms;

	do {
		drain_fd(fd, out, len, off);
		if (push_lines(out) >= n)
			return 0;
		usleep(20000);
	} while (now_ms() < until);
	return -1;
}

/*
 * A notifier killed: mailpush-listen, given both notifiers (-s twice),
 * registers at the other within two keep-alive intervals and gets the
 * next pushes there; when the killed one comes back (its registration
 * restored from its state file) no push reaches the client twice.
 */
#define KEEPALIVE_S	2
START_TEST(t_notifier_failover)
{
	char token[160], dev[160], s1[64], s2[64], out[8192];
	size_t off = 0;
	uint64_t t0, t1;
	pid_t pid;
	int ofd = -1, efd = -1, status;

	if (skip("notifier_failover"))
		return;
	redis_up();
	node(0, "relay", NULL);
	/* a 2 s keep-alive: [limits] again after [cluster] */
	node(1, "notifier", "\n[limits]\nkeepalive_min = 2s\n"
	    "keepalive_max = 2s");
	node(2, "notifier", "\n[limits]\nkeepalive_min = 2s\n"
	    "keepalive_max = 2s");
	ck_assert_int_eq(status_wait(1, "subscribe link: ready", 3000), 0);
	ck_assert_int_eq(status_wait(2, "subscribe link: ready", 3000), 0);
	snprintf(token, sizeof(token), "%s/alice.token", N[1].dir);
	snprintf(dev, sizeof(dev), "%s/alice.device", N[1].dir);
	ck_assert_int_eq(mpd_write_token(&N[1], "alice", token), 0);
	snprintf(s1, sizeof(s1), "127.0.0.1:%d", N[1].port);
	snprintf(s2, sizeof(s2), "127.0.0.1:%d", N[2].port);
	{
		char *argv[] = { (char *)BUILDDIR "/mailpush-listen", (char *)"-v",
		    (char *)"-N", (char *)"-s", s1, (char *)"-s", s2,
		    (char *)"-u", (char *)"alice", (char *)"-K", token,
		    (char *)"-D", dev, NULL };

		pid = spawn_cmd(argv, &ofd, &efd);
	}
	ck_assert_int_gt(pid, 0);
	if (mpd_stat_wait(&N[1], "registrations", 1, 5000) != 0) {
		drain_fd(efd, out, sizeof(out), &off);
		ck_abort_msg("mailpush-listen did not register at the first "
		    "notifier: %s", out);
	}
	hooks(0, "alice", 1);
	ck_assert_msg(wait_pushes(ofd, out, sizeof(out), &off, 1, 5000) == 0,
	    "no push through the first notifier: \"%s\"", out);

	/* let it send a keep-alive or two, then kill the first notifier */
	usleep(KEEPALIVE_S * 1000 * 1000 + 200000);
	mpd_signal(&N[1], SIGKILL);
	waitpid(N[1].pid, &status, 0);
	N[1].pid = -1;
	t0 = now_ms();
	ck_assert_msg(mpd_stat_wait(&N[2], "registrations", 1,
	    4 * KEEPALIVE_S * 1000) == 0, "no registration at the second "
	    "notifier");
	t1 = now_ms();
	fprintf(stderr, "cluster: client failed over in %llu ms (keep-alive "
	    "%d s)\n", (unsigned long long)(t1 - t0), KEEPALIVE_S);
	ck_assert_msg(t1 - t0 <= 2 * KEEPALIVE_S * 1000, "fail-over took %llu "
	    "ms, more than two keep-alive intervals",
	    (unsigned long long)(t1 - t0));
	hooks(0, "alice", 1);
	ck_assert_msg(wait_pushes(ofd, out, sizeof(out), &off, 2, 5000) == 0,
	    "no push through the second notifier: \"%s\"", out);

	/* the first one comes back (with alice's old registration if its
	 * state kept it) and catches up; the client, now at the second,
	 * sees each event once */
	ck_assert_int_eq(mpd_start(&N[1]), 0);
	ck_assert_int_eq(status_wait(1, "subscribe link: ready", 3000), 0);
	ck_assert_int_le(mpd_stat(&N[1], "registrations"), 1);
	hooks(0, "alice", 1);
	ck_assert_int_eq(mpd_stat_wait(&N[2], "cluster_received", 3, 3000), 0);
	usleep(1000000);
	drain_fd(ofd, out, sizeof(out), &off);
	ck_assert_msg(push_lines(out) == 3, "pushes seen: \"%s\"", out);
	kill(pid, SIGTERM);
	ck_assert_int_eq(wait_cmd(pid, 3000), 0);
	off = 0;
	out[0] = '\0';
	drain_fd(efd, out, sizeof(out), &off);
	ck_assert_msg(!sanitizer_report(out), "mailpush-listen: %s", out);
	ck_assert_msg(strstr(out, "does not answer: registering at") != NULL,
	    "mailpush-listen said: %s", out);
	close(ofd);
	close(efd);
}
END_TEST

/* A TCP port on 127.0.0.1 nobody listens on now. */
static int
tcp_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd, port = -1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* Redis over TCP on loopback: a relay and a notifier, one push. */
START_TEST(t_tcp)
{
	struct tclient a;
	uint32_t ia;

	if (skip("tcp"))
		return;
	ck_assert_int_eq(redis_prepare(&R), 0);
	ck_assert_int_gt(R.port = tcp_port(), 0);
	ck_assert_int_eq(redis_start(&R), 0);
	snprintf(redis_addr, sizeof(redis_addr), "127.0.0.1:%d", R.port);
	node(0, "relay", NULL);
	node(1, "notifier", NULL);
	ck_assert_int_eq(status_wait(1, "subscribe link: ready", 3000), 0);
	ck_assert_int_eq(status_wait(1, "Redis 127.0.0.1:", 100), 0);
	ia = client(&a, 1, "alice", "a");
	hooks(0, "alice", 2);
	pushes_until(&a, ia, 2, 5000);
	ck_assert_int_eq(mpd_stat(&N[1], "cluster_received"), 2);
	tc_close(&a);
}
END_TEST

/* Bad [cluster] values stop the daemon at start with file, key and why. */
START_TEST(t_config)
{
	static const struct {
		const char *line, *msg;
	} bad[] = {
		{ "redis = localhost:6379", "[cluster] redis: bad Redis address" },
		{ "redis = 127.0.0.1", "[cluster] redis: bad Redis address" },
		{ "role = primary", "[cluster] role: must be one of" },
		{ "channel = two words", "[cluster] channel: must be printable" },
		{ "heartbeat_timeout = 1s\nheartbeat_interval = 2s",
		  "[cluster] heartbeat_timeout: must be longer" },
		{ "relay_buffer = 0", "[cluster] relay_buffer: must be an "
		  "integer from 1" },
	};
	char extra[256], err[4096];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[] = { (char *)BUILDDIR "/mailpushd", (char *)"-n",
		    (char *)"-c", N[0].conf, NULL };

		if (i == 0)
			ck_assert_int_eq(mpd_prepare(&N[0]), 0);
		snprintf(extra, sizeof(extra), "[cluster]\n%s\n", bad[i].line);
		ck_assert_int_eq(mpd_rewrite(&N[0], extra), 0);
		rc = run_cmd(argv, NULL, 0, err, sizeof(err), 5000);
		ck_assert_msg(rc == 78, "%s: exit %d", bad[i].line, rc);
		ck_assert_msg(strstr(err, bad[i].msg) != NULL, "%s: %s",
		    bad[i].line, err);
	}
}
END_TEST

Suite *
make_cluster_suite(void)
{
	Suite *s = suite_create("cluster");
	TCase *tc;

	tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_two_by_two);
	tcase_add_test(tc, t_tcp);
	tcase_add_test(tc, t_both_roles);
	tcase_add_test(tc, t_config);
	suite_add_tcase(s, tc);

	tc = tcase_create("outage");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_redis_restart);
	tcase_add_test(tc, t_relay_bound);
	tcase_add_test(tc, t_redis_frozen);
	tcase_add_test(tc, t_notifier_restart);
	tcase_add_test(tc, t_notifier_failover);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_bad_messages);
	tcase_add_test(tc, t_wrong_password);
	suite_add_tcase(s, tc);
	return s;
}
