/* CREATE (with CREATE-SPECIAL-USE, RFC 6154 §3), DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE
 * (RFC 9051 §6.3.4-8). Each is one store_mailbox_change() on the writer thread: the session
 * pauses its input until the commit, then answers with the response codes of RFC 5530.
 * DELETE and RENAME of the session's own selected mailbox are followed here; other
 * sessions learn about them through their watches. */
#include "imap/imap_commands.h"
#include "imap/imap_acl.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

struct mailbox_job {
	struct store_mailbox_op op; /* its name/new_name point at the copies below */
	char *name, *new_name;
	/* SUBSCRIBE's existence check before the job (subscribe_read) */
	struct imap_session *s;
	char *tag;
	int exists_r;
};

static const char *mailbox_verb(enum store_mailbox_action action)
{
	switch (action) {
	case STORE_MAILBOX_CREATE:
		return "CREATE";
	case STORE_MAILBOX_DELETE:
		return "DELETE";
	case STORE_MAILBOX_RENAME:
		return "RENAME";
	case STORE_MAILBOX_SUBSCRIBE:
		return "SUBSCRIBE";
	default:
		return "UNSUBSCRIBE";
	}
}

/* RFC 5530 response code for a STORE_ERROR_* string; a failure of the store itself (the
 * database down) is temporary: UNAVAILABLE. */
static const char *mailbox_code(const char *error)
{
	if (error == NULL)
		return "UNAVAILABLE";
	if (strcmp(error, STORE_ERROR_NO_MAILBOX) == 0)
		return "NONEXISTENT";
	if (strcmp(error, STORE_ERROR_EXISTS) == 0)
		return "ALREADYEXISTS";
	if (strcmp(error, STORE_ERROR_BAD_NAME) == 0 || strcmp(error, STORE_ERROR_INBOX) == 0 ||
	    strcmp(error, STORE_ERROR_INFERIOR) == 0)
		return "CANNOT";
	if (strcmp(error, STORE_ERROR_LIMIT) == 0)
		return "LIMIT";
	if (strcmp(error, STORE_ERROR_OVERQUOTA) == 0)
		return "OVERQUOTA";
	return "UNAVAILABLE";
}

/* Length of a first level spelled INBOX in any case (5), else 0. */
static size_t mailbox_inbox_len(const char *name)
{
	return strncasecmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == '/') ? 5 : 0;
}

/* When mailbox is name or lies below it, what follows name in it ("" or "/..."); else
 * NULL. INBOX as the first level compares case-insensitively. */
static const char *mailbox_below(const char *mailbox, const char *name)
{
	size_t ia = mailbox_inbox_len(mailbox), ib = mailbox_inbox_len(name);
	size_t len = strlen(name);
	if (ia != ib || strncmp(mailbox + ia, name + ib, len - ib) != 0)
		return NULL;
	const char *rest = mailbox + len;
	return *rest == '\0' || *rest == '/' ? rest : NULL;
}

/* The session's own selected mailbox after a successful DELETE or RENAME. */
static void mailbox_follow(struct imap_session *s, const struct mailbox_job *job)
{
	if (s->state != IMAP_STATE_SELECTED || s->mailbox == NULL ||
	    job->op.account_id != s->mailbox_owner)
		return;
	const char *rest = mailbox_below(s->mailbox, job->name);
	if (rest == NULL)
		return;
	if (job->op.action == STORE_MAILBOX_DELETE && *rest == '\0') {
		/* Its messages are gone with it: leave the selected state, as a CLOSE would. */
		imap_session_unselect(s);
		imap_send(s, "* OK [CLOSED] The selected mailbox was deleted");
		return;
	}
	if (job->op.action != STORE_MAILBOX_RENAME ||
	    (mailbox_inbox_len(job->name) == 5 && job->name[5] == '\0'))
		return; /* renaming INBOX leaves INBOX (emptied) in place: sync reports it */
	/* Renamed with UIDVALIDITY, UIDs and MODSEQs kept: the view stays valid under the new
	 * name; watch that name and look for changes at the next chance. */
	size_t nl = strlen(job->new_name), rl = strlen(rest);
	char *renamed = xmalloc(nl + rl + 1);
	memcpy(renamed, job->new_name, nl);
	memcpy(renamed + nl, rest, rl + 1);
	store_unwatch(&s->watch);
	free(s->mailbox);
	s->mailbox = renamed;
	imap_session_watch(s);
	atomic_store(&s->changed, true);
}

