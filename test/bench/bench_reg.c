/*
 * bench_reg.c: registration rate with full authentication and the cookie.
 *
 * Every registration is a new user doing the whole handshake: REGISTER
 * without a cookie, COOKIE, REGISTER with the cookie and a MAC under the
 * user's token, REGISTERED.  32 client sockets each keep one handshake in
 * flight.  The baseline runs the same client, with the same two
 * exchanges of the same datagrams (and the same MAC work on the client),
 * against a plain UDP echo server.
 *
 * Three daemons: with state_sync = no (what the handshake itself costs:
 * issue 13's figure), and as shipped, every REGISTERED after the
 * fdatasync of its record, at 32 and at 256 in flight (issue 14's).
 *
 * Table growth: one handshake at a time against a daemon that holds
 * 2^20 - 2,000 registrations of as many users, so that the next 4,000
 * make the user and id tables double; the longest handshake against the
 * longest of the next 4,000 at the same size (no doubling).  Before the
 * tables moved a few buckets at a time (htab.c), the handshake that
 * crossed waited for both to be rehashed at once.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <fcntl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "bench.h"
#include "proto.h"

#define NSOCK_MAX	256
#define REQ_SLOT	256	/* a padded REGISTER with a 16-byte context */
#define REPS_MAX	9

struct slot {
	int		fd;
	int		phase;		/* 0: first request out, 1: second */
	unsigned	idx;
	uint64_t	ts;		/* timestamp of the request out */
	uint64_t	sent_ns;
	uint64_t	start_ns;	/* the handshake's first request */
	uint8_t		last[REQ_SLOT];
	size_t		last_len;
};

struct regrun {
	int		 echo;
	unsigned	 user0;
	size_t		 n, started, done;
	uint8_t		(*token)[MP_TOKEN_LEN];
	uint8_t		*first;		/* n pre-encoded first requests */
	uint8_t		*first_len;
	uint64_t	*first_ts;
	unsigned	 refused, resent, bad;
	unsigned	 nsock;		/* handshakes in flight */
	double		*lat_ms;	/* if set: each handshake's time */
	struct slot	 s[NSOCK_MAX];
};

static void
fill_req(struct mp_request *rq, unsigned user, const uint8_t *cookie,
    uint64_t floor)
{
	struct timespec now;
	uint64_t t;

	memset(rq, 0, sizeof(*rq));
	rq->type = PROTO_REGISTER;
	rq->key_id = PROTO_KEY_ID_DEFAULT;
	bench_device(user, 0, rq->device);
	/* milliseconds, above the device's earlier request (floor): one
	 * counter for all of them would run ahead of the clock by one ms a
	 * request, out of the timestamp window after 120,000 of them */
	clock_gettime(CLOCK_REALTIME, &now);
	t = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
	rq->timestamp = t > floor ? t : floor + 1;
	rq->pad_to = (uint16_t)proto_request_pad(BENCH_CTX_LEN);
	rq->user_len = (uint8_t)snprintf(rq->user, sizeof(rq->user),
	    BENCH_USER_FMT, user);
	rq->ctx_len = BENCH_CTX_LEN;
	memset(rq->ctx, 0xa5, BENCH_CTX_LEN);
	rq->ctx[0] = (uint8_t)(user >> 24);
	rq->ctx[1] = (uint8_t)(user >> 16);
	rq->ctx[2] = (uint8_t)(user >> 8);
	rq->ctx[3] = (uint8_t)user;
	if (cookie != NULL)
		memcpy(rq->cookie, cookie, PROTO_COOKIE_LEN);
}

static int
prepare(struct regrun *g, const struct mpd_proc *p)
{
	static struct mp_request rq;
	size_t i;
	int len;

	g->token = malloc(g->n * sizeof(*g->token));
	g->first = malloc(g->n * REQ_SLOT);
	g->first_len = malloc(g->n);
	g->first_ts = malloc(g->n * sizeof(*g->first_ts));
	if (g->token == NULL || g->first == NULL || g->first_len == NULL ||
	    g->first_ts == NULL)
		abort();
	for (i = 0; i < g->n; i++) {
		fill_req(&rq, g->user0 + (unsigned)i, NULL, 0);
		mpd_token(p, rq.user, g->token[i]);
		if ((len = proto_request_encode(&rq, g->token[i],
		    g->first + i * REQ_SLOT, REQ_SLOT)) < 0)
			return fail("cannot encode a request");
		g->first_len[i] = (uint8_t)len;
		g->first_ts[i] = rq.timestamp;
	}
	return 0;
}

