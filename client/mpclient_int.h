/*
 * mpclient_int.h: what the parts of the client library share (the client
 * object, the functions the request, reply and probe sides call in each
 * other); not for programs using the library, which use mpclient.h.
 */
#ifndef MP_MPCLIENT_INT_H
#define MP_MPCLIENT_INT_H

#include <stddef.h>
#include <stdint.h>

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

/* mpclient.c */
void	mpc_drop(struct mpc *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	mpc_fill_status(const struct mpc *, struct mpc_status *);
void	mpc_notify(struct mpc *, enum mpc_event, const char *why);
int	mpc_send_typed(struct mpc *, uint8_t type, uint64_t now, uint64_t *ts);
int	mpc_sent_outstanding(const struct mpc *, uint64_t ts);
int	mpc_start(struct mpc *, uint8_t type, uint64_t now);
void	mpc_resend(struct mpc *, uint64_t now);
void	mpc_lost(struct mpc *, uint64_t now, const char *why);
void	mpc_unregistered(struct mpc *, const char *why);
void	mpc_refused(struct mpc *, unsigned reason, uint32_t limit,
	    int verified, uint64_t now, const char *why);

/* mpclient_probe.c */
void	mpc_ka_update(struct mpc *);
void	mpc_probe_send(struct mpc *, uint64_t now);
void	mpc_probe_timeout(struct mpc *, uint64_t now);
void	mpc_probe_echo(struct mpc *, uint64_t now);

#endif
