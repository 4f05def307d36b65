/*
 * log.h: one logging vocabulary for every mailpush program, in the manner of
 * OpenSMTPD's log.c.  In the foreground messages go to stderr; otherwise to
 * syslog with facility LOG_MAIL under the program's name.
 */
#ifndef MP_LOG_H
#define MP_LOG_H

#include <stdarg.h>

#define MP_LOG_ERR	0
#define MP_LOG_WARN	1
#define MP_LOG_INFO	2
#define MP_LOG_DEBUG	3

void	log_init(const char *progname, int foreground, int verbose);
void	log_setverbose(int);
int	log_getverbose(void);
const char *log_procname(void);

void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_error(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
/*
 * A debug message's arguments are not computed unless -v is on: some
 * format an address or escape a name on paths taken per push or per
 * registration removed (a million of them when a big table is freed).
 */
extern int mp_log_verbose;
#define log_debug(...)	do {						\
		if (mp_log_verbose > 0)					\
			(log_debug)(__VA_ARGS__);			\
	} while (0)
void	vlog(int, const char *, va_list) __attribute__((format(printf, 2, 0)));
void	log_raw(int, const char *, ...) __attribute__((format(printf, 2, 3)));
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
