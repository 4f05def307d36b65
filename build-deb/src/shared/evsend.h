/*
 * evsend.h: send one event datagram to the mailpushd event socket within a
 * bounded time.  Plain POSIX, no Dovecot headers: the Dovecot driver uses it,
 * and mailpush-hook or a test may too.
 */
#ifndef MP_EVSEND_H
#define MP_EVSEND_H

#include <stddef.h>

/*
 * Sends buf (len bytes) as one datagram on a non-blocking AF_UNIX SOCK_DGRAM
 * socket connected to path.  When the receiver's queue is full it waits with
 * poll(2), at most timeout_ms milliseconds in all (0: one attempt, no wait).
 * Returns 0 when the datagram was queued; otherwise -1 with errno set
 * (ETIMEDOUT when the time ran out) and *why naming the failed step.
 */
int	evsend_dgram(const char *path, const void *buf, size_t len,
	    unsigned int timeout_ms, const char **why);

#endif
