/* Unit tests for smtp/smtp_data, the DATA body decoder (RFC 5321 §4.1.1.4, §4.5.2): end of
 * data only at CRLF.CRLF, dot-unstuffing, bytes after the terminator left unconsumed, bare CR
 * and bare LF never ending the data (SMTP smuggling), normalization, identical results for
 * every way of splitting the input, and the SMTP_DATA_OUT_MAX() output bound. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_data.h"
#include "core/banned.h"

/* What one decoding run produced. */
struct result {
	unsigned char *out; /* malloc'd, out_len octets */
	size_t out_len;
	size_t consumed;
	bool end;
	bool bare;
};

static void result_free(struct result *r)
{
	free(r->out);
	r->out = NULL;
}

/* One smtp_data_decode() call into an output buffer of exactly SMTP_DATA_OUT_MAX(len) octets
 * (so ASan sees any overrun); appends the decoded octets to r. */
static void feed(struct smtp_data *d, const unsigned char *in, size_t len, struct result *r)
{
	size_t max = SMTP_DATA_OUT_MAX(len);
	unsigned char *chunk = malloc(max);
	assert_non_null(chunk);
	size_t out_len = (size_t)-1;
	bool end = false;
	size_t used = smtp_data_decode(d, in, len, chunk, &out_len, &end);
	assert_true(out_len <= max);
	assert_true(used <= len);
	if (!end)
		assert_int_equal(used, len);
	r->out = realloc(r->out, r->out_len + out_len + 1);
	assert_non_null(r->out);
	if (out_len > 0)
		memcpy(r->out + r->out_len, chunk, out_len);
	r->out_len += out_len;
	r->consumed += used;
	r->end = end;
	r->bare = d->bare_seen;
	free(chunk);
}

/* Decode in with the given chunk sizes (sizes[i] == 0 is an empty call; the last chunk takes
 * the rest); stops at the end of data like a caller would. */
static struct result decode_chunks(const unsigned char *in, size_t len, bool normalize,
                                   const size_t *sizes, size_t nsizes)
{
	struct smtp_data d;
	struct result r = {0};
	smtp_data_init(&d, normalize);
	assert_false(d.bare_seen);
	size_t pos = 0;
	for (size_t i = 0;; i++) {
		size_t n = i < nsizes ? sizes[i] : len - pos;
		if (n > len - pos)
			n = len - pos;
		feed(&d, in + pos, n, &r);
		pos += n;
		if (r.end || i >= nsizes)
			break;
	}
	return r;
}

static struct result decode(const unsigned char *in, size_t len, bool normalize)
{
	return decode_chunks(in, len, normalize, NULL, 0);
}

static void assert_same(const struct result *a, const struct result *b)
{
	assert_int_equal(a->out_len, b->out_len);
	if (a->out_len > 0)
		assert_memory_equal(a->out, b->out, a->out_len);
	assert_int_equal(a->consumed, b->consumed);
	assert_int_equal(a->end, b->end);
	assert_int_equal(a->bare, b->bare);
}

/* Every split into two feeds and the byte-at-a-time feed give what one feed gives. */
static void check_splits(const unsigned char *in, size_t len, bool normalize)
{
	struct result whole = decode(in, len, normalize);
	for (size_t k = 0; k <= len; k++) {
		size_t sizes[1] = {k};
		struct result part = decode_chunks(in, len, normalize, sizes, 1);
		assert_same(&whole, &part);
		result_free(&part);
	}
	size_t *ones = calloc(len + 1, sizeof(*ones));
	assert_non_null(ones);
	for (size_t i = 0; i < len; i++)
		ones[i] = 1;
	struct result bytes = decode_chunks(in, len, normalize, ones, len);
	assert_same(&whole, &bytes);
	result_free(&bytes);
	free(ones);
	result_free(&whole);
}

