/*
 * check_journal.c: crash safety of the real mailpushd.
 *
 * - "kill9": at least 200 kill -9 at random moments while a client
 *   streams registrations, moves and unregistrations; after every restart
 *   each answered registration is there with its latest answered address,
 *   each answered unregistration is gone, and no id appears twice.
 * - "push": kill -9 right after pushes; mailpush-listen reports the next
 *   push (its sequence number is ahead of everything it saw).
 * - "disk": a journal on a failing disk (ENOSPC, then EIO) through the
 *   LD_PRELOAD library mpfault.so: the daemon keeps answering, says
 *   "state is not being saved" in mailpushctl status and the log, counts
 *   the errors, and saves again by itself once the disk is back.
 * - "order": mpfault.so records every write, sync, rename and datagram:
 *   every REGISTERED answering a new registration or a move, and every
 *   control reply to a drop, left after the fdatasync that covered its
 *   journal record.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <sodium.h>

#include "ops.h"
#include "statefile.h"

#define PRELOAD		BUILDDIR "/test/mpfault.so"
#define KILLS		200	/* 20 under valgrind (make valgrind) */
#define STORM_BUDGET_MS	300000	/* the storm must end by then */
#define CALL_MS		150	/* a dead daemon: no answer by then
				   (2 s under valgrind) */

static struct mpd_proc P;
static char out[4 << 20], err[4096];

static void
teardown(void)
{
	unsetenv("LD_PRELOAD");
	unsetenv("MPF_TRACE");
	unsetenv("MPF_FAIL");
	ck_assert_msg(mpd_finish(&P) == 0, "mailpushd in %s did not end "
	    "cleanly", P.dir);
}

static void
prepare(const char *mainextra, const char *extra)
{
	char main_[512];

	ck_assert_int_eq(ops_prepare(&P, NULL, NULL), 0);
	snprintf(main_, sizeof(main_), "user =\nlisten = 127.0.0.1:%d "
	    "[::1]:%d\n%s", P.port, P.port, mainextra ? mainextra : "");
	ck_assert_int_eq(ops_write_config(&P, main_, extra), 0);
}

static int
preload_usable(void)
{
	/* AddressSanitizer wants to be the first library loaded;
	 * valgrind's launcher would take the library for itself */
	if (strstr(BUILDDIR, "san") != NULL ||
	    getenv("MP_VALGRIND") != NULL) {
		fprintf(stderr, "journal: LD_PRELOAD tests skipped under a "
		    "sanitizer or valgrind\n");
		return 0;
	}
	ck_assert_msg(access(PRELOAD, R_OK) == 0, "%s missing", PRELOAD);
	return 1;
}