static void
release(struct regrun *g)
{
	free(g->token);
	free(g->first);
	free(g->first_len);
	free(g->first_ts);
}

static void
slot_send(struct slot *s, const uint8_t *buf, size_t len)
{
	memcpy(s->last, buf, len);
	s->last_len = len;
	s->sent_ns = mono_ns();
	send(s->fd, buf, len, 0);
}

static void
slot_next(struct regrun *g, struct slot *s)
{
	if (g->started == g->n) {
		s->phase = -1;
		return;
	}
	s->idx = (unsigned)g->started++;
	s->phase = 0;
	s->ts = g->first_ts[s->idx];
	slot_send(s, g->first + (size_t)s->idx * REQ_SLOT,
	    g->first_len[s->idx]);
	s->start_ns = s->sent_ns;
}

static void
slot_second(struct regrun *g, struct slot *s, const uint8_t *cookie)
{
	static struct mp_request rq;
	uint8_t buf[REQ_SLOT];
	int len;

	fill_req(&rq, g->user0 + s->idx, cookie, g->first_ts[s->idx]);
	if ((len = proto_request_encode(&rq, g->token[s->idx], buf,
	    sizeof(buf))) < 0)
		abort();
	s->phase = 1;
	s->ts = rq.timestamp;
	slot_send(s, buf, (size_t)len);
}

static void
slot_reply(struct regrun *g, struct slot *s, const uint8_t *buf, size_t len)
{
	static const uint8_t dummy[PROTO_COOKIE_LEN] = { 1 };
	struct mp_reply rp;
	const char *why;

	if (s->phase < 0)
		return;
	if (g->echo) {
		if (len != s->last_len)
			return;
		if (s->phase == 0)
			slot_second(g, s, dummy);
		else {
			g->done++;
			slot_next(g, s);
		}
		return;
	}
	if (proto_reply_decode(buf, len, &rp, &why) != 0 ||
	    rp.timestamp != s->ts) {
		g->bad++;
		return;
	}
	if (s->phase == 0 && rp.type == PROTO_COOKIE) {
		slot_second(g, s, rp.cookie);
		return;
	}
	if (s->phase == 1 && rp.type == PROTO_REGISTERED) {
		if (g->lat_ms != NULL)
			g->lat_ms[s->idx] = (double)(mono_ns() - s->start_ns) /
			    1e6;
		g->done++;
		slot_next(g, s);
		return;
	}
	if (rp.type == PROTO_REFUSED) {
		if (g->refused++ == 0)
			note("  refused: %s", proto_reason_name(rp.reason));
		g->done++;
		slot_next(g, s);
		return;
	}
	g->bad++;
}

/* Run g->n handshakes against 127.0.0.1:port; returns handshakes/s. */
static double
regrun(struct regrun *g, uint16_t port)
{
	struct epoll_event ev[NSOCK_MAX];
	struct sockaddr_in sin;
	uint8_t buf[2048];
	uint64_t t0, deadline, last_scan;
	ssize_t len;
	int ep, i, k, nev;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		return 0;
	for (i = 0; i < (int)g->nsock; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.u32 =
		    (uint32_t)i };
		uint16_t myport;

		g->s[i].fd = udp_socket(&myport, 1 << 20);
		if (g->s[i].fd == -1 || connect(g->s[i].fd,
		    (struct sockaddr *)&sin, sizeof(sin)) == -1) {
			fail("client socket: %s", strerror(errno));
			close(ep);
			return 0;
		}
		epoll_ctl(ep, EPOLL_CTL_ADD, g->s[i].fd, &e);
	}
	g->started = g->done = 0;
	t0 = last_scan = mono_ns();
	deadline = t0 + 60000000000ULL;
	for (i = 0; i < (int)g->nsock; i++)
		slot_next(g, &g->s[i]);
	while (g->done < g->n && mono_ns() < deadline) {
		nev = epoll_wait(ep, ev, NSOCK_MAX, 100);
		for (k = 0; k < nev; k++) {
			struct slot *s = &g->s[ev[k].data.u32];

			while ((len = recv(s->fd, buf, sizeof(buf),
			    MSG_DONTWAIT)) > 0)
				slot_reply(g, s, buf, (size_t)len);
		}
		if (mono_ns() - last_scan > 100000000ULL) {
			last_scan = mono_ns();
			for (i = 0; i < (int)g->nsock; i++)
				if (g->s[i].phase >= 0 && last_scan -
				    g->s[i].sent_ns > 500000000ULL) {
					g->resent++;
					slot_send(&g->s[i], g->s[i].last,
					    g->s[i].last_len);
				}
		}
	}
	t0 = mono_ns() - t0;
	for (i = 0; i < (int)g->nsock; i++)
		close(g->s[i].fd);
	close(ep);
	if (g->done < g->n)
		note("  only %zu of %zu handshakes done", g->done, g->n);
	return (double)g->done / ((double)t0 / 1e9);
}

