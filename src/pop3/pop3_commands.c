/* The POP3 command table and handlers. The dispatcher checks the state a command needs
 * (RFC 1939: AUTHORIZATION or TRANSACTION) in one place; handlers check arguments. */
#include "pop3/pop3_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

enum { IN_AUTH = 1 << 0, IN_TRANS = 1 << 1 };

struct pop3_command_def {
	enum pop3_verb verb;
	void (*handler)(struct pop3_session *s, struct pop3_command *cmd);
	unsigned states;
};

static void cmd_user(struct pop3_session *s, struct pop3_command *cmd);
static void cmd_pass(struct pop3_session *s, struct pop3_command *cmd);
static void cmd_apop(struct pop3_session *s, struct pop3_command *cmd);
static void cmd_auth(struct pop3_session *s, struct pop3_command *cmd);
static void cmd_stls(struct pop3_session *s, struct pop3_command *cmd);
static void cmd_capa(struct pop3_session *s, struct pop3_command *cmd);
static void cmd_utf8(struct pop3_session *s, struct pop3_command *cmd);
static void cmd_stat(struct pop3_session *s, struct pop3_command *cmd);
static void cmd_list(struct pop3_session *s, struct pop3_command *cmd);
static void cmd_retr(struct pop3_session *s, struct pop3_command *cmd);
static void cmd_dele(struct pop3_session *s, struct pop3_command *cmd);
static void cmd_noop(struct pop3_session *s, struct pop3_command *cmd);
static void cmd_rset(struct pop3_session *s, struct pop3_command *cmd);
static void cmd_top(struct pop3_session *s, struct pop3_command *cmd);
static void cmd_uidl(struct pop3_session *s, struct pop3_command *cmd);
static void cmd_quit(struct pop3_session *s, struct pop3_command *cmd);

static const struct pop3_command_def pop3_commands[] = {
	{ POP3_VERB_USER, cmd_user, IN_AUTH },	{ POP3_VERB_PASS, cmd_pass, IN_AUTH },
	{ POP3_VERB_APOP, cmd_apop, IN_AUTH },	{ POP3_VERB_AUTH, cmd_auth, IN_AUTH },
	{ POP3_VERB_STLS, cmd_stls, IN_AUTH },	{ POP3_VERB_CAPA, cmd_capa, IN_AUTH | IN_TRANS },
	{ POP3_VERB_UTF8, cmd_utf8, IN_AUTH },	{ POP3_VERB_STAT, cmd_stat, IN_TRANS },
	{ POP3_VERB_LIST, cmd_list, IN_TRANS }, { POP3_VERB_RETR, cmd_retr, IN_TRANS },
	{ POP3_VERB_DELE, cmd_dele, IN_TRANS }, { POP3_VERB_NOOP, cmd_noop, IN_TRANS },
	{ POP3_VERB_RSET, cmd_rset, IN_TRANS }, { POP3_VERB_TOP, cmd_top, IN_TRANS },
	{ POP3_VERB_UIDL, cmd_uidl, IN_TRANS }, { POP3_VERB_QUIT, cmd_quit, IN_AUTH | IN_TRANS },
};

void pop3_commands_execute(struct pop3_session *s, const char *line, size_t len)
{
	struct pop3_command cmd;
	const char *error;
	if (pop3_parser_parse(s->cmd, line, len, &cmd, &error) < 0) {
		pop3_replyf(s, "-ERR %s", error);
		return;
	}
	const struct pop3_command_def *def = NULL;
	for (size_t i = 0; i < sizeof(pop3_commands) / sizeof(pop3_commands[0]); i++)
		if (pop3_commands[i].verb == cmd.verb)
			def = &pop3_commands[i];
	unsigned state = s->state == POP3_STATE_TRANSACTION ? IN_TRANS : IN_AUTH;
	if (def == NULL || (def->states & state) == 0) {
		pop3_reply(s, state == IN_AUTH ? "-ERR Not logged in"
					       : "-ERR Command not valid in this state");
		return;
	}
	def->handler(s, &cmd);
}

/* ---- AUTHORIZATION ---- */

static const char pop3_plaintext_refused[] =
	"-ERR [AUTH] Plaintext authentication disallowed on non-secure connections, use STLS";

