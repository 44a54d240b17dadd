/* Bodies in chunk rows. On a database that several nodes share (PostgreSQL) every body is
 * kept in the database, since a file under one node's data directory would be missing on
 * the others. A body of up to STORE_CHUNK_SIZE octets sits in its message row
 * (messages.content); a larger one in message_chunks rows of STORE_CHUNK_SIZE octets each
 * (the last one shorter), numbered from 0, written in the transaction that inserts the
 * message row and deleted with it (ON DELETE CASCADE). The column is stored EXTERNAL
 * (out of line, uncompressed), so substr() of a chunk reads only the pages it needs.
 *
 * A reader gets a temporary file of the body's size into which only the chunks it asked
 * for were written (struct store_want): the rest is a hole that reads as zeros and takes
 * no space. A partial FETCH or a header fetch of a 20 MB message reads one chunk; memory
 * holds one chunk at a time, never a whole body. */
#include "store/store_db.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/xmalloc.h"
#include "store/blob.h"
#include "core/banned.h"

#define SQC(id) [(id)-SQ_TLSRPT_END]

const char *const store_db_chunks_sql[SQ_CHUNKS_END - SQ_TLSRPT_END] = {
    /* Chunk rows, or a body kept whole in the row (stored so before migration 3). */
    SQC(SQ_C_COUNT) = "SELECT (SELECT count(*) FROM message_chunks WHERE message_id = ?1)"
                      " + (SELECT count(*) FROM messages WHERE id = ?1 AND content IS NOT NULL)",
    SQC(SQ_C_PUT) = "INSERT INTO message_chunks (message_id, seq, data) VALUES (?1, ?2, ?3)"
                    " ON CONFLICT (message_id, seq) DO NOTHING",
    /* From octet ?3 (1-based) of chunk ?2, ?4 octets. */
    SQC(SQ_C_GET) = "SELECT substr(data, CAST(?3 AS integer), CAST(?4 AS integer))"
                    " FROM message_chunks WHERE message_id = ?1 AND seq = ?2",
};

bool store_db_chunked(const struct store *store, uint64_t size)
{
	return store->shared && size > STORE_CHUNK_SIZE;
}

/* Read exactly n octets at off of fd: 0, or -1 with *error_r. */
static int chunks_pread(int fd, unsigned char *dst, size_t n, uint64_t off, const char *path,
                        const char **error_r)
{
	for (size_t got = 0; got < n;) {
		ssize_t r = pread(fd, dst + got, n - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			*error_r = r == 0 ? store_error_fmt("spool file %s shrank", path)
			                  : store_error_fmt("read spool file %s: %s", path,
			                                    strerror(errno));
			return -1;
		}
		got += (size_t)r;
	}
	return 0;
}

int store_db_chunks_put(struct sql_conn *c, int64_t message_id, const char *path,
                        const unsigned char *mem, uint64_t size, const char **error_r)
{
	int64_t have = 0;
	if (sql_int(c, SQ_C_COUNT, &have, error_r, "i", message_id) < 0)
		return -1;
	if (have > 0)
		return 0;
	int fd = -1;
	unsigned char *buf = NULL;
	if (mem == NULL) {
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
			*error_r = store_error_fmt("open spool file %s: %s", path, strerror(errno));
			return -1;
		}
		buf = xmalloc(STORE_CHUNK_SIZE);
	}
	int ret = 0;
	for (uint64_t off = 0, seq = 0; ret == 0 && off < size; seq++) {
		size_t n = size - off < STORE_CHUNK_SIZE ? (size_t)(size - off) : STORE_CHUNK_SIZE;
		const unsigned char *p = mem != NULL ? mem + off : buf;
		if (mem == NULL && chunks_pread(fd, buf, n, off, path, error_r) < 0)
			ret = -1;
		else if (sql_exec(c, SQ_C_PUT, error_r, "iib", message_id, (int64_t)seq,
		                  (const void *)p, n) < 0)
			ret = -1;
		off += n;
	}
	free(buf);
	if (fd >= 0)
		close(fd);
	return ret;
}

/* Octets [lo, hi) of chunk seq (lo and hi relative to the body): 1 with the row in *st_r
 * and the octets at *data_r (valid until sql_row_done()), 0 the chunk is missing, or -1
 * (also a short chunk); *error_r unless 1. */
