/* Unit tests for core/crlf: bare LF and bare CR become CRLF, CRLF stays, a CR split from
 * its LF across chunks stays one line end, a CR at the very end is finished, and any split
 * of an input gives the same output as one call. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/crlf.h"
#include "core/banned.h"

/* Convert in (len octets) in chunks of size step; the result in out, its length returned. */
static size_t convert(const char *in, size_t len, size_t step, unsigned char *out)
{
	struct crlf st;
	crlf_init(&st);
	size_t o = 0;
	for (size_t i = 0; i < len; i += step) {
		size_t n = len - i < step ? len - i : step;
		o += crlf_convert(&st, (const unsigned char *)in + i, n, out + o);
	}
	return o + crlf_finish(&st, out + o);
}

static void expect(const char *in, const char *want)
{
	unsigned char out[512];
	size_t len = strlen(in);
	for (size_t step = 1; step <= len + 1; step++) {
		size_t n = convert(in, len, step, out);
		assert_int_equal(n, strlen(want));
		assert_memory_equal(out, want, n);
	}
}

static void test_line_ends(void **state)
{
	(void)state;
	expect("", "");
	expect("a\r\nb\r\n", "a\r\nb\r\n");
	expect("a\nb\n", "a\r\nb\r\n");
	expect("a\rb\r", "a\r\nb\r\n");
	expect("\n\n", "\r\n\r\n");
	expect("\r\r\n", "\r\n\r\n");
	expect("\r\n\n\r", "\r\n\r\n\r\n");
	expect("From: x\nSubject: y\n\nbody\r\nmore\n",
	       "From: x\r\nSubject: y\r\n\r\nbody\r\nmore\r\n");
}

static void test_binary_octets(void **state)
{
	(void)state;
	unsigned char out[16];
	struct crlf st;
	crlf_init(&st);
	const unsigned char in[] = {0, 0xff, '\n', 0x80};
	size_t n = crlf_convert(&st, in, sizeof(in), out);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "\0\xff\r\n\x80", 5);
	assert_int_equal(crlf_finish(&st, out), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_line_ends),
	    cmocka_unit_test(test_binary_octets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
