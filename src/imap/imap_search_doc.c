/* The searchable text of one message for IMAP SEARCH, read through mime/ so that SEARCH
 * sees the message exactly as FETCH BODYSTRUCTURE and ENVELOPE do: header fields from
 * mime_field_iter (unfolded, RFC 2047 words decoded by mime_decode_words()), parts from
 * mime_parse() (boundaries, parameters, RFC 2231, limits), bodies through mime_decode_body()
 * and mime_decode_charset(). What is SEARCH's own is the case folding that makes matching a
 * plain memmem(). Built for searching, not for display: it never fails, it finds less in
 * broken input. */
#include "imap/imap_search_doc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/xmalloc.h"
#include "mime/mime.h"
#include "mime/mime_decode.h"
#include "core/banned.h"

/* ---- case folding ---- */

/* Decode one UTF-8 sequence at s (n > 0 octets available): the code point, and the octets
 * used in *used; an invalid sequence yields its first octet as is (used 1, -1 returned). */
static int32_t search_utf8_decode(const unsigned char *s, size_t n, size_t *used)
{
	unsigned char c = s[0];
	size_t need;
	uint32_t cp;
	*used = 1;
	if (c < 0x80)
		return c;
	if (c >= 0xC2 && c <= 0xDF) {
		need = 1;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		cp = c & 0x07;
	} else {
		return -1;
	}
	if (n < need + 1)
		return -1;
	for (size_t i = 1; i <= need; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return -1;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return -1;
	*used = need + 1;
	return (int32_t)cp;
}

static size_t search_utf8_encode(uint32_t cp, unsigned char *out)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xC0 | cp >> 6);
		out[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xE0 | cp >> 12);
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (unsigned char)(0xF0 | cp >> 18);
	out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Latin Extended-A (U+0100..U+017F): mostly pairs of upper (even) and lower (odd). */
static uint32_t search_fold_latin_ext(uint32_t c)
{
	if (c == 0x178)
		return 0xFF;
	if (c == 0x17F)
		return 's';
	if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149)
		return c;
	if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
		return (c & 1) ? c + 1 : c;
	return (c & 1) ? c : c + 1;
}

/* Simple case folding (Unicode CaseFolding.txt, status C and S) of the scripts mail
 * users search in most: Latin, Greek, Cyrillic, Armenian, fullwidth Latin. */
static uint32_t search_fold_cp(uint32_t c)
{
	if (c < 0x80)
		return c >= 'A' && c <= 'Z' ? c + 32 : c;
	if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
		return c + 32;
	if (c >= 0x100 && c <= 0x17F)
		return search_fold_latin_ext(c);
	if (c == 0x386)
		return 0x3AC;
	if (c >= 0x388 && c <= 0x38A)
		return c + 37;
	if (c == 0x38C)
		return 0x3CC;
	if (c == 0x38E || c == 0x38F)
		return c + 63;
	if ((c >= 0x391 && c <= 0x3A9 && c != 0x3A2))
		return c + 32;
	if (c == 0x3C2)
		return 0x3C3;
	if (c >= 0x400 && c <= 0x40F)
		return c + 80;
	if (c >= 0x410 && c <= 0x42F)
		return c + 32;
	if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF) || (c >= 0x4D0 && c <= 0x52F))
		return (c & 1) ? c : c + 1;
	if (c == 0x4C0)
		return 0x4CF;
	if (c >= 0x4C1 && c <= 0x4CE)
		return (c & 1) ? c + 1 : c;
	if (c >= 0x531 && c <= 0x556)
		return c + 48;
	if ((c >= 0x1E00 && c <= 0x1E95) || (c >= 0x1EA0 && c <= 0x1EFF))
		return (c & 1) ? c : c + 1;
	if (c == 0x1E9E)
		return 0xDF;
	if (c >= 0xFF21 && c <= 0xFF3A)
		return c + 32;
	return c;
}

char *imap_search_doc_fold(struct arena *arena, const unsigned char *s, size_t len, size_t *len_r)
{
	/* A folded code point never takes more octets than its source (U+017F 2 → 1,
	 * U+1E9E 3 → 2, all others the same), so len + 1 is enough. */
	unsigned char *out = arena_alloc(arena, len + 1);
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		size_t used;
		int32_t cp = search_utf8_decode(s + i, len - i, &used);
		if (cp < 0)
			out[o++] = s[i];
		else if (cp < 0x80)
			out[o++] = (unsigned char)search_fold_cp((uint32_t)cp);
		else
			o += search_utf8_encode(search_fold_cp((uint32_t)cp), out + o);
		i += used;
	}
	out[o] = '\0';
	*len_r = o;
	return (char *)out;
}

/* ---- the message ---- */

void imap_search_doc_init(struct imap_search_doc *doc, const unsigned char *data, size_t len)
{
	memset(doc, 0, sizeof(*doc));
	doc->data = data;
	doc->len = data != NULL ? len : 0;
}

void imap_search_doc_deinit(struct imap_search_doc *doc)
{
	free(doc->fields.v);
	free(doc->body.v);
	arena_free(&doc->arena);
}

