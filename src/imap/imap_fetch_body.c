/* Streaming FETCH literals from message files in chunks (see imap_fetch_body.h): the one
 * place where message octets go from the store's file to the connection, read with pread()
 * a chunk at a time and written only while the connection is under its high-water mark. */
#include "imap/imap_fetch_body.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "core/xmalloc.h"
#include "core/banned.h"

void imap_fetch_chunk_init(struct imap_fetch_chunk *c)
{
	c->raw = c->decoded = NULL; /* allocated at the first read: FETCH FLAGS needs none */
}

static void imap_fetch_chunk_ready(struct imap_fetch_chunk *c)
{
	if (c->raw != NULL)
		return;
	c->raw = xmalloc(IMAP_FETCH_BODY_CHUNK);
	c->decoded = xmalloc(MIME_DECODER_OUT_MAX(IMAP_FETCH_BODY_CHUNK));
}

void imap_fetch_chunk_deinit(struct imap_fetch_chunk *c)
{
	free(c->raw);
	free(c->decoded);
	c->raw = c->decoded = NULL;
}

static bool imap_fetch_body_decodes(enum mime_encoding cte)
{
	return cte == MIME_ENCODING_BASE64 || cte == MIME_ENCODING_QUOTED_PRINTABLE;
}

/* Read up to one chunk at pos (< end). Octets read, or -1 (error or the file is short). */
static ssize_t imap_fetch_body_read(int fd, uint64_t pos, uint64_t end, unsigned char *dst)
{
	size_t want =
	    end - pos < IMAP_FETCH_BODY_CHUNK ? (size_t)(end - pos) : IMAP_FETCH_BODY_CHUNK;
	for (;;) {
		ssize_t n = pread(fd, dst, want, (off_t)pos);
		if (n < 0 && errno == EINTR)
			continue;
		return n <= 0 ? -1 : n;
	}
}

/* Does out[0..n), the output octets at [at, at+n), hold a NUL inside the window? */
static bool imap_fetch_body_nul_in(const unsigned char *out, size_t n, uint64_t at,
                                   uint64_t win_off, uint64_t win_len)
{
	uint64_t lo = at > win_off ? at : win_off;
	uint64_t win_end = win_len > UINT64_MAX - win_off ? UINT64_MAX : win_off + win_len;
	uint64_t hi = at + n < win_end ? at + n : win_end;
	return lo < hi && memchr(out + (lo - at), 0, (size_t)(hi - lo)) != NULL;
}

int imap_fetch_body_measure(int fd, uint64_t off, uint64_t len, enum mime_encoding cte,
                            uint64_t win_off, uint64_t win_len, struct imap_fetch_chunk *c,
                            uint64_t *size_r, bool *nul_r, uint64_t *read_r)
{
	imap_fetch_chunk_ready(c);
	bool decode = imap_fetch_body_decodes(cte);
	struct mime_decoder dec;
	mime_decoder_init(&dec, cte);
	uint64_t total = 0;
	bool nul = false;
	for (uint64_t pos = off, end = off + len; pos < end;) {
		ssize_t r = imap_fetch_body_read(fd, pos, end, c->raw);
		if (r < 0)
			return -1;
		pos += (uint64_t)r;
		*read_r += (uint64_t)r;
		const unsigned char *out = c->raw;
		size_t n = (size_t)r;
		if (decode) {
			n = mime_decoder_feed(&dec, c->raw, (size_t)r, c->decoded);
			out = c->decoded;
		}
		nul = nul || imap_fetch_body_nul_in(out, n, total, win_off, win_len);
		total += n;
	}
	if (decode) {
		size_t n = mime_decoder_finish(&dec, c->decoded);
		nul = nul || imap_fetch_body_nul_in(c->decoded, n, total, win_off, win_len);
		total += n;
	}
	*size_r = total;
	*nul_r = nul;
	return 0;
}

void imap_fetch_body_init(struct imap_fetch_body *b, int fd, uint64_t off, uint64_t len,
                          bool decode, enum mime_encoding cte, bool nul_to_8bit, uint64_t skip,
                          uint64_t send)
{
	memset(b, 0, sizeof(*b));
	b->fd = fd;
	b->pos = off;
	b->end = off + len;
	b->decode = decode && imap_fetch_body_decodes(cte);
	b->nul_to_8bit = nul_to_8bit;
	mime_decoder_init(&b->dec, cte);
	if (b->decode) {
		b->skip = skip;
	} else {
		b->pos = skip < len ? off + skip : b->end; /* as stored: seek, don't read */
	}
	b->left = send;
}

void imap_fetch_body_init_mem(struct imap_fetch_body *b, const unsigned char *mem, uint64_t send)
{
	memset(b, 0, sizeof(*b));
	b->mem = mem;
	b->left = send;
}

/* The next piece of output: 1 with *out_r and *n_r (maybe 0 octets), -1 nothing more exists. */
static int imap_fetch_body_next(struct imap_fetch_body *b, struct imap_fetch_chunk *c,
                                unsigned char **out_r, size_t *n_r, uint64_t *read_r)
{
	imap_fetch_chunk_ready(c);
	if (b->pos < b->end) {
		ssize_t r = imap_fetch_body_read(b->fd, b->pos, b->end, c->raw);
		if (r < 0)
			return -1;
		b->pos += (uint64_t)r;
		*read_r += (uint64_t)r;
		if (!b->decode) {
			*out_r = c->raw;
			*n_r = (size_t)r;
			return 1;
		}
		*n_r = mime_decoder_feed(&b->dec, c->raw, (size_t)r, c->decoded);
		*out_r = c->decoded;
		return 1;
	}
	if (!b->decode || b->finished)
		return -1;
	b->finished = true;
	*n_r = mime_decoder_finish(&b->dec, c->decoded);
	*out_r = c->decoded;
	return 1;
}

int imap_fetch_body_pump(struct imap_fetch_body *b, struct conn *conn, struct imap_fetch_chunk *c,
                         uint64_t *read_r)
{
	while (b->left > 0) {
		if (conn_output_full(conn))
			return 0;
		if (b->mem != NULL) {
			size_t n = b->left < IMAP_FETCH_BODY_CHUNK ? (size_t)b->left
			                                           : IMAP_FETCH_BODY_CHUNK;
			conn_write(conn, b->mem, n);
			b->mem += n;
			b->left -= n;
			continue;
		}
		unsigned char *out;
		size_t n;
		if (imap_fetch_body_next(b, c, &out, &n, read_r) < 0)
			return -1;
		size_t k = b->skip < n ? (size_t)b->skip : n;
		out += k;
		n -= k;
		b->skip -= k;
		if (n > b->left)
			n = (size_t)b->left;
		if (b->nul_to_8bit) {
			for (unsigned char *p = memchr(out, 0, n); p != NULL;
			     p = memchr(p, 0, n - (size_t)(p - out)))
				*p = 0x80;
		}
		if (n > 0)
			conn_write(conn, out, n);
		b->left -= n;
	}
	return 1;
}
