/*
 * fuzz_hook.c: mailpush-hook's arguments and configuration (hookargs.c):
 * the input is an INI file, then "\0\0", then the arguments separated by
 * NUL bytes.  Whatever they are, hook_prepare either makes an event whose
 * datagram decodes back to the user and mailbox, with a socket path, or
 * reports a usage error; it never crashes or leaks, and a configuration
 * error never stops the event.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "event.h"
#include "fuzz_depth.h"
#include "hookargs.h"
#include "log.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define ARGS_MAX	16

static char path[64];

static void
cleanup(void)
{
	unlink(path);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int fd;

	(void)argc;
	(void)argv;
	snprintf(path, sizeof(path), "/tmp/fuzz-hook.XXXXXX");
	if ((fd = mkstemp(path)) == -1)
		abort();
	close(fd);
	atexit(cleanup);
	log_init("fuzz_hook", getenv("FUZZ_VERBOSE") != NULL, 0);
	/* the user comes from -u or from these */
	unsetenv("USER");
	unsetenv("LOGNAME");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy, *argv[ARGS_MAX + 4], *p, *end;
	const uint8_t *sep = NULL;
	struct mp_event ev;
	struct hook h;
	const char *why;
	FILE *fp;
	size_t i;
	int argc = 0, s;

	for (i = 0; i + 1 < size; i++)
		if (data[i] == 0 && data[i + 1] == 0) {
			sep = data + i;
			break;
		}
	if ((fp = fopen(path, "w")) == NULL)
		abort();
	fwrite(data, 1, sep != NULL ? (size_t)(sep - data) : size, fp);
	fclose(fp);
	/* the arguments, NUL-separated, after the separator */
	if ((copy = calloc(1, size + 1)) == NULL)
		abort();
	argv[argc++] = (char *)"mailpush-hook";
	argv[argc++] = (char *)"-c";
	argv[argc++] = path;
	if (sep != NULL) {
		memcpy(copy, sep + 2, size - (size_t)(sep + 2 - data));
		end = copy + (size - (size_t)(sep + 2 - data));
		for (p = copy; p < end && argc < ARGS_MAX + 3; p += strlen(p) + 1)
			argv[argc++] = p;
	}
	argv[argc] = NULL;

	memset(&h, 0, sizeof(h));
	h.conffile = path;
	h.mailbox = "INBOX";
	hook_foreground = 0;
	optind = 0;		/* glibc: start getopt afresh */
	s = hook_find_separator(argc, argv);
	if (s != -1 && s + 1 < argc)
		h.agent = argv + s + 1;
	hook_options(&h, s != -1 ? s : argc, argv);
	if (h.err[0] == '\0' && hook_prepare(&h) == 0) {
		/* the event is whole, and goes to a socket path */
		if (h.socket[0] != '/' || h.send_timeout == 0 ||
		    event_decode(h.dgram, h.dgram_len, &ev, &why) != 0 ||
		    strcmp(ev.user, h.user) != 0 ||
		    strcmp(ev.mailbox, h.mailbox) != 0)
			abort();
		fuzz_deep();
	}
	free(copy);
	return 0;
}
