/*
 * fuzz_config.c: the INI loader, through a real file as mailpushd reads it.
 */
#include <fcntl.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz_depth.h"
#include "log.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char path[64];

static void
cleanup(void)
{
	unlink(path);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int fd;

	(void)argc;
	(void)argv;
	snprintf(path, sizeof(path), "/tmp/fuzz-config.XXXXXX");
	if ((fd = mkstemp(path)) == -1)
		abort();
	close(fd);
	atexit(cleanup);
	/* errors go to syslog (nowhere here), not to the fuzzer's stderr */
	log_init("fuzz_config", getenv("FUZZ_VERBOSE") != NULL, 0);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mp_config cfg;
	FILE *fp = fopen(path, "w");
	char *buf = NULL;
	size_t len = 0;

	if (fp == NULL)
		abort();
	fwrite(data, 1, size, fp);
	fclose(fp);
	/* the printout names the default user, which need not exist here */
	if (config_load(path, &cfg) == 0 &&
	    (cfg.user[0] == '\0' || getpwnam(cfg.user) != NULL)) {
		if (memchr(data, '=', size) != NULL)
			fuzz_deep();	/* a file with keys that loads */
		/* a file that loads prints a file that loads the same */
		FILE *mem = open_memstream(&buf, &len);
		struct mp_config again;

		config_print(&cfg, mem);
		fclose(mem);
		if ((fp = fopen(path, "w")) == NULL)
			abort();
		fwrite(buf, 1, len, fp);
		fclose(fp);
		if (config_load(path, &again) != 0)
			abort();
		if (config_max_regs(&cfg, "x") != config_max_regs(&again, "x") ||
		    cfg.n_listen != again.n_listen ||
		    cfg.max_registrations != again.max_registrations)
			abort();
		config_free(&again);
		free(buf);
	}
	config_free(&cfg);
	return 0;
}
