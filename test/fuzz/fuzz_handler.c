/*
 * fuzz_handler.c: the daemon's request handling as a whole, driven with a
 * sequence of operations under a key the target knows, so that requests
 * carry valid MACs, cookies are echoed and pushes are opened and
 * acknowledged: registration, refresh, takeover, unregistration, the
 * per-client, per-address and table limits with refusal or eviction,
 * events, pushes, retransmission, acknowledgements, probes, keep-alives,
 * replays and raw garbage all reach the real code (udp.c, registry.c,
 * push.c, limits.c) through the real UDP listener on loopback.
 *
 * The input is read as operations, one byte of opcode and parameter bytes
 * each (see the switch below).  Each input starts from an empty table.
 * Nothing here depends on the wire format beyond proto.h's encoders, so a
 * protocol change means changing fill_request and the reply handling.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "fuzz_depth.h"
#include "log.h"
#include "mailpushd.h"
#include "proto.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CLIENTS		4		/* source addresses */
#define DEVICES		4
#define OPS_MAX		64

static const char *const users[] = { "alice", "bob", "Carol+news",
	"dave@example.org" };

struct fclient {
	int		fd;
	union mp_addr	addr;
	uint8_t		cookie[PROTO_COOKIE_LEN];
	uint32_t	reg_id;		/* of the last REGISTERED */
	struct mp_push	push;		/* the last push opened */
	int		have_push;
	int		push_dev, push_user;
};

static struct fclient	clients[CLIENTS];
static uint8_t		devices[DEVICES][PROTO_DEVICE_LEN];
static uint64_t		last_ts[DEVICES];
static uint8_t		key[MP_KEY_LEN];
static union mp_addr	server;

static void
die(const char *what)
{
	fprintf(stderr, "fuzz_handler: %s: %s\n", what, strerror(errno));
	abort();
}

static int
udp_socket(union mp_addr *a)
{
	socklen_t len = sizeof(a->sin);
	int fd;

	memset(a, 0, sizeof(*a));
	a->sin.sin_family = AF_INET;
	a->sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1 || bind(fd, &a->sa, len) == -1 ||
	    getsockname(fd, &a->sa, &len) == -1)
		die("udp socket");
	return fd;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct mp_listener *l;
	size_t i;

	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	log_init("fuzz_handler", getenv("FUZZ_VERBOSE") != NULL,
	    getenv("FUZZ_VERBOSE") != NULL);
	if ((mpd = calloc(1, sizeof(*mpd))) == NULL)
		abort();
	config_defaults(&mpd->cfg);
	mpd->cfg.state_file[0] = '\0';
	/* small limits, so that they are reached */
	mpd->cfg.max_registrations_per_client = 2;
	mpd->cfg.max_registrations = 6;
	mpd->cfg.max_registrations_per_address = 4;
	mpd->cfg.min_push_interval = 0;
	mpd->cfg.push_retries = 2;
	mpd->cfg.push_retry_interval = 100;
	/* the key the target knows: key id 1 */
	memset(key, 0x5a, sizeof(key));
	mpd->keys.cur_id = PROTO_KEY_ID_DEFAULT;
	memcpy(mpd->keys.cur, key, sizeof(key));
	memcpy(mpd->key, key, sizeof(key));
	memset(mpd->cookie_secret, 0xc0, sizeof(mpd->cookie_secret));
	mpd->epoch = 0x1122334455667788ULL;
	if ((mpd->base = event_base_new()) == NULL)
		abort();
	/* the real listener, on a free loopback port */
	l = &mpd->listeners[0];
	l->fd = udp_socket(&server);
	l->conf.ss.ss_family = AF_INET;
	memcpy(&l->conf.ss, &server.sin, sizeof(server.sin));
	l->conf.len = sizeof(server.sin);
	snprintf(l->conf.text, sizeof(l->conf.text), "127.0.0.1:%u",
	    ntohs(server.sin.sin_port));
	l->in_use = 1;
	mpd->n_listeners = 1;
	udp_start(l);
	for (i = 0; i < CLIENTS; i++)
		clients[i].fd = udp_socket(&clients[i].addr);
	for (i = 0; i < DEVICES; i++)
		memset(devices[i], (int)(0x10 + i), PROTO_DEVICE_LEN);
	mpd_now();
	return 0;
}

