/* Base64 encoding and strict decoding (see base64.h). Table-driven, no locale, no
 * allocation in the decoder, so it can run on secrets and on untrusted input alike. */
#include "core/base64.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

static const char base64_alphabet[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Value of an alphabet character, or -1 for anything else (including '='). */
static int base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

size_t base64_encoded_len(size_t len)
{
	return (len / 3 + (len % 3 != 0)) * 4;
}

size_t base64_decoded_max(size_t len)
{
	return len / 4 * 3;
}

char *base64_encode_dup(const unsigned char *data, size_t len)
{
	/* Keeps 4 * ceil(len / 3) + 1 from overflowing; no real input comes near it. */
	ASSERT(len <= SIZE_MAX / 4 * 3 - 3);
	char *out = xmalloc(base64_encoded_len(len) + 1);
	size_t o = 0, i = 0;
	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
		out[o++] = base64_alphabet[v >> 18];
		out[o++] = base64_alphabet[(v >> 12) & 63];
		out[o++] = base64_alphabet[(v >> 6) & 63];
		out[o++] = base64_alphabet[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)data[i] << 16;
		out[o++] = base64_alphabet[v >> 18];
		out[o++] = base64_alphabet[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
		out[o++] = base64_alphabet[v >> 18];
		out[o++] = base64_alphabet[(v >> 12) & 63];
		out[o++] = base64_alphabet[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

/* Decode the last quantum q[0..3], which may carry padding. Returns the number of bytes
 * (1..3) written to out, or -1. */
static int base64_decode_last(const unsigned char *q, unsigned char *out, size_t room)
{
	int a = base64_value(q[0]), b = base64_value(q[1]);
	if (a < 0 || b < 0)
		return -1;
	int c = q[2] == '=' ? -2 : base64_value(q[2]);
	int d = q[3] == '=' ? -2 : base64_value(q[3]);
	int n;
	if (c == -1 || d == -1 || (c == -2 && d != -2))
		return -1;
	if (c == -2) /* "xx==": one byte; the low 4 bits of b are unused and must be 0 */
		n = (b & 15) == 0 ? 1 : -1;
	else if (d == -2) /* "xxx=": two bytes; the low 2 bits of c must be 0 */
		n = (c & 3) == 0 ? 2 : -1;
	else
		n = 3;
	if (n < 0 || (size_t)n > room)
		return -1;
	uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12;
	if (c >= 0)
		v |= (uint32_t)c << 6;
	if (d >= 0)
		v |= (uint32_t)d;
	out[0] = (unsigned char)(v >> 16);
	if (n > 1)
		out[1] = (unsigned char)(v >> 8);
	if (n > 2)
		out[2] = (unsigned char)v;
	return n;
}

ssize_t base64_decode(const char *in, size_t len, unsigned char *out, size_t out_max)
{
	const unsigned char *p = (const unsigned char *)in;
	if (len % 4 != 0 || len / 4 * 3 > SSIZE_MAX)
		return -1;
	if (len == 0)
		return 0;
	size_t o = 0, i = 0;
	for (; i + 4 < len; i += 4) {
		int a = base64_value(p[i]), b = base64_value(p[i + 1]);
		int c = base64_value(p[i + 2]), d = base64_value(p[i + 3]);
		if ((a | b | c | d) < 0 || out_max - o < 3)
			return -1;
		uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
		out[o++] = (unsigned char)(v >> 16);
		out[o++] = (unsigned char)(v >> 8);
		out[o++] = (unsigned char)v;
	}
	int n = base64_decode_last(p + i, out + o, out_max - o);
	if (n < 0)
		return -1;
	return (ssize_t)(o + (size_t)n);
}
