/*
 * mailpushd.c: main, options, privileges, signals, timers and reload.
 *
 * Start-up order (as eigrpd and smtpd do it): options; the configuration,
 * checked before anything else so its errors reach the terminal; the key;
 * the sockets; the saved registrations; dropping privileges; the loop.
 * Signals are handled inside the loop by libevent, never in a handler.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"
#include "mailpushd.h"

struct mpd	*mpd;

static struct event	*ev_timer, *ev_save;
static uint64_t		 armed;		/* deadline the timer is set for */
static uid_t		 run_uid;
static gid_t		 run_gid;

static __attribute__((noreturn)) void
usage(void)
{
	fprintf(stderr, "usage: mailpushd [-dnv] [-c file]\n");
	exit(64);
}

uint64_t
mpd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	mpd->now_ms = (uint64_t)ts.tv_sec * 1000 +
	    (uint64_t)ts.tv_nsec / 1000000;
	return mpd->now_ms;
}

/* Keep the one libevent timer on the earliest registration deadline. */
void
mpd_rearm(void)
{
	uint64_t next = registry_next_deadline();
	struct timeval tv;

	if (next == armed)
		return;
	armed = next;
	if (next == 0) {
		evtimer_del(ev_timer);
		return;
	}
	mpd_now();
	next = next > mpd->now_ms ? next - mpd->now_ms : 0;
	tv.tv_sec = (time_t)(next / 1000);
	tv.tv_usec = (suseconds_t)(next % 1000) * 1000;
	evtimer_add(ev_timer, &tv);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	armed = 0;
	registry_run_timers(mpd_now());
	push_flush();
}

static void
save_state(void)
{
	if (mpd->cfg.state_file[0] == '\0' || !mpd->state_dirty)
		return;
	mpd_now();
	if (state_save(mpd->cfg.state_file) == 0)
		mpd->state_dirty = 0;
}

static void
save_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	save_state();
}

static void
arm_save_timer(void)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(mpd->cfg.state_save_interval / 1000);
	tv.tv_usec = (suseconds_t)(mpd->cfg.state_save_interval % 1000) * 1000;
	event_del(ev_save);
	event_add(ev_save, &tv);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	switch (sig) {
	case SIGHUP:
		log_info("SIGHUP: reloading %s", mpd->cfg.path);
		mpd_reload();
		break;
	case SIGTERM:
	case SIGINT:
		log_info("%s: saving state and exiting",
		    sig == SIGTERM ? "SIGTERM" : "SIGINT");
		event_base_loopbreak(mpd->base);
		break;
	}
}

