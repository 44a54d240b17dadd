/* Unit tests for smtp/report_mail: the whole mail of a report, byte for byte (the head,
 * the optional -Domain/-Submitter fields, the text and attachment parts, base64 in lines of
 * 76), and a full buffer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "smtp/report_mail.h"
#include "core/banned.h"

static const unsigned char gz[60] = {0x1f, 0x8b};

static struct report_mail mail(void)
{
	return (struct report_mail){.from = "postmaster@mx.example.org",
	                            .to = "r@example.com",
	                            .domain = "example.com",
	                            .submitter = "mx.example.org",
	                            .report_id = "id@mx.example.org",
	                            .now = 86400 + 61,
	                            .type = "multipart/mixed",
	                            .boundary = "B",
	                            .what = "a report",
	                            .part_type = "application/gzip",
	                            .filename = "f.gz",
	                            .gz = gz,
	                            .gz_len = sizeof(gz)};
}

static void test_whole(void **state)
{
	(void)state;
	struct report_mail m = mail();
	m.field_prefix = "X-Report";
	struct buf b;
	buf_init(&b, 65536);
	assert_int_equal(report_mail_build(&m, &b), 0);
	assert_string_equal(
	    buf_cstr(&b), "From: <postmaster@mx.example.org>\r\n"
	                  "To: <r@example.com>\r\n"
	                  "Date: Fri, 02 Jan 1970 00:01:01 +0000\r\n"
	                  "Subject: Report Domain: example.com Submitter: mx.example.org "
	                  "Report-ID: <id@mx.example.org>\r\n"
	                  "Message-ID: <id@mx.example.org>\r\n"
	                  "X-Report-Domain: example.com\r\n"
	                  "X-Report-Submitter: mx.example.org\r\n"
	                  "Auto-Submitted: auto-generated\r\n"
	                  "MIME-Version: 1.0\r\n"
	                  "Content-Type: multipart/mixed;\r\n"
	                  "\tboundary=\"B\"\r\n"
	                  "\r\n"
	                  "This is a multipart message in MIME format.\r\n"
	                  "\r\n"
	                  "--B\r\n"
	                  "Content-Type: text/plain; charset=\"us-ascii\"\r\n"
	                  "Content-Transfer-Encoding: 7bit\r\n"
	                  "\r\n"
	                  "This is a report from mx.example.org about example.com.\r\n"
	                  "\r\n"
	                  "--B\r\n"
	                  "Content-Type: application/gzip\r\n"
	                  "Content-Transfer-Encoding: base64\r\n"
	                  "Content-Disposition: attachment;\r\n"
	                  "\tfilename=\"f.gz\"\r\n"
	                  "\r\n"
	                  "H4sAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	                  "AAAA\r\n"
	                  "AAAA\r\n"
	                  "\r\n"
	                  "--B--\r\n");
	buf_free(&b);
}

static void test_no_fields_and_full(void **state)
{
	(void)state;
	struct report_mail m = mail();
	struct buf b;
	buf_init(&b, 65536);
	assert_int_equal(report_mail_build(&m, &b), 0);
	assert_null(strstr(buf_cstr(&b), "-Domain:"));
	size_t len = b.len;
	buf_free(&b);
	for (size_t max = 0; max < len; max += 37) {
		buf_init(&b, max);
		assert_int_equal(report_mail_build(&m, &b), -1);
		buf_free(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_whole),
	    cmocka_unit_test(test_no_fields_and_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
