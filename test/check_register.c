/*
 * check_register.c: registrations through the real mailpushd over UDP
 * (issue 3, item 6): the cookie, the per-user, context, table and address
 * limits and their refusal log, on_limit = evict-oldest, replacement,
 * refresh and expiry, authentication, the allow list, and malformed
 * datagrams.  Every test starts its own daemon (mpd_setup) with the
 * configuration it needs; teardown checks its exit and sanitizer log.
 */
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

static void
setup(void)
{
	memset(&P, 0, sizeof(P));
	P.pid = -1;
}

static void
teardown(void)
{
	if (P.dir[0] != '\0')
		ck_assert_msg(mpd_finish(&P) == 0,
		    "mailpushd did not exit cleanly (see stderr)");
}

static void
start(const char *extra)
{
	ck_assert_msg(mpd_setup(&P, extra) == 0, "mailpushd did not start "
	    "(log %s)", P.log);
}

static void
open_client(struct tclient *c, const char *bind_ip, const char *user)
{
	ck_assert_int_eq(tc_open(c, &P, 0, bind_ip, user), 0);
	c->ctx_devices = 1;	/* one device per context, as before v2 */
}

static int
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
static uint32_t
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

static void
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
static int
refresh(struct tclient *c, uint8_t type, uint32_t id, struct mp_reply *rp)
{
	static struct mp_request rq;

	tc_use_reg(c, id);
	tc_req(c, &rq, type, NULL, 0);
	ck_assert_int_eq(tc_call(c, &rq, rp, 0), 0);
	return rp->type;
}

/* A request encoded with the client's cookie and token. */
static int
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
static long long
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

/* Core */

START_TEST(cookie_then_registered)
{
	struct tclient c;
	struct mp_reply rp;
	static struct mp_request rq;

	start(NULL);
	open_client(&c, NULL, "alice");
	tc_req(&c, &rq, PROTO_REGISTER, "ctx", 3);
	ck_assert_int_eq(tc_call(&c, &rq, &rp, 1), 0);
	ck_assert_int_eq(rp.type, PROTO_COOKIE);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	ck_assert_int_eq(mpd_stat(&P, "cookies_sent"), 1);
	ck_assert_int_eq(tc_register(&c, "ctx", 3, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_uint_ne(rp.reg_id, 0);
	ck_assert_uint_eq(rp.lifetime, 600);
	ck_assert_uint_eq(rp.seq, 0);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	ck_assert_int_eq(mpd_stat(&P, "registered"), 1);
	tc_close(&c);
}
END_TEST

/*
 * The same user and device replace (take over) their registration from
 * anywhere; another device is another registration, even from the same
 * address and port.
 */
START_TEST(replace_same_client)
{
	struct tclient c1, c2, c3;
	char out[4096], want[64];
	uint32_t id;

	start(NULL);
	open_client(&c1, NULL, "alice");
	open_client(&c2, NULL, "alice");
	open_client(&c3, "127.0.0.2", "alice");
	id = reg_ok(&c1, "phone");
	ck_assert_uint_eq(reg_ok(&c2, "phone"), id);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	ck_assert_int_eq(mpd_stat(&P, "replaced"), 1);
	/* it moved to c2's port */
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 1);
	snprintf(want, sizeof(want), "127.0.0.1:%d", client_port(&c2));
	ck_assert_msg(strstr(out, want) != NULL, "list: %s", out);
	/* another device is another registration, from the same port */
	ck_assert_uint_ne(reg_ok(&c2, "laptop"), id);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 2);
	/* the same device from another address takes its own over */
	ck_assert_uint_eq(reg_ok(&c3, "phone"), id);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 2);
	ck_assert_int_eq(mpd_stat(&P, "replaced"), 2);
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 2);
	snprintf(want, sizeof(want), "127.0.0.2:%d", client_port(&c3));
	ck_assert_msg(strstr(out, want) != NULL, "list: %s", out);
	tc_close(&c1);
	tc_close(&c2);
	tc_close(&c3);
}
END_TEST

