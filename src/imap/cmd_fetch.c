/* FETCH and UID FETCH (RFC 9051 §6.4.5): UID, FLAGS, INTERNALDATE, RFC822.SIZE, and the
 * whole message or its header or text (BODY[], BODY[HEADER], BODY[TEXT], their .PEEK forms,
 * RFC822, RFC822.HEADER, RFC822.TEXT) with <partial> ranges; macros ALL and FAST. Items
 * that are not .PEEK set \Seen on a read-write mailbox, through store_flags() before the data
 * goes out, so the responses carry the new FLAGS.
 * ENVELOPE, BODY and BODYSTRUCTURE come from the store's cache (filled at delivery) or the
 * MIME parser; BODY[section] takes part numbers at any depth with HEADER, TEXT, MIME and
 * HEADER.FIELDS (.NOT). BINARY[section]<partial>, BINARY.PEEK and BINARY.SIZE (RFC 3516)
 * decode base64 and quoted-printable parts; an encoding that cannot be decoded fails the
 * command with NO [UNKNOWN-CTE]. */
#include "imap/imap_commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "imap/imap_seqset.h"
#include "mime/imap_structure.h"
#include "mime/mime.h"
#include "mime/mime_decode.h"
#include "core/banned.h"

enum fetch_part { PART_NONE, PART_ALL, PART_HEADER, PART_TEXT, PART_SECTION };

/* What a BODY[section] names (RFC 9051 §6.4.5 section-spec). */
enum fetch_sec { SEC_FULL, SEC_HEADER, SEC_TEXT, SEC_MIME, SEC_FIELDS, SEC_FIELDS_NOT };

/* RFC 3516: BINARY[section] (and .PEEK) sends the decoded part, BINARY.SIZE its size. */
enum fetch_bin { BIN_NONE, BIN_DATA, BIN_SIZE };

struct fetch_item {
	const char *label;   /* what the response names it: "BODY[]", "RFC822", ... */
	bool seen;           /* sets \Seen (not .PEEK, not RFC822.HEADER: RFC 9051 §6.4.5) */
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
	bool envelope, bodystructure, body;
	bool seen; /* some item sets \Seen */
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
	if (sscanf(p, "<%llu.%llu%c", &o, &l, &end) != 3 || end != '>' || strchr(p, '>')[1] != '\0' ||
	    l == 0)
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
	static const struct { const char *name; enum fetch_part part; } plain[] = {
		{ "RFC822", PART_ALL }, { "RFC822.HEADER", PART_HEADER }, { "RFC822.TEXT", PART_TEXT },
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
		if (m[i] == '\n' && (m[i + 1] == '\n' ||
				     (m[i + 1] == '\r' && i + 2 < len && m[i + 2] == '\n'))) {
			*header_len_r = i + 1 + (m[i + 1] == '\r' ? 2 : 1);
			return;
		}
	}
	*header_len_r = len;
}

