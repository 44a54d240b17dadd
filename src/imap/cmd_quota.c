/* QUOTA (RFC 9208): GETQUOTAROOT, GETQUOTA and SETQUOTA.
 *
 * Each account has at most one quota root, named "" (Dovecot's default "User quota" is also
 * one root per user), which covers every mailbox of the account. It exists only while the
 * account has a limit (posthorn user quota: STORAGE, and MESSAGE with --messages), and
 * lists the resources that have one: without any a mailbox has no quota root
 * (RFC 9208 §4.3.2: "* QUOTAROOT name" with no root) and GETQUOTA "" is refused, since a
 * QUOTA response needs at least one resource. STORAGE is in units of 1024 octets (§5.1):
 * usage rounded up, the limit rounded down. Limits are set by the administrator on the
 * command line: QUOTASET is not advertised and SETQUOTA answers NO [NOPERM] (§4.1.3).
 *
 * A shared folder (RFC 4314, "Shared/OWNER/F") counts against its owner's quota (APPEND and
 * COPY into it are refused with [OVERQUOTA] by the owner's limits), so GETQUOTAROOT names
 * the owner's root, called by the owner's address, with its QUOTA response, for a session
 * with the r right on the folder (the right that shows the folder's messages and sizes;
 * without l it does not exist, without r NO [NOPERM]). GETQUOTA names only the session's
 * own root: another account's root is NONEXISTENT, as Dovecot answers a user who is no
 * administrator. */
#include "imap/imap_acl.h"
#include "imap/imap_commands.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

/* A GETQUOTAROOT or GETQUOTA between its read and its answer. */
struct cmd_quota_req {
	char *tag;
	char *mailbox;     /* GETQUOTAROOT: UTF-8 name; NULL for GETQUOTA */
	char *client_name; /* GETQUOTAROOT: the name as the client gave it (UTF-8) */
	char *root;        /* the quota root's name: "" own, the owner's address shared */
	uint64_t owner;    /* the account whose quota it is */
	struct imap_session *s;
	int mailbox_r; /* store_mailbox_exists(): 1, 0 no such mailbox, -1 error */
	int usage_r;   /* store_account_limits(): 1, 0 no such account, -1 error */
	struct store_account_limits l;
};

static void cmd_quota_read(void *ctx)
{
	struct cmd_quota_req *q = ctx;
	struct store *store = q->s->server->store;
	q->mailbox_r = 1;
	if (q->mailbox != NULL)
		q->mailbox_r = store_mailbox_exists(store, q->owner, q->mailbox);
	q->usage_r = store_account_limits(store, q->owner, &q->l);
}

/* Does the account have a quota root (a limit of either kind)? */
static bool cmd_quota_root(const struct store_account_limits *l)
{
	return l->quota > 0 || l->message_limit > 0;
}

/* "* QUOTA "" (STORAGE used limit MESSAGE count limit)" for the account's root: the
 * resources that have a limit. */
static void cmd_quota_send(struct imap_session *s, const char *root,
                           const struct store_account_limits *l)
{
	char storage[64] = "", message[64] = "";
	if (l->quota > 0)
		snprintf(storage, sizeof(storage), "STORAGE %" PRIu64 " %" PRIu64,
		         l->used / 1024 + (l->used % 1024 != 0), l->quota / 1024);
	if (l->message_limit > 0)
		snprintf(message, sizeof(message), "%sMESSAGE %" PRIu64 " %" PRIu64,
		         l->quota > 0 ? " " : "", l->messages, l->message_limit);
	struct buf b;
	buf_init(&b, 2 * STORE_MAILBOX_NAME_MAX + 16);
	imap_quote(&b, root);
	imap_send(s, "* QUOTA %s (%s%s)", buf_cstr(&b), storage, message);
	buf_free(&b);
}

static void cmd_quota_req_free(struct cmd_quota_req *q)
{
	free(q->tag);
	free(q->mailbox);
	free(q->client_name);
	free(q->root);
	free(q);
}

