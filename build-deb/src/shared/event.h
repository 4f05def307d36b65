/*
 * event.h: the new-mail event, one datagram on the UNIX event socket from
 * mailpush-hook (or the Dovecot driver) to mailpushd.  Format, network byte
 * order, documented in mailpush-hook(8):
 *
 *	0	4	magic "MPEV" (0x4d 0x50 0x45 0x56)
 *	4	1	version, 1
 *	5	1	flags, 0 (receivers refuse others)
 *	6	2	count of new messages, 1..65535
 *	8	4	IMAP UID of the newest message, 0 when unknown
 *	12	1	user length U, 1..255
 *	13	1	mailbox length M, 1..255
 *	14	U	user name (as given; the daemon normalises it)
 *	14+U	M	mailbox name (UTF-8, "INBOX" by default)
 *
 * The datagram is exactly 14 + U + M bytes long.
 */
#ifndef MP_EVENT_H
#define MP_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "mailpush.h"

#define EVENT_MAGIC		0x4d504556U
#define EVENT_VERSION		1
#define EVENT_HDR_LEN		14
#define EVENT_MAX_LEN		(EVENT_HDR_LEN + MP_USER_MAX + MP_MAILBOX_MAX)

struct mp_event {
	uint16_t	count;
	uint32_t	uid;
	uint8_t		user_len;
	uint8_t		mailbox_len;
	char		user[MP_USER_MAX + 1];
	char		mailbox[MP_MAILBOX_MAX + 1];
};

/* Returns the datagram length, or -1 with *why set. */
int	event_encode(const struct mp_event *, uint8_t *buf, size_t len,
	    const char **why);
/* Returns 0, or -1 with *why set; user and mailbox come out NUL-terminated. */
int	event_decode(const uint8_t *buf, size_t len, struct mp_event *,
	    const char **why);
/* Fills an event from C strings; -1 with *why on a bad length. */
int	event_set(struct mp_event *, const char *user, const char *mailbox,
	    unsigned count, uint32_t uid, const char **why);

#endif
