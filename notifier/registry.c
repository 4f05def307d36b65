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

void
registry_init(void)
{
	randombytes_buf(registry_g.hash_key, sizeof(registry_g.hash_key));
	registry_g.users_mask = registry_g.ids_mask = registry_g.addrs_mask = registry_g.tombs_mask = 1023;
	registry_g.prefix6 = mpd->cfg.ipv6_address_prefix;
	registry_g.tombs = registry_xcalloc(registry_g.tombs_mask + 1, sizeof(*registry_g.tombs));
	registry_g.users = registry_xcalloc(registry_g.users_mask + 1, sizeof(*registry_g.users));
	registry_g.ids = registry_xcalloc(registry_g.ids_mask + 1, sizeof(*registry_g.ids));
	registry_g.addrs = registry_xcalloc(registry_g.addrs_mask + 1, sizeof(*registry_g.addrs));
	registry_g.heap_cap = 1024;
	registry_g.heap = registry_xcalloc(registry_g.heap_cap, sizeof(*registry_g.heap));
}

/* Growth */

#define GROW(table, mask, count, type, nextf, hashf) do {		\
	size_t nm_ = (mask) * 2 + 1, i_;				\
	type **nt_ = registry_xcalloc(nm_ + 1, sizeof(*nt_));			\
	for (i_ = 0; i_ <= (mask); i_++) {				\
		type *e_ = (table)[i_], *n_;				\
		for (; e_ != NULL; e_ = n_) {				\
			size_t b_ = (size_t)(hashf(e_)) & nm_;		\
			n_ = e_->nextf;					\
			e_->nextf = nt_[b_];				\
			nt_[b_] = e_;					\
		}							\
	}								\
	free(table);							\
	(table) = nt_;							\
	(mask) = nm_;							\
} while (0)

static uint64_t
user_hash(const struct mp_user *u)
{
	return registry_hash_bytes(u->name, u->name_len);
}

