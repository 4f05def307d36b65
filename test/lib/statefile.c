/*
 * statefile.c: see statefile.h.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "statefile.h"

int
sf_read(const char *path, struct sf *s)
{
	struct rec_view v;
	struct stat st;
	const char *why;
	uint8_t *buf;
	size_t off;
	int fd;

	memset(s, 0, sizeof(*s));
	if ((fd = open(path, O_RDONLY)) == -1)
		return -1;
	if (fstat(fd, &st) == -1 || (buf = malloc((size_t)st.st_size + 1))
	    == NULL || read(fd, buf, (size_t)st.st_size) != st.st_size) {
		close(fd);
		return -1;
	}
	close(fd);
	s->len = (size_t)st.st_size;
	if (record_next(buf, s->len, &v, &why) != 0 ||
	    record_parse_hdr(&v, &s->hdr) != 0) {
		free(buf);
		return -1;
	}
	off = v.size;
	while (off < s->len && record_next(buf + off, s->len - off, &v, &why)
	    == 0) {
		struct sf_rec *r;

		if (s->n == s->cap) {
			s->cap = s->cap ? 2 * s->cap : 64;
			if ((s->recs = realloc(s->recs,
			    s->cap * sizeof(*s->recs))) == NULL)
				abort();
		}
		r = &s->recs[s->n];
		if (record_parse(&v, &r->f) != 0)
			break;
		r->off = off;
		r->size = v.size;
		s->n++;
		off += v.size;
	}
	s->good = off;
	free(buf);
	return 0;
}

void
sf_free(struct sf *s)
{
	free(s->recs);
	memset(s, 0, sizeof(*s));
}

struct sf_rec *
sf_find(struct sf *s, uint8_t type, uint32_t id)
{
	size_t i;

	for (i = s->n; i-- > 0;)
		if (s->recs[i].f.type == type && s->recs[i].f.id == id)
			return &s->recs[i];
	return NULL;
}

int
sf_write(const char *path, const struct rec_hdr *h, const struct sf_rec *r,
    size_t n, int end)
{
	struct jbuf b = { NULL, 0, 0, 0 };
	size_t i, count = 0;
	FILE *fp;
	int rc;

	record_hdr(&b, h);
	for (i = 0; i < n; i++) {
		switch (r[i].f.type) {
		case REC_REG:
			record_fields(&b, &r[i].f);
			count++;
			break;
		case REC_DEL:
			record_del(&b, r[i].f.id);
			break;
		}
	}
	if (end)
		record_end(&b, count);
	if ((fp = fopen(path, "w")) == NULL) {
		jbuf_free(&b);
		return -1;
	}
	rc = fwrite(b.p, 1, b.len, fp) == b.len ? 0 : -1;
	if (fclose(fp) != 0)
		rc = -1;
	jbuf_free(&b);
	return rc;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void
sf_mk_reg(struct sf_rec *r, uint32_t id, const char *user, int v6,
    uint16_t port, uint16_t listen_port, uint32_t created, uint32_t expires)
{
	memset(r, 0, sizeof(*r));
	r->f.type = REC_REG;
	r->f.id = id;
	r->f.key_id = PROTO_KEY_ID_DEFAULT;
	/* a device of its own, from the id */
	memset(r->f.device, 0x5c, PROTO_DEVICE_LEN);
	memcpy(r->f.device, &id, sizeof(id));
	snprintf(r->f.user, sizeof(r->f.user), "%s", user);
	if (v6) {
		r->f.addr.sin6.sin6_family = AF_INET6;
		r->f.addr.sin6.sin6_addr = in6addr_loopback;
		r->f.addr.sin6.sin6_port = htons(port);
		snprintf(r->f.listener, sizeof(r->f.listener), "[::1]:%u",
		    listen_port);
	} else {
		r->f.addr.sin.sin_family = AF_INET;
		r->f.addr.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		r->f.addr.sin.sin_port = htons(port);
		snprintf(r->f.listener, sizeof(r->f.listener), "127.0.0.1:%u",
		    listen_port);
	}
	r->f.created = created;
	r->f.expires = expires;
}

void
sf_mk_hdr(struct rec_hdr *h, int kind, uint64_t gen, int clean, uint64_t t)
{
	memset(h, 0, sizeof(*h));
	h->version = REC_VERSION;
	h->kind = (uint8_t)kind;
	h->gen = gen;
	h->epoch = 0x1122334455667788ULL;
	h->clean = (uint8_t)clean;
	h->time = t;
}

size_t
sf_journals(const char *state, uint64_t *gens, size_t max)
{
	char d[512], b[512], prefix[600];
	struct dirent *de;
	size_t n = 0;
	DIR *dir;

	snprintf(d, sizeof(d), "%s", state);
	snprintf(b, sizeof(b), "%s", state);
	snprintf(prefix, sizeof(prefix), "%s.journal.", basename(b));
	if ((dir = opendir(dirname(d))) == NULL)
		return 0;
	while ((de = readdir(dir)) != NULL && n < max)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0 &&
		    strspn(de->d_name + strlen(prefix), "0123456789") ==
		    strlen(de->d_name + strlen(prefix)))
			gens[n++] = strtoull(de->d_name + strlen(prefix), NULL,
			    10);
	closedir(dir);
	qsort(gens, n, sizeof(*gens), cmp_u64);
	return n;
}
