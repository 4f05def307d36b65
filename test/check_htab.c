/*
 * check_htab.c: hash tables that grow a few buckets at a time
 * (notifier/htab.c) and the registration table on top of them: every
 * entry stays findable while a table moves to its double, a growth never
 * moves more than HTAB_MOVE_ADD buckets for one insertion, removals and
 * replacements work on both arrays, and a scan spread over many steps
 * sees every entry that exists throughout it exactly once while the
 * table grows under it (the snapshot and the cluster catch-up rely on
 * that).
 */
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <sodium.h>

#include "../notifier/htab.h"
#include "../notifier/mailpushd.h"
#include "regctx.h"

Suite	*make_htab_suite(void);

struct ent {
	uint32_t	 key;
	struct ent	*next;
	unsigned	 seen;
};

static uint64_t
ent_hash(const void *e)
{
	/* a poor hash on purpose: neighbours share low bits */
	return ((const struct ent *)e)->key * 2654435761u;
}

static uint64_t
key_hash(uint32_t key)
{
	struct ent e = { .key = key };

	return ent_hash(&e);
}

static struct ent *
find(struct htab *h, uint32_t key)
{
	struct ent *e;

	for (e = htab_first(h, key_hash(key)); e != NULL; e = e->next)
		if (e->key == key)
			return e;
	return NULL;
}

static void
count_seen(void *e, void *arg)
{
	((struct ent *)e)->seen++;
	(*(size_t *)arg)++;
}

START_TEST(grows_in_steps)
{
	enum { N = 70000 };
	struct htab h;
	struct ent *ents = calloc(N, sizeof(*ents));
	size_t i, j, moving_inserts = 0, before, mask, lost = 0, over = 0;
	int was_moving;

	ck_assert_ptr_nonnull(ents);
	htab_init(&h, 1024, offsetof(struct ent, next), ent_hash);
	for (i = 0; i < N; i++) {
		ents[i].key = (uint32_t)i;
		was_moving = htab_moving(&h);
		before = h.moved;
		mask = h.mask[0];
		htab_insert(&h, ent_hash(&ents[i]), &ents[i]);
		if (htab_moving(&h)) {
			moving_inserts++;
			/* one insertion moves HTAB_MOVE_ADD buckets, no more,
			 * and the one that starts a move does not finish it */
			if (was_moving && h.mask[0] == mask)
				over += h.moved - before > HTAB_MOVE_ADD;
			else
				over += h.moved > HTAB_MOVE_ADD;
		}
		/* everything in so far is found, wherever it is (plain
		 * checks in the loops: a ck_assert costs a write) */
		if (i % 97 == 0 || htab_moving(&h))
			for (j = i > 300 ? i - 300 : 0; j <= i; j++)
				lost += find(&h, (uint32_t)j) != &ents[j];
	}
	ck_assert_uint_eq(lost, 0);
	ck_assert_uint_eq(over, 0);
	ck_assert_uint_gt(moving_inserts, 4000);
	ck_assert_uint_eq(h.n, N);
	for (i = 0; i < N; i++)
		lost += find(&h, (uint32_t)i) != &ents[i];
	ck_assert_uint_eq(lost, 0);
	ck_assert_ptr_null(find(&h, N + 1));
	htab_free(&h);
	free(ents);
}
END_TEST

