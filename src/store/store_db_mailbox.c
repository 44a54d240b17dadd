/* The IMAP part of the SQLite backend: the writer's side of appends, flag changes, copies
 * and moves, and mailbox creation, deletion, renaming and subscriptions (each inside the
 * group commit's transaction, under a savepoint so that a refused one leaves no trace), and
 * the reads behind LIST, STATUS, changes since a MODSEQ and the cached IMAP texts. Names
 * arrive validated and normalised from store_mailbox.c; keyword lists are handled by its
 * store_mailbox_kw_*() functions. */
#include "store/store_db.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/fault.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

#define SQM(id) [(id)-SQ_CORE_COUNT]

const char *const store_db_mailbox_sql[SQ_MAILBOX_END - SQ_CORE_COUNT] = {
    SQM(SQ_SAVEPOINT) = "SAVEPOINT item",
    SQM(SQ_RELEASE) = "RELEASE item",
    SQM(SQ_ROLLBACK_TO) = "ROLLBACK TO item",
    SQM(SQ_MB_GET) = "SELECT id, uidvalidity, uidnext, highestmodseq, keywords FROM mailboxes"
                     " WHERE account_id = ?1 AND name = ?2",
    SQM(SQ_MB_COUNT) = "SELECT count(*) FROM mailboxes WHERE account_id = ?1",
    SQM(SQ_MB_INSERT) = "INSERT INTO mailboxes (account_id, name, special_use, uidvalidity,"
                        " uidnext, highestmodseq, keywords, objectid)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
    SQM(SQ_MB_DELETE) = "DELETE FROM mailboxes WHERE id = ?1",
    SQM(SQ_MB_REFS) = "SELECT e.message_id, m.size FROM mailbox_entries e"
                      " JOIN messages m ON m.id = e.message_id WHERE e.mailbox_id = ?1",
    /* Every name starting with "parent/": from "parent/" up to "parent0" ('0' follows '/'),
     * a range of the (account_id, name) index. */
    SQM(SQ_MB_CHILDREN) = "SELECT id, name, highestmodseq FROM mailboxes"
                          " WHERE account_id = ?1 AND name > ?2 AND name < ?3 ORDER BY name",
    SQM(SQ_MB_SET_NAME) = "UPDATE mailboxes SET name = ?2 WHERE id = ?1",
    SQM(SQ_MB_ALLOC) = "UPDATE mailboxes SET uidnext = uidnext + ?2,"
                       " highestmodseq = highestmodseq + 1 WHERE id = ?1"
                       " RETURNING uidnext - ?2, highestmodseq",
    SQM(SQ_MB_SET_KEYWORDS) = "UPDATE mailboxes SET keywords = ?2 WHERE id = ?1",
    SQM(SQ_MB_TOMBSTONE_ALL) = "INSERT INTO expunged (mailbox_id, uid, modseq, expunged_at)"
                               " SELECT ?1, uid, ?2, ?3 FROM mailbox_entries WHERE mailbox_id = ?1"
                               " ON CONFLICT (mailbox_id, uid) DO UPDATE"
                               " SET modseq = excluded.modseq, expunged_at = excluded.expunged_at",
    SQM(SQ_MB_MOVE_ALL) = "UPDATE mailbox_entries SET mailbox_id = ?2 WHERE mailbox_id = ?1",
    SQM(SQ_MB_LIST) = "SELECT name, special_use FROM mailboxes WHERE account_id = ?1",
    SQM(SQ_MB_STATS) =
        "SELECT b.uidvalidity, b.uidnext, b.highestmodseq, count(e.uid),"
        " coalesce(sum(CASE WHEN (e.flags & ?3) = 0 THEN 1 ELSE 0 END), 0),"
        " coalesce(sum(CASE WHEN (e.flags & ?4) <> 0 THEN 1 ELSE 0 END), 0),"
        " coalesce(sum(m.size), 0),"
        " coalesce(sum(CASE WHEN (e.flags & ?4) <> 0 THEN m.size ELSE 0 END), 0),"
        " b.objectid FROM mailboxes b LEFT JOIN mailbox_entries e ON e.mailbox_id = b.id"
        " LEFT JOIN messages m ON m.id = e.message_id"
        " WHERE b.account_id = ?1 AND b.name = ?2 GROUP BY b.id, b.objectid",
    SQM(SQ_MB_RECENT_FIRST) = "SELECT b.uidvalidity, CASE WHEN b.uidvalidity > ?4 THEN 1"
                              " ELSE coalesce((SELECT min(e.uid) FROM mailbox_entries e"
                              " WHERE e.mailbox_id = b.id AND e.id > ?3), b.uidnext) END"
                              " FROM mailboxes b WHERE b.account_id = ?1 AND b.name = ?2",
    SQM(SQ_MB_COUNT_FROM) = "SELECT count(e.uid) FROM mailboxes b LEFT JOIN mailbox_entries e"
                            " ON e.mailbox_id = b.id AND e.uid >= ?3"
                            " WHERE b.account_id = ?1 AND b.name = ?2 GROUP BY b.id",
    SQM(SQ_MB_KEYWORDS) = "SELECT keywords FROM mailboxes WHERE account_id = ?1 AND name = ?2",
    SQM(SQ_MB_CHANGED) = "SELECT e.uid, m.size, e.internal_date, e.flags, e.modseq, e.keywords,"
                         " coalesce(e.save_date, e.internal_date) FROM mailbox_entries e JOIN "
                         "messages m ON m.id = e.message_id"
                         " WHERE e.mailbox_id = ?1 AND e.modseq > ?2 ORDER BY e.uid",
    SQM(SQ_MB_EXPUNGED) = "SELECT uid, modseq FROM expunged WHERE mailbox_id = ?1"
                          " AND modseq > ?2 ORDER BY uid",
    SQM(SQ_MB_SUMMARY) = "SELECT m.envelope, m.body, m.bodystructure FROM mailbox_entries e"
                         " JOIN messages m ON m.id = e.message_id"
                         " JOIN mailboxes b ON b.id = e.mailbox_id"
                         " WHERE b.account_id = ?1 AND b.name = ?2 AND e.uid = ?3",
    SQM(SQ_SUB_LIST) = "SELECT name FROM subscriptions WHERE account_id = ?1",
    SQM(SQ_SUB_INSERT) = "INSERT INTO subscriptions (account_id, name) VALUES (?1, ?2)"
                         " ON CONFLICT (account_id, name) DO NOTHING",
    SQM(SQ_SUB_DELETE) = "DELETE FROM subscriptions WHERE account_id = ?1 AND name = ?2",
    SQM(SQ_SUB_COUNT) = "SELECT count(*) FROM subscriptions WHERE account_id = ?1",
    SQM(SQ_SUB_EXISTS) = "SELECT 1 FROM subscriptions WHERE account_id = ?1 AND name = ?2",
    SQM(SQ_ENTRY_FLAGS) = "SELECT flags, keywords, modseq FROM mailbox_entries"
                          " WHERE mailbox_id = ?1 AND uid = ?2",
    SQM(SQ_ENTRY_SET_FLAGS) = "UPDATE mailbox_entries SET flags = ?3, keywords = ?4,"
                              " modseq = ?5 WHERE mailbox_id = ?1 AND uid = ?2",
    SQM(SQ_ENTRY_SOURCE) = "SELECT e.message_id, e.flags, e.keywords, e.internal_date, m.size"
                           " FROM mailbox_entries e JOIN messages m ON m.id = e.message_id"
                           " WHERE e.mailbox_id = ?1 AND e.uid = ?2",
    SQM(SQ_ENTRY_INSERT_FULL) = "INSERT INTO mailbox_entries (mailbox_id, uid, message_id,"
                                " flags, keywords, modseq, internal_date, save_date)"
                                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    SQM(SQ_MB_OBJECTID) = "SELECT objectid FROM mailboxes WHERE account_id = ?1 AND name = ?2",
    /* EMAILID (RFC 8474): "M" and the content address. */
    SQM(SQ_MB_OBJECTS) = "SELECT m.sha256, coalesce(e.save_date, e.internal_date), m.preview"
                         " FROM mailbox_entries e JOIN messages m ON m.id = e.message_id"
                         " JOIN mailboxes b ON b.id = e.mailbox_id"
                         " WHERE b.account_id = ?1 AND b.name = ?2 AND e.uid = ?3",
    SQM(SQ_MB_EMAILID_UIDS) = "SELECT e.uid FROM mailbox_entries e"
                              " JOIN messages m ON m.id = e.message_id"
                              " WHERE e.mailbox_id = ?1 AND m.sha256 = ?2 ORDER BY e.uid",
    /* The search index (store.h). ?2 a needle, ?3 1: body texts only. LIKE with the
     * needle's \\, % and _ escaped is exact on these texts: they and the needle are
     * case-folded, so SQLite's ASCII-insensitive LIKE finds what PostgreSQL's does. On
     * PostgreSQL the pg_trgm indexes (where present) serve it; on SQLite INDEXED has a
     * replacement (sql_sqlite_schema.c) that first narrows by the FTS5 trigram index
     * (needles of 3 characters or more). */
    SQM(SQ_MB_SEARCH_INSERT) = "INSERT INTO search_texts (message_id, complete, hdr, body)"
                               " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (message_id) DO NOTHING",
    SQM(SQ_MB_SEARCH_INDEXED) = STORE_DB_SEARCH_SELECT STORE_DB_SEARCH_MATCH,
    SQM(SQ_MB_SEARCH_SCAN) = STORE_DB_SEARCH_SELECT STORE_DB_SEARCH_MATCH,
    /* The backfill (store_db_search_backfill()): contents without a row, by id. */
    SQM(SQ_MB_SEARCH_PENDING) = "SELECT m.id FROM messages m WHERE m.id > ?1 AND m.id <= ?2"
                                " AND NOT EXISTS (SELECT 1 FROM search_texts t"
                                " WHERE t.message_id = m.id AND (t.complete <> 1"
                                " OR substr(t.hdr, 1, 1) = '\n')) ORDER BY m.id LIMIT ?3",
    SQM(SQ_MB_SEARCH_BEYOND) = "SELECT id FROM messages WHERE id > ?1 ORDER BY id LIMIT 1",
    SQM(SQ_MB_SEARCH_CONTENT) = "SELECT sha256, size, content, id FROM messages WHERE id = ?1",
    SQM(SQ_MB_SEARCH_BACKFILL) = "INSERT INTO search_texts (message_id, complete, hdr, body)"
                                 " SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM messages"
                                 " WHERE id = ?1) ON CONFLICT (message_id) DO NOTHING",
    /* Header keys from the stored header lines (store_search_hdr_each()); SQLite's
     * SQ_MB_SEARCH_HDR_INDEXED narrows by FTS5 first, as SQ_MB_SEARCH_INDEXED. */
    SQM(SQ_MB_SEARCH_HDR_ALL) = STORE_DB_SEARCH_HDR_SELECT " ORDER BY e.uid",
    SQM(SQ_MB_SEARCH_HDR_SCAN) = STORE_DB_SEARCH_HDR_SELECT STORE_DB_SEARCH_HDR_MATCH,
    SQM(SQ_MB_SEARCH_HDR_INDEXED) = STORE_DB_SEARCH_HDR_SELECT STORE_DB_SEARCH_HDR_MATCH,
    SQM(SQ_MB_SEARCH_HDR_UNINDEXED) =
        "SELECT e.uid FROM mailbox_entries e LEFT JOIN search_texts t"
        " ON t.message_id = e.message_id WHERE e.mailbox_id = ?1 AND (t.complete IS NULL"
        " OR t.complete <> 1 OR substr(t.hdr, 1, 1) <> '\n'"
        " OR substr(t.hdr, 1, 3) = '\n\n\n') ORDER BY e.uid",
    /* The backfill makes a row again whose header lines do not begin with LF (stored
     * before they held the message's fields apart): the old row goes first, so that
     * the FTS5 triggers see a delete and an insert. */
    SQM(SQ_MB_SEARCH_REDO) = "DELETE FROM search_texts WHERE message_id = ?1 AND complete = 1"
                             " AND substr(hdr, 1, 1) <> '\n'",
    SQM(SQ_MB_SEARCH_UNINDEXED) = "SELECT e.uid FROM mailbox_entries e LEFT JOIN search_texts t"
                                  " ON t.message_id = e.message_id WHERE e.mailbox_id = ?1"
                                  " AND (t.complete IS NULL OR t.complete <> 1) ORDER BY e.uid",
};

