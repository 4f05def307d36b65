/*
 * config_keys.c: the table of every mailpushd.conf key (section, type,
 * default, bounds, help), the keys of a [user NAME] section, and finding a
 * key in them.  The table drives parsing (config.c, config_set.c), the
 * built-in defaults and `mailpushd -n' (config_print.c).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"

#define SEC	((uint64_t)1000)
#define MIN	(60 * SEC)
#define HOUR	(60 * MIN)
#define DAY	(24 * HOUR)

const struct key config_keys[] = {
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
const size_t config_n_keys = sizeof(config_keys) / sizeof(config_keys[0]);
_Static_assert(sizeof(config_keys) / sizeof(config_keys[0]) <=
    CONFIG_KEYS_MAX, "struct mp_config: text[] too small for the key table");

/* Keys of a [user NAME] section. */
const struct key config_override_keys[CONFIG_N_OVERRIDE_KEYS] = {
	{ "user", "max_registrations_per_client", T_UINT,
	  offsetof(struct config_override, max_registrations_per_client), "0",
	  0, 1024, NULL, "registrations for this user; 0: [limits] value" },
	{ "user", "max_context_size", T_UINT,
	  offsetof(struct config_override, max_context_size), "0", 0,
	  MP_CONTEXT_MAX, NULL, "context bytes for this user; 0: [limits] value" },
};
_Static_assert(sizeof(config_override_keys) /
    sizeof(config_override_keys[0]) == CONFIG_N_OVERRIDE_KEYS,
    "CONFIG_N_OVERRIDE_KEYS does not match the table");

const struct key *
config_find_key(const struct key *table, size_t n, const char *section,
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

int
config_key_is_list(const struct key *k)
{
	return k->type == T_LISTEN || k->type == T_CIDRS || k->type == T_NAMES ||
	    k->type == T_SERVERS;
}

/* A key's place in config_keys. */
size_t
config_key_index(const char *section, const char *name)
{
	size_t idx = 0;

	if (config_find_key(config_keys, config_n_keys, section, name, &idx) == NULL)
		abort();
	return idx;
}
