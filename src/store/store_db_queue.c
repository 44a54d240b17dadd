/* The outbound queue part of the SQLite backend: the queue rows of a delivery's remote
 * recipients (one entry per destination domain), the writer's side of queue operations
 * (claim under a lease, renew, results, hold, release, flush, delete, unlease), each
 * inside the group commit's transaction, and the reads behind `posthorn queue`. The SQL is
 * kept plain (no SQLite-only constructs where a portable statement does) so that it can
 * move behind a driver interface for PostgreSQL: a claim there would select with
 * FOR UPDATE SKIP LOCKED; here the writer's BEGIN IMMEDIATE already serialises writers of
 * every process, and the lease update re-checks that the lease is free. */
#include "store/store_db.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "store/blob.h"
#include "core/banned.h"

#define SQQ(id) [(id)-SQ_MAILBOX_END]

#define SQQ_LIST_COLUMNS                                                                           \
	"SELECT q.id, q.mail_from, q.domain, m.size, q.created, q.next_attempt, q.attempts,"       \
	" q.held, q.lease_owner, q.lease_until,"                                                   \
	" (SELECT count(*) FROM queue_rcpts r WHERE r.entry_id = q.id),"                           \
	" (SELECT count(*) FROM queue_rcpts r WHERE r.entry_id = q.id AND r.status = 0),"          \
	" coalesce((SELECT r.last_error FROM queue_rcpts r WHERE r.entry_id = q.id"                \
	" AND r.status = 0 AND r.last_error <> '' ORDER BY r.last_attempt DESC, r.id LIMIT 1),"    \
	" '') FROM queue q JOIN messages m ON m.id = q.message_id"

const char *const store_db_queue_sql[SQ_QUEUE_END - SQ_MAILBOX_END] = {
    SQQ(SQ_Q_ENTRY_INSERT) = "INSERT INTO queue (message_id, mail_from, ret, envid, domain,"
                             " created, next_attempt, smtputf8, eightbit, requiretls)"
                             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9) RETURNING id",
    SQQ(SQ_Q_RCPT_INSERT) = "INSERT INTO queue_rcpts (entry_id, address, orcpt, notify)"
                            " VALUES (?1, ?2, ?3, ?4)",
    SQQ(SQ_Q_DUE) = "SELECT id FROM queue WHERE held = 0 AND next_attempt <= ?1"
                    " AND (lease_owner IS NULL OR lease_until <= ?1)"
                    " ORDER BY next_attempt, id LIMIT ?2",
    SQQ(SQ_Q_LEASE) = "UPDATE queue SET lease_owner = ?2, lease_until = ?3 WHERE id = ?1"
                      " AND held = 0 AND (lease_owner IS NULL OR lease_until <= ?4)",
    SQQ(SQ_Q_ENTRY_GET) = "SELECT q.id, m.sha256, m.size, q.mail_from, q.ret, q.envid,"
                          " q.domain, q.created, q.next_attempt, q.attempts, q.held,"
                          " q.delay_warned, q.lease_owner, q.lease_until, q.smtputf8,"
                          " q.eightbit, q.requiretls, m.content, q.message_id FROM queue q"
                          " JOIN messages m ON m.id = q.message_id WHERE q.id = ?1",
    SQQ(SQ_Q_RCPTS) = "SELECT id, address, orcpt, notify, status, last_error, last_attempt,"
                      " remote_mta, enhanced_status FROM queue_rcpts WHERE entry_id = ?1"
                      " AND (?2 = 0 OR status = 0) ORDER BY id",
    SQQ(SQ_Q_LEASE_GET) = "SELECT lease_until, lease_owner FROM queue WHERE id = ?1",
    SQQ(SQ_Q_RENEW) = "UPDATE queue SET lease_until = ?3 WHERE id = ?1 AND lease_owner = ?2",
    SQQ(SQ_Q_RCPT_RESULT) = "UPDATE queue_rcpts SET status = ?3, last_error = ?4,"
                            " remote_mta = ?5, enhanced_status = ?6, last_attempt = ?7"
                            " WHERE id = ?2 AND entry_id = ?1 AND status = 0",
    SQQ(SQ_Q_PENDING) = "SELECT count(*) FROM queue_rcpts WHERE entry_id = ?1 AND status = 0",
    SQQ(SQ_Q_RESCHEDULE) = "UPDATE queue SET attempts = attempts + 1, next_attempt = ?2,"
                           " delay_warned = CASE WHEN ?3 <> 0 THEN 1 ELSE delay_warned END,"
                           " lease_owner = NULL, lease_until = 0 WHERE id = ?1",
    SQQ(SQ_Q_RCPTS_DELETE) = "DELETE FROM queue_rcpts WHERE entry_id = ?1",
    SQQ(SQ_Q_DELETE) = "DELETE FROM queue WHERE id = ?1 RETURNING message_id",
    SQQ(SQ_Q_WARNED) = "UPDATE queue SET delay_warned = 1 WHERE id = ?1",
    SQQ(SQ_Q_FLUSH_ALL) = "UPDATE queue SET next_attempt = ?1 WHERE held = 0",
    SQQ(SQ_Q_FLUSH_ONE) = "UPDATE queue SET next_attempt = ?2 WHERE id = ?1",
    SQQ(SQ_Q_HOLD) = "UPDATE queue SET held = 1 WHERE id = ?1",
    SQQ(SQ_Q_RELEASE) = "UPDATE queue SET held = 0, next_attempt = ?2 WHERE id = ?1",
    SQQ(SQ_Q_UNLEASE) = "UPDATE queue SET lease_owner = NULL, lease_until = 0"
                        " WHERE lease_owner IS NOT NULL"
                        " AND substr(lease_owner, 1, CAST(?2 AS integer)) = ?1",
    SQQ(SQ_Q_LIST) = SQQ_LIST_COLUMNS " ORDER BY q.id",
    SQQ(SQ_Q_LIST_DOMAIN) = SQQ_LIST_COLUMNS " WHERE q.domain = ?1 ORDER BY q.id",
    SQQ(SQ_Q_NEXT_DUE) = "SELECT min(CASE WHEN lease_owner IS NOT NULL"
                         " AND lease_until > next_attempt THEN lease_until"
                         " ELSE next_attempt END) FROM queue WHERE held = 0",
};

