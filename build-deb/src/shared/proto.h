/*
 * proto.h: the UDP registration and push protocol, mailpush-protocol(7).
 *
 * Every datagram starts with a 4-byte header: magic 0x4d50 ("MP"), version
 * 1, type.  All integers are unsigned, network byte order.  Requests (client
 * to server), see mailpush-protocol(7) for the full layout:
 *
 *	REGISTER, REFRESH, UNREGISTER:
 *	0 hdr(4) 4 timestamp(8) 12 nonce(4) 16 reg_id(4) 20 cookie(16)
 *	36 user_len(1) 37 mailbox_count(1) 38 context_len(2) 40 user context
 *	mailboxes (len(1) name)... MAC(32)
 *	PUSH_ACK: 0 hdr(4) 4 reg_id(4) 8 seq(4) 12 MAC(32)
 *
 * Replies (server to client):
 *	COOKIE:     0 hdr(4) 4 nonce(4) 8 cookie(16)                  = 24
 *	REGISTERED: 0 hdr(4) 4 nonce(4) 8 reg_id(4) 12 lifetime(4)
 *	            16 seq(4) 20 MAC(32)                              = 52
 *	REFUSED:    0 hdr(4) 4 nonce(4) 8 reason(1) 9 zero(3) 12 limit(4)
 *	            16 server_time(8) 24 MAC(32)                      = 56
 *	PUSH:       0 hdr(4) 4 reg_id(4) 8 seq(4) 12 count(4) 16 total(4)
 *	            20 server_time(8) 28 context_len(2) 30 zero(2)
 *	            32 context MAC(32)
 *
 * Every MAC is HMAC-SHA256 under the user's token over all the bytes before
 * it; the token is HMAC-SHA256 of the normalised user name under the
 * server's 32-byte key.
 */
#ifndef MP_PROTO_H
#define MP_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "mailpush.h"

#define PROTO_MAGIC		0x4d50
#define PROTO_VERSION		1
#define PROTO_HDR_LEN		4
#define PROTO_MAC_LEN		32
#define PROTO_COOKIE_LEN	16
#define PROTO_MAX_DATAGRAM	1232	/* IPv6 minimum MTU less headers */

#define PROTO_REGISTER		1
#define PROTO_REFRESH		2
#define PROTO_UNREGISTER	3
#define PROTO_COOKIE		4
#define PROTO_REGISTERED	5
#define PROTO_REFUSED		6
#define PROTO_PUSH		7
#define PROTO_PUSH_ACK		8

#define PROTO_REQ_FIXED		40
#define PROTO_REQ_MIN		(PROTO_REQ_FIXED + 1 + PROTO_MAC_LEN)	/* 73 */
#define PROTO_COOKIE_LEN_DGRAM	24
#define PROTO_REGISTERED_LEN	52
#define PROTO_REFUSED_LEN	56
#define PROTO_PUSH_FIXED	32
#define PROTO_ACK_LEN		44

/* Refusal reasons. */
#define REASON_AUTH		1	/* MAC does not verify */
#define REASON_STALE		2	/* timestamp outside the window */
#define REASON_TOO_MANY		3	/* per-client registration limit */
#define REASON_CONTEXT_SIZE	4	/* context longer than allowed */
#define REASON_TABLE_FULL	5	/* max_registrations reached */
#define REASON_ADDRESS_LIMIT	6	/* max_registrations_per_address */
#define REASON_NOT_ALLOWED	7	/* source or user not allowed */
#define REASON_UNKNOWN		8	/* no such registration: register anew */
#define REASON_BAD_REQUEST	9	/* bad user name or mailbox list */
#define REASON_MAX		9

struct mp_request {
	uint8_t		type;		/* REGISTER, REFRESH, UNREGISTER */
	uint64_t	timestamp;
	uint32_t	nonce;
	uint32_t	reg_id;
	uint8_t		cookie[PROTO_COOKIE_LEN];
	uint8_t		user_len;
	char		user[MP_USER_MAX + 1];
	uint16_t	ctx_len;
	uint8_t		ctx[MP_CONTEXT_MAX];
	uint8_t		n_mailboxes;
	struct {
		uint8_t	len;
		char	name[MP_MAILBOX_MAX + 1];
	}		mailboxes[MP_MAILBOXES_MAX];
};

struct mp_reply {
	uint8_t		type;		/* COOKIE, REGISTERED, REFUSED */
	uint32_t	nonce;
	uint8_t		cookie[PROTO_COOKIE_LEN];	/* COOKIE */
	uint32_t	reg_id;		/* REGISTERED */
	uint32_t	lifetime;	/* REGISTERED; 0 after UNREGISTER */
	uint32_t	seq;		/* REGISTERED */
	uint8_t		reason;		/* REFUSED */
	uint32_t	limit;		/* REFUSED */
	uint64_t	server_time;	/* REFUSED */
};

struct mp_push {
	uint32_t	reg_id;
	uint32_t	seq;
	uint32_t	count;		/* new messages since the last acked push */
	uint32_t	total;		/* messages ever counted for this reg */
	uint64_t	server_time;
	uint16_t	ctx_len;
	uint8_t		ctx[MP_CONTEXT_MAX];
};

struct mp_ack {
	uint32_t	reg_id;
	uint32_t	seq;
};

/* Type of a datagram after checking magic, version and minimum length; -1 if none. */
int	proto_type(const uint8_t *buf, size_t len);

/* token = HMAC-SHA256(key, user) */
void	proto_token(const uint8_t key[MP_KEY_LEN], const char *user,
	    size_t user_len, uint8_t token[MP_TOKEN_LEN]);
/* Check the trailing MAC of buf[0..len) under token, in constant time. */
int	proto_verify(const uint8_t *buf, size_t len,
	    const uint8_t token[MP_TOKEN_LEN]);

/*
 * Encoders return the datagram length or -1 when the buffer is too small or
 * a field is out of range.  A NULL token writes a MAC of zeros.
 */
int	proto_request_encode(const struct mp_request *,
	    const uint8_t token[MP_TOKEN_LEN], uint8_t *buf, size_t len);
int	proto_reply_encode(const struct mp_reply *,
	    const uint8_t token[MP_TOKEN_LEN], uint8_t *buf, size_t len);
int	proto_push_encode(const struct mp_push *,
	    const uint8_t token[MP_TOKEN_LEN], uint8_t *buf, size_t len);
int	proto_ack_encode(const struct mp_ack *,
	    const uint8_t token[MP_TOKEN_LEN], uint8_t *buf, size_t len);

/* Decoders return 0, or -1 with a static reason in *why.  MACs are not checked. */
int	proto_request_decode(const uint8_t *, size_t, struct mp_request *,
	    const char **why);
int	proto_reply_decode(const uint8_t *, size_t, struct mp_reply *,
	    const char **why);
int	proto_push_decode(const uint8_t *, size_t, struct mp_push *,
	    const char **why);
int	proto_ack_decode(const uint8_t *, size_t, struct mp_ack *,
	    const char **why);

const char *proto_reason_name(unsigned reason);
const char *proto_type_name(unsigned type);

/* Hex helpers for key and token files: 64 hex digits, optional newline. */
int	proto_hex_decode(const char *hex, uint8_t *out, size_t outlen);
void	proto_hex_encode(const uint8_t *in, size_t len, char *out);
/* Read a 32-byte key or token stored as hex in a file; -1 with *why. */
int	proto_read_hexfile(const char *path, uint8_t out[32], const char **why);
/* The same from an open descriptor (read to its end, not closed). */
int	proto_read_hexfd(int fd, uint8_t out[32], const char **why);

#endif
