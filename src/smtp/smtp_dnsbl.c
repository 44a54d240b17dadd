/* DNS block and allow lists at connect on port 25 (issue 12), as Postfix's postscreen: the
 * client's address is looked up in every zone of dnsbl_zones and dnswl_zones (smtp/dnsbl)
 * while the pregreet wait runs; the greeting waits for the answers. A client listed in an
 * allow list is never refused by a block list nor greylisted; a client listed in a block
 * list gets `554 5.7.1` instead of the greeting, or at RCPT when some recipient's policy
 * (conf_policy.h `dnsbl`) does not refuse listed clients: then each recipient whose policy
 * does. A lookup that fails lists nobody. The lists are parsed once per configuration. */
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

/* The zones of dnswl_zones then dnsbl_zones, parsed once per configuration
 * (smtp_dnsbl_conf_prepare()) and shared by the sessions that use it. */
struct smtp_dnsbl_lists {
	struct dnsbl_zone zones[DNSBL_LOOKUPS_MAX];
	bool allow[DNSBL_LOOKUPS_MAX]; /* a zone of dnswl_zones */
	size_t n;
};

struct smtp_dnsbl {
	struct smtp_session *s;
	const struct smtp_dnsbl_lists *lists; /* s->conf's */
	struct smtp_dnsbl_lookup {
		struct smtp_dnsbl *d;
		size_t zone;
		struct dns_lookup *lookup;
	} lookups[DNSBL_LOOKUPS_MAX];
	size_t pending;
	char listed[DNSBL_NAME_MAX]; /* the first block list that lists the client, or "" */
	bool allowlisted;
	void (*ready)(struct smtp_session *s); /* the greeting waits for the answers */
};

/* Parse one list of zones into l: 0, or -1 with *error_r (static text). */
static int dnsbl_add_zones(struct smtp_dnsbl_lists *l, const char *text, bool allow,
                           const char **error_r)
{
	size_t n = 0;
	if (text[0] == '\0')
		return 0;
	if (dnsbl_zones_parse(text, l->zones + l->n, DNSBL_ZONES_MAX, &n, error_r) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		l->allow[l->n + i] = allow;
	l->n += n;
	return 0;
}

/* Both lists of conf into a new lists (malloc'd): 0, or -1 with *key_r naming the bad
 * setting and *error_r (static text). */
static int dnsbl_lists_parse(const struct conf *conf, struct smtp_dnsbl_lists **lists_r,
                             const char **key_r, const char **error_r)
{
	struct smtp_dnsbl_lists *l = xcalloc(1, sizeof(*l));
	*key_r = "dnswl_zones";
	int r = dnsbl_add_zones(l, conf->dnswl_zones, true, error_r);
	if (r == 0) {
		*key_r = "dnsbl_zones";
		r = dnsbl_add_zones(l, conf->dnsbl_zones, false, error_r);
	}
	if (r < 0) {
		free(l);
		return -1;
	}
	*lists_r = l;
	return 0;
}

static void dnsbl_lists_free(void *lists)
{
	free(lists);
}

int smtp_dnsbl_check_conf(const struct conf *conf, char *error, size_t size)
{
	struct smtp_dnsbl_lists *l;
	const char *key, *why;
	if (dnsbl_lists_parse(conf, &l, &key, &why) < 0) {
		snprintf(error, size, "%s: %s", key, why);
		return -1;
	}
	free(l);
	return 0;
}

void smtp_dnsbl_conf_prepare(struct conf *conf)
{
	if (conf->smtp_derived_free != NULL)
		return;
	struct smtp_dnsbl_lists *l;
	const char *key, *why;
	if (dnsbl_lists_parse(conf, &l, &key, &why) < 0) {
		log_error("%s: %s; the lists are not used", key, why);
		l = xcalloc(1, sizeof(*l));
	}
	conf->smtp_derived = l;
	conf->smtp_derived_free = dnsbl_lists_free;
}

static void dnsbl_answer(const struct dns_result *r, void *ctx)
{
	struct smtp_dnsbl_lookup *l = ctx;
	struct smtp_dnsbl *d = l->d;
	struct smtp_session *s = d->s;
	l->lookup = NULL;
	d->pending--;
	const struct dnsbl_zone *z = &d->lists->zones[l->zone];
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
		         conn_remote_ip(s->conn), d->lists->allow[l->zone] ? "allow" : "block");
		if (d->lists->allow[l->zone])
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
	const struct smtp_dnsbl_lists *lists = s->conf->smtp_derived;
	if (s->kind != CONF_LISTENER_SMTP || lists == NULL || lists->n == 0)
		return;
	struct smtp_dnsbl *d = xcalloc(1, sizeof(*d));
	d->s = s;
	d->lists = lists;
	s->dnsbl = d;
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
	for (size_t i = 0; i < lists->n && res != NULL; i++) {
		char name[DNSBL_NAME_MAX];
		if (dnsbl_query_name(family, ip, &lists->zones[i], name, sizeof(name)) < 0)
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

/* The refusal of a listed client (in arena), or NULL. */
static const char *dnsbl_reply(struct smtp_session *s, struct arena *arena)
{
	struct smtp_dnsbl *d = s->dnsbl;
	if (d == NULL || d->allowlisted || d->listed[0] == '\0')
		return NULL;
	char *reply = arena_alloc(arena, 512);
	/* Postfix's wording, so that senders' tools recognise it. */
	snprintf(reply, 512, "554 5.7.1 Service unavailable; client [%s] blocked using %s",
	         conn_remote_ip(s->conn), d->listed);
	return reply;
}

const char *smtp_dnsbl_refusal(struct smtp_session *s)
{
	/* Some recipient's policy does not refuse listed clients: refused at RCPT instead. */
	if (!s->conf->policies.all.dnsbl)
		return NULL;
	return dnsbl_reply(s, s->arena);
}

const char *smtp_dnsbl_rcpt_reply(struct smtp_session *s, const struct conf_policy *policies,
                                  size_t n)
{
	if (s->conf->policies.all.dnsbl || n == 0)
		return NULL; /* refused at the greeting, if at all */
	for (size_t i = 0; i < n; i++)
		if (!policies[i].dnsbl)
			return NULL;
	return dnsbl_reply(s, s->cmd);
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
	for (size_t i = 0; i < d->lists->n; i++)
		dns_lookup_cancel(&d->lookups[i].lookup);
	free(d);
	s->dnsbl = NULL;
}
