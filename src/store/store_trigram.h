/* What indexing a message's search texts costs SQLite's FTS5 trigram index (the
 * search_fts table), estimated before they are stored. FTS5 gathers the terms of the rows
 * of a transaction in an in-memory hash table whose slot is chosen by a weak hash
 * (linear over GF(2), see store_trigram.c): every ASCII trigram lands in one of about
 * 6000 slots however large the table grows, so a text made of many distinct trigrams
 * (random printable octets) makes every trigram walk a chain as long as the number of
 * distinct trigrams seen so far: the insertion is quadratic in the text's length (1 MB
 * of random ASCII: 27 s of one core, seconds of that under ASan for 300 KB). A text whose
 * estimated work is too large is not indexed (its searches read the file, as for a text
 * over search_index_max_text); natural text of any script stays far below the bound. */
#ifndef POSTHORN_STORE_STORE_TRIGRAM_H
#define POSTHORN_STORE_STORE_TRIGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* At most this many key comparisons per trigram on average (and STORE_TRIGRAM_WORK_SLACK
 * in all), and at most STORE_TRIGRAM_MAX_KEYS distinct trigrams in one message. */
#define STORE_TRIGRAM_WORK_PER_TOKEN 16
#define STORE_TRIGRAM_WORK_SLACK 65536
#define STORE_TRIGRAM_MAX_KEYS (1u << 20)

struct store_trigram_cost {
	uint64_t tokens; /* trigrams of all the texts (FTS5 trigram tokenizer, case-sensitive) */
	uint64_t keys;   /* distinct ones (stops counting above STORE_TRIGRAM_MAX_KEYS) */
	uint64_t work;   /* estimated chain steps of FTS5's hash: for each trigram, the distinct
	                  * trigrams sharing its slot; UINT64_MAX when keys went over the cap */
};

/* Estimate the cost of indexing count texts (texts[i] of lens[i] octets, UTF-8) as the
 * columns of one FTS5 row. Linear time in the texts' length; memory 32 octets per
 * distinct trigram at most (FTS5 itself takes 128 or more for each). */
void store_trigram_cost(const char *const *texts, const size_t *lens, size_t count,
                        struct store_trigram_cost *cost_r);

/* May the texts be given to the index (the cost within the bounds above)? */
bool store_trigram_indexable(const char *hdr, const char *body);

#endif
