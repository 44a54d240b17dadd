/* The searchable text of one message for IMAP SEARCH: header fields unfolded with their
 * RFC 2047 encoded words decoded, a small MIME walk for the body (transfer encodings,
 * charsets through iconv(3), nested messages), and the case folding that makes matching a
 * plain memmem(). Built for searching, not for display: it never fails, it finds less in
 * broken input. */
#include "imap/imap_search_doc.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/xmalloc.h"
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

/* Length of the header section of p[0..len) including the empty line that ends it (len
 * when there is none). */
static size_t search_header_end(const unsigned char *p, size_t len)
{
	size_t i = 0;
	while (i < len) {
		if (p[i] == '\n')
			return i + 1;
		if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n')
			return i + 2;
		const unsigned char *nl = memchr(p + i, '\n', len - i);
		if (nl == NULL)
			return len;
		i = (size_t)(nl - p) + 1;
	}
	return len;
}

/* One header field of h[*pos..len): name and raw value (everything after the colon up to
 * the end of its last continuation line, line break excluded). Lines without a colon are
 * skipped. false at the end of the header section. */
static bool search_next_field(const unsigned char *h, size_t len, size_t *pos,
                              const unsigned char **name_r, size_t *name_len_r,
                              const unsigned char **value_r, size_t *value_len_r)
{
	while (*pos < len) {
		size_t start = *pos;
		if (h[start] == '\n' ||
		    (h[start] == '\r' && start + 1 < len && h[start + 1] == '\n'))
			return false; /* the empty line */
		size_t end = start;
		/* the field runs until a line that does not start with SP / HT */
		for (;;) {
			const unsigned char *nl = memchr(h + end, '\n', len - end);
			end = nl == NULL ? len : (size_t)(nl - h) + 1;
			if (end >= len || (h[end] != ' ' && h[end] != '\t'))
				break;
		}
		*pos = end;
		const unsigned char *colon = memchr(h + start, ':', end - start);
		if (colon == NULL || h[start] == ' ' || h[start] == '\t')
			continue;
		size_t n = (size_t)(colon - (h + start));
		while (n > 0 && (h[start + n - 1] == ' ' || h[start + n - 1] == '\t'))
			n--;
		size_t vend = end;
		while (vend > start && (h[vend - 1] == '\n' || h[vend - 1] == '\r'))
			vend--;
		*name_r = h + start;
		*name_len_r = n;
		*value_r = colon + 1;
		*value_len_r = vend > (size_t)(colon + 1 - h) ? vend - (size_t)(colon + 1 - h) : 0;
		return true;
	}
	return false;
}

/* Unfold (drop CR and LF; RFC 5322 §2.2.3) and trim; NUL becomes SP. In arena. */
static char *search_unfold(struct arena *a, const unsigned char *v, size_t len, size_t *len_r)
{
	char *out = arena_alloc(a, len + 1);
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (v[i] == '\r' || v[i] == '\n')
			continue;
		if (o == 0 && (v[i] == ' ' || v[i] == '\t'))
			continue;
		out[o++] = v[i] == '\0' ? ' ' : (char)v[i];
	}
	while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
		o--;
	out[o] = '\0';
	*len_r = o;
	return out;
}

/* Convert len octets in charset (cs_len octets, not NUL-terminated) to UTF-8, not
 * NUL-terminated. UTF-8, US-ASCII and unknown charsets are taken as they are (s itself is
 * returned); ISO-8859-1 is mapped here, others go through iconv(3), where octets it cannot
 * convert become U+FFFD. New text is in arena. */
static const char *search_to_utf8(struct arena *a, const char *cs, size_t cs_len,
                                  const unsigned char *s, size_t len, size_t *len_r)
{
	char name[64];
	size_t n = 0;
	for (; n < cs_len && n + 1 < sizeof(name) && cs[n] != '*'; n++) /* RFC 2231 "*lang" */
		name[n] = (char)(cs[n] >= 'A' && cs[n] <= 'Z' ? cs[n] + 32 : cs[n]);
	name[n] = '\0';
	bool latin1 = strcmp(name, "iso-8859-1") == 0 || strcmp(name, "latin1") == 0 ||
	              strcmp(name, "iso8859-1") == 0;
	bool plain = n == 0 || strcmp(name, "utf-8") == 0 || strcmp(name, "us-ascii") == 0 ||
	             strcmp(name, "utf8") == 0 || strcmp(name, "ascii") == 0;
	iconv_t cd = (iconv_t)-1;
	if (!plain && !latin1)
		cd = iconv_open("UTF-8", name);
	if (plain || (cd == (iconv_t)-1 && !latin1)) {
		*len_r = len;
		return (const char *)s;
	}
	if (latin1) {
		unsigned char *out = arena_alloc(a, 2 * len + 1);
		size_t o = 0;
		for (size_t i = 0; i < len; i++)
			o += search_utf8_encode(s[i], out + o);
		out[o] = '\0';
		*len_r = o;
		return (char *)out;
	}
	/* An input octet gives at most 3 UTF-8 octets (a BMP character from one octet, or
	 * U+FFFD for one that is skipped); longer sequences come from longer input. */
	size_t cap = 3 * len + 4;
	char *out = arena_alloc(a, cap + 1), *o = out;
	char *in = (char *)s;
	size_t in_left = len, out_left = cap;
	while (in_left > 0) {
		if (iconv(cd, &in, &in_left, &o, &out_left) != (size_t)-1)
			break;
		if (errno == E2BIG || out_left < 3)
			break;
		memcpy(o, "\xEF\xBF\xBD", 3); /* EILSEQ / EINVAL: skip one octet */
		o += 3;
		out_left -= 3;
		in++;
		in_left--;
	}
	iconv_close(cd);
	*o = '\0';
	*len_r = (size_t)(o - out);
	return out;
}

