/*
 * hookargs.c: mailpush-hook's options, its environment and its reading of
 * mailpushd.conf, which is forgiving: the hook uses three keys, an error
 * in one of them means that key's default, an error anywhere else is one
 * log line (config_load_for), and the event is always sent.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "event.h"
#include "hookargs.h"
#include "log.h"

int	hook_foreground;

/* Remember the first problem with the command line; later ones add nothing. */
void
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
 * Find the `--' that ends the hook's options, the way getopt would: skip
 * the argument of every option that takes one.  An option "argument" that
 * is itself `--' is taken as the separator (`-u -- agent' lost its user),
 * so the agent can still be found.  Returns the index of `--' or -1.
 */
int
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

void
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
int
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

