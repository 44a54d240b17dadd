/* The one base64 and the one quoted-printable decoder for MIME content (RFC 2045 §6.7, §6.8),
 * used by IMAP BINARY fetches (RFC 3516) and by SEARCH; tolerant the way IMAP servers must
 * be: base64 ignores every octet outside its alphabet (§6.8) and ends at the first '='
 * (padding: "the end of the data has been reached"); quoted-printable keeps bad escapes as
 * they are. Incremental (struct mime_decoder: feed any split of the input, the output is the
 * same), with whole-buffer wrappers. Pure: bytes in, bytes out. (core/base64.c is the strict
 * decoder for SASL, where junk must be an error.) */
#ifndef POSTHORN_MIME_MIME_DECODE_H
#define POSTHORN_MIME_MIME_DECODE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "mime/mime.h"

/* Octets a quoted-printable decoder may hold back between feeds (an escape or a run of
 * SP/HT whose fate depends on what follows; a longer run is let through as it is). */
#define MIME_DECODER_HOLD 256

struct mime_decoder {
	enum mime_encoding cte; /* MIME_ENCODING_BASE64 or _QUOTED_PRINTABLE; others copy */
	bool q_word;            /* RFC 2047 "Q" encoding: '_' is SP (§4.2) */
	bool ended;             /* base64: '=' seen, the rest is ignored */
	unsigned bits;          /* base64: bits held in acc */
	unsigned long acc;
	int state; /* quoted-printable: what hold[] is (mime_decode.c) */
	size_t held;
	unsigned char hold[MIME_DECODER_HOLD];
};

/* Room out needs for one mime_decoder_feed() of len octets, or for mime_decoder_finish()
 * with len 0. */
#define MIME_DECODER_OUT_MAX(len) ((len) + MIME_DECODER_HOLD + 4)

/* Start decoding cte (7bit, 8bit and binary are copied as they are; MIME_ENCODING_OTHER too,
 * the caller refuses it). */
void mime_decoder_init(struct mime_decoder *d, enum mime_encoding cte);
/* Decode the next len octets of input into out (MIME_DECODER_OUT_MAX(len) octets of room);
 * returns the number written. */
size_t mime_decoder_feed(struct mime_decoder *d, const unsigned char *in, size_t len,
                         unsigned char *out);
/* The input ended: write what was held back (MIME_DECODER_OUT_MAX(0) octets of room);
 * returns the number written. The decoder may be initialised again. */
size_t mime_decoder_finish(struct mime_decoder *d, unsigned char *out);

/* Room a decoder needs in out for len input octets: both decoders never write more. */
#define MIME_DECODE_MAX_OUT(len) ((len) / 4 * 3 + 3 > (len) ? (len) / 4 * 3 + 3 : (len))

/* Decode base64 in[0..len) into out (at least MIME_DECODE_MAX_OUT(len) octets). Octets
 * outside the base64 alphabet are skipped (RFC 2045 §6.8); decoding stops at the first '='.
 * A final group of 2 or 3 characters gives 1 or 2 octets; a lone one is dropped.
 * Returns the number of octets written. */
size_t mime_decode_base64(const unsigned char *in, size_t len, unsigned char *out);

/* RFC 2047 "Q" encoded-word text: as quoted-printable, and '_' is SP. out: len octets. */
size_t mime_decode_qword(const unsigned char *in, size_t len, unsigned char *out);

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

/* ---- charsets and header words (RFC 2047, RFC 2231 §5) ---- */

/* Text s[0..len) in charset[0..charset_len) (a name, not NUL-terminated, case-insensitive;
 * an RFC 2231 §5 language suffix "*lang" is ignored) as UTF-8. UTF-8, US-ASCII, an empty
 * name and charsets iconv(3) does not know are taken as they are (s itself is returned, not
 * NUL-terminated); ISO-8859-1 is mapped here, others go through iconv(3), where octets it
 * cannot convert become U+FFFD (then the result is a NUL-terminated copy in arena).
 * *len_r gets the length. Never fails. */
const char *mime_decode_charset(struct arena *arena, const char *charset, size_t charset_len,
                                const unsigned char *s, size_t len, size_t *len_r);

/* The encoded words "=?charset?B?text?=" / "=?charset?Q?text?=" (RFC 2047 §2, §4; charset
 * may carry "*lang", RFC 2231 §5) of an unfolded header field body v[0..len), decoded to
 * UTF-8 through mime_decode_charset(). Linear white space between two adjacent encoded
 * words goes (RFC 2047 §6.2), other text is kept as written. What is not a well-formed
 * word (an unknown encoding, white space inside, no "?=") stays as it is. Returns v itself
 * when it holds no "=?", else a NUL-terminated copy in arena; *len_r gets the length.
 * Linear in len. */
const char *mime_decode_words(struct arena *arena, const char *v, size_t len, size_t *len_r);

#endif
