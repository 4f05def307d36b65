/*
 * fuzz_request.c: the server-side datagram decoders (REGISTER, REFRESH,
 * UNREGISTER, PUSH_ACK, PROBE, KEEPALIVE) and a re-encode of whatever
 * decodes.
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
	const char *why;
	uint32_t id;
	int n;

	if (proto_request_decode(data, size, &rq, &why) == 0) {
		/* what decodes re-encodes to the same bytes, MAC aside
		 * (padding is zeros: pad_to restores it) */
		rq.pad_to = (uint16_t)size;
		n = proto_request_encode(&rq, NULL, out, sizeof(out));
		if (n != (int)size || memcmp(out, data,
		    size - PROTO_MAC_LEN) != 0)
			abort();
		(void)proto_verify(data, size, token);
	}
	if (proto_keepalive_decode(data, size, &id, &why) == 0 &&
	    (proto_keepalive_encode(id, out, sizeof(out)) != (int)size ||
	    memcmp(out, data, size) != 0))
		abort();
	return 0;
}
