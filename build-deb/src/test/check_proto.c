/*
 * check_proto.c: the UDP protocol codec (shared/proto.c) against
 * mailpush-protocol(7): round trips of every message, the example vectors
 * printed in the page, every malformed datagram a decoder must refuse,
 * encoders refusing what they cannot encode, MAC verification, token
 * derivation and the hex helpers for key and token files.
 *
 * Decoders are always handed a heap copy of exactly the bytes under test,
 * so that a read past the end shows up under `make SANITIZE=1'.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <sodium.h>

#include "proto.h"
#include "wire.h"

Suite	*make_proto_suite(void);

/* The example of mailpush-protocol(7): key 0x00..0x1f, user "alice". */
static const char alice_token_hex[] =
    "6eefad2bed97b6d93ee663d67a44b460"
    "16b3d79dcad54ada39b61a1d14874d1b";

/* EXAMPLES 1: REGISTER, timestamp 1700000000, nonce 0x01020304, "ctx". */
static const uint8_t vec_register[] = {
	0x4d, 0x50, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00,
	0x65, 0x53, 0xf1, 0x00, 0x01, 0x02, 0x03, 0x04,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x03,
	0x61, 0x6c, 0x69, 0x63, 0x65, 0x63, 0x74, 0x78,
	0x4d, 0xfa, 0x0f, 0x1a, 0x32, 0x4f, 0x1d, 0xfc,
	0xa3, 0x94, 0xfd, 0xc3, 0x2c, 0x9e, 0x5f, 0x10,
	0x32, 0x87, 0xec, 0x4b, 0xd6, 0x6d, 0x2c, 0xe8,
	0xfa, 0x7b, 0xec, 0x05, 0xc7, 0xc3, 0x7c, 0x67,
};

/* EXAMPLES 3: the REGISTER again with cookie a0..af and mailbox INBOX. */
static const uint8_t vec_register2[] = {
	0x4d, 0x50, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00,
	0x65, 0x53, 0xf1, 0x01, 0x05, 0x06, 0x07, 0x08,
	0x00, 0x00, 0x00, 0x00, 0xa0, 0xa1, 0xa2, 0xa3,
	0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab,
	0xac, 0xad, 0xae, 0xaf, 0x05, 0x01, 0x00, 0x03,
	0x61, 0x6c, 0x69, 0x63, 0x65, 0x63, 0x74, 0x78,
	0x05, 0x49, 0x4e, 0x42, 0x4f, 0x58, 0x79, 0x10,
	0x46, 0x0b, 0xa8, 0x1b, 0xd9, 0x55, 0x95, 0x99,
	0xaa, 0x75, 0x8f, 0x96, 0x8d, 0xe8, 0x04, 0x75,
	0xc2, 0xf5, 0x8a, 0xb6, 0x19, 0xbe, 0x47, 0x8a,
	0xbc, 0x54, 0xc2, 0xf5, 0x23, 0x76,
};

/* EXAMPLES 4: REGISTERED, reg_id 0x2a, lifetime 600, seq 0. */
static const uint8_t vec_registered[] = {
	0x4d, 0x50, 0x01, 0x05, 0x05, 0x06, 0x07, 0x08,
	0x00, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x02, 0x58,
	0x00, 0x00, 0x00, 0x00, 0xae, 0x19, 0xff, 0x6d,
	0x89, 0x05, 0xd6, 0xb1, 0x95, 0x5f, 0x9e, 0x5f,
	0xb1, 0xa0, 0x07, 0x45, 0xe9, 0x5a, 0xa5, 0x4b,
	0x07, 0x1c, 0xb4, 0xca, 0x89, 0x7d, 0xf7, 0xd2,
	0xfd, 0x99, 0x09, 0xac,
};

/* EXAMPLES 5: PUSH, seq 1, count 2, total 2, server_time 1700000060. */
static const uint8_t vec_push[] = {
	0x4d, 0x50, 0x01, 0x07, 0x00, 0x00, 0x00, 0x2a,
	0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,
	0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
	0x65, 0x53, 0xf1, 0x3c, 0x00, 0x03, 0x00, 0x00,
	0x63, 0x74, 0x78, 0xfe, 0x07, 0xac, 0x8a, 0x31,
	0x0f, 0xf0, 0x5d, 0x33, 0x9b, 0x0d, 0xf5, 0x7f,
	0x1d, 0x43, 0x4d, 0x13, 0x2c, 0x57, 0xff, 0xe0,
	0x05, 0x98, 0x8f, 0x28, 0x73, 0xcf, 0x1e, 0x4d,
	0x74, 0x7c, 0x6a,
};

/* EXAMPLES 6: PUSH_ACK of it. */
static const uint8_t vec_ack[] = {
	0x4d, 0x50, 0x01, 0x08, 0x00, 0x00, 0x00, 0x2a,
	0x00, 0x00, 0x00, 0x01, 0x4b, 0xf1, 0xf9, 0xa6,
	0x90, 0x3a, 0x90, 0xa7, 0x4b, 0xe0, 0x0e, 0xb3,
	0x4e, 0xdd, 0xda, 0x10, 0x23, 0x43, 0xac, 0x1c,
	0x7d, 0x3a, 0xfa, 0x47, 0xc5, 0xf9, 0x16, 0xdf,
	0x49, 0x07, 0xbc, 0xc4,
};

/* EXAMPLES 8: REFUSED TOO_MANY, limit 8, server_time 1700000300. */
static const uint8_t vec_refused[] = {
	0x4d, 0x50, 0x01, 0x06, 0x09, 0x0a, 0x0b, 0x0c,
	0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08,
	0x00, 0x00, 0x00, 0x00, 0x65, 0x53, 0xf2, 0x2c,
	0xa7, 0xdf, 0xb9, 0xeb, 0x64, 0x7d, 0xac, 0x42,
	0x35, 0xed, 0xc5, 0xc1, 0x75, 0xef, 0x4b, 0x42,
	0x4f, 0xbe, 0xe1, 0x08, 0xd7, 0x21, 0x6f, 0x33,
	0x0b, 0xd5, 0xfa, 0x99, 0x6a, 0xca, 0xcb, 0xec,
};

static uint8_t	key[MP_KEY_LEN];
static uint8_t	token[MP_TOKEN_LEN];

static void
setup(void)
{
	size_t i;

	ck_assert_int_ge(sodium_init(), 0);
	for (i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)i;
	proto_token(key, "alice", 5, token);
}

/* Fill a request: user, context and mailboxes from C strings. */
static void
req_fill(struct mp_request *rq, uint8_t type, const char *user,
    const char *ctx, const char **mailboxes, size_t n)
{
	size_t i;

	memset(rq, 0, sizeof(*rq));
	rq->type = type;
	rq->timestamp = 1700000000;
	rq->nonce = 0x01020304;
	rq->reg_id = type == PROTO_REGISTER ? 0 : 0x2a;
	rq->user_len = (uint8_t)strlen(user);
	memcpy(rq->user, user, rq->user_len);
	rq->ctx_len = (uint16_t)strlen(ctx);
	memcpy(rq->ctx, ctx, rq->ctx_len);
	rq->n_mailboxes = (uint8_t)n;
	for (i = 0; i < n; i++) {
		rq->mailboxes[i].len = (uint8_t)strlen(mailboxes[i]);
		memcpy(rq->mailboxes[i].name, mailboxes[i],
		    rq->mailboxes[i].len);
	}
}

/*
 * Run every decoder over exactly buf[0..len) in a fresh heap copy.
 * Returns a bit mask: 1 request, 2 reply, 4 push, 8 ack decoded it.
 */
