/* The store's writer thread: one queue of every write of mailbox contents (deliveries,
 * appends, expunges, flags, copies, mailbox operations), taken in batches of up to
 * STORE_BATCH_MAX. A batch's message files are placed at their content addresses and their
 * directories fsynced once, new messages are summarized; then every operation commits in
 * one transaction in queue order (group commit). Files whose last reference went are
 * unlinked only after that commit, and only while blob_lock is still held, so no delivery
 * can be reusing them. Then the watches of the changed mailboxes are called, then the
 * operations' callbacks. */
#include "store/store_private.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/fault.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/blob.h"
#include "store/sql.h"
#include "store/store_trigram.h"
#include "core/banned.h"

/* An operation waiting for (or inside) a group commit. */
struct store_pending {
	struct store_pending *next;
	struct store_commit_item item; /* kind; delivery fields once placed */
	void *ctx;
	bool placed;  /* delivery: its file is at its content address */
	bool ok;      /* still going to succeed: placed / committed */
	bool refused; /* not ok because a check refused it (not a failure) */
	/* When not ok: a static reason for the caller (who may read it after the callback,
	 * from another thread) and the details for the log. */
	const char *reason;
	char error[STORE_ERROR_MAX];

	union {
		struct store_delivery *delivery;
		struct store_expunge *expunge;
		struct store_append *append;
		struct store_flags *flags;
		struct store_copy *copy;
		struct store_mailbox_op *mailbox;
		struct store_queue_op *queue;
	} op;
	union {
		store_delivery_cb *delivery;
		store_expunge_cb *expunge;
		store_append_cb *append;
		store_flags_cb *flags;
		store_copy_cb *copy;
		store_mailbox_cb *mailbox;
		store_queue_cb *queue;
	} cb;

	/* Copies the pending owns. */
	uint64_t *accounts; /* delivery: deduplicated */
	size_t account_count;
	char *mailbox, *target; /* normalised names */
	uint32_t *uids;         /* ascending, distinct, non-zero */
	size_t uid_count;
	char *keywords;                        /* flags: joined */
	struct store_summary summary;          /* delivery */
	unsigned char *content;                /* delivery: its body, stored inline */
	struct store_commit_message *messages; /* append */
	char **message_keywords;               /* append: joined, per message */
	size_t message_count;
	struct store_flags_report report;  /* flags */
	uint32_t *map_source, *map_target; /* copy */
};

/* Content addresses whose files may have to go once the batch is committed: message rows a
 * commit removed, and files of deliveries that failed. */
struct store_doomed {
	char (*v)[BLOB_HEX_LEN + 1];
	size_t count, cap;
};

static void store_doomed_add(void *ctx, const char *sha256)
{
	struct store_doomed *d = ctx;
	if (d->count == d->cap) {
		d->cap = d->cap == 0 ? 16 : d->cap * 2;
		d->v = xrealloc(d->v, d->cap * sizeof(*d->v));
	}
	snprintf(d->v[d->count++], BLOB_HEX_LEN + 1, "%s", sha256);
}

/* Failure reasons handed to callers (static strings); the details go to the log. */
#define STORE_WRITER_FILE_FAILED "storing the message file failed"
#define STORE_WRITER_DB_FAILED "database error"

static void store_pending_fail(struct store_pending *p, const char *reason, const char *error)
{
	snprintf(p->error, sizeof(p->error), "%s", error);
	p->reason = reason;
	p->ok = false;
}

static void store_pending_refuse(struct store_pending *p, const char *reason)
{
	store_pending_fail(p, reason, reason);
	p->refused = true;
}

/* ---- flags reports ---- */

void store_writer_report_reset(struct store_flags_report *report)
{
	for (size_t i = 0; i < report->count; i++)
		free((char *)report->v[i].keywords);
	report->count = 0;
}

void store_writer_report_add(struct store_flags_report *report,
                             const struct store_flags_entry *entry)
{
	if (report->count == report->cap) {
		report->cap = report->cap == 0 ? 16 : report->cap * 2;
		report->v = xrealloc(report->v, report->cap * sizeof(*report->v));
	}
	report->v[report->count] = *entry;
	report->v[report->count++].keywords = xstrdup(entry->keywords);
}

/* ---- placing files ---- */

static bool store_remote_valid(const char *rcpt)
{
	size_t len = rcpt == NULL ? 0 : strlen(rcpt);
	const char *at = len == 0 ? NULL : strrchr(rcpt, '@');
	if (at == NULL || at == rcpt || at[1] == '\0' || len > STORE_ADDRESS_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)rcpt[i] < 0x20 || rcpt[i] == 0x7f)
			return false;
	}
	return true;
}

static int store_delivery_check(const struct store_pending *p, const char **error_r)
{
	const struct store_delivery *d = p->op.delivery;
	if (d->spool_path == NULL) {
		*error_r = "no spool file";
		return -1;
	}
	if (p->account_count == 0 && d->remote_count == 0) {
		*error_r = "no recipients";
		return -1;
	}
	for (size_t i = 0; i < d->remote_count; i++) {
		if (!store_remote_valid(d->remote[i])) {
			*error_r = "invalid remote recipient";
			return -1;
		}
		const struct store_remote_dsn *dsn =
		    d->remote_dsn == NULL ? NULL : &d->remote_dsn[i];
		if (dsn != NULL &&
		    ((dsn->notify & ~0xfu) != 0 ||
		     ((dsn->notify & STORE_NOTIFY_NEVER) && dsn->notify != STORE_NOTIFY_NEVER) ||
		     (dsn->orcpt != NULL && strlen(dsn->orcpt) > STORE_ORCPT_MAX))) {
			*error_r = "invalid DSN parameters of a remote recipient";
			return -1;
		}
	}
	if ((unsigned)d->ret > STORE_DSN_RET_HDRS ||
	    (d->envid != NULL && strlen(d->envid) > STORE_ENVID_MAX)) {
		*error_r = "invalid DSN parameters";
		return -1;
	}
	return 0;
}

