/*
 * check_provision.c: key files with ids (keyfile.c), mailpushctl's key
 * commands, and the provisioning socket of the real daemon: answers,
 * the local-trust rule, bounds and the deadline.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "harness.h"
#include "keyfile.h"

static struct mpd_proc P;
static char prov_path[160];

static const char K1[] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char K2[] =
    "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

START_TEST(keyfile_forms)
{
	struct mp_keys k;
	const char *why;
	char text[512], buf[KEYFILE_MAX];
	int n;

	/* the form without ids is key 1 */
	snprintf(text, sizeof(text), "%s\n", K1);
	ck_assert_int_eq(keyfile_parse(text, strlen(text), &k, &why), 0);
	ck_assert_uint_eq(k.cur_id, 1);
	ck_assert_uint_eq(k.prev_id, 0);
	ck_assert_uint_eq(k.cur[1], 1);

	snprintf(text, sizeof(text), "# c\n\nkey 7 %s\nprevious 6 %s 1000\n",
	    K2, K1);
	ck_assert_int_eq(keyfile_parse(text, strlen(text), &k, &why), 0);
	ck_assert_uint_eq(k.cur_id, 7);
	ck_assert_uint_eq(k.cur[0], 0xff);
	ck_assert_uint_eq(k.prev_id, 6);
	ck_assert_int_eq(k.prev_retired, 1000);
	/* the previous key only within the grace period */
	ck_assert_ptr_eq(keyfile_key(&k, 7, 5000, 100), k.cur);
	ck_assert_ptr_eq(keyfile_key(&k, 6, 1099, 100), k.prev);
	ck_assert_ptr_null(keyfile_key(&k, 6, 1100, 100));
	ck_assert_ptr_null(keyfile_key(&k, 5, 1000, 100));
	/* round trip */
	n = keyfile_format(&k, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(keyfile_parse(buf, (size_t)n, &k, &why), 0);
	ck_assert_uint_eq(k.cur_id, 7);
	ck_assert_uint_eq(k.prev_id, 6);
	ck_assert_int_lt(keyfile_format(&k, buf, 100), 0);
}
END_TEST

START_TEST(keyfile_errors)
{
	static const char *bad[] = {
		"",
		"# only a comment\n",
		"key 0 %s\n",
		"key 256 %s\n",
		"key x %s\n",
		"key 1 abc\n",
		"key 1 %s extra\n",
		"key 1 %s\nkey 2 %s\n",
		"previous 1 %s 5\n",
		"key 1 %s\nprevious 1 %s 5\n",
		"key 1 %s\nprevious 2 %s\n",
		"key 1 %s\nprevious 2 %s -5\n",
		"key 1 %s\nprevious 2 %s 5x\n",
		"secret %s\n",
	};
	struct mp_keys k;
	const char *why;
	char text[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), bad[i], K1, K2);
		why = NULL;
		ck_assert_msg(keyfile_parse(text, strlen(text), &k, &why) == -1,
		    "accepted: %s", text);
		ck_assert_ptr_nonnull(why);
	}
	/* a NUL inside */
	snprintf(text, sizeof(text), "key 1 %s\n", K1);
	text[3] = '\0';
	ck_assert_int_eq(keyfile_parse(text, 70, &k, &why), -1);
}
END_TEST

START_TEST(token_text)
{
	uint8_t token[MP_TOKEN_LEN], back[MP_TOKEN_LEN], id;
	char text[KEYFILE_TOKEN_TEXT_MAX + 1];
	const char *why;

	memset(token, 0xab, sizeof(token));
	keyfile_token_text(255, token, text);
	ck_assert_uint_eq(strlen(text), KEYFILE_TOKEN_TEXT_MAX);
	ck_assert_int_eq(keyfile_token_parse(text, &id, back, &why), 0);
	ck_assert_uint_eq(id, 255);
	ck_assert_int_eq(memcmp(token, back, sizeof(token)), 0);
	/* bare hex: key 1 */
	ck_assert_int_eq(keyfile_token_parse(text + 4, &id, back, &why), 0);
	ck_assert_uint_eq(id, 1);
	ck_assert_int_eq(keyfile_token_parse("0:00", &id, back, &why), -1);
	ck_assert_int_eq(keyfile_token_parse("", &id, back, &why), -1);
	text[10] = 'g';
	ck_assert_int_eq(keyfile_token_parse(text, &id, back, &why), -1);
}
END_TEST

