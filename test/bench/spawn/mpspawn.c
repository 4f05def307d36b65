/*
 * mpspawn.c: the least any wrapper around a delivery agent can do, as the
 * floor of the wrapper benchmark (test/bench/bench_proc.c): start the
 * program its arguments name as mailpush-hook starts the agent
 * (posix_spawn), wait for it and exit with its status.  No configuration,
 * no event, no log; linked as the hook is (static PIE where libinih.a is
 * installed), so the two differ by what the hook does, not by how it
 * starts.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

extern char	**environ;

int
main(int argc, char *argv[])
{
	pid_t pid;
	int e, status;

	if (argc < 2 || argv[1][0] != '/') {
		fprintf(stderr, "usage: mpspawn /path/to/program [arg ...]\n");
		return EX_USAGE;
	}
	if ((e = posix_spawn(&pid, argv[1], NULL, NULL, argv + 1,
	    environ)) != 0) {
		fprintf(stderr, "mpspawn: cannot execute %s: %s\n", argv[1],
		    strerror(e));
		return EX_TEMPFAIL;
	}
	while (waitpid(pid, &status, 0) == -1) {
		if (errno != EINTR) {
			fprintf(stderr, "mpspawn: waitpid: %s\n",
			    strerror(errno));
			return EX_TEMPFAIL;
		}
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	fprintf(stderr, "mpspawn: %s killed by signal %d\n", argv[1],
	    WTERMSIG(status));
	return EX_TEMPFAIL;
}