static void mailbox_done(struct imap_session *s)
{
	struct mailbox_job *job = s->op;
	s->op = NULL;
	const char *verb = mailbox_verb(job->op.action);
	if (!s->closed && job->op.result == 0) {
		mailbox_follow(s, job);
		IMAP_LOG(s, "event=%s mailbox=%s%s%s result=ok", verb, job->name,
		         job->new_name != NULL ? " new=" : "",
		         job->new_name != NULL ? job->new_name : "");
		if (job->op.action == STORE_MAILBOX_CREATE) /* RFC 8474 §4.1 */
			imap_tagged(s, s->op_tag, "OK", "[MAILBOXID (%s)] %s completed",
			            job->op.mailboxid, verb);
		else
			imap_tagged(s, s->op_tag, "OK", "%s completed", verb);
	} else if (!s->closed) {
		const char *error = job->op.error != NULL ? job->op.error : STORE_ERROR_FAILED;
		imap_tagged(s, s->op_tag, "NO", "[%s] %s failed: %s", mailbox_code(error), verb,
		            error);
	}
	free(job->name);
	free(job->new_name);
	free(job);
}

static void mailbox_store_cb(struct store_mailbox_op *op, void *ctx)
{
	(void)op;
	imap_session_op_finished(ctx); /* writer thread: bounce to the loop */
}

static struct mailbox_job *mailbox_job_new(struct imap_session *s, enum store_mailbox_action action,
                                           const char *name, const char *new_name, unsigned special)
{
	struct mailbox_job *job = xcalloc(1, sizeof(*job));
	job->name = xstrdup(name);
	job->new_name = new_name != NULL ? xstrdup(new_name) : NULL;
	job->op = (struct store_mailbox_op){
	    .action = action,
	    .account_id = s->account_id,
	    .name = job->name,
	    .new_name = job->new_name,
	    .special_use = special,
	};
	return job;
}

static void mailbox_job_start(struct imap_session *s, const char *tag, struct mailbox_job *job)
{
	/* Pause first: the callback may run before store_mailbox_change() returns. */
	imap_session_op_start(s, tag, mailbox_done, job);
	store_mailbox_change(s->server->store, &job->op, mailbox_store_cb, s);
}

/* The shared namespace (RFC 4314 §4): the operation runs in the owner's account. A new name
 * (CREATE, RENAME's target) needs k on its parent (the owner's top level has none to grant
 * it); an existing mailbox (DELETE, RENAME's source) x on itself, and one the session may
 * not look up is a missing one. */

/* The owner and the owner's name of new shared name: 1, else answered (0). */
static int mailbox_shared_new(struct imap_cmd *cmd, const char *name, uint64_t *owner_r,
                              const char **store_name_r)
{
	struct imap_session *s = cmd->s;
	struct imap_acl_mbox mb;
	const char *last = strrchr(name, '/');
	int r = last == NULL ? 0
	                     : imap_acl_resolve(s, arena_strndup(s->cmd, name, (size_t)(last - name)),
	                                        &mb);
	if (r < 0) {
		imap_tagged(s, cmd->tag, "NO", "[UNAVAILABLE] Cannot check the rights");
		return 0;
	}
	if (r == 0 || (mb.rights & STORE_ACL_CREATE) == 0) {
		imap_acl_deny(s, cmd->tag, STORE_ACL_CREATE);
		return 0;
	}
	size_t pl = strlen(mb.name), ll = strlen(last);
	char *full = arena_alloc(s->cmd, pl + ll + 1);
	memcpy(full, mb.name, pl);
	memcpy(full + pl, last, ll + 1);
	*owner_r = mb.owner;
	*store_name_r = full;
	return 1;
}

/* An existing shared mailbox the session may delete (x): 1 with *mb_r, else answered (0). */
static int mailbox_shared_old(struct imap_cmd *cmd, enum store_mailbox_action action,
                              const char *name, struct imap_acl_mbox *mb_r)
{
	struct imap_session *s = cmd->s;
	int r = imap_acl_resolve(s, name, mb_r);
	if (r < 0)
		imap_tagged(s, cmd->tag, "NO", "[UNAVAILABLE] Cannot check the rights");
	else if (r == 0)
		imap_tagged(s, cmd->tag, "NO", "[NONEXISTENT] %s failed: %s", mailbox_verb(action),
		            STORE_ERROR_NO_MAILBOX);
	else if ((mb_r->rights & STORE_ACL_DELETE) == 0)
		imap_acl_deny(s, cmd->tag, STORE_ACL_DELETE);
	return r == 1 && (mb_r->rights & STORE_ACL_DELETE) != 0;
}