static int chunks_get(struct sql_conn *c, int64_t message_id, uint64_t seq, uint64_t lo,
                      uint64_t hi, struct sql_row **st_r, const unsigned char **data_r,
                      const char **error_r)
{
	uint64_t base = seq * STORE_CHUNK_SIZE;
	int rc = sql_step(c, SQ_C_GET, st_r, error_r, "iiii", message_id, (int64_t)seq,
	                  (int64_t)(lo - base + 1), (int64_t)(hi - lo));
	if (rc < 0)
		return -1;
	if (rc != SQL_ROW) {
		*error_r = store_error_fmt("message %" PRId64 ": chunk %" PRIu64 " is missing",
		                           message_id, seq);
		return 0;
	}
	size_t n = 0;
	*data_r = sql_col_blob(*st_r, 0, &n);
	if (n != hi - lo) {
		sql_row_done(*st_r);
		*error_r = store_error_fmt("message %" PRId64 ": chunk %" PRIu64 " is short",
		                           message_id, seq);
		return -1;
	}
	return 1;
}

static int chunks_pwrite(int fd, const unsigned char *p, size_t n, uint64_t off,
                         const char **error_r)
{
	for (size_t done = 0; done < n;) {
		ssize_t w = pwrite(fd, p + done, n - done, (off_t)(off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			*error_r = store_error_fmt("write a temporary body file: %s",
			                           w < 0 ? strerror(errno) : "no space");
			return -1;
		}
		done += (size_t)w;
	}
	return 0;
}

/* Copy octets [lo, hi) of the body into fd at the same offsets, a chunk at a time. When
 * header_end is not NULL, stop after the chunk in which the header ends ("\n\n" or
 * "\n\r\n", also across chunks) and say so. 1, 0 a chunk is missing, -1. */
static int chunks_copy(struct sql_conn *c, int64_t message_id, uint64_t lo, uint64_t hi, int fd,
                       bool *header_end, const char **error_r)
{
	unsigned char tail[4] = {0}; /* the last octets before this chunk, then its first */
	size_t tail_len = 0;
	for (uint64_t pos = lo; pos < hi;) {
		uint64_t seq = pos / STORE_CHUNK_SIZE;
		uint64_t end =
		    (seq + 1) * STORE_CHUNK_SIZE < hi ? (seq + 1) * STORE_CHUNK_SIZE : hi;
		struct sql_row *st;
		const unsigned char *p;
		int got = chunks_get(c, message_id, seq, pos, end, &st, &p, error_r);
		if (got < 1)
			return got;
		size_t n = (size_t)(end - pos);
		int ret = chunks_pwrite(fd, p, n, pos, error_r);
		if (ret == 0 && header_end != NULL) {
			for (size_t i = 0; i < 2 && i < n; i++)
				tail[tail_len + i] = p[i];
			size_t t = tail_len + (n < 2 ? n : 2);
			*header_end = memmem(tail, t, "\n\n", 2) != NULL ||
			              memmem(tail, t, "\n\r\n", 3) != NULL ||
			              memmem(p, n, "\n\n", 2) != NULL ||
			              memmem(p, n, "\n\r\n", 3) != NULL;
			tail_len = n < 2 ? n : 2;
			memcpy(tail, p + n - tail_len, tail_len);
		}
		sql_row_done(st);
		if (ret < 0)
			return -1;
		if (header_end != NULL && *header_end)
			return 1;
		pos = end;
	}
	return 1;
}

int store_db_chunks_open(struct sql_conn *c, const char *tmp_dir, int64_t message_id, uint64_t size,
                         const struct store_want *want, int *fd_r, const char **error_r)
{
	int fd = blob_tmpfile(tmp_dir, error_r);
	if (fd < 0)
		return -1;
	int ret = 1;
	if (ftruncate(fd, (off_t)size) < 0) {
		*error_r = store_error_fmt("size a temporary body file: %s", strerror(errno));
		ret = -1;
	} else if (want == NULL) {
		ret = chunks_copy(c, message_id, 0, size, fd, NULL, error_r);
	} else {
		bool header_end = false;
		uint64_t off = want->off < size ? want->off : size;
		uint64_t end = want->len < size - off ? off + want->len : size;
		if (want->header)
			ret = chunks_copy(c, message_id, 0, size, fd, &header_end, error_r);
		if (ret == 1 && off < end)
			ret = chunks_copy(c, message_id, off, end, fd, NULL, error_r);
	}
	if (ret < 1) {
		close(fd);
		return ret;
	}
	*fd_r = fd;
	return 1;
}

int store_db_chunks_each(struct sql_conn *c, int64_t message_id, uint64_t size,
                         void (*fn)(void *ctx, const unsigned char *p, size_t n), void *ctx,
                         const char **error_r)
{
	for (uint64_t pos = 0, seq = 0; pos < size; seq++) {
		uint64_t end = pos + STORE_CHUNK_SIZE < size ? pos + STORE_CHUNK_SIZE : size;
		struct sql_row *st;
		const unsigned char *p;
		if (chunks_get(c, message_id, seq, pos, end, &st, &p, error_r) < 1)
			return -1;
		fn(ctx, p, (size_t)(end - pos));
		sql_row_done(st);
		pos = end;
	}
	return 0;
}
