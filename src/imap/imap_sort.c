/* IMAP SORT's pure core (RFC 5256, RFC 5957): the sort program, base subject extraction
 * (§2.1), sent dates (§2.2), the first address of a field (§3) and the comparison. Header
 * fields come from mime/ (mime_field_iter, mime_field_unfolded, mime_decode_words,
 * rfc822_addr_parse_list): the same reading FETCH ENVELOPE and SEARCH use. */
#include "imap/imap_sort.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_search_doc.h"
#include "mime/mime.h"
#include "mime/mime_decode.h"
#include "mime/rfc822_addr.h"
#include "core/date.h"
#include "core/banned.h"

/* ---- the program ---- */

static const struct {
	const char *name;
	enum imap_sort_key key;
} sort_keys[] = {
    {"ARRIVAL", IMAP_SORT_ARRIVAL},
    {"CC", IMAP_SORT_CC},
    {"DATE", IMAP_SORT_DATE},
    {"FROM", IMAP_SORT_FROM},
    {"SIZE", IMAP_SORT_SIZE},
    {"SUBJECT", IMAP_SORT_SUBJECT},
    {"TO", IMAP_SORT_TO},
    {"DISPLAYFROM", IMAP_SORT_DISPLAYFROM},
    {"DISPLAYTO", IMAP_SORT_DISPLAYTO},
};

int imap_sort_parse_program(const struct imap_arg *list, struct imap_sort_crit *v, size_t *count_r,
                            const char **error_r)
{
	size_t n = 0;
	bool reverse = false;
	*count_r = 0;
	for (; list->type != IMAP_ARG_EOL; list++) {
		if (list->type != IMAP_ARG_ATOM) {
			*error_r = "Invalid sort criterion";
			return -1;
		}
		if (strcasecmp(list->str, "REVERSE") == 0) {
			reverse = true; /* "REVERSE REVERSE x" is refused below as not a key */
			if (list[1].type == IMAP_ARG_ATOM &&
			    strcasecmp(list[1].str, "REVERSE") == 0) {
				*error_r = "REVERSE must be followed by a sort key";
				return -1;
			}
			continue;
		}
		size_t i = 0;
		while (i < sizeof(sort_keys) / sizeof(sort_keys[0]) &&
		       strcasecmp(list->str, sort_keys[i].name) != 0)
			i++;
		if (i == sizeof(sort_keys) / sizeof(sort_keys[0])) {
			*error_r = "Unknown sort criterion";
			return -1;
		}
		if (n == IMAP_SORT_CRITERIA_MAX) {
			*error_r = "Too many sort criteria";
			return -1;
		}
		v[n++] = (struct imap_sort_crit){.key = sort_keys[i].key, .reverse = reverse};
		reverse = false;
	}
	if (reverse || n == 0) {
		*error_r = n == 0 && !reverse ? "Empty sort program"
		                              : "REVERSE must be followed by a sort key";
		return -1;
	}
	*count_r = n;
	return 0;
}

bool imap_sort_needs_header(const struct imap_sort_crit *v, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (v[i].key != IMAP_SORT_ARRIVAL && v[i].key != IMAP_SORT_SIZE)
			return true;
	return false;
}

/* ---- base subject (RFC 5256 §2.1) ---- */

