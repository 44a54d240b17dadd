/* Unit tests for mime/header: the incremental header scanner gives the same summary whatever
 * the chunking (every split point, byte by byte), unfolds continuation lines, handles CRLF
 * and bare LF, caps field length and field count, matches names case-insensitively and keeps
 * the first occurrence. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "mime/header.h"
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

/* Scan msg in chunks of chunk octets (0 = in one go, after an empty feed). Returns what the
 * last feed returned; checks that feed returns 1 from the completing chunk on. */
static int scan(const char *msg, size_t len, size_t chunk, size_t max_field, size_t max_lines,
                struct header_summary *sum_r)
{
	struct header_scanner *sc = header_scanner_new(arena, max_field, max_lines);
	const unsigned char *p = (const unsigned char *)msg;
	int ret = header_scanner_feed(sc, p, 0);
	assert_int_equal(ret, 0);
	if (chunk == 0)
		chunk = len > 0 ? len : 1;
	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		int r = header_scanner_feed(sc, p + off, n);
		if (ret == 1)
			assert_int_equal(r, 1); /* once complete, always complete */
		ret = r;
	}
	header_scanner_result(sc, sum_r);
	assert_int_equal(ret, sum_r->complete ? 1 : 0);
	return ret;
}

/* Scan msg split into two chunks at split. */
static void scan_split(const char *msg, size_t len, size_t split, size_t max_field,
                       size_t max_lines, struct header_summary *sum_r)
{
	struct header_scanner *sc = header_scanner_new(arena, max_field, max_lines);
	const unsigned char *p = (const unsigned char *)msg;
	(void)header_scanner_feed(sc, p, split);
	(void)header_scanner_feed(sc, p + split, len - split);
	header_scanner_result(sc, sum_r);
}

static void assert_str_or_null(const char *got, const char *want)
{
	if (want == NULL)
		assert_null(got);
	else if (got == NULL)
		fail_msg("expected '%s', got NULL", want);
	else
		assert_string_equal(got, want);
}

static void assert_same(const struct header_summary *a, const struct header_summary *b)
{
	assert_str_or_null(a->from, b->from);
	assert_str_or_null(a->subject, b->subject);
	assert_str_or_null(a->message_id, b->message_id);
	assert_int_equal(a->lines, b->lines);
	assert_int_equal(a->complete, b->complete);
	assert_int_equal(a->too_many, b->too_many);
}

/* Scan in one go and check the result; then check that every chunking gives the same. */
static void check(const char *msg, size_t max_field, size_t max_lines, const char *from,
                  const char *subject, const char *message_id, size_t lines, bool complete)
{
	size_t len = strlen(msg);
	struct header_summary whole, other;
	scan(msg, len, 0, max_field, max_lines, &whole);
	assert_str_or_null(whole.from, from);
	assert_str_or_null(whole.subject, subject);
	assert_str_or_null(whole.message_id, message_id);
	assert_int_equal(whole.lines, lines);
	assert_int_equal(whole.complete, complete);
	scan(msg, len, 1, max_field, max_lines, &other);
	assert_same(&other, &whole);
	for (size_t chunk = 2; chunk < 8; chunk++) {
		scan(msg, len, chunk, max_field, max_lines, &other);
		assert_same(&other, &whole);
	}
	for (size_t split = 0; split <= len; split++) {
		scan_split(msg, len, split, max_field, max_lines, &other);
		assert_same(&other, &whole);
	}
}

static void test_basic_crlf(void **state)
{
	(void)state;
	check("From: Alice <a@example.com>\r\n"
	      "To: bob@example.com\r\n"
	      "Subject: Hello\r\n"
	      "Message-ID: <1@x.example>\r\n"
	      "\r\n"
	      "Body\r\nSubject: not a header\r\n",
	      998, 100, "Alice <a@example.com>", "Hello", "<1@x.example>", 4, true);
}

