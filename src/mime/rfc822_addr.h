/* RFC 5322 lexical tokens (CFWS, atoms, quoted strings, MIME tokens) and address lists
 * (RFC 5322 §3.4 mailbox / group / address-list) as IMAP's ENVELOPE needs them. The parser
 * never fails: broken input degrades the way dovecot-imapd degrades it (placeholders
 * "MISSING_MAILBOX", "MISSING_DOMAIN", "SYNTAX_ERROR", "INVALID_ROUTE"), so that ENVELOPE
 * answers match Dovecot's. Encoded words (RFC 2047) are not decoded. */
#ifndef POSTHORN_MIME_RFC822_ADDR_H
#define POSTHORN_MIME_RFC822_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/buf.h"

/* A cursor over bytes of a field body (not NUL-terminated; NUL octets may occur: they end
 * atoms and tokens, and become U+FFFD inside quoted strings, comments and domain literals).
 * comment, when not NULL, receives the text of the last comment skipped (quoted-pairs
 * unescaped, line breaks removed, nested parentheses kept). */
struct rfc822_addr_cursor {
	const unsigned char *p, *end;
	struct buf *comment;
};

/* RFC 5322 atext, with every octet >= 0x80 counted as atext (RFC 6532). */
bool rfc822_addr_is_atext(unsigned char c);
/* RFC 2045 token character: atext except "/", "=", "?", plus "." (8-bit octets count too). */
bool rfc822_addr_is_token_char(unsigned char c);

/* Appends to out, which the caller sized with a large maximum: the appends abort (log_panic)
 * if that maximum is ever reached, which the callers rule out by construction. */

/* Skip whitespace (SP, HT, CR, LF) and comments. Returns 1 when more input follows, 0 at the
 * end, -1 on an unterminated comment (the cursor is then at the end). */
int rfc822_addr_skip_cfws(struct rfc822_addr_cursor *c);
/* A run of token characters (possibly empty), then CFWS. Returns as skip_cfws. */
int rfc822_addr_mime_token(struct rfc822_addr_cursor *c, struct buf *out);
/* An atom (at least one atext octet, else -1 and nothing consumed), then CFWS. */
int rfc822_addr_atom(struct rfc822_addr_cursor *c, struct buf *out);
/* dot-atom, also accepting CFWS around the dots (RFC 822). -1 when it does not start with
 * atext, has an empty atom ("a..b") or ends with a dot; else as skip_cfws. */
int rfc822_addr_dot_atom(struct rfc822_addr_cursor *c, struct buf *out);
/* A quoted string at the cursor (which must be at '"'): appends its content with quoted
 * pairs unescaped (a backslash before CR, LF or NUL stays as text), folding line breaks
 * removed and NUL octets replaced by U+FFFD, then skips CFWS. -1 when unterminated. */
int rfc822_addr_quoted_string(struct rfc822_addr_cursor *c, struct buf *out);
/* phrase / obs-phrase: words (atoms with dots, quoted strings) joined by one space.
 * Returns 0 at the end of input, -1 if it starts with ".", else as skip_cfws. */
int rfc822_addr_phrase(struct rfc822_addr_cursor *c, struct buf *out);
/* "@" domain (the cursor must be at '@'): a dot-atom or a [domain-literal] kept with its
 * brackets. -1 when missing or unterminated. */
int rfc822_addr_domain(struct rfc822_addr_cursor *c, struct buf *out);

/* One element of an address list, in order. A group is a start marker (name, route and
 * domain NULL, mailbox = the group's display name) followed by its members and an end marker
 * (all four NULL) — exactly IMAP's ENVELOPE encoding (RFC 9051 §7.5.2). For a mailbox,
 * mailbox and domain are never NULL (placeholders fill what is missing). */
struct rfc822_address {
	const char *name;    /* display name (or the comment of "addr (Name)"), NULL if none */
	const char *route;   /* obsolete source route "@a,@b", NULL if none */
	const char *mailbox; /* local part, unquoted */
	const char *domain;  /* domain, or a [literal] */
	bool invalid;        /* the syntax was broken and parts were guessed */
	struct rfc822_address *next;
};

/* Parse an address-list field body of len octets (need not be NUL-terminated; may hold NUL
 * octets, see the cursor). Returns the list (strings in arena, never holding NUL), or NULL
 * when the field holds no address. Never fails. */
struct rfc822_address *rfc822_addr_parse_list(struct arena *arena, const unsigned char *s,
                                              size_t len);

#endif
