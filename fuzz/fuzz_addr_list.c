/* libFuzzer target for RFC 5322 address lists (mime/rfc822_addr, the From/To/Cc/Bcc/
 * Reply-To/Sender parser behind ENVELOPE): any field body gives a list where group starts
 * and ends balance (a group end only after its start), every address has a mailbox and a
 * domain without NUL, and the list is bounded by the input. The same input parsed again
 * (it is pure) gives the same list. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/log.h"
#include "mime/rfc822_addr.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool fuzz_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *s = malloc(size ? size : 1); /* exact size: ASan sees overreads */
	memcpy(s, data, size);
	struct arena *arena = arena_new(4096);
	struct rfc822_address *list = rfc822_addr_parse_list(arena, s, size);
	struct rfc822_address *again = rfc822_addr_parse_list(arena, s, size);
	int depth = 0;
	size_t count = 0;
	for (struct rfc822_address *a = list; a != NULL; a = a->next, again = again->next) {
		ASSERT(again != NULL);
		ASSERT(fuzz_same(a->name, again->name) && fuzz_same(a->route, again->route) &&
		       fuzz_same(a->mailbox, again->mailbox) &&
		       fuzz_same(a->domain, again->domain));
		count++;
		if (a->domain == NULL) {
			/* group start (mailbox = the group's name) or end (all four NULL) */
			if (a->mailbox != NULL) {
				depth++;
			} else {
				ASSERT(a->name == NULL && a->route == NULL);
				ASSERT(depth > 0);
				depth--;
			}
			continue;
		}
		ASSERT(a->mailbox != NULL);
		ASSERT(strlen(a->mailbox) <= 3 * size + 64 && strlen(a->domain) <= 3 * size + 64);
	}
	ASSERT(again == NULL);
	ASSERT(depth == 0);
	ASSERT(count <= size + 1);
	arena_free(&arena);
	free(s);
	return 0;
}
