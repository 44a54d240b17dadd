/* TLS-RPT (RFC 8460) in the outbound engine (see outbound.h and outbound_private.h).
 * Collecting: every SMTP session of an attempt with an MX host of the recipient domain
 * adds one result (policy type and strings, MX, success or the §4.3 result-type, our and
 * the receiver's addresses); the results ride on the attempt's queue RESULT, so they are
 * committed with it (no write of their own). Sessions to a static route or the smarthost
 * have no policy domain and are not counted, nor are sessions that carry our own reports
 * (§5.3). Reporting: once a UTC day the engine claims the previous day in the store (one
 * node, one process, once), and when tlsrpt_send is on, looks up each policy domain's
 * _smtp._tls record and queues a report mail to its mailto: addresses and POSTs it to
 * its https: ones. `posthorn tlsrpt send` runs the same code. */
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
#include "smtp/smtp_reply.h"
#include "smtp/tlsrpt.h"
#include "smtp/tlsrpt_post.h"
#include "core/banned.h"

/* ---- collecting ---- */

static const char *tlsrpt_failure_name(enum conn_tls_failure f)
{
	switch (f) {
	case CONN_TLS_FAIL_EXPIRED:
		return "certificate-expired";
	case CONN_TLS_FAIL_HOST:
		return "certificate-host-mismatch";
	case CONN_TLS_FAIL_UNTRUSTED:
		return "certificate-not-trusted";
	default:
		/* DANE mismatches included: the TLSA records were valid, the certificate did
		 * not match them (tlsa-invalid is for records that are not). */
		return "validation-failure";
	}
}

/* The STS policy as its lines (RFC 8460 §4.4: policy-string) and its mx patterns. */
static void tlsrpt_sts_text(const struct mta_sts_policy *p, struct buf *lines, struct buf *mx)
{
	int r = buf_printf(lines, "version: STSv1\nmode: %s\n",
	                   p->mode == MTA_STS_MODE_ENFORCE ? "enforce" : "testing");
	for (size_t i = 0; i < p->mx_count; i++) {
		r |= buf_printf(lines, "mx: %s\n", p->mx[i]);
		r |= buf_printf(mx, "%s%s", i > 0 ? "\n" : "", p->mx[i]);
	}
	r |= buf_printf(lines, "max_age: %u", p->max_age);
	if (r != 0)
		log_warn("event=tlsrpt error=\"policy text truncated\"");
}

/* The TLSA records in presentation form, one a line. */
static void tlsrpt_tlsa_text(const struct ob_job *job, struct buf *lines)
{
	for (size_t i = 0; i < job->tlsa_count; i++) {
		const struct conn_tlsa *t = &job->tlsa[i];
		int r = buf_printf(lines, "%s%u %u %u ", i > 0 ? "\n" : "", (unsigned)t->usage,
		                   (unsigned)t->selector, (unsigned)t->mtype);
		for (size_t k = 0; k < t->len && r == 0; k++)
			r = buf_printf(lines, "%02X", t->data[k]);
	}
}

/* Is the message a TLS-RPT report (a TLS-Report-Domain field in its header)? */
static bool tlsrpt_is_report(const unsigned char *p, size_t len)
{
	static const char field[] = "TLS-Report-Domain:";
	size_t n = sizeof(field) - 1;
	for (size_t i = 0; i + n <= len;) {
		if (p[i] == '\r' || p[i] == '\n')
			return false; /* the end of the header */
		if (strncasecmp((const char *)p + i, field, n) == 0)
			return true;
		const unsigned char *nl = memchr(p + i, '\n', len - i);
		if (nl == NULL)
			return false;
		i = (size_t)(nl - p) + 1;
	}
	return false;
}

static bool tlsrpt_wanted(const struct ob_job *job)
{
	if (job->routed || job->tlsrpt_count >= OB_TLSRPT_MAX || job->map == NULL)
		return false;
	/* The sessions that carry reports are not counted in the next ones (RFC 8460 §5.3):
	 * no report about reports, whatever the settings were when it was queued. */
	return !tlsrpt_is_report(job->map + job->skip, job->map_len - job->skip);
}

