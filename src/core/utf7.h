/* Modified UTF-7 for IMAP mailbox names (RFC 3501 §5.1.3), used with IMAP4rev1 clients that
 * did not ENABLE UTF8=ACCEPT or IMAP4rev2: "&" shifts to modified base64 of UTF-16BE, "-"
 * shifts back, "&-" is a literal "&". */
#ifndef POSTHORN_CORE_UTF7_H
#define POSTHORN_CORE_UTF7_H

#include "core/buf.h"

/* Append the modified UTF-7 form of the UTF-8 text utf8 to out. 0 ok, -1 when utf8 is not
 * valid UTF-8 (or out's maximum would be exceeded). */
int utf7_from_utf8(const char *utf8, struct buf *out) __attribute__((warn_unused_result));
/* Append the UTF-8 form of the modified UTF-7 text utf7 to out. 0 ok, -1 when utf7 is not in
 * canonical modified UTF-7 (bad base64, unpaired surrogates, an encoded printable ASCII
 * character, "&" sequences not closed, a null shift "-&" between two sequences, non-ASCII
 * octets ...): whatever decodes encodes back byte-exactly with utf7_from_utf8(). */
int utf7_to_utf8(const char *utf7, struct buf *out) __attribute__((warn_unused_result));

#endif
