/*
 * state.c: registrations read back at start, from the snapshot FILE and
 * the journals FILE.journal.GEN (journal.c writes them; record.c gives
 * the format).
 *
 * The snapshot's header names the first journal generation it does not
 * hold; journals of older generations are left-overs (a crash between
 * the snapshot's rename and their removal) and are removed.  The others
 * are replayed in order, each up to its first record that does not
 * verify: a torn or damaged tail is discarded with a log line.  A
 * snapshot or journal that cannot be read as a whole (damaged, or of
 * another format, such as the text file of version 1) is moved aside as
 * FILE.corrupt-YYYYmmddTHHMMSS (UTC) and reported; what can still be
 * replayed is, and the daemon starts instead of failing again at every
 * start.
 *
 * What comes back: every registration (id, user, address, listener,
 * context, mailboxes, creation time), its push sequence number and
 * message totals, and its expiry, extended by the time the daemon was
 * down (from the last write to this start).  After a clean shutdown
 * (a clean snapshot and no journal) the state is exact and the restart
 * epoch is kept; otherwise the epoch is new, so that every client reports
 * the next push whatever sequence number it carries, and the
 * registrations are marked REG_F_RESTORED (their pushes say the counts
 * may be inexact until one is acknowledged).
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "user.h"

#define JOURNALS_MAX	4096

enum { LOAD_OK, LOAD_NO_LISTENER, LOAD_TABLE_FULL, LOAD_RENAMED, LOAD_NO_KEY,
    LOAD_N };

struct load {
	size_t	 n[LOAD_N];
	size_t	 records;
	uint32_t downtime;	/* s: added to every expiry read */
};

int
state_file_name(char *buf, size_t len, const char *path, const char *suffix)
{
	return snprintf(buf, len, "%s%s", path, suffix) >= (int)len ? -1 : 0;
}

int
state_journal_name(char *buf, size_t len, const char *path, uint64_t gen)
{
	return snprintf(buf, len, "%s.journal.%" PRIu64, path, gen) >=
	    (int)len ? -1 : 0;
}

int
state_fsync_dir(const char *path)
{
	char dir[PATH_MAX];
	int dfd, rc;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC))
	    == -1)
		return -1;
	rc = fsync(dfd);
	close(dfd);
	return rc;
}

/* FILE.corrupt-YYYYmmddTHHMMSS, and -1, -2... if that is taken. */
void
state_move_aside(const char *path, const char *what, const char *why)
{
	char aside[PATH_MAX + 48], stamp[32];
	struct stat st;
	time_t t = time(NULL);
	int i;

	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", gmtime(&t));
	snprintf(aside, sizeof(aside), "%s.corrupt-%s", path, stamp);
	for (i = 1; i < 100 && lstat(aside, &st) == 0; i++)
		snprintf(aside, sizeof(aside), "%s.corrupt-%s-%d", path, stamp,
		    i);
	if (rename(path, aside) == 0)
		log_error("%s %s: %s; moved aside to %s", what, path, why,
		    aside);
	else
		log_error("%s %s: %s; cannot move it aside (%s)", what, path,
		    why, strerror(errno));
}

static int
find_listener(const char *text, int family)
{
	size_t i;

	for (i = 0; i < mpd->n_listeners; i++)
		if (mpd->listeners[i].in_use &&
		    mpd->listeners[i].conf.ss.ss_family == family &&
		    strcmp(mpd->listeners[i].conf.text, text) == 0)
			return (int)i;
	for (i = 0; i < mpd->n_listeners; i++)
		if (mpd->listeners[i].in_use &&
		    mpd->listeners[i].conf.ss.ss_family == family)
			return (int)i;
	return -1;
}

