/* Authentication-Results (RFC 8601) without I/O: the field we write at the top of a message
 * received on port 25 (one result per method, values quoted where RFC 2045's token does not
 * hold them), and the search of a message's header block for incoming fields that claim our
 * authserv-id (RFC 8601 §5: they are removed before ours is added). */
#ifndef POSTHORN_SMTP_AUTHRES_H
#define POSTHORN_SMTP_AUTHRES_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

#define AUTHRES_PROPS_MAX 4

/* One property: ptype.property=pvalue, e.g. name "smtp.mailfrom". */
struct authres_prop {
	const char *name;
	const char *value;
};

/* One resinfo (RFC 8601 §2.2): method=result [reason="..."] props. */
struct authres_method {
	const char *method; /* "spf", "dkim", "dmarc" */
	const char *result; /* "pass", "fail", ... */
	const char *reason; /* free text (quoted on output), or NULL */
	struct authres_prop props[AUTHRES_PROPS_MAX];
	size_t prop_count;
};

/* Append the whole field to b: "Authentication-Results: ID;" then each method on a folded
 * line of its own, separated by ";", ending with CRLF; no method gives "ID; none" (§2.2).
 * Returns 0, or -1 when b's maximum was reached (b then holds part of the field). */
int authres_format(struct buf *b, const char *authserv_id, const struct authres_method *methods,
                   size_t count) __attribute__((warn_unused_result));

/* Append value as a pvalue (§2.2): as it is when it is an RFC 2045 token or a
 * local-part@domain with a dot-atom local part, else as a quoted-string (backslash before
 * '"' and '\', control octets as '?'). Same returns as buf_append(). */
int authres_append_value(struct buf *b, const char *value) __attribute__((warn_unused_result));

/* Does the field body (after the colon) of an Authentication-Results field name authserv_id
 * (compared without case, after CFWS, token or quoted-string)? */
bool authres_claims(const unsigned char *body, size_t len, const char *authserv_id);

/* A range of octets in a message. */
struct authres_span {
	size_t offset, len;
};

/* The Authentication-Results fields of msg's header block (msg[0..len): the message as the
 * client sent it; CRLF or LF line ends) that claim authserv_id, each with its folded lines
 * and line end, in order. Returns their count and the spans in *spans_r (malloc'd; NULL
 * when none; the caller frees); *header_len_r is the length of the header block (up to and
 * including the empty line, or len when none ends it). */
size_t authres_find_claims(const unsigned char *msg, size_t len, const char *authserv_id,
                           struct authres_span **spans_r, size_t *header_len_r);

#endif
