/*
 * check_config.h: the fixture of the configuration loader suites
 * (check_config.c, check_configaddr.c, check_configfile.c,
 * check_configprint.c): a temporary directory per TCase, and loading a
 * text with what the loader logs captured.
 *
 * config_load logs each error through log_error; in the foreground that is
 * stderr, which these tests capture (fd 2 redirected to a file around the
 * call) to compare with the expected text, the temporary file's path
 * replaced by "t.conf" and the "t: " program and "error: " level prefixes
 * removed.
 */
#ifndef CHECK_CONFIG_H
#define CHECK_CONFIG_H

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

static char tmpdir[64];
static char tmpconf[128];	/* tmpdir/t.conf, written by write_conf */
static char caplog[65536];	/* what the last load logged */

/*
 * One directory per TCase, made and removed in the runner's process
 * (unchecked fixture), so it goes even when a test fails.
 */
static inline void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_config.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(tmpconf, sizeof(tmpconf), "%s/t.conf", tmpdir);
	log_init("t", 1, 0);
}

static inline void
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

static inline void
write_file(const char *path, const char *text, size_t len)
{
	FILE *fp = fopen(path, "w");

	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(text, 1, len, fp), len);
	ck_assert_int_eq(fclose(fp), 0);
}

/* Replace every `from' in caplog by `to' (not longer than `from'). */
static inline void
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
static inline void
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
static inline int
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

static inline int
load_text(const char *text, struct mp_config *cfg)
{
	write_file(tmpconf, text, strlen(text));
	return load_path(tmpconf, cfg);
}

/* The text must load without a word logged. */
static inline void
load_ok(const char *text, struct mp_config *cfg)
{
	int errors = load_text(text, cfg);

	ck_assert_msg(errors == 0, "%d errors loading:\n%s\nlogged:\n%s",
	    errors, text, caplog);
	ck_assert_str_eq(caplog, "");
}

static inline int
count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		if (*s == '\n')
			n++;
	return n;
}

/* The text must fail with exactly `want' logged, one error per line. */
static inline void
load_fails(const char *text, const char *want)
{
	struct mp_config cfg;
	int errors = load_text(text, &cfg);

	ck_assert_str_eq(caplog, want);
	ck_assert_int_eq(errors, count_lines(want));
	config_free(&cfg);
}

static inline void
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

#endif
