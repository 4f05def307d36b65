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
 * Each registration has one deadline: the earliest of its expiry, its
 * next push or retransmission and its PROBE_ECHO.  Deadlines sit in a binary min-heap indexed
 * from the registration (heap_idx), so expiry costs O(log n) per change and
 * nothing per tick; the daemon arms one libevent timer for the heap's top.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "journal.h"
#include "log.h"
#include "mailpushd.h"

struct tomb {
	struct tomb	*next;		/* hash chain */
	struct tomb	*fifo_next;	/* oldest first */
	uint64_t	 expires_ms;
	uint64_t	 hwm;
	uint64_t	 user_hash;
	uint8_t		 device[PROTO_DEVICE_LEN];
};

struct addr_count {
	struct addr_count *next;
	uint32_t	count;
	uint8_t		family;
	uint8_t		addr[16];
};

static struct {
	struct mp_user	**users;
	size_t		  n_users, users_mask;
	struct reg	**ids;
	size_t		  n_regs, ids_mask;
	struct addr_count **addrs;
	size_t		  n_addrs, addrs_mask;
	struct reg	**heap;
	size_t		  heap_len, heap_cap;
	struct tomb	**tombs;
	size_t		  n_tombs, tombs_mask;
	struct tomb	 *tomb_head, *tomb_tail;
	unsigned	  prefix6;	/* bits of an IPv6 "address" */
	uint8_t		  hash_key[crypto_shorthash_KEYBYTES];
	size_t		  mem;		/* bytes allocated for entries */
} R;

static uint64_t
hash_bytes(const void *p, size_t len)
{
	uint8_t out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, p, len, R.hash_key);
	memcpy(&h, out, sizeof(h));
	return h;
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p == NULL)
		fatal("calloc");
	return p;
}

void
registry_init(void)
{
	randombytes_buf(R.hash_key, sizeof(R.hash_key));
	R.users_mask = R.ids_mask = R.addrs_mask = R.tombs_mask = 1023;
	R.prefix6 = mpd->cfg.ipv6_address_prefix;
	R.tombs = xcalloc(R.tombs_mask + 1, sizeof(*R.tombs));
	R.users = xcalloc(R.users_mask + 1, sizeof(*R.users));
	R.ids = xcalloc(R.ids_mask + 1, sizeof(*R.ids));
	R.addrs = xcalloc(R.addrs_mask + 1, sizeof(*R.addrs));
	R.heap_cap = 1024;
	R.heap = xcalloc(R.heap_cap, sizeof(*R.heap));
}

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
	R.heap[i] = r;
	r->heap_idx = (uint32_t)i;
}

static void
heap_up(size_t i)
{
	struct reg *r = R.heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (reg_deadline(R.heap[parent]) <= reg_deadline(r))
			break;
		heap_set(i, R.heap[parent]);
		i = parent;
	}
	heap_set(i, r);
}

static void
heap_down(size_t i)
{
	struct reg *r = R.heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= R.heap_len)
			break;
		if (c + 1 < R.heap_len &&
		    reg_deadline(R.heap[c + 1]) < reg_deadline(R.heap[c]))
			c++;
		if (reg_deadline(r) <= reg_deadline(R.heap[c]))
			break;
		heap_set(i, R.heap[c]);
		i = c;
	}
	heap_set(i, r);
}

static void
heap_insert(struct reg *r)
{
	if (R.heap_len == R.heap_cap) {
		struct reg **n = reallocarray(R.heap, R.heap_cap * 2,
		    sizeof(*n));

		if (n == NULL)
			fatal("heap");
		R.heap = n;
		R.heap_cap *= 2;
	}
	heap_set(R.heap_len++, r);
	heap_up(r->heap_idx);
}

static void
heap_delete(struct reg *r)
{
	size_t i = r->heap_idx;
	struct reg *last;

	if (i >= R.heap_len || R.heap[i] != r)
		abort();
	last = R.heap[--R.heap_len];
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
	return R.heap_len ? reg_deadline(R.heap[0]) : 0;
}

