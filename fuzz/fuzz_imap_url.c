/* libFuzzer target for core/imap_url: any input is parsed as an IMAP URL; what is accepted
 * has a non-empty mailbox and a non-zero UID, and a URLAUTH rump that is a prefix of the
 * input ending before the mechanism (or at the end). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/imap_url.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > IMAP_URL_MAX + 16)
		return 0;
	char *text = xmalloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	struct arena *arena = arena_new(4096);
	struct imap_url u;
	const char *error;
	if (imap_url_parse(arena, text, &u, &error) == 0) {
		ASSERT(u.mailbox != NULL && u.mailbox[0] != '\0');
		ASSERT(u.uid != 0);
		ASSERT((u.user == NULL) == (u.owner == NULL));
		ASSERT(u.partial || (u.partial_off == 0 && u.partial_len == 0));
		if (u.access != NULL) {
			ASSERT(u.rump_len > 0 && u.rump_len <= strlen(text));
			ASSERT(text[u.rump_len] == ':' || text[u.rump_len] == '\0');
		}
	} else {
		ASSERT(error != NULL);
	}
	arena_free(&arena);
	free(text);
	return 0;
}
