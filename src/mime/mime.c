/* MIME tree of an in-memory message (see mime.h). One forward pass over the buffer with an
 * explicit stack of open boundaries (no recursion while parsing): a HEADER state that finds
 * where each part's header ends and reads its Content-* fields, and a BODY state that looks
 * for the next boundary line of any open multipart (RFC 2046 §5.1.1, §5.1.2). The boundary
 * and recovery rules are Dovecot's, so that BODYSTRUCTURE answers match dovecot-imapd's:
 * the longest matching open boundary wins, a boundary of an outer multipart closes the inner
 * parts, a header is cut short by a boundary line, Content-* fields count only in MIME parts.
 * A final pass turns the parse nodes into arrays and computes sizes and line counts, visiting
 * every octet once. */
#include "mime/mime.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mime/rfc822_addr.h"
#include "core/banned.h"

/* RFC 2046 §5.1.1 allows 70 characters; longer boundary parameters are cut (as Dovecot's
 * BOUNDARY_STRING_MAX_LEN). */
#define MIME_BOUNDARY_MAX 80
#define MIME_BUF_MAX (SIZE_MAX / 4)
/* Parameters plus unparsable spots read from one parameter list (Dovecot's count). */
#define MIME_PARAM_STEPS_MAX 128

struct mime_node {
	struct mime_part p;
	struct mime_node *parent, *first, *last, *next;
	size_t nchildren;
	size_t body_end;
	bool digest; /* multipart/digest: children default to message/rfc822 */
};

struct mime_boundary {
	const char *s;
	size_t len;
	struct mime_node *owner;
};

struct mime_parser {
	struct arena *arena;
	const unsigned char *msg;
	size_t len;
	struct mime_limits lim;
	unsigned parts;
	bool limited;
	struct mime_boundary *bnd;
	size_t nbnd, capbnd;
	struct buf tmp;
	/* A header cut short by the boundary line at cut_q: the line break before that line
	 * is not the cut part's but its parent's (as in Dovecot), so cut_node ends before the
	 * line break and its ancestors at cut_q. */
	struct mime_node *cut_node;
	size_t cut_q;
};

/* What the Content-* fields of one header say. */
struct mime_ctype {
	const char *type_raw, *subtype_raw; /* NULL when no Content-Type */
	const char *boundary;               /* multipart boundary parameter, or NULL */
	bool multipart, digest, message;    /* the Content-Type's class */
};

/* ---- small helpers ---- */

static void mime_put(struct buf *b, const void *p, size_t n)
{
	if (buf_append(b, p, n) < 0)
		log_panic("mime: builder overflow");
}

static const char *mime_buf_dup(struct arena *arena, const struct buf *b)
{
	return arena_strndup(arena, b->len > 0 ? b->data : "", b->len);
}

static char *mime_lower_dup(struct arena *arena, const char *s)
{
	char *d = arena_strdup(arena, s);
	for (char *p = d; *p != '\0'; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
	return d;
}

static bool mime_is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* ---- header fields ---- */

void mime_field_iter_init(struct mime_field_iter *it, const unsigned char *msg, size_t start,
                          size_t end)
{
	it->msg = msg;
	it->pos = start;
	it->end = end;
}

/* End of the line starting at p (just after its LF), or end. */
static size_t mime_line_next(const unsigned char *msg, size_t p, size_t end)
{
	const unsigned char *lf = memchr(msg + p, '\n', end - p);
	return lf != NULL ? (size_t)(lf - msg) + 1 : end;
}

/* Length of the line [p, next) without its line end (LF, or CR LF). */
static size_t mime_line_content(const unsigned char *msg, size_t p, size_t next)
{
	size_t n = next - p;
	if (n > 0 && msg[next - 1] == '\n') {
		n--;
		if (n > 0 && msg[p + n - 1] == '\r')
			n--;
	}
	return n;
}

bool mime_field_iter_next(struct mime_field_iter *it, struct mime_field *f)
{
	const unsigned char *msg = it->msg;
	size_t p = it->pos, end = it->end;
	if (p >= end || msg[p] == '\n' || (msg[p] == '\r' && p + 1 < end && msg[p + 1] == '\n'))
		return false;
	size_t next = mime_line_next(msg, p, end);
	size_t content = mime_line_content(msg, p, next);
	const unsigned char *colon = memchr(msg + p, ':', content);
	f->start = p;
	f->has_colon = colon != NULL;
	if (colon != NULL) {
		size_t n = (size_t)(colon - (msg + p));
		f->value_start = p + n + 1;
		while (n > 0 && mime_is_wsp(msg[p + n - 1]))
			n--;
		f->name_len = n;
	} else {
		f->name_len = content;
	}
	while (next < end && mime_is_wsp(msg[next]))
		next = mime_line_next(msg, next, end);
	f->len = next - p;
	if (colon == NULL)
		f->value_start = next;
	it->pos = next;
	return true;
}

bool mime_field_is(const unsigned char *msg, const struct mime_field *f, const char *name)
{
	size_t n = strlen(name);
	/* a name ends at a NUL octet, as it does for Dovecot's C-string names */
	size_t len = strnlen((const char *)msg + f->start, f->name_len);
	return f->has_colon && len == n && strncasecmp((const char *)msg + f->start, name, n) == 0;
}

static void mime_put_raw(struct buf *b, const unsigned char *s, size_t n)
{
	mime_put(b, s, n);
}

/* Append s[0..n) with NUL octets replaced by U+FFFD. */
static void mime_put_text(struct buf *b, const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		const unsigned char *nul = memchr(s + i, '\0', n - i);
		size_t run = nul != NULL ? (size_t)(nul - s) - i : n - i;
		mime_put(b, s + i, run);
		i += run;
		if (i < n) {
			mime_put(b, "\xEF\xBF\xBD", 3);
			i++;
		}
	}
}