/* ---- delivery ---- */

int store_db_queue_deliver(struct sql_conn *c, const struct store_delivery *d, int64_t message_id,
                           int64_t now, const char **error_r)
{
	const char *mail_from = d->mail_from == NULL ? "" : d->mail_from;
	char(*domains)[STORE_ADDRESS_MAX + 1] = xcalloc(d->remote_count + 1, sizeof(*domains));
	int64_t *entries = xcalloc(d->remote_count + 1, sizeof(*entries));
	int ret = 0;
	for (size_t i = 0; ret == 0 && i < d->remote_count; i++) {
		const struct store_remote_dsn *dsn =
		    d->remote_dsn == NULL ? NULL : &d->remote_dsn[i];
		size_t k = 0;
		store_queue_domain(d->remote[i], domains[i]);
		while (k < i && strcmp(domains[k], domains[i]) != 0)
			k++;
		entries[i] = entries[k];
		/* The first recipient of a domain in this delivery opens its entry. */
		if (k == i && sql_int(c, SQ_Q_ENTRY_INSERT, &entries[i], error_r, "isissiiii",
		                      message_id, mail_from, (int64_t)d->ret, d->envid, domains[i],
		                      now, (int64_t)d->smtputf8, (int64_t)d->eightbit,
		                      (int64_t)d->requiretls) != 1)
			ret = -1;
		if (ret == 0 && sql_exec(c, SQ_Q_RCPT_INSERT, error_r, "issi", entries[i],
		                         d->remote[i], dsn == NULL ? NULL : dsn->orcpt,
		                         (int64_t)(dsn == NULL ? 0 : dsn->notify)) < 0)
			ret = -1;
	}
	free(domains);
	free(entries);
	return ret;
}

/* ---- reading entries ---- */

static char *sqq_dup(struct sql_row *st, int col)
{
	const char *s = sql_col_text(st, col);
	return s == NULL ? NULL : xstrdup(s);
}

struct sqq_rcpts {
	struct store_queue_rcpt *v;
	size_t count;
};