static unsigned
decode_all(const uint8_t *buf, size_t len)
{
	static struct mp_request rq;
	struct mp_reply rp;
	struct mp_push p;
	struct mp_ack a;
	const char *why;
	uint8_t *copy;
	unsigned mask = 0;

	copy = malloc(len == 0 ? 1 : len);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, buf, len);
	why = NULL;
	if (proto_request_decode(copy, len, &rq, &why) == 0)
		mask |= 1;
	else
		ck_assert_ptr_nonnull(why);
	why = NULL;
	if (proto_reply_decode(copy, len, &rp, &why) == 0)
		mask |= 2;
	else
		ck_assert_ptr_nonnull(why);
	why = NULL;
	if (proto_push_decode(copy, len, &p, &why) == 0)
		mask |= 4;
	else
		ck_assert_ptr_nonnull(why);
	why = NULL;
	if (proto_ack_decode(copy, len, &a, &why) == 0)
		mask |= 8;
	else
		ck_assert_ptr_nonnull(why);
	free(copy);
	return mask;
}

/* The request decoder refuses buf, with a reason containing `what'. */
static void
request_bad(const uint8_t *buf, size_t len, const char *what)
{
	static struct mp_request rq;
	const char *why = NULL;
	uint8_t *copy = malloc(len);

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, buf, len);
	ck_assert_int_eq(proto_request_decode(copy, len, &rq, &why), -1);
	free(copy);
	ck_assert_ptr_nonnull(why);
	ck_assert_msg(strstr(why, what) != NULL, "reason \"%s\" lacks \"%s\"",
	    why, what);
	ck_assert_uint_eq(decode_all(buf, len), 0);
}

/* One datagram of every type, for the loops below. */
struct sample {
	const char	*name;
	uint8_t		 buf[PROTO_MAX_DATAGRAM];
	size_t		 len;
	unsigned	 decoder;	/* decode_all bit */
};

static size_t
make_samples(struct sample *s)
{
	static const char *mb[] = { "INBOX", "Lists/dev", "Archive" };
	static struct mp_request rq;
	struct mp_reply rp;
	struct mp_push p;
	struct mp_ack a;
	size_t n = 0, i;
	int len;
	uint8_t type;

	for (type = PROTO_REGISTER; type <= PROTO_UNREGISTER; type++) {
		req_fill(&rq, type, "alice", "ctx", mb, 3);
		len = proto_request_encode(&rq, token, s[n].buf,
		    sizeof(s[n].buf));
		ck_assert_int_gt(len, 0);
		s[n].name = proto_type_name(type);
		s[n].len = (size_t)len;
		s[n++].decoder = 1;
	}
	req_fill(&rq, PROTO_REGISTER, "alice", "", NULL, 0);
	len = proto_request_encode(&rq, token, s[n].buf, sizeof(s[n].buf));
	ck_assert_int_eq(len, PROTO_REQ_FIXED + 5 + PROTO_MAC_LEN);
	s[n].name = "REGISTER, no context or mailbox";
	s[n].len = (size_t)len;
	s[n++].decoder = 1;

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_COOKIE;
	rp.nonce = 7;
	memset(rp.cookie, 0xc5, sizeof(rp.cookie));
	s[n].name = "COOKIE";
	s[n].len = (size_t)proto_reply_encode(&rp, NULL, s[n].buf,
	    sizeof(s[n].buf));
	s[n++].decoder = 2;
	rp.type = PROTO_REGISTERED;
	rp.reg_id = 0x2a;
	rp.lifetime = 600;
	rp.seq = 3;
	s[n].name = "REGISTERED";
	s[n].len = (size_t)proto_reply_encode(&rp, token, s[n].buf,
	    sizeof(s[n].buf));
	s[n++].decoder = 2;
	rp.type = PROTO_REFUSED;
	rp.reason = REASON_TOO_MANY;
	rp.limit = 8;
	rp.server_time = 1700000000;
	s[n].name = "REFUSED";
	s[n].len = (size_t)proto_reply_encode(&rp, token, s[n].buf,
	    sizeof(s[n].buf));
	s[n++].decoder = 2;

	memset(&p, 0, sizeof(p));
	p.reg_id = 0x2a;
	p.seq = 1;
	p.count = 2;
	p.total = 5;
	p.server_time = 1700000060;
	p.ctx_len = 3;
	memcpy(p.ctx, "ctx", 3);
	s[n].name = "PUSH";
	s[n].len = (size_t)proto_push_encode(&p, token, s[n].buf,
	    sizeof(s[n].buf));
	s[n++].decoder = 4;
	p.ctx_len = 0;
	s[n].name = "PUSH, no context";
	s[n].len = (size_t)proto_push_encode(&p, token, s[n].buf,
	    sizeof(s[n].buf));
	s[n++].decoder = 4;

	a.reg_id = 0x2a;
	a.seq = 1;
	s[n].name = "PUSH_ACK";
	s[n].len = (size_t)proto_ack_encode(&a, token, s[n].buf,
	    sizeof(s[n].buf));
	s[n++].decoder = 8;

	for (i = 0; i < n; i++)
		ck_assert_msg(s[i].len >= PROTO_HDR_LEN &&
		    s[i].len <= PROTO_MAX_DATAGRAM, "%s: encoder failed",
		    s[i].name);
	return n;
}

#define NSAMPLES	10

/* Round trips */

START_TEST(test_request_round_trip)
{
	static const char *mb[MP_MAILBOXES_MAX];
	static struct mp_request in, out;
	static char names[MP_MAILBOXES_MAX][8];
	uint8_t buf[PROTO_MAX_DATAGRAM];
	const char *why = NULL;
	size_t i, n = (size_t)_i % (MP_MAILBOXES_MAX + 1);
	uint8_t type = (uint8_t)(PROTO_REGISTER + _i % 3);
	int len;

	for (i = 0; i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "bx%02zu", i);
		mb[i] = names[i];
	}
	req_fill(&in, type, "Bob+news@Example.COM", "\001ctx\000\377", mb, n);
	in.ctx_len = 6;		/* a NUL and 0xff are fine in a context */
	memcpy(in.ctx, "\001ctx\000\377", 6);
	in.timestamp = 0x0102030405060708ULL;
	in.nonce = 0xdeadbeef;
	in.reg_id = type == PROTO_REGISTER ? 0 : 0xcafef00d;
	memset(in.cookie, 0xa5, sizeof(in.cookie));
	len = proto_request_encode(&in, token, buf, sizeof(buf));
	ck_assert_int_gt(len, 0);
	ck_assert_int_eq(proto_type(buf, (size_t)len), type);
	ck_assert_int_eq(proto_verify(buf, (size_t)len, token), 0);

	/* The layout of the page, field by field. */
	ck_assert_uint_eq(get16(buf), 0x4d50);
	ck_assert_uint_eq(buf[2], 1);
	ck_assert_uint_eq(buf[3], type);
	ck_assert_uint_eq(get64(buf + 4), 0x0102030405060708ULL);
	ck_assert_uint_eq(get32(buf + 12), 0xdeadbeef);
	ck_assert_uint_eq(get32(buf + 16), in.reg_id);
	ck_assert_uint_eq(buf[20], 0xa5);
	ck_assert_uint_eq(buf[35], 0xa5);
	ck_assert_uint_eq(buf[36], 20);
	ck_assert_uint_eq(buf[37], n);
	ck_assert_uint_eq(get16(buf + 38), 6);
	ck_assert_mem_eq(buf + 40, "Bob+news@Example.COM", 20);
	ck_assert_mem_eq(buf + 60, "\001ctx\000\377", 6);
	ck_assert_int_eq(len, 40 + 20 + 6 + (int)(n * 5) + 32);
	for (i = 0; i < n; i++) {
		ck_assert_uint_eq(buf[66 + 5 * i], 4);
		ck_assert_mem_eq(buf + 67 + 5 * i, names[i], 4);
	}

	memset(&out, 0x55, sizeof(out));
	ck_assert_int_eq(proto_request_decode(buf, (size_t)len, &out, &why),
	    0);
	ck_assert_uint_eq(out.type, type);
	ck_assert_uint_eq(out.timestamp, in.timestamp);
	ck_assert_uint_eq(out.nonce, in.nonce);
	ck_assert_uint_eq(out.reg_id, in.reg_id);
	ck_assert_mem_eq(out.cookie, in.cookie, PROTO_COOKIE_LEN);
	ck_assert_uint_eq(out.user_len, 20);
	ck_assert_str_eq(out.user, "Bob+news@Example.COM");
	ck_assert_uint_eq(out.ctx_len, 6);
	ck_assert_mem_eq(out.ctx, in.ctx, 6);
	ck_assert_uint_eq(out.n_mailboxes, n);
	for (i = 0; i < n; i++) {
		ck_assert_uint_eq(out.mailboxes[i].len, 4);
		ck_assert_str_eq(out.mailboxes[i].name, names[i]);
	}
	ck_assert_uint_eq(decode_all(buf, (size_t)len), 1);
}
END_TEST

