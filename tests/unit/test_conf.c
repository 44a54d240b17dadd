/* Unit tests for core/conf: every default, every key type (string, path, uint, size, seconds,
 * bool, log level, smtp_bare_lf, listener lists), comments, blank lines and CRLF, every kind
 * of error with its exact "FILE:LINE: key: reason" message, conf_ref()/conf_free()
 * reference counting, and conf_load() on real, missing and oversized files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/conf.h"
#include "conf_text.h"
#include "core/banned.h"

#define DIR "/etc/posthorn"

/* "key = value" on line 1 must be refused with "PATH:1: key: why". */
static void refuse_value(const char *key, const char *value, const char *why)
{
	struct buf text, want;
	buf_init(&text, 4096);
	buf_init(&want, 4096);
	assert_int_equal(buf_printf(&text, "%s = %s\n", key, value), 0);
	assert_int_equal(buf_printf(&want, "%s:1: %s: %s", PATH, key, why), 0);
	refuse(buf_cstr(&text), buf_cstr(&want));
	buf_free(&text);
	buf_free(&want);
}

/* Parse the single line "key = value". */
static struct conf *set1(const char *key, const char *value)
{
	struct buf text;
	buf_init(&text, 4096);
	assert_int_equal(buf_printf(&text, "%s = %s\n", key, value), 0);
	struct conf *c = parse(buf_cstr(&text));
	buf_free(&text);
	return c;
}

static void assert_listen(const struct conf *c, enum conf_listener_kind kind, size_t i,
                          const char *host, int port)
{
	assert_true(i < c->listen_count[kind]);
	assert_string_equal(c->listen[kind][i].host, host);
	assert_int_equal(c->listen[kind][i].port, port);
}

static void assert_defaults(const struct conf *c, const char *dir)
{
	struct buf p;
	buf_init(&p, 4096);
	assert_string_equal(c->hostname, "localhost");
	assert_int_equal(buf_printf(&p, "%s/data", dir), 0);
	assert_string_equal(c->data_dir, buf_cstr(&p));
	buf_reset(&p);
	assert_int_equal(buf_printf(&p, "%s/tls/cert.pem", dir), 0);
	assert_string_equal(c->tls_cert, buf_cstr(&p));
	buf_reset(&p);
	assert_int_equal(buf_printf(&p, "%s/tls/key.pem", dir), 0);
	assert_string_equal(c->tls_key, buf_cstr(&p));
	buf_free(&p);
	assert_string_equal(c->run_user, "");
	assert_int_equal(c->threads, 0);
	assert_int_equal(c->log_level, LOG_LEVEL_INFO);
	assert_false(c->log_syslog);
	assert_false(c->allow_plaintext_auth);
	assert_int_equal(c->smtp_bare_lf, CONF_BARE_LF_REJECT);
	assert_int_equal(c->default_quota, 0);
	assert_true(c->vrfy_enabled);
	assert_int_equal(c->listen_count[CONF_LISTENER_SMTP], 1);
	assert_listen(c, CONF_LISTENER_SMTP, 0, "*", 25);
	assert_int_equal(c->listen_count[CONF_LISTENER_SUBMISSION], 1);
	assert_listen(c, CONF_LISTENER_SUBMISSION, 0, "*", 587);
	assert_int_equal(c->listen_count[CONF_LISTENER_SUBMISSIONS], 1);
	assert_listen(c, CONF_LISTENER_SUBMISSIONS, 0, "*", 465);
	assert_int_equal(c->limits.command_line, 2048);
	assert_int_equal(c->limits.recipients, 1000);
	assert_int_equal(c->limits.errors, 20);
	assert_int_equal(c->limits.request_timeout, 300);
	assert_int_equal(c->limits.data_min_rate, 500);
	assert_int_equal(c->limits.message_size, 50 * 1024 * 1024);
	assert_int_equal(c->limits.connections_per_ip, 50);
	assert_int_equal(c->limits.connections, 10000);
	assert_int_equal(c->limits.connection_rate_per_ip, 120);
	assert_int_equal(c->limits.auth_failures, 3);
	assert_int_equal(c->limits.header_lines, 1000);
	assert_int_equal(c->auth_workers, 0);
	assert_int_equal(c->auth_cache_ttl, 3600);
	assert_int_equal(c->auth_cache_size, 10000);
	assert_int_equal(c->queue_lease_time, 300);
}

static void test_auth_settings(void **state)
{
	(void)state;
	struct conf *c = set1("auth_cache_ttl", "0");
	assert_int_equal(c->auth_cache_ttl, 0); /* 0 = no cache */
	conf_free(&c);
	c = set1("auth_cache_ttl", "2h");
	assert_int_equal(c->auth_cache_ttl, 7200);
	conf_free(&c);
	c = set1("auth_cache_size", "0");
	assert_int_equal(c->auth_cache_size, 0);
	conf_free(&c);
	c = set1("auth_workers", "4");
	assert_int_equal(c->auth_workers, 4);
	conf_free(&c);
	refuse_value("auth_workers", "65", "value out of range");
	refuse_value("auth_cache_ttl", "8d", "value out of range");
	refuse_value("auth_cache_size", "10000001", "value out of range");
}

static void test_queue_settings(void **state)
{
	(void)state;
	struct conf *c = set1("queue_lease_time", "10m");
	assert_int_equal(c->queue_lease_time, 600);
	conf_free(&c);
	refuse_value("queue_lease_time", "9", "value out of range");
	refuse_value("queue_lease_time", "2d", "value out of range");
}

/* imap_expunge_retention: 90 days unless set; 0 keeps tombstones for ever; at most 10 years. */
static void test_expunge_retention(void **state)
{
	(void)state;
	struct conf *c = set1("imap_expunge_retention", "30d");
	assert_int_equal(c->imap_expunge_retention, 30 * 86400);
	conf_free(&c);
	c = set1("imap_expunge_retention", "0");
	assert_int_equal(c->imap_expunge_retention, 0);
	conf_free(&c);
	c = set1("auth_workers", "1");
	assert_int_equal(c->imap_expunge_retention, 90 * 86400);
	conf_free(&c);
	refuse_value("imap_expunge_retention", "3651d", "value out of range");
	refuse_value("imap_expunge_retention", "-1",
	             "expected a number of seconds (suffix s, m, h, d)");
}

/* min_free_space: auto (1.5 x limit_message_size, Postfix's rule) unless set; a size is
 * taken as it is; 0 turns the check off. */
