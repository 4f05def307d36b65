/*
 * control_cmd.c: the commands of the control socket (mailpushctl(8)):
 * status, stats, list, drop and reload, each answered in text, JSON (-j)
 * or, for stats, the Prometheus format (-p).  control_handle takes one
 * request line and writes the whole answer; the socket is control.c.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "journal.h"
#include "log.h"
#include "mailpushd.h"
#include "user.h"

/* Output helpers */

/*
 * A name from a client (a mailbox) or the table (a user), safe to print:
 * in JSON a string with control characters escaped and bytes that are not
 * UTF-8 replaced by U+FFFD; in text, those as \xNN.
 */
static void
put_name(struct evbuffer *out, const char *name, int json)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t n;

	if (json)
		evbuffer_add(out, "\"", 1);
	while (*s != '\0') {
		if (*s >= 0x80) {
			if ((n = user_utf8_len(s, strlen((const char *)s))) != 0) {
				evbuffer_add(out, s, n);
				s += n;
			} else {
				evbuffer_add_printf(out, json ? "\\ufffd" :
				    "\\x%02x", *s);
				s++;
			}
			continue;
		}
		if (json && (*s == '"' || *s == '\\'))
			evbuffer_add_printf(out, "\\%c", *s);
		else if (*s < 0x20 || *s == 0x7f || (!json && *s == '\\'))
			evbuffer_add_printf(out, json ? "\\u%04x" : "\\x%02x",
			    *s);
		else
			evbuffer_add(out, s, 1);
		s++;
	}
	if (json)
		evbuffer_add(out, "\"", 1);
}

static void
json_str(struct evbuffer *out, const char *s)
{
	put_name(out, s, 1);
}

static const char *
state_name(const struct reg *r)
{
	switch (r->state) {
	case REG_ACTIVE:
		return "active";
	case REG_PUSHING:
		return "pushing";
	default:
		return "unreachable";
	}
}

struct count_arg {
	uint64_t	by_state[3];
};

static void
count_reg(struct reg *r, void *arg)
{
	struct count_arg *c = arg;

	c->by_state[r->state]++;
}

/* Returns the number of problems health.c found (0: healthy). */
static size_t
cmd_status(struct evbuffer *out, int json)
{
	uint32_t now = (uint32_t)(mpd->now_ms / 1000);
	size_t i, nl, problems;

	if (json) {
		evbuffer_add_printf(out, "{\"version\":\"%s\",\"pid\":%ld,"
		    "\"uptime\":%" PRIu32 ",\"registrations\":%zu,"
		    "\"users\":%zu,\"listeners\":[", MP_VERSION,
		    (long)getpid(), now - mpd->started, registry_count(),
		    registry_users());
		for (i = 0, nl = 0; i < mpd->n_listeners; i++) {
			if (!mpd->listeners[i].in_use)
				continue;
			if (nl++ > 0)
				evbuffer_add(out, ",", 1);
			json_str(out, mpd->listeners[i].conf.text);
		}
		evbuffer_add_printf(out, "],\"table_bytes\":%zu,"
		    "\"config\":", registry_memory());
		json_str(out, mpd->cfg.path);
		evbuffer_add_printf(out, ",\"event_socket\":");
		json_str(out, mpd->cfg.event_socket);
		evbuffer_add_printf(out, ",\"state_file\":");
		if (mpd->cfg.state_file[0] != '\0')
			json_str(out, mpd->cfg.state_file);
		else
			evbuffer_add_printf(out, "null");
		cluster_status(out, 1);
		journal_status_put(out, 1);
		evbuffer_add_printf(out, ",\"problems\":[");
		problems = health_report(out, 1);
		evbuffer_add_printf(out, "],\"healthy\":%s}\n",
		    problems == 0 ? "true" : "false");
		return problems;
	}
	evbuffer_add_printf(out, "mailpushd %s running, pid %ld, up %" PRIu32
	    "s\nconfiguration: %s\nregistrations: %zu for %zu users "
	    "(table %zu bytes)\n", MP_VERSION, (long)getpid(),
	    now - mpd->started, mpd->cfg.path, registry_count(),
	    registry_users(), registry_memory());
	for (i = 0; i < mpd->n_listeners; i++)
		if (mpd->listeners[i].in_use)
			evbuffer_add_printf(out, "listening on %s\n",
			    mpd->listeners[i].conf.text);
	evbuffer_add_printf(out, "event socket: %s%s\ncontrol socket: %s%s\n"
	    "state file: %s\n", mpd->cfg.event_socket,
	    health_socket_state(mpd->cfg.event_socket),
	    mpd->cfg.control_socket,
	    health_socket_state(mpd->cfg.control_socket),
	    mpd->cfg.state_file[0] != '\0' ? mpd->cfg.state_file : "none");
	cluster_status(out, 0);
	journal_status_put(out, 0);
	problems = health_report(out, 0);
	if (problems == 0)
		evbuffer_add_printf(out, "health: ok\n");
	else
		evbuffer_add_printf(out, "health: %zu problem%s\n", problems,
		    problems == 1 ? "" : "s");
	return problems;
}

