/* PREVIEW text (RFC 8970 §3.1): which part a preview comes from, HTML reduced to its text,
 * white space collapsed, UTF-8 made valid, and the cut at 256 characters. Decoding reuses
 * mime_decode_body() and mime_decode_charset(), as SEARCH does (imap/imap_search_doc.c). */
#include "mime/mime_preview.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "mime/mime_decode.h"
#include "core/banned.h"

/* The output being built: at most MIME_PREVIEW_CHARS characters of 4 octets. */
struct preview_out {
	char *v;
	size_t len;
	size_t chars;
	bool space; /* a white space run is pending (written before the next character) */
};

static bool preview_full(const struct preview_out *o)
{
	return o->chars >= MIME_PREVIEW_CHARS;
}

/* One code point: white space and control characters become one pending space. */
static void preview_put(struct preview_out *o, uint32_t cp)
{
	if (preview_full(o))
		return;
	if (cp <= 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) || cp == 0xa0 || cp == 0x2028 ||
	    cp == 0x2029 || cp == 0xfeff) {
		o->space = o->chars > 0; /* none at the start */
		return;
	}
	if (o->space) {
		o->v[o->len++] = ' ';
		o->space = false;
		if (++o->chars >= MIME_PREVIEW_CHARS)
			return;
	}
	unsigned char *p = (unsigned char *)o->v + o->len;
	if (cp < 0x80) {
		p[0] = (unsigned char)cp;
		o->len += 1;
	} else if (cp < 0x800) {
		p[0] = (unsigned char)(0xc0 | (cp >> 6));
		p[1] = (unsigned char)(0x80 | (cp & 0x3f));
		o->len += 2;
	} else if (cp < 0x10000) {
		p[0] = (unsigned char)(0xe0 | (cp >> 12));
		p[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		p[2] = (unsigned char)(0x80 | (cp & 0x3f));
		o->len += 3;
	} else {
		p[0] = (unsigned char)(0xf0 | (cp >> 18));
		p[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		p[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		p[3] = (unsigned char)(0x80 | (cp & 0x3f));
		o->len += 4;
	}
	o->chars++;
}

/* The code point at s[0..n) (n > 0) and its length in *used; U+FFFD for an invalid
 * sequence (RFC 3629: no overlongs, no surrogates, at most U+10FFFF), consuming one octet. */
static uint32_t preview_utf8(const unsigned char *s, size_t n, size_t *used)
{
	*used = 1;
	if (s[0] < 0x80)
		return s[0];
	size_t k = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
	if (k == 0 || s[0] > 0xf4 || k > n)
		return 0xfffd;
	uint32_t cp = s[0] & (0x7f >> k);
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0xfffd;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0xfffd;
	*used = k;
	return cp;
}

/* A character reference at s[0..n) (s[0] is '&'): its code point and length, or 0 when it
 * is none we know (then '&' is text). */
static uint32_t preview_entity(const char *s, size_t n, size_t *used)
{
	static const struct {
		const char *name;
		uint32_t cp;
	} names[] = {{"amp;", '&'},      {"lt;", '<'},       {"gt;", '>'},
	             {"quot;", '"'},     {"apos;", '\''},    {"nbsp;", 0xa0},
	             {"copy;", 0xa9},    {"reg;", 0xae},     {"hellip;", 0x2026},
	             {"mdash;", 0x2014}, {"ndash;", 0x2013}, {"zwnj;", 0x200c}};
	if (n >= 3 && s[1] == '#') {
		bool hex = s[2] == 'x' || s[2] == 'X';
		uint32_t v = 0;
		size_t i = hex ? 3 : 2, start = i;
		for (; i < n && i < start + 8; i++) {
			char c = s[i];
			int d = c >= '0' && c <= '9'          ? c - '0'
			        : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
			        : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10
			                                      : -1;
			if (d < 0)
				break;
			v = v * (hex ? 16 : 10) + (uint32_t)d;
		}
		if (i == start || i >= n || s[i] != ';')
			return 0;
		*used = i + 1;
		return v == 0 || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff) ? 0xfffd : v;
	}
	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		size_t l = strlen(names[k].name);
		if (n > l && strncmp(s + 1, names[k].name, l) == 0) {
			*used = l + 1;
			return names[k].cp;
		}
	}
	return 0;
}

/* Does s[0..n) start with the tag name (case-insensitive) followed by a delimiter? */
static bool preview_tag_is(const char *s, size_t n, const char *name)
{
	size_t l = strlen(name);
	if (n < l || strncasecmp(s, name, l) != 0)
		return false;
	return n == l || s[l] == '>' || s[l] == ' ' || s[l] == '\t' || s[l] == '\r' ||
	       s[l] == '\n' || s[l] == '/';
}

