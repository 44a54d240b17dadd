/* IMAP METADATA entries (RFC 5464) in the metadata table: the writer's side of SETMETADATA
 * (inside the group commit's transaction, under the item's savepoint, so that a refused
 * one leaves no trace) and the read behind GETMETADATA. A mailbox's entries hang on its
 * row (they follow a RENAME and go with a DELETE, ON DELETE CASCADE); the account's server
 * entries have no mailbox (mailbox_id NULL, written 0 in the statements' coalesce()). */
#include "store/store_db.h"

#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "core/banned.h"

#define SQD(id) [(id)-SQ_CHUNKS_END]

const char *const store_db_metadata_sql[SQ_METADATA_END - SQ_CHUNKS_END] = {
    SQD(SQ_MD_DELETE) = "DELETE FROM metadata WHERE account_id = ?1"
                        " AND coalesce(mailbox_id, 0) = ?2 AND name = ?3",
    SQD(SQ_MD_INSERT) = "INSERT INTO metadata (account_id, mailbox_id, name, value)"
                        " VALUES (?1, nullif(?2, 0), ?3, ?4)",
    SQD(SQ_MD_COUNT) = "SELECT count(*) FROM metadata WHERE account_id = ?1",
    /* The entry ?3 and, when ?4 is not 0, every name from "?3/" up to "?30" ('0' follows
     * '/'): the entries below it, a range of the unique index. */
    SQD(SQ_MD_GET) = "SELECT name, value FROM metadata WHERE account_id = ?1"
                     " AND coalesce(mailbox_id, 0) = ?2"
                     " AND (name = ?3 OR (?4 <> 0 AND name > ?5 AND name < ?6)) ORDER BY name",
};

/* The mailbox's row id, or 0 for the server entries: 1, 0 no such mailbox, -1. */
static int sqd_mailbox(struct sql_conn *c, uint64_t account_id, const char *mailbox, int64_t *id_r,
                       const char **error_r)
{
	*id_r = 0;
	if (mailbox[0] == '\0')
		return 1;
	return sql_int(c, SQ_MAILBOX_ID, id_r, error_r, "is", (int64_t)account_id, mailbox);
}

/* One record per entry for account watches (IMAP NOTIFY's metadata events). */
static void sqd_changed(const struct store_commit_mailbox *m, struct store_changes *changes)
{
	for (size_t i = 0; i < m->metadata_count; i++)
		store_watch_changed_kind(changes, m->account_id, m->name, STORE_CHANGE_METADATA,
		                         m->metadata[i].name);
}

int store_db_metadata_commit(struct sql_conn *c, struct store_commit_item *item,
                             struct store_changes *changes, const char **error_r)
{
	const struct store_commit_mailbox *m = &item->mailbox;
	int64_t mailbox_id, count, dummy;
	int ret = sqd_mailbox(c, m->account_id, m->name, &mailbox_id, error_r);
	if (ret == 1 && m->name[0] == '\0')
		ret = sql_int(c, SQ_ACCOUNT_USAGE, &dummy, error_r, "i", (int64_t)m->account_id);
	if (ret <= 0) {
		item->refused = ret < 0              ? NULL
		                : m->name[0] == '\0' ? STORE_ERROR_INVALID
		                                     : STORE_ERROR_NO_MAILBOX;
		return ret;
	}
	bool added = false;
	for (size_t i = 0; i < m->metadata_count; i++) {
		const struct store_metadata_entry *e = &m->metadata[i];
		if (sql_exec(c, SQ_MD_DELETE, error_r, "iis", (int64_t)m->account_id, mailbox_id,
		             e->name) < 0)
			return -1;
		if (e->value == NULL)
			continue;
		/* A zero-length value is a value (RFC 5464 §4.3: only NIL removes). */
		if (sql_exec(c, SQ_MD_INSERT, error_r, "iisb", (int64_t)m->account_id, mailbox_id,
		             e->name, e->size > 0 ? e->value : "", e->size) < 0)
			return -1;
		added = true;
	}
	if (!added) {
		sqd_changed(m, changes);
		return 0;
	}
	if (sql_int(c, SQ_MD_COUNT, &count, error_r, "i", (int64_t)m->account_id) < 0)
		return -1;
	if (m->metadata_max > 0 && count > (int64_t)m->metadata_max)
		item->refused = STORE_ERROR_METADATA_TOOMANY;
	else
		sqd_changed(m, changes);
	return 0;
}

struct sqd_get {
	void (*cb)(void *ctx, const char *name, const void *value, size_t size);
	void *ctx;
	size_t prefix; /* strlen(name) + 1: where a child's own part starts */
	int depth;
};

static void sqd_row(void *ctx, struct sql_row *st)
{
	struct sqd_get *g = ctx;
	const char *name = sql_col_text0(st, 0);
	/* DEPTH 1: the children, not their descendants. */
	if (g->depth == 1 && strlen(name) > g->prefix && strchr(name + g->prefix, '/') != NULL)
		return;
	size_t size = 0;
	const void *value = sql_col_blob(st, 1, &size);
	g->cb(g->ctx, name, value != NULL ? value : "", size);
}

int store_db_metadata_get(struct store *store, uint64_t account_id, const char *mailbox,
                          const char *name, int depth,
                          void (*cb)(void *ctx, const char *name, const void *value, size_t size),
                          void *ctx)
{
	struct sql_conn *c = store_db_reader(store);
	int started = c == NULL ? -1 : store_db_read_begin(c);
	if (started < 0)
		return -1;
	int64_t mailbox_id;
	int ret = sqd_mailbox(c, account_id, mailbox, &mailbox_id, NULL);
	if (ret == 1) {
		size_t len = strlen(name);
		char *below = xmalloc(len + 2), *after = xmalloc(len + 2);
		memcpy(below, name, len);
		memcpy(after, name, len);
		below[len] = '/';
		after[len] = '0';
		below[len + 1] = after[len + 1] = '\0';
		struct sqd_get g = {cb, ctx, len + 1, depth};
		if (sql_each(c, SQ_MD_GET, sqd_row, &g, "iisiss", (int64_t)account_id, mailbox_id,
		             name, (int64_t)(depth != 0), below, after) < 0)
			ret = -1;
		free(below);
		free(after);
	}
	return store_db_read_end(c, started, ret);
}