/* The plain UDP echo server. */
struct echo {
	int		fd;
	uint16_t	port;
	atomic_int	stop;
	pthread_t	thr;
};

static void *
echo_main(void *arg)
{
	struct echo *e = arg;
	struct sockaddr_storage from;
	socklen_t flen;
	uint8_t buf[2048];
	ssize_t n;

	while (!atomic_load(&e->stop)) {
		flen = sizeof(from);
		n = recvfrom(e->fd, buf, sizeof(buf), 0,
		    (struct sockaddr *)&from, &flen);
		if (n <= 0)
			continue;
		sendto(e->fd, buf, (size_t)n, 0, (struct sockaddr *)&from,
		    flen);
	}
	return NULL;
}

/* Microseconds per 200-byte append and fdatasync in dir: what a durable
 * REGISTERED waits for at least once. */
static double
sync_us(const char *dir)
{
	char path[256];
	uint8_t b[200];
	uint64_t t0;
	int fd, i;

	memset(b, 0, sizeof(b));
	snprintf(path, sizeof(path), "%s/sync-probe", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND |
	    O_CLOEXEC, 0600)) == -1)
		return -1;
	t0 = mono_ns();
	for (i = 0; i < 200; i++)
		if (write(fd, b, sizeof(b)) != (ssize_t)sizeof(b) ||
		    fdatasync(fd) != 0)
			break;
	close(fd);
	unlink(path);
	return i < 200 ? -1 : (double)(mono_ns() - t0) / 200 / 1e3;
}

/*
 * The rate of full handshakes with nsock in flight, against the daemon
 * with its journal (state_sync = yes: every REGISTERED waits for the
 * fdatasync of its record, one per batch) and against the echo server.
 */
