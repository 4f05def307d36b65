/*
 * check_configaddr.c: addresses in the configuration (shared/config.c):
 * listen addresses and config_parse_listen, the allow list of networks
 * and config_addr_allowed, allow_users, and the recipient delimiters.
 * The fixture is in check_config.h.
 */
#include "check_config.h"

Suite	*make_configaddr_suite(void);

#define BADADDR(a) "t.conf:2: [mailpushd] listen: bad address \"" a "\": " \
	"must be IPv4ADDR[:PORT] or [IPv6ADDR][:PORT] with a port from 1 to " \
	"65535\n"

START_TEST(test_listen)
{
	struct mp_config cfg;
	char text[1024];
	size_t i;
	int n;

	/* the default */
	load_ok("", &cfg);
	ck_assert_uint_eq(cfg.n_listen, 2);
	assert_listen(&cfg.listen[0], AF_INET, "127.0.0.1", 4650);
	assert_listen(&cfg.listen[1], AF_INET6, "::1", 4650);
	config_free(&cfg);

	load_ok("[mailpushd]\nlisten = 127.0.0.1 127.0.0.2:5000,[::1]:65535 "
	    "[::1]\t[2001:db8::7]:1\n", &cfg);
	ck_assert_uint_eq(cfg.n_listen, 5);
	assert_listen(&cfg.listen[0], AF_INET, "127.0.0.1", 4650);
	assert_listen(&cfg.listen[1], AF_INET, "127.0.0.2", 5000);
	assert_listen(&cfg.listen[2], AF_INET6, "::1", 65535);
	assert_listen(&cfg.listen[3], AF_INET6, "::1", 4650);
	assert_listen(&cfg.listen[4], AF_INET6, "2001:db8::7", 1);
	ck_assert_str_eq(cfg.listen[1].text, "127.0.0.2:5000");
	ck_assert_str_eq(cfg.listen[4].text, "[2001:db8::7]:1");
	config_free(&cfg);

	load_fails("[mailpushd]\nlisten = ::1\n", BADADDR("::1"));
	load_fails("[mailpushd]\nlisten = ::1:4650\n", BADADDR("::1:4650"));
	load_fails("[mailpushd]\nlisten = 127.0.0.1:0\n",
	    BADADDR("127.0.0.1:0"));
	load_fails("[mailpushd]\nlisten = [::1]:0\n", BADADDR("[::1]:0"));
	load_fails("[mailpushd]\nlisten = 127.0.0.1:65536\n",
	    BADADDR("127.0.0.1:65536"));
	load_fails("[mailpushd]\nlisten = [::1]:65536\n",
	    BADADDR("[::1]:65536"));
	load_fails("[mailpushd]\nlisten = 127.0.0.1:\n",
	    BADADDR("127.0.0.1:"));
	load_fails("[mailpushd]\nlisten = 127.0.0.1:http\n",
	    BADADDR("127.0.0.1:http"));
	load_fails("[mailpushd]\nlisten = localhost:4650\n",
	    BADADDR("localhost:4650"));
	load_fails("[mailpushd]\nlisten = [::1\n", BADADDR("[::1"));
	load_fails("[mailpushd]\nlisten = [::1]4650\n", BADADDR("[::1]4650"));
	load_fails("[mailpushd]\nlisten = [127.0.0.1]:4650\n",
	    BADADDR("[127.0.0.1]:4650"));
	load_fails("[mailpushd]\nlisten = 127.0.0.256\n",
	    BADADDR("127.0.0.256"));
	/* every bad item is reported, the good ones do not hide them */
	load_fails("[mailpushd]\nlisten = 127.0.0.1 ::1 [::1]:0\n",
	    BADADDR("::1") BADADDR("[::1]:0"));
	load_fails("[mailpushd]\nlisten =\n",
	    "t.conf:2: [mailpushd] listen: needs at least one address\n");
	load_fails("[mailpushd]\nlisten = 127.0.0.1:4650 127.0.0.1\n",
	    "t.conf:2: [mailpushd] listen: duplicate address \"127.0.0.1\" "
	    "(the same as \"127.0.0.1:4650\")\n");

	/* 16 addresses, on continuation lines: accepted */
	n = snprintf(text, sizeof(text), "[mailpushd]\nlisten =\n");
	for (i = 1; i <= CONFIG_LISTEN_MAX; i++)
		n += snprintf(text + n, sizeof(text) - (size_t)n,
		    "  127.0.0.1:%zu\n", i);
	load_ok(text, &cfg);
	ck_assert_uint_eq(cfg.n_listen, CONFIG_LISTEN_MAX);
	assert_listen(&cfg.listen[15], AF_INET, "127.0.0.1", 16);
	config_free(&cfg);
	/* the 17th and 18th: one error, on the line of the 17th */
	n += snprintf(text + n, sizeof(text) - (size_t)n,
	    "  127.0.0.1:17 127.0.0.1:18\n");
	load_fails(text, "t.conf:19: [mailpushd] listen: at most 16 "
	    "addresses\n");
}
END_TEST