static void sqq_rcpt_row(void *ctx, struct sql_row *st)
{
	struct sqq_rcpts *r = ctx;
	r->v = xrealloc(r->v, (r->count + 1) * sizeof(*r->v));
	r->v[r->count++] = (struct store_queue_rcpt){
	    .id = (uint64_t)sql_col_int(st, 0),
	    .address = xstrdup(sql_col_text0(st, 1)),
	    .orcpt = sqq_dup(st, 2),
	    .notify = (unsigned)sql_col_int(st, 3),
	    .status = (enum store_queue_status)sql_col_int(st, 4),
	    .last_error = xstrdup(sql_col_text0(st, 5)),
	    .last_attempt = sql_col_int(st, 6),
	    .remote_mta = xstrdup(sql_col_text0(st, 7)),
	    .enhanced_status = xstrdup(sql_col_text0(st, 8)),
	};
}

/* Read entry id into *e (zeroed first) with its recipients (all, or pending only): 1, 0 no
 * such entry, -1 error. */
static int sqq_entry_read(struct sql_conn *c, const struct store *store, int64_t id,
                          bool pending_only, struct store_queue_entry *e, const char **error_r)
{
	struct sql_row *st;
	*e = (struct store_queue_entry){.fd = -1};
	int rc = sql_step(c, SQ_Q_ENTRY_GET, &st, error_r, "i", id);
	if (rc != SQL_ROW)
		return rc < 0 ? -1 : 0;
	const char *sha = sql_col_text0(st, 1);
	if (!blob_name_valid(sha)) {
		sql_row_done(st);
		*error_r = "queue entry with a bad content address";
		return -1;
	}
	int fd = -1;
	if (!sql_col_null(st, 17)) {
		size_t size;
		const void *body = sql_col_blob(st, 17, &size);
		if ((fd = blob_memfd(body, size, error_r)) < 0) {
			sql_row_done(st);
			return -1;
		}
	}
	int64_t message_id = sql_col_int(st, 18), size = sql_col_int(st, 2);
	bool chunked = fd < 0 && store_db_chunked(store, (uint64_t)size);
	*e = (struct store_queue_entry){
	    .id = (uint64_t)sql_col_int(st, 0),
	    .path = fd < 0 && !chunked ? blob_path_dup(store->messages_dir, sha) : NULL,
	    .fd = fd,
	    .size = (uint64_t)sql_col_int(st, 2),
	    .mail_from = xstrdup(sql_col_text0(st, 3)),
	    .ret = (enum store_dsn_ret)sql_col_int(st, 4),
	    .envid = sqq_dup(st, 5),
	    .domain = xstrdup(sql_col_text0(st, 6)),
	    .created = sql_col_int(st, 7),
	    .next_attempt = sql_col_int(st, 8),
	    .attempts = (unsigned)sql_col_int(st, 9),
	    .held = sql_col_int(st, 10) != 0,
	    .delay_warned = sql_col_int(st, 11) != 0,
	    .lease_owner = sqq_dup(st, 12),
	    .lease_until = sql_col_int(st, 13),
	    .smtputf8 = sql_col_int(st, 14) != 0,
	    .eightbit = sql_col_int(st, 15) != 0,
	    .requiretls = sql_col_int(st, 16) != 0,
	};
	sql_row_done(st);
	/* The entry's reference keeps the message row and its chunks. */
	if (chunked && store_db_chunks_open(c, store->tmp_dir, message_id, (uint64_t)size, NULL,
	                                    &e->fd, error_r) < 1)
		return -1;
	struct sqq_rcpts r = {0};
	if (sql_each(c, SQ_Q_RCPTS, sqq_rcpt_row, &r, "ii", id, (int64_t)(pending_only ? 1 : 0)) <
	    0) {
		*error_r = "database error reading queue recipients";
		e->rcpts = r.v;
		e->rcpt_count = r.count;
		return -1;
	}
	e->rcpts = r.v;
	e->rcpt_count = r.count;
	return 1;
}

