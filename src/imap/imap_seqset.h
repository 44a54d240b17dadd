/* IMAP sequence sets (RFC 9051 §9 sequence-set, with "$" of RFC 5182 SEARCHRES): parse
 * "1:5,7,*:10" into sorted, merged ranges plus the part that depends on '*', then answer
 * membership and iterate concrete numbers once the caller knows what '*' stands for (the
 * highest sequence number or UID in use). Pure: no mailbox knowledge. */
#ifndef POSTHORN_IMAP_IMAP_SEQSET_H
#define POSTHORN_IMAP_IMAP_SEQSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"

/* An inclusive range of numbers, 1 <= lo <= hi. */
struct imap_seqset_range {
	uint32_t lo, hi;
};

/* A parsed set. The fields are read-only for callers; use the functions below. */
struct imap_seqset {
	/* "$": the saved search result (RFC 5182). Then nothing else is set: "$" is accepted
	 * only as the whole set (as Dovecot does; no client combines it). */
	bool saved;
	/* Ranges without '*': sorted, disjoint and not adjacent (1:3,4 became 1:4). */
	const struct imap_seqset_range *ranges;
	size_t count;
	/* '*' occurs. Every element "n:*" or "*:n" is the range between n and '*' in either
	 * order (RFC 9051 §9 seq-range); all of them contain '*', so together they are the one
	 * range [min(star_lo, *), max(star_hi, *)]. Without such elements (only "*" or "*:*")
	 * star_paired is false and the star part is just '*' itself. */
	bool star;
	bool star_paired;
	uint32_t star_lo, star_hi;
};

/* At most this many comma-separated elements in one set (more: -1, "Too many elements in
 * sequence set"). Parsing is O(n log n) and membership O(log n) whatever the count; the cap
 * bounds the memory and time of one command independently of the line length. */
#define IMAP_SEQSET_ELEMENTS_MAX 20000

/* Parse s (NUL-terminated) into *set_r, allocated in arena. Numbers are nz-number: 1 to
 * 4294967295, no leading zero. Returns 0, or -1 with *error_r a static text for a BAD reply
 * (empty set, 0, overflow, leading zero, stray ',' or ':', other characters, "$" combined
 * with anything, more than IMAP_SEQSET_ELEMENTS_MAX elements). Memory is proportional to strlen(s).
 */
int imap_seqset_parse(struct arena *arena, const char *s, struct imap_seqset **set_r,
                      const char **error_r) __attribute__((warn_unused_result));

/* True if n (>= 1) is in the set when '*' stands for star. star 0 means "no message":
 * then '*' matches nothing and "n:*" is 1:n. A saved set ("$") contains nothing here: the
 * caller resolves it to its saved result. */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t star);

/* True if the set is "$" (RFC 5182). */
bool imap_seqset_is_saved(const struct imap_seqset *set);

/* Iteration over the concrete numbers of a set, ascending, each once, never above max
 * (the caller's upper bound: messages in the mailbox, or the highest UID), so a set like
 * 1:4294967295 costs only what exists. The iterator holds a pointer to set, no memory. */
struct imap_seqset_iter {
	const struct imap_seqset *set;
	uint32_t max;
	size_t idx;                  /* next entry of set->ranges */
	bool star_done;              /* star range already merged into an emitted range */
	uint32_t star_lo, star_hi;   /* resolved star range; empty when star_lo > star_hi */
	uint64_t cursor;             /* smallest number not emitted yet */
	uint32_t range_lo, range_hi; /* current range for imap_seqset_next() */
	bool in_range;
};

/* Start iterating set with '*' = star and upper bound max. A saved set yields nothing. */
void imap_seqset_iterate(struct imap_seqset_iter *iter, const struct imap_seqset *set,
                         uint32_t star, uint32_t max);
/* Next maximal range of consecutive members. Returns true with *lo_r <= *hi_r, false at
 * the end. Do not mix with imap_seqset_next() on one iterator. */
bool imap_seqset_next_range(struct imap_seqset_iter *iter, uint32_t *lo_r, uint32_t *hi_r);
/* Next member. Returns true with *n_r set, false at the end. */
bool imap_seqset_next(struct imap_seqset_iter *iter, uint32_t *n_r);

/* The set resolved with '*' = star and bounded by max, as sorted, disjoint, non-adjacent
 * ranges allocated in arena (*ranges_r NULL when *count_r is 0). */
void imap_seqset_resolve(struct arena *arena, const struct imap_seqset *set, uint32_t star,
                         uint32_t max, struct imap_seqset_range **ranges_r, size_t *count_r);

#endif
