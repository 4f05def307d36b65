/*
 * config.c: mailpushd.conf on inih.
 *
 * Reading the file: one table (config_keys.c) holds every key with its
 * section, type, default and bounds; config_set.c sets a key from its
 * text; config_print.c prints the result for `mailpushd -n'.  Debian's
 * inih is built without INI_HANDLER_LINENO, so the file is fed through
 * ini_parse_stream with a reader that counts lines; that reader also
 * reports lines inih would silently skip or split (syntax errors,
 * over-long lines).  Parsing goes on after an error so every error in the
 * file is reported at once.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "config.h"
#include "config_int.h"
#include "log.h"
#include "logesc.h"

/*
 * Whether user and group names are looked up (getpwnam, getgrnam) while
 * loading.  mailpush-hook turns it off: it never uses them, and a lookup
 * per delivery is slow where accounts live in LDAP.
 */
int	config_lookup_accounts = 1;

/* Does the lenient reader's program use this key? */
static int
uses_key(const struct parse *p, const char *section, const char *key)
{
	size_t sl;
	int i;

	if (section == NULL || key == NULL)
		return 0;
	sl = strlen(section);
	for (i = 0; p->uses[i] != NULL; i++)
		if (strncmp(p->uses[i], section, sl) == 0 &&
		    p->uses[i][sl] == '.' && strcmp(p->uses[i] + sl + 1, key)
		    == 0)
			return 1;
	return 0;
}

void
config_perr(struct parse *p, const char *section, const char *key, const char *fmt,
    ...)
{
	char msg[512], line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (section != NULL && key != NULL)
		snprintf(line, sizeof(line), "%s:%d: [%s] %s: %s", p->path,
		    p->lineno, section, key, msg);
	else if (section != NULL)
		snprintf(line, sizeof(line), "%s:%d: [%s]: %s", p->path,
		    p->lineno, section, msg);
	else
		snprintf(line, sizeof(line), "%s:%d: %s", p->path, p->lineno,
		    msg);
	/* the file's bytes (names, values) are escaped for the log */
	if (p->who == NULL) {
		log_error("%s", log_str(line));
		p->errors++;
	} else if (uses_key(p, section, key))
		/* set_key stored nothing: the value stays the default */
		log_warnx("%s (%s uses the built-in default)", log_str(line),
		    p->who);
	else if (p->ignored++ == 0)
		snprintf(p->first_ignored, sizeof(p->first_ignored), "%s",
		    log_str(line));
}

/* Remember the text of a key for config_print; lists accumulate. */
static void
set_text(struct parse *p, size_t idx, const char *value, int append)
{
	char *old = p->cfg->text[idx], *t;
	size_t ol, vl = strlen(value);

	if (append && old != NULL && *old != '\0') {
		ol = strlen(old);
		if ((t = malloc(ol + 1 + vl + 1)) == NULL)
			fatal("malloc");
		memcpy(t, old, ol);
		t[ol] = ' ';
		memcpy(t + ol + 1, value, vl + 1);
	} else if ((t = strdup(value)) == NULL)
		fatal("strdup");
	free(old);
	p->cfg->text[idx] = t;
}

/* A [user NAME] header; `rest' is what follows "user". */
static void
override_section(struct parse *p, const char *rest)
{
	struct mp_config *cfg = p->cfg;
	struct config_override *o;
	char name[INI_MAX_LINE];
	size_t i, len;

	while (isspace((unsigned char)*rest))
		rest++;
	len = strlen(rest);
	while (len > 0 && isspace((unsigned char)rest[len - 1]))
		len--;
	if (len == 0 || len > MP_USER_MAX) {
		config_perr(p, p->section, NULL, "a user section must be [user NAME] "
		    "with a name of 1 to %d bytes", MP_USER_MAX);
		return;
	}
	snprintf(name, sizeof(name), "%.*s", (int)len, rest);
	for (i = 0; i < cfg->n_overrides; i++)
		if (strcmp(cfg->overrides[i].user, name) == 0) {
			config_perr(p, p->section, NULL, "duplicate section (first at "
			    "line %d)", p->override_line[i]);
			return;
		}
	if (cfg->n_overrides >= OVERRIDES_MAX) {
		config_perr(p, p->section, NULL, "at most %d [user NAME] sections",
		    OVERRIDES_MAX);
		return;
	}
	if ((o = reallocarray(cfg->overrides, cfg->n_overrides + 1,
	    sizeof(*o))) == NULL)
		fatal("reallocarray");
	cfg->overrides = o;
	o = &cfg->overrides[cfg->n_overrides];
	memset(o, 0, sizeof(*o));
	snprintf(o->user, sizeof(o->user), "%s", name);
	p->override_line[cfg->n_overrides] = p->lineno;
	p->override = (int)cfg->n_overrides++;
	p->sect_kind = SECT_USER;
}

