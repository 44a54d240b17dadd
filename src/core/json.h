/* A small JSON writer (RFC 8259) over buf: enough for the reports Posthorn generates
 * (TLS-RPT, RFC 8460). The caller writes the punctuation; this module gets strings and
 * numbers right. A writer only: the JSON Posthorn reads (rspamd's replies) is parsed with
 * jansson, in smtp/rspamd_proto.c alone (core/ stays libc only). */
#ifndef POSTHORN_CORE_JSON_H
#define POSTHORN_CORE_JSON_H

#include <stdint.h>

#include "core/buf.h"

/* Append s as a JSON string with its quotes: '"', '\\' and control characters escaped
 * (RFC 8259 §7), octets that are not valid UTF-8 replaced by U+FFFD so the output is always
 * valid JSON text. NULL is written as "". 0, or -1 when b is full (b then holds a
 * partial value: discard it). */
int json_string(struct buf *b, const char *s) __attribute__((warn_unused_result));
/* Append "key": with key as json_string(). 0 or -1. */
int json_key(struct buf *b, const char *key) __attribute__((warn_unused_result));
/* Append an unsigned integer. 0 or -1. */
int json_uint(struct buf *b, uint64_t n) __attribute__((warn_unused_result));

#endif
