/* Unit tests for imap/imap_seqset: parsing (ranges in either order, '*', "*:*", "$"),
 * normalisation (sorting, merging overlaps and neighbours), rejection of 0, leading zeros,
 * overflow and stray separators, membership for several values of '*', iteration and
 * resolution bounded by an upper limit, huge sets, and a randomised cross-check against a
 * brute-force membership table. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "imap/imap_seqset.h"
#include "core/banned.h"

static struct arena *arena;

static int setup(void **state)
{
	(void)state;
	arena = arena_new(4096);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	arena_free(&arena);
	return 0;
}

static struct imap_seqset *parse_ok(const char *s)
{
	struct imap_seqset *set = NULL;
	const char *error = NULL;
	if (imap_seqset_parse(arena, s, &set, &error) != 0)
		fail_msg("'%s' refused: %s", s, error);
	assert_null(error);
	assert_non_null(set);
	return set;
}

static void parse_bad(const char *s, const char *error)
{
	struct imap_seqset *set = NULL;
	const char *err = NULL;
	if (imap_seqset_parse(arena, s, &set, &err) == 0)
		fail_msg("'%s' accepted", s);
	assert_non_null(err);
	if (error != NULL)
		assert_string_equal(err, error);
}

/* The ranges of the set without '*' as text "1-5,7-7". */
static const char *ranges_text(const struct imap_seqset *set)
{
	static char out[512];
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < set->count; i++) {
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%u-%u", i ? "," : "",
		                      set->ranges[i].lo, set->ranges[i].hi);
	}
	return out;
}

/* The members for star and max as text, through imap_seqset_next(). */
static const char *members_text(const struct imap_seqset *set, uint32_t star, uint32_t max)
{
	static char out[1024];
	size_t n = 0;
	struct imap_seqset_iter iter;
	uint32_t v;
	out[0] = '\0';
	imap_seqset_iterate(&iter, set, star, max);
	while (imap_seqset_next(&iter, &v))
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%u", n ? "," : "", v);
	return out;
}

/* The resolved ranges as text. */
static const char *resolved_text(const struct imap_seqset *set, uint32_t star, uint32_t max)
{
	static char out[512];
	struct imap_seqset_range *r;
	size_t count, n = 0;
	imap_seqset_resolve(arena, set, star, max, &r, &count);
	out[0] = '\0';
	for (size_t i = 0; i < count; i++)
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%u-%u", i ? "," : "", r[i].lo,
		                      r[i].hi);
	return out;
}

static void test_parse_basic(void **state)
{
	(void)state;
	struct imap_seqset *set = parse_ok("1:5,7");
	assert_string_equal(ranges_text(set), "1-5,7-7");
	assert_false(set->star || set->saved);
	assert_false(imap_seqset_is_saved(set));
	set = parse_ok("42");
	assert_string_equal(ranges_text(set), "42-42");
	set = parse_ok("4294967295");
	assert_string_equal(ranges_text(set), "4294967295-4294967295");
	set = parse_ok("1:4294967295");
	assert_string_equal(ranges_text(set), "1-4294967295");
}

static void test_reversed_and_merged(void **state)
{
	(void)state;
	assert_string_equal(ranges_text(parse_ok("5:1")), "1-5");
	assert_string_equal(ranges_text(parse_ok("9,1:5,3:8,10")), "1-10");
	assert_string_equal(ranges_text(parse_ok("1,2,3,5,6,8")), "1-3,5-6,8-8");
	assert_string_equal(ranges_text(parse_ok("20:30,1,25:10,40")), "1-1,10-30,40-40");
	assert_string_equal(ranges_text(parse_ok("7,7,7")), "7-7");
	assert_string_equal(ranges_text(parse_ok("4294967295,4294967294:1,3")), "1-4294967295");
	assert_string_equal(ranges_text(parse_ok("4294967295:4294967295,1")),
	                    "1-1,4294967295-4294967295");
}

