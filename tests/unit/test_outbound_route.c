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

static void test_hops(void **state)
{
	(void)state;
	struct outbound_hop h;
	assert_int_equal(outbound_route_parse_hop("smtp.example.org:587", 20, &h), 0);
	assert_string_equal(h.host, "smtp.example.org");
	assert_int_equal(h.port, 587);
	assert_false(h.numeric);
	assert_int_equal(h.tls, OUTBOUND_TLS_STARTTLS);
	const char *v6 = "[2001:db8::1]:2525/require-tls";
	assert_int_equal(outbound_route_parse_hop(v6, strlen(v6), &h), 0);
	assert_string_equal(h.host, "2001:db8::1");
	assert_int_equal(h.port, 2525);
	assert_true(h.numeric);
	assert_int_equal(h.tls, OUTBOUND_TLS_REQUIRE);
	assert_int_equal(outbound_route_parse_hop("10.0.0.5/tls", 12, &h), 0);
	assert_true(h.numeric);
	assert_int_equal(h.port, 0);
	assert_int_equal(h.tls, OUTBOUND_TLS_IMPLICIT);
	const char *bad[] = {"",         ":25",        "host:0",   "host:65536",
	                     "host:25x", "host/bogus", "[::1",     "[mail.example]:25",
	                     "ho st",    "host:",      "h\xc3\xa9"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(outbound_route_parse_hop(bad[i], strlen(bad[i]), &h), -1);
}

static void test_route_lookup(void **state)
{
	(void)state;
	struct outbound_hop h;
	const char *routes = " a.test=10.0.0.1:2525, B.test=mx.b.test/none  c.test=[::1]";
	assert_int_equal(outbound_route_lookup(routes, "b.TEST", &h), 1);
	assert_string_equal(h.host, "mx.b.test");
	assert_int_equal(h.tls, OUTBOUND_TLS_NONE);
	assert_int_equal(outbound_route_lookup(routes, "a.test", &h), 1);
	assert_int_equal(h.port, 2525);
	assert_int_equal(outbound_route_lookup(routes, "d.test", &h), 0);
	assert_int_equal(outbound_route_lookup("", "d.test", &h), 0);
	assert_int_equal(outbound_route_lookup("a.test", "a.test", &h), -1);
	assert_int_equal(outbound_route_lookup("a.test=ok.test x.test=:25", "a.test", &h), -1);
	assert_true(outbound_route_listed("x.test, Y.test z.test", "y.test"));
	assert_false(outbound_route_listed("x.test, y.test", "y.tes"));
	assert_false(outbound_route_listed("", "y.test"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_preference_order),
	    cmocka_unit_test(test_equal_preferences_shuffled),
	    cmocka_unit_test(test_null_mx),
	    cmocka_unit_test(test_self_in_mx_list),
	    cmocka_unit_test(test_backoff),
	    cmocka_unit_test(test_hops),
	    cmocka_unit_test(test_route_lookup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
