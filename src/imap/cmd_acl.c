/* ACL commands (RFC 4314 §3): MYRIGHTS, LISTRIGHTS, GETACL, SETACL and DELETEACL. Rights
 * live in the store (store_acl_*(), STORE_MAILBOX_ACL); the mailbox is named as everywhere
 * (the session's own, or another account's through the shared namespace, imap_acl.h).
 * Who may ask (RFC 4314 §4): MYRIGHTS anyone who may look the mailbox up, the others only
 * with the a right; a session that may not look the mailbox up is told NONEXISTENT, as for
 * a mailbox that does not exist, and one without a NOPERM. */
#include "imap/imap_commands.h"
#include "imap/imap_acl.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

/* Append to a line sized for what it takes (a full one only loses its end). */
static void acl_put(struct buf *b, const char *text)
{
	if (buf_puts(b, text) < 0)
		return;
}

/* The mailbox of a command: 1 with *mb_r (it exists and the session may look it up), else
 * answered (0). */
static int acl_mailbox(struct imap_cmd *cmd, const char *raw, struct imap_acl_mbox *mb_r)
{
	struct imap_session *s = cmd->s;
	const char *name = imap_commands_mailbox_name(s, raw);
	if (name == NULL || store_mailbox_name_valid(name) != 1) {
		imap_tagged(s, cmd->tag, "NO", "[CANNOT] Invalid mailbox name");
		return 0;
	}
	int r = imap_acl_resolve(s, name, mb_r);
	if (r == 1 && !mb_r->shared)
		r = store_mailbox_exists(s->server->store, mb_r->owner, mb_r->name);
	if (r == 0)
		imap_tagged(s, cmd->tag, "NO", "[NONEXISTENT] Mailbox does not exist");
	else if (r < 0)
		imap_tagged(s, cmd->tag, "NO", "[UNAVAILABLE] Cannot read the rights");
	return r == 1;
}

/* The owner's address of mb (the command arena). */
static const char *acl_owner(struct imap_session *s, const struct imap_acl_mbox *mb)
{
	return mb->shared ? mb->owner_address : imap_acl_user(s);
}

/* An identifier from the client, lower-case (the command arena); NULL when not an astring. */
static const char *acl_identifier(struct imap_cmd *cmd, const struct imap_arg *arg)
{
	const char *raw;
	if (!imap_commands_astring(arg, &raw))
		return NULL;
	char *id = arena_strdup(cmd->s->cmd, raw);
	for (char *c = id; *c != '\0'; c++)
		*c = (char)tolower((unsigned char)*c);
	return id;
}

static void acl_send_rights(struct imap_session *s, const char *what, const char *raw_name,
                            const char *identifier, const char *rights)
{
	struct buf b;
	buf_init(&b, 16 * STORE_MAILBOX_NAME_MAX + 1024);
	int r = buf_printf(&b, "* %s ", what);
	cmd_status_mailbox_name(s, &b, raw_name);
	if (r == 0 && identifier != NULL) {
		r = buf_puts(&b, " ");
		imap_quote(&b, identifier);
	}
	if (r == 0 && rights != NULL) {
		r = buf_puts(&b, " ");
		imap_quote(&b, rights);
	}
	if (r == 0)
		imap_send(s, "%s", buf_cstr(&b));
	buf_free(&b);
}

/* MYRIGHTS mailbox (RFC 4314 §3.5). */
void cmd_myrights(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const char *raw;
	struct imap_acl_mbox mb;
	if (imap_parser_arg_count(cmd->args) != 1 || !imap_commands_astring(&cmd->args[0], &raw)) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: MYRIGHTS mailbox");
		return;
	}
	if (!acl_mailbox(cmd, raw, &mb))
		return;
	char text[sizeof(STORE_ACL_LETTERS)];
	store_acl_rights_string(mb.rights, text);
	acl_send_rights(s, "MYRIGHTS", imap_commands_mailbox_name(s, raw), NULL, text);
	imap_tagged(s, cmd->tag, "OK", "MYRIGHTS completed");
}

/* The mailbox and identifier of LISTRIGHTS, SETACL and DELETEACL, and the a right: 1, else
 * answered (0). */
