/* Parser for one SMTP command line (RFC 5321 §4.1, with the MAIL/BDAT/AUTH extensions of
 * RFC 1870 SIZE, 6152 8BITMIME, 6531 SMTPUTF8, 3030 CHUNKING, 4954 AUTH, 3207 STARTTLS).
 * Pure: it takes the line's bytes and returns a struct smtp_command or the exact SMTP reply
 * to send; the server decides what a valid command means in its current state. */
#ifndef POSTHORN_SMTP_SMTP_PARSER_H
#define POSTHORN_SMTP_SMTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "mime/address.h"

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_HELP,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_BURL, /* RFC 4468 */
	SMTP_VERB_COUNT
};

enum smtp_body { SMTP_BODY_UNSPEC = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };

/* RFC 3461 DSN: MAIL RET= (§4.3) and RCPT NOTIFY= (§4.1) bits. */
enum smtp_ret { SMTP_RET_UNSPEC = 0, SMTP_RET_FULL, SMTP_RET_HDRS };
#define SMTP_NOTIFY_SUCCESS (1u << 0)
#define SMTP_NOTIFY_FAILURE (1u << 1)
#define SMTP_NOTIFY_DELAY (1u << 2)
#define SMTP_NOTIFY_NEVER (1u << 3)
/* Longest ENVID (RFC 3461 §4.4) and ORCPT (§4.2) values, in octets as sent (xtext). */
#define SMTP_ENVID_MAX 100
#define SMTP_ORCPT_MAX 500

struct smtp_command {
	enum smtp_verb verb;
	const char *arg;     /* text after the verb and following spaces, trailing
	                        spaces removed, "" if none (arena) */
	struct address path; /* MAIL/RCPT */
	uint64_t size;       /* MAIL SIZE=; valid when size_set */
	bool size_set;
	enum smtp_body body;          /* MAIL BODY= */
	bool smtputf8;                /* MAIL SMTPUTF8 */
	bool requiretls;              /* MAIL REQUIRETLS (RFC 8689) */
	const char *auth_param;       /* MAIL AUTH= value, xtext decoded ("<>" or a mailbox),
	                                 or NULL */
	enum smtp_ret ret;            /* MAIL RET= */
	const char *envid;            /* MAIL ENVID= as sent (valid xtext), or NULL */
	unsigned notify;              /* RCPT NOTIFY=: SMTP_NOTIFY_* bits, 0 when absent */
	const char *orcpt;            /* RCPT ORCPT= as sent, "addr-type;xtext" (valid), or
	                                 NULL; passed on as is to the next hop and the DSN */
	uint64_t chunk_size;          /* BDAT */
	bool last;                    /* BDAT ... LAST, BURL ... LAST */
	const char *url;              /* BURL: the URL as sent (arena) */
	const char *mechanism;        /* AUTH: upper-cased mechanism name */
	const char *initial_response; /* AUTH: the initial response as sent ("=" = empty), or
	                                 NULL; not decoded or checked (the SASL layer does) */
};

/* Parse one command line of len octets (without its CRLF; any bytes) into *cmd_r (zeroed
 * first; strings in arena). The DSN parameters (RFC 3461: RET, ENVID, NOTIFY, ORCPT) are
 * parsed whenever present; a server that does not offer DSN refuses them itself (555).
 * Verbs are case-insensitive and must be followed by SP or the end of the line; trailing
 * SP/HT on the line are ignored. Returns 0, or -1 with *error_r set to a complete static SMTP
 * reply line without CRLF carrying an RFC 3463 enhanced code:
 *   500 5.5.2  unknown verb, empty line, NUL, CR or LF in the line
 *   501 5.5.4  bad syntax: missing or extra arguments, bad parameter syntax, SIZE overflow,
 *              repeated MAIL or RCPT parameter, bad xtext in AUTH=, bad RET, ENVID
 *              (xtext, at most SMTP_ENVID_MAX), NOTIFY (NEVER alone, or a comma list of
 *              SUCCESS, FAILURE, DELAY) or ORCPT (addr-type ";" xtext, at most
 *              SMTP_ORCPT_MAX)
 *   501 5.5.2  HELO/EHLO argument that is not a domain or address literal
 *   501 5.1.7 / 501 5.1.3  bad sender / recipient address (path syntax, limits, UTF-8)
 *   555 5.5.4  unknown MAIL or RCPT parameter or BODY value
 * On error, verb and arg stay set when the verb was recognized (for logs and error
 * counting); every other field is zero.
 * Policy (e.g. a UTF-8 path without SMTPUTF8, RFC 6531 §3.4) is the caller's to enforce. */
int smtp_parser_parse(struct arena *arena, const char *line, size_t len, struct smtp_command *cmd_r,
                      const char **error_r) __attribute__((warn_unused_result));

/* Is s[0..len) a HELO/EHLO argument RFC 5321 §4.1.1.1 allows: a domain (letters, digits,
 * '-' inside labels, and '_' as Postfix tolerates; labels of 1-63, at most 255 in all, an
 * optional final dot) or an address literal ([192.0.2.1], [IPv6:2001:db8::1], [tag:text])?
 * 8-bit octets, spaces, controls and anything else: no (the parser answers 501 5.5.2). */
bool smtp_parser_helo_valid(const char *s, size_t len);

/* Decode xtext (RFC 3461 §4: "+" and two upper-case hex digits for anything outside
 * '!'..'~' and for '+' and '=') from s[0..len) into a NUL-terminated copy in arena.
 * Returns 0 with *out_r, or -1 for a bad "+XX", a raw octet outside 0x21-0x7E or '=', or
 * a decoded control octet (NUL, CR, LF...). */
int smtp_parser_xtext_decode(struct arena *arena, const char *s, size_t len, const char **out_r)
    __attribute__((warn_unused_result));

/* The verb's canonical upper-case name ("MAIL") for logs; "UNKNOWN" for anything else. */
const char *smtp_parser_verb_name(enum smtp_verb verb);

#endif
