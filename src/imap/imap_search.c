/* IMAP SEARCH criteria: parsing the keys of RFC 9051 §6.4.4 (and RFC 3501's NEW/OLD/RECENT)
 * into a tree, and matching one message against it with three-valued logic, so that the
 * message's octets are read only when a key that decides the answer needs them. The text
 * side (header unfolding, RFC 2047 words, MIME walk, transfer and charset decoding, case
 * folding) is a small self-contained reader built for searching, bounded in depth and
 * parts; it never fails on broken input, it just finds less. */
#include "imap/imap_search.h"

#include <errno.h>
#include <stdio.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/xmalloc.h"
#include "imap/imap_seqset.h"
#include "store/store.h"
#include "core/banned.h"

/* MIME nesting and part count the text reader follows; deeper or further parts are not
 * searched (as they are not displayed by FETCH's limits either). */
#define SEARCH_MIME_DEPTH_MAX 16
#define SEARCH_MIME_PARTS_MAX 1000

enum search_type {
	SK_TRUE,
	SK_FALSE,
	SK_AND,
	SK_OR,
	SK_NOT,
	SK_FLAG_SET,   /* flag bit set */
	SK_FLAG_UNSET, /* flag bit clear */
	SK_KEYWORD,
	SK_UNKEYWORD,
	SK_LARGER,
	SK_SMALLER,
	SK_BEFORE, /* internal date */
	SK_ON,
	SK_SINCE,
	SK_SENTBEFORE, /* Date: header */
	SK_SENTON,
	SK_SENTSINCE,
	SK_HEADER,
	SK_BODY,
	SK_TEXT,
	SK_SEQ,
	SK_UID,
};

struct imap_search_key {
	enum search_type type;
	const struct imap_search_key *a, *b;  /* NOT: a; OR: a, b */
	const struct imap_search_key **list; /* AND */
	size_t count;
	unsigned flag;       /* SK_FLAG_* */
	uint64_t number;     /* LARGER, SMALLER */
	int64_t day;         /* dates: days since 1970-01-01 */
	const char *field;   /* HEADER: field name */
	const char *str;     /* HEADER, BODY, TEXT: folded needle; KEYWORD: the keyword */
	size_t len;
	const struct imap_seqset *set; /* SK_SEQ, SK_UID */
};

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

char *imap_search_fold(struct arena *arena, const unsigned char *s, size_t len, size_t *len_r)
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

/* ---- dates ---- */

/* Days from 1970-01-01 to the proleptic Gregorian date y-m-d (m 1..12; d may overflow
 * into the next month). Era arithmetic: 400 years are 146097 days. */
static int64_t search_days(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	uint64_t yoe = (uint64_t)(y - era * 400);
	uint64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	uint64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int64_t search_unix_day(int64_t t)
{
	return t / 86400 - (t % 86400 < 0);
}

/* Month from its English three-letter abbreviation (any case); 0 if none. */
static unsigned search_month(const char *s)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	for (unsigned i = 0; i < 12; i++)
		if (strncasecmp(s, months + 3 * i, 3) == 0)
			return i + 1;
	return 0;
}

/* IMAP date-text "d-Mon-yyyy" (RFC 9051 §9 date). */
static bool search_parse_date(const char *s, int64_t *day_r)
{
	unsigned d = 0, y = 0;
	size_t i = 0;
	while (i < 2 && s[i] >= '0' && s[i] <= '9')
		d = d * 10 + (unsigned)(s[i++] - '0');
	if (i == 0 || d < 1 || d > 31 || s[i] != '-')
		return false;
	s += i + 1;
	unsigned m = search_month(s);
	if (m == 0 || s[3] != '-')
		return false;
	s += 4;
	for (i = 0; i < 4; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		y = y * 10 + (unsigned)(s[i] - '0');
	}
	if (s[4] != '\0')
		return false;
	*day_r = search_days(y, m, d);
	return true;
}

/* The date of an RFC 5322 date-time as written, ignoring time and zone (RFC 9051 §6.4.4
 * SENT*): "[Mon,] 1 Jul 2003 ..." with obsolete two- and three-digit years (RFC 5322
 * §4.3). false when there is none. */
