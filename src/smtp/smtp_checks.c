/* Checks on arrival at port 25 (issue 12): the pure evaluators (smtp/spf, mime/dkim_verify,
 * smtp/dmarc) run over net/dns on the session's loop. SPF runs at MAIL FROM, DKIM and DMARC
 * at the end of data; the verdicts become one Authentication-Results field (smtp/authres)
 * written at the top of a new spool file, and DMARC's policy becomes a refusal or the Junk
 * folder. While a lookup is out the session waits (SMTP_ASYNC_CHECK, input paused). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "mime/arc_verify.h"
#include "mime/dkim_verify.h"
#include "mime/rfc822_addr.h"
#include "net/dns.h"
#include "smtp/authres.h"
#include "smtp/dmarc.h"
#include "smtp/dmarc_collect.h"
#include "smtp/psl.h"
#include "smtp/smtp_session.h"
#include "smtp/spf.h"
#include "core/banned.h"

#define CHECKS_AR_MAX 16384

enum checks_phase { CHECKS_SPF, CHECKS_DKIM, CHECKS_ARC, CHECKS_DMARC, CHECKS_DONE };

struct smtp_checks {
	struct smtp_session *s;
	enum checks_phase phase;
	void (*next)(struct smtp_session *s);
	bool async;                /* SMTP_ASYNC_CHECK started */
	enum smtp_state resume;    /* the state to go on in */
	struct dns_lookup *lookup; /* in flight, or NULL */
	char *need_name;           /* what it asks */
	uint16_t need_type;

	/* SPF (MAIL FROM, or HELO for the null sender) */
	struct spf_check *spf;
	enum spf_result spf_result;
	char *spf_identity; /* the address or HELO name checked */
	bool spf_helo;      /* the null sender: smtp.helo */
	const char *mail_reply;

	/* end of data */
	int map_fd;
	unsigned char *map;
	size_t map_len;
	struct dkim_verify *dkim;
	struct arc_verify *arc;
	struct dmarc_check *dmarc;
	char *from_domain;
	const char *data_reply;
	uint64_t *junk_accounts; /* in s->tx */
	size_t junk_count;
	bool arc_override; /* a trusted sealer's ARC pass set DMARC's policy aside */
};

/* SPF runs at MAIL when some policy (the global one, a section) checks mail: recipients
 * are not known yet. */
bool smtp_checks_active(const struct smtp_session *s)
{
	return s->kind == CONF_LISTENER_SMTP && !s->authenticated &&
	       s->conf->policies.any.inbound_checks;
}

/* The policy of account j of recipient i. */
static const struct conf_policy *checks_rcpt_policy(const struct smtp_session *s, size_t i,
                                                    size_t j, const struct conf_policy *global)
{
	const struct smtp_rcpt *r = &s->rcpts[i];
	return r->policies != NULL && j < r->accounts.count ? &r->policies[j] : global;
}

bool smtp_checks_data_active(const struct smtp_session *s)
{
	if (!smtp_checks_active(s))
		return false;
	struct conf_policy global = conf_policy_global(s->conf);
	for (size_t i = 0; i < s->rcpt_count; i++)
		for (size_t j = 0; j < s->rcpts[i].accounts.count; j++)
			if (checks_rcpt_policy(s, i, j, &global)->inbound_checks)
				return true;
	return false;
}

static void checks_unmap(struct smtp_checks *c)
{
	if (c->map != NULL && c->map_fd >= 0) /* else the session's spool_mem */
		munmap(c->map, c->map_len);
	c->map = NULL;
	if (c->map_fd >= 0)
		close(c->map_fd);
	c->map_fd = -1;
}

void smtp_checks_free(struct smtp_checks **checks)
{
	struct smtp_checks *c = *checks;
	if (c == NULL)
		return;
	dns_lookup_cancel(&c->lookup);
	spf_check_free(&c->spf);
	dkim_verify_free(&c->dkim);
	arc_verify_free(&c->arc);
	dmarc_check_free(&c->dmarc);
	checks_unmap(c);
	free(c->need_name);
	free(c->spf_identity);
	free(c->from_domain);
	free(c);
	*checks = NULL;
}

/* ---- the answer cycle ---- */

