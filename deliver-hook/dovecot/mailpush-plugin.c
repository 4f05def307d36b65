/*
 * mailpush-plugin.c: the "mailpush" push_notification driver for Dovecot 2.3.
 *
 *	push_notification_driver = mailpush:socket=PATH timeout=100ms \
 *	    events=MessageNew[,MessageAppend]
 *
 * The push_notification plugin calls a driver after a mailbox transaction
 * has been committed, that is after the message is stored, with the mailbox
 * and the UID it got.  For each committed transaction that saved messages
 * of a configured kind, this driver sends one event datagram (shared/event.h)
 * to mailpushd: the mail user's name, the mailbox vname, the number of such
 * messages and the highest UID among them.  An LMTP or LDA delivery is one
 * message per transaction, so one event with count 1.
 *
 * It never fails a delivery and never loses an event to its own settings:
 * a bad setting is logged as a warning and keeps its default (an unknown
 * setting or event name is ignored), so the events still go out; a failed
 * send logs one warning.  It waits at most `timeout' for room in the
 * daemon's queue; after a send timed out, later sends in the same process
 * wait at most MAILPUSH_STALLED_MS (a short, bounded wait, not none: a
 * burst that fills the queue for a moment loses no events) until one
 * succeeds again, so an LMTP session with many recipients is not held up
 * for a whole timeout per recipient while the daemon is stuck.  See
 * mailpush-dovecot(7).
 */
#include "lib.h"
#include "hash.h"
#include "settings-parser.h"
#include "mail-user.h"
#include "mail-storage.h"
#include "push-notification-drivers.h"
#include "push-notification-events.h"
#include "push-notification-event-message-common.h"
#include "push-notification-event-messagenew.h"
#include "push-notification-event-messageappend.h"
#include "push-notification-txn-msg.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <string.h>

#include "event.h"
#include "mailpush.h"
#include "evsend.h"
#include "logesc.h"

#define MAILPUSH_LABEL		"mailpush: "
#define MAILPUSH_TIMEOUT_MS	100
#define MAILPUSH_TIMEOUT_MAX_MS	10000
#define MAILPUSH_STALLED_MS	10	/* wait after a timed-out send */
#define MAILPUSH_EV_NEW		"MessageNew"
#define MAILPUSH_EV_APPEND	"MessageAppend"

#define MAILPUSH_EXPORT		__attribute__((visibility("default")))

/* Per mail user: the parsed driver settings. */
struct mailpush_config {
	const char	*socket;
	unsigned int	 timeout_ms;
	bool		 message_new;
	bool		 message_append;
};

/* Per transaction: what the committed messages add up to. */
struct mailpush_txn {
	const char	*mailbox;
	unsigned int	 count;
	uint32_t	 uid;
};

/* Set when a send timed out; cleared by the next send that succeeds. */
static bool mailpush_stalled;

MAILPUSH_EXPORT extern const char *mailpush_plugin_version;
MAILPUSH_EXPORT extern const char *mailpush_plugin_dependencies[];
MAILPUSH_EXPORT void mailpush_plugin_init(struct module *);
MAILPUSH_EXPORT void mailpush_plugin_deinit(void);

/* Unknown names are reported and skipped; no valid name keeps the default. */
static int
mailpush_parse_events(struct mailpush_config *cfg, const char *value,
    pool_t pool, const char **error_r)
{
	const char *const *names;
	bool new_ev = FALSE, append = FALSE;
	int ret = 0;

	for (names = t_strsplit(value, ","); *names != NULL; names++) {
		if (strcasecmp(*names, MAILPUSH_EV_NEW) == 0)
			new_ev = TRUE;
		else if (strcasecmp(*names, MAILPUSH_EV_APPEND) == 0)
			append = TRUE;
		else {
			*error_r = p_strdup_printf(pool, "events: unknown "
			    "event '%s' ignored (allowed: " MAILPUSH_EV_NEW
			    ", " MAILPUSH_EV_APPEND ", separated by commas)",
			    log_str(*names));
			ret = -1;
		}
	}
	if (new_ev || append) {
		cfg->message_new = new_ev;
		cfg->message_append = append;
	} else if (ret == 0) {
		*error_r = "events: no event selected (using the default, "
		    MAILPUSH_EV_NEW ")";
		ret = -1;
	}
	return ret;
}

