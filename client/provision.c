/*
 * provision.c: provisioning over IMAP (provision.h) with libcurl.
 *
 * libcurl makes the connection, the TLS session (implicit for imaps://,
 * STARTTLS required for imap://), checks the certificate against the
 * system's store or the given CA file, and logs in.  Its custom-request
 * path cannot carry GETMETADATA: it passes on only untagged responses
 * named like the command, and the answer to GETMETADATA is "* METADATA".
 * So the transfer runs with CURLOPT_CONNECT_ONLY (libcurl stops after the
 * login) and the one command goes over curl_easy_send/curl_easy_recv on
 * that session; this file reads the one response (RFC 5464 section 4.4.1,
 * strings quoted or as literals) and nothing else of IMAP.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "keyfile.h"
#include "provision.h"

#define PROV_PREFIX	"/private/vendor/vendor.mailpush/"
#define PROV_TAG	"mp1"
#define PROV_RESP_MAX	16384		/* bytes of response we read */
#define PROV_PW_MAX	1024
#define PROV_CMD_SECS	30

static const char prov_command[] = PROV_TAG " GETMETADATA \"\" ("
    PROV_PREFIX "token " PROV_PREFIX "user " PROV_PREFIX "servers)\r\n";

static uint64_t
prov_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A lexer over the response bytes: atoms, strings, literals, parens. */
struct lex {
	const char	*p, *end;
};

enum { TK_END, TK_ERR, TK_LPAREN, TK_RPAREN, TK_ATOM, TK_STRING, TK_NIL,
	TK_EOL };

static int
lex_next(struct lex *lx, char *out, size_t outlen)
{
	size_t n = 0;

	while (lx->p < lx->end && *lx->p == ' ')
		lx->p++;
	if (lx->p >= lx->end)
		return TK_END;
	if (*lx->p == '\r' && lx->p + 1 < lx->end && lx->p[1] == '\n') {
		lx->p += 2;
		return TK_EOL;
	}
	if (*lx->p == '(' || *lx->p == ')')
		return *lx->p++ == '(' ? TK_LPAREN : TK_RPAREN;
	if (*lx->p == '"') {
		for (lx->p++; lx->p < lx->end && *lx->p != '"'; lx->p++) {
			if (*lx->p == '\\' && lx->p + 1 < lx->end)
				lx->p++;
			if (*lx->p == '\r' || *lx->p == '\n' || n + 1 >= outlen)
				return TK_ERR;
			out[n++] = *lx->p;
		}
		if (lx->p >= lx->end)
			return TK_ERR;
		lx->p++;
		out[n] = '\0';
		return TK_STRING;
	}
	if (*lx->p == '{') {
		unsigned long len = 0;

		for (lx->p++; lx->p < lx->end && *lx->p >= '0' &&
		    *lx->p <= '9'; lx->p++)
			if ((len = len * 10 + (unsigned long)(*lx->p - '0')) >
			    PROV_RESP_MAX)
				return TK_ERR;
		if (lx->p < lx->end && *lx->p == '+')
			lx->p++;
		if (lx->end - lx->p < 3 || memcmp(lx->p, "}\r\n", 3) != 0)
			return TK_ERR;
		lx->p += 3;
		if ((unsigned long)(lx->end - lx->p) < len || len + 1 > outlen ||
		    memchr(lx->p, '\0', len) != NULL)
			return TK_ERR;
		memcpy(out, lx->p, len);
		out[len] = '\0';
		lx->p += len;
		return TK_STRING;
	}
	while (lx->p < lx->end && *lx->p != ' ' && *lx->p != '(' &&
	    *lx->p != ')' && *lx->p != '\r') {
		if (n + 1 >= outlen)
			return TK_ERR;
		out[n++] = *lx->p++;
	}
	/* an atom is never empty: a lone CR would not move us on (R15-1) */
	if (n == 0)
		return TK_ERR;
	out[n] = '\0';
	return strcmp(out, "NIL") == 0 ? TK_NIL : TK_ATOM;
}

/*
 * Is the response complete, that is, has our tagged line arrived?  Walks
 * the lines, skipping the bytes of literals.  1 yes, 0 not yet, -1 bad.
 */
