/*
 * listen-prov.c: mailpush-listen's provisioning over IMAP (-I, through
 * client/provision.c) and its server lists (provisioned, or -S from DNS
 * SRV), mailpush-listen(1).
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "listen.h"
#include "log.h"

/*
 * -I: the token, user and servers from the cache, or over IMAP when there
 * is none or `force' (a refusal said the token is no longer good).
 * Returns 0, or -1 after saying why.
 */
int
listen_provision(struct listen *l, int force)
{
	char msg[512];
	int fetched;

	if (force)
		l->provisioned_at = listen_now();
	if (mpc_provision_get(&l->popts, l->cache, force, &l->prov, &fetched,
	    msg, sizeof(msg)) != 0) {
		log_warnx("provisioning failed: %s", msg);
		return -1;
	}
	if (msg[0] != '\0')
		log_warnx("%s", msg);
	if (l->verbose)
		log_info("provisioned %s: user %s, key %u, servers %s",
		    fetched ? "over IMAP" : "from the cache", l->prov.user,
		    l->prov.key_id, l->prov.servers[0] ? l->prov.servers :
		    "(none)");
	return 0;
}

/* A list ("HOST:PORT ...", preferred first: provisioned, or from DNS
 * SRV) as servers; the first, or NULL if there is none. */
const char *
listen_server_list(struct listen *l, const char *text)
{
	char *s, *save = NULL;

	snprintf(l->srvbuf, sizeof(l->srvbuf), "%s", text);
	for (s = strtok_r(l->srvbuf, " ", &save); s != NULL &&
	    l->n_servers < LISTEN_SERVERS_MAX; s = strtok_r(NULL, " ", &save))
		l->servers[l->n_servers++] = s;
	return l->n_servers > 0 ? l->servers[0] : NULL;
}

/*
 * The token was refused: when provisioned (-I), fetch over IMAP again, at
 * most once in LISTEN_REPROVISION_MS.  Returns 1 with pa holding a newer
 * token (the key was rotated; the caller registers again), 0 if there is
 * none (the same token again means it is refused for good).
 */
int
listen_reprovision(struct listen *l, struct mpc_params *pa)
{
	struct mpc_provision old = l->prov;
	int changed;

	if (l->popts.url == NULL ||
	    listen_now() - l->provisioned_at < LISTEN_REPROVISION_MS)
		return 0;
	log_info("token refused; provisioning anew over IMAP");
	changed = listen_provision(l, 1) == 0 &&
	    (old.key_id != l->prov.key_id || sodium_memcmp(old.token,
	    l->prov.token, sizeof(old.token)) != 0);
	sodium_memzero(&old, sizeof(old));
	if (changed) {
		memcpy(pa->token, l->prov.token, sizeof(pa->token));
		pa->key_id = l->prov.key_id;
	}
	return changed;
}
