/* Configuration text parsed as the file PATH, shared by the unit tests of core/conf and
 * core/conf_policy: parse() must accept the text (the test fails with the parser's message
 * otherwise), refuse() must refuse it with exactly the expected "FILE:LINE: key: reason"
 * message. Header-only: each test program includes it once, after cmocka.h. */
#ifndef POSTHORN_TESTS_CONF_TEXT_H
#define POSTHORN_TESTS_CONF_TEXT_H

#include <stdlib.h>
#include <string.h>

#include "core/conf.h"

#define PATH "/etc/posthorn/posthorn.conf"

/* The first len octets of text (NULs included), which must be accepted: a conf with one
 * reference and path PATH, no error message. */
static inline struct conf *parse_n(const char *text, size_t len)
{
	char *error = NULL;
	struct conf *c = conf_parse(PATH, text, len, &error);
	if (c == NULL)
		fail_msg("\"%s\" refused: %s", text, error);
	assert_null(error);
	assert_string_equal(c->path, PATH);
	assert_int_equal(c->refcount, 1);
	return c;
}

static inline struct conf *parse(const char *text)
{
	return parse_n(text, strlen(text));
}

/* text must be refused with exactly the message want. */
static inline void refuse_n(const char *text, size_t len, const char *want)
{
	char *error = NULL;
	struct conf *c = conf_parse(PATH, text, len, &error);
	if (c != NULL) {
		conf_free(&c);
		fail_msg("\"%s\" accepted, expected \"%s\"", text, want);
	}
	assert_non_null(error);
	assert_string_equal(error, want);
	free(error);
}

static inline void refuse(const char *text, const char *want)
{
	refuse_n(text, strlen(text), want);
}

#endif
