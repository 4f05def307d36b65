/*
 * check_user.c: the user-name rule (shared/user.c), the one function that
 * decides that `Alice+news@Example.com' and `alice@example.com' are one
 * mailbox, and which names are refused and why.
 */
#include <string.h>

#include <check.h>

#include "user.h"

Suite	*make_user_suite(void);

static const struct user_rule rule_default = { 1, "+" };
static const struct user_rule rule_nofold = { 0, "+" };
static const struct user_rule rule_plusdash = { 1, "+-" };
static const struct user_rule rule_none = { 1, "" };

/* Normalise `in' (NUL-terminated) and expect `want'. */
static void
expect_name(const struct user_rule *r, const char *in, const char *want)
{
	char out[MP_USER_MAX + 1];
	const char *why = NULL;
	int rc;

	memset(out, 'X', sizeof(out));
	rc = user_normalize(r, in, strlen(in), out, &why);
	ck_assert_msg(rc == 0, "\"%s\" refused: %s", in, why ? why : "?");
	ck_assert_str_eq(out, want);
}

/* Normalise `len' bytes of `in' and expect the refusal `reason'. */
static void
expect_refused(const struct user_rule *r, const char *in, size_t len,
    const char *reason)
{
	char out[MP_USER_MAX + 1];
	const char *why = NULL;

	ck_assert_int_eq(user_normalize(r, in, len, out, &why), -1);
	ck_assert_ptr_nonnull(why);
	ck_assert_str_eq(why, reason);
}

START_TEST(test_same_mailbox)
{
	char a[MP_USER_MAX + 1], b[MP_USER_MAX + 1];
	const char *why;
	const char *x = "Alice+news@Example.com", *y = "alice@example.com";

	ck_assert_int_eq(user_normalize(&rule_default, x, strlen(x), a, &why),
	    0);
	ck_assert_int_eq(user_normalize(&rule_default, y, strlen(y), b, &why),
	    0);
	ck_assert_str_eq(a, b);
	ck_assert_str_eq(a, "alice@example.com");
	/* already normal: unchanged */
	expect_name(&rule_default, "alice@example.com", "alice@example.com");
	/* no domain */
	expect_name(&rule_default, "Alice+news", "alice");
	expect_name(&rule_default, "BOB", "bob");
	/* the extension may be empty */
	expect_name(&rule_default, "alice+@example.com", "alice@example.com");
	expect_name(&rule_default, "alice+", "alice");
	/* digits and punctuation other than delimiters are kept */
	expect_name(&rule_default, "J.Doe_2-x@Mail.Example.COM",
	    "j.doe_2-x@mail.example.com");
}
END_TEST

START_TEST(test_fold_case_off)
{
	expect_name(&rule_nofold, "Alice+news@Example.com",
	    "Alice@Example.com");
	expect_name(&rule_nofold, "alice@example.com", "alice@example.com");
	expect_name(&rule_nofold, "BOB", "BOB");
}
END_TEST

START_TEST(test_other_delimiters)
{
	/* "+-" as Postfix's recipient_delimiter = +- */
	expect_name(&rule_plusdash, "alice-lists@example.com",
	    "alice@example.com");
	expect_name(&rule_plusdash, "alice+news@example.com",
	    "alice@example.com");
	/* the first delimiter of any kind ends the name */
	expect_name(&rule_plusdash, "alice+a-b@example.com",
	    "alice@example.com");
	expect_name(&rule_plusdash, "bob-x+y", "bob");
	/* with "+" alone, '-' is an ordinary character */
	expect_name(&rule_default, "mary-ann+x@example.com",
	    "mary-ann@example.com");
	/* no delimiter: nothing is stripped */
	expect_name(&rule_none, "Alice+news@Example.com",
	    "alice+news@example.com");
}
END_TEST

START_TEST(test_several_delimiters)
{
	expect_name(&rule_default, "a+b+c@example.com", "a@example.com");
	expect_name(&rule_default, "alice++x", "alice");
	expect_name(&rule_plusdash, "a-b-c+d-e@example.com", "a@example.com");
}
END_TEST

START_TEST(test_leading_delimiter_kept)
{
	/* a leading delimiter is part of the name, as in Postfix */
	expect_name(&rule_default, "+alice@example.com", "+alice@example.com");
	expect_name(&rule_default, "+alice+x@example.com",
	    "+alice@example.com");
	expect_name(&rule_plusdash, "-bob-x", "-bob");
	expect_name(&rule_default, "+@example.com", "+@example.com");
	expect_name(&rule_default, "+", "+");
}
END_TEST

START_TEST(test_domain_untouched)
{
	/* a delimiter in the domain is not an extension */
	expect_name(&rule_plusdash, "alice@mail-1.example.com",
	    "alice@mail-1.example.com");
	expect_name(&rule_default, "alice+x@a+b.example", "alice@a+b.example");
}
END_TEST

