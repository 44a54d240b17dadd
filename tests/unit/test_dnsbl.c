/* Unit tests for smtp/dnsbl: zone lists with postscreen-style filters, the reversed query
 * names of RFC 5782 §2.1 (IPv4, IPv6 nibbles, IPv4-mapped IPv6) and the verdict of an answer,
 * with Spamhaus's 127.255.255.x refusals never counting as listed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "smtp/dnsbl.h"
#include "core/banned.h"

static struct dnsbl_zone zones[DNSBL_ZONES_MAX];

static size_t parse_ok(const char *text)
{
	size_t n = 99;
	const char *err = NULL;
	assert_int_equal(dnsbl_zones_parse(text, zones, DNSBL_ZONES_MAX, &n, &err), 0);
	return n;
}

static void parse_bad(const char *text, const char *why)
{
	size_t n;
	const char *err = NULL;
	assert_int_equal(dnsbl_zones_parse(text, zones, DNSBL_ZONES_MAX, &n, &err), -1);
	assert_string_equal(err, why);
}

static enum dnsbl_verdict verdict(const struct dnsbl_zone *z, const char *a, const char *b)
{
	unsigned char addrs[2][4];
	size_t n = 0;
	for (const char *s = a; s != NULL && n < 2; s = s == a ? b : NULL)
		assert_int_equal(inet_pton(AF_INET, s, addrs[n++]), 1);
	return dnsbl_verdict(z, (const unsigned char(*)[4])addrs, n);
}

static void test_parse(void **state)
{
	(void)state;
	assert_int_equal(parse_ok(""), 0);
	assert_int_equal(parse_ok(" zen.spamhaus.org=127.0.0.[2..11], bl.spamcop.net "), 2);
	assert_string_equal(zones[0].name, "zen.spamhaus.org");
	assert_true(zones[0].filtered);
	assert_string_equal(zones[1].name, "bl.spamcop.net");
	assert_false(zones[1].filtered);
	assert_int_equal(parse_ok("List.DNSWL.org.=127.0.[0..255].[1;2;3]"), 1);
	assert_string_equal(zones[0].name, "list.dnswl.org");
	parse_bad("zen.spamhaus.org=127.0.0", "a DNS list filter is not like 127.0.0.[2..11]");
	parse_bad("zen.spamhaus.org=127.0.0.[11..2]",
	          "a DNS list filter is not like 127.0.0.[2..11]");
	parse_bad("zen.spamhaus.org=127.0.0.256", "a DNS list filter is not like 127.0.0.[2..11]");
	parse_bad("zen.spamhaus.org=127.0.0.[2", "a DNS list filter is not like 127.0.0.[2..11]");
	parse_bad("bad/zone", "a DNS list zone is not a domain name");
	parse_bad("=127.0.0.2", "a DNS list zone is empty or too long");
	parse_bad("a b c d e f g h i j k l m n o p q", "too many DNS list zones");
}

static void test_query_names(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("zen.example"), 1);
	unsigned char ip[16] = {0};
	char out[DNSBL_NAME_MAX];
	assert_int_equal(inet_pton(AF_INET, "192.0.2.99", ip), 1);
	assert_int_equal(dnsbl_query_name(AF_INET, ip, &zones[0], out, sizeof(out)), 0);
	assert_string_equal(out, "99.2.0.192.zen.example"); /* RFC 5782 §2.1 */
	assert_int_equal(inet_pton(AF_INET6, "::ffff:192.0.2.99", ip), 1);
	assert_int_equal(dnsbl_query_name(AF_INET6, ip, &zones[0], out, sizeof(out)), 0);
	assert_string_equal(out, "99.2.0.192.zen.example");
	assert_int_equal(inet_pton(AF_INET6, "2001:db8:1:2:3:4:567:89ab", ip), 1);
	assert_int_equal(dnsbl_query_name(AF_INET6, ip, &zones[0], out, sizeof(out)), 0);
	/* RFC 5782 §2.4's example. */
	assert_string_equal(out, "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2."
	                         "zen.example");
	assert_int_equal(dnsbl_query_name(AF_INET6, ip, &zones[0], out, 40), -1);
}

static void test_verdicts(void **state)
{
	(void)state;
	assert_int_equal(
	    parse_ok(
	        "any.example spamhaus.example=127.0.0.[2..11] wl.example=127.0.[2;3].[0..255]"),
	    3);
	assert_int_equal(verdict(&zones[0], "127.0.0.2", NULL), DNSBL_LISTED);
	assert_int_equal(verdict(&zones[0], "127.1.2.3", NULL), DNSBL_LISTED);
	assert_int_equal(verdict(&zones[0], "10.0.0.1", NULL), DNSBL_NOT_LISTED);
	assert_int_equal(dnsbl_verdict(&zones[0], NULL, 0), DNSBL_NOT_LISTED);
	/* Refusals never list a client; with a real listing beside them it is listed. */
	assert_int_equal(verdict(&zones[0], "127.255.255.254", NULL), DNSBL_REFUSED);
	assert_int_equal(verdict(&zones[1], "127.255.255.255", "127.0.0.4"), DNSBL_LISTED);
	assert_int_equal(verdict(&zones[1], "127.0.0.4", NULL), DNSBL_LISTED);
	assert_int_equal(verdict(&zones[1], "127.0.0.11", NULL), DNSBL_LISTED);
	assert_int_equal(verdict(&zones[1], "127.0.0.12", NULL), DNSBL_NOT_LISTED);
	assert_int_equal(verdict(&zones[1], "127.0.1.2", NULL), DNSBL_NOT_LISTED);
	assert_int_equal(verdict(&zones[2], "127.0.3.200", NULL), DNSBL_LISTED);
	assert_int_equal(verdict(&zones[2], "127.0.4.0", NULL), DNSBL_NOT_LISTED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_query_names),
	    cmocka_unit_test(test_verdicts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