/* CREATE, DELETE or RENAME naming the shared namespace (true: answered or started). */
static bool mailbox_shared(struct imap_cmd *cmd, enum store_mailbox_action action,
                           const char *name, const char *new_name, unsigned special)
{
	struct imap_session *s = cmd->s;
	struct imap_acl_mbox mb = {0};
	uint64_t owner = 0;
	const char *store_name = NULL, *store_new = NULL;
	if (action == STORE_MAILBOX_RENAME &&
	    (!imap_acl_is_shared(name) || !imap_acl_is_shared(new_name))) {
		imap_tagged(s, cmd->tag, "NO",
		            "[CANNOT] A mailbox cannot move between accounts (RENAME)");
		return true;
	}
	if (action == STORE_MAILBOX_CREATE) {
		if (!mailbox_shared_new(cmd, name, &owner, &store_name))
			return true;
	} else {
		if (!mailbox_shared_old(cmd, action, name, &mb))
			return true;
		owner = mb.owner;
		store_name = mb.name;
	}
	if (action == STORE_MAILBOX_RENAME) {
		if (!mailbox_shared_new(cmd, new_name, &owner, &store_new))
			return true;
		if (owner != mb.owner) {
			imap_tagged(s, cmd->tag, "NO",
			            "[CANNOT] A mailbox cannot move between accounts (RENAME)");
			return true;
		}
	}
	struct mailbox_job *job = mailbox_job_new(s, action, store_name, store_new, special);
	job->op.account_id = owner;
	mailbox_job_start(s, cmd->tag, job);
	return true;
}

static void mailbox_start(struct imap_cmd *cmd, enum store_mailbox_action action, const char *name,
                          const char *new_name, unsigned special)
{
	if ((action == STORE_MAILBOX_CREATE || action == STORE_MAILBOX_DELETE ||
	     action == STORE_MAILBOX_RENAME) &&
	    (imap_acl_is_shared(name) || (new_name != NULL && imap_acl_is_shared(new_name))) &&
	    mailbox_shared(cmd, action, name, new_name, special))
		return;
	mailbox_job_start(cmd->s, cmd->tag,
	                  mailbox_job_new(cmd->s, action, name, new_name, special));
}

/* The mailbox argument as UTF-8, valid for the store; NULL after answering NO. */
static const char *mailbox_arg(struct imap_cmd *cmd, const char *raw, bool create)
{
	const char *name = imap_commands_mailbox_name(cmd->s, raw);
	if (name != NULL && create) {
		/* RFC 9051 §6.3.4: a trailing delimiter only declares the intent to create
		 * names below; we need no such declaration. */
		size_t len = strlen(name);
		if (len > 1 && name[len - 1] == '/')
			name = arena_strndup(cmd->s->cmd, name, len - 1);
	}
	if (name == NULL || store_mailbox_name_valid(name) != 1) {
		imap_tagged(cmd->s, cmd->tag, "NO", "[CANNOT] Invalid mailbox name");
		return NULL;
	}
	return name;
}

/* RFC 6154 §3: "(USE (\Drafts ...))". 1 ok (*special_r), 0 BAD syntax, -1 an attribute we
 * cannot give (NO [USEATTR]). */
static int mailbox_create_params(const struct imap_arg *list, unsigned *special_r)
{
	static const struct {
		const char *name;
		unsigned bit;
	} uses[] = {
	    {"\\Archive", STORE_SPECIAL_ARCHIVE}, {"\\Drafts", STORE_SPECIAL_DRAFTS},
	    {"\\Junk", STORE_SPECIAL_JUNK},       {"\\Sent", STORE_SPECIAL_SENT},
	    {"\\Trash", STORE_SPECIAL_TRASH},
	};
	bool refused = false;
	*special_r = 0;
	for (const struct imap_arg *a = list; a->type != IMAP_ARG_EOL; a += 2) {
		if (a->type != IMAP_ARG_ATOM || strcasecmp(a->str, "USE") != 0 ||
		    a[1].type != IMAP_ARG_LIST)
			return 0;
		for (const struct imap_arg *u = a[1].list; u->type != IMAP_ARG_EOL; u++) {
			if (u->type != IMAP_ARG_ATOM || u->str[0] != '\\')
				return 0;
			unsigned bit = 0;
			for (size_t i = 0; i < sizeof(uses) / sizeof(uses[0]); i++)
				if (strcasecmp(u->str, uses[i].name) == 0)
					bit = uses[i].bit;
			/* \All and \Flagged are virtual views; anything else is unknown. */
			refused |= bit == 0;
			*special_r |= bit;
		}
	}
	return refused ? -1 : 1;
}

