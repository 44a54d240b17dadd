/* Unit tests for mime/mime_decode: base64 and quoted-printable decoding of MIME bodies,
 * including the tolerant cases (whitespace, padding, garbage, bad escapes) and the choice of
 * decoder by Content-Transfer-Encoding. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "mime/mime_decode.h"
#include "core/banned.h"

static size_t b64(const char *in, unsigned char *out)
{
	size_t len = strlen(in);
	size_t n = mime_decode_base64((const unsigned char *)in, len, out);
	assert_true(n <= MIME_DECODE_MAX_OUT(len));
	return n;
}

static size_t qp(const char *in, unsigned char *out)
{
	size_t len = strlen(in);
	size_t n = mime_decode_qp((const unsigned char *)in, len, out);
	assert_true(n <= len);
	return n;
}

static void test_base64_plain(void **state)
{
	(void)state;
	unsigned char out[64];
	assert_int_equal(b64("aGVsbG8gd29ybGQ=", out), 11);
	assert_memory_equal(out, "hello world", 11);
	assert_int_equal(b64("", out), 0);
	assert_int_equal(b64("AA==", out), 1);
	assert_int_equal(out[0], 0);
	assert_int_equal(b64("AAEC/w==", out), 4);
	assert_memory_equal(out, "\x00\x01\x02\xff", 4);
}

static void test_base64_whitespace(void **state)
{
	(void)state;
	unsigned char out[64];
	assert_int_equal(b64("aGVs\r\nbG8g\n d29y\tbGQ=\r\n", out), 11);
	assert_memory_equal(out, "hello world", 11);
}

static void test_base64_stops(void **state)
{
	(void)state;
	unsigned char out[64];
	/* Padding ends the data, even if more follows. */
	assert_int_equal(b64("aGk=aGk=", out), 2);
	assert_memory_equal(out, "hi", 2);
	/* Octets outside the alphabet are ignored (RFC 2045 §6.8), not the end. */
	assert_int_equal(b64("aGVs*bG8g!d29y\x80"
	                     "bGQ=",
	                     out),
	                 11);
	assert_memory_equal(out, "hello world", 11);
	assert_int_equal(b64("-_.aGk", out), 2);
	assert_memory_equal(out, "hi", 2);
	/* Unpadded tails: 3 chars -> 2 octets, 2 -> 1, 1 -> 0. */
	assert_int_equal(b64("aGVsbG8", out), 5);
	assert_int_equal(b64("aGk", out), 2);
	assert_int_equal(b64("aG", out), 1);
	assert_int_equal(b64("a", out), 0);
}

static void test_qp_plain(void **state)
{
	(void)state;
	unsigned char out[128];
	size_t n = qp("caf=C3=A9 =3D ok\r\n", out);
	assert_int_equal(n, 12);
	assert_memory_equal(out, "caf\xc3\xa9 = ok\r\n", 12);
	n = qp("lower =c3=a9", out);
	assert_int_equal(n, 8);
	assert_memory_equal(out, "lower \xc3\xa9", 8);
	assert_int_equal(qp("", out), 0);
	n = qp("=00", out);
	assert_int_equal(n, 1);
	assert_int_equal(out[0], 0);
}

static void test_qp_soft_breaks(void **state)
{
	(void)state;
	unsigned char out[128];
	size_t n = qp("long=\r\nline=\nend", out);
	assert_int_equal(n, 11);
	assert_memory_equal(out, "longlineend", 11);
	/* Transport padding after the '=' of a soft break. */
	n = qp("ab= \t\r\ncd", out);
	assert_int_equal(n, 4);
	assert_memory_equal(out, "abcd", 4);
	/* Trailing whitespace before a hard break or at the end is removed. */
	n = qp("x  \r\ny \t", out);
	assert_int_equal(n, 4);
	assert_memory_equal(out, "x\r\ny", 4);
	n = qp("a b", out);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "a b", 3);
}

