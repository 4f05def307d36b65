/*
 * registry.c: the registration table.
 *
 * Users live in a chained hash table keyed by SipHash (libsodium's
 * crypto_shorthash, random key per start) of the normalised name, so lookup
 * by user is O(1) and a hostile choice of names cannot degrade it.
 * Registrations hang off their user in creation order (a user's device is
 * found on that short list), and are also in a hash table by their random
 * id (for KEEPALIVE, the control socket and late send errors).  A third
 * table counts registrations per client address: an IPv4 address, or an
 * IPv6 prefix ([limits] ipv6_address_prefix bits, /64 by default, since
 * one subscriber usually holds a whole /64).  A fourth keeps tombstones:
 * the last request timestamp of a device that unregistered or was
 * refused, until that timestamp leaves the window, so no captured request
 * replayed within the window has an effect; a FIFO bounds them to
 * max_registrations.
 *
 * A registration's deadlines (expiry, PROBE_ECHO, next push or
 * retransmission) sit in two heaps, so a change costs O(log n) and
 * nothing happens per tick; the daemon arms one libevent timer for the
 * earliest.  The heaps are registry_heap.c, the tombstones
 * registry_tomb.c.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "journal.h"
#include "log.h"
#include "mailpushd.h"
#include "registry_int.h"

struct registry_state registry_g;

uint64_t
registry_hash_bytes(const void *p, size_t len)
{
	uint8_t out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, p, len, registry_g.hash_key);
	memcpy(&h, out, sizeof(h));
	return h;
}

void *
registry_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p == NULL)
		fatal("calloc");
	return p;
}

static uint64_t	user_hash(const void *);
static uint64_t	id_hash(const void *);
static uint64_t	addr_hash(const void *);

void
registry_init(void)
{
	randombytes_buf(registry_g.hash_key, sizeof(registry_g.hash_key));
	registry_g.prefix6 = mpd->cfg.ipv6_address_prefix;
	htab_init(&registry_g.users, 1024, offsetof(struct mp_user, hash_next),
	    user_hash);
	htab_init(&registry_g.ids, 1024, offsetof(struct reg, id_next),
	    id_hash);
	htab_init(&registry_g.addrs, 1024, offsetof(struct addr_count, next),
	    addr_hash);
	registry_tomb_init();
	registry_g.heap_cap = 1024;
	registry_g.heap = registry_xcalloc(registry_g.heap_cap, sizeof(*registry_g.heap));
}

static uint64_t
user_hash(const void *e)
{
	const struct mp_user *u = e;

	return registry_hash_bytes(u->name, u->name_len);
}

static uint64_t
id_hash(const void *e)
{
	return ((const struct reg *)e)->id;
}

/* The address a limit counts: IPv4 whole, IPv6 cut to registry_g.prefix6 bits. */
static void
addr_key(const union mp_addr *a, uint8_t *family, uint8_t key[16])
{
	unsigned bits, i;

	memset(key, 0, 16);
	if (a->sa.sa_family == AF_INET) {
		*family = AF_INET;
		memcpy(key, &a->sin.sin_addr, 4);
		return;
	}
	*family = AF_INET6;
	memcpy(key, &a->sin6.sin6_addr, 16);
	bits = registry_g.prefix6 == 0 || registry_g.prefix6 > 128 ? 128 : registry_g.prefix6;
	for (i = 0; i < 16; i++, bits = bits > 8 ? bits - 8 : 0)
		if (bits < 8)
			key[i] &= (uint8_t)(0xff00 >> bits);
}

static uint64_t
addr_hash_key(uint8_t family, const uint8_t key[16])
{
	uint8_t buf[17];

	buf[0] = family;
	memcpy(buf + 1, key, 16);
	return registry_hash_bytes(buf, sizeof(buf));
}

static uint64_t
addr_hash(const void *e)
{
	const struct addr_count *a = e;

	return addr_hash_key(a->family, a->addr);
}

/* Users */

struct mp_user *
registry_user(const char *name, int create)
{
	size_t len = strlen(name);
	uint64_t h = registry_hash_bytes(name, len);
	struct mp_user *u;

	for (u = htab_first(&registry_g.users, h); u != NULL; u = u->hash_next)
		if (u->name_len == len && memcmp(u->name, name, len) == 0)
			return u;
	if (!create)
		return NULL;
	if (len == 0 || len > MP_USER_MAX)
		abort();
	u = registry_xcalloc(1, sizeof(*u) + len + 1);
	u->name_len = (uint8_t)len;
	memcpy(u->name, name, len + 1);
	htab_insert(&registry_g.users, h, u);
	registry_g.mem += sizeof(*u) + len + 1;
	return u;
}

