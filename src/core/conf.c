/* posthorn.conf reader: a key table maps each setting to a typed field of struct conf, so a
 * new setting is one table row plus its documentation in docs/config.md. */
#include "core/conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/xmalloc.h"
#include "core/banned.h"

#define CONF_FILE_MAX (1024 * 1024)

enum conf_type {
	T_STRING,
	T_PATH,
	T_UINT,
	T_SIZE,
	T_BYTES64,
	T_SECONDS,
	T_BOOL,
	T_LOGLEVEL,
	T_BARE_LF,
	T_MILTER_ACTION,
	T_OUTBOUND_IP,
	T_LISTEN,
	T_EXPIRE,
	T_DNS_RESOLVER,
	T_DNS_ANCHOR,
	T_MILTER_ADDRESS,
	T_RSPAMD_URL,
	T_MIN_FREE,
	T_TLS_SNI
};

struct conf_key {
	const char *name;
	enum conf_type type;
	size_t offset;
	uint64_t min, max; /* for numbers */
	int listener;      /* for T_LISTEN */
};

#define OFF(field) offsetof(struct conf, field)
#define LIM(field) (offsetof(struct conf, limits) + offsetof(struct limits, field))

static const struct conf_key conf_keys[] = {
    {"hostname", T_STRING, OFF(hostname), 0, 0, 0},
    {"data_dir", T_PATH, OFF(data_dir), 0, 0, 0},
    {"store", T_STRING, OFF(store_engine), 0, 0, 0},
    {"store_url", T_STRING, OFF(store_url), 0, 0, 0},
    {"tls_cert", T_PATH, OFF(tls_cert), 0, 0, 0},
    {"tls_key", T_PATH, OFF(tls_key), 0, 0, 0},
    {"tls_sni", T_TLS_SNI, OFF(tls_sni), 0, 0, 0},
    {"user", T_STRING, OFF(run_user), 0, 0, 0},
    {"threads", T_UINT, OFF(threads), 0, 256, 0},
    {"log_level", T_LOGLEVEL, OFF(log_level), 0, 0, 0},
    {"log_syslog", T_BOOL, OFF(log_syslog), 0, 0, 0},
    {"allow_plaintext_auth", T_BOOL, OFF(allow_plaintext_auth), 0, 0, 0},
    {"smtp_bare_lf", T_BARE_LF, OFF(smtp_bare_lf), 0, 0, 0},
    {"smtp_vrfy", T_BOOL, OFF(vrfy_enabled), 0, 0, 0},
    {"default_quota", T_BYTES64, OFF(default_quota), 0, UINT64_MAX, 0},
    {"store_inline_max", T_BYTES64, OFF(store_inline_max), 0, 64u << 20, 0},
    {"store_read_threads", T_UINT, OFF(store_read_threads), 0, 32, 0},
    {"min_free_space", T_MIN_FREE, OFF(min_free_space), 0, (uint64_t)1 << 50, 0},
    {"search_index_max_text", T_BYTES64, OFF(search_index_max_text), 0, 64u << 20, 0},
    {"queue_lease_time", T_SECONDS, OFF(queue_lease_time), 10, 86400, 0},
    {"smtp_listen", T_LISTEN, 0, 0, 0, CONF_LISTENER_SMTP},
    {"submission_listen", T_LISTEN, 0, 0, 0, CONF_LISTENER_SUBMISSION},
    {"submissions_listen", T_LISTEN, 0, 0, 0, CONF_LISTENER_SUBMISSIONS},
    {"pop3_listen", T_LISTEN, 0, 0, 0, CONF_LISTENER_POP3},
    {"pop3s_listen", T_LISTEN, 0, 0, 0, CONF_LISTENER_POP3S},
    {"imap_listen", T_LISTEN, 0, 0, 0, CONF_LISTENER_IMAP},
    {"imaps_listen", T_LISTEN, 0, 0, 0, CONF_LISTENER_IMAPS},
    {"pop3_apop", T_BOOL, OFF(pop3_apop), 0, 0, 0},
    {"pop3_expire", T_EXPIRE, OFF(pop3_expire), 0, 100000, 0},
    {"pop3_login_delay", T_SECONDS, OFF(pop3_login_delay), 0, 86400, 0},
    {"imap_progress_interval", T_SECONDS, OFF(imap_progress_interval), 0, 3600, 0},
    {"imap_notify_max_pending", T_UINT, OFF(imap_notify_max_pending), 1, 100000, 0},
    {"imap_message_limit", T_UINT, OFF(imap_message_limit), 0, 1000000000, 0},
    {"imap_expunge_retention", T_SECONDS, OFF(imap_expunge_retention), 0, 86400 * 3650, 0},
    {"auth_workers", T_UINT, OFF(auth_workers), 0, 64, 0},
    {"auth_cache_ttl", T_SECONDS, OFF(auth_cache_ttl), 0, 86400 * 7, 0},
    {"auth_cache_size", T_UINT, OFF(auth_cache_size), 0, 10000000, 0},
    {"limit_command_line", T_SIZE, LIM(command_line), 512, 65536, 0},
    {"limit_recipients", T_UINT, LIM(recipients), 1, 100000, 0},
    {"limit_errors", T_UINT, LIM(errors), 1, 1000, 0},
    {"limit_request_timeout", T_SECONDS, LIM(request_timeout), 1, 86400, 0},
    {"limit_data_min_rate", T_SIZE, LIM(data_min_rate), 0, 1u << 30, 0},
    {"limit_message_size", T_BYTES64, LIM(message_size), 1024, (uint64_t)1 << 40, 0},
    {"limit_connections_per_ip", T_UINT, LIM(connections_per_ip), 0, 1000000, 0},
    {"limit_connections", T_UINT, LIM(connections), 1, 1000000, 0},
    {"limit_connection_rate_per_ip", T_UINT, LIM(connection_rate_per_ip), 0, 1000000, 0},
    {"limit_auth_failures", T_UINT, LIM(auth_failures), 1, 100, 0},
    {"limit_header_lines", T_UINT, LIM(header_lines), 16, 100000, 0},
    {"limit_pop3_idle_timeout", T_SECONDS, LIM(pop3_idle_timeout), 1, 86400, 0},
    {"limit_imap_idle_timeout", T_SECONDS, LIM(imap_idle_timeout), 1, 86400, 0},
    {"limit_tls_handshake_timeout", T_SECONDS, LIM(tls_handshake_timeout), 1, 3600, 0},
    {"limit_login_timeout", T_SECONDS, LIM(login_timeout), 1, 86400, 0},
    {"limit_login_commands", T_UINT, LIM(login_commands), 1, 10000, 0},
    {"limit_sessions_per_user_ip", T_UINT, LIM(sessions_per_user_ip), 0, 100000, 0},
    {"limit_metadata_size", T_SIZE, LIM(metadata_size), 1, 1u << 20, 0},
    {"limit_metadata_entries", T_UINT, LIM(metadata_entries), 1, 100000, 0},
    {"smtp_pregreet_wait", T_SECONDS, OFF(smtp_pregreet_wait), 0, 60, 0},
    {"smtp_peername_lookup", T_BOOL, OFF(smtp_peername_lookup), 0, 0, 0},
    {"greylisting", T_BOOL, OFF(greylisting), 0, 0, 0},
    {"dnsbl", T_BOOL, OFF(dnsbl), 0, 0, 0},
    {"greylist_delay", T_SECONDS, OFF(greylist_delay), 1, 86400, 0},
    {"greylist_expire", T_SECONDS, OFF(greylist_expire), 3600, 86400 * 365, 0},
    {"greylist_auto_whitelist_clients", T_UINT, OFF(greylist_auto_whitelist_clients), 0, 100000, 0},
    {"smtp_invalid_recipients_max", T_UINT, OFF(smtp_invalid_recipients_max), 0, 100000, 0},
    {"smtp_connection_rate_per_ip", T_UINT, OFF(smtp_connection_rate_per_ip), 0, 1000000, 0},
    {"smtp_message_rate_per_ip", T_UINT, OFF(smtp_message_rate_per_ip), 0, 10000000, 0},
    {"submission_messages_per_day", T_UINT, OFF(submission_messages_per_day), 0, 10000000, 0},
    {"submission_recipients_per_day", T_UINT, OFF(submission_recipients_per_day), 0, 10000000, 0},
    {"dns_resolver", T_DNS_RESOLVER, OFF(dns_resolver), 0, 0, 0},
    {"dns_trust_anchor", T_DNS_ANCHOR, OFF(dns_trust_anchor), 0, 0, 0},
    {"dns_timeout", T_SECONDS, OFF(dns_timeout), 1, 300, 0},
    {"inbound_checks", T_BOOL, OFF(inbound_checks), 0, 0, 0},
    {"spf_reject_fail", T_BOOL, OFF(spf_reject_fail), 0, 0, 0},
    {"dmarc_reject", T_BOOL, OFF(dmarc_reject), 0, 0, 0},
    {"dmarc_quarantine", T_BOOL, OFF(dmarc_quarantine), 0, 0, 0},
    {"dkim_verify_max_signatures", T_UINT, OFF(dkim_verify_max_signatures), 1, 100, 0},
    {"inbound_checks_skip_domains", T_STRING, OFF(inbound_checks_skip_domains), 0, 0, 0},
    {"arc_trusted_sealers", T_STRING, OFF(arc_trusted_sealers), 0, 0, 0},
    {"dnsbl_zones", T_STRING, OFF(dnsbl_zones), 0, 0, 0},
    {"dnswl_zones", T_STRING, OFF(dnswl_zones), 0, 0, 0},
    {"milter", T_MILTER_ADDRESS, OFF(milter), 0, 0, 0},
    {"milter_timeout", T_SECONDS, OFF(milter_timeout), 1, 3600, 0},
    {"milter_default_action", T_MILTER_ACTION, OFF(milter_default_action), 0, 0, 0},
    {"rspamd_url", T_RSPAMD_URL, OFF(rspamd_url), 0, 0, 0},
    {"rspamd_timeout", T_SECONDS, OFF(rspamd_timeout), 1, 3600, 0},
    {"rspamd_default_action", T_MILTER_ACTION, OFF(rspamd_default_action), 0, 0, 0},
    {"rspamd_junk", T_BOOL, OFF(rspamd_junk), 0, 0, 0},
    {"public_suffix_list", T_PATH, OFF(public_suffix_list), 0, 0, 0},
    {"outbound_enabled", T_BOOL, OFF(outbound_enabled), 0, 0, 0},
    {"outbound_port", T_UINT, OFF(outbound_port), 1, 65535, 0},
    {"outbound_mx_max", T_UINT, OFF(outbound_mx_max), 1, 100, 0},
    {"outbound_ip", T_OUTBOUND_IP, OFF(outbound_ip), 0, 0, 0},
    {"outbound_concurrency", T_UINT, OFF(outbound_concurrency), 1, 100000, 0},
    {"outbound_domain_concurrency", T_UINT, OFF(outbound_domain_concurrency), 1, 100000, 0},
    {"outbound_connection_cache_time", T_SECONDS, OFF(outbound_connection_cache_time), 0, 300, 0},
    {"queue_retry_min", T_SECONDS, OFF(queue_retry_min), 1, 86400 * 7, 0},
    {"queue_retry_max", T_SECONDS, OFF(queue_retry_max), 1, 86400 * 7, 0},
    {"queue_lifetime", T_SECONDS, OFF(queue_lifetime), 0, 86400 * 365, 0},
    {"outbound_routes", T_STRING, OFF(outbound_routes), 0, 0, 0},
    {"mta_sts_port", T_UINT, OFF(mta_sts_port), 1, 65535, 0},
    {"outbound_tls_required", T_STRING, OFF(outbound_tls_required), 0, 0, 0},
    {"smarthost", T_STRING, OFF(smarthost), 0, 0, 0},
    {"smarthost_tls", T_STRING, OFF(smarthost_tls), 0, 0, 0},
    {"smarthost_tls_verify", T_BOOL, OFF(smarthost_tls_verify), 0, 0, 0},
    {"smarthost_user", T_STRING, OFF(smarthost_user), 0, 0, 0},
    {"smarthost_password", T_STRING, OFF(smarthost_password), 0, 0, 0},
    {"smarthost_password_file", T_STRING, OFF(smarthost_password_file), 0, 0, 0},
    {"queue_delay_warning", T_SECONDS, OFF(queue_delay_warning), 0, 86400 * 365, 0},
    {"outbound_connect_timeout", T_SECONDS, OFF(outbound_connect_timeout), 1, 3600, 0},
    {"outbound_greeting_timeout", T_SECONDS, OFF(outbound_greeting_timeout), 1, 86400, 0},
    {"outbound_command_timeout", T_SECONDS, OFF(outbound_command_timeout), 1, 86400, 0},
    {"outbound_data_init_timeout", T_SECONDS, OFF(outbound_data_init_timeout), 1, 86400, 0},
    {"outbound_data_block_timeout", T_SECONDS, OFF(outbound_data_block_timeout), 1, 86400, 0},
    {"outbound_data_done_timeout", T_SECONDS, OFF(outbound_data_done_timeout), 1, 86400, 0},
    {"outbound_tls_ca_file", T_PATH, OFF(outbound_tls_ca_file), 0, 0, 0},
    {"tlsrpt_send", T_BOOL, OFF(tlsrpt_send), 0, 0, 0},
    {"tlsrpt_organization", T_STRING, OFF(tlsrpt_organization), 0, 0, 0},
    {"tlsrpt_contact", T_STRING, OFF(tlsrpt_contact), 0, 0, 0},
    {"tlsrpt_max_domains", T_UINT, OFF(tlsrpt_max_domains), 0, 1000000, 0},
    {"tlsrpt_keep_days", T_UINT, OFF(tlsrpt_keep_days), 2, 3650, 0},
    {"dmarc_report_send", T_BOOL, OFF(dmarc_report_send), 0, 0, 0},
    {"dmarc_report_organization", T_STRING, OFF(dmarc_report_organization), 0, 0, 0},
    {"dmarc_report_contact", T_STRING, OFF(dmarc_report_contact), 0, 0, 0},
    {"dmarc_report_max_domains", T_UINT, OFF(dmarc_report_max_domains), 0, 1000000, 0},
    {"dmarc_report_keep_days", T_UINT, OFF(dmarc_report_keep_days), 2, 3650, 0},
};

