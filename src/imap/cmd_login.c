/* STARTTLS (RFC 9051 §6.2.1), LOGIN (§6.2.3) and AUTHENTICATE (§6.2.2, SASL-IR RFC 4959)
 * with the shared SASL mechanisms. Plaintext ones are refused before TLS
 * ([PRIVACYREQUIRED]) unless allow_plaintext_auth is set. */
#include "imap/imap_commands.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

void cmd_starttls(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	if (conn_is_tls(s->conn)) {
		imap_tagged(s, cmd->tag, "BAD", "TLS is already active");
		return;
	}
	imap_tagged(s, cmd->tag, "OK", "Begin TLS negotiation now");
	/* Bytes pipelined after STARTTLS are discarded by conn_start_tls (§6.2.1). */
	if (conn_start_tls(s->conn) < 0) {
		imap_session_close(s, "[UNAVAILABLE] TLS not available");
		return;
	}
	s->io = IMAP_IO_TLS;
}

/* ---- login: the wire side of auth/auth_login ---- */

static void imap_login_wake(void *ctx)
{
	imap_session_op_finished(ctx);
}

/* A new login attempt for the command tagged tag (replacing any previous one). */
static struct auth_login *imap_login_new(struct imap_session *s, const char *tag)
{
	auth_login_free(&s->login);
	free(s->auth_tag);
	s->auth_tag = xstrdup(tag);
	s->login = auth_login_new(s->server->auth, conn_remote_ip(s->conn), imap_login_wake, s);
	return s->login;
}

static void imap_login_end(struct imap_session *s)
{
	auth_login_free(&s->login);
	s->io = IMAP_IO_LINE;
}

/* The one place where an IMAP login succeeds (LOGIN and AUTHENTICATE). */
static void imap_login_succeeded(struct imap_session *s, const struct auth_login_result *res)
{
	if (!imap_session_admit_login(s, res->account_id)) {
		imap_login_end(s);
		imap_tagged(s, s->auth_tag, "NO",
		            "[LIMIT] Too many sessions of this user from this address");
		conn_resume(s->conn);
		return;
	}
	imap_session_set_state(s, IMAP_STATE_AUTHENTICATED);
	s->account_id = res->account_id;
	free(s->user);
	s->user = xstrdup(res->user);
	IMAP_LOG(s, "event=login result=ok user=%s mech=%s cached=%s", s->user, res->mech,
	         res->cached ? "yes" : "no");
	imap_login_end(s);
	imap_tagged(s, s->auth_tag, "OK", "[CAPABILITY %s] Logged in",
	            imap_session_capabilities(s));
	conn_resume(s->conn);
}

static void imap_login_done(struct imap_session *s)
{
	const struct auth_login_result *res = auth_login_result(s->login);
	if (res->result == 1) {
		imap_login_succeeded(s, res);
		return;
	}
	if (res->result < 0) {
		IMAP_LOG(s, "event=login result=tempfail user=%s mech=%s", res->user, res->mech);
		imap_login_end(s);
		imap_tagged(s, s->auth_tag, "NO", "[UNAVAILABLE] Temporary authentication failure");
		conn_resume(s->conn);
		return;
	}
	s->auth_failures++;
	IMAP_LOG(s, "event=login result=fail user=%s mech=%s delay_ms=%u", res->user, res->mech,
	         res->delay_ms);
	unsigned delay = res->delay_ms;
	auth_login_free(&s->login);
	/* Answer from the timer, after the penalty; input stays paused meanwhile. */
	s->io = IMAP_IO_WAIT;
	conn_pause(s->conn);
	conn_set_timer(s->conn, delay > 0 ? delay : 1);
}

