/*
 * mailpushd_reload.c: what start-up sets and a reload (SIGHUP, mailpushctl
 * reload) changes: the server keys, the UDP listeners (all or nothing),
 * and the new configuration, with the keys only a restart applies kept.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "journal.h"
#include "log.h"
#include "mailpushd.h"
#include "mailpushd_int.h"

int		 mpd_key_random;
int		 mpd_load_random;

/* Why the last reload failed, for mailpushctl reload (mpd_reload_error). */
static char	reload_why[512];

/* A key file problem: logged, and kept as the reason a reload gives. */
#define key_error(...) do {						\
	log_error(__VA_ARGS__);						\
	snprintf(reload_why, sizeof(reload_why), __VA_ARGS__);		\
} while (0)

/*
 * Read the server keys (keyfile.h).  The file must be a regular file owned
 * by `owner' (the user the daemon runs as) and closed to group and others;
 * it is read through the descriptor that was checked, so it cannot be
 * swapped between the check and the read.
 */
int
mpd_load_key(const struct mp_config *cfg, struct mp_keys *keys, uid_t owner)
{
	struct stat st;
	const char *why;
	int fd;

	memset(keys, 0, sizeof(*keys));
	mpd_load_random = 0;
	if ((fd = open(cfg->key_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW))
	    == -1) {
		if (cfg->auth == AUTH_NONE && errno == ENOENT) {
			/*
			 * auth = none: tokens only sign replies, pushes and
			 * acks, but with a key anybody knows (the all-zero
			 * key of old) anybody could forge them.  A random
			 * key, kept in memory; a reload keeps it.
			 */
			keys->cur_id = 1;
			if (mpd_key_random)
				memcpy(keys->cur, mpd->keys.cur, MP_KEY_LEN);
			else
				randombytes_buf(keys->cur, MP_KEY_LEN);
			mpd_load_random = 1;
			log_info("%s: %s; auth = none, using a random key kept "
			    "in memory (tokens change at each start; create "
			    "the key file with mailpushctl genkey to keep "
			    "them)", cfg->key_file, strerror(errno));
			return 0;
		}
		key_error("cannot open key file %s: %s (create it with "
		    "mailpushctl genkey)", cfg->key_file, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		key_error("key file %s: %s", cfg->key_file, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		key_error("key file %s is not a regular file", cfg->key_file);
		close(fd);
		return -1;
	}
	if (st.st_uid != owner) {
		key_error("key file %s must be owned by uid %ld (the user "
		    "mailpushd runs as), not uid %ld (chown it)",
		    cfg->key_file, (long)owner, (long)st.st_uid);
		close(fd);
		return -1;
	}
	if (st.st_mode & 077) {
		key_error("key file %s must not be accessible by group or "
		    "others (mode %04o; chmod 600 it)", cfg->key_file,
		    (unsigned)(st.st_mode & 07777));
		close(fd);
		return -1;
	}
	if (keyfile_read_fd(fd, keys, &why) != 0) {
		key_error("key file %s: %s (make a new one with mailpushctl "
		    "genkey)", cfg->key_file, why);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Install loaded keys; the current one is also mpd->key. */
void
mpd_set_keys(struct mp_keys *keys)
{
	int64_t now = (int64_t)time(NULL);

	if (keys->prev_id != 0 && keys->prev_retired +
	    (int64_t)(mpd->cfg.key_grace / 1000) > now)
		log_info("key %u is current; tokens of key %u are accepted "
		    "for %" PRId64 " s more", keys->cur_id, keys->prev_id,
		    keys->prev_retired + (int64_t)(mpd->cfg.key_grace / 1000)
		    - now);
	memcpy(&mpd->keys, keys, sizeof(*keys));
	memcpy(mpd->key, keys->cur, MP_KEY_LEN);
	sodium_memzero(keys, sizeof(*keys));
}

const uint8_t *
mpd_key(unsigned id)
{
	return keyfile_key(&mpd->keys, id, (int64_t)(mpd->now_ms / 1000),
	    mpd->cfg.key_grace / 1000);
}

static int
listen_same(const struct config_listen *a, const struct config_listen *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

static int
listener_find(const struct config_listen *c)
{
	size_t i;

	for (i = 0; i < mpd->n_listeners; i++)
		if (mpd->listeners[i].in_use &&
		    listen_same(&mpd->listeners[i].conf, c))
			return (int)i;
	return -1;
}

static int
listener_slot(void)
{
	size_t i;

	for (i = 0; i < CONFIG_LISTEN_MAX; i++)
		if (!mpd->listeners[i].in_use) {
			if (i >= mpd->n_listeners)
				mpd->n_listeners = i + 1;
			return (int)i;
		}
	return -1;
}

/*
 * The UDP listeners follow the configuration in two steps, so that a reload
 * either gets every listener it asks for or changes nothing:
 * mpd_listeners_open() opens (without starting) those of cfg not open yet; if
 * one fails, the ones it opened are closed again and it returns -1.
 * mpd_listeners_commit() then starts the new ones and closes those cfg lacks.
 */
static int	 fresh[CONFIG_LISTEN_MAX];

static void
listeners_abort(void)
{
	size_t i;

	for (i = 0; i < CONFIG_LISTEN_MAX; i++)
		if (fresh[i]) {
			udp_close(&mpd->listeners[i]);
			fresh[i] = 0;
		}
}

int
mpd_listeners_open(const struct mp_config *cfg)
{
	size_t i;
	int s;

	memset(fresh, 0, sizeof(fresh));
	for (i = 0; i < cfg->n_listen; i++) {
		if (listener_find(&cfg->listen[i]) != -1)
			continue;
		if ((s = listener_slot()) == -1) {
			log_error("cannot listen on %s: more than %d listeners "
			    "at once (restart mailpushd instead)",
			    cfg->listen[i].text, CONFIG_LISTEN_MAX);
			listeners_abort();
			return -1;
		}
		mpd->listeners[s].conf = cfg->listen[i];
		mpd->listeners[s].fd = -1;
		mpd->listeners[s].ev = NULL;
		if (udp_open(&mpd->listeners[s], cfg) == -1) {
			/* udp_open logged "cannot listen on ADDR: why" */
			listeners_abort();
			return -1;
		}
		fresh[s] = 1;
	}
	return 0;
}

struct move_arg {
	int	from, to_v4, to_v6;
};

static void
move_reg(struct reg *r, void *arg)
{
	struct move_arg *m = arg;

	if (r->listener == m->from)
		r->listener = (uint8_t)(r->addr.sa.sa_family == AF_INET ?
		    m->to_v4 : m->to_v6);
}

void
mpd_listeners_commit(const struct mp_config *cfg, int starting)
{
	struct move_arg m;
	size_t i, j;
	int keep, buf = (int)cfg->udp_buffer_size;

	for (i = 0; i < mpd->n_listeners; i++) {
		struct mp_listener *l = &mpd->listeners[i];

		if (!l->in_use)
			continue;
		if (fresh[i]) {
			if (!starting)
				udp_start(l);
			log_info("listening on %s", l->conf.text);
			fresh[i] = 0;
			continue;
		}
		for (j = 0, keep = 0; j < cfg->n_listen; j++)
			if (listen_same(&cfg->listen[j], &l->conf))
				keep = 1;
		if (keep) {
			/* udp_buffer_size may have changed */
			if (setsockopt(l->fd, SOL_SOCKET, SO_RCVBUF, &buf,
			    sizeof(buf)) == -1 || setsockopt(l->fd, SOL_SOCKET,
			    SO_SNDBUF, &buf, sizeof(buf)) == -1)
				log_warn("%s: socket buffer size",
				    l->conf.text);
			continue;
		}
		log_info("no longer listening on %s", l->conf.text);
		udp_close(l);
		/* its registrations are pushed to from a listener of their
		 * address family that stays open, until they refresh */
		m.from = (int)i;
		m.to_v4 = m.to_v6 = (int)i;
		for (j = 0; j < mpd->n_listeners; j++) {
			const struct mp_listener *o = &mpd->listeners[j];

			if (!o->in_use)
				continue;
			if (o->conf.ss.ss_family == AF_INET && m.to_v4 == (int)i)
				m.to_v4 = (int)j;
			if (o->conf.ss.ss_family == AF_INET6 && m.to_v6 == (int)i)
				m.to_v6 = (int)j;
		}
		registry_foreach(move_reg, &m);
	}
}

/* Keys only a restart applies: reload warns and keeps the running value. */
static void
keep_restart_only(const struct mp_config *o, struct mp_config *n)
{
#define KEEP_STR(f, name) do {						\
	if (strcmp(o->f, n->f) != 0) {					\
		log_warnx("reload: %s changed; it takes effect at the "	\
		    "next restart", name);				\
		memcpy(n->f, o->f, sizeof(n->f));			\
	}								\
} while (0)
#define KEEP_NUM(f, name) do {						\
	if (o->f != n->f) {						\
		log_warnx("reload: %s changed; it takes effect at the "	\
		    "next restart", name);				\
		n->f = o->f;						\
	}								\
} while (0)
	KEEP_STR(user, "[mailpushd] user");
	KEEP_STR(group, "[mailpushd] group");
	KEEP_STR(control_socket, "[mailpushd] control_socket");
	KEEP_NUM(control_socket_mode, "[mailpushd] control_socket_mode");
	KEEP_STR(control_socket_group, "[mailpushd] control_socket_group");
	KEEP_STR(state_file, "[mailpushd] state_file");
	KEEP_STR(event_socket, "[events] socket");
	KEEP_NUM(event_socket_mode, "[events] socket_mode");
	KEEP_NUM(event_buffer_size, "[events] buffer_size");
	KEEP_STR(provision_socket, "[provision] socket");
	KEEP_NUM(provision_socket_mode, "[provision] socket_mode");
	cluster_reload(o, n);
#undef KEEP_STR
#undef KEEP_NUM
}

/*
 * Reload (SIGHUP, mailpushctl reload): parse the file into a fresh
 * configuration, resolve its users, read its key and open its new
 * listeners; only when all of that worked is it swapped in.  Otherwise the
 * error is logged and nothing changes.  Registrations are never touched.
 */
int
mpd_reload(void)
{
	struct mp_config ncfg;
	struct mp_keys nkeys;
	uid_t *uids = NULL, *tuids = NULL;
	size_t n_uids = 0, n_tuids = 0;
	int errors, key_bad = 0;

	errors = config_load(mpd->cfg.path, &ncfg);
	snprintf(reload_why, sizeof(reload_why), "%s has errors (see the "
	    "log)", mpd->cfg.path);
	if (errors == 0 && (errors = events_resolve_users(&ncfg, &uids,
	    &n_uids)) != 0)
		snprintf(reload_why, sizeof(reload_why), "%s: a user named in "
		    "[events] allow_users does not exist (see the log)",
		    mpd->cfg.path);
	if (errors == 0)
		trust_resolve(&ncfg, geteuid(), &tuids, &n_tuids);
	/* the key is the problem, not the file: say so (mpd_load_key) */
	if (errors == 0 && mpd_load_key(&ncfg, &nkeys, geteuid()) != 0)
		errors = key_bad = 1;
	if (errors == 0) {
		keep_restart_only(&mpd->cfg, &ncfg);
		if (mpd_listeners_open(&ncfg) != 0) {
			errors = 1;
			snprintf(reload_why, sizeof(reload_why), "a new UDP "
			    "listen address of %s cannot be opened (see the "
			    "log)", mpd->cfg.path);
		}
	}
	if (errors != 0) {
		if (key_bad)	/* its reason was logged just above */
			log_error("reload failed because of the key file; the "
			    "old configuration and key stay in force");
		else
			log_error("reload failed: %s; the old configuration "
			    "stays in force", reload_why);
		free(uids);
		free(tuids);
		config_free(&ncfg);
		sodium_memzero(&nkeys, sizeof(nkeys));
		return -1;
	}
	mpd_listeners_commit(&ncfg, 0);
	config_free(&mpd->cfg);
	mpd->cfg = ncfg;
	mpd_set_keys(&nkeys);
	mpd_key_random = mpd_load_random;
	registry_set_prefix6(mpd->cfg.ipv6_address_prefix);
	free(mpd->post_uids);
	mpd->post_uids = uids;
	mpd->n_post_uids = n_uids;
	trust_set(tuids, n_tuids);
	log_info("configuration reloaded from %s: %zu registrations kept",
	    mpd->cfg.path, registry_count());
	return 0;
}

const char *
mpd_reload_error(void)
{
	return reload_why;
}

