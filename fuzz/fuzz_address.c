/* libFuzzer target for mime/address: parse the input as a path and as a bare mailbox, and
 * check that every accepted address formats to text that parses back to the same local part
 * and domain (both bare and wrapped in <>), and that the limits of RFC 5321 §4.5.3.1 hold. */
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "core/log.h"
#include "mime/address.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_address_check(struct arena *arena, const struct address *a)
{
	struct address b;
	const char *error;
	ASSERT(a->local != NULL && a->domain != NULL);
	ASSERT(strlen(a->local) <= ADDRESS_LOCAL_MAX);
	ASSERT(strlen(a->domain) <= ADDRESS_DOMAIN_MAX);
	if (a->domain[0] != '[') {
		for (const char *p = a->domain; *p != '\0'; p++)
			ASSERT(!(*p >= 'A' && *p <= 'Z'));
	}
	char *s = address_format(arena, a);
	if (a->null) {
		ASSERT(s[0] == '\0');
		return;
	}
	size_t len = strlen(s);
	ASSERT(address_parse(arena, s, len, &b, &error) == 0);
	ASSERT(strcmp(a->local, b.local) == 0);
	ASSERT(strcmp(a->domain, b.domain) == 0);
	ASSERT(a->utf8 == b.utf8);
	ASSERT(strcmp(address_format(arena, &b), s) == 0);
	/* the same text as a path */
	char *path = arena_alloc(arena, len + 3);
	path[0] = '<';
	memcpy(path + 1, s, len);
	path[len + 1] = '>';
	path[len + 2] = '\0';
	ASSERT(address_parse_path(arena, path, len + 2, false, &b, &error) == 0);
	ASSERT(strcmp(a->local, b.local) == 0);
	ASSERT(strcmp(a->domain, b.domain) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena *arena = arena_new(4096);
	const char *s = (const char *)data, *error;
	struct address a;
	if (address_parse_path(arena, s, size, true, &a, &error) == 0)
		fuzz_address_check(arena, &a);
	else
		ASSERT(error != NULL && a.local == NULL);
	if (address_parse(arena, s, size, &a, &error) == 0)
		fuzz_address_check(arena, &a);
	if (address_domain_valid(s, size)) {
		ASSERT(size <= 253);
		ASSERT(memchr(s, '\0', size) == NULL);
	}
	arena_free(&arena);
	return 0;
}