/*
 * Start loading, without waiting, what registry_user() of the name with
 * hash h (registry_user_hash) will read: at stage 0 its hash bucket, at 1
 * the first user in it, at 2 that user's first registration.  A batch of
 * lookups run stage by stage over the whole batch waits for its cache
 * misses together instead of one after the other (events.c).
 */
uint64_t
registry_user_hash(const char *name)
{
	return registry_hash_bytes(name, strlen(name));
}

void
registry_prefetch_user(uint64_t h, int stage)
{
	void **b = htab_slot(&registry_g.users, h);
	const struct mp_user *u;
	const char *r;

	/* stage 0 only prefetches: *b is read from stage 1 on */
	switch (stage) {
	case 0:
		__builtin_prefetch(b);
		break;
	case 1:
		if ((u = *b) != NULL)
			__builtin_prefetch(u);
		break;
	case 2:
		if ((u = *b) != NULL && (r = (const char *)u->regs) != NULL) {
			__builtin_prefetch(r);
			__builtin_prefetch(r + 64);
			__builtin_prefetch(r + 128);
		}
		break;
	}
}

static void
user_free(struct mp_user *u)
{
	htab_remove(&registry_g.users, user_hash(u), u);
	registry_g.mem -= sizeof(*u) + u->name_len + 1;
	free(u);
}

/* Addresses */

/* The count of a's address (NULL if none); *h its hash. */
static struct addr_count *
addr_find(const union mp_addr *a, uint8_t *family, uint8_t key[16],
    uint64_t *h)
{
	struct addr_count *e;

	addr_key(a, family, key);
	*h = addr_hash_key(*family, key);
	for (e = htab_first(&registry_g.addrs, *h); e != NULL; e = e->next)
		if (e->family == *family && memcmp(e->addr, key, 16) == 0)
			break;
	return e;
}

/* Do two addresses count as one for max_registrations_per_address? */
int
registry_same_addr(const union mp_addr *a, const union mp_addr *b)
{
	uint8_t fa, fb, ka[16], kb[16];

	addr_key(a, &fa, ka);
	addr_key(b, &fb, kb);
	return fa == fb && memcmp(ka, kb, 16) == 0;
}

unsigned
registry_addr_count(const union mp_addr *a)
{
	uint8_t family, key[16];
	uint64_t h;
	struct addr_count *e = addr_find(a, &family, key, &h);

	return e != NULL ? e->count : 0;
}

static void
addr_ref(const union mp_addr *a, int delta)
{
	uint8_t family, key[16];
	uint64_t h;
	struct addr_count *e = addr_find(a, &family, key, &h);

	if (delta > 0) {
		if (e == NULL) {
			e = registry_xcalloc(1, sizeof(*e));
			e->family = family;
			memcpy(e->addr, key, 16);
			htab_insert(&registry_g.addrs, h, e);
			registry_g.mem += sizeof(*e);
		}
		e->count++;
		return;
	}
	if (e == NULL || e->count == 0)
		abort();
	if (--e->count == 0) {
		htab_remove(&registry_g.addrs, h, e);
		registry_g.mem -= sizeof(*e);
		free(e);
	}
}

/* Registrations */

struct reg *
registry_find(uint32_t id)
{
	struct reg *r;

	for (r = htab_first(&registry_g.ids, id); r != NULL; r = r->id_next)
		if (r->id == id)
			return r;
	return NULL;
}

static uint32_t
new_id(void)
{
	uint32_t id;

	do
		id = randombytes_random();
	while (id == 0 || registry_find(id) != NULL);
	return id;
}

struct reg *
registry_add(struct mp_user *u, const union mp_addr *addr, int listener,
    const uint8_t *ctx, uint16_t ctx_len, uint32_t lifetime_s, uint32_t id)
{
	struct reg *r, **pp;
	uint32_t now = (uint32_t)(mpd->now_ms / 1000);

	r = registry_xcalloc(1, sizeof(*r) + ctx_len);
	r->user = u;
	r->id = id != 0 ? id : new_id();
	r->created = now;
	/* rounded up: it lives at least the lifetime its client was told */
	r->expires = (uint32_t)((mpd->now_ms + 999) / 1000) + lifetime_s;
	r->state = REG_ACTIVE;
	r->listener = (uint8_t)listener;
	memcpy(&r->addr, addr, addr_len(addr));
	r->ctx_len = ctx_len;
	if (ctx_len > 0)
		memcpy(r->ctx, ctx, ctx_len);
	registry_g.mem += sizeof(*r) + ctx_len;

	for (pp = &u->regs; *pp != NULL; pp = &(*pp)->user_next)
		;
	*pp = r;
	u->n_regs++;

	htab_insert(&registry_g.ids, r->id, r);
	if (registry_g.ids.n > mpd->stats.peak_registrations)
		mpd->stats.peak_registrations = registry_g.ids.n;
	addr_ref(addr, 1);
	registry_heap_insert(r);
	mpd->state_dirty = 1;
	journal_log_reg(r);
	return r;
}

