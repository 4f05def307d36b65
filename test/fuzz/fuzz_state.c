/*
 * fuzz_state.c: the snapshot and journal loader of mailpushd, with the
 * daemon's own registry behind it.  An input with its first byte even is
 * a snapshot; odd, the rest is the body of a journal (after a valid
 * header).  Whatever the files hold, loading either restores
 * registrations, discards a bad tail or moves the file aside; it never
 * crashes or leaks.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "fuzz_depth.h"
#include "journal.h"
#include "log.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char dir[64], path[96];

static void
cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	snprintf(dir, sizeof(dir), "/tmp/fuzz-state.XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/state", dir);
	atexit(cleanup);
	/* errors go to syslog (nowhere here), not to the fuzzer's stderr */
	log_init("fuzz_state", getenv("FUZZ_VERBOSE") != NULL, 0);
	if ((mpd = calloc(1, sizeof(*mpd))) == NULL)
		abort();
	config_defaults(&mpd->cfg);
	/* key 1 exists: registrations of its tokens are restored */
	mpd->keys.cur_id = PROTO_KEY_ID_DEFAULT;
	/* two listeners, never used for sending here */
	mpd->listeners[0].conf = mpd->cfg.listen[0];
	mpd->listeners[0].in_use = 1;
	mpd->listeners[0].fd = -1;
	mpd->listeners[1].conf = mpd->cfg.listen[1];
	mpd->listeners[1].in_use = 1;
	mpd->listeners[1].fd = -1;
	mpd->n_listeners = 2;
	mpd_now();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rec_hdr h = { REC_VERSION, REC_KIND_JOURNAL, 0, 1, 1, 0 };
	struct jbuf b = { NULL, 0, 0, 0 };
	struct state_info si;
	char jpath[128];
	struct dirent *de;
	FILE *fp;
	DIR *d;

	if (size > 0 && (data[0] & 1)) {
		snprintf(jpath, sizeof(jpath), "%s.journal.1", path);
		record_hdr(&b, &h);
		data++;
		size--;
	} else
		snprintf(jpath, sizeof(jpath), "%s", path);
	if ((fp = fopen(jpath, "w")) == NULL)
		abort();
	fwrite(b.p, 1, b.len, fp);
	fwrite(data, 1, size, fp);
	fclose(fp);
	jbuf_free(&b);
	/* a fixed clock so the same input behaves the same */
	mpd->now_ms = 1700000000000ULL;
	registry_init();
	(void)state_load(path, &si);
	if (registry_count() > 0)
		fuzz_deep();	/* past the checksums and the field checks */
	registry_free();
	/* the file, or what was moved aside, goes */
	if ((d = opendir(dir)) == NULL)
		abort();
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	return 0;
}
