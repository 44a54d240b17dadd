/* rspamd's HTTP protocol (the normal worker's POST /checkv2), as an MTA speaks it: the
 * request head with the envelope in rspamd's headers, and the reply (an HTTP response whose
 * body is a JSON object) read into a verdict: the action, the score, the symbols, the new
 * Subject, the SMTP message, and the header changes of its "milter" block. Pure: bytes in,
 * results out; smtp/rspamd runs the exchange over a connection. JSON is read with jansson. */
#ifndef POSTHORN_SMTP_RSPAMD_PROTO_H
#define POSTHORN_SMTP_RSPAMD_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

struct arena;

#define RSPAMD_REPLY_MAX (256 * 1024) /* the largest response we read, head and body */
#define RSPAMD_SYMBOLS_MAX 128        /* symbols kept from one reply */
#define RSPAMD_HEADERS_MAX 64         /* header additions and removals kept from one reply */
#define RSPAMD_VALUE_MAX 8192         /* octets of one header value or the Subject */
#define RSPAMD_MESSAGE_MAX 400        /* octets of rspamd's SMTP message kept */
#define RSPAMD_FOLD_AT 78             /* a field line is folded at white space after this */
#define RSPAMD_LINE_MAX 900           /* and gets a fold inserted at this length */

/* rspamd's actions (the "action" member). */
enum rspamd_action {
	RSPAMD_NO_ACTION,
	RSPAMD_GREYLIST,
	RSPAMD_ADD_HEADER,
	RSPAMD_REWRITE_SUBJECT,
	RSPAMD_SOFT_REJECT,
	RSPAMD_REJECT,
	RSPAMD_DISCARD,    /* rspamd 3's "discard": accept and drop */
	RSPAMD_QUARANTINE, /* rspamd 3's "quarantine": the Junk folder */
};

/* The envelope and the client, for the request head. Strings are text without CR or LF
 * (other control characters are sent as '?'). */
struct rspamd_request_head {
	const char *host;         /* the Host field: rspamd's address as in the URL */
	const char *path;         /* the path before /checkv2 ("" or "/prefix") */
	const char *client_ip;    /* Ip */
	const char *helo;         /* Helo (not sent when "") */
	const char *hostname;     /* Hostname: the client's confirmed name or "unknown" (rspamd
	                           * scores HFILTER_HOSTNAME_UNKNOWN); NULL: not sent (not
	                           * looked up) */
	const char *mail_from;    /* From ("" for the null sender: "<>") */
	const char *const *rcpts; /* Rcpt, one field each */
	size_t rcpt_count;
	const char *queue_id; /* Queue-Id */
	const char *user;     /* User: the authenticated account, or NULL */
	const char *mta_name; /* MTA-Name: our host name */
	size_t body_len;      /* Content-Length */
};

/* Append the request head (request line, fields, the empty line) to out: 0, or -1 when out
 * is full. */
int rspamd_proto_request(struct buf *out, const struct rspamd_request_head *h)
    __attribute__((warn_unused_result));

struct rspamd_symbol {
	const char *name;
	double score;
};

/* A header field to add: at the end of the header block, or before the order-th field
 * (0 = first) when has_order. The value is made safe: folds are LF + white space, no other
 * control characters, no line that is not a continuation or has no visible character, and
 * folded so that lines stay short (RSPAMD_FOLD_AT, RSPAMD_LINE_MAX). */
struct rspamd_header_add {
	const char *name, *value;
	bool has_order;
	unsigned order;
};

/* A header field to remove: every field of that name (index 0), the index-th (1 = first),
 * or the index-th from the end (-1 = last). */
struct rspamd_header_remove {
	const char *name;
	long index;
};

struct rspamd_verdict {
	enum rspamd_action action;
	double score, required_score;
	const char *subject; /* "rewrite subject": the whole new Subject (folded), or NULL */
	const char *message; /* messages.smtp_message: one line of printable ASCII (controls
	                      * and 8-bit octets made '?'), or NULL */
	struct rspamd_symbol *symbols;
	size_t symbol_count;
	struct rspamd_header_add *add;
	size_t add_count;
	struct rspamd_header_remove *remove;
	size_t remove_count;
};

/* Read the response p[0..len); eof: the connection has ended (a response without
 * Content-Length ends there). 1 with *v (its strings and arrays in a), 0 when more octets are
 * needed, -1 with *error_r (static text) when it is not a 200 response with a JSON object
 * that has a known action, is chunked or compressed, or is larger than RSPAMD_REPLY_MAX.
 * Members of the wrong type are ignored, as unknown ones are; more than the limits above
 * are dropped. */
int rspamd_proto_parse(const unsigned char *p, size_t len, bool eof, struct arena *a,
                       struct rspamd_verdict *v, const char **error_r)
    __attribute__((warn_unused_result));

/* "no action", "add header", ... as rspamd spells them. */
const char *rspamd_action_name(enum rspamd_action action);

#endif
