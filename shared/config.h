/*
 * config.h: the one INI file every mailpush program reads, mailpushd.conf(5).
 * The key table in config.c drives parsing, validation, defaults and the
 * `mailpushd -n' printout.
 */
#ifndef MP_CONFIG_H
#define MP_CONFIG_H

#include <sys/types.h>
#include <sys/socket.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "mailpush.h"
#include "user.h"

#define CONFIG_LISTEN_MAX	16
#define CONFIG_SOCKPATH_MAX	108	/* sizeof(sun_path) */
#define CONFIG_NAME_MAX		64
#define CONFIG_SERVERS_MAX	512	/* [provision] servers, as text */
#define CONFIG_SERVER_MAX	16	/* host:port entries in it */

enum { AUTH_TOKEN, AUTH_NONE };
enum { ON_LIMIT_REFUSE, ON_LIMIT_EVICT_OLDEST };
/* [cluster] role: a bit mask, mailpush-cluster(7) */
enum { CLUSTER_NONE = 0, CLUSTER_RELAY = 1, CLUSTER_NOTIFIER = 2,
    CLUSTER_BOTH = 3 };
#define CONFIG_WORD_MAX		64	/* [cluster] channel, redis_user */

struct config_listen {
	struct sockaddr_storage	ss;
	socklen_t		len;
	char			text[64];	/* as written: "127.0.0.1:4650" */
};

struct config_cidr {
	int		family;
	uint8_t		addr[16];
	unsigned	prefix;
};

struct config_override {
	char		user[MP_USER_MAX + 1];	/* normalised */
	unsigned	max_registrations_per_client;	/* 0: global value */
	unsigned	max_context_size;		/* 0: global value */
};

struct mp_config {
	char		path[PATH_MAX];

	/* [mailpushd] */
	char		user[CONFIG_NAME_MAX];
	char		group[CONFIG_NAME_MAX];
	struct config_listen listen[CONFIG_LISTEN_MAX];
	size_t		n_listen;
	char		key_file[PATH_MAX];
	uint64_t	key_grace;		/* ms */
	int		auth;
	struct config_cidr *allow;
	size_t		n_allow;
	uint64_t	timestamp_window;	/* ms */
	char		state_file[PATH_MAX];
	uint64_t	state_save_interval;	/* ms */
	int		state_sync;		/* fdatasync before answering */
	uint64_t	journal_size_limit;	/* bytes: then a snapshot */
	char		control_socket[CONFIG_SOCKPATH_MAX];
	unsigned	control_socket_mode;
	char		control_socket_group[CONFIG_NAME_MAX];
	uint64_t	udp_buffer_size;	/* bytes */

	/* [events] */
	char		event_socket[CONFIG_SOCKPATH_MAX];
	unsigned	event_socket_mode;
	char		**allow_users;		/* NULL: anybody may post */
	size_t		n_allow_users;
	char		**trusted_users;	/* may act for any user */
	size_t		n_trusted_users;
	int		trusted_users_set;	/* written in the file */
	uint64_t	event_buffer_size;

	/* [provision] */
	char		provision_socket[CONFIG_SOCKPATH_MAX];	/* "": none */
	unsigned	provision_socket_mode;
	char		provision_servers[CONFIG_SERVERS_MAX];	/* space-separated */
	uint64_t	provision_timeout;	/* ms */

	/* [hook] */
	char		hook_socket[CONFIG_SOCKPATH_MAX];	/* "": event_socket */
	uint64_t	hook_timeout;		/* ms */

	/* [names] */
	struct user_rule names;

	/* [limits] */
	unsigned	max_registrations_per_client;	/* 0: 8 */
	unsigned	max_context_size;		/* 0: 16 */
	unsigned	max_registrations;
	unsigned	max_registrations_per_address;
	unsigned	max_mailboxes;
	uint64_t	registration_lifetime;	/* ms */
	uint64_t	min_push_interval;	/* ms */
	unsigned	push_retries;
	uint64_t	push_retry_interval;	/* ms */
	int		on_limit;
	uint64_t	refusal_log_interval;	/* ms */
	unsigned	ipv6_address_prefix;	/* bits counted as one address */
	uint64_t	keepalive_min;		/* ms, announced to clients */
	uint64_t	keepalive_max;		/* ms */

	/* [cluster]: mailpush-cluster(7) */
	int		cluster_role;		/* CLUSTER_* */
	char		redis[CONFIG_SOCKPATH_MAX];	/* ADDR:PORT or /path */
	char		redis_user[CONFIG_WORD_MAX];	/* "": no ACL user */
	char		redis_password_file[PATH_MAX];	/* "": no AUTH */
	char		cluster_channel[CONFIG_WORD_MAX];
	uint64_t	redis_connect_timeout;	/* ms */
	uint64_t	redis_reconnect_min;	/* ms */
	uint64_t	redis_reconnect_max;	/* ms */
	uint64_t	heartbeat_interval;	/* ms */
	uint64_t	heartbeat_timeout;	/* ms */
	unsigned	relay_buffer;		/* events */

	/* [user NAME] */
	struct config_override *overrides;
	size_t		n_overrides;

	/* the text of every key, for -n */
	char		*text[64];
};

/* Look up user and group names while loading (default 1). */
extern int config_lookup_accounts;

/* Built-in defaults, as if the file were empty. */
void	config_defaults(struct mp_config *);
/*
 * Read `path' over the defaults.  Every error is logged as
 * "FILE:LINE: [section] key: what is allowed"; returns the number of errors
 * (0 on success).  The config must be released with config_free.
 */
int	config_load(const char *path, struct mp_config *);
/*
 * The same, for a program that uses only the keys in `uses' ("section.key",
 * NULL-terminated), such as mailpush-hook: a bad value of one of those is
 * logged as a warning and the key keeps its built-in default; errors
 * anywhere else are counted and logged as one line, naming `who'.  A file
 * that cannot be opened means the built-in defaults.  Always returns 0.
 */
int	config_load_for(const char *path, struct mp_config *, const char *who,
	    const char *const *uses);
void	config_free(struct mp_config *);
void	config_print(const struct mp_config *, FILE *);

/* Effective limits for one (normalised) user, 0 resolved to the default. */
unsigned config_max_regs(const struct mp_config *, const char *user);
unsigned config_max_context(const struct mp_config *, const char *user);
/* Is a source address inside the allow list?  An empty list allows all. */
int	config_addr_allowed(const struct mp_config *, const struct sockaddr *);
/* May this (normalised) user post events?  No list: anybody. */
int	config_user_may_post(const struct mp_config *, const char *user);
/* The socket the hook writes to. */
const char *config_hook_socket(const struct mp_config *);

/* Value parsers (confval.c), also for the programs' command-line options. */
#define CONFIG_SYSNAME_RULE	"letters, digits, '.', '_', '$' and '-' (not first), " \
				"at most 63 characters"
int	config_valid_sysname(const char *);
int	config_parse_bool(const char *, int *);
void	config_fmt_duration(uint64_t ms, char *buf, size_t len);
int	config_parse_duration(const char *, uint64_t *ms);
int	config_parse_size(const char *, uint64_t *bytes);
int	config_parse_listen(const char *, struct config_listen *);
int	config_parse_cidr(const char *, struct config_cidr *);
/* HOST:PORT or [V6]:PORT, a host name or address and a port 1..65535. */
int	config_valid_server(const char *);
/* [cluster] redis: IPv4ADDR:PORT, [IPv6ADDR]:PORT or an absolute path. */
int	config_parse_redis(const char *, char *host, size_t hostlen, int *port);

#endif
