/* The store's database logic (store_private.h's vtable), once for every engine, over the SQL
 * driver interface (sql.h): domains, accounts, aliases, the writer's transaction with
 * deliveries and expunges (and, through store_db_mailbox.c and store_db_queue.c, the IMAP
 * and queue operations, each under a savepoint) in queue order, and the reads. The writer
 * thread has its own connection, admin writes share one mutex-protected connection, and
 * each reading thread lazily gets its own reader connection (a pthread key), so readers
 * never wait for the writer. */
#include "store/store_db.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/buf.h"
#include "core/fault.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/store_trigram.h"
#include "store/pg/sql_pg.h"
#include "store/sqlite/sql_sqlite.h"
#include "core/banned.h"

/* ---- statements ---- */

#define SQ_ACCOUNT_COLUMNS                                                                         \
	"SELECT a.id, a.address, a.quota, a.used_bytes, (SELECT count(*) FROM"                     \
	" mailbox_entries e JOIN mailboxes m ON m.id = e.mailbox_id WHERE m.account_id = a.id),"   \
	" a.password_hash, a.message_limit FROM accounts a"

static const char *const sq_sql[SQ_CORE_COUNT] = {
    [SQ_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [SQ_META_SET] = "INSERT INTO meta (key, value) VALUES (?1, ?2)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [SQ_DOMAIN_ID] = "SELECT id FROM domains WHERE name = ?1",
    [SQ_DOMAIN_INSERT] = "INSERT INTO domains (name, created) VALUES (?1, ?2)"
                         " ON CONFLICT (name) DO NOTHING",
    /* A target in the domain ends with "@domain" (no instr()/strpos() common to both). */
    [SQ_DOMAIN_IN_USE] = "SELECT (SELECT count(*) FROM accounts WHERE domain_id = ?1)"
                         " + (SELECT count(*) FROM aliases WHERE domain_id = ?1"
                         " OR substr(target, length(target) - length(?2)) = '@' || ?2)",
    [SQ_DOMAIN_DELETE] = "DELETE FROM domains WHERE id = ?1",
    [SQ_DOMAIN_LIST] = "SELECT name FROM domains ORDER BY name",
    [SQ_ACCOUNT_ID] = "SELECT id FROM accounts WHERE address = ?1",
    [SQ_ACCOUNT_NEXT_ID] = "SELECT CASE WHEN k.v > a.v THEN k.v ELSE a.v END + 1 FROM"
                           " (SELECT coalesce((SELECT value FROM meta"
                           " WHERE key = 'account_id'), 0) AS v) k,"
                           " (SELECT coalesce(max(id), 0) AS v FROM accounts) a",
    [SQ_ACCOUNT_INSERT] = "INSERT INTO accounts (id, address, domain_id, password_hash, quota,"
                          " created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                          " ON CONFLICT (address) DO NOTHING",
    [SQ_MAILBOX_INSERT] = "INSERT INTO mailboxes (account_id, name, special_use, uidvalidity,"
                          " objectid) VALUES (?1, ?2, ?3, ?4, ?5)",
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
    /* The entries are counted only when a message limit needs them. */
    [SQ_ACCOUNT_LIMITS] = "SELECT a.quota, a.used_bytes, a.message_limit, CASE WHEN"
                          " a.message_limit > 0 THEN (SELECT count(*) FROM mailbox_entries e"
                          " JOIN mailboxes m ON m.id = e.mailbox_id WHERE m.account_id = a.id)"
                          " ELSE 0 END FROM accounts a WHERE a.id = ?1",
    [SQ_ACCOUNT_SET_MESSAGE_LIMIT] = "UPDATE accounts SET message_limit = ?2 WHERE address = ?1",
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
                          " hdr_from, subject, message_id, envelope, body, bodystructure, content,"
                          " preview)"
                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                          " ON CONFLICT (sha256) DO UPDATE SET"
                          " envelope = coalesce(messages.envelope, excluded.envelope),"
                          " body = coalesce(messages.body, excluded.body),"
                          " bodystructure = coalesce(messages.bodystructure,"
                          " excluded.bodystructure),"
                          " preview = coalesce(messages.preview, excluded.preview)"
                          " WHERE excluded.envelope IS NOT NULL OR excluded.body IS NOT NULL"
                          " OR excluded.bodystructure IS NOT NULL OR excluded.preview IS NOT NULL",
    [SQ_MESSAGE_ID] = "SELECT id FROM messages WHERE sha256 = ?1",
    [SQ_INBOX_NEXT] = "UPDATE mailboxes SET uidnext = uidnext + 1,"
                      " highestmodseq = highestmodseq + 1"
                      " WHERE account_id = ?1 AND name = 'INBOX'"
                      " RETURNING id, uidnext - 1, highestmodseq",
    /* The account's first mailbox whose special-use list (RFC 6154) holds \Junk; ?2 is
     * the LIKE pattern "% \\Junk %" (ESCAPE '!': PostgreSQL's LIKE would take the
     * backslash as its escape). */
    [SQ_JUNK_NEXT] = "UPDATE mailboxes SET uidnext = uidnext + 1,"
                     " highestmodseq = highestmodseq + 1"
                     " WHERE id = (SELECT id FROM mailboxes WHERE account_id = ?1"
                     " AND (' ' || special_use || ' ') LIKE ?2 ESCAPE '!' ORDER BY id LIMIT 1)"
                     " RETURNING id, uidnext - 1, highestmodseq, name",
    [SQ_ENTRY_INSERT] = "INSERT INTO mailbox_entries (mailbox_id, uid, message_id, modseq,"
                        " internal_date, save_date) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [SQ_ACCOUNT_ADD_USED] = "UPDATE accounts SET used_bytes = used_bytes + ?2 WHERE id = ?1",
    [SQ_MAILBOX_FIND] = "SELECT m.id FROM mailboxes m JOIN accounts a ON a.id = m.account_id"
                        " WHERE a.address = ?1 AND m.name = ?2",
    [SQ_ENTRY_LIST] = "SELECT e.uid, e.flags, e.keywords, m.size, e.internal_date,"
                      " m.mail_from, m.hdr_from, m.subject FROM mailbox_entries e"
                      " JOIN messages m ON m.id = e.message_id WHERE e.mailbox_id = ?1"
                      " ORDER BY e.uid",
    [SQ_ENTRY_LOCATE] = "SELECT m.sha256, m.size, m.content, m.id FROM mailbox_entries e"
                        " JOIN messages m ON m.id = e.message_id"
                        " WHERE e.mailbox_id = ?1 AND e.uid = ?2",
    [SQ_MESSAGE_GC] = "DELETE FROM messages WHERE"
                      " NOT EXISTS (SELECT 1 FROM mailbox_entries e"
                      " WHERE e.message_id = messages.id)"
                      " AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.message_id = messages.id)"
                      " RETURNING sha256",
    [SQ_MESSAGE_EXISTS] = "SELECT 1 FROM messages WHERE sha256 = ?1",
    /* No count of the entries: on 100,000 of them it costs what the rest of a sync
     * costs a hundred times over. A snapshot counts the rows it reads. */
    [SQ_MAILBOX_STATUS] = "SELECT b.id, b.uidvalidity, b.uidnext, b.highestmodseq, b.objectid,"
                          " b.tombstone_floor"
                          " FROM mailboxes b WHERE b.account_id = ?1 AND b.name = ?2",
    [SQ_ENTRY_SNAPSHOT] = "SELECT e.uid, m.size, e.internal_date, e.flags, e.modseq,"
                          " e.keywords, coalesce(e.save_date, e.internal_date)"
                          " FROM mailbox_entries e"
                          " JOIN messages m ON m.id = e.message_id"
                          " WHERE e.mailbox_id = ?1 ORDER BY e.uid",
    [SQ_MESSAGE_LOCATE] = "SELECT m.sha256, m.size, m.content, m.id FROM mailbox_entries e"
                          " JOIN messages m ON m.id = e.message_id"
                          " JOIN mailboxes b ON b.id = e.mailbox_id"
                          " WHERE b.account_id = ?1 AND b.name = ?2 AND e.uid = ?3",
    [SQ_MAILBOX_ID] = "SELECT id FROM mailboxes WHERE account_id = ?1 AND name = ?2",
    [SQ_ENTRY_TAKE] = "DELETE FROM mailbox_entries WHERE mailbox_id = ?1 AND uid = ?2"
                      " RETURNING message_id",
    [SQ_MESSAGE_SIZE] = "SELECT size FROM messages WHERE id = ?1",
    [SQ_MAILBOX_BUMP_MODSEQ] = "UPDATE mailboxes SET highestmodseq = highestmodseq + 1"
                               " WHERE id = ?1 RETURNING highestmodseq",
    [SQ_TOMBSTONE_INSERT] = "INSERT INTO expunged (mailbox_id, uid, modseq, expunged_at)"
                            " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (mailbox_id, uid) DO UPDATE"
                            " SET modseq = excluded.modseq, expunged_at = excluded.expunged_at",
    [SQ_MAX_ENTRY] = "SELECT (SELECT coalesce(max(id), 0) FROM mailbox_entries),"
                     " coalesce((SELECT value FROM meta WHERE key = 'uidvalidity'), 0)",
    /* Only where the driver can listen (PostgreSQL): see store_db_notify.c. */
    [SQ_NOTIFY] = "SELECT pg_notify(?1, ?2)",
    /* Taken when free, run out, or already ours (then renewed). */
    [SQ_LEASE_TAKE] = "INSERT INTO leases (name, owner, until) VALUES (?1, ?2, ?3)"
                      " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,"
                      " until = excluded.until"
                      " WHERE leases.owner = excluded.owner OR leases.until <= ?4",
    [SQ_LEASE_RELEASE] = "DELETE FROM leases WHERE name = ?1 AND owner = ?2",
    /* store_db_tombstones.c: at most ?2 tombstones expunged at or before ?1, oldest
     * first (the expunged_time index), and each pruned mailbox's floor raised. */
    [SQ_TOMBSTONE_PRUNE] = "DELETE FROM expunged WHERE (mailbox_id, uid) IN"
                           " (SELECT mailbox_id, uid FROM expunged WHERE expunged_at <= ?1"
                           " ORDER BY expunged_at LIMIT ?2) RETURNING mailbox_id, modseq",
    [SQ_MB_FLOOR_RAISE] = "UPDATE mailboxes SET tombstone_floor = ?2"
                          " WHERE id = ?1 AND tombstone_floor < ?2",
    [SQ_ACCOUNT_SUB_USED] = "UPDATE accounts SET used_bytes"
                            " = CASE WHEN used_bytes > ?2 THEN used_bytes - ?2 ELSE 0 END"
                            " WHERE id = ?1",
};

/* Every statement's common text, by id. */
static const char *db_texts[SQ_COUNT];

static void db_texts_init(void)
{
	for (unsigned i = 0; i < SQ_CHECK_END; i++) {
		if (i < SQ_CORE_COUNT)
			db_texts[i] = sq_sql[i];
		else if (i < SQ_MAILBOX_END)
			db_texts[i] = store_db_mailbox_sql[i - SQ_CORE_COUNT];
		else if (i < SQ_QUEUE_END)
			db_texts[i] = store_db_queue_sql[i - SQ_MAILBOX_END];
		else if (i < SQ_TLSRPT_END)
			db_texts[i] = store_db_tlsrpt_sql[i - SQ_QUEUE_END];
		else if (i < SQ_CHUNKS_END)
			db_texts[i] = store_db_chunks_sql[i - SQ_TLSRPT_END];
		else if (i < SQ_METADATA_END)
			db_texts[i] = store_db_metadata_sql[i - SQ_CHUNKS_END];
		else if (i < SQ_ACL_END)
			db_texts[i] = store_db_acl_sql[i - SQ_METADATA_END];
		else if (i < SQ_POLICY_END)
			db_texts[i] = store_db_policy_sql[i - SQ_ACL_END];
		else if (i < SQ_DMARC_END)
			db_texts[i] = store_db_dmarc_sql[i - SQ_POLICY_END];
		else
			db_texts[i] = store_db_check_sql[i - SQ_DMARC_END];
	}
	store_db_dump_texts(db_texts);
}

/* ---- connections ---- */

static void db_reader_destroy(void *arg)
{
	struct db_reader *r = arg;
	struct store_db *s = r->owner;
	pthread_mutex_lock(&s->read_lock);
	for (struct db_reader **p = &s->readers; *p != NULL; p = &(*p)->next) {
		if (*p == r) {
			*p = r->next;
			break;
		}
	}
	pthread_mutex_unlock(&s->read_lock);
	sql_disconnect(r->c);
	free(r);
}

struct sql_conn *store_db_reader(struct store *store)
{
	struct store_db *s = db_store(store);
	struct db_reader *r = pthread_getspecific(s->read_key);
	const char *error;
	if (r != NULL)
		return r->c;
	struct sql_conn *c = sql_connect(s->sql, SQL_ROLE_READER, &error);
	if (c == NULL)
		return NULL;
	r = xcalloc(1, sizeof(*r));
	r->c = c;
	r->owner = s;
	pthread_mutex_lock(&s->read_lock);
	r->next = s->readers;
	s->readers = r;
	pthread_mutex_unlock(&s->read_lock);
	if (pthread_setspecific(s->read_key, r) != 0)
		log_panic("store: pthread_setspecific failed");
	return c;
}

/* ---- transactions on the admin connection ---- */

static struct sql_conn *db_admin_begin(struct store *store, const char **error_r)
{
	struct store_db *s = db_store(store);
	pthread_mutex_lock(&s->admin_lock);
	if (sql_begin(s->admin, SQL_TX_WRITE, error_r) < 0) {
		pthread_mutex_unlock(&s->admin_lock);
		return NULL;
	}
	return s->admin;
}

static int db_admin_end(struct store *store, int ret, const char **error_r)
{
	struct store_db *s = db_store(store);
	ret = sql_end(s->admin, ret, error_r);
	pthread_mutex_unlock(&s->admin_lock);
	return ret;
}

static int db_schema_version(struct store *store)
{
	struct sql_conn *c = store_db_reader(store);
	return c == NULL ? -1 : sql_schema_version(c);
}

/* A reader thread's connection is made when the thread starts: a new PostgreSQL connection
 * can take seconds on a loaded machine, better before the first client's read than during
 * it. One that fails now (logged) is tried again at the first read. */
static void db_reader_start(struct store *store)
{
	(void)store_db_reader(store);
}

/* ---- init and deinit ---- */

static void db_stop(struct store *store)
{
	store_db_notify_stop(db_store(store));
}

static void db_deinit(struct store *store)
{
	struct store_db *s = db_store(store);
	store_db_notify_stop(s);
	if (s->read_key_created)
		pthread_key_delete(s->read_key);
	while (s->readers != NULL) {
		struct db_reader *r = s->readers;
		s->readers = r->next;
		sql_disconnect(r->c);
		free(r);
	}
	sql_disconnect(s->writer);
	sql_disconnect(s->admin);
	sql_close(&s->sql);
	pthread_mutex_destroy(&s->read_lock);
	pthread_mutex_destroy(&s->admin_lock);
	free(s);
}

/* The highest mailbox entry row id and the last UIDVALIDITY handed out, now: what is above
 * them is new since open (\Recent). */
static int db_max_entry(struct sql_conn *c, int64_t *max_r, int64_t *uidvalidity_r,
                        const char **error_r)
{
	struct sql_row *st;
	int rc = sql_step(c, SQ_MAX_ENTRY, &st, error_r, "");
	if (rc == SQL_DONE)
		*error_r = "database error: no row";
	if (rc != SQL_ROW)
		return -1;
	*max_r = sql_col_int(st, 0);
	*uidvalidity_r = sql_col_int(st, 1);
	sql_row_done(st);
	return 0;
}

const char *const *store_db_texts(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	(void)pthread_once(&once, db_texts_init);
	return db_texts;
}

/* Open the database of a driver with every statement of the store. */
static int db_sql_open(const struct sql_driver *driver, const char *target, struct sql **sql_r,
                       const char **error_r)
{
	return sql_open(driver, target, store_db_texts(), SQ_COUNT, sql_r, error_r);
}

/* The engines: a name, its driver, and whether its target is the data directory (else the
 * configured URL). */
static const struct db_engine {
	const char *name;
	const struct sql_driver *driver;
	bool local;
} db_engines[] = {
    {"sqlite", &sql_driver_sqlite, true},
    {"postgresql", &sql_driver_pg, false},
};

static int db_init(const char *data_dir, const char *engine, const char *url,
                   struct store **store_r, const char **error_r)
{
	const struct db_engine *e = NULL;
	for (size_t i = 0; i < sizeof(db_engines) / sizeof(db_engines[0]); i++) {
		if (strcmp(db_engines[i].name, engine == NULL ? "sqlite" : engine) == 0)
			e = &db_engines[i];
	}
	if (e == NULL) {
		*error_r = store_error_fmt("unknown store engine \"%s\"", engine);
		return -1;
	}
	if (!e->local && (url == NULL || url[0] == '\0')) {
		*error_r = store_error_fmt("store %s needs store_url", e->name);
		return -1;
	}
	struct store_db *s = xcalloc(1, sizeof(*s));
	s->store.v = &store_db_vfuncs;
	pthread_mutex_init(&s->admin_lock, NULL);
	pthread_mutex_init(&s->read_lock, NULL);
	if (pthread_key_create(&s->read_key, db_reader_destroy) != 0) {
		*error_r = "cannot create thread key";
		db_deinit(&s->store);
		return -1;
	}
	s->read_key_created = true;
	if (db_sql_open(e->driver, e->local ? data_dir : url, &s->sql, error_r) < 0 ||
	    (s->admin = sql_connect(s->sql, SQL_ROLE_WRITER, error_r)) == NULL ||
	    sql_migrate(s->admin, s->sql->driver->migration_count, error_r) < 0 ||
	    (s->writer = sql_connect(s->sql, SQL_ROLE_WRITER, error_r)) == NULL ||
	    db_max_entry(s->admin, &s->open_max_entry, &s->open_uidvalidity, error_r) < 0) {
		db_deinit(&s->store);
		return -1;
	}
	s->store.shared = !e->local;
	if (store_db_notify_start(s, error_r) < 0) {
		db_deinit(&s->store);
		return -1;
	}
	*store_r = &s->store;
	return 0;
}

int store_db_create(const char *data_dir, int version, const char **error_r)
{
	struct sql *sql;
	if (db_sql_open(&sql_driver_sqlite, data_dir, &sql, error_r) < 0)
		return -1;
	struct sql_conn *c = sql_connect(sql, SQL_ROLE_WRITER, error_r);
	int ret = c == NULL || sql_migrate(c, version, error_r) < 0 ? -1 : 0;
	sql_disconnect(c);
	sql_close(&sql);
	return ret;
}

/* ---- domains ---- */

static int sq_domain_add(struct store *store, const char *domain, const char **error_r)
{
	struct sql_conn *c = db_admin_begin(store, error_r);
	if (c == NULL)
		return -1;
	int n = sql_exec(c, SQ_DOMAIN_INSERT, error_r, "si", domain, (int64_t)time(NULL));
	if (n == 0)
		*error_r = store_error_fmt("domain %s already exists", domain);
	return db_admin_end(store, n == 1 ? 0 : -1, error_r);
}

static int sq_domain_del(struct store *store, const char *domain, const char **error_r)
{
	struct sql_conn *c = db_admin_begin(store, error_r);
	int64_t id, users = 0;
	if (c == NULL)
		return -1;
	int ret = sql_int(c, SQ_DOMAIN_ID, &id, error_r, "s", domain);
	if (ret == 0)
		*error_r = store_error_fmt("no such domain %s", domain);
	if (ret == 1)
		ret = sql_int(c, SQ_DOMAIN_IN_USE, &users, error_r, "is", id, domain);
	if (ret == 1 && users > 0) {
		*error_r =
		    store_error_fmt("domain %s is still used by accounts or aliases", domain);
		ret = 0;
	}
	if (ret == 1)
		ret = sql_exec(c, SQ_DOMAIN_DELETE, error_r, "i", id);
	return db_admin_end(store, ret == 1 ? 0 : -1, error_r);
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

static void sq_domain_row(void *ctx, struct sql_row *st)
{
	struct sq_cb *cb = ctx;
	cb->fn.domain(cb->ctx, sql_col_text0(st, 0));
}

static int sq_domain_list(struct store *store, void (*fn)(void *ctx, const char *domain), void *ctx)
{
	struct sql_conn *c = store_db_reader(store);
	struct sq_cb cb = {.fn.domain = fn, .ctx = ctx};
	return c == NULL ? -1 : sql_each(c, SQ_DOMAIN_LIST, sq_domain_row, &cb, "");
}

static int sq_domain_is_local(struct store *store, const char *domain)
{
	struct sql_conn *c = store_db_reader(store);
	int64_t id;
	return c == NULL ? -1 : sql_int(c, SQ_DOMAIN_ID, &id, NULL, "s", domain);
}

/* ---- accounts ---- */

int store_db_next_uidvalidity(struct sql_conn *c, int64_t *uidvalidity_r, const char **error_r)
{
	int64_t last = 0, now = (int64_t)time(NULL);
	if (sql_int(c, SQ_META_GET, &last, error_r, "s", "uidvalidity") < 0)
		return -1;
	last = now > last ? now : last + 1;
	if (last > (int64_t)UINT32_MAX) {
		*error_r = "UIDVALIDITY space exhausted";
		return -1;
	}
	*uidvalidity_r = last;
	return sql_exec(c, SQ_META_SET, error_r, "si", "uidvalidity", last) < 0 ? -1 : 0;
}

/* The template mailboxes of a new account, each with a UIDVALIDITY above every earlier
 * one of this store (the last one handed out is kept in meta), and their subscriptions. */
static int sq_add_mailboxes(struct sql_conn *c, int64_t account_id,
                            const struct store_mailbox_template *mailboxes, size_t count,
                            const char **error_r)
{
	for (size_t i = 0; i < count; i++) {
		int64_t uidvalidity;
		char objectid[STORE_OBJECTID_MAX + 1];
		store_db_objectid(objectid);
		if (store_db_next_uidvalidity(c, &uidvalidity, error_r) < 0 ||
		    sql_exec(c, SQ_MAILBOX_INSERT, error_r, "issis", account_id, mailboxes[i].name,
		             mailboxes[i].special_use, uidvalidity, objectid) < 0)
			return -1;
		if (mailboxes[i].subscribed &&
		    sql_exec(c, SQ_SUB_INSERT, error_r, "is", account_id, mailboxes[i].name) < 0)
			return -1;
	}
	return 0;
}

static int sq_account_add(struct store *store, const char *address, const char *password_hash,
                          uint64_t quota, const struct store_mailbox_template *mailboxes,
                          size_t mailbox_count, const char **error_r)
{
	struct sql_conn *c = db_admin_begin(store, error_r);
	int64_t domain_id, dummy;
	if (c == NULL)
		return -1;
	int ret = sql_int(c, SQ_DOMAIN_ID, &domain_id, error_r, "s", strchr(address, '@') + 1);
	if (ret == 0)
		*error_r = store_error_fmt("domain of %s is not local", address);
	if (ret == 1) {
		ret = sql_int(c, SQ_ALIAS_EXISTS, &dummy, error_r, "s", address);
		if (ret == 1)
			*error_r = store_error_fmt("%s is already an alias", address);
		ret = ret == 0 ? 1 : -1;
	}
	int64_t id = 0;
	if (ret == 1)
		ret = sql_int(c, SQ_ACCOUNT_NEXT_ID, &id, error_r, "");
	if (ret == 1) {
		ret = sql_exec(c, SQ_ACCOUNT_INSERT, error_r, "isisii", id, address, domain_id,
		               password_hash, (int64_t)quota, (int64_t)time(NULL));
		if (ret == 0)
			*error_r = store_error_fmt("account %s already exists", address);
	}
	if (ret == 1 && sql_exec(c, SQ_META_SET, error_r, "si", "account_id", id) < 0)
		ret = -1;
	if (ret == 1)
		ret = sq_add_mailboxes(c, id, mailboxes, mailbox_count, error_r) == 0 ? 1 : -1;
	return db_admin_end(store, ret == 1 ? 0 : -1, error_r);
}

void store_db_ids_add(struct sq_ids *ids, int64_t id)
{
	if (ids->count == ids->cap) {
		ids->cap = ids->cap == 0 ? 64 : ids->cap * 2;
		ids->v = xrealloc(ids->v, ids->cap * sizeof(*ids->v));
	}
	ids->v[ids->count++] = id;
}

static void sq_ids_row(void *ctx, struct sql_row *st)
{
	store_db_ids_add(ctx, sql_col_int(st, 0));
}

/* Delete the message rows among ids that nothing references any more; their content
 * addresses are appended to removed (malloc'd strings). */
static int sq_delete_unused(struct sql_conn *c, const struct sq_ids *ids, char ***removed_r,
                            size_t *count_r, const char **error_r)
{
	for (size_t i = 0; i < ids->count; i++) {
		struct sql_row *st;
		int rc = sql_step(c, SQ_MESSAGE_DELETE_UNUSED, &st, error_r, "i", ids->v[i]);
		if (rc < 0)
			return -1;
		if (rc == SQL_ROW) {
			*removed_r = xrealloc(*removed_r, (*count_r + 1) * sizeof(char *));
			(*removed_r)[(*count_r)++] = xstrdup(sql_col_text0(st, 0));
			while (sql_next(st, NULL) == SQL_ROW)
				;
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
	struct sql_conn *c = db_admin_begin(store, error_r);
	struct sq_ids ids = {0};
	char **removed = NULL;
	size_t removed_count = 0;
	int64_t id;
	if (c == NULL)
		return -1;
	int ret = sql_int(c, SQ_ACCOUNT_ID, &id, error_r, "s", address);
	if (ret == 0)
		*error_r = store_error_fmt("no such account %s", address);
	if (ret == 1 && sql_each(c, SQ_ACCOUNT_MESSAGES, sq_ids_row, &ids, "i", id) < 0) {
		*error_r = "database error listing messages";
		ret = -1;
	}
	/* Mailboxes, entries and tombstones go by ON DELETE CASCADE. */
	if (ret == 1)
		ret = sql_exec(c, SQ_ACCOUNT_DELETE, error_r, "i", id);
	if (ret == 1)
		ret = sq_delete_unused(c, &ids, &removed, &removed_count, error_r) == 0 ? 1 : -1;
	ret = db_admin_end(store, ret == 1 ? 0 : -1, error_r);
	sq_removed_report(removed, removed_count, ret == 0, removed_cb, ctx);
	free(ids.v);
	return ret;
}

static int sq_account_update(struct store *store, enum sq_id id, const char *address,
                             const char *fmt, const char *text, int64_t number,
                             const char **error_r)
{
	struct sql_conn *c = db_admin_begin(store, error_r);
	if (c == NULL)
		return -1;
	int n = fmt[1] == 's' ? sql_exec(c, id, error_r, fmt, address, text)
	                      : sql_exec(c, id, error_r, fmt, address, number);
	if (n == 0)
		*error_r = store_error_fmt("no such account %s", address);
	return db_admin_end(store, n == 1 ? 0 : -1, error_r);
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

static int sq_account_set_message_limit(struct store *store, const char *address, uint64_t limit,
                                        const char **error_r)
{
	return sq_account_update(store, SQ_ACCOUNT_SET_MESSAGE_LIMIT, address, "si", NULL,
	                         (int64_t)limit, error_r);
}

static int sq_account_set_apop(struct store *store, const char *address, const char *secret,
                               const char **error_r)
{
	return sq_account_update(store, SQ_ACCOUNT_SET_APOP, address, "ss", secret, 0, error_r);
}

static int sq_account_get_apop(struct store *store, const char *address, uint64_t *id_r,
                               char **secret_r)
{
	struct sql_conn *c = store_db_reader(store);
	struct sql_row *st;
	int rc = c == NULL ? -1 : sql_step(c, SQ_ACCOUNT_GET_APOP, &st, NULL, "s", address);
	if (rc != SQL_ROW)
		return rc < 0 ? -1 : 0;
	const char *secret = sql_col_text(st, 1);
	if (secret != NULL) {
		*id_r = (uint64_t)sql_col_int(st, 0);
		*secret_r = xstrdup(secret);
	}
	sql_row_done(st);
	return secret != NULL ? 1 : 0;
}

static void sq_account_info(struct sql_row *st, struct store_account_info *info)
{
	info->id = (uint64_t)sql_col_int(st, 0);
	info->address = sql_col_text0(st, 1);
	info->quota = (uint64_t)sql_col_int(st, 2);
	info->used = (uint64_t)sql_col_int(st, 3);
	info->messages = (uint64_t)sql_col_int(st, 4);
	info->message_limit = (uint64_t)sql_col_int(st, 6);
}

static void sq_account_row(void *ctx, struct sql_row *st)
{
	struct sq_cb *cb = ctx;
	struct store_account_info info;
	sq_account_info(st, &info);
	cb->fn.account(cb->ctx, &info);
}

static int sq_account_list(struct store *store, const char *domain,
                           void (*fn)(void *ctx, const struct store_account_info *info), void *ctx)
{
	struct sql_conn *c = store_db_reader(store);
	struct sq_cb cb = {.fn.account = fn, .ctx = ctx};
	if (c == NULL)
		return -1;
	if (domain == NULL)
		return sql_each(c, SQ_ACCOUNT_LIST, sq_account_row, &cb, "");
	return sql_each(c, SQ_ACCOUNT_LIST_DOMAIN, sq_account_row, &cb, "s", domain);
}

static int sq_account_lookup(struct store *store, const char *address, uint64_t *id_r,
                             char **password_hash_r, struct store_account_info *info_r)
{
	struct sql_conn *c = store_db_reader(store);
	struct sql_row *st;
	int rc = c == NULL ? -1 : sql_step(c, SQ_ACCOUNT_LOOKUP, &st, NULL, "s", address);
	if (rc != SQL_ROW)
		return rc < 0 ? -1 : 0;
	if (id_r != NULL)
		*id_r = (uint64_t)sql_col_int(st, 0);
	if (password_hash_r != NULL)
		*password_hash_r = xstrdup(sql_col_text0(st, 5));
	if (info_r != NULL) {
		sq_account_info(st, info_r);
		info_r->address = NULL;
	}
	sql_row_done(st);
	return 1;
}

static int sq_account_usage(struct store *store, uint64_t account_id, uint64_t *quota_r,
                            uint64_t *used_r)
{
	struct sql_conn *c = store_db_reader(store);
	struct sql_row *st;
	int rc =
	    c == NULL ? -1 : sql_step(c, SQ_ACCOUNT_USAGE, &st, NULL, "i", (int64_t)account_id);
	if (rc != SQL_ROW)
		return rc < 0 ? -1 : 0;
	if (quota_r != NULL)
		*quota_r = (uint64_t)sql_col_int(st, 0);
	if (used_r != NULL)
		*used_r = (uint64_t)sql_col_int(st, 1);
	sql_row_done(st);
	return 1;
}

/* On the writer's connection inside its transaction too (store_db_mailbox.c). */
int store_db_account_limits(struct sql_conn *c, uint64_t account_id,
                            struct store_account_limits *limits_r, const char **error_r)
{
	struct sql_row *st;
	int rc =
	    c == NULL ? -1 : sql_step(c, SQ_ACCOUNT_LIMITS, &st, error_r, "i", (int64_t)account_id);
	if (rc != SQL_ROW)
		return rc < 0 ? -1 : 0;
	*limits_r = (struct store_account_limits){
	    .quota = (uint64_t)sql_col_int(st, 0),
	    .used = (uint64_t)sql_col_int(st, 1),
	    .message_limit = (uint64_t)sql_col_int(st, 2),
	    .messages = (uint64_t)sql_col_int(st, 3),
	};
	sql_row_done(st);
	return 1;
}

static int sq_account_limits(struct store *store, uint64_t account_id,
                             struct store_account_limits *limits_r)
{
	return store_db_account_limits(store_db_reader(store), account_id, limits_r, NULL);
}

static int sq_account_address(struct store *store, uint64_t account_id, char **address_r)
{
	struct sql_conn *c = store_db_reader(store);
	struct sql_row *st;
	int rc =
	    c == NULL ? -1 : sql_step(c, SQ_ACCOUNT_ADDRESS, &st, NULL, "i", (int64_t)account_id);
	if (rc != SQL_ROW)
		return rc < 0 ? -1 : 0;
	*address_r = xstrdup(sql_col_text0(st, 0));
	sql_row_done(st);
	return 1;
}

static int sq_account_find(struct store *store, const char *address, uint64_t *id_r)
{
	struct sql_conn *c = store_db_reader(store);
	int64_t id;
	int ret = c == NULL ? -1 : sql_int(c, SQ_ACCOUNT_ID, &id, NULL, "s", address);
	if (ret == 1)
		*id_r = (uint64_t)id;
	return ret;
}

/* ---- aliases ---- */

static int sq_alias_add(struct store *store, const char *alias, const char *target,
                        const char **error_r)
{
	struct sql_conn *c = db_admin_begin(store, error_r);
	int64_t domain_id, dummy;
	if (c == NULL)
		return -1;
	int ret = sql_int(c, SQ_DOMAIN_ID, &domain_id, error_r, "s", strchr(alias, '@') + 1);
	if (ret == 0)
		*error_r = store_error_fmt("domain of %s is not local", alias);
	if (ret == 1) {
		ret = sql_int(c, SQ_ACCOUNT_ID, &dummy, error_r, "s", alias);
		if (ret == 1)
			*error_r = store_error_fmt("%s is already an account", alias);
		ret = ret == 0 ? 1 : -1;
	}
	if (ret == 1) {
		ret = sql_exec(c, SQ_ALIAS_INSERT, error_r, "sis", alias, domain_id, target);
		if (ret == 0)
			*error_r = store_error_fmt("alias %s -> %s already exists", alias, target);
	}
	return db_admin_end(store, ret == 1 ? 0 : -1, error_r);
}

static int sq_alias_del(struct store *store, const char *alias, const char *target,
                        const char **error_r)
{
	struct sql_conn *c = db_admin_begin(store, error_r);
	if (c == NULL)
		return -1;
	int n = target == NULL ? sql_exec(c, SQ_ALIAS_DELETE_ALL, error_r, "s", alias)
	                       : sql_exec(c, SQ_ALIAS_DELETE_ONE, error_r, "ss", alias, target);
	if (n == 0)
		*error_r =
		    store_error_fmt("no such alias %s%s%s", alias, target == NULL ? "" : " -> ",
		                    target == NULL ? "" : target);
	return db_admin_end(store, n > 0 ? 0 : -1, error_r);
}

static void sq_alias_row(void *ctx, struct sql_row *st)
{
	struct sq_cb *cb = ctx;
	cb->fn.alias(cb->ctx, sql_col_text0(st, 0), sql_col_text0(st, 1));
}

static int sq_alias_list(struct store *store,
                         void (*fn)(void *ctx, const char *alias, const char *target), void *ctx)
{
	struct sql_conn *c = store_db_reader(store);
	struct sq_cb cb = {.fn.alias = fn, .ctx = ctx};
	return c == NULL ? -1 : sql_each(c, SQ_ALIAS_LIST, sq_alias_row, &cb, "");
}

struct sq_targets {
	void (*fn)(void *ctx, const char *target);
	void *ctx;
	int count;
};

static void sq_target_row(void *ctx, struct sql_row *st)
{
	struct sq_targets *t = ctx;
	t->fn(t->ctx, sql_col_text0(st, 0));
	t->count++;
}

static int sq_alias_targets(struct store *store, const char *alias,
                            void (*fn)(void *ctx, const char *target), void *ctx)
{
	struct sql_conn *c = store_db_reader(store);
	struct sq_targets t = {fn, ctx, 0};
	if (c == NULL || sql_each(c, SQ_ALIAS_TARGETS, sq_target_row, &t, "s", alias) < 0)
		return -1;
	return t.count;
}

/* ---- the writer thread's transactions: deliveries and expunges ---- */

/* INBOX of one account: next UID and MODSEQ, the entry, the account's used bytes. */
/* The mailbox a delivery to account goes to: its \Junk folder for a junk delivery when it
 * has one, else INBOX. Takes the next UID and MODSEQ and records the change. 0 with the
 * mailbox id, UID and MODSEQ, -1 error. */
static int sq_deliver_target(struct sql_conn *c, uint64_t account, bool junk, int64_t *mailbox_r,
                             int64_t *uid_r, int64_t *modseq_r, struct store_changes *changes,
                             const char **error_r)
{
	struct sql_row *st;
	int rc = SQL_DONE;
	bool junk_row = false;
	if (junk) {
		rc = sql_step(c, SQ_JUNK_NEXT, &st, error_r, "is", (int64_t)account, "% \\Junk %");
		if (rc < 0)
			return -1;
		junk_row = rc != SQL_DONE;
	}
	if (rc == SQL_DONE) {
		rc = sql_step(c, SQ_INBOX_NEXT, &st, error_r, "i", (int64_t)account);
		if (rc < 0)
			return -1;
		if (rc == SQL_DONE) {
			*error_r = store_error_fmt("account %" PRIu64 " has no INBOX", account);
			return -1;
		}
	}
	*mailbox_r = sql_col_int(st, 0);
	*uid_r = sql_col_int(st, 1);
	*modseq_r = sql_col_int(st, 2);
	const char *name = junk_row ? sql_col_text(st, 3) : NULL;
	if (*uid_r <= (int64_t)UINT32_MAX)
		store_watch_changed(changes, account, name != NULL ? name : "INBOX",
		                    (uint64_t)*modseq_r);
	while (sql_next(st, NULL) == SQL_ROW)
		;
	if (*uid_r > (int64_t)UINT32_MAX) {
		*error_r = store_error_fmt("account %" PRIu64 ": mailbox UIDs exhausted", account);
		return -1;
	}
	return 0;
}

static int sq_deliver_local(struct sql_conn *c, uint64_t account, int64_t message_id,
                            const struct store_commit_delivery *item, int64_t internal_date,
                            struct store_changes *changes, const char **error_r)
{
	int64_t mailbox_id, uid, modseq;
	const struct store_delivery *d = item->delivery;
	bool junk = d->junk;
	for (size_t i = 0; i < d->junk_account_count && !junk; i++)
		junk = d->junk_accounts[i] == account;
	if (sq_deliver_target(c, account, junk, &mailbox_id, &uid, &modseq, changes, error_r) < 0)
		return -1;
	if (sql_exec(c, SQ_ENTRY_INSERT, error_r, "iiiiii", mailbox_id, uid, message_id, modseq,
	             internal_date, (int64_t)time(NULL)) < 0 ||
	    sql_exec(c, SQ_ACCOUNT_ADD_USED, error_r, "ii", (int64_t)account, (int64_t)item->size) <
	        0)
		return -1;
	return 0;
}

int store_db_message_row(struct sql_conn *c, const char *sha256, uint64_t size,
                         const unsigned char *content, const char *chunk_path, int64_t received_at,
                         const char *mail_from, const char *hdr_from, const char *subject,
                         const char *message_id, const struct store_summary *summary, int64_t *id_r,
                         const char **error_r)
{
	static const struct store_summary none = {0};
	const struct store_summary *sum = summary == NULL ? &none : summary;
	if (sql_exec(c, SQ_MESSAGE_INSERT, error_r, "siisssssssbs", sha256, (int64_t)size,
	             received_at, mail_from, hdr_from, subject, message_id, sum->envelope,
	             sum->body, sum->bodystructure, (const void *)content,
	             content == NULL ? (size_t)0 : (size_t)size, sum->preview) < 0)
		return -1;
	if (sql_int(c, SQ_MESSAGE_ID, id_r, error_r, "s", sha256) != 1) {
		*error_r = "message row vanished";
		return -1;
	}
	if (sum->search_state != 0 &&
	    sql_exec(c, SQ_MB_SEARCH_INSERT, error_r, "iiss", *id_r,
	             (int64_t)(sum->search_state == 1), sum->search_hdr, sum->search_body) < 0)
		return -1;
	return chunk_path == NULL ? 0
	                          : store_db_chunks_put(c, *id_r, chunk_path, NULL, size, error_r);
}

static int sq_deliver_one(struct sql_conn *c, const struct store_commit_delivery *item, int64_t now,
                          struct store_changes *changes, const char **error_r)
{
	const struct store_delivery *d = item->delivery;
	const char *mail_from = d->mail_from == NULL ? "" : d->mail_from;
	int64_t received = d->received_at > 0 ? d->received_at : now;
	int64_t message_id;

	if (store_db_message_row(c, item->sha256, item->size, item->content, item->chunk_path,
	                         received, mail_from, d->hdr_from, d->hdr_subject,
	                         d->hdr_message_id, item->summary, &message_id, error_r) < 0)
		return -1;
	for (size_t i = 0; i < item->account_count; i++) {
		if (sq_deliver_local(c, item->accounts[i], message_id, item, received, changes,
		                     error_r) < 0)
			return -1;
	}
	return store_db_queue_deliver(c, d, message_id, now, error_r);
}

/* One UID of an expunge: 1 removed (its message id and size added to unref and x), 0 it
 * was not there, -1 error. The mailbox's MODSEQ goes up at the first UID removed. */
static int sq_expunge_uid(struct sql_conn *c, int64_t mailbox_id, uint32_t uid, int64_t *modseq,
                          struct store_commit_expunge *x, struct sq_ids *unref,
                          const char **error_r)
{
	int64_t message_id, size;
	int ret = sql_int(c, SQ_ENTRY_TAKE, &message_id, error_r, "ii", mailbox_id, (int64_t)uid);
	if (ret <= 0)
		return ret;
	ret = sql_int(c, SQ_MESSAGE_SIZE, &size, error_r, "i", message_id);
	if (ret == 0)
		*error_r = "message row vanished";
	if (ret == 1 && *modseq == 0) {
		ret = sql_int(c, SQ_MAILBOX_BUMP_MODSEQ, modseq, error_r, "i", mailbox_id);
		if (ret == 0)
			*error_r = "mailbox vanished";
	}
	/* QRESYNC (RFC 7162): every entry expunged here gets the mailbox's new MODSEQ. */
	if (ret == 1 && sql_exec(c, SQ_TOMBSTONE_INSERT, error_r, "iiii", mailbox_id, (int64_t)uid,
	                         *modseq, (int64_t)time(NULL)) < 0)
		ret = -1;
	if (ret != 1)
		return -1;
	store_db_ids_add(unref, message_id);
	x->expunged++;
	x->freed += (uint64_t)size;
	return 1;
}

static int sq_expunge_one(struct sql_conn *c, struct store_commit_expunge *x, struct sq_ids *unref,
                          struct store_changes *changes, const char **error_r)
{
	int64_t mailbox_id, modseq = 0;
	x->no_mailbox = false;
	x->expunged = 0;
	x->freed = 0;
	int ret = sql_int(c, SQ_MAILBOX_ID, &mailbox_id, error_r, "is", (int64_t)x->account_id,
	                  x->mailbox);
	if (ret <= 0) {
		x->no_mailbox = ret == 0;
		return ret;
	}
	for (size_t i = 0; i < x->uid_count; i++) {
		if (sq_expunge_uid(c, mailbox_id, x->uids[i], &modseq, x, unref, error_r) < 0)
			return -1;
		if (i == 0 && FAULT_POINT("store.expunge.mid") != 0) {
			*error_r = "fault point store.expunge.mid";
			return -1;
		}
	}
	if (x->expunged > 0 && sql_exec(c, SQ_ACCOUNT_SUB_USED, error_r, "ii",
	                                (int64_t)x->account_id, (int64_t)x->freed) < 0)
		return -1;
	if (x->expunged > 0)
		store_watch_changed(changes, x->account_id, x->mailbox, (uint64_t)modseq);
	return 0;
}

/* An IMAP item inside a savepoint: one the backend refuses is rolled back whole, with the
 * changes and references it recorded. */
static int sq_mailbox_item(struct sql_conn *c, struct store_commit_item *item, struct sq_ids *unref,
                           struct store_changes *changes, const char **error_r)
{
	size_t changes_mark = changes->count, unref_mark = unref->count;
	item->refused = NULL;
	if (sql_exec(c, SQ_SAVEPOINT, error_r, "") < 0)
		return -1;
	if (store_db_mailbox_commit(c, item, unref, changes, error_r) < 0)
		return -1;
	if (item->refused != NULL) {
		if (sql_exec(c, SQ_ROLLBACK_TO, error_r, "") < 0)
			return -1;
		store_watch_truncate(changes, changes_mark);
		unref->count = unref_mark;
	}
	return sql_exec(c, SQ_RELEASE, error_r, "") < 0 ? -1 : 0;
}

static int sq_commit_once(struct store *store, struct store_commit_item *items, size_t count,
                          store_blob_removed_cb *removed_cb, void *ctx,
                          struct store_changes *changes, const char **error_r)
{
	struct store_db *s = db_store(store);
	struct sql_conn *c = s->writer;
	size_t changes_mark = changes->count;
	int64_t now = (int64_t)time(NULL);
	struct sq_ids unref = {0};
	char **removed = NULL;
	size_t removed_count = 0;
	int ret = 0;
	if (sql_begin(c, SQL_TX_WRITE, error_r) < 0)
		return -1;
	for (size_t i = 0; ret == 0 && i < count; i++) {
		if (items[i].kind == STORE_OP_DELIVERY)
			ret = sq_deliver_one(c, &items[i].delivery, now, changes, error_r);
		else if (items[i].kind == STORE_OP_EXPUNGE)
			ret = sq_expunge_one(c, &items[i].expunge, &unref, changes, error_r);
		else if (items[i].kind == STORE_OP_QUEUE)
			ret = store_db_queue_commit(c, store, &items[i], &unref, error_r);
		else if (items[i].kind == STORE_OP_POLICY)
			ret = store_db_policy_commit(c, &items[i].policy, error_r);
		else
			ret = sq_mailbox_item(c, &items[i], &unref, changes, error_r);
	}
	/* Other nodes hear of it when, and only if, this commits. */
	if (ret == 0 && store_db_notifies(s))
		ret = store_db_notify_emit(s, c, changes, changes_mark, error_r);
	/* Only now: a later delivery of the same bytes in this transaction keeps its row. */
	if (ret == 0)
		ret = sq_delete_unused(c, &unref, &removed, &removed_count, error_r);
	ret = sql_end(c, ret, error_r);
	if (ret < 0)
		store_db_queue_rollback(items, count);
	sq_removed_report(removed, removed_count, ret == 0, removed_cb, ctx);
	free(unref.v);
	return ret;
}

/* A transaction that lost to another one (PostgreSQL: a serialization failure or a
 * deadlock, with several nodes writing at once) runs again, up to SQ_COMMIT_TRIES times in
 * all, after a random pause whose bound doubles each time (SQ_COMMIT_PAUSE_MS, then twice
 * that, ...): two nodes that collided do not collide again in step. Other failures are
 * the writer's to handle (store_writer_commit()). */
#define SQ_COMMIT_TRIES 5
#define SQ_COMMIT_PAUSE_MS 10

static int sq_commit(struct store *store, struct store_commit_item *items, size_t count,
                     store_blob_removed_cb *removed_cb, void *ctx, struct store_changes *changes,
                     const char **error_r)
{
	struct store_db *s = db_store(store);
	size_t mark = changes->count;
	for (unsigned attempt = 1;; attempt++) {
		int ret = sq_commit_once(store, items, count, removed_cb, ctx, changes, error_r);
		if (ret == 0 || attempt == SQ_COMMIT_TRIES || !sql_retryable(s->writer))
			return ret;
		store_watch_truncate(changes, mark);
		uint32_t bound = (uint32_t)SQ_COMMIT_PAUSE_MS << (attempt - 1);
		uint32_t ms = bound / 2 + randombytes_uniform(bound / 2 + 1);
		log_info("store: a transaction of %zu operations lost to another one, running it "
		         "again in %" PRIu32 " ms (try %u of %d)",
		         count, ms, attempt + 1, SQ_COMMIT_TRIES);
		struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
}

/* ---- reading ---- */

/* The mailbox's id by owner address and name ("INBOX" case-insensitive). */
static int sq_mailbox_find(struct sql_conn *c, const char *address, const char *mailbox,
                           int64_t *id_r)
{
	/* RFC 9051 §5.1: INBOX is case-insensitive; other names are exact. */
	const char *name = strcasecmp(mailbox, "INBOX") == 0 ? "INBOX" : mailbox;
	return sql_int(c, SQ_MAILBOX_FIND, id_r, NULL, "ss", address, name);
}

struct sq_list {
	void (*fn)(void *ctx, const struct store_entry_row *row);
	void *ctx;
};

static void sq_entry_row(void *ctx, struct sql_row *st)
{
	struct sq_list *l = ctx;
	struct store_entry_row row = {
	    .uid = (uint32_t)sql_col_int(st, 0),
	    .flags = (uint32_t)sql_col_int(st, 1),
	    .keywords = sql_col_text0(st, 2),
	    .size = (uint64_t)sql_col_int(st, 3),
	    .internal_date = sql_col_int(st, 4),
	    .mail_from = sql_col_text0(st, 5),
	    .hdr_from = sql_col_text(st, 6),
	    .subject = sql_col_text(st, 7),
	};
	l->fn(l->ctx, &row);
}

static int sq_mail_list(struct store *store, const char *address, const char *mailbox,
                        void (*fn)(void *ctx, const struct store_entry_row *row), void *ctx)
{
	struct sql_conn *c = store_db_reader(store);
	struct sq_list l = {fn, ctx};
	int64_t mailbox_id;
	int ret = c == NULL ? -1 : sq_mailbox_find(c, address, mailbox, &mailbox_id);
	if (ret <= 0)
		return ret;
	return sql_each(c, SQ_ENTRY_LIST, sq_entry_row, &l, "i", mailbox_id) < 0 ? -1 : 1;
}

/* A copy of a body in chunk rows: 1 with *fd_r, 0 it went (a chunk vanished with its
 * message row: the last entry was expunged after the locate), -1. */
static int sq_chunks_open(struct store *store, struct sql_conn *c, int64_t message_id, uint32_t uid,
                          const struct store_want *want, uint64_t size, int *fd_r)
{
	const char *error;
	int64_t still;
	int ret = store_db_chunks_open(c, store->tmp_dir, message_id, size, want, fd_r, &error);
	if (ret == 0 && sql_int(c, SQ_MESSAGE_SIZE, &still, NULL, "i", message_id) != 0)
		ret = -1; /* the row is there (or unknown): its chunks should be too */
	if (ret < 0)
		log_error("store: message body for uid %u: %s", uid, error);
	return ret;
}

/* Read a message row's content address and size from a SQ_ENTRY_LOCATE-like row (and end
 * it), and its body into *fd_r when the database holds it (else -1): a copy of what want
 * names (NULL: all) of a body in chunk rows, an in-memory copy of one in the row. */
static int sq_locate_row(struct store *store, struct sql_row *st, uint32_t uid,
                         const struct store_want *want, char sha256_r[BLOB_HEX_LEN + 1],
                         uint64_t *size_r, int *fd_r)
{
	struct sql_conn *c = st->conn;
	const char *sha = sql_col_text0(st, 0), *error;
	int ret = blob_name_valid(sha) ? 1 : -1;
	int64_t message_id = sql_col_int(st, 3);
	bool in_row = !sql_col_null(st, 2);
	*fd_r = -1;
	if (ret == 1) {
		memcpy(sha256_r, sha, BLOB_HEX_LEN + 1);
		*size_r = (uint64_t)sql_col_int(st, 1);
		if (in_row) {
			size_t size;
			const void *body = sql_col_blob(st, 2, &size);
			if ((*fd_r = blob_memfd(body, size, &error)) < 0) {
				log_error("store: message body for uid %u: %s", uid, error);
				ret = -1;
			}
		}
	} else
		log_error("store: message row with a bad content address for uid %u", uid);
	sql_row_done(st);
	if (ret == 1 && !in_row && store_db_chunked(store, *size_r))
		ret = sq_chunks_open(store, c, message_id, uid, want, *size_r, fd_r);
	return ret;
}

/* ---- the search index's backfill ---- */

/* Contents the backfill looks at per transaction, and the span of message ids one step
 * looks through at most: a short stop for the writer's queue either way. */
#define SQ_BACKFILL_BATCH 16
#define SQ_BACKFILL_SPAN 4096

struct sq_backfill {
	int64_t ids[SQ_BACKFILL_BATCH];
	size_t count;
};

static void sq_backfill_row(void *ctx, struct sql_row *st)
{
	struct sq_backfill *b = ctx;
	if (b->count < SQ_BACKFILL_BATCH)
		b->ids[b->count++] = sql_col_int(st, 0);
}

/* The texts of content id (fn on its body, wherever it is kept): 1, 0 or -1 as fn; -1
 * also when it cannot be read, 2 when it is gone. */
static int sq_backfill_texts(struct store *store, struct sql_conn *c, int64_t id,
                             store_search_texter_fn *fn, void *ctx, size_t max, char **hdr_r,
                             char **body_r)
{
	struct sql_row *st;
	char sha[BLOB_HEX_LEN + 1];
	uint64_t size;
	int fd;
	*hdr_r = *body_r = NULL;
	int rc = sql_step(c, SQ_MB_SEARCH_CONTENT, &st, NULL, "i", id);
	if (rc != SQL_ROW)
		return rc < 0 ? -1 : 2;
	if (sq_locate_row(store, st, 0, NULL, sha, &size, &fd) != 1)
		return -1;
	if (fd < 0) {
		char *path = blob_path_dup(store->messages_dir, sha);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		free(path);
		if (fd < 0)
			return -1;
	}
	int r = fn(ctx, fd, max, hdr_r, body_r);
	close(fd);
	if (r == 1 && !store_trigram_indexable(*hdr_r, *body_r)) { /* as at delivery */
		free(*hdr_r);
		free(*body_r);
		*hdr_r = *body_r = NULL;
		r = 0;
	}
	return r;
}

int store_db_search_backfill(struct store *store, store_search_texter_fn *fn, void *ctx, size_t max,
                             int64_t *cursor)
{
	struct store_db *s = (struct store_db *)store;
	struct sql_conn *c = s->writer;
	struct sq_backfill b = {.count = 0};
	const char *error;
	char *hdr[SQ_BACKFILL_BATCH], *body[SQ_BACKFILL_BATCH];
	int state[SQ_BACKFILL_BATCH];
	int64_t beyond;
	if (sql_each(c, SQ_MB_SEARCH_PENDING, sq_backfill_row, &b, "iii", *cursor,
	             *cursor + SQ_BACKFILL_SPAN, (int64_t)SQ_BACKFILL_BATCH) < 0)
		return -1;
	if (b.count == 0) { /* none in this span: on to the next, if there are ids beyond */
		int r =
		    sql_int(c, SQ_MB_SEARCH_BEYOND, &beyond, NULL, "i", *cursor + SQ_BACKFILL_SPAN);
		if (r == 1)
			*cursor = beyond - 1;
		return r;
	}
	for (size_t i = 0; i < b.count; i++)
		state[i] = sq_backfill_texts(store, c, b.ids[i], fn, ctx, max, &hdr[i], &body[i]);
	int ret = sql_begin(c, SQL_TX_WRITE, &error);
	if (ret == 0) {
		for (size_t i = 0; ret == 0 && i < b.count; i++) {
			if (state[i] == 2)
				continue;
			/* an older row is made again (unread: it stays as it is) */
			if (state[i] >= 0 &&
			    sql_exec(c, SQ_MB_SEARCH_REDO, &error, "i", b.ids[i]) < 0)
				ret = -1;
			else if (sql_exec(c, SQ_MB_SEARCH_BACKFILL, &error, "iiss", b.ids[i],
			                  (int64_t)(state[i] == 1), hdr[i], body[i]) < 0)
				ret = -1;
		}
		ret = sql_end(c, ret, &error);
	}
	for (size_t i = 0; i < b.count; i++) {
		free(hdr[i]);
		free(body[i]);
	}
	if (ret < 0)
		return -1;
	/* fewer than a batch: the span holds no more */
	*cursor = b.count == SQ_BACKFILL_BATCH ? b.ids[b.count - 1] : *cursor + SQ_BACKFILL_SPAN;
	return (int)b.count;
}

static int sq_mail_locate(struct store *store, const char *address, const char *mailbox,
                          uint32_t uid, char sha256_r[BLOB_HEX_LEN + 1], uint64_t *size_r,
                          int *fd_r)
{
	struct sql_conn *c = store_db_reader(store);
	struct sql_row *st;
	int64_t mailbox_id;
	int ret = c == NULL ? -1 : sq_mailbox_find(c, address, mailbox, &mailbox_id);
	if (ret <= 0)
		return ret;
	int rc = sql_step(c, SQ_ENTRY_LOCATE, &st, NULL, "ii", mailbox_id, (int64_t)uid);
	if (rc != SQL_ROW)
		return rc < 0 ? -1 : 0;
	return sq_locate_row(store, st, uid, NULL, sha256_r, size_r, fd_r);
}

static int sq_message_locate(struct store *store, uint64_t account_id, const char *mailbox,
                             uint32_t uid, const struct store_want *want,
                             char sha256_r[BLOB_HEX_LEN + 1], uint64_t *size_r, int *fd_r)
{
	struct sql_conn *c = store_db_reader(store);
	struct sql_row *st;
	/* One statement: the mailbox and the entry come from the same snapshot. */
	int rc = c == NULL ? -1
	                   : sql_step(c, SQ_MESSAGE_LOCATE, &st, NULL, "isi", (int64_t)account_id,
	                              mailbox, (int64_t)uid);
	if (rc != SQL_ROW)
		return rc < 0 ? -1 : 0;
	return sq_locate_row(store, st, uid, want, sha256_r, size_r, fd_r);
}

struct sq_snapshot {
	void (*fn)(void *ctx, const struct store_entry *entry);
	void *ctx;
	uint32_t count; /* rows read */
};

void store_db_entry_row(struct sql_row *st, struct store_entry *entry_r)
{
	*entry_r = (struct store_entry){
	    .uid = (uint32_t)sql_col_int(st, 0),
	    .size = (uint64_t)sql_col_int(st, 1),
	    .internal_date = sql_col_int(st, 2),
	    .flags = (unsigned)sql_col_int(st, 3),
	    .modseq = (uint64_t)sql_col_int(st, 4),
	    .keywords = sql_col_text0(st, 5),
	    .save_date = sql_col_int(st, 6),
	};
}

int store_db_mailbox_status_row(struct sql_conn *c, uint64_t account_id, const char *mailbox,
                                int64_t *mailbox_id_r, struct store_mailbox_status *status_r)
{
	struct sql_row *st;
	int rc = sql_step(c, SQ_MAILBOX_STATUS, &st, NULL, "is", (int64_t)account_id, mailbox);
	if (rc != SQL_ROW)
		return rc < 0 ? -1 : 0;
	*mailbox_id_r = sql_col_int(st, 0);
	*status_r = (struct store_mailbox_status){
	    .uidvalidity = (uint32_t)sql_col_int(st, 1),
	    .uidnext = (uint32_t)sql_col_int(st, 2),
	    .highestmodseq = (uint64_t)sql_col_int(st, 3),
	    .messages = 0,
	    .tombstone_floor = (uint64_t)sql_col_int(st, 5),
	};
	snprintf(status_r->mailboxid, sizeof(status_r->mailboxid), "%s", sql_col_text0(st, 4));
	sql_row_done(st);
	return 1;
}

void store_db_objectid(char out[STORE_OBJECTID_MAX + 1])
{
	unsigned char r[16];
	randombytes_buf(r, sizeof(r));
	for (size_t i = 0; i < sizeof(r); i++) {
		out[2 * i] = "0123456789abcdef"[r[i] >> 4];
		out[2 * i + 1] = "0123456789abcdef"[r[i] & 15];
	}
	out[2 * sizeof(r)] = '\0';
}

static void sq_snapshot_row(void *ctx, struct sql_row *st)
{
	struct sq_snapshot *sn = ctx;
	struct store_entry entry;
	store_db_entry_row(st, &entry);
	sn->count++;
	if (sn->fn != NULL)
		sn->fn(sn->ctx, &entry);
}

/* The status row and the entries, on a connection already inside a read transaction. */
static int sq_snapshot_read(struct sql_conn *c, uint64_t account_id, const char *mailbox,
                            struct store_mailbox_status *status_r, struct sq_snapshot *sn)
{
	int64_t mailbox_id;
	int rc = store_db_mailbox_status_row(c, account_id, mailbox, &mailbox_id, status_r);
	if (rc <= 0)
		return rc;
	if (sql_each(c, SQ_ENTRY_SNAPSHOT, sq_snapshot_row, sn, "i", mailbox_id) < 0)
		return -1;
	status_r->messages = sn->count;
	return 1;
}

static int sq_mailbox_snapshot(struct store *store, uint64_t account_id, const char *mailbox,
                               struct store_mailbox_status *status_r,
                               void (*fn)(void *ctx, const struct store_entry *entry), void *ctx)
{
	struct sql_conn *c = store_db_reader(store);
	struct sq_snapshot sn = {fn, ctx, 0};
	int started = c == NULL ? -1 : store_db_read_begin(c);
	if (started < 0)
		return -1;
	int ret = sq_snapshot_read(c, account_id, mailbox, status_r, &sn);
	return store_db_read_end(c, started, ret);
}

int store_db_read_begin(struct sql_conn *c)
{
	/* Called again from a callback of an outer snapshot: stay inside that one. */
	if (sql_in_tx(c))
		return 0;
	return sql_begin(c, SQL_TX_READ, NULL) < 0 ? -1 : 1;
}

int store_db_read_end(struct sql_conn *c, int started, int ret)
{
	if (started == 1 && sql_end(c, ret < 0 ? -1 : 0, NULL) < 0)
		ret = -1;
	return ret;
}

/* ---- leases ---- */

static int db_lease_take(struct store *store, const char *name, const char *owner, int64_t now,
                         unsigned ttl)
{
	const char *error;
	struct sql_conn *c = db_admin_begin(store, &error);
	if (c == NULL)
		return -1;
	int64_t n =
	    sql_exec(c, SQ_LEASE_TAKE, &error, "ssii", name, owner, now + (int64_t)ttl, now);
	int ret = db_admin_end(store, n < 0 ? -1 : 0, &error);
	return ret < 0 ? -1 : n > 0 ? 1 : 0;
}

static void db_lease_release(struct store *store, const char *name, const char *owner)
{
	const char *error;
	struct sql_conn *c = db_admin_begin(store, &error);
	if (c != NULL)
		(void)db_admin_end(
		    store, sql_exec(c, SQ_LEASE_RELEASE, &error, "ss", name, owner) < 0 ? -1 : 0,
		    &error);
}

/* ---- garbage collection ---- */

struct sq_strings {
	char **v;
	size_t count;
};

static void sq_string_row(void *ctx, struct sql_row *st)
{
	struct sq_strings *s = ctx;
	s->v = xrealloc(s->v, (s->count + 1) * sizeof(char *));
	s->v[s->count++] = xstrdup(sql_col_text0(st, 0));
}

static int sq_message_gc(struct store *store, store_blob_removed_cb *removed_cb, void *ctx)
{
	const char *error;
	struct sq_strings removed = {0};
	struct sql_conn *c = db_admin_begin(store, &error);
	if (c == NULL)
		return -1;
	int ret = sql_each(c, SQ_MESSAGE_GC, sq_string_row, &removed, "");
	ret = db_admin_end(store, ret, &error);
	if (ret == 0 && removed.count > 0)
		log_info("store: removed %zu unreferenced messages", removed.count);
	sq_removed_report(removed.v, removed.count, ret == 0, removed_cb, ctx);
	return ret;
}

static int sq_message_exists(struct store *store, const char *sha256)
{
	struct sql_conn *c = store_db_reader(store);
	int64_t dummy;
	return c == NULL ? -1 : sql_int(c, SQ_MESSAGE_EXISTS, &dummy, NULL, "s", sha256);
}

const struct store_vfuncs store_db_vfuncs = {
    .name = "sqlite",
    .init = db_init,
    .stop = db_stop,
    .deinit = db_deinit,
    .schema_version = db_schema_version,
    .reader_start = db_reader_start,
    .domain_add = sq_domain_add,
    .domain_del = sq_domain_del,
    .domain_list = sq_domain_list,
    .domain_is_local = sq_domain_is_local,
    .account_add = sq_account_add,
    .account_del = sq_account_del,
    .account_set_password = sq_account_set_password,
    .account_set_quota = sq_account_set_quota,
    .account_set_message_limit = sq_account_set_message_limit,
    .account_limits = sq_account_limits,
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
    .mailbox_list = store_db_mailbox_list,
    .mailbox_exists = store_db_mailbox_exists,
    .mailbox_stats = store_db_mailbox_stats,
    .mailbox_keywords = store_db_mailbox_keywords,
    .metadata_get = store_db_metadata_get,
    .acl_get = store_db_acl_get,
    .acl_shared = store_db_acl_shared,
    .mailbox_recent_first = store_db_mailbox_recent_first,
    .mailbox_count_from = store_db_mailbox_count_from,
    .mailbox_changes = store_db_mailbox_changes,
    .tombstones_prune = store_db_tombstones_prune,
    .message_summary = store_db_mailbox_summary,
    .message_objects = store_db_message_objects,
    .emailid_uids = store_db_mailbox_emailid_uids,
    .search_text_uids = store_db_search_text_uids,
    .search_unindexed_uids = store_db_search_unindexed_uids,
    .search_hdr_each = store_db_search_hdr_each,
    .search_hdr_unindexed_uids = store_db_search_hdr_unindexed_uids,
    .search_backfill = store_db_search_backfill,
    .queue_list = store_db_queue_list,
    .queue_show = store_db_queue_show,
    .queue_next_due = store_db_queue_next_due,
    .tlsrpt_list = store_db_tlsrpt_list,
    .dmarc_list = store_db_dmarc_list,
    .message_gc = sq_message_gc,
    .message_exists = sq_message_exists,
    .lease_take = db_lease_take,
    .lease_release = db_lease_release,
    .export_dump = store_db_export,
    .check = store_db_check,
    .import_dump = store_db_import,
};

/* ---- URLAUTH access keys (RFC 4467 §6): meta rows, so no schema change is needed ---- */

int store_db_urlauth_key(struct store *store, const char *name, bool reset, int64_t key[2])
{
	const char *error = NULL;
	char k[2][160];
	for (int i = 0; i < 2; i++)
		snprintf(k[i], sizeof(k[i]), "%s:%d", name, i);
	struct sql_conn *c = db_admin_begin(store, &error);
	if (c == NULL) {
		log_error("store: urlauth key: %s", error);
		return -1;
	}
	int found = 0;
	if (!reset) {
		found = sql_int(c, SQ_META_GET, &key[0], &error, "s", k[0]);
		if (found == 1)
			found = sql_int(c, SQ_META_GET, &key[1], &error, "s", k[1]);
	}
	int ret = found < 0 ? -1 : 0;
	if (ret == 0 && found != 1) {
		randombytes_buf(key, 2 * sizeof(int64_t));
		for (int i = 0; i < 2 && ret == 0; i++)
			if (sql_exec(c, SQ_META_SET, &error, "si", k[i], key[i]) < 0)
				ret = -1;
	}
	ret = db_admin_end(store, ret, &error);
	if (ret < 0)
		log_error("store: urlauth key: %s", error != NULL ? error : "failed");
	return ret;
}
