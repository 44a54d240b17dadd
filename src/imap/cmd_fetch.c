/* FETCH and UID FETCH (RFC 9051 §6.4.5): UID, FLAGS, INTERNALDATE, RFC822.SIZE, and the
 * whole message or its header or text (BODY[], BODY[HEADER], BODY[TEXT], their .PEEK forms,
 * RFC822, RFC822.HEADER, RFC822.TEXT) with <partial> ranges; macros ALL and FAST; MODSEQ
 * and the CHANGEDSINCE modifier (RFC 7162 §3.1.4). Items
 * that are not .PEEK set \Seen on a read-write mailbox, through store_flags() before the data
 * goes out, so the responses carry the new FLAGS.
 * ENVELOPE, BODY and BODYSTRUCTURE come from the store's cache (filled at delivery) or the
 * MIME parser; BODY[section] takes part numbers at any depth with HEADER, TEXT, MIME and
 * HEADER.FIELDS (.NOT). BINARY[section]<partial>, BINARY.PEEK and BINARY.SIZE (RFC 3516)
 * decode base64 and quoted-printable parts; an encoding that cannot be decoded fails the
 * command with NO [UNKNOWN-CTE].
 * EMAILID and THREADID (RFC 8474 §5; THREADID is always NIL), SAVEDATE (RFC 8514) and
 * PREVIEW (RFC 8970: the text stored at delivery; for a message stored before there was
 * one it is computed from the message now, or NIL with the LAZY modifier).
 * The answer runs in steps (imap_session_run): message after message, each literal streamed
 * from the file in chunks (imap_fetch_body.c) while the connection takes more; no message is
 * ever held in memory (sections are located on a mapping of the file, unmapped before the
 * response starts). */
#include "imap/imap_commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/date.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "imap/imap_fetch_body.h"
#include "imap/imap_seqset.h"
#include "mime/imap_structure.h"
#include "mime/mime.h"
#include "mime/mime_decode.h"
#include "mime/mime_preview.h"
#include "core/banned.h"

enum fetch_part { PART_NONE, PART_ALL, PART_HEADER, PART_TEXT, PART_SECTION };

/* What a BODY[section] names (RFC 9051 §6.4.5 section-spec). */
enum fetch_sec { SEC_FULL, SEC_HEADER, SEC_TEXT, SEC_MIME, SEC_FIELDS, SEC_FIELDS_NOT };

/* RFC 3516: BINARY[section] (and .PEEK) sends the decoded part, BINARY.SIZE its size. */
enum fetch_bin { BIN_NONE, BIN_DATA, BIN_SIZE };

struct fetch_item {
	const char *label; /* what the response names it: "BODY[]", "RFC822", ... */
	bool seen;         /* sets \Seen (not .PEEK, not RFC822.HEADER: RFC 9051 §6.4.5) */
	enum fetch_part part;
	bool partial;
	uint64_t offset, length;
	/* PART_SECTION */
	const char *section; /* part numbers "1.2", "" for the message itself */
	enum fetch_sec sec;
	const char **fields; /* HEADER.FIELDS (.NOT) names */
	size_t field_count;
	enum fetch_bin binary;
};

struct fetch_req {
	bool uid, flags, size, date;
	bool modseq; /* MODSEQ (RFC 7162 §3.1.4.2), also implied by CHANGEDSINCE */
	bool envelope, bodystructure, body;
	bool emailid, threadid, savedate; /* RFC 8474, RFC 8514 */
	bool preview, preview_lazy;       /* RFC 8970 */
	bool seen;                        /* some item sets \Seen */
	struct fetch_item items[16];
	size_t item_count;
};

static bool fetch_partial(const char *p, struct fetch_item *it)
{
	/* "<offset.length>" (RFC 9051 §6.4.5). */
	if (*p == '\0')
		return true;
	unsigned long long o, l;
	char end;
	if (sscanf(p, "<%llu.%llu%c", &o, &l, &end) != 3 || end != '>' ||
	    strchr(p, '>')[1] != '\0' || l == 0)
		return false;
	it->partial = true;
	it->offset = o;
	it->length = l;
	return true;
}

/* Parse "1.2.HEADER.FIELDS (From To)" and friends (the text between the brackets). */
static bool fetch_section(struct arena *a, const char *p, size_t len, struct fetch_item *it)
{
	const char *end = p + len;
	const char *q = p;
	/* Part numbers: 1*digit *("." 1*digit), each non-zero. */
	while (q < end && *q >= '1' && *q <= '9') {
		while (q < end && *q >= '0' && *q <= '9')
			q++;
		if (q < end && *q == '.' && q + 1 < end && q[1] >= '1' && q[1] <= '9')
			q++;
		else
			break;
	}
	it->part = PART_SECTION;
	it->section = arena_strndup(a, p, (size_t)(q - p));
	if (q < end && q > p) {
		if (*q != '.')
			return false;
		q++;
	}
	size_t rest = (size_t)(end - q);
	bool has_part = it->section[0] != '\0';
	if (rest == 0) {
		it->sec = SEC_FULL;
		return has_part;
	}
	if (rest == 6 && strncasecmp(q, "HEADER", 6) == 0)
		it->sec = SEC_HEADER;
	else if (rest == 4 && strncasecmp(q, "TEXT", 4) == 0)
		it->sec = SEC_TEXT;
	else if (rest == 4 && strncasecmp(q, "MIME", 4) == 0 && has_part)
		it->sec = SEC_MIME;
	else if (rest > 18 && strncasecmp(q, "HEADER.FIELDS.NOT ", 18) == 0)
		it->sec = SEC_FIELDS_NOT, q += 18;
	else if (rest > 14 && strncasecmp(q, "HEADER.FIELDS ", 14) == 0)
		it->sec = SEC_FIELDS, q += 14;
	else
		return false;
	if (it->sec != SEC_FIELDS && it->sec != SEC_FIELDS_NOT)
		return true;
	/* "(" header-fld-name *(SP header-fld-name) ")"; names are astrings. */
	if (q >= end || *q != '(' || end[-1] != ')')
		return false;
	q++;
	end--;
	size_t cap = 8;
	it->fields = arena_alloc(a, cap * sizeof(char *));
	while (q < end) {
		const char *start = q;
		size_t n;
		if (*q == '"') {
			start = ++q;
			while (q < end && *q != '"')
				q++;
			if (q >= end)
				return false;
			n = (size_t)(q - start);
			q++;
		} else {
			while (q < end && *q != ' ')
				q++;
			n = (size_t)(q - start);
		}
		if (n == 0)
			return false;
		if (it->field_count == cap) {
			const char **more = arena_alloc(a, 2 * cap * sizeof(char *));
			memcpy(more, it->fields, cap * sizeof(char *));
			it->fields = more;
			cap *= 2;
		}
		it->fields[it->field_count++] = arena_strndup(a, start, n);
		if (q < end && *q++ != ' ')
			return false;
	}
	return it->field_count > 0;
}

/* True when p[0..len) is "" or part numbers "1.2.3" (nz-number joined by single dots). */
static bool fetch_part_numbers(const char *p, size_t len)
{
	bool digit_ok = true; /* at the start of a number */
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '.' && !digit_ok && i + 1 < len) {
			digit_ok = true;
		} else if (p[i] >= '0' && p[i] <= '9' && !(digit_ok && p[i] == '0')) {
			digit_ok = false;
		} else {
			return false;
		}
	}
	return len == 0 || !digit_ok;
}

/* BINARY[section]<partial>, BINARY.PEEK[...] and BINARY.SIZE[section] (RFC 3516 §4.1,
 * §4.2): the section is part numbers only, "" being the whole message. 1 = added, 0 = not a
 * BINARY item, -1 = bad. */
