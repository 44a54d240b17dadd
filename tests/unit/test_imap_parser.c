/* Unit tests for imap/imap_parser: every argument type, nesting and its limit, literals of
 * each kind fed whole and in pieces, too-large literals (refused before any octet is read),
 * LITERAL+ and the sync flag, commands split around literals (APPEND, MULTIAPPEND), odd
 * tags, bad quoting, NUL anywhere, 8-bit strings, FETCH sections and partials, the UID
 * forms, resynchronisation after errors and every limit. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "imap/imap_parser.h"
#include "imap_args.h"
#include "core/banned.h"

/* Replace the parser with one using limits. */
static void use_limits(const struct imap_parser_limits *limits)
{
	imap_parser_free(&parser);
	parser = imap_parser_new(arena, limits);
}

/* What driving one command produced. */
struct run {
	int ret; /* 1 complete, -1 error, 0 a sync literal refused (too large) */
	const char *error;
	unsigned nlits;
	struct imap_literal lits[8];
	size_t consumed; /* octets of the wire text used */
};

/* Drive the parser the way a server does with wire text: lines end in CRLF, the octets of
 * each literal follow its line. Literals are fed in pieces of chunk octets; too-large ones
 * are refused when sync (the run ends with ret 0) or consumed externally when not. */
static struct run drive_n(const char *wire, size_t len, size_t chunk)
{
	struct run r;
	memset(&r, 0, sizeof(r));
	size_t pos = 0;
	for (;;) {
		const char *crlf = NULL;
		for (size_t i = pos; i + 1 < len; i++) {
			if (wire[i] == '\r' && wire[i + 1] == '\n') {
				crlf = wire + i;
				break;
			}
		}
		if (crlf == NULL)
			fail_msg("no CRLF after offset %zu", pos);
		size_t line_len = (size_t)(crlf - (wire + pos));
		struct imap_literal lit;
		r.ret = imap_parser_feed_line(parser, wire + pos, line_len, &lit, &r.error);
		pos += line_len + 2;
		r.consumed = pos;
		if (r.ret != 0) {
			if (r.ret < 0)
				assert_non_null(r.error);
			else
				assert_null(r.error);
			return r;
		}
		assert_true(r.nlits < 8);
		r.lits[r.nlits++] = lit;
		if (lit.too_large) {
			if (lit.sync)
				return r;
			assert_true(pos + lit.size <= len);
			imap_parser_literal_external(parser);
			pos += lit.size;
			continue;
		}
		assert_true(pos + lit.size <= len);
		size_t left = (size_t)lit.size;
		int fr = imap_parser_feed_literal(parser, (const unsigned char *)wire + pos, 0);
		assert_int_equal(fr, left == 0 ? 1 : 0);
		while (left > 0) {
			size_t n = left < chunk ? left : chunk;
			fr = imap_parser_feed_literal(parser, (const unsigned char *)wire + pos, n);
			pos += n;
			left -= n;
			assert_int_equal(fr, left == 0 ? 1 : 0);
		}
	}
}

static struct run drive(const char *wire)
{
	return drive_n(wire, strlen(wire), 1 << 20);
}

/* Parse a complete command and check its tag and command name; returns its arguments. */
static const struct imap_arg *ok_n(const char *wire, size_t len, const char *tag,
                                   const char *command)
{
	struct run r = drive_n(wire, len, 3);
	if (r.ret != 1)
		fail_msg("'%s' not accepted: ret %d error %s", wire, r.ret,
		         r.error != NULL ? r.error : "-");
	assert_int_equal(r.consumed, len);
	assert_string_equal(imap_parser_tag(parser), tag);
	assert_string_equal(imap_parser_command(parser), command);
	const struct imap_arg *args = imap_parser_args(parser);
	assert_non_null(args);
	return args;
}

static const struct imap_arg *ok(const char *wire, const char *tag, const char *command)
{
	return ok_n(wire, strlen(wire), tag, command);
}

/* Parse a command that must fail with error; tag is the expected tag or NULL. */
static void bad_n(const char *wire, size_t len, const char *tag, const char *error)
{
	struct run r = drive_n(wire, len, 1 << 20);
	if (r.ret != -1)
		fail_msg("'%s' accepted (ret %d)", wire, r.ret);
	if (error != NULL)
		assert_string_equal(r.error, error);
	if (tag == NULL)
		assert_null(imap_parser_tag(parser));
	else
		assert_string_equal(imap_parser_tag(parser), tag);
	assert_null(imap_parser_args(parser));
}

static void bad(const char *wire, const char *tag, const char *error)
{
	bad_n(wire, strlen(wire), tag, error);
}

static void assert_arg(const struct imap_arg *arg, enum imap_arg_type type, const char *str)
{
	assert_int_equal(arg->type, type);
	if (str != NULL) {
		assert_non_null(arg->str);
		assert_string_equal(arg->str, str);
		assert_int_equal(arg->len, strlen(str));
	}
}

static void test_simple_commands(void **state)
{
	(void)state;
	const struct imap_arg *a = ok("a1 NOOP\r\n", "a1", "NOOP");
	assert_int_equal(a[0].type, IMAP_ARG_EOL);
	assert_int_equal(imap_parser_arg_count(a), 0);
	ok("A2 capability\r\n", "A2", "CAPABILITY");
	a = ok("x LOGIN joe secret\r\n", "x", "LOGIN");
	assert_int_equal(imap_parser_arg_count(a), 2);
	assert_arg(&a[0], IMAP_ARG_ATOM, "joe");
	assert_arg(&a[1], IMAP_ARG_ATOM, "secret");
	/* A trailing space is tolerated. */
	a = ok("a NOOP \r\n", "a", "NOOP");
	assert_int_equal(imap_parser_arg_count(a), 0);
	a = ok("a SELECT INBOX \r\n", "a", "SELECT");
	assert_int_equal(imap_parser_arg_count(a), 1);
}

