/* Unit tests for net/compress: raw DEFLATE both ways, sync flushes that leave nothing
 * behind, our 8 KiB sending window, the full 32 KiB receiving window, bounded output per
 * inflate call (a "bomb" is taken out_cap octets at a time), corrupt and ended streams. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "net/compress.h"
#include "core/banned.h"

/* Deflate all of in with a sync flush into out (cap); returns the compressed length. */
static size_t deflate_all(struct compress *z, const unsigned char *in, size_t len,
                          unsigned char *out, size_t cap, size_t step)
{
	size_t total = 0;
	for (;;) {
		size_t used, made, room = cap - total < step ? cap - total : step;
		assert_true(room > 0);
		int r = compress_deflate(z, in, len, &used, true, out + total, room, &made);
		assert_int_not_equal(r, -1);
		in += used;
		len -= used;
		total += made;
		if (r == 0)
			break;
	}
	assert_int_equal(len, 0);
	return total;
}

/* Inflate all of in with at most step output octets per call; returns the plain length. */
static size_t inflate_all(struct compress *z, const unsigned char *in, size_t len,
                          unsigned char *out, size_t cap, size_t step)
{
	size_t total = 0;
	for (;;) {
		size_t used, made, room = cap - total < step ? cap - total : step;
		int r = compress_inflate(z, in, len, &used, out + total, room, &made);
		assert_int_not_equal(r, -1);
		assert_true(made <= room);
		in += used;
		len -= used;
		total += made;
		if (r == 0)
			break;
	}
	assert_int_equal(len, 0);
	return total;
}

/* A plain zlib raw inflater with the given window: all of in must decode to want. */
static void zlib_check(const unsigned char *in, size_t len, int window_bits,
                       const unsigned char *want, size_t want_len)
{
	z_stream s;
	memset(&s, 0, sizeof(s));
	assert_int_equal(inflateInit2(&s, -window_bits), Z_OK);
	unsigned char *out = malloc(want_len + 16);
	s.next_in = (Bytef *)in;
	s.avail_in = (uInt)len;
	s.next_out = out;
	s.avail_out = (uInt)want_len + 16;
	int r = inflate(&s, Z_SYNC_FLUSH);
	assert_true(r == Z_OK || r == Z_BUF_ERROR);
	assert_int_equal(s.avail_in, 0);
	assert_int_equal(s.total_out, want_len);
	assert_memory_equal(out, want, want_len);
	inflateEnd(&s);
	free(out);
}

static void test_roundtrip_small_steps(void **state)
{
	(void)state;
	const char *lines[] = {"* OK [CAPABILITY IMAP4rev2] ready\r\n", "a1 OK done\r\n",
	                       "* 1 FETCH (FLAGS (\\Seen))\r\n"};
	struct compress *tx = compress_new(), *rx = compress_new();
	for (size_t i = 0; i < 3; i++) {
		unsigned char c[512], p[256];
		size_t len = strlen(lines[i]);
		size_t n = deflate_all(tx, (const unsigned char *)lines[i], len, c, sizeof(c),
		                       COMPRESS_OUT_MIN);
		/* a sync flush ends with an empty stored block (RFC 1951 §3.2.4) */
		assert_true(n >= 4);
		assert_memory_equal(c + n - 4, "\x00\x00\xff\xff", 4);
		assert_int_equal(inflate_all(rx, c, n, p, sizeof(p), 1), len);
		assert_memory_equal(p, lines[i], len);
	}
	compress_free(&tx);
	compress_free(&rx);
	assert_null(tx);
	compress_free(&tx); /* NULL is fine */
}

/* Each flush alone makes everything so far decodable by a peer (it never waits). */
static void test_flush_leaves_nothing_behind(void **state)
{
	(void)state;
	struct compress *tx = compress_new();
	unsigned char c[256];
	const unsigned char msg[] = "a7 OK NOOP completed\r\n";
	size_t used, made;
	/* without a flush, zlib may keep everything */
	assert_int_equal(
	    compress_deflate(tx, msg, sizeof(msg) - 1, &used, false, c, sizeof(c), &made), 0);
	assert_int_equal(used, sizeof(msg) - 1);
	size_t n = made;
	assert_int_equal(compress_deflate(tx, NULL, 0, &used, true, c + n, sizeof(c) - n, &made),
	                 0);
	n += made;
	zlib_check(c, n, 15, msg, sizeof(msg) - 1);
	/* a flush with nothing new is harmless */
	assert_int_equal(compress_deflate(tx, NULL, 0, &used, true, c, sizeof(c), &made), 0);
	compress_free(&tx);
}

/* Random 20 KiB twice: with a 32 KiB window the second copy would point 20 KiB back. Our
 * output decodes with an 8 KiB window (it uses no more); our input takes 32 KiB ones. */
