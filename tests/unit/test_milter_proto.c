/* Unit tests for smtp/milter_proto: the MTA's packets byte for byte (length, command, data),
 * the filter's replies (every kind we accept, partial input, malformed and oversized ones,
 * strings without their NUL), reply codes, and header changes at end of message. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "smtp/milter_proto.h"
#include "core/banned.h"

static void test_packets(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1 << 20);
	assert_int_equal(milter_put_optneg(&b), 0);
	static const unsigned char optneg[] = {0, 0, 0, 13,   'O', 0,    0,    0,   6,
	                                       0, 0, 0, 0x31, 0,   0x0f, 0xf7, 0xff};
	assert_int_equal(b.len, sizeof(optneg));
	assert_memory_equal(b.data, optneg, sizeof(optneg));
	buf_reset(&b);
	assert_int_equal(milter_put_connect(&b, "mx.example", false, 2525, "192.0.2.1"), 0);
	static const char conn[] = "\0\0\0\x19"
	                           "Cmx.example\0"
	                           "4\x09\xdd"
	                           "192.0.2.1";
	assert_int_equal(b.len, sizeof(conn)); /* the last NUL is the string's own */
	assert_memory_equal(b.data, conn, sizeof(conn));
	buf_reset(&b);
	const char *mail[] = {"<a@example.org>", "SIZE=10"};
	assert_int_equal(milter_put_strings(&b, MILTER_CMD_MAIL, mail, 2), 0);
	assert_int_equal(b.len, 5 + 16 + 8);
	assert_memory_equal(b.data, "\0\0\0\x19M<a@example.org>\0SIZE=10\0", b.len);
	buf_reset(&b);
	assert_int_equal(milter_put(&b, MILTER_CMD_EOB, NULL, 0), 0);
	assert_memory_equal(b.data, "\0\0\0\1E", 5);
	/* A full buffer takes nothing. */
	struct buf small;
	buf_init(&small, 8);
	assert_int_equal(milter_put_strings(&small, MILTER_CMD_HELO, mail, 1), -1);
	assert_int_equal(small.len, 0);
	buf_free(&small);
	buf_free(&b);
}

static int parse(const char *bytes, size_t n, struct milter_reply *r, size_t *used)
{
	return milter_parse_reply((const unsigned char *)bytes, n, r, used);
}

static void test_replies(void **state)
{
	(void)state;
	struct milter_reply r;
	size_t used;
	assert_int_equal(parse("\0\0\0\1c\0\0\0\1a", 10, &r, &used), 1);
	assert_int_equal(r.cmd, 'c');
	assert_int_equal(used, 5);
	assert_int_equal(parse("\0\0\0", 3, &r, &used), 0);
	assert_int_equal(parse("\0\0\0\2h", 5, &r, &used), 0); /* one data octet to come */
	static const char opt[] = "\0\0\0\x0dO\0\0\0\6\0\0\0\x11\0\0\0\x40";
	assert_int_equal(parse(opt, sizeof(opt) - 1, &r, &used), 1);
	assert_int_equal(r.version, 6);
	assert_int_equal(r.actions, 0x11);
	assert_int_equal(r.protocol, 0x40);
	static const char add[] = "\0\0\0\x0chX-Spam\0yes\0";
	assert_int_equal(parse(add, sizeof(add) - 1, &r, &used), 1);
	assert_string_equal(r.name, "X-Spam");
	assert_string_equal(r.value, "yes");
	static const char chg[] = "\0\0\0\x0em\0\0\0\2Subject\0\0";
	assert_int_equal(parse(chg, sizeof(chg) - 1, &r, &used), 1);
	assert_int_equal(r.index, 2);
	assert_string_equal(r.value, "");
	static const char code[] = "\0\0\0\x10y550 5.7.1 spam\0";
	assert_int_equal(parse(code, sizeof(code) - 1, &r, &used), 1);
	assert_string_equal(r.text, "550 5.7.1 spam");
	/* Malformed: a zero or huge length, a string without its NUL, a header without a name,
	 * a reply we never offered (body replacement), a short OPTNEG. */
	assert_int_equal(parse("\0\0\0\0", 4, &r, &used), -1);
	assert_int_equal(parse("\0\1\0\1a", 5, &r, &used), -1);
	assert_int_equal(parse("\0\0\0\4hX\0y", 8, &r, &used), -1);
	assert_int_equal(parse("\0\0\0\4h\0y\0", 8, &r, &used), -1);
	assert_int_equal(parse("\0\0\0\2bx", 6, &r, &used), -1);
	assert_int_equal(parse("\0\0\0\5O\0\0\0\6", 9, &r, &used), -1);
	assert_int_equal(parse("\0\0\0\3i\0\0", 7, &r, &used), -1);
}

