/*
 * fuzz_imap.c: the client's reader of the IMAP answer to GETMETADATA
 * (client/provision.c, mpc_provision_complete and mpc_provision_parse), fed
 * as a broken or hostile IMAP server might send it.  A hang (R15-1: a lone
 * CR spun the lexer) shows as libFuzzer's timeout.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_depth.h"
#include "provision.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mpc_provision pv;
	char err[512];
	int done;

	/* mpc_provision_fetch reads at most 16384 bytes */
	if (size > 16384)
		return 0;
	done = mpc_provision_complete((const char *)data, size);
	if (done != 0 && done != 1)
		abort();
	memset(&pv, 0, sizeof(pv));
	err[0] = '\0';
	if (mpc_provision_parse((const char *)data, size, &pv, err,
	    sizeof(err)) == 0) {
		fuzz_deep();	/* a token and a user were read */
		if (pv.user[0] == '\0' || memchr(pv.user, '\0',
		    sizeof(pv.user)) == NULL || memchr(pv.servers, '\0',
		    sizeof(pv.servers)) == NULL)
			abort();
	} else if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
		abort();	/* every refusal says why */
	return 0;
}
