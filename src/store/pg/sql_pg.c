/* The PostgreSQL driver of sql.h over libpq, synchronous (the writer thread, admin commands
 * and the CLI). A connection prepares each statement once, by id, with explicit parameter
 * types (text, int8, bytea; blobs travel binary); a run buffers its whole result and hands
 * out rows from it, so a row callback may run the same statement again (each run has its
 * own row). Write transactions are READ COMMITTED (the store takes row locks in a fixed
 * order), read transactions one REPEATABLE READ snapshot; reader connections are read-only.
 * The schema version is the one row of posthorn_schema, changed under a transaction-level
 * advisory lock so that two nodes starting at once do not both migrate. Connection setup
 * and result checks are small functions for the asynchronous path to reuse. */
#include "store/pg/sql_pg.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libpq-fe.h>

#include "core/fault.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/store_private.h"
#include "core/utf8.h"
#include "core/banned.h"

/* Type oids (pg_type.h, stable across versions). */
#define PG_OID_BOOL 16
#define PG_OID_BYTEA 17
#define PG_OID_NAME 19
#define PG_OID_INT8 20
#define PG_OID_INT2 21
#define PG_OID_INT4 23
#define PG_OID_TEXT 25
#define PG_OID_VARCHAR 1043

/* Most parameters of one statement. */
#define PG_PARAMS_MAX 32

/* The key of the advisory lock that serializes schema changes: "posthorn" in ASCII. */
#define PG_SCHEMA_LOCK_KEY "8101821198468346478"

struct pg_db {
	char *conninfo;
};

/* A statement prepared on a connection ("p<id>"), with the parameter types it has. */
struct pg_stmt {
	bool prepared;
	bool binary; /* results in binary format (see pg_binary_result()) */
	char *types; /* the sql_param types, e.g. "isb" */
};

struct pg_row {
	struct sql_row base;
	PGresult *res;
	int row, rows;
	bool counts;           /* an INSERT, UPDATE, DELETE or MERGE: changes is its count */
	int64_t changes;       /* rows it changed */
	unsigned char **blobs; /* unescaped bytea columns of the current row, by column */
	size_t *blob_sizes;
	char (*nums)[24]; /* binary integer columns of the current row as text, by column */
	bool busy;        /* a statement is running on this row */
	bool own;         /* a nested run's row: freed at the end */
};

struct pg_conn {
	struct sql_conn base;
	PGconn *pg;
	enum sql_role role;
	struct pg_stmt *stmts; /* by statement id */
	struct pg_row *rows;   /* by statement id, for the outermost run */
	unsigned count;
	int64_t changes; /* of the last finished INSERT, UPDATE or DELETE */
	bool tx;         /* a transaction was begun and not yet ended (also when it broke) */
	bool write;      /* and it is a write transaction */
	bool conflict;   /* the transaction failed on a serialization failure or a deadlock */
};

static void pg_blobs_free(struct pg_row *r);
static int pg_query_int(struct pg_conn *c, const char *sql, int64_t *value_r, const char **error_r);

/* ---- errors ---- */

/* A libpq message without its trailing newline: its length. */
static int pg_msg_len(const char *msg)
{
	size_t n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	return (int)n;
}

/* The connection's error (no result to tell more) on one line: logged and returned. */
static const char *pg_fail_conn(struct pg_conn *c, const char *what)
{
	char msg[512];
	(void)snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c->pg));
	for (char *p = msg; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	log_error("store: database: %s: %.*s", what, pg_msg_len(msg), msg);
	return store_error_fmt("database error: %.*s", pg_msg_len(msg), msg);
}

/* A failed result's error with its SQLSTATE (none when the connection broke): logged and
 * returned. */
static const char *pg_fail_result(struct pg_conn *c, const PGresult *res, const char *what)
{
	const char *state = res == NULL ? NULL : PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = res == NULL ? "" : PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (msg == NULL || state == NULL)
		return pg_fail_conn(c, what);
	/* 40001 serialization_failure, 40P01 deadlock_detected: nothing is wrong with the
	 * transaction but its timing; it may run again (sql_retryable()). */
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0) {
		c->conflict = true;
		log_warn("store: database: %s: %s (SQLSTATE %s)", what, msg, state);
		return store_error_fmt("database error: %s (SQLSTATE %s)", msg, state);
	}
	log_error("store: database: %s: %s (SQLSTATE %s)", what, msg, state);
	return store_error_fmt("database error: %s (SQLSTATE %s)", msg, state);
}