static char *mime_field_value_ex(struct arena *arena, const unsigned char *msg,
                                 const struct mime_field *f, size_t *len_r, bool keep_nul)
{
	struct buf b;
	size_t end = f->start + f->len;
	buf_init(&b, MIME_BUF_MAX);
	void (*put)(struct buf *, const unsigned char *, size_t) =
	    keep_nul ? mime_put_raw : mime_put_text;
	if (f->has_colon) {
		size_t p = f->value_start;
		size_t next = mime_line_next(msg, p, end);
		size_t n = mime_line_content(msg, p, next);
		size_t skip = 0;
		while (skip < n && mime_is_wsp(msg[p + skip]))
			skip++;
		if (skip == n && n > 0)
			skip = 1; /* a body of only WSP loses one octet (Dovecot) */
		put(&b, msg + p + skip, n - skip);
		for (p = next; p < end; p = next) {
			/* the folding line break stays as one "\n" (Dovecot's full value); the
			 * IMAP writers remove it */
			next = mime_line_next(msg, p, end);
			mime_put(&b, "\n", 1);
			put(&b, msg + p, mime_line_content(msg, p, next));
		}
	}
	char *s = arena_strndup(arena, b.len > 0 ? b.data : "", b.len);
	if (len_r != NULL)
		*len_r = b.len;
	buf_free(&b);
	return s;
}

char *mime_field_value(struct arena *arena, const unsigned char *msg, const struct mime_field *f,
                       size_t *len_r)
{
	return mime_field_value_ex(arena, msg, f, len_r, false);
}

char *mime_field_value_raw(struct arena *arena, const unsigned char *msg,
                           const struct mime_field *f, size_t *len_r)
{
	return mime_field_value_ex(arena, msg, f, len_r, true);
}

char *mime_field_unfolded(struct arena *arena, const unsigned char *msg, const struct mime_field *f,
                          size_t *len_r)
{
	size_t len, o = 0;
	char *s = mime_field_value_ex(arena, msg, f, &len, true);
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '\r' && s[i] != '\n' && (o > 0 || !mime_is_wsp((unsigned char)s[i])))
			s[o++] = s[i];
	}
	while (o > 0 && mime_is_wsp((unsigned char)s[o - 1]))
		o--;
	s[o] = '\0';
	*len_r = o;
	return s;
}

/* ---- Content-Type parameters (RFC 2045 §5.1, RFC 2231 §3) ---- */

struct mime_ext_param {
	const char *key, *value;
	unsigned idx;
	bool extended;
	size_t order;
};

struct mime_param_list {
	struct mime_param *v;
	size_t n, cap;
	struct mime_ext_param *ext;
	size_t next, extcap;
};

static void mime_params_add(struct mime_param_list *l, const char *name, const char *value)
{
	if (l->n == l->cap) {
		l->cap = l->cap < 8 ? 8 : l->cap * 2;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n].name = name;
	l->v[l->n].value = value;
	l->n++;
}

/* ";" attribute "=" value. 1 = got one, 0 = end, -1 = broken. */
static int mime_param_next(struct mime_parser *ps, struct rfc822_addr_cursor *c, const char **key_r,
                           const char **value_r)
{
	if (c->p >= c->end)
		return 0;
	if (*c->p != ';')
		return -1;
	c->p++;
	if (rfc822_addr_skip_cfws(c) <= 0)
		return -1;
	buf_reset(&ps->tmp);
	if (rfc822_addr_mime_token(c, &ps->tmp) <= 0 || *c->p != '=')
		return -1;
	*key_r = mime_buf_dup(ps->arena, &ps->tmp);
	c->p++;
	buf_reset(&ps->tmp);
	int ret = rfc822_addr_skip_cfws(c);
	if (ret <= 0) {
		/* no value */
	} else if (*c->p == '"') {
		ret = rfc822_addr_quoted_string(c, &ps->tmp);
	} else if (*c->p == '=') {
		/* broken but common: name==?utf-8?b?...?= */
		const unsigned char *start = c->p;
		while (c->p < c->end && *c->p != ';' && *c->p != ' ' && *c->p != '\t' &&
		       *c->p != '\r' && *c->p != '\n')
			c->p++;
		/* Dovecot keeps this value as a C string: it ends at a NUL */
		const unsigned char *nul = memchr(start, '\0', (size_t)(c->p - start));
		mime_put(&ps->tmp, start, (size_t)((nul != NULL ? nul : c->p) - start));
	} else {
		ret = rfc822_addr_mime_token(c, &ps->tmp);
	}
	*value_r = mime_buf_dup(ps->arena, &ps->tmp);
	return ret < 0 ? -1 : 1;
}

