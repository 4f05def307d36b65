/*
 * check_event.c: the event datagram (shared/event.c) hook -> daemon:
 * round trips, the byte layout of mailpush-hook(8), and every malformed
 * case a receiver must refuse.
 */
#include <stdint.h>
#include <string.h>

#include <check.h>

#include "event.h"

Suite	*make_event_suite(void);

/* A valid datagram for "alice" / "INBOX", count 1, uid 0. */
static const uint8_t alice[] = {
	0x4d, 0x50, 0x45, 0x56, 0x01, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x05, 0x05,
	'a', 'l', 'i', 'c', 'e', 'I', 'N', 'B', 'O', 'X',
};

static void
expect_bad(const uint8_t *buf, size_t len, const char *what)
{
	struct mp_event ev;
	const char *why = NULL;

	ck_assert_int_eq(event_decode(buf, len, &ev, &why), -1);
	ck_assert_ptr_nonnull(why);
	ck_assert_msg(strstr(why, what) != NULL, "reason \"%s\" lacks \"%s\"",
	    why, what);
}

START_TEST(test_layout)
{
	struct mp_event ev;
	uint8_t buf[EVENT_MAX_LEN];
	const char *why = NULL;
	int n;

	ck_assert_int_eq(event_set(&ev, "alice", "INBOX", 1, 0, &why), 0);
	n = event_encode(&ev, buf, sizeof(buf), &why);
	ck_assert_int_eq(n, (int)sizeof(alice));
	ck_assert_mem_eq(buf, alice, sizeof(alice));
}
END_TEST

START_TEST(test_round_trip)
{
	struct mp_event in, out;
	uint8_t buf[EVENT_MAX_LEN];
	const char *why = NULL;
	int n;

	ck_assert_int_eq(event_set(&in, "Bob+news@Example.COM", "Lists/misc",
	    65535, 0xdeadbeefU, &why), 0);
	n = event_encode(&in, buf, sizeof(buf), &why);
	ck_assert_int_eq(n, 14 + 20 + 10);
	/* Network byte order for count and uid. */
	ck_assert_uint_eq(buf[6], 0xff);
	ck_assert_uint_eq(buf[7], 0xff);
	ck_assert_uint_eq(buf[8], 0xde);
	ck_assert_uint_eq(buf[11], 0xef);
	ck_assert_int_eq(event_decode(buf, (size_t)n, &out, &why), 0);
	ck_assert_uint_eq(out.count, 65535);
	ck_assert_uint_eq(out.uid, 0xdeadbeefU);
	ck_assert_uint_eq(out.user_len, 20);
	ck_assert_uint_eq(out.mailbox_len, 10);
	ck_assert_str_eq(out.user, "Bob+news@Example.COM");
	ck_assert_str_eq(out.mailbox, "Lists/misc");
}
END_TEST

START_TEST(test_max_lengths)
{
	struct mp_event in, out;
	uint8_t buf[EVENT_MAX_LEN + 16];
	char user[256], mbox[256];
	const char *why = NULL;
	int n;

	memset(user, 'u', 255);
	user[255] = '\0';
	memset(mbox, 'm', 255);
	mbox[255] = '\0';
	/* UTF-8 survives untouched. */
	memcpy(mbox, "\xc3\xa9t\xc3\xa9", 5);
	ck_assert_int_eq(event_set(&in, user, mbox, 3, 42, &why), 0);
	n = event_encode(&in, buf, sizeof(buf), &why);
	ck_assert_int_eq(n, EVENT_MAX_LEN);
	ck_assert_int_eq(n, 14 + 255 + 255);
	ck_assert_uint_eq(buf[12], 255);
	ck_assert_uint_eq(buf[13], 255);
	ck_assert_int_eq(event_decode(buf, (size_t)n, &out, &why), 0);
	ck_assert_str_eq(out.user, user);
	ck_assert_str_eq(out.mailbox, mbox);
	ck_assert_uint_eq(out.count, 3);
	ck_assert_uint_eq(out.uid, 42);
	/* One byte over is not even settable. */
	{
		char big[257];

		memset(big, 'x', 256);
		big[256] = '\0';
		ck_assert_int_eq(event_set(&in, big, "INBOX", 1, 0, &why), -1);
		ck_assert_ptr_nonnull(strstr(why, "user"));
		ck_assert_int_eq(event_set(&in, "alice", big, 1, 0, &why), -1);
		ck_assert_ptr_nonnull(strstr(why, "mailbox"));
	}
}
END_TEST