static int fetch_add_binary(struct fetch_req *req, struct fetch_item *it, const char *atom,
                            size_t pre, const char *br, struct arena *a)
{
	bool peek = pre == 11 && strncasecmp(atom, "BINARY.PEEK", 11) == 0;
	bool size = pre == 11 && strncasecmp(atom, "BINARY.SIZE", 11) == 0;
	if (!peek && !size && !(pre == 6 && strncasecmp(atom, "BINARY", 6) == 0))
		return 0;
	const char *close = strchr(br, ']');
	if (close == NULL)
		return -1;
	size_t slen = (size_t)(close - br - 1);
	if (!fetch_part_numbers(br + 1, slen))
		return -1;
	it->part = PART_SECTION;
	it->sec = SEC_FULL;
	it->section = arena_strndup(a, br + 1, slen);
	it->binary = size ? BIN_SIZE : BIN_DATA;
	if (size ? close[1] != '\0' : !fetch_partial(close + 1, it))
		return -1;
	size_t cap = slen + 48; /* "BINARY.SIZE[" section "]<" 20 digits ">" */
	char *label = arena_alloc(a, cap);
	int n = snprintf(label, cap, "%s[%s]", size ? "BINARY.SIZE" : "BINARY", it->section);
	if (it->partial)
		snprintf(label + n, cap - (size_t)n, "<%llu>", (unsigned long long)it->offset);
	it->label = label;
	it->seen = !peek && !size; /* RFC 3516 §4.2: like BODY[], not like BODY.PEEK[] */
	req->seen |= it->seen;
	req->item_count++;
	return 1;
}

/* One fetch attribute atom. false = unsupported or bad. */
static bool fetch_add(struct fetch_req *req, const char *atom, struct arena *a)
{
	if (strcasecmp(atom, "UID") == 0)
		return req->uid = true;
	if (strcasecmp(atom, "FLAGS") == 0)
		return req->flags = true;
	if (strcasecmp(atom, "MODSEQ") == 0)
		return req->modseq = true;
	if (strcasecmp(atom, "RFC822.SIZE") == 0)
		return req->size = true;
	if (strcasecmp(atom, "INTERNALDATE") == 0)
		return req->date = true;
	if (strcasecmp(atom, "ENVELOPE") == 0)
		return req->envelope = true;
	if (strcasecmp(atom, "BODYSTRUCTURE") == 0)
		return req->bodystructure = true;
	if (strcasecmp(atom, "BODY") == 0)
		return req->body = true;
	if (strcasecmp(atom, "EMAILID") == 0)
		return req->emailid = true;
	if (strcasecmp(atom, "THREADID") == 0)
		return req->threadid = true;
	if (strcasecmp(atom, "SAVEDATE") == 0)
		return req->savedate = true;
	if (strcasecmp(atom, "PREVIEW") == 0)
		return req->preview = true;
	if (strcasecmp(atom, "FAST") == 0)
		return req->flags = req->size = req->date = true;
	if (strcasecmp(atom, "ALL") == 0)
		return req->flags = req->size = req->date = req->envelope = true;
	if (strcasecmp(atom, "FULL") == 0)
		return req->flags = req->size = req->date = req->envelope = req->body = true;
	if (req->item_count == sizeof(req->items) / sizeof(req->items[0]))
		return false;
	struct fetch_item *it = &req->items[req->item_count];
	memset(it, 0, sizeof(*it));
	static const struct {
		const char *name;
		enum fetch_part part;
	} plain[] = {
	    {"RFC822", PART_ALL},
	    {"RFC822.HEADER", PART_HEADER},
	    {"RFC822.TEXT", PART_TEXT},
	};
	for (size_t i = 0; i < 3; i++) {
		if (strcasecmp(atom, plain[i].name) == 0) {
			it->label = plain[i].name;
			it->part = plain[i].part;
			it->seen = plain[i].part != PART_HEADER;
			req->seen |= it->seen;
			req->item_count++;
			return true;
		}
	}
	const char *br = strchr(atom, '[');
	if (br == NULL)
		return false;
	size_t pre = (size_t)(br - atom);
	int bin = fetch_add_binary(req, it, atom, pre, br, a);
	if (bin != 0)
		return bin > 0;
	bool peek = pre == 9 && strncasecmp(atom, "BODY.PEEK", 9) == 0;
	if (!peek && !(pre == 4 && strncasecmp(atom, "BODY", 4) == 0))
		return false;
	const char *close = strchr(br, ']');
	if (close == NULL)
		return false;
	size_t slen = (size_t)(close - br - 1);
	if (slen == 0)
		it->part = PART_ALL;
	else if (slen == 6 && strncasecmp(br + 1, "HEADER", 6) == 0)
		it->part = PART_HEADER;
	else if (slen == 4 && strncasecmp(br + 1, "TEXT", 4) == 0)
		it->part = PART_TEXT;
	else if (!fetch_section(a, br + 1, slen, it))
		return false;
	if (!fetch_partial(close + 1, it))
		return false;
	/* The response names the section without .PEEK and with only the partial's start. */
	char label[1024];
	snprintf(label, sizeof(label), "BODY[%.*s]", (int)slen, br + 1);
	for (char *c = label; *c != '\0'; c++)
		if (*c >= 'a' && *c <= 'z')
			*c = (char)(*c - 32);
	if (it->partial) {
		size_t n = strlen(label);
		snprintf(label + n, sizeof(label) - n, "<%llu>", (unsigned long long)it->offset);
	}
	it->label = arena_strdup(a, label);
	it->seen = !peek;
	req->seen |= it->seen;
	req->item_count++;
	return true;
}

/* Offsets of the header (with its blank line) and text of a message. */
static void fetch_split(const unsigned char *m, size_t len, size_t *header_len_r)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (m[i] == '\n' &&
		    (m[i + 1] == '\n' || (m[i + 1] == '\r' && i + 2 < len && m[i + 2] == '\n'))) {
			*header_len_r = i + 1 + (m[i + 1] == '\r' ? 2 : 1);
			return;
		}
	}
	*header_len_r = len;
}

static bool fetch_needs_tree(const struct fetch_req *req)
{
	for (size_t i = 0; i < req->item_count; i++)
		if (req->items[i].part == PART_SECTION)
			return true;
	return false;
}

static bool fetch_needs_split(const struct fetch_req *req)
{
	for (size_t i = 0; i < req->item_count; i++)
		if (req->items[i].part == PART_HEADER || req->items[i].part == PART_TEXT)
			return true;
	return false;
}

/* One message's store reads, done ahead in batches (fetch_read): its file and its cached
 * summary. */
struct fetch_pre {
	uint32_t uid;
	int open_r; /* store_message_open() */
	int fd;     /* owned until fetch_msg_begin() takes it; -1 */
	uint64_t size;
	char *env, *body, *bs;            /* store_message_summary(), owned; NULL when not cached */
	struct store_message_objects obj; /* EMAILID, PREVIEW: store_message_objects() */
};

/* ENVELOPE, BODY and BODYSTRUCTURE: cached at delivery when possible (p's summary, taken
 * and freed here), else computed from the (mapped) message, parsed on demand into *root. */