static void test_star(void **state)
{
	(void)state;
	struct imap_seqset *set = parse_ok("*");
	assert_true(set->star && !set->star_paired);
	assert_int_equal(set->count, 0);
	assert_true(imap_seqset_contains(set, 20, 20));
	assert_false(imap_seqset_contains(set, 19, 20));
	assert_false(imap_seqset_contains(set, 0, 0));

	set = parse_ok("*:*");
	assert_true(set->star && !set->star_paired);
	assert_string_equal(members_text(set, 7, 100), "7");

	/* n:* and *:n are the same range, whichever end is larger (RFC 9051 §9). */
	const char *forms[] = {"15:*", "*:15"};
	for (int i = 0; i < 2; i++) {
		set = parse_ok(forms[i]);
		assert_true(set->star && set->star_paired);
		assert_string_equal(members_text(set, 20, 100), "15,16,17,18,19,20");
		/* '*' below n: the range is *:n, which contains '*'. */
		assert_string_equal(members_text(set, 12, 100), "12,13,14,15");
		assert_string_equal(members_text(set, 12, 12), "12");
		assert_true(imap_seqset_contains(set, 15, 12));
		assert_true(imap_seqset_contains(set, 12, 12));
		assert_false(imap_seqset_contains(set, 11, 12));
		assert_false(imap_seqset_contains(set, 16, 12));
	}
	/* Several star ranges together with plain ranges. */
	set = parse_ok("1:2,*,10:*,5:*");
	assert_string_equal(ranges_text(set), "1-2");
	assert_int_equal(set->star_lo, 5);
	assert_int_equal(set->star_hi, 10);
	assert_string_equal(resolved_text(set, 7, 100), "1-2,5-10");
	assert_string_equal(resolved_text(set, 3, 100), "1-10");
	assert_string_equal(resolved_text(set, 30, 100), "1-2,5-30");
	assert_string_equal(resolved_text(set, 30, 8), "1-2,5-8");
	/* star 0 (no messages): '*' alone is nothing. */
	set = parse_ok("*");
	assert_string_equal(members_text(set, 0, 100), "");
	assert_false(imap_seqset_contains(set, 1, 0));
	set = parse_ok("3:*");
	assert_string_equal(members_text(set, 0, 100), "1,2,3");
	assert_string_equal(members_text(set, 0, 0), "");
}

static void test_saved(void **state)
{
	(void)state;
	struct imap_seqset *set = parse_ok("$");
	assert_true(imap_seqset_is_saved(set));
	assert_false(imap_seqset_contains(set, 1, 10));
	assert_string_equal(members_text(set, 10, 10), "");
	assert_string_equal(resolved_text(set, 10, 10), "");
	parse_bad("$,1", "$ cannot be combined with other sequence numbers");
	parse_bad("1,$", "$ cannot be combined with other sequence numbers");
	parse_bad("1$", "$ cannot be combined with other sequence numbers");
	parse_bad("$$", "$ cannot be combined with other sequence numbers");
	parse_bad("$:1", "$ cannot be combined with other sequence numbers");
	parse_bad("1:$", "Invalid sequence set");
}

static void test_rejected(void **state)
{
	(void)state;
	parse_bad("", "Empty sequence set");
	parse_bad("0", "Invalid sequence number 0");
	parse_bad("0:5", "Invalid sequence number 0");
	parse_bad("5:0", "Invalid sequence number 0");
	parse_bad("1,0", "Invalid sequence number 0");
	parse_bad("01", "Invalid sequence set");
	parse_bad("1:007", "Invalid sequence set");
	parse_bad("4294967296", "Sequence number too large");
	parse_bad("1:99999999999999999999", "Sequence number too large");
	parse_bad("42949672950", "Sequence number too large");
	const char *syntax[] = {
	    ",",  "1,",  ",1", "1,,2", "1::2", "1:2:3", ":1", "1:", "a",   "1 2", "-1",
	    "+1", "1-2", "**", "*1",   "1*",   "1:**",  " 1", "1 ", "1;2", "1.5", "\xc2\xb9"};
	for (size_t i = 0; i < sizeof(syntax) / sizeof(syntax[0]); i++)
		parse_bad(syntax[i], "Invalid sequence set");
}

static void test_contains(void **state)
{
	(void)state;
	struct imap_seqset *set = parse_ok("2:4,10,20:30,100:*");
	uint32_t yes[] = {2, 3, 4, 10, 20, 25, 30, 100, 150};
	uint32_t no[] = {0, 1, 5, 9, 11, 19, 31, 99, 151, 4294967295U};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		assert_true(imap_seqset_contains(set, yes[i], 150));
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_false(imap_seqset_contains(set, no[i], 150));
	/* With '*' below 100 the star range is *:100. */
	assert_true(imap_seqset_contains(set, 50, 50));
	assert_true(imap_seqset_contains(set, 100, 50));
	assert_false(imap_seqset_contains(set, 101, 50));
	assert_true(imap_seqset_contains(parse_ok("4294967295"), 4294967295U, 1));
}

