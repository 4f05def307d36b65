/*
 * check_configprint.c: config_print (mailpushd -n) round trips and
 * format, and the shipped example conf/mailpushd.conf: it loads, and it
 * and the man page document every key.  The fixture is in check_config.h.
 */
#include "check_config.h"

Suite	*make_configprint_suite(void);

#define EXAMPLE		"conf/mailpushd.conf"
#define MANPAGE		"man/mailpushd.conf.5"

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
make_configprint_suite(void)
{
	Suite *s = suite_create("configprint");
	TCase *tc;

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