/* REFRESH from the same address needs no cookie; from another it moves. */
START_TEST(refresh_move_unregister)
{
	struct tclient c1, c2;
	struct mp_reply rp;
	static struct mp_request rq;
	char out[4096], want[64];
	long long cookies;
	uint32_t id;

	start(NULL);
	open_client(&c1, NULL, "alice");
	open_client(&c2, NULL, "alice");
	id = reg_ok(&c1, "ctx");
	cookies = mpd_stat(&P, "cookies_sent");
	/* a zero cookie is fine from the registration's own address */
	memset(c1.cookie, 0, sizeof(c1.cookie));
	ck_assert_int_eq(refresh(&c1, PROTO_REFRESH, id, &rp),
	    PROTO_REGISTERED);
	ck_assert_uint_eq(rp.reg_id, id);
	ck_assert_uint_eq(rp.lifetime, 600);
	ck_assert_int_eq(mpd_stat(&P, "cookies_sent"), cookies);
	ck_assert_int_eq(mpd_stat(&P, "refreshed"), 1);
	/* another port: COOKIE first, then it moves there */
	tc_req(&c2, &rq, PROTO_REFRESH, NULL, 0);
	ck_assert_int_eq(tc_call(&c2, &rq, &rp, 1), 0);
	ck_assert_int_eq(rp.type, PROTO_COOKIE);
	ck_assert_int_eq(refresh(&c2, PROTO_REFRESH, id, &rp),
	    PROTO_REGISTERED);
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 1);
	snprintf(want, sizeof(want), "127.0.0.1:%d", client_port(&c2));
	ck_assert_msg(strstr(out, want) != NULL, "list: %s", out);
	/* pushes follow it */
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	{
		struct mp_push p;

		ck_assert_int_eq(tc_push(&c2, &p, 2000), 0);
		ck_assert_uint_eq(p.reg_id, id);
		ck_assert_int_eq(tc_recv(&c1, (uint8_t *)out, sizeof(out), 100),
		    -1);
		ck_assert_int_eq(tc_ack(&c2, &p), 0);
	}
	/* UNREGISTER: lifetime 0, gone; a REFRESH then gets UNKNOWN */
	ck_assert_int_eq(refresh(&c2, PROTO_UNREGISTER, id, &rp),
	    PROTO_REGISTERED);
	ck_assert_uint_eq(rp.lifetime, 0);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	ck_assert_int_eq(mpd_stat(&P, "unregistered"), 1);
	ck_assert_int_eq(refresh(&c2, PROTO_REFRESH, id, &rp), PROTO_REFUSED);
	ck_assert_uint_eq(rp.reason, REASON_UNKNOWN);
	/* someone else's id is unknown too */
	tc_close(&c1);
	tc_close(&c2);
}
END_TEST

START_TEST(refresh_other_users_id)
{
	struct tclient a, b;
	struct mp_reply rp;
	uint32_t id;

	start(NULL);
	open_client(&a, NULL, "alice");
	open_client(&b, NULL, "bob");
	id = reg_ok(&a, "ctx");
	reg_ok(&b, "ctx");
	ck_assert_int_eq(refresh(&b, PROTO_UNREGISTER, id, &rp),
	    PROTO_REFUSED);
	ck_assert_uint_eq(rp.reason, REASON_UNKNOWN);
	ck_assert_int_eq(refresh(&b, PROTO_REFRESH, id, &rp), PROTO_REFUSED);
	ck_assert_uint_eq(rp.reason, REASON_UNKNOWN);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 2);
	tc_close(&a);
	tc_close(&b);
}
END_TEST

/* Not refreshed: gone after registration_lifetime; refreshed: stays. */
START_TEST(expiry)
{
	struct tclient c;
	struct mp_reply rp;
	uint32_t a, b;
	uint64_t t0, gone = 0;

	start("[limits]\nregistration_lifetime = 2s\n");
	open_client(&c, NULL, "alice");
	a = reg_ok(&c, "a");
	b = reg_ok(&c, "b");
	ck_assert_int_eq(tc_register(&c, "a", 1, &rp), 0);	/* replace */
	ck_assert_uint_eq(rp.lifetime, 2);
	t0 = now_ms();
	while (now_ms() < t0 + 4000) {
		ck_assert_int_eq(refresh(&c, PROTO_REFRESH, b, &rp),
		    PROTO_REGISTERED);
		if (mpd_stat(&P, "registrations") == 1) {
			gone = now_ms();
			break;
		}
		usleep(250000);
	}
	ck_assert_msg(gone != 0, "the unrefreshed registration is still "
	    "there after 4 s");
	/* it lived for at least the lifetime it was given */
	ck_assert_msg(gone - t0 >= 1900, "expired after %llu ms of a 2 s "
	    "lifetime", (unsigned long long)(gone - t0));
	ck_assert_int_eq(mpd_stat(&P, "expired"), 1);
	ck_assert_int_eq(refresh(&c, PROTO_REFRESH, a, &rp), PROTO_REFUSED);
	ck_assert_uint_eq(rp.reason, REASON_UNKNOWN);
	ck_assert_int_eq(refresh(&c, PROTO_REFRESH, b, &rp),
	    PROTO_REGISTERED);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	tc_close(&c);
}
END_TEST

START_TEST(ipv6)
{
	struct tclient c;
	struct mp_reply rp;
	struct mp_push p;
	char out[4096], want[64];
	uint32_t id;

	start(NULL);
	ck_assert_int_eq(tc_open(&c, &P, 1, NULL, "alice"), 0);
	id = reg_ok(&c, "v6");
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 1);
	snprintf(want, sizeof(want), "[::1]:%d", client_port(&c));
	ck_assert_msg(strstr(out, want) != NULL, "list: %s", out);
	ck_assert_int_eq(refresh(&c, PROTO_REFRESH, id, &rp),
	    PROTO_REGISTERED);
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 2), 0);
	ck_assert_int_eq(tc_push(&c, &p, 2000), 0);
	ck_assert_uint_eq(p.reg_id, id);
	ck_assert_uint_eq(p.count, 2);
	ck_assert_int_eq(p.ctx_len, 2);
	ck_assert_mem_eq(p.ctx, "v6", 2);
	ck_assert_int_eq(tc_ack(&c, &p), 0);
	ck_assert_int_eq(mpd_stat_wait(&P, "acks", 1, 2000), 0);
	ck_assert_int_eq(refresh(&c, PROTO_UNREGISTER, id, &rp),
	    PROTO_REGISTERED);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	tc_close(&c);
}
END_TEST

