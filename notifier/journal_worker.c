/*
 * journal_worker.c: the journal's two writer threads.  One appends the
 * journal and syncs it (group commit), the other writes snapshots to
 * FILE.tmp and renames them into place; neither touches the table or
 * libevent: they take jobs from their queue and report through an eventfd
 * the loop watches (journal.c).
 */
#include <sys/types.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
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

/* Threads */

void
journal_worker_push(struct worker *w, struct job *j)
{
	pthread_mutex_lock(&w->mu);
	j->next = NULL;
	*w->tail = j;
	w->tail = &j->next;
	w->queued += j->buf.len;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

struct job *
journal_job_new(int kind)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		fatal("journal job");
	j->kind = kind;
	j->buf.deferred = 1;	/* its writer sums the records */
	return j;
}

/*
 * The snapshot's slices (journal_int.h): made here, on the writer, when a
 * snapshot opens, one at a time so that the loop can start on the first;
 * each buffer is touched so the loop takes no page fault filling it.
 */
static void
slices_make(struct worker *w)
{
	struct job *j;
	unsigned made;

	/* SNAP_POOL in all, counting any left in the pool: the loop may take
	 * the first ones while the rest are made */
	pthread_mutex_lock(&w->mu);
	made = w->npool;
	pthread_mutex_unlock(&w->mu);
	for (; made < SNAP_POOL; made++) {
		j = journal_job_new(JOB_SNAP_DATA);
		if ((j->buf.p = malloc(SNAP_BUF)) == NULL)
			fatal("snapshot buffer");
		j->buf.cap = SNAP_BUF;
		memset(j->buf.p, 0, SNAP_BUF);
		pthread_mutex_lock(&w->mu);
		w->pool[w->npool++] = j;
		pthread_mutex_unlock(&w->mu);
	}
}

static void
job_free(struct job *j)
{
	jbuf_free(&j->buf);
	free(j);
}

static void
slices_free(struct worker *w)
{
	struct job *pool[SNAP_POOL];
	unsigned i, n;

	pthread_mutex_lock(&w->mu);
	n = w->npool;
	memcpy(pool, w->pool, n * sizeof(pool[0]));
	w->npool = 0;
	pthread_mutex_unlock(&w->mu);
	for (i = 0; i < n; i++)
		job_free(pool[i]);
}

/* On the loop: an empty slice, or NULL while the writer has none. */
struct job *
journal_slice_take(void)
{
	struct worker *w = &journal_g.ws;
	struct job *j = NULL;

	pthread_mutex_lock(&w->mu);
	if (w->npool > 0)
		j = w->pool[--w->npool];
	pthread_mutex_unlock(&w->mu);
	return j;
}

