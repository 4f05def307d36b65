/*
 * fuzz_reply.c: the client-side decoders (COOKIE, REGISTERED, REFUSED,
 * PUSH) and the client library's datagram handler, fed as if from the
 * server.
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
		if (n != (int)size || (rp.type == PROTO_COOKIE &&
		    memcmp(out, data, size) != 0))
			abort();
	}
	if (proto_push_decode(data, size, &p, &why) == 0) {
		n = proto_push_encode(&p, NULL, out, sizeof(out));
		/* bytes 30-31 are reserved: sent as zero, ignored */
		if (n != (int)size || memcmp(out, data, 30) != 0 ||
		    memcmp(out + 32, data + 32, size - 32 - PROTO_MAC_LEN))
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
	mpc_tick(client, 4);
	return 0;
}
