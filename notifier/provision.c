/*
 * provision.c: the provisioning socket, mailpushd.conf(5) [provision].
 *
 * Hands a user's current token and the notifier list to a local process
 * that may act for that user, so that the Dovecot imap process (running
 * as the mail user or as vmail) can serve them as METADATA without ever
 * reading the key (mailpush-dovecot(7)).  Who may ask for whom is the one
 * local-trust rule of the event socket (trust.c): a uid acts only for its
 * own login name, trusted uids for anyone; the uid is the kernel's
 * (SO_PEERCRED), never what the peer says.
 *
 * A UNIX SOCK_SEQPACKET socket: each request and each answer is one
 * record, so nothing is ever half-read.  One request per connection:
 *
 *	token USER
 *
 * (at most PROVISION_REQ_MAX bytes, no NUL, an optional final newline),
 * answered by one record and the connection closed:
 *
 *	ok\ntoken ID:HEX\nuser NAME\nservers HOST:PORT ...\n
 *	error: MESSAGE\n
 *
 * A connection that sends nothing within [provision] timeout is closed;
 * at most PROVISION_CLIENTS_MAX are open at once: a new one closes the
 * oldest (counted), so that a local user holding idle connections cannot
 * keep the imap processes from their tokens, as with the control socket.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "keyfile.h"
#include "log.h"
#include "mailpushd.h"
#include "user.h"

#define PROVISION_REQ_MAX	(6 + MP_USER_MAX + 1)	/* "token " NAME \n */
#define PROVISION_ANSWER_MAX	(64 + KEYFILE_TOKEN_TEXT_MAX + \
				 MP_USER_MAX + CONFIG_SERVERS_MAX)
#define PROVISION_CLIENTS_MAX	64

struct prov_conn {
	int		 fd;
	uid_t		 uid;
	uint64_t	 serial;	/* accept order: the smallest is oldest */
	struct event	*ev;
};

static int		 prov_fd = -1;
static struct event	*prov_ev, *prov_pause;
static char		 prov_path[CONFIG_SOCKPATH_MAX];
static struct prov_conn	*prov_conns[PROVISION_CLIENTS_MAX];
static struct provision_stats prov_stats;
static uint64_t		 prov_serial;

static void provision_accept(evutil_socket_t, short, void *);

int
provision_open(const struct mp_config *cfg, uid_t uid, gid_t gid)
{
	struct usock u;
	int fd;

	if (cfg->provision_socket[0] == '\0')
		return 0;
	memset(&u, 0, sizeof(u));
	u.path = cfg->provision_socket;
	u.what = "provisioning socket";
	/* no live check: the control socket, opened first, told a running
	 * instance apart */
	u.not_socket = "not removing it";
	u.type = SOCK_SEQPACKET;
	u.mode = cfg->provision_socket_mode;
	u.uid = uid;
	u.gid = gid;
	u.unlink_must = 1;
	u.chown = 1;
	u.backlog = 64;
	if ((fd = usock_open(&u)) == -1)
		return -1;
	prov_fd = fd;
	snprintf(prov_path, sizeof(prov_path), "%s", cfg->provision_socket);
	return 0;
}

static void
resume_accept(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	event_add(prov_ev, NULL);
}

void
provision_start(void)
{
	if (prov_fd == -1)
		return;
	prov_ev = event_new(mpd->base, prov_fd, EV_READ | EV_PERSIST,
	    provision_accept, NULL);
	prov_pause = evtimer_new(mpd->base, resume_accept, NULL);
	if (prov_ev == NULL || prov_pause == NULL || event_add(prov_ev, NULL))
		fatalx("cannot watch the provisioning socket");
}

static void
prov_conn_free(struct prov_conn *c)
{
	size_t i;

	for (i = 0; i < PROVISION_CLIENTS_MAX; i++)
		if (prov_conns[i] == c)
			prov_conns[i] = NULL;
	event_free(c->ev);
	close(c->fd);
	free(c);
}

void
provision_close(void)
{
	size_t i;

	for (i = 0; i < PROVISION_CLIENTS_MAX; i++)
		if (prov_conns[i] != NULL)
			prov_conn_free(prov_conns[i]);
	if (prov_ev != NULL)
		event_free(prov_ev);
	if (prov_pause != NULL)
		event_free(prov_pause);
	prov_ev = prov_pause = NULL;
	if (prov_fd != -1) {
		close(prov_fd);
		unlink(prov_path);
	}
	prov_fd = -1;
}

struct provision_stats
provision_snapshot(void)
{
	return prov_stats;
}

static void
prov_send(struct prov_conn *c, const char *text, size_t len)
{
	/* one record; the peer waits for it, so it never blocks for long */
	if (send(c->fd, text, len, MSG_NOSIGNAL | MSG_DONTWAIT) == -1)
		log_debug("provisioning socket: uid %ld: send: %s",
		    (long)c->uid, strerror(errno));
}

static void
prov_error(struct prov_conn *c, const char *msg)
{
	char buf[256];
	int n;

	n = snprintf(buf, sizeof(buf), "error: %s\n", msg);
	prov_send(c, buf, (size_t)n);
}

/*
 * Answer one request record.  Everything the peer says is checked: the
 * verb, the length, the user name (normalised as every name is), and then
 * whether its uid may act for that user.
 */
