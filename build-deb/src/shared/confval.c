/*
 * confval.c: the typed values of mailpushd.conf(5) (durations, sizes,
 * booleans, listen addresses, CIDR networks, system names) and matching an
 * address against the allow list.  The INI side is config.c.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"

#define SEC	((uint64_t)1000)
#define MIN	(60 * SEC)
#define HOUR	(60 * MIN)
#define DAY	(24 * HOUR)

int
config_parse_duration(const char *s, uint64_t *ms)
{
	char *end;
	unsigned long long v;
	uint64_t mul;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end == '\0' || strcmp(end, "s") == 0)
		mul = SEC;
	else if (strcmp(end, "ms") == 0)
		mul = 1;
	else if (strcmp(end, "m") == 0)
		mul = MIN;
	else if (strcmp(end, "h") == 0)
		mul = HOUR;
	else if (strcmp(end, "d") == 0)
		mul = DAY;
	else
		return -1;
	if (v > UINT64_MAX / mul)
		return -1;
	*ms = v * mul;
	return 0;
}

int
config_parse_size(const char *s, uint64_t *bytes)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end == 'k' || *end == 'K')
		mul = 1024;
	else if (*end == 'M')
		mul = 1024 * 1024;
	else if (*end == 'G')
		mul = 1024 * 1024 * 1024;
	else if (*end != '\0')
		return -1;
	if (*end != '\0' && end[1] != '\0')
		return -1;
	if (v > UINT64_MAX / mul)
		return -1;
	*bytes = v * mul;
	return 0;
}

static int
parse_port(const char *s, uint16_t *port)
{
	char *end;
	unsigned long v;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

int
config_parse_listen(const char *s, struct config_listen *l)
{
	char host[64];
	const char *ps = NULL;
	uint16_t port = (uint16_t)atoi(MP_PORT);
	size_t hl;

	memset(l, 0, sizeof(*l));
	if (strlen(s) >= sizeof(l->text))
		return -1;
	if (*s == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL)
			return -1;
		hl = (size_t)(rb - s - 1);
		if (hl >= sizeof(host))
			return -1;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (rb[1] == ':')
			ps = rb + 2;
		else if (rb[1] != '\0')
			return -1;
	} else {
		const char *colon = strchr(s, ':');

		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			return -1;	/* bare IPv6: needs brackets */
		hl = colon ? (size_t)(colon - s) : strlen(s);
		if (hl >= sizeof(host))
			return -1;
		memcpy(host, s, hl);
		host[hl] = '\0';
		if (colon)
			ps = colon + 1;
	}
	if (ps != NULL && parse_port(ps, &port) != 0)
		return -1;
	if (*s == '[') {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&l->ss;

		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		l->len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&l->ss;

		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		l->len = sizeof(*sin);
	}
	snprintf(l->text, sizeof(l->text), "%s", s);
	return 0;
}

int
config_parse_cidr(const char *s, struct config_cidr *c)
{
	char host[64];
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);
	unsigned maxp;

	memset(c, 0, sizeof(*c));
	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, c->addr) == 1) {
		c->family = AF_INET;
		maxp = 32;
	} else if (inet_pton(AF_INET6, host, c->addr) == 1) {
		c->family = AF_INET6;
		maxp = 128;
	} else
		return -1;
	c->prefix = maxp;
	if (slash) {
		char *end;
		unsigned long v;

		if (!isdigit((unsigned char)slash[1]))
			return -1;
		v = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || v > maxp)
			return -1;
		c->prefix = (unsigned)v;
	}
	return 0;
}


int
config_valid_sysname(const char *s)
{
	if (*s == '\0' || strlen(s) >= CONFIG_NAME_MAX || *s == '-')
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' &&
		    *s != '.' && *s != '$')
			return 0;
	return 1;
}

