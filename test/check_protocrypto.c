/*
 * check_protocrypto.c: the protocol's cryptography and key files
 * (shared/proto.c): MAC verification against every bit flip and over
 * every byte before it, token derivation against known answers, and the
 * hex helpers for key and token files.  The vectors and the fixture are
 * in check_proto.h.
 */
#include "check_proto.h"

Suite	*make_protocrypto_suite(void);

/* Crypto */

START_TEST(test_verify_bit_flips)
{
	uint8_t buf[PROTO_MAX_DATAGRAM];
	size_t len, i;

	len = unhex(v_register2, buf, sizeof(buf));
	ck_assert_int_eq(proto_verify(buf, len, token), 0);
	for (i = 0; i < len * 8; i++) {
		buf[i / 8] ^= (uint8_t)(1 << (i % 8));
		ck_assert_int_ne(proto_verify(buf, len, token), 0);
		buf[i / 8] ^= (uint8_t)(1 << (i % 8));
	}
	ck_assert_int_ne(proto_verify(buf, 10, token), 0);
}
END_TEST

/* HMAC-SHA256 of the name under the key, nothing else. */
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
	uint8_t buf[PROTO_MAX_DATAGRAM], mac[PROTO_MAC_LEN];
	size_t len;

	len = unhex(v_registered, buf, sizeof(buf));
	crypto_auth_hmacsha256(mac, buf, len - PROTO_MAC_LEN, token);
	ck_assert_mem_eq(mac, buf + len - PROTO_MAC_LEN, PROTO_MAC_LEN);
	len = unhex(v_ack, buf, sizeof(buf));
	crypto_auth_hmacsha256(mac, buf, len - PROTO_MAC_LEN, token);
	ck_assert_mem_eq(mac, buf + len - PROTO_MAC_LEN, PROTO_MAC_LEN);
}
END_TEST

/* Hex */

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
make_protocrypto_suite(void)
{
	Suite *s = suite_create("protocrypto");
	TCase *tc;

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
