/* DMARC policy discovery, alignment and the policy to apply (see dmarc.h). */
#include "smtp/dmarc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"
#include "smtp/psl.h"
#include "core/banned.h"

#define DMARC_NAME_MAX 260

struct dmarc_check {
	const struct psl *psl;
	char *from, *spf;
	char **dkim;
	size_t ndkim;
	unsigned sample;
	/* the two lookups: at the From domain, then at its organizational domain */
	char names[2][DMARC_NAME_MAX];
	bool answered[2];
	enum dmarc_dns_status status[2];
	char *record[2]; /* the one DMARC record found there, or NULL */
	int found;       /* which lookup the record came from, or -1 */
	const char *need;
	enum dmarc_result result;
	enum dmarc_policy apply;
	struct dmarc_record rec;
};

/* ---- the record (§6.3) ---- */

static int dmarc_policy_parse(const char *v, size_t n, enum dmarc_policy *p)
{
	if (n == 4 && strncasecmp(v, "none", 4) == 0)
		*p = DMARC_POLICY_NONE;
	else if (n == 10 && strncasecmp(v, "quarantine", 10) == 0)
		*p = DMARC_POLICY_QUARANTINE;
	else if (n == 6 && strncasecmp(v, "reject", 6) == 0)
		*p = DMARC_POLICY_REJECT;
	else
		return -1;
	return 0;
}

/* One "name=value" tag into rec; *p_given set when p= was valid. */
static void dmarc_tag(struct dmarc_record *rec, const char *name, size_t nn, const char *v,
                      size_t vn, bool *p_given)
{
	if (nn == 1 && name[0] == 'p')
		*p_given = dmarc_policy_parse(v, vn, &rec->p) == 0;
	else if (nn == 2 && strncasecmp(name, "sp", 2) == 0)
		rec->sp_given = dmarc_policy_parse(v, vn, &rec->sp) == 0;
	else if (nn == 5 && strncasecmp(name, "adkim", 5) == 0 && vn == 1)
		rec->adkim_strict = (v[0] | 0x20) == 's';
	else if (nn == 4 && strncasecmp(name, "aspf", 4) == 0 && vn == 1)
		rec->aspf_strict = (v[0] | 0x20) == 's';
	else if (nn == 3 && strncasecmp(name, "pct", 3) == 0 && vn >= 1 && vn <= 3) {
		unsigned pct = 0;
		size_t i = 0;
		while (i < vn && v[i] >= '0' && v[i] <= '9')
			pct = pct * 10 + (unsigned)(v[i++] - '0');
		if (i == vn && pct <= 100)
			rec->pct = pct; /* else the default stays (§6.3: errors fall back) */
	} else if (nn == 3 && strncasecmp(name, "rua", 3) == 0 && vn < sizeof(rec->rua) &&
	           strncasecmp(v, "mailto:", 7) == 0) {
		memcpy(rec->rua, v, vn);
		rec->rua[vn] = '\0';
	}
}

int dmarc_record_parse(const char *text, struct dmarc_record *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->pct = 100;
	bool p_given = false;
	size_t index = 0;
	for (const char *s = text; *s != '\0'; index++) {
		size_t len = strcspn(s, ";");
		const char *a = s, *b = s + len;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		const char *eq = memchr(a, '=', (size_t)(b - a));
		s += len + (s[len] == ';');
		if (eq == NULL) {
			if (a == b && index > 0)
				continue; /* an empty tag (";;" or a trailing ";") */
			return -1;
		}
		const char *ne = eq, *v = eq + 1;
		while (ne > a && (ne[-1] == ' ' || ne[-1] == '\t'))
			ne--;
		while (v < b && (*v == ' ' || *v == '\t'))
			v++;
		if (index == 0) { /* v=DMARC1 first, exactly (§6.3) */
			if (ne - a != 1 || a[0] != 'v' || b - v != 6 ||
			    strncmp(v, "DMARC1", 6) != 0)
				return -1;
			continue;
		}
		dmarc_tag(rec, a, (size_t)(ne - a), v, (size_t)(b - v), &p_given);
	}
	if (index == 0)
		return -1;
	if (!p_given) { /* §6.6.3: a record without a valid p= counts only with a rua= */
		if (rec->rua[0] == '\0')
			return -1;
		rec->p = DMARC_POLICY_NONE;
	}
	return 0;
}

/* ---- the check ---- */

struct dmarc_check *dmarc_check_new(const struct psl *psl, const struct dmarc_input *in)
{
	struct dmarc_check *c = xcalloc(1, sizeof(*c));
	c->psl = psl;
	c->from = xstrdup(in->from_domain != NULL ? in->from_domain : "");
	c->spf = in->spf_pass_domain != NULL ? xstrdup(in->spf_pass_domain) : NULL;
	c->ndkim = in->dkim_pass_count;
	c->dkim = xcalloc(c->ndkim + 1, sizeof(*c->dkim));
	for (size_t i = 0; i < c->ndkim; i++)
		c->dkim[i] = xstrdup(in->dkim_pass_domains[i]);
	c->sample = in->sample;
	c->found = -1;
	const char *org = psl_org_domain(psl, c->from);
	snprintf(c->names[0], DMARC_NAME_MAX, "_dmarc.%s", c->from);
	if (org != NULL && strcasecmp(org, c->from) != 0)
		snprintf(c->names[1], DMARC_NAME_MAX, "_dmarc.%s", org);
	return c;
}

