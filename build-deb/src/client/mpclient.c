/*
 * mpclient.c: the mailpush client library, see mpclient.h and
 * mailpush-protocol(7).
 *
 * One request is outstanding at a time (REGISTER, REFRESH or UNREGISTER).
 * Every transmission of it gets a fresh nonce, timestamp and MAC; replies
 * are accepted for the nonces of the current request's transmissions only,
 * so a late answer to an earlier copy still counts while a stray or forged
 * reply does not.
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

#define MPC_NONCES	8	/* transmissions of one request remembered */
#define MPC_INPUT_MAX	256	/* datagrams read per mpc_input call */
#define MPC_COOKIES	3	/* consecutive COOKIEs answered at once */
#define MPC_COOKIE_KEEP	60000	/* a cookie is valid for 60 to 120 s */

struct mpc {
	int			 fd;
	uint8_t			 token[MP_TOKEN_LEN];
	struct mp_request	 rq;	/* user, context, mailboxes, cookie */
	struct mpc_callbacks	 cb;
	struct mpc_stats	 st;

	enum mpc_state		 state;
	uint32_t		 reg_id;	/* pushes accepted for it */
	uint32_t		 lifetime;
	uint64_t		 refresh_at;
	uint64_t		 expires_at;
	uint64_t		 retry_at;	/* after TABLE_FULL etc., or 0 */
	unsigned		 reason;
	uint32_t		 limit;
	int			 verified;
	uint32_t		 server_seq;	/* from the last REGISTERED */
	uint32_t		 missed;
	uint8_t			 cookie[PROTO_COOKIE_LEN];	/* last one */
	uint64_t		 cookie_at;	/* when it came, 0 if none */
	int64_t			 offset;
	const char		*why;

	/* Pushes seen. */
	uint32_t		 last_seq;
	uint32_t		 last_total;
	int			 have_total;

	/* The outstanding request, req == 0 if none. */
	uint8_t			 req;
	unsigned		 tries;
	unsigned		 cookies;	/* consecutive COOKIE answers */
	int			 stale_retried;
	uint64_t		 interval;
	uint64_t		 next_send;
	uint32_t		 nonces[MPC_NONCES];
	size_t			 n_nonces;
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

static uint64_t
mpc_wallclock(const struct mpc *m)
{
	int64_t t = (int64_t)time(NULL) + m->offset;

	return t < 0 ? 0 : (uint64_t)t;
}

static int
mpc_nonce_outstanding(const struct mpc *m, uint32_t nonce)
{
	size_t i;

	if (m->req == 0)
		return 0;
	for (i = 0; i < m->n_nonces && i < MPC_NONCES; i++)
		if (m->nonces[i] == nonce)
			return 1;
	return 0;
}

/* Send the outstanding request once more: new nonce, timestamp, MAC. */
static int
mpc_send_request(struct mpc *m, uint64_t now)
{
	uint8_t buf[PROTO_MAX_DATAGRAM];
	uint32_t nonce;
	int len;

	randombytes_buf(&nonce, sizeof(nonce));
	m->rq.type = m->req;
	m->rq.timestamp = mpc_wallclock(m);
	m->rq.nonce = nonce;
	m->rq.reg_id = m->req == PROTO_REGISTER ? 0 : m->reg_id;
	m->nonces[m->n_nonces % MPC_NONCES] = nonce;
	m->n_nonces++;
	if (m->tries++ == 0)
		m->st.sent++;
	else
		m->st.retransmits++;
	m->next_send = now + m->interval;
	/* Checked by mpc_new: the request always fits. */
	if ((len = proto_request_encode(&m->rq, m->token, buf,
	    sizeof(buf))) == -1)
		abort();
	if (send(m->fd, buf, (size_t)len, 0) == -1) {
		m->st.send_errors++;
		return -1;
	}
	return 0;
}

/*
 * Begin a new request: fresh backoff, old nonces forgotten, the last
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
	m->n_nonces = 0;
	if (m->cookie_at != 0 && now - m->cookie_at < MPC_COOKIE_KEEP)
		memcpy(m->rq.cookie, m->cookie, sizeof(m->rq.cookie));
	else
		memset(m->rq.cookie, 0, sizeof(m->rq.cookie));
	return mpc_send_request(m, now);
}

/* Send the same request again at once (after STALE). */
static void
mpc_resend(struct mpc *m, uint64_t now)
{
	m->tries = 0;
	m->interval = MPC_RETRY_FIRST_MS;
	m->n_nonces = 0;
	(void)mpc_send_request(m, now);
}

static void
mpc_lost(struct mpc *m, uint64_t now, const char *why)
{
	m->state = MPC_REGISTERING;
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
	m->reason = reason;
	m->limit = limit;
	m->verified = verified;
	/* The server is full for now, not for good: try again later. */
	if (verified && (reason == REASON_TABLE_FULL ||
	    reason == REASON_ADDRESS_LIMIT))
		m->retry_at = now + MPC_REFUSED_RETRY_MS;
	else
		m->retry_at = 0;
	mpc_notify(m, MPC_EV_REFUSED, why);
}

static void
mpc_registered(struct mpc *m, const struct mp_reply *rp, uint64_t now,
    enum mpc_event ev)
{
	uint64_t period;