static uint16_t
client_port(const struct tclient *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	ck_assert_int_eq(getsockname(c->fd, (struct sockaddr *)&ss, &len), 0);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void
kill9(void)
{
	int status;

	ck_assert_int_eq(kill(P.pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(P.pid, &status, 0), P.pid);
	P.pid = -1;
}

/* tc_call with a short wait: 0 answered, -1 not (the daemon is dead). */
static int
call(struct tclient *c, struct mp_request *rq, struct mp_reply *rp)
{
	uint8_t buf[PROTO_MAX_DATAGRAM];
	const char *why;
	int n, round;

	for (round = 0; round < 3; round++) {
		rq->timestamp = tc_ts(c);
		if ((n = tc_encode(c, rq, buf, sizeof(buf))) < 0 ||
		    tc_send(c, buf, (size_t)n) != 0)
			return -1;
		for (;;) {
			if ((n = tc_recv(c, buf, sizeof(buf),
			    getenv("MP_VALGRIND") != NULL ? 2000 : CALL_MS)) < 0)
				return -1;
			if (proto_reply_decode(buf, (size_t)n, rp, &why) == 0 &&
			    rp->type != PROTO_KICK &&
			    rp->type != PROTO_PROBE_ECHO &&
			    rp->timestamp == rq->timestamp)
				break;
		}
		/* another client of this device sent a request within the
		 * same millisecond: go on above it, as the library does */
		if (rp->type == PROTO_REFUSED && rp->reason == REASON_REPLAY) {
			if (rp->value > c->last_ts)
				c->last_ts = rp->value;
			continue;
		}
		if (rp->type != PROTO_COOKIE)
			return 0;
		memcpy(c->cookie, rp->cookie, sizeof(c->cookie));
	}
	return -1;
}

/* The storm */

enum { R_ALIVE, R_GONE };

struct sreg {
	uint8_t		device[PROTO_DEVICE_LEN];
	uint32_t	id;
	uint16_t	port, pending;	/* answered; asked, not answered */
	uint8_t		state, pending_gone;
	char		user[16];
};

static struct sreg	*regs;
static size_t		 n_regs, cap_regs;
static char		 unknown[4096][16];	/* REGISTER not answered */
static size_t		 n_unknown;

static struct sreg *
find_reg(uint32_t id)
{
	size_t i;

	for (i = 0; i < n_regs; i++)
		if (regs[i].id == id)
			return &regs[i];
	return NULL;
}

static int
is_unknown(const char *user)
{
	size_t i;

	for (i = 0; i < n_unknown; i++)
		if (strcmp(unknown[i], user) == 0)
			return 1;
	return 0;
}

/*
 * Compare `mailpushctl -j list' with what was answered.  Every answered
 * registration alive is listed once at its answered address (or at the
 * address of a move it was asked for and did not answer); every answered
 * removal is absent; anything else listed belongs to a REGISTER that was
 * not answered.
 */
static void
verify(int round)
{
	char *p = out, user[64], id_s[9], addr[64];
	size_t i, seen = 0, alive = 0;
	uint8_t *found;

	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "-j", "list", NULL), 0);
	found = calloc(n_regs + 1, 1);
	ck_assert_ptr_nonnull(found);
	while ((p = strstr(p, "{\"user\":\"")) != NULL) {
		struct sreg *r;
		unsigned port;
		uint32_t id;

		ck_assert_int_eq(sscanf(p, "{\"user\":\"%63[^\"]\",\"id\":\""
		    "%8[0-9a-f]\",\"address\":\"%63[^\"]\"", user, id_s, addr),
		    3);
		p++;
		id = (uint32_t)strtoul(id_s, NULL, 16);
		ck_assert_int_eq(sscanf(addr, "127.0.0.1:%u", &port), 1);
		if ((r = find_reg(id)) == NULL) {
			ck_assert_msg(is_unknown(user), "round %d: %s %s: a "
			    "registration nobody asked for", round, user,
			    id_s);
			continue;
		}
		ck_assert_msg(!found[r - regs], "round %d: id %s listed twice",
		    round, id_s);
		found[r - regs] = 1;
		seen++;
		ck_assert_str_eq(user, r->user);
		ck_assert_msg(r->state != R_GONE, "round %d: %s %s was "
		    "unregistered", round, user, id_s);
		ck_assert_msg(port == r->port || (r->pending != 0 &&
		    port == r->pending), "round %d: %s %s at port %u, "
		    "answered at %u", round, user, id_s, port, r->port);
		/* whatever came back is what is now */
		r->port = (uint16_t)port;
		r->state = R_ALIVE;
		r->pending = 0;
		r->pending_gone = 0;
	}
	for (i = 0; i < n_regs; i++) {
		if (regs[i].state == R_ALIVE && !regs[i].pending_gone) {
			alive++;
			ck_assert_msg(found[i], "round %d: answered "
			    "registration %08x of %s lost", round, regs[i].id,
			    regs[i].user);
		}
		if (!found[i]) {
			regs[i].state = R_GONE;
			regs[i].pending_gone = 0;
		}
		regs[i].pending = 0;
	}
	free(found);
	ck_assert_uint_ge(seen, alive);
}