START_TEST(test_set_errors)
{
	struct mp_event ev;
	const char *why = NULL;

	ck_assert_int_eq(event_set(&ev, "", "INBOX", 1, 0, &why), -1);
	ck_assert_ptr_nonnull(strstr(why, "user"));
	ck_assert_int_eq(event_set(&ev, "alice", "", 1, 0, &why), -1);
	ck_assert_ptr_nonnull(strstr(why, "mailbox"));
	ck_assert_int_eq(event_set(&ev, "alice", "INBOX", 0, 0, &why), -1);
	ck_assert_ptr_nonnull(strstr(why, "count"));
	ck_assert_int_eq(event_set(&ev, "alice", "INBOX", 65536, 0, &why), -1);
	ck_assert_ptr_nonnull(strstr(why, "count"));
}
END_TEST

START_TEST(test_encode_errors)
{
	struct mp_event ev;
	uint8_t buf[EVENT_MAX_LEN];
	const char *why = NULL;

	ck_assert_int_eq(event_set(&ev, "alice", "INBOX", 1, 0, &why), 0);
	/* Buffer one byte short. */
	ck_assert_int_eq(event_encode(&ev, buf, sizeof(alice) - 1, &why), -1);
	ck_assert_ptr_nonnull(strstr(why, "too small"));
	ck_assert_int_eq(event_encode(&ev, buf, sizeof(alice), &why),
	    (int)sizeof(alice));
	/* Hand-built events with empty fields are refused. */
	ev.user_len = 0;
	ck_assert_int_eq(event_encode(&ev, buf, sizeof(buf), &why), -1);
	ev.user_len = 5;
	ev.mailbox_len = 0;
	ck_assert_int_eq(event_encode(&ev, buf, sizeof(buf), &why), -1);
	ev.mailbox_len = 5;
	ev.count = 0;
	ck_assert_int_eq(event_encode(&ev, buf, sizeof(buf), &why), -1);
}
END_TEST

START_TEST(test_short)
{
	size_t len;

	for (len = 0; len < EVENT_HDR_LEN; len++)
		expect_bad(alice, len, "shorter");
}
END_TEST

START_TEST(test_bad_magic)
{
	uint8_t b[sizeof(alice)];
	size_t i;

	for (i = 0; i < 4; i++) {
		memcpy(b, alice, sizeof(b));
		b[i] ^= 0x20;
		expect_bad(b, sizeof(b), "magic");
	}
}
END_TEST

START_TEST(test_bad_version)
{
	uint8_t b[sizeof(alice)];

	memcpy(b, alice, sizeof(b));
	b[4] = 0;
	expect_bad(b, sizeof(b), "version");
	b[4] = 2;
	expect_bad(b, sizeof(b), "version");
	b[4] = 0xff;
	expect_bad(b, sizeof(b), "version");
}
END_TEST

START_TEST(test_bad_flags)
{
	uint8_t b[sizeof(alice)];
	int bit;

	for (bit = 0; bit < 8; bit++) {
		memcpy(b, alice, sizeof(b));
		b[5] = (uint8_t)(1 << bit);
		expect_bad(b, sizeof(b), "flags");
	}
}
END_TEST