/* Stable names of the refusal reasons for stats (mailpush-protocol(7)). */
static const char *const refusal_names[REASON_MAX + 1] = {
	"none", "auth", "stale", "too_many", "context_size", "table_full",
	"address_limit", "not_allowed", "unknown", "bad_request", "replay",
};

/* Output formats of a request: text, -j JSON, -p Prometheus (stats). */
#define FMT_TEXT	0
#define FMT_JSON	1
#define FMT_PROM	2

static void
cmd_stats(struct evbuffer *out, int fmt)
{
	const struct mp_stats *s = &mpd->stats;
	const struct provision_stats ps = provision_snapshot();
	struct count_arg c;
	const struct journal_status *js = journal_stats();
	struct metric f[] = {
		{ "events_in", s->events_in },
		{ "events_malformed", s->events_bad },
		{ "events_denied", s->events_denied },
		{ "trust_refused", trust_refusals() },
		{ "provision_answered", ps.answered },
		{ "provision_denied", ps.denied },
		{ "provision_malformed", ps.bad },
		{ "provision_timeouts", ps.timeouts },
		{ "provision_busy", ps.busy },
		{ "events_no_registration", s->events_no_user },
		{ "events_filtered", s->events_filtered },
		{ "datagrams_in", s->dgrams_in },
		{ "datagrams_malformed", s->dgrams_bad },
		{ "datagrams_unexpected", s->dgrams_unknown },
		{ "bytes_in", s->bytes_in },
		{ "bytes_out", s->bytes_out },
		{ "cookies_sent", s->cookies_sent },
		{ "keepalives", s->keepalives },
		{ "keepalives_unknown", s->keepalives_unknown },
		{ "kicks_sent", s->kicks },
		{ "probes", s->probes },
		{ "replays", s->replays },
		{ "owed_pushes_sent", s->owed_sent },
		{ "tombstones", registry_tombs() },
		{ "registered", s->registered },
		{ "refreshed", s->refreshed },
		{ "replaced", s->replaced },
		{ "unregistered", s->unregistered },
		{ "expired", s->expired },
		{ "evicted", s->evicted },
		{ "dropped", s->dropped },
		{ "pushes", s->pushes },
		{ "retransmits", s->retransmits },
		{ "acks", s->acks },
		{ "acks_stale", s->acks_stale },
		{ "pushes_given_up", s->push_given_up },
		{ "send_errors", s->send_errors },
		{ "registrations", registry_count() },
		{ "registrations_peak", s->peak_registrations },
		{ "state_write_errors", js->write_errors },
		{ "state_snapshots", js->snapshots },
		{ "state_snapshot_errors", js->snapshot_errors },
		{ "journal_commits", js->commits },
		{ "journal_records", js->records },
		{ "journal_bytes", js->bytes },
		{ "replies_held", js->held },
		{ "replies_held_dropped", js->held_dropped },
		{ "state_loop_max_us", js->loop_max_us },
		{ "state_loop_steps", js->loop_steps },
		{ "state_loop_slow_steps", js->loop_slow_steps },
	};
	static const char *const by_state[3] = {
		"registrations_active", "registrations_pushing",
		"registrations_unreachable",
	};
	static char refused[REASON_MAX + 1][40];
	struct metric all[sizeof(f) / sizeof(f[0]) + 3 + REASON_MAX +
	    CLUSTER_METRICS_MAX];
	size_t i, n, nf = sizeof(f) / sizeof(f[0]);

	memset(&c, 0, sizeof(c));
	registry_foreach(count_reg, &c);
	if (fmt == FMT_JSON) {
		evbuffer_add(out, "{", 1);
		for (i = 0; i < nf; i++)
			evbuffer_add_printf(out, "%s\"%s\":%" PRIu64,
			    i ? "," : "", f[i].name, f[i].v);
		cluster_stats(out, 1);
		evbuffer_add_printf(out, ",\"registrations_active\":%" PRIu64
		    ",\"registrations_pushing\":%" PRIu64
		    ",\"registrations_unreachable\":%" PRIu64 ",\"refused\":{",
		    c.by_state[0], c.by_state[1], c.by_state[2]);
		for (i = 1; i <= REASON_MAX; i++)
			evbuffer_add_printf(out, "%s\"%s\":%" PRIu64,
			    i > 1 ? "," : "", refusal_names[i], s->refused[i]);
		evbuffer_add_printf(out, "}}\n");
		return;
	}
	memcpy(all, f, sizeof(f));
	n = nf;
	for (i = 0; i < 3; i++) {
		all[n].name = by_state[i];
		all[n++].v = c.by_state[i];
	}
	for (i = 1; i <= REASON_MAX; i++) {
		snprintf(refused[i], sizeof(refused[i]), "refused_%s",
		    refusal_names[i]);
		all[n].name = refused[i];
		all[n++].v = s->refused[i];
	}
	n += cluster_metrics(all + n, CLUSTER_METRICS_MAX);
	if (fmt == FMT_PROM) {
		struct metrics_info info;
		struct evbuffer *scratch = evbuffer_new();

		if (scratch == NULL)
			fatal("evbuffer_new");
		info.version = MP_VERSION;
		info.started = mpd->started;
		info.users = registry_users();
		info.table_bytes = registry_memory();
		info.problems = health_report(scratch, 0);
		evbuffer_free(scratch);
		metrics_prometheus(out, all, n, &info);
	} else
		metrics_text(out, all, n);
}