static void test_every_token_type(void **state)
{
	(void)state;
	static const char wire[] = "t1 X atom \"q \\\"x\\\" \\\\ y\" NIL nil (a (b c) ()) {3}\r\n"
	                           "abc ~{3}\r\na\0b \\Seen \"\"\r\n";
	const struct imap_arg *a = ok_n(wire, sizeof(wire) - 1, "t1", "X");
	assert_int_equal(imap_parser_arg_count(a), 9);
	assert_arg(&a[0], IMAP_ARG_ATOM, "atom");
	assert_arg(&a[1], IMAP_ARG_STRING, "q \"x\" \\ y");
	assert_arg(&a[2], IMAP_ARG_NIL, "NIL");
	assert_arg(&a[3], IMAP_ARG_NIL, "nil");
	assert_int_equal(a[4].type, IMAP_ARG_LIST);
	assert_null(a[4].str);
	const struct imap_arg *l = a[4].list;
	assert_int_equal(imap_parser_arg_count(l), 3);
	assert_arg(&l[0], IMAP_ARG_ATOM, "a");
	assert_int_equal(l[1].type, IMAP_ARG_LIST);
	assert_int_equal(imap_parser_arg_count(l[1].list), 2);
	assert_arg(&l[1].list[0], IMAP_ARG_ATOM, "b");
	assert_arg(&l[1].list[1], IMAP_ARG_ATOM, "c");
	assert_int_equal(l[2].type, IMAP_ARG_LIST);
	assert_int_equal(l[2].list[0].type, IMAP_ARG_EOL);
	assert_arg(&a[5], IMAP_ARG_LITERAL, "abc");
	assert_false(a[5].literal8);
	assert_int_equal(a[6].type, IMAP_ARG_LITERAL);
	assert_true(a[6].literal8);
	assert_int_equal(a[6].len, 3);
	assert_memory_equal(a[6].str, "a\0b", 4);
	assert_arg(&a[7], IMAP_ARG_ATOM, "\\Seen");
	assert_arg(&a[8], IMAP_ARG_STRING, "");
	assert_true(imap_parser_arg_is_string(&a[0]) && imap_parser_arg_is_string(&a[1]));
	assert_true(imap_parser_arg_is_string(&a[5]));
	assert_false(imap_parser_arg_is_string(&a[2]) || imap_parser_arg_is_string(&a[4]));
}

static void test_atoms_with_specials(void **state)
{
	(void)state;
	const struct imap_arg *a = ok("a LIST \"\" %/*]x[y\r\n", "a", "LIST");
	assert_arg(&a[1], IMAP_ARG_ATOM, "%/*]x[y");
	a = ok("a FETCH 1:*,$,~x (FLAGS)\r\n", "a", "FETCH");
	assert_arg(&a[0], IMAP_ARG_ATOM, "1:*,$,~x");
	/* NIL must be the whole atom. */
	a = ok("a X NILS NI\r\n", "a", "X");
	assert_arg(&a[0], IMAP_ARG_ATOM, "NILS");
	assert_arg(&a[1], IMAP_ARG_ATOM, "NI");
}

static void test_nesting_and_depth_limit(void **state)
{
	(void)state;
	const struct imap_arg *a = ok("a X ((((x))))\r\n", "a", "X");
	const struct imap_arg *l = a;
	for (int i = 0; i < 4; i++) {
		assert_int_equal(l[0].type, IMAP_ARG_LIST);
		l = l[0].list;
	}
	assert_arg(&l[0], IMAP_ARG_ATOM, "x");
	a = ok("a X (a) (b) (c)\r\n", "a", "X");
	assert_int_equal(imap_parser_arg_count(a), 3);
	/* RFC 9051 §9 separates list elements with SP: ")(" is not accepted. */
	bad("a X (a)(b)\r\n", "a", "Expected space between arguments");

	struct imap_parser_limits limits = {.depth_max = 3};
	use_limits(&limits);
	ok("a X (((x))) ((y))\r\n", "a", "X");
	bad("a X ((((x))))\r\n", "a", "Too deeply nested parentheses");
	bad("a X (((())))\r\n", "a", "Too deeply nested parentheses");
}

static void test_list_errors(void **state)
{
	(void)state;
	bad("a X (a b\r\n", "a", "Missing ')'");
	bad("a X (a (b)\r\n", "a", "Missing ')'");
	bad("a X a)\r\n", "a", "Unexpected ')'");
	bad("a X ( a)\r\n", "a", "Unexpected space");
	bad("a X (a )\r\n", "a", "Unexpected ')'");
	bad("a X (a  b)\r\n", "a", "Unexpected space");
	bad("a X  a\r\n", "a", "Unexpected space");
	bad("a X a(b)\r\n", "a", "Expected space between arguments");
	bad("a X (a)b\r\n", "a", "Expected space between arguments");
	bad("a X \"a\"b\r\n", "a", "Expected space between arguments");
	bad("a X (\r\n", "a", "Missing ')'");
}

