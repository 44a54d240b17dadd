/* Unit tests for mime/dkim_key_cache: a key is decoded once and then shared (new
 * references), the text and the algorithm both key the cache, the least recently used entry
 * goes first, and dkim_key_parse() through a cache gives what it gives without one, keeping
 * only keys that passed its checks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "core/base64.h"
#include "mime/dkim_key_cache.h"
#include "mime/dkim_record.h"
#include "core/banned.h"

/* "v=DKIM1; k=rsa; p=..." for a new RSA key of bits. */
static char *rsa_record_dup(unsigned bits)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	assert_non_null(k);
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(k, &der);
	assert_true(n > 0);
	char *b64 = base64_encode_dup(der, (size_t)n);
	size_t len = strlen(b64) + 64;
	char *rec = malloc(len);
	snprintf(rec, len, "v=DKIM1; k=rsa; p=%s", b64);
	free(b64);
	OPENSSL_free(der);
	EVP_PKEY_free(k);
	return rec;
}

static void test_get_put(void **state)
{
	(void)state;
	struct dkim_key_cache *c = dkim_key_cache_new(2);
	EVP_PKEY *a = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *b = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *d = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_null(dkim_key_cache_get(c, "AAAA", 4, true));
	dkim_key_cache_put(c, "AAAA", 4, true, a);
	dkim_key_cache_put(c, "BBBB", 4, true, b);
	assert_int_equal(dkim_key_cache_count(c), 2);
	/* the algorithm is part of the key; a prefix is not the text */
	assert_null(dkim_key_cache_get(c, "AAAA", 4, false));
	assert_null(dkim_key_cache_get(c, "AAA", 3, true));
	EVP_PKEY *got = dkim_key_cache_get(c, "AAAA", 4, true);
	assert_ptr_equal(got, a);
	EVP_PKEY_free(got);
	/* "AAAA" was used last: "BBBB" goes for "DDDD" */
	dkim_key_cache_put(c, "DDDD", 4, true, d);
	assert_int_equal(dkim_key_cache_count(c), 2);
	assert_null(dkim_key_cache_get(c, "BBBB", 4, true));
	got = dkim_key_cache_get(c, "AAAA", 4, true);
	assert_ptr_equal(got, a);
	EVP_PKEY_free(got);
	got = dkim_key_cache_get(c, "DDDD", 4, true);
	assert_ptr_equal(got, d);
	EVP_PKEY_free(got);
	/* the cache holds its own references */
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	EVP_PKEY_free(d);
	got = dkim_key_cache_get(c, "DDDD", 4, true);
	assert_non_null(got);
	assert_int_equal(EVP_PKEY_get_base_id(got), EVP_PKEY_ED25519);
	EVP_PKEY_free(got);
	dkim_key_cache_free(&c);
	assert_null(c);
	dkim_key_cache_free(&c);
	assert_null(dkim_key_cache_get(NULL, "AAAA", 4, true));
	dkim_key_cache_put(NULL, "AAAA", 4, true, NULL);
}

static void test_parse_through_cache(void **state)
{
	(void)state;
	struct dkim_key_cache *c = dkim_key_cache_new(8);
	char *rec = rsa_record_dup(2048);
	struct dkim_key k1, k2, k3;
	const char *problem = NULL;
	assert_int_equal(dkim_key_parse(c, rec, strlen(rec), false, &k1, &problem), 0);
	assert_int_equal(dkim_key_cache_count(c), 1);
	/* the same p= in another record (flags differ): the same key, the record's own flags */
	size_t len = strlen(rec) + 16;
	char *rec2 = malloc(len);
	snprintf(rec2, len, "%s; t=y", rec);
	assert_int_equal(dkim_key_parse(c, rec2, strlen(rec2), false, &k2, &problem), 0);
	assert_ptr_equal(k1.pkey, k2.pkey);
	assert_false(k1.testing);
	assert_true(k2.testing);
	assert_int_equal(dkim_key_cache_count(c), 1);
	/* the record's other checks still apply to a cached key */
	snprintf(rec2, len, "%s; k=ed25519", rec);
	assert_int_equal(dkim_key_parse(c, rec2, strlen(rec2), false, &k3, &problem), -1);
	assert_int_equal(dkim_key_parse(c, rec, strlen(rec), true, &k3, &problem), -1);
	assert_null(k3.pkey);
	assert_int_equal(dkim_key_parse(NULL, rec, strlen(rec), false, &k3, &problem), 0);
	assert_ptr_not_equal(k3.pkey, k1.pkey);
	assert_int_equal(EVP_PKEY_eq(k3.pkey, k1.pkey), 1);
	EVP_PKEY_free(k1.pkey);
	EVP_PKEY_free(k2.pkey);
	EVP_PKEY_free(k3.pkey);
	free(rec2);
	free(rec);
	/* a key refused (RSA under 1024 bits) is refused again, and not kept */
	char *weak = rsa_record_dup(512);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(dkim_key_parse(c, weak, strlen(weak), false, &k1, &problem), -1);
		assert_string_equal(problem, "not an RSA key of 1024 bits or more");
	}
	assert_int_equal(dkim_key_cache_count(c), 1);
	free(weak);
	dkim_key_cache_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_get_put),
	    cmocka_unit_test(test_parse_through_cache),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
