/*
 * udp.c: the UDP listeners and the request side of mailpush-protocol(7):
 * REGISTER, REFRESH and UNREGISTER, the stateless cookie, authentication
 * and the limits.  PUSH_ACK is handed to push.c.
 *
 * Order of checks for a request: decode; cookie (a source that has not
 * proved it receives gets a 24-byte COOKIE and nothing else, and leaves no
 * state); allow list; user name; MAC; timestamp; then the limits.  Nothing
 * sent back is ever larger than the datagram that caused it.
 *
 * Send errors: an unconnected UDP socket hears of ICMP errors (port or
 * host unreachable) only with IP_RECVERR / IPV6_RECVERR.  Then each error
 * is queued with the destination it concerns (read with MSG_ERRQUEUE,
 * counted, and charged to the registration at that address by push.c),
 * and is also reported once, by the kernel, as the failure of the next
 * send or receive on the socket, whatever its destination.  Such a send
 * is not at fault: the error queue is drained and the send tried again.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/errqueue.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"
#include "mailpushd.h"
#include "user.h"

#define COOKIE_SLOT	60	/* seconds */
#define RECV_BATCH	64
#define ERR_BATCH	64
#define SEND_TRIES	3	/* a send hit by an earlier datagram's error */

static void udp_read(evutil_socket_t, short, void *);

socklen_t
addr_len(const union mp_addr *a)
{
	return a->sa.sa_family == AF_INET ? sizeof(a->sin) : sizeof(a->sin6);
}

const char *
addr_str(const union mp_addr *a)
{
	static char buf[2][INET6_ADDRSTRLEN + 10];
	static int which;
	char host[INET6_ADDRSTRLEN];
	char *out = buf[which++ & 1];

	if (a->sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &a->sin.sin_addr, host, sizeof(host));
		snprintf(out, sizeof(buf[0]), "%s:%u", host,
		    ntohs(a->sin.sin_port));
	} else {
		inet_ntop(AF_INET6, &a->sin6.sin6_addr, host, sizeof(host));
		snprintf(out, sizeof(buf[0]), "[%s]:%u", host,
		    ntohs(a->sin6.sin6_port));
	}
	return out;
}

int
addr_same_host(const union mp_addr *a, const union mp_addr *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return 0;
	if (a->sa.sa_family == AF_INET)
		return a->sin.sin_addr.s_addr == b->sin.sin_addr.s_addr;
	return memcmp(&a->sin6.sin6_addr, &b->sin6.sin6_addr, 16) == 0;
}

int
addr_equal(const union mp_addr *a, const union mp_addr *b)
{
	if (!addr_same_host(a, b))
		return 0;
	return a->sa.sa_family == AF_INET ?
	    a->sin.sin_port == b->sin.sin_port :
	    a->sin6.sin6_port == b->sin6.sin6_port;
}

int
udp_open(struct mp_listener *l, const struct mp_config *cfg)
{
	int fd, on = 1, buf = (int)cfg->udp_buffer_size;
	const struct sockaddr *sa = (const struct sockaddr *)&l->conf.ss;

	fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1) {
		log_warn("%s: socket", l->conf.text);
		return -1;
	}
	if (sa->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) == -1)
		log_warn("%s: IPV6_V6ONLY", l->conf.text);
	if ((sa->sa_family == AF_INET6 ?
	    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof(on)) :
	    setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof(on))) == -1)
		log_warn("%s: RECVERR (send errors will not be counted)",
		    l->conf.text);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf)) == -1)
		log_warn("%s: socket buffer size", l->conf.text);
	if (bind(fd, sa, l->conf.len) == -1) {
		log_warn("cannot listen on %s", l->conf.text);
		close(fd);
		return -1;
	}
	l->fd = fd;
	l->in_use = 1;
	return 0;
}

void
udp_start(struct mp_listener *l)
{
	l->ev = event_new(mpd->base, l->fd, EV_READ | EV_PERSIST, udp_read, l);
	if (l->ev == NULL || event_add(l->ev, NULL) == -1)
		fatalx("cannot watch %s", l->conf.text);
}

void
udp_close(struct mp_listener *l)
{
	if (l->ev != NULL)
		event_free(l->ev);
	if (l->fd != -1)
		close(l->fd);
	l->ev = NULL;
	l->fd = -1;
	l->in_use = 0;
}

