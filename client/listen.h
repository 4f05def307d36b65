/*
 * listen.h: what mailpush-listen's files share (mailpush-listen.c: options,
 * loop, signals, -x; listen-prov.c: provisioning over IMAP and server
 * lists).
 */
#ifndef MP_LISTEN_H
#define MP_LISTEN_H

#include <sys/types.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdint.h>

#include "mpclient.h"
#include "provision.h"

#define LISTEN_EXIT_REFUSED	2
#define LISTEN_EXIT_TIMEOUT	3
#define LISTEN_DEFAULT_CONTEXT	"mailpush-listen"
#define LISTEN_UNREGISTER_WAIT	1000	/* ms, at exit */
#define LISTEN_TIME_LEN		48
#define LISTEN_REPROVISION_MS	10000	/* IMAP logins after refusals */
#define LISTEN_SERVERS_MAX	8	/* -s repeated, or the provisioned list */
#define LISTEN_FAILOVER_MS	5000	/* REGISTER unanswered: the next one */
#define LISTEN_FAILBACK_MS	600000	/* then the first one again */
#define LISTEN_SWITCH_MS	1000	/* at most one switch in this time */

struct listen_push {
	uint32_t	seq;
	uint32_t	count;
	uint32_t	new_messages;
	uint32_t	total;
	char		time[LISTEN_TIME_LEN];
};

struct listen {
	const char	*user;
	const char	*command;
	char		*mailboxes;	/* -m names, newline-separated */
	const char	*mailbox;	/* the -m name when there is one */
	int		 once;
	int		 verbose;
	struct mpc	*mpc;
	int		 got_push;
	int		 refused;
	pid_t		 child;		/* -x command running, or -1 */
	int		 pending;	/* pushes waiting for the child */
	struct listen_push next;	/* their sum, latest seq/total/time */
	sigset_t	 oldmask;
	/* -I: provisioned over IMAP */
	struct mpc_provision_opts popts;
	struct mpc_provision prov;
	char		 cache[4096];
	char		 password[1024];
	uint64_t	 provisioned_at;	/* listen_now() of the last fetch */
	/* fail-over along the servers, mailpush-cluster(7) */
	const char	*servers[LISTEN_SERVERS_MAX];
	/* their addresses as last resolved (all at start) */
	struct sockaddr_storage server_ss[LISTEN_SERVERS_MAX];
	socklen_t	 server_len[LISTEN_SERVERS_MAX];
	int		 n_servers, cur;
	int		 failover;	/* the current one stopped answering */
	uint64_t	 since;		/* listen_now() it was chosen */
	long		 failback_s;	/* -B; 0: LISTEN_FAILBACK_MS */
	char		 srvbuf[MPC_PROV_SERVERS_MAX];
};

/* mailpush-listen.c */
uint64_t	listen_now(void);

/* listen-prov.c */
int		listen_provision(struct listen *, int force);
const char	*listen_server_list(struct listen *, const char *text);
int		listen_reprovision(struct listen *, struct mpc_params *);

#endif
