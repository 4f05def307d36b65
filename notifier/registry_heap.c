/*
 * registry_heap.c: registration deadlines.  Each registration has one: the
 * earliest of its expiry, its next push or retransmission and its
 * PROBE_ECHO.  Deadlines sit in a binary min-heap indexed from the
 * registration (heap_idx), so expiry costs O(log n) per change and nothing
 * per tick; the daemon arms one libevent timer for the heap's top.
 */
#include <string.h>

#include <sodium.h>

#include "journal.h"
#include "log.h"
#include "mailpushd.h"
#include "registry_int.h"

/* Heap */

/* A registration's deadline (ms), the heap's key: the earliest of its
 * expiry, its next push or retransmission and its PROBE_ECHO.  Computed,
 * not stored (8 bytes less a registration); registry_schedule puts the
 * entry right whenever one of them changed. */
static inline uint64_t
reg_deadline(const struct reg *r)
{
	uint64_t d = (uint64_t)r->expires * 1000;

	if (r->push_at != 0 && r->push_at < d)
		d = r->push_at;
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

void
registry_schedule(struct reg *r)
{
	heap_up(r->heap_idx);
	heap_down(r->heap_idx);
}

uint64_t
registry_next_deadline(void)
{
	return registry_g.heap_len ? reg_deadline(registry_g.heap[0]) : 0;
}

void
registry_run_timers(uint64_t now_ms)
{
	while (registry_g.heap_len > 0 && reg_deadline(registry_g.heap[0]) <= now_ms) {
		struct reg *r = registry_g.heap[0];

		if ((uint64_t)r->expires * 1000 <= now_ms) {
			mpd->stats.expired++;
			registry_remove(r, "expired");
			continue;
		}
		if (r->probe_at != 0 && (uint64_t)r->probe_at * 1000 <= now_ms)
			push_probe_echo(r);	/* clears probe_at */
		if (r->push_at != 0 && r->push_at <= now_ms)
			push_timer(r, now_ms);	/* moves push_at forward */
		if (reg_deadline(r) <= now_ms)
			abort();
	}
}