static bool search_parse_sent(const char *s, int64_t *day_r)
{
	while (*s == ' ' || *s == '\t')
		s++;
	const char *p = s;
	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
		p++;
	if (p != s) { /* day of week */
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != ',')
			return false;
		s = p + 1;
		while (*s == ' ' || *s == '\t')
			s++;
	}
	unsigned d = 0, n = 0;
	for (; n < 2 && *s >= '0' && *s <= '9'; n++)
		d = d * 10 + (unsigned)(*s++ - '0');
	if (n == 0 || d < 1 || d > 31)
		return false;
	while (*s == ' ' || *s == '\t' || *s == '-')
		s++;
	unsigned m = search_month(s);
	if (m == 0)
		return false;
	s += 3;
	while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))
		s++; /* "July" */
	while (*s == ' ' || *s == '\t' || *s == '-')
		s++;
	unsigned y = 0;
	for (n = 0; n < 4 && *s >= '0' && *s <= '9'; n++)
		y = y * 10 + (unsigned)(*s++ - '0');
	if (n < 2 || (*s >= '0' && *s <= '9'))
		return false;
	if (n == 2)
		y += y < 50 ? 2000 : 1900;
	else if (n == 3)
		y += 1900;
	*day_r = search_days(y, m, d);
	return true;
}

/* ---- parsing ---- */

struct search_parser {
	struct arena *arena;
	const struct imap_arg *arg; /* next argument */
	unsigned depth;
	unsigned needs;
	bool uses_saved;
	const char *error;
};

static const struct {
	const char *name;
	enum search_type type;
	unsigned flag;
} search_simple_keys[] = {
    {"ALL", SK_TRUE, 0},
    {"ANSWERED", SK_FLAG_SET, STORE_FLAG_ANSWERED},
    {"DELETED", SK_FLAG_SET, STORE_FLAG_DELETED},
    {"DRAFT", SK_FLAG_SET, STORE_FLAG_DRAFT},
    {"FLAGGED", SK_FLAG_SET, STORE_FLAG_FLAGGED},
    {"SEEN", SK_FLAG_SET, STORE_FLAG_SEEN},
    {"UNANSWERED", SK_FLAG_UNSET, STORE_FLAG_ANSWERED},
    {"UNDELETED", SK_FLAG_UNSET, STORE_FLAG_DELETED},
    {"UNDRAFT", SK_FLAG_UNSET, STORE_FLAG_DRAFT},
    {"UNFLAGGED", SK_FLAG_UNSET, STORE_FLAG_FLAGGED},
    {"UNSEEN", SK_FLAG_UNSET, STORE_FLAG_SEEN},
    /* RFC 3501: no message is \Recent here, so NEW (RECENT UNSEEN) and RECENT match none
     * and OLD (NOT RECENT) matches all. */
    {"NEW", SK_FALSE, 0},
    {"RECENT", SK_FALSE, 0},
    {"OLD", SK_TRUE, 0},
};

static const struct {
	const char *name;
	enum search_type type;
} search_arg_keys[] = {
    {"BEFORE", SK_BEFORE},         {"ON", SK_ON},
    {"SINCE", SK_SINCE},           {"SENTBEFORE", SK_SENTBEFORE},
    {"SENTON", SK_SENTON},         {"SENTSINCE", SK_SENTSINCE},
    {"LARGER", SK_LARGER},         {"SMALLER", SK_SMALLER},
    {"KEYWORD", SK_KEYWORD},       {"UNKEYWORD", SK_UNKEYWORD},
    {"BODY", SK_BODY},             {"TEXT", SK_TEXT},
    {"BCC", SK_HEADER},            {"CC", SK_HEADER},
    {"FROM", SK_HEADER},           {"SUBJECT", SK_HEADER},
    {"TO", SK_HEADER},             {"HEADER", SK_HEADER},
    {"UID", SK_UID},               {"NOT", SK_NOT},
    {"OR", SK_OR},
};

static const struct imap_search_key *search_fail(struct search_parser *p, const char *error)
{
	if (p->error == NULL)
		p->error = error;
	return NULL;
}

static struct imap_search_key *search_new(struct search_parser *p, enum search_type type)
{
	struct imap_search_key *k = arena_alloc(p->arena, sizeof(*k));
	memset(k, 0, sizeof(*k));
	k->type = type;
	return k;
}

/* An astring argument (atom, quoted, literal without NUL, NIL as text); NULL if none. */
static const char *search_take_string(struct search_parser *p, size_t *len_r)
{
	const struct imap_arg *a = p->arg;
	switch (a->type) {
	case IMAP_ARG_ATOM:
	case IMAP_ARG_STRING:
	case IMAP_ARG_NIL:
	case IMAP_ARG_LITERAL:
		if (memchr(a->str, '\0', a->len) != NULL)
			return NULL;
		p->arg++;
		*len_r = a->len;
		return a->str;
	default:
		return NULL;
	}
}

