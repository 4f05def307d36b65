/*
 * fuzz_depth.c: see fuzz_depth.h.
 */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_depth.h"

static unsigned long	deep;
static int		registered;

static void
fuzz_depth_report(void)
{
	fprintf(stderr, "fuzz-depth: %lu\n", deep);
}

void
fuzz_deep(void)
{
	if (!registered && getenv("FUZZ_DEPTH") != NULL)
		atexit(fuzz_depth_report);
	registered = 1;
	deep++;
}
