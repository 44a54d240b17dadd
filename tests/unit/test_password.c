/* Unit tests for auth/password: argon2id hash and verify, refusal of malformed hash
 * strings, re-hash detection and random passwords. Hashes once per test at most: each one
 * costs ~50-100 ms. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "auth/password.h"
#include "core/banned.h"

static char *shared_hash; /* hash of "correct horse", made once in the group setup */

static int group_setup(void **state)
{
	(void)state;
	shared_hash = password_hash_dup("correct horse");
	return shared_hash == NULL ? -1 : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	free(shared_hash);
	return 0;
}

static void test_hash_and_verify(void **state)
{
	(void)state;
	assert_non_null(shared_hash);
	assert_memory_equal(shared_hash, "$argon2id$", 10);
	assert_int_equal(password_verify(shared_hash, "correct horse"), 1);
	assert_int_equal(password_needs_rehash(shared_hash), 0);
}

static void test_wrong_password(void **state)
{
	(void)state;
	assert_int_equal(password_verify(shared_hash, "correct horsE"), 0);
	assert_int_equal(password_verify(shared_hash, ""), 0);
	assert_int_equal(password_verify(shared_hash, "correct horse "), 0);
}

static void test_salted(void **state)
{
	(void)state;
	char *again = password_hash_dup("correct horse");
	assert_non_null(again);
	assert_string_not_equal(again, shared_hash); /* random salt */
	free(again);
}

static void test_bad_hash(void **state)
{
	(void)state;
	assert_int_equal(password_verify("", "x"), -1);
	assert_int_equal(password_verify("!", "x"), -1);
	assert_int_equal(password_verify("$1$abc$defghijklmnop", "x"), -1);
	assert_int_equal(password_verify("$argon2id$v=19$m=65536,t=2,p=1$garbage", "x"), -1);
	assert_int_equal(password_needs_rehash("plaintext"), -1);

	/* A truncated real hash is no longer a hash. */
	size_t len = strlen(shared_hash);
	char *cut = strdup(shared_hash);
	cut[len - 10] = '\0';
	assert_int_equal(password_verify(cut, "correct horse"), -1);
	free(cut);
}

static void test_needs_rehash_other_params(void **state)
{
	(void)state;
	/* Well-formed argon2id string with t=3: valid, but not today's parameters. The hash
	 * part is arbitrary (16-byte salt, 32-byte output, base64 without padding). */
	const char *old = "$argon2id$v=19$m=65536,t=3,p=1$"
	                  "c29tZXNhbHRzb21lc2FsdA$"
	                  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	assert_int_equal(password_needs_rehash(old), 1);
}

static void test_random(void **state)
{
	(void)state;
	for (size_t n = 0; n <= 40; n += 8) {
		char *p = password_random_dup(n);
		assert_int_equal(strlen(p), n);
		for (size_t i = 0; i < n; i++) {
			char c = p[i];
			assert_true((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			            (c >= '0' && c <= '9'));
		}
		free(p);
	}
	char *a = password_random_dup(24), *b = password_random_dup(24);
	assert_string_not_equal(a, b);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hash_and_verify),
	    cmocka_unit_test(test_wrong_password),
	    cmocka_unit_test(test_salted),
	    cmocka_unit_test(test_bad_hash),
	    cmocka_unit_test(test_needs_rehash_other_params),
	    cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