static uint64_t
id_hash(const struct reg *r)
{
	return r->id;
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
addr_hash(const struct addr_count *a)
{
	return addr_hash_key(a->family, a->addr);
}

/* Users */

struct mp_user *
registry_user(const char *name, int create)
{
	size_t len = strlen(name), b;
	struct mp_user *u;

	b = (size_t)registry_hash_bytes(name, len) & registry_g.users_mask;
	for (u = registry_g.users[b]; u != NULL; u = u->hash_next)
		if (u->name_len == len && memcmp(u->name, name, len) == 0)
			return u;
	if (!create)
		return NULL;
	if (len == 0 || len > MP_USER_MAX)
		abort();
	u = registry_xcalloc(1, sizeof(*u) + len + 1);
	u->name_len = (uint8_t)len;
	memcpy(u->name, name, len + 1);
	u->hash_next = registry_g.users[b];
	registry_g.users[b] = u;
	registry_g.mem += sizeof(*u) + len + 1;
	if (++registry_g.n_users > registry_g.users_mask + 1)
		GROW(registry_g.users, registry_g.users_mask, registry_g.n_users, struct mp_user,
		    hash_next, user_hash);
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
	struct mp_user **b = &registry_g.users[h & registry_g.users_mask];
	const char *r;

	switch (stage) {
	case 0:
		__builtin_prefetch(b);
		break;
	case 1:
		if (*b != NULL)
			__builtin_prefetch(*b);
		break;
	case 2:
		if (*b != NULL && (r = (const char *)(*b)->regs) != NULL) {
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
	size_t b = (size_t)user_hash(u) & registry_g.users_mask;
	struct mp_user **pp;

	for (pp = &registry_g.users[b]; *pp != u; pp = &(*pp)->hash_next)
		if (*pp == NULL)
			abort();
	*pp = u->hash_next;
	registry_g.n_users--;
	registry_g.mem -= sizeof(*u) + u->name_len + 1;
	free(u);
}

struct mp_user *
registry_first_user(size_t *iter)
{
	for (*iter = 0; *iter <= registry_g.users_mask; (*iter)++)
		if (registry_g.users[*iter] != NULL)
			return registry_g.users[*iter];
	return NULL;
}

struct mp_user *
registry_next_user(size_t *iter, struct mp_user *u)
{
	if (u->hash_next != NULL)
		return u->hash_next;
	for ((*iter)++; *iter <= registry_g.users_mask; (*iter)++)
		if (registry_g.users[*iter] != NULL)
			return registry_g.users[*iter];
	return NULL;
}

/* Addresses */

static struct addr_count **
addr_slot(const union mp_addr *a, uint8_t *family, uint8_t key[16])
{
	struct addr_count **pp;

	addr_key(a, family, key);
	pp = &registry_g.addrs[(size_t)addr_hash_key(*family, key) & registry_g.addrs_mask];
	for (; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->family == *family && memcmp((*pp)->addr, key, 16) == 0)
			break;
	return pp;
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
	struct addr_count **pp = addr_slot(a, &family, key);

	return *pp ? (*pp)->count : 0;
}

static void
addr_ref(const union mp_addr *a, int delta)
{
	uint8_t family, key[16];
	struct addr_count **pp = addr_slot(a, &family, key), *e = *pp;

	if (delta > 0) {
		if (e == NULL) {
			e = registry_xcalloc(1, sizeof(*e));
			e->family = family;
			memcpy(e->addr, key, 16);
			*pp = e;
			registry_g.mem += sizeof(*e);
			if (++registry_g.n_addrs > registry_g.addrs_mask + 1)
				GROW(registry_g.addrs, registry_g.addrs_mask, registry_g.n_addrs,
				    struct addr_count, next, addr_hash);
		}
		e->count++;
		return;
	}
	if (e == NULL || e->count == 0)
		abort();
	if (--e->count == 0) {
		*pp = e->next;
		registry_g.n_addrs--;
		registry_g.mem -= sizeof(*e);
		free(e);
	}
}

/* Registrations */

struct reg *
registry_find(uint32_t id)
{
	struct reg *r;

	for (r = registry_g.ids[id & registry_g.ids_mask]; r != NULL; r = r->id_next)
		if (r->id == id)
			return r;
	return NULL;
}

/* Start loading the hash bucket registry_find(id) will read. */
void
registry_prefetch_id(uint32_t id)
{
	__builtin_prefetch(&registry_g.ids[id & registry_g.ids_mask]);
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

	r->id_next = registry_g.ids[r->id & registry_g.ids_mask];
	registry_g.ids[r->id & registry_g.ids_mask] = r;
	if (++registry_g.n_regs > registry_g.ids_mask + 1)
		GROW(registry_g.ids, registry_g.ids_mask, registry_g.n_regs, struct reg, id_next,
		    id_hash);
	if (registry_g.n_regs > mpd->stats.peak_registrations)
		mpd->stats.peak_registrations = registry_g.n_regs;
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
	registry_heap_delete(r);
	push_forget(r);
	for (pp = &registry_g.ids[r->id & registry_g.ids_mask]; *pp != r; pp = &(*pp)->id_next)
		if (*pp == NULL)
			abort();
	*pp = r->id_next;
	registry_g.n_regs--;
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
	for (pp = &registry_g.ids[r->id & registry_g.ids_mask]; *pp != r; pp = &(*pp)->id_next)
		if (*pp == NULL)
			abort();
	*pp = n;
	registry_g.heap[r->heap_idx] = n;
	registry_g.mem = registry_g.mem - r->ctx_len + ctx_len;
	push_forget(r);
	free(r);
	*rp = n;
	return 0;
}

/* [limits] ipv6_address_prefix changed: count the addresses again. */
void
registry_set_prefix6(unsigned bits)
{
	size_t i;
	struct reg *r;

	if (bits == registry_g.prefix6)
		return;
	for (i = 0; i <= registry_g.ids_mask; i++)
		for (r = registry_g.ids[i]; r != NULL; r = r->id_next)
			addr_ref(&r->addr, -1);
	registry_g.prefix6 = bits;
	for (i = 0; i <= registry_g.ids_mask; i++)
		for (r = registry_g.ids[i]; r != NULL; r = r->id_next)
			addr_ref(&r->addr, 1);
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
	return registry_g.n_regs;
}

size_t
registry_users(void)
{
	return registry_g.n_users;
}

size_t
registry_memory(void)
{
	return registry_g.mem + (registry_g.users_mask + 1 + registry_g.ids_mask + 1 + registry_g.addrs_mask + 1 +
	    registry_g.tombs_mask + 1 + registry_g.heap_cap) * sizeof(void *) +
	    registry_g.pq_cap * sizeof(*registry_g.pq);
}

void
registry_foreach(void (*fn)(struct reg *, void *), void *arg)
{
	size_t i;

	for (i = 0; i <= registry_g.ids_mask; i++) {
		struct reg *r = registry_g.ids[i], *next;

		for (; r != NULL; r = next) {
			next = r->id_next;
			fn(r, arg);
		}
	}
}

/*
 * registry_foreach in steps, for work that must not hold the loop (the
 * cluster's catch-up round): whole id buckets from it->bucket on, until
 * at least `max' registrations were visited.  Returns 1 when the table is
 * done.  If the table was resized meanwhile (buckets moved), it starts
 * again from the first bucket: some registrations are then visited twice.
 */
int
registry_foreach_step(struct registry_iter *it, size_t max,
    void (*fn)(struct reg *, void *), void *arg)
{
	size_t n = 0;

	if (it->mask != registry_g.ids_mask) {
		it->mask = registry_g.ids_mask;
		it->bucket = 0;
	}
	while (it->bucket <= registry_g.ids_mask && n < max) {
		struct reg *r = registry_g.ids[it->bucket++], *next;

		for (; r != NULL; r = next) {
			next = r->id_next;
			fn(r, arg);
			n++;
		}
	}
	return it->bucket > registry_g.ids_mask;
}

/*
 * Room for n registrations of as many users, before a start loads them:
 * the tables are sized once instead of doubling (and rehashing) twenty
 * times.
 */
void
registry_reserve(size_t n)
{
	while (registry_g.ids_mask + 1 < n)
		GROW(registry_g.ids, registry_g.ids_mask, registry_g.n_regs, struct reg, id_next,
		    id_hash);
	while (registry_g.users_mask + 1 < n)
		GROW(registry_g.users, registry_g.users_mask, registry_g.n_users, struct mp_user,
		    hash_next, user_hash);
	if (registry_g.heap_cap < n) {
		struct reg **h = reallocarray(registry_g.heap, n, sizeof(*h));

		if (h == NULL)
			fatal("heap");
		registry_g.heap = h;
		registry_g.heap_cap = n;
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
 * Visit the registrations of the id table from *cursor on, bucket by
 * bucket, until about max have been seen; returns 1 while buckets remain
 * (start with *cursor 0).  The cursor walks the buckets in reverse-binary
 * order (as Redis SCAN does), so a scan spread over many loop iterations
 * sees every registration that exists throughout it exactly once, even
 * when the table grows in between (it never shrinks).  fn must not remove
 * registrations.
 */
int
registry_scan(uint64_t *cursor, size_t max, void (*fn)(struct reg *, void *),
    void *arg)
{
	uint64_t v = *cursor, m = registry_g.ids_mask;
	size_t n = 0;
	struct reg *r;

	do {
		for (r = registry_g.ids[v & m]; r != NULL; r = r->id_next, n++)
			fn(r, arg);
		v |= ~m;
		v = rev64(rev64(v) + 1);
	} while (v != 0 && n < max);
	*cursor = v;
	return v != 0;
}

void
registry_free(void)
{
	while (registry_g.heap_len > 0)
		registry_remove(registry_g.heap[0], "shutdown");
	free(registry_g.users);
	free(registry_g.ids);
	free(registry_g.addrs);
	free(registry_g.heap);
	free(registry_g.pq);
	registry_tomb_prune(0);
	free(registry_g.tombs);
	memset(&registry_g, 0, sizeof(registry_g));
}