static void test_args_limit(void **state)
{
	(void)state;
	struct imap_parser_limits limits = {.args_max = 4};
	use_limits(&limits);
	ok("a X 1 2 3 4\r\n", "a", "X");
	ok("a X (1 2) 3\r\n", "a", "X");
	bad("a X 1 2 3 4 5\r\n", "a", "Too many arguments");
	bad("a X (1 2 3 4)\r\n", "a", "Too many arguments");
	bad("a X 1 2 3 4 {1}\r\nx\r\n", "a", "Too many arguments");
	bad("a X 1 2 3 {1}\r\nx y\r\n", "a", "Too many arguments");
}

static void test_tags(void **state)
{
	(void)state;
	ok("a.b-c_d]~!#$&'=/?@^`|:;,<>0 NOOP\r\n", "a.b-c_d]~!#$&'=/?@^`|:;,<>0", "NOOP");
	ok("]]] NOOP\r\n", "]]]", "NOOP");
	ok("0 NOOP\r\n", "0", "NOOP");
}

static void test_bad_tags(void **state)
{
	(void)state;
	bad("\r\n", NULL, "Empty command line");
	bad("a+b NOOP\r\n", NULL, "Invalid tag");
	bad("+ NOOP\r\n", NULL, "Invalid tag");
	bad("a%b NOOP\r\n", NULL, "Invalid tag");
	bad("a\"b NOOP\r\n", NULL, "Invalid tag");
	bad("a{b NOOP\r\n", NULL, "Invalid tag");
	bad("(a NOOP\r\n", NULL, "Invalid tag");
	bad("a\\b NOOP\r\n", NULL, "Invalid tag");
	bad(" NOOP\r\n", NULL, "Invalid tag");
	bad("t\x80 NOOP\r\n", NULL, "Invalid tag");
	bad("a\tb NOOP\r\n", NULL, "Invalid tag");
	bad("a1\r\n", "a1", "Missing command");
	bad("a1 \r\n", "a1", "Missing command");
	bad("a1  NOOP\r\n", "a1", "Invalid command name");
	bad("a1 NO]OP\r\n", "a1", "Invalid command name");
	bad("a1 NO(OP\r\n", "a1", "Invalid command name");
	bad("a1 \"NOOP\"\r\n", "a1", "Invalid command name");
}

static void test_star_tag(void **state)
{
	(void)state;
	/* '*' is a list-wildcard, not an ATOM-CHAR: RFC 9051 §9 tags cannot contain it. */
	bad("* NOOP\r\n", NULL, "Invalid tag");
}

static void test_quoting(void **state)
{
	(void)state;
	const struct imap_arg *a = ok("a LOGIN \"a b\" \"p\\\\w\\\"d\"\r\n", "a", "LOGIN");
	assert_arg(&a[0], IMAP_ARG_STRING, "a b");
	assert_arg(&a[1], IMAP_ARG_STRING, "p\\w\"d");
	/* Other control characters than CR/LF are TEXT-CHARs. */
	a = ok("a X \"a\tb\x7f\"\r\n", "a", "X");
	assert_arg(&a[0], IMAP_ARG_STRING, "a\tb\x7f");
	bad("a LOGIN \"abc\r\n", "a", "Missing '\"'");
	bad("a LOGIN \"abc\\\"\r\n", "a", "Missing '\"'");
	bad("a LOGIN \"a\\b\"\r\n", "a", "Invalid escape in quoted string");
	bad("a LOGIN \"a\\\r\n", "a", "Invalid escape in quoted string");
	bad("a LOGIN \"a\rb\"\r\n", "a", "CR or LF in quoted string");
	bad("a LOGIN \"a\nb\"\r\n", "a", "CR or LF in quoted string");
}

static void test_8bit(void **state)
{
	(void)state;
	const struct imap_arg *a =
	    ok("a SELECT \"Gr\xc3\xbc\xc3\x9f\xe2\x82\xac\"\r\n", "a", "SELECT");
	assert_arg(&a[0], IMAP_ARG_STRING, "Gr\xc3\xbc\xc3\x9f\xe2\x82\xac");
	a = ok("a X {4}\r\n\xff\xfe\x80\x01\r\n", "a", "X");
	assert_int_equal(a[0].len, 4);
	/* Atoms are ASCII only. */
	bad("a SELECT Gr\xc3\xbc\r\n", "a", "Invalid character in atom");
	bad("a SELECT \xc3\xbc\r\n", "a", "Invalid character in atom");
	bad("a SELECT a\x01\r\n", "a", "Invalid character in atom");
	bad("a SELECT a\x7f\r\n", "a", "Invalid character in atom");
}

static void test_nul(void **state)
{
	(void)state;
	bad_n("a X a\0b\r\n", 9, "a", "NUL octet in command");
	bad_n("a X \"a\0b\"\r\n", 11, "a", "NUL octet in command");
	bad_n("a\0 X\r\n", 6, NULL, "Invalid tag");
	bad_n("\0\r\n", 3, NULL, "Invalid tag");
	bad_n("a NO\0OP\r\n", 9, "a", "NUL octet in command");
	/* In the line that continues after a literal. */
	bad_n("a X {1}\r\nx \0\r\n", 14, "a", "NUL octet in command");
	/* In a non-binary literal: reported at the end of the command. */
	bad_n("a X {3}\r\na\0b y\r\n", 16, "a", "NUL octet in literal");
	/* Reported after the rest of the command, including its non-sync literals. */
	struct run r = drive_n("a X {3}\r\na\0b {2+}\r\nzz\r\nb NOOP\r\n", 31, 1);
	assert_int_equal(r.ret, -1);
	assert_string_equal(r.error, "NUL octet in literal");
	assert_int_equal(r.nlits, 2);
	assert_int_equal(r.consumed, 23);
	ok("b NOOP\r\n", "b", "NOOP");
	/* A binary literal may contain NUL. */
	const struct imap_arg *a = ok_n("a X ~{3}\r\n\0\0\0\r\n", 15, "a", "X");
	assert_int_equal(a[0].type, IMAP_ARG_LITERAL);
	assert_true(a[0].literal8);
	assert_int_equal(a[0].len, 3);
}

