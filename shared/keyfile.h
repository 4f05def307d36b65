/*
 * keyfile.h: the server key file with key ids, and the token text
 * ("ID:HEX") a client is given, mailpushctl(8) and mailpushd.conf(5).
 *
 * The key file holds the current key and, after a rollover, the previous
 * one with the time it was retired:
 *
 *	key 2 <64 hex digits>
 *	previous 1 <64 hex digits> <retired: seconds since the epoch>
 *
 * Lines starting with '#' and empty lines are ignored.  A file that holds
 * only 64 hex digits (what genkey wrote before key ids) is key 1.  Ids are
 * 1..255; after 255 comes 1 again.
 */
#ifndef MP_KEYFILE_H
#define MP_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#include "mailpush.h"

#define KEYFILE_MAX		1024	/* bytes; a file is about 190 */
/* "255:" and 64 hex digits */
#define KEYFILE_TOKEN_TEXT_MAX	(4 + 2 * MP_TOKEN_LEN)

struct mp_keys {
	uint8_t		cur_id;			/* 1..255 */
	uint8_t		cur[MP_KEY_LEN];
	uint8_t		prev_id;		/* 0: no previous key */
	uint8_t		prev[MP_KEY_LEN];
	int64_t		prev_retired;		/* seconds since the epoch */
};

/* Parse a key file's text; 0, or -1 with a static reason in *why. */
int	keyfile_parse(const char *text, size_t len, struct mp_keys *,
	    const char **why);
/* Read and parse from an open descriptor (to its end; not closed). */
int	keyfile_read_fd(int fd, struct mp_keys *, const char **why);
/* Open, read and parse `path'. */
int	keyfile_read(const char *path, struct mp_keys *, const char **why);
/* The file's text for `keys'; -1 if buf is too small. */
int	keyfile_format(const struct mp_keys *, char *buf, size_t len);

/*
 * The key with this id, if it is accepted at `now' (seconds): the current
 * key always, the previous one until prev_retired + grace.  NULL if not.
 */
const uint8_t *keyfile_key(const struct mp_keys *, unsigned id, int64_t now,
	    uint64_t grace_s);

/*
 * The one token computation for daemon, mailpushctl and provisioning:
 * token = HMAC-SHA256(key, normalised user), with the current key; and its
 * text "ID:HEX" for a client (KEYFILE_TOKEN_TEXT_MAX + 1 bytes).
 */
void	keyfile_token(const struct mp_keys *, const char *user, size_t len,
	    uint8_t token[MP_TOKEN_LEN]);
void	keyfile_token_text(unsigned id, const uint8_t token[MP_TOKEN_LEN],
	    char *out);
/*
 * Parse token text: "ID:HEX" or bare HEX (key 1, as tokens were printed
 * before key ids), optional trailing newline.  0, or -1 with *why.
 */
int	keyfile_token_parse(const char *text, uint8_t *id,
	    uint8_t token[MP_TOKEN_LEN], const char **why);

/* The same from a file of at most 256 bytes (a token file, mode 0600). */
int	keyfile_token_read(const char *path, uint8_t *id,
	    uint8_t token[MP_TOKEN_LEN], const char **why);

#endif
