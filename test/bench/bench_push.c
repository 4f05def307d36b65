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
 *
 * A second blaster seals every datagram as the protocol requires before
 * sending it, with nothing else of the daemon's work: per user the token
 * (HMAC-SHA256 under a server key whose keyed state is made once), the
 * push key and its HChaCha20 subkey, then per datagram the AEAD.  Its
 * rate against the plain blaster's is the ceiling of the push ratio on
 * the machine; the daemon's against it, what the rest of its work
 * (intake, lookups, journal, timers) costs.
 *
 * The floor (bench_floor.c) also reads the events, from the same sender
 * on the same kind of socket, and seals and sends their pushes, and does
 * nothing else: what a notifier cannot avoid.  The daemon's rate against
 * it is what the table, the limits and the journal cost.
 */
static void
seal_batch(struct sealer *z, uint8_t (*buf)[PUSH_LEN], unsigned n,
    unsigned per)
{
	static uint8_t subkey[32];
	char name[32];
	unsigned i;
	int len;

	for (i = 0; i < n; i++) {
		if (z->counter % per == 0) {	/* the next user */
			len = snprintf(name, sizeof(name), "u%u", z->user++);
			sealer_user(z, name, (size_t)len, subkey);
		}
		sealer_seal(z, subkey, 1, buf[i]);
	}
}

