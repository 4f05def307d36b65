/*
 * mpclient_probe.c: the client's keep-alive interval and the PROBEs that
 * learn it: ask for a PROBE_ECHO after D seconds, send nothing meanwhile;
 * if it comes, the NAT mapping survives D of silence.
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

/* Keep-alive interval from what the probes found, in the server's bounds. */
void
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

void
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
void
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

void
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

