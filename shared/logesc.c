/*
 * logesc.c: escaping of outside bytes for the log (logesc.h).  The same
 * rule as the text output of mailpushctl: nothing that a terminal or a
 * log reader would take for a line break, a control sequence or a
 * different character survives unescaped.
 */
#include <stdio.h>
#include <string.h>

#include "logesc.h"
#include "user.h"

#define LOGESC_SLOTS	8

/* One input character at s (left > 0 bytes): its escaped form in out
 * (8 bytes), its length there in *w; returns the input bytes it took. */
static size_t
esc_one(const unsigned char *s, size_t left, char out[8], size_t *w)
{
	size_t n;

	if (s[0] >= 0x80 && (n = user_utf8_len(s, left)) != 0) {
		memcpy(out, s, n);
		*w = n;
		return n;
	}
	if (s[0] < 0x20 || s[0] >= 0x7f) {
		snprintf(out, 8, "\\x%02x", s[0]);
		*w = 4;
	} else if (s[0] == '\\') {
		memcpy(out, "\\\\", 2);
		*w = 2;
	} else {
		out[0] = (char)s[0];
		*w = 1;
	}
	return 1;
}

size_t
log_escape(char *dst, size_t dstlen, const void *src, size_t len)
{
	const unsigned char *s = src;
	size_t i, o = 0, n, w, total = 0, limit;
	char tmp[8];

	if (dstlen == 0)
		return 0;
	for (i = 0; i < len; i += n) {
		n = esc_one(s + i, len - i, tmp, &w);
		total += w;
	}
	/* all of it, or as much as leaves room for "..." */
	limit = total < dstlen ? total : dstlen > 4 ? dstlen - 4 : 0;
	for (i = 0; i < len; i += n) {
		n = esc_one(s + i, len - i, tmp, &w);
		if (o + w > limit)
			break;
		memcpy(dst + o, tmp, w);
		o += w;
	}
	if (i < len && dstlen > 4) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
	return o;
}

const char *
log_str(const char *s)
{
	static char buf[LOGESC_SLOTS][LOGESC_MAX + 1];
	static unsigned next;
	char *b = buf[next++ % LOGESC_SLOTS];

	if (s == NULL)
		return "(null)";
	log_escape(b, sizeof(buf[0]), s, strlen(s));
	return b;
}
