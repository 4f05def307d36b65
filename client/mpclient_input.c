/*
 * mpclient_input.c: what the client receives: replies to the outstanding
 * request (accepted for its own transmissions only), pushes, and reading
 * the socket (mpc_input).
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

