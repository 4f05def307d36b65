/*
 * statefile.h: mailpushd's snapshot and journal files read and written
 * by the tests, through the daemon's own record.c.
 */
#ifndef MP_STATEFILE_H
#define MP_STATEFILE_H

#include <stddef.h>
#include <stdint.h>

#include "journal.h"

struct sf_rec {
	struct rec_fields f;		/* f.type: REC_* */
	size_t		  off, size;	/* in the file */
};

struct sf {
	struct rec_hdr	 hdr;
	struct sf_rec	*recs;		/* after the header */
	size_t		 n, cap, len;	/* records, room for; file size */
	size_t		 good;		/* bytes up to the first bad record */
};

/* Read a snapshot or journal up to its first bad record; -1 if it cannot
 * be read or has no valid header. */
int	sf_read(const char *path, struct sf *);
void	sf_free(struct sf *);
/* The last record of this type for id, or NULL. */
struct sf_rec *sf_find(struct sf *, uint8_t type, uint32_t id);
/* Write a file: the header, the records, an END record if end. */
int	sf_write(const char *path, const struct rec_hdr *,
	    const struct sf_rec *, size_t n, int end);
/* A REG record from 127.0.0.1 or ::1 port, for the daemon listening on
 * listen_port, with a device id made from its id; a header of this kind
 * (epoch 0x1122334455667788). */
void	sf_mk_reg(struct sf_rec *, uint32_t id, const char *user, int v6,
	    uint16_t port, uint16_t listen_port, uint32_t created,
	    uint32_t expires);
void	sf_mk_hdr(struct rec_hdr *, int kind, uint64_t gen, int clean,
	    uint64_t time);
/* Journal generations FILE.journal.N that exist (sorted), at most max. */
size_t	sf_journals(const char *state, uint64_t *gens, size_t max);

#endif