static unsigned char *fetch_load(struct imap_session *s, uint32_t uid, size_t *len_r)
{
	int fd;
	uint64_t size;
	if (store_message_open(s->server->store, s->account_id, s->mailbox, uid, &fd, &size) != 1)
		return NULL;
	unsigned char *data = xmalloc(size + 1);
	size_t got = 0;
	while (got < size) {
		ssize_t n = pread(fd, data + got, size - got, (off_t)got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*len_r = got;
	return data;
}

/* with_flags: FLAGS also when not asked for (\Seen was just set, RFC 9051 §6.4.5). */
static bool fetch_needs_tree(const struct fetch_req *req)
{
	if (req->envelope || req->bodystructure || req->body)
		return true;
	for (size_t i = 0; i < req->item_count; i++)
		if (req->items[i].part == PART_SECTION)
			return true;
	return false;
}

/* ENVELOPE, BODY and BODYSTRUCTURE: cached at delivery when possible, else computed. */
static int fetch_structure(struct imap_session *s, struct arena *tmp,
			   const struct fetch_req *req, uint32_t uid,
			   const unsigned char *data, size_t len, const struct mime_part *root,
			   struct buf *b, const char **sep)
{
	if (!req->envelope && !req->bodystructure && !req->body)
		return 0;
	char *env = NULL, *body = NULL, *bs = NULL;
	if (store_message_summary(s->server->store, s->account_id, s->mailbox, uid, &env, &body,
				  &bs) != 1)
		env = body = bs = NULL;
	int r = 0;
	const char *const names[3] = { "ENVELOPE", "BODY", "BODYSTRUCTURE" };
	const bool want[3] = { req->envelope, req->body, req->bodystructure };
	char *cached[3] = { env, body, bs };
	for (int i = 0; i < 3; i++) {
		if (!want[i])
			continue;
		const char *text = cached[i];
		if (text == NULL && root != NULL)
			text = i == 0 ? imap_envelope(tmp, data, len, root)
					: imap_bodystructure(tmp, data, len, root, i == 2);
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

/* The octets a BODY[section] names (RFC 9051 §6.4.5): returns the buffer they are in and
 * sets the offset and length; HEADER.FIELDS results are built in fields. A part that does not exist
 * gives an empty string (as Dovecot answers). */
static const unsigned char *fetch_section_data(const unsigned char *data, size_t len,
					       const struct mime_part *root,
					       const struct fetch_item *it, struct buf *fields,
					       size_t *off_r, size_t *len_r)
{
	(void)len;
	*off_r = 0;
	*len_r = 0;
	if (root == NULL)
		return NULL;
	const struct mime_part *p = it->section[0] != '\0' ? mime_part_find(root, it->section)
							   : root;
	if (p == NULL)
		return NULL;
	if (it->sec == SEC_FULL) {
		*off_r = p->body_start;
		*len_r = p->body_len;
		return data;
	}
	if (it->sec == SEC_MIME) {
		*off_r = p->header_start;
		*len_r = p->header_len;
		return data;
	}
	/* HEADER, TEXT, HEADER.FIELDS of a part are those of its encapsulated message. */
	const struct mime_part *msg = it->section[0] == '\0' ? root
				      : p->kind == MIME_KIND_MESSAGE ? p->message
								     : NULL;
	if (msg == NULL)
		return NULL;
	if (it->sec == SEC_HEADER || it->sec == SEC_TEXT) {
		*off_r = it->sec == SEC_HEADER ? msg->header_start : msg->body_start;
		*len_r = it->sec == SEC_HEADER ? msg->header_len : msg->body_len;
		return data;
	}
	struct mime_field_iter iter;
	struct mime_field f;
	mime_field_iter_init(&iter, data, msg->header_start, msg->header_start + msg->header_len);
	int r = 0;
	while (mime_field_iter_next(&iter, &f)) {
		if (!f.has_colon)
			continue;
		if (fetch_field_listed(data, &f, it) == (it->sec == SEC_FIELDS))
			r |= buf_append(fields, data + f.start, f.len);
	}
	r |= buf_append(fields, "\r\n", 2);
	(void)r;
	*len_r = fields->len;
	return (const unsigned char *)fields->data;
}

/* The decoded octets a BINARY item names (RFC 3516 §4.2): "" is the whole message as
 * stored, a part is its body decoded by its Content-Transfer-Encoding (a multipart or
 * message/rfc822 part as it is). A part that does not exist is empty, as for BODY[]. Returns
 * 0, or -1 when the encoding is unknown (UNKNOWN-CTE). */
static int fetch_binary_data(struct arena *tmp, const unsigned char *data, size_t len,
			     const struct mime_part *root, const struct fetch_item *it,
			     const unsigned char **src_r, size_t *len_r)
{
	*src_r = data;
	*len_r = 0;
	if (it->section[0] == '\0') {
		*len_r = len;
		return 0;
	}
	const struct mime_part *p = root != NULL ? mime_part_find(root, it->section) : NULL;
	if (p == NULL)
		return 0;
	if (p->kind != MIME_KIND_LEAF) {
		*src_r = data + p->body_start;
		*len_r = p->body_len;
		return 0;
	}
	return mime_decode_body(tmp, p->cte, data + p->body_start, p->body_len, src_r, len_r);
}

/* One BINARY or BINARY.SIZE item into b: a literal8 (RFC 3516 §4.3) when the data holds a
 * NUL, else a plain literal. Returns 0 (r is or'ed with the buffer's result), or -1 for
 * UNKNOWN-CTE. */
static int fetch_binary_item(struct arena *tmp, const unsigned char *data, size_t len,
			     const struct mime_part *root, const struct fetch_item *it,
			     struct buf *b, const char *sep, int *r)
{
	const unsigned char *src;
	size_t n;
	if (fetch_binary_data(tmp, data, len, root, it, &src, &n) < 0)
		return -1;
	if (it->binary == BIN_SIZE) {
		*r |= buf_printf(b, "%s%s %zu", sep, it->label, n);
		return 0;
	}
	size_t off = 0;
	if (it->partial) {
		off = it->offset < n ? (size_t)it->offset : n;
		n -= off;
		if (n > it->length)
			n = (size_t)it->length;
	}
	bool nul = n > 0 && memchr(src + off, 0, n) != NULL;
	*r |= buf_printf(b, "%s%s %s{%zu}\r\n", sep, it->label, nul ? "~" : "", n);
	*r |= buf_append(b, n > 0 ? src + off : (const unsigned char *)"", n);
	return 0;
}

/* Sends one message's FETCH response. false = a BINARY item named a part whose encoding
 * cannot be decoded: nothing was sent, the command must fail with UNKNOWN-CTE. */
static bool fetch_one(struct imap_session *s, const struct fetch_req *req, uint32_t seq,
		      bool with_flags, bool *gone_r)
{
	const struct imap_msg *m = &s->msgs[seq - 1];
	struct buf b;
	buf_init(&b, (size_t)s->limits->message_size + 65536);
	int r = buf_printf(&b, "* %u FETCH (", seq);
	const char *sep = "";
	if (req->uid) {
		r |= buf_printf(&b, "UID %u", m->uid);
		sep = " ";
	}
	if (req->flags || with_flags) {
		r |= buf_puts(&b, sep);
		r |= buf_puts(&b, "FLAGS (");
		imap_session_flags_text(s, &b, m);
		r |= buf_puts(&b, ")");
		sep = " ";
	}
	if (req->size) {
		r |= buf_printf(&b, "%sRFC822.SIZE %llu", sep, (unsigned long long)m->size);
		sep = " ";
	}
	if (req->date) {
		char date[64];
		time_t t = (time_t)m->date;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(date, sizeof(date), "%e-%b-%Y %H:%M:%S +0000", &tm);
		r |= buf_printf(&b, "%sINTERNALDATE \"%s\"", sep, date);
		sep = " ";
	}
	bool need_data = req->item_count > 0 || req->envelope || req->bodystructure || req->body;
	size_t len = 0, hlen = 0;
	unsigned char *data = need_data ? fetch_load(s, m->uid, &len) : NULL;
	if (need_data && data == NULL) {
		/* Expunged by another session and not yet reported here: RFC 2180 §4.1.2, no
		 * response for it, and the command ends with NO [EXPUNGEISSUED] (Dovecot). */
		*gone_r = true;
		buf_free(&b);
		return true;
	}
	const struct mime_part *root = NULL;
	struct arena *tmp = arena_new(16384); /* this message's MIME tree and texts */
	if (data != NULL) {
		fetch_split(data, len, &hlen);
		struct mime_part *tree;
		struct mime_limits limits = { 0 };
		if (fetch_needs_tree(req) && mime_parse(tmp, data, len, &limits, &tree) >= -1)
			root = tree;
	}
	r |= fetch_structure(s, tmp, req, m->uid, data, len, root, &b, &sep);
	bool ok = true;
	for (size_t i = 0; ok && i < req->item_count; i++) {
		const struct fetch_item *it = &req->items[i];
		if (it->binary != BIN_NONE && data != NULL) {
			ok = fetch_binary_item(tmp, data, len, root, it, &b, sep, &r) == 0;
			sep = " ";
			continue;
		}
		size_t off = it->part == PART_TEXT ? hlen : 0;
		size_t n = data == NULL ? 0 : it->part == PART_HEADER ? hlen
					     : it->part == PART_TEXT  ? len - hlen
								      : len;
		const unsigned char *src = data;
		struct buf fields;
		buf_init(&fields, len + 2);
		if (data != NULL && it->part == PART_SECTION)
			src = fetch_section_data(data, len, root, it, &fields, &off, &n);
		if (it->partial) {
			off += it->offset < n ? (size_t)it->offset : n;
			n = it->offset < n ? n - (size_t)it->offset : 0;
			if (n > it->length)
				n = (size_t)it->length;
		}
		if (data == NULL) {
			r |= buf_printf(&b, "%s%s NIL", sep, it->label);
		} else {
			r |= buf_printf(&b, "%s%s {%zu}\r\n", sep, it->label, n);
			r |= buf_append(&b, src == NULL ? (const unsigned char *)"" : src + off, n);
		}
		buf_free(&fields);
		sep = " ";
	}
	free(data);
	arena_free(&tmp);
	r |= buf_append(&b, ")\r\n", 3);
	if (r == 0 && ok)
		conn_write(s->conn, b.data, b.len);
	buf_free(&b);
	return ok;
}

/* A FETCH in progress: the messages, and the \Seen change some items imply. */
struct fetch_op {
	struct fetch_req req;
	struct arena *keep;    /* copies of req.items[] strings while \Seen is set */
	uint32_t *seqs;      /* sequence numbers to answer, ascending */
	size_t count;
	uint32_t *unseen;    /* UIDs among them without \Seen (when it is to be set) */
	size_t unseen_count;
	char *mailbox, *name;
	struct store_flags op;
};

static void fetch_op_free(struct fetch_op *o)
{
	free(o->seqs);
	free(o->unseen);
	free(o->mailbox);
	free(o->name);
	arena_free(&o->keep);
	free(o);
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

/* The responses, then the tagged reply: NO [UNKNOWN-CTE] (RFC 3516 §4.4) stops at the first
 * message with a BINARY part that cannot be decoded. */
static void fetch_send(struct imap_session *s, const struct fetch_op *o, const char *tag)
{
	bool gone = false;
	for (size_t i = 0; i < o->count; i++) {
		const struct imap_msg *m = &s->msgs[o->seqs[i] - 1];
		bool now_seen = o->unseen_count > 0 && (m->flags & STORE_FLAG_SEEN) &&
				fetch_was_unseen(o, m->uid);
		if (!fetch_one(s, &o->req, o->seqs[i], now_seen, &gone)) {
			imap_tagged(s, tag, "NO", "[UNKNOWN-CTE] Can't decode the part's "
					    "Content-Transfer-Encoding");
			return;
		}
	}
	if (gone)
		imap_tagged(s, tag, "NO", "[EXPUNGEISSUED] Some of the requested messages no "
				    "longer exist");
	else
		imap_tagged(s, tag, "OK", "%s completed", o->name);
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
	if (!s->closed) {
		/* The view takes \Seen so the next sync does not report it again; a failure
		 * leaves the flags alone and the data still goes out. */
		if (o->op.result == 0) {
			for (size_t i = 0; i < o->unseen_count; i++) {
				long idx = cmd_store_view_find(s, o->unseen[i]);
				if (idx >= 0)
					s->msgs[idx].flags |= STORE_FLAG_SEEN;
			}
			if (o->op.modseq != 0 && o->op.modseq == s->highestmodseq + 1)
				s->highestmodseq = o->op.modseq;
		} else {
			IMAP_LOG(s, "event=fetch-seen result=fail error=\"%s\"", o->op.error);
		}
		fetch_send(s, o, s->op_tag);
	}
	fetch_op_free(o);
}

void cmd_fetch(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const struct imap_arg *a = cmd->args;
	struct imap_seqset *set;
	const char *error;
	if (imap_parser_arg_count(a) != 2 || a[0].type != IMAP_ARG_ATOM ||
	    imap_seqset_parse(s->cmd, a[0].str, &set, &error) < 0) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: FETCH sequence-set items");
		return;
	}
	struct fetch_req req = { .uid = cmd->uid };
	bool ok = true;
	if (a[1].type == IMAP_ARG_ATOM) {
		ok = fetch_add(&req, a[1].str, s->cmd);
	} else if (a[1].type == IMAP_ARG_LIST) {
		for (const struct imap_arg *it = a[1].list; ok && it->type != IMAP_ARG_EOL; it++)
			ok = it->type == IMAP_ARG_ATOM && fetch_add(&req, it->str, s->cmd);
	} else {
		ok = false;
	}
	if (!ok) {
		imap_tagged(s, cmd->tag, "BAD", "Unsupported or invalid FETCH item");
		return;
	}
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
		o->seqs[o->count++] = i + 1;
		if (req.seen && !s->read_only && !(s->msgs[i].flags & STORE_FLAG_SEEN))
			o->unseen[o->unseen_count++] = s->msgs[i].uid;
	}
	o->req = req;
	o->name = xstrdup(cmd->name);
	if (o->unseen_count == 0) {
		fetch_send(s, o, cmd->tag);
		fetch_op_free(o);
		return;
	}
	/* \Seen first, then the data with the new FLAGS: the labels must outlive the command
	 * arena, so the operation keeps its own copies. */
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
	o->mailbox = xstrdup(s->mailbox);
	o->op = (struct store_flags){
		.account_id = s->account_id,
		.mailbox = o->mailbox,
		.uids = o->unseen,
		.uid_count = o->unseen_count,
		.mode = STORE_FLAGS_ADD,
		.flags = STORE_FLAG_SEEN,
	};
	imap_session_op_start(s, cmd->tag, fetch_seen_done, o);
	store_flags(s->server->store, &o->op, fetch_seen_cb, s);
}
