/*
 * check_client.c: the client library (client/mpclient.c) and
 * mailpush-listen(1).  The test plays the server on a loopback UDP socket
 * with a known key, using the proto_* encoders; the library runs on a
 * simulated monotonic clock so backoff and refresh need no sleeping.
 */
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
#include <regex.h>
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
#define LISTEN_BIN	BUILDDIR "/mailpush-listen"
#define TIME_RE		"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:" \
			"[0-9]{2}\\.[0-9]{3}Z"

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

static int
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

static ssize_t
srv_recv(struct srv *s, uint8_t *buf, size_t len, int ms)
{
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN };

	if (poll(&pfd, 1, ms) != 1)
		return -1;
	s->peerlen = sizeof(s->peer);
	return recvfrom(s->fd, buf, len, 0, (struct sockaddr *)&s->peer,
	    &s->peerlen);
}

static void
srv_send(struct srv *s, const uint8_t *buf, size_t len)
{
	ck_assert_int_eq(sendto(s->fd, buf, len, 0,
	    (struct sockaddr *)&s->peer, s->peerlen), (ssize_t)len);
}

static void
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

static void
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

static void
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

static void
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
static void
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
static void
expect_ack(struct srv *s, uint32_t id, uint32_t seq)
{
	static struct mp_request rq;

	(void)id;
	expect_request(s, PROTO_PUSH_ACK, &rq);
	ck_assert_uint_eq(rq.seq, seq);
	ck_assert_uint_eq(rq.epoch, srv_epoch);
}

static void
expect_nothing(struct srv *s, int ms)
{
	uint8_t buf[PROTO_MAX_DATAGRAM + 1];
	ssize_t n = srv_recv(s, buf, sizeof(buf), ms);

	ck_assert_msg(n < 0, "unexpected %zd-byte datagram (type %d)", n,
	    n >= 4 ? buf[3] : -1);
}

/* ---- the library under test ---- */

static void
on_push(void *arg, const struct mpc_push *p)
{
	struct rec *r = arg;

	r->pushes++;
	r->last = *p;
	memcpy(r->last_ctx, p->ctx, p->ctx_len);
	r->last.ctx = r->last_ctx;
}

static void
on_state(void *arg, enum mpc_event ev, const struct mpc_status *st)
{
	struct rec *r = arg;

	r->nev[ev]++;
	r->events++;
	r->last_ev = ev;
	r->last_st = *st;
}

/* Wait for the client socket and let the library read everything. */
static void
pump(uint64_t now)
{
	struct pollfd pfd = { .fd = mpc_fd(m), .events = POLLIN };

	ck_assert_msg(poll(&pfd, 1, WAIT_MS) == 1, "client got nothing");
	mpc_input(m, now);
}

static struct mpc *
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
static void
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

static void
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

static void
teardown(void)
{
	mpc_free(m);
	m = NULL;
	close(srv.fd);
}

/* ---- registration ---- */

START_TEST(t_cookie_roundtrip)
{
	struct mp_request rq1, rq2;
	struct mpc_status st;
	static const uint8_t zero[PROTO_COOKIE_LEN];
	uint64_t now = (uint64_t)time(NULL);

	ck_assert_int_eq(mpc_state(m, NULL), MPC_UNREGISTERED);
	ck_assert_uint_eq(mpc_next_deadline(m), UINT64_MAX);
	ck_assert_int_eq(mpc_register(m, T0), 0);
	ck_assert_int_eq(mpc_state(m, NULL), MPC_REGISTERING);
	expect_request(&srv, PROTO_REGISTER, &rq1);
	ck_assert_mem_eq(rq1.cookie, zero, sizeof(zero));
	ck_assert_str_eq(rq1.user, "alice");
	ck_assert_uint_eq(rq1.ctx_len, sizeof(ctx));
	ck_assert_mem_eq(rq1.ctx, ctx, sizeof(ctx));
	ck_assert_uint_eq(rq1.n_mailboxes, 2);
	ck_assert_str_eq(rq1.mailboxes[0].name, "INBOX");
	ck_assert_str_eq(rq1.mailboxes[1].name, "Work");
	ck_assert_msg(rq1.timestamp / 1000 + 5 >= now &&
	    rq1.timestamp / 1000 <= now + 5,
	    "timestamp %llu, now %llu", (unsigned long long)rq1.timestamp,
	    (unsigned long long)now);

	srv_cookie(&srv, rq1.timestamp);
	pump(T0 + 10);
	expect_request(&srv, PROTO_REGISTER, &rq2);
	ck_assert_mem_eq(rq2.cookie, cookie, sizeof(cookie));
	ck_assert_uint_ne(rq2.timestamp, rq1.timestamp);
	ck_assert_int_eq(mpc_state(m, NULL), MPC_REGISTERING);
	ck_assert_int_eq(rec.events, 0);

	srv_registered(&srv, rq2.timestamp, 42, 600, 0, token);
	pump(T0 + 20);
	ck_assert_int_eq(mpc_state(m, &st), MPC_REGISTERED);
	ck_assert_uint_eq(st.reg_id, 42);
	ck_assert_uint_eq(st.lifetime, 600);
	ck_assert_int_eq(rec.nev[MPC_EV_REGISTERED], 1);
	ck_assert_int_eq(rec.events, 1);
	ck_assert_uint_eq(rec.last_st.reg_id, 42);
	ck_assert_uint_eq(rec.last_st.lifetime, 600);
	/* Refresh at half the lifetime, nothing before. */
	ck_assert_uint_eq(mpc_next_deadline(m), T0 + 20 + 300000);
	mpc_tick(m, T0 + 20 + 299999);
	expect_nothing(&srv, 50);
}
END_TEST

START_TEST(t_retransmit_backoff)
{
	static const uint64_t gaps[] = { 1000, 2000, 4000, 8000, 16000,
	    30000, 30000, 30000 };
	struct mp_request rq, prev;
	struct mpc_stats st;
	uint64_t now = T0;
	size_t i;

	ck_assert_int_eq(mpc_register(m, now), 0);
	expect_request(&srv, PROTO_REGISTER, &prev);
	for (i = 0; i < sizeof(gaps) / sizeof(gaps[0]); i++) {
		ck_assert_uint_eq(mpc_next_deadline(m), now + gaps[i]);
		mpc_tick(m, now + gaps[i] - 1);
		expect_nothing(&srv, 20);
		now += gaps[i];
		mpc_tick(m, now);
		expect_request(&srv, PROTO_REGISTER, &rq);
		ck_assert_uint_ne(rq.timestamp, prev.timestamp);
		prev = rq;
	}
	mpc_stats(m, &st);
	ck_assert_uint_eq(st.sent, 1);
	ck_assert_uint_eq(st.retransmits, i);
	ck_assert_int_eq(mpc_state(m, NULL), MPC_REGISTERING);
}
END_TEST

/* A late reply to an earlier copy of the request still counts. */
START_TEST(t_late_reply)
{
	struct mp_request rq1, rq2;

	ck_assert_int_eq(mpc_register(m, T0), 0);
	expect_request(&srv, PROTO_REGISTER, &rq1);
	mpc_tick(m, T0 + 1000);
	expect_request(&srv, PROTO_REGISTER, &rq2);
	srv_registered(&srv, rq1.timestamp, 5, 600, 0, token);
	pump(T0 + 1010);
	ck_assert_int_eq(mpc_state(m, NULL), MPC_REGISTERED);
}
END_TEST

START_TEST(t_refresh)
{
	struct mp_request rq;
	uint64_t at;

	register_fully(T0, 42, 600);
	at = mpc_next_deadline(m);
	mpc_tick(m, at);
	expect_request(&srv, PROTO_REFRESH, &rq);
	ck_assert_str_eq(rq.user, "alice");
	srv_registered(&srv, rq.timestamp, 42, 100, 0, token);
	pump(at + 5);
	ck_assert_int_eq(rec.nev[MPC_EV_REFRESHED], 1);
	ck_assert_int_eq(mpc_state(m, NULL), MPC_REGISTERED);
	ck_assert_uint_eq(mpc_next_deadline(m), at + 5 + 50000);
}
END_TEST

/* Unanswered refreshes: the daemon is gone, REGISTER anew. */
START_TEST(t_refresh_unanswered)
{
	struct mp_request rq;
	struct mpc_status st;
	uint64_t at;
	int i;

	register_fully(T0, 42, 600);
	at = mpc_next_deadline(m);
	mpc_tick(m, at);
	expect_request(&srv, PROTO_REFRESH, &rq);
	for (i = 1; i < MPC_REFRESH_TRIES; i++) {
		at = mpc_next_deadline(m);
		mpc_tick(m, at);
		expect_request(&srv, PROTO_REFRESH, &rq);
	}
	ck_assert_int_eq(rec.nev[MPC_EV_LOST], 0);
	at = mpc_next_deadline(m);
	mpc_tick(m, at);
	expect_request(&srv, PROTO_REGISTER, &rq);
	ck_assert_int_eq(rec.nev[MPC_EV_LOST], 1);
	ck_assert_int_eq(mpc_state(m, &st), MPC_REGISTERING);
	/* Pushes for the old registration are still taken meanwhile. */
	srv_push(&srv, 42, 1, 1, 1, ctx, sizeof(ctx), token);
	pump(at);
	expect_ack(&srv, 42, 1);
	ck_assert_int_eq(rec.pushes, 1);
}
END_TEST

