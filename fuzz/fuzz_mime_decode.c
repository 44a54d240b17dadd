/* libFuzzer target for mime/mime_decode: decodes the input as base64 and as quoted-printable
 * and checks the output bounds; feeds it to the incremental decoders in pieces (sizes taken
 * from the input) and checks the result equals the whole-buffer one; then checks round trips: the
 * input base64-encoded (with line breaks every 76 characters) and quoted-printable-encoded (every
 * octet as =XX, with soft line breaks) must decode back to the input. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mime/mime_decode.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t fuzz_encode_base64(const uint8_t *in, size_t len, unsigned char *out)
{
	size_t n = 0, col = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[n++] = (unsigned char)fuzz_b64[(v >> 18) & 63];
		out[n++] = (unsigned char)fuzz_b64[(v >> 12) & 63];
		out[n++] = i + 1 < len ? (unsigned char)fuzz_b64[(v >> 6) & 63] : '=';
		out[n++] = i + 2 < len ? (unsigned char)fuzz_b64[v & 63] : '=';
		if ((col += 4) == 76) {
			out[n++] = '\r';
			out[n++] = '\n';
			col = 0;
		}
	}
	return n;
}

static size_t fuzz_encode_qp(const uint8_t *in, size_t len, unsigned char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		out[n++] = '=';
		out[n++] = (unsigned char)hex[in[i] >> 4];
		out[n++] = (unsigned char)hex[in[i] & 15];
		if (i % 25 == 24) {
			memcpy(out + n, "= \r\n", 4);
			n += 4;
		}
	}
	return n;
}

/* Decode in pieces whose sizes come from the data itself; compare with whole. */
static void fuzz_incremental(enum mime_encoding cte, const uint8_t *data, size_t size,
                             const unsigned char *whole, size_t whole_len)
{
	unsigned char *out = xmalloc(size + MIME_DECODER_OUT_MAX(0) * 2 + 1);
	unsigned char *piece = xmalloc(MIME_DECODER_OUT_MAX(size) + 1);
	struct mime_decoder d;
	mime_decoder_init(&d, cte);
	size_t n = 0;
	for (size_t i = 0; i < size;) {
		size_t k = 1 + (size_t)(data[i] % 7);
		if (k > size - i)
			k = size - i;
		size_t got = mime_decoder_feed(&d, data + i, k, piece);
		ASSERT(got <= MIME_DECODER_OUT_MAX(k));
		memcpy(out + n, piece, got);
		n += got;
		i += k;
	}
	n += mime_decoder_finish(&d, out + n);
	ASSERT(n == whole_len);
	ASSERT(n == 0 || memcmp(out, whole, n) == 0);
	free(piece);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	{
		unsigned char *whole = xmalloc(MIME_DECODE_MAX_OUT(size) + 1);
		size_t wn = mime_decode_base64(data, size, whole);
		fuzz_incremental(MIME_ENCODING_BASE64, data, size, whole, wn);
		wn = mime_decode_qp(data, size, whole);
		fuzz_incremental(MIME_ENCODING_QUOTED_PRINTABLE, data, size, whole, wn);
		free(whole);
	}
	unsigned char *out = xmalloc(MIME_DECODE_MAX_OUT(size) + 1);
	ASSERT(mime_decode_base64(data, size, out) <= size / 4 * 3 + 2);
	ASSERT(mime_decode_qp(data, size, out) <= size);
	free(out);

	size_t enc_cap = size / 3 * 4 + 4 + (size / 57 + 1) * 2 + size * 3 + (size / 25 + 1) * 4;
	unsigned char *enc = xmalloc(enc_cap + 1);
	unsigned char *dec = xmalloc(enc_cap + 4);
	size_t n = fuzz_encode_base64(data, size, enc);
	ASSERT(mime_decode_base64(enc, n, dec) == size);
	ASSERT(size == 0 || memcmp(dec, data, size) == 0);
	n = fuzz_encode_qp(data, size, enc);
	ASSERT(mime_decode_qp(enc, n, dec) == size);
	ASSERT(size == 0 || memcmp(dec, data, size) == 0);

	struct arena *a = arena_new(4096);
	const unsigned char *res;
	size_t res_len;
	ASSERT(mime_decode_body(a, MIME_ENCODING_QUOTED_PRINTABLE, data, size, &res, &res_len) ==
	       0);
	ASSERT(res_len <= size);
	ASSERT(mime_decode_body(a, MIME_ENCODING_OTHER, data, size, &res, &res_len) == -1);
	arena_free(&a);
	free(enc);
	free(dec);
	return 0;
}