START_TEST(test_zero_lengths)
{
	uint8_t b[sizeof(alice)];

	/* user length 0 (and the datagram length made consistent). */
	memcpy(b, alice, sizeof(b));
	b[12] = 0;
	b[13] = 10;
	expect_bad(b, sizeof(b), "empty");
	/* mailbox length 0. */
	memcpy(b, alice, sizeof(b));
	b[12] = 10;
	b[13] = 0;
	expect_bad(b, sizeof(b), "empty");
	/* Both 0 on a bare header. */
	memcpy(b, alice, EVENT_HDR_LEN);
	b[12] = b[13] = 0;
	expect_bad(b, EVENT_HDR_LEN, "empty");
}
END_TEST

START_TEST(test_length_mismatch)
{
	uint8_t b[sizeof(alice) + 1];

	/* Datagram longer than its lengths say. */
	memcpy(b, alice, sizeof(alice));
	b[sizeof(alice)] = 'X';
	expect_bad(b, sizeof(alice) + 1, "length");
	/* Shorter than its lengths say. */
	expect_bad(alice, sizeof(alice) - 1, "length");
	/* Lengths that claim more than is there. */
	memcpy(b, alice, sizeof(alice));
	b[12] = 6;
	expect_bad(b, sizeof(alice), "length");
	memcpy(b, alice, sizeof(alice));
	b[13] = 4;
	expect_bad(b, sizeof(alice), "length");
	/* Maximal claims on a minimal datagram. */
	memcpy(b, alice, sizeof(alice));
	b[12] = b[13] = 255;
	expect_bad(b, sizeof(alice), "length");
}
END_TEST

START_TEST(test_nul_bytes)
{
	uint8_t b[sizeof(alice)];
	size_t i;

	for (i = EVENT_HDR_LEN; i < sizeof(alice); i++) {
		memcpy(b, alice, sizeof(b));
		b[i] = '\0';
		expect_bad(b, sizeof(b), "NUL");
	}
}
END_TEST

START_TEST(test_zero_count)
{
	uint8_t b[sizeof(alice)];
	struct mp_event ev;
	const char *why = NULL;

	memcpy(b, alice, sizeof(b));
	b[6] = b[7] = 0;
	expect_bad(b, sizeof(b), "count");
	/* The high byte alone makes it valid: 0x0100 = 256. */
	b[6] = 1;
	ck_assert_int_eq(event_decode(b, sizeof(b), &ev, &why), 0);
	ck_assert_uint_eq(ev.count, 256);
}
END_TEST

START_TEST(test_every_truncation)
{
	struct mp_event ev;
	uint8_t buf[EVENT_MAX_LEN];
	const char *why = NULL;
	int n;
	size_t len;

	ck_assert_int_eq(event_set(&ev, "carol@example.org", "Archive/2024",
	    7, 99, &why), 0);
	n = event_encode(&ev, buf, sizeof(buf), &why);
	ck_assert_int_gt(n, 0);
	for (len = 0; len < (size_t)n; len++)
		ck_assert_int_eq(event_decode(buf, len, &ev, &why), -1);
	ck_assert_int_eq(event_decode(buf, (size_t)n, &ev, &why), 0);
}
END_TEST

Suite *
make_event_suite(void)
{
	Suite *s = suite_create("event");
	TCase *tc;

	tc = tcase_create("core");
	tcase_add_test(tc, test_layout);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_max_lengths);
	tcase_add_test(tc, test_set_errors);
	tcase_add_test(tc, test_encode_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_test(tc, test_short);
	tcase_add_test(tc, test_bad_magic);
	tcase_add_test(tc, test_bad_version);
	tcase_add_test(tc, test_bad_flags);
	tcase_add_test(tc, test_zero_lengths);
	tcase_add_test(tc, test_length_mismatch);
	tcase_add_test(tc, test_nul_bytes);
	tcase_add_test(tc, test_zero_count);
	tcase_add_test(tc, test_every_truncation);
	suite_add_tcase(s, tc);
	return s;
}