START_TEST(t_refused_unknown)
{
	struct mp_request rq;
	static const uint8_t zero[PROTO_COOKIE_LEN];
	uint64_t at;

	register_fully(T0, 42, 600);
	at = mpc_next_deadline(m);
	mpc_tick(m, at);
	expect_request(&srv, PROTO_REFRESH, &rq);
	srv_refused(&srv, rq.timestamp, REASON_UNKNOWN, 0, (uint64_t)time(NULL),
	    token);
	pump(at);
	ck_assert_int_eq(rec.nev[MPC_EV_LOST], 1);
	ck_assert_int_eq(rec.nev[MPC_EV_REFUSED], 0);
	ck_assert_int_eq(mpc_state(m, NULL), MPC_REGISTERING);
	expect_request(&srv, PROTO_REGISTER, &rq);
	ck_assert_mem_eq(rq.cookie, zero, sizeof(zero));
	srv_cookie(&srv, rq.timestamp);
	pump(at);
	expect_request(&srv, PROTO_REGISTER, &rq);
	srv_registered(&srv, rq.timestamp, 43, 600, 0, token);
	pump(at);
	ck_assert_int_eq(mpc_state(m, NULL), MPC_REGISTERED);
	ck_assert_int_eq(rec.nev[MPC_EV_REGISTERED], 2);
	ck_assert_uint_eq(rec.last_st.reg_id, 43);
	/* The old id is not ours any more; the new one is. */
	srv_push(&srv, 42, 9, 1, 1, ctx, sizeof(ctx), token);
	pump(at);
	expect_nothing(&srv, 100);
	srv_push(&srv, 43, 1, 2, 2, ctx, sizeof(ctx), token);
	pump(at);
	expect_ack(&srv, 43, 1);
	ck_assert_int_eq(rec.pushes, 1);
	ck_assert_uint_eq(rec.last.new_messages, 2);
}
END_TEST

/* After three COOKIEs in a row the request waits for its retransmission. */
START_TEST(t_cookie_limit)
{
	struct mp_request rq;
	int i;

	ck_assert_int_eq(mpc_register(m, T0), 0);
	expect_request(&srv, PROTO_REGISTER, &rq);
	for (i = 0; i < 3; i++) {
		srv_cookie(&srv, rq.timestamp);
		pump(T0 + 10);
		expect_request(&srv, PROTO_REGISTER, &rq);
		ck_assert_mem_eq(rq.cookie, cookie, sizeof(cookie));
	}
	srv_cookie(&srv, rq.timestamp);
	pump(T0 + 20);
	expect_nothing(&srv, 100);
	mpc_tick(m, mpc_next_deadline(m));
	expect_request(&srv, PROTO_REGISTER, &rq);
	ck_assert_mem_eq(rq.cookie, cookie, sizeof(cookie));
}
END_TEST

/* A cookie under 60 s old is used again; an older one is not. */
START_TEST(t_cookie_reuse)
{
	struct mp_request rq;
	static const uint8_t zero[PROTO_COOKIE_LEN];

	register_fully(T0, 42, 600);
	ck_assert_int_eq(mpc_register(m, T0 + 59000), 0);
	expect_request(&srv, PROTO_REGISTER, &rq);
	ck_assert_mem_eq(rq.cookie, cookie, sizeof(cookie));
	ck_assert_int_eq(mpc_register(m, T0 + 60000), 0);
	expect_request(&srv, PROTO_REGISTER, &rq);
	ck_assert_mem_eq(rq.cookie, zero, sizeof(zero));
}
END_TEST

/*
 * A server that lost the registration answers the REFRESH with COOKIE
 * (the reg_id names nothing at this address), then UNKNOWN.
 */
START_TEST(t_refresh_cookie_unknown)
{
	struct mp_request rq;
	uint64_t at;

	register_fully(T0, 42, 600);
	at = mpc_next_deadline(m);
	mpc_tick(m, at);
	expect_request(&srv, PROTO_REFRESH, &rq);
	srv_cookie(&srv, rq.timestamp);
	pump(at);
	expect_request(&srv, PROTO_REFRESH, &rq);
	ck_assert_mem_eq(rq.cookie, cookie, sizeof(cookie));
	srv_refused(&srv, rq.timestamp, REASON_UNKNOWN, 0, (uint64_t)time(NULL),
	    token);
	pump(at);
	ck_assert_int_eq(rec.nev[MPC_EV_LOST], 1);
	/* The fresh cookie goes straight into the new REGISTER. */
	expect_request(&srv, PROTO_REGISTER, &rq);
	ck_assert_mem_eq(rq.cookie, cookie, sizeof(cookie));
	srv_registered(&srv, rq.timestamp, 77, 600, 0, token);
	pump(at);
	ck_assert_int_eq(mpc_state(m, NULL), MPC_REGISTERED);
	ck_assert_uint_eq(rec.last_st.reg_id, 77);
}
END_TEST

/* REGISTERED for our reg_id with a higher seq: pushes were missed. */
START_TEST(t_missed)
{
	struct mp_request rq;
	uint64_t at;

	register_fully(T0, 42, 600);
	ck_assert_uint_eq(rec.last_st.missed, 0);
	srv_push(&srv, 42, 1, 1, 1, ctx, sizeof(ctx), token);
	pump(T0);
	expect_ack(&srv, 42, 1);
	at = mpc_next_deadline(m);
	mpc_tick(m, at);
	expect_request(&srv, PROTO_REFRESH, &rq);
	srv_registered(&srv, rq.timestamp, 42, 600, 3, token);
	pump(at);
	ck_assert_int_eq(rec.last_ev, MPC_EV_REFRESHED);
	ck_assert_uint_eq(rec.last_st.server_seq, 3);
	ck_assert_uint_eq(rec.last_st.last_seq, 1);
	ck_assert_uint_eq(rec.last_st.missed, 2);
	/* A retransmission of seq 3 is still new to us. */
	srv_push(&srv, 42, 3, 4, 5, ctx, sizeof(ctx), token);
	pump(at);
	expect_ack(&srv, 42, 3);
	ck_assert_int_eq(rec.pushes, 2);
	ck_assert_uint_eq(rec.last.new_messages, 4);
}
END_TEST

START_TEST(t_stale)
{
	struct mp_request rq;
	struct mpc_status st;
	uint64_t ahead = ((uint64_t)time(NULL) + 1000) * 1000;	/* ms */

	ck_assert_int_eq(mpc_register(m, T0), 0);
	expect_request(&srv, PROTO_REGISTER, &rq);
	srv_refused(&srv, rq.timestamp, REASON_STALE, 120, ahead, token);
	pump(T0);
	ck_assert_int_eq(rec.nev[MPC_EV_STALE], 1);
	expect_request(&srv, PROTO_REGISTER, &rq);
	ck_assert_msg(rq.timestamp + 5000 >= ahead &&
	    rq.timestamp <= ahead + 5000,
	    "timestamp %llu not corrected to %llu",
	    (unsigned long long)rq.timestamp, (unsigned long long)ahead);
	mpc_state(m, &st);
	ck_assert_int_ge(st.clock_offset, 995000);
	ck_assert_int_le(st.clock_offset, 1005000);
	/* Retried once only: a second STALE is a refusal. */
	srv_refused(&srv, rq.timestamp, REASON_STALE, 120, ahead + 500, token);
	pump(T0);
	ck_assert_int_eq(mpc_state(m, &st), MPC_REFUSED);
	ck_assert_uint_eq(st.reason, REASON_STALE);
	ck_assert_uint_eq(st.limit, 120);
	mpc_tick(m, T0 + 100000);
	expect_nothing(&srv, 50);
}
END_TEST

/* Replies to nonces that are not outstanding, or with bad MACs. */
START_TEST(t_wrong_nonce)
{
	struct mp_request rq;
	struct mpc_stats st;

	ck_assert_int_eq(mpc_register(m, T0), 0);
	expect_request(&srv, PROTO_REGISTER, &rq);
	srv_cookie(&srv, rq.timestamp + 1);
	pump(T0);
	expect_nothing(&srv, 100);
	srv_registered(&srv, rq.timestamp ^ 0x80000000u, 42, 600, 0, token);
	pump(T0);
	ck_assert_int_eq(mpc_state(m, NULL), MPC_REGISTERING);
	srv_refused(&srv, rq.timestamp - 1, REASON_TOO_MANY, 8, 0, token);
	pump(T0);
	ck_assert_int_eq(mpc_state(m, NULL), MPC_REGISTERING);
	/* Right nonce, wrong MAC (bob's token, zero MAC). */
	srv_registered(&srv, rq.timestamp, 42, 600, 0, bob_token);
	pump(T0);
	srv_registered(&srv, rq.timestamp, 42, 600, 0, NULL);
	pump(T0);
	ck_assert_int_eq(mpc_state(m, NULL), MPC_REGISTERING);
	ck_assert_int_eq(rec.events, 0);
	mpc_stats(m, &st);
	ck_assert_uint_eq(st.dropped, 5);
	/* The right one still works. */
	srv_registered(&srv, rq.timestamp, 42, 600, 0, token);
	pump(T0);
	ck_assert_int_eq(mpc_state(m, NULL), MPC_REGISTERED);
	/* A second answer to the same (now finished) request is dropped. */
	srv_refused(&srv, rq.timestamp, REASON_TOO_MANY, 8, 0, token);
	pump(T0);
	ck_assert_int_eq(mpc_state(m, NULL), MPC_REGISTERED);
}
END_TEST

