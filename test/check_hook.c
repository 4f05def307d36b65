/*
 * check_hook.c: mailpush-hook through the real binary, run as Postfix runs
 * it (bare environment, PATH=/usr/bin:/bin, no HOME), against a datagram
 * socket the test binds in a temp directory.
 *
 * Covered: exit status passthrough and signals; stdin byte for byte (10 MB
 * and every byte value); argv passthrough; the event in wrapper and
 * standalone modes and never after a failed agent; USER/LOGNAME; -s/-t
 * against the INI file; the send timeout with no socket, a stale socket
 * and a full socket; misconfiguration in wrapper mode (agent still runs);
 * usage errors; silence on success.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "event.h"

Suite	*make_hook_suite(void);

#define HOOK_BIN	BUILDDIR "/mailpush-hook"
#define RUN_LIMIT_MS	30000		/* no run may take longer */
#define SH		"/bin/sh"

struct run {
	pid_t		 pid;
	int		 status;	/* exit status, 128 + signal */
	double		 secs;		/* from fork to reap */
	char		*out;		/* the hook's stdout, NUL-terminated */
	char		*err;		/* its stderr */
	size_t		 outlen, errlen;
	struct timespec	 start;
};

static char	base[PATH_MAX];		/* this TCase's directory */
static char	tmp[PATH_MAX];		/* this test's directory, inside */
static char	evpath[PATH_MAX];	/* tmp/ev.sock, bound by the test */
static char	conf[PATH_MAX];		/* tmp/hook.conf, naming evpath */
static int	evfd = -1;
static int	fillers[256];
static int	nfillers;

static const char *const env_bare[] = { "PATH=/usr/bin:/bin", NULL };
static const char *const env_alice[] = { "PATH=/usr/bin:/bin", "USER=alice",
    NULL };

/* Helpers */

