/* SELECT and EXAMINE (RFC 9051 §6.3.2-3) with the CONDSTORE parameter and HIGHESTMODSEQ
 * (RFC 7162 §3.1.2, §3.1.8) and the QRESYNC parameter (§3.2.5), CLOSE and UNSELECT
 * (§6.4.1, RFC 3691): opening a mailbox builds the session's view (sequence numbers) from
 * one store snapshot. */
#include "imap/imap_commands.h"
#include "imap/imap_acl.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "imap/imap_seqset.h"
#include "core/banned.h"

/* SELECT or EXAMINE between its store reads and its answer. */
struct select_req {
	struct imap_session *s;
	char *tag, *name; /* the command's tag and name (SELECT or EXAMINE) */
	char *raw;        /* the mailbox name as the client sent it */
	bool examine;
	/* filled by select_read */
	int r;
	struct store_mailbox_status st;
	int recent_r;
	uint32_t recent_first;
	/* QRESYNC (uidvalidity modseq [known-uids] [seq-match-data]) (RFC 7162 §3.2.5) */
	bool qresync;
	bool seq_match; /* QRESYNC's (known-sequence-set known-uid-set) was given */
	uint32_t qr_uidvalidity;
	uint64_t qr_modseq;
	struct imap_seqset_range *known; /* malloc'd copy of known-uids; NULL: every UID */
	size_t known_count;
	/* filled by select_read when the UIDVALIDITY matches: UIDs expunged after qr_modseq
	 * among the known ones, ascending */
	bool resync;
	bool full; /* the client's MODSEQ is below the tombstone floor: every known UID gone */
	uint32_t *vanished;
	size_t vanished_count, vanished_cap;
};

static void select_req_free(struct select_req *q)
{
	free(q->known);
	free(q->vanished);
	free(q->tag);
	free(q->name);
	free(q->raw);
	free(q);
}

/* One entry of the snapshot into the view. A snapshot from the store's cache says its
 * size before the first entry (the status is filled first): the view is sized once. */
static void imap_select_cb(void *ctx, const struct store_entry *e)
{
	struct select_req *q = ctx;
	struct imap_session *s = q->s;
	if (s->count == s->cap) {
		uint32_t want = s->cap == 0 && q->st.messages > 0 ? q->st.messages : 0;
		s->cap = want > 0 ? want : s->cap == 0 ? 64 : 2 * s->cap;
		s->msgs = xrealloc(s->msgs, (size_t)s->cap * sizeof(*s->msgs));
	}
	s->msgs[s->count] = (struct imap_msg){.uid = e->uid,
	                                      .size = e->size,
	                                      .date = e->internal_date,
	                                      .save_date = e->save_date,
	                                      .flags = e->flags,
	                                      .modseq = e->modseq};
	imap_session_view_keywords(s, s->count++, e->keywords);
}