START_TEST(t_unregister)
{
	struct mp_request rq;

	ck_assert_int_eq(mpc_unregister(m, T0), -1);
	register_fully(T0, 42, 600);
	ck_assert_int_eq(mpc_unregister(m, T0 + 5), 0);
	ck_assert_int_eq(mpc_state(m, NULL), MPC_UNREGISTERING);
	expect_request(&srv, PROTO_UNREGISTER, &rq);
	srv_registered(&srv, rq.timestamp, 42, 0, 0, token);
	pump(T0 + 6);
	ck_assert_int_eq(mpc_state(m, NULL), MPC_UNREGISTERED);
	ck_assert_int_eq(rec.nev[MPC_EV_UNREGISTERED], 1);
	ck_assert_uint_eq(mpc_next_deadline(m), UINT64_MAX);
	srv_push(&srv, 42, 1, 1, 1, ctx, sizeof(ctx), token);
	pump(T0 + 7);
	expect_nothing(&srv, 100);
	ck_assert_int_eq(rec.pushes, 0);
}
END_TEST

/* An UNREGISTER answered UNKNOWN is as good as done. */
START_TEST(t_unregister_unknown)
{
	struct mp_request rq;

	register_fully(T0, 42, 600);
	ck_assert_int_eq(mpc_unregister(m, T0), 0);
	expect_request(&srv, PROTO_UNREGISTER, &rq);
	srv_refused(&srv, rq.timestamp, REASON_UNKNOWN, 0, (uint64_t)time(NULL),
	    token);
	pump(T0);
	ck_assert_int_eq(mpc_state(m, NULL), MPC_UNREGISTERED);
	ck_assert_int_eq(rec.nev[MPC_EV_UNREGISTERED], 1);
	ck_assert_int_eq(rec.nev[MPC_EV_LOST], 0);
	mpc_tick(m, T0 + 100000);
	expect_nothing(&srv, 50);
}
END_TEST

START_TEST(t_unregister_unanswered)
{
	struct mp_request rq;
	int i;

	register_fully(T0, 42, 600);
	ck_assert_int_eq(mpc_unregister(m, T0), 0);
	for (i = 0; i < MPC_UNREGISTER_TRIES; i++) {
		if (i > 0)
			mpc_tick(m, mpc_next_deadline(m));
		expect_request(&srv, PROTO_UNREGISTER, &rq);
	}
	mpc_tick(m, mpc_next_deadline(m));
	expect_nothing(&srv, 50);
	ck_assert_int_eq(mpc_state(m, NULL), MPC_UNREGISTERED);
	ck_assert_uint_eq(mpc_next_deadline(m), UINT64_MAX);
}
END_TEST

/* ---- refusals ---- */

START_TEST(t_refused_too_many)
{
	struct mp_request rq;
	struct mpc_status st;

	ck_assert_int_eq(mpc_register(m, T0), 0);
	expect_request(&srv, PROTO_REGISTER, &rq);
	srv_cookie(&srv, rq.timestamp);
	pump(T0);
	expect_request(&srv, PROTO_REGISTER, &rq);
	/* Unverifiable first: dropped. */
	srv_refused(&srv, rq.timestamp, REASON_TOO_MANY, 8, 0, bob_token);
	pump(T0);
	ck_assert_int_eq(mpc_state(m, NULL), MPC_REGISTERING);
	srv_refused(&srv, rq.timestamp, REASON_TOO_MANY, 8, (uint64_t)time(NULL),
	    token);
	pump(T0);
	ck_assert_int_eq(mpc_state(m, &st), MPC_REFUSED);
	ck_assert_uint_eq(st.reason, REASON_TOO_MANY);
	ck_assert_uint_eq(st.limit, 8);
	ck_assert_int_eq(st.verified, 1);
	ck_assert_str_eq(st.why, "too many registrations for this user");
	ck_assert_int_eq(rec.nev[MPC_EV_REFUSED], 1);
	ck_assert_uint_eq(rec.last_st.limit, 8);
	ck_assert_uint_eq(rec.last_st.reason, REASON_TOO_MANY);
	/* Stopped: nothing scheduled, nothing sent. */
	ck_assert_uint_eq(mpc_next_deadline(m), UINT64_MAX);
	mpc_tick(m, T0 + 3600000);
	expect_nothing(&srv, 50);
}
END_TEST

/* TABLE_FULL is for now, not for good: REGISTER again later, backing off
 * (issue 13 item 7). */
START_TEST(t_refused_table_full)
{
	struct mp_request rq;
	struct mpc_status st;
	uint64_t at;
	int i;

	ck_assert_int_eq(mpc_register(m, T0), 0);
	expect_request(&srv, PROTO_REGISTER, &rq);
	srv_refused(&srv, rq.timestamp, REASON_TABLE_FULL, 100000, 0, token);
	pump(T0);
	ck_assert_int_eq(mpc_state(m, &st), MPC_REFUSED);
	ck_assert_uint_eq(st.reason, REASON_TABLE_FULL);
	ck_assert_uint_eq(st.limit, 100000);
	ck_assert_int_eq(st.retry, 1);
	/* 30 s and up to 10% more */
	at = mpc_next_deadline(m);
	ck_assert_uint_ge(at, T0 + MPC_REFUSED_RETRY_MS);
	ck_assert_uint_le(at, T0 + MPC_REFUSED_RETRY_MS * 11 / 10);
	ck_assert_uint_eq(st.retry_ms, MPC_REFUSED_RETRY_MS);
	mpc_tick(m, at - 1);
	expect_nothing(&srv, 50);
	mpc_tick(m, at);
	expect_request(&srv, PROTO_REGISTER, &rq);
	ck_assert_int_eq(mpc_state(m, NULL), MPC_REGISTERING);
	/* refused again: the wait doubles, up to an hour */
	for (i = 1; i < 10; i++) {
		uint64_t want = MPC_REFUSED_RETRY_MS << i;

		if (want > MPC_REFUSED_RETRY_MAX_MS)
			want = MPC_REFUSED_RETRY_MAX_MS;
		srv_refused(&srv, rq.timestamp, REASON_ADDRESS_LIMIT, 4, 0,
		    token);
		pump(at);
		ck_assert_int_eq(mpc_state(m, &st), MPC_REFUSED);
		ck_assert_int_eq(st.retry, 1);
		ck_assert_uint_eq(st.retry_ms, want);
		ck_assert_uint_ge(mpc_next_deadline(m), at + want);
		ck_assert_uint_le(mpc_next_deadline(m), at + want * 11 / 10);
		at = mpc_next_deadline(m);
		mpc_tick(m, at);
		expect_request(&srv, PROTO_REGISTER, &rq);
	}
	/* a registration resets the backoff */
	srv_registered(&srv, rq.timestamp, 42, 600, 0, token);
	pump(at);
	mpc_state(m, &st);
	ck_assert_uint_eq(st.retry_ms, 0);
}
END_TEST

START_TEST(t_refused_auth_unverified)
{
	struct mp_request rq;
	struct mpc_status st;

	ck_assert_int_eq(mpc_register(m, T0), 0);
	expect_request(&srv, PROTO_REGISTER, &rq);
	srv_refused(&srv, rq.timestamp, REASON_AUTH, 0, 0, bob_token);
	pump(T0);
	ck_assert_int_eq(mpc_state(m, &st), MPC_REFUSED);
	ck_assert_uint_eq(st.reason, REASON_AUTH);
	ck_assert_int_eq(st.verified, 0);
	ck_assert_ptr_nonnull(strstr(st.why, "token probably wrong"));
}
END_TEST

/* A name the server cannot normalise: refused with a MAC of zeros. */
START_TEST(t_refused_bad_name_unverified)
{
	struct mp_request rq;
	struct mpc_status st;

	ck_assert_int_eq(mpc_register(m, T0), 0);
	expect_request(&srv, PROTO_REGISTER, &rq);
	srv_refused(&srv, rq.timestamp, REASON_BAD_REQUEST, 0, 0, NULL);
	pump(T0);
	ck_assert_int_eq(mpc_state(m, &st), MPC_REFUSED);
	ck_assert_uint_eq(st.reason, REASON_BAD_REQUEST);
	ck_assert_int_eq(st.verified, 0);
	ck_assert_ptr_nonnull(strstr(st.why, "user name refused"));
	/* and it stops: no retransmission */
	ck_assert_uint_eq(mpc_next_deadline(m), UINT64_MAX);
}
END_TEST

