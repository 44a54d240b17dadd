/* Unit tests for smtp/smtp_reply: single and multi-line replies, enhanced status codes, the
 * errors (mixed codes, missing space, bad codes, overlong lines, too many lines), bare-LF
 * input as the connection hands it over, and the EHLO keywords. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_reply.h"
#include "core/banned.h"

/* Feed text (lines ending in LF, an optional CR before it is removed like conn does) and
 * return the last feed result; *lines_fed counts the lines. */
static int feed_text(struct smtp_reply_parser *p, const char *text, const char **error_r)
{
	int r = 0;
	const char *s = text;
	while (*s != '\0') {
		const char *nl = strchr(s, '\n');
		size_t n = nl != NULL ? (size_t)(nl - s) : strlen(s);
		size_t l = n > 0 && s[n - 1] == '\r' ? n - 1 : n;
		r = smtp_reply_parser_feed(p, s, l, error_r);
		if (r < 0)
			return r;
		s += n + (nl != NULL ? 1 : 0);
	}
	return r;
}

static void test_single_line(void **state)
{
	(void)state;
	struct smtp_reply_parser p;
	smtp_reply_parser_init(&p);
	const char *err = NULL;
	assert_int_equal(feed_text(&p, "250 2.1.0 Sender ok\r\n", &err), 1);
	assert_int_equal(p.reply.code, 250);
	assert_string_equal(p.reply.enhanced, "2.1.0");
	assert_string_equal(buf_cstr(&p.reply.text), "Sender ok");
	assert_int_equal(p.reply.lines, 1);
	/* no text at all: "354" alone is a valid reply (RFC 5321 §4.2) */
	assert_int_equal(feed_text(&p, "354\r\n", &err), 1);
	assert_int_equal(p.reply.code, 354);
	assert_string_equal(p.reply.enhanced, "");
	assert_string_equal(buf_cstr(&p.reply.text), "");
	smtp_reply_parser_deinit(&p);
}

static void test_multi_line(void **state)
{
	(void)state;
	struct smtp_reply_parser p;
	smtp_reply_parser_init(&p);
	const char *err = NULL;
	assert_int_equal(smtp_reply_parser_feed(&p, "550-5.1.1 No such user", 22, &err), 0);
	assert_int_equal(smtp_reply_parser_feed(&p, "550-5.1.1 here, try", 19, &err), 0);
	assert_int_equal(smtp_reply_parser_feed(&p, "550 another", 11, &err), 1);
	assert_int_equal(p.reply.code, 550);
	assert_string_equal(p.reply.enhanced, "5.1.1");
	assert_string_equal(buf_cstr(&p.reply.text), "No such user\nhere, try\nanother");
	assert_int_equal(p.reply.lines, 3);
	struct buf one;
	buf_init(&one, 1000);
	assert_string_equal(smtp_reply_oneline(&p.reply, &one), "No such user here, try another");
	buf_free(&one);
	/* the next reply starts afresh */
	assert_int_equal(feed_text(&p, "221 bye\n", &err), 1);
	assert_int_equal(p.reply.code, 221);
	assert_int_equal(p.reply.lines, 1);
	assert_string_equal(buf_cstr(&p.reply.text), "bye");
	smtp_reply_parser_deinit(&p);
}

