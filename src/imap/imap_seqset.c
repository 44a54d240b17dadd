/* IMAP sequence sets (see imap_seqset.h): parsing with overflow checks, normalisation of the
 * numeric ranges (sort + merge), and membership/iteration once '*' is known. The part of a
 * set that involves '*' is kept apart as one range whose ends depend on '*'. */
#include "imap/imap_seqset.h"

#include <stdlib.h>
#include <string.h>

#include "core/banned.h"

static const char ERR_EMPTY[] = "Empty sequence set";
static const char ERR_SYNTAX[] = "Invalid sequence set";
static const char ERR_ZERO[] = "Invalid sequence number 0";
static const char ERR_RANGE[] = "Sequence number too large";
static const char ERR_TOO_MANY[] = "Too many elements in sequence set";
static const char ERR_SAVED[] = "$ cannot be combined with other sequence numbers";

/* One seq-number at s[*pos]: nz-number or '*' (returned as 0 with *star_r true). */
static int imap_seqset_parse_number(const char *s, size_t *pos, uint32_t *n_r, bool *star_r,
                                    const char **error_r)
{
	size_t i = *pos;
	*star_r = false;
	*n_r = 0;
	if (s[i] == '*') {
		*star_r = true;
		*pos = i + 1;
		return 0;
	}
	if (s[i] < '0' || s[i] > '9') {
		*error_r = ERR_SYNTAX;
		return -1;
	}
	if (s[i] == '0') {
		/* nz-number = digit-nz *DIGIT: "0" and "007" are both invalid. */
		*error_r = (s[i + 1] >= '0' && s[i + 1] <= '9') ? ERR_SYNTAX : ERR_ZERO;
		return -1;
	}
	uint32_t n = 0;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		uint32_t digit = (uint32_t)(s[i] - '0');
		if (n > (UINT32_MAX - digit) / 10) {
			*error_r = ERR_RANGE;
			return -1;
		}
		n = n * 10 + digit;
	}
	*n_r = n;
	*pos = i;
	return 0;
}

static int imap_seqset_range_cmp(const void *a, const void *b)
{
	const struct imap_seqset_range *x = a, *y = b;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	return 0;
}

/* Sort and merge overlapping or adjacent ranges in place; returns the new count. */
static size_t imap_seqset_normalise(struct imap_seqset_range *r, size_t count)
{
	if (count == 0)
		return 0;
	qsort(r, count, sizeof(*r), imap_seqset_range_cmp);
	size_t out = 0;
	for (size_t i = 1; i < count; i++) {
		if (r[out].hi == UINT32_MAX || r[i].lo <= r[out].hi + 1) {
			if (r[i].hi > r[out].hi)
				r[out].hi = r[i].hi;
		} else {
			r[++out] = r[i];
		}
	}
	return out + 1;
}

/* Record one element "a", "a:b" in set (ranges has room). */
static void imap_seqset_add(struct imap_seqset *set, struct imap_seqset_range *ranges, uint32_t a,
                            bool a_star, uint32_t b, bool b_star)
{
	if (a_star && b_star) {
		set->star = true;
	} else if (a_star || b_star) {
		uint32_t n = a_star ? b : a;
		if (!set->star_paired || n < set->star_lo)
			set->star_lo = n;
		if (!set->star_paired || n > set->star_hi)
			set->star_hi = n;
		set->star = true;
		set->star_paired = true;
	} else {
		ranges[set->count].lo = a < b ? a : b;
		ranges[set->count].hi = a < b ? b : a;
		set->count++;
	}
}

int imap_seqset_parse(struct arena *arena, const char *s, struct imap_seqset **set_r,
                      const char **error_r)
{
	struct imap_seqset *set = arena_alloc(arena, sizeof(*set));
	memset(set, 0, sizeof(*set));
	*set_r = set;
	*error_r = NULL;
	size_t len = strlen(s);
	if (len == 0) {
		*error_r = ERR_EMPTY;
		return -1;
	}
	if (s[0] == '$') {
		if (len != 1) {
			*error_r = ERR_SAVED;
			return -1;
		}
		set->saved = true;
		return 0;
	}
	/* Each element takes at least one character and a separator. */
	size_t room = len / 2 + 1;
	struct imap_seqset_range *ranges = arena_alloc(arena, room * sizeof(*ranges));
	size_t pos = 0, elements = 0;
	for (;;) {
		uint32_t a, b;
		bool a_star, b_star;
		if (++elements > IMAP_SEQSET_ELEMENTS_MAX) {
			*error_r = ERR_TOO_MANY;
			return -1;
		}
		if (imap_seqset_parse_number(s, &pos, &a, &a_star, error_r) < 0)
			return -1;
		b = a;
		b_star = a_star;
		if (s[pos] == ':') {
			pos++;
			if (imap_seqset_parse_number(s, &pos, &b, &b_star, error_r) < 0)
				return -1;
		}
		imap_seqset_add(set, ranges, a, a_star, b, b_star);
		if (s[pos] == '\0')
			break;
		if (s[pos] != ',') {
			*error_r = s[pos] == '$' ? ERR_SAVED : ERR_SYNTAX;
			return -1;
		}
		pos++;
		if (s[pos] == '$') {
			*error_r = ERR_SAVED;
			return -1;
		}
	}
	set->count = imap_seqset_normalise(ranges, set->count);
	set->ranges = set->count > 0 ? ranges : NULL;
	return 0;
}

