/*
 * mailpush-metadata.c: the "mailpush_metadata" Dovecot 2.3 plugin for imap,
 * mailpush-dovecot(7).  It serves three read-only server METADATA entries
 * (RFC 5464) for the logged-in user, computed when they are asked for:
 *
 *	/private/vendor/vendor.mailpush/token	"ID:HEX", the user's token
 *	/private/vendor/vendor.mailpush/user	the name the token is for
 *	/private/vendor/vendor.mailpush/servers	"HOST:PORT ...", preferred first
 *
 * They are internal attributes of rank AUTHORITY, registered as Dovecot
 * itself serves /shared/admin (src/lib-storage/mailbox-attribute-internal.c):
 * nothing is stored, the attribute dict is never consulted for them, and
 * SETMETADATA on them fails.  The values come from mailpushd's
 * provisioning socket (notifier/provision.c), asked for the name Dovecot
 * authenticated (mail_user->username), never for a name the client gives;
 * the daemon decides from this process's uid (the user itself, or vmail)
 * whether it may have that user's token.  The imap process never reads
 * the key.
 *
 *	plugin {
 *	  mailpush_provision_socket = /run/mailpush/provision.sock
 *	}
 *
 * One answer is kept for MAILPUSH_CACHE_SECS so that one GETMETADATA of
 * the three entries asks the daemon once.  A failure is a NO to the
 * command with a temporary error, and one line in Dovecot's log.
 */
#include "lib.h"
#include "str.h"
#include "mail-user.h"
/* array.h, pulled in by the private header, casts a const away */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
#include "mail-storage-private.h"
#pragma GCC diagnostic pop
#include "mailbox-attribute.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mailpush.h"

#define MAILPUSH_ATTR_PREFIX	MAILBOX_ATTRIBUTE_PREFIX_DOVECOT_PVT_SERVER \
				"vendor/vendor.mailpush/"
#define MAILPUSH_ANSWER_MAX	2048
#define MAILPUSH_TIMEOUT_SECS	2
#define MAILPUSH_CACHE_SECS	5

#define MAILPUSH_EXPORT		__attribute__((visibility("default")))

MAILPUSH_EXPORT extern const char *mailpush_metadata_plugin_version;
MAILPUSH_EXPORT void mailpush_metadata_plugin_init(struct module *);
MAILPUSH_EXPORT void mailpush_metadata_plugin_deinit(void);

/* The last answer, for the user this (per-user) imap process serves. */
static char	mailpush_cache_user[MP_USER_MAX + 1];
static char	mailpush_cache_answer[MAILPUSH_ANSWER_MAX];
static time_t	mailpush_cache_time;

/*
 * Ask the daemon for `user'; the answer's text in buf.  Returns 0, or -1
 * with a message in *error_r.
 */
static int
mailpush_ask(const char *path, const char *user, char *buf, size_t len,
    const char **error_r)
{
	struct sockaddr_un sun;
	struct timeval tv = { MAILPUSH_TIMEOUT_SECS, 0 };
	const char *req;
	ssize_t n;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		*error_r = t_strdup_printf("socket path %s too long", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1) {
		*error_r = t_strdup_printf("socket: %m");
		return -1;
	}
	/* connect, send and receive all give up after the timeout */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1) {
		*error_r = t_strdup_printf("setsockopt: %m");
		i_close_fd(&fd);
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		*error_r = t_strdup_printf("connect(%s): %m (is mailpushd "
		    "running with [provision] socket set?)", path);
		i_close_fd(&fd);
		return -1;
	}
	req = t_strdup_printf("token %s", user);
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
		*error_r = t_strdup_printf("send(%s): %m", path);
		i_close_fd(&fd);
		return -1;
	}
	n = recv(fd, buf, len - 1, 0);
	if (n <= 0) {
		*error_r = n == 0 ? t_strdup_printf("%s closed without an "
		    "answer", path) : errno == EAGAIN ? t_strdup_printf("%s: "
		    "no answer within %d s", path, MAILPUSH_TIMEOUT_SECS) :
		    t_strdup_printf("recv(%s): %m", path);
		i_close_fd(&fd);
		return -1;
	}
	i_close_fd(&fd);
	buf[n] = '\0';
	return 0;
}

