/*
 * bench_cluster.c: the Redis hop of [cluster] (issue 16), against
 * baselines measured in the same run on the same redis-server (a Unix
 * socket in a temporary directory):
 *
 * - throughput: events into a relay's event socket until the notifier
 *   has taken them all from the channel, against redis-benchmark's
 *   PUBLISH with its defaults (the baseline) and, stricter, a raw
 *   hiredis pair (one publisher pipelining PUBLISH of a message of the
 *   same size, one subscriber counting);
 * - latency at 10,000 events/s: event sent to the relay until the push
 *   from the notifier arrives, against the same through one daemon
 *   without [cluster]: the difference of the p99s is the Redis hop;
 * - fail-over: mailpush-listen with both notifiers, the one it uses
 *   killed: seconds until the other holds its registration, against the
 *   keep-alive interval.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/prctl.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <sodium.h>

#include "bench.h"
#include "redis.h"

#define CHANNEL		"mailpush"
#define MSG_LEN		62	/* a cluster message for an 11-byte user */

static struct redis_proc R;

static char *
node_conf(char *buf, size_t len, const char *base, const char *role)
{
	snprintf(buf, len, "%s\n[cluster]\nrole = %s\nredis = %s\n"
	    "relay_buffer = 1000000\n", base, role, R.sock);
	return buf;
}

/* The raw pair: a subscriber thread counts what the publisher sends. */
struct rawsub {
	redisContext	*c;
	size_t		 want, got;
	uint64_t	 last_ns;
	int		 ready;
};

static void *
rawsub_run(void *arg)
{
	struct rawsub *s = arg;
	redisReply *r;

	while (s->got < s->want) {
		if (redisGetReply(s->c, (void **)&r) != REDIS_OK)
			break;
		if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
		    strcmp(r->element[0]->str, "message") == 0) {
			s->got++;
			s->last_ns = mono_ns();
		} else if (r->type == REDIS_REPLY_ARRAY)
			__atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
		freeReplyObject(r);
	}
	return NULL;
}

static double
raw_pair(size_t n)
{
	struct timeval tv = { 20, 0 };
	struct rawsub s;
	redisContext *pub;
	redisReply *r;
	pthread_t thr;
	uint8_t msg[MSG_LEN];
	uint64_t t0;
	size_t i, replies = 0;

	memset(&s, 0, sizeof(s));
	memset(msg, 'm', sizeof(msg));
	s.want = n;
	if ((s.c = redisConnectUnix(R.sock)) == NULL || s.c->err ||
	    (pub = redisConnectUnix(R.sock)) == NULL || pub->err) {
		fail("hiredis cannot connect to %s", R.sock);
		return -1;
	}
	redisSetTimeout(s.c, tv);
	r = redisCommand(s.c, "SUBSCRIBE %s", CHANNEL "-raw");
	freeReplyObject(r);
	if (pthread_create(&thr, NULL, rawsub_run, &s) != 0)
		abort();
	t0 = mono_ns();
	for (i = 0; i < n; i++) {
		redisAppendCommand(pub, "PUBLISH %s %b", CHANNEL "-raw", msg,
		    sizeof(msg));
		/* at most 1000 answers outstanding, as a relay keeps them */
		if (i - replies >= 1000) {
			if (redisGetReply(pub, (void **)&r) != REDIS_OK)
				break;
			freeReplyObject(r);
			replies++;
		}
	}
	while (replies < n && redisGetReply(pub, (void **)&r) == REDIS_OK) {
		freeReplyObject(r);
		replies++;
	}
	pthread_join(thr, NULL);
	redisFree(pub);
	redisFree(s.c);
	if (s.got != n) {
		fail("raw subscriber got %zu of %zu", s.got, n);
		return -1;
	}
	return (double)n / ((double)(s.last_ns - t0) / 1e9);
}

/* redis-benchmark's PUBLISH rate with its defaults (50 clients, no
 * pipelining): the baseline the issue names. */
