/* IMAP SEARCH criteria: parsing the keys of RFC 9051 §6.4.4 (and RFC 3501's NEW/OLD/RECENT)
 * into a tree, and matching one message against it with three-valued logic, so that the
 * message's octets are read only when a key that decides the answer needs them. The text
 * the string keys look at comes from imap_search_doc.c. */
#include "imap/imap_search.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_search_doc.h"
#include "imap/imap_seqset.h"
#include "mime/rfc822_addr.h"
#include "store/store.h"
#include "core/date.h"
#include "core/xmalloc.h"
#include "core/banned.h"

enum search_type {
	SK_TRUE,
	SK_FALSE,
	SK_AND,
	SK_OR,
	SK_NOT,
	SK_FLAG_SET,   /* flag bit set */
	SK_FLAG_UNSET, /* flag bit clear */
	SK_NEW,        /* \Recent and not \Seen (RFC 3501 §6.4.4) */
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
	SK_MODSEQ,  /* RFC 7162 §3.1.5: MODSEQ at least number */
	SK_OLDER,   /* RFC 5032 WITHIN: internal date at least number seconds ago */
	SK_YOUNGER, /* RFC 5032 WITHIN: internal date less than number seconds ago */
	SK_EMAILID, /* RFC 8474 §6: UID among the store's answer for the id */
	SK_THREADID,
	SK_SAVEDBEFORE, /* RFC 8514 §4.2: save date */
	SK_SAVEDON,
	SK_SAVEDSINCE,
};

struct imap_search_key {
	enum search_type type;
	const struct imap_search_key *a, *b; /* NOT: a; OR: a, b */
	const struct imap_search_key **list; /* AND */
	size_t count;
	unsigned flag;     /* SK_FLAG_* */
	uint64_t number;   /* LARGER, SMALLER, MODSEQ */
	int64_t day;       /* dates: days since 1970-01-01 */
	const char *field; /* HEADER: field name */
	bool address;      /* FROM, TO, CC, BCC: match the parsed addresses */
	const char *str;   /* HEADER, BODY, TEXT: folded needle; KEYWORD: the keyword */
	size_t len;
	const struct imap_seqset *set;             /* SK_SEQ, SK_UID */
	const struct imap_search_emailid *emailid; /* SK_EMAILID */
	const struct imap_search_text *text;       /* SK_BODY, SK_TEXT: NULL when unindexable */
	const struct imap_search_hdr *hdr;         /* header keys, SENT*: the index's list */
};

/* ---- dates ---- */

static int64_t search_unix_day(int64_t t)
{
	return t / 86400 - (t % 86400 < 0);
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
	unsigned m = date_month(s);
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
	*day_r = date_days(y, m, d);
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
	unsigned m = date_month(s);
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
	*day_r = date_days(y, m, d);
	return true;
}

/* ---- parsing ---- */

struct search_parser {
	struct arena *arena;
	const struct imap_arg *arg; /* next argument */
	unsigned depth;
	unsigned needs;
	bool uses_saved;
	bool uses_seq; /* a sequence-set key other than "$" occurs */
	bool modseq;   /* a MODSEQ key occurs */
	struct imap_search_emailid *emailids;
	struct imap_search_text *texts;
	bool texts_some_not; /* a non-empty BODY/TEXT key the index cannot answer */
	struct imap_search_hdr *hdrs;
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
    /* RFC 3501 §6.4.4: NEW is RECENT UNSEEN, OLD is NOT RECENT (the caller sets
     * IMAP_SEARCH_FLAG_RECENT for this session's \Recent messages). */
    {"NEW", SK_NEW, 0},
    {"RECENT", SK_FLAG_SET, IMAP_SEARCH_FLAG_RECENT},
    {"OLD", SK_FLAG_UNSET, IMAP_SEARCH_FLAG_RECENT},
    {"SAVEDATESUPPORTED", SK_TRUE, 0}, /* RFC 8514 §4.2 */
};