/* The value of line "NAME VALUE" in an "ok" answer, or NULL. */
static const char *
mailpush_field(const char *answer, const char *name)
{
	const char *p = answer, *eol;
	size_t nl = strlen(name);

	while ((eol = strchr(p, '\n')) != NULL) {
		if ((size_t)(eol - p) > nl && strncmp(p, name, nl) == 0 &&
		    p[nl] == ' ')
			return t_strdup_until(p + nl + 1, eol);
		p = eol + 1;
	}
	return NULL;
}

static int
mailpush_attr_get(struct mailbox *box, const char *key,
    struct mail_attribute_value *value_r)
{
	struct mail_user *user = box->storage->user;
	const char *path, *error, *name, *value;
	time_t now = time(NULL);

	if (strlen(user->username) > MP_USER_MAX) {
		mail_storage_set_error(box->storage, MAIL_ERROR_NOTPOSSIBLE,
		    "mailpush: user name too long for mailpush");
		return -1;
	}
	if (strcmp(mailpush_cache_user, user->username) != 0 ||
	    now - mailpush_cache_time >= MAILPUSH_CACHE_SECS ||
	    now < mailpush_cache_time) {
		path = mail_user_plugin_getenv(user,
		    "mailpush_provision_socket");
		if (path == NULL || *path == '\0')
			path = MP_PROVISION_SOCKET;
		mailpush_cache_user[0] = '\0';
		if (mailpush_ask(path, user->username, mailpush_cache_answer,
		    sizeof(mailpush_cache_answer), &error) != 0) {
			e_error(box->event, "mailpush: %s", error);
			mail_storage_set_error(box->storage, MAIL_ERROR_TEMP,
			    "mailpush: the notifier is not available");
			return -1;
		}
		if (strncmp(mailpush_cache_answer, "ok\n", 3) != 0) {
			e_error(box->event, "mailpush: %s refused the token "
			    "of %s: %s", path, user->username,
			    t_strcut(mailpush_cache_answer, '\n'));
			mail_storage_set_error(box->storage, MAIL_ERROR_TEMP,
			    "mailpush: the notifier refused");
			return -1;
		}
		i_strocpy(mailpush_cache_user, user->username,
		    sizeof(mailpush_cache_user));
		mailpush_cache_time = now;
	}
	name = key + strlen(MAILPUSH_ATTR_PREFIX);
	if ((value = mailpush_field(mailpush_cache_answer, name)) == NULL ||
	    *value == '\0')
		return 0;	/* no such value (an empty server list) */
	value_r->value = value;
	value_r->flags = MAIL_ATTRIBUTE_VALUE_FLAG_READONLY;
	return 1;
}

static const struct mailbox_attribute_internal mailpush_attrs[] = {
	{ .type = MAIL_ATTRIBUTE_TYPE_PRIVATE,
	  .key = MAILPUSH_ATTR_PREFIX "token",
	  .rank = MAIL_ATTRIBUTE_INTERNAL_RANK_AUTHORITY,
	  .get = mailpush_attr_get },
	{ .type = MAIL_ATTRIBUTE_TYPE_PRIVATE,
	  .key = MAILPUSH_ATTR_PREFIX "user",
	  .rank = MAIL_ATTRIBUTE_INTERNAL_RANK_AUTHORITY,
	  .get = mailpush_attr_get },
	{ .type = MAIL_ATTRIBUTE_TYPE_PRIVATE,
	  .key = MAILPUSH_ATTR_PREFIX "servers",
	  .rank = MAIL_ATTRIBUTE_INTERNAL_RANK_AUTHORITY,
	  .get = mailpush_attr_get },
};

const char *mailpush_metadata_plugin_version = DOVECOT_ABI_VERSION;

void
mailpush_metadata_plugin_init(struct module *module ATTR_UNUSED)
{
	mailbox_attribute_register_internals(mailpush_attrs,
	    N_ELEMENTS(mailpush_attrs));
}

void
mailpush_metadata_plugin_deinit(void)
{
	mailbox_attribute_unregister_internals(mailpush_attrs,
	    N_ELEMENTS(mailpush_attrs));
	memset(mailpush_cache_answer, 0, sizeof(mailpush_cache_answer));
}