int
mpd_load_key(const struct mp_config *cfg, uint8_t key[MP_KEY_LEN],
    uid_t owner)
{
	struct stat st;
	const char *why;
	int fd;

	if ((fd = open(cfg->key_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW))
	    == -1) {
		if (cfg->auth == AUTH_NONE) {
			/* auth = none: tokens only sign replies and pushes */
			memset(key, 0, MP_KEY_LEN);
			log_info("%s: %s; auth = none, using the all-zero key",
			    cfg->key_file, strerror(errno));
			return 0;
		}
		log_error("cannot open key file %s: %s (create it with "
		    "mailpushctl genkey)", cfg->key_file, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		log_error("%s: %s", cfg->key_file, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	if (!S_ISREG(st.st_mode)) {
		log_error("key file %s is not a regular file", cfg->key_file);
		return -1;
	}
	if (st.st_uid != owner) {
		log_error("key file %s must be owned by uid %ld (the daemon's "
		    "user), not uid %ld", cfg->key_file, (long)owner,
		    (long)st.st_uid);
		return -1;
	}
	if (st.st_mode & 077) {
		log_error("key file %s must not be accessible by group or "
		    "others (mode %04o; chmod 600)", cfg->key_file,
		    (unsigned)(st.st_mode & 07777));
		return -1;
	}
	if (proto_read_hexfile(cfg->key_file, key, &why) != 0) {
		log_error("key file %s: %s", cfg->key_file, why);
		return -1;
	}
	return 0;
}

static int
listener_find(const struct config_listen *c)
{
	size_t i;

	for (i = 0; i < mpd->n_listeners; i++)
		if (mpd->listeners[i].in_use &&
		    mpd->listeners[i].conf.len == c->len &&
		    memcmp(&mpd->listeners[i].conf.ss, &c->ss, c->len) == 0)
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

/* Open the listeners of cfg that are not open, close those it lacks. */
static int
listeners_sync(const struct mp_config *cfg, int starting)
{
	struct move_arg m;
	size_t i, j;
	int opened = 0;

	for (i = 0; i < cfg->n_listen; i++) {
		int s;

		if (listener_find(&cfg->listen[i]) != -1)
			continue;
		if ((s = listener_slot()) == -1)
			return -1;
		mpd->listeners[s].conf = cfg->listen[i];
		mpd->listeners[s].fd = -1;
		if (udp_open(&mpd->listeners[s], cfg) == -1) {
			if (starting)
				return -1;
			continue;
		}
		if (!starting)
			udp_start(&mpd->listeners[s]);
		log_info("listening on %s", cfg->listen[i].text);
		opened++;
	}
	for (i = 0; i < mpd->n_listeners; i++) {
		struct mp_listener *l = &mpd->listeners[i];
		int keep = 0;

		if (!l->in_use)
			continue;
		for (j = 0; j < cfg->n_listen; j++)
			if (cfg->listen[j].len == l->conf.len &&
			    memcmp(&cfg->listen[j].ss, &l->conf.ss,
			    l->conf.len) == 0)
				keep = 1;
		if (keep)
			continue;
		log_info("no longer listening on %s", l->conf.text);
		udp_close(l);
		/* its registrations answer through a listener still open */
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
	return opened;
}

static void
warn_restart_only(const struct mp_config *o, const struct mp_config *n)
{
#define CHANGED(f, name) do {						\
	if (memcmp(&o->f, &n->f, sizeof(o->f)) != 0)			\
		log_warnx("reload: %s changed; it takes effect at the "	\
		    "next restart", name);				\
} while (0)
	CHANGED(user, "[mailpushd] user");
	CHANGED(group, "[mailpushd] group");
	CHANGED(control_socket, "[mailpushd] control_socket");
	CHANGED(control_socket_mode, "[mailpushd] control_socket_mode");
	CHANGED(control_socket_group, "[mailpushd] control_socket_group");
	CHANGED(state_file, "[mailpushd] state_file");
	CHANGED(event_socket, "[events] socket");
	CHANGED(event_socket_mode, "[events] socket_mode");
	CHANGED(event_buffer_size, "[events] buffer_size");
#undef CHANGED
}

int
mpd_reload(void)
{
	struct mp_config ncfg;
	uint8_t nkey[MP_KEY_LEN];
	uid_t *uids;
	size_t n_uids;
	int errors;

	errors = config_load(mpd->cfg.path, &ncfg);
	if (errors == 0)
		errors = events_resolve_users(&ncfg, &uids, &n_uids);
	else
		uids = NULL;
	if (errors == 0 && mpd_load_key(&ncfg, nkey, geteuid()) != 0)
		errors = 1;
	if (errors != 0) {
		log_error("reload failed: %s has errors; the old "
		    "configuration stays in force", mpd->cfg.path);
		free(uids);
		config_free(&ncfg);
		return -1;
	}
	warn_restart_only(&mpd->cfg, &ncfg);
	/* keep what only a restart may change */
	memcpy(ncfg.user, mpd->cfg.user, sizeof(ncfg.user));
	memcpy(ncfg.group, mpd->cfg.group, sizeof(ncfg.group));
	memcpy(ncfg.control_socket, mpd->cfg.control_socket,
	    sizeof(ncfg.control_socket));
	ncfg.control_socket_mode = mpd->cfg.control_socket_mode;
	memcpy(ncfg.control_socket_group, mpd->cfg.control_socket_group,
	    sizeof(ncfg.control_socket_group));
	memcpy(ncfg.state_file, mpd->cfg.state_file, sizeof(ncfg.state_file));
	memcpy(ncfg.event_socket, mpd->cfg.event_socket,
	    sizeof(ncfg.event_socket));
	ncfg.event_socket_mode = mpd->cfg.event_socket_mode;
	ncfg.event_buffer_size = mpd->cfg.event_buffer_size;

	listeners_sync(&ncfg, 0);
	config_free(&mpd->cfg);
	mpd->cfg = ncfg;
	memcpy(mpd->key, nkey, sizeof(nkey));
	sodium_memzero(nkey, sizeof(nkey));
	free(mpd->post_uids);
	mpd->post_uids = uids;
	mpd->n_post_uids = n_uids;
	arm_save_timer();
	log_info("configuration reloaded from %s: %zu registrations kept",
	    mpd->cfg.path, registry_count());
	return 0;
}

static void
resolve_run_user(const struct mp_config *cfg)
{
	struct passwd *pw;
	struct group *gr;

	run_uid = geteuid();
	run_gid = getegid();
	if (geteuid() != 0 || cfg->user[0] == '\0')
		return;
	if ((pw = getpwnam(cfg->user)) == NULL)
		fatalx("%s: [mailpushd] user: no such user \"%s\"", cfg->path,
		    cfg->user);
	run_uid = pw->pw_uid;
	run_gid = pw->pw_gid;
	if (cfg->group[0] != '\0') {
		if ((gr = getgrnam(cfg->group)) == NULL)
			fatalx("%s: [mailpushd] group: no such group \"%s\"",
			    cfg->path, cfg->group);
		run_gid = gr->gr_gid;
	}
}

static void
drop_privileges(void)
{
	uid_t r, e, s;

	if (geteuid() != 0 || run_uid == 0)
		return;
	if (setgroups(1, &run_gid) == -1)
		fatal("setgroups");
	if (setresgid(run_gid, run_gid, run_gid) == -1)
		fatal("setresgid");
	if (setresuid(run_uid, run_uid, run_uid) == -1)
		fatal("setresuid");
	if (getresuid(&r, &e, &s) == -1 || r != run_uid || e != run_uid ||
	    s != run_uid)
		fatalx("privileges were not dropped");
	log_debug("running as uid %ld gid %ld", (long)run_uid,
	    (long)run_gid);
}

/* Create the directory of a socket if it is missing (/run/mailpush). */
static void
make_socket_dir(const char *path)
{
	char dir[CONFIG_SOCKPATH_MAX], *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
		return;
	*slash = '\0';
	if (mkdir(dir, 0755) == 0) {
		log_info("created %s", dir);
		if (geteuid() == 0 && chown(dir, run_uid, run_gid) == -1)
			log_warn("chown %s", dir);
	} else if (errno != EEXIST)
		log_warn("mkdir %s", dir);
}

static void
libevent_log(int severity, const char *msg)
{
	if (severity >= EVENT_LOG_WARN)
		log_warnx("libevent: %s", msg);
	else
		log_debug("libevent: %s", msg);
}

int
mailpushd_main(int argc, char *argv[])
{
	const char *conffile = MP_CONFIG_FILE;
	int ch, debug = 0, verbose = 0, check = 0, errors;
	struct event *sigs[4];
	static const int signums[4] = { SIGHUP, SIGTERM, SIGINT, 0 };
	size_t i;

	while ((ch = getopt(argc, argv, "c:dhnv")) != -1) {
		switch (ch) {
		case 'c':
			conffile = optarg;
			break;
		case 'd':
			debug = 1;
			break;
		case 'n':
			check = 1;
			break;
		case 'v':
			verbose++;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("mailpushd", 1, verbose);
	if (sodium_init() < 0)
		fatalx("libsodium failed to initialise");
	if ((mpd = calloc(1, sizeof(*mpd))) == NULL)
		fatal("calloc");

	errors = config_load(conffile, &mpd->cfg);
	if (errors == 0)
		errors = events_resolve_users(&mpd->cfg, &mpd->post_uids,
		    &mpd->n_post_uids);
	if (errors != 0) {
		fprintf(stderr, "mailpushd: %s: %d error%s, not starting\n",
		    conffile, errors, errors == 1 ? "" : "s");
		exit(78);	/* EX_CONFIG */
	}
	if (check) {
		config_print(&mpd->cfg, stdout);
		exit(0);
	}
	resolve_run_user(&mpd->cfg);
	if (mpd_load_key(&mpd->cfg, mpd->key, run_uid) != 0)
		exit(78);
	if (!debug)
		log_init("mailpushd", 0, verbose);

	signal(SIGPIPE, SIG_IGN);
	event_set_log_callback(libevent_log);
	if ((mpd->base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	randombytes_buf(mpd->cookie_secret, sizeof(mpd->cookie_secret));
	mpd_now();
	mpd->started = (uint32_t)(mpd->now_ms / 1000);
	registry_init();

	make_socket_dir(mpd->cfg.event_socket);
	make_socket_dir(mpd->cfg.control_socket);
	if (listeners_sync(&mpd->cfg, 1) < 0)
		fatalx("cannot open the UDP listeners");
	if (events_open(&mpd->cfg) == -1)
		fatalx("cannot open the event socket %s", mpd->cfg.event_socket);
	if (control_open(&mpd->cfg, run_uid, run_gid) == -1)
		fatalx("cannot open the control socket %s",
		    mpd->cfg.control_socket);
	drop_privileges();
	if (mpd->cfg.state_file[0] != '\0')
		state_load(mpd->cfg.state_file);

	for (i = 0; i < mpd->n_listeners; i++)
		if (mpd->listeners[i].in_use)
			udp_start(&mpd->listeners[i]);
	events_start();
	control_start();
	ev_timer = evtimer_new(mpd->base, timer_cb, NULL);
	ev_save = event_new(mpd->base, -1, EV_PERSIST, save_cb, NULL);
	if (ev_timer == NULL || ev_save == NULL)
		fatalx("cannot create timers");
	arm_save_timer();
	for (i = 0; signums[i] != 0; i++) {
		sigs[i] = evsignal_new(mpd->base, signums[i], signal_cb, NULL);
		if (sigs[i] == NULL || evsignal_add(sigs[i], NULL) == -1)
			fatalx("cannot watch signal %d", signums[i]);
	}
	mpd_rearm();
	log_info("started: %zu registrations, %zu listeners, event socket %s",
	    registry_count(), mpd->n_listeners, mpd->cfg.event_socket);

	event_base_dispatch(mpd->base);

	mpd->state_dirty = 1;
	save_state();
	events_close();
	control_close();
	for (i = 0; i < mpd->n_listeners; i++)
		if (mpd->listeners[i].in_use)
			udp_close(&mpd->listeners[i]);
	for (i = 0; signums[i] != 0; i++)
		event_free(sigs[i]);
	event_free(ev_timer);
	event_free(ev_save);
	registry_free();
	event_base_free(mpd->base);
	free(mpd->post_uids);
	config_free(&mpd->cfg);
	sodium_memzero(mpd->key, sizeof(mpd->key));
	free(mpd);
	log_info("exiting");
	return 0;
}