static double
redis_benchmark(size_t n)
{
	static char out[1 << 20];	/* the progress lines add up */
	char num[32], payload[MSG_LEN + 1];
	char *argv[] = { (char *)"/usr/bin/redis-benchmark", (char *)"-s",
	    R.sock, (char *)"-n", num, (char *)"-q", (char *)"publish",
	    (char *)CHANNEL "-rb", payload, NULL };
	char *s, *e;

	if (access(argv[0], X_OK) != 0)
		return -1;
	snprintf(num, sizeof(num), "%zu", n);
	memset(payload, 'm', MSG_LEN);
	payload[MSG_LEN] = '\0';
	if (run_cmd(argv, out, sizeof(out), NULL, 0, 120000) != 0)
		return -1;
	/* progress lines end in \r; the last line is
	 * "publish ...: 123456.79 requests per second, p50=..." */
	if ((e = strstr(out, " requests per second")) == NULL)
		return -1;
	for (s = e; s > out && s[-1] != ' '; s--)
		;
	return strtod(s, NULL);
}

/* Wait until the counter reaches want; the time it did (mono ns). */
static uint64_t
stat_reach(struct mpd_proc *p, const char *name, long long want, int max_ms)
{
	uint64_t until = mono_ns() + (uint64_t)max_ms * 1000000;
	long long v;

	while (mono_ns() < until) {
		if ((v = bd_stat(p, name)) >= want)
			return mono_ns();
		usleep(20000);	/* mailpushctl is a process: not too often */
	}
	return 0;
}

static int
throughput(void)
{
	const size_t n = opts.quick ? 100000 : 500000, users = 1000;
	struct mpd_proc rl, nt;
	struct evset ev;
	unsigned *u;
	char conf[1024], fig[96], base[160], rat[48];
	double raw, rb, rate;
	uint64_t t0, t1, c0[3];
	uint16_t port;
	size_t i;
	int evfd = -1, sink = -1, rc = -1;

	memset(&rl, 0, sizeof(rl));
	memset(&nt, 0, sizeof(nt));
	memset(&ev, 0, sizeof(ev));
	if ((u = malloc(n * sizeof(*u))) == NULL)
		abort();
	for (i = 0; i < n; i++)
		u[i] = (unsigned)(i % users);
	if ((sink = udp_socket(&port, 0)) == -1) {
		fail("socket: %s", strerror(errno));
		goto out;
	}
	if ((raw = raw_pair(n)) <= 0)
		goto out;
	rb = redis_benchmark(opts.quick ? 50000 : 200000);
	note("  raw hiredis pair: %.0f messages/s; redis-benchmark PUBLISH: "
	    "%.0f/s", raw, rb);
	/* the notifier holds a registration for every user, pushes
	 * coalesced (one push per user, the rest counted) */
	if (bd_create(&nt, node_conf(conf, sizeof(conf), bench_conf_coalesce,
	    "notifier")) != 0 || state_write(&nt, 0, users, 1, &port, 1)
	    != 0 || bd_start(&nt, 60000) != 0 ||
	    bd_create(&rl, node_conf(conf, sizeof(conf), bench_conf,
	    "relay")) != 0 || bd_start(&rl, 60000) != 0 ||
	    evset_make(&ev, n, u) != 0)
		goto out;
	if (stat_reach(&nt, "cluster_connects", 2, 5000) == 0) {
		fail("the notifier did not subscribe (log %s)", nt.log);
		goto out;
	}
	if ((evfd = event_connect(rl.events)) == -1) {
		fail("event socket %s: %s", rl.events, strerror(errno));
		goto out;
	}
	c0[0] = cpu_ns(rl.pid);
	c0[1] = cpu_ns(nt.pid);
	c0[2] = cpu_ns(R.pid);
	t0 = mono_ns();
	if (evset_send(evfd, &ev, 0, n) != n)
		goto out;
	if ((t1 = stat_reach(&nt, "cluster_received", (long long)n, 120000))
	    == 0) {
		fail("the notifier received %lld of %zu events (logs %s %s)",
		    bd_stat(&nt, "cluster_received"), n, rl.log, nt.log);
		goto out;
	}
	rate = (double)n / ((double)(t1 - t0) / 1e9);
	note("  CPU per event: relay %.2f us, notifier %.2f us, redis %.2f us; "
	    "elapsed %.0f ms", (double)(cpu_ns(rl.pid) - c0[0]) / 1e3 / n,
	    (double)(cpu_ns(nt.pid) - c0[1]) / 1e3 / n,
	    (double)(cpu_ns(R.pid) - c0[2]) / 1e3 / n,
	    (double)(t1 - t0) / 1e6);
	snprintf(fig, sizeof(fig), "%.0f events/s (%zu events)", rate, n);
	snprintf(base, sizeof(base), "redis-benchmark PUBLISH %.0f/s; raw "
	    "pipelined hiredis pair %.0f/s", rb, raw);
	snprintf(rat, sizeof(rat), "%.2f; %.2f of the raw pair", rate / rb,
	    rate / raw);
	result_add("cluster throughput", fig, base, rat,
	    ">= 0.5 of redis-benchmark", rb > 0 && rate / rb >= 0.5);
	rc = 0;
out:
	if (evfd != -1)
		close(evfd);
	if (sink != -1)
		close(sink);
	evset_free(&ev);
	free(u);
	bd_destroy(&rl);
	bd_destroy(&nt);
	return rc;
}