static void
apply_reg(const struct rec_fields *g, struct load *ld)
{
	static struct mp_request rq;	/* 5 kB: keep it off the stack */
	char user[MP_USER_MAX + 1];
	const char *why;
	struct reg *r = registry_find(g->id);
	struct mp_user *u;
	int listener;
	size_t i;

	if (user_normalize(&mpd->cfg.names, g->user, strlen(g->user), user,
	    &why) != 0 || strcmp(user, g->user) != 0) {
		/* saved under other [names] rules */
		if (r != NULL)
			registry_remove(r, "user name changed");
		ld->n[LOAD_RENAMED]++;
		return;
	}
	if ((listener = find_listener(g->listener, g->addr.sa.sa_family))
	    == -1) {
		if (r != NULL)
			registry_remove(r, "no listener");
		ld->n[LOAD_NO_LISTENER]++;
		return;
	}
	if (mpd_key(g->key_id) == NULL) {
		/* the key its token came from is gone */
		if (r != NULL)
			registry_remove(r, "key gone");
		ld->n[LOAD_NO_KEY]++;
		return;
	}
	if (r != NULL && strcmp(r->user->name, user) != 0) {
		registry_remove(r, "replaced");
		r = NULL;
	}
	if (r == NULL) {
		struct reg *o;

		/* one registration per device of a user: the newer wins */
		if ((u = registry_user(user, 0)) != NULL &&
		    (o = registry_device(u, g->device)) != NULL)
			registry_remove(o, "replaced by its device");
		if (registry_count() >= mpd->cfg.max_registrations) {
			ld->n[LOAD_TABLE_FULL]++;
			return;
		}
		u = registry_user(user, 1);
		r = registry_add(u, &g->addr, listener, g->ctx, g->ctx_len, 0,
		    g->id);
	} else {
		registry_set_addr(r, &g->addr, listener);
		registry_set_ctx(&r, g->ctx, g->ctx_len);
	}
	memcpy(r->device, g->device, PROTO_DEVICE_LEN);
	r->key_id = g->key_id;
	r->hwm = g->hwm;
	/* registry_set_mailboxes reads only these */
	rq.n_mailboxes = g->n_mailboxes;
	for (i = 0; i < g->n_mailboxes; i++) {
		rq.mailboxes[i].len = (uint8_t)strlen(g->mailboxes[i]);
		memcpy(rq.mailboxes[i].name, g->mailboxes[i],
		    (size_t)rq.mailboxes[i].len + 1);
	}
	registry_set_mailboxes(r, &rq);
	r->created = g->created;
	r->expires = g->expires;
	r->last_ack = g->last_ack;
	r->seq = g->seq;
	r->total = g->total;
	r->sent_total = g->sent;
	r->acked_total = g->acked;
	r->failures = g->failures;
	r->last_push_ms = g->last_push_ms;
	r->state = g->state;
	r->expires += ld->downtime;
	registry_schedule(r);
	ld->n[LOAD_OK]++;
}

static void
apply(const struct rec_fields *g, struct load *ld)
{
	struct reg *r;

	ld->records++;
	if (g->type == REC_REG) {
		apply_reg(g, ld);
		return;
	}
	if ((r = registry_find(g->id)) == NULL)
		return;
	switch (g->type) {
	case REC_DEL:
		registry_remove(r, "removed in the journal");
		break;
	case REC_EXP:
		r->expires = g->expires + ld->downtime;
		if (g->hwm > r->hwm)
			r->hwm = g->hwm;
		registry_schedule(r);
		break;
	case REC_SEQ:
		r->seq = g->seq;
		r->total = g->total;
		r->sent_total = g->sent;
		r->acked_total = g->acked;
		r->last_ack = g->last_ack;
		r->last_push_ms = g->last_push_ms;
		if (g->hwm > r->hwm)
			r->hwm = g->hwm;
		r->state = g->state;
		break;
	}
}

/*
 * The whole file, or NULL (errno; ENOENT: none; EPERM: not ours, said
 * here).  Only a file of the daemon's user that nobody else can write is
 * read: anybody else's could bring registrations nobody made.
 */