static void test_qp_bad_escapes(void **state)
{
	(void)state;
	unsigned char out[128];
	size_t n = qp("a=ZZb", out);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "a=ZZb", 5);
	n = qp("a=4", out);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "a=4", 3);
	n = qp("end=", out);
	assert_int_equal(n, 4);
	assert_memory_equal(out, "end=", 4);
	n = qp("=4x=41", out);
	assert_int_equal(n, 4);
	assert_memory_equal(out, "=4xA", 4);
}

/* Every split of the input into two feeds (and byte-by-byte feeding) decodes exactly as the
 * whole buffer does. */
static void check_splits(enum mime_encoding cte, const char *text)
{
	const unsigned char *in = (const unsigned char *)text;
	size_t len = strlen(text);
	unsigned char whole[1024], part[1024 + 2 * MIME_DECODER_OUT_MAX(0)];
	struct mime_decoder d;
	mime_decoder_init(&d, cte);
	size_t wn = mime_decoder_feed(&d, in, len, whole);
	wn += mime_decoder_finish(&d, whole + wn);
	size_t expect = cte == MIME_ENCODING_BASE64             ? mime_decode_base64(in, len, part)
	                : cte == MIME_ENCODING_QUOTED_PRINTABLE ? mime_decode_qp(in, len, part)
	                                                        : (memcpy(part, in, len), len);
	assert_int_equal(wn, expect);
	assert_memory_equal(whole, part, wn);
	for (size_t cut = 0; cut <= len; cut++) {
		mime_decoder_init(&d, cte);
		size_t n = mime_decoder_feed(&d, in, cut, part);
		n += mime_decoder_feed(&d, in + cut, len - cut, part + n);
		n += mime_decoder_finish(&d, part + n);
		assert_int_equal(n, wn);
		assert_memory_equal(part, whole, n);
	}
	mime_decoder_init(&d, cte);
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += mime_decoder_feed(&d, in + i, 1, part + n);
	n += mime_decoder_finish(&d, part + n);
	assert_int_equal(n, wn);
	assert_memory_equal(part, whole, n);
}

static void test_incremental(void **state)
{
	(void)state;
	static const char *const qps[] = {
	    "caf=C3=A9 =3D ok\r\n",
	    "long=\r\nline=\nend",
	    "ab= \t\r\ncd",
	    "x  \r\ny \t",
	    "a=ZZb",
	    "a=4",
	    "end=",
	    "=4x=41",
	    "a \rb",
	    "= \rx",
	    "=\rx",
	    "a=\r",
	    "t \r",
	    "soft= \t",
	    "=",
	    " ",
	    "\r",
	    "=4",
	    "x=4\r\n",
	    "_a_=5F",
	};
	for (size_t i = 0; i < sizeof(qps) / sizeof(qps[0]); i++)
		check_splits(MIME_ENCODING_QUOTED_PRINTABLE, qps[i]);
	static const char *const b64s[] = {
	    "aGVsbG8gd29ybGQ=",
	    "aGVs\r\nbG8g\n d29y\tbGQ=",
	    "aGk=aGk=",
	    "aGVs*bG8g!d29y",
	    "aG",
	    "a",
	    "",
	};
	for (size_t i = 0; i < sizeof(b64s) / sizeof(b64s[0]); i++)
		check_splits(MIME_ENCODING_BASE64, b64s[i]);
	check_splits(MIME_ENCODING_8BIT, "as =3D is");
}

/* A run of SP/HT longer than the decoder holds back goes through as it is (never more
 * memory than MIME_DECODER_HOLD); a shorter one before a break still vanishes. */
static void test_qp_long_whitespace(void **state)
{
	(void)state;
	char in[2 * MIME_DECODER_HOLD + 8];
	size_t k = 2 * MIME_DECODER_HOLD;
	in[0] = 'a';
	memset(in + 1, ' ', k);
	memcpy(in + 1 + k, "b\r\n", 4);
	unsigned char out[sizeof(in) + MIME_DECODER_OUT_MAX(0)];
	size_t n = mime_decode_qp((const unsigned char *)in, k + 4, out);
	assert_int_equal(n, k + 4);
	assert_memory_equal(out, in, n);
	unsigned char w[8];
	assert_int_equal(mime_decode_qp((const unsigned char *)"a \t \r\n", 6, w), 3);
	assert_memory_equal(w, "a\r\n", 3);
}

