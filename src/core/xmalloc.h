/* Allocation that never fails to the caller: on exhaustion the process logs and aborts
 * (a mail server that limps on after a failed malloc corrupts state it cannot see). */
#ifndef POSTHORN_CORE_XMALLOC_H
#define POSTHORN_CORE_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
/* Zeroed array of n elements of size bytes; checks n*size for overflow. */
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
/* malloc'd copy of a NUL-terminated string. */
char *xstrdup(const char *s);
/* malloc'd copy of n bytes plus a terminating NUL. */
char *xstrndup(const char *s, size_t n);
/* Wipe n bytes in a way the compiler cannot remove (for secrets). */
void xmemzero(void *p, size_t n);

#endif