/* Decode text in one mode, check the result, then check every split of the input. */
static void expect_mode(const char *text, bool normalize, const char *want, size_t consumed,
                        bool end, bool bare)
{
	const unsigned char *in = (const unsigned char *)text;
	size_t len = strlen(text);
	struct result r = decode(in, len, normalize);
	if (r.out_len != strlen(want) || memcmp(r.out, want, r.out_len) != 0)
		fail_msg("input \"%s\" (normalize=%d): output length %zu, want %zu \"%s\"", text,
		         normalize, r.out_len, strlen(want), want);
	assert_int_equal(r.consumed, consumed);
	assert_int_equal(r.end, end);
	assert_int_equal(r.bare, bare);
	result_free(&r);
	check_splits(in, len, normalize);
}

/* The same in both modes: for inputs without bare CR or LF. */
static void expect(const char *text, const char *want, size_t consumed, bool end, bool bare)
{
	expect_mode(text, false, want, consumed, end, bare);
	expect_mode(text, true, want, consumed, end, bare);
}

static void test_end_of_data(void **state)
{
	(void)state;
	expect("hello\r\n.\r\n", "hello\r\n", 10, true, false);
	expect("a\r\nb\r\n.\r\n", "a\r\nb\r\n", 9, true, false);
	expect("Subject: x\r\n\r\nbody\r\n.\r\n", "Subject: x\r\n\r\nbody\r\n", 23, true, false);
	/* not yet complete: everything consumed, no end */
	expect("hello\r\n", "hello\r\n", 7, false, false);
	expect("hello\r\n.", "hello\r\n", 8, false, false);
	expect("hello\r\n.\r", "hello\r\n", 9, false, false);
	expect("", "", 0, false, false);
	/* a "." that is not alone on its line, or not at a line start, ends nothing */
	expect("a.\r\n", "a.\r\n", 4, false, false);
	expect("a\r\n.b\r\n", "a\r\nb\r\n", 7, false, false);
	expect("a\r\n. \r\n", "a\r\n \r\n", 7, false, false);
	expect("a\r\n\r\n.\r\n", "a\r\n\r\n", 8, true, false);
}

static void test_empty_message(void **state)
{
	(void)state;
	expect(".\r\n", "", 3, true, false);
	expect(".\r\nQUIT\r\n", "", 3, true, false);
	expect("\r\n.\r\n", "\r\n", 5, true, false);
}

static void test_trailing_bytes_not_consumed(void **state)
{
	(void)state;
	expect("a\r\n.\r\nQUIT\r\n", "a\r\n", 6, true, false);
	expect("a\r\n.\r\n.\r\n", "a\r\n", 6, true, false);
	/* a second message pipelined after the first is not part of it */
	expect("x\r\n.\r\nMAIL FROM:<a@b>\r\nDATA\r\ny\r\n.\r\n", "x\r\n", 6, true, false);
	/* what follows the terminator may be anything, even bare line ends */
	expect("x\r\n.\r\n\n\r", "x\r\n", 6, true, false);
}

static void test_dot_unstuffing(void **state)
{
	(void)state;
	expect("..x\r\n.\r\n", ".x\r\n", 8, true, false);
	expect("a\r\n..\r\n.\r\n", "a\r\n.\r\n", 10, true, false);
	expect("a\r\n...\r\n.\r\n", "a\r\n..\r\n", 11, true, false);
	expect("..\r\n.\r\n", ".\r\n", 7, true, false);
	expect("a\r\n..\r\n..\r\n.\r\n", "a\r\n.\r\n.\r\n", 14, true, false);
	/* only the first octet of a line is special */
	expect("a.b\r\nc..\r\n.\r\n", "a.b\r\nc..\r\n", 13, true, false);
	expect("x\r\n. .\r\n.\r\n", "x\r\n .\r\n", 11, true, false);
}

/* "." followed by a bare CR or bare LF never ends the data, and no bare line end ever
 * starts a line whose "." could end it (RFC 5321 §4.1.1.4; SMTP smuggling). */