static void test_lf_only(void **state)
{
	(void)state;
	check("From: a@b\nSubject: s\n\nbody\n", 998, 100, "a@b", "s", NULL, 2, true);
	/* mixed line ends: CRLF then a bare-LF empty line, and the other way round */
	check("Subject: x\r\n\nbody", 998, 100, NULL, "x", NULL, 1, true);
	check("Subject: x\n\r\nbody", 998, 100, NULL, "x", NULL, 1, true);
}

static void test_folding(void **state)
{
	(void)state;
	check("Subject: Hello\r\n world\r\n\tand more\r\nFrom:\r\n  a@b\r\n\r\n", 998, 100, "a@b",
	      "Hello world\tand more", NULL, 2, true);
	check("Subject: a\n b\n\n", 998, 100, NULL, "a b", NULL, 1, true);
	/* a continuation of a field we do not keep stays out of the next one */
	check("X-Long: a\r\n b\r\nSubject: s\r\n c\r\n\r\n", 998, 100, NULL, "s c", NULL, 2, true);
	/* a continuation line before any field is ignored */
	check(" stray\r\nSubject: s\r\n\r\n", 998, 100, NULL, "s", NULL, 1, true);
}

static void test_whitespace_trim(void **state)
{
	(void)state;
	check("Subject:   a  b   \r\n\r\n", 998, 100, NULL, "a  b", NULL, 1, true);
	check("Subject:\t\t\r\n\t \r\n\r\n", 998, 100, NULL, "", NULL, 1, true);
	check("Subject:x\r\n\r\n", 998, 100, NULL, "x", NULL, 1, true);
	check("Subject : obs\r\n\r\n", 998, 100, NULL, "obs", NULL, 1, true);
	check("Subject\t: obs\r\n\r\n", 998, 100, NULL, "obs", NULL, 1, true);
	/* whitespace at a continuation boundary is kept inside the value */
	check("Subject: a \r\n b\r\n\r\n", 998, 100, NULL, "a  b", NULL, 1, true);
}

static void test_case_insensitive(void **state)
{
	(void)state;
	check("FROM: a\r\nsUbJeCt: b\r\nmessage-ID: c\r\n\r\n", 998, 100, "a", "b", "c", 3, true);
	check("X-Subject: no\r\nSubjects: no\r\nSubjec: no\r\nMessage_ID: no\r\n\r\n", 998, 100,
	      NULL, NULL, NULL, 4, true);
}

static void test_first_occurrence(void **state)
{
	(void)state;
	check("Subject: one\r\nSubject: two\r\nFrom: x\r\nfrom: y\r\n\r\n", 998, 100, "x", "one",
	      NULL, 4, true);
	/* an empty first occurrence still wins and is "", not NULL */
	check("Subject:\r\nSubject: two\r\n\r\n", 998, 100, NULL, "", NULL, 2, true);
}

static void test_no_end(void **state)
{
	(void)state;
	check("From: a\r\nSubject: partial", 998, 100, "a", "partial", NULL, 2, false);
	check("From: a\r\n", 998, 100, "a", NULL, NULL, 1, false);
	check("From: a\r\n\r", 998, 100, "a", NULL, NULL, 1, false);
	check("", 998, 100, NULL, NULL, NULL, 0, false);
	/* an empty first line ends an empty header section */
	check("\r\nSubject: body\r\n", 998, 100, NULL, NULL, NULL, 0, true);
	check("\nSubject: body\n", 998, 100, NULL, NULL, NULL, 0, true);
}