static const struct imap_search_key *search_parse_string_key(struct search_parser *p,
							     struct imap_search_key *k,
							     const char *name)
{
	size_t len;
	if (k->type == SK_HEADER) {
		if (strcasecmp(name, "HEADER") == 0) {
			const char *field = search_take_string(p, &len);
			if (field == NULL)
				return search_fail(p, "HEADER needs a field name and a string");
			k->field = arena_strndup(p->arena, field, len);
		} else {
			k->field = name; /* static: BCC, CC, FROM, SUBJECT, TO */
		}
		p->needs |= IMAP_SEARCH_NEED_HEADER;
	} else {
		p->needs |= IMAP_SEARCH_NEED_HEADER | IMAP_SEARCH_NEED_BODY;
	}
	const char *s = search_take_string(p, &len);
	if (s == NULL)
		return search_fail(p, "Search key needs a string argument");
	k->str = imap_search_fold(p->arena, (const unsigned char *)s, len, &k->len);
	return k;
}

static const struct imap_search_key *search_parse_key(struct search_parser *p);

/* Keys up to the end of the current list, ANDed; at least one. */
static const struct imap_search_key *search_parse_list(struct search_parser *p)
{
	size_t n = imap_parser_arg_count(p->arg);
	if (n == 0)
		return search_fail(p, "Empty search criteria");
	struct imap_search_key *k = search_new(p, SK_AND);
	k->list = arena_alloc(p->arena, n * sizeof(*k->list));
	while (p->arg->type != IMAP_ARG_EOL) {
		const struct imap_search_key *sub = search_parse_key(p);
		if (sub == NULL)
			return NULL;
		k->list[k->count++] = sub;
	}
	return k->count == 1 ? k->list[0] : k;
}

static const struct imap_search_key *search_parse_set(struct search_parser *p,
						      enum search_type type, const char *s)
{
	struct imap_seqset *set;
	const char *error;
	if (imap_seqset_parse(p->arena, s, &set, &error) < 0)
		return search_fail(p, "Invalid sequence set in search criteria");
	struct imap_search_key *k = search_new(p, type);
	k->set = set;
	p->uses_saved |= imap_seqset_is_saved(set);
	return k;
}

static const struct imap_search_key *search_parse_arg_key(struct search_parser *p,
							  enum search_type type,
							  const char *name)
{
	struct imap_search_key *k = search_new(p, type);
	const struct imap_arg *a = p->arg;
	switch (type) {
	case SK_NOT:
	case SK_OR:
		if (++p->depth > IMAP_SEARCH_DEPTH_MAX)
			return search_fail(p, "Search criteria nested too deeply");
		k->a = search_parse_key(p);
		if (k->a != NULL && type == SK_OR)
			k->b = search_parse_key(p);
		p->depth--;
		return k->a != NULL && (type == SK_NOT || k->b != NULL) ? k : NULL;
	case SK_UID:
		if (a->type != IMAP_ARG_ATOM)
			return search_fail(p, "UID needs a sequence set");
		p->arg++;
		return search_parse_set(p, SK_UID, a->str);
	case SK_KEYWORD:
	case SK_UNKEYWORD:
		if (a->type != IMAP_ARG_ATOM)
			return search_fail(p, "KEYWORD needs a flag keyword");
		p->arg++;
		k->str = a->str;
		k->len = a->len;
		return k;
	case SK_LARGER:
	case SK_SMALLER: {
		if (a->type != IMAP_ARG_ATOM)
			return search_fail(p, "LARGER and SMALLER need a number");
		uint64_t v = 0;
		for (const char *c = a->str; *c != '\0'; c++) {
			if (*c < '0' || *c > '9' || v > (UINT64_MAX - 9) / 10)
				return search_fail(p, "Invalid number in search criteria");
			v = v * 10 + (uint64_t)(*c - '0');
		}
		p->arg++;
		k->number = v;
		return k;
	}
	case SK_BEFORE:
	case SK_ON:
	case SK_SINCE:
	case SK_SENTBEFORE:
	case SK_SENTON:
	case SK_SENTSINCE:
		if ((a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_STRING) ||
		    !search_parse_date(a->str, &k->day))
			return search_fail(p, "Invalid date in search criteria (d-Mon-yyyy)");
		p->arg++;
		if (type >= SK_SENTBEFORE)
			p->needs |= IMAP_SEARCH_NEED_HEADER;
		return k;
	default:
		return search_parse_string_key(p, k, name);
	}
}

