/*
 * mailpushd.h: the daemon's internals, shared by its files.
 */
#ifndef MAILPUSHD_H
#define MAILPUSHD_H

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <stdint.h>
#include <time.h>

#include <event2/event.h>

#include "config.h"
#include "keyfile.h"
#include "proto.h"

/* A client address, kept small: IPv4 or IPv6 with port. */
union mp_addr {
	struct sockaddr		sa;
	struct sockaddr_in	sin;
	struct sockaddr_in6	sin6;
};

/* Registration states. */
#define REG_ACTIVE	0	/* reachable as far as we know */
#define REG_PUSHING	1	/* a push is out, not yet acknowledged */
#define REG_UNREACHABLE	2	/* the last push ran out of retries */

struct mp_user;

struct reg_mailboxes {
	uint8_t		n;
	char		*names[];	/* NUL-terminated, owned */
};

/* Registration flags. */
#define REG_F_RESTORED	0x01	/* read from the state file: counts may be
				   inexact until the next acknowledgement */
#define REG_F_CATCHUP	0x02	/* a cluster catch-up push is out: events
				   may have been missed, counts inexact
				   until acknowledged (mailpush-cluster(7)) */
#define REG_F_TOUCHED	0x04	/* in the journal's list of this loop
				   turn's changes (journal.c) */

struct reg {
	struct reg	*user_next;	/* the user's list, oldest first */
	struct reg	*id_next;	/* id hash chain */
	struct mp_user	*user;
	struct reg_mailboxes *mailboxes; /* NULL: every mailbox */
	uint64_t	 push_at;	/* ms: next push or retransmit, 0: none */
	uint64_t	 last_push_ms;	/* ms: when the current push was first sent */
	uint64_t	 hwm;		/* highest request timestamp (ms) seen:
					   anything not above it is a replay */
	uint8_t		 device[PROTO_DEVICE_LEN];
	uint32_t	 heap_idx;
	uint32_t	 id;
	uint32_t	 created;	/* seconds since the epoch */
	uint32_t	 expires;
	uint32_t	 last_ack;	/* seconds, 0: never */
	uint32_t	 seq;		/* of the last push sent */
	uint32_t	 total;		/* messages counted */
	uint32_t	 sent_total;	/* total carried by the last push */
	uint32_t	 acked_total;	/* total of the last acknowledged push */
	uint32_t	 failures;	/* send errors and pushes given up */
	uint32_t	 probe_at;	/* seconds: PROBE_ECHO due, 0: none */
	union mp_addr	 addr;
	uint8_t		 state;
	uint8_t		 retries;	/* retransmissions of the current push */
	uint8_t		 listener;	/* index into the listener table */
	uint8_t		 key_id;	/* of the token it registered with */
	uint8_t		 flags;		/* REG_F_* */
	uint16_t	 ctx_len;
	uint8_t		 ctx[];
};

struct mp_user {
	struct mp_user	*hash_next;
	struct reg	*regs;		/* oldest first */
	uint16_t	 n_regs;
	uint8_t		 name_len;
	char		 name[];
};

/* Counters, shown by mailpushctl stats. */
struct mp_stats {
	uint64_t	events_in, events_bad, events_denied, events_no_user;
	uint64_t	events_filtered;
	uint64_t	dgrams_in, dgrams_bad, dgrams_unknown;
	uint64_t	keepalives, keepalives_unknown, kicks, probes, replays;
	uint64_t	owed_sent;
	uint64_t	bytes_in, bytes_out;
	uint64_t	cookies_sent;
	uint64_t	registered, refreshed, replaced, unregistered, expired;
	uint64_t	evicted, dropped;
	uint64_t	refused[REASON_MAX + 1];
	uint64_t	pushes, retransmits, acks, acks_stale, push_given_up;
	uint64_t	send_errors;
	uint64_t	peak_registrations;
};

struct mp_listener {
	struct config_listen	conf;
	int			fd;
	struct event		*ev;
	int			in_use;
};

struct mpd {
	struct mp_config	 cfg;
	struct event_base	*base;
	uint8_t			 key[MP_KEY_LEN];	/* keys.cur */
	struct mp_keys		 keys;
	uint64_t		 epoch;		/* restart epoch, random */
	uint8_t			 cookie_secret[32];
	struct mp_listener	 listeners[CONFIG_LISTEN_MAX];
	size_t			 n_listeners;
	uint64_t		 now_ms;	/* cached wall clock */
	uint32_t		 started;
	struct mp_stats		 stats;
	int			 state_dirty;
	uid_t			*post_uids;	/* allow_users resolved */
	size_t			 n_post_uids;
};

