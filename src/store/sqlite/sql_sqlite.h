/* The SQLite driver of the store (sql.h): the default, embedded engine. One database file in
 * the data directory. Only src/store/ includes this header. */
#ifndef POSTHORN_STORE_SQLITE_SQL_SQLITE_H
#define POSTHORN_STORE_SQLITE_SQL_SQLITE_H

#include "store/sql.h"

/* The database file's name under the data directory. */
#define SQL_SQLITE_DB_NAME "posthorn.db"

extern const struct sql_driver sql_driver_sqlite;

/* sql_sqlite_schema.c: the migrations and the replaced statements (ends with text NULL). */
#define SQL_SQLITE_MIGRATION_COUNT 16
/* The migration that adds tombstone times and floors. */
#define SQL_SQLITE_MIGRATION_TOMBSTONES 13
extern const char *const sql_sqlite_migrations[SQL_SQLITE_MIGRATION_COUNT];
extern const struct sql_replacement sql_sqlite_replacements[];

#endif