START_TEST(test_request_limits)
{
	static struct mp_request in, out;
	uint8_t buf[PROTO_MAX_DATAGRAM];
	const char *why = NULL;
	size_t i;
	int len;

	/* Exactly 1232 bytes: user 136, context 1024. */
	req_fill(&in, PROTO_REGISTER, "u", "", NULL, 0);
	in.user_len = 136;
	memset(in.user, 'u', 136);
	in.ctx_len = MP_CONTEXT_MAX;
	for (i = 0; i < MP_CONTEXT_MAX; i++)
		in.ctx[i] = (uint8_t)i;
	len = proto_request_encode(&in, token, buf, sizeof(buf));
	ck_assert_int_eq(len, PROTO_MAX_DATAGRAM);
	ck_assert_int_eq(proto_request_decode(buf, (size_t)len, &out, &why),
	    0);
	ck_assert_uint_eq(out.ctx_len, MP_CONTEXT_MAX);
	ck_assert_mem_eq(out.ctx, in.ctx, MP_CONTEXT_MAX);
	ck_assert_uint_eq(out.user_len, 136);

	/* A 255-byte user and sixteen mailboxes, the longest 255 bytes. */
	req_fill(&in, PROTO_REGISTER, "u", "", NULL, 0);
	in.user_len = MP_USER_MAX;
	memset(in.user, 'a', MP_USER_MAX);
	in.n_mailboxes = MP_MAILBOXES_MAX;
	for (i = 0; i < MP_MAILBOXES_MAX; i++) {
		in.mailboxes[i].len = i == 0 ? MP_MAILBOX_MAX : 30;
		memset(in.mailboxes[i].name, 'A' + (int)i,
		    in.mailboxes[i].len);
	}
	len = proto_request_encode(&in, token, buf, sizeof(buf));
	ck_assert_int_eq(len, 40 + 255 + 256 + 15 * 31 + 32);
	ck_assert_int_eq(proto_request_decode(buf, (size_t)len, &out, &why),
	    0);
	ck_assert_uint_eq(out.user_len, MP_USER_MAX);
	ck_assert_uint_eq(out.n_mailboxes, MP_MAILBOXES_MAX);
	ck_assert_uint_eq(out.mailboxes[0].len, MP_MAILBOX_MAX);
	ck_assert_uint_eq(strlen(out.mailboxes[0].name), MP_MAILBOX_MAX);
	ck_assert_uint_eq(out.mailboxes[15].name[0], 'A' + 15);
}
END_TEST

START_TEST(test_reply_round_trip)
{
	struct mp_reply in, out;
	uint8_t buf[64];
	const char *why = NULL;
	unsigned r;
	size_t i;
	int len;

	memset(&in, 0, sizeof(in));
	in.type = PROTO_COOKIE;
	in.nonce = 0x01020304;
	for (i = 0; i < PROTO_COOKIE_LEN; i++)
		in.cookie[i] = (uint8_t)(0xa0 + i);
	len = proto_reply_encode(&in, token, buf, sizeof(buf));
	ck_assert_int_eq(len, 24);
	ck_assert_mem_eq(buf, "\x4d\x50\x01\x04\x01\x02\x03\x04", 8);
	ck_assert_mem_eq(buf + 8, in.cookie, PROTO_COOKIE_LEN);
	ck_assert_int_eq(proto_reply_decode(buf, 24, &out, &why), 0);
	ck_assert_uint_eq(out.type, PROTO_COOKIE);
	ck_assert_uint_eq(out.nonce, 0x01020304);
	ck_assert_mem_eq(out.cookie, in.cookie, PROTO_COOKIE_LEN);

	memset(&in, 0, sizeof(in));
	in.type = PROTO_REGISTERED;
	in.nonce = 0xffffffff;
	in.reg_id = 0x80000001;
	in.lifetime = 600;
	in.seq = 0xfffffffe;
	len = proto_reply_encode(&in, token, buf, sizeof(buf));
	ck_assert_int_eq(len, PROTO_REGISTERED_LEN);
	ck_assert_int_eq(proto_verify(buf, (size_t)len, token), 0);
	ck_assert_int_eq(proto_reply_decode(buf, (size_t)len, &out, &why), 0);
	ck_assert_uint_eq(out.type, PROTO_REGISTERED);
	ck_assert_uint_eq(out.nonce, 0xffffffff);
	ck_assert_uint_eq(out.reg_id, 0x80000001);
	ck_assert_uint_eq(out.lifetime, 600);
	ck_assert_uint_eq(out.seq, 0xfffffffe);

	for (r = 1; r <= REASON_MAX; r++) {
		memset(&in, 0, sizeof(in));
		in.type = PROTO_REFUSED;
		in.nonce = r;
		in.reason = (uint8_t)r;
		in.limit = 1000 + r;
		in.server_time = 0x1122334455667788ULL;
		len = proto_reply_encode(&in, token, buf, sizeof(buf));
		ck_assert_int_eq(len, PROTO_REFUSED_LEN);
		ck_assert_uint_eq(buf[8], r);
		ck_assert_uint_eq(buf[9] | buf[10] | buf[11], 0);
		ck_assert_uint_eq(get32(buf + 12), 1000 + r);
		ck_assert_uint_eq(get64(buf + 16), 0x1122334455667788ULL);
		ck_assert_int_eq(proto_verify(buf, (size_t)len, token), 0);
		ck_assert_int_eq(proto_reply_decode(buf, (size_t)len, &out,
		    &why), 0);
		ck_assert_uint_eq(out.type, PROTO_REFUSED);
		ck_assert_uint_eq(out.nonce, r);
		ck_assert_uint_eq(out.reason, r);
		ck_assert_uint_eq(out.limit, 1000 + r);
		ck_assert_uint_eq(out.server_time, 0x1122334455667788ULL);
		ck_assert_uint_eq(decode_all(buf, (size_t)len), 2);
	}
}
END_TEST

START_TEST(test_push_round_trip)
{
	static const uint16_t sizes[] = { 0, 1, 16, 17, 1023, MP_CONTEXT_MAX };
	static struct mp_push in, out;
	uint8_t buf[PROTO_MAX_DATAGRAM];
	const char *why = NULL;
	size_t i, k;
	int len;

	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		memset(&in, 0, sizeof(in));
		in.reg_id = 0x2a;
		in.seq = (uint32_t)k + 1;
		in.count = 3;
		in.total = 0xfffffff0;
		in.server_time = 1700000060;
		in.ctx_len = sizes[k];
		for (i = 0; i < in.ctx_len; i++)
			in.ctx[i] = (uint8_t)(i * 7);
		len = proto_push_encode(&in, token, buf, sizeof(buf));
		ck_assert_int_eq(len, 64 + sizes[k]);
		ck_assert_uint_eq(get16(buf + 28), sizes[k]);
		ck_assert_uint_eq(get16(buf + 30), 0);
		ck_assert_int_eq(proto_verify(buf, (size_t)len, token), 0);
		memset(&out, 0x55, sizeof(out));
		ck_assert_int_eq(proto_push_decode(buf, (size_t)len, &out,
		    &why), 0);
		ck_assert_uint_eq(out.reg_id, 0x2a);
		ck_assert_uint_eq(out.seq, k + 1);
		ck_assert_uint_eq(out.count, 3);
		ck_assert_uint_eq(out.total, 0xfffffff0);
		ck_assert_uint_eq(out.server_time, 1700000060);
		ck_assert_uint_eq(out.ctx_len, sizes[k]);
		ck_assert_mem_eq(out.ctx, in.ctx, sizes[k]);
		ck_assert_uint_eq(decode_all(buf, (size_t)len), 4);
	}
}
END_TEST

