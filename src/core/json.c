/* JSON text output (see json.h). */
#include "core/json.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/utf8.h"
#include "core/banned.h"

int json_string(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s == NULL ? "" : s);
	if (buf_puts(b, "\"") < 0)
		return -1;
	while (*p != '\0') {
		int r;
		size_t n = utf8_seq_len(p);
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
