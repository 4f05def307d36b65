/*
 * limits.c: the refusal log, in the manner of Exchange's event 9671.
 *
 * A refusal names the user, the limit and its configured maximum.  Each
 * user gets at most one line per refusal_log_interval; the repeats held
 * back are counted and reported with the next line.  The per-user memory
 * is a fixed table (a collision only costs an extra line), and a global
 * budget of lines per second bounds the log under a flood of many users.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "mailpushd.h"

#define SLOTS		4096
#define GLOBAL_PER_SEC	20

static struct slot {
	uint64_t	last_ms;
	uint32_t	held;
	char		user[MP_USER_MAX + 1];
} slots[SLOTS];

static uint64_t	global_sec;
static unsigned	global_lines;
static uint64_t	global_held;
static uint8_t	slot_key[crypto_shorthash_KEYBYTES];
static int	slot_key_set;

static struct slot *
slot_for(const char *user)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint32_t i;

	if (!slot_key_set) {
		randombytes_buf(slot_key, sizeof(slot_key));
		slot_key_set = 1;
	}
	crypto_shorthash(h, (const uint8_t *)user, strlen(user), slot_key);
	memcpy(&i, h, sizeof(i));
	return &slots[i % SLOTS];
}

static void
describe(char *buf, size_t len, unsigned reason, unsigned limit, unsigned got)
{
	switch (reason) {
	case REASON_TOO_MANY:
		snprintf(buf, len, "the allowed maximum number of simultaneous "
		    "registrations for push notifications (configured maximum "
		    "%u)", limit);
		break;
	case REASON_CONTEXT_SIZE:
		snprintf(buf, len, "the allowed maximum client context size "
		    "for push notifications (configured maximum %u bytes, "
		    "got %u)", limit, got);
		break;
	case REASON_TABLE_FULL:
		snprintf(buf, len, "the server's total of registrations "
		    "(configured maximum %u)", limit);
		break;
	case REASON_ADDRESS_LIMIT:
		snprintf(buf, len, "the allowed maximum number of "
		    "registrations from one address (configured maximum %u)",
		    limit);
		break;
	default:
		snprintf(buf, len, "a limit (%s, %u)", proto_reason_name(reason),
		    limit);
		break;
	}
}

/*
 * May a line about this user be logged now?  Fills extra with the count
 * of lines held back for the user since the last one.
 */
static int
limits_may_log(const char *user, char *extra, size_t len)
{
	uint64_t now = mpd->now_ms, interval = mpd->cfg.refusal_log_interval;
	struct slot *s = slot_for(user);

	extra[0] = '\0';
	if (strcmp(s->user, user) == 0 && s->last_ms != 0 &&
	    now < s->last_ms + interval) {
		s->held++;
		return 0;
	}
	if (now / 1000 != global_sec) {
		if (global_held > 0)
			log_error("%llu refusal log lines held back in the "
			    "last second", (unsigned long long)global_held);
		global_sec = now / 1000;
		global_lines = 0;
		global_held = 0;
	}
	if (global_lines >= GLOBAL_PER_SEC) {
		global_held++;
		return 0;
	}
	global_lines++;
	if (strcmp(s->user, user) == 0 && s->held > 0)
		snprintf(extra, len, " (%u more refusals held back)", s->held);
	snprintf(s->user, sizeof(s->user), "%s", user);
	s->last_ms = now;
	s->held = 0;
	return 1;
}

void
limits_log_refusal(const char *user, unsigned reason, unsigned limit,
    unsigned got, const union mp_addr *from)
{
	char what[256], extra[64];

	if (!limits_may_log(user, extra, sizeof(extra)))
		return;
	describe(what, sizeof(what), reason, limit, got);
	log_error("user %s has exceeded %s: refused %s%s", user, what,
	    addr_str(from), extra);
}

void
limits_log_eviction(const char *user, unsigned limit,
    const union mp_addr *evicted)
{
	char extra[64];

	if (!limits_may_log(user, extra, sizeof(extra)))
		return;
	log_info("user %s reached %u registrations: evicted the oldest, from "
	    "%s%s", user, limit, addr_str(evicted), extra);
}
