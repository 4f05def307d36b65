/*
 * bench_tail.c: what made the slowest push of a latency run slow.
 *
 * A stall of the daemon's loop (a timer run, a state save, a table growing)
 * or the daemon being off the CPU delays every event sent meanwhile: the
 * slow ones come in a cluster, each later one waiting less.  One event
 * slow on its own was slowed by its own work.  The daemon's involuntary
 * context switches during the run (/proc/PID/status) say whether the
 * scheduler took the CPU away; nothing in the daemon runs on a timer
 * during the measurement (save interval 1 d, retry 1 h).  What else ran
 * on the machine meanwhile (every other thread's CPU time and slices from
 * /proc/PID/task/TID/sched) names who had the CPU.
 */
#include <sys/types.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
#define TASKS_MAX	4096

struct task_cpu {
	pid_t		pid, tid;
	char		comm[32];
	double		ms;		/* se.sum_exec_runtime */
	long		slices;		/* nr_switches */
};

struct tail_tasks {
	struct task_cpu	t[TASKS_MAX];
	size_t		n;
	pid_t		skip[3];
};

static int
task_read(pid_t pid, pid_t tid, struct task_cpu *t)
{
	char path[64], line[256];
	FILE *fp;
	int have = 0;

	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/sched", (long)pid,
	    (long)tid);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	t->pid = pid;
	t->tid = tid;
	t->comm[0] = '\0';
	if (fgets(line, sizeof(line), fp) != NULL)
		sscanf(line, "%31[^ (]", t->comm);
	while (fgets(line, sizeof(line), fp) != NULL) {
		have += sscanf(line, "se.sum_exec_runtime : %lf", &t->ms);
		have += sscanf(line, "nr_switches : %ld", &t->slices);
	}
	fclose(fp);
	return have == 2 ? 0 : -1;
}

/* "process_api, nice -10": the thread's process and its nice value */
static const char *
task_who(const struct task_cpu *t)
{
	static char who[64];
	char path[64], comm[32] = "?", stat[512], *p;
	long nice = 0;
	FILE *fp;
	int i;

	snprintf(path, sizeof(path), "/proc/%ld/comm", (long)t->pid);
	if ((fp = fopen(path, "r")) != NULL) {
		if (fscanf(fp, "%31[^\n]", comm) != 1)
			strcpy(comm, "?");
		fclose(fp);
	}
	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/stat", (long)t->pid,
	    (long)t->tid);
	if ((fp = fopen(path, "r")) != NULL) {
		/* field 19 is the nice value; the name (2) may hold spaces */
		if (fgets(stat, sizeof(stat), fp) != NULL &&
		    (p = strrchr(stat, ')')) != NULL) {
			for (i = 2; i < 19 && p != NULL; i++)
				p = strchr(p + 1, ' ');
			if (p != NULL)
				nice = atol(p + 1);
		}
		fclose(fp);
	}
	snprintf(who, sizeof(who), "%s, nice %ld", comm, nice);
	return who;
}

/* Every thread's CPU time so far, but this process's and skip's. */
static void
tasks_read(struct tail_tasks *tt)
{
	DIR *d, *td;
	struct dirent *e, *te;
	char path[64];
	pid_t pid;

	tt->n = 0;
	if ((d = opendir("/proc")) == NULL)
		return;
	while ((e = readdir(d)) != NULL && tt->n < TASKS_MAX) {
		if ((pid = (pid_t)atol(e->d_name)) <= 0 ||
		    pid == tt->skip[0] || pid == tt->skip[1] ||
		    pid == tt->skip[2])
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/task", (long)pid);
		if ((td = opendir(path)) == NULL)
			continue;
		while ((te = readdir(td)) != NULL && tt->n < TASKS_MAX)
			if (atol(te->d_name) > 0 && task_read(pid,
			    (pid_t)atol(te->d_name), &tt->t[tt->n]) == 0)
				tt->n++;
		closedir(td);
	}
	closedir(d);
}

struct tail_tasks *
tail_tasks_begin(pid_t skip1, pid_t skip2)
{
	struct tail_tasks *tt = calloc(1, sizeof(*tt));

	if (tt == NULL)
		abort();
	tt->skip[0] = getpid();
	tt->skip[1] = skip1;
	tt->skip[2] = skip2;
	tasks_read(tt);
	return tt;
}

/*
 * "kdamond.0 3.1 ms in 3 slices, ..." for the (at most three) other
 * threads that ran longest since tail_tasks_begin; frees tt.
 */
void
tail_tasks_end(struct tail_tasks *tt, char *out, size_t len)
{
	struct tail_tasks *now = calloc(1, sizeof(*now));
	struct task_cpu top[3];
	size_t i, j, k, used = 0;
	double all = 0;

	if (now == NULL)
		abort();
	memcpy(now->skip, tt->skip, sizeof(now->skip));
	tasks_read(now);
	memset(top, 0, sizeof(top));
	for (i = 0; i < now->n; i++) {
		struct task_cpu d = now->t[i];

		for (j = 0; j < tt->n && tt->t[j].tid != d.tid; j++)
			;
		if (j < tt->n) {	/* else: born during the run */
			d.ms -= tt->t[j].ms;
			d.slices -= tt->t[j].slices;
		}
		all += d.ms;
		for (k = 0; k < 3 && top[k].ms >= d.ms; k++)
			;
		if (k < 3) {
			memmove(&top[k + 1], &top[k], (2 - k) * sizeof(top[0]));
			top[k] = d;
		}
	}
	used = (size_t)snprintf(out, len, "other tasks ran %.1f ms in all",
	    all);
	for (k = 0; k < 3 && top[k].ms >= 0.05 && used < len; k++)
		used += (size_t)snprintf(out + used, len - used,
		    "%s %s (%s) %.1f ms in %ld slices", k == 0 ? ":" : ",",
		    top[k].comm, task_who(&top[k]), top[k].ms, top[k].slices);
	free(now);
	free(tt);
}

void
tail_explain(unsigned run, const uint64_t *t_send, const uint64_t *t_recv,
    unsigned from, unsigned n, long invol, const char *others)
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
	    "preempted %ld times in the run; %s", run, (double)mx / 1e6,
	    worst - from, (double)(t_send[worst] - t_send[from]) / 1e6,
	    waited > 0 ? "a cluster: the loop was held (the daemon off the "
	    "CPU, or a stall)" : "alone: its own work", waited, invol,
	    others);
}
