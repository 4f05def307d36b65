/*
 * journal.c: crash-safe registrations.  An append-only journal with group
 * commit, and a snapshot written beside a running loop.  This file is the
 * loop's side (recording, holding replies, start and stop); the writer
 * threads are journal_worker.c, the snapshot slicing journal_snap.c.
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
#include "journal_int.h"
#include "log.h"

struct journal_state journal_g = { .evfd = -1 };

/*
 * The loop's clock for persistence steps: a step (a journal batch, a
 * snapshot slice, the threads' results, a snapshot's start) must never
 * hold the loop for long.  Its cost is the loop thread's CPU time, so that
 * the scheduler giving the CPU to another thread meanwhile is not counted
 * against it; the longest, and how many took over 1 ms, are statistics.
 */
uint64_t
journal_mono_us(void)
{
	return mpd_clock_us(CLOCK_THREAD_CPUTIME_ID);
}

uint64_t
journal_step_begin(void)
{
	return journal_mono_us();
}

void
journal_loop_took(uint64_t t0, const char *what)
{
	uint64_t d = journal_mono_us() - t0;

	journal_g.st.loop_steps++;
	if (d > journal_g.st.loop_max_us)
		journal_g.st.loop_max_us = d;
	if (d > 1000) {
		journal_g.st.loop_slow_steps++;
		log_debug("state: %s held the loop for %" PRIu64 " us of CPU",
		    what, d);
	}
}

/* Holding replies */

static int
durable_pending(void)
{
	return journal_g.open && (journal_g.cur_durable || journal_g.last_durable > journal_g.synced);
}

static uint64_t
needed_batch(void)
{
	return journal_g.cur_durable ? journal_g.next_batch : journal_g.last_durable;
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
	if (journal_g.n_held == HOLD_MAX) {
		/* the client will ask again */
		journal_g.st.held_dropped++;
		return 1;
	}
	h = &journal_g.held[(journal_g.held_head + journal_g.n_held) % HOLD_MAX];
	if ((h->data = malloc(len)) == NULL)
		fatal("journal: held reply");
	memcpy(h->data, buf, len);
	h->len = (uint16_t)len;
	h->listener = listener;
	memcpy(&h->to, to, sizeof(*to));
	h->batch = needed_batch();
	journal_g.n_held++;
	journal_g.st.held++;
	return 1;
}

