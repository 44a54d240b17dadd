/* zlib wrapper for COMPRESS=DEFLATE (see compress.h): raw DEFLATE both ways, bounded
 * output per call, sync flushes on request. */
#include "net/compress.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

struct compress {
	z_stream in;  /* inflate: the peer's commands */
	z_stream out; /* deflate: our responses */
	bool in_broken;
};

/* zlib's counters are uLong; one call never passes more than UINT_MAX octets. */
static uInt compress_cap(size_t n)
{
	return n > UINT_MAX ? UINT_MAX : (uInt)n;
}

struct compress *compress_new(void)
{
	struct compress *z = xcalloc(1, sizeof(*z));
	/* Negative window bits: raw DEFLATE, no zlib header or checksum (RFC 4978 §3). */
	if (inflateInit2(&z->in, -15) != Z_OK)
		log_panic("inflateInit2 failed");
	if (deflateInit2(&z->out, COMPRESS_DEFLATE_LEVEL, Z_DEFLATED, -COMPRESS_DEFLATE_WINDOW_BITS,
	                 COMPRESS_DEFLATE_MEM_LEVEL, Z_DEFAULT_STRATEGY) != Z_OK)
		log_panic("deflateInit2 failed");
	return z;
}

void compress_free(struct compress **zp)
{
	struct compress *z = *zp;
	if (z == NULL)
		return;
	inflateEnd(&z->in);
	deflateEnd(&z->out);
	free(z);
	*zp = NULL;
}

int compress_inflate(struct compress *z, const unsigned char *in, size_t in_len, size_t *in_used_r,
                     unsigned char *out, size_t out_cap, size_t *out_len_r)
{
	*in_used_r = *out_len_r = 0;
	if (z->in_broken)
		return -1;
	if (in_len == 0 || out_cap == 0)
		return 0;
	z->in.next_in = (Bytef *)in;
	z->in.avail_in = compress_cap(in_len);
	z->in.next_out = out;
	z->in.avail_out = compress_cap(out_cap);
	int r = inflate(&z->in, Z_SYNC_FLUSH);
	*in_used_r = compress_cap(in_len) - z->in.avail_in;
	*out_len_r = compress_cap(out_cap) - z->in.avail_out;
	z->in.next_in = z->in.next_out = NULL;
	if (r == Z_OK || r == Z_BUF_ERROR) /* Z_BUF_ERROR: no progress was possible */
		return *in_used_r > 0 || *out_len_r > 0 ? 1 : 0;
	/* Z_STREAM_END (a final block: nothing may follow), Z_DATA_ERROR, Z_NEED_DICT,
	 * Z_MEM_ERROR: the stream cannot go on. */
	z->in_broken = true;
	return -1;
}

int compress_deflate(struct compress *z, const unsigned char *in, size_t in_len, size_t *in_used_r,
                     bool flush, unsigned char *out, size_t out_cap, size_t *out_len_r)
{
	*in_used_r = *out_len_r = 0;
	ASSERT(out_cap >= COMPRESS_OUT_MIN);
	z->out.next_in = (Bytef *)in;
	z->out.avail_in = compress_cap(in_len);
	z->out.next_out = out;
	z->out.avail_out = compress_cap(out_cap);
	int r = deflate(&z->out, flush ? Z_SYNC_FLUSH : Z_NO_FLUSH);
	*in_used_r = compress_cap(in_len) - z->out.avail_in;
	*out_len_r = compress_cap(out_cap) - z->out.avail_out;
	bool in_left = z->out.avail_in > 0 || in_len > UINT_MAX;
	bool out_full = z->out.avail_out == 0;
	z->out.next_in = z->out.next_out = NULL;
	/* Z_BUF_ERROR: no progress was possible (nothing to do): not an error. */
	if (r != Z_OK && r != Z_BUF_ERROR)
		return -1;
	/* A full out may hide more pending output (deflate's own buffer). */
	return in_left || out_full ? 1 : 0;
}

void compress_totals(const struct compress *z, unsigned long long *in_raw_r,
                     unsigned long long *in_plain_r, unsigned long long *out_plain_r,
                     unsigned long long *out_raw_r)
{
	*in_raw_r = z->in.total_in;
	*in_plain_r = z->in.total_out;
	*out_plain_r = z->out.total_in;
	*out_raw_r = z->out.total_out;
}
