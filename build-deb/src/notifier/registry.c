/*
 * registry.c: the registration table.
 *
 * Users live in a chained hash table keyed by SipHash (libsodium's
 * crypto_shorthash, random key per start) of the normalised name, so lookup
 * by user is O(1) and a hostile choice of names cannot degrade it.
 * Registrations hang off their user in creation order, and are also in a
 * hash table by their random id (for REFRESH, UNREGISTER and PUSH_ACK).  A
 * third table counts registrations per client IP address.
 *
 * Each registration has one deadline: the earlier of its expiry and its
 * next push or retransmission.  Deadlines sit in a binary min-heap indexed
 * from the registration (heap_idx), so expiry costs O(log n) per change and
 * nothing per tick; the daemon arms one libevent timer for the heap's top.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "mailpushd.h"

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
	R.users_mask = R.ids_mask = R.addrs_mask = 1023;
	R.users = xcalloc(R.users_mask + 1, sizeof(*R.users));
	R.ids = xcalloc(R.ids_mask + 1, sizeof(*R.ids));
	R.addrs = xcalloc(R.addrs_mask + 1, sizeof(*R.addrs));
	R.heap_cap = 1024;
	R.heap = xcalloc(R.heap_cap, sizeof(*R.heap));
}

/* Heap */

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

		if (R.heap[parent]->deadline <= r->deadline)
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
		    R.heap[c + 1]->deadline < R.heap[c]->deadline)
			c++;
		if (r->deadline <= R.heap[c]->deadline)
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

static void
reg_compute_deadline(struct reg *r)
{
	uint64_t exp = (uint64_t)r->expires * 1000;

	r->deadline = (r->push_at != 0 && r->push_at < exp) ? r->push_at : exp;
}

void
registry_schedule(struct reg *r)
{
	uint64_t old = r->deadline;

	reg_compute_deadline(r);
	if (r->deadline < old)
		heap_up(r->heap_idx);
	else if (r->deadline > old)
		heap_down(r->heap_idx);
}

uint64_t
registry_next_deadline(void)
{
	return R.heap_len ? R.heap[0]->deadline : 0;
}

void
registry_run_timers(uint64_t now_ms)
{
	while (R.heap_len > 0 && R.heap[0]->deadline <= now_ms) {
		struct reg *r = R.heap[0];

		if ((uint64_t)r->expires * 1000 <= now_ms) {
			mpd->stats.expired++;
			registry_remove(r, "expired");
			continue;
		}
		push_timer(r, now_ms);	/* must move r's deadline forward */
		if (r->deadline <= now_ms)
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

static void
addr_key(const union mp_addr *a, uint8_t *family, uint8_t key[16])
{
	memset(key, 0, 16);
	if (a->sa.sa_family == AF_INET) {
		*family = AF_INET;
		memcpy(key, &a->sin.sin_addr, 4);
	} else {
		*family = AF_INET6;
		memcpy(key, &a->sin6.sin6_addr, 16);
	}
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
	reg_compute_deadline(r);
	heap_insert(r);
	mpd->state_dirty = 1;
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
registry_same_client(struct mp_user *u, const union mp_addr *addr,
    const uint8_t *ctx, uint16_t ctx_len)
{
	struct reg *r;

	for (r = u->regs; r != NULL; r = r->user_next)
		if (r->ctx_len == ctx_len &&
		    memcmp(r->ctx, ctx, ctx_len) == 0 &&
		    addr_same_host(&r->addr, addr))
			return r;
	return NULL;
}

void
registry_set_addr(struct reg *r, const union mp_addr *addr, int listener)
{
	if (!addr_same_host(&r->addr, addr)) {
		addr_ref(&r->addr, -1);
		addr_ref(addr, 1);
	}
	memset(&r->addr, 0, sizeof(r->addr));
	memcpy(&r->addr, addr, addr_len(addr));
	r->listener = (uint8_t)listener;
}

int
registry_set_mailboxes(struct reg *r, const struct mp_request *rq)
{
	struct reg_mailboxes *m;
	size_t i;

	free_mailboxes(r);
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
	    R.heap_cap) * sizeof(void *);
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

void
registry_free(void)
{
	while (R.heap_len > 0)
		registry_remove(R.heap[0], "shutdown");
	free(R.users);
	free(R.ids);
	free(R.addrs);
	free(R.heap);
	memset(&R, 0, sizeof(R));
}