static int fetch_structure(struct arena *tmp, const struct fetch_req *req, struct fetch_pre *p,
                           const unsigned char *data, size_t len, const struct mime_part **root,
                           struct buf *b, const char **sep)
{
	char *env = p->env, *body = p->body, *bs = p->bs;
	p->env = p->body = p->bs = NULL;
	if (!req->envelope && !req->bodystructure && !req->body)
		return 0;
	int r = 0;
	const char *const names[3] = {"ENVELOPE", "BODY", "BODYSTRUCTURE"};
	const bool want[3] = {req->envelope, req->body, req->bodystructure};
	char *cached[3] = {env, body, bs};
	for (int i = 0; i < 3; i++) {
		if (!want[i])
			continue;
		const char *text = cached[i];
		if (text == NULL && *root == NULL && data != NULL) {
			struct mime_part *tree;
			struct mime_limits limits = {0};
			if (mime_parse(tmp, data, len, &limits, &tree) >= -1)
				*root = tree;
		}
		if (text == NULL && *root != NULL)
			text = i == 0 ? imap_envelope(tmp, data, len, *root)
			              : imap_bodystructure(tmp, data, len, *root, i == 2);
		r |= buf_printf(b, "%s%s %s", *sep, names[i], text != NULL ? text : "NIL");
		*sep = " ";
	}
	free(env);
	free(body);
	free(bs);
	return r;
}

static bool fetch_field_listed(const unsigned char *msg, const struct mime_field *f,
                               const struct fetch_item *it)
{
	for (size_t i = 0; i < it->field_count; i++)
		if (mime_field_is(msg, f, it->fields[i]))
			return true;
	return false;
}

/* What one item of the current message sends, worked out before its response begins. */
struct fetch_span {
	bool nil;          /* the message file is gone: NIL */
	bool size_only;    /* BINARY.SIZE: a number, no literal */
	bool literal8;     /* "~{n}" (RFC 3516 §4.3): the octets hold a NUL */
	uint64_t off, len; /* the range of the file */
	bool decode;       /* BINARY of an encoded part: decoded while streaming */
	enum mime_encoding cte;
	uint64_t skip, send; /* <partial>: octets dropped, then octets sent */
	uint64_t size;       /* BINARY.SIZE */
	char *mem;           /* HEADER.FIELDS: the octets themselves (malloc'd) */
};

/* A FETCH in progress: the messages, the \Seen change some items imply, and where the
 * answer stands (fetch_step). */
struct fetch_op {
	struct fetch_req req;
	struct arena *keep; /* copies of req.items[] strings */
	uint32_t *seqs;     /* sequence numbers to answer, ascending */
	size_t count;
	uint32_t *unseen; /* UIDs among them without \Seen (when it is to be set) */
	size_t unseen_count;
	uint64_t *unseen_modseq; /* [i]: unseen[i]'s MODSEQ after \Seen was set, 0 unchanged */
	char *mailbox, *name, *tag;
	struct store_flags op;
	/* the answer */
	size_t next;     /* index in seqs of the message being answered */
	bool gone;       /* a message was expunged elsewhere: NO [EXPUNGEISSUED] at the end */
	bool in_msg;     /* its "* n FETCH (" is out */
	bool in_body;    /* item's literal is streaming */
	size_t item;     /* its item being sent */
	const char *sep; /* before the next item: "" or " " */
	int fd;          /* its file, -1 when none */
	/* the store reads of the next messages (fetch_read): pre[pre_pos..pre_count) */
	struct fetch_pre *pre;
	size_t pre_pos, pre_count;
	struct imap_session *s;
	struct fetch_span spans[16];
	struct imap_fetch_body body;
	struct imap_fetch_chunk chunk;
};

/* The file octets a BODY[section] names (RFC 9051 §6.4.5), into sp (a range, or for
 * HEADER.FIELDS octets in memory). A part that does not exist is empty (as Dovecot
 * answers). */
static void fetch_section_span(const unsigned char *data, const struct mime_part *root,
                               const struct fetch_item *it, struct fetch_span *sp)
{
	if (root == NULL)
		return;
	const struct mime_part *p =
	    it->section[0] != '\0' ? mime_part_find(root, it->section) : root;
	if (p == NULL)
		return;
	if (it->sec == SEC_FULL || it->sec == SEC_MIME) {
		sp->off = it->sec == SEC_FULL ? p->body_start : p->header_start;
		sp->len = it->sec == SEC_FULL ? p->body_len : p->header_len;
		return;
	}
	/* HEADER, TEXT, HEADER.FIELDS of a part are those of its encapsulated message. */
	const struct mime_part *msg = it->section[0] == '\0'         ? root
	                              : p->kind == MIME_KIND_MESSAGE ? p->message
	                                                             : NULL;
	if (msg == NULL)
		return;
	if (it->sec == SEC_HEADER || it->sec == SEC_TEXT) {
		sp->off = it->sec == SEC_HEADER ? msg->header_start : msg->body_start;
		sp->len = it->sec == SEC_HEADER ? msg->header_len : msg->body_len;
		return;
	}
	struct buf fields;
	buf_init(&fields, msg->header_len + 3);
	struct mime_field_iter iter;
	struct mime_field f;
	mime_field_iter_init(&iter, data, msg->header_start, msg->header_start + msg->header_len);
	int r = 0;
	while (mime_field_iter_next(&iter, &f)) {
		if (!f.has_colon)
			continue;
		if (fetch_field_listed(data, &f, it) == (it->sec == SEC_FIELDS))
			r |= buf_append(&fields, data + f.start, f.len);
	}
	r |= buf_append(&fields, "\r\n", 2);
	(void)r; /* sized for the whole header */
	sp->mem = xmalloc(fields.len + 1);
	memcpy(sp->mem, fields.data, fields.len);
	sp->len = fields.len;
	buf_free(&fields);
}

/* <partial> over n octets (RFC 9051 §6.4.5): what to skip and what to send. */
static void fetch_window(const struct fetch_item *it, uint64_t n, struct fetch_span *sp)
{
	sp->skip = 0;
	sp->send = n;
	if (!it->partial)
		return;
	sp->skip = it->offset < n ? it->offset : n;
	sp->send = n - sp->skip;
	if (sp->send > it->length)
		sp->send = it->length;
}

/* BINARY[section] and BINARY.SIZE (RFC 3516 §4.2): "" is the whole message as stored, a leaf
 * part its body decoded by its Content-Transfer-Encoding, a multipart or message/rfc822
 * part as it is; a part that does not exist is empty. The decoded size (and whether the sent
 * octets hold a NUL) comes from a decoding pass that keeps nothing. 0, -1 UNKNOWN-CTE, -2
 * the file could not be read. */
static int fetch_binary_span(struct fetch_op *o, uint64_t file_size, const struct mime_part *root,
                             const struct fetch_item *it, struct fetch_span *sp, uint64_t *read)
{
	sp->cte = MIME_ENCODING_BINARY;
	sp->size_only = it->binary == BIN_SIZE;
	if (it->section[0] == '\0') {
		sp->len = file_size;
	} else {
		const struct mime_part *p = root != NULL ? mime_part_find(root, it->section) : NULL;
		if (p != NULL) {
			sp->off = p->body_start;
			sp->len = p->body_len;
			if (p->kind == MIME_KIND_LEAF) {
				if (p->cte == MIME_ENCODING_OTHER)
					return -1;
				sp->cte = p->cte;
				sp->decode = p->cte == MIME_ENCODING_BASE64 ||
				             p->cte == MIME_ENCODING_QUOTED_PRINTABLE;
			}
		}
	}
	if (!sp->decode) {
		fetch_window(it, sp->len, sp);
		sp->size = sp->len;
		if (sp->size_only)
			return 0;
	}
	/* One pass: the decoded size, and a NUL in the window (known once the size is). */
	uint64_t win_off = it->partial ? it->offset : 0;
	uint64_t win_len = sp->size_only ? 0 : it->partial ? it->length : UINT64_MAX;
	uint64_t size;
	bool nul;
	if (imap_fetch_body_measure(o->fd, sp->off, sp->len, sp->cte, win_off, win_len, &o->chunk,
	                            &size, &nul, read) < 0)
		return -2;
	sp->size = size;
	sp->literal8 = nul;
	fetch_window(it, size, sp);
	return 0;
}

