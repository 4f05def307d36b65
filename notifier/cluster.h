/*
 * cluster.h: what cluster.c (the Redis links) and cluster_msg.c (the
 * channel messages, the relay buffer, the subscriber side) share.  The
 * rest of the daemon sees only the cluster_ functions in mailpushd.h.
 *
 * A channel message (PUBLISH payload), network byte order, documented
 * in mailpush-cluster(7):
 *
 *	0	4	magic "MPCL" (0x4d 0x50 0x43 0x4c)
 *	4	1	version, 1
 *	5	1	type: 1 event, 2 heartbeat
 *	6	2	zero
 *	8	8	origin: random id of the sending process, new at each start
 *	16	8	sequence number, per origin and type, from 1
 *	24	8	sender's clock when the message was made, ms since 1970
 *	32	n	event: the event datagram of mailpush-hook(8), exactly;
 *			heartbeat: nothing
 */
#ifndef MP_CLUSTER_H
#define MP_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define CMSG_MAGIC	0x4d50434cU
#define CMSG_VERSION	1
#define CMSG_EVENT	1
#define CMSG_HEARTBEAT	2
#define CMSG_HDR_LEN	32
#define CMSG_MAX_LEN	(CMSG_HDR_LEN + EVENT_MAX_LEN)

struct cmsg {
	uint8_t		type;
	uint64_t	origin;
	uint64_t	seq;
	uint64_t	time_ms;
	struct mp_event	ev;		/* CMSG_EVENT */
};

/* Link states, as `mailpushctl status' names them. */
enum { LINK_OFF, LINK_DOWN, LINK_CONNECTING, LINK_READY };

/* Counters and gauges, shown by mailpushctl status and stats. */
struct cluster_stats {
	uint64_t	accepted;	/* events the relay took */
	uint64_t	held;		/* of those, taken while Redis was away */
	uint64_t	published;	/* PUBLISH confirmed by Redis */
	uint64_t	republished;	/* sent again after a reconnection */
	uint64_t	dropped;	/* relay buffer full: oldest dropped */
	uint64_t	publish_errors;	/* Redis refused a PUBLISH */
	uint64_t	unheard;	/* PUBLISH reached no subscriber */
	uint64_t	received;	/* events taken from the channel */
	uint64_t	duplicates;	/* seen before (republished) */
	uint64_t	gaps;		/* sequence gaps: events missed */
	uint64_t	malformed;	/* channel messages not understood */
	uint64_t	oversized;	/* channel messages too long */
	uint64_t	catchups;	/* catch-up rounds */
	uint64_t	catchup_pushes;	/* pushes sent by them */
	uint64_t	connects;	/* links established */
	uint64_t	disconnects;	/* links lost or dropped */
	uint64_t	auth_failures;	/* AUTH refused */
	uint64_t	buffer_peak;
	int64_t		lag_ms;		/* own heartbeat round trip, -1 */
	int64_t		event_age_ms;	/* last event: now - its time, -1 */
};

extern struct cluster_stats cluster_st;
extern uint64_t cluster_origin;

/* cluster_msg.c */
int	cmsg_encode(const struct cmsg *, uint8_t *buf, size_t len);
int	cmsg_decode(const uint8_t *, size_t, struct cmsg *, const char **why);
int	relay_init(unsigned cap);
void	relay_free(void);
size_t	relay_pending(void);		/* events held, sent or not */
size_t	relay_capacity(void);
void	relay_link_lost(void);		/* unconfirmed ones go again */
void	relay_link_ready(void);		/* send what is held */
struct redisReply;
void	relay_confirmed(uint64_t idx, const struct redisReply *);
void	sub_message(const uint8_t *, size_t);
void	sub_ready(void);		/* (re)subscribed: catch up */
void	sub_free(void);

/* cluster.c, for cluster_ops.c */
struct cluster_link_view {
	int		 state;		/* LINK_* */
	uint64_t	 since;		/* ms */
	const char	*error;		/* why it went down last, or "" */
};
struct cluster_view {
	int			role;
	struct cluster_link_view pub, sub;
	long long		subscribers;	/* last count, -1: unknown */
	int			waiting;	/* relay: for subscribers */
};
void	cluster_view(struct cluster_view *);
int	cluster_role(void);		/* CLUSTER_* */

/* cluster.c, for cluster_msg.c */
/* PUBLISH channel msg, formatted for cluster_publish */
#define CMSG_CMD_MAX	(CMSG_MAX_LEN + 128)
int	cluster_format_publish(const uint8_t *msg, size_t, uint8_t *out,
	    size_t outlen);
int	cluster_publish(const uint8_t *cmd, size_t, uint64_t idx);
int	cluster_pub_ready(void);	/* READY, and a relay settled */
void	cluster_receivers(long long);	/* PUBLISH's answer */
void	cluster_warn(uint64_t *last, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

#endif