/* The system flags the store keeps. */
#define SQM_FLAGS_ALL                                                                              \
	(STORE_FLAG_SEEN | STORE_FLAG_ANSWERED | STORE_FLAG_FLAGGED | STORE_FLAG_DELETED |         \
	 STORE_FLAG_DRAFT)

/* One mailbox row. */
struct sqm_mailbox {
	int64_t id;
	int64_t uidvalidity;
	int64_t uidnext;
	int64_t highestmodseq;
	char *keywords; /* malloc'd */
};

/* 1 with *mb filled (free mb->keywords), 0 no such mailbox, -1 error. */
static int sqm_get(struct sql_conn *c, uint64_t account_id, const char *name,
                   struct sqm_mailbox *mb, const char **error_r)
{
	struct sql_row *st;
	int rc = sql_step(c, SQ_MB_GET, &st, error_r, "is", (int64_t)account_id, name);
	if (rc != SQL_ROW)
		return rc < 0 ? -1 : 0;
	mb->id = sql_col_int(st, 0);
	mb->uidvalidity = sql_col_int(st, 1);
	mb->uidnext = sql_col_int(st, 2);
	mb->highestmodseq = sql_col_int(st, 3);
	mb->keywords = xstrdup(sql_col_text0(st, 4));
	sql_row_done(st);
	return 1;
}

/* The id of a mailbox: 1, 0 none, -1. */
static int sqm_id(struct sql_conn *c, uint64_t account_id, const char *name, int64_t *id_r,
                  const char **error_r)
{
	return sql_int(c, SQ_MAILBOX_ID, id_r, error_r, "is", (int64_t)account_id, name);
}

/* Raise a mailbox's HIGHESTMODSEQ by one: 0 with the new value, or -1. */
static int sqm_bump(struct sql_conn *c, int64_t mailbox_id, int64_t *modseq_r, const char **error_r)
{
	int ret = sql_int(c, SQ_MAILBOX_BUMP_MODSEQ, modseq_r, error_r, "i", mailbox_id);
	if (ret == 0)
		*error_r = "mailbox vanished";
	return ret == 1 ? 0 : -1;
}

/* Allocate n UIDs and one MODSEQ in a mailbox: 1 with the first UID and the MODSEQ, 0 when
 * the UIDs would pass 2^32-1 (the caller refuses: the savepoint undoes it), -1 error. */
static int sqm_alloc(struct sql_conn *c, int64_t mailbox_id, size_t n, int64_t *uid_r,
                     int64_t *modseq_r, const char **error_r)
{
	struct sql_row *st;
	int rc = sql_step(c, SQ_MB_ALLOC, &st, error_r, "ii", mailbox_id, (int64_t)n);
	if (rc != SQL_ROW) {
		if (rc == SQL_DONE)
			*error_r = "mailbox vanished";
		return -1;
	}
	*uid_r = sql_col_int(st, 0);
	*modseq_r = sql_col_int(st, 1);
	sql_row_done(st);
	return *uid_r + (int64_t)n - 1 > (int64_t)UINT32_MAX ? 0 : 1;
}

/* ---- create ---- */

/* Insert one mailbox (a new UIDVALIDITY, nothing in it). 0 with *id_r, or -1. */
static int sqm_insert(struct sql_conn *c, uint64_t account_id, const char *name,
                      const char *special_use, int64_t uidnext, int64_t highestmodseq,
                      const char *keywords, int64_t *id_r, const char **error_r)
{
	int64_t uidvalidity;
	char objectid[STORE_OBJECTID_MAX + 1];
	store_db_objectid(objectid); /* a new one also for a name used before (RFC 8474 §4) */
	if (store_db_next_uidvalidity(c, &uidvalidity, error_r) < 0)
		return -1;
	int ret = sql_int(c, SQ_MB_INSERT, id_r, error_r, "issiiiss", (int64_t)account_id, name,
	                  special_use, uidvalidity, uidnext, highestmodseq, keywords, objectid);
	if (ret == 0)
		*error_r = "mailbox insert returned nothing";
	return ret == 1 ? 0 : -1;
}

/* Create the missing parents of name (RFC 9051 §6.3.4 SHOULD), keeping the account under
 * STORE_MAILBOXES_MAX with `extra` more mailboxes to come. 0 (item->refused may be set),
 * or -1. */