static enum spf_dns_status checks_spf_status(const struct dns_result *r)
{
	if (r == NULL)
		return SPF_DNS_TEMPFAIL;
	switch (r->status) {
	case DNS_STATUS_OK:
	case DNS_STATUS_NODATA:
		return SPF_DNS_OK;
	case DNS_STATUS_NXDOMAIN:
		return SPF_DNS_NXDOMAIN;
	default:
		return SPF_DNS_TEMPFAIL;
	}
}

/* Hand the answer r (NULL: a failure before any query) to the evaluator that asked. */
static void checks_answer(struct smtp_checks *c, const struct dns_result *r)
{
	size_t n = r != NULL && r->status == DNS_STATUS_OK ? r->count : 0;
	const char **texts = xcalloc(n + 1, sizeof(*texts));
	size_t *lens = xcalloc(n + 1, sizeof(*lens));
	unsigned char(*addrs)[16] = xcalloc(n + 1, sizeof(*addrs));
	for (size_t i = 0; i < n; i++) {
		const struct dns_record *rec = &r->records[i];
		if (rec->type == DNS_TYPE_TXT) {
			texts[i] = rec->u.txt.text;
			lens[i] = rec->u.txt.len;
		} else if (rec->type == DNS_TYPE_MX) {
			texts[i] = rec->u.mx.host;
			lens[i] = strlen(rec->u.mx.host);
		} else if (rec->type == DNS_TYPE_PTR) {
			texts[i] = rec->u.ptr;
			lens[i] = strlen(rec->u.ptr);
		} else if (rec->type == DNS_TYPE_A || rec->type == DNS_TYPE_AAAA) {
			memcpy(addrs[i], rec->u.addr.bytes, rec->type == DNS_TYPE_A ? 4 : 16);
		}
	}
	enum spf_dns_status st = checks_spf_status(r);
	if (c->phase == CHECKS_SPF) {
		struct spf_dns_answer a = {.status = st,
		                           .count = n,
		                           .texts = texts,
		                           .lens = lens,
		                           .addrs = (const unsigned char(*)[16])addrs};
		spf_check_answer(c->spf, c->need_name, (enum spf_dns_type)c->need_type, &a);
	} else if (c->phase == CHECKS_DKIM || c->phase == CHECKS_ARC) {
		enum dkim_dns_status ds = st == SPF_DNS_OK         ? DKIM_DNS_OK
		                          : st == SPF_DNS_NXDOMAIN ? DKIM_DNS_NXDOMAIN
		                                                   : DKIM_DNS_TEMPFAIL;
		if (c->phase == CHECKS_DKIM)
			dkim_verify_answer(c->dkim, c->need_name, ds, texts, lens, n);
		else
			arc_verify_answer(c->arc, c->need_name, ds, texts, lens, n);
	} else if (c->phase == CHECKS_DMARC) {
		enum dmarc_dns_status ds = st == SPF_DNS_OK         ? DMARC_DNS_OK
		                           : st == SPF_DNS_NXDOMAIN ? DMARC_DNS_NXDOMAIN
		                                                    : DMARC_DNS_TEMPFAIL;
		dmarc_check_answer(c->dmarc, c->need_name, ds, texts, n);
	}
	free(texts);
	free(lens);
	free(addrs);
}

static void checks_step(struct smtp_checks *c);

/* Append text for a log line: printable ASCII without spaces, others as '?', at most 255
 * octets (names and domains from DNS and from the message). */
static void checks_put_safe(struct buf *b, const char *text)
{
	for (size_t i = 0; text[i] != '\0' && i < 255; i++) {
		char ch = text[i] > 0x20 && text[i] < 0x7f ? text[i] : '?';
		if (buf_append(b, &ch, 1) != 0)
			return;
	}
}

static void checks_dns_cb(const struct dns_result *result, void *ctx)
{
	struct smtp_checks *c = ctx;
	c->lookup = NULL;
	if (c->s->closed) {
		/* Nobody to answer: stop here; the session is freed after the wake. */
		session_async_finished(&c->s->life);
		return;
	}
	checks_answer(c, result);
	checks_step(c);
}

/* Start the lookup the evaluator named: true when it is out (the step ends), false when
 * it could not be made (the evaluator got a temporary failure instead). */