static void test_enhanced_rules(void **state)
{
	(void)state;
	struct smtp_reply_parser p;
	smtp_reply_parser_init(&p);
	const char *err = NULL;
	/* class must match the code: a 2.x.x on a 550 is text */
	assert_int_equal(feed_text(&p, "550 2.0.0 odd\n", &err), 1);
	assert_string_equal(p.reply.enhanced, "");
	assert_string_equal(buf_cstr(&p.reply.text), "2.0.0 odd");
	/* not a status code: digits run on, too many digits, missing part */
	assert_int_equal(feed_text(&p, "451 4.7.1234 x\n", &err), 1);
	assert_string_equal(p.reply.enhanced, "");
	assert_int_equal(feed_text(&p, "451 4.7 x\n", &err), 1);
	assert_string_equal(p.reply.enhanced, "");
	assert_int_equal(feed_text(&p, "451 4.7.1x\n", &err), 1);
	assert_string_equal(p.reply.enhanced, "");
	/* at the end of the line */
	assert_int_equal(feed_text(&p, "452 4.5.3\n", &err), 1);
	assert_string_equal(p.reply.enhanced, "4.5.3");
	assert_string_equal(buf_cstr(&p.reply.text), "");
	/* 3-digit subject and detail */
	assert_int_equal(feed_text(&p, "554 5.123.456 big\n", &err), 1);
	assert_string_equal(p.reply.enhanced, "5.123.456");
	assert_string_equal(buf_cstr(&p.reply.text), "big");
	smtp_reply_parser_deinit(&p);
}

static void test_errors(void **state)
{
	(void)state;
	struct smtp_reply_parser p;
	smtp_reply_parser_init(&p);
	const char *err = NULL;
	/* mixed codes across lines */
	assert_int_equal(feed_text(&p, "250-a\n251 b\n", &err), -1);
	assert_string_equal(err, "multiline reply with different codes");
	/* after an error the parser starts afresh */
	assert_int_equal(feed_text(&p, "250 ok\n", &err), 1);
	assert_int_equal(p.reply.code, 250);
	/* missing space */
	assert_int_equal(feed_text(&p, "250ok\n", &err), -1);
	assert_int_equal(feed_text(&p, "250\tok\n", &err), -1);
	/* bad codes */
	assert_int_equal(feed_text(&p, "25 ok\n", &err), -1);
	assert_int_equal(feed_text(&p, "150 ok\n", &err), -1);
	assert_int_equal(feed_text(&p, "600 ok\n", &err), -1);
	assert_int_equal(feed_text(&p, "270 ok\n", &err), -1);
	assert_int_equal(feed_text(&p, "2a0 ok\n", &err), -1);
	assert_int_equal(feed_text(&p, "\n", &err), -1);
	assert_int_equal(feed_text(&p, "HELLO\n", &err), -1);
	smtp_reply_parser_deinit(&p);
}

static void test_line_limits(void **state)
{
	(void)state;
	struct smtp_reply_parser p;
	smtp_reply_parser_init(&p);
	const char *err = NULL;
	char *line = malloc(SMTP_REPLY_LINE_MAX + 10);
	assert_non_null(line);
	memcpy(line, "250 ", 4);
	/* a long line within the limit (longer than RFC 5321's 512) is accepted */
	memset(line + 4, 'x', 1500);
	assert_int_equal(smtp_reply_parser_feed(&p, line, 1504, &err), 1);
	assert_int_equal(p.reply.text.len, 1500);
	/* exactly at the limit (CRLF included) ok, one more refused */
	memset(line + 4, 'x', SMTP_REPLY_LINE_MAX);
	assert_int_equal(smtp_reply_parser_feed(&p, line, SMTP_REPLY_LINE_MAX - 2, &err), 1);
	assert_int_equal(smtp_reply_parser_feed(&p, line, SMTP_REPLY_LINE_MAX - 1, &err), -1);
	assert_string_equal(err, "reply line too long");
	/* too many lines */
	int r = 0;
	for (int i = 0; i < SMTP_REPLY_LINES_MAX && r == 0; i++)
		r = smtp_reply_parser_feed(&p, "250-more", 8, &err);
	assert_int_equal(r, 0);
	assert_int_equal(smtp_reply_parser_feed(&p, "250 last", 8, &err), -1);
	assert_string_equal(err, "reply has too many lines");
	/* the text is cut at SMTP_REPLY_TEXT_MAX, the reply still parses */
	memset(line + 4, 'y', 3000);
	memcpy(line, "250-", 4);
	for (int i = 0; i < 5; i++)
		assert_int_equal(smtp_reply_parser_feed(&p, line, 3004, &err), 0);
	assert_int_equal(smtp_reply_parser_feed(&p, "250 end", 7, &err), 1);
	assert_true(p.reply.text.len <= SMTP_REPLY_TEXT_MAX);
	assert_int_equal(p.reply.lines, 6);
	free(line);
	smtp_reply_parser_deinit(&p);
}