struct list_arg {
	struct evbuffer	*out;
	int		 json;
	size_t		 n;
};

/* A time in list output: ISO 8601 UTC, or "never" (null in JSON). */
static void
put_time(struct evbuffer *out, uint32_t t, int json)
{
	char buf[32];
	time_t tt = t;

	if (t == 0) {
		evbuffer_add_printf(out, json ? "null" : "never");
		return;
	}
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", gmtime(&tt));
	evbuffer_add_printf(out, json ? "\"%s\"" : "%s", buf);
}

static void
list_one(struct reg *r, struct list_arg *a)
{
	int64_t now = (int64_t)(mpd->now_ms / 1000);
	int64_t age = now - (int64_t)r->created;
	int64_t left = (int64_t)r->expires - now;
	uint32_t lp = (uint32_t)(r->last_push_ms / 1000);
	size_t i;

	if (a->json) {
		evbuffer_add_printf(a->out, "%s{\"user\":", a->n ? "," : "");
		json_str(a->out, r->user->name);
		evbuffer_add_printf(a->out, ",\"id\":\"%08" PRIx32 "\","
		    "\"address\":\"%s\",\"age\":%" PRId64 ",\"expires_in\":%"
		    PRId64 ",\"state\":\"%s\",\"seq\":%" PRIu32 ",\"total\":%"
		    PRIu32 ",\"acked_total\":%" PRIu32 ",\"last_push\":",
		    r->id, addr_str(&r->addr), age, left, state_name(r),
		    r->seq, r->total, r->acked_total);
		put_time(a->out, lp, 1);
		evbuffer_add_printf(a->out, ",\"last_ack\":");
		put_time(a->out, r->last_ack, 1);
		evbuffer_add_printf(a->out, ",\"failures\":%" PRIu32 ","
		    "\"context_bytes\":%u,\"mailboxes\":", r->failures,
		    r->ctx_len);
		if (r->mailboxes == NULL)
			evbuffer_add_printf(a->out, "null");
		else {
			evbuffer_add(a->out, "[", 1);
			for (i = 0; i < r->mailboxes->n; i++) {
				if (i)
					evbuffer_add(a->out, ",", 1);
				json_str(a->out, r->mailboxes->names[i]);
			}
			evbuffer_add(a->out, "]", 1);
		}
		evbuffer_add(a->out, "}", 1);
	} else {
		evbuffer_add_printf(a->out, "%s %08" PRIx32 " %s %s age %" PRId64
		    "s expires in %" PRId64 "s seq %" PRIu32 " total %" PRIu32
		    " last push ", r->user->name, r->id, addr_str(&r->addr),
		    state_name(r), age, left, r->seq, r->total);
		put_time(a->out, lp, 0);
		evbuffer_add_printf(a->out, " last ack ");
		put_time(a->out, r->last_ack, 0);
		evbuffer_add_printf(a->out, " failures %" PRIu32, r->failures);
		if (r->mailboxes != NULL) {
			evbuffer_add_printf(a->out, " mailboxes ");
			for (i = 0; i < r->mailboxes->n; i++) {
				if (i)
					evbuffer_add(a->out, ",", 1);
				put_name(a->out, r->mailboxes->names[i], 0);
			}
		}
		evbuffer_add(a->out, "\n", 1);
	}
	a->n++;
}

