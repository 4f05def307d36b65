/*
 * check_listendns.c: mailpush-listen's fail-over when DNS fails after
 * start (R16-6).  The names of the servers resolve at start from a hosts
 * file bind-mounted over /etc/hosts in a mount namespace of the client's
 * own (unshare(1); root), then the file is emptied: the client must keep
 * running with the addresses it had, and not switch servers in a loop.
 */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "harness.h"

static int
count(const char *hay, const char *needle)
{
	int n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

START_TEST(failover_dns_fails)
{
	char dir[] = "/tmp/mp-listendns.XXXXXX", hosts[64], nss[64], tok[64];
	char s1[64], s2[64], text[512], out[16384], cmd[128];
	size_t off = 0;
	pid_t pid;
	int efd = -1, switches;

	if (geteuid() != 0 || access("/usr/bin/unshare", X_OK) != 0) {
		fprintf(stderr, "listendns: SKIPPED failover_dns_fails: needs "
		    "root and unshare(1) for a mount namespace\n");
		return;
	}
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(hosts, sizeof(hosts), "%s/hosts", dir);
	snprintf(nss, sizeof(nss), "%s/nsswitch.conf", dir);
	snprintf(tok, sizeof(tok), "%s/token", dir);
	ck_assert_int_eq(write_text(hosts, "127.0.0.1 mp-a.test\n"
	    "127.0.0.1 mp-b.test\n", 0644), 0);
	ck_assert_int_eq(write_text(nss, "hosts: files\n", 0644), 0);
	ck_assert_int_eq(write_text(tok, "1:00112233445566778899aabbccddeeff"
	    "00112233445566778899aabbccddeeff\n", 0600), 0);
	/* nothing listens there: each REGISTER gets port unreachable */
	snprintf(s1, sizeof(s1), "mp-a.test:%d", mpd_free_port());
	snprintf(s2, sizeof(s2), "mp-b.test:%d", mpd_free_port());
	snprintf(text, sizeof(text), "mount --bind %s /etc/hosts && mount "
	    "--bind %s /etc/nsswitch.conf && exec \"$0\" \"$@\"", hosts, nss);
	{
		char *argv[] = { (char *)"/usr/bin/unshare", (char *)"-m",
		    (char *)"/bin/sh", (char *)"-c", text,
		    (char *)BUILDDIR "/mailpush-listen", (char *)"-v",
		    (char *)"-s", s1, (char *)"-s", s2, (char *)"-u",
		    (char *)"alice", (char *)"-K", tok, NULL };

		pid = spawn_cmd(argv, NULL, &efd);
	}
	ck_assert_int_gt(pid, 0);
	/* printed after every server resolved */
	ck_assert_msg(read_until(efd, out, sizeof(out), &off, "device ",
	    5000) == 0, "mailpush-listen did not start: %s", out);
	ck_assert_int_eq(truncate(hosts, 0), 0);	/* DNS fails now */
	/* it fails over, keeps running, and does so at most once a second */
	ck_assert_msg(wait_cmd(pid, 2500) == -1, "mailpush-listen exited "
	    "when a server's name did not resolve at fail-over: %s", out);
	drain_fd(efd, out, sizeof(out), &off);
	close(efd);
	ck_assert_msg(strstr(out, "not resolved; trying the address it had")
	    != NULL, "no message: %s", out);
	switches = count(out, "registering at");
	ck_assert_msg(switches >= 1 && switches <= 4, "%d switches in 2.5 s "
	    "(once a second at most): %.2000s", switches, out);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

Suite *
make_listendns_suite(void)
{
	Suite *s = suite_create("listendns");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, failover_dns_fails);
	suite_add_tcase(s, tc);
	return s;
}
