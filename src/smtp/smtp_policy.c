/* Flood and abuse defence of the SMTP server (smtp_policy.h): the hooks the session calls
 * and the decisions behind them. Greylisting state and submission counts live in the store
 * (store.h "SMTP policy state": shared by every process and node on PostgreSQL, kept over
 * restarts); per-IP rates are counted in memory (core/rate.h), per process. */
#include "smtp/smtp_policy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/rate.h"
#include "core/xmalloc.h"
#include "smtp/smtp_session.h"
#include "core/banned.h"

/* Most clients each rate table keeps at once (core/rate.h says what happens beyond). */
#define SMTP_POLICY_RATE_KEYS 100000
/* A passed triplet seen again is recorded as seen at most this often. */
#define SMTP_POLICY_GREYLIST_REFRESH 3600

struct smtp_policy {
	struct rate *connections; /* per minute */
	struct rate *messages;    /* per hour */
};

struct smtp_policy *smtp_policy_new(void)
{
	struct smtp_policy *p = xcalloc(1, sizeof(*p));
	p->connections = rate_new(60, SMTP_POLICY_RATE_KEYS);
	p->messages = rate_new(3600, SMTP_POLICY_RATE_KEYS);
	return p;
}

void smtp_policy_free(struct smtp_policy **policy)
{
	if (*policy == NULL)
		return;
	rate_free(&(*policy)->connections);
	rate_free(&(*policy)->messages);
	free(*policy);
	*policy = NULL;
}

/* ---- decisions ---- */

void smtp_policy_network(const char *ip, bool full, char *out, size_t size)
{
	unsigned char a[4];
	rate_ip_key(ip, out, size);
	/* an IPv4 address (or a mapped one): its /24 unless full */
	if (!full && size > 0 && inet_pton(AF_INET, out, a) == 1)
		snprintf(out, size, "%u.%u.%u", a[0], a[1], a[2]);
}

/* Append text lower-cased at *len; false when out is full. */
static bool smtp_policy_put_lower(char *out, size_t size, size_t *len, const char *text)
{
	for (const char *p = text; *p != '\0'; p++) {
		if (*len + 1 >= size)
			return false;
		out[(*len)++] = (char)tolower((unsigned char)*p);
	}
	out[*len] = '\0';
	return true;
}

int smtp_policy_triplet(char *out, size_t size, const char *sender, const char *recipient,
                        const char *ip)
{
	char net[64];
	size_t len = 0;
	if (size == 0)
		return -1;
	out[0] = '\0';
	smtp_policy_network(ip, false, net, sizeof(net));
	if (!smtp_policy_put_lower(out, size, &len, sender) ||
	    !smtp_policy_put_lower(out, size, &len, "/") ||
	    !smtp_policy_put_lower(out, size, &len, recipient) ||
	    !smtp_policy_put_lower(out, size, &len, "/") ||
	    !smtp_policy_put_lower(out, size, &len, net))
		return -1;
	return 0;
}

enum smtp_greylist_verdict smtp_policy_greylist_decide(int found,
                                                       const struct store_policy_greylist *entry,
                                                       time_t now, unsigned delay, unsigned expire)
{
	if (found != 1 || now - entry->last_seen >= (time_t)expire)
		return SMTP_GREYLIST_DEFER_NEW;
	if (entry->passed)
		return now - entry->last_seen >= SMTP_POLICY_GREYLIST_REFRESH
		           ? SMTP_GREYLIST_PASS_NOTE
		           : SMTP_GREYLIST_PASS;
	return now - entry->first_seen >= (time_t)delay ? SMTP_GREYLIST_PASS_NOTE
	                                                : SMTP_GREYLIST_DEFER;
}

/* ---- hooks ---- */

static bool smtp_policy_port25(const struct smtp_session *s)
{
	return s->kind == CONF_LISTENER_SMTP && !s->authenticated;
}

bool smtp_policy_connect(struct smtp_session *s)
{
	unsigned limit = s->conf->smtp_connection_rate_per_ip;
	if (s->kind != CONF_LISTENER_SMTP || limit == 0)
		return false;
	char key[64];
	const char *ip = conn_remote_ip(s->conn);
	smtp_policy_network(ip, true, key, sizeof(key));
	if (rate_hit(s->server->policy->connections, key, limit, time(NULL)))
		return false;
	log_warn("session=%s proto=smtp event=disconnect reason=connection-rate ip=%s limit=%u",
	         conn_id(s->conn), ip, limit);
	smtp_session_close(s, "421 4.7.0 Error: too many connections from your address, try "
	                      "again later");
	return true;
}

bool smtp_policy_mail(struct smtp_session *s)
{
	unsigned limit = s->conf->smtp_message_rate_per_ip;
	if (!smtp_policy_port25(s) || limit == 0)
		return false;
	char key[64];
	const char *ip = conn_remote_ip(s->conn);
	smtp_policy_network(ip, true, key, sizeof(key));
	if (rate_hit(s->server->policy->messages, key, limit, time(NULL)))
		return false;
	SMTP_LOG(s, "event=mail result=450 reason=message-rate ip=%s limit=%u", ip, limit);
	smtp_reply(s, "450 4.7.1 Error: too much mail from your address, try again later");
	return true;
}

