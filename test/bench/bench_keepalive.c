/*
 * bench_keepalive.c: what protocol v2's keep-alive and push sealing cost
 * (issue 13).
 *
 * Keep-alive intake: KEEPALIVEs for a registration from its own address
 * (no answer), in chunks of CHUNK, each chunk closed by one KEEPALIVE
 * from another port, which the daemon answers with a KICK once it has
 * read everything before it; against a raw recvmmsg(2) loop on a UDP
 * socket of the same kind reading the same datagrams, chunk for chunk.
 * Both sides are told the same way that a chunk is through, so the ratio
 * is intake against intake.
 *
 * Sealing: the AEAD per push (proto_push_seal_sub under a kept subkey)
 * and the user's key and subkey per event (proto_push_key,
 * proto_push_subkey), in this process, against the HMAC-SHA256 a version
 * 1 push carried.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "bench.h"

#define CHUNK		2000
#define FIRST_ID	2654435761u	/* state_write's id of its first entry */

static int
send_chunk(int fd, const struct sockaddr_in *to, const uint8_t *dg,
    size_t len, unsigned n)
{
	struct mmsghdr msgs[64];
	struct iovec iov;
	unsigned i, sent = 0;
	int rc;

	iov.iov_base = (void *)(uintptr_t)dg;
	iov.iov_len = len;
	for (i = 0; i < 64; i++) {
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_name = (void *)(uintptr_t)to;
		msgs[i].msg_hdr.msg_namelen = sizeof(*to);
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	while (sent < n) {
		unsigned k = n - sent < 64 ? n - sent : 64;

		if ((rc = sendmmsg(fd, msgs, k, 0)) == -1) {
			if (errno == EINTR || errno == ENOBUFS ||
			    errno == EAGAIN)
				continue;
			return fail("sendmmsg: %s", strerror(errno));
		}
		sent += (unsigned)rc;
	}
	return 0;
}

struct raw {
	int		 fd;
	unsigned long	 got;
	atomic_int	 stop;
	uint64_t	 cpu;	/* ns of this thread */
	struct sockaddr_in done_to;	/* told when a chunk is in */
};

/* The baseline: a bare recvmmsg loop, as the daemon reads, no work. */
static void *
raw_main(void *arg)
{
	struct raw *r = arg;
	static uint8_t buf[64][PROTO_MAX_DATAGRAM + 1];
	struct sockaddr_in from[64];
	struct mmsghdr msgs[64];
	struct iovec iov[64];
	struct pollfd pfd = { r->fd, POLLIN, 0 };
	uint64_t c0 = thread_cpu_ns();
	int i, n;

	while (!atomic_load(&r->stop)) {
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		for (i = 0; i < 64; i++) {
			iov[i].iov_base = buf[i];
			iov[i].iov_len = sizeof(buf[i]);
			memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
			msgs[i].msg_hdr.msg_name = &from[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
		}
		if ((n = recvmmsg(r->fd, msgs, 64, MSG_DONTWAIT, NULL)) <= 0)
			continue;
		/* a chunk is in: say so, as the daemon's KICK does */
		if ((r->got + (unsigned long)n) / (CHUNK + 1) >
		    r->got / (CHUNK + 1))
			sendto(r->fd, "k", 1, 0,
			    (struct sockaddr *)&r->done_to,
			    sizeof(r->done_to));
		r->got += (unsigned long)n;
	}
	r->cpu = thread_cpu_ns() - c0;
	return NULL;
}

static int
bound_socket(uint16_t *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd;

	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(*port);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
		close(fd);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

static double
keepalive_intake(double *cpu_daemon, double *base, double *cpu_base)
{
	const unsigned chunks = opts.quick ? 20 : 100;
	struct mpd_proc p;
	struct sockaddr_in to;
	struct raw raw;
	pthread_t thr;
	uint8_t ka[PROTO_KEEPALIVE_LEN], buf[64];
	uint16_t port = 0, mport = 0, rport = 0;
	int fd = -1, mfd = -1, rfd = -1;
	uint64_t t0, c0, elapsed = 0;
	double rate = -1;
	unsigned c;

	memset(&p, 0, sizeof(p));
	if ((fd = bound_socket(&port)) == -1 ||
	    (mfd = bound_socket(&mport)) == -1) {
		fail("socket: %s", strerror(errno));
		goto out;
	}
	if (bd_create(&p, bench_conf) != 0 ||
	    state_write(&p, 0, 1, 1, &port, 1) != 0 ||
	    bd_start(&p, 20000) != 0)
		goto out;
	proto_keepalive_encode(FIRST_ID, ka, sizeof(ka));
	memset(&to, 0, sizeof(to));
	to.sin_family = AF_INET;
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	to.sin_port = htons((uint16_t)p.port);
	/* the daemon: each chunk, then the marker from another port */
	c0 = cpu_ns(p.pid);
	for (c = 0; c < chunks; c++) {
		struct pollfd pfd = { mfd, POLLIN, 0 };

		t0 = mono_ns();
		if (send_chunk(fd, &to, ka, sizeof(ka), CHUNK) != 0 ||
		    send_chunk(mfd, &to, ka, sizeof(ka), 1) != 0)
			goto out;
		if (poll(&pfd, 1, 10000) != 1 ||
		    recv(mfd, buf, sizeof(buf), 0) != PROTO_KICK_LEN) {
			fail("no KICK for the marker (log %s)", p.log);
			goto out;
		}
		elapsed += mono_ns() - t0;
	}
	*cpu_daemon = (double)(cpu_ns(p.pid) - c0) / (chunks * (CHUNK + 1));
	if (bd_stat(&p, "keepalives") < (long long)(chunks * CHUNK))
		note("  the daemon counted %lld keep-alives of %u sent",
		    bd_stat(&p, "keepalives"), chunks * CHUNK);
	rate = (double)chunks * (CHUNK + 1) / ((double)elapsed / 1e9);

	/* the baseline: the same datagrams into a bare recvmmsg loop */
	if ((rfd = bound_socket(&rport)) == -1) {
		fail("socket: %s", strerror(errno));
		goto out;
	}
	{
		int sz = 1 << 20;

		setsockopt(rfd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	memset(&raw, 0, sizeof(raw));
	raw.fd = rfd;
	raw.done_to = to;
	raw.done_to.sin_port = htons(mport);
	if (pthread_create(&thr, NULL, raw_main, &raw) != 0) {
		fail("pthread_create failed");
		goto out;
	}
	to.sin_port = htons(rport);
	elapsed = 0;
	for (c = 0; c < chunks; c++) {
		struct pollfd pfd = { mfd, POLLIN, 0 };

		t0 = mono_ns();
		if (send_chunk(fd, &to, ka, sizeof(ka), CHUNK + 1) != 0)
			break;
		if (poll(&pfd, 1, 10000) != 1 ||
		    recv(mfd, buf, sizeof(buf), 0) != 1) {
			note("  baseline: a chunk did not arrive whole");
			break;
		}
		elapsed += mono_ns() - t0;
	}
	atomic_store(&raw.stop, 1);
	pthread_join(thr, NULL);
	*base = (double)chunks * (CHUNK + 1) / ((double)elapsed / 1e9);
	*cpu_base = (double)raw.cpu / (chunks * (CHUNK + 1));
out:
	if (fd != -1)
		close(fd);
	if (mfd != -1)
		close(mfd);
	if (rfd != -1)
		close(rfd);
	bd_destroy(&p);
	return rate;
}

/*
 * ns per push as the daemon spends them: the AEAD under the kept subkey
 * (every push); the user's push key and its subkey (once per event and
 * user, shared by the user's pushes); one HMAC-SHA256 as a version 1 push
 * carried.
 */
static void
seal_cost(double *seal_ns, double *key_ns, double *hmac_ns)
{
	const unsigned n = opts.quick ? 50000 : 200000;
	static struct mp_push p;
	uint8_t token[MP_TOKEN_LEN], key[32], sub[32];
	uint8_t nonce[PROTO_PUSH_NONCE_LEN], buf[PROTO_MAX_DATAGRAM];
	uint8_t mac[32];
	uint64_t t0;
	unsigned i;

	randombytes_buf(token, sizeof(token));
	randombytes_buf(nonce, sizeof(nonce));
	p.ctx_len = BENCH_CTX_LEN;
	proto_push_key(token, key);
	proto_push_subkey(key, nonce, sub);
	t0 = mono_ns();
	for (i = 0; i < n; i++) {
		nonce[16] = (uint8_t)i;
		p.seq = i;
		if (proto_push_seal_sub(&p, sub, nonce, buf, sizeof(buf)) < 0)
			abort();
	}
	*seal_ns = (double)(mono_ns() - t0) / n;
	t0 = mono_ns();
	for (i = 0; i < n; i++) {
		token[0] = (uint8_t)i;
		proto_push_key(token, key);
		proto_push_subkey(key, nonce, sub);
	}
	*key_ns = (double)(mono_ns() - t0) / n;
	t0 = mono_ns();
	for (i = 0; i < n; i++) {
		buf[0] = (uint8_t)i;
		crypto_auth_hmacsha256(mac, buf, 32 + BENCH_CTX_LEN, token);
	}
	*hmac_ns = (double)(mono_ns() - t0) / n;
}

int
bench_keepalive(void)
{
	double rate, cpu_d = 0, base = 0, cpu_b = 0, seal, key, hmac;
	char fig[96], bas[96], rat[48];

	note("keep-alive intake: KEEPALIVEs in chunks of %d, each closed by "
	    "a KICK; baseline a bare recvmmsg loop", CHUNK);
	rate = keepalive_intake(&cpu_d, &base, &cpu_b);
	if (rate < 0)
		return -1;
	note("  daemon %.0f keep-alives/s (%.2f us daemon CPU each); raw "
	    "recvmmsg loop %.0f/s (%.2f us CPU each)", rate, cpu_d / 1e3,
	    base, cpu_b / 1e3);
	snprintf(fig, sizeof(fig), "%.0f keep-alives/s", rate);
	snprintf(bas, sizeof(bas), "%.0f/s (raw recvmmsg loop)", base);
	snprintf(rat, sizeof(rat), "%.2f", rate / base);
	result_add("keep-alive intake", fig, bas, rat, "ratio >= 0.8",
	    rate / base >= 0.8);

	seal_cost(&seal, &key, &hmac);
	note("push sealing: XChaCha20-Poly1305 under the kept subkey %.2f us "
	    "per push; the user's push key and subkey %.2f us per event; "
	    "HMAC-SHA256 of a v1 push %.2f us", seal / 1e3, key / 1e3,
	    hmac / 1e3);
	snprintf(fig, sizeof(fig), "%.2f us per push (+%.2f us per event)",
	    seal / 1e3, key / 1e3);
	snprintf(bas, sizeof(bas), "%.2f us (v1 HMAC-SHA256)", hmac / 1e3);
	snprintf(rat, sizeof(rat), "%.2f", seal / hmac);
	result_add("push sealing cost", fig, bas, rat, "reported", -1);
	return 0;
}