static void test_truncation(void **state)
{
	(void)state;
	check("Subject: 0123456789abc\r\n\r\n", 10, 100, NULL, "0123456789", NULL, 1, true);
	check("Subject: 0123456789\r\n\r\n", 10, 100, NULL, "0123456789", NULL, 1, true);
	check("Subject: 012345678\r\n continued\r\n\r\n", 10, 100, NULL, "012345678", NULL, 1,
	      true);
	check("Subject: x\r\n\r\n", 0, 100, NULL, "", NULL, 1, true);
	/* never cut inside a UTF-8 sequence: "abcd" + e-acute is 6 octets */
	check("Subject: abcd\xc3\xa9\r\n\r\n", 5, 100, NULL, "abcd", NULL, 1, true);
	check("Subject: abcd\xc3\xa9\r\n\r\n", 6, 100, NULL, "abcd\xc3\xa9", NULL, 1, true);
	check("Subject: ab\xe2\x82\xac\r\n\r\n", 4, 100, NULL, "ab", NULL, 1, true);
	check("Subject: ab\xf0\x9f\x93\xa7z\r\n\r\n", 5, 100, NULL, "ab", NULL, 1, true);
	check("Subject: ab\xf0\x9f\x93\xa7z\r\n\r\n", 6, 100, NULL, "ab\xf0\x9f\x93\xa7", NULL, 1,
	      true);
	/* truncation then trailing whitespace */
	check("Subject: abc   def\r\n\r\n", 5, 100, NULL, "abc", NULL, 1, true);
}

static void test_huge_field(void **state)
{
	(void)state;
	const size_t big = 10 * 1024 * 1024;
	const char *head = "From: f\r\nSubject: ";
	const char *tail = "\r\nMessage-ID: <m@x>\r\n\r\n";
	size_t hl = strlen(head), tl = strlen(tail);
	char *msg = malloc(hl + big + tl + 1);
	assert_non_null(msg);
	memcpy(msg, head, hl);
	memset(msg + hl, 'x', big);
	memcpy(msg + hl + big, tail, tl + 1);
	size_t len = hl + big + tl;
	struct header_summary a, b;
	assert_int_equal(scan(msg, len, 0, 100, 100, &a), 1);
	assert_int_equal(strlen(a.subject), 100);
	assert_string_equal(a.from, "f");
	assert_string_equal(a.message_id, "<m@x>");
	assert_int_equal(a.lines, 3);
	assert_int_equal(scan(msg, len, 4093, 100, 100, &b), 1);
	assert_same(&a, &b);
	/* a huge field name is no problem either */
	memcpy(msg, "X", 1);
	memset(msg + 1, 'n', big);
	memcpy(msg + 1 + big, ": v\r\nSubject: s\r\n\r\n", 20);
	assert_int_equal(scan(msg, strlen(msg), 65536, 100, 100, &a), 1);
	assert_string_equal(a.subject, "s");
	assert_int_equal(a.lines, 2);
	free(msg);
}

static void test_too_many(void **state)
{
	(void)state;
	struct header_summary sum;
	const char *msg = "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nSubject: late\r\n\r\n";
	scan(msg, strlen(msg), 0, 998, 3, &sum);
	assert_int_equal(sum.lines, 3);
	assert_true(sum.too_many);
	assert_true(sum.complete);
	assert_string_equal(sum.subject, "late");
	check(msg, 998, 3, NULL, "late", NULL, 3, true);
	scan(msg, strlen(msg), 0, 998, 5, &sum);
	assert_int_equal(sum.lines, 5);
	assert_false(sum.too_many);
	scan(msg, strlen(msg), 0, 998, 4, &sum);
	assert_int_equal(sum.lines, 4);
	assert_true(sum.too_many);
	scan(msg, strlen(msg), 0, 998, 0, &sum);
	assert_int_equal(sum.lines, 0);
	assert_true(sum.too_many);
	/* continuation lines are not fields */
	msg = "Subject: a\r\n b\r\n c\r\n d\r\n\r\n";
	scan(msg, strlen(msg), 0, 998, 1, &sum);
	assert_int_equal(sum.lines, 1);
	assert_false(sum.too_many);
}

