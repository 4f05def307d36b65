/*
 * journal.c: crash-safe registrations.  An append-only journal with group
 * commit, and a snapshot written beside a running loop.
 *
 * The loop never touches the disk.  Changes are recorded (record.c) into
 * a buffer during a loop iteration; at its end (journal_commit, called by
 * mailpushd.c after every iteration) the buffer goes to the journal
 * thread, which writes it and calls fdatasync(2) once for everything it
 * has been handed since its last sync: one sync covers every request of
 * an iteration, and of every iteration that arrived while the previous
 * sync was running (group commit).  A datagram or control reply sent
 * after a durable change waits in a queue here until the sync covering
 * that change is done (journal_hold), so nothing is answered before it is
 * on disk; pushes queued meanwhile wait with it (push.c), so that none
 * overtakes the answer it follows (an owed push after a takeover).  Sequence numbers, totals and expiry extensions are recorded
 * too, and written at the end of their iteration, but never synced or
 * waited for: they survive kill -9 (the page cache has them), and what a
 * power loss takes of them the restart epoch makes up for (state.c).
 *
 * A snapshot is written without stopping the loop: the journal moves to
 * a new generation, then the loop serialises the table a slice of at most
 * SNAP_SLICE_US at a time (registry_scan, which sees every registration
 * once even while the table grows) and hands the slices to a second
 * thread that writes them to FILE.tmp, fsyncs it, renames it over FILE and
 * removes the journals of older generations.  The snapshot is fuzzy; the
 * journal of the new generation holds every change made while it was
 * written, and replaying it over the snapshot gives the exact table
 * (every record is an idempotent upsert or delete).
 *
 * Disk errors (ENOSPC, EIO...): the thread counts the error, stops writing
 * to that journal (after a failed fsync its contents are unknown), and
 * lets held replies go: the daemon keeps serving from memory and says so
 * (mailpushctl status: "state is not being saved").  Every
 * JOURNAL_RETRY_S it tries a new generation and a full snapshot (given up
 * at the first failed write); when the snapshot is in place, state is
 * saved again.
 *
 * Two threads, never touching the table or libevent: they take jobs from
 * their queue and report through an eventfd the loop watches.
 */
#include <sys/types.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sodium.h>

#include "journal.h"
#include "log.h"

#define HOLD_MAX	65536		/* datagrams waiting for a sync */
#define BEV_MAX		64
#define SNAP_SLICE_US	300		/* loop time per snapshot slice */
#define SNAP_CHUNK	(256 * 1024)
#define SNAP_QUEUE_MAX	(4 * 1024 * 1024)	/* bytes queued to write */
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
	uint64_t	 bytes;
	int		 err_no;	/* of the last error */
	char		 error[256];
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

struct touched {
	uint32_t	id;
	uint8_t		type;
};

static struct {
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
	uint64_t	 seen_errors;
	struct journal_status st;
} J = { .evfd = -1 };

/* Threads */

static void
worker_push(struct worker *w, struct job *j)
{
	pthread_mutex_lock(&w->mu);
	j->next = NULL;
	*w->tail = j;
	w->tail = &j->next;
	w->queued += j->buf.len;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static struct job *
job_new(int kind)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		fatal("journal job");
	j->kind = kind;
	return j;
}

static void
notify_loop(void)
{
	uint64_t one = 1;

	while (write(J.evfd, &one, sizeof(one)) == -1 && errno == EINTR)
		;
}

static void
worker_error(struct worker *w, const char *op, const char *file, int err)
{
	pthread_mutex_lock(&w->mu);
	w->errors++;
	w->err_no = err;
	snprintf(w->error, sizeof(w->error), "%s %s: %s", op, file,
	    strerror(err));
	pthread_mutex_unlock(&w->mu);
}

static int
write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Create journal generation gen with its header; fd, or -1 (errno). */
static int
journal_create(uint64_t gen, uint64_t epoch, char *name, size_t len)
{
	struct jbuf b = { NULL, 0, 0 };
	struct rec_hdr h = { REC_VERSION, REC_KIND_JOURNAL, 0, gen, epoch,
	    (uint64_t)time(NULL) };
	int fd, err;

	state_journal_name(name, len, J.path, gen);
	if ((fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND |
	    O_CLOEXEC | O_NOFOLLOW, 0600)) == -1)
		return -1;
	record_hdr(&b, &h);
	if (write_all(fd, b.p, b.len) != 0 || fdatasync(fd) != 0 ||
	    state_fsync_dir(J.path) != 0) {
		err = errno;
		close(fd);
		unlink(name);	/* no headless journal for the next start */
		jbuf_free(&b);
		errno = err;
		return -1;
	}
	jbuf_free(&b);
	return fd;
}

