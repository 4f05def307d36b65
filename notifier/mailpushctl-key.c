/*
 * mailpushctl-key.c: mailpushctl's key and token commands, which work on
 * the key file itself (keyfile.h), not through the daemon:
 *
 *	token USER	the user's token of the current key, "ID:HEX"
 *	genkey [-f]	a first key file (key 1), -f replaces every key
 *	key show	ids, and how long the previous key is still accepted
 *	key rotate	a new current key; the old one becomes the previous
 *			key, accepted for [mailpushd] key_grace
 *	key retire	forget the previous key at once
 *
 * Every write makes a temporary file beside the key file, mode 0600 and
 * owned by the daemon's user when root runs this, and renames (or for a
 * first key links) it into place, then syncs the directory.  rotate and
 * retire then ask a running daemon to reload.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "keyfile.h"
#include "mailpushctl.h"
#include "user.h"

/* Read the key file; an exit status on failure, with the reason printed. */
static int
key_load(const struct mp_config *cfg, struct mp_keys *k)
{
	const char *why;
	int e;

	errno = 0;
	if (keyfile_read(cfg->key_file, k, &why) == 0)
		return 0;
	e = errno;
	if (cfg->auth == AUTH_NONE && e == ENOENT) {
		/* the daemon's key is random and only in its memory */
		fprintf(stderr, "mailpushctl: key file %s: %s: with auth = "
		    "none and no key file mailpushd uses a random key that "
		    "nobody else knows; create the key file with mailpushctl "
		    "genkey (and restart mailpushd) to hand out tokens\n",
		    cfg->key_file, why);
		return EX_CONFIG;
	}
	fprintf(stderr, "mailpushctl: key file %s: %s%s\n", cfg->key_file, why,
	    e == ENOENT ? " (create it with mailpushctl genkey)" : "");
	return e == EACCES || e == EPERM ? EX_NOPERM : EX_CONFIG;
}

int
cmd_token(const struct mp_config *cfg, const char *name, int json)
{
	uint8_t token[MP_TOKEN_LEN];
	char user[MP_USER_MAX + 1], text[KEYFILE_TOKEN_TEXT_MAX + 1];
	struct mp_keys k;
	const char *why;
	unsigned id;
	int rc;

	if (user_normalize(&cfg->names, name, strlen(name), user, &why) != 0) {
		fprintf(stderr, "mailpushctl: bad user name: %s\n", why);
		return EX_DATAERR;
	}
	if ((rc = key_load(cfg, &k)) != 0)
		return rc;
	keyfile_token(&k, user, strlen(user), token);
	id = k.cur_id;
	keyfile_token_text(id, token, text);
	sodium_memzero(&k, sizeof(k));
	sodium_memzero(token, sizeof(token));
	if (json) {
		printf("{\"user\":");
		json_str(stdout, user);
		printf(",\"key_id\":%u,\"token\":\"%s\"}\n", id, text);
	} else
		printf("%s\n", text);
	sodium_memzero(text, sizeof(text));
	return fflush(stdout) == 0 ? 0 : EX_IOERR;
}

/*
 * Write `keys' to the key file: replace it, or (replace 0) create it only
 * if it does not exist (link(2) fails then, so the check cannot race).
 */
