/* DKIM canonicalisation and header selection (see dkim_canon.h; RFC 6376 §3.4, §5.4.2). */
#include "mime/dkim_canon.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"
#include "core/banned.h"

static bool dkim_is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static unsigned char dkim_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* ---- header fields ---- */

/* Append f[0..n) with every CR and LF removed, each WSP run made one SP and none at either
 * end; lower-cased when lower. */
static int dkim_relaxed_part(const unsigned char *f, size_t n, bool lower, struct buf *out)
{
	bool wsp = false, any = false;
	size_t run = 0;
	for (size_t i = 0; i <= n; i++) {
		bool end = i == n;
		unsigned char c = end ? 0 : f[i];
		if (!end && c != '\r' && c != '\n' && !dkim_is_wsp(c))
			continue;
		if (i > run) { /* the plain run [run, i) */
			if (wsp && any && buf_append(out, " ", 1) < 0)
				return -1;
			for (size_t k = run; k < i && lower; k++) {
				unsigned char l = dkim_lower(f[k]);
				if (buf_append(out, &l, 1) < 0)
					return -1;
			}
			if (!lower && buf_append(out, f + run, i - run) < 0)
				return -1;
			wsp = false;
			any = true;
		}
		if (!end && dkim_is_wsp(c))
			wsp = true;
		run = i + 1;
	}
	return 0;
}

static int dkim_canon_header_relaxed(const unsigned char *f, size_t len, bool with_crlf,
                                     struct buf *out)
{
	const unsigned char *colon = memchr(f, ':', len);
	size_t name_len = colon != NULL ? (size_t)(colon - f) : len;
	if (dkim_relaxed_part(f, name_len, true, out) < 0)
		return -1;
	if (colon != NULL && (buf_append(out, ":", 1) < 0 ||
	                      dkim_relaxed_part(colon + 1, len - name_len - 1, false, out) < 0))
		return -1;
	if (with_crlf && buf_append(out, "\r\n", 2) < 0)
		return -1;
	return 0;
}

int dkim_canon_header(enum dkim_canon canon, const unsigned char *field, size_t len, bool with_crlf,
                      struct buf *out)
{
	if (canon == DKIM_CANON_RELAXED)
		return dkim_canon_header_relaxed(field, len, with_crlf, out);
	size_t n = len;
	if (!with_crlf && n >= 2 && field[n - 2] == '\r' && field[n - 1] == '\n')
		n -= 2;
	return buf_append(out, field, n);
}

/* Offset just past the line starting at p (its LF included), or len. */
static size_t dkim_line_next(const unsigned char *msg, size_t p, size_t len)
{
	const unsigned char *lf = memchr(msg + p, '\n', len - p);
	return lf != NULL ? (size_t)(lf - msg) + 1 : len;
}

static bool dkim_line_empty(const unsigned char *msg, size_t p, size_t len)
{
	return msg[p] == '\n' || (msg[p] == '\r' && p + 1 < len && msg[p + 1] == '\n');
}

/* Does msg[0..len) have a CR not followed by LF, or an LF not preceded by CR? Every LF
 * preceded by a CR pairs with a distinct CR, so with as many CRs as LFs none is left bare.
 * memchr() rather than a loop over octets: this runs over every message on arrival. */
static bool dkim_canon_has_bare(const unsigned char *msg, size_t len)
{
	const unsigned char *p = msg, *end = msg + len;
	size_t lf = 0, cr = 0;
	while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (p == msg || p[-1] != '\r')
			return true;
		lf++;
		p++;
	}
	for (p = msg; p < end && (p = memchr(p, '\r', (size_t)(end - p))) != NULL; p++)
		cr++;
	return cr != lf;
}

const unsigned char *dkim_canon_message(const unsigned char *msg, size_t len,
                                        unsigned char **copy_r, size_t *len_r)
{
	*copy_r = NULL;
	*len_r = len;
	if (!dkim_canon_has_bare(msg, len))
		return msg;
	struct crlf st;
	crlf_init(&st);
	*copy_r = xmalloc(2 * len + 3);
	size_t n = crlf_convert(&st, msg, len, *copy_r);
	n += crlf_finish(&st, *copy_r + n);
	*len_r = n;
	return *copy_r;
}

size_t dkim_canon_fields(struct arena *arena, const unsigned char *msg, size_t len,
                         size_t max_fields, struct dkim_field **fields_r, size_t *body_r)
{
	/* count first, then fill: one pass each, no reallocation */
	size_t count = 0, cap = 0;
	struct dkim_field *fields = NULL;
	for (int pass = 0; pass < 2; pass++) {
		size_t p = 0;
		count = 0;
		while (p < len && !dkim_line_empty(msg, p, len)) {
			size_t first = dkim_line_next(msg, p, len);
			size_t next = first;
			while (next < len && dkim_is_wsp(msg[next]))
				next = dkim_line_next(msg, next, len);
			if (count < max_fields) {
				if (pass == 1 && count < cap) {
					const unsigned char *colon =
					    memchr(msg + p, ':', first - p);
					size_t n = colon != NULL ? (size_t)(colon - (msg + p)) : 0;
					while (n > 0 && dkim_is_wsp(msg[p + n - 1]))
						n--;
					fields[count] = (struct dkim_field){p, next - p, n};
				}
				count++;
			}
			p = next;
		}
		if (pass == 0) {
			*body_r = p < len ? dkim_line_next(msg, p, len) : len;
			if (count == 0)
				break;
			cap = count;
			fields = arena_alloc(arena, count * sizeof(*fields));
		}
	}
	*fields_r = fields;
	return count;
}

