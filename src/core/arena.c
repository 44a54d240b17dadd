/* Chunked bump allocator (see arena.h). */
#include "core/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "core/banned.h"

struct arena_chunk {
	struct arena_chunk *next;
	size_t size, used;
	alignas(max_align_t) unsigned char data[];
};

struct arena {
	struct arena_chunk *head;
	size_t chunk_size;
};

static struct arena_chunk *arena_chunk_new(size_t size)
{
	struct arena_chunk *c = xmalloc(sizeof(*c) + size);
	c->next = NULL;
	c->size = size;
	c->used = 0;
	return c;
}

struct arena *arena_new(size_t chunk_size)
{
	struct arena *a = xmalloc(sizeof(*a));
	a->chunk_size = chunk_size < 256 ? 256 : chunk_size;
	a->head = arena_chunk_new(a->chunk_size);
	return a;
}

static void arena_free_chunks(struct arena_chunk *c)
{
	while (c != NULL) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
}

void arena_free(struct arena **arena)
{
	if (*arena == NULL)
		return;
	arena_free_chunks((*arena)->head);
	free(*arena);
	*arena = NULL;
}

void arena_reset(struct arena *a)
{
	/* Keep the last chunk in the list: it is the original first-size one only if no big
	 * allocation replaced it, so keep whichever chunk has the standard size. */
	struct arena_chunk *keep = NULL, *c = a->head;
	while (c != NULL) {
		struct arena_chunk *next = c->next;
		if (keep == NULL && c->size == a->chunk_size)
			keep = c;
		else
			free(c);
		c = next;
	}
	if (keep == NULL)
		keep = arena_chunk_new(a->chunk_size);
	keep->next = NULL;
	keep->used = 0;
	a->head = keep;
}

void *arena_alloc(struct arena *a, size_t size)
{
	const size_t align = alignof(max_align_t);
	if (size > SIZE_MAX - align)
		xmalloc(SIZE_MAX); /* aborts */
	size = (size + align - 1) & ~(align - 1);
	if (size == 0)
		size = align;
	struct arena_chunk *c = a->head;
	if (c->size - c->used < size) {
		size_t want = size > a->chunk_size ? size : a->chunk_size;
		c = arena_chunk_new(want);
		c->next = a->head;
		a->head = c;
	}
	void *p = c->data + c->used;
	c->used += size;
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}
