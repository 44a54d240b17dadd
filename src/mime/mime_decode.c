/* Tolerant base64 and quoted-printable decoders for MIME bodies (RFC 2045 §6.7, §6.8), used by
 * IMAP BINARY fetches (RFC 3516). Broken input never fails: base64 stops where the data stops
 * being base64, quoted-printable keeps what it cannot decode. */
#include "mime/mime_decode.h"

#include <string.h>

#include "core/banned.h"

/* 0..63 for the base64 alphabet, -1 otherwise. */
static int mime_decode_b64_value(unsigned char c)
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

size_t mime_decode_base64(const unsigned char *in, size_t len, unsigned char *out)
{
	size_t n = 0;
	unsigned long acc = 0;
	unsigned bits = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = in[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		int v = mime_decode_b64_value(c);
		if (v < 0)
			break; /* '=' padding or garbage: the data ends here */
		acc = (acc << 6) | (unsigned long)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
			acc &= (1UL << bits) - 1;
		}
	}
	return n;
}

static int mime_decode_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Length of the line break at in[i] (CRLF or LF), 0 if none. */
static size_t mime_decode_eol(const unsigned char *in, size_t len, size_t i)
{
	if (i < len && in[i] == '\n')
		return 1;
	if (i + 1 < len && in[i] == '\r' && in[i + 1] == '\n')
		return 2;
	return 0;
}

/* The index after SP/HT starting at i. */
static size_t mime_decode_skip_wsp(const unsigned char *in, size_t len, size_t i)
{
	while (i < len && (in[i] == ' ' || in[i] == '\t'))
		i++;
	return i;
}

size_t mime_decode_qp(const unsigned char *in, size_t len, unsigned char *out)
{
	size_t n = 0, i = 0;
	while (i < len) {
		unsigned char c = in[i];
		if (c == ' ' || c == '\t') {
			/* Trailing whitespace before a line break (or the end) is dropped. */
			size_t j = mime_decode_skip_wsp(in, len, i);
			if (j == len || mime_decode_eol(in, len, j) > 0) {
				i = j;
			} else {
				memcpy(out + n, in + i, j - i);
				n += j - i;
				i = j;
			}
			continue;
		}
		if (c != '=') {
			out[n++] = c;
			i++;
			continue;
		}
		if (i + 2 < len && mime_decode_hex(in[i + 1]) >= 0 &&
		    mime_decode_hex(in[i + 2]) >= 0) {
			out[n++] = (unsigned char)(mime_decode_hex(in[i + 1]) * 16 +
			                           mime_decode_hex(in[i + 2]));
			i += 3;
			continue;
		}
		size_t j = mime_decode_skip_wsp(in, len, i + 1);
		size_t eol = mime_decode_eol(in, len, j);
		if (eol > 0 || (j == len && j > i + 1)) {
			i = j + eol; /* soft line break */
			continue;
		}
		out[n++] = c; /* a bad escape stays as written */
		i++;
	}
	return n;
}

int mime_decode_body(struct arena *arena, enum mime_encoding cte, const unsigned char *in,
                     size_t len, const unsigned char **out_r, size_t *len_r)
{
	*out_r = NULL;
	*len_r = 0;
	switch (cte) {
	case MIME_ENCODING_7BIT:
	case MIME_ENCODING_8BIT:
	case MIME_ENCODING_BINARY:
		*out_r = in;
		*len_r = len;
		return 0;
	case MIME_ENCODING_BASE64:
	case MIME_ENCODING_QUOTED_PRINTABLE: {
		unsigned char *out = arena_alloc(arena, MIME_DECODE_MAX_OUT(len) + 1);
		*len_r = cte == MIME_ENCODING_BASE64 ? mime_decode_base64(in, len, out)
		                                     : mime_decode_qp(in, len, out);
		*out_r = out;
		return 0;
	}
	case MIME_ENCODING_OTHER:
		break;
	}
	return -1;
}
