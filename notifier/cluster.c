/*
 * cluster.c: the daemon's Redis links, for the roles of [cluster]
 * (mailpush-cluster(7)).  A relay publishes the events its event socket
 * accepted on one link; a notifier subscribes to the channel on a second
 * link (a subscribed connection takes no other command) and publishes its
 * own heartbeats on the first.
 *
 * hiredis runs in the daemon's own libevent loop through its adapter; no
 * call blocks: the address is an IP literal or a socket path (nothing to
 * resolve), connect(2) is non-blocking and bounded by connect_timeout.
 * A link that fails is retried after reconnect_min, doubling up to
 * reconnect_max, with a random quarter added so that many daemons do not
 * reconnect in step.  Every heartbeat_interval the publishing link sends
 * a heartbeat (a PUBLISH of a heartbeat message for a notifier, which its
 * own subscription must see again: that round trip is the lag shown by
 * mailpushctl status; PUBSUB NUMSUB for a relay alone); a link that has
 * not answered for heartbeat_timeout is dropped and reconnected.
 *
 * Pub/sub keeps nothing for a subscriber that is not there.  After Redis
 * itself restarted, the relay's link may come back before the notifiers
 * have subscribed again; so a relay whose link comes back holds its
 * buffer until as many subscribers are back as it saw before the break
 * (PUBSUB NUMSUB, asked every 100 ms), at most reconnect_max +
 * connect_timeout + heartbeat_interval, and only then publishes.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wunused-function"
#include <hiredis/adapters/libevent.h>
#pragma GCC diagnostic pop

#include "cluster.h"
#include "log.h"
#include "mailpushd.h"

#define TICK_MS		100
#define PASSWORD_MAX	512

struct clink {
	const char		*name;		/* "publish", "subscribe" */
	int			 sub;
	redisAsyncContext	*ac;
	int			 state;		/* LINK_* */
	int			 authed;	/* AUTH (or PING) answered */
	uint64_t		 since;		/* ms: in this state since */
	uint64_t		 retry_at;	/* ms: LINK_DOWN: connect then */
	uint64_t		 backoff;	/* ms: the next delay */
	uint64_t		 hb_sent;	/* ms: heartbeat unanswered, 0 */
	uint64_t		 hb_last;	/* ms: last heartbeat sent */
	uint64_t		 last_rx;	/* ms: last message (sub) */
	char			 error[160];	/* why it went down last */
	uint64_t		 warned;	/* ms: last warning logged */
	unsigned		 failures;	/* in a row */
};

struct cluster_stats	 cluster_st;
uint64_t		 cluster_origin;

static struct clink	 pub = { .name = "publish" };
static struct clink	 sub = { .name = "subscribe", .sub = 1 };
static struct event	*tick;
static char		 host[CONFIG_SOCKPATH_MAX];
static int		 port;			/* 0: host is a socket path */
static char		*password;
static size_t		 password_len;
static uint64_t		 hb_seq;
static int		 role;
static int		 settled;	/* relay: subscribers are back */
static long long	 subscribers = -1;	/* last count Redis gave */
static long long	 expect_subs;	/* seen before the link broke */
static int		 numsub_out;	/* a PUBSUB NUMSUB unanswered */

static void link_connect(struct clink *);
static void settle(const char *);
static void link_drop(struct clink *, const char *why);

/* A warning at most once a minute per `last' (a link, a kind of fault). */
void
cluster_warn(uint64_t *last, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (*last != 0 && mpd->now_ms < *last + 60000)
		return;
	*last = mpd->now_ms;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_warnx("%s", buf);
}

/*
 * The password file: like the key file, a regular file of the daemon's
 * user closed to others; its first line is the password.
 */
