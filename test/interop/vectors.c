/*
 * vectors.c: prints the example exchange of mailpush-protocol(7), version
 * 2, computed
 * with the project's own codec, so the hex dumps in the page are exact.
 *
 *	make build/libshared.a
 *	cc -Ishared -o /tmp/vectors test/interop/vectors.c build/libshared.a \
 *	    $(pkg-config --cflags --libs libsodium)
 *	/tmp/vectors
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "proto.h"

static void
dump(const char *title, const uint8_t *buf, int len)
{
	int i;

	printf("%s (%d bytes)\n", title, len);
	for (i = 0; i < len; i++) {
		if (i % 16 == 0)
			printf("%04x:", i);
		printf(" %02x", buf[i]);
		if (i % 16 == 15 || i == len - 1)
			printf("\n");
	}
	printf("\n");
}

static void
hex(const char *title, const uint8_t *p, size_t len)
{
	char out[2 * 64 + 1];

	proto_hex_encode(p, len, out);
	printf("%s %s\n", title, out);
}

int
main(void)
{
	uint8_t key[MP_KEY_LEN], token[MP_TOKEN_LEN], buf[PROTO_MAX_DATAGRAM];
	uint8_t device[PROTO_DEVICE_LEN], pkey[32], nonce[PROTO_PUSH_NONCE_LEN];
	const uint64_t epoch = 0x0123456789abcdefULL;
	struct mp_request rq;
	struct mp_reply rp;
	struct mp_push p;
	int i, n;

	if (sodium_init() < 0)
		return 1;
	for (i = 0; i < MP_KEY_LEN; i++)
		key[i] = (uint8_t)i;
	for (i = 0; i < PROTO_DEVICE_LEN; i++)
		device[i] = (uint8_t)(0xd0 + i);
	for (i = 0; i < PROTO_PUSH_NONCE_LEN; i++)
		nonce[i] = (uint8_t)(0x40 + i);
	proto_token(key, "alice", 5, token);
	proto_push_key(token, pkey);
	hex("key     ", key, sizeof(key));
	hex("token   ", token, sizeof(token));
	hex("device  ", device, sizeof(device));
	hex("push key", pkey, sizeof(pkey));
	printf("\n");

	memset(&rq, 0, sizeof(rq));
	rq.type = PROTO_REGISTER;
	rq.key_id = 1;
	memcpy(rq.device, device, sizeof(device));
	rq.timestamp = 1700000000000ULL;
	rq.user_len = 5;
	memcpy(rq.user, "alice", 5);
	rq.ctx_len = 3;
	memcpy(rq.ctx, "ctx", 3);
	rq.pad_to = (uint16_t)proto_request_pad(rq.ctx_len);
	n = proto_request_encode(&rq, token, buf, sizeof(buf));
	dump("1 REGISTER, no cookie, padded", buf, n);

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_COOKIE;
	rp.timestamp = rq.timestamp;
	for (i = 0; i < PROTO_COOKIE_LEN; i++)
		rp.cookie[i] = (uint8_t)(0xa0 + i);
	n = proto_reply_encode(&rp, NULL, buf, sizeof(buf));
	dump("2 COOKIE", buf, n);

	rq.timestamp = 1700000000001ULL;
	memcpy(rq.cookie, rp.cookie, PROTO_COOKIE_LEN);
	rq.n_mailboxes = 1;
	rq.mailboxes[0].len = 5;
	memcpy(rq.mailboxes[0].name, "INBOX", 5);
	n = proto_request_encode(&rq, token, buf, sizeof(buf));
	dump("3 REGISTER with cookie and mailbox INBOX, padded", buf, n);

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_REGISTERED;
	rp.timestamp = rq.timestamp;
	rp.epoch = epoch;
	rp.reg_id = 0x2a;
	rp.lifetime = 600;
	rp.seq = 0;
	rp.keepalive_min = 15;
	rp.keepalive_max = 300;
	n = proto_reply_encode(&rp, token, buf, sizeof(buf));
	dump("4 REGISTERED", buf, n);

	memset(&p, 0, sizeof(p));
	p.epoch = epoch;
	p.reg_id = 0x2a;
	p.seq = 1;
	p.count = 2;
	p.total = 2;
	p.server_time = 1700000060;
	p.ctx_len = 3;
	memcpy(p.ctx, "ctx", 3);
	n = proto_push_seal(&p, pkey, nonce, buf, sizeof(buf));
	dump("5 PUSH", buf, n);

	memset(&rq, 0, sizeof(rq));
	rq.type = PROTO_PUSH_ACK;
	rq.key_id = 1;
	memcpy(rq.device, device, sizeof(device));
	rq.timestamp = 1700000060500ULL;
	rq.seq = 1;
	rq.epoch = epoch;
	rq.user_len = 5;
	memcpy(rq.user, "alice", 5);
	n = proto_request_encode(&rq, token, buf, sizeof(buf));
	dump("6 PUSH_ACK", buf, n);

	n = proto_keepalive_encode(0x2a, buf, sizeof(buf));
	dump("7 KEEPALIVE", buf, n);

	rq.type = PROTO_PROBE;
	rq.timestamp = 1700000070000ULL;
	rq.seq = 30;
	rq.epoch = 0;
	rq.ctx_len = 3;
	memcpy(rq.ctx, "ctx", 3);
	rq.pad_to = (uint16_t)proto_request_pad(rq.ctx_len);
	n = proto_request_encode(&rq, token, buf, sizeof(buf));
	dump("8 PROBE, 30 seconds, padded", buf, n);

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_PROBE_ECHO;
	rp.timestamp = rq.timestamp;
	n = proto_reply_encode(&rp, token, buf, sizeof(buf));
	dump("9 PROBE_ECHO", buf, n);

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_KICK;
	rp.reg_id = 0x2a;
	n = proto_reply_encode(&rp, NULL, buf, sizeof(buf));
	dump("10 KICK", buf, n);

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_REFUSED;
	rp.timestamp = 1700000300000ULL;
	rp.reason = REASON_TOO_MANY;
	rp.limit = 8;
	n = proto_reply_encode(&rp, token, buf, sizeof(buf));
	dump("11 REFUSED TOO_MANY limit 8", buf, n);
	return 0;
}
