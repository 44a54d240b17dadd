/* IMAP command parser (RFC 9051 §4 and §9, RFC 3501; literals of RFC 7888 LITERAL+/LITERAL-
 * and RFC 3516 BINARY). Pure: the caller reads lines (without CRLF) and literal octets from
 * the connection and feeds them here; the parser returns the tag, the command name and a
 * tree of arguments, or a static error text for a BAD reply. It never allocates a literal
 * before the caller has decided to accept it, so a huge announcement costs nothing. */
#ifndef POSTHORN_IMAP_IMAP_PARSER_H
#define POSTHORN_IMAP_IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"

enum imap_arg_type {
	IMAP_ARG_EOL = 0, /* end of an argument list */
	IMAP_ARG_NIL,
	IMAP_ARG_ATOM,
	IMAP_ARG_STRING,           /* quoted string, unescaped */
	IMAP_ARG_LITERAL,          /* literal kept in memory: data in str/len */
	IMAP_ARG_LITERAL_EXTERNAL, /* literal the caller consumed itself: len = its size */
	IMAP_ARG_LIST
};

/* One argument. Everything it points to lives in the parser's arena.
 *   NIL:      str is the atom as sent ("NIL", "nil", ...), len 3, so a command that wants an
 *             astring (RFC 9051 §9: "NIL" is a valid astring) can take it as text.
 *   ATOM:     the atom as sent. Atoms may contain '%', '*', ']', '[', '\' (LIST patterns,
 *             sequence sets, flags like \Seen); never 8-bit octets or CTLs. FETCH items
 *             BODY, BODY.PEEK, BINARY, BINARY.PEEK and BINARY.SIZE followed by '[' are read
 *             as one atom up to the matching ']' and any following atom characters (the
 *             <partial>): "BODY.PEEK[HEADER.FIELDS (From To)]<0.1024>" is a single atom whose
 *             str is that text verbatim (inside the brackets SP, one level of parentheses
 *             and quoted strings are allowed and kept as sent; literals are not).
 *   STRING:   the quoted string with its \" and \\ escapes removed. May hold 8-bit octets
 *             (UTF-8 under RFC 9051 / UTF8=ACCEPT); their validity is the consumer's to
 *             check where it matters (mailbox names, SEARCH CHARSET).
 *   LITERAL:  str/len is the data with a NUL appended; it contains NULs only if literal8.
 *   LITERAL_EXTERNAL: str is NULL, len the size; the octets went wherever the caller put
 *             them (e.g. straight into the store for APPEND).
 *   LIST:     list points to the children, terminated by an IMAP_ARG_EOL entry; str NULL.
 *   EOL:      str NULL, len 0. */
struct imap_arg {
	enum imap_arg_type type;
	const char *str;
	size_t len;
	bool literal8;               /* ~{n} (RFC 3516 BINARY), LITERAL and LITERAL_EXTERNAL */
	const struct imap_arg *list; /* IMAP_ARG_LIST only */
};

/* Hard limits. A field left 0 takes the default shown. */
struct imap_parser_limits {
	size_t line_max;      /* octets of the command text: all its lines together, literal
	                         data not counted (65536) */
	uint64_t literal_max; /* octets of one literal kept in memory (1 MiB); bigger ones must
	                         go external */
	unsigned depth_max;   /* open parentheses at once (32) */
	unsigned args_max;    /* arguments in a command, lists and their children included
	                         (10000) */
	uint64_t literal_total_max; /* octets of all in-memory literals of one command
	                               (4 * literal_max), so 10000 literals of 1 MiB cannot
	                               pile up */
};

#define IMAP_PARSER_DEFAULT_LINE_MAX 65536
#define IMAP_PARSER_DEFAULT_LITERAL_MAX (1024 * 1024)
#define IMAP_PARSER_DEFAULT_DEPTH_MAX 32
#define IMAP_PARSER_DEFAULT_ARGS_MAX 10000

/* A literal announced at the end of a line. */
struct imap_literal {
	uint64_t size;  /* octets announced, at most 2^63 - 1 (RFC 9051 number64) */
	bool sync;      /* {N} / ~{N}: the client waits for a "+ " continuation request. False
	                   for {N+} / ~{N+} (RFC 7888): the octets follow without waiting. The
	                   parser does not enforce LITERAL- (RFC 7888: {N+} only up to 4096):
	                   the caller checks size when it advertises LITERAL- only. */
	bool binary;    /* ~{N} literal8 (RFC 3516): may contain NUL */
	bool too_large; /* size > literal_max, or more than what remains of literal_total_max:
	                   imap_parser_feed_literal() would refuse it, the caller must refuse it
	                   (sync) or consume it itself (non-sync) */
};

struct imap_parser;

/* New parser whose strings and argument arrays are allocated in arena (which the caller
 * owns and resets between commands, after it is done with the arguments). limits may be
 * NULL for all defaults; it is copied. */
