/*
 * mpbench.c: make bench.  Runs the benchmarks of issue 8 against the real
 * daemon on loopback, each with its baseline in the same run, and prints
 * a table for BENCHMARKS.md.
 *
 *	mpbench [-qv] [-o name,...]
 *
 * -q (or BENCH_QUICK=1 in the environment): short runs for CI.  -o runs
 * only the named benchmarks: push, intake, latency, memory, hook, e2e,
 * register, growth, pages, cluster, keepalive, state.  Exit 0 whatever
 * the figures; 1 if a benchmark could not run.
 */
#include <sys/types.h>
#include <sys/utsname.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "bench.h"

static const struct {
	const char	*name;
	int		(*fn)(void);
} benches[] = {
	{ "push", bench_push },
	{ "intake", bench_intake },
	{ "latency", bench_latency },
	{ "hook", bench_hook },
	{ "e2e", bench_e2e },
	{ "memory", bench_memory_scaling },
	{ "register", bench_register },
	{ "growth", bench_growth },
	{ "pages", bench_pages },
	{ "state", bench_state },
	{ "cluster", bench_cluster },
	{ "keepalive", bench_keepalive },
};

static void
usage(void)
{
	fprintf(stderr, "usage: mpbench [-qv] [-o push,intake,latency,hook,"
	    "e2e,memory,register,growth,pages,cluster,keepalive,state]\n");
	exit(64);
}

static int
wanted(const char *name)
{
	const char *s = opts.only;
	size_t len = strlen(name);

	if (s == NULL)
		return 1;
	while ((s = strstr(s, name)) != NULL) {
		if ((s == opts.only || s[-1] == ',') &&
		    (s[len] == '\0' || s[len] == ','))
			return 1;
		s += len;
	}
	return 0;
}

static void
machine(void)
{
	struct utsname u;
	char line[256], model[160] = "unknown";
	double load[3] = { 0, 0, 0 };
	time_t t = time(NULL);
	FILE *fp;

	if ((fp = fopen("/proc/cpuinfo", "r")) != NULL) {
		while (fgets(line, sizeof(line), fp) != NULL)
			if (strncmp(line, "model name", 10) == 0) {
				char *c = strchr(line, ':');

				if (c != NULL) {
					c += strspn(c, ": \t");
					c[strcspn(c, "\n")] = '\0';
					snprintf(model, sizeof(model), "%s", c);
				}
				break;
			}
		fclose(fp);
	}
	uname(&u);
	getloadavg(load, 3);
	strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
	snprintf(machine_line, sizeof(machine_line),
	    "machine: %ld CPUs, %s; %s %s; %s; load %.2f %.2f %.2f%s",
	    sysconf(_SC_NPROCESSORS_ONLN), model, u.sysname, u.release, line,
	    load[0], load[1], load[2], opts.quick ? "; quick mode" : "");
	note("%s", machine_line);
}

/*
 * The event socket's queue is net.unix.max_dgram_qlen datagrams, 10 by
 * default; mailpushd asks for 512 (mailpushd(8)) and warns without it.
 * With 10, a sender stalls every 10 events and the daemon wakes for a few
 * at a time, so its CPU per event measures the ping-pong as much as the
 * daemon.  As root the benchmarks run as production should, with 512, and
 * put the old value back at exit; otherwise they say which they ran with.
 */
#define QLEN_PATH	"/proc/sys/net/unix/max_dgram_qlen"
#define QLEN_WANT	512
static long	qlen_old = -1;

static long
qlen_read(void)
{
	FILE *fp = fopen(QLEN_PATH, "r");
	long v = -1;

	if (fp != NULL) {
		if (fscanf(fp, "%ld", &v) != 1)
			v = -1;
		fclose(fp);
	}
	return v;
}

static int
qlen_write(long v)
{
	FILE *fp = fopen(QLEN_PATH, "w");
	int rc;

	if (fp == NULL)
		return -1;
	rc = fprintf(fp, "%ld\n", v) < 0;
	return fclose(fp) != 0 || rc ? -1 : 0;
}

static void
qlen_restore(void)
{
	if (qlen_old != -1 && qlen_write(qlen_old) != 0)
		note("could not set %s back to %ld", QLEN_PATH, qlen_old);
}

static void
qlen_setup(void)
{
	long v = qlen_read();

	if (v == -1 || v >= QLEN_WANT)
		return;
	if (geteuid() == 0 && qlen_write(QLEN_WANT) == 0) {
		qlen_old = v;
		atexit(qlen_restore);
		note("net.unix.max_dgram_qlen %ld -> %d for the run (as "
		    "mailpushd(8) asks), back to %ld at exit", v, QLEN_WANT, v);
	} else
		note("net.unix.max_dgram_qlen is %ld, not %d as mailpushd(8) "
		    "asks (root sets it): the event socket queues %ld events",
		    v, QLEN_WANT, v);
}

/* Say how the daemons' malloc gets its pages (bench_util.c, bd_start). */
static void
thp_note(void)
{
	FILE *fp = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	char mode[128] = "unknown";

	if (fp != NULL) {
		if (fgets(mode, sizeof(mode), fp) == NULL)
			snprintf(mode, sizeof(mode), "unreadable");
		mode[strcspn(mode, "\n")] = '\0';
		fclose(fp);
	}
	if (getenv("MPBENCH_NO_THP") != NULL)
		note("daemons run without GLIBC_TUNABLES (MPBENCH_NO_THP); "
		    "transparent_hugepage: %s", mode);
	else
		note("daemons run as the systemd unit runs them, with "
		    "GLIBC_TUNABLES=glibc.malloc.hugetlb=1; transparent_hugepage: "
		    "%s", mode);
}

int
main(int argc, char *argv[])
{
	const char *q = getenv("BENCH_QUICK");
	uint64_t t0 = mono_ns();
	size_t i;
	int ch, broken = 0;

	opts.quick = q != NULL && *q != '\0' && strcmp(q, "0") != 0;
	while ((ch = getopt(argc, argv, "qvo:")) != -1) {
		switch (ch) {
		case 'q':
			opts.quick = 1;
			break;
		case 'v':
			opts.verbose = 1;
			break;
		case 'o':
			opts.only = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (sodium_init() < 0)
		return fail("libsodium failed to initialise") ? 1 : 1;
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	machine();
	qlen_setup();
	thp_note();
	for (i = 0; i < sizeof(benches) / sizeof(benches[0]); i++) {
		if (!wanted(benches[i].name))
			continue;
		if (benches[i].fn() != 0) {
			fail("benchmark %s could not run", benches[i].name);
			broken = 1;
		}
	}
	results_print();
	note("\n%s in %.0f s", broken ? "some benchmarks broke" : "done",
	    (double)(mono_ns() - t0) / 1e9);
	return broken;
}