/* Through the real daemon */

static void
prov_setup_timeout(const char *extra, const char *timeout)
{
	char conf[1024];

	ck_assert_int_eq(mpd_prepare(&P), 0);
	snprintf(prov_path, sizeof(prov_path), "%s/provision.sock", P.dir);
	snprintf(conf, sizeof(conf), "[provision]\nsocket = %s\n"
	    "servers = push1.example.org:4650 [2001:db8::1]:4651\n"
	    "timeout = %s\n%s", prov_path, timeout, extra ? extra : "");
	ck_assert_int_eq(mpd_rewrite(&P, conf), 0);
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(mpd_wait_ready(&P, 5000), 0);
}

static void
prov_setup(const char *extra)
{
	prov_setup_timeout(extra, "300ms");
}

static void
teardown(void)
{
	ck_assert_int_eq(mpd_finish(&P), 0);
}

/* A connection to the provisioning socket (answers wait 2 s), or -1. */
static int
prov_connect(void)
{
	struct sockaddr_un sun;
	struct timeval tv = { 2, 0 };
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", prov_path);
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One request record, one answer (2 s at most); -1 on a socket error. */
static int
prov_ask(const char *req, size_t len, char *out, size_t outlen)
{
	ssize_t n;
	int fd;

	if ((fd = prov_connect()) == -1)
		return -1;
	if (len > 0 && send(fd, req, len, 0) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	n = recv(fd, out, outlen - 1, 0);
	close(fd);
	if (n < 0)
		return -1;
	out[n] = '\0';
	return 0;
}

static void
expect_token(const char *answer, unsigned id, const char *user)
{
	uint8_t token[MP_TOKEN_LEN];
	char text[KEYFILE_TOKEN_TEXT_MAX + 1], want[512];

	mpd_token(&P, user, token);
	keyfile_token_text(id, token, text);
	snprintf(want, sizeof(want), "ok\ntoken %s\nuser %s\nservers "
	    "push1.example.org:4650 [2001:db8::1]:4651\n", text, user);
	ck_assert_str_eq(answer, want);
}

START_TEST(answers)
{
	char out[1024], big[400];

	prov_setup(NULL);
	if (geteuid() != 0 && geteuid() != getuid()) {
		fprintf(stderr, "provision: odd uids, skipped\n");
		return;
	}
	/* the daemon runs as us: trusted, may ask for anyone */
	ck_assert_int_eq(prov_ask("token alice\n", 12, out, sizeof(out)), 0);
	expect_token(out, 1, "alice");
	/* names are normalised as everywhere: case, extension */
	ck_assert_int_eq(prov_ask("token Alice+news", 16, out, sizeof(out)),
	    0);
	expect_token(out, 1, "alice");
	ck_assert_int_eq(prov_ask("hello", 5, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "error: unknown request (expected \"token "
	    "USER\")\n");
	ck_assert_int_eq(prov_ask("token a\nb", 9, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "error: request contains a NUL or newline\n");
	ck_assert_int_eq(prov_ask("token a\0b", 9, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "error: request contains a NUL or newline\n");
	memset(big, 'a', sizeof(big));
	memcpy(big, "token ", 6);
	/* the longest request: "token ", a 255-byte name, a newline */
	big[261] = '\n';
	ck_assert_int_eq(prov_ask(big, 262, out, sizeof(out)), 0);
	big[261] = '\0';
	expect_token(out, 1, big + 6);
	/* a byte more is refused, and the message gives the limit */
	big[261] = 'a';
	ck_assert_int_eq(prov_ask(big, 263, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "error: request longer than 262 bytes\n");
	ck_assert_int_eq(prov_ask(big, sizeof(big), out, sizeof(out)), 0);
	ck_assert_str_eq(out, "error: request longer than 262 bytes\n");
	/* silence: closed at the deadline, without an answer */
	ck_assert_int_eq(prov_ask("", 0, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(mpd_log_count(&P, "provisioning socket: uid"), 1);
	ck_assert_int_eq(mpd_stat(&P, "provision_answered"), 3);
	ck_assert_int_eq(mpd_stat(&P, "provision_malformed"), 5);
	ck_assert_int_eq(mpd_stat(&P, "provision_timeouts"), 1);
}
END_TEST

/*
 * 64 idle connections (a local user holding them open) do not keep a
 * request from its answer: the oldest is closed to make room.
 */
START_TEST(idle_connections_do_not_lock_out)
{
	char out[1024];
	int fds[64], i;

	prov_setup_timeout(NULL, "10s");
	for (i = 0; i < 64; i++)
		ck_assert_int_ne(fds[i] = prov_connect(), -1);
	ck_assert_int_eq(prov_ask("token alice\n", 12, out, sizeof(out)), 0);
	expect_token(out, 1, "alice");
	ck_assert_int_eq(mpd_stat(&P, "provision_busy"), 1);
	/* the first one is the one that went */
	ck_assert_int_eq(recv(fds[0], out, sizeof(out), 0), 0);
	for (i = 0; i < 64; i++)
		close(fds[i]);
}
END_TEST

/* auth = none: no tokens to hand out, said so, counted as refused. */
START_TEST(auth_none_no_tokens)
{
	char out[1024];

	prov_setup("[mailpushd]\nauth = none\nallow = 127.0.0.1/32\n");
	ck_assert_int_eq(prov_ask("token alice\n", 12, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "error: auth = none: the notifier has no "
	    "tokens\n");
	ck_assert_int_eq(mpd_stat(&P, "provision_denied"), 1);
	ck_assert_int_eq(mpd_stat(&P, "provision_malformed"), 0);
	ck_assert_int_eq(mpd_stat(&P, "provision_answered"), 0);
}
END_TEST

/* A uid that is not trusted gets only its own token. */
START_TEST(untrusted_uid)
{
	struct passwd *pw;
	char out[1024];
	int pfd[2], status;
	pid_t pid;
	ssize_t n;

	prov_setup(NULL);
	if (geteuid() != 0) {
		fprintf(stderr, "provision: not root, cannot ask as nobody; "
		    "skipped\n");
		return;
	}
	ck_assert_ptr_nonnull(pw = getpwnam("nobody"));
	chmod(P.dir, 0755);
	ck_assert_int_eq(pipe(pfd), 0);
	if ((pid = fork()) == 0) {
		char a[512], b[512];

		close(pfd[0]);
		if (setgroups(0, NULL) == -1 || setgid(pw->pw_gid) == -1 ||
		    setuid(pw->pw_uid) == -1)
			_exit(2);
		if (prov_ask("token alice", 11, a, sizeof(a)) != 0 ||
		    prov_ask("token nobody", 12, b, sizeof(b)) != 0)
			_exit(3);
		dprintf(pfd[1], "%s|%s", a, b);
		_exit(0);
	}
	close(pfd[1]);
	n = read(pfd[0], out, sizeof(out) - 1);
	close(pfd[0]);
	waitpid(pid, &status, 0);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_gt(n, 0);
	out[n] = '\0';
	ck_assert_msg(strncmp(out, "error: permission denied", 24) == 0, "%s",
	    out);
	ck_assert_ptr_nonnull(strstr(out, "|ok\ntoken 1:"));
	ck_assert_ptr_nonnull(strstr(out, "\nuser nobody\n"));
	ck_assert_ptr_null(strstr(out, "user alice"));
	ck_assert_int_eq(mpd_log_wait(&P, "may not act for alice", 1, 2000),
	    0);
	ck_assert_int_eq(mpd_stat(&P, "provision_denied"), 1);
	ck_assert_int_eq(mpd_stat(&P, "provision_answered"), 1);
}
END_TEST

/* mailpushctl key rotate: the daemon hands out the new key's tokens. */
START_TEST(rotation)
{
	char out[1024], text[1024];
	struct mp_keys k;
	const char *why;

	prov_setup(NULL);
	ck_assert_int_eq(mpd_ctl(&P, out, sizeof(out), "key", "rotate", NULL),
	    0);
	ck_assert_ptr_nonnull(strstr(out, "key 2 is now current"));
	ck_assert_int_eq(keyfile_read(P.key_file, &k, &why), 0);
	ck_assert_uint_eq(k.cur_id, 2);
	ck_assert_uint_eq(k.prev_id, 1);
	ck_assert_int_eq(memcmp(k.prev, P.key, MP_KEY_LEN), 0);
	ck_assert_int_eq(mpd_log_wait(&P, "configuration reloaded", 1, 3000),
	    0);
	ck_assert_int_eq(prov_ask("token bob", 9, out, sizeof(out)), 0);
	memcpy(P.key, k.cur, MP_KEY_LEN);	/* mpd_token uses P.key */
	expect_token(out, 2, "bob");
	ck_assert_int_eq(mpd_ctl(&P, text, sizeof(text), "token", "bob", NULL),
	    0);
	ck_assert_ptr_nonnull(strstr(out, text));
	ck_assert_int_eq(mpd_ctl(&P, out, sizeof(out), "key", "retire", NULL),
	    0);
	ck_assert_int_eq(keyfile_read(P.key_file, &k, &why), 0);
	ck_assert_uint_eq(k.prev_id, 0);
	ck_assert_int_ne(mpd_ctl(&P, out, sizeof(out), "key", "retire", NULL),
	    0);
}
END_TEST

/*
 * key rotate while the previous key is still in its grace (7 d by
 * default) would drop it and its tokens at once (R15-7): refused, the key
 * file left alone, unless -f.
 */
START_TEST(rotation_in_grace)
{
	char out[1024];
	struct mp_keys k;
	const char *why;

	prov_setup(NULL);
	ck_assert_int_eq(mpd_ctl(&P, out, sizeof(out), "key", "rotate", NULL),
	    0);
	ck_assert_int_eq(mpd_ctl(&P, out, sizeof(out), "key", "rotate", NULL),
	    65);
	ck_assert_int_eq(keyfile_read(P.key_file, &k, &why), 0);
	ck_assert_uint_eq(k.cur_id, 2);
	ck_assert_uint_eq(k.prev_id, 1);
	ck_assert_int_eq(memcmp(k.prev, P.key, MP_KEY_LEN), 0);
	{
		char *argv[] = { (char *)BUILDDIR "/mailpushctl", (char *)"-c",
		    P.conf, (char *)"key", (char *)"rotate", NULL };
		char err[1024];

		ck_assert_int_eq(run_cmd(argv, out, sizeof(out), err,
		    sizeof(err), 10000), 65);
		ck_assert_msg(strstr(err, "key 1 is still accepted for ") !=
		    NULL && strstr(err, "rotate -f") != NULL, "%s", err);
	}
	ck_assert_int_eq(mpd_ctl(&P, out, sizeof(out), "key", "rotate", "-f",
	    NULL), 0);
	ck_assert_ptr_nonnull(strstr(out, "key 1 dropped: its tokens are "
	    "refused from now on"));
	ck_assert_ptr_nonnull(strstr(out, "key 3 is now current"));
	ck_assert_int_eq(keyfile_read(P.key_file, &k, &why), 0);
	ck_assert_uint_eq(k.cur_id, 3);
	ck_assert_uint_eq(k.prev_id, 2);
	/* retired first: no -f needed */
	ck_assert_int_eq(mpd_ctl(&P, out, sizeof(out), "key", "retire", NULL),
	    0);
	ck_assert_int_eq(mpd_ctl(&P, out, sizeof(out), "key", "rotate", NULL),
	    0);
	ck_assert_ptr_null(strstr(out, "dropped"));
	ck_assert_int_eq(keyfile_read(P.key_file, &k, &why), 0);
	ck_assert_uint_eq(k.cur_id, 4);
	ck_assert_int_eq(mpd_ctl(&P, out, sizeof(out), "key", "rotate", "-x",
	    NULL), 64);
}
END_TEST

Suite *
make_provision_suite(void)
{
	Suite *s = suite_create("provision");
	TCase *tc;

	tc = tcase_create("keyfile");
	tcase_add_test(tc, keyfile_forms);
	tcase_add_test(tc, keyfile_errors);
	tcase_add_test(tc, token_text);
	suite_add_tcase(s, tc);

	tc = tcase_create("socket");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, answers);
	tcase_add_test(tc, idle_connections_do_not_lock_out);
	tcase_add_test(tc, auth_none_no_tokens);
	tcase_add_test(tc, untrusted_uid);
	tcase_add_test(tc, rotation);
	tcase_add_test(tc, rotation_in_grace);
	suite_add_tcase(s, tc);
	return s;
}