START_TEST(test_parse_listen_api)
{
	struct config_listen l;

	ck_assert_int_eq(config_parse_listen("[::1]:99", &l), 0);
	assert_listen(&l, AF_INET6, "::1", 99);
	ck_assert_int_eq(config_parse_listen("10.1.2.3", &l), 0);
	assert_listen(&l, AF_INET, "10.1.2.3", 4650);
	ck_assert_int_eq(config_parse_listen("", &l), -1);
	ck_assert_int_eq(config_parse_listen("[]:1", &l), -1);
	ck_assert_int_eq(config_parse_listen(":1", &l), -1);
	ck_assert_int_eq(config_parse_listen(
	    "[0000:0000:0000:0000:0000:0000:0000:0001]:4650xxxxxxxxxxxxxxxxxx",
	    &l), -1);
}
END_TEST

#define BADNET(n) "t.conf:2: [mailpushd] allow: bad network \"" n "\": " \
	"must be ADDRESS or ADDRESS/PREFIX (IPv4 prefix 0 to 32, IPv6 0 to " \
	"128)\n"

START_TEST(test_cidrs)
{
	struct mp_config cfg;

	load_ok("[mailpushd]\nallow = 10.0.0.0/8, 192.168.1.1 ::1/128 "
	    "fe80::/10\n  0.0.0.0/0 ::/0 2001:db8::/32\n", &cfg);
	ck_assert_uint_eq(cfg.n_allow, 7);
	ck_assert_int_eq(cfg.allow[0].family, AF_INET);
	ck_assert_uint_eq(cfg.allow[0].prefix, 8);
	ck_assert_uint_eq(cfg.allow[0].addr[0], 10);
	ck_assert_int_eq(cfg.allow[1].family, AF_INET);
	ck_assert_uint_eq(cfg.allow[1].prefix, 32);	/* host: full length */
	ck_assert_int_eq(cfg.allow[2].family, AF_INET6);
	ck_assert_uint_eq(cfg.allow[2].prefix, 128);
	ck_assert_uint_eq(cfg.allow[2].addr[15], 1);
	ck_assert_uint_eq(cfg.allow[3].prefix, 10);
	ck_assert_uint_eq(cfg.allow[4].prefix, 0);
	ck_assert_int_eq(cfg.allow[5].family, AF_INET6);
	ck_assert_uint_eq(cfg.allow[5].prefix, 0);
	ck_assert_uint_eq(cfg.allow[6].addr[2], 0x0d);
	config_free(&cfg);

	load_fails("[mailpushd]\nallow = 10.0.0.0/33\n", BADNET("10.0.0.0/33"));
	load_fails("[mailpushd]\nallow = ::/129\n", BADNET("::/129"));
	load_fails("[mailpushd]\nallow = 10.0.0.0/\n", BADNET("10.0.0.0/"));
	load_fails("[mailpushd]\nallow = /8\n", BADNET("/8"));
	load_fails("[mailpushd]\nallow = 10.0.0.0/-1\n", BADNET("10.0.0.0/-1"));
	load_fails("[mailpushd]\nallow = 10.0.0.0/8/9\n",
	    BADNET("10.0.0.0/8/9"));
	load_fails("[mailpushd]\nallow = 10.0.0.0/x\n", BADNET("10.0.0.0/x"));
	load_fails("[mailpushd]\nallow = 10/8\n", BADNET("10/8"));
	load_fails("[mailpushd]\nallow = example.com\n", BADNET("example.com"));
	load_fails("[mailpushd]\nallow = [::1]\n", BADNET("[::1]"));
	load_fails("[mailpushd]\nallow = 10.0.0.0/99999999999999999999\n",
	    BADNET("10.0.0.0/99999999999999999999"));
}
END_TEST

