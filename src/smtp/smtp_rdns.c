/* The client's forward-confirmed reverse DNS name (see smtp_rdns.h): a PTR lookup started
 * at connect, then one address lookup per usable name (A for an IPv4 client, AAAA for an
 * IPv6 one), all on the session's loop. Nobody waits: the name is "unknown" until the
 * verdict is in. Postfix does the same with smtpd_peername_lookup (smtpd_peer.c), through
 * the blocking resolver of its own process; here the loop must not block. */
#include "smtp/smtp_rdns.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "net/dns.h"
#include "smtp/smtp_session.h"
#include "core/banned.h"

struct smtp_rdns {
	struct smtp_session *s;
	char id[32]; /* the session's, for the log line at the end (the conn may be gone) */
	char ip_text[48];
	int family;
	unsigned char ip[16];
	struct dns_lookup *ptr_lookup;
	enum dns_status ptr_status;
	struct smtp_rdns_name {
		struct smtp_rdns *r;
		struct dns_lookup *lookup;
		char name[SMTP_RDNS_NAME_MAX];
		enum dns_status status;
		struct dns_record *records; /* copies of the A/AAAA records (malloc'd) */
		size_t count;
	} names[SMTP_RDNS_NAMES_MAX];
	size_t n, pending;
	bool done;
	enum smtp_rdns_status status;
	size_t match;
};

/* ---- the pure part ---- */

static bool rdns_addr_is(const struct dns_record *rec, int family, const unsigned char *ip)
{
	size_t len = family == AF_INET ? 4 : 16;
	return rec->u.addr.family == family && memcmp(rec->u.addr.bytes, ip, len) == 0;
}

enum smtp_rdns_status smtp_rdns_confirm(int family, const unsigned char *ip,
                                        enum dns_status ptr_status,
                                        const struct smtp_rdns_candidate *c, size_t n,
                                        size_t *match_r)
{
	bool temp = ptr_status == DNS_STATUS_TEMPFAIL || ptr_status == DNS_STATUS_BOGUS;
	if (ptr_status != DNS_STATUS_OK)
		n = 0;
	for (size_t i = 0; i < n; i++) {
		if (c[i].status == DNS_STATUS_TEMPFAIL || c[i].status == DNS_STATUS_BOGUS)
			temp = true;
		if (c[i].status != DNS_STATUS_OK)
			continue;
		for (size_t k = 0; k < c[i].count; k++)
			if (rdns_addr_is(&c[i].records[k], family, ip)) {
				*match_r = i;
				return SMTP_RDNS_OK;
			}
	}
	if (temp)
		return SMTP_RDNS_TEMP;
	return n == 0 ? SMTP_RDNS_FAIL : SMTP_RDNS_FORGED;
}