START_TEST(test_ack_round_trip)
{
	struct mp_ack in, out;
	uint8_t buf[PROTO_ACK_LEN];
	const char *why = NULL;

	in.reg_id = 0xfedcba98;
	in.seq = 0x01000000;
	ck_assert_int_eq(proto_ack_encode(&in, token, buf, sizeof(buf)),
	    PROTO_ACK_LEN);
	ck_assert_mem_eq(buf, "\x4d\x50\x01\x08\xfe\xdc\xba\x98\x01\0\0\0",
	    12);
	ck_assert_int_eq(proto_verify(buf, sizeof(buf), token), 0);
	ck_assert_int_eq(proto_ack_decode(buf, sizeof(buf), &out, &why), 0);
	ck_assert_uint_eq(out.reg_id, 0xfedcba98);
	ck_assert_uint_eq(out.seq, 0x01000000);
	ck_assert_uint_eq(decode_all(buf, sizeof(buf)), 8);
}
END_TEST

START_TEST(test_type_and_names)
{
	uint8_t buf[PROTO_MAX_DATAGRAM + 1];
	unsigned t;

	memset(buf, 0, sizeof(buf));
	put16(buf, PROTO_MAGIC);
	buf[2] = PROTO_VERSION;
	for (t = 0; t < 256; t++) {
		buf[3] = (uint8_t)t;
		ck_assert_int_eq(proto_type(buf, 4),
		    t >= 1 && t <= 8 ? (int)t : -1);
		/* Anything over 1232 bytes has no type at all. */
		ck_assert_int_eq(proto_type(buf, PROTO_MAX_DATAGRAM + 1), -1);
	}
	buf[3] = PROTO_PUSH;
	ck_assert_int_eq(proto_type(buf, PROTO_MAX_DATAGRAM), PROTO_PUSH);
	ck_assert_int_eq(proto_type(buf, 3), -1);
	ck_assert_int_eq(proto_type(buf, 0), -1);
	buf[0] = 0x4e;
	ck_assert_int_eq(proto_type(buf, 4), -1);
	buf[0] = 0x4d;
	buf[2] = 2;
	ck_assert_int_eq(proto_type(buf, 4), -1);
	buf[2] = 0;
	ck_assert_int_eq(proto_type(buf, 4), -1);

	ck_assert_str_eq(proto_type_name(PROTO_REGISTER), "REGISTER");
	ck_assert_str_eq(proto_type_name(PROTO_PUSH_ACK), "PUSH_ACK");
	ck_assert_str_eq(proto_type_name(9), "?");
	ck_assert_str_eq(proto_type_name(0), "?");
	for (t = 1; t <= REASON_MAX; t++)
		ck_assert_str_ne(proto_reason_name(t), "unknown reason");
	ck_assert_str_eq(proto_reason_name(REASON_TOO_MANY),
	    "too many registrations for this user");
	ck_assert_str_eq(proto_reason_name(REASON_MAX + 1), "unknown reason");
	ck_assert_str_eq(proto_reason_name(~0U), "unknown reason");
}
END_TEST

/* The example exchange of mailpush-protocol(7), byte for byte. */
START_TEST(test_page_vectors)
{
	static const char *inbox[] = { "INBOX" };
	static struct mp_request rq;
	struct mp_reply rp;
	struct mp_push p;
	struct mp_ack a;
	uint8_t buf[PROTO_MAX_DATAGRAM];
	const char *why = NULL;
	size_t i;
	int len;

	req_fill(&rq, PROTO_REGISTER, "alice", "ctx", NULL, 0);
	len = proto_request_encode(&rq, token, buf, sizeof(buf));
	ck_assert_int_eq(len, (int)sizeof(vec_register));
	ck_assert_mem_eq(buf, vec_register, sizeof(vec_register));

	req_fill(&rq, PROTO_REGISTER, "alice", "ctx", inbox, 1);
	rq.timestamp = 1700000001;
	rq.nonce = 0x05060708;
	for (i = 0; i < PROTO_COOKIE_LEN; i++)
		rq.cookie[i] = (uint8_t)(0xa0 + i);
	len = proto_request_encode(&rq, token, buf, sizeof(buf));
	ck_assert_int_eq(len, (int)sizeof(vec_register2));
	ck_assert_mem_eq(buf, vec_register2, sizeof(vec_register2));

	ck_assert_int_eq(proto_reply_decode(vec_registered,
	    sizeof(vec_registered), &rp, &why), 0);
	ck_assert_uint_eq(rp.type, PROTO_REGISTERED);
	ck_assert_uint_eq(rp.nonce, 0x05060708);
	ck_assert_uint_eq(rp.reg_id, 0x2a);
	ck_assert_uint_eq(rp.lifetime, 600);
	ck_assert_uint_eq(rp.seq, 0);
	ck_assert_int_eq(proto_verify(vec_registered, sizeof(vec_registered),
	    token), 0);
	len = proto_reply_encode(&rp, token, buf, sizeof(buf));
	ck_assert_mem_eq(buf, vec_registered, sizeof(vec_registered));

	ck_assert_int_eq(proto_push_decode(vec_push, sizeof(vec_push), &p,
	    &why), 0);
	ck_assert_uint_eq(p.reg_id, 0x2a);
	ck_assert_uint_eq(p.seq, 1);
	ck_assert_uint_eq(p.count, 2);
	ck_assert_uint_eq(p.total, 2);
	ck_assert_uint_eq(p.server_time, 1700000060);
	ck_assert_uint_eq(p.ctx_len, 3);
	ck_assert_mem_eq(p.ctx, "ctx", 3);
	ck_assert_int_eq(proto_verify(vec_push, sizeof(vec_push), token), 0);
	len = proto_push_encode(&p, token, buf, sizeof(buf));
	ck_assert_int_eq(len, (int)sizeof(vec_push));
	ck_assert_mem_eq(buf, vec_push, sizeof(vec_push));

	a.reg_id = 0x2a;
	a.seq = 1;
	len = proto_ack_encode(&a, token, buf, sizeof(buf));
	ck_assert_int_eq(len, (int)sizeof(vec_ack));
	ck_assert_mem_eq(buf, vec_ack, sizeof(vec_ack));

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_REFUSED;
	rp.nonce = 0x090a0b0c;
	rp.reason = REASON_TOO_MANY;
	rp.limit = 8;
	rp.server_time = 1700000300;
	len = proto_reply_encode(&rp, token, buf, sizeof(buf));
	ck_assert_int_eq(len, (int)sizeof(vec_refused));
	ck_assert_mem_eq(buf, vec_refused, sizeof(vec_refused));
}
END_TEST

/* Malformed datagrams */

START_TEST(test_truncated)
{
	static struct sample s[NSAMPLES];
	size_t n = make_samples(s), i, len;

	ck_assert_uint_eq(n, NSAMPLES);
	for (i = 0; i < n; i++) {
		ck_assert_msg(decode_all(s[i].buf, s[i].len) == s[i].decoder,
		    "%s: not decoded by its own decoder alone", s[i].name);
		for (len = 0; len < s[i].len; len++)
			ck_assert_msg(decode_all(s[i].buf, len) == 0,
			    "%s truncated to %zu of %zu bytes decoded",
			    s[i].name, len, s[i].len);
	}
}
END_TEST