static void test_iterate(void **state)
{
	(void)state;
	struct imap_seqset *set = parse_ok("1:3,5,*");
	assert_string_equal(members_text(set, 10, 10), "1,2,3,5,10");
	/* '*' adjacent to a range merges with it. */
	set = parse_ok("1:3,*");
	assert_string_equal(resolved_text(set, 4, 100), "1-4");
	assert_string_equal(resolved_text(set, 2, 100), "1-3");
	/* The upper bound keeps a huge range cheap. */
	set = parse_ok("1:4294967295");
	assert_string_equal(members_text(set, 3, 5), "1,2,3,4,5");
	assert_string_equal(resolved_text(set, 3, 5), "1-5");
	assert_string_equal(members_text(set, 3, 0), "");
	set = parse_ok("4294967290:4294967295");
	assert_string_equal(members_text(set, 1, UINT32_MAX),
	                    "4294967290,4294967291,4294967292,4294967293,4294967294,4294967295");
	set = parse_ok("4294967295,*");
	assert_string_equal(members_text(set, 4294967295U, UINT32_MAX), "4294967295");
	/* Ranges past the bound are cut or dropped. */
	set = parse_ok("2,4:8,20:30");
	assert_string_equal(resolved_text(set, 1, 6), "2-2,4-6");
	assert_string_equal(resolved_text(set, 1, 1), "");
	/* next_range gives maximal runs. */
	struct imap_seqset_iter iter;
	uint32_t lo, hi;
	set = parse_ok("10:12,13,15,*:14");
	imap_seqset_iterate(&iter, set, 16, 100);
	assert_true(imap_seqset_next_range(&iter, &lo, &hi));
	assert_int_equal(lo, 10);
	assert_int_equal(hi, 16);
	assert_false(imap_seqset_next_range(&iter, &lo, &hi));
	assert_false(imap_seqset_next_range(&iter, &lo, &hi));
	/* Star range inside a plain range, and plain ranges inside the star range. */
	set = parse_ok("1:100,*");
	assert_string_equal(resolved_text(set, 50, 1000), "1-100");
	set = parse_ok("3,5,7,2:*");
	assert_string_equal(resolved_text(set, 9, 1000), "2-9");
	assert_string_equal(resolved_text(set, 4, 1000), "2-5,7-7");
}

static void test_huge_sets(void **state)
{
	(void)state;
	/* 20000 single numbers: parsed, sorted (given reversed) and searched quickly. */
	size_t cap = 20000 * 7;
	char *s = malloc(cap);
	assert_non_null(s);
	size_t n = 0;
	for (int i = 20000; i >= 1; i--)
		n += (size_t)snprintf(s + n, cap - n, "%s%d", i == 20000 ? "" : ",", i * 2);
	struct imap_seqset *set = parse_ok(s);
	assert_int_equal(set->count, 20000);
	assert_int_equal(set->ranges[0].lo, 2);
	assert_int_equal(set->ranges[19999].hi, 40000);
	assert_true(imap_seqset_contains(set, 40000, 0));
	assert_false(imap_seqset_contains(set, 39999, 0));
	struct imap_seqset_iter iter;
	uint32_t v, count = 0, last = 0;
	imap_seqset_iterate(&iter, set, 0, 1000);
	while (imap_seqset_next(&iter, &v)) {
		assert_true(v > last);
		last = v;
		count++;
	}
	assert_int_equal(count, 500);
	/* Consecutive numbers collapse into one range. */
	n = 0;
	for (int i = 1; i <= 20000; i++)
		n += (size_t)snprintf(s + n, cap - n, "%s%d", i == 1 ? "" : ",", i);
	set = parse_ok(s);
	assert_int_equal(set->count, 1);
	assert_string_equal(ranges_text(set), "1-20000");
	free(s);
}

