/*
 * redis.h: a real redis-server for the cluster tests and benchmarks,
 * started on a Unix socket in a temporary directory (no TCP port to
 * collide with anybody's), and a raw client to publish arbitrary bytes.
 */
#ifndef MP_REDIS_H
#define MP_REDIS_H

#include <sys/types.h>

#include <stddef.h>

#define REDIS_SERVER	"/usr/bin/redis-server"

struct redis_proc {
	char	dir[64];	/* removed by redis_cleanup */
	char	sock[128];	/* dir/redis.sock */
	char	log[128];
	pid_t	pid;
	int	port;		/* 0: no TCP; else 127.0.0.1:port */
	char	extra[4][160];	/* ACL users: --user WORDS... */
	int	n_extra;
};

/* Is redis-server installed?  If not, the caller skips with a message. */
int	redis_available(void);
/* Make the directory; start with redis_start. */
int	redis_prepare(struct redis_proc *);
/* Start (again, same socket) and wait until it answers PING (or asks
 * for AUTH).  -1 if it does not within 5 s. */
int	redis_start(struct redis_proc *);
/* SIGKILL and wait; the socket file stays until the next start. */
void	redis_kill(struct redis_proc *);
void	redis_cleanup(struct redis_proc *);
/*
 * PUBLISH len bytes on channel as a raw RESP command, after AUTH user
 * password if user is not NULL; returns Redis's integer answer (the
 * subscribers that got it) or -1.
 */
long long redis_publish(const struct redis_proc *, const char *user,
	    const char *password, const char *channel, const void *buf,
	    size_t len);

#endif