START_TEST(test_oversized)
{
	static struct sample s[NSAMPLES];
	static uint8_t big[PROTO_MAX_DATAGRAM + 2];
	static struct mp_request rq;
	size_t n = make_samples(s), i, extra;

	for (i = 0; i < n; i++)
		for (extra = 1; extra <= 2; extra++) {
			memcpy(big, s[i].buf, s[i].len);
			memset(big + s[i].len, 0, extra);
			ck_assert_msg(decode_all(big, s[i].len + extra) == 0,
			    "%s with %zu extra bytes decoded", s[i].name,
			    extra);
		}

	/* A request of 1233 bytes whose fields are consistent. */
	memset(big, 0, sizeof(big));
	put16(big, PROTO_MAGIC);
	big[2] = PROTO_VERSION;
	big[3] = PROTO_REGISTER;
	big[36] = 137;
	put16(big + 38, MP_CONTEXT_MAX);
	memset(big + 40, 'u', 137);
	request_bad(big, PROTO_MAX_DATAGRAM + 1, "not a mailpush request");
	/* ... and the same with one byte less of user name is fine. */
	big[36] = 136;
	ck_assert_uint_eq(decode_all(big, PROTO_MAX_DATAGRAM), 1);

	/* The encoder will not make one either. */
	req_fill(&rq, PROTO_REGISTER, "u", "", NULL, 0);
	rq.user_len = 137;
	memset(rq.user, 'u', 137);
	rq.ctx_len = MP_CONTEXT_MAX;
	ck_assert_int_eq(proto_request_encode(&rq, token, big, sizeof(big)),
	    -1);
}
END_TEST

START_TEST(test_bad_header)
{
	static struct sample s[NSAMPLES];
	uint8_t buf[PROTO_MAX_DATAGRAM];
	size_t n = make_samples(s), i;
	unsigned t, v;

	for (i = 0; i < n; i++) {
		memcpy(buf, s[i].buf, s[i].len);
		buf[0] ^= 0x01;
		ck_assert_msg(decode_all(buf, s[i].len) == 0,
		    "%s with bad magic decoded", s[i].name);
		memcpy(buf, s[i].buf, s[i].len);
		buf[1] = 0x51;
		ck_assert_uint_eq(decode_all(buf, s[i].len), 0);
		for (v = 0; v < 256; v++) {
			if (v == PROTO_VERSION)
				continue;
			memcpy(buf, s[i].buf, s[i].len);
			buf[2] = (uint8_t)v;
			ck_assert_msg(decode_all(buf, s[i].len) == 0,
			    "%s with version %u decoded", s[i].name, v);
		}
		for (t = 0; t < 256; t++) {
			unsigned got;

			memcpy(buf, s[i].buf, s[i].len);
			buf[3] = (uint8_t)t;
			got = decode_all(buf, s[i].len);
			if (t < 1 || t > 8) {
				ck_assert_msg(got == 0,
				    "%s as type %u decoded", s[i].name, t);
				continue;
			}
			/* Requests with another request type are valid:
			 * the three share a layout.  Nothing else is. */
			if (s[i].decoder == 1 && t <= PROTO_UNREGISTER)
				ck_assert_uint_eq(got, 1);
			else if (t != s[i].buf[3])
				ck_assert_msg(got == 0, "%s as type %u "
				    "decoded", s[i].name, t);
		}
	}
}
END_TEST

START_TEST(test_request_fields)
{
	static const char *two[] = { "INBOX", "Sent" };
	static struct mp_request rq;
	uint8_t buf[PROTO_MAX_DATAGRAM], bad[PROTO_MAX_DATAGRAM];
	size_t len, i;
	int n;

	/* alice, "ctx", INBOX and Sent: user at 40, context at 45, the
	 * mailboxes at 48 (05 INBOX) and 54 (04 Sent), MAC at 59. */
	req_fill(&rq, PROTO_REGISTER, "alice", "ctx", two, 2);
	n = proto_request_encode(&rq, token, buf, sizeof(buf));
	ck_assert_int_eq(n, 40 + 5 + 3 + 6 + 5 + 32);
	len = (size_t)n;
	ck_assert_uint_eq(decode_all(buf, len), 1);

	memcpy(bad, buf, len);
	bad[36] = 0;
	request_bad(bad, len, "empty user name");

	memcpy(bad, buf, len);
	bad[40 + 2] = '\0';
	request_bad(bad, len, "user name contains a NUL");

	memcpy(bad, buf, len);
	bad[49 + 1] = '\0';
	request_bad(bad, len, "mailbox name contains a NUL");

	/* A NUL in the opaque context is fine. */
	memcpy(bad, buf, len);
	bad[45 + 1] = '\0';
	ck_assert_uint_eq(decode_all(bad, len), 1);

	/* More mailboxes said than present, fewer, too many. */
	memcpy(bad, buf, len);
	bad[37] = 3;
	request_bad(bad, len, "mailbox");
	memcpy(bad, buf, len);
	bad[37] = 1;
	request_bad(bad, len, "trailing bytes");
	memcpy(bad, buf, len);
	bad[37] = 0;
	request_bad(bad, len, "trailing bytes");
	memcpy(bad, buf, len);
	bad[37] = MP_MAILBOXES_MAX + 1;
	request_bad(bad, len, "more than 16 mailboxes");
	memcpy(bad, buf, len);
	bad[37] = 255;
	request_bad(bad, len, "more than 16 mailboxes");

	/* Mailbox lengths: empty, running into the MAC, short. */
	memcpy(bad, buf, len);
	bad[54] = 0;
	request_bad(bad, len, "mailbox name empty or truncated");
	memcpy(bad, buf, len);
	bad[54] = 5;
	request_bad(bad, len, "mailbox name empty or truncated");
	memcpy(bad, buf, len);
	bad[54] = 255;
	request_bad(bad, len, "mailbox name empty or truncated");
	memcpy(bad, buf, len);
	bad[54] = 3;
	request_bad(bad, len, "trailing bytes");
	memcpy(bad, buf, len);
	bad[48] = 6;
	request_bad(bad, len, "mailbox");

	/* User and context lengths that do not match the datagram. */
	for (i = 0; i < 256; i++) {
		if (i == 5)
			continue;
		memcpy(bad, buf, len);
		bad[36] = (uint8_t)i;
		ck_assert_msg(decode_all(bad, len) == 0,
		    "user_len %zu decoded", i);
	}
	for (i = 0; i <= MP_CONTEXT_MAX + 1; i++) {
		if (i == 3)
			continue;
		memcpy(bad, buf, len);
		put16(bad + 38, (uint16_t)i);
		ck_assert_msg(decode_all(bad, len) == 0,
		    "context_len %zu decoded", i);
	}
	memcpy(bad, buf, len);
	put16(bad + 38, 0xffff);
	request_bad(bad, len, "context longer than 1024");

	/* Trailing bytes between the last mailbox and the MAC. */
	memcpy(bad, buf, 59);
	bad[59] = 'x';
	memcpy(bad + 60, buf + 59, 32);
	request_bad(bad, len + 1, "trailing bytes");
}
END_TEST

START_TEST(test_request_ctx_too_long)
{
	uint8_t buf[PROTO_MAX_DATAGRAM];
	size_t len = 40 + 1 + 1025 + 32;

	/* Consistent lengths, but a 1025-byte context. */
	memset(buf, 0, sizeof(buf));
	put16(buf, PROTO_MAGIC);
	buf[2] = PROTO_VERSION;
	buf[3] = PROTO_REGISTER;
	buf[36] = 1;
	put16(buf + 38, MP_CONTEXT_MAX + 1);
	buf[40] = 'u';
	request_bad(buf, len, "context longer than 1024");
	/* One byte less context and datagram: accepted. */
	put16(buf + 38, MP_CONTEXT_MAX);
	ck_assert_uint_eq(decode_all(buf, len - 1), 1);
}
END_TEST

