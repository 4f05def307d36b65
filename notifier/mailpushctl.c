/*
 * mailpushctl: control mailpushd over its control socket, and make keys
 * and tokens.  See mailpushctl(8).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "log.h"
#include "proto.h"
#include "user.h"

#define EX_USAGE	64
#define EX_DATAERR	65
#define EX_UNAVAILABLE	69
#define EX_SOFTWARE	70
#define EX_CANTCREAT	73
#define EX_IOERR	74
#define EX_NOPERM	77
#define EX_CONFIG	78

#define TIMEOUT_MS	10000

static __attribute__((noreturn)) void
usage(void)
{
	fprintf(stderr,
	    "usage: mailpushctl [-j] [-c file] [-s socket] command [args]\n"
	    "commands:\n"
	    "  status              daemon status\n"
	    "  stats               counters\n"
	    "  list [user]         registrations\n"
	    "  drop user [id]      remove registrations\n"
	    "  reload              re-read the configuration\n"
	    "  token user          print a user's token\n"
	    "  genkey [-f]         write a new key file\n");
	exit(EX_USAGE);
}

static int
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
			fprintf(stderr, "mailpushctl: %s: permission denied "
			    "(run as root or a member of the socket's group)\n",
			    path);
			return EX_NOPERM;
		}
		fprintf(stderr, "mailpushctl: mailpushd is not running "
		    "(%s: %s)\n", path, strerror(e));
		return EX_UNAVAILABLE;
	}
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req) ||
	    write(fd, "\n", 1) != 1) {
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
		if (rc == -1 && errno == EINTR)
			continue;
		n = read(fd, buf + off, sizeof(buf) - 1 - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "mailpushctl: %s\n", strerror(errno));
			close(fd);
			return EX_IOERR;
		}
		off += (size_t)n;
		buf[off] = '\0';
		if (first) {
			char *nl = strchr(buf, '\n');

			if (nl == NULL && n > 0 && off < sizeof(buf) - 1)
				continue;
			if (strncmp(buf, "ok\n", 3) == 0) {
				off -= 3;
				memmove(buf, buf + 3, off + 1);
			} else if (strncmp(buf, "error: ", 7) == 0) {
				status = 1;
				fprintf(stderr, "mailpushctl: %s", buf + 7);
				off = 0;
			} else {
				fprintf(stderr, "mailpushctl: unexpected "
				    "answer from %s\n", path);
				close(fd);
				return EX_SOFTWARE;
			}
			first = 0;
		}
		if (!status)
			fwrite(buf, 1, off, stdout);
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
	return status;
}

static int
cmd_token(const struct mp_config *cfg, const char *name)
{
	uint8_t key[MP_KEY_LEN], token[MP_TOKEN_LEN];
	char user[MP_USER_MAX + 1], hex[2 * MP_TOKEN_LEN + 1];
	const char *why;

	if (user_normalize(&cfg->names, name, strlen(name), user, &why) != 0) {
		fprintf(stderr, "mailpushctl: %s: %s\n", name, why);
		return EX_DATAERR;
	}
	if (proto_read_hexfile(cfg->key_file, key, &why) != 0) {
		if (cfg->auth == AUTH_NONE && errno == ENOENT)
			memset(key, 0, sizeof(key));
		else {
			fprintf(stderr, "mailpushctl: key file %s: %s\n",
			    cfg->key_file, why);
			return errno == EACCES ? EX_NOPERM : EX_CONFIG;
		}
	}
	proto_token(key, user, strlen(user), token);
	proto_hex_encode(token, sizeof(token), hex);
	printf("%s\n", hex);
	sodium_memzero(key, sizeof(key));
	return 0;
}

static int
cmd_genkey(const struct mp_config *cfg, int force)
{
	uint8_t key[MP_KEY_LEN];
	char hex[2 * MP_KEY_LEN + 2], tmp[PATH_MAX];
	int fd;
	struct passwd *pw;

	if (!force && access(cfg->key_file, F_OK) == 0) {
		fprintf(stderr, "mailpushctl: %s exists; use genkey -f to "
		    "replace it (every token changes)\n", cfg->key_file);
		return EX_CANTCREAT;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", cfg->key_file);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1) {
		fprintf(stderr, "mailpushctl: cannot create %s: %s\n", tmp,
		    strerror(errno));
		return EX_CANTCREAT;
	}
	randombytes_buf(key, sizeof(key));
	proto_hex_encode(key, sizeof(key), hex);
	strcat(hex, "\n");
	if (write(fd, hex, strlen(hex)) != (ssize_t)strlen(hex) ||
	    fsync(fd) != 0) {
		fprintf(stderr, "mailpushctl: %s: %s\n", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return EX_IOERR;
	}
	/* root makes the key for the daemon's user */
	if (geteuid() == 0 && cfg->user[0] != '\0' &&
	    (pw = getpwnam(cfg->user)) != NULL &&
	    fchown(fd, pw->pw_uid, pw->pw_gid) == -1) {
		fprintf(stderr, "mailpushctl: chown %s: %s\n", tmp,
		    strerror(errno));
		close(fd);
		unlink(tmp);
		return EX_IOERR;
	}
	close(fd);
	if (rename(tmp, cfg->key_file) == -1) {
		fprintf(stderr, "mailpushctl: cannot rename %s to %s: %s\n",
		    tmp, cfg->key_file, strerror(errno));
		unlink(tmp);
		return EX_CANTCREAT;
	}
	sodium_memzero(key, sizeof(key));
	sodium_memzero(hex, sizeof(hex));
	printf("wrote a new key to %s\n", cfg->key_file);
	return 0;
}

int
main(int argc, char *argv[])
{
	const char *conffile = MP_CONFIG_FILE, *sock = NULL, *cmd;
	struct mp_config cfg;
	char req[512];
	int ch, json = 0, rc;

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
	if (config_load(conffile, &cfg) != 0)
		return EX_CONFIG;
	if (sock == NULL)
		sock = cfg.control_socket;

	if (strcmp(cmd, "token") == 0) {
		if (argc != 2)
			usage();
		rc = cmd_token(&cfg, argv[1]);
	} else if (strcmp(cmd, "genkey") == 0) {
		if (argc > 2 || (argc == 2 && strcmp(argv[1], "-f") != 0))
			usage();
		rc = cmd_genkey(&cfg, argc == 2);
	} else if ((strcmp(cmd, "status") == 0 || strcmp(cmd, "stats") == 0 ||
	    strcmp(cmd, "reload") == 0) && argc == 1) {
		snprintf(req, sizeof(req), "%s%s", json ? "-j " : "", cmd);
		rc = ctl_request(sock, req);
	} else if (strcmp(cmd, "list") == 0 && argc <= 2) {
		snprintf(req, sizeof(req), "%slist%s%s", json ? "-j " : "",
		    argc == 2 ? " " : "", argc == 2 ? argv[1] : "");
		rc = ctl_request(sock, req);
	} else if (strcmp(cmd, "drop") == 0 && argc >= 2 && argc <= 3) {
		snprintf(req, sizeof(req), "drop %s%s%s", argv[1],
		    argc == 3 ? " " : "", argc == 3 ? argv[2] : "");
		rc = ctl_request(sock, req);
	} else
		usage();
	config_free(&cfg);
	return rc;
}
