/* IMAP SEARCH criteria (RFC 9051 §6.4.4, RFC 3501 §6.4.4), result options (RFC 4731 ESEARCH,
 * RFC 5182 SAVE) and the matching of one message against them. Pure: parsing takes the
 * parser's argument tree and returns a key tree; matching takes what the session knows of
 * a message (flags, size, dates, UID) and, only when a key needs them, the message's octets.
 * String keys compare case-insensitively (simple Unicode case folding of Latin, Greek,
 * Cyrillic and Armenian letters, ASCII at least) as substrings of (imap_search_doc.h):
 *  - header keys (HEADER, FROM, TO, CC, BCC, SUBJECT): each field of that name, unfolded,
 *    with RFC 2047 encoded words decoded to UTF-8;
 *  - BODY: the text of every text/ or message/ leaf part of the MIME tree, base64 and
 *    quoted-printable decoded and converted from its charset to UTF-8 (parts of other
 *    types are skipped, as RFC 9051 §6.4.4 allows); a message/rfc822 part is opened;
 *  - TEXT: every header line ("Name: value", decoded as above) of the message and of its
 *    MIME parts, and the BODY text. */
#ifndef POSTHORN_IMAP_IMAP_SEARCH_H
#define POSTHORN_IMAP_IMAP_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "imap/imap_parser.h"

/* Result options of "RETURN (...)" (RFC 4731 §3.1, RFC 5182 §2). */
enum {
	IMAP_SEARCH_RETURN_MIN = 1 << 0,
	IMAP_SEARCH_RETURN_MAX = 1 << 1,
	IMAP_SEARCH_RETURN_ALL = 1 << 2,
	IMAP_SEARCH_RETURN_COUNT = 1 << 3,
	IMAP_SEARCH_RETURN_SAVE = 1 << 4,
};

/* What matching may need to read of a message (bits of imap_search.needs). */
enum {
	IMAP_SEARCH_NEED_HEADER = 1 << 0, /* the header section: header keys, SENT* */
	IMAP_SEARCH_NEED_BODY = 1 << 1,   /* the whole message: BODY, TEXT */
};

/* Deepest nesting of NOT / OR / parenthesised lists accepted (deeper is BAD). */
#define IMAP_SEARCH_DEPTH_MAX 64

struct imap_search_key; /* opaque: the parsed criteria */

/* An EMAILID key (RFC 8474 §6): the caller looks the id up in the store and fills uids
 * (ascending) before any matching; a key whose uids stay NULL matches nothing. */
struct imap_search_emailid {
	const char *id; /* valid objectid syntax (1-255 of A-Z a-z 0-9 _ -) */
	uint32_t *uids; /* the caller's (it frees them) */
	size_t count;
	struct imap_search_emailid *next;
};

/* A BODY or TEXT key that the store's search index can answer (store.h,
 * store_search_text_uids()): the caller may ask the store before any matching, fill uids
 * (ascending) and set indexed, and fill imap_search.unindexed once for all of them; then
 * such a key is decided from uids for every message not listed in unindexed, and from the
 * message's octets only for those. A key left unindexed reads the octets as before. */
#define IMAP_SEARCH_TEXT_NEEDLE_MAX 4096 /* octets: longer needles read the messages */
struct imap_search_text {
	const char *needle; /* case-folded, NUL-terminated, valid UTF-8, no LF, not empty */
	bool body_only;     /* BODY (else TEXT) */
	bool indexed;
	uint32_t *uids; /* the caller's (it frees them) */
	size_t count;
	struct imap_search_text *next;
};

/* A header key (HEADER, FROM, TO, CC, BCC, SUBJECT, SENTBEFORE, SENTON, SENTSINCE) that the
 * header fields kept by the search index can answer (imap_search_doc_stored_fields(),
 * store_search_hdr_each()): the caller may, before any matching, give every stored header
 * text of the mailbox's messages that contains prefilter (all when it is NULL) to
 * imap_search_hdr_add(), set indexed when the store answered and hdr->broken stayed
 * false, and fill imap_search.hdr_unindexed once for all of them; then such a key is
 * decided from uids for every message not listed there, from its header otherwise. */
struct imap_search_hdr {
	const struct imap_search_key *key;
	const char *prefilter; /* folded, valid UTF-8, no LF, not empty; NULL: none */
	bool indexed;
	bool broken;    /* a text given did not hold the fields apart */
	uint32_t *uids; /* ascending as given; malloc'd, the caller frees them */
	size_t count, cap;
	struct imap_search_hdr *next;
};

