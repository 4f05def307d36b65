/*
 * bench_memory.c: the daemon's memory per registration at 1,000,000
 * registrations and the cost of an event as the table grows (1k, 100k,
 * 1M), as the daemon's CPU time per event.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "bench.h"

#define REPS_MAX	16

/*
 * Memory and scaling.  RSS of an empty daemon, then of one holding
 * 1,000,000 registrations (one per user, 16-byte context).  The cost of
 * one event (each for another user, each sending one push) is the
 * daemon's CPU time per event, at 1k, 100k and 1M registrations.
 */
static void
shuffle(unsigned *v, size_t n)
{
	size_t i, j;
	unsigned t;

	for (i = n - 1; i > 0; i--) {
		j = randombytes_uniform((uint32_t)(i + 1));
		t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
}

struct scale {
	unsigned	 size;
	struct mpd_proc	 p;
	struct evset	 ev;
	unsigned	 off, nev;
	int		 evfd;
	double		 cpu[REPS_MAX], wall[REPS_MAX];
	double		 cpu_us, wall_us, load_s;
};

#define SCALE_WARM	200
#define SCALE_RUN	800

static int
scale_start(struct scale *sc, const struct sink *s, unsigned reps)
{
	unsigned *u;
	uint64_t t0;
	int rc = -1;

	memset(&sc->p, 0, sizeof(sc->p));
	memset(&sc->ev, 0, sizeof(sc->ev));
	sc->evfd = -1;
	u = seq_users(0, sc->size);
	shuffle(u, sc->size);
	sc->nev = reps * (SCALE_WARM + SCALE_RUN);
	if (sc->nev > sc->size)
		sc->nev = sc->size;
	sc->off = 0;
	if (bd_create(&sc->p, bench_conf) != 0 ||
	    state_write(&sc->p, 0, sc->size, 1, s->port, 1) != 0 ||
	    evset_make(&sc->ev, sc->nev, u) != 0)
		goto out;
	t0 = mono_ns();
	if (bd_start(&sc->p, 120000) != 0)
		goto out;
	sc->load_s = (double)(mono_ns() - t0) / 1e9;
	vnote("  %u registrations: daemon pid %ld, loaded in %.1f s", sc->size,
	    (long)sc->p.pid, sc->load_s);
	if (check_regs(&sc->p, sc->size) != 0)
		goto out;
	rc = 0;
out:
	free(u);
	return rc;
}

/*
 * One run: SCALE_WARM events (not measured), then SCALE_RUN events for
 * users not touched before, sent back to back; the daemon's CPU time from
 * the first send to the last push, per event.
 */
static int
scale_rep(struct scale *sc, struct sink *s, unsigned r)
{
	uint64_t t0, c0, base, got;

	if (sc->off + SCALE_WARM + SCALE_RUN > sc->nev) {
		/* a small table: every user has a push out by now; start
		 * again from the state file (the daemon was killed, so it
		 * has not rewritten it) */
		if (sc->evfd != -1)
			close(sc->evfd);
		sc->evfd = -1;
		bd_kill(&sc->p);
		if (bd_start(&sc->p, 60000) != 0)
			return -1;
		sc->off = 0;
	}
	if (sc->evfd == -1 && (sc->evfd = event_connect(sc->p.events)) == -1)
		return fail("event socket %s: %s", sc->p.events,
		    strerror(errno));
	base = atomic_load(&s->total);
	evset_send(sc->evfd, &sc->ev, sc->off, sc->off + SCALE_WARM);
	sink_wait(s, base + SCALE_WARM, 500, 10000);
	sc->off += SCALE_WARM;
	base = atomic_load(&s->total);
	c0 = cpu_ns(sc->p.pid);
	t0 = mono_ns();
	evset_send(sc->evfd, &sc->ev, sc->off, sc->off + SCALE_RUN);
	got = sink_wait(s, base + SCALE_RUN, 500, 10000) - base;
	sc->cpu[r] = (double)(cpu_ns(sc->p.pid) - c0) / SCALE_RUN / 1e3;
	sc->wall[r] = (double)(atomic_load(&s->total_last_ns) - t0) /
	    SCALE_RUN / 1e3;
	sc->off += SCALE_RUN;
	if (got < SCALE_RUN)
		note("  %u registrations, run %u: %llu of %u pushes arrived",
		    sc->size, r + 1, (unsigned long long)got, SCALE_RUN);
	vnote("  %u registrations, run %u: %.2f us CPU, %.2f us wall per "
	    "event", sc->size, r + 1, sc->cpu[r], sc->wall[r]);
	return 0;
}

static void
scale_stop(struct scale *sc)
{
	if (sc->evfd != -1)
		close(sc->evfd);
	sc->evfd = -1;
	evset_free(&sc->ev);
	bd_destroy(&sc->p);
}

int
bench_memory_scaling(void)
{
	struct scale sc[3];
	const unsigned sizes[3] = { 1000000, 100000, 1000 };
	const unsigned reps = opts.quick ? 7 : 15;
	struct mpd_proc p;
	struct sink s;
	double per_reg = 0;
	long rss_empty, rss;
	char fig[96], bas[96], rat[48];
	unsigned r;
	int i, rc = -1;

	note("memory at 1,000,000 registrations; cost of one event at 1k, "
	    "100k, 1M (%u interleaved runs of %u events each)", reps,
	    SCALE_RUN);
	memset(&p, 0, sizeof(p));
	memset(sc, 0, sizeof(sc));
	for (i = 0; i < 3; i++) {
		sc[i].size = sizes[i];
		sc[i].evfd = -1;
	}
	if (sink_open(&s, 1) != 0)
		return -1;
	if (bd_create(&p, bench_conf) != 0 || bd_start(&p, 10000) != 0)
		goto out;
	usleep(100000);
	rss_empty = rss_kib(p.pid);
	bd_destroy(&p);
	for (i = 0; i < 3; i++) {
		if (scale_start(&sc[i], &s, reps) != 0)
			goto out;
		if (i == 0) {
			usleep(100000);
			rss = rss_kib(sc[0].p.pid);
			per_reg = (double)(rss - rss_empty) * 1024.0 /
			    sc[0].size;
			note("  RSS %ld KiB with %u registrations, %ld KiB "
			    "empty: %.1f bytes per registration (loaded in "
			    "%.1f s)", rss, sc[0].size, rss_empty, per_reg,
			    sc[0].load_s);
		}
	}
	for (r = 0; r < reps; r++)
		for (i = 0; i < 3; i++)
			if (scale_rep(&sc[i], &s, r) != 0)
				goto out;
	for (i = 0; i < 3; i++) {
		sc[i].cpu_us = stat_median(sc[i].cpu, reps);
		sc[i].wall_us = stat_median(sc[i].wall, reps);
		note("  %u registrations: %.2f us daemon CPU per event, %.2f "
		    "us wall (median of %u)", sc[i].size, sc[i].cpu_us,
		    sc[i].wall_us, reps);
	}
	snprintf(fig, sizeof(fig), "%.0f bytes/registration", per_reg);
	snprintf(bas, sizeof(bas), "empty daemon %ld KiB", rss_empty);
	snprintf(rat, sizeof(rat), "1M registrations loaded in %.1f s",
	    sc[0].load_s);
	result_add("memory per registration", fig, bas, rat, "<= 256 bytes",
	    per_reg <= 256);
	for (i = 1; i >= 0; i--) {
		char name[48];

		snprintf(name, sizeof(name), "event cost at %s",
		    i == 0 ? "1M" : "100k");
		snprintf(fig, sizeof(fig), "%.2f us CPU/event (wall %.2f us)",
		    sc[i].cpu_us, sc[i].wall_us);
		snprintf(bas, sizeof(bas), "1k: %.2f us CPU/event (wall %.2f "
		    "us)", sc[2].cpu_us, sc[2].wall_us);
		snprintf(rat, sizeof(rat), "%.2f", sc[i].cpu_us / sc[2].cpu_us);
		result_add(name, fig, bas, rat, "within 20% (<= 1.20)",
		    sc[i].cpu_us / sc[2].cpu_us <= 1.20);
	}
	rc = 0;
out:
	for (i = 0; i < 3; i++)
		scale_stop(&sc[i]);
	bd_destroy(&p);
	sink_close(&s);
	return rc;
}
