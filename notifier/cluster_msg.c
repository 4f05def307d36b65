/*
 * cluster_msg.c: what travels on the Redis channel (the format is in
 * cluster.h and mailpush-cluster(7)), the relay's buffer and the
 * notifier's side of the subscription.
 *
 * Relay: every event the event socket accepted gets the next sequence
 * number of this process (its origin) and waits in a bounded ring until
 * Redis has answered its PUBLISH.  Events are published as they come
 * while the link is up; when it goes down, those not confirmed are sent
 * again, in order, once it is back (counted as republished).  A full ring
 * drops its oldest event (counted, logged): the notifiers see the gap in
 * the sequence and send catch-up pushes.
 *
 * Notifier: a message is checked completely before use; one that is too
 * long or not understood is counted and ignored.  Per origin it keeps the
 * highest sequence number seen: a number seen before is a republished
 * duplicate and ignored; a number beyond the next one means events were
 * missed.  Catch-up pushes (one per registration held) go out when the
 * subscription is established or re-established -- each time: whatever
 * was published while this notifier was not subscribed (Redis down, the
 * link down, the daemon not running) is lost for it -- and when a gap is
 * seen, at most once a second.  The event itself goes to push_event(),
 * as the event socket's do.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "cluster.h"
#include "log.h"
#include "logesc.h"
#include "mailpushd.h"
#include "user.h"
#include "wire.h"

#define ORIGINS_MAX	64		/* relays remembered */
#define CATCHUP_STEP	2000		/* registrations per loop pass */
#define CATCHUP_GAP_MS	1000		/* gap-caused catch-ups at most */

/* The relay's ring: held[i % cap] for head <= i < tail; sent <= tail.
 * Each holds its PUBLISH command, ready to send. */
struct held {
	uint16_t	len;
	uint8_t		buf[];
};
static struct held	**ring;
static uint64_t		 cap, head, sent, tail, resend_until;
static uint64_t		 relay_seq;
static uint64_t		 warned_full, warned_refused;

/* The notifier's memory of relays. */
static struct {
	uint64_t	origin, seq, seen_ms;
} origins[ORIGINS_MAX];
static uint64_t		 warned_bad, last_catchup;
static struct event	*catchup_ev, *flush_ev;
static struct registry_iter catchup_it;
static size_t		 catchup_n;
static int		 catchup_running, catchup_again;

int
cmsg_encode(const struct cmsg *m, uint8_t *buf, size_t len)
{
	const char *why;
	int n = 0;

	if (len < CMSG_HDR_LEN)
		return -1;
	put32(buf, CMSG_MAGIC);
	buf[4] = CMSG_VERSION;
	buf[5] = m->type;
	put16(buf + 6, 0);
	put64(buf + 8, m->origin);
	put64(buf + 16, m->seq);
	put64(buf + 24, m->time_ms);
	if (m->type == CMSG_EVENT &&
	    (n = event_encode(&m->ev, buf + CMSG_HDR_LEN, len - CMSG_HDR_LEN,
	    &why)) < 0)
		return -1;
	return CMSG_HDR_LEN + n;
}

int
cmsg_decode(const uint8_t *buf, size_t len, struct cmsg *m,
    const char **why)
{
	memset(m, 0, sizeof(*m));
	if (len < CMSG_HDR_LEN) {
		*why = "shorter than the 32-byte header";
		return -1;
	}
	if (get32(buf) != CMSG_MAGIC) {
		*why = "bad magic number";
		return -1;
	}
	if (buf[4] != CMSG_VERSION) {
		*why = "unknown version";
		return -1;
	}
	if (get16(buf + 6) != 0) {
		*why = "reserved bytes not zero";
		return -1;
	}
	m->type = buf[5];
	m->origin = get64(buf + 8);
	m->seq = get64(buf + 16);
	m->time_ms = get64(buf + 24);
	if (m->seq == 0) {
		*why = "sequence number 0";
		return -1;
	}
	switch (m->type) {
	case CMSG_HEARTBEAT:
		if (len != CMSG_HDR_LEN) {
			*why = "heartbeat with a body";
			return -1;
		}
		return 0;
	case CMSG_EVENT:
		return event_decode(buf + CMSG_HDR_LEN, len - CMSG_HDR_LEN,
		    &m->ev, why);
	default:
		*why = "unknown message type";
		return -1;
	}
}

/* Relay */

int
relay_init(unsigned n)
{
	cap = n;
	if ((ring = calloc(cap, sizeof(*ring))) == NULL) {
		log_error("[cluster] relay_buffer %u: out of memory", n);
		return -1;
	}
	return 0;
}

void
relay_free(void)
{
	for (; head < tail; head++)
		free(ring[head % cap]);
	free(ring);
	ring = NULL;
	cap = 0;
}

size_t
relay_pending(void)
{
	return (size_t)(tail - head);
}