static void
tpath(char *buf, const char *name)
{
	int n = snprintf(buf, PATH_MAX, "%s/%s", tmp, name);

	ck_assert(n > 0 && n < PATH_MAX);
}

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fputs(text, fp) >= 0, 1);
	ck_assert_int_eq(fclose(fp), 0);
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "r");
	char *buf;
	long n;

	if (fp == NULL) {
		*len = 0;
		return NULL;
	}
	ck_assert_int_eq(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	ck_assert_int_ge(n, 0);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

static int
exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static double
since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/*
 * Start the hook with argv (argv[0] is the binary), the environment env
 * and `in' on a pipe as stdin, as Postfix feeds it.  stdout and stderr go
 * to files.  The input is written before returning, bounded in time.
 */
static void
hook_spawn(struct run *r, const char *const *env, const void *in,
    size_t inlen, const char *const *argv)
{
	char outp[PATH_MAX], errp[PATH_MAX];
	char **av, **ev;
	size_t i, n, off = 0;
	int p[2], o, e;

	memset(r, 0, sizeof(*r));
	for (n = 0; argv[n] != NULL; n++)
		;
	ck_assert_ptr_nonnull(av = calloc(n + 1, sizeof(*av)));
	for (i = 0; i < n; i++)
		ck_assert_ptr_nonnull(av[i] = strdup(argv[i]));
	for (n = 0; env[n] != NULL; n++)
		;
	ck_assert_ptr_nonnull(ev = calloc(n + 1, sizeof(*ev)));
	for (i = 0; i < n; i++)
		ck_assert_ptr_nonnull(ev[i] = strdup(env[i]));

	tpath(outp, "hook.out");
	tpath(errp, "hook.err");
	o = open(outp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	e = open(errp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert(o != -1 && e != -1);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	signal(SIGPIPE, SIG_IGN);	/* an agent may not read it all */

	clock_gettime(CLOCK_MONOTONIC, &r->start);
	r->pid = fork();
	ck_assert_int_ne(r->pid, -1);
	if (r->pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		if (dup2(p[0], 0) == -1 || dup2(o, 1) == -1 ||
		    dup2(e, 2) == -1)
			_exit(126);
		execve(av[0], av, ev);
		_exit(127);
	}
	close(p[0]);
	close(o);
	close(e);
	for (i = 0; av[i] != NULL; i++)
		free(av[i]);
	free(av);
	for (i = 0; ev[i] != NULL; i++)
		free(ev[i]);
	free(ev);

	ck_assert_int_eq(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
	while (off < inlen) {
		struct pollfd pfd = { p[1], POLLOUT, 0 };
		int left = RUN_LIMIT_MS - (int)(since(&r->start) * 1000);
		ssize_t w;

		ck_assert_msg(left > 0, "the hook did not take its input");
		if (poll(&pfd, 1, left) == -1 && errno != EINTR)
			ck_abort_msg("poll: %s", strerror(errno));
		w = write(p[1], (const char *)in + off, inlen - off);
		if (w == -1 && errno == EPIPE)
			break;
		if (w == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		ck_assert_int_gt(w, 0);
		off += (size_t)w;
	}
	close(p[1]);
}

/* Wait for the hook, at most RUN_LIMIT_MS, and collect what it printed. */
static void
hook_reap(struct run *r)
{
	char path[PATH_MAX];
	pid_t w;
	int st;

	for (;;) {
		w = waitpid(r->pid, &st, WNOHANG);
		if (w == r->pid)
			break;
		ck_assert_int_eq(w, 0);
		if (since(&r->start) * 1000 > RUN_LIMIT_MS) {
			kill(r->pid, SIGKILL);
			waitpid(r->pid, &st, 0);
			ck_abort_msg("the hook ran for over %d ms",
			    RUN_LIMIT_MS);
		}
		poll(NULL, 0, 1);
	}
	r->secs = since(&r->start);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	tpath(path, "hook.out");
	r->out = read_file(path, &r->outlen);
	tpath(path, "hook.err");
	r->err = read_file(path, &r->errlen);
	ck_assert_ptr_nonnull(r->out);
	ck_assert_ptr_nonnull(r->err);
}

static void
run_free(struct run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

#define HOOK_START(r, env, in, inlen, ...) do {				\
	const char *const a_[] = { HOOK_BIN, __VA_ARGS__, NULL };	\
	hook_spawn((r), (env), (in), (inlen), a_);			\
} while (0)

#define HOOK(r, env, in, inlen, ...) do {				\
	HOOK_START(r, env, in, inlen, __VA_ARGS__);			\
	hook_reap(r);							\
} while (0)

static int
bind_dgram(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	ck_assert_uint_lt(strlen(path), sizeof(sun.sun_path));
	memcpy(sun.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ck_assert_int_ne(fd, -1);
	ck_assert_msg(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0,
	    "bind %s: %s", path, strerror(errno));
	return fd;
}

/*
 * Receive one well-formed event within timeout_ms; datagrams that do not
 * decode (the fillers) are skipped.  Returns 0, or -1 if none came.
 */
static int
recv_event(int fd, struct mp_event *ev, int timeout_ms)
{
	struct timespec t0;
	uint8_t buf[2048];
	const char *why;
	ssize_t n;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		int left = timeout_ms - (int)(since(&t0) * 1000);

		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n >= 0) {
			if (event_decode(buf, (size_t)n, ev, &why) == 0)
				return 0;
			continue;
		}
		ck_assert_msg(errno == EAGAIN || errno == EINTR, "recv: %s",
		    strerror(errno));
		if (left <= 0)
			return -1;
		poll(&pfd, 1, left);
	}
}

/* Nothing is queued (call after the hook has exited). */
static void
assert_no_event(int fd)
{
	uint8_t buf[2048];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	ck_assert_msg(n == -1 && errno == EAGAIN, "an event was sent (%zd "
	    "bytes)", n);
}

static void
assert_event(int fd, const char *user, const char *mailbox)
{
	struct mp_event ev;

	ck_assert_msg(recv_event(fd, &ev, 2000) == 0, "no event for %s",
	    user);
	ck_assert_str_eq(ev.user, user);
	ck_assert_str_eq(ev.mailbox, mailbox);
	ck_assert_uint_eq(ev.count, 1);
	ck_assert_uint_eq(ev.uid, 0);
}

static void
assert_silent(const struct run *r)
{
	ck_assert_msg(r->outlen == 0, "stdout: %s", r->out);
	ck_assert_msg(r->errlen == 0, "stderr: %s", r->err);
}

/*
 * Fill the receive queue of the socket at path until a fresh sender gets
 * EAGAIN, which is what the hook will see.  The fillers stay open.
 */
static void
fill_socket(const char *path)
{
	struct sockaddr_un sun;
	int round;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	for (round = 0; round < 64; round++) {
		int s, probe, i;

		s = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
		ck_assert_int_ne(s, -1);
		ck_assert_int_eq(connect(s, (struct sockaddr *)&sun,
		    sizeof(sun)), 0);
		ck_assert_int_lt(nfillers, 256);
		fillers[nfillers++] = s;
		for (i = 0; i < 100000; i++)
			if (send(s, "x", 1, 0) == -1) {
				ck_assert_msg(errno == EAGAIN ||
				    errno == ENOBUFS, "send: %s",
				    strerror(errno));
				break;
			}
		probe = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		ck_assert_int_ne(probe, -1);
		ck_assert_int_eq(connect(probe, (struct sockaddr *)&sun,
		    sizeof(sun)), 0);
		if (send(probe, "x", 1, 0) == -1 && errno == EAGAIN) {
			close(probe);
			return;
		}
		ck_assert_int_lt(nfillers, 256);
		fillers[nfillers++] = probe;
	}
	ck_abort_msg("could not fill %s", path);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

/*
 * Each TCase gets a directory made in the runner's process (an unchecked
 * fixture), so it is removed even when a failed test's process exits
 * without running its checked teardown; each test works in a directory
 * of its own inside it.
 */
static void
tcase_setup(void)
{
	snprintf(base, sizeof(base), "/tmp/mp-hook-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(base));
}

static void
tcase_teardown(void)
{
	if (base[0] != '\0')
		nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	base[0] = '\0';
}

static void
setup(void)
{
	char text[PATH_MAX + 64];

	ck_assert_int_lt(snprintf(tmp, sizeof(tmp), "%s/t-XXXXXX", base),
	    (int)sizeof(tmp));
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	tpath(evpath, "ev.sock");
	tpath(conf, "hook.conf");
	snprintf(text, sizeof(text), "[hook]\nsocket = %s\n", evpath);
	write_file(conf, text);
	evfd = bind_dgram(evpath);
	nfillers = 0;
}

static void
teardown(void)
{
	int i;

	for (i = 0; i < nfillers; i++)
		close(fillers[i]);
	nfillers = 0;
	if (evfd != -1)
		close(evfd);
	evfd = -1;
	if (tmp[0] != '\0')
		nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	tmp[0] = '\0';
}

/* core: the agent */

START_TEST(test_status_passthrough)
{
	static const int codes[] = { 0, 1, 67, 75, 100, 255 };
	char script[32];
	struct run r;
	size_t i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		snprintf(script, sizeof(script), "exit %d", codes[i]);
		HOOK(&r, env_bare, NULL, 0, "-c", conf, "-u", "alice", "--",
		    SH, "-c", script);
		ck_assert_int_eq(r.status, codes[i]);
		assert_silent(&r);
		run_free(&r);
		if (codes[i] == 0)
			assert_event(evfd, "alice", "INBOX");
		else
			assert_no_event(evfd);
	}
}
END_TEST

START_TEST(test_signal_is_tempfail)
{
	struct run r;

	HOOK(&r, env_bare, NULL, 0, "-c", conf, "-u", "alice", "--", SH,
	    "-c", "kill -KILL $$");
	ck_assert_int_eq(r.status, 75);
	assert_no_event(evfd);
	run_free(&r);

	HOOK(&r, env_bare, NULL, 0, "-d", "-c", conf, "-u", "alice", "--", SH,
	    "-c", "kill -TERM $$");
	ck_assert_int_eq(r.status, 75);
	ck_assert_ptr_nonnull(strstr(r.err, "killed by signal 15"));
	ck_assert_ptr_nonnull(strstr(r.err, "(mail deferred)"));
	assert_no_event(evfd);
	run_free(&r);
}
END_TEST

START_TEST(test_exec_failure)
{
	char nx[PATH_MAX];
	struct run r;

	tpath(nx, "no-such-agent");
	HOOK(&r, env_bare, NULL, 0, "-c", conf, "-u", "alice", "--", nx,
	    "-d", "alice");
	ck_assert_int_eq(r.status, 75);
	ck_assert_ptr_nonnull(strstr(r.err, "cannot execute"));
	ck_assert_ptr_nonnull(strstr(r.err, "No such file or directory"));
	assert_no_event(evfd);
	run_free(&r);

	/* A relative agent is not looked up in PATH: deferred. */
	HOOK(&r, env_bare, NULL, 0, "-c", conf, "-u", "alice", "--", "sh",
	    "-c", "exit 0");
	ck_assert_int_eq(r.status, 75);
	ck_assert_ptr_nonnull(strstr(r.err, "absolute path"));
	assert_no_event(evfd);
	run_free(&r);
}
END_TEST

/* The agent reads stdin into tmp/got; compare with what was fed. */
static void
check_stdin(const unsigned char *msg, size_t len)
{
	char got[PATH_MAX];
	struct run r;
	char *data;
	size_t n;

	tpath(got, "got");
	HOOK(&r, env_bare, msg, len, "-c", conf, "-u", "alice", "--", SH,
	    "-c", "exec /bin/cat > \"$1\"", "sh", got);
	ck_assert_int_eq(r.status, 0);
	assert_silent(&r);
	run_free(&r);
	data = read_file(got, &n);
	ck_assert_ptr_nonnull(data);
	ck_assert_uint_eq(n, len);
	ck_assert_msg(memcmp(data, msg, len) == 0, "stdin was altered");
	free(data);
	assert_event(evfd, "alice", "INBOX");
}

START_TEST(test_stdin_10mb)
{
	size_t len = 10 * 1024 * 1024, i;
	unsigned char *msg = malloc(len);
	uint32_t x = 2463534242U;

	ck_assert_ptr_nonnull(msg);
	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		msg[i] = (unsigned char)x;
	}
	memcpy(msg, "From: a@example.org\nSubject: big\n\n", 34);
	check_stdin(msg, len);
	free(msg);
}
END_TEST

START_TEST(test_stdin_every_byte)
{
	unsigned char msg[256 * 4 + 3];
	size_t i;

	/* Every value, in order and reversed, no trailing newline. */
	for (i = 0; i < 256; i++) {
		msg[i] = (unsigned char)i;
		msg[256 + i] = (unsigned char)(255 - i);
		msg[512 + i] = (unsigned char)i;
		msg[768 + i] = (unsigned char)(i * 7);
	}
	msg[1024] = '\r';
	msg[1025] = '\0';
	msg[1026] = 0xff;
	check_stdin(msg, sizeof(msg));
}
END_TEST

START_TEST(test_stdin_empty)
{
	check_stdin((const unsigned char *)"", 0);
}
END_TEST

START_TEST(test_argv_env_passthrough)
{
	const char *const env[] = { "PATH=/usr/bin:/bin", "FOO=bar baz",
	    NULL };
	char got[PATH_MAX];
	struct run r;
	char *data;
	size_t n;

	tpath(got, "args");
	HOOK(&r, env, NULL, 0, "-c", conf, "-u", "alice", "--", SH, "-c",
	    "exec > \"$1\"; shift; printf '[%s]\\n' \"$@\" \"$FOO\"", "sh",
	    got, "-u", "--", "", "two words", "-d", "-h");
	ck_assert_int_eq(r.status, 0);
	assert_silent(&r);
	run_free(&r);
	data = read_file(got, &n);
	ck_assert_ptr_nonnull(data);
	ck_assert_str_eq(data, "[-u]\n[--]\n[]\n[two words]\n[-d]\n[-h]\n"
	    "[bar baz]\n");
	free(data);
	assert_event(evfd, "alice", "INBOX");
}
END_TEST

/* core: the event */

START_TEST(test_event_wrapper)
{
	struct run r;

	HOOK(&r, env_bare, "x\n", 2, "-c", conf, "-u", "Alice+news@Example.com",
	    "-m", "Lists/misc", "--", SH, "-c", "exec /bin/cat >/dev/null");
	ck_assert_int_eq(r.status, 0);
	assert_silent(&r);
	run_free(&r);
	/* The hook passes the name as given; the daemon normalises. */
	assert_event(evfd, "Alice+news@Example.com", "Lists/misc");
	assert_no_event(evfd);
}
END_TEST

START_TEST(test_event_standalone)
{
	struct run r;

	HOOK(&r, env_bare, NULL, 0, "-c", conf, "-u", "bob", "-m", "Archive");
	ck_assert_int_eq(r.status, 0);
	assert_silent(&r);
	run_free(&r);
	assert_event(evfd, "bob", "Archive");
	assert_no_event(evfd);

	/* Default mailbox, UTF-8 passes through. */
	HOOK(&r, env_bare, NULL, 0, "-c", conf, "-u", "j\xc3\xbcrgen");
	ck_assert_int_eq(r.status, 0);
	assert_silent(&r);
	run_free(&r);
	assert_event(evfd, "j\xc3\xbcrgen", "INBOX");
}
END_TEST

START_TEST(test_user_from_environment)
{
	const char *const env_both[] = { "PATH=/usr/bin:/bin", "USER=bob",
	    "LOGNAME=carol", NULL };
	const char *const env_log[] = { "PATH=/usr/bin:/bin", "LOGNAME=carol",
	    NULL };
	const char *const env_empty[] = { "PATH=/usr/bin:/bin", "USER=",
	    "LOGNAME=dave", NULL };
	struct run r;

	HOOK(&r, env_both, NULL, 0, "-c", conf);
	ck_assert_int_eq(r.status, 0);
	run_free(&r);
	assert_event(evfd, "bob", "INBOX");

	HOOK(&r, env_log, NULL, 0, "-c", conf);
	ck_assert_int_eq(r.status, 0);
	run_free(&r);
	assert_event(evfd, "carol", "INBOX");

	HOOK(&r, env_empty, NULL, 0, "-c", conf);
	ck_assert_int_eq(r.status, 0);
	run_free(&r);
	assert_event(evfd, "dave", "INBOX");

	/* -u wins over the environment. */
	HOOK(&r, env_both, NULL, 0, "-c", conf, "-u", "erin");
	ck_assert_int_eq(r.status, 0);
	run_free(&r);
	assert_event(evfd, "erin", "INBOX");

	/* Wrapper mode, from LOGNAME. */
	HOOK(&r, env_log, NULL, 0, "-c", conf, "--", SH, "-c", "exit 0");
	ck_assert_int_eq(r.status, 0);
	assert_silent(&r);
	run_free(&r);
	assert_event(evfd, "carol", "INBOX");
	assert_no_event(evfd);
}
END_TEST

/* config: INI file against -s and -t */

START_TEST(test_ini_sockets)
{
	char other[PATH_MAX], text[2 * PATH_MAX];
	struct run r;
	int ofd;

	/* [hook] socket is used (setup wrote it into conf). */
	HOOK(&r, env_alice, NULL, 0, "-c", conf);
	ck_assert_int_eq(r.status, 0);
	run_free(&r);
	assert_event(evfd, "alice", "INBOX");

	/* With [hook] socket empty, the [events] socket is. */
	tpath(other, "events.sock");
	ofd = bind_dgram(other);
	snprintf(text, sizeof(text), "[events]\nsocket = %s\n\n[hook]\n"
	    "socket =\ntimeout = 50ms\n", other);
	write_file(conf, text);
	HOOK(&r, env_alice, NULL, 0, "-c", conf, "--", SH, "-c", "exit 0");
	ck_assert_int_eq(r.status, 0);
	assert_silent(&r);
	run_free(&r);
	assert_event(ofd, "alice", "INBOX");
	assert_no_event(evfd);

	/* [hook] socket wins over [events] socket. */
	snprintf(text, sizeof(text), "[events]\nsocket = %s\n\n[hook]\n"
	    "socket = %s\n", other, evpath);
	write_file(conf, text);
	HOOK(&r, env_alice, NULL, 0, "-c", conf, "--", SH, "-c", "exit 0");
	ck_assert_int_eq(r.status, 0);
	run_free(&r);
	assert_event(evfd, "alice", "INBOX");
	assert_no_event(ofd);
	close(ofd);
}
END_TEST

START_TEST(test_s_overrides_ini)
{
	char other[PATH_MAX];
	struct run r;
	int ofd;

	tpath(other, "other.sock");
	ofd = bind_dgram(other);
	HOOK(&r, env_alice, NULL, 0, "-c", conf, "-s", other, "--", SH, "-c",
	    "exit 0");
	ck_assert_int_eq(r.status, 0);
	assert_silent(&r);
	run_free(&r);
	assert_event(ofd, "alice", "INBOX");
	assert_no_event(evfd);

	/* Standalone too. */
	HOOK(&r, env_alice, NULL, 0, "-c", conf, "-s", other);
	ck_assert_int_eq(r.status, 0);
	run_free(&r);
	assert_event(ofd, "alice", "INBOX");
	assert_no_event(evfd);
	close(ofd);
}
END_TEST

START_TEST(test_ini_timeout_honoured)
{
	char text[PATH_MAX + 64];
	struct run r;

	snprintf(text, sizeof(text), "[hook]\nsocket = %s\ntimeout = 400ms\n",
	    evpath);
	write_file(conf, text);
	fill_socket(evpath);
	HOOK(&r, env_alice, NULL, 0, "-d", "-c", conf, "--", SH, "-c",
	    "exit 0");
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(r.secs >= 0.39 && r.secs < 2.0, "took %.3f s for a "
	    "400ms timeout", r.secs);
	ck_assert_ptr_nonnull(strstr(r.err, "timed out after 400ms"));
	run_free(&r);
}
END_TEST

START_TEST(test_t_overrides_ini)
{
	char text[PATH_MAX + 64];
	struct run r;

	snprintf(text, sizeof(text), "[hook]\nsocket = %s\ntimeout = 10s\n",
	    evpath);
	write_file(conf, text);
	fill_socket(evpath);
	HOOK(&r, env_alice, NULL, 0, "-d", "-c", conf, "-t", "100ms", "--",
	    SH, "-c", "exit 0");
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(r.secs >= 0.099 && r.secs < 1.0, "took %.3f s for a "
	    "100ms timeout", r.secs);
	ck_assert_ptr_nonnull(strstr(r.err, "timed out after 100ms"));
	run_free(&r);
}
END_TEST

START_TEST(test_no_file_needed)
{
	char nx[PATH_MAX];
	struct run r;

	/* -s and -t leave nothing to read; the default file is not needed. */
	HOOK(&r, env_alice, NULL, 0, "-s", evpath, "-t", "50ms", "--", SH,
	    "-c", "exit 0");
	ck_assert_int_eq(r.status, 0);
	assert_silent(&r);
	run_free(&r);
	assert_event(evfd, "alice", "INBOX");

	/* A file named with -c that is missing is one warning, and the
	 * built-in defaults; the event still goes to the -s socket. */
	tpath(nx, "missing.conf");
	HOOK(&r, env_alice, NULL, 0, "-d", "-c", nx, "-s", evpath, "-t",
	    "50ms", "--", SH, "-c", "exit 0");
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.err, "cannot open configuration"));
	ck_assert_ptr_nonnull(strstr(r.err, "uses the built-in defaults"));
	run_free(&r);
	assert_event(evfd, "alice", "INBOX");

	/* standalone, no -s: the default socket, which is not there here */
	HOOK(&r, env_alice, NULL, 0, "-c", nx);
	ck_assert_int_eq(r.status, 0);
	run_free(&r);
	assert_no_event(evfd);
}
END_TEST

/* config: misconfiguration never stops the agent */

START_TEST(test_broken_ini_wrapper)
{
	char marker[PATH_MAX], script[PATH_MAX + 64], text[PATH_MAX + 256];
	struct run r;

	/*
	 * Errors in what the hook uses ([hook] timeout) mean that key's
	 * default; errors elsewhere (a bad line, an unknown section, a bad
	 * [limits] value) are one log line; the event is still sent.
	 */
	snprintf(text, sizeof(text), "[events]\nsocket = %s\n[hook]\n"
	    "timeout = forever\nthis is not ini\n[nosuch]\nkey = 1\n"
	    "[limits]\nmax_registrations = lots\n", evpath);
	write_file(conf, text);
	tpath(marker, "ran");
	snprintf(script, sizeof(script), "echo ran > %s; exit 67", marker);
	HOOK(&r, env_alice, NULL, 0, "-c", conf, "--", SH, "-c", script);
	ck_assert_int_eq(r.status, 67);
	ck_assert(exists(marker));
	assert_silent(&r);	/* the warnings went to syslog */
	run_free(&r);
	assert_no_event(evfd);	/* the agent failed: no event */

	ck_assert_int_eq(unlink(marker), 0);
	snprintf(script, sizeof(script), "echo ran > %s; exit 0", marker);
	HOOK(&r, env_alice, NULL, 0, "-d", "-c", conf, "--", SH, "-c", script);
	ck_assert_int_eq(r.status, 0);
	ck_assert(exists(marker));
	ck_assert_ptr_nonnull(strstr(r.err, "[hook] timeout: must be a "
	    "duration"));
	ck_assert_ptr_nonnull(strstr(r.err, "(mailpush-hook uses the "
	    "built-in default)"));
	ck_assert_ptr_nonnull(strstr(r.err, "3 errors in parts mailpush-hook "
	    "does not use, ignored (first: "));
	ck_assert_ptr_null(strstr(r.err, "max_registrations"));
	run_free(&r);
	assert_event(evfd, "alice", "INBOX");

	/* Standalone: the same, exit 0 */
	HOOK(&r, env_alice, NULL, 0, "-c", conf);
	ck_assert_int_eq(r.status, 0);
	run_free(&r);
	assert_event(evfd, "alice", "INBOX");

	/* A bad [hook] socket keeps its default (empty: the [events]
	 * socket), so the event goes there */
	snprintf(text, sizeof(text), "[events]\nsocket = %s\n[hook]\n"
	    "socket = relative/path\n", evpath);
	write_file(conf, text);
	HOOK(&r, env_alice, NULL, 0, "-d", "-c", conf);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.err, "[hook] socket: must be an "
	    "absolute path"));
	run_free(&r);
	assert_event(evfd, "alice", "INBOX");
	assert_no_event(evfd);
}
END_TEST