void
journal_hold_bev(struct bufferevent *bev)
{
	size_t i;

	if (!durable_pending())
		return;
	for (i = 0; i < BEV_MAX; i++)
		if (journal_g.bevs[i].bev == NULL) {
			journal_g.bevs[i].bev = bev;
			journal_g.bevs[i].batch = needed_batch();
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
		if (journal_g.bevs[i].bev == bev)
			journal_g.bevs[i].bev = NULL;
}

void
journal_release(void)
{
	size_t i;

	while (journal_g.n_held > 0 && journal_g.held[journal_g.held_head].batch <= journal_g.synced) {
		struct held *h = &journal_g.held[journal_g.held_head];
		struct mp_listener *l = &mpd->listeners[h->listener];

		if (l->in_use && sendto(l->fd, h->data, h->len, 0, &h->to.sa,
		    addr_len(&h->to)) == (ssize_t)h->len)
			mpd->stats.bytes_out += h->len;
		else
			mpd->stats.send_errors++;
		free(h->data);
		journal_g.held_head = (journal_g.held_head + 1) % HOLD_MAX;
		journal_g.n_held--;
	}
	for (i = 0; i < BEV_MAX; i++)
		if (journal_g.bevs[i].bev != NULL && journal_g.bevs[i].batch <= journal_g.synced) {
			bufferevent_enable(journal_g.bevs[i].bev, EV_WRITE);
			journal_g.bevs[i].bev = NULL;
		}
}

/* Recording changes */

/* A registration's REG record (through its fields: one encoder). */
void
journal_put_reg(struct jbuf *b, const struct reg *r)
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
touch(struct reg *r, uint8_t type)
{
	if (!journal_g.open)
		return;
	if (journal_g.n_touched > 0 && journal_g.touched[journal_g.n_touched - 1].r == r &&
	    journal_g.touched[journal_g.n_touched - 1].type == type)
		return;
	if (journal_g.n_touched == journal_g.cap_touched) {
		size_t cap = journal_g.cap_touched ? journal_g.cap_touched * 2 : 1024;
		struct touched *t = reallocarray(journal_g.touched, cap, sizeof(*t));

		if (t == NULL)
			fatal("journal");
		journal_g.touched = t;
		journal_g.cap_touched = cap;
	}
	journal_g.touched[journal_g.n_touched].r = r;
	journal_g.touched[journal_g.n_touched++].type = type;
	r->flags |= REG_F_TOUCHED;
	if (type == REC_REG)
		journal_g.cur_durable = 1;
}

void
journal_log_reg(struct reg *r)
{
	touch(r, REC_REG);
}

void
journal_log_seq(struct reg *r)
{
	touch(r, REC_SEQ);
}

void
journal_log_exp(struct reg *r)
{
	touch(r, REC_EXP);
}

/*
 * r is going away (freed, or moved to n by registry_set_ctx): its
 * entries in this turn's list follow it.  Only a registration changed
 * and removed in the same loop turn is looked for.
 */
void
journal_moved(struct reg *r, struct reg *n)
{
	size_t i;

	if (!(r->flags & REG_F_TOUCHED))
		return;
	for (i = 0; i < journal_g.n_touched; i++)
		if (journal_g.touched[i].r == r)
			journal_g.touched[i].r = n;
}

void
journal_log_del(uint32_t id)
{
	if (!journal_g.open)
		return;
	record_del(&journal_g.cur, id);
	journal_g.cur_durable = 1;
	journal_g.st.records++;
}

/* The records of the registrations touched in this iteration. */
void
journal_serialize_touched(void)
{
	size_t i;
	struct reg *r;

	for (i = 0; i < journal_g.n_touched; i++) {
		if ((r = journal_g.touched[i].r) == NULL)
			continue;	/* gone since: its DEL is recorded */
		r->flags &= (uint8_t)~REG_F_TOUCHED;
		switch (journal_g.touched[i].type) {
		case REC_REG:
			journal_put_reg(&journal_g.cur, r);
			break;
		case REC_SEQ:
			record_seq(&journal_g.cur, r);
			break;
		case REC_EXP:
			record_exp(&journal_g.cur, r);
			break;
		}
		journal_g.st.records++;
	}
	journal_g.n_touched = 0;
}

void
journal_hand_over(void)
{
	struct job *j = journal_job_new(JOB_DATA);

	j->buf = journal_g.cur;
	memset(&journal_g.cur, 0, sizeof(journal_g.cur));
	journal_g.cur.deferred = 1;	/* the writer sums the records */
	/* room for as much as this iteration recorded (up to 1 MB: a
	 * larger burst's size is not kept): a busy loop's buffer is not
	 * grown, and copied, from 4 kB every iteration */
	if (j->buf.len <= (1 << 20))
		jbuf_reserve(&journal_g.cur, j->buf.len);
	j->batch = journal_g.next_batch++;
	j->sync = journal_g.cur_durable && mpd->cfg.state_sync;
	if (journal_g.cur_durable)
		journal_g.last_durable = j->batch;
	if (!mpd->cfg.state_sync)
		journal_g.synced = j->batch;	/* nothing to wait for */
	journal_g.cur_durable = 0;
	journal_g.st.commits++;
	journal_g.st.bytes += j->buf.len;
	journal_worker_push(&journal_g.wj, j);
}

void
journal_commit(void)
{
	uint64_t t0;

	if (!journal_g.open || (journal_g.n_touched == 0 &&
	    journal_g.cur.len == 0))
		return;
	t0 = journal_step_begin();
	journal_serialize_touched();
	if (journal_g.cur.len > 0) {
		journal_hand_over();
		if (!mpd->cfg.state_sync)
			journal_release();
	}
	journal_loop_took(t0, "a journal batch");
}

/* Results from the threads */

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t v, errors, snap_gen, t0 = journal_step_begin();
	int snap, jfailed, err_no;
	char error[256];

	(void)what;
	(void)arg;
	if (read(fd, &v, sizeof(v)) == -1 && errno != EAGAIN)
		log_warn("journal: eventfd");
	mpd_now();
	pthread_mutex_lock(&journal_g.wj.mu);
	journal_g.synced = journal_g.wj.done_batch;
	errors = journal_g.wj.errors;
	jfailed = journal_g.wj.failed;
	journal_g.st.journal_bytes = journal_g.wj.bytes;
	snprintf(error, sizeof(error), "%s", journal_g.wj.error);
	err_no = journal_g.wj.err_no;
	pthread_mutex_unlock(&journal_g.wj.mu);
	pthread_mutex_lock(&journal_g.ws.mu);
	snap = journal_g.ws.snap_result;
	snap_gen = journal_g.ws.snap_result_gen;
	journal_g.ws.snap_result = 0;
	errors += journal_g.ws.errors;
	if (journal_g.ws.errors > 0 && snap == -1) {
		snprintf(error, sizeof(error), "%s", journal_g.ws.error);
		err_no = journal_g.ws.err_no;
	}
	pthread_mutex_unlock(&journal_g.ws.mu);
	if (errors > journal_g.seen_errors) {
		journal_g.st.write_errors += errors - journal_g.seen_errors;
		journal_g.seen_errors = errors;
		snprintf(journal_g.st.last_error, sizeof(journal_g.st.last_error), "%s",
		    error);
		if (journal_g.saving)
			log_error("state is not being saved: %s; serving from "
			    "memory, retrying every second", error);
		else
			log_warnx("state is still not being saved: %s", error);
		journal_g.saving = 0;
		journal_g.snap_good = 0;
		health_saved(err_no != 0 ? err_no : EIO);	/* status */
	}
	/* the end of an aborted snapshot must not end the next one, which
	 * may have started before the writer got to the abort */
	if (snap != 0 && journal_g.snap_running &&
	    snap_gen != journal_g.snap_gen)
		snap = 0;
	if (snap != 0) {
		journal_snap_finished(snap == 1);
		journal_g.snap_good = snap == 1;
	}
	/* A good snapshot counts once the journal is healthy too, which may
	 * be a later wake-up than the snapshot's own (the journal thread
	 * opens its new file after the snapshot thread is done). */
	if (journal_g.snap_good && !jfailed) {
		journal_g.snap_good = 0;
		health_saved(0);
		if (!journal_g.saving) {
			journal_g.saving = 1;
			log_info("state is being saved again (journal "
			    "generation %" PRIu64 ")", journal_g.gen);
		}
	}
	journal_release();
	journal_loop_took(t0, "the writers' results");
}