static bool sort_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* BLOBCHAR = %x01-5a / %x5c / %x5e-ff: anything but NUL, '[' and ']'. */
static bool sort_blobchar(char c)
{
	return c != '\0' && c != '[' && c != ']';
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP at s[b..e): its length, 0 if none. */
static size_t sort_blob(const char *s, size_t b, size_t e)
{
	if (b >= e || s[b] != '[')
		return 0;
	size_t p = b + 1;
	while (p < e && sort_blobchar(s[p]))
		p++;
	if (p >= e || s[p] != ']')
		return 0;
	p++;
	while (p < e && sort_wsp(s[p]))
		p++;
	return p - b;
}

/* subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" at s[p..e): its length, 0 if
 * none. */
static size_t sort_refwd(const char *s, size_t p, size_t e)
{
	size_t q;
	if (e - p >= 2 && strncasecmp(s + p, "re", 2) == 0)
		q = p + 2;
	else if (e - p >= 2 && strncasecmp(s + p, "fw", 2) == 0)
		q = p + 2 + (e - p >= 3 && (s[p + 2] == 'd' || s[p + 2] == 'D'));
	else
		return 0;
	while (q < e && sort_wsp(s[q]))
		q++;
	q += sort_blob(s, q, e);
	if (q >= e || s[q] != ':')
		return 0;
	return q + 1 - p;
}

/* subj-leader = (*subj-blob subj-refwd) / WSP at s[b..e): its length (0 none); *refwd_r
 * true for the first form. */
static size_t sort_leader(const char *s, size_t b, size_t e, bool *refwd_r)
{
	*refwd_r = false;
	if (b < e && sort_wsp(s[b]))
		return 1;
	size_t p = b, n;
	while ((n = sort_blob(s, p, e)) > 0)
		p += n;
	n = sort_refwd(s, p, e);
	if (n == 0)
		return 0;
	*refwd_r = true;
	return p + n - b;
}

/* Step 1: encoded words decoded, then every run of WSP, CR or LF one SP. In arena. */
static char *sort_normalize(struct arena *arena, const char *s, size_t len, size_t *len_r)
{
	size_t dlen;
	const char *d = mime_decode_words(arena, s, len, &dlen);
	char *out = arena_alloc(arena, dlen + 1);
	size_t o = 0;
	for (size_t i = 0; i < dlen; i++) {
		char c = d[i];
		bool space = c == ' ' || c == '\t' || c == '\r' || c == '\n';
		if (space && o > 0 && out[o - 1] == ' ')
			continue;
		out[o++] = space ? ' ' : c;
	}
	out[o] = '\0';
	*len_r = o;
	return out;
}

/* Steps 3 to 5 on s[*b..e): leaders off, then a leading blob when something is left. */
static void sort_strip_leaders(const char *s, size_t *b, size_t e, bool *reply)
{
	bool changed;
	do {
		changed = false;
		size_t n;
		bool refwd;
		while ((n = sort_leader(s, *b, e, &refwd)) > 0) { /* (3) */
			*b += n;
			*reply |= refwd;
			changed = true;
		}
		n = sort_blob(s, *b, e); /* (4): only if a non-empty subj-base is left */
		if (n > 0 && *b + n < e) {
			*b += n;
			changed = true;
		}
	} while (changed); /* (5) */
}

char *imap_sort_base_subject(struct arena *arena, const char *subject, size_t len, bool *reply_r)
{
	size_t e;
	char *s = sort_normalize(arena, subject, len, &e);
	size_t b = 0;
	bool reply = false;
	for (;;) {
		/* (2) subj-trailer = "(fwd)" / WSP, as long as any is there */
		for (;;) {
			if (e > b && sort_wsp(s[e - 1])) {
				e--;
			} else if (e - b >= 5 && strncasecmp(s + e - 5, "(fwd)", 5) == 0) {
				e -= 5;
				reply = true;
			} else {
				break;
			}
		}
		sort_strip_leaders(s, &b, e, &reply);
		/* (6) subj-fwd-hdr "[fwd:" ... subj-fwd-trl "]": unwrap, again from (2) */
		if (e - b >= 6 && strncasecmp(s + b, "[fwd:", 5) == 0 && s[e - 1] == ']') {
			b += 5;
			e--;
			reply = true;
			continue;
		}
		break;
	}
	if (reply_r != NULL)
		*reply_r = reply;
	return arena_strndup(arena, s + b, e - b);
}

/* Canonical decomposition (NFD) of the Latin-1 letters U+00E0..U+00FF, after case folding:
 * the base letter and the combining mark's offset from U+0300; base 0: none. */
static const struct {
	char base;
	unsigned char mark;
} sort_latin1_nfd[32] = {
    {'a', 0x00}, {'a', 0x01}, {'a', 0x02}, {'a', 0x03}, {'a', 0x08}, {'a', 0x0A}, {0, 0},
    {'c', 0x27}, {'e', 0x00}, {'e', 0x01}, {'e', 0x02}, {'e', 0x08}, {'i', 0x00}, {'i', 0x01},
    {'i', 0x02}, {'i', 0x08}, {0, 0},      {'n', 0x03}, {'o', 0x00}, {'o', 0x01}, {'o', 0x02},
    {'o', 0x03}, {'o', 0x08}, {0, 0},      {0, 0},      {'u', 0x00}, {'u', 0x01}, {'u', 0x02},
    {'u', 0x08}, {'y', 0x01}, {0, 0},      {'y', 0x08},
};

char *imap_sort_collate(struct arena *arena, const char *s, size_t len)
{
	if (len > IMAP_SORT_STRING_MAX)
		len = IMAP_SORT_STRING_MAX;
	size_t n;
	const char *f = imap_search_doc_fold(arena, (const unsigned char *)s, len, &n);
	/* i;unicode-casemap (RFC 5051) compares the titlecased NFKD form: ASCII letters upper
	 * (so "_" sorts after them), Latin-1 letters decomposed (an accented letter next to its
	 * base letter; 2 octets become 3) */
	char *out = arena_alloc(arena, n + n / 2 + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)f[i];
		if (c == 0xC3 && i + 1 < n && (unsigned char)f[i + 1] >= 0xA0 &&
		    (unsigned char)f[i + 1] <= 0xBF &&
		    sort_latin1_nfd[(unsigned char)f[i + 1] - 0xA0].base != 0) {
			unsigned k = (unsigned char)f[i + 1] - 0xA0;
			out[o++] = (char)(sort_latin1_nfd[k].base - 32);
			out[o++] = (char)0xCC;
			out[o++] = (char)(0x80 + sort_latin1_nfd[k].mark);
			i++;
			continue;
		}
		out[o++] = c >= 'a' && c <= 'z' ? (char)(c - 32) : (char)c;
	}
	out[o] = '\0';
	return out;
}

