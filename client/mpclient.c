/*
 * mpclient.c: the mailpush client library, see mpclient.h and
 * mailpush-protocol(7).
 *
 * One request is outstanding at a time (REGISTER, REFRESH or UNREGISTER).
 * Every transmission of any request gets a fresh timestamp (milliseconds,
 * strictly increasing: the server refuses anything not above the last it
 * saw from this device) and MAC; replies echo the timestamp and are
 * accepted for the current request's transmissions only, so a late answer
 * to an earlier copy still counts while a stray or forged reply does not.
 * PUSH_ACK and PROBE are requests the server never answers directly.
 *
 * Keep-alive: every datagram sent counts; when nothing was sent for the
 * keep-alive interval, a KEEPALIVE (8 bytes, no MAC) goes.  The interval
 * is learnt with PROBEs (mpc_probe_*): ask for a PROBE_ECHO after D
 * seconds, send nothing meanwhile; if it comes, the mapping survives D of
 * silence.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "mpclient.h"
#include "proto.h"

#define MPC_SENT_KEEP	8	/* transmissions of one request remembered */
#define MPC_INPUT_MAX	256	/* datagrams read per mpc_input call */
#define MPC_COOKIES	3	/* consecutive COOKIEs answered at once */
#define MPC_COOKIE_KEEP	60000	/* a cookie is valid for 60 to 120 s */

_Static_assert(MP_DEVICE_ID_LEN == PROTO_DEVICE_LEN, "device id length");

struct mpc {
	int			 fd;
	uint8_t			 token[MP_TOKEN_LEN];
	uint8_t			 push_key[32];
	struct mp_request	 rq;	/* user, device, context, mailboxes */
	struct mpc_callbacks	 cb;
	struct mpc_stats	 st;
	int			 no_probe;

	enum mpc_state		 state;
	uint32_t		 reg_id;
	uint32_t		 lifetime;
	uint64_t		 refresh_at;
	uint64_t		 expires_at;
	uint64_t		 retry_at;	/* after TABLE_FULL etc., or 0 */
	uint32_t		 retry_ms;
	unsigned		 reason;
	uint32_t		 limit;
	int			 verified;
	uint32_t		 server_seq;	/* from the last REGISTERED */
	uint32_t		 missed;
	uint8_t			 cookie[PROTO_COOKIE_LEN];	/* last one */
	uint64_t		 cookie_at;	/* when it came, 0 if none */
	int64_t			 offset;	/* ms */
	uint64_t		 last_ts;	/* last request timestamp */
	uint64_t		 last_send;	/* monotonic, any datagram */
	uint64_t		 kick_at;	/* no REFRESH for a KICK before */
	const char		*why;

	/* Pushes seen. */
	uint64_t		 epoch, prev_epoch;
	uint32_t		 last_seq;
	uint32_t		 last_total;
	int			 have_total;

	/* Keep-alive and probes (ms). */
	uint32_t		 ka_min, ka_max, ka;
	uint32_t		 good, bad;
	unsigned		 probe_fails;
	uint64_t		 probe_next;	/* when to probe, 0: not */
	uint64_t		 probe_ts;	/* of the PROBE out, 0: none */
	uint64_t		 probe_sent;
	uint64_t		 probe_until;
	uint32_t		 probe_delay;

	/* The outstanding request, req == 0 if none. */
	uint8_t			 req;
	unsigned		 tries;
	unsigned		 cookies;	/* consecutive COOKIE answers */
	int			 stale_retried;
	uint64_t		 interval;
	uint64_t		 next_send;
	uint64_t		 sent_ts[MPC_SENT_KEEP];
	size_t			 n_sent;
};