static void fetch_spans_free(struct fetch_op *o)
{
	for (size_t i = 0; i < o->req.item_count; i++) {
		free(o->spans[i].mem);
		o->spans[i].mem = NULL;
	}
	if (o->fd >= 0)
		close(o->fd);
	o->fd = -1;
}

/* Work out every item's span for the current message (data: the mapped file, or NULL). 0,
 * -1 UNKNOWN-CTE, -2 read error. */
static int fetch_spans(struct fetch_op *o, const unsigned char *data, uint64_t size,
                       const struct mime_part *root, uint64_t *read)
{
	size_t hlen = 0;
	if (data != NULL && fetch_needs_split(&o->req))
		fetch_split(data, (size_t)size, &hlen);
	for (size_t i = 0; i < o->req.item_count; i++) {
		const struct fetch_item *it = &o->req.items[i];
		struct fetch_span *sp = &o->spans[i];
		memset(sp, 0, sizeof(*sp));
		if (o->fd < 0) {
			sp->nil = true;
			continue;
		}
		if (it->binary != BIN_NONE) {
			int r = fetch_binary_span(o, size, root, it, sp, read);
			if (r < 0)
				return r;
			continue;
		}
		if (it->part == PART_ALL) {
			sp->len = size;
		} else if (it->part == PART_HEADER) {
			sp->len = hlen;
		} else if (it->part == PART_TEXT) {
			sp->off = hlen;
			sp->len = size - hlen;
		} else if (data != NULL) {
			fetch_section_span(data, root, it, sp);
		}
		fetch_window(it, sp->len, sp);
	}
	return 0;
}

/* The simple items of one message's response into b. with_flags: this FETCH set \Seen,
 * so FLAGS goes out, and for a CONDSTORE-aware session UID and MODSEQ too (RFC 7162
 * §3.1). */
static int fetch_simple_items(struct imap_session *s, const struct fetch_req *req,
                              const struct imap_msg *m, bool with_flags, struct buf *b,
                              const char **sep)
{
	int r = 0;
	bool implied = with_flags && s->condstore;
	if (req->uid || (implied && !s->uidonly)) { /* UIDFETCH leads with the UID */
		r |= buf_puts(b, "UID ");
		r |= buf_put_u64(b, m->uid);
		*sep = " ";
	}
	if (req->flags || with_flags) {
		r |= buf_puts(b, *sep);
		r |= buf_puts(b, "FLAGS (");
		imap_session_flags_text(s, b, m);
		r |= buf_puts(b, ")");
		*sep = " ";
	}
	if (req->size) {
		r |= buf_puts(b, *sep);
		r |= buf_puts(b, "RFC822.SIZE ");
		r |= buf_put_u64(b, m->size);
		*sep = " ";
	}
	if (req->date) {
		char date[DATE_IMAP_MAX];
		date_imap(m->date, date);
		r |= buf_printf(b, "%sINTERNALDATE \"%s\"", *sep, date);
		*sep = " ";
	}
	if (req->modseq || implied) {
		r |= buf_printf(b, "%sMODSEQ (%llu)", *sep, (unsigned long long)m->modseq);
		*sep = " ";
	}
	if (req->savedate) { /* RFC 8514 §4.1: the same format as INTERNALDATE */
		char date[DATE_IMAP_MAX];
		date_imap(m->save_date, date);
		r |= buf_printf(b, "%sSAVEDATE \"%s\"", *sep, date);
		*sep = " ";
	}
	if (req->threadid) { /* RFC 8474 §5.2: no thread ids here */
		r |= buf_printf(b, "%sTHREADID NIL", *sep);
		*sep = " ";
	}
	return r;
}

/* EMAILID and PREVIEW of one message (p: what the store has; data: the mapped message
 * when the preview has to be computed, root its MIME tree when parsed). */
static int fetch_objects(struct arena *tmp, const struct fetch_req *req, struct fetch_pre *p,
                         const unsigned char *data, size_t len, const struct mime_part **root,
                         struct buf *b, const char **sep)
{
	int r = 0;
	if (req->emailid) {
		r |= buf_printf(b, "%sEMAILID (%s)", *sep, p->obj.emailid);
		*sep = " ";
	}
	if (req->preview) {
		const char *text = p->obj.preview;
		if (text == NULL && !req->preview_lazy && data != NULL) {
			if (*root == NULL) {
				struct mime_part *tree;
				struct mime_limits limits = {0};
				if (mime_parse(tmp, data, len, &limits, &tree) >= -1)
					*root = tree;
			}
			if (*root != NULL)
				text = mime_preview(tmp, data, len, *root);
		}
		if (text == NULL && !req->preview_lazy && len == 0)
			text = "";
		r |= buf_printf(b, "%sPREVIEW ", *sep);
		if (text == NULL)
			r |= buf_puts(b, "NIL"); /* LAZY (RFC 8970 §3.2): not computed now */
		else
			imap_quote(b, text);
		*sep = " ";
	}
	free(p->obj.preview);
	p->obj.preview = NULL;
	return r;
}

