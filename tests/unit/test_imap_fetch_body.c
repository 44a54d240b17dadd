/* Unit tests for imap/imap_fetch_body's measuring pass: the decoded size of a file range
 * read in chunks (ranges larger than one chunk, base64 and quoted-printable across chunk
 * boundaries) and whether a NUL falls inside a window of the decoded octets. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imap/imap_fetch_body.h"
#include "core/banned.h"

/* A temporary file holding data; returns its fd (unlinked already). */
static int temp_file(const void *data, size_t len)
{
	char path[] = "/tmp/test_fetch_body_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	return fd;
}

static void measure(int fd, uint64_t off, uint64_t len, enum mime_encoding cte, uint64_t win_off,
                    uint64_t win_len, uint64_t *size, bool *nul)
{
	struct imap_fetch_chunk c;
	imap_fetch_chunk_init(&c);
	uint64_t read = 0;
	assert_int_equal(
	    imap_fetch_body_measure(fd, off, len, cte, win_off, win_len, &c, size, nul, &read), 0);
	assert_int_equal(read, len);
	imap_fetch_chunk_deinit(&c);
}

static void test_raw_range_and_nul_window(void **state)
{
	(void)state;
	size_t n = 3 * IMAP_FETCH_BODY_CHUNK + 100;
	unsigned char *data = malloc(n);
	memset(data, 'x', n);
	data[IMAP_FETCH_BODY_CHUNK + 5] = 0; /* in the second chunk */
	int fd = temp_file(data, n);
	uint64_t size;
	bool nul;
	measure(fd, 0, n, MIME_ENCODING_BINARY, 0, UINT64_MAX, &size, &nul);
	assert_int_equal(size, n);
	assert_true(nul);
	/* A window before or after the NUL does not see it; one over it does. */
	measure(fd, 0, n, MIME_ENCODING_7BIT, 0, IMAP_FETCH_BODY_CHUNK + 5, &size, &nul);
	assert_false(nul);
	measure(fd, 0, n, MIME_ENCODING_7BIT, IMAP_FETCH_BODY_CHUNK + 6, 1000, &size, &nul);
	assert_false(nul);
	measure(fd, 0, n, MIME_ENCODING_7BIT, IMAP_FETCH_BODY_CHUNK + 5, 1, &size, &nul);
	assert_true(nul);
	/* An empty window (BINARY.SIZE) never sees one; a sub-range of the file. */
	measure(fd, 10, 20, MIME_ENCODING_8BIT, 0, 0, &size, &nul);
	assert_int_equal(size, 20);
	assert_false(nul);
	close(fd);
	free(data);
}

static void test_base64_across_chunks(void **state)
{
	(void)state;
	/* 200,000 octets of "AAAA" lines: 150,000 NUL octets, decoded across chunk ends. */
	size_t groups = 50000, n = 0;
	char *enc = malloc(groups * 4 + groups / 19 * 2 + 16);
	for (size_t i = 0; i < groups; i++) {
		memcpy(enc + n, i == groups - 1 ? "QQ==" : "AAAA", 4);
		n += 4;
		if (i % 19 == 18) {
			memcpy(enc + n, "\r\n", 2);
			n += 2;
		}
	}
	int fd = temp_file(enc, n);
	uint64_t size;
	bool nul;
	measure(fd, 0, n, MIME_ENCODING_BASE64, 0, UINT64_MAX, &size, &nul);
	assert_int_equal(size, (groups - 1) * 3 + 1);
	assert_true(nul);
	/* Only the last decoded octet ("A") is in this window. */
	measure(fd, 0, n, MIME_ENCODING_BASE64, (groups - 1) * 3, 10, &size, &nul);
	assert_false(nul);
	close(fd);
	free(enc);
}

static void test_qp_and_short_file(void **state)
{
	(void)state;
	const char qp[] = "a=00b=\r\nc  \r\nd";
	int fd = temp_file(qp, sizeof(qp) - 1);
	uint64_t size;
	bool nul;
	measure(fd, 0, sizeof(qp) - 1, MIME_ENCODING_QUOTED_PRINTABLE, 0, UINT64_MAX, &size, &nul);
	assert_int_equal(size, 7); /* "a\0bc\r\nd" */
	assert_true(nul);
	/* A range past the end of the file is an error, not a short answer. */
	struct imap_fetch_chunk c;
	imap_fetch_chunk_init(&c);
	uint64_t read = 0;
	assert_int_equal(imap_fetch_body_measure(fd, 0, 100, MIME_ENCODING_BINARY, 0, UINT64_MAX,
	                                         &c, &size, &nul, &read),
	                 -1);
	imap_fetch_chunk_deinit(&c);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_raw_range_and_nul_window),
	    cmocka_unit_test(test_base64_across_chunks),
	    cmocka_unit_test(test_qp_and_short_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