static uint8_t *
read_file(const char *path, const char *what, size_t *len, time_t *mtime)
{
	struct stat st;
	uint8_t *buf;
	size_t off = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return NULL;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
		log_error("%s %s is owned by uid %ld with mode %04o; it must be "
		    "owned by uid %ld (the user mailpushd runs as) and writable "
		    "by nobody else: not loading it (chown and chmod 600 it, or "
		    "remove it)", what, path, (long)st.st_uid,
		    (unsigned)(st.st_mode & 07777), (long)geteuid());
		close(fd);
		errno = EPERM;
		return NULL;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		fatal("state: %s", path);
	while (off < (size_t)st.st_size &&
	    (n = read(fd, buf + off, (size_t)st.st_size - off)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			free(buf);
			close(fd);
			return NULL;
		}
		off += (size_t)n;
	}
	close(fd);
	*len = off;
	*mtime = st.st_mtime;
	return buf;
}

/*
 * The header of a file: 0, or -1 with *why.  A text state file of
 * version 1 and a binary file of another version are named as such.
 */
static int
read_hdr(const uint8_t *buf, size_t len, int kind, struct rec_hdr *h,
    size_t *off, const char **why)
{
	static char msg[128];
	struct rec_view v;

	if (len >= 15 && memcmp(buf, "mailpush-state ", 15) == 0) {
		*why = "an older format (the text state file of version 1); "
		    "its registrations are not restored";
		return -1;
	}
	if (len == 0) {
		*why = "empty file";
		return -1;
	}
	if (record_next(buf, len, &v, why) != 0 ||
	    record_parse_hdr(&v, h) != 0) {
		*why = "not a mailpush state or journal file";
		return -1;
	}
	if (h->version != REC_VERSION) {
		snprintf(msg, sizeof(msg), "format version %u (this mailpushd "
		    "reads version %u)", h->version, REC_VERSION);
		*why = msg;
		return -1;
	}
	if (h->kind != kind) {
		*why = "a journal where a snapshot belongs, or the reverse";
		return -1;
	}
	*off = v.size;
	return 0;
}

static void
drop_all(struct reg *r, void *arg)
{
	(void)arg;
	registry_remove(r, "state file rejected");
}

/* Snapshot: 0 loaded, 1 none, -1 moved aside. */
static int
load_snapshot(const char *path, struct rec_hdr *h, struct load *ld)
{
	static struct rec_fields g;
	struct rec_view v;
	const char *why = NULL;
	size_t len, off = 0, count = 0;
	uint8_t *buf;
	time_t mtime;
	int ended = 0;

	if ((buf = read_file(path, "state file", &len, &mtime)) == NULL) {
		if (errno == ENOENT) {
			log_info("state: no state file %s yet", path);
			return 1;
		}
		if (errno != EPERM)
			log_error("cannot read state file %s: %s", path,
			    strerror(errno));
		return -1;
	}
	if (read_hdr(buf, len, REC_KIND_SNAPSHOT, h, &off, &why) == 0) {
		/* the count from the END record, to size the table once */
		if (len >= off + REC_FRAME + 8 + REC_SUM &&
		    record_next(buf + len - (REC_FRAME + 8 + REC_SUM),
		    REC_FRAME + 8 + REC_SUM, &v, &why) == 0 &&
		    record_parse(&v, &g) == 0 && g.type == REC_END &&
		    g.count <= mpd->cfg.max_registrations &&
		    g.count <= len / (REC_FRAME + REC_SUM + 40))
			registry_reserve((size_t)g.count);
		why = NULL;
		while (off < len) {
			if (ended) {
				why = "data after the end record";
				break;
			}
			if (record_next(buf + off, len - off, &v, &why) != 0)
				break;
			if (record_parse(&v, &g) != 0 || (v.type != REC_REG &&
			    v.type != REC_END)) {
				why = "a record that does not parse";
				break;
			}
			off += v.size;
			if (v.type == REC_END) {
				if (g.count != count) {
					why = "count does not match the end "
					    "record";
					break;
				}
				ended = 1;
				continue;
			}
			count++;
			apply(&g, ld);
		}
		if (why == NULL && !ended)
			why = "truncated (no end record)";
	}
	free(buf);
	if (why != NULL) {
		char what[64];

		snprintf(what, sizeof(what), "state file (at byte %zu)", off);
		uint32_t downtime = ld->downtime;

		registry_foreach(drop_all, NULL);
		memset(ld, 0, sizeof(*ld));
		ld->downtime = downtime;
		state_move_aside(path, what, why);
		return -1;
	}
	return 0;
}

