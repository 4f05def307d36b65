/*
 * ops.c: see ops.h.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "ops.h"

ssize_t
read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t off = 0;
	ssize_t n;

	if (fd == -1)
		return -1;
	while (off + 1 < len && (n = read(fd, buf + off, len - 1 - off)) > 0)
		off += (size_t)n;
	close(fd);
	buf[off] = '\0';
	return (ssize_t)off;
}

int
ops_write_config(struct mpd_proc *p, const char *mainsect, const char *extra)
{
	char text[8192], def[256];

	snprintf(def, sizeof(def), "user =\nlisten = 127.0.0.1:%d [::1]:%d\n",
	    p->port, p->port);
	snprintf(text, sizeof(text),
	    "[mailpushd]\n"
	    "%s"
	    "key_file = %s\n"
	    "state_file = %s\n"
	    "control_socket = %s\n"
	    "\n[events]\n"
	    "socket = %s\n"
	    "%s\n",
	    mainsect ? mainsect : def, p->key_file, p->state, p->control,
	    p->events, extra ? extra : "");
	return write_text(p->conf, text, 0644);
}

int
ops_prepare(struct mpd_proc *p, const char *mainsect, const char *extra)
{
	if (mpd_prepare(p) == -1)
		return -1;
	return ops_write_config(p, mainsect, extra);
}

static void
become(uid_t uid, gid_t gid)
{
	if (setgroups(0, NULL) == -1 || setresgid(gid, gid, gid) == -1 ||
	    setresuid(uid, uid, uid) == -1)
		_exit(126);
}

int
ops_start_as(struct mpd_proc *p, uid_t uid, gid_t gid)
{
	uint64_t until;
	int fd, status;

	if ((p->pid = fork()) == -1)
		return -1;
	if (p->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if ((fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0644))
		    == -1)
			_exit(127);
		dup2(fd, 2);
		dup2(fd, 1);
		close(fd);
		become(uid, gid);
		execl(BUILDDIR "/mailpushd", "mailpushd", "-d", "-v", "-c",
		    p->conf, (char *)NULL);
		_exit(127);
	}
	until = now_ms() + 5000;
	while (now_ms() < until) {
		if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
			p->pid = -1;
			return -1;
		}
		if (mpd_ctl(p, NULL, 0, "status", NULL) == 0)
			return 0;
		usleep(10000);
	}
	return -1;
}

int
ops_run_as(uid_t uid, gid_t gid, char *const argv[], char *out,
    size_t outlen, char *err, size_t errlen, int timeout_ms)
{
	int op[2], ep[2], status;
	size_t ooff = 0, eoff = 0;
	uint64_t until = now_ms() + (uint64_t)timeout_ms;
	pid_t pid;

	if (out && outlen)
		out[0] = '\0';
	if (err && errlen)
		err[0] = '\0';
	if (pipe2(op, O_CLOEXEC) == -1)
		return -1;
	if (pipe2(ep, O_CLOEXEC) == -1) {
		close(op[0]);
		close(op[1]);
		return -1;
	}
	if ((pid = fork()) == 0) {
		dup2(op[1], 1);
		dup2(ep[1], 2);
		become(uid, gid);
		execv(argv[0], argv);
		_exit(127);
	}
	close(op[1]);
	close(ep[1]);
	fcntl(op[0], F_SETFL, O_NONBLOCK);
	fcntl(ep[0], F_SETFL, O_NONBLOCK);
	for (;;) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		if (now_ms() >= until) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		drain_fd(op[0], out, outlen, &ooff);
		drain_fd(ep[0], err, errlen, &eoff);
		usleep(2000);
	}
	drain_fd(op[0], out, outlen, &ooff);
	drain_fd(ep[0], err, errlen, &eoff);
	close(op[0]);
	close(ep[0]);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int
ops_mailpushd_fails(struct mpd_proc *p, char *err, size_t errlen)
{
	char *argv[] = { (char *)BUILDDIR "/mailpushd", (char *)"-d",
	    (char *)"-c", p->conf, NULL };

	return run_cmd(argv, NULL, 0, err, errlen, 5000);
}

int
ops_ctl(struct mpd_proc *p, char *out, size_t outlen, char *err,
    size_t errlen, ...)
{
	char *argv[16];
	va_list ap;
	int argc = 0, rc;

	argv[argc++] = (char *)BUILDDIR "/mailpushctl";
	argv[argc++] = (char *)"-c";
	argv[argc++] = p->conf;
	va_start(ap, errlen);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	rc = run_cmd(argv, out, outlen, err, errlen, 10000);
	/* a sanitizer's complaint about mailpushctl fails the caller */
	if (err != NULL && sanitizer_report(err)) {
		fprintf(stderr, "mailpushctl: %s", err);
		return 99;
	}
	return rc;
}

/* JSON */

struct jp {
	const char	*s;
	const char	*why;
	int		 depth;
};

static void
jp_ws(struct jp *j)
{
	while (*j->s == ' ' || *j->s == '\t' || *j->s == '\n' || *j->s == '\r')
		j->s++;
}

static int jp_value(struct jp *);

static int
jp_fail(struct jp *j, const char *why)
{
	j->why = why;
	return -1;
}

static int
jp_string(struct jp *j)
{
	if (*j->s != '"')
		return jp_fail(j, "string expected");
	for (j->s++; *j->s != '"'; j->s++) {
		unsigned char c = (unsigned char)*j->s;

		if (c == '\0')
			return jp_fail(j, "unterminated string");
		if (c < 0x20)
			return jp_fail(j, "control character in a string");
		if (c == '\\') {
			j->s++;
			if (*j->s == 'u') {
				int i;

				for (i = 1; i <= 4; i++)
					if (!isxdigit((unsigned char)j->s[i]))
						return jp_fail(j, "bad \\u escape");
				j->s += 4;
			} else if (strchr("\"\\/bfnrt", *j->s) == NULL ||
			    *j->s == '\0')
				return jp_fail(j, "bad escape");
		}
	}
	j->s++;
	return 0;
}

