/* One delivery attempt of one queue entry (see outbound_private.h): map and sign the
 * message, look up the domain's MX hosts (A/AAAA when it has none), and try the hosts'
 * addresses in order until a session took the message or every host failed. Recipients a
 * session answered are settled for this attempt (delivered, bounced, or deferred by a 4xx);
 * recipients no host answered are deferred with the last host's failure. */
#include "smtp/outbound_private.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fault.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mime/dkim_keys.h"
#include "smtp/smtp_reply.h"
#include "core/banned.h"

static void attempt_next_host(struct ob_job *job);
static void attempt_next_address(struct ob_job *job);
static void attempt_host_ready(struct ob_job *job);
static void attempt_tlsa_clear(struct ob_job *job);
static void attempt_sts_host(struct ob_job *job, uint16_t preference, const char *host);

/* A verdict of ours (no remote host said it). */
static void attempt_local_reply(struct smtp_client_reply *r, enum smtp_client_status status,
                                int code, const char *enhanced, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void attempt_local_reply(struct smtp_client_reply *r, enum smtp_client_status status,
                                int code, const char *enhanced, const char *fmt, ...)
{
	*r = (struct smtp_client_reply){.status = status, .remote = false, .code = code};
	snprintf(r->enhanced, sizeof(r->enhanced), "%s", enhanced);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

/* Every recipient not yet answered gets reply. */
static void attempt_settle_open(struct ob_job *job, const struct smtp_client_reply *reply,
                                const char *relay)
{
	for (size_t i = 0; i < job->rcpt_count; i++) {
		struct ob_rcpt *r = &job->rcpts[i];
		if (r->status != SMTP_CLIENT_PENDING)
			continue;
		r->status = reply->status;
		r->reply = *reply;
		snprintf(r->relay, sizeof(r->relay), "%s", relay);
	}
}

static void attempt_finish(struct ob_job *job)
{
	struct smtp_client_reply fallback;
	const struct smtp_client_reply *reply = &job->host_reply;
	if (reply->status == SMTP_CLIENT_PENDING) {
		attempt_local_reply(&fallback, SMTP_CLIENT_TEMPFAIL, 451, "4.4.1",
		                    "no host of %s could be reached", job->entry->domain);
		reply = &fallback;
	}
	attempt_settle_open(job, reply, job->host_relay);
	/* Test builds: a remote server took (some of) the message, the queue does not know
	 * yet; a crash here sends it again later (a documented duplicate). */
	for (size_t i = 0; i < job->rcpt_count; i++) {
		if (job->rcpts[i].status == SMTP_CLIENT_DELIVERED) {
			(void)FAULT_POINT("queue.after_remote_250");
			break;
		}
	}
	outbound_report(job);
}

/* ---- the message ---- */

static bool attempt_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* Map the stored file; note the Return-Path line to leave out, 8-bit content, and whether
 * the envelope needs SMTPUTF8; sign it. -1 when the file cannot be read. */
static int attempt_map(struct ob_job *job)
{
	if (outbound_map_message(job->entry, &job->map, &job->map_len, &job->skip) < 0)
		return -1;
	job->eightbit = job->entry->eightbit;
	for (size_t i = job->skip; i < job->map_len && !job->eightbit; i++)
		job->eightbit = job->map[i] >= 0x80;
	/* SMTPUTF8 when the submitter asked for it, or an envelope address needs it. */
	job->smtputf8 = job->entry->smtputf8 || !attempt_ascii(job->entry->mail_from);
	for (size_t i = 0; i < job->rcpt_count; i++)
		job->smtputf8 = job->smtputf8 || !attempt_ascii(job->rcpts[i].q->address);
	const char *error = NULL;
	buf_init(&job->dkim, 64 * 1024);
	if (dkim_keys_sign(job->ob->dkim, job->map + job->skip, job->map_len - job->skip,
	                   (time_t)job->now, &job->dkim, &error) < 0)
		log_warn("event=dkim-sign queue=%llu result=failed error=\"%s\" (sent unsigned)",
		         (unsigned long long)job->entry->id, error);
	return 0;
}

/* ---- DNS: MX, then each host's addresses ---- */

static void attempt_hosts_add(struct ob_job *job, uint16_t preference, const char *host)
{
	if (job->host_count == OB_HOSTS_MAX)
		return;
	job->host_names[job->host_count] = xstrdup(host);
	job->hosts[job->host_count].preference = preference;
	job->hosts[job->host_count].host = job->host_names[job->host_count];
	job->host_count++;
}

static uint32_t attempt_rnd(void *ctx)
{
	(void)ctx;
	uint32_t r = 0;
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (uint32_t)rand();
	return r;
}

/* An MX host under the domain's MTA-STS policy (RFC 8461 §4.1): enforce uses only hosts
 * the policy names; testing only logs the others. */
static void attempt_sts_host(struct ob_job *job, uint16_t preference, const char *host)
{
	if (job->sts.mode != MTA_STS_MODE_NONE && !mta_sts_mx_allowed(&job->sts, host)) {
		log_info("event=mta-sts queue=%llu domain=%s mx=%s result=not-in-policy mode=%s",
		         (unsigned long long)job->entry->id, job->entry->domain, host,
		         job->sts.mode == MTA_STS_MODE_ENFORCE ? "enforce" : "testing");
		if (job->sts.mode == MTA_STS_MODE_ENFORCE)
			return;
	}
	attempt_hosts_add(job, preference, host);
}

static void attempt_mx_order(struct ob_job *job, const struct dns_result *res)
{
	struct outbound_mx in[OB_HOSTS_MAX], out[OB_HOSTS_MAX];
	size_t n = 0, count = 0;
	for (size_t i = 0; i < res->count && n < OB_HOSTS_MAX; i++)
		in[n++] = (struct outbound_mx){res->records[i].u.mx.preference,
		                               res->records[i].u.mx.host};
	enum outbound_route_verdict v = outbound_route_order(
	    in, n, job->conf->outbound_mx_max, job->conf->hostname, attempt_rnd, NULL, out, &count);
	if (v == OUTBOUND_ROUTE_NULL_MX) {
		attempt_local_reply(&job->host_reply, SMTP_CLIENT_PERMFAIL, 556, "5.1.10",
		                    "the domain %s accepts no mail (null MX)", job->entry->domain);
		return;
	}
	if (v == OUTBOUND_ROUTE_LOOPS_BACK) {
		attempt_local_reply(&job->host_reply, SMTP_CLIENT_PERMFAIL, 554, "5.4.6",
		                    "mail for %s loops back to myself", job->entry->domain);
		return;
	}
	for (size_t i = 0; i < count; i++)
		attempt_sts_host(job, out[i].preference, out[i].host);
}

static void attempt_mx_done(const struct dns_result *res, void *ctx)
{
	struct ob_job *job = ctx;
	job->lookup = NULL;
	const char *domain = job->entry->domain;
	job->mx_secure = res->secure;
	switch (res->status) {
	case DNS_STATUS_OK:
		attempt_mx_order(job, res);
		break;
	case DNS_STATUS_NODATA: /* RFC 5321 §5.1: no MX, the domain itself is the host */
		attempt_sts_host(job, 0, domain);
		break;
	case DNS_STATUS_NXDOMAIN:
		attempt_local_reply(&job->host_reply, SMTP_CLIENT_PERMFAIL, 550, "5.1.2",
		                    "host or domain name not found: %s", domain);
		break;
	case DNS_STATUS_TEMPFAIL:
	case DNS_STATUS_BOGUS:
		attempt_local_reply(&job->host_reply, SMTP_CLIENT_TEMPFAIL, 451, "4.4.3",
		                    "MX lookup of %s failed: %s", domain,
		                    res->status == DNS_STATUS_BOGUS ? "DNSSEC validation failed"
		                                                    : "temporary DNS failure");
		break;
	}
	if (job->host_count == 0 && job->sts.mode == MTA_STS_MODE_ENFORCE &&
	    job->host_reply.status == SMTP_CLIENT_PENDING)
		attempt_local_reply(&job->host_reply, SMTP_CLIENT_TEMPFAIL, 451, "4.7.5",
		                    "no MX host of %s matches its MTA-STS policy", domain);
	if (job->host_count == 0) {
		attempt_finish(job);
		return;
	}
	attempt_next_host(job);
}

static void attempt_lookup(struct ob_job *job, const char *name, uint16_t type, dns_lookup_fn *fn)
{
	const char *error;
	job->addr_type = type;
	job->lookup = dns_lookup(job->ob->dns, name, type, fn, job, &error);
	if (job->lookup != NULL)
		return;
	attempt_local_reply(&job->host_reply, SMTP_CLIENT_PERMFAIL, 550, "5.1.2",
	                    "bad host name %s: %s", name, error);
	if (type == DNS_TYPE_MX)
		attempt_finish(job);
	else
		attempt_next_host(job);
}

static const char *attempt_host(const struct ob_job *job)
{
	return job->hosts[job->host_i - 1].host;
}

static void attempt_addr_done(const struct dns_result *res, void *ctx)
{
	struct ob_job *job = ctx;
	job->lookup = NULL;
	/* DANE needs every address answer secure (RFC 7672 §2.2.2); NODATA counts. */
	job->host_secure = job->host_secure && res->secure;
	if (res->status == DNS_STATUS_OK) {
		for (size_t i = 0; i < res->count && job->addr_count < OB_ADDRS_MAX; i++)
			job->addrs[job->addr_count++] = res->records[i].u.addr;
	} else if (job->addr_count == 0) {
		attempt_local_reply(&job->host_reply, SMTP_CLIENT_TEMPFAIL, 451, "4.4.4",
		                    "cannot find the address of %s (%s)", attempt_host(job),
		                    res->status == DNS_STATUS_NXDOMAIN ? "no such host"
		                    : res->status == DNS_STATUS_NODATA ? "no address"
		                                                       : "DNS lookup failed");
	}
	/* "any": IPv4 first, then IPv6 (hosts whose IPv6 has no reverse DNS fare worse). */
	if (job->addr_type == DNS_TYPE_A && job->conf->outbound_ip == CONF_OUTBOUND_IP_ANY) {
		attempt_lookup(job, attempt_host(job), DNS_TYPE_AAAA, attempt_addr_done);
		return;
	}
	attempt_host_ready(job);
}

static void attempt_tlsa_clear(struct ob_job *job)
{
	for (size_t i = 0; i < job->tlsa_count; i++)
		free(job->tlsa_data[i]);
	job->tlsa_count = 0;
}

/* The host's TLSA records (RFC 7672 §2.2): secure and usable (DANE-TA(2), DANE-EE(3)):
 * DANE; insecure, absent or unusable: opportunistic TLS; bogus or failed: the host is not
 * used, since an attacker could be hiding the records. */
static void attempt_tlsa_done(const struct dns_result *res, void *ctx)
{
	struct ob_job *job = ctx;
	job->lookup = NULL;
	if (res->status == DNS_STATUS_BOGUS || res->status == DNS_STATUS_TEMPFAIL) {
		attempt_local_reply(&job->host_reply, SMTP_CLIENT_TEMPFAIL, 451, "4.7.5",
		                    "TLSA lookup of %s failed (%s): host not used",
		                    attempt_host(job),
		                    res->status == DNS_STATUS_BOGUS ? "DNSSEC bogus" : "temporary");
		log_info("event=outbound-host queue=%llu relay=%s status=failed dsn=4.7.5 "
		         "reply=\"TLSA lookup failed\"",
		         (unsigned long long)job->entry->id, attempt_host(job));
		if (res->status == DNS_STATUS_BOGUS)
			outbound_tlsrpt_host_failed(job, "dnssec-invalid");
		attempt_next_host(job);
		return;
	}
	if (res->status == DNS_STATUS_OK && res->secure) {
		for (size_t i = 0; i < res->count && job->tlsa_count < OB_TLSA_MAX; i++) {
			const struct dns_tlsa *t = &res->records[i].u.tlsa;
			if (t->usage != 2 && t->usage != 3)
				continue;
			unsigned char *d = xmalloc(t->data_len > 0 ? t->data_len : 1);
			memcpy(d, t->data, t->data_len);
			job->tlsa_data[job->tlsa_count] = d;
			job->tlsa[job->tlsa_count++] = (struct conn_tlsa){.usage = t->usage,
			                                                  .selector = t->selector,
			                                                  .mtype = t->matching_type,
			                                                  .data = d,
			                                                  .len = t->data_len};
		}
	}
	attempt_next_address(job);
}

/* The host's addresses are known: look its TLSA records up when DANE can apply. */
static void attempt_host_ready(struct ob_job *job)
{
	if (job->routed || !job->mx_secure || !job->host_secure || job->addr_count == 0) {
		attempt_next_address(job);
		return;
	}
	char name[300];
	snprintf(name, sizeof(name), "_%d._tcp.%s", job->port, attempt_host(job));
	attempt_lookup(job, name, DNS_TYPE_TLSA, attempt_tlsa_done);
}

static void attempt_next_host(struct ob_job *job)
{
	if (outbound_stopping(job->ob)) {
		outbound_job_done(job);
		return;
	}
	if (job->host_i >= job->host_count) {
		attempt_finish(job);
		return;
	}
	job->host_i++;
	job->addr_count = job->addr_i = 0;
	job->host_secure = true;
	attempt_tlsa_clear(job);
	uint16_t type = job->conf->outbound_ip == CONF_OUTBOUND_IP_V6 ? DNS_TYPE_AAAA : DNS_TYPE_A;
	attempt_lookup(job, attempt_host(job), type, attempt_addr_done);
}

/* ---- SMTP sessions ---- */

static void attempt_notify_text(unsigned notify, char out[32])
{
	out[0] = '\0';
	if (notify & STORE_NOTIFY_NEVER) {
		snprintf(out, 32, "NEVER");
		return;
	}
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {{STORE_NOTIFY_SUCCESS, "SUCCESS"},
	             {STORE_NOTIFY_FAILURE, "FAILURE"},
	             {STORE_NOTIFY_DELAY, "DELAY"}};
	for (size_t i = 0; i < 3; i++) {
		if (!(notify & names[i].bit))
			continue;
		size_t n = strlen(out);
		snprintf(out + n, 32 - n, "%s%s", n > 0 ? "," : "", names[i].name);
	}
}

/* The message for this session: the recipients no host answered yet. */
static void attempt_build_message(struct ob_job *job)
{
	size_t n = 0;
	for (size_t i = 0; i < job->rcpt_count; i++) {
		if (job->rcpts[i].status != SMTP_CLIENT_PENDING)
			continue;
		const struct store_queue_rcpt *q = job->rcpts[i].q;
		attempt_notify_text(q->notify, job->notify[n]);
		/* The store keeps ORCPT and ENVID as they were sent: valid xtext. */
		job->crcpts[n] = (struct smtp_client_rcpt){
		    .address = q->address,
		    .notify = job->notify[n][0] != '\0' ? job->notify[n] : NULL,
		    .orcpt = q->orcpt};
		job->cmap[n++] = i;
	}
	const struct store_queue_entry *e = job->entry;
	job->msg = (struct smtp_client_message){.path = e->path,
	                                        .fd = e->fd,
	                                        .prefix = job->dkim.len > 0 ? job->dkim.data : NULL,
	                                        .prefix_len = job->dkim.len,
	                                        .mail_from = e->mail_from,
	                                        .eightbit = job->eightbit,
	                                        .smtputf8 = job->smtputf8,
	                                        .requiretls = e->requiretls,
	                                        .dsn_ret = e->ret == STORE_DSN_RET_FULL   ? "FULL"
	                                                   : e->ret == STORE_DSN_RET_HDRS ? "HDRS"
	                                                                                  : NULL,
	                                        .dsn_envid = e->envid,
	                                        .rcpts = job->crcpts,
	                                        .rcpt_count = n};
}

static void attempt_relay(const struct ob_job *job, char *out, size_t n)
{
	snprintf(out, n, "%s[%s]:%d", attempt_host(job), job->addrs[job->addr_i - 1].text,
	         job->port);
}

void attempt_session_ready(struct ob_job *job, struct smtp_client *c)
{
	if (job->sent || outbound_stopping(job->ob)) {
		smtp_client_quit(c);
		return;
	}
	attempt_build_message(job);
	if (job->msg.rcpt_count == 0 || smtp_client_send(c, &job->msg) < 0) {
		smtp_client_quit(c);
		return;
	}
	job->sent = true;
}

/* Every recipient of the message has its answer: the attempt is over (the session may
 * serve another one). A reused session that was lost before any reply (the server closed
 * it while idle) costs no deferral: the same address again, on a new connection. */
void attempt_session_message_done(struct ob_job *job, struct smtp_client *c,
                                  struct smtp_client_message *msg, bool reused)
{
	bool stale = reused;
	for (size_t i = 0; i < msg->rcpt_count && stale; i++)
		stale = msg->rcpts[i].result.status != SMTP_CLIENT_DELIVERED &&
		        msg->rcpts[i].result.status != SMTP_CLIENT_PERMFAIL &&
		        !msg->rcpts[i].result.remote;
	if (stale && !outbound_stopping(job->ob)) {
		smtp_client_quit(c);
		job->sent = false;
		job->addr_i--;
		attempt_next_address(job);
		return;
	}
	char relay[OB_RELAY_MAX];
	attempt_relay(job, relay, sizeof(relay));
	const struct smtp_ehlo *ehlo = smtp_client_ehlo(c);
	for (size_t i = 0; i < msg->rcpt_count; i++) {
		struct ob_rcpt *r = &job->rcpts[job->cmap[i]];
		r->reply = msg->rcpts[i].result;
		r->status =
		    r->reply.status == SMTP_CLIENT_PENDING ? SMTP_CLIENT_TEMPFAIL : r->reply.status;
		r->relayed = r->status == SMTP_CLIENT_DELIVERED && !(ehlo != NULL && ehlo->dsn);
		snprintf(r->relay, sizeof(r->relay), "%s", relay);
	}
	snprintf(job->tls_desc, sizeof(job->tls_desc), "%s", smtp_client_tls_description(c));
	snprintf(job->tls_verify, sizeof(job->tls_verify), "%s", smtp_client_tls_verification(c));
	outbound_tlsrpt_session(job, c, NULL);
	if (outbound_stopping(job->ob)) {
		smtp_client_quit(c);
		outbound_job_done(job);
		return;
	}
	attempt_finish(job);
}

/* The session ended while it worked for this attempt: the host failed before it took the
 * message (or the message's answers came and were already taken). */
void attempt_session_closed(struct ob_job *job, struct smtp_client *c,
                            const struct smtp_client_result *result)
{
	if (outbound_stopping(job->ob)) {
		outbound_job_done(job);
		return;
	}
	if (job->sent) {
		/* Handed over but never answered (cannot happen: message_done comes first). */
		attempt_finish(job);
		return;
	}
	/* The host failed before it took the message: log it, then the next address. */
	outbound_tlsrpt_session(job, c, result);
	char relay[OB_RELAY_MAX];
	attempt_relay(job, relay, sizeof(relay));
	log_info(
	    "event=outbound-host queue=%llu relay=%s status=failed code=%d dsn=%s reply=\"%s\"",
	    (unsigned long long)job->entry->id, relay, result->reply.code, result->reply.enhanced,
	    result->reply.text);
	job->host_reply = result->reply;
	snprintf(job->host_relay, sizeof(job->host_relay), "%s", relay);
	if (result->tls_failed && !job->no_tls && job->tls_mode == OUTBOUND_TLS_STARTTLS &&
	    job->tlsa_count == 0 && job->sts.mode != MTA_STS_MODE_ENFORCE &&
	    !job->entry->requiretls) {
		/* Opportunistic TLS failed: this address once more in plain text (RFC 7435). */
		job->no_tls = true;
		job->addr_i--;
	} else {
		job->no_tls = false;
	}
	attempt_next_address(job);
}

static void attempt_next_address(struct ob_job *job)
{
	if (outbound_stopping(job->ob)) {
		outbound_job_done(job);
		return;
	}
	if (job->addr_i >= job->addr_count) {
		attempt_next_host(job);
		return;
	}
	const struct dns_addr *a = &job->addrs[job->addr_i++];
	const struct conf *conf = job->conf;
	/* DANE wins over MTA-STS (RFC 8461 §2); enforce: verified TLS or nothing. */
	bool sts_enforce = job->sts.mode == MTA_STS_MODE_ENFORCE && !job->routed;
	static const enum smtp_client_tls_policy policies[] = {
	    [OUTBOUND_TLS_STARTTLS] = SMTP_CLIENT_TLS_OPPORTUNISTIC,
	    [OUTBOUND_TLS_REQUIRE] = SMTP_CLIENT_TLS_MANDATORY,
	    [OUTBOUND_TLS_IMPLICIT] = SMTP_CLIENT_TLS_IMPLICIT,
	    [OUTBOUND_TLS_NONE] = SMTP_CLIENT_TLS_DISABLED};
	struct smtp_client_params p = {
	    .ip = a->text,
	    .port = job->port,
	    .host = attempt_host(job),
	    .helo_name = conf->hostname,
	    .tls = job->tlsa_count > 0 || sts_enforce ? SMTP_CLIENT_TLS_MANDATORY
	           : job->no_tls                      ? SMTP_CLIENT_TLS_DISABLED
	                                              : policies[job->tls_mode],
	    .verify = job->tlsa_count > 0 ? CONN_TLS_VERIFY_DANE
	              : sts_enforce       ? CONN_TLS_VERIFY_PKIX
	                                  : job->verify,
	    .tlsa = job->tlsa,
	    .tlsa_count = job->tlsa_count,
	    .tls_ctx = job->ob->tls,
	    .auth_user = job->auth_user,
	    .auth_password = job->auth_password,
	};
	smtp_client_timeouts_from_conf(conf, &p.timeouts);
	const char *error;
	if (outbound_session_start(job, &p, &error) < 0) {
		attempt_local_reply(&job->host_reply, SMTP_CLIENT_TEMPFAIL, 451, "4.4.1",
		                    "cannot connect to %s: %s", a->text, error);
		attempt_next_address(job);
	}
}

/* ---- MTA-STS: the policy first, then the MX hosts ---- */

static struct ob_sts *attempt_sts_cached(struct outbound *ob, const char *domain)
{
	for (struct ob_sts *c = ob->sts_cache; c != NULL; c = c->next)
		if (strcasecmp(c->domain, domain) == 0)
			return c;
	return NULL;
}

/* Use a cached policy that has not expired (RFC 8461 §5.1), whatever happened to the
 * record or the fetch. */
static void attempt_sts_use_cache(struct ob_job *job)
{
	struct ob_sts *c = attempt_sts_cached(job->ob, job->entry->domain);
	if (c != NULL && c->expires > job->now)
		job->sts = c->policy;
}

static void attempt_sts_store(struct ob_job *job, const struct mta_sts_policy *policy)
{
	struct outbound *ob = job->ob;
	struct ob_sts *c = attempt_sts_cached(ob, job->entry->domain);
	if (c == NULL) {
		if (ob->sts_cached >= OB_STS_CACHE_MAX)
			return;
		c = xcalloc(1, sizeof(*c));
		snprintf(c->domain, sizeof(c->domain), "%.*s", 255, job->entry->domain);
		c->next = ob->sts_cache;
		ob->sts_cache = c;
		ob->sts_cached++;
	}
	snprintf(c->id, sizeof(c->id), "%s", job->sts_id);
	c->policy = *policy;
	c->expires = job->now + (int64_t)policy->max_age;
}

static void attempt_mx_start(struct ob_job *job)
{
	attempt_lookup(job, job->entry->domain, DNS_TYPE_MX, attempt_mx_done);
}

static void attempt_sts_fetched(void *ctx, int result, const struct mta_sts_policy *policy,
                                const char *error)
{
	struct ob_job *job = ctx;
	job->sts_fetch = NULL;
	if (result == 0) {
		log_info("event=mta-sts domain=%s id=%s mode=%s max_age=%u mx=%zu",
		         job->entry->domain, job->sts_id,
		         policy->mode == MTA_STS_MODE_ENFORCE   ? "enforce"
		         : policy->mode == MTA_STS_MODE_TESTING ? "testing"
		                                                : "none",
		         policy->max_age, policy->mx_count);
		attempt_sts_store(job, policy);
		job->sts = *policy;
	} else {
		log_warn("event=mta-sts domain=%s result=failed error=\"%s\"", job->entry->domain,
		         error);
		attempt_sts_use_cache(job);
		if (job->sts.mode == MTA_STS_MODE_NONE)
			outbound_tlsrpt_sts_failed(job, error);
	}
	attempt_mx_start(job);
}

static void attempt_sts_txt_done(const struct dns_result *res, void *ctx)
{
	struct ob_job *job = ctx;
	job->lookup = NULL;
	char id[MTA_STS_ID_MAX] = "";
	for (size_t i = 0; res->status == DNS_STATUS_OK && i < res->count; i++)
		if (mta_sts_parse_txt(res->records[i].u.txt.text, res->records[i].u.txt.len, id) ==
		    1)
			break;
	struct ob_sts *c = attempt_sts_cached(job->ob, job->entry->domain);
	if (id[0] == '\0' || (c != NULL && strcmp(c->id, id) == 0 && c->expires > job->now)) {
		/* No record (or a failed lookup): a cached policy still holds; the same id: the
		 * cached policy is current. */
		attempt_sts_use_cache(job);
		attempt_mx_start(job);
		return;
	}
	snprintf(job->sts_id, sizeof(job->sts_id), "%s", id);
	job->sts_fetch = mta_sts_fetch_start(job->ob->loop, job->ob->dns, job->ob->tls,
	                                     job->entry->domain, (int)job->conf->mta_sts_port,
	                                     OB_STS_TIMEOUT, attempt_sts_fetched, job);
}

static void attempt_sts_start(struct ob_job *job)
{
	char name[300];
	snprintf(name, sizeof(name), "_mta-sts.%.*s", 250, job->entry->domain);
	const char *error;
	job->lookup =
	    dns_lookup(job->ob->dns, name, DNS_TYPE_TXT, attempt_sts_txt_done, job, &error);
	if (job->lookup == NULL)
		attempt_mx_start(job);
}

/* ---- routes and the smarthost ---- */

/* The smarthost's password: the setting, else the first line of the file. NULL when
 * neither is set or the file cannot be read. */
static char *attempt_smarthost_password(const struct conf *conf)
{
	if (conf->smarthost_password[0] != '\0')
		return xstrdup(conf->smarthost_password);
	if (conf->smarthost_password_file[0] == '\0')
		return NULL;
	FILE *f = fopen(conf->smarthost_password_file, "re");
	if (f == NULL)
		return NULL;
	char line[1024];
	char *pw = NULL;
	if (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		pw = xstrdup(line);
	}
	xmemzero(line, sizeof(line));
	fclose(f);
	return pw;
}

/* Go to hop (a static route or the smarthost) instead of the MX hosts. */
static void attempt_hop(struct ob_job *job, const struct outbound_hop *hop)
{
	job->routed = true;
	attempt_hosts_add(job, 0, hop->host);
	if (hop->port > 0)
		job->port = hop->port;
	job->tls_mode = hop->tls;
	if (!hop->numeric) {
		attempt_next_host(job);
		return;
	}
	/* A numeric host needs no lookup. */
	struct dns_addr *a = &job->addrs[0];
	*a = (struct dns_addr){.family = strchr(hop->host, ':') != NULL ? AF_INET6 : AF_INET};
	snprintf(a->text, sizeof(a->text), "%.*s", (int)sizeof(a->text) - 1, hop->host);
	if (inet_pton(a->family, hop->host, a->bytes) != 1)
		memset(a->bytes, 0, sizeof(a->bytes));
	job->host_i = 1;
	job->addr_count = 1;
	job->addr_i = 0;
	attempt_next_address(job);
}

/* A static route for the domain, or the smarthost: 1 when the attempt goes there (it has
 * started), 0 for the MX hosts. */
static int attempt_configured_hop(struct ob_job *job)
{
	const struct conf *conf = job->conf;
	struct outbound_hop hop;
	const char *domain = job->entry->domain;
	if (domain[0] == '[') {
		/* An address literal (RFC 5321 §4.1.3): that host, no MX lookup. */
		char lit[300];
		size_t n = strlen(domain);
		bool v6 = strncasecmp(domain, "[IPv6:", 6) == 0;
		snprintf(lit, sizeof(lit), "[%.*s]", n > 2 ? (int)(n - 2 - (v6 ? 5 : 0)) : 0,
		         domain + 1 + (v6 ? 5 : 0));
		if (n < 3 || outbound_route_parse_hop(lit, strlen(lit), &hop) < 0 || !hop.numeric) {
			attempt_local_reply(&job->host_reply, SMTP_CLIENT_PERMFAIL, 550, "5.1.2",
			                    "bad address literal %s", domain);
			attempt_finish(job);
			return 1;
		}
		attempt_hop(job, &hop);
		return 1;
	}
	int r = outbound_route_lookup(conf->outbound_routes, domain, &hop);
	if (r < 0) {
		log_error("event=outbound queue=%llu error=\"outbound_routes is malformed\"",
		          (unsigned long long)job->entry->id);
		attempt_local_reply(&job->host_reply, SMTP_CLIENT_TEMPFAIL, 451, "4.3.5",
		                    "outbound_routes is malformed");
		attempt_finish(job);
		return 1;
	}
	if (r == 1) {
		attempt_hop(job, &hop);
		return 1;
	}
	if (conf->smarthost[0] == '\0')
		return 0;
	if (outbound_route_parse_hop(conf->smarthost, strlen(conf->smarthost), &hop) < 0) {
		attempt_local_reply(&job->host_reply, SMTP_CLIENT_TEMPFAIL, 451, "4.3.5",
		                    "smarthost is malformed");
		attempt_finish(job);
		return 1;
	}
	/* The provider's server: TLS always, its certificate checked unless told not to. */
	if (hop.port == 0)
		hop.port = 587;
	hop.tls = strcmp(conf->smarthost_tls, "tls") == 0        ? OUTBOUND_TLS_IMPLICIT
	          : strcmp(conf->smarthost_tls, "starttls") == 0 ? OUTBOUND_TLS_REQUIRE
	          : hop.port == 465                              ? OUTBOUND_TLS_IMPLICIT
	                                                         : OUTBOUND_TLS_REQUIRE;
	job->verify = conf->smarthost_tls_verify ? CONN_TLS_VERIFY_PKIX : CONN_TLS_VERIFY_NONE;
	if (conf->smarthost_user[0] != '\0') {
		job->auth_user = xstrdup(conf->smarthost_user);
		job->auth_password = attempt_smarthost_password(conf);
		if (job->auth_password == NULL) {
			attempt_local_reply(
			    &job->host_reply, SMTP_CLIENT_TEMPFAIL, 451, "4.3.5",
			    "no password for the smarthost (smarthost_password_file)");
			attempt_finish(job);
			return 1;
		}
	}
	attempt_hop(job, &hop);
	return 1;
}

/* ---- start and end ---- */

void outbound_attempt_start(struct ob_job *job)
{
	struct store_queue_entry *e = job->entry;
	job->now = (int64_t)time(NULL);
	job->rcpt_count = e->rcpt_count;
	job->rcpts = xcalloc(e->rcpt_count, sizeof(*job->rcpts));
	job->crcpts = xcalloc(e->rcpt_count, sizeof(*job->crcpts));
	job->cmap = xcalloc(e->rcpt_count, sizeof(*job->cmap));
	job->notify = xcalloc(e->rcpt_count, sizeof(*job->notify));
	for (size_t i = 0; i < e->rcpt_count; i++)
		job->rcpts[i] = (struct ob_rcpt){.q = &e->rcpts[i], .status = SMTP_CLIENT_PENDING};
	job->port = (int)job->conf->outbound_port;
	job->verify = CONN_TLS_VERIFY_NONE;
	job->tls_mode = outbound_route_listed(job->conf->outbound_tls_required, e->domain)
	                    ? OUTBOUND_TLS_REQUIRE
	                    : OUTBOUND_TLS_STARTTLS;
	if (attempt_map(job) < 0) {
		attempt_local_reply(&job->host_reply, SMTP_CLIENT_TEMPFAIL, 451, "4.3.0",
		                    "cannot read queued message %llu", (unsigned long long)e->id);
		attempt_finish(job);
		return;
	}
	if (attempt_configured_hop(job) != 0)
		return;
	attempt_sts_start(job);
}

void outbound_attempt_free(struct ob_job *job)
{
	dns_lookup_cancel(&job->lookup);
	mta_sts_fetch_cancel(&job->sts_fetch);
	if (job->map != NULL)
		munmap(job->map, job->map_len);
	job->map = NULL;
	buf_free(&job->dkim);
	attempt_tlsa_clear(job);
	outbound_tlsrpt_free(job);
	for (size_t i = 0; i < job->host_count; i++)
		free(job->host_names[i]);
	job->host_count = 0;
	free(job->notify);
	free(job->cmap);
	free(job->crcpts);
	free(job->rcpts);
	free(job->auth_user);
	if (job->auth_password != NULL)
		xmemzero(job->auth_password, strlen(job->auth_password));
	free(job->auth_password);
	job->auth_user = job->auth_password = NULL;
	job->notify = NULL;
	job->cmap = NULL;
	job->crcpts = NULL;
	job->rcpts = NULL;
}
