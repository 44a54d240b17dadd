/* Arena allocator: many small allocations freed together. A session owns one arena freed
 * with the session; each command uses a scratch arena reset after its reply. Allocation
 * never fails to the caller (see xmalloc.h). */
#ifndef POSTHORN_CORE_ARENA_H
#define POSTHORN_CORE_ARENA_H

#include <stddef.h>

struct arena;

struct arena *arena_new(size_t chunk_size);
/* Free every allocation and the arena; sets *arena to NULL; accepts NULL. */
void arena_free(struct arena **arena);
/* Free every allocation but keep the first chunk for reuse. */
void arena_reset(struct arena *arena);
/* size bytes aligned for any type, valid until reset/free. */
void *arena_alloc(struct arena *arena, size_t size);
/* NUL-terminated copy of n bytes / of a string, in the arena. */
char *arena_strndup(struct arena *arena, const char *s, size_t n);
char *arena_strdup(struct arena *arena, const char *s);

#endif