static int
read_password(const struct mp_config *cfg, uid_t owner)
{
	const char *path = cfg->redis_password_file;
	char buf[PASSWORD_MAX + 2];
	struct stat st;
	ssize_t n;
	int fd, e;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		log_error("%s: [cluster] redis_password_file %s: %s", cfg->path,
		    path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_uid != owner || (st.st_mode & 077) != 0) {
		log_error("%s: [cluster] redis_password_file %s must be a "
		    "regular file owned by uid %ld (the user mailpushd runs "
		    "as) with mode 0600 or stricter", cfg->path, path,
		    (long)owner);
		close(fd);
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	e = errno;	/* close may change it (R15-8) */
	close(fd);
	if (n < 0) {
		log_error("%s: [cluster] redis_password_file %s: %s", cfg->path,
		    path, strerror(e));
		return -1;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0' || strlen(buf) > PASSWORD_MAX) {
		log_error("%s: [cluster] redis_password_file %s: the first line "
		    "must hold a password of 1 to %d bytes", cfg->path, path,
		    PASSWORD_MAX);
		sodium_memzero(buf, sizeof(buf));
		return -1;
	}
	password_len = strlen(buf);
	if ((password = strdup(buf)) == NULL)
		fatal("strdup");
	sodium_memzero(buf, sizeof(buf));
	return 0;
}

/*
 * Before privileges are dropped: the password, the relay buffer.  Returns
 * -1 (the daemon does not start) on an error it has logged.
 */
int
cluster_configure(const struct mp_config *cfg, uid_t owner)
{
	role = cfg->cluster_role;
	if (role == CLUSTER_NONE)
		return 0;
	if (config_parse_redis(cfg->redis, host, sizeof(host), &port) != 0)
		abort();	/* config.c checked it */
	if (cfg->redis_password_file[0] != '\0' &&
	    read_password(cfg, owner) != 0)
		return -1;
	if (cfg->redis_user[0] != '\0' && password == NULL) {
		log_error("%s: [cluster] redis_user needs a "
		    "redis_password_file", cfg->path);
		return -1;
	}
	if ((role & CLUSTER_RELAY) && relay_init(cfg->relay_buffer) != 0)
		return -1;
	randombytes_buf(&cluster_origin, sizeof(cluster_origin));
	cluster_st.lag_ms = cluster_st.event_age_ms = -1;
	return 0;
}

int
cluster_role(void)
{
	return role;
}

int
cluster_relaying(void)
{
	return (role & CLUSTER_RELAY) != 0;
}

/* Reload keeps the running [cluster]: its keys apply at the next restart. */
void
cluster_reload(const struct mp_config *o, struct mp_config *n)
{
	if (o->cluster_role != n->cluster_role ||
	    strcmp(o->redis, n->redis) != 0 ||
	    strcmp(o->redis_user, n->redis_user) != 0 ||
	    strcmp(o->redis_password_file, n->redis_password_file) != 0 ||
	    strcmp(o->cluster_channel, n->cluster_channel) != 0 ||
	    o->relay_buffer != n->relay_buffer)
		log_warnx("reload: [cluster] role, redis, redis_user, "
		    "redis_password_file, channel and relay_buffer take "
		    "effect at the next restart");
	n->cluster_role = o->cluster_role;
	memcpy(n->redis, o->redis, sizeof(n->redis));
	memcpy(n->redis_user, o->redis_user, sizeof(n->redis_user));
	memcpy(n->redis_password_file, o->redis_password_file,
	    sizeof(n->redis_password_file));
	memcpy(n->cluster_channel, o->cluster_channel,
	    sizeof(n->cluster_channel));
	n->relay_buffer = o->relay_buffer;
}

static const char *
where(void)
{
	static char buf[CONFIG_SOCKPATH_MAX + 16];

	snprintf(buf, sizeof(buf), "%s", mpd->cfg.redis);
	return buf;
}

/* The link is gone (ac already freed or being freed): retry later. */
static void
link_lost(struct clink *l, const char *why)
{
	uint64_t jitter;
	int was_ready = l->state == LINK_READY;

	l->ac = NULL;
	snprintf(l->error, sizeof(l->error), "%s", why);
	if (was_ready) {
		cluster_st.disconnects++;
		log_warnx("Redis %s: %s link lost: %s; reconnecting", where(),
		    l->name, why);
		l->warned = mpd->now_ms;
	} else
		cluster_warn(&l->warned, "Redis %s: %s link cannot be "
		    "established: %s (retrying up to every %" PRIu64 " ms)",
		    where(), l->name, why, mpd->cfg.redis_reconnect_max);
	l->state = LINK_DOWN;
	l->since = mpd->now_ms;
	l->authed = 0;
	l->hb_sent = 0;
	l->failures++;
	jitter = randombytes_uniform((uint32_t)(l->backoff / 4 + 1));
	l->retry_at = mpd->now_ms + l->backoff + jitter;
	l->backoff *= 2;
	if (l->backoff > mpd->cfg.redis_reconnect_max)
		l->backoff = mpd->cfg.redis_reconnect_max;
	if (!l->sub && (role & CLUSTER_RELAY)) {
		if (was_ready && settled && subscribers > expect_subs)
			expect_subs = subscribers;
		else if (was_ready && settled)
			expect_subs = subscribers < 0 ? 0 : subscribers;
		settled = 0;
		numsub_out = 0;
		relay_link_lost();
	}
}

/* Drop a live context from outside hiredis or from a reply callback. */
static void
link_drop(struct clink *l, const char *why)
{
	redisAsyncContext *ac = l->ac;

	if (ac == NULL)
		return;
	link_lost(l, why);
	/* inside a reply callback hiredis frees it when the callback ends;
	 * the callbacks still queued get a NULL reply, which they ignore */
	redisAsyncFree(ac);
}

static void
link_ready(struct clink *l)
{
	l->state = LINK_READY;
	l->since = l->last_rx = mpd->now_ms;
	l->hb_last = 0;
	cluster_st.connects++;
	if (l->failures > 0)
		log_info("Redis %s: %s link ready again after %u failed "
		    "attempt%s", where(), l->name, l->failures,
		    l->failures == 1 ? "" : "s");
	else
		log_info("Redis %s: %s link ready", where(), l->name);
	l->failures = 0;
	l->backoff = mpd->cfg.redis_reconnect_min;
	l->warned = 0;
	if (l->sub)
		sub_ready();
	else if ((role & CLUSTER_RELAY) && expect_subs == 0)
		settle(NULL);	/* nobody to wait for */
	/* otherwise a relay publishes once the subscribers are back:
	 * link_check asks */
}

/* The relay may publish: the subscribers it knew are back, or the wait
 * is over. */
static void
settle(const char *how)
{
	settled = 1;
	if (how != NULL)
		log_info("relay: %s", how);
	relay_link_ready();
}

static void
numsub_cb(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	char how[128];

	(void)priv;
	if (reply == NULL || pub.ac != ac)
		return;
	mpd_now();
	numsub_out = 0;
	pub.hb_sent = 0;
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    reply->element[1]->type != REDIS_REPLY_INTEGER) {
		cluster_warn(&pub.warned, "Redis %s: PUBSUB NUMSUB answered "
		    "%s (does the ACL user have +pubsub?)", where(),
		    reply->type == REDIS_REPLY_ERROR ? reply->str :
		    "something else");
		if (!settled && (role & CLUSTER_RELAY))
			settle("subscribers unknown: publishing now");
		return;
	}
	subscribers = reply->element[1]->integer;
	if (!settled && (role & CLUSTER_RELAY) && subscribers >= expect_subs) {
		snprintf(how, sizeof(how), "%lld subscribers on the channel "
		    "(%lld before): publishing", subscribers, expect_subs);
		settle(expect_subs > 0 ? how : NULL);
	}
}

