/* DMARC aggregate reports (RFC 7489 §7.2), sending. Once a UTC day the outbound engine
 * claims the previous day in the store (one node, one process, once, as for TLS-RPT) and,
 * when dmarc_report_send is on, mails each policy domain's report to the mailto: addresses
 * of its rua= (at most dmarc_report_max_domains domains a day). An address whose domain is
 * not in the policy domain's organizational domain needs the external destination record
 * POLICY._report._dmarc.RUA-DOMAIN (§7.1) or is skipped; a size limit ("!10m") that the
 * mail exceeds skips the address. `posthorn dmarc send` runs the same code. The report
 * mails go to the queue like any mail (DKIM-signed on delivery when the domain has a key). */
#include "smtp/outbound_private.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "net/net_event.h"
#include "smtp/dmarc_report.h"
#include "smtp/psl.h"
#include "smtp/tlsrpt.h"
#include "core/banned.h"

/* ---- the rows of a day ---- */

struct dmarc_rows {
	struct store_dmarc_row *v;
	size_t count, cap;
};

static void dmarc_row_add(void *ctx, const struct store_dmarc_row *row)
{
	struct dmarc_rows *r = ctx;
	if (r->count == r->cap) {
		r->cap = r->cap == 0 ? 16 : r->cap * 2;
		r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
	}
	const struct store_dmarc_record *x = &row->r;
	r->v[r->count++] =
	    (struct store_dmarc_row){.day = row->day,
	                             .r = {.policy_domain = xstrdup(x->policy_domain),
	                                   .policy = xstrdup(x->policy),
	                                   .rua = xstrdup(x->rua),
	                                   .source_ip = xstrdup(x->source_ip),
	                                   .header_from = xstrdup(x->header_from),
	                                   .envelope_from = xstrdup(x->envelope_from),
	                                   .disposition = xstrdup(x->disposition),
	                                   .reason = xstrdup(x->reason),
	                                   .dkim_aligned = xstrdup(x->dkim_aligned),
	                                   .spf_aligned = xstrdup(x->spf_aligned),
	                                   .dkim = xstrdup(x->dkim),
	                                   .spf = xstrdup(x->spf)},
	                             .count = row->count};
}

static void dmarc_rows_free(struct dmarc_rows *r)
{
	for (size_t i = 0; i < r->count; i++) {
		struct store_dmarc_record *x = &r->v[i].r;
		const char *s[] = {x->policy_domain, x->policy,        x->rua,         x->source_ip,
		                   x->header_from,   x->envelope_from, x->disposition, x->reason,
		                   x->dkim_aligned,  x->spf_aligned,   x->dkim,        x->spf};
		for (size_t k = 0; k < sizeof(s) / sizeof(s[0]); k++)
			free((char *)s[k]);
	}
	free(r->v);
	*r = (struct dmarc_rows){0};
}

/* The report of rows[0..count) (one domain) into out: 0, -1. */
static int dmarc_report_of(const struct conf *conf, int64_t day, const struct store_dmarc_row *rows,
                           size_t count, struct buf *out)
{
	char contact[320], id[600];
	outbound_daily_from(conf, conf->dmarc_report_contact, contact, sizeof(contact));
	outbound_daily_report_id(conf, day, rows[0].r.policy_domain, id, sizeof(id));
	struct dmarc_report_meta meta = {.org_name = conf->dmarc_report_organization[0] != '\0'
	                                                 ? conf->dmarc_report_organization
	                                                 : conf->hostname,
	                                 .email = contact,
	                                 .report_id = id,
	                                 .begin = day * 86400,
	                                 .end = day * 86400 + 86399};
	return dmarc_report_xml(&meta, rows, count, out);
}

int outbound_dmarc_report(struct store *store, const struct conf *conf, int64_t day,
                          const char *domain, struct buf *out)
{
	struct dmarc_rows rows = {0};
	if (store_dmarc_list(store, day, domain, dmarc_row_add, &rows) < 0) {
		dmarc_rows_free(&rows);
		return -1;
	}
	int ret = rows.count == 0                                           ? 0
	          : dmarc_report_of(conf, day, rows.v, rows.count, out) < 0 ? -1
	                                                                    : 1;
	dmarc_rows_free(&rows);
	return ret;
}

/* ---- sending: one domain after the other ---- */

struct outbound_dmarc_run {
	struct net_loop *loop;
	struct dns_resolver *dns;
	struct store *store;
	struct conf *conf;
	struct psl *psl;
	struct outbound *ob; /* the engine's run (its in_flight), or NULL (the CLI) */
	int64_t day, now;
	struct dmarc_rows rows;
	size_t row_i;   /* the first row of the current domain */
	size_t row_end; /* after its last */
	size_t domains; /* domains with addresses started */
	struct dmarc_report_rua rua[DMARC_REPORT_RUA_MAX];
	size_t rua_count, rua_i;
	struct buf gz; /* the current domain's report, compressed */
	bool built;
	size_t sent;
	struct dns_lookup *lookup;
	struct net_event *next;
	outbound_dmarc_done_fn *done;
	void *ctx;
};

