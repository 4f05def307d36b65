/*
 * check_proto.h: the fixture of the protocol codec suites (check_proto.c,
 * check_protobad.c, check_protocrypto.c): the example vectors printed in
 * mailpush-protocol(7), the key, token, device and push key they are
 * made with, and helpers to fill requests and copy bytes.
 *
 * Decoders are always handed a heap copy of exactly the bytes under test,
 * so that a read past the end shows up under `make SANITIZE=1'.
 */
#ifndef CHECK_PROTO_H
#define CHECK_PROTO_H

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

/* The example of mailpush-protocol(7): key 0x00..0x1f, user "alice",
 * device d0..df, epoch 0123456789abcdef, push nonce 40..57. */
static const char alice_token_hex[] =
    "6eefad2bed97b6d93ee663d67a44b460"
    "16b3d79dcad54ada39b61a1d14874d1b";
static const char alice_push_key_hex[] =
    "476fa4e5d08140e82158e46fec37b430"
    "a5ae2e5bf3909c9aa19a155c958e3bc8";
#define EPOCH	0x0123456789abcdefULL

/* EXAMPLES 1: REGISTER, no cookie, padded (151 bytes) */
static const char v_register[] =
    "4d50020101050003d0d1d2d3d4d5d6d7d8d9dadbdcdddedf0000018bcfe56800"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "616c696365637478000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000035632deb23d1f69d36"
    "94e6b42bc1d5382a892f9f29e83c7186d031ab31ab7ca0";

/* EXAMPLES 2: COOKIE (28 bytes) */
static const char v_cookie[] =
    "4d5002040000018bcfe56800a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";

/* EXAMPLES 3: REGISTER with cookie and mailbox INBOX, padded (151 bytes) */
static const char v_register2[] =
    "4d50020101050003d0d1d2d3d4d5d6d7d8d9dadbdcdddedf0000018bcfe56801"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf01000000000000000000000000000000"
    "616c69636563747805494e424f58000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000e70bc73952c7732071"
    "653d41c614b2a64091729a9a99f7ac5162bbefc27eadde";

/* EXAMPLES 4: REGISTERED (68 bytes) */
static const char v_registered[] =
    "4d5002050000018bcfe568010123456789abcdef0000002a0000025800000000"
    "000f012c9b0e03f8e34c5576d279db9df027242ad33c88079e1a82b4be2e5820"
    "b14cdd99";

/* EXAMPLES 5: PUSH (83 bytes) */
static const char v_push[] =
    "4d500207404142434445464748494a4b4c4d4e4f50515253545556573e6e9023"
    "da060fead340d911a749994346b8df2768531d72f9de0c3e1c4a6a31ef85c32d"
    "7ec29f29d5c7ec37a8296e8afcd3f75992508e";

/* EXAMPLES 6: PUSH_ACK (101 bytes) */
static const char v_ack[] =
    "4d50020801050000d0d1d2d3d4d5d6d7d8d9dadbdcdddedf0000018bcfe65454"
    "0000000000000000000000000000000000000000000000010123456789abcdef"
    "616c696365847b4e7930294788ea170e8a721d7491f7b12eb5da9af6f8359bb8"
    "29a80d72e0";

/* EXAMPLES 7: KEEPALIVE (8 bytes) */
static const char v_keepalive[] =
    "4d5002090000002a";

/* EXAMPLES 8: PROBE, 30 seconds, padded (151 bytes) */
static const char v_probe[] =
    "4d50020a01050003d0d1d2d3d4d5d6d7d8d9dadbdcdddedf0000018bcfe67970"
    "00000000000000000000000000000000000000000000001e0000000000000000"
    "616c696365637478000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000003912e386de54cb6103"
    "31076b29fc945c4725e467432857e52559692104c174af";

/* EXAMPLES 9: PROBE_ECHO (44 bytes) */
static const char v_probe_echo[] =
    "4d50020b0000018bcfe67970510a2399e74f2d1880e97dd1fde7c7f4b6a46393"
    "8284c49e947999a3bc4d21d1";

/* EXAMPLES 10: KICK (8 bytes) */
static const char v_kick[] =
    "4d50020c0000002a";

/* EXAMPLES 11: REFUSED TOO_MANY limit 8 (60 bytes) */
static const char v_refused[] =
    "4d5002060000018bcfe9fbe003000000000000080000000000000000af1c523a"
    "3ca027f67d8929fd9e3bf2648d4e4142baa6a9cd289f79a78c734719";

static uint8_t	key[MP_KEY_LEN];
static uint8_t	token[MP_TOKEN_LEN];
static uint8_t	device[PROTO_DEVICE_LEN];
static uint8_t	pkey[32];
static uint8_t	nonce[PROTO_PUSH_NONCE_LEN];

static inline void
setup(void)
{
	int i;

	ck_assert_int_ne(sodium_init(), -1);
	for (i = 0; i < MP_KEY_LEN; i++)
		key[i] = (uint8_t)i;
	for (i = 0; i < PROTO_DEVICE_LEN; i++)
		device[i] = (uint8_t)(0xd0 + i);
	for (i = 0; i < PROTO_PUSH_NONCE_LEN; i++)
		nonce[i] = (uint8_t)(0x40 + i);
	proto_token(key, "alice", 5, token);
	proto_push_key(token, pkey);
}

/* A heap copy of exactly len bytes (for the sanitizer). */
static inline uint8_t *
dup_bytes(const uint8_t *p, size_t len)
{
	uint8_t *q = malloc(len ? len : 1);

	ck_assert_ptr_nonnull(q);
	memcpy(q, p, len);
	return q;
}

static inline size_t
unhex(const char *hex, uint8_t *out, size_t max)
{
	size_t len;

	ck_assert_int_eq(sodium_hex2bin(out, max, hex, strlen(hex), NULL,
	    &len, NULL), 0);
	return len;
}

static inline void
req_fill(struct mp_request *rq, uint8_t type, const char *user,
    const char *ctx, size_t nbox)
{
	size_t i;

	memset(rq, 0, sizeof(*rq));
	rq->type = type;
	rq->key_id = 1;
	memcpy(rq->device, device, sizeof(device));
	rq->timestamp = 1700000000000ULL;
	rq->user_len = (uint8_t)strlen(user);
	memcpy(rq->user, user, rq->user_len);
	rq->ctx_len = (uint16_t)strlen(ctx);
	memcpy(rq->ctx, ctx, rq->ctx_len);
	for (i = 0; i < nbox; i++) {
		rq->mailboxes[i].len = (uint8_t)snprintf(rq->mailboxes[i].name,
		    sizeof(rq->mailboxes[i].name), "box%zu", i);
	}
	rq->n_mailboxes = (uint8_t)nbox;
}

#endif