/* A section header: `name' is what stands between the brackets. */
static void
section_header(struct parse *p, const char *name, size_t len)
{
	static const char *known[] = {
		"mailpushd", "events", "provision", "hook", "names", "limits",
		"cluster",
	};
	size_t i;

	snprintf(p->section, sizeof(p->section), "%.*s", (int)len, name);
	p->sect_kind = SECT_BAD;	/* its keys are dropped silently */
	p->override = -1;
	memset(p->oseen, 0, sizeof(p->oseen));
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(p->section, known[i]) == 0) {
			p->sect_kind = SECT_KNOWN;
			return;
		}
	if (strncmp(p->section, "user", 4) == 0 && (p->section[4] == '\0' ||
	    isspace((unsigned char)p->section[4]))) {
		override_section(p, p->section + 4);
		return;
	}
	config_perr(p, p->section, NULL, "unknown section (known: mailpushd, events, "
	    "provision, hook, names, limits, cluster, user NAME)");
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	const struct key *k;
	size_t idx;

	(void)section;		/* inih's copy may be truncated */
	if (p->continuation) {
		if ((k = p->last_key) == NULL)
			return 1;	/* its first line was refused */
		if (!config_key_is_list(k)) {
			config_perr(p, p->section, k->name, "continuation lines are "
			    "only allowed for lists");
			return 1;
		}
		if (config_set_key(p, k, p->cfg, value, 1) == 0)
			set_text(p, p->last_idx, value, 1);
		return 1;
	}
	p->last_key = NULL;
	switch (p->sect_kind) {
	case SECT_NONE:
		config_perr(p, NULL, NULL, "%s: key outside any section", name);
		return 1;
	case SECT_BAD:
		return 1;	/* the header was reported */
	default:
		break;
	}
	if (*name == '\0') {
		config_perr(p, p->section, NULL, "missing key name before '='");
		return 1;
	}
	if (p->sect_kind == SECT_USER) {
		k = config_find_key(config_override_keys, CONFIG_N_OVERRIDE_KEYS, NULL, name, &idx);
		if (k == NULL) {
			config_perr(p, p->section, name, "unknown key (a [user NAME] "
			    "section allows max_registrations_per_client and "
			    "max_context_size)");
			return 1;
		}
		if (p->oseen[idx]) {
			config_perr(p, p->section, name, "duplicate key (first at "
			    "line %d)", p->oseen[idx]);
			return 1;
		}
		p->oseen[idx] = p->lineno;
		p->last_key = k;
		config_set_key(p, k, &p->cfg->overrides[p->override], value, 0);
		return 1;
	}
	k = config_find_key(config_keys, config_n_keys, p->section, name, &idx);
	if (k == NULL) {
		config_perr(p, p->section, name, "unknown key");
		return 1;
	}
	if (p->seen[idx]) {
		config_perr(p, p->section, name, "duplicate key (first at line %d)",
		    p->seen[idx]);
		return 1;
	}
	p->seen[idx] = p->lineno;
	p->last_key = k;
	p->last_idx = idx;
	if (k->off == O(trusted_users))
		p->cfg->trusted_users_set = 1;
	if (config_set_key(p, k, p->cfg, value, 0) == 0)
		set_text(p, idx, value, 0);
	return 1;
}

/*
 * inih's find_chars_or_comment: the first of `chars', or an inline comment
 * (';' after white space), or the end.
 */
static const char *
inline_end(const char *s, const char *chars)
{
	int was_space = 0;

	while (*s != '\0' && strchr(chars, *s) == NULL &&
	    !(was_space && *s == ';')) {
		was_space = isspace((unsigned char)*s);
		s++;
	}
	return s;
}

/*
 * The reader inih calls for each line.  It counts lines, follows inih's
 * rules to know what inih will make of each line, and reports what inih
 * would skip, split or report only once: over-long lines, lines that are
 * neither blank, comment, section nor key = value, section headers.  A
 * refused line reaches inih as a blank line.
 */