/* Requests until the daemon stops answering; returns how many answered. */
static int
stream(unsigned *serial)
{
	static struct mp_request rq;
	struct tclient c;
	struct mp_reply rp;
	struct sreg *r;
	int answered = 0;

	for (;;) {
		unsigned what = randombytes_uniform(10);
		char user[16];

		if (what < 6 || n_regs == 0) {
			uint8_t dev[PROTO_DEVICE_LEN];

			snprintf(user, sizeof(user), "s%u", (*serial)++);
			ck_assert_int_eq(tc_open(&c, &P, 0, NULL, user), 0);
			randombytes_buf(dev, sizeof(dev));
			tc_set_device(&c, dev);
			tc_req(&c, &rq, PROTO_REGISTER, "k", 1);
			if (call(&c, &rq, &rp) != 0 ||
			    rp.type != PROTO_REGISTERED) {
				ck_assert_uint_lt(n_unknown, 4096);
				memcpy(unknown[n_unknown++], user, 16);
				tc_close(&c);
				return answered;
			}
			if (n_regs == cap_regs) {
				cap_regs = cap_regs ? cap_regs * 2 : 1024;
				regs = realloc(regs, cap_regs * sizeof(*regs));
				ck_assert_ptr_nonnull(regs);
			}
			r = &regs[n_regs++];
			memset(r, 0, sizeof(*r));
			memcpy(r->device, dev, sizeof(dev));
			r->id = rp.reg_id;
			r->port = client_port(&c);
			memcpy(r->user, user, 16);
			tc_close(&c);
			answered++;
			continue;
		}
		r = &regs[randombytes_uniform((uint32_t)n_regs)];
		if (r->state != R_ALIVE)
			continue;
		ck_assert_int_eq(tc_open(&c, &P, 0, NULL, r->user), 0);
		tc_set_device(&c, r->device);
		if (what < 9) {
			/* a move: REFRESH from a new port */
			tc_req(&c, &rq, PROTO_REFRESH, "k", 1);
			r->pending = client_port(&c);
			if (call(&c, &rq, &rp) != 0) {
				tc_close(&c);
				return answered;
			}
			ck_assert_msg(rp.type == PROTO_REGISTERED, "move of %08x "
			    "answered %u (reason %u)", r->id, rp.type, rp.reason);
			r->port = r->pending;
			r->pending = 0;
		} else {
			tc_req(&c, &rq, PROTO_UNREGISTER, "k", 1);
			r->pending_gone = 1;
			if (call(&c, &rq, &rp) != 0) {
				tc_close(&c);
				return answered;
			}
			ck_assert_msg(rp.type == PROTO_REGISTERED, "unregister "
			    "of %08x answered %u (reason %u)", r->id, rp.type,
			    rp.reason);
			r->state = R_GONE;
			r->pending_gone = 0;
		}
		tc_close(&c);
		answered++;
	}
}

START_TEST(kill9_storm)
{
	uint64_t t0 = now_ms();
	unsigned serial = 0;
	long answered = 0;
	int round, kills = getenv("MP_VALGRIND") != NULL ? KILLS / 10 : KILLS;

	prepare("state_save_interval = 2s\njournal_size_limit = 64k\n",
	    "[limits]\nmax_registrations_per_address = 0\n"
	    "registration_lifetime = 1h\n");
	for (round = 0; round < kills; round++) {
		pid_t killer;
		/* under valgrind the daemon answers its first request only
		 * after a second or so: kill later, so that there is a
		 * journal to replay under memcheck */
		long delay_us = getenv("MP_VALGRIND") != NULL ?
		    500000 + (long)randombytes_uniform(1500000) :
		    (long)randombytes_uniform(40000);
		int status;

		ck_assert_int_eq(mpd_start(&P), 0);
		if (round > 0)
			verify(round);
		/* kill -9 after 0 to 40 ms of requests (0.5 to 2 s under
		 * valgrind) */
		if ((killer = fork()) == 0) {
			struct timespec ts = { delay_us / 1000000,
			    (delay_us % 1000000) * 1000 };

			nanosleep(&ts, NULL);
			kill(P.pid, SIGKILL);
			_exit(0);
		}
		ck_assert_int_gt(killer, 0);
		answered += stream(&serial);
		ck_assert_int_eq(waitpid(killer, &status, 0), killer);
		ck_assert_int_eq(waitpid(P.pid, &status, 0), P.pid);
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) ==
		    SIGKILL, "round %d: mailpushd ended by itself", round);
		P.pid = -1;
		ck_assert_msg(now_ms() - t0 < STORM_BUDGET_MS, "%d rounds in "
		    "%llu ms: too slow", round, (unsigned long long)(now_ms()
		    - t0));
	}
	ck_assert_int_eq(mpd_start(&P), 0);
	verify(round);
	fprintf(stderr, "journal: %d kill -9 in %llu ms, %ld answered "
	    "requests, %zu registrations made\n", kills,
	    (unsigned long long)(now_ms() - t0), answered, n_regs);
	/* the snapshots ran too, between the kills */
	ck_assert_int_ge(mpd_log_count(&P, "no clean shutdown"), 1);
	free(regs);
	regs = NULL;
	n_regs = cap_regs = n_unknown = 0;
}
END_TEST

