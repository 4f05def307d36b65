/*
 * state.c: registrations kept across restarts.
 *
 * A text file, one registration a line, written to a temporary file,
 * fsync'ed and renamed over the old one, so a crash leaves either the old
 * or the new file.  The first line names the format and its version, the
 * last gives the count, so truncation is noticed.  A file that does not
 * read back whole is moved aside with a time stamp and reported; the daemon
 * then starts empty instead of failing again at every start.
 *
 *	mailpush-state 1
 *	reg ID USER ADDR PORT LISTENER CREATED EXPIRES LASTACK SEQ TOTAL
 *	    ACKED FAILURES CONTEXT MAILBOXES
 *	end COUNT
 *
 * ID in hex; ADDR numeric; LISTENER the listen address it came in on;
 * times in seconds since the epoch; CONTEXT in hex or "-"; MAILBOXES
 * comma-separated hex names or "-" for all.
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

#define STATE_MAGIC	"mailpush-state 1"

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
	size_t i;

	if (r->expires <= a->now)
		return;
	if (r->addr.sa.sa_family == AF_INET)
		inet_ntop(AF_INET, &r->addr.sin.sin_addr, host, sizeof(host));
	else
		inet_ntop(AF_INET6, &r->addr.sin6.sin6_addr, host, sizeof(host));
	fprintf(a->fp, "reg %08" PRIx32 " %s %s %u %s %" PRIu32 " %" PRIu32
	    " %" PRIu32 " %" PRIu32 " %" PRIu32 " %" PRIu32 " %" PRIu32 " ",
	    r->id, r->user->name, host,
	    ntohs(r->addr.sa.sa_family == AF_INET ? r->addr.sin.sin_port :
	    r->addr.sin6.sin6_port), l->in_use ? l->conf.text : "-",
	    r->created, r->expires, r->last_ack, r->seq, r->total,
	    r->acked_total, r->failures);
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
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1) {
		log_warn("cannot write state file %s", tmp);
		return -1;
	}
	if ((a.fp = fdopen(fd, "w")) == NULL) {
		log_warn("fdopen %s", tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	a.count = 0;
	a.now = (uint32_t)(mpd->now_ms / 1000);
	fprintf(a.fp, "%s\n", STATE_MAGIC);
	registry_foreach(save_reg, &a);
	fprintf(a.fp, "end %zu\n", a.count);
	if (fflush(a.fp) != 0 || fsync(fd) != 0) {
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
		log_warn("cannot rename %s to %s", tmp, path);
		unlink(tmp);
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	if ((dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC))
	    != -1) {
		fsync(dfd);
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

static int
find_listener(const char *text, int family)
{
	size_t i;

	for (i = 0; i < mpd->n_listeners; i++)
		if (mpd->listeners[i].in_use &&
		    strcmp(mpd->listeners[i].conf.text, text) == 0)
			return (int)i;
	for (i = 0; i < mpd->n_listeners; i++)
		if (mpd->listeners[i].in_use &&
		    mpd->listeners[i].conf.ss.ss_family == family)
			return (int)i;
	return -1;
}

/* Parse one "reg" line; returns 0, 1 for an entry skipped, -1 on error. */
static int
load_line(char *line, uint32_t now, const char **why)
{
	char *f[16], *save = NULL, *tok;
	static struct mp_request rq;
	union mp_addr addr;
	uint8_t ctx[MP_CONTEXT_MAX];
	size_t nf = 0, ctx_len, i;
	unsigned long v[7];
	unsigned long port, id;
	char *end;
	struct mp_user *u;
	struct reg *r;
	const char *uwhy;
	char user[MP_USER_MAX + 1];
	int listener;

	for (tok = strtok_r(line, " ", &save); tok != NULL && nf < 16;
	    tok = strtok_r(NULL, " ", &save))
		f[nf++] = tok;
	if (nf != 15 || tok != NULL || strcmp(f[0], "reg") != 0) {
		*why = "not a registration line of 15 fields";
		return -1;
	}
	errno = 0;
	id = strtoul(f[1], &end, 16);
	if (*end != '\0' || id == 0 || id > UINT32_MAX || errno) {
		*why = "bad registration id";
		return -1;
	}
	if (user_normalize(&mpd->cfg.names, f[2], strlen(f[2]), user, &uwhy)
	    != 0 || strcmp(user, f[2]) != 0) {
		*why = "bad user name";
		return -1;
	}
	memset(&addr, 0, sizeof(addr));
	port = strtoul(f[4], &end, 10);
	if (*end != '\0' || port == 0 || port > 65535) {
		*why = "bad port";
		return -1;
	}
	if (inet_pton(AF_INET, f[3], &addr.sin.sin_addr) == 1) {
		addr.sin.sin_family = AF_INET;
		addr.sin.sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, f[3], &addr.sin6.sin6_addr) == 1) {
		addr.sin6.sin6_family = AF_INET6;
		addr.sin6.sin6_port = htons((uint16_t)port);
	} else {
		*why = "bad address";
		return -1;
	}
	for (i = 0; i < 7; i++) {
		errno = 0;
		v[i] = strtoul(f[6 + i], &end, 10);
		if (*end != '\0' || errno || v[i] > UINT32_MAX ||
		    !(*f[6 + i] >= '0' && *f[6 + i] <= '9')) {
			*why = "bad number";
			return -1;
		}
	}
	if (v[5] > v[4] || v[0] > v[1]) {
		*why = "inconsistent counters or times";
		return -1;
	}
	if (get_hex(f[13], ctx, sizeof(ctx), &ctx_len) != 0) {
		*why = "bad context";
		return -1;
	}
	memset(&rq, 0, sizeof(rq));
	if (strcmp(f[14], "-") != 0) {
		char *m, *msave = NULL;

		for (m = strtok_r(f[14], ",", &msave); m != NULL;
		    m = strtok_r(NULL, ",", &msave)) {
			size_t ml;

			if (rq.n_mailboxes == MP_MAILBOXES_MAX ||
			    get_hex(m, (uint8_t *)rq.mailboxes[rq.n_mailboxes].name,
			    MP_MAILBOX_MAX, &ml) != 0 || ml == 0 ||
			    memchr(rq.mailboxes[rq.n_mailboxes].name, '\0', ml)) {
				*why = "bad mailbox list";
				return -1;
			}
			rq.mailboxes[rq.n_mailboxes].name[ml] = '\0';
			rq.mailboxes[rq.n_mailboxes++].len = (uint8_t)ml;
		}
	}
	if (v[1] <= now)
		return 1;	/* expired while we were down */
	if (registry_find((uint32_t)id) != NULL) {
		*why = "duplicate registration id";
		return -1;
	}
	if ((listener = find_listener(f[5], addr.sa.sa_family)) == -1) {
		log_warnx("state: registration %s of %s: no listener for its "
		    "address family any more; dropped", f[1], user);
		return 1;
	}
	if (registry_count() >= mpd->cfg.max_registrations)
		return 1;
	u = registry_user(user, 1);
	r = registry_add(u, &addr, listener, ctx, (uint16_t)ctx_len,
	    0, (uint32_t)id);
	registry_set_mailboxes(r, &rq);
	r->created = (uint32_t)v[0];
	r->expires = (uint32_t)v[1];
	r->last_ack = (uint32_t)v[2];
	r->seq = (uint32_t)v[3];
	r->total = (uint32_t)v[4];
	r->acked_total = r->sent_total = (uint32_t)v[5];
	r->failures = (uint32_t)v[6];
	/* messages never acknowledged: push them again soon */
	if (r->total != r->acked_total)
		r->push_at = mpd->now_ms + 1;
	registry_schedule(r);
	return 0;
}

