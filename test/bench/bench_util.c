/*
 * bench_util.c: what the benchmarks share: clocks and statistics, the
 * daemon under test, registrations loaded through the state file, sink
 * sockets with a draining thread, pre-encoded events, spawning.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "bench.h"
#include "journal.h"
#include "event.h"
#include "proto.h"

extern char **environ;

struct bench_opts opts;

/* Results */

#define RESULTS_MAX	64
static struct result results[RESULTS_MAX];
static size_t n_results;

void
result_add(const char *name, const char *figure, const char *baseline,
    const char *ratio, const char *target, int met)
{
	struct result *r;

	printf("  => %-30s %s | baseline %s | %s | target %s: %s\n", name,
	    figure, baseline, ratio, target,
	    met == 1 ? "MET" : met == 0 ? "MISSED" :
	    met == RESULT_FLOOR ? "MISSED, at the floor measured" : "-");
	fflush(stdout);
	if (n_results == RESULTS_MAX)
		return;
	r = &results[n_results++];
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->figure, sizeof(r->figure), "%s", figure);
	snprintf(r->baseline, sizeof(r->baseline), "%s", baseline);
	snprintf(r->ratio, sizeof(r->ratio), "%s", ratio);
	snprintf(r->target, sizeof(r->target), "%s", target);
	r->met = met;
}

char	machine_line[512] = "machine: unknown";

void
results_print(void)
{
	size_t i;

	/* the processor goes with the table: a ratio holds for one */
	printf("\n%s\n", machine_line);
	printf("\n| benchmark | figure | baseline (same run) | ratio | "
	    "target | met |\n|---|---|---|---|---|---|\n");
	for (i = 0; i < n_results; i++) {
		const struct result *r = &results[i];

		printf("| %s | %s | %s | %s | %s | %s |\n", r->name, r->figure,
		    r->baseline, r->ratio, r->target,
		    r->met == 1 ? "yes" : r->met == 0 ? "**no**" :
		    r->met == RESULT_FLOOR ? "**no**: at the floor" : "-");
	}
	fflush(stdout);
}

void
note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

void
vnote(const char *fmt, ...)
{
	va_list ap;

	if (!opts.verbose)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

int
fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "mpbench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

/* Clocks */

uint64_t
clock_ns(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) == -1)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t
mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t
real_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

/* CPU time the calling thread has used */
uint64_t
thread_cpu_ns(void)
{
	return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

uint64_t
cpu_ns(pid_t pid)
{
	clockid_t id;

	if (clock_getcpuclockid(pid, &id) != 0)
		return 0;
	return clock_ns(id);
}

/*
 * Field `field' (1-based, proc(5)) of /proc/PID/task/TID/stat: minor
 * faults (10), user and system time in clock ticks (14, 15).  -1 if
 * unreadable.
 */
long long
task_stat(pid_t pid, pid_t tid, int field)
{
	char path[64], buf[1024], *p;
	long long v = -1;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/stat", (long)pid,
	    (long)tid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fgets(buf, sizeof(buf), f) != NULL &&
	    (p = strrchr(buf, ')')) != NULL) {
		/* after the comm: field 3 (state) onwards */
		for (n = 3, p += 2; *p != '\0' && n < field; p++)
			if (*p == ' ')
				n++;
		v = strtoll(p, NULL, 10);
	}
	fclose(f);
	return v;
}

/* Page faults (minor) taken by the main thread of process pid, the
 * daemon's loop. */
long long
loop_faults(pid_t pid)
{
	return task_stat(pid, pid, 10);
}

/* Statistics */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double
stat_pct(const double *v, size_t n, double pct)
{
	double *c, r;
	size_t i;

	if (n == 0)
		return 0;
	if ((c = malloc(n * sizeof(*c))) == NULL)
		abort();
	memcpy(c, v, n * sizeof(*c));
	qsort(c, n, sizeof(*c), cmp_double);
	/* nearest rank */
	i = (size_t)(pct / 100.0 * (double)n + 0.999999);
	if (i > 0)
		i--;
	if (i >= n)
		i = n - 1;
	r = c[i];
	free(c);
	return r;
}

double
stat_median(const double *v, size_t n)
{
	double *c, r;

	if (n == 0)
		return 0;
	if ((c = malloc(n * sizeof(*c))) == NULL)
		abort();
	memcpy(c, v, n * sizeof(*c));
	qsort(c, n, sizeof(*c), cmp_double);
	r = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
	free(c);
	return r;
}

double
stat_mean(const double *v, size_t n)
{
	double s = 0;
	size_t i;

	for (i = 0; i < n; i++)
		s += v[i];
	return n ? s / (double)n : 0;
}

