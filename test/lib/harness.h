/*
 * harness.h: drive the real mailpushd, mailpushctl, mailpush-hook and
 * mailpush-listen from Check tests, in a temporary directory on loopback
 * (harness.c), and talk to the daemon as a raw protocol client
 * (tclient.c).
 */
#ifndef MP_HARNESS_H
#define MP_HARNESS_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#ifndef BUILDDIR
#define BUILDDIR "build"
#endif

struct mpd_proc {
	char		dir[64];	/* temporary directory, removed at stop */
	char		conf[128];	/* dir/mailpushd.conf */
	char		log[128];	/* dir/mailpushd.log: stderr of -d -v */
	char		key_file[128];
	char		state[128];
	char		control[128];
	char		events[128];
	pid_t		pid;
	int		port;		/* UDP port on 127.0.0.1 and ::1 */
	uint8_t		key[MP_KEY_LEN];
};

/*
 * Make a directory, key and configuration, start mailpushd -d -v and wait
 * until its control socket answers.  extra is appended to the file (more
 * sections: [limits], [user X]...).  Returns 0, or -1 (the test fails).
 */
int	mpd_setup(struct mpd_proc *, const char *extra);
/* The directory, paths, a free port and a key; no configuration yet. */
int	mpd_prepare(struct mpd_proc *);
/* A UDP port free on both 127.0.0.1 and ::1, or -1. */
int	mpd_free_port(void);
/* Write a file with exactly this mode. */
int	write_text(const char *path, const char *text, mode_t mode);
int	mpd_start(struct mpd_proc *);
/* Wait until the daemon started as p->pid answers on its control socket;
 * -1 if it exits or ms pass. */
int	mpd_wait_ready(struct mpd_proc *, int ms);
/* Read what a non-blocking fd holds into buf (NUL-terminated at *off). */
void	drain_fd(int fd, char *buf, size_t len, size_t *off);	/* start again (same directory) */
int	mpd_signal(struct mpd_proc *, int sig);
/* SIGSTOP and wait until it is stopped (SIGCONT resumes it); 0 or -1. */
int	mpd_pause(struct mpd_proc *);
/* SIGTERM and wait; returns the exit status or -1 after 5 s (SIGKILL). */
int	mpd_stop(struct mpd_proc *);
void	mpd_cleanup(struct mpd_proc *);	/* stop if running, remove dir */
/* Rewrite the configuration with another extra part. */
int	mpd_rewrite(struct mpd_proc *, const char *extra);

/* Run a program, capture stdout (and stderr into err); returns exit status. */
int	run_cmd(char *const argv[], char *out, size_t outlen, char *err,
	    size_t errlen, int timeout_ms);
/* mailpushctl -c conf ARGS...; NULL-terminated. */
int	mpd_ctl(struct mpd_proc *, char *out, size_t outlen, ...);
/* Value of a counter in `mailpushctl stats' (-1 if missing). */
long long mpd_stat(struct mpd_proc *, const char *name);
/* Occurrences of needle in the daemon's log so far. */
int	mpd_log_count(struct mpd_proc *, const char *needle);
/* Wait up to ms for the log to contain needle n times. */
int	mpd_log_wait(struct mpd_proc *, const char *needle, int n, int ms);
void	mpd_token(const struct mpd_proc *, const char *user,
	    uint8_t token[MP_TOKEN_LEN]);
int	mpd_write_token(const struct mpd_proc *, const char *user,
	    const char *path);
/* Post an event as mailpush-hook does (through the real binary). */
int	mpd_hook(struct mpd_proc *, const char *user, const char *mailbox);
/* Post an event datagram directly (no process spawn). */
int	mpd_event(struct mpd_proc *, const char *user, const char *mailbox,
	    unsigned count);

/* A raw protocol client on its own UDP socket. */
struct tclient {
	int		fd;
	struct sockaddr_storage srv;
	socklen_t	srvlen;
	uint8_t		cookie[PROTO_COOKIE_LEN];
	uint8_t		token[MP_TOKEN_LEN];
	uint8_t		device[PROTO_DEVICE_LEN];	/* random at tc_open */
	uint8_t		push_key[32];
	uint64_t	last_ts;	/* last request timestamp (ms) */
	char		user[MP_USER_MAX + 1];
	int64_t		clock_skew;	/* seconds added to timestamps */
	int		no_pad;		/* 1: requests are not padded */
	uint16_t	reg_ctx_len;	/* of the last REGISTER, for padding */
	int		ctx_devices;	/* 1 (tc_open's default): REGISTER
					   uses a device made of user and
					   context (one per context, the same
					   from any client); tc_set_device
					   turns it off */
};

