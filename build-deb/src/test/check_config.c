/*
 * check_config.c: the configuration loader (shared/config.c).  Every type,
 * every error path with its exact message and line, the syntax inih and
 * the loader's reader accept and refuse, [user NAME] sections, the
 * 0-means-default rule, config_print round trips, the address allow list,
 * and the shipped example conf/mailpushd.conf (with the man page listing
 * every key).
 *
 * config_load logs each error through log_error; in the foreground that is
 * stderr, which these tests capture (fd 2 redirected to a file around the
 * call) to compare with the expected text, the temporary file's path
 * replaced by "t.conf" and the "t: " program and "error: " level prefixes
 * removed.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "config.h"
#include "log.h"

Suite	*make_config_suite(void);

#define EXAMPLE		"conf/mailpushd.conf"
#define MANPAGE		"man/mailpushd.conf.5"

static char tmpdir[64];
static char tmpconf[128];	/* tmpdir/t.conf, written by write_conf */
static char caplog[65536];	/* what the last load logged */

/*
 * One directory per TCase, made and removed in the runner's process
 * (unchecked fixture), so it goes even when a test fails.
 */
static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_config.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(tmpconf, sizeof(tmpconf), "%s/t.conf", tmpdir);
	log_init("t", 1, 0);
}

static void
teardown(void)
{
	char p[192];

	unlink(tmpconf);
	snprintf(p, sizeof(p), "%s/print.conf", tmpdir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/stderr", tmpdir);
	unlink(p);
	rmdir(tmpdir);
}

static void
write_file(const char *path, const char *text, size_t len)
{
	FILE *fp = fopen(path, "w");

	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(text, 1, len, fp), len);
	ck_assert_int_eq(fclose(fp), 0);
}

/* Replace every `from' in caplog by `to' (not longer than `from'). */
static void
replace_all(const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to);
	char *s = caplog;

	ck_assert(tl <= fl);
	while ((s = strstr(s, from)) != NULL) {
		memcpy(s, to, tl);
		memmove(s + tl, s + fl, strlen(s + fl) + 1);
		s += tl;
	}
}

/* Remove `prefix' where it starts a line of caplog. */
static void
strip_prefix(const char *prefix)
{
	size_t pl = strlen(prefix);
	char *s = caplog;

	while (*s != '\0') {
		if (strncmp(s, prefix, pl) == 0)
			memmove(s, s + pl, strlen(s + pl) + 1);
		if ((s = strchr(s, '\n')) == NULL)
			break;
		s++;
	}
}

/* config_load with stderr captured into caplog; returns the error count. */
static int
load_path(const char *path, struct mp_config *cfg)
{
	char cap[192];
	ssize_t n;
	int fd, saved, errors;

	snprintf(cap, sizeof(cap), "%s/stderr", tmpdir);
	fflush(stderr);
	fd = open(cap, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	saved = dup(2);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_eq(dup2(fd, 2), 2);
	log_init("t", 1, 0);
	errors = config_load(path, cfg);
	fflush(stderr);
	ck_assert_int_eq(dup2(saved, 2), 2);
	close(saved);
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	n = read(fd, caplog, sizeof(caplog) - 1);
	ck_assert_int_ge(n, 0);
	caplog[n] = '\0';
	close(fd);
	unlink(cap);
	replace_all(tmpconf, "t.conf");
	strip_prefix("t: ");
	/* log.c may mark the level, as Postfix does: errors only */
	strip_prefix("error: ");
	return errors;
}

static int
load_text(const char *text, struct mp_config *cfg)
{
	write_file(tmpconf, text, strlen(text));
	return load_path(tmpconf, cfg);
}

/* The text must load without a word logged. */
static void
load_ok(const char *text, struct mp_config *cfg)
{
	int errors = load_text(text, cfg);

	ck_assert_msg(errors == 0, "%d errors loading:\n%s\nlogged:\n%s",
	    errors, text, caplog);
	ck_assert_str_eq(caplog, "");
}

static int
count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		if (*s == '\n')
			n++;
	return n;
}

/* The text must fail with exactly `want' logged, one error per line. */
static void
load_fails(const char *text, const char *want)
{
	struct mp_config cfg;
	int errors = load_text(text, &cfg);

	ck_assert_str_eq(caplog, want);
	ck_assert_int_eq(errors, count_lines(want));
	config_free(&cfg);
}

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

static void
assert_listen(const struct config_listen *l, int family, const char *addr,
    unsigned port)
{
	char buf[INET6_ADDRSTRLEN];

	ck_assert_int_eq(l->ss.ss_family, family);
	if (family == AF_INET) {
		const struct sockaddr_in *sin =
		    (const struct sockaddr_in *)&l->ss;

		ck_assert_uint_eq(l->len, sizeof(*sin));
		ck_assert_uint_eq(ntohs(sin->sin_port), port);
		inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
	} else {
		const struct sockaddr_in6 *sin6 =
		    (const struct sockaddr_in6 *)&l->ss;

		ck_assert_uint_eq(l->len, sizeof(*sin6));
		ck_assert_uint_eq(ntohs(sin6->sin6_port), port);
		inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
	}
	ck_assert_str_eq(buf, addr);
}

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

START_TEST(test_auth_none)
{
	struct mp_config cfg;

	load_fails("[mailpushd]\n\nauth = none\n",
	    "t.conf:3: [mailpushd] auth: none requires an allow list of "
	    "trusted networks\n");
	/* the allow list may come after auth */
	load_ok("[mailpushd]\nauth = none\nallow = 192.168.0.0/16\n", &cfg);
	ck_assert_int_eq(cfg.auth, AUTH_NONE);
	ck_assert_uint_eq(cfg.n_allow, 1);
	config_free(&cfg);
	/* an empty allow list is no list */
	load_fails("[mailpushd]\nallow =\nauth = none\n",
	    "t.conf:3: [mailpushd] auth: none requires an allow list of "
	    "trusted networks\n");
}
END_TEST

