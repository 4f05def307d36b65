/*
 * mailpushd.c: main, options, privileges, signals, timers and reload.
 *
 * Start-up order (as eigrpd and smtpd do it): options; the configuration,
 * checked before anything else so its errors reach the terminal; the user
 * to run as and the key; the sockets (control socket first, so a running
 * instance is recognised); then logging moves to syslog unless -d; dropping
 * privileges; the saved registrations; the loop.  The daemon never forks:
 * without -d it stays in the foreground and logs to syslog, which is what
 * a service manager wants.  Signals are handled inside the loop by
 * libevent, never in a handler.  Keys, listeners and reload are
 * mailpushd_reload.c.
 *
 * Exit status: 0 after SIGTERM or SIGINT; 64 usage; 69 another instance
 * holds the control socket; 71 a socket could not be opened; 78 the
 * configuration, the user or the key file is wrong; 1 anything else.
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

/* sysexits(3) */
#define EX_USAGE	64
#define EX_UNAVAILABLE	69
#define EX_OSERR	71
#define EX_CONFIG	78

struct mpd	*mpd;

static struct event	*ev_timer;
static int		 stopping;
static uint64_t		 armed;		/* deadline the timer is set for */
static uid_t		 run_uid;
static gid_t		 run_gid;

static __attribute__((noreturn)) void
usage(void)
{
	fprintf(stderr, "usage: mailpushd [-dnv] [-c file]\n");
	exit(EX_USAGE);
}

/* A clock in microseconds: CLOCK_REALTIME for deadlines (they are kept
 * across restarts), CLOCK_MONOTONIC and CLOCK_THREAD_CPUTIME_ID for what
 * the loop's steps cost. */
uint64_t
mpd_clock_us(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t
mpd_clock(void)
{
	return mpd_clock_us(CLOCK_REALTIME) / 1000;
}

uint64_t
mpd_now(void)
{
	return mpd->now_ms = mpd_clock();
}

/* Keep the one libevent timer on the earliest registration deadline. */
void
mpd_rearm(void)
{
	uint64_t next = registry_next_deadline(), now;
	struct timeval tv;

	if (ev_timer == NULL)
		return;		/* no loop yet (start-up, fuzz targets) */
	if (next == armed)
		return;
	armed = next;
	if (next == 0) {
		evtimer_del(ev_timer);
		return;
	}
	/* a local clock: now_ms stays fixed for the whole callback, which
	 * registry_run_timers relies on */
	now = mpd_clock();
	next = next > now ? next - now : 0;
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
	/* what is left of a crowd of deadlines waits for the next iteration
	 * (the timer is re-armed for now): I/O comes first */
	(void)registry_run_timers(mpd_now());
	push_flush();
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
		stopping = 1;
		event_base_loopbreak(mpd->base);
		break;
	}
}

/*
 * Who the daemon runs as: started as root, the [mailpushd] user and group
 * (a start-up error if they do not exist); started as anybody else, itself,
 * whatever the file says.
 */
static int
resolve_run_user(const struct mp_config *cfg)
{
	struct passwd *pw;
	struct group *gr;

	run_uid = geteuid();
	run_gid = getegid();
	if (geteuid() != 0) {
		if (cfg->user[0] != '\0' && ((pw = getpwnam(cfg->user)) == NULL
		    || pw->pw_uid != run_uid))
			log_info("not started as root: running as uid %ld, "
			    "not as [mailpushd] user %s", (long)run_uid,
			    cfg->user);
		return 0;
	}
	if (cfg->user[0] == '\0') {
		log_warnx("[mailpushd] user is empty: running as root");
		return 0;
	}
	if ((pw = getpwnam(cfg->user)) == NULL) {
		log_error("%s: [mailpushd] user: no such user \"%s\" (create "
		    "it, or name another user)", cfg->path, cfg->user);
		return -1;
	}
	run_uid = pw->pw_uid;
	run_gid = pw->pw_gid;
	if (cfg->group[0] != '\0') {
		if ((gr = getgrnam(cfg->group)) == NULL) {
			log_error("%s: [mailpushd] group: no such group \"%s\"",
			    cfg->path, cfg->group);
			return -1;
		}
		run_gid = gr->gr_gid;
	}
	return 0;
}

