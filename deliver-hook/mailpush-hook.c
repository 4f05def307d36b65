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
#include "hookargs.h"
#include "log.h"
#include "logesc.h"
#include "mailpush.h"

static void	hook_usage(FILE *);
static int	hook_run_agent(struct hook *);
static void	hook_send(const struct hook *);
static void	hook_defer(const char *, ...)
		    __attribute__((format(printf, 1, 2), noreturn));

extern char	**environ;

static void
hook_usage(FILE *fp)
{
	fprintf(fp, "usage: %s [-dh] [-c file] [-m mailbox] [-s socket] "
	    "[-t timeout]\n"
	    "       %*s [-u user] [-- agent [arg ...]]\n", HOOK_NAME,
	    (int)strlen(HOOK_NAME), "");
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
