/*
 * htab.c: chained hash tables that grow without holding the loop.
 *
 * A table that holds more entries than it has buckets gets a second
 * bucket array twice the size, and its chains move there bucket by
 * bucket: HTAB_MOVE_ADD buckets with every insertion, and what
 * htab_step() is given once per loop iteration (registry_step), as
 * Redis's dict does.  Moving all at once took 75-93 ms for a million
 * registrations by id, and 350-415 ms for a million users (their hashes
 * are SipHash of the name), every time a table doubled.
 *
 * While a table moves, an entry whose bucket in the old array (h &
 * mask[0]) is below `moved' is in the new array, any other one in the old
 * array: a lookup still reads exactly one chain.
 *
 * The new array's pages are faulted in by a thread of their own
 * (a write to each page) before the first bucket moves: the first
 * write to a fresh page is a page fault, and with the daemon's huge pages
 * (mailpushd(8)) one fault zeroes 2 MB, 3-4 ms on a virtual machine whose
 * host backs guest memory lazily (BENCHMARKS.md); moving a few buckets at
 * a time made the loop take those faults one at a time.  Until the
 * thread is done the old array keeps every entry (moved stays 0), so
 * nothing waits for it unless insertions outrun it.
 *
 * The entries are the callers' structures; the chain pointer is a field
 * of theirs at next_off, read and written here with memcpy (the buckets
 * are void pointers, the fields pointers to the callers' types).
 */
#include <sys/mman.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "htab.h"
#include "log.h"

static void *
next_of(const struct htab *h, const void *e)
{
	void *p;

	memcpy(&p, (const char *)e + h->next_off, sizeof(p));
	return p;
}

static void
set_next(const struct htab *h, void *e, void *p)
{
	memcpy((char *)e + h->next_off, &p, sizeof(p));
}

/* Arrays this big or bigger are mappings of their own, faulted in by a
 * thread (see the top). */
#define HTAB_PF_BYTES	((size_t)2 << 20)

static void **
buckets_new(size_t n)
{
	size_t len = n * sizeof(void *);
	void **t;

	if (len < HTAB_PF_BYTES) {
		if ((t = calloc(n, sizeof(*t))) == NULL)
			fatal("hash table of %zu buckets", n);
		return t;
	}
	/* zeroed by the kernel, never cleared on the loop; in huge pages
	 * where the system allows them (mailpushd(8), "Memory") */
	t = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS, -1, 0);
	if (t == MAP_FAILED)
		fatal("hash table of %zu buckets", n);
	(void)madvise(t, len, MADV_HUGEPAGE);
	return t;
}

static void
buckets_free(void **t, size_t n)
{
	if (t == NULL)
		return;
	if (n * sizeof(void *) < HTAB_PF_BYTES)
		free(t);
	else if (munmap(t, n * sizeof(void *)) == -1)
		fatal("hash table of %zu buckets", n);
}

/* buckets: a power of two */
void
htab_init(struct htab *h, size_t buckets, size_t next_off,
    uint64_t (*hash)(const void *))
{
	memset(h, 0, sizeof(*h));
	h->t[0] = buckets_new(buckets);
	h->mask[0] = buckets - 1;
	h->next_off = next_off;
	h->hash = hash;
}

void
htab_free(struct htab *h)
{
	if (atomic_load(&h->pf_state) != HTAB_PF_NONE) {
		atomic_store(&h->pf_hurry, 2);	/* no use faulting it in */
		pthread_join(h->pf_thr, NULL);
	}
	buckets_free(h->t[0], h->mask[0] + 1);
	buckets_free(h->t[1], h->mask[1] + 1);
	memset(h, 0, sizeof(*h));
}


/* The chain of bucket `moved' to the new array; the last one swaps. */
static void
move_bucket(struct htab *h)
{
	void *e = h->t[0][h->moved], *nx;
	size_t b;

	h->t[0][h->moved] = NULL;
	for (; e != NULL; e = nx) {
		nx = next_of(h, e);
		b = (size_t)h->hash(e) & h->mask[1];
		set_next(h, e, h->t[1][b]);
		h->t[1][b] = e;
	}
	if (++h->moved > h->mask[0]) {
		buckets_free(h->t[0], h->mask[0] + 1);
		h->t[0] = h->t[1];
		h->mask[0] = h->mask[1];
		h->t[1] = NULL;
		h->mask[1] = 0;
		h->moved = 0;
	}
}

