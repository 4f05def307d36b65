/*
 * mailpush-hook.c: tell mailpushd that a message was delivered.
 *
 * Run once per delivered message, in one of two modes (mailpush-hook(8)):
 *
 *	wrapper		mailpush-hook [options] -- AGENT [ARGS...]
 *			runs the delivery agent with stdin untouched, exits
 *			with its exact status (a signal becomes EX_TEMPFAIL)
 *			and sends the event only when the agent exited 0;
 *	standalone	mailpush-hook [options]
 *			sends the event and exits 0.
 *
 * The notifier is never a reason to defer or bounce mail: a missing socket,
 * a dead or slow daemon or a full queue cost at most the send timeout and
 * one log line.  The INI file is read forgivingly (config_load_for): an
 * error in a part the hook does not use is one log line, an error in a
 * key it uses means that key's default, so an administrator's half-edited
 * file never costs pushes.  A usage error in wrapper mode costs the push,
 * not the delivery: the agent still runs.  Only when the agent's argv
 * cannot be found does the hook exit EX_TEMPFAIL, so the MTA keeps the mail.
 *
 * Postfix runs it with a bare environment, an arbitrary uid and no
 * supplementary groups: no PATH lookups, no HOME, nothing but the one
 * datagram and what the command line and the INI file say.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "event.h"
#include "evsend.h"
#include "log.h"
#include "logesc.h"
#include "mailpush.h"

#define HOOK_NAME		"mailpush-hook"
#define HOOK_TIMEOUT_MIN	1		/* ms; as [hook] timeout */
#define HOOK_TIMEOUT_MAX	10000
#define HOOK_OPTS		"+:c:dhm:s:t:u:"
#define HOOK_ARGOPTS		"cmstu"		/* options with an argument */

struct hook {
	const char	*conffile;
	int		 conf_given;
	const char	*user;
	const char	*mailbox;
	const char	*sockopt;		/* -s, or NULL */
	uint64_t	 timeout;		/* -t in ms, 0: not given */
	int		 help;
	char		**agent;		/* NULL: standalone mode */
	char		 err[512];		/* first usage error */

	/* Filled by hook_prepare. */
	char		 socket[CONFIG_SOCKPATH_MAX];
	uint64_t	 send_timeout;
	uint8_t		 dgram[EVENT_MAX_LEN];
	size_t		 dgram_len;
};

static void	hook_usage(FILE *);
static void	hook_usage_error(struct hook *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static int	hook_find_separator(int, char **);
static void	hook_options(struct hook *, int, char **);
static int	hook_prepare(struct hook *);
static int	hook_run_agent(struct hook *);
static void	hook_send(const struct hook *);
static void	hook_defer(const char *, ...)
		    __attribute__((format(printf, 1, 2), noreturn));

extern char	**environ;
static int	hook_foreground;	/* -d: the log is stderr already */

static void
hook_usage(FILE *fp)
{
	fprintf(fp, "usage: %s [-dh] [-c file] [-m mailbox] [-s socket] "
	    "[-t timeout]\n"
	    "       %*s [-u user] [-- agent [arg ...]]\n", HOOK_NAME,
	    (int)strlen(HOOK_NAME), "");
}

/* Remember the first problem with the command line; later ones add nothing. */
static void
hook_usage_error(struct hook *h, const char *fmt, ...)
{
	va_list ap;

	if (h->err[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(h->err, sizeof(h->err), fmt, ap);
	va_end(ap);
}

/*
 * Mail must stay queued: say why on stderr (which Postfix puts into the
 * deferral reason) and in the log, then exit EX_TEMPFAIL.
 */
static void
hook_defer(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!hook_foreground) {
		fprintf(stderr, "%s: %s (mail deferred)\n", HOOK_NAME,
		    log_str(msg));
		fflush(stderr);
	}
	log_error("%s (mail deferred)", log_str(msg));
	exit(EX_TEMPFAIL);
}

/*
 * Find the `--' that ends the hook's options, the way getopt would: skip
 * the argument of every option that takes one.  An option "argument" that
 * is itself `--' is taken as the separator (`-u -- agent' lost its user),
 * so the agent can still be found.  Returns the index of `--' or -1.
 */
static int
hook_find_separator(int argc, char **argv)
{
	int i;
	size_t j;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0)
			return i;
		if (a[0] != '-' || a[1] == '\0')
			continue;	/* an operand: an error found later */
		for (j = 1; a[j] != '\0'; j++) {
			if (strchr(HOOK_ARGOPTS, a[j]) == NULL)
				continue;
			if (a[j + 1] == '\0' && i + 1 < argc &&
			    strcmp(argv[i + 1], "--") != 0)
				i++;	/* the next word is the argument */
			break;
		}
	}
	return -1;
}