void
registry_run_timers(uint64_t now_ms)
{
	while (R.heap_len > 0 && reg_deadline(R.heap[0]) <= now_ms) {
		struct reg *r = R.heap[0];

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

/* Growth */

#define GROW(table, mask, count, type, nextf, hashf) do {		\
	size_t nm_ = (mask) * 2 + 1, i_;				\
	type **nt_ = xcalloc(nm_ + 1, sizeof(*nt_));			\
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
	return hash_bytes(u->name, u->name_len);
}

static uint64_t
id_hash(const struct reg *r)
{
	return r->id;
}

/* The address a limit counts: IPv4 whole, IPv6 cut to R.prefix6 bits. */
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
	bits = R.prefix6 == 0 || R.prefix6 > 128 ? 128 : R.prefix6;
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
	return hash_bytes(buf, sizeof(buf));
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

	b = (size_t)hash_bytes(name, len) & R.users_mask;
	for (u = R.users[b]; u != NULL; u = u->hash_next)
		if (u->name_len == len && memcmp(u->name, name, len) == 0)
			return u;
	if (!create)
		return NULL;
	if (len == 0 || len > MP_USER_MAX)
		abort();
	u = xcalloc(1, sizeof(*u) + len + 1);
	u->name_len = (uint8_t)len;
	memcpy(u->name, name, len + 1);
	u->hash_next = R.users[b];
	R.users[b] = u;
	R.mem += sizeof(*u) + len + 1;
	if (++R.n_users > R.users_mask + 1)
		GROW(R.users, R.users_mask, R.n_users, struct mp_user,
		    hash_next, user_hash);
	return u;
}

static void
user_free(struct mp_user *u)
{
	size_t b = (size_t)user_hash(u) & R.users_mask;
	struct mp_user **pp;

	for (pp = &R.users[b]; *pp != u; pp = &(*pp)->hash_next)
		if (*pp == NULL)
			abort();
	*pp = u->hash_next;
	R.n_users--;
	R.mem -= sizeof(*u) + u->name_len + 1;
	free(u);
}

struct mp_user *
registry_first_user(size_t *iter)
{
	for (*iter = 0; *iter <= R.users_mask; (*iter)++)
		if (R.users[*iter] != NULL)
			return R.users[*iter];
	return NULL;
}

struct mp_user *
registry_next_user(size_t *iter, struct mp_user *u)
{
	if (u->hash_next != NULL)
		return u->hash_next;
	for ((*iter)++; *iter <= R.users_mask; (*iter)++)
		if (R.users[*iter] != NULL)
			return R.users[*iter];
	return NULL;
}

/* Addresses */

static struct addr_count **
addr_slot(const union mp_addr *a, uint8_t *family, uint8_t key[16])
{
	struct addr_count **pp;

	addr_key(a, family, key);
	pp = &R.addrs[(size_t)addr_hash_key(*family, key) & R.addrs_mask];
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
			e = xcalloc(1, sizeof(*e));
			e->family = family;
			memcpy(e->addr, key, 16);
			*pp = e;
			R.mem += sizeof(*e);
			if (++R.n_addrs > R.addrs_mask + 1)
				GROW(R.addrs, R.addrs_mask, R.n_addrs,
				    struct addr_count, next, addr_hash);
		}
		e->count++;
		return;
	}
	if (e == NULL || e->count == 0)
		abort();
	if (--e->count == 0) {
		*pp = e->next;
		R.n_addrs--;
		R.mem -= sizeof(*e);
		free(e);
	}
}

/* Registrations */