static void	mpc_drop(struct mpc *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

static void
mpc_drop(struct mpc *m, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	m->st.dropped++;
	if (m->cb.debug == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	m->cb.debug(m->cb.arg, buf);
}

static void
mpc_fill_status(const struct mpc *m, struct mpc_status *s)
{
	memset(s, 0, sizeof(*s));
	s->state = m->state;
	s->reg_id = m->reg_id;
	s->lifetime = m->lifetime;
	s->reason = m->reason;
	s->limit = m->limit;
	s->verified = m->verified;
	s->retry = m->retry_at != 0;
	s->retry_ms = m->retry_ms;
	s->epoch = m->epoch;
	s->keepalive_ms = m->ka;
	s->keepalive_min_ms = m->ka_min;
	s->keepalive_max_ms = m->ka_max;
	s->probe_good_ms = m->good;
	s->probe_bad_ms = m->bad;
	s->server_seq = m->server_seq;
	s->last_seq = m->last_seq;
	s->missed = m->missed;
	s->clock_offset = m->offset;
	s->why = m->why != NULL ? m->why : "";
}

/* Always the last thing a handler does: the callback may change state. */
static void
mpc_notify(struct mpc *m, enum mpc_event ev, const char *why)
{
	struct mpc_status s;

	m->why = why;
	if (m->cb.state == NULL)
		return;
	mpc_fill_status(m, &s);
	m->cb.state(m->cb.arg, ev, &s);
}

/* The next request timestamp: wall clock in ms, above the last one. */
static uint64_t
mpc_timestamp(struct mpc *m)
{
	struct timespec ts;
	int64_t t;

	clock_gettime(CLOCK_REALTIME, &ts);
	t = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + m->offset;
	if (t <= 0 || (uint64_t)t <= m->last_ts)
		t = (int64_t)m->last_ts + 1;
	m->last_ts = (uint64_t)t;
	return m->last_ts;
}

static int
mpc_send(struct mpc *m, const uint8_t *buf, size_t len, uint64_t now)
{
	m->last_send = now;
	if (send(m->fd, buf, len, 0) == -1) {
		m->st.send_errors++;
		return -1;
	}
	return 0;
}

/* Encode and send one request of type with the current fields. */
static int
mpc_send_typed(struct mpc *m, uint8_t type, uint64_t now, uint64_t *ts)
{
	uint8_t buf[PROTO_MAX_DATAGRAM];
	int len;

	m->rq.type = type;
	m->rq.timestamp = mpc_timestamp(m);
	/* padded so the answer and an owed push fit in what we send */
	m->rq.pad_to = type == PROTO_PUSH_ACK || type == PROTO_UNREGISTER ?
	    0 : (uint16_t)proto_request_pad(m->rq.ctx_len);
	if (ts != NULL)
		*ts = m->rq.timestamp;
	/* Checked by mpc_new: the request always fits. */
	if ((len = proto_request_encode(&m->rq, m->token, buf,
	    sizeof(buf))) == -1)
		abort();
	return mpc_send(m, buf, (size_t)len, now);
}

static int
mpc_sent_outstanding(const struct mpc *m, uint64_t ts)
{
	size_t i;

	if (m->req == 0)
		return 0;
	for (i = 0; i < m->n_sent && i < MPC_SENT_KEEP; i++)
		if (m->sent_ts[i] == ts)
			return 1;
	return 0;
}

/* Send the outstanding request once more: new timestamp and MAC. */
static int
mpc_send_request(struct mpc *m, uint64_t now)
{
	uint64_t ts;
	int rc;

	m->rq.seq = 0;
	m->rq.epoch = 0;
	if (m->tries++ == 0)
		m->st.sent++;
	else
		m->st.retransmits++;
	m->next_send = now + m->interval;
	rc = mpc_send_typed(m, m->req, now, &ts);
	m->sent_ts[m->n_sent % MPC_SENT_KEEP] = ts;
	m->n_sent++;
	return rc;
}

/*
 * Begin a new request: fresh backoff, old timestamps forgotten, the last
 * cookie if it is surely still valid (under 60 s old), else zeros.
 */
static int
mpc_start(struct mpc *m, uint8_t type, uint64_t now)
{
	m->req = type;
	m->tries = 0;
	m->cookies = 0;
	m->stale_retried = 0;
	m->retry_at = 0;
	m->interval = MPC_RETRY_FIRST_MS;
	m->n_sent = 0;
	if (m->cookie_at != 0 && now - m->cookie_at < MPC_COOKIE_KEEP)
		memcpy(m->rq.cookie, m->cookie, sizeof(m->rq.cookie));
	else
		memset(m->rq.cookie, 0, sizeof(m->rq.cookie));
	return mpc_send_request(m, now);
}

/* Send the same request again at once (after STALE, REPLAY, COOKIE). */
static void
mpc_resend(struct mpc *m, uint64_t now)
{
	m->tries = 0;
	m->interval = MPC_RETRY_FIRST_MS;
	m->n_sent = 0;
	(void)mpc_send_request(m, now);
}

static void
mpc_lost(struct mpc *m, uint64_t now, const char *why)
{
	m->state = MPC_REGISTERING;
	m->probe_ts = 0;
	(void)mpc_start(m, PROTO_REGISTER, now);
	mpc_notify(m, MPC_EV_LOST, why);
}

static void
mpc_unregistered(struct mpc *m, const char *why)
{
	m->state = MPC_UNREGISTERED;
	m->req = 0;
	m->reg_id = 0;
	m->lifetime = 0;
	m->probe_ts = 0;
	mpc_notify(m, MPC_EV_UNREGISTERED, why);
}

static void
mpc_refused(struct mpc *m, unsigned reason, uint32_t limit, int verified,
    uint64_t now, const char *why)
{
	m->state = MPC_REFUSED;
	m->req = 0;
	m->reg_id = 0;
	m->lifetime = 0;
	m->probe_ts = 0;
	m->reason = reason;
	m->limit = limit;
	m->verified = verified;
	/* The server is full for now, not for good: try again later,
	 * backing off, with jitter so that many clients spread out. */
	if (verified && (reason == REASON_TABLE_FULL ||
	    reason == REASON_ADDRESS_LIMIT)) {
		if (m->retry_ms == 0)
			m->retry_ms = MPC_REFUSED_RETRY_MS;
		else if ((m->retry_ms *= 2) > MPC_REFUSED_RETRY_MAX_MS)
			m->retry_ms = MPC_REFUSED_RETRY_MAX_MS;
		m->retry_at = now + m->retry_ms +
		    randombytes_uniform(m->retry_ms / 10 + 1);
	} else
		m->retry_at = 0;
	mpc_notify(m, MPC_EV_REFUSED, why);
}

/* Keep-alive interval from what the probes found, in the server's bounds. */
static void
mpc_ka_update(struct mpc *m)
{
	uint32_t ka = m->good / 4 * 3;

	if (ka < m->ka_min)
		ka = m->ka_min;
	if (ka > m->ka_max)
		ka = m->ka_max;
	m->ka = ka;
}

/* The next PROBE's delay, or 0 when the search is over. */
static uint32_t
mpc_probe_delay(const struct mpc *m)
{
	uint32_t lo = m->good > m->ka_min ? m->good : m->ka_min, d;

	if (m->no_probe || m->probe_fails >= 3 || lo >= m->ka_max)
		return 0;
	d = m->bad == 0 ? lo * 2 : lo + (m->bad - lo) / 2;
	if (d > m->ka_max)
		d = m->ka_max;
	if (d < lo + MPC_PROBE_STEP_MS)
		return 0;
	return (d + 999) / 1000 * 1000;
}

static void
mpc_probe_send(struct mpc *m, uint64_t now)
{
	uint32_t d = mpc_probe_delay(m);

	m->probe_next = 0;
	if (d == 0) {
		/* converged: look again much later, the NAT may change */
		if (!m->no_probe) {
			m->probe_next = now + MPC_PROBE_AGAIN_MS;
			m->bad = 0;
			m->probe_fails = 0;
		}
		return;
	}
	m->rq.seq = d / 1000;
	m->rq.epoch = 0;
	m->probe_delay = d;
	m->probe_sent = now;
	m->probe_until = now + d + MPC_PROBE_GRACE_MS;
	m->st.probes++;
	(void)mpc_send_typed(m, PROTO_PROBE, now, &m->probe_ts);
}

/* The PROBE_ECHO did not come in time. */
static void
mpc_probe_timeout(struct mpc *m, uint64_t now)
{
	uint32_t old = m->ka;

	m->probe_ts = 0;
	if (m->last_send != m->probe_sent) {
		/* we spoke meanwhile: the silence was shorter, no verdict */
		m->probe_next = now + m->ka;
		return;
	}
	m->probe_fails++;
	if (m->bad == 0 || m->probe_delay < m->bad)
		m->bad = m->probe_delay;
	mpc_ka_update(m);
	m->probe_next = now + 2 * (uint64_t)m->ka;
	/* The mapping may be gone, and pushes with it: REFRESH now, which
	 * makes a new one and moves the registration if the port changed. */
	if (m->state == MPC_REGISTERED && m->req == 0)
		(void)mpc_start(m, PROTO_REFRESH, now);
	if (m->ka != old)
		mpc_notify(m, MPC_EV_KEEPALIVE, "probe not answered");
}

static void
mpc_probe_echo(struct mpc *m, uint64_t now)
{
	uint32_t idle = (uint32_t)(now - m->last_send), old = m->ka;

	m->probe_ts = 0;
	m->st.probes_answered++;
	m->probe_fails = 0;
	if (idle > m->good)
		m->good = idle;
	if (m->bad != 0 && m->good >= m->bad)
		m->bad = 0;	/* the NAT changed: search upwards again */
	mpc_ka_update(m);
	m->probe_next = now + 1000;
	if (m->ka != old)
		mpc_notify(m, MPC_EV_KEEPALIVE, "probe answered");
}

static void
mpc_registered(struct mpc *m, const struct mp_reply *rp, uint64_t now,
    enum mpc_event ev)
{
	uint64_t period;
	uint32_t kmin, kmax;

	m->missed = 0;
	if (rp->epoch != m->epoch) {
		/* A restarted server, or a new registration: every push of
		 * its epoch after this seq is new to us. */
		if (m->epoch != 0)
			m->prev_epoch = m->epoch;
		m->epoch = rp->epoch;
		m->last_seq = rp->seq;
		m->have_total = 0;
	} else if (rp->reg_id != m->reg_id) {
		m->last_seq = rp->seq;
		m->have_total = 0;
	} else if (rp->seq > m->last_seq)
		m->missed = rp->seq - m->last_seq;
	m->server_seq = rp->seq;
	m->reg_id = rp->reg_id;
	m->lifetime = rp->lifetime;
	m->state = MPC_REGISTERED;
	m->req = 0;
	m->verified = 1;
	m->retry_ms = 0;
	period = (uint64_t)rp->lifetime * 1000 / 2;
	if (period < MPC_MIN_REFRESH_MS)
		period = MPC_MIN_REFRESH_MS;
	m->refresh_at = now + period;
	m->expires_at = now + (uint64_t)rp->lifetime * 1000;
	kmin = rp->keepalive_min ? rp->keepalive_min * 1000U : 1000;
	kmax = rp->keepalive_max * 1000U;
	if (kmax < kmin)
		kmax = kmin;
	if (kmin != m->ka_min || kmax != m->ka_max || m->ka == 0) {
		m->ka_min = kmin;
		m->ka_max = kmax;
		mpc_ka_update(m);
		if (m->probe_next == 0 && m->probe_ts == 0 && !m->no_probe)
			m->probe_next = now + 1000;
	}
	mpc_notify(m, ev, ev == MPC_EV_REGISTERED ? "registered" : "refreshed");
}

/* A verified REFUSED for the outstanding request. */
static void
mpc_handle_refused(struct mpc *m, const struct mp_reply *rp, uint64_t now)
{
	if ((rp->reason == REASON_STALE || rp->reason == REASON_REPLAY) &&
	    !m->stale_retried) {
		if (rp->reason == REASON_STALE) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			m->offset = (int64_t)rp->value -
			    ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
		} else if (rp->value >= m->last_ts)
			m->last_ts = rp->value;	/* go on above it */
		mpc_resend(m, now);
		m->stale_retried = 1;
		mpc_notify(m, MPC_EV_STALE, rp->reason == REASON_STALE ?
		    "clock offset corrected" : "timestamp moved on");
		return;
	}
	if (m->req == PROTO_UNREGISTER) {
		/* UNKNOWN: as good as done; anything else: nothing to do. */
		mpc_unregistered(m, proto_reason_name(rp->reason));
		return;
	}
	if (rp->reason == REASON_UNKNOWN && m->req == PROTO_REFRESH) {
		mpc_lost(m, now, "the server does not know the registration");
		return;
	}
	mpc_refused(m, rp->reason, rp->limit, 1, now,
	    rp->reason == REASON_AUTH ?
	    "authentication failed (token probably wrong)" :
	    proto_reason_name(rp->reason));
}

static int
mpc_handle_reply(struct mpc *m, const uint8_t *buf, size_t len, uint64_t now)
{
	struct mp_reply rp;
	const char *why;

	if (proto_reply_decode(buf, len, &rp, &why) == -1) {
		mpc_drop(m, "dropped reply: %s", why);
		return -1;
	}
	if (rp.type == PROTO_KICK) {
		m->st.kicks++;
		if (m->state != MPC_REGISTERED || rp.reg_id != m->reg_id) {
			mpc_drop(m, "dropped KICK for %08x", rp.reg_id);
			return -1;
		}
		if (m->req != 0 || now < m->kick_at)
			return 0;
		m->kick_at = now + MPC_KICK_GAP_MS;
		(void)mpc_start(m, PROTO_REFRESH, now);
		mpc_notify(m, MPC_EV_KICK, "the server asked for a refresh");
		return 0;
	}
	if (rp.type == PROTO_PROBE_ECHO) {
		if (m->probe_ts == 0 || rp.timestamp != m->probe_ts ||
		    proto_verify(buf, len, m->token) == -1) {
			mpc_drop(m, "dropped PROBE_ECHO: not for our probe");
			return -1;
		}
		mpc_probe_echo(m, now);
		return 0;
	}
	if (!mpc_sent_outstanding(m, rp.timestamp)) {
		mpc_drop(m, "dropped %s: timestamp %llu is not outstanding",
		    proto_type_name(rp.type), (unsigned long long)rp.timestamp);
		return -1;
	}
	if (rp.type == PROTO_COOKIE) {
		memcpy(m->cookie, rp.cookie, PROTO_COOKIE_LEN);
		memcpy(m->rq.cookie, rp.cookie, PROTO_COOKIE_LEN);
		m->cookie_at = now != 0 ? now : 1;
		/*
		 * Answer at once, but not forever: after a few COOKIEs in a
		 * row the request waits for its normal retransmission.
		 */
		if (++m->cookies <= MPC_COOKIES)
			mpc_resend(m, now);
		return 0;
	}
	if (proto_verify(buf, len, m->token) == -1) {
		if (rp.type == PROTO_REFUSED && rp.reason == REASON_AUTH &&
		    m->req != PROTO_UNREGISTER) {
			mpc_refused(m, REASON_AUTH, 0, 0, now,
			    "authentication failed (token probably wrong)");
			return 0;
		}
		/* a name the server cannot normalise has no token to sign
		 * the refusal with: report it rather than retry forever */
		if (rp.type == PROTO_REFUSED &&
		    rp.reason == REASON_BAD_REQUEST &&
		    m->req != PROTO_UNREGISTER) {
			mpc_refused(m, REASON_BAD_REQUEST, 0, 0, now,
			    "user name refused by the server");
			return 0;
		}
		mpc_drop(m, "dropped %s: MAC does not verify",
		    proto_type_name(rp.type));
		return -1;
	}
	if (rp.type == PROTO_REGISTERED) {
		if (m->req == PROTO_UNREGISTER)
			mpc_unregistered(m, "confirmed by the server");
		else
			mpc_registered(m, &rp, now, m->req == PROTO_REGISTER ?
			    MPC_EV_REGISTERED : MPC_EV_REFRESHED);
		return 0;
	}
	mpc_handle_refused(m, &rp, now);
	return 0;
}

static int
mpc_handle_push(struct mpc *m, const uint8_t *buf, size_t len, uint64_t now)
{
	static struct mp_push p;
	struct mpc_push cp;
	const char *why;
	int restarted = 0;

	if (proto_push_open(buf, len, m->push_key, &p, &why) == -1) {
		mpc_drop(m, "dropped PUSH: %s", why);
		return -1;
	}
	if (m->reg_id == 0 || p.reg_id != m->reg_id) {
		mpc_drop(m, "dropped PUSH seq %u: registration %08x is not "
		    "ours", p.seq, p.reg_id);
		return -1;
	}
	if (p.ctx_len != m->rq.ctx_len ||
	    memcmp(p.ctx, m->rq.ctx, p.ctx_len) != 0) {
		mpc_drop(m, "dropped PUSH seq %u: foreign context", p.seq);
		return -1;
	}
	m->rq.seq = p.seq;
	m->rq.epoch = p.epoch;
	if (mpc_send_typed(m, PROTO_PUSH_ACK, now, NULL) == 0)
		m->st.acks++;

	if (p.epoch == m->prev_epoch && p.epoch != m->epoch) {
		m->st.duplicates++;	/* late, from before a restart */
		return 0;
	}
	if (p.epoch != m->epoch) {
		if (m->epoch != 0) {
			m->prev_epoch = m->epoch;
			restarted = 1;
		}
		m->epoch = p.epoch;
		m->last_seq = 0;
		m->have_total = 0;
	} else if (p.seq <= m->last_seq ||
	    (m->have_total && p.total == m->last_total)) {
		/* a retransmission, or a push with nothing new for us */
		m->last_seq = p.seq > m->last_seq ? p.seq : m->last_seq;
		m->st.duplicates++;
		return 0;
	}
	memset(&cp, 0, sizeof(cp));
	cp.user = m->rq.user;
	cp.reg_id = p.reg_id;
	cp.seq = p.seq;
	cp.count = p.count;
	cp.total = p.total;
	/*
	 * new = total - last total, modulo 2^32.  It can never exceed
	 * count (count covers everything since the last push acked, which
	 * is at most the last one seen); if it does, the server's state was
	 * reset, and count is the best there is.
	 */
	cp.new_messages = p.total - m->last_total;
	if (!m->have_total || cp.new_messages > p.count)
		cp.new_messages = p.count;
	cp.server_time = p.server_time;
	cp.epoch = p.epoch;
	cp.restarted = restarted;
	cp.exact = !(p.flags & PUSH_FLAG_COUNT_UNKNOWN);
	cp.ctx = p.ctx;
	cp.ctx_len = p.ctx_len;
	m->last_seq = p.seq;
	m->last_total = p.total;
	m->have_total = 1;
	m->st.pushes++;
	if (m->cb.push != NULL)
		m->cb.push(m->cb.arg, &cp);
	return 0;
}

int
mpc_handle_datagram(struct mpc *m, const uint8_t *buf, size_t len,
    uint64_t now)
{
	int type;

	m->st.received++;
	if (len > PROTO_MAX_DATAGRAM) {
		mpc_drop(m, "dropped datagram of %zu bytes", len);
		return -1;
	}
	switch ((type = proto_type(buf, len))) {
	case PROTO_COOKIE:
	case PROTO_REGISTERED:
	case PROTO_REFUSED:
	case PROTO_PROBE_ECHO:
	case PROTO_KICK:
		return mpc_handle_reply(m, buf, len, now);
	case PROTO_PUSH:
		return mpc_handle_push(m, buf, len, now);
	case -1:
		mpc_drop(m, "dropped datagram of %zu bytes: not mailpush "
		    "version 2", len);
		return -1;
	default:
		mpc_drop(m, "dropped %s: not for a client",
		    proto_type_name((unsigned)type));
		return -1;
	}
}

void
mpc_input(struct mpc *m, uint64_t now)
{
	uint8_t buf[PROTO_MAX_DATAGRAM + 1];
	ssize_t n;
	int i;

	for (i = 0; i < MPC_INPUT_MAX; i++) {
		/* MSG_TRUNC: the real length, so oversized ones are seen. */
		n = recv(m->fd, buf, sizeof(buf), MSG_TRUNC);
		if (n == -1) {
			if (errno == EINTR || errno == ECONNREFUSED ||
			    errno == EHOSTUNREACH || errno == ENETUNREACH ||
			    errno == EHOSTDOWN)
				continue;
			return;
		}
		if ((size_t)n > PROTO_MAX_DATAGRAM) {
			m->st.received++;
			mpc_drop(m, "dropped datagram of %zd bytes", n);
			continue;
		}
		(void)mpc_handle_datagram(m, buf, (size_t)n, now);
	}
}

static uint64_t
min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

uint64_t
mpc_next_deadline(const struct mpc *m)
{
	uint64_t d = UINT64_MAX;

	if (m->req != 0)
		d = m->next_send;
	if (m->state == MPC_REGISTERED) {
		if (m->req == 0)
			d = min64(d, m->refresh_at);
		if (m->probe_ts != 0)
			d = min64(d, m->probe_until);
		else {
			if (m->probe_next != 0)
				d = min64(d, m->probe_next);
			d = min64(d, m->last_send + m->ka);
		}
	}
	if (m->state == MPC_REFUSED && m->retry_at != 0)
		d = min64(d, m->retry_at);
	return d;
}

static void
mpc_tick_request(struct mpc *m, uint64_t now)
{
	if (now < m->next_send)
		return;
	if (m->req == PROTO_REFRESH && (m->tries >= MPC_REFRESH_TRIES ||
	    now >= m->expires_at)) {
		mpc_lost(m, now, "no answer to REFRESH");
		return;
	}
	if (m->req == PROTO_UNREGISTER && m->tries >= MPC_UNREGISTER_TRIES) {
		mpc_unregistered(m, "no answer to UNREGISTER");
		return;
	}
	m->interval *= 2;
	if (m->interval > MPC_RETRY_MAX_MS)
		m->interval = MPC_RETRY_MAX_MS;
	(void)mpc_send_request(m, now);
}

void
mpc_tick(struct mpc *m, uint64_t now)
{
	uint8_t buf[PROTO_KEEPALIVE_LEN];
	int n;

	if (m->req != 0)
		mpc_tick_request(m, now);
	if (m->state == MPC_REFUSED && m->retry_at != 0 &&
	    now >= m->retry_at) {
		(void)mpc_register(m, now);
		return;
	}
	if (m->state != MPC_REGISTERED)
		return;
	if (m->req == 0 && now >= m->refresh_at) {
		(void)mpc_start(m, PROTO_REFRESH, now);
		return;
	}
	if (m->probe_ts != 0) {
		if (now >= m->probe_until)
			mpc_probe_timeout(m, now);
		return;		/* silence while a probe is out */
	}
	if (m->probe_next != 0 && now >= m->probe_next && m->req == 0) {
		mpc_probe_send(m, now);
		if (m->probe_ts != 0)
			return;
	}
	if (now >= m->last_send + m->ka &&
	    (n = proto_keepalive_encode(m->reg_id, buf, sizeof(buf))) > 0 &&
	    mpc_send(m, buf, (size_t)n, now) == 0)
		m->st.keepalives++;
}

int
mpc_register(struct mpc *m, uint64_t now)
{
	m->state = MPC_REGISTERING;
	m->probe_ts = 0;
	return mpc_start(m, PROTO_REGISTER, now);
}

int
mpc_unregister(struct mpc *m, uint64_t now)
{
	if (m->reg_id == 0 || (m->state != MPC_REGISTERED &&
	    m->state != MPC_REGISTERING && m->state != MPC_UNREGISTERING)) {
		m->state = MPC_UNREGISTERED;
		m->req = 0;
		m->reg_id = 0;
		m->retry_at = 0;
		errno = EINVAL;
		return -1;
	}
	m->state = MPC_UNREGISTERING;
	m->retry_at = 0;
	m->probe_ts = 0;
	return mpc_start(m, PROTO_UNREGISTER, now);
}

struct mpc *
mpc_new(const struct sockaddr *server, socklen_t server_len,
    const struct mpc_params *pa, const struct mpc_callbacks *cb)
{
	uint8_t buf[PROTO_MAX_DATAGRAM];
	struct mpc *m;
	size_t len, i;
	int saved;

	if (sodium_init() == -1) {
		errno = ENOSYS;
		return NULL;
	}
	if (server == NULL || server_len == 0 ||
	    server_len > sizeof(struct sockaddr_storage) || pa == NULL ||
	    pa->user == NULL || (len = strlen(pa->user)) == 0 ||
	    len > MP_USER_MAX || pa->ctx_len > MP_CONTEXT_MAX ||
	    (pa->ctx == NULL && pa->ctx_len > 0) ||
	    pa->n_mailboxes > MP_MAILBOXES_MAX) {
		errno = EINVAL;
		return NULL;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->fd = -1;
	memcpy(m->token, pa->token, sizeof(m->token));
	proto_push_key(m->token, pa->device, m->push_key);
	m->no_probe = pa->no_probe;
	m->rq.key_id = pa->key_id != 0 ? pa->key_id : PROTO_KEY_ID_DEFAULT;
	memcpy(m->rq.device, pa->device, PROTO_DEVICE_LEN);
	m->rq.user_len = (uint8_t)len;
	memcpy(m->rq.user, pa->user, len);
	m->rq.ctx_len = (uint16_t)pa->ctx_len;
	if (pa->ctx_len > 0)
		memcpy(m->rq.ctx, pa->ctx, pa->ctx_len);
	m->rq.n_mailboxes = (uint8_t)pa->n_mailboxes;
	for (i = 0; i < pa->n_mailboxes; i++) {
		if (pa->mailboxes[i] == NULL ||
		    (len = strlen(pa->mailboxes[i])) == 0 ||
		    len > MP_MAILBOX_MAX)
			goto inval;
		m->rq.mailboxes[i].len = (uint8_t)len;
		memcpy(m->rq.mailboxes[i].name, pa->mailboxes[i], len);
	}
	/* The largest request (REGISTER, REFRESH, PROBE are equal). */
	m->rq.type = PROTO_REGISTER;
	m->rq.pad_to = (uint16_t)proto_request_pad(m->rq.ctx_len);
	if (proto_request_encode(&m->rq, m->token, buf, sizeof(buf)) == -1)
		goto inval;
	if (cb != NULL)
		m->cb = *cb;
	m->state = MPC_UNREGISTERED;

	if ((m->fd = socket(server->sa_family,
	    SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(m->fd, server, server_len) == -1)
		goto fail;
	return m;

inval:
	errno = EINVAL;
fail:
	saved = errno;
	mpc_free(m);
	errno = saved;
	return NULL;
}

int
mpc_fd(const struct mpc *m)
{
	return m->fd;
}

enum mpc_state
mpc_state(const struct mpc *m, struct mpc_status *s)
{
	if (s != NULL)
		mpc_fill_status(m, s);
	return m->state;
}

void
mpc_stats(const struct mpc *m, struct mpc_stats *st)
{
	*st = m->st;
}

const char *
mpc_state_name(enum mpc_state s)
{
	switch (s) {
	case MPC_UNREGISTERED:
		return "unregistered";
	case MPC_REGISTERING:
		return "registering";
	case MPC_REGISTERED:
		return "registered";
	case MPC_UNREGISTERING:
		return "unregistering";
	case MPC_REFUSED:
		return "refused";
	}
	return "?";
}

void
mpc_free(struct mpc *m)
{
	if (m == NULL)
		return;
	if (m->fd != -1)
		close(m->fd);
	sodium_memzero(m->token, sizeof(m->token));
	sodium_memzero(m->push_key, sizeof(m->push_key));
	free(m);
}