static void test_odd_bytes(void **state)
{
	(void)state;
	/* bare CR inside a body becomes a space; CR CR LF is a bare CR then a line end */
	check("Subject: a\rb\r\n\r\n", 998, 100, NULL, "a b", NULL, 1, true);
	check("Subject: a\r\r\n\r\n", 998, 100, NULL, "a", NULL, 1, true);
	/* a line without a colon is skipped (and counted) */
	check("garbage line\r\nSubject: s\r\n\r\n", 998, 100, NULL, "s", NULL, 2, true);
	/* 8-bit text is kept as is; encoded words are not decoded */
	check("Subject: =?UTF-8?Q?caf=C3=A9?= \xc3\xa9\r\n\r\n", 998, 100, NULL,
	      "=?UTF-8?Q?caf=C3=A9?= \xc3\xa9", NULL, 1, true);
	/* a field name longer than any we keep */
	check("Subjectsubjectsubjectsubjectsubjectsubject: no\r\n\r\n", 998, 100, NULL, NULL, NULL,
	      1, true);
	/* NUL in a body becomes a space */
	struct header_summary sum;
	const char msg[] = "Subject: a\0b\r\n\r\n";
	assert_int_equal(scan(msg, sizeof(msg) - 1, 1, 998, 100, &sum), 1);
	assert_string_equal(sum.subject, "a b");
}

static void test_after_end_ignored(void **state)
{
	(void)state;
	struct header_scanner *sc = header_scanner_new(arena, 998, 100);
	const char *a = "Subject: s\r\n\r\nFrom: body\r\n";
	assert_int_equal(header_scanner_feed(sc, (const unsigned char *)a, strlen(a)), 1);
	assert_int_equal(header_scanner_feed(sc, (const unsigned char *)"From: x\r\n", 9), 1);
	struct header_summary sum;
	header_scanner_result(sc, &sum);
	assert_null(sum.from);
	assert_string_equal(sum.subject, "s");
	assert_int_equal(sum.lines, 1);
}

static void test_result_midstream(void **state)
{
	(void)state;
	struct header_scanner *sc = header_scanner_new(arena, 998, 100);
	struct header_summary sum;
	assert_int_equal(header_scanner_feed(sc, (const unsigned char *)"Subject: a ", 11), 0);
	header_scanner_result(sc, &sum);
	assert_string_equal(sum.subject, "a");
	assert_false(sum.complete);
	assert_int_equal(header_scanner_feed(sc, (const unsigned char *)"b\r\n\r\n", 5), 1);
	header_scanner_result(sc, &sum);
	assert_string_equal(sum.subject, "a b");
	assert_true(sum.complete);
}

/* Deterministic pseudo-random chunkings of a realistic message give the same summary. */
static void test_random_chunks(void **state)
{
	(void)state;
	const char *msg = "Received: from mx.example (mx.example [192.0.2.1])\r\n"
	                  "\tby posthorn.example with ESMTPS id 8f3a\r\n"
	                  "\tfor <bob@example.com>; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	                  "From: \"Alice Example\" <alice@example.com>\r\n"
	                  "To: bob@example.com\r\n"
	                  "Subject: =?UTF-8?B?SGVsbG8=?=\r\n"
	                  " continued\r\n"
	                  "Message-Id: <20240101.1234@example.com>\r\n"
	                  "MIME-Version: 1.0\r\n"
	                  "\r\n"
	                  "Hello.\r\n";
	struct header_summary whole, other;
	size_t len = strlen(msg);
	scan(msg, len, 0, 998, 100, &whole);
	assert_string_equal(whole.from, "\"Alice Example\" <alice@example.com>");
	assert_string_equal(whole.subject, "=?UTF-8?B?SGVsbG8=?= continued");
	assert_string_equal(whole.message_id, "<20240101.1234@example.com>");
	assert_int_equal(whole.lines, 6);
	unsigned seed = 12345;
	for (int round = 0; round < 200; round++) {
		struct header_scanner *sc = header_scanner_new(arena, 998, 100);
		size_t off = 0;
		while (off < len) {
			seed = seed * 1103515245u + 12345u;
			size_t n = 1 + (seed >> 16) % 17;
			if (n > len - off)
				n = len - off;
			(void)header_scanner_feed(sc, (const unsigned char *)msg + off, n);
			off += n;
		}
		header_scanner_result(sc, &other);
		assert_same(&other, &whole);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_basic_crlf, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lf_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_folding, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_whitespace_trim, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_case_insensitive, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_first_occurrence, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_end, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_huge_field, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_too_many, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_odd_bytes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_after_end_ignored, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_result_midstream, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_random_chunks, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