static void
journal_job(struct worker *w, struct job *j, int *need_sync)
{
	char name[PATH_MAX];

	switch (j->kind) {
	case JOB_DATA:
		if (w->fd == -1 || w->failed)
			break;
		if (write_all(w->fd, j->buf.p, j->buf.len) != 0) {
			state_journal_name(name, sizeof(name), J.path, w->gen);
			worker_error(w, "write", name, errno);
			w->failed = 1;
			break;
		}
		w->bytes += j->buf.len;
		*need_sync |= j->sync;
		break;
	case JOB_ROTATE:
		if (w->fd != -1)
			close(w->fd);
		w->gen = j->gen;
		w->bytes = 0;
		if ((w->fd = journal_create(j->gen, J.epoch, name,
		    sizeof(name))) == -1) {
			worker_error(w, "create", name, errno);
			w->failed = 1;
		} else
			w->failed = 0;
		break;
	}
}

static void
snap_job(struct worker *w, struct job *j)
{
	char tmp[PATH_MAX];

	state_file_name(tmp, sizeof(tmp), J.path, ".tmp");
	switch (j->kind) {
	case JOB_SNAP_OPEN:
		if (w->fd != -1)
			close(w->fd);
		w->failed = 0;
		if ((w->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC |
		    O_CLOEXEC | O_NOFOLLOW, 0600)) == -1) {
			worker_error(w, "create", tmp, errno);
			w->failed = 1;
		}
		/* FALLTHROUGH */
	case JOB_SNAP_DATA:
		if (!w->failed && write_all(w->fd, j->buf.p, j->buf.len) != 0) {
			worker_error(w, "write", tmp, errno);
			w->failed = 1;
		}
		break;
	case JOB_SNAP_DONE:
		/* the last slice and the END record */
		if (!w->failed && write_all(w->fd, j->buf.p, j->buf.len) != 0) {
			worker_error(w, "write", tmp, errno);
			w->failed = 1;
		}
		if (!w->failed && fsync(w->fd) != 0) {
			worker_error(w, "fsync", tmp, errno);
			w->failed = 1;
		}
		if (!w->failed && rename(tmp, J.path) != 0) {
			worker_error(w, "rename to the state file", tmp, errno);
			w->failed = 1;
		}
		if (!w->failed && state_fsync_dir(J.path) != 0) {
			worker_error(w, "fsync the directory of", J.path,
			    errno);
			w->failed = 1;
		}
		/* FALLTHROUGH */
	case JOB_SNAP_ABORT:
		if (w->fd != -1)
			close(w->fd);
		w->fd = -1;
		if (w->failed || j->kind == JOB_SNAP_ABORT)
			unlink(tmp);
		else {
			uint64_t g;

			/* journals the snapshot holds are not needed */
			for (g = j->gen; g-- > 0;) {
				state_journal_name(tmp, sizeof(tmp), J.path, g);
				if (unlink(tmp) == -1 && errno == ENOENT &&
				    g + 64 < j->gen)
					break;
			}
		}
		pthread_mutex_lock(&w->mu);
		w->snap_result = w->failed || j->kind == JOB_SNAP_ABORT ?
		    -1 : 1;
		pthread_mutex_unlock(&w->mu);
		break;
	}
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct job *list, *j, *next;
	int quit = 0, need_sync, notify;
	uint64_t batch, seen = 0;

	while (!quit) {
		pthread_mutex_lock(&w->mu);
		while (w->head == NULL)
			pthread_cond_wait(&w->cv, &w->mu);
		list = w->head;
		w->head = NULL;
		w->tail = &w->head;
		pthread_mutex_unlock(&w->mu);
		need_sync = 0;
		batch = 0;
		for (j = list; j != NULL; j = next) {
			next = j->next;
			if (j->kind == JOB_QUIT)
				quit = 1;
			else if (w == &J.wj)
				journal_job(w, j, &need_sync);
			else
				snap_job(w, j);
			if (j->kind == JOB_DATA)
				batch = j->batch;
			/* one sync for a run of data jobs (group commit) */
			if (w == &J.wj && (next == NULL ||
			    next->kind != JOB_DATA) && batch != 0) {
				if (need_sync && !w->failed &&
				    fdatasync(w->fd) != 0) {
					char name[PATH_MAX];

					state_journal_name(name, sizeof(name),
					    J.path, w->gen);
					worker_error(w, "fdatasync", name,
					    errno);
					w->failed = 1;
				}
				need_sync = 0;
				pthread_mutex_lock(&w->mu);
				/* a failed sync releases the replies too:
				 * the daemon serves from memory */
				w->done_batch = batch;
				pthread_mutex_unlock(&w->mu);
				batch = 0;
			}
			pthread_mutex_lock(&w->mu);
			w->queued -= j->buf.len;
			/* wake the loop for what it waits for: a sync, an
			 * error, a finished snapshot */
			notify = j->sync || j->kind == JOB_SNAP_DONE ||
			    j->kind == JOB_SNAP_ABORT || j->kind == JOB_ROTATE ||
			    w->errors != seen;
			seen = w->errors;
			pthread_mutex_unlock(&w->mu);
			jbuf_free(&j->buf);
			free(j);
			if (notify)
				notify_loop();
		}
	}
	return NULL;
}

