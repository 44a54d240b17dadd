/* IMAP SORT (RFC 5256 §3, SORT=DISPLAY RFC 5957): the sort program, the keys of one
 * message taken from its header section, base subject extraction (RFC 5256 §2.1), the
 * sent date (RFC 5256 §2.2) and the comparison. Pure: takes bytes and returns results, so
 * unit tests and fuzz/fuzz_imap_thread.c drive it without a server. Strings compare by an
 * i;unicode-casemap approximation (imap_sort_collate()). */
#ifndef POSTHORN_IMAP_IMAP_SORT_H
#define POSTHORN_IMAP_IMAP_SORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "imap/imap_parser.h"

enum imap_sort_key {
	IMAP_SORT_ARRIVAL,
	IMAP_SORT_CC,
	IMAP_SORT_DATE,
	IMAP_SORT_FROM,
	IMAP_SORT_SIZE,
	IMAP_SORT_SUBJECT,
	IMAP_SORT_TO,
	IMAP_SORT_DISPLAYFROM, /* RFC 5957 */
	IMAP_SORT_DISPLAYTO,
};

struct imap_sort_crit {
	enum imap_sort_key key;
	bool reverse;
};

/* Most sort criteria accepted in one program (more is BAD). */
#define IMAP_SORT_CRITERIA_MAX 16
/* Octets of a string key kept for comparison (longer ones compare by this prefix), so a
 * sort holds little per message. */
#define IMAP_SORT_STRING_MAX 1024

/* Parse a sort program "(REVERSE? key ...)" (the list's items, up to its EOL) into v
 * (IMAP_SORT_CRITERIA_MAX entries). 0 with *count_r >= 1, or -1 with *error_r a static text
 * for a BAD reply (empty list, unknown key, REVERSE not followed by a key, too many). */
int imap_sort_parse_program(const struct imap_arg *list, struct imap_sort_crit *v, size_t *count_r,
                            const char **error_r) __attribute__((warn_unused_result));
/* Does any criterion need the message's header section? (ARRIVAL and SIZE do not.) */
bool imap_sort_needs_header(const struct imap_sort_crit *v, size_t count);

/* The base subject (RFC 5256 §2.1) of an unfolded Subject field body s[0..len) (may hold
 * NUL octets): encoded words decoded to UTF-8, tabs and runs of white space made one SP,
 * then steps 2 to 6 exactly. NUL-terminated, in arena, not case-folded. *reply_r (may be
 * NULL) is true when something showed a reply or forward: a subj-refwd, a "(fwd)" trailer,
 * or a "[fwd: ...]" wrapping was removed (used by THREAD REFERENCES step 5). */
char *imap_sort_base_subject(struct arena *arena, const char *s, size_t len, bool *reply_r);

/* The comparison key of UTF-8 text s[0..len) (its first IMAP_SORT_STRING_MAX octets):
 * case-folded (imap_search_doc_fold()), ASCII letters then made upper case and the Latin-1
 * letters decomposed (NFD), so that strcmp() orders as i;unicode-casemap (RFC 5051:
 * titlecase, then NFKD) does for Latin, Greek and Cyrillic text. In arena. */
char *imap_sort_collate(struct arena *arena, const char *s, size_t len);

/* An RFC 5322 date-time ("[Day,] d Mon yyyy hh:mm[:ss] zone", obsolete years and zone
 * names accepted; an unknown zone is taken as +0000) as unix seconds, UTC. false when it
 * is none. */
bool imap_sort_parse_date(const char *s, size_t len, int64_t *t_r);

/* The sort keys of one message. Strings are collation keys (imap_sort_collate()), "" when
 * absent; only those some criterion needs are filled. */
struct imap_sort_msg {
	uint32_t seq, uid;
	uint64_t size;
	int64_t arrival; /* internal date */
	int64_t date;    /* sent date (the Date field), or arrival when there is none */
	const char *subject, *from, *to, *cc, *display_from, *display_to;
};

/* Set m's header keys (all of them: those v does not need become "") from len octets of the
 * message's header section (a prefix of the message holding at least its header; may be all of it),
 * and m->date. m->arrival must be set first (the fallback date). Strings in arena. Never fails;
 * broken input gives empty keys. */
void imap_sort_msg_headers(struct arena *arena, const struct imap_sort_crit *v, size_t count,
                           const unsigned char *hdr, size_t len, struct imap_sort_msg *m);

/* Order of a and b by the program; ties by sequence number (RFC 5256 §3): <0, 0, >0. */
int imap_sort_cmp(const struct imap_sort_crit *v, size_t count, const struct imap_sort_msg *a,
                  const struct imap_sort_msg *b);
/* Sort the n messages of msgs (pointers) by the program. */
void imap_sort_msgs(const struct imap_sort_crit *v, size_t count, struct imap_sort_msg **msgs,
                    size_t n);

#endif
