/*
 * metrics.c: the counters of `mailpushctl stats' as aligned text and in
 * the Prometheus text exposition format (`mailpushctl stats -o
 * prometheus', for node-exporter's textfile collector).
 *
 * control.c collects the (name, value) pairs; this file only formats
 * them.  Prometheus names: the mailpush_ prefix, base units (bytes,
 * seconds), `_total' on counters, no per-user labels (the number of users
 * is unbounded; the refusal reason and registration state are small fixed
 * sets and become labels).  Every name of the text output is a counter
 * unless metrics_gauges lists it: a new gauge must be added there.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "mailpushd.h"

/* Text: one "name value" line each, the values in one column. */
void
metrics_text(struct evbuffer *out, const struct metric *m, size_t n)
{
	size_t i, w = 0;

	for (i = 0; i < n; i++)
		if (strlen(m[i].name) > w)
			w = strlen(m[i].name);
	for (i = 0; i < n; i++)
		evbuffer_add_printf(out, "%-*s %" PRIu64 "\n", (int)w,
		    m[i].name, m[i].v);
}

/* Names (of the text output) that are gauges, not counters. */
static const char *const metrics_gauges[] = {
	"registrations", "registrations_peak", "tombstones", "cluster_buffer",
	"cluster_buffer_peak", "state_loop_max_us", NULL,
};

/* Better names and help texts where the text name is not enough. */
static const struct {
	const char	*name, *prom, *help;
} metrics_known[] = {
	{ "events_in", "mailpush_events_received_total",
	    "Events received on the event socket." },
	{ "events_malformed", "mailpush_events_malformed_total",
	    "Event datagrams that were not valid events." },
	{ "events_denied", "mailpush_events_denied_total",
	    "Events refused because of the sender's uid." },
	{ "events_no_registration", "mailpush_events_no_registration_total",
	    "Events for users with no registration." },
	{ "bytes_in", "mailpush_udp_received_bytes_total",
	    "Bytes received on the UDP listeners." },
	{ "bytes_out", "mailpush_udp_sent_bytes_total",
	    "Bytes sent from the UDP listeners." },
	{ "datagrams_in", "mailpush_udp_received_datagrams_total",
	    "Datagrams received on the UDP listeners." },
	{ "pushes", "mailpush_pushes_total",
	    "Pushes sent (first transmissions)." },
	{ "retransmits", "mailpush_retransmits_total",
	    "Pushes sent again for want of an acknowledgement." },
	{ "acks", "mailpush_acks_total", "Pushes acknowledged." },
	{ "pushes_given_up", "mailpush_pushes_given_up_total",
	    "Pushes that ran out of retries." },
	{ "send_errors", "mailpush_send_errors_total",
	    "UDP sends that failed." },
	{ "registrations", "mailpush_registrations",
	    "Registrations in the table." },
	{ "state_loop_max_us", "mailpush_state_loop_max_seconds",
	    "Longest time the event loop spent in one persistence step." },
	{ "registrations_peak", "mailpush_registrations_peak",
	    "Most registrations held at once since the start." },
};

static int
is_gauge(const char *name)
{
	size_t i;

	for (i = 0; metrics_gauges[i] != NULL; i++)
		if (strcmp(metrics_gauges[i], name) == 0)
			return 1;
	return 0;
}

static void
family(struct evbuffer *out, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

/*
 * Prometheus text format 0.0.4.  Names starting with "refused_" become
 * mailpush_registrations_refused_total{reason=...}, those starting with
 * "registrations_" and naming a state (active, pushing, unreachable)
 * mailpush_registrations_state{state=...}; they must come together, as
 * control.c lists them.
 */
void
metrics_prometheus(struct evbuffer *out, const struct metric *m, size_t n,
    const struct metrics_info *info)
{
	static const char *const states[] = {
		"active", "pushing", "unreachable", NULL,
	};
	char prom[128], help[160];
	const char *p, *h;
	size_t i, k, len;
	int refused = 0, state = 0;

	family(out, "mailpush_build_info", "gauge", "Version of mailpushd; "
	    "always 1.");
	evbuffer_add_printf(out, "mailpush_build_info{version=\"%s\"} 1\n",
	    info->version);
	family(out, "mailpush_start_time_seconds", "gauge", "When mailpushd "
	    "started, in seconds since the epoch.");
	evbuffer_add_printf(out, "mailpush_start_time_seconds %" PRIu64 "\n",
	    info->started);
	family(out, "mailpush_users", "gauge", "Users with at least one "
	    "registration.");
	evbuffer_add_printf(out, "mailpush_users %" PRIu64 "\n", info->users);
	family(out, "mailpush_registration_table_bytes", "gauge", "Memory "
	    "held by the registration table.");
	evbuffer_add_printf(out, "mailpush_registration_table_bytes %" PRIu64
	    "\n", info->table_bytes);
	family(out, "mailpush_health_problems", "gauge", "Problems "
	    "`mailpushctl status' reports (sockets, state file); 0 when "
	    "healthy.");
	evbuffer_add_printf(out, "mailpush_health_problems %" PRIu64 "\n",
	    info->problems);

	for (i = 0; i < n; i++) {
		const char *name = m[i].name;

		if (strncmp(name, "refused_", 8) == 0) {
			if (!refused++)
				family(out, "mailpush_registrations_refused_"
				    "total", "counter", "Registrations "
				    "refused, by reason (mailpush-protocol(7)).");
			evbuffer_add_printf(out, "mailpush_registrations_"
			    "refused_total{reason=\"%s\"} %" PRIu64 "\n",
			    name + 8, m[i].v);
			continue;
		}
		if (strncmp(name, "registrations_", 14) == 0) {
			for (k = 0; states[k] != NULL; k++)
				if (strcmp(name + 14, states[k]) == 0)
					break;
			if (states[k] != NULL) {
				if (!state++)
					family(out, "mailpush_registrations_"
					    "state", "gauge", "Registrations "
					    "in the table, by state.");
				evbuffer_add_printf(out, "mailpush_"
				    "registrations_state{state=\"%s\"} %"
				    PRIu64 "\n", states[k], m[i].v);
				continue;
			}
		}
		p = h = NULL;
		for (k = 0; k < sizeof(metrics_known) /
		    sizeof(metrics_known[0]); k++)
			if (strcmp(metrics_known[k].name, name) == 0) {
				p = metrics_known[k].prom;
				h = metrics_known[k].help;
			}
		if (p == NULL) {
			snprintf(prom, sizeof(prom), "mailpush_%s%s", name,
			    is_gauge(name) ? "" : "_total");
			p = prom;
		}
		if (h == NULL) {
			snprintf(help, sizeof(help), "The %s counter of "
			    "mailpushctl stats (mailpushctl(8)).", name);
			h = help;
		}
		family(out, p, is_gauge(name) ? "gauge" : "counter", h);
		len = strlen(name);
		if (len > 3 && strcmp(name + len - 3, "_us") == 0)
			/* microseconds in the text, seconds here */
			evbuffer_add_printf(out, "%s %" PRIu64 ".%06" PRIu64
			    "\n", p, m[i].v / 1000000, m[i].v % 1000000);
		else
			evbuffer_add_printf(out, "%s %" PRIu64 "\n", p,
			    m[i].v);
	}
}