static bool checks_lookup(struct smtp_checks *c, const char *name, uint16_t type)
{
	struct smtp_session *s = c->s;
	free(c->need_name);
	c->need_name = xstrdup(name);
	c->need_type = type;
	const char *error = NULL;
	struct dns_resolver *res = dns_loop_resolver(conn_loop(s->conn), s->conf, &error);
	if (res != NULL)
		c->lookup = dns_lookup(res, name, type, checks_dns_cb, c, &error);
	if (c->lookup == NULL) {
		struct buf b;
		buf_init(&b, 1024);
		checks_put_safe(&b, name);
		log_info("session=%s proto=smtp event=check-dns name=%s error=%s", conn_id(s->conn),
		         buf_cstr(&b), error != NULL ? error : "unknown");
		buf_free(&b);
		checks_answer(c, NULL);
		return false;
	}
	if (!c->async) {
		c->async = true;
		c->resume = s->state;
		smtp_session_set_state(s, SMTP_STATE_WAIT);
		session_async_start(&s->life, SMTP_ASYNC_CHECK);
	}
	return true;
}

static void checks_data_done(struct smtp_checks *c);
static void checks_dmarc_start(struct smtp_checks *c);

/* Run the evaluators until one waits for DNS or all are done; then go on with next. */
static void checks_step(struct smtp_checks *c)
{
	for (;;) {
		if (c->phase == CHECKS_SPF) {
			c->spf_result = spf_check_run(c->spf);
			if (c->spf_result != SPF_PENDING) {
				c->phase = CHECKS_DONE;
				break;
			}
			enum spf_dns_type t;
			const char *name = spf_check_need(c->spf, &t);
			if (checks_lookup(c, name, (uint16_t)t))
				return;
		} else if (c->phase == CHECKS_DKIM) {
			if (dkim_verify_run(c->dkim) == 1) {
				c->arc = arc_verify_new(c->map + c->s->trace_size,
				                        c->map_len - c->s->trace_size,
				                        (int64_t)time(NULL));
				c->phase = CHECKS_ARC;
				continue;
			}
			if (checks_lookup(c, dkim_verify_need(c->dkim), DNS_TYPE_TXT))
				return;
		} else if (c->phase == CHECKS_ARC) {
			if (arc_verify_run(c->arc) == 1) {
				checks_dmarc_start(c);
				continue;
			}
			if (checks_lookup(c, arc_verify_need(c->arc), DNS_TYPE_TXT))
				return;
		} else if (c->phase == CHECKS_DMARC) {
			if (dmarc_check_run(c->dmarc) == 1) {
				checks_data_done(c);
				c->phase = CHECKS_DONE;
				break;
			}
			if (checks_lookup(c, dmarc_check_need(c->dmarc), DNS_TYPE_TXT))
				return;
		} else {
			break;
		}
	}
	if (c->async)
		session_async_finished(&c->s->life); /* smtp_checks_resume() on the wake */
	else
		c->next(c->s);
}

void smtp_checks_resume(struct smtp_session *s)
{
	struct smtp_checks *c = s->checks;
	c->async = false;
	smtp_session_set_state(s, c->resume);
	c->next(s);
}

/* ---- SPF at MAIL FROM ---- */

static struct smtp_checks *checks_new(struct smtp_session *s)
{
	smtp_checks_free(&s->checks);
	struct smtp_checks *c = xcalloc(1, sizeof(*c));
	s->checks = c;
	c->s = s;
	c->map_fd = -1;
	c->spf_result = SPF_NONE;
	c->phase = CHECKS_DONE;
	return c;
}

void smtp_checks_mail(struct smtp_session *s, const char *sender,
                      void (*next)(struct smtp_session *s))
{
	struct smtp_checks *c = checks_new(s);
	c->next = next;
	c->phase = CHECKS_SPF;
	struct spf_request req = {.sender = sender,
	                          .helo = s->helo != NULL ? s->helo : "",
	                          .receiver = s->conf->hostname,
	                          .now = (int64_t)time(NULL)};
	const char *ip = conn_remote_ip(s->conn);
	if (inet_pton(AF_INET, ip, req.ip) == 1) {
		req.family = AF_INET;
	} else if (inet_pton(AF_INET6, ip, req.ip) == 1) {
		req.family = AF_INET6;
	} else {
		req.family = AF_INET; /* 0.0.0.0: no record can pass it */
	}
	/* RFC 7208 §2.4: with the null sender the identity is the HELO name (§2.3). */
	c->spf_helo = sender[0] == '\0';
	c->spf_identity = xstrdup(c->spf_helo ? req.helo : sender);
	c->spf = spf_check_new(&req);
	checks_step(c);
}