/* Let the daemon read what was sent to it (udp_read through libevent). */
static void
run_daemon(void)
{
	int i;

	for (i = 0; i < 4; i++)
		event_base_loop(mpd->base, EVLOOP_NONBLOCK);
}

static void
token_of(int u, uint8_t token[MP_TOKEN_LEN])
{
	char user[MP_USER_MAX + 1];
	const char *why;

	/* the daemon derives the token from the normalised name */
	if (user_normalize(&mpd->cfg.names, users[u], strlen(users[u]), user,
	    &why) != 0)
		abort();
	proto_token(key, user, strlen(user), token);
}

/* Read everything the daemon sent to client c: cookies, replies, pushes. */
static void
drain(int c)
{
	struct fclient *fc = &clients[c];
	uint8_t buf[PROTO_MAX_DATAGRAM + 1], token[MP_TOKEN_LEN], pk[32];
	struct mp_reply rp;
	const char *why;
	ssize_t n;
	int u, d;

	while ((n = recv(fc->fd, buf, sizeof(buf), 0)) > 0) {
		if (proto_type(buf, (size_t)n) == PROTO_PUSH) {
			/* whose?  try every user; the device is the
			 * one its registration has */
			for (u = 0; u < (int)(sizeof(users) / sizeof(users[0]));
			    u++) {
				const struct reg *r;

				token_of(u, token);
				proto_push_key(token, pk);
				if (proto_push_open(buf, (size_t)n, pk,
				    &fc->push, &why) != 0)
					continue;
				fc->have_push = 1;
				fc->push_user = u;
				fc->push_dev = 0;
				r = registry_find(fc->push.reg_id);
				for (d = 0; r != NULL && d < DEVICES; d++)
					if (memcmp(r->device, devices[d],
					    PROTO_DEVICE_LEN) == 0)
						fc->push_dev = d;
				fuzz_deep();
				goto next;
			}
			abort();	/* a push nobody can open */
		}
		if (proto_reply_decode(buf, (size_t)n, &rp, &why) != 0)
			continue;
		if (rp.type == PROTO_COOKIE)
			memcpy(fc->cookie, rp.cookie, sizeof(fc->cookie));
		else if (rp.type == PROTO_REGISTERED && rp.lifetime != 0) {
			fc->reg_id = rp.reg_id;
			fuzz_deep();
		}
next:		;
	}
}

static void
drain_all(void)
{
	int c;

	for (c = 0; c < CLIENTS; c++)
		drain(c);
}

static void
send_to_daemon(int c, const uint8_t *buf, size_t len)
{
	(void)sendto(clients[c].fd, buf, len, 0, &server.sa,
	    sizeof(server.sin));
	run_daemon();
	drain_all();
}

/*
 * One request of `type' from client c for user u and device d.  flags:
 * bit 0 a stale timestamp (replay), bit 1 a broken MAC, bit 2 no cookie.
 */
