/* `posthorn init DIR --hostname HOST [--port-base N]`: a ready-to-run setup in DIR: a
 * documented posthorn.conf, the data directory with an empty store, and a self-signed TLS
 * certificate for HOST. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "mime/address.h"
#include "net/tls.h"
#include "store/blob.h"
#include "core/banned.h"

static const char init_usage[] =
    "usage: posthorn init DIR --hostname HOST [--port-base N]\n"
    "                    [--store postgresql --store-url URL]\n"
    "\n"
    "Writes DIR/posthorn.conf, DIR/data/ (the store) and DIR/tls/ (a self-signed\n"
    "certificate for HOST). With --store postgresql the store is the PostgreSQL\n"
    "database at URL (a libpq connection string or URI); init for a second DIR with\n"
    "the same URL makes a second node of the same installation. Without --port-base the listeners "
    "use the standard ports\n"
    "(25, 587, 465, 110, 995, 143, 993) on all addresses; with it, port P becomes\n"
    "N+P on 127.0.0.1 (for trying Posthorn out and for tests: 10000 gives 10025,\n"
    "10587, 10465, 10110, 10995, 10143, 10993).\n";

static const char conf_template[] =
    "# Posthorn configuration. Every setting has a safe default; docs/config.md describes\n"
    "# each one. Relative paths are relative to this file's directory.\n"
    "\n"
    "# The name this server greets with and writes into Received: headers.\n"
    "hostname = %s\n"
    "\n"
    "# Where the store (posthorn.db) and the message files live.\n"
    "data_dir = data\n"
    "\n"
    "# The store's database: sqlite (data_dir/posthorn.db) or postgresql, then\n"
    "# store_url is a libpq connection string or URI (keep passwords in a passfile:\n"
    "# passfile=/path in the string, or ~/.pgpass). Several nodes may share one.\n"
    "store = %s\n"
    "store_url = %s\n"
    "\n"
    "# TLS certificate chain and key (PEM). `init` wrote a self-signed pair; replace them\n"
    "# with real ones (e.g. from Let's Encrypt) and send SIGHUP to reload.\n"
    "tls_cert = tls/cert.pem\n"
    "tls_key = tls/key.pem\n"
    "\n"
    "# Listeners: a list of ADDRESS:PORT ('*' = every address). Empty disables one.\n"
    "smtp_listen = %s:%d\n"
    "submission_listen = %s:%d\n"
    "submissions_listen = %s:%d\n"
    "pop3_listen = %s:%d\n"
    "pop3s_listen = %s:%d\n"
    "imap_listen = %s:%d\n"
    "imaps_listen = %s:%d\n"
    "\n"
    "# When started as root, bind the ports, then run as this user (create it with\n"
    "# `adduser --system posthorn`). Empty: keep running as the starting user.\n"
    "user =\n"
    "\n"
    "# Event-loop threads (0 = one per CPU core).\n"
    "threads = 0\n"
    "\n"
    "# error, warn, info or debug; log_syslog = yes also sends lines to syslog (mail).\n"
    "log_level = info\n"
    "log_syslog = no\n"
    "\n"
    "# Passwords only over TLS. Never set this to yes outside a test setup.\n"
    "allow_plaintext_auth = no\n"
    "\n"
    "# A message with a bare CR or LF (RFC 5321 2.3.8): reject it (550 5.5.2), or\n"
    "# normalize the line ends to CRLF.\n"
    "smtp_bare_lf = reject\n"
    "\n"
    "# VRFY answers 252 (never confirms an address); 'no' disables it (502).\n"
    "smtp_vrfy = yes\n"
    "\n"
    "# Port 25 greets after this wait; a client that talks first is a bot (0 = at once).\n"
    "smtp_pregreet_wait = 1s\n"
    "\n"
    "# Look up the client's name (PTR, then its A/AAAA) for Received: and the filters.\n"
    "smtp_peername_lookup = yes\n"
    "\n"
    "# Greylisting on port 25 (off: it delays a sender's first mail): an unknown triplet\n"
    "# (sender, recipient, client /24 or /64) gets 451 4.7.1 until it retries after the\n"
    "# delay; a triplet that passed passes at once until unseen for greylist_expire.\n"
    "greylisting = no\n"
    "greylist_delay = 5m\n"
    "greylist_expire = 35d\n"
    "# Port 25 abuse limits (0 = off): unknown recipients per session (then 421),\n"
    "# connections per minute and messages (MAIL) per hour from one client address.\n"
    "smtp_invalid_recipients_max = 10\n"
    "smtp_connection_rate_per_ip = 0\n"
    "smtp_message_rate_per_ip = 0\n"
    "# Per-account submission limits over the last 24 hours (0 = off): messages, and\n"
    "# recipients the account never sent to before (451 4.7.1 beyond; as mox).\n"
    "submission_messages_per_day = 1000\n"
    "submission_recipients_per_day = 200\n"
    "\n"
    "# Outbound SMTP client timeouts (RFC 5321 4.5.3.2): connect (and each TLS\n"
    "# handshake), greeting, EHLO/MAIL/RCPT/..., the 354 after DATA, each block of the\n"
    "# body, and the reply after the final dot.\n"
    "outbound_connect_timeout = 30s\n"
    "outbound_greeting_timeout = 5m\n"
    "outbound_command_timeout = 5m\n"
    "outbound_data_init_timeout = 2m\n"
    "outbound_data_block_timeout = 3m\n"
    "outbound_data_done_timeout = 10m\n"
    "# Extra CAs trusted for outbound TLS besides the system's (tests, private CAs).\n"
    "# outbound_tls_ca_file = /path/to/ca.pem\n"
    "\n"
    "# POP3: offer APOP (MD5 challenge, weak; needs `posthorn user apop`), the EXPIRE\n"
    "# policy (days retrieved mail stays on the server, or never) and the minimum\n"
    "# seconds between two POP3 logins of one account (LOGIN-DELAY, 0 = none).\n"
    "pop3_apop = no\n"
    "pop3_expire = never\n"
    "pop3_login_delay = 0\n"
    "\n"
    "# IMAP: a long SEARCH, SORT or THREAD reports its progress this often (INPROGRESS).\n"
    "imap_progress_interval = 2s\n"
    "# IMAP NOTIFY: a session with more mailboxes than this waiting to be told of changes\n"
    "# gets NOTIFICATIONOVERFLOW and its NOTIFY ends (RFC 5465).\n"
    "imap_notify_max_pending = 1000\n"
    "# IMAP: most messages one FETCH, STORE, COPY, MOVE or UID EXPUNGE works on\n"
    "# (MESSAGELIMIT, RFC 9738; UID forms do the lowest UIDs, others say NO; 0 = none).\n"
    "imap_message_limit = 1000000\n"
    "# IMAP QRESYNC: expunged messages are remembered this long, so a client that\n"
    "# reconnects learns exactly which ones went; one away for longer gets every UID it\n"
    "# knows that is gone (correct, only longer). 0 = remember for ever.\n"
    "imap_expunge_retention = 90d\n"
    "\n"
    "# Password checks: at most auth_workers argon2id hashes at once (64 MiB each;\n"
    "# 0 = one less than the cores, at least 1), the rest wait. A successful login is\n"
    "# remembered for auth_cache_ttl (0 = no cache) in a table of auth_cache_size\n"
    "# entries, so repeat logins skip the hash; a password change or a removed account\n"
    "# is noticed at once.\n"
    "auth_workers = 0\n"
    "auth_cache_ttl = 1h\n"
    "auth_cache_size = 10000\n"
    "\n"
    "# Outbound delivery (docs/outbound.md): mail for other domains goes to their MX\n"
    "# hosts; a failed attempt is retried after queue_retry_min, doubling up to\n"
    "# queue_retry_max, until queue_lifetime; the sender is warned once after\n"
    "# queue_delay_warning (0 = never). outbound_enabled = no keeps it queued, unsent.\n"
    "outbound_enabled = yes\n"
    "outbound_ip = any\n"
    "outbound_mx_max = 5\n"
    "outbound_concurrency = 100\n"
    "outbound_domain_concurrency = 20\n"
    "outbound_connection_cache_time = 2s\n"
    "queue_retry_min = 5m\n"
    "queue_retry_max = 4000s\n"
    "queue_lifetime = 5d\n"
    "queue_delay_warning = 4h\n"
    "# Outbound queue: how long a delivery worker holds an entry it claimed (it renews\n"
    "# the lease while working); after a crash, another worker may retry the entry\n"
    "# once the lease has run out.\n"
    "queue_lease_time = 5m\n"
    "\n"
    "# Quota for new accounts (K, M, G suffixes; 0 = unlimited).\n"
    "default_quota = 0\n"
    "\n"
    "# Message bodies up to this size are stored in the database (one fsync per group\n"
    "# commit for all of them: much faster durable mail intake); larger ones as files\n"
    "# under data/messages/. 0 = every body in a file.\n"
    "store_inline_max = 128K\n"
    "\n"
    "# Free space the data directory's file system must keep: below it SMTP refuses MAIL\n"
    "# (452 4.3.1) and IMAP APPEND (NO [UNAVAILABLE]) until space is freed. auto = 1.5 x\n"
    "# limit_message_size (Postfix's rule); 0 = no check.\n"
    "min_free_space = auto\n"
    "\n"
    "# IMAP SEARCH BODY/TEXT answer from text decoded once at delivery, up to this much\n"
    "# per message (larger messages are searched from their files). 0 = no index.\n"
    "search_index_max_text = 1M\n"
    "\n"
    "# DNS for outbound delivery: dns_resolver = IP[:PORT] sends every query to that\n"
    "# server (empty: /etc/resolv.conf); dns_trust_anchor = FILE validates DNSSEC with\n"
    "# that anchor ('none': never; empty: Debian's root key when installed and no\n"
    "# dns_resolver is set); a lookup that takes longer than dns_timeout fails for now.\n"
    "dns_resolver =\n"
    "dns_trust_anchor =\n"
    "dns_timeout = 10s\n"
    "\n"
    "# Checks on arrival at port 25: SPF at MAIL FROM, DKIM and DMARC at the end of\n"
    "# DATA, and one Authentication-Results header (authserv-id: hostname) on every\n"
    "# message. DMARC p=reject is refused with 550 5.7.1 (dmarc_reject = no: Junk\n"
    "# instead), p=quarantine goes to the Junk folder; an SPF fail alone is refused\n"
    "# only with spf_reject_fail. Mail to inbound_checks_skip_domains (our domains,\n"
    "# space-separated) is checked and labelled but never refused or put in Junk.\n"
    "# ARC chains are verified too (arc= in the header); arc_trusted_sealers lists the\n"
    "# sealers (mailing lists, forwarders) whose passing chain sets a DMARC failure aside.\n"
    "inbound_checks = yes\n"
    "spf_reject_fail = no\n"
    "dmarc_reject = yes\n"
    "dmarc_quarantine = yes\n"
    "dkim_verify_max_signatures = 5\n"
    "inbound_checks_skip_domains =\n"
    "arc_trusted_sealers =\n"
    "\n"
    "# A mail filter for port 25 (milter protocol, e.g. inet:127.0.0.1:11332 for rspamd's\n"
    "# proxy): it sees each message after the checks and may refuse, defer, discard or\n"
    "# quarantine it or change its header. A filter that fails: milter_default_action.\n"
    "milter =\n"
    "milter_timeout = 30s\n"
    "milter_default_action = tempfail\n"
    "\n"
    "# DNS block and allow lists asked at connect on port 25 (see docs/config.md), e.g.\n"
    "# dnsbl_zones = zen.spamhaus.org=127.0.0.[2..11]\n"
    "dnsbl_zones =\n"
    "dnswl_zones =\n"
    "\n"
    "# TLS-RPT (RFC 8460): the TLS results of outbound sessions are kept per recipient\n"
    "# domain and day (tlsrpt_keep_days; `posthorn tlsrpt show`). tlsrpt_send = yes\n"
    "# mails the previous day's report, once a day, to the domains that publish a\n"
    "# _smtp._tls record (at most tlsrpt_max_domains); report mail can hurt your\n"
    "# reputation, so it is off. Empty organization/contact: the host name and\n"
    "# postmaster@ the host name.\n"
    "tlsrpt_send = no\n"
    "tlsrpt_organization =\n"
    "tlsrpt_contact =\n"
    "tlsrpt_max_domains = 100\n"
    "tlsrpt_keep_days = 14\n"
    "\n"
    "# DMARC aggregate reports (RFC 7489): the DMARC results of mail received on port 25\n"
    "# are kept per policy domain and day (dmarc_report_keep_days; `posthorn dmarc show`).\n"
    "# dmarc_report_send = yes mails the previous day's report, once a day, to the rua=\n"
    "# addresses of at most dmarc_report_max_domains domains; report mail has got servers\n"
    "# blocklisted, so it is off. Empty organization/contact: the host name and\n"
    "# postmaster@ the host name.\n"
    "dmarc_report_send = no\n"
    "dmarc_report_organization =\n"
    "dmarc_report_contact =\n"
    "dmarc_report_max_domains = 50\n"
    "dmarc_report_keep_days = 14\n"
    "\n"
    "# Limits (defaults in line with Postfix).\n"
    "limit_command_line = 2048\n"
    "limit_recipients = 1000\n"
    "limit_errors = 20\n"
    "limit_request_timeout = 300s\n"
    "limit_data_min_rate = 500\n"
    "limit_message_size = 50M\n"
    "limit_connections_per_ip = 50\n"
    "limit_connections = 10000\n"
    "# New IMAP, POP3 and submission connections per minute from one address (0 = off).\n"
    "limit_connection_rate_per_ip = 120\n"
    "limit_auth_failures = 3\n"
    "limit_header_lines = 1000\n"
    "limit_pop3_idle_timeout = 10m\n"
    "limit_imap_idle_timeout = 30m\n"
    "# IMAP METADATA (RFC 5464): octets per value, entries per account.\n"
    "limit_metadata_size = 64K\n"
    "limit_metadata_entries = 100\n"
    "\n"
    "# Before login (port 25: before MAIL): time from connect, TLS handshake time, and\n"
    "# commands allowed; logged-in sessions of one account from one address (0 = any).\n"
    "limit_tls_handshake_timeout = 30s\n"
    "limit_login_timeout = 60s\n"
    "limit_login_commands = 30\n"
    "limit_sessions_per_user_ip = 10\n";

/* made_r (may be NULL) is set when the directory was made here. */
static int init_mkdir(const char *path, mode_t mode, bool *made_r)
{
	if (mkdir(path, mode) == 0) {
		if (made_r != NULL)
			*made_r = true;
		return 0;
	}
	if (errno == EEXIST)
		return 0;
	return cli_fail("cannot create %s: %s", path, strerror(errno));
}

