/*
 * jsonev.c: a JSON string into a libevent buffer (see jsonev.h); what
 * comes from the configuration (a Redis socket path may hold '"' or '\')
 * goes into the JSON status through this.
 */
#include <string.h>

#include "jsonev.h"
#include "user.h"

void
jsonev_str(struct evbuffer *out, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n;

	evbuffer_add(out, "\"", 1);
	while (*s != '\0') {
		if (*s >= 0x80) {
			if ((n = user_utf8_len(s, strlen((const char *)s))) !=
			    0) {
				evbuffer_add(out, s, n);
				s += n;
			} else {
				evbuffer_add(out, "\\ufffd", 6);
				s++;
			}
			continue;
		}
		if (*s == '"' || *s == '\\')
			evbuffer_add_printf(out, "\\%c", *s);
		else if (*s < 0x20 || *s == 0x7f)
			evbuffer_add_printf(out, "\\u%04x", *s);
		else
			evbuffer_add(out, s, 1);
		s++;
	}
	evbuffer_add(out, "\"", 1);
}
