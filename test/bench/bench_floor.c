/*
 * bench_floor.c: the least a notifier can do for a push, as a baseline.
 *
 * A thread that reads new-mail events from a UNIX datagram socket with
 * the sender's credentials (SO_PASSCRED), as mailpushd does, decodes each
 * (event_decode), makes the user's token, push key and subkey, seals one
 * push per registration and sends them in batches of 64 (sendmmsg) to
 * the sinks; nothing else: no table, no limits, no journal, no timers,
 * no counters.  Fed the same events by the same sender as the daemon,
 * its rate is the floor of the push ratio: what reading an event and
 * the protocol's encryption cost together on the machine.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "bench.h"
#include "event.h"
#include "proto.h"

#define FLOOR_BATCH	64
#define PUSH_LEN	PROTO_PUSH_LEN(BENCH_CTX_LEN)

struct floor_q {
	int			 fd;
	unsigned		 n;
	uint8_t			 buf[FLOOR_BATCH][PUSH_LEN];
	struct sockaddr_in	 to[FLOOR_BATCH];
	struct iovec		 iov[FLOOR_BATCH];
	struct mmsghdr		 msgs[FLOOR_BATCH];
};

static void
floor_flush(struct floor_q *q)
{
	unsigned off = 0;
	int rc;

	while (off < q->n) {
		if ((rc = sendmmsg(q->fd, q->msgs + off, q->n - off, 0)) == -1) {
			if (errno == EINTR)
				continue;
			fail("push floor: sendmmsg: %s", strerror(errno));
			break;
		}
		off += (unsigned)rc;
	}
	q->n = 0;
}

void
sealer_init(struct sealer *z)
{
	uint8_t key[32];

	memset(z, 0, sizeof(*z));
	randombytes_buf(key, sizeof(key));
	randombytes_buf(z->prefix, sizeof(z->prefix));
	crypto_auth_hmacsha256_init(&z->server, key, sizeof(key));
	sodium_memzero(key, sizeof(key));
}

void
sealer_user(const struct sealer *z, const char *name, size_t len,
    uint8_t subkey[32])
{
	crypto_auth_hmacsha256_state st = z->server;
	uint8_t token[MP_TOKEN_LEN], key[32];

	crypto_auth_hmacsha256_update(&st, (const uint8_t *)name, len);
	crypto_auth_hmacsha256_final(&st, token);
	proto_push_key(token, key);
	proto_push_subkey(key, z->prefix, subkey);
	sodium_memzero(key, sizeof(key));
}

void
sealer_seal(struct sealer *z, const uint8_t subkey[32], unsigned count,
    uint8_t *out)
{
	struct mp_push p;
	uint8_t nonce[PROTO_PUSH_NONCE_LEN];

	memset(&p, 0, sizeof(p));
	p.ctx_len = BENCH_CTX_LEN;
	p.seq = p.count = p.total = count;
	z->counter++;
	memcpy(nonce, z->prefix, 16);
	memcpy(nonce + 16, &z->counter, 8);
	p.reg_id = (uint32_t)z->counter;
	if (proto_push_seal_sub(&p, subkey, nonce, out, PUSH_LEN) != PUSH_LEN)
		abort();
}

/* The pushes of one event: per user the keys, per registration a seal. */
static void
floor_event(struct floor *f, struct floor_q *q, const struct mp_event *ev)
{
	uint8_t subkey[32];
	unsigned i;

	sealer_user(&f->z, ev->user, ev->user_len, subkey);
	for (i = 0; i < f->per; i++) {
		sealer_seal(&f->z, subkey, ev->count, q->buf[q->n]);
		q->to[q->n].sin_port = htons(f->sink->port[i % f->sink->n]);
		if (++q->n == FLOOR_BATCH)
			floor_flush(q);
	}
	sodium_memzero(subkey, sizeof(subkey));
}