static void test_min_free_space(void **state)
{
	(void)state;
	struct conf *c = set1("auth_workers", "1");
	assert_true(c->min_free_space == CONF_MIN_FREE_AUTO);
	assert_true(conf_min_free_space(c) == 75ull * 1024 * 1024);
	conf_free(&c);
	c = parse("limit_message_size = 10M\nmin_free_space = auto\n");
	assert_true(conf_min_free_space(c) == 15ull * 1024 * 1024);
	conf_free(&c);
	c = set1("min_free_space", "200M");
	assert_true(conf_min_free_space(c) == 200ull * 1024 * 1024);
	conf_free(&c);
	c = set1("min_free_space", "0");
	assert_true(conf_min_free_space(c) == 0);
	conf_free(&c);
	refuse_value("min_free_space", "lots",
	             "expected 'auto' or a size in bytes (suffix K, M, G; 0: no check)");
	refuse_value("min_free_space", "-1M",
	             "expected 'auto' or a size in bytes (suffix K, M, G; 0: no check)");
}

static void test_defaults(void **state)
{
	(void)state;
	struct conf *c = conf_new_defaults("/srv/posthorn");
	assert_int_equal(c->refcount, 1);
	assert_null(c->path);
	assert_defaults(c, "/srv/posthorn");
	conf_free(&c);
	assert_null(c);

	/* no base directory: paths stay relative */
	c = conf_new_defaults(NULL);
	assert_string_equal(c->data_dir, "data");
	assert_string_equal(c->tls_cert, "tls/cert.pem");
	assert_string_equal(c->tls_key, "tls/key.pem");
	conf_free(&c);

	/* an empty file, or one with only comments, is all defaults */
	c = parse("");
	assert_defaults(c, DIR);
	conf_free(&c);
	c = parse("# nothing here\n\n   \n\t\n#hostname = x\n");
	assert_defaults(c, DIR);
	conf_free(&c);
}

static void test_string(void **state)
{
	(void)state;
	struct conf *c = set1("hostname", "mx.example.org");
	assert_string_equal(c->hostname, "mx.example.org");
	conf_free(&c);
	/* surrounding blanks trimmed, inner blanks and '=' kept */
	c = parse("  \thostname\t=\t  mail host=a  \t\n");
	assert_string_equal(c->hostname, "mail host=a");
	conf_free(&c);
	c = parse("hostname=x\n");
	assert_string_equal(c->hostname, "x");
	conf_free(&c);
	/* a string may be empty */
	c = parse("user = postman\n");
	assert_string_equal(c->run_user, "postman");
	conf_free(&c);
	c = parse("user = postman\nuser =\n");
	assert_string_equal(c->run_user, "");
	conf_free(&c);
	/* the last setting wins */
	c = parse("hostname = a\nhostname = b\n");
	assert_string_equal(c->hostname, "b");
	conf_free(&c);
}

static void test_path(void **state)
{
	(void)state;
	struct conf *c = parse("data_dir = mail\ntls_cert = certs/c.pem\ntls_key = /k/key.pem\n");
	assert_string_equal(c->data_dir, DIR "/mail");
	assert_string_equal(c->tls_cert, DIR "/certs/c.pem");
	assert_string_equal(c->tls_key, "/k/key.pem");
	conf_free(&c);
	c = set1("data_dir", "/var/lib/posthorn");
	assert_string_equal(c->data_dir, "/var/lib/posthorn");
	/* paths not set keep the default relative to the config directory */
	assert_string_equal(c->tls_cert, DIR "/tls/cert.pem");
	conf_free(&c);

	/* a config path without a directory: relative to "." */
	char *error = NULL;
	const char *text = "data_dir = mail\n";
	c = conf_parse("posthorn.conf", text, strlen(text), &error);
	assert_non_null(c);
	assert_string_equal(c->data_dir, "./mail");
	assert_string_equal(c->tls_key, "./tls/key.pem");
	assert_string_equal(c->path, "posthorn.conf");
	conf_free(&c);
	c = conf_parse("etc/p.conf", text, strlen(text), &error);
	assert_non_null(c);
	assert_string_equal(c->data_dir, "etc/mail");
	conf_free(&c);

	refuse_value("data_dir", "", "must not be empty");
	refuse("tls_key =   \n", PATH ":1: tls_key: must not be empty");
}

static void test_uint(void **state)
{
	(void)state;
	struct conf *c = set1("threads", "0");
	assert_int_equal(c->threads, 0);
	conf_free(&c);
	c = set1("threads", "256");
	assert_int_equal(c->threads, 256);
	conf_free(&c);
	c = set1("threads", "007");
	assert_int_equal(c->threads, 7);
	conf_free(&c);
	c = parse("limit_recipients = 1\nlimit_errors = 1000\nlimit_connections_per_ip = 0\n"
	          "limit_connections = 1000000\nlimit_auth_failures = 100\n"
	          "limit_header_lines = 16\nlimit_connection_rate_per_ip = 0\n");
	assert_int_equal(c->limits.connection_rate_per_ip, 0);
	assert_int_equal(c->limits.recipients, 1);
	assert_int_equal(c->limits.errors, 1000);
	assert_int_equal(c->limits.connections_per_ip, 0);
	assert_int_equal(c->limits.connections, 1000000);
	assert_int_equal(c->limits.auth_failures, 100);
	assert_int_equal(c->limits.header_lines, 16);
	conf_free(&c);

	const char *nan = "expected a non-negative integer";
	refuse_value("threads", "257", "value out of range");
	refuse_value("limit_recipients", "0", "value out of range");
	refuse_value("limit_recipients", "100001", "value out of range");
	refuse_value("limit_header_lines", "15", "value out of range");
	refuse_value("limit_auth_failures", "101", "value out of range");
	refuse_value("limit_connection_rate_per_ip", "1000001", "value out of range");
	refuse_value("limit_connection_rate_per_ip", "-1", nan);
	refuse_value("threads", "-1", nan);
	refuse_value("threads", "+1", nan);
	refuse_value("threads", "abc", nan);
	refuse_value("threads", "12x", nan);
	refuse_value("threads", "1K", nan); /* no unit suffix on a plain number */
	refuse_value("threads", "1 2", nan);
	refuse_value("threads", "0x10", nan);
	refuse_value("threads", "", nan);
	/* big values: out of range, and past UINT64_MAX (overflow) */
	refuse_value("threads", "4294967296", "value out of range");
	refuse_value("threads", "18446744073709551615", "value out of range");
	refuse_value("threads", "18446744073709551616", nan);
	refuse_value("threads", "99999999999999999999999999999", nan);
}