static void
ask_numsub(void)
{
	const char *ch = mpd->cfg.cluster_channel;

	if (numsub_out)
		return;
	numsub_out = 1;
	redisAsyncCommand(pub.ac, numsub_cb, NULL, "PUBSUB NUMSUB %b", ch,
	    strlen(ch));
}

static void
on_connect(const redisAsyncContext *cac, int status)
{
	struct clink *l = cac->data;

	mpd_now();
	if (status != REDIS_OK && l->ac == cac)
		link_lost(l, cac->errstr);	/* hiredis frees it */
}

static void
on_disconnect(const redisAsyncContext *cac, int status)
{
	struct clink *l = cac->data;

	mpd_now();
	if (l->ac != cac)
		return;		/* we dropped it and know why */
	link_lost(l, status == REDIS_OK ? "closed" : cac->errstr[0] != '\0' ?
	    cac->errstr : "connection closed by the server");
}

/* A message on the subscribed link, or the answer to SUBSCRIBE. */
static void
sub_cb(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct clink *l = priv;

	if (reply == NULL || l->ac != ac)
		return;
	mpd_now();
	l->last_rx = mpd->now_ms;
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
	    reply->element[0]->type != REDIS_REPLY_STRING) {
		if (reply->type == REDIS_REPLY_ERROR) {
			log_error("Redis %s: SUBSCRIBE %s refused: %s (does the "
			    "ACL user have &%s?)", where(),
			    mpd->cfg.cluster_channel, reply->str,
			    mpd->cfg.cluster_channel);
			link_drop(l, reply->str);
		}
		return;
	}
	if (strcmp(reply->element[0]->str, "subscribe") == 0) {
		if (l->state != LINK_READY)
			link_ready(l);
		return;
	}
	if (strcmp(reply->element[0]->str, "message") == 0 &&
	    reply->element[2]->type == REDIS_REPLY_STRING)
		sub_message((const uint8_t *)reply->element[2]->str,
		    reply->element[2]->len);
}

