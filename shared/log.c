/*
 * log.c: stderr in the foreground, syslog (LOG_MAIL) otherwise.  errno is
 * preserved across every call so callers can log and then test it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "log.h"

static const char *log_name = "mailpush";
static int log_foreground = 1;
int mp_log_verbose;		/* read by the log_debug macro */

void
log_init(const char *progname, int foreground, int verbose)
{
	log_name = progname;
	log_foreground = foreground;
	mp_log_verbose = verbose;
	if (!foreground)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_setverbose(int v)
{
	mp_log_verbose = v;
}

int
log_getverbose(void)
{
	return mp_log_verbose;
}

const char *
log_procname(void)
{
	return log_name;
}

/*
 * Errors and warnings carry a "error: " or "warning: " prefix, in syslog
 * as on stderr, as Postfix does, so they can be found with grep.
 */
#define MP_LOG_FATAL	4
void
vlog(int level, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG,
	    LOG_CRIT };
	static const char *prefix[] = { "error: ", "warning: ", "", "",
	    "fatal: " };
	char buf[1024];
	int saved = errno;

	if (level < 0 || level > MP_LOG_FATAL)
		level = MP_LOG_ERR;
	if (level == MP_LOG_DEBUG && mp_log_verbose < 1)
		goto out;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (log_foreground) {
		fprintf(stderr, "%s: %s%s\n", log_name, prefix[level], buf);
		fflush(stderr);
	} else
		syslog(prio[level], "%s%s", prefix[level], buf);
out:
	errno = saved;
}

static void
vlog_errno(int level, const char *fmt, va_list ap)
{
	char buf[1024];
	int saved = errno;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	errno = saved;
	if (saved)
		log_raw(level, "%s: %s", buf, strerror(saved));
	else
		log_raw(level, "%s", buf);
	errno = saved;
}

void
log_raw(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_errno(MP_LOG_WARN, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(MP_LOG_WARN, fmt, ap);
	va_end(ap);
}

void
log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(MP_LOG_ERR, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(MP_LOG_INFO, fmt, ap);
	va_end(ap);
}

void
(log_debug)(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(MP_LOG_DEBUG, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_errno(MP_LOG_FATAL, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(MP_LOG_FATAL, fmt, ap);
	va_end(ap);
	exit(1);
}