struct reg *
registry_find(uint32_t id)
{
	struct reg *r;

	for (r = R.ids[id & R.ids_mask]; r != NULL; r = r->id_next)
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

	r = xcalloc(1, sizeof(*r) + ctx_len);
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
	R.mem += sizeof(*r) + ctx_len;

	for (pp = &u->regs; *pp != NULL; pp = &(*pp)->user_next)
		;
	*pp = r;
	u->n_regs++;

	r->id_next = R.ids[r->id & R.ids_mask];
	R.ids[r->id & R.ids_mask] = r;
	if (++R.n_regs > R.ids_mask + 1)
		GROW(R.ids, R.ids_mask, R.n_regs, struct reg, id_next,
		    id_hash);
	if (R.n_regs > mpd->stats.peak_registrations)
		mpd->stats.peak_registrations = R.n_regs;
	addr_ref(addr, 1);
	heap_insert(r);
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
		R.mem -= strlen(r->mailboxes->names[i]) + 1;
		free(r->mailboxes->names[i]);
	}
	R.mem -= sizeof(*r->mailboxes) + r->mailboxes->n * sizeof(char *);
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
	heap_delete(r);
	push_forget(r);
	for (pp = &R.ids[r->id & R.ids_mask]; *pp != r; pp = &(*pp)->id_next)
		if (*pp == NULL)
			abort();
	*pp = r->id_next;
	R.n_regs--;
	for (pp = &u->regs; *pp != r; pp = &(*pp)->user_next)
		if (*pp == NULL)
			abort();
	*pp = r->user_next;
	addr_ref(&r->addr, -1);
	free_mailboxes(r);
	R.mem -= sizeof(*r) + r->ctx_len;
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
	n = xcalloc(1, sizeof(*n) + ctx_len);
	memcpy(n, r, sizeof(*n));
	n->ctx_len = ctx_len;
	memcpy(n->ctx, ctx, ctx_len);
	for (pp = &r->user->regs; *pp != r; pp = &(*pp)->user_next)
		if (*pp == NULL)
			abort();
	*pp = n;
	for (pp = &R.ids[r->id & R.ids_mask]; *pp != r; pp = &(*pp)->id_next)
		if (*pp == NULL)
			abort();
	*pp = n;
	R.heap[r->heap_idx] = n;
	R.mem = R.mem - r->ctx_len + ctx_len;
	push_forget(r);
	free(r);
	*rp = n;
	return 0;
}

/* Tombstones */

static uint64_t
tomb_key(const char *user)
{
	return hash_bytes(user, strlen(user));
}

static size_t
tomb_bucket(uint64_t uh, const uint8_t device[PROTO_DEVICE_LEN])
{
	uint64_t d;

	memcpy(&d, device, sizeof(d));
	return (size_t)(uh ^ d) & R.tombs_mask;
}

static void
tomb_unlink(struct tomb *t)
{
	struct tomb **pp = &R.tombs[tomb_bucket(t->user_hash, t->device)];

	for (; *pp != t; pp = &(*pp)->next)
		if (*pp == NULL)
			abort();
	*pp = t->next;
}

/* Drop the oldest tombstones: expired ones, and one over the bound. */
static void
tomb_prune(size_t max)
{
	struct tomb *t;

	while ((t = R.tomb_head) != NULL &&
	    (t->expires_ms <= mpd->now_ms || R.n_tombs > max)) {
		R.tomb_head = t->fifo_next;
		if (R.tomb_head == NULL)
			R.tomb_tail = NULL;
		tomb_unlink(t);
		R.n_tombs--;
		R.mem -= sizeof(*t);
		free(t);
	}
}

void
registry_tomb_add(const char *user, const uint8_t device[PROTO_DEVICE_LEN],
    uint64_t hwm)
{
	uint64_t uh = tomb_key(user);
	size_t b = tomb_bucket(uh, device);
	struct tomb *t;

	tomb_prune(mpd->cfg.max_registrations);
	for (t = R.tombs[b]; t != NULL; t = t->next)
		if (t->user_hash == uh &&
		    memcmp(t->device, device, PROTO_DEVICE_LEN) == 0) {
			if (hwm > t->hwm)
				t->hwm = hwm;
			return;	/* it keeps its place in the FIFO */
		}
	t = xcalloc(1, sizeof(*t));
	t->user_hash = uh;
	memcpy(t->device, device, PROTO_DEVICE_LEN);
	t->hwm = hwm;
	/* a request is accepted while its timestamp is within the window */
	t->expires_ms = hwm + mpd->cfg.timestamp_window + 1;
	if (t->expires_ms < mpd->now_ms + mpd->cfg.timestamp_window)
		t->expires_ms = mpd->now_ms + mpd->cfg.timestamp_window;
	t->next = R.tombs[b];
	R.tombs[b] = t;
	if (R.tomb_tail != NULL)
		R.tomb_tail->fifo_next = t;
	else
		R.tomb_head = t;
	R.tomb_tail = t;
	R.mem += sizeof(*t);
	if (++R.n_tombs > R.tombs_mask + 1) {
		size_t nm = R.tombs_mask * 2 + 1;
		struct tomb **nt = xcalloc(nm + 1, sizeof(*nt)), *e;

		free(R.tombs);
		R.tombs = nt;
		R.tombs_mask = nm;
		for (e = R.tomb_head; e != NULL; e = e->fifo_next) {
			b = tomb_bucket(e->user_hash, e->device);
			e->next = R.tombs[b];
			R.tombs[b] = e;
		}
	}
	tomb_prune(mpd->cfg.max_registrations);
}

