/*
 * keyfile.c: read and write the key file with key ids (keyfile.h), and
 * the token text clients are given.
 */
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "keyfile.h"
#include "proto.h"

/* Next whitespace-separated word of a line; its length, 0 at the end. */
static size_t
word(const char **p, const char *end, const char **start)
{
	const char *s = *p;

	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	*start = s;
	while (s < end && *s != ' ' && *s != '\t')
		s++;
	*p = s;
	return (size_t)(s - *start);
}

static int
all_hex(const char *w, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!isxdigit((unsigned char)w[i]))
			return 0;
	return 1;
}

static int
parse_id(const char *w, size_t len, uint8_t *id)
{
	unsigned v = 0;
	size_t i;

	if (len == 0 || len > 3)
		return -1;
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char)w[i]))
			return -1;
		v = v * 10 + (unsigned)(w[i] - '0');
	}
	if (v < 1 || v > 255)
		return -1;
	*id = (uint8_t)v;
	return 0;
}

static int
parse_hexkey(const char *w, size_t len, uint8_t key[MP_KEY_LEN])
{
	char hex[2 * MP_KEY_LEN + 1];

	if (len != 2 * MP_KEY_LEN)
		return -1;
	memcpy(hex, w, len);
	hex[len] = '\0';
	return proto_hex_decode(hex, key, MP_KEY_LEN);
}

int
keyfile_parse(const char *text, size_t len, struct mp_keys *k,
    const char **why)
{
	const char *p = text, *end = text + len, *eol, *w, *q;
	size_t wl;
	int have_cur = 0, lines = 0;

	memset(k, 0, sizeof(*k));
	if (memchr(text, '\0', len) != NULL) {
		*why = "contains a NUL byte";
		return -1;
	}
	for (; p < end; p = eol + 1) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			eol = end;
		q = p;
		if ((wl = word(&q, eol, &w)) == 0 || *w == '#')
			continue;
		lines++;
		if (wl == 2 * MP_KEY_LEN && lines == 1) {
			/* the form without ids: one key, id 1 */
			if (parse_hexkey(w, wl, k->cur) != 0) {
				*why = "not 64 hexadecimal digits";
				goto bad;
			}
			k->cur_id = 1;
			have_cur = 1;
		} else if (wl == 3 && memcmp(w, "key", 3) == 0 && !have_cur) {
			wl = word(&q, eol, &w);
			if (parse_id(w, wl, &k->cur_id) != 0) {
				*why = "key id must be a number from 1 to 255";
				goto bad;
			}
			wl = word(&q, eol, &w);
			if (parse_hexkey(w, wl, k->cur) != 0) {
				*why = "key is not 64 hexadecimal digits";
				goto bad;
			}
			have_cur = 1;
		} else if (wl == 8 && memcmp(w, "previous", 8) == 0 &&
		    k->prev_id == 0) {
			char num[24];
			char *e;
			long long t;

			wl = word(&q, eol, &w);
			if (parse_id(w, wl, &k->prev_id) != 0) {
				*why = "previous key id must be a number from "
				    "1 to 255";
				goto bad;
			}
			wl = word(&q, eol, &w);
			if (parse_hexkey(w, wl, k->prev) != 0) {
				*why = "previous key is not 64 hexadecimal "
				    "digits";
				goto bad;
			}
			wl = word(&q, eol, &w);
			if (wl == 0 || wl >= sizeof(num) ||
			    !isdigit((unsigned char)*w)) {
				*why = "previous key needs the time it was "
				    "retired (seconds since the epoch)";
				goto bad;
			}
			memcpy(num, w, wl);
			num[wl] = '\0';
			errno = 0;
			t = strtoll(num, &e, 10);
			if (*e != '\0' || errno != 0 || t < 0) {
				*why = "bad retirement time of the previous key";
				goto bad;
			}
			k->prev_retired = t;
		} else if (lines == 1 && all_hex(w, wl)) {
			*why = "not 64 hexadecimal digits (nor \"key ID HEX\")";
			goto bad;
		} else {
			*why = "lines must be \"key ID HEX\" and at most one "
			    "\"previous ID HEX RETIRED\"";
			goto bad;
		}
		if (word(&q, eol, &w) != 0) {
			*why = "trailing text on a line";
			goto bad;
		}
	}
	if (!have_cur) {
		*why = "no \"key ID HEX\" line";
		goto bad;
	}
	if (k->prev_id != 0 && k->prev_id == k->cur_id) {
		*why = "the previous key has the current key's id";
		goto bad;
	}
	return 0;
