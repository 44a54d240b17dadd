/* Internals of the outbound engine shared by outbound.c (the queue side: claims, store
 * completions, concurrency), outbound_attempt.c (one attempt: message, DNS, hosts, SMTP
 * sessions) and outbound_report.c (recording results, DSNs, the delivery log). */
#ifndef POSTHORN_SMTP_OUTBOUND_PRIVATE_H
#define POSTHORN_SMTP_OUTBOUND_PRIVATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/conf.h"
#include "net/dns.h"
#include "smtp/outbound.h"
#include "smtp/dsn.h"
#include "smtp/mta_sts.h"
#include "smtp/mta_sts_fetch.h"
#include "smtp/outbound_route.h"
#include "smtp/smtp_client.h"
#include "store/store.h"

struct net_event;
struct net_loop;
struct dkim_keys;
struct tls_ctx;

#define OB_HOSTS_MAX 16
#define OB_ADDRS_MAX 16
#define OB_TLSA_MAX 8
#define OB_POLL_MS 1000 /* the queue is looked at this often (the CLI's changes) */
#define OB_RELAY_MAX 320
#define OB_IDLE_SECONDS 2 /* an idle session is kept this long (Postfix: 2 s) */
#define OB_IDLE_MAX 100   /* idle sessions at most */
#define OB_REUSE_MAX 100  /* messages over one session at most */
#define OB_SESSION_KEY_MAX 600
#define OB_STS_TIMEOUT 30 /* seconds for an MTA-STS policy fetch */
#define OB_STS_CACHE_MAX 10000
#define OB_TLSRPT_MAX 32 /* TLS-RPT session results per attempt */

/* One TLS session of an attempt for TLS-RPT (outbound_tlsrpt.c). */
struct ob_tlsrpt {
	const char *policy_type;       /* "sts", "tlsa", "no-policy-found" */
	const char *result_type;       /* NULL: success */
	char *policy_string, *mx_host; /* malloc'd */
	char sending_ip[46], receiving_mx[256], receiving_ip[46];
};

/* A domain's MTA-STS policy as last fetched (RFC 8461 §5.1: used until max_age). */
struct ob_sts {
	struct ob_sts *next;
	char domain[256];
	char id[MTA_STS_ID_MAX];
	struct mta_sts_policy policy;
	int64_t expires;
};

/* Claimed entries come as one array from the store: it is freed with its last job. */
struct ob_batch {
	struct store_queue_entry *entries;
	size_t count;
	size_t refs;
};

struct ob_rcpt {
	const struct store_queue_rcpt *q;
	enum smtp_client_status status; /* PENDING until a host answered for it */
	struct smtp_client_reply reply;
	char relay[OB_RELAY_MAX]; /* "host[ip]:port" that answered */
	bool relayed;             /* delivered to a host without DSN: we report success */
};

/* An SMTP session: working for one attempt, or idle and waiting to be reused. */
struct ob_session {
	struct outbound *ob;
	struct smtp_client *client;
	struct ob_job *job; /* NULL when idle (or finishing a message no attempt waits for) */
	char key[OB_SESSION_KEY_MAX];
	unsigned uses; /* messages sent over it */
	bool idle;
	int64_t idle_since;
	struct ob_session *next; /* ob->idle_sessions */
};

enum ob_job_state { OB_JOB_WAITING, OB_JOB_RUNNING, OB_JOB_REPORTING };

struct ob_job {
	struct outbound *ob;
	struct ob_job *next;
	enum ob_job_state state;
	bool slot_freed; /* counted out of ob->active already (outbound_slot_free) */
	struct ob_batch *batch;
	struct store_queue_entry *entry;
	struct conf *conf;
	int64_t now;
	/* the message: mapped for DKIM, the 8-bit scan and DSNs */
	unsigned char *map;
	size_t map_len;
	size_t skip; /* the Return-Path line at the top, never sent */
	bool eightbit, smtputf8;
	struct buf dkim;
	/* routing: the MX hosts, or the one host of a static route or the smarthost */
	int port;
	enum outbound_tls_mode tls_mode;
	enum conn_tls_verify verify;
	char *auth_user, *auth_password; /* the smarthost's credentials, or NULL */
	struct outbound_mx hosts[OB_HOSTS_MAX];
	char *host_names[OB_HOSTS_MAX];
	size_t host_count, host_i;
	struct dns_lookup *lookup;
	uint16_t addr_type; /* DNS_TYPE_A or DNS_TYPE_AAAA being looked up */
	struct dns_addr addrs[OB_ADDRS_MAX];
	size_t addr_count, addr_i;
	/* DANE (RFC 7672): the MX answer and the host's addresses were DNSSEC-secure, and the
	 * host has secure, usable TLSA records: TLS is then mandatory and checked by them. */
	bool routed; /* a route, smarthost or address literal: no DANE */
	bool mx_secure, host_secure;
	struct conn_tlsa tlsa[OB_TLSA_MAX];
	unsigned char *tlsa_data[OB_TLSA_MAX];
	size_t tlsa_count;
	/* MTA-STS (RFC 8461): the domain's policy, when it has one (mode NONE otherwise) */
	struct mta_sts_policy sts;
	char sts_id[MTA_STS_ID_MAX];
	struct mta_sts_fetch *sts_fetch;
	/* the session with the current address */
	struct ob_session *sess; /* the session working for this attempt, or NULL */
	bool plain_retry;        /* this address again without STARTTLS after a failed handshake */
	bool no_tls;
	bool sent; /* the message went to this session */
	struct smtp_client_message msg;
	struct smtp_client_rcpt *crcpts;
	size_t *cmap;       /* crcpts[i] is rcpts[cmap[i]] */
	char (*notify)[32]; /* per crcpt: NOTIFY= text */
	/* outcome */
	struct ob_rcpt *rcpts;
	size_t rcpt_count;
	struct smtp_client_reply host_reply; /* the last host-level failure */
	char host_relay[OB_RELAY_MAX];
	char tls_desc[200], tls_verify[200];
	struct net_event *renew;
	/* TLS-RPT: the sessions of this attempt, recorded with its RESULT */
	struct ob_tlsrpt tlsrpt[OB_TLSRPT_MAX];
	size_t tlsrpt_count;
};

