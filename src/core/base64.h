/* Base64 (RFC 4648 §4, the standard alphabet with '=' padding) for SASL exchanges and
 * anything else that carries bytes as text. The decoder is strict: it accepts only the
 * canonical encoding, so that one byte string has exactly one accepted text form. */
#ifndef POSTHORN_CORE_BASE64_H
#define POSTHORN_CORE_BASE64_H

#include <stddef.h>
#include <sys/types.h>

/* Length of the encoding of len bytes, without the NUL (4 * ceil(len / 3)). */
size_t base64_encoded_len(size_t len);
/* Upper bound of the decoded length of len characters of base64 text (len / 4 * 3). */
size_t base64_decoded_max(size_t len);

/* Encode len bytes of data. Returns a malloc'd NUL-terminated string ("" for len 0); never
 * NULL (allocation aborts on failure). */
char *base64_encode_dup(const unsigned char *data, size_t len);

/* Strict RFC 4648 decode of len characters of in (in need not be NUL-terminated):
 * no whitespace or line breaks, len a multiple of 4, '=' padding only in the last quantum
 * and exactly as much as needed, nothing after the padding, and the unused bits of the last
 * character zero (RFC 4648 §3.5). Writes the bytes to out (capacity out_max; at most
 * base64_decoded_max(len) bytes are needed) and returns their count (>= 0), or -1 on bad
 * input or when out_max is too small. out is not NUL-terminated; on -1 its contents are
 * unspecified (it may hold part of the decoded data, so wipe it if that is a secret). */
ssize_t base64_decode(const char *in, size_t len, unsigned char *out, size_t out_max)
    __attribute__((warn_unused_result));

#endif