/* Add a result of the current host: result_type NULL for success; dane says whether the
 * session was under the host's TLSA records. */
static void tlsrpt_add(struct ob_job *job, const char *policy_type, const char *result_type,
                       struct smtp_client *c)
{
	struct ob_tlsrpt *t = &job->tlsrpt[job->tlsrpt_count++];
	struct buf lines, mx;
	buf_init(&lines, 16384);
	buf_init(&mx, 8192);
	const char *host = job->host_i > 0 ? job->hosts[job->host_i - 1].host : "";
	if (strcmp(policy_type, "sts") == 0 && job->sts.mode != MTA_STS_MODE_NONE)
		tlsrpt_sts_text(&job->sts, &lines, &mx);
	else if (strcmp(policy_type, "tlsa") == 0)
		tlsrpt_tlsa_text(job, &lines);
	if (mx.len == 0 && buf_puts(&mx, host) < 0)
		log_warn("event=tlsrpt error=\"mx name too long\"");
	*t = (struct ob_tlsrpt){.policy_type = policy_type,
	                        .result_type = result_type,
	                        .policy_string = xstrdup(buf_cstr(&lines)),
	                        .mx_host = xstrdup(buf_cstr(&mx))};
	if (result_type != NULL) {
		snprintf(t->receiving_mx, sizeof(t->receiving_mx), "%s", host);
		if (c != NULL) {
			snprintf(t->sending_ip, sizeof(t->sending_ip), "%s",
			         smtp_client_local_ip(c));
			snprintf(t->receiving_ip, sizeof(t->receiving_ip), "%s", smtp_client_ip(c));
		} else if (job->addr_i > 0) {
			const char *ip = job->addrs[job->addr_i - 1].text;
			size_t n = strnlen(ip, sizeof(t->receiving_ip) - 1);
			memcpy(t->receiving_ip, ip, n);
			t->receiving_ip[n] = '\0';
		}
	}
	buf_free(&lines);
	buf_free(&mx);
}

static const char *tlsrpt_policy_type(const struct ob_job *job)
{
	if (job->tlsa_count > 0)
		return "tlsa";
	return job->sts.mode != MTA_STS_MODE_NONE ? "sts" : "no-policy-found";
}

void outbound_tlsrpt_session(struct ob_job *job, struct smtp_client *c,
                             const struct smtp_client_result *result)
{
	if (!tlsrpt_wanted(job))
		return;
	const char *type = tlsrpt_policy_type(job);
	bool tls = smtp_client_tls_description(c)[0] != '\0';
	if (result != NULL && result->tls_failed) {
		tlsrpt_add(job, type, tlsrpt_failure_name(result->tls_failure), c);
		return;
	}
	if (result != NULL && result->starttls_missing) {
		tlsrpt_add(job, type, "starttls-not-supported", c);
		return;
	}
	if (tls) {
		/* Under testing mode nothing was enforced: the check is reported all the same. */
		enum conn_tls_failure f = smtp_client_tls_failure(c);
		bool unverified = strcmp(type, "sts") == 0 && f != CONN_TLS_FAIL_NONE;
		tlsrpt_add(job, type, unverified ? tlsrpt_failure_name(f) : NULL, c);
		return;
	}
	/* Plain text: a server that offers no STARTTLS; not our own retry without TLS after
	 * a failed handshake (that session was counted), nor a session that failed before
	 * TLS could be tried (connect, greeting). */
	const struct smtp_ehlo *ehlo = smtp_client_ehlo(c);
	if (result == NULL && !job->no_tls && (ehlo == NULL || !ehlo->starttls))
		tlsrpt_add(job, type, "starttls-not-supported", c);
}

void outbound_tlsrpt_host_failed(struct ob_job *job, const char *result_type)
{
	if (tlsrpt_wanted(job))
		tlsrpt_add(job, "tlsa", result_type, NULL);
}

