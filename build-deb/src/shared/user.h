/*
 * user.h: the one rule that turns a recipient into a mailbox owner's name.
 */
#ifndef MP_USER_H
#define MP_USER_H

#include <stddef.h>

#include "mailpush.h"

struct user_rule {
	int	fold_case;		/* lower-case ASCII letters */
	char	delimiters[16];		/* recipient_delimiter characters */
};

/*
 * Normalise `in' into `out' (MP_USER_MAX + 1 bytes): fold case if asked,
 * strip the address extension after the first delimiter in the local part.
 * Returns 0, or -1 with a static reason in *why.
 */
int	user_normalize(const struct user_rule *, const char *in, size_t inlen,
	    char out[MP_USER_MAX + 1], const char **why);

/*
 * Length of the well-formed UTF-8 sequence (not ASCII, not a C1 control)
 * at s, with left bytes available; 0 if there is none.
 */
size_t	user_utf8_len(const unsigned char *s, size_t left);

#endif
