/* posthorn.conf: one "key = value" per line, '#' starts a comment. Every key has a safe
 * default; an unknown key or a bad value is an error naming file, line and key. Relative
 * paths are relative to the directory that holds the config file. All limits live in
 * struct limits (defaults in line with Postfix). docs/config.md documents every key. */
#ifndef POSTHORN_CORE_CONF_H
#define POSTHORN_CORE_CONF_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conf_policy.h"
#include "core/log.h"

struct limits {
	size_t command_line;             /* octets incl. CRLF; over it: 500 5.5.2 */
	unsigned recipients;             /* per transaction; over it: 452 4.5.3 */
	unsigned errors;                 /* bad commands before 421 4.7.0 and disconnect */
	unsigned request_timeout;        /* seconds to wait for a command or data chunk */
	size_t data_min_rate;            /* octets/second a client must sustain in DATA (0: off) */
	uint64_t message_size;           /* octets; advertised as SIZE */
	unsigned connections_per_ip;     /* simultaneous connections from one address (0: off) */
	unsigned connections;            /* simultaneous connections in all */
	unsigned connection_rate_per_ip; /* new IMAP/POP3/submission connections per minute
	                                    from one IPv4 address or IPv6 /64 (0: off) */
	unsigned auth_failures;          /* failed AUTH per connection before disconnect */
	unsigned header_lines;           /* header fields scanned per message at delivery */
	unsigned pop3_idle_timeout;      /* seconds; RFC 1939 §3 asks for at least 10 minutes */
	unsigned imap_idle_timeout;      /* seconds; RFC 9051 §5.4 asks for at least 30 minutes */
	unsigned tls_handshake_timeout; /* seconds from accept / STARTTLS to a finished handshake */
	unsigned login_timeout;  /* seconds from accept to login (SMTP 25: to MAIL), absolute */
	unsigned login_commands; /* commands before login; over it: BYE / -ERR / 421, close */
	unsigned sessions_per_user_ip; /* simultaneous logins of one account from one IP, per
	                                  protocol (0: off) */
	size_t metadata_size;          /* octets of one IMAP METADATA value (RFC 5464 MAXSIZE) */
	unsigned metadata_entries;     /* IMAP METADATA entries per account (TOOMANY) */
};

enum conf_bare_lf { CONF_BARE_LF_REJECT, CONF_BARE_LF_NORMALIZE };
/* What a message gets when the milter cannot decide (milter_default_action). */
enum conf_milter_action { CONF_MILTER_TEMPFAIL, CONF_MILTER_ACCEPT, CONF_MILTER_REJECT };
/* Which addresses of a remote host outbound delivery uses (outbound_ip). */
enum conf_outbound_ip { CONF_OUTBOUND_IP_ANY, CONF_OUTBOUND_IP_V4, CONF_OUTBOUND_IP_V6 };

enum conf_listener_kind {
	CONF_LISTENER_SMTP,        /* port 25: MTA to MTA, STARTTLS offered */
	CONF_LISTENER_SUBMISSION,  /* port 587: STARTTLS, AUTH required */
	CONF_LISTENER_SUBMISSIONS, /* port 465: implicit TLS, AUTH required */
	CONF_LISTENER_POP3,        /* port 110: STLS offered */
	CONF_LISTENER_POP3S,       /* port 995: implicit TLS */
	CONF_LISTENER_IMAP,        /* port 143: STARTTLS offered */
	CONF_LISTENER_IMAPS,       /* port 993: implicit TLS */
	CONF_LISTENER_COUNT
};

#define CONF_LISTEN_MAX 8

/* One tls_sni entry: NAME:CERT[:KEY] (paths resolved; key NULL: in the cert file). */
#define CONF_TLS_SNI_MAX 256
struct conf_tls_sni {
	char *name; /* lower-case host name, or "*.domain" */
	char *cert;
	char *key;
};

struct conf_listen {
	char *host; /* numeric address; "*" for all IPv4 and IPv6 */
	int port;
};

