/* SPF check_host() (RFC 7208), evaluated without I/O over the DNS answers handed in; each
 * run replays the evaluation from the start (see spf.h): record selection (§4.5), parsing
 * (§4.6, §12), mechanisms (§5), modifiers (§6), macros (§7), limits (§4.6.4). */
#include "smtp/spf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/xmalloc.h"
#include "core/banned.h"

#define SPF_DNS_LIMIT 10    /* terms that cause DNS queries (§4.6.4) */
#define SPF_VOID_LIMIT 2    /* lookups without an answer (§4.6.4) */
#define SPF_NAMES_LIMIT 10  /* MX or PTR names looked at (§4.6.4) */
#define SPF_ANSWERS_MAX 512 /* distinct answers one check keeps */
#define SPF_NAME_MAX 253
#define SPF_TERMS_MAX 256
#define SPF_TEXT_MAX 4096 /* an expanded macro-string */

struct spf_answer {
	char *name;
	enum spf_dns_type type;
	enum spf_dns_status status;
	size_t count;
	char **texts;
	unsigned char (*addrs)[16];
};

struct spf_check {
	int family;
	unsigned char ip[16];
	char *sender, *local, *sender_domain, *helo, *receiver, *domain;
	int64_t now;
	struct spf_answer *answers;
	size_t n_answers;
	char need[SPF_NAME_MAX + 1];
	enum spf_dns_type need_type;
	/* per run */
	unsigned dns_terms, voids;
	const char *problem;
	char *explanation;
};

enum spf_kind { K_ALL, K_INCLUDE, K_A, K_MX, K_PTR, K_IP4, K_IP6, K_EXISTS };

struct spf_term {
	char qualifier;
	enum spf_kind kind;
	const char *spec; /* domain-spec as written, or NULL */
	size_t spec_len;
	unsigned cidr4, cidr6;
	unsigned char ip[16];
};

struct spf_record {
	struct spf_term terms[SPF_TERMS_MAX];
	size_t n;
	const char *redirect, *exp;
	size_t redirect_len, exp_len;
	bool has_all;
};

/* Internal: a term's outcome besides a result. */
#define SPF_MATCH 100
#define SPF_NOMATCH 101

/* ---- the check and its answers ---- */

struct spf_check *spf_check_new(const struct spf_request *request)
{
	struct spf_check *c = xcalloc(1, sizeof(*c));
	c->family = request->family;
	memcpy(c->ip, request->ip, sizeof(c->ip));
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (c->family == AF_INET6 && memcmp(c->ip, mapped, 12) == 0) {
		c->family = AF_INET;
		memmove(c->ip, c->ip + 12, 4);
	}
	c->helo = xstrdup(request->helo != NULL ? request->helo : "");
	c->receiver = xstrdup(request->receiver != NULL ? request->receiver : "unknown");
	c->now = request->now;
	const char *s = request->sender != NULL ? request->sender : "";
	const char *at = strrchr(s, '@');
	if (s[0] == '\0') {
		c->local = xstrdup("postmaster");
		c->sender_domain = xstrdup(c->helo);
	} else if (at == NULL) {
		c->local = xstrdup("postmaster");
		c->sender_domain = xstrdup(s);
	} else {
		c->local = at == s ? xstrdup("postmaster") : xstrndup(s, (size_t)(at - s));
		c->sender_domain = xstrdup(at + 1);
	}
	size_t n = strlen(c->local) + strlen(c->sender_domain) + 2;
	c->sender = xmalloc(n);
	snprintf(c->sender, n, "%s@%s", c->local, c->sender_domain);
	c->domain = xstrdup(c->sender_domain);
	return c;
}

static void spf_answer_free(struct spf_answer *a)
{
	for (size_t i = 0; a->texts != NULL && i < a->count; i++)
		free(a->texts[i]);
	free(a->texts);
	free(a->addrs);
	free(a->name);
}

void spf_check_free(struct spf_check **check)
{
	struct spf_check *c = *check;
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n_answers; i++)
		spf_answer_free(&c->answers[i]);
	free(c->answers);
	free(c->sender);
	free(c->local);
	free(c->sender_domain);
	free(c->helo);
	free(c->receiver);
	free(c->domain);
	free(c->explanation);
	free(c);
	*check = NULL;
}

const char *spf_check_need(const struct spf_check *check, enum spf_dns_type *type_r)
{
	*type_r = check->need_type;
	return check->need;
}

