/* DNS block and allow lists at connect on port 25 (issue 12), as Postfix's postscreen: the
 * client's address is looked up in every zone of dnsbl_zones and dnswl_zones (smtp/dnsbl)
 * while the pregreet wait runs; the greeting waits for the answers. A client listed in an
 * allow list is never refused by a block list nor greylisted; a client listed in a block
 * list gets `554 5.7.1` instead of the greeting. A lookup that fails lists nobody. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "net/dns.h"
#include "smtp/dnsbl.h"
#include "smtp/smtp_session.h"
#include "core/banned.h"

#define DNSBL_LOOKUPS_MAX (2 * DNSBL_ZONES_MAX)

struct smtp_dnsbl {
	struct smtp_session *s;
	struct dnsbl_zone zones[DNSBL_LOOKUPS_MAX];
	bool allow[DNSBL_LOOKUPS_MAX]; /* a zone of dnswl_zones */
	struct smtp_dnsbl_lookup {
		struct smtp_dnsbl *d;
		size_t zone;
		struct dns_lookup *lookup;
	} lookups[DNSBL_LOOKUPS_MAX];
	size_t n, pending;
	char listed[DNSBL_NAME_MAX]; /* the first block list that lists the client, or "" */
	bool allowlisted;
	void (*ready)(struct smtp_session *s); /* the greeting waits for the answers */
};

/* Parse one list of zones into d; a bad list is logged and left out. */
static void dnsbl_add_zones(struct smtp_dnsbl *d, const char *text, bool allow, const char *key)
{
	size_t n = 0;
	const char *error = NULL;
	if (text[0] == '\0')
		return;
	if (dnsbl_zones_parse(text, d->zones + d->n, DNSBL_ZONES_MAX, &n, &error) < 0) {
		log_error("%s: %s; the lists are not used", key, error);
		return;
	}
	for (size_t i = 0; i < n; i++)
		d->allow[d->n + i] = allow;
	d->n += n;
}

static void dnsbl_answer(const struct dns_result *r, void *ctx)
{
	struct smtp_dnsbl_lookup *l = ctx;
	struct smtp_dnsbl *d = l->d;
	struct smtp_session *s = d->s;
	l->lookup = NULL;
	d->pending--;
	const struct dnsbl_zone *z = &d->zones[l->zone];
	unsigned char(*addrs)[4] = xcalloc(r->count + 1, sizeof(*addrs));
	size_t n = 0;
	for (size_t i = 0; r->status == DNS_STATUS_OK && i < r->count; i++)
		if (r->records[i].type == DNS_TYPE_A)
			memcpy(addrs[n++], r->records[i].u.addr.bytes, 4);
	enum dnsbl_verdict v = dnsbl_verdict(z, (const unsigned char(*)[4])addrs, n);
	free(addrs);
	if (r->status == DNS_STATUS_TEMPFAIL || r->status == DNS_STATUS_BOGUS)
		log_info("session=%s proto=smtp event=dnsbl zone=%s result=error reason=\"%s\"",
		         conn_id(s->conn), z->name, r->reason != NULL ? r->reason : "");
	else if (v == DNSBL_REFUSED)
		log_warn(
		    "session=%s proto=smtp event=dnsbl zone=%s result=refused (the list refuses "
		    "our queries: use a resolver of your own)",
		    conn_id(s->conn), z->name);
	else if (v == DNSBL_LISTED) {
		SMTP_LOG(s, "event=dnsbl zone=%s ip=%s result=listed list=%s", z->name,
		         conn_remote_ip(s->conn), d->allow[l->zone] ? "allow" : "block");
		if (d->allow[l->zone])
			d->allowlisted = true;
		else if (d->listed[0] == '\0')
			snprintf(d->listed, sizeof(d->listed), "%s", z->name);
	}
	if (d->pending == 0 && d->ready != NULL) {
		void (*ready)(struct smtp_session *) = d->ready;
		d->ready = NULL;
		ready(s);
	}
}

void smtp_dnsbl_start(struct smtp_session *s)
{
	if (s->kind != CONF_LISTENER_SMTP ||
	    (s->conf->dnsbl_zones[0] == '\0' && s->conf->dnswl_zones[0] == '\0'))
		return;
	struct smtp_dnsbl *d = xcalloc(1, sizeof(*d));
	d->s = s;
	s->dnsbl = d;
	dnsbl_add_zones(d, s->conf->dnswl_zones, true, "dnswl_zones");
	dnsbl_add_zones(d, s->conf->dnsbl_zones, false, "dnsbl_zones");
	unsigned char ip[16] = {0};
	int family = AF_INET;
	const char *text = conn_remote_ip(s->conn);
	if (inet_pton(AF_INET, text, ip) != 1) {
		family = AF_INET6;
		if (inet_pton(AF_INET6, text, ip) != 1)
			return;
	}
	const char *error = NULL;
	struct dns_resolver *res = dns_loop_resolver(conn_loop(s->conn), s->conf, &error);
	for (size_t i = 0; i < d->n && res != NULL; i++) {
		char name[DNSBL_NAME_MAX];
		if (dnsbl_query_name(family, ip, &d->zones[i], name, sizeof(name)) < 0)
			continue;
		struct smtp_dnsbl_lookup *l = &d->lookups[i];
		l->d = d;
		l->zone = i;
		l->lookup = dns_lookup(res, name, DNS_TYPE_A, dnsbl_answer, l, &error);
		if (l->lookup != NULL)
			d->pending++;
	}
	if (res == NULL || error != NULL)
		log_info("session=%s proto=smtp event=dnsbl result=error reason=\"%s\"",
		         conn_id(s->conn), error != NULL ? error : "no resolver");
}

bool smtp_dnsbl_wait(struct smtp_session *s, void (*ready)(struct smtp_session *s))
{
	struct smtp_dnsbl *d = s->dnsbl;
	if (d == NULL || d->pending == 0)
		return false;
	d->ready = ready;
	return true;
}

const char *smtp_dnsbl_refusal(struct smtp_session *s)
{
	struct smtp_dnsbl *d = s->dnsbl;
	if (d == NULL || d->allowlisted || d->listed[0] == '\0')
		return NULL;
	char *reply = arena_alloc(s->arena, 512);
	/* Postfix's wording, so that senders' tools recognise it. */
	snprintf(reply, 512, "554 5.7.1 Service unavailable; client [%s] blocked using %s",
	         conn_remote_ip(s->conn), d->listed);
	return reply;
}

bool smtp_dnsbl_allowlisted(const struct smtp_session *s)
{
	return s->dnsbl != NULL && s->dnsbl->allowlisted;
}

void smtp_dnsbl_free(struct smtp_session *s)
{
	struct smtp_dnsbl *d = s->dnsbl;
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->n; i++)
		dns_lookup_cancel(&d->lookups[i].lookup);
	free(d);
	s->dnsbl = NULL;
}
