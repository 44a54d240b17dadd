/* Unit tests for smtp/mta_sts: the TXT record, the HTTP response (status, type, size,
 * redirects), the policy text (fields, line ends, limits), and MX matching with
 * wildcards. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "smtp/mta_sts.h"
#include "core/banned.h"

static int txt(const char *s, char id[MTA_STS_ID_MAX])
{
	return mta_sts_parse_txt(s, strlen(s), id);
}

static void test_txt(void **state)
{
	(void)state;
	char id[MTA_STS_ID_MAX];
	assert_int_equal(txt("v=STSv1; id=20261206T1", id), 1);
	assert_string_equal(id, "20261206T1");
	assert_int_equal(txt("v=STSv1;id=abc; ext=1 ", id), 1);
	assert_string_equal(id, "abc");
	assert_int_equal(txt("v=STSv1; id=", id), 0);
	assert_int_equal(txt("v=STSv1", id), 0);
	assert_int_equal(txt("v=spf1 -all", id), 0);
	assert_int_equal(txt("v=STSv1; id=has-dash", id), 0);
	assert_int_equal(txt("v=STSv1; id=0123456789012345678901234567890123", id), 0);
	assert_int_equal(txt("v=STSv2; id=1", id), 0);
}

static int http(const char *s, const char **body, size_t *n, const char **err)
{
	return mta_sts_parse_http((const unsigned char *)s, strlen(s), (const unsigned char **)body,
	                          n, err);
}

static void test_http(void **state)
{
	(void)state;
	const char *body, *err;
	size_t n;
	assert_int_equal(http("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
	                      "Content-Length: 5\r\n\r\nhello",
	                      &body, &n, &err),
	                 0);
	assert_int_equal(n, 5);
	assert_memory_equal(body, "hello", 5);
	assert_int_equal(http("HTTP/1.0 200 OK\ncontent-type:text/plain\n\nx", &body, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(http("HTTP/1.1 301 Moved\r\nLocation: x\r\n\r\n", &body, &n, &err), -1);
	assert_non_null(strstr(err, "redirect"));
	assert_int_equal(
	    http("HTTP/1.1 404 No\r\nContent-Type: text/plain\r\n\r\n", &body, &n, &err), -1);
	assert_int_equal(
	    http("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\nx", &body, &n, &err), -1);
	assert_int_equal(
	    http("HTTP/1.1 200 OK\r\nContent-Type: text/plainx\r\n\r\nx", &body, &n, &err), -1);
	assert_int_equal(http("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n", &body, &n, &err),
	                 -1);
	assert_int_equal(http("SMTP 220 hi", &body, &n, &err), -1);
	/* A body over 64 KiB */
	size_t big = MTA_STS_BODY_MAX + 1;
	const char *head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n";
	char *r = malloc(strlen(head) + big + 1);
	memcpy(r, head, strlen(head));
	memset(r + strlen(head), 'a', big);
	r[strlen(head) + big] = '\0';
	assert_int_equal(http(r, &body, &n, &err), -1);
	free(r);
}

static int policy(const char *s, struct mta_sts_policy *p, const char **err)
{
	return mta_sts_parse_policy(s, strlen(s), p, err);
}

static void test_policy(void **state)
{
	(void)state;
	struct mta_sts_policy p;
	const char *err;
	assert_int_equal(policy("version: STSv1\r\nmode: enforce\r\nmx: mail.Example.com.\r\n"
	                        "mx: *.example.net\r\nmax_age: 86400\r\n",
	                        &p, &err),
	                 0);
	assert_int_equal(p.mode, MTA_STS_MODE_ENFORCE);
	assert_int_equal(p.max_age, 86400);
	assert_int_equal(p.mx_count, 2);
	assert_string_equal(p.mx[0], "mail.example.com");
	assert_int_equal(policy("version: STSv1\nmode: testing\nmx: a.test\nmax_age: 99999999999\n"
	                        "future_key: x\n",
	                        &p, &err),
	                 -1); /* max_age longer than 10 digits */
	assert_int_equal(
	    policy("version: STSv1\nmode: testing\nmx: a.test\nmax_age: 999999999\n", &p, &err), 0);
	assert_int_equal(p.max_age, MTA_STS_MAX_AGE_MAX);
	assert_int_equal(policy("version: STSv1\nmode: none\nmax_age: 1\n", &p, &err), 0);
	assert_int_equal(policy("mode: enforce\nmx: a.test\nmax_age: 1\n", &p, &err), -1);
	assert_int_equal(policy("version: STSv1\nmode: enforce\nmax_age: 1\n", &p, &err), -1);
	assert_int_equal(policy("version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n", &p, &err), -1);
	assert_int_equal(policy("version: STSv1\nmode: enforce\nmx: a\nmax_age: -1\n", &p, &err),
	                 -1);
	assert_int_equal(policy("version: STSv1\nmode enforce\n", &p, &err), -1);
	assert_int_equal(policy("", &p, &err), -1);
}

static void test_mx_allowed(void **state)
{
	(void)state;
	struct mta_sts_policy p;
	const char *err;
	assert_int_equal(policy("version: STSv1\nmode: enforce\nmx: mail.example.com\n"
	                        "mx: *.example.net\nmax_age: 60\n",
	                        &p, &err),
	                 0);
	assert_true(mta_sts_mx_allowed(&p, "mail.example.com"));
	assert_true(mta_sts_mx_allowed(&p, "MAIL.example.COM"));
	assert_true(mta_sts_mx_allowed(&p, "mx1.example.net"));
	assert_false(mta_sts_mx_allowed(&p, "a.b.example.net")); /* one label only */
	assert_false(mta_sts_mx_allowed(&p, "example.net"));
	assert_false(mta_sts_mx_allowed(&p, ".example.net"));
	assert_false(mta_sts_mx_allowed(&p, "mail.example.com.evil.test"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_txt),
	    cmocka_unit_test(test_http),
	    cmocka_unit_test(test_policy),
	    cmocka_unit_test(test_mx_allowed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
