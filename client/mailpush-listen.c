/*
 * mailpush-listen: the reference mailpush client, mailpush-listen(1).
 * Registers for one user and device, keeps the NAT mapping open and the
 * registration refreshed, acknowledges pushes and prints one line per
 * push or runs a command.  All protocol
 * work is in the client library (mpclient.c); this file is options, the
 * poll loop, signals and the -x child.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE		/* ppoll */
#endif
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "keyfile.h"
#include "log.h"
#include "mailpush.h"
#include "mpclient.h"
#include "provision.h"
#include "proto.h"
#include "srv.h"

#include "listen.h"

static volatile sig_atomic_t listen_term;
static volatile sig_atomic_t listen_chld;

static void	usage(void) __attribute__((noreturn));
static void	listen_oserr(const char *, const char *)
		    __attribute__((noreturn));

static void
usage(void)
{
	fprintf(stderr, "usage: mailpush-listen -s host[:port] ... | "
	    "-S domain [-R resolver] -u user\n\t-K tokenfile [-1Nv] "
	    "[-B seconds] [-C context] [-D devicefile]\n"
	    "\t[-m mailbox] [-t seconds] [-x command]\n"
	    "       mailpush-listen -I imaps://user@host[:port] -P passfile | "
	    "-E passcommand\n"
	    "\t[-A cafile] [-s host[:port] ... | -S domain [-R resolver]] "
	    "[-1Nv] [-B seconds]\n\t[-C context] [-D devicefile] "
	    "[-m mailbox] [-t seconds] [-x command]\n");
	exit(EX_USAGE);
}

/* A system call failed where nothing sensible can go on. */
static void
listen_oserr(const char *fmt, const char *arg)
{
	log_warn(fmt, arg);
	exit(EX_OSERR);
}

static void
listen_signal(int sig)
{
	if (sig == SIGCHLD)
		listen_chld = 1;
	else
		listen_term = 1;
}

uint64_t
listen_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wall-clock receive time, UTC with milliseconds: 2026-11-25T03:10:46.123Z */
static void
listen_timestamp(char buf[LISTEN_TIME_LEN])
{
	struct timespec ts;
	struct tm tm;
	char s[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, LISTEN_TIME_LEN, "%s.%03dZ", s,
	    (int)(ts.tv_nsec / 1000000));
}

/*
 * HOST, HOST:PORT, [V6], [V6]:PORT; a bare address with several colons is
 * an IPv6 address without a port.  Exits EX_USAGE, or EX_NOHOST when the
 * name does not resolve and !soft (soft: returns -1 after the message).
 */
static int
listen_resolve(const char *arg, struct sockaddr_storage *ss, socklen_t *len,
    int soft)
{
	char host[NI_MAXHOST];
	const char *port = MP_PORT, *p, *c;
	struct addrinfo hints, *res;
	size_t hl;
	long n;
	char *end;
	int e;

	if (arg[0] == '[') {
		if ((p = strchr(arg, ']')) == NULL)
			goto bad;
		hl = (size_t)(p - arg - 1);
		arg++;
		p++;
		if (*p == ':')
			port = p + 1;
		else if (*p != '\0')
			goto bad;
	} else if ((c = strchr(arg, ':')) != NULL && strchr(c + 1, ':') ==
	    NULL) {
		hl = (size_t)(c - arg);
		port = c + 1;
	} else
		hl = strlen(arg);
	if (hl == 0 || hl >= sizeof(host))
		goto bad;
	memcpy(host, arg, hl);
	host[hl] = '\0';
	errno = 0;
	n = strtol(port, &end, 10);
	if (*port == '\0' || *end != '\0' || errno != 0 || n < 1 ||
	    n > 65535)
		goto bad;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_protocol = IPPROTO_UDP;
	hints.ai_flags = AI_NUMERICSERV;
	if ((e = getaddrinfo(host, port, &hints, &res)) != 0) {
		log_warnx("%s: %s", host, gai_strerror(e));
		if (soft)
			return -1;
		exit(EX_NOHOST);
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
bad:
	log_warnx("bad server address: %s", arg);
	usage();
}

static void
listen_spawn(struct listen *l, const struct listen_push *p)
{
	char v[4][16];
	pid_t pid;

	fflush(stdout);
	if ((pid = fork()) == -1) {
		log_warn("fork");
		return;
	}
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		sigprocmask(SIG_SETMASK, &l->oldmask, NULL);
		snprintf(v[0], sizeof(v[0]), "%u", p->seq);
		snprintf(v[1], sizeof(v[1]), "%u", p->count);
		snprintf(v[2], sizeof(v[2]), "%u", p->new_messages);
		snprintf(v[3], sizeof(v[3]), "%u", p->total);
		if (setenv("MAILPUSH_USER", l->user, 1) == -1 ||
		    setenv("MAILPUSH_SEQ", v[0], 1) == -1 ||
		    setenv("MAILPUSH_COUNT", v[1], 1) == -1 ||
		    setenv("MAILPUSH_NEW", v[2], 1) == -1 ||
		    setenv("MAILPUSH_TOTAL", v[3], 1) == -1 ||
		    setenv("MAILPUSH_TIME", p->time, 1) == -1 ||
		    setenv("MAILPUSH_MAILBOX", l->mailbox, 1) == -1 ||
		    setenv("MAILPUSH_MAILBOXES", l->mailboxes, 1) == -1)
			_exit(127);
		execl("/bin/sh", "sh", "-c", l->command, (char *)NULL);
		_exit(127);
	}
	l->child = pid;
}

