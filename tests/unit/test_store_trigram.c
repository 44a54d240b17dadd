/* Unit tests of store_trigram.c: the estimate of FTS5's work for a message's search texts
 * counts trigrams as FTS5's trigram tokenizer cuts them, grows linearly for natural text
 * and is refused for text whose distinct trigrams crowd FTS5's hash chains (the quadratic
 * case), measured by counting, not by timing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/store_trigram.h"

static void cost_of(const char *s, struct store_trigram_cost *c)
{
	const char *texts[1] = {s};
	size_t lens[1] = {strlen(s)};
	store_trigram_cost(texts, lens, 1, c);
}

static void test_counts_utf8_trigrams(void **state)
{
	(void)state;
	struct store_trigram_cost c;
	/* five characters of 1, 2, 3, 4 and 1 octets: three trigrams */
	cost_of("a\xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E"
	        "b",
	        &c);
	assert_int_equal(c.tokens, 3);
	assert_int_equal(c.keys, 3);
	cost_of("ab", &c);
	assert_int_equal(c.tokens, 0);
	assert_int_equal(c.work, 0);
	/* "aaaa": two occurrences of one trigram, per column */
	const char *texts[2] = {"aaaa", "aaab"};
	size_t lens[2] = {4, 4};
	store_trigram_cost(texts, lens, 2, &c);
	assert_int_equal(c.tokens, 4);
	assert_int_equal(c.keys, 2);
	assert_true(store_trigram_indexable("", ""));
}

/* Deterministic pseudo-random octets (xorshift). */
static uint32_t rnd(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* n octets of words over a-z separated by spaces and LF, like (folded) prose. */
static char *prose(size_t n)
{
	char *s = malloc(n + 1);
	uint32_t x = 7;
	for (size_t i = 0; i < n; i++) {
		uint32_t r = rnd(&x) % 32;
		s[i] = r < 26 ? (char)('a' + r % 13) : r < 31 ? ' ' : '\n';
	}
	s[n] = '\0';
	return s;
}

/* n random printable ASCII octets: as many distinct trigrams as there is room for. */
static char *noise(size_t n)
{
	char *s = malloc(n + 1);
	uint32_t x = 11;
	for (size_t i = 0; i < n; i++)
		s[i] = (char)(33 + rnd(&x) % 94);
	s[n] = '\0';
	return s;
}

static void test_prose_is_linear(void **state)
{
	(void)state;
	struct store_trigram_cost small, big;
	char *a = prose(100000), *b = prose(400000);
	cost_of(a, &small);
	cost_of(b, &big);
	/* four times the text, about four times the work: a bounded chain per trigram */
	assert_true(big.work <= 5 * small.work);
	assert_true(big.work <= STORE_TRIGRAM_WORK_PER_TOKEN * big.tokens);
	assert_true(store_trigram_indexable("from: a@b\n", b));
	free(a);
	free(b);
}

static void test_noise_is_refused(void **state)
{
	(void)state;
	struct store_trigram_cost small, big;
	char *a = noise(50000), *b = noise(200000);
	cost_of(a, &small);
	cost_of(b, &big);
	/* FTS5's hash puts every ASCII trigram in one of a few thousand slots: the chains
	 * grow with the text, the work with its square */
	assert_true(big.work > 10 * small.work);
	assert_true(big.work > STORE_TRIGRAM_WORK_PER_TOKEN * big.tokens);
	assert_false(store_trigram_indexable("", b));
	assert_false(store_trigram_indexable(b, ""));
	/* a little of it in a message is harmless */
	assert_true(store_trigram_indexable("", a + 49000));
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counts_utf8_trigrams),
	    cmocka_unit_test(test_prose_is_linear),
	    cmocka_unit_test(test_noise_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