struct conf {
	unsigned refcount;  /* conf_ref()/conf_free(); starts at 1 */
	char *path;         /* the file this was read from (or NULL for defaults) */
	char *hostname;     /* greeting, Received headers */
	char *data_dir;     /* store and message files */
	char *store_engine; /* "sqlite" or "postgresql" */
	char *store_url;    /* postgresql: a libpq connection string or URI */
	char *tls_cert;     /* PEM chain */
	char *tls_key;      /* PEM private key */
	/* tls_sni: certificates chosen by the name a client asks for (SNI) */
	struct conf_tls_sni *tls_sni;
	size_t tls_sni_count;
	char *run_user;   /* drop to this user when started as root ("" = stay) */
	unsigned threads; /* event-loop threads, 0 = one per core */
	enum log_level log_level;
	bool log_syslog;
	bool allow_plaintext_auth; /* permit AUTH before TLS (tests only) */
	enum conf_bare_lf smtp_bare_lf;
	uint64_t default_quota;         /* bytes for new accounts, 0 = unlimited */
	uint64_t store_inline_max;      /* bodies up to this size live in the database */
	unsigned store_read_threads;    /* 0 = by the engine */
	uint64_t search_index_max_text; /* SEARCH text stored per message; 0 = no index */
	uint64_t min_free_space;        /* octets the data directory's file system must keep free to
	                                   take mail (CONF_MIN_FREE_AUTO: conf_min_free_space()) */
	bool vrfy_enabled;
	bool pop3_apop;            /* offer APOP (weak, MD5) to accounts with an APOP secret */
	int pop3_expire;           /* days retrieved mail stays (RFC 2449 EXPIRE), -1 = never */
	unsigned pop3_login_delay; /* seconds between POP3 logins of one account (0 = none) */
	unsigned imap_progress_interval;  /* seconds between INPROGRESS reports (RFC 9585) of a
	                                     long SEARCH/SORT/THREAD; 0: at every pause */
	unsigned imap_notify_max_pending; /* mailboxes with undelivered NOTIFY events (RFC 5465)
	                                     a session may have before NOTIFICATIONOVERFLOW */
	unsigned imap_message_limit; /* MESSAGELIMIT (RFC 9738): messages one FETCH, STORE, COPY,
	                                MOVE or UID EXPUNGE processes; 0 = no limit */
	unsigned imap_expunge_retention; /* seconds QRESYNC tombstones of expunged messages are
	                                    kept (pruned hourly); 0: for ever */
	unsigned smtp_pregreet_wait; /* seconds port 25 waits before greeting, to catch clients that
	                                talk first (0: greet at once) */
	bool smtp_peername_lookup;   /* the client's forward-confirmed name (smtp/smtp_rdns.c) */
	/* flood and abuse defence (smtp/smtp_policy.c, issue 12); 0 = off where a limit */
	bool greylisting;                         /* port 25: greylist unknown triplets */
	bool dnsbl;                               /* a client dnsbl_zones list is refused */
	unsigned greylist_delay;                  /* seconds before a retry passes */
	unsigned greylist_expire;                 /* seconds a triplet is remembered unseen */
	unsigned greylist_auto_whitelist_clients; /* passes after which a client network skips
	                                             greylisting (Postgrey's), 0 = off */
	unsigned smtp_invalid_recipients_max;     /* unknown recipients per port 25 session */
	unsigned smtp_connection_rate_per_ip;     /* port 25 connections per minute per IP */
	unsigned smtp_message_rate_per_ip;        /* port 25 MAIL commands per hour per IP */
	unsigned submission_messages_per_day;     /* messages an account submits in 24 hours */
	unsigned submission_recipients_per_day;   /* new recipients of an account in 24 hours */
	unsigned auth_workers;      /* password checks at once (threads), 0 = one per core */
	unsigned auth_cache_ttl;    /* seconds a successful login is remembered, 0 = no cache */
	unsigned auth_cache_size;   /* entries of the authentication cache */
	char *dns_resolver;         /* numeric address of the one DNS server to ask, "" = the
	                               system's (/etc/resolv.conf) */
	unsigned dns_resolver_port; /* its port, default 53 */
	char *dns_trust_anchor;     /* DNSSEC trust anchor file, "none", or "" = automatic */
	unsigned dns_timeout;       /* seconds a lookup may take before it is a temporary failure */
	/* checks on arrival at port 25 (smtp/smtp_checks.c) */
	bool inbound_checks;                 /* SPF, DKIM, DMARC and Authentication-Results */
	bool spf_reject_fail;                /* SPF fail: 550 5.7.23 at MAIL (RFC 7372) */
	bool dmarc_reject;                   /* p=reject: 550 5.7.1 (no: quarantine instead) */
	bool dmarc_quarantine;               /* p=quarantine: the recipients' Junk folder */
	unsigned dkim_verify_max_signatures; /* DKIM-Signature fields verified per message */
	char *inbound_checks_skip_domains;   /* our domains whose mail is checked, not acted on */
	char *arc_trusted_sealers;           /* ARC sealers whose pass sets a DMARC failure aside */
	char *dnsbl_zones;                   /* DNS block lists asked at connect on port 25 */
	char *dnswl_zones;                   /* DNS allow lists asked at connect on port 25 */
	char *milter; /* inet:IP:PORT or unix:/PATH of a mail filter for port 25, or "" */
	unsigned milter_timeout; /* seconds for the connect and for each reply */
	enum conf_milter_action milter_default_action;
	char *rspamd_url;        /* rspamd's normal worker (HTTP /checkv2) for port 25, or "" */
	char *rspamd_ip;         /* from rspamd_url: the numeric address ("" when off) */
	unsigned rspamd_port;    /* its port (11333 unless given) */
	char *rspamd_path;       /* the path before /checkv2, without a trailing '/' ("") */
	unsigned rspamd_timeout; /* seconds for the whole check: connect, send, answer */
	enum conf_milter_action rspamd_default_action; /* when rspamd cannot decide */
	bool rspamd_junk;         /* "add header", "rewrite subject": the recipients' Junk folder */
	char *public_suffix_list; /* the PSL file (DMARC organizational domains) */
	/* [domain NAME] and [account ADDRESS] sections over the switches above
	 * (core/conf_policy.h), inbound_checks_skip_domains folded in */
	struct conf_policies policies;
	/* What the SMTP server derives from this conf once, at load (the parsed DNS lists):
	 * opaque here, freed with the conf by smtp_derived_free. */
	void *smtp_derived;
	void (*smtp_derived_free)(void *derived);
	/* outbound delivery (smtp/outbound.c) */
	bool outbound_enabled;                   /* no: remote mail stays queued, unsent */
	unsigned outbound_port;                  /* port of every MX/A host (25; tests change it) */
	unsigned outbound_mx_max;                /* MX hosts tried per attempt */
	enum conf_outbound_ip outbound_ip;       /* any, ipv4, ipv6 */
	unsigned outbound_concurrency;           /* attempts at once in all */
	unsigned outbound_domain_concurrency;    /* attempts at once to one domain */
	unsigned outbound_connection_cache_time; /* seconds an idle session is kept for reuse */
	unsigned queue_retry_min;                /* seconds after the first failed attempt */
	unsigned queue_retry_max;                /* the longest wait between attempts */
	unsigned queue_lifetime;                 /* seconds a message may stay queued */
	unsigned queue_delay_warning;            /* seconds before a delay DSN (0: none) */
	char *outbound_routes;                   /* "DOMAIN=HOST[:PORT][/MODE] ...", "" none */
	unsigned mta_sts_port;       /* HTTPS port of mta-sts.DOMAIN (443; tests change it) */
	char *outbound_tls_required; /* destination domains that need STARTTLS, "" none */
	char *smarthost;             /* "HOST[:PORT]": every remote message goes there, "" none */
	char *smarthost_tls;         /* "starttls", "tls" (implicit) or "" (by the port) */
	bool smarthost_tls_verify;   /* the smarthost's certificate must verify */
	char *smarthost_user;        /* AUTH user name, "" none */
	char *smarthost_password;    /* its password (or smarthost_password_file) */
	char *smarthost_password_file;
	/* TLS-RPT (RFC 8460, smtp/outbound_tlsrpt.c): results are always collected; daily
	 * reports are sent only with tlsrpt_send. "" organization/contact: the host name and
	 * postmaster@hostname. */
	bool tlsrpt_send;
	char *tlsrpt_organization;
	char *tlsrpt_contact;
	unsigned tlsrpt_max_domains; /* reports sent per day at most */
	unsigned tlsrpt_keep_days;   /* days of results kept in the store */
	/* DMARC aggregate reports (RFC 7489 §7.2, smtp/outbound_dmarc.c): collected on port 25
	 * with inbound_checks; daily reports are sent only with dmarc_report_send. ""
	 * organization/contact: the host name and postmaster@hostname. */
	bool dmarc_report_send;
	char *dmarc_report_organization;
	char *dmarc_report_contact;
	unsigned dmarc_report_max_domains; /* policy domains reported to per day at most */
	unsigned dmarc_report_keep_days;   /* days of rows kept in the store */
	unsigned queue_lease_time;         /* seconds a delivery worker holds a claimed queue entry
	                                      (renewed while it works on it) */
	size_t listen_count[CONF_LISTENER_COUNT];
	struct conf_listen listen[CONF_LISTENER_COUNT][CONF_LISTEN_MAX];
	struct limits limits;
	/* The SMTP client of outbound delivery: timeouts in seconds (RFC 5321 §4.5.3.2) and a
	 * PEM file of extra trusted CAs (tests, private CAs; NULL = the system's only). */
	unsigned outbound_connect_timeout;
	unsigned outbound_greeting_timeout;
	unsigned outbound_command_timeout;
	unsigned outbound_data_init_timeout;
	unsigned outbound_data_block_timeout;
	unsigned outbound_data_done_timeout;
	char *outbound_tls_ca_file;
};

