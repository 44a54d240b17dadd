/* libFuzzer target for UTF-8 validation (core/utf8): utf8_seq_len() and utf8_valid() must
 * agree with the table of well-formed byte sequences of RFC 3629 §4 (checked here by a
 * second, table-driven reading), and utf8_valid() with walking the sequences one by one. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"

static bool in(unsigned char c, unsigned char lo, unsigned char hi)
{
	return c >= lo && c <= hi;
}

/* The length of the well-formed sequence at s per RFC 3629's table, or 0. */
static size_t table_len(const unsigned char *s)
{
	unsigned char c = s[0];
	if (c <= 0x7f)
		return 1;
	unsigned char second_lo = 0x80, second_hi = 0xbf;
	size_t n;
	if (in(c, 0xc2, 0xdf))
		n = 2;
	else if (in(c, 0xe0, 0xef))
		n = 3;
	else if (in(c, 0xf0, 0xf4))
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		second_lo = 0xa0;
	else if (c == 0xed)
		second_hi = 0x9f;
	else if (c == 0xf0)
		second_lo = 0x90;
	else if (c == 0xf4)
		second_hi = 0x8f;
	if (!in(s[1], second_lo, second_hi))
		return 0;
	for (size_t i = 2; i < n; i++)
		if (!in(s[i], 0x80, 0xbf))
			return 0;
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	bool valid = true;
	for (size_t i = 0; i < size;) {
		size_t n = utf8_seq_len(s + i);
		if (n != table_len(s + i))
			abort();
		if (n == 0) {
			valid = false;
			i++;
		} else {
			i += n;
		}
	}
	/* A NUL inside the input ends the string utf8_valid() sees. */
	size_t len = strlen((const char *)s);
	if (len == size && utf8_valid((const char *)s) != valid)
		abort();
	if (len < size) {
		bool prefix = true;
		for (size_t i = 0; i < len;) {
			size_t n = table_len(s + i);
			if (n == 0) {
				prefix = false;
				break;
			}
			i += n;
		}
		if (utf8_valid((const char *)s) != prefix)
			abort();
	}
	free(s);
	return 0;
}