static void
free_mailboxes(struct reg *r)
{
	size_t i;

	if (r->mailboxes == NULL)
		return;
	for (i = 0; i < r->mailboxes->n; i++) {
		registry_g.mem -= strlen(r->mailboxes->names[i]) + 1;
		free(r->mailboxes->names[i]);
	}
	registry_g.mem -= sizeof(*r->mailboxes) + r->mailboxes->n * sizeof(char *);
	free(r->mailboxes);
	r->mailboxes = NULL;
}

void
registry_remove(struct reg *r, const char *why)
{
	struct mp_user *u = r->user;
	struct reg **pp;

	log_debug("registration %08x of %s from %s removed: %s", r->id,
	    u->name, addr_str(&r->addr), why);
	journal_log_del(r->id);
	journal_moved(r, NULL);
	registry_heap_delete(r);
	push_forget(r);
	htab_remove(&registry_g.ids, r->id, r);
	for (pp = &u->regs; *pp != r; pp = &(*pp)->user_next)
		if (*pp == NULL)
			abort();
	*pp = r->user_next;
	addr_ref(&r->addr, -1);
	free_mailboxes(r);
	registry_g.mem -= sizeof(*r) + r->ctx_len;
	free(r);
	mpd->state_dirty = 1;
	if (--u->n_regs == 0)
		user_free(u);
}

struct reg *
registry_device(struct mp_user *u, const uint8_t device[PROTO_DEVICE_LEN])
{
	struct reg *r;

	for (r = u->regs; r != NULL; r = r->user_next)
		if (memcmp(r->device, device, PROTO_DEVICE_LEN) == 0)
			return r;
	return NULL;
}

/*
 * A device registering again may bring another context: the entry is
 * reallocated for its length, and every table pointing at it follows.
 */
int
registry_set_ctx(struct reg **rp, const uint8_t *ctx, uint16_t ctx_len)
{
	struct reg *r = *rp, *n, **pp;

	if (r->ctx_len == ctx_len) {
		memcpy(r->ctx, ctx, ctx_len);
		return 0;
	}
	n = registry_xcalloc(1, sizeof(*n) + ctx_len);
	memcpy(n, r, sizeof(*n));
	n->ctx_len = ctx_len;
	memcpy(n->ctx, ctx, ctx_len);
	for (pp = &r->user->regs; *pp != r; pp = &(*pp)->user_next)
		if (*pp == NULL)
			abort();
	*pp = n;
	htab_replace(&registry_g.ids, r->id, r, n);
	registry_g.heap[r->heap_idx] = n;
	registry_g.mem = registry_g.mem - r->ctx_len + ctx_len;
	journal_moved(r, n);
	push_forget(r);
	free(r);
	*rp = n;
	return 0;
}

static void
addr_unref_cb(void *e, void *arg)
{
	(void)arg;
	addr_ref(&((struct reg *)e)->addr, -1);
}

static void
addr_ref_cb(void *e, void *arg)
{
	(void)arg;
	addr_ref(&((struct reg *)e)->addr, 1);
}

/* [limits] ipv6_address_prefix changed: count the addresses again. */
void
registry_set_prefix6(unsigned bits)
{
	if (bits == registry_g.prefix6)
		return;
	htab_foreach(&registry_g.ids, addr_unref_cb, NULL);
	registry_g.prefix6 = bits;
	htab_foreach(&registry_g.ids, addr_ref_cb, NULL);
}

void
registry_set_addr(struct reg *r, const union mp_addr *addr, int listener)
{
	addr_ref(&r->addr, -1);
	addr_ref(addr, 1);
	memset(&r->addr, 0, sizeof(r->addr));
	memcpy(&r->addr, addr, addr_len(addr));
	r->listener = (uint8_t)listener;
	journal_log_reg(r);
}

int
registry_set_mailboxes(struct reg *r, const struct mp_request *rq)
{
	struct reg_mailboxes *m;
	size_t i;

	free_mailboxes(r);
	journal_log_reg(r);
	if (rq->n_mailboxes == 0)
		return 0;
	m = registry_xcalloc(1, sizeof(*m) + rq->n_mailboxes * sizeof(char *));
	m->n = rq->n_mailboxes;
	for (i = 0; i < m->n; i++) {
		if ((m->names[i] = strdup(rq->mailboxes[i].name)) == NULL)
			fatal("strdup");
		registry_g.mem += rq->mailboxes[i].len + 1;
	}
	registry_g.mem += sizeof(*m) + m->n * sizeof(char *);
	r->mailboxes = m;
	return 0;
}

