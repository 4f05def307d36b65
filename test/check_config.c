/*
 * check_config.c: the configuration loader (shared/config.c), value by
 * value: every type (integers, durations, sizes, booleans, file modes,
 * enumerations) with its exact error message, the duration parser,
 * users and groups, and paths.  Addresses: check_configaddr.c; the file's
 * syntax and sections: check_configfile.c; config_print and the shipped
 * example: check_configprint.c.  The fixture is in check_config.h.
 */
#include "check_config.h"

Suite	*make_config_suite(void);

/*
 * Table-driven values: "[section]\nkey = value\n".  A refused value is
 * reported on line 2 as "[section] key: msg"; an accepted one sets the
 * field at `off' (4 or 8 bytes wide) to `want'.
 */
struct vcase {
	const char	*section, *key, *value;
	const char	*msg;		/* NULL: accepted */
	size_t		 off;
	int		 width;
	uint64_t	 want;
};

static void
run_vcase(const struct vcase *v)
{
	char text[512], want[1024];
	struct mp_config cfg;

	snprintf(text, sizeof(text), "[%s]\n%s = %s\n", v->section, v->key,
	    v->value);
	if (v->msg != NULL) {
		snprintf(want, sizeof(want), "t.conf:2: [%s] %s: %s\n",
		    v->section, v->key, v->msg);
		load_fails(text, want);
		return;
	}
	load_ok(text, &cfg);
	if (v->width == 4)
		ck_assert_msg(*(unsigned *)((char *)&cfg + v->off) == v->want,
		    "%s = %s: got %u, want %llu", v->key, v->value,
		    *(unsigned *)((char *)&cfg + v->off),
		    (unsigned long long)v->want);
	else if (v->width == 8)
		ck_assert_msg(*(uint64_t *)((char *)&cfg + v->off) == v->want,
		    "%s = %s: got %llu, want %llu", v->key, v->value,
		    (unsigned long long)*(uint64_t *)((char *)&cfg + v->off),
		    (unsigned long long)v->want);
	config_free(&cfg);
}

#define CO(f)		offsetof(struct mp_config, f)
#define OK4(s, k, v, f, w)	{ s, k, v, NULL, CO(f), 4, w }
#define OK8(s, k, v, f, w)	{ s, k, v, NULL, CO(f), 8, w }
#define BAD(s, k, v, m)		{ s, k, v, m, 0, 0, 0 }

#define INT_CTX	"must be an integer from 0 to 1024"
#define INT_REG "must be an integer from 0 to 1024"

static const struct vcase integers[] = {
	OK4("limits", "max_context_size", "0", max_context_size, 0),
	OK4("limits", "max_context_size", "17", max_context_size, 17),
	OK4("limits", "max_context_size", "1024", max_context_size, 1024),
	OK4("limits", "max_context_size", "0017", max_context_size, 17),
	BAD("limits", "max_context_size", "1025", INT_CTX),
	BAD("limits", "max_context_size", "-1", INT_CTX),
	BAD("limits", "max_context_size", "+5", INT_CTX),
	BAD("limits", "max_context_size", "abc", INT_CTX),
	BAD("limits", "max_context_size", "12abc", INT_CTX),
	BAD("limits", "max_context_size", "0x10", INT_CTX),
	BAD("limits", "max_context_size", "1e3", INT_CTX),
	BAD("limits", "max_context_size", "1 2", INT_CTX),
	BAD("limits", "max_context_size", "", INT_CTX),
	/* 2^32 + 16 would be 16 if cast before the range check */
	BAD("limits", "max_context_size", "4294967312", INT_CTX),
	BAD("limits", "max_context_size", "99999999999999999999999", INT_CTX),
	OK4("limits", "max_registrations_per_client", "1024",
	    max_registrations_per_client, 1024),
	BAD("limits", "max_registrations_per_client", "1025", INT_REG),
	OK4("limits", "max_registrations", "1", max_registrations, 1),
	BAD("limits", "max_registrations", "0",
	    "must be an integer from 1 to 100000000"),
	OK4("limits", "max_registrations", "100000000", max_registrations,
	    100000000),
	BAD("limits", "max_registrations", "100000001",
	    "must be an integer from 1 to 100000000"),
	OK4("limits", "max_registrations_per_address", "0",
	    max_registrations_per_address, 0),
	OK4("limits", "max_mailboxes", "16", max_mailboxes, 16),
	BAD("limits", "max_mailboxes", "0", "must be an integer from 1 to 16"),
	BAD("limits", "max_mailboxes", "17", "must be an integer from 1 to 16"),
	OK4("limits", "push_retries", "20", push_retries, 20),
	BAD("limits", "push_retries", "21", "must be an integer from 0 to 20"),
};