START_TEST(test_reply_fields)
{
	struct mp_reply rp;
	uint8_t buf[PROTO_REFUSED_LEN];
	const char *why = NULL;
	unsigned r;

	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_REFUSED;
	rp.reason = REASON_AUTH;
	ck_assert_int_eq(proto_reply_encode(&rp, token, buf, sizeof(buf)),
	    PROTO_REFUSED_LEN);
	for (r = 0; r < 256; r++) {
		buf[8] = (uint8_t)r;
		why = NULL;
		if (r >= 1 && r <= REASON_MAX) {
			ck_assert_int_eq(proto_reply_decode(buf, sizeof(buf),
			    &rp, &why), 0);
			ck_assert_uint_eq(rp.reason, r);
		} else {
			ck_assert_int_eq(proto_reply_decode(buf, sizeof(buf),
			    &rp, &why), -1);
			ck_assert_str_eq(why, "REFUSED has an unknown reason");
		}
	}
	/* The zero bytes are not looked at (the MAC covers them). */
	buf[8] = REASON_STALE;
	buf[9] = buf[10] = buf[11] = 0xff;
	ck_assert_int_eq(proto_reply_decode(buf, sizeof(buf), &rp, &why), 0);
	ck_assert_uint_eq(rp.reason, REASON_STALE);
}
END_TEST

START_TEST(test_push_fields)
{
	static uint8_t buf[PROTO_MAX_DATAGRAM + 1];
	static struct mp_push p;
	const char *why = NULL;
	size_t i;

	memset(&p, 0, sizeof(p));
	p.ctx_len = 3;
	memcpy(p.ctx, "ctx", 3);
	ck_assert_int_eq(proto_push_encode(&p, token, buf, sizeof(buf)), 67);
	for (i = 0; i < 2048; i++) {
		if (i == 3)
			continue;
		put16(buf + 28, (uint16_t)i);
		ck_assert_msg(decode_all(buf, 67) == 0,
		    "PUSH with context_len %zu decoded", i);
	}
	put16(buf + 28, 0xffff);
	ck_assert_uint_eq(decode_all(buf, 67), 0);

	/* Consistent length, but a 1025-byte context. */
	memset(buf, 0, sizeof(buf));
	put16(buf, PROTO_MAGIC);
	buf[2] = PROTO_VERSION;
	buf[3] = PROTO_PUSH;
	put16(buf + 28, MP_CONTEXT_MAX + 1);
	ck_assert_int_eq(proto_push_decode(buf, 64 + MP_CONTEXT_MAX + 1, &p,
	    &why), -1);
	ck_assert_str_eq(why, "PUSH length does not match its context length");
	put16(buf + 28, MP_CONTEXT_MAX);
	ck_assert_int_eq(proto_push_decode(buf, 64 + MP_CONTEXT_MAX, &p,
	    &why), 0);
	ck_assert_uint_eq(p.ctx_len, MP_CONTEXT_MAX);
}
END_TEST

/* Encoders */

START_TEST(test_request_encode_refuses)
{
	static const char *mb[] = { "INBOX" };
	static struct mp_request rq;
	uint8_t buf[PROTO_MAX_DATAGRAM];
	size_t small;
	int need;

	req_fill(&rq, PROTO_REGISTER, "alice", "ctx", mb, 1);
	need = proto_request_encode(&rq, token, buf, sizeof(buf));
	ck_assert_int_eq(need, 40 + 5 + 3 + 6 + 32);
	for (small = 0; small < (size_t)need; small++) {
		uint8_t *b = malloc(small == 0 ? 1 : small);

		ck_assert_ptr_nonnull(b);
		ck_assert_int_eq(proto_request_encode(&rq, token, b, small),
		    -1);
		free(b);
	}

	rq.type = 0;
	ck_assert_int_eq(proto_request_encode(&rq, token, buf, sizeof(buf)),
	    -1);
	rq.type = PROTO_COOKIE;
	ck_assert_int_eq(proto_request_encode(&rq, token, buf, sizeof(buf)),
	    -1);
	rq.type = PROTO_PUSH_ACK;
	ck_assert_int_eq(proto_request_encode(&rq, token, buf, sizeof(buf)),
	    -1);

	req_fill(&rq, PROTO_REFRESH, "alice", "ctx", mb, 1);
	rq.user_len = 0;
	ck_assert_int_eq(proto_request_encode(&rq, token, buf, sizeof(buf)),
	    -1);
	req_fill(&rq, PROTO_REFRESH, "alice", "ctx", mb, 1);
	rq.ctx_len = MP_CONTEXT_MAX + 1;
	ck_assert_int_eq(proto_request_encode(&rq, token, buf, sizeof(buf)),
	    -1);
	req_fill(&rq, PROTO_REFRESH, "alice", "ctx", mb, 1);
	rq.n_mailboxes = MP_MAILBOXES_MAX + 1;
	ck_assert_int_eq(proto_request_encode(&rq, token, buf, sizeof(buf)),
	    -1);
	req_fill(&rq, PROTO_REFRESH, "alice", "ctx", mb, 1);
	rq.mailboxes[0].len = 0;
	ck_assert_int_eq(proto_request_encode(&rq, token, buf, sizeof(buf)),
	    -1);
	/* Nothing the decoder would refuse: no NUL in names. */
	req_fill(&rq, PROTO_REFRESH, "alice", "ctx", mb, 1);
	rq.user[1] = '\0';
	ck_assert_int_eq(proto_request_encode(&rq, token, buf, sizeof(buf)),
	    -1);
	req_fill(&rq, PROTO_REFRESH, "alice", "ctx", mb, 1);
	rq.mailboxes[0].name[4] = '\0';
	ck_assert_int_eq(proto_request_encode(&rq, token, buf, sizeof(buf)),
	    -1);
}
END_TEST

START_TEST(test_reply_encode_refuses)
{
	static const struct {
		uint8_t	type;
		int	len;
	} t[] = {
		{ PROTO_COOKIE, 24 },
		{ PROTO_REGISTERED, 52 },
		{ PROTO_REFUSED, 56 },
	};
	struct mp_reply rp;
	uint8_t buf[64];
	size_t i, small;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&rp, 0, sizeof(rp));
		rp.type = t[i].type;
		rp.reason = REASON_AUTH;
		ck_assert_int_eq(proto_reply_encode(&rp, token, buf,
		    sizeof(buf)), t[i].len);
		for (small = 0; small < (size_t)t[i].len; small++) {
			uint8_t *b = malloc(small == 0 ? 1 : small);

			ck_assert_ptr_nonnull(b);
			ck_assert_int_eq(proto_reply_encode(&rp, token, b,
			    small), -1);
			free(b);
		}
	}
	memset(&rp, 0, sizeof(rp));
	for (i = 0; i < 256; i++) {
		rp.type = (uint8_t)i;
		rp.reason = REASON_AUTH;
		if (i < PROTO_COOKIE || i > PROTO_REFUSED)
			ck_assert_int_eq(proto_reply_encode(&rp, token, buf,
			    sizeof(buf)), -1);
	}
	rp.type = PROTO_REFUSED;
	rp.reason = 0;
	ck_assert_int_eq(proto_reply_encode(&rp, token, buf, sizeof(buf)), -1);
	rp.reason = REASON_MAX + 1;
	ck_assert_int_eq(proto_reply_encode(&rp, token, buf, sizeof(buf)), -1);
	rp.reason = REASON_MAX;
	ck_assert_int_eq(proto_reply_encode(&rp, token, buf, sizeof(buf)), 56);
}
END_TEST