static char *
reader(char *str, int num, void *stream)
{
	struct parse *p = stream;
	ssize_t n;
	char *line, *s;
	const char *e;
	/* our buffers hold what a library built with INI_MAX_LINE holds */
	int max = num < INI_MAX_LINE ? num : INI_MAX_LINE;

	if ((n = getline(&p->line, &p->linecap, p->fp)) == -1)
		return NULL;
	p->lineno++;
	p->continuation = 0;
	str[0] = '\0';
	line = p->line;
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (p->lineno == 1 && n >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
		line += 3;	/* a UTF-8 byte order mark */
		n -= 3;
	}
	if (strlen(line) != (size_t)n) {
		config_perr(p, NULL, NULL, "line contains a NUL byte");
		p->last_key = NULL;
		return str;
	}
	for (s = line; isspace((unsigned char)*s); s++)
		;
	if (*s == '\0' || *s == ';' || *s == '#')
		return str;	/* blank or comment, of any length */
	if (n > max - 1) {
		config_perr(p, NULL, NULL, "line longer than %d characters", max - 1);
		p->last_key = NULL;
		return str;
	}
	if (s > line && p->in_key) {
		/*
		 * inih: an indented line continues the previous value.  inih
		 * 55 keeps an inline comment there (later versions strip
		 * it): strip it here, as on the key's first line.
		 */
		p->continuation = 1;
		e = inline_end(s, "");
		n = e - line;
		while (n > 0 && isspace((unsigned char)line[n - 1]))
			n--;
		line[n] = '\0';
	} else if (*s == '[') {
		e = inline_end(s + 1, "]");
		if (*e != ']') {
			config_perr(p, NULL, NULL, "section header without ']'");
			/* drop its keys, as those of an unknown section */
			p->sect_kind = SECT_BAD;
			p->last_key = NULL;
			return str;
		}
		section_header(p, s + 1, (size_t)(e - s - 1));
		p->in_key = 0;
		p->last_key = NULL;
		for (e++; isspace((unsigned char)*e); e++)
			;
		if (*e != '\0' && *e != ';' && *e != '#')
			config_perr(p, p->section, NULL, "text after the section "
			    "header");
	} else {
		e = inline_end(s, "=:");
		if (*e != '=' && *e != ':') {
			config_perr(p, NULL, NULL, "expected [section] or key = "
			    "value, not \"%.40s\"", s);
			p->last_key = NULL;
			return str;
		}
		p->in_key = 1;
	}
	memcpy(str, line, (size_t)n + 1);
	return str;
}

static void
init_parse(struct parse *p, struct mp_config *cfg, const char *path)
{
	memset(p, 0, sizeof(*p));
	p->cfg = cfg;
	p->path = path;
	p->override = -1;
}

void
config_defaults(struct mp_config *cfg)
{
	struct parse p;
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	init_parse(&p, cfg, "(defaults)");
	for (i = 0; i < config_n_keys; i++) {
		if (config_set_key(&p, &config_keys[i], cfg, config_keys[i].def, 0)
		    != 0)
			abort();	/* a default that does not parse */
		if ((cfg->text[i] = strdup(config_keys[i].def)) == NULL)
			fatal("strdup");
	}
	snprintf(cfg->path, sizeof(cfg->path), "%s", "(built-in defaults)");
}

/*
 * Checks that need the whole file: names that depend on [names], wherever
 * in the file it was; keys that depend on each other.
 */
static void
finish(struct parse *p)
{
	struct mp_config *cfg = p->cfg;
	char out[MP_USER_MAX + 1], sect[MP_USER_MAX + 8];
	const char *why;
	size_t i, j, idx = config_key_index("mailpushd", "listen");

	for (i = 0; i < cfg->n_overrides; i++) {
		snprintf(sect, sizeof(sect), "user %s", cfg->overrides[i].user);
		p->lineno = p->override_line[i];
		if (user_normalize(&cfg->names, cfg->overrides[i].user,
		    strlen(cfg->overrides[i].user), out, &why) != 0) {
			config_perr(p, sect, NULL, "%s", why);
			continue;
		}
		snprintf(cfg->overrides[i].user, sizeof(out), "%s", out);
		for (j = 0; j < i; j++)
			if (strcmp(cfg->overrides[j].user, out) == 0) {
				config_perr(p, sect, NULL, "the same user (%s) as the "
				    "section at line %d", out,
				    p->override_line[j]);
				break;
			}
	}
	if (cfg->n_listen == 0 && strspn(cfg->text[idx], " \t,") ==
	    strlen(cfg->text[idx])) {
		p->lineno = p->seen[idx];
		config_perr(p, "mailpushd", "listen", "needs at least one address");
	}
	if (cfg->heartbeat_timeout <= cfg->heartbeat_interval) {
		p->lineno = p->seen[config_key_index("cluster", "heartbeat_timeout")];
		config_perr(p, "cluster", "heartbeat_timeout", "must be longer than "
		    "heartbeat_interval");
	}
	if (cfg->redis_reconnect_max < cfg->redis_reconnect_min) {
		p->lineno = p->seen[config_key_index("cluster", "reconnect_max")];
		config_perr(p, "cluster", "reconnect_max", "must not be shorter than "
		    "reconnect_min");
	}
	if (cfg->auth == AUTH_NONE && cfg->n_allow == 0) {
		p->lineno = p->seen[config_key_index("mailpushd", "auth")];
		config_perr(p, "mailpushd", "auth", "none requires an allow list of "
		    "trusted networks");
	}
}