static void test_literals_in_pieces(void **state)
{
	(void)state;
	static const char wire[] = "a LOGIN {3}\r\njoe {10}\r\n0123456789\r\n";
	for (size_t chunk = 1; chunk <= 11; chunk++) {
		struct run r = drive_n(wire, sizeof(wire) - 1, chunk);
		assert_int_equal(r.ret, 1);
		assert_int_equal(r.nlits, 2);
		assert_true(r.lits[0].sync && !r.lits[0].binary && !r.lits[0].too_large);
		assert_int_equal(r.lits[0].size, 3);
		assert_int_equal(r.lits[1].size, 10);
		const struct imap_arg *a = imap_parser_args(parser);
		assert_arg(&a[0], IMAP_ARG_LITERAL, "joe");
		assert_arg(&a[1], IMAP_ARG_LITERAL, "0123456789");
		assert_int_equal(a[2].type, IMAP_ARG_EOL);
	}
	/* A literal inside a list, followed by more arguments and the closing ')'. */
	const struct imap_arg *a = ok("a X (a {3}\r\nb c d) e\r\n", "a", "X");
	assert_int_equal(imap_parser_arg_count(a), 2);
	assert_int_equal(imap_parser_arg_count(a[0].list), 3);
	assert_arg(&a[0].list[1], IMAP_ARG_LITERAL, "b c");
	assert_arg(&a[0].list[2], IMAP_ARG_ATOM, "d");
	assert_arg(&a[1], IMAP_ARG_ATOM, "e");
	/* Closing parentheses directly after a literal. */
	a = ok("a X ((a {1}\r\nb))\r\n", "a", "X");
	assert_arg(&a[0].list[0].list[1], IMAP_ARG_LITERAL, "b");
	/* Empty literals. */
	a = ok("a LOGIN {0}\r\n {0+}\r\n\r\n", "a", "LOGIN");
	assert_arg(&a[0], IMAP_ARG_LITERAL, "");
	assert_arg(&a[1], IMAP_ARG_LITERAL, "");
	/* A literal may contain CRLF and anything that looks like syntax. */
	a = ok("a X {9}\r\n\r\n{2}\r\n(\"\r\n", "a", "X");
	assert_arg(&a[0], IMAP_ARG_LITERAL, "\r\n{2}\r\n(\"");
}

static void test_literal_kinds(void **state)
{
	(void)state;
	struct run r = drive("a X {1}\r\nx {2+}\r\nyy ~{3}\r\nzzz ~{4+}\r\nwwww\r\n");
	assert_int_equal(r.ret, 1);
	assert_int_equal(r.nlits, 4);
	assert_true(r.lits[0].sync && !r.lits[0].binary);
	assert_true(!r.lits[1].sync && !r.lits[1].binary);
	assert_true(r.lits[2].sync && r.lits[2].binary);
	assert_true(!r.lits[3].sync && r.lits[3].binary);
	const struct imap_arg *a = imap_parser_args(parser);
	assert_false(a[0].literal8 || a[1].literal8);
	assert_true(a[2].literal8 && a[3].literal8);
	/* Leading zeros are part of number64. */
	r = drive("a X {007}\r\n1234567\r\n");
	assert_int_equal(r.ret, 1);
	assert_int_equal(r.lits[0].size, 7);
	/* LITERAL-: {N+} over 4096 is only reported, the caller enforces the 4096. */
	struct imap_literal lit;
	const char *error;
	assert_int_equal(imap_parser_feed_line(parser, "a X {5000+}", 11, &lit, &error), 0);
	assert_false(lit.sync);
	assert_int_equal(lit.size, 5000);
	imap_parser_reset(parser);
	/* imap_parser_depth(): the lists open where a literal is announced (CATENATE) */
	assert_int_equal(imap_parser_feed_line(parser, "a APPEND x {5}", 14, &lit, &error), 0);
	assert_int_equal(imap_parser_depth(parser), 0);
	imap_parser_reset(parser);
	assert_int_equal(
	    imap_parser_feed_line(parser, "a APPEND x CATENATE (TEXT {5}", 29, &lit, &error), 0);
	assert_int_equal(imap_parser_depth(parser), 1);
	imap_parser_reset(parser);
	assert_int_equal(imap_parser_depth(parser), 0);
}

static void test_literal_syntax_errors(void **state)
{
	(void)state;
	bad("a X {}\r\n", "a", "Invalid literal size");
	bad("a X {5-}\r\n", "a", "Invalid literal size");
	bad("a X {x}\r\n", "a", "Invalid literal size");
	bad("a X {5\r\n", "a", "Invalid literal size");
	bad("a X {5+\r\n", "a", "Invalid literal size");
	bad("a X { 5}\r\n", "a", "Invalid literal size");
	bad("a X {5}x\r\n", "a", "Literal announcement must end the line");
	bad("a X {5} \r\n", "a", "Literal announcement must end the line");
	bad("a X ~{5\r\n", "a", "Invalid literal size");
	bad("a X a{5}\r\n", "a", "Expected space between arguments");
	/* number64: at most 2^63 - 1; overflow is checked before every digit. */
	struct imap_literal lit;
	const char *error;
	assert_int_equal(
	    imap_parser_feed_line(parser, "a X {9223372036854775807}", 25, &lit, &error), 0);
	assert_true(lit.size == 9223372036854775807ULL && lit.too_large);
	imap_parser_reset(parser);
	bad("a X {9223372036854775808}\r\n", "a", "Invalid literal size");
	bad("a X {18446744073709551616}\r\n", "a", "Invalid literal size");
	bad("a X {99999999999999999999999999}\r\n", "a", "Invalid literal size");
}