static void store_spool_unlink(const char *path)
{
	if (path != NULL && unlink(path) < 0 && errno != ENOENT)
		log_warn("store: unlink %s: %s", path, strerror(errno));
}

/* The fan-out directories a batch touched. */
struct store_dirty {
	bool fanout[BLOB_FANOUT_COUNT];
	bool top;
	bool any;
};

/* Take one spool file into the store: a small one is read into *content_r (the database
 * stores it; the spool file stays until the commit is over), a larger one is moved to its
 * content address, or, on a shared database, only hashed: *chunk_path_r names it, and the
 * commit copies it into chunk rows (it too stays until the commit is over). 0, or -1 with
 * *error_r (the spool file is then still there). */
static int store_writer_place_file(struct store *store, const char *spool_path,
                                   char sha256_r[BLOB_HEX_LEN + 1], uint64_t *size_r,
                                   unsigned char **content_r, const char **chunk_path_r,
                                   struct store_dirty *dirty, const char **error_r)
{
	bool created = false;
	uint64_t max = store->shared ? STORE_CHUNK_SIZE : atomic_load(&store->inline_max);
	*content_r = NULL;
	*chunk_path_r = NULL;
	if (max > 0) {
		int ret = blob_read_small(spool_path, max, content_r, sha256_r, size_r, error_r);
		if (ret != 0)
			return ret < 0 ? -1 : 0;
	}
	if (store->shared) {
		if (blob_hash_file(spool_path, sha256_r, size_r, error_r) < 0)
			return -1;
		*chunk_path_r = spool_path;
		return 0;
	}
	if (blob_store(store->messages_dir, spool_path, sha256_r, size_r, &created, error_r) < 0)
		return -1;
	unsigned fanout = blob_fanout_index(sha256_r);
	dirty->fanout[fanout] = true;
	/* Made now, or by an earlier run that may have crashed before syncing messages/. */
	dirty->top = dirty->top || created || !store->fanout_synced[fanout];
	dirty->any = true;
	return 0;
}

/* Check one delivery and take its file. The spool file is gone afterwards, or (stored
 * inline) goes after the commit. */
static void store_writer_place(struct store *store, struct store_pending *p,
                               struct store_dirty *dirty)
{
	struct store_commit_delivery *item = &p->item.delivery;
	const char *error, *reason;
	int ret = store_delivery_check(p, &error);
	reason = error; /* the checks' messages are static */
	if (ret == 0) {
		ret = store_writer_place_file(store, p->op.delivery->spool_path, item->sha256,
		                              &item->size, &p->content, &item->chunk_path, dirty,
		                              &error);
		reason = STORE_WRITER_FILE_FAILED;
	}
	if (ret < 0) {
		store_pending_fail(p, reason, error);
		store_spool_unlink(p->op.delivery->spool_path);
		return;
	}
	item->delivery = p->op.delivery;
	item->accounts = p->accounts;
	item->account_count = p->account_count;
	item->summary = &p->summary;
	item->content = p->content;
	p->placed = p->content == NULL && item->chunk_path == NULL;
}

/* Take every message of an append (all spool files are consumed either way: the inline
 * ones after the commit). */
static void store_writer_place_append(struct store *store, struct store_pending *p,
                                      struct store_dirty *dirty)
{
	const struct store_append *op = p->op.append;
	const char *error;
	for (size_t i = 0; i < p->message_count; i++) {
		struct store_commit_message *m = &p->messages[i];
		const char *spool = op->messages[i].spool_path;
		if (p->ok && store_writer_place_file(store, spool, m->sha256, &m->size, &m->content,
		                                     &m->chunk_path, dirty, &error) == 0) {
			m->placed = m->content == NULL && m->chunk_path == NULL;
			continue;
		}
		if (p->ok)
			store_pending_fail(p, STORE_ERROR_FAILED, error);
		store_spool_unlink(spool);
	}
}

/* Make the renames of this batch durable: one fsync per touched directory. */
static int store_writer_sync(struct store *store, const struct store_dirty *dirty,
                             const char **error_r)
{
	if (dirty->top && blob_sync_dir(store->messages_dir, error_r) < 0)
		return -1;
	for (unsigned i = 0; i < BLOB_FANOUT_COUNT; i++) {
		if (dirty->fanout[i] && blob_sync_fanout(store->messages_dir, i, error_r) < 0)
			return -1;
	}
	/* messages/ was synced after every fan-out directory of this batch existed. */
	for (unsigned i = 0; i < BLOB_FANOUT_COUNT; i++)
		store->fanout_synced[i] = store->fanout_synced[i] || dirty->fanout[i];
	return 0;
}

static bool store_pending_has_files(const struct store_pending *p)
{
	if (p->item.kind == STORE_OP_DELIVERY)
		return p->placed;
	if (p->item.kind != STORE_OP_APPEND)
		return false;
	for (size_t i = 0; i < p->message_count; i++) {
		if (p->messages[i].placed)
			return true;
	}
	return false;
}

/* Place every delivery's and append's files and sync the directories; an operation that
 * fails here is marked not ok. */
static void store_writer_place_all(struct store *store, struct store_pending **batch, size_t n)
{
	struct store_dirty dirty = {0};
	const char *error;
	for (size_t i = 0; i < n; i++) {
		if (batch[i]->item.kind == STORE_OP_DELIVERY)
			store_writer_place(store, batch[i], &dirty);
		else if (batch[i]->item.kind == STORE_OP_APPEND)
			store_writer_place_append(store, batch[i], &dirty);
	}
	if (!dirty.any)
		return;
	int ret = store_writer_sync(store, &dirty, &error);
	/* Test builds: the files are durable, their rows not yet (a crash here leaves
	 * orphans for the sweep at start-up; an error fails the operations as a sync would). */
	if (ret == 0 && FAULT_POINT("store.blob.before_row") != 0) {
		error = "fault point store.blob.before_row";
		ret = -1;
	}
	if (ret == 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (batch[i]->ok && store_pending_has_files(batch[i]))
			store_pending_fail(batch[i],
			                   batch[i]->item.kind == STORE_OP_DELIVERY
			                       ? STORE_WRITER_FILE_FAILED
			                       : STORE_ERROR_FAILED,
			                   error);
	}
}

