/*
 * harness.c: see harness.h.  Everything here uses the real programs and
 * real sockets; nothing is simulated.  The raw protocol client (tc_*) is
 * in tclient.c.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "event.h"
#include "harness.h"

uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

long
rss_kib(pid_t pid)
{
	char path[64], line[256];
	FILE *fp;
	long kib = -1;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(fp);
	return kib;
}

int
mpd_free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd, port = -1;

	/* a port free on both 127.0.0.1 and ::1 */
	for (int tries = 0; tries < 50 && port == -1; tries++) {
		struct sockaddr_in6 sin6;
		int fd6;

		fd = socket(AF_INET, SOCK_DGRAM, 0);
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
		    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
			close(fd);
			continue;
		}
		fd6 = socket(AF_INET6, SOCK_DGRAM, 0);
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_addr = in6addr_loopback;
		sin6.sin6_port = sin.sin_port;
		if (bind(fd6, (struct sockaddr *)&sin6, sizeof(sin6)) == 0)
			port = ntohs(sin.sin_port);
		close(fd6);
		close(fd);
	}
	return port;
}

int
write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	size_t len = strlen(text);

	if (fd == -1)
		return -1;
	if (write(fd, text, len) != (ssize_t)len || fchmod(fd, mode) == -1) {
		close(fd);
		return -1;
	}
	return close(fd);
}

int
mpd_rewrite(struct mpd_proc *p, const char *extra)
{
	char text[8192];

	snprintf(text, sizeof(text),
	    "[mailpushd]\n"
	    "user =\n"
	    "listen = 127.0.0.1:%d [::1]:%d\n"
	    "key_file = %s\n"
	    "state_file = %s\n"
	    "control_socket = %s\n"
	    "\n[events]\n"
	    "socket = %s\n"
	    "%s\n",
	    p->port, p->port, p->key_file, p->state, p->control, p->events,
	    extra ? extra : "");
	return write_text(p->conf, text, 0644);
}

/* Waits are longer when the daemon runs under valgrind. */
static uint64_t
slow(uint64_t ms)
{
	return getenv("MP_VALGRIND") != NULL ? ms * 4 : ms;
}

int
mpd_wait_ready(struct mpd_proc *p, int ms)
{
	uint64_t until = now_ms() + slow((uint64_t)ms);

	while (now_ms() < until) {
		struct sockaddr_un sun;
		int fd, status;

		if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
			p->pid = -1;
			return -1;
		}
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", p->control);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			close(fd);
			/* the control socket is made before the loop runs; a
			 * status request proves the loop is up (2: up, with
			 * a problem to report, such as a read-only state
			 * directory a test made on purpose) */
			status = mpd_ctl(p, NULL, 0, "status", NULL);
			if (status == 0 || status == 2)
				return 0;
		} else
			close(fd);
		usleep(10000);
	}
	return -1;
}

int
mpd_start(struct mpd_proc *p)
{
	int fd;

	if ((p->pid = fork()) == -1)
		return -1;
	if (p->pid == 0) {
		/* a test that fails exits without teardown: take the
		 * daemon with it */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if ((fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0644))
		    == -1)
			_exit(127);
		dup2(fd, 2);
		dup2(fd, 1);
		close(fd);
		/* make valgrind: the daemon under memcheck; any error or
		 * leak makes it exit 99, which mpd_cleanup turns into a
		 * failed test */
		if (getenv("MP_VALGRIND") != NULL)
			execlp("valgrind", "valgrind", "-q",
			    "--error-exitcode=99", "--leak-check=full",
			    "--show-leak-kinds=definite,indirect",
			    "--errors-for-leak-kinds=definite,indirect",
			    BUILDDIR "/mailpushd", "-d", "-v", "-c", p->conf,
			    (char *)NULL);
		if (getenv("MP_VALGRIND") != NULL) {
			fprintf(stderr, "MP_VALGRIND is set but valgrind "
			    "cannot be run\n");
			_exit(127);
		}
		execl(BUILDDIR "/mailpushd", "mailpushd", "-d", "-v", "-c",
		    p->conf, (char *)NULL);
		_exit(127);
	}
	return mpd_wait_ready(p, 5000);
}

