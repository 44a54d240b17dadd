/* libFuzzer target for smtp/smtp_data, the DATA body decoder. The first input octet picks the
 * mode and the chunk sizes; the rest is the body. Checks: every call stays within
 * SMTP_DATA_OUT_MAX() (the output buffer is exactly that big, so ASan sees an overrun), only
 * the end of data leaves input unconsumed, an ended body ended on ".CRLF", and decoding in
 * chunks gives the same octets, count, end and bare flag as decoding in one call. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_data.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* No core/log here: the target links smtp_data.c alone. */
#define FUZZ_CHECK(expr)                                                                           \
	do {                                                                                       \
		if (!(expr))                                                                       \
			abort();                                                                   \
	} while (0)

struct fuzz_run {
	unsigned char *out; /* cap octets: SMTP_DATA_OUT_MAX(whole input) */
	size_t cap;
	size_t out_len;
	size_t consumed;
	bool end;
	bool bare;
};

/* Chunk sizes from the mode octet: bit 6 set gives a fixed size 1..64 (bits 0-5 + 1);
 * otherwise a small generator seeded with the octet gives sizes 0..31 (0 is an empty call). */
static size_t fuzz_next_chunk(uint8_t mode, uint32_t *rng)
{
	if (mode & 0x40)
		return (size_t)(mode & 0x3f) + 1;
	*rng = *rng * 1103515245u + 12345u;
	return (*rng >> 16) % 32;
}

/* One call with an output buffer of exactly SMTP_DATA_OUT_MAX(len) octets. */
static void fuzz_call(struct smtp_data *d, const unsigned char *in, size_t len, struct fuzz_run *r)
{
	size_t max = SMTP_DATA_OUT_MAX(len);
	unsigned char *chunk = malloc(max);
	FUZZ_CHECK(chunk != NULL);
	size_t out_len = 0;
	bool end = false;
	size_t used = smtp_data_decode(d, in, len, chunk, &out_len, &end);
	FUZZ_CHECK(out_len <= max);
	FUZZ_CHECK(used <= len);
	FUZZ_CHECK(end || used == len);
	FUZZ_CHECK(out_len <= r->cap - r->out_len);
	memcpy(r->out + r->out_len, chunk, out_len);
	r->out_len += out_len;
	r->consumed += used;
	r->end = end;
	r->bare = d->bare_seen;
	free(chunk);
}

static void fuzz_check_result(const struct fuzz_run *r, const unsigned char *in, bool normalize)
{
	if (r->end) {
		/* ended on ".CRLF" at the start or after a CRLF, and the output's last line
		 * (if any) ends with CRLF */
		FUZZ_CHECK(r->consumed >= 3);
		FUZZ_CHECK(memcmp(in + r->consumed - 3, ".\r\n", 3) == 0);
		FUZZ_CHECK(r->consumed == 3 || memcmp(in + r->consumed - 5, "\r\n", 2) == 0);
		FUZZ_CHECK(r->out_len == 0 ||
		           (r->out_len >= 2 && memcmp(r->out + r->out_len - 2, "\r\n", 2) == 0));
	}
	if (normalize || !r->bare) {
		/* no bare CR or LF in the output */
		for (size_t i = 0; i < r->out_len; i++) {
			if (r->out[i] == '\r')
				FUZZ_CHECK(i + 1 < r->out_len && r->out[i + 1] == '\n');
			if (r->out[i] == '\n')
				FUZZ_CHECK(i > 0 && r->out[i - 1] == '\r');
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	uint8_t mode = data[0];
	bool normalize = (mode & 0x80) != 0;
	const unsigned char *in = data + 1;
	size_t len = size - 1;
	/* the whole output is at most 2 octets per input octet plus the carried-over state */
	size_t total = SMTP_DATA_OUT_MAX(len);

	struct fuzz_run chunked = {.out = malloc(total), .cap = total};
	FUZZ_CHECK(chunked.out != NULL);
	struct smtp_data d;
	smtp_data_init(&d, normalize);
	uint32_t rng = mode;
	size_t pos = 0;
	do {
		size_t n = fuzz_next_chunk(mode, &rng);
		if (n > len - pos)
			n = len - pos;
		fuzz_call(&d, in + pos, n, &chunked);
		pos += n;
	} while (!chunked.end && pos < len);

	struct fuzz_run whole = {.out = malloc(total), .cap = total};
	FUZZ_CHECK(whole.out != NULL);
	smtp_data_init(&d, normalize);
	fuzz_call(&d, in, len, &whole);

	FUZZ_CHECK(whole.out_len == chunked.out_len);
	FUZZ_CHECK(memcmp(whole.out, chunked.out, whole.out_len) == 0);
	FUZZ_CHECK(whole.consumed == chunked.consumed);
	FUZZ_CHECK(whole.end == chunked.end);
	FUZZ_CHECK(whole.bare == chunked.bare);
	fuzz_check_result(&whole, in, normalize);
	free(chunked.out);
	free(whole.out);
	return 0;
}