int
registry_wants(const struct reg *r, const char *mailbox)
{
	size_t i;

	if (r->mailboxes == NULL)
		return 1;
	for (i = 0; i < r->mailboxes->n; i++) {
		const char *n = r->mailboxes->names[i];

		if (strcasecmp(n, "INBOX") == 0 ?
		    strcasecmp(mailbox, "INBOX") == 0 : strcmp(n, mailbox) == 0)
			return 1;
	}
	return 0;
}

size_t
registry_count(void)
{
	return registry_g.ids.n;
}

size_t
registry_users(void)
{
	return registry_g.users.n;
}

size_t
registry_memory(void)
{
	return registry_g.mem + (htab_buckets(&registry_g.users) +
	    htab_buckets(&registry_g.ids) + htab_buckets(&registry_g.addrs) +
	    htab_buckets(&registry_g.tombs) + registry_g.heap_cap) *
	    sizeof(void *) +
	    registry_g.pq_cap * sizeof(*registry_g.pq);
}

/* registry_foreach's and registry_scan's function, through htab's */
struct reg_fn {
	void	(*fn)(struct reg *, void *);
	void	 *arg;
};

static void
reg_fn_call(void *e, void *arg)
{
	const struct reg_fn *f = arg;

	f->fn(e, f->arg);
}

/* fn may remove the registration it is given, and add none. */
void
registry_foreach(void (*fn)(struct reg *, void *), void *arg)
{
	struct reg_fn f = { fn, arg };

	htab_foreach(&registry_g.ids, reg_fn_call, &f);
}

/*
 * registry_foreach in steps, for work that must not hold the loop (the
 * cluster's catch-up round): at least `max' registrations from where the
 * last step ended (registry_scan's cursor), or the rest.  Returns 1 when
 * the table is done.  fn must not add or remove registrations.
 */
int
registry_foreach_step(struct registry_iter *it, size_t max,
    void (*fn)(struct reg *, void *), void *arg)
{
	return !registry_scan(&it->cursor, max, fn, arg);
}

/*
 * Room for n registrations of as many users, before a start loads them:
 * the tables are sized once instead of doubling twenty times.
 */
void
registry_reserve(size_t n)
{
	htab_reserve(&registry_g.ids, n);
	htab_reserve(&registry_g.users, n);
	if (registry_g.heap_cap < n) {
		struct reg **h = reallocarray(registry_g.heap, n, sizeof(*h));

		if (h == NULL)
			fatal("heap");
		registry_g.heap = h;
		registry_g.heap_cap = n;
	}
}

/*
 * Once per loop iteration (mailpushd.c): a table that is growing moves
 * REGISTRY_STEP_BUCKETS more of its buckets (htab.c), about 50 us for
 * the users' table, whose hashes are recomputed.
 */
void
registry_step(void)
{
	htab_step(&registry_g.ids, REGISTRY_STEP_BUCKETS);
	htab_step(&registry_g.users, REGISTRY_STEP_BUCKETS);
	htab_step(&registry_g.addrs, REGISTRY_STEP_BUCKETS);
	htab_step(&registry_g.tombs, REGISTRY_STEP_BUCKETS);
}

/* Is a table still moving to its larger bucket array? (the tests) */
int
registry_moving(void)
{
	return htab_moving(&registry_g.ids) ||
	    htab_moving(&registry_g.users) ||
	    htab_moving(&registry_g.addrs) ||
	    htab_moving(&registry_g.tombs);
}

/*
 * Visit the registrations from *cursor on, until about max have been
 * seen; returns 1 while some remain (start with *cursor 0).  Every
 * registration that exists throughout the scan is seen exactly once, even
 * while the table grows (htab_scan).  fn must not add or remove
 * registrations.
 */
int
registry_scan(uint64_t *cursor, size_t max, void (*fn)(struct reg *, void *),
    void *arg)
{
	struct reg_fn f = { fn, arg };

	return htab_scan(&registry_g.ids, cursor, max, reg_fn_call, &f);
}

void
registry_free(void)
{
	while (registry_g.heap_len > 0)
		registry_remove(registry_g.heap[0], "shutdown");
	htab_free(&registry_g.users);
	htab_free(&registry_g.ids);
	htab_free(&registry_g.addrs);
	free(registry_g.heap);
	free(registry_g.pq);
	registry_tomb_prune(0);
	htab_free(&registry_g.tombs);
	memset(&registry_g, 0, sizeof(registry_g));
}
