/*
 * bench_pages.c: the machine's floor for memory the loop touches first.
 *
 * A first write to a page of anonymous memory is a page fault; with huge
 * pages (the daemon's, mailpushd(8)) it zeroes 2 MB.  On a virtual
 * machine whose host backs guest memory only when it is touched, that
 * costs milliseconds, and whatever the daemon's loop allocates and
 * touches for the first time pays it there (htab.c faults its new bucket
 * arrays in a thread for that reason).  This writes one byte to each page
 * of a fresh 64 MB mapping, timed, with 2 MB pages (MADV_HUGEPAGE) and
 * with 4 kB pages (MADV_NOHUGEPAGE), and reports the longest fault of
 * each: reported, not judged.
 *
 * Who waits while another thread faults memory in: a thread maps, touches
 * and unmaps a page every 50 us (as the loop's malloc may) while a second
 * one faults 256 MB in, by madvise(MADV_POPULATE_WRITE) 2 MB a call
 * (which holds the address space's lock) and by a write to each page
 * (which holds only that mapping's); the longest map-touch-unmap of each
 * is why htab.c's thread writes.
 */
#include <sys/types.h>
#include <sys/mman.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#define PAGES_MB	64
#define LOCK_MB		256

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE	23	/* Linux 5.14 */
#endif

/* One fresh mapping, a write a page: the longest and mean fault (ms). */
static int
touch_run(int huge, double *longest, double *mean, size_t *pages)
{
	const size_t size = (size_t)PAGES_MB << 20;
	const size_t step = huge ? (size_t)2 << 20 : 4096;
	uint64_t t0, d, sum = 0, mx = 0;
	volatile char *p;
	size_t off;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return fail("pages: mmap %d MB: %s", PAGES_MB, strerror(errno));
	/* a 2 MB page needs a 2 MB-aligned range: ask for the whole */
	if (madvise((void *)p, size, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE)
	    == -1)
		note("  pages: madvise: %s (the kernel's default pages)",
		    strerror(errno));
	for (off = 0; off < size; off += step) {
		t0 = mono_ns();
		p[off] = 1;
		d = mono_ns() - t0;
		sum += d;
		if (d > mx)
			mx = d;
	}
	munmap((void *)p, size);
	*pages = size / step;
	*longest = (double)mx / 1e6;
	*mean = (double)sum / (double)*pages / 1e6;
	return 0;
}

struct faulter {
	int		 by_writes;
	int		 err;
	atomic_int	 done;
};

static void *
faulter_main(void *arg)
{
	struct faulter *f = arg;
	const size_t size = (size_t)LOCK_MB << 20, two = (size_t)2 << 20;
	volatile char *p;
	size_t off;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		f->err = errno;
		atomic_store(&f->done, 1);
		return NULL;
	}
	(void)madvise((void *)p, size, MADV_HUGEPAGE);
	for (off = 0; off < size;) {
		if (f->by_writes) {
			p[off] = 0;
			off += 4096;
		} else if (madvise((void *)(p + off), two,
		    MADV_POPULATE_WRITE) == 0)
			off += two;
		else if (errno != EINTR) {
			f->err = errno;
			break;
		}
	}
	atomic_store(&f->done, 1);
	munmap((void *)p, size);
	return NULL;
}

/* The longest map-touch-unmap (ms) while the faulter runs. */
static int
lock_run(int by_writes, double *longest, unsigned *n)
{
	const struct timespec gap = { 0, 50000 };
	struct faulter f = { by_writes, 0, 0 };
	pthread_t th;
	uint64_t t0, d, mx = 0;
	volatile char *q;

	*n = 0;
	if (pthread_create(&th, NULL, faulter_main, &f) != 0)
		return fail("pages: cannot start a thread");
	while (!atomic_load(&f.done)) {
		t0 = mono_ns();
		q = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE |
		    MAP_ANONYMOUS, -1, 0);
		if (q != MAP_FAILED) {
			q[0] = 1;
			munmap((void *)q, 4096);
		}
		d = mono_ns() - t0;
		if (d > mx)
			mx = d;
		(*n)++;
		nanosleep(&gap, NULL);
	}
	pthread_join(th, NULL);
	*longest = (double)mx / 1e6;
	if (f.err == EINVAL && !by_writes) {
		*longest = -1;		/* before Linux 5.14 */
		return 0;
	}
	if (f.err != 0)
		return fail("pages: %s: %s", by_writes ? "mmap" :
		    "madvise(MADV_POPULATE_WRITE)", strerror(f.err));
	return 0;
}

int
bench_pages(void)
{
	double l2, m2, l4, m4;
	size_t n2, n4;
	char fig[96], bas[96], rat[48];

	note("pages: one write to each page of a fresh %d MB mapping, 2 MB "
	    "pages then 4 kB pages", PAGES_MB);
	if (touch_run(1, &l2, &m2, &n2) != 0 ||
	    touch_run(0, &l4, &m4, &n4) != 0)
		return -1;
	note("  %zu huge pages: mean %.3f ms, longest %.3f ms; %zu small "
	    "pages: mean %.4f ms, longest %.3f ms", n2, m2, l2, n4, m4, l4);
	snprintf(fig, sizeof(fig), "2 MB page: mean %.3f ms, longest %.3f ms",
	    m2, l2);
	snprintf(bas, sizeof(bas), "4 kB page: mean %.4f ms, longest %.3f ms",
	    m4, l4);
	snprintf(rat, sizeof(rat), "%.0fx a 4 kB page", m4 > 0 ? m2 / m4 :
	    0.0);
	result_add("first touch of fresh memory", fig, bas, rat, "reported",
	    -1);

	{
		double lw, lp;
		unsigned nw, np;

		note("pages: a thread maps, touches and unmaps a page every 50 "
		    "us while another faults %d MB in", LOCK_MB);
		if (lock_run(0, &lp, &np) != 0 || lock_run(1, &lw, &nw) != 0)
			return -1;
		note("  by madvise(MADV_POPULATE_WRITE): longest %.3f ms of "
		    "%u; by writes: longest %.3f ms of %u", lp, np, lw, nw);
		snprintf(fig, sizeof(fig), "longest mmap %.3f ms while a "
		    "thread faults %d MB in by writes (htab.c)", lw, LOCK_MB);
		if (lp < 0)
			snprintf(bas, sizeof(bas), "madvise(MADV_POPULATE_"
			    "WRITE) unsupported here");
		else
			snprintf(bas, sizeof(bas), "%.3f ms by madvise(MADV_"
			    "POPULATE_WRITE), 2 MB a call", lp);
		snprintf(rat, sizeof(rat), "1/%.0f", lw > 0 && lp > 0 ?
		    lp / lw : 0.0);
		result_add("address space lock", fig, bas, rat, "reported",
		    -1);
	}
	return 0;
}
