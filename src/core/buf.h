/* Length-carrying text/byte buffer with a hard maximum. All text that Posthorn builds is
 * built here; the data is always NUL-terminated after len bytes so it can be used as a C
 * string when it holds text. */
#ifndef POSTHORN_CORE_BUF_H
#define POSTHORN_CORE_BUF_H

#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	char *data; /* owned; NULL until the first append */
	size_t len;
	size_t cap;
	size_t max; /* hard limit on len */
};

/* Start an empty buffer that will never hold more than max bytes. */
void buf_init(struct buf *b, size_t max);
/* Release the storage; the buffer can be reused after buf_init(). Accepts an unused buffer. */
void buf_free(struct buf *b);
/* Forget the contents but keep the storage. */
void buf_reset(struct buf *b);
/* Append n bytes. Returns 0, or -1 (nothing appended) when max would be exceeded. */
int buf_append(struct buf *b, const void *p, size_t n) __attribute__((warn_unused_result));
/* Append a NUL-terminated string. Same returns as buf_append(). */
int buf_puts(struct buf *b, const char *s) __attribute__((warn_unused_result));
/* Append v in decimal (what "%llu" writes, without printf's cost). Same returns. */
int buf_put_u64(struct buf *b, uint64_t v) __attribute__((warn_unused_result));
/* Append formatted text. Returns 0, or -1 (buffer unchanged) when max would be exceeded. */
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), warn_unused_result));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0), warn_unused_result));
/* The contents as a NUL-terminated string ("" when empty). Valid until the next change. */
const char *buf_cstr(const struct buf *b);
/* Drop the first n bytes. */
void buf_consume(struct buf *b, size_t n);

#endif