START_TEST(test_sections_keys)
{
	struct mp_config cfg;

	load_fails("[limit]\nmax_context_size = 2\nalso = x\n",
	    "t.conf:1: [limit]: unknown section (known: mailpushd, events, "
	    "provision, hook, names, limits, cluster, user NAME)\n");
	/* an empty unknown section is still an error */
	load_fails("[mailpushd]\n[bogus]\n",
	    "t.conf:2: [bogus]: unknown section (known: mailpushd, events, "
	    "provision, hook, names, limits, cluster, user NAME)\n");
	load_fails("[Limits]\n",
	    "t.conf:1: [Limits]: unknown section (known: mailpushd, events, "
	    "provision, hook, names, limits, cluster, user NAME)\n");
	load_fails("[limits]\nmax_context = 2\n",
	    "t.conf:2: [limits] max_context: unknown key\n");
	/* a key in the wrong section */
	load_fails("[mailpushd]\nmax_context_size = 2\n",
	    "t.conf:2: [mailpushd] max_context_size: unknown key\n");
	load_fails("[limits]\nMax_Context_Size = 2\n",
	    "t.conf:2: [limits] Max_Context_Size: unknown key\n");
	load_fails("push_retries = 3\n[limits]\n",
	    "t.conf:1: push_retries: key outside any section\n");
	load_fails("[limits]\n= 3\n",
	    "t.conf:2: [limits]: missing key name before '='\n");
	/* duplicates: the message names the first line */
	load_fails("[limits]\npush_retries = 3\n; again\npush_retries = 4\n",
	    "t.conf:4: [limits] push_retries: duplicate key (first at line "
	    "2)\n");
	load_fails("[limits]\npush_retries = 3\n[mailpushd]\n[limits]\n"
	    "push_retries = 3\n",
	    "t.conf:5: [limits] push_retries: duplicate key (first at line "
	    "2)\n");
	/* the first value stays */
	ck_assert_int_ne(load_text("[limits]\npush_retries = 3\n"
	    "push_retries = 4\n", &cfg), 0);
	ck_assert_uint_eq(cfg.push_retries, 3);
	config_free(&cfg);
	/* a section may appear twice with different keys */
	load_ok("[limits]\npush_retries = 5\n[hook]\n[limits]\n"
	    "max_mailboxes = 2\n", &cfg);
	ck_assert_uint_eq(cfg.push_retries, 5);
	ck_assert_uint_eq(cfg.max_mailboxes, 2);
	config_free(&cfg);
	/* the same key name in two sections is two keys */
	load_ok("[events]\nsocket = /tmp/e\n[hook]\nsocket = /tmp/h\n", &cfg);
	ck_assert_str_eq(cfg.event_socket, "/tmp/e");
	ck_assert_str_eq(cfg.hook_socket, "/tmp/h");
	config_free(&cfg);
}
END_TEST

START_TEST(test_defaults_zero)
{
	struct mp_config cfg;

	/* nothing set: Exchange's 8 and 16 */
	load_ok("", &cfg);
	ck_assert_uint_eq(cfg.max_registrations_per_client, 0);
	ck_assert_uint_eq(cfg.max_context_size, 0);
	ck_assert_uint_eq(config_max_regs(&cfg, "alice"), 8);
	ck_assert_uint_eq(config_max_context(&cfg, "alice"), 16);
	config_free(&cfg);
	/* 0 written: the same */
	load_ok("[limits]\nmax_registrations_per_client = 0\n"
	    "max_context_size = 0\n", &cfg);
	ck_assert_uint_eq(config_max_regs(&cfg, "alice"), 8);
	ck_assert_uint_eq(config_max_context(&cfg, "alice"), 16);
	config_free(&cfg);
	/* any other value is itself */
	load_ok("[limits]\nmax_registrations_per_client = 1\n"
	    "max_context_size = 1024\n", &cfg);
	ck_assert_uint_eq(config_max_regs(&cfg, "alice"), 1);
	ck_assert_uint_eq(config_max_context(&cfg, "alice"), 1024);
	config_free(&cfg);
}
END_TEST

