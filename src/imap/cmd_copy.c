/* COPY, MOVE and their UID forms (RFC 9051 §6.4.7-8, RFC 6851) through store_copy() off the
 * loop. COPY answers OK [COPYUID ...] (RFC 4315 §3); MOVE sends "* OK [COPYUID ...]", then
 * an EXPUNGE for each moved message, then its tagged OK (RFC 6851 §4.3). A missing target
 * gives NO [TRYCREATE] (RFC 9051 §6.4.7), a full quota NO [OVERQUOTA] (RFC 5530). */
#include "imap/imap_commands.h"
#include "imap/imap_acl.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

/* Longest COPYUID set text: beyond it the response code is left out (it is optional, and a
 * client then finds the copies by other means). */
#define CMD_COPY_UIDSET_MAX (256 * 1024)

struct cmd_copy_op {
	struct store_copy op;
	char *mailbox, *target;
	uint32_t *uids;
	bool move;
	char *name;
};

static void cmd_copy_cb(struct store_copy *op, void *ctx)
{
	(void)op;
	imap_session_op_finished(ctx);
}

/* uids (ascending) as an RFC 9051 sequence set "1:3,7". 0 ok, -1 when too long. */
static int cmd_copy_uid_set(struct buf *b, const uint32_t *uids, size_t n)
{
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		size_t j = i;
		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		const char *sep = i == 0 ? "" : ",";
		if (j == i)
			r = buf_printf(b, "%s%u", sep, uids[i]);
		else
			r = buf_printf(b, "%s%u:%u", sep, uids[i], uids[j]);
		i = j;
	}
	return r;
}

/* "[COPYUID validity src dst] " or "" (nothing copied, or too long) into b. */
static void cmd_copy_code(struct buf *b, const struct store_copy *op)
{
	if (op->count == 0)
		return;
	struct buf src, dst;
	buf_init(&src, CMD_COPY_UIDSET_MAX);
	buf_init(&dst, CMD_COPY_UIDSET_MAX);
	if (cmd_copy_uid_set(&src, op->source_uids, op->count) == 0 &&
	    cmd_copy_uid_set(&dst, op->target_uids, op->count) == 0 &&
	    buf_printf(b, "[COPYUID %u %s %s] ", op->uidvalidity, buf_cstr(&src), buf_cstr(&dst)) !=
	        0)
		buf_reset(b);
	buf_free(&src);
	buf_free(&dst);
}

static void cmd_copy_fail(struct imap_session *s, const struct cmd_copy_op *o)
{
	const char *e = o->op.error;
	if (strcmp(e, STORE_ERROR_NO_TARGET) == 0)
		imap_tagged(s, s->op_tag, "NO", "[TRYCREATE] The target mailbox does not exist");
	else if (strcmp(e, STORE_ERROR_OVERQUOTA) == 0)
		imap_tagged(s, s->op_tag, "NO", "[OVERQUOTA] Quota exceeded");
	else if (strcmp(e, STORE_ERROR_NO_MAILBOX) == 0)
		imap_tagged(s, s->op_tag, "NO", "[NONEXISTENT] The mailbox no longer exists");
	else if (strcmp(e, STORE_ERROR_LIMIT) == 0)
		imap_tagged(s, s->op_tag, "NO", "[LIMIT] The target mailbox is full");
	else {
		IMAP_LOG(s, "event=copy result=fail error=\"%s\"", e);
		imap_tagged(s, s->op_tag, "NO", "[UNAVAILABLE] %s failed", o->name);
	}
}

