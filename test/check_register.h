/*
 * check_register.h: the fixture of the registration suites
 * (check_register.c, check_registerlimits.c, check_registerauth.c): one
 * real mailpushd per test (mpd_setup) with the configuration it needs,
 * whose exit and sanitizer log teardown checks, and the raw clients that
 * register with it.
 */
#ifndef CHECK_REGISTER_H
#define CHECK_REGISTER_H

#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <sodium.h>

#include "harness.h"

static struct mpd_proc P;

static inline void
setup(void)
{
	memset(&P, 0, sizeof(P));
	P.pid = -1;
}

static inline void
teardown(void)
{
	if (P.dir[0] != '\0')
		ck_assert_msg(mpd_finish(&P) == 0,
		    "mailpushd did not exit cleanly (see stderr)");
}

static inline void
start(const char *extra)
{
	ck_assert_msg(mpd_setup(&P, extra) == 0, "mailpushd did not start "
	    "(log %s)", P.log);
}

static inline void
open_client(struct tclient *c, const char *bind_ip, const char *user)
{
	ck_assert_int_eq(tc_open(c, &P, 0, bind_ip, user), 0);
	c->ctx_devices = 1;	/* one device per context, as before v2 */
}

static inline int
client_port(const struct tclient *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	ck_assert_int_eq(getsockname(c->fd, (struct sockaddr *)&ss, &len), 0);
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* REGISTER ctx and insist on REGISTERED; returns the reg_id. */
static inline uint32_t
reg_ok(struct tclient *c, const char *ctx)
{
	struct mp_reply rp;

	ck_assert_int_eq(tc_register(c, ctx, strlen(ctx), &rp), 0);
	ck_assert_msg(rp.type == PROTO_REGISTERED, "%s: %s for context "
	    "\"%s\": reason %u limit %u", c->user, proto_type_name(rp.type),
	    ctx, rp.reason, rp.limit);
	ck_assert_uint_ne(rp.reg_id, 0);
	return rp.reg_id;
}

static inline void
reg_refused(struct tclient *c, const void *ctx, size_t len, unsigned reason,
    uint32_t limit)
{
	struct mp_reply rp;

	ck_assert_int_eq(tc_register(c, ctx, len, &rp), 0);
	ck_assert_msg(rp.type == PROTO_REFUSED, "%s: %s, expected REFUSED "
	    "%u", c->user, proto_type_name(rp.type), reason);
	ck_assert_uint_eq(rp.reason, reason);
	ck_assert_uint_eq(rp.limit, limit);
}

/* REFRESH (or UNREGISTER) as the device that registered id; returns the
 * reply type, reply in *rp. */
static inline int
refresh(struct tclient *c, uint8_t type, uint32_t id, struct mp_reply *rp)
{
	static struct mp_request rq;

	tc_use_reg(c, id);
	tc_req(c, &rq, type, NULL, 0);
	ck_assert_int_eq(tc_call(c, &rq, rp, 0), 0);
	return rp->type;
}

/* A request encoded with the client's cookie and token. */
static inline int
encode(struct tclient *c, struct mp_request *rq, uint8_t *buf, size_t len)
{
	int n;

	memcpy(rq->cookie, c->cookie, sizeof(c->cookie));
	n = proto_request_encode(rq, c->token, buf, len);
	ck_assert_int_gt(n, 0);
	return n;
}

/* `mailpushctl stats': refused_too_many (or the older "refused too
 * many registrations for this user"). */
static inline long long
refused_count(unsigned reason)
{
	static const char *const names[REASON_MAX + 1] = { "none", "auth",
	    "stale", "too_many", "context_size", "table_full",
	    "address_limit", "not_allowed", "unknown", "bad_request",
	    "replay" };
	char name[80];
	long long n;

	snprintf(name, sizeof(name), "refused_%s", names[reason]);
	if ((n = mpd_stat(&P, name)) != -1)
		return n;
	snprintf(name, sizeof(name), "refused %s", proto_reason_name(reason));
	return mpd_stat(&P, name);
}

#endif
