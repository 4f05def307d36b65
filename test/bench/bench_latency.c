/*
 * bench_latency.c: daemon latency at 10,000 events/s, against a trivial
 * relay measured the same way in the same run (the machine's floor), and
 * the paced sender and push receiver the state benchmark uses too.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
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

/*
 * Daemon latency: events at a fixed rate, each for another user whose one
 * registration points at our socket; latency from just before send(2) to
 * the kernel's receive time stamp of the push (both CLOCK_REALTIME).
 *
 * The baseline is the floor of the machine: a relay process that does
 * nothing but read each event from a UNIX datagram socket and send it on
 * as a UDP datagram to the same receiver, run the same way with the same
 * events after each of the daemon's runs.  What delays the relay (the
 * scheduler, other tasks, the VM) delays the daemon as much.
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
		if (l->raw != NULL) {
			size_t i = l->first + u;

			if (len == l->raw->len[i] &&
			    memcmp(buf, l->raw->buf + i * EVSLOT, len) == 0)
				return (long)i;
			continue;
		}
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
			/* kept as it came; opened after the run, so that
			 * this thread does no more during the run than the
			 * relay's receiver (lat_collect) */
			if (l->npend == l->cap) {
				l->cap = l->cap ? l->cap * 2 : 4096;
				l->pend = realloc(l->pend, l->cap *
				    sizeof(*l->pend));
				if (l->pend == NULL)
					abort();
			}
			l->pend[l->npend].ts = ts;
			l->pend[l->npend].len = msgs[i].msg_len <
			    sizeof(l->pend[0].buf) ? msgs[i].msg_len : 0;
			memcpy(l->pend[l->npend].buf, buf[i],
			    l->pend[l->npend].len);
			l->npend++;
			l->got++;
		}
	}
}

/* Open what arrived, in order: each push is opened as a client would; it
 * is for one of the next users not yet heard from (events go out in user
 * order). */
static void
lat_resolve(struct lat *l)
{
	size_t k;
	long who;

	for (k = 0; k < l->npend; k++) {
		who = lat_user(l, l->pend[k].buf, l->pend[k].len);
		if (who < 0)
			l->bad++;
		else
			l->t_recv[who - l->first] = l->pend[k].ts;
	}
	l->npend = 0;
}

/*
 * The receiving socket of a latency run (l->fd), with the kernel's receive
 * time stamps, on 127.0.0.1:*port; the calling thread's timer slack at
 * 1 ns, so its ppoll wakes on time.  -1 (the run fails) on error.
 */
int
lat_socket(struct lat *l, uint16_t *port)
{
	int on = 1;

	prctl(PR_SET_TIMERSLACK, 1UL);
	if ((l->fd = udp_socket(port, 16 << 20)) == -1)
		return fail("socket: %s", strerror(errno));
	if (setsockopt(l->fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on))
	    == -1)
		return fail("SO_TIMESTAMPNS: %s", strerror(errno));
	return 0;
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
lat_collect(struct lat *l, const uint64_t *t_send, unsigned from,
    unsigned n, double *lat)
{
	unsigned i, nl = 0;

	lat_resolve(l);
	for (i = from; i < from + n; i++)
		if (l->t_recv[i] != 0)
			lat[nl++] = (double)(int64_t)(l->t_recv[i] - t_send[i]) /
			    1e6;
	return nl;
}

