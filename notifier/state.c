/*
 * state.c: registrations kept across restarts.
 *
 * A text file, one registration a line, written to a temporary file,
 * fsync'ed, renamed over the old one and the directory fsync'ed, so a crash
 * leaves either the old or the new file.  The first line names the format
 * and its version, the last gives the count, so truncation is noticed.  A
 * file that does not read back whole (corrupt, truncated, another version)
 * is moved aside as FILE.corrupt-YYYYmmddTHHMMSS (UTC) and reported; the
 * daemon then starts empty instead of failing again at every start.
 *
 *	mailpush-state 2
 *	reg ID USER DEVICE KEYID HWM ADDR PORT LISTENER CREATED EXPIRES
 *	    LASTPUSH LASTACK SEQ TOTAL SENT ACKED FAILURES STATE CONTEXT
 *	    MAILBOXES
 *	end COUNT
 *
 * ID in hex; USER normalised (never contains a space); DEVICE the 16-byte
 * device id in hex; KEYID the id of the key its token came from; HWM the
 * last request timestamp (ms) seen from it, so no request captured before
 * a restart can be replayed after it; ADDR numeric;
 * LISTENER the listen address it came in on, "-" if that is closed; times
 * in seconds since the epoch, 0 for never; SEQ the last push sequence
 * number; TOTAL, SENT and ACKED the message totals counted, carried by the
 * last push, and acknowledged; STATE 0 active, 1 pushing, 2 unreachable;
 * CONTEXT in hex or "-"; MAILBOXES comma-separated hex names or "-" for
 * all.  Entries that have expired are not written, and skipped on reading.
 * A registration read back is marked REG_F_RESTORED: its pushes say that
 * their counts may be inexact (events after the last save are lost) until
 * the client acknowledges one.  The restart epoch is new at every start.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"
#include "mailpushd.h"
#include "user.h"

#define STATE_MAGIC	"mailpush-state 2"
#define STATE_FIELDS	21

struct save_arg {
	FILE	*fp;
	size_t	 count;
	uint32_t now;
};

static void
put_hex(FILE *fp, const uint8_t *p, size_t len)
{
	char hex[2 * MP_CONTEXT_MAX + 1];

	if (len == 0) {
		fputc('-', fp);
		return;
	}
	sodium_bin2hex(hex, sizeof(hex), p, len);
	fputs(hex, fp);
}

static void
save_reg(struct reg *r, void *arg)
{
	struct save_arg *a = arg;
	char host[INET6_ADDRSTRLEN];
	const struct mp_listener *l = &mpd->listeners[r->listener];
	char dev[2 * PROTO_DEVICE_LEN + 1];
	size_t i;

	if (r->expires <= a->now)
		return;
	if (r->addr.sa.sa_family == AF_INET)
		inet_ntop(AF_INET, &r->addr.sin.sin_addr, host, sizeof(host));
	else
		inet_ntop(AF_INET6, &r->addr.sin6.sin6_addr, host, sizeof(host));
	sodium_bin2hex(dev, sizeof(dev), r->device, PROTO_DEVICE_LEN);
	fprintf(a->fp, "reg %08" PRIx32 " %s %s %u %" PRIu64 " %s %u %s %"
	    PRIu32 " %" PRIu32 " %" PRIu64 " %" PRIu32 " %" PRIu32 " %" PRIu32 " %" PRIu32
	    " %" PRIu32 " %" PRIu32 " %u ",
	    r->id, r->user->name, dev, (unsigned)r->key_id, r->hwm, host,
	    ntohs(r->addr.sa.sa_family == AF_INET ? r->addr.sin.sin_port :
	    r->addr.sin6.sin6_port),
	    (size_t)r->listener < mpd->n_listeners && l->in_use ?
	    l->conf.text : "-",
	    r->created, r->expires, r->last_push_ms / 1000, r->last_ack,
	    r->seq, r->total, r->sent_total, r->acked_total, r->failures,
	    (unsigned)r->state);
	put_hex(a->fp, r->ctx, r->ctx_len);
	fputc(' ', a->fp);
	if (r->mailboxes == NULL)
		fputc('-', a->fp);
	for (i = 0; r->mailboxes != NULL && i < r->mailboxes->n; i++) {
		if (i > 0)
			fputc(',', a->fp);
		put_hex(a->fp, (const uint8_t *)r->mailboxes->names[i],
		    strlen(r->mailboxes->names[i]));
	}
	fputc('\n', a->fp);
	a->count++;
}

int
state_save(const char *path)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	struct save_arg a;
	int fd, dfd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		log_error("state file name %s too long", path);
		return -1;
	}
	/* a left-over temporary file (a crash while saving) goes first */
	if (unlink(tmp) == -1 && errno != ENOENT) {
		log_warn("cannot write state file: unlink %s", tmp);
		return -1;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1) {
		log_warn("cannot write state file %s", tmp);
		return -1;
	}
	if ((a.fp = fdopen(fd, "w")) == NULL) {
		log_warn("cannot write state file %s", tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	a.count = 0;
	a.now = (uint32_t)(mpd->now_ms / 1000);
	fprintf(a.fp, "%s\n", STATE_MAGIC);
	registry_foreach(save_reg, &a);
	fprintf(a.fp, "end %zu\n", a.count);
	if (fflush(a.fp) != 0 || ferror(a.fp) || fsync(fd) != 0) {
		log_warn("cannot write state file %s", tmp);
		fclose(a.fp);
		unlink(tmp);
		return -1;
	}
	if (fclose(a.fp) != 0) {
		log_warn("cannot write state file %s", tmp);
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) == -1) {
		log_warn("cannot write state file: rename %s to %s", tmp,
		    path);
		unlink(tmp);
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	if ((dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC))
	    != -1) {
		if (fsync(dfd) == -1)
			log_warn("state file %s: fsync of its directory", path);
		close(dfd);
	}
	log_debug("state saved: %zu registrations in %s", a.count, path);
	return 0;
}

