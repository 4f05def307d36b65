/*
 * check_addrlimit.c: what max_registrations_per_address counts as one
 * address (issue 13 item 8): an IPv4 address, or an IPv6 prefix of
 * [limits] ipv6_address_prefix bits (/64 by default), and the counts
 * redone when a reload changes the prefix.  The registry is driven
 * directly (notifier/registry.c linked in), with a daemon context of its
 * own; the UDP path to it is the same as for IPv4 (check_register.c).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <sodium.h>

#include "../notifier/mailpushd.h"
#include "regctx.h"

Suite	*make_addrlimit_suite(void);

static union mp_addr
v6(const char *text, uint16_t port)
{
	union mp_addr a;

	memset(&a, 0, sizeof(a));
	a.sin6.sin6_family = AF_INET6;
	a.sin6.sin6_port = htons(port);
	ck_assert_int_eq(inet_pton(AF_INET6, text, &a.sin6.sin6_addr), 1);
	return a;
}

static union mp_addr
v4(const char *text, uint16_t port)
{
	union mp_addr a;

	memset(&a, 0, sizeof(a));
	a.sin.sin_family = AF_INET;
	a.sin.sin_port = htons(port);
	ck_assert_int_eq(inet_pton(AF_INET, text, &a.sin.sin_addr), 1);
	return a;
}

static struct reg *
add(const char *user, const union mp_addr *a)
{
	static unsigned n;
	struct reg *r;

	r = registry_add(registry_user(user, 1), a, 0, (const uint8_t *)"", 0,
	    600, 0);
	memset(r->device, 0, sizeof(r->device));
	memcpy(r->device, &n, sizeof(n));
	n++;
	return r;
}

START_TEST(prefix_64_is_one_address)
{
	union mp_addr a = v6("2001:db8:1:2::1", 4000);
	union mp_addr b = v6("2001:db8:1:2:ffff:ffff:ffff:fffe", 4001);
	union mp_addr c = v6("2001:db8:1:3::1", 4000);

	ck_assert_uint_eq(mpd->cfg.ipv6_address_prefix, 64);
	ck_assert(registry_same_addr(&a, &b));
	ck_assert(!registry_same_addr(&a, &c));
	add("alice", &a);
	add("bob", &b);
	add("carol", &c);
	ck_assert_uint_eq(registry_addr_count(&a), 2);
	ck_assert_uint_eq(registry_addr_count(&b), 2);
	ck_assert_uint_eq(registry_addr_count(&c), 1);
	/* any address of the /64, even one nobody registered from */
	{
		union mp_addr d = v6("2001:db8:1:2:1234::9", 1);

		ck_assert_uint_eq(registry_addr_count(&d), 2);
	}
}
END_TEST

START_TEST(ipv4_counts_whole)
{
	union mp_addr a = v4("192.0.2.1", 4000);
	union mp_addr b = v4("192.0.2.2", 4000);
	union mp_addr a2 = v4("192.0.2.1", 5000);

	ck_assert(registry_same_addr(&a, &a2));
	ck_assert(!registry_same_addr(&a, &b));
	add("alice", &a);
	add("bob", &a2);
	add("carol", &b);
	ck_assert_uint_eq(registry_addr_count(&a), 2);
	ck_assert_uint_eq(registry_addr_count(&b), 1);
}
END_TEST

/* A reload that changes the prefix counts everything again; a move
 * keeps the counts right. */
START_TEST(prefix_changed_and_moves)
{
	union mp_addr a = v6("2001:db8::1", 4000);
	union mp_addr b = v6("2001:db8::2", 4000);
	union mp_addr c = v6("2001:db8:0:0:8000::1", 4000);
	struct reg *r;

	add("alice", &a);
	r = add("bob", &b);
	add("carol", &c);
	ck_assert_uint_eq(registry_addr_count(&a), 3);
	registry_set_prefix6(128);
	ck_assert(!registry_same_addr(&a, &b));
	ck_assert_uint_eq(registry_addr_count(&a), 1);
	ck_assert_uint_eq(registry_addr_count(&b), 1);
	registry_set_prefix6(65);
	ck_assert_uint_eq(registry_addr_count(&a), 2);
	ck_assert_uint_eq(registry_addr_count(&c), 1);
	/* bob moves into carol's half */
	{
		union mp_addr d = v6("2001:db8:0:0:8000::7", 9);

		registry_set_addr(r, &d, 0);
	}
	ck_assert_uint_eq(registry_addr_count(&a), 1);
	ck_assert_uint_eq(registry_addr_count(&c), 2);
	registry_remove(r, "test");
	ck_assert_uint_eq(registry_addr_count(&c), 1);
}
END_TEST

/* Tombstones: a device gone keeps its last timestamp for the window. */
START_TEST(tombstones)
{
	uint8_t dev[PROTO_DEVICE_LEN];

	memset(dev, 7, sizeof(dev));
	ck_assert_uint_eq(registry_tomb_hwm("alice", dev), 0);
	registry_tomb_add("alice", dev, mpd->now_ms - 5);
	ck_assert_uint_eq(registry_tomb_hwm("alice", dev), mpd->now_ms - 5);
	ck_assert_uint_eq(registry_tomb_hwm("bob", dev), 0);
	registry_tomb_add("alice", dev, mpd->now_ms + 3);
	ck_assert_uint_eq(registry_tomb_hwm("alice", dev), mpd->now_ms + 3);
	ck_assert_uint_eq(registry_tombs(), 1);
	/* gone once its timestamp has left the window */
	mpd->now_ms += mpd->cfg.timestamp_window + 10;
	ck_assert_uint_eq(registry_tomb_hwm("alice", dev), 0);
	ck_assert_uint_eq(registry_tombs(), 0);
	/* bounded: never more than max_registrations */
	mpd->cfg.max_registrations = 3;
	for (dev[0] = 0; dev[0] < 10; dev[0]++)
		registry_tomb_add("alice", dev, mpd->now_ms);
	ck_assert_uint_eq(registry_tombs(), 3);
}
END_TEST

Suite *
make_addrlimit_suite(void)
{
	Suite *s = suite_create("addrlimit");
	TCase *tc = tcase_create("registry");

	tcase_add_checked_fixture(tc, regctx_setup, regctx_teardown);
	tcase_add_test(tc, prefix_64_is_one_address);
	tcase_add_test(tc, ipv4_counts_whole);
	tcase_add_test(tc, prefix_changed_and_moves);
	tcase_add_test(tc, tombstones);
	suite_add_tcase(s, tc);
	return s;
}