static void
worker_start(struct worker *w, int fd, uint64_t gen)
{
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->head = NULL;
	w->tail = &w->head;
	w->fd = fd;
	w->gen = gen;
	w->failed = fd == -1 && w == &J.wj;
	if (pthread_create(&w->th, NULL, worker_main, w) != 0)
		fatalx("cannot start the journal thread");
	w->started = 1;
}

static void
worker_stop(struct worker *w)
{
	if (!w->started)
		return;
	worker_push(w, job_new(JOB_QUIT));
	pthread_join(w->th, NULL);
	if (w->fd != -1)
		close(w->fd);
	w->fd = -1;
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	w->started = 0;
}

/* Holding replies */

static int
durable_pending(void)
{
	return J.open && (J.cur_durable || J.last_durable > J.synced);
}

static uint64_t
needed_batch(void)
{
	return J.cur_durable ? J.next_batch : J.last_durable;
}

int
journal_holding(void)
{
	return durable_pending();
}

int
journal_hold(int listener, const union mp_addr *to, const uint8_t *buf,
    size_t len)
{
	struct held *h;

	if (!durable_pending())
		return 0;
	if (J.n_held == HOLD_MAX) {
		/* the client will ask again */
		J.st.held_dropped++;
		return 1;
	}
	h = &J.held[(J.held_head + J.n_held) % HOLD_MAX];
	if ((h->data = malloc(len)) == NULL)
		fatal("journal: held reply");
	memcpy(h->data, buf, len);
	h->len = (uint16_t)len;
	h->listener = listener;
	memcpy(&h->to, to, sizeof(*to));
	h->batch = needed_batch();
	J.n_held++;
	J.st.held++;
	return 1;
}

void
journal_hold_bev(struct bufferevent *bev)
{
	size_t i;

	if (!durable_pending())
		return;
	for (i = 0; i < BEV_MAX; i++)
		if (J.bevs[i].bev == NULL) {
			J.bevs[i].bev = bev;
			J.bevs[i].batch = needed_batch();
			bufferevent_disable(bev, EV_WRITE);
			return;
		}
	/* more waiting control replies than control connections */
	abort();
}

void
journal_forget_bev(struct bufferevent *bev)
{
	size_t i;

	for (i = 0; i < BEV_MAX; i++)
		if (J.bevs[i].bev == bev)
			J.bevs[i].bev = NULL;
}

static void
release(void)
{
	size_t i;

	while (J.n_held > 0 && J.held[J.held_head].batch <= J.synced) {
		struct held *h = &J.held[J.held_head];
		struct mp_listener *l = &mpd->listeners[h->listener];

		if (l->in_use && sendto(l->fd, h->data, h->len, 0, &h->to.sa,
		    addr_len(&h->to)) == (ssize_t)h->len)
			mpd->stats.bytes_out += h->len;
		else
			mpd->stats.send_errors++;
		free(h->data);
		J.held_head = (J.held_head + 1) % HOLD_MAX;
		J.n_held--;
	}
	for (i = 0; i < BEV_MAX; i++)
		if (J.bevs[i].bev != NULL && J.bevs[i].batch <= J.synced) {
			bufferevent_enable(J.bevs[i].bev, EV_WRITE);
			J.bevs[i].bev = NULL;
		}
}

