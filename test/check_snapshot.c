/*
 * check_snapshot.c: a snapshot written while the daemon runs, of a table
 * larger than the snapshot writer's slices (18 buffers, each filled to
 * 256 KiB, notifier/journal_int.h), so that every buffer is filled,
 * written, given back to the loop and filled again: the state file must
 * hold each registration exactly once, as it was, and nothing else.  The
 * daemon is stopped with kill -9 so that the file read is the live
 * snapshot, not the clean one written at shutdown.  The files are made
 * and read a record at a time with the daemon's own record.c (a struct
 * sf_rec is 5.5 KB: 90,000 of them would take half a gigabyte).
 */
#include <sys/types.h>
#include <sys/wait.h>
#include <arpa/inet.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "ops.h"
#include "statefile.h"

/* 90,000 REG records of about 127 bytes: 11 MB, over twice the slices */
#define N_REGS		90000
#define FIRST_ID	0x10000000u

static struct mpd_proc P;

static void
teardown(void)
{
	ck_assert_msg(mpd_finish(&P) == 0, "mailpushd in %s did not end "
	    "cleanly", P.dir);
}

/* The state file: N_REGS registrations, user%05u from FIRST_ID on. */
static void
write_state(uint32_t now)
{
	static struct sf_rec r;
	struct jbuf b = { NULL, 0, 0, 0 };
	struct rec_hdr h;
	char user[32];
	uint32_t i;
	FILE *fp;

	sf_mk_hdr(&h, REC_KIND_SNAPSHOT, 1, 1, now);
	record_hdr(&b, &h);
	for (i = 0; i < N_REGS; i++) {
		snprintf(user, sizeof(user), "user%05u", i);
		sf_mk_reg(&r, FIRST_ID + i, user, 0,
		    (uint16_t)(20000 + i % 40000), (uint16_t)P.port, now - 10,
		    now + 3600);
		record_fields(&b, &r.f);
	}
	record_end(&b, N_REGS);
	ck_assert_ptr_nonnull(fp = fopen(P.state, "w"));
	ck_assert_uint_eq(fwrite(b.p, 1, b.len, fp), b.len);
	ck_assert_int_eq(fclose(fp), 0);
	jbuf_free(&b);
}

/* The whole file into *len bytes (malloc'd). */
static uint8_t *
read_file(const char *path, size_t *len)
{
	uint8_t *buf = NULL;
	size_t cap = 0, n;
	FILE *fp = fopen(path, "r");

	ck_assert_msg(fp != NULL, "%s: %s", path, strerror(errno));
	*len = 0;
	do {
		if (*len == cap) {
			cap = cap ? 2 * cap : 1 << 20;
			ck_assert_ptr_nonnull(buf = realloc(buf, cap));
		}
		n = fread(buf + *len, 1, cap - *len, fp);
		*len += n;
	} while (n > 0);
	ck_assert_int_eq(ferror(fp), 0);
	fclose(fp);
	return buf;
}

START_TEST(live_snapshot_larger_than_slices)
{
	static struct rec_fields f;
	static uint8_t seen[N_REGS];
	struct rec_view v;
	struct rec_hdr h;
	struct tclient c;
	struct mp_reply rp;
	char main_[512], user[32];
	const char *why;
	uint32_t now = (uint32_t)time(NULL), id;
	uint64_t end_count = 0;
	size_t len, off, regs = 0, ends = 0;
	uint8_t *buf;
	int status;

	ck_assert_int_eq(ops_prepare(&P, NULL, NULL), 0);
	snprintf(main_, sizeof(main_), "user =\nlisten = 127.0.0.1:%d\n"
	    "state_save_interval = 1s\n", P.port);
	ck_assert_int_eq(ops_write_config(&P, main_, "[limits]\n"
	    "max_registrations = 200000\nmax_registrations_per_address = 0\n"),
	    0);
	write_state(now);
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(mpd_log_count(&P, "state: 90000 registrations "
	    "restored"), 1);

	/* a change for the journal: the next save is a snapshot */
	ck_assert_int_eq(tc_open(&c, &P, 0, NULL, "alice"), 0);
	ck_assert_int_eq(tc_register(&c, "ctx", 3, &rp), 0);
	ck_assert_int_eq(rp.type, PROTO_REGISTERED);
	ck_assert_int_eq(mpd_stat_wait(&P, "state_snapshots", 1, 60000), 0);
	ck_assert_int_eq(kill(P.pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(P.pid, &status, 0), P.pid);
	P.pid = -1;
	tc_close(&c);

	buf = read_file(P.state, &len);
	ck_assert_msg(len > 2 * 18 * 256 * 1024, "the snapshot is only %zu "
	    "bytes: fewer slices than the test needs", len);
	ck_assert_int_eq(record_next(buf, len, &v, &why), 0);
	ck_assert_int_eq(record_parse_hdr(&v, &h), 0);
	ck_assert_uint_eq(h.kind, REC_KIND_SNAPSHOT);
	ck_assert_uint_eq(h.clean, 0);
	for (off = v.size; off < len; off += v.size) {
		ck_assert_msg(record_next(buf + off, len - off, &v, &why) == 0,
		    "record at %zu of %zu: %s", off, len, why);
		ck_assert_int_eq(record_parse(&v, &f), 0);
		if (f.type == REC_END) {
			ends++;
			end_count = f.count;
			continue;
		}
		ck_assert_uint_eq(ends, 0);	/* nothing after the end */
		ck_assert_uint_eq(f.type, REC_REG);
		regs++;
		if (f.id == rp.reg_id) {
			ck_assert_str_eq(f.user, "alice");
			continue;
		}
		ck_assert_msg(f.id >= FIRST_ID && f.id < FIRST_ID + N_REGS,
		    "record at %zu: id %08x was never registered", off, f.id);
		id = f.id - FIRST_ID;
		ck_assert_msg(!seen[id], "id %08x is in the snapshot twice",
		    f.id);
		seen[id] = 1;
		snprintf(user, sizeof(user), "user%05u", id);
		ck_assert_str_eq(f.user, user);
		/* the downtime since the file's time is added at start */
		ck_assert_uint_ge(f.expires, now + 3600);
		ck_assert_uint_le(f.expires, now + 3600 + 120);
		ck_assert_uint_eq(ntohs(f.addr.sin.sin_port), 20000 + id % 40000);
	}
	free(buf);
	ck_assert_uint_eq(regs, N_REGS + 1);
	ck_assert_uint_eq(ends, 1);
	ck_assert_uint_eq(end_count, N_REGS + 1);

	/* and the daemon starts from it */
	ck_assert_int_eq(mpd_start(&P), 0);
	ck_assert_int_eq(mpd_log_count(&P, "state: 90001 registrations "
	    "restored"), 1);
}
END_TEST

Suite *
make_snapshot_suite(void)
{
	Suite *s = suite_create("snapshot");
	TCase *tc = tcase_create("snapshot");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, live_snapshot_larger_than_slices);
	suite_add_tcase(s, tc);
	return s;
}
