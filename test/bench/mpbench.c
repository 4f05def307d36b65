/*
 * mpbench.c: make bench.  Runs the benchmarks of issue 8 against the real
 * daemon on loopback, each with its baseline in the same run, and prints
 * a table for BENCHMARKS.md.
 *
 *	mpbench [-qv] [-o name,...]
 *
 * -q (or BENCH_QUICK=1 in the environment): short runs for CI.  -o runs
 * only the named benchmarks: push, intake, latency, memory, hook, e2e,
 * register, cluster, state.  Exit 0 whatever the figures; 1 if a benchmark could not run.
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
	{ "state", bench_state },
	{ "cluster", bench_cluster },
	{ "keepalive", bench_keepalive },
};

static void
usage(void)
{
	fprintf(stderr, "usage: mpbench [-qv] [-o push,intake,latency,hook,"
	    "e2e,memory,register,cluster,keepalive,state]\n");
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