static int acl_admin(struct imap_cmd *cmd, size_t args, const char *syntax,
                     struct imap_acl_mbox *mb_r, const char **identifier_r)
{
	struct imap_session *s = cmd->s;
	const char *raw;
	*identifier_r = NULL;
	if (imap_parser_arg_count(cmd->args) != args || !imap_commands_astring(&cmd->args[0], &raw) ||
	    (args > 1 && (*identifier_r = acl_identifier(cmd, &cmd->args[1])) == NULL)) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: %s", syntax);
		return 0;
	}
	if (!acl_mailbox(cmd, raw, mb_r))
		return 0;
	if ((mb_r->rights & STORE_ACL_ADMIN) == 0) {
		imap_acl_deny(s, cmd->tag, STORE_ACL_ADMIN);
		return 0;
	}
	return 1;
}

struct acl_get {
	struct imap_session *s;
	struct buf *line;
};

static void acl_get_cb(void *ctx, const char *identifier, unsigned rights)
{
	struct acl_get *g = ctx;
	char text[sizeof(STORE_ACL_LETTERS)];
	store_acl_rights_string(rights, text);
	acl_put(g->line, " ");
	imap_quote(g->line, identifier);
	acl_put(g->line, " ");
	imap_quote(g->line, text);
}

/* GETACL mailbox (RFC 4314 §3.3): the owner (every right) first, then the entries. */
void cmd_getacl(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct imap_acl_mbox mb;
	const char *id;
	if (!acl_admin(cmd, 1, "GETACL mailbox", &mb, &id))
		return;
	struct buf line;
	buf_init(&line, 64 * 1024);
	acl_put(&line, "* ACL ");
	cmd_status_mailbox_name(s, &line, imap_commands_mailbox_name(s, cmd->args[0].str));
	struct acl_get g = {s, &line};
	acl_get_cb(&g, acl_owner(s, &mb), STORE_ACL_ALL);
	int r = store_acl_get(s->server->store, mb.owner, mb.name, acl_get_cb, &g);
	if (r == 1) {
		imap_send(s, "%s", buf_cstr(&line));
		imap_tagged(s, cmd->tag, "OK", "GETACL completed");
	} else if (r == 0) {
		imap_tagged(s, cmd->tag, "NO", "[NONEXISTENT] Mailbox does not exist");
	} else {
		imap_tagged(s, cmd->tag, "NO", "[UNAVAILABLE] Cannot read the rights");
	}
	buf_free(&line);
}

/* LISTRIGHTS mailbox identifier (RFC 4314 §3.4): the owner always has every right; anyone
 * else may be given any of them, each on its own (RIGHTS=texk: no rights are tied). */
void cmd_listrights(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct imap_acl_mbox mb;
	const char *id;
	if (!acl_admin(cmd, 2, "LISTRIGHTS mailbox identifier", &mb, &id))
		return;
	const char *name = imap_commands_mailbox_name(s, cmd->args[0].str);
	if (strcmp(id, acl_owner(s, &mb)) == 0) {
		acl_send_rights(s, "LISTRIGHTS", name, id, STORE_ACL_LETTERS);
	} else {
		struct buf b;
		buf_init(&b, 16 * STORE_MAILBOX_NAME_MAX + 1024);
		acl_put(&b, "* LISTRIGHTS ");
		cmd_status_mailbox_name(s, &b, name);
		acl_put(&b, " ");
		imap_quote(&b, id);
		acl_put(&b, " \"\"");
		for (const char *c = STORE_ACL_LETTERS; *c != '\0'; c++)
			if (buf_printf(&b, " %c", *c) < 0)
				break;
		imap_send(s, "%s", buf_cstr(&b));
		buf_free(&b);
	}
	imap_tagged(s, cmd->tag, "OK", "LISTRIGHTS completed");
}

struct acl_set {
	struct store_mailbox_op op;
	char *mailbox, *identifier;
	const char *command; /* static */
};

static void acl_set_store_cb(struct store_mailbox_op *op, void *ctx)
{
	(void)op;
	imap_session_op_finished(ctx); /* writer thread: bounce to the loop */
}

