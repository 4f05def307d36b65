/*
 * tclient.c: the raw protocol client of harness.h (tc_*): a UDP socket to
 * the daemon under test, requests filled, padded and encoded as the
 * client library does them, the cookie round trip, pushes opened and
 * acknowledged, keep-alives.  Real sockets on loopback; nothing is
 * simulated.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "harness.h"

/* Raw client */

int
tc_open(struct tclient *c, const struct mpd_proc *p, int v6,
    const char *bind_ip, const char *user)
{
	memset(c, 0, sizeof(*c));
	c->fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (c->fd == -1)
		return -1;
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->srv;
		struct sockaddr_in6 b;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		s6->sin6_port = htons((uint16_t)p->port);
		c->srvlen = sizeof(*s6);
		memset(&b, 0, sizeof(b));
		b.sin6_family = AF_INET6;
		inet_pton(AF_INET6, bind_ip ? bind_ip : "::1", &b.sin6_addr);
		if (bind(c->fd, (struct sockaddr *)&b, sizeof(b)) == -1)
			return -1;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&c->srv;
		struct sockaddr_in b;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s4->sin_port = htons((uint16_t)p->port);
		c->srvlen = sizeof(*s4);
		memset(&b, 0, sizeof(b));
		b.sin_family = AF_INET;
		inet_pton(AF_INET, bind_ip ? bind_ip : "127.0.0.1",
		    &b.sin_addr);
		if (bind(c->fd, (struct sockaddr *)&b, sizeof(b)) == -1)
			return -1;
	}
	snprintf(c->user, sizeof(c->user), "%s", user);
	mpd_token(p, user, c->token);
	randombytes_buf(c->device, sizeof(c->device));
	proto_push_key(c->token, c->push_key);
	c->ctx_devices = 1;
	return 0;
}

void
tc_close(struct tclient *c)
{
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
}

int
tc_send(struct tclient *c, const uint8_t *buf, size_t len)
{
	return sendto(c->fd, buf, len, 0, (struct sockaddr *)&c->srv,
	    c->srvlen) == (ssize_t)len ? 0 : -1;
}

int
tc_recv(struct tclient *c, uint8_t *buf, size_t len, int ms)
{
	struct pollfd pfd = { c->fd, POLLIN, 0 };
	ssize_t n;

	if (poll(&pfd, 1, ms) != 1)
		return -1;
	n = recv(c->fd, buf, len, 0);
	return n < 0 ? -1 : (int)n;
}

/* Registration ids and the devices that registered them. */
static struct {
	uint32_t	id;
	uint8_t		device[PROTO_DEVICE_LEN];
} known_regs[256];
static unsigned n_known;

static void
set_device(struct tclient *c, const uint8_t device[PROTO_DEVICE_LEN])
{
	memcpy(c->device, device, PROTO_DEVICE_LEN);
}

void
tc_use_reg(struct tclient *c, uint32_t id)
{
	uint8_t dev[PROTO_DEVICE_LEN];
	unsigned i;

	for (i = 0; i < n_known && i < 256; i++)
		if (known_regs[i].id == id) {
			set_device(c, known_regs[i].device);
			return;
		}
	randombytes_buf(dev, sizeof(dev));
	set_device(c, dev);
}

void
tc_set_device(struct tclient *c, const uint8_t device[PROTO_DEVICE_LEN])
{
	c->ctx_devices = 0;
	set_device(c, device);
}

uint64_t
tc_ts(struct tclient *c)
{
	struct timespec ts;
	int64_t t;

	clock_gettime(CLOCK_REALTIME, &ts);
	t = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 +
	    c->clock_skew * 1000;
	if (t <= 0 || (uint64_t)t <= c->last_ts)
		t = (int64_t)c->last_ts + 1;
	c->last_ts = (uint64_t)t;
	return c->last_ts;
}

void
tc_req(struct tclient *c, struct mp_request *rq, uint8_t type,
    const void *ctx, size_t ctx_len)
{
	memset(rq, 0, sizeof(*rq));
	if (c->ctx_devices && type == PROTO_REGISTER) {
		uint8_t dev[PROTO_DEVICE_LEN];
		crypto_generichash_state st;

		crypto_generichash_init(&st, NULL, 0, sizeof(dev));
		crypto_generichash_update(&st, (const uint8_t *)c->user,
		    strlen(c->user) + 1);
		crypto_generichash_update(&st, ctx, ctx_len);
		crypto_generichash_final(&st, dev, sizeof(dev));
		set_device(c, dev);
	}
	rq->type = type;
	rq->key_id = PROTO_KEY_ID_DEFAULT;
	memcpy(rq->device, c->device, PROTO_DEVICE_LEN);
	rq->timestamp = tc_ts(c);
	rq->user_len = (uint8_t)strlen(c->user);
	memcpy(rq->user, c->user, rq->user_len);
	rq->ctx_len = (uint16_t)ctx_len;
	if (ctx_len)
		memcpy(rq->ctx, ctx, ctx_len);
	if (type == PROTO_REGISTER)
		c->reg_ctx_len = (uint16_t)ctx_len;
	/* padded as the client library pads: for the registration's
	 * context, so that an answer and an owed push fit */
	if (!c->no_pad && type != PROTO_PUSH_ACK && type != PROTO_UNREGISTER)
		rq->pad_to = (uint16_t)proto_request_pad(ctx_len >
		    c->reg_ctx_len ? ctx_len : c->reg_ctx_len);
}