/* outbound_daily.c: the schedule of a daily report (TLS-RPT, DMARC aggregate) */
struct ob_daily {
	int64_t day;   /* the last UTC day whose previous day was claimed; 0: none yet */
	int64_t delay; /* seconds after midnight to wait today; -1: not drawn yet */
	bool claiming; /* the claim is in flight */
};

struct outbound {
	struct net_server *server;
	struct net_loop *loop;
	struct store *store;
	struct conf_slot *slot;
	struct dns_resolver *dns;
	struct dkim_keys *dkim;
	struct tls_ctx *tls;
	char owner[STORE_QUEUE_OWNER_MAX];        /* "hostname:pid" */
	char owner_prefix[STORE_QUEUE_OWNER_MAX]; /* "hostname:" */
	struct net_event *wake;                   /* store completions and the queue hook */
	struct net_event *timer;                  /* polling the queue */
	struct ob_job *jobs;
	struct ob_session *idle_sessions; /* waiting to be reused */
	size_t idle_count;
	struct ob_sts *sts_cache;
	size_t sts_cached;
	size_t active; /* jobs not yet reported */
	bool claiming, unleased, claim_wanted;
	/* the read of when the next entry is due (store_read()): in flight, and its answer */
	bool due_reading;
	int due_ret;
	int64_t due_when;
	/* shared with the writer thread and the main thread */
	pthread_mutex_t lock;
	pthread_cond_t idle;
	struct ob_op *done; /* completed store operations, newest first */
	unsigned in_flight; /* store operations, reads and DSN deliveries not completed */
	bool stopping;
	bool due_ready; /* the due read finished */
	/* TLS-RPT: its daily schedule, the report run */
	struct ob_daily tlsrpt_daily;
	struct outbound_tlsrpt_run *tlsrpt_run;
	/* DMARC aggregate reports: the same for outbound_dmarc.c */
	struct ob_daily dmarc_daily;
	struct outbound_dmarc_run *dmarc_run;
};

/* A store queue operation of the engine; completes through ob->wake. */
struct ob_op {
	struct store_queue_op op;
	struct outbound *ob;
	struct ob_job *job; /* RESULT, RENEW */
	struct store_queue_result *results;
	struct store_tlsrpt_result *tlsrpt; /* RESULT */
	struct ob_op *next;
};

/* outbound.c */
void outbound_queue_op(struct outbound *ob, struct ob_op *op);
bool outbound_stopping(struct outbound *ob);
/* The attempt's record is queued: its slot may take the next entry at once (the claim
 * queued after the record sees it), instead of after the record's commit. */
void outbound_slot_free(struct ob_job *job);
/* The job was reported (or dropped): free it and start what waited for its slot. */
void outbound_job_done(struct ob_job *job);

/* outbound_attempt.c */
void outbound_attempt_start(struct ob_job *job);
void outbound_attempt_free(struct ob_job *job);

/* Map a stored message read-only (*map_r, *len_r), with in *skip_r the length of its first
 * Return-Path line (never sent, never quoted). 0 ok, -1 (nothing mapped) when the file is
 * missing, empty or cannot be mapped. Release with munmap(). */
int outbound_map_message(const struct store_queue_entry *e, unsigned char **map_r, size_t *len_r,
                         size_t *skip_r);

/* outbound_dsn.c: reports to senders, built and stored */
#define OB_DSN_MAX (4 * 1024 * 1024)
struct ob_dsn {
	struct store_delivery d;
	struct outbound *ob; /* the engine's, or NULL (the CLI) */
	char *path, *to, *subject, *from;
	uint64_t account;
	const char *remote[1];
};
/* Does a recipient with these NOTIFY bits want a report of this kind (STORE_NOTIFY_*
 * bit)? Without NOTIFY: failures and delays (RFC 3461 §4.1 leaves it to us). */
bool outbound_dsn_wanted(unsigned notify, unsigned bit);
const char *outbound_dsn_kind_name(enum dsn_action kind);
/* The report (dsn.h) about n recipients of entry e; the original (without its Return-Path
 * line) may be NULL. 0 ok, -1 too large. */