START_TEST(test_user_sections)
{
	struct mp_config cfg;

	load_ok("[limits]\nmax_registrations_per_client = 4\n"
	    "[user alice]\nmax_registrations_per_client = 32\n"
	    "max_context_size = 64\n"
	    "[user bob]\nmax_context_size = 100\n"
	    "[user carol]\nmax_registrations_per_client = 0\n"
	    "[user dave]\n", &cfg);
	ck_assert_uint_eq(cfg.n_overrides, 4);
	/* overrides win */
	ck_assert_uint_eq(config_max_regs(&cfg, "alice"), 32);
	ck_assert_uint_eq(config_max_context(&cfg, "alice"), 64);
	/* an override of 0, or none, falls back to [limits], then 8/16 */
	ck_assert_uint_eq(config_max_regs(&cfg, "bob"), 4);
	ck_assert_uint_eq(config_max_context(&cfg, "bob"), 100);
	ck_assert_uint_eq(config_max_regs(&cfg, "carol"), 4);
	ck_assert_uint_eq(config_max_context(&cfg, "carol"), 16);
	ck_assert_uint_eq(config_max_regs(&cfg, "dave"), 4);
	ck_assert_uint_eq(config_max_regs(&cfg, "eve"), 4);
	ck_assert_uint_eq(config_max_context(&cfg, "eve"), 16);
	config_free(&cfg);

	/* override with [limits] at its default 0 */
	load_ok("[user alice]\nmax_context_size = 1\n", &cfg);
	ck_assert_uint_eq(config_max_context(&cfg, "alice"), 1);
	ck_assert_uint_eq(config_max_regs(&cfg, "alice"), 8);
	config_free(&cfg);

	load_fails("[user alice]\npush_retries = 2\n",
	    "t.conf:2: [user alice] push_retries: unknown key (a [user NAME] "
	    "section allows max_registrations_per_client and "
	    "max_context_size)\n");
	load_fails("[user alice]\nmax_context_size = 1025\n",
	    "t.conf:2: [user alice] max_context_size: must be an integer from "
	    "0 to 1024\n");
	load_fails("[user alice]\nmax_registrations_per_client = many\n",
	    "t.conf:2: [user alice] max_registrations_per_client: must be an "
	    "integer from 0 to 1024\n");
	load_fails("[user alice]\nmax_context_size = 1\nmax_context_size = 2\n",
	    "t.conf:3: [user alice] max_context_size: duplicate key (first at "
	    "line 2)\n");
	/* the same section twice, even back to back */
	load_fails("[user alice]\nmax_context_size = 1\n"
	    "[user alice]\nmax_context_size = 2\n",
	    "t.conf:3: [user alice]: duplicate section (first at line 1)\n");
	load_fails("[user alice]\n[limits]\n[user alice]\n",
	    "t.conf:3: [user alice]: duplicate section (first at line 1)\n");
	load_fails("[user]\nmax_context_size = 1\n",
	    "t.conf:1: [user]: a user section must be [user NAME] with a name "
	    "of 1 to 255 bytes\n");
	load_fails("[user   ]\n",
	    "t.conf:1: [user   ]: a user section must be [user NAME] with a "
	    "name of 1 to 255 bytes\n");
	load_fails("[username]\n",
	    "t.conf:1: [username]: unknown section (known: mailpushd, events, "
	    "provision, hook, names, limits, cluster, user NAME)\n");
	load_fails("[user a b]\n",
	    "t.conf:1: [user a b]: user name contains a space or control "
	    "character\n");
	load_fails("[user @example.com]\n",
	    "t.conf:1: [user @example.com]: user name has an empty local "
	    "part\n");
	load_fails("[user a@b@c]\n",
	    "t.conf:1: [user a@b@c]: user name contains more than one '@'\n");
}
END_TEST

START_TEST(test_user_normalised)
{
	struct mp_config cfg;
	char text[512], name[128];

	/* [user Alice+x] is alice */
	load_ok("[user Alice+x]\nmax_context_size = 40\n", &cfg);
	ck_assert_uint_eq(cfg.n_overrides, 1);
	ck_assert_str_eq(cfg.overrides[0].user, "alice");
	ck_assert_uint_eq(config_max_context(&cfg, "alice"), 40);
	config_free(&cfg);
	/* spaces around the name do not count */
	load_ok("[user \t Bob@Example.COM  ]\nmax_context_size = 40\n", &cfg);
	ck_assert_str_eq(cfg.overrides[0].user, "bob@example.com");
	config_free(&cfg);
	/* [names] applies wherever in the file it stands */
	load_ok("[user Bob-list+x]\nmax_context_size = 40\n"
	    "[names]\nfold_case = no\nrecipient_delimiter = -\n", &cfg);
	ck_assert_str_eq(cfg.overrides[0].user, "Bob");
	ck_assert_uint_eq(config_max_context(&cfg, "Bob"), 40);
	ck_assert_uint_eq(config_max_context(&cfg, "bob"), 16);
	config_free(&cfg);
	/* two spellings of one user */
	load_fails("[user Alice]\nmax_context_size = 1\n\n"
	    "[user alice+phone]\nmax_context_size = 2\n",
	    "t.conf:4: [user alice+phone]: the same user (alice) as the "
	    "section at line 1\n");

	/* a name longer than inih's 49-byte section buffer is kept whole */
	memset(name, 'n', 120);
	name[120] = '\0';
	snprintf(text, sizeof(text), "[user %s]\nmax_context_size = 9\n"
	    "[user %.60s]\nmax_context_size = 10\n", name, name);
	load_ok(text, &cfg);
	ck_assert_uint_eq(cfg.n_overrides, 2);
	ck_assert_str_eq(cfg.overrides[0].user, name);
	ck_assert_uint_eq(config_max_context(&cfg, name), 9);
	name[60] = '\0';
	ck_assert_uint_eq(config_max_context(&cfg, name), 10);
	name[49] = '\0';
	ck_assert_uint_eq(config_max_context(&cfg, name), 16);
	config_free(&cfg);
}
END_TEST