/*
 * Read the errors the kernel queued for datagrams sent from a listener:
 * count each, and charge it to the registration at its destination.
 */
void
udp_drain_errors(int listener)
{
	struct mp_listener *l = &mpd->listeners[listener];
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(struct sock_extended_err)
				    + sizeof(struct sockaddr_in6))];
	} cbuf;
	struct sock_extended_err *ee;
	struct cmsghdr *c;
	struct msghdr msg;
	struct iovec iov;
	union mp_addr to;
	uint8_t data[PROTO_HDR_LEN];
	int i;

	if (!l->in_use)
		return;
	for (i = 0; i < ERR_BATCH; i++) {
		memset(&msg, 0, sizeof(msg));
		memset(&to, 0, sizeof(to));
		iov.iov_base = data;
		iov.iov_len = sizeof(data);
		msg.msg_name = &to;
		msg.msg_namelen = sizeof(to);
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = sizeof(cbuf.buf);
		if (recvmsg(l->fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) == -1)
			break;		/* EAGAIN: empty */
		ee = NULL;
		for (c = CMSG_FIRSTHDR(&msg); c != NULL;
		    c = CMSG_NXTHDR(&msg, c))
			if ((c->cmsg_level == IPPROTO_IP &&
			    c->cmsg_type == IP_RECVERR) ||
			    (c->cmsg_level == IPPROTO_IPV6 &&
			    c->cmsg_type == IPV6_RECVERR))
				ee = (struct sock_extended_err *)CMSG_DATA(c);
		/* local errors were returned by the send itself */
		if (ee == NULL || (ee->ee_origin != SO_EE_ORIGIN_ICMP &&
		    ee->ee_origin != SO_EE_ORIGIN_ICMP6))
			continue;
		if (to.sa.sa_family != AF_INET && to.sa.sa_family != AF_INET6)
			continue;
		mpd->stats.send_errors++;
		log_debug("send to %s: %s", addr_str(&to),
		    strerror((int)ee->ee_errno));
		push_send_error(&to);
	}
}

/* May this failed send have been hit by an earlier datagram's error? */
int
udp_send_retry(int listener, int err, int tries)
{
	if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS ||
	    err == ENOMEM || tries >= SEND_TRIES)
		return 0;
	udp_drain_errors(listener);
	return 1;
}

int
udp_send(int listener, const union mp_addr *to, const uint8_t *buf,
    size_t len)
{
	struct mp_listener *l = &mpd->listeners[listener];
	ssize_t n;
	int tries = 0;

	if (listener < 0 || (size_t)listener >= mpd->n_listeners || !l->in_use)
		return -1;
	while ((n = sendto(l->fd, buf, len, 0, &to->sa, addr_len(to))) == -1) {
		if (errno == EINTR || udp_send_retry(listener, errno, ++tries))
			continue;
		mpd->stats.send_errors++;
		log_debug("send to %s: %s", addr_str(to), strerror(errno));
		return -1;
	}
	mpd->stats.bytes_out += (uint64_t)n;
	return 0;
}

/* Cookie */

static void
cookie_compute(const union mp_addr *a, uint64_t slot,
    uint8_t out[PROTO_COOKIE_LEN])
{
	static crypto_auth_hmacsha256_state keyed;
	static int keyed_ready;
	crypto_auth_hmacsha256_state st;
	uint8_t mac[crypto_auth_hmacsha256_BYTES], fam, s[8];
	int i;

	/* the secret is fixed for the daemon's life: hash it in once */
	if (!keyed_ready) {
		crypto_auth_hmacsha256_init(&keyed, mpd->cookie_secret,
		    sizeof(mpd->cookie_secret));
		keyed_ready = 1;
	}
	st = keyed;
	fam = (uint8_t)a->sa.sa_family;
	crypto_auth_hmacsha256_update(&st, &fam, 1);
	if (a->sa.sa_family == AF_INET) {
		crypto_auth_hmacsha256_update(&st,
		    (const uint8_t *)&a->sin.sin_addr, 4);
		crypto_auth_hmacsha256_update(&st,
		    (const uint8_t *)&a->sin.sin_port, 2);
	} else {
		crypto_auth_hmacsha256_update(&st,
		    (const uint8_t *)&a->sin6.sin6_addr, 16);
		crypto_auth_hmacsha256_update(&st,
		    (const uint8_t *)&a->sin6.sin6_port, 2);
	}
	for (i = 0; i < 8; i++)
		s[i] = (uint8_t)(slot >> (56 - 8 * i));
	crypto_auth_hmacsha256_update(&st, s, sizeof(s));
	crypto_auth_hmacsha256_final(&st, mac);
	memcpy(out, mac, PROTO_COOKIE_LEN);
}

