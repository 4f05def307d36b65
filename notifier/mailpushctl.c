/*
 * mailpushctl: control mailpushd over its control socket, and make keys
 * and tokens.  See mailpushctl(8).
 *
 * The control protocol is one request line ("[-j] COMMAND [ARGS]") and an
 * answer whose first line is "ok" or "error: MESSAGE" (see control.c).
 * Exit status: 0; 1 the daemon refused the request; 2 status found a
 * problem (the daemon answered "warn: ..."); sysexits(3) codes for
 * everything else (64 usage, 65 bad user name, 69 daemon not running,
 * 73 cannot create the key, 74 I/O error, 77 permission denied,
 * 78 configuration or key file error).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "log.h"
#include "mailpushctl.h"
#include "proto.h"
#include "user.h"

static __attribute__((noreturn)) void
usage(void)
{
	fprintf(stderr,
	    "usage: mailpushctl [-j] [-c file] [-s socket] command [arg ...]\n"
	    "commands:\n"
	    "  status              daemon status and health checks\n"
	    "  stats [-o format]   counters: text, json or prometheus\n"
	    "  list [user]         registrations\n"
	    "  drop user [id]      remove registrations\n"
	    "  reload              re-read the configuration\n"
	    "  token user          print a user's token (ID:HEX)\n"
	    "  genkey [-f]         write a new key file\n"
	    "  key show            key ids and the grace period\n"
	    "  key rotate [-f]     make a new current key, keep the old one "
	    "for the grace\n"
	    "  key retire          stop accepting the previous key now\n");
	exit(EX_USAGE);
}

void
json_str(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(fp, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(fp, "\\u%04x", c);
		else
			fputc(c, fp);
	}
	fputc('"', fp);
}

int
ctl_request(const char *path, const char *req)
{
	struct sockaddr_un sun;
	char buf[65536];
	size_t off = 0;
	ssize_t n;
	int fd, first = 1, status = 0;
	struct pollfd pfd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "mailpushctl: %s: socket path too long\n",
		    path);
		return EX_USAGE;
	}
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		fprintf(stderr, "mailpushctl: socket: %s\n", strerror(errno));
		return EX_SOFTWARE;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		int e = errno;

		close(fd);
		if (e == EACCES || e == EPERM) {
			fprintf(stderr, "mailpushctl: %s: permission denied: "
			    "run it as root, as the daemon's user or as a "
			    "member of the socket's group\n", path);
			return EX_NOPERM;
		}
		if (e == ENOENT)
			fprintf(stderr, "mailpushctl: control socket %s is "
			    "missing: mailpushd is not running, or the socket "
			    "was removed while it ran (then restart it)\n",
			    path);
		else
			fprintf(stderr, "mailpushctl: mailpushd is not running "
			    "(%s: %s)\n", path, strerror(e));
		return EX_UNAVAILABLE;
	}
	/* MSG_NOSIGNAL: a daemon at its connection limit closes at once */
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req) ||
	    send(fd, "\n", 1, MSG_NOSIGNAL) != 1) {
		fprintf(stderr, "mailpushctl: %s: %s\n", path, strerror(errno));
		close(fd);
		return EX_IOERR;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		int rc = poll(&pfd, 1, TIMEOUT_MS);

		if (rc == 0) {
			fprintf(stderr, "mailpushctl: no answer from mailpushd "
			    "within %d s\n", TIMEOUT_MS / 1000);
			close(fd);
			return EX_UNAVAILABLE;
		}
		if (rc == -1) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "mailpushctl: poll: %s\n",
			    strerror(errno));
			close(fd);
			return EX_IOERR;
		}
		n = read(fd, buf + off, sizeof(buf) - 1 - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "mailpushctl: %s: %s\n", path,
			    strerror(errno));
			close(fd);
			return EX_IOERR;
		}
		off += (size_t)n;
		buf[off] = '\0';
		if (first) {
			char *nl = strchr(buf, '\n');

			if (n > 0 && nl == NULL && off < sizeof(buf) - 1)
				continue;	/* the first line is not whole */
			if (off == 0)
				break;		/* closed without an answer */
			if (strncmp(buf, "ok\n", 3) == 0) {
				off -= 3;
				memmove(buf, buf + 3, off + 1);
			} else if (strncmp(buf, "warn: ", 6) == 0 &&
			    nl != NULL) {
				/* status found problems: they are in the body */
				status = EX_PROBLEM;
				off -= (size_t)(nl + 1 - buf);
				memmove(buf, nl + 1, off + 1);
			} else if (strncmp(buf, "error: ", 7) == 0 &&
			    nl != NULL) {
				status = EX_REFUSED;
				fprintf(stderr, "mailpushctl: %.*s\n",
				    (int)(nl - buf - 7), buf + 7);
				off = 0;
			} else {
				fprintf(stderr, "mailpushctl: unexpected "
				    "answer from %s\n", path);
				close(fd);
				return EX_SOFTWARE;
			}
			first = 0;
		}
		if (status != EX_REFUSED && off > 0 &&
		    fwrite(buf, 1, off, stdout) != off) {
			fprintf(stderr, "mailpushctl: stdout: %s\n",
			    strerror(errno));
			close(fd);
			return EX_IOERR;
		}
		off = 0;
		if (n == 0)
			break;
	}
	close(fd);
	if (first) {
		fprintf(stderr, "mailpushctl: mailpushd closed the connection "
		    "without an answer\n");
		return EX_SOFTWARE;
	}
	if (fflush(stdout) != 0) {
		fprintf(stderr, "mailpushctl: stdout: %s\n", strerror(errno));
		return EX_IOERR;
	}
	return status;
}