void spf_check_answer(struct spf_check *c, const char *name, enum spf_dns_type type,
                      const struct spf_dns_answer *answer)
{
	if (c->n_answers >= SPF_ANSWERS_MAX)
		return; /* spf_lookup() then ends the check with a temperror */
	c->answers = xrealloc(c->answers, (c->n_answers + 1) * sizeof(*c->answers));
	struct spf_answer *a = &c->answers[c->n_answers++];
	memset(a, 0, sizeof(*a));
	a->name = xstrdup(name);
	a->type = type;
	a->status = answer->status;
	if (answer->status != SPF_DNS_OK)
		return;
	a->count = answer->count;
	if (answer->texts != NULL) {
		a->texts = xcalloc(a->count + 1, sizeof(*a->texts));
		for (size_t i = 0; i < a->count; i++) {
			/* A NUL octet becomes DEL, which no SPF text may hold: such a record is a
			 * syntax error (§7.1), not one cut short at the NUL. */
			size_t n =
			    answer->lens != NULL ? answer->lens[i] : strlen(answer->texts[i]);
			a->texts[i] = xmalloc(n + 1);
			for (size_t k = 0; k < n; k++)
				a->texts[i][k] =
				    answer->texts[i][k] != '\0' ? answer->texts[i][k] : 0x7f;
			a->texts[i][n] = '\0';
		}
	}
	if (answer->addrs != NULL && a->count > 0) {
		a->addrs = xcalloc(a->count, sizeof(*a->addrs));
		memcpy(a->addrs, answer->addrs, a->count * sizeof(*a->addrs));
	}
}

/* The answer for name/type: 0 with *a_r, or -1 when it is missing (then it is the check's
 * need). Names compare without case and without a trailing dot. */
static int spf_lookup(struct spf_check *c, const char *name, enum spf_dns_type type,
                      const struct spf_answer **a_r)
{
	size_t n = strlen(name);
	if (n > 0 && name[n - 1] == '.')
		n--;
	for (size_t i = 0; i < c->n_answers; i++) {
		const struct spf_answer *a = &c->answers[i];
		if (a->type == type && strlen(a->name) == n && strncasecmp(a->name, name, n) == 0) {
			*a_r = a;
			return 0;
		}
	}
	if (n > SPF_NAME_MAX)
		n = SPF_NAME_MAX;
	memcpy(c->need, name, n);
	c->need[n] = '\0';
	c->need_type = type;
	return -1;
}

/* ---- names and addresses ---- */

static bool spf_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* §4.3: labels of 1..63 octets, at least two of them, at most 253 octets in all (a trailing
 * dot allowed). */
static bool spf_domain_valid(const char *d)
{
	size_t n = strlen(d), label = 0, labels = 0;
	if (n > 0 && d[n - 1] == '.')
		n--;
	if (n == 0 || n > SPF_NAME_MAX)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || d[i] == '.') {
			if (label == 0 || label > 63)
				return false;
			labels++;
			label = 0;
		} else {
			label++;
		}
	}
	return labels >= 2;
}

/* The client address in the form %{i} writes: dotted quad, or 32 dotted nibbles (upper
 * case, as the RFC 7208 test suite expects; DNS names ignore case). */
static void spf_ip_dotted(const struct spf_check *c, char *out, size_t n)
{
	if (c->family == AF_INET) {
		snprintf(out, n, "%u.%u.%u.%u", c->ip[0], c->ip[1], c->ip[2], c->ip[3]);
		return;
	}
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (size_t i = 0; i < 16 && o + 4 < n; i++) {
		out[o++] = hex[c->ip[i] >> 4];
		out[o++] = '.';
		out[o++] = hex[c->ip[i] & 15];
		out[o++] = i < 15 ? '.' : '\0';
	}
	out[o < n ? o : n - 1] = '\0';
}

/* The name of the client's PTR records (in-addr.arpa / ip6.arpa). */
static void spf_reverse_name(const struct spf_check *c, char *out, size_t n)
{
	if (c->family == AF_INET) {
		snprintf(out, n, "%u.%u.%u.%u.in-addr.arpa", c->ip[3], c->ip[2], c->ip[1],
		         c->ip[0]);
		return;
	}
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (int i = 15; i >= 0 && o + 4 < n; i--) {
		out[o++] = hex[c->ip[i] & 15];
		out[o++] = '.';
		out[o++] = hex[c->ip[i] >> 4];
		out[o++] = '.';
	}
	snprintf(out + o, n - o, "ip6.arpa");
}