static void acl_set_done(struct imap_session *s)
{
	struct acl_set *a = s->op;
	s->op = NULL;
	if (!s->closed && a->op.result == 0) {
		IMAP_LOG(s, "event=%s owner=%llu mailbox=\"%s\" identifier=\"%s\" result=ok",
		         a->command, (unsigned long long)a->op.account_id, a->mailbox, a->identifier);
		imap_tagged(s, s->op_tag, "OK", "%s completed", a->command);
	} else if (!s->closed) {
		const char *e = a->op.error != NULL ? a->op.error : STORE_ERROR_FAILED;
		if (strcmp(e, STORE_ERROR_NO_MAILBOX) == 0)
			imap_tagged(s, s->op_tag, "NO", "[NONEXISTENT] Mailbox does not exist");
		else if (strcmp(e, STORE_ERROR_LIMIT) == 0)
			imap_tagged(s, s->op_tag, "NO", "[LIMIT] At most %d identifiers per mailbox",
			            STORE_ACL_MAX);
		else if (strcmp(e, STORE_ERROR_INVALID) == 0)
			imap_tagged(s, s->op_tag, "NO", "[CANNOT] Invalid identifier");
		else
			imap_tagged(s, s->op_tag, "NO", "[UNAVAILABLE] %s failed: %s", a->command, e);
	}
	free(a->mailbox);
	free(a->identifier);
	free(a);
}

/* Write one entry: SETACL and DELETEACL. */
static void acl_write(struct imap_cmd *cmd, const struct imap_acl_mbox *mb, const char *id,
                      enum store_acl_mode mode, unsigned rights, const char *command)
{
	struct imap_session *s = cmd->s;
	if (strcmp(id, acl_owner(s, mb)) == 0) {
		imap_tagged(s, cmd->tag, "NO", "[CANNOT] The owner always has every right");
		return;
	}
	if (id[0] == '-') {
		imap_tagged(s, cmd->tag, "NO", "[CANNOT] Negative rights are not supported");
		return;
	}
	if (!store_acl_identifier_valid(id)) {
		imap_tagged(s, cmd->tag, "NO",
		            "[CANNOT] Identifiers are addresses, @domain, anyone or authenticated");
		return;
	}
	struct acl_set *a = xcalloc(1, sizeof(*a));
	a->mailbox = xstrdup(mb->name);
	a->identifier = xstrdup(id);
	a->command = command;
	a->op = (struct store_mailbox_op){
	    .action = STORE_MAILBOX_ACL,
	    .account_id = mb->owner,
	    .name = a->mailbox,
	    .acl_identifier = a->identifier,
	    .acl_rights = rights,
	    .acl_mode = mode,
	};
	/* Pause first: the callback may run before store_mailbox_change() returns. */
	imap_session_op_start(s, cmd->tag, acl_set_done, a);
	store_mailbox_change(s->server->store, &a->op, acl_set_store_cb, s);
}

/* SETACL mailbox identifier [+|-]rights (RFC 4314 §3.1). */
void cmd_setacl(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const char *text;
	if (imap_parser_arg_count(cmd->args) != 3 || !imap_commands_astring(&cmd->args[2], &text)) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: SETACL mailbox identifier rights");
		return;
	}
	enum store_acl_mode mode = text[0] == '+'   ? STORE_ACL_ADD
	                           : text[0] == '-' ? STORE_ACL_REMOVE
	                                            : STORE_ACL_SET;
	unsigned rights;
	if (store_acl_rights_parse(text + (mode != STORE_ACL_SET), &rights) < 0) {
		/* RFC 4314 §3.1: a right the server does not know is a BAD. */
		imap_tagged(s, cmd->tag, "BAD", "Unknown right in \"%s\" (rights: %s)", text,
		            STORE_ACL_LETTERS);
		return;
	}
	struct imap_acl_mbox mb;
	const char *id;
	if (!acl_admin(cmd, 3, "SETACL mailbox identifier rights", &mb, &id))
		return;
	acl_write(cmd, &mb, id, mode, rights, "SETACL");
}

/* DELETEACL mailbox identifier (RFC 4314 §3.2). */
void cmd_deleteacl(struct imap_cmd *cmd)
{
	struct imap_acl_mbox mb;
	const char *id;
	if (!acl_admin(cmd, 2, "DELETEACL mailbox identifier", &mb, &id))
		return;
	acl_write(cmd, &mb, id, STORE_ACL_SET, 0, "DELETEACL");
}