int
mpd_prepare(struct mpd_proc *p)
{
	char hex[2 * MP_KEY_LEN + 2];

	memset(p, 0, sizeof(*p));
	p->pid = -1;
	if (sodium_init() < 0)
		return -1;
	snprintf(p->dir, sizeof(p->dir), "/tmp/mailpush-test.XXXXXX");
	if (mkdtemp(p->dir) == NULL)
		return -1;
	chmod(p->dir, 0755);
	snprintf(p->conf, sizeof(p->conf), "%s/mailpushd.conf", p->dir);
	snprintf(p->log, sizeof(p->log), "%s/mailpushd.log", p->dir);
	snprintf(p->key_file, sizeof(p->key_file), "%s/key", p->dir);
	snprintf(p->state, sizeof(p->state), "%s/state", p->dir);
	snprintf(p->control, sizeof(p->control), "%s/control.sock", p->dir);
	snprintf(p->events, sizeof(p->events), "%s/event.sock", p->dir);
	if ((p->port = mpd_free_port()) == -1)
		return -1;
	randombytes_buf(p->key, sizeof(p->key));
	sodium_bin2hex(hex, sizeof(hex), p->key, sizeof(p->key));
	strcat(hex, "\n");
	return write_text(p->key_file, hex, 0600);
}

int
mpd_setup(struct mpd_proc *p, const char *extra)
{
	if (mpd_prepare(p) == -1 || mpd_rewrite(p, extra) == -1)
		return -1;
	return mpd_start(p);
}

int
mpd_signal(struct mpd_proc *p, int sig)
{
	return p->pid > 0 ? kill(p->pid, sig) : -1;
}

/* SIGSTOP, then wait (up to 1 s) until the kernel shows it stopped, so
 * that whatever is sent meanwhile is read in one go after SIGCONT. */
int
mpd_pause(struct mpd_proc *p)
{
	char path[64], st[512];
	FILE *fp;
	int i;

	if (mpd_signal(p, SIGSTOP) != 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)p->pid);
	for (i = 0; i < 200; i++) {
		if ((fp = fopen(path, "r")) == NULL)
			return -1;
		if (fgets(st, sizeof(st), fp) == NULL)
			st[0] = '\0';
		fclose(fp);
		if (strstr(st, ") T ") != NULL)
			return 0;
		usleep(5000);
	}
	return -1;
}

int
mpd_stop(struct mpd_proc *p)
{
	uint64_t until = now_ms() + slow(5000);
	int status;

	if (p->pid <= 0)
		return -1;
	kill(p->pid, SIGTERM);
	while (now_ms() < until) {
		if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
			p->pid = -1;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 +
			    WTERMSIG(status);
		}
		usleep(5000);
	}
	kill(p->pid, SIGKILL);
	waitpid(p->pid, &status, 0);
	p->pid = -1;
	return -1;
}

void
mpd_cleanup(struct mpd_proc *p)
{
	char cmd[160];
	int rc = 0, reports;

	if (p->pid > 0)
		rc = mpd_stop(p);
	/* a daemon that valgrind or a sanitizer complained about fails the
	 * test that ran it, whatever the test itself asserted */
	reports = mpd_log_count(p, "ERROR: AddressSanitizer") +
	    mpd_log_count(p, "ERROR: LeakSanitizer") +
	    mpd_log_count(p, "runtime error:");
	if (rc == 99 || reports > 0) {
		fprintf(stderr, "mailpushd in %s: %s; its log:\n", p->dir,
		    rc == 99 ? "valgrind found errors" : "sanitizer report");
		snprintf(cmd, sizeof(cmd), "cat '%s' >&2", p->log);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot show %s\n", p->log);
		abort();
	}
	if (p->dir[0] != '\0' && getenv("MP_KEEP_TEST_DIRS") == NULL) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", p->dir);
	}
}

void
drain_fd(int fd, char *buf, size_t len, size_t *off)
{
	ssize_t n;
	char scratch[4096];

	for (;;) {
		if (buf != NULL && *off + 1 < len)
			n = read(fd, buf + *off, len - 1 - *off);
		else
			n = read(fd, scratch, sizeof(scratch));
		if (n <= 0)
			return;
		if (buf != NULL && *off + 1 < len) {
			*off += (size_t)n;
			buf[*off] = '\0';
		}
	}
}

