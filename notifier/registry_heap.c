/*
 * registry_heap.c: registration deadlines, in two heaps.
 *
 * Expiry and PROBE_ECHO: each registration sits in a binary min-heap
 * keyed by the earlier of the two and indexed from the registration
 * (heap_idx), so a change costs O(log n) and nothing per tick.  These
 * change seldom (a refresh, a probe).
 *
 * Pushes and retransmissions (push_at) change with every push and every
 * acknowledgement.  In the first heap each would move the registration
 * from near the bottom to near the top and back, touching a registration
 * on every level: at 1M registrations some 20 cache misses per push.  They
 * go to a second heap instead, of (push_at, id) entries: a new deadline
 * is pushed in (nearly always the latest, so it stays at the bottom), and
 * a deadline that changed or went away is not looked for: its entry is
 * dropped when it comes up and its registration no longer has that
 * push_at.  So the second heap holds at most one entry per push_at set
 * during the longest retransmission interval (push_retry_interval <<
 * push_retries), 16 bytes each.
 *
 * The daemon arms one libevent timer for the earlier of the two tops.
 */
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "journal.h"
#include "log.h"
#include "mailpushd.h"
#include "registry_int.h"

/* Heap */

/* A registration's deadline in the first heap (ms): the earlier of its
 * expiry and its PROBE_ECHO.  Computed, not stored (8 bytes less a
 * registration); registry_schedule puts the entry right whenever either
 * changed. */
static inline uint64_t
reg_deadline(const struct reg *r)
{
	uint64_t d = (uint64_t)r->expires * 1000;

	if (r->probe_at != 0 && (uint64_t)r->probe_at * 1000 < d)
		d = (uint64_t)r->probe_at * 1000;
	return d;
}

static void
heap_set(size_t i, struct reg *r)
{
	registry_g.heap[i] = r;
	r->heap_idx = (uint32_t)i;
}

static void
heap_up(size_t i)
{
	struct reg *r = registry_g.heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (reg_deadline(registry_g.heap[parent]) <= reg_deadline(r))
			break;
		heap_set(i, registry_g.heap[parent]);
		i = parent;
	}
	heap_set(i, r);
}

static void
heap_down(size_t i)
{
	struct reg *r = registry_g.heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= registry_g.heap_len)
			break;
		if (c + 1 < registry_g.heap_len &&
		    reg_deadline(registry_g.heap[c + 1]) < reg_deadline(registry_g.heap[c]))
			c++;
		if (reg_deadline(r) <= reg_deadline(registry_g.heap[c]))
			break;
		heap_set(i, registry_g.heap[c]);
		i = c;
	}
	heap_set(i, r);
}

void
registry_heap_insert(struct reg *r)
{
	if (registry_g.heap_len == registry_g.heap_cap) {
		struct reg **n = reallocarray(registry_g.heap, registry_g.heap_cap * 2,
		    sizeof(*n));

		if (n == NULL)
			fatal("heap");
		registry_g.heap = n;
		registry_g.heap_cap *= 2;
	}
	heap_set(registry_g.heap_len++, r);
	heap_up(r->heap_idx);
	registry_push_scheduled(r);
}

void
registry_heap_delete(struct reg *r)
{
	size_t i = r->heap_idx;
	struct reg *last;

	if (i >= registry_g.heap_len || registry_g.heap[i] != r)
		abort();
	last = registry_g.heap[--registry_g.heap_len];
	if (last != r) {
		heap_set(i, last);
		heap_up(i);
		heap_down(last->heap_idx);
	}
}

/* Push deadlines */

static void
pq_up(size_t i)
{
	struct push_ent e = registry_g.pq[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (registry_g.pq[parent].at <= e.at)
			break;
		registry_g.pq[i] = registry_g.pq[parent];
		i = parent;
	}
	registry_g.pq[i] = e;
}

