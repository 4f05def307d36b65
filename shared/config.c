/*
 * config.c: mailpushd.conf on inih.
 *
 * One table (config_keys) holds every key with its section, type, default
 * and bounds; it drives parsing, validation, the built-in defaults and the
 * printout of `mailpushd -n'.  Debian's inih is built without
 * INI_HANDLER_LINENO, so the file is fed through ini_parse_stream with a
 * reader that counts lines; that reader also reports lines inih would
 * silently skip or split (syntax errors, over-long lines).  Parsing goes on
 * after an error so every error in the file is reported at once.
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
#include "log.h"
#include "logesc.h"

/*
 * Whether user and group names are looked up (getpwnam, getgrnam) while
 * loading.  mailpush-hook turns it off: it never uses them, and a lookup
 * per delivery is slow where accounts live in LDAP.
 */
int	config_lookup_accounts = 1;

enum ktype {
	T_UINT, T_DURATION, T_SIZE, T_BOOL, T_MODE, T_USER, T_GROUP, T_PATH,
	T_SOCKPATH, T_LISTEN, T_CIDRS, T_NAMES, T_ENUM, T_DELIMS, T_SERVERS,
	T_WORD, T_REDIS,
};

struct key {
	const char	*section;
	const char	*name;
	enum ktype	 type;
	size_t		 off;
	const char	*def;
	uint64_t	 min, max;	/* T_UINT, T_DURATION (ms), T_SIZE;
					   T_PATH: min 1 means required */
	const char	*choices;	/* T_ENUM: "a|b" */
	const char	*help;
};

#define O(f)	offsetof(struct mp_config, f)
#define SEC	((uint64_t)1000)
#define MIN	(60 * SEC)
#define HOUR	(60 * MIN)
#define DAY	(24 * HOUR)