/* ---- summaries ---- */

struct store_summarize {
	struct store *store;
	store_summarizer_fn *fn;
	void *ctx;
	struct store_doomed seen;       /* content addresses summarized in this batch */
	store_search_texter_fn *texter; /* the search index's texts (NULL: none) */
	void *texter_ctx;
	size_t texter_max;
};

/* The search index's texts of a new message (store_set_search_texter()). */
static void store_writer_search_texts(struct store_summarize *s, const char *path,
                                      struct store_summary *summary)
{
	if (s->texter == NULL)
		return;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r = fd < 0 ? -1
	               : s->texter(s->texter_ctx, fd, s->texter_max, &summary->search_hdr,
	                           &summary->search_body);
	if (fd >= 0)
		close(fd);
	/* texts that would cost the trigram index more than linear work are not indexed */
	if (r == 1 && !store_trigram_indexable(summary->search_hdr, summary->search_body))
		r = 0;
	if (r != 1) {
		free(summary->search_hdr);
		free(summary->search_body);
		summary->search_hdr = summary->search_body = NULL;
	}
	/* 0: recorded as not indexable (its searches read the file); -1: left for later */
	summary->search_state = r == 1 ? 1 : r == 0 ? 2 : 0;
}

/* Summarize a new message file once per batch (a row that exists keeps its texts). */
static void store_writer_summarize_one(struct store_summarize *s, const char *sha256,
                                       const char *spool_path, struct store_summary *summary)
{
	for (size_t i = 0; i < s->seen.count; i++) {
		if (strcmp(s->seen.v[i], sha256) == 0)
			return;
	}
	store_doomed_add(&s->seen, sha256);
	if (s->store->v->message_exists(s->store, sha256) != 0)
		return;
	/* A body stored inline is still in its spool file. */
	char *path = spool_path != NULL ? xstrdup(spool_path)
	                                : blob_path_dup(s->store->messages_dir, sha256);
	store_writer_search_texts(s, path, summary);
	if (s->fn != NULL && s->fn(s->ctx, path, &summary->envelope, &summary->body,
	                           &summary->bodystructure, &summary->preview) < 0) {
		log_warn("store: summarizing %s failed; computed on demand", sha256);
		free(summary->envelope);
		free(summary->body);
		free(summary->bodystructure);
		free(summary->preview);
		summary->envelope = summary->body = summary->bodystructure = NULL;
		summary->preview = NULL;
	}
	free(path);
}

static void store_writer_summarize(struct store *store, store_summarizer_fn *fn, void *ctx,
                                   struct store_pending **batch, size_t n)
{
	struct store_summarize s = {store, fn, ctx, {0}, NULL, NULL, 0};
	pthread_mutex_lock(&store->queue_lock);
	s.texter = store->search_texter;
	s.texter_ctx = store->search_texter_ctx;
	s.texter_max = store->search_texter_max;
	pthread_mutex_unlock(&store->queue_lock);
	if (fn == NULL && s.texter == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		struct store_pending *p = batch[i];
		if (!p->ok)
			continue;
		if (p->item.kind == STORE_OP_DELIVERY)
			store_writer_summarize_one(&s, p->item.delivery.sha256,
			                           !p->placed ? p->op.delivery->spool_path : NULL,
			                           &p->summary);
		for (size_t k = 0; p->item.kind == STORE_OP_APPEND && k < p->message_count; k++)
			store_writer_summarize_one(
			    &s, p->messages[k].sha256,
			    !p->messages[k].placed ? p->op.append->messages[k].spool_path : NULL,
			    &p->messages[k].summary);
	}
	free(s.seen.v);
}

static void store_summary_free(struct store_summary *summary)
{
	free(summary->search_hdr);
	free(summary->search_body);
	free(summary->envelope);
	free(summary->body);
	free(summary->bodystructure);
	free(summary->preview);
}

/* ---- commit ---- */

/* A commit that included this item succeeded. */
static void store_writer_committed(struct store_pending *p, const struct store_commit_item *item)
{
	if (item->kind == STORE_OP_EXPUNGE) {
		if (item->expunge.no_mailbox) {
			snprintf(p->error, sizeof(p->error),
			         "no such mailbox \"%s\" for account %" PRIu64, p->mailbox,
			         p->op.expunge->account_id);
			p->reason = STORE_EXPUNGE_NO_MAILBOX;
			p->ok = false;
			return;
		}
		p->op.expunge->expunged = item->expunge.expunged;
		p->op.expunge->freed = item->expunge.freed;
		return;
	}
	if (item->kind != STORE_OP_DELIVERY && item->refused != NULL) {
		store_pending_refuse(p, item->refused);
		return;
	}
	p->item = *item; /* the out fields, for store_writer_done() */
}

static const char *store_writer_failure(enum store_op_kind kind)
{
	if (kind == STORE_OP_DELIVERY)
		return STORE_WRITER_DB_FAILED;
	return kind == STORE_OP_EXPUNGE ? STORE_EXPUNGE_FAILED : STORE_ERROR_FAILED;
}

/* Commit the operations in one transaction; when that fails, each one alone so one bad
 * delivery (say, an account deleted meanwhile) does not fail the others. An operation that
 * still fails is marked not ok. The changed mailboxes of what committed go to changes. */