struct imap_parser *imap_parser_new(struct arena *arena, const struct imap_parser_limits *limits);
/* Free the parser (not the arena); sets *parser to NULL; accepts NULL. */
void imap_parser_free(struct imap_parser **parser);
/* Forget the current command, finished or not (the arena is the caller's to reset). */
void imap_parser_reset(struct imap_parser *parser);

/* Feed one line of len octets without its CRLF: the first line of a command, or the line
 * that continues it after a literal (for APPEND "INBOX" {5}\r\nhello\r\n the continuation
 * is ""). A feed after a finished command (1 or -1 returned) starts a new one, as
 * imap_parser_reset() would. Grammar: tag SP command [SP "UID-subcommand"] *(SP arg)
 * (a trailing SP before the end of the line is tolerated). Returns:
 *   1  the command is complete: see imap_parser_tag/command/args;
 *   0  the line ends with a literal announcement {N} / {N+} / ~{N} / ~{N+}; *literal_r
 *      describes it. The caller then either
 *        - reads N octets and passes them to imap_parser_feed_literal() (only when
 *          !too_large), after sending "+ " if sync, or
 *        - consumes them itself and calls imap_parser_literal_external() (APPEND of a big
 *          message, or a non-sync literal it refuses: RFC 7888 lets the server read
 *          and discard it, then answer the whole command), or
 *        - for a sync literal it refuses (too_large: "NO [TOOBIG]", RFC 9051 §7.1), answers
 *          at once without a continuation and calls imap_parser_reset(): the client sends
 *          neither the octets nor the rest of the command;
 *      then it feeds the next line.
 *  -1  syntax error or limit: *error_r is a static text for "BAD". imap_parser_tag() gives
 *      the tag if it could be parsed (NULL otherwise: answer "* BAD").
 * Resynchronisation is built in: when the error is found in a line that ends with a
 * non-sync literal (whose octets the client sends anyway), the parser returns 0 for it and
 * discards its octets and the following lines until the command ends, then returns -1 with
 * the first error. Likewise a NUL in a non-binary literal is reported as -1 at the end of
 * the command. An empty first line is an error with no tag. */
int imap_parser_feed_line(struct imap_parser *parser, const char *line, size_t len,
                          struct imap_literal *literal_r, const char **error_r)
    __attribute__((warn_unused_result));

/* Feed len octets of the announced literal (any number of calls; len may be 0). Returns
 * 1 when all announced octets have arrived (then feed the next line), 0 when more are
 * needed, -1 on misuse: no literal pending, more octets than announced, or a too_large
 * literal (nothing is stored then). */
int imap_parser_feed_literal(struct imap_parser *parser, const unsigned char *data, size_t len)
    __attribute__((warn_unused_result));

/* The pending literal's octets are the caller's: it becomes an IMAP_ARG_LITERAL_EXTERNAL
 * argument and the next line continues the command. Must be called right after 0 was
 * returned, before any imap_parser_feed_literal(). */
void imap_parser_literal_external(struct imap_parser *parser);

/* The tag, NULL until parsed. Valid until reset, or until the arena is reset. */
const char *imap_parser_tag(const struct imap_parser *parser);
/* The command name upper-cased ("FETCH"), NULL until parsed. The UID forms are returned as
 * one name with a single space, "UID FETCH", "UID STORE", "UID SEARCH", "UID COPY",
 * "UID MOVE", "UID EXPUNGE" (any atom after UID is accepted and upper-cased: the
 * dispatcher's table decides), and the arguments start after the subcommand. */
const char *imap_parser_command(const struct imap_parser *parser);
/* The arguments of a complete command (after 1 was returned), EOL-terminated, in the arena
 * (valid until the arena is reset, even across imap_parser_reset()); NULL otherwise. */
const struct imap_arg *imap_parser_args(const struct imap_parser *parser);
/* The complete top-level arguments read so far, EOL-terminated; a list still open is not
 * included. For a caller that must act before the command ends: APPEND looks at the
 * mailbox, flags and date before it streams a literal (after 0 was returned, the literal is
 * not yet among them). Valid until the next call into the parser. */
const struct imap_arg *imap_parser_args_so_far(const struct imap_parser *parser);

/* How many lists are open at the current point of the command (0: the top level). APPEND
 * uses it: a literal inside CATENATE's list is a TEXT part, not a message. */
unsigned imap_parser_depth(const struct imap_parser *parser);

/* Number of arguments before the EOL entry of an argument list. */
size_t imap_parser_arg_count(const struct imap_arg *args);
/* True for ATOM, STRING and LITERAL (text available in str/len). */
bool imap_parser_arg_is_string(const struct imap_arg *arg);

/* Replace the parser's limits (0 fields take the defaults, as in imap_parser_new()). Call
 * between commands: they hold from the next one on (the session uses small limits before
 * login and the normal ones after). */
void imap_parser_set_limits(struct imap_parser *parser, const struct imap_parser_limits *limits);

#endif
