/* Unit tests for pop3/pop3_parser: every verb, case-insensitive keywords, argument counts per
 * RFC 1939/2449/5034, PASS taking the rest of the line (spaces included), AUTH with a long
 * initial response, the 255/256-octet argument limit, NUL/CR/LF refused, and the edge cases
 * of pop3_parser_number (0, 4294967295, 4294967296, '+', '-', empty). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "pop3/pop3_parser.h"
#include "core/banned.h"

static const char ERR_UNKNOWN[] = "Unknown command";
static const char ERR_MISSING[] = "Missing argument";
static const char ERR_INVALID[] = "Invalid arguments";
static const char ERR_TOO_LONG[] = "Argument too long";
static const char ERR_CHARS[] = "Invalid characters in command";
static const char ERR_PASS[] = "Syntax: PASS <password>";

static struct arena *arena;

static int setup(void **state)
{
	(void)state;
	arena = arena_new(4096);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	arena_free(&arena);
	return 0;
}

/* line (len octets) must parse as verb with argc arguments a0, a1 (NULL when absent). */
static struct pop3_command ok_n(const char *line, size_t len, enum pop3_verb verb, unsigned argc,
                                const char *a0, const char *a1)
{
	struct pop3_command cmd;
	const char *error = NULL;
	if (pop3_parser_parse(arena, line, len, &cmd, &error) != 0)
		fail_msg("'%.*s' refused: %s", (int)len, line, error);
	assert_int_equal(cmd.verb, verb);
	assert_int_equal(cmd.argc, argc);
	const char *want[POP3_ARGS_MAX] = {a0, a1};
	for (unsigned i = 0; i < POP3_ARGS_MAX; i++) {
		if (i < argc) {
			assert_non_null(cmd.argv[i]);
			assert_string_equal(cmd.argv[i], want[i]);
		} else {
			assert_null(cmd.argv[i]);
		}
	}
	return cmd;
}

static struct pop3_command ok(const char *line, enum pop3_verb verb, unsigned argc, const char *a0,
                              const char *a1)
{
	return ok_n(line, strlen(line), verb, argc, a0, a1);
}

static void bad_n(const char *line, size_t len, const char *want)
{
	struct pop3_command cmd;
	const char *error = NULL;
	if (pop3_parser_parse(arena, line, len, &cmd, &error) == 0)
		fail_msg("'%.*s' accepted, expected '%s'", (int)len, line, want);
	assert_non_null(error);
	assert_string_equal(error, want);
}

static void bad(const char *line, const char *want)
{
	bad_n(line, strlen(line), want);
}

/* "VERB " followed by n copies of c, in the arena. */
static char *line_with_arg(const char *prefix, size_t n, char c, const char *suffix)
{
	size_t p = strlen(prefix), s = strlen(suffix);
	char *line = arena_alloc(arena, p + n + s + 1);
	memcpy(line, prefix, p);
	memset(line + p, c, n);
	memcpy(line + p + n, suffix, s + 1);
	return line;
}

static char *repeat(size_t n, char c)
{
	return line_with_arg("", n, c, "");
}

static void test_every_verb(void **state)
{
	(void)state;
	ok("USER demo@example.test", POP3_VERB_USER, 1, "demo@example.test", NULL);
	ok("PASS secret", POP3_VERB_PASS, 1, "secret", NULL);
	ok("APOP mrose c4c9334bac560ecc979e58001b3e22fb", POP3_VERB_APOP, 2, "mrose",
	   "c4c9334bac560ecc979e58001b3e22fb");
	ok("AUTH", POP3_VERB_AUTH, 0, NULL, NULL);
	ok("AUTH PLAIN", POP3_VERB_AUTH, 1, "PLAIN", NULL);
	ok("AUTH PLAIN AGRlbW8AcGFzcw==", POP3_VERB_AUTH, 2, "PLAIN", "AGRlbW8AcGFzcw==");
	ok("AUTH PLAIN =", POP3_VERB_AUTH, 2, "PLAIN", "=");
	ok("STLS", POP3_VERB_STLS, 0, NULL, NULL);
	ok("CAPA", POP3_VERB_CAPA, 0, NULL, NULL);
	ok("UTF8", POP3_VERB_UTF8, 0, NULL, NULL);
	ok("STAT", POP3_VERB_STAT, 0, NULL, NULL);
	ok("LIST", POP3_VERB_LIST, 0, NULL, NULL);
	ok("LIST 1", POP3_VERB_LIST, 1, "1", NULL);
	ok("RETR 2", POP3_VERB_RETR, 1, "2", NULL);
	ok("DELE 3", POP3_VERB_DELE, 1, "3", NULL);
	ok("NOOP", POP3_VERB_NOOP, 0, NULL, NULL);
	ok("RSET", POP3_VERB_RSET, 0, NULL, NULL);
	ok("TOP 1 10", POP3_VERB_TOP, 2, "1", "10");
	ok("TOP 1 0", POP3_VERB_TOP, 2, "1", "0");
	ok("UIDL", POP3_VERB_UIDL, 0, NULL, NULL);
	ok("UIDL 7", POP3_VERB_UIDL, 1, "7", NULL);
	ok("QUIT", POP3_VERB_QUIT, 0, NULL, NULL);
}

