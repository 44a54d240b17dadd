/* MIME structure of a whole message held in memory (RFC 2045, RFC 2046, RFC 2231, RFC 5322):
 * one pass builds a tree of parts with byte offsets of every header and body, the Content-*
 * fields IMAP reports, sizes and line counts, and a lookup of IMAP section part numbers
 * (RFC 9051 §6.4.5). Broken MIME never fails the parse; it degrades the way dovecot-imapd
 * degrades it, so that BODYSTRUCTURE answers match Dovecot's. Pure: bytes in, arena out. */
#ifndef POSTHORN_MIME_MIME_H
#define POSTHORN_MIME_MIME_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"

/* A Content-Type or Content-Disposition parameter. RFC 2231 continuations are merged the way
 * Dovecot merges them and are NOT decoded: name*0="a"; name*1="b" gives name="ab", and
 * name*0*=utf-8''%E2; name*1*=%82%AC gives "name*" = "utf-8''%E2%82%AC". Names keep their
 * case; values are unquoted (quoted-pairs removed). */
struct mime_param {
	const char *name;
	const char *value;
};

/* How a part is split, which is not always what its Content-Type says: a multipart without
 * a boundary parameter is MULTIPART with no children; a message/rfc822 or multipart beyond
 * the depth limit is a LEAF (see overflow). */
enum mime_kind {
	MIME_KIND_LEAF,      /* a body that is not split further */
	MIME_KIND_MULTIPART, /* children[] are the body parts between the boundaries */
	MIME_KIND_MESSAGE,   /* message/rfc822: children[0] == *message, the encapsulated message */
};

/* Content-Transfer-Encoding, classified (RFC 2045 §6.1; case-insensitive). */
enum mime_encoding {
	MIME_ENCODING_7BIT, /* also when the field is absent or not a single token */
	MIME_ENCODING_8BIT,
	MIME_ENCODING_BINARY,
	MIME_ENCODING_BASE64,
	MIME_ENCODING_QUOTED_PRINTABLE,
	MIME_ENCODING_OTHER, /* an x-token or unknown value: BINARY fetches must refuse it */
};

struct mime_part {
	/* Offsets into the message buffer. The header runs from the first field through the
	 * empty line that ends it (included); when a header has no empty line (it ends at the
	 * end of the message, or at a boundary line — then without its last line break, which
	 * belongs to the boundary) the body is empty and body_start == header_start +
	 * header_len. The body (BODY[n], BODY[TEXT]) runs to the line break before the next
	 * boundary line (excluded, RFC 2046 §5.1.1), or to the end of the message. For the
	 * root part header_start is 0. */
	size_t header_start, header_len;
	size_t body_start, body_len;
	/* Sizes as IMAP reports them: octets with every bare LF counted as CRLF (identical to
	 * the *_len fields when the message is stored with CRLF line ends), and the number of
	 * LFs in the body (BODYSTRUCTURE line counts of text/ and message/rfc822 parts). */
	size_t header_size, body_size;
	unsigned header_lines, body_lines;

	enum mime_kind kind;
	/* Media type, lower-cased: what Content-Type says when the part honours its Content-*
	 * fields (see mime), else the default text/plain, or message/rfc822 for a child of
	 * multipart/digest (RFC 2046 §5.1.5). A broken Content-Type gives type "" and subtype
	 * "" ("text; charset=x", "text/plain junk"), except a lone token: "text" gives type
	 * "text", subtype "" (Dovecot's reading). Never NULL. */
	const char *type, *subtype;
	/* The same as written in the message (original case), or NULL when defaulted. IMAP
	 * reports these, as Dovecot does. */
	const char *type_raw, *subtype_raw;
	/* Content-Type parameters: plain ones in order, then the RFC 2231 ones merged and
	 * sorted by name; at most 128 parameters and unparsable spots are read (Dovecot) */
	const struct mime_param *params;
	size_t param_count;

	/* Field bodies, unfolded (folding line breaks kept as "\n" followed by the WSP),
	 * leading WSP removed, NUL octets replaced by U+FFFD; NULL when absent. The first
	 * occurrence of each Content-* field counts (Content-Disposition: the first one with
	 * parameters, else the last; Content-Language and -Transfer-Encoding: the first
	 * usable one). */
	const char *id;          /* Content-ID */
	const char *description; /* Content-Description (encoded words not decoded) */
	const char *md5;         /* Content-MD5 */
	const char *location;    /* Content-Location (RFC 2557) */
	const char *encoding;    /* Content-Transfer-Encoding token as written, NULL if absent
	                            or not a single token */
	enum mime_encoding cte;
	const char *disposition; /* Content-Disposition type as written (RFC 2183), or NULL */
	const struct mime_param *disposition_params;
	size_t disposition_param_count;
	const char *const *languages; /* Content-Language tags (RFC 3282) */
	size_t language_count;

	/* The part honours its Content-* fields: it is inside a multipart, or its header has a
	 * MIME-Version or a Content-Type field (Dovecot's rule; RFC 2045 §4 asks for
	 * MIME-Version at the top, but mail without it is common). */
	bool mime;
	/* A limit stopped the parse at this part: its declared multipart or message structure
	 * was not split (depth), or boundaries after it were no longer looked for (part
	 * count), so it runs to the end of the message. */
	bool overflow;
	unsigned depth; /* 0 for the root; +1 per multipart or message/rfc822 level */