bool smtp_rdns_name_usable(const char *name)
{
	size_t len = strlen(name), label = 0;
	if (len == 0 || len >= SMTP_RDNS_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = name[i];
		if (ch == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		           (ch >= '0' && ch <= '9') || ch == '-' || ch == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	if (label == 0)
		return false;
	unsigned char bin[16];
	return inet_pton(AF_INET, name, bin) != 1;
}

void smtp_rdns_reverse_name(int family, const unsigned char *ip, char *out, size_t size)
{
	if (family == AF_INET) {
		snprintf(out, size, "%u.%u.%u.%u.in-addr.arpa", ip[3], ip[2], ip[1], ip[0]);
		return;
	}
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (int i = 15; i >= 0 && o + 4 < size; i--) {
		out[o++] = hex[ip[i] & 15];
		out[o++] = '.';
		out[o++] = hex[ip[i] >> 4];
		out[o++] = '.';
	}
	snprintf(out + o, size - o, "ip6.arpa");
}

const char *smtp_rdns_status_name(enum smtp_rdns_status status)
{
	static const char *const names[] = {"OK", "FAIL", "FORGED", "TEMP"};
	return (unsigned)status < 4 ? names[status] : "TEMP";
}

/* ---- the lookups ---- */

static void rdns_finish(struct smtp_rdns *r)
{
	struct smtp_rdns_candidate c[SMTP_RDNS_NAMES_MAX];
	for (size_t i = 0; i < r->n; i++)
		c[i] = (struct smtp_rdns_candidate){.name = r->names[i].name,
		                                    .status = r->names[i].status,
		                                    .records = r->names[i].records,
		                                    .count = r->names[i].count};
	r->status = smtp_rdns_confirm(r->family, r->ip, r->ptr_status, c, r->n, &r->match);
	r->done = true;
	log_info("session=%s proto=smtp event=rdns ip=%s ptr=%s name=%s result=%s", r->id,
	         r->ip_text, smtp_rdns_ptr(r->s), smtp_rdns_name(r->s),
	         smtp_rdns_status_name(r->status));
}

static void rdns_addr_answer(const struct dns_result *res, void *ctx)
{
	struct smtp_rdns_name *nm = ctx;
	struct smtp_rdns *r = nm->r;
	nm->lookup = NULL;
	nm->status = res->status;
	if (res->status == DNS_STATUS_OK && res->count > 0) {
		nm->records = xcalloc(res->count, sizeof(*nm->records));
		for (size_t i = 0; i < res->count; i++)
			if (res->records[i].type == DNS_TYPE_A ||
			    res->records[i].type == DNS_TYPE_AAAA)
				nm->records[nm->count++] =
				    res->records[i]; /* addr is held by value */
	}
	if (--r->pending == 0)
		rdns_finish(r);
}

static void rdns_ptr_answer(const struct dns_result *res, void *ctx)
{
	struct smtp_rdns *r = ctx;
	r->ptr_lookup = NULL;
	r->ptr_status = res->status;
	for (size_t i = 0; res->status == DNS_STATUS_OK && i < res->count; i++) {
		const char *name = res->records[i].u.ptr;
		bool seen = false;
		for (size_t k = 0; k < r->n; k++)
			seen |= strcmp(r->names[k].name, name) == 0;
		if (r->n == SMTP_RDNS_NAMES_MAX || res->records[i].type != DNS_TYPE_PTR || seen ||
		    !smtp_rdns_name_usable(name))
			continue;
		struct smtp_rdns_name *nm = &r->names[r->n++];
		nm->r = r;
		nm->status = DNS_STATUS_TEMPFAIL; /* until its answer */
		snprintf(nm->name, sizeof(nm->name), "%s", name);
	}
	const char *error = NULL;
	struct dns_resolver *res_ = dns_loop_resolver(conn_loop(r->s->conn), r->s->conf, &error);
	uint16_t type = r->family == AF_INET ? DNS_TYPE_A : DNS_TYPE_AAAA;
	r->pending = 1; /* held while the lookups start */
	for (size_t i = 0; i < r->n && res_ != NULL; i++) {
		r->names[i].lookup = dns_lookup(res_, r->names[i].name, type, rdns_addr_answer,
		                                &r->names[i], &error);
		if (r->names[i].lookup != NULL)
			r->pending++;
	}
	if (--r->pending == 0)
		rdns_finish(r);
}

void smtp_rdns_start(struct smtp_session *s)
{
	if (!s->conf->smtp_peername_lookup)
		return;
	struct smtp_rdns *r = xcalloc(1, sizeof(*r));
	r->s = s;
	r->status = SMTP_RDNS_TEMP;
	s->rdns = r;
	const char *text = conn_remote_ip(s->conn);
	snprintf(r->id, sizeof(r->id), "%s", conn_id(s->conn));
	snprintf(r->ip_text, sizeof(r->ip_text), "%s", text);
	r->family = AF_INET;
	if (inet_pton(AF_INET, text, r->ip) != 1) {
		r->family = AF_INET6;
		if (inet_pton(AF_INET6, text, r->ip) != 1) {
			r->ptr_status = DNS_STATUS_NXDOMAIN; /* not an address: no name */
			rdns_finish(r);
			return;
		}
	}
	char name[80];
	smtp_rdns_reverse_name(r->family, r->ip, name, sizeof(name));
	const char *error = NULL;
	struct dns_resolver *res = dns_loop_resolver(conn_loop(s->conn), s->conf, &error);
	if (res != NULL)
		r->ptr_lookup = dns_lookup(res, name, DNS_TYPE_PTR, rdns_ptr_answer, r, &error);
	if (r->ptr_lookup == NULL) {
		SMTP_LOG(s, "event=rdns ip=%s result=error reason=\"%s\"", text,
		         error != NULL ? error : "no resolver");
		r->ptr_status = DNS_STATUS_TEMPFAIL;
		r->done = true;
	}
}

const char *smtp_rdns_name(const struct smtp_session *s)
{
	const struct smtp_rdns *r = s->rdns;
	if (r == NULL || !r->done || r->status != SMTP_RDNS_OK)
		return "unknown";
	return r->names[r->match].name;
}

const char *smtp_rdns_ptr(const struct smtp_session *s)
{
	const struct smtp_rdns *r = s->rdns;
	if (r == NULL || r->n == 0)
		return "unknown";
	return r->done && r->status == SMTP_RDNS_OK ? r->names[r->match].name : r->names[0].name;
}

enum smtp_rdns_status smtp_rdns_status(const struct smtp_session *s)
{
	const struct smtp_rdns *r = s->rdns;
	if (r == NULL)
		return SMTP_RDNS_FAIL;
	return r->done ? r->status : SMTP_RDNS_TEMP;
}

void smtp_rdns_free(struct smtp_session *s)
{
	struct smtp_rdns *r = s->rdns;
	if (r == NULL)
		return;
	if (!r->done) /* the client left first */
		log_info(
		    "session=%s proto=smtp event=rdns ip=%s ptr=%s name=unknown result=unfinished",
		    r->id, r->ip_text, smtp_rdns_ptr(s));
	dns_lookup_cancel(&r->ptr_lookup);
	for (size_t i = 0; i < r->n; i++) {
		dns_lookup_cancel(&r->names[i].lookup);
		free(r->names[i].records);
	}
	free(r);
	s->rdns = NULL;
}
