/* Unit tests for smtp/smtp_body, the outbound body encoder: CRLF line ends for bare LF and bare
 * CR, dot-stuffing only for DATA, the completed last line and the final dot, identical output
 * for every way of splitting the input (a CR at the end of one block and its LF in the next),
 * the SMTP_BODY_OUT_MAX bound, and the Return-Path first-line check. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_body.h"
#include "core/banned.h"

/* Encode in split at the given points (sorted, < len); returns malloc'd output in *out_r. */
static size_t encode_split(const char *in, size_t len, bool stuff, const size_t *cuts, size_t ncuts,
                           unsigned char **out_r)
{
	struct smtp_body_encoder e;
	smtp_body_encoder_init(&e, stuff);
	unsigned char *out = malloc(SMTP_BODY_OUT_MAX(len) + SMTP_BODY_END_MAX + 1);
	assert_non_null(out);
	size_t o = 0, pos = 0;
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len;
		/* an exactly-sized buffer per call, so ASan sees an overrun of the bound */
		unsigned char *chunk = malloc(SMTP_BODY_OUT_MAX(end - pos));
		size_t n = smtp_body_encode(&e, (const unsigned char *)in + pos, end - pos, chunk);
		assert_true(n <= SMTP_BODY_OUT_MAX(end - pos));
		memcpy(out + o, chunk, n);
		free(chunk);
		o += n;
		pos = end;
	}
	size_t n = smtp_body_encode_end(&e, out + o);
	assert_true(n <= SMTP_BODY_END_MAX);
	o += n;
	*out_r = out;
	return o;
}

static void check(const char *in, size_t len, bool stuff, const char *expect)
{
	unsigned char *whole;
	size_t n = encode_split(in, len, stuff, NULL, 0, &whole);
	assert_int_equal(n, strlen(expect));
	assert_memory_equal(whole, expect, n);
	/* every single split point, and every octet on its own */
	for (size_t cut = 1; cut < len; cut++) {
		unsigned char *o;
		size_t m = encode_split(in, len, stuff, &cut, 1, &o);
		assert_int_equal(m, n);
		assert_memory_equal(o, whole, n);
		free(o);
	}
	if (len > 1) {
		size_t *cuts = malloc((len - 1) * sizeof(size_t));
		for (size_t i = 0; i < len - 1; i++)
			cuts[i] = i + 1;
		unsigned char *o;
		size_t m = encode_split(in, len, stuff, cuts, len - 1, &o);
		assert_int_equal(m, n);
		assert_memory_equal(o, whole, n);
		free(o);
		free(cuts);
	}
	free(whole);
}

#define CHECK(in, stuff, expect) check(in, sizeof(in) - 1, stuff, expect)

static void test_line_ends(void **state)
{
	(void)state;
	CHECK("a\r\nb\r\n", false, "a\r\nb\r\n");
	CHECK("a\nb\n", false, "a\r\nb\r\n");
	CHECK("a\rb\r", false, "a\r\nb\r\n");
	CHECK("a\r\r\nb", false, "a\r\n\r\nb\r\n"); /* CR CR LF: a bare CR, then CRLF */
	CHECK("a\n\rb", false, "a\r\n\r\nb\r\n");
	CHECK("last", false, "last\r\n");
	CHECK("", false, "");
	CHECK("\r", false, "\r\n");
}

static void test_dot_stuffing(void **state)
{
	(void)state;
	CHECK(".a\r\n..b\r\n.\r\nc.d\r\n", true, "..a\r\n...b\r\n..\r\nc.d\r\n.\r\n");
	CHECK(".", true, "..\r\n.\r\n");
	CHECK("x\n.\n", true, "x\r\n..\r\n.\r\n");
	CHECK("x\r.y", true, "x\r\n..y\r\n.\r\n"); /* a dot after a bare CR starts a line too */
	CHECK("", true, ".\r\n");
	/* BDAT: no stuffing, no final dot */
	CHECK(".a\r\n.\r\n", false, ".a\r\n.\r\n");
}

static void test_bound(void **state)
{
	(void)state;
	/* the worst case for the bound: a carried CR, then LFs, CRs and dots */
	CHECK("\r.\r.\r.\n.\n.", true, "\r\n..\r\n..\r\n..\r\n..\r\n..\r\n.\r\n");
}

static void test_return_path(void **state)
{
	(void)state;
	const char *a = "Return-Path: <a@b>\r\nFrom: x\r\n";
	assert_int_equal(smtp_body_return_path_len(a, strlen(a)), 20);
	const char *b = "return-path:<>\nX";
	assert_int_equal(smtp_body_return_path_len(b, strlen(b)), 15);
	const char *c = "From: x\r\nReturn-Path: <a@b>\r\n";
	assert_int_equal(smtp_body_return_path_len(c, strlen(c)), 0);
	const char *d = "Return-Path: <a@b> and no line end";
	assert_int_equal(smtp_body_return_path_len(d, strlen(d)), 0);
	assert_int_equal(smtp_body_return_path_len("Return-Pat", 10), 0);
	const char *e = "Return-Paths: x\r\n";
	assert_int_equal(smtp_body_return_path_len(e, strlen(e)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_line_ends),
	    cmocka_unit_test(test_dot_stuffing),
	    cmocka_unit_test(test_bound),
	    cmocka_unit_test(test_return_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