static const struct imap_search_key *search_parse_key(struct search_parser *p)
{
	const struct imap_arg *a = p->arg;
	if (a->type == IMAP_ARG_LIST) {
		if (++p->depth > IMAP_SEARCH_DEPTH_MAX)
			return search_fail(p, "Search criteria nested too deeply");
		p->arg = a->list;
		const struct imap_search_key *k = search_parse_list(p);
		p->arg = a + 1;
		p->depth--;
		return k;
	}
	if (a->type != IMAP_ARG_ATOM)
		return search_fail(p, a->type == IMAP_ARG_EOL ? "Missing search key argument"
							      : "Invalid search key");
	const char *name = a->str;
	if ((name[0] >= '0' && name[0] <= '9') || name[0] == '*' || name[0] == '$') {
		p->arg++;
		return search_parse_set(p, SK_SEQ, name);
	}
	for (size_t i = 0; i < sizeof(search_simple_keys) / sizeof(search_simple_keys[0]); i++) {
		if (strcasecmp(name, search_simple_keys[i].name) == 0) {
			p->arg++;
			struct imap_search_key *k = search_new(p, search_simple_keys[i].type);
			k->flag = search_simple_keys[i].flag;
			return k;
		}
	}
	for (size_t i = 0; i < sizeof(search_arg_keys) / sizeof(search_arg_keys[0]); i++) {
		if (strcasecmp(name, search_arg_keys[i].name) == 0) {
			p->arg++;
			return search_parse_arg_key(p, search_arg_keys[i].type,
						    search_arg_keys[i].name);
		}
	}
	return search_fail(p, "Unknown search key");
}

/* "RETURN (opts)" (RFC 4731 §3.1; SAVE: RFC 5182 §2). */
static int search_parse_return(struct imap_search *search, const struct imap_arg *list)
{
	search->has_return = true;
	for (; list->type != IMAP_ARG_EOL; list++) {
		static const char *const names[] = {"MIN", "MAX", "ALL", "COUNT", "SAVE"};
		size_t i = 0;
		while (i < 5 && (list->type != IMAP_ARG_ATOM || strcasecmp(list->str, names[i]) != 0))
			i++;
		if (i == 5)
			return -1;
		search->ret |= 1u << i;
	}
	if (search->ret == 0) /* "RETURN ()" is "RETURN (ALL)" (RFC 4731 §3.1) */
		search->ret = IMAP_SEARCH_RETURN_ALL;
	return 0;
}

int imap_search_parse(struct arena *arena, const struct imap_arg *args,
		      struct imap_search **search_r, const char **error_r)
{
	struct imap_search *search = arena_alloc(arena, sizeof(*search));
	memset(search, 0, sizeof(*search));
	*search_r = NULL;
	*error_r = NULL;
	if (args->type == IMAP_ARG_ATOM && strcasecmp(args->str, "RETURN") == 0) {
		if (args[1].type != IMAP_ARG_LIST || search_parse_return(search, args[1].list) < 0) {
			*error_r = "Invalid RETURN options (MIN MAX ALL COUNT SAVE)";
			return -1;
		}
		args += 2;
	}
	if (args->type == IMAP_ARG_ATOM && strcasecmp(args->str, "CHARSET") == 0) {
		const char *cs = NULL;
		if (imap_parser_arg_is_string(&args[1]) && memchr(args[1].str, '\0', args[1].len) == NULL)
			cs = args[1].str;
		if (cs == NULL) {
			*error_r = "CHARSET needs a charset name";
			return -1;
		}
		search->charset = arena_strdup(arena, cs);
		args += 2;
	}
	struct search_parser p = {.arena = arena, .arg = args};
	search->root = search_parse_list(&p);
	if (search->root == NULL) {
		*error_r = p.error;
		return -1;
	}
	search->needs = p.needs;
	search->uses_saved = p.uses_saved;
	*search_r = search;
	return 0;
}

bool imap_search_charset_supported(const char *charset)
{
	return strcasecmp(charset, "UTF-8") == 0 || strcasecmp(charset, "US-ASCII") == 0;
}

