/*
 * soak.c: mailpushd under a steady mixed load for a bounded time (make
 * soak: 10 minutes; CI: SOAK_SECONDS=60).
 *
 * USERS clients register, receive events at a steady rate, acknowledge,
 * and now and then unregister and come back; the daemon gets a SIGHUP
 * every 30 s and one restart half-way (its state file carries the
 * registrations over).  Asserts: every event posted to a registered user
 * is covered by pushes exactly (sum of new messages = events), nothing is
 * retransmitted on loopback, the daemon's RSS is flat after warm-up in
 * each of its two lives, and the log holds no warning or error.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "harness.h"

#define USERS		50
#define EVENTS_PER_SEC	200

struct user {
	struct tclient	c;
	char		name[16];
	uint32_t	reg_id;
	int		registered;
	uint64_t	events;		/* posted while registered */
	uint64_t	seen;		/* new messages from pushes */
	uint32_t	last_total;
	uint32_t	last_seq;
	uint64_t	pushes;
};

static struct mpd_proc P;
static struct user U[USERS];
static int failed;

#define CHECK(cond, ...) do {						\
	int ok_ = (cond);						\
	printf("%s", ok_ ? "ok:   " : "FAIL: ");			\
	printf(__VA_ARGS__);						\
	printf("\n");							\
	if (!ok_)							\
		failed = 1;						\
} while (0)

static void
poll_users(int ms)
{
	struct pollfd pfd[USERS];
	uint8_t buf[2048];
	static struct mp_push p;
	const char *why;
	int i, n;

	for (i = 0; i < USERS; i++) {
		pfd[i].fd = U[i].c.fd;
		pfd[i].events = POLLIN;
	}
	if (poll(pfd, USERS, ms) <= 0)
		return;
	for (i = 0; i < USERS; i++) {
		while ((n = (int)recv(U[i].c.fd, buf, sizeof(buf),
		    MSG_DONTWAIT)) > 0) {
			if (proto_type(buf, (size_t)n) != PROTO_PUSH ||
			    proto_push_open(buf, (size_t)n, U[i].c.push_key,
			    &p, &why) != 0)
				continue;
			tc_ack(&U[i].c, &p);
			if (p.reg_id != U[i].reg_id || p.seq <= U[i].last_seq)
				continue;
			U[i].last_seq = p.seq;
			U[i].seen += p.total - U[i].last_total;
			U[i].last_total = p.total;
			U[i].pushes++;
		}
	}
}

static int
user_register(struct user *u)
{
	struct mp_reply rp;

	if (tc_register(&u->c, u->name, strlen(u->name), &rp) != 0 ||
	    rp.type != PROTO_REGISTERED)
		return -1;
	u->reg_id = rp.reg_id;
	u->last_seq = rp.seq;
	u->last_total = 0;
	u->registered = 1;
	return 0;
}

/* Wait until every registered user has seen all its events. */
static int
settle(int ms)
{
	uint64_t until = now_ms() + (uint64_t)ms;
	int i, pending;

	do {
		poll_users(10);
		pending = 0;
		for (i = 0; i < USERS; i++)
			if (U[i].seen != U[i].events)
				pending++;
	} while (pending && now_ms() < until);
	return pending;
}

