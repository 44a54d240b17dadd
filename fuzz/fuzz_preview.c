/* libFuzzer target for mime/mime_preview (RFC 8970 PREVIEW text from hostile MIME): parses
 * the input as a message and computes its preview, then takes the input as text and as HTML;
 * each result must be valid UTF-8 of at most MIME_PREVIEW_CHARS characters, without control
 * characters, without white space at either end and without two spaces in a row. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/log.h"
#include "core/utf8.h"
#include "mime/mime.h"
#include "mime/mime_preview.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(const char *p)
{
	if (!utf8_valid(p))
		abort();
	size_t chars = 0, len = strlen(p);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if ((c & 0xc0) != 0x80)
			chars++;
		if (c < 0x20 || c == 0x7f)
			abort();
		if (c == ' ' && (i == 0 || i + 1 == len || p[i + 1] == ' '))
			abort();
	}
	if (chars > MIME_PREVIEW_CHARS)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena *a = arena_new(16384);
	struct mime_part *root;
	struct mime_limits limits = {0};
	if (mime_parse(a, data, size, &limits, &root) >= -1)
		fuzz_check(mime_preview(a, data, size, root));
	fuzz_check(mime_preview_text(a, (const char *)data, size, 0));
	fuzz_check(mime_preview_text(a, (const char *)data, size, 1));
	arena_free(&a);
	return 0;
}