static void
move_aside(const char *path, const char *why, int lineno)
{
	char aside[PATH_MAX + 32], stamp[32];
	time_t t = time(NULL);

	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", gmtime(&t));
	snprintf(aside, sizeof(aside), "%s.corrupt-%s", path, stamp);
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
	char *line = NULL;
	size_t cap = 0, count = 0, loaded = 0, skipped = 0;
	ssize_t n;
	int lineno = 0, rc;
	const char *why = NULL;
	uint32_t now = (uint32_t)(mpd->now_ms / 1000);
	int ended = 0;

	if ((fp = fopen(path, "r")) == NULL) {
		if (errno == ENOENT)
			return 0;
		log_warn("cannot read state file %s", path);
		return -1;
	}
	while ((n = getline(&line, &cap, fp)) != -1) {
		lineno++;
		if (n == 0 || line[n - 1] != '\n') {
			why = "truncated line";
			break;
		}
		line[--n] = '\0';
		if (lineno == 1) {
			if (strcmp(line, STATE_MAGIC) != 0) {
				why = "not a mailpush state file of version 1";
				break;
			}
			continue;
		}
		if (ended) {
			why = "data after the end line";
			break;
		}
		if (strncmp(line, "end ", 4) == 0) {
			char *end;
			unsigned long c = strtoul(line + 4, &end, 10);

			if (*end != '\0' || c != count) {
				why = "entry count does not match the end line";
				break;
			}
			ended = 1;
			continue;
		}
		if ((rc = load_line(line, now, &why)) < 0)
			break;
		count++;
		if (rc == 0)
			loaded++;
		else
			skipped++;
	}
	free(line);
	if (ferror(fp) && why == NULL)
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
	log_info("state: %zu registrations restored from %s, %zu expired",
	    loaded, path, skipped);
	mpd->state_dirty = 0;
	return 0;
}
