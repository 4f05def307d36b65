/*
 * check_turn.c: what a turn of the daemon's loop changes reaches the
 * journal.
 *
 * - A push given up after its retransmissions (a timer: no event or
 *   request in that turn) records the registration's new state.
 * - The journal keeps the registrations changed in a turn by pointer
 *   until it records them; one reallocated for a longer context, or
 *   removed, in the same turn must be followed or forgotten.  The daemon
 *   is stopped (SIGSTOP) while the datagrams are sent, so it reads them
 *   all in one recvmmsg(2), in one turn; the journal must then hold the
 *   new context and the removal, and the daemon (under ASan or valgrind
 *   in `make check SANITIZE=1' and `make valgrind') must not touch freed
 *   memory.
 */
#include <sys/types.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "ops.h"
#include "statefile.h"

static struct mpd_proc P;
static char out[65536];

static const uint8_t DEV_A[PROTO_DEVICE_LEN] = { 0x5a, 0x01, 0x02, 0x03,
    0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f };

static void
teardown(void)
{
	ck_assert_msg(mpd_finish(&P) == 0, "mailpushd in %s did not end "
	    "cleanly", P.dir);
}

static void
send_req(struct tclient *c, uint8_t type, const char *ctx)
{
	static struct mp_request rq;
	uint8_t buf[PROTO_MAX_DATAGRAM];
	int n;

	tc_req(c, &rq, type, ctx, strlen(ctx));
	n = tc_encode(c, &rq, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(tc_send(c, buf, (size_t)n), 0);
}

/* The first reply of type `type' to c within 3 s. */
static void
expect_reply(struct tclient *c, uint8_t type, struct mp_reply *rp)
{
	uint8_t buf[PROTO_MAX_DATAGRAM];
	const char *why;
	int n;

	for (;;) {
		n = tc_recv(c, buf, sizeof(buf), 3000);
		ck_assert_msg(n > 0, "no %s", proto_type_name(type));
		if (proto_reply_decode(buf, (size_t)n, rp, &why) == 0 &&
		    rp->type == type)
			return;
	}
}

/* Within 2 s, the newest record of id of that type in the journal is
 * there (a REG: with that context length; a SEQ: with that state). */
static int
journal_has(uint32_t id, uint8_t type, unsigned want)
{
	uint64_t until = now_ms() + 2000, gens[8];
	char jname[256];
	struct sf sf;
	struct sf_rec *r;
	int found;

	ck_assert_uint_eq(sf_journals(P.state, gens, 8), 1);
	snprintf(jname, sizeof(jname), "%s.journal.%llu", P.state,
	    (unsigned long long)gens[0]);
	do {
		ck_assert_int_eq(sf_read(jname, &sf), 0);
		r = sf_find(&sf, type, id);
		found = r != NULL && (type == REC_REG ? r->f.ctx_len == want :
		    type == REC_SEQ ? r->f.state == want : 1);
		sf_free(&sf);
		if (found)
			return 1;
		usleep(10000);
	} while (now_ms() < until);
	return 0;
}

START_TEST(realloc_and_remove_in_one_turn)
{
	static const char longer[] = "a context of 33 bytes, not 1 byte";
	struct tclient a, b;
	struct mp_reply rp;
	uint32_t ida, idb;
	char hex[9];

	ck_assert_int_eq(ops_prepare(&P, NULL, NULL), 0);
	snprintf(out, sizeof(out), "user =\nlisten = 127.0.0.1:%d\n"
	    "state_save_interval = 1h\n", P.port);
	ck_assert_int_eq(ops_write_config(&P, out,
	    "[limits]\nmax_context_size = 64\n"), 0);
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(tc_open(&a, &P, 0, NULL, "alice"), 0);
	tc_set_device(&a, DEV_A);
	ck_assert_int_eq(tc_register(&a, "a", 1, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ida = rp.reg_id;
	ck_assert_int_eq(tc_open(&b, &P, 0, NULL, "bob"), 0);
	ck_assert_int_eq(tc_register(&b, "b", 1, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	idb = rp.reg_id;

	ck_assert_int_eq(mpd_pause(&P), 0);
	/* alice refreshes (an EXP change: the turn's list takes her entry),
	 * then registers her device again with a longer context: the entry
	 * is reallocated */
	send_req(&a, PROTO_REFRESH, "a");
	send_req(&a, PROTO_REGISTER, longer);
	/* bob refreshes (an EXP change) and unregisters */
	send_req(&b, PROTO_REFRESH, "b");
	send_req(&b, PROTO_UNREGISTER, "b");
	ck_assert_int_eq(mpd_signal(&P, SIGCONT), 0);

	expect_reply(&a, PROTO_REGISTERED, &rp);
	ck_assert_uint_eq(rp.reg_id, ida);
	ck_assert_msg(journal_has(ida, REC_REG, sizeof(longer) - 1),
	    "no REG record of alice with the %zu-byte context",
	    sizeof(longer) - 1);
	ck_assert_msg(journal_has(idb, REC_DEL, 0), "no DEL record of bob");
	ck_assert_int_eq(mpd_list(&P, "bob", out, sizeof(out)), 0);
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 1);
	reg_hex(ida, hex);
	ck_assert_msg(strstr(out, hex) != NULL, "%s", out);
	tc_close(&a);
	tc_close(&b);
}
END_TEST

/*
 * A push given up after its retransmissions leaves the registration
 * unreachable: a change of the SEQ record's state that no event or request
 * of the turn records, so the give-up must record it itself.
 */
START_TEST(given_up_push_recorded)
{
	struct tclient a;
	struct mp_reply rp;
	struct mp_push p;

	ck_assert_int_eq(ops_prepare(&P, NULL, NULL), 0);
	snprintf(out, sizeof(out), "user =\nlisten = 127.0.0.1:%d\n"
	    "state_save_interval = 1h\n", P.port);
	ck_assert_int_eq(ops_write_config(&P, out, "[limits]\n"
	    "min_push_interval = 0\npush_retry_interval = 50ms\n"
	    "push_retries = 1\n"), 0);
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(tc_open(&a, &P, 0, NULL, "alice"), 0);
	ck_assert_int_eq(tc_register(&a, "a", 1, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	ck_assert_int_eq(tc_push(&a, &p, 3000), 0);	/* not acknowledged */
	ck_assert_int_eq(mpd_stat_wait(&P, "pushes_given_up", 1, 3000), 0);
	ck_assert_msg(journal_has(rp.reg_id, REC_SEQ, 2),
	    "the journal's newest SEQ record of the registration does not "
	    "say unreachable (2)");
	ck_assert_int_eq(mpd_list(&P, "alice", out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "unreachable") != NULL, "%s", out);
	tc_close(&a);
}
END_TEST

Suite *
make_turn_suite(void)
{
	Suite *s = suite_create("turn");
	TCase *tc = tcase_create("turn");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, realloc_and_remove_in_one_turn);
	tcase_add_test(tc, given_up_push_recorded);
	suite_add_tcase(s, tc);
	return s;
}