static void conf_clear_tls_sni(struct conf_tls_sni *items, size_t n);

static char *conf_resolve_path(const char *base_dir, const char *value)
{
	if (value[0] == '/' || base_dir == NULL || base_dir[0] == '\0')
		return xstrdup(value);
	struct buf b;
	buf_init(&b, 8192);
	const char *sep = base_dir[strlen(base_dir) - 1] == '/' ? "" : "/";
	if (buf_printf(&b, "%s%s%s", base_dir, sep, value) < 0) {
		buf_free(&b);
		return xstrdup(value);
	}
	return b.data;
}

struct conf *conf_new_defaults(const char *base_dir)
{
	struct conf *c = xcalloc(1, sizeof(*c));
	c->refcount = 1;
	c->hostname = xstrdup("localhost");
	c->data_dir = conf_resolve_path(base_dir, "data");
	c->tls_cert = conf_resolve_path(base_dir, "tls/cert.pem");
	c->tls_key = conf_resolve_path(base_dir, "tls/key.pem");
	c->run_user = xstrdup("");
	c->threads = 0;
	c->log_level = LOG_LEVEL_INFO;
	c->smtp_bare_lf = CONF_BARE_LF_REJECT;
	c->vrfy_enabled = true; /* 252 only, never a confirmation (RFC 5321 3.5.3) */
	c->default_quota = 0;
	c->store_inline_max = 128 * 1024; /* store.h: STORE_INLINE_MAX_DEFAULT */
	c->search_index_max_text = 1024 * 1024;
	c->min_free_space = CONF_MIN_FREE_AUTO;
	(void)conf_parse_listen(c, CONF_LISTENER_SMTP, "*:25");
	(void)conf_parse_listen(c, CONF_LISTENER_SUBMISSION, "*:587");
	(void)conf_parse_listen(c, CONF_LISTENER_SUBMISSIONS, "*:465");
	(void)conf_parse_listen(c, CONF_LISTENER_POP3, "*:110");
	(void)conf_parse_listen(c, CONF_LISTENER_POP3S, "*:995");
	(void)conf_parse_listen(c, CONF_LISTENER_IMAP, "*:143");
	(void)conf_parse_listen(c, CONF_LISTENER_IMAPS, "*:993");
	c->pop3_expire = -1;
	c->imap_progress_interval = 2;
	c->imap_notify_max_pending = 1000;
	c->imap_message_limit = 1000000;
	c->imap_expunge_retention = 90 * 86400;
	c->auth_workers = 0;
	c->auth_cache_ttl = 3600;
	c->auth_cache_size = 10000;
	c->queue_lease_time = 300;
	c->limits = (struct limits){
	    .command_line = 2048,
	    .recipients = 1000,
	    .errors = 20,
	    .request_timeout = 300,
	    .data_min_rate = 500,
	    .message_size = 50 * 1024 * 1024,
	    .connections_per_ip = 50,
	    .connections = 10000,
	    .connection_rate_per_ip = 120,
	    .auth_failures = 3,
	    .header_lines = 1000,
	    .pop3_idle_timeout = 600,
	    .imap_idle_timeout = 1800,
	    .tls_handshake_timeout = 30,
	    .login_timeout = 60,
	    .login_commands = 30,
	    .sessions_per_user_ip = 10,
	    .metadata_size = 64 * 1024,
	    .metadata_entries = 100,
	};
	c->smtp_pregreet_wait = 1;
	c->smtp_peername_lookup = true;
	c->greylisting = false;
	c->dnsbl = true;
	c->greylist_delay = 300;
	c->greylist_expire = 35 * 86400;
	c->greylist_auto_whitelist_clients = 5; /* Postgrey's --auto-whitelist-clients */
	c->smtp_invalid_recipients_max = 10;
	c->smtp_connection_rate_per_ip = 0;
	c->smtp_message_rate_per_ip = 0;
	c->submission_messages_per_day = 1000;
	c->submission_recipients_per_day = 200;
	c->dns_resolver = xstrdup("");
	c->dns_resolver_port = 53;
	c->dns_trust_anchor = xstrdup("");
	c->dns_timeout = 10;
	c->inbound_checks = true;
	c->spf_reject_fail = false;
	c->dmarc_reject = true;
	c->dmarc_quarantine = true;
	c->dkim_verify_max_signatures = 5;
	c->inbound_checks_skip_domains = xstrdup("");
	c->arc_trusted_sealers = xstrdup("");
	c->milter = xstrdup("");
	c->dnsbl_zones = xstrdup("");
	c->dnswl_zones = xstrdup("");
	c->milter_timeout = 30;
	c->milter_default_action = CONF_MILTER_TEMPFAIL;
	c->rspamd_url = xstrdup("");
	c->rspamd_ip = xstrdup("");
	c->rspamd_port = 11333;
	c->rspamd_path = xstrdup("");
	c->rspamd_timeout = 30;
	c->rspamd_default_action = CONF_MILTER_TEMPFAIL;
	c->rspamd_junk = true;
	c->public_suffix_list = xstrdup("/usr/share/publicsuffix/public_suffix_list.dat");
	/* Postfix's defaults: 5 MX hosts, backoff 300 s doubling to about an hour, 5 days. */
	c->outbound_enabled = true;
	c->outbound_port = 25;
	c->outbound_mx_max = 5;
	c->outbound_ip = CONF_OUTBOUND_IP_ANY;
	c->outbound_concurrency = 100;
	c->outbound_domain_concurrency = 20;
	c->outbound_connection_cache_time = 2;
	c->queue_retry_min = 300;
	c->queue_retry_max = 4000;
	c->queue_lifetime = 5 * 86400;
	c->queue_delay_warning = 4 * 3600;
	c->outbound_routes = xstrdup("");
	c->store_engine = xstrdup("sqlite");
	c->store_url = xstrdup("");
	c->mta_sts_port = 443;
	c->outbound_tls_required = xstrdup("");
	c->smarthost = xstrdup("");
	c->smarthost_tls = xstrdup("");
	c->smarthost_tls_verify = true;
	c->smarthost_user = xstrdup("");
	c->smarthost_password = xstrdup("");
	c->smarthost_password_file = xstrdup("");
	c->tlsrpt_organization = xstrdup(""); /* "": the host name */
	c->tlsrpt_contact = xstrdup("");      /* "": postmaster@hostname */
	c->tlsrpt_max_domains = 100;
	c->tlsrpt_keep_days = 14;
	c->dmarc_report_organization = xstrdup(""); /* "": the host name */
	c->dmarc_report_contact = xstrdup("");      /* "": postmaster@hostname */
	c->dmarc_report_max_domains = 50;
	c->dmarc_report_keep_days = 14;
	c->outbound_connect_timeout = 30;
	c->outbound_greeting_timeout = 300;
	c->outbound_command_timeout = 300;
	c->outbound_data_init_timeout = 120;
	c->outbound_data_block_timeout = 180;
	c->outbound_data_done_timeout = 600;
	conf_policy_finish(c);
	return c;
}

