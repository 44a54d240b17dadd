/* Unit tests for core/utf8: RFC 3629's validity rules (no overlongs, no surrogates, nothing
 * past U+10FFFF, no lone continuation bytes, no cut sequences). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/utf8.h"
#include "core/banned.h"

static size_t len(const char *s)
{
	return utf8_seq_len((const unsigned char *)s);
}

static void test_sequences(void **state)
{
	(void)state;
	assert_int_equal(len("a"), 1);
	assert_int_equal(len(""), 1); /* the NUL */
	assert_int_equal(len("\xc2\x80"), 2);
	assert_int_equal(len("\xdf\xbf"), 2);
	assert_int_equal(len("\xe0\xa0\x80"), 3);
	assert_int_equal(len("\xef\xbf\xbf"), 3);
	assert_int_equal(len("\xf0\x90\x80\x80"), 4);
	assert_int_equal(len("\xf4\x8f\xbf\xbf"), 4); /* U+10FFFF */
	/* Invalid: overlong, surrogate, past U+10FFFF, continuation alone, cut, 0xff. */
	assert_int_equal(len("\xc0\xaf"), 0);
	assert_int_equal(len("\xc1\xbf"), 0);
	assert_int_equal(len("\xe0\x9f\xbf"), 0);
	assert_int_equal(len("\xf0\x8f\xbf\xbf"), 0);
	assert_int_equal(len("\xed\xa0\x80"), 0);
	assert_int_equal(len("\xf4\x90\x80\x80"), 0);
	assert_int_equal(len("\x80"), 0);
	assert_int_equal(len("\xe2\x82"), 0);
	assert_int_equal(len("\xff"), 0);
}

static void test_valid(void **state)
{
	(void)state;
	assert_true(utf8_valid(""));
	assert_true(utf8_valid("plain ASCII"));
	assert_true(utf8_valid("Gr\xc3\xbc\xc3\x9f"
	                       "e \xe2\x82\xac \xf0\x9f\x93\xae"));
	assert_false(utf8_valid("Gr\xfc\xdf"
	                        "e"));            /* Latin-1 */
	assert_false(utf8_valid("end \xe2\x82")); /* cut at the end */
	assert_false(utf8_valid("\xe2\x82"
	                        "a")); /* cut in the middle */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sequences),
	    cmocka_unit_test(test_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
