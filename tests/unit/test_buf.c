/* Unit tests for core/buf, the capped length-carrying buffer: appends up to max exactly,
 * refusals past max that leave the buffer unchanged (append, puts and printf), binary data,
 * consume, reset, free and reuse, and buf_cstr() of an empty buffer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/buf.h"
#include "core/banned.h"

/* The buffer holds exactly the n octets of want, NUL-terminated. */
static void assert_buf(const struct buf *b, const char *want, size_t n)
{
	assert_int_equal(b->len, n);
	assert_true(b->len <= b->max);
	if (n > 0)
		assert_memory_equal(b->data, want, n);
	assert_int_equal(buf_cstr(b)[n], '\0');
	if (b->data != NULL)
		assert_true(b->cap >= b->len + 1);
}

static void test_empty(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 100);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.max, 100);
	assert_non_null(buf_cstr(&b));
	assert_string_equal(buf_cstr(&b), "");
	buf_reset(&b);
	assert_string_equal(buf_cstr(&b), "");
	buf_consume(&b, 0);
	buf_consume(&b, 10);
	assert_string_equal(buf_cstr(&b), "");
	assert_int_equal(b.len, 0);
	buf_free(&b);
	assert_null(b.data);
	assert_string_equal(buf_cstr(&b), "");
	buf_free(&b); /* an unused (or freed) buffer is fine */
}

static void test_append_to_max(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 10);
	assert_int_equal(buf_append(&b, "abcd", 4), 0);
	assert_buf(&b, "abcd", 4);
	assert_int_equal(buf_append(&b, "efghij", 6), 0);
	assert_buf(&b, "abcdefghij", 10);
	assert_string_equal(buf_cstr(&b), "abcdefghij");
	/* full: one more octet is refused and nothing changes */
	const char *data = b.data;
	assert_int_equal(buf_append(&b, "k", 1), -1);
	assert_ptr_equal(b.data, data);
	assert_buf(&b, "abcdefghij", 10);
	assert_int_equal(buf_puts(&b, "k"), -1);
	assert_buf(&b, "abcdefghij", 10);
	/* an empty append always fits */
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_int_equal(buf_puts(&b, ""), 0);
	assert_buf(&b, "abcdefghij", 10);
	buf_free(&b);
}

static void test_append_over_max(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 10);
	/* too big from the start: refused, nothing allocated */
	assert_int_equal(buf_append(&b, "0123456789A", 11), -1);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_cstr(&b), "");
	/* partly filled: an append that would cross max is refused whole (no partial copy) */
	assert_int_equal(buf_puts(&b, "01234567"), 0);
	assert_int_equal(buf_append(&b, "abc", 3), -1);
	assert_buf(&b, "01234567", 8);
	assert_int_equal(buf_puts(&b, "abc"), -1);
	assert_buf(&b, "01234567", 8);
	/* a length that would wrap len + n around is refused too */
	assert_int_equal(buf_append(&b, "x", SIZE_MAX), -1);
	assert_int_equal(buf_append(&b, "x", SIZE_MAX - 7), -1);
	assert_buf(&b, "01234567", 8);
	assert_int_equal(buf_puts(&b, "ab"), 0);
	assert_buf(&b, "01234567ab", 10);
	buf_free(&b);
}

static void test_max_zero(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(buf_append(&b, "x", 1), -1);
	assert_int_equal(buf_printf(&b, "%c", 'x'), -1);
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_int_equal(buf_printf(&b, "%s", ""), 0);
	assert_buf(&b, "", 0);
	assert_string_equal(buf_cstr(&b), "");
	buf_free(&b);
}

static void test_binary(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 16);
	assert_int_equal(buf_append(&b, "a\0b\xff", 4), 0);
	assert_buf(&b, "a\0b\xff", 4);
	assert_int_equal(buf_append(&b, "\0", 1), 0);
	assert_buf(&b, "a\0b\xff\0", 5);
	buf_free(&b);
}

/* Growth well past the first allocation keeps every octet, one append at a time. */
static void test_growth(void **state)
{
	(void)state;
	struct buf b;
	const size_t max = 100000;
	buf_init(&b, max);
	for (size_t i = 0; i < max; i++) {
		char c = (char)('a' + i % 26);
		assert_int_equal(buf_append(&b, &c, 1), 0);
	}
	assert_int_equal(b.len, max);
	assert_true(b.cap <= max + 1);
	for (size_t i = 0; i < max; i++)
		assert_int_equal(b.data[i], 'a' + i % 26);
	assert_int_equal(b.data[max], '\0');
	assert_int_equal(buf_append(&b, "z", 1), -1);
	assert_int_equal(b.len, max);
	buf_free(&b);

	/* one big append straight to max */
	static char big[5000];
	memset(big, 'q', sizeof(big));
	buf_init(&b, sizeof(big));
	assert_int_equal(buf_append(&b, big, sizeof(big)), 0);
	assert_buf(&b, big, sizeof(big));
	buf_free(&b);
}