static void cmd_getquotaroot_done(struct imap_session *s, void *ctx)
{
	struct cmd_quota_req *q = ctx;
	if (s->closed) {
		cmd_quota_req_free(q);
		return;
	}
	if (q->mailbox_r == 0)
		imap_tagged(s, q->tag, "NO", "[NONEXISTENT] Mailbox does not exist");
	else if (q->mailbox_r < 0 || q->usage_r != 1)
		imap_tagged(s, q->tag, "NO", "[UNAVAILABLE] Cannot read the quota");
	else {
		struct buf b;
		buf_init(&b, 18 * STORE_MAILBOX_NAME_MAX + 64);
		cmd_status_mailbox_name(s, &b, q->client_name);
		if (cmd_quota_root(&q->l) && buf_puts(&b, " ") == 0)
			imap_quote(&b, q->root);
		imap_send(s, "* QUOTAROOT %s", buf_cstr(&b));
		buf_free(&b);
		if (cmd_quota_root(&q->l))
			cmd_quota_send(s, q->root, &q->l);
		imap_tagged(s, q->tag, "OK", "GETQUOTAROOT completed");
	}
	cmd_quota_req_free(q);
}

static void cmd_getquota_done(struct imap_session *s, void *ctx)
{
	struct cmd_quota_req *q = ctx;
	if (s->closed) {
		cmd_quota_req_free(q);
		return;
	}
	if (q->usage_r < 0)
		imap_tagged(s, q->tag, "NO", "[UNAVAILABLE] Cannot read the quota");
	else if (q->usage_r == 0 || !cmd_quota_root(&q->l))
		imap_tagged(s, q->tag, "NO", "[NONEXISTENT] No such quota root");
	else {
		cmd_quota_send(s, "", &q->l);
		imap_tagged(s, q->tag, "OK", "GETQUOTA completed");
	}
	cmd_quota_req_free(q);
}

void cmd_getquotaroot(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const char *raw;
	if (imap_parser_arg_count(cmd->args) != 1 || !imap_commands_astring(&cmd->args[0], &raw)) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: GETQUOTAROOT mailbox");
		return;
	}
	const char *name = imap_commands_mailbox_name(s, raw);
	if (name == NULL || store_mailbox_name_valid(name) != 1) {
		imap_tagged(s, cmd->tag, "NO", "[NONEXISTENT] No such mailbox (invalid name)");
		return;
	}
	struct imap_acl_mbox mb;
	int r = imap_acl_resolve(s, name, &mb);
	if (r <= 0) {
		if (r == 0)
			imap_tagged(s, cmd->tag, "NO", "[NONEXISTENT] Mailbox does not exist");
		else
			imap_tagged(s, cmd->tag, "NO", "[UNAVAILABLE] Cannot read the quota");
		return;
	}
	if ((mb.rights & STORE_ACL_READ) == 0) {
		imap_acl_deny(s, cmd->tag, STORE_ACL_READ);
		return;
	}
	struct cmd_quota_req *q = xcalloc(1, sizeof(*q));
	q->s = s;
	q->tag = xstrdup(cmd->tag);
	q->mailbox = xstrdup(mb.name);
	q->client_name = xstrdup(name);
	q->root = xstrdup(mb.shared ? mb.owner_address : "");
	q->owner = mb.owner;
	(void)imap_session_read(s, cmd_quota_read, cmd_getquotaroot_done, q);
}

void cmd_getquota(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const char *root;
	if (imap_parser_arg_count(cmd->args) != 1 || !imap_commands_astring(&cmd->args[0], &root)) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: GETQUOTA quota-root");
		return;
	}
	if (root[0] != '\0' || cmd->args[0].type == IMAP_ARG_NIL) {
		imap_tagged(s, cmd->tag, "NO", "[NONEXISTENT] No such quota root");
		return;
	}
	struct cmd_quota_req *q = xcalloc(1, sizeof(*q));
	q->s = s;
	q->tag = xstrdup(cmd->tag);
	q->owner = s->account_id;
	(void)imap_session_read(s, cmd_quota_read, cmd_getquota_done, q);
}

void cmd_setquota(struct imap_cmd *cmd)
{
	/* RFC 9208 §4.1.3: only a server advertising QUOTASET takes SETQUOTA; limits here are
	 * the administrator's (posthorn user quota). */
	imap_tagged(cmd->s, cmd->tag, "NO", "[NOPERM] Quota limits are set by the administrator");
}