static const struct key config_keys[] = {
	{ "mailpushd", "user", T_USER, O(user), MP_USER, 0, 0, NULL,
	  "user to run as after binding; empty: do not change" },
	{ "mailpushd", "group", T_GROUP, O(group), "", 0, 0, NULL,
	  "group to run as; empty: the user's primary group" },
	{ "mailpushd", "listen", T_LISTEN, O(listen),
	  "127.0.0.1:" MP_PORT " [::1]:" MP_PORT, 0, 0, NULL,
	  "UDP addresses for registrations and pushes" },
	{ "mailpushd", "key_file", T_PATH, O(key_file), MP_KEY_FILE, 1, 0,
	  NULL, "server keys (mailpushctl genkey, mailpushctl key rotate)" },
	{ "mailpushd", "key_grace", T_DURATION, O(key_grace), "7d", 0,
	  365 * DAY, NULL,
	  "tokens of the previous key are accepted this long after a rollover" },
	{ "mailpushd", "auth", T_ENUM, O(auth), "token", 0, 0, "token|none",
	  "token: registrations carry a MAC; none: trust the allow list" },
	{ "mailpushd", "allow", T_CIDRS, O(allow), "", 0, 0, NULL,
	  "networks allowed to register; empty: any" },
	{ "mailpushd", "timestamp_window", T_DURATION, O(timestamp_window),
	  "120s", 1 * SEC, HOUR, NULL,
	  "largest clock difference accepted in a request" },
	{ "mailpushd", "state_file", T_PATH, O(state_file), MP_STATE_FILE, 0,
	  0, NULL, "registrations kept across restarts; empty: none" },
	{ "mailpushd", "state_save_interval", T_DURATION,
	  O(state_save_interval), "60s", 1 * SEC, DAY, NULL,
	  "how often a snapshot is written while the journal grows" },
	{ "mailpushd", "state_sync", T_BOOL, O(state_sync), "yes", 0, 0, NULL,
	  "answer a change only once the journal is synced to disk" },
	{ "mailpushd", "journal_size_limit", T_SIZE, O(journal_size_limit),
	  "64M", 64 * 1024, 1ULL << 40, NULL,
	  "journal size that starts a snapshot at once" },
	{ "mailpushd", "control_socket", T_SOCKPATH, O(control_socket),
	  MP_CONTROL_SOCKET, 1, 0, NULL, "mailpushctl's socket" },
	{ "mailpushd", "control_socket_mode", T_MODE,
	  O(control_socket_mode), "0660", 0, 0, NULL,
	  "permissions of the control socket" },
	{ "mailpushd", "control_socket_group", T_GROUP,
	  O(control_socket_group), "", 0, 0, NULL,
	  "group of the control socket; empty: the daemon's group" },
	{ "mailpushd", "udp_buffer_size", T_SIZE, O(udp_buffer_size), "1M",
	  64 * 1024, 256ULL << 20, NULL, "UDP socket buffer size" },

	{ "events", "socket", T_SOCKPATH, O(event_socket), MP_EVENT_SOCKET, 1,
	  0, NULL, "UNIX datagram socket for new-mail events" },
	{ "events", "socket_mode", T_MODE, O(event_socket_mode), "0666", 0, 0,
	  NULL, "permissions of the event socket" },
	{ "events", "allow_users", T_NAMES, O(allow_users), "", 0, 0, NULL,
	  "system users who may post events; empty: any" },
	{ "events", "trusted_users", T_NAMES, O(trusted_users),
	  "root postfix dovecot vmail", 0, 0, NULL,
	  "users who may post for any user (others only for themselves); "
	  "defaults that do not exist are skipped" },
	{ "events", "buffer_size", T_SIZE, O(event_buffer_size), "1M",
	  64 * 1024, 256ULL << 20, NULL, "event socket receive buffer" },

	{ "provision", "socket", T_SOCKPATH, O(provision_socket), "", 0, 0,
	  NULL, "socket that hands out tokens (Dovecot plugin); empty: none" },
	{ "provision", "socket_mode", T_MODE, O(provision_socket_mode), "0666",
	  0, 0, NULL, "permissions of the provisioning socket" },
	{ "provision", "servers", T_SERVERS, O(provision_servers), "", 0, 0,
	  NULL, "notifiers clients are given, host:port, preferred first" },
	{ "provision", "timeout", T_DURATION, O(provision_timeout), "2s", 10,
	  30 * SEC, NULL, "time a provisioning request may take in all" },

	{ "hook", "socket", T_SOCKPATH, O(hook_socket), "", 0, 0, NULL,
	  "socket mailpush-hook writes to; empty: [events] socket" },
	{ "hook", "timeout", T_DURATION, O(hook_timeout), "100ms", 1, 10 * SEC,
	  NULL, "longest mailpush-hook waits for the daemon" },

	{ "names", "fold_case", T_BOOL, O(names.fold_case), "yes", 0, 0, NULL,
	  "user names are case-insensitive" },
	{ "names", "recipient_delimiter", T_DELIMS, O(names.delimiters), "+",
	  0, 0, NULL, "characters that start an address extension" },

	{ "limits", "max_registrations_per_client", T_UINT,
	  O(max_registrations_per_client), "0", 0, 1024, NULL,
	  "registrations per user; 0: 8" },
	{ "limits", "max_context_size", T_UINT, O(max_context_size), "0", 0,
	  MP_CONTEXT_MAX, NULL, "bytes of client context; 0: 16" },
	{ "limits", "max_registrations", T_UINT, O(max_registrations),
	  "1000000", 1, 100000000, NULL, "registrations in total" },
	{ "limits", "max_registrations_per_address", T_UINT,
	  O(max_registrations_per_address), "1000", 0, 100000000, NULL,
	  "registrations from one IP address; 0: no limit" },
	{ "limits", "max_mailboxes", T_UINT, O(max_mailboxes), "16", 1,
	  MP_MAILBOXES_MAX, NULL, "mailboxes one registration may name" },
	{ "limits", "registration_lifetime", T_DURATION,
	  O(registration_lifetime), "10m", 1 * SEC, 7 * DAY, NULL,
	  "life of a registration that is not refreshed" },
	{ "limits", "min_push_interval", T_DURATION, O(min_push_interval),
	  "500ms", 0, HOUR, NULL,
	  "events within this time of a push are coalesced" },
	{ "limits", "push_retries", T_UINT, O(push_retries), "3", 0, 20, NULL,
	  "retransmissions of an unacknowledged push" },
	{ "limits", "push_retry_interval", T_DURATION, O(push_retry_interval),
	  "2s", 10, HOUR, NULL, "first retransmission delay, doubled each time" },
	{ "limits", "on_limit", T_ENUM, O(on_limit), "refuse", 0, 0,
	  "refuse|evict-oldest", "what a registration over the per-user limit does" },
	{ "limits", "refusal_log_interval", T_DURATION,
	  O(refusal_log_interval), "60s", 0, DAY, NULL,
	  "one refusal log line per user per interval" },
	{ "limits", "ipv6_address_prefix", T_UINT, O(ipv6_address_prefix),
	  "64", 1, 128, NULL,
	  "IPv6 prefix length counted as one address for the address limit" },
	{ "limits", "keepalive_min", T_DURATION, O(keepalive_min), "15s",
	  1 * SEC, 65535 * SEC, NULL,
	  "shortest keep-alive interval clients are told to use" },
	{ "limits", "keepalive_max", T_DURATION, O(keepalive_max), "5m",
	  1 * SEC, 65535 * SEC, NULL,
	  "longest keep-alive interval and probe delay clients may use" },

	{ "cluster", "role", T_ENUM, O(cluster_role), "none", 0, 0,
	  "none|relay|notifier|relay+notifier",
	  "none: one machine; relay: publish events; notifier: push them" },
	{ "cluster", "redis", T_REDIS, O(redis), "127.0.0.1:6379", 0, 0, NULL,
	  "Redis server: IPv4ADDR:PORT, [IPv6ADDR]:PORT or a socket path" },
	{ "cluster", "redis_user", T_WORD, O(redis_user), "", 0, 0, NULL,
	  "Redis ACL user; empty: the default user" },
	{ "cluster", "redis_password_file", T_PATH, O(redis_password_file),
	  "", 0, 0, NULL, "file holding the Redis password; empty: no AUTH" },
	{ "cluster", "channel", T_WORD, O(cluster_channel), "mailpush", 1, 0,
	  NULL, "Redis pub/sub channel of the events" },
	{ "cluster", "connect_timeout", T_DURATION, O(redis_connect_timeout),
	  "2s", 100, MIN, NULL, "longest wait for a Redis connection" },
	{ "cluster", "reconnect_min", T_DURATION, O(redis_reconnect_min),
	  "100ms", 10, MIN, NULL, "first delay before reconnecting" },
	{ "cluster", "reconnect_max", T_DURATION, O(redis_reconnect_max),
	  "5s", 100, 10 * MIN, NULL, "longest delay between reconnections" },
	{ "cluster", "heartbeat_interval", T_DURATION, O(heartbeat_interval),
	  "1s", 100, 10 * MIN, NULL, "how often each Redis link is checked" },
	{ "cluster", "heartbeat_timeout", T_DURATION, O(heartbeat_timeout),
	  "3s", 200, HOUR, NULL, "a link silent this long is reconnected" },
	{ "cluster", "relay_buffer", T_UINT, O(relay_buffer), "10000", 1,
	  10000000, NULL, "events a relay holds while Redis is away" },
};
#define N_KEYS	(sizeof(config_keys) / sizeof(config_keys[0]))
_Static_assert(N_KEYS <= sizeof(((struct mp_config *)0)->text) /
    sizeof(char *), "struct mp_config: text[] too small for the key table");

