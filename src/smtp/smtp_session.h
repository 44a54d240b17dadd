/* Internals of an SMTP session shared by smtp_session.c (I/O, state, DATA/BDAT, delivery)
 * and smtp_commands.c (the command table and handlers). Not for other modules. */
#ifndef POSTHORN_SMTP_SMTP_SESSION_H
#define POSTHORN_SMTP_SMTP_SESSION_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "auth/auth.h"
#include "auth/auth_login.h"
#include "auth/sasl.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/conf.h"
#include "core/userip.h"
#include "mime/header.h"
#include "net/conn.h"
#include "net/session.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_parser.h"
#include "smtp/smtp_policy.h"
#include "store/store.h"

struct psl;
struct dkim_key_cache;
struct smtp_checks;
struct smtp_filter;
struct smtp_dnsbl;
struct smtp_rdns;

struct smtp_server {
	struct store *store;
	struct psl *psl; /* the Public Suffix List (DMARC), read at start */
	struct auth *auth;
	struct conf_slot conf;      /* for new sessions */
	struct userip *userip;      /* authenticated submission sessions per account + address */
	struct smtp_policy *policy; /* per-IP rates (smtp_policy.c) */
	struct dkim_key_cache *dkim_keys; /* decoded DKIM keys (checks on arrival), all loops */
};

enum smtp_state {
	SMTP_STATE_TLS,     /* TLS handshake in progress (implicit or after STARTTLS) */
	SMTP_STATE_COMMAND, /* reading command lines */
	SMTP_STATE_AUTH,    /* reading a SASL response line */
	SMTP_STATE_DATA,    /* reading the DATA body */
	SMTP_STATE_BDAT,    /* reading a BDAT chunk */
	SMTP_STATE_WAIT,    /* waiting for the store or auth; input paused */
	SMTP_STATE_CLOSING, /* reply sent, closing */
};

enum smtp_async {
	SMTP_ASYNC_NONE,
	SMTP_ASYNC_DELIVERY,
	SMTP_ASYNC_AUTH,
	SMTP_ASYNC_READ,
	SMTP_ASYNC_CHECK,  /* a DNS lookup of the checks on arrival (smtp_checks.c) */
	SMTP_ASYNC_FILTER, /* the milter's verdict (smtp_filter.c) */
};

struct smtp_rcpt {
	char *address;                /* as given, "local@domain" */
	bool remote;                  /* outbound queue */
	struct store_rcpt accounts;   /* when local */
	struct conf_policy *policies; /* the policy of each account (in tx), when local */
	struct store_remote_dsn dsn;  /* RFC 3461 NOTIFY/ORCPT (submission; orcpt in tx) */
};

struct smtp_session {
	struct conn *conn;
	struct smtp_server *server;
	struct conf *conf;
	const struct limits *limits;
	enum conf_listener_kind kind;
	enum smtp_state state;
	struct arena *arena; /* session lifetime: helo, auth user */
	struct arena *tx;    /* transaction lifetime: envelope */
	struct arena *cmd;   /* one command */
	struct session life; /* async operations, shutdown, close, login (net/session.h) */
	bool greeted;
	bool closed; /* connection gone: nothing more is written */
	unsigned errors;
	unsigned auth_failures;
	unsigned tx_count;

	/* greeting and authentication */
	char *helo;
	bool esmtp;
	bool authenticated;
	uint64_t account_id;
	char *auth_user;          /* in s->arena, once authenticated */
	struct auth_login *login; /* an AUTH exchange in progress */

	/* transaction */
	bool fault_after_250; /* test builds: a message got its 250 (core/fault.h) */
	bool have_mail;
	char *mail_from; /* "" for <> */
	bool smtputf8;
	bool requiretls; /* MAIL REQUIRETLS: the next hops must use verified TLS */
	uint64_t declared_size;
	bool body_8bit;             /* MAIL BODY=8BITMIME */
	enum store_dsn_ret dsn_ret; /* RFC 3461 RET= (submission) */
	const char *dsn_envid;      /* ENVID=, decoded, in tx; NULL none */
	struct smtp_rcpt *rcpts;
	size_t rcpt_count, rcpt_cap;