START_TEST(test_continuation)
{
	struct mp_config cfg;

	/* lists: on an empty first line, around comments and blank lines */
	load_ok("[mailpushd]\nlisten =\n  127.0.0.1:1 ; first\n"
	    "  ; a comment\n\n\t[::1]:2\n"
	    "allow = 10.0.0.0/8\n  fd00::/8\n", &cfg);
	ck_assert_uint_eq(cfg.n_listen, 2);
	assert_listen(&cfg.listen[0], AF_INET, "127.0.0.1", 1);
	assert_listen(&cfg.listen[1], AF_INET6, "::1", 2);
	ck_assert_uint_eq(cfg.n_allow, 2);
	config_free(&cfg);

	/* not for other keys */
	load_fails("[limits]\npush_retries = 3\n  4\n",
	    "t.conf:3: [limits] push_retries: continuation lines are only "
	    "allowed for lists\n");
	load_fails("[mailpushd]\nkey_file = /etc/\n  mp.key\n",
	    "t.conf:3: [mailpushd] key_file: continuation lines are only "
	    "allowed for lists\n");
	load_fails("[user alice]\nmax_context_size = 3\n  4\n",
	    "t.conf:3: [user alice] max_context_size: continuation lines are "
	    "only allowed for lists\n");
	/* an indented key after a header is a key, not a continuation */
	load_ok("[limits]\n  push_retries = 5\n", &cfg);
	ck_assert_uint_eq(cfg.push_retries, 5);
	config_free(&cfg);
	/* after a key it continues that key, as in inih and Python */
	load_fails("[limits]\npush_retries = 5\n\tmax_mailboxes = 3\n",
	    "t.conf:3: [limits] push_retries: continuation lines are only "
	    "allowed for lists\n");
	/* the continuation of a refused key is not reported again */
	load_fails("[limits]\nbogus = 1\n  2\n  3\n",
	    "t.conf:2: [limits] bogus: unknown key\n");
	load_fails("[limits]\npush_retries = 1\npush_retries = 2\n  3\n",
	    "t.conf:3: [limits] push_retries: duplicate key (first at line "
	    "2)\n");
	load_fails("[bogus]\na = 1\n  2\n",
	    "t.conf:1: [bogus]: unknown section (known: mailpushd, events, "
	    "provision, hook, names, limits, cluster, user NAME)\n");
	/* nor does it join the first, duplicate-free definition */
	ck_assert_int_eq(load_text("[mailpushd]\nlisten = 127.0.0.1:1\n"
	    "listen = 127.0.0.1:2\n  127.0.0.1:3\n", &cfg), 1);
	ck_assert_uint_eq(cfg.n_listen, 1);
	config_free(&cfg);
}
END_TEST