START_TEST(test_bad_options_wrapper)
{
	const char *const bad[][2] = {
		{ "-t", "soon" },
		{ "-t", "0" },
		{ "-t", "11s" },
		{ "-s", "relative.sock" },
		{ "-x", "-d" },
		{ "-u", "" },
		{ "-m", "" },
	};
	size_t i;
	struct run r;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		HOOK(&r, env_alice, NULL, 0, "-c", conf, bad[i][0], bad[i][1],
		    "--", SH, "-c", "exit 3");
		ck_assert_msg(r.status == 3, "%s %s: status %d", bad[i][0],
		    bad[i][1], r.status);
		run_free(&r);
		HOOK(&r, env_alice, NULL, 0, "-d", "-c", conf, bad[i][0],
		    bad[i][1], "--", SH, "-c", "exit 0");
		ck_assert_msg(r.status == 0, "%s %s: status %d", bad[i][0],
		    bad[i][1], r.status);
		ck_assert_msg(strstr(r.err, "(running " SH ", no push)") !=
		    NULL, "%s %s: %s", bad[i][0], bad[i][1], r.err);
		run_free(&r);
		assert_no_event(evfd);
	}

	/* No user anywhere: the agent runs, no event. */
	HOOK(&r, env_bare, NULL, 0, "-d", "-c", conf, "--", SH, "-c", "exit 0");
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.err, "no user"));
	run_free(&r);
	assert_no_event(evfd);

	/* -u lost its argument to `--': the agent is still found. */
	HOOK(&r, env_alice, NULL, 0, "-d", "-c", conf, "-u", "--", SH, "-c",
	    "exit 5");
	ck_assert_int_eq(r.status, 5);
	ck_assert_ptr_nonnull(strstr(r.err, "needs an argument"));
	run_free(&r);
	assert_no_event(evfd);

	/* A stray argument before `--'. */
	HOOK(&r, env_alice, NULL, 0, "-c", conf, "stray", "--", SH, "-c",
	    "exit 0");
	ck_assert_int_eq(r.status, 0);
	run_free(&r);
	assert_no_event(evfd);
}
END_TEST

