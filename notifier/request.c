/*
 * request.c: the request side of mailpush-protocol(7): REGISTER, REFRESH,
 * UNREGISTER, PROBE, PUSH_ACK and KEEPALIVE; authentication, replay
 * protection and the limits.
 *
 * A registration is keyed by user and device id.  A source that has not
 * proved it receives gets a 28-byte COOKIE and nothing else, and leaves no
 * state.  Nothing sent back in answer to one request is ever larger than
 * the request: clients pad REGISTER, REFRESH and PROBE so that the answer
 * and an owed push fit (push_owed sends the push only if it does).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <string.h>

#include "journal.h"
#include "log.h"
#include "mailpushd.h"
#include "user.h"

/* Keep-alive bounds announced in REGISTERED, in seconds. */
static void
keepalive_bounds(uint16_t *min, uint16_t *max)
{
	uint64_t lo = mpd->cfg.keepalive_min / 1000;
	uint64_t hi = mpd->cfg.keepalive_max / 1000;

	if (lo > hi)
		lo = hi;	/* keepalive_max wins, mailpushd.conf(5) */
	*min = (uint16_t)lo;
	*max = (uint16_t)hi;
}

static void
reply_registered(int listener, const union mp_addr *to, uint64_t ts,
    const struct reg *r, uint32_t lifetime, const uint8_t *token)
{
	struct mp_reply rp;
	uint8_t buf[PROTO_REGISTERED_LEN];
	int n;

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_REGISTERED;
	rp.timestamp = ts;
	rp.epoch = mpd->epoch;
	rp.reg_id = r ? r->id : 0;
	rp.lifetime = lifetime;
	rp.seq = r ? r->seq : 0;
	keepalive_bounds(&rp.keepalive_min, &rp.keepalive_max);
	if ((n = proto_reply_encode(&rp, token, buf, sizeof(buf))) > 0)
		udp_send(listener, to, buf, (size_t)n);
}

static void
refuse(int listener, const union mp_addr *to, uint64_t ts, unsigned reason,
    uint32_t limit, uint64_t value, const uint8_t *token)
{
	struct mp_reply rp;
	uint8_t buf[PROTO_REFUSED_LEN];
	int n;

	mpd->stats.refused[reason]++;
	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_REFUSED;
	rp.timestamp = ts;
	rp.reason = (uint8_t)reason;
	rp.limit = limit;
	rp.value = value;
	if ((n = proto_reply_encode(&rp, token, buf, sizeof(buf))) > 0)
		udp_send(listener, to, buf, (size_t)n);
}

static void
send_kick(int listener, const union mp_addr *to, uint32_t reg_id)
{
	struct mp_reply rp;
	uint8_t buf[PROTO_KICK_LEN];
	int n;

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_KICK;
	rp.reg_id = reg_id;
	if ((n = proto_reply_encode(&rp, NULL, buf, sizeof(buf))) > 0 &&
	    udp_send(listener, to, buf, (size_t)n) == 0)
		mpd->stats.kicks++;
}

/* Requests */

/*
 * Expiry of a registration that starts living now: whole seconds, rounded
 * up, so that it lives at least the lifetime its client was told.
 */
static uint32_t
expiry(uint32_t lifetime)
{
	return (uint32_t)((mpd->now_ms + 999) / 1000) + lifetime;
}

/* Of the user's n oldest registrations, how many count as from's address? */
static unsigned
oldest_at(const struct mp_user *u, unsigned n, const union mp_addr *from)
{
	const struct reg *r;
	unsigned k = 0;

	for (r = u->regs; r != NULL && n > 0; r = r->user_next, n--)
		k += registry_same_addr(&r->addr, from);
	return k;
}

/* One verified, fresh request: where it came from and what it proves. */
struct req_ctx {
	int			 listener;
	const union mp_addr	*from;
	const struct mp_request	*rq;
	size_t			 len;
	const char		*user;
	const uint8_t		*token;
};

static void
req_refuse(const struct req_ctx *c, unsigned reason, uint32_t limit)
{
	refuse(c->listener, c->from, c->rq->timestamp, reason, limit, 0,
	    c->token);
}

