/*
 * user.c: `Alice+news@Example.COM' and `alice@example.com' are one mailbox.
 *
 * The local part loses everything from the first recipient delimiter up to
 * the `@' (or the end), as Postfix's recipient_delimiter does; with
 * fold_case ASCII letters are lower-cased.  Control characters (C0, DEL
 * and C1), spaces, bytes that are not UTF-8 and an empty result are
 * refused, so a name is always safe to log and to use as a key.
 */
#include <string.h>

#include "user.h"

/*
 * The length of the well-formed UTF-8 sequence (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF) that starts `s', which
 * is not ASCII; 0 if there is none or it encodes a C1 control.
 */
size_t
user_utf8_len(const unsigned char *s, size_t left)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		if (s[0] == 0xe0)
			lo = 0xa0;
		else if (s[0] == 0xed)
			hi = 0x9f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		if (s[0] == 0xf0)
			lo = 0x90;
		else if (s[0] == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n > left || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	if (s[0] == 0xc2 && s[1] <= 0x9f)
		return 0;	/* U+0080..U+009F */
	return n;
}

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
		if (c >= 0x80) {
			size_t n = user_utf8_len((const unsigned char *)in + i,
			    inlen - i);

			if (n == 0) {
				*why = "user name is not valid UTF-8 or "
				    "contains a control character";
				return -1;
			}
			if (!skipping) {
				memcpy(out + o, in + i, n);
				o += n;
			}
			i += n - 1;
			continue;
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