	struct mime_part *parent;   /* NULL for the root */
	struct mime_part *children; /* multipart children, or the one encapsulated message */
	size_t child_count;
	struct mime_part *message; /* MIME_KIND_MESSAGE: the encapsulated message's root part
	                              (its header is the encapsulated header); else NULL */
};

struct mime_limits {
	/* Parts deeper than depth_max - 1 are not split: a multipart or message/rfc822 at
	 * depth d is only opened when d + 1 < depth_max (the root is depth 0). At most
	 * MIME_DEPTH_HARD_MAX. */
	unsigned depth_max;
	/* After parts_max parts (the root counts), no more boundaries are recognised: the
	 * part being parsed runs to the end of the message. */
	unsigned parts_max;
	/* Only the first header_max octets of each header section are interpreted (fields
	 * beyond are ignored; the offsets stay exact). 0 = no limit. (depth_max and parts_max
	 * 0 mean the default.) */
	size_t header_max;
};

#define MIME_DEPTH_HARD_MAX 1000
/* The defaults equal dovecot-imapd's (MESSAGE_PARSER_DEFAULT_MAX_NESTED_MIME_PARTS 100,
 * MAX_TOTAL_MIME_PARTS 10000), so that BODYSTRUCTURE answers match Dovecot's even for
 * messages beyond the limits. */
#define MIME_LIMITS_DEFAULT_INIT                                                                   \
	{                                                                                          \
		.depth_max = 100, .parts_max = 10000, .header_max = 1048576                        \
	}

/* Parse the whole message msg[0..len) (in memory or mmapped; it must outlive the tree,
 * which points into it only through offsets, and strings are copied). The tree lives in
 * arena; *root_r is always set. limits NULL means MIME_LIMITS_DEFAULT_INIT. Never fails on
 * broken MIME: an unknown or broken Content-Type keeps what could be read of it, a
 * multipart without its end boundary runs to the end of the message, a part whose header
 * has no empty line has an empty body. Returns 0, or -1 when a limit was reached (the tree
 * is complete and usable; the parts concerned have overflow set). */
int mime_parse(struct arena *arena, const unsigned char *msg, size_t len,
               const struct mime_limits *limits, struct mime_part **root_r)
    __attribute__((warn_unused_result));

/* Section lookup by part number "1", "1.2.3" (RFC 9051 §6.4.5): in a multipart, n picks
 * the nth child; a message (the root, or the message of a message/rfc822 part) whose body
 * is not multipart has only part 1, itself; after a message/rfc822 part, further numbers
 * address the encapsulated message's parts; nothing is below any other part ("1.1" of a
 * text/plain message does not exist, as in Dovecot). "" returns root (the whole message). Returns
 * NULL when the part does not exist or the string is not nz-numbers joined by single dots (the
 * caller strips HEADER/TEXT/MIME first). For BODY[n.HEADER] / BODY[n.TEXT] of a message/rfc822 part
 * use its ->message's header/body; for BODY[n.MIME] the part's own header. */
const struct mime_part *mime_part_find(const struct mime_part *root, const char *section);

/* The value of the first Content-Type parameter called name (case-insensitive), or NULL. */
const char *mime_part_param(const struct mime_part *part, const char *name);

/* ---- header fields ---- */

/* One field of a header section (RFC 5322 §2.2), as offsets into the message. */
struct mime_field {
	size_t start;       /* first octet of the field name */
	size_t len;         /* octets through the line end of the field's last line */
	size_t name_len;    /* name at msg + start, without WSP before the colon; for a line
	                       without a colon the whole line (such a line is not a field for
	                       any caller but is still stepped over) */
	size_t value_start; /* first octet after the colon (start + len if none) */
	bool has_colon;
};

/* Iterates over the fields of a header section. */
struct mime_field_iter {
	const unsigned char *msg;
	size_t pos, end;
};

/* Start iterating over msg[start..end) — usually a part's header_start and header_start +
 * header_len. */
void mime_field_iter_init(struct mime_field_iter *it, const unsigned char *msg, size_t start,
                          size_t end);
/* The next field (a field's continuation lines, starting with SP or HT, belong to it);
 * false at the empty line that ends the section or at end. */
bool mime_field_iter_next(struct mime_field_iter *it, struct mime_field *field_r);
/* True when the field has a colon and its name is name (ASCII case-insensitive; a NUL octet
 * ends the name, as in Dovecot: "Subject<NUL>x:" is a Subject field). */
bool mime_field_is(const unsigned char *msg, const struct mime_field *field, const char *name);
/* The field body in arena, unfolded as Dovecot does: WSP after the colon dropped (all of it,
 * or one octet if the body is only WSP), each folding CRLF (or LF) becomes "\n" and the
 * continuation's leading WSP is kept, the final line end dropped, NUL octets become U+FFFD.
 * *len_r (optional) gets the length. */
char *mime_field_value(struct arena *arena, const unsigned char *msg,
                       const struct mime_field *field, size_t *len_r);
/* The same but NUL octets are kept (use *len_r): for parsers that must see where a NUL
 * ends a token, as the Content-* and address parsers do. */
char *mime_field_value_raw(struct arena *arena, const unsigned char *msg,
                           const struct mime_field *field, size_t *len_r);
/* The field body unfolded as RFC 5322 §2.2.3 says, for matching rather than display:
 * every CR and LF is removed (a fold leaves its WSP), leading and trailing WSP go, NUL
 * octets are kept (use *len_r, which is required). In arena. */
char *mime_field_unfolded(struct arena *arena, const unsigned char *msg,
                          const struct mime_field *field, size_t *len_r);

#endif