static int
register_rate(unsigned nsock, const char *name, const char *conf,
    const char *target, int judged)
{
	const unsigned reps = opts.quick ? 1 : 5;
	const size_t n = opts.quick ? 3000 : 15000;
	struct mpd_proc p;
	struct regrun g;
	struct echo e;
	struct timeval tv = { 0, 50000 };
	double d[REPS_MAX], b[REPS_MAX], md, mb;
	long long r0, r1;
	char fig[96], bas[96], rat[48];
	unsigned r;
	int rc = -1, sbuf = 4 << 20;

	note("%s: %zu full handshakes per run, %u in flight, %u runs", name,
	    n, nsock, reps);
	memset(&p, 0, sizeof(p));
	memset(&e, 0, sizeof(e));
	if ((e.fd = udp_socket(&e.port, 4 << 20)) == -1)
		return fail("echo socket: %s", strerror(errno));
	setsockopt(e.fd, SOL_SOCKET, SO_SNDBUF, &sbuf, sizeof(sbuf));
	setsockopt(e.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (pthread_create(&e.thr, NULL, echo_main, &e) != 0) {
		close(e.fd);
		return fail("pthread_create failed");
	}
	if (bd_create(&p, conf) != 0 || bd_start(&p, 10000) != 0)
		goto out;
	r0 = bd_stat(&p, "registered");
	for (r = 0; r < reps; r++) {
		memset(&g, 0, sizeof(g));
		g.nsock = nsock;
		g.n = n;
		g.user0 = (unsigned)(r * n) + (nsock > 32 ? 10000000 : 0);
		if (prepare(&g, &p) != 0) {
			release(&g);
			goto out;
		}
		d[r] = regrun(&g, (uint16_t)p.port);
		if (g.resent || g.bad)
			note("  run %u: %u resent, %u unexpected replies",
			    r + 1, g.resent, g.bad);
		g.echo = 1;
		b[r] = regrun(&g, e.port);
		release(&g);
		note("  run %u: daemon %.0f registrations/s, echo %.0f "
		    "handshakes/s", r + 1, d[r], b[r]);
	}
	r1 = bd_stat(&p, "registered");
	{
		long long c = bd_stat(&p, "journal_commits");

		if (c > 0)
			note("  journal: %lld commits, %.1f registrations "
			    "each", c, (double)(r1 - r0) / (double)c);
	}
	if (r1 - r0 != (long long)(n * reps))
		note("  daemon registered %lld, %zu asked", r1 - r0, n * reps);
	md = stat_median(d, reps);
	mb = stat_median(b, reps);
	if (conf == bench_conf) {
		double us = sync_us(p.dir);

		if (us > 0)
			note("  fdatasync of a 200-byte append in the state "
			    "directory: %.0f us (each REGISTERED waits for one, "
			    "and for the one under way)", us);
	}
	snprintf(fig, sizeof(fig), "%.0f registrations/s", md);
	snprintf(bas, sizeof(bas), "%.0f handshakes/s (UDP echo, same "
	    "client)", mb);
	snprintf(rat, sizeof(rat), "%.2f", md / mb);
	result_add(name, fig, bas, rat, target, judged ? md / mb >= 0.5 : -1);
	rc = 0;
out:
	atomic_store(&e.stop, 1);
	pthread_join(e.thr, NULL);
	close(e.fd);
	bd_destroy(&p);
	return rc;
}

/* One run of n handshakes from user0, one at a time: their times, and
 * how late a sleeping thread woke up meanwhile (ms). */
static int
growth_run(struct mpd_proc *p, unsigned user0, size_t n, double *lat,
    double *late)
{
	struct regrun g;
	struct waker w;
	double rate;

	memset(&g, 0, sizeof(g));
	g.nsock = 1;
	g.n = n;
	g.user0 = user0;
	g.lat_ms = lat;
	if (prepare(&g, p) != 0) {
		release(&g);
		return -1;
	}
	if (waker_start(&w) != 0) {
		release(&g);
		return -1;
	}
	rate = regrun(&g, (uint16_t)p->port);
	*late = waker_stop(&w);
	release(&g);
	if (g.done < n || g.refused || g.bad)
		return fail("table growth: %zu of %zu handshakes, %u refused, "
		    "%u bad (log %s)", g.done, n, g.refused, g.bad, p->log);
	note("  %zu handshakes from user %u: %.0f/s, max %.3f ms", n, user0,
	    rate, stat_pct(lat, n, 100));
	return 0;
}

/* One daemon loaded to just under `full', n handshakes crossing it, n
 * more: the longest of each run (ms) in *mx, their p99 in *p99, the
 * page faults the daemon's loop thread took in each in *faults, a
 * sleeper's latest wake-up in each in *late. */
static int
growth_pair(unsigned full, size_t n, double *mx, double *p99,
    long long *faults, double *late)
{
	const unsigned loaded = full - 2000;
	long long f0, f1, f2;
	struct mpd_proc p;
	double *a = calloc(n, sizeof(*a)), *b = calloc(n, sizeof(*b));
	uint16_t port = 9;
	long long regs;
	int rc = -1;

	if (a == NULL || b == NULL)
		abort();
	memset(&p, 0, sizeof(p));
	if (bd_create(&p, bench_conf_nosync) != 0 ||
	    state_write(&p, 0, loaded, 1, &port, 1) != 0 ||
	    bd_start(&p, 60000) != 0 || check_regs(&p, loaded) != 0)
		goto out;
	f0 = loop_faults(p.pid);
	if (growth_run(&p, 50000000, n, a, &late[0]) != 0)
		goto out;
	f1 = loop_faults(p.pid);
	if (growth_run(&p, 50000000 + (unsigned)n, n, b, &late[1]) != 0)
		goto out;
	f2 = loop_faults(p.pid);
	faults[0] = f1 - f0;
	faults[1] = f2 - f1;
	if ((regs = bd_stat(&p, "registrations")) != (long long)(loaded +
	    2 * n))
		note("  daemon holds %lld registrations, %zu expected", regs,
		    loaded + 2 * n);
	mx[0] = stat_pct(a, n, 100);
	mx[1] = stat_pct(b, n, 100);
	p99[0] = stat_pct(a, n, 99);
	p99[1] = stat_pct(b, n, 99);
	rc = 0;
out:
	bd_destroy(&p);
	free(a);
	free(b);
	return rc;
}

/*
 * The longest handshake while the tables double, against the longest of
 * as many handshakes right after at that size.  One run's longest is the
 * machine's longest hiccup as often as the daemon's (a virtual machine
 * stops a thread for milliseconds now and then, see "stall from
 * persistence"'s control), so the figure is the median of the runs'
 * longest, each side, with a new daemon each run.
 */
int
bench_growth(void)
{
	const unsigned full = opts.quick ? 1u << 17 : 1u << 20;
	const unsigned reps = opts.quick ? 1 : 5;
	const size_t n = 4000;
	double amx[5], bmx[5], a99[5], b99[5], mx[2], p99[2], ma, mb;
	double alate[5], adj[2][5], late[2], ml, dadj;
	long long faults[2];
	char fig[200], bas[128], rat[48];
	unsigned r;

	note("table growth: %u registrations loaded, %zu handshakes one at a "
	    "time crossing %u, then %zu more; %u runs", full - 2000, n, full,
	    n, reps);
	for (r = 0; r < reps; r++) {
		if (growth_pair(full, n, mx, p99, faults, late) != 0)
			return -1;
		alate[r] = late[0];
		/* the longest handshake less the machine's hold in the same
		 * window: what the daemon itself took, at most */
		adj[0][r] = mx[0] > late[0] ? mx[0] - late[0] : 0;
		adj[1][r] = mx[1] > late[1] ? mx[1] - late[1] : 0;
		amx[r] = mx[0];
		bmx[r] = mx[1];
		a99[r] = p99[0];
		b99[r] = p99[1];
		note("  run %u: longest %.3f ms crossing, %.3f ms after; page "
		    "faults on the loop %lld crossing, %lld after; a sleeper "
		    "woke up %.3f ms late crossing, %.3f ms after", r + 1,
		    mx[0], mx[1], faults[0], faults[1], late[0], late[1]);
	}
	ma = stat_median(amx, reps);
	mb = stat_median(bmx, reps);
	ml = stat_median(alate, reps);
	dadj = stat_median(adj[0], reps) - stat_median(adj[1], reps);
	snprintf(fig, sizeof(fig), "longest handshake %.3f ms (p99 %.3f) "
	    "while the tables doubled past %u (median of %u runs; machine: a "
	    "sleeper woke %.1f ms late; without it %+.3f ms)", ma,
	    stat_median(a99, reps), full, reps, ml, dadj);
	snprintf(bas, sizeof(bas), "longest %.3f ms (p99 %.3f), the next "
	    "%zu at that size", mb, stat_median(b99, reps), n);
	snprintf(rat, sizeof(rat), "%+.3f ms", ma - mb);
	/* at the floor: the machine held a sleeping thread longer than the
	 * scheduler would (over 5 ms) while crossing, and with each window's
	 * hold taken off its longest handshake the crossing adds <= 1 ms */
	result_add("table growth", fig, bas, rat, "adds <= 1 ms",
	    ma - mb <= 1.0 ? 1 : ml > 5 && dadj <= 1.0 ? RESULT_FLOOR : 0);
	return 0;
}

int
bench_register(void)
{
	/* issue 13: what the v2 handshake costs the daemon (cookie, MACs,
	 * table), without the disk */
	if (register_rate(32, "registration rate (no fdatasync)", bench_conf_nosync,
	    "ratio >= 0.5", 1) != 0)
		return -1;
	/* the same with every REGISTERED after its fdatasync (the daemon's
	 * default); issue 14's target is the row after */
	if (register_rate(32, "durable registration rate, 32 in flight",
	    bench_conf, "reported (durable)", 0) != 0)
		return -1;
	/* issue 14: durable registrations, group commit at 256 in flight */
	return register_rate(256, "durable registration rate, 256 in flight",
	    bench_conf, "ratio >= 0.5", 1);
}