int
config_parse_bool(const char *v, int *out)
{
	static const char *yes[] = { "yes", "true", "on", "1" };
	static const char *no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

void
config_fmt_duration(uint64_t ms, char *buf, size_t len)
{
	if (ms % SEC != 0 || ms == 0)
		snprintf(buf, len, "%" PRIu64 "ms", ms);
	else if (ms % DAY == 0)
		snprintf(buf, len, "%" PRIu64 "d", ms / DAY);
	else if (ms % HOUR == 0)
		snprintf(buf, len, "%" PRIu64 "h", ms / HOUR);
	else if (ms % MIN == 0)
		snprintf(buf, len, "%" PRIu64 "m", ms / MIN);
	else
		snprintf(buf, len, "%" PRIu64 "s", ms / SEC);
}

static int
cidr_match(const struct config_cidr *c, const uint8_t *addr)
{
	unsigned full = c->prefix / 8, rest = c->prefix % 8;

	if (memcmp(c->addr, addr, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((c->addr[full] ^ addr[full]) & (0xff << (8 - rest))) == 0;
}

int
config_addr_allowed(const struct mp_config *cfg, const struct sockaddr *sa)
{
	const uint8_t *a4 = NULL, *a6 = NULL;
	uint8_t mapped[16];
	size_t i;

	if (cfg->n_allow == 0)
		return 1;
	if (sa->sa_family == AF_INET) {
		/* matched as itself and as ::ffff:a.b.c.d, as a dual-stack
		   socket would see it */
		a4 = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
		memset(mapped, 0, 10);
		mapped[10] = mapped[11] = 0xff;
		memcpy(mapped + 12, a4, 4);
		a6 = mapped;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		a6 = s6->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			a4 = a6 + 12;
	}
	for (i = 0; i < cfg->n_allow; i++) {
		const struct config_cidr *c = &cfg->allow[i];

		if (c->family == AF_INET && a4 && cidr_match(c, a4))
			return 1;
		if (c->family == AF_INET6 && a6 && cidr_match(c, a6))
			return 1;
	}
	return 0;
}

/*
 * A notifier clients are told about: HOST:PORT (a DNS name or an IPv4
 * address) or [IPv6]:PORT; at most 255 bytes.
 */
int
config_valid_server(const char *s)
{
	struct in6_addr a6;
	char host[256];
	const char *colon;
	uint16_t port;
	size_t hl, i;

	if (strlen(s) > 255)
		return 0;
	if (*s == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || rb[1] != ':')
			return 0;
		hl = (size_t)(rb - s - 1);
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		return inet_pton(AF_INET6, host, &a6) == 1 &&
		    parse_port(rb + 2, &port) == 0;
	}
	if ((colon = strrchr(s, ':')) == NULL || colon == s ||
	    memchr(s, ':', (size_t)(colon - s)) != NULL)
		return 0;
	hl = (size_t)(colon - s);
	for (i = 0; i < hl; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' &&
		    s[i] != '.' && s[i] != '_')
			return 0;
	return s[0] != '.' && s[0] != '-' && parse_port(colon + 1, &port) == 0;
}

/*
 * [cluster] redis: a Unix socket path, or an IP address and port (no host
 * names: resolving one would block the daemon's loop).  host gets the
 * address without brackets, or the path with *port 0.
 */
int
config_parse_redis(const char *s, char *host, size_t hostlen, int *port)
{
	struct config_listen l;
	const char *colon;

	if (*s == '/') {
		if (strlen(s) >= CONFIG_SOCKPATH_MAX || strlen(s) >= hostlen)
			return -1;
		snprintf(host, hostlen, "%s", s);
		*port = 0;
		return 0;
	}
	/* the port is required: the default of config_parse_listen is ours */
	colon = strrchr(s, ':');
	if (colon == NULL || (*s == '[' && colon < strchr(s, ']')) ||
	    config_parse_listen(s, &l) != 0)
		return -1;
	if (l.ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&l.ss;

		*port = ntohs(sin->sin_port);
		if (inet_ntop(AF_INET, &sin->sin_addr, host, (socklen_t)hostlen)
		    == NULL)
			return -1;
	} else {
		const struct sockaddr_in6 *sin6 =
		    (const struct sockaddr_in6 *)&l.ss;

		*port = ntohs(sin6->sin6_port);
		if (inet_ntop(AF_INET6, &sin6->sin6_addr, host,
		    (socklen_t)hostlen) == NULL)
			return -1;
	}
	return 0;
}