static int
get_hex(const char *s, uint8_t *out, size_t max, size_t *len)
{
	size_t n = strlen(s);

	if (strcmp(s, "-") == 0) {
		*len = 0;
		return 0;
	}
	if (n == 0 || n % 2 != 0 || n / 2 > max)
		return -1;
	if (sodium_hex2bin(out, max, s, n, NULL, len, NULL) != 0 ||
	    *len != n / 2)
		return -1;
	return 0;
}

/* A decimal number of at most 32 bits (64 if wide), digits only. */
static int
get_num(const char *s, int wide, uint64_t *v)
{
	unsigned long long n;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (*end != '\0' || errno != 0 || (!wide && n > UINT32_MAX))
		return -1;
	*v = n;
	return 0;
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

enum { LOAD_OK, LOAD_EXPIRED, LOAD_NO_LISTENER, LOAD_TABLE_FULL,
    LOAD_RENAMED, LOAD_NO_KEY };

/* Parse one "reg" line; returns LOAD_*, or -1 with *why on error. */
static int
load_line(char *line, uint32_t now, const char **why)
{
	static struct mp_request rq;	/* 5 kB: keep it off the stack */
	char *f[STATE_FIELDS + 1], *save = NULL, *tok;
	union mp_addr addr;
	uint8_t ctx[MP_CONTEXT_MAX];
	size_t nf = 0, ctx_len, i;
	/* CREATED EXPIRES LASTPUSH LASTACK SEQ TOTAL SENT ACKED FAILURES
	 * STATE */
	uint64_t v[10], id, port, keyid, hwm;
	uint8_t device[PROTO_DEVICE_LEN];
	size_t dlen;
	struct mp_user *u;
	struct reg *r;
	const char *uwhy;
	char user[MP_USER_MAX + 1], *end;
	int listener, renamed;

	for (tok = strtok_r(line, " ", &save); tok != NULL &&
	    nf < STATE_FIELDS + 1; tok = strtok_r(NULL, " ", &save))
		f[nf++] = tok;
	if (nf != STATE_FIELDS || strcmp(f[0], "reg") != 0) {
		*why = "not a registration line of 21 fields";
		return -1;
	}
	errno = 0;
	id = strtoull(f[1], &end, 16);
	if (strlen(f[1]) != 8 || strspn(f[1], "0123456789abcdef") != 8 ||
	    *end != '\0' || errno != 0 || id == 0) {
		*why = "bad registration id";
		return -1;
	}
	if (user_normalize(&mpd->cfg.names, f[2], strlen(f[2]), user, &uwhy)
	    != 0) {
		*why = "bad user name";
		return -1;
	}
	/* saved under other [names] rules: dropped once the line is read */
	renamed = strcmp(user, f[2]) != 0;
	if (strlen(f[3]) != 2 * PROTO_DEVICE_LEN ||
	    get_hex(f[3], device, sizeof(device), &dlen) != 0 ||
	    dlen != PROTO_DEVICE_LEN) {
		*why = "bad device id";
		return -1;
	}
	if (get_num(f[4], 0, &keyid) != 0 || keyid > 255 ||
	    get_num(f[5], 1, &hwm) != 0) {
		*why = "bad key id or timestamp";
		return -1;
	}
	memset(&addr, 0, sizeof(addr));
	if (get_num(f[7], 0, &port) != 0 || port == 0 || port > 65535) {
		*why = "bad port";
		return -1;
	}
	if (inet_pton(AF_INET, f[6], &addr.sin.sin_addr) == 1) {
		addr.sin.sin_family = AF_INET;
		addr.sin.sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, f[6], &addr.sin6.sin6_addr) == 1) {
		addr.sin6.sin6_family = AF_INET6;
		addr.sin6.sin6_port = htons((uint16_t)port);
	} else {
		*why = "bad address";
		return -1;
	}
	for (i = 0; i < 10; i++)
		if (get_num(f[9 + i], i == 2, &v[i]) != 0) {
			*why = "bad number";
			return -1;
		}
	/* created <= expires; acked <= sent <= total; a known state */
	if (v[0] > v[1] || v[7] > v[6] || v[6] > v[5] || v[9] > REG_UNREACHABLE ||
	    v[2] > UINT64_MAX / 1000) {
		*why = "inconsistent times, counters or state";
		return -1;
	}
	if (get_hex(f[19], ctx, sizeof(ctx), &ctx_len) != 0) {
		*why = "bad context";
		return -1;
	}
	memset(&rq, 0, sizeof(rq));
	if (strcmp(f[20], "-") != 0) {
		char *m, *msave = NULL;

		for (m = strtok_r(f[20], ",", &msave); m != NULL;
		    m = strtok_r(NULL, ",", &msave)) {
			char *name = rq.mailboxes[rq.n_mailboxes].name;
			size_t ml;

			if (rq.n_mailboxes == MP_MAILBOXES_MAX ||
			    get_hex(m, (uint8_t *)name, MP_MAILBOX_MAX, &ml)
			    != 0 || ml == 0 || memchr(name, '\0', ml) != NULL) {
				*why = "bad mailbox list";
				return -1;
			}
			name[ml] = '\0';
			rq.mailboxes[rq.n_mailboxes++].len = (uint8_t)ml;
		}
		if (rq.n_mailboxes == 0) {
			*why = "bad mailbox list";
			return -1;
		}
	}
	if (v[1] <= now)
		return LOAD_EXPIRED;	/* expired while we were down */
	if (renamed)
		return LOAD_RENAMED;
	if (mpd_key((unsigned)keyid) == NULL)
		return LOAD_NO_KEY;
	if (registry_find((uint32_t)id) != NULL) {
		*why = "duplicate registration id";
		return -1;
	}
	if ((u = registry_user(user, 0)) != NULL &&
	    registry_device(u, device) != NULL) {
		*why = "duplicate device of one user";
		return -1;
	}
	if ((listener = find_listener(f[8], addr.sa.sa_family)) == -1)
		return LOAD_NO_LISTENER;
	if (registry_count() >= mpd->cfg.max_registrations)
		return LOAD_TABLE_FULL;
	u = registry_user(user, 1);
	r = registry_add(u, &addr, listener, ctx, (uint16_t)ctx_len,
	    0, (uint32_t)id);
	registry_set_mailboxes(r, &rq);
	memcpy(r->device, device, PROTO_DEVICE_LEN);
	r->key_id = (uint8_t)keyid;
	r->hwm = hwm;
	r->flags |= REG_F_RESTORED;
	r->created = (uint32_t)v[0];
	r->expires = (uint32_t)v[1];
	r->last_push_ms = v[2] * 1000;
	r->last_ack = (uint32_t)v[3];
	r->seq = (uint32_t)v[4];
	r->total = (uint32_t)v[5];
	r->sent_total = (uint32_t)v[6];
	r->acked_total = (uint32_t)v[7];
	r->failures = (uint32_t)v[8];
	r->state = (uint8_t)v[9];
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
	if (r->total != r->sent_total) {
		/* as soon as min_push_interval since the last push allows */
		r->push_at = r->last_push_ms + mpd->cfg.min_push_interval;
		if (r->push_at <= mpd->now_ms)
			r->push_at = mpd->now_ms + 1;
	}
	registry_schedule(r);
	return LOAD_OK;
}