/* ---- dates (RFC 5322 §3.3, §4.3) ---- */

struct sort_cursor {
	const char *s;
	size_t p, e;
};

/* Skip white space and comments (nested, bounded by the text). */
static void sort_cfws(struct sort_cursor *c)
{
	int depth = 0;
	while (c->p < c->e) {
		char ch = c->s[c->p];
		if (ch == '(')
			depth++;
		else if (ch == ')' && depth > 0)
			depth--;
		else if (depth == 0 && !sort_wsp(ch) && ch != '\r' && ch != '\n')
			return;
		c->p++;
	}
}

/* Up to max digits: the number and how many were read. */
static unsigned sort_digits(struct sort_cursor *c, unsigned max, unsigned *n_r)
{
	unsigned v = 0, n = 0;
	while (n < max && c->p < c->e && c->s[c->p] >= '0' && c->s[c->p] <= '9') {
		v = v * 10 + (unsigned)(c->s[c->p++] - '0');
		n++;
	}
	*n_r = n;
	return v;
}

static size_t sort_alpha(struct sort_cursor *c, char *out, size_t max)
{
	size_t n = 0;
	while (c->p < c->e && ((c->s[c->p] | 0x20) >= 'a' && (c->s[c->p] | 0x20) <= 'z')) {
		if (n < max)
			out[n] = (char)(c->s[c->p] | 0x20);
		n++;
		c->p++;
	}
	return n;
}

/* Zone offset in seconds east of UTC: +hhmm, -hhmm, or an obsolete name (RFC 5322 §4.3;
 * military and unknown names are +0000). */
static int64_t sort_zone(struct sort_cursor *c)
{
	sort_cfws(c);
	if (c->p < c->e && (c->s[c->p] == '+' || c->s[c->p] == '-')) {
		int sign = c->s[c->p++] == '-' ? -1 : 1;
		unsigned n, v = sort_digits(c, 4, &n);
		if (n != 4 || v % 100 > 59)
			return 0;
		return sign * (int64_t)((v / 100) * 3600 + (v % 100) * 60);
	}
	static const struct {
		const char *name;
		int hours;
	} zones[] = {{"ut", 0},   {"gmt", 0},  {"est", -5}, {"edt", -4}, {"cst", -6},
	             {"cdt", -5}, {"mst", -7}, {"mdt", -6}, {"pst", -8}, {"pdt", -7}};
	char name[4];
	size_t n = sort_alpha(c, name, sizeof(name));
	for (size_t i = 0; n < sizeof(name) && i < sizeof(zones) / sizeof(zones[0]); i++)
		if (strlen(zones[i].name) == n && memcmp(zones[i].name, name, n) == 0)
			return (int64_t)zones[i].hours * 3600;
	return 0;
}

