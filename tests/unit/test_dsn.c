/* Unit tests for smtp/dsn: the report's header and three parts, the kind chosen from the
 * recipients' actions, RET and the size limit deciding between the whole original and its
 * header, RFC 6533 types for UTF-8 mail, xtext decoded, and remote text that cannot break
 * out of its field. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "smtp/dsn.h"
#include "core/banned.h"

static const char ORIGINAL[] = "From: <alice@example.test>\r\nSubject: hello\r\n\r\nthe body\r\n";
#define T0 1765000000 /* a Saturday, 06 Dec 2025 */

static struct dsn_recipient failed_rcpt(void)
{
	return (struct dsn_recipient){.address = "bob@remote.test",
	                              .action = DSN_ACTION_FAILED,
	                              .status = "5.1.1",
	                              .remote_mta = "mx.remote.test",
	                              .diagnostic = "550 5.1.1 <bob@remote.test>: no such user",
	                              .last_attempt = T0 + 60};
}

static struct dsn_report report(const struct dsn_recipient *rcpts, size_t n)
{
	return (struct dsn_report){.reporting_mta = "mx.example.test",
	                           .sender = "alice@example.test",
	                           .arrival = T0,
	                           .now = T0 + 120,
	                           .rcpts = rcpts,
	                           .rcpt_count = n,
	                           .original = (const unsigned char *)ORIGINAL,
	                           .original_len = sizeof(ORIGINAL) - 1,
	                           .unique = "q42"};
}

static char *build(const struct dsn_report *r, struct buf *b)
{
	buf_init(b, 1 << 20);
	assert_int_equal(dsn_build(r, b), 0);
	return b->data;
}

static void test_failure_report(void **state)
{
	(void)state;
	struct dsn_recipient rc = failed_rcpt();
	struct dsn_report r = report(&rc, 1);
	struct buf b;
	const char *m = build(&r, &b);
	assert_non_null(
	    strstr(m, "From: Mail Delivery System <MAILER-DAEMON@mx.example.test>\r\n"));
	assert_non_null(strstr(m, "To: <alice@example.test>\r\n"));
	assert_non_null(strstr(m, "Subject: Undelivered Mail Returned to Sender\r\n"));
	assert_non_null(strstr(m, "Auto-Submitted: auto-replied\r\n"));
	assert_non_null(strstr(m, "multipart/report; report-type=delivery-status;"));
	assert_non_null(strstr(m, "Content-Type: message/delivery-status\r\n"));
	assert_non_null(strstr(m, "Reporting-MTA: dns; mx.example.test\r\n"));
	assert_non_null(strstr(m, "Arrival-Date: Sat, 06 Dec 2025 05:46:40 +0000\r\n"));
	assert_non_null(
	    strstr(m, "Final-Recipient: rfc822; bob@remote.test\r\n"
	              "Action: failed\r\nStatus: 5.1.1\r\n"
	              "Remote-MTA: dns; mx.remote.test\r\n"
	              "Diagnostic-Code: smtp; 550 5.1.1 <bob@remote.test>: no such user\r\n"
	              "Last-Attempt-Date: Sat, 06 Dec 2025 05:47:40 +0000\r\n"));
	assert_null(strstr(m, "Will-Retry-Until"));
	/* A failure carries the whole original as message/rfc822. */
	assert_non_null(strstr(m, "Content-Type: message/rfc822\r\n"));
	assert_non_null(strstr(m, ORIGINAL));
	/* Every part starts with the boundary, and the last one closes it. */
	const char *bstart = strstr(m, "boundary=\"") + 10;
	size_t blen = (size_t)(strchr(bstart, '"') - bstart);
	char close[256];
	assert_true(blen + 6 < sizeof(close));
	close[0] = close[1] = '-';
	memcpy(close + 2, bstart, blen);
	memcpy(close + 2 + blen, "--\r\n", 5);
	assert_non_null(strstr(m, close));
	assert_int_equal(strcmp(m + b.len - strlen(close), close), 0);
	buf_free(&b);
}