/* ---- pushes ---- */

START_TEST(t_push_once)
{
	struct mpc_stats st;

	register_fully(T0, 42, 600);
	srv_push(&srv, 42, 1, 3, 3, ctx, sizeof(ctx), token);
	pump(T0 + 100);
	expect_ack(&srv, 42, 1);
	ck_assert_int_eq(rec.pushes, 1);
	ck_assert_str_eq(rec.last.user, "alice");
	ck_assert_uint_eq(rec.last.reg_id, 42);
	ck_assert_uint_eq(rec.last.seq, 1);
	ck_assert_uint_eq(rec.last.count, 3);
	ck_assert_uint_eq(rec.last.total, 3);
	ck_assert_uint_eq(rec.last.new_messages, 3);
	ck_assert_uint_eq(rec.last.ctx_len, sizeof(ctx));
	ck_assert_mem_eq(rec.last.ctx, ctx, sizeof(ctx));
	ck_assert_uint_ge(rec.last.server_time, (uint64_t)time(NULL) - 5);
	mpc_stats(m, &st);
	ck_assert_uint_eq(st.pushes, 1);
	ck_assert_uint_eq(st.acks, 1);
}
END_TEST

START_TEST(t_push_retransmitted)
{
	struct mpc_stats st;

	register_fully(T0, 42, 600);
	srv_push(&srv, 42, 1, 3, 3, ctx, sizeof(ctx), token);
	pump(T0 + 100);
	expect_ack(&srv, 42, 1);
	srv_push(&srv, 42, 1, 3, 3, ctx, sizeof(ctx), token);
	pump(T0 + 1100);
	expect_ack(&srv, 42, 1);
	srv_push(&srv, 42, 1, 3, 3, ctx, sizeof(ctx), token);
	pump(T0 + 3100);
	expect_ack(&srv, 42, 1);
	ck_assert_int_eq(rec.pushes, 1);
	mpc_stats(m, &st);
	ck_assert_uint_eq(st.duplicates, 2);
	ck_assert_uint_eq(st.acks, 3);
	/* The next one is new again. */
	srv_push(&srv, 42, 2, 1, 4, ctx, sizeof(ctx), token);
	pump(T0 + 4000);
	expect_ack(&srv, 42, 2);
	ck_assert_int_eq(rec.pushes, 2);
	ck_assert_uint_eq(rec.last.new_messages, 1);
}
END_TEST

START_TEST(t_push_bad_mac)
{
	register_fully(T0, 42, 600);
	srv_push(&srv, 42, 1, 3, 3, ctx, sizeof(ctx), bob_token);
	pump(T0);
	srv_push(&srv, 42, 1, 3, 3, ctx, sizeof(ctx), NULL);
	pump(T0);
	expect_nothing(&srv, 150);
	ck_assert_int_eq(rec.pushes, 0);
}
END_TEST

START_TEST(t_push_foreign)
{
	static const uint8_t other[] = { 'c', 't', 'x', '-', '1', '2', '3',
	    '5' };
	struct mpc_stats st;

	struct mp_request rq;

	/* While registering, before any REGISTERED, nothing is ours. */
	ck_assert_int_eq(mpc_register(m, T0), 0);
	expect_request(&srv, PROTO_REGISTER, &rq);
	srv_push(&srv, 0, 1, 1, 1, ctx, sizeof(ctx), token);
	pump(T0);
	srv_push(&srv, 42, 1, 1, 1, ctx, sizeof(ctx), token);
	pump(T0);
	srv_registered(&srv, rq.timestamp, 42, 600, 0, token);
	pump(T0);
	ck_assert_int_eq(mpc_state(m, NULL), MPC_REGISTERED);

	srv_push(&srv, 42, 1, 1, 1, other, sizeof(other), token);
	pump(T0);
	srv_push(&srv, 42, 1, 1, 1, ctx, sizeof(ctx) - 1, token);
	pump(T0);
	srv_push(&srv, 42, 1, 1, 1, (const uint8_t *)"", 0, token);
	pump(T0);
	srv_push(&srv, 41, 1, 1, 1, ctx, sizeof(ctx), token);
	pump(T0);
	srv_push(&srv, 43, 1, 1, 1, ctx, sizeof(ctx), token);
	pump(T0);
	expect_nothing(&srv, 150);
	ck_assert_int_eq(rec.pushes, 0);
	mpc_stats(m, &st);
	ck_assert_uint_eq(st.dropped, 7);
	ck_assert_uint_eq(st.acks, 0);
}
END_TEST

START_TEST(t_push_new_messages)
{
	register_fully(T0, 42, 600);
	srv_push(&srv, 42, 1, 2, 2, ctx, sizeof(ctx), token);
	pump(T0);
	expect_ack(&srv, 42, 1);
	ck_assert_uint_eq(rec.last.new_messages, 2);
	/* That ACK was lost: seq 2 counts its 2 again, total does not. */
	srv_push(&srv, 42, 2, 5, 5, ctx, sizeof(ctx), token);
	pump(T0);
	expect_ack(&srv, 42, 2);
	ck_assert_uint_eq(rec.last.count, 5);
	ck_assert_uint_eq(rec.last.new_messages, 3);
	/* seq 3 (1 message, total 6) lost on the way; seq 4 says total 9. */
	srv_push(&srv, 42, 4, 4, 9, ctx, sizeof(ctx), token);
	pump(T0);
	expect_ack(&srv, 42, 4);
	ck_assert_int_eq(rec.pushes, 3);
	ck_assert_uint_eq(rec.last.seq, 4);
	ck_assert_uint_eq(rec.last.new_messages, 4);
	/* A late copy of seq 3 is acked but not new. */
	srv_push(&srv, 42, 3, 1, 6, ctx, sizeof(ctx), token);
	pump(T0);
	expect_ack(&srv, 42, 3);
	ck_assert_int_eq(rec.pushes, 3);
	/* A total that went back (server state reset): count it is. */
	srv_push(&srv, 42, 5, 2, 3, ctx, sizeof(ctx), token);
	pump(T0);
	expect_ack(&srv, 42, 5);
	ck_assert_uint_eq(rec.last.new_messages, 2);
	/* Totals wrap modulo 2^32. */
	srv_push(&srv, 42, 6, 1, 0xffffffffu, ctx, sizeof(ctx), token);
	pump(T0);
	expect_ack(&srv, 42, 6);
	srv_push(&srv, 42, 7, 2, 1, ctx, sizeof(ctx), token);
	pump(T0);
	expect_ack(&srv, 42, 7);
	ck_assert_uint_eq(rec.last.new_messages, 2);
}
END_TEST

/* The first push seen reports its count, not its total. */
START_TEST(t_push_first_uses_count)
{
	register_fully(T0, 42, 600);
	srv_push(&srv, 42, 7, 2, 40, ctx, sizeof(ctx), token);
	pump(T0);
	expect_ack(&srv, 42, 7);
	ck_assert_uint_eq(rec.last.new_messages, 2);
	ck_assert_uint_eq(rec.last.total, 40);
}
END_TEST

/* ---- malformed ---- */

