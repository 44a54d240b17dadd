/* Unit tests for smtp/authres: the Authentication-Results field we write (RFC 8601 §2.2,
 * values quoted where a token does not hold them) and the search for incoming fields that
 * claim our authserv-id (§5). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "smtp/authres.h"
#include "core/banned.h"

static void value_is(const char *value, const char *want)
{
	struct buf b;
	buf_init(&b, 1024);
	assert_int_equal(authres_append_value(&b, value), 0);
	assert_string_equal(buf_cstr(&b), want);
	buf_free(&b);
}

static void test_values(void **state)
{
	(void)state;
	value_is("example.org", "example.org");
	value_is("user@example.org", "user@example.org");
	value_is("first.last+tag@example.org", "first.last+tag@example.org");
	value_is("@example.org", "@example.org");
	/* base64 of header.b holds '/' and '=': tspecials, so quoted */
	value_is("ab/cd+e=", "\"ab/cd+e=\"");
	value_is("two words", "\"two words\"");
	value_is("say \"hi\" \\ bye", "\"say \\\"hi\\\" \\\\ bye\"");
	value_is("ctl\r\nx", "\"ctl??x\"");
	value_is("", "\"\"");
	value_is("a..b@example.org", "\"a..b@example.org\"");
	value_is("a@exa mple.org", "\"a@exa mple.org\"");
	value_is("a@example.org.", "\"a@example.org.\"");
	value_is("\"q\"@example.org", "\"\\\"q\\\"@example.org\"");
}

static void test_format(void **state)
{
	(void)state;
	struct authres_method m[3] = {
	    {.method = "spf",
	     .result = "pass",
	     .props = {{"smtp.mailfrom", "a@sender.test"}},
	     .prop_count = 1},
	    {.method = "dkim",
	     .result = "fail",
	     .reason = "body hash did not verify",
	     .props = {{"header.d", "sender.test"}, {"header.s", "sel"}, {"header.b", "AbC/1+x="}},
	     .prop_count = 3},
	    {.method = "dmarc",
	     .result = "pass",
	     .props = {{"header.from", "sender.test"}},
	     .prop_count = 1},
	};
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(authres_format(&b, "mx.example.org", m, 3), 0);
	assert_string_equal(buf_cstr(&b),
	                    "Authentication-Results: mx.example.org;\r\n"
	                    "\tspf=pass smtp.mailfrom=a@sender.test;\r\n"
	                    "\tdkim=fail reason=\"body hash did not verify\" header.d=sender.test "
	                    "header.s=sel header.b=\"AbC/1+x=\";\r\n"
	                    "\tdmarc=pass header.from=sender.test\r\n");
	buf_reset(&b);
	assert_int_equal(authres_format(&b, "mx.example.org", NULL, 0), 0);
	assert_string_equal(buf_cstr(&b), "Authentication-Results: mx.example.org; none\r\n");
	buf_free(&b);
	buf_init(&b, 30); /* too small: -1 */
	assert_int_equal(authres_format(&b, "mx.example.org", m, 3), -1);
	buf_free(&b);
}

static bool claims(const char *body, const char *id)
{
	return authres_claims((const unsigned char *)body, strlen(body), id);
}

static void test_claims(void **state)
{
	(void)state;
	assert_true(claims(" mx.example.org; spf=pass", "mx.example.org"));
	assert_true(claims(" MX.Example.ORG 1; none", "mx.example.org"));
	assert_true(claims(" (comment (nested)) mx.example.org;", "mx.example.org"));
	assert_true(claims("\r\n\tmx.example.org;", "mx.example.org"));
	assert_true(claims(" \"mx.example.org\"; none", "mx.example.org"));
	assert_true(claims(" \"mx.exa\\mple.org\"; none", "mx.example.org"));
	assert_false(claims(" mx.example.org.evil; none", "mx.example.org"));
	assert_false(claims(" other.example; none", "mx.example.org"));
	assert_false(claims(" mx.example; none", "mx.example.org"));
	assert_false(claims(" \"mx.example.org", "mx.example.org"));
	assert_false(claims(" (unterminated mx.example.org", "mx.example.org"));
	assert_false(claims("", "mx.example.org"));
}

static void test_find(void **state)
{
	(void)state;
	const char *msg = "Received: from x\r\n"
	                  "Authentication-Results: mx.example.org;\r\n"
	                  "\tspf=pass smtp.mailfrom=forged@x\r\n"
	                  "authentication-results : other.example; dkim=pass\r\n"
	                  "Subject: hi\r\n"
	                  "AUTHENTICATION-RESULTS: (c) mx.example.org; none\r\n"
	                  "Authentication-Results-Extra: mx.example.org; none\r\n"
	                  "\r\n"
	                  "Authentication-Results: mx.example.org; in the body\r\n";
	struct authres_span *spans;
	size_t header_len;
	size_t n = authres_find_claims((const unsigned char *)msg, strlen(msg), "mx.example.org",
	                               &spans, &header_len);
	assert_int_equal(n, 2);
	assert_int_equal(header_len, strstr(msg, "\r\n\r\n") + 4 - msg);
	assert_int_equal(spans[0].offset, strstr(msg, "Authentication-Results: mx") - msg);
	assert_int_equal(spans[0].len, strlen("Authentication-Results: mx.example.org;\r\n"
	                                      "\tspf=pass smtp.mailfrom=forged@x\r\n"));
	assert_int_equal(spans[1].offset, strstr(msg, "AUTHENTICATION") - msg);
	assert_int_equal(spans[1].len,
	                 strlen("AUTHENTICATION-RESULTS: (c) mx.example.org; none\r\n"));
	free(spans);

	/* LF line ends; no empty line: the whole message is header */
	const char *lf = "Authentication-Results: mx.example.org; none\nSubject: x\n";
	n = authres_find_claims((const unsigned char *)lf, strlen(lf), "mx.example.org", &spans,
	                        &header_len);
	assert_int_equal(n, 1);
	assert_int_equal(spans[0].offset, 0);
	assert_int_equal(spans[0].len, strlen("Authentication-Results: mx.example.org; none\n"));
	assert_int_equal(header_len, strlen(lf));
	free(spans);

	/* many forged fields: all found; a message starting with the empty line: none */
	char many[4096] = "";
	size_t len = 0;
	for (int i = 0; i < 50; i++) {
		const char *f = "Authentication-Results: mx.example.org; none\r\n";
		memcpy(many + len, f, strlen(f));
		len += strlen(f);
	}
	memcpy(many + len, "\r\nbody", 6);
	len += 6;
	n = authres_find_claims((const unsigned char *)many, len, "mx.example.org", &spans,
	                        &header_len);
	assert_int_equal(n, 50);
	assert_int_equal(header_len, len - 4);
	free(spans);
	n = authres_find_claims(
	    (const unsigned char *)"\r\nAuthentication-Results: mx.example.org;", 41,
	    "mx.example.org", &spans, &header_len);
	assert_int_equal(n, 0);
	assert_null(spans);
	assert_int_equal(header_len, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_claims),
	    cmocka_unit_test(test_find),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
