/* Shared by the fuzz targets of incremental parsers: cut an input into pieces at positions
 * derived from the input's own hash (so a crash reproduces from the input file alone), to
 * feed it piecewise and compare with feeding it whole. Sizes are mostly small (1..16
 * octets, splitting CRLF, literals and base64 quanta), sometimes up to 256, now and then a
 * zero-length piece. FUZZ_SAME() aborts with a message when whole and pieces differ. */
#ifndef POSTHORN_FUZZ_FUZZ_CHUNKS_H
#define POSTHORN_FUZZ_FUZZ_CHUNKS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct fuzz_chunks {
	const uint8_t *data;
	size_t size, pos;
	uint64_t state;
};

/* FNV-1a over the input. */
static inline uint64_t fuzz_chunks_hash(const uint8_t *data, size_t size)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 0x100000001b3ull;
	return h;
}

static inline void fuzz_chunks_init(struct fuzz_chunks *c, const uint8_t *data, size_t size)
{
	c->data = data;
	c->size = size;
	c->pos = 0;
	c->state = fuzz_chunks_hash(data, size) | 1;
}

/* The next piece: its length (0 only for a deliberate empty piece, or at the end: check
 * fuzz_chunks_done()), *piece_r its start. */
static inline size_t fuzz_chunks_next(struct fuzz_chunks *c, const uint8_t **piece_r)
{
	c->state ^= c->state << 13; /* xorshift64 */
	c->state ^= c->state >> 7;
	c->state ^= c->state << 17;
	unsigned r = (unsigned)(c->state >> 32);
	size_t n;
	if (r % 16 == 0)
		n = 0;
	else if (r % 16 < 4)
		n = 1 + (r >> 8) % 256;
	else
		n = 1 + (r >> 8) % 16;
	if (n > c->size - c->pos)
		n = c->size - c->pos;
	*piece_r = c->data + c->pos;
	c->pos += n;
	return n;
}

static inline int fuzz_chunks_done(const struct fuzz_chunks *c)
{
	return c->pos == c->size;
}

#define FUZZ_SAME(cond)                                                                            \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz: whole and chunked input differ: %s (%s:%d)\n",      \
			        #cond, __FILE__, __LINE__);                                        \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#endif