void dmarc_check_free(struct dmarc_check **cp)
{
	struct dmarc_check *c = *cp;
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->ndkim; i++)
		free(c->dkim[i]);
	free(c->dkim);
	free(c->from);
	free(c->spf);
	free(c->record[0]);
	free(c->record[1]);
	free(c);
	*cp = NULL;
}

void dmarc_check_answer(struct dmarc_check *c, const char *name, enum dmarc_dns_status status,
                        const char *const *texts, size_t n)
{
	for (int k = 0; k < 2; k++) {
		if (c->answered[k] || c->names[k][0] == '\0' || strcasecmp(c->names[k], name) != 0)
			continue;
		c->answered[k] = true;
		c->status[k] = status;
		size_t records = 0;
		struct dmarc_record rec;
		for (size_t i = 0; status == DMARC_DNS_OK && i < n; i++) {
			if (strncmp(texts[i], "v=DMARC1", 8) != 0 ||
			    dmarc_record_parse(texts[i], &rec) < 0)
				continue;
			if (records++ == 0)
				c->record[k] = xstrdup(texts[i]);
		}
		if (records > 1) { /* §6.6.3: more than one record: as if none */
			free(c->record[k]);
			c->record[k] = NULL;
		}
	}
}

bool dmarc_aligned(const struct psl *psl, const char *from_domain, const char *domain, bool strict)
{
	if (domain == NULL || domain[0] == '\0' || from_domain == NULL || from_domain[0] == '\0')
		return false;
	if (strcasecmp(domain, from_domain) == 0)
		return true;
	if (strict)
		return false;
	const char *a = psl_org_domain(psl, domain), *b = psl_org_domain(psl, from_domain);
	return a != NULL && b != NULL && strcasecmp(a, b) == 0;
}

/* The result and the policy once the record is known (§6.6.2, §6.6.4). */
static void dmarc_evaluate(struct dmarc_check *c)
{
	if (c->found < 0 || dmarc_record_parse(c->record[c->found], &c->rec) < 0) {
		c->found = -1;
		c->result = DMARC_RESULT_NONE;
		return;
	}
	bool pass = dmarc_aligned(c->psl, c->from, c->spf, c->rec.aspf_strict);
	for (size_t i = 0; i < c->ndkim && !pass; i++)
		pass = dmarc_aligned(c->psl, c->from, c->dkim[i], c->rec.adkim_strict);
	c->result = pass ? DMARC_RESULT_PASS : DMARC_RESULT_FAIL;
	if (pass)
		return;
	/* A subdomain's mail found the organizational domain's record: sp= if given. */
	enum dmarc_policy p = c->found == 1 && c->rec.sp_given ? c->rec.sp : c->rec.p;
	if (c->sample >= c->rec.pct && p != DMARC_POLICY_NONE)
		p = p == DMARC_POLICY_REJECT ? DMARC_POLICY_QUARANTINE : DMARC_POLICY_NONE;
	c->apply = p;
}

int dmarc_check_run(struct dmarc_check *c)
{
	c->apply = DMARC_POLICY_NONE;
	if (c->from[0] == '\0' || psl_org_domain(c->psl, c->from) == NULL) {
		c->result = DMARC_RESULT_PERMERROR; /* no usable From domain */
		return 1;
	}
	for (int k = 0; k < 2; k++) {
		if (c->names[k][0] == '\0')
			break;
		if (!c->answered[k]) {
			c->need = c->names[k];
			return 0;
		}
		if (c->status[k] == DMARC_DNS_TEMPFAIL) {
			c->result = DMARC_RESULT_TEMPERROR;
			return 1;
		}
		if (c->record[k] != NULL) {
			c->found = k;
			break;
		}
	}
	dmarc_evaluate(c);
	return 1;
}

const char *dmarc_check_need(const struct dmarc_check *c)
{
	return c->need;
}

enum dmarc_result dmarc_check_result(const struct dmarc_check *c, enum dmarc_policy *apply_r,
                                     const struct dmarc_record **rec_r,
                                     const char **policy_domain_r)
{
	*apply_r = c->apply;
	*rec_r = c->found >= 0 ? &c->rec : NULL;
	*policy_domain_r = c->found >= 0 ? c->names[c->found] + 7 : NULL;
	return c->result;
}

const char *dmarc_result_name(enum dmarc_result result)
{
	static const char *const names[] = {"none", "pass", "fail", "temperror", "permerror"};
	return (unsigned)result < sizeof(names) / sizeof(names[0]) ? names[result] : "permerror";
}

const char *dmarc_policy_name(enum dmarc_policy policy)
{
	static const char *const names[] = {"none", "quarantine", "reject"};
	return (unsigned)policy < sizeof(names) / sizeof(names[0]) ? names[policy] : "none";
}