static void store_writer_commit(struct store *store, struct store_pending **ops,
                                struct store_commit_item *items, size_t count,
                                struct store_doomed *doomed, struct store_changes *changes)
{
	const char *error;
	size_t mark = changes->count;
	if (count == 0)
		return;
	if (store->v->commit(store, items, count, store_doomed_add, doomed, changes, &error) == 0) {
		for (size_t i = 0; i < count; i++)
			store_writer_committed(ops[i], &items[i]);
		return;
	}
	/* Change notices are hints: those of a commit that may have happened stay. */
	if (error != sql_commit_unknown)
		store_watch_truncate(changes, mark);
	if (count == 1 || error == sql_commit_unknown) {
		/* Committed or not, nobody can tell: running them again one by one could store
		 * them twice; they fail (a client's retry is then a duplicate it asked for). */
		for (size_t i = 0; i < count; i++)
			store_pending_fail(ops[i], store_writer_failure(ops[i]->item.kind), error);
		return;
	}
	log_warn("store: group commit of %zu operations failed (%s), retrying one by one", count,
	         error);
	for (size_t i = 0; i < count; i++)
		store_writer_commit(store, &ops[i], &items[i], 1, doomed, changes);
}

/* Collect the files of failed operations among the doomed ones (blob_lock held, every
 * commit of the batch done). */
static void store_writer_doom_failed(struct store_pending **batch, size_t n,
                                     struct store_doomed *doomed)
{
	for (size_t i = 0; i < n; i++) {
		struct store_pending *p = batch[i];
		if (p->ok)
			continue;
		if (p->item.kind == STORE_OP_DELIVERY && p->placed)
			store_doomed_add(doomed, p->item.delivery.sha256);
		for (size_t k = 0; p->item.kind == STORE_OP_APPEND && k < p->message_count; k++) {
			if (p->messages[k].placed)
				store_doomed_add(doomed, p->messages[k].sha256);
		}
	}
}

/* The bodies stored in the database (inline or in chunk rows) are there now (or their
 * operation failed): their spool files and copies go, before the callbacks (which may
 * free the operations). */
static void store_writer_drop_inline(struct store_pending **batch, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct store_pending *p = batch[i];
		struct store_commit_delivery *d = &p->item.delivery;
		if (p->item.kind == STORE_OP_DELIVERY && (p->content != NULL || d->chunk_path)) {
			store_spool_unlink(p->op.delivery->spool_path);
			free(p->content);
			p->content = NULL;
			d->content = NULL;
			d->chunk_path = NULL;
		}
		for (size_t k = 0; p->item.kind == STORE_OP_APPEND && k < p->message_count; k++) {
			struct store_commit_message *m = &p->messages[k];
			if (m->content == NULL && m->chunk_path == NULL)
				continue;
			store_spool_unlink(p->op.append->messages[k].spool_path);
			free(m->content);
			m->content = NULL;
			m->chunk_path = NULL;
		}
	}
}

/* Unlink the doomed files that no message row references now. Runs after the callbacks
 * (a POP3 QUIT or IMAP EXPUNGE need not wait for unlinks, which can be slow on disks with
 * online discard), under blob_lock; only this thread places files, so none can have come
 * back meanwhile except through a row, which message_exists() sees. When in doubt the file
 * stays: store_open() removes orphans. */
static void store_writer_unlink(struct store *store, struct store_doomed *doomed)
{
	if (doomed->count == 0)
		return;
	pthread_mutex_lock(&store->blob_lock);
	for (size_t i = 0; i < doomed->count; i++) {
		if (store->v->message_exists(store, doomed->v[i]) == 0)
			(void)blob_unlink(store->messages_dir, doomed->v[i]);
	}
	pthread_mutex_unlock(&store->blob_lock);
}

/* ---- reporting ---- */

static void store_writer_log(const struct store_pending *p, const char *what)
{
	if (p->refused)
		log_debug("store: %s refused: %s", what, p->error);
	else
		log_error("store: %s failed: %s", what, p->error);
}

static void store_done_delivery(struct store_pending *p)
{
	struct store_delivery *d = p->op.delivery;
	d->result = p->ok ? 0 : -1;
	d->error = p->ok ? NULL : p->reason;
	d->size = p->ok ? p->item.delivery.size : 0;
	if (!p->ok)
		log_error("store: delivery failed: %s", p->error);
	p->cb.delivery(d, p->ctx);
}

static void store_done_expunge(struct store_pending *p)
{
	struct store_expunge *x = p->op.expunge;
	x->result = p->ok ? 0 : -1;
	x->error = p->ok ? NULL : p->reason;
	if (!p->ok) {
		x->expunged = 0;
		x->freed = 0;
		if (strcmp(p->reason, STORE_EXPUNGE_NO_MAILBOX) == 0)
			log_warn("store: expunge: %s", p->error);
		else
			log_error("store: expunge failed: %s", p->error);
	}
	p->cb.expunge(x, p->ctx);
}

static void store_done_append(struct store_pending *p)
{
	struct store_append *a = p->op.append;
	a->result = p->ok ? 0 : -1;
	a->error = p->ok ? NULL : p->reason;
	a->uidvalidity = p->ok ? p->item.append.uidvalidity : 0;
	a->modseq = p->ok ? p->item.append.modseq : 0;
	for (size_t i = 0; i < p->message_count; i++) {
		a->messages[i].uid = p->ok ? p->messages[i].uid : 0;
		a->messages[i].size = p->ok ? p->messages[i].size : 0;
	}
	if (!p->ok)
		store_writer_log(p, "append");
	p->cb.append(a, p->ctx);
}

static void store_done_flags(struct store_pending *p)
{
	struct store_flags *f = p->op.flags;
	f->result = p->ok ? 0 : -1;
	f->error = p->ok ? NULL : p->reason;
	f->modseq = p->ok ? p->item.flags.modseq : 0;
	f->changed = p->ok ? p->item.flags.changed : 0;
	f->modified = p->ok ? p->item.flags.modified : 0;
	if (!p->ok)
		store_writer_log(p, "flags");
	for (size_t i = 0; p->ok && f->entry_cb != NULL && i < p->report.count; i++)
		f->entry_cb(f->entry_ctx, &p->report.v[i]);
	p->cb.flags(f, p->ctx);
}

