/* UTF-8 validity (RFC 3629), for text that must be valid UTF-8 where it goes: JSON output,
 * PostgreSQL text columns. */
#ifndef POSTHORN_CORE_UTF8_H
#define POSTHORN_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (RFC 3629 §4: no overlongs, no surrogates, at
 * most U+10FFFF), or 0 when it is not one. s is NUL-terminated (a NUL ends any sequence:
 * the NUL itself is a valid sequence of length 1). */
size_t utf8_seq_len(const unsigned char *s);
/* Whether the NUL-terminated s is valid UTF-8 throughout. */
bool utf8_valid(const char *s);

#endif