/*
 * A source that never echoes the cookie gets 24-byte COOKIEs and nothing
 * else, never more bytes than it sent, and leaves no state, whatever it
 * sends: REGISTER with no cookie or a made-up one, a bad MAC, a REFRESH
 * or UNREGISTER of somebody else's registration.
 */
START_TEST(no_cookie_echo)
{
	struct tclient c, other;
	static struct mp_request rq;
	uint8_t buf[PROTO_MAX_DATAGRAM];
	size_t sent = 0, got = 0;
	uint32_t id;
	int i, n, answers = 0;

	start(NULL);
	open_client(&other, "127.0.0.3", "alice");
	id = reg_ok(&other, "x");
	open_client(&c, "127.0.0.2", "alice");
	for (i = 0; i < 8; i++) {
		uint8_t type = i < 5 ? PROTO_REGISTER : i == 5 ?
		    PROTO_REFRESH : PROTO_UNREGISTER;

		if (type != PROTO_REGISTER)
			tc_use_reg(&c, id);
		tc_req(&c, &rq, type, "ctx", 3);
		if (i == 1 || i == 4)
			randombytes_buf(c.cookie, sizeof(c.cookie));
		else
			memset(c.cookie, 0, sizeof(c.cookie));
		n = encode(&c, &rq, buf, sizeof(buf));
		if (i == 4)
			buf[n - 1] ^= 1;	/* and a bad MAC */
		ck_assert_int_eq(tc_send(&c, buf, (size_t)n), 0);
		sent += (size_t)n;
	}
	while ((n = tc_recv(&c, buf, sizeof(buf), 300)) >= 0) {
		answers++;
		got += (size_t)n;
		ck_assert_int_eq(n, PROTO_COOKIE_DGRAM_LEN);
		ck_assert_int_eq(proto_type(buf, (size_t)n), PROTO_COOKIE);
	}
	ck_assert_int_eq(answers, 8);
	ck_assert_uint_le(got, sent);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	ck_assert_int_eq(mpd_stat(&P, "registered"), 1);
	ck_assert_int_eq(mpd_stat(&P, "refreshed"), 0);
	ck_assert_int_eq(mpd_stat(&P, "unregistered"), 0);
	ck_assert_int_eq(refused_count(REASON_AUTH), 0);
	/* the registration it tried to take stays where it was */
	{
		char out[4096];

		ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 1);
		ck_assert_msg(strstr(out, "127.0.0.3:") != NULL, "%s", out);
	}
	tc_close(&c);
	tc_close(&other);
}
END_TEST

/* Limits */

START_TEST(too_many_logged_once)
{
	struct tclient c;
	char ctx[8], needle[256];
	const char *held = "(2 more refusals held back)";
	int i;

	start("[limits]\nrefusal_log_interval = 1s\n");
	open_client(&c, NULL, "alice");
	for (i = 0; i < 8; i++) {
		snprintf(ctx, sizeof(ctx), "c%d", i);
		reg_ok(&c, ctx);
	}
	snprintf(needle, sizeof(needle), "user alice has exceeded the "
	    "allowed maximum number of simultaneous registrations for push "
	    "notifications (configured maximum 8): refused 127.0.0.1:%d",
	    client_port(&c));
	reg_refused(&c, "c8", 2, REASON_TOO_MANY, 8);
	ck_assert_int_eq(mpd_log_wait(&P, needle, 1, 2000), 0);
	/* the 10th and 11th are refused and counted, not logged */
	reg_refused(&c, "c9", 2, REASON_TOO_MANY, 8);
	reg_refused(&c, "c10", 3, REASON_TOO_MANY, 8);
	ck_assert_int_eq(mpd_log_count(&P, needle), 1);
	ck_assert_int_eq(mpd_log_count(&P, "has exceeded"), 1);
	ck_assert_int_eq(refused_count(REASON_TOO_MANY), 3);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 8);
	/* after the interval: a line again, with the count held back */
	usleep(1100000);
	reg_refused(&c, "c11", 3, REASON_TOO_MANY, 8);
	ck_assert_int_eq(mpd_log_wait(&P, needle, 2, 2000), 0);
	ck_assert_int_eq(mpd_log_count(&P, held), 1);
	ck_assert_int_eq(mpd_log_count(&P, "has exceeded"), 2);
	ck_assert_int_eq(refused_count(REASON_TOO_MANY), 4);
	/* another user is logged on its own */
	{
		struct tclient b;

		open_client(&b, NULL, "bob");
		for (i = 0; i < 8; i++) {
			snprintf(ctx, sizeof(ctx), "c%d", i);
			reg_ok(&b, ctx);
		}
		reg_refused(&b, "c8", 2, REASON_TOO_MANY, 8);
		ck_assert_int_eq(mpd_log_wait(&P, "user bob has exceeded", 1,
		    2000), 0);
		tc_close(&b);
	}
	tc_close(&c);
}
END_TEST

