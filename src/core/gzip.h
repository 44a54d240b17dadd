/* gzip (RFC 1952) of a buffer in memory, with zlib: the report attachments (TLS-RPT, DMARC
 * aggregate reports). */
#ifndef POSTHORN_CORE_GZIP_H
#define POSTHORN_CORE_GZIP_H

#include <stddef.h>

#include "core/buf.h"

/* Append the gzip form of data[0..len) to out (best compression). 0, or -1 when zlib fails
 * or out is full. */
int gzip_compress(const void *data, size_t len, struct buf *out)
    __attribute__((warn_unused_result));

#endif