static void test_size(void **state)
{
	(void)state;
	struct conf *c = set1("limit_command_line", "512");
	assert_int_equal(c->limits.command_line, 512);
	conf_free(&c);
	c = set1("limit_command_line", "4K");
	assert_int_equal(c->limits.command_line, 4096);
	conf_free(&c);
	c = set1("limit_command_line", "4k");
	assert_int_equal(c->limits.command_line, 4096);
	conf_free(&c);
	c = set1("limit_command_line", "4KB");
	assert_int_equal(c->limits.command_line, 4096);
	conf_free(&c);
	c = set1("limit_command_line", "64K");
	assert_int_equal(c->limits.command_line, 65536);
	conf_free(&c);
	c = set1("limit_message_size", "10M");
	assert_int_equal(c->limits.message_size, 10 * 1024 * 1024);
	conf_free(&c);
	c = set1("limit_message_size", "2g");
	assert_int_equal(c->limits.message_size, 2ULL * 1024 * 1024 * 1024);
	conf_free(&c);
	c = set1("limit_message_size", "1024G");
	assert_int_equal(c->limits.message_size, 1ULL << 40);
	conf_free(&c);
	c = set1("limit_message_size", "1024");
	assert_int_equal(c->limits.message_size, 1024);
	conf_free(&c);
	c = set1("default_quota", "18446744073709551615");
	assert_true(c->default_quota == UINT64_MAX);
	conf_free(&c);
	c = set1("default_quota", "16G");
	assert_true(c->default_quota == 16ULL << 30);
	conf_free(&c);

	const char *bad = "expected a size in bytes (suffix K, M, G)";
	refuse_value("limit_command_line", "100", "value out of range");
	refuse_value("limit_command_line", "511", "value out of range");
	refuse_value("limit_command_line", "65537", "value out of range");
	refuse_value("limit_command_line", "1M", "value out of range");
	refuse_value("limit_message_size", "1023", "value out of range");
	refuse_value("limit_message_size", "1025G", "value out of range");
	refuse_value("limit_command_line", "4T", bad);
	refuse_value("limit_command_line", "4 K", bad);
	refuse_value("limit_command_line", "4KK", bad);
	refuse_value("limit_command_line", "4KBx", bad);
	refuse_value("limit_command_line", "4B", bad);
	refuse_value("limit_command_line", "K", bad);
	refuse_value("limit_command_line", "-4K", bad);
	/* overflow in the digits and in the unit multiplication */
	refuse_value("default_quota", "18446744073709551616", bad);
	refuse_value("default_quota", "17179869184G", bad);
	refuse_value("default_quota", "18014398509481984K", bad);
}

static void test_seconds(void **state)
{
	(void)state;
	static const struct {
		const char *value;
		unsigned want;
	} ok[] = {{"1", 1},     {"30", 30},    {"30s", 30},      {"30S", 30},      {"5m", 300},
	          {"2h", 7200}, {"1d", 86400}, {"86400", 86400}, {"1440m", 86400}, {"24H", 86400}};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct conf *c = set1("limit_request_timeout", ok[i].value);
		assert_int_equal(c->limits.request_timeout, ok[i].want);
		conf_free(&c);
	}
	const char *bad = "expected a number of seconds (suffix s, m, h, d)";
	refuse_value("limit_request_timeout", "0", "value out of range");
	refuse_value("limit_request_timeout", "0s", "value out of range");
	refuse_value("limit_request_timeout", "2d", "value out of range");
	refuse_value("limit_request_timeout", "86401", "value out of range");
	refuse_value("limit_request_timeout", "5x", bad);
	refuse_value("limit_request_timeout", "5ms", bad);
	refuse_value("limit_request_timeout", "1w", bad);
	refuse_value("limit_request_timeout", "s", bad);
	refuse_value("limit_request_timeout", "5K", bad);
	refuse_value("limit_request_timeout", "999999999999999999999d", bad);
	refuse_value("limit_request_timeout", "307445734561825861d", bad); /* multiply overflow */
}

/* The hostile-input settings (issue 8 §4): defaults, values, ranges. */
static void test_hostile_limits(void **state)
{
	(void)state;
	struct conf *c = parse("");
	assert_int_equal(c->limits.tls_handshake_timeout, 30);
	assert_int_equal(c->limits.login_timeout, 60);
	assert_int_equal(c->limits.login_commands, 30);
	assert_int_equal(c->limits.sessions_per_user_ip, 10);
	assert_int_equal(c->smtp_pregreet_wait, 1);
	assert_true(c->smtp_peername_lookup);
	conf_free(&c);
	c = parse("limit_tls_handshake_timeout = 5s\nlimit_login_timeout = 2m\n"
	          "limit_login_commands = 7\nlimit_sessions_per_user_ip = 0\n"
	          "smtp_pregreet_wait = 0\nsmtp_pregreet_wait = 6s\nsmtp_peername_lookup = no\n");
	assert_int_equal(c->limits.tls_handshake_timeout, 5);
	assert_int_equal(c->limits.login_timeout, 120);
	assert_int_equal(c->limits.login_commands, 7);
	assert_int_equal(c->limits.sessions_per_user_ip, 0);
	assert_int_equal(c->smtp_pregreet_wait, 6); /* the last one counts */
	assert_false(c->smtp_peername_lookup);
	conf_free(&c);
	refuse_value("limit_tls_handshake_timeout", "0", "value out of range");
	refuse_value("limit_login_timeout", "0", "value out of range");
	refuse_value("limit_login_commands", "0", "value out of range");
	refuse_value("smtp_pregreet_wait", "61", "value out of range");
	refuse_value("smtp_peername_lookup", "maybe", "expected yes or no");
}

/* The checks on arrival (issue 12): defaults, values, ranges. */
static void test_inbound_checks(void **state)
{
	(void)state;
	struct conf *c = parse("");
	assert_true(c->inbound_checks);
	assert_false(c->spf_reject_fail);
	assert_true(c->dmarc_reject);
	assert_true(c->dmarc_quarantine);
	assert_int_equal(c->dkim_verify_max_signatures, 5);
	assert_string_equal(c->inbound_checks_skip_domains, "");
	assert_string_equal(c->public_suffix_list,
	                    "/usr/share/publicsuffix/public_suffix_list.dat");
	conf_free(&c);
	c = parse("inbound_checks = no\nspf_reject_fail = yes\ndmarc_reject = no\n"
	          "dmarc_quarantine = no\ndkim_verify_max_signatures = 1\n"
	          "inbound_checks_skip_domains = a.test b.test\npublic_suffix_list = /x/psl.dat\n");
	assert_false(c->inbound_checks);
	assert_true(c->spf_reject_fail);
	assert_false(c->dmarc_reject);
	assert_false(c->dmarc_quarantine);
	assert_int_equal(c->dkim_verify_max_signatures, 1);
	assert_string_equal(c->inbound_checks_skip_domains, "a.test b.test");
	assert_string_equal(c->public_suffix_list, "/x/psl.dat");
	conf_free(&c);
	refuse_value("dkim_verify_max_signatures", "0", "value out of range");
	refuse_value("dkim_verify_max_signatures", "101", "value out of range");
	refuse_value("public_suffix_list", "", "must not be empty");
}

/* Flood and abuse defence (issue 12): defaults (greylisting off, Postgrey's times, mox's
 * submission limits, Postfix's per-IP rates off), values and ranges. */
