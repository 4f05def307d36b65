/*
 * hookargs.h: mailpush-hook's command line and configuration, apart from
 * running the agent and sending, so that a fuzz target can drive them.
 */
#ifndef MP_HOOKARGS_H
#define MP_HOOKARGS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "event.h"

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

/* -d: the log is stderr already */
extern int	hook_foreground;

/* Remember the first usage error (printf format) in h->err. */
void	hook_usage_error(struct hook *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* The index of the `--' that ends the hook's options, or -1. */
int	hook_find_separator(int, char **);
/* Parse the options in argv[0..argc) (getopt: set optind first). */
void	hook_options(struct hook *, int, char **);
/*
 * Work out the event and where it goes: user, mailbox, socket, timeout.
 * Returns 0 or EX_USAGE (message in h->err).  Configuration errors are
 * logged by the loader and never stop the event.
 */
int	hook_prepare(struct hook *);

#endif
