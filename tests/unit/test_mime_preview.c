/* Unit tests for mime/mime_preview (RFC 8970 PREVIEW text): which part is used (the first
 * text/plain that is no attachment, else text/html; never inside an attached message),
 * transfer encodings and charsets, HTML tags, comments, <script>/<style>/<head> and
 * character references, white space and control characters, invalid UTF-8, and the cut at
 * 256 characters (not octets). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/utf8.h"
#include "core/xmalloc.h"
#include "mime/mime.h"
#include "mime/mime_preview.h"
#include "core/banned.h"

/* The preview of a whole message (parsed here); in a arena freed by the caller. */
static const char *preview(struct arena *a, const char *m)
{
	struct mime_part *root;
	struct mime_limits limits = {0};
	assert_true(mime_parse(a, (const unsigned char *)m, strlen(m), &limits, &root) >= -1);
	const char *p = mime_preview(a, (const unsigned char *)m, strlen(m), root);
	assert_true(utf8_valid(p));
	return p;
}

static void expect(const char *m, const char *want)
{
	struct arena *a = arena_new(4096);
	assert_string_equal(preview(a, m), want);
	arena_free(&a);
}

static void expect_text(const char *s, int html, const char *want)
{
	struct arena *a = arena_new(4096);
	const char *p = mime_preview_text(a, s, strlen(s), html);
	assert_true(utf8_valid(p));
	assert_string_equal(p, want);
	arena_free(&a);
}

static void test_plain_whitespace(void **state)
{
	(void)state;
	expect("Subject: x\r\n\r\n  Hello,\r\n\r\n\tworld  \r\n", "Hello, world");
	expect("Subject: x\r\n\r\n", "");
	expect("Subject: x\r\n", "");
	expect("", "");
	/* NBSP (U+00A0), C0 and C1 controls, NUL and DEL are white space here. */
	expect_text("a\xc2\xa0\xc2\xa0"
	            "b\x01\x7f"
	            "c\x00"
	            "d",
	            0, "a b c");
	expect_text("a\xc2\x85"
	            "b",
	            0, "a b");
}

static void test_encodings_and_charsets(void **state)
{
	(void)state;
	expect("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
	       "Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 =\r\nnoir\r\n",
	       "Caf\xc3\xa9 noir");
	expect("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
	       "Content-Transfer-Encoding: base64\r\n\r\nw6TDtsO8IMOfIOKCrA==\r\n",
	       "\xc3\xa4\xc3\xb6\xc3\xbc \xc3\x9f \xe2\x82\xac");
	expect("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n"
	       "Gr\xfc\xdf"
	       "e\r\n",
	       "Gr\xc3\xbc\xc3\x9f"
	       "e");
	/* An unknown transfer encoding: the octets as they are. */
	expect("MIME-Version: 1.0\r\nContent-Transfer-Encoding: x-unknown\r\n\r\nraw text\r\n",
	       "raw text");
}

static void test_invalid_utf8(void **state)
{
	(void)state;
	/* A lone continuation, an overlong, a surrogate, a cut sequence, beyond U+10FFFF. */
	expect_text("a\x80"
	            "b",
	            0,
	            "a\xef\xbf\xbd"
	            "b");
	expect_text("\xc0\xaf", 0, "\xef\xbf\xbd\xef\xbf\xbd");
	expect_text("\xed\xa0\x80", 0, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	expect_text("x\xe2\x82", 0, "x\xef\xbf\xbd\xef\xbf\xbd");
	expect_text("\xf4\x90\x80\x80", 0, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	expect_text("\xf0\x9f\x98\x80 ok", 0, "\xf0\x9f\x98\x80 ok");
}

static void test_html(void **state)
{
	(void)state;
	expect_text("<html><head><title>T</title></head><body><p>One</p><p>two<br>three</p>"
	            "</body></html>",
	            1, "One two three");
	expect_text("a<script type=x>if (a < b) {}</script>b<STYLE>p{}</STYLE>c<!-- <p>x -->d", 1,
	            "a b c d");
	expect_text("&amp;&lt;&gt;&quot;&apos;&nbsp;x&#65;&#x42;&#X43;", 1, "&<>\"' xABC");
	/* Unknown or broken references stay as text; bad code points become U+FFFD. */
	expect_text("&bogus; &amp &#12 &#;", 1, "&bogus; &amp &#12 &#;");
	expect_text("&#0;&#x110000;&#xD800;", 1, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	/* Unterminated markup eats the rest; text/plain keeps tags as text. */
	expect_text("before<p class=", 1, "before");
	expect_text("before<!-- never closed", 1, "before");
	expect_text("a<script>no end", 1, "a");
	expect_text("<b>x</b>", 0, "<b>x</b>");
}

static void test_part_choice(void **state)
{
	(void)state;
	/* text/plain first even after text/html (multipart/alternative order). */
	expect("MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
	       "--b\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n"
	       "--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n--b--\r\n",
	       "plain");
	/* An attachment is skipped; then the HTML part. */
	expect("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
	       "--b\r\nContent-Type: text/plain\r\nContent-Disposition: ATTACHMENT\r\n\r\nno\r\n"
	       "--b\r\nContent-Type: text/html\r\n\r\n<i>yes</i>\r\n--b--\r\n",
	       "yes");
	/* Nothing from inside an attached message, nor from non-text parts. */
	expect("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
	       "--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ninner\r\n"
	       "--b\r\nContent-Type: image/png\r\n\r\nPNG\r\n--b--\r\n",
	       "");
	/* Nested multiparts are searched in order. */
	expect("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
	       "--o\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n"
	       "--i\r\nContent-Type: text/plain\r\n\r\ndeep\r\n--i--\r\n--o--\r\n",
	       "deep");
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

static void test_cut(void **state)
{
	(void)state;
	struct arena *a = arena_new(4096);
	char s[2048];
	/* 300 two-octet characters: 256 characters (512 octets), not 256 octets. */
	for (size_t i = 0; i < 300; i++)
		memcpy(s + 2 * i, "\xc3\xa9", 2);
	const char *p = mime_preview_text(a, s, 600, 0);
	assert_int_equal(utf8_chars(p), MIME_PREVIEW_CHARS);
	assert_int_equal(strlen(p), 2 * MIME_PREVIEW_CHARS);
	/* A cut right after a space leaves no space at the end. */
	memset(s, 'x', 255);
	memcpy(s + 255, "   yyyy", 7);
	p = mime_preview_text(a, s, 262, 0);
	assert_int_equal(strlen(p), 255);
	assert_int_equal(p[254], 'x');
	/* A long run of white space is one space. */
	memset(s, ' ', 1500);
	memcpy(s + 1500, "z", 1);
	s[0] = 'a';
	p = mime_preview_text(a, s, 1501, 0);
	assert_string_equal(p, "a z");
	arena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_whitespace), cmocka_unit_test(test_encodings_and_charsets),
	    cmocka_unit_test(test_invalid_utf8),     cmocka_unit_test(test_html),
	    cmocka_unit_test(test_part_choice),      cmocka_unit_test(test_cut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
