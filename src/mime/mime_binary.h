/* Storing a message that an IMAP client APPENDed as a literal8 (RFC 3516 §4.4): every leaf
 * part with "Content-Transfer-Encoding: binary" is rewritten as base64 (its CTE field
 * replaced, its body encoded in lines of 76 characters), so that BODY[] never carries NUL
 * or bare line ends inside a {n} literal, while BINARY[] still decodes the original octets.
 * Dovecot does the same at APPEND. Pure: bytes in, bytes out through a callback. */
#ifndef POSTHORN_MIME_MIME_BINARY_H
#define POSTHORN_MIME_MIME_BINARY_H

#include <stddef.h>

/* Receives the converted message in pieces, in order. */
typedef void mime_binary_write_fn(void *ctx, const void *data, size_t len);

/* Number of leaf parts of msg[0..len) that mime_binary_convert() would rewrite. */
size_t mime_binary_count(const unsigned char *msg, size_t len);
/* Write msg with its binary leaf parts as base64 through write (everything else byte for
 * byte). Returns the number of parts converted (0: the message went through unchanged). */
size_t mime_binary_convert(const unsigned char *msg, size_t len, mime_binary_write_fn *write,
                           void *ctx);

#endif