START_TEST(evict_oldest)
{
	struct tclient c;
	struct mp_reply rp;
	char ctx[8], out[8192], hex[16];
	uint32_t ids[9];
	int i;

	start("[limits]\non_limit = evict-oldest\n");
	open_client(&c, NULL, "alice");
	for (i = 0; i < 9; i++) {
		snprintf(ctx, sizeof(ctx), "c%d", i);
		ids[i] = reg_ok(&c, ctx);
	}
	ck_assert_int_eq(mpd_stat(&P, "evicted"), 1);
	ck_assert_int_eq(refused_count(REASON_TOO_MANY), 0);
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 8);
	snprintf(hex, sizeof(hex), "%08x", ids[0]);
	ck_assert_msg(strstr(out, hex) == NULL, "evicted %s still listed: %s",
	    hex, out);
	snprintf(hex, sizeof(hex), "%08x", ids[8]);
	ck_assert_msg(strstr(out, hex) != NULL, "%s not listed: %s", hex, out);
	ck_assert_int_eq(refresh(&c, PROTO_REFRESH, ids[0], &rp),
	    PROTO_REFUSED);
	ck_assert_uint_eq(rp.reason, REASON_UNKNOWN);
	ck_assert_int_eq(refresh(&c, PROTO_REFRESH, ids[1], &rp),
	    PROTO_REGISTERED);
	/* a 10th: the next oldest goes */
	reg_ok(&c, "c9");
	ck_assert_int_eq(refresh(&c, PROTO_REFRESH, ids[1], &rp),
	    PROTO_REFUSED);
	ck_assert_int_eq(mpd_stat(&P, "evicted"), 2);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 8);
	tc_close(&c);
}
END_TEST

/* An eviction must not happen for a registration that is refused anyway. */
START_TEST(evict_not_for_refused)
{
	struct tclient a2, b3, a3, a2b;
	struct mp_reply rp;
	char out[4096];
	uint32_t id;

	start("[limits]\non_limit = evict-oldest\n"
	    "max_registrations_per_client = 1\n"
	    "max_registrations_per_address = 1\n");
	open_client(&a2, "127.0.0.2", "alice");
	open_client(&b3, "127.0.0.3", "bob");
	open_client(&a3, "127.0.0.3", "alice");
	open_client(&a2b, "127.0.0.2", "alice");
	id = reg_ok(&a2, "a");
	reg_ok(&b3, "b");
	/* alice from .3: over her limit (evict) and over .3's (refuse) */
	reg_refused(&a3, "c", 1, REASON_ADDRESS_LIMIT, 1);
	ck_assert_int_eq(mpd_stat(&P, "evicted"), 0);
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 1);
	ck_assert_int_eq(refresh(&a2, PROTO_REFRESH, id, &rp),
	    PROTO_REGISTERED);
	/* from .2 the eviction frees the address's slot: accepted */
	ck_assert_uint_ne(reg_ok(&a2b, "d"), id);
	ck_assert_int_eq(mpd_stat(&P, "evicted"), 1);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 2);
	tc_close(&a2);
	tc_close(&b3);
	tc_close(&a3);
	tc_close(&a2b);
}
END_TEST

START_TEST(context_size_default)
{
	struct tclient c;
	char ctx[MP_CONTEXT_MAX];

	start(NULL);
	open_client(&c, NULL, "alice");
	memset(ctx, 'x', sizeof(ctx));
	reg_refused(&c, ctx, 17, REASON_CONTEXT_SIZE, 16);
	reg_refused(&c, ctx, MP_CONTEXT_MAX, REASON_CONTEXT_SIZE, 16);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	ck_assert_int_eq(refused_count(REASON_CONTEXT_SIZE), 2);
	ctx[16] = '\0';
	reg_ok(&c, ctx);
	reg_ok(&c, "");			/* an empty context is fine */
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 2);
	ck_assert_int_eq(mpd_log_wait(&P, "user alice has exceeded the "
	    "allowed maximum client context size for push notifications "
	    "(configured maximum 16 bytes, got 17)", 1, 2000), 0);
	tc_close(&c);
}
END_TEST

START_TEST(context_size_config)
{
	struct tclient c;
	char ctx[64];

	memset(ctx, 'y', sizeof(ctx));
	start("[limits]\nmax_context_size = 32\n");
	open_client(&c, NULL, "alice");
	reg_refused(&c, ctx, 33, REASON_CONTEXT_SIZE, 32);
	ctx[32] = '\0';
	reg_ok(&c, ctx);
	tc_close(&c);
	ck_assert_int_eq(mpd_finish(&P), 0);

	/* 0 means the default, 16 */
	memset(ctx, 'y', sizeof(ctx));
	start("[limits]\nmax_context_size = 0\n");
	open_client(&c, NULL, "alice");
	reg_refused(&c, ctx, 17, REASON_CONTEXT_SIZE, 16);
	ctx[16] = '\0';
	reg_ok(&c, ctx);
	tc_close(&c);
}
END_TEST