/* 0 when res (which the caller clears) succeeded, else -1 with *error_r. */
static int pg_result_check(struct pg_conn *c, const PGresult *res, const char *what,
                           const char **error_r)
{
	ExecStatusType st = res == NULL ? PGRES_FATAL_ERROR : PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return 0;
	*error_r = pg_fail_result(c, res, what);
	return -1;
}

/* Run a text without parameters and check it: 0, or -1. */
static int pg_command(struct pg_conn *c, const char *sql, const char **error_r)
{
	PGresult *res = PQexec(c->pg, sql);
	int ret = pg_result_check(c, res, sql, error_r);
	PQclear(res);
	return ret;
}

/* ---- databases and connections ---- */

static struct sql_db *pg_db_open(const char *target, const char **error_r)
{
	char *error = NULL;
	PQconninfoOption *opts = PQconninfoParse(target, &error);
	if (opts == NULL) {
		int n = error == NULL ? 0 : pg_msg_len(error);
		*error_r = store_error_fmt("invalid PostgreSQL connection string: %.*s", n,
		                           error == NULL ? "" : error);
		log_error("store: %s", *error_r);
		PQfreemem(error);
		return NULL;
	}
	PQconninfoFree(opts);
	struct pg_db *db = xcalloc(1, sizeof(*db));
	db->conninfo = xstrdup(target);
	return (struct sql_db *)db;
}

static void pg_db_close(struct sql_db *sdb)
{
	struct pg_db *db = (struct pg_db *)sdb;
	free(db->conninfo);
	free(db);
}

static void pg_notice(void *arg, const char *message)
{
	(void)arg;
	log_debug("store: database notice: %.*s", pg_msg_len(message), message);
}

/* The connection parameters: target (a connection string or URI, expanded) may set the
 * application name and the connect timeout; the client encoding is always UTF-8. */
static const char *const pg_conn_keys[] = {"application_name", "connect_timeout", "dbname",
                                           "client_encoding", NULL};

/* After the connection is up: notices go to the debug log, readers are read-only. The
 * statement for the role is pg_conn_setup_sql(). */
static const char *pg_conn_setup_sql(enum sql_role role)
{
	return role == SQL_ROLE_READER ? "SET default_transaction_read_only = on" : NULL;
}

static void pg_disconnect(struct sql_conn *sc)
{
	struct pg_conn *c = (struct pg_conn *)sc;
	for (unsigned i = 0; i < c->count; i++) {
		if (c->rows[i].busy) {
			pg_blobs_free(&c->rows[i]);
			PQclear(c->rows[i].res);
		}
		free(c->stmts[i].types);
	}
	PQfinish(c->pg);
	free(c->stmts);
	free(c->rows);
	free(c);
}

static struct sql_conn *pg_connect(struct sql_db *sdb, enum sql_role role, const char **error_r)
{
	struct pg_db *db = (struct pg_db *)sdb;
	struct pg_conn *c = xcalloc(1, sizeof(*c));
	/* A database that does not answer costs a thread 10 s, not forever (the target may
	 * set its own connect_timeout). */
	const char *const values[] = {"posthorn", "10", db->conninfo, "UTF8", NULL};
	c->role = role;
	c->pg = PQconnectdbParams(pg_conn_keys, values, 1);
	if (c->pg == NULL)
		log_panic("store: out of memory for a database connection");
	if (PQstatus(c->pg) != CONNECTION_OK) {
		*error_r = pg_fail_conn(c, "connect");
		pg_disconnect(&c->base);
		return NULL;
	}
	(void)PQsetNoticeProcessor(c->pg, pg_notice, NULL);
	const char *setup = pg_conn_setup_sql(role);
	if (setup != NULL && pg_command(c, setup, error_r) < 0) {
		pg_disconnect(&c->base);
		return NULL;
	}
	return &c->base;
}

/* A connection the server or the network broke is made again on its next use outside a
 * transaction (the database may be back: a restart, a failover to another host of the
 * target); inside one, the transaction failed and the caller's rollback ends it. Its
 * prepared statements were the old session's. 0 usable, -1 still down. */
static int pg_revive(struct pg_conn *c, const char **error_r)
{
	if (PQstatus(c->pg) == CONNECTION_OK)
		return 0;
	PQreset(c->pg);
	if (PQstatus(c->pg) != CONNECTION_OK) {
		*error_r = pg_fail_conn(c, "reconnect");
		return -1;
	}
	for (unsigned i = 0; i < c->count; i++) {
		c->stmts[i].prepared = false;
		free(c->stmts[i].types);
		c->stmts[i].types = NULL;
	}
	const char *setup = pg_conn_setup_sql(c->role);
	if (setup != NULL && pg_command(c, setup, error_r) < 0)
		return -1;
	log_info("store: database connection made again");
	return 0;
}