static void test_case_insensitive(void **state)
{
	(void)state;
	ok("user Demo@Example.TEST", POP3_VERB_USER, 1, "Demo@Example.TEST", NULL);
	ok("pass MiXeD", POP3_VERB_PASS, 1, "MiXeD", NULL);
	ok("Apop Name DIGEST", POP3_VERB_APOP, 2, "Name", "DIGEST");
	ok("auth plain", POP3_VERB_AUTH, 1, "plain", NULL);
	ok("sTlS", POP3_VERB_STLS, 0, NULL, NULL);
	ok("capa", POP3_VERB_CAPA, 0, NULL, NULL);
	ok("utf8", POP3_VERB_UTF8, 0, NULL, NULL);
	ok("stat", POP3_VERB_STAT, 0, NULL, NULL);
	ok("List 1", POP3_VERB_LIST, 1, "1", NULL);
	ok("retr 1", POP3_VERB_RETR, 1, "1", NULL);
	ok("dElE 1", POP3_VERB_DELE, 1, "1", NULL);
	ok("noop", POP3_VERB_NOOP, 0, NULL, NULL);
	ok("rset", POP3_VERB_RSET, 0, NULL, NULL);
	ok("Top 1 2", POP3_VERB_TOP, 2, "1", "2");
	ok("uidl", POP3_VERB_UIDL, 0, NULL, NULL);
	ok("QuIt", POP3_VERB_QUIT, 0, NULL, NULL);
}

static void test_verb_names(void **state)
{
	(void)state;
	const char *names[] = {"UNKNOWN", "USER", "PASS", "APOP", "AUTH", "STLS",
	                       "CAPA",    "UTF8", "STAT", "LIST", "RETR", "DELE",
	                       "NOOP",    "RSET", "TOP",  "UIDL", "QUIT"};
	assert_int_equal(sizeof(names) / sizeof(names[0]), POP3_VERB_COUNT);
	for (int v = 0; v < POP3_VERB_COUNT; v++)
		assert_string_equal(pop3_parser_verb_name((enum pop3_verb)v), names[v]);
	assert_string_equal(pop3_parser_verb_name(POP3_VERB_COUNT), "UNKNOWN");
	assert_string_equal(pop3_parser_verb_name((enum pop3_verb)1000), "UNKNOWN");
}

static void test_unknown(void **state)
{
	(void)state;
	bad("", ERR_UNKNOWN);
	bad("   ", ERR_UNKNOWN);
	bad(" USER demo", ERR_UNKNOWN); /* leading space: empty keyword */
	bad("XTND XMIT", ERR_UNKNOWN);
	bad("USERX demo", ERR_UNKNOWN);
	bad("USE demo", ERR_UNKNOWN);
	bad("TO 1 2", ERR_UNKNOWN);
	bad("LAST", ERR_UNKNOWN); /* removed from RFC 1939 */
	bad("EHLO x", ERR_UNKNOWN);
	bad("USER\tdemo", ERR_UNKNOWN); /* only SP separates */
	bad("STA\xc3\x84", ERR_UNKNOWN);
}

