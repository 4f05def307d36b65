/*
 * events.c: the event socket, where mailpush-hook and the Dovecot driver
 * post new-mail events (one datagram each, see mailpush-hook(8)).
 *
 * The socket is writable by all (a hook run by Postfix has no supplementary
 * groups); who may post, and for whom, is decided per datagram from the
 * credentials the kernel attaches (SO_PASSCRED / SCM_CREDENTIALS): the uid
 * must be in [events] allow_users when that is set (root and the daemon's
 * own uid always are), and it must be allowed to act for the event's user
 * by the local trust rule (trust.c).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "log.h"
#include "logesc.h"
#include "mailpushd.h"
#include "user.h"

#define EVENT_BATCH	64

static int		 ev_fd = -1;
static struct event	*ev_read;
static char		 ev_path[CONFIG_SOCKPATH_MAX];

static void events_read(evutil_socket_t, short, void *);
static void events_warn(const char *, ...) __attribute__((format(printf, 1, 2)));

/*
 * A local user can write to the event socket as fast as it likes: bad or
 * refused events are logged at most once a second, with the count of
 * those held back.
 */
static void
events_warn(const char *fmt, ...)
{
	static uint64_t last_s, held;
	uint64_t now_s = mpd->now_ms / 1000;
	char buf[512];
	va_list ap;

	if (now_s == last_s) {
		held++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (held > 0)
		log_warnx("%s (%llu more bad events held back)", buf,
		    (unsigned long long)held);
	else
		log_warnx("%s", buf);
	last_s = now_s;
	held = 0;
}

int
events_resolve_users(const struct mp_config *cfg, uid_t **uids, size_t *n)
{
	size_t i;
	int errors = 0;

	*uids = NULL;
	*n = 0;
	if (cfg->n_allow_users == 0)
		return 0;
	if ((*uids = calloc(cfg->n_allow_users, sizeof(uid_t))) == NULL)
		fatal("calloc");
	for (i = 0; i < cfg->n_allow_users; i++) {
		struct passwd *pw = getpwnam(cfg->allow_users[i]);

		if (pw == NULL) {
			log_error("%s: [events] allow_users: no such user "
			    "\"%s\"", cfg->path, cfg->allow_users[i]);
			errors++;
			continue;
		}
		(*uids)[(*n)++] = pw->pw_uid;
	}
	return errors;
}

/*
 * How many datagrams the kernel queues on a UNIX datagram socket is
 * net.unix.max_dgram_qlen when the socket is made, 10 by default, however
 * large [events] buffer_size is; the hooks of a burst of deliveries then
 * wait for the daemon, and give up after their timeout.  Say so, with the
 * fix (systemd sets 512 at boot; a container or a system without it does
 * not).
 */
#define EVENTS_QLEN_WANT	512
#define EVENTS_QLEN_SYSCTL	"/proc/sys/net/unix/max_dgram_qlen"

static void
events_check_qlen(void)
{
	FILE *fp;
	long qlen;

	if ((fp = fopen(EVENTS_QLEN_SYSCTL, "r")) == NULL)
		return;
	if (fscanf(fp, "%ld", &qlen) == 1 && qlen < EVENTS_QLEN_WANT)
		log_warnx("net.unix.max_dgram_qlen is %ld: the event socket "
		    "queues at most %ld events, and hooks wait or lose pushes "
		    "in a burst of deliveries; set it to %d before mailpushd "
		    "starts (sysctl -w net.unix.max_dgram_qlen=%d, and "
		    "net.unix.max_dgram_qlen = %d in /etc/sysctl.d/)",
		    qlen, qlen, EVENTS_QLEN_WANT, EVENTS_QLEN_WANT,
		    EVENTS_QLEN_WANT);
	fclose(fp);
}

/*
 * The event socket (unixsock.c), refusing to steal one a live process
 * uses; uid and gid: the daemon's user and group.
 */
int
events_open(const struct mp_config *cfg, uid_t uid, gid_t gid)
{
	struct usock u;
	int fd, on = 1, buf = (int)cfg->event_buffer_size;

	events_check_qlen();
	memset(&u, 0, sizeof(u));
	u.path = cfg->event_socket;
	u.what = "event socket";
	u.live_msg = "another mailpushd is using this event socket";
	u.not_socket = "remove it or choose another [events] socket";
	u.type = SOCK_DGRAM;
	u.mode = cfg->event_socket_mode;
	u.uid = uid;
	u.gid = gid;
	if ((fd = usock_open(&u)) == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) == -1)
		fatal("SO_PASSCRED");
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf)) == -1)
		log_warn("%s: receive buffer", cfg->event_socket);
	ev_fd = fd;
	snprintf(ev_path, sizeof(ev_path), "%s", cfg->event_socket);
	return 0;
}