uint64_t
registry_tomb_hwm(const char *user, const uint8_t device[PROTO_DEVICE_LEN])
{
	uint64_t uh = tomb_key(user);
	struct tomb *t;

	tomb_prune(mpd->cfg.max_registrations);
	for (t = R.tombs[tomb_bucket(uh, device)]; t != NULL; t = t->next)
		if (t->user_hash == uh &&
		    memcmp(t->device, device, PROTO_DEVICE_LEN) == 0)
			return t->hwm;
	return 0;
}

size_t
registry_tombs(void)
{
	return R.n_tombs;
}

/* [limits] ipv6_address_prefix changed: count the addresses again. */
void
registry_set_prefix6(unsigned bits)
{
	size_t i;
	struct reg *r;

	if (bits == R.prefix6)
		return;
	for (i = 0; i <= R.ids_mask; i++)
		for (r = R.ids[i]; r != NULL; r = r->id_next)
			addr_ref(&r->addr, -1);
	R.prefix6 = bits;
	for (i = 0; i <= R.ids_mask; i++)
		for (r = R.ids[i]; r != NULL; r = r->id_next)
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
	m = xcalloc(1, sizeof(*m) + rq->n_mailboxes * sizeof(char *));
	m->n = rq->n_mailboxes;
	for (i = 0; i < m->n; i++) {
		if ((m->names[i] = strdup(rq->mailboxes[i].name)) == NULL)
			fatal("strdup");
		R.mem += rq->mailboxes[i].len + 1;
	}
	R.mem += sizeof(*m) + m->n * sizeof(char *);
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
	return R.n_regs;
}

size_t
registry_users(void)
{
	return R.n_users;
}

size_t
registry_memory(void)
{
	return R.mem + (R.users_mask + 1 + R.ids_mask + 1 + R.addrs_mask + 1 +
	    R.tombs_mask + 1 + R.heap_cap) * sizeof(void *);
}

void
registry_foreach(void (*fn)(struct reg *, void *), void *arg)
{
	size_t i;

	for (i = 0; i <= R.ids_mask; i++) {
		struct reg *r = R.ids[i], *next;

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

	if (it->mask != R.ids_mask) {
		it->mask = R.ids_mask;
		it->bucket = 0;
	}
	while (it->bucket <= R.ids_mask && n < max) {
		struct reg *r = R.ids[it->bucket++], *next;

		for (; r != NULL; r = next) {
			next = r->id_next;
			fn(r, arg);
			n++;
		}
	}
	return it->bucket > R.ids_mask;
}

/*
 * Room for n registrations of as many users, before a start loads them:
 * the tables are sized once instead of doubling (and rehashing) twenty
 * times.
 */
void
registry_reserve(size_t n)
{
	while (R.ids_mask + 1 < n)
		GROW(R.ids, R.ids_mask, R.n_regs, struct reg, id_next,
		    id_hash);
	while (R.users_mask + 1 < n)
		GROW(R.users, R.users_mask, R.n_users, struct mp_user,
		    hash_next, user_hash);
	if (R.heap_cap < n) {
		struct reg **h = reallocarray(R.heap, n, sizeof(*h));

		if (h == NULL)
			fatal("heap");
		R.heap = h;
		R.heap_cap = n;
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
	uint64_t v = *cursor, m = R.ids_mask;
	size_t n = 0;
	struct reg *r;

	do {
		for (r = R.ids[v & m]; r != NULL; r = r->id_next, n++)
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
	while (R.heap_len > 0)
		registry_remove(R.heap[0], "shutdown");
	free(R.users);
	free(R.ids);
	free(R.addrs);
	free(R.heap);
	tomb_prune(0);
	free(R.tombs);
	memset(&R, 0, sizeof(R));
}