	m->missed = 0;
	if (rp->reg_id != m->reg_id) {
		/* A new registration: every push of it is new to us. */
		m->last_seq = 0;
		m->have_total = 0;
	} else if (rp->seq < m->last_seq) {
		/* Same id but the server's sequence went back: it lost state. */
		m->last_seq = rp->seq;
		m->have_total = 0;
	} else
		m->missed = rp->seq - m->last_seq;
	m->server_seq = rp->seq;
	m->reg_id = rp->reg_id;
	m->lifetime = rp->lifetime;
	m->state = MPC_REGISTERED;
	m->req = 0;
	m->verified = 1;
	period = (uint64_t)rp->lifetime * 1000 / 2;
	if (period < MPC_MIN_REFRESH_MS)
		period = MPC_MIN_REFRESH_MS;
	m->refresh_at = now + period;
	m->expires_at = now + (uint64_t)rp->lifetime * 1000;
	mpc_notify(m, ev, ev == MPC_EV_REGISTERED ? "registered" : "refreshed");
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
	if (!mpc_nonce_outstanding(m, rp.nonce)) {
		mpc_drop(m, "dropped %s: nonce %08x is not outstanding",
		    proto_type_name(rp.type), rp.nonce);
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
		if (++m->cookies <= MPC_COOKIES) {
			m->tries = 0;
			m->interval = MPC_RETRY_FIRST_MS;
			m->n_nonces = 0;
			(void)mpc_send_request(m, now);
		}
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

	/* REFUSED with a valid MAC. */
	if (rp.reason == REASON_STALE && !m->stale_retried) {
		m->offset = (int64_t)rp.server_time - (int64_t)time(NULL);
		mpc_resend(m, now);
		m->stale_retried = 1;
		mpc_notify(m, MPC_EV_STALE, "clock offset corrected");
		return 0;
	}
	if (m->req == PROTO_UNREGISTER) {
		/* UNKNOWN: as good as done; anything else: nothing to do. */
		mpc_unregistered(m, proto_reason_name(rp.reason));
		return 0;
	}
	if (rp.reason == REASON_UNKNOWN && m->req == PROTO_REFRESH) {
		mpc_lost(m, now, "the server does not know the registration");
		return 0;
	}
	mpc_refused(m, rp.reason, rp.limit, 1, now,
	    rp.reason == REASON_AUTH ?
	    "authentication failed (token probably wrong)" :
	    proto_reason_name(rp.reason));
	return 0;
}

static int
mpc_handle_push(struct mpc *m, const uint8_t *buf, size_t len)
{
	uint8_t out[PROTO_ACK_LEN];
	struct mp_push p;
	struct mp_ack a;
	struct mpc_push cp;
	const char *why;
	int n;

	if (proto_push_decode(buf, len, &p, &why) == -1) {
		mpc_drop(m, "dropped PUSH: %s", why);
		return -1;
	}
	if (proto_verify(buf, len, m->token) == -1) {
		mpc_drop(m, "dropped PUSH seq %u: MAC does not verify", p.seq);
		return -1;
	}
	if (m->reg_id == 0 || p.reg_id != m->reg_id) {
		mpc_drop(m, "dropped PUSH seq %u: registration %u is not ours",
		    p.seq, p.reg_id);
		return -1;
	}
	if (p.ctx_len != m->rq.ctx_len ||
	    memcmp(p.ctx, m->rq.ctx, p.ctx_len) != 0) {
		mpc_drop(m, "dropped PUSH seq %u: foreign context", p.seq);
		return -1;
	}

	a.reg_id = p.reg_id;
	a.seq = p.seq;
	if ((n = proto_ack_encode(&a, m->token, out, sizeof(out))) == -1)
		abort();
	if (send(m->fd, out, (size_t)n, 0) == -1)
		m->st.send_errors++;
	else
		m->st.acks++;

	if (p.seq <= m->last_seq) {
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
		return mpc_handle_reply(m, buf, len, now);
	case PROTO_PUSH:
		return mpc_handle_push(m, buf, len);
	case -1:
		mpc_drop(m, "dropped datagram of %zu bytes: not mailpush", len);
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

uint64_t
mpc_next_deadline(const struct mpc *m)
{
	if (m->req != 0)
		return m->next_send;
	if (m->state == MPC_REGISTERED)
		return m->refresh_at;
	if (m->state == MPC_REFUSED && m->retry_at != 0)
		return m->retry_at;
	return UINT64_MAX;
}

void
mpc_tick(struct mpc *m, uint64_t now)
{
	if (m->req != 0) {
		if (now < m->next_send)
			return;
		if (m->req == PROTO_REFRESH && (m->tries >= MPC_REFRESH_TRIES ||
		    now >= m->expires_at)) {
			mpc_lost(m, now, "no answer to REFRESH");
			return;
		}
		if (m->req == PROTO_UNREGISTER &&
		    m->tries >= MPC_UNREGISTER_TRIES) {
			mpc_unregistered(m, "no answer to UNREGISTER");
			return;
		}
		m->interval *= 2;
		if (m->interval > MPC_RETRY_MAX_MS)
			m->interval = MPC_RETRY_MAX_MS;
		(void)mpc_send_request(m, now);
		return;
	}
	if (m->state == MPC_REGISTERED && now >= m->refresh_at)
		(void)mpc_start(m, PROTO_REFRESH, now);
	else if (m->state == MPC_REFUSED && m->retry_at != 0 &&
	    now >= m->retry_at)
		(void)mpc_register(m, now);
}

int
mpc_register(struct mpc *m, uint64_t now)
{
	m->state = MPC_REGISTERING;
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
	/* The largest request (REGISTER, REFRESH, UNREGISTER are equal). */
	m->rq.type = PROTO_REGISTER;
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
	free(m);
}