#define DUR(lo, hi) "must be a duration from " lo " to " hi \
	" (a number with ms, s, m, h or d)"

static const struct vcase durations[] = {
	OK8("hook", "timeout", "250ms", hook_timeout, 250),
	OK8("hook", "timeout", "1ms", hook_timeout, 1),
	OK8("hook", "timeout", "10s", hook_timeout, 10000),
	OK8("hook", "timeout", "2", hook_timeout, 2000),
	BAD("hook", "timeout", "0", DUR("1ms", "10s")),
	BAD("hook", "timeout", "0ms", DUR("1ms", "10s")),
	BAD("hook", "timeout", "10001ms", DUR("1ms", "10s")),
	OK8("mailpushd", "timestamp_window", "30s", timestamp_window, 30000),
	OK8("mailpushd", "timestamp_window", "5m", timestamp_window, 300000),
	OK8("mailpushd", "timestamp_window", "45", timestamp_window, 45000),
	OK8("mailpushd", "timestamp_window", "1h", timestamp_window, 3600000),
	BAD("mailpushd", "timestamp_window", "2h", DUR("1s", "1h")),
	BAD("mailpushd", "timestamp_window", "999ms", DUR("1s", "1h")),
	OK8("limits", "registration_lifetime", "2h", registration_lifetime,
	    7200000),
	OK8("limits", "registration_lifetime", "1d", registration_lifetime,
	    86400000),
	OK8("limits", "registration_lifetime", "7d", registration_lifetime,
	    604800000),
	BAD("limits", "registration_lifetime", "8d", DUR("1s", "7d")),
	OK8("limits", "min_push_interval", "0", min_push_interval, 0),
	BAD("limits", "min_push_interval", "61m", DUR("0ms", "1h")),
	OK8("limits", "push_retry_interval", "10ms", push_retry_interval, 10),
	BAD("limits", "push_retry_interval", "9ms", DUR("10ms", "1h")),
	/* bad units and forms */
	BAD("limits", "registration_lifetime", "5x", DUR("1s", "7d")),
	BAD("limits", "registration_lifetime", "5 s", DUR("1s", "7d")),
	BAD("limits", "registration_lifetime", "5S", DUR("1s", "7d")),
	BAD("limits", "registration_lifetime", "5M", DUR("1s", "7d")),
	BAD("limits", "registration_lifetime", "5sec", DUR("1s", "7d")),
	BAD("limits", "registration_lifetime", "1.5h", DUR("1s", "7d")),
	BAD("limits", "registration_lifetime", "5m30s", DUR("1s", "7d")),
	BAD("limits", "registration_lifetime", "s", DUR("1s", "7d")),
	BAD("limits", "registration_lifetime", "-5s", DUR("1s", "7d")),
	BAD("limits", "registration_lifetime", "", DUR("1s", "7d")),
	BAD("limits", "registration_lifetime", "18446744073709551615d",
	    DUR("1s", "7d")),
	BAD("limits", "registration_lifetime", "99999999999999999999999",
	    DUR("1s", "7d")),
};

#define SIZE64 "must be a size from 64k to 256M (a number of bytes, with k, " \
	"M or G)"

static const struct vcase sizes[] = {
	OK8("mailpushd", "udp_buffer_size", "64k", udp_buffer_size, 65536),
	OK8("mailpushd", "udp_buffer_size", "64K", udp_buffer_size, 65536),
	OK8("mailpushd", "udp_buffer_size", "65536", udp_buffer_size, 65536),
	OK8("mailpushd", "udp_buffer_size", "3M", udp_buffer_size, 3 << 20),
	OK8("mailpushd", "udp_buffer_size", "256M", udp_buffer_size,
	    256 << 20),
	BAD("mailpushd", "udp_buffer_size", "65535", SIZE64),
	BAD("mailpushd", "udp_buffer_size", "1G", SIZE64),
	BAD("mailpushd", "udp_buffer_size", "257M", SIZE64),
	BAD("mailpushd", "udp_buffer_size", "1m", SIZE64),
	BAD("mailpushd", "udp_buffer_size", "1MB", SIZE64),
	BAD("mailpushd", "udp_buffer_size", "M", SIZE64),
	BAD("mailpushd", "udp_buffer_size", "1.5M", SIZE64),
	BAD("mailpushd", "udp_buffer_size", "-1M", SIZE64),
	BAD("mailpushd", "udp_buffer_size", "", SIZE64),
	BAD("mailpushd", "udp_buffer_size", "99999999999999999999G", SIZE64),
	BAD("mailpushd", "udp_buffer_size", "17179869184G", SIZE64),
	OK8("events", "buffer_size", "512k", event_buffer_size, 524288),
	BAD("events", "buffer_size", "63k", SIZE64),
};