/* ---- statements ---- */

char *sql_pg_rewrite_dup(const char *text, unsigned *max_r)
{
	size_t n = strlen(text);
	char *out = xmalloc(n + 1);
	char quote = 0;
	unsigned max = 0;
	for (size_t i = 0; i <= n; i++) {
		char ch = text[i];
		if (quote != 0) {
			if (ch == quote)
				quote = 0; /* a doubled quote closes and reopens */
		} else if (ch == '\'' || ch == '"') {
			quote = ch;
		} else if (ch == '?' && isdigit((unsigned char)text[i + 1])) {
			ch = '$';
			unsigned long v = strtoul(text + i + 1, NULL, 10);
			if (v > max)
				max = v > 9999 ? 9999 : (unsigned)v;
		}
		out[i] = ch;
	}
	if (max_r != NULL)
		*max_r = max;
	return out;
}

static void pg_stmt_name(char *name, size_t size, unsigned id)
{
	(void)snprintf(name, size, "p%u", id);
}

/* The types of params as a string ("isb"): malloc'd. */
static char *pg_types_dup(const struct sql_param *params, size_t count)
{
	char *types = xmalloc(count + 1);
	for (size_t i = 0; i < count; i++)
		types[i] = params[i].type;
	types[count] = '\0';
	return types;
}

static Oid pg_type_oid(char type)
{
	return type == 's' ? PG_OID_TEXT : type == 'b' ? PG_OID_BYTEA : PG_OID_INT8;
}

/* Whether a statement with result columns desc (PQdescribePrepared) gets its rows in binary
 * format: when a column is bytea (its text form is hex, twice the size, and unescaping
 * copies it once more: a body in the row would cost three times its size) and every other
 * column is of a type whose binary form the column functions read (integers, booleans,
 * text). */
static bool pg_binary_result(const PGresult *desc)
{
	bool bytea = false;
	if (desc == NULL || PQresultStatus(desc) != PGRES_COMMAND_OK)
		return false;
	for (int i = 0; i < PQnfields(desc); i++) {
		switch (PQftype(desc, i)) {
		case PG_OID_BYTEA:
			bytea = true;
			break;
		case PG_OID_BOOL:
		case PG_OID_NAME:
		case PG_OID_INT8:
		case PG_OID_INT2:
		case PG_OID_INT4:
		case PG_OID_TEXT:
		case PG_OID_VARCHAR:
			break;
		default:
			return false;
		}
	}
	return bytea;
}

/* Prepare statement id on the connection unless it is (with the same parameter types): 0, or
 * -1. A statement is always bound the same way by the store; other types are an error. */
static int pg_prepare(struct pg_conn *c, unsigned id, const char *text,
                      const struct sql_param *params, size_t count, const char **error_r)
{
	if (c->stmts == NULL) {
		c->count = c->base.sql->count;
		c->stmts = xcalloc(c->count, sizeof(*c->stmts));
		c->rows = xcalloc(c->count, sizeof(*c->rows));
	}
	ASSERT(id < c->count && count <= PG_PARAMS_MAX);
	struct pg_stmt *s = &c->stmts[id];
	char *types = pg_types_dup(params, count);
	if (s->prepared) {
		int same = strcmp(types, s->types) == 0;
		if (!same)
			*error_r = store_error_fmt("database error: statement %u bound as \"%s\", "
			                           "prepared as \"%s\"",
			                           id, types, s->types);
		free(types);
		return same ? 0 : -1;
	}
	Oid oids[PG_PARAMS_MAX];
	char name[16];
	for (size_t i = 0; i < count; i++)
		oids[i] = pg_type_oid(params[i].type);
	pg_stmt_name(name, sizeof(name), id);
	unsigned max;
	char *sql = sql_pg_rewrite_dup(text, &max);
	if (max != count) {
		/* PostgreSQL would ignore a parameter the text does not use (SQLite refuses
		 * it): a statement and its caller that disagree are an error. */
		*error_r = store_error_fmt("database error: statement %u has %u parameters, "
		                           "%zu bound",
		                           id, max, count);
		log_error("store: %s", *error_r);
		free(sql);
		free(types);
		return -1;
	}
	PGresult *res = PQprepare(c->pg, name, sql, (int)count, oids);
	int ret = pg_result_check(c, res, text, error_r);
	PQclear(res);
	free(sql);
	if (ret < 0) {
		free(types);
		return -1;
	}
	s->prepared = true;
	s->types = types;
	res = PQdescribePrepared(c->pg, name);
	s->binary = pg_binary_result(res);
	PQclear(res);
	return 0;
}

