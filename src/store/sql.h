/* The SQL driver interface under the store: the store's logic (store_db*.c) is written once
 * over it, and each engine is a driver (sqlite/sql_sqlite.c, pg/sql_pg.c) with its dialect
 * differences: how a connection is opened and configured, how transactions begin, the
 * schema migrations, and the few statements whose text differs. Dovecot's lib-sql is the
 * model, reduced to what the store needs.
 *
 * Statements are named by a number that indexes a text table given to sql_db_open(); a
 * connection prepares each on first use and keeps it. Texts use the common dialect that
 * SQLite and PostgreSQL both accept: numbered parameters ?1, ?2, ... (a driver may rewrite
 * them, e.g. to $1), ON CONFLICT ... DO UPDATE/NOTHING, RETURNING, coalesce(), CASE; no
 * boolean-valued result columns (PostgreSQL returns 't'/'f'), no scalar max()/min() of two
 * values (greatest()/least() on PostgreSQL), no PRAGMA. A text that cannot be common has a
 * per-driver replacement (struct sql_driver.replace).
 *
 * A connection is used by one thread at a time. Every call is synchronous; it is meant for
 * the writer thread, admin commands and the CLI. Errors are logged and returned as a string
 * from store_error_fmt(). Only src/store/ includes this header. */
#ifndef POSTHORN_STORE_SQL_H
#define POSTHORN_STORE_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Results of sql_step() and sql_next(). */
#define SQL_DONE 0
#define SQL_ROW 1

struct sql;
struct sql_db; /* a driver's database: where connections come from */

/* One connection; a driver's connection struct embeds it as its first member. */
struct sql_conn {
	struct sql *sql;
};
/* The current row of a running statement; a driver's row struct embeds it first. */
struct sql_row {
	struct sql_conn *conn;
};

enum sql_role {
	SQL_ROLE_WRITER, /* writes: durable commits (SQLite synchronous=FULL) */
	SQL_ROLE_READER, /* reads only (SQLite query_only) */
};

enum sql_tx {
	SQL_TX_WRITE, /* SQLite BEGIN IMMEDIATE: the write lock at once */
	SQL_TX_READ,  /* one consistent snapshot for several statements */
};

/* A parameter as bound by the fmt strings below: 's' const char * (NULL binds NULL), 'i'
 * int64_t, 'b' const void * then size_t (a blob; NULL binds NULL). An 'i' with null set
 * binds NULL (only callers that fill sql_param themselves, e.g. an import, set it). */
struct sql_param {
	char type; /* 's', 'i', 'b' */
	bool null;
	const char *text;
	int64_t value;
	const void *blob;
	size_t size;
};

/* A statement whose text differs on one engine. */
struct sql_replacement {
	unsigned id;
	const char *text;
};

/* What a driver implements. Every function that can fail returns -1 and sets *error_r
 * (from store_error_fmt(), after logging) when error_r is not NULL. */
struct sql_driver {
	const char *name; /* "sqlite", "postgresql" */
	/* Open the database at target (SQLite: a data directory; PostgreSQL: a libpq
	 * connection string or URI) for connections; create nothing yet. */
	struct sql_db *(*db_open)(const char *target, const char **error_r);
	void (*db_close)(struct sql_db *db);
	/* A new connection (its sql member is set by the caller). */
	struct sql_conn *(*connect)(struct sql_db *db, enum sql_role role, const char **error_r);
	void (*disconnect)(struct sql_conn *c);

	/* Run statement id (text: the final text, already looked up) with params; on a row,
	 * *row_r is the current row until next() returns something else (the driver has then
	 * ended the statement) or row_done(). The SQLite driver allows the same statement to
	 * run nested (see sql_each()). Returns SQL_ROW, SQL_DONE (the statement is finished),
	 * or -1 (finished). */
	int (*run)(struct sql_conn *c, unsigned id, const char *text,
	           const struct sql_param *params, size_t count, struct sql_row **row_r,
	           const char **error_r);
	/* Rows changed by the last finished INSERT, UPDATE or DELETE of the connection. */
	int64_t (*changes)(struct sql_conn *c);
	/* The next row: SQL_ROW, or SQL_DONE or -1 with the statement ended. */
	int (*next)(struct sql_row *row, const char **error_r);
	/* End a statement before its last row. */
	void (*row_done)(struct sql_row *row);
	int64_t (*col_int)(struct sql_row *row, int col);
	const char *(*col_text)(struct sql_row *row, int col); /* NULL for NULL */
	const void *(*col_blob)(struct sql_row *row, int col, size_t *size_r);
	bool (*col_null)(struct sql_row *row, int col);

	int (*begin)(struct sql_conn *c, enum sql_tx tx, const char **error_r);
	int (*commit)(struct sql_conn *c, const char **error_r);
	void (*rollback)(struct sql_conn *c);
	bool (*in_tx)(struct sql_conn *c);
	/* Optional: whether the connection's last transaction failed on a conflict with
	 * another one (PostgreSQL: serialization failure, deadlock), so that running it again
	 * from its BEGIN may well succeed. Until the next begin. */
	bool (*retryable)(struct sql_conn *c);
	/* Run a script of several statements without parameters (a migration). */
	int (*script)(struct sql_conn *c, const char *sql, const char **error_r);