	/* message body (DATA or BDAT) */
	bool body_started; /* spool open */
	bool bdat;         /* this transaction uses BDAT */
	bool bdat_last;
	bool bdat_discard;      /* chunk read but transaction already failed */
	const char *body_error; /* reply for the whole message once the body is read */
	uint64_t bdat_remaining;
	int spool_fd;
	char *spool_path;
	/* With the checks on arrival the message is held here, not in a file, until the
	 * Authentication-Results field is known (smtp_spool.c); spool_fd and spool_path are then
	 * -1 and NULL. A message larger than SMTP_SPOOL_MEM_MAX goes to the file after all. */
	bool spool_in_mem;
	struct buf spool_mem;
	uint64_t body_size;  /* octets in the spool, trace headers included */
	uint64_t trace_size; /* octets of our Return-Path/Received lines */
	time_t body_start;
	struct smtp_data decoder;
	struct header_scanner *headers;
	struct smtp_checks *checks; /* this transaction's checks on arrival, or NULL */
	struct smtp_filter *filter; /* this transaction's milter verdict, or NULL */

	/* asynchronous operation (its kind: session_async(&s->life)) */
	struct store_delivery delivery;
	uint64_t *delivery_accounts;
	size_t delivery_count; /* distinct accounts in delivery_accounts */
	const char **delivery_remote;
	struct store_remote_dsn *delivery_dsn; /* DSN parameters of delivery_remote[i] */
	char msgid[32];

	/* a store read in flight (SMTP_ASYNC_READ, smtp_session_read()): the next step, the
	 * state to go on in, and what the command's read found */
	void (*read_next)(struct smtp_session *s);
	enum smtp_state read_state;
	struct smtp_command read_cmd; /* a copy; its strings stay in s->cmd meanwhile */
	const char *read_addr;        /* MAIL: the sender; RCPT: the recipient (s->cmd) */
	int read_ret;                 /* MAIL: owned; RCPT: local, then found */
	int read_found;
	struct store_rcpt read_rcpt;
	struct conf_policy read_policies[STORE_RCPT_MAX]; /* of read_rcpt's accounts */
	const char *read_reply; /* a refusal the read found (static), or NULL */
	struct smtp_burl *burl; /* BURL (smtp_burl.c): the URL being resolved, or NULL */

	/* hostile-input limits before login (port 25: before the first MAIL) */
	unsigned login_commands;         /* commands before that */
	struct smtp_policy_state policy; /* greylisting, rates (smtp_policy.c) */
	struct smtp_dnsbl *dnsbl;        /* DNS list lookups at connect (smtp_dnsbl.c), or NULL */
	struct smtp_rdns *rdns;          /* the client's name (smtp_rdns.c), or NULL */
};

/* Send one reply line (CRLF added). 4xx/5xx count as errors; at the error limit the session
 * says 421 and closes. */
