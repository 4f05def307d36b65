/*
 * ops.h: helpers for the operations suites (control, state, reload,
 * privileges), on top of harness.h.  Everything still drives the real
 * binaries.
 */
#ifndef MP_OPS_H
#define MP_OPS_H

#include <sys/types.h>

#include <stddef.h>

#include "harness.h"

/* A UDP port free on both 127.0.0.1 and ::1 right now, or -1. */
/*
 * Like mpd_setup, but without starting the daemon: the directory, the key
 * and the configuration.  mainsect holds the variable lines of the
 * [mailpushd] section (NULL: "user =" and the harness's listen line); the
 * paths of the key, state file and sockets are always written.
 */
int	ops_prepare(struct mpd_proc *, const char *mainsect, const char *extra);
int	ops_write_config(struct mpd_proc *, const char *mainsect,
	    const char *extra);
/* Start mailpushd -d -v as uid/gid (from root) and wait until it answers. */
int	ops_start_as(struct mpd_proc *, uid_t, gid_t);
/* run_cmd as another user: what the child runs has that uid, gid and no
 * supplementary groups.  Needs root. */
int	ops_run_as(uid_t, gid_t, char *const argv[], char *out, size_t outlen,
	    char *err, size_t errlen, int timeout_ms);
/* mailpushd -d -c conf run to its end (it is expected to refuse to start). */
int	ops_mailpushd_fails(struct mpd_proc *, char *err, size_t errlen);
/* mailpushctl -c conf ARGS..., NULL-terminated, stderr kept in err. */
int	ops_ctl(struct mpd_proc *, char *out, size_t outlen, char *err,
	    size_t errlen, ...);

/*
 * Strict JSON (RFC 8259) check of the whole text: one value, nothing but
 * white space after it.  Returns 0, or -1 with the reason in why.
 */
int	json_check(const char *text, char *why, size_t whylen);
/* The same check by Python's json module when python3 is there:
 * 1 valid, 0 invalid, -1 no python3. */
int	json_python(const char *text);
/* The first member "key": NUMBER (JSON text); *v set, 0 or -1. */
int	json_num(const char *text, const char *key, long long *v);
/* The first member "key": "STRING" (no escapes in it); 0 or -1; "null"
 * for a null value. */
int	json_strval(const char *text, const char *key, char *out, size_t len);

/* Uid: and Gid: (real, effective, saved, fs) and Groups: of a process. */
int	proc_ids(pid_t, long uid[4], long gid[4], char *groups, size_t len);
/* A whole (small) file into buf, NUL-terminated; its length or -1. */
ssize_t	read_text(const char *path, char *buf, size_t len);
/* A registration's id, "%08x", from a REGISTERED reply. */
void	reg_hex(uint32_t id, char out[9]);

#endif