static void
listen_reap(struct listen *l)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid != l->child)
			continue;
		l->child = -1;
		if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
			log_warnx("command exited with status %d",
			    WEXITSTATUS(status));
		else if (WIFSIGNALED(status))
			log_warnx("command killed by signal %d",
			    WTERMSIG(status));
	}
	if (l->child == -1 && l->pending) {
		l->pending = 0;
		listen_spawn(l, &l->next);
	}
}

static void
listen_on_push(void *arg, const struct mpc_push *p)
{
	struct listen *l = arg;
	struct listen_push lp;

	if (l->once && l->got_push)
		return;
	l->got_push = 1;
	lp.seq = p->seq;
	lp.count = p->count;
	lp.new_messages = p->new_messages;
	lp.total = p->total;
	listen_timestamp(lp.time);
	if (l->command == NULL) {
		printf("push user=%s seq=%u count=%u new=%u total=%u time=%s"
		    "%s%s\n", p->user, lp.seq, lp.count, lp.new_messages,
		    lp.total, lp.time, p->restarted ? " restarted=1" : "",
		    p->exact ? "" : " exact=0");
		return;
	}
	if (l->child == -1) {
		listen_spawn(l, &lp);
		return;
	}
	/* The command still runs: coalesce into one later run. */
	if (l->pending) {
		lp.count += l->next.count;
		lp.new_messages += l->next.new_messages;
	}
	l->next = lp;
	l->pending = 1;
}

static void
listen_on_state(void *arg, enum mpc_event ev, const struct mpc_status *st)
{
	struct listen *l = arg;

	if ((ev == MPC_EV_REGISTERED || ev == MPC_EV_REFRESHED) &&
	    st->missed != 0 && l->verbose)
		log_info("missed pushes: the server sent up to seq %u, "
		    "the last seen was %u", st->server_seq, st->last_seq);
	switch (ev) {
	case MPC_EV_REGISTERED:
		if (l->verbose)
			log_info("registered id=%08x lifetime=%us "
			    "keepalive=%us (server allows %u-%us)", st->reg_id,
			    st->lifetime, st->keepalive_ms / 1000,
			    st->keepalive_min_ms / 1000,
			    st->keepalive_max_ms / 1000);
		break;
	case MPC_EV_KEEPALIVE:
		if (l->verbose)
			log_info("keepalive=%us: %s (silence survived %us, "
			    "failed %us)", st->keepalive_ms / 1000, st->why,
			    st->probe_good_ms / 1000, st->probe_bad_ms / 1000);
		break;
	case MPC_EV_KICK:
		if (l->verbose)
			log_info("refreshing: %s", st->why);
		break;
	case MPC_EV_REFRESHED:
		if (l->verbose > 1)
			log_info("refreshed id=%08x lifetime=%us", st->reg_id,
			    st->lifetime);
		break;
	case MPC_EV_LOST:
		if (l->n_servers > 1)
			l->failover = 1;	/* the loop moves on */
		else if (l->verbose)
			log_info("re-registering: %s", st->why);
		break;
	case MPC_EV_STALE:
		if (l->verbose)
			log_info("%s: clock differs from the server's by "
			    "%lldms, retrying", st->why,
			    (long long)st->clock_offset);
		break;
	case MPC_EV_REFUSED:
		if (st->retry) {
			/* the server is full for now: keep running */
			log_info("registration refused: %s (limit %u); "
			    "retrying in %us", st->why, st->limit,
			    st->retry_ms / 1000);
			break;
		}
		l->refused = 1;
		break;
	case MPC_EV_UNREGISTERED:
		if (l->verbose)
			log_info("unregistered: %s", st->why);
		break;
	}
}