int
run_cmd(char *const argv[], char *out, size_t outlen, char *err,
    size_t errlen, int timeout_ms)
{
	int op[2], ep[2], status;
	size_t ooff = 0, eoff = 0;
	uint64_t until = now_ms() + (uint64_t)timeout_ms;
	pid_t pid;

	if (out && outlen)
		out[0] = '\0';
	if (err && errlen)
		err[0] = '\0';
	if (pipe2(op, O_CLOEXEC) == -1 || pipe2(ep, O_CLOEXEC) == -1)
		return -1;
	if ((pid = fork()) == 0) {
		dup2(op[1], 1);
		dup2(ep[1], 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(op[1]);
	close(ep[1]);
	fcntl(op[0], F_SETFL, O_NONBLOCK);
	fcntl(ep[0], F_SETFL, O_NONBLOCK);
	for (;;) {
		struct pollfd pfd[2] = { { op[0], POLLIN, 0 },
		    { ep[0], POLLIN, 0 } };
		uint64_t now = now_ms();

		if (now >= until) {
			kill(pid, SIGKILL);
			break;
		}
		poll(pfd, 2, (int)(until - now));
		drain_fd(op[0], out, outlen, &ooff);
		drain_fd(ep[0], err, errlen, &eoff);
		if ((pfd[0].revents & POLLHUP) && (pfd[1].revents & POLLHUP))
			break;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			drain_fd(op[0], out, outlen, &ooff);
			drain_fd(ep[0], err, errlen, &eoff);
			close(op[0]);
			close(ep[0]);
			return WIFEXITED(status) ? WEXITSTATUS(status) :
			    128 + WTERMSIG(status);
		}
	}
	close(op[0]);
	close(ep[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int
mpd_ctl(struct mpd_proc *p, char *out, size_t outlen, ...)
{
	char *argv[16], err[1024];
	va_list ap;
	int argc = 0, rc;

	argv[argc++] = (char *)BUILDDIR "/mailpushctl";
	argv[argc++] = (char *)"-c";
	argv[argc++] = p->conf;
	va_start(ap, outlen);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	rc = run_cmd(argv, out, outlen, err, sizeof(err), 10000);
	if (rc != 0 && getenv("MP_TEST_VERBOSE"))
		fprintf(stderr, "mailpushctl: %s", err);
	return rc;
}

long long
mpd_stat(struct mpd_proc *p, const char *name)
{
	static char out[65536];
	char *s;
	size_t n = strlen(name);

	if (mpd_ctl(p, out, sizeof(out), "stats", NULL) != 0)
		return -1;
	for (s = out; (s = strstr(s, name)) != NULL; s += n)
		if ((s == out || s[-1] == '\n') && s[n] == ' ')
			return strtoll(s + n, NULL, 10);
	return -1;
}

int
mpd_log_count(struct mpd_proc *p, const char *needle)
{
	FILE *fp = fopen(p->log, "r");
	char line[4096];
	int n = 0;

	if (fp == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strstr(line, needle) != NULL)
			n++;
	fclose(fp);
	return n;
}

int
mpd_log_wait(struct mpd_proc *p, const char *needle, int n, int ms)
{
	uint64_t until = now_ms() + (uint64_t)ms;

	do {
		if (mpd_log_count(p, needle) >= n)
			return 0;
		usleep(10000);
	} while (now_ms() < until);
	return -1;
}

void
mpd_token(const struct mpd_proc *p, const char *user,
    uint8_t token[MP_TOKEN_LEN])
{
	proto_token(p->key, user, strlen(user), token);
}

int
mpd_write_token(const struct mpd_proc *p, const char *user, const char *path)
{
	uint8_t token[MP_TOKEN_LEN];
	char hex[2 * MP_TOKEN_LEN + 2];

	mpd_token(p, user, token);
	sodium_bin2hex(hex, sizeof(hex), token, sizeof(token));
	strcat(hex, "\n");
	return write_text(path, hex, 0600);
}

int
mpd_hook(struct mpd_proc *p, const char *user, const char *mailbox)
{
	char *argv[] = { (char *)BUILDDIR "/mailpush-hook", (char *)"-c",
	    p->conf, (char *)"-u", (char *)user, (char *)"-m",
	    (char *)mailbox, NULL };

	return run_cmd(argv, NULL, 0, NULL, 0, 5000);
}

int
mpd_event(struct mpd_proc *p, const char *user, const char *mailbox,
    unsigned count)
{
	struct sockaddr_un sun;
	struct mp_event ev;
	uint8_t buf[EVENT_MAX_LEN];
	const char *why;
	int fd, n, rc;

	if (event_set(&ev, user, mailbox, count, 0, &why) != 0 ||
	    (n = event_encode(&ev, buf, sizeof(buf), &why)) < 0)
		return -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", p->events);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM, 0)) == -1)
		return -1;
	rc = sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&sun,
	    sizeof(sun)) == n ? 0 : -1;
	close(fd);
	return rc;
}

/* Additions for the registration and push suites. */

pid_t
spawn_cmd(char *const argv[], int *out_fd, int *err_fd)
{
	int op[2] = { -1, -1 }, ep[2] = { -1, -1 }, fd;
	pid_t pid;

	if ((out_fd && pipe2(op, O_CLOEXEC) == -1) ||
	    (err_fd && pipe2(ep, O_CLOEXEC) == -1))
		return -1;
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if ((fd = open("/dev/null", O_RDWR)) == -1)
			_exit(127);
		dup2(fd, 0);
		dup2(out_fd ? op[1] : fd, 1);
		dup2(err_fd ? ep[1] : fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	if (out_fd) {
		close(op[1]);
		fcntl(op[0], F_SETFL, O_NONBLOCK);
		*out_fd = op[0];
	}
	if (err_fd) {
		close(ep[1]);
		fcntl(ep[0], F_SETFL, O_NONBLOCK);
		*err_fd = ep[0];
	}
	return pid;
}

int
wait_cmd(pid_t pid, int ms)
{
	uint64_t until = now_ms() + (uint64_t)ms;
	int status;

	do {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) :
			    128 + WTERMSIG(status);
		usleep(2000);
	} while (now_ms() < until);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

int
read_until(int fd, char *buf, size_t len, size_t *off, const char *needle,
    int ms)
{
	uint64_t until = now_ms() + (uint64_t)ms, now;

	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;

		buf[*off] = '\0';
		if (strstr(buf, needle) != NULL)
			return 0;
		if ((now = now_ms()) >= until)
			return -1;
		if (poll(&pfd, 1, (int)(until - now)) <= 0)
			continue;
		if (*off + 1 >= len)
			return -1;
		n = read(fd, buf + *off, len - 1 - *off);
		if (n == 0)		/* end of file: nothing more comes */
			return strstr(buf, needle) != NULL ? 0 : -1;
		if (n > 0)
			*off += (size_t)n;
	}
}

int
run_cmd_input(char *const argv[], const char *input, char *out,
    size_t outlen, char *err, size_t errlen, int timeout_ms)
{
	size_t len = strlen(input);
	int ip[2], save, rc;

	/* the input must fit in the pipe: it is written before the start */
	if (len > 65536 || pipe(ip) == -1)
		return -1;
	if (write(ip[1], input, len) != (ssize_t)len) {
		close(ip[0]);
		close(ip[1]);
		return -1;
	}
	close(ip[1]);
	save = dup(0);
	dup2(ip[0], 0);
	close(ip[0]);
	rc = run_cmd(argv, out, outlen, err, errlen, timeout_ms);
	dup2(save, 0);
	close(save);
	return rc;
}

int
sanitizer_report(const char *text)
{
	static const char *const marks[] = { "ERROR: AddressSanitizer",
	    "ERROR: LeakSanitizer", "runtime error:",
	    "SUMMARY: UndefinedBehaviorSanitizer" };
	size_t i;

	for (i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
		if (strstr(text, marks[i]) != NULL)
			return 1;
	return 0;
}

int
mpd_finish(struct mpd_proc *p)
{
	FILE *fp;
	char line[4096];
	int status = 0, bad = 0;

	if (p->pid > 0)
		status = mpd_stop(p);
	if ((fp = fopen(p->log, "r")) != NULL) {
		while (fgets(line, sizeof(line), fp) != NULL)
			if (sanitizer_report(line)) {
				if (bad++ == 0)
					fprintf(stderr, "%s:\n", p->log);
				fputs(line, stderr);
			}
		fclose(fp);
	}
	if (status != 0)
		fprintf(stderr, "mailpushd exited with status %d (log %s)\n",
		    status, p->log);
	if (bad || status != 0) {
		fprintf(stderr, "keeping %s\n", p->dir);
		return -1;
	}
	mpd_cleanup(p);
	return 0;
}

int
mpd_list(struct mpd_proc *p, const char *user, char *out, size_t outlen)
{
	char *s;
	int n = 0;

	if (mpd_ctl(p, out, outlen, "list", user, NULL) != 0)
		return -1;
	/* one line per registration, or "no registrations" */
	if (strstr(out, "no registrations") != NULL)
		return 0;
	for (s = out; *s != '\0'; s++)
		if (*s == '\n')
			n++;
	return n;
}

int
mpd_stat_wait(struct mpd_proc *p, const char *name, long long value, int ms)
{
	uint64_t until = now_ms() + (uint64_t)ms;

	do {
		if (mpd_stat(p, name) >= value)
			return 0;
		usleep(10000);
	} while (now_ms() < until);
	return -1;
}