size_t
relay_capacity(void)
{
	return (size_t)cap;
}

static void
relay_send(void)
{
	struct held *h;

	while (sent < tail && cluster_pub_ready()) {
		h = ring[sent % cap];
		if (cluster_publish(h->buf, h->len, sent) != 0)
			break;
		if (sent < resend_until)
			cluster_st.republished++;
		sent++;
	}
}

void
relay_link_lost(void)
{
	if (sent > resend_until)
		resend_until = sent;
	sent = head;
}

void
relay_link_ready(void)
{
	if (head < resend_until)
		log_info("relay: publishing again %" PRIu64 " events Redis "
		    "had not confirmed", resend_until - head);
	relay_send();
}

/* Redis answered the PUBLISH of event idx (answers come in order). */
void
relay_confirmed(uint64_t idx, const redisReply *reply)
{
	if (reply->type == REDIS_REPLY_ERROR) {
		cluster_st.publish_errors++;
		cluster_warn(&warned_refused, "Redis refused PUBLISH: %s (the "
		    "event is dropped; does the ACL user have +publish and "
		    "&%s?)", reply->str, mpd->cfg.cluster_channel);
	} else if (reply->type == REDIS_REPLY_INTEGER) {
		cluster_st.published++;
		cluster_receivers(reply->integer);
		if (reply->integer == 0)
			cluster_st.unheard++;
	}
	/* everything up to idx is answered; idx < head: dropped meanwhile */
	for (; head <= idx && head < sent; head++) {
		free(ring[head % cap]);
		ring[head % cap] = NULL;
	}
}

static void
relay_event(const char *user, const char *mailbox, unsigned count,
    uint32_t uid)
{
	uint8_t buf[CMSG_MAX_LEN], cmd[CMSG_CMD_MAX];
	struct held *h;
	const char *why;
	struct cmsg m;
	int len;

	memset(&m, 0, sizeof(m));
	m.type = CMSG_EVENT;
	m.origin = cluster_origin;
	m.seq = ++relay_seq;
	m.time_ms = mpd->now_ms;
	if (event_set(&m.ev, user, mailbox, count, uid, &why) != 0 ||
	    (len = cmsg_encode(&m, buf, sizeof(buf))) < 0 ||
	    (len = cluster_format_publish(buf, (size_t)len, cmd, sizeof(cmd)))
	    < 0)
		abort();	/* events.c decoded it: it fits */
	if (tail - head == cap) {
		/* full: the oldest goes; notifiers see the gap */
		free(ring[head % cap]);
		ring[head % cap] = NULL;
		head++;
		if (sent < head)
			sent = head;
		cluster_st.dropped++;
		cluster_warn(&warned_full, "relay buffer full ([cluster] "
		    "relay_buffer = %" PRIu64 ", Redis link %s): oldest event "
		    "dropped (%" PRIu64 " dropped so far); notifiers will send "
		    "catch-up pushes", cap, cluster_pub_ready() ? "up" :
		    "down", cluster_st.dropped);
	}
	cluster_st.accepted++;
	if (!cluster_pub_ready())
		cluster_st.held++;
	if ((h = malloc(sizeof(*h) + (size_t)len)) == NULL)
		fatal("malloc");
	h->len = (uint16_t)len;
	memcpy(h->buf, cmd, (size_t)len);
	ring[tail % cap] = h;
	tail++;
	if (tail - head > cluster_st.buffer_peak)
		cluster_st.buffer_peak = tail - head;
	relay_send();
}

/*
 * An event the event socket accepted: published by a relay, pushed
 * directly otherwise (one machine, or a notifier's own event socket).
 */
void
cluster_event(const char *user, const char *mailbox, unsigned count,
    uint32_t uid)
{
	if (cluster_relaying())
		relay_event(user, mailbox, count, uid);
	else
		push_event(user, mailbox, count);
}

/* Notifier */

static void
catchup_one(struct reg *r, void *arg)
{
	size_t *n = arg;

	push_catchup(r);
	(*n)++;
}

static void catchup_schedule(int);

/*
 * One step of a catch-up round: CATCHUP_STEP registrations, then the
 * loop runs (events, requests) before the next step.  A catch-up asked
 * for while a round runs makes one more round after it.
 */
static void
catchup_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval now = { 0, 0 };

	(void)fd;
	(void)what;
	(void)arg;
	mpd_now();
	if (!catchup_running) {
		catchup_running = 1;
		catchup_n = 0;
		memset(&catchup_it, 0, sizeof(catchup_it));
		last_catchup = mpd->now_ms;
	}
	if (!registry_foreach_step(&catchup_it, CATCHUP_STEP, catchup_one,
	    &catchup_n)) {
		push_flush();
		evtimer_add(catchup_ev, &now);
		return;
	}
	catchup_running = 0;
	cluster_st.catchups++;
	cluster_st.catchup_pushes += catchup_n;
	if (catchup_n > 0)
		log_info("catch-up: pushed to %zu registrations that may have "
		    "missed events", catchup_n);
	push_flush();
	if (catchup_again) {
		catchup_again = 0;
		catchup_schedule(0);
	}
}