/* Where HTML markup starting at s[i] == '<' ends (the index after it); the contents of
 * <script> and <style> elements count as part of the markup. */
static size_t preview_skip_tag(const char *s, size_t n, size_t i)
{
	if (n - i >= 4 && strncmp(s + i, "<!--", 4) == 0) {
		for (size_t j = i + 4; j + 2 < n; j++)
			if (s[j] == '-' && s[j + 1] == '-' && s[j + 2] == '>')
				return j + 3;
		return n;
	}
	const char *close = NULL;
	if (preview_tag_is(s + i + 1, n - i - 1, "script"))
		close = "</script";
	else if (preview_tag_is(s + i + 1, n - i - 1, "style"))
		close = "</style";
	else if (preview_tag_is(s + i + 1, n - i - 1, "head"))
		close = "</head";
	size_t j = i + 1;
	if (close != NULL) {
		size_t l = strlen(close);
		for (; j + l <= n; j++)
			if (strncasecmp(s + j, close, l) == 0)
				break;
		if (j + l > n)
			return n;
	}
	const char *gt = memchr(s + j, '>', n - j);
	return gt == NULL ? n : (size_t)(gt - s) + 1;
}

static void preview_feed(struct preview_out *o, const char *s, size_t n, bool html)
{
	for (size_t i = 0; i < n && !preview_full(o);) {
		size_t used;
		uint32_t cp;
		if (html && s[i] == '<') {
			i = preview_skip_tag(s, n, i);
			o->space = o->chars > 0; /* a tag separates words (<br>, <p>, <td>) */
			continue;
		}
		if (html && s[i] == '&' && (cp = preview_entity(s + i, n - i, &used)) != 0) {
			preview_put(o, cp);
			i += used;
			continue;
		}
		cp = preview_utf8((const unsigned char *)s + i, n - i, &used);
		preview_put(o, cp);
		i += used;
	}
}

const char *mime_preview_text(struct arena *arena, const char *s, size_t len, int html)
{
	struct preview_out o = {.v = arena_alloc(arena, MIME_PREVIEW_CHARS * 4 + 1)};
	preview_feed(&o, s, len, html != 0);
	if (o.len > 0 && o.v[o.len - 1] == ' ') /* the cut came right after a space */
		o.len--;
	o.v[o.len] = '\0';
	return o.v;
}

static bool preview_attachment(const struct mime_part *p)
{
	return p->disposition != NULL && strcasecmp(p->disposition, "attachment") == 0;
}

/* The first leaf text/<subtype> part in message order that is not an attachment, without
 * entering attached messages; NULL when none. Depth is bounded by the parser's limits. */
static const struct mime_part *preview_find(const struct mime_part *p, const char *subtype)
{
	if (p->kind == MIME_KIND_MULTIPART && p->child_count > 0) {
		for (size_t i = 0; i < p->child_count; i++) {
			const struct mime_part *f = preview_find(&p->children[i], subtype);
			if (f != NULL)
				return f;
		}
		return NULL;
	}
	if (p->kind == MIME_KIND_MESSAGE || preview_attachment(p))
		return NULL;
	return strcmp(p->type, "text") == 0 && strcmp(p->subtype, subtype) == 0 ? p : NULL;
}

const char *mime_preview(struct arena *arena, const unsigned char *msg, size_t len,
                         const struct mime_part *root)
{
	bool html = false;
	const struct mime_part *p = preview_find(root, "plain");
	if (p == NULL) {
		p = preview_find(root, "html");
		html = p != NULL;
	}
	if (p == NULL || p->body_start > len)
		return mime_preview_text(arena, "", 0, 0);
	size_t n = p->body_len < len - p->body_start ? p->body_len : len - p->body_start;
	if (n > MIME_PREVIEW_BODY_MAX)
		n = MIME_PREVIEW_BODY_MAX;
	const unsigned char *raw;
	size_t raw_len;
	if (mime_decode_body(arena, p->cte, msg + p->body_start, n, &raw, &raw_len) < 0) {
		raw = msg + p->body_start; /* an unknown encoding: as it is */
		raw_len = n;
	}
	const char *cs = mime_part_param(p, "charset");
	size_t ulen = raw_len;
	const char *u = (const char *)raw;
	if (cs != NULL)
		u = mime_decode_charset(arena, cs, strlen(cs), raw, raw_len, &ulen);
	return mime_preview_text(arena, u, ulen, html);
}