/*
 * Latency, timed as bench_latency does it: one thread, ppoll(2) until the
 * next event is due (no busy wait stealing a core from the daemons), the
 * kernel's receive timestamp of each push (SO_TIMESTAMPNS).
 */
struct catcher {
	int		 fd;
	size_t		 n, got;
	uint64_t	*t_recv;	/* realtime ns, by user - base */
	size_t		 base;		/* user index of t_recv[0] */
	size_t		 next;		/* lowest not yet heard from */
	const struct mpd_proc *p;	/* whose key sealed the pushes */
};

/* Whose push this is: pushes are sealed for one device, so it is tried
 * with the next users not yet heard from (events go in user order). */
static long
catch_user(struct catcher *c, const uint8_t *buf, size_t len)
{
	uint8_t token[MP_TOKEN_LEN], key[32];
	char name[32];
	size_t u;
	unsigned tries = 0;

	while (c->next < c->n && c->t_recv[c->next] != 0)
		c->next++;
	for (u = c->next; u < c->n && tries < 64; u++) {
		if (c->t_recv[u] != 0)
			continue;
		tries++;
		snprintf(name, sizeof(name), BENCH_USER_FMT,
		    (unsigned)(c->base + u));
		mpd_token(c->p, name, token);
		bench_push_key(token, key);
		if (push_user(buf, len, key) == (long)(c->base + u))
			return (long)u;
	}
	return -1;
}

static void
catch_pushes(struct catcher *c)
{
	uint8_t buf[2048];
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(struct timespec))];
	} cm;
	struct cmsghdr *h;
	struct timespec ts;
	ssize_t len;
	long user;

	for (;;) {
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr msg;

		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		if ((len = recvmsg(c->fd, &msg, MSG_DONTWAIT)) <= 0)
			return;
		memset(&ts, 0, sizeof(ts));
		for (h = CMSG_FIRSTHDR(&msg); h != NULL; h = CMSG_NXTHDR(&msg, h))
			if (h->cmsg_level == SOL_SOCKET &&
			    h->cmsg_type == SCM_TIMESTAMPNS)
				memcpy(&ts, CMSG_DATA(h), sizeof(ts));
		user = catch_user(c, buf, (size_t)len);
		if (user >= 0 && (size_t)user < c->n && c->t_recv[user] == 0) {
			c->t_recv[user] = (uint64_t)ts.tv_sec * 1000000000ULL +
			    (uint64_t)ts.tv_nsec;
			c->got++;
		}
	}
}

