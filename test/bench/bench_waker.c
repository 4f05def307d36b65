/*
 * bench_waker.c: the machine's own pauses, measured beside a benchmark.
 *
 * A thread bound to each CPU sleeps 1 ms at a time and notes how late it
 * wakes up.  On a virtual machine whose host holds its virtual CPUs for
 * milliseconds (seen with perf here: both idle for 28 ms, no task of the
 * guest run meanwhile, while the benchmark's sender was due every 0.1
 * ms) every datagram in flight waits as long, whatever the daemon does;
 * a sleeper that wakes up that late in the same window says so.  One
 * sleeper per CPU, because a hold of one virtual CPU is not seen from
 * another; bound to a busy CPU, a sleeper also waits for the task
 * running there, up to a scheduler's slice (hence the 5 ms the rows that
 * use it ask for).
 */
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static void *
waker_main(void *arg)
{
	const struct timespec ms = { 0, 1000000 };
	struct waker_cpu *c = arg;
	uint64_t t0, d;

	while (!atomic_load(&c->w->stop)) {
		t0 = mono_ns();
		nanosleep(&ms, NULL);
		d = mono_ns() - t0;
		d = d > 1000000 ? d - 1000000 : 0;
		if (d > c->max_ns)
			c->max_ns = d;
		if (d > 5000000)
			c->late++;
	}
	return NULL;
}

/* A sleeper on each CPU (up to WAKER_CPUS): a hold of one virtual CPU
 * delays the sleeper bound to it, whichever the others are. */
int
waker_start(struct waker *w)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;
	unsigned i;

	memset(w, 0, sizeof(*w));
	w->n = cpus < 1 ? 1 : cpus > WAKER_CPUS ? WAKER_CPUS : (unsigned)cpus;
	for (i = 0; i < w->n; i++) {
		w->c[i].w = w;
		if (pthread_create(&w->c[i].th, NULL, waker_main, &w->c[i]) != 0) {
			w->n = i;
			waker_stop(w);
			return fail("pthread_create failed");
		}
		CPU_ZERO(&set);
		CPU_SET(i, &set);
		/* unbound if it cannot be: it still sees its own holds */
		(void)pthread_setaffinity_np(w->c[i].th, sizeof(set), &set);
	}
	return 0;
}

/* Stop them; the longest late wake-up of any, in ms. */
double
waker_stop(struct waker *w)
{
	unsigned i;

	atomic_store(&w->stop, 1);
	for (i = 0; i < w->n; i++) {
		pthread_join(w->c[i].th, NULL);
		if (w->c[i].max_ns > w->max_ns)
			w->max_ns = w->c[i].max_ns;
		w->late += w->c[i].late;
	}
	return (double)w->max_ns / 1e6;
}
