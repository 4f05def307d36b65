/*
 * health.c: what `mailpushctl status' checks, so that it can serve as a
 * monitoring check (see mailpushctl(8), HEALTH CHECKS).
 *
 * Each socket the daemon made is remembered (device and inode of the file
 * bind(2) created) and checked again at every status request: still there,
 * still a socket, still the one the daemon made, still of the configured
 * mode.  The state file is checked too: its directory writable by the
 * daemon, the file a regular one of the daemon's uid and mode 0600, still
 * there once it was saved, and the last save successful.  Each
 * problem is one line that says what is wrong, what it breaks and what to
 * do.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "log.h"
#include "mailpushd.h"

#define HEALTH_SOCKETS_MAX	8

struct health_sock {
	const char	*what;		/* "event socket" */
	const char	*breaks;	/* what a missing one stops */
	char		 path[CONFIG_SOCKPATH_MAX];
	unsigned	 mode;
	dev_t		 dev;
	ino_t		 ino;
	int		 known;		/* dev and ino were read at start */
};

static struct health_sock	health_socks[HEALTH_SOCKETS_MAX];
static size_t			health_n;
static int			health_save_errno;	/* 0: last save worked */
static uint64_t			health_save_failed_ms, health_saved_ms;

void
health_watch(const char *what, const char *breaks, const char *path,
    unsigned mode)
{
	struct health_sock *h;
	struct stat st;

	if (health_n == HEALTH_SOCKETS_MAX || path[0] == '\0')
		return;
	h = &health_socks[health_n++];
	h->what = what;
	h->breaks = breaks;
	snprintf(h->path, sizeof(h->path), "%s", path);
	h->mode = mode & 07777;
	h->known = lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
	if (h->known) {
		h->dev = st.st_dev;
		h->ino = st.st_ino;
	}
}

void
health_saved(int err)
{
	if (err == 0) {
		health_save_errno = 0;
		health_saved_ms = mpd->now_ms;
	} else {
		health_save_errno = err;
		health_save_failed_ms = mpd->now_ms;
	}
}

/* A socket's condition in a word or two ("" when it is fine). */
const char *
health_socket_state(const char *path)
{
	struct stat st;
	size_t i;

	for (i = 0; i < health_n; i++) {
		if (strcmp(health_socks[i].path, path) != 0)
			continue;
		if (lstat(path, &st) == -1)
			return errno == ENOENT ? " (missing)" : " (unreadable)";
		if (!S_ISSOCK(st.st_mode))
			return " (not a socket)";
		if (health_socks[i].known && (st.st_dev != health_socks[i].dev
		    || st.st_ino != health_socks[i].ino))
			return " (replaced)";
		if ((st.st_mode & 07777) != health_socks[i].mode)
			return " (wrong mode)";
	}
	return "";
}

static void
problem(struct evbuffer *out, int json, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
problem(struct evbuffer *out, int json, size_t *n, const char *fmt, ...)
{
	char line[1024];
	const char *s;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (!json) {
		evbuffer_add_printf(out, "problem: %s\n", line);
	} else {
		/* paths and error texts: escape what JSON needs escaped */
		evbuffer_add_printf(out, "%s\"", *n > 0 ? "," : "");
		for (s = line; *s != '\0'; s++) {
			unsigned char c = (unsigned char)*s;

			if (c == '"' || c == '\\')
				evbuffer_add_printf(out, "\\%c", c);
			else if (c < 0x20 || c == 0x7f)
				evbuffer_add_printf(out, "\\u%04x", c);
			else
				evbuffer_add(out, s, 1);
		}
		evbuffer_add(out, "\"", 1);
	}
	(*n)++;
}

static void
check_socket(const struct health_sock *h, struct evbuffer *out, int json,
    size_t *n)
{
	struct stat st;

	if (lstat(h->path, &st) == -1) {
		if (errno == ENOENT)
			problem(out, json, n, "%s %s is missing (removed since "
			    "mailpushd started): %s; restart mailpushd to make "
			    "it again", h->what, h->path, h->breaks);
		else
			problem(out, json, n, "%s %s cannot be checked: %s",
			    h->what, h->path, strerror(errno));
		return;
	}
	if (!S_ISSOCK(st.st_mode)) {
		problem(out, json, n, "%s %s is not a socket any more: %s; "
		    "remove it and restart mailpushd", h->what, h->path,
		    h->breaks);
		return;
	}
	if (h->known && (st.st_dev != h->dev || st.st_ino != h->ino)) {
		problem(out, json, n, "%s %s was replaced by another socket "
		    "since mailpushd started (another instance?): %s; stop "
		    "the other and restart mailpushd", h->what, h->path,
		    h->breaks);
		return;
	}
	if ((st.st_mode & 07777) != h->mode)
		problem(out, json, n, "%s %s has mode %04o, not the configured "
		    "%04o: chmod %o %s, or restart mailpushd", h->what,
		    h->path, (unsigned)(st.st_mode & 07777), h->mode, h->mode,
		    h->path);
}

static void
check_state(struct evbuffer *out, int json, size_t *n)
{
	const char *path = mpd->cfg.state_file;
	char dir[PATH_MAX], *slash;
	struct stat st;
	uint64_t now = mpd->now_ms;

	if (path[0] == '\0')
		return;
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL) {
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (access(dir, W_OK | X_OK) == -1)
			problem(out, json, n, "state directory %s is not "
			    "writable by uid %ld (%s): registrations will not "
			    "survive a restart; make it writable by the "
			    "daemon's user", dir, (long)geteuid(),
			    strerror(errno));
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISREG(st.st_mode))
			problem(out, json, n, "state file %s is not a regular "
			    "file: registrations cannot be saved; remove it",
			    path);
		else if (st.st_uid != geteuid())
			problem(out, json, n, "state file %s is owned by uid "
			    "%ld, not by uid %ld that mailpushd runs as: it "
			    "will not be loaded at the next start; chown it",
			    path, (long)st.st_uid, (long)geteuid());
		else if (st.st_mode & 077)
			problem(out, json, n, "state file %s has mode %04o: "
			    "it holds every client's address and context; "
			    "chmod 600 it", path,
			    (unsigned)(st.st_mode & 07777));
	} else if (errno == ENOENT && health_saved_ms != 0 &&
	    health_save_errno == 0)
		problem(out, json, n, "state file %s is missing (removed since "
		    "it was saved %" PRIu64 " s ago): a restart now would "
		    "lose every registration; it is written again at the "
		    "next change", path, (now - health_saved_ms) / 1000);
	if (health_save_errno != 0) {
		char when[64];

		if (health_saved_ms == 0)
			snprintf(when, sizeof(when), "never saved since "
			    "mailpushd started");
		else
			snprintf(when, sizeof(when), "last saved %" PRIu64
			    " s ago", (now - health_saved_ms) / 1000);
		problem(out, json, n, "state file %s is not being saved (%s, "
		    "%" PRIu64 " s ago; %s): registrations made since then "
		    "are lost on a restart", path, strerror(health_save_errno),
		    (now - health_save_failed_ms) / 1000, when);
	}
}

/*
 * The problems, one "problem: ..." line each in text, or the members of a
 * JSON array (without the brackets).  Returns how many.
 */
size_t
health_report(struct evbuffer *out, int json)
{
	size_t i, n = 0;

	for (i = 0; i < health_n; i++)
		check_socket(&health_socks[i], out, json, &n);
	check_state(out, json, &n);
	return n;
}