static void
listen_on_debug(void *arg, const char *msg)
{
	struct listen *l = arg;

	if (l->verbose > 1)
		log_info("%s", msg);
}

/* Wait for readability or until deadline (listen_now clock). */
static void
listen_wait(struct listen *l, uint64_t deadline)
{
	struct pollfd pfd;
	struct timespec ts, *tsp = NULL;
	uint64_t now = listen_now(), ms;

	if (deadline != UINT64_MAX) {
		ms = deadline > now ? deadline - now : 0;
		ts.tv_sec = (time_t)(ms / 1000);
		ts.tv_nsec = (long)(ms % 1000) * 1000000;
		tsp = &ts;
	}
	pfd.fd = mpc_fd(l->mpc);
	pfd.events = POLLIN;
	if (ppoll(&pfd, 1, tsp, &l->oldmask) > 0 && (pfd.revents & POLLERR)) {
		/*
		 * An ICMP error for what we sent (port unreachable: no
		 * server there now).  Reading it clears it, or poll would
		 * report it again at once; with other servers, move on.
		 */
		int err = 0;
		socklen_t el = sizeof(err);

		if (getsockopt(pfd.fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 &&
		    err != 0) {
			if (l->verbose > 1)
				log_info("%s: %s", l->servers[l->cur],
				    strerror(err));
			if (l->n_servers > 1 && (err == ECONNREFUSED ||
			    err == EHOSTUNREACH || err == ENETUNREACH))
				l->failover = 1;
		}
	}
	if (pfd.revents & POLLIN)
		mpc_input(l->mpc, listen_now());
	if (listen_now() >= mpc_next_deadline(l->mpc))
		mpc_tick(l->mpc, listen_now());
}

/* Unregister (best effort, bounded), then exit. */
static void __attribute__((noreturn))
listen_exit(struct listen *l, int status)
{
	uint64_t end = listen_now() + LISTEN_UNREGISTER_WAIT, d;

	/* A REGISTERED may be waiting behind the signal that brought us. */
	mpc_input(l->mpc, listen_now());
	if (mpc_state(l->mpc, NULL) == MPC_REGISTERED &&
	    mpc_unregister(l->mpc, listen_now()) == 0) {
		while (mpc_state(l->mpc, NULL) == MPC_UNREGISTERING &&
		    listen_now() < end) {
			d = mpc_next_deadline(l->mpc);
			listen_wait(l, d < end ? d : end);
		}
	}
	mpc_free(l->mpc);
	free(l->mailboxes);
	fflush(stdout);
	exit(status);
}

/*
 * Register at servers[to] instead of the current one (which stopped
 * answering, or is not the first one for LISTEN_FAILBACK_MS): the same
 * device, so the new server takes the registration over; the old one
 * lets it expire (it is sent UNREGISTER when it still answers).
 */
static void
listen_switch(struct listen *l, int to, const struct mpc_params *pa,
    const struct mpc_callbacks *cb, const char *why)
{
	log_info("%s %s: registering at %s", l->servers[l->cur], why,
	    l->servers[to]);
	if (mpc_state(l->mpc, NULL) == MPC_REGISTERED)
		mpc_unregister(l->mpc, listen_now());	/* one try */
	mpc_free(l->mpc);
	l->cur = to;
	l->failover = 0;
	l->since = listen_now();
	/*
	 * Its address again (it may have moved); when DNS fails now, which
	 * is likely when the network is unwell, the one it had (R16-6).
	 */
	if (listen_resolve(l->servers[to], &l->server_ss[to],
	    &l->server_len[to], 1) == -1)
		log_warnx("%s: not resolved; trying the address it had",
		    l->servers[to]);
	if ((l->mpc = mpc_new((struct sockaddr *)&l->server_ss[to],
	    l->server_len[to], pa, cb)) == NULL)
		listen_oserr("socket to %s", l->servers[to]);
	if (mpc_register(l->mpc, listen_now()) == -1)
		log_warn("send to %s", l->servers[to]);
}

int
main(int argc, char *argv[])
{
	struct listen l;
	struct mpc_params pa;
	struct mpc_callbacks cb;
	struct mpc_status st;
	struct sigaction sa;
	sigset_t mask;
	const char *server = NULL, *tokenfile = NULL, *devfile = NULL, *why;
	const char *passfile = NULL, *passcmd = NULL, *domain = NULL;
	const char *resolver = NULL;
	char sbuf[300], err[512];
	const char *context = LISTEN_DEFAULT_CONTEXT;
	uint64_t t_end = UINT64_MAX, d;
	long timeout = 0;
	char *end;
	uint8_t key_id;
	int ch, created = 0;
	char devhex[2 * MP_DEVICE_ID_LEN + 1];

	memset(&l, 0, sizeof(l));
	memset(&pa, 0, sizeof(pa));
	l.child = -1;
	log_init("mailpush-listen", 1, 0);

	while ((ch = getopt(argc, argv, "1A:B:C:D:E:I:K:m:NP:R:S:s:t:u:vx:")) != -1) {
		switch (ch) {
		case 'A':
			l.popts.cafile = optarg;
			break;
		case 'B':
			errno = 0;
			l.failback_s = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || errno != 0 ||
			    l.failback_s < 1 || l.failback_s > 86400)
				usage();
			break;
		case 'R':
			resolver = optarg;
			break;
		case 'S':
			domain = optarg;
			break;
		case 'E':
			passcmd = optarg;
			break;
		case 'I':
			l.popts.url = optarg;
			break;
		case 'P':
			passfile = optarg;
			break;
		case '1':
			l.once = 1;
			break;
		case 'C':
			context = optarg;
			break;
		case 'D':
			devfile = optarg;
			break;
		case 'K':
			tokenfile = optarg;
			break;
		case 'N':
			pa.no_probe = 1;
			break;
		case 'm':
			if (pa.n_mailboxes == MP_MAILBOXES_MAX) {
				log_warnx("more than %d mailboxes",
				    MP_MAILBOXES_MAX);
				usage();
			}
			if (*optarg == '\0' || strlen(optarg) > MP_MAILBOX_MAX) {
				log_warnx("mailbox name empty or longer than "
				    "%d bytes", MP_MAILBOX_MAX);
				usage();
			}
			pa.mailboxes[pa.n_mailboxes++] = optarg;
			break;
		case 's':
			if (l.n_servers == LISTEN_SERVERS_MAX) {
				log_warnx("more than %d servers",
				    LISTEN_SERVERS_MAX);
				usage();
			}
			l.servers[l.n_servers++] = optarg;
			server = l.servers[0];
			break;
		case 't':
			errno = 0;
			timeout = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || errno != 0 ||
			    timeout < 1 || timeout > INT_MAX / 1000) {
				log_warnx("bad timeout: %s", optarg);
				usage();
			}
			break;
		case 'u':
			l.user = optarg;
			break;
		case 'v':
			l.verbose++;
			break;
		case 'x':
			l.command = optarg;
			break;
		default:
			usage();
		}
	}
	if (l.popts.url != NULL) {
		if (argc != optind || l.user != NULL || tokenfile != NULL ||
		    (passfile == NULL) == (passcmd == NULL))
			usage();
		if ((passfile != NULL ? mpc_password_file(passfile,
		    l.password, sizeof(l.password), err, sizeof(err)) :
		    mpc_password_command(passcmd, l.password,
		    sizeof(l.password), err, sizeof(err))) != 0) {
			log_warnx("%s", err);
			exit(EX_NOINPUT);
		}
		l.popts.password = l.password;
		if (mpc_provision_cache_path(l.popts.url, l.cache,
		    sizeof(l.cache), &why) != 0) {
			log_warnx("provisioning cache: %s", why);
			exit(EX_USAGE);
		}
		log_setverbose(l.verbose);
		if (listen_provision(&l, 0) != 0)
			exit(EX_UNAVAILABLE);
		l.user = l.prov.user;
		if (server == NULL && domain == NULL && (server =
		    listen_server_list(&l, l.prov.servers)) == NULL) {
			log_warnx("the server gave no notifier list; name one "
			    "with -s or -S");
			exit(EX_UNAVAILABLE);
		}
	} else if (argc != optind || (server == NULL) == (domain == NULL) ||
	    l.user == NULL || tokenfile == NULL)
		usage();
	if (server == NULL) {	/* -S: DNS SRV */
		struct mpc_srv srv[MPC_SRV_MAX];
		int n;

		if ((n = mpc_srv_lookup(domain, resolver, srv, err,
		    sizeof(err))) < 0) {
			log_warnx("%s", err);
			exit(EX_NOHOST);
		}
		mpc_srv_text(srv, n, sbuf, sizeof(sbuf));
		if (l.verbose)
			log_info("_mailpush._udp.%s: %s", domain, sbuf);
		server = listen_server_list(&l, sbuf);
	}
	if (*l.user == '\0' || strlen(l.user) > MP_USER_MAX) {
		log_warnx("user name empty or longer than %d bytes",
		    MP_USER_MAX);
		usage();
	}
	if (strlen(context) > MP_CONTEXT_MAX) {
		log_warnx("context longer than %d bytes", MP_CONTEXT_MAX);
		usage();
	}
	log_setverbose(l.verbose);
	if (l.n_servers == 0)
		l.servers[l.n_servers++] = server;
	for (ch = l.n_servers - 1; ch >= 0; ch--)	/* all must resolve */
		listen_resolve(l.servers[ch], &l.server_ss[ch],
		    &l.server_len[ch], 0);
	l.since = listen_now();
	if (l.popts.url != NULL) {
		key_id = l.prov.key_id;
		memcpy(pa.token, l.prov.token, sizeof(pa.token));
	} else if (keyfile_token_read(tokenfile, &key_id, pa.token, &why) ==
	    -1) {
		log_warnx("%s: %s", tokenfile, why);
		exit(EX_NOINPUT);
	}
	if (devfile == NULL)
		mpc_device_new(pa.device);	/* a new device each run */
	else if (mpc_device_load(devfile, pa.device, &created) == -1) {
		log_warn("device file %s%s", devfile, errno == EINVAL ?
		    " does not hold 32 hexadecimal digits" : "");
		exit(EX_NOINPUT);
	}
	if (l.verbose) {
		proto_hex_encode(pa.device, MP_DEVICE_ID_LEN, devhex);
		log_info("device %s%s", devhex, devfile == NULL ?
		    " (for this run only)" : created ? " (new, saved)" :
		    " (saved)");
	}
	pa.key_id = key_id;
	pa.user = l.user;
	/* what a -x command is told about mailboxes (a push does not say) */
	{
		size_t i, n = 1;

		for (i = 0; i < pa.n_mailboxes; i++)
			n += strlen(pa.mailboxes[i]) + 1;
		if ((l.mailboxes = calloc(1, n)) == NULL)
			listen_oserr("%s", "calloc");
		for (i = 0; i < pa.n_mailboxes; i++) {
			if (i > 0)
				strcat(l.mailboxes, "\n");
			strcat(l.mailboxes, pa.mailboxes[i]);
		}
		l.mailbox = pa.n_mailboxes == 1 ? pa.mailboxes[0] : "";
	}
	pa.ctx = (const uint8_t *)context;
	pa.ctx_len = strlen(context);

	if (setvbuf(stdout, NULL, _IOLBF, 0) != 0)
		listen_oserr("%s", "setvbuf");
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, &l.oldmask) == -1)
		listen_oserr("%s", "sigprocmask");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = listen_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) == -1 ||
	    sigaction(SIGTERM, &sa, NULL) == -1 ||
	    sigaction(SIGCHLD, &sa, NULL) == -1)
		listen_oserr("%s", "sigaction");
	/* ppoll unblocks only these; everything else stays as inherited. */
	sigdelset(&l.oldmask, SIGINT);
	sigdelset(&l.oldmask, SIGTERM);
	sigdelset(&l.oldmask, SIGCHLD);

	memset(&cb, 0, sizeof(cb));
	cb.push = listen_on_push;
	cb.state = listen_on_state;
	cb.debug = listen_on_debug;
	cb.arg = &l;
	if ((l.mpc = mpc_new((struct sockaddr *)&l.server_ss[0],
	    l.server_len[0], &pa, &cb)) == NULL) {
		if (errno == EINVAL) {
			log_warnx("request too large for one datagram");
			exit(EX_USAGE);
		}
		listen_oserr("socket to %s", server);
	}
	if (timeout > 0)
		t_end = listen_now() + (uint64_t)timeout * 1000;
	if (mpc_register(l.mpc, listen_now()) == -1)
		log_warn("send to %s", server);

	for (;;) {
		if (listen_term)
			listen_exit(&l, EX_OK);
		if (listen_chld) {
			listen_chld = 0;
			listen_reap(&l);
		}
		/*
		 * The two outcomes a script looks for are printed as
		 * mailpush-listen(1) documents them, without the "warning: "
		 * of log_warnx.
		 */
		if (l.refused) {
			mpc_state(l.mpc, &st);
			/* a provisioned client fetches a newer token */
			if (st.reason == REASON_AUTH &&
			    listen_reprovision(&l, &pa)) {
				l.refused = 0;
				listen_switch(&l, 0, &pa, &cb, "refused the "
				    "token");
				continue;
			}
			if (st.limit != 0)
				log_info("registration refused: %s (limit %u)",
				    st.why, st.limit);
			else
				log_info("registration refused: %s", st.why);
			if (st.reason == REASON_AUTH)
				log_info("the server does not accept this "
				    "token: it may belong to a retired key; "
				    "%s", l.popts.url != NULL ? "provisioning "
				    "over IMAP gave no newer one" : "ask the "
				    "administrator for a new one (mailpushctl "
				    "token), or provision with -I");
			mpc_free(l.mpc);
			exit(LISTEN_EXIT_REFUSED);
		}
		/*
		 * fail-over along the servers, and back to the first; not
		 * more often than LISTEN_SWITCH_MS (when every one refuses
		 * at once, ICMP port unreachable, this loop spun)
		 */
		if (l.n_servers > 1 && (l.failover ||
		    (mpc_state(l.mpc, NULL) == MPC_REGISTERING &&
		    listen_now() - l.since >= LISTEN_FAILOVER_MS)) &&
		    listen_now() - l.since >= LISTEN_SWITCH_MS) {
			listen_switch(&l, (l.cur + 1) % l.n_servers, &pa, &cb,
			    "does not answer");
			continue;
		}
		if (l.cur != 0 && mpc_state(l.mpc, NULL) == MPC_REGISTERED &&
		    listen_now() - l.since >= (l.failback_s > 0 ?
		    (uint64_t)l.failback_s * 1000 : LISTEN_FAILBACK_MS)) {
			listen_switch(&l, 0, &pa, &cb, "was the fall-back for "
			    "long enough");
			continue;
		}
		if (l.once && l.got_push && l.child == -1)
			listen_exit(&l, EX_OK);
		if (!l.got_push && listen_now() >= t_end) {
			log_info("no push within %ld seconds", timeout);
			listen_exit(&l, LISTEN_EXIT_TIMEOUT);
		}
		d = mpc_next_deadline(l.mpc);
		if (!l.got_push && t_end < d)
			d = t_end;
		if (l.failover && l.since + LISTEN_SWITCH_MS < d)
			d = l.since + LISTEN_SWITCH_MS;
		listen_wait(&l, d);
	}
}