/* Append one entry slot to the item's entries and read entry id into it. */
static int sqq_item_read(struct sql_conn *c, const struct store *store,
                         struct store_commit_queue *q, int64_t id, bool pending_only,
                         const char **error_r)
{
	q->entries = xrealloc(q->entries, (q->count + 1) * sizeof(*q->entries));
	int ret = sqq_entry_read(c, store, id, pending_only, &q->entries[q->count], error_r);
	if (ret != 0)
		q->count++; /* a partly read one is freed with the others */
	return ret;
}

/* ---- writer operations ---- */

static void sqq_id_row(void *ctx, struct sql_row *st)
{
	store_db_ids_add(ctx, sql_col_int(st, 0));
}

/* Lease the due entries; an entry whose lease update finds it taken is skipped. */
static int sqq_claim(struct sql_conn *c, const struct store *store, struct store_commit_queue *q,
                     const char **error_r)
{
	const struct store_queue_op *op = q->op;
	struct sq_ids due = {0};
	int64_t max = op->max > (size_t)INT32_MAX ? INT32_MAX : (int64_t)op->max;
	int ret = sql_each(c, SQ_Q_DUE, sqq_id_row, &due, "ii", q->now, max);
	if (ret < 0)
		*error_r = "database error finding due queue entries";
	for (size_t i = 0; ret == 0 && i < due.count; i++) {
		int n = sql_exec(c, SQ_Q_LEASE, error_r, "isii", due.v[i], q->owner,
		                 q->now + (int64_t)op->lease, q->now);
		if (n < 0)
			ret = -1;
		else if (n == 1 && sqq_item_read(c, store, q, due.v[i], true, error_r) < 0)
			ret = -1;
	}
	free(due.v);
	return ret;
}

/* The lease of entry id: 1 with *mine (owner holds it and it has not expired) and *free_r
 * (nobody holds it, or it expired), 0 no such entry, -1 error. */
static int sqq_lease(struct sql_conn *c, const struct store_commit_queue *q, int64_t id,
                     bool *mine_r, bool *free_r, const char **error_r)
{
	struct sql_row *st;
	int rc = sql_step(c, SQ_Q_LEASE_GET, &st, error_r, "i", id);
	if (rc != SQL_ROW)
		return rc < 0 ? -1 : 0;
	const char *owner = sql_col_text(st, 1);
	bool live = owner != NULL && sql_col_int(st, 0) > q->now;
	*mine_r = live && strcmp(owner, q->owner) == 0;
	*free_r = !live;
	sql_row_done(st);
	return 1;
}

/* Remove entry id and its recipients; its message row goes to unref. */
static int sqq_remove(struct sql_conn *c, int64_t id, struct sq_ids *unref, const char **error_r)
{
	int64_t message_id;
	if (sql_exec(c, SQ_Q_RCPTS_DELETE, error_r, "i", id) < 0)
		return -1;
	int ret = sql_int(c, SQ_Q_DELETE, &message_id, error_r, "i", id);
	if (ret == 1)
		store_db_ids_add(unref, message_id);
	return ret < 0 ? -1 : 0;
}

static int sqq_result(struct sql_conn *c, struct store_commit_item *item, struct sq_ids *unref,
                      const char **error_r)
{
	struct store_commit_queue *q = &item->queue;
	const struct store_queue_op *op = q->op;
	int64_t id = (int64_t)op->id, pending;
	bool mine, free_lease;
	int ret = sqq_lease(c, q, id, &mine, &free_lease, error_r);
	if (ret <= 0) {
		if (ret == 0)
			item->refused = STORE_ERROR_NO_ENTRY;
		return ret;
	}
	for (size_t i = 0; i < op->result_count; i++) {
		const struct store_queue_result *r = &op->results[i];
		/* Deferred keeps the status pending with this attempt's outcome. */
		if (sql_exec(c, SQ_Q_RCPT_RESULT, error_r, "iiisssi", id, (int64_t)r->rcpt_id,
		             (int64_t)r->status, r->error == NULL ? "" : r->error,
		             r->remote_mta == NULL ? "" : r->remote_mta,
		             r->enhanced_status == NULL ? "" : r->enhanced_status, q->now) < 0)
			return -1;
	}
	if (sql_int(c, SQ_Q_PENDING, &pending, error_r, "i", id) != 1)
		return -1;
	q->pending = (size_t)pending;
	if (pending == 0)
		return sqq_remove(c, id, unref, error_r);
	q->lease_lost = !mine && !free_lease;
	if (q->lease_lost)
		return 0;
	return sql_exec(c, SQ_Q_RESCHEDULE, error_r, "iii", id, op->next_attempt,
	                (int64_t)(op->delay_warned ? 1 : 0)) < 0
	           ? -1
	           : 0;
}