/* Does moving r to from keep within max_registrations_per_address? */
static int
move_allowed(const struct reg *r, const union mp_addr *from)
{
	const struct mp_config *cfg = &mpd->cfg;

	return registry_same_addr(&r->addr, from) ||
	    cfg->max_registrations_per_address == 0 ||
	    registry_addr_count(from) < cfg->max_registrations_per_address;
}

/* A device registering again: it takes its registration over, wherever
 * it is now (a restart, a new network), keeping id, sequence and counts. */
static void
do_takeover(const struct req_ctx *c, struct reg *r, uint32_t lifetime)
{
	if (!addr_equal(&r->addr, c->from)) {
		if (!move_allowed(r, c->from)) {
			limits_log_refusal(c->user, REASON_ADDRESS_LIMIT,
			    mpd->cfg.max_registrations_per_address, 0,
			    c->from);
			req_refuse(c, REASON_ADDRESS_LIMIT,
			    mpd->cfg.max_registrations_per_address);
			return;
		}
		registry_set_addr(r, c->from, c->listener);
	}
	registry_set_ctx(&r, c->rq->ctx, c->rq->ctx_len);
	registry_set_mailboxes(r, c->rq);
	r->key_id = c->rq->key_id;
	r->listener = (uint8_t)c->listener;
	r->expires = expiry(lifetime);
	registry_schedule(r);
	mpd->stats.replaced++;
	mpd->state_dirty = 1;
	reply_registered(c->listener, c->from, c->rq->timestamp, r, lifetime,
	    c->token);
	push_owed(r, c->len - PROTO_REGISTERED_LEN, 1);
}

static void
do_register(const struct req_ctx *c, struct mp_user *u, struct reg *r)
{
	const struct mp_config *cfg = &mpd->cfg;
	const struct mp_request *rq = c->rq;
	const char *user = c->user;
	uint32_t lifetime = (uint32_t)(cfg->registration_lifetime / 1000);
	unsigned max, evict = 0, at_from;

	max = config_max_context(cfg, user);
	if (rq->ctx_len > max) {
		limits_log_refusal(user, REASON_CONTEXT_SIZE, max, rq->ctx_len,
		    c->from);
		req_refuse(c, REASON_CONTEXT_SIZE, max);
		return;
	}
	if (rq->n_mailboxes > cfg->max_mailboxes) {
		req_refuse(c, REASON_BAD_REQUEST, cfg->max_mailboxes);
		return;
	}
	if (r != NULL) {
		do_takeover(c, r, lifetime);
		return;
	}
	max = config_max_regs(cfg, user);
	if (u != NULL && u->n_regs >= max) {
		if (cfg->on_limit == ON_LIMIT_REFUSE) {
			limits_log_refusal(user, REASON_TOO_MANY, max, 0,
			    c->from);
			req_refuse(c, REASON_TOO_MANY, max);
			return;
		}
		/* the oldest go, but only if the new one is then accepted */
		evict = u->n_regs - max + 1;
	}
	if (registry_count() - evict >= cfg->max_registrations) {
		limits_log_refusal(user, REASON_TABLE_FULL,
		    cfg->max_registrations, 0, c->from);
		req_refuse(c, REASON_TABLE_FULL, cfg->max_registrations);
		return;
	}
	at_from = evict ? oldest_at(u, evict, c->from) : 0;
	if (cfg->max_registrations_per_address != 0 &&
	    registry_addr_count(c->from) - at_from >=
	    cfg->max_registrations_per_address) {
		limits_log_refusal(user, REASON_ADDRESS_LIMIT,
		    cfg->max_registrations_per_address, 0, c->from);
		req_refuse(c, REASON_ADDRESS_LIMIT,
		    cfg->max_registrations_per_address);
		return;
	}
	for (; evict > 0; evict--) {
		int last = u->n_regs == 1;

		mpd->stats.evicted++;
		limits_log_eviction(user, max, &u->regs->addr);
		registry_tomb_add(user, u->regs->device, u->regs->hwm);
		registry_remove(u->regs, "evicted");
		if (last) {
			u = NULL;	/* the user went with its last one */
			break;
		}
	}
	if (u == NULL)
		u = registry_user(user, 1);
	r = registry_add(u, c->from, c->listener, rq->ctx, rq->ctx_len,
	    lifetime, 0);
	memcpy(r->device, rq->device, PROTO_DEVICE_LEN);
	r->hwm = rq->timestamp;
	r->key_id = rq->key_id;
	registry_set_mailboxes(r, rq);
	mpd->stats.registered++;
	log_debug("registered %s from %s: id %08x, %u of %u", user,
	    addr_str(c->from), r->id, u->n_regs, max);
	reply_registered(c->listener, c->from, rq->timestamp, r, lifetime,
	    c->token);
}