START_TEST(t_garbage)
{
	uint8_t buf[PROTO_MAX_DATAGRAM + 100], pk[32];
	uint8_t nonce[PROTO_PUSH_NONCE_LEN] = { 1 };
	static struct mp_push p = { .reg_id = 42, .seq = 1, .count = 1,
	    .total = 1, .ctx_len = sizeof(ctx), .epoch = EPOCH };
	struct mp_reply rp = { .type = PROTO_REGISTERED, .reg_id = 42,
	    .lifetime = 600 };
	static struct mp_request ack;
	struct mpc_stats st;
	uint64_t dropped;
	int n, len, i;

	register_fully(T0, 42, 600);
	mpc_stats(m, &st);
	dropped = st.dropped;
	memcpy(p.ctx, ctx, sizeof(ctx));
	proto_push_key(token, pk);
	len = proto_push_seal(&p, pk, nonce, buf, sizeof(buf));
	ck_assert_int_gt(len, 0);

	/* Every prefix of a valid push, directly. */
	for (n = 0; n < len; n++)
		ck_assert_int_eq(mpc_handle_datagram(m, buf, (size_t)n, T0),
		    -1);
	mpc_stats(m, &st);
	ck_assert_uint_eq(st.dropped, dropped + (uint64_t)len);
	dropped = st.dropped;
	/* A byte changed in the sealed part. */
	buf[40] ^= 0x10;
	ck_assert_int_eq(mpc_handle_datagram(m, buf, (size_t)len, T0), -1);
	buf[40] ^= 0x10;
	/* Wrong magic, version 1 or 3, unknown type. */
	buf[0] ^= 1;
	ck_assert_int_eq(mpc_handle_datagram(m, buf, (size_t)len, T0), -1);
	buf[0] ^= 1;
	buf[2] = 1;
	ck_assert_int_eq(mpc_handle_datagram(m, buf, (size_t)len, T0), -1);
	buf[2] = 3;
	ck_assert_int_eq(mpc_handle_datagram(m, buf, (size_t)len, T0), -1);
	buf[2] = 2;
	buf[3] = PROTO_TYPE_MAX + 1;
	ck_assert_int_eq(mpc_handle_datagram(m, buf, (size_t)len, T0), -1);
	buf[3] = PROTO_PUSH;
	/* Too large, even with a valid start. */
	ck_assert_int_eq(mpc_handle_datagram(m, buf, PROTO_MAX_DATAGRAM + 1,
	    T0), -1);
	/* A request type the server must never send to a client. */
	memset(&ack, 0, sizeof(ack));
	ack.type = PROTO_PUSH_ACK;
	ack.user_len = 5;
	memcpy(ack.user, "alice", 5);
	n = proto_request_encode(&ack, token, buf + 200, 300);
	ck_assert_int_eq(mpc_handle_datagram(m, buf + 200, (size_t)n, T0),
	    -1);
	/* Truncated REGISTERED. */
	n = proto_reply_encode(&rp, token, buf + 200, 100);
	ck_assert_int_eq(mpc_handle_datagram(m, buf + 200, (size_t)n - 1,
	    T0), -1);
	mpc_stats(m, &st);
	ck_assert_uint_eq(st.dropped, dropped + 8);
	dropped = st.dropped;

	/* Over the socket: empty, random, oversized, truncated push. */
	srv_send(&srv, buf, 0);
	pump(T0);
	for (i = 0; i < (int)sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 31 + 7);
	srv_send(&srv, buf, 200);
	pump(T0);
	srv_send(&srv, buf, sizeof(buf));
	pump(T0);
	len = proto_push_seal(&p, pk, nonce, buf, sizeof(buf));
	srv_send(&srv, buf, (size_t)len - 1);
	pump(T0);
	mpc_stats(m, &st);
	ck_assert_uint_eq(st.dropped, dropped + 4);

	expect_nothing(&srv, 150);
	ck_assert_int_eq(rec.pushes, 0);
	ck_assert_int_eq(mpc_state(m, NULL), MPC_REGISTERED);
	/* Still works afterwards. */
	srv_send(&srv, buf, (size_t)len);
	pump(T0);
	expect_ack(&srv, 42, 1);
	ck_assert_int_eq(rec.pushes, 1);
}
END_TEST

START_TEST(t_params)
{
	static char longname[MP_MAILBOX_MAX + 1];
	static uint8_t big[MP_CONTEXT_MAX + 1];
	struct mpc_params pa;
	struct mpc *x;
	size_t i;

	memset(&pa, 0, sizeof(pa));
	pa.user = "";
	errno = 0;
	ck_assert_ptr_null(mpc_new((struct sockaddr *)&srv.addr, srv.addrlen,
	    &pa, NULL));
	ck_assert_int_eq(errno, EINVAL);
	pa.user = "alice";
	pa.ctx = big;
	pa.ctx_len = sizeof(big);
	ck_assert_ptr_null(mpc_new((struct sockaddr *)&srv.addr, srv.addrlen,
	    &pa, NULL));
	ck_assert_int_eq(errno, EINVAL);
	pa.ctx_len = 0;
	pa.mailboxes[0] = "";
	pa.n_mailboxes = 1;
	ck_assert_ptr_null(mpc_new((struct sockaddr *)&srv.addr, srv.addrlen,
	    &pa, NULL));
	ck_assert_int_eq(errno, EINVAL);
	/* 16 mailboxes of 255 bytes do not fit in one datagram. */
	memset(longname, 'm', MP_MAILBOX_MAX);
	for (i = 0; i < MP_MAILBOXES_MAX; i++)
		pa.mailboxes[i] = longname;
	pa.n_mailboxes = MP_MAILBOXES_MAX;
	ck_assert_ptr_null(mpc_new((struct sockaddr *)&srv.addr, srv.addrlen,
	    &pa, NULL));
	ck_assert_int_eq(errno, EINVAL);
	/* Four of them do. */
	pa.n_mailboxes = 4;
	x = mpc_new((struct sockaddr *)&srv.addr, srv.addrlen, &pa, NULL);
	ck_assert_ptr_nonnull(x);
	ck_assert_int_ge(mpc_fd(x), 0);
	ck_assert_int_ne(fcntl(mpc_fd(x), F_GETFL) & O_NONBLOCK, 0);
	mpc_free(x);
}
END_TEST

/* ---- keep-alive, probes, KICK ---- */

/* A client that probes, registered with keep-alive bounds min..max s. */
static void
probe_client(uint16_t min, uint16_t max)
{
	struct mpc_params pa;
	struct mpc_callbacks cb = { .push = on_push, .state = on_state,
	    .arg = &rec };

	mpc_free(m);
	memset(&pa, 0, sizeof(pa));
	pa.user = "alice";
	memcpy(pa.token, token, sizeof(pa.token));
	memcpy(pa.device, device, sizeof(pa.device));
	pa.ctx = ctx;
	pa.ctx_len = sizeof(ctx);
	m = mpc_new((const struct sockaddr *)&srv.addr, srv.addrlen, &pa, &cb);
	ck_assert_ptr_nonnull(m);
	ka_min = min;
	ka_max = max;
	register_fully(T0, 42, 3600);
}

static void
expect_keepalive(struct srv *s, uint32_t id)
{
	uint8_t buf[PROTO_MAX_DATAGRAM + 1];
	const char *why;
	uint32_t got;
	ssize_t n;

	n = srv_recv(s, buf, sizeof(buf), WAIT_MS);
	ck_assert_msg(n > 0, "no KEEPALIVE");
	ck_assert_int_eq(proto_keepalive_decode(buf, (size_t)n, &got, &why),
	    0);
	ck_assert_uint_eq(got, id);
}

/* Tick on until the client sends a PROBE (answering keep-alives go by);
 * 0 with it in *rq and the time in *at, -1 if it sends none for an hour. */
static int
next_probe(struct mp_request *rq, uint64_t *at)
{
	uint8_t buf[PROTO_MAX_DATAGRAM + 1];
	const char *why;
	uint64_t now;
	ssize_t n;

	while ((now = mpc_next_deadline(m)) < T0 + 3600000) {
		mpc_tick(m, now);
		/* a deadline may pass with nothing to send (a search
		 * that ends) */
		if ((n = srv_recv(&srv, buf, sizeof(buf), 50)) <= 0 ||
		    proto_type(buf, (size_t)n) == PROTO_KEEPALIVE)
			continue;
		ck_assert_int_eq(proto_request_decode(buf, (size_t)n, rq, &why),
		    0);
		if (rq->type == PROTO_REFRESH) {
			srv_registered(&srv, rq->timestamp, 42, 3600, 0,
			    token);
			pump(now);
			continue;
		}
		ck_assert_int_eq(rq->type, PROTO_PROBE);
		ck_assert_int_eq(proto_verify(buf, (size_t)n, token), 0);
		*at = now;
		return 0;
	}
	return -1;
}

static void
srv_probe_echo(struct srv *s, uint64_t ts, const uint8_t *tok)
{
	struct mp_reply rp = { .type = PROTO_PROBE_ECHO, .timestamp = ts };
	uint8_t buf[64];
	int n;

	ck_assert_int_eq(n = proto_reply_encode(&rp, tok, buf, sizeof(buf)),
	    PROTO_PROBE_ECHO_LEN);
	srv_send(s, buf, (size_t)n);
}

/*
 * KEEPALIVE whenever nothing was sent for the interval, which starts at
 * the server's minimum; anything sent (an acknowledgement) puts it off.
 */
START_TEST(t_keepalive_interval)
{
	struct mpc_status st;
	uint64_t at;

	ka_min = 20;
	ka_max = 300;
	register_fully(T0, 42, 3600);	/* no_probe: probing is off */
	mpc_state(m, &st);
	ck_assert_uint_eq(st.keepalive_ms, 20000);
	ck_assert_uint_eq(st.keepalive_min_ms, 20000);
	ck_assert_uint_eq(st.keepalive_max_ms, 300000);
	at = mpc_next_deadline(m);
	ck_assert_uint_eq(at, T0 + 20000);
	mpc_tick(m, at - 1);
	expect_nothing(&srv, 50);
	mpc_tick(m, at);
	expect_keepalive(&srv, 42);
	ck_assert_uint_eq(mpc_next_deadline(m), at + 20000);
	/* a push's acknowledgement counts as traffic */
	srv_push(&srv, 42, 1, 1, 1, ctx, sizeof(ctx), token);
	pump(at + 15000);
	expect_ack(&srv, 42, 1);
	ck_assert_uint_eq(mpc_next_deadline(m), at + 15000 + 20000);
}
END_TEST

/*
 * Probes: silence for D (no keep-alive), a PROBE_ECHO proves the mapping
 * survives; one that does not come makes the client REFRESH at once and
 * keep alive below the failed delay.
 */