/* text as PostgreSQL takes it: valid UTF-8 (the database's encoding; it refuses anything
 * else, and the statement would fail every time it runs). Mail brings bytes that are not:
 * raw 8-bit header fields in ENVELOPE and BODYSTRUCTURE texts, a remote server's reply.
 * Each byte of an invalid sequence becomes '?', one byte for one, so the length stays (IMAP
 * literals inside a cached ENVELOPE count bytes). NULL when text is valid as it is; else a
 * malloc'd copy. */
static char *pg_text_utf8(const char *text)
{
	if (text == NULL || utf8_valid(text))
		return NULL;
	char *copy = xstrdup(text);
	unsigned char *p = (unsigned char *)copy;
	while (*p != '\0') {
		size_t n = utf8_seq_len(p);
		if (n == 0) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
	return copy;
}

/* Run prepared statement id with params: the result (the caller checks and clears it).
 * Integers go as text, blobs binary; results come as text. */
static PGresult *pg_exec(struct pg_conn *c, unsigned id, const struct sql_param *params,
                         size_t count)
{
	char ints[PG_PARAMS_MAX][24];
	const char *values[PG_PARAMS_MAX];
	char *fixed[PG_PARAMS_MAX];
	int lengths[PG_PARAMS_MAX], formats[PG_PARAMS_MAX];
	char name[16];
	for (size_t i = 0; i < count; i++) {
		const struct sql_param *p = &params[i];
		lengths[i] = 0;
		formats[i] = 0;
		fixed[i] = NULL;
		if (p->type == 's') {
			fixed[i] = pg_text_utf8(p->text);
			values[i] = fixed[i] != NULL ? fixed[i] : p->text;
		} else if (p->type == 'b') {
			ASSERT(p->size <= INT32_MAX);
			values[i] = p->blob;
			lengths[i] = (int)p->size;
			formats[i] = 1;
		} else if (p->null) {
			values[i] = NULL;
		} else {
			(void)snprintf(ints[i], sizeof(ints[i]), "%" PRId64, p->value);
			values[i] = ints[i];
		}
	}
	pg_stmt_name(name, sizeof(name), id);
	PGresult *res = PQexecPrepared(c->pg, name, (int)count, values, lengths, formats,
	                               c->stmts[id].binary ? 1 : 0);
	for (size_t i = 0; i < count; i++)
		free(fixed[i]);
	return res;
}

/* Test builds: a fault point that loses the connection (core/fault.h) shuts its socket
 * down, as a server crash or a network cut would. */
static void pg_fault_drop(struct pg_conn *c, int fault)
{
	if (fault != 0 && PQsocket(c->pg) >= 0)
		(void)shutdown(PQsocket(c->pg), SHUT_RDWR);
}

/* A row for a run of statement id: the connection's, or a private one when a run of the
 * same statement is in progress (a nested run from a row callback). */
static struct pg_row *pg_row_take(struct pg_conn *c, unsigned id)
{
	struct pg_row *r = &c->rows[id];
	if (r->busy) {
		r = xcalloc(1, sizeof(*r));
		r->own = true;
	}
	r->base.conn = &c->base;
	r->busy = true;
	return r;
}

static void pg_blobs_free(struct pg_row *r)
{
	free(r->nums);
	r->nums = NULL;
	if (r->blobs == NULL)
		return;
	for (int i = 0; i < PQnfields(r->res); i++)
		PQfreemem(r->blobs[i]);
	free(r->blobs);
	free(r->blob_sizes);
	r->blobs = NULL;
	r->blob_sizes = NULL;
}

/* The statement of r has ended: its count becomes the connection's, the row is free. */
static void pg_end(struct pg_row *r)
{
	struct pg_conn *c = (struct pg_conn *)r->base.conn;
	if (r->counts)
		c->changes = r->changes;
	pg_blobs_free(r);
	PQclear(r->res);
	r->res = NULL;
	r->busy = false;
	if (r->own)
		free(r);
}

/* Whether res is of an INSERT, UPDATE, DELETE or MERGE, and its row count. */
static void pg_result_count(struct pg_row *r)
{
	const char *status = PQcmdStatus(r->res);
	const char *const verbs[] = {"INSERT ", "UPDATE ", "DELETE ", "MERGE "};
	r->counts = false;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strncmp(status, verbs[i], strlen(verbs[i])) == 0)
			r->counts = true;
	r->changes = r->counts ? strtoll(PQcmdTuples(r->res), NULL, 10) : 0;
}