static void cmd_copy_done(struct imap_session *s)
{
	struct cmd_copy_op *o = s->op;
	s->op = NULL;
	if (!s->closed && o->op.result != 0)
		cmd_copy_fail(s, o);
	if (!s->closed && o->op.result == 0) {
		struct buf code;
		buf_init(&code, 2 * CMD_COPY_UIDSET_MAX + 64);
		cmd_copy_code(&code, &o->op);
		if (o->move) {
			if (code.len > 0)
				imap_send(s, "* OK %sMoved", buf_cstr(&code));
			/* Descending UIDs are descending sequence numbers: none shifts (or one
			 * VANISHED once QRESYNC is enabled). */
			uint32_t *u = o->op.source_uids;
			for (size_t i = 0, k = o->op.count; i + 1 < k; i++, k--) {
				uint32_t t = u[i];
				u[i] = u[k - 1];
				u[k - 1] = t;
			}
			(void)imap_session_view_expunge(s, u, o->op.count);
			buf_reset(&code);
		}
		IMAP_LOG(s, "event=%s mailbox=%s target=%s count=%zu", o->move ? "move" : "copy",
		         o->mailbox, o->target, o->op.count);
		/* A copy into the selected mailbox shows as EXISTS before the answer (whose code
		 * may be longer than imap_tagged() takes). */
		imap_session_sync_ok(s, true, s->op_tag, "%s%s completed", buf_cstr(&code),
		                     o->name);
		buf_free(&code);
	}
	free(o->op.source_uids);
	free(o->op.target_uids);
	free(o->mailbox);
	free(o->target);
	free(o->uids);
	free(o->name);
	free(o);
}

void cmd_copy(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const struct imap_arg *a = cmd->args;
	bool move = strcmp(cmd->name, "MOVE") == 0 || strcmp(cmd->name, "UID MOVE") == 0;
	const char *raw;
	if (imap_parser_arg_count(a) != 2 || !imap_commands_astring(&a[1], &raw)) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: %s set mailbox", cmd->name);
		return;
	}
	const char *target = imap_commands_mailbox_name(s, raw);
	if (target == NULL || store_mailbox_name_valid(target) != 1) {
		imap_tagged(s, cmd->tag, "NO", "[CANNOT] Invalid mailbox name");
		return;
	}
	if (move && s->read_only) {
		imap_tagged(s, cmd->tag, "NO", "[READ-ONLY] The mailbox is read-only");
		return;
	}
	/* RFC 4314 §4: the target needs i; a move's source t and e. A shared target the
	 * session may not look up is answered as a missing one. */
	struct imap_acl_mbox mb;
	int r = imap_acl_resolve(s, target, &mb);
	if (r < 0) {
		imap_tagged(s, cmd->tag, "NO", "[UNAVAILABLE] Cannot check the target");
		return;
	}
	if (r == 0) {
		imap_tagged(s, cmd->tag, "NO", "[TRYCREATE] The target mailbox does not exist");
		return;
	}
	if ((mb.rights & STORE_ACL_INSERT) == 0) {
		imap_acl_deny(s, cmd->tag, STORE_ACL_INSERT);
		return;
	}
	unsigned need = STORE_ACL_DELMSG | STORE_ACL_EXPUNGE;
	if (move && (s->rights & need) != need) {
		imap_acl_deny(s, cmd->tag, need & ~s->rights);
		return;
	}
	uint32_t *uids;
	size_t count;
	if (cmd_store_set_uids(cmd, &a[0], &uids, &count) < 0)
		return;
	struct cmd_copy_op *o = xcalloc(1, sizeof(*o));
	o->mailbox = xstrdup(s->mailbox);
	o->target = xstrdup(mb.name);
	o->uids = uids;
	o->move = move;
	o->name = xstrdup(cmd->name);
	/* Even with nothing to copy the store is asked: it says whether the target exists. */
	o->op = (struct store_copy){
	    .account_id = s->mailbox_owner,
	    .target_account_id = mb.owner,
	    .mailbox = o->mailbox,
	    .target = o->target,
	    .uids = o->uids,
	    .uid_count = count,
	    .move = move,
	};
	imap_session_op_start(s, cmd->tag, cmd_copy_done, o);
	store_copy(s->server->store, &o->op, cmd_copy_cb, s);
}