int
mpc_provision_complete(const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len, *eol;
	int bol = 1;

	while ((eol = memmem(p, (size_t)(end - p), "\r\n", 2)) != NULL) {
		if (bol && eol - p >= 4 && memcmp(p, PROV_TAG " ", 4) == 0)
			return 1;
		/* a literal announced at the end of this line */
		if (eol > p && eol[-1] == '}') {
			const char *lb = eol - 1, *d;
			unsigned long n = 0;

			while (lb > p && *lb != '{')
				lb--;
			/*
			 * {DIGITS} or {DIGITS+}, read within the line: the
			 * buffer has no NUL at its end for sscanf to stop at
			 */
			for (d = lb + 1; d < eol && *d >= '0' && *d <= '9';
			    d++)
				if (n <= PROV_RESP_MAX)	/* more: never here */
					n = n * 10 + (unsigned long)(*d - '0');
			if (d < eol && *d == '+')
				d++;
			if (*lb == '{' && d > lb + 1 && d == eol - 1) {
				if ((size_t)(end - (eol + 2)) < n)
					return 0;
				p = eol + 2 + n;
				bol = 0;
				continue;
			}
		}
		p = eol + 2;
		bol = 1;
	}
	return 0;
}

/* Take the answer apart: the METADATA entries, and our tagged status. */
int
mpc_provision_parse(const char *buf, size_t len, struct mpc_provision *pv,
    char *err, size_t errlen)
{
	struct lex lx = { buf, buf + len };
	char tok[PROV_RESP_MAX], name[256];
	int t, got = 0;
	size_t n;

	for (;;) {
		t = lex_next(&lx, tok, sizeof(tok));
		if (t == TK_END)
			break;
		if (t == TK_ATOM && strcmp(tok, PROV_TAG) == 0) {
			const char *eol = memmem(lx.p, (size_t)(lx.end - lx.p),
			    "\r\n", 2);

			n = eol != NULL ? (size_t)(eol - lx.p) : 0;
			if (n >= 3 && memcmp(lx.p, " OK", 3) == 0)
				break;
			snprintf(err, errlen, "GETMETADATA refused:%.*s (is "
			    "imap_metadata on and the mailpush_metadata plugin "
			    "loaded?)", (int)(n > 200 ? 200 : n), lx.p);
			return -1;
		}
		if (t != TK_ATOM || strcmp(tok, "*") != 0 ||
		    lex_next(&lx, tok, sizeof(tok)) != TK_ATOM ||
		    strcmp(tok, "METADATA") != 0) {
			/* another untagged response: skip its line */
			while (t != TK_EOL && t != TK_END && t != TK_ERR)
				t = lex_next(&lx, tok, sizeof(tok));
			if (t == TK_ERR)
				goto bad;
			continue;
		}
		if (lex_next(&lx, tok, sizeof(tok)) != TK_STRING ||
		    tok[0] != '\0' || lex_next(&lx, tok, sizeof(tok)) !=
		    TK_LPAREN)
			goto bad;
		while ((t = lex_next(&lx, name, sizeof(name))) != TK_RPAREN) {
			if (t != TK_ATOM && t != TK_STRING)
				goto bad;
			t = lex_next(&lx, tok, sizeof(tok));
			if (t != TK_STRING && t != TK_NIL && t != TK_ATOM)
				goto bad;
			if (t == TK_NIL)
				continue;
			if (strcmp(name, PROV_PREFIX "token") == 0) {
				const char *why;

				if (keyfile_token_parse(tok, &pv->key_id,
				    pv->token, &why) != 0) {
					snprintf(err, errlen, "the token entry: "
					    "%s", why);
					sodium_memzero(tok, sizeof(tok));
					return -1;
				}
				got |= 1;
			} else if (strcmp(name, PROV_PREFIX "user") == 0) {
				if (tok[0] == '\0' || strlen(tok) > MP_USER_MAX)
					goto bad;
				snprintf(pv->user, sizeof(pv->user), "%s", tok);
				got |= 2;
			} else if (strcmp(name, PROV_PREFIX "servers") == 0) {
				if (strlen(tok) >= sizeof(pv->servers))
					goto bad;
				snprintf(pv->servers, sizeof(pv->servers), "%s",
				    tok);
			}
		}
		sodium_memzero(tok, sizeof(tok));
	}
	if ((got & 3) != 3) {
		snprintf(err, errlen, "the server has no mailpush token for "
		    "this login (no %s entry; is the mailpush_metadata plugin "
		    "loaded for imap?)", got & 1 ? "user" : "token");
		return -1;
	}
	return 0;
bad:
	sodium_memzero(tok, sizeof(tok));
	snprintf(err, errlen, "malformed METADATA response");
	return -1;
}