void cmd_create(struct imap_cmd *cmd)
{
	const char *raw, *name;
	unsigned special = 0;
	size_t argc = imap_parser_arg_count(cmd->args);
	int p = 1;
	if ((argc != 1 && argc != 2) || !imap_commands_astring(&cmd->args[0], &raw) ||
	    (argc == 2 && (cmd->args[1].type != IMAP_ARG_LIST ||
	                   (p = mailbox_create_params(cmd->args[1].list, &special)) == 0))) {
		imap_tagged(cmd->s, cmd->tag, "BAD", "Syntax: CREATE mailbox [(USE (\\attr ...))]");
		return;
	}
	if (p < 0) {
		imap_tagged(cmd->s, cmd->tag, "NO",
		            "[USEATTR] Only \\Archive \\Drafts \\Junk \\Sent \\Trash can be given");
		return;
	}
	if ((name = mailbox_arg(cmd, raw, true)) != NULL)
		mailbox_start(cmd, STORE_MAILBOX_CREATE, name, NULL, special);
}

void cmd_delete(struct imap_cmd *cmd)
{
	const char *raw, *name;
	if (imap_parser_arg_count(cmd->args) != 1 || !imap_commands_astring(&cmd->args[0], &raw)) {
		imap_tagged(cmd->s, cmd->tag, "BAD", "Syntax: DELETE mailbox");
		return;
	}
	if ((name = mailbox_arg(cmd, raw, false)) != NULL)
		mailbox_start(cmd, STORE_MAILBOX_DELETE, name, NULL, 0);
}

void cmd_rename(struct imap_cmd *cmd)
{
	const char *raw, *raw_new, *name, *new_name;
	if (imap_parser_arg_count(cmd->args) != 2 || !imap_commands_astring(&cmd->args[0], &raw) ||
	    !imap_commands_astring(&cmd->args[1], &raw_new)) {
		imap_tagged(cmd->s, cmd->tag, "BAD", "Syntax: RENAME mailbox new-name");
		return;
	}
	if ((name = mailbox_arg(cmd, raw, false)) != NULL &&
	    (new_name = mailbox_arg(cmd, raw_new, false)) != NULL)
		mailbox_start(cmd, STORE_MAILBOX_RENAME, name, new_name, 0);
}

/* SUBSCRIBE's check that the mailbox exists (imap_session_read). */
static void subscribe_read(void *ctx)
{
	struct mailbox_job *job = ctx;
	job->exists_r = store_mailbox_exists(job->s->server->store, job->s->account_id, job->name);
}

static void subscribe_done(struct imap_session *s, void *ctx)
{
	struct mailbox_job *job = ctx;
	char *tag = job->tag;
	job->tag = NULL;
	if (s->closed || job->exists_r == 0) {
		if (!s->closed)
			imap_tagged(s, tag, "NO", "[NONEXISTENT] Mailbox does not exist");
		free(job->name);
		free(job);
	} else {
		mailbox_job_start(s, tag, job);
	}
	free(tag);
}

void cmd_subscribe(struct imap_cmd *cmd)
{
	bool sub = strcmp(cmd->name, "SUBSCRIBE") == 0;
	const char *raw, *name;
	if (imap_parser_arg_count(cmd->args) != 1 || !imap_commands_astring(&cmd->args[0], &raw)) {
		imap_tagged(cmd->s, cmd->tag, "BAD", "Syntax: %s mailbox", cmd->name);
		return;
	}
	if ((name = mailbox_arg(cmd, raw, false)) == NULL)
		return;
	if (!sub) {
		mailbox_start(cmd, STORE_MAILBOX_UNSUBSCRIBE, name, NULL, 0);
		return;
	}
	/* RFC 9051 §6.3.7 lets a server check that the mailbox exists; Dovecot does, and
	 * clients (IMAPClient's live test) expect it. A subscription outlives its mailbox. */
	struct mailbox_job *job = mailbox_job_new(cmd->s, STORE_MAILBOX_SUBSCRIBE, name, NULL, 0);
	struct imap_acl_mbox mb;
	if (imap_acl_is_shared(name)) {
		/* Another account's mailbox: it exists when the session may look it up. The
		 * subscription is the session's own, under the name it sees. */
		int r = imap_acl_resolve(cmd->s, name, &mb);
		if (r <= 0) {
			imap_tagged(cmd->s, cmd->tag, "NO", "%s",
			            r == 0 ? "[NONEXISTENT] Mailbox does not exist"
			                   : "[UNAVAILABLE] Cannot check the mailbox");
			free(job->name);
			free(job);
			return;
		}
		mailbox_job_start(cmd->s, cmd->tag, job);
		return;
	}
	job->s = cmd->s;
	job->tag = xstrdup(cmd->tag);
	(void)imap_session_read(cmd->s, subscribe_read, subscribe_done, job);
}