/* Recording changes */

/* A registration's REG record (through its fields: one encoder). */
static void
put_reg(struct jbuf *b, const struct reg *r)
{
	static struct rec_fields g;	/* 5 kB: keep it off the stack */
	const struct mp_listener *l = &mpd->listeners[r->listener];
	size_t i;

	g.id = r->id;
	memcpy(g.user, r->user->name, (size_t)r->user->name_len + 1);
	memcpy(g.device, r->device, PROTO_DEVICE_LEN);
	g.key_id = r->key_id;
	g.hwm = r->hwm;
	memcpy(&g.addr, &r->addr, sizeof(g.addr));
	snprintf(g.listener, sizeof(g.listener), "%s",
	    (size_t)r->listener < mpd->n_listeners && l->in_use ?
	    l->conf.text : "");
	g.created = r->created;
	g.expires = r->expires;
	g.last_ack = r->last_ack;
	g.seq = r->seq;
	g.total = r->total;
	g.sent = r->sent_total;
	g.acked = r->acked_total;
	g.failures = r->failures;
	g.last_push_ms = r->last_push_ms;
	g.state = r->state;
	g.ctx_len = r->ctx_len;
	memcpy(g.ctx, r->ctx, r->ctx_len);
	g.n_mailboxes = r->mailboxes ? r->mailboxes->n : 0;
	for (i = 0; i < g.n_mailboxes; i++)
		snprintf(g.mailboxes[i], sizeof(g.mailboxes[i]), "%s",
		    r->mailboxes->names[i]);
	record_fields(b, &g);
}


static void
touch(uint32_t id, uint8_t type)
{
	if (!J.open)
		return;
	if (J.n_touched > 0 && J.touched[J.n_touched - 1].id == id &&
	    J.touched[J.n_touched - 1].type == type)
		return;
	if (J.n_touched == J.cap_touched) {
		size_t cap = J.cap_touched ? J.cap_touched * 2 : 1024;
		struct touched *t = reallocarray(J.touched, cap, sizeof(*t));

		if (t == NULL)
			fatal("journal");
		J.touched = t;
		J.cap_touched = cap;
	}
	J.touched[J.n_touched].id = id;
	J.touched[J.n_touched++].type = type;
	if (type == REC_REG)
		J.cur_durable = 1;
}

void
journal_log_reg(const struct reg *r)
{
	touch(r->id, REC_REG);
}

void
journal_log_seq(const struct reg *r)
{
	touch(r->id, REC_SEQ);
}

void
journal_log_exp(const struct reg *r)
{
	touch(r->id, REC_EXP);
}

void
journal_log_del(uint32_t id)
{
	if (!J.open)
		return;
	record_del(&J.cur, id);
	J.cur_durable = 1;
	J.st.records++;
}

/* The records of the registrations touched in this iteration. */
static void
serialize_touched(void)
{
	size_t i;
	struct reg *r;

	for (i = 0; i < J.n_touched; i++) {
		if ((r = registry_find(J.touched[i].id)) == NULL)
			continue;	/* gone since: its DEL is recorded */
		switch (J.touched[i].type) {
		case REC_REG:
			put_reg(&J.cur, r);
			break;
		case REC_SEQ:
			record_seq(&J.cur, r);
			break;
		case REC_EXP:
			record_exp(&J.cur, r);
			break;
		}
		J.st.records++;
	}
	J.n_touched = 0;
}

static void
hand_over(void)
{
	struct job *j = job_new(JOB_DATA);

	j->buf = J.cur;
	memset(&J.cur, 0, sizeof(J.cur));
	j->batch = J.next_batch++;
	j->sync = J.cur_durable && mpd->cfg.state_sync;
	if (J.cur_durable)
		J.last_durable = j->batch;
	if (!mpd->cfg.state_sync)
		J.synced = j->batch;	/* nothing to wait for */
	J.cur_durable = 0;
	J.st.commits++;
	J.st.bytes += j->buf.len;
	worker_push(&J.wj, j);
}