int
tc_encode(struct tclient *c, struct mp_request *rq, uint8_t *buf, size_t len)
{
	memcpy(rq->cookie, c->cookie, sizeof(c->cookie));
	return proto_request_encode(rq, c->token, buf, len);
}

int
tc_call(struct tclient *c, struct mp_request *rq, struct mp_reply *rp,
    int no_retry)
{
	uint8_t buf[PROTO_MAX_DATAGRAM];
	const char *why;
	int n, round, replayed = 0;

	for (round = 0; round < 3; round++) {
		if (round > 0)
			rq->timestamp = tc_ts(c);
		if ((n = tc_encode(c, rq, buf, sizeof(buf))) < 0 ||
		    tc_send(c, buf, (size_t)n) != 0)
			return -1;
		for (;;) {
			if ((n = tc_recv(c, buf, sizeof(buf), 2000)) < 0)
				return -1;
			if (proto_reply_decode(buf, (size_t)n, rp, &why) == 0 &&
			    rp->type != PROTO_KICK &&
			    rp->type != PROTO_PROBE_ECHO &&
			    rp->timestamp == rq->timestamp)
				break;
		}
		if (rp->type == PROTO_REGISTERED && rq->type ==
		    PROTO_REGISTER && rp->reg_id != 0) {
			known_regs[n_known % 256].id = rp->reg_id;
			memcpy(known_regs[n_known % 256].device, rq->device,
			    PROTO_DEVICE_LEN);
			n_known++;
		}
		/* another client of the same device sent a later timestamp
		 * (one per context): go on above it, as the library does */
		if (rp->type == PROTO_REFUSED && rp->reason == REASON_REPLAY &&
		    !no_retry && !replayed++ &&
		    proto_verify(buf, (size_t)n, c->token) == 0) {
			if (rp->value > c->last_ts)
				c->last_ts = rp->value;
			continue;
		}
		if (rp->type != PROTO_COOKIE || no_retry)
			return 0;
		memcpy(c->cookie, rp->cookie, sizeof(c->cookie));
	}
	return 0;
}

int
tc_register(struct tclient *c, const void *ctx, size_t ctx_len,
    struct mp_reply *rp)
{
	static struct mp_request rq;

	tc_req(c, &rq, PROTO_REGISTER, ctx, ctx_len);
	return tc_call(c, &rq, rp, 0);
}

int
tc_push(struct tclient *c, struct mp_push *p, int ms)
{
	uint8_t buf[PROTO_MAX_DATAGRAM];
	uint64_t until = now_ms() + (uint64_t)ms;
	const char *why;
	int n;

	while (now_ms() < until) {
		n = tc_recv(c, buf, sizeof(buf), (int)(until - now_ms()));
		if (n < 0)
			return -1;
		if (proto_type(buf, (size_t)n) != PROTO_PUSH)
			continue;
		if (proto_push_open(buf, (size_t)n, c->push_key, p, &why) != 0)
			return -2;
		/* with one device per context, the push may be for a device
		 * this client registered before its last REGISTER (the push
		 * key is the user's): acknowledge as that device */
		if (c->ctx_devices) {
			unsigned i;

			for (i = 0; i < n_known && i < 256; i++)
				if (known_regs[i].id == p->reg_id) {
					set_device(c, known_regs[i].device);
					break;
				}
		}
		return 0;
	}
	return -1;
}

int
tc_ack(struct tclient *c, const struct mp_push *p)
{
	static struct mp_request rq;
	uint8_t buf[PROTO_MAX_DATAGRAM];
	int n;

	tc_req(c, &rq, PROTO_PUSH_ACK, NULL, 0);
	rq.seq = p->seq;
	rq.epoch = p->epoch;
	if ((n = tc_encode(c, &rq, buf, sizeof(buf))) < 0)
		return -1;
	return tc_send(c, buf, (size_t)n);
}

int
tc_keepalive(struct tclient *c, uint32_t reg_id)
{
	uint8_t buf[PROTO_KEEPALIVE_LEN];

	if (proto_keepalive_encode(reg_id, buf, sizeof(buf)) < 0)
		return -1;
	return tc_send(c, buf, sizeof(buf));
}

int
tc_register_mailboxes(struct tclient *c, const void *ctx, size_t ctx_len,
    const char *const *mailboxes, size_t n, struct mp_reply *rp)
{
	static struct mp_request rq;
	size_t i;

	tc_req(c, &rq, PROTO_REGISTER, ctx, ctx_len);
	if (n > MP_MAILBOXES_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		size_t len = strlen(mailboxes[i]);

		if (len == 0 || len > MP_MAILBOX_MAX)
			return -1;
		rq.mailboxes[i].len = (uint8_t)len;
		memcpy(rq.mailboxes[i].name, mailboxes[i], len + 1);
	}
	rq.n_mailboxes = (uint8_t)n;
	return tc_call(c, &rq, rp, 0);
}