/* Send events [0, n) at rate/s, one user each; percentiles of arrival -
 * send. */
static int
paced_p99(int evfd, const struct evset *ev, size_t n, unsigned rate,
    struct catcher *c, double *p50, double *p99, size_t *lost)
{
	uint64_t *t_send, interval = 1000000000ULL / rate, next, now, until = 0;
	struct pollfd pfd = { c->fd, POLLIN, 0 };
	double *lat;
	size_t i = 0, nl = 0;

	t_send = calloc(n, sizeof(*t_send));
	lat = calloc(n, sizeof(*lat));
	if (t_send == NULL || lat == NULL)
		abort();
	c->got = 0;
	next = mono_ns() + 1000000;
	for (;;) {
		struct timespec ts;
		uint64_t wait;

		now = mono_ns();
		if (i < n && now >= next) {
			t_send[i] = real_ns();
			if (evset_send(evfd, ev, i, i + 1) != 1)
				break;
			next += interval;
			if (++i == n)
				until = now + 1000000000ULL;
			continue;
		}
		if (i == n && (c->got >= n || now >= until))
			break;
		wait = i < n ? next - now : until - now;
		ts.tv_sec = (time_t)(wait / 1000000000ULL);
		ts.tv_nsec = (long)(wait % 1000000000ULL);
		if (ppoll(&pfd, 1, &ts, NULL) > 0)
			catch_pushes(c);
	}
	for (i = 0; i < n; i++)
		if (c->t_recv[i] != 0 && t_send[i] != 0 &&
		    c->t_recv[i] >= t_send[i])
			lat[nl++] = (double)(c->t_recv[i] - t_send[i]) / 1e6;
	*lost = n - nl;
	if (nl > 0) {
		*p50 = stat_pct(lat, nl, 50);
		*p99 = stat_pct(lat, nl, 99);
	}
	free(t_send);
	free(lat);
	return nl > 0 ? 0 : -1;
}

