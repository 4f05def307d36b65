/*
 * mailpushctl.h: what mailpushctl's two files share.
 */
#ifndef MAILPUSHCTL_H
#define MAILPUSHCTL_H

#include <stdio.h>

#include "config.h"

#define EX_REFUSED	1
#define EX_PROBLEM	2	/* status found a problem */
#define EX_USAGE	64
#define EX_DATAERR	65
#define EX_UNAVAILABLE	69
#define EX_SOFTWARE	70
#define EX_CANTCREAT	73
#define EX_IOERR	74
#define EX_NOPERM	77
#define EX_CONFIG	78

#define TIMEOUT_MS	10000

/* mailpushctl.c */
void	json_str(FILE *, const char *);
/* One request over the control socket, its answer printed; exit status. */
int	ctl_request(const char *path, const char *req);

/* mailpushctl-key.c: keys and tokens, from the key file */
int	cmd_token(const struct mp_config *, const char *user, int json);
int	cmd_genkey(const struct mp_config *, int force, int json);
/*
 * key show|rotate|retire; -1 for an unknown subcommand.  rotate refuses
 * (EX_DATAERR) while the previous key is in its grace, unless force.
 */
int	cmd_key(const struct mp_config *, const char *sub, const char *sock,
	    int json, int force);

#endif