static void cmd_user(struct pop3_session *s, struct pop3_command *cmd)
{
	if (!pop3_session_plaintext_ok(s)) {
		pop3_reply(s, pop3_plaintext_refused);
		return;
	}
	free(s->user);
	s->user = xstrdup(cmd->argv[0]);
	pop3_reply(s, "+OK");
}

static void cmd_pass(struct pop3_session *s, struct pop3_command *cmd)
{
	if (!pop3_session_plaintext_ok(s)) {
		pop3_reply(s, pop3_plaintext_refused);
		return;
	}
	if (s->user == NULL) {
		pop3_reply(s, "-ERR No user name given (USER first)");
		return;
	}
	pop3_session_verify(s, NULL, s->user, cmd->argv[0]);
}

/* RFC 1939 §7: digest = MD5(banner + secret) in hex. Compared in constant time. */
static bool pop3_apop_match(const char *banner, const char *secret, const char *digest)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
		  EVP_DigestUpdate(ctx, banner, strlen(banner)) == 1 &&
		  EVP_DigestUpdate(ctx, secret, strlen(secret)) == 1 &&
		  EVP_DigestFinal_ex(ctx, md, &md_len) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok || strlen(digest) != 2 * (size_t)md_len)
		return false;
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	for (unsigned i = 0; i < md_len; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	unsigned char diff = 0;
	for (size_t i = 0; i < 2 * (size_t)md_len; i++) {
		char d = digest[i];
		if (d >= 'A' && d <= 'F')
			d = (char)(d + ('a' - 'A'));
		diff |= (unsigned char)(hex[i] ^ d);
	}
	return diff == 0;
}

static void cmd_apop(struct pop3_session *s, struct pop3_command *cmd)
{
	if (s->apop_banner[0] == '\0') {
		pop3_reply(s, "-ERR APOP is not enabled on this server");
		return;
	}
	uint64_t id = 0;
	char *secret = NULL;
	int r = store_account_get_apop(s->server->store, cmd->argv[0], &id, &secret);
	bool ok = r == 1 && pop3_apop_match(s->apop_banner, secret, cmd->argv[1]);
	if (secret != NULL) {
		xmemzero(secret, strlen(secret));
		free(secret);
	}
	free(s->auth_user);
	s->auth_user = xstrdup(cmd->argv[0]);
	if (r < 0) {
		pop3_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure");
		return;
	}
	unsigned delay = 0;
	auth_record_result(s->server->auth, conn_remote_ip(s->conn), ok, &delay);
	if (ok) {
		pop3_session_login(s, id, cmd->argv[0]);
		return;
	}
	pop3_session_login_failed(s, delay);
}

/* SCRAM verified the proof itself: log in, or fail with the shared per-IP penalty. */
static void pop3_sasl_verified(struct pop3_session *s, int outcome, uint64_t account_id)
{
	free(s->auth_user);
	s->auth_user = xstrdup(sasl_server_username(s->sasl));
	sasl_server_free(&s->sasl);
	unsigned delay = 0;
	auth_record_result(s->server->auth, conn_remote_ip(s->conn), outcome == 1, &delay);
	if (outcome == 1)
		pop3_session_login(s, account_id, s->auth_user);
	else
		pop3_session_login_failed(s, delay);
}

static void pop3_sasl_step(struct pop3_session *s, const char *response)
{
	const char *challenge, *error;
	int r = sasl_server_step(s->sasl, response, &challenge, &error);
	if (r == 2) {
		/* SCRAM needs the user's stored keys before its server-first message. */
		if (auth_sasl_set_credentials(s->server->auth, s->sasl, &s->sasl_account) < 0) {
			sasl_server_free(&s->sasl);
			pop3_session_set_state(s, POP3_STATE_AUTHORIZATION);
			pop3_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure");
			return;
		}
		r = sasl_server_step(s->sasl, NULL, &challenge, &error);
	}
	if (r < 0) {
		sasl_server_free(&s->sasl);
		pop3_session_set_state(s, POP3_STATE_AUTHORIZATION);
		if (response != NULL && strcmp(response, "*") == 0)
			pop3_reply(s, "-ERR Authentication cancelled");
		else
			pop3_replyf(s, "-ERR [AUTH] %s", error);
		return;
	}
	if (r == 0) {
		pop3_session_set_state(s, POP3_STATE_SASL);
		conn_printf(s->conn, "+ %s\r\n", challenge);
		return;
	}
	pop3_session_set_state(s, POP3_STATE_AUTHORIZATION);
	int outcome = sasl_server_outcome(s->sasl);
	if (outcome >= 0) {
		pop3_sasl_verified(s, outcome, s->sasl_account);
		return;
	}
	const char *authzid, *authcid, *password;
	sasl_server_credentials(s->sasl, &authzid, &authcid, &password);
	pop3_session_verify(s, authzid, authcid, password);
	sasl_server_free(&s->sasl);
}