static int
cookie_valid(const union mp_addr *a, const uint8_t *cookie)
{
	uint64_t slot = mpd->now_ms / 1000 / COOKIE_SLOT;
	uint8_t c[PROTO_COOKIE_LEN];
	int ok;

	cookie_compute(a, slot, c);
	if ((ok = sodium_memcmp(c, cookie, PROTO_COOKIE_LEN) == 0))
		return ok;
	/* which slot matched is no secret: try the older only if needed */
	cookie_compute(a, slot - 1, c);
	return sodium_memcmp(c, cookie, PROTO_COOKIE_LEN) == 0;
}

static void
send_cookie(int listener, const union mp_addr *to, uint32_t nonce)
{
	struct mp_reply rp;
	uint8_t buf[PROTO_COOKIE_LEN_DGRAM];
	int n;

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_COOKIE;
	rp.nonce = nonce;
	cookie_compute(to, mpd->now_ms / 1000 / COOKIE_SLOT, rp.cookie);
	if ((n = proto_reply_encode(&rp, NULL, buf, sizeof(buf))) > 0 &&
	    udp_send(listener, to, buf, (size_t)n) == 0)
		mpd->stats.cookies_sent++;
}

/* Replies */

static void
reply_registered(int listener, const union mp_addr *to, uint32_t nonce,
    const struct reg *r, uint32_t lifetime, const uint8_t *token)
{
	struct mp_reply rp;
	uint8_t buf[PROTO_REGISTERED_LEN];
	int n;

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_REGISTERED;
	rp.nonce = nonce;
	rp.reg_id = r ? r->id : 0;
	rp.lifetime = lifetime;
	rp.seq = r ? r->seq : 0;
	if ((n = proto_reply_encode(&rp, token, buf, sizeof(buf))) > 0)
		udp_send(listener, to, buf, (size_t)n);
}

static void
refuse(int listener, const union mp_addr *to, uint32_t nonce,
    unsigned reason, uint32_t limit, const uint8_t *token)
{
	struct mp_reply rp;
	uint8_t buf[PROTO_REFUSED_LEN];
	int n;

	mpd->stats.refused[reason]++;
	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_REFUSED;
	rp.nonce = nonce;
	rp.reason = (uint8_t)reason;
	rp.limit = limit;
	rp.server_time = mpd->now_ms / 1000;
	if ((n = proto_reply_encode(&rp, token, buf, sizeof(buf))) > 0)
		udp_send(listener, to, buf, (size_t)n);
}

/* Requests */

/*
 * Expiry of a registration that starts living now: whole seconds, rounded
 * up, so that it lives at least the lifetime its client was told.
 */
static uint32_t
expiry(uint32_t lifetime)
{
	return (uint32_t)((mpd->now_ms + 999) / 1000) + lifetime;
}

/* Of the user's n oldest registrations, how many are at from's host? */
static unsigned
oldest_at(const struct mp_user *u, unsigned n, const union mp_addr *from)
{
	const struct reg *r;
	unsigned k = 0;

	for (r = u->regs; r != NULL && n > 0; r = r->user_next, n--)
		k += addr_same_host(&r->addr, from);
	return k;
}