/* One encoded word "=?charset?B|Q?text?=" at v[0..len) (RFC 2047 §2): its decoded UTF-8
 * appended to out, and its length in *used; false if v does not start with one. */
static bool search_encoded_word(struct arena *a, const unsigned char *v, size_t len,
                                struct buf *out, size_t *used)
{
	if (len < 8 || v[0] != '=' || v[1] != '?')
		return false;
	const unsigned char *cs = v + 2, *q1 = cs;
	while ((size_t)(q1 - v) < len && *q1 != '?' && *q1 > ' ' && *q1 < 0x7F)
		q1++;
	if ((size_t)(q1 - v) + 3 >= len || *q1 != '?' || q1 == cs || q1[2] != '?')
		return false;
	unsigned char enc = q1[1];
	const unsigned char *text = q1 + 3, *end = text;
	size_t rest = len - (size_t)(text - v);
	/* an encoded word holds no white space (RFC 2047 §5) */
	while ((size_t)(end - text) + 1 < rest && !(end[0] == '?' && end[1] == '=') &&
	       *end != ' ' && *end != '\t')
		end++;
	if ((size_t)(end - text) + 1 >= rest || end[0] != '?' || end[1] != '=')
		return false;
	size_t tlen = (size_t)(end - text), dlen;
	unsigned char *dec = arena_alloc(a, MIME_DECODE_MAX_OUT(tlen) + 1);
	if (enc == 'B' || enc == 'b')
		dlen = mime_decode_base64(text, tlen, dec);
	else if (enc == 'Q' || enc == 'q')
		dlen = mime_decode_qword(text, tlen, dec);
	else
		return false;
	size_t ulen;
	const char *u = search_to_utf8(a, (const char *)cs, (size_t)(q1 - cs), dec, dlen, &ulen);
	if (buf_append(out, u, ulen) < 0)
		return false;
	*used = (size_t)(end + 2 - v);
	return true;
}

/* Decode the encoded words of an unfolded header value; linear white space between two
 * adjacent encoded words goes (RFC 2047 §6.2). In arena. */
static char *search_decode_words(struct arena *a, const char *v, size_t len, size_t *len_r)
{
	if (memmem(v, len, "=?", 2) == NULL) {
		*len_r = len;
		return (char *)v;
	}
	struct buf out;
	buf_init(&out, 4 * len + 16); /* a word's UTF-8 is at most 4 times its text */
	const unsigned char *u = (const unsigned char *)v;
	bool after_word = false;
	int r = 0;
	for (size_t i = 0; i < len && r == 0;) {
		size_t used;
		if (u[i] == '=' && search_encoded_word(a, u + i, len - i, &out, &used)) {
			i += used;
			after_word = true;
			continue;
		}
		if (after_word && (u[i] == ' ' || u[i] == '\t')) {
			size_t j = i;
			while (j < len && (u[j] == ' ' || u[j] == '\t'))
				j++;
			if (j < len && search_encoded_word(a, u + j, len - j, &out, &used)) {
				i = j + used; /* the white space between two words is dropped */
				continue;
			}
			r |= buf_append(&out, v + i, j - i);
			i = j;
		} else {
			r |= buf_append(&out, v + i, 1);
			i++;
		}
		after_word = false;
	}
	char *res = arena_strndup(a, buf_cstr(&out), out.len);
	*len_r = out.len;
	buf_free(&out);
	return res;
}

/* A header field as searchable text: "name: value", unfolded, decoded, folded. */
static struct imap_search_doc_text search_field_text(struct arena *a, const unsigned char *name,
                                                     size_t name_len, const unsigned char *value,
                                                     size_t value_len)
{
	size_t ulen, dlen, nlen, vlen;
	char *u = search_unfold(a, value, value_len, &ulen);
	char *d = search_decode_words(a, u, ulen, &dlen);
	char *fn = imap_search_doc_fold(a, name, name_len, &nlen);
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
	                                     .name_len = name_len};
}

