/*
 * proto.h: the UDP registration and push protocol, version 2,
 * mailpush-protocol(7).
 *
 * Every datagram starts with a 4-byte header: magic 0x4d50 ("MP"), version
 * 2, type.  All integers are unsigned, network byte order.
 *
 * Requests (client to server: REGISTER, REFRESH, UNREGISTER, PUSH_ACK,
 * PROBE) share one layout:
 *
 *	0 hdr(4) 4 key_id(1) 5 user_len(1) 6 context_len(2) 8 device(16)
 *	24 timestamp(8, milliseconds; strictly increasing per device)
 *	32 cookie(16) 48 mailbox_count(1) 49 zero(3) 52 seq(4) 56 epoch(8)
 *	64 user context mailboxes (len(1) name)... padding(zeros) MAC(32)
 *
 * The MAC is HMAC-SHA256 under the user's token over all the bytes before
 * it.  seq and epoch name the push a PUSH_ACK acknowledges; in a PROBE,
 * seq is the delay in seconds.  Clients pad REGISTER, REFRESH and PROBE to
 * proto_request_pad() bytes so that the server's answer and an owed push
 * fit in what it received.
 *
 * KEEPALIVE (client to server, no MAC): 0 hdr(4) 4 reg_id(4)        = 8
 *
 * Replies (server to client):
 *	COOKIE:     0 hdr(4) 4 timestamp(8) 12 cookie(16)              = 28
 *	REGISTERED: 0 hdr(4) 4 timestamp(8) 12 epoch(8) 20 reg_id(4)
 *	            24 lifetime(4) 28 seq(4) 32 keepalive_min(2)
 *	            34 keepalive_max(2) 36 MAC(32)                     = 68
 *	REFUSED:    0 hdr(4) 4 timestamp(8) 12 reason(1) 13 zero(3)
 *	            16 limit(4) 20 value(8) 28 MAC(32)                 = 60
 *	PROBE_ECHO: 0 hdr(4) 4 timestamp(8) 12 MAC(32)                 = 44
 *	KICK:       0 hdr(4) 4 reg_id(4)                               = 8
 *	PUSH:       0 hdr(4) 4 nonce(24) 28 ciphertext(36 + context_len)
 *	            tag(16)                                  = 80 + context
 *
 * timestamp in a reply echoes the request it answers.  A PUSH is sealed
 * with XChaCha20-Poly1305 (IETF) under proto_push_key(token), the user's
 * push key, the header as associated data; the plaintext is
 *	0 epoch(8) 8 reg_id(4) 12 seq(4) 16 count(4) 20 total(4)
 *	24 server_time(8) 32 flags(2) 34 context_len(2) 36 context
 *
 * The token is HMAC-SHA256 of the normalised user name under the server
 * key whose id is key_id.
 */
#ifndef MP_PROTO_H
#define MP_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "mailpush.h"

#define PROTO_MAGIC		0x4d50
#define PROTO_VERSION		2
#define PROTO_HDR_LEN		4
#define PROTO_MAC_LEN		32
#define PROTO_COOKIE_LEN	16
#define PROTO_DEVICE_LEN	16
#define PROTO_MAX_DATAGRAM	1232	/* IPv6 minimum MTU less headers */

#define PROTO_REGISTER		1
#define PROTO_REFRESH		2
#define PROTO_UNREGISTER	3
#define PROTO_COOKIE		4
#define PROTO_REGISTERED	5
#define PROTO_REFUSED		6
#define PROTO_PUSH		7
#define PROTO_PUSH_ACK		8
#define PROTO_KEEPALIVE		9
#define PROTO_PROBE		10
#define PROTO_PROBE_ECHO	11
#define PROTO_KICK		12
#define PROTO_TYPE_MAX		12

#define PROTO_REQ_FIXED		64
#define PROTO_REQ_MIN		(PROTO_REQ_FIXED + 1 + PROTO_MAC_LEN)	/* 97 */
#define PROTO_COOKIE_DGRAM_LEN	28
#define PROTO_REGISTERED_LEN	68
#define PROTO_REFUSED_LEN	60
#define PROTO_PROBE_ECHO_LEN	44
#define PROTO_KEEPALIVE_LEN	8
#define PROTO_KICK_LEN		8
#define PROTO_PUSH_NONCE_LEN	24
#define PROTO_PUSH_TAG_LEN	16
#define PROTO_PUSH_PLAIN_FIXED	36
#define PROTO_PUSH_FIXED	(PROTO_HDR_LEN + PROTO_PUSH_NONCE_LEN + \
				 PROTO_PUSH_PLAIN_FIXED + PROTO_PUSH_TAG_LEN)
#define PROTO_PUSH_LEN(ctx)	(PROTO_PUSH_FIXED + (size_t)(ctx))	/* 80 + */

/* The only key id until keys roll over (issue 15). */
#define PROTO_KEY_ID_DEFAULT	1

/* PUSH flags. */
#define PUSH_FLAG_COUNT_UNKNOWN	0x0001	/* count and total may be inexact:
					   the server lost state */

