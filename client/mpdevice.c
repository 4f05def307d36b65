/*
 * mpdevice.c: the client's device id, kept in a file of its own (mode
 * 0600): 32 hexadecimal digits and a newline, made once at random.  See
 * mpclient.h.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "mpclient.h"

void
mpc_device_new(uint8_t device[MP_DEVICE_ID_LEN])
{
	randombytes_buf(device, MP_DEVICE_ID_LEN);
}

static int
device_read(int fd, uint8_t device[MP_DEVICE_ID_LEN])
{
	char buf[2 * MP_DEVICE_ID_LEN + 3];
	size_t len = 0, bin;
	const char *end;
	ssize_t n;

	while (len < sizeof(buf) - 1) {
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (len < 2 * MP_DEVICE_ID_LEN || len > 2 * MP_DEVICE_ID_LEN + 1 ||
	    sodium_hex2bin(device, MP_DEVICE_ID_LEN, buf, len, NULL, &bin,
	    &end) != 0 || bin != MP_DEVICE_ID_LEN ||
	    (*end != '\0' && strcmp(end, "\n") != 0)) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int
mpc_device_load(const char *path, uint8_t device[MP_DEVICE_ID_LEN],
    int *created)
{
	char hex[2 * MP_DEVICE_ID_LEN + 2], tmp[4096];
	int fd, saved, rc;
	size_t len;

	*created = 0;
	if (sodium_init() == -1) {
		errno = ENOSYS;
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) != -1) {
		rc = device_read(fd, device);
		saved = errno;
		close(fd);
		errno = saved;
		return rc;
	}
	if (errno != ENOENT)
		return -1;
	/* written whole under a temporary name, then linked into place:
	 * a reader never sees half a file, and link(2) refuses to replace
	 * one another instance made meanwhile */
	mpc_device_new(device);
	sodium_bin2hex(hex, sizeof(hex), device, MP_DEVICE_ID_LEN);
	len = strlen(hex);
	hex[len++] = '\n';
	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1)
		return -1;
	if (fchmod(fd, 0600) == -1 || write(fd, hex, len) != (ssize_t)len ||
	    fsync(fd) == -1) {
		saved = errno == 0 ? EIO : errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		return -1;
	}
	close(fd);
	rc = link(tmp, path);
	saved = errno;
	unlink(tmp);
	if (rc == -1) {
		if (saved == EEXIST)	/* another instance was quicker */
			return mpc_device_load(path, device, created);
		errno = saved;
		return -1;
	}
	*created = 1;
	return 0;
}
