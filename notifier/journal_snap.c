/*
 * journal_snap.c: the snapshot, written without stopping the loop: the
 * journal moves to a new generation, then the loop serialises the table a
 * slice of at most SNAP_SLICE_US at a time and hands the slices to the
 * snapshot thread (journal_worker.c); and the final, clean snapshot
 * written at shutdown.
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

/* The snapshot */

static void
snap_put(struct reg *r, void *arg)
{
	journal_put_reg(arg, r);
	journal_g.snap_count++;
}

void
journal_snap_abort(void)
{
	struct job *j = journal_job_new(JOB_SNAP_ABORT);

	journal_g.snap_running = 0;
	j->gen = journal_g.snap_gen;
	journal_worker_push(&journal_g.ws, j);
}

void
journal_snap_start(void)
{
	struct job *j;
	struct rec_hdr h = { REC_VERSION, REC_KIND_SNAPSHOT, 0, 0, journal_g.epoch,
	    (uint64_t)time(NULL) };
	struct timeval now = { 0, 0 };

	if (journal_g.snap_running)
		return;
	/* everything from here on goes to the next generation */
	journal_serialize_touched();
	if (journal_g.cur.len > 0)
		journal_hand_over();
	j = journal_job_new(JOB_ROTATE);
	j->gen = ++journal_g.gen;
	journal_worker_push(&journal_g.wj, j);
	journal_g.snap_running = 1;
	journal_g.snap_cursor = 0;
	journal_g.snap_count = 0;
	journal_g.snap_gen = journal_g.gen;
	journal_g.snap_started_ms = mpd_now();
	j = journal_job_new(JOB_SNAP_OPEN);
	h.gen = journal_g.gen;
	record_hdr(&j->buf, &h);
	journal_worker_push(&journal_g.ws, j);
	log_debug("state: snapshot started, journal generation %" PRIu64,
	    journal_g.gen);
	evtimer_add(journal_g.ev_snap, &now);
}

void
journal_snap_step(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { 0, 0 };
	uint64_t t0 = journal_step_begin();
	struct job *j;
	size_t queued;
	int more = 1, failed;

	(void)fd;
	(void)what;
	(void)arg;
	if (!journal_g.snap_running)
		return;
	pthread_mutex_lock(&journal_g.ws.mu);
	queued = journal_g.ws.queued;
	failed = journal_g.ws.failed;
	pthread_mutex_unlock(&journal_g.ws.mu);
	if (failed) {
		/* a failed write: no use serialising the rest */
		journal_snap_abort();
		return;
	}
	if (queued > SNAP_QUEUE_MAX || (j = journal_slice_take()) == NULL) {
		tv.tv_usec = 2000;	/* let the writer catch up */
		evtimer_add(journal_g.ev_snap, &tv);
		return;
	}
	while (more && j->buf.len < SNAP_CHUNK &&
	    journal_mono_us() - t0 < SNAP_SLICE_US)
		more = registry_scan(&journal_g.snap_cursor, 32, snap_put, &j->buf);
	if (!more) {
		record_end(&j->buf, journal_g.snap_count);
		j->kind = JOB_SNAP_DONE;
		j->gen = journal_g.snap_gen;
	}
	journal_worker_push(&journal_g.ws, j);
	if (more)
		evtimer_add(journal_g.ev_snap, &tv);
	journal_loop_took(t0, "a snapshot slice");
}

void
journal_snap_finished(int ok)
{
	journal_g.snap_running = 0;
	journal_g.last_snap_ms = mpd_now();
	if (!ok) {
		journal_g.st.snapshot_errors++;
		return;
	}
	journal_g.st.snapshots++;
	log_info("state: snapshot of %" PRIu64 " registrations written to "
	    "%s in %" PRIu64 " ms", journal_g.snap_count, journal_g.path,
	    journal_g.last_snap_ms - journal_g.snap_started_ms);
}

/* Write the whole table now, as a clean snapshot (shutdown). */
int
journal_final_snapshot(void)
{
	struct jbuf b = { NULL, 0, 0, 0 };
	struct rec_hdr h = { REC_VERSION, REC_KIND_SNAPSHOT, 1, journal_g.gen + 1,
	    journal_g.epoch, (uint64_t)time(NULL) };
	char tmp[PATH_MAX];
	uint64_t cursor = 0, g;
	int fd, rc = -1;

	journal_g.snap_count = 0;
	record_hdr(&b, &h);
	while (registry_scan(&cursor, SIZE_MAX, snap_put, &b))
		;
	record_end(&b, journal_g.snap_count);
	state_file_name(tmp, sizeof(tmp), journal_g.path, ".tmp");
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1)
		log_warn("state: cannot write the snapshot %s", tmp);
	else if (journal_write_all(fd, b.p, b.len) != 0 || fsync(fd) != 0)
		log_warn("state: cannot write the snapshot %s", tmp);
	else if (rename(tmp, journal_g.path) != 0)
		log_warn("state: cannot rename %s to %s", tmp, journal_g.path);
	else if (state_fsync_dir(journal_g.path) != 0)
		log_warn("state: cannot sync the directory of %s", journal_g.path);
	else
		rc = 0;
	if (fd != -1)
		close(fd);
	if (rc != 0)
		unlink(tmp);
	else {
		for (g = journal_g.gen + 1; g-- > 0;) {
			state_journal_name(tmp, sizeof(tmp), journal_g.path, g);
			if (unlink(tmp) == -1 && errno == ENOENT &&
			    g + 64 < journal_g.gen)
				break;
		}
		log_info("state: %" PRIu64 " registrations saved in %s",
		    journal_g.snap_count, journal_g.path);
	}
	jbuf_free(&b);
	return rc;
}