/* Journal gen: 0 replayed whole, 1 tail discarded, -1 moved aside. */
static int
replay_journal(const char *path, uint64_t gen, struct load *ld,
    time_t *mtime)
{
	static struct rec_fields g;
	struct rec_hdr h;
	struct rec_view v;
	const char *why = NULL;
	char name[PATH_MAX];
	size_t len, off = 0;
	uint8_t *buf;

	state_journal_name(name, sizeof(name), path, gen);
	if ((buf = read_file(name, "journal", &len, mtime)) == NULL) {
		if (errno != EPERM)
			log_error("cannot read journal %s: %s", name,
			    strerror(errno));
		return -1;
	}
	if (read_hdr(buf, len, REC_KIND_JOURNAL, &h, &off, &why) != 0 ||
	    (h.gen != gen && (why = "generation does not match its name"))) {
		free(buf);
		state_move_aside(name, "journal", why);
		return -1;
	}
	while (off < len) {
		if (record_next(buf + off, len - off, &v, &why) != 0)
			break;
		if (record_parse(&v, &g) != 0 || v.type == REC_HDR ||
		    v.type == REC_END) {
			why = "a record that does not parse";
			break;
		}
		apply(&g, ld);
		off += v.size;
	}
	free(buf);
	if (why != NULL) {
		log_warnx("journal %s: %s at byte %zu; the last %zu bytes are "
		    "discarded", name, why, off, len - off);
		return 1;
	}
	return 0;
}

static int
cmp_gen(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The generations of FILE.journal.* that exist, sorted. */
static size_t
list_journals(const char *path, uint64_t *gens, size_t max)
{
	char dir[PATH_MAX], base[PATH_MAX], prefix[PATH_MAX + 16];
	struct dirent *de;
	size_t n = 0, pl;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s", path);
	snprintf(base, sizeof(base), "%s", path);
	snprintf(prefix, sizeof(prefix), "%s.journal.", basename(base));
	pl = strlen(prefix);
	if ((d = opendir(dirname(dir))) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && n < max) {
		const char *s = de->d_name + pl;
		char *end;

		if (strncmp(de->d_name, prefix, pl) != 0 || *s < '0' ||
		    *s > '9')
			continue;
		errno = 0;
		gens[n] = strtoull(s, &end, 10);
		if (*end == '\0' && errno == 0)
			n++;
	}
	closedir(d);
	qsort(gens, n, sizeof(*gens), cmp_gen);
	return n;
}

struct fix_arg {
	uint32_t	now;
	int		clean;
	size_t		expired;
};

static void
fix_reg(struct reg *r, void *arg)
{
	struct fix_arg *a = arg;
	uint64_t push_at = r->push_at;

	if (r->expires <= a->now) {
		a->expired++;
		registry_remove(r, "expired while the daemon was down");
		return;
	}
	if (!a->clean)
		r->flags |= REG_F_RESTORED;	/* counts may be inexact */
	if (r->state == REG_PUSHING) {
		/*
		 * Its push went unacknowledged; the retransmission state is
		 * gone with the old process.  Push again soon, with the next
		 * sequence number and everything not acknowledged (total
		 * tells the client exactly what is new).
		 */
		r->state = REG_ACTIVE;
		r->sent_total = r->acked_total;
	}
	r->push_at = 0;
	if (r->total != r->sent_total) {
		/* as soon as min_push_interval since the last push allows */
		r->push_at = r->last_push_ms + mpd->cfg.min_push_interval;
		if (r->push_at <= mpd->now_ms)
			r->push_at = mpd->now_ms + 1;
	}
	if (r->push_at != push_at)
		registry_schedule(r);
}

/* The header of a snapshot, read alone; -1 if it has none. */
static int
peek_hdr(const char *path, struct rec_hdr *h)
{
	uint8_t buf[256];
	struct rec_view v;
	const char *why;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return -1;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0 || record_next(buf, (size_t)n, &v, &why) != 0 ||
	    record_parse_hdr(&v, h) != 0)
		return -1;
	return 0;
}