static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	push_flush();
}

static void
make_events(void)
{
	if (catchup_ev == NULL &&
	    ((catchup_ev = evtimer_new(mpd->base, catchup_cb, NULL)) == NULL ||
	    (flush_ev = event_new(mpd->base, -1, 0, flush_cb, NULL)) == NULL))
		fatalx("cannot create the cluster events");
}

/* Catch up now, or a second after the last catch-up began. */
static void
catchup_schedule(int now)
{
	struct timeval tv = { 0, 0 };
	uint64_t at = last_catchup + CATCHUP_GAP_MS;

	make_events();
	if (catchup_running) {
		catchup_again = 1;
		return;
	}
	if (evtimer_pending(catchup_ev, NULL))
		return;
	if (!now && at > mpd->now_ms) {
		tv.tv_sec = (time_t)((at - mpd->now_ms) / 1000);
		tv.tv_usec = (suseconds_t)((at - mpd->now_ms) % 1000) * 1000;
	}
	evtimer_add(catchup_ev, &tv);
}

void
sub_ready(void)
{
	/* origins are kept: what a relay republishes now and this notifier
	 * saw before the break is still a duplicate */
	catchup_schedule(1);
}

void
sub_free(void)
{
	if (catchup_ev != NULL)
		event_free(catchup_ev);
	if (flush_ev != NULL)
		event_free(flush_ev);
	catchup_ev = flush_ev = NULL;
}

/* 1: seen before; 0: new (a gap is counted and caught up). */
static int
seen_before(const struct cmsg *m)
{
	size_t i, old = 0;

	for (i = 0; i < ORIGINS_MAX; i++) {
		if (origins[i].origin == m->origin && origins[i].seq != 0)
			break;
		if (origins[i].seen_ms < origins[old].seen_ms)
			old = i;
	}
	if (i == ORIGINS_MAX) {
		/* a relay not heard from since we subscribed: its first
		 * message sets where it stands */
		origins[old].origin = m->origin;
		origins[old].seq = m->seq;
		origins[old].seen_ms = mpd->now_ms;
		return 0;
	}
	origins[i].seen_ms = mpd->now_ms;
	if (m->seq <= origins[i].seq)
		return 1;
	if (m->seq > origins[i].seq + 1) {
		cluster_st.gaps++;
		log_info("events %" PRIu64 " to %" PRIu64 " of relay %016"
		    PRIx64 " never arrived: catch-up pushes follow",
		    origins[i].seq + 1, m->seq - 1, m->origin);
		catchup_schedule(0);
	}
	origins[i].seq = m->seq;
	return 0;
}

void
sub_message(const uint8_t *buf, size_t len)
{
	char user[MP_USER_MAX + 1];
	const char *why;
	struct cmsg m;

	if (len > CMSG_MAX_LEN) {
		cluster_st.oversized++;
		cluster_warn(&warned_bad, "channel %s: message of %zu bytes "
		    "ignored (at most %d)", mpd->cfg.cluster_channel, len,
		    CMSG_MAX_LEN);
		return;
	}
	if (cmsg_decode(buf, len, &m, &why) != 0) {
		cluster_st.malformed++;
		cluster_warn(&warned_bad, "channel %s: message of %zu bytes "
		    "ignored: %s", mpd->cfg.cluster_channel, len, why);
		return;
	}
	if (m.type == CMSG_HEARTBEAT) {
		if (m.origin == cluster_origin)
			cluster_st.lag_ms = mpd->now_ms >= m.time_ms ?
			    (int64_t)(mpd->now_ms - m.time_ms) : 0;
		return;
	}
	if (user_normalize(&mpd->cfg.names, m.ev.user, m.ev.user_len, user,
	    &why) != 0) {
		cluster_st.malformed++;
		cluster_warn(&warned_bad, "channel %s: event ignored: %s",
		    mpd->cfg.cluster_channel, why);
		return;
	}
	if (seen_before(&m)) {
		cluster_st.duplicates++;
		return;
	}
	cluster_st.received++;
	cluster_st.event_age_ms = (int64_t)(mpd->now_ms - m.time_ms);
	log_debug("event from relay %016" PRIx64 " #%" PRIu64 ": %u new for "
	    "%s in %s", m.origin, m.seq, m.ev.count, user,
	    log_str(m.ev.mailbox));
	push_event(user, m.ev.mailbox, m.ev.count);
	/* one flush after all the messages of this read */
	make_events();
	event_active(flush_ev, 0, 0);
}