START_TEST(test_agent_not_found)
{
	char marker[PATH_MAX], script[PATH_MAX + 64];
	struct run r;

	tpath(marker, "ran");
	snprintf(script, sizeof(script), "echo ran > %s", marker);

	/* The `--' was forgotten: the agent is not run, mail deferred. */
	HOOK(&r, env_alice, "mail\n", 5, "-c", conf, "-u", "alice", SH, "-c",
	    script);
	ck_assert_int_eq(r.status, 75);
	ck_assert(!exists(marker));
	ck_assert_ptr_nonnull(strstr(r.err, "no -- before the delivery agent"));
	ck_assert_ptr_nonnull(strstr(r.err, "(mail deferred)"));
	run_free(&r);

	/* Broken options and no `--'. */
	HOOK(&r, env_alice, NULL, 0, "-x", "-t", "bogus", SH, "-c", script);
	ck_assert_int_eq(r.status, 75);
	ck_assert(!exists(marker));
	ck_assert_uint_gt(r.errlen, 0);
	run_free(&r);

	/* `--' and nothing after it. */
	HOOK(&r, env_alice, NULL, 0, "-c", conf, "-u", "alice", "--");
	ck_assert_int_eq(r.status, 75);
	ck_assert_ptr_nonnull(strstr(r.err, "no delivery agent after --"));
	run_free(&r);
	assert_no_event(evfd);
}
END_TEST