static void test_printf(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 12);
	assert_int_equal(buf_printf(&b, "%s=%d", "n", 42), 0);
	assert_buf(&b, "n=42", 4);
	assert_int_equal(buf_printf(&b, "%s", ""), 0);
	assert_buf(&b, "n=42", 4);
	/* exactly up to max */
	assert_int_equal(buf_printf(&b, ";%07u", 5u), 0);
	assert_buf(&b, "n=42;0000005", 12);
	assert_string_equal(buf_cstr(&b), "n=42;0000005");
	/* one over: refused, buffer unchanged */
	assert_int_equal(buf_printf(&b, "%c", 'x'), -1);
	assert_buf(&b, "n=42;0000005", 12);
	buf_reset(&b);
	assert_int_equal(buf_printf(&b, "%s", "0123456789ABC"), -1);
	assert_buf(&b, "", 0);
	assert_string_equal(buf_cstr(&b), "");
	assert_int_equal(buf_printf(&b, "%s", "0123456789"), 0);
	assert_int_equal(buf_printf(&b, "%d", 123), -1); /* 13 > 12 */
	assert_buf(&b, "0123456789", 10);
	assert_int_equal(buf_printf(&b, "%d", 12), 0);
	assert_buf(&b, "012345678912", 12);
	buf_free(&b);

	/* printf into a fresh buffer, and one that crosses the first allocation */
	buf_init(&b, 1000);
	assert_int_equal(buf_printf(&b, "%.*s|%s", 3, "abcdef", "x"), 0);
	assert_buf(&b, "abc|x", 5);
	for (int i = 0; i < 30; i++)
		assert_int_equal(buf_printf(&b, "%05d", i), 0);
	assert_int_equal(b.len, 5 + 30 * 5);
	assert_memory_equal(b.data + 5, "0000000001", 10);
	assert_memory_equal(b.data + b.len - 5, "00029", 5);
	assert_int_equal(b.data[b.len], '\0');
	buf_free(&b);
}

/* buf_put_u64 writes what "%llu" writes, and like every append respects max. */
static void test_put_u64(void **state)
{
	(void)state;
	const uint64_t values[] = {0, 7, 9, 10, 99, 100, 4294967295u, 4294967296u, UINT64_MAX};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		struct buf b, p;
		buf_init(&b, 64);
		buf_init(&p, 64);
		assert_int_equal(buf_puts(&b, "x"), 0);
		assert_int_equal(buf_put_u64(&b, values[i]), 0);
		assert_int_equal(buf_printf(&p, "x%llu", (unsigned long long)values[i]), 0);
		assert_string_equal(buf_cstr(&b), buf_cstr(&p));
		buf_free(&b);
		buf_free(&p);
	}
	struct buf b;
	buf_init(&b, 3);
	assert_int_equal(buf_put_u64(&b, 123), 0);
	assert_int_equal(buf_put_u64(&b, 4), -1); /* over max: nothing appended */
	assert_string_equal(buf_cstr(&b), "123");
	buf_free(&b);
}

static void test_mixed(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 8);
	assert_int_equal(buf_puts(&b, "ab"), 0);
	assert_int_equal(buf_printf(&b, "%d", 345), 0);
	assert_int_equal(buf_append(&b, "678", 3), 0);
	assert_buf(&b, "ab345678", 8);
	buf_free(&b);
}

static void test_consume(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 64);
	assert_int_equal(buf_puts(&b, "hello world"), 0);
	buf_consume(&b, 0);
	assert_buf(&b, "hello world", 11);
	buf_consume(&b, 6);
	assert_buf(&b, "world", 5);
	assert_string_equal(buf_cstr(&b), "world");
	buf_consume(&b, 4);
	assert_buf(&b, "d", 1);
	buf_consume(&b, 1);
	assert_buf(&b, "", 0);
	assert_string_equal(buf_cstr(&b), "");
	/* more than held: empties it */
	assert_int_equal(buf_puts(&b, "abc"), 0);
	buf_consume(&b, 1000);
	assert_buf(&b, "", 0);
	/* consuming frees room up to max again */
	char full[64];
	memset(full, 'f', sizeof(full));
	assert_int_equal(buf_append(&b, full, 64), 0);
	assert_int_equal(buf_append(&b, "g", 1), -1);
	buf_consume(&b, 2);
	assert_int_equal(buf_append(&b, "gh", 2), 0);
	assert_int_equal(b.len, 64);
	assert_memory_equal(b.data + 60, "ffgh", 4);
	assert_int_equal(buf_append(&b, "i", 1), -1);
	buf_free(&b);
}

static void test_reset_and_reuse(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 6);
	assert_int_equal(buf_puts(&b, "abcdef"), 0);
	const char *data = b.data;
	buf_reset(&b);
	assert_buf(&b, "", 0);
	assert_string_equal(buf_cstr(&b), "");
	assert_ptr_equal(b.data, data); /* storage kept */
	assert_int_equal(b.max, 6);
	assert_int_equal(buf_puts(&b, "uvwxyz"), 0);
	assert_buf(&b, "uvwxyz", 6);
	assert_int_equal(buf_puts(&b, "!"), -1);
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	/* reuse after free with a new limit */
	buf_init(&b, 3);
	assert_int_equal(buf_puts(&b, "abcd"), -1);
	assert_int_equal(buf_puts(&b, "abc"), 0);
	assert_buf(&b, "abc", 3);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),           cmocka_unit_test(test_append_to_max),
	    cmocka_unit_test(test_append_over_max), cmocka_unit_test(test_max_zero),
	    cmocka_unit_test(test_binary),          cmocka_unit_test(test_growth),
	    cmocka_unit_test(test_printf),          cmocka_unit_test(test_mixed),
	    cmocka_unit_test(test_put_u64),         cmocka_unit_test(test_consume),
	    cmocka_unit_test(test_reset_and_reuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