static void
notify_loop(void)
{
	uint64_t one = 1;

	while (write(journal_g.evfd, &one, sizeof(one)) == -1 && errno == EINTR)
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

int
journal_write_all(int fd, const uint8_t *p, size_t len)
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
int
journal_create(uint64_t gen, uint64_t epoch, char *name, size_t len)
{
	struct jbuf b = { NULL, 0, 0, 0 };
	struct rec_hdr h = { REC_VERSION, REC_KIND_JOURNAL, 0, gen, epoch,
	    (uint64_t)time(NULL) };
	int fd, err;

	state_journal_name(name, len, journal_g.path, gen);
	if ((fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND |
	    O_CLOEXEC | O_NOFOLLOW, 0600)) == -1)
		return -1;
	record_hdr(&b, &h);
	if (journal_write_all(fd, b.p, b.len) != 0 || fdatasync(fd) != 0 ||
	    state_fsync_dir(journal_g.path) != 0) {
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
		jbuf_seal(&j->buf);
		if (journal_write_all(w->fd, j->buf.p, j->buf.len) != 0) {
			state_journal_name(name, sizeof(name), journal_g.path, w->gen);
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
		if ((w->fd = journal_create(j->gen, journal_g.epoch, name,
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

	state_file_name(tmp, sizeof(tmp), journal_g.path, ".tmp");
	jbuf_seal(&j->buf);
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
		if (!w->failed && journal_write_all(w->fd, j->buf.p, j->buf.len) != 0) {
			worker_error(w, "write", tmp, errno);
			w->failed = 1;
		}
		break;
	case JOB_SNAP_DONE:
		/* the last slice and the END record */
		if (!w->failed && journal_write_all(w->fd, j->buf.p, j->buf.len) != 0) {
			worker_error(w, "write", tmp, errno);
			w->failed = 1;
		}
		if (!w->failed && fsync(w->fd) != 0) {
			worker_error(w, "fsync", tmp, errno);
			w->failed = 1;
		}
		if (!w->failed && rename(tmp, journal_g.path) != 0) {
			worker_error(w, "rename to the state file", tmp, errno);
			w->failed = 1;
		}
		if (!w->failed && state_fsync_dir(journal_g.path) != 0) {
			worker_error(w, "fsync the directory of", journal_g.path,
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
				state_journal_name(tmp, sizeof(tmp), journal_g.path, g);
				if (unlink(tmp) == -1 && errno == ENOENT &&
				    g + 64 < j->gen)
					break;
			}
		}
		pthread_mutex_lock(&w->mu);
		w->snap_result = w->failed || j->kind == JOB_SNAP_ABORT ?
		    -1 : 1;
		w->snap_result_gen = j->gen;
		pthread_mutex_unlock(&w->mu);
		break;
	}
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct job *list, *j, *next;
	int quit = 0, need_sync, notify, kind;
	uint64_t batch, seen = 0;

	/* The snapshot writer is never in a hurry: on a busy machine the
	 * scheduler should run the event loop first (a nice of its own;
	 * the journal's writer, which answers wait for, keeps the daemon's) */
	if (w == &journal_g.ws && setpriority(PRIO_PROCESS, (id_t)gettid(),
	    SNAP_NICE) == -1)
		log_debug("state: snapshot thread keeps its priority: %s",
		    strerror(errno));
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
			kind = j->kind;
			if (kind == JOB_QUIT)
				quit = 1;
			else if (w == &journal_g.wj)
				journal_job(w, j, &need_sync);
			else
				snap_job(w, j);
			if (kind == JOB_SNAP_OPEN && !w->failed)
				slices_make(w);
			if (j->kind == JOB_DATA)
				batch = j->batch;
			/* one sync for a run of data jobs (group commit) */
			if (w == &journal_g.wj && (next == NULL ||
			    next->kind != JOB_DATA) && batch != 0) {
				if (need_sync && !w->failed &&
				    fdatasync(w->fd) != 0) {
					char name[PATH_MAX];

					state_journal_name(name, sizeof(name),
					    journal_g.path, w->gen);
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
			/* a written slice goes back to the loop */
			if (kind == JOB_SNAP_DATA && w->npool < SNAP_POOL) {
				j->next = NULL;
				j->buf.len = 0;
				j->buf.deferred = 1;	/* jbuf_seal cleared it */
				w->pool[w->npool++] = j;
				j = NULL;
			}
			pthread_mutex_unlock(&w->mu);
			if (j != NULL)
				job_free(j);
			if (kind == JOB_SNAP_DONE || kind == JOB_SNAP_ABORT)
				slices_free(w);
			if (notify)
				notify_loop();
		}
	}
	return NULL;
}

void
journal_worker_start(struct worker *w, int fd, uint64_t gen)
{
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->head = NULL;
	w->tail = &w->head;
	w->fd = fd;
	w->gen = gen;
	w->failed = fd == -1 && w == &journal_g.wj;
	if (pthread_create(&w->th, NULL, worker_main, w) != 0)
		fatalx("cannot start the journal thread");
	w->started = 1;
}

void
journal_worker_stop(struct worker *w)
{
	if (!w->started)
		return;
	journal_worker_push(w, journal_job_new(JOB_QUIT));
	pthread_join(w->th, NULL);
	if (w->fd != -1)
		close(w->fd);
	w->fd = -1;
	slices_free(w);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	w->started = 0;
}
