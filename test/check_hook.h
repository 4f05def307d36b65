/*
 * check_hook.h: the fixture of the mailpush-hook suites (check_hook.c,
 * check_hookconf.c): the real binary run as Postfix runs it (bare
 * environment, PATH=/usr/bin:/bin, no HOME) with its output collected,
 * a datagram socket the test binds in a temp directory and what arrives
 * on it, and a directory per TCase and per test.
 */
#ifndef CHECK_HOOK_H
#define CHECK_HOOK_H

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

static inline void
tpath(char *buf, const char *name)
{
	int n = snprintf(buf, PATH_MAX, "%s/%s", tmp, name);

	ck_assert(n > 0 && n < PATH_MAX);
}

static inline void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fputs(text, fp) >= 0, 1);
	ck_assert_int_eq(fclose(fp), 0);
}

static inline char *
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

static inline int
exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static inline double
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
static inline void
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
static inline void
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

static inline void
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

static inline int
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
static inline int
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
static inline void
assert_no_event(int fd)
{
	uint8_t buf[2048];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	ck_assert_msg(n == -1 && errno == EAGAIN, "an event was sent (%zd "
	    "bytes)", n);
}

static inline void
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

static inline void
assert_silent(const struct run *r)
{
	ck_assert_msg(r->outlen == 0, "stdout: %s", r->out);
	ck_assert_msg(r->errlen == 0, "stderr: %s", r->err);
}

/*
 * Fill the receive queue of the socket at path until a fresh sender gets
 * EAGAIN, which is what the hook will see.  The fillers stay open.
 */
static inline void
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

static inline int
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
static inline void
tcase_setup(void)
{
	snprintf(base, sizeof(base), "/tmp/mp-hook-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(base));
}

static inline void
tcase_teardown(void)
{
	if (base[0] != '\0')
		nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	base[0] = '\0';
}

static inline void
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

static inline void
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

#endif