static void
do_register(int listener, const union mp_addr *from,
    const struct mp_request *rq, struct mp_user *u, const char *user,
    const uint8_t *token)
{
	const struct mp_config *cfg = &mpd->cfg;
	uint32_t lifetime = (uint32_t)(cfg->registration_lifetime / 1000);
	unsigned max, evict = 0, at_from;
	struct reg *r;

	max = config_max_context(cfg, user);
	if (rq->ctx_len > max) {
		limits_log_refusal(user, REASON_CONTEXT_SIZE, max, rq->ctx_len,
		    from);
		refuse(listener, from, rq->nonce, REASON_CONTEXT_SIZE, max,
		    token);
		return;
	}
	if (rq->n_mailboxes > cfg->max_mailboxes) {
		refuse(listener, from, rq->nonce, REASON_BAD_REQUEST,
		    cfg->max_mailboxes, token);
		return;
	}
	if (u != NULL &&
	    (r = registry_same_client(u, from, rq->ctx, rq->ctx_len)) != NULL) {
		/* The same client again (restarted): replace, keep the id. */
		registry_set_addr(r, from, listener);
		registry_set_mailboxes(r, rq);
		r->expires = expiry(lifetime);
		registry_schedule(r);
		mpd->stats.replaced++;
		mpd->state_dirty = 1;
		reply_registered(listener, from, rq->nonce, r, lifetime, token);
		push_resume(r);
		return;
	}
	max = config_max_regs(cfg, user);
	if (u != NULL && u->n_regs >= max) {
		if (cfg->on_limit == ON_LIMIT_REFUSE) {
			limits_log_refusal(user, REASON_TOO_MANY, max, 0, from);
			refuse(listener, from, rq->nonce, REASON_TOO_MANY, max,
			    token);
			return;
		}
		/* the oldest go, but only if the new one is then accepted */
		evict = u->n_regs - max + 1;
	}
	if (registry_count() - evict >= cfg->max_registrations) {
		limits_log_refusal(user, REASON_TABLE_FULL,
		    cfg->max_registrations, 0, from);
		refuse(listener, from, rq->nonce, REASON_TABLE_FULL,
		    cfg->max_registrations, token);
		return;
	}
	at_from = evict ? oldest_at(u, evict, from) : 0;
	if (cfg->max_registrations_per_address != 0 &&
	    registry_addr_count(from) - at_from >=
	    cfg->max_registrations_per_address) {
		limits_log_refusal(user, REASON_ADDRESS_LIMIT,
		    cfg->max_registrations_per_address, 0, from);
		refuse(listener, from, rq->nonce, REASON_ADDRESS_LIMIT,
		    cfg->max_registrations_per_address, token);
		return;
	}
	for (; evict > 0; evict--) {
		int last = u->n_regs == 1;

		mpd->stats.evicted++;
		limits_log_eviction(user, max, &u->regs->addr);
		registry_remove(u->regs, "evicted");
		if (last) {
			u = NULL;	/* the user went with its last one */
			break;
		}
	}
	if (u == NULL)
		u = registry_user(user, 1);
	r = registry_add(u, from, listener, rq->ctx, rq->ctx_len, lifetime, 0);
	registry_set_mailboxes(r, rq);
	mpd->stats.registered++;
	log_debug("registered %s from %s: id %08x, %u of %u", user,
	    addr_str(from), r->id, u->n_regs, max);
	reply_registered(listener, from, rq->nonce, r, lifetime, token);
}

