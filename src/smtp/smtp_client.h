/* The SMTP client session engine that outbound delivery drives: one connection to one IP of
 * one host, over net/conn. It connects, reads the greeting, says EHLO (HELO when EHLO gets a
 * 5xx), negotiates STARTTLS by the caller's policy (or speaks implicit TLS), authenticates to
 * a smarthost (AUTH PLAIN or LOGIN, only over TLS), and then delivers the messages the caller
 * hands it one at a time: MAIL (SIZE, BODY=8BITMIME, SMTPUTF8, RET/ENVID, REQUIRETLS), RCPT
 * per recipient (NOTIFY/ORCPT), DATA with dot-stuffing or BDAT, PIPELINING (RFC 2920) when
 * offered, the body streamed from its file under output flow control, the file's first
 * "Return-Path:" line left out and a caller prefix (DKIM-Signature) sent first. Timeouts are
 * RFC 5321 §4.5.3.2's. It decides nothing about routing or retries: it reports, per
 * recipient, delivered / temporary / permanent failure with the reply, and per session how
 * it ended.
 *
 * Use (every call and callback on the loop's thread):
 *   c = smtp_client_start(loop, &params, &callbacks, ctx, &error);
 *   ready(c)          -> smtp_client_send(c, &msg)   or smtp_client_quit(c)
 *   message_done(c, &msg)  every recipient of msg has its result; ready follows when the
 *                          connection can take another message
 *   closed(c, &result)     always exactly once, last; c is freed when it returns
 * A session that fails before it is ready (connect, greeting, TLS, AUTH) goes straight to
 * closed, whose result says why (result.status TEMPFAIL/PERMFAIL: try another host or later).
 * A message handed over is answered by message_done before closed, whatever happens. */
#ifndef POSTHORN_SMTP_SMTP_CLIENT_H
#define POSTHORN_SMTP_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/conn.h"

struct smtp_client;
struct net_loop;
struct tls_ctx;

enum smtp_client_tls_policy {
	/* STARTTLS when the server offers it; without it, or when the server refuses the
	 * command, plain text. A failed handshake ends the session (result.tls_failed: the
	 * caller may retry this host with SMTP_CLIENT_TLS_DISABLED, as Postfix does). */
	SMTP_CLIENT_TLS_OPPORTUNISTIC,
	/* STARTTLS must be offered and succeed, else the session fails (temporarily). */
	SMTP_CLIENT_TLS_MANDATORY,
	/* TLS from the first octet (a smarthost on port 465, RFC 8314). */
	SMTP_CLIENT_TLS_IMPLICIT,
	/* Never STARTTLS. */
	SMTP_CLIENT_TLS_DISABLED,
};

/* Seconds; RFC 5321 §4.5.3.2 (conf: outbound_*_timeout). 0 = wait forever. */
struct smtp_client_timeouts {
	unsigned connect;  /* TCP connect (and each TLS handshake) */
	unsigned greeting; /* the 220 greeting (§4.5.3.2.1: 5 min) */
	unsigned command;  /* EHLO, STARTTLS, AUTH, MAIL, RCPT, RSET, QUIT (§4.5.3.2.2-3: 5 min) */
	unsigned data_init;  /* the 354 after DATA (§4.5.3.2.4: 2 min) */
	unsigned data_block; /* sending each block of the body, and each BDAT reply (3 min) */
	unsigned data_done;  /* the reply after the final dot or BDAT LAST (§4.5.3.2.6: 10 min) */
};

struct conf;
/* The timeouts of conf (outbound_*_timeout). */
void smtp_client_timeouts_from_conf(const struct conf *conf, struct smtp_client_timeouts *t);

struct smtp_client_params {
	const char *ip;        /* numeric address to connect to */
	int port;              /* 25, 587, 465 ... */
	const char *local_ip;  /* source address to bind, NULL for any */
	const char *host;      /* the host's name (MX or smarthost): SNI, certificate name, logs */
	const char *helo_name; /* our name for EHLO/HELO */
	enum smtp_client_tls_policy tls;
	/* How the certificate is checked (conn.h); the handshake fails on a PKIX or DANE
	 * mismatch. With OPPORTUNISTIC use CONN_TLS_VERIFY_NONE. tlsa is copied. */
	enum conn_tls_verify verify;
	const struct conn_tlsa *tlsa;
	size_t tlsa_count;
	struct tls_ctx *tls_ctx; /* tls_client_ctx_new(); needed unless tls is DISABLED */
	/* Smarthost credentials (AUTH PLAIN, else LOGIN); only ever sent over TLS: without TLS,
	 * or without a mechanism we know, the session fails. NULL: no AUTH. Copied (and wiped
	 * when the session is freed). */
	const char *auth_user;
	const char *auth_password;
	struct smtp_client_timeouts timeouts;
};