int
main(int argc, char *argv[])
{
	const char *conffile = MP_CONFIG_FILE, *sock = NULL, *cmd;
	struct mp_config cfg;
	char req[1024];
	int ch, json = 0, rc, errors;

	while ((ch = getopt(argc, argv, "+c:hjs:")) != -1) {
		switch (ch) {
		case 'c':
			conffile = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 's':
			sock = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	cmd = argv[0];
	log_init("mailpushctl", 1, 0);
	if (sodium_init() < 0) {
		fprintf(stderr, "mailpushctl: libsodium failed\n");
		return EX_SOFTWARE;
	}
	/*
	 * token and genkey need a good file.  The control commands need only
	 * the socket: a daemon keeps running on its old configuration when
	 * the file goes bad, and must stay reachable (reload then says why
	 * it refuses the file, status and list still work).
	 */
	if ((errors = config_load(conffile, &cfg)) != 0) {
		if (strcmp(cmd, "token") == 0 || strcmp(cmd, "genkey") == 0 ||
		    strcmp(cmd, "key") == 0) {
			config_free(&cfg);
			return EX_CONFIG;
		}
		fprintf(stderr, "mailpushctl: %s has errors; using control "
		    "socket %s\n", conffile, sock ? sock : cfg.control_socket);
	}
	if (sock == NULL)
		sock = cfg.control_socket;

	if (strcmp(cmd, "token") == 0) {
		if (argc != 2)
			usage();
		rc = cmd_token(&cfg, argv[1], json);
	} else if (strcmp(cmd, "genkey") == 0) {
		if (argc > 2 || (argc == 2 && strcmp(argv[1], "-f") != 0))
			usage();
		rc = cmd_genkey(&cfg, argc == 2, json);
	} else if (strcmp(cmd, "key") == 0 && (argc == 2 || (argc == 3 &&
	    strcmp(argv[1], "rotate") == 0 && strcmp(argv[2], "-f") == 0))) {
		rc = cmd_key(&cfg, argv[1], sock, json, argc == 3);
		if (rc == -1)
			usage();
	} else if ((strcmp(cmd, "status") == 0 || strcmp(cmd, "stats") == 0 ||
	    strcmp(cmd, "reload") == 0) && argc == 1) {
		snprintf(req, sizeof(req), "%s%s", json ? "-j " : "", cmd);
		rc = ctl_request(sock, req);
	} else if (strcmp(cmd, "stats") == 0 && argc == 3 &&
	    strcmp(argv[1], "-o") == 0) {
		const char *flag;

		if (strcmp(argv[2], "text") == 0)
			flag = json ? "-j " : "";
		else if (strcmp(argv[2], "json") == 0)
			flag = "-j ";
		else if (strcmp(argv[2], "prometheus") == 0 && !json)
			flag = "-p ";
		else {
			fprintf(stderr, "mailpushctl: stats -o: \"%.40s\" is "
			    "not text, json or prometheus (nor with -j)\n",
			    argv[2]);
			config_free(&cfg);
			return EX_USAGE;
		}
		snprintf(req, sizeof(req), "%sstats", flag);
		rc = ctl_request(sock, req);
	} else if ((strcmp(cmd, "list") == 0 && argc <= 2) ||
	    (strcmp(cmd, "drop") == 0 && argc >= 2 && argc <= 3)) {
		size_t i;

		/* user names never contain white space; ids neither */
		for (i = 1; i < (size_t)argc; i++)
			if (argv[i][0] == '\0' || strlen(argv[i]) > 300 ||
			    strpbrk(argv[i], " \t\r\n") != NULL) {
				fprintf(stderr, "mailpushctl: bad argument "
				    "\"%.40s\"\n", argv[i]);
				config_free(&cfg);
				return EX_DATAERR;
			}
		snprintf(req, sizeof(req), "%s%s%s%s%s%s", json ? "-j " : "",
		    cmd, argc >= 2 ? " " : "", argc >= 2 ? argv[1] : "",
		    argc == 3 ? " " : "", argc == 3 ? argv[2] : "");
		rc = ctl_request(sock, req);
	} else
		usage();
	config_free(&cfg);
	return rc;
}