static int
key_write(const struct mp_config *cfg, const struct mp_keys *keys,
    int replace, struct passwd **owner)
{
	char text[KEYFILE_MAX], tmp[PATH_MAX], dir[PATH_MAX];
	struct passwd *pw = NULL;
	int fd, dfd, rc = 0, len;
	ssize_t w = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", cfg->key_file) >=
	    (int)sizeof(tmp)) {
		fprintf(stderr, "mailpushctl: %s: name too long\n",
		    cfg->key_file);
		return EX_CANTCREAT;
	}
	if (geteuid() == 0 && cfg->user[0] != '\0' &&
	    (pw = getpwnam(cfg->user)) == NULL) {
		fprintf(stderr, "mailpushctl: [mailpushd] user %s does not "
		    "exist; cannot give it the key\n", cfg->user);
		return EX_CONFIG;
	}
	*owner = pw;
	if ((len = keyfile_format(keys, text, sizeof(text))) < 0)
		abort();	/* KEYFILE_MAX holds two keys */
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		int e = errno;	/* fprintf may change errno (R15-8) */

		fprintf(stderr, "mailpushctl: cannot create %s: %s\n", tmp,
		    strerror(e));
		sodium_memzero(text, sizeof(text));
		return e == EACCES ? EX_NOPERM : EX_CANTCREAT;
	}
	if (fchmod(fd, 0600) == -1 ||
	    (pw != NULL && fchown(fd, pw->pw_uid, pw->pw_gid) == -1) ||
	    (w = write(fd, text, (size_t)len)) == -1 || fsync(fd) != 0) {
		fprintf(stderr, "mailpushctl: %s: %s\n", tmp, strerror(errno));
		rc = EX_IOERR;
	} else if (w != len) {	/* sets no errno: say what happened */
		fprintf(stderr, "mailpushctl: %s: short write (%zd of %d "
		    "bytes; disk full or file size limit?)\n", tmp, w, len);
		rc = EX_IOERR;
	}
	sodium_memzero(text, sizeof(text));
	if (close(fd) != 0 && rc == 0) {
		fprintf(stderr, "mailpushctl: %s: %s\n", tmp, strerror(errno));
		rc = EX_IOERR;
	}
	if (rc == 0 && replace && rename(tmp, cfg->key_file) == -1) {
		fprintf(stderr, "mailpushctl: cannot rename %s to %s: %s\n",
		    tmp, cfg->key_file, strerror(errno));
		rc = EX_CANTCREAT;
	} else if (rc == 0 && !replace && link(tmp, cfg->key_file) == -1) {
		rc = errno == EEXIST ? -1 : EX_CANTCREAT;
		if (rc != -1)
			fprintf(stderr, "mailpushctl: cannot create %s: %s\n",
			    cfg->key_file, strerror(errno));
	}
	if (rc != 0 || !replace)
		unlink(tmp);
	if (rc != 0)
		return rc;
	snprintf(dir, sizeof(dir), "%s", cfg->key_file);
	if ((dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC))
	    != -1) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
}

int
cmd_genkey(const struct mp_config *cfg, int force, int json)
{
	struct mp_keys k;
	struct passwd *pw;
	int rc;

	if (!force && access(cfg->key_file, F_OK) == 0)
		goto exists;
	memset(&k, 0, sizeof(k));
	k.cur_id = 1;
	randombytes_buf(k.cur, sizeof(k.cur));
	rc = key_write(cfg, &k, force, &pw);
	sodium_memzero(&k, sizeof(k));
	if (rc == -1)
		goto exists;
	if (rc != 0)
		return rc;
	if (json) {
		printf("{\"key_file\":");
		json_str(stdout, cfg->key_file);
		printf(",\"key_id\":1,\"owner\":");
		if (pw != NULL)
			json_str(stdout, pw->pw_name);
		else
			printf("null");
		printf("}\n");
	} else
		printf("wrote a new key to %s%s%s\n", cfg->key_file,
		    pw != NULL ? ", owned by " : "", pw != NULL ?
		    pw->pw_name : "");
	return fflush(stdout) == 0 ? 0 : EX_IOERR;
exists:
	fprintf(stderr, "mailpushctl: %s exists; genkey -f replaces it (and "
	    "changes every user's token at once; mailpushctl key rotate "
	    "keeps the old tokens working for a while)\n", cfg->key_file);
	return EX_CANTCREAT;
}

/* Ask a running daemon to re-read the key file (not running: fine). */
static void
key_reload(const char *sock)
{
	int rc;

	fflush(stdout);
	if ((rc = ctl_request(sock, "reload")) == EX_UNAVAILABLE)
		fprintf(stderr, "mailpushctl: mailpushd is not running; it "
		    "reads the new key when it starts\n");
	else if (rc != 0)
		fprintf(stderr, "mailpushctl: the daemon did not reload; run "
		    "mailpushctl reload\n");
}