static int mime_ext_cmp(const void *a, const void *b)
{
	const struct mime_ext_param *x = a, *y = b;
	int r = strcmp(x->key, y->key);
	if (r != 0)
		return r;
	if (x->idx != y->idx)
		return x->idx < y->idx ? -1 : 1;
	return x->order < y->order ? -1 : (x->order > y->order ? 1 : 0);
}

/* Classify key as an RFC 2231 section "name*", "name*N" or "name*N*". idx carries over
 * from the previous section when the key has no number (as Dovecot's parser does). */
static bool mime_ext_key(struct mime_parser *ps, const char *key, unsigned *idx,
                         struct mime_ext_param *e_r)
{
	const char *star = strchr(key, '*');
	if (star == NULL)
		return false;
	const char *p = star;
	if (p[1] != '\0') {
		p++;
		*idx = 0;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (*idx <= (UINT32_MAX - 9) / 10)
				*idx = *idx * 10 + (unsigned)(*p - '0');
		}
	}
	e_r->extended = *p == '*';
	if (e_r->extended)
		p++;
	if (*p != '\0')
		return false;
	e_r->key = arena_strndup(ps->arena, key, (size_t)(star - key));
	e_r->idx = *idx;
	return true;
}

/* Merge the RFC 2231 sections of one name ext[i..j): continuous numbering gives one
 * parameter; a gap keeps every section as its own "name*N[*]" parameter. */
static void mime_ext_merge(struct mime_parser *ps, struct mime_param_list *l, size_t i, size_t j)
{
	struct mime_ext_param *e = l->ext;
	bool ok = true, have_ext = false;
	for (size_t k = i; k < j; k++) {
		ok = ok && e[k].idx == k - i;
		have_ext = have_ext || e[k].extended;
	}
	if (!ok) {
		for (size_t k = i; k < j; k++) {
			buf_reset(&ps->tmp);
			if (buf_printf(&ps->tmp, "%s*%u%s", e[k].key, e[k].idx,
			               e[k].extended ? "*" : "") < 0)
				log_panic("mime: builder overflow");
			mime_params_add(l, mime_buf_dup(ps->arena, &ps->tmp), e[k].value);
		}
		return;
	}
	buf_reset(&ps->tmp);
	if (!e[i].extended && have_ext)
		mime_put(&ps->tmp, "''", 2);
	for (size_t k = i; k < j; k++) {
		const char *v = e[k].value;
		if (e[k].extended || !have_ext) {
			mime_put(&ps->tmp, v, strlen(v));
			continue;
		}
		for (; *v != '\0'; v++) {
			if (*v == '%')
				mime_put(&ps->tmp, "%25", 3);
			else
				mime_put(&ps->tmp, v, 1);
		}
	}
	const char *value = mime_buf_dup(ps->arena, &ps->tmp);
	const char *name = e[i].key;
	if (have_ext) {
		size_t n = strlen(name);
		char *s = arena_alloc(ps->arena, n + 2);
		memcpy(s, name, n);
		s[n] = '*';
		s[n + 1] = '\0';
		name = s;
	}
	mime_params_add(l, name, value);
}

/* Parse the parameters at the cursor into an arena array. */
static void mime_parse_params(struct mime_parser *ps, struct rfc822_addr_cursor *c,
                              const struct mime_param **params_r, size_t *count_r)
{
	struct mime_param_list l;
	unsigned idx = 0, steps = 0;
	int ret;
	const char *key, *value;
	memset(&l, 0, sizeof(l));
	/* dovecot-imapd 2.3.19 reads at most 128 parameters and unparsable spots together
	 * (observed: the rest of the list is ignored), so that is what we do too */
	while (steps++ < MIME_PARAM_STEPS_MAX &&
	       (ret = mime_param_next(ps, c, &key, &value)) != 0) {
		if (ret < 0) {
			/* skip one octet and try again, as Dovecot does */
			if (c->p >= c->end)
				break;
			c->p++;
			continue;
		}
		struct mime_ext_param e;
		if (!mime_ext_key(ps, key, &idx, &e)) {
			mime_params_add(&l, key, value);
			continue;
		}
		if (l.next == l.extcap) {
			l.extcap = l.extcap < 8 ? 8 : l.extcap * 2;
			l.ext = xrealloc(l.ext, l.extcap * sizeof(*l.ext));
		}
		e.value = value;
		e.order = l.next;
		l.ext[l.next++] = e;
	}
	if (l.next > 0) {
		qsort(l.ext, l.next, sizeof(*l.ext), mime_ext_cmp);
		for (size_t i = 0, j; i < l.next; i = j) {
			for (j = i + 1; j < l.next && strcasecmp(l.ext[i].key, l.ext[j].key) == 0;
			     j++)
				;
			mime_ext_merge(ps, &l, i, j);
		}
	}
	*params_r = NULL;
	*count_r = l.n;
	if (l.n > 0) {
		struct mime_param *v = arena_alloc(ps->arena, l.n * sizeof(*v));
		memcpy(v, l.v, l.n * sizeof(*v));
		*params_r = v;
	}
	free(l.v);
	free(l.ext);
}

