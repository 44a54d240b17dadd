/* Server replies as an SMTP client reads them (RFC 5321 §4.2): a pure parser fed one line at
 * a time that joins multi-line replies ("250-..." up to "250 ..."), takes the code, the RFC
 * 3463 enhanced status code when the text starts with one, and the text; and the reading of
 * an EHLO reply's service extensions. No I/O: unit-tested and fuzzed (fuzz/fuzz_smtp_reply.c). */
#ifndef POSTHORN_SMTP_SMTP_REPLY_H
#define POSTHORN_SMTP_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* RFC 5321 §4.5.3.1.5 sets 512 octets for a reply line (CRLF included); servers exceed it, so
 * we accept up to this many and refuse longer ones as a protocol error. */
#define SMTP_REPLY_LINE_MAX 4096
/* Lines of one reply; one more is a protocol error (an endless reply is an attack). */
#define SMTP_REPLY_LINES_MAX 200
/* Octets of text kept per reply; the rest is cut (not an error). */
#define SMTP_REPLY_TEXT_MAX 8192

struct smtp_reply {
	int code;          /* 200..559 */
	char enhanced[16]; /* "5.1.1" (RFC 3463, its class matches the code's), or "" */
	/* The text of every line without code and enhanced code, lines joined by '\n'; control
	 * characters are replaced by '?'. */
	struct buf text;
	unsigned lines;
};

struct smtp_reply_parser {
	struct smtp_reply reply;
	bool partial; /* continuation lines seen, the last line not yet */
};

void smtp_reply_parser_init(struct smtp_reply_parser *parser);
void smtp_reply_parser_deinit(struct smtp_reply_parser *parser);

/* Feed one line without its line end (CRLF or bare LF). Returns 1 when it ends a reply:
 * parser->reply holds it until the next call; 0 when it is a continuation line ("250-"); -1
 * when it is not a reply line (no three-digit code 2xx-5xx, no space or '-' after it, another
 * code than the previous lines, too long, too many lines) with *error_r (static text): the
 * parser is reset, the connection should be given up. */
int smtp_reply_parser_feed(struct smtp_reply_parser *parser, const char *line, size_t len,
                           const char **error_r) __attribute__((warn_unused_result));

/* The text of reply on one line (lines joined by a space), for logs and delivery reports. */
const char *smtp_reply_oneline(const struct smtp_reply *reply, struct buf *out);

/* What an EHLO reply offers (RFC 5321 §4.1.1.1; keywords case-insensitive). */
#define SMTP_EHLO_AUTH_PLAIN 0x1u
#define SMTP_EHLO_AUTH_LOGIN 0x2u
struct smtp_ehlo {
	bool pipelining;          /* RFC 2920 */
	bool starttls;            /* RFC 3207 */
	bool eightbitmime;        /* RFC 6152 */
	bool smtputf8;            /* RFC 6531 */
	bool chunking;            /* RFC 3030 */
	bool dsn;                 /* RFC 3461 */
	bool enhancedstatuscodes; /* RFC 2034 */
	bool requiretls;          /* RFC 8689 */
	bool size;                /* SIZE announced (RFC 1870) */
	uint64_t size_max; /* its limit; 0 = none given ("SIZE", "SIZE 0", or not a number) */
	unsigned auth;     /* SMTP_EHLO_AUTH_* mechanisms offered (AUTH or the old AUTH=) */
};

/* Read the extensions of a 250 EHLO reply (the first line is the server's name). */
void smtp_reply_ehlo(const struct smtp_reply *reply, struct smtp_ehlo *ehlo_r);

#endif