/* Wait until what fd prints after mark holds needle. */
static int
wait_out(int fd, char *buf, size_t len, size_t *off, size_t mark,
    const char *needle, int ms)
{
	uint64_t until = now_ms() + (uint64_t)ms;

	do {
		drain_fd(fd, buf, len, off);
		if (strstr(buf + mark, needle) != NULL)
			return 0;
		usleep(5000);
	} while (now_ms() < until);
	return -1;
}

/* kill -9 right after pushes: mailpush-listen reports the next push. */
START_TEST(push_after_kill9)
{
	static char buf[16384];
	char token[192], server[64];
	size_t off = 0, mark;
	int ofd = -1, efd = -1, round;
	pid_t pid;

	prepare(NULL, NULL);
	ck_assert_int_eq(mpd_start(&P), 0);
	snprintf(token, sizeof(token), "%s/alice.token", P.dir);
	ck_assert_int_eq(mpd_write_token(&P, "alice", token), 0);
	snprintf(server, sizeof(server), "127.0.0.1:%d", P.port);
	{
		char *argv[] = { (char *)BUILDDIR "/mailpush-listen",
		    (char *)"-t", (char *)"60", (char *)"-s", server,
		    (char *)"-u", (char *)"alice", (char *)"-K", token, NULL };

		pid = spawn_cmd(argv, &ofd, &efd);
	}
	ck_assert_int_gt(pid, 0);
	ck_assert_msg(mpd_stat_wait(&P, "registrations", 1, 5000) == 0,
	    "mailpush-listen did not register");
	ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
	ck_assert_msg(wait_out(ofd, buf, sizeof(buf), &off, 0,
	    "push user=alice seq=1 ", 5000) == 0, "%s", buf);
	for (round = 0; round < 3; round++) {
		/* a push, and the crash as soon as the client has it */
		mark = off;
		ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
		ck_assert_msg(wait_out(ofd, buf, sizeof(buf), &off, mark,
		    "push user=alice", 5000) == 0, "round %d: %s", round,
		    buf + mark);
		kill9();
		ck_assert_int_eq(mpd_start(&P), 0);
		ck_assert_int_eq(mpd_stat(&P, "registrations"), 1);
		/* the next mail is reported, not taken for a duplicate */
		mark = off;
		ck_assert_int_eq(mpd_event(&P, "alice", "INBOX", 1), 0);
		ck_assert_msg(wait_out(ofd, buf, sizeof(buf), &off, mark,
		    "push user=alice", 5000) == 0, "round %d: no push "
		    "reported after the restart: %s", round, buf + mark);
	}
	kill(pid, SIGTERM);
	wait_cmd(pid, 3000);
	close(ofd);
	close(efd);
}
END_TEST

/* A full disk, then a failing one, then a good one again. */
static void
set_fail(const char *path, const char *what)
{
	if (what == NULL)
		ck_assert_int_eq(unlink(path), 0);
	else
		ck_assert_int_eq(write_text(path, what, 0644), 0);
}