static void
do_refresh(const struct req_ctx *c, struct reg *r)
{
	uint32_t lifetime = (uint32_t)(mpd->cfg.registration_lifetime / 1000);

	/* also follows the client to a new address (NAT rebinding, a new
	 * network), which the cookie has verified */
	if (!addr_equal(&r->addr, c->from)) {
		if (!move_allowed(r, c->from)) {
			req_refuse(c, REASON_ADDRESS_LIMIT,
			    mpd->cfg.max_registrations_per_address);
			return;
		}
		registry_set_addr(r, c->from, c->listener);
	}
	r->expires = expiry(lifetime);
	r->listener = (uint8_t)c->listener;
	registry_schedule(r);
	mpd->stats.refreshed++;
	mpd->state_dirty = 1;
	reply_registered(c->listener, c->from, c->rq->timestamp, r, lifetime,
	    c->token);
	push_owed(r, c->len - PROTO_REGISTERED_LEN, 0);
}

static void
do_probe(const struct req_ctx *c, struct reg *r)
{
	uint64_t delay = c->rq->seq, max = mpd->cfg.keepalive_max / 1000;

	mpd->stats.probes++;
	if (!addr_equal(&r->addr, c->from)) {
		/* the path changed: the client must REFRESH to move */
		send_kick(c->listener, c->from, r->id);
		return;
	}
	if (delay < 1)
		delay = 1;
	if (delay > max)
		delay = max;
	/* whole seconds, rounded up: never before the delay asked for */
	r->probe_at = (uint32_t)((mpd->now_ms + 999) / 1000 + delay);
	registry_schedule(r);
	push_owed(r, c->len - PROTO_PROBE_ECHO_LEN, 0);
}

/*
 * Order of checks: decode; user name and device (no cryptography yet);
 * cookie, unless the request comes from the very address its registration
 * lives at; allow list; key id and MAC; timestamp window; replay (the
 * timestamp must be above the last one of the device, or of its
 * tombstone).  PUSH_ACK is never answered, so it needs no cookie and its
 * failures are only counted.
 */
