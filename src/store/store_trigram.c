/* The estimate of store_trigram.h. Every trigram (three UTF-8 characters, as FTS5's
 * trigram tokenizer with case_sensitive 1 cuts them) is put once into a table of our own
 * (open addressing, a multiplicative hash that spreads all key octets), which counts the
 * distinct trigrams and their occurrences. Then each distinct trigram is given the slot
 * FTS5 (3.34 to at least 3.46, fts5_hash.c) would give it: h starts at 13, then for each
 * key octet from the last to the first, and last for the index byte '0',
 * h = (h << 3) ^ h ^ octet (32 bits), slot h mod nslot, where nslot doubles from 1024
 * while the table holds half as many entries. Work is the sum over trigram occurrences
 * of the distinct trigrams in their slot: an upper bound of what FTS5's chain walk does
 * (chains are shorter while the table fills). Should FTS5 change its hash, the estimate
 * is still linear to compute; it then only errs on the side of indexing. */
#include "store/store_trigram.h"

#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "core/banned.h"

struct trigram_slot {
	const unsigned char *key; /* NULL: empty */
	uint32_t count;           /* occurrences */
	uint8_t len;              /* 3 to 12 octets */
};

struct trigram_set {
	struct trigram_slot *v;
	size_t cap, used; /* cap a power of 2, used < cap / 2 */
};

static uint64_t trigram_hash(const unsigned char *k, size_t n)
{
	uint64_t h = 0x9E3779B97F4A7C15u ^ n;
	for (size_t i = 0; i < n; i++)
		h = (h ^ k[i]) * 0x100000001B3u;
	return h ^ (h >> 29);
}

/* FTS5's slot hash of a term of the main index (its "prefix" byte '0'), before mod. */
static uint32_t trigram_fts5_hash(const unsigned char *k, size_t n)
{
	uint32_t h = 13;
	for (size_t i = n; i > 0; i--)
		h = (h << 3) ^ h ^ k[i - 1];
	return (h << 3) ^ h ^ (uint32_t)'0';
}

static void trigram_set_grow(struct trigram_set *s)
{
	size_t cap = s->cap == 0 ? 4096 : 2 * s->cap;
	struct trigram_slot *v = xcalloc(cap, sizeof(*v));
	for (size_t i = 0; i < s->cap; i++) {
		if (s->v[i].key == NULL)
			continue;
		size_t j = (size_t)trigram_hash(s->v[i].key, s->v[i].len) & (cap - 1);
		while (v[j].key != NULL)
			j = (j + 1) & (cap - 1);
		v[j] = s->v[i];
	}
	free(s->v);
	s->v = v;
	s->cap = cap;
}

/* Count one occurrence of k[0, n); false when a new key would pass the cap. */
static bool trigram_set_add(struct trigram_set *s, const unsigned char *k, size_t n)
{
	if (2 * (s->used + 1) > s->cap)
		trigram_set_grow(s);
	size_t j = (size_t)trigram_hash(k, n) & (s->cap - 1);
	for (; s->v[j].key != NULL; j = (j + 1) & (s->cap - 1)) {
		if (s->v[j].len == n && memcmp(s->v[j].key, k, n) == 0) {
			s->v[j].count++;
			return true;
		}
	}
	if (s->used >= STORE_TRIGRAM_MAX_KEYS)
		return false;
	s->v[j] = (struct trigram_slot){.key = k, .count = 1, .len = (uint8_t)n};
	s->used++;
	return true;
}

/* Octets of the UTF-8 character at s (n > 0 left); broken input counts by its lead octet,
 * never past the end. */
static size_t trigram_char_len(const unsigned char *s, size_t n)
{
	size_t l = s[0] < 0xC0 ? 1 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : 4;
	return l < n ? l : n;
}

/* Add the trigrams of one text; false when the cap was passed. */
static bool trigram_text(struct trigram_set *s, const unsigned char *t, size_t n, uint64_t *tokens)
{
	size_t p0 = 0, p1 = 0, have = 0; /* where the two characters before i begin */
	for (size_t i = 0; i < n;) {
		size_t l = trigram_char_len(t + i, n - i);
		if (have >= 2) {
			(*tokens)++;
			if (!trigram_set_add(s, t + p0, i + l - p0))
				return false;
		}
		p0 = p1;
		p1 = i;
		have++;
		i += l;
	}
	return true;
}

void store_trigram_cost(const char *const *texts, const size_t *lens, size_t count,
                        struct store_trigram_cost *cost_r)
{
	struct trigram_set s = {0};
	*cost_r = (struct store_trigram_cost){0};
	bool ok = true;
	for (size_t i = 0; i < count && ok; i++)
		ok = trigram_text(&s, (const unsigned char *)texts[i], lens[i], &cost_r->tokens);
	cost_r->keys = s.used;
	if (!ok) {
		cost_r->work = UINT64_MAX;
		free(s.v);
		return;
	}
	size_t nslot = 1024;
	while (2 * s.used >= nslot)
		nslot *= 2;
	uint32_t *chain = xcalloc(nslot, sizeof(*chain));
	for (size_t i = 0; i < s.cap; i++) {
		if (s.v[i].key != NULL)
			chain[trigram_fts5_hash(s.v[i].key, s.v[i].len) % nslot]++;
	}
	for (size_t i = 0; i < s.cap; i++) {
		if (s.v[i].key != NULL)
			cost_r->work += (uint64_t)s.v[i].count *
			                chain[trigram_fts5_hash(s.v[i].key, s.v[i].len) % nslot];
	}
	free(chain);
	free(s.v);
}

bool store_trigram_indexable(const char *hdr, const char *body)
{
	const char *texts[2] = {hdr, body};
	size_t lens[2] = {strlen(hdr), strlen(body)};
	struct store_trigram_cost c;
	store_trigram_cost(texts, lens, 2, &c);
	return c.work != UINT64_MAX &&
	       c.work <= STORE_TRIGRAM_WORK_PER_TOKEN * c.tokens + STORE_TRIGRAM_WORK_SLACK;
}
