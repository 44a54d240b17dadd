/* Unit tests for mime/dkim_canon: RFC 6376 §3.4.5's example, header fields (WSP runs,
 * trailing WSP, folding, name case, long fields), the body in every chunking (empty lines
 * at the end across chunk boundaries, empty bodies, bare CR/LF, missing final CRLF), and
 * the bottom-up selection of header fields (§5.4.2). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mime/dkim_canon.h"
#include "core/banned.h"

static char *header(enum dkim_canon canon, const char *field, bool with_crlf)
{
	static char out[1 << 20];
	struct buf b;
	buf_init(&b, sizeof(out) - 1);
	assert_int_equal(
	    dkim_canon_header(canon, (const unsigned char *)field, strlen(field), with_crlf, &b),
	    0);
	memcpy(out, buf_cstr(&b), b.len + 1);
	buf_free(&b);
	return out;
}

static void collect(void *ctx, const unsigned char *data, size_t len)
{
	assert_int_equal(buf_append(ctx, data, len), 0);
}

/* Canonicalise body (len octets) in chunks of step into b. */
static void body_in_steps(enum dkim_canon canon, const char *body, size_t len, size_t step,
                          struct buf *b)
{
	struct dkim_body_canon *bc = malloc(sizeof(*bc));
	dkim_body_canon_init(bc, canon, collect, b);
	for (size_t i = 0; i < len; i += step)
		dkim_body_canon_update(bc, (const unsigned char *)body + i,
		                       len - i < step ? len - i : step);
	dkim_body_canon_final(bc);
	free(bc);
}

/* The body canonicalised whole, in every chunk size and with every single split point, must
 * be want. */
static void expect_body(enum dkim_canon canon, const char *body, const char *want)
{
	size_t len = strlen(body);
	for (size_t step = 1; step <= len + 1; step++) {
		struct buf b;
		buf_init(&b, 1 << 20);
		body_in_steps(canon, body, len, step, &b);
		assert_string_equal(buf_cstr(&b), want);
		buf_free(&b);
	}
	for (size_t cut = 0; cut <= len; cut++) {
		struct buf b;
		buf_init(&b, 1 << 20);
		struct dkim_body_canon bc;
		dkim_body_canon_init(&bc, canon, collect, &b);
		dkim_body_canon_update(&bc, (const unsigned char *)body, cut);
		dkim_body_canon_update(&bc, (const unsigned char *)body + cut, len - cut);
		dkim_body_canon_final(&bc);
		assert_string_equal(buf_cstr(&b), want);
		buf_free(&b);
	}
}

/* RFC 6376 §3.4.5. */
static void test_rfc_example(void **state)
{
	(void)state;
	assert_string_equal(header(DKIM_CANON_RELAXED, "A: X\r\n", true), "a:X\r\n");
	assert_string_equal(header(DKIM_CANON_RELAXED, "B : Y\t\r\n\tZ  \r\n", true), "b:Y Z\r\n");
	assert_string_equal(header(DKIM_CANON_SIMPLE, "A: X\r\n", true), "A: X\r\n");
	assert_string_equal(header(DKIM_CANON_SIMPLE, "B : Y\t\r\n\tZ  \r\n", true),
	                    "B : Y\t\r\n\tZ  \r\n");
	const char *body = " C \r\nD \t E\r\n\r\n\r\n";
	expect_body(DKIM_CANON_RELAXED, body, " C\r\nD E\r\n");
	expect_body(DKIM_CANON_SIMPLE, body, " C \r\nD \t E\r\n");
}