START_TEST(t_probe_search)
{
	struct mp_request rq;
	struct mpc_status st;
	uint64_t now, ts;

	probe_client(10, 100);
	mpc_state(m, &st);
	ck_assert_uint_eq(st.keepalive_ms, 10000);
	/* the first probe a second after registering: 2 x 10 s */
	now = mpc_next_deadline(m);
	ck_assert_uint_eq(now, T0 + 1000);
	mpc_tick(m, now);
	expect_request(&srv, PROTO_PROBE, &rq);
	ck_assert_uint_eq(rq.seq, 20);
	ts = rq.timestamp;
	/* silence until D + 3 s: no keep-alive meanwhile */
	ck_assert_uint_eq(mpc_next_deadline(m), now + 23000);
	mpc_tick(m, now + 15000);
	expect_nothing(&srv, 50);
	/* the echo at D: the mapping survived 20 s */
	srv_probe_echo(&srv, ts, token);
	pump(now + 20000);
	ck_assert_int_eq(rec.last_ev, MPC_EV_KEEPALIVE);
	mpc_state(m, &st);
	ck_assert_uint_eq(st.probe_good_ms, 20000);
	ck_assert_uint_eq(st.keepalive_ms, 15000);	/* 3/4 of 20 s */
	/* a forged or stale echo counts for nothing */
	srv_probe_echo(&srv, ts, token);
	pump(now + 20000);
	srv_probe_echo(&srv, ts, bob_token);
	pump(now + 20000);
	/* silent 20 s: a keep-alive now, then the next probe, 40 s; no echo
	 * this time */
	ck_assert_int_eq(next_probe(&rq, &now), 0);
	ck_assert_uint_eq(now, T0 + 22000);
	ck_assert_uint_eq(rq.seq, 40);
	mpc_tick(m, now + 43000);
	/* the mapping may be gone: REFRESH at once */
	expect_request(&srv, PROTO_REFRESH, &rq);
	srv_registered(&srv, rq.timestamp, 42, 3600, 0, token);
	pump(now + 43000);
	mpc_state(m, &st);
	ck_assert_uint_eq(st.probe_bad_ms, 40000);
	ck_assert_uint_eq(st.keepalive_ms, 15000);
	/* then halfway: 30 s */
	ck_assert_int_eq(next_probe(&rq, &now), 0);
	ck_assert_uint_eq(rq.seq, 30);
}
END_TEST

/* The server's bounds hold: never below keepalive_min, never above max;
 * a probe never asks for more than keepalive_max. */
START_TEST(t_probe_bounds)
{
	struct mp_request rq;
	struct mpc_status st;
	uint64_t now;
	int i;

	probe_client(10, 25);
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(next_probe(&rq, &now), 0);
		ck_assert_uint_le(rq.seq, 25);
		srv_probe_echo(&srv, rq.timestamp, token);
		pump(now + rq.seq * 1000);
	}
	mpc_state(m, &st);
	ck_assert_uint_eq(st.probe_good_ms, 25000);
	ck_assert_uint_eq(st.keepalive_ms, 18750);
	/* converged at the maximum: no probe for an hour, keep-alives */
	ck_assert_int_eq(next_probe(&rq, &now), -1);
}
END_TEST

/* KICK: REFRESH at once, at most one per 2 s; not for another reg_id. */
START_TEST(t_kick)
{
	struct mp_request rq;
	struct mp_reply rp = { .type = PROTO_KICK, .reg_id = 42 };
	uint8_t buf[16];
	int n;

	register_fully(T0, 42, 600);
	n = proto_reply_encode(&rp, NULL, buf, sizeof(buf));
	srv_send(&srv, buf, (size_t)n);
	pump(T0 + 100);
	expect_request(&srv, PROTO_REFRESH, &rq);
	ck_assert_int_eq(rec.nev[MPC_EV_KICK], 1);
	srv_registered(&srv, rq.timestamp, 42, 600, 0, token);
	pump(T0 + 100);
	srv_send(&srv, buf, (size_t)n);
	pump(T0 + 1000);
	expect_nothing(&srv, 100);
	rp.reg_id = 43;
	n = proto_reply_encode(&rp, NULL, buf, sizeof(buf));
	srv_send(&srv, buf, (size_t)n);
	pump(T0 + 5000);
	expect_nothing(&srv, 100);
	ck_assert_int_eq(rec.nev[MPC_EV_KICK], 1);
}
END_TEST

/* A new epoch: the server restarted; the next push is reported even
 * though its seq repeats, and a late one of the old epoch is not. */
START_TEST(t_new_epoch)
{
	register_fully(T0, 42, 600);
	srv_push(&srv, 42, 1, 1, 1, ctx, sizeof(ctx), token);
	pump(T0);
	expect_ack(&srv, 42, 1);
	srv_push(&srv, 42, 2, 1, 2, ctx, sizeof(ctx), token);
	pump(T0);
	expect_ack(&srv, 42, 2);
	ck_assert_int_eq(rec.pushes, 2);
	/* kill -9 lost seq 2: the restarted server says seq 2 again */
	srv_epoch = EPOCH + 1;
	srv_push(&srv, 42, 2, 2, 3, ctx, sizeof(ctx), token);
	pump(T0);
	expect_ack(&srv, 42, 2);
	ck_assert_int_eq(rec.pushes, 3);
	ck_assert_int_eq(rec.last.restarted, 1);
	ck_assert_uint_eq(rec.last.new_messages, 2);
	ck_assert_uint_eq(rec.last.epoch, EPOCH + 1);
	/* a late copy from before the restart */
	srv_epoch = EPOCH;
	srv_push(&srv, 42, 3, 1, 3, ctx, sizeof(ctx), token);
	pump(T0);
	expect_ack(&srv, 42, 3);
	ck_assert_int_eq(rec.pushes, 3);
}
END_TEST

/* The device file: made once, mode 0600, read back; garbage refused. */
START_TEST(t_device_file)
{
	char dir[] = "/tmp/mpdev.XXXXXX", path[64];
	uint8_t d1[MP_DEVICE_ID_LEN], d2[MP_DEVICE_ID_LEN];
	struct stat sb;
	int created;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/device", dir);
	ck_assert_int_eq(mpc_device_load(path, d1, &created), 0);
	ck_assert_int_eq(created, 1);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0600);
	ck_assert_uint_eq(sb.st_size, 33);
	ck_assert_int_eq(mpc_device_load(path, d2, &created), 0);
	ck_assert_int_eq(created, 0);
	ck_assert_mem_eq(d1, d2, sizeof(d1));
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fprintf(f, "not a device id\n");
	fclose(f);
	errno = 0;
	ck_assert_int_eq(mpc_device_load(path, d2, &created), -1);
	ck_assert_int_eq(errno, EINVAL);
	unlink(path);
	rmdir(dir);
}
END_TEST

/* ---- mailpush-listen ---- */

static char	tmpdir[64];
static char	tokpath[128];
static char	outpath[128];
static pid_t	lpid = -1;

static void
listen_cleanup(void)
{
	if (lpid > 0) {
		kill(lpid, SIGKILL);
		waitpid(lpid, NULL, 0);
		lpid = -1;
	}
	if (tmpdir[0] != '\0') {
		unlink(tokpath);
		unlink(outpath);
		rmdir(tmpdir);
		tmpdir[0] = '\0';
	}
}