/* Limits replaced between commands (small before login, normal after). */
static void test_set_limits(void **state)
{
	(void)state;
	struct imap_parser_limits small = {
	    .line_max = 64, .literal_max = 8, .literal_total_max = 12};
	imap_parser_set_limits(parser, &small);
	struct run r = drive("a LOGIN {9}\r\n");
	assert_true(r.lits[0].too_large);
	imap_parser_reset(parser);
	/* two literals within literal_max but together over literal_total_max */
	r = drive("a LOGIN {8}\r\n12345678 {8}\r\n");
	assert_false(r.lits[0].too_large);
	assert_true(r.lits[1].too_large);
	imap_parser_reset(parser);
	char line[100];
	memset(line, 'x', sizeof(line));
	memcpy(line, "a NOOP ", 7);
	memcpy(line + 98, "\r\n", 2);
	assert_int_equal(imap_parser_feed_line(parser, line, 98, &r.lits[0], &r.error), -1);
	imap_parser_reset(parser);
	struct imap_parser_limits normal = {0};
	imap_parser_set_limits(parser, &normal);
	const struct imap_arg *a = ok("a LOGIN {9}\r\n123456789 {8}\r\n12345678\r\n", "a", "LOGIN");
	assert_arg(&a[0], IMAP_ARG_LITERAL, "123456789");
	r = drive("b LOGIN {1048577}\r\n");
	assert_true(r.lits[0].too_large); /* the default 1 MiB again */
}

static void test_literal_too_large(void **state)
{
	(void)state;
	struct imap_parser_limits limits = {.literal_max = 10};
	use_limits(&limits);
	/* Sync: reported with its size before any octet; the caller refuses and resets. */
	struct run r = drive("a APPEND INBOX {11}\r\n");
	assert_int_equal(r.ret, 0);
	assert_true(r.lits[0].too_large && r.lits[0].sync);
	assert_int_equal(r.lits[0].size, 11);
	assert_int_equal(imap_parser_feed_literal(parser, (const unsigned char *)"x", 1), -1);
	imap_parser_reset(parser);
	ok("b NOOP\r\n", "b", "NOOP");
	/* The 2 GB announcement of the acceptance test. */
	r = drive("a APPEND INBOX {2147483648}\r\n");
	assert_int_equal(r.ret, 0);
	assert_true(r.lits[0].too_large);
	assert_int_equal(r.lits[0].size, 2147483648ULL);
	imap_parser_reset(parser);
	/* Exactly literal_max is fine. */
	const struct imap_arg *a = ok("a X {10}\r\n0123456789\r\n", "a", "X");
	assert_arg(&a[0], IMAP_ARG_LITERAL, "0123456789");
	/* Non-sync: the caller consumes it externally and answers when the command ends. */
	r = drive("a APPEND INBOX {11+}\r\n01234567890 x\r\n");
	assert_int_equal(r.ret, 1);
	assert_true(r.lits[0].too_large && !r.lits[0].sync);
	a = imap_parser_args(parser);
	assert_int_equal(a[1].type, IMAP_ARG_LITERAL_EXTERNAL);
	assert_int_equal(a[1].len, 11);
	assert_null(a[1].str);
	assert_arg(&a[2], IMAP_ARG_ATOM, "x");
}

static void test_literal_total_budget(void **state)
{
	(void)state;
	struct imap_parser_limits limits = {.literal_max = 10, .literal_total_max = 15};
	use_limits(&limits);
	struct run r = drive("a X {8}\r\n12345678 {8}\r\n");
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.nlits, 2);
	assert_false(r.lits[0].too_large);
	assert_true(r.lits[1].too_large);
	imap_parser_reset(parser);
	r = drive("a X {8}\r\n12345678 {7}\r\n1234567\r\n");
	assert_int_equal(r.ret, 1);
	/* Default budget: four times literal_max. */
	limits.literal_total_max = 0;
	use_limits(&limits);
	r = drive("a X {10}\r\n0123456789 {10}\r\n0123456789 {10}\r\n0123456789 {10}\r\n"
	          "0123456789 {1}\r\n");
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.nlits, 5);
	assert_false(r.lits[3].too_large);
	assert_true(r.lits[4].too_large);
	imap_parser_reset(parser);
}