static void test_argument_counts(void **state)
{
	(void)state;
	/* too few */
	bad("USER", ERR_MISSING);
	bad("APOP", ERR_MISSING);
	bad("APOP name", ERR_MISSING);
	bad("RETR", ERR_MISSING);
	bad("DELE", ERR_MISSING);
	bad("TOP", ERR_MISSING);
	bad("TOP 1", ERR_MISSING);
	/* too many */
	bad("USER a b", ERR_INVALID);
	bad("APOP a b c", ERR_INVALID);
	bad("AUTH PLAIN abc def", ERR_INVALID);
	bad("STLS now", ERR_INVALID);
	bad("CAPA x", ERR_INVALID);
	bad("UTF8 on", ERR_INVALID);
	bad("STAT 1", ERR_INVALID);
	bad("LIST 1 2", ERR_INVALID);
	bad("RETR 1 2", ERR_INVALID);
	bad("DELE 1 2", ERR_INVALID);
	bad("NOOP x", ERR_INVALID);
	bad("RSET 1", ERR_INVALID);
	bad("TOP 1 2 3", ERR_INVALID);
	bad("UIDL 1 2", ERR_INVALID);
	bad("QUIT now", ERR_INVALID);
	/* empty arguments: exactly one SP between arguments */
	bad("LIST  1", ERR_INVALID);
	bad("TOP 1  2", ERR_INVALID);
	bad("TOP  1 2", ERR_INVALID);
	bad("APOP name  digest", ERR_INVALID);
	bad("USER  demo", ERR_INVALID);
	/* trailing white space is not an argument */
	ok("STAT ", POP3_VERB_STAT, 0, NULL, NULL);
	ok("QUIT\t", POP3_VERB_QUIT, 0, NULL, NULL);
	ok("NOOP \t ", POP3_VERB_NOOP, 0, NULL, NULL);
	ok("LIST 1 ", POP3_VERB_LIST, 1, "1", NULL);
	ok("TOP 1 2   ", POP3_VERB_TOP, 2, "1", "2");
	ok("USER demo\t", POP3_VERB_USER, 1, "demo", NULL);
	/* arguments are not interpreted by the parser */
	ok("RETR abc", POP3_VERB_RETR, 1, "abc", NULL);
	ok("TOP -1 +2", POP3_VERB_TOP, 2, "-1", "+2");
	/* 8-bit (UTF-8) user names pass (RFC 6856) */
	ok("USER j\xc3\xb6rg@example.test", POP3_VERB_USER, 1, "j\xc3\xb6rg@example.test", NULL);
}

static void test_pass(void **state)
{
	(void)state;
	ok("PASS alice Secret 2", POP3_VERB_PASS, 1, "alice Secret 2", NULL);
	ok("pass  two  spaces", POP3_VERB_PASS, 1, " two  spaces", NULL);
	ok("PASS a\tb", POP3_VERB_PASS, 1, "a\tb", NULL);
	ok("PASS x", POP3_VERB_PASS, 1, "x", NULL);
	bad("PASS", ERR_PASS);
	bad("PASS ", ERR_PASS);
	bad("PASS  \t", ERR_PASS);
	/* PASS is exempt from the per-argument limit */
	char *line = line_with_arg("PASS ", 600, 'p', "");
	ok(line, POP3_VERB_PASS, 1, repeat(600, 'p'), NULL);
}

static void test_pass_trailing_space(void **state)
{
	(void)state;
	/* "PASS takes the rest of the line as its one argument" (pop3_parser.h) and RFC 1939
	 * §7 lets spaces be part of the password: one that ends in a space must arrive whole,
	 * as it does through AUTH PLAIN. */
	ok("PASS secret ", POP3_VERB_PASS, 1, "secret ", NULL);
	ok("PASS two words  ", POP3_VERB_PASS, 1, "two words  ", NULL);
}

static void test_auth_initial_response(void **state)
{
	(void)state;
	/* A SCRAM client-first or a PLAIN response with long names is longer than 255. */
	char *ir = repeat(3000, 'A');
	char *line = line_with_arg("AUTH SCRAM-SHA-256 ", 3000, 'A', "");
	ok(line, POP3_VERB_AUTH, 2, "SCRAM-SHA-256", ir);
	line = line_with_arg("AUTH PLAIN ", 256, 'B', "");
	ok(line, POP3_VERB_AUTH, 2, "PLAIN", repeat(256, 'B'));
	/* the mechanism name is an ordinary argument */
	line = line_with_arg("AUTH ", 256, 'M', "");
	bad(line, ERR_TOO_LONG);
	line = line_with_arg("AUTH ", 255, 'M', "");
	ok(line, POP3_VERB_AUTH, 1, repeat(255, 'M'), NULL);
}

