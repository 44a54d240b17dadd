/* The SQLite driver of sql.h: one database file in the data directory in WAL mode; writer
 * connections commit durably (synchronous=FULL) and take the write lock at BEGIN
 * (IMMEDIATE), readers are query-only and read one snapshot per deferred BEGIN. Statements
 * are prepared once per connection; a statement that is already running (a nested listing
 * from a callback) runs as a private copy. The schema version is PRAGMA user_version. */
#include "store/sqlite/sql_sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/buf.h"
#include "core/fault.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/blob.h"
#include "store/store_private.h"
#include "core/banned.h"

#define SQLITE_BUSY_TIMEOUT_MS 5000

struct sqlite_db {
	char *path;
};

struct sqlite_row {
	struct sql_row base;
	sqlite3_stmt *st;
	bool own; /* a private copy: finalized at the end */
};

struct sqlite_conn {
	struct sql_conn base;
	sqlite3 *db;
	sqlite3_stmt **stmts; /* by statement id, prepared on first use */
	struct sqlite_row *rows;
	unsigned count;
};

static const char *sqlite_fail(struct sqlite_conn *c, const char *what)
{
	log_error("store: database: %s: %s", what, sqlite3_errmsg(c->db));
	return store_error_fmt("database error: %s", sqlite3_errmsg(c->db));
}

static struct sql_db *sqlite_db_open(const char *target, const char **error_r)
{
	struct sqlite_db *db = xcalloc(1, sizeof(*db));
	struct buf b;
	(void)error_r;
	buf_init(&b, 8192);
	if (buf_printf(&b, "%s/%s", target, SQL_SQLITE_DB_NAME) < 0)
		log_panic("store: data directory path too long");
	db->path = b.data;
	return (struct sql_db *)db;
}

static void sqlite_db_close(struct sql_db *sdb)
{
	struct sqlite_db *db = (struct sqlite_db *)sdb;
	free(db->path);
	free(db);
}

static void sqlite_disconnect(struct sql_conn *sc)
{
	struct sqlite_conn *c = (struct sqlite_conn *)sc;
	for (unsigned i = 0; i < c->count; i++)
		sqlite3_finalize(c->stmts[i]);
	if (sqlite3_close(c->db) != SQLITE_OK)
		log_error("store: database close: %s", sqlite3_errmsg(c->db));
	free(c->stmts);
	free(c->rows);
	free(c);
}