static void
hook_options(struct hook *h, int argc, char **argv)
{
	int ch;

	opterr = 0;
	while ((ch = getopt(argc, argv, HOOK_OPTS)) != -1) {
		switch (ch) {
		case 'c':
			h->conffile = optarg;
			h->conf_given = 1;
			break;
		case 'd':
			hook_foreground = 1;
			break;
		case 'h':
			h->help = 1;
			break;
		case 'm':
			h->mailbox = optarg;
			break;
		case 's':
			if (optarg[0] != '/' ||
			    strlen(optarg) >= CONFIG_SOCKPATH_MAX)
				hook_usage_error(h, "bad socket \"%s\" for -s: "
				    "must be an absolute path shorter than %d "
				    "bytes", optarg, CONFIG_SOCKPATH_MAX);
			else
				h->sockopt = optarg;
			break;
		case 't':
			if (config_parse_duration(optarg, &h->timeout) != 0 ||
			    h->timeout < HOOK_TIMEOUT_MIN ||
			    h->timeout > HOOK_TIMEOUT_MAX) {
				h->timeout = 0;
				hook_usage_error(h, "bad timeout \"%s\" for "
				    "-t: must be a duration from 1ms to 10s",
				    optarg);
			}
			break;
		case 'u':
			h->user = optarg;
			break;
		case ':':
			hook_usage_error(h, "option -%c needs an argument",
			    optopt);
			break;
		default:
			hook_usage_error(h, "unknown option -%c", optopt);
			break;
		}
	}
	if (optind < argc)
		hook_usage_error(h, "unexpected argument \"%s\"", argv[optind]);
	if (h->help && h->agent != NULL)
		hook_usage_error(h, "option -h is not valid with an agent");
}

/* The keys of mailpushd.conf the hook uses; errors elsewhere are ignored. */
static const char *const hook_keys[] = {
	"events.socket", "hook.socket", "hook.timeout", NULL
};

/*
 * Work out the event and where it goes: user, mailbox, socket, timeout.
 * Returns 0 or EX_USAGE (message in h->err).  Configuration errors are
 * logged by the loader and never stop the event.
 */
static int
hook_prepare(struct hook *h)
{
	struct mp_config cfg;
	struct mp_event ev;
	struct stat st;
	const char *why;
	int n, need_file;

	if (h->user == NULL) {
		h->user = getenv("USER");
		if (h->user == NULL || h->user[0] == '\0')
			h->user = getenv("LOGNAME");
		if (h->user == NULL || h->user[0] == '\0') {
			hook_usage_error(h, "no user: give -u or set USER or "
			    "LOGNAME");
			return EX_USAGE;
		}
	}
	if (event_set(&ev, h->user, h->mailbox, 1, 0, &why) != 0) {
		hook_usage_error(h, "%s", why);
		return EX_USAGE;
	}
	if ((n = event_encode(&ev, h->dgram, sizeof(h->dgram), &why)) < 0) {
		hook_usage_error(h, "%s", why);
		return EX_USAGE;
	}
	h->dgram_len = (size_t)n;

	/*
	 * The INI file is read when it was named, or when -s or -t leave
	 * something to look up.  A missing default file means the built-in
	 * defaults (as if it were empty); a file named with -c must exist.
	 */
	need_file = h->conf_given || h->sockopt == NULL || h->timeout == 0;
	if (need_file && !h->conf_given && stat(h->conffile, &st) == -1 &&
	    errno == ENOENT)
		need_file = 0;
	if (need_file) {
		/* [mailpushd] user and group are not ours: no NSS lookups */
		config_lookup_accounts = 0;
		config_load_for(h->conffile, &cfg, HOOK_NAME, hook_keys);
	} else
		config_defaults(&cfg);
	snprintf(h->socket, sizeof(h->socket), "%s", h->sockopt != NULL ?
	    h->sockopt : config_hook_socket(&cfg));
	h->send_timeout = h->timeout != 0 ? h->timeout : cfg.hook_timeout;
	config_free(&cfg);
	return 0;
}

