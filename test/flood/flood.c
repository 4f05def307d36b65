/*
 * flood.c: a bounded registration flood against the real mailpushd on
 * loopback (make flood; CI runs a shorter one).
 *
 * A legitimate client registers first and keeps receiving pushes for
 * events posted at a steady rate during the flood.  The flood sends
 * FLOOD_COUNT datagrams from many source ports and 127.x addresses, in
 * four kinds: REGISTER without a cookie (never echoed), REGISTER with an
 * echoed cookie but a bad MAC, with a stale timestamp, and with valid
 * credentials for a user already at the per-client limit.  It asserts:
 * no state for sources that never echoed a cookie; bytes sent back at most
 * the bytes received; the legitimate client got every push; the refusal
 * log stayed rate-limited; and it reports the daemon's memory growth and
 * the flood's effect on the legitimate client's latency.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "harness.h"

#define SOURCES		64	/* sockets: 8 addresses x 8 ports */
#define BATCH		64

static struct mpd_proc P;
static int failed;

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		printf("FAIL: " __VA_ARGS__);				\
		printf("\n");						\
		failed = 1;						\
	} else {							\
		printf("ok:   " __VA_ARGS__);				\
		printf("\n");						\
	}								\
} while (0)

struct source {
	struct tclient	c;
	uint64_t	sent_bytes, recv_bytes;
};

static struct source src[SOURCES];

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Drain whatever came back to the flood sockets, counting bytes. */
static void
drain_sources(void)
{
	uint8_t buf[2048];
	int i;
	ssize_t n;

	for (i = 0; i < SOURCES; i++)
		while ((n = recv(src[i].c.fd, buf, sizeof(buf), MSG_DONTWAIT))
		    > 0)
			src[i].recv_bytes += (uint64_t)n;
}

struct legit {
	struct tclient	c;
	uint64_t	sent_at[100000];
	uint64_t	lat[100000];
	unsigned	events, pushes_seen;
	uint32_t	last_total;
};

static struct legit L;

/* Post one event for the legitimate user and note when. */
static void
legit_event(void)
{
	if (L.events < sizeof(L.sent_at) / sizeof(L.sent_at[0]) &&
	    mpd_event(&P, "legit", "INBOX", 1) == 0)
		L.sent_at[L.events++] = now_us();
}

/* Receive and acknowledge the legitimate client's pushes. */
static void
legit_poll(int ms)
{
	static struct mp_push p;
	uint8_t buf[2048];
	const char *why;
	int n;

	for (;;) {
		struct pollfd pfd = { L.c.fd, POLLIN, 0 };

		if (poll(&pfd, 1, ms) != 1)
			return;
		ms = 0;
		if ((n = (int)recv(L.c.fd, buf, sizeof(buf), 0)) <= 0)
			return;
		if (proto_type(buf, (size_t)n) != PROTO_PUSH ||
		    proto_push_open(buf, (size_t)n, L.c.push_key, &p, &why)
		    != 0)
			continue;
		tc_ack(&L.c, &p);
		/* latency of every event this push covers */
		while (L.last_total < p.total && L.last_total < L.events) {
			L.lat[L.last_total] = now_us() -
			    L.sent_at[L.last_total];
			L.last_total++;
		}
		L.pushes_seen++;
	}
}

static void
latency_report(const char *what, unsigned from, unsigned to)
{
	static uint64_t v[100000];
	unsigned n = 0, i;

	for (i = from; i < to && i < L.last_total; i++)
		v[n++] = L.lat[i];
	if (n == 0) {
		printf("%s: no pushes\n", what);
		return;
	}
	qsort(v, n, sizeof(v[0]), cmp_u64);
	printf("%s: %u events, latency median %.3f ms, p99 %.3f ms, "
	    "max %.3f ms\n", what, n, v[n / 2] / 1000.0,
	    v[(n * 99) / 100] / 1000.0, v[n - 1] / 1000.0);
}