static void store_done_copy(struct store_pending *p)
{
	struct store_copy *c = p->op.copy;
	size_t count = p->ok ? p->item.copy.count : 0;
	c->result = p->ok ? 0 : -1;
	c->error = p->ok ? NULL : p->reason;
	c->uidvalidity = p->ok ? p->item.copy.uidvalidity : 0;
	c->count = count;
	c->source_uids = NULL;
	c->target_uids = NULL;
	if (count > 0) {
		c->source_uids = xmalloc(count * sizeof(uint32_t));
		c->target_uids = xmalloc(count * sizeof(uint32_t));
		memcpy(c->source_uids, p->map_source, count * sizeof(uint32_t));
		memcpy(c->target_uids, p->map_target, count * sizeof(uint32_t));
	}
	if (!p->ok)
		store_writer_log(p, c->move ? "move" : "copy");
	p->cb.copy(c, p->ctx);
}

static void store_done_mailbox(struct store_pending *p)
{
	struct store_mailbox_op *m = p->op.mailbox;
	m->result = p->ok ? 0 : -1;
	m->error = p->ok ? NULL : p->reason;
	m->expunged = p->ok ? p->item.mailbox.expunged : 0;
	m->freed = p->ok ? p->item.mailbox.freed : 0;
	snprintf(m->mailboxid, sizeof(m->mailboxid), "%s", p->ok ? p->item.mailbox.objectid : "");
	if (!p->ok)
		store_writer_log(p, "mailbox operation");
	p->cb.mailbox(m, p->ctx);
}

static void store_done_queue(struct store_pending *p)
{
	struct store_queue_op *q = p->op.queue;
	const struct store_commit_queue *item = &p->item.queue;
	q->result = p->ok ? 0 : -1;
	q->error = p->ok ? NULL : p->reason;
	q->entries = p->ok ? item->entries : NULL;
	q->count = p->ok ? item->count : 0;
	q->changed = p->ok ? item->changed : 0;
	q->pending = p->ok ? item->pending : 0;
	q->lease_lost = p->ok && item->lease_lost;
	if (!p->ok) {
		store_queue_entries_free(item->entries, item->count);
		store_writer_log(p, "queue operation");
	}
	p->item.queue.entries = NULL;
	p->item.queue.count = 0;
	p->cb.queue(q, p->ctx);
}

/* Did this committed operation add queue entries or make some due? */
static bool store_pending_wakes_queue(const struct store_pending *p)
{
	if (!p->ok)
		return false;
	if (p->item.kind == STORE_OP_DELIVERY)
		return p->op.delivery->remote_count > 0;
	return p->item.kind == STORE_OP_QUEUE && p->item.queue.due;
}

/* After the commit, before the callbacks: wake the delivery engine when the batch queued
 * entries or made some due. */
static void store_writer_queue_hook(struct store *store, struct store_pending **batch, size_t n)
{
	bool wake = false;
	for (size_t i = 0; i < n && !wake; i++)
		wake = store_pending_wakes_queue(batch[i]);
	if (!wake)
		return;
	pthread_mutex_lock(&store->queue_lock);
	store_queue_hook_fn *hook = store->queue_hook;
	void *hook_ctx = store->queue_hook_ctx;
	pthread_mutex_unlock(&store->queue_lock);
	if (hook != NULL)
		hook(hook_ctx);
}

/* Nobody waits for a policy write: a failure is only logged. */
static void store_done_policy(struct store_pending *p)
{
	struct store_commit_policy *item = &p->item.policy;
	if (!p->ok)
		store_writer_log(p, "policy write");
	free(item->triplet);
	for (size_t i = 0; i < item->count; i++)
		free(item->recipients[i]);
	free(item->recipients);
}

static void store_pending_free(struct store_pending *p)
{
	free(p->accounts);
	free(p->mailbox);
	free(p->target);
	free(p->uids);
	free(p->keywords);
	store_summary_free(&p->summary);
	for (size_t i = 0; i < p->message_count; i++) {
		store_summary_free(&p->messages[i].summary);
		free(p->message_keywords[i]);
	}
	free(p->messages);
	free(p->message_keywords);
	store_writer_report_reset(&p->report);
	free(p->report.v);
	free(p->map_source);
	free(p->map_target);
	free(p);
}

/* Report one operation to its caller and free it. */
static void store_writer_done(struct store_pending *p)
{
	switch (p->item.kind) {
	case STORE_OP_DELIVERY:
		store_done_delivery(p);
		break;
	case STORE_OP_EXPUNGE:
		store_done_expunge(p);
		break;
	case STORE_OP_APPEND:
		store_done_append(p);
		break;
	case STORE_OP_FLAGS:
		store_done_flags(p);
		break;
	case STORE_OP_COPY:
		store_done_copy(p);
		break;
	case STORE_OP_MAILBOX:
		store_done_mailbox(p);
		break;
	case STORE_OP_QUEUE:
		store_done_queue(p);
		break;
	case STORE_OP_POLICY:
		store_done_policy(p);
		break;
	}
	store_pending_free(p);
}