/* ---- Content-* fields ---- */

static void mime_cursor_init(struct rfc822_addr_cursor *c, const char *s, size_t len)
{
	c->p = (const unsigned char *)s;
	c->end = c->p + len;
	c->comment = NULL;
}

/* RFC 2045 §5.1 type "/" subtype, then parameters. A value that is not exactly that (with
 * comments allowed) is broken and gives type "" and subtype "" (the part is then neither
 * text, multipart nor message), except that a lone type token ("text") is kept as the type
 * — both as dovecot-imapd 2.3 does. Parameters are read only from a valid value. */
static void mime_content_type(struct mime_parser *ps, struct mime_part *part, struct mime_ctype *ct,
                              const char *value, size_t len)
{
	struct rfc822_addr_cursor c;
	struct buf *t = &ps->tmp;
	int ret = -1;
	size_t slash = SIZE_MAX;
	mime_cursor_init(&c, value, len);
	buf_reset(t);
	if (rfc822_addr_skip_cfws(&c) > 0 && rfc822_addr_mime_token(&c, t) > 0 && t->len > 0) {
		if (*c.p == '/' && (c.p++, rfc822_addr_skip_cfws(&c) > 0)) {
			slash = t->len;
			mime_put(t, "/", 1);
			ret = rfc822_addr_mime_token(&c, t);
			if (ret < 0 || t->len == slash + 1 || (c.p < c.end && *c.p != ';'))
				ret = -1;
		}
		if (ret < 0) {
			buf_reset(t);
			slash = SIZE_MAX;
		}
	}
	const char *full = mime_buf_dup(ps->arena, t);
	if (slash == SIZE_MAX) {
		ct->type_raw = full;
		ct->subtype_raw = "";
	} else {
		ct->type_raw = arena_strndup(ps->arena, full, slash);
		ct->subtype_raw = full + slash + 1;
	}
	ct->message = strcasecmp(full, "message/rfc822") == 0;
	ct->multipart = strncasecmp(full, "multipart/", 10) == 0;
	ct->digest = ct->multipart && strcasecmp(full + 10, "digest") == 0;
	if (ret < 0)
		return;
	mime_parse_params(ps, &c, &part->params, &part->param_count);
	if (!ct->multipart)
		return;
	for (size_t i = 0; i < part->param_count; i++) {
		if (strcasecmp(part->params[i].name, "boundary") == 0) {
			const char *b = part->params[i].value;
			ct->boundary = arena_strndup(ps->arena, b, strnlen(b, MIME_BOUNDARY_MAX));
			break;
		}
	}
}

static enum mime_encoding mime_encoding_of(const char *s)
{
	static const struct {
		const char *name;
		enum mime_encoding e;
	} names[] = {
	    {"7bit", MIME_ENCODING_7BIT},
	    {"8bit", MIME_ENCODING_8BIT},
	    {"binary", MIME_ENCODING_BINARY},
	    {"base64", MIME_ENCODING_BASE64},
	    {"quoted-printable", MIME_ENCODING_QUOTED_PRINTABLE},
	};
	if (s == NULL)
		return MIME_ENCODING_7BIT;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(s, names[i].name) == 0)
			return names[i].e;
	}
	return MIME_ENCODING_OTHER;
}

/* A single token and nothing else, or the field does not count. */
static void mime_content_encoding(struct mime_parser *ps, struct mime_part *part, const char *value,
                                  size_t len)
{
	struct rfc822_addr_cursor c;
	mime_cursor_init(&c, value, len);
	buf_reset(&ps->tmp);
	(void)rfc822_addr_skip_cfws(&c);
	if (rfc822_addr_mime_token(&c, &ps->tmp) >= 0 && rfc822_addr_skip_cfws(&c) == 0 &&
	    ps->tmp.len > 0)
		part->encoding = mime_buf_dup(ps->arena, &ps->tmp);
}

static void mime_content_disposition(struct mime_parser *ps, struct mime_part *part,
                                     const char *value, size_t len)
{
	struct rfc822_addr_cursor c;
	mime_cursor_init(&c, value, len);
	buf_reset(&ps->tmp);
	(void)rfc822_addr_skip_cfws(&c);
	if (rfc822_addr_mime_token(&c, &ps->tmp) < 0)
		return;
	part->disposition = mime_buf_dup(ps->arena, &ps->tmp);
	mime_parse_params(ps, &c, &part->disposition_params, &part->disposition_param_count);
}

