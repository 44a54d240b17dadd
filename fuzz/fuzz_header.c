/* libFuzzer target for the incremental header scanner used at delivery: any input, fed
 * whole or in chunks whose sizes come from the first byte, gives the same summary. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "mime/header.h"

static int same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t chunk = (size_t)(data[0] % 17) + 1;
	data++;
	size--;
	struct arena *a = arena_new(4096);
	struct header_scanner *whole = header_scanner_new(a, 200, 50);
	struct header_scanner *parts = header_scanner_new(a, 200, 50);
	(void)header_scanner_feed(whole, data, size);
	for (size_t pos = 0; pos < size; pos += chunk)
		(void)header_scanner_feed(parts, data + pos,
		                          size - pos < chunk ? size - pos : chunk);
	struct header_summary x, y;
	header_scanner_result(whole, &x);
	header_scanner_result(parts, &y);
	if (!same(x.from, y.from) || !same(x.subject, y.subject) ||
	    !same(x.message_id, y.message_id) || x.lines != y.lines || x.complete != y.complete ||
	    x.too_many != y.too_many)
		abort();
	arena_free(&a);
	return 0;
}
