/* Incremental RFC 5322 header-section scanner used at delivery: the SMTP server feeds it the
 * message as it streams in, in chunks of any size, until the empty line that ends the header
 * section; it extracts From, Subject and Message-ID for the message index, with bounded
 * memory whatever the input. Encoded words are not decoded. */
#ifndef POSTHORN_MIME_HEADER_H
#define POSTHORN_MIME_HEADER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"

struct header_summary {
	char *from; /* unfolded field body, leading/trailing whitespace trimmed, NULL if
	               absent; first occurrence only; at most max_field octets (truncated,
	               never in the middle of a UTF-8 sequence); NUL and bare CR octets
	               become spaces */
	char *subject;
	char *message_id;
	size_t lines;  /* header field count seen, at most max_lines */
	bool complete; /* the empty line ending the header section was seen */
	bool too_many; /* more than max_lines fields: the caller may refuse the message */
};

struct header_scanner;

/* A scanner that lives in arena (no free function: it goes with the arena). max_field caps
 * each kept field; max_lines caps the field count (counting stops there and too_many is
 * set; the three fields are still looked for until the header section ends). */
struct header_scanner *header_scanner_new(struct arena *arena, size_t max_field, size_t max_lines);

/* Feed the next bytes of the message (any chunking, any split point, CRLF or bare LF line
 * ends; an empty line is CRLF CRLF or LF LF or a mix). Field names match case-insensitively;
 * continuation lines (starting with SP/HT) unfold into the previous field. Returns 1 when the
 * header section is complete (this and further bytes after the empty line are ignored), 0
 * when more is needed. Never holds more than 3 * (max_field + 1) + ~100 octets, whatever the
 * line lengths. */
int header_scanner_feed(struct header_scanner *scanner, const unsigned char *data, size_t len);

/* The summary so far (call at end of message even when incomplete; may be called at any
 * time). Strings are fresh copies in the scanner's arena. */
void header_scanner_result(struct header_scanner *scanner, struct header_summary *summary_r);

#endif