static void
build_register(struct tclient *c, uint8_t *buf, int *len, const char *user,
    int kind, const uint8_t *cookie, uint32_t seed)
{
	static struct mp_request rq;
	uint8_t token[MP_TOKEN_LEN];
	char ctx[16];

	snprintf(ctx, sizeof(ctx), "f%08x", seed);
	memset(&rq, 0, sizeof(rq));
	rq.type = PROTO_REGISTER;
	rq.key_id = PROTO_KEY_ID_DEFAULT;
	/* one device per flood source */
	memcpy(rq.device, c->device, PROTO_DEVICE_LEN);
	rq.timestamp = ((uint64_t)time(NULL) - (kind == 2 ? 7200 : 0)) * 1000 +
	    seed % 1000;
	rq.user_len = (uint8_t)strlen(user);
	memcpy(rq.user, user, rq.user_len);
	rq.ctx_len = (uint16_t)strlen(ctx);
	memcpy(rq.ctx, ctx, rq.ctx_len);
	if (cookie)
		memcpy(rq.cookie, cookie, PROTO_COOKIE_LEN);
	mpd_token(&P, user, token);
	if (kind == 1)
		token[0] ^= 1;		/* bad MAC */
	*len = proto_request_encode(&rq, token, buf, PROTO_MAX_DATAGRAM);
}