void imap_search_doc_header(struct imap_search_doc *d)
{
	if (d->header_done)
		return;
	d->header_done = true;
	search_doc_arena(d);
	size_t header_len = search_header_end(d->data, d->len);
	size_t pos = 0;
	const unsigned char *name, *value;
	size_t name_len, value_len;
	while (search_next_field(d->data, header_len, &pos, &name, &name_len, &value, &value_len))
		search_texts_add(&d->fields,
		                 search_field_text(d->arena, name, name_len, value, value_len));
}

/* ---- MIME walk (BODY, TEXT) ---- */

struct search_part {
	char type[32], subtype[64];
	const char *boundary, *charset; /* in arena, NULL if absent */
	size_t charset_len;
	enum { CTE_IDENTITY, CTE_BASE64, CTE_QP } cte;
};

static bool search_token_char(unsigned char c)
{
	return c > ' ' && c < 0x7F && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* The value of parameter name in a Content-Type value (unfolded), in arena; NULL if none. */
static const char *search_param(struct arena *a, const char *v, const char *name)
{
	size_t nlen = strlen(name);
	const char *p = strchr(v, ';');
	while (p != NULL) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		const char *eq = strpbrk(p, "=;");
		if (eq == NULL)
			return NULL;
		if (*eq == ';') { /* a parameter without '=' */
			p = eq;
			continue;
		}
		const char *ne = eq;
		while (ne > p && (ne[-1] == ' ' || ne[-1] == '\t'))
			ne--;
		const char *val = eq + 1;
		while (*val == ' ' || *val == '\t')
			val++;
		bool match = (size_t)(ne - p) == nlen && strncasecmp(p, name, nlen) == 0;
		struct buf b;
		buf_init(&b, strlen(val) + 1);
		int r = 0;
		if (*val == '"') {
			for (val++; *val != '\0' && *val != '"'; val++) {
				if (*val == '\\' && val[1] != '\0')
					val++;
				r |= buf_append(&b, val, 1);
			}
		} else {
			for (; *val != '\0' && *val != ';' && *val != ' ' && *val != '\t'; val++)
				r |= buf_append(&b, val, 1);
		}
		char *res = match && r == 0 ? arena_strdup(a, buf_cstr(&b)) : NULL;
		buf_free(&b);
		if (res != NULL)
			return res;
		p = strchr(val, ';');
	}
	return NULL;
}

/* Content-Type and Content-Transfer-Encoding of a part's header h[0..hlen); every field
 * also goes to the body texts (TEXT searches them). digest: a multipart/digest child
 * (default type message/rfc822, RFC 2046 §5.1.5). */
static void search_part_header(struct imap_search_doc *d, const unsigned char *h, size_t hlen,
                               bool digest, bool add_lines, struct search_part *part)
{
	memset(part, 0, sizeof(*part));
	snprintf(part->type, sizeof(part->type), "%s", digest ? "message" : "text");
	snprintf(part->subtype, sizeof(part->subtype), "%s", digest ? "rfc822" : "plain");
	size_t pos = 0;
	const unsigned char *name, *value;
	size_t name_len, value_len;
	while (search_next_field(h, hlen, &pos, &name, &name_len, &value, &value_len)) {
		if (add_lines)
			search_texts_add(&d->body, search_field_text(d->arena, name, name_len,
			                                             value, value_len));
		size_t ulen;
		if (name_len == 12 && strncasecmp((const char *)name, "Content-Type", 12) == 0) {
			char *v = search_unfold(d->arena, value, value_len, &ulen);
			size_t t = 0, s = 0;
			while (search_token_char((unsigned char)v[t]))
				t++;
			if (v[t] == '/' && t > 0 && t < sizeof(part->type)) {
				while (search_token_char((unsigned char)v[t + 1 + s]))
					s++;
				if (s > 0 && s < sizeof(part->subtype)) {
					snprintf(part->type, sizeof(part->type), "%.*s", (int)t, v);
					snprintf(part->subtype, sizeof(part->subtype), "%.*s",
					         (int)s, v + t + 1);
				}
			}
			part->boundary = search_param(d->arena, v, "boundary");
			part->charset = search_param(d->arena, v, "charset");
			part->charset_len = part->charset != NULL ? strlen(part->charset) : 0;
		} else if (name_len == 25 &&
		           strncasecmp((const char *)name, "Content-Transfer-Encoding", 25) == 0) {
			char *v = search_unfold(d->arena, value, value_len, &ulen);
			part->cte = strncasecmp(v, "base64", 6) == 0              ? CTE_BASE64
			            : strncasecmp(v, "quoted-printable", 16) == 0 ? CTE_QP
			                                                          : CTE_IDENTITY;
		}
	}
}