static int sqm_create_parents(struct sql_conn *c, struct store_commit_item *item,
                              uint64_t account_id, const char *name, size_t extra,
                              struct store_changes *changes, const char **error_r)
{
	char path[STORE_MAILBOX_NAME_MAX + 1];
	int64_t count, id;
	size_t missing = 0;
	memcpy(path, name, strlen(name) + 1);
	/* Count first, so a refusal comes before any insert. */
	for (char *slash = strchr(path, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		int ret = sqm_id(c, account_id, path, &id, error_r);
		*slash = '/';
		if (ret < 0)
			return -1;
		missing += ret == 0 ? 1 : 0;
	}
	if (sql_int(c, SQ_MB_COUNT, &count, error_r, "i", (int64_t)account_id) < 0)
		return -1;
	if ((size_t)count + missing + extra > STORE_MAILBOXES_MAX) {
		item->refused = STORE_ERROR_LIMIT;
		return 0;
	}
	for (char *slash = strchr(path, '/'); missing > 0 && slash != NULL;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		int ret = sqm_id(c, account_id, path, &id, error_r);
		if (ret == 0) {
			ret = sqm_insert(c, account_id, path, NULL, 1, 1, "", &id, error_r) == 0
			          ? 1
			          : -1;
			store_watch_changed_kind(changes, account_id, path, STORE_CHANGE_CREATE,
			                         NULL);
			store_watch_changed(changes, account_id, path, 1);
		}
		*slash = '/';
		if (ret < 0)
			return -1;
	}
	return 0;
}

static int sqm_create(struct sql_conn *c, struct store_commit_item *item,
                      struct store_changes *changes, const char **error_r)
{
	const struct store_commit_mailbox *m = &item->mailbox;
	int64_t id;
	int ret = sql_int(c, SQ_ACCOUNT_USAGE, &id, error_r, "i", (int64_t)m->account_id);
	if (ret <= 0) {
		item->refused = ret == 0 ? STORE_ERROR_INVALID : NULL;
		return ret;
	}
	ret = sqm_id(c, m->account_id, m->name, &id, error_r);
	if (ret != 0) {
		item->refused = ret == 1 ? STORE_ERROR_EXISTS : NULL;
		return ret < 0 ? -1 : 0;
	}
	if (sqm_create_parents(c, item, m->account_id, m->name, 1, changes, error_r) < 0)
		return -1;
	if (item->refused != NULL)
		return 0;
	if (sqm_insert(c, m->account_id, m->name, m->special_use, 1, 1, "", &id, error_r) < 0)
		return -1;
	struct sql_row *st;
	if (sql_step(c, SQ_MB_OBJECTID, &st, error_r, "is", (int64_t)m->account_id, m->name) !=
	    SQL_ROW) {
		*error_r = "new mailbox vanished";
		return -1;
	}
	snprintf(item->mailbox.objectid, sizeof(item->mailbox.objectid), "%s",
	         sql_col_text0(st, 0));
	sql_row_done(st);
	store_watch_changed_kind(changes, m->account_id, m->name, STORE_CHANGE_CREATE, NULL);
	store_watch_changed(changes, m->account_id, m->name, 1);
	return 0;
}

/* ---- delete ---- */

struct sqm_refs {
	struct sq_ids *unref;
	uint32_t count;
	uint64_t size;
};

static void sqm_refs_row(void *ctx, struct sql_row *st)
{
	struct sqm_refs *r = ctx;
	store_db_ids_add(r->unref, sql_col_int(st, 0));
	r->count++;
	r->size += (uint64_t)sql_col_int(st, 1);
}

static int sqm_delete(struct sql_conn *c, struct store_commit_item *item, struct sq_ids *unref,
                      struct store_changes *changes, const char **error_r)
{
	struct store_commit_mailbox *m = &item->mailbox;
	struct sqm_refs refs = {unref, 0, 0};
	int64_t id;
	m->expunged = 0;
	m->freed = 0;
	if (strcmp(m->name, "INBOX") == 0) {
		item->refused = STORE_ERROR_INBOX;
		return 0;
	}
	int ret = sqm_id(c, m->account_id, m->name, &id, error_r);
	if (ret <= 0) {
		item->refused = ret == 0 ? STORE_ERROR_NO_MAILBOX : NULL;
		return ret;
	}
	/* Entries and tombstones go by ON DELETE CASCADE; the message rows they referenced
	 * are checked at the end of the commit. */
	if (sql_each(c, SQ_MB_REFS, sqm_refs_row, &refs, "i", id) < 0) {
		*error_r = "database error listing a mailbox";
		return -1;
	}
	if (sql_exec(c, SQ_MB_DELETE, error_r, "i", id) < 0)
		return -1;
	if (refs.size > 0 && sql_exec(c, SQ_ACCOUNT_SUB_USED, error_r, "ii", (int64_t)m->account_id,
	                              (int64_t)refs.size) < 0)
		return -1;
	m->expunged = refs.count;
	m->freed = refs.size;
	store_watch_changed(changes, m->account_id, m->name, 0);
	return 0;
}

/* ---- rename ---- */

/* A mailbox that a rename moves. */
struct sqm_move {
	int64_t id;
	int64_t highestmodseq;
	char *from, *to;
};

struct sqm_moves {
	struct sqm_move *v;
	size_t count, cap;
	const char *from, *to; /* the renamed name and its new name */
	bool too_long;
};

static void sqm_moves_add(struct sqm_moves *mv, int64_t id, int64_t modseq, const char *from)
{
	struct buf b;
	buf_init(&b, STORE_MAILBOX_NAME_MAX);
	if (buf_puts(&b, mv->to) < 0 || buf_puts(&b, from + strlen(mv->from)) < 0 ||
	    store_mailbox_name_valid(buf_cstr(&b)) != 1)
		mv->too_long = true;
	if (mv->count == mv->cap) {
		mv->cap = mv->cap == 0 ? 8 : mv->cap * 2;
		mv->v = xrealloc(mv->v, mv->cap * sizeof(*mv->v));
	}
	mv->v[mv->count++] = (struct sqm_move){id, modseq, xstrdup(from), xstrdup(buf_cstr(&b))};
	buf_free(&b);
}

static void sqm_moves_row(void *ctx, struct sql_row *st)
{
	sqm_moves_add(ctx, sql_col_int(st, 0), sql_col_int(st, 2), sql_col_text0(st, 1));
}

static void sqm_moves_free(struct sqm_moves *mv)
{
	for (size_t i = 0; i < mv->count; i++) {
		free(mv->v[i].from);
		free(mv->v[i].to);
	}
	free(mv->v);
}

/* Collect name and everything below it. 0, or -1. */
static int sqm_moves_collect(struct sql_conn *c, uint64_t account_id, int64_t id, int64_t modseq,
                             struct sqm_moves *mv, const char **error_r)
{
	char lo[STORE_MAILBOX_NAME_MAX + 2], hi[STORE_MAILBOX_NAME_MAX + 2];
	size_t len = strlen(mv->from);
	memcpy(lo, mv->from, len);
	memcpy(hi, mv->from, len);
	lo[len] = '/';
	hi[len] = '/' + 1;
	lo[len + 1] = hi[len + 1] = '\0';
	sqm_moves_add(mv, id, modseq, mv->from);
	if (sql_each(c, SQ_MB_CHILDREN, sqm_moves_row, mv, "iss", (int64_t)account_id, lo, hi) <
	    0) {
		*error_r = "database error listing mailboxes";
		return -1;
	}
	return 0;
}

/* Is any new name taken by a mailbox that does not move? 1 yes, 0 no, -1 error. */
static int sqm_moves_clash(struct sql_conn *c, uint64_t account_id, const struct sqm_moves *mv,
                           const char **error_r)
{
	for (size_t i = 0; i < mv->count; i++) {
		int64_t id;
		int ret = sqm_id(c, account_id, mv->v[i].to, &id, error_r);
		if (ret < 0)
			return -1;
		bool moving = false;
		for (size_t k = 0; ret == 1 && k < mv->count && !moving; k++)
			moving = mv->v[k].id == id;
		if (ret == 1 && !moving)
			return 1;
	}
	return 0;
}

/* Give every moved mailbox its new name (through a temporary name that no valid name can
 * equal, so that no order of updates collides) and move its subscription. 0, or -1. */
static int sqm_moves_apply(struct sql_conn *c, uint64_t account_id, const struct sqm_moves *mv,
                           struct store_changes *changes, const char **error_r)
{
	char tmp[32];
	int64_t dummy;
	for (size_t i = 0; i < mv->count; i++) {
		snprintf(tmp, sizeof(tmp), "\x01%" PRId64, mv->v[i].id);
		if (sql_exec(c, SQ_MB_SET_NAME, error_r, "is", mv->v[i].id, tmp) < 0)
			return -1;
	}
	for (size_t i = 0; i < mv->count; i++) {
		const struct sqm_move *m = &mv->v[i];
		if (sql_exec(c, SQ_MB_SET_NAME, error_r, "is", m->id, m->to) < 0)
			return -1;
		int ret =
		    sql_int(c, SQ_SUB_EXISTS, &dummy, error_r, "is", (int64_t)account_id, m->from);
		if (ret < 0 ||
		    (ret == 1 &&
		     (sql_exec(c, SQ_SUB_DELETE, error_r, "is", (int64_t)account_id, m->from) < 0 ||
		      sql_exec(c, SQ_SUB_INSERT, error_r, "is", (int64_t)account_id, m->to) < 0)))
			return -1;
		store_watch_changed_kind(changes, account_id, m->to, STORE_CHANGE_RENAME, m->from);
		store_watch_changed(changes, account_id, m->from, 0);
		store_watch_changed(changes, account_id, m->to, (uint64_t)m->highestmodseq);
	}
	return 0;
}

/* RFC 9051 §6.3.6: renaming INBOX moves its messages to a new mailbox and leaves INBOX
 * (and its children) in place. The new mailbox has a new UIDVALIDITY; the entries keep
 * their UIDs and MODSEQs; INBOX keeps tombstones of them. */
static int sqm_rename_inbox(struct sql_conn *c, struct store_commit_item *item,
                            const struct sqm_mailbox *inbox, struct store_changes *changes,
                            const char **error_r)
{
	const struct store_commit_mailbox *m = &item->mailbox;
	int64_t new_id, modseq = inbox->highestmodseq + 1;
	if (sqm_create_parents(c, item, m->account_id, m->new_name, 1, changes, error_r) < 0)
		return -1;
	if (item->refused != NULL)
		return 0;
	if (sqm_insert(c, m->account_id, m->new_name, NULL, inbox->uidnext, inbox->highestmodseq,
	               inbox->keywords, &new_id, error_r) < 0)
		return -1;
	int moved = sql_exec(c, SQ_MB_TOMBSTONE_ALL, error_r, "iii", inbox->id, modseq,
	                     (int64_t)time(NULL));
	if (moved < 0 || sql_exec(c, SQ_MB_MOVE_ALL, error_r, "ii", inbox->id, new_id) < 0)
		return -1;
	if (moved > 0) {
		if (sqm_bump(c, inbox->id, &modseq, error_r) < 0)
			return -1;
		store_watch_changed(changes, m->account_id, "INBOX", (uint64_t)modseq);
	}
	store_watch_changed_kind(changes, m->account_id, m->new_name, STORE_CHANGE_RENAME, "INBOX");
	store_watch_changed(changes, m->account_id, m->new_name, (uint64_t)inbox->highestmodseq);
	return 0;
}

static bool sqm_below(const char *name, const char *parent)
{
	size_t len = strlen(parent);
	return strncmp(name, parent, len) == 0 && name[len] == '/';
}

static int sqm_rename_tree(struct sql_conn *c, struct store_commit_item *item,
                           const struct sqm_mailbox *src, struct store_changes *changes,
                           const char **error_r)
{
	const struct store_commit_mailbox *m = &item->mailbox;
	struct sqm_moves mv = {.from = m->name, .to = m->new_name};
	int ret = sqm_moves_collect(c, m->account_id, src->id, src->highestmodseq, &mv, error_r);
	if (ret == 0 && mv.too_long)
		item->refused = STORE_ERROR_BAD_NAME;
	if (ret == 0 && item->refused == NULL) {
		ret = sqm_moves_clash(c, m->account_id, &mv, error_r);
		if (ret == 1)
			item->refused = STORE_ERROR_EXISTS;
		ret = ret < 0 ? -1 : 0;
	}
	if (ret == 0 && item->refused == NULL)
		ret = sqm_create_parents(c, item, m->account_id, m->new_name, 0, changes, error_r);
	if (ret == 0 && item->refused == NULL)
		ret = sqm_moves_apply(c, m->account_id, &mv, changes, error_r);
	sqm_moves_free(&mv);
	return ret;
}

static int sqm_rename(struct sql_conn *c, struct store_commit_item *item,
                      struct store_changes *changes, const char **error_r)
{
	const struct store_commit_mailbox *m = &item->mailbox;
	struct sqm_mailbox src = {0};
	int64_t id;
	int ret = sqm_get(c, m->account_id, m->name, &src, error_r);
	if (ret <= 0) {
		item->refused = ret == 0 ? STORE_ERROR_NO_MAILBOX : NULL;
		return ret;
	}
	ret = sqm_id(c, m->account_id, m->new_name, &id, error_r);
	if (ret == 1)
		item->refused = STORE_ERROR_EXISTS;
	bool inbox = strcmp(m->name, "INBOX") == 0;
	if (ret == 0 && !inbox && sqm_below(m->new_name, m->name))
		item->refused = STORE_ERROR_INFERIOR;
	if (ret == 0 && item->refused == NULL)
		ret = inbox ? sqm_rename_inbox(c, item, &src, changes, error_r)
		            : sqm_rename_tree(c, item, &src, changes, error_r);
	free(src.keywords);
	return ret < 0 ? -1 : 0;
}

/* ---- subscriptions ---- */

static int sqm_subscribe(struct sql_conn *c, struct store_commit_item *item,
                         struct store_changes *changes, const char **error_r)
{
	const struct store_commit_mailbox *m = &item->mailbox;
	int64_t count, dummy;
	if (m->action == STORE_MAILBOX_UNSUBSCRIBE) {
		int64_t gone =
		    sql_exec(c, SQ_SUB_DELETE, error_r, "is", (int64_t)m->account_id, m->name);
		if (gone > 0)
			store_watch_changed_kind(changes, m->account_id, m->name,
			                         STORE_CHANGE_SUBSCRIPTION, NULL);
		return gone < 0 ? -1 : 0;
	}
	int ret = sql_int(c, SQ_ACCOUNT_USAGE, &dummy, error_r, "i", (int64_t)m->account_id);
	if (ret <= 0) {
		item->refused = ret == 0 ? STORE_ERROR_INVALID : NULL;
		return ret;
	}
	ret = sql_int(c, SQ_SUB_EXISTS, &dummy, error_r, "is", (int64_t)m->account_id, m->name);
	if (ret != 0)
		return ret < 0 ? -1 : 0;
	if (sql_int(c, SQ_SUB_COUNT, &count, error_r, "i", (int64_t)m->account_id) < 0)
		return -1;
	if (count >= STORE_SUBSCRIPTIONS_MAX) {
		item->refused = STORE_ERROR_LIMIT;
		return 0;
	}
	if (sql_exec(c, SQ_SUB_INSERT, error_r, "is", (int64_t)m->account_id, m->name) < 0)
		return -1;
	store_watch_changed_kind(changes, m->account_id, m->name, STORE_CHANGE_SUBSCRIPTION, NULL);
	return 0;
}

/* ---- flags ---- */

/* The entry's flags, keywords (into kw) and MODSEQ: 1, 0 no such entry, -1. */
static int sqm_entry_flags(struct sql_conn *c, int64_t mailbox_id, uint32_t uid, unsigned *flags_r,
                           struct buf *kw, int64_t *modseq_r, const char **error_r)
{
	struct sql_row *st;
	int rc = sql_step(c, SQ_ENTRY_FLAGS, &st, error_r, "ii", mailbox_id, (int64_t)uid);
	if (rc != SQL_ROW)
		return rc < 0 ? -1 : 0;
	*flags_r = (unsigned)sql_col_int(st, 0);
	buf_reset(kw);
	int ret = buf_puts(kw, sql_col_text0(st, 1)) < 0 ? -1 : 1;
	*modseq_r = sql_col_int(st, 2);
	sql_row_done(st);
	if (ret < 0)
		*error_r = "keywords too long";
	return ret;
}

static unsigned sqm_flags_apply(unsigned current, enum store_flags_mode mode, unsigned flags)
{
	flags &= SQM_FLAGS_ALL;
	if (mode == STORE_FLAGS_ADD)
		return current | flags;
	if (mode == STORE_FLAGS_REMOVE)
		return current & ~flags;
	return flags;
}

/* Text buffers of a flags or copy operation. */
struct sqm_texts {
	struct buf dict, canon, cur, next;
};

static void sqm_texts_init(struct sqm_texts *t)
{
	buf_init(&t->dict, STORE_KEYWORDS_TEXT_MAX);
	buf_init(&t->canon, STORE_KEYWORDS_TEXT_MAX);
	buf_init(&t->cur, STORE_KEYWORDS_TEXT_MAX);
	buf_init(&t->next, STORE_KEYWORDS_TEXT_MAX);
}

static void sqm_texts_free(struct sqm_texts *t)
{
	buf_free(&t->dict);
	buf_free(&t->canon);
	buf_free(&t->cur);
	buf_free(&t->next);
}

/* One UID of a flags operation. 0, or -1. */
static int sqm_flags_uid(struct sql_conn *c, struct store_commit_flags *f, int64_t mailbox_id,
                         uint32_t uid, struct sqm_texts *t, const char **error_r)
{
	unsigned flags;
	int64_t modseq;
	int ret = sqm_entry_flags(c, mailbox_id, uid, &flags, &t->cur, &modseq, error_r);
	if (ret <= 0)
		return ret;
	struct store_flags_entry e = {.uid = uid, .flags = flags, .modseq = (uint64_t)modseq};
	/* RFC 7162 §3.1.3: a message changed since UNCHANGEDSINCE is left alone. */
	if (f->conditional && (uint64_t)modseq > f->unchanged_since) {
		e.keywords = buf_cstr(&t->cur);
		e.modified = true;
		f->modified++;
		store_writer_report_add(f->report, &e);
		return 0;
	}
	e.flags = sqm_flags_apply(flags, f->mode, f->flags);
	if (store_mailbox_kw_apply(buf_cstr(&t->cur), f->mode, buf_cstr(&t->canon), &t->next) < 0) {
		*error_r = "keywords too long";
		return -1;
	}
	e.keywords = buf_cstr(&t->next);
	if (e.flags != flags || strcmp(buf_cstr(&t->next), buf_cstr(&t->cur)) != 0) {
		/* One new MODSEQ for every entry this operation changes. */
		if (f->modseq == 0 && sqm_bump(c, mailbox_id, &modseq, error_r) < 0)
			return -1;
		if (f->modseq == 0)
			f->modseq = (uint64_t)modseq;
		if (sql_exec(c, SQ_ENTRY_SET_FLAGS, error_r, "iiisi", mailbox_id, (int64_t)uid,
		             (int64_t)e.flags, e.keywords, (int64_t)f->modseq) < 0)
			return -1;
		e.modseq = f->modseq;
		e.changed = true;
		f->changed++;
	}
	store_writer_report_add(f->report, &e);
	return 0;
}

static int sqm_flags(struct sql_conn *c, struct store_commit_item *item,
                     struct store_changes *changes, const char **error_r)
{
	struct store_commit_flags *f = &item->flags;
	struct sqm_mailbox mb = {0};
	struct sqm_texts t;
	f->modseq = 0;
	f->changed = f->modified = 0;
	store_writer_report_reset(f->report);
	int ret = sqm_get(c, f->account_id, f->mailbox, &mb, error_r);
	if (ret <= 0) {
		item->refused = ret == 0 ? STORE_ERROR_NO_MAILBOX : NULL;
		return ret;
	}
	sqm_texts_init(&t);
	int count = store_mailbox_kw_canon(mb.keywords, f->keywords, f->mode != STORE_FLAGS_REMOVE,
	                                   &t.dict, &t.canon);
	bool grew = t.dict.len != strlen(mb.keywords);
	ret = 0;
	if (count < 0 || (grew && count > STORE_KEYWORDS_MAX))
		item->refused = STORE_ERROR_LIMIT;
	for (size_t i = 0; item->refused == NULL && ret == 0 && i < f->uid_count; i++)
		ret = sqm_flags_uid(c, f, mb.id, f->uids[i], &t, error_r);
	if (ret == 0 && item->refused == NULL && grew && f->changed > 0)
		ret = sql_exec(c, SQ_MB_SET_KEYWORDS, error_r, "is", mb.id, buf_cstr(&t.dict)) < 0
		          ? -1
		          : 0;
	if (ret == 0 && item->refused == NULL && f->modseq > 0)
		store_watch_changed(changes, f->account_id, f->mailbox, f->modseq);
	sqm_texts_free(&t);
	free(mb.keywords);
	return ret;
}

/* ---- copy and move ---- */

/* One source entry of a copy. */
struct sqm_source {
	uint32_t uid;
	int64_t message_id;
	unsigned flags;
	char *keywords;
	int64_t internal_date;
	int64_t size;
};

/* Read the present sources, ascending. 0, or -1. */
static int sqm_sources(struct sql_conn *c, const struct store_commit_copy *cp, int64_t mailbox_id,
                       struct sqm_source *v, size_t *count_r, uint64_t *size_r,
                       const char **error_r)
{
	*count_r = 0;
	*size_r = 0;
	for (size_t i = 0; i < cp->uid_count; i++) {
		struct sql_row *st;
		int rc = sql_step(c, SQ_ENTRY_SOURCE, &st, error_r, "ii", mailbox_id,
		                  (int64_t)cp->uids[i]);
		if (rc < 0)
			return -1;
		if (rc == SQL_DONE)
			continue;
		v[*count_r] = (struct sqm_source){
		    .uid = cp->uids[i],
		    .message_id = sql_col_int(st, 0),
		    .flags = (unsigned)sql_col_int(st, 1),
		    .keywords = xstrdup(sql_col_text0(st, 2)),
		    .internal_date = sql_col_int(st, 3),
		    .size = sql_col_int(st, 4),
		};
		*size_r += (uint64_t)v[(*count_r)++].size;
		sql_row_done(st);
	}
	return 0;
}

/* Would count more messages of size octets pass the account's quota or message limit?
 * 1 yes, 0 no, -1 error. */
static int sqm_over_quota(struct sql_conn *c, uint64_t account_id, uint64_t size, uint64_t count,
                          const char **error_r)
{
	struct store_account_limits l;
	int rc = store_db_account_limits(c, account_id, &l, error_r);
	if (rc <= 0) {
		if (rc == 0)
			*error_r = "account vanished";
		return -1;
	}
	return store_account_limits_exceeded(&l, size, count) ? 1 : 0;
}

/* Insert the copies into the target. 0, or -1. */
static int sqm_copy_insert(struct sql_conn *c, struct store_commit_copy *cp,
                           const struct sqm_mailbox *dst, const struct sqm_source *src, size_t n,
                           int64_t first_uid, int64_t modseq, const char **error_r)
{
	struct sqm_texts t;
	int ret = 0;
	sqm_texts_init(&t);
	if (buf_puts(&t.cur, dst->keywords) < 0)
		ret = -1;
	for (size_t i = 0; ret == 0 && i < n; i++) {
		/* The target's spelling of each keyword; new ones join its list (past the cap:
		 * a copy keeps its keywords). */
		if (store_mailbox_kw_canon(buf_cstr(&t.cur), src[i].keywords, true, &t.dict,
		                           &t.canon) < 0) {
			*error_r = "keywords too long";
			ret = -1;
			break;
		}
		buf_reset(&t.cur);
		if (buf_puts(&t.cur, buf_cstr(&t.dict)) < 0)
			ret = -1;
		int64_t uid = first_uid + (int64_t)i;
		/* RFC 8514 §3: a copy (or move) is saved into the target now. */
		if (ret == 0 &&
		    sql_exec(c, SQ_ENTRY_INSERT_FULL, error_r, "iiiisiii", dst->id, uid,
		             src[i].message_id, (int64_t)src[i].flags, buf_cstr(&t.canon), modseq,
		             src[i].internal_date, (int64_t)time(NULL)) < 0)
			ret = -1;
		cp->source_uids[i] = src[i].uid;
		cp->target_uids[i] = (uint32_t)uid;
	}
	if (ret == 0 && strcmp(buf_cstr(&t.cur), dst->keywords) != 0 &&
	    sql_exec(c, SQ_MB_SET_KEYWORDS, error_r, "is", dst->id, buf_cstr(&t.cur)) < 0)
		ret = -1;
	sqm_texts_free(&t);
	return ret;
}

/* RFC 6851: the sources of a move are expunged in the same transaction. 0, or -1. */
static int sqm_move_expunge(struct sql_conn *c, const struct store_commit_copy *cp,
                            int64_t mailbox_id, const struct sqm_source *src, size_t n,
                            struct store_changes *changes, const char **error_r)
{
	int64_t modseq, dummy;
	if (sqm_bump(c, mailbox_id, &modseq, error_r) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (sql_int(c, SQ_ENTRY_TAKE, &dummy, error_r, "ii", mailbox_id,
		            (int64_t)src[i].uid) != 1 ||
		    sql_exec(c, SQ_TOMBSTONE_INSERT, error_r, "iiii", mailbox_id,
		             (int64_t)src[i].uid, modseq, (int64_t)time(NULL)) < 0)
			return -1;
	}
	store_watch_changed(changes, cp->account_id, cp->mailbox, (uint64_t)modseq);
	return 0;
}

/* Copies into or out of a \Junk folder train a filter later (store.h). 0, or -1. */
static int sqm_junk_training(struct sql_conn *c, const struct store_commit_copy *cp,
                             const struct sqm_mailbox *src_mb, const struct sqm_mailbox *dst,
                             const struct sqm_source *src, size_t n, const char **error_r)
{
	int64_t *ids = xcalloc(n + 1, sizeof(*ids));
	for (size_t i = 0; i < n; i++)
		ids[i] = src[i].message_id;
	int ret = store_db_policy_junk_copy(c, cp->account_id, src_mb->id, cp->target_account_id,
	                                    dst->id, ids, n, (int64_t)time(NULL), error_r);
	free(ids);
	return ret;
}

static int sqm_copy_entries(struct sql_conn *c, struct store_commit_item *item,
                            const struct sqm_mailbox *src_mb, const struct sqm_mailbox *dst,
                            struct store_changes *changes, const char **error_r)
{
	struct store_commit_copy *cp = &item->copy;
	struct sqm_source *src = xcalloc(cp->uid_count + 1, sizeof(*src));
	size_t n = 0;
	uint64_t size = 0;
	int64_t first = 0, modseq = 0;
	int ret = sqm_sources(c, cp, src_mb->id, src, &n, &size, error_r);
	bool across = cp->target_account_id != cp->account_id;
	if (ret == 0 && n > 0 && (!cp->move || across)) {
		ret = sqm_over_quota(c, cp->target_account_id, size, n, error_r);
		if (ret == 1)
			item->refused = STORE_ERROR_OVERQUOTA;
		ret = ret < 0 ? -1 : 0;
	}
	if (ret == 0 && n > 0 && item->refused == NULL) {
		ret = sqm_alloc(c, dst->id, n, &first, &modseq, error_r);
		if (ret == 0)
			item->refused = STORE_ERROR_LIMIT;
		ret = ret < 0 ? -1 : 0;
	}
	if (ret == 0 && n > 0 && item->refused == NULL) {
		ret = sqm_copy_insert(c, cp, dst, src, n, first, modseq, error_r);
		if (ret == 0 && (!cp->move || across))
			ret = sql_exec(c, SQ_ACCOUNT_ADD_USED, error_r, "ii",
			               (int64_t)cp->target_account_id, (int64_t)size) < 0
			          ? -1
			          : 0;
		/* A move to another account takes the octets off the source's. */
		if (ret == 0 && cp->move && across)
			ret = sql_exec(c, SQ_ACCOUNT_ADD_USED, error_r, "ii",
			               (int64_t)cp->account_id, -(int64_t)size) < 0
			          ? -1
			          : 0;
		if (ret == 0 && cp->move && FAULT_POINT("store.move.between") != 0) {
			*error_r = "fault point store.move.between";
			ret = -1;
		}
		if (ret == 0 && cp->move)
			ret = sqm_move_expunge(c, cp, src_mb->id, src, n, changes, error_r);
		if (ret == 0)
			ret = sqm_junk_training(c, cp, src_mb, dst, src, n, error_r);
		if (ret == 0) {
			store_watch_changed(changes, cp->target_account_id, cp->target,
			                    (uint64_t)modseq);
			cp->count = n;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(src[i].keywords);
	free(src);
	return ret;
}

static int sqm_copy(struct sql_conn *c, struct store_commit_item *item,
                    struct store_changes *changes, const char **error_r)
{
	struct store_commit_copy *cp = &item->copy;
	struct sqm_mailbox src = {0}, dst = {0};
	cp->count = 0;
	cp->uidvalidity = 0;
	int ret = sqm_get(c, cp->account_id, cp->mailbox, &src, error_r);
	if (ret == 0)
		item->refused = STORE_ERROR_NO_MAILBOX;
	if (ret == 1) {
		ret = sqm_get(c, cp->target_account_id, cp->target, &dst, error_r);
		if (ret == 0)
			item->refused = STORE_ERROR_NO_TARGET;
	}
	if (ret == 1) {
		cp->uidvalidity = (uint32_t)dst.uidvalidity;
		ret = sqm_copy_entries(c, item, &src, &dst, changes, error_r);
	}
	free(src.keywords);
	free(dst.keywords);
	return ret < 0 ? -1 : 0;
}

/* ---- append ---- */

/* Canonical keywords of each message into canon[i] (malloc'd); dict grows. 0, or -1 when
 * too many (item refused LIMIT) or too long. */
static int sqm_append_keywords(struct store_commit_item *item, const char *mailbox_keywords,
                               char **canon, struct sqm_texts *t)
{
	const struct store_commit_append *a = &item->append;
	int count = 0;
	if (buf_puts(&t->cur, mailbox_keywords) < 0)
		count = -1;
	for (size_t i = 0; count >= 0 && i < a->count; i++) {
		count = store_mailbox_kw_canon(buf_cstr(&t->cur), a->messages[i].keywords, true,
		                               &t->dict, &t->canon);
		buf_reset(&t->cur);
		if (count >= 0 && buf_puts(&t->cur, buf_cstr(&t->dict)) < 0)
			count = -1;
		canon[i] = xstrdup(buf_cstr(&t->canon));
	}
	bool grew = strcmp(buf_cstr(&t->cur), mailbox_keywords) != 0;
	if (count < 0 || (grew && count > STORE_KEYWORDS_MAX)) {
		item->refused = STORE_ERROR_LIMIT;
		return -1;
	}
	return 0;
}

static int sqm_append_insert(struct sql_conn *c, struct store_commit_item *item,
                             const struct sqm_mailbox *mb, char **canon, uint64_t size,
                             struct store_changes *changes, const char **error_r)
{
	struct store_commit_append *a = &item->append;
	int64_t first, modseq, message_id;
	int ret = sqm_alloc(c, mb->id, a->count, &first, &modseq, error_r);
	if (ret <= 0) {
		item->refused = ret == 0 ? STORE_ERROR_LIMIT : NULL;
		return ret;
	}
	for (size_t i = 0; i < a->count; i++) {
		struct store_commit_message *m = &a->messages[i];
		m->uid = (uint32_t)(first + (int64_t)i);
		if (store_db_message_row(c, m->sha256, m->size, m->content, m->chunk_path,
		                         m->internal_date, "", m->hdr_from, m->hdr_subject,
		                         m->hdr_message_id, &m->summary, &message_id,
		                         error_r) < 0 ||
		    sql_exec(c, SQ_ENTRY_INSERT_FULL, error_r, "iiiisiii", mb->id, (int64_t)m->uid,
		             message_id, (int64_t)(m->flags & SQM_FLAGS_ALL), canon[i], modseq,
		             m->internal_date, (int64_t)time(NULL)) < 0)
			return -1;
	}
	if (sql_exec(c, SQ_ACCOUNT_ADD_USED, error_r, "ii", (int64_t)a->account_id, (int64_t)size) <
	    0)
		return -1;
	a->uidvalidity = (uint32_t)mb->uidvalidity;
	a->modseq = (uint64_t)modseq;
	store_watch_changed(changes, a->account_id, a->mailbox, (uint64_t)modseq);
	return 0;
}

/* REPLACE (RFC 8508): the size of the entry to be replaced into *size_r: 1, 0 when it is not
 * there (item refused EXPUNGED), -1 error. */
static int sqm_replace_size(struct sql_conn *c, struct store_commit_item *item,
                            int64_t *mailbox_id_r, int64_t *size_r, const char **error_r)
{
	struct store_commit_append *a = &item->append;
	struct sql_row *st;
	int ret = sql_int(c, SQ_MAILBOX_ID, mailbox_id_r, error_r, "is", (int64_t)a->account_id,
	                  a->replace_mailbox);
	int rc = ret <= 0 ? SQL_DONE
	                  : sql_step(c, SQ_ENTRY_SOURCE, &st, error_r, "ii", *mailbox_id_r,
	                             (int64_t)a->replace_uid);
	if (ret < 0 || rc < 0)
		return -1;
	if (rc == SQL_DONE) {
		item->refused = STORE_ERROR_EXPUNGED;
		return 0;
	}
	*size_r = sql_col_int(st, 4);
	sql_row_done(st);
	return 1;
}

/* REPLACE: the old entry goes as an expunge would take it (tombstone, new MODSEQ, its
 * octets off the account, its message row to the unreferenced). 0, or -1. */
static int sqm_replace_expunge(struct sql_conn *c, struct store_commit_append *a,
                               int64_t mailbox_id, int64_t size, struct sq_ids *unref,
                               struct store_changes *changes, const char **error_r)
{
	int64_t modseq, message_id;
	if (sqm_bump(c, mailbox_id, &modseq, error_r) < 0 ||
	    sql_int(c, SQ_ENTRY_TAKE, &message_id, error_r, "ii", mailbox_id,
	            (int64_t)a->replace_uid) != 1 ||
	    sql_exec(c, SQ_TOMBSTONE_INSERT, error_r, "iiii", mailbox_id, (int64_t)a->replace_uid,
	             modseq, (int64_t)time(NULL)) < 0 ||
	    sql_exec(c, SQ_ACCOUNT_SUB_USED, error_r, "ii", (int64_t)a->account_id, size) < 0)
		return -1;
	store_db_ids_add(unref, message_id);
	store_watch_changed(changes, a->account_id, a->replace_mailbox, (uint64_t)modseq);
	return 0;
}

static int sqm_append(struct sql_conn *c, struct store_commit_item *item, struct sq_ids *unref,
                      struct store_changes *changes, const char **error_r)
{
	struct store_commit_append *a = &item->append;
	struct sqm_mailbox mb = {0};
	struct sqm_texts t;
	uint64_t size = 0;
	int64_t replace_id = 0, replace_size = 0;
	a->uidvalidity = 0;
	a->modseq = 0;
	int ret = sqm_get(c, a->account_id, a->mailbox, &mb, error_r);
	if (ret <= 0) {
		item->refused = ret == 0 ? STORE_ERROR_NO_MAILBOX : NULL;
		return ret;
	}
	if (a->replace_mailbox != NULL) {
		ret = sqm_replace_size(c, item, &replace_id, &replace_size, error_r);
		if (ret <= 0) {
			free(mb.keywords);
			return ret;
		}
	}
	for (size_t i = 0; i < a->count; i++)
		size += a->messages[i].size;
	/* A replacement needs room only for what it adds (RFC 8508 §3.4). */
	ret = sqm_over_quota(c, a->account_id,
	                     size > (uint64_t)replace_size ? size - (uint64_t)replace_size : 0,
	                     a->replace_mailbox != NULL ? 0 : a->count, error_r);
	if (ret == 1)
		item->refused = STORE_ERROR_OVERQUOTA;
	char **canon = xcalloc(a->count + 1, sizeof(char *));
	sqm_texts_init(&t);
	if (ret == 0 && sqm_append_keywords(item, mb.keywords, canon, &t) < 0)
		ret = 1; /* refused */
	if (ret == 0)
		ret = sqm_append_insert(c, item, &mb, canon, size, changes, error_r);
	if (ret == 0 && item->refused == NULL && strcmp(buf_cstr(&t.cur), mb.keywords) != 0 &&
	    sql_exec(c, SQ_MB_SET_KEYWORDS, error_r, "is", mb.id, buf_cstr(&t.cur)) < 0)
		ret = -1;
	if (ret == 0 && item->refused == NULL && a->replace_mailbox != NULL)
		ret = sqm_replace_expunge(c, a, replace_id, replace_size, unref, changes, error_r);
	for (size_t i = 0; i < a->count; i++)
		free(canon[i]);
	free(canon);
	sqm_texts_free(&t);
	free(mb.keywords);
	return ret < 0 ? -1 : 0;
}

/* ---- the writer's entry point ---- */

int store_db_mailbox_commit(struct sql_conn *c, struct store_commit_item *item,
                            struct sq_ids *unref, struct store_changes *changes,
                            const char **error_r)
{
	switch (item->kind) {
	case STORE_OP_APPEND:
		return sqm_append(c, item, unref, changes, error_r);
	case STORE_OP_FLAGS:
		return sqm_flags(c, item, changes, error_r);
	case STORE_OP_COPY:
		return sqm_copy(c, item, changes, error_r);
	case STORE_OP_MAILBOX:
		break;
	default:
		*error_r = "not a mailbox operation";
		return -1;
	}
	item->mailbox.expunged = 0;
	item->mailbox.freed = 0;
	switch (item->mailbox.action) {
	case STORE_MAILBOX_CREATE:
		return sqm_create(c, item, changes, error_r);
	case STORE_MAILBOX_DELETE:
		return sqm_delete(c, item, unref, changes, error_r);
	case STORE_MAILBOX_RENAME:
		return sqm_rename(c, item, changes, error_r);
	case STORE_MAILBOX_SUBSCRIBE:
	case STORE_MAILBOX_UNSUBSCRIBE:
		return sqm_subscribe(c, item, changes, error_r);
	case STORE_MAILBOX_METADATA:
		return store_db_metadata_commit(c, item, changes, error_r);
	case STORE_MAILBOX_ACL:
		return store_db_acl_commit(c, item, changes, error_r);
	}
	item->refused = STORE_ERROR_INVALID;
	return 0;
}

/* ---- reads ---- */

struct sqm_list {
	void (*mailbox_cb)(void *ctx, const char *name, const char *special_use);
	void (*subscription_cb)(void *ctx, const char *name);
	void *ctx;
};

static void sqm_list_mailbox(void *ctx, struct sql_row *st)
{
	struct sqm_list *l = ctx;
	l->mailbox_cb(l->ctx, sql_col_text0(st, 0), sql_col_text(st, 1));
}

static void sqm_list_subscription(void *ctx, struct sql_row *st)
{
	struct sqm_list *l = ctx;
	l->subscription_cb(l->ctx, sql_col_text0(st, 0));
}

int store_db_mailbox_list(struct store *store, uint64_t account_id,
                          void (*mailbox_cb)(void *ctx, const char *name, const char *special_use),
                          void (*subscription_cb)(void *ctx, const char *name), void *ctx)
{
	struct sql_conn *c = store_db_reader(store);
	struct sqm_list l = {mailbox_cb, subscription_cb, ctx};
	int64_t dummy;
	int started = c == NULL ? -1 : store_db_read_begin(c);
	if (started < 0)
		return -1;
	int ret = sql_int(c, SQ_ACCOUNT_USAGE, &dummy, NULL, "i", (int64_t)account_id);
	if (ret == 1 &&
	    (sql_each(c, SQ_MB_LIST, sqm_list_mailbox, &l, "i", (int64_t)account_id) < 0 ||
	     sql_each(c, SQ_SUB_LIST, sqm_list_subscription, &l, "i", (int64_t)account_id) < 0))
		ret = -1;
	return store_db_read_end(c, started, ret);
}

int store_db_mailbox_stats(struct store *store, uint64_t account_id, const char *mailbox,
                           struct store_mailbox_stats *stats_r)
{
	struct sql_conn *c = store_db_reader(store);
	struct sql_row *st;
	int rc = c == NULL
	             ? -1
	             : sql_step(c, SQ_MB_STATS, &st, NULL, "isii", (int64_t)account_id, mailbox,
	                        (int64_t)STORE_FLAG_SEEN, (int64_t)STORE_FLAG_DELETED);
	if (rc != SQL_ROW)
		return rc < 0 ? -1 : 0;
	*stats_r = (struct store_mailbox_stats){
	    .uidvalidity = (uint32_t)sql_col_int(st, 0),
	    .uidnext = (uint32_t)sql_col_int(st, 1),
	    .highestmodseq = (uint64_t)sql_col_int(st, 2),
	    .messages = (uint32_t)sql_col_int(st, 3),
	    .unseen = (uint32_t)sql_col_int(st, 4),
	    .deleted = (uint32_t)sql_col_int(st, 5),
	    .size = (uint64_t)sql_col_int(st, 6),
	    .recent = 0,
	    .deleted_size = (uint64_t)sql_col_int(st, 7),
	};
	snprintf(stats_r->mailboxid, sizeof(stats_r->mailboxid), "%s", sql_col_text0(st, 8));
	sql_row_done(st);
	return 1;
}

int store_db_mailbox_recent_first(struct store *store, uint64_t account_id, const char *mailbox,
                                  uint32_t *uidvalidity_r, uint32_t *first_r)
{
	struct sql_conn *c = store_db_reader(store);
	struct sql_row *st;
	int rc = c == NULL ? -1
	                   : sql_step(c, SQ_MB_RECENT_FIRST, &st, NULL, "isii", (int64_t)account_id,
	                              mailbox, db_store(store)->open_max_entry,
	                              db_store(store)->open_uidvalidity);
	if (rc != SQL_ROW)
		return rc < 0 ? -1 : 0;
	*uidvalidity_r = (uint32_t)sql_col_int(st, 0);
	*first_r = (uint32_t)sql_col_int(st, 1);
	sql_row_done(st);
	return 1;
}

int store_db_mailbox_count_from(struct store *store, uint64_t account_id, const char *mailbox,
                                uint32_t uid, uint32_t *count_r)
{
	struct sql_conn *c = store_db_reader(store);
	struct sql_row *st;
	int rc = c == NULL ? -1
	                   : sql_step(c, SQ_MB_COUNT_FROM, &st, NULL, "isi", (int64_t)account_id,
	                              mailbox, (int64_t)uid);
	if (rc != SQL_ROW)
		return rc < 0 ? -1 : 0;
	*count_r = (uint32_t)sql_col_int(st, 0);
	sql_row_done(st);
	return 1;
}

int store_db_mailbox_exists(struct store *store, uint64_t account_id, const char *mailbox)
{
	struct sql_conn *c = store_db_reader(store);
	int64_t id;
	return c == NULL ? -1 : sqm_id(c, account_id, mailbox, &id, NULL);
}

int store_db_mailbox_keywords(struct store *store, uint64_t account_id, const char *mailbox,
                              char **keywords_r)
{
	struct sql_conn *c = store_db_reader(store);
	struct sql_row *st;
	int rc = c == NULL
	             ? -1
	             : sql_step(c, SQ_MB_KEYWORDS, &st, NULL, "is", (int64_t)account_id, mailbox);
	if (rc != SQL_ROW)
		return rc < 0 ? -1 : 0;
	*keywords_r = xstrdup(sql_col_text0(st, 0));
	sql_row_done(st);
	return 1;
}

struct sqm_changes {
	void (*entry_cb)(void *ctx, const struct store_entry *entry);
	void (*expunged_cb)(void *ctx, uint32_t uid, uint64_t modseq);
	void *ctx;
};

static void sqm_changed_row(void *ctx, struct sql_row *st)
{
	struct sqm_changes *ch = ctx;
	struct store_entry entry;
	store_db_entry_row(st, &entry);
	ch->entry_cb(ch->ctx, &entry);
}

static void sqm_expunged_row(void *ctx, struct sql_row *st)
{
	struct sqm_changes *ch = ctx;
	ch->expunged_cb(ch->ctx, (uint32_t)sql_col_int(st, 0), (uint64_t)sql_col_int(st, 1));
}

/* Inside the read transaction. */
static int sqm_changes_read(struct sql_conn *c, uint64_t account_id, const char *mailbox,
                            uint64_t since, struct sqm_changes *ch,
                            struct store_mailbox_status *status_r)
{
	int64_t mailbox_id;
	int rc = store_db_mailbox_status_row(c, account_id, mailbox, &mailbox_id, status_r);
	if (rc <= 0)
		return rc;
	/* MODSEQs are below 2^63 (RFC 7162 mod-sequence-value); a larger since matches none. */
	int64_t after = since > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)since;
	if (ch->entry_cb != NULL &&
	    sql_each(c, SQ_MB_CHANGED, sqm_changed_row, ch, "ii", mailbox_id, after) < 0)
		return -1;
	if (ch->expunged_cb != NULL &&
	    sql_each(c, SQ_MB_EXPUNGED, sqm_expunged_row, ch, "ii", mailbox_id, after) < 0)
		return -1;
	return 1;
}

int store_db_mailbox_changes(struct store *store, uint64_t account_id, const char *mailbox,
                             uint64_t since_modseq,
                             void (*entry_cb)(void *ctx, const struct store_entry *entry),
                             void (*expunged_cb)(void *ctx, uint32_t uid, uint64_t modseq),
                             void *ctx, struct store_mailbox_status *status_r)
{
	struct sql_conn *c = store_db_reader(store);
	struct sqm_changes ch = {entry_cb, expunged_cb, ctx};
	int started = c == NULL ? -1 : store_db_read_begin(c);
	if (started < 0)
		return -1;
	int ret = sqm_changes_read(c, account_id, mailbox, since_modseq, &ch, status_r);
	return store_db_read_end(c, started, ret);
}

int store_db_mailbox_summary(struct store *store, uint64_t account_id, const char *mailbox,
                             uint32_t uid, char **envelope_r, char **body_r, char **bodystructure_r)
{
	struct sql_conn *c = store_db_reader(store);
	struct sql_row *st;
	int rc = c == NULL ? -1
	                   : sql_step(c, SQ_MB_SUMMARY, &st, NULL, "isi", (int64_t)account_id,
	                              mailbox, (int64_t)uid);
	if (rc != SQL_ROW)
		return rc < 0 ? -1 : 0;
	char **out[3] = {envelope_r, body_r, bodystructure_r};
	for (int i = 0; i < 3; i++)
		*out[i] = sql_col_text(st, i) == NULL ? NULL : xstrdup(sql_col_text(st, i));
	sql_row_done(st);
	return 1;
}

int store_db_message_objects(struct store *store, uint64_t account_id, const char *mailbox,
                             uint32_t uid, struct store_message_objects *objects_r)
{
	struct sql_conn *c = store_db_reader(store);
	struct sql_row *st;
	int rc = c == NULL ? -1
	                   : sql_step(c, SQ_MB_OBJECTS, &st, NULL, "isi", (int64_t)account_id,
	                              mailbox, (int64_t)uid);
	if (rc != SQL_ROW)
		return rc < 0 ? -1 : 0;
	snprintf(objects_r->emailid, sizeof(objects_r->emailid), "M%s", sql_col_text0(st, 0));
	objects_r->save_date = sql_col_int(st, 1);
	objects_r->preview = sql_col_text(st, 2) == NULL ? NULL : xstrdup(sql_col_text(st, 2));
	sql_row_done(st);
	return 1;
}

struct sqm_uids {
	uint32_t *v;
	size_t count, cap;
};

static void sqm_uids_row(void *ctx, struct sql_row *st)
{
	struct sqm_uids *u = ctx;
	if (u->count == u->cap) {
		u->cap = u->cap == 0 ? 8 : 2 * u->cap;
		u->v = xrealloc(u->v, u->cap * sizeof(*u->v));
	}
	u->v[u->count++] = (uint32_t)sql_col_int(st, 0);
}

/* The UIDs statement id lists for the mailbox. Its parameters: the mailbox id, then needle
 * unless it is NULL, then body_only unless it is negative. */
static int sqm_search_uids(struct store *store, uint64_t account_id, const char *mailbox,
                           unsigned id, const char *needle, int64_t body_only, uint32_t **uids_r,
                           size_t *count_r)
{
	struct sql_conn *c = store_db_reader(store);
	struct sqm_uids u = {0};
	int64_t mailbox_id;
	int started = c == NULL ? -1 : store_db_read_begin(c);
	if (started < 0)
		return -1;
	int ret = sql_int(c, SQ_MAILBOX_ID, &mailbox_id, NULL, "is", (int64_t)account_id, mailbox);
	if (ret == 1) {
		int r =
		    needle == NULL ? sql_each(c, id, sqm_uids_row, &u, "i", mailbox_id)
		    : body_only < 0
		        ? sql_each(c, id, sqm_uids_row, &u, "is", mailbox_id, needle)
		        : sql_each(c, id, sqm_uids_row, &u, "isi", mailbox_id, needle, body_only);
		if (r < 0)
			ret = -1;
	}
	ret = store_db_read_end(c, started, ret);
	if (ret != 1) {
		free(u.v);
		u.v = NULL;
		u.count = 0;
	}
	*uids_r = u.v;
	*count_r = u.count;
	return ret;
}

/* Characters (not octets) of UTF-8 text: what the trigram index counts. */
static size_t sqm_utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

int store_db_search_text_uids(struct store *store, uint64_t account_id, const char *mailbox,
                              const char *needle, bool body_only, uint32_t **uids_r,
                              size_t *count_r)
{
	unsigned id = sqm_utf8_chars(needle) >= 3 ? SQ_MB_SEARCH_INDEXED : SQ_MB_SEARCH_SCAN;
	return sqm_search_uids(store, account_id, mailbox, id, needle, body_only ? 1 : 0, uids_r,
	                       count_r);
}

int store_db_search_unindexed_uids(struct store *store, uint64_t account_id, const char *mailbox,
                                   uint32_t **uids_r, size_t *count_r)
{
	return sqm_search_uids(store, account_id, mailbox, SQ_MB_SEARCH_UNINDEXED, NULL, 0, uids_r,
	                       count_r);
}

int store_db_search_hdr_unindexed_uids(struct store *store, uint64_t account_id,
                                       const char *mailbox, uint32_t **uids_r, size_t *count_r)
{
	return sqm_search_uids(store, account_id, mailbox, SQ_MB_SEARCH_HDR_UNINDEXED, NULL, 0,
	                       uids_r, count_r);
}

struct sqm_hdr_each {
	store_search_hdr_fn *fn;
	void *ctx;
};

static void sqm_hdr_row(void *ctx, struct sql_row *st)
{
	struct sqm_hdr_each *h = ctx;
	const char *hdr = sql_col_text0(st, 1);
	h->fn(h->ctx, (uint32_t)sql_col_int(st, 0), hdr, strlen(hdr));
}

int store_db_search_hdr_each(struct store *store, uint64_t account_id, const char *mailbox,
                             const char *prefilter, store_search_hdr_fn *fn, void *ctx)
{
	struct sql_conn *c = store_db_reader(store);
	struct sqm_hdr_each h = {fn, ctx};
	int64_t mailbox_id;
	int started = c == NULL ? -1 : store_db_read_begin(c);
	if (started < 0)
		return -1;
	int ret = sql_int(c, SQ_MAILBOX_ID, &mailbox_id, NULL, "is", (int64_t)account_id, mailbox);
	if (ret == 1) {
		int r;
		if (prefilter == NULL)
			r = sql_each(c, SQ_MB_SEARCH_HDR_ALL, sqm_hdr_row, &h, "i", mailbox_id);
		else
			r = sql_each(c,
			             sqm_utf8_chars(prefilter) >= 3 ? SQ_MB_SEARCH_HDR_INDEXED
			                                            : SQ_MB_SEARCH_HDR_SCAN,
			             sqm_hdr_row, &h, "is", mailbox_id, prefilter);
		if (r < 0)
			ret = -1;
	}
	return store_db_read_end(c, started, ret);
}

int store_db_mailbox_emailid_uids(struct store *store, uint64_t account_id, const char *mailbox,
                                  const char *sha256, uint32_t **uids_r, size_t *count_r)
{
	return sqm_search_uids(store, account_id, mailbox, SQ_MB_EMAILID_UIDS, sha256, -1, uids_r,
	                       count_r);
}
