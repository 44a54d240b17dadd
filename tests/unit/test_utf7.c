/* Modified UTF-7 (RFC 3501 §5.1.3): round trips, the RFC's example, and rejected forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/utf7.h"

static void expect_from(const char *utf8, const char *want)
{
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(utf7_from_utf8(utf8, &b), 0);
	assert_string_equal(buf_cstr(&b), want);
	struct buf back;
	buf_init(&back, 4096);
	assert_int_equal(utf7_to_utf8(buf_cstr(&b), &back), 0);
	assert_string_equal(buf_cstr(&back), utf8);
	buf_free(&b);
	buf_free(&back);
}

static void expect_bad(const char *utf7)
{
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(utf7_to_utf8(utf7, &b), -1);
	buf_free(&b);
}

static void test_examples(void **state)
{
	(void)state;
	expect_from("INBOX", "INBOX");
	expect_from("a&b", "a&-b");
	expect_from("&", "&-");
	/* RFC 3501 §5.1.3: "~peter/mail/台北/日本語" */
	expect_from("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	            "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
	expect_from("Entw\xc3\xbcrfe", "Entw&APw-rfe");
	/* Outside the BMP: a surrogate pair (U+1F600). */
	expect_from("x\xf0\x9f\x98\x80y", "x&2D3eAA-y");
	expect_from("", "");
}

static void test_long_run(void **state)
{
	(void)state;
	char in[3 * 200 + 1];
	for (int i = 0; i < 200; i++)
		memcpy(in + 3 * i, "\xe6\x97\xa5", 3);
	in[600] = '\0';
	struct buf b, back;
	buf_init(&b, 8192);
	buf_init(&back, 8192);
	assert_int_equal(utf7_from_utf8(in, &b), 0);
	assert_int_equal(utf7_to_utf8(buf_cstr(&b), &back), 0);
	assert_string_equal(buf_cstr(&back), in);
	/* one shifted run, however long: no "-&" inside */
	assert_int_equal(buf_cstr(&b)[0], '&');
	assert_null(strchr(buf_cstr(&b) + 1, '&'));
	buf_free(&b);
	buf_free(&back);
}

/* A name that decodes encodes back to the same octets. */
static void test_round_trip(void **state)
{
	(void)state;
	static const char *const names[] = {
	    "&AOQ-&-", "a&-b",       "&AOQA5A-", "x&2D3eAA-y", "&U,BTFw-/&ZeVnLIqe-",
	    "&-&-",    "&AOQ-x&AOQ-"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct buf u, back;
		buf_init(&u, 1024);
		buf_init(&back, 1024);
		assert_int_equal(utf7_to_utf8(names[i], &u), 0);
		assert_int_equal(utf7_from_utf8(buf_cstr(&u), &back), 0);
		assert_string_equal(buf_cstr(&back), names[i]);
		buf_free(&u);
		buf_free(&back);
	}
}

static void test_rejected(void **state)
{
	(void)state;
	expect_bad("&U,BTFw");     /* unterminated */
	expect_bad("&AGE-");       /* encodes printable ASCII "a" */
	expect_bad("&AOQ-&AOQ-");  /* null shift: two runs where one is canonical */
	expect_bad("&AAA-");       /* U+0000 */
	expect_bad("&AOQ-&AOQ");   /* the same, unterminated */
	expect_bad("&2D0-");       /* lone high surrogate */
	expect_bad("&3gA-");       /* lone low surrogate */
	expect_bad("&U,BTF*-");    /* bad base64 character */
	expect_bad("caf\xc3\xa9"); /* raw 8-bit is not modified UTF-7 */
	expect_bad("&APy-x&APx-"); /* non-zero padding bits in the first run */
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(utf7_from_utf8("\xc3", &b), -1);         /* truncated UTF-8 */
	assert_int_equal(utf7_from_utf8("\xed\xa0\x80", &b), -1); /* encoded surrogate */
	assert_int_equal(utf7_from_utf8("\xc0\xaf", &b), -1);     /* overlong */
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_examples),
	    cmocka_unit_test(test_long_run),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