static int
load(const char *path, struct mp_config *cfg, const char *who,
    const char *const *uses)
{
	struct parse p;
	int rc;

	config_defaults(cfg);
	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	init_parse(&p, cfg, path);
	p.who = who;
	p.uses = uses;
	if ((p.fp = fopen(path, "r")) == NULL) {
		if (who != NULL) {
			log_warnx("%s: cannot open configuration file: %s (%s "
			    "uses the built-in defaults)", path,
			    strerror(errno), who);
			return 0;
		}
		log_error("%s: cannot open configuration file: %s", path,
		    strerror(errno));
		return 1;
	}
	rc = ini_parse_stream(reader, &p, handler, &p);
	if (ferror(p.fp)) {
		log_raw(who ? MP_LOG_WARN : MP_LOG_ERR, "%s: read error: %s",
		    path, strerror(errno));
		if (who == NULL)
			p.errors++;
	}
	fclose(p.fp);
	free(p.line);
	if (rc == -2)
		fatalx("%s: out of memory", path);
	if (rc > 0 && p.errors == 0 && p.ignored == 0) {
		/* inih found an error the reader did not foresee */
		p.lineno = rc;
		config_perr(&p, NULL, NULL, "syntax error");
	}
	finish(&p);
	if (p.ignored > 0)
		log_warnx("%s: %d error%s in parts %s does not use, ignored "
		    "(first: %s)", path, p.ignored, p.ignored == 1 ? "" : "s",
		    who, p.first_ignored);
	return p.errors;
}

int
config_load(const char *path, struct mp_config *cfg)
{
	return load(path, cfg, NULL, NULL);
}

int
config_load_for(const char *path, struct mp_config *cfg, const char *who,
    const char *const *uses)
{
	return load(path, cfg, who, uses);
}

void
config_free(struct mp_config *cfg)
{
	size_t i;

	config_names_clear(cfg->allow_users, cfg->n_allow_users);
	config_names_clear(cfg->trusted_users, cfg->n_trusted_users);
	free(cfg->allow);
	free(cfg->overrides);
	for (i = 0; i < config_n_keys; i++)
		free(cfg->text[i]);
	memset(cfg, 0, sizeof(*cfg));
}

static const struct config_override *
find_override(const struct mp_config *cfg, const char *user)
{
	size_t i;

	for (i = 0; i < cfg->n_overrides; i++)
		if (strcmp(cfg->overrides[i].user, user) == 0)
			return &cfg->overrides[i];
	return NULL;
}

unsigned
config_max_regs(const struct mp_config *cfg, const char *user)
{
	const struct config_override *o = find_override(cfg, user);

	if (o != NULL && o->max_registrations_per_client != 0)
		return o->max_registrations_per_client;
	return cfg->max_registrations_per_client ?
	    cfg->max_registrations_per_client : MP_DEFAULT_REGS_PER_CLIENT;
}

unsigned
config_max_context(const struct mp_config *cfg, const char *user)
{
	const struct config_override *o = find_override(cfg, user);

	if (o != NULL && o->max_context_size != 0)
		return o->max_context_size;
	return cfg->max_context_size ? cfg->max_context_size :
	    MP_DEFAULT_CONTEXT_SIZE;
}

int
config_user_may_post(const struct mp_config *cfg, const char *user)
{
	size_t i;

	if (cfg->n_allow_users == 0)
		return 1;
	for (i = 0; i < cfg->n_allow_users; i++)
		if (strcmp(cfg->allow_users[i], user) == 0)
			return 1;
	return 0;
}

const char *
config_hook_socket(const struct mp_config *cfg)
{
	return cfg->hook_socket[0] ? cfg->hook_socket : cfg->event_socket;
}
