/* Unit tests for the pure part of smtp/smtp_rdns: the verdict over PTR and address answers
 * (confirmed by the first name with the client's address, forged, failed, temporary), which
 * PTR names are usable host names, and the reverse names of IPv4 and IPv6 addresses. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <sys/socket.h>

#include "smtp/smtp_rdns.h"
#include "core/banned.h"

static struct dns_record a_record(unsigned char a, unsigned char b, unsigned char c,
                                  unsigned char d)
{
	struct dns_record r = {.type = DNS_TYPE_A};
	r.u.addr.family = AF_INET;
	r.u.addr.bytes[0] = a;
	r.u.addr.bytes[1] = b;
	r.u.addr.bytes[2] = c;
	r.u.addr.bytes[3] = d;
	return r;
}

static void test_confirm(void **state)
{
	(void)state;
	const unsigned char ip[4] = {192, 0, 2, 7};
	struct dns_record other[] = {a_record(192, 0, 2, 8), a_record(198, 51, 100, 1)};
	struct dns_record both[] = {a_record(192, 0, 2, 8), a_record(192, 0, 2, 7)};
	size_t match = 99;
	/* The second name has the client's address among its two. */
	struct smtp_rdns_candidate c[2] = {
	    {.name = "a.example", .status = DNS_STATUS_OK, .records = other, .count = 2},
	    {.name = "b.example", .status = DNS_STATUS_OK, .records = both, .count = 2},
	};
	assert_int_equal(smtp_rdns_confirm(AF_INET, ip, DNS_STATUS_OK, c, 2, &match), SMTP_RDNS_OK);
	assert_int_equal(match, 1);
	/* No address matches: forged. */
	assert_int_equal(smtp_rdns_confirm(AF_INET, ip, DNS_STATUS_OK, c, 1, &match),
	                 SMTP_RDNS_FORGED);
	c[1].status = DNS_STATUS_NXDOMAIN;
	assert_int_equal(smtp_rdns_confirm(AF_INET, ip, DNS_STATUS_OK, c, 2, &match),
	                 SMTP_RDNS_FORGED);
	/* A name's lookup failed for now: it might have matched. */
	c[1].status = DNS_STATUS_TEMPFAIL;
	assert_int_equal(smtp_rdns_confirm(AF_INET, ip, DNS_STATUS_OK, c, 2, &match),
	                 SMTP_RDNS_TEMP);
	/* ... but a match elsewhere still confirms. */
	c[0].records = both;
	assert_int_equal(smtp_rdns_confirm(AF_INET, ip, DNS_STATUS_OK, c, 2, &match), SMTP_RDNS_OK);
	assert_int_equal(match, 0);
	/* No PTR record, no usable name, a PTR lookup that failed. */
	assert_int_equal(smtp_rdns_confirm(AF_INET, ip, DNS_STATUS_NXDOMAIN, NULL, 0, &match),
	                 SMTP_RDNS_FAIL);
	assert_int_equal(smtp_rdns_confirm(AF_INET, ip, DNS_STATUS_OK, NULL, 0, &match),
	                 SMTP_RDNS_FAIL);
	assert_int_equal(smtp_rdns_confirm(AF_INET, ip, DNS_STATUS_TEMPFAIL, c, 2, &match),
	                 SMTP_RDNS_TEMP);
	assert_int_equal(smtp_rdns_confirm(AF_INET, ip, DNS_STATUS_BOGUS, NULL, 0, &match),
	                 SMTP_RDNS_TEMP);
	/* An IPv6 client against IPv4 records with the same first octets: no match. */
	unsigned char ip6[16] = {192, 0, 2, 7};
	c[0].status = c[1].status = DNS_STATUS_OK;
	assert_int_equal(smtp_rdns_confirm(AF_INET6, ip6, DNS_STATUS_OK, c, 2, &match),
	                 SMTP_RDNS_FORGED);
	struct dns_record aaaa = {.type = DNS_TYPE_AAAA};
	aaaa.u.addr.family = AF_INET6;
	memcpy(aaaa.u.addr.bytes, ip6, 16);
	c[1].records = &aaaa;
	c[1].count = 1;
	assert_int_equal(smtp_rdns_confirm(AF_INET6, ip6, DNS_STATUS_OK, c, 2, &match),
	                 SMTP_RDNS_OK);
	assert_int_equal(match, 1);
	assert_string_equal(smtp_rdns_status_name(SMTP_RDNS_FORGED), "FORGED");
	assert_string_equal(smtp_rdns_status_name(SMTP_RDNS_OK), "OK");
}

static void test_names(void **state)
{
	(void)state;
	assert_true(smtp_rdns_name_usable("mail.example.org"));
	assert_true(smtp_rdns_name_usable("host-1_a.Example"));
	assert_true(smtp_rdns_name_usable("localhost"));
	assert_true(smtp_rdns_name_usable("1.2.3.4.example")); /* digits, not an address */
	assert_false(smtp_rdns_name_usable(""));
	assert_false(smtp_rdns_name_usable("192.0.2.7")); /* a numeric address */
	assert_false(smtp_rdns_name_usable("a..example"));
	assert_false(smtp_rdns_name_usable(".example"));
	assert_false(smtp_rdns_name_usable("example."));
	assert_false(smtp_rdns_name_usable("a b.example"));
	assert_false(smtp_rdns_name_usable("x(y).example"));
	assert_false(smtp_rdns_name_usable("\\032.example")); /* the parser's escape */
	char label[80];
	memset(label, 'a', 64);
	label[64] = '\0';
	assert_false(smtp_rdns_name_usable(label));
	label[63] = '\0';
	assert_true(smtp_rdns_name_usable(label));
	char longname[300];
	for (size_t i = 0; i < sizeof(longname) - 1; i++)
		longname[i] = i % 2 == 0 ? 'a' : '.';
	longname[sizeof(longname) - 1] = '\0';
	assert_false(smtp_rdns_name_usable(longname)); /* 299 octets */
}

static void test_reverse(void **state)
{
	(void)state;
	char out[80];
	const unsigned char v4[4] = {192, 0, 2, 7};
	smtp_rdns_reverse_name(AF_INET, v4, out, sizeof(out));
	assert_string_equal(out, "7.2.0.192.in-addr.arpa");
	unsigned char v6[16] = {0x20, 0x01, 0x0d, 0xb8};
	v6[15] = 0x1f;
	smtp_rdns_reverse_name(AF_INET6, v6, out, sizeof(out));
	assert_string_equal(
	    out, "f.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_confirm),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_reverse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