static void test_flood_settings(void **state)
{
	(void)state;
	struct conf *c = parse("");
	assert_false(c->greylisting);
	assert_int_equal(c->greylist_delay, 300);
	assert_int_equal(c->greylist_expire, 35 * 86400);
	assert_int_equal(c->smtp_invalid_recipients_max, 10);
	assert_int_equal(c->smtp_connection_rate_per_ip, 0);
	assert_int_equal(c->smtp_message_rate_per_ip, 0);
	assert_int_equal(c->submission_messages_per_day, 1000);
	assert_int_equal(c->submission_recipients_per_day, 200);
	assert_int_equal(c->greylist_auto_whitelist_clients, 5);
	assert_true(c->dnsbl);
	conf_free(&c);
	c = parse("greylist_auto_whitelist_clients = 0\ndnsbl = no\n");
	assert_int_equal(c->greylist_auto_whitelist_clients, 0);
	assert_false(c->dnsbl);
	assert_false(c->policies.any.dnsbl);
	conf_free(&c);
	refuse_value("greylist_auto_whitelist_clients", "100001", "value out of range");
	c = parse("greylisting = yes\ngreylist_delay = 1s\ngreylist_expire = 2h\n"
	          "smtp_invalid_recipients_max = 0\nsmtp_connection_rate_per_ip = 30\n"
	          "smtp_message_rate_per_ip = 100\nsubmission_messages_per_day = 0\n"
	          "submission_recipients_per_day = 5\n");
	assert_true(c->greylisting);
	assert_int_equal(c->greylist_delay, 1);
	assert_int_equal(c->greylist_expire, 7200);
	assert_int_equal(c->smtp_invalid_recipients_max, 0);
	assert_int_equal(c->smtp_connection_rate_per_ip, 30);
	assert_int_equal(c->smtp_message_rate_per_ip, 100);
	assert_int_equal(c->submission_messages_per_day, 0);
	assert_int_equal(c->submission_recipients_per_day, 5);
	conf_free(&c);
	refuse_value("greylist_delay", "0", "value out of range");
	refuse_value("greylist_expire", "10m", "value out of range");
	refuse_value("greylisting", "maybe", "expected yes or no");
}

/* The outbound SMTP client's settings (issue 9): RFC 5321 §4.5.3.2 defaults, values, ranges,
 * and the test CA file as a path relative to the configuration. */
static void test_outbound_client(void **state)
{
	(void)state;
	struct conf *c = parse("");
	assert_int_equal(c->outbound_connect_timeout, 30);
	assert_int_equal(c->outbound_greeting_timeout, 300);
	assert_int_equal(c->outbound_command_timeout, 300);
	assert_int_equal(c->outbound_data_init_timeout, 120);
	assert_int_equal(c->outbound_data_block_timeout, 180);
	assert_int_equal(c->outbound_data_done_timeout, 600);
	assert_null(c->outbound_tls_ca_file);
	conf_free(&c);
	c = parse("outbound_connect_timeout = 5s\noutbound_greeting_timeout = 1m\n"
	          "outbound_command_timeout = 2m\noutbound_data_init_timeout = 3m\n"
	          "outbound_data_block_timeout = 4m\noutbound_data_done_timeout = 1h\n"
	          "outbound_tls_ca_file = /etc/test-ca.pem\n");
	assert_int_equal(c->outbound_connect_timeout, 5);
	assert_int_equal(c->outbound_greeting_timeout, 60);
	assert_int_equal(c->outbound_command_timeout, 120);
	assert_int_equal(c->outbound_data_init_timeout, 180);
	assert_int_equal(c->outbound_data_block_timeout, 240);
	assert_int_equal(c->outbound_data_done_timeout, 3600);
	assert_string_equal(c->outbound_tls_ca_file, "/etc/test-ca.pem");
	conf_free(&c);
	refuse_value("outbound_connect_timeout", "0", "value out of range");
	refuse_value("outbound_data_done_timeout", "0", "value out of range");
	refuse_value("outbound_tls_ca_file", "", "must not be empty");
}

static void test_bool(void **state)
{
	(void)state;
	static const char *const yes[] = {"yes", "true", "1"};
	static const char *const no[] = {"no", "false", "0"};
	static const char *const keys[] = {"log_syslog", "allow_plaintext_auth", "smtp_vrfy"};
	for (size_t k = 0; k < 3; k++) {
		for (size_t i = 0; i < 3; i++) {
			struct conf *c = set1(keys[k], yes[i]);
			bool *field = k == 0   ? &c->log_syslog
			              : k == 1 ? &c->allow_plaintext_auth
			                       : &c->vrfy_enabled;
			assert_true(*field);
			conf_free(&c);
			struct buf text;
			buf_init(&text, 256);
			assert_int_equal(
			    buf_printf(&text, "%s = yes\n%s = %s\n", keys[k], keys[k], no[i]), 0);
			c = parse(buf_cstr(&text));
			buf_free(&text);
			field = k == 0   ? &c->log_syslog
			        : k == 1 ? &c->allow_plaintext_auth
			                 : &c->vrfy_enabled;
			assert_false(*field);
			conf_free(&c);
		}
	}
	const char *bad = "expected yes or no";
	refuse_value("log_syslog", "maybe", bad);
	refuse_value("log_syslog", "Yes", bad);
	refuse_value("log_syslog", "on", bad);
	refuse_value("log_syslog", "2", bad);
	refuse_value("smtp_vrfy", "", bad);
	refuse_value("allow_plaintext_auth", "yes please", bad);
}

static void test_log_level(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		enum log_level level;
	} levels[] = {{"error", LOG_LEVEL_ERROR},
	              {"warn", LOG_LEVEL_WARN},
	              {"info", LOG_LEVEL_INFO},
	              {"debug", LOG_LEVEL_DEBUG}};
	for (size_t i = 0; i < 4; i++) {
		struct conf *c = set1("log_level", levels[i].name);
		assert_int_equal(c->log_level, levels[i].level);
		conf_free(&c);
	}
	const char *bad = "expected error, warn, info or debug";
	refuse_value("log_level", "verbose", bad);
	refuse_value("log_level", "warning", bad);
	refuse_value("log_level", "", bad);
}

/* Every enum setting takes each of its words (in any order of settings) and refuses others,
 * a prefix or another case of a word included. */
