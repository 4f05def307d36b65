/*
 * jsonev.h: a JSON string into a libevent buffer, for the status and
 * statistics answers (jsonev.c).
 */
#ifndef MP_JSONEV_H
#define MP_JSONEV_H

#include <event2/buffer.h>

/*
 * s as a JSON string, quotes included: '"' and '\' escaped, control
 * characters as \u00XX, bytes that are not UTF-8 as \ufffd.
 */
void	jsonev_str(struct evbuffer *, const char *s);

#endif