static const struct vcase booleans[] = {
	OK4("names", "fold_case", "yes", names.fold_case, 1),
	OK4("names", "fold_case", "no", names.fold_case, 0),
	OK4("names", "fold_case", "true", names.fold_case, 1),
	OK4("names", "fold_case", "false", names.fold_case, 0),
	OK4("names", "fold_case", "on", names.fold_case, 1),
	OK4("names", "fold_case", "off", names.fold_case, 0),
	OK4("names", "fold_case", "1", names.fold_case, 1),
	OK4("names", "fold_case", "0", names.fold_case, 0),
	OK4("names", "fold_case", "YES", names.fold_case, 1),
	OK4("names", "fold_case", "Off", names.fold_case, 0),
	BAD("names", "fold_case", "maybe", "must be yes or no"),
	BAD("names", "fold_case", "2", "must be yes or no"),
	BAD("names", "fold_case", "y", "must be yes or no"),
	BAD("names", "fold_case", "", "must be yes or no"),
};

#define MODE "must be an octal file mode from 0000 to 0777"

static const struct vcase modes[] = {
	OK4("mailpushd", "control_socket_mode", "0600", control_socket_mode,
	    0600),
	OK4("mailpushd", "control_socket_mode", "600", control_socket_mode,
	    0600),
	OK4("mailpushd", "control_socket_mode", "0777", control_socket_mode,
	    0777),
	OK4("mailpushd", "control_socket_mode", "0", control_socket_mode, 0),
	OK4("events", "socket_mode", "0620", event_socket_mode, 0620),
	BAD("mailpushd", "control_socket_mode", "0778", MODE),
	BAD("mailpushd", "control_socket_mode", "0800", MODE),
	BAD("mailpushd", "control_socket_mode", "1777", MODE),
	BAD("mailpushd", "control_socket_mode", "-600", MODE),
	BAD("mailpushd", "control_socket_mode", "rw-rw----", MODE),
	BAD("mailpushd", "control_socket_mode", "0x1ff", MODE),
	BAD("mailpushd", "control_socket_mode", "", MODE),
	BAD("events", "socket_mode", "4777", MODE),
};

#define ENUM_AUTH "must be one of: token|none"
#define ENUM_LIMIT "must be one of: refuse|evict-oldest"

static const struct vcase enums[] = {
	OK4("mailpushd", "auth", "token", auth, AUTH_TOKEN),
	BAD("mailpushd", "auth", "Token", ENUM_AUTH),
	BAD("mailpushd", "auth", "tok", ENUM_AUTH),
	BAD("mailpushd", "auth", "tokens", ENUM_AUTH),
	BAD("mailpushd", "auth", "", ENUM_AUTH),
	BAD("mailpushd", "auth", "token|none", ENUM_AUTH),
	OK4("limits", "on_limit", "refuse", on_limit, ON_LIMIT_REFUSE),
	OK4("limits", "on_limit", "evict-oldest", on_limit,
	    ON_LIMIT_EVICT_OLDEST),
	BAD("limits", "on_limit", "evict", ENUM_LIMIT),
	OK4("limits", "on_limit", "refuse ", on_limit, ON_LIMIT_REFUSE),
};

#define NT(a)	(sizeof(a) / sizeof((a)[0]))

START_TEST(test_integers)
{
	run_vcase(&integers[_i]);
}
END_TEST

START_TEST(test_durations)
{
	run_vcase(&durations[_i]);
}
END_TEST

START_TEST(test_sizes)
{
	run_vcase(&sizes[_i]);
}
END_TEST

START_TEST(test_booleans)
{
	run_vcase(&booleans[_i]);
}
END_TEST

START_TEST(test_modes)
{
	run_vcase(&modes[_i]);
}
END_TEST

START_TEST(test_enums)
{
	run_vcase(&enums[_i]);
}
END_TEST