static int pg_run(struct sql_conn *sc, unsigned id, const char *text,
                  const struct sql_param *params, size_t count, struct sql_row **row_r,
                  const char **error_r)
{
	struct pg_conn *c = (struct pg_conn *)sc;
	/* Never inside a transaction: its statements must not go on in another session. */
	if (!c->tx && pg_revive(c, error_r) < 0)
		return -1;
	if (pg_prepare(c, id, text, params, count, error_r) < 0)
		return -1;
	if (c->tx && c->role == SQL_ROLE_WRITER)
		pg_fault_drop(c, FAULT_POINT("pg.txn.lost"));
	PGresult *res = pg_exec(c, id, params, count);
	/* A reader outside a transaction learns only now that the server went away (a
	 * restart): a read may simply run again on a new session. A write never does: it may
	 * have committed before the answer was lost. */
	if (PQstatus(c->pg) == CONNECTION_BAD && !c->tx && c->role == SQL_ROLE_READER &&
	    pg_revive(c, error_r) == 0 && pg_prepare(c, id, text, params, count, error_r) == 0) {
		PQclear(res);
		res = pg_exec(c, id, params, count);
	}
	if (pg_result_check(c, res, text, error_r) < 0) {
		PQclear(res);
		return -1;
	}
	struct pg_row *r = pg_row_take(c, id);
	r->res = res;
	r->row = 0;
	r->rows = PQntuples(res);
	pg_result_count(r);
	if (r->rows == 0) {
		pg_end(r);
		return SQL_DONE;
	}
	*row_r = &r->base;
	return SQL_ROW;
}

static int pg_next(struct sql_row *sr, const char **error_r)
{
	struct pg_row *r = (struct pg_row *)sr;
	(void)error_r; /* the result is all here: no error now */
	pg_blobs_free(r);
	if (++r->row < r->rows)
		return SQL_ROW;
	pg_end(r);
	return SQL_DONE;
}

static void pg_row_done(struct sql_row *sr)
{
	pg_end((struct pg_row *)sr);
}

static int64_t pg_changes(struct sql_conn *sc)
{
	return ((struct pg_conn *)sc)->changes;
}

/* ---- columns ---- */

static bool pg_col_null(struct sql_row *sr, int col)
{
	struct pg_row *r = (struct pg_row *)sr;
	return PQgetisnull(r->res, r->row, col) != 0;
}

/* Whether col of r is an integer or boolean in binary format, and its value. */
static bool pg_binary_int(const struct pg_row *r, int col, int64_t *value_r)
{
	if (PQfformat(r->res, col) != 1)
		return false;
	Oid type = PQftype(r->res, col);
	int len = PQgetlength(r->res, r->row, col);
	const unsigned char *p = (const unsigned char *)PQgetvalue(r->res, r->row, col);
	if (!((type == PG_OID_INT8 && len == 8) || (type == PG_OID_INT4 && len == 4) ||
	      (type == PG_OID_INT2 && len == 2) || (type == PG_OID_BOOL && len == 1)))
		return false;
	uint64_t v = p[0] & 0x80 && type != PG_OID_BOOL ? UINT64_MAX : 0; /* sign */
	for (int i = 0; i < len; i++)
		v = (v << 8) | p[i];
	*value_r = (int64_t)v;
	return true;
}

/* An integer column: binary, or text (int2/4/8, numeric, boolean 't'/'f'); NULL is 0 as in
 * SQLite, a fraction is cut off. */
static int64_t pg_col_int(struct sql_row *sr, int col)
{
	struct pg_row *r = (struct pg_row *)sr;
	int64_t v;
	if (pg_col_null(sr, col))
		return 0;
	if (pg_binary_int(r, col, &v))
		return v;
	const char *s = PQgetvalue(r->res, r->row, col);
	if (s[0] == 't' || s[0] == 'f')
		return s[0] == 't';
	return strtoll(s, NULL, 10);
}

