/* libFuzzer target for the charset decoders of mime/mime_decode: the first octet picks a
 * charset (ISO-8859-1 mapped here; the others through iconv(3), stateful ones included),
 * the rest is text in it: a converted result (not the input itself) must be valid UTF-8
 * of the length given. Then the input goes through RFC 2047 encoded-word decoding as an
 * unfolded header field body, whose result must also be bounded and, where it was
 * rewritten, NUL-terminated at its length. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/log.h"
#include "core/utf8.h"
#include "mime/mime_decode.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fuzz_charsets[] = {
    "utf-8",         "us-ascii",    "iso-8859-1", "ISO-8859-15",
    "windows-1252",  "iso-2022-jp", "shift_jis",  "euc-jp",
    "gb2312",        "big5",        "koi8-r",     "utf-16",
    "utf-7",         "UTF-32BE",    "x-unknown",  "",
    "iso-8859-1*en",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	const char *cs =
	    fuzz_charsets[data[0] % (sizeof(fuzz_charsets) / sizeof(fuzz_charsets[0]))];
	const unsigned char *s = data + 1;
	size_t len = size - 1;
	struct arena *a = arena_new(4096);
	size_t out_len = 0;
	const char *out = mime_decode_charset(a, cs, strlen(cs), s, len, &out_len);
	ASSERT(out != NULL);
	if ((const unsigned char *)out != s) {
		ASSERT(out[out_len] == '\0');
		ASSERT(utf8_valid(out));
	} else {
		ASSERT(out_len == len);
	}
	char *text = malloc(size); /* exact size: ASan sees overreads */
	memcpy(text, data, size);
	size_t wlen = 0;
	const char *w = mime_decode_words(a, text, size, &wlen);
	if (w != text)
		ASSERT(w[wlen] == '\0');
	else
		ASSERT(wlen == size);
	free(text);
	arena_free(&a);
	return 0;
}