static void
drop_privileges(void)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (geteuid() != 0 || run_uid == 0)
		return;
	if (setgroups(1, &run_gid) == -1)
		fatal("setgroups");
	if (setresgid(run_gid, run_gid, run_gid) == -1)
		fatal("setresgid");
	if (setresuid(run_uid, run_uid, run_uid) == -1)
		fatal("setresuid");
	if (getresuid(&r, &e, &s) == -1 || r != run_uid || e != run_uid ||
	    s != run_uid || getresgid(&rg, &eg, &sg) == -1 || rg != run_gid ||
	    eg != run_gid || sg != run_gid)
		fatalx("privileges were not dropped");
	log_info("running as uid %ld gid %ld", (long)run_uid, (long)run_gid);
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

/*
 * Before dropping privileges: a state file directory that exists must be
 * safe (dirs_check).  One that does not exist is reported after the drop.
 */
static int
check_state_dir(const char *path)
{
	char dir[PATH_MAX], *slash;
	struct stat st;

	if (path[0] == '\0')
		return 0;
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL)
		return 0;
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (stat(dir, &st) == -1)
		return 0;
	return dirs_check(path, "state file", run_uid, run_gid);
}

/* After dropping privileges: can the state file be written at all? */
static void
check_state_writable(const char *path)
{
	char dir[PATH_MAX], *slash;

	if (path[0] == '\0')
		return;
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL)
		return;
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (access(dir, W_OK | X_OK) == -1)
		log_error("state file directory %s is not writable by uid %ld "
		    "(%s): registrations will not survive a restart", dir,
		    (long)geteuid(), strerror(errno));
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
	uid_t *tuids;
	size_t i, n_tuids;

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
	/* Until the loop runs, messages go to standard error as well, so
	 * start-up errors reach whoever started the daemon. */
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
		exit(EX_CONFIG);
	}
	if (check) {
		config_print(&mpd->cfg, stdout);
		exit(0);
	}
	if (resolve_run_user(&mpd->cfg) != 0)
		exit(EX_CONFIG);
	trust_resolve(&mpd->cfg, run_uid, &tuids, &n_tuids);
	trust_set(tuids, n_tuids);
	{
		struct mp_keys keys;

		if (mpd_load_key(&mpd->cfg, &keys, run_uid) != 0)
			exit(EX_CONFIG);
		mpd_set_keys(&keys);
	}
	if (cluster_configure(&mpd->cfg, run_uid) != 0)
		exit(EX_CONFIG);
	mpd_key_random = mpd_load_random;

	signal(SIGPIPE, SIG_IGN);
	event_set_log_callback(libevent_log);
	if ((mpd->base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	randombytes_buf(mpd->cookie_secret, sizeof(mpd->cookie_secret));
	/* a new restart epoch each start, unless the state comes back
	 * exactly (journal_open): clients report the next push whatever
	 * sequence numbers were lost */
	do
		randombytes_buf(&mpd->epoch, sizeof(mpd->epoch));
	while (mpd->epoch == 0);
	mpd_now();
	mpd->started = (uint32_t)(mpd->now_ms / 1000);
	registry_init();

	/* The control socket first: it tells a running instance apart. */
	make_socket_dir(mpd->cfg.control_socket);
	make_socket_dir(mpd->cfg.event_socket);
	if (mpd->cfg.provision_socket[0] != '\0')
		make_socket_dir(mpd->cfg.provision_socket);
	if (dirs_check(mpd->cfg.control_socket, "control socket", run_uid,
	    run_gid) != 0 || dirs_check(mpd->cfg.event_socket, "event socket",
	    run_uid, run_gid) != 0 || (mpd->cfg.provision_socket[0] != '\0' &&
	    dirs_check(mpd->cfg.provision_socket, "provisioning socket",
	    run_uid, run_gid) != 0) || check_state_dir(mpd->cfg.state_file)
	    != 0)
		exit(EX_CONFIG);
	if (control_open(&mpd->cfg, run_uid, run_gid) == -1) {
		log_error("cannot open the control socket %s, not starting",
		    mpd->cfg.control_socket);
		exit(EX_UNAVAILABLE);
	}
	if (mpd_listeners_open(&mpd->cfg) != 0) {
		log_error("cannot open the UDP listeners, not starting");
		control_close();
		exit(EX_OSERR);
	}
	mpd_listeners_commit(&mpd->cfg, 1);
	if (events_open(&mpd->cfg, run_uid, run_gid) == -1) {
		log_error("cannot open the event socket %s, not starting",
		    mpd->cfg.event_socket);
		control_close();
		exit(EX_OSERR);
	}
	if (provision_open(&mpd->cfg, run_uid, run_gid) == -1) {
		log_error("cannot open the provisioning socket %s, not "
		    "starting", mpd->cfg.provision_socket);
		events_close();
		control_close();
		exit(EX_OSERR);
	}
	/* mailpushctl status checks they stay what was made here */
	health_watch("event socket", "the hook and the Dovecot driver cannot "
	    "post events, so no pushes go out", mpd->cfg.event_socket,
	    mpd->cfg.event_socket_mode);
	health_watch("control socket", "mailpushctl cannot reach mailpushd",
	    mpd->cfg.control_socket, mpd->cfg.control_socket_mode);
	health_watch("provisioning socket", "IMAP clients get no token from "
	    "the Dovecot plugin", mpd->cfg.provision_socket,
	    mpd->cfg.provision_socket_mode);
	if (!debug)
		log_init("mailpushd", 0, verbose);
	drop_privileges();
	check_state_writable(mpd->cfg.state_file);
	if (mpd->cfg.state_file[0] != '\0') {
		struct state_info si;

		state_load(mpd->cfg.state_file, &si);
		journal_open(mpd->cfg.state_file, &si);
		/* kept after a clean shutdown (journal.c) */
		mpd->epoch = journal_epoch();
	}

	for (i = 0; i < mpd->n_listeners; i++)
		if (mpd->listeners[i].in_use)
			udp_start(&mpd->listeners[i]);
	events_start();
	provision_start();
	control_start();
	cluster_start();
	ev_timer = evtimer_new(mpd->base, timer_cb, NULL);
	if (ev_timer == NULL)
		fatalx("cannot create timers");
	for (i = 0; signums[i] != 0; i++) {
		sigs[i] = evsignal_new(mpd->base, signums[i], signal_cb, NULL);
		if (sigs[i] == NULL || evsignal_add(sigs[i], NULL) == -1)
			fatalx("cannot watch signal %d", signums[i]);
	}
	mpd_rearm();
	log_info("started: %zu registrations, %zu listeners, event socket %s",
	    registry_count(), mpd->n_listeners, mpd->cfg.event_socket);

	/*
	 * One loop iteration at a time: the changes of an iteration are
	 * committed at its end, with one sync for all of them (journal.c).
	 */
	while (!stopping) {
		if (event_base_loop(mpd->base, EVLOOP_ONCE) == -1)
			fatalx("event loop failed");
		journal_commit();
		registry_step();
	}

	cluster_stop();
	journal_close();
	events_close();
	provision_close();
	control_close();
	for (i = 0; i < mpd->n_listeners; i++)
		if (mpd->listeners[i].in_use)
			udp_close(&mpd->listeners[i]);
	for (i = 0; signums[i] != 0; i++)
		event_free(sigs[i]);
	event_free(ev_timer);
	registry_free();
	event_base_free(mpd->base);
	free(mpd->post_uids);
	trust_free();
	config_free(&mpd->cfg);
	sodium_memzero(mpd->key, sizeof(mpd->key));
	sodium_memzero(&mpd->keys, sizeof(mpd->keys));
	free(mpd);
	log_info("exiting");
	return 0;
}