/*
 * Send the event: one datagram on a non-blocking socket (shared/evsend.c).
 * A full queue is waited for until the timeout; anything else gives up at
 * once.  Giving up is logged as one line; the exit status does not change.
 */
static void
hook_send(const struct hook *h)
{
	const char *after = h->agent != NULL ? "mail delivered, no push" :
	    "no push";
	const char *why;

	if (evsend_dgram(h->socket, h->dgram, h->dgram_len,
	    (unsigned)h->send_timeout, &why) == 0)
		return;
	if (errno == ETIMEDOUT)
		log_warnx("cannot notify mailpushd at %s for %s: timed out "
		    "after %llums, the daemon's queue is full (%s)",
		    log_str(h->socket), log_str(h->user),
		    (unsigned long long)h->send_timeout, after);
	else
		log_warnx("cannot notify mailpushd at %s for %s: %s (%s)",
		    log_str(h->socket), log_str(h->user), strerror(errno),
		    after);
}

/*
 * Run the delivery agent with everything inherited (stdin untouched, the
 * environment, the process group) and return the exit status the hook must
 * give: the agent's own, or EX_TEMPFAIL for a signal or a failed exec.
 */
static int
hook_run_agent(struct hook *h)
{
	pid_t pid;
	int status, e;

	if (h->agent[0][0] != '/')
		hook_defer("agent \"%s\" must be an absolute path",
		    h->agent[0]);
	fflush(NULL);
	/*
	 * posix_spawn (a vfork in glibc): the agent starts without a copy of
	 * the hook's page tables, the cheapest way on a per-delivery path;
	 * glibc reports a failed exec as the return value.
	 */
	if ((e = posix_spawn(&pid, h->agent[0], NULL, NULL, h->agent,
	    environ)) != 0) {
		dprintf(STDERR_FILENO, "%s: cannot execute %s: %s (mail "
		    "deferred)\n", HOOK_NAME, h->agent[0], strerror(e));
		if (!hook_foreground)
			log_error("cannot execute %s: %s (mail deferred)",
			    log_str(h->agent[0]), strerror(e));
		return EX_TEMPFAIL;
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			hook_defer("waitpid for %s: %s", h->agent[0],
			    strerror(errno));
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status)) {
		log_error("%s killed by signal %d (%s) (mail deferred)",
		    log_str(h->agent[0]), WTERMSIG(status), strsignal(WTERMSIG(status)));
		return EX_TEMPFAIL;
	}
	log_error("%s ended with wait status %#x (mail deferred)",
	    log_str(h->agent[0]), status);
	return EX_TEMPFAIL;
}

int
main(int argc, char *argv[])
{
	struct hook h;
	int sep, rc, prep;

	memset(&h, 0, sizeof(h));
	h.conffile = MP_CONFIG_FILE;
	h.mailbox = "INBOX";

	/* The MTA may have left SIGCHLD ignored; waitpid needs it back. */
	signal(SIGCHLD, SIG_DFL);

	sep = hook_find_separator(argc, argv);
	if (sep != -1 && sep + 1 < argc)
		h.agent = argv + sep + 1;
	hook_options(&h, sep != -1 ? sep : argc, argv);
	log_init(HOOK_NAME, hook_foreground, 0);

	if (h.agent == NULL && (sep != -1 || optind < argc)) {
		/* Meant as a wrapper, but no agent to run: keep the mail. */
		if (sep != -1)
			hook_defer("no delivery agent after --");
		hook_defer("no -- before the delivery agent \"%s\"",
		    argv[optind]);
	}

	if (h.agent == NULL) {
		/* Standalone. */
		if (h.help && h.err[0] == '\0') {
			hook_usage(stdout);
			return EX_OK;
		}
		if (h.err[0] == '\0')
			prep = hook_prepare(&h);
		else
			prep = EX_USAGE;
		if (prep == EX_USAGE) {
			fprintf(stderr, "%s: %s\n", HOOK_NAME, log_str(h.err));
			hook_usage(stderr);
			return EX_USAGE;
		}
		hook_send(&h);
		return EX_OK;
	}

	/* Wrapper: the hook's own problems cost the push, not the mail. */
	if (h.err[0] == '\0')
		prep = hook_prepare(&h);
	else
		prep = EX_USAGE;
	if (prep == EX_USAGE)
		log_error("%s (running %s, no push)", log_str(h.err),
		    log_str(h.agent[0]));
	rc = hook_run_agent(&h);
	if (rc == 0 && prep == 0)
		hook_send(&h);
	return rc;
}
