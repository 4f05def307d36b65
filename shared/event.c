/*
 * event.c: encode and decode the event datagram described in event.h.
 * Every length is checked before the bytes it covers are touched.
 */
#include <string.h>

#include "event.h"
#include "wire.h"

int
event_set(struct mp_event *ev, const char *user, const char *mailbox,
    unsigned count, uint32_t uid, const char **why)
{
	size_t ul = strlen(user), ml = strlen(mailbox);

	if (ul == 0 || ul > MP_USER_MAX) {
		*why = "user name must be 1 to 255 bytes";
		return -1;
	}
	if (ml == 0 || ml > MP_MAILBOX_MAX) {
		*why = "mailbox name must be 1 to 255 bytes";
		return -1;
	}
	if (count == 0 || count > 65535) {
		*why = "message count must be from 1 to 65535";
		return -1;
	}
	memset(ev, 0, sizeof(*ev));
	ev->count = (uint16_t)count;
	ev->uid = uid;
	ev->user_len = (uint8_t)ul;
	ev->mailbox_len = (uint8_t)ml;
	memcpy(ev->user, user, ul);
	memcpy(ev->mailbox, mailbox, ml);
	return 0;
}

int
event_encode(const struct mp_event *ev, uint8_t *buf, size_t len,
    const char **why)
{
	size_t need = EVENT_HDR_LEN + ev->user_len + ev->mailbox_len;

	if (ev->user_len == 0 || ev->mailbox_len == 0 || ev->count == 0) {
		*why = "event has an empty user, mailbox or count";
		return -1;
	}
	if (len < need) {
		*why = "buffer too small for event";
		return -1;
	}
	put32(buf, EVENT_MAGIC);
	buf[4] = EVENT_VERSION;
	buf[5] = 0;
	put16(buf + 6, ev->count);
	put32(buf + 8, ev->uid);
	buf[12] = ev->user_len;
	buf[13] = ev->mailbox_len;
	memcpy(buf + EVENT_HDR_LEN, ev->user, ev->user_len);
	memcpy(buf + EVENT_HDR_LEN + ev->user_len, ev->mailbox,
	    ev->mailbox_len);
	return (int)need;
}

int
event_decode(const uint8_t *buf, size_t len, struct mp_event *ev,
    const char **why)
{
	size_t ul, ml;

	if (len < EVENT_HDR_LEN) {
		*why = "event shorter than its 14-byte header";
		return -1;
	}
	if (get32(buf) != EVENT_MAGIC) {
		*why = "event has a bad magic number";
		return -1;
	}
	if (buf[4] != EVENT_VERSION) {
		*why = "event has an unknown version";
		return -1;
	}
	if (buf[5] != 0) {
		*why = "event has unknown flags";
		return -1;
	}
	ul = buf[12];
	ml = buf[13];
	if (ul == 0 || ml == 0) {
		*why = "event has an empty user or mailbox";
		return -1;
	}
	if (len != EVENT_HDR_LEN + ul + ml) {
		*why = "event length does not match its user and mailbox lengths";
		return -1;
	}
	if (memchr(buf + EVENT_HDR_LEN, '\0', ul + ml) != NULL) {
		*why = "event user or mailbox contains a NUL byte";
		return -1;
	}
	/* no memset of the whole struct: half a kilobyte a datagram */
	ev->count = get16(buf + 6);
	if (ev->count == 0) {
		*why = "event has a zero message count";
		return -1;
	}
	ev->uid = get32(buf + 8);
	ev->user_len = (uint8_t)ul;
	ev->mailbox_len = (uint8_t)ml;
	memcpy(ev->user, buf + EVENT_HDR_LEN, ul);
	ev->user[ul] = '\0';
	memcpy(ev->mailbox, buf + EVENT_HDR_LEN + ul, ml);
	ev->mailbox[ml] = '\0';
	return 0;
}
