/*
 * dirs.c: the directories the daemon keeps its sockets and state in.
 *
 * dirs_check refuses a directory that someone other than root and the
 * daemon's user could write to: whoever can write there can put a link or
 * another socket where mailpushctl or the hook will look, or replace the
 * state file.  The message says the fix.
 *
 * dirs_enter / dirs_leave: started as root, the daemon makes its sockets
 * before it drops privileges.  In a directory the daemon's user owns
 * (/run/mailpush), or one of root's that the daemon's group may write,
 * that user could swap a path for a link between a check
 * and a use, so nothing is done there as root by path: the file-system
 * identity (setfsuid, setfsgid) becomes the daemon's user and the
 * socket's group for the stale-socket unlink and the bind, and the socket
 * is born with its final owner, group and mode, with no chown after.  In a
 * directory of root's that nobody else can write, root works as before.
 */
#include <sys/types.h>
#include <sys/fsuid.h>
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mailpushd.h"

/* The directory part of path into dir; "/" for a file at the root. */
static void
dir_of(const char *path, char *dir, size_t len)
{
	char *slash;

	snprintf(dir, len, "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL)
		snprintf(dir, len, ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
}

int
dirs_check(const char *path, const char *what, uid_t uid, gid_t gid)
{
	char dir[PATH_MAX];
	struct stat st;

	dir_of(path, dir, sizeof(dir));
	if (stat(dir, &st) == -1) {
		log_error("%s directory %s: %s", what, dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_error("%s directory %s is not a directory", what, dir);
		return -1;
	}
	if (st.st_uid != 0 && st.st_uid != uid) {
		log_error("%s directory %s is owned by uid %ld, not by root or "
		    "uid %ld (the user mailpushd runs as): refusing to use it "
		    "(chown root %s, or use another directory)", what, dir,
		    (long)st.st_uid, (long)uid, dir);
		return -1;
	}
	if ((st.st_mode & S_IWOTH) != 0 || ((st.st_mode & S_IWGRP) != 0 &&
	    st.st_gid != 0 && st.st_gid != gid)) {
		log_error("%s directory %s is writable by %s (mode %04o): "
		    "anybody there could replace what mailpushd keeps in it; "
		    "refusing to use it (chmod go-w %s, or use a directory "
		    "such as /run/mailpush that only root and mailpushd's "
		    "user can write)", what, dir, (st.st_mode & S_IWOTH) ?
		    "others" : "its group", (unsigned)(st.st_mode & 07777),
		    dir);
		return -1;
	}
	return 0;
}

/*
 * Before making a socket at path as root: if its directory belongs to the
 * daemon's user (uid), or its group gid may write it, act as uid and
 * group gid on the file system until
 * dirs_leave.  Returns 1 when it did (the socket will be owned by uid:gid
 * without a chown), 0 when root works there itself, -1 on failure.
 */
int
dirs_enter(const char *path, uid_t uid, gid_t gid)
{
	char dir[PATH_MAX];
	struct stat st;

	if (geteuid() != 0 || uid == 0)
		return 0;
	dir_of(path, dir, sizeof(dir));
	if (stat(dir, &st) == -1)
		return 0;
	/* dirs_check lets the daemon's group write a directory of root's
	 * too: there as well uid (or its group) could swap a path */
	if (st.st_uid != uid && !((st.st_mode & S_IWGRP) != 0 &&
	    st.st_gid == gid))
		return 0;
	setfsgid(gid);
	setfsuid(uid);
	if ((uid_t)setfsuid((uid_t)-1) != uid ||
	    (gid_t)setfsgid((gid_t)-1) != gid) {
		dirs_leave();
		log_error("cannot act as uid %ld gid %ld in %s", (long)uid,
		    (long)gid, dir);
		return -1;
	}
	return 1;
}

void
dirs_leave(void)
{
	setfsuid(geteuid());
	setfsgid(getegid());
}
