/*
 * srv.c: the notifiers from DNS SRV records (srv.h), through the C
 * library's resolver (res_nquery, and the ns_parse functions and
 * dn_expand of libresolv: no DNS is encoded or decoded by hand here),
 * ordered as RFC 2782 says.
 */
#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>

#include <netdb.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "srv.h"

/* RFC 2782 order: by priority; within one, a weighted random draw. */
void
mpc_srv_order(struct mpc_srv *s, int n)
{
	struct mpc_srv t;
	int i, j, k, end;
	uint32_t sum, r;

	for (i = 1; i < n; i++)		/* insertion sort by priority */
		for (j = i; j > 0 && s[j - 1].priority > s[j].priority; j--) {
			t = s[j];
			s[j] = s[j - 1];
			s[j - 1] = t;
		}
	for (i = 0; i < n; i = end) {
		for (end = i; end < n && s[end].priority == s[i].priority;
		    end++)
			;
		for (j = i; j + 1 < end; j++) {
			/* zero weights first, so they have a small chance */
			for (sum = 0, k = j; k < end; k++)
				sum += s[k].weight;
			r = sum > 0 ? randombytes_uniform(sum + 1) : 0;
			for (sum = 0, k = j; k < end; k++) {
				sum += s[k].weight;
				if (sum >= r)
					break;
			}
			if (k == end)
				k = end - 1;
			t = s[j];
			s[j] = s[k];
			s[k] = t;
		}
	}
}

int
mpc_srv_lookup(const char *domain, const char *resolver,
    struct mpc_srv srv[MPC_SRV_MAX], char *err, size_t errlen)
{
	struct __res_state rs;
	unsigned char ans[NS_MAXMSG];
	char name[NS_MAXDNAME], target[NS_MAXDNAME];
	ns_msg msg;
	ns_rr rr;
	int len, i, count, n = 0;

	memset(&rs, 0, sizeof(rs));
	if (snprintf(name, sizeof(name), "_mailpush._udp.%s", domain) >=
	    (int)sizeof(name) || domain[0] == '\0') {
		snprintf(err, errlen, "bad domain \"%.64s\"", domain);
		return -1;
	}
	if (res_ninit(&rs) != 0) {
		snprintf(err, errlen, "cannot initialise the resolver");
		return -1;
	}
	if (resolver != NULL) {
		char host[64];
		const char *colon = strchr(resolver, ':');
		size_t hl = colon ? (size_t)(colon - resolver) :
		    strlen(resolver);
		struct in_addr a;
		long port = colon ? strtol(colon + 1, NULL, 10) : 53;

		if (hl >= sizeof(host) || port < 1 || port > 65535) {
			snprintf(err, errlen, "bad resolver %s (want "
			    "IPv4ADDR[:PORT])", resolver);
			res_nclose(&rs);
			return -1;
		}
		memcpy(host, resolver, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET, host, &a) != 1) {
			snprintf(err, errlen, "bad resolver %s (want "
			    "IPv4ADDR[:PORT])", resolver);
			res_nclose(&rs);
			return -1;
		}
		/* the resolver's documented server list: one, ours */
		rs.nscount = 1;
		rs.nsaddr_list[0].sin_family = AF_INET;
		rs.nsaddr_list[0].sin_addr = a;
		rs.nsaddr_list[0].sin_port = htons((uint16_t)port);
	}
	len = res_nquery(&rs, name, ns_c_in, ns_t_srv, ans, sizeof(ans));
	res_nclose(&rs);
	if (len < 0) {
		snprintf(err, errlen, "no SRV records for %s (%s)", name,
		    hstrerror(rs.res_h_errno));
		return -1;
	}
	if (ns_initparse(ans, len, &msg) != 0) {
		snprintf(err, errlen, "%s: malformed DNS answer", name);
		return -1;
	}
	count = ns_msg_count(msg, ns_s_an);
	for (i = 0; i < count && n < MPC_SRV_MAX; i++) {
		const unsigned char *rd;

		if (ns_parserr(&msg, ns_s_an, i, &rr) != 0) {
			snprintf(err, errlen, "%s: malformed DNS answer", name);
			return -1;
		}
		if (ns_rr_type(rr) != ns_t_srv || ns_rr_class(rr) != ns_c_in)
			continue;	/* CNAMEs and the like */
		rd = ns_rr_rdata(rr);
		if (ns_rr_rdlen(rr) < 7 ||
		    dn_expand(ns_msg_base(msg), ns_msg_end(msg), rd + 6,
		    target, sizeof(target)) < 0) {
			snprintf(err, errlen, "%s: malformed SRV record", name);
			return -1;
		}
		/* "." as the target: the service is decidedly not here */
		if (target[0] == '\0' || strcmp(target, ".") == 0)
			continue;
		if (strlen(target) >= sizeof(srv[0].host))
			continue;
		srv[n].priority = ns_get16(rd);
		srv[n].weight = ns_get16(rd + 2);
		srv[n].port = ns_get16(rd + 4);
		if (srv[n].port == 0)
			continue;
		snprintf(srv[n].host, sizeof(srv[0].host), "%s", target);
		n++;
	}
	if (n == 0) {
		snprintf(err, errlen, "%s: no usable SRV records", name);
		return -1;
	}
	mpc_srv_order(srv, n);
	return n;
}

int
mpc_srv_text(const struct mpc_srv *s, int n, char *out, size_t len)
{
	size_t off = 0;
	int i, w;

	if (len == 0)
		return -1;
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		w = snprintf(out + off, len - off, strchr(s[i].host, ':') ?
		    "%s[%s]:%u" : "%s%s:%u", i > 0 ? " " : "", s[i].host,
		    s[i].port);
		if (w < 0 || (size_t)w >= len - off)
			return -1;
		off += (size_t)w;
	}
	return 0;
}
