/*
 * mpclient.h: the mailpush client library, the part of mailpush-listen(1)
 * a mail client embeds.  It speaks mailpush-protocol(7),
 * version 2, to one server for one device: registers (with the cookie
 * round trip), refreshes at half the lifetime, keeps the NAT mapping open
 * with KEEPALIVEs at an interval it learns with PROBEs (within the bounds
 * the server announces), retransmits unanswered requests with backoff,
 * re-registers when the server has forgotten it, retries with backoff
 * when the server is full, decrypts and acknowledges pushes and calls
 * back once per push.
 *
 * A device id (16 random bytes) identifies this client instance to the
 * server: registering again with the same id, from anywhere, takes the
 * old registration over.  mpc_device_load keeps one in a file.
 *
 * It has no event loop of its own and no threads.  The caller polls one
 * file descriptor (mpc_fd) for reading and calls mpc_input when it is
 * readable, and calls mpc_tick when the time mpc_next_deadline gave has
 * come.  Every time is a caller-supplied monotonic clock in milliseconds
 * (CLOCK_MONOTONIC is right); only request timestamps use the wall clock
 * (milliseconds, strictly increasing), plus an offset learnt from the
 * server after a STALE or REPLAY refusal.
 *
 *	struct mpc *m = mpc_new(sa, salen, &params, &callbacks);
 *	mpc_register(m, now_ms());
 *	for (;;) {
 *		poll { mpc_fd(m), POLLIN } until mpc_next_deadline(m);
 *		if (readable)
 *			mpc_input(m, now_ms());
 *		mpc_tick(m, now_ms());
 *	}
 *
 * Callbacks run from inside mpc_input, mpc_handle_datagram and mpc_tick.
 * They may query the state and call mpc_register or mpc_unregister, but
 * must not call mpc_free.  The library writes nothing to stdout or stderr.
 */
#ifndef MP_MPCLIENT_H
#define MP_MPCLIENT_H

#include <sys/types.h>
#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

#include "mailpush.h"

#define MP_DEVICE_ID_LEN	16	/* PROTO_DEVICE_LEN */

#define MPC_RETRY_FIRST_MS	1000	/* first retransmission */
#define MPC_RETRY_MAX_MS	30000	/* backoff doubles up to this */
#define MPC_REFRESH_TRIES	4	/* unanswered REFRESH -> REGISTER anew */
#define MPC_UNREGISTER_TRIES	3	/* then give up, state unregistered */
#define MPC_MIN_REFRESH_MS	1000	/* never refresh more often */
#define MPC_REFUSED_RETRY_MS	30000	/* after TABLE_FULL, ADDRESS_LIMIT: */
#define MPC_REFUSED_RETRY_MAX_MS 3600000 /* doubling up to this, +0-10% */
#define MPC_PROBE_GRACE_MS	3000	/* a PROBE_ECHO later than this is lost */
#define MPC_PROBE_STEP_MS	5000	/* stop probing closer than this */
#define MPC_PROBE_AGAIN_MS	3600000	/* search again after this */
#define MPC_KICK_GAP_MS		2000	/* at most one REFRESH per KICK gap */

struct mpc;

/* What to register.  Everything is copied by mpc_new. */
struct mpc_params {
	const char	*user;		/* 1..255 bytes; send the normalised
					   name (lower case, no +ext) */
	uint8_t		 token[MP_TOKEN_LEN];
	uint8_t		 key_id;	/* of the token's key; 0: 1 */
	uint8_t		 device[MP_DEVICE_ID_LEN];	/* mpc_device_load */
	int		 no_probe;	/* 1: keep-alive at the server's
					   minimum, never PROBE */
	const uint8_t	*ctx;		/* opaque, echoed in every push */
	size_t		 ctx_len;	/* 0..MP_CONTEXT_MAX; the server's
					   limit is usually 16 */
	const char	*mailboxes[MP_MAILBOXES_MAX];	/* none: all */
	size_t		 n_mailboxes;
};

/* One new push, handed to the push callback once per sequence number. */
struct mpc_push {
	const char	*user;
	uint32_t	 reg_id;
	uint32_t	 seq;
	uint32_t	 count;		/* as sent: new since the last acked push */
	uint32_t	 total;		/* as sent: ever counted for this reg */
	uint32_t	 new_messages;	/* total - last total seen, or count
					   for the first push seen */
	uint64_t	 server_time;	/* server clock, seconds since epoch */
	uint64_t	 epoch;		/* the server's restart epoch */
	int		 restarted;	/* first push of a new epoch: the
					   server restarted since the last */
	int		 exact;		/* 0: the server lost state, counts
					   may be inexact */
	const uint8_t	*ctx;		/* valid during the callback only */
	size_t		 ctx_len;
};