static struct arena *search_doc_arena(struct imap_search_doc *d)
{
	if (d->arena == NULL)
		d->arena = arena_new(16384);
	return d->arena;
}

static void search_texts_add(struct imap_search_doc_texts *t, struct imap_search_doc_text text)
{
	if (t->count == t->cap) {
		t->cap = t->cap == 0 ? 16 : 2 * t->cap;
		t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
	}
	t->v[t->count++] = text;
}

/* A header field as searchable text: "name: value", the value unfolded, its encoded words
 * decoded and NUL octets read as SP, all folded. */
static struct imap_search_doc_text search_field_text(struct arena *a, const unsigned char *msg,
                                                     const struct mime_field *f)
{
	size_t ulen, dlen, nlen, vlen;
	char *u = mime_field_unfolded(a, msg, f, &ulen);
	for (char *nul = memchr(u, '\0', ulen); nul != NULL;
	     nul = memchr(nul, '\0', ulen - (size_t)(nul - u)))
		*nul = ' ';
	const char *d = mime_decode_words(a, u, ulen, &dlen);
	const unsigned char *name = msg + f->start;
	char *fn = imap_search_doc_fold(a, name, f->name_len, &nlen);
	char *fv = imap_search_doc_fold(a, (const unsigned char *)d, dlen, &vlen);
	char *line = arena_alloc(a, nlen + 2 + vlen + 1);
	memcpy(line, fn, nlen);
	memcpy(line + nlen, ": ", 2);
	memcpy(line + nlen + 2, fv, vlen);
	line[nlen + 2 + vlen] = '\0';
	return (struct imap_search_doc_text){.s = line,
	                                     .len = nlen + 2 + vlen,
	                                     .value = nlen + 2,
	                                     .name = (const char *)name,
	                                     .name_len = f->name_len};
}

/* The fields of the header section msg[start..end) (lines without a colon are no fields)
 * added to t. */
static void search_fields_add(struct imap_search_doc *d, struct imap_search_doc_texts *t,
                              size_t start, size_t end)
{
	struct mime_field_iter it;
	struct mime_field f;
	mime_field_iter_init(&it, d->data, start, end);
	while (mime_field_iter_next(&it, &f)) {
		if (f.has_colon)
			search_texts_add(t, search_field_text(d->arena, d->data, &f));
	}
}

void imap_search_doc_header(struct imap_search_doc *d)
{
	if (d->header_done)
		return;
	d->header_done = true;
	search_doc_arena(d);
	if (d->data != NULL)
		search_fields_add(d, &d->fields, 0, d->len);
}

/* ---- the MIME tree (BODY, TEXT) ---- */

/* A part's body as text: decoded (an unknown transfer encoding is taken as it is) and, for
 * text/ parts, converted from its charset. Only text/, message/ and (childless) multipart/
 * bodies are searched; other types are not (RFC 9051 §6.4.4 lets a server choose). */
static void search_leaf(struct imap_search_doc *d, const struct mime_part *part)
{
	bool text = strcmp(part->type, "text") == 0;
	if (!text && strcmp(part->type, "message") != 0 && strcmp(part->type, "multipart") != 0)
		return;
	const unsigned char *b = d->data + part->body_start, *raw;
	size_t n;
	if (mime_decode_body(d->arena, part->cte, b, part->body_len, &raw, &n) < 0) {
		raw = b;
		n = part->body_len;
	}
	size_t ulen = n;
	const char *u = (const char *)raw;
	const char *cs = text ? mime_part_param(part, "charset") : NULL;
	if (cs != NULL)
		u = mime_decode_charset(d->arena, cs, strlen(cs), raw, n, &ulen);
	struct imap_search_doc_text t = {0};
	t.s = imap_search_doc_fold(d->arena, (const unsigned char *)u, ulen, &t.len);
	search_texts_add(&d->body, t);
}

/* The part and what is below it, in message order: its header lines (not for the root,
 * whose fields are d->fields), then its children, its encapsulated message, or its body.
 * Recursion is bounded by the parser's depth limit. */
static void search_walk(struct imap_search_doc *d, const struct mime_part *part, bool root)
{
	d->parts++;
	if (!root)
		search_fields_add(d, &d->body, part->header_start,
		                  part->header_start + part->header_len);
	if (part->kind == MIME_KIND_MESSAGE) {
		search_walk(d, part->message, false);
	} else if (part->kind == MIME_KIND_MULTIPART && part->child_count > 0) {
		for (size_t i = 0; i < part->child_count; i++)
			search_walk(d, &part->children[i], false);
	} else {
		/* a multipart with no parts (no boundary, or none found) is searched as text */
		search_leaf(d, part);
	}
}

void imap_search_doc_body(struct imap_search_doc *d)
{
	if (d->body_done)
		return;
	d->body_done = true;
	search_doc_arena(d);
	if (d->data == NULL)
		return;
	/* the limits FETCH uses, so that SEARCH sees the parts BODYSTRUCTURE shows */
	struct mime_limits limits = {0};
	struct mime_part *root;
	if (mime_parse(d->arena, d->data, d->len, &limits, &root) >= -1) /* -1: a limit */
		search_walk(d, root, true);
}

