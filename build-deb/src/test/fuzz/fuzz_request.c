/*
 * fuzz_request.c: the server-side datagram decoders (REGISTER, REFRESH,
 * UNREGISTER, PUSH_ACK) and a re-encode of whatever decodes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mp_request rq;
	static uint8_t out[PROTO_MAX_DATAGRAM];
	static const uint8_t token[MP_TOKEN_LEN];
	struct mp_ack a;
	const char *why;
	int n;

	switch (proto_type(data, size)) {
	case PROTO_REGISTER:
	case PROTO_REFRESH:
	case PROTO_UNREGISTER:
		if (proto_request_decode(data, size, &rq, &why) == 0) {
			n = proto_request_encode(&rq, NULL, out, sizeof(out));
			/* what decodes re-encodes to the same bytes, MAC aside */
			if (n != (int)size || memcmp(out, data,
			    size - PROTO_MAC_LEN) != 0)
				abort();
			(void)proto_verify(data, size, token);
		}
		break;
	case PROTO_PUSH_ACK:
		if (proto_ack_decode(data, size, &a, &why) == 0 &&
		    proto_ack_encode(&a, NULL, out, sizeof(out)) != (int)size)
			abort();
		break;
	default:
		(void)proto_request_decode(data, size, &rq, &why);
		(void)proto_ack_decode(data, size, &a, &why);
		break;
	}
	return 0;
}