static void test_controls_and_bare_lf(void **state)
{
	(void)state;
	struct smtp_reply_parser p;
	smtp_reply_parser_init(&p);
	const char *err = NULL;
	/* bare LF line ends, as conn_read_line hands them over */
	assert_int_equal(feed_text(&p, "250-first\n250 second\n", &err), 1);
	assert_string_equal(buf_cstr(&p.reply.text), "first\nsecond");
	/* a CR or NUL inside the text never reaches a log line raw */
	assert_int_equal(smtp_reply_parser_feed(&p, "250 a\rb\0c\x1b", 10, &err), 1);
	assert_int_equal(p.reply.text.len, 6);
	assert_memory_equal(p.reply.text.data, "a?b?c?", 6);
	smtp_reply_parser_deinit(&p);
}

static void parse_ehlo(const char *text, struct smtp_ehlo *e)
{
	struct smtp_reply_parser p;
	smtp_reply_parser_init(&p);
	const char *err = NULL;
	assert_int_equal(feed_text(&p, text, &err), 1);
	smtp_reply_ehlo(&p.reply, e);
	smtp_reply_parser_deinit(&p);
}

static void test_ehlo_keywords(void **state)
{
	(void)state;
	struct smtp_ehlo e;
	parse_ehlo("250-mx.example.org greets you\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
	           "250-STARTTLS\r\n250-8BITMIME\r\n250-smtputf8\r\n250-CHUNKING\r\n250-DSN\r\n"
	           "250-ENHANCEDSTATUSCODES\r\n250-REQUIRETLS\r\n250-AUTH CRAM-MD5 login PLAIN\r\n"
	           "250 X-UNKNOWN foo\r\n",
	           &e);
	assert_true(e.pipelining && e.starttls && e.eightbitmime && e.smtputf8 && e.chunking &&
	            e.dsn && e.enhancedstatuscodes && e.requiretls && e.size);
	assert_int_equal(e.size_max, 10240000);
	assert_int_equal(e.auth, SMTP_EHLO_AUTH_PLAIN | SMTP_EHLO_AUTH_LOGIN);
	/* none: a one-line reply; the greeting line's words are not keywords */
	parse_ehlo("250 PIPELINING STARTTLS\r\n", &e);
	assert_false(e.pipelining || e.starttls || e.size);
	/* SIZE without a number, with garbage, with 0: announced without a limit */
	parse_ehlo("250-x\r\n250 SIZE\r\n", &e);
	assert_true(e.size);
	assert_int_equal(e.size_max, 0);
	parse_ehlo("250-x\r\n250 SIZE 12ab\r\n", &e);
	assert_true(e.size);
	assert_int_equal(e.size_max, 0);
	parse_ehlo("250-x\r\n250 SIZE 99999999999999999999999\r\n", &e);
	assert_int_equal(e.size_max, 0);
	/* keyword prefixes do not count; the old AUTH= form does */
	parse_ehlo("250-x\r\n250-PIPELININGX\r\n250-STARTTLSNOW\r\n250 AUTH=LOGIN\r\n", &e);
	assert_false(e.pipelining || e.starttls);
	assert_int_equal(e.auth, SMTP_EHLO_AUTH_LOGIN);
	/* an enhanced code in front of EHLO lines (some servers) does not hide keywords */
	parse_ehlo("250-2.0.0 x\r\n250-2.0.0 PIPELINING\r\n250 2.0.0 CHUNKING\r\n", &e);
	assert_true(e.pipelining && e.chunking);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_single_line),    cmocka_unit_test(test_multi_line),
	    cmocka_unit_test(test_enhanced_rules), cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_line_limits),    cmocka_unit_test(test_controls_and_bare_lf),
	    cmocka_unit_test(test_ehlo_keywords),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