static void test_header_relaxed(void **state)
{
	(void)state;
	/* WSP runs inside, around the colon and at the end; several folds */
	assert_string_equal(header(DKIM_CANON_RELAXED, "Subject:  a \t b\t \r\n", true),
	                    "subject:a b\r\n");
	assert_string_equal(header(DKIM_CANON_RELAXED, "To: a,\r\n  b,\r\n\t\tc\r\n", true),
	                    "to:a, b, c\r\n");
	/* only WSP as value, no value, no line end at all */
	assert_string_equal(header(DKIM_CANON_RELAXED, "Subject: \t \r\n", true), "subject:\r\n");
	assert_string_equal(header(DKIM_CANON_RELAXED, "Subject:\r\n", true), "subject:\r\n");
	assert_string_equal(header(DKIM_CANON_RELAXED, "X-A:b", true), "x-a:b\r\n");
	/* name case; WSP before the colon; WSP inside the name is kept (it is not a name) */
	assert_string_equal(header(DKIM_CANON_RELAXED, "MESSAGE-ID \t: <a@b>\r\n", true),
	                    "message-id:<a@b>\r\n");
	assert_string_equal(header(DKIM_CANON_RELAXED, "Content-TYPE:Text/Plain\r\n", true),
	                    "content-type:Text/Plain\r\n");
	/* a fold right after the colon, and a bare CR and LF inside (removed, not WSP) */
	assert_string_equal(header(DKIM_CANON_RELAXED, "Subject:\r\n x\r\n", true),
	                    "subject:x\r\n");
	assert_string_equal(header(DKIM_CANON_RELAXED, "Subject: a\rb\nc\r\n", true),
	                    "subject:abc\r\n");
	/* 8-bit octets go through */
	assert_string_equal(header(DKIM_CANON_RELAXED, "Subject: Gr\xc3\xbc\xc3\x9f  e\r\n", true),
	                    "subject:Gr\xc3\xbc\xc3\x9f e\r\n");
	/* the DKIM-Signature field itself: no final CRLF */
	assert_string_equal(header(DKIM_CANON_RELAXED, "DKIM-Signature: v=1;\r\n\tb=", false),
	                    "dkim-signature:v=1; b=");
	assert_string_equal(header(DKIM_CANON_SIMPLE, "A: b\r\n", false), "A: b");
	/* a line without colon is all name */
	assert_string_equal(header(DKIM_CANON_RELAXED, "NoColon \r\n", true), "nocolon\r\n");
}

static void test_header_long(void **state)
{
	(void)state;
	size_t n = 200000;
	char *f = malloc(n + 16);
	memcpy(f, "Subject:", 8);
	size_t p = 8;
	while (p < n) {
		/* "x", then 3 WSP, a fold every 100 octets */
		f[p++] = 'x';
		f[p++] = ' ';
		f[p++] = '\t';
		if (p % 100 < 4) {
			f[p++] = '\r';
			f[p++] = '\n';
		}
		f[p++] = ' ';
	}
	memcpy(f + p, "\r\n", 3);
	const char *out = header(DKIM_CANON_RELAXED, f, true);
	size_t len = strlen(out);
	assert_memory_equal(out, "subject:x x x", 13);
	assert_memory_equal(out + len - 3, "x\r\n", 3);
	for (size_t i = 8; i + 2 < len; i++)
		assert_true(out[i] == (i % 2 == 0 ? 'x' : ' '));
	struct buf small;
	buf_init(&small, 100);
	assert_int_equal(
	    dkim_canon_header(DKIM_CANON_RELAXED, (const unsigned char *)f, p + 2, true, &small),
	    -1);
	buf_free(&small);
	free(f);
}

static void test_body_empty(void **state)
{
	(void)state;
	/* RFC 6376 §3.4.3: an empty simple body is one CRLF; §3.4.4: relaxed stays empty */
	expect_body(DKIM_CANON_SIMPLE, "", "\r\n");
	expect_body(DKIM_CANON_RELAXED, "", "");
	expect_body(DKIM_CANON_SIMPLE, "\r\n\r\n\r\n", "\r\n");
	expect_body(DKIM_CANON_RELAXED, "\r\n\r\n\r\n", "");
	/* lines of WSP only: not empty for simple, empty for relaxed */
	expect_body(DKIM_CANON_SIMPLE, "  \r\n \t\r\n\r\n", "  \r\n \t\r\n");
	expect_body(DKIM_CANON_RELAXED, "  \r\n \t\r\n\r\n", "");
	expect_body(DKIM_CANON_RELAXED, " \t ", "");
}

