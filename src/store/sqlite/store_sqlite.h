/* The embedded backend of the store: one database file in the data directory, WAL mode,
 * a writer connection for the delivery thread, a mutex-protected connection for admin
 * writes, and one read-only connection per reading thread. store.c picks it in
 * store_open(); nothing outside src/store/ sees it. */
#ifndef POSTHORN_STORE_SQLITE_STORE_SQLITE_H
#define POSTHORN_STORE_SQLITE_STORE_SQLITE_H

#include "store/store_private.h"

/* The database file's name under the data directory. */
#define STORE_SQLITE_DB_NAME "posthorn.db"

extern const struct store_vfuncs store_sqlite_vfuncs;

/* For tests and tools: create (or migrate) the database under the existing data_dir up to
 * schema version `version` only (0..latest), without opening a store. 0, or -1 with
 * *error_r. store_open() then applies the remaining migrations. */
int store_sqlite_create(const char *data_dir, int version, const char **error_r);

#endif