int
main(int argc, char *argv[])
{
	unsigned long count = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	unsigned long i;
	uint64_t t0, t1, flood_bytes = 0, back_bytes = 0;
	long rss0, rss1, regs;
	struct mp_reply rp;
	int a, k, n, limit_lines;
	uint8_t cookies[SOURCES][PROTO_COOKIE_LEN];
	static uint8_t dg[BATCH][PROTO_MAX_DATAGRAM];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	unsigned before_events;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (mpd_setup(&P, "[limits]\nmin_push_interval = 0\n"
	    "max_registrations_per_address = 0\n") != 0) {
		printf("FAIL: cannot start mailpushd\n");
		return 1;
	}
	/* full-limit user: 8 registrations from 127.0.0.9 */
	for (k = 0; k < 8; k++) {
		struct tclient c;
		char ctx[8];

		snprintf(ctx, sizeof(ctx), "full%d", k);
		if (tc_open(&c, &P, 0, "127.0.0.9", "full") != 0 ||
		    tc_register(&c, ctx, strlen(ctx), &rp) != 0 ||
		    rp.type != PROTO_REGISTERED) {
			printf("FAIL: cannot fill user full\n");
			mpd_cleanup(&P);
			return 1;
		}
		tc_close(&c);
	}
	if (tc_open(&L.c, &P, 0, "127.0.0.1", "legit") != 0 ||
	    tc_register(&L.c, "legit", 5, &rp) != 0 ||
	    rp.type != PROTO_REGISTERED) {
		printf("FAIL: legitimate client cannot register\n");
		mpd_cleanup(&P);
		return 1;
	}
	/* latency without a flood */
	for (k = 0; k < 200; k++) {
		legit_event();
		legit_poll(50);
	}
	before_events = L.events;
	latency_report("legitimate client, idle daemon", 0, before_events);

	/* flood sources: 127.0.0.10-17, 8 ports each; half get a cookie */
	for (k = 0; k < SOURCES; k++) {
		char ip[32];
		uint8_t buf[PROTO_MAX_DATAGRAM];
		int len;

		snprintf(ip, sizeof(ip), "127.0.0.%d", 10 + k / 8);
		if (tc_open(&src[k].c, &P, 0, ip, "full") != 0) {
			printf("FAIL: cannot open flood socket on %s\n", ip);
			return 1;
		}
		memset(cookies[k], 0, PROTO_COOKIE_LEN);
		if (k % 2 == 1) {
			/* this source echoes: it gets a cookie first */
			build_register(&src[k].c, buf, &len, "full", 0, NULL,
			    (uint32_t)k);
			tc_send(&src[k].c, buf, (size_t)len);
			src[k].sent_bytes += (uint64_t)len;
			if (tc_recv(&src[k].c, buf, sizeof(buf), 2000) ==
			    PROTO_COOKIE_DGRAM_LEN) {
				memcpy(cookies[k], buf + 12, PROTO_COOKIE_LEN);
				src[k].recv_bytes += PROTO_COOKIE_DGRAM_LEN;
			}
		}
	}
	rss0 = rss_kib(P.pid);
	printf("flood: %lu datagrams from %d sources (8 addresses x 8 ports)\n",
	    count, SOURCES);
	t0 = now_us();
	for (i = 0; i < count; ) {
		int s = (int)(i / BATCH % SOURCES);
		int kind;

		for (n = 0; n < BATCH && i < count; n++, i++) {
			int len;

			/* even sources never echo; odd ones cycle through
			 * bad MAC, stale timestamp, over the limit */
			kind = s % 2 == 0 ? 0 : 1 + (int)(i % 3);
			build_register(&src[s].c, dg[n], &len, "full",
			    kind == 3 ? 0 : kind, s % 2 ? cookies[s] : NULL,
			    (uint32_t)i);
			iov[n].iov_base = dg[n];
			iov[n].iov_len = (size_t)len;
			memset(&msgs[n], 0, sizeof(msgs[n]));
			msgs[n].msg_hdr.msg_name = &src[s].c.srv;
			msgs[n].msg_hdr.msg_namelen = src[s].c.srvlen;
			msgs[n].msg_hdr.msg_iov = &iov[n];
			msgs[n].msg_hdr.msg_iovlen = 1;
			src[s].sent_bytes += (uint64_t)len;
		}
		if (sendmmsg(src[s].c.fd, msgs, (unsigned)n, 0) < 0 &&
		    errno != EAGAIN)
			perror("sendmmsg");
		/* the daemon gets to breathe; the legitimate client gets
		 * an event every 256 batches */
		if ((i / BATCH) % 256 == 0) {
			legit_event();
			legit_poll(0);
		}
		if ((i / BATCH) % 16 == 0)
			drain_sources();
		if (now_us() - t0 > 120000000ULL) {
			printf("flood stopped at its 120 s bound after %lu\n", i);
			break;
		}
	}
	t1 = now_us();
	/* let the daemon finish and the last pushes arrive */
	for (k = 0; k < 100 && L.last_total < L.events; k++)
		legit_poll(20);
	usleep(300000);
	drain_sources();
	rss1 = rss_kib(P.pid);
	printf("flood sent in %.2f s (%.0f datagrams/s offered)\n",
	    (t1 - t0) / 1e6, i / ((t1 - t0) / 1e6));
	latency_report("legitimate client, during the flood", before_events,
	    L.events);

	for (k = 0; k < SOURCES; k++) {
		flood_bytes += src[k].sent_bytes;
		back_bytes += src[k].recv_bytes;
	}
	regs = (long)mpd_stat(&P, "registrations");
	printf("daemon: datagrams_in %lld, malformed %lld, cookies_sent %lld, "
	    "bytes_in %lld, bytes_out %lld\n", mpd_stat(&P, "datagrams_in"),
	    mpd_stat(&P, "datagrams_malformed"), mpd_stat(&P, "cookies_sent"),
	    mpd_stat(&P, "bytes_in"), mpd_stat(&P, "bytes_out"));
	CHECK(regs == 9, "no state from the flood: %ld registrations (8 of "
	    "user full + 1 legit)", regs);
	CHECK(back_bytes <= flood_bytes, "amplification %.3f (bytes back "
	    "%llu / bytes sent %llu) <= 1", flood_bytes ?
	    (double)back_bytes / flood_bytes : 0.0,
	    (unsigned long long)back_bytes, (unsigned long long)flood_bytes);
	CHECK(L.last_total == L.events, "legitimate client received every "
	    "push: %u of %u events covered", L.last_total, L.events);
	CHECK(rss1 - rss0 < 4096, "daemon memory bounded: RSS %ld KiB -> %ld "
	    "KiB (growth %ld KiB)", rss0, rss1, rss1 - rss0);
	limit_lines = mpd_log_count(&P, "has exceeded");
	CHECK(limit_lines <= 1 + (int)((t1 - t0) / 1000000 / 60) + 1,
	    "refusal log rate-limited: %d lines for %lld refusals",
	    limit_lines, mpd_stat(&P, "refused_too_many"));
	a = mpd_log_count(&P, "ERROR: AddressSanitizer") +
	    mpd_log_count(&P, "runtime error");
	CHECK(a == 0, "no sanitizer report in the daemon's log");
	CHECK(mpd_stop(&P) == 0, "daemon exits 0 on SIGTERM after the flood");
	mpd_cleanup(&P);
	printf("%s\n", failed ? "flood: FAILED" : "flood: passed");
	return failed;
}
