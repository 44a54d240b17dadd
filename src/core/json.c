/* JSON text output (see json.h). */
#include "core/json.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/banned.h"

/* Length of the valid UTF-8 sequence at s (RFC 3629 §4: no overlongs, no surrogates, at
 * most U+10FFFF), or 0 when it is not one. */
static size_t json_utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1fu;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0fu;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07u;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0; /* also stops at the NUL */
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

int json_string(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s == NULL ? "" : s);
	if (buf_puts(b, "\"") < 0)
		return -1;
	while (*p != '\0') {
		int r;
		size_t n = json_utf8_len(p);
		if (*p == '"' || *p == '\\') {
			char esc[3] = {'\\', (char)*p, '\0'};
			r = buf_puts(b, esc);
		} else if (*p == '\n') {
			r = buf_puts(b, "\\n");
		} else if (*p == '\r') {
			r = buf_puts(b, "\\r");
		} else if (*p == '\t') {
			r = buf_puts(b, "\\t");
		} else if (*p < 0x20 || *p == 0x7f) {
			r = buf_printf(b, "\\u%04x", (unsigned)*p);
		} else if (n == 0) {
			r = buf_puts(b, "\xef\xbf\xbd"); /* U+FFFD for a stray octet */
			n = 1;
		} else {
			r = buf_append(b, p, n);
		}
		if (r < 0)
			return -1;
		p += n == 0 ? 1 : n;
	}
	return buf_puts(b, "\"");
}

int json_key(struct buf *b, const char *key)
{
	if (json_string(b, key) < 0)
		return -1;
	return buf_puts(b, ": ");
}

int json_uint(struct buf *b, uint64_t n)
{
	return buf_printf(b, "%" PRIu64, n);
}
