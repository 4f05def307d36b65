/*
 * registry_tomb.c: tombstones: the last request timestamp of a device that
 * unregistered or was refused, kept until that timestamp leaves the
 * window, so no captured request replayed within the window has an
 * effect; a FIFO bounds them to max_registrations.
 */
#include <stddef.h>
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

static uint64_t
tomb_hash_of(uint64_t uh, const uint8_t device[PROTO_DEVICE_LEN])
{
	uint64_t d;

	memcpy(&d, device, sizeof(d));
	return uh ^ d;
}

static uint64_t
tomb_hash(const void *e)
{
	const struct tomb *t = e;

	return tomb_hash_of(t->user_hash, t->device);
}

void
registry_tomb_init(void)
{
	htab_init(&registry_g.tombs, 1024, offsetof(struct tomb, next),
	    tomb_hash);
}

/* Drop the oldest tombstones: expired ones, and one over the bound. */
void
registry_tomb_prune(size_t max)
{
	struct tomb *t;

	while ((t = registry_g.tomb_head) != NULL &&
	    (t->expires_ms <= mpd->now_ms || registry_g.tombs.n > max)) {
		registry_g.tomb_head = t->fifo_next;
		if (registry_g.tomb_head == NULL)
			registry_g.tomb_tail = NULL;
		htab_remove(&registry_g.tombs, tomb_hash(t), t);
		registry_g.mem -= sizeof(*t);
		free(t);
	}
}

void
registry_tomb_add(const char *user, const uint8_t device[PROTO_DEVICE_LEN],
    uint64_t hwm)
{
	uint64_t uh = tomb_key(user), h = tomb_hash_of(uh, device);
	struct tomb *t;

	registry_tomb_prune(mpd->cfg.max_registrations);
	for (t = htab_first(&registry_g.tombs, h); t != NULL; t = t->next)
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
	htab_insert(&registry_g.tombs, h, t);
	if (registry_g.tomb_tail != NULL)
		registry_g.tomb_tail->fifo_next = t;
	else
		registry_g.tomb_head = t;
	registry_g.tomb_tail = t;
	registry_g.mem += sizeof(*t);
	registry_tomb_prune(mpd->cfg.max_registrations);
}

uint64_t
registry_tomb_hwm(const char *user, const uint8_t device[PROTO_DEVICE_LEN])
{
	uint64_t uh = tomb_key(user);
	struct tomb *t;

	registry_tomb_prune(mpd->cfg.max_registrations);
	for (t = htab_first(&registry_g.tombs, tomb_hash_of(uh, device));
	    t != NULL; t = t->next)
		if (t->user_hash == uh &&
		    memcmp(t->device, device, PROTO_DEVICE_LEN) == 0)
			return t->hwm;
	return 0;
}

size_t
registry_tombs(void)
{
	return registry_g.tombs.n;
}

