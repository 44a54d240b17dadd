/* DMARC aggregate reports, collecting: one store operation per message (see
 * dmarc_collect.h). The values are copied; the writer thread frees them after the commit. */
#include "smtp/dmarc_collect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mime/dkim_verify.h"
#include "smtp/dmarc.h"
#include "smtp/dmarc_report.h"
#include "smtp/psl.h"
#include "smtp/smtp_session.h"
#include "core/banned.h"

#define COLLECT_FIELD_MAX 255 /* longer values (a domain cannot be) are cut */

struct collect_op {
	struct store_queue_op op;
	struct store_dmarc_record rec;
	char *policy_domain, *policy, *rua, *source_ip, *header_from, *envelope_from, *dkim, *spf;
};

static void collect_done(struct store_queue_op *op, void *ctx)
{
	struct collect_op *c = ctx;
	if (op->result < 0)
		log_warn("event=dmarc-record domain=%s result=failed error=\"%s\"",
		         c->policy_domain, op->error);
	free(c->policy_domain);
	free(c->policy);
	free(c->rua);
	free(c->source_ip);
	free(c->header_from);
	free(c->envelope_from);
	free(c->dkim);
	free(c->spf);
	free(c);
}

/* A value for the store: lower case when fold, no tab, newline or control character. */
static char *collect_dup(const char *s, bool fold)
{
	size_t n = strnlen(s, COLLECT_FIELD_MAX);
	char *d = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if ((unsigned char)c < 0x20 || c == 0x7f)
			c = '?';
		else if (fold && c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		d[i] = c;
	}
	d[n] = '\0';
	return d;
}

/* sep (a separator, as is) and the value s (cleaned by collect_dup()) at the end of b. */
static void collect_put(struct buf *b, const char *sep, const char *s, bool fold)
{
	char *d = collect_dup(s != NULL ? s : "", fold);
	if (buf_puts(b, sep) < 0 || buf_puts(b, d) < 0)
		log_warn("event=dmarc-record error=\"value truncated\"");
	free(d);
}

/* Each signature "DOMAIN\tSELECTOR\tRESULT", and whether one that passed is aligned. */
static char *collect_dkim(const struct psl *psl, const struct dkim_verify *dkim,
                          const char *from_domain, bool strict, bool *aligned_r)
{
	struct buf b;
	buf_init(&b, 4096);
	*aligned_r = false;
	size_t n = dkim != NULL ? dkim_verify_count(dkim) : 0;
	for (size_t i = 0; i < n; i++) {
		const struct dkim_signature_result *r = dkim_verify_result(dkim, i);
		collect_put(&b, i > 0 ? "\n" : "", r->domain, true);
		collect_put(&b, "\t", r->selector, false);
		collect_put(&b, "\t", dkim_result_name(r->result), false);
		if (r->result == DKIM_RESULT_PASS &&
		    dmarc_aligned(psl, from_domain, r->domain, strict))
			*aligned_r = true;
	}
	char *d = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return d;
}

/* The domain of an address, lower case ("" for the null sender). */
static char *collect_domain(const char *address)
{
	const char *at = address != NULL ? strrchr(address, '@') : NULL;
	return collect_dup(at != NULL ? at + 1 : "", true);
}

/* §7.2.1: the disposition applied and, when it differs from the policy, why. */
static void collect_disposition(const struct dmarc_record *rec, bool org_record,
                                enum dmarc_result result, enum dmarc_policy apply,
                                const char *action, struct store_dmarc_record *out)
{
	out->disposition = strcmp(action, "reject") == 0       ? "reject"
	                   : strcmp(action, "quarantine") == 0 ? "quarantine"
	                                                       : "none";
	out->reason = "";
	if (result != DMARC_RESULT_FAIL)
		return;
	enum dmarc_policy p = org_record && rec->sp_given ? rec->sp : rec->p;
	if (apply != p)
		out->reason = "sampled_out";
	else if (strcmp(out->disposition, dmarc_policy_name(apply)) != 0)
		out->reason = "local_policy";
}

void dmarc_collect_message(struct smtp_session *s, const struct dmarc_check *dmarc,
                           const struct dkim_verify *dkim, const struct spf_check *spf,
                           enum spf_result spf_result, bool spf_helo, const char *from_domain,
                           const char *action)
{
	enum dmarc_policy apply;
	const struct dmarc_record *rec = NULL;
	const char *policy_domain = NULL;
	if (dmarc == NULL)
		return;
	enum dmarc_result result = dmarc_check_result(dmarc, &apply, &rec, &policy_domain);
	if (rec == NULL || policy_domain == NULL || from_domain == NULL ||
	    (result != DMARC_RESULT_PASS && result != DMARC_RESULT_FAIL))
		return;
	const struct psl *psl = s->server->psl;
	struct collect_op *c = xcalloc(1, sizeof(*c));
	bool org_record = strcasecmp(policy_domain, from_domain) != 0;
	char policy[128];
	snprintf(policy, sizeof(policy), "%s %s %u %c %c", dmarc_policy_name(rec->p),
	         dmarc_policy_name(rec->sp_given ? rec->sp : rec->p), rec->pct,
	         rec->adkim_strict ? 's' : 'r', rec->aspf_strict ? 's' : 'r');
	c->policy_domain = collect_dup(policy_domain, true);
	c->policy = xstrdup(policy);
	c->rua = collect_dup(rec->rua, false);
	c->source_ip = collect_dup(conn_remote_ip(s->conn), false);
	c->header_from = collect_dup(from_domain, true);
	c->envelope_from = collect_domain(s->mail_from);
	bool dkim_aligned;
	c->dkim = collect_dkim(psl, dkim, from_domain, rec->adkim_strict, &dkim_aligned);
	const char *spf_domain = spf != NULL ? spf_check_domain(spf) : NULL;
	struct buf b;
	buf_init(&b, 1024);
	collect_put(&b, "", spf_domain, true);
	collect_put(&b, "\t", spf_helo ? "helo" : "mfrom", false);
	collect_put(&b, "\t", spf_result_name(spf_result), false);
	c->spf = xstrdup(buf_cstr(&b));
	buf_free(&b);
	bool spf_aligned =
	    spf_result == SPF_PASS && dmarc_aligned(psl, from_domain, spf_domain, rec->aspf_strict);
	c->rec = (struct store_dmarc_record){
	    .policy_domain = c->policy_domain,
	    .policy = c->policy,
	    .rua = c->rua,
	    .source_ip = c->source_ip,
	    .header_from = c->header_from,
	    .envelope_from = c->envelope_from,
	    .dkim_aligned = dkim_aligned ? "pass" : "fail",
	    .spf_aligned = spf_aligned ? "pass" : "fail",
	    .dkim = c->dkim,
	    .spf = c->spf,
	};
	collect_disposition(rec, org_record, result, apply, action, &c->rec);
	c->op.action = STORE_QUEUE_DMARC_ADD;
	c->op.dmarc = &c->rec;
	store_queue(s->server->store, &c->op, collect_done, c);
}