static void store_writer_batch(struct store *store, struct store_pending **batch, size_t n,
                               store_summarizer_fn *summarizer, void *summarizer_ctx)
{
	struct store_commit_item *items = xcalloc(n, sizeof(*items));
	struct store_pending **ops = xcalloc(n, sizeof(*ops));
	struct store_doomed doomed = {0};
	struct store_changes changes = {0};
	size_t count = 0;

	pthread_mutex_lock(&store->blob_lock);
	store_writer_place_all(store, batch, n);
	store_writer_summarize(store, summarizer, summarizer_ctx, batch, n);
	for (size_t i = 0; i < n; i++) {
		if (batch[i]->ok) {
			items[count] = batch[i]->item;
			ops[count++] = batch[i];
		}
	}
	store_writer_commit(store, ops, items, count, &doomed, &changes);
	if (count > 0)
		log_debug("store: group commit of %zu operations", count);
	store_writer_doom_failed(batch, n, &doomed);
	pthread_mutex_unlock(&store->blob_lock);
	store_writer_drop_inline(batch, n);

	store_watch_notify(store, &changes);
	store_writer_queue_hook(store, batch, n);
	for (size_t i = 0; i < n; i++)
		store_writer_done(batch[i]);
	store_writer_unlink(store, &doomed);
	store_watch_changes_free(&changes);
	free(doomed.v);
	free(items);
	free(ops);
}

/* With nothing queued (queue_lock held; released while it works): one batch of the search
 * index's backfill (store_set_search_texter()). false when there is none to do. */
static bool store_writer_backfill(struct store *store)
{
	if (store->search_texter == NULL || store->search_backfill_done)
		return false;
	store_search_texter_fn *fn = store->search_texter;
	void *ctx = store->search_texter_ctx;
	size_t max = store->search_texter_max;
	int64_t cursor = store->search_backfill_cursor;
	pthread_mutex_unlock(&store->queue_lock);
	int r = store->v->search_backfill(store, fn, ctx, max, &cursor);
	pthread_mutex_lock(&store->queue_lock);
	if (store->search_texter == fn) { /* not set again meanwhile */
		store->search_backfill_cursor = cursor;
		store->search_backfill_done = r <= 0;
	}
	if (r < 0)
		log_warn("store: search index backfill failed; the rest stays searched from files");
	return true;
}

/* ---- tombstone pruning (between batches, on the writer's connection) ---- */

/* A store_tombstones_prune_wait() waiting for its pass. */
struct store_prune_req {
	struct store_prune_req *next;
	int64_t cutoff;
	size_t limit;
	struct store_prune_result result;
	int ret;
	bool done;
	pthread_cond_t cond;
};

/* Under queue_lock: a periodic pass is due now. */
static bool store_prune_due_locked(const struct store *store, time_t now)
{
	return !store->stopping && store->tombstone_retention > 0 && store->prune_due != 0 &&
	       now >= store->prune_due;
}

/* Under queue_lock: wait for work, a prune request, a due pass or the stop. */
static void store_writer_wait_locked(struct store *store)
{
	while (store->queue_head == NULL && !store->stopping && store->prune_reqs == NULL &&
	       !store_prune_due_locked(store, time(NULL))) {
		if (store_writer_backfill(store))
			continue; /* one batch of the search index's backfill, then look again */
		if (store->tombstone_retention > 0 && store->prune_due != 0) {
			struct timespec ts = {store->prune_due, 0};
			(void)pthread_cond_timedwait(&store->queue_cond, &store->queue_lock, &ts);
		} else {
			pthread_cond_wait(&store->queue_cond, &store->queue_lock);
		}
	}
}

/* The periodic pass (not under queue_lock). */
static void store_writer_prune_periodic(struct store *store, uint64_t retention, unsigned interval)
{
	time_t now = time(NULL);
	struct store_prune_result r;
	int ret = store->v->tombstones_prune(store, (int64_t)now - (int64_t)retention,
	                                     STORE_PRUNE_LIMIT, &r);
	if (ret < 0)
		log_error("store: event=tombstone_prune result=failed (next pass in %u s)",
		          interval);
	else if (r.removed > 0)
		log_info("store: event=tombstone_prune removed=%llu mailboxes=%llu more=%d "
		         "retention=%llu",
		         (unsigned long long)r.removed, (unsigned long long)r.mailboxes,
		         (int)r.more, (unsigned long long)retention);
	pthread_mutex_lock(&store->queue_lock);
	store->prune_due = now + (ret == 0 && r.more ? 1 : (time_t)interval);
	pthread_mutex_unlock(&store->queue_lock);
}

int store_tombstones_prune_wait(struct store *store, int64_t cutoff, size_t limit,
                                struct store_prune_result *result_r)
{
	struct store_prune_req req = {.cutoff = cutoff, .limit = limit};
	pthread_cond_init(&req.cond, NULL);
	pthread_mutex_lock(&store->queue_lock);
	req.next = store->prune_reqs;
	store->prune_reqs = &req;
	pthread_cond_signal(&store->queue_cond);
	while (!req.done)
		pthread_cond_wait(&req.cond, &store->queue_lock);
	pthread_mutex_unlock(&store->queue_lock);
	pthread_cond_destroy(&req.cond);
	*result_r = req.result;
	return req.ret;
}

void store_set_tombstone_retention(struct store *store, uint64_t seconds, unsigned interval)
{
	pthread_mutex_lock(&store->queue_lock);
	store->tombstone_retention = seconds;
	store->prune_interval = interval > 0 ? interval : STORE_PRUNE_INTERVAL;
	if (seconds > 0 && store->prune_due == 0)
		store->prune_due =
		    time(NULL) + (store->prune_interval < STORE_PRUNE_FIRST ? store->prune_interval
		                                                            : STORE_PRUNE_FIRST);
	pthread_cond_signal(&store->queue_cond);
	pthread_mutex_unlock(&store->queue_lock);
}

/* Run the requested passes and a due periodic one; true if there was anything. */
static bool store_writer_prune(struct store *store)
{
	pthread_mutex_lock(&store->queue_lock);
	struct store_prune_req *reqs = store->prune_reqs;
	store->prune_reqs = NULL;
	bool periodic = store_prune_due_locked(store, time(NULL));
	uint64_t retention = store->tombstone_retention;
	unsigned interval = store->prune_interval;
	pthread_mutex_unlock(&store->queue_lock);
	bool requested = reqs != NULL;
	for (struct store_prune_req *q = reqs; q != NULL; q = q->next)
		q->ret = store->v->tombstones_prune(store, q->cutoff, q->limit, &q->result);
	if (periodic)
		store_writer_prune_periodic(store, retention, interval);
	if (requested) {
		pthread_mutex_lock(&store->queue_lock);
		while (reqs != NULL) {
			struct store_prune_req *q = reqs;
			reqs = q->next; /* q lives on its waiter's stack until done */
			q->done = true;
			pthread_cond_signal(&q->cond);
		}
		pthread_mutex_unlock(&store->queue_lock);
	}
	return periodic || requested;
}