/* The answer to AUTH (or to the first PING without a password). */
static void
hello_cb(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct clink *l = priv;
	const char *ch = mpd->cfg.cluster_channel;

	if (reply == NULL || l->ac != ac)
		return;
	mpd_now();
	if (reply->type == REDIS_REPLY_ERROR) {
		if (password == NULL && strncmp(reply->str, "NOAUTH", 6) == 0)
			cluster_warn(&l->warned, "Redis %s: %s link: %s (Redis "
			    "wants a password: set [cluster] redis_password_file)",
			    where(), l->name, reply->str);
		if (password != NULL) {
			cluster_st.auth_failures++;
			cluster_warn(&l->warned, "Redis %s: %s link: AUTH as "
			    "%s refused: %s (check [cluster] redis_user and "
			    "redis_password_file; events are held in the "
			    "relay buffer meanwhile)", where(), l->name,
			    mpd->cfg.redis_user[0] ? mpd->cfg.redis_user :
			    "the default user", reply->str);
			l->warned = mpd->now_ms;
		}
		link_drop(l, reply->str);
		return;
	}
	l->authed = 1;
	if (l->sub)
		redisAsyncCommand(ac, sub_cb, l, "SUBSCRIBE %b", ch,
		    strlen(ch));
	else
		link_ready(l);
}

static void
link_connect(struct clink *l)
{
	redisAsyncContext *ac;
	char why[160];

	ac = port == 0 ? redisAsyncConnectUnix(host) :
	    redisAsyncConnect(host, port);
	l->state = LINK_CONNECTING;
	l->since = mpd->now_ms;
	if (ac == NULL || ac->err) {
		snprintf(why, sizeof(why), "%s", ac ? ac->errstr :
		    "out of memory");
		if (ac != NULL)
			redisAsyncFree(ac);
		link_lost(l, why);
		return;
	}
	ac->data = l;
	if (port != 0)
		redisEnableKeepAlive(&ac->c);
	if (redisLibeventAttach(ac, mpd->base) != REDIS_OK)
		fatalx("redisLibeventAttach");
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	l->ac = ac;
	/* queued now, written once connect(2) completes */
	if (password != NULL && mpd->cfg.redis_user[0] != '\0')
		redisAsyncCommand(ac, hello_cb, l, "AUTH %s %b",
		    mpd->cfg.redis_user, password, password_len);
	else if (password != NULL)
		redisAsyncCommand(ac, hello_cb, l, "AUTH %b", password,
		    password_len);
	else
		redisAsyncCommand(ac, hello_cb, l, "PING");
}