static void test_kind_from_actions(void **state)
{
	(void)state;
	struct dsn_recipient rcpts[2] = {failed_rcpt(), failed_rcpt()};
	rcpts[0].action = DSN_ACTION_DELAYED;
	rcpts[0].status = "4.4.1";
	rcpts[0].retry_until = T0 + 5 * 86400;
	rcpts[1].action = DSN_ACTION_DELAYED;
	struct dsn_report r = report(rcpts, 2);
	struct buf b;
	const char *m = build(&r, &b);
	assert_non_null(strstr(m, "Subject: Delayed Mail (still being retried)\r\n"));
	assert_non_null(strstr(m, "Action: delayed\r\nStatus: 4.4.1\r\n"));
	assert_non_null(strstr(m, "Will-Retry-Until: Thu, 11 Dec 2025 05:46:40 +0000\r\n"));
	/* A delay warning carries the header only. */
	assert_non_null(strstr(m, "Content-Type: text/rfc822-headers\r\n"));
	assert_null(strstr(m, "the body"));
	buf_free(&b);

	rcpts[1].action = DSN_ACTION_FAILED; /* mixed: the report is a failure */
	m = build(&r, &b);
	assert_non_null(strstr(m, "Subject: Undelivered Mail Returned to Sender\r\n"));
	buf_free(&b);

	rcpts[0].action = rcpts[1].action = DSN_ACTION_DELIVERED;
	m = build(&r, &b);
	assert_non_null(strstr(m, "Subject: Successful Mail Delivery Report\r\n"));
	assert_non_null(strstr(m, "Action: delivered\r\n"));
	assert_null(strstr(m, "the body"));
	buf_free(&b);
}

static void test_ret_and_limit(void **state)
{
	(void)state;
	struct dsn_recipient rc = failed_rcpt();
	struct dsn_report r = report(&rc, 1);
	r.ret = DSN_RET_HDRS;
	struct buf b;
	const char *m = build(&r, &b);
	assert_non_null(strstr(m, "Content-Type: text/rfc822-headers\r\n"));
	assert_non_null(strstr(m, "Subject: hello\r\n\r\n"));
	assert_null(strstr(m, "the body"));
	buf_free(&b);

	r.ret = DSN_RET_FULL;
	r.full_limit = 10; /* smaller than the original */
	m = build(&r, &b);
	assert_null(strstr(m, "the body"));
	buf_free(&b);

	r.original = NULL; /* no original: no third part */
	m = build(&r, &b);
	assert_null(strstr(m, "rfc822-headers"));
	assert_null(strstr(m, "message/rfc822"));
	buf_free(&b);
}

static void test_utf8_and_xtext(void **state)
{
	(void)state;
	struct dsn_recipient rc = failed_rcpt();
	rc.address = "j\xc3\xb6rg@remote.test";
	rc.orcpt = "rfc822;j+C3+B6rg@remote.test";
	struct dsn_report r = report(&rc, 1);
	r.envid = "QQ+2B1";
	struct buf b;
	const char *m = build(&r, &b);
	/* Not SMTPUTF8: 8-bit octets are not sent raw in an ASCII report. */
	assert_non_null(strstr(m, "Final-Recipient: rfc822; j??rg@remote.test\r\n"));
	assert_non_null(strstr(m, "Original-Recipient: rfc822;j??rg@remote.test\r\n"));
	assert_non_null(strstr(m, "Original-Envelope-Id: QQ+1\r\n"));
	buf_free(&b);

	r.utf8 = true;
	m = build(&r, &b);
	assert_non_null(strstr(m, "Content-Type: message/global-delivery-status\r\n"));
	assert_non_null(strstr(m, "Final-Recipient: utf-8; j\xc3\xb6rg@remote.test\r\n"));
	assert_non_null(strstr(m, "Original-Recipient: rfc822;j\xc3\xb6rg@remote.test\r\n"));
	assert_non_null(strstr(m, "Content-Type: message/global\r\n"));
	buf_free(&b);
}

static void test_hostile_remote_text(void **state)
{
	(void)state;
	struct dsn_recipient rc = failed_rcpt();
	rc.diagnostic = "550 no\r\nBcc: victim@example.test\r\n\r\nhi";
	struct dsn_report r = report(&rc, 1);
	struct buf b;
	const char *m = build(&r, &b);
	assert_null(strstr(m, "\r\nBcc:"));
	assert_non_null(
	    strstr(m, "Diagnostic-Code: smtp; 550 no  Bcc: victim@example.test    hi\r\n"));
	buf_free(&b);
}

static void test_limits(void **state)
{
	(void)state;
	struct dsn_recipient rc = failed_rcpt();
	struct dsn_report r = report(&rc, 0);
	struct buf b;
	buf_init(&b, 1 << 20);
	assert_int_equal(dsn_build(&r, &b), -1); /* nobody to report on */
	buf_free(&b);
	r.rcpt_count = 1;
	buf_init(&b, 200);
	assert_int_equal(dsn_build(&r, &b), -1); /* the buffer's maximum */
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_failure_report),      cmocka_unit_test(test_kind_from_actions),
	    cmocka_unit_test(test_ret_and_limit),       cmocka_unit_test(test_utf8_and_xtext),
	    cmocka_unit_test(test_hostile_remote_text), cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
