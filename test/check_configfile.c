/*
 * check_configfile.c: the configuration file as a whole
 * (shared/config.c): sections and keys, auth = none, continuation and
 * long lines, the syntax inih and the loader's reader accept and refuse,
 * several errors in one file, [provision] servers, a missing file and a
 * good one; [user NAME] sections, normalised user names and the
 * 0-means-default rule.  The fixture is in check_config.h.
 */
#include "check_config.h"

Suite	*make_configfile_suite(void);

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

Suite *
make_configfile_suite(void)
{
	Suite *s = suite_create("configfile");
	TCase *tc;

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
	return s;
}