START_TEST(test_length)
{
	char in[MP_USER_MAX + 2], out[MP_USER_MAX + 1];
	const char *why;

	/* exactly 255 bytes: accepted, copied whole and terminated */
	memset(in, 'a', sizeof(in));
	in[MP_USER_MAX] = '\0';
	memset(out, 'X', sizeof(out));
	ck_assert_int_eq(user_normalize(&rule_default, in, MP_USER_MAX, out,
	    &why), 0);
	ck_assert_uint_eq(strlen(out), MP_USER_MAX);
	/* 256 bytes: refused */
	expect_refused(&rule_default, in, MP_USER_MAX + 1,
	    "user name is longer than 255 bytes");
	/* only `len' bytes count, not what follows */
	ck_assert_int_eq(user_normalize(&rule_default, "bobby", 3, out, &why),
	    0);
	ck_assert_str_eq(out, "bob");
}
END_TEST

START_TEST(test_refused)
{
	expect_refused(&rule_default, "", 0, "user name is empty");
	expect_refused(&rule_default, "ali ce", 6,
	    "user name contains a space or control character");
	expect_refused(&rule_default, " alice", 6,
	    "user name contains a space or control character");
	expect_refused(&rule_default, "alice\t", 6,
	    "user name contains a space or control character");
	expect_refused(&rule_default, "ali\nce", 6,
	    "user name contains a space or control character");
	expect_refused(&rule_default, "a\001b", 3,
	    "user name contains a space or control character");
	expect_refused(&rule_default, "a\177b", 3,
	    "user name contains a space or control character");
	expect_refused(&rule_default, "a\0b", 3,
	    "user name contains a space or control character");
	/* even inside the extension that would be stripped */
	expect_refused(&rule_default, "a+b c", 5,
	    "user name contains a space or control character");
	expect_refused(&rule_default, "a@b@c", 5,
	    "user name contains more than one '@'");
	expect_refused(&rule_default, "a+x@b@c", 7,
	    "user name contains more than one '@'");
	expect_refused(&rule_default, "alice@", 6,
	    "user name has an empty domain");
	expect_refused(&rule_default, "alice+x@", 8,
	    "user name has an empty domain");
	expect_refused(&rule_default, "@example.com", 12,
	    "user name has an empty local part");
	expect_refused(&rule_default, "@", 1,
	    "user name has an empty local part");
}
END_TEST

START_TEST(test_utf8)
{
	static const char bad[] =
	    "user name is not valid UTF-8 or contains a control character";

	/* UTF-8 is kept; only ASCII letters are folded */
	expect_name(&rule_default, "Jos\xc3\xa9@Example.com",
	    "jos\xc3\xa9@example.com");
	expect_name(&rule_default, "\xc3\x89lodie", "\xc3\x89lodie");
	expect_name(&rule_default, "\xe2\x82\xac" "uro", "\xe2\x82\xac" "uro");
	expect_name(&rule_default, "smile\xf0\x9f\x98\x80",
	    "smile\xf0\x9f\x98\x80");
	expect_name(&rule_default, "\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");
	/* a UTF-8 extension is stripped whole */
	expect_name(&rule_default, "bob+\xc3\xa9t\xc3\xa9@x", "bob@x");

	expect_refused(&rule_default, "\xc3\x28", 2, bad);	/* bad trail */
	expect_refused(&rule_default, "ab\xe2\x82", 4, bad);	/* truncated */
	expect_refused(&rule_default, "\x80" "abc", 4, bad);	/* lone trail */
	expect_refused(&rule_default, "\xc0\xaf", 2, bad);	/* overlong / */
	expect_refused(&rule_default, "\xe0\x80\xaf", 3, bad);	/* overlong */
	expect_refused(&rule_default, "\xf0\x80\x80\xaf", 4, bad);
	expect_refused(&rule_default, "\xed\xa0\x80", 3, bad);	/* surrogate */
	expect_refused(&rule_default, "\xf4\x90\x80\x80", 4, bad); /* >10FFFF */
	expect_refused(&rule_default, "\xf5\x80\x80\x80", 4, bad);
	expect_refused(&rule_default, "\xff", 1, bad);
	expect_refused(&rule_default, "a\xc2\x85" "b", 4, bad);	/* C1 NEL */
	expect_refused(&rule_default, "a\xc2\x9b" "b", 4, bad);	/* C1 CSI */
	/* refused even inside an extension */
	expect_refused(&rule_default, "bob+\xff@x", 7, bad);
}
END_TEST

Suite *
make_user_suite(void)
{
	Suite *s = suite_create("user");
	TCase *tc;

	tc = tcase_create("normalize");
	tcase_add_test(tc, test_same_mailbox);
	tcase_add_test(tc, test_fold_case_off);
	tcase_add_test(tc, test_other_delimiters);
	tcase_add_test(tc, test_several_delimiters);
	tcase_add_test(tc, test_leading_delimiter_kept);
	tcase_add_test(tc, test_domain_untouched);
	suite_add_tcase(s, tc);

	tc = tcase_create("refused");
	tcase_add_test(tc, test_length);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_utf8);
	suite_add_tcase(s, tc);
	return s;
}