static void test_enum_words(void **state)
{
	(void)state;
	static const struct {
		const char *key, *word;
		size_t offset;
		int value;
		const char *bad;
	} cases[] = {
	    {"milter_default_action", "tempfail", offsetof(struct conf, milter_default_action),
	     CONF_MILTER_TEMPFAIL, "expected tempfail, accept or reject"},
	    {"milter_default_action", "accept", offsetof(struct conf, milter_default_action),
	     CONF_MILTER_ACCEPT, "expected tempfail, accept or reject"},
	    {"milter_default_action", "reject", offsetof(struct conf, milter_default_action),
	     CONF_MILTER_REJECT, "expected tempfail, accept or reject"},
	    {"rspamd_default_action", "reject", offsetof(struct conf, rspamd_default_action),
	     CONF_MILTER_REJECT, "expected tempfail, accept or reject"},
	    {"outbound_ip", "any", offsetof(struct conf, outbound_ip), CONF_OUTBOUND_IP_ANY,
	     "expected any, ipv4 or ipv6"},
	    {"outbound_ip", "ipv4", offsetof(struct conf, outbound_ip), CONF_OUTBOUND_IP_V4,
	     "expected any, ipv4 or ipv6"},
	    {"outbound_ip", "ipv6", offsetof(struct conf, outbound_ip), CONF_OUTBOUND_IP_V6,
	     "expected any, ipv4 or ipv6"},
	    {"smtp_bare_lf", "reject", offsetof(struct conf, smtp_bare_lf), CONF_BARE_LF_REJECT,
	     "expected reject or normalize"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf *c = set1(cases[i].key, cases[i].word);
		assert_int_equal(*(const int *)((const char *)c + cases[i].offset), cases[i].value);
		conf_free(&c);
		char upper[16];
		size_t n = strlen(cases[i].word);
		for (size_t k = 0; k <= n; k++)
			upper[k] = k == 0 ? (char)(cases[i].word[0] - 'a' + 'A') : cases[i].word[k];
		refuse_value(cases[i].key, upper, cases[i].bad);
		char prefix[16];
		memcpy(prefix, cases[i].word, n - 1);
		prefix[n - 1] = '\0';
		refuse_value(cases[i].key, prefix, cases[i].bad);
	}
	refuse_value("outbound_ip", "ipv5", "expected any, ipv4 or ipv6");
}

static void test_bare_lf(void **state)
{
	(void)state;
	struct conf *c = set1("smtp_bare_lf", "normalize");
	assert_int_equal(c->smtp_bare_lf, CONF_BARE_LF_NORMALIZE);
	conf_free(&c);
	c = parse("smtp_bare_lf = normalize\nsmtp_bare_lf = reject\n");
	assert_int_equal(c->smtp_bare_lf, CONF_BARE_LF_REJECT);
	conf_free(&c);
	refuse_value("smtp_bare_lf", "accept", "expected reject or normalize");
	refuse_value("smtp_bare_lf", "", "expected reject or normalize");
}

static void test_listen(void **state)
{
	(void)state;
	struct conf *c = set1("smtp_listen", "127.0.0.1:25 [::1]:25 *:25");
	assert_int_equal(c->listen_count[CONF_LISTENER_SMTP], 3);
	assert_listen(c, CONF_LISTENER_SMTP, 0, "127.0.0.1", 25);
	assert_listen(c, CONF_LISTENER_SMTP, 1, "::1", 25);
	assert_listen(c, CONF_LISTENER_SMTP, 2, "*", 25);
	/* the other listeners keep their defaults */
	assert_listen(c, CONF_LISTENER_SUBMISSION, 0, "*", 587);
	assert_listen(c, CONF_LISTENER_SUBMISSIONS, 0, "*", 465);
	conf_free(&c);

	c = parse("submission_listen = 192.0.2.1:587,[2001:db8::1]:1587\t*:65535\n"
	          "submissions_listen = [::]:465\n");
	assert_int_equal(c->listen_count[CONF_LISTENER_SUBMISSION], 3);
	assert_listen(c, CONF_LISTENER_SUBMISSION, 0, "192.0.2.1", 587);
	assert_listen(c, CONF_LISTENER_SUBMISSION, 1, "2001:db8::1", 1587);
	assert_listen(c, CONF_LISTENER_SUBMISSION, 2, "*", 65535);
	assert_int_equal(c->listen_count[CONF_LISTENER_SUBMISSIONS], 1);
	assert_listen(c, CONF_LISTENER_SUBMISSIONS, 0, "::", 465);
	assert_int_equal(c->listen_count[CONF_LISTENER_SMTP], 1);
	conf_free(&c);

	/* an empty value turns the listener off */
	c = parse("smtp_listen =\nsubmissions_listen =   \n");
	assert_int_equal(c->listen_count[CONF_LISTENER_SMTP], 0);
	assert_int_equal(c->listen_count[CONF_LISTENER_SUBMISSIONS], 0);
	assert_int_equal(c->listen_count[CONF_LISTENER_SUBMISSION], 1);
	conf_free(&c);

	/* up to CONF_LISTEN_MAX entries, the last setting replaces the earlier list */
	c = parse("smtp_listen = *:1 *:2 *:3 *:4 *:5 *:6 *:7 *:8\nsmtp_listen = *:2525\n");
	assert_int_equal(c->listen_count[CONF_LISTENER_SMTP], 1);
	assert_listen(c, CONF_LISTENER_SMTP, 0, "*", 2525);
	conf_free(&c);
	c = set1("smtp_listen", "*:1 *:2 *:3 *:4 *:5 *:6 *:7 *:8");
	assert_int_equal(c->listen_count[CONF_LISTENER_SMTP], CONF_LISTEN_MAX);
	assert_listen(c, CONF_LISTENER_SMTP, 7, "*", 8);
	conf_free(&c);

	const char *bad = "expected a list of ADDRESS:PORT ('*:25', '127.0.0.1:25', '[::1]:25')";
	static const char *const bad_values[] = {
	    "127.0.0.1", ":25",
	    "*:",        "*:0",
	    "*:65536",   "*:123456",
	    "*:2a",      "*:-1",
	    "[::1]25",   "[::1]",
	    "[::1:25",   "[]:25",
	    "*:25 x",    "*:1 *:2 *:3 *:4 *:5 *:6 *:7 *:8 *:9",
	};
	for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++)
		refuse_value("smtp_listen", bad_values[i], bad);
}

/* conf_parse_listen() called directly: a bad list leaves the old one in place. */
static void test_parse_listen_direct(void **state)
{
	(void)state;
	struct conf *c = conf_new_defaults("/x");
	assert_int_equal(conf_parse_listen(c, CONF_LISTENER_SMTP, "[::1]:25 10.0.0.1:2525"), 0);
	assert_int_equal(c->listen_count[CONF_LISTENER_SMTP], 2);
	assert_int_equal(conf_parse_listen(c, CONF_LISTENER_SMTP, "[::1]:25 nonsense"), -1);
	assert_int_equal(c->listen_count[CONF_LISTENER_SMTP], 2);
	assert_listen(c, CONF_LISTENER_SMTP, 0, "::1", 25);
	assert_listen(c, CONF_LISTENER_SMTP, 1, "10.0.0.1", 2525);
	assert_int_equal(conf_parse_listen(c, CONF_LISTENER_SMTP, ""), 0);
	assert_int_equal(c->listen_count[CONF_LISTENER_SMTP], 0);
	conf_free(&c);
}

