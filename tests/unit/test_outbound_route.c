/* Unit tests for smtp/outbound_route: MX order by preference with equal preferences
 * shuffled, the host cap, the null MX, our own host name among the MX hosts, and the
 * retry backoff. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "smtp/outbound_route.h"
#include "core/banned.h"

static uint32_t fixed_rnd(void *ctx)
{
	return *(uint32_t *)ctx;
}

static uint32_t counter_rnd(void *ctx)
{
	uint32_t *c = ctx;
	*c = *c * 1103515245u + 12345u;
	return *c >> 8;
}

static void test_preference_order(void **state)
{
	(void)state;
	const struct outbound_mx mx[] = {
	    {20, "b.test"}, {10, "a.test"}, {30, "c.test"}, {5, "z.test"}};
	struct outbound_mx out[4];
	size_t n;
	uint32_t zero = 0;
	assert_int_equal(outbound_route_order(mx, 4, 0, NULL, fixed_rnd, &zero, out, &n),
	                 OUTBOUND_ROUTE_OK);
	assert_int_equal(n, 4);
	assert_string_equal(out[0].host, "z.test");
	assert_string_equal(out[1].host, "a.test");
	assert_string_equal(out[2].host, "b.test");
	assert_string_equal(out[3].host, "c.test");
	/* At most max hosts, the most preferred. */
	assert_int_equal(outbound_route_order(mx, 4, 2, NULL, fixed_rnd, &zero, out, &n),
	                 OUTBOUND_ROUTE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(out[1].host, "a.test");
}

static void test_equal_preferences_shuffled(void **state)
{
	(void)state;
	const struct outbound_mx mx[] = {
	    {10, "a.test"}, {10, "b.test"}, {10, "c.test"}, {20, "d.test"}};
	struct outbound_mx out[4];
	size_t n;
	int first[3] = {0, 0, 0};
	uint32_t seed = 1;
	for (int i = 0; i < 300; i++) {
		assert_int_equal(outbound_route_order(mx, 4, 0, NULL, counter_rnd, &seed, out, &n),
		                 OUTBOUND_ROUTE_OK);
		assert_int_equal(n, 4);
		assert_string_equal(out[3].host,
		                    "d.test"); /* never mixed with the next preference */
		first[out[0].host[0] - 'a']++;
	}
	/* Each of the equal hosts comes first sometimes. */
	for (int i = 0; i < 3; i++)
		assert_true(first[i] > 30);
}

static void test_null_mx(void **state)
{
	(void)state;
	const struct outbound_mx null_only[] = {{0, ""}};
	struct outbound_mx out[2];
	size_t n;
	uint32_t zero = 0;
	assert_int_equal(outbound_route_order(null_only, 1, 0, NULL, fixed_rnd, &zero, out, &n),
	                 OUTBOUND_ROUTE_NULL_MX);
	assert_int_equal(n, 0);
	/* A null MX beside real ones is a broken zone: use the real ones. */
	const struct outbound_mx mixed[] = {{0, ""}, {10, "a.test"}};
	assert_int_equal(outbound_route_order(mixed, 2, 0, NULL, fixed_rnd, &zero, out, &n),
	                 OUTBOUND_ROUTE_OK);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].host, "a.test");
}

static void test_self_in_mx_list(void **state)
{
	(void)state;
	const struct outbound_mx mx[] = {
	    {10, "primary.test"}, {20, "MX.example.test"}, {30, "c.test"}};
	struct outbound_mx out[3];
	size_t n;
	uint32_t zero = 0;
	/* We are a backup MX: only the more preferred host remains. */
	assert_int_equal(
	    outbound_route_order(mx, 3, 0, "mx.example.test", fixed_rnd, &zero, out, &n),
	    OUTBOUND_ROUTE_OK);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].host, "primary.test");
	/* We are the best MX: the mail would loop. */
	assert_int_equal(outbound_route_order(mx, 3, 0, "primary.test", fixed_rnd, &zero, out, &n),
	                 OUTBOUND_ROUTE_LOOPS_BACK);
}

static void test_backoff(void **state)
{
	(void)state;
	assert_int_equal(outbound_route_backoff(1, 300, 3600), 300);
	assert_int_equal(outbound_route_backoff(2, 300, 3600), 600);
	assert_int_equal(outbound_route_backoff(3, 300, 3600), 1200);
	assert_int_equal(outbound_route_backoff(4, 300, 3600), 2400);
	assert_int_equal(outbound_route_backoff(5, 300, 3600), 3600);
	assert_int_equal(outbound_route_backoff(500, 300, 3600), 3600);
	assert_int_equal(outbound_route_backoff(0, 300, 3600), 300);
	assert_int_equal(outbound_route_backoff(40, 4000000000u, 4000000000u), 4000000000u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_preference_order),
	    cmocka_unit_test(test_equal_preferences_shuffled),
	    cmocka_unit_test(test_null_mx),
	    cmocka_unit_test(test_self_in_mx_list),
	    cmocka_unit_test(test_backoff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
