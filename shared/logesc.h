/*
 * logesc.h: the one escaping of bytes that came from outside (user and
 * mailbox names, paths and arguments given to the hook, values from the
 * INI file) before they reach a log line, so that no input can forge or
 * split a line of the log.  Used by every program and the Dovecot driver.
 */
#ifndef MP_LOGESC_H
#define MP_LOGESC_H

#include <stddef.h>

/* Longest result of log_str, without its NUL. */
#define LOGESC_MAX	1023

/*
 * Write s (len bytes) into dst (dstlen > 0 bytes, always NUL-terminated):
 * printable ASCII and well-formed UTF-8 as they are; a backslash as "\\";
 * control characters (C0, DEL, C1), bytes that are not UTF-8 and NUL as
 * "\xNN".  What does not fit is cut at a character boundary and marked
 * with "...".  Returns the length written.
 */
size_t	log_escape(char *dst, size_t dstlen, const void *s, size_t len);

/*
 * s escaped as above into one of a few static buffers, for use as an
 * argument of a log call; at most 8 results of one call stay valid.
 * NULL gives "(null)".
 */
const char *log_str(const char *s);

#endif
