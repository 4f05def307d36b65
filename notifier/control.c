/*
 * control.c: the control socket for mailpushctl(8).
 *
 * A UNIX stream socket (unixsock.c: a live instance refused, only a stale
 * socket removed, born with its final mode, then given the configured
 * group).  Who may connect is decided by those permissions; the peer's
 * uid (SO_PEERCRED) is logged.  One request line
 * per connection:
 *
 *	[-j] status | [-j|-p] stats | list [USER] | drop USER [ID] | reload
 *
 * (the commands are control_cmd.c) answered by "ok" or "error: MESSAGE" on the first line, then the body
 * (text, JSON with -j, the Prometheus format with -p), then the daemon
 * closes the connection.  A status that found problems (health.c) is
 * answered "warn: N problems" instead of "ok", with the body.
 * When accept() runs out of descriptors, accepting pauses for a second.
 *
 * Slow clients cannot lock the socket: each connection has a total
 * deadline (CONTROL_DEADLINE_MS from accept to the last byte written, not
 * an idle timeout that every byte renews), and when all slots are taken a
 * new connection closes the oldest one instead of being turned away, so
 * mailpushctl, which sends its request as it connects, is always served.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "journal.h"
#include "log.h"
#include "mailpushd.h"
#include "user.h"

#define CONTROL_LINE_MAX	512
#define CONTROL_CLIENTS_MAX	32
#define CONTROL_DEADLINE_MS	2000

struct ctl_conn {
	struct bufferevent	*bev;		/* NULL: a free slot */
	struct event		*deadline;
	uint64_t		 since;		/* accept order */
};

static int		 ctl_fd = -1;
static struct event	*ctl_ev, *ctl_pause;
static char		 ctl_path[CONFIG_SOCKPATH_MAX];
static int		 ctl_clients;
static uint64_t		 ctl_serial, ctl_warned;
static struct ctl_conn	 ctl_conns[CONTROL_CLIENTS_MAX];	/* open ones */

static void control_accept(evutil_socket_t, short, void *);
static void control_free(struct bufferevent *);

int
control_open(const struct mp_config *cfg, uid_t uid, gid_t gid)
{
	struct usock u;
	int fd;

	if (cfg->control_socket_group[0] != '\0') {
		struct group *gr = getgrnam(cfg->control_socket_group);

		if (gr == NULL) {
			log_error("%s: [mailpushd] control_socket_group: no "
			    "such group \"%s\"", cfg->path,
			    cfg->control_socket_group);
			return -1;
		}
		gid = gr->gr_gid;
	}
	memset(&u, 0, sizeof(u));
	u.path = cfg->control_socket;
	u.what = "control socket";
	u.live_msg = "another mailpushd is running";
	u.not_socket = "not removing it";
	u.type = SOCK_STREAM;
	u.mode = cfg->control_socket_mode;
	u.uid = uid;
	u.gid = gid;
	u.unlink_must = 1;
	u.chown = 2;		/* the configured group, root or not */
	u.backlog = 16;
	if ((fd = usock_open(&u)) == -1)
		return -1;
	ctl_fd = fd;
	snprintf(ctl_path, sizeof(ctl_path), "%s", cfg->control_socket);
	return 0;
}

static void
resume_accept(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	event_add(ctl_ev, NULL);
}

void
control_start(void)
{
	ctl_ev = event_new(mpd->base, ctl_fd, EV_READ | EV_PERSIST,
	    control_accept, NULL);
	ctl_pause = evtimer_new(mpd->base, resume_accept, NULL);
	if (ctl_ev == NULL || ctl_pause == NULL || event_add(ctl_ev, NULL))
		fatalx("cannot watch the control socket");
}