START_TEST(test_long_lines)
{
	struct mp_config cfg;
	char text[2048], path[256];

	/* 199 characters: "key_file = " (11) and a 188-byte path */
	memset(path, 'p', sizeof(path));
	path[0] = '/';
	path[188] = '\0';
	snprintf(text, sizeof(text), "[mailpushd]\nkey_file = %s\n", path);
	load_ok(text, &cfg);
	ck_assert_str_eq(cfg.key_file, path);
	config_free(&cfg);
	/* the same with CR LF */
	snprintf(text, sizeof(text), "[mailpushd]\r\nkey_file = %s\r\n", path);
	load_ok(text, &cfg);
	ck_assert_str_eq(cfg.key_file, path);
	config_free(&cfg);
	/* 200: refused, not cut, and the next line is read as usual */
	path[188] = 'p';
	path[189] = '\0';
	snprintf(text, sizeof(text), "[mailpushd]\nkey_file = %s\n"
	    "auth = tok\n", path);
	load_fails(text, "t.conf:2: line longer than 199 characters\n"
	    "t.conf:3: [mailpushd] auth: must be one of: token|none\n");
	/* a long continuation line too: 2 + 198 */
	path[188] = '\0';
	snprintf(text, sizeof(text), "[mailpushd]\nallow = 10.0.0.0/8\n"
	    "  %s 10.0.0.0/8\n", path);
	load_fails(text, "t.conf:3: line longer than 199 characters\n");
	/* a long comment is only a comment */
	memset(path, ';', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	snprintf(text, sizeof(text), "%s\n[limits]\n  # %s\n"
	    "push_retries = 7\n", path, path);
	load_ok(text, &cfg);
	ck_assert_uint_eq(cfg.push_retries, 7);
	config_free(&cfg);
}
END_TEST

START_TEST(test_syntax)
{
	struct mp_config cfg;
	static const char nul[] = "[limits]\npush_retries = 2\0x\n";

	load_fails("[limits]\npush_retries 3\n",
	    "t.conf:2: expected [section] or key = value, not "
	    "\"push_retries 3\"\n");
	load_fails("[limits\npush_retries = 3\n",
	    "t.conf:1: section header without ']'\n");
	load_fails("[limits ; comment]\n",
	    "t.conf:1: section header without ']'\n");
	load_fails("[limits] push_retries = 3\n",
	    "t.conf:1: [limits]: text after the section header\n");
	/* a ';' after white space starts a comment, so there is no '=' */
	load_fails("[limits]\npush_retries ; = 3\n",
	    "t.conf:2: expected [section] or key = value, not "
	    "\"push_retries ; = 3\"\n");
	load_fails("[limits]\npush_retries = 5;x\n",
	    "t.conf:2: [limits] push_retries: must be an integer from 0 to "
	    "20\n");
	write_file(tmpconf, nul, sizeof(nul) - 1);
	ck_assert_int_eq(load_path(tmpconf, &cfg), 1);
	ck_assert_str_eq(caplog, "t.conf:2: line contains a NUL byte\n");
	config_free(&cfg);

	/* accepted forms */
	load_ok("\xef\xbb\xbf[limits]\npush_retries = 5\n", &cfg);
	ck_assert_uint_eq(cfg.push_retries, 5);
	config_free(&cfg);
	load_ok("; comment\n# comment\n  ; indented comment\n\n"
	    "[limits] ; comment\npush_retries: 6 ; six\n"
	    "max_mailboxes=2\nmin_push_interval   =   1s   \n", &cfg);
	ck_assert_uint_eq(cfg.push_retries, 6);
	ck_assert_uint_eq(cfg.max_mailboxes, 2);
	ck_assert_uint_eq(cfg.min_push_interval, 1000);
	config_free(&cfg);
	/* no final newline */
	load_ok("[limits]\npush_retries = 4", &cfg);
	ck_assert_uint_eq(cfg.push_retries, 4);
	config_free(&cfg);
	/* an empty file is the defaults */
	load_ok("", &cfg);
	ck_assert_uint_eq(cfg.push_retries, 3);
	config_free(&cfg);
}
END_TEST

START_TEST(test_provision_servers)
{
	struct mp_config cfg;

	load_ok("[provision]\nservers = push.example.org:4650, "
	    "192.0.2.1:1\n  [2001:db8::1]:65535\n", &cfg);
	ck_assert_str_eq(cfg.provision_servers, "push.example.org:4650 "
	    "192.0.2.1:1 [2001:db8::1]:65535");
	ck_assert_uint_eq(cfg.provision_timeout, 2000);
	ck_assert_str_eq(cfg.provision_socket, "");
	config_free(&cfg);
	load_ok("[mailpushd]\nkey_grace = 0\n", &cfg);
	ck_assert_uint_eq(cfg.key_grace, 0);
	config_free(&cfg);
	load_fails("[provision]\nservers = push.example.org\n",
	    "t.conf:2: [provision] servers: bad server \"push.example.org\": "
	    "must be HOST:PORT or [IPv6ADDR]:PORT with a port from 1 to "
	    "65535\n");
	load_fails("[provision]\nservers = 2001:db8::1:4650\n",
	    "t.conf:2: [provision] servers: bad server \"2001:db8::1:4650\": "
	    "must be HOST:PORT or [IPv6ADDR]:PORT with a port from 1 to "
	    "65535\n");
	load_fails("[provision]\nservers = a:0\n",
	    "t.conf:2: [provision] servers: bad server \"a:0\": must be "
	    "HOST:PORT or [IPv6ADDR]:PORT with a port from 1 to 65535\n");
	load_fails("[provision]\nservers = [nothex]:1\n",
	    "t.conf:2: [provision] servers: bad server \"[nothex]:1\": must "
	    "be HOST:PORT or [IPv6ADDR]:PORT with a port from 1 to 65535\n");
	load_fails("[provision]\nservers = a:1 a:2 a:3 a:4 a:5 a:6 a:7 a:8 "
	    "a:9 a:10 a:11 a:12 a:13 a:14 a:15 a:16 a:17\n",
	    "t.conf:2: [provision] servers: at most 16 servers, 511 bytes in "
	    "all\n");
	load_fails("[mailpushd]\nkey_grace = 400d\n",
	    "t.conf:2: [mailpushd] key_grace: must be a duration from 0ms "
	    "to 365d (a number with ms, s, m, h or d)\n");
}
END_TEST

START_TEST(test_several_errors)
{
	struct mp_config cfg;
	int errors;

	errors = load_path("test/data/bad.conf", &cfg);
	ck_assert_str_eq(caplog,
	    "test/data/bad.conf:3: [mailpushd] listen: bad address "
	    "\"127.0.0.1:0\": must be IPv4ADDR[:PORT] or [IPv6ADDR][:PORT] "
	    "with a port from 1 to 65535\n"
	    "test/data/bad.conf:4: [mailpushd] timestamp_window: must be a "
	    "duration from 1s to 1h (a number with ms, s, m, h or d)\n"
	    "test/data/bad.conf:5: [mailpushd] udp_buffer_size: must be a size "
	    "from 64k to 256M (a number of bytes, with k, M or G)\n"
	    "test/data/bad.conf:6: [mailpushd] user: bad user name \"no such "
	    "user\": letters, digits, '.', '_', '$' and '-' (not first), at "
	    "most 63 characters\n"
	    "test/data/bad.conf:7: [mailpushd] auth: must be one of: "
	    "token|none\n"
	    "test/data/bad.conf:10: [limits] max_registrations_per_client: "
	    "must be an integer from 0 to 1024\n"
	    "test/data/bad.conf:11: [limits] max_context_size: must be an "
	    "integer from 0 to 1024\n"
	    "test/data/bad.conf:12: [limits] max_context_size: duplicate key "
	    "(first at line 11)\n"
	    "test/data/bad.conf:13: expected [section] or key = value, not "
	    "\"max_mailboxes 4\"\n"
	    "test/data/bad.conf:15: [limits] push_retries: continuation lines "
	    "are only allowed for lists\n"
	    "test/data/bad.conf:16: [nonsense]: unknown section (known: "
	    "mailpushd, events, provision, hook, names, limits, cluster, user NAME)\n"
	    "test/data/bad.conf:19: [user Carol] max_context_size: must be an "
	    "integer from 0 to 1024\n"
	    "test/data/bad.conf:20: [user Carol] colour: unknown key (a [user "
	    "NAME] section allows max_registrations_per_client and "
	    "max_context_size)\n"
	    "test/data/bad.conf:21: section header without ']'\n");
	ck_assert_int_eq(errors, 14);
	config_free(&cfg);
}
END_TEST

START_TEST(test_missing_file)
{
	struct mp_config cfg;

	ck_assert_int_eq(load_path("test/data/no-such-file.conf", &cfg), 1);
	ck_assert_str_eq(caplog, "test/data/no-such-file.conf: cannot open "
	    "configuration file: No such file or directory\n");
	/* what is left is the defaults, safe to free */
	ck_assert_uint_eq(cfg.n_listen, 2);
	config_free(&cfg);

	ck_assert_int_eq(load_path("test/data", &cfg), 1);
	ck_assert_str_eq(caplog, "test/data: read error: Is a directory\n");
	config_free(&cfg);
}
END_TEST

START_TEST(test_good_file)
{
	struct mp_config cfg;

	ck_assert_int_eq(load_path("test/data/good.conf", &cfg), 0);
	ck_assert_str_eq(caplog, "");
	ck_assert_str_eq(cfg.path, "test/data/good.conf");
	ck_assert_str_eq(cfg.user, "root");
	ck_assert_uint_eq(cfg.n_listen, 3);
	assert_listen(&cfg.listen[1], AF_INET6, "::1", 4651);
	assert_listen(&cfg.listen[2], AF_INET, "127.0.0.2", 4650);
	ck_assert_int_eq(cfg.auth, AUTH_NONE);
	ck_assert_uint_eq(cfg.n_allow, 3);
	ck_assert_uint_eq(cfg.timestamp_window, 300000);
	ck_assert_str_eq(cfg.state_file, "");
	ck_assert_uint_eq(cfg.state_save_interval, 7200000);
	ck_assert_uint_eq(cfg.control_socket_mode, 0600);
	ck_assert_uint_eq(cfg.udp_buffer_size, 2 << 20);
	ck_assert_uint_eq(cfg.event_socket_mode, 0622);
	ck_assert_uint_eq(cfg.n_allow_users, 3);
	ck_assert_uint_eq(cfg.event_buffer_size, 512 << 10);
	ck_assert_str_eq(config_hook_socket(&cfg),
	    "/tmp/mailpush-test/hook.sock");
	ck_assert_uint_eq(cfg.hook_timeout, 250);
	ck_assert_str_eq(cfg.names.delimiters, "+-");
	ck_assert_uint_eq(cfg.max_registrations, 5000);
	ck_assert_uint_eq(cfg.push_retries, 0);
	ck_assert_uint_eq(cfg.push_retry_interval, 10);
	ck_assert_int_eq(cfg.on_limit, ON_LIMIT_EVICT_OLDEST);
	ck_assert_uint_eq(cfg.refusal_log_interval, 0);
	ck_assert_uint_eq(cfg.n_overrides, 2);
	ck_assert_uint_eq(config_max_regs(&cfg, "alice"), 32);
	ck_assert_uint_eq(config_max_context(&cfg, "alice"), 64);
	ck_assert_uint_eq(config_max_regs(&cfg, "bob"), 4);
	ck_assert_uint_eq(config_max_context(&cfg, "bob"), 1024);
	ck_assert_uint_eq(config_max_context(&cfg, "carol"), 16);
	config_free(&cfg);
}
END_TEST

/* config_print into a string (malloc'd). */
static char *
print_str(const struct mp_config *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(fp);
	config_print(cfg, fp);
	ck_assert_int_eq(fclose(fp), 0);
	return buf;
}

/* Everything after the first line (which names the file). */
static const char *
body(const char *s)
{
	const char *nl = strchr(s, '\n');

	ck_assert_ptr_nonnull(nl);
	return nl + 1;
}

/* Load `path', print, load the printout: the same configuration. */
static void
round_trip(const char *path)
{
	struct mp_config a, b;
	char out[192], *pa, *pb;
	size_t i;

	ck_assert_msg(load_path(path, &a) == 0, "%s", caplog);
	pa = print_str(&a);
	snprintf(out, sizeof(out), "%s/print.conf", tmpdir);
	write_file(out, pa, strlen(pa));
	ck_assert_msg(load_path(out, &b) == 0, "printout refused:\n%.2000s",
	    caplog);
	pb = print_str(&b);
	ck_assert_str_eq(body(pa), body(pb));

	ck_assert_uint_eq(a.n_listen, b.n_listen);
	for (i = 0; i < a.n_listen; i++)
		ck_assert(memcmp(&a.listen[i].ss, &b.listen[i].ss,
		    sizeof(a.listen[i].ss)) == 0);
	ck_assert_uint_eq(a.n_allow, b.n_allow);
	if (a.n_allow > 0)
		ck_assert(memcmp(a.allow, b.allow, a.n_allow *
		    sizeof(*a.allow)) == 0);
	ck_assert_uint_eq(a.n_allow_users, b.n_allow_users);
	for (i = 0; i < a.n_allow_users; i++)
		ck_assert_str_eq(a.allow_users[i], b.allow_users[i]);
	ck_assert_uint_eq(a.n_overrides, b.n_overrides);
	for (i = 0; i < a.n_overrides; i++) {
		ck_assert_str_eq(a.overrides[i].user, b.overrides[i].user);
		ck_assert_uint_eq(a.overrides[i].max_registrations_per_client,
		    b.overrides[i].max_registrations_per_client);
		ck_assert_uint_eq(a.overrides[i].max_context_size,
		    b.overrides[i].max_context_size);
	}
	ck_assert(memcmp(&a.names, &b.names, sizeof(a.names)) == 0);
	ck_assert_str_eq(a.user, b.user);
	ck_assert_str_eq(a.key_file, b.key_file);
	ck_assert_str_eq(a.state_file, b.state_file);
	ck_assert_str_eq(a.control_socket, b.control_socket);
	ck_assert_str_eq(a.event_socket, b.event_socket);
	ck_assert_str_eq(a.hook_socket, b.hook_socket);
	/* every scalar between the string fields */
	ck_assert(a.auth == b.auth && a.timestamp_window == b.timestamp_window
	    && a.state_save_interval == b.state_save_interval &&
	    a.control_socket_mode == b.control_socket_mode &&
	    a.udp_buffer_size == b.udp_buffer_size &&
	    a.event_socket_mode == b.event_socket_mode &&
	    a.event_buffer_size == b.event_buffer_size &&
	    a.hook_timeout == b.hook_timeout &&
	    a.max_registrations_per_client == b.max_registrations_per_client &&
	    a.max_context_size == b.max_context_size &&
	    a.max_registrations == b.max_registrations &&
	    a.max_registrations_per_address ==
	    b.max_registrations_per_address &&
	    a.max_mailboxes == b.max_mailboxes &&
	    a.registration_lifetime == b.registration_lifetime &&
	    a.min_push_interval == b.min_push_interval &&
	    a.push_retries == b.push_retries &&
	    a.push_retry_interval == b.push_retry_interval &&
	    a.on_limit == b.on_limit &&
	    a.refusal_log_interval == b.refusal_log_interval);
	free(pa);
	free(pb);
	config_free(&a);
	config_free(&b);
}

START_TEST(test_print_round_trip)
{
	char *text, *p;
	size_t i, len = 0, cap = 65536;
	struct mp_config cfg;

	round_trip("test/data/good.conf");

	/* lists longer than a line are wrapped onto continuation lines */
	text = malloc(cap);
	ck_assert_ptr_nonnull(text);
	len += (size_t)snprintf(text, cap, "[mailpushd]\nlisten =\n");
	for (i = 0; i < CONFIG_LISTEN_MAX; i++)
		len += (size_t)snprintf(text + len, cap - len,
		    "  [2001:db8:ffff:ffff:ffff:ffff:ffff:%zx]:%zu\n", i,
		    60000 + i);
	len += (size_t)snprintf(text + len, cap - len, "allow =\n");
	for (i = 0; i < 1024; i++)
		len += (size_t)snprintf(text + len, cap - len,
		    "  10.%zu.%zu.0/24, 2001:db8:%zx::/48\n", i / 256, i % 256,
		    i);
	len += (size_t)snprintf(text + len, cap - len, "[events]\n"
	    "allow_users = a b c d e f g h i j k l m n o p q r s t u v w x\n"
	    "  aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
	    "  bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n"
	    "[names]\nrecipient_delimiter =;+\n");
	ck_assert_uint_lt(len, cap - 1);
	write_file(tmpconf, text, len);
	free(text);
	/* 2048 networks: the first 1024 fit, then one error */
	ck_assert_int_eq(load_path(tmpconf, &cfg), 1);
	ck_assert_str_eq(caplog, "t.conf:532: [mailpushd] allow: at most 1024 "
	    "networks\n");
	config_free(&cfg);

	/* now only the first 512 lines of networks (1024 networks) */
	text = malloc(cap);
	ck_assert_ptr_nonnull(text);
	len = (size_t)snprintf(text, cap, "[mailpushd]\nuser = root\n"
	    "listen =\n");
	for (i = 0; i < CONFIG_LISTEN_MAX; i++)
		len += (size_t)snprintf(text + len, cap - len,
		    "  [2001:db8:ffff:ffff:ffff:ffff:ffff:%zx]:%zu\n", i,
		    60000 + i);
	len += (size_t)snprintf(text + len, cap - len, "allow =\n");
	for (i = 0; i < 512; i++)
		len += (size_t)snprintf(text + len, cap - len,
		    "  10.%zu.%zu.0/24, 2001:db8:%zx::/48\n", i / 256, i % 256,
		    i);
	len += (size_t)snprintf(text + len, cap - len, "[events]\n"
	    "allow_users = a b c d e f g h i j k l m n o p q r s t u v w x\n"
	    "  aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
	    "[names]\nrecipient_delimiter =;+\n"
	    "[user Zed]\nmax_registrations_per_client = 3\n");
	write_file(tmpconf, text, len);
	free(text);
	round_trip(tmpconf);

	/* the printout of that: no line near the limit, lists intact */
	ck_assert_int_eq(load_path(tmpconf, &cfg), 0);
	ck_assert_uint_eq(cfg.n_allow, 1024);
	ck_assert_uint_eq(cfg.n_listen, 16);
	ck_assert_uint_eq(cfg.n_allow_users, 25);
	ck_assert_str_eq(cfg.names.delimiters, ";+");
	text = print_str(&cfg);
	for (p = text; *p != '\0'; p = strchr(p, '\n') + 1)
		ck_assert_uint_lt(strcspn(p, "\n"), 100);
	ck_assert_ptr_nonnull(strstr(text, "\nrecipient_delimiter =;+\n"));
	ck_assert_ptr_nonnull(strstr(text, "\n[user zed]\n"
	    "max_registrations_per_client = 3\nmax_context_size = 0\n"));
	free(text);
	config_free(&cfg);

	/* a value on a full line still fits when printed: 9 + 190 */
	text = malloc(512);
	ck_assert_ptr_nonnull(text);
	memset(text, 'k', 512);
	len = strlen("[mailpushd]\nuser =\nkey_file=/");
	memcpy(text, "[mailpushd]\nuser =\nkey_file=/", len);
	memcpy(text + len + 189, "\n", 2);
	write_file(tmpconf, text, strlen(text));
	free(text);
	ck_assert_int_eq(load_path(tmpconf, &cfg), 0);
	ck_assert_uint_eq(strlen(cfg.key_file), 190);
	config_free(&cfg);
	round_trip(tmpconf);

	/* the defaults print and re-read too (with a user that exists) */
	write_file(tmpconf, "[mailpushd]\nuser =\n", 19);
	round_trip(tmpconf);
}
END_TEST

START_TEST(test_print_format)
{
	struct mp_config cfg;
	char *text;

	config_defaults(&cfg);
	text = print_str(&cfg);
	ck_assert_ptr_nonnull(strstr(text, "; effective configuration from "
	    "(built-in defaults)\n[mailpushd]\nuser = " MP_USER "\ngroup =\n"
	    "listen = 127.0.0.1:" MP_PORT " [::1]:" MP_PORT "\n"));
	ck_assert_ptr_nonnull(strstr(text,
	    "\nmax_registrations_per_client = 0\t; means 8\n"
	    "max_context_size = 0\t; means 16\n"));
	ck_assert_ptr_nonnull(strstr(text, "\n\n[limits]\n"));
	free(text);
	config_free(&cfg);
}
END_TEST

/*
 * "section.key" of every key config_print prints, from the defaults: the
 * table in config.c, whatever it holds.
 */
static size_t
table_keys(char keys[][80], size_t max)
{
	struct mp_config cfg;
	char *text, *line, *save = NULL, section[32] = "";
	size_t n = 0;

	config_defaults(&cfg);
	text = print_str(&cfg);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '[')
			snprintf(section, sizeof(section), "%.*s",
			    (int)strcspn(line + 1, "]"), line + 1);
		else if (line[0] != ';' && line[0] != '\t' &&
		    strchr(line, '=') != NULL) {
			ck_assert_uint_lt(n, max);
			snprintf(keys[n++], 80, "%s.%.*s", section,
			    (int)strcspn(line, " ="), line);
		}
	}
	free(text);
	config_free(&cfg);
	return n;
}