void imap_commands_login_failed_answer(struct imap_session *s)
{
	s->io = IMAP_IO_LINE;
	imap_tagged(s, s->auth_tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
	if (s->auth_failures >= s->limits->auth_failures) {
		imap_session_close(s, "Too many authentication failures");
		return;
	}
	conn_resume(s->conn);
}

/* Put what the login driver answered on the wire. */
static void imap_login_status(struct imap_session *s, enum auth_login_status st,
                              const char *challenge, const char *error)
{
	switch (st) {
	case AUTH_LOGIN_CHALLENGE:
		s->io = IMAP_IO_SASL;
		conn_printf(s->conn, "+ %s\r\n", challenge);
		return;
	case AUTH_LOGIN_PENDING:
		s->io = IMAP_IO_WAIT;
		session_async_start(&s->life, IMAP_ASYNC_AUTH);
		return;
	case AUTH_LOGIN_DONE:
		s->io = IMAP_IO_LINE;
		imap_login_done(s);
		return;
	case AUTH_LOGIN_CANCELLED:
	case AUTH_LOGIN_MALFORMED:
		imap_login_end(s);
		imap_tagged(s, s->auth_tag, "BAD", "%s",
		            st == AUTH_LOGIN_CANCELLED ? "Authentication cancelled" : error);
		return;
	}
}

void imap_commands_login_resume(struct imap_session *s)
{
	const char *challenge, *error;
	enum auth_login_status st = auth_login_resume(s->login, &challenge, &error);
	imap_login_status(s, st, challenge, error);
	if (st != AUTH_LOGIN_DONE) /* SCRAM's server-first after its look-up: read the answer */
		conn_resume(s->conn);
}

void cmd_login(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const char *user, *password;
	if (imap_parser_arg_count(cmd->args) != 2 || !imap_commands_astring(&cmd->args[0], &user) ||
	    !imap_commands_astring(&cmd->args[1], &password)) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: LOGIN user password");
		return;
	}
	if (!imap_session_plaintext_ok(s)) {
		imap_tagged(s, cmd->tag, "NO", "[PRIVACYREQUIRED] Use STARTTLS first");
		return;
	}
	struct auth_login *login = imap_login_new(s, cmd->tag);
	imap_login_status(s, auth_login_password(login, NULL, user, password), NULL, NULL);
}

void cmd_authenticate(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	size_t n = imap_parser_arg_count(cmd->args);
	if (n < 1 || n > 2 || cmd->args[0].type != IMAP_ARG_ATOM ||
	    (n == 2 && cmd->args[1].type != IMAP_ARG_ATOM)) {
		imap_tagged(s, cmd->tag, "BAD",
		            "Syntax: AUTHENTICATE mechanism [initial-response]");
		return;
	}
	enum sasl_mech mech;
	if (sasl_mech_parse(cmd->args[0].str, &mech) < 0) {
		imap_tagged(s, cmd->tag, "NO", "Unsupported authentication mechanism");
		return;
	}
	if (mech != SASL_MECH_SCRAM_SHA_256 && !imap_session_plaintext_ok(s)) {
		imap_tagged(s, cmd->tag, "NO", "[PRIVACYREQUIRED] Use STARTTLS first");
		return;
	}
	const char *challenge, *error;
	struct auth_login *login = imap_login_new(s, cmd->tag);
	enum auth_login_status st = auth_login_sasl_start(
	    login, mech, n == 2 ? cmd->args[1].str : NULL, &challenge, &error);
	imap_login_status(s, st, challenge, error);
}

void imap_commands_sasl_continue(struct imap_session *s, const char *line)
{
	const char *challenge, *error;
	enum auth_login_status st = auth_login_sasl_continue(s->login, line, &challenge, &error);
	imap_login_status(s, st, challenge, error);
}

void imap_commands_sasl_too_long(struct imap_session *s)
{
	imap_login_end(s);
	imap_tagged(s, s->auth_tag, "BAD", "[TOOBIG] Authentication line too long");
}

/* UNAUTHENTICATE (RFC 8437 §3): no arguments; the session goes back to the
 * not-authenticated state and may log in again, also as another user. */
void cmd_unauthenticate(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	if (cmd->args[0].type != IMAP_ARG_EOL) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: UNAUTHENTICATE");
		return;
	}
	IMAP_LOG(s, "event=unauthenticate user=%s", s->user != NULL ? s->user : "-");
	imap_session_unauthenticate(s);
	imap_tagged(s, cmd->tag, "OK", "Not authenticated now");
}
