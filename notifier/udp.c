/*
 * udp.c: the UDP listeners of mailpush-protocol(7): reading (recvmmsg)
 * and dispatching datagrams to request.c, sending, the stateless cookie,
 * the rate-limited log of dropped datagrams, and send errors.
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
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "journal.h"
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
	/* after a durable change: leaves once it is on disk */
	if (journal_hold(listener, to, buf, len))
		return 0;
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

int
udp_cookie_valid(const union mp_addr *a, const uint8_t *cookie)
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

/*
 * Dropped datagrams, for -v: each with its reason, at most DROP_LOG_PER_SEC
 * lines a second; the rest are counted and summed up in the next line.
 */
#define DROP_LOG_PER_SEC	10

void
udp_drop(const union mp_addr *from, const char *fmt, ...)
{
	static uint64_t sec;
	static unsigned lines;
	static uint64_t held;
	char what[200];
	va_list ap;

	if (log_getverbose() < 1)
		return;
	if (mpd->now_ms / 1000 != sec) {
		if (held > 0)
			log_debug("%llu more dropped datagrams not logged",
			    (unsigned long long)held);
		sec = mpd->now_ms / 1000;
		lines = 0;
		held = 0;
	}
	if (lines >= DROP_LOG_PER_SEC) {
		held++;
		return;
	}
	lines++;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	log_debug("dropped datagram from %s: %s", addr_str(from), what);
}

/* The 28-byte COOKIE for a source that has not proved it receives. */
void
udp_send_cookie(int listener, const union mp_addr *to, uint64_t ts)
{
	struct mp_reply rp;
	uint8_t buf[PROTO_COOKIE_DGRAM_LEN];
	int n;

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_COOKIE;
	rp.timestamp = ts;
	cookie_compute(to, mpd->now_ms / 1000 / COOKIE_SLOT, rp.cookie);
	if ((n = proto_reply_encode(&rp, NULL, buf, sizeof(buf))) > 0 &&
	    udp_send(listener, to, buf, (size_t)n) == 0)
		mpd->stats.cookies_sent++;
}

static void
udp_dispatch(int listener, const union mp_addr *from, const uint8_t *buf,
    size_t n)
{
	mpd->stats.dgrams_in++;
	mpd->stats.bytes_in += (uint64_t)n;
	if (from->sa.sa_family != AF_INET && from->sa.sa_family != AF_INET6) {
		mpd->stats.dgrams_bad++;
		return;
	}
	switch (proto_type(buf, n)) {
	case PROTO_KEEPALIVE:
		request_keepalive(listener, from, buf, n);
		break;
	case PROTO_REGISTER:
	case PROTO_REFRESH:
	case PROTO_UNREGISTER:
	case PROTO_PUSH_ACK:
	case PROTO_PROBE:
		request_handle(listener, from, buf, n);
		break;
	case -1:
		mpd->stats.dgrams_bad++;
		udp_drop(from, "%zu bytes, not mailpush version 2", n);
		break;
	default:	/* a reply type sent to a server: never answer */
		mpd->stats.dgrams_unknown++;
		udp_drop(from, "%s is not sent to a server",
		    proto_type_name(buf[3]));
		break;
	}
}

/*
 * Datagrams are read RECV_BATCH at a time with recvmmsg(2), RECV_CALLS
 * times per wake-up at most (libevent calls again while more wait): a
 * flood of keep-alives costs one system call per batch, not one each.
 */
#define RECV_CALLS	4

static void
udp_read(evutil_socket_t fd, short what, void *arg)
{
	static uint8_t buf[RECV_BATCH][PROTO_MAX_DATAGRAM + 1];
	static union mp_addr from[RECV_BATCH];
	static struct mmsghdr msgs[RECV_BATCH];
	static struct iovec iov[RECV_BATCH];
	struct mp_listener *l = arg;
	int listener = (int)(l - mpd->listeners);
	int i, n, calls;

	(void)what;
	mpd_now();
	for (calls = 0; calls < RECV_CALLS; calls++) {
		for (i = 0; i < RECV_BATCH; i++) {
			iov[i].iov_base = buf[i];
			iov[i].iov_len = sizeof(buf[i]);
			memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
			msgs[i].msg_hdr.msg_name = &from[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(fd, msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
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
		for (i = 0; i < n; i++)
			/* one byte more than the largest: too long, and
			 * proto_type says so */
			udp_dispatch(listener, &from[i], buf[i],
			    msgs[i].msg_len);
		if (n < RECV_BATCH)
			break;
	}
	push_flush();
}
