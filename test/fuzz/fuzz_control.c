/*
 * fuzz_control.c: the control socket's request handling (control_handle:
 * the line parser and every command) with the daemon's registry behind
 * it, a few registrations in it.  Whatever the line, the answer is "ok"
 * or "error: ..." and nothing crashes or leaks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <sodium.h>

#include "fuzz_depth.h"
#include "log.h"
#include "mailpushd.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define LINE_MAX_FUZZ	512		/* as CONTROL_LINE_MAX */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	log_init("fuzz_control", getenv("FUZZ_VERBOSE") != NULL, 0);
	if ((mpd = calloc(1, sizeof(*mpd))) == NULL)
		abort();
	config_defaults(&mpd->cfg);
	/* reload reads this file, which does not exist: "reload failed" */
	snprintf(mpd->cfg.path, sizeof(mpd->cfg.path), "/nonexistent/fuzz");
	mpd->cfg.state_file[0] = '\0';
	mpd->listeners[0].conf = mpd->cfg.listen[0];
	mpd->listeners[0].in_use = 1;
	mpd->listeners[0].fd = -1;
	mpd->n_listeners = 1;
	mpd_now();
	return 0;
}

/* Two users with registrations, so list and drop find something. */
static void
fill(void)
{
	union mp_addr a;

	memset(&a, 0, sizeof(a));
	a.sin.sin_family = AF_INET;
	a.sin.sin_port = htons(4000);
	a.sin.sin_addr.s_addr = htonl(0x7f000001);
	registry_add(registry_user("alice", 1), &a, 0, (const uint8_t *)"ctx",
	    3, 600, 0x0badcafe);
	registry_add(registry_user("alice", 1), &a, 0, (const uint8_t *)"c2",
	    2, 600, 0x0000beef);
	registry_add(registry_user("bob", 1), &a, 0, (const uint8_t *)"x", 1,
	    600, 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[LINE_MAX_FUZZ + 1];
	struct evbuffer *out;
	size_t n = size < LINE_MAX_FUZZ ? size : LINE_MAX_FUZZ;
	char *nl, first[8];

	/* what control_read hands over: one line, NUL-terminated */
	memcpy(line, data, n);
	line[n] = '\0';
	if ((nl = memchr(line, '\n', n)) != NULL)
		*nl = '\0';
	mpd->now_ms = 1700000000000ULL;
	registry_init();
	fill();
	if ((out = evbuffer_new()) == NULL)
		abort();
	control_handle(line, out);
	memset(first, 0, sizeof(first));
	evbuffer_copyout(out, first, sizeof(first) - 1);
	if (strncmp(first, "ok\n", 3) == 0)
		fuzz_deep();	/* a request the parser recognised */
	else if (strncmp(first, "error: ", 7) != 0)
		abort();	/* every answer starts one way or the other */
	evbuffer_free(out);
	registry_free();
	return 0;
}
