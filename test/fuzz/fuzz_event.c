/*
 * fuzz_event.c: the event datagram parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "fuzz_depth.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mp_event ev;
	uint8_t out[EVENT_MAX_LEN];
	const char *why;
	int n;

	if (event_decode(data, size, &ev, &why) != 0)
		return 0;
	fuzz_deep();
	if (strlen(ev.user) != ev.user_len ||
	    strlen(ev.mailbox) != ev.mailbox_len)
		abort();
	n = event_encode(&ev, out, sizeof(out), &why);
	if (n != (int)size || memcmp(out, data, size) != 0)
		abort();
	return 0;
}