enum smtp_client_status {
	SMTP_CLIENT_PENDING,   /* no answer yet (only seen inside the engine) */
	SMTP_CLIENT_DELIVERED, /* the server took responsibility (2xx after the data) */
	SMTP_CLIENT_TEMPFAIL,  /* 4xx, or the connection failed / timed out: retry later */
	SMTP_CLIENT_PERMFAIL,  /* 5xx, or a local refusal (SIZE, SMTPUTF8, REQUIRETLS): bounce */
};

#define SMTP_CLIENT_TEXT_MAX 1024

/* A reply or a local verdict, as delivery reports it. */
struct smtp_client_reply {
	enum smtp_client_status status;
	bool remote; /* true: the server said it (code/text are its reply); false: ours */
	int code;    /* the reply code (for local verdicts the code a server would have used) */
	char enhanced[16];               /* RFC 3463 code, "" when the server gave none */
	char text[SMTP_CLIENT_TEXT_MAX]; /* one line, without code and enhanced code */
};

struct smtp_client_rcpt {
	const char *address; /* the mailbox, without angle brackets */
	const char *notify;  /* DSN NOTIFY value ("SUCCESS,FAILURE", "NEVER"), or NULL */
	const char *orcpt;   /* DSN ORCPT value ("rfc822;user@example.org", xtext), or NULL */
	struct smtp_client_reply result; /* filled by the engine */
};

struct smtp_client_message {
	const char *path;   /* the stored message (CRLF lines; bare LF/CR are sent as CRLF), */
	int fd;             /* or, when path is NULL, a descriptor of it (duplicated, pread) */
	const void *prefix; /* sent before the file (DKIM-Signature fields, CRLF-ended), or NULL */
	size_t prefix_len;
	const char *mail_from; /* envelope sender without brackets; "" for the null sender */
	bool eightbit;         /* 8-bit body: BODY=8BITMIME when offered (else sent as it is) */
	bool smtputf8;         /* needs SMTPUTF8; a server without it: PERMFAIL 5.6.7 */
	bool requiretls;     /* RFC 8689: needs verified TLS and REQUIRETLS; else PERMFAIL 5.7.30 */
	const char *dsn_ret; /* "FULL" or "HDRS", or NULL; sent only when the server offers DSN */
	const char *dsn_envid; /* xtext, or NULL; sent only when the server offers DSN */
	struct smtp_client_rcpt *rcpts;
	size_t rcpt_count;
};

/* How the session ended (closed callback). */
struct smtp_client_result {
	/* DELIVERED: it ended as asked (QUIT); TEMPFAIL/PERMFAIL: the host failed (connect,
	 * greeting 4xx/5xx, EHLO/HELO, TLS, AUTH, lost connection, timeout, 421): reply says
	 * why. A failure after the last message (e.g. an idle connection the server dropped)
	 * costs no delivery. */
	struct smtp_client_reply reply;
	bool tls_failed; /* the TLS handshake failed (opportunistic: retry without STARTTLS) */
	bool was_ready;  /* the session got as far as ready at least once */
};

struct smtp_client_callbacks {
	void (*ready)(struct smtp_client *client, void *ctx);
	void (*message_done)(struct smtp_client *client, struct smtp_client_message *msg,
	                     void *ctx);
	void (*closed)(struct smtp_client *client, const struct smtp_client_result *result,
	               void *ctx);
};

/* Start a session: connect to params->ip:port on loop. Returns the client, or NULL with
 * *error_r (static text) when the parameters are unusable (no callback then). */
struct smtp_client *smtp_client_start(struct net_loop *loop,
                                      const struct smtp_client_params *params,
                                      const struct smtp_client_callbacks *cb, void *ctx,
                                      const char **error_r);
/* Deliver msg (owned by the caller until message_done; every recipient's result is set
 * then). Only while the session is ready (after ready, before anything else): 0 ok, -1 not
 * ready. */
int smtp_client_send(struct smtp_client *client, struct smtp_client_message *msg)
    __attribute__((warn_unused_result));
/* Say QUIT (when ready, or from message_done: then instead of the next ready) and close; or,
 * in the middle of anything else, drop the connection:
 * the message in flight gets message_done at once (its pending recipients TEMPFAIL 4.3.0),
 * closed follows later, never from inside this call. */
void smtp_client_quit(struct smtp_client *client);

/* About the session, valid from start to the end of closed. */
const char *smtp_client_ip(const struct smtp_client *client);
const char *smtp_client_host(const struct smtp_client *client);
const char *smtp_client_id(const struct smtp_client *client);
/* "TLSv1.3 with cipher ... (256/256 bits)" or "" without TLS. */
const char *smtp_client_tls_description(const struct smtp_client *client);
/* "verified (CA chain, host name)", "verified (DANE TLSA 3 1 1)", "not verified: ..." or "". */
const char *smtp_client_tls_verification(const struct smtp_client *client);
/* The extensions the server offered in its last EHLO (all false after HELO). */
struct smtp_ehlo;
const struct smtp_ehlo *smtp_client_ehlo(const struct smtp_client *client);

#endif
