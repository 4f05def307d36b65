/*
 * registry_int.h: what the parts of the registration table share: its
 * state, and the functions the table (registry.c), the deadline heap
 * (registry_heap.c) and the tombstones (registry_tomb.c) call in each
 * other.  Not for the rest of the daemon (mailpushd.h).
 */
#ifndef MP_REGISTRY_INT_H
#define MP_REGISTRY_INT_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "htab.h"
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

/* A push deadline: registration id and push_at when it was queued. */
struct push_ent {
	uint64_t	at;
	uint32_t	id;
};

struct registry_state {
	struct htab	  users;	/* by SipHash of the name */
	struct htab	  ids;		/* by id */
	struct htab	  addrs;	/* by SipHash of the counted address */
	struct reg	**heap;
	size_t		  heap_len, heap_cap;
	struct push_ent	 *pq;		/* push deadlines, earliest first */
	size_t		  pq_len, pq_cap;
	struct htab	  tombs;	/* by user hash ^ device */
	struct tomb	 *tomb_head, *tomb_tail;
	unsigned	  prefix6;	/* bits of an IPv6 "address" */
	uint8_t		  hash_key[crypto_shorthash_KEYBYTES];
	size_t		  mem;		/* bytes allocated for entries */
};

extern struct registry_state registry_g;

/* registry.c */
uint64_t registry_hash_bytes(const void *, size_t);
void	*registry_xcalloc(size_t n, size_t size);

/* registry_heap.c */
void	registry_heap_insert(struct reg *);
void	registry_heap_delete(struct reg *);

/* registry_tomb.c */
void	registry_tomb_init(void);
void	registry_tomb_prune(size_t max);

/* Buckets a growing table moves per loop iteration (registry_step). */
#define REGISTRY_STEP_BUCKETS	128

#endif