static void cmd_auth(struct pop3_session *s, struct pop3_command *cmd)
{
	if (cmd->argc == 0) {
		/* Not in RFC 5034, but clients probe with it (Dovecot answers it too). */
		char list[128];
		snprintf(list, sizeof(list), "%s", sasl_mech_list());
		conn_printf(s->conn, "+OK\r\n");
		char *tok = list;
		while (tok != NULL) {
			char *sp = strchr(tok, ' ');
			if (sp != NULL)
				*sp++ = '\0';
			conn_printf(s->conn, "%s\r\n", tok);
			tok = sp;
		}
		conn_printf(s->conn, ".\r\n");
		return;
	}
	enum sasl_mech mech;
	if (sasl_mech_parse(cmd->argv[0], &mech) < 0) {
		pop3_reply(s, "-ERR Unsupported authentication mechanism");
		return;
	}
	/* SCRAM never shows the password, so it is fine before TLS (RFC 7677 §4 still
	 * recommends TLS); PLAIN and LOGIN are not. */
	if (mech != SASL_MECH_SCRAM_SHA_256 && !pop3_session_plaintext_ok(s)) {
		pop3_reply(s, pop3_plaintext_refused);
		return;
	}
	s->sasl = sasl_server_new(mech, 0);
	pop3_sasl_step(s, cmd->argc == 2 ? cmd->argv[1] : NULL);
}

void pop3_commands_sasl_continue(struct pop3_session *s, const char *line)
{
	pop3_sasl_step(s, line);
}

static void cmd_stls(struct pop3_session *s, struct pop3_command *cmd)
{
	(void)cmd;
	if (conn_is_tls(s->conn)) {
		pop3_reply(s, "-ERR TLS is already active");
		return;
	}
	conn_printf(s->conn, "+OK Begin TLS negotiation\r\n");
	if (conn_start_tls(s->conn) < 0) {
		pop3_session_close(s, "-ERR [SYS/TEMP] TLS not available");
		return;
	}
	pop3_session_set_state(s, POP3_STATE_TLS);
}