/* Refusal reasons. */
#define REASON_AUTH		1	/* MAC does not verify, unknown key */
#define REASON_STALE		2	/* timestamp outside the window */
#define REASON_TOO_MANY		3	/* per-client registration limit */
#define REASON_CONTEXT_SIZE	4	/* context longer than allowed */
#define REASON_TABLE_FULL	5	/* max_registrations reached */
#define REASON_ADDRESS_LIMIT	6	/* max_registrations_per_address */
#define REASON_NOT_ALLOWED	7	/* source or user not allowed */
#define REASON_UNKNOWN		8	/* no such registration: register anew */
#define REASON_BAD_REQUEST	9	/* bad user name or mailbox list */
#define REASON_REPLAY		10	/* timestamp not above the last one */
#define REASON_MAX		10

struct mp_request {
	uint8_t		type;	/* REGISTER, REFRESH, UNREGISTER, PUSH_ACK,
				   PROBE */
	uint8_t		key_id;
	uint8_t		device[PROTO_DEVICE_LEN];
	uint64_t	timestamp;	/* ms since the epoch */
	uint8_t		cookie[PROTO_COOKIE_LEN];
	uint32_t	seq;		/* PUSH_ACK: seq; PROBE: delay (s) */
	uint64_t	epoch;		/* PUSH_ACK */
	uint16_t	pad_to;		/* encoder: at least this long */
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
	uint8_t		type;	/* COOKIE, REGISTERED, REFUSED, PROBE_ECHO,
				   KICK */
	uint64_t	timestamp;	/* of the request answered */
	uint8_t		cookie[PROTO_COOKIE_LEN];	/* COOKIE */
	uint64_t	epoch;		/* REGISTERED */
	uint32_t	reg_id;		/* REGISTERED, KICK */
	uint32_t	lifetime;	/* REGISTERED; 0 after UNREGISTER */
	uint32_t	seq;		/* REGISTERED */
	uint16_t	keepalive_min;	/* REGISTERED, seconds */
	uint16_t	keepalive_max;	/* REGISTERED, seconds */
	uint8_t		reason;		/* REFUSED */
	uint32_t	limit;		/* REFUSED */
	uint64_t	value;		/* REFUSED: STALE server time (ms),
					   REPLAY the last timestamp seen */
};

struct mp_push {
	uint64_t	epoch;
	uint32_t	reg_id;
	uint32_t	seq;
	uint32_t	count;		/* new messages since the last acked push */
	uint32_t	total;		/* messages ever counted for this reg */
	uint64_t	server_time;	/* seconds */
	uint16_t	flags;
	uint16_t	ctx_len;
	uint8_t		ctx[MP_CONTEXT_MAX];
};

/* Type of a datagram after checking magic, version and length; -1 if none. */
int	proto_type(const uint8_t *buf, size_t len);
/* Is this type a request of the common layout? */
int	proto_is_request(int type);

/* token = HMAC-SHA256(key, user) */
void	proto_token(const uint8_t key[MP_KEY_LEN], const char *user,
	    size_t user_len, uint8_t token[MP_TOKEN_LEN]);
/* The push key of a user: keyed BLAKE2b (crypto_generichash) of the empty
 * message under the token, personal "mailpush-push-v2". */
void	proto_push_key(const uint8_t token[MP_TOKEN_LEN], uint8_t key[32]);
/* The HChaCha20 subkey XChaCha20 derives from a push key and the first 16
 * bytes of a nonce: a sender whose nonces share those bytes (mailpushd's
 * random prefix) makes it once per key, not once per push. */
void	proto_push_subkey(const uint8_t key[32], const uint8_t prefix[16],
	    uint8_t subkey[32]);
/* Check the trailing MAC of buf[0..len) under token, in constant time. */
int	proto_verify(const uint8_t *buf, size_t len,
	    const uint8_t token[MP_TOKEN_LEN]);
/* Length a client pads REGISTER, REFRESH and PROBE to. */
size_t	proto_request_pad(size_t ctx_len);

/*
 * Encoders return the datagram length or -1 when the buffer is too small or
 * a field is out of range.  A NULL token writes a MAC of zeros.
 */
int	proto_request_encode(const struct mp_request *,
	    const uint8_t token[MP_TOKEN_LEN], uint8_t *buf, size_t len);
int	proto_reply_encode(const struct mp_reply *,
	    const uint8_t token[MP_TOKEN_LEN], uint8_t *buf, size_t len);
int	proto_keepalive_encode(uint32_t reg_id, uint8_t *buf, size_t len);
/* Seal a PUSH under a push key with this nonce; proto_push_seal_sub
 * under the subkey of the key and the nonce's first 16 bytes (the same
 * datagram, byte for byte). */
int	proto_push_seal(const struct mp_push *, const uint8_t key[32],
	    const uint8_t nonce[PROTO_PUSH_NONCE_LEN], uint8_t *buf,
	    size_t len);
int	proto_push_seal_sub(const struct mp_push *, const uint8_t subkey[32],
	    const uint8_t nonce[PROTO_PUSH_NONCE_LEN], uint8_t *buf,
	    size_t len);

/* Decoders return 0, or -1 with a static reason in *why.  MACs are not
 * checked (proto_verify); proto_push_open authenticates and decrypts. */
int	proto_request_decode(const uint8_t *, size_t, struct mp_request *,
	    const char **why);
int	proto_reply_decode(const uint8_t *, size_t, struct mp_reply *,
	    const char **why);
int	proto_keepalive_decode(const uint8_t *, size_t, uint32_t *reg_id,
	    const char **why);
int	proto_push_open(const uint8_t *, size_t, const uint8_t key[32],
	    struct mp_push *, const char **why);

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
