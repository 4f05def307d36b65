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
 */
#include <sys/types.h>
#include <sys/mman.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

#define PAGES_MB	64

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
	return 0;
}
