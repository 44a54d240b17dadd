/* RFC 5321 §4.1.2 paths and mailboxes: "<local@domain>" from MAIL/RCPT and bare
 * "local@domain" from the CLI and config, parsed into a struct address with the local part
 * unquoted and the domain lower-cased; plus canonical formatting and a domain-name check.
 * Pure functions: bytes in, results in an arena out. */
#ifndef POSTHORN_MIME_ADDRESS_H
#define POSTHORN_MIME_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"

/* RFC 5321 §4.5.3.1 limits, in octets as they appear on the wire. */
#define ADDRESS_LOCAL_MAX 64
#define ADDRESS_DOMAIN_MAX 255
#define ADDRESS_PATH_MAX 256

struct address {
	const char *local;  /* local part, unquoted (quotes, quoted-pairs removed), in arena */
	const char *domain; /* domain lower-cased (ASCII letters only are lowered), or an address
	                       literal kept with its brackets "[192.0.2.1]" / "[IPv6:...]";
	                       "" for <postmaster> and for the null path */
	bool null;          /* the null path "<>" (local and domain are then "") */
	bool utf8;          /* local part or domain contains non-ASCII octets (needs SMTPUTF8) */
	bool quoted;        /* local part was a quoted-string */
};

/* Parse a path "<...>" of len octets (s need not be NUL-terminated and may hold any byte),
 * optionally with an obsolete source route "<@a,@b:user@d>" (validated, then ignored).
 * allow_null permits "<>". "<postmaster>" (any case, no domain) is accepted with
 * local="postmaster", domain="" (RFC 5321 §4.1.1.3). UTF-8 is accepted in the local part and
 * domain (RFC 6531) when it is valid, and sets utf8; invalid UTF-8 is an error. Limits
 * (RFC 5321 §4.5.3.1): local part 64 octets, domain 255, whole path 256 (brackets included).
 * Returns 0 with *addr_r filled (strings in arena), or -1 with *error_r a static
 * human-readable reason (and *addr_r zeroed). */
int address_parse_path(struct arena *arena, const char *s, size_t len, bool allow_null,
                       struct address *addr_r, const char **error_r)
    __attribute__((warn_unused_result));

/* Parse a bare mailbox "local@domain" (no brackets, no source route, never null) — used by
 * the CLI and config. Same rules as address_parse_path(), including bare "postmaster" (then
 * domain is ""; callers that need a domain check for it). At most 254 octets (a path minus
 * its brackets). Returns 0, or -1 with *error_r a static reason. */
int address_parse(struct arena *arena, const char *s, size_t len, struct address *addr_r,
                  const char **error_r) __attribute__((warn_unused_result));

/* "local@domain" for lookups and logs, in the arena: the local part is re-quoted (with '"'
 * and '\' escaped) when it is not a valid dot-string; "" for the null path; the bare local
 * part ("postmaster") when the domain is "". The result parses back with address_parse()
 * to the same local part and domain. */
char *address_format(struct arena *arena, const struct address *addr);

/* True when s[0..len) is a syntactically valid domain name: dot-separated LDH labels of
 * 1..63 octets without a leading or trailing hyphen, total <= 253 octets, no trailing dot;
 * labels may hold valid non-ASCII UTF-8 (U-labels). Address literals are not domain names.
 * For `domain add`. */
bool address_domain_valid(const char *s, size_t len);

#endif