/* 1#Language-tag (RFC 3282): atoms separated by commas; stops at anything else. */
static void mime_content_language(struct mime_parser *ps, struct mime_part *part, const char *value,
                                  size_t len)
{
	struct rfc822_addr_cursor c;
	const char *tags[64];
	const char **v = tags;
	size_t n = 0, cap = sizeof(tags) / sizeof(tags[0]);
	mime_cursor_init(&c, value, len);
	(void)rfc822_addr_skip_cfws(&c);
	for (;;) {
		buf_reset(&ps->tmp);
		if (rfc822_addr_atom(&c, &ps->tmp) < 0)
			break;
		if (n == cap) {
			const char **nv = arena_alloc(ps->arena, 2 * cap * sizeof(*nv));
			memcpy(nv, v, n * sizeof(*nv));
			v = nv;
			cap *= 2;
		}
		v[n++] = mime_buf_dup(ps->arena, &ps->tmp);
		if (c.p >= c.end || *c.p != ',')
			break;
		c.p++;
		(void)rfc822_addr_skip_cfws(&c);
	}
	if (n == 0)
		return;
	const char **out = arena_alloc(ps->arena, n * sizeof(*out));
	memcpy(out, v, n * sizeof(*out));
	part->languages = out;
	part->language_count = n;
}

/* Read one Content-* field into part / ct. First occurrence wins (Dovecot re-reads
 * Content-Disposition while it has no parameters; so do we). */
static void mime_content_field(struct mime_parser *ps, struct mime_part *part,
                               struct mime_ctype *ct, const struct mime_field *f)
{
	const unsigned char *msg = ps->msg;
	size_t len;
	if (mime_field_is(msg, f, "content-type")) {
		if (ct->type_raw == NULL) {
			char *v = mime_field_value_raw(ps->arena, msg, f, &len);
			mime_content_type(ps, part, ct, v, len);
		}
	} else if (mime_field_is(msg, f, "content-transfer-encoding")) {
		if (part->encoding == NULL) {
			char *v = mime_field_value_raw(ps->arena, msg, f, &len);
			mime_content_encoding(ps, part, v, len);
		}
	} else if (mime_field_is(msg, f, "content-disposition")) {
		if (part->disposition_param_count == 0) {
			char *v = mime_field_value_raw(ps->arena, msg, f, &len);
			mime_content_disposition(ps, part, v, len);
		}
	} else if (mime_field_is(msg, f, "content-language")) {
		if (part->languages == NULL) {
			char *v = mime_field_value_raw(ps->arena, msg, f, &len);
			mime_content_language(ps, part, v, len);
		}
	} else if (mime_field_is(msg, f, "content-id")) {
		if (part->id == NULL)
			part->id = mime_field_value(ps->arena, msg, f, NULL);
	} else if (mime_field_is(msg, f, "content-description")) {
		if (part->description == NULL)
			part->description = mime_field_value(ps->arena, msg, f, NULL);
	} else if (mime_field_is(msg, f, "content-md5")) {
		if (part->md5 == NULL)
			part->md5 = mime_field_value(ps->arena, msg, f, NULL);
	} else if (mime_field_is(msg, f, "content-location")) {
		if (part->location == NULL)
			part->location = mime_field_value(ps->arena, msg, f, NULL);
	}
}

/* Forget every Content-* field (a part that is not MIME). */
static void mime_content_clear(struct mime_part *part)
{
	part->params = NULL;
	part->param_count = 0;
	part->id = part->description = part->md5 = part->location = NULL;
	part->encoding = NULL;
	part->disposition = NULL;
	part->disposition_params = NULL;
	part->disposition_param_count = 0;
	part->languages = NULL;
	part->language_count = 0;
}

/* Read the header of n (its offsets are set) and decide its type. */
static void mime_header_read(struct mime_parser *ps, struct mime_node *n, struct mime_ctype *ct)
{
	struct mime_part *part = &n->p;
	struct mime_field_iter it;
	struct mime_field f;
	size_t end = part->header_start + part->header_len;
	bool mime_version = false;
	memset(ct, 0, sizeof(*ct));
	if (ps->lim.header_max > 0 && part->header_len > ps->lim.header_max) {
		end = part->header_start + ps->lim.header_max;
		part->overflow = true;
		ps->limited = true;
	}
	mime_field_iter_init(&it, ps->msg, part->header_start, end);
	while (mime_field_iter_next(&it, &f)) {
		if (mime_field_is(ps->msg, &f, "mime-version"))
			mime_version = true;
		else if (f.name_len >= 8 &&
		         strncasecmp((const char *)ps->msg + f.start, "content-", 8) == 0)
			mime_content_field(ps, part, ct, &f);
	}
	bool in_multipart = n->parent != NULL && n->parent->p.kind == MIME_KIND_MULTIPART;
	part->mime = in_multipart || mime_version || ct->type_raw != NULL;
	if (!part->mime) {
		mime_content_clear(part);
		memset(ct, 0, sizeof(*ct));
	}
	part->cte = mime_encoding_of(part->encoding);
	if (ct->type_raw != NULL) {
		part->type_raw = ct->type_raw;
		part->subtype_raw = ct->subtype_raw;
		part->type = mime_lower_dup(ps->arena, ct->type_raw);
		part->subtype = mime_lower_dup(ps->arena, ct->subtype_raw);
	} else if (n->parent != NULL && n->parent->digest && in_multipart) {
		part->type = "message";
		part->subtype = "rfc822";
		ct->message = true;
	} else {
		part->type = "text";
		part->subtype = "plain";
	}
}