/* A parsed SEARCH command. Everything lives in the arena given to imap_search_parse(). */
struct imap_search {
	bool has_return;     /* "RETURN (...)" was given: the answer is an ESEARCH response */
	unsigned ret;        /* IMAP_SEARCH_RETURN_*; "RETURN ()" is stored as ALL (RFC 4731) */
	const char *charset; /* the CHARSET argument as sent; NULL when absent */
	unsigned needs;      /* IMAP_SEARCH_NEED_*: 0 when flags, sizes, dates and numbers do */
	bool uses_saved;     /* "$" occurs (RFC 5182) */
	bool uses_seq;       /* a sequence-set key (message numbers, not "$") occurs */
	bool modseq;         /* a MODSEQ key occurs (RFC 7162 §3.1.5): the answer adds MODSEQ */
	struct imap_search_emailid *emailids; /* the EMAILID keys, NULL when none */
	struct imap_search_text *texts;       /* BODY/TEXT keys the index can answer */
	bool texts_all;                       /* every non-empty BODY/TEXT key is in texts */
	uint32_t *unindexed; /* the caller's: UIDs the index does not hold, ascending */
	size_t unindexed_count;
	struct imap_search_hdr *hdrs; /* header keys the index can answer, NULL when none */
	uint32_t *hdr_unindexed;      /* the caller's: UIDs without stored fields, ascending */
	size_t hdr_unindexed_count;
	const struct imap_search_key *root;
};

/* Parse the arguments of SEARCH / UID SEARCH (after the command name):
 *   [RETURN (opts)] [CHARSET astring] search-key *(SP search-key)
 * with every key of RFC 9051 and RFC 3501 (NEW, OLD, RECENT included; RECENT never
 * matches: this server has no \Recent) and MODSEQ [entry-name entry-type] n (RFC 7162
 * §3.1.5; messages whose MODSEQ is at least n, the entry ignored), OLDER n and YOUNGER n
 * (RFC 5032 WITHIN: internal date at least / less than n seconds before ctx->now), EMAILID
 * and THREADID objectid (RFC 8474 §6; THREADID matches nothing: this server has no thread
 * ids), and SAVEDBEFORE, SAVEDON, SAVEDSINCE date and SAVEDATESUPPORTED (RFC 8514 §4.2;
 * every mailbox keeps save dates, so that one matches every message). Strings are copied
 * (case-folded) into arena, so the result does not point into args. Returns 0 with
 * *search_r, or -1 with *error_r a static text for a BAD reply (unknown key or return
 * option, missing or malformed argument, nesting deeper than IMAP_SEARCH_DEPTH_MAX). The
 * charset is not checked here: see imap_search_charset_supported(). */
int imap_search_parse(struct arena *arena, const struct imap_arg *args,
                      struct imap_search **search_r, const char **error_r)
    __attribute__((warn_unused_result));

/* True for the charsets search strings may be in: UTF-8 and US-ASCII (any case). Others
 * get NO [BADCHARSET (UTF-8 US-ASCII)] (RFC 9051 §6.4.4). */
bool imap_search_charset_supported(const char *charset);

/* The mailbox around the message: what '*' and "$" stand for. */
struct imap_search_context {
	uint32_t count;        /* messages in the view: '*' of a sequence set (0 = none) */
	uint32_t max_uid;      /* highest UID in the view: '*' of a UID set (0 = none) */
	const uint32_t *saved; /* the saved result "$" as UIDs, ascending; may be NULL */
	size_t saved_count;
	int64_t now; /* unix seconds: what OLDER and YOUNGER (RFC 5032) count back from */
};

/* One message as the session sees it. */
struct imap_search_msg {
	uint32_t seq, uid;
	uint64_t size;         /* RFC822.SIZE */
	int64_t internal_date; /* unix seconds; its date is taken in UTC, as FETCH shows it */
	unsigned flags;        /* STORE_FLAG_*, and IMAP_SEARCH_FLAG_RECENT */
	const char *keywords;  /* space-separated; NULL or "" when none */
	uint64_t modseq;       /* MODSEQ (RFC 7162) */
	int64_t save_date;     /* SAVEDATE (RFC 8514), unix seconds; its date in UTC */
};
/* In imap_search_msg.flags: \Recent in this session (RECENT, NEW, OLD). */
#define IMAP_SEARCH_FLAG_RECENT (1u << 30)

/* Does msg match? data/len are the message's octets: the whole message when search->needs
 * has IMAP_SEARCH_NEED_BODY; when it has only IMAP_SEARCH_NEED_HEADER, a prefix holding at
 * least the header section and its empty line is enough. Pass data NULL to ask whether the
 * answer is known without them. Returns 1 match, 0 no match, -1 data is NULL and some key
 * that decides the answer needs the octets (call again with them). Never reads beyond len;
 * any octets are accepted (broken MIME, NULs, 8-bit headers). */
int imap_search_match(const struct imap_search *search, const struct imap_search_context *ctx,
                      const struct imap_search_msg *msg, const unsigned char *data, size_t len);

/* The header key h applied to the stored header lines hdr[0, len) of the message of uid
 * (in ascending UID order): uid added to h->uids when it matches; h->broken set when hdr
 * does not hold the message's fields apart. */
void imap_search_hdr_add(struct imap_search_hdr *h, uint32_t uid, const char *hdr, size_t len);

/* Does matching the message of uid need its whole text (IMAP_SEARCH_NEED_BODY), or is its
 * header section enough, since the index answers its BODY and TEXT keys? */
bool imap_search_needs_body(const struct imap_search *search, uint32_t uid);

#endif