START_TEST(test_parse_duration_api)
{
	uint64_t ms;

	ck_assert_int_eq(config_parse_duration("250ms", &ms), 0);
	ck_assert_uint_eq(ms, 250);
	ck_assert_int_eq(config_parse_duration("30s", &ms), 0);
	ck_assert_uint_eq(ms, 30000);
	ck_assert_int_eq(config_parse_duration("5m", &ms), 0);
	ck_assert_uint_eq(ms, 300000);
	ck_assert_int_eq(config_parse_duration("2h", &ms), 0);
	ck_assert_uint_eq(ms, 7200000);
	ck_assert_int_eq(config_parse_duration("1d", &ms), 0);
	ck_assert_uint_eq(ms, 86400000);
	ck_assert_int_eq(config_parse_duration("7", &ms), 0);
	ck_assert_uint_eq(ms, 7000);
	ck_assert_int_eq(config_parse_duration("0", &ms), 0);
	ck_assert_uint_eq(ms, 0);
	ms = 42;
	ck_assert_int_eq(config_parse_duration("5y", &ms), -1);
	ck_assert_int_eq(config_parse_duration("", &ms), -1);
	ck_assert_int_eq(config_parse_duration(" 5s", &ms), -1);
	ck_assert_int_eq(config_parse_duration("213503982334601d", &ms), -1);
	ck_assert_uint_eq(ms, 42);	/* untouched on error */

	ck_assert_int_eq(config_parse_size("2K", &ms), 0);
	ck_assert_uint_eq(ms, 2048);
	ck_assert_int_eq(config_parse_size("1G", &ms), 0);
	ck_assert_uint_eq(ms, 1ULL << 30);
	ck_assert_int_eq(config_parse_size("100", &ms), 0);
	ck_assert_uint_eq(ms, 100);
	ck_assert_int_eq(config_parse_size("1T", &ms), -1);
	ck_assert_int_eq(config_parse_size("1kk", &ms), -1);
}
END_TEST

START_TEST(test_users_groups)
{
	struct mp_config cfg;

	load_ok("[mailpushd]\nuser = root\ngroup = root\n"
	    "control_socket_group = root\n", &cfg);
	ck_assert_str_eq(cfg.user, "root");
	ck_assert_str_eq(cfg.group, "root");
	ck_assert_str_eq(cfg.control_socket_group, "root");
	config_free(&cfg);

	/* empty: do not change user, primary group, daemon's group */
	load_ok("[mailpushd]\nuser =\ngroup =\ncontrol_socket_group =\n",
	    &cfg);
	ck_assert_str_eq(cfg.user, "");
	ck_assert_str_eq(cfg.group, "");
	ck_assert_str_eq(cfg.control_socket_group, "");
	config_free(&cfg);

	/* the default user need not exist until it is written in the file */
	load_ok("", &cfg);
	ck_assert_str_eq(cfg.user, MP_USER);
	config_free(&cfg);

	load_fails("[mailpushd]\nuser = nosuchuser-mp\n",
	    "t.conf:2: [mailpushd] user: no such user \"nosuchuser-mp\"\n");
	load_fails("[mailpushd]\ngroup = nosuchgroup-mp\n",
	    "t.conf:2: [mailpushd] group: no such group \"nosuchgroup-mp\"\n");
	load_fails("[mailpushd]\ncontrol_socket_group = nosuchgroup-mp\n",
	    "t.conf:2: [mailpushd] control_socket_group: no such group "
	    "\"nosuchgroup-mp\"\n");
	load_fails("[mailpushd]\nuser = mail push\n",
	    "t.conf:2: [mailpushd] user: bad user name \"mail push\": "
	    "letters, digits, '.', '_', '$' and '-' (not first), at most 63 "
	    "characters\n");
	load_fails("[mailpushd]\nuser = -root\n",
	    "t.conf:2: [mailpushd] user: bad user name \"-root\": "
	    "letters, digits, '.', '_', '$' and '-' (not first), at most 63 "
	    "characters\n");
	load_fails("[mailpushd]\ngroup = wh/eel\n",
	    "t.conf:2: [mailpushd] group: bad group name \"wh/eel\": "
	    "letters, digits, '.', '_', '$' and '-' (not first), at most 63 "
	    "characters\n");
	load_fails("[mailpushd]\nuser = "
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	    "t.conf:2: [mailpushd] user: bad user name \""
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "\": letters, digits, '.', '_', '$' and '-' (not first), at most "
	    "63 characters\n");
}
END_TEST