/* Wait until the session's socket is ready (POLLIN or POLLOUT). */
static int
prov_wait(CURL *c, short events, uint64_t deadline)
{
	curl_socket_t fd;
	struct pollfd pfd;
	uint64_t now = prov_now_ms();

	if (curl_easy_getinfo(c, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK ||
	    fd == CURL_SOCKET_BAD || now >= deadline)
		return -1;
	pfd.fd = fd;
	pfd.events = events;
	return poll(&pfd, 1, (int)(deadline - now)) > 0 ? 0 : -1;
}

int
mpc_provision_fetch(const struct mpc_provision_opts *o,
    struct mpc_provision *pv, char *err, size_t errlen)
{
	char ebuf[CURL_ERROR_SIZE] = "", *buf = NULL;
	long tmo = o->timeout_ms > 0 ? o->timeout_ms : MPC_PROV_TIMEOUT_MS;
	uint64_t deadline = prov_now_ms() + (uint64_t)tmo;
	size_t off = 0, sent = 0, n;
	CURLcode rc;
	CURL *c;
	int ret = -1, done = 0;

	memset(pv, 0, sizeof(*pv));
	if (strncmp(o->url, "imaps://", 8) != 0 &&
	    strncmp(o->url, "imap://", 7) != 0) {
		snprintf(err, errlen, "%s: not an imaps:// or imap:// URL",
		    o->url);
		return -1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (c = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "libcurl failed to initialise");
		return -1;
	}
	if ((buf = malloc(PROV_RESP_MAX)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_URL, o->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "imap,imaps");
	curl_easy_setopt(c, CURLOPT_PASSWORD, o->password);
	/* imap:// must go through STARTTLS: never a password in clear */
	curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (o->cafile != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, o->cafile);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, tmo);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, tmo);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);
	if ((rc = curl_easy_perform(c)) != CURLE_OK) {
		snprintf(err, errlen, "%s: %s", o->url, ebuf[0] ? ebuf :
		    curl_easy_strerror(rc));
		goto out;
	}
	while (sent < sizeof(prov_command) - 1) {
		rc = curl_easy_send(c, prov_command + sent,
		    sizeof(prov_command) - 1 - sent, &n);
		if (rc == CURLE_AGAIN) {
			if (prov_wait(c, POLLOUT, deadline) != 0)
				goto timeout;
			continue;
		}
		if (rc != CURLE_OK) {
			snprintf(err, errlen, "%s: %s", o->url,
			    curl_easy_strerror(rc));
			goto out;
		}
		sent += n;
	}
	while (!done) {
		if (off == PROV_RESP_MAX) {
			snprintf(err, errlen, "%s: METADATA response longer "
			    "than %d bytes", o->url, PROV_RESP_MAX);
			goto out;
		}
		rc = curl_easy_recv(c, buf + off, PROV_RESP_MAX - off, &n);
		if (rc == CURLE_AGAIN) {
			if (prov_wait(c, POLLIN, deadline) != 0)
				goto timeout;
			continue;
		}
		if (rc != CURLE_OK || n == 0) {
			snprintf(err, errlen, "%s: connection closed during "
			    "GETMETADATA (%s)", o->url, rc != CURLE_OK ?
			    curl_easy_strerror(rc) : "end of stream");
			goto out;
		}
		off += n;
		done = mpc_provision_complete(buf, off);
	}
	ret = mpc_provision_parse(buf, off, pv, err, errlen);
	/* polite, not waited for: the session ends either way */
	(void)curl_easy_send(c, PROV_TAG "b LOGOUT\r\n", 13, &n);
	goto out;
