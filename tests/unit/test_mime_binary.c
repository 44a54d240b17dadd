/* Unit tests for mime/mime_binary: a binary leaf part becomes base64 with its CTE field
 * replaced (continuation lines included), other parts and the multipart frame stay byte for
 * byte, nested messages are followed, a message without binary parts is unchanged, and the
 * base64 decodes back to the original octets (NUL, bare LF). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/buf.h"
#include "mime/mime_binary.h"
#include "core/banned.h"

static void collect(void *ctx, const void *data, size_t len)
{
	assert_int_equal(buf_append(ctx, data, len), 0);
}

static size_t convert(const char *msg, size_t len, struct buf *out)
{
	buf_init(out, 1 << 20);
	size_t n = mime_binary_convert((const unsigned char *)msg, len, collect, out);
	assert_int_equal(mime_binary_count((const unsigned char *)msg, len), n);
	return n;
}

static void test_single_part(void **state)
{
	(void)state;
	static const char msg[] = "From: a@b.c\r\nMime-Version: 1.0\r\n"
	                          "Content-Transfer-Encoding:\r\n binary\r\n"
	                          "Content-Type: application/octet-stream\r\n\r\n"
	                          "\0-\xe4\n\r\n";
	struct buf out;
	assert_int_equal(convert(msg, sizeof(msg) - 1, &out), 1);
	/* "\0-\xe4\n\r\n" is AC3kCg0K in base64 */
	assert_string_equal(buf_cstr(&out), "From: a@b.c\r\nMime-Version: 1.0\r\n"
	                                    "Content-Transfer-Encoding: base64\r\n"
	                                    "Content-Type: application/octet-stream\r\n\r\n"
	                                    "AC3kCg0K");
	buf_free(&out);
}

static void test_multipart(void **state)
{
	(void)state;
	char big[200];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)i;
	struct buf msg;
	buf_init(&msg, 1 << 16);
	assert_int_equal(buf_puts(&msg,
	                          "Mime-Version: 1.0\r\nContent-Type: multipart/mixed; "
	                          "boundary=X\r\n\r\npre\r\n--X\r\nContent-Type: text/plain\r\n"
	                          "\r\nkeep\nme\r\n--X\r\nContent-Transfer-Encoding: BINARY\r\n"
	                          "\r\n"),
	                 0);
	assert_int_equal(buf_append(&msg, big, sizeof(big)), 0);
	assert_int_equal(buf_puts(&msg, "\r\n--X--\r\nepilogue\r\n"), 0);
	struct buf out;
	assert_int_equal(convert(msg.data, msg.len, &out), 1);
	const char *o = buf_cstr(&out);
	/* the frame and the text part are untouched */
	assert_non_null(strstr(o,
	                       "pre\r\n--X\r\nContent-Type: text/plain\r\n\r\nkeep\nme\r\n--X\r\n"
	                       "Content-Transfer-Encoding: base64\r\n\r\n"));
	assert_non_null(strstr(o, "\r\n--X--\r\nepilogue\r\n"));
	/* 200 octets: lines of 76 characters (57 octets), the last one shorter */
	const char *b64 = strstr(o, "base64\r\n\r\n") + 10;
	const char *end = strstr(b64, "\r\n--X--");
	assert_int_equal(end - b64, 76 + 2 + 76 + 2 + 76 + 2 + 40);
	assert_memory_equal(b64,
	                    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v"
	                    "MDEyMzQ1Njc4\r\n",
	                    78);
	buf_free(&out);
	buf_free(&msg);
}

static void test_unchanged(void **state)
{
	(void)state;
	static const char msg[] =
	    "Subject: x\r\nContent-Transfer-Encoding: binary\r\n\r\nnot mime\r\n";
	struct buf out;
	/* without MIME-Version or Content-Type the CTE field is not honoured (as Dovecot) */
	assert_int_equal(convert(msg, sizeof(msg) - 1, &out), 0);
	assert_int_equal(out.len, sizeof(msg) - 1);
	assert_memory_equal(out.data, msg, sizeof(msg) - 1);
	buf_free(&out);
	static const char b64[] =
	    "Mime-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n";
	assert_int_equal(convert(b64, sizeof(b64) - 1, &out), 0);
	assert_string_equal(buf_cstr(&out), b64);
	buf_free(&out);
}

static void test_nested_message(void **state)
{
	(void)state;
	static const char msg[] =
	    "Mime-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n"
	    "Content-Type: application/x\r\nContent-Transfer-Encoding: binary\r\n"
	    "\r\n\xff\xfe";
	struct buf out;
	assert_int_equal(convert(msg, sizeof(msg) - 1, &out), 1);
	assert_string_equal(buf_cstr(&out),
	                    "Mime-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n"
	                    "Content-Type: application/x\r\n"
	                    "Content-Transfer-Encoding: base64\r\n\r\n//4=");
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_single_part),
	    cmocka_unit_test(test_multipart),
	    cmocka_unit_test(test_unchanged),
	    cmocka_unit_test(test_nested_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
