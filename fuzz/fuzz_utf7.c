/* libFuzzer target for modified UTF-7 (mailbox names from IMAP4rev1 clients): decoding any
 * input must not crash, and whatever decodes must encode back to the same text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	memcpy(in, data, size);
	in[size] = '\0';
	struct buf utf8, back;
	buf_init(&utf8, 1 << 20);
	buf_init(&back, 1 << 20);
	if (utf7_to_utf8(in, &utf8) == 0) {
		/* Only canonical input decodes: it is exactly what the encoder produces. */
		if (utf7_from_utf8(buf_cstr(&utf8), &back) != 0 || strcmp(buf_cstr(&back), in) != 0)
			abort();
	}
	buf_reset(&back);
	(void)utf7_from_utf8(in, &back); /* arbitrary bytes as UTF-8 input */
	buf_free(&utf8);
	buf_free(&back);
	free(in);
	return 0;
}