/* uid is one of the client's known UIDs (all of them without known-uids). */
static bool select_known(const struct select_req *q, uint32_t uid)
{
	if (q->known == NULL)
		return true;
	size_t lo = 0, hi = q->known_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (uid < q->known[mid].lo)
			hi = mid;
		else if (uid > q->known[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

/* A tombstone newer than the client's MODSEQ (store_mailbox_changes, UID order). */
static void select_vanished_cb(void *ctx, uint32_t uid, uint64_t modseq)
{
	(void)modseq;
	struct select_req *q = ctx;
	if (!select_known(q, uid))
		return;
	if (q->vanished_count == q->vanished_cap) {
		q->vanished_cap = q->vanished_cap == 0 ? 64 : 2 * q->vanished_cap;
		q->vanished = xrealloc(q->vanished, q->vanished_cap * sizeof(*q->vanished));
	}
	q->vanished[q->vanished_count++] = uid;
}

/* The reads (imap_session_read): the mailbox's keywords, then the snapshot into the view
 * (nothing on the loop touches it meanwhile: the session is not SELECTED yet), then
 * \Recent (IMAP4rev1). */
static void select_read(void *ctx)
{
	struct select_req *q = ctx;
	struct imap_session *s = q->s;
	/* The mailbox's keywords first (in the order they were first used); the snapshot adds
	 * any an entry holds beyond them (imap_session_view_keywords()). */
	char *keywords = NULL;
	if (store_mailbox_keywords(s->server->store, s->mailbox_owner, s->mailbox, &keywords) ==
	        1 &&
	    keywords[0] != '\0')
		s->announced = keywords;
	else
		free(keywords);
	q->r = store_mailbox_snapshot(s->server->store, s->mailbox_owner, s->mailbox, &q->st,
	                              imap_select_cb, q);
	/* QRESYNC with the right UIDVALIDITY: the tombstones newer than the client's MODSEQ,
	 * complete when it is not below the mailbox's tombstone floor (the highest MODSEQ of
	 * the pruned ones, imap_expunge_retention); else every known UID not in the view goes
	 * into VANISHED (EARLIER) (select_resync). A later snapshot than the view's:
	 * select_done drops UIDs the view still has (their VANISHED comes with the next sync). */
	if (q->r == 1 && q->qresync && q->st.uidvalidity == q->qr_uidvalidity) {
		q->full = q->st.tombstone_floor > q->qr_modseq;
		struct store_mailbox_status now;
		int r = q->full ? 1
		                : store_mailbox_changes(s->server->store, s->mailbox_owner,
		                                        s->mailbox, q->qr_modseq, NULL,
		                                        select_vanished_cb, q, &now);
		if (!q->full && r == 1 && now.tombstone_floor > q->qr_modseq)
			q->full = true; /* pruned since the snapshot */
		q->resync = r == 1;
		if (r != 1)
			q->r = r < 0 ? -1 : 0;
	}
	if (q->r == 1 && !s->rev2 && s->count > 0) {
		s->uidvalidity = q->st.uidvalidity; /* what the claim names */
		s->read_only = q->examine;
		q->recent_r =
		    imap_session_recent_read(s, s->msgs[s->count - 1].uid + 1, &q->recent_first);
	}
}

/* RFC 7162 §3.2.5.1: what changed since the client's MODSEQ among its known UIDs: the
 * expunged ones in one VANISHED (EARLIER), then a FETCH (UID FLAGS MODSEQ) for each
 * message changed (or new) since. */
static void select_resync(struct imap_session *s, struct select_req *q)
{
	if (q->full) {
		/* Every known UID below the view's UIDNEXT that the view lacks (UIDs at or
		 * above it were never given out when the view was read). */
		static const struct imap_seqset_range every = {1, UINT32_MAX};
		imap_session_send_vanished_absent(s, q->known != NULL ? q->known : &every,
		                                  q->known != NULL ? q->known_count : 1,
		                                  q->st.uidnext > 0 ? q->st.uidnext - 1 : 0);
		q->vanished_count = 0;
	}
	size_t n = 0;
	for (size_t i = 0; i < q->vanished_count; i++)
		if (cmd_store_view_find(s, q->vanished[i]) < 0)
			q->vanished[n++] = q->vanished[i];
	imap_session_send_vanished(s, true, q->vanished, n);
	for (uint32_t i = 0; i < s->count; i++)
		if (s->msgs[i].modseq > q->qr_modseq && select_known(q, s->msgs[i].uid))
			imap_session_send_fetch_flags(s, i);
}

static void select_done(struct imap_session *s, void *ctx)
{
	struct select_req *q = ctx;
	if (s->closed) {
		select_req_free(q);
		return;
	}
	if (q->r <= 0) {
		imap_session_unselect(s);
		if (q->r == 0)
			imap_tagged(s, q->tag, "NO", "[NONEXISTENT] Mailbox does not exist");
		else
			imap_tagged(s, q->tag, "NO", "[UNAVAILABLE] Cannot open the mailbox");
		select_req_free(q);
		return;
	}
	imap_session_set_state(s, IMAP_STATE_SELECTED);
	s->read_only = q->examine;
	s->uidvalidity = q->st.uidvalidity;
	s->uidnext = q->st.uidnext;
	s->highestmodseq = q->st.highestmodseq;
	if (q->recent_r == 1)
		imap_session_recent_mark(s, 0, q->recent_first);
	imap_send(s, "* %u EXISTS", s->count);
	if (!s->rev2)
		imap_send(s, "* %u RECENT", imap_session_recent_count(s));
	imap_session_send_flags(s);
	/* RFC 3501 §6.3.1: the first unseen message (RFC 9051 dropped it); a message number,
	 * so not under UIDONLY (RFC 9586 §3) */
	if (!s->rev2 && !s->uidonly) {
		uint32_t i = 0;
		while (i < s->count && (s->msgs[i].flags & STORE_FLAG_SEEN))
			i++;
		if (i < s->count)
			imap_send(s, "* OK [UNSEEN %u] First unseen", i + 1);
	}
	imap_send(s, "* OK [UIDVALIDITY %u] UIDs valid", s->uidvalidity);
	imap_send(s, "* OK [UIDNEXT %u] Predicted next UID", s->uidnext);
	imap_send(s, "* OK [MAILBOXID (%s)] Ok", q->st.mailboxid); /* RFC 8474 §4.2 */
	/* RFC 7162 §3.1.2.1: every mailbox keeps MODSEQs, so always HIGHESTMODSEQ (never
	 * NOMODSEQ), also to a client that enabled nothing. */
	imap_send(s, "* OK [HIGHESTMODSEQ %llu] Highest", (unsigned long long)s->highestmodseq);
	if (s->rev2) {
		struct buf b;
		buf_init(&b, 8192);
		imap_quote(&b, q->raw);
		imap_send(s, "* LIST () \"/\" %s", buf_cstr(&b)); /* RFC 9051 §6.3.2 */
		buf_free(&b);
	}
	if (q->resync)
		select_resync(s, q);
	IMAP_LOG(s, "event=select mailbox=%s messages=%u read_only=%d", s->mailbox, s->count,
	         (int)q->examine);
	imap_tagged(s, q->tag, "OK", "[%s] %s completed", q->examine ? "READ-ONLY" : "READ-WRITE",
	            q->name);
	select_req_free(q);
}

/* A uidvalidity (RFC 9051 nz-number, 32 bits). */
static bool select_nz32(const struct imap_arg *a, uint32_t *v_r)
{
	if (a->type != IMAP_ARG_ATOM || a->str[0] < '1' || a->str[0] > '9')
		return false;
	uint64_t v = 0;
	for (const char *c = a->str; *c != '\0'; c++) {
		if (*c < '0' || *c > '9' || (v = v * 10 + (uint64_t)(*c - '0')) > UINT32_MAX)
			return false;
	}
	*v_r = (uint32_t)v;
	return true;
}

/* A set of known-uids or seq-match-data: a sequence-set without '*' or '$'. */
static bool select_uidset(struct imap_session *s, const struct imap_arg *a,
                          struct imap_seqset **set_r)
{
	const char *error;
	return a->type == IMAP_ARG_ATOM && imap_seqset_parse(s->cmd, a->str, set_r, &error) == 0 &&
	       !(*set_r)->star && !imap_seqset_is_saved(*set_r);
}

/* "(uidvalidity modseq [known-uids] [(known-sequence-set known-uid-set)])" of QRESYNC
 * (RFC 7162 §3.2.5, §7). The seq-match-data is checked and ignored: the store keeps every
 * tombstone above the mailbox's floor, and a client older than that gets every known UID
 * that is gone (correct, if longer than seq-match-data could make it). */
static bool select_qresync(struct imap_session *s, const struct imap_arg *list,
                           struct select_req *q)
{
	if (list->type != IMAP_ARG_LIST)
		return false;
	const struct imap_arg *a = list->list;
	if (!select_nz32(&a[0], &q->qr_uidvalidity) ||
	    !imap_commands_modseq(&a[1], true, &q->qr_modseq))
		return false;
	a += 2;
	struct imap_seqset *set;
	if (a->type == IMAP_ARG_ATOM) {
		if (!select_uidset(s, a, &set))
			return false;
		q->known_count = set->count;
		q->known = xmalloc(set->count * sizeof(*q->known));
		memcpy(q->known, set->ranges, set->count * sizeof(*q->known));
		a++;
	}
	if (a->type == IMAP_ARG_LIST) {
		const struct imap_arg *m = a->list;
		if (!select_uidset(s, &m[0], &set) || !select_uidset(s, &m[1], &set) ||
		    m[2].type != IMAP_ARG_EOL)
			return false;
		q->seq_match = true;
		a++;
	}
	return a->type == IMAP_ARG_EOL;
}

/* The select parameters (RFC 4466 §2.1): a non-empty list of CONDSTORE (RFC 7162 §3.1.8)
 * and QRESYNC (...) (§3.2.5), each at most once. 1 ok, 0 BAD syntax, -1 BAD: QRESYNC
 * without ENABLE QRESYNC first (§3.2.5). */
static int select_params(struct imap_session *s, const struct imap_arg *list, struct select_req *q,
                         bool *condstore_r)
{
	if (list->type != IMAP_ARG_LIST || list->list[0].type == IMAP_ARG_EOL)
		return 0;
	for (const struct imap_arg *a = list->list; a->type != IMAP_ARG_EOL; a++) {
		if (a->type != IMAP_ARG_ATOM)
			return 0;
		if (strcasecmp(a->str, "CONDSTORE") == 0 && !*condstore_r) {
			*condstore_r = true;
		} else if (strcasecmp(a->str, "QRESYNC") == 0 && !q->qresync) {
			if (!select_qresync(s, &a[1], q))
				return 0;
			if (!s->qresync)
				return -1;
			q->qresync = true;
			a++;
		} else {
			return 0;
		}
	}
	return 1;
}

void cmd_select(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	bool examine = strcmp(cmd->name, "EXAMINE") == 0;
	const char *raw, *name;
	size_t n = imap_parser_arg_count(cmd->args);
	struct select_req *q = xcalloc(1, sizeof(*q));
	bool condstore = false;
	int p = 1;
	if (n < 1 || n > 2 || !imap_commands_astring(&cmd->args[0], &raw) ||
	    (n == 2 && (p = select_params(s, &cmd->args[1], q, &condstore)) == 0)) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: %s mailbox [(CONDSTORE | QRESYNC (...))]",
		            cmd->name);
		select_req_free(q);
		return;
	}
	if (p < 0) {
		imap_tagged(s, cmd->tag, "BAD", "QRESYNC was not enabled (ENABLE QRESYNC)");
		select_req_free(q);
		return;
	}
	if (q->seq_match && s->uidonly) { /* RFC 9586 §3: it holds message numbers */
		imap_tagged(s, cmd->tag, "BAD",
		            "[UIDREQUIRED] No sequence-match data with UIDONLY");
		select_req_free(q);
		return;
	}
	if (n == 2)
		s->condstore = true; /* RFC 7162 §3.1.8; the SELECT sends HIGHESTMODSEQ anyway */
	name = imap_commands_mailbox_name(s, raw);
	if (name == NULL) {
		imap_tagged(s, cmd->tag, "NO", "[CANNOT] Invalid mailbox name");
		select_req_free(q);
		return;
	}
	/* RFC 4314 §4: SELECT and EXAMINE need r; a shared mailbox the session may not look
	 * up is answered as a missing one (after the previous mailbox is closed, as for one). */
	struct imap_acl_mbox mb;
	uint64_t acl_version = store_acl_version(s->server->store); /* before the read */
	int acl_r = imap_acl_resolve(s, name, &mb);
	bool was_selected = s->state == IMAP_STATE_SELECTED;
	imap_session_unselect(s);
	if (was_selected)
		imap_send(s, "* OK [CLOSED] Previous mailbox closed");
	if (acl_r <= 0 || (mb.rights & STORE_ACL_READ) == 0) {
		if (acl_r == 0)
			imap_tagged(s, cmd->tag, "NO", "[NONEXISTENT] Mailbox does not exist");
		else if (acl_r < 0)
			imap_tagged(s, cmd->tag, "NO", "[UNAVAILABLE] Cannot open the mailbox");
		else
			imap_acl_deny(s, cmd->tag, STORE_ACL_READ);
		select_req_free(q);
		return;
	}
	/* Without any right to change something the mailbox is read-only (RFC 4314 §4). */
	if ((mb.rights & (STORE_ACL_SEEN | STORE_ACL_WRITE | STORE_ACL_INSERT | STORE_ACL_DELMSG |
	                  STORE_ACL_EXPUNGE)) == 0)
		examine = true;
	/* Watch first, then snapshot: a change in between is reported, never lost. */
	s->mailbox = xstrdup(mb.name);
	s->mailbox_owner = mb.owner;
	s->rights = mb.rights;
	s->acl_version = acl_version;
	s->acl_read_at = imap_acl_now();
	imap_session_watch(s);
	q->s = s;
	q->tag = xstrdup(cmd->tag);
	q->name = xstrdup(cmd->name);
	q->raw = xstrdup(raw);
	q->examine = examine;
	(void)imap_session_read(s, select_read, select_done, q);
}

struct close_op {
	struct store_expunge expunge;
	uint32_t *uids;
};

static void close_expunge_cb(struct store_expunge *op, void *ctx)
{
	(void)op;
	imap_session_op_finished(ctx);
}

static void close_done(struct imap_session *s)
{
	struct close_op *op = s->op;
	s->op = NULL;
	if (op->expunge.result != 0)
		log_error("session=%s proto=imap event=close-expunge error=\"%s\"",
		          conn_id(s->conn), op->expunge.error);
	free(op->uids);
	free(op);
	/* CLOSE answers OK even when the expunge failed: the mailbox is closed either way. */
	imap_session_unselect(s);
	imap_tagged(s, s->op_tag, "OK", "CLOSE completed");
}

void cmd_close(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	/* CLOSE (not UNSELECT) silently removes \Deleted messages of a read-write mailbox
	 * (RFC 9051 §6.4.1). */
	size_t n = 0;
	if (strcmp(cmd->name, "CLOSE") == 0 && !s->read_only && (s->rights & STORE_ACL_EXPUNGE))
		for (uint32_t i = 0; i < s->count; i++)
			if (s->msgs[i].flags & STORE_FLAG_DELETED)
				n++;
	if (n == 0) {
		imap_session_unselect(s);
		imap_tagged(s, cmd->tag, "OK", "%s completed", cmd->name);
		return;
	}
	struct close_op *op = xcalloc(1, sizeof(*op));
	op->uids = xcalloc(n, sizeof(uint32_t));
	n = 0;
	for (uint32_t i = 0; i < s->count; i++)
		if (s->msgs[i].flags & STORE_FLAG_DELETED)
			op->uids[n++] = s->msgs[i].uid;
	op->expunge = (struct store_expunge){.account_id = s->mailbox_owner,
	                                     .mailbox = s->mailbox,
	                                     .uids = op->uids,
	                                     .uid_count = n};
	imap_session_op_start(s, cmd->tag, close_done, op);
	store_expunge(s->server->store, &op->expunge, close_expunge_cb, s);
}
