/* libFuzzer target for rspamd's reply (smtp/rspamd_proto): the input is an HTTP response as
 * rspamd's worker would send it. It is parsed whole as if the connection had ended and as
 * if more could come; every proper prefix must need more or be refused, never give a
 * verdict that the whole does not. A verdict's strings must be safe to write into a header
 * block: no CR, an LF only before white space and a visible character, short lines; the SMTP
 * message printable ASCII. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "smtp/rspamd_proto.h"

/* No CR; an LF only before white space and a visible character on that line; no line
 * longer than RFC 5322's 998 octets. */
static void check_value(const char *s)
{
	if (s == NULL)
		return;
	size_t col = 0;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '\r' || (*p == '\n' && p[1] != ' ' && p[1] != '\t') || ++col > 998)
			abort();
		if (*p != '\n')
			continue;
		col = 0;
		const char *q = p + 1;
		while (*q == ' ' || *q == '\t')
			q++;
		if (*q == '\n' || *q == '\0')
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena *a = arena_new(4096);
	struct rspamd_verdict v;
	const char *err;
	int whole = rspamd_proto_parse(data, size, true, a, &v, &err);
	if (whole == 0)
		abort(); /* at the end of the connection there is nothing more to wait for */
	if (whole == 1) {
		if (v.symbol_count > RSPAMD_SYMBOLS_MAX || v.add_count > RSPAMD_HEADERS_MAX ||
		    v.remove_count > RSPAMD_HEADERS_MAX)
			abort();
		check_value(v.subject);
		check_value(v.message);
		for (const char *p = v.message; p != NULL && *p != '\0'; p++)
			if (*p < ' ' || *p > '~')
				abort();
		for (size_t i = 0; i < v.add_count; i++) {
			check_value(v.add[i].value);
			if (strpbrk(v.add[i].name, ": \t\r\n") != NULL)
				abort();
		}
	}
	int more = rspamd_proto_parse(data, size, false, a, &v, &err);
	if (more == 1 && whole != 1)
		abort();
	arena_free(&a);
	return 0;
}