/* One setting; on an error *error_r says why and cfg keeps its default. */
static int
mailpush_parse(struct mailpush_config *cfg, const char *key,
    const char *value, pool_t pool, const char **error_r)
{
	const char *error;
	unsigned int ms;

	if (strcmp(key, "socket") == 0) {
		if (value[0] != '/' ||
		    strlen(value) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			*error_r = p_strdup_printf(pool, "socket: '%s' is not "
			    "an absolute path of at most %zu bytes (using "
			    "the default, " MP_EVENT_SOCKET ")", log_str(value),
			    sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
			return -1;
		}
		cfg->socket = p_strdup(pool, value);
	} else if (strcmp(key, "timeout") == 0) {
		if (settings_get_time_msecs(value, &ms, &error) < 0) {
			*error_r = p_strdup_printf(pool, "timeout: %s (using "
			    "the default, %ums)", log_str(error),
			    MAILPUSH_TIMEOUT_MS);
			return -1;
		}
		if (ms > MAILPUSH_TIMEOUT_MAX_MS) {
			*error_r = p_strdup_printf(pool, "timeout: %s is more "
			    "than the maximum of %ums (using the default, "
			    "%ums)", log_str(value), MAILPUSH_TIMEOUT_MAX_MS,
			    MAILPUSH_TIMEOUT_MS);
			return -1;
		}
		cfg->timeout_ms = ms;
	} else if (strcmp(key, "events") == 0) {
		return mailpush_parse_events(cfg, value, pool, error_r);
	} else {
		*error_r = p_strdup_printf(pool, "unknown setting '%s' ignored "
		    "(allowed: socket, timeout, events)", log_str(key));
		return -1;
	}
	return 0;
}

static int
mailpush_init(struct push_notification_driver_config *config,
    struct mail_user *user, pool_t pool, void **context,
    const char **error_r ATTR_UNUSED)
{
	struct mailpush_config		*cfg;
	struct hash_iterate_context	*iter;
	const char			*key, *value, *error = "bad setting";

	cfg = p_new(pool, struct mailpush_config, 1);
	cfg->socket = MP_EVENT_SOCKET;
	cfg->timeout_ms = MAILPUSH_TIMEOUT_MS;
	cfg->message_new = TRUE;

	/* every setting is looked at; a bad one keeps its default, so a
	 * mistake in the settings never costs the events */
	iter = hash_table_iterate_init(config->config);
	while (hash_table_iterate(iter, config->config, &key, &value))
		if (mailpush_parse(cfg, key, value, pool, &error) < 0)
			e_warning(user->event, MAILPUSH_LABEL "%s", error);
	hash_table_iterate_deinit(&iter);
	push_notification_driver_debug(MAILPUSH_LABEL, user,
	    "socket=%s timeout=%ums events=%s%s%s", cfg->socket,
	    cfg->timeout_ms, cfg->message_new ? MAILPUSH_EV_NEW : "",
	    cfg->message_new && cfg->message_append ? "," : "",
	    cfg->message_append ? MAILPUSH_EV_APPEND : "");
	*context = cfg;
	return 0;
}

static bool
mailpush_begin_txn(struct push_notification_driver_txn *dtxn)
{
	struct mailpush_config	*cfg = dtxn->duser->context;
	pool_t			 pool = dtxn->ptxn->pool;

	/*
	 * The message events record their data only when some field is
	 * asked for; the flags are the cheapest (no header parsing).  The
	 * data's presence is how process_msg tells a new message from a
	 * flag change or an expunge in the same transaction.
	 */
	if (cfg->message_new) {
		struct push_notification_event_messagenew_config *nc;

		nc = p_new(pool,
		    struct push_notification_event_messagenew_config, 1);
		nc->flags = PUSH_NOTIFICATION_MESSAGE_FLAGS;
		push_notification_event_init(dtxn, MAILPUSH_EV_NEW, nc);
	}
	if (cfg->message_append) {
		struct push_notification_event_messageappend_config *ac;

		ac = p_new(pool,
		    struct push_notification_event_messageappend_config, 1);
		ac->flags = PUSH_NOTIFICATION_MESSAGE_FLAGS;
		push_notification_event_init(dtxn, MAILPUSH_EV_APPEND, ac);
	}
	dtxn->context = p_new(pool, struct mailpush_txn, 1);
	return TRUE;
}

static void
mailpush_send(struct push_notification_driver_txn *dtxn,
    const struct mailpush_txn *mt)
{
	struct mailpush_config	*cfg = dtxn->duser->context;
	struct mail_user	*user = dtxn->ptxn->muser;
	struct mp_event		 ev;
	uint8_t			 buf[EVENT_MAX_LEN];
	const char		*why, *note;
	unsigned int		 wait_ms;
	int			 e, len;

	if (event_set(&ev, user->username, mt->mailbox, mt->count, mt->uid,
	    &why) == -1 ||
	    (len = event_encode(&ev, buf, sizeof(buf), &why)) == -1) {
		e_warning(user->event, MAILPUSH_LABEL "no event for mailbox "
		    "%s uid %u: %s", log_str(mt->mailbox), mt->uid, why);
		return;
	}
	wait_ms = mailpush_stalled && cfg->timeout_ms > MAILPUSH_STALLED_MS ?
	    MAILPUSH_STALLED_MS : cfg->timeout_ms;
	if (evsend_dgram(cfg->socket, buf, (size_t)len, wait_ms,
	    &why) == -1) {
		e = errno;
		if (e != ETIMEDOUT)
			note = "";
		else if (wait_ms != cfg->timeout_ms)
			note = t_strdup_printf(" (%ums: an earlier send timed "
			    "out)", wait_ms);
		else
			note = t_strdup_printf(" (%ums)", wait_ms);
		if (e == ETIMEDOUT)
			mailpush_stalled = TRUE;
		e_warning(user->event, MAILPUSH_LABEL "event for mailbox %s "
		    "uid %u not sent to %s: %s: %s%s", log_str(mt->mailbox),
		    mt->uid, log_str(cfg->socket), why, strerror(e), note);
		return;
	}
	mailpush_stalled = FALSE;
	push_notification_driver_debug(MAILPUSH_LABEL, user,
	    "event sent: mailbox=%s uid=%u count=%u", log_str(mt->mailbox),
	    mt->uid, mt->count);
}

static void
mailpush_process_msg(struct push_notification_driver_txn *dtxn,
    struct push_notification_txn_msg *msg)
{
	struct mailpush_config	*cfg = dtxn->duser->context;
	struct mailpush_txn	*mt = dtxn->context;

	if (!(cfg->message_new && push_notification_txn_msg_get_eventdata(
	    msg, MAILPUSH_EV_NEW) != NULL) &&
	    !(cfg->message_append && push_notification_txn_msg_get_eventdata(
	    msg, MAILPUSH_EV_APPEND) != NULL))
		return;
	/* A transaction belongs to one mailbox; be safe if it did not. */
	if (mt->count > 0 && strcmp(mt->mailbox, msg->mailbox) != 0) {
		mailpush_send(dtxn, mt);
		mt->count = 0;
		mt->uid = 0;
	}
	if (mt->count == 0)
		mt->mailbox = p_strdup(dtxn->ptxn->pool, msg->mailbox);
	if (mt->count < 65535)
		mt->count++;
	if (msg->uid > mt->uid)
		mt->uid = msg->uid;
}

static void
mailpush_end_txn(struct push_notification_driver_txn *dtxn, bool success)
{
	struct mailpush_txn	*mt = dtxn->context;

	if (success && mt != NULL && mt->count > 0)
		mailpush_send(dtxn, mt);
}

static const struct push_notification_driver push_notification_driver_mailpush = {
	.name = "mailpush",
	.v = {
		.init = mailpush_init,
		.begin_txn = mailpush_begin_txn,
		.process_msg = mailpush_process_msg,
		.end_txn = mailpush_end_txn,
	},
};

const char *mailpush_plugin_version = DOVECOT_ABI_VERSION;
const char *mailpush_plugin_dependencies[] = { "push_notification", NULL };

void
mailpush_plugin_init(struct module *module ATTR_UNUSED)
{
	push_notification_driver_register(&push_notification_driver_mailpush);
}

void
mailpush_plugin_deinit(void)
{
	push_notification_driver_unregister(&push_notification_driver_mailpush);
}