static void test_argument_limit(void **state)
{
	(void)state;
	static const char *const one_arg[] = {"USER ", "LIST ", "RETR ", "DELE ", "UIDL "};
	static const enum pop3_verb one_verb[] = {POP3_VERB_USER, POP3_VERB_LIST, POP3_VERB_RETR,
	                                          POP3_VERB_DELE, POP3_VERB_UIDL};
	char *a255 = repeat(POP3_ARG_MAX, '1');
	for (size_t i = 0; i < sizeof(one_arg) / sizeof(one_arg[0]); i++) {
		ok(line_with_arg(one_arg[i], 255, '1', ""), one_verb[i], 1, a255, NULL);
		bad(line_with_arg(one_arg[i], 256, '1', ""), ERR_TOO_LONG);
		bad(line_with_arg(one_arg[i], 100000, '1', ""), ERR_TOO_LONG);
	}
	/* both arguments of APOP and TOP */
	ok(line_with_arg("APOP ", 255, 'n', " d"), POP3_VERB_APOP, 2, repeat(255, 'n'), "d");
	bad(line_with_arg("APOP ", 256, 'n', " d"), ERR_TOO_LONG);
	ok(line_with_arg("APOP name ", 255, 'd', ""), POP3_VERB_APOP, 2, "name", repeat(255, 'd'));
	bad(line_with_arg("APOP name ", 256, 'd', ""), ERR_TOO_LONG);
	ok(line_with_arg("TOP 1 ", 255, '2', ""), POP3_VERB_TOP, 2, "1", repeat(255, '2'));
	bad(line_with_arg("TOP 1 ", 256, '2', ""), ERR_TOO_LONG);
	bad(line_with_arg("TOP ", 256, '2', " 1"), ERR_TOO_LONG);
}

static void test_control_characters(void **state)
{
	(void)state;
	bad_n("NOOP\0", 5, ERR_CHARS);
	bad_n("\0NOOP", 5, ERR_CHARS);
	bad_n("USER a\0b", 8, ERR_CHARS);
	bad_n("PASS a\0b", 8, ERR_CHARS);
	bad("NO\rOP", ERR_CHARS);
	bad("NOOP\r", ERR_CHARS);
	bad("USER a\nb", ERR_CHARS);
	bad("PASS secret\r\nDELE 1", ERR_CHARS);
	bad("AUTH PLAIN abc\n", ERR_CHARS);
	bad("\n", ERR_CHARS);
	/* a NUL anywhere, also in what would otherwise be an unknown command */
	bad_n("XYZZY\0", 6, ERR_CHARS);
	/* the parser reads len octets, not up to a NUL */
	ok_n("STAT garbage", 4, POP3_VERB_STAT, 0, NULL, NULL);
}

static void number_ok(const char *s, uint32_t want)
{
	uint32_t n = 12345;
	if (pop3_parser_number(s, &n) != 0)
		fail_msg("'%s' refused as a number", s);
	assert_int_equal(n, want);
}

static void number_bad(const char *s)
{
	uint32_t n = 12345;
	if (pop3_parser_number(s, &n) == 0)
		fail_msg("'%s' accepted as %u", s, n);
	assert_int_equal(n, 12345); /* untouched on failure */
}

static void test_number(void **state)
{
	(void)state;
	number_ok("1", 1);
	number_ok("9", 9);
	number_ok("10", 10);
	number_ok("007", 7);
	number_ok("65536", 65536);
	number_ok("4294967294", 4294967294u);
	number_ok("4294967295", UINT32_MAX);
	number_ok("04294967295", UINT32_MAX);
	number_bad("");
	number_bad("0");
	number_bad("00");
	number_bad("4294967296");
	number_bad("4294967300");
	number_bad("42949672950");
	number_bad("18446744073709551616");
	number_bad("99999999999999999999999999");
	number_bad("+1");
	number_bad("-1");
	number_bad("-0");
	number_bad(" 1");
	number_bad("1 ");
	number_bad("1a");
	number_bad("a1");
	number_bad("0x10");
	number_bad("1.0");
	number_bad("1e3");
	number_bad("\xd9\xa1"); /* ARABIC-INDIC DIGIT ONE */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_every_verb, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_case_insensitive, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verb_names, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_argument_counts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pass, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pass_trailing_space, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_auth_initial_response, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_argument_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_control_characters, setup, teardown),
	    cmocka_unit_test(test_number),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