/* Keys of a [user NAME] section. */
static const struct key override_keys[] = {
	{ "user", "max_registrations_per_client", T_UINT,
	  offsetof(struct config_override, max_registrations_per_client), "0",
	  0, 1024, NULL, "registrations for this user; 0: [limits] value" },
	{ "user", "max_context_size", T_UINT,
	  offsetof(struct config_override, max_context_size), "0", 0,
	  MP_CONTEXT_MAX, NULL, "context bytes for this user; 0: [limits] value" },
};
#define N_OVERRIDE_KEYS	(sizeof(override_keys) / sizeof(override_keys[0]))

#define OVERRIDES_MAX	256
#define CONFIG_ALLOW_MAX 1024	/* networks in allow, users in allow_users */

/* What the current section is, as the reader saw its header. */
enum { SECT_NONE, SECT_KNOWN, SECT_USER, SECT_BAD };

struct parse {
	struct mp_config *cfg;
	const char	*path;
	FILE		*fp;
	int		 lineno;
	int		 errors;
	int		 seen[N_KEYS];	/* line of each key; 0: not yet */
	unsigned char	 full[N_KEYS];	/* list full, reported */

	/*
	 * The reader's model of inih's state.  inih keeps only 49 bytes of a
	 * section name and calls the handler for no empty section, so the
	 * reader, which sees every header, decides what the section is.
	 * last_key is the key a continuation line continues; NULL drops
	 * continuation lines (their first line was refused).
	 */
	int		 sect_kind;	/* SECT_* */
	char		 section[INI_MAX_LINE];	/* as written */
	int		 in_key;	/* inih has a previous key */
	int		 continuation;	/* this line continues a value */
	const struct key *last_key;
	size_t		 last_idx;
	int		 override;	/* index into overrides, or -1 */
	int		 oseen[N_OVERRIDE_KEYS];
	int		 override_line[OVERRIDES_MAX];

	char		*line;
	size_t		 linecap;

	/* config_load_for: a program that uses only some keys */
	const char	*who;		/* NULL: strict (the daemon) */
	const char *const *uses;	/* "section.key", NULL-terminated */
	int		 ignored;	/* errors elsewhere, not logged */
	char		 first_ignored[512];
};