extern struct mpd *mpd;

/* mailpushd.c */
int		mailpushd_main(int, char *[]);
uint64_t	mpd_now(void);		/* refreshes mpd->now_ms */
uint64_t	mpd_clock_us(clockid_t);
void		mpd_rearm(void);
int		mpd_reload(void);
const char	*mpd_reload_error(void);	/* why the last one failed */
int		mpd_load_key(const struct mp_config *, struct mp_keys *,
		    uid_t owner);
/* The key with this id if tokens made from it are accepted now, or NULL. */
const uint8_t	*mpd_key(unsigned id);

/* registry.c: the table */
void		 registry_init(void);
void		 registry_free(void);
struct mp_user	*registry_user(const char *name, int create);
struct reg	*registry_find(uint32_t id);
uint64_t	 registry_user_hash(const char *name);
void		 registry_prefetch_user(uint64_t hash, int stage);
#define REGISTRY_PREFETCH_STAGES 3
struct reg	*registry_add(struct mp_user *, const union mp_addr *, int listener,
		    const uint8_t *ctx, uint16_t ctx_len, uint32_t lifetime_s,
		    uint32_t id);		/* id 0: a new random one */
size_t		 registry_users(void);
void		 registry_remove(struct reg *, const char *why);
struct reg	*registry_device(struct mp_user *,
		    const uint8_t device[PROTO_DEVICE_LEN]);
int		 registry_set_ctx(struct reg **, const uint8_t *, uint16_t);
/* Tombstones: the last timestamp of a device gone, kept for the window. */
void		 registry_tomb_add(const char *user,
		    const uint8_t device[PROTO_DEVICE_LEN], uint64_t hwm);
uint64_t	 registry_tomb_hwm(const char *user,
		    const uint8_t device[PROTO_DEVICE_LEN]);
size_t		 registry_tombs(void);
int		 registry_set_mailboxes(struct reg *, const struct mp_request *);
int		 registry_wants(const struct reg *, const char *mailbox);
size_t		 registry_count(void);
unsigned	 registry_addr_count(const union mp_addr *);
int		 registry_same_addr(const union mp_addr *, const union mp_addr *);
void		 registry_set_prefix6(unsigned bits);
void		 registry_set_addr(struct reg *, const union mp_addr *, int listener);
void		 registry_schedule(struct reg *);	/* deadline changed */
void		 registry_push_scheduled(struct reg *);	/* push_at only */
int		 registry_run_timers(uint64_t now_ms); /* 1: more due */
uint64_t	 registry_next_deadline(void);
void		 registry_foreach(void (*)(struct reg *, void *), void *);
void		 registry_reserve(size_t);
void		 registry_step(void);	/* once per loop iteration */
int		 registry_moving(void);
int		 registry_scan(uint64_t *cursor, size_t max,
		    void (*)(struct reg *, void *), void *);
struct registry_iter {
	uint64_t cursor;		/* zero to start */
};
int		 registry_foreach_step(struct registry_iter *, size_t max,
		    void (*)(struct reg *, void *), void *);
size_t		 registry_memory(void);

/* udp.c: listeners and the request side of the protocol */
int		 udp_open(struct mp_listener *, const struct mp_config *);
void		 udp_start(struct mp_listener *);
void		 udp_close(struct mp_listener *);
int		 udp_send(int listener, const union mp_addr *, const uint8_t *,
		    size_t);