static void
listen_setup(void)
{
	static int registered;
	char hex[2 * MP_TOKEN_LEN + 1];
	FILE *f;

	setup();
	if (!registered) {
		/* Failing tests exit without teardown in fork mode. */
		atexit(listen_cleanup);
		registered = 1;
	}
	strcpy(tmpdir, "/tmp/mpclient.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(tokpath, sizeof(tokpath), "%s/token", tmpdir);
	snprintf(outpath, sizeof(outpath), "%s/out", tmpdir);
	proto_hex_encode(token, sizeof(token), hex);
	ck_assert_ptr_nonnull(f = fopen(tokpath, "w"));
	fprintf(f, "%s\n", hex);
	ck_assert_int_eq(fclose(f), 0);
}

static void
listen_teardown(void)
{
	listen_cleanup();
	teardown();
}

/* Start mailpush-listen with stdout and stderr on pipes. */
static void
listen_run(const char *const argv[], int *out, int *err)
{
	int po[2], pe[2];

	ck_assert_msg(access(LISTEN_BIN, X_OK) == 0,
	    "%s not built (make %s)", LISTEN_BIN, LISTEN_BIN);
	ck_assert_int_eq(pipe2(po, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(pe, O_CLOEXEC), 0);
	ck_assert_int_ne(lpid = fork(), -1);
	if (lpid == 0) {
		dup2(po[1], STDOUT_FILENO);
		dup2(pe[1], STDERR_FILENO);
		execv(LISTEN_BIN, (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	*out = po[0];
	*err = pe[0];
}

static int
listen_wait(int ms)
{
	int status, i;
	pid_t r;

	for (i = 0; i < ms / 10; i++) {
		if ((r = waitpid(lpid, &status, WNOHANG)) == lpid) {
			lpid = -1;
			ck_assert_msg(WIFEXITED(status),
			    "mailpush-listen killed by signal %d",
			    WTERMSIG(status));
			return WEXITSTATUS(status);
		}
		ck_assert_int_eq(r, 0);
		poll(NULL, 0, 10);
	}
	ck_abort_msg("mailpush-listen did not exit within %d ms", ms);
	return -1;
}

/* Everything up to EOF, bounded. */
static void
read_all(int fd, char *buf, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t off = 0;
	ssize_t n;

	for (;;) {
		ck_assert_msg(poll(&pfd, 1, WAIT_MS) == 1, "output not closed");
		n = read(fd, buf + off, len - 1 - off);
		ck_assert_int_ge(n, 0);
		if (n == 0)
			break;
		off += (size_t)n;
		ck_assert_uint_lt(off, len - 1);
	}
	buf[off] = '\0';
	close(fd);
}

/* Read lines from fd until one contains what. */
static void
wait_for_line(int fd, const char *what)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char buf[4096];
	size_t off = 0;
	ssize_t n;

	for (;;) {
		ck_assert_msg(poll(&pfd, 1, WAIT_MS) == 1, "no \"%s\"", what);
		n = read(fd, buf + off, sizeof(buf) - 1 - off);
		ck_assert_int_gt(n, 0);
		off += (size_t)n;
		buf[off] = '\0';
		if (strstr(buf, what) != NULL)
			return;
		ck_assert_uint_lt(off, sizeof(buf) - 1);
	}
}

/*
 * Play the server for mailpush-listen: the next request of this type
 * (skipping retransmissions of others), decoded and MAC-checked.
 */
static void
srv_next(struct srv *s, int type, struct mp_request *rq)
{
	uint8_t buf[PROTO_MAX_DATAGRAM + 1];
	const char *why = "";
	ssize_t n;
	int i;

	for (i = 0; i < 20; i++) {
		n = srv_recv(s, buf, sizeof(buf), WAIT_MS);
		ck_assert_msg(n > 0, "no %s from mailpush-listen",
		    proto_type_name((unsigned)type));
		if (proto_type(buf, (size_t)n) != type)
			continue;
		ck_assert_msg(proto_request_decode(buf, (size_t)n, rq,
		    &why) == 0, "bad request: %s", why);
		ck_assert_msg(proto_verify(buf, (size_t)n, token) == 0,
		    "request MAC does not verify");
		memcpy(srv_device, rq->device, sizeof(srv_device));
		return;
	}
	ck_abort_msg("no %s", proto_type_name((unsigned)type));
}

static void
srv_next_ack(struct srv *s, uint32_t id, uint32_t seq)
{
	static struct mp_request rq;

	(void)id;
	srv_next(s, PROTO_PUSH_ACK, &rq);
	ck_assert_uint_eq(rq.seq, seq);
	ck_assert_uint_eq(rq.epoch, srv_epoch);
}

/* Cookie round trip, then REGISTERED(id) or REFUSED(reason, limit). */
static void
srv_handshake(struct srv *s, struct mp_request *rq, uint32_t id,
    uint8_t reason, uint32_t limit)
{
	int i;

	for (i = 0; i < 10; i++) {
		srv_next(s, PROTO_REGISTER, rq);
		if (memcmp(rq->cookie, cookie, sizeof(cookie)) != 0) {
			srv_cookie(s, rq->timestamp);
			continue;
		}
		if (reason == 0)
			srv_registered(s, rq->timestamp, id, 600, 0, token);
		else
			srv_refused(s, rq->timestamp, reason, limit,
			    (uint64_t)time(NULL), token);
		return;
	}
	ck_abort_msg("no REGISTER with the cookie");
}

static void
srv_answer_unregister(struct srv *s, uint32_t id)
{
	struct mp_request rq;

	srv_next(s, PROTO_UNREGISTER, &rq);
	srv_registered(s, rq.timestamp, id, 0, 0, token);
}

static void
assert_match(const char *re, const char *s)
{
	regex_t r;

	ck_assert_int_eq(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
	ck_assert_msg(regexec(&r, s, 0, NULL, 0) == 0, "\"%s\" !~ /%s/", s,
	    re);
	regfree(&r);
}

START_TEST(t_listen_once)
{
	struct mp_request rq;
	char addr[64], out[1024], err[1024];
	const char *argv[] = { "mailpush-listen", "-s", addr, "-u", "alice",
	    "-K", tokpath, "-m", "INBOX", "-1", "-t", "10", NULL };
	int fo, fe;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
	listen_run(argv, &fo, &fe);
	srv_handshake(&srv, &rq, 7, 0, 0);
	ck_assert_str_eq(rq.user, "alice");
	ck_assert_uint_eq(rq.ctx_len, 15);
	ck_assert_mem_eq(rq.ctx, "mailpush-listen", 15);
	ck_assert_uint_eq(rq.n_mailboxes, 1);
	ck_assert_str_eq(rq.mailboxes[0].name, "INBOX");
	srv_push(&srv, 7, 1, 2, 5, (const uint8_t *)"mailpush-listen", 15,
	    token);
	srv_next_ack(&srv, 7, 1);
	srv_answer_unregister(&srv, 7);
	ck_assert_int_eq(listen_wait(WAIT_MS), 0);
	read_all(fo, out, sizeof(out));
	read_all(fe, err, sizeof(err));
	assert_match("^push user=alice seq=1 count=2 new=2 total=5 time="
	    TIME_RE "\n$", out);
	ck_assert_str_eq(err, "");
}
END_TEST

/* Over IPv6 with -C and -x: the command sees the push in its environment. */
START_TEST(t_listen_command_v6)
{
	struct srv s6;
	struct mp_request rq;
	char addr[64], cmd[512], out[1024], err[1024], file[256];
	const char *argv[] = { "mailpush-listen", "-s", addr, "-u", "alice",
	    "-K", tokpath, "-C", "phone", "-x", cmd, "-1", "-t", "10", NULL };
	struct srv *s = &s6;
	FILE *f;
	int fo, fe;

	if (srv_open(&s6, AF_INET6) == 0)
		snprintf(addr, sizeof(addr), "[::1]:%d", s6.port);
	else {
		/* No IPv6 loopback here: test -x over IPv4 instead. */
		fprintf(stderr, "check_client: no ::1, -x over 127.0.0.1\n");
		s = &srv;
		snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
	}
	snprintf(cmd, sizeof(cmd), "printf '%%s|%%s|%%s|%%s|%%s|%%s\\n' "
	    "\"$MAILPUSH_USER\" \"$MAILPUSH_SEQ\" \"$MAILPUSH_COUNT\" "
	    "\"$MAILPUSH_NEW\" \"$MAILPUSH_TOTAL\" \"$MAILPUSH_TIME\" > %s",
	    outpath);
	listen_run(argv, &fo, &fe);
	srv_handshake(s, &rq, 9, 0, 0);
	ck_assert_uint_eq(rq.ctx_len, 5);
	ck_assert_mem_eq(rq.ctx, "phone", 5);
	ck_assert_uint_eq(rq.n_mailboxes, 0);
	srv_push(s, 9, 4, 3, 10, (const uint8_t *)"phone", 5, token);
	srv_next_ack(s, 9, 4);
	srv_answer_unregister(s, 9);
	ck_assert_int_eq(listen_wait(WAIT_MS), 0);
	read_all(fo, out, sizeof(out));
	read_all(fe, err, sizeof(err));
	ck_assert_str_eq(out, "");
	ck_assert_str_eq(err, "");
	ck_assert_ptr_nonnull(f = fopen(outpath, "r"));
	ck_assert_ptr_nonnull(fgets(file, sizeof(file), f));
	fclose(f);
	assert_match("^alice\\|4\\|3\\|3\\|10\\|" TIME_RE "\n$", file);
	if (s == &s6)
		close(s6.fd);
}
END_TEST

static long
elapsed_ms(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (b.tv_sec - a->tv_sec) * 1000 +
	    (b.tv_nsec - a->tv_nsec) / 1000000;
}

/*
 * -x with a slow command: pushes are acked at once while it runs, and
 * those that arrived meanwhile run it once more, added up.
 */
START_TEST(t_listen_command_coalesce)
{
	struct mp_request rq;
	struct timespec t;
	char addr[64], cmd[512], out[1024], err[1024], file[256];
	const char *argv[] = { "mailpush-listen", "-s", addr, "-u", "alice",
	    "-K", tokpath, "-x", cmd, "-t", "10", NULL };
	const uint8_t *c = (const uint8_t *)"mailpush-listen";
	FILE *f;
	size_t n;
	int fo, fe, i;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
	file[0] = '\0';
	snprintf(cmd, sizeof(cmd), "echo \"$MAILPUSH_SEQ $MAILPUSH_COUNT "
	    "$MAILPUSH_NEW $MAILPUSH_TOTAL\" >> %s; sleep 1", outpath);
	listen_run(argv, &fo, &fe);
	srv_handshake(&srv, &rq, 5, 0, 0);
	srv_push(&srv, 5, 1, 1, 1, c, 15, token);
	srv_next_ack(&srv, 5, 1);
	clock_gettime(CLOCK_MONOTONIC, &t);
	srv_push(&srv, 5, 2, 2, 3, c, 15, token);
	srv_next_ack(&srv, 5, 2);
	srv_push(&srv, 5, 3, 1, 4, c, 15, token);
	srv_next_ack(&srv, 5, 3);
	ck_assert_msg(elapsed_ms(&t) < 700, "acks waited for the command");
	/* The second run ends about 2 s after the first push. */
	for (i = 0; i < 500; i++) {
		if ((f = fopen(outpath, "r")) != NULL) {
			n = fread(file, 1, sizeof(file) - 1, f);
			fclose(f);
			file[n] = '\0';
			if (strchr(file, '\n') != strrchr(file, '\n'))
				break;
		}
		poll(NULL, 0, 10);
	}
	ck_assert_str_eq(file, "1 1 1 1\n3 3 3 4\n");
	poll(NULL, 0, 1100);	/* let the second sleep end */
	ck_assert_int_eq(kill(lpid, SIGTERM), 0);
	srv_answer_unregister(&srv, 5);
	ck_assert_int_eq(listen_wait(WAIT_MS), 0);
	read_all(fo, out, sizeof(out));
	read_all(fe, err, sizeof(err));
	ck_assert_str_eq(out, "");
	ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(t_listen_refused)
{
	struct mp_request rq;
	char addr[64], out[1024], err[1024];
	const char *argv[] = { "mailpush-listen", "-s", addr, "-u", "alice",
	    "-K", tokpath, "-t", "10", NULL };
	int fo, fe;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
	listen_run(argv, &fo, &fe);
	srv_handshake(&srv, &rq, 0, REASON_TOO_MANY, 8);
	ck_assert_int_eq(listen_wait(WAIT_MS), 2);
	read_all(fo, out, sizeof(out));
	read_all(fe, err, sizeof(err));
	ck_assert_str_eq(out, "");
	ck_assert_str_eq(err, "mailpush-listen: registration refused: "
	    "too many registrations for this user (limit 8)\n");
}
END_TEST

/* Issue 13 item 7: a full server is not a reason to exit: it says so on
 * stderr and keeps running (registering again later); SIGTERM ends it. */
START_TEST(t_listen_full_keeps_running)
{
	struct mp_request rq;
	char addr[64], out[1024], err[1024];
	const char *argv[] = { "mailpush-listen", "-s", addr, "-u", "alice",
	    "-K", tokpath, NULL };
	int fo, fe;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
	listen_run(argv, &fo, &fe);
	srv_handshake(&srv, &rq, 0, REASON_TABLE_FULL, 100000);
	wait_for_line(fe, "mailpush-listen: registration refused: "
	    "registration table full (limit 100000); retrying in 30s\n");
	/* still there a second later */
	poll(NULL, 0, 1000);
	ck_assert_int_eq(waitpid(lpid, NULL, WNOHANG), 0);
	ck_assert_int_eq(kill(lpid, SIGTERM), 0);
	ck_assert_int_eq(listen_wait(WAIT_MS), 0);
	read_all(fo, out, sizeof(out));
	read_all(fe, err, sizeof(err));
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(t_listen_usage)
{
	static const char *const bad[][12] = {
		{ "mailpush-listen", NULL },
		{ "mailpush-listen", "-u", "alice", "-K", "/dev/null", NULL },
		{ "mailpush-listen", "-s", "127.0.0.1", "-K", "/dev/null",
		    NULL },
		{ "mailpush-listen", "-s", "127.0.0.1", "-u", "alice", NULL },
		{ "mailpush-listen", "-s", "[::1", "-u", "alice", "-K",
		    "/dev/null", NULL },
		{ "mailpush-listen", "-s", "127.0.0.1:99999", "-u", "alice",
		    "-K", "/dev/null", NULL },
		{ "mailpush-listen", "-s", "127.0.0.1:", "-u", "alice",
		    "-K", "/dev/null", NULL },
		{ "mailpush-listen", "-s", "127.0.0.1", "-u", "alice", "-K",
		    "/dev/null", "-t", "0", NULL },
		{ "mailpush-listen", "-s", "127.0.0.1", "-u", "alice", "-K",
		    "/dev/null", "extra", NULL },
		{ "mailpush-listen", "-s", "127.0.0.1", "-u", "alice", "-K",
		    "/dev/null", "-q", NULL },
	};
	char out[1024], err[1024];
	size_t i;
	int fo, fe;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		listen_run(bad[i], &fo, &fe);
		ck_assert_msg(listen_wait(WAIT_MS) == 64, "case %zu", i);
		read_all(fo, out, sizeof(out));
		read_all(fe, err, sizeof(err));
		ck_assert_str_eq(out, "");
		ck_assert_ptr_nonnull(strstr(err, "usage: mailpush-listen"));
	}
}
END_TEST

START_TEST(t_listen_timeout)
{
	struct mp_request rq;
	struct timespec a, b;
	char addr[64], out[1024], err[1024];
	const char *argv[] = { "mailpush-listen", "-s", addr, "-u", "alice",
	    "-K", tokpath, "-t", "1", NULL };
	int fo, fe;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &a);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
	listen_run(argv, &fo, &fe);
	srv_handshake(&srv, &rq, 3, 0, 0);
	srv_answer_unregister(&srv, 3);
	ck_assert_int_eq(listen_wait(WAIT_MS), 3);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	ck_assert_int_ge(ms, 900);
	read_all(fo, out, sizeof(out));
	read_all(fe, err, sizeof(err));
	ck_assert_str_eq(out, "");
	ck_assert_str_eq(err, "mailpush-listen: no push within 1 seconds\n");
}
END_TEST

/* SIGTERM: UNREGISTER, exit 0; -v reports the registration. */
START_TEST(t_listen_sigterm)
{
	struct mp_request rq;
	char addr[64], out[1024], err[1024];
	const char *argv[] = { "mailpush-listen", "-v", "-s", addr, "-u",
	    "alice", "-K", tokpath, "-t", "10", NULL };
	int fo, fe;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
	listen_run(argv, &fo, &fe);
	srv_handshake(&srv, &rq, 11, 0, 0);
	wait_for_line(fe, "registered id=0000000b lifetime=600s keepalive=65535s "
	    "(server allows 65535-65535s)\n");
	srv_push(&srv, 11, 1, 1, 1, (const uint8_t *)"mailpush-listen", 15,
	    token);
	srv_next_ack(&srv, 11, 1);
	ck_assert_int_eq(kill(lpid, SIGTERM), 0);
	srv_answer_unregister(&srv, 11);
	ck_assert_int_eq(listen_wait(WAIT_MS), 0);
	read_all(fo, out, sizeof(out));
	read_all(fe, err, sizeof(err));
	assert_match("^push user=alice seq=1 count=1 new=1 total=1 time="
	    TIME_RE "\n$", out);
}
END_TEST

Suite *
make_client_suite(void)
{
	Suite *s = suite_create("client");
	TCase *tc;

	tc = tcase_create("register");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, t_cookie_roundtrip);
	tcase_add_test(tc, t_retransmit_backoff);
	tcase_add_test(tc, t_late_reply);
	tcase_add_test(tc, t_refresh);
	tcase_add_test(tc, t_refresh_unanswered);
	tcase_add_test(tc, t_refused_unknown);
	tcase_add_test(tc, t_cookie_limit);
	tcase_add_test(tc, t_cookie_reuse);
	tcase_add_test(tc, t_refresh_cookie_unknown);
	tcase_add_test(tc, t_missed);
	tcase_add_test(tc, t_stale);
	tcase_add_test(tc, t_wrong_nonce);
	tcase_add_test(tc, t_unregister);
	tcase_add_test(tc, t_unregister_unknown);
	tcase_add_test(tc, t_unregister_unanswered);
	suite_add_tcase(s, tc);

	tc = tcase_create("refusal");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, t_refused_too_many);
	tcase_add_test(tc, t_refused_table_full);
	tcase_add_test(tc, t_refused_auth_unverified);
	tcase_add_test(tc, t_refused_bad_name_unverified);
	suite_add_tcase(s, tc);

	tc = tcase_create("push");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, t_push_once);
	tcase_add_test(tc, t_push_retransmitted);
	tcase_add_test(tc, t_push_bad_mac);
	tcase_add_test(tc, t_push_foreign);
	tcase_add_test(tc, t_push_new_messages);
	tcase_add_test(tc, t_push_first_uses_count);
	suite_add_tcase(s, tc);

	tc = tcase_create("keepalive");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, t_keepalive_interval);
	tcase_add_test(tc, t_probe_search);
	tcase_add_test(tc, t_probe_bounds);
	tcase_add_test(tc, t_kick);
	tcase_add_test(tc, t_new_epoch);
	tcase_add_test(tc, t_device_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, t_garbage);
	tcase_add_test(tc, t_params);
	suite_add_tcase(s, tc);

	tc = tcase_create("listen");
	tcase_add_checked_fixture(tc, listen_setup, listen_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, t_listen_once);
	tcase_add_test(tc, t_listen_command_v6);
	tcase_add_test(tc, t_listen_command_coalesce);
	tcase_add_test(tc, t_listen_refused);
	tcase_add_test(tc, t_listen_full_keeps_running);
	tcase_add_test(tc, t_listen_usage);
	tcase_add_test(tc, t_listen_timeout);
	tcase_add_test(tc, t_listen_sigterm);
	suite_add_tcase(s, tc);
	return s;
}
