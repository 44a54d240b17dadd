/* The store's writer thread: one queue of deliveries and expunges, taken in batches of up to
 * STORE_BATCH_MAX. A batch's message files are placed at their content addresses and their
 * directories fsynced once; then every operation commits in one transaction in queue order
 * (group commit). Files whose last reference went are unlinked only after that commit, and
 * only while blob_lock is still held, so no delivery can be reusing them. */
#include "store/store_private.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "store/blob.h"
#include "core/banned.h"

/* An operation waiting for (or inside) a group commit. */
struct store_pending {
	struct store_pending *next;
	struct store_commit_item item; /* kind; delivery fields once placed */
	void *ctx;
	bool placed; /* delivery: its file is at its content address */
	bool ok;     /* still going to succeed: placed / committed */
	/* When not ok: a static reason for the caller (who may read it after the callback,
	 * from another thread) and the details for the log. */
	const char *reason;
	char error[STORE_ERROR_MAX];

	/* STORE_OP_DELIVERY */
	struct store_delivery *delivery;
	store_delivery_cb *delivery_cb;
	uint64_t *accounts; /* deduplicated copy */
	size_t account_count;

	/* STORE_OP_EXPUNGE */
	struct store_expunge *expunge;
	store_expunge_cb *expunge_cb;
	char *mailbox;
	uint32_t *uids; /* ascending, distinct, non-zero copy */
	size_t uid_count;
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

/* ---- deliveries: placing files ---- */

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
	const struct store_delivery *d = p->delivery;
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
	}
	return 0;
}

/* Check one delivery and move its file to its content address. The spool file is gone
 * afterwards either way. */
static void store_writer_place(struct store *store, struct store_pending *p,
                               bool dirty[BLOB_FANOUT_COUNT], bool *top_dirty)
{
	struct store_commit_delivery *item = &p->item.delivery;
	const char *error, *reason;
	bool created = false;
	int ret = store_delivery_check(p, &error);
	reason = error; /* the checks' messages are static */
	if (ret == 0) {
		ret = blob_store(store->messages_dir, p->delivery->spool_path, item->sha256,
		                 &item->size, &created, &error);
		reason = STORE_WRITER_FILE_FAILED;
	}
	if (ret < 0) {
		store_pending_fail(p, reason, error);
		if (p->delivery->spool_path != NULL && unlink(p->delivery->spool_path) < 0 &&
		    errno != ENOENT)
			log_warn("store: unlink %s: %s", p->delivery->spool_path, strerror(errno));
		return;
	}
	item->delivery = p->delivery;
	item->accounts = p->accounts;
	item->account_count = p->account_count;
	dirty[blob_fanout_index(item->sha256)] = true;
	*top_dirty = *top_dirty || created;
	p->placed = true;
}

/* Make the renames of this batch durable: one fsync per touched directory. */
static int store_writer_sync(struct store *store, const bool dirty[BLOB_FANOUT_COUNT],
                             bool top_dirty, const char **error_r)
{
	if (top_dirty && blob_sync_dir(store->messages_dir, error_r) < 0)
		return -1;
	for (unsigned i = 0; i < BLOB_FANOUT_COUNT; i++) {
		if (dirty[i] && blob_sync_fanout(store->messages_dir, i, error_r) < 0)
			return -1;
	}
	return 0;
}

/* Place every delivery's file and sync the directories; a delivery that fails here is
 * marked not ok. */
static void store_writer_place_all(struct store *store, struct store_pending **batch, size_t n)
{
	bool dirty[BLOB_FANOUT_COUNT] = {false};
	bool top_dirty = false, any = false;
	const char *error;
	for (size_t i = 0; i < n; i++) {
		if (batch[i]->item.kind == STORE_OP_DELIVERY) {
			store_writer_place(store, batch[i], dirty, &top_dirty);
			any = any || batch[i]->placed;
		}
	}
	if (!any || store_writer_sync(store, dirty, top_dirty, &error) == 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (batch[i]->placed)
			store_pending_fail(batch[i], STORE_WRITER_FILE_FAILED, error);
	}
}

/* ---- commit ---- */

/* A commit that included this item succeeded. */
static void store_writer_committed(struct store_pending *p, const struct store_commit_item *item)
{
	if (item->kind != STORE_OP_EXPUNGE)
		return;
	if (item->expunge.no_mailbox) {
		snprintf(p->error, sizeof(p->error), "no such mailbox \"%s\" for account %" PRIu64,
		         p->mailbox, p->expunge->account_id);
		p->reason = STORE_EXPUNGE_NO_MAILBOX;
		p->ok = false;
		return;
	}
	p->expunge->expunged = item->expunge.expunged;
	p->expunge->freed = item->expunge.freed;
}

/* Commit the operations in one transaction; when that fails, each one alone so one bad
 * delivery (say, an account deleted meanwhile) does not fail the others. An operation that
 * still fails is marked not ok. */