bool imap_seqset_is_saved(const struct imap_seqset *set)
{
	return set->saved;
}

/* The star part resolved for star: [*lo_r, *hi_r], empty when *lo_r > *hi_r. */
static void imap_seqset_star_range(const struct imap_seqset *set, uint32_t star, uint32_t *lo_r,
                                   uint32_t *hi_r)
{
	*lo_r = 1;
	*hi_r = 0;
	if (!set->star)
		return;
	uint32_t lo = star, hi = star;
	if (set->star_paired) {
		if (set->star_lo < lo)
			lo = set->star_lo;
		if (set->star_hi > hi)
			hi = set->star_hi;
	}
	if (lo == 0)
		lo = 1; /* star 0: '*' itself is no message */
	*lo_r = lo;
	*hi_r = hi;
}

bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t star)
{
	if (set->saved || n == 0)
		return false;
	uint32_t slo, shi;
	imap_seqset_star_range(set, star, &slo, &shi);
	if (n >= slo && n <= shi)
		return true;
	size_t lo = 0, hi = set->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (n < set->ranges[mid].lo)
			hi = mid;
		else if (n > set->ranges[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

void imap_seqset_iterate(struct imap_seqset_iter *iter, const struct imap_seqset *set,
                         uint32_t star, uint32_t max)
{
	memset(iter, 0, sizeof(*iter));
	iter->set = set;
	iter->max = max;
	iter->cursor = 1;
	imap_seqset_star_range(set, star, &iter->star_lo, &iter->star_hi);
	iter->star_done = iter->star_lo > iter->star_hi;
	if (set->saved) {
		iter->idx = set->count;
		iter->star_done = true;
	}
}

/* Extend [*lo, *hi] with the star range and following ranges that touch it. */
static void imap_seqset_iter_extend(struct imap_seqset_iter *iter, uint64_t lo, uint64_t *hi)
{
	const struct imap_seqset *set = iter->set;
	for (;;) {
		if (!iter->star_done && iter->star_lo <= *hi + 1 && iter->star_hi >= lo) {
			if (iter->star_hi > *hi)
				*hi = iter->star_hi;
			iter->star_done = true;
			continue;
		}
		if (iter->idx < set->count && set->ranges[iter->idx].lo <= *hi + 1) {
			if (set->ranges[iter->idx].hi > *hi)
				*hi = set->ranges[iter->idx].hi;
			iter->idx++;
			continue;
		}
		return;
	}
}

bool imap_seqset_next_range(struct imap_seqset_iter *iter, uint32_t *lo_r, uint32_t *hi_r)
{
	const struct imap_seqset *set = iter->set;
	/* Drop what lies entirely before the cursor. */
	while (iter->idx < set->count && set->ranges[iter->idx].hi < iter->cursor)
		iter->idx++;
	if (!iter->star_done && iter->star_hi < iter->cursor)
		iter->star_done = true;
	uint64_t lo, hi;
	bool have_range = iter->idx < set->count;
	if (have_range && (iter->star_done || set->ranges[iter->idx].lo <= iter->star_lo)) {
		lo = set->ranges[iter->idx].lo;
		hi = set->ranges[iter->idx].hi;
		iter->idx++;
	} else if (!iter->star_done) {
		lo = iter->star_lo;
		hi = iter->star_hi;
		iter->star_done = true;
	} else {
		return false;
	}
	if (lo < iter->cursor)
		lo = iter->cursor;
	imap_seqset_iter_extend(iter, lo, &hi);
	if (lo > iter->max) {
		iter->idx = set->count;
		iter->star_done = true;
		return false;
	}
	if (hi > iter->max)
		hi = iter->max;
	iter->cursor = hi + 1;
	*lo_r = (uint32_t)lo;
	*hi_r = (uint32_t)hi;
	return true;
}

bool imap_seqset_next(struct imap_seqset_iter *iter, uint32_t *n_r)
{
	if (!iter->in_range || iter->range_lo > iter->range_hi) {
		if (!imap_seqset_next_range(iter, &iter->range_lo, &iter->range_hi)) {
			iter->in_range = false;
			return false;
		}
		iter->in_range = true;
	}
	*n_r = iter->range_lo;
	if (iter->range_lo == iter->range_hi)
		iter->in_range = false;
	else
		iter->range_lo++;
	return true;
}

void imap_seqset_resolve(struct arena *arena, const struct imap_seqset *set, uint32_t star,
                         uint32_t max, struct imap_seqset_range **ranges_r, size_t *count_r)
{
	struct imap_seqset_iter iter;
	uint32_t lo, hi;
	size_t count = 0;
	imap_seqset_iterate(&iter, set, star, max);
	while (imap_seqset_next_range(&iter, &lo, &hi))
		count++;
	*count_r = count;
	*ranges_r = NULL;
	if (count == 0)
		return;
	struct imap_seqset_range *r = arena_alloc(arena, count * sizeof(*r));
	size_t i = 0;
	imap_seqset_iterate(&iter, set, star, max);
	while (imap_seqset_next_range(&iter, &r[i].lo, &r[i].hi))
		i++;
	*ranges_r = r;
}