static bool spf_cidr_match(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;
	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

/* name equals domain or is below it (no case). */
static bool spf_name_within(const char *name, const char *domain)
{
	size_t n = strlen(name), d = strlen(domain);
	if (n > 0 && name[n - 1] == '.')
		n--;
	if (d > 0 && domain[d - 1] == '.')
		d--;
	if (n < d || strncasecmp(name + n - d, domain, d) != 0)
		return false;
	return n == d || name[n - d - 1] == '.';
}

/* ---- macros (§7) ---- */

enum spf_expand_mode { EXPAND_CHECK, EXPAND_DOMAIN, EXPAND_EXPLAIN };

#define SPF_EXPAND_SYNTAX (-1)
#define SPF_EXPAND_PENDING (-2)

static int spf_validated_name(struct spf_check *c, const char *domain, struct buf *out);

/* A macro letter's value (before transformers) into v. */
static int spf_macro_value(struct spf_check *c, char letter, const char *domain,
                           enum spf_expand_mode mode, struct buf *v)
{
	char tmp[INET6_ADDRSTRLEN + 72];
	bool explain = mode == EXPAND_EXPLAIN;
	switch (letter) {
	case 's':
		return buf_puts(v, c->sender);
	case 'l':
		return buf_puts(v, c->local);
	case 'o':
		return buf_puts(v, c->sender_domain);
	case 'd':
		return buf_puts(v, domain);
	case 'h':
		return buf_puts(v, c->helo);
	case 'v':
		return buf_puts(v, c->family == AF_INET ? "in-addr" : "ip6");
	case 'i':
		spf_ip_dotted(c, tmp, sizeof(tmp));
		return buf_puts(v, tmp);
	case 'p':
		return spf_validated_name(c, domain, v);
	case 'c':
		if (!explain)
			return SPF_EXPAND_SYNTAX;
		inet_ntop(c->family, c->ip, tmp, sizeof(tmp));
		return buf_puts(v, tmp);
	case 'r':
		return explain ? buf_puts(v, c->receiver) : SPF_EXPAND_SYNTAX;
	case 't':
		return explain ? buf_printf(v, "%lld", (long long)c->now) : SPF_EXPAND_SYNTAX;
	default:
		return SPF_EXPAND_SYNTAX;
	}
}

/* Split v at the delimiters, reverse if asked, keep the rightmost keep parts (0: all),
 * join with dots, URL-escape if asked (§7.3), and append to out. */
static int spf_macro_transform(const char *v, const char *delims, bool reverse, unsigned keep,
                               bool escape, struct buf *out)
{
	const char *parts[128];
	size_t lens[128], n = 0;
	const char *p = v;
	for (;;) {
		size_t len = strcspn(p, delims);
		if (n == 128)
			return SPF_EXPAND_SYNTAX;
		parts[n] = p;
		lens[n++] = len;
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	/* The parts in order (reversed if asked), of which the rightmost keep. */
	size_t first = keep != 0 && keep < n ? n - keep : 0;
	int r = 0;
	for (size_t k = first; k < n; k++) {
		size_t i = reverse ? n - 1 - k : k;
		if (k > first)
			r |= buf_puts(out, ".");
		for (size_t j = 0; j < lens[i]; j++) {
			unsigned char ch = (unsigned char)parts[i][j];
			bool plain =
			    spf_alnum((char)ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~';
			r |= !escape || plain ? buf_append(out, &ch, 1)
			                      : buf_printf(out, "%%%02X", ch);
		}
	}
	return r < 0 ? SPF_EXPAND_SYNTAX : 0;
}

/* One "%{...}" at s (after "%{"); *used_r octets up to and including "}". */
static int spf_macro_one(struct spf_check *c, const char *s, size_t n, const char *domain,
                         enum spf_expand_mode mode, struct buf *out, size_t *used_r)
{
	const char *end = memchr(s, '}', n);
	if (end == NULL || end == s)
		return SPF_EXPAND_SYNTAX;
	char letter = s[0];
	bool upper = letter >= 'A' && letter <= 'Z';
	if (upper)
		letter = (char)(letter - 'A' + 'a');
	const char *p = s + 1;
	unsigned keep = 0;
	bool digits = false;
	while (p < end && *p >= '0' && *p <= '9') {
		if (keep > 1000)
			return SPF_EXPAND_SYNTAX;
		keep = keep * 10 + (unsigned)(*p++ - '0');
		digits = true;
	}
	if (digits && keep == 0)
		return SPF_EXPAND_SYNTAX;
	bool reverse = p < end && (*p == 'r' || *p == 'R');
	if (reverse)
		p++;
	char delims[8] = "";
	size_t nd = 0;
	for (; p < end; p++) {
		if (strchr(".-+,/_=", *p) == NULL || nd == sizeof(delims) - 1)
			return SPF_EXPAND_SYNTAX;
		delims[nd++] = *p;
	}
	delims[nd] = '\0';
	*used_r = (size_t)(end - s) + 1;
	struct buf v;
	buf_init(&v, SPF_TEXT_MAX);
	/* Checking a domain-spec: c, r and t belong to explanations only (§7.2). */
	int r = mode != EXPAND_CHECK                 ? spf_macro_value(c, letter, domain, mode, &v)
	        : strchr("slodhvip", letter) != NULL ? buf_puts(&v, "x")
	                                             : SPF_EXPAND_SYNTAX;
	if (r == 0)
		r = spf_macro_transform(buf_cstr(&v), nd > 0 ? delims : ".", reverse, keep, upper,
		                        out);
	buf_free(&v);
	return r;
}

/* Expand the macro-string s (n octets) into out. 0, SPF_EXPAND_SYNTAX, or
 * SPF_EXPAND_PENDING (a %{p} needs DNS answers). EXPAND_CHECK only checks the syntax. */
static int spf_expand(struct spf_check *c, const char *s, size_t n, const char *domain,
                      enum spf_expand_mode mode, struct buf *out)
{
	for (size_t i = 0; i < n;) {
		unsigned char ch = (unsigned char)s[i];
		if (ch != '%') {
			bool ok =
			    (ch >= 0x21 && ch <= 0x7e) || (ch == ' ' && mode == EXPAND_EXPLAIN);
			if (!ok || buf_append(out, &ch, 1) < 0)
				return SPF_EXPAND_SYNTAX;
			i++;
			continue;
		}
		if (i + 1 >= n)
			return SPF_EXPAND_SYNTAX;
		char next = s[i + 1];
		int r = 0;
		size_t used = 2;
		if (next == '%')
			r = buf_puts(out, "%");
		else if (next == '_')
			r = buf_puts(out, " ");
		else if (next == '-')
			r = buf_puts(out, "%20");
		else if (next == '{') {
			r = spf_macro_one(c, s + i + 2, n - i - 2, domain, mode, out, &used);
			used += 2;
		} else
			return SPF_EXPAND_SYNTAX;
		if (r != 0)
			return r < 0 && r != SPF_EXPAND_PENDING ? SPF_EXPAND_SYNTAX : r;
		i += used;
	}
	return 0;
}

/* A domain-spec (§4.6.1, §7.1): macro-string domain-end, where domain-end is "." toplabel
 * ["."] or a macro-expand. */
static bool spf_domain_spec_valid(const char *s, size_t n)
{
	struct buf b;
	buf_init(&b, SPF_TEXT_MAX);
	bool ok = n > 0 && spf_expand(NULL, s, n, "", EXPAND_CHECK, &b) == 0;
	buf_free(&b);
	if (!ok)
		return false;
	if (s[n - 1] == '}' || (n >= 2 && s[n - 2] == '%' && strchr("%_-", s[n - 1]) != NULL))
		return true;
	if (s[n - 1] == '.')
		n--;
	size_t start = n;
	while (start > 0 && s[start - 1] != '.')
		start--;
	if (start == 0 || start == n) /* a dot must precede the top label */
		return false;
	const char *t = s + start;
	size_t len = n - start;
	bool alpha = false;
	for (size_t i = 0; i < len; i++) {
		if (!spf_alnum(t[i]) && t[i] != '-')
			return false;
		alpha |= !(t[i] >= '0' && t[i] <= '9') && t[i] != '-';
	}
	return alpha ? t[0] != '-' && t[len - 1] != '-' : false;
}

/* Expand a domain-spec for a query, dropping leading labels past 253 octets (§7.3). */
static int spf_expand_domain(struct spf_check *c, const char *spec, size_t n, const char *domain,
                             struct buf *out)
{
	int r = spf_expand(c, spec, n, domain, EXPAND_DOMAIN, out);
	if (r != 0)
		return r;
	while (out->len > SPF_NAME_MAX) {
		const char *dot = memchr(out->data, '.', out->len);
		buf_consume(out, dot != NULL ? (size_t)(dot - out->data) + 1 : out->len);
	}
	return 0;
}

/* A term's target name: its domain-spec expanded, or the current domain. */
static int spf_target(struct spf_check *c, const struct spf_term *t, const char *domain,
                      struct buf *out)
{
	if (t->spec == NULL)
		return buf_puts(out, domain) < 0 ? SPF_EXPAND_SYNTAX : 0;
	return spf_expand_domain(c, t->spec, t->spec_len, domain, out);
}

/* %{p}: a validated name of the client (§7.3): the domain itself or one below it if
 * validated, else any validated name, else "unknown". */
static int spf_validated_name(struct spf_check *c, const char *domain, struct buf *out)
{
	char rev[80];
	spf_reverse_name(c, rev, sizeof(rev));
	const struct spf_answer *ptr, *fwd;
	if (spf_lookup(c, rev, SPF_DNS_PTR, &ptr) < 0)
		return SPF_EXPAND_PENDING;
	const char *best = NULL;
	for (size_t i = 0; ptr->status == SPF_DNS_OK && i < ptr->count && i < SPF_NAMES_LIMIT;
	     i++) {
		const char *name = ptr->texts[i];
		if (spf_lookup(c, name, c->family == AF_INET ? SPF_DNS_A : SPF_DNS_AAAA, &fwd) < 0)
			return SPF_EXPAND_PENDING;
		bool valid = false;
		for (size_t k = 0; fwd->status == SPF_DNS_OK && k < fwd->count; k++)
			valid |= memcmp(fwd->addrs[k], c->ip, c->family == AF_INET ? 4 : 16) == 0;
		if (!valid)
			continue;
		if (spf_name_within(name, domain) &&
		    (best == NULL || !spf_name_within(best, domain) ||
		     strcasecmp(name, domain) == 0))
			best = name;
		else if (best == NULL)
			best = name;
	}
	return buf_puts(out, best != NULL ? best : "unknown") < 0 ? SPF_EXPAND_SYNTAX : 0;
}

/* ---- parsing (§4.6, §12) ---- */

/* "/n" at the end of s[0..*n): its value in *v (0..max) and *n shortened. 0 none, 1 found,
 * -1 malformed. Leading zeros are not allowed (§12: ip4-cidr-length). */
static int spf_cidr_suffix(const char *s, size_t *n, const char *slash, unsigned max, unsigned *v)
{
	size_t e = *n, d = e;
	while (d > 0 && s[d - 1] >= '0' && s[d - 1] <= '9')
		d--;
	size_t sl = strlen(slash);
	if (d < sl || memcmp(s + d - sl, slash, sl) != 0)
		return 0;
	if (sl == 1 && d >= 2 && s[d - 2] == '/')
		return 0; /* "//n" is the other length */
	if (d == e || (e - d > 1 && s[d] == '0') || e - d > 3)
		return -1;
	unsigned value = 0;
	for (size_t i = d; i < e; i++)
		value = value * 10 + (unsigned)(s[i] - '0');
	if (value > max)
		return -1;
	*v = value;
	*n = d - sl;
	return 1;
}

/* A mechanism's argument: [":" domain-spec] and, for a/mx, a dual-cidr-length. */
static int spf_parse_spec(struct spf_term *t, const char *arg, size_t n, bool cidr, bool required)
{
	t->cidr4 = 32;
	t->cidr6 = 128;
	if (cidr) {
		if (spf_cidr_suffix(arg, &n, "//", 128, &t->cidr6) < 0 ||
		    spf_cidr_suffix(arg, &n, "/", 32, &t->cidr4) < 0)
			return -1;
	}
	if (n == 0)
		return required ? -1 : 0;
	if (arg[0] != ':' || !spf_domain_spec_valid(arg + 1, n - 1))
		return -1;
	t->spec = arg + 1;
	t->spec_len = n - 1;
	return 0;
}

static int spf_parse_ip(struct spf_term *t, const char *arg, size_t n, bool v6)
{
	t->cidr4 = 32;
	t->cidr6 = 128;
	if (n < 2 || arg[0] != ':' ||
	    spf_cidr_suffix(arg, &n, "/", v6 ? 128 : 32, v6 ? &t->cidr6 : &t->cidr4) < 0)
		return -1;
	char text[INET6_ADDRSTRLEN + 1];
	if (n - 1 >= sizeof(text) || n < 2)
		return -1;
	memcpy(text, arg + 1, n - 1);
	text[n - 1] = '\0';
	if (!v6) { /* qnum: no leading zeros (inet_pton refuses them too) */
		return inet_pton(AF_INET, text, t->ip) == 1 ? 0 : -1;
	}
	return inet_pton(AF_INET6, text, t->ip) == 1 ? 0 : -1;
}

static int spf_parse_directive(struct spf_term *t, const char *s, size_t n)
{
	t->qualifier = '+';
	if (n > 0 && strchr("+-~?", s[0]) != NULL) {
		t->qualifier = s[0];
		s++;
		n--;
	}
	size_t name = 0;
	while (name < n && s[name] != ':' && s[name] != '/')
		name++;
	static const struct {
		const char *name;
		enum spf_kind kind;
	} kinds[] = {{"all", K_ALL}, {"include", K_INCLUDE}, {"a", K_A},     {"mx", K_MX},
	             {"ptr", K_PTR}, {"ip4", K_IP4},         {"ip6", K_IP6}, {"exists", K_EXISTS}};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strlen(kinds[i].name) != name || strncasecmp(s, kinds[i].name, name) != 0)
			continue;
		t->kind = kinds[i].kind;
		const char *arg = s + name;
		size_t len = n - name;
		switch (t->kind) {
		case K_ALL:
			return len == 0 ? 0 : -1;
		case K_INCLUDE:
		case K_EXISTS:
			return spf_parse_spec(t, arg, len, false, true);
		case K_A:
		case K_MX:
			return spf_parse_spec(t, arg, len, true, false);
		case K_PTR:
			return spf_parse_spec(t, arg, len, false, false);
		case K_IP4:
			return spf_parse_ip(t, arg, len, false);
		case K_IP6:
			return spf_parse_ip(t, arg, len, true);
		}
	}
	return -1;
}

/* A modifier "name=value" (§6, §12): 1 when s is one (recorded), 0 when it is not a
 * modifier, -1 when malformed or repeated. */
static int spf_parse_modifier(struct spf_record *rec, const char *s, size_t n)
{
	size_t name = 0;
	if (n == 0 || !((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z'))
		return 0;
	while (name < n && (spf_alnum(s[name]) || strchr("-_.", s[name]) != NULL))
		name++;
	if (name == n || s[name] != '=')
		return 0;
	const char *v = s + name + 1;
	size_t vn = n - name - 1;
	bool redirect = name == 8 && strncasecmp(s, "redirect", 8) == 0;
	bool exp = name == 3 && strncasecmp(s, "exp", 3) == 0;
	if (redirect || exp) {
		if ((redirect ? rec->redirect : rec->exp) != NULL || !spf_domain_spec_valid(v, vn))
			return -1;
		*(redirect ? &rec->redirect : &rec->exp) = v;
		*(redirect ? &rec->redirect_len : &rec->exp_len) = vn;
		return 1;
	}
	struct buf b; /* an unknown modifier is ignored, but must be well-formed */
	buf_init(&b, SPF_TEXT_MAX);
	int r = spf_expand(NULL, v, vn, "", EXPAND_CHECK, &b);
	buf_free(&b);
	return r == 0 ? 1 : -1;
}

/* A record after "v=spf1": terms separated by spaces. 0, or -1 (permerror). */
static int spf_parse_record(struct spf_record *rec, const char *s)
{
	memset(rec, 0, sizeof(*rec));
	for (;;) {
		while (*s == ' ')
			s++;
		if (*s == '\0')
			return 0;
		size_t n = strcspn(s, " ");
		int m = spf_parse_modifier(rec, s, n);
		if (m < 0)
			return -1;
		if (m == 0) {
			if (rec->n == SPF_TERMS_MAX ||
			    spf_parse_directive(&rec->terms[rec->n], s, n) < 0)
				return -1;
			rec->has_all |= rec->terms[rec->n].kind == K_ALL;
			rec->n++;
		}
		s += n;
	}
}

/* §4.5: "v=spf1" followed by a space or the end. */
static bool spf_is_record(const char *text)
{
	return strncasecmp(text, "v=spf1", 6) == 0 && (text[6] == ' ' || text[6] == '\0');
}

/* ---- evaluation (§4.6, §5) ---- */

static enum spf_result spf_check_host(struct spf_check *c, const char *domain, bool nested);

static int spf_permerror(struct spf_check *c, const char *why)
{
	if (c->problem == NULL)
		c->problem = why;
	return SPF_PERMERROR;
}

static int spf_temperror(struct spf_check *c, const char *why)
{
	if (c->problem == NULL)
		c->problem = why;
	return SPF_TEMPERROR;
}

/* One more term that queries DNS (§4.6.4). 0, or SPF_PERMERROR past the limit. */
static int spf_count_dns(struct spf_check *c)
{
	return ++c->dns_terms > SPF_DNS_LIMIT ? spf_permerror(c, "more than 10 DNS lookups") : 0;
}

/* A lookup that found nothing (§4.6.4 void lookups). */
static int spf_count_void(struct spf_check *c, const struct spf_answer *a)
{
	if (a->status == SPF_DNS_NXDOMAIN || (a->status == SPF_DNS_OK && a->count == 0))
		if (++c->voids > SPF_VOID_LIMIT)
			return spf_permerror(c, "more than 2 void DNS lookups");
	return 0;
}

/* Whether any address of name (A or AAAA as the client's family) is within the term's
 * prefix: SPF_MATCH, SPF_NOMATCH, SPF_TEMPERROR, SPF_PERMERROR or SPF_PENDING. */
static int spf_match_addrs(struct spf_check *c, const char *name, const struct spf_term *t,
                           bool count_void)
{
	const struct spf_answer *a;
	if (spf_lookup(c, name, c->family == AF_INET ? SPF_DNS_A : SPF_DNS_AAAA, &a) < 0)
		return SPF_PENDING;
	if (a->status == SPF_DNS_TEMPFAIL)
		return spf_temperror(c, "DNS failure looking up an address");
	if (count_void && spf_count_void(c, a) != 0)
		return SPF_PERMERROR;
	unsigned bits = c->family == AF_INET ? t->cidr4 : t->cidr6;
	for (size_t i = 0; a->status == SPF_DNS_OK && i < a->count; i++)
		if (spf_cidr_match(a->addrs[i], c->ip, bits))
			return SPF_MATCH;
	return SPF_NOMATCH;
}

static int spf_match_mx(struct spf_check *c, const char *target, const struct spf_term *t)
{
	const struct spf_answer *a;
	if (spf_lookup(c, target, SPF_DNS_MX, &a) < 0)
		return SPF_PENDING;
	if (a->status == SPF_DNS_TEMPFAIL)
		return spf_temperror(c, "DNS failure looking up MX");
	if (spf_count_void(c, a) != 0)
		return SPF_PERMERROR;
	if (a->status == SPF_DNS_OK && a->count > SPF_NAMES_LIMIT)
		return spf_permerror(c, "more than 10 MX names");
	for (size_t i = 0; a->status == SPF_DNS_OK && i < a->count; i++) {
		if (a->texts[i][0] == '\0' || strcmp(a->texts[i], ".") == 0)
			continue; /* null MX (RFC 7505) */
		int r = spf_match_addrs(c, a->texts[i], t, false);
		if (r != SPF_NOMATCH)
			return r;
	}
	return SPF_NOMATCH;
}

/* ptr (§5.5): a validated name of the client at or below target; DNS errors do not match. */
static int spf_match_ptr(struct spf_check *c, const char *target)
{
	char rev[80];
	spf_reverse_name(c, rev, sizeof(rev));
	const struct spf_answer *ptr, *fwd;
	if (spf_lookup(c, rev, SPF_DNS_PTR, &ptr) < 0)
		return SPF_PENDING;
	if (ptr->status != SPF_DNS_OK)
		return ptr->status == SPF_DNS_NXDOMAIN && spf_count_void(c, ptr) != 0
		           ? SPF_PERMERROR
		           : SPF_NOMATCH;
	if (spf_count_void(c, ptr) != 0)
		return SPF_PERMERROR;
	for (size_t i = 0; i < ptr->count && i < SPF_NAMES_LIMIT; i++) {
		const char *name = ptr->texts[i];
		if (!spf_name_within(name, target))
			continue;
		if (spf_lookup(c, name, c->family == AF_INET ? SPF_DNS_A : SPF_DNS_AAAA, &fwd) < 0)
			return SPF_PENDING;
		for (size_t k = 0; fwd->status == SPF_DNS_OK && k < fwd->count; k++)
			if (memcmp(fwd->addrs[k], c->ip, c->family == AF_INET ? 4 : 16) == 0)
				return SPF_MATCH;
	}
	return SPF_NOMATCH;
}

static int spf_match_include(struct spf_check *c, const char *target)
{
	enum spf_result r = spf_check_host(c, target, true);
	switch (r) {
	case SPF_PASS:
		return SPF_MATCH;
	case SPF_FAIL:
	case SPF_SOFTFAIL:
	case SPF_NEUTRAL:
		return SPF_NOMATCH;
	case SPF_NONE:
		return spf_permerror(c, "include of a domain without an SPF record");
	default:
		return (int)r;
	}
}

static int spf_match_exists(struct spf_check *c, const char *target)
{
	const struct spf_answer *a;
	if (spf_lookup(c, target, SPF_DNS_A, &a) < 0)
		return SPF_PENDING;
	if (a->status == SPF_DNS_TEMPFAIL)
		return spf_temperror(c, "DNS failure in exists");
	if (spf_count_void(c, a) != 0)
		return SPF_PERMERROR;
	return a->status == SPF_DNS_OK && a->count > 0 ? SPF_MATCH : SPF_NOMATCH;
}

/* A term against the client: SPF_MATCH, SPF_NOMATCH or a result that ends the check. */
static int spf_match(struct spf_check *c, const struct spf_term *t, const char *domain)
{
	switch (t->kind) {
	case K_ALL:
		return SPF_MATCH;
	case K_IP4:
		return c->family == AF_INET && spf_cidr_match(t->ip, c->ip, t->cidr4) ? SPF_MATCH
		                                                                      : SPF_NOMATCH;
	case K_IP6:
		return c->family == AF_INET6 && spf_cidr_match(t->ip, c->ip, t->cidr6)
		           ? SPF_MATCH
		           : SPF_NOMATCH;
	default:
		break;
	}
	if (spf_count_dns(c) != 0)
		return SPF_PERMERROR;
	struct buf target;
	buf_init(&target, SPF_TEXT_MAX);
	int r = spf_target(c, t, domain, &target);
	if (r == SPF_EXPAND_PENDING)
		r = SPF_PENDING;
	else if (r != 0)
		r = spf_permerror(c, "bad macro in a domain-spec");
	else if (t->kind != K_INCLUDE && !spf_domain_valid(buf_cstr(&target)))
		r = SPF_NOMATCH; /* no query can be made: as a name that does not exist (§4.8) */
	else if (t->kind == K_INCLUDE)
		r = spf_match_include(c, buf_cstr(&target));
	else if (t->kind == K_A)
		r = spf_match_addrs(c, buf_cstr(&target), t, true);
	else if (t->kind == K_MX)
		r = spf_match_mx(c, buf_cstr(&target), t);
	else if (t->kind == K_PTR)
		r = spf_match_ptr(c, buf_cstr(&target));
	else
		r = spf_match_exists(c, buf_cstr(&target));
	buf_free(&target);
	return r;
}

static enum spf_result spf_qualified(char qualifier)
{
	switch (qualifier) {
	case '-':
		return SPF_FAIL;
	case '~':
		return SPF_SOFTFAIL;
	case '?':
		return SPF_NEUTRAL;
	default:
		return SPF_PASS;
	}
}

/* exp= (§6.2): the explanation of a fail, if its TXT record can be had. SPF_PENDING or 0. */
static int spf_explain(struct spf_check *c, const struct spf_record *rec, const char *domain)
{
	struct buf name, text;
	buf_init(&name, SPF_TEXT_MAX);
	buf_init(&text, SPF_TEXT_MAX);
	const struct spf_answer *a = NULL;
	int r = spf_expand_domain(c, rec->exp, rec->exp_len, domain, &name);
	if (r == 0 && spf_domain_valid(buf_cstr(&name)) &&
	    spf_lookup(c, buf_cstr(&name), SPF_DNS_TXT, &a) < 0)
		r = SPF_EXPAND_PENDING;
	if (r == 0 && a != NULL && a->status == SPF_DNS_OK && a->count == 1) {
		r = spf_expand(c, a->texts[0], strlen(a->texts[0]), domain, EXPAND_EXPLAIN, &text);
		if (r == 0) {
			free(c->explanation);
			c->explanation = xstrdup(buf_cstr(&text));
		}
	}
	buf_free(&name);
	buf_free(&text);
	return r == SPF_EXPAND_PENDING ? SPF_PENDING : 0;
}

static enum spf_result spf_eval_record(struct spf_check *c, const char *domain, const char *record,
                                       bool nested)
{
	struct spf_record *rec = xmalloc(sizeof(*rec));
	enum spf_result result = SPF_NEUTRAL;
	if (spf_parse_record(rec, record + 6) < 0) {
		result = (enum spf_result)spf_permerror(c, "syntax error in the SPF record");
		goto out;
	}
	for (size_t i = 0; i < rec->n; i++) {
		int m = spf_match(c, &rec->terms[i], domain);
		if (m == SPF_NOMATCH)
			continue;
		if (m != SPF_MATCH) {
			result = (enum spf_result)m;
			goto out;
		}
		result = spf_qualified(rec->terms[i].qualifier);
		if (result == SPF_FAIL && rec->exp != NULL && !nested &&
		    spf_explain(c, rec, domain) == SPF_PENDING)
			result = SPF_PENDING;
		goto out;
	}
	if (rec->redirect != NULL && !rec->has_all) {
		struct spf_term t = {.spec = rec->redirect, .spec_len = rec->redirect_len};
		struct buf target;
		buf_init(&target, SPF_TEXT_MAX);
		int r = spf_count_dns(c);
		if (r == 0)
			r = spf_target(c, &t, domain, &target);
		if (r == SPF_EXPAND_PENDING)
			result = SPF_PENDING;
		else if (r != 0)
			result = SPF_PERMERROR;
		else {
			result = spf_check_host(c, buf_cstr(&target), nested);
			if (result == SPF_NONE)
				result = (enum spf_result)spf_permerror(
				    c, "redirect to a domain without SPF");
		}
		buf_free(&target);
	}
out:
	free(rec);
	return result;
}

/* check_host() (§4): the record of domain, selected and evaluated. nested: within include
 * (whose exp= is not used, §6.2). */
static enum spf_result spf_check_host(struct spf_check *c, const char *domain, bool nested)
{
	if (!spf_domain_valid(domain))
		return SPF_NONE;
	const struct spf_answer *a;
	if (spf_lookup(c, domain, SPF_DNS_TXT, &a) < 0)
		return SPF_PENDING;
	if (a->status == SPF_DNS_TEMPFAIL)
		return (enum spf_result)spf_temperror(c, "DNS failure looking up the SPF record");
	const char *record = NULL;
	for (size_t i = 0; a->status == SPF_DNS_OK && i < a->count; i++) {
		if (!spf_is_record(a->texts[i]))
			continue;
		if (record != NULL)
			return (enum spf_result)spf_permerror(c, "more than one SPF record");
		record = a->texts[i];
	}
	if (record == NULL)
		return SPF_NONE;
	return spf_eval_record(c, domain, record, nested);
}

enum spf_result spf_check_run(struct spf_check *c)
{
	c->dns_terms = 0;
	c->voids = 0;
	c->problem = NULL;
	free(c->explanation);
	c->explanation = NULL;
	enum spf_result r = spf_check_host(c, c->domain, false);
	if (r == SPF_PENDING && c->n_answers >= SPF_ANSWERS_MAX)
		r = (enum spf_result)spf_temperror(c, "too many DNS lookups");
	return r;
}

const char *spf_check_explanation(const struct spf_check *check, const char **problem_r)
{
	*problem_r = check->problem;
	return check->explanation;
}

const char *spf_check_domain(const struct spf_check *check)
{
	return check->domain;
}

const char *spf_result_name(enum spf_result result)
{
	static const char *const names[] = {"none",     "neutral",   "pass",      "fail",
	                                    "softfail", "temperror", "permerror", "pending"};
	return (unsigned)result < sizeof(names) / sizeof(names[0]) ? names[result] : "permerror";
}
