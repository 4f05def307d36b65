/*
 * check_client.h: the fixture of the client library suites (check_client.c,
 * check_clientpush.c, check_clientlisten.c): a fake server on a loopback
 * UDP socket with a known key, using the proto_* encoders, and the
 * library under test on a simulated monotonic clock.  Each file that
 * includes it has its own copy of this state.
 */
#ifndef CHECK_CLIENT_H
#define CHECK_CLIENT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <sodium.h>

#include "mpclient.h"
#include "proto.h"

#define T0		1000000ULL	/* simulated clock start, ms */
#define WAIT_MS		3000		/* every wait is bounded by this */

struct srv {
	int			fd;
	struct sockaddr_storage	addr;
	socklen_t		addrlen;
	struct sockaddr_storage	peer;
	socklen_t		peerlen;
	int			port;
};

struct rec {
	int			pushes;
	struct mpc_push		last;
	uint8_t			last_ctx[MP_CONTEXT_MAX];
	int			nev[MPC_EV_KICK + 1];
	int			events;
	enum mpc_event		last_ev;
	struct mpc_status	last_st;
};

static struct srv	srv;
static uint8_t		key[MP_KEY_LEN];
static uint8_t		token[MP_TOKEN_LEN];
static uint8_t		bob_token[MP_TOKEN_LEN];
static struct mpc	*m;
static struct rec	rec;
static const uint8_t	ctx[] = { 'c', 't', 'x', '-', '1', '2', '3', '4' };
static uint8_t		device[MP_DEVICE_ID_LEN];	/* the library's */
static uint8_t		srv_device[MP_DEVICE_ID_LEN];	/* of the last
							   request seen */
static uint64_t		push_nonce;
#define EPOCH		0x1122334455667788ULL
#define KA_SLOW		65535	/* keep-alive bounds (s) that keep
				   KEEPALIVEs out of the way */
static const uint8_t	cookie[PROTO_COOKIE_LEN] = {
	0xc0, 0x0c, 0x1e, 0x01, 0x02, 0x03, 0x04, 0x05,
	0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d
};

/* ---- the fake server ---- */

static inline int
srv_open(struct srv *s, int family)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&s->addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&s->addr;

	memset(s, 0, sizeof(*s));
	if ((s->fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s->addrlen = sizeof(*sin);
	} else {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		s->addrlen = sizeof(*sin6);
	}
	if (bind(s->fd, (struct sockaddr *)&s->addr, s->addrlen) == -1 ||
	    getsockname(s->fd, (struct sockaddr *)&s->addr, &s->addrlen) ==
	    -1) {
		close(s->fd);
		s->fd = -1;
		return -1;
	}
	s->port = ntohs(family == AF_INET ? sin->sin_port : sin6->sin6_port);
	return 0;
}

static inline ssize_t
srv_recv(struct srv *s, uint8_t *buf, size_t len, int ms)
{
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN };

	if (poll(&pfd, 1, ms) != 1)
		return -1;
	s->peerlen = sizeof(s->peer);
	return recvfrom(s->fd, buf, len, 0, (struct sockaddr *)&s->peer,
	    &s->peerlen);
}

static inline void
srv_send(struct srv *s, const uint8_t *buf, size_t len)
{
	ck_assert_int_eq(sendto(s->fd, buf, len, 0,
	    (struct sockaddr *)&s->peer, s->peerlen), (ssize_t)len);
}

static inline void
srv_cookie(struct srv *s, uint64_t ts)
{
	struct mp_reply rp = { .type = PROTO_COOKIE, .timestamp = ts };
	uint8_t buf[128];
	int n;

	memcpy(rp.cookie, cookie, sizeof(cookie));
	ck_assert_int_eq(n = proto_reply_encode(&rp, NULL, buf, sizeof(buf)),
	    PROTO_COOKIE_DGRAM_LEN);
	srv_send(s, buf, (size_t)n);
}