START_TEST(test_paths)
{
	struct mp_config cfg;
	char text[512], want[512], path[160];

	load_ok("[mailpushd]\nkey_file = /etc/mp.key\nstate_file =\n"
	    "control_socket = /tmp/c.sock\n[events]\nsocket = /tmp/e.sock\n"
	    "[hook]\nsocket =\n", &cfg);
	ck_assert_str_eq(cfg.key_file, "/etc/mp.key");
	ck_assert_str_eq(cfg.state_file, "");
	ck_assert_str_eq(cfg.control_socket, "/tmp/c.sock");
	ck_assert_str_eq(cfg.event_socket, "/tmp/e.sock");
	/* an empty [hook] socket means the [events] socket */
	ck_assert_str_eq(config_hook_socket(&cfg), "/tmp/e.sock");
	config_free(&cfg);

	load_ok("[hook]\nsocket = /tmp/h.sock\n", &cfg);
	ck_assert_str_eq(config_hook_socket(&cfg), "/tmp/h.sock");
	ck_assert_str_eq(cfg.event_socket, MP_EVENT_SOCKET);
	config_free(&cfg);

	load_fails("[mailpushd]\nkey_file = etc/mp.key\n",
	    "t.conf:2: [mailpushd] key_file: must be an absolute path shorter "
	    "than 4096 bytes\n");
	/* key_file is required; state_file may be empty */
	load_fails("[mailpushd]\nkey_file =\n",
	    "t.conf:2: [mailpushd] key_file: must be an absolute path shorter "
	    "than 4096 bytes\n");
	load_fails("[mailpushd]\nstate_file = ./registrations\n",
	    "t.conf:2: [mailpushd] state_file: must be an absolute path "
	    "shorter than 4096 bytes\n");
	load_fails("[mailpushd]\ncontrol_socket = control.sock\n",
	    "t.conf:2: [mailpushd] control_socket: must be an absolute path "
	    "shorter than 108 bytes\n");
	load_fails("[mailpushd]\ncontrol_socket =\n",
	    "t.conf:2: [mailpushd] control_socket: must be an absolute path "
	    "shorter than 108 bytes\n");
	load_fails("[events]\nsocket =\n",
	    "t.conf:2: [events] socket: must be an absolute path shorter than "
	    "108 bytes\n");
	load_fails("[hook]\nsocket = ~/hook.sock\n",
	    "t.conf:2: [hook] socket: must be an absolute path shorter than "
	    "108 bytes\n");

	/* sun_path holds 107 bytes and the NUL */
	memset(path, 'x', sizeof(path));
	path[0] = '/';
	path[107] = '\0';
	snprintf(text, sizeof(text), "[events]\nsocket = %s\n", path);
	load_ok(text, &cfg);
	ck_assert_str_eq(cfg.event_socket, path);
	config_free(&cfg);
	path[107] = 'x';
	path[108] = '\0';
	snprintf(text, sizeof(text), "[events]\nsocket = %s\n", path);
	snprintf(want, sizeof(want), "t.conf:2: [events] socket: must be an "
	    "absolute path shorter than 108 bytes\n");
	load_fails(text, want);
	snprintf(text, sizeof(text), "[mailpushd]\ncontrol_socket = %s\n",
	    path);
	snprintf(want, sizeof(want), "t.conf:2: [mailpushd] control_socket: "
	    "must be an absolute path shorter than 108 bytes\n");
	load_fails(text, want);
	/* an ordinary path may be longer */
	snprintf(text, sizeof(text), "[mailpushd]\nstate_file = %s\n", path);
	load_ok(text, &cfg);
	ck_assert_str_eq(cfg.state_file, path);
	config_free(&cfg);
}
END_TEST

Suite *
make_config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("types");
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_integers, 0, NT(integers));
	tcase_add_loop_test(tc, test_durations, 0, NT(durations));
	tcase_add_loop_test(tc, test_sizes, 0, NT(sizes));
	tcase_add_loop_test(tc, test_booleans, 0, NT(booleans));
	tcase_add_loop_test(tc, test_modes, 0, NT(modes));
	tcase_add_loop_test(tc, test_enums, 0, NT(enums));
	tcase_add_test(tc, test_parse_duration_api);
	tcase_add_test(tc, test_users_groups);
	tcase_add_test(tc, test_paths);
	suite_add_tcase(s, tc);
	return s;
}
