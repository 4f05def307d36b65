/*
 * mailpush.h: compile-time defaults and limits shared by every program.
 * Every path and name sits behind #ifndef so a build can override it
 * (make CPPFLAGS=-DMP_EVENT_SOCKET=\"/var/run/mp/event\").
 */
#ifndef MAILPUSH_H
#define MAILPUSH_H

#ifndef MP_CONFIG_FILE
#define MP_CONFIG_FILE		"/usr/local/etc/mailpush/mailpushd.conf"
#endif
#ifndef MP_KEY_FILE
#define MP_KEY_FILE		"/usr/local/etc/mailpush/mailpushd.key"
#endif
#ifndef MP_EVENT_SOCKET
#define MP_EVENT_SOCKET		"/run/mailpush/event.sock"
#endif
#ifndef MP_CONTROL_SOCKET
#define MP_CONTROL_SOCKET	"/run/mailpush/control.sock"
#endif
#ifndef MP_PROVISION_SOCKET
#define MP_PROVISION_SOCKET	"/run/mailpush/provision.sock"
#endif
#ifndef MP_STATE_FILE
#define MP_STATE_FILE		"/var/lib/mailpush/registrations"
#endif
#ifndef MP_USER
#define MP_USER			"mailpush"
#endif
#ifndef MP_PORT
#define MP_PORT			"4650"
#endif

#define MP_VERSION		"0.1"

/* User names: after folding, 1..MP_USER_MAX bytes of printable ASCII or UTF-8. */
#define MP_USER_MAX		255
/* Mailbox names in events and registrations. */
#define MP_MAILBOX_MAX		255
/* Exchange's defaults, used when the INI value is 0. */
#define MP_DEFAULT_REGS_PER_CLIENT	8
#define MP_DEFAULT_CONTEXT_SIZE		16
/* Hard ceilings of the protocol. */
#define MP_CONTEXT_MAX		1024
#define MP_MAILBOXES_MAX	16
#define MP_KEY_LEN		32
#define MP_TOKEN_LEN		32

#endif