static void *store_writer_main(void *arg)
{
	struct store *store = arg;
	struct store_pending *batch[STORE_BATCH_MAX];
	for (;;) {
		size_t n = 0;
		bool pruned = store_writer_prune(store);
		pthread_mutex_lock(&store->queue_lock);
		if (!pruned)
			store_writer_wait_locked(store);
		while (store->queue_head != NULL && n < STORE_BATCH_MAX) {
			batch[n++] = store->queue_head;
			store->queue_head = store->queue_head->next;
		}
		if (store->queue_head == NULL)
			store->queue_tail = NULL;
		store_summarizer_fn *summarizer = store->summarizer;
		void *summarizer_ctx = store->summarizer_ctx;
		bool stop = n == 0 && store->stopping && store->prune_reqs == NULL;
		pthread_mutex_unlock(&store->queue_lock);
		if (n == 0) {
			if (stop)
				break; /* stopping and drained */
			continue;      /* a prune request or a due pass */
		}
		store_writer_batch(store, batch, n, summarizer, summarizer_ctx);
	}
	return NULL;
}

/* ---- queueing ---- */

static struct store_pending *store_pending_new(enum store_op_kind kind, void *ctx,
                                               const char *refuse)
{
	struct store_pending *p = xcalloc(1, sizeof(*p));
	p->item.kind = kind;
	p->ctx = ctx;
	p->ok = true;
	if (refuse != NULL)
		store_pending_refuse(p, refuse);
	return p;
}

static void store_writer_push(struct store *store, struct store_pending *p)
{
	pthread_mutex_lock(&store->queue_lock);
	if (store->queue_tail == NULL)
		store->queue_head = p;
	else
		store->queue_tail->next = p;
	store->queue_tail = p;
	pthread_cond_signal(&store->queue_cond);
	pthread_mutex_unlock(&store->queue_lock);
}

void store_writer_deliver(struct store *store, struct store_delivery *delivery,
                          store_delivery_cb *cb, void *ctx)
{
	struct store_pending *p = store_pending_new(STORE_OP_DELIVERY, ctx, NULL);
	p->op.delivery = delivery;
	p->cb.delivery = cb;
	p->accounts = xcalloc(delivery->account_count, sizeof(uint64_t));
	for (size_t i = 0; i < delivery->account_count; i++) {
		size_t k = 0;
		while (k < p->account_count && p->accounts[k] != delivery->accounts[i])
			k++;
		if (k == p->account_count)
			p->accounts[p->account_count++] = delivery->accounts[i];
	}
	store_writer_push(store, p);
}

static int store_uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Copy uids into p->uids: ascending, distinct, without 0. */
static void store_pending_uids(struct store_pending *p, const uint32_t *uids, size_t count)
{
	p->uids = xcalloc(count == 0 ? 1 : count, sizeof(uint32_t));
	for (size_t i = 0; uids != NULL && i < count; i++) {
		if (uids[i] != 0)
			p->uids[p->uid_count++] = uids[i];
	}
	qsort(p->uids, p->uid_count, sizeof(uint32_t), store_uid_cmp);
	size_t n = 0;
	for (size_t i = 0; i < p->uid_count; i++) {
		if (n == 0 || p->uids[n - 1] != p->uids[i])
			p->uids[n++] = p->uids[i];
	}
	p->uid_count = n;
}

void store_writer_expunge(struct store *store, struct store_expunge *op, const char *mailbox,
                          store_expunge_cb *cb, void *ctx)
{
	struct store_pending *p = store_pending_new(STORE_OP_EXPUNGE, ctx, NULL);
	p->op.expunge = op;
	p->cb.expunge = cb;
	p->mailbox = xstrdup(mailbox);
	store_pending_uids(p, op->uids, op->uid_count);
	p->item.expunge = (struct store_commit_expunge){
	    .account_id = op->account_id,
	    .mailbox = p->mailbox,
	    .uids = p->uids,
	    .uid_count = p->uid_count,
	};
	op->expunged = 0;
	op->freed = 0;
	store_writer_push(store, p);
}

/* The checks of an append that need no database: a refusal reason, or NULL. */
static const char *store_append_check(struct store_pending *p, const struct store_append *op)
{
	if (op->count == 0 || op->messages == NULL)
		return STORE_ERROR_INVALID;
	for (size_t i = 0; i < op->count; i++) {
		const struct store_append_message *m = &op->messages[i];
		if (m->spool_path == NULL)
			return STORE_ERROR_INVALID;
		const char *error = store_mailbox_keywords_join(m->keywords, m->keyword_count,
		                                                &p->message_keywords[i]);
		if (error != NULL)
			return error;
	}
	return NULL;
}