static char *init_path(const char *dir, const char *name)
{
	struct buf b;
	buf_init(&b, 4096);
	if (buf_printf(&b, "%s/%s", dir, name) < 0) {
		buf_free(&b);
		return NULL;
	}
	return b.data;
}

static int init_write_conf(const char *path, const char *hostname, int base, const char *engine,
                           const char *url)
{
	const char *host = base > 0 ? "127.0.0.1" : "*";
	struct buf b;
	buf_init(&b, 65536);
	if (buf_printf(&b, conf_template, hostname, engine, url, host, base + 25, host, base + 587,
	               host, base + 465, host, base + 110, host, base + 995, host, base + 143, host,
	               base + 993) < 0) {
		buf_free(&b);
		return cli_fail("configuration too large");
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0) {
		buf_free(&b);
		return cli_fail("cannot create %s: %s", path, strerror(errno));
	}
	int ok = write(fd, b.data, b.len) == (ssize_t)b.len && fsync(fd) == 0;
	close(fd);
	buf_free(&b);
	return ok ? 0 : cli_fail("cannot write %s", path);
}

/* The files are fsynced as they are written (the configuration here, the certificate and
 * key in tls_generate_self_signed(), the store by itself, which also syncs data/); their
 * names are durable only once the directories holding them are synced: tls/ (cert.pem,
 * key.pem), DIR (posthorn.conf, data/, tls/) and, when DIR was made here, its parent. */