static void test_comments_blank_crlf(void **state)
{
	(void)state;
	struct conf *c = parse("# Posthorn\n"
	                       "\n"
	                       "   \t  \n"
	                       "hostname = mx.example.org   # trailing comment\n"
	                       "#threads = 9\n"
	                       "  # indented comment\n"
	                       "threads = 4#no space before the comment\n"
	                       "log_level = debug"); /* no final newline */
	assert_string_equal(c->hostname, "mx.example.org");
	assert_int_equal(c->threads, 4);
	assert_int_equal(c->log_level, LOG_LEVEL_DEBUG);
	conf_free(&c);

	/* CRLF line ends: the CR is not part of any value */
	c = parse("# comment\r\n\r\nhostname = mx.example.org\r\ndata_dir = d\r\nthreads = 8\r\n"
	          "smtp_vrfy = yes\r\nsmtp_listen = [::1]:25\r\nlimit_request_timeout = 5m\r\n"
	          "log_level = warn # c\r\n");
	assert_string_equal(c->hostname, "mx.example.org");
	assert_string_equal(c->data_dir, DIR "/d");
	assert_int_equal(c->threads, 8);
	assert_true(c->vrfy_enabled);
	assert_listen(c, CONF_LISTENER_SMTP, 0, "::1", 25);
	assert_int_equal(c->limits.request_timeout, 300);
	assert_int_equal(c->log_level, LOG_LEVEL_WARN);
	conf_free(&c);

	/* a CRLF file's error still counts lines right and has no CR in it */
	refuse("hostname = a\r\n\r\n# x\r\nthreads = many\r\n",
	       PATH ":4: threads: expected a non-negative integer");
}

static void test_errors(void **state)
{
	(void)state;
	refuse("hostname = a\n\nno_such_key = 1\n", PATH ":3: no_such_key: unknown key");
	refuse("  Hostname   = a\n", PATH ":1: Hostname: unknown key");
	refuse("limits.command_line = 1\n", PATH ":1: limits.command_line: unknown key");
	refuse("# one\nthreads = 4\nthreads = four\n",
	       PATH ":3: threads: expected a non-negative integer");
	refuse("limit_command_line = 100\n", PATH ":1: limit_command_line: value out of range");
	refuse("\n\n\n\nlimit_command_line = 100",
	       PATH ":5: limit_command_line: value out of range");
	/* the first error wins, later lines are not looked at */
	refuse("a = 1\nb = 2\n", PATH ":1: a: unknown key");
	/* a line without '=' has no key to name */
	refuse("hostname = a\nhostname\n", PATH ":2: expected 'key = value'");
	refuse("# c\n\njust some words # and a comment\n", PATH ":3: expected 'key = value'");
	refuse("hostname # = x\n", PATH ":1: expected 'key = value'");
	/* an empty key is unknown (the message then has no key part) */
	refuse("= value\n", PATH ":1: unknown key");
	/* a NUL byte anywhere on a line */
	refuse_n("hostname = a\nthreads = 1\0\n", 25, PATH ":2: NUL byte in config file");
	refuse_n("\0", 1, PATH ":1: NUL byte in config file");
	refuse_n("# ok\n# comment \0 with NUL\n", 26, PATH ":2: NUL byte in config file");
	/* overflowing numbers */
	refuse("\nlimit_recipients = 184467440737095516160\n",
	       PATH ":2: limit_recipients: expected a non-negative integer");
	refuse("\n\nlimit_message_size = 99999999999999999999999G\n",
	       PATH ":3: limit_message_size: expected a size in bytes (suffix K, M, G)");
	refuse("limit_message_size = 1000000000000000G\n",
	       PATH ":1: limit_message_size: expected a size in bytes (suffix K, M, G)");
	refuse("limit_connections = 18446744073709551615\n",
	       PATH ":1: limit_connections: value out of range");
	/* a config path without a directory is quoted as given */
	char *error = NULL;
	const char *text = "bogus = 1\n";
	assert_null(conf_parse("p.conf", text, strlen(text), &error));
	assert_string_equal(error, "p.conf:1: bogus: unknown key");
	free(error);
}

static void test_refcount(void **state)
{
	(void)state;
	struct conf *c = conf_new_defaults("/x");
	assert_int_equal(c->refcount, 1);
	struct conf *r1 = conf_ref(c);
	assert_ptr_equal(r1, c);
	assert_int_equal(c->refcount, 2);
	struct conf *r2 = conf_ref(c);
	assert_int_equal(c->refcount, 3);
	conf_free(&c);
	assert_null(c);
	assert_int_equal(r1->refcount, 2);
	assert_string_equal(r1->hostname, "localhost");
	conf_free(&r2);
	assert_null(r2);
	assert_int_equal(r1->refcount, 1);
	assert_string_equal(r1->data_dir, "/x/data");
	conf_free(&r1); /* the last reference frees (ASan would report a leak otherwise) */
	assert_null(r1);
	conf_free(&r1); /* NULL is fine */
	struct conf *none = NULL;
	conf_free(&none);
}

/* limit_data_min_rate is a size (K/M/G suffixes) stored in an unsigned field. Setting it must
 * change that field only: in particular limit_message_size, which follows it in struct
 * limits, keeps its value whichever order the two lines come in. */
static void test_tls_sni(void **state)
{
	(void)state;
	struct conf *c = parse("hostname = x\n");
	assert_int_equal(c->tls_sni_count, 0);
	conf_free(&c);
	c = set1("tls_sni", "Mail.Example.ORG:certs/mail.pem:certs/mail.key, "
	                    "*.example.net:/etc/ssl/both.pem\timap_x.example.com:a.pem:/k.pem");
	assert_int_equal(c->tls_sni_count, 3);
	assert_string_equal(c->tls_sni[0].name, "mail.example.org");
	assert_string_equal(c->tls_sni[0].cert, DIR "/certs/mail.pem");
	assert_string_equal(c->tls_sni[0].key, DIR "/certs/mail.key");
	assert_string_equal(c->tls_sni[1].name, "*.example.net");
	assert_string_equal(c->tls_sni[1].cert, "/etc/ssl/both.pem");
	assert_null(c->tls_sni[1].key);
	assert_string_equal(c->tls_sni[2].name, "imap_x.example.com");
	assert_string_equal(c->tls_sni[2].key, "/k.pem");
	conf_free(&c);
	/* a later line replaces the list; an empty value clears it */
	c = parse("tls_sni = a.test:a.pem\ntls_sni = b.test:b.pem\n");
	assert_int_equal(c->tls_sni_count, 1);
	assert_string_equal(c->tls_sni[0].name, "b.test");
	conf_free(&c);
	c = parse("tls_sni = a.test:a.pem\ntls_sni =\n");
	assert_int_equal(c->tls_sni_count, 0);
	conf_free(&c);
	const char *form = "expected NAME:CERT[:KEY] entries ('mail.example.org:certs/mail.pem:"
	                   "certs/mail.key')";
	refuse_value("tls_sni", "mail.example.org", form);
	refuse_value("tls_sni", "mail.example.org:", form);
	refuse_value("tls_sni", "a.test:c.pem:", form);
	refuse_value("tls_sni", "a.test:c.pem:k.pem:x", form);
	refuse_value("tls_sni", "a b.test:c.pem", form);
	const char *name = "not a host name (or *.domain)";
	refuse_value("tls_sni", "bad!.test:c.pem", name);
	refuse_value("tls_sni", "a..test:c.pem", name);
	refuse_value("tls_sni", "*.test:c.pem", name); /* a wildcard needs two labels */
	refuse_value("tls_sni", "a.*.test:c.pem", name);
	refuse_value("tls_sni", ":c.pem", name);
}