int
cmd_key(const struct mp_config *cfg, const char *sub, const char *sock,
    int json, int force)
{
	struct mp_keys k;
	struct passwd *pw;
	int64_t now = (int64_t)time(NULL), left = 0;
	unsigned old;
	int rc;

	if (strcmp(sub, "show") != 0 && strcmp(sub, "rotate") != 0 &&
	    strcmp(sub, "retire") != 0)
		return -1;
	if ((rc = key_load(cfg, &k)) != 0)
		return rc;
	if (strcmp(sub, "rotate") == 0) {
		/*
		 * The previous key, when still in its grace, would go: its
		 * tokens, held by clients not yet re-provisioned, would stop
		 * working at once (R15-7).  Only when asked for.
		 */
		left = k.prev_retired + (int64_t)(cfg->key_grace / 1000) - now;
		if (k.prev_id != 0 && left > 0 && !force) {
			fprintf(stderr, "mailpushctl: key %u is still accepted "
			    "for %" PRId64 " s (key_grace); rotating now would "
			    "refuse its tokens at once: retire it first "
			    "(mailpushctl key retire) or use mailpushctl key "
			    "rotate -f\n", k.prev_id, left);
			sodium_memzero(&k, sizeof(k));
			return EX_DATAERR;
		}
		if (k.prev_id != 0 && left > 0 && !json)
			printf("key %u dropped: its tokens are refused from "
			    "now on\n", k.prev_id);
		old = k.cur_id;
		memcpy(k.prev, k.cur, sizeof(k.prev));
		k.prev_id = k.cur_id;
		k.prev_retired = now;
		k.cur_id = (uint8_t)(k.cur_id % 255 + 1);
		randombytes_buf(k.cur, sizeof(k.cur));
		rc = key_write(cfg, &k, 1, &pw);
		if (rc == 0 && !json)
			printf("key %u is now current; tokens of key %u are "
			    "accepted until %" PRId64 " (key_grace %" PRIu64
			    " s)\n", k.cur_id, old, now +
			    (int64_t)(cfg->key_grace / 1000),
			    cfg->key_grace / 1000);
	} else if (strcmp(sub, "retire") == 0) {
		if (k.prev_id == 0) {
			fprintf(stderr, "mailpushctl: %s holds no previous "
			    "key\n", cfg->key_file);
			sodium_memzero(&k, sizeof(k));
			return EX_DATAERR;
		}
		old = k.prev_id;
		k.prev_id = 0;
		sodium_memzero(k.prev, sizeof(k.prev));
		rc = key_write(cfg, &k, 1, &pw);
		if (rc == 0 && !json)
			printf("key %u retired: only tokens of key %u are "
			    "accepted\n", old, k.cur_id);
	}
	if (k.prev_id != 0)
		left = k.prev_retired + (int64_t)(cfg->key_grace / 1000) - now;
	if (rc == 0 && json) {
		printf("{\"key_file\":");
		json_str(stdout, cfg->key_file);
		printf(",\"current\":%u,\"previous\":", k.cur_id);
		if (k.prev_id != 0)
			printf("%u,\"previous_retired\":%" PRId64
			    ",\"previous_accepted_for\":%" PRId64 "}\n",
			    k.prev_id, k.prev_retired, left > 0 ? left : 0);
		else
			printf("null}\n");
	} else if (rc == 0 && strcmp(sub, "show") == 0) {
		printf("current key: %u\n", k.cur_id);
		if (k.prev_id == 0)
			printf("previous key: none\n");
		else if (left > 0)
			printf("previous key: %u, retired at %" PRId64 ", "
			    "accepted for %" PRId64 " s more\n", k.prev_id,
			    k.prev_retired, left);
		else
			printf("previous key: %u, retired at %" PRId64 ", no "
			    "longer accepted\n", k.prev_id, k.prev_retired);
	}
	sodium_memzero(&k, sizeof(k));
	if (rc != 0)
		return rc == -1 ? EX_CANTCREAT : rc;
	if (strcmp(sub, "show") != 0)
		key_reload(sock);
	return fflush(stdout) == 0 ? 0 : EX_IOERR;
}