bool imap_sort_parse_date(const char *s, size_t len, int64_t *t_r)
{
	struct sort_cursor c = {.s = s, .e = len};
	char word[16];
	unsigned n;
	sort_cfws(&c);
	size_t save = c.p;
	if (sort_alpha(&c, word, sizeof(word)) > 0) { /* day of week */
		sort_cfws(&c);
		if (c.p < c.e && c.s[c.p] == ',')
			c.p++;
	} else {
		c.p = save;
	}
	sort_cfws(&c);
	unsigned day = sort_digits(&c, 2, &n);
	if (n == 0 || day < 1 || day > 31)
		return false;
	sort_cfws(&c);
	size_t ml = sort_alpha(&c, word, sizeof(word));
	unsigned mon = ml >= 3 ? date_month(word) : 0;
	if (mon == 0)
		return false;
	sort_cfws(&c);
	unsigned year = sort_digits(&c, 4, &n);
	if (n < 2)
		return false;
	if (n == 2)
		year += year < 50 ? 2000 : 1900;
	else if (n == 3)
		year += 1900;
	sort_cfws(&c);
	unsigned hh = sort_digits(&c, 2, &n), mm = 0, ss = 0;
	if (n == 0 || hh > 23 || c.p >= c.e || c.s[c.p] != ':')
		return false;
	c.p++;
	mm = sort_digits(&c, 2, &n);
	if (n == 0 || mm > 59)
		return false;
	if (c.p < c.e && c.s[c.p] == ':') {
		c.p++;
		ss = sort_digits(&c, 2, &n);
		if (n == 0 || ss > 60)
			return false;
	}
	int64_t zone = sort_zone(&c);
	*t_r = date_days(year, mon, day) * 86400 + hh * 3600 + mm * 60 + ss - zone;
	return true;
}

/* ---- a message's keys ---- */

/* The first address of an address-list field body as ENVELOPE encodes it (a group's start
 * counts: its name is the mailbox). display: RFC 5957's display string. */
static const char *sort_address(struct arena *a, const char *v, size_t len, bool display)
{
	const struct rfc822_address *x = rfc822_addr_parse_list(a, (const unsigned char *)v, len);
	if (x == NULL)
		return "";
	const char *out = x->mailbox != NULL ? x->mailbox : "";
	size_t olen;
	if (display) {
		if (x->name != NULL && x->name[0] != '\0') {
			out = mime_decode_words(a, x->name, strlen(x->name), &olen);
			return imap_sort_collate(a, out, olen);
		}
		if (x->mailbox != NULL && x->domain != NULL) {
			size_t ml = strlen(x->mailbox), dl = strlen(x->domain);
			char *t = arena_alloc(a, ml + dl + 2);
			memcpy(t, x->mailbox, ml);
			t[ml] = '@';
			memcpy(t + ml + 1, x->domain, dl + 1);
			out = t;
		}
	}
	return imap_sort_collate(a, out, strlen(out));
}

static bool sort_wants(const struct imap_sort_crit *v, size_t count, enum imap_sort_key k)
{
	for (size_t i = 0; i < count; i++)
		if (v[i].key == k)
			return true;
	return false;
}