static void test_data_min_rate(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		unsigned rate;
		uint64_t message_size;
	} cases[] = {
	    {"limit_data_min_rate = 1000\n", 1000, 50 * 1024 * 1024},
	    {"limit_data_min_rate = 1G\n", 1u << 30, 50 * 1024 * 1024},
	    {"limit_data_min_rate = 4k\n", 4096, 50 * 1024 * 1024},
	    {"limit_message_size = 20M\nlimit_data_min_rate = 0\n", 0, 20 * 1024 * 1024},
	    {"limit_data_min_rate = 7\nlimit_message_size = 20M\n", 7, 20 * 1024 * 1024},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf *c = parse(cases[i].text);
		/* copy out and free first, so a failure does not also leak */
		unsigned rate = c->limits.data_min_rate;
		uint64_t message_size = c->limits.message_size;
		unsigned timeout = c->limits.request_timeout;
		unsigned per_ip = c->limits.connections_per_ip;
		conf_free(&c);
		assert_int_equal(rate, cases[i].rate);
		assert_int_equal(message_size, cases[i].message_size);
		assert_int_equal(timeout, 300);
		assert_int_equal(per_ip, 50);
	}
	refuse_value("limit_data_min_rate", "2G", "value out of range");
	refuse_value("limit_data_min_rate", "1073741825", "value out of range");
	refuse_value("limit_data_min_rate", "fast", "expected a size in bytes (suffix K, M, G)");
}

/* A fresh directory under /tmp for conf_load() tests. */
static char tmpdir[64];