static int init_sync_dirs(const char *dir, const char *tls, bool made_dir)
{
	const char *error;
	if (blob_sync_dir(tls, &error) < 0 || blob_sync_dir(dir, &error) < 0)
		return cli_fail("%s", error);
	if (!made_dir)
		return 0;
	/* The parent may be one we cannot read (open to sync): then say so and go on, as the
	 * store does for the parent of a data directory it makes. */
	char *parent = init_path(dir, "..");
	if (parent == NULL || blob_sync_dir(parent, &error) < 0)
		fprintf(stderr, "posthorn: warning: %s\n",
		        parent == NULL ? "directory name too long" : error);
	free(parent);
	return 0;
}

int cli_init(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	if (cli_wants_help(argc, argv, init_usage))
		return 0;
	const char *dir = NULL, *hostname = NULL, *engine = "sqlite", *url = "";
	long base = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--hostname") == 0 && i + 1 < argc) {
			hostname = argv[++i];
		} else if (strcmp(argv[i], "--port-base") == 0 && i + 1 < argc) {
			char *end;
			base = strtol(argv[++i], &end, 10);
			if (*end != '\0' || base < 1 || base > 64000)
				return cli_fail("--port-base must be a number from 1 to 64000");
		} else if (strcmp(argv[i], "--store") == 0 && i + 1 < argc) {
			engine = argv[++i];
			if (strcmp(engine, "sqlite") != 0 && strcmp(engine, "postgresql") != 0)
				return cli_fail("--store must be sqlite or postgresql");
		} else if (strcmp(argv[i], "--store-url") == 0 && i + 1 < argc) {
			url = argv[++i];
			if (strchr(url, '\n') != NULL || strchr(url, '\r') != NULL)
				return cli_fail("--store-url must be one line");
		} else if (argv[i][0] != '-' && dir == NULL) {
			dir = argv[i];
		} else {
			fputs(init_usage, stderr);
			return 2;
		}
	}
	if (dir == NULL || hostname == NULL) {
		fputs(init_usage, stderr);
		return 2;
	}
	if ((strcmp(engine, "postgresql") == 0) != (url[0] != '\0'))
		return cli_fail("--store postgresql and --store-url go together");
	if (!address_domain_valid(hostname, strlen(hostname)))
		return cli_fail("%s is not a valid host name", hostname);
	char *conf_path = init_path(dir, "posthorn.conf");
	char *data = init_path(dir, "data");
	char *tls = init_path(dir, "tls");
	char *cert = init_path(dir, "tls/cert.pem");
	char *key = init_path(dir, "tls/key.pem");
	int ret = 1;
	const char *error;
	if (access(conf_path, F_OK) == 0) {
		cli_fail("%s already exists", conf_path);
		goto out;
	}
	bool made_dir = false;
	if (init_mkdir(dir, 0755, &made_dir) != 0 || init_mkdir(data, 0750, NULL) != 0 ||
	    init_mkdir(tls, 0750, NULL) != 0)
		goto out;
	if (tls_generate_self_signed(cert, key, hostname, &error) < 0) {
		cli_fail("TLS certificate: %s", error);
		goto out;
	}
	struct store *store;
	if (store_open_engine(data, engine, url, &store, &error) < 0) {
		cli_fail("cannot create the store in %s: %s", data, error);
		goto out;
	}
	store_close(&store);
	if (init_write_conf(conf_path, hostname, (int)base, engine, url) != 0 ||
	    init_sync_dirs(dir, tls, made_dir) != 0)
		goto out;
	printf("created %s\n", conf_path);
	ret = 0;
out:
	free(conf_path);
	free(data);
	free(tls);
	free(cert);
	free(key);
	return ret;
}
