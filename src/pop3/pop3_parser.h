/* Parser for one POP3 command line (RFC 1939 §3, RFC 2449, RFC 2595 STLS, RFC 5034 AUTH,
 * RFC 6856 UTF8). Pure: bytes in, a struct pop3_command or a reason out. */
#ifndef POSTHORN_POP3_POP3_PARSER_H
#define POSTHORN_POP3_POP3_PARSER_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"

enum pop3_verb {
	POP3_VERB_UNKNOWN = 0,
	POP3_VERB_USER,
	POP3_VERB_PASS,
	POP3_VERB_APOP,
	POP3_VERB_AUTH,
	POP3_VERB_STLS,
	POP3_VERB_CAPA,
	POP3_VERB_UTF8,
	POP3_VERB_STAT,
	POP3_VERB_LIST,
	POP3_VERB_RETR,
	POP3_VERB_DELE,
	POP3_VERB_NOOP,
	POP3_VERB_RSET,
	POP3_VERB_TOP,
	POP3_VERB_UIDL,
	POP3_VERB_QUIT,
	POP3_VERB_COUNT
};

#define POP3_ARGS_MAX 2
/* RFC 2449 §4 says 40 octets; addresses as user names are often longer, so (as Dovecot)
 * we accept up to 255. PASS and the AUTH initial response are exempt. */
#define POP3_ARG_MAX 255

struct pop3_command {
	enum pop3_verb verb;
	unsigned argc;
	const char *argv[POP3_ARGS_MAX]; /* in the arena */
};

/* Parse one line (without CRLF). Keywords are case-insensitive. PASS takes the rest of the
 * line as its one argument (passwords may contain spaces); other commands take up to their
 * RFC's number of space-separated arguments, each 1..POP3_ARG_MAX octets (AUTH's initial
 * response may be longer). Returns 0, or -1 with *error_r a static reason for "-ERR". */
int pop3_parser_parse(struct arena *arena, const char *line, size_t len, struct pop3_command *cmd_r,
                      const char **error_r) __attribute__((warn_unused_result));
/* A message number: 1..UINT32_MAX, digits only, no leading '+'/'-'. 0 ok, -1 bad. */
int pop3_parser_number(const char *s, uint32_t *n_r) __attribute__((warn_unused_result));
/* "RETR" for logs. */
const char *pop3_parser_verb_name(enum pop3_verb verb);

#endif