static char *
read_all(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf;
	long len;

	ck_assert_msg(fp != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(fp, 0, SEEK_END), 0);
	len = ftell(fp);
	ck_assert_int_gt(len, 0);
	rewind(fp);
	buf = malloc((size_t)len + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)len, fp), (size_t)len);
	buf[len] = '\0';
	fclose(fp);
	return buf;
}

START_TEST(test_example_loads)
{
	struct mp_config ex, def;
	char *pe, *pd, *e, *d;

	/* loads without a word */
	ck_assert_int_eq(load_path(EXAMPLE, &ex), 0);
	ck_assert_str_eq(caplog, "");
	/* and is the built-in defaults, key for key */
	config_defaults(&def);
	pe = print_str(&ex);
	pd = print_str(&def);
	/* key_file's default follows the build's SYSCONFDIR: skip it */
	e = strstr(pe, "\nkey_file = ");
	d = strstr(pd, "\nkey_file = ");
	ck_assert_ptr_nonnull(e);
	ck_assert_ptr_nonnull(d);
	ck_assert_msg(strncmp(body(pe), body(pd), (size_t)(e - body(pe))) == 0,
	    "example differs from the defaults:\n%s\n---\n%s", pe, pd);
	ck_assert_str_eq(strchr(e + 1, '\n'), strchr(d + 1, '\n'));
	ck_assert_str_eq(ex.user, MP_USER);
	ck_assert_uint_eq(ex.n_overrides, 0);
	free(pe);
	free(pd);
	config_free(&ex);
	config_free(&def);
}
END_TEST