/* Publish one message; idx is the relay's index of it, or UINT64_MAX. */
static void pub_cb(redisAsyncContext *, void *, void *);

int
cluster_pub_ready(void)
{
	return pub.state == LINK_READY && settled;
}

void
cluster_receivers(long long n)
{
	subscribers = n;
}

/*
 * The PUBLISH command for a message, in Redis's protocol (RESP), made
 * once when the relay takes the event: sending it again after a
 * reconnection costs nothing, and hiredis need not format it per event.
 * Returns its length, or -1 if it does not fit.
 */
int
cluster_format_publish(const uint8_t *msg, size_t len, uint8_t *out,
    size_t outlen)
{
	const char *ch = mpd->cfg.cluster_channel;
	int n;

	n = snprintf((char *)out, outlen, "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s"
	    "\r\n$%zu\r\n", strlen(ch), ch, len);
	if (n < 0 || (size_t)n + len + 2 > outlen)
		return -1;
	memcpy(out + n, msg, len);
	memcpy(out + n + len, "\r\n", 2);
	return n + (int)len + 2;
}

int
cluster_publish(const uint8_t *cmd, size_t len, uint64_t idx)
{
	if (pub.state != LINK_READY)
		return -1;
	return redisAsyncFormattedCommand(pub.ac, pub_cb,
	    (void *)(uintptr_t)idx, (const char *)cmd, len) == REDIS_OK ?
	    0 : -1;
}

static void
pub_cb(redisAsyncContext *ac, void *r, void *priv)
{
	if (r == NULL || pub.ac != ac)
		return;
	mpd_now();
	relay_confirmed((uint64_t)(uintptr_t)priv, r);
}

static void
heartbeat_cb(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;

	(void)priv;
	if (reply == NULL || pub.ac != ac)
		return;
	mpd_now();
	if (reply->type == REDIS_REPLY_ERROR) {
		cluster_warn(&pub.warned, "Redis %s: heartbeat refused: %s",
		    where(), reply->str);
		link_drop(&pub, reply->str);
		return;
	}
	if (reply->type == REDIS_REPLY_INTEGER)
		subscribers = reply->integer;
	pub.hb_sent = 0;
}

static void
send_heartbeat(void)
{
	uint8_t buf[CMSG_HDR_LEN];
	const char *ch = mpd->cfg.cluster_channel;
	struct cmsg m;
	int len;

	pub.hb_sent = pub.hb_last = mpd->now_ms;
	if (!(role & CLUSTER_NOTIFIER)) {
		ask_numsub();
		return;
	}
	memset(&m, 0, sizeof(m));
	m.type = CMSG_HEARTBEAT;
	m.origin = cluster_origin;
	m.seq = ++hb_seq;
	m.time_ms = mpd->now_ms;
	if ((len = cmsg_encode(&m, buf, sizeof(buf))) < 0)
		abort();
	redisAsyncCommand(pub.ac, heartbeat_cb, NULL, "PUBLISH %b %b", ch,
	    strlen(ch), buf, (size_t)len);
}