static void conf_clear_listen(struct conf *c, int kind)
{
	for (size_t i = 0; i < c->listen_count[kind]; i++)
		free(c->listen[kind][i].host);
	c->listen_count[kind] = 0;
}

struct conf *conf_ref(struct conf *conf)
{
	__atomic_add_fetch(&conf->refcount, 1, __ATOMIC_SEQ_CST);
	return conf;
}

void conf_free(struct conf **conf)
{
	struct conf *c = *conf;
	if (c == NULL)
		return;
	*conf = NULL;
	if (__atomic_sub_fetch(&c->refcount, 1, __ATOMIC_SEQ_CST) != 0)
		return;
	free(c->path);
	free(c->hostname);
	free(c->data_dir);
	free(c->tls_cert);
	free(c->tls_key);
	conf_clear_tls_sni(c->tls_sni, c->tls_sni_count);
	free(c->run_user);
	free(c->dns_resolver);
	free(c->dns_trust_anchor);
	free(c->inbound_checks_skip_domains);
	free(c->arc_trusted_sealers);
	free(c->milter);
	free(c->rspamd_url);
	free(c->rspamd_ip);
	free(c->rspamd_path);
	free(c->dnsbl_zones);
	free(c->dnswl_zones);
	free(c->public_suffix_list);
	free(c->outbound_routes);
	free(c->store_engine);
	free(c->store_url);
	free(c->outbound_tls_required);
	free(c->smarthost);
	free(c->smarthost_tls);
	free(c->smarthost_user);
	if (c->smarthost_password != NULL)
		xmemzero(c->smarthost_password, strlen(c->smarthost_password));
	free(c->smarthost_password);
	free(c->smarthost_password_file);
	free(c->tlsrpt_organization);
	free(c->tlsrpt_contact);
	free(c->dmarc_report_organization);
	free(c->dmarc_report_contact);
	free(c->outbound_tls_ca_file);
	conf_policy_clear(&c->policies);
	if (c->smtp_derived_free != NULL)
		c->smtp_derived_free(c->smtp_derived);
	for (int k = 0; k < CONF_LISTENER_COUNT; k++)
		conf_clear_listen(c, k);
	free(c);
}