static void test_bare_lf_never_ends(void **state)
{
	(void)state;
	static const char *const variants[] = {"\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "x\ry",
	                                       "\n.\r", "\r.\n", "\r.\r\n", "\n..\r\n"};
	for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
		for (int normalize = 0; normalize <= 1; normalize++) {
			/* the variant alone, after a line, and after the start of the data */
			const char *prefixes[] = {"", "a", "a\r\n"};
			for (size_t p = 0; p < 3; p++) {
				char text[64];
				size_t pl = strlen(prefixes[p]), vl = strlen(variants[v]);
				memcpy(text, prefixes[p], pl);
				memcpy(text + pl, variants[v], vl);
				text[pl + vl] = '\0';
				const unsigned char *in = (const unsigned char *)text;
				struct result r = decode(in, pl + vl, normalize);
				if (r.end)
					fail_msg("\"%s\" ended the data", text);
				assert_int_equal(r.consumed, pl + vl);
				assert_true(r.bare);
				result_free(&r);
				check_splits(in, pl + vl, normalize);
			}
		}
	}
}

static void test_bare_kept(void **state)
{
	(void)state;
	/* without normalize the octets are kept as they came, and flagged */
	expect_mode("x\ry\r\n.\r\n", false, "x\ry\r\n", 8, true, true);
	expect_mode("x\ny\r\n.\r\n", false, "x\ny\r\n", 8, true, true);
	expect_mode("a\n.\n\r\n.\r\n", false, "a\n.\n\r\n", 9, true, true);
	expect_mode("a\r.\r\r\n.\r\n", false, "a\r.\r\r\n", 9, true, true);
	expect_mode("a\n.\r\n.\r\n", false, "a\n.\r\n", 8, true, true);
	expect_mode("a\r\n.\n\r\n.\r\n", false, "a\r\n.\n\r\n", 10, true, true);
	expect_mode("\r\r\n.\r\n", false, "\r\r\n", 6, true, true);
	expect_mode("\n\r\n.\r\n", false, "\n\r\n", 6, true, true);
	expect_mode("\r\n\r\r\n.\r\n", false, "\r\n\r\r\n", 8, true, true);
	/* ".\r" then something else: the dot was stuffing, the CR is bare */
	expect_mode(".\rx\r\n.\r\n", false, "\rx\r\n", 8, true, true);
	expect_mode(".\r\r\n.\r\n", false, "\r\r\n", 7, true, true);
	/* a dot after a bare line end is ordinary text */
	expect_mode("a\n..\r\n.\r\n", false, "a\n..\r\n", 9, true, true);
}

static void test_bare_normalized(void **state)
{
	(void)state;
	expect_mode("x\ry\r\n.\r\n", true, "x\r\ny\r\n", 8, true, true);
	expect_mode("x\ny\r\n.\r\n", true, "x\r\ny\r\n", 8, true, true);
	expect_mode("a\n.\n\r\n.\r\n", true, "a\r\n.\r\n\r\n", 9, true, true);
	expect_mode("a\r.\r\r\n.\r\n", true, "a\r\n.\r\n\r\n", 9, true, true);
	expect_mode("a\n.\r\n.\r\n", true, "a\r\n.\r\n", 8, true, true);
	expect_mode("a\r\n.\n\r\n.\r\n", true, "a\r\n.\r\n\r\n", 10, true, true);
	expect_mode("\r\r\n.\r\n", true, "\r\n\r\n", 6, true, true);
	expect_mode("\n\r\n.\r\n", true, "\r\n\r\n", 6, true, true);
	expect_mode("\r\r\r\n.\r\n", true, "\r\n\r\n\r\n", 7, true, true);
	expect_mode("\n\n\r\n.\r\n", true, "\r\n\r\n\r\n", 7, true, true);
	expect_mode(".\rx\r\n.\r\n", true, "\r\nx\r\n", 8, true, true);
	/* no bare octet, nothing to change, nothing flagged */
	expect_mode("a\r\nb\r\n.\r\n", true, "a\r\nb\r\n", 9, true, false);
}

