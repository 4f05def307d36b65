/*
 * check_clientpush.c: pushes through the client library
 * (client/mpclient.c): delivery, retransmitted and foreign pushes, bad
 * MACs, new-message counts; then keep-alive, the probe search and its
 * bounds, KICK, a new server epoch and the device file.  The fake server
 * and the simulated clock are in check_client.h.
 */
#include "check_client.h"

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

Suite *
make_clientpush_suite(void)
{
	Suite *s = suite_create("clientpush");
	TCase *tc;

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
	return s;
}