static void test_external_literal(void **state)
{
	(void)state;
	struct imap_literal lit;
	const char *error;
	static const char line[] =
	    "A003 APPEND saved-messages (\\Seen) \"7-Feb-1994 21:52:25 -0800\" {310}";
	assert_int_equal(imap_parser_feed_line(parser, line, strlen(line), &lit, &error), 0);
	assert_true(lit.sync && !lit.binary && !lit.too_large);
	assert_int_equal(lit.size, 310);
	assert_string_equal(imap_parser_tag(parser), "A003");
	assert_string_equal(imap_parser_command(parser), "APPEND");
	assert_null(imap_parser_args(parser));
	/* What APPEND needs before it streams the message. */
	const struct imap_arg *a = imap_parser_args_so_far(parser);
	assert_int_equal(imap_parser_arg_count(a), 3);
	assert_arg(&a[0], IMAP_ARG_ATOM, "saved-messages");
	assert_int_equal(a[1].type, IMAP_ARG_LIST);
	assert_arg(&a[1].list[0], IMAP_ARG_ATOM, "\\Seen");
	assert_arg(&a[2], IMAP_ARG_STRING, "7-Feb-1994 21:52:25 -0800");
	imap_parser_literal_external(parser);
	assert_int_equal(imap_parser_feed_line(parser, "", 0, &lit, &error), 1);
	a = imap_parser_args(parser);
	assert_int_equal(imap_parser_arg_count(a), 4);
	assert_int_equal(a[3].type, IMAP_ARG_LITERAL_EXTERNAL);
	assert_int_equal(a[3].len, 310);
	assert_false(a[3].literal8);
	assert_ptr_equal(imap_parser_args_so_far(parser), a);

	/* Binary external literal. */
	assert_int_equal(imap_parser_feed_line(parser, "b APPEND x ~{5}", 15, &lit, &error), 0);
	assert_true(lit.binary);
	imap_parser_literal_external(parser);
	assert_int_equal(imap_parser_feed_line(parser, "", 0, &lit, &error), 1);
	a = imap_parser_args(parser);
	assert_int_equal(a[1].type, IMAP_ARG_LITERAL_EXTERNAL);
	assert_true(a[1].literal8);
}

static void test_append_lines(void **state)
{
	(void)state;
	struct imap_literal lit;
	const char *error;
	static const char line[] = "A APPEND \"INBOX\" (\\Seen) {5}";
	/* The continuation line may be empty or a lone space. */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(imap_parser_feed_line(parser, line, strlen(line), &lit, &error),
		                 0);
		assert_int_equal(lit.size, 5);
		assert_true(lit.sync);
		assert_int_equal(imap_parser_feed_literal(parser, (const unsigned char *)"hel", 3),
		                 0);
		assert_int_equal(imap_parser_feed_literal(parser, (const unsigned char *)"lo", 2),
		                 1);
		assert_int_equal(imap_parser_feed_line(parser, " ", (size_t)i, &lit, &error), 1);
		assert_null(error);
		const struct imap_arg *a = imap_parser_args(parser);
		assert_int_equal(imap_parser_arg_count(a), 3);
		assert_arg(&a[0], IMAP_ARG_STRING, "INBOX");
		assert_arg(&a[2], IMAP_ARG_LITERAL, "hello");
	}
	/* MULTIAPPEND (RFC 3502): several messages in one command. */
	const struct imap_arg *a =
	    ok("A APPEND INBOX {3+}\r\nabc (\\Seen) {2+}\r\nde {1}\r\nf\r\n", "A", "APPEND");
	assert_int_equal(imap_parser_arg_count(a), 5);
	assert_arg(&a[1], IMAP_ARG_LITERAL, "abc");
	assert_int_equal(a[2].type, IMAP_ARG_LIST);
	assert_arg(&a[3], IMAP_ARG_LITERAL, "de");
	assert_arg(&a[4], IMAP_ARG_LITERAL, "f");
	/* Continuation lines are syntax-checked like the first one. */
	bad("A APPEND INBOX {1}\r\nx(y)\r\n", "A", "Expected space between arguments");
	bad("A APPEND INBOX {1}\r\nx  y\r\n", "A", "Unexpected space");
	bad("A APPEND INBOX {1}\r\nx )\r\n", "A", "Unexpected ')'");
}