static void test_replycode(void **state)
{
	(void)state;
	assert_true(milter_replycode_ok("550 5.7.1 Rejected by policy"));
	assert_true(milter_replycode_ok("451 4.7.1 Try later"));
	assert_true(milter_replycode_ok("554"));
	assert_false(milter_replycode_ok("250 ok"));
	assert_false(milter_replycode_ok("55 x"));
	assert_false(milter_replycode_ok("550x"));
	assert_false(milter_replycode_ok("550 a\r\n250 b"));
}

static void apply_is(const char *hdr, const struct milter_edit *e, size_t n, const char *want)
{
	struct buf out;
	buf_init(&out, 1 << 16);
	assert_int_equal(milter_edits_apply((const unsigned char *)hdr, strlen(hdr), e, n, &out),
	                 0);
	assert_string_equal(buf_cstr(&out), want);
	buf_free(&out);
}

static void test_edits(void **state)
{
	(void)state;
	const char *hdr = "From: a@example.org\r\n"
	                  "Subject: one\r\n"
	                  "X-Tag: first\r\n"
	                  "x-tag: second\r\n"
	                  "\tfolded\r\n";
	struct milter_edit e[] = {
	    {.cmd = 'h', .name = "X-Spam", .value = "yes"},
	    {.cmd = 'i', .index = 0, .name = "X-Top", .value = "line1\n\tline2"},
	    {.cmd = 'm', .index = 2, .name = "X-TAG", .value = "changed"},
	    {.cmd = 'm', .index = 1, .name = "Subject", .value = ""},
	    {.cmd = 'm', .index = 5, .name = "X-Tag", .value = "nobody"},
	    {.cmd = 'i', .index = 99, .name = "X-End", .value = " lead"},
	};
	apply_is(hdr, e, 6,
	         "X-Top: line1\r\n\tline2\r\n"
	         "From: a@example.org\r\n"
	         "X-Tag: first\r\n"
	         "X-TAG: changed\r\n"
	         "X-Spam: yes\r\n"
	         "X-End: lead\r\n");
	apply_is(hdr, e, 0, hdr);
	struct buf tiny;
	buf_init(&tiny, 10);
	assert_int_equal(milter_edits_apply((const unsigned char *)hdr, strlen(hdr), e, 1, &tiny),
	                 -1);
	buf_free(&tiny);
}

/* Delete-all: every field of the name, any case, folded ones whole, the rest in order; and
 * 10,000 copies go in one pass (the old way, a CHGHEADER per copy, rescanned each time). */
static void test_delete_all(void **state)
{
	(void)state;
	const char *hdr = "X-Spam: a\r\n"
	                  "From: a@example.org\r\n"
	                  "x-spam: b\r\n\tfolded\r\n"
	                  "X-Spam-Level: keep\r\n"
	                  "X-SPAM : c\r\n"
	                  "Subject: s\r\n";
	struct milter_edit e[] = {
	    {.cmd = MILTER_EDIT_DELETE_ALL, .name = "X-Spam", .value = ""},
	    {.cmd = 'h', .name = "X-Spam", .value = "Yes"},
	};
	apply_is(hdr, e, 2,
	         "From: a@example.org\r\n"
	         "X-Spam-Level: keep\r\n"
	         "Subject: s\r\n"
	         "X-Spam: Yes\r\n");
	struct buf big;
	buf_init(&big, 1 << 20);
	for (int i = 0; i < 9999; i++)
		assert_int_equal(buf_append(&big, "X-Spam: a\r\n", 11), 0);
	/* More fields than MILTER_FIELDS_MAX: the rest is kept as it is, untouched. */
	assert_int_equal(buf_append(&big, "To: b\r\nX-Spam: z\r\n", 18), 0);
	struct buf out;
	buf_init(&out, 1 << 20);
	assert_int_equal(milter_edits_apply((const unsigned char *)big.data, big.len, e, 2, &out),
	                 0);
	assert_string_equal(buf_cstr(&out), "To: b\r\nX-Spam: z\r\nX-Spam: Yes\r\n");
	buf_free(&out);
	buf_free(&big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_packets),    cmocka_unit_test(test_replies),
	    cmocka_unit_test(test_replycode),  cmocka_unit_test(test_edits),
	    cmocka_unit_test(test_delete_all),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