timeout:
	snprintf(err, errlen, "%s: no answer to GETMETADATA within %ld ms",
	    o->url, tmo);
out:
	if (buf != NULL) {
		sodium_memzero(buf, PROV_RESP_MAX);
		free(buf);
	}
	curl_easy_cleanup(c);
	if (ret != 0)
		sodium_memzero(pv, sizeof(*pv));
	return ret;
}

int
mpc_provision_save(const char *path, const struct mpc_provision *pv,
    const char **why)
{
	char tmp[4096], text[1024], tt[KEYFILE_TOKEN_TEXT_MAX + 1];
	int fd, n, e;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >=
	    (int)sizeof(tmp)) {
		*why = "path too long";
		return -1;
	}
	keyfile_token_text(pv->key_id, pv->token, tt);
	n = snprintf(text, sizeof(text), "# mailpush-listen provisioning "
	    "cache; keep it secret\nuser %s\ntoken %s\nservers %s\n",
	    pv->user, tt, pv->servers);
	sodium_memzero(tt, sizeof(tt));
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		*why = strerror(errno);
		sodium_memzero(text, sizeof(text));
		return -1;
	}
	if (fchmod(fd, 0600) == -1 || write(fd, text, (size_t)n) != n ||
	    fsync(fd) == -1 || close(fd) == -1) {
		e = errno;
		close(fd);
		unlink(tmp);
		sodium_memzero(text, sizeof(text));
		*why = strerror(e);
		return -1;
	}
	sodium_memzero(text, sizeof(text));
	if (rename(tmp, path) == -1) {
		*why = strerror(errno);
		unlink(tmp);
		return -1;
	}
	return 0;
}

int
mpc_provision_load(const char *path, struct mpc_provision *pv,
    const char **why)
{
	char text[1024], *line, *save = NULL;
	struct stat st;
	ssize_t n;
	int fd, have = 0;

	memset(pv, 0, sizeof(*pv));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		*why = strerror(errno);
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (st.st_mode & 077) != 0 || st.st_uid != geteuid()) {
		close(fd);
		*why = "not a regular file of ours with mode 0600";
		return -1;
	}
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0 || n == (ssize_t)sizeof(text) - 1) {
		*why = "empty, unreadable or too long";
		return -1;
	}
	text[n] = '\0';
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "user ", 5) == 0 && strlen(line + 5) > 0 &&
		    strlen(line + 5) <= MP_USER_MAX) {
			snprintf(pv->user, sizeof(pv->user), "%s", line + 5);
			have |= 1;
		} else if (strncmp(line, "token ", 6) == 0) {
			if (keyfile_token_parse(line + 6, &pv->key_id,
			    pv->token, why) != 0)
				break;
			have |= 2;
		} else if (strncmp(line, "servers ", 8) == 0 &&
		    strlen(line + 8) < sizeof(pv->servers))
			snprintf(pv->servers, sizeof(pv->servers), "%s",
			    line + 8);
	}
	sodium_memzero(text, sizeof(text));
	if (have != 3) {
		*why = "no user or no token line";
		sodium_memzero(pv, sizeof(*pv));
		return -1;
	}
	return 0;
}

int
mpc_provision_get(const struct mpc_provision_opts *o, const char *cache,
    int force, struct mpc_provision *pv, int *fetched, char *msg,
    size_t msglen)
{
	const char *why;

	msg[0] = '\0';
	*fetched = 0;
	if (!force && mpc_provision_load(cache, pv, &why) == 0)
		return 0;
	if (mpc_provision_fetch(o, pv, msg, msglen) != 0)
		return -1;
	*fetched = 1;
	if (mpc_provision_save(cache, pv, &why) != 0)
		snprintf(msg, msglen, "cannot write the provisioning cache "
		    "%s: %s", cache, why);
	return 0;
}