/* The daemon */

/*
 * Long lifetimes and retry intervals keep timers out of the measured
 * windows; no coalescing delay; big socket buffers; no table limits; the
 * state file is written only at exit (and the benchmark kills the daemon).
 */
#define BENCH_CONF							\
    "[events]\n"							\
    "buffer_size = 8M\n"						\
    "[mailpushd]\n"							\
    "state_save_interval = 1d\n"					\
    "journal_size_limit = 1024G\n"					\
    "udp_buffer_size = 16M\n"						\
    "[limits]\n"							\
    "max_registrations = 4000000\n"					\
    "max_registrations_per_address = 0\n"				\
    "registration_lifetime = 2h\n"					\
    "push_retry_interval = 1h\n"
const char bench_conf[] = BENCH_CONF "min_push_interval = 0\n";
/* REGISTERED without waiting for the journal's fdatasync */
const char bench_conf_nosync[] = BENCH_CONF "min_push_interval = 0\n"
    "[mailpushd]\nstate_sync = no\n";
/* events after a push are coalesced (counted, pushed an hour later) */
const char bench_conf_coalesce[] = BENCH_CONF "min_push_interval = 1h\n";

/* The end of the daemon's log, for a start that failed. */
static void
log_tail(const struct mpd_proc *p)
{
	char line[512];
	long pos;
	FILE *fp;

	if ((fp = fopen(p->log, "r")) == NULL)
		return;
	fseek(fp, 0, SEEK_END);
	pos = ftell(fp);
	fseek(fp, pos > 2048 ? pos - 2048 : 0, SEEK_SET);
	while (fgets(line, sizeof(line), fp) != NULL)
		fprintf(stderr, "  | %s", line);
	fclose(fp);
}

/*
 * The harness makes the directory, key and configuration and starts the
 * daemon with -v; it is stopped at once and started again without -v by
 * bd_start (debug logging of every event would be measured otherwise).
 */
int
bd_create(struct mpd_proc *p, const char *extra)
{
	if (mpd_setup(p, extra) != 0) {
		fail("mailpushd did not start (log %s)", p->log);
		log_tail(p);
		return -1;
	}
	if (mpd_stop(p) != 0) {
		fail("mailpushd did not stop cleanly (log %s)", p->log);
		return -1;
	}
	return 0;
}

int
bd_start(struct mpd_proc *p, int wait_ms)
{
	int fd;

	if ((p->pid = fork()) == -1)
		return fail("fork: %s", strerror(errno));
	if (p->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if ((fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0644))
		    == -1)
			_exit(127);
		dup2(fd, 2);
		dup2(fd, 1);
		close(fd);
		if ((fd = open("/dev/null", O_RDONLY)) != -1) {
			dup2(fd, 0);
			close(fd);
		}
		/* as the shipped systemd unit runs it (mailpushd(8), "Memory:
		 * huge pages"); MPBENCH_NO_THP=1 runs it without */
		if (getenv("MPBENCH_NO_THP") == NULL)
			setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1", 1);
		/* MPBENCH_DAEMON: another build of mailpushd, for A/B runs */
		execl(getenv("MPBENCH_DAEMON") != NULL ?
		    getenv("MPBENCH_DAEMON") : BUILDDIR "/mailpushd",
		    "mailpushd", "-d", "-c", p->conf, (char *)NULL);
		_exit(127);
	}
	if (mpd_wait_ready(p, wait_ms) == 0)
		return 0;
	if (p->pid == -1) {
		fail("mailpushd exited at start (log %s)", p->log);
		log_tail(p);
		return -1;
	}
	bd_kill(p);
	fail("mailpushd did not answer within %d ms (log %s)", wait_ms, p->log);
	log_tail(p);
	return -1;
}

/* The benchmarks kill the daemon: saving a big table is not measured. */
void
bd_kill(struct mpd_proc *p)
{
	int status;

	if (p->pid <= 0)
		return;
	if (getenv("MPBENCH_TERM") != NULL) {
		/* a profiler around the daemon writes its data at exit */
		uint64_t until = mono_ns() + 60000000000ULL;

		kill(p->pid, SIGTERM);
		while (mono_ns() < until)
			if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
				p->pid = -1;
				return;
			} else
				usleep(10000);
	}
	kill(p->pid, SIGKILL);
	while (waitpid(p->pid, &status, 0) == -1 && errno == EINTR)
		;
	p->pid = -1;
}

void
bd_destroy(struct mpd_proc *p)
{
	bd_kill(p);
	if (p->dir[0] != '\0')
		mpd_cleanup(p);
	p->dir[0] = '\0';
}