static const struct {
	const char *name;
	enum search_type type;
} search_arg_keys[] = {
    {"BEFORE", SK_BEFORE},
    {"ON", SK_ON},
    {"SINCE", SK_SINCE},
    {"SENTBEFORE", SK_SENTBEFORE},
    {"SENTON", SK_SENTON},
    {"SENTSINCE", SK_SENTSINCE},
    {"LARGER", SK_LARGER},
    {"SMALLER", SK_SMALLER},
    {"KEYWORD", SK_KEYWORD},
    {"UNKEYWORD", SK_UNKEYWORD},
    {"BODY", SK_BODY},
    {"TEXT", SK_TEXT},
    {"BCC", SK_HEADER},
    {"CC", SK_HEADER},
    {"FROM", SK_HEADER},
    {"SUBJECT", SK_HEADER},
    {"TO", SK_HEADER},
    {"HEADER", SK_HEADER},
    {"UID", SK_UID},
    {"NOT", SK_NOT},
    {"OR", SK_OR},
    {"MODSEQ", SK_MODSEQ},
    {"OLDER", SK_OLDER},
    {"YOUNGER", SK_YOUNGER},
    {"EMAILID", SK_EMAILID},
    {"THREADID", SK_THREADID},
    {"SAVEDBEFORE", SK_SAVEDBEFORE},
    {"SAVEDON", SK_SAVEDON},
    {"SAVEDSINCE", SK_SAVEDSINCE},
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

/* BODY and TEXT: listed for the index when their needle suits it (the stored texts end
 * each piece with LF, so a needle with LF is not asked there; nor one that is not UTF-8,
 * nor one longer than IMAP_SEARCH_TEXT_NEEDLE_MAX: SQLite's LIKE refuses long patterns). */
static void search_parse_text(struct search_parser *p, struct imap_search_key *k)
{
	if (k->len > IMAP_SEARCH_TEXT_NEEDLE_MAX || memchr(k->str, '\n', k->len) != NULL ||
	    !imap_search_doc_utf8_valid((const unsigned char *)k->str, k->len)) {
		p->texts_some_not = true;
		return;
	}
	struct imap_search_text *t = arena_alloc(p->arena, sizeof(*t));
	*t = (struct imap_search_text){
	    .needle = k->str, .body_only = k->type == SK_BODY, .next = p->texts};
	p->texts = t;
	k->text = t;
}

/* Header keys and SENT*: listed for the index's stored fields. The store narrows by
 * prefilter, which each matching message's stored text contains: the needle of HEADER and
 * SUBJECT (a substring of the field's folded value, so of the text), else "name: " (the
 * address keys match a rewritten address list, which need not hold the needle as sent).
 * SENT* have none: a message without Date: counts as sent on 1 Jan 1970. */
static void search_parse_hdr(struct search_parser *p, struct imap_search_key *k, const char *field)
{
	struct imap_search_hdr *h = arena_alloc(p->arena, sizeof(*h));
	*h = (struct imap_search_hdr){.key = k, .next = p->hdrs};
	if (k->type != SK_HEADER) {
		/* no prefilter */
	} else if (!k->address && k->len > 0 && k->len <= IMAP_SEARCH_TEXT_NEEDLE_MAX &&
	           memchr(k->str, '\n', k->len) == NULL &&
	           imap_search_doc_utf8_valid((const unsigned char *)k->str, k->len)) {
		h->prefilter = k->str;
	} else {
		size_t n = strlen(field), flen;
		char *name = arena_alloc(p->arena, n + 3);
		memcpy(name, field, n);
		memcpy(name + n, ": ", 3);
		const char *f =
		    imap_search_doc_fold(p->arena, (const unsigned char *)name, n + 2, &flen);
		if (n + 2 <= IMAP_SEARCH_TEXT_NEEDLE_MAX && memchr(f, '\n', flen) == NULL &&
		    imap_search_doc_utf8_valid((const unsigned char *)f, flen))
			h->prefilter = f;
	}
	p->hdrs = h;
	k->hdr = h;
}

static const struct imap_search_key *
search_parse_string_key(struct search_parser *p, struct imap_search_key *k, const char *name)
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
			k->address = strcasecmp(name, "SUBJECT") != 0;
		}
		p->needs |= IMAP_SEARCH_NEED_HEADER;
	} else {
		p->needs |= IMAP_SEARCH_NEED_HEADER | IMAP_SEARCH_NEED_BODY;
	}
	const char *s = search_take_string(p, &len);
	if (s == NULL)
		return search_fail(p, "Search key needs a string argument");
	k->str = imap_search_doc_fold(p->arena, (const unsigned char *)s, len, &k->len);
	if (k->type != SK_HEADER && k->len > 0)
		search_parse_text(p, k);
	if (k->type == SK_HEADER)
		search_parse_hdr(p, k, k->field);
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
	p->uses_seq |= type == SK_SEQ && !imap_seqset_is_saved(set);
	return k;
}