void
journal_commit(void)
{
	if (!J.open)
		return;
	serialize_touched();
	if (J.cur.len == 0)
		return;
	hand_over();
	if (!mpd->cfg.state_sync)
		release();
}

/* The snapshot */

static void
snap_put(struct reg *r, void *arg)
{
	put_reg(arg, r);
	J.snap_count++;
}

static void
snap_abort(void)
{
	J.snap_running = 0;
	worker_push(&J.ws, job_new(JOB_SNAP_ABORT));
}

static void
snap_start(void)
{
	struct job *j;
	struct rec_hdr h = { REC_VERSION, REC_KIND_SNAPSHOT, 0, 0, J.epoch,
	    (uint64_t)time(NULL) };
	struct timeval now = { 0, 0 };

	if (J.snap_running)
		return;
	/* everything from here on goes to the next generation */
	serialize_touched();
	if (J.cur.len > 0)
		hand_over();
	j = job_new(JOB_ROTATE);
	j->gen = ++J.gen;
	worker_push(&J.wj, j);
	J.snap_running = 1;
	J.snap_cursor = 0;
	J.snap_count = 0;
	J.snap_gen = J.gen;
	J.snap_started_ms = mpd_now();
	j = job_new(JOB_SNAP_OPEN);
	h.gen = J.gen;
	record_hdr(&j->buf, &h);
	worker_push(&J.ws, j);
	log_debug("state: snapshot started, journal generation %" PRIu64,
	    J.gen);
	evtimer_add(J.ev_snap, &now);
}

static uint64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void
snap_step(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { 0, 0 };
	uint64_t t0 = mono_us();
	struct job *j;
	size_t queued;
	int more = 1, failed;

	(void)fd;
	(void)what;
	(void)arg;
	if (!J.snap_running)
		return;
	pthread_mutex_lock(&J.ws.mu);
	queued = J.ws.queued;
	failed = J.ws.failed;
	pthread_mutex_unlock(&J.ws.mu);
	if (failed) {
		/* a failed write: no use serialising the rest */
		snap_abort();
		return;
	}
	if (queued > SNAP_QUEUE_MAX) {
		tv.tv_usec = 2000;	/* let the writer catch up */
		evtimer_add(J.ev_snap, &tv);
		return;
	}
	j = job_new(JOB_SNAP_DATA);
	while (more && j->buf.len < SNAP_CHUNK &&
	    mono_us() - t0 < SNAP_SLICE_US)
		more = registry_scan(&J.snap_cursor, 256, snap_put, &j->buf);
	if (!more) {
		record_end(&j->buf, J.snap_count);
		j->kind = JOB_SNAP_DONE;
		j->gen = J.snap_gen;
	}
	worker_push(&J.ws, j);
	if (more)
		evtimer_add(J.ev_snap, &tv);
}

/* Results from the threads */

static void
snap_finished(int ok)
{
	J.snap_running = 0;
	J.last_snap_ms = mpd_now();
	if (!ok) {
		J.st.snapshot_errors++;
		return;
	}
	J.st.snapshots++;
	log_info("state: snapshot of %" PRIu64 " registrations written to "
	    "%s in %" PRIu64 " ms", J.snap_count, J.path,
	    J.last_snap_ms - J.snap_started_ms);
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t v, errors;
	int snap, jfailed, err_no;
	char error[256];

	(void)what;
	(void)arg;
	if (read(fd, &v, sizeof(v)) == -1 && errno != EAGAIN)
		log_warn("journal: eventfd");
	mpd_now();
	pthread_mutex_lock(&J.wj.mu);
	J.synced = J.wj.done_batch;
	errors = J.wj.errors;
	jfailed = J.wj.failed;
	J.st.journal_bytes = J.wj.bytes;
	snprintf(error, sizeof(error), "%s", J.wj.error);
	err_no = J.wj.err_no;
	pthread_mutex_unlock(&J.wj.mu);
	pthread_mutex_lock(&J.ws.mu);
	snap = J.ws.snap_result;
	J.ws.snap_result = 0;
	errors += J.ws.errors;
	if (J.ws.errors > 0 && snap == -1) {
		snprintf(error, sizeof(error), "%s", J.ws.error);
		err_no = J.ws.err_no;
	}
	pthread_mutex_unlock(&J.ws.mu);
	if (errors > J.seen_errors) {
		J.st.write_errors += errors - J.seen_errors;
		J.seen_errors = errors;
		snprintf(J.st.last_error, sizeof(J.st.last_error), "%s",
		    error);
		if (J.saving)
			log_error("state is not being saved: %s; serving from "
			    "memory, retrying every second", error);
		else
			log_warnx("state is still not being saved: %s", error);
		J.saving = 0;
		health_saved(err_no != 0 ? err_no : EIO);	/* status */
	}
	if (snap != 0) {
		snap_finished(snap == 1);
		if (snap == 1 && !jfailed)
			health_saved(0);
		if (snap == 1 && !J.saving && !jfailed) {
			J.saving = 1;
			log_info("state is being saved again (journal "
			    "generation %" PRIu64 ")", J.gen);
		}
	}
	release();
}

