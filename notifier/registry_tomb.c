/*
 * registry_tomb.c: tombstones: the last request timestamp of a device that
 * unregistered or was refused, kept until that timestamp leaves the
 * window, so no captured request replayed within the window has an
 * effect; a FIFO bounds them to max_registrations.
 */
#include <string.h>

#include <sodium.h>

#include "journal.h"
#include "log.h"
#include "mailpushd.h"
#include "registry_int.h"

/* Tombstones */

static uint64_t
tomb_key(const char *user)
{
	return registry_hash_bytes(user, strlen(user));
}

static size_t
tomb_bucket(uint64_t uh, const uint8_t device[PROTO_DEVICE_LEN])
{
	uint64_t d;

	memcpy(&d, device, sizeof(d));
	return (size_t)(uh ^ d) & registry_g.tombs_mask;
}

static void
tomb_unlink(struct tomb *t)
{
	struct tomb **pp = &registry_g.tombs[tomb_bucket(t->user_hash, t->device)];

	for (; *pp != t; pp = &(*pp)->next)
		if (*pp == NULL)
			abort();
	*pp = t->next;
}

/* Drop the oldest tombstones: expired ones, and one over the bound. */
void
registry_tomb_prune(size_t max)
{
	struct tomb *t;

	while ((t = registry_g.tomb_head) != NULL &&
	    (t->expires_ms <= mpd->now_ms || registry_g.n_tombs > max)) {
		registry_g.tomb_head = t->fifo_next;
		if (registry_g.tomb_head == NULL)
			registry_g.tomb_tail = NULL;
		tomb_unlink(t);
		registry_g.n_tombs--;
		registry_g.mem -= sizeof(*t);
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

	registry_tomb_prune(mpd->cfg.max_registrations);
	for (t = registry_g.tombs[b]; t != NULL; t = t->next)
		if (t->user_hash == uh &&
		    memcmp(t->device, device, PROTO_DEVICE_LEN) == 0) {
			if (hwm > t->hwm)
				t->hwm = hwm;
			return;	/* it keeps its place in the FIFO */
		}
	t = registry_xcalloc(1, sizeof(*t));
	t->user_hash = uh;
	memcpy(t->device, device, PROTO_DEVICE_LEN);
	t->hwm = hwm;
	/* a request is accepted while its timestamp is within the window */
	t->expires_ms = hwm + mpd->cfg.timestamp_window + 1;
	if (t->expires_ms < mpd->now_ms + mpd->cfg.timestamp_window)
		t->expires_ms = mpd->now_ms + mpd->cfg.timestamp_window;
	t->next = registry_g.tombs[b];
	registry_g.tombs[b] = t;
	if (registry_g.tomb_tail != NULL)
		registry_g.tomb_tail->fifo_next = t;
	else
		registry_g.tomb_head = t;
	registry_g.tomb_tail = t;
	registry_g.mem += sizeof(*t);
	if (++registry_g.n_tombs > registry_g.tombs_mask + 1) {
		size_t nm = registry_g.tombs_mask * 2 + 1;
		struct tomb **nt = registry_xcalloc(nm + 1, sizeof(*nt)), *e;

		free(registry_g.tombs);
		registry_g.tombs = nt;
		registry_g.tombs_mask = nm;
		for (e = registry_g.tomb_head; e != NULL; e = e->fifo_next) {
			b = tomb_bucket(e->user_hash, e->device);
			e->next = registry_g.tombs[b];
			registry_g.tombs[b] = e;
		}
	}
	registry_tomb_prune(mpd->cfg.max_registrations);
}

uint64_t
registry_tomb_hwm(const char *user, const uint8_t device[PROTO_DEVICE_LEN])
{
	uint64_t uh = tomb_key(user);
	struct tomb *t;

	registry_tomb_prune(mpd->cfg.max_registrations);
	for (t = registry_g.tombs[tomb_bucket(uh, device)]; t != NULL; t = t->next)
		if (t->user_hash == uh &&
		    memcmp(t->device, device, PROTO_DEVICE_LEN) == 0)
			return t->hwm;
	return 0;
}

size_t
registry_tombs(void)
{
	return registry_g.n_tombs;
}