static uint16_t	ka_min = KA_SLOW, ka_max = KA_SLOW;
static uint64_t	srv_epoch = EPOCH;

static inline void
srv_registered(struct srv *s, uint64_t ts, uint32_t id, uint32_t life,
    uint32_t seq, const uint8_t *tok)
{
	struct mp_reply rp = { .type = PROTO_REGISTERED, .timestamp = ts,
	    .reg_id = id, .lifetime = life, .seq = seq, .epoch = srv_epoch,
	    .keepalive_min = ka_min, .keepalive_max = ka_max };
	uint8_t buf[128];
	int n;

	ck_assert_int_eq(n = proto_reply_encode(&rp, tok, buf, sizeof(buf)),
	    PROTO_REGISTERED_LEN);
	srv_send(s, buf, (size_t)n);
}

static inline void
srv_refused(struct srv *s, uint64_t ts, uint8_t reason, uint32_t limit,
    uint64_t value, const uint8_t *tok)
{
	struct mp_reply rp = { .type = PROTO_REFUSED, .timestamp = ts,
	    .reason = reason, .limit = limit, .value = value };
	uint8_t buf[128];
	int n;

	ck_assert_int_eq(n = proto_reply_encode(&rp, tok, buf, sizeof(buf)),
	    PROTO_REFUSED_LEN);
	srv_send(s, buf, (size_t)n);
}

static inline void
srv_push(struct srv *s, uint32_t id, uint32_t seq, uint32_t count,
    uint32_t total, const uint8_t *c, size_t clen, const uint8_t *tok)
{
	struct mp_push p = { .reg_id = id, .seq = seq, .count = count,
	    .total = total, .server_time = (uint64_t)time(NULL),
	    .ctx_len = (uint16_t)clen, .epoch = srv_epoch };
	uint8_t buf[PROTO_MAX_DATAGRAM], pk[32], nonce[PROTO_PUSH_NONCE_LEN];
	int n;

	memcpy(p.ctx, c, clen);
	/* sealed for the device of the last request; NULL: no token */
	if (tok != NULL)
		proto_push_key(tok, pk);
	else
		randombytes_buf(pk, sizeof(pk));
	memset(nonce, 0, sizeof(nonce));
	push_nonce++;
	memcpy(nonce, &push_nonce, sizeof(push_nonce));
	ck_assert_int_gt(n = proto_push_seal(&p, pk, nonce, buf, sizeof(buf)),
	    0);
	srv_send(s, buf, (size_t)n);
}

/* The next datagram must be a request of this type with a valid MAC. */
static inline void
expect_request(struct srv *s, int type, struct mp_request *rq)
{
	uint8_t buf[PROTO_MAX_DATAGRAM + 1];
	const char *why = "";
	ssize_t n;

	n = srv_recv(s, buf, sizeof(buf), WAIT_MS);
	ck_assert_msg(n > 0, "no %s from the client", proto_type_name(
	    (unsigned)type));
	ck_assert_msg(proto_request_decode(buf, (size_t)n, rq, &why) == 0,
	    "bad request: %s", why);
	ck_assert_msg(rq->type == type, "got %s, want %s",
	    proto_type_name(rq->type), proto_type_name((unsigned)type));
	ck_assert_msg(proto_verify(buf, (size_t)n, token) == 0,
	    "request MAC does not verify");
	memcpy(srv_device, rq->device, sizeof(srv_device));
	/* padded so that an answer and an owed push fit */
	if (type == PROTO_REGISTER || type == PROTO_REFRESH ||
	    type == PROTO_PROBE)
		ck_assert_uint_ge((size_t)n, proto_request_pad(rq->ctx_len));
}

/* The next datagram must be a PUSH_ACK for (epoch, seq) with a valid MAC
 * (id: the registration; the ACK names it by user and device). */
