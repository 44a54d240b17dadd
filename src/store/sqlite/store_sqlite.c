/* The SQLite backend of the store (store_private.h's vtable). One database file in WAL
 * mode: the delivery writer thread has its own connection, admin writes share one
 * mutex-protected connection, and each reading thread lazily gets its own query-only
 * connection (a pthread key), so readers never wait for the writer. Every write
 * transaction starts with BEGIN IMMEDIATE; schema changes are numbered migrations. The
 * writer's transactions carry deliveries, expunges and (through store_sqlite_mailbox.c,
 * each under a savepoint) the IMAP operations in queue order. */
#include "store/sqlite/store_sqlite.h"
#include "store/sqlite/store_sqlite_private.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

#define SQ_BUSY_TIMEOUT_MS 5000

/* ---- schema ---- */

/* Migration 1: the whole model of DESIGN.md. Mailbox hierarchy is by name with delimiter
 * '/'. A message row is one stored body (content address); it is referenced by mailbox
 * entries and queue rows, and removed when neither is left. */
static const char sq_migration_1[] =
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE domains (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " created INTEGER NOT NULL);"
    "CREATE TABLE accounts (id INTEGER PRIMARY KEY, address TEXT NOT NULL UNIQUE,"
    " domain_id INTEGER NOT NULL REFERENCES domains(id), password_hash TEXT NOT NULL,"
    " quota INTEGER NOT NULL DEFAULT 0, used_bytes INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL);"
    "CREATE INDEX accounts_domain ON accounts(domain_id);"
    "CREATE TABLE aliases (id INTEGER PRIMARY KEY, alias TEXT NOT NULL,"
    " domain_id INTEGER NOT NULL REFERENCES domains(id), target TEXT NOT NULL,"
    " UNIQUE (alias, target));"
    "CREATE INDEX aliases_domain ON aliases(domain_id);"
    "CREATE TABLE mailboxes (id INTEGER PRIMARY KEY,"
    " account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL, special_use TEXT, uidvalidity INTEGER NOT NULL,"
    " uidnext INTEGER NOT NULL DEFAULT 1, highestmodseq INTEGER NOT NULL DEFAULT 1,"
    " subscribed INTEGER NOT NULL DEFAULT 0, UNIQUE (account_id, name));"
    "CREATE TABLE messages (id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE,"
    " size INTEGER NOT NULL, received_at INTEGER NOT NULL, mail_from TEXT NOT NULL,"
    " hdr_from TEXT, subject TEXT, message_id TEXT);"
    "CREATE TABLE mailbox_entries (id INTEGER PRIMARY KEY,"
    " mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,"
    " uid INTEGER NOT NULL, message_id INTEGER NOT NULL REFERENCES messages(id),"
    " flags INTEGER NOT NULL DEFAULT 0, keywords TEXT NOT NULL DEFAULT '',"
    " modseq INTEGER NOT NULL, internal_date INTEGER NOT NULL, UNIQUE (mailbox_id, uid));"
    "CREATE INDEX mailbox_entries_message ON mailbox_entries(message_id);"
    "CREATE INDEX mailbox_entries_modseq ON mailbox_entries(mailbox_id, modseq);"
    "CREATE TABLE expunged (mailbox_id INTEGER NOT NULL"
    " REFERENCES mailboxes(id) ON DELETE CASCADE, uid INTEGER NOT NULL,"
    " modseq INTEGER NOT NULL, PRIMARY KEY (mailbox_id, uid));"
    "CREATE TABLE queue (id INTEGER PRIMARY KEY,"
    " message_id INTEGER NOT NULL REFERENCES messages(id), mail_from TEXT NOT NULL,"
    " rcpt TEXT NOT NULL, created INTEGER NOT NULL, next_attempt INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX queue_message ON queue(message_id);"
    "CREATE INDEX queue_next_attempt ON queue(next_attempt);";

/* Migration 2: the APOP secret (RFC 1939 §7 needs it in clear; NULL = no APOP), an index
 * for QRESYNC's "expunged since MODSEQ", and the high-water mark of account ids: ids are
 * never reused, since sessions, queued expunges and change notifications name accounts by
 * id (without it SQLite hands the highest id out again after a deletion). */
static const char sq_migration_2[] =
    "ALTER TABLE accounts ADD COLUMN apop_secret TEXT;"
    "CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);"
    "INSERT INTO meta (key, value) SELECT 'account_id', coalesce(max(id), 0) FROM accounts"
    " WHERE true ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value);";

/* Migration 3, for IMAP: the ENVELOPE, BODY and BODYSTRUCTURE texts of a message (NULL:
 * compute on demand), the keywords a mailbox holds (space-separated, first spelling
 * kept), and subscriptions as their own table, since a subscription may name a mailbox
 * that does not exist (RFC 9051 §6.3.7); the old per-mailbox column goes. */
static const char sq_migration_3[] =
    "ALTER TABLE messages ADD COLUMN envelope TEXT;"
    "ALTER TABLE messages ADD COLUMN body TEXT;"
    "ALTER TABLE messages ADD COLUMN bodystructure TEXT;"
    "ALTER TABLE mailboxes ADD COLUMN keywords TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE subscriptions (account_id INTEGER NOT NULL"
    " REFERENCES accounts(id) ON DELETE CASCADE, name TEXT NOT NULL,"
    " PRIMARY KEY (account_id, name));"
    "INSERT INTO subscriptions (account_id, name)"
    " SELECT account_id, name FROM mailboxes WHERE subscribed <> 0;"
    "ALTER TABLE mailboxes DROP COLUMN subscribed;";

/* The domain of a version-3 queue row's recipient (rcpt, or o.rcpt in a join): after its
 * last '@' (rtrim() with every other character of the address strips back to that '@'),
 * lower-cased. */
#define SQ_V3_DOMAIN "lower(substr(rcpt, length(rtrim(rcpt, replace(rcpt, '@', ''))) + 1))"
#define SQ_V3_DOMAIN_O "lower(substr(o.rcpt, length(rtrim(o.rcpt, replace(o.rcpt, '@', ''))) + 1))"

/* Migration 4, the outbound queue of issue 9: one entry per message and destination
 * domain (with RET, ENVID, hold, delay-warning and lease columns) and its recipients
 * (NOTIFY, ORCPT, status 0 pending 1 delivered 2 failed 3 expired, the last attempt's
 * outcome). The table keeps its name "queue" (message GC looks there); the old
 * per-recipient rows are grouped by message, sender and domain into entries. Entry ids are
 * never reused (AUTOINCREMENT): they name an entry in the delivery log for good. */
static const char sq_migration_4[] =
    "ALTER TABLE queue RENAME TO queue_v3;"
    "CREATE TABLE queue (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " message_id INTEGER NOT NULL REFERENCES messages(id), mail_from TEXT NOT NULL,"
    " ret INTEGER NOT NULL DEFAULT 0, envid TEXT, smtputf8 INTEGER NOT NULL DEFAULT 0,"
    " eightbit INTEGER NOT NULL DEFAULT 0, requiretls INTEGER NOT NULL DEFAULT 0,"
    " domain TEXT NOT NULL,"
    " created INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt INTEGER NOT NULL, held INTEGER NOT NULL DEFAULT 0,"
    " delay_warned INTEGER NOT NULL DEFAULT 0, lease_owner TEXT,"
    " lease_until INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE queue_rcpts (id INTEGER PRIMARY KEY,"
    " entry_id INTEGER NOT NULL REFERENCES queue(id) ON DELETE CASCADE,"
    " address TEXT NOT NULL, orcpt TEXT, notify INTEGER NOT NULL DEFAULT 0,"
    " status INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',"
    " last_attempt INTEGER NOT NULL DEFAULT 0, remote_mta TEXT NOT NULL DEFAULT '',"
    " enhanced_status TEXT NOT NULL DEFAULT '');"
    "INSERT INTO queue (message_id, mail_from, domain, created, attempts, next_attempt)"
    " SELECT message_id, mail_from, " SQ_V3_DOMAIN ", min(created),"
    " max(attempts), min(next_attempt) FROM queue_v3"
    " GROUP BY message_id, mail_from, " SQ_V3_DOMAIN " ORDER BY min(id);"
    "INSERT INTO queue_rcpts (entry_id, address, last_error)"
    " SELECT q.id, o.rcpt, o.last_error FROM queue_v3 o JOIN queue q"
    " ON q.message_id = o.message_id AND q.mail_from = o.mail_from"
    " AND q.domain = " SQ_V3_DOMAIN_O " ORDER BY o.id;"
    "DROP TABLE queue_v3;"
    "CREATE INDEX queue_message ON queue(message_id);"
    "CREATE INDEX queue_due ON queue(next_attempt);"
    "CREATE INDEX queue_rcpts_entry ON queue_rcpts(entry_id, status);";

/* In order; the schema version (PRAGMA user_version) is how many have been applied. */
static const char *const sq_migrations[] = {sq_migration_1, sq_migration_2, sq_migration_3,
                                            sq_migration_4};
#define SQ_MIGRATION_COUNT ((int)(sizeof(sq_migrations) / sizeof(sq_migrations[0])))

/* ---- statements: prepared once per connection, on first use ---- */

#define SQ_ACCOUNT_COLUMNS                                                                         \
	"SELECT a.id, a.address, a.quota, a.used_bytes, (SELECT count(*) FROM"                     \
	" mailbox_entries e JOIN mailboxes m ON m.id = e.mailbox_id WHERE m.account_id = a.id),"   \
	" a.password_hash FROM accounts a"

static const char *const sq_sql[SQ_CORE_COUNT] = {
    [SQ_BEGIN] = "BEGIN IMMEDIATE",
    [SQ_COMMIT] = "COMMIT",
    [SQ_ROLLBACK] = "ROLLBACK",
    [SQ_USER_VERSION] = "PRAGMA user_version",
    [SQ_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [SQ_META_SET] = "INSERT INTO meta (key, value) VALUES (?1, ?2)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [SQ_DOMAIN_ID] = "SELECT id FROM domains WHERE name = ?1",
    [SQ_DOMAIN_INSERT] = "INSERT INTO domains (name, created) VALUES (?1, ?2)"
                         " ON CONFLICT (name) DO NOTHING",
    [SQ_DOMAIN_IN_USE] = "SELECT (SELECT count(*) FROM accounts WHERE domain_id = ?1)"
                         " + (SELECT count(*) FROM aliases WHERE domain_id = ?1"
                         " OR substr(target, instr(target, '@') + 1) = ?2)",
    [SQ_DOMAIN_DELETE] = "DELETE FROM domains WHERE id = ?1",
    [SQ_DOMAIN_LIST] = "SELECT name FROM domains ORDER BY name",
    [SQ_ACCOUNT_ID] = "SELECT id FROM accounts WHERE address = ?1",
    [SQ_ACCOUNT_NEXT_ID] = "SELECT max(coalesce((SELECT value FROM meta"
                           " WHERE key = 'account_id'), 0),"
                           " coalesce((SELECT max(id) FROM accounts), 0)) + 1",
    [SQ_ACCOUNT_INSERT] = "INSERT INTO accounts (id, address, domain_id, password_hash, quota,"
                          " created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                          " ON CONFLICT (address) DO NOTHING",
    [SQ_MAILBOX_INSERT] = "INSERT INTO mailboxes (account_id, name, special_use, uidvalidity)"
                          " VALUES (?1, ?2, ?3, ?4)",
    [SQ_ACCOUNT_MESSAGES] = "SELECT DISTINCT e.message_id FROM mailbox_entries e"
                            " JOIN mailboxes m ON m.id = e.mailbox_id WHERE m.account_id = ?1",
    [SQ_ACCOUNT_DELETE] = "DELETE FROM accounts WHERE id = ?1",
    [SQ_MESSAGE_DELETE_UNUSED] =
        "DELETE FROM messages WHERE id = ?1"
        " AND NOT EXISTS (SELECT 1 FROM mailbox_entries WHERE message_id = ?1)"
        " AND NOT EXISTS (SELECT 1 FROM queue WHERE message_id = ?1) RETURNING sha256",
    [SQ_ACCOUNT_SET_PASSWORD] = "UPDATE accounts SET password_hash = ?2 WHERE address = ?1",
    [SQ_ACCOUNT_SET_QUOTA] = "UPDATE accounts SET quota = ?2 WHERE address = ?1",
    [SQ_ACCOUNT_SET_APOP] = "UPDATE accounts SET apop_secret = ?2 WHERE address = ?1",
    [SQ_ACCOUNT_GET_APOP] = "SELECT id, apop_secret FROM accounts WHERE address = ?1",
    [SQ_ACCOUNT_LIST] = SQ_ACCOUNT_COLUMNS " ORDER BY a.address",
    [SQ_ACCOUNT_LIST_DOMAIN] = SQ_ACCOUNT_COLUMNS " JOIN domains d ON d.id = a.domain_id"
                                                  " WHERE d.name = ?1 ORDER BY a.address",
    [SQ_ACCOUNT_LOOKUP] = SQ_ACCOUNT_COLUMNS " WHERE a.address = ?1",
    [SQ_ACCOUNT_USAGE] = "SELECT quota, used_bytes FROM accounts WHERE id = ?1",
    [SQ_ACCOUNT_ADDRESS] = "SELECT address FROM accounts WHERE id = ?1",
    [SQ_ALIAS_EXISTS] = "SELECT 1 FROM aliases WHERE alias = ?1 LIMIT 1",
    [SQ_ALIAS_INSERT] = "INSERT INTO aliases (alias, domain_id, target) VALUES (?1, ?2, ?3)"
                        " ON CONFLICT (alias, target) DO NOTHING",
    [SQ_ALIAS_DELETE_ONE] = "DELETE FROM aliases WHERE alias = ?1 AND target = ?2",
    [SQ_ALIAS_DELETE_ALL] = "DELETE FROM aliases WHERE alias = ?1",
    [SQ_ALIAS_LIST] = "SELECT alias, target FROM aliases ORDER BY alias, target",
    [SQ_ALIAS_TARGETS] = "SELECT target FROM aliases WHERE alias = ?1 ORDER BY id",
    /* A row that exists keeps its columns; summaries fill only what is missing. */
    [SQ_MESSAGE_INSERT] = "INSERT INTO messages (sha256, size, received_at, mail_from,"
                          " hdr_from, subject, message_id, envelope, body, bodystructure)"
                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                          " ON CONFLICT (sha256) DO UPDATE SET"
                          " envelope = coalesce(envelope, excluded.envelope),"
                          " body = coalesce(body, excluded.body),"
                          " bodystructure = coalesce(bodystructure, excluded.bodystructure)"
                          " WHERE excluded.envelope IS NOT NULL OR excluded.body IS NOT NULL"
                          " OR excluded.bodystructure IS NOT NULL",
    [SQ_MESSAGE_ID] = "SELECT id FROM messages WHERE sha256 = ?1",
    [SQ_INBOX_NEXT] = "UPDATE mailboxes SET uidnext = uidnext + 1,"
                      " highestmodseq = highestmodseq + 1"
                      " WHERE account_id = ?1 AND name = 'INBOX'"
                      " RETURNING id, uidnext - 1, highestmodseq",
    [SQ_ENTRY_INSERT] = "INSERT INTO mailbox_entries (mailbox_id, uid, message_id, modseq,"
                        " internal_date) VALUES (?1, ?2, ?3, ?4, ?5)",
    [SQ_ACCOUNT_ADD_USED] = "UPDATE accounts SET used_bytes = used_bytes + ?2 WHERE id = ?1",
    [SQ_MAILBOX_FIND] = "SELECT m.id FROM mailboxes m JOIN accounts a ON a.id = m.account_id"
                        " WHERE a.address = ?1 AND m.name = ?2",
    [SQ_ENTRY_LIST] = "SELECT e.uid, e.flags, e.keywords, m.size, e.internal_date,"
                      " m.mail_from, m.hdr_from, m.subject FROM mailbox_entries e"
                      " JOIN messages m ON m.id = e.message_id WHERE e.mailbox_id = ?1"
                      " ORDER BY e.uid",
    [SQ_ENTRY_LOCATE] = "SELECT m.sha256, m.size FROM mailbox_entries e"
                        " JOIN messages m ON m.id = e.message_id"
                        " WHERE e.mailbox_id = ?1 AND e.uid = ?2",
    [SQ_MESSAGE_GC] = "DELETE FROM messages WHERE"
                      " NOT EXISTS (SELECT 1 FROM mailbox_entries e"
                      " WHERE e.message_id = messages.id)"
                      " AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.message_id = messages.id)"
                      " RETURNING sha256",
    [SQ_MESSAGE_EXISTS] = "SELECT 1 FROM messages WHERE sha256 = ?1",
    /* A deferred BEGIN: on a query-only connection, one read snapshot. */
    [SQ_READ_BEGIN] = "BEGIN",
    [SQ_MAILBOX_STATUS] = "SELECT b.id, b.uidvalidity, b.uidnext, b.highestmodseq,"
                          " (SELECT count(*) FROM mailbox_entries e WHERE e.mailbox_id = b.id)"
                          " FROM mailboxes b WHERE b.account_id = ?1 AND b.name = ?2",
    [SQ_ENTRY_SNAPSHOT] = "SELECT e.uid, m.size, e.internal_date, e.flags, e.modseq,"
                          " e.keywords FROM mailbox_entries e"
                          " JOIN messages m ON m.id = e.message_id"
                          " WHERE e.mailbox_id = ?1 ORDER BY e.uid",
    [SQ_MESSAGE_LOCATE] = "SELECT m.sha256, m.size FROM mailbox_entries e"
                          " JOIN messages m ON m.id = e.message_id"
                          " JOIN mailboxes b ON b.id = e.mailbox_id"
                          " WHERE b.account_id = ?1 AND b.name = ?2 AND e.uid = ?3",
    [SQ_MAILBOX_ID] = "SELECT id FROM mailboxes WHERE account_id = ?1 AND name = ?2",
    [SQ_ENTRY_TAKE] = "DELETE FROM mailbox_entries WHERE mailbox_id = ?1 AND uid = ?2"
                      " RETURNING message_id",
    [SQ_MESSAGE_SIZE] = "SELECT size FROM messages WHERE id = ?1",
    [SQ_MAILBOX_BUMP_MODSEQ] = "UPDATE mailboxes SET highestmodseq = highestmodseq + 1"
                               " WHERE id = ?1 RETURNING highestmodseq",
    [SQ_TOMBSTONE_INSERT] = "INSERT INTO expunged (mailbox_id, uid, modseq) VALUES (?1, ?2, ?3)"
                            " ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = excluded.modseq",
    [SQ_ACCOUNT_SUB_USED] = "UPDATE accounts SET used_bytes = max(used_bytes - ?2, 0)"
                            " WHERE id = ?1",
};

/* Log a database error and return it as an error string. */
const char *store_sqlite_fail(struct sq_conn *c, const char *what)
{
	log_error("store: database: %s: %s", what, sqlite3_errmsg(c->db));
	return store_error_fmt("database error: %s", sqlite3_errmsg(c->db));
}

static const char *sq_sql_text(enum sq_id id)
{
	if (id < SQ_CORE_COUNT)
		return sq_sql[id];
	if (id < SQ_MAILBOX_END)
		return store_sqlite_mailbox_sql[id - SQ_CORE_COUNT];
	return store_sqlite_queue_sql[id - SQ_MAILBOX_END];
}

static sqlite3_stmt *sq_stmt(struct sq_conn *c, enum sq_id id)
{
	if (c->stmts[id] == NULL &&
	    sqlite3_prepare_v3(c->db, sq_sql_text(id), -1, SQLITE_PREPARE_PERSISTENT, &c->stmts[id],
	                       NULL) != SQLITE_OK) {
		(void)store_sqlite_fail(c, sq_sql_text(id));
		c->stmts[id] = NULL;
	}
	return c->stmts[id];
}

/* Bind arguments by fmt: 's' const char * (NULL binds NULL), 'i' int64_t. */
static int sq_bindv(sqlite3_stmt *st, const char *fmt, va_list ap)
{
	int rc = SQLITE_OK;
	for (int i = 1; rc == SQLITE_OK && fmt[i - 1] != '\0'; i++) {
		if (fmt[i - 1] == 's') {
			const char *s = va_arg(ap, const char *);
			rc = s == NULL ? sqlite3_bind_null(st, i)
			               : sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
		} else {
			ASSERT(fmt[i - 1] == 'i');
			rc = sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
		}
	}
	return rc;
}

/* Prepare, bind and step once. Returns SQLITE_ROW with *st_r on the first row (the caller
 * reads it, may step further, and calls sqlite3_reset()), SQLITE_DONE (already reset), or
 * -1 (logged, *error_r set when error_r != NULL). */
static int sq_stepv(struct sq_conn *c, enum sq_id id, sqlite3_stmt **st_r, const char **error_r,
                    const char *fmt, va_list ap)
{
	sqlite3_stmt *st = sq_stmt(c, id);
	const char *error;
	if (st == NULL) {
		error = store_error_fmt("database error: cannot prepare statement");
	} else if (sq_bindv(st, fmt, ap) != SQLITE_OK) {
		error = store_sqlite_fail(c, sq_sql_text(id));
		sq_reset(st);
	} else {
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*st_r = st;
			return rc;
		}
		error = rc == SQLITE_DONE ? NULL : store_sqlite_fail(c, sq_sql_text(id));
		sq_reset(st);
		if (rc == SQLITE_DONE)
			return rc;
	}
	if (error_r != NULL)
		*error_r = error;
	return -1;
}

int store_sqlite_step(struct sq_conn *c, enum sq_id id, sqlite3_stmt **st_r, const char **error_r,
                      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = sq_stepv(c, id, st_r, error_r, fmt, ap);
	va_end(ap);
	return rc;
}

/* Run a statement for its effect. Returns the number of changed rows, or -1. */
int store_sqlite_exec(struct sq_conn *c, enum sq_id id, const char **error_r, const char *fmt, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	va_start(ap, fmt);
	int rc = sq_stepv(c, id, &st, error_r, fmt, ap);
	va_end(ap);
	if (rc == SQLITE_ROW)
		sq_reset(st);
	return rc < 0 ? -1 : sqlite3_changes(c->db);
}

/* First column of the first row as an integer: 1 found, 0 no row, -1 error. */
int store_sqlite_int(struct sq_conn *c, enum sq_id id, int64_t *value_r, const char **error_r,
                     const char *fmt, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	va_start(ap, fmt);
	int rc = sq_stepv(c, id, &st, error_r, fmt, ap);
	va_end(ap);
	if (rc != SQLITE_ROW)
		return rc < 0 ? -1 : 0;
	*value_r = sqlite3_column_int64(st, 0);
	sq_reset(st);
	return 1;
}

/* Call row() for every row of a query. 0, or -1. row() may reach the caller's callbacks,
 * which may call into the store again on this thread, even the same listing: then the
 * cached statement is busy and a private one is prepared for the nested run. */
int store_sqlite_each(struct sq_conn *c, enum sq_id id, void (*row)(void *ctx, sqlite3_stmt *st),
                      void *ctx, const char *fmt, ...)
{
	sqlite3_stmt *st = sq_stmt(c, id);
	bool own = false;
	int rc;
	if (st != NULL && sqlite3_stmt_busy(st)) {
		own = true;
		if (sqlite3_prepare_v2(c->db, sq_sql_text(id), -1, &st, NULL) != SQLITE_OK) {
			(void)store_sqlite_fail(c, sq_sql_text(id));
			st = NULL;
		}
	}
	if (st == NULL)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	rc = sq_bindv(st, fmt, ap);
	va_end(ap);
	if (rc == SQLITE_OK) {
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			row(ctx, st);
	}
	if (rc != SQLITE_DONE)
		(void)store_sqlite_fail(c, sq_sql_text(id));
	if (own)
		sqlite3_finalize(st);
	else
		sq_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- connections ---- */

static void sq_conn_close(struct sq_conn *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i < SQ_COUNT; i++)
		sqlite3_finalize(c->stmts[i]);
	if (sqlite3_close(c->db) != SQLITE_OK)
		log_error("store: database close: %s", sqlite3_errmsg(c->db));
	free(c);
}

/* Open a connection: writable ones get synchronous=FULL (a COMMIT is durable), readers
 * are query-only. All enforce foreign keys and wait up to SQ_BUSY_TIMEOUT_MS for locks. */
static struct sq_conn *sq_conn_open(const char *path, bool reader, const char **error_r)
{
	struct sq_conn *c = xcalloc(1, sizeof(*c));
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (reader ? 0 : SQLITE_OPEN_CREATE);
	const char *pragmas = reader ? "PRAGMA foreign_keys = ON; PRAGMA query_only = ON;"
	                             : "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;";
	if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(c->db, SQ_BUSY_TIMEOUT_MS) != SQLITE_OK ||
	    sqlite3_exec(c->db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = c->db == NULL
		               ? "database: out of memory"
		               : store_error_fmt("database %s: %s", path, sqlite3_errmsg(c->db));
		log_error("store: %s", *error_r);
		sq_conn_close(c);
		return NULL;
	}
	return c;
}

static void sq_reader_destroy(void *arg)
{
	struct sq_conn *c = arg;
	struct store_sqlite *s = c->owner;
	pthread_mutex_lock(&s->read_lock);
	for (struct sq_conn **p = &s->readers; *p != NULL; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	pthread_mutex_unlock(&s->read_lock);
	sq_conn_close(c);
}

/* This thread's query-only connection, opened on first use; NULL on error (logged). */
struct sq_conn *store_sqlite_reader(struct store *store)
{
	struct store_sqlite *s = sq_store(store);
	struct sq_conn *c = pthread_getspecific(s->read_key);
	const char *error;
	if (c != NULL)
		return c;
	c = sq_conn_open(s->db_path, true, &error);
	if (c == NULL)
		return NULL;
	c->owner = s;
	pthread_mutex_lock(&s->read_lock);
	c->next = s->readers;
	s->readers = c;
	pthread_mutex_unlock(&s->read_lock);
	if (pthread_setspecific(s->read_key, c) != 0)
		log_panic("store: pthread_setspecific failed");
	return c;
}

/* ---- transactions on the admin connection ---- */

static struct sq_conn *sq_admin_begin(struct store *store, const char **error_r)
{
	struct store_sqlite *s = sq_store(store);
	pthread_mutex_lock(&s->admin_lock);
	if (store_sqlite_exec(s->admin, SQ_BEGIN, error_r, "") < 0) {
		pthread_mutex_unlock(&s->admin_lock);
		return NULL;
	}
	return s->admin;
}

/* Commit when ret is 0, else roll back; unlock. Returns ret, or -1 when COMMIT failed. */
int store_sqlite_end(struct sq_conn *c, int ret, const char **error_r)
{
	if (ret == 0 && store_sqlite_exec(c, SQ_COMMIT, error_r, "") < 0)
		ret = -1;
	if (ret < 0 && sqlite3_get_autocommit(c->db) == 0)
		(void)store_sqlite_exec(c, SQ_ROLLBACK, NULL, "");
	return ret;
}

static int sq_admin_end(struct store *store, int ret, const char **error_r)
{
	struct store_sqlite *s = sq_store(store);
	ret = store_sqlite_end(s->admin, ret, error_r);
	pthread_mutex_unlock(&s->admin_lock);
	return ret;
}

/* ---- migrations ---- */

static int sq_migrate_step(struct sq_conn *c, int target, int *version_r, const char **error_r)
{
	int64_t version = 0;
	if (store_sqlite_exec(c, SQ_BEGIN, error_r, "") < 0)
		return -1;
	/* Read inside the write transaction: another process may have migrated meanwhile. */
	int ret = store_sqlite_int(c, SQ_USER_VERSION, &version, error_r, "") == 1 ? 0 : -1;
	if (ret == 0 && version > SQ_MIGRATION_COUNT) {
		*error_r = store_error_fmt("database schema version %" PRId64
		                           " is newer than this program (%d)",
		                           version, SQ_MIGRATION_COUNT);
		ret = -1;
	}
	if (ret == 0 && version < target) {
		struct buf b;
		buf_init(&b, 64);
		if (buf_printf(&b, "PRAGMA user_version = %d", (int)version + 1) < 0)
			log_panic("store: buffer too small for user_version");
		if (sqlite3_exec(c->db, sq_migrations[version], NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(c->db, buf_cstr(&b), NULL, NULL, NULL) != SQLITE_OK) {
			*error_r = store_sqlite_fail(c, "migration");
			ret = -1;
		} else {
			log_info("store: applied schema migration %d", (int)version + 1);
			version++;
		}
		buf_free(&b);
	}
	*version_r = (int)version;
	return store_sqlite_end(c, ret, error_r);
}

/* Apply the migrations after the database's version, up to target. */
static int sq_migrate(struct sq_conn *c, int target, const char **error_r)
{
	int version = 0;
	do {
		if (sq_migrate_step(c, target, &version, error_r) < 0)
			return -1;
	} while (version < target);
	return 0;
}

static int sq_schema_version(struct store *store)
{
	struct sq_conn *c = store_sqlite_reader(store);
	int64_t version;
	if (c == NULL || store_sqlite_int(c, SQ_USER_VERSION, &version, NULL, "") != 1)
		return -1;
	return (int)version;
}

/* ---- init and deinit ---- */

static void sq_deinit(struct store *store)
{
	struct store_sqlite *s = sq_store(store);
	if (s->read_key_created)
		pthread_key_delete(s->read_key);
	while (s->readers != NULL) {
		struct sq_conn *c = s->readers;
		s->readers = c->next;
		sq_conn_close(c);
	}
	sq_conn_close(s->writer);
	sq_conn_close(s->admin);
	pthread_mutex_destroy(&s->read_lock);
	pthread_mutex_destroy(&s->admin_lock);
	free(s->db_path);
	free(s);
}

static int sq_journal_wal(struct sq_conn *c, const char **error_r)
{
	sqlite3_stmt *st;
	int ok = 0;
	if (sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_sqlite_fail(c, "journal_mode");
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW && sq_text(st, 0) != NULL)
		ok = strcmp(sq_text(st, 0), "wal") == 0;
	sqlite3_finalize(st);
	if (!ok)
		*error_r = store_error_fmt("database: cannot switch to WAL mode");
	return ok ? 0 : -1;
}

/* The highest mailbox entry row id and the last UIDVALIDITY handed out, now: what is above
 * them is new since open (\Recent). */
static int sq_max_entry(struct sq_conn *c, int64_t *max_r, int64_t *uidvalidity_r,
                        const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(c->db,
	                       "SELECT (SELECT coalesce(max(id), 0) FROM mailbox_entries),"
	                       " coalesce((SELECT value FROM meta WHERE key = 'uidvalidity'), 0)",
	                       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_sqlite_fail(c, "max entry");
		return -1;
	}
	int rc = sqlite3_step(st);
	*max_r = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	*uidvalidity_r = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW) {
		*error_r = store_sqlite_fail(c, "max entry");
		return -1;
	}
	return 0;
}

static int sq_init(const char *data_dir, struct store **store_r, const char **error_r)
{
	struct store_sqlite *s = xcalloc(1, sizeof(*s));
	struct buf b;
	s->store.v = &store_sqlite_vfuncs;
	buf_init(&b, 8192);
	if (buf_printf(&b, "%s/%s", data_dir, STORE_SQLITE_DB_NAME) < 0)
		log_panic("store: data directory path too long");
	s->db_path = b.data;
	pthread_mutex_init(&s->admin_lock, NULL);
	pthread_mutex_init(&s->read_lock, NULL);
	if (pthread_key_create(&s->read_key, sq_reader_destroy) != 0) {
		*error_r = "cannot create thread key";
		sq_deinit(&s->store);
		return -1;
	}
	s->read_key_created = true;
	if ((s->admin = sq_conn_open(s->db_path, false, error_r)) == NULL ||
	    sq_journal_wal(s->admin, error_r) < 0 ||
	    sq_migrate(s->admin, SQ_MIGRATION_COUNT, error_r) < 0 ||
	    (s->writer = sq_conn_open(s->db_path, false, error_r)) == NULL ||
	    sq_max_entry(s->admin, &s->open_max_entry, &s->open_uidvalidity, error_r) < 0) {
		sq_deinit(&s->store);
		return -1;
	}
	*store_r = &s->store;
	return 0;
}

int store_sqlite_create(const char *data_dir, int version, const char **error_r)
{
	struct buf b;
	if (version < 0 || version > SQ_MIGRATION_COUNT) {
		*error_r = store_error_fmt("no schema version %d", version);
		return -1;
	}
	buf_init(&b, 8192);
	if (buf_printf(&b, "%s/%s", data_dir, STORE_SQLITE_DB_NAME) < 0)
		log_panic("store: data directory path too long");
	struct sq_conn *c = sq_conn_open(buf_cstr(&b), false, error_r);
	int ret = c == NULL || sq_journal_wal(c, error_r) < 0 || sq_migrate(c, version, error_r) < 0
	              ? -1
	              : 0;
	sq_conn_close(c);
	buf_free(&b);
	return ret;
}

/* ---- domains ---- */

static int sq_domain_add(struct store *store, const char *domain, const char **error_r)
{
	struct sq_conn *c = sq_admin_begin(store, error_r);
	if (c == NULL)
		return -1;
	int n = store_sqlite_exec(c, SQ_DOMAIN_INSERT, error_r, "si", domain, (int64_t)time(NULL));
	if (n == 0)
		*error_r = store_error_fmt("domain %s already exists", domain);
	return sq_admin_end(store, n == 1 ? 0 : -1, error_r);
}

static int sq_domain_del(struct store *store, const char *domain, const char **error_r)
{
	struct sq_conn *c = sq_admin_begin(store, error_r);
	int64_t id, users = 0;
	if (c == NULL)
		return -1;
	int ret = store_sqlite_int(c, SQ_DOMAIN_ID, &id, error_r, "s", domain);
	if (ret == 0)
		*error_r = store_error_fmt("no such domain %s", domain);
	if (ret == 1)
		ret = store_sqlite_int(c, SQ_DOMAIN_IN_USE, &users, error_r, "is", id, domain);
	if (ret == 1 && users > 0) {
		*error_r =
		    store_error_fmt("domain %s is still used by accounts or aliases", domain);
		ret = 0;
	}
	if (ret == 1)
		ret = store_sqlite_exec(c, SQ_DOMAIN_DELETE, error_r, "i", id);
	return sq_admin_end(store, ret == 1 ? 0 : -1, error_r);
}

/* A caller's callback with its context, for the row functions of listings. */
struct sq_cb {
	union {
		void (*domain)(void *ctx, const char *domain);
		void (*account)(void *ctx, const struct store_account_info *info);
		void (*alias)(void *ctx, const char *alias, const char *target);
	} fn;
	void *ctx;
};

static void sq_domain_row(void *ctx, sqlite3_stmt *st)
{
	struct sq_cb *cb = ctx;
	cb->fn.domain(cb->ctx, sq_text0(st, 0));
}

static int sq_domain_list(struct store *store, void (*fn)(void *ctx, const char *domain), void *ctx)
{
	struct sq_conn *c = store_sqlite_reader(store);
	struct sq_cb cb = {.fn.domain = fn, .ctx = ctx};
	return c == NULL ? -1 : store_sqlite_each(c, SQ_DOMAIN_LIST, sq_domain_row, &cb, "");
}

static int sq_domain_is_local(struct store *store, const char *domain)
{
	struct sq_conn *c = store_sqlite_reader(store);
	int64_t id;
	return c == NULL ? -1 : store_sqlite_int(c, SQ_DOMAIN_ID, &id, NULL, "s", domain);
}

/* ---- accounts ---- */

int store_sqlite_next_uidvalidity(struct sq_conn *c, int64_t *uidvalidity_r, const char **error_r)
{
	int64_t last = 0, now = (int64_t)time(NULL);
	if (store_sqlite_int(c, SQ_META_GET, &last, error_r, "s", "uidvalidity") < 0)
		return -1;
	last = now > last ? now : last + 1;
	if (last > (int64_t)UINT32_MAX) {
		*error_r = "UIDVALIDITY space exhausted";
		return -1;
	}
	*uidvalidity_r = last;
	return store_sqlite_exec(c, SQ_META_SET, error_r, "si", "uidvalidity", last) < 0 ? -1 : 0;
}

/* The template mailboxes of a new account, each with a UIDVALIDITY above every earlier
 * one of this store (the last one handed out is kept in meta), and their subscriptions. */
static int sq_add_mailboxes(struct sq_conn *c, int64_t account_id,
                            const struct store_mailbox_template *mailboxes, size_t count,
                            const char **error_r)
{
	for (size_t i = 0; i < count; i++) {
		int64_t uidvalidity;
		if (store_sqlite_next_uidvalidity(c, &uidvalidity, error_r) < 0 ||
		    store_sqlite_exec(c, SQ_MAILBOX_INSERT, error_r, "issi", account_id,
		                      mailboxes[i].name, mailboxes[i].special_use, uidvalidity) < 0)
			return -1;
		if (mailboxes[i].subscribed && store_sqlite_exec(c, SQ_SUB_INSERT, error_r, "is",
		                                                 account_id, mailboxes[i].name) < 0)
			return -1;
	}
	return 0;
}

static int sq_account_add(struct store *store, const char *address, const char *password_hash,
                          uint64_t quota, const struct store_mailbox_template *mailboxes,
                          size_t mailbox_count, const char **error_r)
{
	struct sq_conn *c = sq_admin_begin(store, error_r);
	int64_t domain_id, dummy;
	if (c == NULL)
		return -1;
	int ret =
	    store_sqlite_int(c, SQ_DOMAIN_ID, &domain_id, error_r, "s", strchr(address, '@') + 1);
	if (ret == 0)
		*error_r = store_error_fmt("domain of %s is not local", address);
	if (ret == 1) {
		ret = store_sqlite_int(c, SQ_ALIAS_EXISTS, &dummy, error_r, "s", address);
		if (ret == 1)
			*error_r = store_error_fmt("%s is already an alias", address);
		ret = ret == 0 ? 1 : -1;
	}
	int64_t id = 0;
	if (ret == 1)
		ret = store_sqlite_int(c, SQ_ACCOUNT_NEXT_ID, &id, error_r, "");
	if (ret == 1) {
		ret = store_sqlite_exec(c, SQ_ACCOUNT_INSERT, error_r, "isisii", id, address,
		                        domain_id, password_hash, (int64_t)quota,
		                        (int64_t)time(NULL));
		if (ret == 0)
			*error_r = store_error_fmt("account %s already exists", address);
	}
	if (ret == 1 && store_sqlite_exec(c, SQ_META_SET, error_r, "si", "account_id", id) < 0)
		ret = -1;
	if (ret == 1)
		ret = sq_add_mailboxes(c, id, mailboxes, mailbox_count, error_r) == 0 ? 1 : -1;
	return sq_admin_end(store, ret == 1 ? 0 : -1, error_r);
}

void store_sqlite_ids_add(struct sq_ids *ids, int64_t id)
{
	if (ids->count == ids->cap) {
		ids->cap = ids->cap == 0 ? 64 : ids->cap * 2;
		ids->v = xrealloc(ids->v, ids->cap * sizeof(*ids->v));
	}
	ids->v[ids->count++] = id;
}

static void sq_ids_row(void *ctx, sqlite3_stmt *st)
{
	store_sqlite_ids_add(ctx, sqlite3_column_int64(st, 0));
}

/* Delete the message rows among ids that nothing references any more; their content
 * addresses are appended to removed (malloc'd strings). */
static int sq_delete_unused(struct sq_conn *c, const struct sq_ids *ids, char ***removed_r,
                            size_t *count_r, const char **error_r)
{
	for (size_t i = 0; i < ids->count; i++) {
		sqlite3_stmt *st;
		int rc =
		    store_sqlite_step(c, SQ_MESSAGE_DELETE_UNUSED, &st, error_r, "i", ids->v[i]);
		if (rc < 0)
			return -1;
		if (rc == SQLITE_ROW) {
			*removed_r = xrealloc(*removed_r, (*count_r + 1) * sizeof(char *));
			(*removed_r)[(*count_r)++] = xstrdup(sq_text0(st, 0));
			while (sqlite3_step(st) == SQLITE_ROW)
				;
			sq_reset(st);
		}
	}
	return 0;
}

static void sq_removed_report(char **removed, size_t count, bool committed,
                              store_blob_removed_cb *removed_cb, void *ctx)
{
	for (size_t i = 0; i < count; i++) {
		if (committed)
			removed_cb(ctx, removed[i]);
		free(removed[i]);
	}
	free(removed);
}

static int sq_account_del(struct store *store, const char *address,
                          store_blob_removed_cb *removed_cb, void *ctx, const char **error_r)
{
	struct sq_conn *c = sq_admin_begin(store, error_r);
	struct sq_ids ids = {0};
	char **removed = NULL;
	size_t removed_count = 0;
	int64_t id;
	if (c == NULL)
		return -1;
	int ret = store_sqlite_int(c, SQ_ACCOUNT_ID, &id, error_r, "s", address);
	if (ret == 0)
		*error_r = store_error_fmt("no such account %s", address);
	if (ret == 1 && store_sqlite_each(c, SQ_ACCOUNT_MESSAGES, sq_ids_row, &ids, "i", id) < 0) {
		*error_r = "database error listing messages";
		ret = -1;
	}
	/* Mailboxes, entries and tombstones go by ON DELETE CASCADE. */
	if (ret == 1)
		ret = store_sqlite_exec(c, SQ_ACCOUNT_DELETE, error_r, "i", id);
	if (ret == 1)
		ret = sq_delete_unused(c, &ids, &removed, &removed_count, error_r) == 0 ? 1 : -1;
	ret = sq_admin_end(store, ret == 1 ? 0 : -1, error_r);
	sq_removed_report(removed, removed_count, ret == 0, removed_cb, ctx);
	free(ids.v);
	return ret;
}

static int sq_account_update(struct store *store, enum sq_id id, const char *address,
                             const char *fmt, const char *text, int64_t number,
                             const char **error_r)
{
	struct sq_conn *c = sq_admin_begin(store, error_r);
	if (c == NULL)
		return -1;
	int n = fmt[1] == 's' ? store_sqlite_exec(c, id, error_r, fmt, address, text)
	                      : store_sqlite_exec(c, id, error_r, fmt, address, number);
	if (n == 0)
		*error_r = store_error_fmt("no such account %s", address);
	return sq_admin_end(store, n == 1 ? 0 : -1, error_r);
}

static int sq_account_set_password(struct store *store, const char *address,
                                   const char *password_hash, const char **error_r)
{
	return sq_account_update(store, SQ_ACCOUNT_SET_PASSWORD, address, "ss", password_hash, 0,
	                         error_r);
}

static int sq_account_set_quota(struct store *store, const char *address, uint64_t quota,
                                const char **error_r)
{
	return sq_account_update(store, SQ_ACCOUNT_SET_QUOTA, address, "si", NULL, (int64_t)quota,
	                         error_r);
}

static int sq_account_set_apop(struct store *store, const char *address, const char *secret,
                               const char **error_r)
{
	return sq_account_update(store, SQ_ACCOUNT_SET_APOP, address, "ss", secret, 0, error_r);
}

static int sq_account_get_apop(struct store *store, const char *address, uint64_t *id_r,
                               char **secret_r)
{
	struct sq_conn *c = store_sqlite_reader(store);
	sqlite3_stmt *st;
	int rc =
	    c == NULL ? -1 : store_sqlite_step(c, SQ_ACCOUNT_GET_APOP, &st, NULL, "s", address);
	if (rc != SQLITE_ROW)
		return rc < 0 ? -1 : 0;
	const char *secret = sq_text(st, 1);
	if (secret != NULL) {
		*id_r = (uint64_t)sqlite3_column_int64(st, 0);
		*secret_r = xstrdup(secret);
	}
	sq_reset(st);
	return secret != NULL ? 1 : 0;
}

static void sq_account_info(sqlite3_stmt *st, struct store_account_info *info)
{
	info->id = (uint64_t)sqlite3_column_int64(st, 0);
	info->address = sq_text0(st, 1);
	info->quota = (uint64_t)sqlite3_column_int64(st, 2);
	info->used = (uint64_t)sqlite3_column_int64(st, 3);
	info->messages = (uint64_t)sqlite3_column_int64(st, 4);
}

static void sq_account_row(void *ctx, sqlite3_stmt *st)
{
	struct sq_cb *cb = ctx;
	struct store_account_info info;
	sq_account_info(st, &info);
	cb->fn.account(cb->ctx, &info);
}

static int sq_account_list(struct store *store, const char *domain,
                           void (*fn)(void *ctx, const struct store_account_info *info), void *ctx)
{
	struct sq_conn *c = store_sqlite_reader(store);
	struct sq_cb cb = {.fn.account = fn, .ctx = ctx};
	if (c == NULL)
		return -1;
	if (domain == NULL)
		return store_sqlite_each(c, SQ_ACCOUNT_LIST, sq_account_row, &cb, "");
	return store_sqlite_each(c, SQ_ACCOUNT_LIST_DOMAIN, sq_account_row, &cb, "s", domain);
}

static int sq_account_lookup(struct store *store, const char *address, uint64_t *id_r,
                             char **password_hash_r, struct store_account_info *info_r)
{
	struct sq_conn *c = store_sqlite_reader(store);
	sqlite3_stmt *st;
	int rc = c == NULL ? -1 : store_sqlite_step(c, SQ_ACCOUNT_LOOKUP, &st, NULL, "s", address);
	if (rc != SQLITE_ROW)
		return rc < 0 ? -1 : 0;
	if (id_r != NULL)
		*id_r = (uint64_t)sqlite3_column_int64(st, 0);
	if (password_hash_r != NULL)
		*password_hash_r = xstrdup(sq_text0(st, 5));
	if (info_r != NULL) {
		sq_account_info(st, info_r);
		info_r->address = NULL;
	}
	sq_reset(st);
	return 1;
}

static int sq_account_usage(struct store *store, uint64_t account_id, uint64_t *quota_r,
                            uint64_t *used_r)
{
	struct sq_conn *c = store_sqlite_reader(store);
	sqlite3_stmt *st;
	int rc = c == NULL
	             ? -1
	             : store_sqlite_step(c, SQ_ACCOUNT_USAGE, &st, NULL, "i", (int64_t)account_id);
	if (rc != SQLITE_ROW)
		return rc < 0 ? -1 : 0;
	if (quota_r != NULL)
		*quota_r = (uint64_t)sqlite3_column_int64(st, 0);
	if (used_r != NULL)
		*used_r = (uint64_t)sqlite3_column_int64(st, 1);
	sq_reset(st);
	return 1;
}

static int sq_account_address(struct store *store, uint64_t account_id, char **address_r)
{
	struct sq_conn *c = store_sqlite_reader(store);
	sqlite3_stmt *st;
	int rc = c == NULL ? -1
	                   : store_sqlite_step(c, SQ_ACCOUNT_ADDRESS, &st, NULL, "i",
	                                       (int64_t)account_id);
	if (rc != SQLITE_ROW)
		return rc < 0 ? -1 : 0;
	*address_r = xstrdup(sq_text0(st, 0));
	sq_reset(st);
	return 1;
}

static int sq_account_find(struct store *store, const char *address, uint64_t *id_r)
{
	struct sq_conn *c = store_sqlite_reader(store);
	int64_t id;
	int ret = c == NULL ? -1 : store_sqlite_int(c, SQ_ACCOUNT_ID, &id, NULL, "s", address);
	if (ret == 1)
		*id_r = (uint64_t)id;
	return ret;
}

/* ---- aliases ---- */

static int sq_alias_add(struct store *store, const char *alias, const char *target,
                        const char **error_r)
{
	struct sq_conn *c = sq_admin_begin(store, error_r);
	int64_t domain_id, dummy;
	if (c == NULL)
		return -1;
	int ret =
	    store_sqlite_int(c, SQ_DOMAIN_ID, &domain_id, error_r, "s", strchr(alias, '@') + 1);
	if (ret == 0)
		*error_r = store_error_fmt("domain of %s is not local", alias);
	if (ret == 1) {
		ret = store_sqlite_int(c, SQ_ACCOUNT_ID, &dummy, error_r, "s", alias);
		if (ret == 1)
			*error_r = store_error_fmt("%s is already an account", alias);
		ret = ret == 0 ? 1 : -1;
	}
	if (ret == 1) {
		ret =
		    store_sqlite_exec(c, SQ_ALIAS_INSERT, error_r, "sis", alias, domain_id, target);
		if (ret == 0)
			*error_r = store_error_fmt("alias %s -> %s already exists", alias, target);
	}
	return sq_admin_end(store, ret == 1 ? 0 : -1, error_r);
}

static int sq_alias_del(struct store *store, const char *alias, const char *target,
                        const char **error_r)
{
	struct sq_conn *c = sq_admin_begin(store, error_r);
	if (c == NULL)
		return -1;
	int n = target == NULL
	            ? store_sqlite_exec(c, SQ_ALIAS_DELETE_ALL, error_r, "s", alias)
	            : store_sqlite_exec(c, SQ_ALIAS_DELETE_ONE, error_r, "ss", alias, target);
	if (n == 0)
		*error_r =
		    store_error_fmt("no such alias %s%s%s", alias, target == NULL ? "" : " -> ",
		                    target == NULL ? "" : target);
	return sq_admin_end(store, n > 0 ? 0 : -1, error_r);
}

static void sq_alias_row(void *ctx, sqlite3_stmt *st)
{
	struct sq_cb *cb = ctx;
	cb->fn.alias(cb->ctx, sq_text0(st, 0), sq_text0(st, 1));
}

static int sq_alias_list(struct store *store,
                         void (*fn)(void *ctx, const char *alias, const char *target), void *ctx)
{
	struct sq_conn *c = store_sqlite_reader(store);
	struct sq_cb cb = {.fn.alias = fn, .ctx = ctx};
	return c == NULL ? -1 : store_sqlite_each(c, SQ_ALIAS_LIST, sq_alias_row, &cb, "");
}

struct sq_targets {
	void (*fn)(void *ctx, const char *target);
	void *ctx;
	int count;
};

static void sq_target_row(void *ctx, sqlite3_stmt *st)
{
	struct sq_targets *t = ctx;
	t->fn(t->ctx, sq_text0(st, 0));
	t->count++;
}

static int sq_alias_targets(struct store *store, const char *alias,
                            void (*fn)(void *ctx, const char *target), void *ctx)
{
	struct sq_conn *c = store_sqlite_reader(store);
	struct sq_targets t = {fn, ctx, 0};
	if (c == NULL || store_sqlite_each(c, SQ_ALIAS_TARGETS, sq_target_row, &t, "s", alias) < 0)
		return -1;
	return t.count;
}

/* ---- the writer thread's transactions: deliveries and expunges ---- */

/* INBOX of one account: next UID and MODSEQ, the entry, the account's used bytes. */
static int sq_deliver_local(struct sq_conn *c, uint64_t account, int64_t message_id,
                            const struct store_commit_delivery *item, int64_t internal_date,
                            struct store_changes *changes, const char **error_r)
{
	sqlite3_stmt *st;
	int rc = store_sqlite_step(c, SQ_INBOX_NEXT, &st, error_r, "i", (int64_t)account);
	if (rc < 0)
		return -1;
	if (rc == SQLITE_DONE) {
		*error_r = store_error_fmt("account %" PRIu64 " has no INBOX", account);
		return -1;
	}
	int64_t mailbox_id = sqlite3_column_int64(st, 0);
	int64_t uid = sqlite3_column_int64(st, 1);
	int64_t modseq = sqlite3_column_int64(st, 2);
	while (sqlite3_step(st) == SQLITE_ROW)
		;
	sq_reset(st);
	if (uid > (int64_t)UINT32_MAX) {
		*error_r = store_error_fmt("account %" PRIu64 ": INBOX UIDs exhausted", account);
		return -1;
	}
	store_watch_changed(changes, account, "INBOX", (uint64_t)modseq);
	if (store_sqlite_exec(c, SQ_ENTRY_INSERT, error_r, "iiiii", mailbox_id, uid, message_id,
	                      modseq, internal_date) < 0 ||
	    store_sqlite_exec(c, SQ_ACCOUNT_ADD_USED, error_r, "ii", (int64_t)account,
	                      (int64_t)item->size) < 0)
		return -1;
	return 0;
}

int store_sqlite_message_row(struct sq_conn *c, const char *sha256, uint64_t size,
                             int64_t received_at, const char *mail_from, const char *hdr_from,
                             const char *subject, const char *message_id,
                             const struct store_summary *summary, int64_t *id_r,
                             const char **error_r)
{
	static const struct store_summary none = {0};
	const struct store_summary *sum = summary == NULL ? &none : summary;
	if (store_sqlite_exec(c, SQ_MESSAGE_INSERT, error_r, "siisssssss", sha256, (int64_t)size,
	                      received_at, mail_from, hdr_from, subject, message_id, sum->envelope,
	                      sum->body, sum->bodystructure) < 0)
		return -1;
	if (store_sqlite_int(c, SQ_MESSAGE_ID, id_r, error_r, "s", sha256) != 1) {
		*error_r = "message row vanished";
		return -1;
	}
	return 0;
}

static int sq_deliver_one(struct sq_conn *c, const struct store_commit_delivery *item, int64_t now,
                          struct store_changes *changes, const char **error_r)
{
	const struct store_delivery *d = item->delivery;
	const char *mail_from = d->mail_from == NULL ? "" : d->mail_from;
	int64_t received = d->received_at > 0 ? d->received_at : now;
	int64_t message_id;

	if (store_sqlite_message_row(c, item->sha256, item->size, received, mail_from, d->hdr_from,
	                             d->hdr_subject, d->hdr_message_id, item->summary, &message_id,
	                             error_r) < 0)
		return -1;
	for (size_t i = 0; i < item->account_count; i++) {
		if (sq_deliver_local(c, item->accounts[i], message_id, item, received, changes,
		                     error_r) < 0)
			return -1;
	}
	return store_sqlite_queue_deliver(c, d, message_id, now, error_r);
}

/* One UID of an expunge: 1 removed (its message id and size added to unref and x), 0 it
 * was not there, -1 error. The mailbox's MODSEQ goes up at the first UID removed. */
static int sq_expunge_uid(struct sq_conn *c, int64_t mailbox_id, uint32_t uid, int64_t *modseq,
                          struct store_commit_expunge *x, struct sq_ids *unref,
                          const char **error_r)
{
	int64_t message_id, size;
	int ret = store_sqlite_int(c, SQ_ENTRY_TAKE, &message_id, error_r, "ii", mailbox_id,
	                           (int64_t)uid);
	if (ret <= 0)
		return ret;
	ret = store_sqlite_int(c, SQ_MESSAGE_SIZE, &size, error_r, "i", message_id);
	if (ret == 0)
		*error_r = "message row vanished";
	if (ret == 1 && *modseq == 0) {
		ret = store_sqlite_int(c, SQ_MAILBOX_BUMP_MODSEQ, modseq, error_r, "i", mailbox_id);
		if (ret == 0)
			*error_r = "mailbox vanished";
	}
	/* QRESYNC (RFC 7162): every entry expunged here gets the mailbox's new MODSEQ. */
	if (ret == 1 && store_sqlite_exec(c, SQ_TOMBSTONE_INSERT, error_r, "iii", mailbox_id,
	                                  (int64_t)uid, *modseq) < 0)
		ret = -1;
	if (ret != 1)
		return -1;
	store_sqlite_ids_add(unref, message_id);
	x->expunged++;
	x->freed += (uint64_t)size;
	return 1;
}

static int sq_expunge_one(struct sq_conn *c, struct store_commit_expunge *x, struct sq_ids *unref,
                          struct store_changes *changes, const char **error_r)
{
	int64_t mailbox_id, modseq = 0;
	x->no_mailbox = false;
	x->expunged = 0;
	x->freed = 0;
	int ret = store_sqlite_int(c, SQ_MAILBOX_ID, &mailbox_id, error_r, "is",
	                           (int64_t)x->account_id, x->mailbox);
	if (ret <= 0) {
		x->no_mailbox = ret == 0;
		return ret;
	}
	for (size_t i = 0; i < x->uid_count; i++) {
		if (sq_expunge_uid(c, mailbox_id, x->uids[i], &modseq, x, unref, error_r) < 0)
			return -1;
	}
	if (x->expunged > 0 && store_sqlite_exec(c, SQ_ACCOUNT_SUB_USED, error_r, "ii",
	                                         (int64_t)x->account_id, (int64_t)x->freed) < 0)
		return -1;
	if (x->expunged > 0)
		store_watch_changed(changes, x->account_id, x->mailbox, (uint64_t)modseq);
	return 0;
}

/* An IMAP item inside a savepoint: one the backend refuses is rolled back whole, with the
 * changes and references it recorded. */
static int sq_mailbox_item(struct sq_conn *c, struct store_commit_item *item, struct sq_ids *unref,
                           struct store_changes *changes, const char **error_r)
{
	size_t changes_mark = changes->count, unref_mark = unref->count;
	item->refused = NULL;
	if (store_sqlite_exec(c, SQ_SAVEPOINT, error_r, "") < 0)
		return -1;
	if (store_sqlite_mailbox_commit(c, item, unref, changes, error_r) < 0)
		return -1;
	if (item->refused != NULL) {
		if (store_sqlite_exec(c, SQ_ROLLBACK_TO, error_r, "") < 0)
			return -1;
		store_watch_truncate(changes, changes_mark);
		unref->count = unref_mark;
	}
	return store_sqlite_exec(c, SQ_RELEASE, error_r, "") < 0 ? -1 : 0;
}

static int sq_commit(struct store *store, struct store_commit_item *items, size_t count,
                     store_blob_removed_cb *removed_cb, void *ctx, struct store_changes *changes,
                     const char **error_r)
{
	struct sq_conn *c = sq_store(store)->writer;
	int64_t now = (int64_t)time(NULL);
	struct sq_ids unref = {0};
	char **removed = NULL;
	size_t removed_count = 0;
	int ret = 0;
	if (store_sqlite_exec(c, SQ_BEGIN, error_r, "") < 0)
		return -1;
	for (size_t i = 0; ret == 0 && i < count; i++) {
		if (items[i].kind == STORE_OP_DELIVERY)
			ret = sq_deliver_one(c, &items[i].delivery, now, changes, error_r);
		else if (items[i].kind == STORE_OP_EXPUNGE)
			ret = sq_expunge_one(c, &items[i].expunge, &unref, changes, error_r);
		else if (items[i].kind == STORE_OP_QUEUE)
			ret = store_sqlite_queue_commit(c, store->messages_dir, &items[i], &unref,
			                                error_r);
		else
			ret = sq_mailbox_item(c, &items[i], &unref, changes, error_r);
	}
	/* Only now: a later delivery of the same bytes in this transaction keeps its row. */
	if (ret == 0)
		ret = sq_delete_unused(c, &unref, &removed, &removed_count, error_r);
	ret = store_sqlite_end(c, ret, error_r);
	if (ret < 0)
		store_sqlite_queue_rollback(items, count);
	sq_removed_report(removed, removed_count, ret == 0, removed_cb, ctx);
	free(unref.v);
	return ret;
}

/* ---- reading ---- */

/* The mailbox's id by owner address and name ("INBOX" case-insensitive). */
static int sq_mailbox_find(struct sq_conn *c, const char *address, const char *mailbox,
                           int64_t *id_r)
{
	/* RFC 9051 §5.1: INBOX is case-insensitive; other names are exact. */
	const char *name = strcasecmp(mailbox, "INBOX") == 0 ? "INBOX" : mailbox;
	return store_sqlite_int(c, SQ_MAILBOX_FIND, id_r, NULL, "ss", address, name);
}

struct sq_list {
	void (*fn)(void *ctx, const struct store_entry_row *row);
	void *ctx;
};

static void sq_entry_row(void *ctx, sqlite3_stmt *st)
{
	struct sq_list *l = ctx;
	struct store_entry_row row = {
	    .uid = (uint32_t)sqlite3_column_int64(st, 0),
	    .flags = (uint32_t)sqlite3_column_int64(st, 1),
	    .keywords = sq_text0(st, 2),
	    .size = (uint64_t)sqlite3_column_int64(st, 3),
	    .internal_date = sqlite3_column_int64(st, 4),
	    .mail_from = sq_text0(st, 5),
	    .hdr_from = sq_text(st, 6),
	    .subject = sq_text(st, 7),
	};
	l->fn(l->ctx, &row);
}

static int sq_mail_list(struct store *store, const char *address, const char *mailbox,
                        void (*fn)(void *ctx, const struct store_entry_row *row), void *ctx)
{
	struct sq_conn *c = store_sqlite_reader(store);
	struct sq_list l = {fn, ctx};
	int64_t mailbox_id;
	int ret = c == NULL ? -1 : sq_mailbox_find(c, address, mailbox, &mailbox_id);
	if (ret <= 0)
		return ret;
	return store_sqlite_each(c, SQ_ENTRY_LIST, sq_entry_row, &l, "i", mailbox_id) < 0 ? -1 : 1;
}

/* Read a message row's content address and size from a SQ_ENTRY_LOCATE-like row. */
static int sq_locate_row(sqlite3_stmt *st, uint32_t uid, char sha256_r[BLOB_HEX_LEN + 1],
                         uint64_t *size_r)
{
	const char *sha = sq_text0(st, 0);
	int ret = blob_name_valid(sha) ? 1 : -1;
	if (ret == 1) {
		memcpy(sha256_r, sha, BLOB_HEX_LEN + 1);
		*size_r = (uint64_t)sqlite3_column_int64(st, 1);
	} else
		log_error("store: message row with a bad content address for uid %u", uid);
	sq_reset(st);
	return ret;
}

static int sq_mail_locate(struct store *store, const char *address, const char *mailbox,
                          uint32_t uid, char sha256_r[BLOB_HEX_LEN + 1], uint64_t *size_r)
{
	struct sq_conn *c = store_sqlite_reader(store);
	sqlite3_stmt *st;
	int64_t mailbox_id;
	int ret = c == NULL ? -1 : sq_mailbox_find(c, address, mailbox, &mailbox_id);
	if (ret <= 0)
		return ret;
	int rc = store_sqlite_step(c, SQ_ENTRY_LOCATE, &st, NULL, "ii", mailbox_id, (int64_t)uid);
	if (rc != SQLITE_ROW)
		return rc < 0 ? -1 : 0;
	return sq_locate_row(st, uid, sha256_r, size_r);
}

static int sq_message_locate(struct store *store, uint64_t account_id, const char *mailbox,
                             uint32_t uid, char sha256_r[BLOB_HEX_LEN + 1], uint64_t *size_r)
{
	struct sq_conn *c = store_sqlite_reader(store);
	sqlite3_stmt *st;
	/* One statement: the mailbox and the entry come from the same snapshot. */
	int rc = c == NULL ? -1
	                   : store_sqlite_step(c, SQ_MESSAGE_LOCATE, &st, NULL, "isi",
	                                       (int64_t)account_id, mailbox, (int64_t)uid);
	if (rc != SQLITE_ROW)
		return rc < 0 ? -1 : 0;
	return sq_locate_row(st, uid, sha256_r, size_r);
}

struct sq_snapshot {
	void (*fn)(void *ctx, const struct store_entry *entry);
	void *ctx;
};

static void sq_snapshot_row(void *ctx, sqlite3_stmt *st)
{
	struct sq_snapshot *sn = ctx;
	struct store_entry entry = {
	    .uid = (uint32_t)sqlite3_column_int64(st, 0),
	    .size = (uint64_t)sqlite3_column_int64(st, 1),
	    .internal_date = sqlite3_column_int64(st, 2),
	    .flags = (unsigned)sqlite3_column_int64(st, 3),
	    .modseq = (uint64_t)sqlite3_column_int64(st, 4),
	    .keywords = sq_text0(st, 5),
	};
	sn->fn(sn->ctx, &entry);
}

/* The status row and the entries, on a connection already inside a read transaction. */
static int sq_snapshot_read(struct sq_conn *c, uint64_t account_id, const char *mailbox,
                            struct store_mailbox_status *status_r, struct sq_snapshot *sn)
{
	sqlite3_stmt *st;
	int rc =
	    store_sqlite_step(c, SQ_MAILBOX_STATUS, &st, NULL, "is", (int64_t)account_id, mailbox);
	if (rc != SQLITE_ROW)
		return rc < 0 ? -1 : 0;
	int64_t mailbox_id = sqlite3_column_int64(st, 0);
	*status_r = (struct store_mailbox_status){
	    .uidvalidity = (uint32_t)sqlite3_column_int64(st, 1),
	    .uidnext = (uint32_t)sqlite3_column_int64(st, 2),
	    .highestmodseq = (uint64_t)sqlite3_column_int64(st, 3),
	    .messages = (uint32_t)sqlite3_column_int64(st, 4),
	};
	sq_reset(st);
	if (sn->fn != NULL &&
	    store_sqlite_each(c, SQ_ENTRY_SNAPSHOT, sq_snapshot_row, sn, "i", mailbox_id) < 0)
		return -1;
	return 1;
}

static int sq_mailbox_snapshot(struct store *store, uint64_t account_id, const char *mailbox,
                               struct store_mailbox_status *status_r,
                               void (*fn)(void *ctx, const struct store_entry *entry), void *ctx)
{
	struct sq_conn *c = store_sqlite_reader(store);
	struct sq_snapshot sn = {fn, ctx};
	int started = c == NULL ? -1 : store_sqlite_read_begin(c);
	if (started < 0)
		return -1;
	int ret = sq_snapshot_read(c, account_id, mailbox, status_r, &sn);
	return store_sqlite_read_end(c, started, ret);
}

int store_sqlite_read_begin(struct sq_conn *c)
{
	/* Called again from a callback of an outer snapshot: stay inside that one. */
	if (sqlite3_get_autocommit(c->db) == 0)
		return 0;
	return store_sqlite_exec(c, SQ_READ_BEGIN, NULL, "") < 0 ? -1 : 1;
}

int store_sqlite_read_end(struct sq_conn *c, int started, int ret)
{
	if (started == 1 && store_sqlite_exec(c, ret < 0 ? SQ_ROLLBACK : SQ_COMMIT, NULL, "") < 0 &&
	    ret >= 0)
		ret = -1;
	return ret;
}

/* ---- garbage collection ---- */

struct sq_strings {
	char **v;
	size_t count;
};

static void sq_string_row(void *ctx, sqlite3_stmt *st)
{
	struct sq_strings *s = ctx;
	s->v = xrealloc(s->v, (s->count + 1) * sizeof(char *));
	s->v[s->count++] = xstrdup(sq_text0(st, 0));
}

static int sq_message_gc(struct store *store, store_blob_removed_cb *removed_cb, void *ctx)
{
	const char *error;
	struct sq_strings removed = {0};
	struct sq_conn *c = sq_admin_begin(store, &error);
	if (c == NULL)
		return -1;
	int ret = store_sqlite_each(c, SQ_MESSAGE_GC, sq_string_row, &removed, "");
	ret = sq_admin_end(store, ret, &error);
	if (ret == 0 && removed.count > 0)
		log_info("store: removed %zu unreferenced messages", removed.count);
	sq_removed_report(removed.v, removed.count, ret == 0, removed_cb, ctx);
	return ret;
}

static int sq_message_exists(struct store *store, const char *sha256)
{
	struct sq_conn *c = store_sqlite_reader(store);
	int64_t dummy;
	return c == NULL ? -1 : store_sqlite_int(c, SQ_MESSAGE_EXISTS, &dummy, NULL, "s", sha256);
}

const struct store_vfuncs store_sqlite_vfuncs = {
    .name = "sqlite",
    .init = sq_init,
    .deinit = sq_deinit,
    .schema_version = sq_schema_version,
    .domain_add = sq_domain_add,
    .domain_del = sq_domain_del,
    .domain_list = sq_domain_list,
    .domain_is_local = sq_domain_is_local,
    .account_add = sq_account_add,
    .account_del = sq_account_del,
    .account_set_password = sq_account_set_password,
    .account_set_quota = sq_account_set_quota,
    .account_set_apop = sq_account_set_apop,
    .account_get_apop = sq_account_get_apop,
    .account_list = sq_account_list,
    .account_lookup = sq_account_lookup,
    .account_usage = sq_account_usage,
    .account_address = sq_account_address,
    .account_find = sq_account_find,
    .alias_add = sq_alias_add,
    .alias_del = sq_alias_del,
    .alias_list = sq_alias_list,
    .alias_targets = sq_alias_targets,
    .commit = sq_commit,
    .mail_list = sq_mail_list,
    .mail_locate = sq_mail_locate,
    .mailbox_snapshot = sq_mailbox_snapshot,
    .message_locate = sq_message_locate,
    .mailbox_list = store_sqlite_mailbox_list,
    .mailbox_stats = store_sqlite_mailbox_stats,
    .mailbox_keywords = store_sqlite_mailbox_keywords,
    .mailbox_recent_first = store_sqlite_mailbox_recent_first,
    .mailbox_count_from = store_sqlite_mailbox_count_from,
    .mailbox_changes = store_sqlite_mailbox_changes,
    .message_summary = store_sqlite_mailbox_summary,
    .queue_list = store_sqlite_queue_list,
    .queue_show = store_sqlite_queue_show,
    .queue_next_due = store_sqlite_queue_next_due,
    .message_gc = sq_message_gc,
    .message_exists = sq_message_exists,
};
