/*
 * evsend.c: one datagram to a UNIX SOCK_DGRAM socket, never blocking longer
 * than the caller allows.
 *
 * The socket is connect()ed before sending: for a connected datagram socket
 * Linux makes poll(POLLOUT) wait for room in the receiver's queue, whereas
 * an unconnected one reports itself writable at once and a retry loop would
 * spin on EAGAIN until the deadline.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evsend.h"

static long long
evsend_now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return 0;
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
evsend_dgram(const char *path, const void *buf, size_t len,
    unsigned int timeout_ms, const char **why)
{
	struct sockaddr_un	 sun;
	struct pollfd		 pfd;
	long long		 deadline, left;
	size_t			 plen;
	ssize_t			 n;
	int			 e, fd;

	deadline = evsend_now_ms() + timeout_ms;
	plen = strlen(path);
	if (plen == 0 || plen >= sizeof(sun.sun_path)) {
		*why = "socket path";
		errno = ENAMETOOLONG;
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, plen);

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		*why = "socket";
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		*why = "connect";
		goto fail;
	}
	for (;;) {
		n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n >= 0) {
			if ((size_t)n != len) {
				/* A datagram goes whole or not at all. */
				*why = "send";
				errno = EMSGSIZE;
				goto fail;
			}
			close(fd);
			return 0;
		}
		if ((e = errno) == EINTR)
			continue;
		if (e != EAGAIN && e != EWOULDBLOCK && e != ENOBUFS) {
			*why = "send";
			goto fail;
		}
		left = deadline - evsend_now_ms();
		if (left <= 0) {
			*why = "send";
			errno = ETIMEDOUT;
			goto fail;
		}
		/*
		 * EAGAIN: the receiver's queue is full; poll until it has
		 * room.  ENOBUFS (no kernel memory) has nothing to poll for:
		 * retry every few milliseconds.
		 */
		pfd.fd = fd;
		if (e == ENOBUFS) {
			pfd.fd = -1;
			if (left > 5)
				left = 5;
		}
		pfd.events = POLLOUT;
		pfd.revents = 0;
		if (poll(&pfd, 1, (int)left) == -1 && errno != EINTR) {
			*why = "poll";
			goto fail;
		}
	}

fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}