int
main(int argc, char *argv[])
{
	unsigned seconds = argc > 1 ? (unsigned)atoi(argv[1]) : 600;
	uint64_t start, next_event, next_hup, end, warm;
	long rss_warm = 0, rss_end = 0, rss_warm2 = 0, rss_end2 = 0;
	int restarted = 0, i, hups = 0, cycles = 0;
	uint64_t total_events = 0, total_seen = 0, total_pushes = 0;
	struct mp_reply rp;
	static struct mp_request rq;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (mpd_setup(&P, "[limits]\nmin_push_interval = 0\n"
	    "push_retry_interval = 1s\n") != 0) {
		printf("FAIL: cannot start mailpushd\n");
		return 1;
	}
	for (i = 0; i < USERS; i++) {
		snprintf(U[i].name, sizeof(U[i].name), "soak%02d", i);
		if (tc_open(&U[i].c, &P, i % 2, NULL, U[i].name) != 0 ||
		    user_register(&U[i]) != 0) {
			printf("FAIL: user %d cannot register\n", i);
			mpd_cleanup(&P);
			return 1;
		}
	}
	start = now_ms();
	end = start + seconds * 1000ULL;
	warm = start + seconds * 1000ULL / 5;
	next_event = start;
	next_hup = start + 30000;
	printf("soak: %u s, %d users, %d events/s, SIGHUP every 30 s, one "
	    "restart at %u s\n", seconds, USERS, EVENTS_PER_SEC, seconds / 2);
	while (now_ms() < end) {
		uint64_t now = now_ms();

		if (now >= next_event) {
			struct user *u = &U[randombytes_uniform(USERS)];

			if (u->registered && mpd_event(&P, u->name, "INBOX",
			    1) == 0)
				u->events++;
			next_event += 1000 / EVENTS_PER_SEC;
		}
		/* now and then a user leaves and comes back */
		if (randombytes_uniform(2000) == 0) {
			struct user *u = &U[randombytes_uniform(USERS)];

			if (u->registered && settle(2000) == 0) {
				tc_req(&u->c, &rq, PROTO_UNREGISTER, u->name,
				    strlen(u->name));
				if (tc_call(&u->c, &rq, &rp, 0) == 0 &&
				    rp.type == PROTO_REGISTERED &&
				    rp.lifetime == 0) {
					u->registered = 0;
					total_events += u->events;
					total_seen += u->seen;
					total_pushes += u->pushes;
					u->events = u->seen = u->pushes = 0;
					if (user_register(u) == 0)
						cycles++;
				}
			}
		}
		if (now >= next_hup) {
			mpd_signal(&P, SIGHUP);
			hups++;
			next_hup += 30000;
		}
		if (!restarted && now >= start + seconds * 500ULL) {
			settle(3000);
			rss_end = rss_kib(P.pid);
			if (mpd_stop(&P) != 0 || mpd_start(&P) != 0) {
				printf("FAIL: restart\n");
				failed = 1;
				break;
			}
			restarted = 1;
			warm = now_ms() + seconds * 1000ULL / 10;
		}
		if (rss_warm == 0 && !restarted && now >= warm)
			rss_warm = rss_kib(P.pid);
		if (rss_warm2 == 0 && restarted && now >= warm)
			rss_warm2 = rss_kib(P.pid);
		poll_users(1);
	}
	CHECK(settle(5000) == 0, "every registered user saw all its events");
	rss_end2 = rss_kib(P.pid);
	for (i = 0; i < USERS; i++) {
		total_events += U[i].events;
		total_seen += U[i].seen;
		total_pushes += U[i].pushes;
	}
	printf("events %llu, new messages seen %llu, pushes %llu, "
	    "unregister/register cycles %d, SIGHUPs %d\n",
	    (unsigned long long)total_events, (unsigned long long)total_seen,
	    (unsigned long long)total_pushes, cycles, hups);
	CHECK(total_events == total_seen, "counts add up: %llu events, %llu "
	    "seen", (unsigned long long)total_events,
	    (unsigned long long)total_seen);
	CHECK(mpd_stat(&P, "retransmits") == 0, "no retransmission on "
	    "loopback after the restart");
	CHECK(rss_warm > 0 && rss_end - rss_warm < 512, "RSS flat in the "
	    "first life: %ld KiB after warm-up, %ld KiB at the end",
	    rss_warm, rss_end);
	CHECK(rss_warm2 > 0 && rss_end2 - rss_warm2 < 512, "RSS flat in the "
	    "second life: %ld KiB after warm-up, %ld KiB at the end",
	    rss_warm2, rss_end2);
	/* the expected warnings: tests run as root with an empty user, and
	 * on a machine that kept the kernel's default event queue (10) */
	CHECK(mpd_log_count(&P, "warning:") - mpd_log_count(&P,
	    "user is empty: running as root") - mpd_log_count(&P,
	    "warning: net.unix.max_dgram_qlen is") +
	    mpd_log_count(&P, "error:") +
	    mpd_log_count(&P, "fatal:") == 0, "no warning or error logged");
	CHECK(mpd_log_count(&P, "configuration reloaded") == hups,
	    "%d reloads logged", hups);
	CHECK(mpd_stop(&P) == 0, "clean exit");
	mpd_cleanup(&P);
	printf("%s\n", failed ? "soak: FAILED" : "soak: passed");
	return failed;
}