/* ---- parse nodes and boundaries ---- */

static struct mime_node *mime_node_new(struct mime_parser *ps, struct mime_node *parent)
{
	struct mime_node *n = arena_alloc(ps->arena, sizeof(*n));
	memset(n, 0, sizeof(*n));
	n->parent = parent;
	n->p.type = "text";
	n->p.subtype = "plain";
	ps->parts++;
	if (parent != NULL) {
		n->p.depth = parent->p.depth + 1;
		if (parent->last == NULL)
			parent->first = n;
		else
			parent->last->next = n;
		parent->last = n;
		parent->nchildren++;
	}
	return n;
}

static void mime_boundary_push(struct mime_parser *ps, struct mime_node *owner, const char *s)
{
	if (ps->nbnd == ps->capbnd) {
		ps->capbnd = ps->capbnd < 8 ? 8 : ps->capbnd * 2;
		ps->bnd = xrealloc(ps->bnd, ps->capbnd * sizeof(*ps->bnd));
	}
	ps->bnd[ps->nbnd].s = s;
	ps->bnd[ps->nbnd].len = strlen(s);
	ps->bnd[ps->nbnd].owner = owner;
	ps->nbnd++;
}

/* Is the line at q a boundary line "--" boundary of an open multipart? Returns the index of
 * the longest matching boundary (the newest on a tie), or -1; *close_r tells a close
 * delimiter (boundary followed by "--"). Once parts_max parts exist, no boundary matches
 * any more and cur (the part being read) is marked overflow. */
static ssize_t mime_boundary_match(struct mime_parser *ps, struct mime_node *cur, size_t q,
                                   bool *close_r)
{
	const unsigned char *msg = ps->msg;
	if (ps->nbnd == 0 || ps->len - q < 2 || msg[q] != '-' || msg[q + 1] != '-')
		return -1;
	if (ps->parts >= ps->lim.parts_max) {
		cur->p.overflow = true;
		ps->limited = true;
		return -1;
	}
	size_t start = q + 2, avail = ps->len - start, find = avail;
	const unsigned char *lf = memchr(msg + start, '\n', avail);
	if (lf != NULL) {
		find = (size_t)(lf - (msg + start));
		if (find > 0 && msg[start + find - 1] == '\r')
			find--;
		if (find > 2 && msg[start + find - 1] == '-' && msg[start + find - 2] == '-')
			find -= 2;
	}
	ssize_t best = -1;
	for (size_t i = ps->nbnd; i-- > 0;) {
		const struct mime_boundary *b = &ps->bnd[i];
		if (b->len > find || memcmp(b->s, msg + start, b->len) != 0)
			continue;
		if (best < 0 || ps->bnd[best].len < b->len) {
			best = (ssize_t)i;
			if (b->len == find)
				break;
		}
	}
	if (best >= 0) {
		size_t blen = ps->bnd[best].len;
		*close_r =
		    avail >= blen + 2 && msg[start + blen] == '-' && msg[start + blen + 1] == '-';
	}
	return best;
}

static void mime_cut(struct mime_parser *ps, struct mime_node *n, size_t q)
{
	ps->cut_node = n;
	ps->cut_q = q;
}

/* The header of cur starts at logical; scanning starts at scan (they differ only when the
 * first line is already known to be a boundary line). Sets the header offsets; *next_r is
 * the next line to look at. Returns 1 when the header ended with an empty line (its length
 * in *blank_r), 0 when it ended at the end of the message, -1 when a boundary line cut it
 * short (*next_r is that line; the body is then empty). */
static int mime_header_scan(struct mime_parser *ps, struct mime_node *cur, size_t scan,
                            size_t logical, size_t *next_r, size_t *blank_r)
{
	const unsigned char *msg = ps->msg;
	size_t p = scan, prev_nl = 0, hend = ps->len;
	int ret = 0;
	bool close;
	while (p < ps->len) {
		if (mime_boundary_match(ps, cur, p, &close) >= 0) {
			/* the previous line break belongs to the boundary (RFC 2046 §5.1.1) */
			hend = p == scan ? logical : p - prev_nl;
			if (p != scan)
				mime_cut(ps, cur, p);
			ret = -1;
			break;
		}
		if (msg[p] == '\n' || (msg[p] == '\r' && p + 1 < ps->len && msg[p + 1] == '\n')) {
			*blank_r = msg[p] == '\n' ? 1 : 2;
			hend = p + *blank_r;
			ret = 1;
			break;
		}
		const unsigned char *lf = memchr(msg + p, '\n', ps->len - p);
		if (lf == NULL)
			break;
		size_t l = (size_t)(lf - msg);
		prev_nl = l > p && msg[l - 1] == '\r' ? 2 : 1;
		p = l + 1;
	}
	cur->p.header_start = logical;
	cur->p.header_len = hend - logical;
	cur->p.body_start = hend;
	*next_r = ret < 0 ? p : hend;
	return ret;
}

