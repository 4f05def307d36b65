/*
 * cluster_ops.c: what mailpushctl shows of [cluster] (status, stats and
 * the Prometheus metrics), from the view cluster.c gives of its links
 * and the counters (mailpush-cluster(7), OPERATIONS).
 */
#include <inttypes.h>
#include <string.h>

#include <event2/buffer.h>

#include "cluster.h"
#include "jsonev.h"
#include "mailpushd.h"

static const char *
state_name(int s)
{
	static const char *const names[] = {
		"off", "down", "connecting", "ready",
	};

	return names[s];
}

static const char *
role_name(int role)
{
	return role == CLUSTER_BOTH ? "relay+notifier" :
	    role == CLUSTER_RELAY ? "relay" : "notifier";
}

static void
link_line(struct evbuffer *out, const char *name,
    const struct cluster_link_view *l, uint64_t now)
{
	evbuffer_add_printf(out, "redis %s link: %s for %" PRIu64 " ms%s%s\n",
	    name, state_name(l->state), now - l->since,
	    l->state != LINK_READY && l->error[0] ? ", last error: " : "",
	    l->state != LINK_READY ? l->error : "");
}

/* mailpushctl status */
void
cluster_status(struct evbuffer *out, int json)
{
	struct cluster_view v;
	uint64_t now = mpd_now();

	cluster_view(&v);
	if (v.role == CLUSTER_NONE) {
		if (json)
			evbuffer_add_printf(out, ",\"cluster\":null");
		return;
	}
	if (json) {
		evbuffer_add_printf(out, ",\"cluster\":{\"role\":\"%s\","
		    "\"redis\":", role_name(v.role));
		jsonev_str(out, mpd->cfg.redis);	/* a path: '"', '\' */
		evbuffer_add_printf(out, ",\"publish_link\":\"%s\","
		    "\"publish_link_for_ms\":%" PRIu64 ",\"subscribe_link\":"
		    "\"%s\",\"subscribe_link_for_ms\":%" PRIu64 ",\"lag_ms\":%"
		    PRId64 ",\"event_age_ms\":%" PRId64 ",\"buffer\":%zu,"
		    "\"buffer_max\":%zu,\"subscribers\":%lld}",
		    state_name(v.pub.state),
		    now - v.pub.since, state_name(v.sub.state),
		    v.sub.state != LINK_OFF ? now - v.sub.since : 0,
		    cluster_st.lag_ms, cluster_st.event_age_ms, relay_pending(),
		    relay_capacity(), v.subscribers);
		return;
	}
	evbuffer_add_printf(out, "cluster: %s, Redis %s, channel %s\n",
	    role_name(v.role), mpd->cfg.redis, mpd->cfg.cluster_channel);
	link_line(out, "publish", &v.pub, now);
	if (v.sub.state != LINK_OFF)
		link_line(out, "subscribe", &v.sub, now);
	if (cluster_st.lag_ms >= 0)
		evbuffer_add_printf(out, "lag: %" PRId64 " ms (own heartbeat "
		    "through Redis)\n", cluster_st.lag_ms);
	else
		evbuffer_add_printf(out, "lag: unknown\n");
	if (cluster_st.event_age_ms >= 0)
		evbuffer_add_printf(out, "last event age: %" PRId64 " ms\n",
		    cluster_st.event_age_ms);
	if (v.subscribers >= 0)
		evbuffer_add_printf(out, "subscribers on the channel: %lld\n",
		    v.subscribers);
	if (v.role & CLUSTER_RELAY)
		evbuffer_add_printf(out, "relay buffer: %zu of %zu events%s\n",
		    relay_pending(), relay_capacity(), v.waiting ?
		    " (waiting for the subscribers to come back)" : "");
}

/* mailpushctl stats: the cluster's counters, after the others */
size_t
cluster_metrics(struct metric *m, size_t max)
{
	const struct cluster_stats *s = &cluster_st;
	struct metric f[] = {
		{ "cluster_accepted", s->accepted },
		{ "cluster_held", s->held },
		{ "cluster_published", s->published },
		{ "cluster_republished", s->republished },
		{ "cluster_dropped", s->dropped },
		{ "cluster_publish_errors", s->publish_errors },
		{ "cluster_unheard", s->unheard },
		{ "cluster_received", s->received },
		{ "cluster_duplicates", s->duplicates },
		{ "cluster_gaps", s->gaps },
		{ "cluster_malformed", s->malformed },
		{ "cluster_oversized", s->oversized },
		{ "cluster_catchups", s->catchups },
		{ "cluster_catchup_pushes", s->catchup_pushes },
		{ "cluster_connects", s->connects },
		{ "cluster_disconnects", s->disconnects },
		{ "cluster_auth_failures", s->auth_failures },
		{ "cluster_buffer", relay_pending() },
		{ "cluster_buffer_peak", s->buffer_peak },
	};
	size_t n = sizeof(f) / sizeof(f[0]);

	if (cluster_role() == CLUSTER_NONE)
		return 0;
	if (n > max)
		n = max;
	memcpy(m, f, n * sizeof(f[0]));
	return n;
}

/* The counters as JSON members (after others) or text lines. */
void
cluster_stats(struct evbuffer *out, int json)
{
	struct metric f[CLUSTER_METRICS_MAX];
	size_t i, n = cluster_metrics(f, CLUSTER_METRICS_MAX);

	for (i = 0; i < n; i++)
		evbuffer_add_printf(out, json ? ",\"%s\":%" PRIu64 :
		    "%-24s %" PRIu64 "\n", f[i].name, f[i].v);
}