/* One "host:port" item; host may be "*", an IPv4 literal or "[IPv6]". */
static int conf_parse_listen_item(const char *item, size_t len, struct conf_listen *out)
{
	const char *colon = NULL;
	size_t hostlen;
	const char *host = item;
	if (len > 0 && item[0] == '[') {
		const char *close = memchr(item, ']', len);
		if (close == NULL || close + 1 >= item + len || close[1] != ':')
			return -1;
		host = item + 1;
		hostlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		for (size_t i = len; i > 0; i--) {
			if (item[i - 1] == ':') {
				colon = item + i - 1;
				break;
			}
		}
		if (colon == NULL)
			return -1;
		hostlen = (size_t)(colon - item);
	}
	const char *p = colon + 1;
	size_t plen = len - (size_t)(p - item);
	if (hostlen == 0 || plen == 0 || plen > 5)
		return -1;
	unsigned port = 0;
	for (size_t i = 0; i < plen; i++) {
		if (!isdigit((unsigned char)p[i]))
			return -1;
		port = port * 10 + (unsigned)(p[i] - '0');
	}
	if (port == 0 || port > 65535)
		return -1;
	out->host = xstrndup(host, hostlen);
	out->port = (int)port;
	return 0;
}

int conf_parse_listen(struct conf *c, enum conf_listener_kind kind, const char *value)
{
	struct conf_listen items[CONF_LISTEN_MAX];
	size_t n = 0;
	const char *p = value;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		const char *start = p;
		while (*p != '\0' && *p != ' ' && *p != '\t' && *p != ',')
			p++;
		if (n == CONF_LISTEN_MAX ||
		    conf_parse_listen_item(start, (size_t)(p - start), &items[n]) < 0) {
			for (size_t i = 0; i < n; i++)
				free(items[i].host);
			return -1;
		}
		n++;
	}
	conf_clear_listen(c, kind);
	memcpy(c->listen[kind], items, n * sizeof(items[0]));
	c->listen_count[kind] = n;
	return 0;
}