/* Printable ASCII only, at most 200 octets: an explanation from DNS in a reply. */
static void checks_safe_text(const char *in, char *out, size_t size)
{
	size_t n = 0;
	for (; *in != '\0' && n + 1 < size && n < 200; in++)
		out[n++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
	out[n] = '\0';
}

/* The refusal of an SPF fail (in arena). */
static const char *checks_spf_reply(struct smtp_session *s, struct arena *arena)
{
	struct smtp_checks *c = s->checks;
	/* RFC 7372 §3.2: 5.7.23 SPF validation failed; RFC 7208 §8.4 the explanation. */
	const char *problem = NULL;
	const char *exp = spf_check_explanation(c->spf, &problem);
	char text[256];
	checks_safe_text(exp != NULL ? exp : "the sender's domain does not allow this host", text,
	                 sizeof(text));
	char *reply = arena_alloc(arena, 512);
	snprintf(reply, 512, "550 5.7.23 SPF validation failed for %s: %s",
	         spf_check_domain(c->spf), text);
	return reply;
}

const char *smtp_checks_mail_reply(struct smtp_session *s)
{
	struct smtp_checks *c = s->checks;
	const struct conf_policy *all = &s->conf->policies.all;
	/* Refused at MAIL only when every recipient's policy would refuse it; else at RCPT. */
	if (c == NULL || c->spf_result != SPF_FAIL || !all->inbound_checks || !all->spf_reject_fail)
		return NULL;
	SMTP_LOG(s, "event=spf-reject from=<%s> ip=%s", c->spf_identity, conn_remote_ip(s->conn));
	return checks_spf_reply(s, s->cmd);
}

const char *smtp_checks_rcpt_reply(struct smtp_session *s, const struct conf_policy *policies,
                                   size_t n)
{
	struct smtp_checks *c = s->checks;
	const struct conf_policy *all = &s->conf->policies.all;
	if (c == NULL || c->spf_result != SPF_FAIL || n == 0 ||
	    (all->inbound_checks && all->spf_reject_fail))
		return NULL; /* no fail, or MAIL refused it already */
	for (size_t i = 0; i < n; i++)
		if (!policies[i].inbound_checks || !policies[i].spf_reject_fail)
			return NULL;
	SMTP_LOG(s, "event=spf-reject from=<%s> ip=%s to=<%s>", c->spf_identity,
	         conn_remote_ip(s->conn), s->read_addr);
	return checks_spf_reply(s, s->cmd);
}

/* ---- end of data ---- */

/* RFC 7489 §6.6.1: the domain of the one address in From; NULL when there is no From,
 * more than one address, or a broken one. */
static char *checks_from_domain_dup(struct smtp_session *s)
{
	struct header_summary hs;
	header_scanner_result(s->headers, &hs);
	if (hs.from == NULL)
		return NULL;
	struct rfc822_address *a =
	    rfc822_addr_parse_list(s->tx, (const unsigned char *)hs.from, strlen(hs.from));
	const struct rfc822_address *found = NULL;
	for (; a != NULL; a = a->next) {
		if (a->mailbox == NULL || a->domain == NULL)
			continue; /* group markers */
		if (found != NULL || a->invalid)
			return NULL;
		found = a;
	}
	if (found == NULL || found->domain[0] == '[' || found->domain[0] == '\0')
		return NULL;
	char *d = xstrdup(found->domain);
	for (char *p = d; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	size_t n = strlen(d);
	if (n > 0 && d[n - 1] == '.')
		d[n - 1] = '\0';
	return d;
}

static void checks_dmarc_start(struct smtp_checks *c)
{
	size_t n = dkim_verify_count(c->dkim);
	const char **pass = xcalloc(n + 1, sizeof(*pass));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct dkim_signature_result *r = dkim_verify_result(c->dkim, i);
		if (r->result == DKIM_RESULT_PASS)
			pass[k++] = r->domain;
	}
	c->from_domain = checks_from_domain_dup(c->s);
	struct dmarc_input in = {
	    .from_domain = c->from_domain,
	    .spf_pass_domain = c->spf_result == SPF_PASS ? spf_check_domain(c->spf) : NULL,
	    .dkim_pass_domains = pass,
	    .dkim_pass_count = k,
	    .sample = randombytes_uniform(100),
	};
	c->dmarc = dmarc_check_new(c->s->server->psl, &in);
	free(pass);
	c->phase = CHECKS_DMARC;
}

/* DKIM over the message as mapped (c->map[0..map_len)). */
static void checks_dkim_start(struct smtp_checks *c)
{
	struct smtp_session *s = c->s;
	/* DKIM signs what the client sent: after our Return-Path and Received. */
	c->dkim = dkim_verify_new(c->map + s->trace_size, c->map_len - s->trace_size,
	                          s->conf->dkim_verify_max_signatures, (int64_t)time(NULL));
	dkim_verify_set_key_cache(c->dkim, s->server->dkim_keys);
	c->phase = CHECKS_DKIM;
	checks_step(c);
}

void smtp_checks_data(struct smtp_session *s, void (*next)(struct smtp_session *s))
{
	struct smtp_checks *c = s->checks;
	if (c == NULL) { /* defensive: no MAIL check ran; SPF none */
		c = checks_new(s);
		c->spf_identity = xstrdup(s->mail_from != NULL ? s->mail_from : "");
	}
	ASSERT(!c->async && c->phase == CHECKS_DONE);
	c->next = next;
	c->data_reply = NULL;
	c->junk_accounts = NULL;
	c->junk_count = 0;
	if (s->spool_in_mem) {
		c->map = (unsigned char *)s->spool_mem.data; /* until checks_rewrite() */
		c->map_len = s->spool_mem.len;
		checks_dkim_start(c);
		return;
	}
	struct stat st;
	c->map_fd = open(s->spool_path, O_RDONLY | O_CLOEXEC);
	if (c->map_fd < 0 || fstat(c->map_fd, &st) != 0 || (uint64_t)st.st_size < s->trace_size ||
	    (c->map = mmap(NULL, (size_t)st.st_size > 0 ? (size_t)st.st_size : 1, PROT_READ,
	                   MAP_PRIVATE, c->map_fd, 0)) == MAP_FAILED) {
		log_error("session=%s proto=smtp event=spool-map path=%s error=%s",
		          conn_id(s->conn), s->spool_path, strerror(errno));
		c->map = NULL;
		checks_unmap(c);
		c->data_reply = "451 4.3.0 Local error: cannot read spool file";
		next(s);
		return;
	}
	c->map_len = (size_t)st.st_size > 0 ? (size_t)st.st_size : 1;
	checks_dkim_start(c);
}

/* Is the domain of address (or address itself when it is a domain) in the space-separated
 * list? */
static bool checks_domain_listed(const char *list, const char *address)
{
	const char *at = strrchr(address, '@');
	const char *domain = at != NULL ? at + 1 : address;
	size_t dl = strlen(domain);
	for (const char *p = list; *p != '\0';) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		size_t n = strcspn(p, " \t,");
		if (n > 0 && n == dl && strncasecmp(p, domain, n) == 0)
			return true;
		p += n;
	}
	return false;
}