/* bare_seen is sticky over the whole message, and a fresh init clears it. */
static void test_bare_flag_sticky(void **state)
{
	(void)state;
	struct smtp_data d;
	struct result r = {0};
	smtp_data_init(&d, false);
	feed(&d, (const unsigned char *)"a\nb", 3, &r);
	assert_true(d.bare_seen);
	feed(&d, (const unsigned char *)"\r\nclean\r\n", 9, &r);
	assert_true(d.bare_seen);
	feed(&d, (const unsigned char *)".\r\n", 3, &r);
	assert_true(r.end);
	assert_true(d.bare_seen);
	result_free(&r);
	smtp_data_init(&d, true);
	assert_false(d.bare_seen);
	assert_true(d.normalize);
}

/* The decoder keeps its state across calls: a terminator split over many calls. */
static void test_terminator_across_calls(void **state)
{
	(void)state;
	static const char *const parts[] = {"line one\r", "\n", ".", "\r", "\n", "NEXT"};
	struct smtp_data d;
	struct result r = {0};
	smtp_data_init(&d, false);
	for (size_t i = 0; i < 5; i++) {
		feed(&d, (const unsigned char *)parts[i], strlen(parts[i]), &r);
		assert_int_equal(r.end, i == 4);
	}
	assert_int_equal(r.consumed, 13);
	assert_int_equal(r.out_len, 10);
	assert_memory_equal(r.out, "line one\r\n", 10);
	result_free(&r);

	/* the octets after the terminator in the same call are left unconsumed */
	smtp_data_init(&d, false);
	r = (struct result){0};
	feed(&d, (const unsigned char *)"x\r\n.", 4, &r);
	feed(&d, (const unsigned char *)"\r\nRSET\r\n", 8, &r);
	assert_true(r.end);
	assert_int_equal(r.consumed, 6);
	assert_int_equal(r.out_len, 3);
	result_free(&r);
}

/* NUL and 8-bit octets are data. */
static void test_binary_octets(void **state)
{
	(void)state;
	static const unsigned char in[] = {'a', 0,    0xff, 0x80, '\r', '\n', '.',
	                                   0,   '\r', '\n', '.',  '\r', '\n'};
	static const unsigned char want[] = {'a', 0, 0xff, 0x80, '\r', '\n', 0, '\r', '\n'};
	for (int normalize = 0; normalize <= 1; normalize++) {
		struct result r = decode(in, sizeof(in), normalize);
		assert_true(r.end);
		assert_false(r.bare);
		assert_int_equal(r.consumed, sizeof(in));
		assert_int_equal(r.out_len, sizeof(want));
		assert_memory_equal(r.out, want, sizeof(want));
		result_free(&r);
		check_splits(in, sizeof(in), normalize);
	}
}

/* Worst cases for the output bound, one octet per call and in one call. */
static void test_output_bound(void **state)
{
	(void)state;
	static const char *const worst[] = {
	    "\r\r\r\r\r\r\r\r",
	    "\n\n\n\n\n\n\n\n",
	    ".\n.\n.\n",
	    ".\rx.\rx",
	    "\r\n.\rx\r\n.\n",
	    ".\r\r\r",
	    "\r\n.\r\r\n.\r\r\n.\rx",
	    "\r\n.\n\r\n.\n\r\n.\n",
	};
	for (size_t w = 0; w < sizeof(worst) / sizeof(worst[0]); w++) {
		for (int normalize = 0; normalize <= 1; normalize++) {
			size_t len = strlen(worst[w]);
			struct result r = decode((const unsigned char *)worst[w], len, normalize);
			assert_true(r.out_len <= SMTP_DATA_OUT_MAX(len));
			result_free(&r);
			/* check_splits() checks every call's bound, byte-at-a-time included */
			check_splits((const unsigned char *)worst[w], len, normalize);
		}
	}
}