static inline void
expect_ack(struct srv *s, uint32_t id, uint32_t seq)
{
	static struct mp_request rq;

	(void)id;
	expect_request(s, PROTO_PUSH_ACK, &rq);
	ck_assert_uint_eq(rq.seq, seq);
	ck_assert_uint_eq(rq.epoch, srv_epoch);
}

static inline void
expect_nothing(struct srv *s, int ms)
{
	uint8_t buf[PROTO_MAX_DATAGRAM + 1];
	ssize_t n = srv_recv(s, buf, sizeof(buf), ms);

	ck_assert_msg(n < 0, "unexpected %zd-byte datagram (type %d)", n,
	    n >= 4 ? buf[3] : -1);
}

/* ---- the library under test ---- */

static inline void
on_push(void *arg, const struct mpc_push *p)
{
	struct rec *r = arg;

	r->pushes++;
	r->last = *p;
	memcpy(r->last_ctx, p->ctx, p->ctx_len);
	r->last.ctx = r->last_ctx;
}

static inline void
on_state(void *arg, enum mpc_event ev, const struct mpc_status *st)
{
	struct rec *r = arg;

	r->nev[ev]++;
	r->events++;
	r->last_ev = ev;
	r->last_st = *st;
}

/* Wait for the client socket and let the library read everything. */
static inline void
pump(uint64_t now)
{
	struct pollfd pfd = { .fd = mpc_fd(m), .events = POLLIN };

	ck_assert_msg(poll(&pfd, 1, WAIT_MS) == 1, "client got nothing");
	mpc_input(m, now);
}

static inline struct mpc *
client_new(const struct srv *s, const uint8_t *c, size_t clen)
{
	struct mpc_params pa;
	struct mpc_callbacks cb = { .push = on_push, .state = on_state,
	    .arg = &rec };

	memset(&pa, 0, sizeof(pa));
	pa.user = "alice";
	memcpy(pa.token, token, sizeof(pa.token));
	memcpy(pa.device, device, sizeof(pa.device));
	memcpy(srv_device, device, sizeof(srv_device));
	pa.no_probe = 1;	/* the probe tests turn it on */
	pa.ctx = c;
	pa.ctx_len = clen;
	pa.mailboxes[0] = "INBOX";
	pa.mailboxes[1] = "Work";
	pa.n_mailboxes = 2;
	return mpc_new((const struct sockaddr *)&s->addr, s->addrlen, &pa,
	    &cb);
}

/* REGISTER, COOKIE, REGISTER with cookie, REGISTERED(id, life). */
static inline void
register_fully(uint64_t now, uint32_t id, uint32_t life)
{
	struct mp_request rq;

	ck_assert_int_eq(mpc_register(m, now), 0);
	expect_request(&srv, PROTO_REGISTER, &rq);
	srv_cookie(&srv, rq.timestamp);
	pump(now);
	expect_request(&srv, PROTO_REGISTER, &rq);
	ck_assert_mem_eq(rq.cookie, cookie, sizeof(cookie));
	srv_registered(&srv, rq.timestamp, id, life, 0, token);
	pump(now);
	ck_assert_int_eq(mpc_state(m, NULL), MPC_REGISTERED);
}

static inline void
setup(void)
{
	size_t i;

	for (i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1);
	proto_token(key, "alice", 5, token);
	proto_token(key, "bob", 3, bob_token);
	for (i = 0; i < sizeof(device); i++)
		device[i] = (uint8_t)(0xd0 + i);
	ka_min = ka_max = KA_SLOW;
	srv_epoch = EPOCH;
	memset(&rec, 0, sizeof(rec));
	ck_assert_int_eq(srv_open(&srv, AF_INET), 0);
	m = client_new(&srv, ctx, sizeof(ctx));
	ck_assert_ptr_nonnull(m);
}

static inline void
teardown(void)
{
	mpc_free(m);
	m = NULL;
	close(srv.fd);
}

#endif
