/* The PostgreSQL driver of the store (sql.h), over libpq: for several nodes on one database.
 * The target is a libpq connection string or URI. Only src/store/ includes this header, and
 * only src/store/pg/ includes libpq's. */
#ifndef POSTHORN_STORE_PG_SQL_PG_H
#define POSTHORN_STORE_PG_SQL_PG_H

#include "store/sql.h"

extern const struct sql_driver sql_driver_pg;

/* The table that holds the schema version (one row), created by the first migration's
 * transaction. */
#define SQL_PG_SCHEMA_TABLE "posthorn_schema"

/* sql_pg_schema.c: the migrations and the replaced statements (ends with text NULL). */
#define SQL_PG_MIGRATION_COUNT 12
/* The migration that adds tombstone times and floors. */
#define SQL_PG_MIGRATION_TOMBSTONES 9
extern const char *const sql_pg_migrations[SQL_PG_MIGRATION_COUNT];
extern const struct sql_replacement sql_pg_replacements[];

/* Rewrite the ?N parameters of a common text to PostgreSQL's $N (outside quoted strings
 * and identifiers): a malloc'd copy; *max_r (when not NULL) is the highest N, 0 for none. */
char *sql_pg_rewrite_dup(const char *text, unsigned *max_r);

#endif