static void store_writer_commit(struct store *store, struct store_pending **ops,
                                struct store_commit_item *items, size_t count,
                                struct store_doomed *doomed)
{
	const char *error;
	if (count == 0)
		return;
	if (store->v->commit(store, items, count, store_doomed_add, doomed, &error) == 0) {
		for (size_t i = 0; i < count; i++)
			store_writer_committed(ops[i], &items[i]);
		return;
	}
	if (count == 1) {
		store_pending_fail(ops[0],
		                   ops[0]->item.kind == STORE_OP_EXPUNGE ? STORE_EXPUNGE_FAILED
		                                                         : STORE_WRITER_DB_FAILED,
		                   error);
		return;
	}
	log_warn("store: group commit of %zu operations failed (%s), retrying one by one", count,
	         error);
	for (size_t i = 0; i < count; i++)
		store_writer_commit(store, &ops[i], &items[i], 1, doomed);
}

/* Unlink the doomed files that no message row references now (blob_lock held, every
 * commit of the batch done). When in doubt the file stays: store_open() removes orphans. */
static void store_writer_unlink(struct store *store, struct store_pending **batch, size_t n,
                                struct store_doomed *doomed)
{
	for (size_t i = 0; i < n; i++) {
		if (batch[i]->placed && !batch[i]->ok)
			store_doomed_add(doomed, batch[i]->item.delivery.sha256);
	}
	for (size_t i = 0; i < doomed->count; i++) {
		if (store->v->message_exists(store, doomed->v[i]) == 0)
			(void)blob_unlink(store->messages_dir, doomed->v[i]);
	}
}

/* Report one operation to its caller and free it. */
static void store_writer_done(struct store_pending *p)
{
	if (p->item.kind == STORE_OP_DELIVERY) {
		struct store_delivery *d = p->delivery;
		d->result = p->ok ? 0 : -1;
		d->error = p->ok ? NULL : p->reason;
		d->size = p->ok ? p->item.delivery.size : 0;
		if (!p->ok)
			log_error("store: delivery failed: %s", p->error);
		p->delivery_cb(d, p->ctx);
	} else {
		struct store_expunge *x = p->expunge;
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
		p->expunge_cb(x, p->ctx);
	}
	free(p->accounts);
	free(p->mailbox);
	free(p->uids);
	free(p);
}

static void store_writer_batch(struct store *store, struct store_pending **batch, size_t n)
{
	struct store_commit_item *items = xcalloc(n, sizeof(*items));
	struct store_pending **ops = xcalloc(n, sizeof(*ops));
	struct store_doomed doomed = {0};
	size_t count = 0;

	pthread_mutex_lock(&store->blob_lock);
	store_writer_place_all(store, batch, n);
	for (size_t i = 0; i < n; i++) {
		if (batch[i]->ok) {
			items[count] = batch[i]->item;
			ops[count++] = batch[i];
		}
	}
	store_writer_commit(store, ops, items, count, &doomed);
	if (count > 0)
		log_debug("store: group commit of %zu operations", count);
	store_writer_unlink(store, batch, n, &doomed);
	pthread_mutex_unlock(&store->blob_lock);

	for (size_t i = 0; i < n; i++)
		store_writer_done(batch[i]);
	free(doomed.v);
	free(items);
	free(ops);
}

static void *store_writer_main(void *arg)
{
	struct store *store = arg;
	struct store_pending *batch[STORE_BATCH_MAX];
	for (;;) {
		size_t n = 0;
		pthread_mutex_lock(&store->queue_lock);
		while (store->queue_head == NULL && !store->stopping)
			pthread_cond_wait(&store->queue_cond, &store->queue_lock);
		while (store->queue_head != NULL && n < STORE_BATCH_MAX) {
			batch[n++] = store->queue_head;
			store->queue_head = store->queue_head->next;
		}
		if (store->queue_head == NULL)
			store->queue_tail = NULL;
		pthread_mutex_unlock(&store->queue_lock);
		if (n == 0)
			break; /* stopping and drained */
		store_writer_batch(store, batch, n);
	}
	return NULL;
}

/* ---- queueing ---- */

static void store_writer_push(struct store *store, struct store_pending *p)
{
	p->ok = true;
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
	struct store_pending *p = xcalloc(1, sizeof(*p));
	p->item.kind = STORE_OP_DELIVERY;
	p->delivery = delivery;
	p->delivery_cb = cb;
	p->ctx = ctx;
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

void store_writer_expunge(struct store *store, struct store_expunge *op, const char *mailbox,
                          store_expunge_cb *cb, void *ctx)
{
	struct store_pending *p = xcalloc(1, sizeof(*p));
	p->item.kind = STORE_OP_EXPUNGE;
	p->expunge = op;
	p->expunge_cb = cb;
	p->ctx = ctx;
	p->mailbox = xstrdup(mailbox);
	p->uids = xcalloc(op->uid_count == 0 ? 1 : op->uid_count, sizeof(uint32_t));
	for (size_t i = 0; op->uids != NULL && i < op->uid_count; i++) {
		if (op->uids[i] != 0)
			p->uids[p->uid_count++] = op->uids[i];
	}
	qsort(p->uids, p->uid_count, sizeof(uint32_t), store_uid_cmp);
	size_t n = 0;
	for (size_t i = 0; i < p->uid_count; i++) {
		if (n == 0 || p->uids[n - 1] != p->uids[i])
			p->uids[n++] = p->uids[i];
	}
	p->uid_count = n;
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
