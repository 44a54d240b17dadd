/* libFuzzer target for imap/imap_seqset against a reference: the input (up to 256 octets,
 * NUL-terminated) is a sequence set. Where the parser accepts it, a naive reading of the
 * same text (split at ',', each element n, n:m or with '*') must agree on membership of
 * every number 1..64 with '*' = 1..64, and iteration must give exactly those members,
 * ascending, each once, never above max. Both readings must accept the same sets (the
 * naive one takes at most 64 elements). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/log.h"
#include "imap/imap_seqset.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_EL_MAX 64

struct fuzz_el {
	uint64_t lo, hi; /* 0 = '*' */
};

/* One number or '*' at *p: 1 ok, 0 bad. */
static int fuzz_num(const char **p, uint64_t *v)
{
	if (**p == '*') {
		(*p)++;
		*v = 0;
		return 1;
	}
	if (**p < '1' || **p > '9')
		return 0;
	*v = 0;
	while (**p >= '0' && **p <= '9') {
		*v = *v * 10 + (uint64_t)(**p - '0');
		if (*v > UINT32_MAX)
			return 0;
		(*p)++;
	}
	return 1;
}

/* The naive reading: the count of elements, -1 when malformed or too many for us. */
static int fuzz_naive(const char *s, struct fuzz_el *el)
{
	int n = 0;
	const char *p = s;
	for (;;) {
		if (n == FUZZ_EL_MAX)
			return -1;
		if (!fuzz_num(&p, &el[n].lo))
			return -1;
		el[n].hi = el[n].lo;
		if (*p == ':') {
			p++;
			if (!fuzz_num(&p, &el[n].hi))
				return -1;
		}
		n++;
		if (*p == '\0')
			return n;
		if (*p++ != ',')
			return -1;
	}
}

static bool fuzz_naive_contains(const struct fuzz_el *el, int n, uint32_t x, uint32_t star)
{
	for (int i = 0; i < n; i++) {
		uint64_t a = el[i].lo == 0 ? star : el[i].lo;
		uint64_t b = el[i].hi == 0 ? star : el[i].hi;
		if ((a <= x && x <= b) || (b <= x && x <= a))
			return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 256)
		return 0;
	char s[257];
	memcpy(s, data, size);
	s[size] = '\0';
	struct arena *arena = arena_new(4096);
	struct imap_seqset *set;
	const char *error = NULL;
	struct fuzz_el el[FUZZ_EL_MAX];
	int n = fuzz_naive(s, el); /* s ends at the first NUL, as the parser reads it */
	if (imap_seqset_parse(arena, s, &set, &error) < 0) {
		ASSERT(error != NULL);
		ASSERT(n < 0);
		arena_free(&arena);
		return 0;
	}
	if (imap_seqset_is_saved(set)) {
		ASSERT(strcmp(s, "$") == 0);
		arena_free(&arena);
		return 0;
	}
	if (n < 0) { /* only when there are more elements than the naive reading takes */
		size_t commas = 0;
		for (const char *p = s; *p != '\0'; p++)
			commas += *p == ',';
		ASSERT(commas + 1 > FUZZ_EL_MAX);
		arena_free(&arena);
		return 0;
	}
	for (uint32_t star = 1; star <= 64; star += 7) {
		for (uint32_t x = 1; x <= 64; x++)
			ASSERT(imap_seqset_contains(set, x, star) ==
			       fuzz_naive_contains(el, n, x, star));
		struct imap_seqset_iter it;
		uint32_t max = 48, got, last = 0;
		imap_seqset_iterate(&it, set, star, max);
		size_t members = 0;
		while (imap_seqset_next(&it, &got)) {
			ASSERT(got > last && got <= max && fuzz_naive_contains(el, n, got, star));
			last = got;
			members++;
		}
		size_t expect = 0;
		for (uint32_t x = 1; x <= max; x++)
			expect += fuzz_naive_contains(el, n, x, star);
		ASSERT(members == expect);
	}
	arena_free(&arena);
	return 0;
}
