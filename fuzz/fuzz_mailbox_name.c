/* libFuzzer target for mailbox names (store_mailbox_name_valid(), core/utf7): the input is a
 * name as a client sends it. Decoded from modified UTF-7 as an IMAP4rev1 session does, and
 * also taken as UTF-8 directly, each name is checked against the rules of store.h (valid
 * UTF-8, no control character, no '*' or '%', no empty level, at most 512 octets and 32
 * levels) by a reference written here; and every valid name must encode to modified UTF-7
 * and decode back to itself. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/utf7.h"
#include "core/utf8.h"
#include "store/store.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The rules of store.h, naively. */
static bool fuzz_name_ok(const char *name)
{
	size_t len = strlen(name), levels = 1;
	if (len == 0 || len > STORE_MAILBOX_NAME_MAX || !utf8_valid(name))
		return false;
	if (name[0] == '/' || name[len - 1] == '/' || strstr(name, "//") != NULL)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f || c == '*' || c == '%')
			return false;
		/* C1 controls U+0080..U+009F are 0xc2 0x80..0x9f in UTF-8 */
		if (c == 0xc2 && i + 1 < len && (unsigned char)name[i + 1] <= 0x9f)
			return false;
		levels += c == '/';
	}
	return levels <= STORE_MAILBOX_DEPTH_MAX;
}

static void fuzz_name(const char *name)
{
	int valid = store_mailbox_name_valid(name);
	ASSERT(valid == 0 || valid == 1);
	ASSERT(valid == (fuzz_name_ok(name) ? 1 : 0));
	if (!valid)
		return;
	struct buf enc, dec;
	buf_init(&enc, 1 << 16);
	buf_init(&dec, 1 << 16);
	ASSERT(utf7_from_utf8(name, &enc) == 0);
	ASSERT(utf7_to_utf8(buf_cstr(&enc), &dec) == 0);
	ASSERT(strcmp(buf_cstr(&dec), name) == 0);
	buf_free(&enc);
	buf_free(&dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 2 * STORE_MAILBOX_NAME_MAX)
		return 0;
	char *in = malloc(size + 1);
	memcpy(in, data, size);
	in[size] = '\0';
	fuzz_name(in);
	struct buf utf8;
	buf_init(&utf8, 1 << 16);
	if (utf7_to_utf8(in, &utf8) == 0)
		fuzz_name(buf_cstr(&utf8));
	buf_free(&utf8);
	free(in);
	return 0;
}