/* Text; a binary integer column is written out in decimal (valid until the next row). */
static const char *pg_col_text(struct sql_row *sr, int col)
{
	struct pg_row *r = (struct pg_row *)sr;
	int64_t v;
	if (pg_col_null(sr, col))
		return NULL;
	if (!pg_binary_int(r, col, &v))
		return PQgetvalue(r->res, r->row, col);
	if (r->nums == NULL)
		r->nums = xcalloc((size_t)PQnfields(r->res), sizeof(*r->nums));
	(void)snprintf(r->nums[col], sizeof(r->nums[col]), "%" PRId64, v);
	return r->nums[col];
}

/* bytea arrives binary (as it is), or escaped as text ("\x..."): then unescaped once per
 * row and column, valid until the next row. Other columns are their text. */
static const void *pg_col_blob(struct sql_row *sr, int col, size_t *size_r)
{
	struct pg_row *r = (struct pg_row *)sr;
	*size_r = 0;
	if (pg_col_null(sr, col))
		return NULL;
	const char *value = PQgetvalue(r->res, r->row, col);
	if (PQftype(r->res, col) != PG_OID_BYTEA || PQfformat(r->res, col) == 1) {
		*size_r = (size_t)PQgetlength(r->res, r->row, col);
		return value;
	}
	if (r->blobs == NULL) {
		r->blobs = xcalloc((size_t)PQnfields(r->res), sizeof(*r->blobs));
		r->blob_sizes = xcalloc((size_t)PQnfields(r->res), sizeof(*r->blob_sizes));
	}
	if (r->blobs[col] == NULL) {
		r->blobs[col] = PQunescapeBytea((const unsigned char *)value, &r->blob_sizes[col]);
		if (r->blobs[col] == NULL)
			log_panic("store: out of memory for a database blob");
	}
	*size_r = r->blob_sizes[col];
	return r->blobs[col];
}

/* ---- transactions ---- */

static int pg_script(struct sql_conn *sc, const char *sql, const char **error_r)
{
	return pg_command((struct pg_conn *)sc, sql, error_r);
}

static int pg_begin(struct sql_conn *sc, enum sql_tx tx, const char **error_r)
{
	struct pg_conn *c = (struct pg_conn *)sc;
	if (pg_revive(c, error_r) < 0)
		return -1;
	const char *begin =
	    tx == SQL_TX_WRITE ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
	c->conflict = false;
	int ret = pg_script(sc, begin, error_r);
	/* A server that went away shows only now: BEGIN itself did nothing, so it may run
	 * again on a new session. */
	if (ret < 0 && PQstatus(c->pg) == CONNECTION_BAD && pg_revive(c, error_r) == 0)
		ret = pg_script(sc, begin, error_r);
	c->tx = true; /* from here until commit or rollback, even when BEGIN failed */
	c->write = tx == SQL_TX_WRITE;
	return ret;
}

static bool pg_retryable(struct sql_conn *sc)
{
	return ((struct pg_conn *)sc)->conflict;
}

/* A COMMIT whose answer never came (the connection broke after it went out) may have
 * committed or not; running the work again could store it twice. The transaction's id,
 * taken before COMMIT, tells: on a new connection txid_status() says committed or aborted,
 * or in progress while the old session is still finishing (asked again every
 * PG_RESOLVE_PAUSE_MS for up to PG_RESOLVE_MS). 1 committed, 0 aborted, -1 unknown. */
#define PG_RESOLVE_MS 10000
#define PG_RESOLVE_PAUSE_MS 100

