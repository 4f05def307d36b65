/*
 * provision.h: client-side provisioning over IMAP, mailpush-protocol(7)
 * PROVISIONING.  A client logged in over IMAP (TLS: imaps://, or imap://
 * with STARTTLS, the certificate verified) reads its token, user name and
 * the notifier list from the server's METADATA entries
 *
 *	/private/vendor/vendor.mailpush/token	"ID:HEX"
 *	/private/vendor/vendor.mailpush/user	the name to register
 *	/private/vendor/vendor.mailpush/servers	"HOST:PORT ...", preferred first
 *
 * and keeps them in a cache file (mode 0600) until a refusal says the
 * token is no longer good.  libcurl does the connection, TLS, certificate
 * checks, STARTTLS and login.
 */
#ifndef MP_PROVISION_H
#define MP_PROVISION_H

#include <stddef.h>
#include <stdint.h>

#include "mailpush.h"

#define MPC_PROV_SERVERS_MAX	512	/* bytes of the servers entry */
#define MPC_PROV_TIMEOUT_MS	20000	/* connect, log in and fetch */

struct mpc_provision {
	char		user[MP_USER_MAX + 1];
	uint8_t		key_id;
	uint8_t		token[MP_TOKEN_LEN];
	char		servers[MPC_PROV_SERVERS_MAX];	/* may be empty */
};

struct mpc_provision_opts {
	const char	*url;		/* imaps://USER@HOST[:PORT] or imap://... */
	const char	*password;
	const char	*cafile;	/* NULL: the system's store */
	long		 timeout_ms;	/* 0: MPC_PROV_TIMEOUT_MS */
};

/*
 * Log in and read the three entries.  Returns 0, or -1 with a message in
 * err (the server's, libcurl's or ours): a refused certificate, a refused
 * login, a server without METADATA or without mailpush's entries.
 */
int	mpc_provision_fetch(const struct mpc_provision_opts *,
	    struct mpc_provision *, char *err, size_t errlen);

/*
 * The IMAP answer to our GETMETADATA, as mpc_provision_fetch reads it
 * (exported for the tests and the fuzzer).  _complete: 1 when our tagged
 * line has arrived, 0 not yet, -1 bad.  _parse: 0 with the entries in
 * *pv, or -1 with a message in err.
 */
int	mpc_provision_complete(const char *buf, size_t len);
int	mpc_provision_parse(const char *buf, size_t len, struct mpc_provision *,
	    char *err, size_t errlen);

/* The cache file: written atomically, mode 0600.  -1 with *why. */
int	mpc_provision_save(const char *path, const struct mpc_provision *,
	    const char **why);
int	mpc_provision_load(const char *path, struct mpc_provision *,
	    const char **why);
/*
 * Where the cache of this URL lives: $XDG_STATE_HOME/mailpush (or
 * ~/.local/state/mailpush), made 0700 if missing, file provision-USER@HOST.
 */
int	mpc_provision_cache_path(const char *url, char *path, size_t len,
	    const char **why);

/*
 * The cache if it is good and !force, else a fetch over IMAP saved to the
 * cache.  Returns 0 (*fetched: 1 if over IMAP), or -1 with a message in
 * msg; a cache that cannot be written is only a message (msg non-empty
 * with 0 returned).
 */
int	mpc_provision_get(const struct mpc_provision_opts *, const char *cache,
	    int force, struct mpc_provision *, int *fetched, char *msg,
	    size_t msglen);

/*
 * The password: the first line of a file (which must not be readable by
 * others), or the first line a command prints (run with /bin/sh -c, 30 s
 * at most).  Returns 0, or -1 with a message in err.
 */
int	mpc_password_file(const char *path, char *pw, size_t len, char *err,
	    size_t errlen);
int	mpc_password_command(const char *cmd, char *pw, size_t len, char *err,
	    size_t errlen);

#endif