/* t[1] is being faulted in: empty, and not to be read (its thread writes
 * to it) */
static int
pf_busy(struct htab *h)
{
	return atomic_load_explicit(&h->pf_state, memory_order_acquire) ==
	    HTAB_PF_RUNNING;
}

/*
 * May buckets move to t[1]?  Not while its pages are being faulted in,
 * unless `wait': then wait for that to end.
 */
static int
pf_ready(struct htab *h, int wait)
{
	switch (atomic_load_explicit(&h->pf_state, memory_order_acquire)) {
	case HTAB_PF_NONE:
		return 1;
	case HTAB_PF_RUNNING:
		if (!wait)
			return 0;
		/* FALLTHROUGH */
	default:
		atomic_store(&h->pf_hurry, 1);	/* waited for: no pauses */
		pthread_join(h->pf_thr, NULL);
		atomic_store(&h->pf_state, HTAB_PF_NONE);
		return 1;
	}
}

/* Move up to `buckets' buckets; 1 while the table is still moving. */
int
htab_step(struct htab *h, size_t buckets)
{
	if (h->t[1] == NULL || !pf_ready(h, buckets == (size_t)-1))
		return h->t[1] != NULL;
	while (h->t[1] != NULL && buckets-- > 0)
		move_bucket(h);
	return h->t[1] != NULL;
}

int
htab_moving(const struct htab *h)
{
	return h->t[1] != NULL;
}

static void *
pf_main(void *arg)
{
	const struct timespec pause = { 0, 1000000 };
	struct htab *h = arg;
	size_t page = (size_t)sysconf(_SC_PAGESIZE), i;
	size_t len = (h->mask[1] + 1) * sizeof(void *);
	volatile uint8_t *p = (volatile uint8_t *)h->t[1];

	/*
	 * A write to each page (still zero: nothing is in the array yet).
	 * Each fault holds only the lock of this one mapping, not the
	 * address space's, as madvise(MADV_POPULATE_WRITE) would: on a
	 * virtual machine whose host backs a fresh page late, a fault can
	 * take tens of milliseconds, and the loop's own mmap, brk or munmap
	 * must not wait for it (per-mapping locks: Linux 6.4 and later;
	 * before, a fault holds the address space's lock for reading, and
	 * the pauses below still let the loop's calls in between).  When
	 * the loop waits for the thread (pf_ready, htab_free) it asks it to
	 * hurry or to stop.  A millisecond's pause after every 2 MB
	 * leaves the CPUs to the loop and the clients between pages (32 MB
	 * of arrays at once held a sleeping thread up to 3 ms, the loop
	 * up to 4 ms; paced, 0.4 and under 1 ms: BENCHMARKS.md).
	 */
	for (i = 0; i < len; i += page) {
		if (i > 0 && i % HTAB_PF_BYTES == 0) {
			if (atomic_load(&h->pf_hurry) == 2)
				break;
			if (atomic_load(&h->pf_hurry) == 0)
				nanosleep(&pause, NULL);
		}
		p[i] = 0;
	}
	atomic_store_explicit(&h->pf_state, HTAB_PF_DONE,
	    memory_order_release);
	return NULL;
}

static void
grow_to(struct htab *h, size_t buckets)
{
	h->t[1] = buckets_new(buckets);
	h->mask[1] = buckets - 1;
	h->moved = 0;
	if (buckets * sizeof(void *) >= HTAB_PF_BYTES) {
		atomic_store(&h->pf_hurry, 0);
		atomic_store(&h->pf_state, HTAB_PF_RUNNING);
		if (pthread_create(&h->pf_thr, NULL, pf_main, h) != 0)
			atomic_store(&h->pf_state, HTAB_PF_NONE);
	}
}

void
htab_insert(struct htab *h, uint64_t hv, void *e)
{
	void **s = htab_slot(h, hv);

	set_next(h, e, *s);
	*s = e;
	h->n++;
	if (h->t[1] == NULL && h->n > h->mask[0] + 1)
		grow_to(h, (h->mask[0] + 1) * 2);
	/* a move always ends long before the table fills again: this is
	 * only for a table that insertions outran */
	if (h->t[1] != NULL && h->n > h->mask[1] + 1)
		htab_step(h, (size_t)-1);
	htab_step(h, HTAB_MOVE_ADD);
}