static void test_fetch_items(void **state)
{
	(void)state;
	const struct imap_arg *a =
	    ok("a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.1024> BINARY[1.2] "
	       "BODY[1.2.MIME] BINARY.SIZE[1] BODY[] body[text]<5> BINARY.PEEK[] RFC822.SIZE)\r\n",
	       "a", "FETCH");
	assert_int_equal(imap_parser_arg_count(a), 2);
	assert_arg(&a[0], IMAP_ARG_ATOM, "1:*");
	const struct imap_arg *l = a[1].list;
	assert_int_equal(imap_parser_arg_count(l), 9);
	assert_arg(&l[0], IMAP_ARG_ATOM, "FLAGS");
	assert_arg(&l[1], IMAP_ARG_ATOM, "BODY.PEEK[HEADER.FIELDS (From To)]<0.1024>");
	assert_arg(&l[2], IMAP_ARG_ATOM, "BINARY[1.2]");
	assert_arg(&l[3], IMAP_ARG_ATOM, "BODY[1.2.MIME]");
	assert_arg(&l[4], IMAP_ARG_ATOM, "BINARY.SIZE[1]");
	assert_arg(&l[5], IMAP_ARG_ATOM, "BODY[]");
	assert_arg(&l[6], IMAP_ARG_ATOM, "body[text]<5>");
	assert_arg(&l[7], IMAP_ARG_ATOM, "BINARY.PEEK[]");
	assert_arg(&l[8], IMAP_ARG_ATOM, "RFC822.SIZE");
	/* Outside a list, and with quoted header names kept verbatim. */
	a = ok("a FETCH 2 BODY[HEADER.FIELDS.NOT (\"X-Spam\" Subject)]\r\n", "a", "FETCH");
	assert_arg(&a[1], IMAP_ARG_ATOM, "BODY[HEADER.FIELDS.NOT (\"X-Spam\" Subject)]");
	a = ok("a FETCH 2 (BODY[HEADER.FIELDS (A)])\r\n", "a", "FETCH");
	assert_arg(&a[1].list[0], IMAP_ARG_ATOM, "BODY[HEADER.FIELDS (A)]");
	/* Other atoms with brackets are plain atoms (no SP inside). */
	a = ok("a X FOO[1 2]\r\n", "a", "X");
	assert_arg(&a[0], IMAP_ARG_ATOM, "FOO[1");
	assert_arg(&a[1], IMAP_ARG_ATOM, "2]");

	bad("a FETCH 1 (BODY[HEADER.FIELDS (From)\r\n", "a", "Invalid section in fetch item");
	bad("a FETCH 1 BODY[HEADER\r\n", "a", "Invalid section in fetch item");
	bad("a FETCH 1 BODY[HEADER.FIELDS ((A))]\r\n", "a", "Invalid section in fetch item");
	bad("a FETCH 1 BODY[HEADER.FIELDS {3}\r\n", "a", "Invalid section in fetch item");
	bad("a FETCH 1 BODY[1[2]]\r\n", "a", "Invalid section in fetch item");
	bad("a FETCH 1 BODY[HEADER.FIELDS (\"A)]\r\n", "a", "Missing '\"'");
	bad("a FETCH 1 BODY[\xc3\xa9]\r\n", "a", "Invalid section in fetch item");
	bad("a FETCH 1 BODY[HEADER.FIELDS (\"\xc3\xa9\")]\r\n", "a",
	    "Invalid section in fetch item");
	bad("a FETCH 1 BODY[HEADER.FIELDS (\"a\tb\")]\r\n", "a", "Invalid section in fetch item");
	bad("a FETCH 1 BODY[]\x80\r\n", "a", "Invalid character in atom");
}

static void test_uid_forms(void **state)
{
	(void)state;
	const struct imap_arg *a = ok("a UID FETCH 1:* (UID FLAGS)\r\n", "a", "UID FETCH");
	assert_int_equal(imap_parser_arg_count(a), 2);
	assert_arg(&a[0], IMAP_ARG_ATOM, "1:*");
	a = ok("a uid store 1,3:5 +FLAGS.SILENT (\\Deleted)\r\n", "a", "UID STORE");
	assert_arg(&a[0], IMAP_ARG_ATOM, "1,3:5");
	assert_arg(&a[1], IMAP_ARG_ATOM, "+FLAGS.SILENT");
	a = ok("a Uid Search RETURN (MIN MAX) UNSEEN\r\n", "a", "UID SEARCH");
	assert_arg(&a[0], IMAP_ARG_ATOM, "RETURN");
	a = ok("a UID COPY 1:3 \"Trash\"\r\n", "a", "UID COPY");
	assert_arg(&a[1], IMAP_ARG_STRING, "Trash");
	a = ok("a UID MOVE $ Archive\r\n", "a", "UID MOVE");
	assert_arg(&a[0], IMAP_ARG_ATOM, "$");
	a = ok("a UID EXPUNGE 3:5\r\n", "a", "UID EXPUNGE");
	assert_int_equal(imap_parser_arg_count(a), 1);
	a = ok("a UID SEARCH CHARSET UTF-8 TEXT {4}\r\n\xc3\xa9t\xc3\r\n", "a", "UID SEARCH");
	assert_int_equal(a[3].type, IMAP_ARG_LITERAL);
	ok("a UID FOO\r\n", "a", "UID FOO");
	ok("a UIDX\r\n", "a", "UIDX");
	bad("a UID\r\n", "a", "Missing command after UID");
	bad("a UID \r\n", "a", "Missing command after UID");
	bad("a UID (FETCH)\r\n", "a", "Invalid command name");
	bad("a UID \"FETCH\"\r\n", "a", "Invalid command name");
}

static void test_resync_after_error(void **state)
{
	(void)state;
	/* The bad line ends with a non-sync literal: its octets are discarded, and so is the
	 * rest of the command, also further non-sync literals; then the error comes. */
	struct run r = drive_n("a X )x {3+}\r\nabc y {2+}\r\nzz\r\nb NOOP\r\n", 37, 2);
	assert_int_equal(r.ret, -1);
	assert_string_equal(r.error, "Unexpected ')'");
	assert_int_equal(r.nlits, 2);
	assert_int_equal(r.consumed, 29);
	assert_string_equal(imap_parser_tag(parser), "a");
	ok("b NOOP\r\n", "b", "NOOP");
	/* The same with an external literal. */
	struct imap_literal lit;
	const char *error;
	assert_int_equal(imap_parser_feed_line(parser, "a X \"x {3+}", 11, &lit, &error), 0);
	assert_false(lit.sync);
	imap_parser_literal_external(parser);
	assert_int_equal(imap_parser_feed_line(parser, "", 0, &lit, &error), -1);
	assert_string_equal(error, "Missing '\"'");
	/* A sync literal after an error is never asked for: the error comes at once. */
	r = drive("a X )x {3}\r\n");
	assert_int_equal(r.ret, -1);
	assert_int_equal(r.nlits, 0);
	/* Error in a continuation line that ends with a non-sync literal. */
	r = drive("a X {1}\r\nx ( ~{2+}\r\nzz\r\n");
	assert_int_equal(r.ret, -1);
	assert_string_equal(r.error, "Unexpected space");
	assert_int_equal(r.nlits, 2);
	assert_true(r.lits[1].binary);
	/* A line without tag still skips its non-sync literal. */
	r = drive("(bad {1+}\r\nx\r\n");
	assert_int_equal(r.ret, -1);
	assert_string_equal(r.error, "Invalid tag");
	assert_null(imap_parser_tag(parser));
	assert_int_equal(r.consumed, 14);
}