static int
latency(void)
{
	const unsigned rate = 10000, runs = opts.quick ? 1 : 3;
	const size_t n = opts.quick ? 10000 : 20000, total = n * runs;
	struct mpd_proc one, rl, nt;
	struct catcher c;
	struct evset ev;
	unsigned *u, r;
	uint16_t port;
	char conf[1024], fig[128], base[96], rat[48];
	double p50c[3], p99c[3], p50d[3], p99d[3], m99c, m99d;
	size_t i, lost, lostc = 0, lostd = 0;
	int evd = -1, evc = -1, on = 1, rc = -1;

	memset(&one, 0, sizeof(one));
	memset(&rl, 0, sizeof(rl));
	memset(&nt, 0, sizeof(nt));
	memset(&ev, 0, sizeof(ev));
	memset(&c, 0, sizeof(c));
	prctl(PR_SET_TIMERSLACK, 1UL);
	if ((u = malloc(total * sizeof(*u))) == NULL ||
	    (c.t_recv = calloc(n, sizeof(*c.t_recv))) == NULL)
		abort();
	for (i = 0; i < total; i++)
		u[i] = (unsigned)i;
	if ((c.fd = udp_socket(&port, 16 << 20)) == -1 ||
	    setsockopt(c.fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on))
	    == -1) {
		fail("socket: %s", strerror(errno));
		goto out;
	}
	if (evset_make(&ev, total, u) != 0)
		goto out;
	/* the baseline, one daemon without [cluster]; and relay + notifier;
	 * both hold a registration for every user of every run */
	if (bd_create(&one, bench_conf) != 0 ||
	    state_write(&one, 0, (unsigned)total, 1, &port, 1) != 0 ||
	    bd_start(&one, 60000) != 0 ||
	    bd_create(&nt, node_conf(conf, sizeof(conf), bench_conf,
	    "notifier")) != 0 ||
	    state_write(&nt, 0, (unsigned)total, 1, &port, 1) != 0 ||
	    bd_start(&nt, 60000) != 0 ||
	    bd_create(&rl, node_conf(conf, sizeof(conf), bench_conf,
	    "relay")) != 0 || bd_start(&rl, 60000) != 0)
		goto out;
	/* the notifier's catch-up push to every registration at its first
	 * subscription goes before the timed runs */
	if (stat_reach(&nt, "cluster_catchup_pushes", (long long)total, 10000)
	    == 0) {
		fail("the notifier did not subscribe (log %s)", nt.log);
		goto out;
	}
	usleep(300000);
	while (recv(c.fd, conf, sizeof(conf), MSG_DONTWAIT) > 0)
		;
	if ((evd = event_connect(one.events)) == -1 ||
	    (evc = event_connect(rl.events)) == -1) {
		fail("event socket: %s", strerror(errno));
		goto out;
	}
	/* runs alternate, so that a busy moment of the machine hits both */
	for (r = 0; r < runs; r++) {
		struct evset part = ev;

		part.buf = ev.buf + (size_t)r * n * EVSLOT;
		part.len = ev.len + (size_t)r * n;
		c.n = n;
		memset(c.t_recv, 0, n * sizeof(*c.t_recv));
		c.base = (size_t)r * n;
		c.next = 0;
		c.p = &one;
		if (paced_p99(evd, &part, n, rate, &c, &p50d[r], &p99d[r],
		    &lost) != 0) {
			fail("direct latency run failed (log %s)", one.log);
			goto out;
		}
		lostd += lost;
		memset(c.t_recv, 0, n * sizeof(*c.t_recv));
		c.next = 0;
		c.p = &nt;
		if (paced_p99(evc, &part, n, rate, &c, &p50c[r], &p99c[r],
		    &lost) != 0) {
			fail("cluster latency run failed (logs %s %s)", rl.log,
			    nt.log);
			goto out;
		}
		lostc += lost;
		note("  run %u: direct p50 %.3f ms, p99 %.3f ms; through Redis "
		    "p50 %.3f ms, p99 %.3f ms", r + 1, p50d[r], p99d[r],
		    p50c[r], p99c[r]);
	}
	m99c = stat_median(p99c, runs);
	m99d = stat_median(p99d, runs);
	snprintf(fig, sizeof(fig), "p99 %.3f ms through Redis (p50 %.3f; "
	    "median of %u; %zu lost)", m99c, stat_median(p50c, runs), runs,
	    lostc);
	snprintf(base, sizeof(base), "p99 %.3f ms direct (p50 %.3f; %zu lost)",
	    m99d, stat_median(p50d, runs), lostd);
	snprintf(rat, sizeof(rat), "%+.3f ms at %u/s", m99c - m99d, rate);
	result_add("cluster added latency", fig, base, rat, "p99 added <= 1 ms",
	    m99c - m99d <= 1.0 && lostc == 0);
	rc = 0;
out:
	if (evd != -1)
		close(evd);
	if (evc != -1)
		close(evc);
	if (c.fd > 0)
		close(c.fd);
	evset_free(&ev);
	free(u);
	free(c.t_recv);
	bd_destroy(&one);
	bd_destroy(&rl);
	bd_destroy(&nt);
	return rc;
}

/*
 * Fail-over: mailpush-listen given both notifiers; the one it uses is
 * killed (SIGKILL) at a random moment of its keep-alive cycle, and the
 * time until the other holds the registration is measured (polled every
 * 20 ms).  The killed one is started again, and the next run kills the
 * other.
 */