/* Submission rates apply to authenticated sessions with a limit set. */
static bool smtp_policy_counts_submissions(const struct smtp_session *s)
{
	return smtp_session_is_submission(s) && s->authenticated && s->account_id != 0 &&
	       (s->conf->submission_messages_per_day > 0 ||
	        s->conf->submission_recipients_per_day > 0);
}

/* Postgrey's client auto-whitelist: each triplet that passes the greylist is also noted
 * under "client NET|TRIPLET" (no triplet starts so: an unquoted sender has no space), so
 * the passes of a client network are a key range of the same table, expiring alike. */
static int smtp_policy_client_key(const struct smtp_session *s, const char *triplet, char *out,
                                  size_t size)
{
	char net[64];
	smtp_policy_network(conn_remote_ip(s->conn), false, net, sizeof(net));
	int n = snprintf(out, size, "client %s|%s", net, triplet);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

static int64_t smtp_policy_client_passes(struct smtp_session *s)
{
	char key[128];
	uint64_t n;
	if (smtp_policy_client_key(s, "", key, sizeof(key)) < 0 ||
	    store_policy_greylist_count(s->server->store, key, &n) < 0)
		return -1;
	return (int64_t)n;
}

void smtp_policy_rcpt_read(struct smtp_session *s)
{
	struct smtp_policy_state *p = &s->policy;
	struct store *store = s->server->store;
	p->triplet[0] = '\0';
	p->sub_read = false;
	/* An address that resolves to several accounts is greylisted when one of them wants
	 * it (a deferral loses nothing: the retry passes). */
	bool grey = false;
	for (size_t i = 0; i < s->read_rcpt.count && s->read_found == 1; i++)
		grey = grey || s->read_policies[i].greylisting;
	if (smtp_policy_port25(s) && grey && s->mail_from != NULL && !smtp_dnsbl_allowlisted(s)) {
		if (smtp_policy_triplet(p->triplet, sizeof(p->triplet), s->mail_from, s->read_addr,
		                        conn_remote_ip(s->conn)) < 0)
			p->triplet[0] = '\0'; /* cannot be longer than addresses may be */
		else
			p->grey_found = store_policy_greylist_get(store, p->triplet, &p->grey);
		p->client_passes = -1;
		if (s->conf->greylist_auto_whitelist_clients > 0 &&
		    !(p->grey_found == 1 && p->grey.passed))
			p->client_passes = smtp_policy_client_passes(s);
	}
	if (smtp_policy_counts_submissions(s)) {
		char lower[STORE_POLICY_TRIPLET_MAX + 1];
		size_t len = 0;
		p->sub_read = true;
		p->sub_ret =
		    store_policy_submissions(store, s->account_id, (int64_t)time(NULL) - 86400,
		                             &p->sub_messages, &p->sub_new);
		p->rcpt_known = smtp_policy_put_lower(lower, sizeof(lower), &len, s->read_addr)
		                    ? store_policy_recipient_known(store, s->account_id, lower)
		                    : -1;
	}
}

/* Port 25: too many unknown recipients in this session? Then 421 and close. */
static bool smtp_policy_unknown_rcpt(struct smtp_session *s)
{
	unsigned max = s->conf->smtp_invalid_recipients_max;
	if (!smtp_policy_port25(s) || max == 0 || ++s->policy.invalid_rcpts <= max)
		return false;
	SMTP_LOG(s, "event=disconnect reason=too-many-invalid-recipients count=%u",
	         s->policy.invalid_rcpts);
	smtp_session_close(s, "421 4.7.0 Error: too many invalid recipients, closing connection");
	return true;
}

/* Port 25, a valid local recipient: refused by its accounts' policies (a listed client,
 * an SPF fail) when the session was not refused earlier for every recipient? */
static bool smtp_policy_refused(struct smtp_session *s, const char *to)
{
	const char *reply = smtp_dnsbl_rcpt_reply(s, s->read_policies, s->read_rcpt.count);
	const char *reason = "dnsbl";
	if (reply == NULL) {
		reply = smtp_checks_rcpt_reply(s, s->read_policies, s->read_rcpt.count);
		reason = "spf";
	}
	if (reply == NULL)
		return false;
	SMTP_LOG(s, "event=rcpt to=<%s> result=%.3s reason=%s", to, reply, reason);
	smtp_reply(s, reply);
	return true;
}

static bool smtp_policy_greylist(struct smtp_session *s, const char *to)
{
	struct smtp_policy_state *p = &s->policy;
	if (p->triplet[0] == '\0')
		return false;
	if (p->grey_found < 0) {
		log_warn("session=%s proto=smtp event=greylist result=pass reason=store-error",
		         conn_id(s->conn));
		return false; /* let mail through rather than defer everything */
	}
	time_t now = time(NULL);
	const struct conf *c = s->conf;
	enum smtp_greylist_verdict v = smtp_policy_greylist_decide(
	    p->grey_found, &p->grey, now, c->greylist_delay, c->greylist_expire);
	int64_t expired = (int64_t)now - (int64_t)c->greylist_expire;
	if ((v == SMTP_GREYLIST_DEFER || v == SMTP_GREYLIST_DEFER_NEW) &&
	    c->greylist_auto_whitelist_clients > 0 &&
	    p->client_passes >= (int64_t)c->greylist_auto_whitelist_clients) {
		char net[64];
		smtp_policy_network(conn_remote_ip(s->conn), false, net, sizeof(net));
		SMTP_LOG(
		    s,
		    "event=rcpt to=<%s> greylist=pass reason=auto-whitelist client=%s passes=%lld",
		    to, net, (long long)p->client_passes);
		return false;
	}
	if (v == SMTP_GREYLIST_PASS_NOTE || v == SMTP_GREYLIST_DEFER_NEW)
		store_policy_greylist_note(s->server->store, p->triplet,
		                           v == SMTP_GREYLIST_PASS_NOTE, (int64_t)now, expired);
	char key[STORE_POLICY_TRIPLET_MAX + 80];
	if (v == SMTP_GREYLIST_PASS_NOTE && p->grey_found == 1 && !p->grey.passed &&
	    c->greylist_auto_whitelist_clients > 0 &&
	    smtp_policy_client_key(s, p->triplet, key, sizeof(key)) == 0)
		store_policy_greylist_note(s->server->store, key, true, (int64_t)now, expired);
	if (v == SMTP_GREYLIST_PASS || v == SMTP_GREYLIST_PASS_NOTE)
		return false;
	SMTP_LOG(s, "event=rcpt to=<%s> result=451 reason=greylist triplet=%s", to, p->triplet);
	smtp_reply(s, "451 4.7.1 Greylisted, try again later");
	return true;
}

static bool smtp_policy_submission(struct smtp_session *s, const char *to)
{
	struct smtp_policy_state *p = &s->policy;
	const struct conf *c = s->conf;
	if (!p->sub_read || p->sub_ret < 0)
		return false; /* nothing read (or it failed: not the sender's fault) */
	if (s->rcpt_count == 0)
		p->tx_new = 0;
	if (c->submission_messages_per_day > 0 &&
	    p->sub_messages >= c->submission_messages_per_day) {
		SMTP_LOG(s,
		         "event=rcpt to=<%s> result=451 reason=messages-per-day user=%s limit=%u",
		         to, s->auth_user, c->submission_messages_per_day);
		smtp_replyf(s,
		            "451 4.7.1 Error: %u messages sent in the last 24 hours is the limit, "
		            "try again later",
		            c->submission_messages_per_day);
		return true;
	}
	if (p->rcpt_known != 0)
		return false;
	if (c->submission_recipients_per_day > 0 &&
	    p->sub_new + p->tx_new >= c->submission_recipients_per_day) {
		SMTP_LOG(
		    s,
		    "event=rcpt to=<%s> result=451 reason=new-recipients-per-day user=%s limit=%u",
		    to, s->auth_user, c->submission_recipients_per_day);
		smtp_replyf(s,
		            "451 4.7.1 Error: %u new recipients in the last 24 hours is the limit, "
		            "try again later",
		            c->submission_recipients_per_day);
		return true;
	}
	p->tx_new++;
	return false;
}

bool smtp_policy_rcpt(struct smtp_session *s, const char *to)
{
	if (s->read_ret < 0)
		return false;
	if (s->read_ret == 1 && s->read_found == 0)
		return smtp_policy_unknown_rcpt(s);
	bool accepted = s->read_ret == 0 || (s->read_found == 1 && s->read_reply == NULL);
	if (!accepted)
		return false;
	if (s->read_ret == 0 && !smtp_session_is_submission(s))
		return false; /* relay denied follows */
	if (s->read_ret == 1 && smtp_policy_port25(s) && smtp_policy_refused(s, to))
		return true;
	return smtp_policy_greylist(s, to) || smtp_policy_submission(s, to);
}

void smtp_policy_delivering(struct smtp_session *s)
{
	if (!smtp_policy_counts_submissions(s))
		return;
	char **rcpts = xcalloc(s->rcpt_count + 1, sizeof(char *));
	for (size_t i = 0; i < s->rcpt_count; i++) {
		size_t n = strlen(s->rcpts[i].address), len = 0;
		rcpts[i] = xmalloc(n + 1);
		(void)smtp_policy_put_lower(rcpts[i], n + 1, &len, s->rcpts[i].address);
	}
	store_policy_submission_note(s->server->store, s->account_id, (const char *const *)rcpts,
	                             s->rcpt_count, (int64_t)time(NULL));
	for (size_t i = 0; i < s->rcpt_count; i++)
		free(rcpts[i]);
	free(rcpts);
}