static void test_windows(void **state)
{
	(void)state;
	size_t half = 20 * 1024, len = 2 * half;
	unsigned char *plain = malloc(len), *c = malloc(2 * len + 1024), *p = malloc(len);
	srand(11);
	for (size_t i = 0; i < half; i++)
		plain[i] = (unsigned char)rand();
	memcpy(plain + half, plain, half);

	struct compress *tx = compress_new();
	size_t n = deflate_all(tx, plain, len, c, 2 * len + 1024, 4096);
	zlib_check(c, n, COMPRESS_DEFLATE_WINDOW_BITS, plain, len);
	compress_free(&tx);

	z_stream s;
	memset(&s, 0, sizeof(s));
	assert_int_equal(deflateInit2(&s, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
	s.next_in = plain;
	s.avail_in = (uInt)len;
	s.next_out = c;
	s.avail_out = (uInt)(2 * len + 1024);
	assert_int_equal(deflate(&s, Z_SYNC_FLUSH), Z_OK);
	n = s.total_out;
	deflateEnd(&s);
	assert_true(n < len * 3 / 4); /* the far match was used */
	struct compress *rx = compress_new();
	assert_int_equal(inflate_all(rx, c, n, p, len, 1000), len);
	assert_memory_equal(p, plain, len);
	compress_free(&rx);
	free(plain);
	free(c);
	free(p);
}

/* 64 MiB of zeros in about 64 KiB: every call makes at most out_cap octets. */
static void test_bomb_is_bounded_per_call(void **state)
{
	(void)state;
	z_stream s;
	memset(&s, 0, sizeof(s));
	assert_int_equal(deflateInit2(&s, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
	static unsigned char zeros[1 << 20];
	size_t cap = 256 * 1024;
	unsigned char *c = malloc(cap);
	s.next_out = c;
	s.avail_out = (uInt)cap;
	for (int i = 0; i < 64; i++) {
		s.next_in = zeros;
		s.avail_in = sizeof(zeros);
		assert_int_equal(deflate(&s, i == 63 ? Z_SYNC_FLUSH : Z_NO_FLUSH), Z_OK);
		assert_int_equal(s.avail_in, 0);
	}
	size_t n = s.total_out;
	deflateEnd(&s);
	assert_true(n < 128 * 1024);

	struct compress *rx = compress_new();
	unsigned char out[4096];
	const unsigned char *in = c;
	size_t left = n, total = 0, calls = 0;
	for (;;) {
		size_t used, made;
		int r = compress_inflate(rx, in, left, &used, out, sizeof(out), &made);
		assert_int_not_equal(r, -1);
		assert_true(made <= sizeof(out));
		in += used;
		left -= used;
		total += made;
		calls++;
		if (r == 0)
			break;
	}
	assert_int_equal(total, (size_t)64 << 20);
	assert_true(calls >= total / sizeof(out));
	compress_free(&rx);
	free(c);
}

static void test_corrupt_and_ended_streams(void **state)
{
	(void)state;
	unsigned char out[64];
	size_t used, made;
	struct compress *rx = compress_new();
	/* BFINAL=1 BTYPE=11: reserved (RFC 1951 §3.2.3) */
	const unsigned char bad[] = {0xff, 0xff, 0xff};
	assert_int_equal(compress_inflate(rx, bad, sizeof(bad), &used, out, sizeof(out), &made),
	                 -1);
	/* broken for good */
	const unsigned char ok[] = {0x02, 0x00};
	assert_int_equal(compress_inflate(rx, ok, sizeof(ok), &used, out, sizeof(out), &made), -1);
	compress_free(&rx);

	/* nothing in: nothing to do */
	rx = compress_new();
	assert_int_equal(compress_inflate(rx, ok, 0, &used, out, sizeof(out), &made), 0);
	assert_int_equal(used + made, 0);
	/* a final block (Z_FINISH): an IMAP stream may not end (RFC 4978 §3) */
	z_stream s;
	memset(&s, 0, sizeof(s));
	assert_int_equal(deflateInit2(&s, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
	unsigned char c[64];
	s.next_in = (Bytef *)"a1 NOOP\r\n";
	s.avail_in = 9;
	s.next_out = c;
	s.avail_out = sizeof(c);
	assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
	size_t n = s.total_out;
	deflateEnd(&s);
	assert_int_equal(compress_inflate(rx, c, n, &used, out, sizeof(out), &made), -1);
	compress_free(&rx);
}

static void test_totals(void **state)
{
	(void)state;
	struct compress *tx = compress_new(), *rx = compress_new();
	unsigned char c[128], p[128];
	const unsigned char msg[] = "a1 LOGOUT\r\n";
	size_t n = deflate_all(tx, msg, sizeof(msg) - 1, c, sizeof(c), sizeof(c));
	assert_int_equal(inflate_all(rx, c, n, p, sizeof(p), sizeof(p)), sizeof(msg) - 1);
	unsigned long long a, b, d, e;
	compress_totals(tx, &a, &b, &d, &e);
	assert_true(a == 0 && b == 0 && d == sizeof(msg) - 1 && e == n);
	compress_totals(rx, &a, &b, &d, &e);
	assert_true(a == n && b == sizeof(msg) - 1 && d == 0 && e == 0);
	compress_free(&tx);
	compress_free(&rx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip_small_steps),
	    cmocka_unit_test(test_flush_leaves_nothing_behind),
	    cmocka_unit_test(test_windows),
	    cmocka_unit_test(test_bomb_is_bounded_per_call),
	    cmocka_unit_test(test_corrupt_and_ended_streams),
	    cmocka_unit_test(test_totals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