static int setup_tmpdir(void **state)
{
	(void)state;
	memcpy(tmpdir, "/tmp/test_conf.XXXXXX", sizeof("/tmp/test_conf.XXXXXX"));
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static void tmp_path(struct buf *b, const char *name)
{
	buf_init(b, 4096);
	assert_int_equal(buf_printf(b, "%s/%s", tmpdir, name), 0);
}

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static int teardown_tmpdir(void **state)
{
	(void)state;
	static const char *const names[] = {"posthorn.conf", "bad.conf", "nul.conf", "big.conf",
	                                    "max.conf"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct buf p;
		tmp_path(&p, names[i]);
		(void)unlink(buf_cstr(&p));
		buf_free(&p);
	}
	return rmdir(tmpdir);
}

static void test_load(void **state)
{
	(void)state;
	struct buf path, want;
	tmp_path(&path, "posthorn.conf");
	const char *text = "hostname = loaded.example\r\ndata_dir = store\ntls_key = /abs/k.pem\n";
	write_file(buf_cstr(&path), text, strlen(text));
	char *error = NULL;
	struct conf *c = conf_load(buf_cstr(&path), &error);
	if (c == NULL)
		fail_msg("conf_load: %s", error);
	assert_string_equal(c->path, buf_cstr(&path));
	assert_string_equal(c->hostname, "loaded.example");
	tmp_path(&want, "store");
	assert_string_equal(c->data_dir, buf_cstr(&want));
	buf_free(&want);
	tmp_path(&want, "tls/cert.pem");
	assert_string_equal(c->tls_cert, buf_cstr(&want));
	buf_free(&want);
	assert_string_equal(c->tls_key, "/abs/k.pem");
	conf_free(&c);
	buf_free(&path);

	/* an error in a file names the file and line */
	tmp_path(&path, "bad.conf");
	text = "# x\nthreads = 2\nlimit_command_line = 100\n";
	write_file(buf_cstr(&path), text, strlen(text));
	error = NULL;
	assert_null(conf_load(buf_cstr(&path), &error));
	buf_init(&want, 4096);
	assert_int_equal(
	    buf_printf(&want, "%s:3: limit_command_line: value out of range", buf_cstr(&path)), 0);
	assert_string_equal(error, buf_cstr(&want));
	free(error);
	buf_free(&want);
	buf_free(&path);

	/* a NUL byte in a file */
	tmp_path(&path, "nul.conf");
	write_file(buf_cstr(&path), "threads = 2\n\nhost\0name = x\n", 26);
	error = NULL;
	assert_null(conf_load(buf_cstr(&path), &error));
	buf_init(&want, 4096);
	assert_int_equal(buf_printf(&want, "%s:3: NUL byte in config file", buf_cstr(&path)), 0);
	assert_string_equal(error, buf_cstr(&want));
	free(error);
	buf_free(&want);
	buf_free(&path);
}

static void test_load_missing(void **state)
{
	(void)state;
	struct buf path;
	tmp_path(&path, "does-not-exist.conf");
	char *error = NULL;
	assert_null(conf_load(buf_cstr(&path), &error));
	assert_non_null(error);
	/* the message starts with the path and says why */
	assert_true(strncmp(error, buf_cstr(&path), path.len) == 0);
	assert_int_equal(error[path.len], ':');
	assert_non_null(strstr(error, strerror(ENOENT)));
	free(error);
	buf_free(&path);

	error = NULL;
	assert_null(conf_load("/nonexistent-dir/posthorn.conf", &error));
	assert_non_null(strstr(error, "/nonexistent-dir/posthorn.conf"));
	free(error);
}

/* A file of exactly 1 MiB loads; one octet more is refused. */
static void test_load_size_limit(void **state)
{
	(void)state;
	const size_t mib = 1024 * 1024;
	char *text = malloc(mib + 1);
	assert_non_null(text);
	memset(text, '#', mib + 1);
	text[mib - 1] = '\n';
	struct buf path;
	tmp_path(&path, "max.conf");
	write_file(buf_cstr(&path), text, mib);
	char *error = NULL;
	struct conf *c = conf_load(buf_cstr(&path), &error);
	if (c == NULL)
		fail_msg("1 MiB file refused: %s", error);
	conf_free(&c);
	buf_free(&path);

	tmp_path(&path, "big.conf");
	text[mib] = '\n';
	write_file(buf_cstr(&path), text, mib + 1);
	error = NULL;
	assert_null(conf_load(buf_cstr(&path), &error));
	struct buf want;
	buf_init(&want, 4096);
	assert_int_equal(buf_printf(&want, "%s:0: file larger than 1 MiB", buf_cstr(&path)), 0);
	assert_string_equal(error, buf_cstr(&want));
	free(error);
	buf_free(&want);
	buf_free(&path);
	free(text);
}

/* dns_resolver: IP, IP:PORT, [IPv6]:PORT, bare IPv6, or empty (the system's resolvers);
 * dns_trust_anchor: a path resolved like every path, "none" kept; dns_timeout in seconds. */
static void test_dns_settings(void **state)
{
	(void)state;
	struct conf *c = parse("");
	assert_string_equal(c->dns_resolver, "");
	assert_int_equal(c->dns_resolver_port, 53);
	assert_string_equal(c->dns_trust_anchor, "");
	assert_int_equal(c->dns_timeout, 10);
	conf_free(&c);
	static const struct {
		const char *value, *host;
		unsigned port;
	} ok[] = {
	    {"127.0.0.1", "127.0.0.1", 53},
	    {"127.0.0.1:5353", "127.0.0.1", 5353},
	    {"::1", "::1", 53},
	    {"[::1]:5300", "::1", 5300},
	    {"[2001:db8::53]", "2001:db8::53", 53},
	    {"", "", 53},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		c = set1("dns_resolver", ok[i].value);
		assert_string_equal(c->dns_resolver, ok[i].host);
		assert_int_equal(c->dns_resolver_port, ok[i].port);
		conf_free(&c);
	}
	const char *why = "expected IP or IP:PORT ('127.0.0.1', '127.0.0.1:5353', '[::1]:53')";
	const char *bad[] = {"localhost", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:x",
	                     "[::1",      "[::1]x",      "1.2.3",           "[127.0.0.1:53"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refuse_value("dns_resolver", bad[i], why);
	c = set1("dns_trust_anchor", "keys/anchor.key");
	assert_string_equal(c->dns_trust_anchor, DIR "/keys/anchor.key");
	conf_free(&c);
	c = set1("dns_trust_anchor", "none");
	assert_string_equal(c->dns_trust_anchor, "none");
	conf_free(&c);
	c = set1("dns_timeout", "30s");
	assert_int_equal(c->dns_timeout, 30);
	conf_free(&c);
	refuse_value("dns_timeout", "0", "value out of range");
}

/* The content filters: milter addresses (TCP and UNIX-domain) and rspamd_url split into
 * address, port and path. */
static void test_filter_settings(void **state)
{
	(void)state;
	struct conf *c = parse("");
	assert_string_equal(c->milter, "");
	assert_string_equal(c->rspamd_url, "");
	assert_string_equal(c->rspamd_ip, "");
	assert_int_equal(c->rspamd_timeout, 30);
	assert_int_equal(c->rspamd_default_action, CONF_MILTER_TEMPFAIL);
	assert_true(c->rspamd_junk);
	conf_free(&c);
	static const char *const milter_ok[] = {"unix:/run/opendkim/opendkim.sock", "local:/x.sock",
	                                        "inet:127.0.0.1:8891", "inet:[::1]:8891",
	                                        "127.0.0.1:11332"};
	for (size_t i = 0; i < sizeof(milter_ok) / sizeof(milter_ok[0]); i++) {
		c = set1("milter", milter_ok[i]);
		assert_string_equal(c->milter, milter_ok[i]);
		conf_free(&c);
	}
	static const char *const milter_bad[] = {"127.0.0.1", "unix:relative.sock",
	                                         "tcp:127.0.0.1:8891", "inet:host.example:1",
	                                         "inet:127.0.0.1:0"};
	for (size_t i = 0; i < sizeof(milter_bad) / sizeof(milter_bad[0]); i++)
		refuse_value("milter", milter_bad[i],
		             "expected inet:IP:PORT ('inet:127.0.0.1:11332', 'inet:[::1]:8891') or "
		             "unix:/PATH");
	static const struct {
		const char *url, *ip;
		unsigned port;
		const char *path;
	} ok[] = {
	    {"http://127.0.0.1:11333", "127.0.0.1", 11333, ""},
	    {"http://127.0.0.1", "127.0.0.1", 11333, ""},
	    {"http://[::1]:2000/", "::1", 2000, ""},
	    {"http://localhost:11333/rspamd/", "127.0.0.1", 11333, "/rspamd"},
	    /* the endpoint named too: not appended twice */
	    {"http://127.0.0.1:11333/checkv2", "127.0.0.1", 11333, ""},
	    {"http://127.0.0.1/rspamd/checkv2/", "127.0.0.1", 11333, "/rspamd"},
	    {"http://127.0.0.1/xcheckv2", "127.0.0.1", 11333, "/xcheckv2"},
	    {"", "", 11333, ""},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		c = set1("rspamd_url", ok[i].url);
		assert_string_equal(c->rspamd_url, ok[i].url);
		assert_string_equal(c->rspamd_ip, ok[i].ip);
		assert_int_equal(c->rspamd_port, ok[i].port);
		assert_string_equal(c->rspamd_path, ok[i].path);
		conf_free(&c);
	}
	static const char *const bad[] = {
	    "https://127.0.0.1:11333", "http://rspamd.example:11333", "http://1.2.3.4:0",
	    "127.0.0.1:11333",         "http://[::1:11333",           "http://[::1]x:1",
	    "http://1.2.3.4:70000",    "http://1.2.3.4/a b",          "http://:11333"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refuse_value("rspamd_url", bad[i],
		             "expected http://IP[:PORT][/PATH] ('http://127.0.0.1:11333', "
		             "'http://[::1]:11333', 'http://localhost:11333')");
	c = parse("rspamd_timeout = 5s\nrspamd_default_action = accept\nrspamd_junk = no\n");
	assert_int_equal(c->rspamd_timeout, 5);
	assert_int_equal(c->rspamd_default_action, CONF_MILTER_ACCEPT);
	assert_false(c->rspamd_junk);
	conf_free(&c);
	refuse_value("rspamd_default_action", "junk", "expected tempfail, accept or reject");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_string),
	    cmocka_unit_test(test_path),
	    cmocka_unit_test(test_uint),
	    cmocka_unit_test(test_size),
	    cmocka_unit_test(test_seconds),
	    cmocka_unit_test(test_hostile_limits),
	    cmocka_unit_test(test_inbound_checks),
	    cmocka_unit_test(test_bool),
	    cmocka_unit_test(test_log_level),
	    cmocka_unit_test(test_bare_lf),
	    cmocka_unit_test(test_enum_words),
	    cmocka_unit_test(test_listen),
	    cmocka_unit_test(test_parse_listen_direct),
	    cmocka_unit_test(test_comments_blank_crlf),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_refcount),
	    cmocka_unit_test_setup_teardown(test_load, setup_tmpdir, teardown_tmpdir),
	    cmocka_unit_test_setup_teardown(test_load_missing, setup_tmpdir, teardown_tmpdir),
	    cmocka_unit_test_setup_teardown(test_load_size_limit, setup_tmpdir, teardown_tmpdir),
	    cmocka_unit_test(test_auth_settings),
	    cmocka_unit_test(test_dns_settings),
	    cmocka_unit_test(test_queue_settings),
	    cmocka_unit_test(test_expunge_retention),
	    cmocka_unit_test(test_min_free_space),
	    cmocka_unit_test(test_outbound_client),
	    cmocka_unit_test(test_flood_settings),
	    cmocka_unit_test(test_filter_settings),
	    /* last: fails (and under -fno-sanitize-recover aborts) until conf.c stores
	     * limit_data_min_rate with the width of its field */
	    cmocka_unit_test(test_data_min_rate),
	    cmocka_unit_test(test_tls_sni),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