static int
jp_number(struct jp *j)
{
	if (*j->s == '-')
		j->s++;
	if (*j->s == '0')
		j->s++;
	else if (*j->s >= '1' && *j->s <= '9')
		while (isdigit((unsigned char)*j->s))
			j->s++;
	else
		return jp_fail(j, "bad number");
	if (*j->s == '.') {
		j->s++;
		if (!isdigit((unsigned char)*j->s))
			return jp_fail(j, "bad fraction");
		while (isdigit((unsigned char)*j->s))
			j->s++;
	}
	if (*j->s == 'e' || *j->s == 'E') {
		j->s++;
		if (*j->s == '+' || *j->s == '-')
			j->s++;
		if (!isdigit((unsigned char)*j->s))
			return jp_fail(j, "bad exponent");
		while (isdigit((unsigned char)*j->s))
			j->s++;
	}
	return 0;
}

static int
jp_container(struct jp *j, char close, int object)
{
	if (++j->depth > 64)
		return jp_fail(j, "nested too deep");
	j->s++;
	jp_ws(j);
	if (*j->s == close) {
		j->s++;
		j->depth--;
		return 0;
	}
	for (;;) {
		if (object) {
			if (jp_string(j) != 0)
				return -1;
			jp_ws(j);
			if (*j->s++ != ':')
				return jp_fail(j, "':' expected");
		}
		if (jp_value(j) != 0)
			return -1;
		jp_ws(j);
		if (*j->s == ',') {
			j->s++;
			jp_ws(j);
			continue;
		}
		if (*j->s == close) {
			j->s++;
			j->depth--;
			return 0;
		}
		return jp_fail(j, "',' or end of container expected");
	}
}

static int
jp_value(struct jp *j)
{
	jp_ws(j);
	switch (*j->s) {
	case '{':
		return jp_container(j, '}', 1);
	case '[':
		return jp_container(j, ']', 0);
	case '"':
		return jp_string(j);
	case 't':
		if (strncmp(j->s, "true", 4) == 0) {
			j->s += 4;
			return 0;
		}
		break;
	case 'f':
		if (strncmp(j->s, "false", 5) == 0) {
			j->s += 5;
			return 0;
		}
		break;
	case 'n':
		if (strncmp(j->s, "null", 4) == 0) {
			j->s += 4;
			return 0;
		}
		break;
	default:
		if (*j->s == '-' || isdigit((unsigned char)*j->s))
			return jp_number(j);
	}
	return jp_fail(j, "value expected");
}

int
json_check(const char *text, char *why, size_t whylen)
{
	struct jp j = { text, NULL, 0 };

	if (jp_value(&j) == 0) {
		jp_ws(&j);
		if (*j.s == '\0')
			return 0;
		j.why = "text after the value";
	}
	snprintf(why, whylen, "%s at offset %ld", j.why, (long)(j.s - text));
	return -1;
}

int
json_python(const char *text)
{
	char *argv[] = { (char *)"/usr/bin/python3", (char *)"-c",
	    (char *)"import json,sys; json.load(sys.stdin)", NULL };
	char err[1024];

	if (access(argv[0], X_OK) != 0)
		return -1;
	return run_cmd_input(argv, text, NULL, 0, err, sizeof(err), 10000)
	    == 0 ? 1 : 0;
}

static const char *
json_member(const char *text, const char *key)
{
	char pat[128];
	const char *s;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	if ((s = strstr(text, pat)) == NULL)
		return NULL;
	s += strlen(pat);
	while (*s == ' ')
		s++;
	return s;
}

int
json_num(const char *text, const char *key, long long *v)
{
	const char *s = json_member(text, key);
	char *end;

	if (s == NULL || !(*s == '-' || isdigit((unsigned char)*s)))
		return -1;
	*v = strtoll(s, &end, 10);
	return 0;
}

int
json_strval(const char *text, const char *key, char *out, size_t len)
{
	const char *s = json_member(text, key), *e;

	if (s == NULL)
		return -1;
	if (strncmp(s, "null", 4) == 0) {
		snprintf(out, len, "null");
		return 0;
	}
	if (*s != '"' || (e = strchr(s + 1, '"')) == NULL)
		return -1;
	snprintf(out, len, "%.*s", (int)(e - s - 1), s + 1);
	return 0;
}

int
proc_ids(pid_t pid, long uid[4], long gid[4], char *groups, size_t len)
{
	char path[64], line[512];
	FILE *fp;
	int got = 0;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (sscanf(line, "Uid: %ld %ld %ld %ld", &uid[0], &uid[1],
		    &uid[2], &uid[3]) == 4)
			got |= 1;
		else if (sscanf(line, "Gid: %ld %ld %ld %ld", &gid[0], &gid[1],
		    &gid[2], &gid[3]) == 4)
			got |= 2;
		else if (strncmp(line, "Groups:", 7) == 0) {
			char *s = line + 7;

			while (*s == ' ' || *s == '\t')
				s++;
			s[strcspn(s, "\n")] = '\0';
			while (*s != '\0' && s[strlen(s) - 1] == ' ')
				s[strlen(s) - 1] = '\0';
			snprintf(groups, len, "%s", s);
			got |= 4;
		}
	}
	fclose(fp);
	return got == 7 ? 0 : -1;
}

void
reg_hex(uint32_t id, char out[9])
{
	snprintf(out, 9, "%08x", id);
}
