/*
 * srv.h: discovery of the notifiers by DNS SRV, mailpush-protocol(7)
 * DISCOVERY: the records _mailpush._udp.DOMAIN (RFC 2782: lowest priority
 * first, weighted random order within a priority), looked up with the C
 * library's resolver, as the same "HOST:PORT ..." text the provisioned
 * servers entry has (a client fails over along it, mailpush-listen(1)).
 */
#ifndef MP_SRV_H
#define MP_SRV_H

#include <stddef.h>
#include <stdint.h>

#define MPC_SRV_MAX		16	/* records used */

struct mpc_srv {
	char		host[256];
	uint16_t	port;
	uint16_t	priority, weight;
};

/*
 * Look up _mailpush._udp.DOMAIN.  resolver: NULL for /etc/resolv.conf, or
 * "IPv4ADDR[:PORT]" to ask that DNS server instead.  Fills srv[] in the
 * order to try; returns how many (> 0), or -1 with a message in err (no
 * such records, a DNS error, a malformed answer).
 */
int	mpc_srv_lookup(const char *domain, const char *resolver,
	    struct mpc_srv srv[MPC_SRV_MAX], char *err, size_t errlen);
/* The same as text, "HOST:PORT [V6]:PORT ...": -1 if it does not fit. */
int	mpc_srv_text(const struct mpc_srv *, int n, char *out, size_t len);
/* RFC 2782 order of n records (exposed for tests). */
void	mpc_srv_order(struct mpc_srv *, int n);

#endif
