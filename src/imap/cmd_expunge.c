/* EXPUNGE (RFC 9051 §6.4.3) and UID EXPUNGE (RFC 4315 §2.1): remove the messages that have
 * \Deleted (only those of the UID set for UID EXPUNGE) through store_expunge() off the loop,
 * then report each as an untagged EXPUNGE, from the highest sequence number down so that
 * every number is right when the client reads it. */
#include "imap/imap_commands.h"
#include "imap/imap_acl.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

struct cmd_expunge_op {
	struct store_expunge op;
	char *mailbox;
	uint32_t *uids; /* ascending */
	size_t count;
	char *name;
};

static void cmd_expunge_cb(struct store_expunge *op, void *ctx)
{
	(void)op;
	imap_session_op_finished(ctx);
}

/* QRESYNC: the tagged OK with [HIGHESTMODSEQ] after the sync. ctx is the command's name
 * (malloc'd). */
static void cmd_expunge_answer(struct imap_session *s, void *ctx)
{
	char *name = ctx;
	if (!s->closed)
		imap_tagged(s, s->op_tag, "OK", "[HIGHESTMODSEQ %llu] %s completed",
		            (unsigned long long)s->highestmodseq, name);
	free(name);
}

static void cmd_expunge_done(struct imap_session *s)
{
	struct cmd_expunge_op *o = s->op;
	s->op = NULL;
	if (!s->closed) {
		if (o->op.result == 0) {
			/* Every UID asked for is gone now (removed by us or, a moment earlier, by
			 * someone else). Descending, so no number shifts under the client (or one
			 * VANISHED once QRESYNC is enabled). */
			for (size_t i = 0, k = o->count; i + 1 < k; i++, k--) {
				uint32_t t = o->uids[i];
				o->uids[i] = o->uids[k - 1];
				o->uids[k - 1] = t;
			}
			(void)imap_session_view_expunge(s, o->uids, o->count);
			IMAP_LOG(s, "event=expunge mailbox=%s expunged=%u", s->mailbox,
			         o->op.expunged);
			if (s->qresync) {
				/* RFC 7162 §3.2.7: the tagged OK tells the HIGHESTMODSEQ after the
				 * expunge, so the sync's value is what it says. */
				imap_session_sync(s, true, cmd_expunge_answer, o->name);
				o->name = NULL;
			} else {
				imap_session_sync_ok(s, true, s->op_tag, "%s completed", o->name);
			}
		} else if (strcmp(o->op.error, STORE_EXPUNGE_NO_MAILBOX) == 0) {
			imap_tagged(s, s->op_tag, "NO",
			            "[NONEXISTENT] The mailbox no longer exists");
		} else {
			IMAP_LOG(s, "event=expunge result=fail error=\"%s\"", o->op.error);
			imap_tagged(s, s->op_tag, "NO", "[UNAVAILABLE] %s failed", o->name);
		}
	}
	free(o->mailbox);
	free(o->uids);
	free(o->name);
	free(o);
}

/* EXPUNGE after the view is up to date: what the command needs from its arguments. */
struct cmd_expunge_req {
	char *tag, *name;
	char *set; /* UID EXPUNGE's set, else NULL */
	bool uid;
};

static void cmd_expunge_req_free(struct cmd_expunge_req *q)
{
	free(q->tag);
	free(q->name);
	free(q->set);
	free(q);
}

static void cmd_expunge_synced(struct imap_session *s, void *ctx)
{
	struct cmd_expunge_req *q = ctx;
	if (s->closed) {
		cmd_expunge_req_free(q);
		return;
	}
	struct imap_arg arg = {.type = IMAP_ARG_ATOM, .str = q->set};
	struct imap_cmd c = {.s = s, .tag = q->tag, .name = q->name, .args = &arg, .uid = q->uid};
	struct imap_cmd *cmd = &c;
	uint32_t *uids = NULL;
	size_t count = 0;
	if (cmd->uid) {
		if (cmd_store_set_uids(cmd, &arg, &uids, &count) < 0) {
			cmd_expunge_req_free(q);
			return;
		}
	} else if (s->count > 0) {
		uids = xmalloc((size_t)s->count * sizeof(*uids));
		for (uint32_t i = 0; i < s->count; i++)
			uids[count++] = s->msgs[i].uid;
	}
	size_t kept = 0;
	for (size_t i = 0; i < count; i++) {
		long idx = cmd_store_view_find(s, uids[i]);
		if (idx >= 0 && (s->msgs[idx].flags & STORE_FLAG_DELETED))
			uids[kept++] = uids[i];
	}
	if (kept == 0) {
		free(uids);
		imap_tagged(s, cmd->tag, "OK", "%s completed", cmd->name);
		cmd_expunge_req_free(q);
		return;
	}
	struct cmd_expunge_op *o = xcalloc(1, sizeof(*o));
	o->mailbox = xstrdup(s->mailbox);
	o->uids = uids;
	o->count = kept;
	o->name = xstrdup(cmd->name);
	o->op = (struct store_expunge){
	    .account_id = s->mailbox_owner,
	    .mailbox = o->mailbox,
	    .uids = o->uids,
	    .uid_count = kept,
	};
	imap_session_op_start(s, cmd->tag, cmd_expunge_done, o);
	cmd_expunge_req_free(q);
	store_expunge(s->server->store, &o->op, cmd_expunge_cb, s);
}

void cmd_expunge(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	size_t n = imap_parser_arg_count(cmd->args);
	if (n != (cmd->uid ? 1u : 0u)) {
		imap_tagged(s, cmd->tag, "BAD",
		            cmd->uid ? "Syntax: UID EXPUNGE set" : "Syntax: EXPUNGE");
		return;
	}
	if (s->read_only) {
		imap_tagged(s, cmd->tag, "NO", "[READ-ONLY] The mailbox is read-only");
		return;
	}
	if ((s->rights & STORE_ACL_EXPUNGE) == 0) { /* RFC 4314 §4 */
		imap_acl_deny(s, cmd->tag, STORE_ACL_EXPUNGE);
		return;
	}
	if (cmd->uid && cmd->args[0].type != IMAP_ARG_ATOM) {
		imap_tagged(s, cmd->tag, "BAD", "Invalid sequence set");
		return;
	}
	struct cmd_expunge_req *q = xcalloc(1, sizeof(*q));
	q->tag = xstrdup(cmd->tag);
	q->name = xstrdup(cmd->name);
	q->set = cmd->uid ? xstrdup(cmd->args[0].str) : NULL;
	q->uid = cmd->uid;
	/* Flags set by other sessions count too: bring the view up to date first. */
	imap_session_sync(s, true, cmd_expunge_synced, q);
}
