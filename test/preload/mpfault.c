/*
 * mpfault.c: an LD_PRELOAD library for the persistence tests of
 * mailpushd (test/check_journal.c).  Two jobs:
 *
 * MPF_TRACE=FILE	append one line per write(2), fdatasync(2),
 *			fsync(2), rename(2), sendto(2), sendmmsg(2) and
 *			writev(2) of the process to FILE, numbered in the
 *			order they happened (one counter for all threads):
 *
 *	SEQ PID OP path=PATH off=OFFSET len=LEN port=PORT
 *
 *			(OFFSET: where a write to a file started; PORT: the
 *			destination of a datagram).
 * MPF_FAIL=FILE	while FILE exists, writes and syncs of files whose
 *			path contains MPF_MATCH (default ".journal.",
 *			".tmp" too) fail with the errno named in FILE
 *			("ENOSPC" or "EIO"; ENOSPC if empty), as a full
 *			or failing disk would.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <netinet/in.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t	seq;
static int	trace_fd = -2;

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static int (*real_fdatasync)(int);
static int (*real_fsync)(int);
static int (*real_rename)(const char *, const char *);
static ssize_t (*real_sendto)(int, const void *, size_t, int,
    const struct sockaddr *, socklen_t);
static int (*real_sendmmsg)(int, struct mmsghdr *, unsigned int, int);

#define REAL(name) do {							\
	if (real_##name == NULL)					\
		*(void **)&real_##name = dlsym(RTLD_NEXT, #name);	\
} while (0)

static void
fd_path(int fd, char *buf, size_t len)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, buf, len - 1)) < 0)
		n = 0;
	buf[n] = '\0';
}

static void
trace(const char *op, const char *path, long long off, long long len,
    unsigned port)
{
	char line[1200];
	const char *f;
	int n, err = errno;

	if (trace_fd == -2) {
		trace_fd = -1;
		if ((f = getenv("MPF_TRACE")) != NULL)
			trace_fd = (int)syscall(SYS_openat, AT_FDCWD, f,
			    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	}
	if (trace_fd < 0) {
		errno = err;
		return;
	}
	n = snprintf(line, sizeof(line), "%llu %ld %s path=%s off=%lld "
	    "len=%lld port=%u\n", (unsigned long long)__atomic_add_fetch(&seq,
	    1, __ATOMIC_SEQ_CST), (long)getpid(), op, path, off, len, port);
	if (n > (int)sizeof(line))
		n = (int)sizeof(line);
	syscall(SYS_write, trace_fd, line, (size_t)n);
	errno = err;
}

/* Should an operation on this path fail now?  Its errno, or 0. */
static int
failing(const char *path)
{
	const char *f = getenv("MPF_FAIL"), *m = getenv("MPF_MATCH");
	char what[16] = "";
	int fd;
	ssize_t n;

	if (f == NULL)
		return 0;
	if (m != NULL ? strstr(path, m) == NULL :
	    strstr(path, ".journal.") == NULL && strstr(path, ".tmp") == NULL)
		return 0;
	if ((fd = (int)syscall(SYS_openat, AT_FDCWD, f, O_RDONLY)) < 0)
		return 0;
	n = syscall(SYS_read, fd, what, sizeof(what) - 1);
	close(fd);
	what[n > 0 ? n : 0] = '\0';
	return strncmp(what, "EIO", 3) == 0 ? EIO : ENOSPC;
}

static int
is_file(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	char path[1024];
	ssize_t n;
	int err;

	REAL(write);
	if (fd == trace_fd || !is_file(fd))
		return real_write(fd, buf, len);
	fd_path(fd, path, sizeof(path));
	if ((err = failing(path)) != 0) {
		trace("write-failed", path, -1, (long long)len, 0);
		errno = err;
		return -1;
	}
	n = real_write(fd, buf, len);
	if (n > 0)
		trace("write", path, (long long)lseek(fd, 0, SEEK_CUR) - n,
		    (long long)n, 0);
	return n;
}

ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
	char path[1024];
	ssize_t n;

	REAL(writev);
	if (!is_file(fd)) {
		fd_path(fd, path, sizeof(path));
		trace("writev", path, 0, cnt > 0 ? (long long)iov[0].iov_len :
		    0, 0);
	}
	n = real_writev(fd, iov, cnt);
	return n;
}

static int
sync_common(int fd, int (*fn)(int), const char *op)
{
	char path[1024];
	int err, rc;

	fd_path(fd, path, sizeof(path));
	if ((err = failing(path)) != 0) {
		trace("sync-failed", path, 0, 0, 0);
		errno = err;
		return -1;
	}
	rc = fn(fd);
	if (rc == 0)
		trace(op, path, 0, 0, 0);
	return rc;
}

int
fdatasync(int fd)
{
	REAL(fdatasync);
	return sync_common(fd, real_fdatasync, "fdatasync");
}

int
fsync(int fd)
{
	REAL(fsync);
	return sync_common(fd, real_fsync, "fsync");
}

int
rename(const char *from, const char *to)
{
	int rc;

	REAL(rename);
	rc = real_rename(from, to);
	if (rc == 0)
		trace("rename", to, 0, 0, 0);
	return rc;
}

static unsigned
port_of(const struct sockaddr *sa)
{
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

ssize_t
sendto(int fd, const void *buf, size_t len, int flags,
    const struct sockaddr *to, socklen_t tolen)
{
	ssize_t n;

	REAL(sendto);
	/* traced before it leaves: what was synced before is synced
	 * before the datagram */
	trace("sendto", "-", 0, (long long)len, port_of(to));
	n = real_sendto(fd, buf, len, flags, to, tolen);
	return n;
}

int
sendmmsg(int fd, struct mmsghdr *m, unsigned int vlen, int flags)
{
	int n, i;

	REAL(sendmmsg);
	for (i = 0; i < (int)vlen; i++)
		trace("sendto", "-", 0, (long long)m[i].msg_hdr.msg_iov[0].iov_len,
		    port_of(m[i].msg_hdr.msg_name));
	n = real_sendmmsg(fd, m, vlen, flags);
	return n;
}