/* The Authentication-Results field of this message into b. */
static int checks_format(struct smtp_checks *c, struct buf *b)
{
	struct smtp_session *s = c->s;
	size_t n = dkim_verify_count(c->dkim);
	struct authres_method *m = xcalloc(n + 4, sizeof(*m));
	size_t k = 0;
	const char *problem = NULL;
	(void)spf_check_explanation(c->spf, &problem);
	m[k++] = (struct authres_method){
	    .method = "spf",
	    .result = spf_result_name(c->spf_result),
	    .reason =
	        c->spf_result == SPF_TEMPERROR || c->spf_result == SPF_PERMERROR ? problem : NULL,
	    .props = {{c->spf_helo ? "smtp.helo" : "smtp.mailfrom", c->spf_identity}},
	    .prop_count = 1};
	for (size_t i = 0; i < n; i++) {
		const struct dkim_signature_result *r = dkim_verify_result(c->dkim, i);
		struct authres_method *d = &m[k++];
		*d = (struct authres_method){
		    .method = "dkim", .result = dkim_result_name(r->result), .reason = r->problem};
		if (r->domain != NULL && r->domain[0] != '\0')
			d->props[d->prop_count++] = (struct authres_prop){"header.d", r->domain};
		if (r->selector != NULL && r->selector[0] != '\0')
			d->props[d->prop_count++] = (struct authres_prop){"header.s", r->selector};
		if (r->b_prefix != NULL && r->b_prefix[0] != '\0')
			d->props[d->prop_count++] = (struct authres_prop){"header.b", r->b_prefix};
	}
	if (n == 0)
		m[k++] = (struct authres_method){.method = "dkim", .result = "none"};
	unsigned instances;
	const char *arc_problem, *sealer;
	enum arc_result ar = arc_verify_result(c->arc, &instances, &arc_problem, &sealer);
	if (ar != ARC_RESULT_NONE) /* RFC 8617 §7.2: arc=, with the client's address */
		m[k++] =
		    (struct authres_method){.method = "arc",
		                            .result = arc_result_name(ar),
		                            .reason = arc_problem,
		                            .props = {{"smtp.remote-ip", conn_remote_ip(s->conn)}},
		                            .prop_count = 1};
	enum dmarc_policy apply;
	const struct dmarc_record *rec;
	const char *policy_domain;
	enum dmarc_result dr = dmarc_check_result(c->dmarc, &apply, &rec, &policy_domain);
	struct authres_method *dm = &m[k++];
	*dm = (struct authres_method){.method = "dmarc", .result = dmarc_result_name(dr)};
	if (c->from_domain != NULL)
		dm->props[dm->prop_count++] = (struct authres_prop){"header.from", c->from_domain};
	int r = authres_format(b, s->conf->hostname, m, k);
	free(m);
	return r;
}

