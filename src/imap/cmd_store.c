/* STORE and UID STORE (RFC 9051 §6.4.6): FLAGS, +FLAGS and -FLAGS with .SILENT, system flags
 * and keywords, through store_flags() off the loop; untagged FETCH (FLAGS ...) for every
 * message of the set unless .SILENT. The UNCHANGEDSINCE modifier (RFC 7162 §3.1.3) is
 * checked by the store writer in the same transaction as the change, so no other session
 * can slip in between; the messages that failed it go to OK [MODIFIED set]. Also the
 * helpers the other message commands share: flag parsing and text, and resolving a
 * sequence set against the session's view. */
#include "imap/imap_commands.h"
#include "imap/imap_acl.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "imap/imap_seqset.h"
#include "core/banned.h"

static const struct {
	const char *name;
	unsigned bit;
} cmd_store_system_flags[] = {
    {"\\Seen", STORE_FLAG_SEEN},       {"\\Answered", STORE_FLAG_ANSWERED},
    {"\\Flagged", STORE_FLAG_FLAGGED}, {"\\Deleted", STORE_FLAG_DELETED},
    {"\\Draft", STORE_FLAG_DRAFT},
};
#define CMD_STORE_SYSTEM_FLAGS (sizeof(cmd_store_system_flags) / sizeof(cmd_store_system_flags[0]))

/* ---- shared helpers ---- */

int cmd_store_parse_flags(struct arena *arena, const struct imap_arg *args, unsigned *flags_r,
                          const char ***keywords_r, size_t *count_r)
{
	size_t n = imap_parser_arg_count(args);
	const char **kw = arena_alloc(arena, (n + 1) * sizeof(*kw));
	size_t count = 0;
	unsigned flags = 0;
	for (size_t i = 0; i < n; i++) {
		/* NIL is an atom like any other here (RFC 9051 §9 flag-keyword). */
		if (args[i].type != IMAP_ARG_ATOM && args[i].type != IMAP_ARG_NIL)
			return -1;
		const char *f = args[i].str;
		if (f[0] == '\\') {
			/* \Recent cannot be set by a client (RFC 3501 §2.3.2), and flag-extension
			 * names no flag this server knows. */
			size_t j = 0;
			while (j < CMD_STORE_SYSTEM_FLAGS &&
			       strcasecmp(f, cmd_store_system_flags[j].name) != 0)
				j++;
			if (j == CMD_STORE_SYSTEM_FLAGS)
				return -1;
			flags |= cmd_store_system_flags[j].bit;
			continue;
		}
		if (store_mailbox_keyword_valid(f) != 1)
			return -1;
		bool dup = false;
		for (size_t k = 0; k < count && !dup; k++)
			dup = strcasecmp(kw[k], f) == 0;
		if (!dup)
			kw[count++] = f;
	}
	kw[count] = NULL;
	*flags_r = flags;
	*keywords_r = kw;
	*count_r = count;
	return 0;
}

void cmd_store_flags_text(struct buf *b, unsigned flags, const char *keywords)
{
	int r = 0;
	const char *sep = "";
	for (size_t i = 0; i < CMD_STORE_SYSTEM_FLAGS; i++) {
		if (flags & cmd_store_system_flags[i].bit) {
			r |= buf_puts(b, sep);
			r |= buf_puts(b, cmd_store_system_flags[i].name);
			sep = " ";
		}
	}
	if (keywords != NULL && keywords[0] != '\0') {
		r |= buf_puts(b, sep);
		r |= buf_puts(b, keywords);
	}
	(void)r; /* callers size b for a flag list */
}

