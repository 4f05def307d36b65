/*
 * bench.h: the benchmarks of issue 8 (make bench), their shared helpers.
 *
 * Every benchmark runs the real mailpushd (started through the test
 * harness in a temporary directory, loopback only) and a baseline in the
 * same run, and reports its figure, the baseline and their ratio.  A
 * benchmark never fails on a figure: only a broken setup (a daemon that
 * does not start, pushes that never arrive) makes the program exit 1.
 */
#ifndef MP_BENCH_H
#define MP_BENCH_H

#include <sys/types.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "harness.h"

#define BENCH_USER_FMT	"user%07u"	/* 11 bytes, like a local part */
#define BENCH_CTX_LEN	16		/* the default maximum context */
#define SINK_MAX	16

struct bench_opts {
	int		 quick;		/* BENCH_QUICK=1 / -q: CI-sized runs */
	int		 verbose;
	const char	*only;		/* comma-separated benchmark names */
};

extern struct bench_opts opts;

/* One line of the final table. */
struct result {
	char		name[48];
	char		figure[200];	/* as long as any benchmark's fig */
	char		baseline[200];
	char		ratio[64];
	char		target[48];
	int		met;		/* 1 met, 0 missed, -1 not judged */
};

/* bench_waker.c: a thread on each CPU sleeping 1 ms at a time, how late
 * they woke up */
#define WAKER_CPUS	8
struct waker;
struct waker_cpu {
	struct waker	*w;
	pthread_t	 th;
	long		 late;
	uint64_t	 max_ns;
};
struct waker {
	atomic_int	 stop;
	long		 late;		/* wake-ups over 5 ms late, all */
	uint64_t	 max_ns;	/* the latest of any */
	unsigned	 n;
	struct waker_cpu c[WAKER_CPUS];
};
int		 waker_start(struct waker *);
double		 waker_stop(struct waker *);	/* the latest, ms */

/* met: 1 yes, 0 no, -1 reported only, RESULT_FLOOR missed at the floor */
#define RESULT_FLOOR	2
void		 result_add(const char *name, const char *figure,
		    const char *baseline, const char *ratio, const char *target,
		    int met);
void		 results_print(void);
/* "machine: CPUs, processor model, kernel, time, load"; printed by
 * main() at the start and by results_print() with the table */
extern char	 machine_line[512];

/* bench_tail.c: what made a latency run's slowest push slow */
int		 tail_ctxt(pid_t, long *vol, long *invol);
void		 tail_explain(unsigned run, const uint64_t *t_send,
		    const uint64_t *t_recv, unsigned from, unsigned n,
		    long invol, const char *others);
/* the CPU time other tasks on the machine took during a run */
struct tail_tasks;
struct tail_tasks *tail_tasks_begin(pid_t skip1, pid_t skip2);
void		 tail_tasks_end(struct tail_tasks *, char *out, size_t len);

void		 note(const char *, ...) __attribute__((format(printf, 1, 2)));
void		 vnote(const char *, ...) __attribute__((format(printf, 1, 2)));
int		 fail(const char *, ...) __attribute__((format(printf, 1, 2)));

/* Clocks, in nanoseconds. */
uint64_t	 mono_ns(void);
uint64_t	 real_ns(void);
uint64_t	 cpu_ns(pid_t);		/* CPU time a process has used */
uint64_t	 thread_cpu_ns(void);	/* ... the calling thread */
uint64_t	 clock_ns(clockid_t);	/* any clock, in ns; 0 on error */
long long	 loop_faults(pid_t);	/* page faults of its main thread */
long long	 task_stat(pid_t, pid_t tid, int field);

/* Statistics over a copy of v (v itself is not reordered). */
double		 stat_pct(const double *v, size_t n, double pct);
double		 stat_median(const double *v, size_t n);
double		 stat_mean(const double *v, size_t n);

/* The daemon under test. */
int		 bd_create(struct mpd_proc *, const char *extra);
int		 bd_start(struct mpd_proc *, int wait_ms);
void		 bd_kill(struct mpd_proc *);
void		 bd_destroy(struct mpd_proc *);
long long	 bd_stat(struct mpd_proc *, const char *name);
/* The configuration every benchmark daemon gets (more may follow). */
extern const char bench_conf[];
extern const char bench_conf_coalesce[];
extern const char bench_conf_nosync[];

/*
 * Registrations are loaded through the daemon's own state file: the
 * format is learnt from a state file the daemon wrote for one real
 * registration, so the benchmark follows the format wherever it goes.
 */
int		 state_template(void);
/*
 * users x per_user registrations for users first..first+users-1; reg j
 * of user i goes to 127.0.0.1:ports[(i * per_user + j) % nports]; context
 * (16 bytes) starts with i (big-endian) and j.
 */
int		 state_write(const struct mpd_proc *, unsigned first,
		    unsigned users, unsigned per_user, const uint16_t *ports,
		    unsigned nports);
/* The device of registration j of user i in a state_write file. */
void		 bench_device(unsigned i, unsigned j, uint8_t dev[16]);
/* The push key of every registration of a user, given its token. */
void		 bench_push_key(const uint8_t *token, uint8_t key[32]);
/*
 * The user index a push for a state_write registration carries, if it
 * opens under key (pushes are sealed for one device: the receiver must
 * know whose it may be), or -1.
 */