static const char *checks_dkim_summary(struct smtp_checks *c, struct buf *b)
{
	size_t n = dkim_verify_count(c->dkim);
	if (n == 0)
		return "none";
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		const struct dkim_signature_result *d = dkim_verify_result(c->dkim, i);
		r |= buf_printf(b, "%s%s:", i > 0 ? "," : "", dkim_result_name(d->result));
		checks_put_safe(b, d->domain != NULL ? d->domain : "");
	}
	return r == 0 ? buf_cstr(b) : "many";
}

/* A new spool file: our field, the trace fields, the client's header block without the
 * Authentication-Results fields that claim our authserv-id, the body. It replaces the old
 * one (the store addresses the file by its content, so nothing can be added later). */
static int checks_rewrite(struct smtp_checks *c, const struct buf *ar)
{
	struct smtp_session *s = c->s;
	const unsigned char *msg = c->map + s->trace_size;
	size_t len = (size_t)s->body_size - s->trace_size;
	struct authres_span *spans;
	size_t header_len;
	size_t n = authres_find_claims(msg, len, s->conf->hostname, &spans, &header_len);
	struct smtp_span *keep = xcalloc(n + 2, sizeof(*keep));
	size_t k = 0, pos = 0;
	keep[k++] = (struct smtp_span){0, (size_t)s->trace_size};
	for (size_t i = 0; i <= n; i++) {
		size_t end = i < n ? spans[i].offset : len;
		if (end > pos)
			keep[k++] = (struct smtp_span){s->trace_size + pos, end - pos};
		if (i < n)
			pos = spans[i].offset + spans[i].len;
	}
	free(spans);
	int r = smtp_spool_rewrite(s, c->map_fd, ar->data, ar->len, keep, k);
	free(keep);
	if (r != 0)
		return -1;
	if (n > 0)
		SMTP_LOG(s, "event=auth-results-removed id=%s count=%zu", s->msgid, n);
	s->trace_size += ar->len;
	return 0;
}

enum checks_action {
	CHECKS_ACTION_NONE,
	CHECKS_ACTION_SKIPPED,    /* the recipient's policy sets aside what the global one does */
	CHECKS_ACTION_QUARANTINE, /* Junk */
	CHECKS_ACTION_REJECT,     /* refused if every recipient's is; else Junk */
};

