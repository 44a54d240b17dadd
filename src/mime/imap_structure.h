/* IMAP FETCH ENVELOPE, BODY and BODYSTRUCTURE strings (RFC 9051 §7.5.2, also valid for
 * RFC 3501) built from a parsed MIME tree (mime.h). Wherever the RFC leaves a choice, the
 * output is dovecot-imapd's (2.3), so that the differential test compares equal:
 *  - strings are quoted ("...", with \" and \\ escaped) unless they hold CR, LF, an octet
 *    >= 0x80 or more than 4 quoted-specials: then a literal "{n}\r\n" + octets. Literals are
 *    embedded in the returned text, so the caller sends it as is (as literal octets, never
 *    re-quoted). UTF-8 is sent as literals in IMAP4rev2 sessions too (allowed by §4.3).
 *  - Subject and address display names are "cleaned for humans": every run of SP/HT/CR/LF
 *    becomes one SP, leading and trailing ones go; if anything had to change, or the text
 *    has '"', '\' or 8-bit octets, it is sent as a literal. Other values are sent as they
 *    are in the header (Date, Message-ID and In-Reply-To keep their folding "\n").
 *  - Content-ID, -Description, -MD5, -Location lose their line breaks (a line break not
 *    followed by WSP becomes one SP).
 *  - Media type, subtype, parameter names and values, disposition and encoding keep the
 *    case of the message; when there is no Content-Type the part is "text" "plain"
 *    (or "message" "rfc822" in a multipart/digest); a text part without a charset parameter
 *    gets ("charset" "us-ascii") appended (RFC 2045 §5.2); a missing encoding is "7bit".
 *  - message/rfc822 parts are always written "message" "rfc822" (lower case).
 *  - a multipart with no parts (no boundary, or none found) is given one empty text/plain
 *    part, since the grammar needs one (1*body).
 *  - sizes are in octets with bare LF counted as CRLF; line counts are LFs.
 *  - encoded words (RFC 2047) and RFC 2231 parameter values are not decoded.
 * Deliberate difference from Dovecot: a message/rfc822 part that was not opened because of
 * the depth or part limit is written "application" "octet-stream" (Dovecot writes
 * "message" "rfc822" without the envelope and body that RFC 9051's body-type-msg requires,
 * which breaks client parsers). */
#ifndef POSTHORN_MIME_IMAP_STRUCTURE_H
#define POSTHORN_MIME_IMAP_STRUCTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/buf.h"
#include "mime/mime.h"

/* The ENVELOPE of the header of part_with_header (the root part for a message; ->message of
 * a message/rfc822 part for an encapsulated one), parenthesised: "(date subject from sender
 * reply-to to cc bcc in-reply-to message-id)". Sender and Reply-To default to From. When a
 * field occurs more than once the last one counts, except that the addresses of repeated
 * address fields add up (as in Dovecot). msg/len is the buffer
 * the tree was parsed from. Result in arena; never NULL. */
#define IMAP_STRUCTURE_ADDRESSES_MAX 1000
/* (IMAP_STRUCTURE_ADDRESSES_MAX: at most this many addresses, group markers included, in
 * each address list of an ENVELOPE; further ones are left out. Work is linear in the
 * header's size whatever the number of address fields.) */
char *imap_envelope(struct arena *arena, const unsigned char *msg, size_t len,
                    const struct mime_part *part_with_header);

/* The body structure of root, parenthesised: what follows "BODYSTRUCTURE " (extended true:
 * with MD5, disposition, language and location extension data on every part and the
 * parameters of multiparts) or "BODY " (extended false: the non-extensible form). root is
 * usually the message root; any part of the tree works (its own subtree is written).
 * Result in arena; never NULL. */
char *imap_bodystructure(struct arena *arena, const unsigned char *msg, size_t len,
                         const struct mime_part *root, bool extended);

/* Append s as an IMAP string (quoted or literal, by the rules above) to out. For callers
 * that build related responses (e.g. BODY[HEADER.FIELDS] names) with the same choices. */
void imap_structure_append_string(struct buf *out, const char *s);

/* Compute ENVELOPE, BODY, BODYSTRUCTURE and the PREVIEW text (mime_preview.h) of the
 * message stored in the file at path, for the store's cache (store_summarizer_fn; ctx
 * unused). 0 with malloc'd strings, -1 when the file cannot be read. Thread-safe. */
int imap_structure_summarize(void *ctx, const char *path, char **envelope_r, char **body_r,
                             char **bodystructure_r, char **preview_r);

#endif