static void test_line_limit(void **state)
{
	(void)state;
	struct imap_parser_limits limits = {.line_max = 20};
	use_limits(&limits);
	ok("a X 1234567890123456\r\n", "a", "X");
	bad("a X 12345678901234567\r\n", "a", "Command line too long");
	bad("abcdefghijklmnopqrstuvwxyz NOOP\r\n", NULL, "Command line too long");
	/* Counted over all lines of a command; literal octets are not counted. */
	ok("a X {20}\r\n01234567890123456789 y\r\n", "a", "X");
	bad("a X {1}\r\nx 01234567890123\r\n", "a", "Command line too long");
	/* A too-long line ending with a non-sync literal is skipped like any bad line. */
	struct run r = drive("a X 0123456789012345 {2+}\r\nzz\r\n");
	assert_int_equal(r.ret, -1);
	assert_string_equal(r.error, "Command line too long");
	assert_int_equal(r.nlits, 1);
}

static void test_reuse_and_reset(void **state)
{
	(void)state;
	/* A new command may be fed right after a finished one. */
	ok("a NOOP\r\n", "a", "NOOP");
	const struct imap_arg *prev = imap_parser_args(parser);
	ok("b LOGOUT\r\n", "b", "LOGOUT");
	/* Arguments of a finished command stay valid in the arena after a reset. */
	const struct imap_arg *a = ok("c X (y z)\r\n", "c", "X");
	imap_parser_reset(parser);
	assert_null(imap_parser_tag(parser));
	assert_null(imap_parser_command(parser));
	assert_null(imap_parser_args(parser));
	assert_int_equal(imap_parser_args_so_far(parser)[0].type, IMAP_ARG_EOL);
	assert_arg(&a[0].list[1], IMAP_ARG_ATOM, "z");
	(void)prev;
	/* After an error too. */
	bad("d X (\r\n", "d", NULL);
	ok("e NOOP\r\n", "e", "NOOP");
	/* Reset in the middle of a command. */
	struct imap_literal lit;
	const char *error;
	assert_int_equal(imap_parser_feed_line(parser, "f X (a (b {3}", 13, &lit, &error), 0);
	imap_parser_reset(parser);
	ok("g X\r\n", "g", "X");
	arena_reset(arena);
	ok("h X y\r\n", "h", "X");
	/* Free accepts NULL. */
	struct imap_parser *none = NULL;
	imap_parser_free(&none);
}

static void test_misuse(void **state)
{
	(void)state;
	struct imap_literal lit;
	const char *error;
	/* No literal pending. */
	assert_int_equal(imap_parser_feed_literal(parser, (const unsigned char *)"x", 1), -1);
	assert_int_equal(imap_parser_feed_line(parser, "a X {2}", 7, &lit, &error), 0);
	/* More octets than announced. */
	assert_int_equal(imap_parser_feed_literal(parser, (const unsigned char *)"xyz", 3), -1);
	assert_int_equal(imap_parser_feed_literal(parser, (const unsigned char *)"x", 1), 0);
	assert_int_equal(imap_parser_feed_literal(parser, (const unsigned char *)"yz", 2), -1);
	/* A line while octets are still due. */
	assert_int_equal(imap_parser_feed_line(parser, "", 0, &lit, &error), -1);
	assert_string_equal(error, "Literal octets missing");
	assert_string_equal(imap_parser_tag(parser), "a");
	ok("b NOOP\r\n", "b", "NOOP");
}

static void test_many_args(void **state)
{
	(void)state;
	/* Grow the level vectors well past their first size, at several depths. */
	static char wire[40000];
	size_t n = 0;
	n += (size_t)snprintf(wire + n, sizeof(wire) - n, "a X");
	for (int i = 0; i < 3000; i++)
		n += (size_t)snprintf(wire + n, sizeof(wire) - n, " %d", i);
	n += (size_t)snprintf(wire + n, sizeof(wire) - n, " ((");
	for (int i = 0; i < 2000; i++)
		n += (size_t)snprintf(wire + n, sizeof(wire) - n, "%sx%d", i ? " " : "", i);
	n += (size_t)snprintf(wire + n, sizeof(wire) - n, "))\r\n");
	const struct imap_arg *a = ok_n(wire, n, "a", "X");
	assert_int_equal(imap_parser_arg_count(a), 3001);
	assert_arg(&a[2999], IMAP_ARG_ATOM, "2999");
	assert_int_equal(imap_parser_arg_count(a[3000].list[0].list), 2000);
	assert_arg(&a[3000].list[0].list[1999], IMAP_ARG_ATOM, "x1999");
	/* And again after the reset shrank them. */
	a = ok_n(wire, n, "a", "X");
	assert_int_equal(imap_parser_arg_count(a), 3001);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_simple_commands, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_every_token_type, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_atoms_with_specials, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nesting_and_depth_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_set_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_args_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tags, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_tags, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_star_tag, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_quoting, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_8bit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nul, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_literals_in_pieces, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_literal_kinds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_literal_syntax_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_literal_too_large, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_literal_total_budget, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_external_literal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_append_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fetch_items, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_uid_forms, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resync_after_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_line_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reuse_and_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_misuse, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many_args, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
