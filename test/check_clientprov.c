/*
 * check_clientprov.c: the client side of provisioning that needs no IMAP
 * server (client/provision.c): the cache file, its path, the password
 * from a file or a command.  The IMAP part runs in make e2e
 * (test/e2e/provision.sh) against a real Dovecot.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "harness.h"
#include "provision.h"
#include "srv.h"

static char dir[64];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mp-clientprov.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(cache_roundtrip)
{
	struct mpc_provision a, b;
	char path[128];
	const char *why;
	struct stat st;

	memset(&a, 0, sizeof(a));
	snprintf(a.user, sizeof(a.user), "alice@example.org");
	a.key_id = 7;
	memset(a.token, 0x5a, sizeof(a.token));
	snprintf(a.servers, sizeof(a.servers), "push1.example.org:4650 "
	    "[2001:db8::1]:4650");
	snprintf(path, sizeof(path), "%s/cache", dir);
	ck_assert_int_eq(mpc_provision_save(path, &a, &why), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(mpc_provision_load(path, &b, &why), 0);
	ck_assert_str_eq(b.user, a.user);
	ck_assert_uint_eq(b.key_id, 7);
	ck_assert_int_eq(memcmp(a.token, b.token, sizeof(a.token)), 0);
	ck_assert_str_eq(b.servers, a.servers);
	/* readable by others: refused */
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(mpc_provision_load(path, &b, &why), -1);
	ck_assert_int_eq(write_text(path, "user x\n", 0600), 0);
	ck_assert_int_eq(mpc_provision_load(path, &b, &why), -1);
	ck_assert_int_eq(write_text(path, "user x\ntoken 1:zz\n", 0600), 0);
	ck_assert_int_eq(mpc_provision_load(path, &b, &why), -1);
}
END_TEST

START_TEST(cache_path)
{
	char path[512], want[256];
	const char *why;

	setenv("XDG_STATE_HOME", dir, 1);
	ck_assert_int_eq(mpc_provision_cache_path("imaps://alice%40example."
	    "org@mail.example.org:993/", path, sizeof(path), &why), 0);
	snprintf(want, sizeof(want), "%s/mailpush/provision-alice%%40example."
	    "org@mail.example.org", dir);
	ck_assert_str_eq(path, want);
	ck_assert_int_eq(mpc_provision_cache_path("imaps://mail.example.org/",
	    path, sizeof(path), &why), -1);
	unsetenv("XDG_STATE_HOME");
}
END_TEST

START_TEST(passwords)
{
	char path[128], pw[64], err[256], cmd[256];

	snprintf(path, sizeof(path), "%s/pw", dir);
	ck_assert_int_eq(write_text(path, "s3cret\nignored\n", 0600), 0);
	ck_assert_int_eq(mpc_password_file(path, pw, sizeof(pw), err,
	    sizeof(err)), 0);
	ck_assert_str_eq(pw, "s3cret");
	ck_assert_int_eq(chmod(path, 0604), 0);
	ck_assert_int_eq(mpc_password_file(path, pw, sizeof(pw), err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "must not be readable by others"));
	ck_assert_int_eq(write_text(path, "\n", 0600), 0);
	ck_assert_int_eq(mpc_password_file(path, pw, sizeof(pw), err,
	    sizeof(err)), -1);
	snprintf(cmd, sizeof(cmd), "printf 'from-cmd\\r\\nx\\n'");
	ck_assert_int_eq(mpc_password_command(cmd, pw, sizeof(pw), err,
	    sizeof(err)), 0);
	ck_assert_str_eq(pw, "from-cmd");
	ck_assert_int_eq(mpc_password_command("exit 3", pw, sizeof(pw), err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "status 3"));
	ck_assert_int_eq(mpc_password_command("true", pw, sizeof(pw), err,
	    sizeof(err)), -1);
}
END_TEST