enum mpc_state {
	MPC_UNREGISTERED,	/* nothing registered, nothing pending */
	MPC_REGISTERING,	/* REGISTER outstanding, retried forever */
	MPC_REGISTERED,		/* registered; refreshes on its own */
	MPC_UNREGISTERING,	/* UNREGISTER outstanding */
	MPC_REFUSED		/* refused; stopped until mpc_register,
				   or with status.retry until the retry */
};

enum mpc_event {
	MPC_EV_REGISTERED,	/* REGISTERED answered a REGISTER */
	MPC_EV_REFRESHED,	/* REGISTERED answered a REFRESH */
	MPC_EV_REFUSED,		/* refused: reason and limit in status */
	MPC_EV_LOST,		/* registration lost, registering anew */
	MPC_EV_STALE,		/* clock offset corrected, request resent */
	MPC_EV_UNREGISTERED,	/* unregistered (answered or given up) */
	MPC_EV_KEEPALIVE,	/* keep-alive interval changed (probe) */
	MPC_EV_KICK		/* the server asked for a REFRESH */
};

struct mpc_status {
	enum mpc_state	 state;
	uint32_t	 reg_id;	/* registration pushes are accepted
					   for (kept while re-registering);
					   0 if none */
	uint32_t	 lifetime;	/* seconds, from the last REGISTERED */
	unsigned	 reason;	/* last refusal (REASON_*), 0 if none */
	uint32_t	 limit;		/* limit sent with that refusal */
	int		 verified;	/* 0: the refusal (AUTH only) had a MAC
					   that does not verify under our
					   token, so the token is probably
					   wrong */
	int		 retry;		/* refused for now (TABLE_FULL,
					   ADDRESS_LIMIT): REGISTER again
					   after retry_ms */
	uint32_t	 retry_ms;	/* backoff: 30 s doubling to 1 h */
	uint64_t	 epoch;		/* server's, from REGISTERED or PUSH */
	uint32_t	 keepalive_ms;	/* current keep-alive interval */
	uint32_t	 keepalive_min_ms, keepalive_max_ms;	/* server's */
	uint32_t	 probe_good_ms;	/* longest idle the mapping survived */
	uint32_t	 probe_bad_ms;	/* shortest it did not, 0: none */
	uint32_t	 server_seq;	/* seq in the last REGISTERED: the
					   last push the server sent */
	uint32_t	 last_seq;	/* the last push seq reported */
	uint32_t	 missed;	/* server_seq - last_seq when a
					   REGISTERED for the same reg_id
					   says pushes were missed: the
					   mailboxes should be checked */
	int64_t		 clock_offset;	/* ms added to the wall clock */
	const char	*why;		/* text for the last event, static */
};

struct mpc_stats {
	uint64_t	 sent;		/* requests sent, first copies */
	uint64_t	 retransmits;	/* requests sent again */
	uint64_t	 received;	/* datagrams read or handed in */
	uint64_t	 dropped;	/* malformed, unauthenticated, foreign,
					   unsolicited */
	uint64_t	 pushes;	/* new pushes delivered to the callback */
	uint64_t	 duplicates;	/* retransmitted pushes (acked again) */
	uint64_t	 acks;		/* PUSH_ACKs sent */
	uint64_t	 keepalives;	/* KEEPALIVEs sent */
	uint64_t	 probes;	/* PROBEs sent */
	uint64_t	 probes_answered;
	uint64_t	 kicks;		/* KICKs received */
	uint64_t	 send_errors;
};

struct mpc_callbacks {
	/* A new push (decrypted, context checked, already acked). */
	void	(*push)(void *arg, const struct mpc_push *);
	/* A state change or event; status as mpc_status would fill it. */
	void	(*state)(void *arg, enum mpc_event, const struct mpc_status *);
	/* Optional: one line on each dropped datagram, for debugging. */
	void	(*debug)(void *arg, const char *msg);
	void	*arg;
};

/*
 * Check the parameters, copy them, and create a non-blocking UDP socket
 * (close-on-exec) connected to server, so it receives only the server's
 * datagrams.  Calls sodium_init.  Returns NULL with errno set: EINVAL for
 * bad parameters (empty or long user name, context over MP_CONTEXT_MAX,
 * empty or long mailbox name, a request that would not fit in
 * PROTO_MAX_DATAGRAM), otherwise the errno of socket(2) or connect(2).
 * cb may be NULL.
 */
struct mpc	*mpc_new(const struct sockaddr *server, socklen_t server_len,
		    const struct mpc_params *, const struct mpc_callbacks *cb);

/* The socket, to poll for reading.  The caller must not close it. */
int		 mpc_fd(const struct mpc *);