static const char *const checks_action_names[] = {"none", "skipped", "quarantine", "reject"};

/* What a DMARC failure under apply does to the mail of a recipient with policy p. */
static enum checks_action checks_action_of(enum dmarc_policy apply, const struct conf_policy *p)
{
	if (!p->inbound_checks || apply == DMARC_POLICY_NONE)
		return CHECKS_ACTION_NONE;
	if (apply == DMARC_POLICY_REJECT && p->dmarc_reject)
		return CHECKS_ACTION_REJECT;
	return p->dmarc_quarantine ? CHECKS_ACTION_QUARANTINE : CHECKS_ACTION_NONE;
}

/* The action for each delivery account (s->delivery_accounts) into actions; the policy of an
 * account is that of its first recipient. Logs each recipient's when policies differ. */
static void checks_actions(struct smtp_checks *c, enum dmarc_policy apply,
                           enum checks_action *actions)
{
	struct smtp_session *s = c->s;
	struct conf_policy global = conf_policy_global(s->conf);
	enum checks_action global_action = checks_action_of(apply, &global);
	bool *seen = xcalloc(s->delivery_count + 1, sizeof(*seen));
	for (size_t i = 0; i < s->rcpt_count; i++) {
		const struct smtp_rcpt *r = &s->rcpts[i];
		for (size_t j = 0; j < r->accounts.count; j++) {
			size_t k = 0;
			while (k < s->delivery_count &&
			       s->delivery_accounts[k] != r->accounts.account_ids[j])
				k++;
			if (k == s->delivery_count || seen[k])
				continue;
			seen[k] = true;
			enum checks_action a =
			    checks_action_of(apply, checks_rcpt_policy(s, i, j, &global));
			if (a == CHECKS_ACTION_NONE && global_action != CHECKS_ACTION_NONE)
				a = CHECKS_ACTION_SKIPPED;
			actions[k] = a;
		}
	}
	free(seen);
}

/* What recipient i's accounts get ("junk", "inbox" or "inbox-skipped", comma-separated,
 * in s->tx) when the message is delivered. */
static const char *checks_rcpt_action(struct smtp_session *s, size_t i,
                                      const enum checks_action *actions)
{
	const struct smtp_rcpt *r = &s->rcpts[i];
	size_t size = r->accounts.count * 16 + 1, len = 0;
	char *out = arena_alloc(s->tx, size);
	out[0] = '\0';
	for (size_t j = 0; j < r->accounts.count; j++) {
		size_t k = 0;
		while (k < s->delivery_count &&
		       s->delivery_accounts[k] != r->accounts.account_ids[j])
			k++;
		enum checks_action a = k < s->delivery_count ? actions[k] : CHECKS_ACTION_NONE;
		const char *name = a == CHECKS_ACTION_REJECT || a == CHECKS_ACTION_QUARANTINE
		                       ? "junk"
		                   : a == CHECKS_ACTION_SKIPPED ? "inbox-skipped"
		                                                : "inbox";
		int w = snprintf(out + len, size - len, "%s%s", j > 0 ? "," : "", name);
		if (w < 0 || (size_t)w >= size - len)
			break;
		len += (size_t)w;
	}
	return out;
}

/* DMARC's verdict applied to each recipient: the refusal when every one's policy refuses,
 * else the accounts that get the message in Junk. Returns the action to log. */