static int sqq_renew(struct sql_conn *c, struct store_commit_item *item, const char **error_r)
{
	struct store_commit_queue *q = &item->queue;
	bool mine, free_lease;
	int ret = sqq_lease(c, q, (int64_t)q->op->id, &mine, &free_lease, error_r);
	if (ret == 0)
		item->refused = STORE_ERROR_NO_ENTRY;
	if (ret == 1 && !mine)
		item->refused = STORE_ERROR_LEASE_LOST;
	if (ret <= 0 || !mine)
		return ret < 0 ? -1 : 0;
	return sql_exec(c, SQ_Q_RENEW, error_r, "isi", (int64_t)q->op->id, q->owner,
	                q->now + (int64_t)q->op->lease) < 0
	           ? -1
	           : 0;
}

/* An operation on one entry by a plain UPDATE: refused NO_ENTRY when it changed nothing. */
static int sqq_update(struct sql_conn *c, struct store_commit_item *item, enum sq_id id,
                      const char *fmt, const char **error_r)
{
	struct store_commit_queue *q = &item->queue;
	int n = sql_exec(c, id, error_r, fmt, (int64_t)q->op->id, q->now);
	if (n == 0)
		item->refused = STORE_ERROR_NO_ENTRY;
	q->changed = n > 0 ? (size_t)n : 0;
	return n < 0 ? -1 : 0;
}

static int sqq_delete(struct sql_conn *c, const struct store *store, struct store_commit_item *item,
                      struct sq_ids *unref, const char **error_r)
{
	struct store_commit_queue *q = &item->queue;
	int ret = sqq_item_read(c, store, q, (int64_t)q->op->id, false, error_r);
	if (ret == 0)
		item->refused = STORE_ERROR_NO_ENTRY;
	if (ret <= 0)
		return ret;
	return sqq_remove(c, (int64_t)q->op->id, unref, error_r);
}

static int sqq_action(struct sql_conn *c, const struct store *store, struct store_commit_item *item,
                      struct sq_ids *unref, const char **error_r)
{
	struct store_commit_queue *q = &item->queue;
	int n;
	switch (q->op->action) {
	case STORE_QUEUE_CLAIM:
		return sqq_claim(c, store, q, error_r);
	case STORE_QUEUE_RENEW:
		return sqq_renew(c, item, error_r);
	case STORE_QUEUE_RESULT:
		if (store_db_tlsrpt_commit(c, item, error_r) < 0)
			return -1;
		return sqq_result(c, item, unref, error_r);
	case STORE_QUEUE_TLSRPT_DAY:
		return store_db_tlsrpt_commit(c, item, error_r);
	case STORE_QUEUE_DMARC_ADD:
	case STORE_QUEUE_DMARC_DAY:
		return store_db_dmarc_commit(c, item, error_r);
	case STORE_QUEUE_DELAY_WARNED:
		return sqq_update(c, item, SQ_Q_WARNED, "i", error_r);
	case STORE_QUEUE_FLUSH:
		if (q->op->id != 0) {
			q->due = true;
			return sqq_update(c, item, SQ_Q_FLUSH_ONE, "ii", error_r);
		}
		n = sql_exec(c, SQ_Q_FLUSH_ALL, error_r, "i", q->now);
		q->changed = n > 0 ? (size_t)n : 0;
		q->due = n > 0;
		return n < 0 ? -1 : 0;
	case STORE_QUEUE_HOLD:
		return sqq_update(c, item, SQ_Q_HOLD, "i", error_r);
	case STORE_QUEUE_RELEASE:
		q->due = true;
		return sqq_update(c, item, SQ_Q_RELEASE, "ii", error_r);
	case STORE_QUEUE_DELETE:
		return sqq_delete(c, store, item, unref, error_r);
	case STORE_QUEUE_UNLEASE:
		n = sql_exec(c, SQ_Q_UNLEASE, error_r, "si", q->owner, (int64_t)strlen(q->owner));
		q->changed = n > 0 ? (size_t)n : 0;
		q->due = n > 0;
		return n < 0 ? -1 : 0;
	}
	item->refused = STORE_ERROR_INVALID;
	return 0;
}