int
mpc_provision_cache_path(const char *url, char *path, size_t len,
    const char **why)
{
	char dir[4096], *user = NULL, *host = NULL;
	const char *base = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	CURLU *u;
	int ok;
	char *s;

	if (base != NULL && *base == '/')
		snprintf(dir, sizeof(dir), "%s/mailpush", base);
	else if (home != NULL && *home == '/') {
		snprintf(dir, sizeof(dir), "%s/.local", home);
		(void)mkdir(dir, 0700);
		snprintf(dir, sizeof(dir), "%s/.local/state", home);
		(void)mkdir(dir, 0700);
		snprintf(dir, sizeof(dir), "%s/.local/state/mailpush", home);
	} else {
		*why = "neither XDG_STATE_HOME nor HOME is set";
		return -1;
	}
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		*why = strerror(errno);
		return -1;
	}
	if ((u = curl_url()) == NULL || curl_url_set(u, CURLUPART_URL, url, 0)
	    != CURLUE_OK || curl_url_get(u, CURLUPART_USER, &user, 0) !=
	    CURLUE_OK || curl_url_get(u, CURLUPART_HOST, &host, 0) !=
	    CURLUE_OK) {
		curl_url_cleanup(u);
		*why = "the URL needs a user and a host: "
		    "imaps://USER@HOST[:PORT]";
		return -1;
	}
	/* a file name: no slashes from either part */
	for (s = user; *s; s++)
		if (*s == '/')
			*s = '_';
	ok = snprintf(path, len, "%s/provision-%s@%s", dir, user, host) <
	    (int)len;
	curl_free(user);
	curl_free(host);
	curl_url_cleanup(u);
	if (!ok) {
		*why = "path too long";
		return -1;
	}
	return 0;
}

/* The first line of text, without its newline; -1 if empty or too long. */
static int
first_line(const char *text, size_t n, char *pw, size_t len)
{
	size_t l = 0;

	while (l < n && text[l] != '\n' && text[l] != '\0')
		l++;
	if (l > 0 && text[l - 1] == '\r')
		l--;
	if (l == 0 || l >= len)
		return -1;
	memcpy(pw, text, l);
	pw[l] = '\0';
	return 0;
}

int
mpc_password_file(const char *path, char *pw, size_t len, char *err,
    size_t errlen)
{
	char text[PROV_PW_MAX + 2];
	struct stat st;
	ssize_t n;
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "password file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || (st.st_mode & 007) != 0) {
		close(fd);
		snprintf(err, errlen, "password file %s must not be readable "
		    "by others (chmod 600 it)", path);
		return -1;
	}
	n = read(fd, text, sizeof(text));
	close(fd);
	rc = n > 0 ? first_line(text, (size_t)n, pw, len) : -1;
	sodium_memzero(text, sizeof(text));
	if (rc != 0)
		snprintf(err, errlen, "password file %s: empty, or a first "
		    "line longer than %zu bytes", path, len - 1);
	return rc;
}

int
mpc_password_command(const char *cmd, char *pw, size_t len, char *err,
    size_t errlen)
{
	char text[PROV_PW_MAX + 2];
	size_t off = 0;
	uint64_t deadline = prov_now_ms() + PROV_CMD_SECS * 1000;
	int p[2], status, rc = -1;
	pid_t pid;
	ssize_t n;

	if (pipe2(p, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) == -1) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		if (dup2(p[1], 1) == -1)
			_exit(127);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		struct pollfd pfd = { p[0], POLLIN, 0 };
		uint64_t now = prov_now_ms();

		if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) <= 0)
			break;
		n = read(p[0], text + off, sizeof(text) - off);
		if (n <= 0)
			break;
		off += (size_t)n;
		if (off == sizeof(text) || memchr(text, '\n', off) != NULL)
			break;
	}
	close(p[0]);
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (prov_now_ms() >= deadline)
			break;
		usleep(10000);
	}
	if (waitpid(pid, &status, WNOHANG) == 0) {
		kill(pid, SIGTERM);
		waitpid(pid, &status, 0);
		snprintf(err, errlen, "password command did not finish within "
		    "%d s", PROV_CMD_SECS);
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		snprintf(err, errlen, "password command failed (status %d)",
		    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	else if ((rc = first_line(text, off, pw, len)) != 0)
		snprintf(err, errlen, "password command printed nothing, or a "
		    "first line longer than %zu bytes", len - 1);
	sodium_memzero(text, sizeof(text));
	return rc;
}
