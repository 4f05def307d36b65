/*
 * redis.c: a real redis-server for the tests (redis.h).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "redis.h"

int
redis_available(void)
{
	return access(REDIS_SERVER, X_OK) == 0;
}

int
redis_prepare(struct redis_proc *r)
{
	memset(r, 0, sizeof(*r));
	r->pid = -1;
	snprintf(r->dir, sizeof(r->dir), "/tmp/mailpush-redis.XXXXXX");
	if (mkdtemp(r->dir) == NULL)
		return -1;
	snprintf(r->sock, sizeof(r->sock), "%s/redis.sock", r->dir);
	snprintf(r->log, sizeof(r->log), "%s/redis.log", r->dir);
	return 0;
}

static int
redis_connect(const struct redis_proc *r)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", r->sock);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Send a command, read one reply line (into line) within 2 s. */
static int
redis_call(int fd, const void *cmd, size_t len, char *line, size_t linelen)
{
	uint64_t until = now_ms() + 2000;
	size_t off = 0;

	if (write(fd, cmd, len) != (ssize_t)len)
		return -1;
	while (now_ms() < until && off < linelen - 1) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if ((n = read(fd, line + off, 1)) <= 0)
			return -1;
		off++;
		if (off >= 2 && line[off - 2] == '\r' && line[off - 1] == '\n') {
			line[off - 2] = '\0';
			return 0;
		}
	}
	return -1;
}

int
redis_start(struct redis_proc *r)
{
	char port[16], *argv[64], words[4][160], *w, *save;
	char line[128];
	uint64_t until;
	int i, n = 0, fd;

	snprintf(port, sizeof(port), "%d", r->port);
	argv[n++] = (char *)REDIS_SERVER;
	argv[n++] = (char *)"--port";
	argv[n++] = port;
	argv[n++] = (char *)"--bind";
	argv[n++] = (char *)"127.0.0.1";
	argv[n++] = (char *)"--unixsocket";
	argv[n++] = r->sock;
	argv[n++] = (char *)"--unixsocketperm";
	argv[n++] = (char *)"700";
	argv[n++] = (char *)"--save";
	argv[n++] = (char *)"";
	argv[n++] = (char *)"--appendonly";
	argv[n++] = (char *)"no";
	argv[n++] = (char *)"--dir";
	argv[n++] = r->dir;
	argv[n++] = (char *)"--logfile";
	argv[n++] = r->log;
	/* redis-server takes an option's words as separate arguments */
	for (i = 0; i < r->n_extra && i < 4; i++) {
		argv[n++] = (char *)"--user";
		snprintf(words[i], sizeof(words[i]), "%s", r->extra[i]);
		for (w = strtok_r(words[i], " ", &save); w != NULL && n < 62;
		    w = strtok_r(NULL, " ", &save))
			argv[n++] = w;
	}
	argv[n] = NULL;
	if ((r->pid = spawn_cmd(argv, NULL, NULL)) == -1)
		return -1;
	until = now_ms() + 5000;
	while (now_ms() < until) {
		if ((fd = redis_connect(r)) != -1) {
			i = redis_call(fd, "PING\r\n", 6, line, sizeof(line));
			close(fd);
			if (i == 0 && (strcmp(line, "+PONG") == 0 ||
			    strncmp(line, "-NOAUTH", 7) == 0))
				return 0;
		}
		usleep(10000);
	}
	return -1;
}

void
redis_kill(struct redis_proc *r)
{
	if (r->pid > 0) {
		kill(r->pid, SIGKILL);
		waitpid(r->pid, NULL, 0);
	}
	r->pid = -1;
}

void
redis_cleanup(struct redis_proc *r)
{
	char cmd[128];

	redis_kill(r);
	if (r->dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", r->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", r->dir);
	}
	r->dir[0] = '\0';
}

static size_t
resp_arg(char *out, size_t off, size_t cap, const void *arg, size_t len)
{
	int n = snprintf(out + off, cap - off, "$%zu\r\n", len);

	off += (size_t)n;
	if (off + len + 2 > cap)
		return cap;
	memcpy(out + off, arg, len);
	memcpy(out + off + len, "\r\n", 2);
	return off + len + 2;
}

long long
redis_publish(const struct redis_proc *r, const char *user,
    const char *password, const char *channel, const void *buf, size_t len)
{
	size_t cap = len + 512, off;
	char *cmd, line[256];
	long long rc = -1;
	int fd;

	if ((fd = redis_connect(r)) == -1 || (cmd = malloc(cap)) == NULL) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (user != NULL) {
		off = (size_t)snprintf(cmd, cap, "*3\r\n");
		off = resp_arg(cmd, off, cap, "AUTH", 4);
		off = resp_arg(cmd, off, cap, user, strlen(user));
		off = resp_arg(cmd, off, cap, password, strlen(password));
		if (redis_call(fd, cmd, off, line, sizeof(line)) != 0 ||
		    strcmp(line, "+OK") != 0)
			goto out;
	}
	off = (size_t)snprintf(cmd, cap, "*3\r\n");
	off = resp_arg(cmd, off, cap, "PUBLISH", 7);
	off = resp_arg(cmd, off, cap, channel, strlen(channel));
	off = resp_arg(cmd, off, cap, buf, len);
	if (off < cap && redis_call(fd, cmd, off, line, sizeof(line)) == 0 &&
	    line[0] == ':')
		rc = strtoll(line + 1, NULL, 10);
out:
	free(cmd);
	close(fd);
	return rc;
}