START_TEST(test_usage_standalone)
{
	struct run r;

	HOOK(&r, env_alice, NULL, 0, "-h");
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "usage: mailpush-hook"));
	ck_assert_uint_eq(r.errlen, 0);
	run_free(&r);

	HOOK(&r, env_alice, NULL, 0, "-c", conf, "-x");
	ck_assert_int_eq(r.status, 64);
	ck_assert_ptr_nonnull(strstr(r.err, "unknown option -x"));
	ck_assert_ptr_nonnull(strstr(r.err, "usage:"));
	run_free(&r);

	HOOK(&r, env_alice, NULL, 0, "-c", conf, "-t", "later");
	ck_assert_int_eq(r.status, 64);
	ck_assert_ptr_nonnull(strstr(r.err, "-t"));
	run_free(&r);

	HOOK(&r, env_alice, NULL, 0, "-c", conf, "-m");
	ck_assert_int_eq(r.status, 64);
	ck_assert_ptr_nonnull(strstr(r.err, "needs an argument"));
	run_free(&r);

	HOOK(&r, env_bare, NULL, 0, "-c", conf);
	ck_assert_int_eq(r.status, 64);
	ck_assert_ptr_nonnull(strstr(r.err, "no user"));
	run_free(&r);
	assert_no_event(evfd);
}
END_TEST

