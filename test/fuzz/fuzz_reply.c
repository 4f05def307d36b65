/*
 * fuzz_reply.c: the client-side decoders (COOKIE, REGISTERED, REFUSED,
 * PROBE_ECHO, KICK, PUSH) and the client library's datagram handler, fed
 * as if from the server.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mpclient.h"
#include "proto.h"

#include <sodium.h>

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct mpc *client;
static const uint8_t token[MP_TOKEN_LEN] = { 1, 2, 3 };
static const uint8_t device[MP_DEVICE_ID_LEN] = { 4, 5, 6 };
static uint8_t push_key[32];

/* A client registering with a server at 127.0.0.1:9 (discard). */
static void
client_init(void)
{
	struct sockaddr_in sin;
	struct mpc_params params;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(9);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	memset(&params, 0, sizeof(params));
	params.user = "alice";
	memcpy(params.token, token, sizeof(token));
	memcpy(params.device, device, sizeof(device));
	proto_push_key(token, push_key);
	params.ctx = (const uint8_t *)"ctx";
	params.ctx_len = 3;
	if ((client = mpc_new((struct sockaddr *)&sin, sizeof(sin), &params,
	    NULL)) == NULL)
		abort();
	mpc_register(client, 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t signed_copy[PROTO_MAX_DATAGRAM + 64];
	static struct mp_push p;
	static uint8_t out[PROTO_MAX_DATAGRAM];
	struct mp_reply rp;
	const char *why;
	int n;

	if (proto_reply_decode(data, size, &rp, &why) == 0) {
		n = proto_reply_encode(&rp, NULL, out, sizeof(out));
		/* reserved bytes of REFUSED are sent as zero, ignored */
		if (n != (int)size || ((rp.type == PROTO_COOKIE ||
		    rp.type == PROTO_KICK) && memcmp(out, data, size) != 0))
			abort();
	}
	/* a PUSH under the library's key: re-sealing with its nonce gives
	 * the same bytes */
	if (proto_push_open(data, size, push_key, &p, &why) == 0) {
		n = proto_push_seal(&p, push_key, data + PROTO_HDR_LEN, out,
		    sizeof(out));
		if (n != (int)size || memcmp(out, data, size) != 0)
			abort();
	}
	/* the library, once as sent and once with a valid MAC so the
	 * fuzzer reaches what lies behind the MAC check */
	if (client == NULL)
		client_init();
	(void)mpc_handle_datagram(client, data, size, 2);
	if (size >= PROTO_HDR_LEN + PROTO_MAC_LEN &&
	    size <= sizeof(signed_copy)) {
		memcpy(signed_copy, data, size);
		crypto_auth_hmacsha256(signed_copy + size - PROTO_MAC_LEN,
		    signed_copy, size - PROTO_MAC_LEN, token);
		(void)mpc_handle_datagram(client, signed_copy, size, 3);
	}
	/* and sealed as a PUSH for it, so the push path is reached too */
	if (size >= PROTO_PUSH_PLAIN_FIXED && size <= MP_CONTEXT_MAX) {
		memset(&p, 0, sizeof(p));
		memcpy(&p.epoch, data, 8);
		memcpy(&p.reg_id, data + 8, 4);
		memcpy(&p.seq, data + 12, 4);
		memcpy(&p.total, data + 16, 4);
		p.ctx_len = 3;
		memcpy(p.ctx, "ctx", 3);
		n = proto_push_seal(&p, push_key, data + 4, out, sizeof(out));
		if (n > 0)
			(void)mpc_handle_datagram(client, out, (size_t)n, 4);
	}
	return 0;
}