START_TEST(remove_and_replace_while_moving)
{
	enum { N = 5000 };
	struct htab h;
	struct ent *ents = calloc(N, sizeof(*ents)), *twin;
	size_t i, removed = 0;

	ck_assert_ptr_nonnull(ents);
	htab_init(&h, 4096, offsetof(struct ent, next), ent_hash);
	for (i = 0; i < 4097; i++) {
		ents[i].key = (uint32_t)i;
		htab_insert(&h, ent_hash(&ents[i]), &ents[i]);
	}
	ck_assert(htab_moving(&h));	/* 4097 > 4096: a move began */
	/* from both arrays: moved buckets are the low ones */
	for (i = 0; i < 4097; i += 3) {
		htab_remove(&h, ent_hash(&ents[i]), &ents[i]);
		removed++;
	}
	ck_assert(htab_moving(&h));	/* removals never move buckets */
	twin = calloc(1, sizeof(*twin));
	ck_assert_ptr_nonnull(twin);
	twin->key = 4000;
	htab_replace(&h, ent_hash(twin), &ents[4000], twin);
	ck_assert_ptr_eq(find(&h, 4000), twin);
	ck_assert_uint_eq(h.n, 4097 - removed);
	while (htab_step(&h, 100))
		;
	for (i = 0; i < 4097; i++)
		if (i % 3 == 0)
			ck_assert_ptr_null(find(&h, (uint32_t)i));
		else if (i != 4000)
			ck_assert_ptr_eq(find(&h, (uint32_t)i), &ents[i]);
	ck_assert_ptr_eq(find(&h, 4000), twin);
	ck_assert_uint_eq(htab_buckets(&h), 8192);
	htab_free(&h);
	free(twin);
	free(ents);
}
END_TEST

static void
remove_self(void *e, void *arg)
{
	struct htab *h = arg;

	htab_remove(h, ent_hash(e), e);
}

START_TEST(foreach_while_moving)
{
	enum { N = 3000 };
	struct htab h;
	struct ent *ents = calloc(N, sizeof(*ents));
	size_t i, n = 0;

	ck_assert_ptr_nonnull(ents);
	htab_init(&h, 2048, offsetof(struct ent, next), ent_hash);
	for (i = 0; i < 2049; i++) {
		ents[i].key = (uint32_t)i;
		htab_insert(&h, ent_hash(&ents[i]), &ents[i]);
	}
	ck_assert(htab_moving(&h));
	htab_foreach(&h, count_seen, &n);
	ck_assert_uint_eq(n, 2049);
	for (i = 0; i < 2049; i++)
		ck_assert_uint_eq(ents[i].seen, 1);
	htab_foreach(&h, remove_self, &h);
	ck_assert_uint_eq(h.n, 0);
	for (i = 0; i < 2049; i++)
		ck_assert_ptr_null(find(&h, (uint32_t)i));
	htab_free(&h);
	free(ents);
}
END_TEST

/*
 * A scan in steps of ~50 entries while insertions between the steps make
 * the table double twice and move: the first entries are seen once each.
 */
START_TEST(scan_while_growing)
{
	enum { FIRST = 1500, MORE = 6000 };
	struct htab h;
	struct ent *ents = calloc(FIRST + MORE, sizeof(*ents));
	uint64_t cursor = 0;
	size_t i, next = FIRST, n = 0, steps = 0;
	int more, saw_moving = 0;

	ck_assert_ptr_nonnull(ents);
	htab_init(&h, 1024, offsetof(struct ent, next), ent_hash);
	for (i = 0; i < FIRST + MORE; i++)
		ents[i].key = (uint32_t)(i * 7919u);
	for (i = 0; i < FIRST; i++)
		htab_insert(&h, ent_hash(&ents[i]), &ents[i]);
	do {
		more = htab_scan(&h, &cursor, 50, count_seen, &n);
		steps++;
		for (i = 0; i < 60 && next < FIRST + MORE; i++, next++)
			htab_insert(&h, ent_hash(&ents[next]), &ents[next]);
		saw_moving |= htab_moving(&h);
	} while (more);
	ck_assert(saw_moving);
	ck_assert_uint_gt(steps, 20);
	ck_assert_uint_ge(htab_buckets(&h), 4096);
	for (i = 0; i < FIRST && ents[i].seen == 1; i++)
		;
	ck_assert_msg(i == FIRST, "entry %zu seen %u times", i,
	    i < FIRST ? ents[i].seen : 0);
	htab_free(&h);
	free(ents);
}
END_TEST