/* An independent model of the decoder for inputs that hold an end of data: find the first
 * CRLF.CRLF (or ".CRLF" at the very start), split the body into CRLF lines, drop the leading
 * '.' of every line except when a bare LF follows it, and treat every other CR or LF as bare. */
static struct result model(const unsigned char *in, size_t len, bool normalize)
{
	struct result r = {0};
	size_t body = 0, end = 0;
	if (len >= 3 && memcmp(in, ".\r\n", 3) == 0) {
		end = 3;
	} else {
		for (size_t i = 0; i + 5 <= len; i++) {
			if (memcmp(in + i, "\r\n.\r\n", 5) == 0) {
				body = i + 2;
				end = i + 5;
				break;
			}
		}
	}
	assert_true(end != 0);
	r.out = malloc(2 * len + 1);
	assert_non_null(r.out);
	size_t pos = 0;
	while (pos < body) {
		size_t e = pos;
		while (!(in[e] == '\r' && in[e + 1] == '\n'))
			e++;
		size_t s = pos;
		if (e > s && in[s] == '.' && !(e > s + 1 && in[s + 1] == '\n'))
			s++;
		for (; s < e; s++) {
			if (in[s] == '\r' || in[s] == '\n') {
				r.bare = true;
				if (normalize) {
					r.out[r.out_len++] = '\r';
					r.out[r.out_len++] = '\n';
					continue;
				}
			}
			r.out[r.out_len++] = in[s];
		}
		r.out[r.out_len++] = '\r';
		r.out[r.out_len++] = '\n';
		pos = e + 2;
	}
	r.consumed = end;
	r.end = true;
	return r;
}

static uint32_t rng_state;

static uint32_t rng(void)
{
	/* xorshift32 with a fixed seed: the test is the same on every run */
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

/* Random inputs over a small alphabet, rich in '.', CR and LF: random chunking gives the
 * same result as one call, every call stays within SMTP_DATA_OUT_MAX(), and with a
 * terminator appended the result matches the model above. */
static void test_random(void **state)
{
	(void)state;
	static const unsigned char alphabet[] = {'.', '.', '\r', '\r', '\n', '\n', 'a', 0};
	rng_state = 0x2545f491u;
	for (int iter = 0; iter < 20000; iter++) {
		unsigned char in[72];
		size_t len = rng() % 64;
		for (size_t i = 0; i < len; i++)
			in[i] = alphabet[rng() % sizeof(alphabet)];
		bool normalize = (rng() & 1) != 0;
		size_t sizes[256];
		size_t nsizes = 0, total = 0;
		while (total < len && nsizes < 256) {
			sizes[nsizes] = rng() % 5;
			total += sizes[nsizes++];
		}
		struct result whole = decode(in, len, normalize);
		struct result parts = decode_chunks(in, len, normalize, sizes, nsizes);
		assert_same(&whole, &parts);
		assert_true(whole.out_len <= SMTP_DATA_OUT_MAX(len));
		result_free(&whole);
		result_free(&parts);

		/* append an end of data and compare with the model */
		memcpy(in + len, "\r\n.\r\n", 5);
		whole = decode(in, len + 5, normalize);
		struct result want = model(in, len + 5, normalize);
		assert_same(&want, &whole);
		result_free(&whole);
		result_free(&want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_end_of_data),
	    cmocka_unit_test(test_empty_message),
	    cmocka_unit_test(test_trailing_bytes_not_consumed),
	    cmocka_unit_test(test_dot_unstuffing),
	    cmocka_unit_test(test_bare_lf_never_ends),
	    cmocka_unit_test(test_bare_kept),
	    cmocka_unit_test(test_bare_normalized),
	    cmocka_unit_test(test_bare_flag_sticky),
	    cmocka_unit_test(test_terminator_across_calls),
	    cmocka_unit_test(test_binary_octets),
	    cmocka_unit_test(test_output_bound),
	    cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