START_TEST(per_client_config)
{
	struct tclient c;
	char ctx[8];
	int i;

	start("[limits]\nmax_registrations_per_client = 3\n");
	open_client(&c, NULL, "alice");
	for (i = 0; i < 3; i++) {
		snprintf(ctx, sizeof(ctx), "c%d", i);
		reg_ok(&c, ctx);
	}
	reg_refused(&c, "c3", 2, REASON_TOO_MANY, 3);
	ck_assert_int_eq(mpd_log_wait(&P, "(configured maximum 3)", 1, 2000),
	    0);
	tc_close(&c);
	ck_assert_int_eq(mpd_finish(&P), 0);

	start("[limits]\nmax_registrations_per_client = 0\n");
	open_client(&c, NULL, "alice");
	for (i = 0; i < 8; i++) {
		snprintf(ctx, sizeof(ctx), "c%d", i);
		reg_ok(&c, ctx);
	}
	reg_refused(&c, "c8", 2, REASON_TOO_MANY, 8);
	tc_close(&c);
}
END_TEST

START_TEST(user_override)
{
	struct tclient a, b;
	char ctx[64];
	int i;

	start("[limits]\nmax_registrations_per_client = 2\n"
	    "[user bob]\nmax_registrations_per_client = 4\n"
	    "max_context_size = 24\n");
	open_client(&a, NULL, "alice");
	open_client(&b, NULL, "bob");
	memset(ctx, 'z', sizeof(ctx));
	reg_refused(&a, ctx, 17, REASON_CONTEXT_SIZE, 16);
	reg_refused(&b, ctx, 25, REASON_CONTEXT_SIZE, 24);
	for (i = 0; i < 2; i++) {
		snprintf(ctx, sizeof(ctx), "a%d", i);
		reg_ok(&a, ctx);
	}
	reg_refused(&a, "a2", 2, REASON_TOO_MANY, 2);
	memset(ctx, 'z', sizeof(ctx));
	ctx[24] = '\0';
	reg_ok(&b, ctx);
	for (i = 1; i < 4; i++) {
		snprintf(ctx, sizeof(ctx), "b%d", i);
		reg_ok(&b, ctx);
	}
	reg_refused(&b, "b4", 2, REASON_TOO_MANY, 4);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 6);
	tc_close(&a);
	tc_close(&b);
}
END_TEST

START_TEST(table_full)
{
	struct tclient a, a2, b, c;
	struct mp_reply rp;
	uint32_t bid;

	start("[limits]\nmax_registrations = 3\n");
	open_client(&a, NULL, "alice");
	open_client(&a2, NULL, "alice");
	open_client(&b, NULL, "bob");
	open_client(&c, NULL, "carol");
	reg_ok(&a, "a");
	reg_ok(&a, "b");
	bid = reg_ok(&b, "a");
	reg_refused(&c, "a", 1, REASON_TABLE_FULL, 3);
	ck_assert_int_eq(mpd_log_wait(&P, "user carol has exceeded", 1, 2000),
	    0);
	/* a replacement adds nothing: accepted when full */
	reg_ok(&a2, "a");
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 3);
	ck_assert_int_eq(refresh(&b, PROTO_UNREGISTER, bid, &rp),
	    PROTO_REGISTERED);
	reg_ok(&c, "a");
	reg_refused(&b, "a", 1, REASON_TABLE_FULL, 3);
	ck_assert_int_eq(refused_count(REASON_TABLE_FULL), 2);
	tc_close(&a);
	tc_close(&a2);
	tc_close(&b);
	tc_close(&c);
}
END_TEST

START_TEST(address_limit)
{
	struct tclient a, a2, b, c, c2, d3;

	start("[limits]\nmax_registrations_per_address = 2\n");
	open_client(&a, NULL, "alice");
	open_client(&a2, NULL, "alice");
	open_client(&b, NULL, "bob");
	open_client(&c, NULL, "carol");
	open_client(&c2, "127.0.0.2", "carol");
	open_client(&d3, "127.0.0.3", "dave");
	reg_ok(&a, "a");
	reg_ok(&b, "b");
	/* any port of 127.0.0.1 counts */
	reg_refused(&c, "c", 1, REASON_ADDRESS_LIMIT, 2);
	/* a replacement from the same address adds nothing */
	reg_ok(&a2, "a");
	reg_refused(&a2, "x", 1, REASON_ADDRESS_LIMIT, 2);
	/* other addresses have their own count */
	reg_ok(&c2, "c");
	reg_ok(&c2, "d");
	reg_refused(&c2, "e", 1, REASON_ADDRESS_LIMIT, 2);
	reg_ok(&d3, "d");
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 5);
	ck_assert_int_eq(refused_count(REASON_ADDRESS_LIMIT), 3);
	tc_close(&a);
	tc_close(&a2);
	tc_close(&b);
	tc_close(&c);
	tc_close(&c2);
	tc_close(&d3);
}
END_TEST

