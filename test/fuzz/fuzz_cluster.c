/*
 * fuzz_cluster.c: the decoder of [cluster] channel messages
 * (notifier/cluster.h, mailpush-cluster(7)): what decodes encodes back to
 * the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "fuzz_depth.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cmsg m;
	uint8_t out[CMSG_MAX_LEN];
	const char *why;
	int n;

	if (cmsg_decode(data, size, &m, &why) != 0)
		return 0;
	fuzz_deep();
	if (size > CMSG_MAX_LEN)
		abort();
	n = cmsg_encode(&m, out, sizeof(out));
	if (n != (int)size || memcmp(out, data, size) != 0)
		abort();
	return 0;
}
