/* The test drivers' line format (tests/unit/spf_suite.c, dkim_check.c): a value is written
 * in hex, "-" for the empty one, so that any octet (NUL, spaces, newlines) fits on a line. */
#ifndef POSTHORN_TESTS_DRIVER_HEX_H
#define POSTHORN_TESTS_DRIVER_HEX_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The octets of h, NUL-terminated (they may hold NULs: *len_r is their count; may be
 * NULL). The caller frees. */
static inline char *driver_unhex(const char *h, size_t *len_r)
{
	size_t n = strcmp(h, "-") == 0 ? 0 : strlen(h) / 2;
	if (len_r != NULL)
		*len_r = n;
	char *out = malloc(n + 1);
	if (out == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		unsigned v = 0;
		if (sscanf(h + 2 * i, "%2x", &v) != 1)
			abort();
		out[i] = (char)v;
	}
	out[n] = '\0';
	return out;
}

#endif
