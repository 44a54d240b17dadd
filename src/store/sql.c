/* The engine-independent half of the SQL driver interface (sql.h): statement texts with the
 * driver's replacements, parameter lists from fmt strings, the step/exec/int/each helpers,
 * transactions and migrations. */
#include "store/sql.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "store/store_private.h"
#include "core/banned.h"

/* Most parameters of one statement. */
#define SQL_PARAMS_MAX 16

int sql_open(const struct sql_driver *driver, const char *target, const char *const *texts,
             unsigned count, struct sql **sql_r, const char **error_r)
{
	struct sql_db *db = driver->db_open(target, error_r);
	if (db == NULL)
		return -1;
	struct sql *sql = xcalloc(1, sizeof(*sql));
	sql->driver = driver;
	sql->db = db;
	sql->count = count;
	sql->texts = xcalloc(count, sizeof(*sql->texts));
	for (unsigned i = 0; i < count; i++)
		sql->texts[i] = texts[i];
	for (const struct sql_replacement *r = driver->replacements; r != NULL && r->text != NULL;
	     r++) {
		ASSERT(r->id < count);
		sql->texts[r->id] = r->text;
	}
	*sql_r = sql;
	return 0;
}

void sql_close(struct sql **sqlp)
{
	struct sql *sql = *sqlp;
	if (sql == NULL)
		return;
	*sqlp = NULL;
	sql->driver->db_close(sql->db);
	free(sql->texts);
	free(sql);
}

struct sql_conn *sql_connect(struct sql *sql, enum sql_role role, const char **error_r)
{
	struct sql_conn *c = sql->driver->connect(sql->db, role, error_r);
	if (c != NULL)
		c->sql = sql;
	return c;
}

void sql_disconnect(struct sql_conn *c)
{
	if (c != NULL)
		c->sql->driver->disconnect(c);
}

/* Parameters from fmt and ap into params (SQL_PARAMS_MAX): their number. */
static size_t sql_params(struct sql_param *params, const char *fmt, va_list ap)
{
	size_t n = 0;
	for (; fmt[n] != '\0'; n++) {
		ASSERT(n < SQL_PARAMS_MAX);
		struct sql_param *p = &params[n];
		p->type = fmt[n];
		p->null = false;
		switch (fmt[n]) {
		case 's':
			p->text = va_arg(ap, const char *);
			break;
		case 'i':
			p->value = va_arg(ap, int64_t);
			break;
		case 'b':
			p->blob = va_arg(ap, const void *);
			p->size = va_arg(ap, size_t);
			break;
		default:
			log_panic("sql: bad parameter type '%c'", fmt[n]);
		}
	}
	return n;
}

static int sql_runv(struct sql_conn *c, unsigned id, struct sql_row **row_r, const char **error_r,
                    const char *fmt, va_list ap)
{
	struct sql *sql = c->sql;
	struct sql_param params[SQL_PARAMS_MAX];
	const char *error;
	ASSERT(id < sql->count && sql->texts[id] != NULL);
	size_t n = sql_params(params, fmt, ap);
	int rc = sql->driver->run(c, id, sql->texts[id], params, n, row_r, &error);
	if (rc < 0 && error_r != NULL)
		*error_r = error;
	return rc;
}

int sql_step(struct sql_conn *c, unsigned id, struct sql_row **row_r, const char **error_r,
             const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = sql_runv(c, id, row_r, error_r, fmt, ap);
	va_end(ap);
	return rc;
}

int64_t sql_exec(struct sql_conn *c, unsigned id, const char **error_r, const char *fmt, ...)
{
	struct sql_row *row;
	va_list ap;
	va_start(ap, fmt);
	int rc = sql_runv(c, id, &row, error_r, fmt, ap);
	va_end(ap);
	/* RETURNING rows nobody reads: run the statement to its end. */
	while (rc == SQL_ROW)
		rc = sql_next(row, error_r);
	return rc < 0 ? -1 : c->sql->driver->changes(c);
}

int64_t sql_exec_params(struct sql_conn *c, unsigned id, const struct sql_param *params,
                        size_t count, const char **error_r)
{
	struct sql *sql = c->sql;
	struct sql_row *row;
	const char *error;
	ASSERT(id < sql->count && sql->texts[id] != NULL);
	int rc = sql->driver->run(c, id, sql->texts[id], params, count, &row, &error);
	if (rc < 0 && error_r != NULL)
		*error_r = error;
	while (rc == SQL_ROW)
		rc = sql_next(row, error_r);
	return rc < 0 ? -1 : sql->driver->changes(c);
}