/* timeout: the daemon is never a reason to wait long or to fail */

START_TEST(test_timeout_no_socket)
{
	char nx[PATH_MAX];
	struct run r;

	tpath(nx, "none.sock");
	HOOK(&r, env_alice, NULL, 0, "-c", conf, "-s", nx, "-t", "100ms",
	    "--", SH, "-c", "exit 0");
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(r.secs < 1.0, "took %.3f s", r.secs);
	assert_silent(&r);	/* logged to syslog only */
	run_free(&r);

	HOOK(&r, env_alice, NULL, 0, "-d", "-c", conf, "-s", nx, "--", SH,
	    "-c", "exit 0");
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(r.secs < 1.0, "took %.3f s", r.secs);
	ck_assert_ptr_nonnull(strstr(r.err, "cannot notify mailpushd at "));
	ck_assert_ptr_nonnull(strstr(r.err, " for alice: No such file or "
	    "directory (mail delivered, no push)\n"));
	/* Exactly one line. */
	ck_assert_ptr_eq(strchr(r.err, '\n'), r.err + r.errlen - 1);
	run_free(&r);

	/* Standalone: still 0. */
	HOOK(&r, env_alice, NULL, 0, "-d", "-c", conf, "-s", nx);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.err, "(no push)"));
	run_free(&r);
}
END_TEST