static void test_body_lines(void **state)
{
	(void)state;
	/* empty lines inside stay, at the end go */
	expect_body(DKIM_CANON_SIMPLE, "a\r\n\r\n\r\nb\r\n\r\n", "a\r\n\r\n\r\nb\r\n");
	expect_body(DKIM_CANON_RELAXED, "a\r\n \r\n\t\r\nb \r\n\r\n", "a\r\n\r\n\r\nb\r\n");
	/* no CRLF at the end: one is added */
	expect_body(DKIM_CANON_SIMPLE, "abc", "abc\r\n");
	expect_body(DKIM_CANON_RELAXED, "abc  ", "abc\r\n");
	expect_body(DKIM_CANON_SIMPLE, "a\r\n\r\nb", "a\r\n\r\nb\r\n");
	/* WSP runs and leading WSP (relaxed keeps one SP at the start of a line) */
	expect_body(DKIM_CANON_RELAXED, "  a  \t b\t\r\n\tc\r\n", " a b\r\n c\r\n");
	expect_body(DKIM_CANON_SIMPLE, "  a  \t b\t\r\n", "  a  \t b\t\r\n");
	/* 8-bit octets are octets */
	expect_body(DKIM_CANON_RELAXED, "\xc3\xa9t\xc3\xa9  x\r\n", "\xc3\xa9t\xc3\xa9 x\r\n");
}

static void test_body_nul(void **state)
{
	(void)state;
	const char body[] = "a\0b  \r\n";
	struct buf b;
	buf_init(&b, 100);
	body_in_steps(DKIM_CANON_RELAXED, body, sizeof(body) - 1, 1, &b);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "a\0b\r\n", 5);
	buf_free(&b);
}

static void test_body_bare_line_ends(void **state)
{
	(void)state;
	/* bare LF and bare CR are line ends (as core/crlf sends them) */
	expect_body(DKIM_CANON_SIMPLE, "a\nb\rc\r\n", "a\r\nb\r\nc\r\n");
	expect_body(DKIM_CANON_RELAXED, "a \nb\t\rc", "a\r\nb\r\nc\r\n");
	expect_body(DKIM_CANON_SIMPLE, "a\n\n\n", "a\r\n");
	expect_body(DKIM_CANON_SIMPLE, "a\r\r\r", "a\r\n");
	expect_body(DKIM_CANON_RELAXED, "a\r\n\r", "a\r\n");
	expect_body(DKIM_CANON_SIMPLE, "\r", "\r\n");
	expect_body(DKIM_CANON_RELAXED, "\n", "");
	expect_body(DKIM_CANON_SIMPLE, "a\n\r\n\nb", "a\r\n\r\n\r\nb\r\n");
	/* as many CRs as LFs, each LF after a CR, yet one CR bare (the fast path must not
	 * take it as CRLF only) */
	expect_body(DKIM_CANON_SIMPLE, "a\r\r\nb\r\n\nc\r\n", "a\r\n\r\nb\r\n\r\nc\r\n");
	expect_body(DKIM_CANON_RELAXED, "a \t b\tc  \r\nd\r\r\n", "a b c\r\nd\r\n");
}

/* dkim_canon_message(): the message itself when every line end is CRLF, else a copy. */
static void test_message_bare(void **state)
{
	(void)state;
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"a: b\r\n\r\nc\r\n", NULL},
	    {"", NULL},
	    {"a: b\r\n\r\nc", NULL},
	    {"a: b\n\r\nc\r\n", "a: b\r\n\r\nc\r\n"},
	    {"a\r\r\nb\r\n\n", "a\r\n\r\nb\r\n\r\n"},
	    {"\nx", "\r\nx"},
	    {"x\r", "x\r\n"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned char *copy;
		size_t len;
		const unsigned char *in = (const unsigned char *)cases[i].in;
		const unsigned char *out = dkim_canon_message(in, strlen(cases[i].in), &copy, &len);
		if (cases[i].want == NULL) {
			assert_ptr_equal(out, in);
			assert_null(copy);
			assert_int_equal(len, strlen(cases[i].in));
		} else {
			assert_ptr_equal(out, copy);
			assert_int_equal(len, strlen(cases[i].want));
			assert_memory_equal(out, cases[i].want, len);
		}
		free(copy);
	}
}