static void
prov_answer(struct prov_conn *c, const char *req, size_t len)
{
	char user[MP_USER_MAX + 1], text[KEYFILE_TOKEN_TEXT_MAX + 1];
	char answer[PROVISION_ANSWER_MAX];
	uint8_t token[MP_TOKEN_LEN];
	const char *why;
	int n;

	if (len > 0 && req[len - 1] == '\n')
		len--;
	if (len < 7 || memcmp(req, "token ", 6) != 0) {
		prov_stats.bad++;
		prov_error(c, "unknown request (expected \"token USER\")");
		return;
	}
	if (memchr(req, '\0', len) != NULL || memchr(req, '\n', len) != NULL) {
		prov_stats.bad++;
		prov_error(c, "request contains a NUL or newline");
		return;
	}
	if (user_normalize(&mpd->cfg.names, req + 6, len - 6, user, &why)
	    != 0) {
		prov_stats.bad++;
		prov_error(c, why);
		return;
	}
	if (!trust_may_act(c->uid, user, "provisioning socket")) {
		prov_stats.denied++;
		prov_error(c, "permission denied: this uid may ask only for "
		    "its own login name");
		return;
	}
	if (mpd->cfg.auth == AUTH_NONE) {
		prov_stats.denied++;	/* well formed, and refused */
		prov_error(c, "auth = none: the notifier has no tokens");
		return;
	}
	keyfile_token(&mpd->keys, user, strlen(user), token);
	keyfile_token_text(mpd->keys.cur_id, token, text);
	sodium_memzero(token, sizeof(token));
	n = snprintf(answer, sizeof(answer), "ok\ntoken %s\nuser %s\n"
	    "servers %s\n", text, user, mpd->cfg.provision_servers);
	sodium_memzero(text, sizeof(text));
	if (n < 0 || (size_t)n >= sizeof(answer))
		abort();	/* sized for the longest fields */
	prov_send(c, answer, (size_t)n);
	sodium_memzero(answer, sizeof(answer));
	prov_stats.answered++;
	log_debug("provisioning socket: token of key %u for %s to uid %ld",
	    mpd->keys.cur_id, user, (long)c->uid);
}

static void
prov_read(evutil_socket_t fd, short what, void *arg)
{
	struct prov_conn *c = arg;
	char req[PROVISION_REQ_MAX + 1];
	ssize_t n;

	if (what & EV_TIMEOUT) {
		prov_stats.timeouts++;
		log_debug("provisioning socket: uid %ld sent no request "
		    "in time", (long)c->uid);
		prov_conn_free(c);
		return;
	}
	/* MSG_TRUNC: the record's real length, to refuse a longer one */
	n = recv(fd, req, sizeof(req), MSG_TRUNC | MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	mpd_now();
	if (n > (ssize_t)PROVISION_REQ_MAX) {
		char msg[64];

		prov_stats.bad++;
		snprintf(msg, sizeof(msg), "request longer than %d bytes",
		    PROVISION_REQ_MAX);
		prov_error(c, msg);
	} else if (n > 0)
		prov_answer(c, req, (size_t)n);
	prov_conn_free(c);
}

static void
provision_accept(evutil_socket_t fd, short what, void *arg)
{
	struct prov_conn *c;
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	struct timeval tv;
	size_t i, k;
	int cfd;

	(void)what;
	(void)arg;
	if ((cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC))
	    == -1) {
		if (errno == EMFILE || errno == ENFILE) {
			struct timeval sec = { 1, 0 };

			log_warn("provisioning socket: accept; pausing for "
			    "a second");
			event_del(prov_ev);
			evtimer_add(prov_pause, &sec);
		}
		return;
	}
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == -1) {
		log_warn("provisioning socket: SO_PEERCRED");
		close(cfd);
		return;
	}
	for (i = 0; i < PROVISION_CLIENTS_MAX; i++)
		if (prov_conns[i] == NULL)
			break;
	if (i == PROVISION_CLIENTS_MAX) {
		/* make room: the oldest has had the most time to ask */
		for (i = 0, k = 1; k < PROVISION_CLIENTS_MAX; k++)
			if (prov_conns[k]->serial < prov_conns[i]->serial)
				i = k;
		prov_stats.busy++;
		log_debug("provisioning socket: %d connections open; closing "
		    "the oldest, from uid %ld", PROVISION_CLIENTS_MAX,
		    (long)prov_conns[i]->uid);
		prov_conn_free(prov_conns[i]);
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("provisioning socket: calloc");
		close(cfd);
		return;
	}
	c->fd = cfd;
	c->uid = cred.uid;
	c->serial = ++prov_serial;
	c->ev = event_new(mpd->base, cfd, EV_READ | EV_PERSIST, prov_read, c);
	tv.tv_sec = (time_t)(mpd->cfg.provision_timeout / 1000);
	tv.tv_usec = (suseconds_t)(mpd->cfg.provision_timeout % 1000) * 1000;
	if (c->ev == NULL || event_add(c->ev, &tv) == -1) {
		log_warnx("provisioning socket: cannot watch a connection");
		if (c->ev != NULL)
			event_free(c->ev);
		close(cfd);
		free(c);
		return;
	}
	prov_conns[i] = c;
}
