/* Unit tests for core/rate, the fixed-window counters per key behind the per-IP rates
 * (smtp_connection_rate_per_ip, smtp_message_rate_per_ip, limit_connection_rate_per_ip):
 * the limit, the window's end, keys apart, refused events counted, the first event over
 * the limit (logged once per window), the bound on keys, the client key of an address,
 * and counting from several threads at once. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/rate.h"
#include "core/banned.h"

static void test_rate_window(void **state)
{
	(void)state;
	struct rate *r = rate_new(60, 100);
	for (int i = 0; i < 3; i++)
		assert_int_equal(rate_hit(r, "192.0.2.1", 3, 1000 + i), 1);
	assert_int_equal(rate_hit(r, "192.0.2.1", 3, 1010), 0);
	assert_int_equal(rate_hit(r, "192.0.2.2", 3, 1010), 1); /* another key */
	assert_int_equal(rate_hit(r, "192.0.2.1", 3, 1059), 0); /* refused ones count */
	assert_int_equal(rate_hit(r, "192.0.2.1", 3, 1060), 1); /* a new window */
	assert_int_equal(rate_hit(r, "192.0.2.1", 0, 1060), 1); /* no limit */
	assert_int_equal(rate_keys(r), 2);
	rate_free(&r);
	assert_null(r);
	rate_free(&r);
}

static void test_rate_bounded(void **state)
{
	(void)state;
	struct rate *r = rate_new(60, 10);
	char key[32];
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(rate_hit(r, key, 1, 1000), 1);
	}
	/* Full, nothing expired: a new key is not counted (passes every time). */
	assert_int_equal(rate_hit(r, "new", 1, 1001), 1);
	assert_int_equal(rate_hit(r, "new", 1, 1002), 1);
	assert_int_equal(rate_keys(r), 10);
	assert_int_equal(rate_hit(r, "k0", 1, 1003), 0); /* old keys still counted */
	/* Once their windows are over, they make room. */
	assert_int_equal(rate_hit(r, "new", 1, 1060), 1);
	assert_int_equal(rate_hit(r, "new", 1, 1061), 0);
	assert_int_equal(rate_keys(r), 1);
	rate_free(&r);
}

static void test_count_and_first_over(void **state)
{
	(void)state;
	struct rate *r = rate_new(60, 100);
	assert_int_equal(rate_count(r, "a", 2, 1000), 1);
	assert_int_equal(rate_count(r, "a", 2, 1001), 2);
	assert_int_equal(rate_count(r, "a", 2, 1002), 3); /* limit + 1: the first one over */
	assert_int_equal(rate_count(r, "a", 2, 1003), 4);
	assert_int_equal(rate_count(r, "a", 2, 1060), 1); /* a new window */
	assert_int_equal(rate_count(r, "a", 0, 1061), 0); /* no limit: not counted */
	assert_int_equal(rate_count(r, "a", 2, 1062), 2);
	rate_free(&r);
}

static void expect_key(const char *ip, const char *want)
{
	char out[64];
	rate_ip_key(ip, out, sizeof(out));
	assert_string_equal(out, want);
}

static void test_ip_key(void **state)
{
	(void)state;
	expect_key("192.0.2.77", "192.0.2.77");
	expect_key("127.0.0.1", "127.0.0.1");
	expect_key("2001:db8:0:1:2:3:4:5", "2001:db8:0:1");
	expect_key("2001:db8:0:1::9", "2001:db8:0:1"); /* a host has its /64 */
	expect_key("::1", "0:0:0:0");
	expect_key("::ffff:198.51.100.9", "198.51.100.9");
	expect_key("not-an-ip", "not-an-ip");
	char tiny[4];
	rate_ip_key("192.0.2.77", tiny, sizeof(tiny));
	assert_string_equal(tiny, "192");
}

#define THREADS 4
#define HITS 1000

static void *hit_many(void *arg)
{
	struct rate *r = arg;
	for (int i = 0; i < HITS; i++) {
		unsigned n = rate_count(r, "shared", 1000000, 1000);
		assert_true(n >= 1 && n <= THREADS * HITS);
	}
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	struct rate *r = rate_new(60, 100);
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hit_many, r), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	/* every event was counted once */
	assert_int_equal(rate_count(r, "shared", 1000000, 1000), THREADS * HITS + 1);
	rate_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rate_window),
	    cmocka_unit_test(test_rate_bounded),
	    cmocka_unit_test(test_count_and_first_over),
	    cmocka_unit_test(test_ip_key),
	    cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