/* Every second: start a snapshot when one is due, or to recover from a
 * disk error. */
static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t now = mpd_now(), jbytes, t0 = journal_step_begin();

	(void)fd;
	(void)what;
	(void)arg;
	pthread_mutex_lock(&journal_g.wj.mu);
	jbytes = journal_g.wj.bytes;
	pthread_mutex_unlock(&journal_g.wj.mu);
	if (journal_g.snap_running)
		return;
	if (!journal_g.saving) {
		if (now >= journal_g.last_snap_ms + JOURNAL_RETRY_S * 1000)
			journal_snap_start();
	} else if (jbytes >= mpd->cfg.journal_size_limit ||
	    (jbytes > 0 && now >= journal_g.last_snap_ms +
	    mpd->cfg.state_save_interval))
		journal_snap_start();
	journal_loop_took(t0, "the snapshot's start");
}

/* Start and stop */

void
journal_open(const char *path, const struct state_info *si)
{
	struct timeval sec = { 1, 0 };
	char name[PATH_MAX];
	int fd;

	snprintf(journal_g.path, sizeof(journal_g.path), "%s", path);
	journal_g.held = calloc(HOLD_MAX, sizeof(*journal_g.held));
	if (journal_g.held == NULL)
		fatal("journal");
	journal_g.epoch = si->clean ? si->epoch : 0;
	while (journal_g.epoch == 0)
		randombytes_buf(&journal_g.epoch, sizeof(journal_g.epoch));
	journal_g.gen = si->next_gen;
	journal_g.next_batch = 1;
	journal_g.cur.deferred = 1;	/* the writer sums the records */
	/* on disk before anything is served: the next start sees that this
	 * one did not end cleanly */
	if ((fd = journal_create(journal_g.gen, journal_g.epoch, name, sizeof(name))) == -1) {
		health_saved(errno);
		journal_g.st.write_errors++;
		journal_g.seen_errors = 0;
		snprintf(journal_g.st.last_error, sizeof(journal_g.st.last_error),
		    "create %s: %s", name, strerror(errno));
		log_error("state is not being saved: %s; serving from "
		    "memory, retrying every second", journal_g.st.last_error);
	} else
		journal_g.saving = 1;
	if ((journal_g.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		fatal("eventfd");
	journal_g.ev_done = event_new(mpd->base, journal_g.evfd, EV_READ | EV_PERSIST,
	    done_cb, NULL);
	journal_g.ev_flush = event_new(mpd->base, -1, EV_PERSIST, flush_cb, NULL);
	journal_g.ev_snap = evtimer_new(mpd->base, journal_snap_step, NULL);
	if (journal_g.ev_done == NULL || journal_g.ev_flush == NULL || journal_g.ev_snap == NULL ||
	    event_add(journal_g.ev_done, NULL) == -1 ||
	    event_add(journal_g.ev_flush, &sec) == -1)
		fatalx("cannot start the journal");
	journal_g.wj.fd = journal_g.ws.fd = -1;
	journal_worker_start(&journal_g.wj, fd, journal_g.gen);
	journal_worker_start(&journal_g.ws, -1, 0);
	journal_g.open = 1;
	journal_g.last_snap_ms = mpd_now();
	log_info("state: journal generation %" PRIu64 " in %s, restart "
	    "epoch %016" PRIx64 " (%s)", journal_g.gen, name, journal_g.epoch, si->clean ?
	    "kept: the last shutdown was clean" : "new");
	if (si->need_snapshot || !journal_g.saving)
		journal_snap_start();
}

void
journal_close(void)
{
	size_t i;

	if (!journal_g.open)
		return;
	journal_serialize_touched();
	if (journal_g.cur.len > 0)
		journal_hand_over();
	if (journal_g.snap_running)
		journal_snap_abort();
	journal_worker_stop(&journal_g.wj);
	journal_worker_stop(&journal_g.ws);
	journal_g.open = 0;
	/* what was held was written (or failed): let it go */
	journal_g.synced = journal_g.next_batch;
	journal_release();
	for (i = 0; i < BEV_MAX; i++)
		journal_g.bevs[i].bev = NULL;
	journal_final_snapshot();
	event_free(journal_g.ev_done);
	event_free(journal_g.ev_flush);
	event_free(journal_g.ev_snap);
	close(journal_g.evfd);
	journal_g.evfd = -1;
	free(journal_g.held);
	free(journal_g.touched);
	jbuf_free(&journal_g.cur);
	memset(&journal_g.wj, 0, sizeof(journal_g.wj));
	memset(&journal_g.ws, 0, sizeof(journal_g.ws));
}

uint64_t
journal_epoch(void)
{
	return journal_g.epoch;
}

void
journal_status(struct journal_status *s)
{
	*s = journal_g.st;
	s->saving = journal_g.open ? journal_g.saving : 0;
	s->snapshot_running = journal_g.snap_running;
	s->gen = journal_g.gen;
	s->epoch = journal_g.epoch;
	if (journal_g.open) {
		pthread_mutex_lock(&journal_g.wj.mu);
		s->journal_bytes = journal_g.wj.bytes;
		pthread_mutex_unlock(&journal_g.wj.mu);
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
