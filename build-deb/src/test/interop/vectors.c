/*
 * vectors.c: prints the example exchange of mailpush-protocol(7), computed
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
	struct mp_request rq;
	struct mp_reply rp;
	struct mp_push p;
	struct mp_ack a;
	int i, n;

	if (sodium_init() < 0)
		return 1;
	for (i = 0; i < MP_KEY_LEN; i++)
		key[i] = (uint8_t)i;
	proto_token(key, "alice", 5, token);
	hex("key  ", key, sizeof(key));
	hex("token", token, sizeof(token));
	printf("\n");

	memset(&rq, 0, sizeof(rq));
	rq.type = PROTO_REGISTER;
	rq.timestamp = 1700000000;
	rq.nonce = 0x01020304;
	rq.user_len = 5;
	memcpy(rq.user, "alice", 5);
	rq.ctx_len = 3;
	memcpy(rq.ctx, "ctx", 3);
	n = proto_request_encode(&rq, token, buf, sizeof(buf));
	dump("1 REGISTER, no cookie", buf, n);

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_COOKIE;
	rp.nonce = 0x01020304;
	for (i = 0; i < PROTO_COOKIE_LEN; i++)
		rp.cookie[i] = (uint8_t)(0xa0 + i);
	n = proto_reply_encode(&rp, NULL, buf, sizeof(buf));
	dump("2 COOKIE", buf, n);

	rq.timestamp = 1700000001;
	rq.nonce = 0x05060708;
	memcpy(rq.cookie, rp.cookie, PROTO_COOKIE_LEN);
	rq.n_mailboxes = 1;
	rq.mailboxes[0].len = 5;
	memcpy(rq.mailboxes[0].name, "INBOX", 5);
	n = proto_request_encode(&rq, token, buf, sizeof(buf));
	dump("3 REGISTER with cookie and mailbox INBOX", buf, n);

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_REGISTERED;
	rp.nonce = 0x05060708;
	rp.reg_id = 0x2a;
	rp.lifetime = 600;
	rp.seq = 0;
	n = proto_reply_encode(&rp, token, buf, sizeof(buf));
	dump("4 REGISTERED", buf, n);

	memset(&p, 0, sizeof(p));
	p.reg_id = 0x2a;
	p.seq = 1;
	p.count = 2;
	p.total = 2;
	p.server_time = 1700000060;
	p.ctx_len = 3;
	memcpy(p.ctx, "ctx", 3);
	n = proto_push_encode(&p, token, buf, sizeof(buf));
	dump("5 PUSH", buf, n);

	a.reg_id = 0x2a;
	a.seq = 1;
	n = proto_ack_encode(&a, token, buf, sizeof(buf));
	dump("6 PUSH_ACK", buf, n);

	memset(&rq, 0, sizeof(rq));
	rq.type = PROTO_REFRESH;
	rq.timestamp = 1700000300;
	rq.nonce = 0x090a0b0c;
	rq.reg_id = 0x2a;
	rq.user_len = 5;
	memcpy(rq.user, "alice", 5);
	rq.ctx_len = 3;
	memcpy(rq.ctx, "ctx", 3);
	rq.n_mailboxes = 1;
	rq.mailboxes[0].len = 5;
	memcpy(rq.mailboxes[0].name, "INBOX", 5);
	n = proto_request_encode(&rq, token, buf, sizeof(buf));
	dump("7 REFRESH", buf, n);

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_REFUSED;
	rp.nonce = 0x090a0b0c;
	rp.reason = REASON_TOO_MANY;
	rp.limit = 8;
	rp.server_time = 1700000300;
	n = proto_reply_encode(&rp, token, buf, sizeof(buf));
	dump("8 REFUSED TOO_MANY limit 8", buf, n);
	return 0;
}