static uint32_t
reg_one(const char *user, struct tclient *c)
{
	struct mp_reply rp;

	ck_assert_int_eq(tc_open(c, &P, 0, NULL, user), 0);
	ck_assert_int_eq(tc_register(c, "d", 1, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	return rp.reg_id;
}

START_TEST(failing_disk)
{
	char fail[192];
	struct tclient a, b, c, d;
	uint64_t t0;

	if (!preload_usable())
		return;
	prepare("state_save_interval = 1h\n", NULL);
	snprintf(fail, sizeof(fail), "%s/fail", P.dir);
	setenv("LD_PRELOAD", PRELOAD, 1);
	setenv("MPF_FAIL", fail, 1);
	ck_assert_int_eq(mpd_start(&P), 0);
	unsetenv("LD_PRELOAD");
	reg_one("alice", &a);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "status", NULL), 0);
	ck_assert_msg(strstr(out, "state: saved") != NULL, "%s", out);

	/* the disk fills up: still answered, and said loudly */
	set_fail(fail, "ENOSPC");
	t0 = now_ms();
	reg_one("bob", &b);
	ck_assert_msg(now_ms() - t0 < 2000, "an answer waited %llu ms",
	    (unsigned long long)(now_ms() - t0));
	ck_assert_int_eq(mpd_log_wait(&P, "state is not being saved: write ",
	    1, 3000), 0);
	ck_assert_int_ge(mpd_log_count(&P, "No space left on device"), 1);
	/* status exits 2 (a problem) and says so twice: the state line and
	 * the health check */
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "status", NULL), 2);
	ck_assert_msg(strstr(out, "state: state is not being saved") != NULL,
	    "%s", out);
	ck_assert_msg(strstr(out, "No space left on device") != NULL, "%s",
	    out);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err), "-j",
	    "status", NULL), 2);
	ck_assert_msg(strstr(out, "\"state_saving\":false") != NULL, "%s",
	    out);
	ck_assert_int_gt(mpd_stat(&P, "state_write_errors"), 0);
	/* an I/O error instead: the same, and the retries fail too */
	set_fail(fail, "EIO");
	reg_one("carol", &c);
	ck_assert_int_eq(mpd_log_wait(&P, "Input/output error", 1, 8000), 0);
	ck_assert_int_eq(mpd_log_count(&P, "state is being saved again"), 0);

	/* the disk is back: saving again within the retry interval */
	set_fail(fail, NULL);
	ck_assert_int_eq(mpd_log_wait(&P, "state is being saved again", 1,
	    8000), 0);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "status", NULL), 0);
	ck_assert_msg(strstr(out, "state: saved") != NULL, "%s", out);
	reg_one("dave", &d);
	/* and what was answered meanwhile is on disk now */
	kill9();
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(mpd_list(&P, NULL, out, sizeof(out)), 4);
	tc_close(&a);
	tc_close(&b);
	tc_close(&c);
	tc_close(&d);
}
END_TEST

/* The order test */

struct tev {
	unsigned long long seq;
	char op[16], path[512];
	long long off, len;
	unsigned port;
};

static struct tev *
read_trace(const char *path, pid_t pid, size_t *n)
{
	static char line[2048];
	struct tev *t = NULL;
	size_t cap = 0;
	FILE *fp;

	*n = 0;
	ck_assert_ptr_nonnull(fp = fopen(path, "r"));
	while (fgets(line, sizeof(line), fp) != NULL) {
		struct tev e;
		long p;

		if (sscanf(line, "%llu %ld %15s path=%511s off=%lld len=%lld "
		    "port=%u", &e.seq, &p, e.op, e.path, &e.off, &e.len,
		    &e.port) != 7 || p != (long)pid)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 1024;
			ck_assert_ptr_nonnull(t = realloc(t, cap * sizeof(*t)));
		}
		t[(*n)++] = e;
	}
	fclose(fp);
	return t;
}

/*
 * The record at offset off of journal jpath was written, then synced,
 * before event number before.
 */