static void search_walk(struct imap_search_doc *d, const unsigned char *p, size_t len, bool digest,
                        unsigned depth, bool top);

/* Is the line l[0..n) (line break excluded) a delimiter of boundary? 1 delimiter, 2 close
 * delimiter, 0 not (RFC 2046 §5.1.1: "--" boundary ["--"] transport padding). */
static int search_delimiter(const unsigned char *l, size_t n, const char *boundary, size_t blen)
{
	if (n < 2 + blen || l[0] != '-' || l[1] != '-' || memcmp(l + 2, boundary, blen) != 0)
		return 0;
	size_t i = 2 + blen;
	int kind = 1;
	if (i + 2 <= n && l[i] == '-' && l[i + 1] == '-') {
		kind = 2;
		i += 2;
	}
	for (; i < n; i++)
		if (l[i] != ' ' && l[i] != '\t' && l[i] != '\r')
			return 0;
	return kind;
}

static void search_multipart(struct imap_search_doc *d, const unsigned char *b, size_t len,
                             const char *boundary, bool digest, unsigned depth)
{
	size_t blen = strlen(boundary), pos = 0, start = SIZE_MAX;
	while (pos < len) {
		const unsigned char *nl = memchr(b + pos, '\n', len - pos);
		size_t eol = nl == NULL ? len : (size_t)(nl - b), next = nl == NULL ? len : eol + 1;
		int kind = search_delimiter(b + pos, eol - pos, boundary, blen);
		if (kind != 0) {
			if (start != SIZE_MAX) {
				/* the line break before the delimiter belongs to it */
				size_t end = pos;
				if (end > start && b[end - 1] == '\n')
					end--;
				if (end > start && b[end - 1] == '\r')
					end--;
				search_walk(d, b + start, end - start, digest, depth + 1, false);
			}
			if (kind == 2)
				return; /* the epilogue is not searched */
			start = next;
		}
		pos = next;
	}
	if (start != SIZE_MAX && start < len) /* no close delimiter */
		search_walk(d, b + start, len - start, digest, depth + 1, false);
}

/* A leaf part's body, decoded, as UTF-8 text (text/ parts: from their charset). */
static void search_leaf(struct imap_search_doc *d, const struct search_part *part,
                        const unsigned char *b, size_t len)
{
	const unsigned char *raw = b;
	size_t n = len;
	if (part->cte != CTE_IDENTITY) {
		unsigned char *dec = arena_alloc(d->arena, MIME_DECODE_MAX_OUT(len) + 1);
		n = part->cte == CTE_BASE64 ? mime_decode_base64(b, len, dec)
		                            : mime_decode_qp(b, len, dec);
		raw = dec;
	}
	size_t ulen = n;
	const char *u = (const char *)raw;
	if (strcasecmp(part->type, "text") == 0)
		u = search_to_utf8(d->arena, part->charset != NULL ? part->charset : "",
		                   part->charset_len, raw, n, &ulen);
	struct imap_search_doc_text t = {0};
	t.s = imap_search_doc_fold(d->arena, (const unsigned char *)u, ulen, &t.len);
	search_texts_add(&d->body, t);
}

/* A part p[0..len) with its header (top: the message, whose header fields are searched
 * through d->fields already). */
static void search_walk(struct imap_search_doc *d, const unsigned char *p, size_t len, bool digest,
                        unsigned depth, bool top)
{
	if (depth > IMAP_SEARCH_DOC_DEPTH_MAX || ++d->parts > IMAP_SEARCH_DOC_PARTS_MAX)
		return;
	size_t hlen = search_header_end(p, len);
	struct search_part part;
	search_part_header(d, p, hlen, digest, !top, &part);
	const unsigned char *b = p + hlen;
	size_t blen = len - hlen;
	if (strcasecmp(part.type, "multipart") == 0 && part.boundary != NULL &&
	    part.boundary[0] != '\0') {
		search_multipart(d, b, blen, part.boundary, strcasecmp(part.subtype, "digest") == 0,
		                 depth);
	} else if (strcasecmp(part.type, "message") == 0 &&
	           strcasecmp(part.subtype, "rfc822") == 0 && part.cte == CTE_IDENTITY) {
		search_walk(d, b, blen, false, depth + 1, false);
	} else if (strcasecmp(part.type, "text") == 0 || strcasecmp(part.type, "message") == 0 ||
	           strcasecmp(part.type, "multipart") == 0) {
		/* a multipart without a usable boundary is searched as text */
		search_leaf(d, &part, b, blen);
	}
	/* other types (image, application, ...) are not searched (RFC 9051 §6.4.4) */
}

void imap_search_doc_body(struct imap_search_doc *d)
{
	if (d->body_done)
		return;
	d->body_done = true;
	search_doc_arena(d);
	search_walk(d, d->data, d->len, false, 0, true);
}