int outbound_dsn_build(const struct conf *conf, const struct store_queue_entry *e,
                       const struct dsn_recipient *list, size_t n, bool utf8,
                       const unsigned char *original, size_t original_len, int64_t now,
                       struct buf *out);
/* Make bytes, a report of kind, ready for store_deliver() to sender: a spool file with our
 * Return-Path line, to the sender's account when the sender's domain is ours, else to the
 * queue with the null sender. 1 ready (out filled), 0 dropped (no such local sender), -1
 * error; both logged. Release out with outbound_dsn_release() in every case. */
int outbound_dsn_prepare(struct store *store, const char *hostname, const char *sender,
                         const struct buf *bytes, enum dsn_action kind, int64_t now,
                         struct ob_dsn *out);
void outbound_dsn_release(struct ob_dsn *dsn);

/* outbound_session.c */
/* Send job's message over an idle session that matches p, or start a session with p.
 * 0 ok (the callbacks follow), -1 with *error_r (no session). */
int outbound_session_start(struct ob_job *job, const struct smtp_client_params *p,
                           const char **error_r);
/* Quit sessions idle for outbound_connection_cache_time (all of them with all). */
void outbound_session_sweep(struct outbound *ob, bool all);
/* outbound_attempt.c, called by the session layer */
void attempt_session_ready(struct ob_job *job, struct smtp_client *c);
void attempt_session_message_done(struct ob_job *job, struct smtp_client *c,
                                  struct smtp_client_message *msg, bool reused);
void attempt_session_closed(struct ob_job *job, struct smtp_client *c,
                            const struct smtp_client_result *result);

/* outbound_report.c */
/* The attempt is over: log, send the DSNs, record the outcome in the store. */
void outbound_report(struct ob_job *job);

/* outbound_tlsrpt.c: TLS-RPT results of an attempt */
/* A session with the current host ended: result NULL when it took the message (its TLS
 * state says success or failure), else how it failed before. */
void outbound_tlsrpt_session(struct ob_job *job, struct smtp_client *c,
                             const struct smtp_client_result *result);
/* The current host was not used for a TLS reason (result_type: "dnssec-invalid"). */
void outbound_tlsrpt_host_failed(struct ob_job *job, const char *result_type);
/* The domain's MTA-STS policy could not be fetched (error: mta_sts_fetch's text). */
void outbound_tlsrpt_sts_failed(struct ob_job *job, const char *error);
/* The results as the store takes them (pointing into job), malloc'd; NULL when none. */
struct store_tlsrpt_result *outbound_tlsrpt_results(const struct ob_job *job);
void outbound_tlsrpt_free(struct ob_job *job);
/* Every poll: claim yesterday's reports once a day; the claim's completion. */
void outbound_tlsrpt_tick(struct outbound *ob);
void outbound_tlsrpt_claimed(struct outbound *ob, struct ob_op *o);
/* outbound_dmarc.c: the daily claim and run of DMARC aggregate reports */
void outbound_dmarc_tick(struct outbound *ob);
void outbound_dmarc_claimed(struct outbound *ob, struct ob_op *o);

/* outbound_daily.c: a daily report's schedule, for the reports' modules. */
struct ob_daily_kind {
	const char *event;   /* the log event, "tlsrpt-day" */
	const char *setting; /* the setting that turns sending on, "tlsrpt_send" */
	bool (*send)(const struct conf *conf); /* is it on? */
};
void outbound_daily_init(struct ob_daily *d);
/* A report's From: address into out: contact (tlsrpt_contact, dmarc_report_contact), or when
 * that is "", postmaster@hostname. */
void outbound_daily_from(const struct conf *conf, const char *contact, char *out, size_t n);
/* The report-id of domain's report of day (TLS-RPT and DMARC alike): DAY.DOMAIN@hostname. */
void outbound_daily_report_id(const struct conf *conf, int64_t day, const char *domain, char *out,
                              size_t n);
/* Every poll: a new claim of yesterday (action, op.id the day) for the caller to complete
 * and queue, or NULL when it is not time (claimed today, a claim in flight, the delay). */
struct ob_op *outbound_daily_tick(struct ob_daily *d, enum store_queue_action action);
/* The claim o completed (logged): the conf (the caller's) to start the day's run with, or
 * NULL when this process does not send (failed, claimed before, sending off, busy, stopping). */
struct conf *outbound_daily_claimed(struct outbound *ob, struct ob_daily *d,
                                    const struct ob_daily_kind *kind, const struct ob_op *o,
                                    bool busy);

/* outbound_own.c: store a mail the server wrote (a report) for rcpt: into the account of a
 * local rcpt, else into the outbound queue, with Return-Path: <from> on top; counted in
 * ob->in_flight until committed (ob NULL: not counted). event names it in log lines
 * ("tlsrpt" gives event=tlsrpt-failed). 0, or -1 (logged). */
int outbound_own_mail(struct store *store, struct outbound *ob, const char *event, const char *from,
                      const char *rcpt, const char *subject, const struct buf *mail, int64_t now)
    __attribute__((warn_unused_result));

#endif