START_TEST(reserve)
{
	struct htab h;
	struct ent e[3];
	size_t i;

	htab_init(&h, 1024, offsetof(struct ent, next), ent_hash);
	for (i = 0; i < 3; i++) {
		e[i].key = (uint32_t)i;
		htab_insert(&h, ent_hash(&e[i]), &e[i]);
	}
	htab_reserve(&h, 100000);
	ck_assert(!htab_moving(&h));
	ck_assert_uint_eq(htab_buckets(&h), 131072);
	for (i = 0; i < 3; i++)
		ck_assert_ptr_eq(find(&h, (uint32_t)i), &e[i]);
	htab_free(&h);
}
END_TEST

/* The registration table: ids, users and addresses, all growing. */

static struct reg *
add(unsigned i)
{
	union mp_addr a;
	char user[32];

	memset(&a, 0, sizeof(a));
	a.sin.sin_family = AF_INET;
	a.sin.sin_addr.s_addr = htonl(0xc0000200u + (i % 251));	/* 192.0.2.x */
	a.sin.sin_port = htons((uint16_t)(1024 + i % 60000));
	snprintf(user, sizeof(user), "user%u", i);
	return registry_add(registry_user(user, 1), &a, 0,
	    (const uint8_t *)"ctx", 3, 600, 0);
}

static void
mark(struct reg *r, void *arg)
{
	unsigned *seen = arg, i;

	if (sscanf(r->user->name, "user%u", &i) != 1)
		abort();
	seen[i]++;
}

START_TEST(registry_grows_under_a_scan)
{
	enum { FIRST = 3000, MORE = 9000 };
	struct reg **regs = calloc(FIRST + MORE, sizeof(*regs));
	uint32_t *ids = calloc(FIRST + MORE, sizeof(*ids));
	unsigned *seen = calloc(FIRST + MORE, sizeof(*seen)), i, next = FIRST;
	unsigned lost = 0;
	uint64_t cursor = 0;
	int more, saw_moving = 0;

	ck_assert_ptr_nonnull(regs);
	ck_assert_ptr_nonnull(ids);
	ck_assert_ptr_nonnull(seen);
	for (i = 0; i < FIRST; i++)
		regs[i] = add(i);
	do {
		more = registry_scan(&cursor, 32, mark, seen);
		for (i = 0; i < 40 && next < FIRST + MORE; i++, next++)
			regs[next] = add(next);
		saw_moving |= registry_moving();
		if (next % 400 == 0)
			registry_step();	/* as the loop does */
	} while (more);
	ck_assert(saw_moving);
	for (i = 0; i < FIRST && seen[i] == 1; i++)
		;
	ck_assert_msg(i == FIRST, "registration %u seen %u times", i,
	    i < FIRST ? seen[i] : 0);
	/* every registration and user is found while and after moving */
	for (i = 0; i < next; i++) {
		char user[32];

		lost += registry_find(regs[i]->id) != regs[i];
		snprintf(user, sizeof(user), "user%u", i);
		lost += registry_user(user, 0) != regs[i]->user;
	}
	ck_assert_uint_eq(lost, 0);
	ck_assert_uint_eq(registry_count(), next);
	ck_assert_uint_eq(registry_users(), next);
	while (registry_moving())
		registry_step();
	for (i = 0; i < next; i++)
		ids[i] = regs[i]->id;
	for (i = 0; i < next; i += 2)
		registry_remove(regs[i], "test");
	for (i = 0; i < next; i++)
		lost += registry_find(ids[i]) != (i % 2 ? regs[i] : NULL);
	ck_assert_uint_eq(lost, 0);
	ck_assert_uint_eq(registry_count(), next / 2);
	free(regs);
	free(ids);
	free(seen);
}
END_TEST

/*
 * A bucket array of 2 MB or more is faulted in by a thread before any
 * bucket moves to it: while that runs every entry stays in the old array
 * (moved stays 0) and is found; when it is done every page of the new
 * array is resident (mincore) although at most HTAB_MOVE_ADD buckets
 * moved; then the move runs as usual.  Freed while the thread runs, the
 * table waits for it.
 */
