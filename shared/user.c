/*
 * user.c: `Alice+news@Example.COM' and `alice@example.com' are one mailbox.
 *
 * The local part loses everything from the first recipient delimiter up to
 * the `@' (or the end), as Postfix's recipient_delimiter does; with
 * fold_case ASCII letters are lower-cased.  Control characters, spaces and
 * an empty result are refused, so a name is always safe to log and to use
 * as a key.
 */
#include <string.h>

#include "user.h"

int
user_normalize(const struct user_rule *rule, const char *in, size_t inlen,
    char out[MP_USER_MAX + 1], const char **why)
{
	size_t i, o = 0;
	int skipping = 0, seen_at = 0;

	if (inlen == 0) {
		*why = "user name is empty";
		return -1;
	}
	if (inlen > MP_USER_MAX) {
		*why = "user name is longer than 255 bytes";
		return -1;
	}
	for (i = 0; i < inlen; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c <= 0x20 || c == 0x7f) {
			*why = "user name contains a space or control character";
			return -1;
		}
		if (c == '@') {
			if (seen_at) {
				*why = "user name contains more than one '@'";
				return -1;
			}
			seen_at = 1;
			skipping = 0;
		} else if (!seen_at && o > 0 && rule->delimiters[0] != '\0' &&
		    strchr(rule->delimiters, c) != NULL) {
			skipping = 1;
		}
		if (skipping)
			continue;
		if (rule->fold_case && c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		out[o++] = (char)c;
	}
	out[o] = '\0';
	if (o == 0 || out[0] == '@') {
		*why = "user name has an empty local part";
		return -1;
	}
	if (out[o - 1] == '@') {
		*why = "user name has an empty domain";
		return -1;
	}
	return 0;
}
