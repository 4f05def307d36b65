/*
 * bench_push.c: the daemon's side of events and pushes: push throughput,
 * event intake and daemon latency at 10,000 events/s.  Memory per
 * registration and the cost of an event as the table grows:
 * bench_memory.c.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "bench.h"
#include "event.h"
#include "proto.h"

#define REPS_MAX	16
#define PUSH_LEN	PROTO_PUSH_LEN(BENCH_CTX_LEN)

unsigned *
seq_users(unsigned first, size_t n)
{
	unsigned *u = malloc(n * sizeof(*u));
	size_t i;

	if (u == NULL)
		abort();
	for (i = 0; i < n; i++)
		u[i] = first + (unsigned)i;
	return u;
}

int
check_regs(struct mpd_proc *p, long long want)
{
	long long n = bd_stat(p, "registrations");

	if (n != want)
		return fail("daemon holds %lld registrations, %lld written to "
		    "its state file (log %s)", n, want, p->log);
	return 0;
}

/*
 * Push throughput: one event for each of `users' users with 8
 * registrations each (8 sinks); the baseline is a sendmmsg blaster of
 * datagrams of the same size to the same sinks, in batches of 64 as the
 * daemon sends them.
 */
static size_t
blast(int fd, const struct sink *s, size_t count)
{
	struct mmsghdr msgs[64];
	struct iovec iov[64];
	struct sockaddr_in to[64];
	uint8_t payload[PUSH_LEN];
	size_t sent = 0;
	int i, rc;

	randombytes_buf(payload, sizeof(payload));
	for (i = 0; i < 64; i++) {
		memset(&to[i], 0, sizeof(to[i]));
		to[i].sin_family = AF_INET;
		to[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		to[i].sin_port = htons(s->port[i % s->n]);
		iov[i].iov_base = payload;
		iov[i].iov_len = sizeof(payload);
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_name = &to[i];
		msgs[i].msg_hdr.msg_namelen = sizeof(to[i]);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	while (sent < count) {
		unsigned n = count - sent < 64 ? (unsigned)(count - sent) : 64;

		if ((rc = sendmmsg(fd, msgs, n, 0)) == -1) {
			if (errno == EINTR)
				continue;
			fail("sendmmsg: %s", strerror(errno));
			break;
		}
		sent += (size_t)rc;
	}
	return sent;
}

int
bench_push(void)
{
	const unsigned users = opts.quick ? 1000 : 6000, warm = 200;
	const unsigned reps = opts.quick ? 1 : 7, per = 8;
	struct mpd_proc p;
	struct sink s;
	struct evset ev;
	double d[REPS_MAX], b[REPS_MAX], c[REPS_MAX], md, mb;
	unsigned *u, r;
	uint64_t t0, c0, base, got;
	long long pushes;
	char fig[96], bas[96], rat[48];
	int evfd = -1, bfd = -1, rc = -1, sbuf = 16 << 20;
	uint16_t bport;

	note("push throughput: %u users x %u registrations, one event each, "
	    "%u runs", users, per, reps);
	memset(&p, 0, sizeof(p));
	memset(&ev, 0, sizeof(ev));
	if (sink_open(&s, per) != 0)
		return -1;
	u = seq_users(0, warm + users * reps);
	if (bd_create(&p, bench_conf) != 0 ||
	    state_write(&p, 0, warm + users * reps, per, s.port, per) != 0 ||
	    bd_start(&p, 60000) != 0 ||
	    check_regs(&p, (long long)(warm + users * reps) * per) != 0)
		goto out;
	if (evset_make(&ev, warm + users * reps, u) != 0)
		goto out;
	if ((evfd = event_connect(p.events)) == -1) {
		fail("event socket %s: %s", p.events, strerror(errno));
		goto out;
	}
	if ((bfd = udp_socket(&bport, 0)) == -1 ||
	    setsockopt(bfd, SOL_SOCKET, SO_SNDBUF, &sbuf, sizeof(sbuf)) == -1) {
		fail("blaster socket: %s", strerror(errno));
		goto out;
	}
	/* warm up both paths */
	base = atomic_load(&s.total);
	evset_send(evfd, &ev, 0, warm);
	sink_wait(&s, base + warm * per, 500, 10000);
	base = atomic_load(&s.total);
	blast(bfd, &s, warm * per);
	sink_wait(&s, base + warm * per, 500, 10000);

	for (r = 0; r < reps; r++) {
		size_t from = warm + r * users;

		base = atomic_load(&s.total);
		c0 = cpu_ns(p.pid);
		t0 = mono_ns();
		evset_send(evfd, &ev, from, from + users);
		got = sink_wait(&s, base + users * per, 500, 30000) - base;
		c[r] = (double)(cpu_ns(p.pid) - c0) / (users * per) / 1e3;
		d[r] = (double)got / ((double)(atomic_load(&s.total_last_ns) -
		    t0) / 1e9);
		if (got < users * per)
			note("  run %u: %llu of %u pushes arrived", r + 1,
			    (unsigned long long)got, users * per);

		base = atomic_load(&s.total);
		t0 = mono_ns();
		blast(bfd, &s, users * per);
		got = sink_wait(&s, base + users * per, 500, 30000) - base;
		b[r] = (double)got / ((double)(atomic_load(&s.total_last_ns) -
		    t0) / 1e9);
		if (got < users * per)
			note("  run %u: %llu of %u blasted datagrams arrived",
			    r + 1, (unsigned long long)got, users * per);
		note("  run %u: daemon %.0f pushes/s (%.2f us CPU each), "
		    "blaster %.0f datagrams/s", r + 1, d[r], c[r], b[r]);
	}
	pushes = bd_stat(&p, "pushes");
	if (pushes != (long long)(warm + users * reps) * per)
		note("  daemon counted %lld pushes, %u expected", pushes,
		    (warm + users * reps) * per);
	md = stat_median(d, reps);
	mb = stat_median(b, reps);
	note("  median: daemon %.0f pushes/s, %.2f us daemon CPU per push",
	    md, stat_median(c, reps));
	snprintf(fig, sizeof(fig), "%.0f pushes/s", md);
	snprintf(bas, sizeof(bas), "%.0f datagrams/s (sendmmsg blaster)", mb);
	snprintf(rat, sizeof(rat), "%.2f", md / mb);
	result_add("push throughput", fig, bas, rat, "ratio >= 0.6",
	    md / mb >= 0.6);
	rc = 0;
out:
	if (evfd != -1)
		close(evfd);
	if (bfd != -1)
		close(bfd);
	evset_free(&ev);
	free(u);
	bd_destroy(&p);
	sink_close(&s);
	return rc;
}

/*
 * Event intake: events for 1,000 users who have just had a push (with
 * min_push_interval = 1h every event is taken, counted and coalesced, and
 * nothing is sent), then one event for a fresh user: its push marks the
 * moment the daemon has taken everything before it.  The baseline is a plain UNIX
 * datagram receiver on the same kind of socket, fed by the same sender.
 */
struct recv_arg {
	int		fd;
	size_t		want;
	uint64_t	done_ns;
	size_t		got;
};

static void *
recv_main(void *arg)
{
	struct recv_arg *a = arg;
	uint8_t buf[EVENT_MAX_LEN + 1];

	while (a->got < a->want) {
		if (recv(a->fd, buf, sizeof(buf), 0) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		a->got++;
	}
	a->done_ns = mono_ns();
	return NULL;
}

static int
unix_dgram_bound(const char *path, int rcvbuf)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	unlink(path);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

int
bench_intake(void)
{
	const unsigned bulk = 1000, reps = opts.quick ? 1 : 5;
	const size_t n = opts.quick ? 20000 : 60000;
	struct mpd_proc p;
	struct sink s;
	struct evset ev, mk;
	struct recv_arg ra;
	pthread_t thr;
	double d[REPS_MAX], b[REPS_MAX], c[REPS_MAX], md, mb;
	unsigned *u = NULL, *m = NULL, r;
	uint64_t t0, c0, base;
	long long in0, in1;
	char fig[96], bas[96], rat[48], path[160];
	int evfd = -1, rc = -1, bfd = -1, bsend = -1;
	size_t i;

	note("event intake: %zu events per run for %u users, %u runs", n, bulk,
	    reps);
	memset(&p, 0, sizeof(p));
	memset(&ev, 0, sizeof(ev));
	memset(&mk, 0, sizeof(mk));
	if (sink_open(&s, 1) != 0)
		return -1;
	if ((u = malloc((n + bulk) * sizeof(*u))) == NULL)
		abort();
	for (i = 0; i < bulk; i++)
		u[i] = (unsigned)i;		/* warm-up: one push each */
	for (i = 0; i < n; i++)
		u[bulk + i] = (unsigned)(i % bulk);
	m = seq_users(bulk, reps);		/* the markers */
	if (bd_create(&p, bench_conf_coalesce) != 0 ||
	    state_write(&p, 0, bulk + reps, 1, s.port, 1) != 0 ||
	    bd_start(&p, 60000) != 0 || check_regs(&p, bulk + reps) != 0 ||
	    evset_make(&ev, n + bulk, u) != 0 || evset_make(&mk, reps, m) != 0)
		goto out;
	if ((evfd = event_connect(p.events)) == -1) {
		fail("event socket %s: %s", p.events, strerror(errno));
		goto out;
	}
	evset_send(evfd, &ev, 0, bulk);
	if (sink_wait(&s, bulk, 500, 10000) < bulk) {
		fail("warm-up pushes did not arrive (log %s)", p.log);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/baseline.sock", p.dir);
	in0 = bd_stat(&p, "events_in");
	for (r = 0; r < reps; r++) {
		base = atomic_load(&s.total);
		c0 = cpu_ns(p.pid);
		t0 = mono_ns();
		evset_send(evfd, &ev, bulk, bulk + n);
		evset_send(evfd, &mk, r, r + 1);
		if (sink_wait(&s, base + 1, 2000, 30000) < base + 1) {
			fail("the marker push did not arrive (log %s)", p.log);
			goto out;
		}
		c[r] = (double)(cpu_ns(p.pid) - c0) / (n + 1) / 1e3;
		d[r] = (double)(n + 1) /
		    ((double)(atomic_load(&s.total_last_ns) - t0) / 1e9);

		if ((bfd = unix_dgram_bound(path, 8 << 20)) == -1 ||
		    (bsend = event_connect(path)) == -1) {
			fail("baseline socket %s: %s", path, strerror(errno));
			goto out;
		}
		memset(&ra, 0, sizeof(ra));
		ra.fd = bfd;
		ra.want = n + 1;
		if (pthread_create(&thr, NULL, recv_main, &ra) != 0) {
			fail("pthread_create failed");
			goto out;
		}
		t0 = mono_ns();
		evset_send(bsend, &ev, bulk, bulk + n);
		evset_send(bsend, &mk, r, r + 1);
		pthread_join(thr, NULL);
		close(bsend);
		close(bfd);
		bsend = bfd = -1;
		b[r] = (double)(n + 1) / ((double)(ra.done_ns - t0) / 1e9);
		note("  run %u: daemon %.0f events/s (%.2f us CPU each), plain "
		    "pair %.0f events/s", r + 1, d[r], c[r], b[r]);
	}
	in1 = bd_stat(&p, "events_in");
	if (in1 - in0 != (long long)((n + 1) * reps))
		note("  daemon took %lld events, %zu sent", in1 - in0,
		    (n + 1) * reps);
	md = stat_median(d, reps);
	mb = stat_median(b, reps);
	note("  median: daemon %.0f events/s, %.2f us daemon CPU per event",
	    md, stat_median(c, reps));
	snprintf(fig, sizeof(fig), "%.0f events/s", md);
	snprintf(bas, sizeof(bas), "%.0f events/s (plain UNIX dgram pair)",
	    mb);
	snprintf(rat, sizeof(rat), "%.2f", md / mb);
	result_add("event intake", fig, bas, rat, "ratio >= 0.5",
	    md / mb >= 0.5);
	rc = 0;
out:
	if (evfd != -1)
		close(evfd);
	if (bfd != -1)
		close(bfd);
	if (bsend != -1)
		close(bsend);
	evset_free(&ev);
	evset_free(&mk);
	free(u);
	free(m);
	bd_destroy(&p);
	sink_close(&s);
	return rc;
}

/*
 * Daemon latency: events at a fixed rate, each for another user whose one
 * registration points at our socket; latency from just before send(2) to
 * the kernel's receive time stamp of the push (both CLOCK_REALTIME).
 */

#define LAT_WINDOW	64

static long
lat_user(struct lat *l, const uint8_t *buf, size_t len)
{
	uint8_t key[32];
	unsigned u, tries = 0;
	long who;

	while (l->next < l->n && l->t_recv[l->next] != 0)
		l->next++;
	for (u = l->next; u < l->n && tries < LAT_WINDOW; u++) {
		if (l->t_recv[u] != 0)
			continue;
		tries++;
		bench_push_key(l->token[u], key);
		if ((who = push_user(buf, len, key)) == (long)(l->first + u))
			return who;
	}
	return -1;
}

void
lat_drain(struct lat *l)
{
	uint8_t buf[16][256];
	union {
		struct cmsghdr	h;
		char		b[CMSG_SPACE(sizeof(struct timespec))];
	} cm[16];
	struct mmsghdr msgs[16];
	struct iovec iov[16];
	int i, rc;

	for (;;) {
		for (i = 0; i < 16; i++) {
			iov[i].iov_base = buf[i];
			iov[i].iov_len = sizeof(buf[i]);
			memset(&msgs[i], 0, sizeof(msgs[i]));
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_control = cm[i].b;
			msgs[i].msg_hdr.msg_controllen = sizeof(cm[i].b);
		}
		if ((rc = recvmmsg(l->fd, msgs, 16, MSG_DONTWAIT, NULL)) <= 0)
			return;
		for (i = 0; i < rc; i++) {
			struct cmsghdr *c;
			uint64_t ts = 0;
			long who;

			for (c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c != NULL;
			    c = CMSG_NXTHDR(&msgs[i].msg_hdr, c))
				if (c->cmsg_level == SOL_SOCKET &&
				    c->cmsg_type == SCM_TIMESTAMPNS) {
					struct timespec t;

					memcpy(&t, CMSG_DATA(c), sizeof(t));
					ts = (uint64_t)t.tv_sec * 1000000000ULL +
					    (uint64_t)t.tv_nsec;
				}
			if (ts == 0)
				ts = real_ns();
			/* every push is opened as a client would; it is
			 * for one of the next users not yet heard from
			 * (events go out in user order) */
			who = lat_user(l, buf[i], msgs[i].msg_len);
			if (who < 0) {
				l->bad++;
				continue;
			}
			l->t_recv[who - l->first] = ts;
			l->got++;
		}
	}
}

/*
 * Send events [from, to) of ev at `rate' per second, receiving pushes in
 * between; t_send[i] is the CLOCK_REALTIME just before the send.  Waits
 * up to drain_ms after the last send.  Returns the achieved send rate.
 */
double
paced_run(int evfd, const struct evset *ev, size_t from, size_t to,
    unsigned rate, uint64_t *t_send, struct lat *l, int drain_ms)
{
	uint64_t interval = 1000000000ULL / rate, next, now, first = 0, last = 0;
	uint64_t drain_until = 0;
	struct pollfd pfd = { l->fd, POLLIN, 0 };
	size_t i = from, got0 = l->got;

	next = mono_ns() + 1000000;
	for (;;) {
		struct timespec ts;
		uint64_t wait;

		now = mono_ns();
		if (i < to && now >= next) {
			t_send[i - from] = real_ns();
			if (send(evfd, ev->buf + i * EVSLOT, ev->len[i], 0) ==
			    -1 && errno == EINTR)
				continue;
			if (first == 0)
				first = now;
			last = now;
			i++;
			next += interval;
			if (i == to)
				drain_until = now + (uint64_t)drain_ms * 1000000;
			continue;
		}
		if (i == to && (l->got - got0 >= to - from ||
		    now >= drain_until))
			break;
		wait = i < to ? next - now : drain_until - now;
		ts.tv_sec = (time_t)(wait / 1000000000ULL);
		ts.tv_nsec = (long)(wait % 1000000000ULL);
		if (ppoll(&pfd, 1, &ts, NULL) > 0)
			lat_drain(l);
	}
	return last > first ? (double)(to - from - 1) /
	    ((double)(last - first) / 1e9) : 0;
}

/* The latencies of events [from, from + n) that got their push, in ms. */
unsigned
lat_collect(const struct lat *l, const uint64_t *t_send, unsigned from,
    unsigned n, double *lat)
{
	unsigned i, nl = 0;

	for (i = from; i < from + n; i++)
		if (l->t_recv[i] != 0)
			lat[nl++] = (double)(int64_t)(l->t_recv[i] - t_send[i]) /
			    1e6;
	return nl;
}

int
bench_latency(void)
{
	const unsigned rate = 10000, warm = 1000;
	const unsigned n = opts.quick ? 5000 : 15000, runs = opts.quick ? 1 : 5;
	const unsigned total = warm + n * runs;
	struct mpd_proc p;
	struct evset ev;
	struct lat l;
	uint64_t *t_send = NULL;
	double *lat = NULL, achieved, p50[REPS_MAX], p99[REPS_MAX];
	double p999[REPS_MAX], mx = 0, m50, m99, m999;
	unsigned *u = NULL, i, r, nl, lost = 0;
	long vol0, inv0, vol1, inv1;
	uint16_t port;
	char fig[128], rat[48];
	int evfd = -1, on = 1, rc = -1;

	note("daemon latency: %u runs of %u events at %u/s, one user each",
	    runs, n, rate);
	memset(&p, 0, sizeof(p));
	memset(&ev, 0, sizeof(ev));
	memset(&l, 0, sizeof(l));
	l.fd = -1;
	prctl(PR_SET_TIMERSLACK, 1UL);
	if ((l.fd = udp_socket(&port, 16 << 20)) == -1 ||
	    setsockopt(l.fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on))
	    == -1) {
		fail("socket: %s", strerror(errno));
		goto out;
	}
	u = seq_users(0, total);
	l.t_recv = calloc(total, sizeof(*l.t_recv));
	t_send = calloc(total, sizeof(*t_send));
	lat = calloc(n, sizeof(*lat));
	if (l.t_recv == NULL || t_send == NULL || lat == NULL)
		abort();
	l.first = 0;
	l.n = total;
	if ((l.token = malloc(total * sizeof(*l.token))) == NULL)
		abort();
	if (bd_create(&p, bench_conf) != 0 ||
	    state_write(&p, 0, total, 1, &port, 1) != 0 ||
	    bd_start(&p, 60000) != 0 || check_regs(&p, total) != 0 ||
	    evset_make(&ev, total, u) != 0)
		goto out;
	for (i = 0; i < total; i++) {
		char user[32];

		snprintf(user, sizeof(user), BENCH_USER_FMT, i);
		mpd_token(&p, user, l.token[i]);
	}
	if ((evfd = event_connect(p.events)) == -1) {
		fail("event socket %s: %s", p.events, strerror(errno));
		goto out;
	}
	paced_run(evfd, &ev, 0, warm, rate, t_send, &l, 200);
	for (r = 0; r < runs; r++) {
		unsigned from = warm + r * n;

		tail_ctxt(p.pid, &vol0, &inv0);
		achieved = paced_run(evfd, &ev, from, from + n, rate,
		    t_send + from, &l, 1000);
		tail_ctxt(p.pid, &vol1, &inv1);
		nl = lat_collect(&l, t_send, from, n, lat);
		if (nl == 0 || l.bad != 0) {
			fail("%zu pushes with a bad MAC, %u good (log %s)",
			    l.bad, nl, p.log);
			goto out;
		}
		lost += n - nl;
		if (opts.verbose) {
			/* where the slow ones fall: clustered (the daemon or
			 * this process was off the CPU) or scattered */
			double lim = stat_pct(lat, nl, 99.9);

			for (i = from; i < from + n; i++)
				if (l.t_recv[i] != 0 &&
				    (double)(int64_t)(l.t_recv[i] -
				    t_send[i]) / 1e6 >= lim)
					note("    event %u at +%.3f ms: %.3f ms",
					    i - from, (double)(t_send[i] -
					    t_send[from]) / 1e6,
					    (double)(int64_t)(l.t_recv[i] -
					    t_send[i]) / 1e6);
		}
		p50[r] = stat_pct(lat, nl, 50);
		p99[r] = stat_pct(lat, nl, 99);
		p999[r] = stat_pct(lat, nl, 99.9);
		if (stat_pct(lat, nl, 100) > mx)
			mx = stat_pct(lat, nl, 100);
		note("  run %u: sent at %.0f/s; %u of %u pushes arrived; p50 "
		    "%.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms", r + 1,
		    achieved, nl, n, p50[r], p99[r], p999[r],
		    stat_pct(lat, nl, 100));
		tail_explain(r + 1, t_send, l.t_recv, from, n, inv1 - inv0);
	}
	m50 = stat_median(p50, runs);
	m99 = stat_median(p99, runs);
	m999 = stat_median(p999, runs);
	snprintf(fig, sizeof(fig), "p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms "
	    "(median of %u runs; max %.3f; %u lost)", m50, m99, m999, runs,
	    mx, lost);
	snprintf(rat, sizeof(rat), "%u events/s", rate);
	result_add("daemon latency", fig, "-", rat,
	    "p99 <= 0.25 ms, p99.9 <= 1 ms", m99 <= 0.25 && m999 <= 1.0 &&
	    lost == 0);
	rc = 0;
out:
	if (evfd != -1)
		close(evfd);
	if (l.fd != -1)
		close(l.fd);
	evset_free(&ev);
	free(u);
	free(l.t_recv);
	free(l.token);
	free(t_send);
	free(lat);
	bd_destroy(&p);
	return rc;
}