static void
list_cb(struct reg *r, void *arg)
{
	list_one(r, arg);
}

static int
cmd_list(struct evbuffer *out, int json, const char *who, char *err,
    size_t errlen)
{
	struct list_arg a = { out, json, 0 };
	char user[MP_USER_MAX + 1];
	const char *why;

	if (who != NULL && user_normalize(&mpd->cfg.names, who, strlen(who),
	    user, &why) != 0) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	if (json)
		evbuffer_add(out, "[", 1);
	if (who != NULL) {
		struct mp_user *u;
		struct reg *r;

		if ((u = registry_user(user, 0)) != NULL)
			for (r = u->regs; r != NULL; r = r->user_next)
				list_one(r, &a);
	} else
		registry_foreach(list_cb, &a);
	if (json)
		evbuffer_add(out, "]\n", 2);
	else if (a.n == 0)
		evbuffer_add_printf(out, "no registrations\n");
	return 0;
}

static int
cmd_drop(struct evbuffer *out, int json, const char *who, const char *id,
    char *err, size_t errlen)
{
	char user[MP_USER_MAX + 1];
	const char *why;
	struct mp_user *u;
	struct reg *r, *next;
	unsigned long want = 0;
	size_t n = 0, left;
	char *end;

	if (user_normalize(&mpd->cfg.names, who, strlen(who), user, &why)
	    != 0) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	if (id != NULL) {
		errno = 0;
		want = strtoul(id, &end, 16);
		if (*id == '\0' || *end != '\0' || errno != 0 || want == 0 ||
		    want > UINT32_MAX) {
			snprintf(err, errlen, "bad registration id \"%.16s\" "
			    "(8 hexadecimal digits, as list shows)", id);
			return -1;
		}
	}
	if ((u = registry_user(user, 0)) == NULL) {
		snprintf(err, errlen, "no registrations for %s", user);
		return -1;
	}
	/* Removing a user's last registration frees the user: count first. */
	for (left = u->n_regs, r = u->regs; left > 0; left--, r = next) {
		next = r->user_next;
		if (want != 0 && r->id != want)
			continue;
		n++;
		mpd->stats.dropped++;
		log_info("control: dropped registration %08" PRIx32 " of %s "
		    "at %s", r->id, user, addr_str(&r->addr));
		registry_remove(r, "dropped");
	}
	if (n == 0) {
		snprintf(err, errlen, "%s has no registration %08lx", user,
		    want);
		return -1;
	}
	if (json) {
		evbuffer_add_printf(out, "{\"user\":");
		json_str(out, user);
		evbuffer_add_printf(out, ",\"dropped\":%zu}\n", n);
	} else
		evbuffer_add_printf(out, "dropped %zu registration%s of %s\n",
		    n, n == 1 ? "" : "s", user);
	return 0;
}