START_TEST(test_example_documents_every_key)
{
	char keys[128][80], section[32] = "", want[96], *text, *line;
	char *save = NULL;
	size_t n = table_keys(keys, 128), i, j, found[128];
	int commented = 0;

	ck_assert_uint_gt(n, 25);
	memset(found, 0, sizeof(found));
	text = read_all(EXAMPLE);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '[') {
			snprintf(section, sizeof(section), "%.*s",
			    (int)strcspn(line + 1, "]"), line + 1);
			continue;
		}
		/* `; user = mailpush' is the one key given as a comment */
		if (strcmp(line, "; user = " MP_USER) == 0 &&
		    strcmp(section, "mailpushd") == 0) {
			commented = 1;
			snprintf(want, sizeof(want), "mailpushd.user");
		} else if (line[0] != ';' && strchr(line, '=') != NULL)
			snprintf(want, sizeof(want), "%s.%.*s", section,
			    (int)strcspn(line, " ="), line);
		else
			continue;
		for (j = 0; j < n; j++)
			if (strcmp(keys[j], want) == 0)
				found[j]++;
	}
	free(text);
	ck_assert_int_eq(commented, 1);
	for (i = 0; i < n; i++)
		ck_assert_msg(found[i] == 1, "%s: in " EXAMPLE " %zu times",
		    keys[i], found[i]);
}
END_TEST