void
request_handle(int listener, const union mp_addr *from, const uint8_t *buf,
    size_t len)
{
	const struct mp_config *cfg = &mpd->cfg;
	static struct mp_request rq;	/* 5 kB: keep it off the stack */
	char user[MP_USER_MAX + 1];
	uint8_t token[MP_TOKEN_LEN];
	const char *why;
	struct reg *r = NULL;
	struct mp_user *u = NULL;
	struct req_ctx c;
	uint64_t hwm, win = cfg->timestamp_window;
	int ack, named;

	if (proto_request_decode(buf, len, &rq, &why) != 0) {
		mpd->stats.dgrams_bad++;
		udp_drop(from, "%s", why);
		return;
	}
	ack = rq.type == PROTO_PUSH_ACK;
	named = user_normalize(&cfg->names, rq.user, rq.user_len, user,
	    &why) == 0;
	if (named && (u = registry_user(user, 0)) != NULL)
		r = registry_device(u, rq.device);
	if (ack && r == NULL) {
		mpd->stats.acks_stale++;
		udp_drop(from, "PUSH_ACK for no registration");
		return;
	}
	/* A source proves it can receive by echoing a cookie, unless it is
	 * the very address its registration lives at. */
	if (!ack && !(r != NULL && addr_equal(&r->addr, from)) &&
	    !udp_cookie_valid(from, rq.cookie)) {
		udp_send_cookie(listener, from, rq.timestamp);
		return;
	}
	if (!named) {
		udp_drop(from, "%s: %s", proto_type_name(rq.type), why);
		if (!ack)
			refuse(listener, from, rq.timestamp,
			    REASON_BAD_REQUEST, 0, 0, NULL);
		return;
	}
	if (push_token(user, strlen(user), rq.key_id, token) != 0) {
		udp_drop(from, "%s for %s: unknown key id %u",
		    proto_type_name(rq.type), user, rq.key_id);
		if (!ack)
			refuse(listener, from, rq.timestamp, REASON_AUTH, 0, 0,
			    NULL);
		return;
	}
	if (!config_addr_allowed(cfg, &from->sa)) {
		udp_drop(from, "%s for %s: source not allowed",
		    proto_type_name(rq.type), user);
		if (!ack)
			refuse(listener, from, rq.timestamp,
			    REASON_NOT_ALLOWED, 0, 0, token);
		return;
	}
	if (cfg->auth == AUTH_TOKEN && proto_verify(buf, len, token) != 0) {
		udp_drop(from, "%s for %s: bad MAC", proto_type_name(rq.type),
		    user);
		if (!ack)
			refuse(listener, from, rq.timestamp, REASON_AUTH, 0, 0,
			    token);
		return;
	}
	if (rq.timestamp + win < mpd->now_ms ||
	    rq.timestamp > mpd->now_ms + win) {
		udp_drop(from, "%s for %s: timestamp outside the window",
		    proto_type_name(rq.type), user);
		if (!ack)
			refuse(listener, from, rq.timestamp, REASON_STALE,
			    (uint32_t)(win / 1000), mpd->now_ms, token);
		return;
	}
	hwm = r != NULL ? r->hwm : registry_tomb_hwm(user, rq.device);
	if (rq.timestamp <= hwm) {
		mpd->stats.replays++;
		udp_drop(from, "%s for %s: replayed (timestamp not above %llu)",
		    proto_type_name(rq.type), user, (unsigned long long)hwm);
		if (!ack)
			refuse(listener, from, rq.timestamp, REASON_REPLAY, 0,
			    hwm, token);
		return;
	}
	c.listener = listener;
	c.from = from;
	c.rq = &rq;
	c.len = len;
	c.user = user;
	c.token = token;
	if (r != NULL) {
		r->hwm = rq.timestamp;
		/* the timestamp and the expiry a refresh extends: written
		 * with the iteration's commit, never waited for */
		journal_log_exp(r);
	}
	switch (rq.type) {
	case PROTO_REGISTER:
		do_register(&c, u, r);
		/* a refused device is remembered, or its REGISTER could be
		 * replayed once the limit allows */
		if ((u = registry_user(user, 0)) == NULL ||
		    registry_device(u, rq.device) == NULL)
			registry_tomb_add(user, rq.device, rq.timestamp);
		return;
	case PROTO_PUSH_ACK:
		push_ack(r, &rq);
		return;
	default:
		break;
	}
	if (r == NULL) {
		registry_tomb_add(user, rq.device, rq.timestamp);
		req_refuse(&c, REASON_UNKNOWN, 0);
		return;
	}
	switch (rq.type) {
	case PROTO_REFRESH:
		do_refresh(&c, r);
		break;
	case PROTO_UNREGISTER:
		mpd->stats.unregistered++;
		registry_tomb_add(user, rq.device, rq.timestamp);
		registry_remove(r, "unregistered");
		reply_registered(listener, from, rq.timestamp, NULL, 0, token);
		break;
	case PROTO_PROBE:
		do_probe(&c, r);
		break;
	}
}

/*
 * KEEPALIVE: no cryptography, no state for unknown senders, and no answer
 * unless the registration it names needs the client to send an
 * authenticated request (it lives at another address, or a push to it
 * went unacknowledged): then a KICK of the same 8 bytes.
 */
void
request_keepalive(int listener, const union mp_addr *from, const uint8_t *buf,
    size_t len)
{
	const char *why;
	uint32_t id;
	struct reg *r;

	if (proto_keepalive_decode(buf, len, &id, &why) != 0) {
		mpd->stats.dgrams_bad++;
		udp_drop(from, "%s", why);
		return;
	}
	if ((r = registry_find(id)) == NULL) {
		mpd->stats.keepalives_unknown++;
		return;
	}
	mpd->stats.keepalives++;
	if (!addr_equal(&r->addr, from) || push_is_owed(r))
		send_kick(listener, from, id);
}

