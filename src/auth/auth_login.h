/* One login attempt, the same for SMTP AUTH, POP3 USER/PASS/APOP/AUTH and IMAP
 * LOGIN/AUTHENTICATE: it runs the SASL steps, asks the authentication cache and then the
 * password workers, checks APOP digests, and feeds every outcome into the per-IP penalty.
 * The protocol keeps only its wire format: it sends the challenges (334 / "+ "), frames
 * base64 lines, applies the delay it is given and chooses its reply codes. The session
 * needs no store handle for any of this (STYLE.md: password checks behind auth/).
 *
 * Life of an attempt: auth_login_new(); one of auth_login_sasl_start(),
 * auth_login_password() or auth_login_apop(); auth_login_sasl_continue() for each
 * continuation line while the status is AUTH_LOGIN_CHALLENGE; when it is
 * AUTH_LOGIN_PENDING, wait for the wake callback and call auth_login_resume() on the
 * loop thread; on AUTH_LOGIN_DONE read auth_login_result(); auth_login_free(). */
#ifndef POSTHORN_AUTH_AUTH_LOGIN_H
#define POSTHORN_AUTH_AUTH_LOGIN_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth.h"
#include "auth/sasl.h"

/* RFC 4954 §4: a server must accept SASL response lines of at least 12,288 octets (without
 * CRLF); IMAP AUTHENTICATE and POP3 AUTH continuations get the same. Longer lines are
 * refused (SMTP 500 5.5.6, IMAP BAD, POP3 -ERR) and end the exchange. */
#define AUTH_LOGIN_LINE_MAX 12288

enum auth_login_status {
	AUTH_LOGIN_CHALLENGE, /* send the challenge (base64 text, may be "") as a continuation */
	AUTH_LOGIN_PENDING,   /* a password check or look-up runs on a worker; wake(ctx)
	                         follows */
	AUTH_LOGIN_DONE,      /* a verdict: auth_login_result() */
	AUTH_LOGIN_MALFORMED, /* bad response (malformed base64, too long, bad syntax):
	                       *error_r; SMTP 501 5.5.2, IMAP BAD, POP3 -ERR */
	AUTH_LOGIN_CANCELLED, /* the client sent "*": SMTP 501 5.7.0, IMAP BAD, POP3 -ERR */
};

struct auth_login_result {
	int result;          /* 1 ok, 0 bad credentials, -1 temporary failure */
	uint64_t account_id; /* when result 1 */
	const char *user;    /* the name the client gave (for logs and the session); "" if
	                        none; owned by the login */
	unsigned delay_ms;   /* when result 0: the penalty the protocol waits before
	                        answering (never 0 for a failure from the network) */
	bool cached;         /* result 1 from the authentication cache */
	const char *mech;    /* "PLAIN", "LOGIN", "SCRAM-SHA-256", "APOP" or "USER" */
};

struct auth_login;

/* remote_ip: text form, copied; NULL = not from the network (no penalty). wake(ctx) is
 * called on a worker thread when a pending check completes: bounce to the loop from it
 * (conn_wake()) and call auth_login_resume() there. Never NULL. */
struct auth_login *auth_login_new(struct auth *auth, const char *remote_ip, void (*wake)(void *ctx),
                                  void *ctx);
/* Wipe every secret and free. Must not be called while a password check is running (the
 * session holds its connection until the wake); after the wake it may be freed without
 * auth_login_resume() (the connection closed meanwhile). Accepts NULL; sets *login NULL. */
void auth_login_free(struct auth_login **login);

/* Start a SASL exchange; initial_b64 as in sasl_server_step() (NULL none, "=" empty).
 * Returns CHALLENGE (*challenge_r), PENDING, DONE, MALFORMED or CANCELLED (*error_r,
 * static, never client data). */
enum auth_login_status auth_login_sasl_start(struct auth_login *login, enum sasl_mech mech,
                                             const char *initial_b64, const char **challenge_r,
                                             const char **error_r);
/* The client's answer to the last challenge. Same returns. */
enum auth_login_status auth_login_sasl_continue(struct auth_login *login, const char *line,
                                                const char **challenge_r, const char **error_r);
/* A plaintext name and password (POP3 USER/PASS, IMAP LOGIN). authzid NULL = none.
 * Returns DONE (a cache hit) or PENDING. Strings are copied. */
enum auth_login_status auth_login_password(struct auth_login *login, const char *authzid,
                                           const char *user, const char *password);
/* APOP (RFC 1939 §7): digest = hex MD5(banner + the account's APOP secret), compared in
 * constant time. Returns DONE, or PENDING where look-ups may wait (the secret is looked up
 * on a look-up thread). An account without APOP secret and an unknown user fail like a
 * wrong digest. Strings are copied. */
enum auth_login_status auth_login_apop(struct auth_login *login, const char *banner,
                                       const char *user, const char *digest);
/* On the loop thread after wake: go on from PENDING. Returns DONE, or after SCRAM's key
 * look-up CHALLENGE (the server-first message), DONE or MALFORMED, as a step would. */
enum auth_login_status auth_login_resume(struct auth_login *login, const char **challenge_r,
                                         const char **error_r);

/* The verdict, after DONE. Valid until auth_login_free(). */
const struct auth_login_result *auth_login_result(const struct auth_login *login);

#endif