static int64_t pg_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int pg_commit_resolve(struct pg_conn *c, int64_t txid)
{
	char sql[64];
	(void)snprintf(sql, sizeof(sql), "SELECT txid_status(%" PRId64 ")", txid);
	/* The clock, not the pauses: a reconnect may itself take connect_timeout. */
	int64_t start = pg_mono_ms();
	for (;;) {
		const char *error;
		if (pg_revive(c, &error) == 0) {
			PGresult *res = PQexec(c->pg, sql);
			const char *status = "";
			if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
			    !PQgetisnull(res, 0, 0))
				status = PQgetvalue(res, 0, 0);
			int ret = strcmp(status, "committed") == 0 ? 1
			          : strcmp(status, "aborted") == 0 ? 0
			                                           : -1;
			PQclear(res);
			if (ret >= 0) {
				log_warn("store: event=commit-resolved txid=%" PRId64 " outcome=%s",
				         txid, ret == 1 ? "committed" : "aborted");
				return ret;
			}
		}
		int64_t waited = pg_mono_ms() - start;
		if (waited >= PG_RESOLVE_MS) {
			log_error("store: event=commit-unknown txid=%" PRId64 " waited_ms=%" PRId64,
			          txid, waited);
			return -1;
		}
		struct timespec ts = {0, PG_RESOLVE_PAUSE_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
}

/* A COMMIT of a transaction that an error aborted rolls back and says so ("ROLLBACK"):
 * that is a failed commit. One whose answer was lost is resolved (pg_commit_resolve());
 * when that cannot say, the error is sql_commit_unknown. */
static int pg_commit(struct sql_conn *sc, const char **error_r)
{
	struct pg_conn *c = (struct pg_conn *)sc;
	PGresult *res;
	/* The id of a transaction that wrote (none: nothing to lose or to store twice); a
	 * connection that broke before COMMIT went out has rolled back, and fails here too. */
	int64_t txid = 0;
	const char *ignored;
	if (c->write && pg_query_int(c, "SELECT txid_current_if_assigned()", &txid, &ignored) < 0)
		txid = 0;
	int fault = FAULT_POINT("pg.commit.lost");
	if (fault != 0 && PQsendQuery(c->pg, "COMMIT") == 1) {
		/* Test builds: COMMIT went out, its answer is lost (the ambiguous window). */
		pg_fault_drop(c, fault);
		res = PQgetResult(c->pg);
		for (PGresult *more; (more = PQgetResult(c->pg)) != NULL;)
			PQclear(more);
	} else {
		res = PQexec(c->pg, "COMMIT");
	}
	c->tx = false;
	int ret = pg_result_check(c, res, "COMMIT", error_r);
	if (ret == 0 && strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		log_error("store: database: COMMIT: %s", PQcmdStatus(res));
		*error_r = "database error: the transaction was rolled back after an error";
		ret = -1;
	}
	PQclear(res);
	if (ret < 0 && txid > 0 && PQstatus(c->pg) == CONNECTION_BAD) {
		int outcome = pg_commit_resolve(c, txid);
		if (outcome == 1)
			ret = 0;
		else if (outcome < 0)
			*error_r = sql_commit_unknown;
	}
	return ret;
}

static bool pg_in_tx(struct sql_conn *sc)
{
	struct pg_conn *c = (struct pg_conn *)sc;
	PGTransactionStatusType ts = PQtransactionStatus(c->pg);
	return c->tx || ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR;
}

static void pg_rollback(struct sql_conn *sc)
{
	struct pg_conn *c = (struct pg_conn *)sc;
	const char *error;
	PGTransactionStatusType ts = PQtransactionStatus(c->pg);
	if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
		(void)pg_script(sc, "ROLLBACK", &error);
	c->tx = false;
}

/* ---- notifications between nodes ---- */

static int pg_listen(struct sql_conn *sc, const char *channel, const char **error_r)
{
	struct pg_conn *c = (struct pg_conn *)sc;
	char *ident = PQescapeIdentifier(c->pg, channel, strlen(channel));
	if (ident == NULL) {
		*error_r = pg_fail_conn(c, "LISTEN");
		return -1;
	}
	char sql[256];
	snprintf(sql, sizeof(sql), "LISTEN %s", ident);
	PQfreemem(ident);
	return pg_command(c, sql, error_r);
}

/* Wait for the socket (outside any transaction), then hand every notification that
 * arrived to fn. */
static int pg_wait_notify(struct sql_conn *sc, int timeout_ms,
                          void (*fn)(void *ctx, const char *payload), void *ctx,
                          const char **error_r)
{
	struct pg_conn *c = (struct pg_conn *)sc;
	int fd = PQsocket(c->pg);
	if (fd < 0 || PQstatus(c->pg) != CONNECTION_OK) {
		*error_r = pg_fail_conn(c, "notifications");
		return -1;
	}
	pg_fault_drop(c, FAULT_POINT("pg.listen.lost"));
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	int n = poll(&pfd, 1, timeout_ms);
	if (n < 0 && errno != EINTR) {
		*error_r = store_error_fmt("poll: %s", strerror(errno));
		return -1;
	}
	if (n > 0 && PQconsumeInput(c->pg) == 0) {
		*error_r = pg_fail_conn(c, "notifications");
		return -1;
	}
	PGnotify *note;
	while ((note = PQnotifies(c->pg)) != NULL) {
		fn(ctx, note->extra);
		PQfreemem(note);
	}
	return 0;
}

/* ---- schema version ---- */

/* Inside a write transaction: wait for the schema lock (held to the transaction's end) and
 * create the version table with its row if missing. 0, or -1. */
static int pg_schema_prepare(struct pg_conn *c, const char **error_r)
{
	return pg_command(c,
	                  "SELECT pg_advisory_xact_lock(" PG_SCHEMA_LOCK_KEY ");"
	                  "CREATE TABLE IF NOT EXISTS " SQL_PG_SCHEMA_TABLE
	                  " (one integer PRIMARY KEY DEFAULT 1 CHECK (one = 1),"
	                  " version integer NOT NULL);"
	                  "INSERT INTO " SQL_PG_SCHEMA_TABLE " (version) VALUES (0)"
	                  " ON CONFLICT DO NOTHING",
	                  error_r);
}

/* The first column of the first row of sql as an integer (0 when there is no row or it
 * is NULL): 0, or -1. */
static int pg_query_int(struct pg_conn *c, const char *sql, int64_t *value_r, const char **error_r)
{
	PGresult *res = PQexec(c->pg, sql);
	int ret = pg_result_check(c, res, sql, error_r);
	*value_r = 0;
	if (ret == 0 && PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0))
		*value_r = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return ret;
}