START_TEST(test_timeout_stale_socket)
{
	char stale[PATH_MAX];
	struct run r;
	int fd;

	/* The socket file exists, nobody is bound to it any more. */
	tpath(stale, "stale.sock");
	fd = bind_dgram(stale);
	close(fd);
	ck_assert(exists(stale));
	HOOK(&r, env_alice, NULL, 0, "-d", "-c", conf, "-s", stale, "-t", "5s",
	    "--", SH, "-c", "exit 0");
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(r.secs < 1.0, "took %.3f s", r.secs);
	ck_assert_ptr_nonnull(strstr(r.err, "Connection refused"));
	run_free(&r);
}
END_TEST

START_TEST(test_timeout_full_socket)
{
	struct run r;

	fill_socket(evpath);
	HOOK(&r, env_alice, NULL, 0, "-c", conf, "-t", "100ms", "--", SH,
	    "-c", "exit 0");
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(r.secs >= 0.099 && r.secs < 1.0, "took %.3f s", r.secs);
	assert_silent(&r);
	run_free(&r);

	/* The agent's status survives the timeout; -d shows the one line. */
	HOOK(&r, env_alice, NULL, 0, "-d", "-c", conf, "-t", "100ms", "--",
	    SH, "-c", "exec /bin/cat >/dev/null", "sh");
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(r.secs < 1.0, "took %.3f s", r.secs);
	ck_assert_ptr_nonnull(strstr(r.err, "timed out after 100ms"));
	ck_assert_ptr_nonnull(strstr(r.err, "(mail delivered, no push)\n"));
	ck_assert_ptr_eq(strchr(r.err, '\n'), r.err + r.errlen - 1);
	run_free(&r);

	/* The default timeout (100 ms) holds as well. */
	HOOK(&r, env_alice, NULL, 0, "-s", evpath, "-c", conf);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(r.secs >= 0.099 && r.secs < 1.0, "took %.3f s", r.secs);
	run_free(&r);
}
END_TEST