void outbound_tlsrpt_sts_failed(struct ob_job *job, const char *error)
{
	if (!tlsrpt_wanted(job))
		return;
	static const char *const invalid[] = {"bad mode", "bad max_age",        "bad mx",
	                                      "no mx",    "a line without ':'", "version"};
	const char *type = "sts-policy-fetch-error";
	if (strstr(error, "certificate") != NULL)
		type = "sts-webpki-invalid";
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		if (strstr(error, invalid[i]) != NULL)
			type = "sts-policy-invalid";
	tlsrpt_add(job, "sts", type, NULL);
	free(job->tlsrpt[job->tlsrpt_count - 1].mx_host);
	job->tlsrpt[job->tlsrpt_count - 1].mx_host = xstrdup("");
}

struct store_tlsrpt_result *outbound_tlsrpt_results(const struct ob_job *job)
{
	if (job->tlsrpt_count == 0)
		return NULL;
	struct store_tlsrpt_result *v = xcalloc(job->tlsrpt_count, sizeof(*v));
	for (size_t i = 0; i < job->tlsrpt_count; i++) {
		const struct ob_tlsrpt *t = &job->tlsrpt[i];
		v[i] = (struct store_tlsrpt_result){.policy_domain = job->entry->domain,
		                                    .policy_type = t->policy_type,
		                                    .policy_string = t->policy_string,
		                                    .mx_host = t->mx_host,
		                                    .result_type = t->result_type,
		                                    .sending_ip = t->sending_ip,
		                                    .receiving_mx = t->receiving_mx,
		                                    .receiving_ip = t->receiving_ip};
	}
	return v;
}

void outbound_tlsrpt_free(struct ob_job *job)
{
	for (size_t i = 0; i < job->tlsrpt_count; i++) {
		free(job->tlsrpt[i].policy_string);
		free(job->tlsrpt[i].mx_host);
	}
	job->tlsrpt_count = 0;
}

/* ---- reports ---- */

struct tlsrpt_rows {
	struct store_tlsrpt_row *v;
	size_t count, cap;
};

static char *tlsrpt_dup0(const char *s)
{
	return xstrdup(s == NULL ? "" : s);
}

static void tlsrpt_row_add(void *ctx, const struct store_tlsrpt_row *row)
{
	struct tlsrpt_rows *r = ctx;
	if (r->count == r->cap) {
		r->cap = r->cap == 0 ? 16 : r->cap * 2;
		r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
	}
	r->v[r->count++] =
	    (struct store_tlsrpt_row){.day = row->day,
	                              .policy_domain = tlsrpt_dup0(row->policy_domain),
	                              .policy_type = tlsrpt_dup0(row->policy_type),
	                              .policy_string = tlsrpt_dup0(row->policy_string),
	                              .mx_host = tlsrpt_dup0(row->mx_host),
	                              .result_type = tlsrpt_dup0(row->result_type),
	                              .sending_ip = tlsrpt_dup0(row->sending_ip),
	                              .receiving_mx = tlsrpt_dup0(row->receiving_mx),
	                              .receiving_ip = tlsrpt_dup0(row->receiving_ip),
	                              .sessions = row->sessions};
}

static void tlsrpt_rows_free(struct tlsrpt_rows *r)
{
	for (size_t i = 0; i < r->count; i++) {
		struct store_tlsrpt_row *x = &r->v[i];
		free((char *)x->policy_domain);
		free((char *)x->policy_type);
		free((char *)x->policy_string);
		free((char *)x->mx_host);
		free((char *)x->result_type);
		free((char *)x->sending_ip);
		free((char *)x->receiving_mx);
		free((char *)x->receiving_ip);
	}
	free(r->v);
	*r = (struct tlsrpt_rows){0};
}

int outbound_tlsrpt_domains(struct store *store, int64_t day, char ***domains_r, size_t *count_r)
{
	struct tlsrpt_rows rows = {0};
	*domains_r = NULL;
	*count_r = 0;
	if (store_tlsrpt_list(store, day, NULL, tlsrpt_row_add, &rows) < 0) {
		tlsrpt_rows_free(&rows);
		return -1;
	}
	for (size_t i = 0; i < rows.count; i++) {
		/* Rows come ordered by domain. */
		if (i > 0 && strcmp(rows.v[i].policy_domain, rows.v[i - 1].policy_domain) == 0)
			continue;
		*domains_r = xrealloc(*domains_r, (*count_r + 1) * sizeof(char *));
		(*domains_r)[(*count_r)++] = xstrdup(rows.v[i].policy_domain);
	}
	tlsrpt_rows_free(&rows);
	return 0;
}