/* number64 (RFC 9051 §9) and mod-sequence-valzer (RFC 7162 §7): 0 .. 2^63 - 1, checked
 * before every digit. */
static bool search_number(const char *s, uint64_t *v_r)
{
	uint64_t v = 0;
	if (*s == '\0')
		return false;
	for (const char *c = s; *c != '\0'; c++) {
		if (*c < '0' || *c > '9' || v > ((uint64_t)INT64_MAX - (uint64_t)(*c - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*c - '0');
	}
	*v_r = v;
	return true;
}

/* MODSEQ [entry-name entry-type-req] mod-sequence-valzer (RFC 7162 §3.1.5). Without
 * per-flag MODSEQs the entry is checked for syntax and then ignored, as §3.1.5 allows: the
 * message's one MODSEQ stands for every flag's. */
static const struct imap_search_key *search_parse_modseq(struct search_parser *p,
                                                         struct imap_search_key *k)
{
	const struct imap_arg *a = p->arg;
	if (a->type == IMAP_ARG_STRING) {
		/* entry-flag-name = DQUOTE "/flags/" attr-flag DQUOTE */
		if (a->len <= 7 || strncasecmp(a->str, "/flags/", 7) != 0 ||
		    memchr(a->str, '\0', a->len) != NULL)
			return search_fail(p, "Invalid MODSEQ entry name (\"/flags/<flag>\")");
		a++;
		if (a->type != IMAP_ARG_ATOM ||
		    (strcasecmp(a->str, "priv") != 0 && strcasecmp(a->str, "shared") != 0 &&
		     strcasecmp(a->str, "all") != 0))
			return search_fail(p, "Invalid MODSEQ entry type (priv, shared or all)");
		a++;
	}
	if (a->type != IMAP_ARG_ATOM || !search_number(a->str, &k->number))
		return search_fail(p, "MODSEQ needs a mod-sequence");
	p->arg = a + 1;
	p->modseq = true;
	return k;
}

/* RFC 8474 §6: objectid = 1*255(ALPHA / DIGIT / "_" / "-"). */
static bool search_objectid_valid(const char *s)
{
	size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-");
	return n > 0 && n <= 255 && s[n] == '\0';
}

static const struct imap_search_key *search_parse_objectid(struct search_parser *p,
                                                           struct imap_search_key *k)
{
	const struct imap_arg *a = p->arg;
	if ((a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_STRING) ||
	    !search_objectid_valid(a->str))
		return search_fail(p, "EMAILID and THREADID need an object id");
	p->arg++;
	if (k->type == SK_THREADID) {
		k->type = SK_FALSE;
		return k;
	}
	struct imap_search_emailid *e = arena_alloc(p->arena, sizeof(*e));
	*e =
	    (struct imap_search_emailid){.id = arena_strdup(p->arena, a->str), .next = p->emailids};
	p->emailids = e;
	k->emailid = e;
	return k;
}

static const struct imap_search_key *search_parse_arg_key(struct search_parser *p,
                                                          enum search_type type, const char *name)
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
		k->str = arena_strdup(p->arena, a->str); /* outlives the command's arena */
		k->len = a->len;
		return k;
	case SK_LARGER:
	case SK_SMALLER:
		if (a->type != IMAP_ARG_ATOM)
			return search_fail(p, "LARGER and SMALLER need a number");
		if (!search_number(a->str, &k->number))
			return search_fail(p, "Invalid number in search criteria");
		p->arg++;
		return k;
	case SK_MODSEQ:
		return search_parse_modseq(p, k);
	case SK_OLDER:
	case SK_YOUNGER:
		/* RFC 5032 §2: OLDER / YOUNGER SP nz-number (seconds) */
		if (a->type != IMAP_ARG_ATOM || !search_number(a->str, &k->number) ||
		    k->number == 0 || k->number > UINT32_MAX)
			return search_fail(
			    p, "OLDER and YOUNGER need a number of seconds (nz-number)");
		p->arg++;
		return k;
	case SK_EMAILID:
	case SK_THREADID:
		return search_parse_objectid(p, k);
	case SK_SAVEDBEFORE:
	case SK_SAVEDON:
	case SK_SAVEDSINCE:
		if ((a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_STRING) ||
		    !search_parse_date(a->str, &k->day))
			return search_fail(p, "Invalid date in search criteria (d-Mon-yyyy)");
		p->arg++;
		return k;
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
		if (type >= SK_SENTBEFORE) {
			p->needs |= IMAP_SEARCH_NEED_HEADER;
			search_parse_hdr(p, k, "Date");
		}
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
		while (i < 5 &&
		       (list->type != IMAP_ARG_ATOM || strcasecmp(list->str, names[i]) != 0))
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
		if (args[1].type != IMAP_ARG_LIST ||
		    search_parse_return(search, args[1].list) < 0) {
			*error_r = "Invalid RETURN options (MIN MAX ALL COUNT SAVE)";
			return -1;
		}
		args += 2;
	}
	if (args->type == IMAP_ARG_ATOM && strcasecmp(args->str, "CHARSET") == 0) {
		const char *cs = NULL;
		if (imap_parser_arg_is_string(&args[1]) &&
		    memchr(args[1].str, '\0', args[1].len) == NULL)
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
	search->uses_seq = p.uses_seq;
	search->modseq = p.modseq;
	search->emailids = p.emailids;
	search->texts = p.texts;
	search->texts_all = !p.texts_some_not;
	search->hdrs = p.hdrs;
	*search_r = search;
	return 0;
}

bool imap_search_charset_supported(const char *charset)
{
	return strcasecmp(charset, "UTF-8") == 0 || strcasecmp(charset, "US-ASCII") == 0;
}

/* ---- matching ---- */

struct search_env {
	const struct imap_search *search;
	const struct imap_search_context *ctx;
	const struct imap_search_msg *msg;
	struct imap_search_doc *doc; /* doc->data NULL: octets not available */
	bool sent_done;
	int64_t sent_day;
};

static bool search_find(const struct imap_search_doc_text *t, size_t from,
                        const struct imap_search_key *k)
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

/* Append the address list of a field value as ENVELOPE parses it (rfc822_addr.c), written
 * back as "mailbox@domain" or "name <route:mailbox@domain>", groups as "group: ...;", joined with
 * ", ": comments, quoting and odd spacing are gone, as in Dovecot's address search. */
static void search_address_text(struct arena *a, const char *v, size_t len, struct buf *out)
{
	int r = 0;
	const char *sep = "";
	for (const struct rfc822_address *x =
	         rfc822_addr_parse_list(a, (const unsigned char *)v, len);
	     x != NULL; x = x->next) {
		if (x->domain == NULL && x->mailbox != NULL) { /* group start */
			r |= buf_printf(out, "%s%s:", sep, x->mailbox);
			sep = " ";
			continue;
		}
		if (x->mailbox == NULL) { /* group end */
			r |= buf_puts(out, ";");
			sep = ", ";
			continue;
		}
		bool angle = x->name != NULL || x->route != NULL;
		r |= buf_puts(out, sep);
		if (x->name != NULL)
			r |= buf_printf(out, "%s ", x->name);
		r |= buf_printf(out, "%s%s%s%s@%s%s", angle ? "<" : "",
		                x->route != NULL ? x->route : "", x->route != NULL ? ":" : "",
		                x->mailbox, x->domain, angle ? ">" : "");
		sep = ", ";
	}
	(void)r; /* a truncated text only matches less */
}

/* FROM, TO, CC, BCC: the needle in the field's addresses (RFC 9051 §6.4.4 "contains"). */
static bool search_address_find(const struct imap_search_doc_text *t,
                                const struct imap_search_key *k)
{
	if (k->len == 0)
		return true;
	struct arena *a = arena_new(4096);
	struct buf out;
	buf_init(&out, 1024 * 1024);
	search_address_text(a, t->s + t->value, t->len - t->value, &out);
	bool found = out.len >= k->len && memmem(out.data, out.len, k->str, k->len) != NULL;
	buf_free(&out);
	arena_free(&a);
	return found;
}

/* A header key on the fields of d (from the message or from the index). */
static bool search_header_has(const struct imap_search_key *k, const struct imap_search_doc *d)
{
	size_t flen = strlen(k->field);
	for (size_t i = 0; i < d->fields.count; i++) {
		const struct imap_search_doc_text *t = &d->fields.v[i];
		if (t->name_len == flen && strncasecmp(t->name, k->field, flen) == 0 &&
		    (k->address ? search_address_find(t, k) : search_find(t, t->value, k)))
			return true;
	}
	return false;
}

static int search_eval_text(const struct imap_search_key *k, struct search_env *e)
{
	struct imap_search_doc *d = e->doc;
	if (d->data == NULL)
		return -1;
	imap_search_doc_header(d);
	if (k->type == SK_HEADER)
		return search_header_has(k, d);
	if (k->type == SK_TEXT)
		for (size_t i = 0; i < d->fields.count; i++)
			if (search_find(&d->fields.v[i], 0, k))
				return 1;
	imap_search_doc_body(d);
	for (size_t i = 0; i < d->body.count; i++) {
		const struct imap_search_doc_text *t = &d->body.v[i];
		/* BODY: the parts' texts only; TEXT: their header lines too */
		if ((k->type == SK_TEXT || t->name == NULL) && search_find(t, 0, k))
			return 1;
	}
	return k->len == 0;
}

/* The date of the first Date: field; none or no valid one counts as 1 Jan 1970, as in
 * Dovecot. */
static int64_t search_sent_day(struct search_env *e)
{
	if (e->sent_done)
		return e->sent_day;
	e->sent_done = true;
	e->sent_day = 0;
	imap_search_doc_header(e->doc);
	for (size_t i = 0; i < e->doc->fields.count; i++) {
		const struct imap_search_doc_text *t = &e->doc->fields.v[i];
		if (t->name_len == 4 && strncasecmp(t->name, "Date", 4) == 0) {
			if (!search_parse_sent(t->s + t->value, &e->sent_day))
				e->sent_day = 0;
			break;
		}
	}
	return e->sent_day;
}

static int search_eval_date(const struct imap_search_key *k, struct search_env *e)
{
	int64_t day;
	if (k->type <= SK_SINCE) {
		day = search_unix_day(e->msg->internal_date);
	} else {
		if (e->doc->data == NULL)
			return -1;
		day = search_sent_day(e);
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

static bool search_uid_listed(const uint32_t *uids, size_t count, uint32_t uid)
{
	for (size_t lo = 0, hi = count; lo < hi;) {
		size_t mid = lo + (hi - lo) / 2;
		if (uids[mid] == uid)
			return true;
		if (uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Is header key (or SENT*) k decided for the message by the index's list? */
static bool search_hdr_decided(const struct imap_search_key *k, const struct search_env *e)
{
	return k->hdr != NULL && k->hdr->indexed &&
	       !search_uid_listed(e->search->hdr_unindexed, e->search->hdr_unindexed_count,
	                          e->msg->uid);
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
	case SK_NEW:
		return (m->flags & (IMAP_SEARCH_FLAG_RECENT | STORE_FLAG_SEEN)) ==
		       IMAP_SEARCH_FLAG_RECENT;
	case SK_KEYWORD:
		return search_has_keyword(m->keywords, k->str, k->len);
	case SK_UNKEYWORD:
		return !search_has_keyword(m->keywords, k->str, k->len);
	case SK_MODSEQ:
		return m->modseq >= k->number;
	case SK_LARGER:
		return m->size > k->number;
	case SK_SMALLER:
		return m->size < k->number;
	case SK_OLDER: /* RFC 5032: older than the interval, or within it */
		return m->internal_date <= e->ctx->now - (int64_t)k->number;
	case SK_YOUNGER:
		return m->internal_date > e->ctx->now - (int64_t)k->number;
	case SK_SEQ:
	case SK_UID:
		if (imap_seqset_is_saved(k->set))
			return search_saved_has(e->ctx, m->uid);
		if (k->type == SK_SEQ)
			return imap_seqset_contains(k->set, m->seq, e->ctx->count);
		return imap_seqset_contains(k->set, m->uid, e->ctx->max_uid);
	case SK_BODY:
	case SK_TEXT:
		if (k->len == 0) /* every message holds the empty string */
			return 1;
		if (k->text != NULL && k->text->indexed &&
		    !search_uid_listed(e->search->unindexed, e->search->unindexed_count, m->uid))
			return search_uid_listed(k->text->uids, k->text->count, m->uid);
		return search_eval_text(k, e);
	case SK_HEADER:
		if (search_hdr_decided(k, e))
			return search_uid_listed(k->hdr->uids, k->hdr->count, m->uid);
		return search_eval_text(k, e);
	case SK_EMAILID:
		return search_uid_listed(k->emailid->uids, k->emailid->count, m->uid);
	case SK_SAVEDBEFORE:
		return search_unix_day(m->save_date) < k->day;
	case SK_SAVEDON:
		return search_unix_day(m->save_date) == k->day;
	case SK_SAVEDSINCE:
		return search_unix_day(m->save_date) >= k->day;
	default:
		if (k->type >= SK_SENTBEFORE && search_hdr_decided(k, e))
			return search_uid_listed(k->hdr->uids, k->hdr->count, m->uid);
		return search_eval_date(k, e);
	}
}

int imap_search_match(const struct imap_search *search, const struct imap_search_context *ctx,
                      const struct imap_search_msg *msg, const unsigned char *data, size_t len)
{
	struct imap_search_doc doc;
	imap_search_doc_init(&doc, data, len);
	struct search_env e = {.search = search, .ctx = ctx, .msg = msg, .doc = &doc};
	int r = search_eval(search->root, &e);
	imap_search_doc_deinit(&doc);
	return r;
}

bool imap_search_needs_body(const struct imap_search *search, uint32_t uid)
{
	if ((search->needs & IMAP_SEARCH_NEED_BODY) == 0)
		return false;
	if (!search->texts_all ||
	    search_uid_listed(search->unindexed, search->unindexed_count, uid))
		return true;
	for (const struct imap_search_text *t = search->texts; t != NULL; t = t->next)
		if (!t->indexed)
			return true;
	return false;
}

void imap_search_hdr_add(struct imap_search_hdr *h, uint32_t uid, const char *hdr, size_t len)
{
	struct imap_search_doc d;
	imap_search_doc_init(&d, NULL, 0);
	if (imap_search_doc_stored_fields(&d, hdr, len) < 0) {
		h->broken = true;
		imap_search_doc_deinit(&d);
		return;
	}
	struct imap_search_msg m = {.uid = uid};
	struct search_env e = {.msg = &m, .doc = &d};
	const struct imap_search_key *k = h->key;
	int r;
	if (k->type == SK_HEADER) {
		r = search_header_has(k, &d);
	} else {
		d.data = (const unsigned char *)""; /* the fields are there: SENT* may look */
		r = search_eval_date(k, &e);
	}
	imap_search_doc_deinit(&d);
	if (r != 1)
		return;
	if (h->count == h->cap) {
		h->cap = h->cap == 0 ? 64 : 2 * h->cap;
		h->uids = xrealloc(h->uids, h->cap * sizeof(*h->uids));
	}
	h->uids[h->count++] = uid;
}