static void conf_clear_tls_sni(struct conf_tls_sni *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i].name);
		free(items[i].cert);
		free(items[i].key);
	}
	free(items);
}

/* A host name for SNI: labels of letters, digits, '-' and '_', optionally "*." in front
 * (one label). Lower-cased in place. */
static bool conf_sni_name_ok(char *name)
{
	char *p = name;
	if (p[0] == '*' && p[1] == '.')
		p += 2;
	size_t label = 0, labels = 0;
	for (; *p != '\0'; p++) {
		*p = (char)tolower((unsigned char)*p);
		if (*p == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return false;
		if (label++ == 0)
			labels++;
		if (label > 63)
			return false;
	}
	return label > 0 && strlen(name) <= 253 && (name[0] != '*' || labels >= 2);
}

/* tls_sni: entries NAME:CERT[:KEY] separated by spaces or commas; "" = none. */
static int conf_parse_tls_sni(struct conf *c, const char *value, const char *base,
                              const char **why_r)
{
	struct conf_tls_sni *items = NULL;
	size_t n = 0;
	const char *p = value;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		const char *start = p;
		while (*p != '\0' && *p != ' ' && *p != '\t' && *p != ',')
			p++;
		char *item = xstrndup(start, (size_t)(p - start));
		char *cert = strchr(item, ':');
		char *key = cert != NULL ? strchr(cert + 1, ':') : NULL;
		if (cert != NULL)
			*cert++ = '\0';
		if (key != NULL)
			*key++ = '\0';
		*why_r = "expected NAME:CERT[:KEY] entries ('mail.example.org:certs/mail.pem:"
		         "certs/mail.key')";
		bool ok = cert != NULL && cert[0] != '\0' && (key == NULL || key[0] != '\0') &&
		          (key == NULL || strchr(key, ':') == NULL);
		if (ok && !conf_sni_name_ok(item)) {
			ok = false;
			*why_r = "not a host name (or *.domain)";
		}
		if (ok && n == CONF_TLS_SNI_MAX) {
			ok = false;
			*why_r = "too many entries";
		}
		if (!ok) {
			free(item);
			conf_clear_tls_sni(items, n);
			return -1;
		}
		items = xrealloc(items, (n + 1) * sizeof(*items));
		items[n].name = xstrdup(item);
		items[n].cert = conf_resolve_path(base, cert);
		items[n].key = key != NULL ? conf_resolve_path(base, key) : NULL;
		n++;
		free(item);
	}
	conf_clear_tls_sni(c->tls_sni, c->tls_sni_count);
	c->tls_sni = items;
	c->tls_sni_count = n;
	return 0;
}