void		 udp_drain_errors(int listener);
int		 udp_send_retry(int listener, int err, int tries);
socklen_t	 addr_len(const union mp_addr *);
const char	*addr_str(const union mp_addr *);
int		 addr_same_host(const union mp_addr *, const union mp_addr *);
int		 addr_equal(const union mp_addr *, const union mp_addr *);
int		 udp_cookie_valid(const union mp_addr *, const uint8_t *cookie);
void		 udp_send_cookie(int listener, const union mp_addr *, uint64_t ts);
void		 udp_drop(const union mp_addr *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

/* request.c: REGISTER ... KEEPALIVE */
void		 request_handle(int listener, const union mp_addr *,
		    const uint8_t *, size_t);
void		 request_keepalive(int listener, const union mp_addr *,
		    const uint8_t *, size_t);

/* push.c: events to pushes, retransmission, coalescing */
void		 push_event(const char *user, const char *mailbox, unsigned count);
void		 push_timer(struct reg *, uint64_t now_ms);
void		 push_ack(struct reg *, const struct mp_request *);
void		 push_flush(void);
void		 push_forget(struct reg *);
/* The token of a user under the key with this id; -1: no such key. */
int		 push_token(const char *, size_t, uint8_t key_id,
		    uint8_t[MP_TOKEN_LEN]);
/* Heard from at its address: send what is owed if budget bytes allow. */
void		 push_owed(struct reg *, size_t budget, int fresh);
int		 push_is_owed(const struct reg *);
void		 push_probe_echo(struct reg *);
void		 push_send_error(const union mp_addr *to);
void		 push_catchup(struct reg *);	/* cluster: may have missed mail */

/* events.c: the event socket */
int		 events_open(const struct mp_config *, uid_t, gid_t);
void		 events_start(void);
void		 events_close(void);
int		 events_resolve_users(const struct mp_config *, uid_t **, size_t *);

/* trust.c: who may act for whom on a local socket */
void		 trust_resolve(const struct mp_config *, uid_t self, uid_t **,
		    size_t *);
void		 trust_set(uid_t *, size_t);
void		 trust_free(void);
int		 trust_is_trusted(uid_t);
int		 trust_may_act(uid_t, const char *user, const char *where);
uint64_t	 trust_refusals(void);

/* provision.c: the provisioning socket */
struct provision_stats {
	uint64_t	answered, denied, bad, timeouts, busy;
};
int		 provision_open(const struct mp_config *, uid_t, gid_t);
void		 provision_start(void);
void		 provision_close(void);
struct provision_stats provision_snapshot(void);

/* unixsock.c: the event, control and provisioning sockets, made alike */
struct usock {
	const char	*path;
	const char	*what;		/* "event socket", in messages */
	const char	*live_msg;	/* refuse a live one saying this;
					   NULL: no check */
	const char	*not_socket;	/* "PATH exists and is not a socket; "
					   and this */
	int		 type;		/* SOCK_DGRAM, _STREAM, _SEQPACKET */
	mode_t		 mode;
	uid_t		 uid;		/* the socket's owner */
	gid_t		 gid;
	int		 unlink_must;	/* a stale socket that cannot be
					   removed is an error */
	int		 chown;		/* 1: lchown to uid:gid as root; 2:
					   also chgrp to gid as another user */
	int		 backlog;	/* listen(2); 0: datagrams */
};
int		 usock_open(const struct usock *);	/* fd, or -1 logged */

/* dirs.c: socket and state directories */
int		 dirs_check(const char *path, const char *what, uid_t, gid_t);
int		 dirs_enter(const char *path, uid_t, gid_t);
void		 dirs_leave(void);

/* control.c */
int		 control_open(const struct mp_config *, uid_t, gid_t);
void		 control_start(void);
void		 control_close(void);
struct evbuffer;
void		 control_handle(char *line, struct evbuffer *out);

/* cluster.c, cluster_msg.c: [cluster], mailpush-cluster(7) */
struct evbuffer;
int		 cluster_configure(const struct mp_config *, uid_t owner);
void		 cluster_reload(const struct mp_config *, struct mp_config *);
void		 cluster_start(void);
void		 cluster_stop(void);
int		 cluster_relaying(void);
void		 cluster_event(const char *user, const char *mailbox,
		    unsigned count, uint32_t uid);
void		 cluster_status(struct evbuffer *, int json);
void		 cluster_stats(struct evbuffer *, int json);
#define CLUSTER_METRICS_MAX	32
struct metric;
size_t		 cluster_metrics(struct metric *, size_t max);

/* limits.c: refusals and their rate-limited log */
void		 limits_log_refusal(const char *user, unsigned reason,
		    unsigned limit, unsigned got, const union mp_addr *);
void		 limits_log_eviction(const char *user, unsigned limit,
		    const union mp_addr *evicted);

/* health.c: what mailpushctl status checks */
void		 health_watch(const char *what, const char *breaks,
		    const char *path, unsigned mode);
void		 health_saved(int err);		/* 0, or the save's errno */
const char	*health_socket_state(const char *path);
struct evbuffer;
size_t		 health_report(struct evbuffer *, int json);

/* metrics.c: stats as text and in the Prometheus format */
struct metric {
	const char	*name;
	uint64_t	 v;
};
struct metrics_info {
	const char	*version;
	uint64_t	 started, users, table_bytes, problems;
};
void		 metrics_text(struct evbuffer *, const struct metric *, size_t);
void		 metrics_prometheus(struct evbuffer *, const struct metric *,
		    size_t, const struct metrics_info *);

#endif