/* The relay: each event read on ufd goes to 127.0.0.1:port as it is. */
static pid_t
relay_start(int ufd, uint16_t port)
{
	struct sockaddr_in to;
	uint8_t buf[EVENT_MAX_LEN + 1];
	ssize_t len;
	pid_t pid;
	int ofd;

	if ((pid = fork()) != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	memset(&to, 0, sizeof(to));
	to.sin_family = AF_INET;
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	to.sin_port = htons(port);
	if ((ofd = socket(AF_INET, SOCK_DGRAM, 0)) == -1)
		_exit(1);
	for (;;) {
		if ((len = recv(ufd, buf, sizeof(buf), 0)) == -1) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		sendto(ofd, buf, (size_t)len, 0, (struct sockaddr *)&to,
		    sizeof(to));
	}
}

/* One relay run over events [from, from + n); its percentiles. */
static int
relay_run(int evfd, const struct evset *ev, struct lat *lr, uint64_t *t_send,
    unsigned from, unsigned n, pid_t relay, pid_t daemon, double *pct,
    double *lat)
{
	struct tail_tasks *tt;
	char others[512];
	unsigned nl;

	memset(lr->t_recv + from, 0, n * sizeof(*lr->t_recv));
	lr->next = from;
	tt = tail_tasks_begin(relay, daemon);
	paced_run(evfd, ev, from, from + n, 10000, t_send + from, lr, 1000);
	tail_tasks_end(tt, others, sizeof(others));
	if ((nl = lat_collect(lr, t_send, from, n, lat)) == 0)
		return fail("the relay passed on no event");
	pct[0] = stat_pct(lat, nl, 99);
	pct[1] = stat_pct(lat, nl, 99.9);
	pct[2] = stat_pct(lat, nl, 100);
	note("  relay %u of %u: p99 %.3f ms, p99.9 %.3f ms, max %.3f ms; %s",
	    nl, n, pct[0], pct[1], pct[2], others);
	return 0;
}

int
bench_latency(void)
{
	const unsigned rate = 10000, warm = 1000;
	const unsigned n = opts.quick ? 5000 : 15000, runs = opts.quick ? 1 : 5;
	const unsigned total = warm + n * runs;
	struct mpd_proc p;
	struct evset ev;
	struct lat l, lr;
	struct tail_tasks *tt;
	uint64_t *t_send = NULL, *t_relay = NULL;
	double *lat = NULL, achieved, p50[REPS_MAX], p99[REPS_MAX];
	double p999[REPS_MAX], mx = 0, m50, m99, m999;
	double r99[REPS_MAX], r999[REPS_MAX], rmx = 0, pct[3] = { 0, 0, 0 };
	unsigned *u = NULL, i, r, nl, lost = 0;
	long vol0, inv0, vol1, inv1;
	long long flt0, flt1;
	uint16_t port;
	char fig[128], bas[128], rat[48], others[512], rpath[128];
	int evfd = -1, rfd = -1, rsend = -1, rc = -1;
	pid_t relay = -1;

	note("daemon latency: %u runs of %u events at %u/s, one user each",
	    runs, n, rate);
	memset(&p, 0, sizeof(p));
	memset(&ev, 0, sizeof(ev));
	memset(&l, 0, sizeof(l));
	memset(&lr, 0, sizeof(lr));
	l.fd = -1;
	if (lat_socket(&l, &port) != 0)
		goto out;
	u = seq_users(0, total);
	l.t_recv = calloc(total, sizeof(*l.t_recv));
	t_send = calloc(total, sizeof(*t_send));
	t_relay = calloc(total, sizeof(*t_relay));
	lr.t_recv = calloc(total, sizeof(*lr.t_recv));
	lat = calloc(n, sizeof(*lat));
	if (l.t_recv == NULL || t_send == NULL || lat == NULL ||
	    t_relay == NULL || lr.t_recv == NULL)
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
	/* the relay, on the same events, to the same receiver */
	snprintf(rpath, sizeof(rpath), "%s/relay.sock", p.dir);
	if ((rfd = unix_dgram_bound(rpath, 4 << 20)) == -1 ||
	    (rsend = event_connect(rpath)) == -1) {
		fail("relay socket %s: %s", rpath, strerror(errno));
		goto out;
	}
	if ((relay = relay_start(rfd, port)) == -1) {
		fail("fork: %s", strerror(errno));
		goto out;
	}
	lr.fd = l.fd;
	lr.n = total;
	lr.raw = &ev;
	paced_run(evfd, &ev, 0, warm, rate, t_send, &l, 200);
	for (r = 0; r < runs; r++) {
		unsigned from = warm + r * n;

		tail_ctxt(p.pid, &vol0, &inv0);
		flt0 = loop_faults(p.pid);
		tt = tail_tasks_begin(p.pid, relay);
		achieved = paced_run(evfd, &ev, from, from + n, rate,
		    t_send + from, &l, 1000);
		tail_tasks_end(tt, others, sizeof(others));
		tail_ctxt(p.pid, &vol1, &inv1);
		flt1 = loop_faults(p.pid);
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
		    "%.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms; page "
		    "faults on the loop %lld", r + 1, achieved, nl, n, p50[r],
		    p99[r], p999[r], stat_pct(lat, nl, 100), flt1 - flt0);
		tail_explain(r + 1, t_send, l.t_recv, from, n, inv1 - inv0,
		    others);
		if (relay_run(rsend, &ev, &lr, t_relay, from, n, relay, p.pid, pct,
		    lat) != 0)
			goto out;
		r99[r] = pct[0];
		r999[r] = pct[1];
		if (pct[2] > rmx)
			rmx = pct[2];
	}
	m50 = stat_median(p50, runs);
	m99 = stat_median(p99, runs);
	m999 = stat_median(p999, runs);
	snprintf(fig, sizeof(fig), "p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms "
	    "(median of %u runs; max %.3f; %u lost)", m50, m99, m999, runs,
	    mx, lost);
	snprintf(bas, sizeof(bas), "relay: p99 %.3f ms, p99.9 %.3f ms "
	    "(max %.3f)", stat_median(r99, runs), stat_median(r999, runs),
	    rmx);
	snprintf(rat, sizeof(rat), "%u events/s", rate);
	result_add("daemon latency", fig, bas, rat,
	    "p99 <= 0.25 ms, p99.9 <= 1 ms", m99 <= 0.25 && m999 <= 1.0 &&
	    lost == 0);
	rc = 0;
out:
	if (relay > 0) {
		kill(relay, SIGKILL);
		waitpid(relay, NULL, 0);
	}
	if (evfd != -1)
		close(evfd);
	if (rfd != -1)
		close(rfd);
	if (rsend != -1)
		close(rsend);
	if (l.fd != -1)
		close(l.fd);
	evset_free(&ev);
	free(u);
	free(l.t_recv);
	free(l.pend);
	free(lr.t_recv);
	free(lr.pend);
	free(t_relay);
	free(l.token);
	free(t_send);
	free(lat);
	bd_destroy(&p);
	return rc;
}
