/* Unit tests for smtp/smtp_policy's decisions: client networks (IPv4 /24, IPv6 /64,
 * mapped addresses), greylisting triplets and verdicts (delay, pass remembered, refresh,
 * expiry). The rate counters are core/rate's (test_rate.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "smtp/smtp_policy.h"
#include "core/banned.h"

static void expect_network(const char *ip, bool full, const char *want)
{
	char out[64];
	smtp_policy_network(ip, full, out, sizeof(out));
	assert_string_equal(out, want);
}

static void test_networks(void **state)
{
	(void)state;
	expect_network("192.0.2.77", false, "192.0.2");
	expect_network("192.0.2.77", true, "192.0.2.77");
	expect_network("2001:db8:0:1:2:3:4:5", false, "2001:db8:0:1");
	expect_network("2001:db8:0:1::9", true, "2001:db8:0:1"); /* a host has its /64 */
	expect_network("::ffff:198.51.100.9", false, "198.51.100");
	expect_network("::ffff:198.51.100.9", true, "198.51.100.9");
	expect_network("not-an-ip", false, "not-an-ip");
	char tiny[4];
	smtp_policy_network("192.0.2.77", false, tiny, sizeof(tiny));
	assert_string_equal(tiny, "192");
}

static void test_triplet(void **state)
{
	(void)state;
	char t[STORE_POLICY_TRIPLET_MAX + 1];
	assert_int_equal(
	    smtp_policy_triplet(t, sizeof(t), "A@Remote.Example", "Demo@Example.ORG", "192.0.2.77"),
	    0);
	assert_string_equal(t, "a@remote.example/demo@example.org/192.0.2");
	assert_int_equal(smtp_policy_triplet(t, sizeof(t), "", "d@x", "2001:db8::1"), 0);
	assert_string_equal(t, "/d@x/2001:db8:0:0");
	char small[16];
	assert_int_equal(smtp_policy_triplet(small, sizeof(small), "long-sender@remote.example",
	                                     "d@x", "192.0.2.1"),
	                 -1);
}

static void test_greylist_verdicts(void **state)
{
	(void)state;
	const unsigned delay = 300, expire = 35 * 86400;
	struct store_policy_greylist e = {.first_seen = 1000, .last_seen = 1000, .passed = false};
	assert_int_equal(smtp_policy_greylist_decide(0, NULL, 1000, delay, expire),
	                 SMTP_GREYLIST_DEFER_NEW);
	assert_int_equal(smtp_policy_greylist_decide(1, &e, 1299, delay, expire),
	                 SMTP_GREYLIST_DEFER);
	assert_int_equal(smtp_policy_greylist_decide(1, &e, 1300, delay, expire),
	                 SMTP_GREYLIST_PASS_NOTE);
	/* Not retried within expire: it starts over. */
	assert_int_equal(smtp_policy_greylist_decide(1, &e, 1000 + expire, delay, expire),
	                 SMTP_GREYLIST_DEFER_NEW);
	e.passed = true;
	e.last_seen = 5000;
	assert_int_equal(smtp_policy_greylist_decide(1, &e, 5001, delay, expire),
	                 SMTP_GREYLIST_PASS);
	assert_int_equal(smtp_policy_greylist_decide(1, &e, 5000 + 3600, delay, expire),
	                 SMTP_GREYLIST_PASS_NOTE);
	assert_int_equal(smtp_policy_greylist_decide(1, &e, 5000 + expire, delay, expire),
	                 SMTP_GREYLIST_DEFER_NEW);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_networks),
	    cmocka_unit_test(test_triplet),
	    cmocka_unit_test(test_greylist_verdicts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