int store_db_queue_commit(struct sql_conn *c, const struct store *store,
                          struct store_commit_item *item, struct sq_ids *unref,
                          const char **error_r)
{
	struct store_commit_queue *q = &item->queue;
	store_queue_entries_free(q->entries, q->count);
	q->entries = NULL;
	q->count = q->changed = q->pending = 0;
	q->lease_lost = q->due = false;
	item->refused = NULL;
	int ret = sqq_action(c, store, item, unref, error_r);
	if (item->refused != NULL) {
		/* Nothing changed; the writer reports only the refusal. */
		store_queue_entries_free(q->entries, q->count);
		q->entries = NULL;
		q->count = 0;
	}
	return ret;
}

void store_db_queue_rollback(struct store_commit_item *items, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (items[i].kind != STORE_OP_QUEUE)
			continue;
		store_queue_entries_free(items[i].queue.entries, items[i].queue.count);
		items[i].queue.entries = NULL;
		items[i].queue.count = 0;
	}
}

/* ---- reads ---- */

struct sqq_list {
	void (*fn)(void *ctx, const struct store_queue_info *info);
	void *ctx;
};

static void sqq_list_row(void *ctx, struct sql_row *st)
{
	struct sqq_list *l = ctx;
	struct store_queue_info info = {
	    .id = (uint64_t)sql_col_int(st, 0),
	    .mail_from = sql_col_text0(st, 1),
	    .domain = sql_col_text0(st, 2),
	    .size = (uint64_t)sql_col_int(st, 3),
	    .created = sql_col_int(st, 4),
	    .next_attempt = sql_col_int(st, 5),
	    .attempts = (unsigned)sql_col_int(st, 6),
	    .held = sql_col_int(st, 7) != 0,
	    .lease_owner = sql_col_text(st, 8),
	    .lease_until = sql_col_int(st, 9),
	    .rcpts = (unsigned)sql_col_int(st, 10),
	    .pending = (unsigned)sql_col_int(st, 11),
	    .last_error = sql_col_text0(st, 12),
	};
	l->fn(l->ctx, &info);
}

int store_db_queue_list(struct store *store, const char *domain,
                        void (*fn)(void *ctx, const struct store_queue_info *info), void *ctx)
{
	struct sql_conn *c = store_db_reader(store);
	struct sqq_list l = {fn, ctx};
	if (c == NULL)
		return -1;
	if (domain == NULL)
		return sql_each(c, SQ_Q_LIST, sqq_list_row, &l, "");
	return sql_each(c, SQ_Q_LIST_DOMAIN, sqq_list_row, &l, "s", domain);
}

int store_db_queue_show(struct store *store, uint64_t id, struct store_queue_entry **entry_r)
{
	struct sql_conn *c = store_db_reader(store);
	const char *error;
	int started = c == NULL ? -1 : store_db_read_begin(c);
	if (started < 0)
		return -1;
	struct store_queue_entry *e = xcalloc(1, sizeof(*e));
	int ret = sqq_entry_read(c, store, (int64_t)id, false, e, &error);
	ret = store_db_read_end(c, started, ret);
	if (ret == 1)
		*entry_r = e;
	else
		store_queue_entries_free(e, 1);
	return ret;
}

int store_db_queue_next_due(struct store *store, int64_t *when_r)
{
	struct sql_conn *c = store_db_reader(store);
	struct sql_row *st;
	int rc = c == NULL ? -1 : sql_step(c, SQ_Q_NEXT_DUE, &st, NULL, "");
	if (rc != SQL_ROW)
		return rc < 0 ? -1 : 0;
	int ret = sql_col_null(st, 0) ? 0 : 1;
	if (ret == 1)
		*when_r = sql_col_int(st, 0);
	sql_row_done(st);
	return ret;
}
