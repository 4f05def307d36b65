/*
 * mailpushd_int.h: what mailpushd.c (start-up, the loop) and
 * mailpushd_reload.c (keys, listeners, reload) share.  Not for the rest of
 * the daemon (mailpushd.h).
 */
#ifndef MP_MAILPUSHD_INT_H
#define MP_MAILPUSHD_INT_H

#include "mailpushd.h"

extern int	mpd_key_random;		/* mpd->key is random, in memory */
extern int	mpd_load_random;	/* mpd_load_key made or kept one */

void	mpd_set_keys(struct mp_keys *);
int	mpd_listeners_open(const struct mp_config *);
void	mpd_listeners_commit(const struct mp_config *, int starting);

#endif
