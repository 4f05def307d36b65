/*
 * config_set.c: setting one mailpushd.conf key from its text: checking the
 * value against the key's type and bounds, and filling the lists (listen
 * addresses, networks, user names, servers) item by item.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "config.h"
#include "config_int.h"
#include "log.h"
#include "logesc.h"

/* A list has no room for `item': report it once for the whole list. */
static int
list_full(struct parse *p, const struct key *k, const char *fmt, int max)
{
	size_t idx = (size_t)(k - config_keys);

	if (!p->full[idx])
		config_perr(p, k->section, k->name, fmt, max);
	p->full[idx] = 1;
	return -2;
}

/*
 * Split a list value on spaces and commas; calls fn for each item.  fn
 * returns -1 for a bad item, -2 when the list is full (stop: one error).
 */
static int
for_each_item(struct parse *p, const struct key *k, const char *value,
    int (*fn)(struct parse *, const struct key *, const char *))
{
	char buf[INI_MAX_LINE], *tok, *save = NULL;
	int rc = 0, r;

	snprintf(buf, sizeof(buf), "%s", value);
	for (tok = strtok_r(buf, " \t,", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t,", &save))
		if ((r = fn(p, k, tok)) != 0) {
			rc = -1;
			if (r == -2)
				break;
		}
	return rc;
}

static int
add_listen(struct parse *p, const struct key *k, const char *item)
{
	struct mp_config *cfg = p->cfg;
	struct config_listen *l;
	size_t i;

	if (cfg->n_listen == CONFIG_LISTEN_MAX)
		return list_full(p, k, "at most %d addresses",
		    CONFIG_LISTEN_MAX);
	l = &cfg->listen[cfg->n_listen];
	if (config_parse_listen(item, l) != 0) {
		config_perr(p, k->section, k->name, "bad address \"%s\": must be "
		    "IPv4ADDR[:PORT] or [IPv6ADDR][:PORT] with a port from "
		    "1 to 65535", item);
		return -1;
	}
	/* config_parse_listen zeroes the whole sockaddr: memcmp is exact */
	for (i = 0; i < cfg->n_listen; i++)
		if (cfg->listen[i].len == l->len &&
		    memcmp(&cfg->listen[i].ss, &l->ss, l->len) == 0) {
			config_perr(p, k->section, k->name, "duplicate address "
			    "\"%s\" (the same as \"%s\")", item,
			    cfg->listen[i].text);
			return -1;
		}
	cfg->n_listen++;
	return 0;
}

static int
add_cidr(struct parse *p, const struct key *k, const char *item)
{
	struct mp_config *cfg = p->cfg;
	struct config_cidr c, *n;

	if (config_parse_cidr(item, &c) != 0) {
		config_perr(p, k->section, k->name, "bad network \"%s\": must be "
		    "ADDRESS or ADDRESS/PREFIX (IPv4 prefix 0 to 32, IPv6 0 "
		    "to 128)", item);
		return -1;
	}
	if (cfg->n_allow >= CONFIG_ALLOW_MAX)
		return list_full(p, k, "at most %d networks", CONFIG_ALLOW_MAX);
	if ((n = reallocarray(cfg->allow, cfg->n_allow + 1, sizeof(*n))) ==
	    NULL)
		fatal("reallocarray");
	cfg->allow = n;
	cfg->allow[cfg->n_allow++] = c;
	return 0;
}

/* The name list a T_NAMES key fills. */
static void
names_of(struct mp_config *cfg, const struct key *k, char ****v, size_t **n)
{
	if (k->off == O(trusted_users)) {
		*v = &cfg->trusted_users;
		*n = &cfg->n_trusted_users;
	} else {
		*v = &cfg->allow_users;
		*n = &cfg->n_allow_users;
	}
}

void
config_names_clear(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int
add_server(struct parse *p, const struct key *k, const char *item)
{
	char *f = p->cfg->provision_servers;
	size_t n = 1, fl = strlen(f), il = strlen(item);
	const char *s;

	if (!config_valid_server(item)) {
		config_perr(p, k->section, k->name, "bad server \"%s\": must be "
		    "HOST:PORT or [IPv6ADDR]:PORT with a port from 1 to 65535",
		    item);
		return -1;
	}
	for (s = f; *s != '\0'; s++)
		n += *s == ' ';
	if ((fl > 0 && n >= CONFIG_SERVER_MAX) ||
	    fl + 1 + il >= CONFIG_SERVERS_MAX)
		return list_full(p, k, "at most %d servers, 511 bytes in all",
		    CONFIG_SERVER_MAX);
	snprintf(f + fl, CONFIG_SERVERS_MAX - fl, "%s%s", fl > 0 ? " " : "",
	    item);
	return 0;
}

static int
add_name(struct parse *p, const struct key *k, const char *item)
{
	char ***v, **n;
	size_t *count;

	names_of(p->cfg, k, &v, &count);
	if (!config_valid_sysname(item)) {
		config_perr(p, k->section, k->name, "bad user name \"%s\": "
		    CONFIG_SYSNAME_RULE, item);
		return -1;
	}
	if (*count >= CONFIG_ALLOW_MAX)
		return list_full(p, k, "at most %d users", CONFIG_ALLOW_MAX);
	if ((n = reallocarray(*v, *count + 1, sizeof(*n))) == NULL ||
	    (n[*count] = strdup(item)) == NULL)
		fatal("%s", k->name);
	*v = n;
	(*count)++;
	return 0;
}

/* Set one key of `base' (the config or an override) from `value'. */
int
config_set_key(struct parse *p, const struct key *k, void *base, const char *value,
    int append)
{
	char *field = (char *)base + k->off;
	/* a [user NAME] key names its own section */
	const char *sect = p->sect_kind == SECT_USER ? p->section : k->section;
	uint64_t v;
	char *end;

	switch (k->type) {
	case T_UINT:
		errno = 0;
		v = strtoull(value, &end, 10);
		if (!isdigit((unsigned char)*value) || *end != '\0' ||
		    errno != 0 || v < k->min || v > k->max) {
			config_perr(p, sect, k->name, "must be an integer from "
			    "%" PRIu64 " to %" PRIu64, k->min, k->max);
			return -1;
		}
		*(unsigned *)field = (unsigned)v;
		return 0;
	case T_DURATION:
		if (config_parse_duration(value, &v) != 0 || v < k->min ||
		    v > k->max) {
			char lo[32], hi[32];

			config_fmt_duration(k->min, lo, sizeof(lo));
			config_fmt_duration(k->max, hi, sizeof(hi));
			config_perr(p, sect, k->name, "must be a duration from "
			    "%s to %s (a number with ms, s, m, h or d)", lo,
			    hi);
			return -1;
		}
		*(uint64_t *)field = v;
		return 0;
	case T_SIZE:
		if (config_parse_size(value, &v) != 0 || v < k->min ||
		    v > k->max) {
			config_perr(p, sect, k->name, "must be a size from "
			    "%" PRIu64 "k to %" PRIu64 "M (a number of bytes, "
			    "with k, M or G)", k->min / 1024, k->max >> 20);
			return -1;
		}
		*(uint64_t *)field = v;
		return 0;
	case T_BOOL:
		if (config_parse_bool(value, (int *)field) != 0) {
			config_perr(p, sect, k->name, "must be yes or no");
			return -1;
		}
		return 0;
	case T_MODE:
		errno = 0;
		v = strtoull(value, &end, 8);
		if (!isdigit((unsigned char)*value) || *end != '\0' ||
		    errno != 0 || v > 0777) {
			config_perr(p, sect, k->name, "must be an octal file "
			    "mode from 0000 to 0777");
			return -1;
		}
		*(unsigned *)field = (unsigned)v;
		return 0;
	case T_USER:
	case T_GROUP:
		if (*value != '\0' && !config_valid_sysname(value)) {
			config_perr(p, sect, k->name, "bad %s name \"%s\": "
			    CONFIG_SYSNAME_RULE, k->type == T_USER ? "user" : "group",
			    value);
			return -1;
		}
		if (*value != '\0' && p->lineno > 0 && config_lookup_accounts) {
			if (k->type == T_USER && getpwnam(value) == NULL) {
				config_perr(p, sect, k->name, "no such user "
				    "\"%s\"", value);
				return -1;
			}
			if (k->type == T_GROUP && getgrnam(value) == NULL) {
				config_perr(p, sect, k->name, "no such group "
				    "\"%s\"", value);
				return -1;
			}
		}
		snprintf(field, CONFIG_NAME_MAX, "%s", value);
		return 0;
	case T_PATH:
	case T_SOCKPATH: {
		size_t max = k->type == T_PATH ? PATH_MAX : CONFIG_SOCKPATH_MAX;

		if (*value == '\0' && k->min == 0) {
			*field = '\0';
			return 0;
		}
		if (*value != '/' || strlen(value) >= max) {
			config_perr(p, sect, k->name, "must be an absolute path "
			    "shorter than %zu bytes", max);
			return -1;
		}
		snprintf(field, max, "%s", value);
		return 0;
	}
	case T_LISTEN:
		if (!append)
			p->cfg->n_listen = 0;
		/* an empty list is refused in finish(): continuation lines
		   may follow an empty first line */
		return for_each_item(p, k, value, add_listen);
	case T_CIDRS:
		if (!append) {
			free(p->cfg->allow);
			p->cfg->allow = NULL;
			p->cfg->n_allow = 0;
		}
		return for_each_item(p, k, value, add_cidr);
	case T_NAMES:
		if (!append) {
			char ***names;
			size_t *n;

			names_of(p->cfg, k, &names, &n);
			config_names_clear(*names, *n);
			*names = NULL;
			*n = 0;
		}
		return for_each_item(p, k, value, add_name);
	case T_SERVERS:
		if (!append)
			p->cfg->provision_servers[0] = '\0';
		return for_each_item(p, k, value, add_server);
	case T_ENUM: {
		const char *c = k->choices;
		int idx = 0;
		size_t vl = strlen(value);

		while (c != NULL && *c) {
			const char *bar = strchr(c, '|');
			size_t cl = bar ? (size_t)(bar - c) : strlen(c);

			if (cl == vl && strncmp(c, value, cl) == 0) {
				*(int *)field = idx;
				return 0;
			}
			idx++;
			c = bar ? bar + 1 : NULL;
		}
		config_perr(p, sect, k->name, "must be one of: %s", k->choices);
		return -1;
	}
	case T_DELIMS: {
		const char *s;

		if (strlen(value) >= sizeof(((struct user_rule *)0)->delimiters)) {
			config_perr(p, sect, k->name, "at most 15 characters");
			return -1;
		}
		for (s = value; *s; s++)
			if (!ispunct((unsigned char)*s) || *s == '@') {
				config_perr(p, sect, k->name, "must be "
				    "punctuation characters other than '@', "
				    "such as + or -");
				return -1;
			}
		snprintf(field, 16, "%s", value);
		return 0;
	}
	case T_WORD: {
		const char *s;

		if (strlen(value) >= CONFIG_WORD_MAX ||
		    (*value == '\0' && k->min == 1)) {
			config_perr(p, sect, k->name, "must be %d to %d characters",
			    (int)k->min, CONFIG_WORD_MAX - 1);
			return -1;
		}
		for (s = value; *s; s++)
			if (!isgraph((unsigned char)*s)) {
				config_perr(p, sect, k->name, "must be printable "
				    "ASCII without spaces");
				return -1;
			}
		snprintf(field, CONFIG_WORD_MAX, "%s", value);
		return 0;
	}
	case T_REDIS: {
		char host[64];
		int port;

		if (config_parse_redis(value, host, sizeof(host), &port) != 0) {
			config_perr(p, sect, k->name, "bad Redis address \"%s\": "
			    "must be IPv4ADDR:PORT, [IPv6ADDR]:PORT (an address, "
			    "not a host name) or the absolute path of a Unix "
			    "socket shorter than %d bytes", value,
			    CONFIG_SOCKPATH_MAX);
			return -1;
		}
		snprintf(field, CONFIG_SOCKPATH_MAX, "%s", value);
		return 0;
	}
	}
	abort();
}