static int
cmd_reload(struct evbuffer *out, int json, char *err, size_t errlen)
{
	log_info("control: reload requested");
	if (mpd_reload() != 0) {
		snprintf(err, errlen, "reload failed: %s; the old "
		    "configuration stays in force", mpd_reload_error());
		return -1;
	}
	if (json) {
		evbuffer_add_printf(out, "{\"reloaded\":");
		json_str(out, mpd->cfg.path);
		evbuffer_add_printf(out, ",\"registrations\":%zu}\n",
		    registry_count());
	} else
		evbuffer_add_printf(out, "reloaded %s: %zu registrations "
		    "kept\n", mpd->cfg.path, registry_count());
	return 0;
}

#define CONTROL_ARGS_MAX	3

/*
 * One request line (NUL-terminated, without its newline; it is cut into
 * words in place) and its whole answer appended to out.  Also what the
 * control fuzz target drives.
 */
void
control_handle(char *line, struct evbuffer *out)
{
	struct evbuffer *body = evbuffer_new();
	char *argv[CONTROL_ARGS_MAX], *save = NULL, *tok, err[512] = "";
	int argc = 0, json = 0, rc = 0, extra = 0, fmt = FMT_TEXT;
	size_t problems = 0;

	if (body == NULL)
		fatal("evbuffer_new");
	for (tok = strtok_r(line, " \t\r", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t\r", &save)) {
		if (argc == 0 && fmt == FMT_TEXT && strcmp(tok, "-j") == 0)
			json = 1, fmt = FMT_JSON;
		else if (argc == 0 && fmt == FMT_TEXT && strcmp(tok, "-p") == 0)
			fmt = FMT_PROM;
		else if (argc < CONTROL_ARGS_MAX)
			argv[argc++] = tok;
		else
			extra = 1;
	}
	mpd_now();
	if (argc == 0) {
		snprintf(err, sizeof(err), "empty request");
		rc = -1;
	} else if (extra) {
		snprintf(err, sizeof(err), "too many arguments to \"%.32s\"",
		    argv[0]);
		rc = -1;
	} else if (fmt == FMT_PROM && strcmp(argv[0], "stats") != 0) {
		snprintf(err, sizeof(err), "-p (Prometheus) is for stats only");
		rc = -1;
	} else if (strcmp(argv[0], "status") == 0 && argc == 1)
		problems = cmd_status(body, json);
	else if (strcmp(argv[0], "stats") == 0 && argc == 1)
		cmd_stats(body, fmt);
	else if (strcmp(argv[0], "list") == 0 && argc <= 2)
		rc = cmd_list(body, json, argc == 2 ? argv[1] : NULL, err,
		    sizeof(err));
	else if (strcmp(argv[0], "drop") == 0 && argc >= 2)
		rc = cmd_drop(body, json, argv[1], argc == 3 ? argv[2] : NULL,
		    err, sizeof(err));
	else if (strcmp(argv[0], "reload") == 0 && argc == 1)
		rc = cmd_reload(body, json, err, sizeof(err));
	else {
		snprintf(err, sizeof(err), "unknown request \"%.64s\" or "
		    "wrong number of arguments", argv[0]);
		rc = -1;
	}
	if (rc == 0) {
		/* "warn" (status only): the body follows, problems listed */
		if (problems > 0)
			evbuffer_add_printf(out, "warn: %zu problem%s\n",
			    problems, problems == 1 ? "" : "s");
		else
			evbuffer_add_printf(out, "ok\n");
		evbuffer_add_buffer(out, body);
	} else
		evbuffer_add_printf(out, "error: %s\n", err);
	evbuffer_free(body);
	push_flush();
}
