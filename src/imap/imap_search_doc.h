/* The searchable text of one message, for IMAP SEARCH (imap_search.c): its header fields
 * as "Name: value" lines (unfolded, RFC 2047 encoded words decoded to UTF-8), and its body
 * as the text of every text/ and message/ leaf part of the MIME tree (base64 and
 * quoted-printable decoded, converted from the part's charset to UTF-8; message/rfc822
 * parts opened; other types skipped, as RFC 9051 §6.4.4 allows) plus the header lines of
 * the MIME parts and nested messages. Everything is case-folded with imap_search_doc_fold()
 * so that a folded needle is found with memmem(). The parsing is mime/'s (mime_parse(),
 * mime_field_iter, mime_decode_words()), with the limits FETCH uses, so SEARCH sees the
 * parts BODYSTRUCTURE shows. Pure and bounded: MIME depth and part count are mime_parse()'s
 * (MIME_LIMITS_DEFAULT_INIT), work is linear in the message's size, broken input is read as
 * well as it can be, never rejected. */
#ifndef POSTHORN_IMAP_IMAP_SEARCH_DOC_H
#define POSTHORN_IMAP_IMAP_SEARCH_DOC_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"

/* A piece of searchable text: folded UTF-8 (invalid octets kept), NUL-terminated. */
struct imap_search_doc_text {
	const char *s;
	size_t len;
	/* header lines only: the field name as in the message (not folded, not terminated;
	 * NULL for body text) and the offset in s of the value, after "name: " */
	const char *name;
	size_t name_len;
	size_t value;
};

struct imap_search_doc_texts {
	struct imap_search_doc_text *v;
	size_t count, cap;
};

/* One message being searched. Fields are read-only for callers. */
struct imap_search_doc {
	const unsigned char *data; /* the caller's; must outlive the doc */
	size_t len;
	struct arena *arena; /* texts live here; made on first use */
	bool header_done, body_done;
	struct imap_search_doc_texts fields; /* after imap_search_doc_header() */
	struct imap_search_doc_texts body;   /* after imap_search_doc_body() */
	unsigned parts;                      /* MIME parts walked by imap_search_doc_body() */
};

/* Start a doc over len octets of data (a whole message, or only its header section when
 * only header fields will be asked for). Allocates nothing yet. */
void imap_search_doc_init(struct imap_search_doc *doc, const unsigned char *data, size_t len);
/* Free what the doc allocated (not data). */
void imap_search_doc_deinit(struct imap_search_doc *doc);

/* Fill doc->fields with the message's header fields, in order; "Name: value" lines
 * (unfolded, decoded, folded), name and value set. Idempotent. */
void imap_search_doc_header(struct imap_search_doc *doc);
/* Fill doc->body with the decoded text parts (name NULL) and the header lines of the MIME
 * parts and nested messages (name set), in message order. Idempotent. */
void imap_search_doc_body(struct imap_search_doc *doc);

/* Simple case folding of len octets of UTF-8 (Unicode CaseFolding.txt C+S mappings of
 * Latin, Greek, Cyrillic, Armenian and fullwidth Latin letters; invalid octets copied
 * unchanged): a NUL-terminated copy in arena, never longer than the input, its length in
 * *len_r. */
char *imap_search_doc_fold(struct arena *arena, const unsigned char *s, size_t len, size_t *len_r);

/* Is s[0, len) valid UTF-8 (no overlong forms, no surrogates)? */
bool imap_search_doc_utf8_valid(const unsigned char *s, size_t len);

/* The texts the store keeps for SEARCH BODY and TEXT (the search index), made with the
 * functions above: *hdr_r every header line that TEXT searches (the message's fields, then
 * those of its MIME parts and nested messages), *body_r every body text that BODY searches,
 * in message order, each text followed by LF (a NUL octet in a text is written as LF too).
 * A needle without LF is found in one of these strings exactly when it is found in one of
 * the texts. Returns 1 with both malloc'd; 0 (both NULL) when together they exceed max
 * octets or are not valid UTF-8: such a message is not indexed, its searches read it. */
int imap_search_doc_index(const unsigned char *data, size_t len, size_t max, char **hdr_r,
                          char **body_r) __attribute__((warn_unused_result));
/* The header lines of imap_search_doc_index() hold the message's own fields apart: they
 * begin with LF, then each of those fields as "name: value" followed by LF (names of ASCII,
 * values without NUL or LF), then an empty line (LF), then the header lines of the MIME
 * parts. When a name or a value does not allow that, they begin with three LFs and the
 * lines follow without the empty line. Rows stored before this (no LF first) and those
 * are searched by header keys from the message's file. */
/* Fill doc->fields (doc made with data NULL) from such header lines hdr[0, len): the
 * message's own fields, as imap_search_doc_header() gives them but with the name folded
 * (which for ASCII names changes no comparison made with strncasecmp()). 0, or -1 when
 * hdr does not hold them apart (doc->fields is then not to be used). */
int imap_search_doc_stored_fields(struct imap_search_doc *doc, const char *hdr, size_t len)
    __attribute__((warn_unused_result));
/* The same for the message open at fd (store_search_texter_fn; ctx unused; fd stays open):
 * 1, 0 as above, -1 it cannot be read. */
int imap_search_doc_index_fd(void *ctx, int fd, size_t max, char **hdr_r, char **body_r);

#endif
