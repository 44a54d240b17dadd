/* Decoders for MIME body content-transfer-encodings (RFC 2045 §6.7, §6.8), tolerant the way
 * IMAP servers must be when answering BINARY fetches (RFC 3516): base64 skips whitespace and
 * stops at padding or at the first invalid octet; quoted-printable keeps bad escapes as they
 * are. Pure: bytes in, bytes out. */
#ifndef POSTHORN_MIME_MIME_DECODE_H
#define POSTHORN_MIME_MIME_DECODE_H

#include <stddef.h>

#include "core/arena.h"
#include "mime/mime.h"

/* Room a decoder needs in out for len input octets: both decoders never write more. */
#define MIME_DECODE_MAX_OUT(len) ((len) / 4 * 3 + 3 > (len) ? (len) / 4 * 3 + 3 : (len))

/* Decode base64 in[0..len) into out (at least MIME_DECODE_MAX_OUT(len) octets). SP, HT, CR
 * and LF are skipped; decoding stops at the first '=' or any other octet outside the base64
 * alphabet. A final group of 2 or 3 characters gives 1 or 2 octets; a lone one is dropped.
 * Returns the number of octets written. */
size_t mime_decode_base64(const unsigned char *in, size_t len, unsigned char *out);

/* Decode quoted-printable in[0..len) into out (at least len octets): "=XX" (hex digits in
 * either case) becomes the octet, "=" followed by optional SP/HT and a line break (CRLF or LF)
 * or by the end of input after SP/HT is a soft line break and vanishes, SP/HT before a line
 * break are removed (RFC 2045 §6.7 rule 3); any other "=" is kept as it is. Line breaks are
 * copied unchanged. Returns the number of octets written. */
size_t mime_decode_qp(const unsigned char *in, size_t len, unsigned char *out);

/* The body in[0..len) decoded according to cte: base64 and quoted-printable are decoded,
 * 7bit, 8bit and binary returned as they are (*out_r == in). Decoded data lives in arena.
 * Returns 0, or -1 for MIME_ENCODING_OTHER (an encoding that cannot be decoded; RFC 3516
 * UNKNOWN-CTE), then *out_r is NULL and *len_r 0. */
int mime_decode_body(struct arena *arena, enum mime_encoding cte, const unsigned char *in,
                     size_t len, const unsigned char **out_r, size_t *len_r)
    __attribute__((warn_unused_result));

#endif
