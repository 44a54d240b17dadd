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
	imap_session_verify(s, cmd->tag, NULL, user, password);
}

static void imap_sasl_end(struct imap_session *s)
{
	sasl_server_free(&s->sasl);
	if (s->io == IMAP_IO_SASL)
		s->io = IMAP_IO_LINE;
}

static void imap_sasl_step(struct imap_session *s, const char *response)
{
	const char *challenge, *error;
	int r = sasl_server_step(s->sasl, response, &challenge, &error);
	if (r == 2) {
		/* SCRAM: the stored keys are needed before the server-first message. */
		if (auth_sasl_set_credentials(s->server->auth, s->sasl, &s->sasl_account) < 0) {
			imap_sasl_end(s);
			imap_tagged(s, s->sasl_tag, "NO", "[UNAVAILABLE] Temporary failure");
			return;
		}
		r = sasl_server_step(s->sasl, NULL, &challenge, &error);
	}
	if (r < 0) {
		bool cancel = response != NULL && strcmp(response, "*") == 0;
		imap_sasl_end(s);
		imap_tagged(s, s->sasl_tag, "BAD", "%s", cancel ? "Authentication cancelled" : error);
		return;
	}
	if (r == 0) {
		s->io = IMAP_IO_SASL;
		conn_printf(s->conn, "+ %s\r\n", challenge);
		return;
	}
	s->io = IMAP_IO_LINE;
	int outcome = sasl_server_outcome(s->sasl);
	if (outcome >= 0) {
		char *user = xstrdup(sasl_server_username(s->sasl));
		unsigned delay = 0;
		auth_record_result(s->server->auth, conn_remote_ip(s->conn), outcome == 1, &delay);
		imap_sasl_end(s);
		imap_session_login_done(s, s->sasl_tag, outcome == 1, s->sasl_account, user, delay);
		free(user);
		return;
	}
	const char *authzid, *authcid, *password;
	sasl_server_credentials(s->sasl, &authzid, &authcid, &password);
	imap_session_verify(s, s->sasl_tag, authzid, authcid, password);
	imap_sasl_end(s);
}

void cmd_authenticate(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	size_t n = imap_parser_arg_count(cmd->args);
	if (n < 1 || n > 2 || cmd->args[0].type != IMAP_ARG_ATOM ||
	    (n == 2 && cmd->args[1].type != IMAP_ARG_ATOM)) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: AUTHENTICATE mechanism [initial-response]");
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
	free(s->sasl_tag);
	s->sasl_tag = xstrdup(cmd->tag);
	s->sasl = sasl_server_new(mech, 0);
	imap_sasl_step(s, n == 2 ? cmd->args[1].str : NULL);
}

void imap_commands_sasl_continue(struct imap_session *s, const char *line)
{
	imap_sasl_step(s, line);
}