long long
bd_stat(struct mpd_proc *p, const char *name)
{
	long long v;
	int i;

	/* mailpushctl may be relinked by a build while we run: retry */
	for (i = 0; i < 3; i++) {
		if ((v = mpd_stat(p, name)) != -1)
			return v;
		usleep(200000);
	}
	return -1;
}

/* State file */

/*
 * The registrations as a clean snapshot in the daemon's own format
 * (notifier/record.c, linked in), so the benchmarks follow the format
 * wherever it goes.
 */
int
state_template(void)
{
	return 0;
}

static int
flush_buf(FILE *fp, struct jbuf *b)
{
	if (fwrite(b->p, 1, b->len, fp) != b->len)
		return -1;
	b->len = 0;
	return 0;
}

int
state_write(const struct mpd_proc *p, unsigned first, unsigned users,
    unsigned per_user, const uint16_t *ports, unsigned nports)
{
	static struct rec_fields g;
	struct rec_hdr h;
	struct jbuf b = { NULL, 0, 0, 0 };
	uint32_t now = (uint32_t)time(NULL);
	unsigned i, j;
	uint64_t k = 0;
	FILE *fp;

	if ((fp = fopen(p->state, "w")) == NULL)
		return fail("%s: %s", p->state, strerror(errno));
	memset(&h, 0, sizeof(h));
	h.version = REC_VERSION;
	h.kind = REC_KIND_SNAPSHOT;
	h.gen = 1;
	h.clean = 1;
	h.epoch = 1;
	h.time = now;
	record_hdr(&b, &h);
	memset(&g, 0, sizeof(g));
	g.type = REC_REG;
	g.key_id = PROTO_KEY_ID_DEFAULT;
	g.addr.sin.sin_family = AF_INET;
	g.addr.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	snprintf(g.listener, sizeof(g.listener), "127.0.0.1:%d", p->port);
	g.created = now;
	g.expires = now + 86400;
	g.ctx_len = BENCH_CTX_LEN;
	memset(g.ctx, 0xa5, BENCH_CTX_LEN);
	for (i = first; i < first + users; i++) {
		snprintf(g.user, sizeof(g.user), BENCH_USER_FMT, i);
		g.ctx[0] = (uint8_t)(i >> 24);
		g.ctx[1] = (uint8_t)(i >> 16);
		g.ctx[2] = (uint8_t)(i >> 8);
		g.ctx[3] = (uint8_t)i;
		for (j = 0; j < per_user; j++, k++) {
			/* distinct, nonzero, spread like random ids */
			g.id = (uint32_t)((k + 1) * 2654435761u);
			g.addr.sin.sin_port = htons(ports[((uint64_t)(i -
			    first) * per_user + j) % nports]);
			g.ctx[4] = (uint8_t)j;
			bench_device(i, j, g.device);
			record_fields(&b, &g);
			if (b.len > (1 << 20) && flush_buf(fp, &b) != 0)
				break;
		}
	}
	record_end(&b, k);
	if (flush_buf(fp, &b) != 0 || fclose(fp) != 0) {
		jbuf_free(&b);
		return fail("%s: %s", p->state, strerror(errno));
	}
	jbuf_free(&b);
	return 0;
}

void
bench_device(unsigned i, unsigned j, uint8_t dev[16])
{
	memset(dev, 0xbe, 16);
	dev[0] = (uint8_t)(i >> 24);
	dev[1] = (uint8_t)(i >> 16);
	dev[2] = (uint8_t)(i >> 8);
	dev[3] = (uint8_t)i;
	dev[4] = (uint8_t)j;
}

void
bench_push_key(const uint8_t *token, uint8_t key[32])
{
	proto_push_key(token, key);
}

long
push_user(const uint8_t *buf, size_t len, const uint8_t *key)
{
	static struct mp_push ps;
	const char *why;

	if (proto_push_open(buf, len, key, &ps, &why) != 0 ||
	    ps.ctx_len != BENCH_CTX_LEN)
		return -1;
	return (long)((uint32_t)ps.ctx[0] << 24 | (uint32_t)ps.ctx[1] << 16 |
	    (uint32_t)ps.ctx[2] << 8 | ps.ctx[3]);
}

/* Sinks */

int
udp_socket(uint16_t *port, int rcvbuf)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd;

	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
	    sizeof(rcvbuf)) == -1)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
		close(fd);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

#define SINK_BATCH	64

