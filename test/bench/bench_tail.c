/*
 * bench_tail.c: what made the slowest push of a latency run slow.
 *
 * A stall of the daemon's loop (a timer run, a state save, a table growing)
 * or the daemon being off the CPU delays every event sent meanwhile: the
 * slow ones come in a cluster, each later one waiting less.  One event
 * slow on its own was slowed by its own work.  The daemon's involuntary
 * context switches during the run (/proc/PID/status) say whether the
 * scheduler took the CPU away; nothing in the daemon runs on a timer
 * during the measurement (save interval 1 d, retry 1 h).
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

/* The daemon's context switches so far; -1 if unreadable. */
int
tail_ctxt(pid_t pid, long *vol, long *invol)
{
	char path[64], line[128];
	FILE *fp;

	*vol = *invol = -1;
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL) {
		sscanf(line, "voluntary_ctxt_switches: %ld", vol);
		sscanf(line, "nonvoluntary_ctxt_switches: %ld", invol);
	}
	fclose(fp);
	return *vol < 0 || *invol < 0 ? -1 : 0;
}

/*
 * Events [from, from + n) sent at t_send, their pushes received at t_recv
 * (0: lost); invol: the daemon's involuntary switches during the run.
 */
void
tail_explain(unsigned run, const uint64_t *t_send, const uint64_t *t_recv,
    unsigned from, unsigned n, long invol)
{
	unsigned i, worst = from, waited = 0;
	int64_t mx = -1, lat;

	for (i = from; i < from + n; i++) {
		if (t_recv[i] == 0)
			continue;
		lat = (int64_t)(t_recv[i] - t_send[i]);
		if (lat > mx) {
			mx = lat;
			worst = i;
		}
	}
	if (mx < 0)
		return;
	/* the events sent while the slowest one waited that waited too:
	 * their pushes left no earlier than half the slowest one's delay */
	for (i = worst + 1; i < from + n && t_send[i] < t_recv[worst]; i++)
		if (t_recv[i] != 0 &&
		    (int64_t)(t_recv[i] - t_send[worst]) >= mx / 2)
			waited++;
	note("  run %u: max %.3f ms, event %u at +%.3f ms; %s (%u later "
	    "events sent while it waited were held too); the daemon was "
	    "preempted %ld times in the run", run, (double)mx / 1e6,
	    worst - from, (double)(t_send[worst] - t_send[from]) / 1e6,
	    waited > 0 ? "a cluster: the loop was held (the daemon off the "
	    "CPU, or a stall)" : "alone: its own work", waited, invol);
}
