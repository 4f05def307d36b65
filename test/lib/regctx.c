/*
 * regctx.c: a daemon context of its own for the tests that drive the
 * registration table directly (regctx.h).
 */
#include <stdlib.h>

#include <check.h>
#include <sodium.h>

#include "../../notifier/mailpushd.h"
#include "regctx.h"

static struct mpd *saved;

void
regctx_setup(void)
{
	ck_assert_int_ne(sodium_init(), -1);
	saved = mpd;
	mpd = calloc(1, sizeof(*mpd));
	ck_assert_ptr_nonnull(mpd);
	config_defaults(&mpd->cfg);
	mpd->now_ms = 1700000000000ULL;
	registry_init();
}

void
regctx_teardown(void)
{
	registry_free();
	config_free(&mpd->cfg);
	free(mpd);
	mpd = saved;
}