static void test_qword(void **state)
{
	(void)state;
	unsigned char out[32];
	size_t n = mime_decode_qword((const unsigned char *)"Caf=C3=A9_au_lait=5F", 20, out);
	assert_int_equal(n, 14);
	assert_memory_equal(out, "Caf\xc3\xa9 au lait_", 14);
}

static void test_body(void **state)
{
	(void)state;
	struct arena *a = arena_new(1024);
	const unsigned char *out;
	size_t n;
	const unsigned char raw[] = "raw\r\n";
	assert_int_equal(mime_decode_body(a, MIME_ENCODING_8BIT, raw, 5, &out, &n), 0);
	assert_ptr_equal(out, raw);
	assert_int_equal(n, 5);
	assert_int_equal(mime_decode_body(a, MIME_ENCODING_BINARY, raw, 5, &out, &n), 0);
	assert_int_equal(mime_decode_body(a, MIME_ENCODING_7BIT, raw, 5, &out, &n), 0);
	const unsigned char enc[] = "AAEC\r\n";
	assert_int_equal(mime_decode_body(a, MIME_ENCODING_BASE64, enc, 6, &out, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "\x00\x01\x02", 3);
	const unsigned char q[] = "x=3Dy";
	assert_int_equal(mime_decode_body(a, MIME_ENCODING_QUOTED_PRINTABLE, q, 5, &out, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "x=y", 3);
	assert_int_equal(mime_decode_body(a, MIME_ENCODING_OTHER, raw, 5, &out, &n), -1);
	assert_null(out);
	assert_int_equal(n, 0);
	assert_int_equal(mime_decode_body(a, MIME_ENCODING_BASE64, enc, 0, &out, &n), 0);
	assert_int_equal(n, 0);
	arena_free(&a);
}

/* Decode an unfolded header value; the result as a NUL-terminated string in a. */
static const char *words(struct arena *a, const char *v)
{
	size_t n;
	const char *out = mime_decode_words(a, v, strlen(v), &n);
	char *s = arena_strndup(a, out, n);
	assert_int_equal(strlen(s), n);
	return s;
}

static void test_words(void **state)
{
	(void)state;
	struct arena *a = arena_new(1024);
	/* plain text comes back as it is, the same pointer */
	const char *plain = "no words here = ? at all";
	size_t n;
	assert_ptr_equal(mime_decode_words(a, plain, strlen(plain), &n), plain);
	assert_int_equal(n, strlen(plain));
	assert_string_equal(words(a, "=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus?= K\xC3\xB6ln"),
	                    "Gr\xC3\xBC\xC3\x9F"
	                    "e aus K\xC3\xB6ln");
	assert_string_equal(words(a, "=?iso-8859-1?b?S/Zsbg==?="), "K\xC3\xB6ln");
	/* adjacent words: the white space between them goes (§6.2), also after unfolding */
	assert_string_equal(words(a, "=?utf-8?q?a?= =?utf-8?q?b?=\t =?utf-8?b?Yw==?= d"), "abc d");
	/* text between words keeps its white space */
	assert_string_equal(words(a, "x =?utf-8?q?a?= y =?utf-8?q?b?= z"), "x a y b z");
	/* a word directly followed by another, no space */
	assert_string_equal(words(a, "=?utf-8?q?a?==?utf-8?q?b?="), "ab");
	/* RFC 2231 §5 language suffix on the charset */
	assert_string_equal(words(a, "=?US-ASCII*EN?Q?Keith_Moore?="), "Keith Moore");
	/* KOI8-R through iconv; an unknown charset is taken as it is */
	assert_string_equal(words(a, "=?koi8-r?b?8NLJ18XU?="),
	                    "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82");
	assert_string_equal(words(a, "=?x-nonesuch?q?abc?="), "abc");
	/* not words: unknown encoding, white space inside, no end, empty charset */
	assert_string_equal(words(a, "=?utf-8?x?abc?= and =?utf-8?q?no end"),
	                    "=?utf-8?x?abc?= and =?utf-8?q?no end");
	assert_string_equal(words(a, "=??q?abc?= =?utf-8?q?a b?="), "=??q?abc?= =?utf-8?q?a b?=");
	/* a broken word before a good one: the white space stays */
	assert_string_equal(words(a, "=?utf-8?x?a?= =?utf-8?q?b?="), "=?utf-8?x?a?= b");
	arena_free(&a);
}

/* Many false starts ("=?a?q?x" repeated, no "?=" before the white space at the end): none
 * is a word, the value comes back unchanged. (The scan for a word's end is shared between
 * the starts, so this is linear, not quadratic, in the value's length.) */
static void test_words_false_starts(void **state)
{
	(void)state;
	struct arena *a = arena_new(1 << 20);
	size_t reps = 20000, len = 0;
	char *v = arena_alloc(a, reps * 7 + 64);
	for (size_t i = 0; i < reps; i++, len += 7)
		memcpy(v + len, "=?a?q?x", 7);
	memcpy(v + len, " =?utf-8?q?y?=", 14);
	len += 14;
	size_t n;
	const char *out = mime_decode_words(a, v, len, &n);
	assert_int_equal(n, reps * 7 + 2);
	assert_memory_equal(out, v, reps * 7 + 1);
	assert_int_equal(out[n - 1], 'y');
	arena_free(&a);
}

static void test_charset(void **state)
{
	(void)state;
	struct arena *a = arena_new(1024);
	size_t n;
	const unsigned char latin[] = "Gr\xFC\xDF";
	const char *u = mime_decode_charset(a, "ISO-8859-1", 10, latin, 4, &n);
	assert_int_equal(n, 6);
	assert_memory_equal(u, "Gr\xC3\xBC\xC3\x9F", 6);
	/* UTF-8, US-ASCII, no name and unknown names: the input itself */
	assert_ptr_equal(mime_decode_charset(a, "utf-8", 5, latin, 4, &n), latin);
	assert_ptr_equal(mime_decode_charset(a, "US-ASCII", 8, latin, 4, &n), latin);
	assert_ptr_equal(mime_decode_charset(a, "", 0, latin, 4, &n), latin);
	assert_ptr_equal(mime_decode_charset(a, "x-unknown", 9, latin, 4, &n), latin);
	assert_int_equal(n, 4);
	/* the name is not NUL-terminated and may carry a language */
	u = mime_decode_charset(a, "windows-1252*en;junk", 15, (const unsigned char *)"\x93q\x94",
	                        3, &n);
	assert_int_equal(n, 7);
	assert_memory_equal(u, "\xE2\x80\x9Cq\xE2\x80\x9D", 7);
	/* octets iconv cannot convert become U+FFFD, the rest is kept */
	u = mime_decode_charset(a, "utf-16le", 8, (const unsigned char *)"a\0b", 3, &n);
	assert_true(n >= 2);
	assert_memory_equal(u, "a", 1);
	u = mime_decode_charset(a, "shift_jis", 9, (const unsigned char *)"a\x81\xFFz", 4, &n);
	assert_non_null(memmem(u, n, "\xEF\xBF\xBD", 3));
	assert_int_equal(u[0], 'a');
	assert_int_equal(u[n - 1], 'z');
	arena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_base64_plain),
	    cmocka_unit_test(test_base64_whitespace),
	    cmocka_unit_test(test_base64_stops),
	    cmocka_unit_test(test_qp_plain),
	    cmocka_unit_test(test_qp_soft_breaks),
	    cmocka_unit_test(test_qp_bad_escapes),
	    cmocka_unit_test(test_body),
	    cmocka_unit_test(test_incremental),
	    cmocka_unit_test(test_qp_long_whitespace),
	    cmocka_unit_test(test_qword),
	    cmocka_unit_test(test_words),
	    cmocka_unit_test(test_words_false_starts),
	    cmocka_unit_test(test_charset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
