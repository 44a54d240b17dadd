/* The SMTP command table and handlers. The dispatcher checks the preconditions named in
 * the table (greeting, transaction state, authentication) in one place; a handler checks
 * its arguments and acts. Replies carry RFC 3463 enhanced status codes (RFC 2034). */
#include "smtp/smtp_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "mime/address.h"
#include "core/banned.h"

enum {
	CMD_NEED_HELO = 1 << 0,   /* after HELO/EHLO */
	CMD_NEED_MAIL = 1 << 1,   /* inside a transaction */
	CMD_NEED_RCPT = 1 << 2,   /* at least one accepted recipient */
	CMD_NOT_IN_MAIL = 1 << 3, /* not inside a transaction */
	CMD_NEED_AUTH = 1 << 4,   /* submission ports: authenticated first */
};

struct smtp_command_def {
	enum smtp_verb verb;
	void (*handler)(struct smtp_session *s, struct smtp_command *cmd);
	unsigned flags;
};

static void cmd_helo(struct smtp_session *s, struct smtp_command *cmd);
static void cmd_ehlo(struct smtp_session *s, struct smtp_command *cmd);
static void cmd_mail(struct smtp_session *s, struct smtp_command *cmd);
static void cmd_rcpt(struct smtp_session *s, struct smtp_command *cmd);
static void cmd_data(struct smtp_session *s, struct smtp_command *cmd);
static void cmd_bdat(struct smtp_session *s, struct smtp_command *cmd);
static void cmd_rset(struct smtp_session *s, struct smtp_command *cmd);
static void cmd_noop(struct smtp_session *s, struct smtp_command *cmd);
static void cmd_quit(struct smtp_session *s, struct smtp_command *cmd);
static void cmd_help(struct smtp_session *s, struct smtp_command *cmd);
static void cmd_vrfy(struct smtp_session *s, struct smtp_command *cmd);
static void cmd_expn(struct smtp_session *s, struct smtp_command *cmd);
static void cmd_starttls(struct smtp_session *s, struct smtp_command *cmd);
static void cmd_auth(struct smtp_session *s, struct smtp_command *cmd);
static void cmd_burl(struct smtp_session *s, struct smtp_command *cmd)
{
	smtp_burl_command(s, cmd);
}

static const struct smtp_command_def smtp_commands[] = {
    {SMTP_VERB_HELO, cmd_helo, 0},
    {SMTP_VERB_EHLO, cmd_ehlo, 0},
    {SMTP_VERB_MAIL, cmd_mail, CMD_NEED_HELO | CMD_NOT_IN_MAIL | CMD_NEED_AUTH},
    {SMTP_VERB_RCPT, cmd_rcpt, CMD_NEED_HELO | CMD_NEED_MAIL},
    {SMTP_VERB_DATA, cmd_data, CMD_NEED_HELO | CMD_NEED_MAIL | CMD_NEED_RCPT},
    {SMTP_VERB_BDAT, cmd_bdat, CMD_NEED_HELO},
    {SMTP_VERB_RSET, cmd_rset, 0},
    {SMTP_VERB_NOOP, cmd_noop, 0},
    {SMTP_VERB_QUIT, cmd_quit, 0},
    {SMTP_VERB_HELP, cmd_help, 0},
    {SMTP_VERB_VRFY, cmd_vrfy, 0},
    {SMTP_VERB_EXPN, cmd_expn, 0},
    {SMTP_VERB_STARTTLS, cmd_starttls, CMD_NOT_IN_MAIL},
    {SMTP_VERB_AUTH, cmd_auth, CMD_NEED_HELO | CMD_NOT_IN_MAIL},
    {SMTP_VERB_BURL, cmd_burl, CMD_NEED_HELO | CMD_NEED_AUTH},
};