/* A conf holding every default; paths resolved against base_dir. Free with conf_free(). */
struct conf *conf_new_defaults(const char *base_dir);
/* Read path over the defaults. Returns the conf, or NULL with *error_r set to a malloc'd
 * message "FILE:LINE: key: reason" (caller frees). */
struct conf *conf_load(const char *path, char **error_r);
/* Parse config text as if it came from path (for tests). Same returns as conf_load(). */
struct conf *conf_parse(const char *path, const char *text, size_t len, char **error_r);
/* Take another reference (thread-safe); conf_free() drops one and frees at zero. */
struct conf *conf_ref(struct conf *conf);
/* min_free_space = auto (the default): Postfix's rule, 1.5 x limit_message_size. */
#define CONF_MIN_FREE_AUTO UINT64_MAX
/* The free space new mail needs on the data directory's file system, in octets: the
 * setting, or 1.5 x limit_message_size for auto; 0 = no check. */
uint64_t conf_min_free_space(const struct conf *conf);
void conf_free(struct conf **conf);
/* The configuration a server hands to new sessions, swapped on SIGHUP while sessions keep
 * the one they started with. */
struct conf_slot {
	pthread_mutex_t lock;
	struct conf *conf;
};
/* Hold a reference on conf. */
void conf_slot_init(struct conf_slot *slot, struct conf *conf);
void conf_slot_deinit(struct conf_slot *slot);
/* Replace the held conf (thread-safe); the old one is released. */
void conf_slot_set(struct conf_slot *slot, struct conf *conf);
/* A new reference on the current conf (thread-safe); release with conf_free(). */
struct conf *conf_slot_get(struct conf_slot *slot);

/* Parse a listener list like "127.0.0.1:25 [::1]:25 *:25" into conf. 0 ok, -1 bad. */
int conf_parse_listen(struct conf *conf, enum conf_listener_kind kind, const char *value);

#endif
