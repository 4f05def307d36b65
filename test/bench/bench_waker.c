/*
 * bench_waker.c: the machine's own pauses, measured beside a benchmark.
 *
 * A thread sleeps 1 ms at a time and notes how late it wakes up.  On a
 * virtual machine whose host holds its virtual CPUs for milliseconds
 * (seen with perf here: both idle for 28 ms, no task of the guest run
 * meanwhile, while the benchmark's sender was due every 0.1 ms) every
 * datagram in flight waits as long, whatever the daemon does; a sleeper
 * that wakes up that late in the same window says so.
 */
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "bench.h"

static void *
waker_main(void *arg)
{
	const struct timespec ms = { 0, 1000000 };
	struct waker *w = arg;
	uint64_t t0, d;

	while (!atomic_load(&w->stop)) {
		t0 = mono_ns();
		nanosleep(&ms, NULL);
		d = mono_ns() - t0;
		d = d > 1000000 ? d - 1000000 : 0;
		if (d > w->max_ns)
			w->max_ns = d;
		if (d > 5000000)
			w->late++;
	}
	return NULL;
}

int
waker_start(struct waker *w)
{
	memset(w, 0, sizeof(*w));
	if (pthread_create(&w->th, NULL, waker_main, w) != 0)
		return fail("pthread_create failed");
	return 0;
}

/* Stop it; the longest late wake-up in ms. */
double
waker_stop(struct waker *w)
{
	atomic_store(&w->stop, 1);
	pthread_join(w->th, NULL);
	return (double)w->max_ns / 1e6;
}
