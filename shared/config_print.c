/*
 * config_print.c: `mailpushd -n': every key with its effective value, in
 * a form config_load reads back to the same configuration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "config.h"
#include "config_int.h"
#include "log.h"

/*
 * A list, wrapped onto continuation lines so that no line comes near
 * inih's limit however long the list is.
 */
static void
print_list(FILE *fp, const char *name, const char *text)
{
	char *buf, *tok, *save = NULL;
	size_t col, first = strlen(name) + 2, tl;

	if ((buf = strdup(text)) == NULL)
		fatal("strdup");
	fprintf(fp, "%s =", name);
	col = first;
	for (tok = strtok_r(buf, " \t,", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t,", &save)) {
		tl = strlen(tok);
		if (col > first && col + 1 + tl > 72) {
			fprintf(fp, "\n\t%s", tok);
			col = 8 + tl;
		} else {
			fprintf(fp, " %s", tok);
			col += 1 + tl;
		}
	}
	free(buf);
}

/*
 * Every key with its effective value, in a form config_load reads back to
 * the same configuration.
 */
void
config_print(const struct mp_config *cfg, FILE *fp)
{
	const char *section = "", *text;
	size_t i;

	fprintf(fp, "; effective configuration from %s\n", cfg->path);
	for (i = 0; i < config_n_keys; i++) {
		const struct key *k = &config_keys[i];

		if (strcmp(section, k->section) != 0) {
			fprintf(fp, "%s[%s]\n", i ? "\n" : "", k->section);
			section = k->section;
		}
		text = cfg->text[i] ? cfg->text[i] : "";
		if (config_key_is_list(k))
			print_list(fp, k->name, text);
		else if (*text == ';' || *text == '\0')
			/* no space: inih would take " ;" for a comment */
			fprintf(fp, "%s =%s", k->name, text);
		else if (strlen(k->name) + 3 + strlen(text) > INI_MAX_LINE - 1)
			/* it was read from a line this long, or shorter */
			fprintf(fp, "%s=%s", k->name, text);
		else
			fprintf(fp, "%s = %s", k->name, text);
		if (strcmp(k->name, "max_registrations_per_client") == 0 &&
		    cfg->max_registrations_per_client == 0)
			fprintf(fp, "\t; means %d", MP_DEFAULT_REGS_PER_CLIENT);
		if (strcmp(k->name, "max_context_size") == 0 &&
		    cfg->max_context_size == 0)
			fprintf(fp, "\t; means %d", MP_DEFAULT_CONTEXT_SIZE);
		fputc('\n', fp);
	}
	for (i = 0; i < cfg->n_overrides; i++)
		fprintf(fp, "\n[user %s]\nmax_registrations_per_client = %u\n"
		    "max_context_size = %u\n", cfg->overrides[i].user,
		    cfg->overrides[i].max_registrations_per_client,
		    cfg->overrides[i].max_context_size);
}
