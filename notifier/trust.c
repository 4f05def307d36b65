/*
 * trust.c: who may act for whom on a local socket.  One rule for every
 * local socket of the daemon (the event socket; the provisioning socket
 * uses the same call), decided from the uid the kernel reports for the
 * peer (SCM_CREDENTIALS, SO_PEERCRED), never from what the peer says:
 *
 *   - a trusted uid acts for any user: root, the uid the daemon runs as,
 *     and the users of [events] trusted_users (default: root, postfix,
 *     dovecot and vmail, those that exist);
 *   - any other uid acts only for the user whose name is its own login
 *     name, normalised by the [names] rule like every user name (case,
 *     address extension), so uid alice may post for alice, Alice and
 *     alice+news, and for nobody else.
 *
 * A refusal is counted (trust_refusals, `mailpushctl stats':
 * trust_refused) and logged with the uid, its login name and the name it
 * asked for, at most once a second with the number held back, so a local
 * user cannot flood the log.
 *
 * Login names come from getpwuid(3), cached for a minute per uid so an
 * event costs no NSS lookup (accounts may live in LDAP).
 */
#include <sys/types.h>

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "logesc.h"
#include "mailpushd.h"
#include "user.h"

#define TRUST_CACHE	64		/* uids remembered, direct-mapped */
#define TRUST_CACHE_MS	(60 * 1000)	/* how long a login name is kept */

struct trust_name {
	uid_t		uid;
	int		known;		/* 0: no passwd entry */
	uint64_t	until_ms;	/* 0: empty slot */
	char		name[MP_USER_MAX + 1];	/* normalised login name */
};

static uid_t		*trust_uids;	/* trusted, resolved */
static size_t		 trust_n;
static struct trust_name trust_cache[TRUST_CACHE];
static uint64_t		 trust_refused, trust_held, trust_last_s;

/*
 * Resolve the trusted names of cfg into uids, with `self' (the uid the
 * daemon runs as) and root.  A name that does not exist is skipped: with a
 * warning when the file gave it, quietly for a built-in default (not every
 * machine has vmail).  A missing user cannot post, so skipping it trusts
 * nobody more.  The list goes to *uids (free it, or hand it to trust_set).
 */
void
trust_resolve(const struct mp_config *cfg, uid_t self, uid_t **uids,
    size_t *n)
{
	size_t i;

	if ((*uids = calloc(cfg->n_trusted_users + 2, sizeof(uid_t))) == NULL)
		fatal("calloc");
	*n = 0;
	(*uids)[(*n)++] = 0;
	if (self != 0)
		(*uids)[(*n)++] = self;
	for (i = 0; i < cfg->n_trusted_users; i++) {
		struct passwd *pw = getpwnam(cfg->trusted_users[i]);

		if (pw == NULL) {
			if (cfg->trusted_users_set)
				log_warnx("%s: [events] trusted_users: no such "
				    "user \"%s\" (skipped)", cfg->path,
				    cfg->trusted_users[i]);
			else
				log_debug("trusted user %s does not exist: "
				    "skipped", cfg->trusted_users[i]);
			continue;
		}
		if (pw->pw_uid != 0 && pw->pw_uid != self)
			(*uids)[(*n)++] = pw->pw_uid;
	}
}

/* Use this list from now on (it is freed by the next call or trust_free). */
void
trust_set(uid_t *uids, size_t n)
{
	free(trust_uids);
	trust_uids = uids;
	trust_n = n;
	/* a reload may have changed [names]: forget the normalised names */
	memset(trust_cache, 0, sizeof(trust_cache));
}

void
trust_free(void)
{
	trust_set(NULL, 0);
}

int
trust_is_trusted(uid_t uid)
{
	size_t i;

	if (uid == 0)
		return 1;
	for (i = 0; i < trust_n; i++)
		if (trust_uids[i] == uid)
			return 1;
	return 0;
}

/* The normalised login name of uid, or NULL if it has none. */
static const char *
trust_login(uid_t uid, uint64_t now_ms)
{
	struct trust_name *t = &trust_cache[uid % TRUST_CACHE];
	struct passwd *pw;
	const char *why;

	if (t->until_ms > now_ms && t->uid == uid)
		return t->known ? t->name : NULL;
	t->uid = uid;
	t->until_ms = now_ms + TRUST_CACHE_MS;
	t->known = 0;
	if ((pw = getpwuid(uid)) == NULL)
		return NULL;
	if (user_normalize(&mpd->cfg.names, pw->pw_name, strlen(pw->pw_name),
	    t->name, &why) != 0)
		return NULL;
	t->known = 1;
	return t->name;
}

static void
trust_log_refusal(uid_t uid, const char *login, const char *user,
    const char *where, uint64_t now_ms)
{
	uint64_t now_s = now_ms / 1000;
	char held[64] = "";

	if (now_s == trust_last_s) {
		trust_held++;
		return;
	}
	if (trust_held > 0)
		snprintf(held, sizeof(held), " (%llu more refusals held back)",
		    (unsigned long long)trust_held);
	log_warnx("%s: uid %ld (%s) may not act for %s: not its own login "
	    "name and not in [events] trusted_users%s", where, (long)uid,
	    login != NULL ? login : "no login name", log_str(user), held);
	trust_last_s = now_s;
	trust_held = 0;
}

/*
 * May the peer with this uid act for `user' (a normalised user name)?
 * Returns 1, or 0 after counting and (rate-limited) logging the refusal;
 * `where' names the socket in the log ("event socket").
 */
int
trust_may_act(uid_t uid, const char *user, const char *where)
{
	uint64_t now_ms = mpd->now_ms;
	const char *login;

	if (trust_is_trusted(uid))
		return 1;
	login = trust_login(uid, now_ms);
	if (login != NULL && strcmp(login, user) == 0)
		return 1;
	trust_refused++;
	trust_log_refusal(uid, login, user, where, now_ms);
	return 0;
}

uint64_t
trust_refusals(void)
{
	return trust_refused;
}
