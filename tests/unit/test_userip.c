/* Unit tests for core/userip, the per account + address session counter behind
 * limit_sessions_per_user_ip: the cap, release, independence of accounts and addresses,
 * limit 0, and counts from several threads at once. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>

#include "core/userip.h"
#include "core/banned.h"

static void test_cap_and_release(void **state)
{
	(void)state;
	struct userip *r = userip_new();
	for (int i = 0; i < 10; i++)
		assert_int_equal(userip_acquire(r, 7, "192.0.2.1", 10), 1);
	assert_int_equal(userip_acquire(r, 7, "192.0.2.1", 10), 0); /* the 11th */
	assert_int_equal(userip_count(r, 7, "192.0.2.1"), 10);
	/* another address, another account: their own counts */
	assert_int_equal(userip_acquire(r, 7, "192.0.2.2", 10), 1);
	assert_int_equal(userip_acquire(r, 8, "192.0.2.1", 10), 1);
	userip_release(r, 7, "192.0.2.1");
	assert_int_equal(userip_count(r, 7, "192.0.2.1"), 9);
	assert_int_equal(userip_acquire(r, 7, "192.0.2.1", 10), 1);
	assert_int_equal(userip_acquire(r, 7, "192.0.2.1", 10), 0);
	for (int i = 0; i < 10; i++)
		userip_release(r, 7, "192.0.2.1");
	assert_int_equal(userip_count(r, 7, "192.0.2.1"), 0);
	assert_int_equal(userip_count(r, 7, "192.0.2.2"), 1);
	userip_free(&r);
	assert_null(r);
	userip_free(&r); /* NULL is fine */
}

static void test_no_limit(void **state)
{
	(void)state;
	struct userip *r = userip_new();
	for (int i = 0; i < 1000; i++)
		assert_int_equal(userip_acquire(r, 1, "2001:db8::1", 0), 1);
	assert_int_equal(userip_count(r, 1, "2001:db8::1"), 1000);
	userip_free(&r); /* entries still held are dropped */
}

struct worker {
	struct userip *r;
	unsigned got;
};

static void *userip_worker(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < 1000; i++) {
		if (userip_acquire(w->r, 42, "198.51.100.7", 10) == 1) {
			w->got++;
			userip_release(w->r, 42, "198.51.100.7");
		}
	}
	for (int i = 0; i < 5; i++)
		w->got += (unsigned)userip_acquire(w->r, 43, "198.51.100.7", 10) * 1000000u;
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	struct userip *r = userip_new();
	struct worker w[4] = {{r, 0}, {r, 0}, {r, 0}, {r, 0}};
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, userip_worker, &w[i]), 0);
	unsigned held = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		held += w[i].got / 1000000u;
		assert_int_equal(w[i].got % 1000000u, 1000); /* never more than 4 < 10 at once */
	}
	/* 20 attempts on account 43, exactly 10 got through */
	assert_int_equal(held, 10);
	assert_int_equal(userip_count(r, 43, "198.51.100.7"), 10);
	assert_int_equal(userip_count(r, 42, "198.51.100.7"), 0);
	userip_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cap_and_release),
	    cmocka_unit_test(test_no_limit),
	    cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
