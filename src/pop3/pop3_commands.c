/* The POP3 command table and handlers. The dispatcher checks the state a command needs
 * (RFC 1939: AUTHORIZATION or TRANSACTION) in one place; handlers check arguments. */
#include "pop3/pop3_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
    {POP3_VERB_USER, cmd_user, IN_AUTH},  {POP3_VERB_PASS, cmd_pass, IN_AUTH},
    {POP3_VERB_APOP, cmd_apop, IN_AUTH},  {POP3_VERB_AUTH, cmd_auth, IN_AUTH},
    {POP3_VERB_STLS, cmd_stls, IN_AUTH},  {POP3_VERB_CAPA, cmd_capa, IN_AUTH | IN_TRANS},
    {POP3_VERB_UTF8, cmd_utf8, IN_AUTH},  {POP3_VERB_STAT, cmd_stat, IN_TRANS},
    {POP3_VERB_LIST, cmd_list, IN_TRANS}, {POP3_VERB_RETR, cmd_retr, IN_TRANS},
    {POP3_VERB_DELE, cmd_dele, IN_TRANS}, {POP3_VERB_NOOP, cmd_noop, IN_TRANS},
    {POP3_VERB_RSET, cmd_rset, IN_TRANS}, {POP3_VERB_TOP, cmd_top, IN_TRANS},
    {POP3_VERB_UIDL, cmd_uidl, IN_TRANS}, {POP3_VERB_QUIT, cmd_quit, IN_AUTH | IN_TRANS},
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
	struct auth_login *login = pop3_session_login_new(s);
	pop3_session_login_status(s, auth_login_password(login, NULL, s->user, cmd->argv[0]), NULL,
	                          NULL);
}

static void cmd_apop(struct pop3_session *s, struct pop3_command *cmd)
{
	if (s->apop_banner[0] == '\0') {
		pop3_reply(s, "-ERR APOP is not enabled on this server");
		return;
	}
	struct auth_login *login = pop3_session_login_new(s);
	pop3_session_login_status(
	    s, auth_login_apop(login, s->apop_banner, cmd->argv[0], cmd->argv[1]), NULL, NULL);
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
	const char *challenge, *error;
	struct auth_login *login = pop3_session_login_new(s);
	enum auth_login_status st = auth_login_sasl_start(
	    login, mech, cmd->argc == 2 ? cmd->argv[1] : NULL, &challenge, &error);
	pop3_session_login_status(s, st, challenge, error);
}

void pop3_commands_sasl_continue(struct pop3_session *s, const char *line)
{
	const char *challenge, *error;
	enum auth_login_status st = auth_login_sasl_continue(s->login, line, &challenge, &error);
	pop3_session_login_status(s, st, challenge, error);
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