static void cmd_capa(struct pop3_session *s, struct pop3_command *cmd)
{
	(void)cmd;
	bool auth = s->state != POP3_STATE_TRANSACTION;
	conn_printf(s->conn, "+OK Capability list follows\r\nTOP\r\nUIDL\r\n");
	if (auth && pop3_session_plaintext_ok(s))
		conn_printf(s->conn, "USER\r\nSASL %s\r\n", sasl_mech_list());
	conn_printf(s->conn, "RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
	if (s->conf->pop3_expire < 0)
		conn_printf(s->conn, "EXPIRE NEVER\r\n");
	else
		conn_printf(s->conn, "EXPIRE %d\r\n", s->conf->pop3_expire);
	if (s->conf->pop3_login_delay > 0)
		conn_printf(s->conn, "LOGIN-DELAY %u\r\n", s->conf->pop3_login_delay);
	if (auth && !conn_is_tls(s->conn))
		conn_printf(s->conn, "STLS\r\n");
	if (auth)
		conn_printf(s->conn, "UTF8 USER\r\n");
	conn_printf(s->conn, "IMPLEMENTATION Posthorn\r\n.\r\n");
}

static void cmd_utf8(struct pop3_session *s, struct pop3_command *cmd)
{
	(void)cmd;
	s->utf8 = true; /* RFC 6856 §2: UTF-8 user names; messages are sent as stored */
	pop3_reply(s, "+OK UTF8 enabled");
}

/* ---- TRANSACTION ---- */

/* A message number argument naming a message that exists and is not marked deleted. */
static bool pop3_msg_arg(struct pop3_session *s, const char *arg, uint32_t *n_r)
{
	uint32_t n;
	if (pop3_parser_number(arg, &n) < 0) {
		pop3_reply(s, "-ERR Invalid message number");
		return false;
	}
	if (n > s->count) {
		pop3_reply(s, "-ERR There is no such message");
		return false;
	}
	if (s->msgs[n - 1].deleted) {
		pop3_reply(s, "-ERR Message is deleted");
		return false;
	}
	*n_r = n;
	return true;
}

static void cmd_stat(struct pop3_session *s, struct pop3_command *cmd)
{
	(void)cmd;
	uint32_t n = 0;
	uint64_t size = 0;
	for (uint32_t i = 0; i < s->count; i++) {
		if (!s->msgs[i].deleted) {
			n++;
			size += s->msgs[i].size;
		}
	}
	pop3_replyf(s, "+OK %u %llu", n, (unsigned long long)size);
}

static void cmd_list(struct pop3_session *s, struct pop3_command *cmd)
{
	uint32_t n;
	if (cmd->argc == 1) {
		if (pop3_msg_arg(s, cmd->argv[0], &n))
			pop3_replyf(s, "+OK %u %llu", n, (unsigned long long)s->msgs[n - 1].size);
		return;
	}
	conn_printf(s->conn, "+OK scan listing follows\r\n");
	for (uint32_t i = 0; i < s->count; i++)
		if (!s->msgs[i].deleted)
			conn_printf(s->conn, "%u %llu\r\n", i + 1,
				    (unsigned long long)s->msgs[i].size);
	conn_printf(s->conn, ".\r\n");
}

static void cmd_retr(struct pop3_session *s, struct pop3_command *cmd)
{
	uint32_t n;
	if (pop3_msg_arg(s, cmd->argv[0], &n))
		pop3_session_stream(s, n, false, 0);
}

static void cmd_top(struct pop3_session *s, struct pop3_command *cmd)
{
	uint32_t n, lines;
	if (!pop3_msg_arg(s, cmd->argv[0], &n))
		return;
	if (strcmp(cmd->argv[1], "0") == 0) {
		lines = 0;
	} else if (pop3_parser_number(cmd->argv[1], &lines) < 0) {
		pop3_reply(s, "-ERR Invalid number of lines");
		return;
	}
	pop3_session_stream(s, n, true, lines);
}

static void cmd_dele(struct pop3_session *s, struct pop3_command *cmd)
{
	uint32_t n;
	if (!pop3_msg_arg(s, cmd->argv[0], &n))
		return;
	s->msgs[n - 1].deleted = true;
	pop3_replyf(s, "+OK Message %u deleted", n);
}

static void cmd_noop(struct pop3_session *s, struct pop3_command *cmd)
{
	(void)cmd;
	pop3_reply(s, "+OK");
}

static void cmd_rset(struct pop3_session *s, struct pop3_command *cmd)
{
	(void)cmd;
	for (uint32_t i = 0; i < s->count; i++)
		s->msgs[i].deleted = false;
	pop3_replyf(s, "+OK %u messages", s->count);
}

/* RFC 1939 §7: a unique-id of 1..70 printable characters, never reused for another message
 * of this maildrop. UIDs never repeat within one UIDVALIDITY, so both together do. */
static void pop3_uidl_line(struct pop3_session *s, uint32_t n, const char *prefix)
{
	conn_printf(s->conn, "%s%u %08x%08x\r\n", prefix, n, s->uidvalidity, s->msgs[n - 1].uid);
}

static void cmd_uidl(struct pop3_session *s, struct pop3_command *cmd)
{
	uint32_t n;
	if (cmd->argc == 1) {
		if (pop3_msg_arg(s, cmd->argv[0], &n))
			pop3_uidl_line(s, n, "+OK ");
		return;
	}
	conn_printf(s->conn, "+OK unique-id listing follows\r\n");
	for (uint32_t i = 0; i < s->count; i++)
		if (!s->msgs[i].deleted)
			pop3_uidl_line(s, i + 1, "");
	conn_printf(s->conn, ".\r\n");
}

static void cmd_quit(struct pop3_session *s, struct pop3_command *cmd)
{
	(void)cmd;
	if (s->state == POP3_STATE_TRANSACTION)
		pop3_session_update(s);
	else
		pop3_session_close(s, "+OK Logging out");
}