START_TEST(test_push_ack_encode_refuses)
{
	static struct mp_push p;
	struct mp_ack a = { 1, 2 };
	uint8_t buf[PROTO_MAX_DATAGRAM];
	size_t small;

	memset(&p, 0, sizeof(p));
	p.ctx_len = 16;
	ck_assert_int_eq(proto_push_encode(&p, token, buf, sizeof(buf)), 80);
	for (small = 0; small < 80; small++) {
		uint8_t *b = malloc(small == 0 ? 1 : small);

		ck_assert_ptr_nonnull(b);
		ck_assert_int_eq(proto_push_encode(&p, token, b, small), -1);
		free(b);
	}
	p.ctx_len = MP_CONTEXT_MAX + 1;
	ck_assert_int_eq(proto_push_encode(&p, token, buf, sizeof(buf)), -1);
	p.ctx_len = 0xffff;
	ck_assert_int_eq(proto_push_encode(&p, token, buf, sizeof(buf)), -1);

	for (small = 0; small < PROTO_ACK_LEN; small++) {
		uint8_t *b = malloc(small == 0 ? 1 : small);

		ck_assert_ptr_nonnull(b);
		ck_assert_int_eq(proto_ack_encode(&a, token, b, small), -1);
		free(b);
	}
}
END_TEST

START_TEST(test_null_token)
{
	static const uint8_t zero[PROTO_MAC_LEN];
	static struct mp_request rq;
	struct mp_reply rp;
	struct mp_ack a = { 1, 2 };
	uint8_t buf[PROTO_MAX_DATAGRAM];
	int len;

	/* A NULL token writes a MAC of zeros (REFUSED BAD_REQUEST for a
	 * name that has no token, and auth = none). */
	memset(buf, 0xee, sizeof(buf));
	memset(&rp, 0, sizeof(rp));
	rp.type = PROTO_REFUSED;
	rp.reason = REASON_BAD_REQUEST;
	len = proto_reply_encode(&rp, NULL, buf, sizeof(buf));
	ck_assert_int_eq(len, PROTO_REFUSED_LEN);
	ck_assert_mem_eq(buf + 24, zero, PROTO_MAC_LEN);
	ck_assert_int_eq(proto_verify(buf, (size_t)len, token), -1);

	memset(buf, 0xee, sizeof(buf));
	req_fill(&rq, PROTO_REGISTER, "alice", "", NULL, 0);
	len = proto_request_encode(&rq, NULL, buf, sizeof(buf));
	ck_assert_int_eq(len, 77);
	ck_assert_mem_eq(buf + 45, zero, PROTO_MAC_LEN);

	memset(buf, 0xee, sizeof(buf));
	ck_assert_int_eq(proto_ack_encode(&a, NULL, buf, sizeof(buf)), 44);
	ck_assert_mem_eq(buf + 12, zero, PROTO_MAC_LEN);
}
END_TEST

/* MACs and tokens */

START_TEST(test_verify_bit_flips)
{
	static struct sample s[NSAMPLES];
	uint8_t other[MP_TOKEN_LEN];
	size_t n = make_samples(s), i, byte;
	unsigned bit;

	memcpy(other, token, sizeof(other));
	other[31] ^= 0x80;
	for (i = 0; i < n; i++) {
		uint8_t *b;

		if (s[i].buf[3] == PROTO_COOKIE)
			continue;	/* COOKIE has no MAC */
		b = malloc(s[i].len);
		ck_assert_ptr_nonnull(b);
		memcpy(b, s[i].buf, s[i].len);
		ck_assert_msg(proto_verify(b, s[i].len, token) == 0,
		    "%s: correct MAC refused", s[i].name);
		ck_assert_int_eq(proto_verify(b, s[i].len, other), -1);
		for (byte = 0; byte < s[i].len; byte++)
			for (bit = 0; bit < 8; bit++) {
				b[byte] ^= (uint8_t)(1U << bit);
				ck_assert_msg(proto_verify(b, s[i].len,
				    token) == -1, "%s: bit %u of byte %zu "
				    "flipped and accepted", s[i].name, bit,
				    byte);
				b[byte] ^= (uint8_t)(1U << bit);
			}
		/* A MAC over fewer or more bytes. */
		ck_assert_int_eq(proto_verify(b, s[i].len - 1, token), -1);
		free(b);
	}
	/* Too short to hold a header and a MAC. */
	for (i = 0; i < PROTO_HDR_LEN + PROTO_MAC_LEN; i++)
		ck_assert_int_eq(proto_verify(s[0].buf, i, token), -1);
}
END_TEST

START_TEST(test_token_known_answer)
{
	uint8_t t[MP_TOKEN_LEN], direct[crypto_auth_hmacsha256_BYTES];
	uint8_t fixed[MP_TOKEN_LEN];
	char hex[2 * MP_TOKEN_LEN + 1];

	ck_assert_int_eq(proto_hex_decode(alice_token_hex, fixed,
	    sizeof(fixed)), 0);
	proto_token(key, "alice", 5, t);
	crypto_auth_hmacsha256(direct, (const unsigned char *)"alice", 5, key);
	ck_assert_mem_eq(t, direct, sizeof(t));
	ck_assert_mem_eq(t, fixed, sizeof(t));
	proto_hex_encode(t, sizeof(t), hex);
	ck_assert_str_eq(hex, alice_token_hex);

	/* Only the given bytes count: no terminator, no normalising. */
	proto_token(key, "alice@example.com", 5, t);
	ck_assert_mem_eq(t, fixed, sizeof(t));
	proto_token(key, "Alice", 5, t);
	ck_assert_mem_ne(t, fixed, sizeof(t));
	proto_token(key, "alice", 6, t);
	ck_assert_mem_ne(t, fixed, sizeof(t));

	/* Another user and another key give other tokens. */
	proto_token(key, "bob", 3, t);
	crypto_auth_hmacsha256(direct, (const unsigned char *)"bob", 3, key);
	ck_assert_mem_eq(t, direct, sizeof(t));
	ck_assert_mem_ne(t, fixed, sizeof(t));
	key[0] ^= 1;
	proto_token(key, "alice", 5, t);
	ck_assert_mem_ne(t, fixed, sizeof(t));
	key[0] ^= 1;

	/* A 255-byte name, under a random key. */
	{
		uint8_t k[MP_KEY_LEN];
		char name[MP_USER_MAX];

		randombytes_buf(k, sizeof(k));
		memset(name, 'z', sizeof(name));
		proto_token(k, name, sizeof(name), t);
		crypto_auth_hmacsha256(direct, (const unsigned char *)name,
		    sizeof(name), k);
		ck_assert_mem_eq(t, direct, sizeof(t));
	}
}
END_TEST

START_TEST(test_mac_is_over_everything_before_it)
{
	uint8_t mac[crypto_auth_hmacsha256_BYTES];

	/* What the page says a MAC is, checked on its own vectors. */
	crypto_auth_hmacsha256(mac, vec_register, sizeof(vec_register) - 32,
	    token);
	ck_assert_mem_eq(mac, vec_register + sizeof(vec_register) - 32, 32);
	crypto_auth_hmacsha256(mac, vec_push, sizeof(vec_push) - 32, token);
	ck_assert_mem_eq(mac, vec_push + sizeof(vec_push) - 32, 32);
	crypto_auth_hmacsha256(mac, vec_ack, 12, token);
	ck_assert_mem_eq(mac, vec_ack + 12, 32);
	crypto_auth_hmacsha256(mac, vec_refused, 24, token);
	ck_assert_mem_eq(mac, vec_refused + 24, 32);
}
END_TEST

/* Hex helpers and files */