/* ---- reading a message for searching ---- */

/* A piece of searchable text, folded. */
struct search_text {
	const char *s;
	size_t len;
	size_t value; /* header line: offset of the value after "name: " */
	const char *name; /* header line: field name (not folded), else NULL */
	size_t name_len;
};

struct search_texts {
	struct search_text *v;
	size_t count, cap;
};

struct search_doc {
	const unsigned char *data;
	size_t len;
	struct arena *arena;
	bool header_done, body_done, sent_done;
	size_t header_len;
	struct search_texts fields; /* the message's header fields, "Name: value" */
	struct search_texts body;   /* decoded text parts and the MIME parts' header lines */
	unsigned parts;
	int64_t sent_day;
};

static void search_texts_add(struct search_texts *t, struct search_text text)
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
		if (h[start] == '\n' || (h[start] == '\r' && start + 1 < len && h[start + 1] == '\n'))
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

/* Convert len octets in charset (cs_len octets, not NUL-terminated) to UTF-8. UTF-8,
 * US-ASCII and unknown charsets are taken as they are; ISO-8859-1 is mapped here, others
 * through iconv(3). Octets iconv cannot convert become U+FFFD. In arena. */
static char *search_to_utf8(struct arena *a, const char *cs, size_t cs_len,
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
		char *out = arena_alloc(a, len + 1);
		memcpy(out, s, len);
		out[len] = '\0';
		*len_r = len;
		return out;
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
	/* At most 4 UTF-8 octets per input octet (UCS-2/4 input only shrinks), plus U+FFFD
	 * (3 octets) per skipped octet. */
	size_t cap = 4 * len + 4;
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

/* Lenient base64 (RFC 2045 §6.8): characters outside the alphabet are skipped. */
static size_t search_base64(const unsigned char *s, size_t len, unsigned char *out)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		int v = c >= 'A' && c <= 'Z'   ? c - 'A'
			: c >= 'a' && c <= 'z' ? c - 'a' + 26
			: c >= '0' && c <= '9' ? c - '0' + 52
			: c == '+'	       ? 62
			: c == '/'	       ? 63
					       : -1;
		if (v < 0)
			continue;
		acc = (acc << 6 | (uint32_t)v) & 0xFFFFFF;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	return o;
}

static int search_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Quoted-printable (RFC 2045 §6.7); header_q: RFC 2047 "Q" ('_' is SP). Malformed '='
 * sequences are kept as they are. */
static size_t search_qp(const unsigned char *s, size_t len, unsigned char *out, bool header_q)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '_' && header_q) {
			out[o++] = ' ';
		} else if (s[i] != '=') {
			out[o++] = s[i];
		} else if (i + 2 < len && search_hex(s[i + 1]) >= 0 && search_hex(s[i + 2]) >= 0) {
			out[o++] = (unsigned char)(search_hex(s[i + 1]) << 4 | search_hex(s[i + 2]));
			i += 2;
		} else if (i + 1 < len && s[i + 1] == '\n') {
			i += 1; /* soft line break */
		} else if (i + 2 < len && s[i + 1] == '\r' && s[i + 2] == '\n') {
			i += 2;
		} else {
			out[o++] = '=';
		}
	}
	return o;
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
	unsigned char *dec = arena_alloc(a, tlen + 1);
	if (enc == 'B' || enc == 'b')
		dlen = search_base64(text, tlen, dec);
	else if (enc == 'Q' || enc == 'q')
		dlen = search_qp(text, tlen, dec, true);
	else
		return false;
	size_t ulen;
	char *u = search_to_utf8(a, (const char *)cs, (size_t)(q1 - cs), dec, dlen, &ulen);
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
static struct search_text search_field_text(struct arena *a, const unsigned char *name,
					    size_t name_len, const unsigned char *value,
					    size_t value_len)
{
	size_t ulen, dlen, nlen, vlen;
	char *u = search_unfold(a, value, value_len, &ulen);
	char *d = search_decode_words(a, u, ulen, &dlen);
	char *fn = imap_search_fold(a, name, name_len, &nlen);
	char *fv = imap_search_fold(a, (const unsigned char *)d, dlen, &vlen);
	char *line = arena_alloc(a, nlen + 2 + vlen + 1);
	memcpy(line, fn, nlen);
	memcpy(line + nlen, ": ", 2);
	memcpy(line + nlen + 2, fv, vlen);
	line[nlen + 2 + vlen] = '\0';
	return (struct search_text){.s = line,
				    .len = nlen + 2 + vlen,
				    .value = nlen + 2,
				    .name = (const char *)name,
				    .name_len = name_len};
}