static void *
sink_main(void *arg)
{
	struct sink *s = arg;
	struct epoll_event ev[SINK_MAX];
	static __thread uint8_t buf[SINK_BATCH][2048];
	struct mmsghdr msgs[SINK_BATCH];
	struct iovec iov[SINK_BATCH];
	int ep, i, n, k, rc;

	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		return NULL;
	for (i = 0; i < s->n; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.u32 =
		    (uint32_t)i };

		epoll_ctl(ep, EPOLL_CTL_ADD, s->fd[i], &e);
	}
	while (!atomic_load(&s->stop)) {
		n = epoll_wait(ep, ev, SINK_MAX, 10);
		for (k = 0; k < n; k++) {
			i = (int)ev[k].data.u32;
			for (;;) {
				for (rc = 0; rc < SINK_BATCH; rc++) {
					iov[rc].iov_base = buf[rc];
					iov[rc].iov_len = sizeof(buf[rc]);
					memset(&msgs[rc], 0, sizeof(msgs[rc]));
					msgs[rc].msg_hdr.msg_iov = &iov[rc];
					msgs[rc].msg_hdr.msg_iovlen = 1;
				}
				rc = recvmmsg(s->fd[i], msgs, SINK_BATCH,
				    MSG_DONTWAIT, NULL);
				if (rc <= 0)
					break;
				atomic_fetch_add(&s->got[i], (unsigned)rc);
				atomic_store(&s->last_ns[i], mono_ns());
				atomic_store(&s->total_last_ns, mono_ns());
				atomic_fetch_add(&s->total, (unsigned)rc);
				if (rc < SINK_BATCH)
					break;
			}
		}
	}
	close(ep);
	return NULL;
}

int
sink_open(struct sink *s, int n)
{
	int i;

	memset(s, 0, sizeof(*s));
	if (n > SINK_MAX)
		return fail("too many sinks");
	for (i = 0; i < n; i++) {
		if ((s->fd[i] = udp_socket(&s->port[i], 32 << 20)) == -1)
			return fail("sink socket: %s", strerror(errno));
		s->n++;
	}
	if (pthread_create(&s->thr, NULL, sink_main, s) != 0)
		return fail("pthread_create failed");
	return 0;
}

void
sink_close(struct sink *s)
{
	int i;

	if (s->n == 0)
		return;
	atomic_store(&s->stop, 1);
	pthread_join(s->thr, NULL);
	for (i = 0; i < s->n; i++)
		close(s->fd[i]);
	s->n = 0;
}

uint64_t
sink_wait(struct sink *s, uint64_t want, int idle_ms, int max_ms)
{
	uint64_t start = mono_ns(), now, last;

	for (;;) {
		if (atomic_load(&s->total) >= want)
			break;
		now = mono_ns();
		last = atomic_load(&s->total_last_ns);
		if (last < start)
			last = start;
		if (now - last > (uint64_t)idle_ms * 1000000 ||
		    now - start > (uint64_t)max_ms * 1000000)
			break;
		usleep(2000);
	}
	return atomic_load(&s->total);
}

/* Events */

int
evset_make(struct evset *e, size_t n, const unsigned *users)
{
	struct mp_event ev;
	char user[32];
	const char *why;
	size_t i;
	int len;

	e->n = n;
	e->buf = malloc(n * EVSLOT);
	e->len = malloc(n);
	if (e->buf == NULL || e->len == NULL)
		return fail("out of memory");
	for (i = 0; i < n; i++) {
		snprintf(user, sizeof(user), BENCH_USER_FMT, users[i]);
		if (event_set(&ev, user, "INBOX", 1, 0, &why) != 0 ||
		    (len = event_encode(&ev, e->buf + i * EVSLOT, EVSLOT,
		    &why)) < 0)
			return fail("event: %s", why);
		e->len[i] = (uint8_t)len;
	}
	return 0;
}

void
evset_free(struct evset *e)
{
	free(e->buf);
	free(e->len);
	memset(e, 0, sizeof(*e));
}

int
event_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

size_t
evset_send(int fd, const struct evset *e, size_t from, size_t to)
{
	size_t i;

	for (i = from; i < to; i++) {
		if (send(fd, e->buf + i * EVSLOT, e->len[i], 0) == -1) {
			if (errno == EINTR) {
				i--;
				continue;
			}
			fail("event send: %s", strerror(errno));
			break;
		}
	}
	return i - from;
}

/* Processes */

pid_t
spawn(char *const argv[], int in_fd, int out_fd)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int rc;

	posix_spawn_file_actions_init(&fa);
	if (in_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
	if (out_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		fail("spawn %s: %s", argv[0], strerror(rc));
		return -1;
	}
	return pid;
}

int
reap(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 +
	    WTERMSIG(status);
}
