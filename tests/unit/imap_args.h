/* The parse harness shared by the unit tests of the IMAP parser and of the command argument
 * parsers (test_imap_parser.c, test_imap_search.c, test_imap_notify.c): one arena and one
 * IMAP parser per test (teardown checks that imap_parser_free() clears the pointer), and the
 * arguments of a command line fed through the parser. Header-only: each test program
 * includes it once, after cmocka.h, and lists its tests with setup and teardown. */
#ifndef POSTHORN_TESTS_IMAP_ARGS_H
#define POSTHORN_TESTS_IMAP_ARGS_H

#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "imap/imap_parser.h"

static struct arena *arena;
static struct imap_parser *parser;

static int setup(void **state)
{
	(void)state;
	arena = arena_new(4096);
	parser = imap_parser_new(arena, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	imap_parser_free(&parser);
	assert_null(parser);
	arena_free(&arena);
	return 0;
}

/* The arguments of "t <command> <args>", fed to the parser: one line, or with literals
 * (args has "{n}\r\n" before each literal's n octets). The test fails when the parser
 * refuses the line. */
static inline const struct imap_arg *imap_args_of(const char *command, const char *args)
{
	char line[8192];
	snprintf(line, sizeof(line), "t %s %s", command, args);
	struct imap_literal lit;
	const char *error = NULL;
	char *p = line;
	int r;
	for (;;) {
		char *brace = strstr(p, "}\r\n");
		size_t len = brace != NULL ? (size_t)(brace + 1 - p) : strlen(p);
		r = imap_parser_feed_line(parser, p, len, &lit, &error);
		if (r != 0)
			break;
		p = brace + 3;
		assert_true(imap_parser_feed_literal(parser, (const unsigned char *)p, lit.size) >=
		            0);
		p += lit.size;
	}
	if (r != 1)
		fail_msg("parser refused '%s': %s", line, error != NULL ? error : "literal");
	return imap_parser_args(parser);
}

#endif