int outbound_tlsrpt_report(struct store *store, const struct conf *conf, int64_t day,
                           const char *domain, struct buf *out)
{
	struct tlsrpt_rows rows = {0};
	if (store_tlsrpt_list(store, day, domain, tlsrpt_row_add, &rows) < 0) {
		tlsrpt_rows_free(&rows);
		return -1;
	}
	char contact[320], id[600];
	outbound_daily_from(conf, conf->tlsrpt_contact, contact, sizeof(contact));
	outbound_daily_report_id(conf, day, domain, id, sizeof(id));
	struct tlsrpt_report_meta meta = {.organization = conf->tlsrpt_organization[0] != '\0'
	                                                      ? conf->tlsrpt_organization
	                                                      : conf->hostname,
	                                  .contact = contact,
	                                  .report_id = id,
	                                  .day = day};
	int ret = rows.count == 0                                          ? 0
	          : tlsrpt_report_json(&meta, rows.v, rows.count, out) < 0 ? -1
	                                                                   : 1;
	tlsrpt_rows_free(&rows);
	return ret;
}

/* ---- sending: one domain after the other ---- */

#define TLSRPT_POST_TIMEOUT 60 /* seconds for an https: report */

struct outbound_tlsrpt_run {
	struct net_loop *loop;
	struct dns_resolver *dns;
	struct tls_ctx *tls;      /* for https: addresses; NULL: they are skipped */
	struct tlsrpt_record rec; /* the current domain's record */
	size_t rua_i;             /* its next address */
	struct buf gz;            /* its report, compressed */
	struct tlsrpt_post *post;
	struct store *store;
	struct conf *conf;
	struct outbound *ob; /* the engine's run (its in_flight), or NULL (the CLI) */
	int64_t day, now;
	char **domains;
	size_t count, i, sent;
	struct dns_lookup *lookup;
	struct net_event *next;
	outbound_tlsrpt_done_fn *done;
	void *ctx;
};

/* Mail the report (run->gz) of the current domain to one mailto: address. */
static void tlsrpt_mail_to(struct outbound_tlsrpt_run *run, const char *domain, const char *to)
{
	char id[600], from[320];
	outbound_daily_report_id(run->conf, run->day, domain, id, sizeof(id));
	outbound_daily_from(run->conf, run->conf->tlsrpt_contact, from, sizeof(from));
	struct tlsrpt_mail m = {.from = from,
	                        .to = to,
	                        .domain = domain,
	                        .submitter = run->conf->tlsrpt_organization[0] != '\0'
	                                         ? run->conf->tlsrpt_organization
	                                         : run->conf->hostname,
	                        .report_id = id,
	                        .hostname = run->conf->hostname,
	                        .day = run->day,
	                        .now = run->now,
	                        .gz = (const unsigned char *)run->gz.data,
	                        .gz_len = run->gz.len};
	struct buf mail;
	buf_init(&mail, 2 * TLSRPT_REPORT_MAX);
	char subject[300];
	snprintf(subject, sizeof(subject), "Report Domain: %s", domain);
	if (tlsrpt_mail_build(&m, &mail) == 0 &&
	    outbound_own_mail(run->store, run->ob, "tlsrpt", from, to, subject, &mail, run->now) ==
	        0) {
		run->sent++;
		log_info("event=tlsrpt domain=%s to=<%s> report-id=%s result=queued", domain, to,
		         id);
	}
	buf_free(&mail);
}

static void tlsrpt_rua_next(struct outbound_tlsrpt_run *run);

static void tlsrpt_posted(void *ctx, int result, const char *error)
{
	struct outbound_tlsrpt_run *run = ctx;
	const char *uri = run->rec.rua[run->rua_i - 1];
	run->post = NULL;
	if (result == 0) {
		run->sent++;
		log_info("event=tlsrpt domain=%s rua=\"%s\" result=posted", run->domains[run->i],
		         uri);
	} else {
		log_warn("event=tlsrpt domain=%s rua=\"%s\" result=failed error=\"%s\"",
		         run->domains[run->i], uri, error);
	}
	tlsrpt_rua_next(run);
}