void smtp_commands_execute(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_command cmd;
	const char *error;
	if (smtp_parser_parse(s->cmd, line, len, &cmd, &error) < 0) {
		log_debug("session=%s proto=smtp event=bad-command reply=\"%s\"", conn_id(s->conn),
		          error);
		smtp_reply(s, error);
		return;
	}
	const struct smtp_command_def *def = NULL;
	for (size_t i = 0; i < sizeof(smtp_commands) / sizeof(smtp_commands[0]); i++)
		if (smtp_commands[i].verb == cmd.verb)
			def = &smtp_commands[i];
	if (def == NULL) {
		smtp_reply(s, "500 5.5.2 Syntax error, command unrecognized");
		return;
	}
	if ((def->flags & CMD_NEED_HELO) && s->helo == NULL) {
		smtp_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if ((def->flags & CMD_NEED_AUTH) && smtp_session_is_submission(s) && !s->authenticated) {
		smtp_reply(s, "530 5.7.0 Authentication required");
		return;
	}
	if ((def->flags & CMD_NOT_IN_MAIL) && s->have_mail) {
		smtp_reply(s, cmd.verb == SMTP_VERB_MAIL
		                  ? "503 5.5.1 Error: nested MAIL command"
		                  : "503 5.5.1 Error: MAIL transaction in progress");
		return;
	}
	if ((def->flags & CMD_NEED_MAIL) && !s->have_mail) {
		smtp_reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if ((def->flags & CMD_NEED_RCPT) && s->rcpt_count == 0) {
		smtp_reply(s, "554 5.5.1 Error: no valid recipients");
		return;
	}
	def->handler(s, &cmd);
}

static void smtp_greeting_reset(struct smtp_session *s, const char *helo)
{
	smtp_session_reset_tx(s);
	s->helo = arena_strdup(s->arena, helo);
}

static void cmd_helo(struct smtp_session *s, struct smtp_command *cmd)
{
	smtp_greeting_reset(s, cmd->arg);
	s->esmtp = false;
	SMTP_LOG(s, "event=helo helo=%s", cmd->arg);
	smtp_replyf(s, "250 %s", s->conf->hostname);
}

static void cmd_ehlo(struct smtp_session *s, struct smtp_command *cmd)
{
	smtp_greeting_reset(s, cmd->arg);
	s->esmtp = true;
	SMTP_LOG(s, "event=ehlo helo=%s", cmd->arg);
	char size[64];
	snprintf(size, sizeof(size), "SIZE %llu", (unsigned long long)s->limits->message_size);
	const char *lines[16];
	size_t n = 0;
	lines[n++] = s->conf->hostname;
	lines[n++] = "PIPELINING";
	lines[n++] = size;
	lines[n++] = "8BITMIME";
	lines[n++] = "SMTPUTF8";
	lines[n++] = "ENHANCEDSTATUSCODES";
	lines[n++] = "CHUNKING";
	if (!conn_is_tls(s->conn))
		lines[n++] = "STARTTLS";
	char auth[128];
	if (smtp_session_auth_offered(s)) {
		snprintf(auth, sizeof(auth), "AUTH %s", sasl_mech_list());
		lines[n++] = auth;
	}
	/* RFC 3461 only where we queue mail for others; port 25 delivers locally only (its
	 * DSN support can come with relaying, if ever). */
	if (smtp_session_is_submission(s))
		lines[n++] = "DSN";
	/* RFC 4468 §3.3: BURL with the imap scheme once authenticated (URLAUTH's submit+) */
	if (smtp_session_is_submission(s) && s->authenticated)
		lines[n++] = "BURL imap";
	/* RFC 8689 §4: only over TLS. Port 25 delivers locally, which keeps the promise. */
	if (conn_is_tls(s->conn))
		lines[n++] = "REQUIRETLS";
	lines[n++] = "HELP";
	for (size_t i = 0; i < n; i++)
		conn_printf(s->conn, "250%c%s\r\n", i + 1 < n ? '-' : ' ', lines[i]);
}

static void mail_owned_read(void *ctx);
static void mail_accept(struct smtp_session *s);
static void mail_commit(struct smtp_session *s);

/* Postfix's queue_minfree: below min_free_space (plus SIZE=, when given) on the data
 * directory's file system, MAIL gets a temporary refusal (RFC 3463 4.3.1), so the sender
 * keeps the message instead of hearing a 451 after sending all of it. The store measures
 * at most once a second. true when refused. */
static bool smtp_mail_space_low(struct smtp_session *s, const struct smtp_command *cmd)
{
	uint64_t min = conf_min_free_space(s->conf);
	uint64_t size = cmd->size_set ? cmd->size : 0;
	if (!store_space_low(s->server->store, min, size))
		return false;
	SMTP_LOG(s, "event=mail result=452 reason=disk-space size=%llu", (unsigned long long)size);
	smtp_reply(s, "452 4.3.1 Insufficient system storage");
	return true;
}

static void cmd_mail(struct smtp_session *s, struct smtp_command *cmd)
{
	if (smtp_policy_mail(s))
		return;
	if (cmd->size_set && cmd->size > s->limits->message_size) {
		smtp_reply(s, "552 5.3.4 Message size exceeds fixed maximum message size");
		return;
	}
	if (smtp_mail_space_low(s, cmd))
		return;
	if (cmd->path.utf8 && !cmd->smtputf8) {
		smtp_reply(s, "553 5.6.7 Non-ASCII address requires SMTPUTF8");
		return;
	}
	if (cmd->requiretls && !conn_is_tls(s->conn)) {
		smtp_reply(s, "530 5.7.10 REQUIRETLS needs a TLS session");
		return;
	}
	if ((cmd->ret != SMTP_RET_UNSPEC || cmd->envid != NULL) && !smtp_session_is_submission(s)) {
		smtp_reply(s, "555 5.5.4 Unsupported MAIL parameter");
		return;
	}
	const char *from = cmd->path.null ? "" : address_format(s->tx, &cmd->path);
	s->read_cmd = *cmd; /* the command lives on the stack; its strings in s->cmd */
	s->read_addr = from;
	if (smtp_session_is_submission(s) && !cmd->path.null) {
		/* RFC 6409 §6.1: the submission server may insist the sender is the user. */
		smtp_session_read(s, mail_owned_read, mail_accept);
		return;
	}
	s->read_ret = cmd->path.null ? 0 : 1; /* <> is nobody's address */
	mail_accept(s);
}

/* Where reads may wait: is the sender the user's address? */
static void mail_owned_read(void *ctx)
{
	struct smtp_session *s = ctx;
	s->read_ret = store_address_owned(s->server->store, s->account_id, s->read_addr);
}

static void mail_accept(struct smtp_session *s)
{
	const char *from = s->read_addr;
	int owned = smtp_session_is_submission(s) ? s->read_ret : 1;
	if (owned < 0) {
		smtp_reply(s, "451 4.3.0 Local error, try again later");
		return;
	}
	if (owned == 0) {
		SMTP_LOG(s, "event=mail from=<%s> result=553 user=%s", from, s->auth_user);
		smtp_replyf(s, "553 5.7.1 <%s>: Sender address rejected: not owned by user %s",
		            from, s->auth_user);
		return;
	}
	if (smtp_checks_active(s)) {
		smtp_checks_mail(s, from, mail_commit); /* SPF (RFC 7208) before the answer */
		return;
	}
	mail_commit(s);
}

static void mail_commit(struct smtp_session *s)
{
	const struct smtp_command *cmd = &s->read_cmd;
	const char *from = s->read_addr;
	const char *refused = smtp_checks_active(s) ? smtp_checks_mail_reply(s) : NULL;
	if (refused != NULL) {
		smtp_checks_free(&s->checks);
		smtp_reply(s, refused);
		return;
	}
	s->have_mail = true;
	s->mail_from = arena_strdup(s->tx, from);
	s->smtputf8 = cmd->smtputf8;
	s->requiretls = cmd->requiretls;
	s->body_8bit = cmd->body == SMTP_BODY_8BITMIME;
	s->declared_size = cmd->size_set ? cmd->size : 0;
	s->dsn_ret = cmd->ret == SMTP_RET_FULL   ? STORE_DSN_RET_FULL
	             : cmd->ret == SMTP_RET_HDRS ? STORE_DSN_RET_HDRS
	                                         : STORE_DSN_RET_UNSPEC;
	s->dsn_envid = cmd->envid == NULL ? NULL : arena_strdup(s->tx, cmd->envid);
	SMTP_LOG(s, "event=mail from=<%s> size=%llu", from, (unsigned long long)s->declared_size);
	smtp_reply(s, "250 2.1.0 Ok");
}

/* Quota at RCPT time (we know SIZE= at best). NULL when fine, else the reply. */
static const char *smtp_rcpt_quota(struct smtp_session *s, const struct store_rcpt *r)
{
	for (size_t i = 0; i < r->count; i++) {
		struct store_account_limits l;
		int ret = store_account_limits(s->server->store, r->account_ids[i], &l);
		if (ret < 0)
			return "451 4.3.0 Local error, try again later";
		if (ret == 0)
			continue;
		if (l.message_limit > 0 && l.messages >= l.message_limit)
			return "452 4.2.2 Mailbox full (message limit), try again later";
		if (l.quota == 0)
			continue;
		if (s->declared_size > l.quota)
			return "552 5.2.2 Message exceeds the recipient's mailbox quota";
		if (l.used >= l.quota || l.used + s->declared_size > l.quota)
			return "452 4.2.2 Mailbox full, try again later";
	}
	return NULL;
}

_Static_assert(SMTP_NOTIFY_SUCCESS == STORE_NOTIFY_SUCCESS &&
                   SMTP_NOTIFY_FAILURE == STORE_NOTIFY_FAILURE &&
                   SMTP_NOTIFY_DELAY == STORE_NOTIFY_DELAY &&
                   SMTP_NOTIFY_NEVER == STORE_NOTIFY_NEVER && SMTP_ORCPT_MAX == STORE_ORCPT_MAX &&
                   SMTP_ENVID_MAX == STORE_ENVID_MAX,
               "smtp_parser.h and store.h DSN values differ");

static void smtp_rcpt_add(struct smtp_session *s, const char *addr, bool remote,
                          const struct store_rcpt *r, const struct smtp_command *cmd)
{
	if (s->rcpt_count == s->rcpt_cap) {
		size_t cap = s->rcpt_cap == 0 ? 8 : s->rcpt_cap * 2;
		struct smtp_rcpt *n = arena_alloc(s->tx, cap * sizeof(*n));
		if (s->rcpt_count > 0)
			memcpy(n, s->rcpts, s->rcpt_count * sizeof(*n));
		s->rcpts = n;
		s->rcpt_cap = cap;
	}
	struct smtp_rcpt *rc = &s->rcpts[s->rcpt_count++];
	rc->address = arena_strdup(s->tx, addr);
	rc->remote = remote;
	/* The parser's NOTIFY bits are the store's (checked above smtp_rcpt_add()). */
	rc->dsn.notify = cmd->notify;
	rc->dsn.orcpt = cmd->orcpt == NULL ? NULL : arena_strdup(s->tx, cmd->orcpt);
	rc->policies = NULL;
	if (r != NULL) {
		rc->accounts = *r;
		rc->policies = arena_alloc(s->tx, (r->count + 1) * sizeof(*rc->policies));
		memcpy(rc->policies, s->read_policies, r->count * sizeof(*rc->policies));
	} else {
		rc->accounts.count = 0;
	}
}

/* <postmaster> without a domain (RFC 5321 §4.1.1.3) must always be accepted: it means the
 * postmaster of our host name, or of the domain the host name is in. */
static const char *smtp_postmaster(struct smtp_session *s)
{
	const char *host = s->conf->hostname;
	for (int i = 0; i < 2 && host != NULL; i++) {
		char *addr = arena_alloc(s->cmd, strlen(host) + 12);
		memcpy(addr, "postmaster@", 11);
		memcpy(addr + 11, host, strlen(host) + 1);
		struct store_rcpt r;
		if (store_resolve(s->server->store, addr, &r) == 1)
			return addr;
		host = strchr(host, '.');
		if (host != NULL)
			host++;
	}
	return "postmaster";
}

static void rcpt_lookup_read(void *ctx);
static void rcpt_answer(struct smtp_session *s);

/* The policy of each account the recipient resolves to (conf_policy.h: as delivery
 * resolves aliases, the account's own address and domain count), into read_policies. */
static void smtp_rcpt_policies_read(struct smtp_session *s)
{
	for (size_t i = 0; i < s->read_rcpt.count; i++) {
		char *address = NULL;
		if (s->conf->policies.count > 0 &&
		    store_account_address(s->server->store, s->read_rcpt.account_ids[i],
		                          &address) == 1)
			s->read_policies[i] = conf_policy_for(s->conf, address);
		else
			s->read_policies[i] = conf_policy_global(s->conf);
		free(address);
	}
}

static void cmd_rcpt(struct smtp_session *s, struct smtp_command *cmd)
{
	if (s->bdat) {
		smtp_reply(s, "503 5.5.1 Error: RCPT after BDAT");
		return;
	}
	if (s->rcpt_count >= s->limits->recipients) {
		smtp_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	if (cmd->path.utf8 && !s->smtputf8) {
		smtp_reply(s, "553 5.6.7 Non-ASCII address requires SMTPUTF8");
		return;
	}
	if ((cmd->notify != 0 || cmd->orcpt != NULL) && !smtp_session_is_submission(s)) {
		smtp_reply(s, "555 5.5.4 Unsupported RCPT parameter");
		return;
	}
	s->read_cmd = *cmd; /* the command lives on the stack; its strings in s->cmd */
	smtp_session_read(s, rcpt_lookup_read, rcpt_answer);
}

/* Where reads may wait: everything RCPT needs to know about the recipient. */
static void rcpt_lookup_read(void *ctx)
{
	struct smtp_session *s = ctx;
	struct store *st = s->server->store;
	const struct smtp_command *cmd = &s->read_cmd;
	const char *to = address_format(s->cmd, &cmd->path);
	if (cmd->path.domain[0] == '\0')
		to = smtp_postmaster(s);
	s->read_addr = to;
	s->read_reply = NULL;
	s->read_found = 0;
	s->read_rcpt.count = 0;
	const char *at = strrchr(to, '@');
	s->read_ret = at == NULL ? 1 : store_domain_is_local(st, at + 1);
	if (s->read_ret == 1)
		s->read_found = at == NULL ? 0 : store_resolve(st, to, &s->read_rcpt);
	if (s->read_found == 1) {
		s->read_reply = smtp_rcpt_quota(s, &s->read_rcpt);
		smtp_rcpt_policies_read(s);
	}
	smtp_policy_rcpt_read(s);
}

static void rcpt_answer(struct smtp_session *s)
{
	const struct smtp_command *cmd = &s->read_cmd;
	const char *to = s->read_addr;
	if (smtp_policy_rcpt(s, to))
		return;
	if (s->read_ret < 0) {
		smtp_reply(s, "451 4.3.0 Local error, try again later");
		return;
	}
	if (s->read_ret == 0) {
		if (!smtp_session_is_submission(s)) {
			SMTP_LOG(s, "event=rcpt to=<%s> result=554 reason=relay-denied", to);
			smtp_replyf(s, "554 5.7.1 <%s>: Relay access denied", to);
			return;
		}
		smtp_rcpt_add(s, to, true, NULL, cmd);
		SMTP_LOG(s, "event=rcpt to=<%s> result=250 remote=yes", to);
		smtp_reply(s, "250 2.1.5 Ok");
		return;
	}
	if (s->read_found < 0) {
		smtp_reply(s, "451 4.3.0 Local error, try again later");
		return;
	}
	if (s->read_found == 0) {
		SMTP_LOG(s, "event=rcpt to=<%s> result=550", to);
		smtp_replyf(s, "550 5.1.1 <%s>: Recipient address rejected: User unknown", to);
		return;
	}
	if (s->read_reply != NULL) {
		SMTP_LOG(s, "event=rcpt to=<%s> result=%.3s reason=quota", to, s->read_reply);
		smtp_reply(s, s->read_reply);
		return;
	}
	smtp_rcpt_add(s, to, false, &s->read_rcpt, cmd);
	SMTP_LOG(s, "event=rcpt to=<%s> result=250", to);
	smtp_reply(s, "250 2.1.5 Ok");
}

static void cmd_data(struct smtp_session *s, struct smtp_command *cmd)
{
	(void)cmd;
	if (s->bdat) {
		smtp_reply(s, "503 5.5.1 Error: DATA after BDAT");
		return;
	}
	const char *err = smtp_session_body_begin(s);
	if (err != NULL) {
		smtp_reply(s, err);
		return;
	}
	smtp_session_set_state(s, SMTP_STATE_DATA);
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void cmd_bdat(struct smtp_session *s, struct smtp_command *cmd)
{
	/* RFC 3030 §2: the chunk follows the command whatever we think of it, so it is read
	 * (and dropped) before the error reply. */
	const char *err = NULL;
	if (!s->have_mail)
		err = "503 5.5.1 Error: need MAIL command";
	else if (s->rcpt_count == 0)
		err = "554 5.5.1 Error: no valid recipients";
	else if (!s->body_started)
		err = smtp_session_body_begin(s);
	if (err != NULL) {
		smtp_session_reset_tx(s);
		s->bdat_discard = true;
		s->body_error = err;
		/* The dropped chunk is timed like a body (smtp_body_too_slow()), from now: the
		 * clock of no (or an earlier) body would cut it off as too slow. */
		s->body_start = time(NULL);
	} else {
		s->bdat = true;
		s->bdat_last = cmd->last;
	}
	s->bdat_remaining = cmd->chunk_size;
	smtp_session_set_state(s, SMTP_STATE_BDAT);
}

static void cmd_rset(struct smtp_session *s, struct smtp_command *cmd)
{
	(void)cmd;
	smtp_session_reset_tx(s);
	smtp_reply(s, "250 2.0.0 Ok");
}

static void cmd_noop(struct smtp_session *s, struct smtp_command *cmd)
{
	(void)cmd;
	smtp_reply(s, "250 2.0.0 Ok");
}

static void cmd_quit(struct smtp_session *s, struct smtp_command *cmd)
{
	(void)cmd;
	smtp_session_close(s, "221 2.0.0 Bye");
}

static void cmd_help(struct smtp_session *s, struct smtp_command *cmd)
{
	(void)cmd;
	smtp_reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP "
	              "VRFY STARTTLS AUTH; see RFC 5321");
}

static void cmd_vrfy(struct smtp_session *s, struct smtp_command *cmd)
{
	(void)cmd;
	/* RFC 5321 §3.5.3: 252 when we will not confirm addresses (no harvesting). */
	if (!s->conf->vrfy_enabled) {
		smtp_reply(s, "502 5.5.1 VRFY command is disabled");
		return;
	}
	smtp_reply(s, "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_expn(struct smtp_session *s, struct smtp_command *cmd)
{
	(void)cmd;
	smtp_reply(s, "502 5.5.1 EXPN command is not supported");
}

static void cmd_starttls(struct smtp_session *s, struct smtp_command *cmd)
{
	(void)cmd;
	if (conn_is_tls(s->conn)) {
		smtp_reply(s, "554 5.5.1 Error: TLS already active");
		return;
	}
	conn_printf(s->conn, "220 2.0.0 Ready to start TLS\r\n");
	/* Bytes pipelined after STARTTLS are discarded inside conn_start_tls (RFC 3207 §4.2,
	 * CVE-2011-0411 class of injection). */
	if (conn_start_tls(s->conn) < 0) {
		smtp_session_close(s, "454 4.7.0 TLS not available due to local problem");
		return;
	}
	smtp_session_set_state(s, SMTP_STATE_TLS);
}

/* ---- AUTH (RFC 4954): the wire side of auth/auth_login ---- */

static void smtp_auth_wake(void *ctx)
{
	struct smtp_session *s = ctx;
	session_async_finished(&s->life);
}

/* What the login driver said, on the wire. */
static void smtp_auth_status(struct smtp_session *s, enum auth_login_status st,
                             const char *challenge, const char *error)
{
	switch (st) {
	case AUTH_LOGIN_CHALLENGE:
		/* SCRAM's server-final goes here too: "334 <v=...>" answered by an empty line,
		 * then 235 (RFC 4954 §4: SMTP has no additional data with 235). */
		smtp_session_set_state(s, SMTP_STATE_AUTH);
		conn_printf(s->conn, "334 %s\r\n", challenge);
		return;
	case AUTH_LOGIN_PENDING:
		smtp_session_set_state(s, SMTP_STATE_WAIT);
		session_async_start(&s->life, SMTP_ASYNC_AUTH);
		return;
	case AUTH_LOGIN_DONE:
		smtp_session_set_state(s, SMTP_STATE_COMMAND);
		smtp_commands_auth_done(s);
		return;
	case AUTH_LOGIN_CANCELLED:
		auth_login_free(&s->login);
		smtp_session_set_state(s, SMTP_STATE_COMMAND);
		smtp_reply(s, "501 5.7.0 Authentication aborted");
		return;
	case AUTH_LOGIN_MALFORMED:
		auth_login_free(&s->login);
		smtp_session_set_state(s, SMTP_STATE_COMMAND);
		smtp_replyf(s, "501 5.5.2 %s", error);
		return;
	}
}

static void cmd_auth(struct smtp_session *s, struct smtp_command *cmd)
{
	if (!smtp_session_is_submission(s)) {
		smtp_reply(s, "503 5.5.1 Error: authentication not enabled");
		return;
	}
	if (s->authenticated) {
		smtp_reply(s, "503 5.5.1 Error: already authenticated");
		return;
	}
	if (!smtp_session_auth_offered(s)) {
		smtp_reply(s,
		           "538 5.7.11 Encryption required for requested authentication mechanism");
		return;
	}
	enum sasl_mech mech;
	if (sasl_mech_parse(cmd->mechanism, &mech) < 0) {
		smtp_reply(s, "504 5.5.4 Unrecognized authentication type");
		return;
	}
	const char *challenge, *error;
	auth_login_free(&s->login);
	s->login = auth_login_new(s->server->auth, conn_remote_ip(s->conn), smtp_auth_wake, s);
	enum auth_login_status st =
	    auth_login_sasl_start(s->login, mech, cmd->initial_response, &challenge, &error);
	smtp_auth_status(s, st, challenge, error);
}

void smtp_commands_auth_continue(struct smtp_session *s, const char *line)
{
	const char *challenge, *error;
	enum auth_login_status st = auth_login_sasl_continue(s->login, line, &challenge, &error);
	smtp_auth_status(s, st, challenge, error);
}

void smtp_commands_auth_resume(struct smtp_session *s)
{
	const char *challenge, *error;
	enum auth_login_status st = auth_login_resume(s->login, &challenge, &error);
	smtp_auth_status(s, st, challenge, error);
	if (st != AUTH_LOGIN_DONE) /* SCRAM's server-first after its look-up: read the answer */
		conn_resume(s->conn);
}

/* The one place where an SMTP login succeeds. */
static void smtp_auth_succeeded(struct smtp_session *s, const struct auth_login_result *res)
{
	/* limit_sessions_per_user_ip, as for IMAP and POP3: the credentials were good, but
	 * this session stays unauthenticated (a temporary failure, RFC 4954 §6). */
	if (session_admit_login(&s->life, s->server->userip, res->account_id,
	                        s->limits->sessions_per_user_ip) == 0) {
		auth_login_free(&s->login);
		smtp_reply(s, "454 4.7.0 Too many sessions of this user from this address");
		return;
	}
	s->authenticated = true;
	s->account_id = res->account_id;
	s->auth_user = arena_strdup(s->arena, res->user);
	SMTP_LOG(s, "event=auth result=ok user=%s mech=%s cached=%s", s->auth_user, res->mech,
	         res->cached ? "yes" : "no");
	auth_login_free(&s->login);
	smtp_reply(s, "235 2.7.0 Authentication successful");
}

void smtp_commands_auth_done(struct smtp_session *s)
{
	const struct auth_login_result *res = auth_login_result(s->login);
	if (res->result == 1) {
		smtp_auth_succeeded(s, res);
		return;
	}
	SMTP_LOG(s, "event=auth result=%s user=%s mech=%s delay_ms=%u",
	         res->result == 0 ? "fail" : "tempfail", res->user, res->mech, res->delay_ms);
	if (res->result < 0) {
		auth_login_free(&s->login);
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	s->auth_failures++;
	unsigned delay = res->delay_ms;
	auth_login_free(&s->login);
	if (delay > 0) {
		/* Answer only after the penalty; input stays paused meanwhile. */
		smtp_session_set_state(s, SMTP_STATE_WAIT);
		conn_pause(s->conn);
		conn_set_timer(s->conn, delay);
		return;
	}
	smtp_commands_auth_delay_done(s);
}

void smtp_commands_auth_delay_done(struct smtp_session *s)
{
	if (s->closed)
		return;
	smtp_session_set_state(s, SMTP_STATE_COMMAND);
	if (s->auth_failures >= s->limits->auth_failures) {
		/* One reply for the command that ends the session (RFC 5321 §3.8 allows 421 as
		 * the answer to any command). */
		smtp_session_close(s, "421 4.7.0 Too many authentication failures");
		return;
	}
	smtp_reply(s, "535 5.7.8 Error: authentication failed");
	conn_resume(s->conn);
}