long cmd_store_view_find(const struct imap_session *s, uint32_t uid)
{
	long lo = 0, hi = (long)s->count - 1;
	while (lo <= hi) {
		long mid = lo + (hi - lo) / 2;
		if (s->msgs[mid].uid == uid)
			return mid;
		if (s->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

int cmd_store_set_uids(struct imap_cmd *cmd, const struct imap_arg *arg, uint32_t **uids_r,
                       size_t *count_r)
{
	struct imap_session *s = cmd->s;
	struct imap_seqset *set;
	const char *error;
	*uids_r = NULL;
	*count_r = 0;
	if (arg->type != IMAP_ARG_ATOM || imap_seqset_parse(s->cmd, arg->str, &set, &error) < 0) {
		imap_tagged(s, cmd->tag, "BAD", "Invalid sequence set");
		return -1;
	}
	if (!cmd->uid) {
		/* A sequence number the client cannot know is an error (RFC 9051 §9 seq-number:
		 * "*" is the last message, none when the mailbox is empty). */
		bool bad = (set->count > 0 && set->ranges[set->count - 1].hi > s->count) ||
		           (set->star && s->count == 0);
		if (bad) {
			imap_tagged(s, cmd->tag, "BAD", "Invalid sequence number");
			return -1;
		}
	}
	uint32_t star = cmd->uid ? (s->count > 0 ? s->msgs[s->count - 1].uid : 0) : s->count;
	uint32_t *uids = NULL;
	size_t n = 0;
	for (uint32_t i = 0; i < s->count; i++) {
		uint32_t key = cmd->uid ? s->msgs[i].uid : i + 1;
		if (imap_seqset_is_saved(set) ? !cmd_search_saved_contains(s, s->msgs[i].uid)
		                              : !imap_seqset_contains(set, key, star))
			continue;
		if (uids == NULL)
			uids = xmalloc((size_t)(s->count - i) * sizeof(*uids));
		uids[n++] = s->msgs[i].uid;
	}
	if (imap_session_message_limit(s, cmd->tag, cmd->uid, &n) < 0) {
		free(uids);
		return -1;
	}
	*uids_r = uids;
	*count_r = n;
	return 0;
}

/* ---- STORE ---- */

struct cmd_store_result {
	uint32_t uid;
	unsigned flags;
	char *keywords; /* malloc'd */
	uint64_t modseq;
	bool changed;
	bool modified; /* failed UNCHANGEDSINCE: left alone */
};

struct cmd_store_op {
	struct store_flags op;
	char *mailbox;
	uint32_t *uids; /* ascending (the view's order) */
	size_t count;
	char **keywords;
	size_t keyword_count;
	bool silent, uid;
	char *name;                       /* "STORE" or "UID STORE" */
	struct cmd_store_result *results; /* filled on the writer thread */
	size_t result_count, result_cap;
};

static void cmd_store_entry_cb(void *ctx, const struct store_flags_entry *e)
{
	struct cmd_store_op *o = ctx;
	if (o->result_count == o->result_cap) {
		o->result_cap = o->result_cap == 0 ? 16 : 2 * o->result_cap;
		o->results = xrealloc(o->results, o->result_cap * sizeof(*o->results));
	}
	o->results[o->result_count++] = (struct cmd_store_result){
	    .uid = e->uid,
	    .flags = e->flags,
	    .keywords = xstrdup(e->keywords != NULL ? e->keywords : ""),
	    .modseq = e->modseq,
	    .changed = e->changed,
	    .modified = e->modified,
	};
}

static void cmd_store_cb(struct store_flags *op, void *ctx)
{
	(void)op;
	imap_session_op_finished(ctx);
}

static void cmd_store_op_free(struct cmd_store_op *o)
{
	for (size_t i = 0; i < o->result_count; i++)
		free(o->results[i].keywords);
	free(o->results);
	for (size_t i = 0; i < o->keyword_count; i++)
		free(o->keywords[i]);
	free(o->keywords);
	free(o->uids);
	free(o->mailbox);
	free(o->name);
	free(o);
}

/* The untagged FETCH of view entry idx after a STORE: FLAGS unless .SILENT; once
 * CONDSTORE-aware, UID and MODSEQ too (RFC 7162 §3.1, §3.1.3: with .SILENT the MODSEQ
 * alone). */
static void cmd_store_fetch(struct imap_session *s, const struct cmd_store_op *o, long idx)
{
	const struct imap_msg *m = &s->msgs[idx];
	struct buf b;
	buf_init(&b, 64 * 1024);
	int r = imap_session_fetch_head(s, &b, idx);
	const char *sep = "";
	if ((o->uid || s->condstore) && !s->uidonly) { /* UIDFETCH leads with the UID */
		r |= buf_printf(&b, "UID %u", m->uid);
		sep = " ";
	}
	if (!o->silent) {
		r |= buf_printf(&b, "%sFLAGS (", sep);
		imap_session_flags_text(s, &b, m);
		r |= buf_puts(&b, ")");
		sep = " ";
	}
	if (s->condstore)
		r |= buf_printf(&b, "%sMODSEQ (%llu)", sep, (unsigned long long)m->modseq);
	r |= buf_puts(&b, ")");
	if (r == 0)
		imap_send(s, "%s", buf_cstr(&b));
	buf_free(&b);
}

/* The view takes the flags the store now holds, so imap_session_sync() finds nothing new
 * for these messages; the FETCH responses report them (RFC 9051 §6.4.6). An entry that
 * failed UNCHANGEDSINCE keeps its view: the sync after the command reports what changed
 * it (RFC 7162 §3.1.3 allows that FETCH). */
static void cmd_store_report(struct imap_session *s, struct cmd_store_op *o)
{
	for (size_t i = 0; i < o->result_count; i++) {
		const struct cmd_store_result *r = &o->results[i];
		long idx = cmd_store_view_find(s, r->uid);
		if (idx < 0 || r->modified)
			continue;
		s->msgs[idx].flags = r->flags;
		s->msgs[idx].modseq = r->modseq;
		imap_session_view_keywords(s, idx, r->keywords);
		/* .SILENT: still the new MODSEQ for a CONDSTORE-aware client, for every
		 * message of a conditional STORE (RFC 7162 §3.1.3) */
		if (!o->silent || (s->condstore && (r->changed || o->op.conditional)))
			cmd_store_fetch(s, o, idx);
	}
	/* Our own commit needs no second look when nothing else committed since the view was
	 * last brought up to date (no MODSEQ lies between the two). */
	if (o->op.modseq != 0 && o->op.modseq == s->highestmodseq + 1)
		s->highestmodseq = o->op.modseq;
}

/* Is uid among the results, and did it pass UNCHANGEDSINCE? */
static bool cmd_store_passed(const struct cmd_store_op *o, uint32_t uid)
{
	size_t lo = 0, hi = o->result_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (o->results[mid].uid == uid)
			return !o->results[mid].modified;
		if (o->results[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false; /* expunged by another session meanwhile: it changed too */
}

/* The MODIFIED set (RFC 7162 §3.1.3) into b: sequence numbers (STORE) or UIDs (UID STORE)
 * of the messages that failed UNCHANGEDSINCE or no longer exist; empty when none. Runs
 * before the sync that may send EXPUNGE (UID STORE only: its UIDs stay right). */
static void cmd_store_modified_set(struct imap_session *s, const struct cmd_store_op *o,
                                   struct buf *b)
{
	uint32_t lo = 0, hi = 0;
	int r = 0;
	for (size_t i = 0; i <= o->count; i++) {
		uint32_t key = 0;
		if (i < o->count && !cmd_store_passed(o, o->uids[i])) {
			long idx = cmd_store_view_find(s, o->uids[i]);
			key = o->uid ? o->uids[i] : idx >= 0 ? (uint32_t)idx + 1 : 0;
		}
		if (key != 0 && lo != 0 && key == hi + 1) {
			hi = key;
			continue;
		}
		if (lo != 0)
			r |= lo == hi ? buf_printf(b, "%s%u", b->len > 0 ? "," : "", lo)
			              : buf_printf(b, "%s%u:%u", b->len > 0 ? "," : "", lo, hi);
		lo = hi = key;
	}
	(void)r; /* b is sized for every number of the set */
}

static void cmd_store_done(struct imap_session *s)
{
	struct cmd_store_op *o = s->op;
	s->op = NULL;
	if (!s->closed) {
		const char *tag = s->op_tag;
		if (o->op.result == 0) {
			struct buf set;
			buf_init(&set, o->count * 11 + 16);
			if (o->op.conditional)
				cmd_store_modified_set(s, o, &set);
			cmd_store_report(s, o);
			/* RFC 9051 §7.5.1: no EXPUNGE during STORE */
			if (set.len > 0)
				imap_session_sync_ok(s, o->uid, tag,
				                     "[MODIFIED %s] Conditional %s failed",
				                     buf_cstr(&set), o->name);
			else
				imap_session_sync_ok(s, o->uid, tag, "%s completed", o->name);
			buf_free(&set);
		} else if (strcmp(o->op.error, STORE_ERROR_LIMIT) == 0) {
			imap_tagged(s, tag, "NO", "[LIMIT] Too many keywords in this mailbox");
		} else if (strcmp(o->op.error, STORE_ERROR_BAD_KEYWORD) == 0) {
			imap_tagged(s, tag, "BAD", "Invalid keyword");
		} else if (strcmp(o->op.error, STORE_ERROR_NO_MAILBOX) == 0) {
			imap_tagged(s, tag, "NO", "[NONEXISTENT] The mailbox no longer exists");
		} else {
			IMAP_LOG(s, "event=store result=fail error=\"%s\"", o->op.error);
			imap_tagged(s, tag, "NO", "[UNAVAILABLE] %s failed", o->name);
		}
	}
	cmd_store_op_free(o);
}

/* "FLAGS", "+FLAGS.SILENT", ... → mode and silent. false when it is none of them. */
static bool cmd_store_item(const char *item, enum store_flags_mode *mode_r, bool *silent_r)
{
	*mode_r = STORE_FLAGS_REPLACE;
	if (*item == '+' || *item == '-') {
		*mode_r = *item == '+' ? STORE_FLAGS_ADD : STORE_FLAGS_REMOVE;
		item++;
	}
	if (strncasecmp(item, "FLAGS", 5) != 0)
		return false;
	item += 5;
	*silent_r = strcasecmp(item, ".SILENT") == 0;
	return *item == '\0' || *silent_r;
}

/* The store modifiers (RFC 4466 §2.5): "(UNCHANGEDSINCE n)" is the only one known (RFC 7162
 * §3.1.3), given once. */
static bool cmd_store_modifiers(const struct imap_arg *list, bool *conditional_r,
                                uint64_t *unchanged_since_r)
{
	if (list->list[0].type == IMAP_ARG_EOL)
		return false;
	for (const struct imap_arg *m = list->list; m->type != IMAP_ARG_EOL; m += 2) {
		if (m->type != IMAP_ARG_ATOM || strcasecmp(m->str, "UNCHANGEDSINCE") != 0 ||
		    *conditional_r || !imap_commands_modseq(&m[1], true, unchanged_since_r))
			return false;
		*conditional_r = true;
	}
	return true;
}

void cmd_store(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const struct imap_arg *a = cmd->args;
	size_t n = imap_parser_arg_count(a);
	enum store_flags_mode mode;
	bool silent = false, conditional = false;
	uint64_t unchanged_since = 0;
	const struct imap_arg *set = &a[0];
	if (n >= 2 && a[1].type == IMAP_ARG_LIST) {
		if (!cmd_store_modifiers(&a[1], &conditional, &unchanged_since)) {
			imap_tagged(s, cmd->tag, "BAD",
			            "Syntax: %s set (UNCHANGEDSINCE modseq) ...", cmd->name);
			return;
		}
		a++; /* the item and the flags follow the modifiers */
		n--;
	}
	if (n < 3 || a[1].type != IMAP_ARG_ATOM || !cmd_store_item(a[1].str, &mode, &silent) ||
	    (a[2].type == IMAP_ARG_LIST && n != 3)) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: %s set [+|-]FLAGS[.SILENT] (flags)",
		            cmd->name);
		return;
	}
	if (conditional)
		(void)imap_session_condstore_enable(s); /* RFC 7162 §3.1 */
	unsigned flags;
	const char **keywords;
	size_t keyword_count;
	const struct imap_arg *flag_args = a[2].type == IMAP_ARG_LIST ? a[2].list : &a[2];
	if (cmd_store_parse_flags(s->cmd, flag_args, &flags, &keywords, &keyword_count) < 0) {
		imap_tagged(s, cmd->tag, "BAD", "Invalid flag");
		return;
	}
	if (s->read_only) {
		imap_tagged(s, cmd->tag, "NO", "[READ-ONLY] The mailbox is read-only");
		return;
	}
	/* RFC 4314 §4: \Seen needs s, \Deleted t, other flags and keywords w; FLAGS (replace)
	 * may change any of them. */
	unsigned need =
	    mode == STORE_FLAGS_REPLACE
	        ? STORE_ACL_SEEN | STORE_ACL_DELMSG | STORE_ACL_WRITE
	        : ((flags & STORE_FLAG_SEEN) ? STORE_ACL_SEEN : 0) |
	              ((flags & STORE_FLAG_DELETED) ? STORE_ACL_DELMSG : 0) |
	              ((flags & ~(STORE_FLAG_SEEN | STORE_FLAG_DELETED)) != 0 || keyword_count > 0
	                   ? STORE_ACL_WRITE
	                   : 0);
	if ((s->rights & need) != need) {
		imap_acl_deny(s, cmd->tag, need & ~s->rights);
		return;
	}
	uint32_t *uids;
	size_t count;
	if (cmd_store_set_uids(cmd, set, &uids, &count) < 0)
		return;
	if (count == 0) {
		imap_session_sync_ok(s, cmd->uid, cmd->tag, "%s completed", cmd->name);
		return;
	}
	struct cmd_store_op *o = xcalloc(1, sizeof(*o));
	o->mailbox = xstrdup(s->mailbox);
	o->uids = uids;
	o->silent = silent;
	o->uid = cmd->uid;
	o->count = count;
	o->name = xstrdup(cmd->name);
	o->keyword_count = keyword_count;
	o->keywords = xcalloc(keyword_count + 1, sizeof(*o->keywords));
	for (size_t i = 0; i < keyword_count; i++)
		o->keywords[i] = xstrdup(keywords[i]);
	o->op = (struct store_flags){
	    .account_id = s->mailbox_owner,
	    .mailbox = o->mailbox,
	    .uids = o->uids,
	    .uid_count = count,
	    .mode = mode,
	    .flags = flags,
	    .keywords = (const char *const *)o->keywords,
	    .keyword_count = keyword_count,
	    .conditional = conditional,
	    .unchanged_since = unchanged_since,
	    .entry_cb = cmd_store_entry_cb,
	    .entry_ctx = o,
	};
	imap_session_op_start(s, cmd->tag, cmd_store_done, o);
	store_flags(s->server->store, &o->op, cmd_store_cb, s);
}