static void perr(struct parse *, const char *section, const char *key,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Does the lenient reader's program use this key? */
static int
uses_key(const struct parse *p, const char *section, const char *key)
{
	size_t sl;
	int i;

	if (section == NULL || key == NULL)
		return 0;
	sl = strlen(section);
	for (i = 0; p->uses[i] != NULL; i++)
		if (strncmp(p->uses[i], section, sl) == 0 &&
		    p->uses[i][sl] == '.' && strcmp(p->uses[i] + sl + 1, key)
		    == 0)
			return 1;
	return 0;
}

static void
perr(struct parse *p, const char *section, const char *key, const char *fmt,
    ...)
{
	char msg[512], line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (section != NULL && key != NULL)
		snprintf(line, sizeof(line), "%s:%d: [%s] %s: %s", p->path,
		    p->lineno, section, key, msg);
	else if (section != NULL)
		snprintf(line, sizeof(line), "%s:%d: [%s]: %s", p->path,
		    p->lineno, section, msg);
	else
		snprintf(line, sizeof(line), "%s:%d: %s", p->path, p->lineno,
		    msg);
	/* the file's bytes (names, values) are escaped for the log */
	if (p->who == NULL) {
		log_error("%s", log_str(line));
		p->errors++;
	} else if (uses_key(p, section, key))
		/* set_key stored nothing: the value stays the default */
		log_warnx("%s (%s uses the built-in default)", log_str(line),
		    p->who);
	else if (p->ignored++ == 0)
		snprintf(p->first_ignored, sizeof(p->first_ignored), "%s",
		    log_str(line));
}

/* A list has no room for `item': report it once for the whole list. */
static int
list_full(struct parse *p, const struct key *k, const char *fmt, int max)
{
	size_t idx = (size_t)(k - config_keys);

	if (!p->full[idx])
		perr(p, k->section, k->name, fmt, max);
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
		perr(p, k->section, k->name, "bad address \"%s\": must be "
		    "IPv4ADDR[:PORT] or [IPv6ADDR][:PORT] with a port from "
		    "1 to 65535", item);
		return -1;
	}
	/* config_parse_listen zeroes the whole sockaddr: memcmp is exact */
	for (i = 0; i < cfg->n_listen; i++)
		if (cfg->listen[i].len == l->len &&
		    memcmp(&cfg->listen[i].ss, &l->ss, l->len) == 0) {
			perr(p, k->section, k->name, "duplicate address "
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
		perr(p, k->section, k->name, "bad network \"%s\": must be "
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

static void
names_clear(char **v, size_t n)
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
		perr(p, k->section, k->name, "bad server \"%s\": must be "
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
		perr(p, k->section, k->name, "bad user name \"%s\": "
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
static int
set_key(struct parse *p, const struct key *k, void *base, const char *value,
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
			perr(p, sect, k->name, "must be an integer from "
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
			perr(p, sect, k->name, "must be a duration from "
			    "%s to %s (a number with ms, s, m, h or d)", lo,
			    hi);
			return -1;
		}
		*(uint64_t *)field = v;
		return 0;
	case T_SIZE:
		if (config_parse_size(value, &v) != 0 || v < k->min ||
		    v > k->max) {
			perr(p, sect, k->name, "must be a size from "
			    "%" PRIu64 "k to %" PRIu64 "M (a number of bytes, "
			    "with k, M or G)", k->min / 1024, k->max >> 20);
			return -1;
		}
		*(uint64_t *)field = v;
		return 0;
	case T_BOOL:
		if (config_parse_bool(value, (int *)field) != 0) {
			perr(p, sect, k->name, "must be yes or no");
			return -1;
		}
		return 0;
	case T_MODE:
		errno = 0;
		v = strtoull(value, &end, 8);
		if (!isdigit((unsigned char)*value) || *end != '\0' ||
		    errno != 0 || v > 0777) {
			perr(p, sect, k->name, "must be an octal file "
			    "mode from 0000 to 0777");
			return -1;
		}
		*(unsigned *)field = (unsigned)v;
		return 0;
	case T_USER:
	case T_GROUP:
		if (*value != '\0' && !config_valid_sysname(value)) {
			perr(p, sect, k->name, "bad %s name \"%s\": "
			    CONFIG_SYSNAME_RULE, k->type == T_USER ? "user" : "group",
			    value);
			return -1;
		}
		if (*value != '\0' && p->lineno > 0 && config_lookup_accounts) {
			if (k->type == T_USER && getpwnam(value) == NULL) {
				perr(p, sect, k->name, "no such user "
				    "\"%s\"", value);
				return -1;
			}
			if (k->type == T_GROUP && getgrnam(value) == NULL) {
				perr(p, sect, k->name, "no such group "
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
			perr(p, sect, k->name, "must be an absolute path "
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
			names_clear(*names, *n);
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
		perr(p, sect, k->name, "must be one of: %s", k->choices);
		return -1;
	}
	case T_DELIMS: {
		const char *s;

		if (strlen(value) >= sizeof(((struct user_rule *)0)->delimiters)) {
			perr(p, sect, k->name, "at most 15 characters");
			return -1;
		}
		for (s = value; *s; s++)
			if (!ispunct((unsigned char)*s) || *s == '@') {
				perr(p, sect, k->name, "must be "
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
			perr(p, sect, k->name, "must be %d to %d characters",
			    (int)k->min, CONFIG_WORD_MAX - 1);
			return -1;
		}
		for (s = value; *s; s++)
			if (!isgraph((unsigned char)*s)) {
				perr(p, sect, k->name, "must be printable "
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
			perr(p, sect, k->name, "bad Redis address \"%s\": "
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

static const struct key *
find_key(const struct key *table, size_t n, const char *section,
    const char *name, size_t *idx)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((section == NULL || strcmp(table[i].section, section) == 0)
		    && strcmp(table[i].name, name) == 0) {
			*idx = i;
			return &table[i];
		}
	return NULL;
}

static int
is_list(const struct key *k)
{
	return k->type == T_LISTEN || k->type == T_CIDRS || k->type == T_NAMES ||
	    k->type == T_SERVERS;
}

/* Remember the text of a key for config_print; lists accumulate. */
static void
set_text(struct parse *p, size_t idx, const char *value, int append)
{
	char *old = p->cfg->text[idx], *t;
	size_t ol, vl = strlen(value);

	if (append && old != NULL && *old != '\0') {
		ol = strlen(old);
		if ((t = malloc(ol + 1 + vl + 1)) == NULL)
			fatal("malloc");
		memcpy(t, old, ol);
		t[ol] = ' ';
		memcpy(t + ol + 1, value, vl + 1);
	} else if ((t = strdup(value)) == NULL)
		fatal("strdup");
	free(old);
	p->cfg->text[idx] = t;
}

/* A [user NAME] header; `rest' is what follows "user". */
static void
override_section(struct parse *p, const char *rest)
{
	struct mp_config *cfg = p->cfg;
	struct config_override *o;
	char name[INI_MAX_LINE];
	size_t i, len;

	while (isspace((unsigned char)*rest))
		rest++;
	len = strlen(rest);
	while (len > 0 && isspace((unsigned char)rest[len - 1]))
		len--;
	if (len == 0 || len > MP_USER_MAX) {
		perr(p, p->section, NULL, "a user section must be [user NAME] "
		    "with a name of 1 to %d bytes", MP_USER_MAX);
		return;
	}
	snprintf(name, sizeof(name), "%.*s", (int)len, rest);
	for (i = 0; i < cfg->n_overrides; i++)
		if (strcmp(cfg->overrides[i].user, name) == 0) {
			perr(p, p->section, NULL, "duplicate section (first at "
			    "line %d)", p->override_line[i]);
			return;
		}
	if (cfg->n_overrides >= OVERRIDES_MAX) {
		perr(p, p->section, NULL, "at most %d [user NAME] sections",
		    OVERRIDES_MAX);
		return;
	}
	if ((o = reallocarray(cfg->overrides, cfg->n_overrides + 1,
	    sizeof(*o))) == NULL)
		fatal("reallocarray");
	cfg->overrides = o;
	o = &cfg->overrides[cfg->n_overrides];
	memset(o, 0, sizeof(*o));
	snprintf(o->user, sizeof(o->user), "%s", name);
	p->override_line[cfg->n_overrides] = p->lineno;
	p->override = (int)cfg->n_overrides++;
	p->sect_kind = SECT_USER;
}

/* A section header: `name' is what stands between the brackets. */
static void
section_header(struct parse *p, const char *name, size_t len)
{
	static const char *known[] = {
		"mailpushd", "events", "provision", "hook", "names", "limits",
		"cluster",
	};
	size_t i;

	snprintf(p->section, sizeof(p->section), "%.*s", (int)len, name);
	p->sect_kind = SECT_BAD;	/* its keys are dropped silently */
	p->override = -1;
	memset(p->oseen, 0, sizeof(p->oseen));
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(p->section, known[i]) == 0) {
			p->sect_kind = SECT_KNOWN;
			return;
		}
	if (strncmp(p->section, "user", 4) == 0 && (p->section[4] == '\0' ||
	    isspace((unsigned char)p->section[4]))) {
		override_section(p, p->section + 4);
		return;
	}
	perr(p, p->section, NULL, "unknown section (known: mailpushd, events, "
	    "provision, hook, names, limits, cluster, user NAME)");
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	const struct key *k;
	size_t idx;

	(void)section;		/* inih's copy may be truncated */
	if (p->continuation) {
		if ((k = p->last_key) == NULL)
			return 1;	/* its first line was refused */
		if (!is_list(k)) {
			perr(p, p->section, k->name, "continuation lines are "
			    "only allowed for lists");
			return 1;
		}
		if (set_key(p, k, p->cfg, value, 1) == 0)
			set_text(p, p->last_idx, value, 1);
		return 1;
	}
	p->last_key = NULL;
	switch (p->sect_kind) {
	case SECT_NONE:
		perr(p, NULL, NULL, "%s: key outside any section", name);
		return 1;
	case SECT_BAD:
		return 1;	/* the header was reported */
	default:
		break;
	}
	if (*name == '\0') {
		perr(p, p->section, NULL, "missing key name before '='");
		return 1;
	}
	if (p->sect_kind == SECT_USER) {
		k = find_key(override_keys, N_OVERRIDE_KEYS, NULL, name, &idx);
		if (k == NULL) {
			perr(p, p->section, name, "unknown key (a [user NAME] "
			    "section allows max_registrations_per_client and "
			    "max_context_size)");
			return 1;
		}
		if (p->oseen[idx]) {
			perr(p, p->section, name, "duplicate key (first at "
			    "line %d)", p->oseen[idx]);
			return 1;
		}
		p->oseen[idx] = p->lineno;
		p->last_key = k;
		set_key(p, k, &p->cfg->overrides[p->override], value, 0);
		return 1;
	}
	k = find_key(config_keys, N_KEYS, p->section, name, &idx);
	if (k == NULL) {
		perr(p, p->section, name, "unknown key");
		return 1;
	}
	if (p->seen[idx]) {
		perr(p, p->section, name, "duplicate key (first at line %d)",
		    p->seen[idx]);
		return 1;
	}
	p->seen[idx] = p->lineno;
	p->last_key = k;
	p->last_idx = idx;
	if (k->off == O(trusted_users))
		p->cfg->trusted_users_set = 1;
	if (set_key(p, k, p->cfg, value, 0) == 0)
		set_text(p, idx, value, 0);
	return 1;
}

/*
 * inih's find_chars_or_comment: the first of `chars', or an inline comment
 * (';' after white space), or the end.
 */
static const char *
inline_end(const char *s, const char *chars)
{
	int was_space = 0;

	while (*s != '\0' && strchr(chars, *s) == NULL &&
	    !(was_space && *s == ';')) {
		was_space = isspace((unsigned char)*s);
		s++;
	}
	return s;
}

/*
 * The reader inih calls for each line.  It counts lines, follows inih's
 * rules to know what inih will make of each line, and reports what inih
 * would skip, split or report only once: over-long lines, lines that are
 * neither blank, comment, section nor key = value, section headers.  A
 * refused line reaches inih as a blank line.
 */
static char *
reader(char *str, int num, void *stream)
{
	struct parse *p = stream;
	ssize_t n;
	char *line, *s;
	const char *e;
	/* our buffers hold what a library built with INI_MAX_LINE holds */
	int max = num < INI_MAX_LINE ? num : INI_MAX_LINE;

	if ((n = getline(&p->line, &p->linecap, p->fp)) == -1)
		return NULL;
	p->lineno++;
	p->continuation = 0;
	str[0] = '\0';
	line = p->line;
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (p->lineno == 1 && n >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
		line += 3;	/* a UTF-8 byte order mark */
		n -= 3;
	}
	if (strlen(line) != (size_t)n) {
		perr(p, NULL, NULL, "line contains a NUL byte");
		p->last_key = NULL;
		return str;
	}
	for (s = line; isspace((unsigned char)*s); s++)
		;
	if (*s == '\0' || *s == ';' || *s == '#')
		return str;	/* blank or comment, of any length */
	if (n > max - 1) {
		perr(p, NULL, NULL, "line longer than %d characters", max - 1);
		p->last_key = NULL;
		return str;
	}
	if (s > line && p->in_key) {
		/*
		 * inih: an indented line continues the previous value.  inih
		 * 55 keeps an inline comment there (later versions strip
		 * it): strip it here, as on the key's first line.
		 */
		p->continuation = 1;
		e = inline_end(s, "");
		n = e - line;
		while (n > 0 && isspace((unsigned char)line[n - 1]))
			n--;
		line[n] = '\0';
	} else if (*s == '[') {
		e = inline_end(s + 1, "]");
		if (*e != ']') {
			perr(p, NULL, NULL, "section header without ']'");
			/* drop its keys, as those of an unknown section */
			p->sect_kind = SECT_BAD;
			p->last_key = NULL;
			return str;
		}
		section_header(p, s + 1, (size_t)(e - s - 1));
		p->in_key = 0;
		p->last_key = NULL;
		for (e++; isspace((unsigned char)*e); e++)
			;
		if (*e != '\0' && *e != ';' && *e != '#')
			perr(p, p->section, NULL, "text after the section "
			    "header");
	} else {
		e = inline_end(s, "=:");
		if (*e != '=' && *e != ':') {
			perr(p, NULL, NULL, "expected [section] or key = "
			    "value, not \"%.40s\"", s);
			p->last_key = NULL;
			return str;
		}
		p->in_key = 1;
	}
	memcpy(str, line, (size_t)n + 1);
	return str;
}

static void
init_parse(struct parse *p, struct mp_config *cfg, const char *path)
{
	memset(p, 0, sizeof(*p));
	p->cfg = cfg;
	p->path = path;
	p->override = -1;
}

void
config_defaults(struct mp_config *cfg)
{
	struct parse p;
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	init_parse(&p, cfg, "(defaults)");
	for (i = 0; i < N_KEYS; i++) {
		if (set_key(&p, &config_keys[i], cfg, config_keys[i].def, 0)
		    != 0)
			abort();	/* a default that does not parse */
		if ((cfg->text[i] = strdup(config_keys[i].def)) == NULL)
			fatal("strdup");
	}
	snprintf(cfg->path, sizeof(cfg->path), "%s", "(built-in defaults)");
}

/* A key's place in config_keys. */
static size_t
key_index(const char *section, const char *name)
{
	size_t idx = 0;

	if (find_key(config_keys, N_KEYS, section, name, &idx) == NULL)
		abort();
	return idx;
}

/*
 * Checks that need the whole file: names that depend on [names], wherever
 * in the file it was; keys that depend on each other.
 */
static void
finish(struct parse *p)
{
	struct mp_config *cfg = p->cfg;
	char out[MP_USER_MAX + 1], sect[MP_USER_MAX + 8];
	const char *why;
	size_t i, j, idx = key_index("mailpushd", "listen");

	for (i = 0; i < cfg->n_overrides; i++) {
		snprintf(sect, sizeof(sect), "user %s", cfg->overrides[i].user);
		p->lineno = p->override_line[i];
		if (user_normalize(&cfg->names, cfg->overrides[i].user,
		    strlen(cfg->overrides[i].user), out, &why) != 0) {
			perr(p, sect, NULL, "%s", why);
			continue;
		}
		snprintf(cfg->overrides[i].user, sizeof(out), "%s", out);
		for (j = 0; j < i; j++)
			if (strcmp(cfg->overrides[j].user, out) == 0) {
				perr(p, sect, NULL, "the same user (%s) as the "
				    "section at line %d", out,
				    p->override_line[j]);
				break;
			}
	}
	if (cfg->n_listen == 0 && strspn(cfg->text[idx], " \t,") ==
	    strlen(cfg->text[idx])) {
		p->lineno = p->seen[idx];
		perr(p, "mailpushd", "listen", "needs at least one address");
	}
	if (cfg->heartbeat_timeout <= cfg->heartbeat_interval) {
		p->lineno = p->seen[key_index("cluster", "heartbeat_timeout")];
		perr(p, "cluster", "heartbeat_timeout", "must be longer than "
		    "heartbeat_interval");
	}
	if (cfg->redis_reconnect_max < cfg->redis_reconnect_min) {
		p->lineno = p->seen[key_index("cluster", "reconnect_max")];
		perr(p, "cluster", "reconnect_max", "must not be shorter than "
		    "reconnect_min");
	}
	if (cfg->auth == AUTH_NONE && cfg->n_allow == 0) {
		p->lineno = p->seen[key_index("mailpushd", "auth")];
		perr(p, "mailpushd", "auth", "none requires an allow list of "
		    "trusted networks");
	}
}

static int
load(const char *path, struct mp_config *cfg, const char *who,
    const char *const *uses)
{
	struct parse p;
	int rc;

	config_defaults(cfg);
	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	init_parse(&p, cfg, path);
	p.who = who;
	p.uses = uses;
	if ((p.fp = fopen(path, "r")) == NULL) {
		if (who != NULL) {
			log_warnx("%s: cannot open configuration file: %s (%s "
			    "uses the built-in defaults)", path,
			    strerror(errno), who);
			return 0;
		}
		log_error("%s: cannot open configuration file: %s", path,
		    strerror(errno));
		return 1;
	}
	rc = ini_parse_stream(reader, &p, handler, &p);
	if (ferror(p.fp)) {
		log_raw(who ? MP_LOG_WARN : MP_LOG_ERR, "%s: read error: %s",
		    path, strerror(errno));
		if (who == NULL)
			p.errors++;
	}
	fclose(p.fp);
	free(p.line);
	if (rc == -2)
		fatalx("%s: out of memory", path);
	if (rc > 0 && p.errors == 0 && p.ignored == 0) {
		/* inih found an error the reader did not foresee */
		p.lineno = rc;
		perr(&p, NULL, NULL, "syntax error");
	}
	finish(&p);
	if (p.ignored > 0)
		log_warnx("%s: %d error%s in parts %s does not use, ignored "
		    "(first: %s)", path, p.ignored, p.ignored == 1 ? "" : "s",
		    who, p.first_ignored);
	return p.errors;
}

int
config_load(const char *path, struct mp_config *cfg)
{
	return load(path, cfg, NULL, NULL);
}

int
config_load_for(const char *path, struct mp_config *cfg, const char *who,
    const char *const *uses)
{
	return load(path, cfg, who, uses);
}

void
config_free(struct mp_config *cfg)
{
	size_t i;

	names_clear(cfg->allow_users, cfg->n_allow_users);
	names_clear(cfg->trusted_users, cfg->n_trusted_users);
	free(cfg->allow);
	free(cfg->overrides);
	for (i = 0; i < N_KEYS; i++)
		free(cfg->text[i]);
	memset(cfg, 0, sizeof(*cfg));
}

/*
 * A list, wrapped onto continuation lines so that no line comes near
 * inih's limit however long the list is.
 */
static void
print_list(FILE *fp, const char *name, const char *text)
{
	char *buf, *tok, *save = NULL;
	size_t col, first = strlen(name) + 2, tl;

	if ((buf = strdup(text)) == NULL)
		fatal("strdup");
	fprintf(fp, "%s =", name);
	col = first;
	for (tok = strtok_r(buf, " \t,", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t,", &save)) {
		tl = strlen(tok);
		if (col > first && col + 1 + tl > 72) {
			fprintf(fp, "\n\t%s", tok);
			col = 8 + tl;
		} else {
			fprintf(fp, " %s", tok);
			col += 1 + tl;
		}
	}
	free(buf);
}

/*
 * Every key with its effective value, in a form config_load reads back to
 * the same configuration.
 */
void
config_print(const struct mp_config *cfg, FILE *fp)
{
	const char *section = "", *text;
	size_t i;

	fprintf(fp, "; effective configuration from %s\n", cfg->path);
	for (i = 0; i < N_KEYS; i++) {
		const struct key *k = &config_keys[i];

		if (strcmp(section, k->section) != 0) {
			fprintf(fp, "%s[%s]\n", i ? "\n" : "", k->section);
			section = k->section;
		}
		text = cfg->text[i] ? cfg->text[i] : "";
		if (is_list(k))
			print_list(fp, k->name, text);
		else if (*text == ';' || *text == '\0')
			/* no space: inih would take " ;" for a comment */
			fprintf(fp, "%s =%s", k->name, text);
		else if (strlen(k->name) + 3 + strlen(text) > INI_MAX_LINE - 1)
			/* it was read from a line this long, or shorter */
			fprintf(fp, "%s=%s", k->name, text);
		else
			fprintf(fp, "%s = %s", k->name, text);
		if (strcmp(k->name, "max_registrations_per_client") == 0 &&
		    cfg->max_registrations_per_client == 0)
			fprintf(fp, "\t; means %d", MP_DEFAULT_REGS_PER_CLIENT);
		if (strcmp(k->name, "max_context_size") == 0 &&
		    cfg->max_context_size == 0)
			fprintf(fp, "\t; means %d", MP_DEFAULT_CONTEXT_SIZE);
		fputc('\n', fp);
	}
	for (i = 0; i < cfg->n_overrides; i++)
		fprintf(fp, "\n[user %s]\nmax_registrations_per_client = %u\n"
		    "max_context_size = %u\n", cfg->overrides[i].user,
		    cfg->overrides[i].max_registrations_per_client,
		    cfg->overrides[i].max_context_size);
}

static const struct config_override *
find_override(const struct mp_config *cfg, const char *user)
{
	size_t i;

	for (i = 0; i < cfg->n_overrides; i++)
		if (strcmp(cfg->overrides[i].user, user) == 0)
			return &cfg->overrides[i];
	return NULL;
}

unsigned
config_max_regs(const struct mp_config *cfg, const char *user)
{
	const struct config_override *o = find_override(cfg, user);

	if (o != NULL && o->max_registrations_per_client != 0)
		return o->max_registrations_per_client;
	return cfg->max_registrations_per_client ?
	    cfg->max_registrations_per_client : MP_DEFAULT_REGS_PER_CLIENT;
}

unsigned
config_max_context(const struct mp_config *cfg, const char *user)
{
	const struct config_override *o = find_override(cfg, user);

	if (o != NULL && o->max_context_size != 0)
		return o->max_context_size;
	return cfg->max_context_size ? cfg->max_context_size :
	    MP_DEFAULT_CONTEXT_SIZE;
}

int
config_user_may_post(const struct mp_config *cfg, const char *user)
{
	size_t i;

	if (cfg->n_allow_users == 0)
		return 1;
	for (i = 0; i < cfg->n_allow_users; i++)
		if (strcmp(cfg->allow_users[i], user) == 0)
			return 1;
	return 0;
}

const char *
config_hook_socket(const struct mp_config *cfg)
{
	return cfg->hook_socket[0] ? cfg->hook_socket : cfg->event_socket;
}