void
events_start(void)
{
	ev_read = event_new(mpd->base, ev_fd, EV_READ | EV_PERSIST,
	    events_read, NULL);
	if (ev_read == NULL || event_add(ev_read, NULL) == -1)
		fatalx("cannot watch the event socket");
}

void
events_close(void)
{
	if (ev_read != NULL)
		event_free(ev_read);
	ev_read = NULL;
	if (ev_fd != -1) {
		close(ev_fd);
		unlink(ev_path);
	}
	ev_fd = -1;
}

static int
may_post(uid_t uid)
{
	size_t i;

	if (uid == 0 || mpd->cfg.n_allow_users == 0 || uid == geteuid())
		return 1;
	for (i = 0; i < mpd->n_post_uids; i++)
		if (mpd->post_uids[i] == uid)
			return 1;
	return 0;
}

/* An event read and checked, waiting for the rest of its batch. */
struct ev_slot {
	struct mp_event	ev;
	char		user[MP_USER_MAX + 1];
	long		from_uid;
	uint64_t	hash;
};

/* The datagrams of one recvmmsg(2): data, and the sender's credentials. */
static struct {
	struct mmsghdr	msgs[EVENT_BATCH];
	struct iovec	iov[EVENT_BATCH];
	uint8_t		buf[EVENT_BATCH][EVENT_MAX_LEN + 1];
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(struct ucred))];
	} cmsg[EVENT_BATCH];
} in;

/* The sender of datagram i of the batch; NULL if the kernel gave none. */
static const struct ucred *
sender(unsigned i)
{
	struct msghdr *m = &in.msgs[i].msg_hdr;
	struct cmsghdr *c;

	for (c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c))
		if (c->cmsg_level == SOL_SOCKET &&
		    c->cmsg_type == SCM_CREDENTIALS)
			return (const struct ucred *)CMSG_DATA(c);
	return NULL;
}

/*
 * Read up to EVENT_BATCH events in one recvmmsg(2) and check each
 * (sender, format, name, trust); then start the table lookups of all the
 * good ones stage by stage (registry_prefetch_user), so that with a large
 * table their cache misses overlap; then handle them in order.
 */
static void
events_read(evutil_socket_t fd, short what, void *arg)
{
	static struct ev_slot slot[EVENT_BATCH];
	const char *why;
	int i, n, n_ok = 0, stage;

	(void)what;
	(void)arg;
	mpd_now();
	for (i = 0; i < EVENT_BATCH; i++) {
		struct msghdr *m = &in.msgs[i].msg_hdr;

		in.iov[i].iov_base = in.buf[i];
		in.iov[i].iov_len = sizeof(in.buf[i]);
		memset(m, 0, sizeof(*m));
		m->msg_iov = &in.iov[i];
		m->msg_iovlen = 1;
		m->msg_control = in.cmsg[i].buf;
		m->msg_controllen = sizeof(in.cmsg[i].buf);
	}
	while ((n = recvmmsg(fd, in.msgs, EVENT_BATCH, MSG_DONTWAIT, NULL))
	    == -1 && errno == EINTR)
		;
	if (n == -1 && errno != EAGAIN)
		log_warn("event socket receive");
	for (i = 0; i < n; i++) {
		struct ev_slot *s = &slot[n_ok];
		const struct ucred *cred = sender((unsigned)i);

		if (cred == NULL || !may_post(cred->uid)) {
			mpd->stats.events_denied++;
			events_warn("event from uid %ld refused: not in [events] "
			    "allow_users", cred ? (long)cred->uid : -1L);
			continue;
		}
		if (event_decode(in.buf[i], in.msgs[i].msg_len, &s->ev, &why)
		    != 0) {
			mpd->stats.events_bad++;
			events_warn("malformed event from uid %ld: %s",
			    (long)cred->uid, why);
			continue;
		}
		if (user_normalize(&mpd->cfg.names, s->ev.user, s->ev.user_len,
		    s->user, &why) != 0) {
			mpd->stats.events_bad++;
			events_warn("event from uid %ld: %s", (long)cred->uid,
			    why);
			continue;
		}
		if (!trust_may_act(cred->uid, s->user, "event socket")) {
			mpd->stats.events_denied++;
			continue;
		}
		s->from_uid = (long)cred->uid;
		s->hash = registry_user_hash(s->user);
		n_ok++;
	}
	for (stage = 0; n_ok > 1 && stage < REGISTRY_PREFETCH_STAGES; stage++)
		for (i = 0; i < n_ok; i++)
			registry_prefetch_user(slot[i].hash, stage);
	for (i = 0; i < n_ok; i++) {
		struct ev_slot *s = &slot[i];

		mpd->stats.events_in++;
		log_debug("event: %u new for %s in %s (uid %u) from uid %ld",
		    s->ev.count, s->user, log_str(s->ev.mailbox), s->ev.uid,
		    s->from_uid);
		cluster_event(s->user, s->ev.mailbox, s->ev.count, s->ev.uid);
	}
	push_flush();
}