/* The version (0 for a database without the table). In a writer's transaction, the
 * schema lock is taken first, so the version read is final until the commit. */
static int pg_schema_get(struct sql_conn *sc, int *version_r, const char **error_r)
{
	struct pg_conn *c = (struct pg_conn *)sc;
	int64_t exists, version = 0;
	if (c->role == SQL_ROLE_WRITER && pg_in_tx(sc) && pg_schema_prepare(c, error_r) < 0)
		return -1;
	if (pg_query_int(c,
	                 "SELECT count(*) FROM pg_catalog.pg_class"
	                 " WHERE oid = to_regclass('" SQL_PG_SCHEMA_TABLE "')",
	                 &exists, error_r) < 0)
		return -1;
	if (exists != 0 &&
	    pg_query_int(c, "SELECT version FROM " SQL_PG_SCHEMA_TABLE, &version, error_r) < 0)
		return -1;
	*version_r = (int)version;
	return 0;
}

static int pg_schema_set(struct sql_conn *sc, int version, const char **error_r)
{
	struct pg_conn *c = (struct pg_conn *)sc;
	char sql[128];
	(void)snprintf(sql, sizeof(sql), "UPDATE " SQL_PG_SCHEMA_TABLE " SET version = %d",
	               version);
	if (!pg_in_tx(sc)) {
		*error_r = "database error: schema version set outside a transaction";
		return -1;
	}
	return pg_schema_prepare(c, error_r) < 0 ? -1 : pg_command(c, sql, error_r);
}

/* After rows with explicit ids went into table (an import): its identity, if it has one,
 * hands out ids above them. table is one of the store's names (checked). */
static int pg_ids_follow(struct sql_conn *sc, const char *table, const char **error_r)
{
	struct pg_conn *c = (struct pg_conn *)sc;
	char sql[512];
	int64_t identity;
	if (table[0] == '\0' || strspn(table, "abcdefghijklmnopqrstuvwxyz_") != strlen(table) ||
	    strlen(table) > 63) {
		*error_r = store_error_fmt("database error: bad table name \"%s\"", table);
		return -1;
	}
	(void)snprintf(sql, sizeof(sql),
	               "SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid = "
	               "to_regclass('%s') AND attname = 'id' AND attidentity <> ''",
	               table);
	if (pg_query_int(c, sql, &identity, error_r) < 0)
		return -1;
	if (identity == 0)
		return 0;
	(void)snprintf(sql, sizeof(sql),
	               "SELECT setval(pg_get_serial_sequence('%s', 'id'),"
	               " coalesce(max(id), 0) + 1, false) FROM %s",
	               table, table);
	return pg_query_int(c, sql, &identity, error_r);
}

const struct sql_driver sql_driver_pg = {
    .name = "postgresql",
    .db_open = pg_db_open,
    .db_close = pg_db_close,
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .run = pg_run,
    .changes = pg_changes,
    .next = pg_next,
    .row_done = pg_row_done,
    .col_int = pg_col_int,
    .col_text = pg_col_text,
    .col_blob = pg_col_blob,
    .col_null = pg_col_null,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .in_tx = pg_in_tx,
    .retryable = pg_retryable,
    .script = pg_script,
    .schema_get = pg_schema_get,
    .schema_set = pg_schema_set,
    .migrations = sql_pg_migrations,
    .migration_count = SQL_PG_MIGRATION_COUNT,
    .replacements = sql_pg_replacements,
    .ids_follow = pg_ids_follow,
    .listen = pg_listen,
    .wait_notify = pg_wait_notify,
};
