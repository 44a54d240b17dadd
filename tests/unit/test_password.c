/* Unit tests for auth/password: argon2id hash and verify, refusal of malformed hash
 * strings, re-hash detection, random passwords, and the SCRAM-SHA-256 keys in the combined
 * credentials string (RFC 7677 §3 keys, old argon2-only strings, malformed SCRAM parts,
 * which passwords get keys). Hashes once per test at most: each costs ~50-100 ms. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/password.h"
#include "core/base64.h"
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

/* ---- SCRAM-SHA-256 part ---- */

/* The argon2 part of shared_hash alone: what accounts made before SCRAM support hold. */
static char *argon2_only(void)
{
	const char *sp = strchr(shared_hash, ' ');
	assert_non_null(sp);
	return strndup(shared_hash, (size_t)(sp - shared_hash));
}

static void test_combined_string(void **state)
{
	(void)state;
	/* "$argon2id$... SCRAM-SHA-256$4096$<24>$<44>$<44>" */
	const char *scram = strchr(shared_hash, ' ');
	assert_non_null(scram);
	scram++;
	assert_memory_equal(scram, "SCRAM-SHA-256$4096$", 19);
	assert_int_equal(strlen(scram), 19 + 24 + 1 + 44 + 1 + 44);
	assert_null(strchr(scram, ' '));

	struct password_scram keys, again;
	assert_int_equal(password_scram_keys(shared_hash, &keys), 0);
	assert_int_equal(keys.iterations, 4096);
	assert_int_equal(keys.salt_len, 16);
	/* The stored keys are those of the password. */
	password_scram_derive("correct horse", keys.salt, keys.salt_len, 4096, &again);
	assert_memory_equal(&keys, &again, sizeof(keys));
	password_scram_derive("correct horsE", keys.salt, keys.salt_len, 4096, &again);
	assert_memory_not_equal(keys.stored_key, again.stored_key, sizeof(keys.stored_key));
	password_scram_wipe(&keys);
	password_scram_wipe(&again);
}

static void test_rfc7677_keys(void **state)
{
	(void)state;
	unsigned char salt[16];
	struct password_scram keys;
	assert_int_equal(base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==", 24, salt, sizeof(salt)), 16);
	password_scram_derive("pencil", salt, sizeof(salt), 4096, &keys);
	char *stored = base64_encode_dup(keys.stored_key, sizeof(keys.stored_key));
	char *server = base64_encode_dup(keys.server_key, sizeof(keys.server_key));
	/* StoredKey = H(HMAC(Hi("pencil", salt, 4096), "Client Key")), RFC 5802 §3. */
	assert_string_equal(stored, "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=");
	assert_string_equal(server, "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=");
	free(stored);
	free(server);

	/* The same keys come back out of a credentials string. */
	char *argon2 = argon2_only();
	char cred[512];
	snprintf(cred, sizeof(cred),
	         "%s SCRAM-SHA-256$4096$W22ZaJ0SNY7soEsUEjb6gQ==$"
	         "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=$"
	         "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	         argon2);
	struct password_scram parsed;
	assert_int_equal(password_scram_keys(cred, &parsed), 0);
	assert_memory_equal(&parsed, &keys, sizeof(keys));
	assert_int_equal(password_verify(cred, "correct horse"), 1);
	free(argon2);
}

static void test_old_argon2_only(void **state)
{
	(void)state;
	char *old = argon2_only();
	struct password_scram keys;
	assert_int_equal(password_verify(old, "correct horse"), 1);
	assert_int_equal(password_verify(old, "correct horsE"), 0);
	assert_int_equal(password_needs_rehash(old), 0);
	assert_int_equal(password_scram_keys(old, &keys), -1); /* no SCRAM until set again */
	free(old);
}

static void test_scram_usable(void **state)
{
	(void)state;
	assert_true(password_scram_usable("pencil"));
	assert_true(password_scram_usable(" ~!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|} "));
	assert_false(password_scram_usable(""));
	assert_false(password_scram_usable("tab\there"));
	assert_false(password_scram_usable("del\x7f"));
	assert_false(password_scram_usable("p\xc3\xa4ssword")); /* SASLprep not implemented */
	char longpw[1026];
	memset(longpw, 'a', sizeof(longpw));
	longpw[1024] = '\0';
	assert_true(password_scram_usable(longpw));
	longpw[1024] = 'a';
	longpw[1025] = '\0';
	assert_false(password_scram_usable(longpw));

	/* A non-ASCII password still gets an argon2 hash, but no SCRAM keys. */
	char *h = password_hash_dup("p\xc3\xa4ssword");
	assert_non_null(h);
	assert_null(strchr(h, ' '));
	struct password_scram keys;
	assert_int_equal(password_scram_keys(h, &keys), -1);
	assert_int_equal(password_verify(h, "p\xc3\xa4ssword"), 1);
	free(h);
}

static void test_bad_scram_part(void **state)
{
	(void)state;
	char *argon2 = argon2_only();
	static const char *const bad[] = {
	    "",                                /* trailing space */
	    "SCRAM-SHA-1$4096$AAAA$AAAA$AAAA", /* other mechanism */
	    "SCRAM-SHA-256$4095$W22ZaJ0SNY7soEsUEjb6gQ==$"
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=$"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", /* below 4096 iterations */
	    "SCRAM-SHA-256$04096$W22ZaJ0SNY7soEsUEjb6gQ==$"
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=$"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", /* leading zero */
	    "SCRAM-SHA-256$99999999999999999999$W22ZaJ0SNY7soEsUEjb6gQ==$"
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=$"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", /* overflow */
	    "SCRAM-SHA-256$4096$$"
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=$"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", /* empty salt */
	    "SCRAM-SHA-256$4096$W22ZaJ0SNY7soEsUEjb6gQ==$"
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4q==$"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", /* short StoredKey */
	    "SCRAM-SHA-256$4096$W22ZaJ0SNY7soEsUEjb6gQ==$"
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=", /* ServerKey missing */
	    "SCRAM-SHA-256$4096$W22ZaJ0SNY7soEsUEjb6gQ==$"
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=$"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=$", /* trailing '$' */
	    "SCRAM-SHA-256$4096$W22ZaJ0SNY7soEsUEjb6gQ==$"
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=$"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU= x", /* a third part */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char cred[512];
		struct password_scram keys;
		snprintf(cred, sizeof(cred), "%s %s", argon2, bad[i]);
		assert_int_equal(password_verify(cred, "correct horse"), -1);
		assert_int_equal(password_needs_rehash(cred), -1);
		assert_int_equal(password_scram_keys(cred, &keys), -1);
	}
	free(argon2);

	/* Locking the string (a leading '!') disables SCRAM too, not only the argon2 part. */
	char locked[512];
	struct password_scram keys;
	snprintf(locked, sizeof(locked), "!%s", shared_hash);
	assert_int_equal(password_verify(locked, "correct horse"), -1);
	assert_int_equal(password_scram_keys(locked, &keys), -1);
	/* So does a string that is only a SCRAM part. */
	assert_int_equal(password_scram_keys(strchr(shared_hash, ' ') + 1, &keys), -1);
	assert_int_equal(password_scram_keys(strchr(shared_hash, ' '), &keys), -1);
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
	    cmocka_unit_test(test_combined_string),
	    cmocka_unit_test(test_rfc7677_keys),
	    cmocka_unit_test(test_old_argon2_only),
	    cmocka_unit_test(test_scram_usable),
	    cmocka_unit_test(test_bad_scram_part),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