static size_t
resident_pages(void *p, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), n, i, r = 0;
	uintptr_t from = (uintptr_t)p & ~(uintptr_t)(page - 1);
	unsigned char *v;

	len += (uintptr_t)p - from;
	n = (len + page - 1) / page;
	v = malloc(n);
	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(mincore((void *)from, len, v), 0);
	for (i = 0; i < n; i++)
		r += v[i] & 1;
	free(v);
	return r * page >= len ? n : r;
}

START_TEST(big_array_faulted_in_first)
{
	enum { N = (1 << 18) + 1 };
	struct htab h, h2;
	struct ent *ents = calloc(N, sizeof(*ents));
	size_t i, lost = 0, len, page = (size_t)sysconf(_SC_PAGESIZE);
	int spins = 0;

	ck_assert_ptr_nonnull(ents);
	htab_init(&h, 1 << 18, offsetof(struct ent, next), ent_hash);
	for (i = 0; i < N; i++) {
		ents[i].key = (uint32_t)i;
		htab_insert(&h, ent_hash(&ents[i]), &ents[i]);
		if (i + 1 < N)
			ck_assert_ptr_null(h.t[1]);
	}
	/* the last insertion made a 4 MB array */
	ck_assert_ptr_nonnull(h.t[1]);
	ck_assert_uint_eq(h.mask[1] + 1, (size_t)1 << 19);
	len = (h.mask[1] + 1) * sizeof(void *);
	ck_assert_uint_le(h.moved, HTAB_MOVE_ADD);
	if (atomic_load(&h.pf_state) == HTAB_PF_RUNNING) {
		ck_assert_uint_eq(h.moved, 0);
		/* steps move nothing while it runs */
		while (atomic_load(&h.pf_state) == HTAB_PF_RUNNING &&
		    spins++ < 10000) {
			ck_assert_int_eq(htab_step(&h, 128), 1);
			ck_assert_uint_eq(h.moved, 0);
			for (i = 0; i < N; i += 997)
				lost += find(&h, (uint32_t)i) != &ents[i];
			usleep(1000);
		}
		ck_assert_int_ne(atomic_load(&h.pf_state), HTAB_PF_RUNNING);
	}
	ck_assert_uint_eq(lost, 0);
	/* the whole new array is in memory, not just what moved */
	ck_assert_uint_ge(resident_pages(h.t[1], len) * page, len);
	ck_assert_int_eq(htab_step(&h, 128), 1);
	ck_assert_uint_gt(h.moved, 0);
	ck_assert_int_eq(atomic_load(&h.pf_state), HTAB_PF_NONE);
	ck_assert_int_eq(htab_step(&h, (size_t)-1), 0);
	for (i = 0; i < N; i++)
		lost += find(&h, (uint32_t)i) != &ents[i];
	ck_assert_uint_eq(lost, 0);
	htab_free(&h);

	/* freed at once: htab_free waits for the thread */
	htab_init(&h2, 1 << 18, offsetof(struct ent, next), ent_hash);
	for (i = 0; i < N; i++)
		htab_insert(&h2, ent_hash(&ents[i]), &ents[i]);
	ck_assert_ptr_nonnull(h2.t[1]);
	htab_free(&h2);
	free(ents);
}
END_TEST

Suite *
make_htab_suite(void)
{
	Suite *s = suite_create("htab");
	TCase *tc = tcase_create("htab"), *tr = tcase_create("registry");

	tcase_add_test(tc, grows_in_steps);
	tcase_add_test(tc, remove_and_replace_while_moving);
	tcase_add_test(tc, foreach_while_moving);
	tcase_add_test(tc, scan_while_growing);
	tcase_add_test(tc, reserve);
	tcase_add_test(tc, big_array_faulted_in_first);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(tr, regctx_setup, regctx_teardown);
	tcase_set_timeout(tr, 60);
	tcase_add_test(tr, registry_grows_under_a_scan);
	suite_add_tcase(s, tr);
	return s;
}