START_TEST(test_full_socket_drains)
{
	struct mp_event ev;
	uint8_t buf[64];
	struct run r;

	/* A slow daemon that reads within the timeout gets the event. */
	fill_socket(evpath);
	HOOK_START(&r, env_alice, NULL, 0, "-d", "-c", conf, "-t", "5s", "--",
	    SH, "-c", "exit 0");
	poll(NULL, 0, 300);
	ck_assert_int_eq(recv(evfd, buf, sizeof(buf), MSG_DONTWAIT), 1);
	hook_reap(&r);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(r.secs >= 0.29 && r.secs < 3.0, "took %.3f s", r.secs);
	ck_assert_msg(r.errlen == 0, "stderr: %s", r.err);
	run_free(&r);
	ck_assert_int_eq(recv_event(evfd, &ev, 1000), 0);
	ck_assert_str_eq(ev.user, "alice");
}
END_TEST

Suite *
make_hook_suite(void)
{
	Suite *s = suite_create("hook");
	TCase *tc;

	tc = tcase_create("core");
	tcase_add_unchecked_fixture(tc, tcase_setup, tcase_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_status_passthrough);
	tcase_add_test(tc, test_signal_is_tempfail);
	tcase_add_test(tc, test_exec_failure);
	tcase_add_test(tc, test_stdin_10mb);
	tcase_add_test(tc, test_stdin_every_byte);
	tcase_add_test(tc, test_stdin_empty);
	tcase_add_test(tc, test_argv_env_passthrough);
	tcase_add_test(tc, test_event_wrapper);
	tcase_add_test(tc, test_event_standalone);
	tcase_add_test(tc, test_user_from_environment);
	suite_add_tcase(s, tc);

	tc = tcase_create("config");
	tcase_add_unchecked_fixture(tc, tcase_setup, tcase_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_ini_sockets);
	tcase_add_test(tc, test_s_overrides_ini);
	tcase_add_test(tc, test_ini_timeout_honoured);
	tcase_add_test(tc, test_t_overrides_ini);
	tcase_add_test(tc, test_no_file_needed);
	tcase_add_test(tc, test_broken_ini_wrapper);
	tcase_add_test(tc, test_bad_options_wrapper);
	tcase_add_test(tc, test_agent_not_found);
	tcase_add_test(tc, test_usage_standalone);
	suite_add_tcase(s, tc);

	tc = tcase_create("timeout");
	tcase_add_unchecked_fixture(tc, tcase_setup, tcase_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_timeout_no_socket);
	tcase_add_test(tc, test_timeout_stale_socket);
	tcase_add_test(tc, test_timeout_full_socket);
	tcase_add_test(tc, test_full_socket_drains);
	suite_add_tcase(s, tc);
	return s;
}