static void
link_check(struct clink *l)
{
	const struct mp_config *cfg = &mpd->cfg;
	uint64_t now = mpd->now_ms;
	char why[96];

	switch (l->state) {
	case LINK_DOWN:
		if (now >= l->retry_at)
			link_connect(l);
		break;
	case LINK_CONNECTING:
		if (now >= l->since + cfg->redis_connect_timeout) {
			snprintf(why, sizeof(why), "no %s within "
			    "connect_timeout (%" PRIu64 " ms)", l->authed ?
			    "SUBSCRIBE answer" : "connection and answer",
			    cfg->redis_connect_timeout);
			link_drop(l, why);
		}
		break;
	case LINK_READY:
		if (!l->sub && (role & CLUSTER_RELAY) && !settled) {
			if (now >= l->since + cfg->redis_reconnect_max +
			    cfg->redis_connect_timeout + cfg->heartbeat_interval) {
				snprintf(why, sizeof(why), "%lld of %lld "
				    "subscribers back after the wait: "
				    "publishing", subscribers, expect_subs);
				settle(why);
			} else
				ask_numsub();
		}
		if (!l->sub) {
			if (l->hb_sent != 0 &&
			    now >= l->hb_sent + cfg->heartbeat_timeout) {
				snprintf(why, sizeof(why), "heartbeat not "
				    "answered within %" PRIu64 " ms",
				    cfg->heartbeat_timeout);
				link_drop(l, why);
			} else if (l->hb_sent == 0 &&
			    now >= l->hb_last + cfg->heartbeat_interval)
				send_heartbeat();
			break;
		}
		/* the subscriber hears at least our own heartbeats, which
		 * the publishing link sends while it is up */
		if (pub.state == LINK_READY && now >= pub.since +
		    cfg->heartbeat_interval && now >= l->last_rx +
		    cfg->heartbeat_timeout) {
			snprintf(why, sizeof(why), "nothing received for %"
			    PRIu64 " ms, not even our own heartbeat",
			    now - l->last_rx);
			link_drop(l, why);
		}
		break;
	}
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	mpd_now();
	link_check(&pub);
	if (role & CLUSTER_NOTIFIER)
		link_check(&sub);
	push_flush();
}

void
cluster_start(void)
{
	struct timeval tv = { 0, TICK_MS * 1000 };

	if (role == CLUSTER_NONE)
		return;
	pub.backoff = sub.backoff = mpd->cfg.redis_reconnect_min;
	pub.state = sub.state = LINK_DOWN;
	tick = event_new(mpd->base, -1, EV_PERSIST, tick_cb, NULL);
	if (tick == NULL || event_add(tick, &tv) == -1)
		fatalx("cannot create the cluster timer");
	log_info("cluster role %s, Redis %s, channel %s, origin %016" PRIx64,
	    role == CLUSTER_BOTH ? "relay+notifier" : role == CLUSTER_RELAY ?
	    "relay" : "notifier", where(), mpd->cfg.cluster_channel,
	    cluster_origin);
	mpd_now();
	link_connect(&pub);
	if (role & CLUSTER_NOTIFIER)
		link_connect(&sub);
}

void
cluster_stop(void)
{
	redisAsyncContext *ac;

	if (role == CLUSTER_NONE)
		return;
	if (relay_pending() > 0)
		log_warnx("exiting with %zu events not confirmed by Redis",
		    relay_pending());
	if ((ac = pub.ac) != NULL) {
		pub.ac = NULL;
		redisAsyncFree(ac);
	}
	if ((ac = sub.ac) != NULL) {
		sub.ac = NULL;
		redisAsyncFree(ac);
	}
	if (tick != NULL)
		event_free(tick);
	tick = NULL;
	relay_free();
	sub_free();
	if (password != NULL) {
		sodium_memzero(password, password_len);
		free(password);
	}
	password = NULL;
}

/* What mailpushctl shows (cluster_ops.c). */
void
cluster_view(struct cluster_view *v)
{
	v->role = role;
	v->pub.state = pub.state;
	v->pub.since = pub.since;
	v->pub.error = pub.error;
	v->sub.state = (role & CLUSTER_NOTIFIER) ? sub.state : LINK_OFF;
	v->sub.since = sub.since;
	v->sub.error = sub.error;
	v->subscribers = subscribers;
	v->waiting = pub.state == LINK_READY && !settled &&
	    (role & CLUSTER_RELAY);
}