static const char *dmarc_current(const struct outbound_dmarc_run *run)
{
	return run->rows.v[run->row_i].r.policy_domain;
}

/* Build (once) and mail the current domain's report to one address. */
static void dmarc_mail_to(struct outbound_dmarc_run *run, const struct dmarc_report_rua *rua)
{
	const char *domain = dmarc_current(run);
	if (!run->built) {
		struct buf xml;
		buf_init(&xml, DMARC_REPORT_XML_MAX);
		buf_reset(&run->gz);
		if (dmarc_report_of(run->conf, run->day, run->rows.v + run->row_i,
		                    run->row_end - run->row_i, &xml) < 0 ||
		    dmarc_report_gzip(xml.data, xml.len, &run->gz) < 0) {
			log_error("event=dmarc-report-failed domain=%s error=\"cannot build the "
			          "report\"",
			          domain);
			buf_reset(&run->gz);
		}
		buf_free(&xml);
		run->built = true;
	}
	if (run->gz.len == 0)
		return;
	char id[600], from[320], subject[1024];
	outbound_daily_report_id(run->conf, run->day, domain, id, sizeof(id));
	outbound_daily_from(run->conf, run->conf->dmarc_report_contact, from, sizeof(from));
	struct dmarc_report_mail m = {.from = from,
	                              .to = rua->address,
	                              .domain = domain,
	                              .submitter = run->conf->hostname,
	                              .report_id = id,
	                              .begin = run->day * 86400,
	                              .end = run->day * 86400 + 86399,
	                              .now = run->now,
	                              .gz = (const unsigned char *)run->gz.data,
	                              .gz_len = run->gz.len};
	struct buf mail;
	buf_init(&mail, 2 * DMARC_REPORT_XML_MAX);
	snprintf(subject, sizeof(subject), "Report Domain: %s Submitter: %s Report-ID: <%s>",
	         domain, run->conf->hostname, id);
	if (dmarc_report_mail_build(&m, &mail) < 0) {
		log_error("event=dmarc-report-failed domain=%s error=\"report too large\"", domain);
	} else if (rua->max_size > 0 && mail.len > rua->max_size) {
		/* §7.2.1.1: the limit is on the report's size; ours is the whole mail. */
		log_info("event=dmarc-report domain=%s to=<%s> result=skipped reason=\"size %zu "
		         "over the limit %llu\"",
		         domain, rua->address, mail.len, (unsigned long long)rua->max_size);
	} else if (outbound_own_mail(run->store, run->ob, "dmarc-report", from, rua->address,
	                             subject, &mail, run->now) == 0) {
		run->sent++;
		log_info("event=dmarc-report domain=%s to=<%s> report-id=%s result=queued", domain,
		         rua->address, id);
	}
	buf_free(&mail);
}

static void dmarc_rua_next(struct outbound_dmarc_run *run);

static void dmarc_txt_done(const struct dns_result *res, void *ctx)
{
	struct outbound_dmarc_run *run = ctx;
	run->lookup = NULL;
	const struct dmarc_report_rua *rua = &run->rua[run->rua_i - 1];
	bool ok = false;
	for (size_t i = 0; res->status == DNS_STATUS_OK && i < res->count && !ok; i++) {
		const struct dns_txt *t = &res->records[i].u.txt;
		ok = dmarc_report_txt_authorizes(t->text, t->len);
	}
	if (ok)
		dmarc_mail_to(run, rua);
	else
		log_info("event=dmarc-report domain=%s to=<%s> result=skipped reason=\"no external "
		         "destination record\" dns=%s",
		         dmarc_current(run), rua->address, dns_status_name(res->status));
	dmarc_rua_next(run);
}

/* The current domain's addresses one after the other (a lookup is waited for); then the
 * next domain, from the loop. */
static void dmarc_rua_next(struct outbound_dmarc_run *run)
{
	const char *domain = dmarc_current(run);
	const char *org = psl_org_domain(run->psl, domain);
	while (run->rua_i < run->rua_count) {
		const struct dmarc_report_rua *rua = &run->rua[run->rua_i++];
		const char *rdomain = strrchr(rua->address, '@') + 1;
		const char *rorg = psl_org_domain(run->psl, rdomain);
		/* §7.1: the same organizational domain needs no authorization. */
		if (strcasecmp(rdomain, domain) == 0 ||
		    (org != NULL && rorg != NULL && strcasecmp(org, rorg) == 0)) {
			dmarc_mail_to(run, rua);
			continue;
		}
		char name[600];
		const char *error;
		snprintf(name, sizeof(name), "%s._report._dmarc.%s", domain, rdomain);
		run->lookup = dns_lookup(run->dns, name, DNS_TYPE_TXT, dmarc_txt_done, run, &error);
		if (run->lookup != NULL)
			return;
		log_info("event=dmarc-report domain=%s to=<%s> result=skipped error=\"%s\"", domain,
		         rua->address, error);
	}
	run->row_i = run->row_end;
	net_event_schedule(run->next, 0);
}