/* Switch the database to WAL mode (persistent; a no-op once done). */
static int sqlite_journal_wal(struct sqlite_conn *c, const char **error_r)
{
	sqlite3_stmt *st;
	int ok = 0;
	if (sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK) {
		*error_r = sqlite_fail(c, "journal_mode");
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
		ok = strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
	sqlite3_finalize(st);
	if (!ok)
		*error_r = store_error_fmt("database: cannot switch to WAL mode");
	return ok ? 0 : -1;
}

#ifdef POSTHORN_TEST_BUILD
/* Test builds only: the writer checkpoints through this WAL hook, which does what
 * SQLite's automatic checkpoint does (a PASSIVE checkpoint once the WAL holds
 * SQLITE_FAULT_CHECKPOINT_FRAMES pages, SQLite's default) with the fault point
 * store.wal.checkpoint before it; an error from the point skips the checkpoint, as a failed
 * one would (the WAL grows, nothing is lost). */
#define SQLITE_FAULT_CHECKPOINT_FRAMES 1000
static int sqlite_wal_fault_hook(void *ctx, sqlite3 *db, const char *name, int frames)
{
	(void)ctx;
	if (frames < SQLITE_FAULT_CHECKPOINT_FRAMES || FAULT_POINT("store.wal.checkpoint") != 0)
		return SQLITE_OK;
	(void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return SQLITE_OK;
}
#endif

/* Writers get synchronous=FULL (a COMMIT is durable) and create the file, readers are
 * query-only. All enforce foreign keys and wait up to SQLITE_BUSY_TIMEOUT_MS for locks. */
static struct sql_conn *sqlite_connect(struct sql_db *sdb, enum sql_role role, const char **error_r)
{
	struct sqlite_db *db = (struct sqlite_db *)sdb;
	struct sqlite_conn *c = xcalloc(1, sizeof(*c));
	bool reader = role == SQL_ROLE_READER;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (reader ? 0 : SQLITE_OPEN_CREATE);
	const char *pragmas = reader ? "PRAGMA foreign_keys = ON; PRAGMA query_only = ON;"
	                               " PRAGMA mmap_size = 1073741824;"
	                      : blob_unsafe_nosync()
	                          ? "PRAGMA foreign_keys = ON; PRAGMA synchronous = OFF;"
	                          : "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;";
	if (sqlite3_open_v2(db->path, &c->db, flags, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(c->db, SQLITE_BUSY_TIMEOUT_MS) != SQLITE_OK ||
	    sqlite3_exec(c->db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = c->db == NULL ? "database: out of memory"
		                         : store_error_fmt("database %s: %s", db->path,
		                                           sqlite3_errmsg(c->db));
		log_error("store: %s", *error_r);
		sqlite_disconnect(&c->base);
		return NULL;
	}
	if (!reader && blob_unsafe_nosync())
		log_warn("store: POSTHORN_TEST_UNSAFE_NOSYNC=1 (test build): synchronous=OFF, "
		         "acknowledged mail is lost at a power cut");
	if (!reader && sqlite_journal_wal(c, error_r) < 0) {
		sqlite_disconnect(&c->base);
		return NULL;
	}
#ifdef POSTHORN_TEST_BUILD
	if (!reader)
		(void)sqlite3_wal_hook(c->db, sqlite_wal_fault_hook, NULL);
#endif
	return &c->base;
}

static int sqlite_bind(sqlite3_stmt *st, const struct sql_param *params, size_t count)
{
	int rc = SQLITE_OK;
	for (size_t i = 0; rc == SQLITE_OK && i < count; i++) {
		const struct sql_param *p = &params[i];
		int n = (int)i + 1;
		if (p->type == 's')
			rc = p->text == NULL ? sqlite3_bind_null(st, n)
			                     : sqlite3_bind_text(st, n, p->text, -1, SQLITE_STATIC);
		else if (p->type == 'b')
			rc = p->blob == NULL
			         ? sqlite3_bind_null(st, n)
			         : sqlite3_bind_blob64(st, n, p->blob, p->size, SQLITE_STATIC);
		else
			rc = p->null ? sqlite3_bind_null(st, n)
			             : sqlite3_bind_int64(st, n, p->value);
	}
	return rc;
}

static void sqlite_end(struct sqlite_row *r)
{
	if (r->own) {
		sqlite3_finalize(r->st);
		free(r);
		return;
	}
	sqlite3_reset(r->st);
	sqlite3_clear_bindings(r->st);
}

/* The row of statement id: the cached statement, or a private copy when it is running. */
static struct sqlite_row *sqlite_row_for(struct sqlite_conn *c, unsigned id, const char *text,
                                         const char **error_r)
{
	if (c->stmts == NULL) {
		c->count = c->base.sql->count;
		c->stmts = xcalloc(c->count, sizeof(*c->stmts));
		c->rows = xcalloc(c->count, sizeof(*c->rows));
	}
	ASSERT(id < c->count);
	sqlite3_stmt *st = c->stmts[id];
	if (st == NULL) {
		if (sqlite3_prepare_v3(c->db, text, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
		    SQLITE_OK) {
			*error_r = sqlite_fail(c, text);
			return NULL;
		}
		c->stmts[id] = st;
		c->rows[id] = (struct sqlite_row){.base.conn = &c->base, .st = st};
	}
	if (!sqlite3_stmt_busy(st))
		return &c->rows[id];
	struct sqlite_row *r = xcalloc(1, sizeof(*r));
	r->base.conn = &c->base;
	r->own = true;
	if (sqlite3_prepare_v2(c->db, text, -1, &r->st, NULL) != SQLITE_OK) {
		*error_r = sqlite_fail(c, text);
		free(r);
		return NULL;
	}
	return r;
}

static int sqlite_run(struct sql_conn *sc, unsigned id, const char *text,
                      const struct sql_param *params, size_t count, struct sql_row **row_r,
                      const char **error_r)
{
	struct sqlite_conn *c = (struct sqlite_conn *)sc;
	struct sqlite_row *r = sqlite_row_for(c, id, text, error_r);
	if (r == NULL)
		return -1;
	if (sqlite_bind(r->st, params, count) != SQLITE_OK) {
		*error_r = sqlite_fail(c, text);
		sqlite_end(r);
		return -1;
	}
	int rc = sqlite3_step(r->st);
	if (rc == SQLITE_ROW) {
		*row_r = &r->base;
		return SQL_ROW;
	}
	if (rc != SQLITE_DONE)
		*error_r = sqlite_fail(c, text);
	sqlite_end(r);
	return rc == SQLITE_DONE ? SQL_DONE : -1;
}

static int sqlite_next(struct sql_row *sr, const char **error_r)
{
	struct sqlite_row *r = (struct sqlite_row *)sr;
	int rc = sqlite3_step(r->st);
	if (rc == SQLITE_ROW)
		return SQL_ROW;
	if (rc != SQLITE_DONE)
		*error_r = sqlite_fail((struct sqlite_conn *)sr->conn, sqlite3_sql(r->st));
	sqlite_end(r);
	return rc == SQLITE_DONE ? SQL_DONE : -1;
}

static void sqlite_row_done(struct sql_row *sr)
{
	sqlite_end((struct sqlite_row *)sr);
}

static int64_t sqlite_changes(struct sql_conn *sc)
{
	return sqlite3_changes64(((struct sqlite_conn *)sc)->db);
}

static int64_t sqlite_col_int(struct sql_row *sr, int col)
{
	return sqlite3_column_int64(((struct sqlite_row *)sr)->st, col);
}

static const char *sqlite_col_text(struct sql_row *sr, int col)
{
	return (const char *)sqlite3_column_text(((struct sqlite_row *)sr)->st, col);
}

static const void *sqlite_col_blob(struct sql_row *sr, int col, size_t *size_r)
{
	sqlite3_stmt *st = ((struct sqlite_row *)sr)->st;
	const void *p = sqlite3_column_blob(st, col);
	*size_r = (size_t)sqlite3_column_bytes(st, col);
	return p;
}

static bool sqlite_col_null(struct sql_row *sr, int col)
{
	return sqlite3_column_type(((struct sqlite_row *)sr)->st, col) == SQLITE_NULL;
}

static int sqlite_script(struct sql_conn *sc, const char *sql, const char **error_r)
{
	struct sqlite_conn *c = (struct sqlite_conn *)sc;
	if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = sqlite_fail(c, "script");
		return -1;
	}
	return 0;
}

static int sqlite_begin(struct sql_conn *sc, enum sql_tx tx, const char **error_r)
{
	/* A deferred BEGIN on a query-only connection is one read snapshot. */
	return sqlite_script(sc, tx == SQL_TX_WRITE ? "BEGIN IMMEDIATE" : "BEGIN", error_r);
}

static int sqlite_commit(struct sql_conn *sc, const char **error_r)
{
	return sqlite_script(sc, "COMMIT", error_r);
}

static bool sqlite_in_tx(struct sql_conn *sc)
{
	return sqlite3_get_autocommit(((struct sqlite_conn *)sc)->db) == 0;
}

static void sqlite_rollback(struct sql_conn *sc)
{
	const char *error;
	if (sqlite_in_tx(sc))
		(void)sqlite_script(sc, "ROLLBACK", &error);
}

static int sqlite_schema_get(struct sql_conn *sc, int *version_r, const char **error_r)
{
	struct sqlite_conn *c = (struct sqlite_conn *)sc;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) {
		*error_r = sqlite_fail(c, "user_version");
		return -1;
	}
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*version_r = sqlite3_column_int(st, 0);
	else
		*error_r = sqlite_fail(c, "user_version");
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

static int sqlite_schema_set(struct sql_conn *sc, int version, const char **error_r)
{
	char text[64];
	(void)snprintf(text, sizeof(text), "PRAGMA user_version = %d", version);
	return sqlite_script(sc, text, error_r);
}

const struct sql_driver sql_driver_sqlite = {
    .name = "sqlite",
    .db_open = sqlite_db_open,
    .db_close = sqlite_db_close,
    .connect = sqlite_connect,
    .disconnect = sqlite_disconnect,
    .run = sqlite_run,
    .changes = sqlite_changes,
    .next = sqlite_next,
    .row_done = sqlite_row_done,
    .col_int = sqlite_col_int,
    .col_text = sqlite_col_text,
    .col_blob = sqlite_col_blob,
    .col_null = sqlite_col_null,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .in_tx = sqlite_in_tx,
    .script = sqlite_script,
    .schema_get = sqlite_schema_get,
    .schema_set = sqlite_schema_set,
    .migrations = sql_sqlite_migrations,
    .migration_count = SQL_SQLITE_MIGRATION_COUNT,
    .replacements = sql_sqlite_replacements,
};