static void
handle_request(int listener, const union mp_addr *from, const uint8_t *buf,
    size_t len)
{
	const struct mp_config *cfg = &mpd->cfg;
	static struct mp_request rq;	/* 5 kB: keep it off the stack */
	char user[MP_USER_MAX + 1];
	uint8_t token[MP_TOKEN_LEN];
	const char *why;
	struct reg *r = NULL;
	struct mp_user *u;
	uint64_t now_s = mpd->now_ms / 1000;
	uint32_t lifetime;

	if (proto_request_decode(buf, len, &rq, &why) != 0) {
		mpd->stats.dgrams_bad++;
		log_debug("bad datagram from %s: %s", addr_str(from), why);
		return;
	}
	if (rq.type != PROTO_REGISTER)
		r = registry_find(rq.reg_id);
	/* A source proves it can receive by echoing a cookie, unless it is
	 * the very address a registration already lives at. */
	if (!(r != NULL && addr_equal(&r->addr, from)) &&
	    !cookie_valid(from, rq.cookie)) {
		send_cookie(listener, from, rq.nonce);
		return;
	}
	if (user_normalize(&cfg->names, rq.user, rq.user_len, user, &why)
	    != 0) {
		log_debug("request from %s: %s", addr_str(from), why);
		refuse(listener, from, rq.nonce, REASON_BAD_REQUEST, 0, NULL);
		return;
	}
	push_token(user, strlen(user), token);
	if (!config_addr_allowed(cfg, &from->sa)) {
		refuse(listener, from, rq.nonce, REASON_NOT_ALLOWED, 0, token);
		return;
	}
	if (cfg->auth == AUTH_TOKEN && proto_verify(buf, len, token) != 0) {
		log_debug("request for %s from %s: bad MAC", user,
		    addr_str(from));
		refuse(listener, from, rq.nonce, REASON_AUTH, 0, token);
		return;
	}
	if (rq.timestamp + cfg->timestamp_window / 1000 < now_s ||
	    rq.timestamp > now_s + cfg->timestamp_window / 1000) {
		refuse(listener, from, rq.nonce, REASON_STALE,
		    (uint32_t)(cfg->timestamp_window / 1000), token);
		return;
	}
	u = registry_user(user, 0);
	if (rq.type == PROTO_REGISTER) {
		do_register(listener, from, &rq, u, user, token);
		return;
	}
	if (r == NULL || r->user != u) {
		refuse(listener, from, rq.nonce, REASON_UNKNOWN, 0, token);
		return;
	}
	if (rq.type == PROTO_UNREGISTER) {
		mpd->stats.unregistered++;
		registry_remove(r, "unregistered");
		reply_registered(listener, from, rq.nonce, NULL, 0, token);
		return;
	}
	/* REFRESH: also follows the client to a new address (NAT rebinding),
	 * which the cookie above has verified. */
	if (!addr_equal(&r->addr, from)) {
		if (!addr_same_host(&r->addr, from) &&
		    cfg->max_registrations_per_address != 0 &&
		    registry_addr_count(from) >=
		    cfg->max_registrations_per_address) {
			refuse(listener, from, rq.nonce, REASON_ADDRESS_LIMIT,
			    cfg->max_registrations_per_address, token);
			return;
		}
		registry_set_addr(r, from, listener);
	}
	lifetime = (uint32_t)(cfg->registration_lifetime / 1000);
	r->expires = expiry(lifetime);
	r->listener = (uint8_t)listener;
	registry_schedule(r);
	mpd->stats.refreshed++;
	mpd->state_dirty = 1;
	reply_registered(listener, from, rq.nonce, r, lifetime, token);
	push_resume(r);		/* unreachable no more: retry what it owes */
}

static void
udp_read(evutil_socket_t fd, short what, void *arg)
{
	struct mp_listener *l = arg;
	int listener = (int)(l - mpd->listeners);
	uint8_t buf[PROTO_MAX_DATAGRAM + 1];
	union mp_addr from;
	socklen_t fromlen;
	ssize_t n;
	int i;

	(void)what;
	mpd_now();
	for (i = 0; i < RECV_BATCH; i++) {
		fromlen = sizeof(from);
		n = recvfrom(fd, buf, sizeof(buf), 0, &from.sa, &fromlen);
		if (n == -1) {
			int err = errno;

			/* the queued send errors (which also wake us) */
			udp_drain_errors(listener);
			if (err == EAGAIN || err == EWOULDBLOCK)
				break;
			/* EINTR, or a send error reported here: go on */
			if (err != EINTR)
				log_debug("receive on %s: %s", l->conf.text,
				    strerror(err));
			continue;
		}
		mpd->stats.dgrams_in++;
		mpd->stats.bytes_in += (uint64_t)n;
		if (from.sa.sa_family != AF_INET &&
		    from.sa.sa_family != AF_INET6) {
			mpd->stats.dgrams_bad++;
			continue;
		}
		switch (proto_type(buf, (size_t)n)) {
		case PROTO_REGISTER:
		case PROTO_REFRESH:
		case PROTO_UNREGISTER:
			handle_request(listener, &from, buf, (size_t)n);
			break;
		case PROTO_PUSH_ACK:
			push_ack(&from, buf, (size_t)n);
			break;
		case -1:
			mpd->stats.dgrams_bad++;
			break;
		default:	/* a reply type sent to a server: never answer */
			mpd->stats.dgrams_unknown++;
			break;
		}
	}
	push_flush();
}