static int
synced_before(const struct tev *t, size_t n, const char *jpath, long long off,
    unsigned long long before)
{
	size_t i;
	unsigned long long written = 0;

	for (i = 0; i < n && t[i].seq < before; i++) {
		if (strcmp(t[i].path, jpath) != 0)
			continue;
		if (strcmp(t[i].op, "write") == 0 && t[i].off <= off &&
		    off < t[i].off + t[i].len)
			written = t[i].seq;
		else if (written != 0 && strcmp(t[i].op, "fdatasync") == 0)
			return 1;
	}
	return 0;
}

START_TEST(answers_follow_sync)
{
	static struct mp_request rq;
	char trace[192], jpath[512], idh[9];
	struct tclient c[24], m;
	struct mp_reply rp;
	struct tev *t;
	struct sf sf;
	struct sf_rec *r;
	uint64_t gens[8];
	uint16_t port[24], mport;
	uint32_t id[24];
	size_t n, i, k, checked = 0;
	pid_t pid;
	int j;

	if (!preload_usable())
		return;
	prepare("state_save_interval = 1h\n", NULL);
	snprintf(trace, sizeof(trace), "%s/trace", P.dir);
	setenv("LD_PRELOAD", PRELOAD, 1);
	setenv("MPF_TRACE", trace, 1);
	ck_assert_int_eq(mpd_start(&P), 0);
	unsetenv("LD_PRELOAD");
	unsetenv("MPF_TRACE");
	pid = P.pid;
	/* 24 clients: three bursts of 8 in flight at once (group commit) */
	for (j = 0; j < 24; j++) {
		char user[16];

		snprintf(user, sizeof(user), "o%d", j);
		ck_assert_int_eq(tc_open(&c[j], &P, 0, NULL, user), 0);
		port[j] = client_port(&c[j]);
		ck_assert_int_eq(tc_register(&c[j], "x", 1, &rp), 0);
	}
	/* now their cookies are good: REGISTER again, 8 at a time, each a
	 * new registration (a new context) */
	for (j = 0; j < 24; j += 8) {
		int q;

		for (q = j; q < j + 8; q++) {
			uint8_t buf[PROTO_MAX_DATAGRAM];
			int len;

			tc_req(&c[q], &rq, PROTO_REGISTER, "y", 1);
			len = tc_encode(&c[q], &rq, buf, sizeof(buf));
			ck_assert_int_gt(len, 0);
			ck_assert_int_eq(tc_send(&c[q], buf, (size_t)len), 0);
		}
		for (q = j; q < j + 8; q++) {
			uint8_t buf[PROTO_MAX_DATAGRAM];
			const char *why;
			int len = tc_recv(&c[q], buf, sizeof(buf), 3000);

			ck_assert_int_gt(len, 0);
			ck_assert_int_eq(proto_reply_decode(buf, (size_t)len,
			    &rp, &why), 0);
			ck_assert_int_eq(rp.type, PROTO_REGISTERED);
			id[q] = rp.reg_id;
		}
	}
	/* a move of the first, and a drop of the second */
	ck_assert_int_eq(tc_open(&m, &P, 0, NULL, "o0"), 0);
	mport = client_port(&m);
	tc_set_device(&m, c[0].device);	/* the device of "y" */
	tc_req(&m, &rq, PROTO_REFRESH, "y", 1);
	ck_assert_int_eq(tc_call(&m, &rq, &rp, 0), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	reg_hex(id[1], idh);
	ck_assert_int_eq(ops_ctl(&P, out, sizeof(out), err, sizeof(err),
	    "drop", "o1", idh, NULL), 0);
	ck_assert_msg(strstr(out, "dropped 1") != NULL, "%s", out);

	/* the loop's longest persistence step is reported, and is short
	 * (a few records per batch here; the bench measures it at 1M) */
	{
		long long us = mpd_stat(&P, "state_loop_max_us");

		ck_assert_msg(us >= 0 && us < 100000, "state_loop_max_us %lld",
		    us);
	}
	ck_assert_uint_eq(sf_journals(P.state, gens, 8), 1);
	snprintf(jpath, sizeof(jpath), "%s.journal.%llu", P.state,
	    (unsigned long long)gens[0]);
	{
		char real[PATH_MAX];

		ck_assert_ptr_nonnull(realpath(jpath, real));
		snprintf(jpath, sizeof(jpath), "%s", real);
	}
	ck_assert_int_eq(sf_read(jpath, &sf), 0);
	kill9();
	t = read_trace(trace, pid, &n);
	ck_assert_uint_gt(n, 0);

	/* each REGISTERED for a new registration: the first datagram to
	 * its client's port after the cookie round; its REG record synced
	 * first */
	for (j = 0; j < 24; j++) {
		unsigned long long send = 0;
		int datagrams = 0;

		for (i = 0; i < n; i++)
			if (strcmp(t[i].op, "sendto") == 0 &&
			    t[i].port == port[j] && ++datagrams == 3) {
				/* COOKIE, REGISTERED (x), REGISTERED (y) */
				send = t[i].seq;
				break;
			}
		ck_assert_msg(send != 0, "no answer to o%d in the trace", j);
		ck_assert_ptr_nonnull(r = sf_find(&sf, REC_REG, id[j]));
		/* the first REG record of this registration */
		for (k = 0; k < sf.n; k++)
			if (sf.recs[k].f.type == REC_REG &&
			    sf.recs[k].f.id == id[j]) {
				r = &sf.recs[k];
				break;
			}
		ck_assert_msg(synced_before(t, n, jpath, (long long)r->off,
		    send), "o%d: REGISTERED left before its record was "
		    "synced", j);
		checked++;
	}
	/* the move: its answer to the new port after the record with
	 * that port */
	for (k = 0; k < sf.n; k++)
		if (sf.recs[k].f.type == REC_REG && sf.recs[k].f.id == id[0] &&
		    ntohs(sf.recs[k].f.addr.sin.sin_port) == mport)
			break;
	ck_assert_uint_lt(k, sf.n);
	for (i = 0; i < n; i++)
		if (strcmp(t[i].op, "sendto") == 0 && t[i].port == mport &&
		    t[i].len == PROTO_REGISTERED_LEN)
			break;
	ck_assert_uint_lt(i, n);
	ck_assert_msg(synced_before(t, n, jpath, (long long)sf.recs[k].off,
	    t[i].seq), "the move was answered before it was synced");
	/* the drop: the control reply after the DEL record was synced */
	ck_assert_ptr_nonnull(r = sf_find(&sf, REC_DEL, id[1]));
	for (i = n; i-- > 0;)
		if (strcmp(t[i].op, "writev") == 0 &&
		    strncmp(t[i].path, "socket:", 7) == 0)
			break;
	ck_assert_msg(i < n, "no control reply in the trace");
	ck_assert_msg(synced_before(t, n, jpath, (long long)r->off, t[i].seq),
	    "the drop was answered before it was synced");
	fprintf(stderr, "journal: order checked for %zu answers in %zu "
	    "traced calls\n", checked + 2, n);
	sf_free(&sf);
	free(t);
	for (j = 0; j < 24; j++)
		tc_close(&c[j]);
	tc_close(&m);
}
END_TEST

Suite *
make_journal_suite(void)
{
	Suite *s = suite_create("journal");
	TCase *tk = tcase_create("kill9");
	TCase *tp = tcase_create("push");
	TCase *td = tcase_create("disk");
	TCase *to = tcase_create("order");

	tcase_add_checked_fixture(tk, NULL, teardown);
	tcase_set_timeout(tk, STORM_BUDGET_MS / 1000 + 60);
	tcase_add_test(tk, kill9_storm);
	suite_add_tcase(s, tk);
	tcase_add_checked_fixture(tp, NULL, teardown);
	tcase_set_timeout(tp, 60);
	tcase_add_test(tp, push_after_kill9);
	suite_add_tcase(s, tp);
	tcase_add_checked_fixture(td, NULL, teardown);
	tcase_set_timeout(td, 60);
	tcase_add_test(td, failing_disk);
	suite_add_tcase(s, td);
	tcase_add_checked_fixture(to, NULL, teardown);
	tcase_set_timeout(to, 60);
	tcase_add_test(to, answers_follow_sync);
	suite_add_tcase(s, to);
	return s;
}