/* Close cur and its ancestors up to (not including) owner (NULL = all) at offset end, for a
 * boundary line at q (see cut_node). */
static void mime_close(struct mime_parser *ps, struct mime_node *cur, const struct mime_node *owner,
                       size_t end, size_t q)
{
	bool cut = ps->cut_node != NULL && ps->cut_q == q;
	for (; cur != owner && cur != NULL; cur = cur->parent) {
		cur->body_end = end;
		if (cut && cur == ps->cut_node)
			end = q;
	}
	ps->cut_node = NULL;
}

/* ---- the parse loop ---- */

/* Header state for cur: read it, decide its kind; returns the node whose body comes next
 * (cur, or a new encapsulated message whose header follows). */
static struct mime_node *mime_step_header(struct mime_parser *ps, struct mime_node *cur,
                                          size_t *scan, size_t *logical, bool *header_next)
{
	struct mime_ctype ct;
	size_t next, blank = 0;
	bool close;
	int eoh = mime_header_scan(ps, cur, *scan, *logical, &next, &blank);
	mime_header_read(ps, cur, &ct);
	*header_next = false;
	bool room = cur->p.depth + 1 < ps->lim.depth_max;
	if (ct.multipart) {
		cur->p.kind = MIME_KIND_MULTIPART;
		cur->digest = ct.digest;
		if (ct.boundary != NULL && eoh > 0) {
			if (room) {
				mime_boundary_push(ps, cur, ct.boundary);
			} else {
				cur->p.kind = MIME_KIND_LEAF;
				cur->p.overflow = true;
				ps->limited = true;
			}
		}
	}
	if (eoh > 0 && next < ps->len) {
		ssize_t bi = mime_boundary_match(ps, cur, next, &close);
		if (bi >= 0 && ps->bnd[bi].owner != cur) {
			/* An enclosing boundary right after the empty line: that line break is
			 * the boundary's (RFC 2046 §5.1.1), so this part has a header without
			 * its empty line and no body (as Dovecot cuts it). */
			cur->p.header_len -= blank;
			cur->p.body_start -= blank;
			mime_cut(ps, cur, next);
		}
	}
	*scan = next;
	*logical = cur->p.body_start;
	if (ct.message) {
		if (room && ps->parts < ps->lim.parts_max) {
			cur->p.kind = MIME_KIND_MESSAGE;
			*header_next = true;
			return mime_node_new(ps, cur);
		}
		cur->p.overflow = true;
		ps->limited = true;
	}
	return cur;
}

/* Body state for cur from line scan (logical = where cur's body ends if that first line is
 * a boundary). Returns the node to continue with, or NULL at the end of the message. */
static struct mime_node *mime_step_body(struct mime_parser *ps, struct mime_node *cur, size_t *scan,
                                        size_t *logical, bool *header_next)
{
	const unsigned char *msg = ps->msg;
	size_t q = *scan, end = *logical;
	ssize_t bi = -1;
	bool close = false;
	for (;;) {
		if (q < ps->len && (bi = mime_boundary_match(ps, cur, q, &close)) >= 0)
			break;
		const unsigned char *lf = q < ps->len ? memchr(msg + q, '\n', ps->len - q) : NULL;
		if (lf == NULL) {
			mime_close(ps, cur, NULL, ps->len, ps->len);
			return NULL;
		}
		q = (size_t)(lf - msg) + 1;
		end = q - 1;
		if (end > *scan && msg[end - 1] == '\r')
			end--;
	}
	struct mime_node *owner = ps->bnd[bi].owner;
	mime_close(ps, cur, owner, end, q);
	ps->nbnd = (size_t)bi + (close ? 0 : 1);
	const unsigned char *lf = memchr(msg + q, '\n', ps->len - q);
	if (lf == NULL) {
		/* a boundary line at the very end opens nothing */
		mime_close(ps, owner, NULL, ps->len, ps->len);
		return NULL;
	}
	*scan = *logical = (size_t)(lf - msg) + 1;
	*header_next = !close;
	return close ? owner : mime_node_new(ps, owner);
}

static void mime_parse_run(struct mime_parser *ps, struct mime_node *root)
{
	struct mime_node *cur = root;
	size_t scan = 0, logical = 0;
	bool header = true;
	while (cur != NULL) {
		if (header)
			cur = mime_step_header(ps, cur, &scan, &logical, &header);
		else
			cur = mime_step_body(ps, cur, &scan, &logical, &header);
	}
}