/* FILE.corrupt-YYYYmmddTHHMMSS, and -1, -2... if that is taken. */
static void
move_aside(const char *path, const char *why, int lineno)
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
		log_error("state file %s line %d: %s; moved aside to %s, "
		    "starting with no registrations", path, lineno, why, aside);
	else
		log_error("state file %s line %d: %s; cannot move it aside "
		    "(%s), starting with no registrations", path, lineno, why,
		    strerror(errno));
}

static void
drop_all(struct reg *r, void *arg)
{
	(void)arg;
	registry_remove(r, "state file rejected");
}

int
state_load(const char *path)
{
	FILE *fp;
	struct stat st;
	char *line = NULL;
	size_t cap = 0, count = 0, n_load[6] = { 0, 0, 0, 0, 0, 0 };
	ssize_t n;
	int fd, lineno = 0, rc, ended = 0;
	const char *why = NULL;
	uint32_t now = (uint32_t)(mpd_now() / 1000);

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		if (errno == ENOENT) {
			log_info("state: no state file %s yet, starting with "
			    "no registrations", path);
			return 0;
		}
		log_error("cannot read state file %s: %s; starting with no "
		    "registrations", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		log_error("state file %s is not a regular file; starting with "
		    "no registrations", path);
		close(fd);
		return -1;
	}
	/* a file somebody else could have written is not believed */
	if (st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
		log_error("state file %s is owned by uid %ld with mode %04o; "
		    "it must be owned by uid %ld (the user mailpushd runs as) "
		    "and writable by nobody else: not loading it, starting "
		    "with no registrations (chown and chmod 600 it, or remove "
		    "it)", path, (long)st.st_uid, (unsigned)(st.st_mode & 07777),
		    (long)geteuid());
		close(fd);
		return -1;
	}
	if ((fp = fdopen(fd, "r")) == NULL) {
		log_error("cannot read state file %s: %s; starting with no "
		    "registrations", path, strerror(errno));
		close(fd);
		return -1;
	}
	while ((n = getline(&line, &cap, fp)) != -1) {
		lineno++;
		if (line[n - 1] != '\n') {
			why = "truncated line";
			break;
		}
		line[--n] = '\0';
		if ((size_t)n != strlen(line)) {
			why = "NUL byte in a line";
			break;
		}
		if (lineno == 1) {
			if (strcmp(line, STATE_MAGIC) != 0) {
				why = strncmp(line, "mailpush-state ", 15) == 0 ?
				    "another version of the state file format "
				    "(this mailpushd reads version 2)" :
				    "not a mailpush state file";
				break;
			}
			continue;
		}
		if (ended) {
			why = "data after the end line";
			break;
		}
		if (strncmp(line, "end ", 4) == 0) {
			uint64_t c;

			if (get_num(line + 4, 1, &c) != 0 || c != count) {
				why = "entry count does not match the end line";
				break;
			}
			ended = 1;
			continue;
		}
		if ((rc = load_line(line, now, &why)) < 0)
			break;
		count++;
		n_load[rc]++;
	}
	free(line);
	if (why == NULL && ferror(fp))
		why = strerror(errno);
	fclose(fp);
	if (why == NULL && !ended)
		why = lineno == 0 ? "empty file" : "truncated (no end line)";
	if (why != NULL) {
		registry_foreach(drop_all, NULL);
		move_aside(path, why, lineno);
		mpd->state_dirty = 1;
		return -1;
	}
	if (n_load[LOAD_NO_LISTENER] > 0)
		log_warnx("state: %zu registrations dropped: no listener for "
		    "their address family any more",
		    n_load[LOAD_NO_LISTENER]);
	if (n_load[LOAD_RENAMED] > 0)
		log_warnx("state: %zu registrations dropped: their user name "
		    "is written differently under the current [names] rules",
		    n_load[LOAD_RENAMED]);
	if (n_load[LOAD_NO_KEY] > 0)
		log_warnx("state: %zu registrations dropped: the key their "
		    "token came from is gone", n_load[LOAD_NO_KEY]);
	if (n_load[LOAD_TABLE_FULL] > 0)
		log_warnx("state: %zu registrations dropped: [limits] "
		    "max_registrations (%u) reached", n_load[LOAD_TABLE_FULL],
		    mpd->cfg.max_registrations);
	log_info("state: %zu registrations restored from %s, %zu expired "
	    "skipped", n_load[LOAD_OK], path, n_load[LOAD_EXPIRED]);
	/* rewrite at the next save if anything was left out */
	mpd->state_dirty = count != n_load[LOAD_OK];
	return 0;
}