/* The current domain's addresses one after the other (a POST is waited for); then the
 * next domain, from the loop. */
static void tlsrpt_rua_next(struct outbound_tlsrpt_run *run)
{
	const char *domain = run->domains[run->i];
	while (run->rua_i < run->rec.rua_count) {
		const char *uri = run->rec.rua[run->rua_i++];
		char to[TLSRPT_URI_MAX];
		if (tlsrpt_mailto_address(uri, to, sizeof(to)) == 0) {
			tlsrpt_mail_to(run, domain, to);
			continue;
		}
		if (run->tls == NULL) {
			log_warn(
			    "event=tlsrpt domain=%s rua=\"%s\" result=skipped reason=\"no TLS\"",
			    domain, uri);
			continue;
		}
		run->post = tlsrpt_post_start(run->loop, run->dns, run->tls, uri, run->gz.data,
		                              run->gz.len, TLSRPT_POST_TIMEOUT, tlsrpt_posted, run);
		return;
	}
	buf_reset(&run->gz);
	run->i++;
	net_event_schedule(run->next, 0);
}

/* Build the domain's report and send it to every address of rec. */
static void tlsrpt_send_domain(struct outbound_tlsrpt_run *run, const char *domain,
                               const struct tlsrpt_record *rec)
{
	struct buf json;
	buf_init(&json, TLSRPT_REPORT_MAX);
	buf_reset(&run->gz);
	int r = outbound_tlsrpt_report(run->store, run->conf, run->day, domain, &json);
	if (r != 1 || tlsrpt_gzip(json.data, json.len, &run->gz) < 0) {
		log_error("event=tlsrpt-failed domain=%s error=\"cannot build the report\"",
		          domain);
		run->rec.rua_count = 0;
	} else {
		run->rec = *rec;
	}
	buf_free(&json);
	run->rua_i = 0;
	tlsrpt_rua_next(run);
}

static void tlsrpt_next(struct outbound_tlsrpt_run *run);

static void tlsrpt_txt_done(const struct dns_result *res, void *ctx)
{
	struct outbound_tlsrpt_run *run = ctx;
	run->lookup = NULL;
	const char *domain = run->domains[run->i];
	static const struct tlsrpt_record none;
	struct tlsrpt_record rec = none, one;
	size_t found = 0;
	for (size_t i = 0; res->status == DNS_STATUS_OK && i < res->count; i++) {
		const struct dns_txt *t = &res->records[i].u.txt;
		/* §3: records not starting with the version are discarded; more than one TLSRPT
		 * record means none. A record that starts so but is broken counts as one. */
		if (t->len >= 10 && memcmp(t->text, "v=TLSRPTv1", 10) == 0) {
			found++;
			if (tlsrpt_parse_txt(t->text, t->len, &one) == 1)
				rec = one;
			else
				rec = none;
		}
	}
	if (found == 1 && rec.rua_count > 0) {
		tlsrpt_send_domain(run, domain, &rec);
		return;
	}
	log_info("event=tlsrpt domain=%s result=no-record records=%zu dns=%s", domain, found,
	         dns_status_name(res->status));
	run->i++;
	net_event_schedule(run->next, 0);
}

static void tlsrpt_finish(struct outbound_tlsrpt_run *run)
{
	outbound_tlsrpt_done_fn *done = run->done;
	void *ctx = run->ctx;
	size_t sent = run->sent;
	outbound_tlsrpt_run_cancel(&run);
	done(ctx, sent);
}

