/*
 * regctx.h: a daemon context of its own for tests that drive the
 * registration table directly (notifier/registry.c linked in): default
 * configuration, a fixed clock, an empty table.  The check fixture pair.
 */
#ifndef MP_REGCTX_H
#define MP_REGCTX_H

void	regctx_setup(void);
void	regctx_teardown(void);

#endif