static bool fetch_was_unseen(const struct fetch_op *o, uint32_t uid)
{
	for (size_t lo = 0, hi = o->unseen_count; lo < hi;) {
		size_t mid = lo + (hi - lo) / 2;
		if (o->unseen[mid] == uid)
			return true;
		if (o->unseen[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Does the answer read the message (file or summary) from the store? */
static bool fetch_reads(const struct fetch_req *req)
{
	return req->item_count > 0 || req->envelope || req->bodystructure || req->body ||
	       req->emailid || req->preview;
}

/* Messages whose store reads one queued read does (store_reads_wait()): few round trips,
 * and at most this many open files and summaries held ahead of the output. */
#define FETCH_READ_BATCH 32

static void fetch_pre_release(struct fetch_op *o)
{
	for (size_t i = o->pre_pos; i < o->pre_count; i++) {
		struct fetch_pre *p = &o->pre[i];
		if (p->fd >= 0)
			close(p->fd);
		free(p->env);
		free(p->body);
		free(p->bs);
		free(p->obj.preview);
	}
	o->pre_pos = o->pre_count = 0;
}

/* What the answer reads of a message (p: its cached summary), so that a body kept in
 * chunk rows is fetched only that far: NULL all of it. The header suffices for the
 * message's own header items and a computed ENVELOPE (the MIME parse of the rest may then
 * see zeros, but the root's header is all they use); a <partial> of BODY[] reads its
 * window. Anything else reads all. */
static const struct store_want *fetch_want(const struct fetch_req *req, const struct fetch_pre *p,
                                           struct store_want *w)
{
	*w = (struct store_want){0};
	if ((req->body && p->body == NULL) || (req->bodystructure && p->bs == NULL) ||
	    (req->preview && !req->preview_lazy && p->obj.preview == NULL))
		return NULL;
	w->header = req->envelope && p->env == NULL;
	for (size_t i = 0; i < req->item_count; i++) {
		const struct fetch_item *it = &req->items[i];
		bool top_header =
		    it->part == PART_HEADER ||
		    (it->part == PART_SECTION && it->section[0] == '\0' &&
		     (it->sec == SEC_HEADER || it->sec == SEC_FIELDS || it->sec == SEC_FIELDS_NOT));
		if (it->binary != BIN_NONE ||
		    (!top_header && (it->part != PART_ALL || !it->partial)))
			return NULL;
		if (top_header) {
			w->header = true;
			continue;
		}
		/* Several windows: the range that covers them all. */
		uint64_t end =
		    it->length > UINT64_MAX - it->offset ? UINT64_MAX : it->offset + it->length;
		uint64_t lo = w->len == 0 || it->offset < w->off ? it->offset : w->off;
		uint64_t hi = w->len != 0 && w->off + w->len > end ? w->off + w->len : end;
		w->off = lo;
		w->len = hi - lo;
	}
	return w;
}

/* Octets of messages one batch opens ahead: a body kept in chunk rows is copied into a
 * temporary file when opened, so a batch of large ones ends early. */
#define FETCH_READ_AHEAD ((uint64_t)8 * 1024 * 1024)

/* Off the loop where reads wait: summarize and open the batch's messages (fewer when they
 * are large: the step asks for the rest when it gets there). */
static void fetch_read(void *ctx)
{
	struct fetch_op *o = ctx;
	struct imap_session *s = o->s;
	bool summary = o->req.envelope || o->req.bodystructure || o->req.body;
	uint64_t ahead = 0;
	for (size_t i = 0; i < o->pre_count; i++) {
		if (ahead >= FETCH_READ_AHEAD) {
			o->pre_count = i;
			break;
		}
		struct fetch_pre *p = &o->pre[i];
		if (summary && store_message_summary(s->server->store, s->mailbox_owner, s->mailbox,
		                                     p->uid, &p->env, &p->body, &p->bs) != 1)
			p->env = p->body = p->bs = NULL;
		if ((o->req.emailid || o->req.preview) &&
		    store_message_objects(s->server->store, s->mailbox_owner, s->mailbox, p->uid,
		                          &p->obj) != 1) {
			p->open_r = 0; /* gone meanwhile */
			p->fd = -1;
			free(p->env);
			free(p->body);
			free(p->bs);
			p->env = p->body = p->bs = NULL;
			continue;
		}
		struct store_want w;
		const struct store_want *want = fetch_want(&o->req, p, &w);
		p->open_r = store_message_open_want(s->server->store, s->mailbox_owner, s->mailbox,
		                                    p->uid, want, &p->fd, &p->size);
		/* What was read: a header is about one chunk at most. */
		if (p->open_r == 1 && want == NULL)
			ahead += p->size;
		else if (p->open_r == 1)
			ahead +=
			    (w.len < p->size ? w.len : p->size) + (w.header ? STORE_CHUNK_SIZE : 0);
		if (p->open_r != 1) {
			p->fd = -1;
			free(p->env);
			free(p->body);
			free(p->bs);
			free(p->obj.preview);
			p->env = p->body = p->bs = NULL;
			p->obj.preview = NULL;
		}
	}
}

static void fetch_read_done(struct imap_session *s, void *ctx)
{
	(void)s;
	(void)ctx; /* the step goes on, or the session ends and frees the op */
}

/* The reads of the next messages from o->next on: one message in place when reads never
 * wait, else a batch off the loop. false: the read is out (the step waits for it). */
static bool fetch_prefetch(struct imap_session *s, struct fetch_op *o)
{
	fetch_pre_release(o);
	size_t n = store_reads_wait(s->server->store) ? FETCH_READ_BATCH : 1;
	if (n > o->count - o->next)
		n = o->count - o->next;
	if (o->pre == NULL)
		o->pre = xcalloc(FETCH_READ_BATCH, sizeof(*o->pre));
	for (size_t i = 0; i < n; i++)
		o->pre[i] =
		    (struct fetch_pre){.uid = s->msgs[o->seqs[o->next + i] - 1].uid, .fd = -1};
	o->pre_count = n;
	o->s = s;
	return imap_session_read(s, fetch_read, fetch_read_done, o);
}

/* Begin the next message's response: everything but the literals, which stream after it.
 * The file is mapped (never read into memory) only while the MIME structure or the header
 * end is looked for, and unmapped before anything is sent. 0, -1 a BINARY item names a part
 * that cannot be decoded (nothing was sent: the command fails with UNKNOWN-CTE), -2 the file
 * could not be read, 1 the message is gone (nothing was sent). */
static int fetch_msg_begin(struct imap_session *s, struct fetch_op *o, uint64_t *read)
{
	uint32_t seq = o->seqs[o->next];
	const struct imap_msg *m = &s->msgs[seq - 1];
	const struct fetch_req *req = &o->req;
	bool with_flags =
	    o->unseen_count > 0 && (m->flags & STORE_FLAG_SEEN) && fetch_was_unseen(o, m->uid);
	uint64_t size = 0;
	o->fd = -1;
	struct fetch_pre none = {.fd = -1}, *p = &none;
	if (fetch_reads(req)) {
		p = &o->pre[o->pre_pos++];
		ASSERT(p->uid == m->uid);
		if (p->open_r != 1)
			return 1;
		o->fd = p->fd;
		p->fd = -1;
		size = p->size;
	}
	unsigned char *data = NULL;
	if (o->fd >= 0 && size > 0 && size <= SIZE_MAX &&
	    (fetch_needs_tree(req) || fetch_needs_split(req) || req->envelope ||
	     req->bodystructure || req->body ||
	     (req->preview && !req->preview_lazy && p->obj.preview == NULL))) {
		void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, o->fd, 0);
		if (map != MAP_FAILED)
			data = map;
	}
	struct arena *tmp = arena_new(16384); /* this message's MIME tree and texts */
	const struct mime_part *root = NULL;
	if (data != NULL && fetch_needs_tree(req)) {
		struct mime_part *tree;
		struct mime_limits limits = {0};
		if (mime_parse(tmp, data, (size_t)size, &limits, &tree) >= -1)
			root = tree;
	}
	struct buf b;
	buf_init(&b, (size_t)64 * 1024 * 1024);
	const char *sep = "";
	int r = imap_session_fetch_head(s, &b, (long)seq - 1);
	r |= fetch_simple_items(s, req, m, with_flags, &b, &sep);
	r |= fetch_structure(tmp, req, p, data, (size_t)size, &root, &b, &sep);
	r |= fetch_objects(tmp, req, p, data, (size_t)size, &root, &b, &sep);
	int ok = fetch_spans(o, data, size, root, read);
	if (data != NULL) {
		munmap(data, (size_t)size);
		*read += size;
	}
	arena_free(&tmp);
	if (ok == 0 && r == 0)
		conn_write(s->conn, b.data, b.len);
	buf_free(&b);
	if (ok < 0 || r != 0) {
		fetch_spans_free(o);
		return ok < 0 ? ok : -2;
	}
	o->sep = sep;
	o->in_msg = true;
	o->item = 0;
	return 0;
}

/* Octets of response lines one write of fetch_simple_batch() carries. */
#define FETCH_BATCH_OCTETS 65536

/* A FETCH that reads nothing (FLAGS, UID, RFC822.SIZE, INTERNALDATE, MODSEQ): the next
 * messages' whole lines into one buffer and one write, until it holds FETCH_BATCH_OCTETS
 * (a Thunderbird flag sync of 100,000 messages is this). */
static void fetch_simple_batch(struct imap_session *s, struct fetch_op *o)
{
	struct buf b;
	buf_init(&b, FETCH_BATCH_OCTETS + 64 * 1024);
	int r = 0;
	while (o->next < o->count && b.len < FETCH_BATCH_OCTETS && r == 0) {
		uint32_t seq = o->seqs[o->next++];
		const struct imap_msg *m = &s->msgs[seq - 1];
		bool with_flags = o->unseen_count > 0 && (m->flags & STORE_FLAG_SEEN) &&
		                  fetch_was_unseen(o, m->uid);
		const char *sep = "";
		if (s->uidonly) { /* RFC 9586 §3.3 */
			r |= buf_puts(&b, "* ");
			r |= buf_put_u64(&b, m->uid);
			r |= buf_puts(&b, " UIDFETCH (");
		} else {
			r |= buf_puts(&b, "* ");
			r |= buf_put_u64(&b, seq);
			r |= buf_puts(&b, " FETCH (");
		}
		r |= fetch_simple_items(s, &o->req, m, with_flags, &b, &sep);
		r |= buf_append(&b, ")\r\n", 3);
	}
	ASSERT(r == 0); /* a line is far below the slack */
	conn_write(s->conn, b.data, b.len);
	buf_free(&b);
}

/* Begin the current item: its name and NIL, a number, or a literal's announcement. */
static void fetch_item_begin(struct imap_session *s, struct fetch_op *o)
{
	const struct fetch_item *it = &o->req.items[o->item];
	const struct fetch_span *sp = &o->spans[o->item];
	const char *sep = o->sep;
	o->sep = " ";
	if (sp->nil) {
		conn_printf(s->conn, "%s%s NIL", sep, it->label);
		o->item++;
		return;
	}
	if (sp->size_only) {
		conn_printf(s->conn, "%s%s %llu", sep, it->label, (unsigned long long)sp->size);
		o->item++;
		return;
	}
	conn_printf(s->conn, "%s%s %s{%llu}\r\n", sep, it->label, sp->literal8 ? "~" : "",
	            (unsigned long long)sp->send);
	if (sp->mem != NULL)
		imap_fetch_body_init_mem(&o->body, (const unsigned char *)sp->mem + sp->skip,
		                         sp->send);
	else
		imap_fetch_body_init(&o->body, o->fd, sp->off, sp->len, sp->decode, sp->cte,
		                     it->binary == BIN_NONE, sp->skip, sp->send);
	o->in_body = true;
}

/* Octets read from message files in one step before it yields to other sessions. */
#define FETCH_STEP_READ_MAX ((uint64_t)4 * 1024 * 1024)

/* One step of the answer (imap_session_run): message after message, literal chunk after
 * chunk, until the client's output is full or this step has read enough; NO
 * [UNKNOWN-CTE] (RFC 3516 §4.4) stops at the first message with a BINARY part that cannot
 * be decoded. */
static enum imap_step fetch_step(struct imap_session *s, void *op)
{
	struct fetch_op *o = op;
	uint64_t read = 0;
	for (;;) {
		if (s->closed || s->io == IMAP_IO_CLOSING)
			return IMAP_STEP_DONE;
		if (o->in_body) {
			int r = imap_fetch_body_pump(&o->body, s->conn, &o->chunk, &read);
			if (r == 0)
				return IMAP_STEP_MORE;
			if (r < 0) {
				IMAP_LOG(s,
				         "event=fetch result=fail error=\"message file unreadable\""
				         " seq=%u",
				         o->seqs[o->next]);
				imap_session_close(s, "Internal error reading a message");
				return IMAP_STEP_DONE;
			}
			o->in_body = false;
			o->item++;
		}
		if (o->in_msg) {
			if (o->item < o->req.item_count) {
				fetch_item_begin(s, o);
				continue;
			}
			conn_write(s->conn, ")\r\n", 3);
			fetch_spans_free(o);
			o->in_msg = false;
			o->next++;
			continue;
		}
		if (o->next == o->count) {
			if (o->tag == NULL) /* NOTIFY's FETCH of new messages: untagged only */
				return IMAP_STEP_DONE;
			if (o->gone)
				imap_tagged(s, o->tag, "NO",
				            "[EXPUNGEISSUED] Some of the requested "
				            "messages no longer exist");
			else
				imap_tagged(s, o->tag, "OK", "%s completed", o->name);
			return IMAP_STEP_DONE;
		}
		if (conn_output_full(s->conn) || read >= FETCH_STEP_READ_MAX)
			return IMAP_STEP_MORE;
		if (!fetch_reads(&o->req)) {
			fetch_simple_batch(s, o);
			continue;
		}
		if (o->pre_pos == o->pre_count && !fetch_prefetch(s, o))
			return IMAP_STEP_WAIT;
		int r = fetch_msg_begin(s, o, &read);
		if (r == 1) {
			/* Expunged by another session and not yet reported here: RFC 2180
			 * §4.1.2, no response for it, and the command ends with NO
			 * [EXPUNGEISSUED] (as Dovecot does). */
			o->gone = true;
			o->next++;
			continue;
		}
		if (r == -1) {
			imap_tagged(s, o->tag, "NO",
			            "[UNKNOWN-CTE] Can't decode the part's "
			            "Content-Transfer-Encoding");
			return IMAP_STEP_DONE;
		}
		if (r < 0) {
			IMAP_LOG(s,
			         "event=fetch result=fail error=\"message file unreadable\" seq=%u",
			         o->seqs[o->next]);
			imap_tagged(s, o->tag, "NO", "[UNAVAILABLE] Can't read a message");
			return IMAP_STEP_DONE;
		}
	}
}

static void fetch_op_free(void *op)
{
	struct fetch_op *o = op;
	fetch_spans_free(o);
	fetch_pre_release(o);
	free(o->pre);
	imap_fetch_chunk_deinit(&o->chunk);
	free(o->seqs);
	free(o->unseen);
	free(o->unseen_modseq);
	free(o->mailbox);
	free(o->name);
	free(o->tag);
	arena_free(&o->keep);
	free(o);
}

/* On the writer thread: the MODSEQ \Seen gave each message (o is not touched on the loop
 * meanwhile: input waits for the operation). */
static void fetch_seen_entry(void *ctx, const struct store_flags_entry *e)
{
	struct fetch_op *o = ctx;
	size_t lo = 0, hi = o->unseen_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (o->unseen[mid] == e->uid) {
			o->unseen_modseq[mid] = e->changed ? e->modseq : 0;
			return;
		}
		if (o->unseen[mid] < e->uid)
			lo = mid + 1;
		else
			hi = mid;
	}
}

static void fetch_seen_cb(struct store_flags *op, void *ctx)
{
	(void)op;
	imap_session_op_finished(ctx);
}

static void fetch_seen_done(struct imap_session *s)
{
	struct fetch_op *o = s->op;
	s->op = NULL;
	if (s->closed) {
		fetch_op_free(o);
		return;
	}
	/* The view takes \Seen so the next sync does not report it again; a failure leaves
	 * the flags alone and the data still goes out. */
	if (o->op.result == 0) {
		for (size_t i = 0; i < o->unseen_count; i++) {
			long idx = cmd_store_view_find(s, o->unseen[i]);
			if (idx < 0)
				continue;
			s->msgs[idx].flags |= STORE_FLAG_SEEN;
			if (o->unseen_modseq[i] != 0)
				s->msgs[idx].modseq = o->unseen_modseq[i];
		}
		if (o->op.modseq != 0 && o->op.modseq == s->highestmodseq + 1)
			s->highestmodseq = o->op.modseq;
	} else {
		IMAP_LOG(s, "event=fetch-seen result=fail error=\"%s\"", o->op.error);
	}
	imap_session_run(s, fetch_step, fetch_op_free, o);
}

/* The answer outlives the command's arena (it runs in steps): the operation keeps its own
 * copies of the labels, sections and field names. */
static void fetch_op_keep(struct fetch_op *o)
{
	o->fd = -1;
	imap_fetch_chunk_init(&o->chunk);
	o->keep = arena_new(4096);
	for (size_t i = 0; i < o->req.item_count; i++) {
		struct fetch_item *it = &o->req.items[i];
		it->label = arena_strdup(o->keep, it->label);
		if (it->section != NULL)
			it->section = arena_strdup(o->keep, it->section);
		if (it->field_count > 0) {
			const char **f = arena_alloc(o->keep, it->field_count * sizeof(char *));
			for (size_t k = 0; k < it->field_count; k++)
				f[k] = arena_strdup(o->keep, it->fields[k]);
			it->fields = f;
		}
	}
}

/* NOTIFY's fetch-att atoms into req (in arena); false when FETCH would refuse one.
 * PREVIEW's (LAZY) list is not taken here. */
static bool fetch_atts_req(struct arena *arena, const char *const *atts, size_t count,
                           struct fetch_req *req)
{
	*req = (struct fetch_req){.uid = false};
	for (size_t i = 0; i < count; i++)
		if (!fetch_add(req, atts[i], arena))
			return false;
	return true;
}

bool cmd_fetch_atts_valid(const char *const *atts, size_t count)
{
	struct arena *a = arena_new(4096);
	struct fetch_req req;
	bool ok = fetch_atts_req(a, atts, count, &req);
	arena_free(&a);
	return ok;
}

void cmd_fetch_untagged(struct imap_session *s, const char *const *atts, size_t count,
                        uint32_t from, uint32_t to)
{
	struct arena *a = arena_new(4096);
	struct fetch_op *o = xcalloc(1, sizeof(*o));
	if (!fetch_atts_req(a, atts, count, &o->req) || from == 0 || to > s->count || from > to) {
		arena_free(&a);
		free(o);
		return;
	}
	/* No \Seen from a notification: the client did not ask for the message. */
	o->req.seen = false;
	for (size_t i = 0; i < o->req.item_count; i++)
		o->req.items[i].seen = false;
	if (o->req.modseq)
		(void)imap_session_condstore_enable(s);
	o->seqs = xmalloc((size_t)(to - from + 1) * sizeof(*o->seqs));
	for (uint32_t seq = from; seq <= to; seq++)
		o->seqs[o->count++] = seq;
	o->name = xstrdup("FETCH");
	fetch_op_keep(o);
	arena_free(&a);
	imap_session_run(s, fetch_step, fetch_op_free, o);
}

/* The fetch modifiers (RFC 4466 §2.4): CHANGEDSINCE n (RFC 7162 §3.1.4.1, n a
 * mod-sequence-value, not 0) and VANISHED (§3.2.6), each at most once. */
static bool fetch_modifiers(const struct imap_arg *list, uint64_t *since_r, bool *vanished_r)
{
	if (list->type != IMAP_ARG_LIST || list->list[0].type == IMAP_ARG_EOL)
		return false;
	for (const struct imap_arg *m = list->list; m->type != IMAP_ARG_EOL; m++) {
		if (m->type != IMAP_ARG_ATOM)
			return false;
		if (strcasecmp(m->str, "VANISHED") == 0 && !*vanished_r) {
			*vanished_r = true;
		} else if (strcasecmp(m->str, "CHANGEDSINCE") == 0 && *since_r == 0 &&
		           imap_commands_modseq(&m[1], false, since_r)) {
			m++;
		} else {
			return false;
		}
	}
	return true;
}

/* UID FETCH ... (CHANGEDSINCE n VANISHED) between its tombstone read and its answer. */
struct fetch_vanished {
	struct fetch_op *o;
	uint64_t since;
	struct imap_seqset_range *ranges; /* the UID set, resolved */
	size_t range_count;
	uint32_t *uids; /* tombstones in the set newer than since, ascending */
	size_t count, cap;
	bool saved;   /* the set is "$" (RFC 5182) */
	uint32_t top; /* the highest UID the set reaches */
	bool full;    /* since is below the tombstone floor: every UID of the set that is gone */
	int r;
};

static void fetch_vanished_cb(void *ctx, uint32_t uid, uint64_t modseq)
{
	(void)modseq;
	struct fetch_vanished *v = ctx;
	size_t lo = 0, hi = v->range_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (uid < v->ranges[mid].lo)
			hi = mid;
		else if (uid > v->ranges[mid].hi)
			lo = mid + 1;
		else
			break;
	}
	if (lo >= hi)
		return;
	if (v->count == v->cap) {
		v->cap = v->cap == 0 ? 64 : 2 * v->cap;
		v->uids = xrealloc(v->uids, v->cap * sizeof(*v->uids));
	}
	v->uids[v->count++] = uid;
}

static void fetch_vanished_read(void *ctx)
{
	struct fetch_vanished *v = ctx;
	struct imap_session *s = v->o->s;
	struct store_mailbox_status st;
	v->r = store_mailbox_changes(s->server->store, s->mailbox_owner, s->mailbox, v->since, NULL,
	                             fetch_vanished_cb, v, &st);
	/* Tombstones up to the floor may be pruned (imap_expunge_retention): the list is
	 * complete only for a CHANGEDSINCE not below it. */
	v->full = v->r == 1 && st.tombstone_floor > v->since;
}

/* RFC 7162 §3.2.6 for a CHANGEDSINCE older than the tombstones kept: every UID of the set
 * (up to the highest the session knows of) that is not in the view. */
static void fetch_vanished_full(struct imap_session *s, struct fetch_vanished *v)
{
	if (!v->saved) {
		imap_session_send_vanished_absent(s, v->ranges, v->range_count, v->top);
		return;
	}
	const uint32_t *uids;
	size_t n, k = 0;
	cmd_search_saved_get(s, &uids, &n);
	struct imap_seqset_range *r = xmalloc((n + 1) * sizeof(*r));
	for (size_t i = 0; i < n; i++) {
		if (k > 0 && uids[i] == r[k - 1].hi + 1)
			r[k - 1].hi = uids[i];
		else
			r[k++] = (struct imap_seqset_range){uids[i], uids[i]};
	}
	imap_session_send_vanished_absent(s, r, k, v->top);
	free(r);
}

static void fetch_start(struct imap_session *s, struct fetch_op *o);

/* RFC 7162 §3.2.6: "* VANISHED (EARLIER)" before the FETCH responses, for the UIDs of the
 * set expunged after CHANGEDSINCE. UIDs still in the view (expunged meanwhile, not yet
 * reported: no expunge may be sent during FETCH) are left to the next VANISHED. */
static void fetch_vanished_done(struct imap_session *s, void *ctx)
{
	struct fetch_vanished *v = ctx;
	struct fetch_op *o = v->o;
	if (s->closed) {
		fetch_op_free(o);
	} else if (v->r != 1) {
		imap_tagged(s, o->tag, "NO", "[UNAVAILABLE] %s failed", o->name);
		fetch_op_free(o);
	} else if (v->full) {
		fetch_vanished_full(s, v);
		fetch_start(s, o);
	} else {
		size_t n = 0;
		for (size_t i = 0; i < v->count; i++)
			if (cmd_store_view_find(s, v->uids[i]) < 0 &&
			    (!v->saved || cmd_search_saved_contains(s, v->uids[i])))
				v->uids[n++] = v->uids[i];
		imap_session_send_vanished(s, true, v->uids, n);
		fetch_start(s, o);
	}
	free(v->ranges);
	free(v->uids);
	free(v);
}

/* RFC 8970 §3: PREVIEW's modifiers, a list of which LAZY is the only one defined. */
static bool fetch_preview_mods(struct fetch_req *req, const struct imap_arg *list)
{
	if (list->type != IMAP_ARG_LIST || list->list[0].type == IMAP_ARG_EOL)
		return false;
	for (const struct imap_arg *m = list->list; m->type != IMAP_ARG_EOL; m++) {
		if (m->type != IMAP_ARG_ATOM || strcasecmp(m->str, "LAZY") != 0)
			return false;
		req->preview_lazy = true;
	}
	return true;
}

void cmd_fetch(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const struct imap_arg *a = cmd->args;
	struct imap_seqset *set;
	const char *error;
	size_t n = imap_parser_arg_count(a);
	uint64_t since = 0;
	bool vanished = false;
	/* "FETCH set PREVIEW (LAZY)" (RFC 8970 §3): a list after a lone PREVIEW is its
	 * modifiers; fetch modifiers may follow them. */
	bool preview_mods = n >= 3 && a[1].type == IMAP_ARG_ATOM &&
	                    strcasecmp(a[1].str, "PREVIEW") == 0 && a[2].type == IMAP_ARG_LIST &&
	                    a[2].list[0].type == IMAP_ARG_ATOM &&
	                    strcasecmp(a[2].list[0].str, "LAZY") == 0;
	size_t mod = preview_mods ? 3 : 2;
	if (n < 2 || n > mod + 1 || a[0].type != IMAP_ARG_ATOM ||
	    imap_seqset_parse(s->cmd, a[0].str, &set, &error) < 0 ||
	    (n == mod + 1 && !fetch_modifiers(&a[mod], &since, &vanished))) {
		imap_tagged(s, cmd->tag, "BAD",
		            "Syntax: FETCH sequence-set items [(CHANGEDSINCE modseq [VANISHED])]");
		return;
	}
	/* RFC 7162 §3.2.6: VANISHED only in UID FETCH, with CHANGEDSINCE, after ENABLE
	 * QRESYNC; else BAD. */
	if (vanished && (!cmd->uid || since == 0 || !s->qresync)) {
		imap_tagged(s, cmd->tag, "BAD",
		            !s->qresync ? "QRESYNC was not enabled (ENABLE QRESYNC)"
		                        : "VANISHED needs UID FETCH and CHANGEDSINCE");
		return;
	}
	/* RFC 9586 §3.3: a UIDFETCH response names the UID already; the UID item only when
	 * asked for */
	struct fetch_req req = {.uid = cmd->uid && !s->uidonly};
	bool ok = true;
	if (a[1].type == IMAP_ARG_ATOM) {
		ok = fetch_add(&req, a[1].str, s->cmd);
		if (ok && preview_mods)
			ok = fetch_preview_mods(&req, &a[2]);
	} else if (a[1].type == IMAP_ARG_LIST) {
		for (const struct imap_arg *it = a[1].list; ok && it->type != IMAP_ARG_EOL; it++) {
			ok = it->type == IMAP_ARG_ATOM && fetch_add(&req, it->str, s->cmd);
			if (ok && strcasecmp(it->str, "PREVIEW") == 0 &&
			    it[1].type == IMAP_ARG_LIST)
				ok = fetch_preview_mods(&req, ++it);
		}
	} else {
		ok = false;
	}
	if (!ok) {
		imap_tagged(s, cmd->tag, "BAD", "Unsupported or invalid FETCH item");
		return;
	}
	if (since != 0)
		req.modseq = true; /* RFC 7162 §3.1.4.1 */
	if (req.modseq)
		(void)imap_session_condstore_enable(s); /* RFC 7162 §3.1 */
	if (s->count == 0 && !cmd->uid) {
		imap_tagged(s, cmd->tag, "BAD", "No messages");
		return;
	}
	/* A sequence number beyond the mailbox is an error, as for STORE (RFC 9051 §9). */
	if (!cmd->uid && !imap_seqset_is_saved(set) && set->count > 0 &&
	    set->ranges[set->count - 1].hi > s->count) {
		imap_tagged(s, cmd->tag, "BAD", "Invalid sequence number");
		return;
	}
	uint32_t star = cmd->uid ? (s->count > 0 ? s->msgs[s->count - 1].uid : 0) : s->count;
	struct fetch_op *o = xcalloc(1, sizeof(*o));
	o->seqs = xmalloc(((size_t)s->count + 1) * sizeof(*o->seqs));
	o->unseen = xmalloc(((size_t)s->count + 1) * sizeof(*o->unseen));
	for (uint32_t i = 0; i < s->count; i++) {
		uint32_t key = cmd->uid ? s->msgs[i].uid : i + 1;
		if (imap_seqset_is_saved(set) ? !cmd_search_saved_contains(s, s->msgs[i].uid)
		                              : !imap_seqset_contains(set, key, star))
			continue;
		if (s->msgs[i].modseq <= since) /* CHANGEDSINCE: only what changed after it */
			continue;
		o->seqs[o->count++] = i + 1;
		if (req.seen && !s->read_only && (s->rights & STORE_ACL_SEEN) &&
		    !(s->msgs[i].flags & STORE_FLAG_SEEN))
			o->unseen[o->unseen_count++] = s->msgs[i].uid;
	}
	size_t limited = o->count;
	if (imap_session_message_limit(s, cmd->tag, cmd->uid, &limited) < 0) {
		free(o->seqs);
		free(o->unseen);
		free(o);
		return;
	}
	if (limited < o->count) { /* the lowest UIDs: drop the rest, also from unseen */
		uint32_t last = s->msgs[o->seqs[limited - 1] - 1].uid;
		o->count = limited;
		while (o->unseen_count > 0 && o->unseen[o->unseen_count - 1] > last)
			o->unseen_count--;
	}
	o->req = req;
	o->name = xstrdup(cmd->name);
	o->tag = xstrdup(cmd->tag);
	fetch_op_keep(o);
	if (vanished) {
		struct fetch_vanished *v = xcalloc(1, sizeof(*v));
		v->o = o;
		o->s = s;
		v->since = since;
		/* '*' reaches the highest UID the session was told of, in the view or not. */
		uint32_t top = s->uidnext > 0 ? s->uidnext - 1 : 0;
		if (star > top)
			top = star;
		v->top = top;
		struct imap_seqset_range *ranges;
		v->saved = imap_seqset_is_saved(set);
		if (v->saved) { /* "$": fetch_vanished_done keeps the saved result's UIDs */
			static const struct imap_seqset_range all = {1, UINT32_MAX};
			ranges = (struct imap_seqset_range *)&all;
			v->range_count = 1;
		} else {
			imap_seqset_resolve(s->cmd, set, top, top, &ranges, &v->range_count);
		}
		v->ranges = xmalloc((v->range_count + 1) * sizeof(*v->ranges));
		if (v->range_count > 0)
			memcpy(v->ranges, ranges, v->range_count * sizeof(*v->ranges));
		(void)imap_session_read(s, fetch_vanished_read, fetch_vanished_done, v);
		return;
	}
	fetch_start(s, o);
}

/* The answer of a FETCH whose messages are chosen: \Seen first when items imply it. */
static void fetch_start(struct imap_session *s, struct fetch_op *o)
{
	if (o->unseen_count == 0) {
		imap_session_run(s, fetch_step, fetch_op_free, o);
		return;
	}
	/* \Seen first, then the data with the new FLAGS. */
	o->mailbox = xstrdup(s->mailbox);
	o->op = (struct store_flags){
	    .account_id = s->mailbox_owner,
	    .mailbox = o->mailbox,
	    .uids = o->unseen,
	    .uid_count = o->unseen_count,
	    .mode = STORE_FLAGS_ADD,
	    .flags = STORE_FLAG_SEEN,
	    .entry_cb = fetch_seen_entry,
	    .entry_ctx = o,
	};
	o->unseen_modseq = xcalloc(o->unseen_count, sizeof(*o->unseen_modseq));
	imap_session_op_start(s, o->tag, fetch_seen_done, o);
	store_flags(s->server->store, &o->op, fetch_seen_cb, s);
}