void smtp_reply(struct smtp_session *s, const char *line);
void smtp_replyf(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Run fn(s) where store reads may wait (store_read()), then next(s) on the loop: at once
 * when reads never wait; else input pauses (state WAIT) and next runs from the wake that
 * ends SMTP_ASYNC_READ, in the state the session had. */
void smtp_session_read(struct smtp_session *s, store_read_fn *fn,
                       void (*next)(struct smtp_session *s));
/* Change state (logged at debug level). */
void smtp_session_set_state(struct smtp_session *s, enum smtp_state state);
/* Forget the transaction (MAIL, RCPT, body). */
void smtp_session_reset_tx(struct smtp_session *s);
/* Say goodbye and close. */
void smtp_session_close(struct smtp_session *s, const char *reply);
/* Open the spool and write the trace headers. NULL ok, else the error reply to give. */
const char *smtp_session_body_begin(struct smtp_session *s);
/* Append message octets (BURL's) to the spool as BDAT does, under the size limit. */
void smtp_session_body_append(struct smtp_session *s, const unsigned char *p, size_t n);
/* BURL url [LAST] (RFC 4468), smtp_burl.c. */
void smtp_burl_command(struct smtp_session *s, struct smtp_command *cmd);
/* Free what a BURL left (the session ends). */
void smtp_burl_free(struct smtp_session *s);
/* The body is complete: check it and hand it to the store. */
void smtp_session_body_end(struct smtp_session *s);
/* Dispatch one command line. */
void smtp_commands_execute(struct smtp_session *s, const char *line, size_t len);
/* Handle one SASL response line in SMTP_STATE_AUTH. */
void smtp_commands_auth_continue(struct smtp_session *s, const char *line);
/* Auth verification finished (on the loop thread). */
void smtp_commands_auth_done(struct smtp_session *s);
/* The password check of a pending AUTH finished (on_wake). */
void smtp_commands_auth_resume(struct smtp_session *s);
/* The auth-failure delay timer fired. */
void smtp_commands_auth_delay_done(struct smtp_session *s);
/* Submission port (587/465)? AUTH offered now (submission, and TLS or plaintext allowed)? */
bool smtp_session_is_submission(const struct smtp_session *s);
bool smtp_session_auth_offered(const struct smtp_session *s);

/* Octets of the message the session holds in memory at most (spool_mem). */
#define SMTP_SPOOL_MEM_MAX (64 * 1024)
/* Append octets to the spool: memory while the message fits there, else the file (created
 * then, with what memory held). 0, or -1 (logged) when the file cannot be written. */
int smtp_spool_append(struct smtp_session *s, const void *p, size_t n)
    __attribute__((warn_unused_result));
/* Move a message held in memory into a new spool file (a no-op for one in a file). 0, or -1
 * (logged). */
int smtp_spool_spill(struct smtp_session *s) __attribute__((warn_unused_result));

/* A range of octets of the spool file (or of spool_mem). */
struct smtp_span {
	uint64_t offset;
	size_t len;
};
/* Replace the spool file with a new one (smtp_spool.c): head, then the spans of the old
 * file (read through src, an open descriptor of it) in order. s->spool_path, spool_fd and
 * body_size then describe the new file (trace_size is the caller's to adjust); the old file
 * is gone. 0, or -1 (logged; the old file stays) when it cannot be written. A message held in
 * memory (spool_in_mem; src is ignored) is written to its first file this way, the spans
 * taken from spool_mem, which is freed. */
int smtp_spool_rewrite(struct smtp_session *s, int src, const void *head, size_t head_len,
                       const struct smtp_span *keep, size_t n) __attribute__((warn_unused_result));

/* Checks on arrival (smtp_checks.c): SPF, DKIM, DMARC and Authentication-Results. Active on
 * port 25 with inbound_checks. */
bool smtp_checks_active(const struct smtp_session *s);
/* SPF of sender (MAIL's address, "" for <>: the HELO name) into a new s->checks; then
 * next(s), at once or after the DNS answers (state WAIT meanwhile). */
void smtp_checks_mail(struct smtp_session *s, const char *sender,
                      void (*next)(struct smtp_session *s));
/* After smtp_checks_mail(): the refusal of MAIL (SPF fail with spf_reject_fail in every
 * policy; in s->cmd), or NULL. */
const char *smtp_checks_mail_reply(struct smtp_session *s);
/* At RCPT of a local recipient whose n accounts have these policies: the refusal (SPF fail
 * not refused at MAIL, and every one of them refuses it; in s->cmd), or NULL. */
const char *smtp_checks_rcpt_reply(struct smtp_session *s, const struct conf_policy *policies,
                                   size_t n);
/* At the end of data: do DKIM, DMARC and the header run (some recipient's policy has
 * inbound_checks)? */
bool smtp_checks_data_active(const struct smtp_session *s);
/* End of data: DKIM over the spool, DMARC, the policy, and a new spool file that starts
 * with the Authentication-Results field (s->spool_path, spool_fd, body_size, trace_size
 * change); then next(s), at once or after the DNS answers. */
void smtp_checks_data(struct smtp_session *s, void (*next)(struct smtp_session *s));
/* After smtp_checks_data(): the refusal for the message (DMARC reject by every
 * recipient's policy, a local error), or NULL; the accounts whose copy goes to the Junk
 * folder (DMARC quarantine, or a reject that other recipients' policies overrule), *n_r of
 * them (in s->tx). */
const char *smtp_checks_data_reply(const struct smtp_session *s);
const uint64_t *smtp_checks_junk_accounts(const struct smtp_session *s, size_t *n_r);
/* SMTP_ASYNC_CHECK ended with the connection open: go on. */
void smtp_checks_resume(struct smtp_session *s);
/* Free a transaction's checks (cancels a lookup); sets *checks to NULL; accepts NULL. */
void smtp_checks_free(struct smtp_checks **checks);

/* DNS block and allow lists at connect on port 25 (smtp_dnsbl.c). Parse conf's lists once
 * and keep them with it (a bad list is logged and not used); before conf is shared. */
void smtp_dnsbl_conf_prepare(struct conf *conf);
/* Are conf's lists well formed? 0, or -1 with the reason in error. */
int smtp_dnsbl_check_conf(const struct conf *conf, char *error, size_t size)
    __attribute__((warn_unused_result));
/* Start the lookups (when dnsbl_zones or dnswl_zones are set); the answers come while the
 * pregreet wait runs. */
void smtp_dnsbl_start(struct smtp_session *s);
/* Before the greeting: true when answers are still due; ready(s) runs once they are in. */
bool smtp_dnsbl_wait(struct smtp_session *s, void (*ready)(struct smtp_session *s));
/* The refusal for a client a block list names and no allow list does (in s->arena), or
 * NULL (also when some policy's dnsbl is off: see smtp_dnsbl_rcpt_reply()); whether an
 * allow list names the client (no greylisting then). */
const char *smtp_dnsbl_refusal(struct smtp_session *s);
/* At RCPT of a local recipient whose n accounts have these policies: the refusal when the
 * greeting did not refuse the listed client and every one of them has dnsbl (in s->cmd). */
const char *smtp_dnsbl_rcpt_reply(struct smtp_session *s, const struct conf_policy *policies,
                                  size_t n);
bool smtp_dnsbl_allowlisted(const struct smtp_session *s);
/* Cancel the lookups and forget the answers (the session ends). */
void smtp_dnsbl_free(struct smtp_session *s);

/* The milter at the end of DATA (smtp_filter.c): active on port 25 when `milter` is set. */
bool smtp_filter_active(const struct smtp_session *s);
/* Hand the spool file to the milter; then next(s) from the wake (SMTP_ASYNC_FILTER), or at
 * once when the spool cannot be read. Header changes replace the spool file. */
void smtp_filter_data(struct smtp_session *s, void (*next)(struct smtp_session *s));
/* After smtp_filter_data(): the refusal (reject, tempfail, a local error) or NULL; whether
 * the message goes to Junk (quarantine), or is accepted and dropped (discard). */
const char *smtp_filter_reply(const struct smtp_session *s);
bool smtp_filter_junk(const struct smtp_session *s);
bool smtp_filter_discard(const struct smtp_session *s);
/* SMTP_ASYNC_FILTER ended with the connection open: go on. */
void smtp_filter_resume(struct smtp_session *s);
/* Free a transaction's filter state (cancels a conversation); accepts NULL. */
void smtp_filter_free(struct smtp_filter **filter);

#define SMTP_LOG(s, fmt, ...)                                                                      \
	log_info("session=%s proto=smtp " fmt, conn_id((s)->conn), __VA_ARGS__)

#endif
