/* Unit tests for core/base64: RFC 4648 §10 vectors both ways, and every way the strict
 * decoder must refuse input (alphabet, padding, length, leftover bits, small buffer). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/banned.h"

static const struct {
	const char *plain;
	const char *encoded;
} vectors[] = {
    /* RFC 4648 §10 */
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void test_encode_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const char *p = vectors[i].plain;
		char *enc = base64_encode_dup((const unsigned char *)p, strlen(p));
		assert_string_equal(enc, vectors[i].encoded);
		assert_int_equal(strlen(enc), base64_encoded_len(strlen(p)));
		free(enc);
	}
}

static void test_decode_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const char *e = vectors[i].encoded;
		unsigned char out[16];
		ssize_t n = base64_decode(e, strlen(e), out, sizeof(out));
		assert_int_equal(n, strlen(vectors[i].plain));
		assert_memory_equal(out, vectors[i].plain, (size_t)n);
	}
}

static void test_binary_roundtrip(void **state)
{
	(void)state;
	unsigned char data[256], out[256];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(255 - i);
	for (size_t len = 0; len <= sizeof(data); len += 37) {
		char *enc = base64_encode_dup(data, len);
		ssize_t n = base64_decode(enc, strlen(enc), out, sizeof(out));
		assert_int_equal(n, len);
		assert_memory_equal(out, data, len);
		free(enc);
	}
	/* "+" and "/" are the last two characters of the alphabet. */
	const unsigned char hi[3] = {0xfb, 0xff, 0xff};
	char *enc = base64_encode_dup(hi, 3);
	assert_string_equal(enc, "+///");
	free(enc);
}

static void assert_refused(const char *in)
{
	unsigned char out[64];
	assert_int_equal(base64_decode(in, strlen(in), out, sizeof(out)), -1);
}

static void test_bad_chars(void **state)
{
	(void)state;
	assert_refused("Zm9v!A==");
	assert_refused("Zm9-"); /* base64url alphabet is not accepted */
	assert_refused("Zm9_");
	assert_refused("Zm 9v"); /* no whitespace */
	assert_refused("Zm9v\r\n");
	assert_refused("Zm9\x80");
	const char nul[] = {'Z', 'm', '\0', 'v'};
	unsigned char out[8];
	assert_int_equal(base64_decode(nul, 4, out, sizeof(out)), -1);
}

static void test_bad_padding(void **state)
{
	(void)state;
	assert_refused("Zg");  /* padding missing */
	assert_refused("Zg="); /* length not a multiple of 4 */
	assert_refused("Zg===");
	assert_refused("Z==="); /* at most two '=' */
	assert_refused("====");
	assert_refused("Zm=v");     /* '=' followed by data */
	assert_refused("Zg==Zm9v"); /* data after padding */
	assert_refused("Zm9v=");
	assert_refused("Zh=="); /* leftover bits not zero (RFC 4648 §3.5) */
	assert_refused("Zm9=");
	assert_refused("A");
}

static void test_output_too_small(void **state)
{
	(void)state;
	unsigned char out[6];
	assert_int_equal(base64_decode("Zm9vYmFy", 8, out, 5), -1);
	assert_int_equal(base64_decode("Zm9vYmFy", 8, out, 6), 6);
	assert_int_equal(base64_decode("Zm9vYg==", 8, out, 3), -1);
	assert_int_equal(base64_decode("Zm9vYg==", 8, out, 4), 4);
	assert_int_equal(base64_decode("Zm8=", 4, out, 1), -1);
	assert_int_equal(base64_decode("Zm8=", 4, out, 2), 2);
	assert_int_equal(base64_decode("", 0, NULL, 0), 0);
	assert_int_equal(base64_decoded_max(8), 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encode_vectors),   cmocka_unit_test(test_decode_vectors),
	    cmocka_unit_test(test_binary_roundtrip), cmocka_unit_test(test_bad_chars),
	    cmocka_unit_test(test_bad_padding),      cmocka_unit_test(test_output_too_small),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
