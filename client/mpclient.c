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
 *
 * This file: the client object, sending requests, timers.  Replies and
 * pushes are mpclient_input.c, keep-alive and probes mpclient_probe.c.
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
#include "mpclient_int.h"
#include "proto.h"

_Static_assert(MP_DEVICE_ID_LEN == PROTO_DEVICE_LEN, "device id length");

void
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

void
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
void
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
int
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

int
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
int
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
void
mpc_resend(struct mpc *m, uint64_t now)
{
	m->tries = 0;
	m->interval = MPC_RETRY_FIRST_MS;
	m->n_sent = 0;
	(void)mpc_send_request(m, now);
}

void
mpc_lost(struct mpc *m, uint64_t now, const char *why)
{
	m->state = MPC_REGISTERING;
	m->probe_ts = 0;
	(void)mpc_start(m, PROTO_REGISTER, now);
	mpc_notify(m, MPC_EV_LOST, why);
}

void
mpc_unregistered(struct mpc *m, const char *why)
{
	m->state = MPC_UNREGISTERED;
	m->req = 0;
	m->reg_id = 0;
	m->lifetime = 0;
	m->probe_ts = 0;
	mpc_notify(m, MPC_EV_UNREGISTERED, why);
}

void
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
	proto_push_key(m->token, m->push_key);
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