static const char *checks_apply(struct smtp_checks *c, enum dmarc_policy apply)
{
	struct smtp_session *s = c->s;
	size_t n = s->delivery_count;
	enum checks_action *actions = xcalloc(n + 1, sizeof(*actions));
	checks_actions(c, apply, actions);
	size_t rejects = 0;
	bool same = true;
	c->junk_accounts = arena_alloc(s->tx, (n + 1) * sizeof(uint64_t));
	c->junk_count = 0;
	for (size_t k = 0; k < n; k++) {
		rejects += actions[k] == CHECKS_ACTION_REJECT;
		same = same && actions[k] == actions[0];
		/* A refusal other recipients' policies overrule becomes Junk (as mox files what
		 * it would refuse aside rather than lose the others' copies). */
		if (actions[k] == CHECKS_ACTION_REJECT || actions[k] == CHECKS_ACTION_QUARANTINE)
			c->junk_accounts[c->junk_count++] = s->delivery_accounts[k];
	}
	const char *action = n == 0 ? "none" : same ? checks_action_names[actions[0]] : "mixed";
	if (n > 0 && rejects == n) {
		/* RFC 7489 §6.6.4: refuse with a clear text; §10.3 warns of forwarding. */
		char *reply = arena_alloc(s->tx, 512);
		snprintf(reply, 512,
		         "550 5.7.1 Rejected by the DMARC policy of %s: the message is not "
		         "authenticated by an aligned SPF or DKIM pass",
		         c->from_domain != NULL ? c->from_domain : "the sender");
		c->data_reply = reply;
		c->junk_count = 0;
	} else if (!same) {
		for (size_t i = 0; i < s->rcpt_count; i++)
			SMTP_LOG(s, "event=auth-results-rcpt id=%s to=<%s> action=%s", s->msgid,
			         s->rcpts[i].address, checks_rcpt_action(s, i, actions));
	}
	free(actions);
	return action;
}

/* DMARC's verdict became known: the policy, the log line, the new spool file. */
static void checks_data_done(struct smtp_checks *c)
{
	struct smtp_session *s = c->s;
	enum dmarc_policy apply;
	const struct dmarc_record *rec;
	const char *policy_domain;
	enum dmarc_result dr = dmarc_check_result(c->dmarc, &apply, &rec, &policy_domain);
	const char *action = "none";
	unsigned instances;
	const char *arc_problem, *sealer;
	enum arc_result arc = arc_verify_result(c->arc, &instances, &arc_problem, &sealer);
	if (dr == DMARC_RESULT_FAIL && apply != DMARC_POLICY_NONE) {
		if (arc == ARC_RESULT_PASS &&
		    checks_domain_listed(s->conf->arc_trusted_sealers, sealer)) {
			/* RFC 8617 §7.2.1: a sealer we trust vouches for the message as it saw it
			 * (a mailing list that changed it); RFC 7489 §6.7 local policy. */
			action = "arc-override";
			c->arc_override = true;
		} else {
			action = checks_apply(c, apply);
		}
	}
	struct buf dk, fd, sl;
	buf_init(&dk, 2048);
	buf_init(&fd, 512);
	buf_init(&sl, 512);
	checks_put_safe(&sl, sealer[0] != '\0' ? sealer : "-");
	checks_put_safe(&fd, c->from_domain != NULL ? c->from_domain : "-");
	SMTP_LOG(s,
	         "event=auth-results id=%s ip=%s spf=%s spf_identity=<%s> dkim=%s arc=%s "
	         "arc_sealer=%s dmarc=%s from_domain=%s policy=%s action=%s",
	         s->msgid, conn_remote_ip(s->conn), spf_result_name(c->spf_result), c->spf_identity,
	         checks_dkim_summary(c, &dk), arc_result_name(arc), buf_cstr(&sl),
	         dmarc_result_name(dr), buf_cstr(&fd), dmarc_policy_name(apply), action);
	buf_free(&dk);
	buf_free(&fd);
	buf_free(&sl);
	dmarc_collect_message(s, c->dmarc, c->dkim, c->spf, c->spf_result, c->spf_helo,
	                      c->from_domain,
	                      c->data_reply == NULL && c->junk_count > 0 ? "quarantine" : action);
	if (c->data_reply == NULL) {
		struct buf ar;
		buf_init(&ar, CHECKS_AR_MAX);
		if (checks_format(c, &ar) != 0 || checks_rewrite(c, &ar) != 0)
			c->data_reply = "451 4.3.0 Local error: cannot write spool file";
		buf_free(&ar);
	}
	checks_unmap(c);
}

const char *smtp_checks_data_reply(const struct smtp_session *s)
{
	return s->checks != NULL ? s->checks->data_reply : NULL;
}

const uint64_t *smtp_checks_junk_accounts(const struct smtp_session *s, size_t *n_r)
{
	*n_r = s->checks != NULL ? s->checks->junk_count : 0;
	return *n_r > 0 ? s->checks->junk_accounts : NULL;
}