void store_writer_append(struct store *store, struct store_append *op, const char *mailbox,
                         const char *replace, const char *refuse, store_append_cb *cb, void *ctx)
{
	struct store_pending *p = store_pending_new(STORE_OP_APPEND, ctx, refuse);
	int64_t now = (int64_t)time(NULL);
	p->op.append = op;
	p->cb.append = cb;
	p->mailbox = xstrdup(mailbox);
	p->message_count = op->messages == NULL ? 0 : op->count;
	p->messages = xcalloc(p->message_count + 1, sizeof(*p->messages));
	p->message_keywords = xcalloc(p->message_count + 1, sizeof(char *));
	const char *error = store_append_check(p, op);
	if (p->ok && error != NULL)
		store_pending_refuse(p, error);
	for (size_t i = 0; i < p->message_count; i++) {
		const struct store_append_message *m = &op->messages[i];
		p->messages[i] = (struct store_commit_message){
		    .flags = m->flags,
		    .keywords = p->message_keywords[i] == NULL ? "" : p->message_keywords[i],
		    .internal_date = m->internal_date != 0 ? m->internal_date : now,
		    .hdr_from = m->hdr_from,
		    .hdr_subject = m->hdr_subject,
		    .hdr_message_id = m->hdr_message_id,
		};
	}
	p->target = replace != NULL ? xstrdup(replace) : NULL;
	p->item.append = (struct store_commit_append){
	    .account_id = op->account_id,
	    .mailbox = p->mailbox,
	    .messages = p->messages,
	    .count = p->message_count,
	    .replace_mailbox = p->target,
	    .replace_uid = op->replace_uid,
	};
	store_writer_push(store, p);
}

void store_writer_flags(struct store *store, struct store_flags *op, const char *mailbox,
                        const char *refuse, store_flags_cb *cb, void *ctx)
{
	struct store_pending *p = store_pending_new(STORE_OP_FLAGS, ctx, refuse);
	p->op.flags = op;
	p->cb.flags = cb;
	p->mailbox = xstrdup(mailbox);
	store_pending_uids(p, op->uids, op->uid_count);
	const char *error =
	    store_mailbox_keywords_join(op->keywords, op->keyword_count, &p->keywords);
	if (p->ok && error != NULL)
		store_pending_refuse(p, error);
	if (p->ok && op->mode > STORE_FLAGS_REPLACE)
		store_pending_refuse(p, STORE_ERROR_INVALID);
	p->item.flags = (struct store_commit_flags){
	    .account_id = op->account_id,
	    .mailbox = p->mailbox,
	    .uids = p->uids,
	    .uid_count = p->uid_count,
	    .mode = op->mode,
	    .flags = op->flags,
	    .keywords = p->keywords == NULL ? "" : p->keywords,
	    .conditional = op->conditional,
	    .unchanged_since = op->unchanged_since,
	    .report = &p->report,
	};
	store_writer_push(store, p);
}

void store_writer_copy(struct store *store, struct store_copy *op, const char *mailbox,
                       const char *target, const char *refuse, store_copy_cb *cb, void *ctx)
{
	struct store_pending *p = store_pending_new(STORE_OP_COPY, ctx, refuse);
	p->op.copy = op;
	p->cb.copy = cb;
	p->mailbox = xstrdup(mailbox);
	p->target = xstrdup(target);
	store_pending_uids(p, op->uids, op->uid_count);
	p->map_source = xcalloc(p->uid_count + 1, sizeof(uint32_t));
	p->map_target = xcalloc(p->uid_count + 1, sizeof(uint32_t));
	p->item.copy = (struct store_commit_copy){
	    .account_id = op->account_id,
	    .mailbox = p->mailbox,
	    .target = p->target,
	    .uids = p->uids,
	    .uid_count = p->uid_count,
	    .move = op->move,
	    .target_account_id =
	        op->target_account_id != 0 ? op->target_account_id : op->account_id,
	    .source_uids = p->map_source,
	    .target_uids = p->map_target,
	};
	store_writer_push(store, p);
}

void store_writer_mailbox(struct store *store, struct store_mailbox_op *op, const char *name,
                          const char *new_name, const char *refuse, store_mailbox_cb *cb, void *ctx)
{
	struct store_pending *p = store_pending_new(STORE_OP_MAILBOX, ctx, refuse);
	p->op.mailbox = op;
	p->cb.mailbox = cb;
	p->mailbox = xstrdup(name);
	p->target = xstrdup(new_name);
	/* keywords holds the special-use text. */
	p->keywords =
	    op->action == STORE_MAILBOX_CREATE ? store_mailbox_special_dup(op->special_use) : NULL;
	p->item.mailbox = (struct store_commit_mailbox){
	    .action = op->action,
	    .account_id = op->account_id,
	    .name = p->mailbox,
	    .new_name = p->target,
	    .special_use = p->keywords,
	    .metadata = op->metadata,
	    .metadata_count = op->metadata_count,
	    .metadata_max = op->metadata_max,
	    .acl_identifier = op->acl_identifier,
	    .acl_rights = op->acl_rights,
	    .acl_mode = op->acl_mode,
	};
	store_writer_push(store, p);
}

void store_writer_policy(struct store *store, const struct store_commit_policy *item)
{
	struct store_pending *p = store_pending_new(STORE_OP_POLICY, NULL, NULL);
	p->item.policy = *item;
	store_writer_push(store, p);
}

void store_writer_queue(struct store *store, struct store_queue_op *op, const char *refuse,
                        store_queue_cb *cb, void *ctx)
{
	struct store_pending *p = store_pending_new(STORE_OP_QUEUE, ctx, refuse);
	p->op.queue = op;
	p->cb.queue = cb;
	p->item.queue = (struct store_commit_queue){
	    .op = op,
	    .now = op->now != 0 ? op->now : (int64_t)time(NULL),
	    .owner = op->owner == NULL ? "" : op->owner,
	};
	store_writer_push(store, p);
}

/* ---- start and stop ---- */

int store_writer_start(struct store *store, const char **error_r)
{
	int err = pthread_create(&store->writer, NULL, store_writer_main, store);
	if (err != 0) {
		*error_r = store_error_fmt("cannot start writer thread: %s", strerror(err));
		return -1;
	}
	store->writer_started = true;
	return 0;
}

void store_writer_stop(struct store *store)
{
	if (!store->writer_started)
		return;
	pthread_mutex_lock(&store->queue_lock);
	store->stopping = true;
	pthread_cond_broadcast(&store->queue_cond);
	pthread_mutex_unlock(&store->queue_lock);
	pthread_join(store->writer, NULL);
	store->writer_started = false;
}