static void search_doc_header(struct search_doc *d)
{
	if (d->header_done)
		return;
	d->header_done = true;
	d->header_len = search_header_end(d->data, d->len);
	size_t pos = 0;
	const unsigned char *name, *value;
	size_t name_len, value_len;
	while (search_next_field(d->data, d->header_len, &pos, &name, &name_len, &value,
				 &value_len))
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
static void search_part_header(struct search_doc *d, const unsigned char *h, size_t hlen,
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
		} else if (name_len == 25 && strncasecmp((const char *)name,
							 "Content-Transfer-Encoding", 25) == 0) {
			char *v = search_unfold(d->arena, value, value_len, &ulen);
			part->cte = strncasecmp(v, "base64", 6) == 0 ? CTE_BASE64
				    : strncasecmp(v, "quoted-printable", 16) == 0 ? CTE_QP
										   : CTE_IDENTITY;
		}
	}
}

static void search_walk(struct search_doc *d, const unsigned char *p, size_t len, bool digest,
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

static void search_multipart(struct search_doc *d, const unsigned char *b, size_t len,
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
static void search_leaf(struct search_doc *d, const struct search_part *part,
			const unsigned char *b, size_t len)
{
	const unsigned char *raw = b;
	size_t n = len;
	if (part->cte != CTE_IDENTITY) {
		unsigned char *dec = arena_alloc(d->arena, len + 1);
		n = part->cte == CTE_BASE64 ? search_base64(b, len, dec) : search_qp(b, len, dec, false);
		raw = dec;
	}
	size_t ulen = n;
	const char *u = (const char *)raw;
	if (strcasecmp(part->type, "text") == 0)
		u = search_to_utf8(d->arena, part->charset != NULL ? part->charset : "",
				   part->charset_len, raw, n, &ulen);
	struct search_text t = {0};
	t.s = imap_search_fold(d->arena, (const unsigned char *)u, ulen, &t.len);
	search_texts_add(&d->body, t);
}

/* A part p[0..len) with its header (top: the message, whose header fields are searched
 * through d->fields already). */
static void search_walk(struct search_doc *d, const unsigned char *p, size_t len, bool digest,
			unsigned depth, bool top)
{
	if (depth > SEARCH_MIME_DEPTH_MAX || ++d->parts > SEARCH_MIME_PARTS_MAX)
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

static void search_doc_body(struct search_doc *d)
{
	if (d->body_done)
		return;
	d->body_done = true;
	search_walk(d, d->data, d->len, false, 0, true);
}

static int64_t search_doc_sent(struct search_doc *d)
{
	if (d->sent_done)
		return d->sent_day;
	d->sent_done = true;
	search_doc_header(d);
	/* No (valid) Date: counts as 1 Jan 1970, as in Dovecot. */
	d->sent_day = 0;
	for (size_t i = 0; i < d->fields.count; i++) {
		const struct search_text *t = &d->fields.v[i];
		if (t->name_len == 4 && strncasecmp(t->name, "Date", 4) == 0) {
			if (!search_parse_sent(t->s + t->value, &d->sent_day))
				d->sent_day = 0;
			break;
		}
	}
	return d->sent_day;
}

/* ---- matching ---- */

struct search_env {
	const struct imap_search_context *ctx;
	const struct imap_search_msg *msg;
	struct search_doc *doc; /* doc->data NULL: octets not available */
};

static bool search_find(const struct search_text *t, size_t from, const struct imap_search_key *k)
{
	return k->len == 0 || memmem(t->s + from, t->len - from, k->str, k->len) != NULL;
}

static bool search_has_keyword(const char *keywords, const char *kw, size_t len)
{
	for (const char *p = keywords; p != NULL && *p != '\0';) {
		const char *e = strchr(p, ' ');
		size_t n = e == NULL ? strlen(p) : (size_t)(e - p);
		if (n == len && strncasecmp(p, kw, len) == 0)
			return true;
		p = e == NULL ? NULL : e + 1;
	}
	return false;
}

static bool search_saved_has(const struct imap_search_context *ctx, uint32_t uid)
{
	size_t lo = 0, hi = ctx->saved_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ctx->saved[mid] == uid)
			return true;
		if (ctx->saved[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int search_eval(const struct imap_search_key *k, struct search_env *e);

static int search_eval_text(const struct imap_search_key *k, struct search_env *e)
{
	struct search_doc *d = e->doc;
	if (d->data == NULL)
		return -1;
	if (d->arena == NULL)
		d->arena = arena_new(16384);
	search_doc_header(d);
	if (k->type == SK_HEADER) {
		size_t flen = strlen(k->field);
		for (size_t i = 0; i < d->fields.count; i++) {
			const struct search_text *t = &d->fields.v[i];
			if (t->name_len == flen && strncasecmp(t->name, k->field, flen) == 0 &&
			    search_find(t, t->value, k))
				return 1;
		}
		return 0;
	}
	if (k->type == SK_TEXT)
		for (size_t i = 0; i < d->fields.count; i++)
			if (search_find(&d->fields.v[i], 0, k))
				return 1;
	search_doc_body(d);
	for (size_t i = 0; i < d->body.count; i++) {
		const struct search_text *t = &d->body.v[i];
		/* BODY: the parts' texts only; TEXT: their header lines too */
		if ((k->type == SK_TEXT || t->name == NULL) && search_find(t, 0, k))
			return 1;
	}
	return k->len == 0;
}

static int search_eval_date(const struct imap_search_key *k, struct search_env *e)
{
	int64_t day;
	if (k->type <= SK_SINCE) {
		day = search_unix_day(e->msg->internal_date);
	} else {
		if (e->doc->data == NULL)
			return -1;
		if (e->doc->arena == NULL)
			e->doc->arena = arena_new(16384);
		day = search_doc_sent(e->doc);
	}
	switch (k->type) {
	case SK_BEFORE:
	case SK_SENTBEFORE:
		return day < k->day;
	case SK_ON:
	case SK_SENTON:
		return day == k->day;
	default:
		return day >= k->day;
	}
}

static int search_eval_logic(const struct imap_search_key *k, struct search_env *e)
{
	int r, r2;
	switch (k->type) {
	case SK_AND:
		r = 1;
		for (size_t i = 0; i < k->count && r != 0; i++) {
			r2 = search_eval(k->list[i], e);
			if (r2 <= 0)
				r = r2;
		}
		return r;
	case SK_OR:
		r = search_eval(k->a, e);
		if (r == 1)
			return 1;
		r2 = search_eval(k->b, e);
		return r2 == 1 ? 1 : (r < 0 || r2 < 0) ? -1 : 0;
	default: /* SK_NOT */
		r = search_eval(k->a, e);
		return r < 0 ? -1 : !r;
	}
}

static int search_eval(const struct imap_search_key *k, struct search_env *e)
{
	const struct imap_search_msg *m = e->msg;
	switch (k->type) {
	case SK_TRUE:
		return 1;
	case SK_FALSE:
		return 0;
	case SK_AND:
	case SK_OR:
	case SK_NOT:
		return search_eval_logic(k, e);
	case SK_FLAG_SET:
		return (m->flags & k->flag) != 0;
	case SK_FLAG_UNSET:
		return (m->flags & k->flag) == 0;
	case SK_KEYWORD:
		return search_has_keyword(m->keywords, k->str, k->len);
	case SK_UNKEYWORD:
		return !search_has_keyword(m->keywords, k->str, k->len);
	case SK_LARGER:
		return m->size > k->number;
	case SK_SMALLER:
		return m->size < k->number;
	case SK_SEQ:
	case SK_UID:
		if (imap_seqset_is_saved(k->set))
			return search_saved_has(e->ctx, m->uid);
		if (k->type == SK_SEQ)
			return imap_seqset_contains(k->set, m->seq, e->ctx->count);
		return imap_seqset_contains(k->set, m->uid, e->ctx->max_uid);
	case SK_HEADER:
	case SK_BODY:
	case SK_TEXT:
		return search_eval_text(k, e);
	default:
		return search_eval_date(k, e);
	}
}

int imap_search_match(const struct imap_search *search, const struct imap_search_context *ctx,
		      const struct imap_search_msg *msg, const unsigned char *data, size_t len)
{
	struct search_doc doc = {.data = data, .len = data != NULL ? len : 0};
	struct search_env e = {.ctx = ctx, .msg = msg, .doc = &doc};
	int r = search_eval(search->root, &e);
	free(doc.fields.v);
	free(doc.body.v);
	arena_free(&doc.arena);
	return r;
}