static int
failover(void)
{
	const unsigned runs = opts.quick ? 2 : 6, ka_s = 2;
	struct mpd_proc nt[2];
	char conf[1024], token[160], dev[160], s[2][64], hex[2 * MP_KEY_LEN + 2];
	char fig[128], base[64], rat[48];
	double t[8];
	uint64_t t0, until;
	unsigned r;
	pid_t pid = -1;
	int i, cur = 0, rc = -1;

	memset(nt, 0, sizeof(nt));
	snprintf(conf, sizeof(conf), "%s\n[cluster]\nrole = notifier\n"
	    "redis = %s\n\n[limits]\nkeepalive_min = %us\n"
	    "keepalive_max = %us\n", bench_conf, R.sock, ka_s, ka_s);
	for (i = 0; i < 2; i++) {
		if (bd_create(&nt[i], conf) != 0)
			goto out;
		if (i == 1) {	/* one key for both */
			memcpy(nt[1].key, nt[0].key, sizeof(nt[1].key));
			sodium_bin2hex(hex, sizeof(hex), nt[1].key,
			    sizeof(nt[1].key));
			strcat(hex, "\n");
			if (write_text(nt[1].key_file, hex, 0600) != 0)
				goto out;
		}
		if (bd_start(&nt[i], 10000) != 0)
			goto out;
		snprintf(s[i], sizeof(s[i]), "127.0.0.1:%d", nt[i].port);
	}
	snprintf(token, sizeof(token), "%s/alice.token", nt[0].dir);
	snprintf(dev, sizeof(dev), "%s/alice.device", nt[0].dir);
	if (mpd_write_token(&nt[0], "alice", token) != 0)
		goto out;
	{
		char *argv[] = { (char *)BUILDDIR "/mailpush-listen",
		    (char *)"-N", (char *)"-s", s[0], (char *)"-s", s[1],
		    (char *)"-u", (char *)"alice", (char *)"-K", token,
		    (char *)"-D", dev, NULL };

		if ((pid = spawn_cmd(argv, NULL, NULL)) == -1)
			goto out;
	}
	if (stat_reach(&nt[0], "registrations", 1, 10000) == 0) {
		fail("mailpush-listen did not register (log %s)", nt[0].log);
		goto out;
	}
	for (r = 0; r < runs; r++) {
		/* a random moment of the keep-alive cycle */
		usleep(1000000 + randombytes_uniform(ka_s * 1000000));
		bd_kill(&nt[cur]);
		t0 = mono_ns();
		until = t0 + 4ULL * ka_s * 1000000000ULL;
		while (mono_ns() < until && bd_stat(&nt[!cur], "registrations")
		    < 1)
			usleep(20000);
		if (mono_ns() >= until) {
			fail("no fail-over within %u s (logs %s %s)", 4 * ka_s,
			    nt[0].log, nt[1].log);
			goto out;
		}
		t[r] = (double)(mono_ns() - t0) / 1e9;
		note("  run %u: killed %s, registered at the other after "
		    "%.2f s", r + 1, s[cur], t[r]);
		if (bd_start(&nt[cur], 10000) != 0)
			goto out;
		cur = !cur;
	}
	snprintf(fig, sizeof(fig), "median %.2f s, max %.2f s (%u runs)",
	    stat_median(t, runs), stat_pct(t, runs, 100), runs);
	snprintf(base, sizeof(base), "keep-alive interval %u s", ka_s);
	snprintf(rat, sizeof(rat), "%.2f intervals (max)",
	    stat_pct(t, runs, 100) / ka_s);
	result_add("cluster client fail-over", fig, base, rat,
	    "<= 2 keep-alive intervals", stat_pct(t, runs, 100) <= 2.0 * ka_s);
	rc = 0;
out:
	if (pid > 0) {
		kill(pid, SIGTERM);
		wait_cmd(pid, 3000);
	}
	bd_destroy(&nt[0]);
	bd_destroy(&nt[1]);
	return rc;
}

int
bench_cluster(void)
{
	int rc;

	if (!redis_available()) {
		note("cluster: skipped, no %s", REDIS_SERVER);
		return 0;
	}
	note("cluster: relay -> Redis -> notifier on a Unix socket");
	if (redis_prepare(&R) != 0 || redis_start(&R) != 0) {
		redis_cleanup(&R);
		return fail("redis-server did not start (log %s)", R.log);
	}
	rc = throughput();
	if (rc == 0)
		rc = latency();
	if (rc == 0)
		rc = failover();
	redis_cleanup(&R);
	return rc;
}