/* ---- the stored texts (the search index) ---- */

bool imap_search_doc_utf8_valid(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		size_t used;
		if (search_utf8_decode(s + i, len - i, &used) < 0)
			return false;
		i += used;
	}
	return true;
}

/* Append the texts of t (all, or only body texts: name NULL) to b, each followed by LF,
 * NUL octets written as LF. -1 when b's limit is reached. */
static int search_texts_join(struct buf *b, const struct imap_search_doc_texts *t, int which)
{
	for (size_t i = 0; i < t->count; i++) {
		const struct imap_search_doc_text *x = &t->v[i];
		if ((which == 1 && x->name != NULL) || (which == 2 && x->name == NULL))
			continue;
		size_t at = b->len;
		if (buf_append(b, x->s, x->len) < 0 || buf_append(b, "\n", 1) < 0)
			return -1;
		for (size_t k = at; k < b->len; k++)
			if (b->data[k] == '\0')
				b->data[k] = '\n';
	}
	return 0;
}

/* Can the message's own fields be told apart in the stored header lines: field names of
 * ASCII without NUL or LF, values (decoded, folded) without NUL or LF? */
static bool search_fields_storable(const struct imap_search_doc_texts *t)
{
	for (size_t i = 0; i < t->count; i++) {
		const struct imap_search_doc_text *x = &t->v[i];
		for (size_t k = 0; k < x->name_len; k++) {
			unsigned char c = (unsigned char)x->name[k];
			if (c == '\0' || c == '\n' || c >= 0x80)
				return false;
		}
		if (memchr(x->s + x->value, '\0', x->len - x->value) != NULL ||
		    memchr(x->s + x->value, '\n', x->len - x->value) != NULL)
			return false;
	}
	return true;
}

int imap_search_doc_index(const unsigned char *data, size_t len, size_t max, char **hdr_r,
                          char **body_r)
{
	*hdr_r = *body_r = NULL;
	struct imap_search_doc d;
	imap_search_doc_init(&d, data, len);
	imap_search_doc_header(&d);
	imap_search_doc_body(&d);
	struct buf h, b;
	buf_init(&h, max + 1);
	buf_init(&b, max + 1);
	int r = 1;
	/* The header lines begin with LF, the message's own fields end with an empty line
	 * (IMAP_SEARCH_DOC_FIELDS_*): three LFs first when they cannot be told apart. */
	bool storable = search_fields_storable(&d.fields);
	if (buf_append(&h, storable ? "\n" : "\n\n\n", storable ? 1 : 3) < 0 ||
	    search_texts_join(&h, &d.fields, 0) < 0 || (storable && buf_append(&h, "\n", 1) < 0) ||
	    search_texts_join(&h, &d.body, 2) < 0 || search_texts_join(&b, &d.body, 1) < 0 ||
	    h.len + b.len > max || buf_append(&h, "", 1) < 0 || buf_append(&b, "", 1) < 0 ||
	    !imap_search_doc_utf8_valid((const unsigned char *)h.data, h.len - 1) ||
	    !imap_search_doc_utf8_valid((const unsigned char *)b.data, b.len - 1))
		r = 0;
	if (r == 1) {
		*hdr_r = xstrdup(h.data);
		*body_r = xstrdup(b.data);
	}
	buf_free(&h);
	buf_free(&b);
	imap_search_doc_deinit(&d);
	return r;
}

int imap_search_doc_index_fd(void *ctx, int fd, size_t max, char **hdr_r, char **body_r)
{
	(void)ctx;
	*hdr_r = *body_r = NULL;
	struct stat st;
	if (fstat(fd, &st) != 0)
		return -1;
	size_t len = (size_t)st.st_size;
	void *map = NULL;
	if (len > 0) {
		map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED)
			return -1;
	}
	int r =
	    imap_search_doc_index(map != NULL ? map : (const void *)"", len, max, hdr_r, body_r);
	if (map != NULL)
		munmap(map, len);
	return r;
}

int imap_search_doc_stored_fields(struct imap_search_doc *d, const char *hdr, size_t len)
{
	if (len < 2 || hdr[0] != '\n' || (len >= 3 && hdr[1] == '\n' && hdr[2] == '\n'))
		return -1;
	search_doc_arena(d);
	d->header_done = true;
	for (size_t at = 1; at < len && hdr[at] != '\n';) {
		const char *nl = memchr(hdr + at, '\n', len - at);
		const char *colon = memchr(hdr + at, ':', len - at);
		if (nl == NULL || colon == NULL || colon > nl || colon + 1 >= nl || colon[1] != ' ')
			return -1;
		size_t n = (size_t)(nl - (hdr + at));
		char *line = arena_strndup(d->arena, hdr + at, n);
		size_t name_len = (size_t)(colon - (hdr + at));
		search_texts_add(&d->fields, (struct imap_search_doc_text){.s = line,
		                                                           .len = n,
		                                                           .name = line,
		                                                           .name_len = name_len,
		                                                           .value = name_len + 2});
		at += n + 1;
		if (at >= len) /* no empty line after the fields */
			return -1;
	}
	return 0;
}