void
control_close(void)
{
	int i;

	/* connections still open at shutdown */
	for (i = 0; i < CONTROL_CLIENTS_MAX; i++)
		if (ctl_conns[i].bev != NULL)
			control_free(ctl_conns[i].bev);
	if (ctl_ev != NULL)
		event_free(ctl_ev);
	if (ctl_pause != NULL)
		event_free(ctl_pause);
	ctl_ev = ctl_pause = NULL;
	if (ctl_fd != -1) {
		close(ctl_fd);
		unlink(ctl_path);
	}
	ctl_fd = -1;
}

static void
control_free(struct bufferevent *bev)
{
	int i;

	for (i = 0; i < CONTROL_CLIENTS_MAX; i++)
		if (ctl_conns[i].bev == bev) {
			event_free(ctl_conns[i].deadline);
			memset(&ctl_conns[i], 0, sizeof(ctl_conns[i]));
		}
	journal_forget_bev(bev);
	bufferevent_free(bev);
	ctl_clients--;
}

static void
control_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	log_debug("control: connection closed after %d ms",
	    CONTROL_DEADLINE_MS);
	control_free(arg);
}

static void
control_write(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		control_free(bev);
}

static void
control_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	size_t len;

	(void)arg;
	line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
	if (line == NULL) {
		if (evbuffer_get_length(in) > CONTROL_LINE_MAX) {
			evbuffer_add_printf(bufferevent_get_output(bev),
			    "error: request too long\n");
			bufferevent_disable(bev, EV_READ);
			bufferevent_setcb(bev, NULL, control_write, NULL,
			    NULL);
		}
		return;
	}
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, control_write, NULL, NULL);
	control_handle(line, bufferevent_get_output(bev));
	/* a drop is answered once it is on disk */
	journal_hold_bev(bev);
	free(line);
}

static void
control_event(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	(void)arg;
	control_free(bev);
}

static void
control_accept(evutil_socket_t fd, short what, void *arg)
{
	struct bufferevent *bev;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct timeval tv = { 1, 0 }, dl;
	int cfd, i;

	(void)what;
	(void)arg;
	if ((cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC))
	    == -1) {
		if (errno == EMFILE || errno == ENFILE) {
			log_warn("control: accept");
			event_del(ctl_ev);
			evtimer_add(ctl_pause, &tv);
		} else if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED)
			log_warn("control: accept");
		return;
	}
	if (ctl_clients >= CONTROL_CLIENTS_MAX) {
		/* make room: the oldest connection has had the most time */
		int old = 0;

		for (i = 1; i < CONTROL_CLIENTS_MAX; i++)
			if (ctl_conns[i].since < ctl_conns[old].since)
				old = i;
		if (mpd_now() / 1000 != ctl_warned) {
			ctl_warned = mpd->now_ms / 1000;
			log_warnx("control: %d connections open: closing the "
			    "oldest", CONTROL_CLIENTS_MAX);
		}
		control_free(ctl_conns[old].bev);
	}
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
		log_debug("control: connection from uid %ld",
		    (long)cred.uid);
	bev = bufferevent_socket_new(mpd->base, cfd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(cfd);
		return;
	}
	for (i = 0; i < CONTROL_CLIENTS_MAX; i++)
		if (ctl_conns[i].bev == NULL)
			break;
	if (i == CONTROL_CLIENTS_MAX)
		abort();	/* ctl_clients is wrong */
	if ((ctl_conns[i].deadline = evtimer_new(mpd->base, control_deadline,
	    bev)) == NULL) {
		bufferevent_free(bev);
		return;
	}
	ctl_conns[i].bev = bev;
	ctl_conns[i].since = ++ctl_serial;
	ctl_clients++;
	dl.tv_sec = CONTROL_DEADLINE_MS / 1000;
	dl.tv_usec = (CONTROL_DEADLINE_MS % 1000) * 1000;
	evtimer_add(ctl_conns[i].deadline, &dl);
	bufferevent_setcb(bev, control_read, NULL, control_event, NULL);
	bufferevent_enable(bev, EV_READ);
}