/* Unlink e (in the chain of hv); old's place goes to new_ if not NULL. */
static void
unlink_entry(struct htab *h, uint64_t hv, void *e, void *new_)
{
	void **s = htab_slot(h, hv), *prev = NULL, *cur = *s;

	while (cur != e) {
		if (cur == NULL)
			fatalx("hash table: entry not in its chain");
		prev = cur;
		cur = next_of(h, cur);
	}
	if (new_ != NULL) {
		set_next(h, new_, next_of(h, e));
		cur = new_;
	} else
		cur = next_of(h, e);
	if (prev == NULL)
		*s = cur;
	else
		set_next(h, prev, cur);
}

/* Never moves buckets: htab_foreach's function may remove its entry. */
void
htab_remove(struct htab *h, uint64_t hv, void *e)
{
	unlink_entry(h, hv, e, NULL);
	h->n--;
}

void
htab_replace(struct htab *h, uint64_t hv, void *old, void *new_)
{
	unlink_entry(h, hv, old, new_);
}

/* Room for n entries without growing: at start, before loading. */
void
htab_reserve(struct htab *h, size_t n)
{
	size_t want = h->mask[0] + 1;

	htab_step(h, (size_t)-1);
	while (want < n)
		want *= 2;
	if (want == h->mask[0] + 1)
		return;
	grow_to(h, want);
	htab_step(h, (size_t)-1);
}

size_t
htab_buckets(const struct htab *h)
{
	return h->mask[0] + 1 + (h->t[1] != NULL ? h->mask[1] + 1 : 0);
}

/*
 * Every entry once.  fn may remove the entry it is given, and insert into
 * other tables, not into this one.
 */
void
htab_foreach(struct htab *h, void (*fn)(void *, void *), void *arg)
{
	size_t k, i, arrays = pf_busy(h) ? 1 : 2;
	void *e, *nx;

	for (k = 0; k < arrays; k++)
		for (i = 0; h->t[k] != NULL && i <= h->mask[k]; i++)
			for (e = h->t[k][i]; e != NULL; e = nx) {
				nx = next_of(h, e);
				fn(e, arg);
			}
}

static uint64_t
rev64(uint64_t v)
{
	v = (v >> 1 & 0x5555555555555555ULL) | (v & 0x5555555555555555ULL) << 1;
	v = (v >> 2 & 0x3333333333333333ULL) | (v & 0x3333333333333333ULL) << 2;
	v = (v >> 4 & 0x0f0f0f0f0f0f0f0fULL) | (v & 0x0f0f0f0f0f0f0f0fULL) << 4;
	return __builtin_bswap64(v);
}

/*
 * The entries from *cursor on, bucket by bucket, until about max have been
 * seen; 1 while buckets remain (start with *cursor 0).  The cursor walks
 * the buckets in reverse-binary order (Redis SCAN), so a scan spread over
 * many loop iterations sees every entry that exists throughout it exactly
 * once, even while the table grows and moves (it never shrinks): while it
 * moves, a bucket of the old array and the two it moves to are seen
 * together.  fn must not insert into or remove from this table.
 */
int
htab_scan(struct htab *h, uint64_t *cursor, size_t max,
    void (*fn)(void *, void *), void *arg)
{
	void **t1 = pf_busy(h) ? NULL : h->t[1];
	uint64_t v = *cursor, m0, m1;
	size_t n = 0;
	void *e;

	do {
		m0 = h->mask[0];
		for (e = h->t[0][v & m0]; e != NULL; e = next_of(h, e), n++)
			fn(e, arg);
		if (t1 == NULL) {
			v |= ~m0;
			v = rev64(rev64(v) + 1);
			continue;
		}
		m1 = h->mask[1];
		do {
			for (e = t1[v & m1]; e != NULL;
			    e = next_of(h, e), n++)
				fn(e, arg);
			v |= ~m1;
			v = rev64(rev64(v) + 1);
		} while (v & (m0 ^ m1));
	} while (v != 0 && n < max);
	*cursor = v;
	return v != 0;
}