START_TEST(test_manpage_documents_every_key)
{
	char keys[128][80], want[96], *text, *dot;
	size_t n = table_keys(keys, 128), i;

	text = read_all(MANPAGE);
	for (i = 0; i < n; i++) {
		dot = strchr(keys[i], '.');
		ck_assert_ptr_nonnull(dot);
		snprintf(want, sizeof(want), "\n.It Cm %s ", dot + 1);
		ck_assert_msg(strstr(text, want) != NULL,
		    MANPAGE " does not document %s", keys[i]);
	}
	ck_assert_ptr_nonnull(strstr(text, "\n.Ss \"[user NAME]\\&\"\n"));
	ck_assert_ptr_nonnull(strstr(text, "\n.Sh FILES\n"));
	free(text);
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
	tcase_add_test(tc, test_listen);
	tcase_add_test(tc, test_parse_listen_api);
	tcase_add_test(tc, test_cidrs);
	tcase_add_test(tc, test_allow_users);
	tcase_add_test(tc, test_delimiters);
	suite_add_tcase(s, tc);

	tc = tcase_create("structure");
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_sections_keys);
	tcase_add_test(tc, test_auth_none);
	tcase_add_test(tc, test_continuation);
	tcase_add_test(tc, test_long_lines);
	tcase_add_test(tc, test_syntax);
	tcase_add_test(tc, test_several_errors);
	tcase_add_test(tc, test_provision_servers);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_good_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("users");
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults_zero);
	tcase_add_test(tc, test_user_sections);
	tcase_add_test(tc, test_user_normalised);
	suite_add_tcase(s, tc);

	tc = tcase_create("lookups");
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_addr_allowed);
	suite_add_tcase(s, tc);

	tc = tcase_create("print");
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_print_format);
	tcase_add_test(tc, test_print_round_trip);
	suite_add_tcase(s, tc);

	tc = tcase_create("example");
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_example_loads);
	tcase_add_test(tc, test_example_documents_every_key);
	tcase_add_test(tc, test_manpage_documents_every_key);
	suite_add_tcase(s, tc);
	return s;
}