/* Open a client to the daemon; bind_ip NULL: 127.0.0.1 (or ::1 if v6). */
int	tc_open(struct tclient *, const struct mpd_proc *, int v6,
	    const char *bind_ip, const char *user);
void	tc_close(struct tclient *);
/* Send raw bytes. */
int	tc_send(struct tclient *, const uint8_t *, size_t);
/* Receive one datagram within ms; returns its length or -1. */
int	tc_recv(struct tclient *, uint8_t *, size_t, int ms);
/* The device that registered id (tc_call remembers), or a random one. */
void	tc_use_reg(struct tclient *, uint32_t id);
/* Use this device id (and its push key) from now on. */
void	tc_set_device(struct tclient *, const uint8_t device[PROTO_DEVICE_LEN]);
/* The next request timestamp: ms, skewed, above the last one. */
uint64_t tc_ts(struct tclient *);
/* Fill a request for this client's user and device (fresh timestamp,
 * padded as the client library pads it). */
void	tc_req(struct tclient *, struct mp_request *, uint8_t type,
	    const void *ctx, size_t ctx_len);
/* Encode a request with the client's cookie and token; its length. */
int	tc_encode(struct tclient *, struct mp_request *, uint8_t *, size_t);
/*
 * Send a request (with the client's current cookie and a fresh timestamp)
 * and wait for the reply echoing it; a COOKIE reply is stored and the
 * request sent again with it unless no_retry.  Returns 0 with *rp filled,
 * -1 on no answer.
 */
int	tc_call(struct tclient *, struct mp_request *, struct mp_reply *,
	    int no_retry);
/* REGISTER with context; returns 0 and the reply. */
int	tc_register(struct tclient *, const void *ctx, size_t ctx_len,
	    struct mp_reply *);
/* Wait for a PUSH within ms (skipping other datagrams) and decrypt it:
 * 0, -1 on none, -2 if it does not decrypt under the client's key. */
int	tc_push(struct tclient *, struct mp_push *, int ms);
/* PUSH_ACK for p (a fresh timestamp). */
int	tc_ack(struct tclient *, const struct mp_push *);
/* KEEPALIVE naming reg_id. */
int	tc_keepalive(struct tclient *, uint32_t reg_id);

/* Milliseconds, monotonic. */
uint64_t now_ms(void);
/* Resident set size of a process in KiB. */
long	rss_kib(pid_t);

/*
 * Additions for the registration and push suites.
 */

/*
 * Start a program in the background: stdin /dev/null, stdout and stderr
 * on non-blocking pipes (*out_fd, *err_fd; either may be NULL to discard).
 * It gets SIGTERM if the test process dies.  Returns the pid or -1.
 */
pid_t	spawn_cmd(char *const argv[], int *out_fd, int *err_fd);
/* Wait up to ms for pid; its status as run_cmd gives it, or -1 (killed). */
int	wait_cmd(pid_t, int ms);
/*
 * Append what fd delivers to buf (NUL-terminated, *off bytes so far) until
 * buf contains needle or ms pass.  Returns 0 if found, -1 if not.
 */
int	read_until(int fd, char *buf, size_t len, size_t *off,
	    const char *needle, int ms);
/* run_cmd with input on the program's stdin (at most 64 kB). */
int	run_cmd_input(char *const argv[], const char *input, char *out,
	    size_t outlen, char *err, size_t errlen, int timeout_ms);
/* Does text hold an AddressSanitizer, LeakSanitizer or UBSan report? */
int	sanitizer_report(const char *text);
/*
 * For teardown fixtures: stop the daemon (SIGTERM), then check that it
 * exited 0 and that its log holds no sanitizer report; remove the
 * directory.  Returns 0 if clean; otherwise -1, the offending lines on
 * stderr, and the directory kept for a look.
 */
int	mpd_finish(struct mpd_proc *);
/* Registrations `mailpushctl list USER' shows (-1 on error); text in out. */
int	mpd_list(struct mpd_proc *, const char *user, char *out, size_t outlen);
/* Wait up to ms until the counter `name' reaches at least value. */
int	mpd_stat_wait(struct mpd_proc *, const char *name, long long value,
	    int ms);
/* REGISTER naming mailboxes (n of them); returns 0 and the reply. */
int	tc_register_mailboxes(struct tclient *, const void *ctx,
	    size_t ctx_len, const char *const *mailboxes, size_t n,
	    struct mp_reply *);

#endif
