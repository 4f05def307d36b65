/*
 * check_snapshot.c: a snapshot written while the daemon runs, of a table
 * larger than the snapshot writer's slices (18 buffers of 256 KiB,
 * notifier/journal_int.h), so that every buffer is filled, written, given
 * back to the loop and filled again: the state file must hold each
 * registration exactly once, as it was, and nothing else.  The daemon is
 * stopped with kill -9 so that the file read is the live snapshot, not the
 * clean one written at shutdown.
 */
#include <sys/types.h>
#include <sys/wait.h>
#include <arpa/inet.h>

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

START_TEST(live_snapshot_larger_than_slices)
{
	static struct sf_rec r[N_REGS];
	static uint8_t seen[N_REGS];
	struct rec_hdr h;
	struct tclient c;
	struct mp_reply rp;
	struct sf sf;
	char main_[512], user[32];
	uint32_t now = (uint32_t)time(NULL), id;
	size_t i, regs = 0;
	int status;

	ck_assert_int_eq(ops_prepare(&P, NULL, NULL), 0);
	snprintf(main_, sizeof(main_), "user =\nlisten = 127.0.0.1:%d\n"
	    "state_save_interval = 1s\n", P.port);
	ck_assert_int_eq(ops_write_config(&P, main_, "[limits]\n"
	    "max_registrations = 200000\nmax_registrations_per_address = 0\n"),
	    0);
	sf_mk_hdr(&h, REC_KIND_SNAPSHOT, 1, 1, now);
	for (i = 0; i < N_REGS; i++) {
		snprintf(user, sizeof(user), "user%05zu", i);
		sf_mk_reg(&r[i], FIRST_ID + (uint32_t)i, user, 0,
		    (uint16_t)(20000 + i % 40000), (uint16_t)P.port, now - 10,
		    now + 3600);
	}
	ck_assert_int_eq(sf_write(P.state, &h, r, N_REGS, 1), 0);
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

	ck_assert_int_eq(sf_read(P.state, &sf), 0);
	ck_assert_uint_eq(sf.hdr.kind, REC_KIND_SNAPSHOT);
	ck_assert_uint_eq(sf.hdr.clean, 0);
	ck_assert_uint_eq(sf.good, sf.len);
	ck_assert_msg(sf.len > 2 * 18 * 256 * 1024, "the snapshot is only %zu "
	    "bytes: fewer slices than the test needs", sf.len);
	for (i = 0; i < sf.n; i++) {
		const struct rec_fields *f = &sf.recs[i].f;

		if (f->type != REC_REG)
			continue;
		regs++;
		if (f->id == rp.reg_id) {
			ck_assert_str_eq(f->user, "alice");
			continue;
		}
		ck_assert_msg(f->id >= FIRST_ID && f->id < FIRST_ID + N_REGS,
		    "record %zu: id %08x was never registered", i, f->id);
		id = f->id - FIRST_ID;
		ck_assert_msg(!seen[id], "id %08x is in the snapshot twice",
		    f->id);
		seen[id] = 1;
		snprintf(user, sizeof(user), "user%05u", id);
		ck_assert_str_eq(f->user, user);
		/* the downtime since the file's time is added at start */
		ck_assert_uint_ge(f->expires, now + 3600);
		ck_assert_uint_le(f->expires, now + 3600 + 120);
		ck_assert_uint_eq(ntohs(f->addr.sin.sin_port),
		    20000 + id % 40000);
	}
	ck_assert_uint_eq(regs, N_REGS + 1);
	ck_assert_uint_eq(sf.recs[sf.n - 1].f.type, REC_END);
	ck_assert_uint_eq(sf.recs[sf.n - 1].f.count, N_REGS + 1);
	sf_free(&sf);

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