/* ---- final pass: arrays, sizes, line counts ---- */

static void mime_count(const unsigned char *msg, size_t from, size_t to, size_t *bare_r,
                       unsigned *lines_r)
{
	const unsigned char *p = msg + from, *end = msg + to;
	while (p < end) {
		const unsigned char *lf = memchr(p, '\n', (size_t)(end - p));
		if (lf == NULL)
			break;
		(*lines_r)++;
		if (lf == msg || lf[-1] != '\r')
			(*bare_r)++;
		p = lf + 1;
	}
}

/* Fill dst from node n (recursively for its children) and compute its sizes. */
static void mime_finish(struct mime_parser *ps, struct mime_node *n, struct mime_part *dst,
                        struct mime_part *parent)
{
	*dst = n->p;
	dst->parent = parent;
	dst->body_len = n->body_end > dst->body_start ? n->body_end - dst->body_start : 0;
	size_t hbare = 0, bbare = 0;
	dst->header_lines = 0;
	dst->body_lines = 0;
	mime_count(ps->msg, dst->header_start, dst->header_start + dst->header_len, &hbare,
	           &dst->header_lines);
	dst->header_size = dst->header_len + hbare;
	dst->children = NULL;
	dst->child_count = n->nchildren;
	dst->message = NULL;
	size_t pos = dst->body_start, body_end = dst->body_start + dst->body_len;
	if (n->nchildren > 0) {
		dst->children = arena_alloc(ps->arena, n->nchildren * sizeof(*dst->children));
		size_t i = 0;
		for (struct mime_node *c = n->first; c != NULL; c = c->next, i++) {
			struct mime_part *cp = &dst->children[i];
			mime_finish(ps, c, cp, dst);
			if (cp->header_start > pos)
				mime_count(ps->msg, pos, cp->header_start, &bbare,
				           &dst->body_lines);
			bbare += cp->header_size - cp->header_len + cp->body_size - cp->body_len;
			dst->body_lines += cp->header_lines + cp->body_lines;
			pos = cp->body_start + cp->body_len;
		}
		if (dst->kind == MIME_KIND_MESSAGE)
			dst->message = dst->children;
	}
	if (body_end > pos)
		mime_count(ps->msg, pos, body_end, &bbare, &dst->body_lines);
	dst->body_size = dst->body_len + bbare;
}

int mime_parse(struct arena *arena, const unsigned char *msg, size_t len,
               const struct mime_limits *limits, struct mime_part **root_r)
{
	static const struct mime_limits defaults = MIME_LIMITS_DEFAULT_INIT;
	struct mime_parser ps;
	memset(&ps, 0, sizeof(ps));
	ps.arena = arena;
	ps.msg = msg;
	ps.len = len;
	ps.lim = limits != NULL ? *limits : defaults;
	if (ps.lim.depth_max == 0)
		ps.lim.depth_max = defaults.depth_max;
	if (ps.lim.depth_max > MIME_DEPTH_HARD_MAX)
		ps.lim.depth_max = MIME_DEPTH_HARD_MAX;
	if (ps.lim.parts_max == 0)
		ps.lim.parts_max = defaults.parts_max;
	buf_init(&ps.tmp, MIME_BUF_MAX);

	struct mime_node *root = mime_node_new(&ps, NULL);
	mime_parse_run(&ps, root);

	struct mime_part *out = arena_alloc(arena, sizeof(*out));
	mime_finish(&ps, root, out, NULL);
	free(ps.bnd);
	buf_free(&ps.tmp);
	*root_r = out;
	return ps.limited ? -1 : 0;
}

/* ---- lookups ---- */

const struct mime_part *mime_part_find(const struct mime_part *root, const char *section)
{
	const struct mime_part *cur = root;
	const char *s = section;
	if (*s == '\0')
		return root;
	for (;;) {
		if (*s < '1' || *s > '9')
			return NULL;
		size_t n = 0;
		for (; *s >= '0' && *s <= '9'; s++) {
			if (n > (SIZE_MAX - 9) / 10)
				return NULL;
			n = n * 10 + (size_t)(*s - '0');
		}
		if (cur->kind == MIME_KIND_MULTIPART) {
			if (n > cur->child_count)
				return NULL;
			cur = &cur->children[n - 1];
		} else if (n != 1) {
			return NULL; /* a non-multipart body has only part 1: itself */
		}
		if (*s == '\0')
			return cur;
		if (*s != '.')
			return NULL;
		s++;
		if (cur->kind == MIME_KIND_MESSAGE)
			cur = cur->message;
		else if (cur->kind == MIME_KIND_LEAF)
			return NULL; /* nothing below a leaf (Dovecot answers "" too) */
	}
}

const char *mime_part_param(const struct mime_part *part, const char *name)
{
	for (size_t i = 0; i < part->param_count; i++) {
		if (strcasecmp(part->params[i].name, name) == 0)
			return part->params[i].value;
	}
	return NULL;
}