static void
pq_down(size_t i)
{
	struct push_ent e = registry_g.pq[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= registry_g.pq_len)
			break;
		if (c + 1 < registry_g.pq_len &&
		    registry_g.pq[c + 1].at < registry_g.pq[c].at)
			c++;
		if (e.at <= registry_g.pq[c].at)
			break;
		registry_g.pq[i] = registry_g.pq[c];
		i = c;
	}
	registry_g.pq[i] = e;
}

static struct push_ent
pq_pop(void)
{
	struct push_ent top = registry_g.pq[0];

	registry_g.pq[0] = registry_g.pq[--registry_g.pq_len];
	if (registry_g.pq_len > 0)
		pq_down(0);
	return top;
}

/* r's push_at changed (and nothing else of its deadlines): queue it. */
void
registry_push_scheduled(struct reg *r)
{
	if (r->push_at == 0)
		return;		/* nothing due; an old entry is dropped */
	if (registry_g.pq_len == registry_g.pq_cap) {
		size_t cap = registry_g.pq_cap ? registry_g.pq_cap * 2 : 1024;
		struct push_ent *n = reallocarray(registry_g.pq, cap,
		    sizeof(*n));

		if (n == NULL)
			fatal("push deadlines");
		registry_g.pq = n;
		registry_g.pq_cap = cap;
	}
	registry_g.pq[registry_g.pq_len].at = r->push_at;
	registry_g.pq[registry_g.pq_len].id = r->id;
	pq_up(registry_g.pq_len++);
}

/* Any of r's deadlines changed. */
void
registry_schedule(struct reg *r)
{
	heap_up(r->heap_idx);
	heap_down(r->heap_idx);
	registry_push_scheduled(r);
}

uint64_t
registry_next_deadline(void)
{
	uint64_t d = registry_g.heap_len ? reg_deadline(registry_g.heap[0]) : 0;

	if (registry_g.pq_len > 0 && (d == 0 || registry_g.pq[0].at < d))
		d = registry_g.pq[0].at;
	return d;
}

/*
 * Microseconds of the loop one timer run may take: a crowd of deadlines
 * at once (pushes owed after a restart, registrations expiring together)
 * is handled a slice at a time, the loop serving I/O in between.
 */
#define TIMER_SLICE_US	500

/*
 * Handle deadlines up to now_ms, which becomes the daemon's time: what the
 * handlers schedule (a new push's retransmission, say) counts from
 * mpd->now_ms and must land after now_ms.  1 if some are left for the next
 * run.
 */
int
registry_run_timers(uint64_t now_ms)
{
	uint64_t t0 = mpd_clock_us(CLOCK_MONOTONIC);
	unsigned n = 0;

	if (now_ms > mpd->now_ms)
		mpd->now_ms = now_ms;

	while (registry_g.heap_len > 0 && reg_deadline(registry_g.heap[0]) <= now_ms) {
		struct reg *r = registry_g.heap[0];

		if (++n % 32 == 0 &&
		    mpd_clock_us(CLOCK_MONOTONIC) - t0 > TIMER_SLICE_US)
			return 1;
		if ((uint64_t)r->expires * 1000 <= now_ms) {
			mpd->stats.expired++;
			registry_remove(r, "expired");
			continue;
		}
		if (r->probe_at != 0 && (uint64_t)r->probe_at * 1000 <= now_ms)
			push_probe_echo(r);	/* clears probe_at */
		if (reg_deadline(r) <= now_ms)
			abort();
	}
	while (registry_g.pq_len > 0 && registry_g.pq[0].at <= now_ms) {
		struct push_ent e;
		struct reg *r;

		if (++n % 32 == 0 &&
		    mpd_clock_us(CLOCK_MONOTONIC) - t0 > TIMER_SLICE_US)
			return 1;
		e = pq_pop();
		/* gone, or its push_at changed since: a stale entry */
		if ((r = registry_find(e.id)) == NULL || r->push_at != e.at)
			continue;
		push_timer(r, now_ms);	/* moves push_at forward, or to 0 */
		if (r->push_at != 0 && r->push_at <= now_ms)
			abort();
	}
	return 0;
}