/*
 * Start registering: send REGISTER (a zero cookie, or the last cookie the
 * server gave if it is under 60 s old), answer COOKIE by sending it again
 * with the cookie (at once up to 3 times in a row, then at the next
 * retransmission), retransmit until answered.  From any state (a
 * registration in progress starts over).  Returns 0, or -1 if sending
 * failed outright (it is still retried by mpc_tick).
 *
 * What follows, all on its own:
 *  - REGISTERED (timestamp ours, MAC verified): MPC_REGISTERED, event
 *    MPC_EV_REGISTERED; REFRESH at half the lifetime (at least 1 s apart);
 *    KEEPALIVE whenever nothing was sent for the keep-alive interval.
 *  - The interval starts at the server's keepalive_min; PROBEs (no
 *    keep-alive while one is out) find the longest idle time the path
 *    survives, and the interval becomes 3/4 of it, within the server's
 *    bounds (MPC_EV_KEEPALIVE).  A PROBE_ECHO that does not come means
 *    the mapping may be gone: REFRESH at once.
 *  - KICK from the server: REFRESH at once (at most every 2 s).
 *  - REFUSED STALE or REPLAY (verified): clock offset or timestamp
 *    corrected, the request sent again once (MPC_EV_STALE); a second
 *    refuses.
 *  - REFUSED UNKNOWN to a REFRESH, or MPC_REFRESH_TRIES unanswered
 *    REFRESHes or the lifetime over: MPC_EV_LOST, REGISTER anew.
 *  - TABLE_FULL and ADDRESS_LIMIT: MPC_REFUSED with status.retry, and
 *    REGISTER again after 30 s, doubling up to 1 h (plus up to 10%).
 *  - Any other verified REFUSED, or REFUSED AUTH whose MAC does not
 *    verify (token probably wrong): MPC_REFUSED, MPC_EV_REFUSED, nothing
 *    more is sent.
 *  - Unanswered requests: sent again after 1 s, the wait doubling up to
 *    30 s, forever (REFRESH and UNREGISTER: see above and below).
 *  - PUSH: dropped unless it decrypts under the user's push key, its
 *    reg_id is ours and its context ours byte for byte; else PUSH_ACK (also for
 *    retransmissions), and the push callback if it is new: a new restart
 *    epoch, or a higher seq with something new in the same epoch.
 */
int		 mpc_register(struct mpc *, uint64_t now_ms);

/*
 * Send UNREGISTER for the current registration (retransmitted up to
 * MPC_UNREGISTER_TRIES times, then given up).  Returns 0 if sent, -1 with
 * errno EINVAL when nothing is registered (the state becomes
 * MPC_UNREGISTERED and pending requests are abandoned), or -1 on a send
 * error.
 */
int		 mpc_unregister(struct mpc *, uint64_t now_ms);

/*
 * Read every datagram waiting on the socket (at most 256 per call) and
 * handle each as mpc_handle_datagram does.  ICMP errors reported by the
 * socket are ignored: retransmission deals with a server that is down.
 */
void		 mpc_input(struct mpc *, uint64_t now_ms);

/*
 * Handle one datagram from the server, for callers that own the socket
 * (then mpc_fd is only used for sending).  Returns 0 if it was used, -1 if
 * it was dropped: too long, malformed, a request type, a reply to no
 * outstanding request, a MAC that does not verify, a push that does not
 * decrypt or carries another context.
 */
int		 mpc_handle_datagram(struct mpc *, const uint8_t *, size_t,
		    uint64_t now_ms);

/*
 * When mpc_tick must next be called (same clock as now_ms), or UINT64_MAX
 * when nothing is scheduled (unregistered or refused).
 */
uint64_t	 mpc_next_deadline(const struct mpc *);

/* Retransmit, refresh, give up or re-register, as due at now_ms. */
void		 mpc_tick(struct mpc *, uint64_t now_ms);

/* State, registration id, last refusal reason and limit. */
enum mpc_state	 mpc_state(const struct mpc *, struct mpc_status *);
void		 mpc_stats(const struct mpc *, struct mpc_stats *);
const char	*mpc_state_name(enum mpc_state);

/* Close the socket and free everything (sends nothing). */
void		 mpc_free(struct mpc *);

/*
 * The device id kept in path: read it (32 hex digits), or, if the file
 * does not exist, make a random one and create the file with mode 0600
 * (O_EXCL; a file written by another process at the same time wins).
 * *created says which.  Returns 0, or -1 with errno (EINVAL: the file
 * does not hold a device id).
 */
int		 mpc_device_load(const char *path,
		    uint8_t device[MP_DEVICE_ID_LEN], int *created);
/* A random device id, for a client that keeps none. */
void		 mpc_device_new(uint8_t device[MP_DEVICE_ID_LEN]);

#endif