/* Every second: start a snapshot when one is due, or to recover from a
 * disk error. */
static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t now = mpd_now(), jbytes;

	(void)fd;
	(void)what;
	(void)arg;
	pthread_mutex_lock(&J.wj.mu);
	jbytes = J.wj.bytes;
	pthread_mutex_unlock(&J.wj.mu);
	if (J.snap_running)
		return;
	if (!J.saving) {
		if (now >= J.last_snap_ms + JOURNAL_RETRY_S * 1000)
			snap_start();
		return;
	}
	if (jbytes >= mpd->cfg.journal_size_limit ||
	    (jbytes > 0 && now >= J.last_snap_ms +
	    mpd->cfg.state_save_interval))
		snap_start();
}

/* Start and stop */

void
journal_open(const char *path, const struct state_info *si)
{
	struct timeval sec = { 1, 0 };
	char name[PATH_MAX];
	int fd;

	snprintf(J.path, sizeof(J.path), "%s", path);
	J.held = calloc(HOLD_MAX, sizeof(*J.held));
	if (J.held == NULL)
		fatal("journal");
	J.epoch = si->clean ? si->epoch : 0;
	while (J.epoch == 0)
		randombytes_buf(&J.epoch, sizeof(J.epoch));
	J.gen = si->next_gen;
	J.next_batch = 1;
	/* on disk before anything is served: the next start sees that this
	 * one did not end cleanly */
	if ((fd = journal_create(J.gen, J.epoch, name, sizeof(name))) == -1) {
		health_saved(errno);
		J.st.write_errors++;
		J.seen_errors = 0;
		snprintf(J.st.last_error, sizeof(J.st.last_error),
		    "create %s: %s", name, strerror(errno));
		log_error("state is not being saved: %s; serving from "
		    "memory, retrying every second", J.st.last_error);
	} else
		J.saving = 1;
	if ((J.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		fatal("eventfd");
	J.ev_done = event_new(mpd->base, J.evfd, EV_READ | EV_PERSIST,
	    done_cb, NULL);
	J.ev_flush = event_new(mpd->base, -1, EV_PERSIST, flush_cb, NULL);
	J.ev_snap = evtimer_new(mpd->base, snap_step, NULL);
	if (J.ev_done == NULL || J.ev_flush == NULL || J.ev_snap == NULL ||
	    event_add(J.ev_done, NULL) == -1 ||
	    event_add(J.ev_flush, &sec) == -1)
		fatalx("cannot start the journal");
	J.wj.fd = J.ws.fd = -1;
	worker_start(&J.wj, fd, J.gen);
	worker_start(&J.ws, -1, 0);
	J.open = 1;
	J.last_snap_ms = mpd_now();
	log_info("state: journal generation %" PRIu64 " in %s, restart "
	    "epoch %016" PRIx64 " (%s)", J.gen, name, J.epoch, si->clean ?
	    "kept: the last shutdown was clean" : "new");
	if (si->need_snapshot || !J.saving)
		snap_start();
}

/* Write the whole table now, as a clean snapshot (shutdown). */
static int
final_snapshot(void)
{
	struct jbuf b = { NULL, 0, 0 };
	struct rec_hdr h = { REC_VERSION, REC_KIND_SNAPSHOT, 1, J.gen + 1,
	    J.epoch, (uint64_t)time(NULL) };
	char tmp[PATH_MAX];
	uint64_t cursor = 0, g;
	int fd, rc = -1;

	J.snap_count = 0;
	record_hdr(&b, &h);
	while (registry_scan(&cursor, SIZE_MAX, snap_put, &b))
		;
	record_end(&b, J.snap_count);
	state_file_name(tmp, sizeof(tmp), J.path, ".tmp");
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1)
		log_warn("state: cannot write the snapshot %s", tmp);
	else if (write_all(fd, b.p, b.len) != 0 || fsync(fd) != 0)
		log_warn("state: cannot write the snapshot %s", tmp);
	else if (rename(tmp, J.path) != 0)
		log_warn("state: cannot rename %s to %s", tmp, J.path);
	else if (state_fsync_dir(J.path) != 0)
		log_warn("state: cannot sync the directory of %s", J.path);
	else
		rc = 0;
	if (fd != -1)
		close(fd);
	if (rc != 0)
		unlink(tmp);
	else {
		for (g = J.gen + 1; g-- > 0;) {
			state_journal_name(tmp, sizeof(tmp), J.path, g);
			if (unlink(tmp) == -1 && errno == ENOENT &&
			    g + 64 < J.gen)
				break;
		}
		log_info("state: %" PRIu64 " registrations saved in %s",
		    J.snap_count, J.path);
	}
	jbuf_free(&b);
	return rc;
}

void
journal_close(void)
{
	size_t i;

	if (!J.open)
		return;
	serialize_touched();
	if (J.cur.len > 0)
		hand_over();
	if (J.snap_running)
		snap_abort();
	worker_stop(&J.wj);
	worker_stop(&J.ws);
	J.open = 0;
	/* what was held was written (or failed): let it go */
	J.synced = J.next_batch;
	release();
	for (i = 0; i < BEV_MAX; i++)
		J.bevs[i].bev = NULL;
	final_snapshot();
	event_free(J.ev_done);
	event_free(J.ev_flush);
	event_free(J.ev_snap);
	close(J.evfd);
	J.evfd = -1;
	free(J.held);
	free(J.touched);
	jbuf_free(&J.cur);
	memset(&J.wj, 0, sizeof(J.wj));
	memset(&J.ws, 0, sizeof(J.ws));
}

uint64_t
journal_epoch(void)
{
	return J.epoch;
}

void
journal_status(struct journal_status *s)
{
	*s = J.st;
	s->saving = J.open ? J.saving : 0;
	s->snapshot_running = J.snap_running;
	s->gen = J.gen;
	s->epoch = J.epoch;
	if (J.open) {
		pthread_mutex_lock(&J.wj.mu);
		s->journal_bytes = J.wj.bytes;
		pthread_mutex_unlock(&J.wj.mu);
	}
}

/* The state lines of mailpushctl status. */
void
journal_status_put(struct evbuffer *out, int json)
{
	struct journal_status s;

	journal_status(&s);
	if (json) {
		evbuffer_add_printf(out, ",\"state_saving\":%s,"
		    "\"state_write_errors\":%" PRIu64 ",\"journal_generation\":%"
		    PRIu64 ",\"journal_bytes\":%" PRIu64 ",\"restart_epoch\":"
		    "\"%016" PRIx64 "\",\"snapshot_running\":%s,"
		    "\"state_error\":", s.saving ? "true" : "false",
		    s.write_errors, s.gen, s.journal_bytes, s.epoch,
		    s.snapshot_running ? "true" : "false");
		if (s.last_error[0] == '\0')
			evbuffer_add_printf(out, "null");
		else {
			char *p;

			/* no quotes or backslashes in strerror or our paths */
			for (p = s.last_error; *p != '\0'; p++)
				if (*p == '"' || *p == '\\' ||
				    (unsigned char)*p < 0x20)
					*p = '?';
			evbuffer_add_printf(out, "\"%s\"", s.last_error);
		}
		return;
	}
	if (mpd->cfg.state_file[0] == '\0')
		return;
	if (s.saving)
		evbuffer_add_printf(out, "state: saved (journal generation %"
		    PRIu64 ", %" PRIu64 " bytes%s), restart epoch %016" PRIx64
		    "\n", s.gen, s.journal_bytes, s.snapshot_running ?
		    ", snapshot being written" : "", s.epoch);
	else
		evbuffer_add_printf(out, "state: state is not being saved "
		    "(%" PRIu64 " write errors, last: %s); serving from memory, "
		    "retrying every second\n", s.write_errors, s.last_error);
}

const struct journal_status *
journal_stats(void)
{
	static struct journal_status s;

	journal_status(&s);
	return &s;
}