static void
request(int type, int c, int u, int d, const uint8_t *p, size_t plen,
    unsigned flags, int twice)
{
	struct mp_request rq;
	uint8_t buf[PROTO_MAX_DATAGRAM], token[MP_TOKEN_LEN];
	size_t i, nmb;
	int n, round;

	for (round = 0; round < 1 + twice; round++) {
		memset(&rq, 0, sizeof(rq));
		rq.type = (uint8_t)type;
		rq.key_id = PROTO_KEY_ID_DEFAULT;
		memcpy(rq.device, devices[d], PROTO_DEVICE_LEN);
		mpd_now();
		if (mpd->now_ms > last_ts[d])
			last_ts[d] = mpd->now_ms;
		else
			last_ts[d]++;
		rq.timestamp = (flags & 1) ? last_ts[d] - 1 : last_ts[d];
		if (!(flags & 4))
			memcpy(rq.cookie, clients[c].cookie, PROTO_COOKIE_LEN);
		rq.user_len = (uint8_t)strlen(users[u]);
		memcpy(rq.user, users[u], rq.user_len);
		if (type == PROTO_PUSH_ACK && clients[c].have_push) {
			rq.seq = clients[c].push.seq;
			rq.epoch = clients[c].push.epoch;
		} else if (type == PROTO_PROBE)
			rq.seq = plen > 0 ? p[0] % 4 : 0;
		if (type == PROTO_REGISTER || type == PROTO_REFRESH) {
			rq.ctx_len = (uint16_t)(plen > 0 ? p[0] % 24 : 0);
			for (i = 0; i < rq.ctx_len; i++)
				rq.ctx[i] = (uint8_t)(i + 1 < plen ? p[i + 1] : i);
			nmb = plen > 1 ? p[1] % 3 : 0;
			for (i = 0; i < nmb; i++) {
				const char *mb = i == 0 ? "INBOX" : "Junk";

				rq.mailboxes[i].len = (uint8_t)strlen(mb);
				memcpy(rq.mailboxes[i].name, mb,
				    rq.mailboxes[i].len);
			}
			rq.n_mailboxes = (uint8_t)nmb;
			rq.pad_to = (uint16_t)proto_request_pad(rq.ctx_len);
		}
		token_of(u, token);
		if ((n = proto_request_encode(&rq, token, buf, sizeof(buf))) < 0)
			return;
		if (flags & 2)
			buf[n - 1] ^= 0x01;	/* in the MAC */
		send_to_daemon(c, buf, (size_t)n);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t buf[PROTO_MAX_DATAGRAM];
	size_t pos = 0, ops = 0, n;
	int c, u, d;

	if (size < 1)
		return 0;
	/* the first byte: what happens at the per-client limit */
	mpd->cfg.on_limit = data[pos++] & 1 ? ON_LIMIT_EVICT_OLDEST :
	    ON_LIMIT_REFUSE;
	registry_init();
	memset(last_ts, 0, sizeof(last_ts));
	for (c = 0; c < CLIENTS; c++) {
		memset(clients[c].cookie, 0, PROTO_COOKIE_LEN);
		clients[c].reg_id = 0;
		clients[c].have_push = 0;
	}
	while (pos + 2 <= size && ops++ < OPS_MAX) {
		uint8_t op = data[pos], arg = data[pos + 1];
		const uint8_t *p = data + pos + 2;
		size_t plen = size - pos - 2 < 8 ? size - pos - 2 : 8;

		pos += 2;
		c = arg & 3;
		u = (arg >> 2) & 3;
		d = (arg >> 4) & 3;
		switch (op % 10) {
		case 0:		/* REGISTER, echoing a cookie if asked for */
			request(PROTO_REGISTER, c, u, d, p, plen, op >> 5, 1);
			pos += plen < 2 ? plen : 2;
			break;
		case 1:
			request(PROTO_REFRESH, c, u, d, p, plen, op >> 5, 0);
			pos += plen < 2 ? plen : 2;
			break;
		case 2:
			request(PROTO_UNREGISTER, c, u, d, p, 0, op >> 5, 0);
			break;
		case 3:		/* new mail */
			mpd_now();
			push_event(users[u][0] == 'C' ? "carol" : users[u],
			    "INBOX", (unsigned)(arg >> 6) + 1);
			push_flush();
			run_daemon();
			drain_all();
			break;
		case 4:		/* acknowledge the last push this client got */
			if (clients[c].have_push)
				request(PROTO_PUSH_ACK, c,
				    clients[c].push_user, clients[c].push_dev,
				    p, 0, op >> 5, 0);
			break;
		case 5:		/* time passes: retransmissions, expiry */
			mpd_now();
			while (registry_run_timers(mpd->now_ms +
			    (uint64_t)arg * 250))
				push_flush();
			push_flush();
			run_daemon();
			drain_all();
			break;
		case 6:
			request(PROTO_PROBE, c, u, d, p, plen, op >> 5, 0);
			pos += plen < 1 ? plen : 1;
			break;
		case 7:		/* a keep-alive for the last registration */
			if ((n = (size_t)proto_keepalive_encode(
			    clients[c].reg_id, buf, sizeof(buf))) > 0 &&
			    n <= sizeof(buf))
				send_to_daemon(c, buf, n);
			break;
		case 8:		/* raw bytes */
			n = arg % 64 < size - pos ? arg % 64 : size - pos;
			send_to_daemon(c, data + pos, n);
			pos += n;
			break;
		default:	/* the same request from another client: a move */
			request(PROTO_REFRESH, (c + 1) % CLIENTS, u, d, p,
			    plen, 0, 0);
			break;
		}
	}
	/* the table holds what the replies said */
	if (registry_count() > mpd->cfg.max_registrations)
		abort();
	registry_free();
	drain_all();
	return 0;
}