static int
allowed4(const struct mp_config *cfg, const char *a)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	ck_assert_int_eq(inet_pton(AF_INET, a, &sin.sin_addr), 1);
	return config_addr_allowed(cfg, (struct sockaddr *)&sin);
}

static int
allowed6(const struct mp_config *cfg, const char *a)
{
	struct sockaddr_in6 sin6;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	ck_assert_int_eq(inet_pton(AF_INET6, a, &sin6.sin6_addr), 1);
	return config_addr_allowed(cfg, (struct sockaddr *)&sin6);
}

START_TEST(test_addr_allowed)
{
	struct mp_config cfg;

	/* no list: everybody */
	load_ok("", &cfg);
	ck_assert_int_eq(allowed4(&cfg, "203.0.113.9"), 1);
	ck_assert_int_eq(allowed6(&cfg, "2001:db8::1"), 1);
	config_free(&cfg);

	load_ok("[mailpushd]\nallow = 10.0.0.0/8 192.168.1.128/25 "
	    "2001:db8::/32 fd00::1\n", &cfg);
	ck_assert_int_eq(allowed4(&cfg, "10.1.2.3"), 1);
	ck_assert_int_eq(allowed4(&cfg, "10.255.255.255"), 1);
	ck_assert_int_eq(allowed4(&cfg, "11.0.0.1"), 0);
	ck_assert_int_eq(allowed4(&cfg, "9.255.255.255"), 0);
	/* a prefix that ends inside a byte */
	ck_assert_int_eq(allowed4(&cfg, "192.168.1.128"), 1);
	ck_assert_int_eq(allowed4(&cfg, "192.168.1.255"), 1);
	ck_assert_int_eq(allowed4(&cfg, "192.168.1.127"), 0);
	ck_assert_int_eq(allowed6(&cfg, "2001:db8::1"), 1);
	ck_assert_int_eq(allowed6(&cfg, "2001:db8:ffff::1"), 1);
	ck_assert_int_eq(allowed6(&cfg, "2001:db9::1"), 0);
	ck_assert_int_eq(allowed6(&cfg, "fd00::1"), 1);
	ck_assert_int_eq(allowed6(&cfg, "fd00::2"), 0);
	/* IPv4 seen through a dual-stack socket matches the IPv4 list */
	ck_assert_int_eq(allowed6(&cfg, "::ffff:10.1.2.3"), 1);
	ck_assert_int_eq(allowed6(&cfg, "::ffff:192.168.1.200"), 1);
	ck_assert_int_eq(allowed6(&cfg, "::ffff:11.0.0.1"), 0);
	/* ...but an IPv4-compatible or other IPv6 address does not */
	ck_assert_int_eq(allowed6(&cfg, "::10.1.2.3"), 0);
	ck_assert_int_eq(allowed6(&cfg, "64:ff9b::10.1.2.3"), 0);
	config_free(&cfg);

	/* a v4-mapped network matches IPv4 sources either way */
	load_ok("[mailpushd]\nallow = ::ffff:10.0.0.0/104\n", &cfg);
	ck_assert_int_eq(allowed6(&cfg, "::ffff:10.9.9.9"), 1);
	ck_assert_int_eq(allowed4(&cfg, "10.9.9.9"), 1);
	ck_assert_int_eq(allowed4(&cfg, "11.9.9.9"), 0);
	config_free(&cfg);

	/* /0 of one family does not admit the other */
	load_ok("[mailpushd]\nallow = 0.0.0.0/0\n", &cfg);
	ck_assert_int_eq(allowed4(&cfg, "203.0.113.9"), 1);
	ck_assert_int_eq(allowed6(&cfg, "2001:db8::1"), 0);
	ck_assert_int_eq(allowed6(&cfg, "::ffff:203.0.113.9"), 1);
	config_free(&cfg);
	load_ok("[mailpushd]\nallow = 127.0.0.1 ::1\n", &cfg);
	ck_assert_int_eq(allowed4(&cfg, "127.0.0.1"), 1);
	ck_assert_int_eq(allowed4(&cfg, "127.0.0.2"), 0);
	ck_assert_int_eq(allowed6(&cfg, "::1"), 1);
	config_free(&cfg);
}
END_TEST

