/*
 * journal.h: mailpushd's persistence (record.c, journal.c, state.c).
 */
#ifndef MP_JOURNAL_H
#define MP_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mailpushd.h"

/* Record types and framing (record.c) */
#define REC_HDR		1
#define REC_REG		2
#define REC_DEL		3
#define REC_SEQ		4
#define REC_EXP		5
#define REC_END		6
#define REC_FRAME	5		/* u32 length, u8 type */
#define REC_SUM		16		/* SipHash-128 (record.c) */
#define REC_BODY_MAX	8192
#define REC_MAGIC	"mailpush"
#define REC_VERSION	3		/* 1: text; 2: BLAKE2b sums */
#define REC_KIND_SNAPSHOT 1
#define REC_KIND_JOURNAL  2

/*
 * A buffer of records.  With `deferred' set, the records' sums are left
 * for jbuf_seal, which the journal's writer threads call before they
 * write: a push's SEQ record then costs the daemon's loop no SipHash.
 */
struct jbuf {
	uint8_t	*p;
	size_t	 len, cap;
	int	 deferred;
};

struct rec_hdr {
	uint16_t version;
	uint8_t	 kind;
	uint8_t	 clean;		/* snapshot of a clean shutdown */
	uint64_t gen;		/* journal: its generation; snapshot: the
				 * first journal generation not in it */
	uint64_t epoch;		/* restart epoch of the daemon that wrote it */
	uint64_t time;		/* seconds since the epoch, when written */
};

struct rec_view {
	uint8_t		 type;
	const uint8_t	*body;
	size_t		 len;		/* of the body */
	size_t		 size;		/* of the whole record */
};

struct rec_fields {
	uint8_t		type, state, n_mailboxes, key_id;
	uint16_t	ctx_len;
	uint32_t	id, created, expires, last_ack, seq, total, sent, acked;
	uint32_t	failures;
	uint64_t	last_push_ms, count, hwm;
	uint8_t		device[PROTO_DEVICE_LEN];
	union mp_addr	addr;
	char		user[MP_USER_MAX + 1];
	char		listener[65];
	uint8_t		ctx[MP_CONTEXT_MAX];
	char		mailboxes[MP_MAILBOXES_MAX][MP_MAILBOX_MAX + 1];
};

void	jbuf_reserve(struct jbuf *, size_t);
void	jbuf_free(struct jbuf *);
void	jbuf_seal(struct jbuf *);
void	record_hdr(struct jbuf *, const struct rec_hdr *);
void	record_fields(struct jbuf *, const struct rec_fields *);
void	record_del(struct jbuf *, uint32_t id);
void	record_seq(struct jbuf *, const struct reg *);
void	record_exp(struct jbuf *, const struct reg *);
void	record_end(struct jbuf *, uint64_t count);
int	record_next(const uint8_t *, size_t, struct rec_view *, const char **);
int	record_parse_hdr(const struct rec_view *, struct rec_hdr *);
int	record_parse(const struct rec_view *, struct rec_fields *);

/* What state_load found (state.c), for journal_open */
struct state_info {
	uint64_t	next_gen;	/* first journal generation to write */
	uint64_t	epoch;		/* kept only after a clean shutdown */
	int		clean;		/* exact state: keep epoch and seqs */
	int		need_snapshot;	/* journals replayed, a file set aside */
};

/* state.c: the snapshot */
int	state_load(const char *path, struct state_info *);
int	state_file_name(char *, size_t, const char *path, const char *suffix);
int	state_journal_name(char *, size_t, const char *path, uint64_t gen);
void	state_move_aside(const char *path, const char *what, const char *why);
int	state_fsync_dir(const char *path);

/* journal.c */
struct journal_status {
	int		saving;		/* 0: state is not being saved */
	int		snapshot_running;
	uint64_t	gen, epoch;
	uint64_t	write_errors, snapshot_errors, snapshots;
	uint64_t	commits, records, bytes, held, held_dropped;
	uint64_t	loop_max_us;	/* longest persistence step on the loop */
	uint64_t	loop_steps, loop_slow_steps;	/* all, over 1 ms */
	uint64_t	journal_bytes;	/* in the current generation */
	char		last_error[256];
};

void	journal_open(const char *path, const struct state_info *);
void	journal_close(void);		/* clean shutdown: final snapshot */
void	journal_commit(void);		/* end of a loop iteration */
/* The records of this iteration's changes so far; journal_commit makes
 * them anyway, push_event after each event, while the registrations it
 * changed are still in the cache. */
void	journal_serialize_touched(void);
uint64_t journal_epoch(void);
void	journal_status(struct journal_status *);
const struct journal_status *journal_stats(void);
struct evbuffer;
void	journal_status_put(struct evbuffer *, int json);	/* status */

/*
 * The hooks the table and the protocol call.  A durable change (a
 * registration, a move, a removal) is on disk before any datagram or
 * control reply sent after it leaves: journal_hold() keeps such a
 * datagram, journal_hold_bev() such a reply, until the commit covering
 * the change is synced.  SEQ and EXP changes are written with the next
 * commit or within a second, without a sync of their own.
 */
void	journal_log_reg(struct reg *);
void	journal_log_seq(struct reg *);
void	journal_log_exp(struct reg *);
void	journal_log_del(uint32_t id);
void	journal_moved(struct reg *, struct reg *);
int	journal_hold(int listener, const union mp_addr *, const uint8_t *,
	    size_t);
int	journal_holding(void);	/* would journal_hold keep a datagram? */
struct bufferevent;
void	journal_hold_bev(struct bufferevent *);
void	journal_forget_bev(struct bufferevent *);

#endif
