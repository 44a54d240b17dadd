/* PREVIEW (RFC 8970): a short plain-text extract of a message for a message list, computed
 * once at delivery or APPEND and kept with the message. Pure: bytes in, text out. */
#ifndef POSTHORN_MIME_MIME_PREVIEW_H
#define POSTHORN_MIME_MIME_PREVIEW_H

#include <stddef.h>

#include "core/arena.h"
#include "mime/mime.h"

/* At most this many characters (RFC 8970 §3.1: a preview is no longer than 256
 * characters; not octets). */
#define MIME_PREVIEW_CHARS 256
/* Octets of a part's body looked at (raw, before decoding): a preview needs the start. */
#define MIME_PREVIEW_BODY_MAX (256 * 1024)

/* The preview of the message msg[0..len) whose MIME tree is root (mime_parse()): the text
 * of the first text/plain part in message order that is not an attachment, else of the
 * first such text/html part with its tags, comments, <script> and <style> contents removed
 * and its character references decoded; transfer encoding and charset decoded to UTF-8;
 * every run of white space (and of control characters) one space, none at either end;
 * invalid UTF-8 becomes U+FFFD; cut at MIME_PREVIEW_CHARS characters. Parts inside an
 * attached message (message/rfc822) are not used. In arena, NUL-terminated; "" when the
 * message has no such text. Never fails; linear in the octets looked at. */
const char *mime_preview(struct arena *arena, const unsigned char *msg, size_t len,
                         const struct mime_part *root);

/* The same for text s[0..len) that is already UTF-8 (html: strip as for text/html). */
const char *mime_preview_text(struct arena *arena, const char *s, size_t len, int html);

#endif