static void *
floor_main(void *arg)
{
	struct floor *f = arg;
	static __thread struct floor_q q;
	static __thread uint8_t in[FLOOR_BATCH][EVSLOT + 64];
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(struct ucred))];
	} cm[FLOOR_BATCH];
	struct mmsghdr msgs[FLOOR_BATCH];
	struct iovec iov[FLOOR_BATCH];
	struct cmsghdr *c;
	struct mp_event ev;
	const char *why;
	int i, n, cred;

	atomic_store(&f->tid, (int)gettid());
	q.fd = f->out;
	for (i = 0; i < FLOOR_BATCH; i++) {
		q.to[i].sin_family = AF_INET;
		q.to[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		q.iov[i].iov_base = q.buf[i];
		q.iov[i].iov_len = PUSH_LEN;
		q.msgs[i].msg_hdr.msg_name = &q.to[i];
		q.msgs[i].msg_hdr.msg_namelen = sizeof(q.to[i]);
		q.msgs[i].msg_hdr.msg_iov = &q.iov[i];
		q.msgs[i].msg_hdr.msg_iovlen = 1;
	}
	for (;;) {
		for (i = 0; i < FLOOR_BATCH; i++) {
			iov[i].iov_base = in[i];
			iov[i].iov_len = sizeof(in[i]);
			memset(&msgs[i], 0, sizeof(msgs[i]));
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_control = cm[i].buf;
			msgs[i].msg_hdr.msg_controllen = sizeof(cm[i].buf);
		}
		n = recvmmsg(f->in, msgs, FLOOR_BATCH, MSG_WAITFORONE, NULL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			fail("push floor: recvmmsg: %s", strerror(errno));
			return NULL;
		}
		for (i = 0; i < n; i++) {
			if (msgs[i].msg_len == 0) {	/* floor_close */
				floor_flush(&q);
				return NULL;
			}
			cred = 0;
			for (c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c != NULL;
			    c = CMSG_NXTHDR(&msgs[i].msg_hdr, c))
				if (c->cmsg_level == SOL_SOCKET &&
				    c->cmsg_type == SCM_CREDENTIALS)
					cred = 1;
			if (!cred || event_decode(in[i], msgs[i].msg_len, &ev,
			    &why) != 0) {
				atomic_fetch_add(&f->bad, 1);
				continue;
			}
			floor_event(f, &q, &ev);
		}
		floor_flush(&q);
	}
}

int
floor_open(struct floor *f, const struct sink *s, unsigned per,
    const char *path)
{
	struct sockaddr_un sun;
	int on = 1, buf = 8 << 20, sbuf = 16 << 20;

	memset(f, 0, sizeof(*f));
	f->in = f->out = -1;
	f->sink = s;
	f->per = per;
	sealer_init(&f->z);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path) >=
	    (int)sizeof(sun.sun_path))
		return fail("push floor: socket path too long: %s", path);
	snprintf(f->path, sizeof(f->path), "%s", path);
	unlink(path);
	if ((f->in = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(f->in, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) ==
	    -1 ||
	    setsockopt(f->in, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf)) == -1 ||
	    bind(f->in, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		return fail("push floor: socket %s: %s", path, strerror(errno));
	if ((f->out = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(f->out, SOL_SOCKET, SO_SNDBUF, &sbuf, sizeof(sbuf)) ==
	    -1)
		return fail("push floor: UDP socket: %s", strerror(errno));
	if (pthread_create(&f->thr, NULL, floor_main, f) != 0)
		return fail("push floor: pthread_create failed");
	f->running = 1;
	return 0;
}

/* The floor thread's CPU time so far, in ns. */
uint64_t
floor_cpu_ns(const struct floor *f)
{
	clockid_t cid;

	if (!f->running || pthread_getcpuclockid(f->thr, &cid) != 0)
		return 0;
	return clock_ns(cid);
}

void
floor_close(struct floor *f)
{
	int fd;

	if (f->running) {
		/* an empty datagram tells the thread to stop */
		if ((fd = event_connect(f->path)) == -1 ||
		    send(fd, "", 0, 0) == -1)
			abort();
		close(fd);
		pthread_join(f->thr, NULL);
		f->running = 0;
	}
	if (f->in != -1)
		close(f->in);
	if (f->out != -1)
		close(f->out);
	if (f->path[0] != '\0')
		unlink(f->path);
	sodium_memzero(&f->z, sizeof(f->z));
	f->in = f->out = -1;
}