/*
 * When the last daemon last wrote: the snapshot's time, or the newest
 * journal that goes with it.  Expiries read are extended by the time
 * since, so that no registration expires for the downtime.
 */
static time_t
last_write(const char *path, const uint64_t *gens, size_t n)
{
	struct rec_hdr h;
	struct stat st;
	char name[PATH_MAX];
	time_t last = 0;
	size_t i;

	memset(&h, 0, sizeof(h));
	if (peek_hdr(path, &h) == 0 && h.kind == REC_KIND_SNAPSHOT)
		last = (time_t)h.time;
	for (i = 0; i < n; i++) {
		if (gens[i] < h.gen)
			continue;
		state_journal_name(name, sizeof(name), path, gens[i]);
		if (stat(name, &st) == 0 && st.st_mtime > last)
			last = st.st_mtime;
	}
	return last;
}

int
state_load(const char *path, struct state_info *si)
{
	static uint64_t gens[JOURNALS_MAX];
	struct rec_hdr h;
	struct load ld;
	struct fix_arg fa;
	size_t n, i, replayed = 0;
	time_t last = 0, mtime;
	int snap, rc = 0;
	char name[PATH_MAX];

	memset(si, 0, sizeof(*si));
	memset(&ld, 0, sizeof(ld));
	memset(&h, 0, sizeof(h));
	fa.now = (uint32_t)(mpd_now() / 1000);
	n = list_journals(path, gens, JOURNALS_MAX);
	last = last_write(path, gens, n);
	ld.downtime = last != 0 && (uint32_t)last < fa.now ?
	    fa.now - (uint32_t)last : 0;
	if ((snap = load_snapshot(path, &h, &ld)) != 0)
		h.gen = 0;
	for (i = 0; i < n; i++) {
		if (gens[i] < h.gen) {
			/* held by the snapshot: a crash before its removal */
			state_journal_name(name, sizeof(name), path, gens[i]);
			unlink(name);
			continue;
		}
		replayed++;
		if (replay_journal(path, gens[i], &ld, &mtime) != 0)
			rc = -1;
	}
	si->next_gen = h.gen > 0 ? h.gen : 1;
	if (n > 0 && gens[n - 1] + 1 > si->next_gen)
		si->next_gen = gens[n - 1] + 1;
	si->clean = snap == 0 && h.clean && replayed == 0;
	si->epoch = si->clean ? h.epoch : 0;
	si->need_snapshot = replayed > 0 || snap < 0 || rc < 0;
	fa.clean = si->clean;
	fa.expired = 0;
	registry_foreach(fix_reg, &fa);
	if (ld.n[LOAD_NO_LISTENER] > 0)
		log_warnx("state: %zu registrations dropped: no listener for "
		    "their address family any more", ld.n[LOAD_NO_LISTENER]);
	if (ld.n[LOAD_RENAMED] > 0)
		log_warnx("state: %zu registrations dropped: their user name "
		    "is written differently under the current [names] rules",
		    ld.n[LOAD_RENAMED]);
	if (ld.n[LOAD_NO_KEY] > 0)
		log_warnx("state: %zu registrations dropped: the key their "
		    "token came from is gone", ld.n[LOAD_NO_KEY]);
	if (ld.n[LOAD_TABLE_FULL] > 0)
		log_warnx("state: %zu registrations dropped: [limits] "
		    "max_registrations (%u) reached", ld.n[LOAD_TABLE_FULL],
		    mpd->cfg.max_registrations);
	log_info("state: %zu registrations restored from %s and %zu "
	    "journals (%zu records), %zu expired, down %" PRIu32 " s, %s",
	    registry_count(), path, replayed, ld.records, fa.expired,
	    ld.downtime, si->clean ? "clean shutdown" : snap == 1 &&
	    replayed == 0 ? "nothing saved before" :
	    "no clean shutdown: new restart epoch, counts marked inexact");
	return snap < 0 ? -1 : rc;
}