/* The key of field f into m, if v needs it. */
static void sort_field(struct arena *a, const struct imap_sort_crit *v, size_t count,
                       const unsigned char *hdr, const struct mime_field *f,
                       struct imap_sort_msg *m)
{
	static const struct {
		const char *name;
		enum imap_sort_key key, display;
	} fields[] = {{"From", IMAP_SORT_FROM, IMAP_SORT_DISPLAYFROM},
	              {"To", IMAP_SORT_TO, IMAP_SORT_DISPLAYTO},
	              {"Cc", IMAP_SORT_CC, IMAP_SORT_CC}};
	size_t len;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (!mime_field_is(hdr, f, fields[i].name))
			continue;
		const char **plain = i == 0 ? &m->from : i == 1 ? &m->to : &m->cc;
		const char **disp = i == 0 ? &m->display_from : i == 1 ? &m->display_to : NULL;
		bool want = *plain == NULL && sort_wants(v, count, fields[i].key);
		bool want_d =
		    disp != NULL && *disp == NULL && sort_wants(v, count, fields[i].display);
		if (!want && !want_d)
			return;
		char *val = mime_field_value_raw(a, hdr, f, &len);
		if (want)
			*plain = sort_address(a, val, len, false);
		if (want_d)
			*disp = sort_address(a, val, len, true);
		return;
	}
	if (m->subject == NULL && sort_wants(v, count, IMAP_SORT_SUBJECT) &&
	    mime_field_is(hdr, f, "Subject")) {
		char *val = mime_field_unfolded(a, hdr, f, &len);
		char *base = imap_sort_base_subject(a, val, len, NULL);
		m->subject = imap_sort_collate(a, base, strlen(base));
	}
}

void imap_sort_msg_headers(struct arena *arena, const struct imap_sort_crit *v, size_t count,
                           const unsigned char *hdr, size_t len, struct imap_sort_msg *m)
{
	bool date_done = false;
	m->date = m->arrival;
	m->subject = m->from = m->to = m->cc = m->display_from = m->display_to = NULL;
	struct mime_field_iter it;
	struct mime_field f;
	mime_field_iter_init(&it, hdr, 0, len);
	while (mime_field_iter_next(&it, &f)) {
		if (!f.has_colon)
			continue;
		if (!date_done && mime_field_is(hdr, &f, "Date")) {
			/* the first Date field decides; unparseable: the internal date (§2.2) */
			size_t dl;
			char *d = mime_field_unfolded(arena, hdr, &f, &dl);
			int64_t t;
			if (imap_sort_parse_date(d, dl, &t))
				m->date = t;
			date_done = true;
			continue;
		}
		sort_field(arena, v, count, hdr, &f, m);
	}
	const char **all[] = {&m->subject, &m->from,         &m->to,
	                      &m->cc,      &m->display_from, &m->display_to};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (*all[i] == NULL)
			*all[i] = "";
}

/* ---- comparing ---- */

static int sort_cmp_num(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static int sort_cmp_key(enum imap_sort_key k, const struct imap_sort_msg *a,
                        const struct imap_sort_msg *b)
{
	switch (k) {
	case IMAP_SORT_ARRIVAL:
		return sort_cmp_num(a->arrival, b->arrival);
	case IMAP_SORT_DATE:
		return sort_cmp_num(a->date, b->date);
	case IMAP_SORT_SIZE:
		return a->size < b->size ? -1 : a->size > b->size;
	case IMAP_SORT_CC:
		return strcmp(a->cc, b->cc);
	case IMAP_SORT_FROM:
		return strcmp(a->from, b->from);
	case IMAP_SORT_TO:
		return strcmp(a->to, b->to);
	case IMAP_SORT_SUBJECT:
		return strcmp(a->subject, b->subject);
	case IMAP_SORT_DISPLAYFROM:
		return strcmp(a->display_from, b->display_from);
	default:
		return strcmp(a->display_to, b->display_to);
	}
}

int imap_sort_cmp(const struct imap_sort_crit *v, size_t count, const struct imap_sort_msg *a,
                  const struct imap_sort_msg *b)
{
	for (size_t i = 0; i < count; i++) {
		int r = sort_cmp_key(v[i].key, a, b);
		if (r != 0)
			return v[i].reverse ? -r : r;
	}
	/* RFC 5256 §3: ties in message sequence order (REVERSE does not reverse it) */
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

struct sort_program {
	const struct imap_sort_crit *v;
	size_t count;
};

static int sort_qsort_cmp(const void *x, const void *y, void *ctx)
{
	const struct sort_program *p = ctx;
	return imap_sort_cmp(p->v, p->count, *(struct imap_sort_msg *const *)x,
	                     *(struct imap_sort_msg *const *)y);
}

void imap_sort_msgs(const struct imap_sort_crit *v, size_t count, struct imap_sort_msg **msgs,
                    size_t n)
{
	struct sort_program p = {.v = v, .count = count};
	if (n > 1)
		qsort_r(msgs, n, sizeof(*msgs), sort_qsort_cmp, &p);
}