START_TEST(bad_url)
{
	struct mpc_provision_opts o = { "http://example.org/", "pw", NULL, 0 };
	struct mpc_provision pv;
	char err[256];

	ck_assert_int_eq(mpc_provision_fetch(&o, &pv, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not an imaps:// or imap:// URL"));
}
END_TEST

START_TEST(srv_order_and_text)
{
	struct mpc_srv s[4];
	char text[256];
	int i, first_b = 0;

	/* priority first; within a priority, weight 0 is drawn last unless
	   everything is 0 (RFC 2782); run it often: the order is random */
	for (i = 0; i < 200; i++) {
		memset(s, 0, sizeof(s));
		snprintf(s[0].host, sizeof(s[0].host), "late.example.org");
		s[0].port = 3, s[0].priority = 20, s[0].weight = 5;
		snprintf(s[1].host, sizeof(s[1].host), "a.example.org");
		s[1].port = 1, s[1].priority = 10, s[1].weight = 0;
		snprintf(s[2].host, sizeof(s[2].host), "b.example.org");
		s[2].port = 2, s[2].priority = 10, s[2].weight = 100;
		snprintf(s[3].host, sizeof(s[3].host), "2001:db8::1");
		s[3].port = 4, s[3].priority = 30, s[3].weight = 0;
		mpc_srv_order(s, 4);
		ck_assert_uint_eq(s[0].priority, 10);
		ck_assert_uint_eq(s[1].priority, 10);
		ck_assert_str_eq(s[2].host, "late.example.org");
		ck_assert_str_eq(s[3].host, "2001:db8::1");
		first_b += strcmp(s[0].host, "b.example.org") == 0;
	}
	/* weight 100 against 0: b first nearly always, a sometimes */
	ck_assert_int_gt(first_b, 150);
	ck_assert_int_eq(mpc_srv_text(s, 4, text, sizeof(text)), 0);
	ck_assert_ptr_nonnull(strstr(text, "late.example.org:3 "
	    "[2001:db8::1]:4"));
	ck_assert_int_eq(mpc_srv_text(s, 4, text, 20), -1);
}
END_TEST

START_TEST(srv_errors)
{
	struct mpc_srv l[MPC_SRV_MAX];
	char err[256];

	ck_assert_int_eq(mpc_srv_lookup("", NULL, l, err, sizeof(err)), -1);
	ck_assert_int_eq(mpc_srv_lookup("example.org", "not-an-ip", l, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "bad resolver"));
	ck_assert_int_eq(mpc_srv_lookup("example.org", "127.0.0.1:0", l,
	    err, sizeof(err)), -1);
}
END_TEST

/*
 * A lone CR in an IMAP answer (not followed by LF), or a CR as its last
 * byte, once made the lexer return an empty atom without moving on: the
 * parser spun for ever (R15-1).  alarm() turns a hang into a failure.
 */
START_TEST(imap_lone_cr)
{
	static const char *const bad[] = {
		"* FOO \rX\r\nmp1 OK done\r\n",
		"* METADATA \"\" (\r)\r\nmp1 OK done\r\n",
		"* FOO bar\r",
		"\r",
	};
	struct mpc_provision pv;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		alarm(5);
		err[0] = '\0';
		ck_assert_int_eq(mpc_provision_parse(bad[i], strlen(bad[i]),
		    &pv, err, sizeof(err)), -1);
		alarm(0);
		ck_assert_msg(err[0] != '\0', "no message for case %zu", i);
	}
}
END_TEST

#define TOK64	"00112233445566778899aabbccddeeff" \
		"00112233445566778899aabbccddeeff"
#define PFX	"/private/vendor/vendor.mailpush/"

/*
 * The IMAP answer to GETMETADATA, good and bad (R15-2): the e2e test's
 * Dovecot never sends a malformed one, so only this runs the error paths.
 */
START_TEST(imap_answers)
{
	static const struct {
		const char	*in;
		int		 complete;	/* mpc_provision_complete */
		int		 rc;		/* mpc_provision_parse */
		const char	*err;		/* part of the message */
	} t[] = {
		/* Dovecot's: one METADATA line, a literal for the servers */
		{ "* METADATA \"\" (" PFX "token \"3:" TOK64 "\" " PFX "user "
		  "\"alice@example.org\" " PFX "servers {22}\r\n"
		  "push1.example.org:4650)\r\nmp1 OK Getmetadata completed."
		  "\r\n", 1, 0, NULL },
		/* other untagged lines around it, entries on two lines */
		{ "* OK still here\r\n* METADATA \"\" (" PFX "user alice)\r\n"
		  "* METADATA \"\" (" PFX "token \"" TOK64 "\" " PFX "servers "
		  "NIL)\r\nmp1 OK done\r\n", 1, 0, NULL },
		/* NIL token: none for this login */
		{ "* METADATA \"\" (" PFX "token NIL " PFX "user alice)\r\n"
		  "mp1 OK done\r\n", 1, -1, "no token entry" },
		{ "* METADATA \"\" (" PFX "token \"3:" TOK64 "\")\r\n"
		  "mp1 OK done\r\n", 1, -1, "no user entry" },
		/* refused */
		{ "mp1 NO [METADATA TOOMANY] no\r\n", 1, -1,
		  "GETMETADATA refused: NO [METADATA TOOMANY] no" },
		{ "mp1 BAD Unknown command\r\n", 1, -1, "refused: BAD" },
		/* no tagged line: not complete, and nothing found */
		{ "* METADATA \"\" (" PFX "user alice)\r\n", 0, -1,
		  "no token entry" },
		/* a literal longer than what follows, or than we read */
		{ "* METADATA \"\" (" PFX "user {40}\r\nalice)\r\nmp1 OK x\r\n",
		  0, -1, "malformed" },
		{ "* METADATA \"\" (" PFX "user {99999999}\r\nalice)\r\n"
		  "mp1 OK x\r\n", 0, -1, "malformed" },
		/* a literal holding a NUL */
		{ "* METADATA \"\" (" PFX "user {3}\r\na\0b)\r\nmp1 OK x\r\n",
		  1, -1, "malformed" },
		/* a bad token, a user too long for us, an unclosed string */
		{ "* METADATA \"\" (" PFX "token \"3:zz\" " PFX "user a)\r\n"
		  "mp1 OK x\r\n", 1, -1, "the token entry: token must be" },
		{ "* METADATA \"\" (" PFX "user \"alice)\r\nmp1 OK x\r\n", 1,
		  -1, "malformed" },
		{ "* METADATA \"x\" (" PFX "user alice)\r\nmp1 OK x\r\n", 1,
		  -1, "malformed" },
		{ "* METADATA \"\" " PFX "user alice\r\nmp1 OK x\r\n", 1, -1,
		  "malformed" },
		{ "", 0, -1, "no token entry" },
	};
	struct mpc_provision pv;
	char err[512];
	size_t i, len;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		len = strlen(t[i].in);
		if (strstr(t[i].in, "{3}\r\na") != NULL)
			len += strlen(t[i].in + len + 1) + 1;	/* past the NUL */
		memset(&pv, 0, sizeof(pv));
		err[0] = '\0';
		alarm(5);
		ck_assert_msg(mpc_provision_complete(t[i].in, len) ==
		    t[i].complete, "case %zu: complete", i);
		ck_assert_msg(mpc_provision_parse(t[i].in, len, &pv, err,
		    sizeof(err)) == t[i].rc, "case %zu: rc (%s)", i, err);
		alarm(0);
		if (t[i].err != NULL)
			ck_assert_msg(strstr(err, t[i].err) != NULL,
			    "case %zu: \"%s\" has no \"%s\"", i, err, t[i].err);
	}
	/* what the good ones gave */
	len = strlen(t[0].in);
	ck_assert_int_eq(mpc_provision_parse(t[0].in, len, &pv, err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(pv.key_id, 3);
	ck_assert_uint_eq(pv.token[1], 0x11);
	ck_assert_str_eq(pv.user, "alice@example.org");
	ck_assert_str_eq(pv.servers, "push1.example.org:4650");
	memset(&pv, 0, sizeof(pv));
	ck_assert_int_eq(mpc_provision_parse(t[1].in, strlen(t[1].in), &pv,
	    err, sizeof(err)), 0);
	ck_assert_uint_eq(pv.key_id, 1);
	ck_assert_str_eq(pv.user, "alice");
	ck_assert_str_eq(pv.servers, "");
}
END_TEST

/*
 * The answer as mpc_provision_fetch holds it has no NUL after it: a literal
 * announced at the very end ("{5}\r\n") was read with sscanf, which looked
 * for a NUL past the buffer (found by fuzz_imap).  The answer here ends at
 * a page that cannot be read.
 */
START_TEST(imap_no_nul_after)
{
	static const char ans[] = "* METADATA \"\" (x {5}\r\n";
	long pg = sysconf(_SC_PAGESIZE);
	char *map;

	map = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(map, MAP_FAILED);
	memset(map, 'x', (size_t)pg);
	ck_assert_int_eq(mprotect(map + pg, (size_t)pg, PROT_NONE), 0);
	memcpy(map + pg - (sizeof(ans) - 1), ans, sizeof(ans) - 1);
	ck_assert_int_eq(mpc_provision_complete(map + pg - (sizeof(ans) - 1),
	    sizeof(ans) - 1), 0);
	munmap(map, (size_t)pg * 2);
}
END_TEST

Suite *
make_clientprov_suite(void)
{
	Suite *s = suite_create("clientprov");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, cache_roundtrip);
	tcase_add_test(tc, cache_path);
	tcase_add_test(tc, passwords);
	tcase_add_test(tc, bad_url);
	tcase_add_test(tc, srv_order_and_text);
	tcase_add_test(tc, srv_errors);
	tcase_add_test(tc, imap_lone_cr);
	tcase_add_test(tc, imap_answers);
	tcase_add_test(tc, imap_no_nul_after);
	suite_add_tcase(s, tc);
	return s;
}