/* The element cap: IMAP_SEQSET_ELEMENTS_MAX elements parse, one more is refused (100,000
 * elements on an empty mailbox once took seconds; now they take no work at all). */
static void test_element_cap(void **state)
{
	(void)state;
	size_t cap = 100000 * 8;
	char *s = malloc(cap);
	assert_non_null(s);
	size_t n = 0;
	for (int i = 1; i <= IMAP_SEQSET_ELEMENTS_MAX; i++)
		n += (size_t)snprintf(s + n, cap - n, "%s%d", i == 1 ? "" : ",", i * 3);
	struct imap_seqset *set = parse_ok(s);
	assert_int_equal(set->count, IMAP_SEQSET_ELEMENTS_MAX);
	n += (size_t)snprintf(s + n, cap - n, ",1:*");
	parse_bad(s, "Too many elements in sequence set");
	n = 0;
	for (int i = 1; i <= 100000; i++)
		n += (size_t)snprintf(s + n, cap - n, "%s%d", i == 1 ? "" : ",", 100001 - i);
	parse_bad(s, "Too many elements in sequence set");
	/* the same numbers as ranges are one element each */
	set = parse_ok("1:100000,100001:200000");
	assert_int_equal(set->count, 1);
	free(s);
}

/* Small pseudo-random generator so the cross-check is reproducible. */
static uint32_t rnd_state = 12345;
static uint32_t rnd(uint32_t n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 8) % n;
}

static void test_random_cross_check(void **state)
{
	(void)state;
	enum { N = 40 };
	for (int round = 0; round < 2000; round++) {
		char s[256];
		size_t n = 0;
		bool member[N + 2];
		memset(member, 0, sizeof(member));
		uint32_t star = rnd(N + 1); /* 0 .. N */
		int elements = 1 + (int)rnd(5);
		for (int e = 0; e < elements; e++) {
			uint32_t a = 1 + rnd(N), b = 1 + rnd(N);
			bool a_star = rnd(5) == 0, b_star = rnd(5) == 0;
			bool range = rnd(2) == 0;
			n += (size_t)snprintf(s + n, sizeof(s) - n, "%s", e ? "," : "");
			if (a_star)
				n += (size_t)snprintf(s + n, sizeof(s) - n, "*");
			else
				n += (size_t)snprintf(s + n, sizeof(s) - n, "%u", a);
			uint32_t va = a_star ? star : a, vb = va;
			if (range) {
				if (b_star)
					n += (size_t)snprintf(s + n, sizeof(s) - n, ":*");
				else
					n += (size_t)snprintf(s + n, sizeof(s) - n, ":%u", b);
				vb = b_star ? star : b;
			}
			uint32_t lo = va < vb ? va : vb, hi = va < vb ? vb : va;
			for (uint32_t k = lo; k <= hi; k++)
				member[k] = true;
		}
		member[0] = false;
		struct imap_seqset *set = parse_ok(s);
		uint32_t max = 1 + rnd(N);
		struct imap_seqset_iter iter;
		uint32_t v, expect = 1;
		imap_seqset_iterate(&iter, set, star, max);
		while (imap_seqset_next(&iter, &v)) {
			while (expect <= max && !member[expect])
				expect++;
			if (v != expect)
				fail_msg("set %s star %u max %u: got %u want %u", s, star, max, v,
				         expect);
			expect++;
		}
		while (expect <= max && !member[expect])
			expect++;
		if (expect <= max)
			fail_msg("set %s star %u max %u: %u missing", s, star, max, expect);
		for (uint32_t k = 0; k <= N; k++) {
			if (imap_seqset_contains(set, k, star) != member[k])
				fail_msg("set %s star %u: contains(%u) wrong", s, star, k);
		}
		/* resolve gives disjoint, non-adjacent sorted ranges. */
		struct imap_seqset_range *r;
		size_t count;
		imap_seqset_resolve(arena, set, star, max, &r, &count);
		for (size_t i = 0; i < count; i++) {
			assert_true(r[i].lo >= 1 && r[i].lo <= r[i].hi && r[i].hi <= max);
			if (i > 0)
				assert_true(r[i].lo > r[i - 1].hi + 1);
		}
		arena_reset(arena);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_parse_basic, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reversed_and_merged, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_star, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_saved, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rejected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_contains, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_iterate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_huge_sets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_element_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_random_cross_check, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
