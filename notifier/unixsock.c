/*
 * unixsock.c: the daemon's UNIX sockets (events, control, provisioning),
 * all made the same careful way, as smtpd's control.c makes its own:
 *
 *	- in a directory of the daemon's user, as that user (dirs.c), so
 *	  that root never works on paths another user controls;
 *	- a live instance behind the path is refused (connect(2) succeeds),
 *	  where the caller asks for that check;
 *	- a stale socket is removed, and never anything that is not a socket;
 *	- the socket is born with its final mode (umask around bind(2)): no
 *	  chmod by path, which would follow a link put in its place;
 *	- as root in a directory only root can write, its owner is set with
 *	  lchown(2); a stream or seqpacket socket listens.
 *
 * Every failure is logged with the path; the caller gets -1.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mailpushd.h"

/* Is a mailpushd answering at sun?  1 yes, 0 no, -1 error (logged). */
static int
usock_live(const struct sockaddr_un *sun, const struct usock *u)
{
	int fd, live;

	if ((fd = socket(AF_UNIX, u->type | SOCK_CLOEXEC, 0)) == -1) {
		log_warn("%s", u->what);
		return -1;
	}
	live = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
	close(fd);
	return live;
}

/* Remove a stale socket at u->path; never anything else.  0 or -1. */
static int
usock_remove_stale(const struct usock *u)
{
	struct stat st;

	if (lstat(u->path, &st) == -1)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		log_error("%s exists and is not a socket; %s", u->path,
		    u->not_socket);
		return -1;
	}
	if (unlink(u->path) == -1) {
		if (!u->unlink_must)
			return 0;	/* bind says what is wrong */
		log_warn("cannot remove stale %s %s", u->what, u->path);
		return -1;
	}
	log_debug("removed stale %s %s", u->what, u->path);
	return 0;
}

int
usock_open(const struct usock *u)
{
	struct sockaddr_un sun;
	mode_t old;
	int fd = -1, as_owner;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", u->path);
	if ((as_owner = dirs_enter(u->path, u->uid, u->gid)) == -1)
		return -1;
	if (u->live_msg != NULL) {
		int live = usock_live(&sun, u);

		if (live == 1)
			log_error("%s: %s", u->path, u->live_msg);
		if (live != 0)
			goto fail;
	}
	if (usock_remove_stale(u) == -1)
		goto fail;
	if ((fd = socket(AF_UNIX, u->type | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		log_warn("%s", u->what);
		goto fail;
	}
	old = umask(0777 & ~u->mode);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		log_warn("cannot bind %s %s", u->what, u->path);
		goto fail;
	}
	umask(old);
	if (as_owner) {
		dirs_leave();	/* born with its final owner too */
		as_owner = 0;
	} else if (u->chown && geteuid() == 0 &&
	    lchown(u->path, u->uid, u->gid) == -1) {
		log_warn("chown %s", u->path);
		goto fail_bound;
	} else if (u->chown == 2 && geteuid() != 0 && u->gid != getegid() &&
	    lchown(u->path, (uid_t)-1, u->gid) == -1) {
		log_warn("chgrp %s", u->path);
		goto fail_bound;
	}
	if (u->backlog > 0 && listen(fd, u->backlog) == -1) {
		log_warn("listen %s", u->path);
		goto fail_bound;
	}
	return fd;
fail_bound:
	if (dirs_enter(u->path, u->uid, u->gid) != -1) {
		unlink(u->path);
		dirs_leave();
	}
fail:
	if (as_owner)
		dirs_leave();
	if (fd != -1)
		close(fd);
	return -1;
}