static void test_body_many_empty_lines(void **state)
{
	(void)state;
	/* a long run of empty lines costs no memory and comes out when text follows */
	size_t n = 100000;
	char *body = malloc(2 * n + 8);
	for (size_t i = 0; i < n; i++)
		memcpy(body + 2 * i, "\r\n", 2);
	memcpy(body + 2 * n, "x\r\n", 4);
	struct buf b;
	buf_init(&b, 1 << 20);
	body_in_steps(DKIM_CANON_RELAXED, body, 2 * n + 3, 4097, &b);
	assert_int_equal(b.len, 2 * n + 3);
	buf_reset(&b);
	body_in_steps(DKIM_CANON_RELAXED, body, 2 * n, 333, &b);
	assert_int_equal(b.len, 0);
	buf_free(&b);
	free(body);
}

static void test_fields(void **state)
{
	(void)state;
	struct arena *a = arena_new(4096);
	const char *m = "From: a@b\r\nSubject: x\r\n y\r\nTO : c\r\nnocolon\r\n\r\nbody\r\n";
	struct dkim_field *f;
	size_t body;
	size_t n = dkim_canon_fields(a, (const unsigned char *)m, strlen(m), 100, &f, &body);
	assert_int_equal(n, 4);
	assert_int_equal(f[0].start, 0);
	assert_int_equal(f[0].len, 11);
	assert_int_equal(f[0].name_len, 4);
	assert_int_equal(f[1].len, strlen("Subject: x\r\n y\r\n"));
	assert_int_equal(f[2].name_len, 2);
	assert_true(dkim_canon_field_is((const unsigned char *)m, &f[2], "to"));
	assert_int_equal(f[3].name_len, 0);
	assert_false(dkim_canon_field_is((const unsigned char *)m, &f[3], "nocolon"));
	assert_string_equal(m + body, "body\r\n");
	/* LF line ends; no empty line; the field limit */
	const char *l = "A: 1\nB: 2\n\nrest";
	n = dkim_canon_fields(a, (const unsigned char *)l, strlen(l), 1, &f, &body);
	assert_int_equal(n, 1);
	assert_string_equal(l + body, "rest");
	const char *h = "A: 1\r\nB: 2";
	n = dkim_canon_fields(a, (const unsigned char *)h, strlen(h), 10, &f, &body);
	assert_int_equal(n, 2);
	assert_int_equal(body, strlen(h));
	assert_int_equal(f[1].len, 4);
	n = dkim_canon_fields(a, (const unsigned char *)"\r\nbody", 6, 10, &f, &body);
	assert_int_equal(n, 0);
	assert_int_equal(body, 2);
	arena_free(&a);
}

static void test_select(void **state)
{
	(void)state;
	struct arena *a = arena_new(4096);
	const char *m = "From: 1\r\nTo: 2\r\nfrom: 3\r\nSubject: 4\r\nTo: 5\r\n\r\n";
	struct dkim_field *f;
	size_t body;
	size_t n = dkim_canon_fields(a, (const unsigned char *)m, strlen(m), 100, &f, &body);
	assert_int_equal(n, 5);
	/* bottom-up per name; a name with no instance left is the null string */
	const char *names[] = {"From", "to", "FROM", "From", "Subject", "Subject", "Date", "To"};
	size_t picked[8];
	dkim_canon_select((const unsigned char *)m, f, n, names, 8, picked);
	assert_int_equal(picked[0], 2);
	assert_int_equal(picked[1], 4);
	assert_int_equal(picked[2], 0);
	assert_int_equal(picked[3], SIZE_MAX);
	assert_int_equal(picked[4], 3);
	assert_int_equal(picked[5], SIZE_MAX);
	assert_int_equal(picked[6], SIZE_MAX);
	assert_int_equal(picked[7], 1);
	arena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc_example),
	    cmocka_unit_test(test_header_relaxed),
	    cmocka_unit_test(test_header_long),
	    cmocka_unit_test(test_body_empty),
	    cmocka_unit_test(test_body_lines),
	    cmocka_unit_test(test_body_nul),
	    cmocka_unit_test(test_body_bare_line_ends),
	    cmocka_unit_test(test_message_bare),
	    cmocka_unit_test(test_body_many_empty_lines),
	    cmocka_unit_test(test_fields),
	    cmocka_unit_test(test_select),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