START_TEST(test_hex)
{
	static const char lower[] =
	    "000102030405060708090a0b0c0d0e0f"
	    "101112131415161718191a1b1c1d1e1f";
	static const char upper[] =
	    "000102030405060708090A0B0C0D0E0F"
	    "101112131415161718191A1B1C1D1E1F";
	static const char *bad[] = {
		"",
		"\n",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f0",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f ",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\nx",
		" 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"0x0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"00 01",
	};
	uint8_t out[32];
	char hex[65];
	char buf[80];
	size_t i;

	proto_hex_encode(key, sizeof(key), hex);
	ck_assert_str_eq(hex, lower);
	proto_hex_encode(key, 0, hex);
	ck_assert_str_eq(hex, "");
	proto_hex_encode((const uint8_t *)"\xff\x00\xa5", 3, hex);
	ck_assert_str_eq(hex, "ff00a5");

	memset(out, 0, sizeof(out));
	ck_assert_int_eq(proto_hex_decode(lower, out, sizeof(out)), 0);
	ck_assert_mem_eq(out, key, sizeof(key));
	memset(out, 0, sizeof(out));
	ck_assert_int_eq(proto_hex_decode(upper, out, sizeof(out)), 0);
	ck_assert_mem_eq(out, key, sizeof(key));
	snprintf(buf, sizeof(buf), "%s\n", lower);
	ck_assert_int_eq(proto_hex_decode(buf, out, sizeof(out)), 0);
	snprintf(buf, sizeof(buf), "%s\r\n", lower);
	ck_assert_int_eq(proto_hex_decode(buf, out, sizeof(out)), 0);
	ck_assert_mem_eq(out, key, sizeof(key));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(proto_hex_decode(bad[i], out, sizeof(out)) == -1,
		    "accepted \"%s\"", bad[i]);
	/* Other lengths. */
	ck_assert_int_eq(proto_hex_decode("a5ff", out, 2), 0);
	ck_assert_uint_eq(out[0], 0xa5);
	ck_assert_uint_eq(out[1], 0xff);
	ck_assert_int_eq(proto_hex_decode("a5ff", out, 3), -1);
	ck_assert_int_eq(proto_hex_decode("a5ff", out, 1), -1);
}
END_TEST

static char	tmpdir[64];

static void
tmp_setup(void)
{
	setup();
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_proto.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
tmp_teardown(void)
{
	char path[sizeof(tmpdir) + 256 + 2];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(tmpdir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(tmpdir);
}

/* Write len bytes to tmpdir/name; returns the path (static). */
static const char *
write_file(const char *name, const void *data, size_t len)
{
	static char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

START_TEST(test_read_hexfile)
{
	static const char good[] =
	    "6eefad2bed97b6d93ee663d67a44b460"
	    "16b3d79dcad54ada39b61a1d14874d1b";
	uint8_t out[32], fixed[32];
	char buf[300];
	const char *why, *path;
	size_t i;

	ck_assert_int_eq(proto_hex_decode(good, fixed, sizeof(fixed)), 0);

	/* As mailpushctl writes it, without newline, CR LF, upper case. */
	snprintf(buf, sizeof(buf), "%s\n", good);
	path = write_file("token", buf, strlen(buf));
	why = NULL;
	memset(out, 0, sizeof(out));
	ck_assert_int_eq(proto_read_hexfile(path, out, &why), 0);
	ck_assert_mem_eq(out, fixed, sizeof(out));
	ck_assert_mem_eq(out, token, sizeof(out));
	path = write_file("nonl", good, 64);
	ck_assert_int_eq(proto_read_hexfile(path, out, &why), 0);
	ck_assert_mem_eq(out, fixed, sizeof(out));
	snprintf(buf, sizeof(buf), "%s\r\n", good);
	path = write_file("crlf", buf, strlen(buf));
	ck_assert_int_eq(proto_read_hexfile(path, out, &why), 0);
	for (i = 0; i < 64; i++)
		buf[i] = (char)(good[i] >= 'a' ? good[i] - 32 : good[i]);
	path = write_file("upper", buf, 64);
	memset(out, 0, sizeof(out));
	ck_assert_int_eq(proto_read_hexfile(path, out, &why), 0);
	ck_assert_mem_eq(out, fixed, sizeof(out));

	/* Missing file and a directory: the system's reason. */
	why = NULL;
	snprintf(buf, sizeof(buf), "%s/missing", tmpdir);
	ck_assert_int_eq(proto_read_hexfile(buf, out, &why), -1);
	ck_assert_str_eq(why, strerror(ENOENT));
	why = NULL;
	ck_assert_int_eq(proto_read_hexfile(tmpdir, out, &why), -1);
	ck_assert_str_eq(why, strerror(EISDIR));

	/* Bad contents. */
	{
		static const struct {
			const char	*name;
			const char	*data;
			size_t		 len;
		} bad[] = {
			{ "empty", "", 0 },
			{ "newline", "\n", 1 },
			{ "short", good, 63 },
			{ "odd", "6eef\n", 5 },
			{ "space", " 6eefad2bed97b6d93ee663d67a44b46016b3d79dcad54ada39b61a1d14874d1b\n", 66 },
			{ "long", "6eefad2bed97b6d93ee663d67a44b46016b3d79dcad54ada39b61a1d14874d1b00\n", 67 },
			{ "junk", "6eefad2bed97b6d93ee663d67a44b46016b3d79dcad54ada39b61a1d14874d1b\nkey\n", 69 },
			{ "nul", "6eefad2bed97b6d93ee663d67a44b46016b3d79dcad54ada39b61a1d14874d1b\0junk", 69 },
			{ "garbage", "this is not a token file at all\n", 32 },
		};

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			path = write_file(bad[i].name, bad[i].data,
			    bad[i].len);
			why = NULL;
			ck_assert_msg(proto_read_hexfile(path, out, &why) ==
			    -1, "%s accepted", bad[i].name);
			ck_assert_str_eq(why, "not 64 hexadecimal digits");
		}
	}

	/* Good digits followed by enough newlines to fill a buffer and
	 * then junk: refused (the whole file counts). */
	memset(buf, '\n', sizeof(buf));
	memcpy(buf, good, 64);
	memcpy(buf + 200, "junk", 4);
	path = write_file("padded", buf, 204);
	ck_assert_int_eq(proto_read_hexfile(path, out, &why), -1);
	path = write_file("padded2", buf, 129);
	ck_assert_int_eq(proto_read_hexfile(path, out, &why), 0);
	path = write_file("padded3", buf, 130);
	ck_assert_int_eq(proto_read_hexfile(path, out, &why), -1);
}
END_TEST

Suite *
make_proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc;

	tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_loop_test(tc, test_request_round_trip, 0,
	    3 * (MP_MAILBOXES_MAX + 1));
	tcase_add_test(tc, test_request_limits);
	tcase_add_test(tc, test_reply_round_trip);
	tcase_add_test(tc, test_push_round_trip);
	tcase_add_test(tc, test_ack_round_trip);
	tcase_add_test(tc, test_type_and_names);
	tcase_add_test(tc, test_page_vectors);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_oversized);
	tcase_add_test(tc, test_bad_header);
	tcase_add_test(tc, test_request_fields);
	tcase_add_test(tc, test_request_ctx_too_long);
	tcase_add_test(tc, test_reply_fields);
	tcase_add_test(tc, test_push_fields);
	suite_add_tcase(s, tc);

	tc = tcase_create("encode");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_request_encode_refuses);
	tcase_add_test(tc, test_reply_encode_refuses);
	tcase_add_test(tc, test_push_ack_encode_refuses);
	tcase_add_test(tc, test_null_token);
	suite_add_tcase(s, tc);

	tc = tcase_create("crypto");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_verify_bit_flips);
	tcase_add_test(tc, test_token_known_answer);
	tcase_add_test(tc, test_mac_is_over_everything_before_it);
	suite_add_tcase(s, tc);

	tc = tcase_create("hex");
	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_test(tc, test_hex);
	tcase_add_test(tc, test_read_hexfile);
	suite_add_tcase(s, tc);
	return s;
}