START_TEST(too_many_mailboxes)
{
	static const char *const boxes[] = { "INBOX", "Work", "Lists" };
	struct tclient c;
	struct mp_reply rp;

	start("[limits]\nmax_mailboxes = 2\n");
	open_client(&c, NULL, "alice");
	ck_assert_int_eq(tc_register_mailboxes(&c, "a", 1, boxes, 3, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REFUSED);
	ck_assert_uint_eq(rp.reason, REASON_BAD_REQUEST);
	ck_assert_uint_eq(rp.limit, 2);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	ck_assert_int_eq(tc_register_mailboxes(&c, "a", 1, boxes, 2, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	tc_close(&c);
}
END_TEST

/* Authentication */

/* The reply to a request, raw, with its MAC checked under token. */
static int
raw_call(struct tclient *c, struct mp_request *rq, uint8_t *buf, size_t len,
    struct mp_reply *rp)
{
	uint8_t req[PROTO_MAX_DATAGRAM];
	const char *why;
	int n;

	n = encode(c, rq, req, sizeof(req));
	ck_assert_int_eq(tc_send(c, req, (size_t)n), 0);
	n = tc_recv(c, buf, len, 2000);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(proto_reply_decode(buf, (size_t)n, rp, &why), 0);
	ck_assert_uint_eq(rp->timestamp, rq->timestamp);
	return n;
}

START_TEST(wrong_token)
{
	struct tclient c;
	struct mp_reply rp;
	static struct mp_request rq;
	uint8_t buf[PROTO_MAX_DATAGRAM], right[MP_TOKEN_LEN];
	int n;

	start(NULL);
	open_client(&c, NULL, "alice");
	memcpy(right, c.token, sizeof(right));
	mpd_token(&P, "mallory", c.token);
	/* get a cookie: that needs no token */
	tc_req(&c, &rq, PROTO_REGISTER, "ctx", 3);
	ck_assert_int_eq(tc_call(&c, &rq, &rp, 1), 0);
	ck_assert_int_eq(rp.type, PROTO_COOKIE);
	memcpy(c.cookie, rp.cookie, sizeof(c.cookie));
	tc_req(&c, &rq, PROTO_REGISTER, "ctx", 3);
	n = raw_call(&c, &rq, buf, sizeof(buf), &rp);
	ck_assert_int_eq(rp.type, PROTO_REFUSED);
	ck_assert_uint_eq(rp.reason, REASON_AUTH);
	ck_assert_int_eq(n, PROTO_REFUSED_LEN);
	/* signed under alice's real token, which the client cannot check */
	ck_assert_int_eq(proto_verify(buf, (size_t)n, right), 0);
	ck_assert_int_ne(proto_verify(buf, (size_t)n, c.token), 0);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	ck_assert_int_eq(refused_count(REASON_AUTH), 1);
	/* the right token: REGISTERED, signed under it */
	memcpy(c.token, right, sizeof(right));
	tc_req(&c, &rq, PROTO_REGISTER, "ctx", 3);
	n = raw_call(&c, &rq, buf, sizeof(buf), &rp);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_int_eq(n, PROTO_REGISTERED_LEN);
	ck_assert_int_eq(proto_verify(buf, (size_t)n, right), 0);
	/* a REFRESH and an UNREGISTER with the wrong token do nothing */
	mpd_token(&P, "mallory", c.token);
	tc_req(&c, &rq, PROTO_UNREGISTER, NULL, 0);
	raw_call(&c, &rq, buf, sizeof(buf), &rp);
	ck_assert_int_eq(rp.type, PROTO_REFUSED);
	ck_assert_uint_eq(rp.reason, REASON_AUTH);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	ck_assert_int_eq(mpd_stat(&P, "unregistered"), 0);
	tc_close(&c);
}
END_TEST

START_TEST(stale_timestamp)
{
	struct tclient c;
	struct mp_reply rp;
	int64_t skews[] = { -3600, 3600, -125, 125 };
	size_t i;

	start(NULL);
	open_client(&c, NULL, "alice");
	for (i = 0; i < sizeof(skews) / sizeof(skews[0]); i++) {
		c.clock_skew = skews[i];
		c.last_ts = 0;
		ck_assert_int_eq(tc_register(&c, "ctx", 3, &rp), 0);
		ck_assert_int_eq(rp.type, PROTO_REFUSED);
		ck_assert_uint_eq(rp.reason, REASON_STALE);
		ck_assert_uint_eq(rp.limit, 120);
		/* the server's clock, in ms */
		ck_assert_msg(rp.value / 1000 + 2 >= (uint64_t)time(NULL) &&
		    rp.value / 1000 <= (uint64_t)time(NULL) + 2,
		    "server time %llu", (unsigned long long)rp.value);
	}
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	ck_assert_int_eq(refused_count(REASON_STALE), 4);
	/* inside the window is fine */
	c.clock_skew = -100;
	c.last_ts = 0;
	reg_ok(&c, "ctx");
	tc_close(&c);
}
END_TEST

/* A captured valid REGISTER replayed from elsewhere gets only a COOKIE. */
START_TEST(replay_other_address)
{
	struct tclient c, port2, addr2;
	struct mp_reply rp;
	static struct mp_request rq;
	uint8_t req[PROTO_MAX_DATAGRAM], buf[PROTO_MAX_DATAGRAM];
	int n, m;

	start(NULL);
	open_client(&c, NULL, "alice");
	open_client(&port2, NULL, "alice");
	open_client(&addr2, "127.0.0.2", "alice");
	tc_req(&c, &rq, PROTO_REGISTER, "ctx", 3);
	ck_assert_int_eq(tc_call(&c, &rq, &rp, 1), 0);
	ck_assert_int_eq(rp.type, PROTO_COOKIE);
	memcpy(c.cookie, rp.cookie, sizeof(c.cookie));
	tc_req(&c, &rq, PROTO_REGISTER, "ctx", 3);
	n = encode(&c, &rq, req, sizeof(req));
	/* the same bytes from another port and from another address */
	ck_assert_int_eq(tc_send(&port2, req, (size_t)n), 0);
	ck_assert_int_eq(tc_send(&addr2, req, (size_t)n), 0);
	m = tc_recv(&port2, buf, sizeof(buf), 1000);
	ck_assert_int_eq(m, PROTO_COOKIE_DGRAM_LEN);
	ck_assert_int_eq(proto_type(buf, (size_t)m), PROTO_COOKIE);
	m = tc_recv(&addr2, buf, sizeof(buf), 1000);
	ck_assert_int_eq(m, PROTO_COOKIE_DGRAM_LEN);
	ck_assert_int_eq(proto_type(buf, (size_t)m), PROTO_COOKIE);
	ck_assert_int_eq(tc_recv(&port2, buf, sizeof(buf), 200), -1);
	ck_assert_int_eq(tc_recv(&addr2, buf, sizeof(buf), 1), -1);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	/* the datagram itself was valid: from its own source it registers */
	ck_assert_int_eq(tc_send(&c, req, (size_t)n), 0);
	m = tc_recv(&c, buf, sizeof(buf), 1000);
	ck_assert_int_eq(m, PROTO_REGISTERED_LEN);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	/* and replaying it after that still moves nothing */
	ck_assert_int_eq(tc_send(&addr2, req, (size_t)n), 0);
	m = tc_recv(&addr2, buf, sizeof(buf), 1000);
	ck_assert_int_eq(m, PROTO_COOKIE_DGRAM_LEN);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	ck_assert_int_eq(mpd_stat(&P, "replaced"), 0);
	tc_close(&c);
	tc_close(&port2);
	tc_close(&addr2);
}
END_TEST

START_TEST(auth_none_allow)
{
	struct tclient in, out;
	struct mp_reply rp;

	start("[mailpushd]\nauth = none\nallow = 127.0.0.2/32\n");
	open_client(&out, NULL, "alice");
	open_client(&in, "127.0.0.2", "alice");
	/* no token needed: any 32 bytes will do as the MAC */
	randombytes_buf(out.token, sizeof(out.token));
	randombytes_buf(in.token, sizeof(in.token));
	reg_refused(&out, "ctx", 3, REASON_NOT_ALLOWED, 0);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	ck_assert_int_eq(refused_count(REASON_NOT_ALLOWED), 1);
	ck_assert_int_eq(tc_register(&in, "ctx", 3, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	/* the one outside may not refresh it either */
	ck_assert_int_eq(refresh(&out, PROTO_REFRESH, rp.reg_id, &rp),
	    PROTO_REFUSED);
	ck_assert_uint_eq(rp.reason, REASON_NOT_ALLOWED);
	tc_close(&in);
	tc_close(&out);
}
END_TEST

/* auth = token with an allow list: outside refused even with the token. */
START_TEST(token_allow)
{
	struct tclient in, out;

	start("[mailpushd]\nallow = 127.0.0.2/32 ::1/128\n");
	open_client(&out, "127.0.0.3", "alice");
	open_client(&in, "127.0.0.2", "alice");
	reg_refused(&out, "ctx", 3, REASON_NOT_ALLOWED, 0);
	reg_ok(&in, "ctx");
	randombytes_buf(in.token, sizeof(in.token));
	reg_refused(&in, "ctx2", 4, REASON_AUTH, 0);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	tc_close(&in);
	tc_close(&out);
}
END_TEST

/* Malformed */

START_TEST(malformed)
{
	struct tclient c;
	struct mp_reply rp;
	static struct mp_request rq;
	uint8_t good[PROTO_MAX_DATAGRAM], buf[2048];
	long long bad0, unexp0, in0;
	int n, i, nbad = 0, nunexp = 0;

	start(NULL);
	open_client(&c, NULL, "alice");
	c.no_pad = 1;	/* so that every truncation breaks the layout */
	/* a cookie, so that the requests below would be answered if good */
	tc_req(&c, &rq, PROTO_REGISTER, "ctx", 3);
	ck_assert_int_eq(tc_call(&c, &rq, &rp, 1), 0);
	memcpy(c.cookie, rp.cookie, sizeof(c.cookie));
	tc_req(&c, &rq, PROTO_REGISTER, "ctx", 3);
	n = encode(&c, &rq, good, sizeof(good));
	bad0 = mpd_stat(&P, "datagrams_malformed");
	unexp0 = mpd_stat(&P, "datagrams_unexpected");
	in0 = mpd_stat(&P, "datagrams_in");

#define SEND_BAD(p, len) do {						\
	ck_assert_int_eq(tc_send(&c, (p), (len)), 0);			\
	nbad++;								\
} while (0)
	/* truncated */
	SEND_BAD(good, (size_t)n - 1);
	SEND_BAD(good, (size_t)n - PROTO_MAC_LEN);
	SEND_BAD(good, PROTO_REQ_MIN - 1);
	SEND_BAD(good, 40);
	SEND_BAD(good, 4);
	SEND_BAD(good, 3);
	SEND_BAD(good, 1);
	/* too long: a byte more (padding must be zeros), oversized */
	memcpy(buf, good, (size_t)n);
	buf[n] = 0x55;
	SEND_BAD(buf, (size_t)n + 1);
	memset(buf, 0, sizeof(buf));
	memcpy(buf, good, (size_t)n);
	SEND_BAD(buf, PROTO_MAX_DATAGRAM + 1);
	SEND_BAD(buf, 1500);
	/* garbage */
	for (i = 0; i < 4; i++) {
		randombytes_buf(buf, 200);
		buf[2] = 0;		/* no version 0: never valid */
		SEND_BAD(buf, 200);
	}
	/* wrong version, wrong magic, unknown types */
	memcpy(buf, good, (size_t)n);
	buf[2] = 1;
	SEND_BAD(buf, (size_t)n);
	buf[2] = 0;
	SEND_BAD(buf, (size_t)n);
	memcpy(buf, good, (size_t)n);
	buf[0] = 0x50;
	SEND_BAD(buf, (size_t)n);
	memcpy(buf, good, (size_t)n);
	buf[3] = 0;
	SEND_BAD(buf, (size_t)n);
	buf[3] = PROTO_TYPE_MAX + 1;
	SEND_BAD(buf, (size_t)n);
	buf[3] = PROTO_KEEPALIVE;	/* a KEEPALIVE is 8 bytes */
	SEND_BAD(buf, (size_t)n);
	buf[3] = 255;
	SEND_BAD(buf, (size_t)n);
	/* a lying length field */
	memcpy(buf, good, (size_t)n);
	buf[6] = 0x04;			/* context_len 1027 */
	SEND_BAD(buf, (size_t)n);
	memcpy(buf, good, (size_t)n);
	buf[5] = 0;			/* empty user name */
	SEND_BAD(buf, (size_t)n);
	memcpy(buf, good, (size_t)n);
	buf[48] = 1;			/* a mailbox that is not there */
	SEND_BAD(buf, (size_t)n);
	memcpy(buf, good, (size_t)n);
	buf[50] = 1;			/* reserved bytes not zero */
	SEND_BAD(buf, (size_t)n);
	/* a PUSH_ACK too short for a request */
	memcpy(buf, good, (size_t)n);
	buf[3] = PROTO_PUSH_ACK;
	SEND_BAD(buf, PROTO_REQ_MIN - 1);
#undef SEND_BAD

	/* reply types sent to the server: never answered */
	for (i = PROTO_COOKIE; i <= PROTO_PUSH; i++) {
		memcpy(buf, good, (size_t)n);
		buf[3] = (uint8_t)i;
		ck_assert_int_eq(tc_send(&c, buf, (size_t)n), 0);
		nunexp++;
	}
	ck_assert_int_eq(tc_recv(&c, buf, sizeof(buf), 300), -1);
	ck_assert_int_eq(mpd_stat(&P, "datagrams_in"), in0 + nbad + nunexp);
	ck_assert_int_eq(mpd_stat(&P, "datagrams_malformed"), bad0 + nbad);
	ck_assert_int_eq(mpd_stat(&P, "datagrams_unexpected"),
	    unexp0 + nunexp);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 0);
	ck_assert_int_eq(mpd_stat(&P, "cookies_sent"), 1);
	/* and the daemon still works: the good one registers */
	ck_assert_int_eq(tc_send(&c, good, (size_t)n), 0);
	ck_assert_int_eq(tc_recv(&c, buf, sizeof(buf), 2000),
	    PROTO_REGISTERED_LEN);
	ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
	tc_close(&c);
}
END_TEST

Suite *
make_register_suite(void)
{
	Suite *s = suite_create("register");
	TCase *tc;

	tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, cookie_then_registered);
	tcase_add_test(tc, replace_same_client);
	tcase_add_test(tc, refresh_move_unregister);
	tcase_add_test(tc, refresh_other_users_id);
	tcase_add_test(tc, expiry);
	tcase_add_test(tc, ipv6);
	tcase_add_test(tc, no_cookie_echo);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, too_many_logged_once);
	tcase_add_test(tc, evict_oldest);
	tcase_add_test(tc, evict_not_for_refused);
	tcase_add_test(tc, context_size_default);
	tcase_add_test(tc, context_size_config);
	tcase_add_test(tc, per_client_config);
	tcase_add_test(tc, user_override);
	tcase_add_test(tc, table_full);
	tcase_add_test(tc, address_limit);
	tcase_add_test(tc, too_many_mailboxes);
	suite_add_tcase(s, tc);

	tc = tcase_create("auth");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, wrong_token);
	tcase_add_test(tc, stale_timestamp);
	tcase_add_test(tc, replay_other_address);
	tcase_add_test(tc, auth_none_allow);
	tcase_add_test(tc, token_allow);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, malformed);
	suite_add_tcase(s, tc);
	return s;
}