START_TEST(test_allow_users)
{
	struct mp_config cfg;

	load_ok("", &cfg);
	ck_assert_uint_eq(cfg.n_allow_users, 0);
	ck_assert_int_eq(config_user_may_post(&cfg, "anybody"), 1);
	config_free(&cfg);

	load_ok("[events]\nallow_users = postfix, dovecot\n    vmail\n", &cfg);
	ck_assert_uint_eq(cfg.n_allow_users, 3);
	ck_assert_str_eq(cfg.allow_users[0], "postfix");
	ck_assert_str_eq(cfg.allow_users[1], "dovecot");
	ck_assert_str_eq(cfg.allow_users[2], "vmail");
	ck_assert_int_eq(config_user_may_post(&cfg, "dovecot"), 1);
	ck_assert_int_eq(config_user_may_post(&cfg, "vmail"), 1);
	ck_assert_int_eq(config_user_may_post(&cfg, "root"), 0);
	ck_assert_int_eq(config_user_may_post(&cfg, "Postfix"), 0);
	config_free(&cfg);

	load_fails("[events]\nallow_users = postfix bad/name -x\n",
	    "t.conf:2: [events] allow_users: bad user name \"bad/name\": "
	    "letters, digits, '.', '_', '$' and '-' (not first), at most 63 "
	    "characters\n"
	    "t.conf:2: [events] allow_users: bad user name \"-x\": "
	    "letters, digits, '.', '_', '$' and '-' (not first), at most 63 "
	    "characters\n");
}
END_TEST

START_TEST(test_delimiters)
{
	struct mp_config cfg;

	load_ok("", &cfg);
	ck_assert_str_eq(cfg.names.delimiters, "+");
	ck_assert_int_eq(cfg.names.fold_case, 1);
	config_free(&cfg);
	load_ok("[names]\nrecipient_delimiter = +-\n", &cfg);
	ck_assert_str_eq(cfg.names.delimiters, "+-");
	config_free(&cfg);
	/* empty: no extensions */
	load_ok("[names]\nrecipient_delimiter =\n", &cfg);
	ck_assert_str_eq(cfg.names.delimiters, "");
	config_free(&cfg);
	/* ';' directly after '=' is a value, not a comment */
	load_ok("[names]\nrecipient_delimiter =;\n", &cfg);
	ck_assert_str_eq(cfg.names.delimiters, ";");
	config_free(&cfg);
	load_ok("[names]\nrecipient_delimiter = +-_.=#\n", &cfg);
	ck_assert_str_eq(cfg.names.delimiters, "+-_.=#");
	config_free(&cfg);

	load_fails("[names]\nrecipient_delimiter = @\n",
	    "t.conf:2: [names] recipient_delimiter: must be punctuation "
	    "characters other than '@', such as + or -\n");
	load_fails("[names]\nrecipient_delimiter = x\n",
	    "t.conf:2: [names] recipient_delimiter: must be punctuation "
	    "characters other than '@', such as + or -\n");
	load_fails("[names]\nrecipient_delimiter = + -\n",
	    "t.conf:2: [names] recipient_delimiter: must be punctuation "
	    "characters other than '@', such as + or -\n");
	load_fails("[names]\nrecipient_delimiter = +-+-+-+-+-+-+-+-\n",
	    "t.conf:2: [names] recipient_delimiter: at most 15 characters\n");
}
END_TEST

Suite *
make_configaddr_suite(void)
{
	Suite *s = suite_create("configaddr");
	TCase *tc;

	tc = tcase_create("types");
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_listen);
	tcase_add_test(tc, test_parse_listen_api);
	tcase_add_test(tc, test_cidrs);
	tcase_add_test(tc, test_allow_users);
	tcase_add_test(tc, test_delimiters);
	suite_add_tcase(s, tc);

	tc = tcase_create("lookups");
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_addr_allowed);
	suite_add_tcase(s, tc);
	return s;
}