bool dkim_canon_field_is(const unsigned char *msg, const struct dkim_field *f, const char *name)
{
	size_t n = strlen(name);
	return f->name_len == n && n > 0 && strncasecmp((const char *)msg + f->start, name, n) == 0;
}

/* Distinct names of an h= list and how far up each one's bottom-up search has come. */
struct dkim_cursor {
	const char *name;
	size_t next; /* fields[0..next) are still candidates */
};

void dkim_canon_select(const unsigned char *msg, const struct dkim_field *fields, size_t nfields,
                       const char *const *names, size_t n, size_t *picked_r)
{
	struct dkim_cursor cursors[DKIM_CANON_SELECT_NAMES_MAX];
	size_t ncursors = 0;
	for (size_t i = 0; i < n; i++) {
		struct dkim_cursor *c = NULL;
		for (size_t k = 0; k < ncursors && c == NULL; k++)
			if (strcasecmp(cursors[k].name, names[i]) == 0)
				c = &cursors[k];
		if (c == NULL && ncursors < DKIM_CANON_SELECT_NAMES_MAX) {
			c = &cursors[ncursors++];
			*c = (struct dkim_cursor){names[i], nfields};
		}
		picked_r[i] = SIZE_MAX;
		while (c != NULL && c->next > 0) {
			c->next--;
			if (dkim_canon_field_is(msg, &fields[c->next], names[i])) {
				picked_r[i] = c->next;
				break;
			}
		}
	}
}

/* ---- body ---- */

void dkim_body_canon_init(struct dkim_body_canon *bc, enum dkim_canon canon, dkim_canon_out_fn *out,
                          void *ctx)
{
	memset(bc, 0, offsetof(struct dkim_body_canon, stage));
	bc->canon = canon;
	bc->out = out;
	bc->ctx = ctx;
	crlf_init(&bc->crlf);
}

static void dkim_body_flush(struct dkim_body_canon *bc)
{
	if (bc->staged > 0)
		bc->out(bc->ctx, bc->stage, bc->staged);
	bc->written += bc->staged;
	bc->staged = 0;
}

static void dkim_body_put(struct dkim_body_canon *bc, unsigned char c)
{
	if (bc->staged == sizeof(bc->stage))
		dkim_body_flush(bc);
	bc->stage[bc->staged++] = c;
}

static void dkim_body_put_run(struct dkim_body_canon *bc, const unsigned char *p, size_t n)
{
	while (n > 0) {
		if (bc->staged == sizeof(bc->stage))
			dkim_body_flush(bc);
		size_t k = sizeof(bc->stage) - bc->staged;
		if (k > n)
			k = n;
		memcpy(bc->stage + bc->staged, p, k);
		bc->staged += k;
		p += k;
		n -= k;
	}
}

/* An octet that ends a run of plain ones: CR, LF, or WSP (which relaxed folds). */
static bool dkim_body_special(unsigned char c)
{
	return c == '\r' || c == '\n' || c == ' ' || c == '\t';
}

static void dkim_body_crlf(struct dkim_body_canon *bc)
{
	dkim_body_put(bc, '\r');
	dkim_body_put(bc, '\n');
}

/* Octets whose line ends are CRLF already (core/crlf's output: every CR is followed by its
 * LF, so a CR is skipped and the LF ends the line). */
static void dkim_body_scan(struct dkim_body_canon *bc, const unsigned char *p, size_t n)
{
	bool relaxed = bc->canon == DKIM_CANON_RELAXED;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		if (c == '\r')
			continue;
		if (c == '\n') {
			if (bc->content)
				dkim_body_crlf(bc);
			else
				bc->empty_lines++;
			bc->content = false;
			bc->wsp = false;
			continue;
		}
		if (relaxed && dkim_is_wsp(c)) {
			bc->wsp = true;
			continue;
		}
		if (!bc->content) {
			for (; bc->empty_lines > 0; bc->empty_lines--)
				dkim_body_crlf(bc);
			bc->content = true;
		}
		if (bc->wsp) {
			dkim_body_put(bc, ' ');
			bc->wsp = false;
		}
		/* c and the octets after it up to the next CR, LF or WSP go out as they are */
		size_t run = 1;
		while (i + run < n && !dkim_body_special(p[i + run]))
			run++;
		dkim_body_put_run(bc, p + i, run);
		i += run - 1;
	}
}

void dkim_body_canon_update(struct dkim_body_canon *bc, const unsigned char *data, size_t len)
{
	/* The usual case, octets from an SMTP spool: every line end CRLF already, no CR of an
	 * earlier call waiting for its LF, none at the end. */
	if (!bc->crlf.cr && (len == 0 || data[len - 1] != '\r') &&
	    !dkim_canon_has_bare(data, len)) {
		dkim_body_scan(bc, data, len);
		return;
	}
	unsigned char norm[2 * 1024 + 1];
	for (size_t i = 0; i < len; i += 1024) {
		size_t k = len - i < 1024 ? len - i : 1024;
		size_t n = crlf_convert(&bc->crlf, data + i, k, norm);
		dkim_body_scan(bc, norm, n);
	}
}

void dkim_body_canon_final(struct dkim_body_canon *bc)
{
	unsigned char tail[2];
	size_t n = crlf_finish(&bc->crlf, tail);
	dkim_body_scan(bc, tail, n);
	/* a WSP run ending the body is at the end of its line: dropped (relaxed) */
	if (bc->content)
		dkim_body_crlf(bc);
	bc->content = false;
	bc->wsp = false;
	bc->empty_lines = 0;
	if (bc->canon == DKIM_CANON_SIMPLE && bc->written == 0 && bc->staged == 0)
		dkim_body_crlf(bc);
	dkim_body_flush(bc);
}