static size_t
blast(int fd, const struct sink *s, size_t count, struct sealer *z,
    unsigned per)
{
	static uint8_t payload[64][PUSH_LEN];
	struct mmsghdr msgs[64];
	struct iovec iov[64];
	struct sockaddr_in to[64];
	size_t sent = 0;
	int i, rc;

	randombytes_buf(payload, sizeof(payload));
	for (i = 0; i < 64; i++) {
		memset(&to[i], 0, sizeof(to[i]));
		to[i].sin_family = AF_INET;
		to[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		to[i].sin_port = htons(s->port[i % s->n]);
		iov[i].iov_base = payload[i];
		iov[i].iov_len = sizeof(payload[i]);
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_name = &to[i];
		msgs[i].msg_hdr.msg_namelen = sizeof(to[i]);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	while (sent < count) {
		unsigned n = count - sent < 64 ? (unsigned)(count - sent) : 64;

		if (z != NULL)
			seal_batch(z, payload, n, per);
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

/* One blaster run of count datagrams: rate at the sinks, thread CPU each */
static void
blast_run(int fd, struct sink *s, size_t count, struct sealer *z,
    unsigned per, unsigned run, double *rate, double *us)
{
	uint64_t base = atomic_load(&s->total), t0, c0, got;

	c0 = thread_cpu_ns();
	t0 = mono_ns();
	blast(fd, s, count, z, per);
	*us = (double)(thread_cpu_ns() - c0) / (double)count / 1e3;
	got = sink_wait(s, base + count, 500, 30000) - base;
	*rate = (double)got / ((double)(atomic_load(&s->total_last_ns) - t0) /
	    1e9);
	if (got < count)
		note("  run %u: %llu of %zu %s datagrams arrived", run,
		    (unsigned long long)got, count, z ? "sealed" : "blasted");
}

/* User and system clock ticks of a thread so far (proc(5)). */
static void
ticks(pid_t pid, pid_t tid, long long t[2])
{
	t[0] = task_stat(pid, tid, 14);
	t[1] = task_stat(pid, tid, 15);
}

/* Add what the thread ran in user and system mode since `from' to acc. */
static void
ticks_add(pid_t pid, pid_t tid, const long long from[2], long long acc[2])
{
	long long now[2];

	ticks(pid, tid, now);
	acc[0] += now[0] - from[0];
	acc[1] += now[1] - from[1];
}

/* One run of the floor: the daemon's events [from, from + users) */
static void
floor_run(int fd, struct floor *fl, struct sink *s, const struct evset *ev,
    size_t from, unsigned users, unsigned run, double *rate, double *us)
{
	uint64_t base = atomic_load(&s->total), t0, c0, got;
	size_t want = (size_t)users * fl->per;

	c0 = floor_cpu_ns(fl);
	t0 = mono_ns();
	evset_send(fd, ev, from, from + users);
	got = sink_wait(s, base + want, 500, 30000) - base;
	*us = (double)(floor_cpu_ns(fl) - c0) / (double)want / 1e3;
	*rate = (double)got / ((double)(atomic_load(&s->total_last_ns) - t0) /
	    1e9);
	if (got < want)
		note("  run %u: %llu of %zu floor pushes arrived", run,
		    (unsigned long long)got, want);
}

int
bench_push(void)
{
	const unsigned users = opts.quick ? 1000 : 6000, warm = 200;
	const unsigned reps = opts.quick ? 1 : 7, per = 8;
	struct mpd_proc p;
	struct sink s;
	struct evset ev;
	double d[REPS_MAX], b[REPS_MAX], c[REPS_MAX], bc[REPS_MAX];
	double e[REPS_MAX], ec[REPS_MAX], f[REPS_MAX], fc[REPS_MAX];
	double md, mb, me, mf;
	struct sealer z;
	struct floor fl;
	char flpath[108];
	int flfd = -1;
	unsigned *u, r;
	uint64_t t0, c0, base, got;
	long long pushes;
	char fig[96], bas[96], rat[48];
	int evfd = -1, bfd = -1, rc = -1, sbuf = 16 << 20;
	uint16_t bport;
	long long t0d[2], t0f[2], dt[2] = { 0, 0 }, ft[2] = { 0, 0 };
	double us_tick = 1e6 / (double)sysconf(_SC_CLK_TCK);

	note("push throughput: %u users x %u registrations, one event each, "
	    "%u runs", users, per, reps);
	memset(&p, 0, sizeof(p));
	memset(&ev, 0, sizeof(ev));
	memset(&fl, 0, sizeof(fl));
	fl.in = fl.out = -1;
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
	snprintf(flpath, sizeof(flpath), "%s/floor.sock", p.dir);
	if (floor_open(&fl, &s, per, flpath) != 0)
		goto out;
	if ((flfd = event_connect(flpath)) == -1) {
		fail("push floor socket %s: %s", flpath, strerror(errno));
		goto out;
	}
	sealer_init(&z);
	/* warm up the three paths */
	base = atomic_load(&s.total);
	evset_send(evfd, &ev, 0, warm);
	sink_wait(&s, base + warm * per, 500, 10000);
	blast_run(bfd, &s, warm * per, NULL, per, 0, &b[0], &bc[0]);
	blast_run(bfd, &s, warm * per, &z, per, 0, &e[0], &ec[0]);
	floor_run(flfd, &fl, &s, &ev, 0, warm, 0, &f[0], &fc[0]);

	for (r = 0; r < reps; r++) {
		size_t from = warm + r * users;

		base = atomic_load(&s.total);
		c0 = cpu_ns(p.pid);
		ticks(p.pid, p.pid, t0d);
		t0 = mono_ns();
		evset_send(evfd, &ev, from, from + users);
		got = sink_wait(&s, base + users * per, 500, 30000) - base;
		ticks_add(p.pid, p.pid, t0d, dt);
		c[r] = (double)(cpu_ns(p.pid) - c0) / (users * per) / 1e3;
		d[r] = (double)got / ((double)(atomic_load(&s.total_last_ns) -
		    t0) / 1e9);
		if (got < users * per)
			note("  run %u: %llu of %u pushes arrived", r + 1,
			    (unsigned long long)got, users * per);

		blast_run(bfd, &s, users * per, NULL, per, r + 1, &b[r], &bc[r]);
		blast_run(bfd, &s, users * per, &z, per, r + 1, &e[r], &ec[r]);
		ticks(getpid(), atomic_load(&fl.tid), t0f);
		floor_run(flfd, &fl, &s, &ev, from, users, r + 1, &f[r],
		    &fc[r]);
		ticks_add(getpid(), atomic_load(&fl.tid), t0f, ft);
		note("  run %u: daemon %.0f pushes/s (%.2f us CPU each), "
		    "blaster %.0f datagrams/s (%.2f us), sealing blaster "
		    "%.0f/s (%.2f us), floor %.0f/s (%.2f us)", r + 1, d[r],
		    c[r], b[r], bc[r], e[r], ec[r], f[r], fc[r]);
	}
	pushes = bd_stat(&p, "pushes");
	if (pushes != (long long)(warm + users * reps) * per)
		note("  daemon counted %lld pushes, %u expected", pushes,
		    (warm + users * reps) * per);
	md = stat_median(d, reps);
	mb = stat_median(b, reps);
	me = stat_median(e, reps);
	mf = stat_median(f, reps);
	if (atomic_load(&fl.bad) != 0)
		note("  push floor: %u events not decoded",
		    atomic_load(&fl.bad));
	note("  median: daemon %.0f pushes/s, %.2f us daemon CPU per push; "
	    "blaster %.2f us CPU per datagram, %.2f us sealing each; floor "
	    "%.2f us a push", md, stat_median(c, reps), stat_median(bc, reps),
	    stat_median(ec, reps), stat_median(fc, reps));
	/* where the daemon's extra CPU goes: its own code and libraries
	 * (user) or the kernel (system); clock ticks, summed over the runs */
	note("  CPU a push in user / system mode, all runs: daemon loop "
	    "thread %.2f / %.2f us, floor thread %.2f / %.2f us",
	    dt[0] * us_tick / ((double)users * per * reps),
	    dt[1] * us_tick / ((double)users * per * reps),
	    ft[0] * us_tick / ((double)users * per * reps),
	    ft[1] * us_tick / ((double)users * per * reps));
	note("  the protocol's own cost: the sealing blaster reaches %.2f of "
	    "the blaster, the floor (events read, pushes sealed and sent, "
	    "nothing else) %.2f; the daemon %.2f of the floor", me / mb,
	    mf / mb, md / mf);
	snprintf(fig, sizeof(fig), "%.0f pushes/s", md);
	snprintf(bas, sizeof(bas), "%.0f datagrams/s (sendmmsg blaster)", mb);
	snprintf(rat, sizeof(rat), "%.2f", md / mb);
	/* missed at the floor: the floor misses too, and the daemon is
	 * within a tenth of it */
	result_add("push throughput", fig, bas, rat, "ratio >= 0.6",
	    md / mb >= 0.6 ? 1 : mf / mb < 0.6 && md / mf >= 0.9 ?
	    RESULT_FLOOR : 0);
	snprintf(fig, sizeof(fig), "%.0f datagrams/s (sealing blaster)", me);
	snprintf(rat, sizeof(rat), "%.2f", me / mb);
	result_add("push ceiling: sealing only", fig, bas, rat, "reported",
	    -1);
	snprintf(fig, sizeof(fig), "%.0f pushes/s (events in, sealed, out; "
	    "daemon at %.2f of it)", mf, md / mf);
	snprintf(rat, sizeof(rat), "%.2f", mf / mb);
	result_add("push floor: intake and sealing", fig, bas, rat,
	    "reported", -1);
	rc = 0;
out:
	if (flfd != -1)
		close(flfd);
	floor_close(&fl);
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

int
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