	/* Schema: the number of migrations applied (0 for a new database), and setting it
	 * inside the migration's transaction. */
	int (*schema_get)(struct sql_conn *c, int *version_r, const char **error_r);
	int (*schema_set)(struct sql_conn *c, int version, const char **error_r);
	const char *const *migrations; /* migration i + 1 is migrations[i] */
	int migration_count;

	const struct sql_replacement *replacements; /* ends with text NULL */
	/* Optional, for several nodes on one database: subscribe the connection to a
	 * notification channel; then wait up to timeout_ms for notifications and call fn
	 * with each payload (0, also when none came; -1: the connection is lost). */
	int (*listen)(struct sql_conn *c, const char *channel, const char **error_r);
	int (*wait_notify)(struct sql_conn *c, int timeout_ms,
	                   void (*fn)(void *ctx, const char *payload), void *ctx,
	                   const char **error_r);
	/* Optional: after rows with explicit ids were inserted into table (an import), make
	 * the ids the engine hands out next follow them (PostgreSQL: setval of its identity
	 * sequence). SQLite needs nothing. */
	int (*ids_follow)(struct sql_conn *c, const char *table, const char **error_r);
};

/* A database with its driver and statement texts (texts[id] for id < count; replaced per
 * driver). texts must outlive the database. */
struct sql {
	const struct sql_driver *driver;
	struct sql_db *db;
	const char **texts; /* count entries, malloc'd */
	unsigned count;
};

/* Open: 0 with *sql_r, or -1. */
int sql_open(const struct sql_driver *driver, const char *target, const char *const *texts,
             unsigned count, struct sql **sql_r, const char **error_r);
void sql_close(struct sql **sql);
/* A new connection (the caller closes it with sql_disconnect()); NULL on error. */
struct sql_conn *sql_connect(struct sql *sql, enum sql_role role, const char **error_r);
void sql_disconnect(struct sql_conn *c); /* accepts NULL */

/* Statement helpers; arguments bound by fmt (see struct sql_param).
 * step: run and stop at the first row: SQL_ROW with *row_r (the caller reads it, may call
 *   sql_next(), and ends with sql_row_done()), SQL_DONE (nothing to end), or -1.
 * exec: run for the effect: the number of changed rows, or -1.
 * int: the first column of the first row: 1 found, 0 no row, -1 error.
 * each: row() for every row: 0, or -1. row() may call back into the store on this thread,
 *   even the same statement (the SQLite driver then prepares a private copy). */
int sql_step(struct sql_conn *c, unsigned id, struct sql_row **row_r, const char **error_r,
             const char *fmt, ...);
int64_t sql_exec(struct sql_conn *c, unsigned id, const char **error_r, const char *fmt, ...);
/* exec with the parameters already in an array. */
int64_t sql_exec_params(struct sql_conn *c, unsigned id, const struct sql_param *params,
                        size_t count, const char **error_r);
int sql_int(struct sql_conn *c, unsigned id, int64_t *value_r, const char **error_r,
            const char *fmt, ...);
int sql_each(struct sql_conn *c, unsigned id, void (*row)(void *ctx, struct sql_row *r), void *ctx,
             const char *fmt, ...);

/* Rows: next as the driver's; row_done ends a statement before its last row. */
int sql_next(struct sql_row *row, const char **error_r);
void sql_row_done(struct sql_row *row);
int64_t sql_col_int(struct sql_row *row, int col);
const char *sql_col_text(struct sql_row *row, int col);  /* NULL for NULL */
const char *sql_col_text0(struct sql_row *row, int col); /* "" for NULL */
const void *sql_col_blob(struct sql_row *row, int col, size_t *size_r);
bool sql_col_null(struct sql_row *row, int col);

/* Transactions. end: commit when ret is 0, else roll back; returns ret, or -1 when the
 * commit failed. */
int sql_begin(struct sql_conn *c, enum sql_tx tx, const char **error_r);
int sql_end(struct sql_conn *c, int ret, const char **error_r);
bool sql_in_tx(struct sql_conn *c);
/* The driver's retryable, when it has one; else false. */
bool sql_retryable(struct sql_conn *c);
/* The error of a commit whose outcome nobody can tell (PostgreSQL: the connection broke
 * after COMMIT went out and the transaction's status could not be read): the work may be
 * stored already, so it must not run again by itself (compare the pointer). */
extern const char sql_commit_unknown[];

/* Apply the driver's migrations after the database's version, up to target (each in its
 * own write transaction, re-reading the version inside it: another process may migrate at
 * the same time). 0, or -1 (also when the database is newer than this program). */
int sql_migrate(struct sql_conn *c, int target, const char **error_r);
/* The driver's ids_follow, when it has one: 0, or -1. */
int sql_ids_follow(struct sql_conn *c, const char *table, const char **error_r);
/* The schema version, or -1. */
int sql_schema_version(struct sql_conn *c);

#endif
