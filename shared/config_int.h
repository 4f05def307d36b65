/*
 * config_int.h: what the parts of the configuration reader share (the key
 * table's types, the parse state); not for the rest of the program, which
 * uses config.h.
 */
#ifndef MP_CONFIG_INT_H
#define MP_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <ini.h>

#include "config.h"

enum ktype {
	T_UINT, T_DURATION, T_SIZE, T_BOOL, T_MODE, T_USER, T_GROUP, T_PATH,
	T_SOCKPATH, T_LISTEN, T_CIDRS, T_NAMES, T_ENUM, T_DELIMS, T_SERVERS,
	T_WORD, T_REDIS,
};

struct key {
	const char	*section;
	const char	*name;
	enum ktype	 type;
	size_t		 off;
	const char	*def;
	uint64_t	 min, max;	/* T_UINT, T_DURATION (ms), T_SIZE;
					   T_PATH: min 1 means required */
	const char	*choices;	/* T_ENUM: "a|b" */
	const char	*help;
};

#define O(f)	offsetof(struct mp_config, f)

/* Room for the key table: one text[] slot per key. */
#define CONFIG_KEYS_MAX	(sizeof(((struct mp_config *)0)->text) / \
			 sizeof(char *))
#define CONFIG_N_OVERRIDE_KEYS	2

extern const struct key config_keys[];
extern const size_t config_n_keys;
extern const struct key config_override_keys[CONFIG_N_OVERRIDE_KEYS];

#define OVERRIDES_MAX	256
#define CONFIG_ALLOW_MAX 1024	/* networks in allow, users in allow_users */

/* What the current section is, as the reader saw its header. */
enum { SECT_NONE, SECT_KNOWN, SECT_USER, SECT_BAD };

struct parse {
	struct mp_config *cfg;
	const char	*path;
	FILE		*fp;
	int		 lineno;
	int		 errors;
	int		 seen[CONFIG_KEYS_MAX];	/* line of each key; 0: not yet */
	unsigned char	 full[CONFIG_KEYS_MAX];	/* list full, reported */

	/*
	 * The reader's model of inih's state.  inih keeps only 49 bytes of a
	 * section name and calls the handler for no empty section, so the
	 * reader, which sees every header, decides what the section is.
	 * last_key is the key a continuation line continues; NULL drops
	 * continuation lines (their first line was refused).
	 */
	int		 sect_kind;	/* SECT_* */
	char		 section[INI_MAX_LINE];	/* as written */
	int		 in_key;	/* inih has a previous key */
	int		 continuation;	/* this line continues a value */
	const struct key *last_key;
	size_t		 last_idx;
	int		 override;	/* index into overrides, or -1 */
	int		 oseen[CONFIG_N_OVERRIDE_KEYS];
	int		 override_line[OVERRIDES_MAX];

	char		*line;
	size_t		 linecap;

	/* config_load_for: a program that uses only some keys */
	const char	*who;		/* NULL: strict (the daemon) */
	const char *const *uses;	/* "section.key", NULL-terminated */
	int		 ignored;	/* errors elsewhere, not logged */
	char		 first_ignored[512];
};

/* config.c */
void	config_perr(struct parse *, const char *section, const char *key,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* config_keys.c */
const struct key *config_find_key(const struct key *table, size_t n,
	    const char *section, const char *name, size_t *idx);
size_t	config_key_index(const char *section, const char *name);
int	config_key_is_list(const struct key *);

/* config_set.c */
int	config_set_key(struct parse *, const struct key *, void *base,
	    const char *value, int append);
void	config_names_clear(char **, size_t);

#endif