long		 push_user(const uint8_t *buf, size_t len, const uint8_t *key);

/* Receiving UDP sockets on 127.0.0.1 with a draining thread. */
struct sink {
	int			 n;
	int			 fd[SINK_MAX];
	uint16_t		 port[SINK_MAX];
	pthread_t		 thr;
	atomic_int		 stop;
	atomic_ullong		 got[SINK_MAX];
	atomic_ullong		 last_ns[SINK_MAX];	/* mono, last arrival */
	atomic_ullong		 total;
	atomic_ullong		 total_last_ns;
};

int		 sink_open(struct sink *, int n);
void		 sink_close(struct sink *);
/* Wait until total >= want, or idle_ms without any arrival, or max_ms. */
uint64_t	 sink_wait(struct sink *, uint64_t want, int idle_ms,
		    int max_ms);
int		 udp_socket(uint16_t *port, int rcvbuf);

/*
 * The protocol's sealing of pushes, as the sealing blaster and the push
 * floor do it (bench_floor.c): a server key whose HMAC state is made
 * once, a nonce prefix and counter; per user the token, push key and
 * subkey (sealer_user), per push the AEAD (sealer_seal).
 */
struct sealer {
	crypto_auth_hmacsha256_state	 server;	/* keyed, once */
	uint8_t				 prefix[16];
	uint64_t			 counter;
	unsigned			 user;		/* the blaster's next */
};
void		 sealer_init(struct sealer *);
void		 sealer_user(const struct sealer *, const char *name,
		    size_t len, uint8_t subkey[32]);
/* A push of `count' messages, context BENCH_CTX_LEN: PUSH_LEN bytes. */
void		 sealer_seal(struct sealer *, const uint8_t subkey[32],
		    unsigned count, uint8_t *out);

/*
 * The push floor (bench_floor.c): a thread that reads events with their
 * credentials, seals `per' pushes each and sends them to the sinks, and
 * does nothing else.  Events go to `path'.
 */
struct floor {
	int				 in, out;
	const struct sink		*sink;
	unsigned			 per;
	pthread_t			 thr;
	int				 running;
	atomic_uint			 bad;	/* undecodable events */
	atomic_int			 tid;	/* of the thread, once it runs */
	struct sealer			 z;
	char				 path[108];
};
int		 floor_open(struct floor *, const struct sink *, unsigned per,
		    const char *path);
uint64_t	 floor_cpu_ns(const struct floor *);
void		 floor_close(struct floor *);
/* a UNIX datagram socket bound at path (bench_push.c) */
int		 unix_dgram_bound(const char *path, int rcvbuf);

/* Pre-encoded events. */
struct evset {
	size_t		 n;
	uint8_t		*buf;		/* n slots of EVSLOT bytes */
	uint8_t		*len;
};
#define EVSLOT		64

int		 evset_make(struct evset *, size_t n, const unsigned *users);
void		 evset_free(struct evset *);
int		 event_connect(const char *path);
/* Send events [from, to) with blocking sends; returns how many went. */
size_t		 evset_send(int fd, const struct evset *, size_t from,
		    size_t to);

/* Spawn argv (posix_spawn, stdin/stdout optional) and wait; -1 on error. */
pid_t		 spawn(char *const argv[], int in_fd, int out_fd);
int		 reap(pid_t);

/* Shared by bench_push.c, bench_memory.c and bench_state.c. */
unsigned	*seq_users(unsigned first, size_t n);
int		 check_regs(struct mpd_proc *, long long want);
/*
 * Daemon latency: events at a fixed rate, each for another user whose one
 * registration points at our socket; latency from just before send(2) to
 * the kernel's receive time stamp of the push (both CLOCK_REALTIME).
 */
struct lat {
	int		 fd;
	uint64_t	*t_recv;	/* by user index, 0: not yet */
	uint8_t		(*token)[MP_TOKEN_LEN];	/* by user index */
	unsigned	 first, n;
	unsigned	 next;		/* lowest index not yet heard from */
	size_t		 got, bad;
	/* the relay's runs: datagrams are the events themselves */
	const struct evset *raw;
	/* what arrived during the run, opened by lat_collect */
	struct {
		uint64_t	 ts;
		size_t		 len;
		uint8_t		 buf[128];
	}		*pend;
	size_t		 npend, cap;
};
int		 lat_socket(struct lat *, uint16_t *port);
void		 lat_drain(struct lat *);
double		 paced_run(int evfd, const struct evset *, size_t from,
		    size_t to, unsigned rate, uint64_t *t_send, struct lat *,
		    int drain_ms);
unsigned	 lat_collect(struct lat *, const uint64_t *t_send,
		    unsigned from, unsigned n, double *lat);

/* The benchmarks. */
int		 bench_push(void);
int		 bench_intake(void);
int		 bench_latency(void);
int		 bench_memory_scaling(void);
int		 bench_hook(void);
int		 bench_e2e(void);
int		 bench_register(void);
int		 bench_growth(void);	/* bench_reg.c: tables doubling */
int		 bench_pages(void);	/* bench_pages.c: first touches */
int		 bench_state(void);
int		 bench_cluster(void);
int		 bench_keepalive(void);	/* bench_keepalive.c: protocol v2 */	/* bench_cluster.c: [cluster] */

#endif