int sql_int(struct sql_conn *c, unsigned id, int64_t *value_r, const char **error_r,
            const char *fmt, ...)
{
	struct sql_row *row;
	va_list ap;
	va_start(ap, fmt);
	int rc = sql_runv(c, id, &row, error_r, fmt, ap);
	va_end(ap);
	if (rc != SQL_ROW)
		return rc < 0 ? -1 : 0;
	*value_r = sql_col_int(row, 0);
	sql_row_done(row);
	return 1;
}

int sql_each(struct sql_conn *c, unsigned id, void (*fn)(void *ctx, struct sql_row *r), void *ctx,
             const char *fmt, ...)
{
	struct sql_row *row;
	va_list ap;
	va_start(ap, fmt);
	int rc = sql_runv(c, id, &row, NULL, fmt, ap);
	va_end(ap);
	while (rc == SQL_ROW) {
		fn(ctx, row);
		rc = sql_next(row, NULL);
	}
	return rc < 0 ? -1 : 0;
}

int sql_next(struct sql_row *row, const char **error_r)
{
	const char *error;
	int rc = row->conn->sql->driver->next(row, &error);
	if (rc < 0 && error_r != NULL)
		*error_r = error;
	return rc;
}

void sql_row_done(struct sql_row *row)
{
	row->conn->sql->driver->row_done(row);
}

int64_t sql_col_int(struct sql_row *row, int col)
{
	return row->conn->sql->driver->col_int(row, col);
}

const char *sql_col_text(struct sql_row *row, int col)
{
	return row->conn->sql->driver->col_text(row, col);
}

const char *sql_col_text0(struct sql_row *row, int col)
{
	const char *s = sql_col_text(row, col);
	return s == NULL ? "" : s;
}

const void *sql_col_blob(struct sql_row *row, int col, size_t *size_r)
{
	return row->conn->sql->driver->col_blob(row, col, size_r);
}

bool sql_col_null(struct sql_row *row, int col)
{
	return row->conn->sql->driver->col_null(row, col);
}

int sql_begin(struct sql_conn *c, enum sql_tx tx, const char **error_r)
{
	const char *error;
	int rc = c->sql->driver->begin(c, tx, &error);
	if (rc < 0 && error_r != NULL)
		*error_r = error;
	return rc;
}

int sql_end(struct sql_conn *c, int ret, const char **error_r)
{
	const struct sql_driver *d = c->sql->driver;
	const char *error;
	if (ret == 0 && d->commit(c, &error) < 0) {
		if (error_r != NULL)
			*error_r = error;
		ret = -1;
	}
	if (ret < 0 && d->in_tx(c))
		d->rollback(c);
	return ret;
}

bool sql_in_tx(struct sql_conn *c)
{
	return c->sql->driver->in_tx(c);
}

const char sql_commit_unknown[] = "database error: the connection broke during COMMIT and "
                                  "its outcome is unknown";

bool sql_retryable(struct sql_conn *c)
{
	return c->sql->driver->retryable != NULL && c->sql->driver->retryable(c);
}

/* One migration step: 0 with *version_r, or -1. */
static int sql_migrate_step(struct sql_conn *c, int target, int *version_r, const char **error_r)
{
	const struct sql_driver *d = c->sql->driver;
	int version = 0;
	if (sql_begin(c, SQL_TX_WRITE, error_r) < 0)
		return -1;
	int ret = d->schema_get(c, &version, error_r);
	if (ret == 0 && version > d->migration_count) {
		*error_r =
		    store_error_fmt("database schema version %d is newer than this program (%d)",
		                    version, d->migration_count);
		ret = -1;
	}
	if (ret == 0 && version < target) {
		if (d->script(c, d->migrations[version], error_r) < 0 ||
		    d->schema_set(c, version + 1, error_r) < 0) {
			ret = -1;
		} else {
			log_info("store: applied schema migration %d", version + 1);
			version++;
		}
	}
	*version_r = version;
	return sql_end(c, ret, error_r);
}

int sql_migrate(struct sql_conn *c, int target, const char **error_r)
{
	int version = 0;
	if (target < 0 || target > c->sql->driver->migration_count) {
		*error_r = store_error_fmt("no schema version %d", target);
		return -1;
	}
	do {
		if (sql_migrate_step(c, target, &version, error_r) < 0)
			return -1;
	} while (version < target);
	return 0;
}

int sql_ids_follow(struct sql_conn *c, const char *table, const char **error_r)
{
	const struct sql_driver *d = c->sql->driver;
	return d->ids_follow == NULL ? 0 : d->ids_follow(c, table, error_r);
}

int sql_schema_version(struct sql_conn *c)
{
	int version;
	const char *error;
	return c->sql->driver->schema_get(c, &version, &error) < 0 ? -1 : version;
}