bad:
	sodium_memzero(k, sizeof(*k));
	return -1;
}

int
keyfile_read_fd(int fd, struct mp_keys *k, const char **why)
{
	char buf[KEYFILE_MAX + 1];
	size_t got = 0;
	ssize_t n;
	int rc;

	for (;;) {
		n = read(fd, buf + got, sizeof(buf) - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			*why = strerror(errno);
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == sizeof(buf)) {
			sodium_memzero(buf, sizeof(buf));
			*why = "longer than 1024 bytes";
			return -1;
		}
	}
	rc = keyfile_parse(buf, got, k, why);
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

int
keyfile_read(const char *path, struct mp_keys *k, const char **why)
{
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		*why = strerror(errno);
		return -1;
	}
	rc = keyfile_read_fd(fd, k, why);
	close(fd);
	return rc;
}

int
keyfile_format(const struct mp_keys *k, char *buf, size_t len)
{
	char hex[2 * MP_KEY_LEN + 1];
	int n, m = 0;

	proto_hex_encode(k->cur, MP_KEY_LEN, hex);
	n = snprintf(buf, len, "# mailpush server keys (mailpushctl(8)); "
	    "keep this file secret\nkey %u %s\n", k->cur_id, hex);
	if (n >= 0 && (size_t)n < len && k->prev_id != 0) {
		proto_hex_encode(k->prev, MP_KEY_LEN, hex);
		m = snprintf(buf + n, len - (size_t)n, "previous %u %s %"
		    PRId64 "\n", k->prev_id, hex, k->prev_retired);
	}
	sodium_memzero(hex, sizeof(hex));
	if (n < 0 || m < 0 || (size_t)n + (size_t)m >= len)
		return -1;
	return n + m;
}

const uint8_t *
keyfile_key(const struct mp_keys *k, unsigned id, int64_t now,
    uint64_t grace_s)
{
	if (id == k->cur_id)
		return k->cur;
	if (k->prev_id != 0 && id == k->prev_id &&
	    now < k->prev_retired + (int64_t)grace_s)
		return k->prev;
	return NULL;
}

void
keyfile_token(const struct mp_keys *k, const char *user, size_t len,
    uint8_t token[MP_TOKEN_LEN])
{
	proto_token(k->cur, user, len, token);
}

void
keyfile_token_text(unsigned id, const uint8_t token[MP_TOKEN_LEN], char *out)
{
	char hex[2 * MP_TOKEN_LEN + 1];

	proto_hex_encode(token, MP_TOKEN_LEN, hex);
	snprintf(out, KEYFILE_TOKEN_TEXT_MAX + 1, "%u:%s", id, hex);
	sodium_memzero(hex, sizeof(hex));
}

int
keyfile_token_parse(const char *text, uint8_t *id,
    uint8_t token[MP_TOKEN_LEN], const char **why)
{
	const char *colon = strchr(text, ':'), *hex = text;
	size_t len;

	*id = 1;
	if (colon != NULL) {
		if (parse_id(text, (size_t)(colon - text), id) != 0) {
			*why = "key id before ':' must be a number from 1 to 255";
			return -1;
		}
		hex = colon + 1;
	}
	len = strlen(hex);
	if (len > 0 && hex[len - 1] == '\n')
		len--;
	if (parse_hexkey(hex, len, token) != 0) {
		*why = "token must be ID:HEX or HEX, with 64 hexadecimal digits";
		return -1;
	}
	return 0;
}

int
keyfile_token_read(const char *path, uint8_t *id, uint8_t token[MP_TOKEN_LEN],
    const char **why)
{
	char buf[257];
	ssize_t n;
	size_t got = 0;
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		*why = strerror(errno);
		return -1;
	}
	while (got < sizeof(buf) - 1 &&
	    (n = read(fd, buf + got, sizeof(buf) - 1 - got)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			*why = strerror(errno);
			close(fd);
			return -1;
		}
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	if (got == sizeof(buf) - 1 || strlen(buf) != got) {
		*why = "not a token (ID:HEX or HEX, one line)";
		rc = -1;
	} else
		rc = keyfile_token_parse(buf, id, token, why);
	sodium_memzero(buf, sizeof(buf));
	return rc;
}
