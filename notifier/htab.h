/*
 * htab.h: chained hash tables that grow a few buckets at a time
 * (htab.c).  The entries are the caller's structures; each holds its
 * chain pointer at next_off (offsetof).
 */
#ifndef MP_HTAB_H
#define MP_HTAB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Buckets moved with every insertion while the table grows. */
#define HTAB_MOVE_ADD	16

struct htab {
	void		**t[2];		/* t[1]: the double of t[0] while moving */
	size_t		  mask[2];
	size_t		  n;		/* entries */
	size_t		  moved;	/* buckets of t[0] below this are in t[1] */
	size_t		  next_off;	/* offsetof(entry, its chain pointer) */
	uint64_t	(*hash)(const void *);
	pthread_t	  pf_thr;	/* faulting t[1] in (htab.c) */
	atomic_int	  pf_state;	/* HTAB_PF_* */
	atomic_int	  pf_hurry;	/* 1: no pauses, 2: stop (freed) */
};
#define HTAB_PF_NONE	0	/* t[1], if any, may be used */
#define HTAB_PF_RUNNING	1	/* t[1] is being faulted in: not yet */
#define HTAB_PF_DONE	2	/* faulted in; join the thread, then use */

void	 htab_init(struct htab *, size_t buckets, size_t next_off,
	    uint64_t (*hash)(const void *));
void	 htab_free(struct htab *);
void	 htab_insert(struct htab *, uint64_t h, void *);
void	 htab_remove(struct htab *, uint64_t h, void *);
void	 htab_replace(struct htab *, uint64_t h, void *old, void *new_);
int	 htab_step(struct htab *, size_t buckets);
void	 htab_reserve(struct htab *, size_t n);
int	 htab_moving(const struct htab *);
size_t	 htab_buckets(const struct htab *);
void	 htab_foreach(struct htab *, void (*)(void *, void *), void *);
int	 htab_scan(struct htab *, uint64_t *cursor, size_t max,
	    void (*)(void *, void *), void *);

/*
 * The head of the one chain an entry of hash hv is in, or goes to: in the
 * new array if its bucket of the old one has moved.  Inline: every
 * lookup starts here.
 */
static inline void **
htab_slot(const struct htab *h, uint64_t hv)
{
	size_t b = (size_t)hv & h->mask[0];

	if (h->t[1] != NULL && b < h->moved)
		return &h->t[1][(size_t)hv & h->mask[1]];
	return &h->t[0][b];
}

/* The first entry of hash hv's chain. */
static inline void *
htab_first(const struct htab *h, uint64_t hv)
{
	return *htab_slot(h, hv);
}

#endif
