/*
 * journal_int.h: what the parts of the journal share: the loop side's
 * state (journal.c), the writer threads (journal_worker.c) and the
 * snapshot (journal_snap.c).  Not for the rest of the daemon (journal.h).
 */
#ifndef MP_JOURNAL_INT_H
#define MP_JOURNAL_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include <event2/event.h>

#include "journal.h"

#define HOLD_MAX	65536		/* datagrams waiting for a sync */
#define BEV_MAX		64
#define SNAP_SLICE_US	300		/* loop time per snapshot slice */
#define SNAP_NICE	10		/* the snapshot writer's nice */
#define SNAP_CHUNK	(256 * 1024)
#define SNAP_QUEUE_MAX	(4 * 1024 * 1024)	/* bytes queued to write */
/*
 * A slice's buffer, with room for the scan call that crosses SNAP_CHUNK.
 * The snapshot writer makes SNAP_POOL slices (buffers allocated and
 * touched) when a snapshot opens, takes each back once written and frees
 * them when it ends: the loop fills slices and never allocates one, so
 * no slice waits for fresh memory (journal_worker.c).  The 64 KiB over
 * SNAP_CHUNK hold the last scan call of a slice (32 registrations) unless
 * they average over 2 KiB each (long mailbox lists): then the buffer
 * grows, as any jbuf does.
 */
#define SNAP_BUF	(SNAP_CHUNK + 64 * 1024)
#define SNAP_POOL	(SNAP_QUEUE_MAX / SNAP_CHUNK + 2)
#define JOURNAL_RETRY_S	1

enum { JOB_DATA, JOB_ROTATE, JOB_SNAP_OPEN, JOB_SNAP_DATA, JOB_SNAP_DONE,
    JOB_SNAP_ABORT, JOB_QUIT };

struct job {
	struct job	*next;
	int		 kind, sync;
	uint64_t	 batch, gen;
	struct jbuf	 buf;
};

struct worker {
	pthread_t	 th;
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	struct job	*head, **tail;
	size_t		 queued;	/* bytes */
	int		 started;
	/* results, under mu */
	uint64_t	 done_batch;	/* journal: synced */
	uint64_t	 errors;
	int		 failed;	/* journal: not writing */
	int		 snap_result;	/* 1 done, -1 failed, 0 none */
	uint64_t	 snap_result_gen;	/* of the snapshot it is for */
	uint64_t	 bytes;
	int		 err_no;	/* of the last error */
	char		 error[256];
	struct job	*pool[SNAP_POOL];	/* snapshot: empty slices */
	unsigned	 npool;
	/* thread-private */
	int		 fd;
	uint64_t	 gen;
};

struct held {
	uint64_t	batch;
	int		listener;
	uint16_t	len;
	union mp_addr	to;
	uint8_t		*data;
};

/* A registration changed in this loop turn (REG_F_TOUCHED set on it);
 * NULL once it is removed (journal_moved). */
struct touched {
	struct reg	*r;
	uint8_t		 type;
};

struct journal_state {
	int		 open;
	char		 path[PATH_MAX];
	uint64_t	 epoch, gen;
	struct jbuf	 cur;
	int		 cur_durable;
	uint64_t	 next_batch, last_durable, synced;
	struct touched	*touched;
	size_t		 n_touched, cap_touched;
	struct held	*held;		/* ring */
	size_t		 held_head, n_held;
	struct {
		struct bufferevent *bev;
		uint64_t	batch;
	} bevs[BEV_MAX];
	int		 evfd;
	struct event	*ev_done, *ev_flush, *ev_snap, *ev_retry;
	struct worker	 wj, ws;
	/* the snapshot being written */
	int		 snap_running;
	uint64_t	 snap_cursor, snap_count, snap_gen;
	uint64_t	 snap_started_ms, last_snap_ms;
	int		 saving;	/* 0: state is not being saved */
	int		 snap_good;	/* a snapshot finished while the journal
					 * still failed: healthy once it is not */
	uint64_t	 seen_errors;
	struct journal_status st;
};

extern struct journal_state journal_g;

/* journal.c */
uint64_t journal_mono_us(void);
uint64_t journal_step_begin(void);
void	journal_loop_took(uint64_t, const char *); /* a step began at t */
void	journal_put_reg(struct jbuf *, const struct reg *);
void	journal_hand_over(void);
void	journal_release(void);

/* journal_worker.c */
void	journal_worker_push(struct worker *, struct job *);
struct job *journal_job_new(int kind);
void	journal_worker_start(struct worker *, int fd, uint64_t gen);
void	journal_worker_stop(struct worker *);
struct job *journal_slice_take(void);
int	journal_write_all(int fd, const uint8_t *, size_t);
int	journal_create(uint64_t gen, uint64_t epoch, char *name, size_t len);

/* journal_snap.c */
void	journal_snap_abort(void);
void	journal_snap_start(void);
void	journal_snap_step(evutil_socket_t, short, void *);
void	journal_snap_finished(int ok);
int	journal_final_snapshot(void);

#endif