static void dmarc_finish(struct outbound_dmarc_run *run)
{
	outbound_dmarc_done_fn *done = run->done;
	void *ctx = run->ctx;
	size_t sent = run->sent;
	outbound_dmarc_run_cancel(&run);
	done(ctx, sent);
}

static void dmarc_next(void *ctx)
{
	struct outbound_dmarc_run *run = ctx;
	size_t max = run->conf->dmarc_report_max_domains;
	while (run->row_i < run->rows.count) {
		const char *domain = dmarc_current(run);
		run->row_end = run->row_i + 1;
		while (run->row_end < run->rows.count &&
		       strcmp(run->rows.v[run->row_end].r.policy_domain, domain) == 0)
			run->row_end++;
		run->rua_count = dmarc_report_rua_parse(run->rows.v[run->row_i].r.rua, run->rua,
		                                        DMARC_REPORT_RUA_MAX);
		if (run->rua_count == 0) {
			run->row_i = run->row_end;
			continue;
		}
		if (run->domains == max) {
			log_warn("event=dmarc-report result=capped domain=%s "
			         "dmarc_report_max_domains=%zu",
			         domain, max);
			run->row_i = run->row_end;
			continue;
		}
		run->domains++;
		run->rua_i = 0;
		run->built = false;
		dmarc_rua_next(run);
		return;
	}
	dmarc_finish(run);
}

struct outbound_dmarc_run *outbound_dmarc_run_start(struct net_loop *loop, struct dns_resolver *dns,
                                                    struct store *store, struct conf *conf,
                                                    int64_t day, struct outbound *ob,
                                                    outbound_dmarc_done_fn *done, void *ctx)
{
	struct outbound_dmarc_run *run = xcalloc(1, sizeof(*run));
	run->loop = loop;
	run->dns = dns;
	buf_init(&run->gz, DMARC_REPORT_XML_MAX);
	run->store = store;
	run->conf = conf;
	run->ob = ob;
	run->day = day;
	run->now = (int64_t)time(NULL);
	run->done = done;
	run->ctx = ctx;
	const char *error;
	run->psl = psl_load(conf->public_suffix_list, &error);
	if (run->psl == NULL) {
		log_warn("event=dmarc-report public_suffix_list=%s error=\"%s\"",
		         conf->public_suffix_list, error);
		run->psl = psl_parse("*");
	}
	run->next = net_event_new(loop, dmarc_next, run);
	if (store_dmarc_list(store, day, NULL, dmarc_row_add, &run->rows) < 0) {
		log_error("event=dmarc-report-failed error=\"cannot read the results\"");
		dmarc_rows_free(&run->rows);
	}
	net_event_schedule(run->next, 0); /* never call back from inside the start */
	return run;
}

void outbound_dmarc_run_cancel(struct outbound_dmarc_run **runp)
{
	struct outbound_dmarc_run *run = *runp;
	if (run == NULL)
		return;
	dns_lookup_cancel(&run->lookup);
	buf_free(&run->gz);
	net_event_free(&run->next);
	dmarc_rows_free(&run->rows);
	psl_free(&run->psl);
	conf_free(&run->conf);
	free(run);
	*runp = NULL;
}

/* ---- the daily run of the engine ---- */

static void dmarc_daily_done(void *ctx, size_t sent)
{
	struct outbound *ob = ctx;
	ob->dmarc_run = NULL;
	log_info("event=dmarc-report-day result=done reports=%zu", sent);
}

static bool dmarc_daily_send(const struct conf *conf)
{
	return conf->dmarc_report_send;
}

static const struct ob_daily_kind dmarc_daily = {
    .event = "dmarc-report-day", .setting = "dmarc_report_send", .send = dmarc_daily_send};

void outbound_dmarc_claimed(struct outbound *ob, struct ob_op *o)
{
	struct conf *conf =
	    outbound_daily_claimed(ob, &ob->dmarc_daily, &dmarc_daily, o, ob->dmarc_run != NULL);
	if (conf != NULL)
		ob->dmarc_run =
		    outbound_dmarc_run_start(ob->loop, ob->dns, ob->store, conf, (int64_t)o->op.id,
		                             ob, dmarc_daily_done, ob);
}

void outbound_dmarc_tick(struct outbound *ob)
{
	struct ob_op *o = outbound_daily_tick(&ob->dmarc_daily, STORE_QUEUE_DMARC_DAY);
	if (o == NULL)
		return;
	struct conf *conf = conf_slot_get(ob->slot);
	o->op.dmarc_keep_days = conf->dmarc_report_keep_days;
	conf_free(&conf);
	outbound_queue_op(ob, o);
}
