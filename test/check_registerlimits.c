/*
 * check_registerlimits.c: the limits of registration through the real
 * mailpushd over UDP: per user (and its refusal logged once), on_limit =
 * evict-oldest, the context size by default, configured and per user,
 * per-client settings, a full table, the per-address limit and too many
 * mailboxes.  Every test starts its own daemon (check_register.h).
 */
#include "check_register.h"

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

Suite *
make_registerlimits_suite(void)
{
	Suite *s = suite_create("registerlimits");
	TCase *tc;

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
	return s;
}