/* Parse a non-negative decimal with an optional unit suffix. units: "" none, "size", "time". */
static int conf_parse_number(const char *v, const char *units, uint64_t *r)
{
	uint64_t n = 0;
	const char *p = v;
	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (n > (UINT64_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	uint64_t mul = 1;
	if (*p != '\0') {
		char s = (char)tolower((unsigned char)*p);
		if (strcmp(units, "size") == 0) {
			mul = s == 'k'   ? 1024ULL
			      : s == 'm' ? 1024ULL * 1024
			      : s == 'g' ? 1024ULL * 1024 * 1024
			                 : 0;
			p++;
			if (*p == 'b' || *p == 'B')
				p++;
		} else if (strcmp(units, "time") == 0) {
			mul = s == 's' ? 1 : s == 'm' ? 60 : s == 'h' ? 3600 : s == 'd' ? 86400 : 0;
			p++;
		} else {
			mul = 0;
		}
		if (mul == 0 || *p != '\0')
			return -1;
	}
	if (n != 0 && mul > UINT64_MAX / n)
		return -1;
	*r = n * mul;
	return 0;
}

/* dns_resolver: "IP", "IP:PORT", "[IPv6]:PORT" or "" (the system's resolvers). */
static int conf_parse_dns_resolver(struct conf *c, const char *v)
{
	char host[INET6_ADDRSTRLEN + 2];
	unsigned port = 53;
	const char *port_text = NULL;
	unsigned char bin[16];
	size_t n = strlen(v);
	if (n == 0) {
		free(c->dns_resolver);
		c->dns_resolver = xstrdup("");
		c->dns_resolver_port = 53;
		return 0;
	}
	if (v[0] == '[') {
		const char *close = strchr(v, ']');
		if (close == NULL || (size_t)(close - v - 1) >= sizeof(host))
			return -1;
		memcpy(host, v + 1, (size_t)(close - v - 1));
		host[close - v - 1] = '\0';
		if (close[1] == ':')
			port_text = close + 2;
		else if (close[1] != '\0')
			return -1;
	} else {
		const char *colon = strchr(v, ':');
		bool v4_port = colon != NULL && strchr(colon + 1, ':') == NULL;
		size_t hlen = v4_port ? (size_t)(colon - v) : n;
		if (hlen >= sizeof(host))
			return -1;
		memcpy(host, v, hlen);
		host[hlen] = '\0';
		if (v4_port)
			port_text = colon + 1;
	}
	if (inet_pton(AF_INET, host, bin) != 1 && inet_pton(AF_INET6, host, bin) != 1)
		return -1;
	if (port_text != NULL) {
		uint64_t p;
		if (conf_parse_number(port_text, "", &p) < 0 || p == 0 || p > 65535)
			return -1;
		port = (unsigned)p;
	}
	free(c->dns_resolver);
	c->dns_resolver = xstrdup(host);
	c->dns_resolver_port = port;
	return 0;
}

/* milter: "", "inet:IP:PORT", "IP:PORT", "[IPv6]:PORT", "unix:/PATH" or "local:/PATH". */
static bool conf_milter_address_ok(const char *v)
{
	if (v[0] == '\0')
		return true;
	if (strncmp(v, "unix:/", 6) == 0 || strncmp(v, "local:/", 7) == 0)
		return strlen(v) < 100;
	if (strncmp(v, "inet:", 5) == 0)
		v += 5;
	const char *colon = strrchr(v, ':');
	uint64_t port;
	if (colon == NULL || colon == v || conf_parse_number(colon + 1, "", &port) < 0 ||
	    port == 0 || port > 65535)
		return false;
	char host[INET6_ADDRSTRLEN + 2];
	size_t hl = (size_t)(colon - v);
	if (v[0] == '[' && hl >= 2 && v[hl - 1] == ']') {
		v++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return false;
	memcpy(host, v, hl);
	host[hl] = '\0';
	unsigned char bin[16];
	return inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1;
}

/* rspamd_url: "" (off) or "http://HOST[:PORT][/PATH]" with HOST a numeric address
 * ("[IPv6]") or localhost; the port defaults to 11333, rspamd's normal worker. PATH is what
 * comes before /checkv2, which it may end with. */
static int conf_parse_rspamd_url(struct conf *c, const char *v)
{
	char host[INET6_ADDRSTRLEN + 2];
	uint64_t port = 11333;
	const char *path = "";
	if (v[0] != '\0') {
		if (strncmp(v, "http://", 7) != 0)
			return -1;
		const char *h = v + 7, *end = h + strcspn(h, "/"), *port_text = NULL;
		path = end;
		if (h[0] == '[') {
			const char *close = memchr(h, ']', (size_t)(end - h));
			if (close == NULL || (close + 1 != end && close[1] != ':'))
				return -1;
			if (close + 1 != end)
				port_text = close + 2;
			end = close;
			h++;
		} else {
			const char *colon = memchr(h, ':', (size_t)(end - h));
			if (colon != NULL) {
				port_text = colon + 1;
				end = colon;
			}
		}
		if (end <= h || (size_t)(end - h) >= sizeof(host))
			return -1;
		memcpy(host, h, (size_t)(end - h));
		host[end - h] = '\0';
		if (strcmp(host, "localhost") == 0)
			memcpy(host, "127.0.0.1", 10);
		unsigned char bin[16];
		if (inet_pton(AF_INET, host, bin) != 1 && inet_pton(AF_INET6, host, bin) != 1)
			return -1;
		if (port_text != NULL) {
			char digits[8];
			size_t n = strcspn(port_text, "/");
			if (n == 0 || n >= sizeof(digits))
				return -1;
			memcpy(digits, port_text, n);
			digits[n] = '\0';
			if (conf_parse_number(digits, "", &port) < 0 || port == 0 || port > 65535)
				return -1;
		}
		for (const char *p = path; *p != '\0'; p++)
			if ((unsigned char)*p <= ' ' || *p == '?' || *p == '#' ||
			    (unsigned char)*p >= 127)
				return -1;
	} else
		host[0] = '\0';
	size_t path_len = strlen(path);
	while (path_len > 0 && path[path_len - 1] == '/')
		path_len--;
	/* The URL may name the endpoint itself: the request adds /checkv2 to the path. */
	if (path_len >= 8 && memcmp(path + path_len - 8, "/checkv2", 8) == 0)
		path_len -= 8;
	while (path_len > 0 && path[path_len - 1] == '/')
		path_len--;
	free(c->rspamd_url);
	free(c->rspamd_ip);
	free(c->rspamd_path);
	c->rspamd_url = xstrdup(v);
	c->rspamd_ip = xstrdup(host);
	c->rspamd_port = (unsigned)port;
	c->rspamd_path = xstrndup(path, path_len);
	return 0;
}

/* The enum settings: each one's words in the order of its enum's values (0, 1, ...). */
static const struct conf_enum {
	enum conf_type type;
	const char *expected; /* the error when the value is none of the words */
	const char *words[4]; /* NULL-terminated */
} conf_enums[] = {
    {T_BARE_LF, "expected reject or normalize", {"reject", "normalize", NULL}},
    {T_MILTER_ACTION,
     "expected tempfail, accept or reject",
     {"tempfail", "accept", "reject", NULL}},
    {T_OUTBOUND_IP, "expected any, ipv4 or ipv6", {"any", "ipv4", "ipv6", NULL}},
};
_Static_assert(CONF_BARE_LF_NORMALIZE == 1 && CONF_MILTER_ACCEPT == 1 && CONF_MILTER_REJECT == 2 &&
                   CONF_OUTBOUND_IP_V4 == 1 && CONF_OUTBOUND_IP_V6 == 2,
               "conf_enums lists the words in the order of the enums' values");
_Static_assert(sizeof(enum conf_bare_lf) == sizeof(int) &&
                   sizeof(enum conf_milter_action) == sizeof(int) &&
                   sizeof(enum conf_outbound_ip) == sizeof(int),
               "an enum setting is set through an int");

static int conf_set_enum(enum conf_type type, int *field, const char *v, const char **why_r)
{
	for (size_t i = 0; i < sizeof(conf_enums) / sizeof(conf_enums[0]); i++) {
		const struct conf_enum *e = &conf_enums[i];
		if (e->type != type)
			continue;
		for (int w = 0; e->words[w] != NULL; w++)
			if (strcmp(v, e->words[w]) == 0) {
				*field = w;
				return 0;
			}
		*why_r = e->expected;
		return -1;
	}
	*why_r = "not an enum setting";
	return -1;
}

static int conf_set(struct conf *c, const struct conf_key *k, const char *v, const char *base,
                    const char **why_r)
{
	char *field = (char *)c + k->offset;
	uint64_t n;
	switch (k->type) {
	case T_STRING:
	case T_PATH: {
		char *s = k->type == T_PATH ? conf_resolve_path(base, v) : xstrdup(v);
		if (k->type == T_PATH && v[0] == '\0') {
			free(s);
			*why_r = "must not be empty";
			return -1;
		}
		free(*(char **)field);
		*(char **)field = s;
		return 0;
	}
	case T_BOOL:
		if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
			*(bool *)field = true;
		else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
			*(bool *)field = false;
		else {
			*why_r = "expected yes or no";
			return -1;
		}
		return 0;
	case T_LOGLEVEL:
		if (log_level_parse(v, (enum log_level *)field) < 0) {
			*why_r = "expected error, warn, info or debug";
			return -1;
		}
		return 0;
	case T_BARE_LF:
	case T_MILTER_ACTION:
	case T_OUTBOUND_IP:
		return conf_set_enum(k->type, (int *)field, v, why_r);
	case T_EXPIRE:
		if (strcmp(v, "never") == 0) {
			*(int *)field = -1;
			return 0;
		}
		if (conf_parse_number(v, "", &n) < 0 || n > k->max) {
			*why_r = "expected 'never' or a number of days";
			return -1;
		}
		*(int *)field = (int)n;
		return 0;
	case T_DNS_RESOLVER:
		if (conf_parse_dns_resolver(c, v) < 0) {
			*why_r = "expected IP or IP:PORT ('127.0.0.1', '127.0.0.1:5353', "
			         "'[::1]:53')";
			return -1;
		}
		return 0;
	case T_MILTER_ADDRESS:
		if (!conf_milter_address_ok(v)) {
			*why_r =
			    "expected inet:IP:PORT ('inet:127.0.0.1:11332', 'inet:[::1]:8891') or "
			    "unix:/PATH";
			return -1;
		}
		free(*(char **)field);
		*(char **)field = xstrdup(v);
		return 0;
	case T_RSPAMD_URL:
		if (conf_parse_rspamd_url(c, v) < 0) {
			*why_r = "expected http://IP[:PORT][/PATH] ('http://127.0.0.1:11333', "
			         "'http://[::1]:11333', 'http://localhost:11333')";
			return -1;
		}
		return 0;
	case T_DNS_ANCHOR:
		free(*(char **)field);
		*(char **)field = v[0] == '\0' || strcmp(v, "none") == 0
		                      ? xstrdup(v)
		                      : conf_resolve_path(base, v);
		return 0;
	case T_TLS_SNI:
		return conf_parse_tls_sni(c, v, base, why_r);
	case T_LISTEN:
		if (conf_parse_listen(c, (enum conf_listener_kind)k->listener, v) < 0) {
			*why_r =
			    "expected a list of ADDRESS:PORT ('*:25', '127.0.0.1:25', '[::1]:25')";
			return -1;
		}
		return 0;
	case T_MIN_FREE:
		if (strcmp(v, "auto") == 0) {
			*(uint64_t *)field = CONF_MIN_FREE_AUTO;
			return 0;
		}
		if (conf_parse_number(v, "size", &n) < 0 || n > k->max) {
			*why_r = "expected 'auto' or a size in bytes (suffix K, M, G; 0: no check)";
			return -1;
		}
		*(uint64_t *)field = n;
		return 0;
	case T_UINT:
	case T_SIZE:
	case T_BYTES64:
	case T_SECONDS:
		if (conf_parse_number(v,
		                      k->type == T_SECONDS ? "time"
		                      : k->type == T_UINT  ? ""
		                                           : "size",
		                      &n) < 0) {
			*why_r = k->type == T_SECONDS
			             ? "expected a number of seconds (suffix s, m, h, d)"
			         : k->type == T_UINT ? "expected a non-negative integer"
			                             : "expected a size in bytes (suffix K, M, G)";
			return -1;
		}
		if (n < k->min || n > k->max) {
			*why_r = "value out of range";
			return -1;
		}
		if (k->type == T_BYTES64)
			*(uint64_t *)field = n;
		else if (k->type == T_SIZE)
			*(size_t *)field = (size_t)n;
		else
			*(unsigned *)field = (unsigned)n;
		return 0;
	}
	*why_r = "internal error";
	return -1;
}

static char *conf_error(const char *path, unsigned line, const char *key, const char *why)
{
	struct buf b;
	buf_init(&b, 4096);
	if (buf_printf(&b, "%s:%u: %s%s%s", path, line, key, key[0] != '\0' ? ": " : "", why) < 0)
		return xstrdup("config error");
	return b.data;
}

static char *conf_trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

static int conf_parse_line(struct conf *c, char *line, const char *base, const char *path,
                           unsigned lineno, char **error_r)
{
	char *hash = strchr(line, '#');
	if (hash != NULL)
		*hash = '\0';
	char *s = conf_trim(line);
	if (*s == '\0')
		return 0;
	const char *why = NULL;
	if (*s == '[') {
		if (conf_policy_section_begin(&c->policies, s, &why) < 0) {
			*error_r = conf_error(path, lineno, "", why);
			return -1;
		}
		return 0;
	}
	char *eq = strchr(s, '=');
	if (eq == NULL) {
		*error_r = conf_error(path, lineno, "", "expected 'key = value'");
		return -1;
	}
	*eq = '\0';
	char *key = conf_trim(s);
	char *value = conf_trim(eq + 1);
	if (c->policies.count > 0) { /* inside a [domain] or [account] section */
		if (conf_policy_section_set(&c->policies, key, value, &why) < 0) {
			*error_r = conf_error(path, lineno, key, why);
			return -1;
		}
		return 0;
	}
	for (size_t i = 0; i < sizeof(conf_keys) / sizeof(conf_keys[0]); i++) {
		if (strcmp(conf_keys[i].name, key) != 0)
			continue;
		if (conf_set(c, &conf_keys[i], value, base, &why) < 0) {
			*error_r = conf_error(path, lineno, key, why);
			return -1;
		}
		return 0;
	}
	*error_r = conf_error(path, lineno, key, "unknown key");
	return -1;
}

struct conf *conf_parse(const char *path, const char *text, size_t len, char **error_r)
{
	char *base = xstrdup(path);
	char *slash = strrchr(base, '/');
	if (slash == base)
		slash[1] = '\0'; /* a file in "/" */
	else if (slash != NULL)
		*slash = '\0';
	else {
		free(base);
		base = xstrdup(".");
	}
	struct conf *c = conf_new_defaults(base);
	c->path = xstrdup(path);
	unsigned lineno = 0;
	size_t pos = 0;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl == NULL ? len : (size_t)(nl - text);
		lineno++;
		char *line = xstrndup(text + pos, end - pos);
		if (strlen(line) != end - pos) {
			free(line);
			*error_r = conf_error(path, lineno, "", "NUL byte in config file");
			goto fail;
		}
		int ret = conf_parse_line(c, line, base, path, lineno, error_r);
		free(line);
		if (ret < 0)
			goto fail;
		pos = end + 1;
	}
	free(base);
	conf_policy_finish(c);
	return c;
fail:
	free(base);
	conf_free(&c);
	return NULL;
}

struct conf *conf_load(const char *path, char **error_r)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		*error_r = conf_error(path, 0, "", strerror(errno));
		return NULL;
	}
	struct buf b;
	buf_init(&b, CONF_FILE_MAX);
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(&b, chunk, n) < 0) {
			fclose(f);
			buf_free(&b);
			*error_r = conf_error(path, 0, "", "file larger than 1 MiB");
			return NULL;
		}
	}
	fclose(f);
	struct conf *c = conf_parse(path, buf_cstr(&b), b.len, error_r);
	buf_free(&b);
	return c;
}

void conf_slot_init(struct conf_slot *slot, struct conf *conf)
{
	pthread_mutex_init(&slot->lock, NULL);
	slot->conf = conf_ref(conf);
}

uint64_t conf_min_free_space(const struct conf *conf)
{
	if (conf->min_free_space != CONF_MIN_FREE_AUTO)
		return conf->min_free_space;
	/* Postfix (queue_minfree): at least 1.5 times the largest message accepted. */
	return conf->limits.message_size + conf->limits.message_size / 2;
}

void conf_slot_deinit(struct conf_slot *slot)
{
	conf_free(&slot->conf);
	pthread_mutex_destroy(&slot->lock);
}

void conf_slot_set(struct conf_slot *slot, struct conf *conf)
{
	pthread_mutex_lock(&slot->lock);
	struct conf *old = slot->conf;
	slot->conf = conf_ref(conf);
	pthread_mutex_unlock(&slot->lock);
	conf_free(&old);
}

struct conf *conf_slot_get(struct conf_slot *slot)
{
	pthread_mutex_lock(&slot->lock);
	struct conf *c = conf_ref(slot->conf);
	pthread_mutex_unlock(&slot->lock);
	return c;
}
