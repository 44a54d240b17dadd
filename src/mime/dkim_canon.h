/* DKIM canonicalisation (RFC 6376 §3.4): "simple" and "relaxed" for header fields and for the
 * body, the body fed in chunks of any size; and the selection of header fields for a
 * signature's h= list (RFC 6376 §5.4.2: several instances of a name are taken from the
 * bottom up; a name with no instance left stands for the null string). Pure: bytes in,
 * canonical bytes out; no I/O, no crypto. */
#ifndef POSTHORN_MIME_DKIM_CANON_H
#define POSTHORN_MIME_DKIM_CANON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/crlf.h"

enum dkim_canon { DKIM_CANON_SIMPLE, DKIM_CANON_RELAXED };

/* ---- header fields ---- */

/* Append the canonical form of one header field to out. field[0..len) is the field from its
 * name through the line end of its last line (the final CRLF may be absent).
 * simple (§3.4.1): the octets unchanged.
 * relaxed (§3.4.2): name lower-cased (ASCII), WSP before and after the colon removed, every
 * CR and LF octet removed (unfolding), each run of SP/HT made one SP, WSP at the end removed,
 * then CRLF. A field without a colon is all name.
 * with_crlf false leaves the final CRLF out (the DKIM-Signature field itself, §3.7).
 * Returns 0, or -1 when out's maximum would be exceeded (out then holds a prefix). */
int dkim_canon_header(enum dkim_canon canon, const unsigned char *field, size_t len, bool with_crlf,
                      struct buf *out) __attribute__((warn_unused_result));

/* One header field of a message, as offsets into it. */
struct dkim_field {
	size_t start;    /* first octet of the name */
	size_t len;      /* through the line end of the field's last line */
	size_t name_len; /* the name, without WSP before the colon; 0 for a line with no colon
	                    (never selected) */
};

/* Split the header section of msg[0..len) (CRLF line ends expected; a bare LF also ends a
 * line) into fields: a line starting with SP or HT continues the field before it. The
 * section ends at the first empty line or at the end of msg. At most max_fields fields are
 * returned (the rest of the section is still stepped over). Returns the field count;
 * *fields_r is an array in arena (NULL when 0); *body_r gets the offset of the body: after
 * the empty line's line end, or len when there is none. */
size_t dkim_canon_fields(struct arena *arena, const unsigned char *msg, size_t len,
                         size_t max_fields, struct dkim_field **fields_r, size_t *body_r);

/* msg[0..len) with every bare CR and bare LF made CRLF (what the SMTP client sent, RFC 5321
 * §2.3.8), as verifiers hash it: msg itself when it has none, else a malloc'd copy also
 * stored in *copy_r (the caller frees it; NULL when no copy was made). *len_r gets the
 * length. */
const unsigned char *dkim_canon_message(const unsigned char *msg, size_t len,
                                        unsigned char **copy_r, size_t *len_r);

/* True when field f of msg is named name (ASCII case-insensitive). */
bool dkim_canon_field_is(const unsigned char *msg, const struct dkim_field *f, const char *name);

#define DKIM_CANON_SELECT_NAMES_MAX 64

/* Select fields for an h= list of n names (RFC 6376 §5.4.2): picked_r[i] gets the index into
 * fields of the field that the i-th name stands for — the last instance of that name not yet
 * taken by an earlier equal name — or SIZE_MAX when none is left (the null string). Linear
 * in nfields times the number of distinct names; names after the first
 * DKIM_CANON_SELECT_NAMES_MAX distinct ones select nothing (SIZE_MAX). */
void dkim_canon_select(const unsigned char *msg, const struct dkim_field *fields, size_t nfields,
                       const char *const *names, size_t n, size_t *picked_r);

/* ---- body ---- */

/* Receives canonical body octets. */
typedef void dkim_canon_out_fn(void *ctx, const unsigned char *data, size_t len);

/* Incremental body canonicaliser. Line ends are first made CRLF as core/crlf does (a bare
 * LF and a bare CR each become CRLF: what an SMTP client must send, RFC 5321 §2.3.8), then:
 * simple (§3.4.3): empty lines at the end removed; a body that is empty then becomes one
 * CRLF; a last line without line end gets CRLF.
 * relaxed (§3.4.4): also WSP at the end of each line removed and every other run of WSP made
 * one SP; empty lines at the end removed; an empty body stays empty; a last line without
 * line end gets CRLF.
 * Any split of the body into chunks gives the same output. Empty lines are held back as a
 * count (no memory grows with them). The l= tag is not supported (the whole body counts). */
struct dkim_body_canon {
	enum dkim_canon canon;
	dkim_canon_out_fn *out;
	void *ctx;
	struct crlf crlf;
	uint64_t empty_lines; /* empty lines seen and not written yet */
	uint64_t written;     /* octets given to out */
	bool wsp;             /* relaxed: WSP seen in the line and not written yet */
	bool content;         /* the current line has written octets */
	size_t staged;
	unsigned char stage[4096];
};

void dkim_body_canon_init(struct dkim_body_canon *bc, enum dkim_canon canon, dkim_canon_out_fn *out,
                          void *ctx);
/* Feed the next len octets of the body (any octets). */
void dkim_body_canon_update(struct dkim_body_canon *bc, const unsigned char *data, size_t len);
/* End of the body: write what the rules above add, and flush. */
void dkim_body_canon_final(struct dkim_body_canon *bc);

#endif