static void tlsrpt_next(struct outbound_tlsrpt_run *run)
{
	size_t max = run->conf->tlsrpt_max_domains;
	while (run->i < run->count && run->i < max) {
		const char *domain = run->domains[run->i];
		char name[300];
		const char *error;
		snprintf(name, sizeof(name), "_smtp._tls.%.250s", domain);
		run->lookup =
		    dns_lookup(run->dns, name, DNS_TYPE_TXT, tlsrpt_txt_done, run, &error);
		if (run->lookup != NULL)
			return;
		log_info("event=tlsrpt domain=%s result=skipped error=\"%s\"", domain, error);
		run->i++;
	}
	if (run->count > max)
		log_warn("event=tlsrpt result=capped domains=%zu tlsrpt_max_domains=%zu",
		         run->count, max);
	tlsrpt_finish(run);
}

static void tlsrpt_next_event(void *ctx)
{
	tlsrpt_next(ctx);
}

struct outbound_tlsrpt_run *outbound_tlsrpt_run_start(struct net_loop *loop,
                                                      struct dns_resolver *dns, struct tls_ctx *tls,
                                                      struct store *store, struct conf *conf,
                                                      int64_t day, struct outbound *ob,
                                                      outbound_tlsrpt_done_fn *done, void *ctx)
{
	struct outbound_tlsrpt_run *run = xcalloc(1, sizeof(*run));
	run->loop = loop;
	run->dns = dns;
	run->tls = tls;
	buf_init(&run->gz, TLSRPT_REPORT_MAX);
	run->store = store;
	run->conf = conf;
	run->ob = ob;
	run->day = day;
	run->now = (int64_t)time(NULL);
	run->done = done;
	run->ctx = ctx;
	run->next = net_event_new(loop, tlsrpt_next_event, run);
	if (outbound_tlsrpt_domains(store, day, &run->domains, &run->count) < 0)
		log_error("event=tlsrpt-failed error=\"cannot read the results\"");
	/* Never a report about one of our own domains (no session goes there anyway). */
	size_t k = 0;
	for (size_t i = 0; i < run->count; i++) {
		if (store_domain_is_local(store, run->domains[i]) == 1)
			free(run->domains[i]);
		else
			run->domains[k++] = run->domains[i];
	}
	run->count = k;
	net_event_schedule(run->next, 0); /* never call back from inside the start */
	return run;
}

void outbound_tlsrpt_run_cancel(struct outbound_tlsrpt_run **runp)
{
	struct outbound_tlsrpt_run *run = *runp;
	if (run == NULL)
		return;
	dns_lookup_cancel(&run->lookup);
	tlsrpt_post_cancel(&run->post);
	buf_free(&run->gz);
	net_event_free(&run->next);
	for (size_t i = 0; i < run->count; i++)
		free(run->domains[i]);
	free(run->domains);
	conf_free(&run->conf);
	free(run);
	*runp = NULL;
}

/* ---- the daily run of the engine ---- */

static void tlsrpt_daily_done(void *ctx, size_t sent)
{
	struct outbound *ob = ctx;
	ob->tlsrpt_run = NULL;
	log_info("event=tlsrpt-day result=done reports=%zu", sent);
}

static bool tlsrpt_daily_send(const struct conf *conf)
{
	return conf->tlsrpt_send;
}

static const struct ob_daily_kind tlsrpt_daily = {
    .event = "tlsrpt-day", .setting = "tlsrpt_send", .send = tlsrpt_daily_send};

void outbound_tlsrpt_claimed(struct outbound *ob, struct ob_op *o)
{
	struct conf *conf =
	    outbound_daily_claimed(ob, &ob->tlsrpt_daily, &tlsrpt_daily, o, ob->tlsrpt_run != NULL);
	if (conf != NULL)
		ob->tlsrpt_run =
		    outbound_tlsrpt_run_start(ob->loop, ob->dns, ob->tls, ob->store, conf,
		                              (int64_t)o->op.id, ob, tlsrpt_daily_done, ob);
}

void outbound_tlsrpt_tick(struct outbound *ob)
{
	struct ob_op *o = outbound_daily_tick(&ob->tlsrpt_daily, STORE_QUEUE_TLSRPT_DAY);
	if (o == NULL)
		return;
	struct conf *conf = conf_slot_get(ob->slot);
	o->op.tlsrpt_keep_days = conf->tlsrpt_keep_days;
	conf_free(&conf);
	outbound_queue_op(ob, o);
}
