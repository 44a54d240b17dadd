/* Internals shared by the files of the SQLite backend: store_sqlite.c (connections,
 * statements, migrations, domains, accounts, aliases, the writer's transaction with
 * deliveries and expunges, POP3 reads) and store_sqlite_mailbox.c (IMAP: mailboxes,
 * flags, copies, appends, changes). Only these two files include it. */
#ifndef POSTHORN_STORE_SQLITE_STORE_SQLITE_PRIVATE_H
#define POSTHORN_STORE_SQLITE_STORE_SQLITE_PRIVATE_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store/store_private.h"

/* Every statement, prepared once per connection on first use. The SQL of the ids before
 * SQ_CORE_COUNT is in store_sqlite.c, of the others in store_sqlite_mailbox.c. */
enum sq_id {
	SQ_BEGIN,
	SQ_COMMIT,
	SQ_ROLLBACK,
	SQ_USER_VERSION,
	SQ_META_GET,
	SQ_META_SET,
	SQ_DOMAIN_ID,
	SQ_DOMAIN_INSERT,
	SQ_DOMAIN_IN_USE,
	SQ_DOMAIN_DELETE,
	SQ_DOMAIN_LIST,
	SQ_ACCOUNT_ID,
	SQ_ACCOUNT_NEXT_ID,
	SQ_ACCOUNT_INSERT,
	SQ_MAILBOX_INSERT,
	SQ_ACCOUNT_MESSAGES,
	SQ_ACCOUNT_DELETE,
	SQ_MESSAGE_DELETE_UNUSED,
	SQ_ACCOUNT_SET_PASSWORD,
	SQ_ACCOUNT_SET_QUOTA,
	SQ_ACCOUNT_SET_APOP,
	SQ_ACCOUNT_GET_APOP,
	SQ_ACCOUNT_LIST,
	SQ_ACCOUNT_LIST_DOMAIN,
	SQ_ACCOUNT_LOOKUP,
	SQ_ACCOUNT_USAGE,
	SQ_ACCOUNT_ADDRESS,
	SQ_ALIAS_EXISTS,
	SQ_ALIAS_INSERT,
	SQ_ALIAS_DELETE_ONE,
	SQ_ALIAS_DELETE_ALL,
	SQ_ALIAS_LIST,
	SQ_ALIAS_TARGETS,
	SQ_MESSAGE_INSERT,
	SQ_MESSAGE_ID,
	SQ_INBOX_NEXT,
	SQ_ENTRY_INSERT,
	SQ_ACCOUNT_ADD_USED,
	SQ_MAILBOX_FIND,
	SQ_ENTRY_LIST,
	SQ_ENTRY_LOCATE,
	SQ_MESSAGE_GC,
	SQ_MESSAGE_EXISTS,
	SQ_READ_BEGIN,
	SQ_MAILBOX_STATUS,
	SQ_ENTRY_SNAPSHOT,
	SQ_MESSAGE_LOCATE,
	SQ_MAILBOX_ID,
	SQ_ENTRY_TAKE,
	SQ_MESSAGE_SIZE,
	SQ_MAILBOX_BUMP_MODSEQ,
	SQ_TOMBSTONE_INSERT,
	SQ_ACCOUNT_SUB_USED,
	SQ_CORE_COUNT,
	SQ_SAVEPOINT = SQ_CORE_COUNT,
	SQ_RELEASE,
	SQ_ROLLBACK_TO,
	SQ_MB_GET,
	SQ_MB_COUNT,
	SQ_MB_INSERT,
	SQ_MB_DELETE,
	SQ_MB_REFS,
	SQ_MB_CHILDREN,
	SQ_MB_SET_NAME,
	SQ_MB_ALLOC,
	SQ_MB_SET_KEYWORDS,
	SQ_MB_TOMBSTONE_ALL,
	SQ_MB_MOVE_ALL,
	SQ_MB_LIST,
	SQ_MB_STATS,
	SQ_MB_KEYWORDS,
	SQ_MB_RECENT_FIRST,
	SQ_MB_COUNT_FROM,
	SQ_MB_CHANGED,
	SQ_MB_EXPUNGED,
	SQ_MB_SUMMARY,
	SQ_SUB_LIST,
	SQ_SUB_INSERT,
	SQ_SUB_DELETE,
	SQ_SUB_COUNT,
	SQ_SUB_EXISTS,
	SQ_ENTRY_FLAGS,
	SQ_ENTRY_SET_FLAGS,
	SQ_ENTRY_SOURCE,
	SQ_ENTRY_INSERT_FULL,
	SQ_MAILBOX_END,
	/* store_sqlite_queue.c */
	SQ_Q_ENTRY_INSERT = SQ_MAILBOX_END,
	SQ_Q_RCPT_INSERT,
	SQ_Q_DUE,
	SQ_Q_LEASE,
	SQ_Q_ENTRY_GET,
	SQ_Q_RCPTS,
	SQ_Q_LEASE_GET,
	SQ_Q_RENEW,
	SQ_Q_RCPT_RESULT,
	SQ_Q_PENDING,
	SQ_Q_RESCHEDULE,
	SQ_Q_RCPTS_DELETE,
	SQ_Q_DELETE,
	SQ_Q_WARNED,
	SQ_Q_FLUSH_ALL,
	SQ_Q_FLUSH_ONE,
	SQ_Q_HOLD,
	SQ_Q_RELEASE,
	SQ_Q_UNLEASE,
	SQ_Q_LIST,
	SQ_Q_LIST_DOMAIN,
	SQ_Q_NEXT_DUE,
	SQ_COUNT
};

/* SQL of the ids from SQ_CORE_COUNT to SQ_MAILBOX_END, indexed by id - SQ_CORE_COUNT, and
 * of the queue's from SQ_MAILBOX_END on, indexed by id - SQ_MAILBOX_END. */
extern const char *const store_sqlite_mailbox_sql[SQ_MAILBOX_END - SQ_CORE_COUNT];
extern const char *const store_sqlite_queue_sql[SQ_COUNT - SQ_MAILBOX_END];

struct sq_conn {
	sqlite3 *db;
	sqlite3_stmt *stmts[SQ_COUNT];
	struct sq_conn *next; /* in store_sqlite.readers */
	struct store_sqlite *owner;
};

struct store_sqlite {
	struct store store; /* first: the common part */
	char *db_path;
	struct sq_conn *writer; /* the writer thread's */
	struct sq_conn *admin;  /* admin writes, under admin_lock */
	pthread_mutex_t admin_lock;
	pthread_key_t read_key; /* this thread's query-only connection */
	bool read_key_created;
	pthread_mutex_t read_lock;
	struct sq_conn *readers;
	/* \Recent: entries with a higher row id, and mailboxes with a higher UIDVALIDITY
	 * (created since), are new since the store was opened. Row ids of deleted top rows
	 * can be reused, so the UIDVALIDITY covers recreated mailboxes. */
	int64_t open_max_entry;
	int64_t open_uidvalidity;
};

static inline struct store_sqlite *sq_store(struct store *store)
{
	return (struct store_sqlite *)store;
}

static inline void sq_reset(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static inline const char *sq_text(sqlite3_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(st, col);
}

static inline const char *sq_text0(sqlite3_stmt *st, int col)
{
	const char *s = sq_text(st, col);
	return s == NULL ? "" : s;
}

/* Growing list of row ids (message rows to check for references, ...). */
struct sq_ids {
	int64_t *v;
	size_t count, cap;
};
void store_sqlite_ids_add(struct sq_ids *ids, int64_t id);

/* Log a database error and return it as an error string (store_error_fmt()). */
const char *store_sqlite_fail(struct sq_conn *c, const char *what);
/* Statement helpers. Arguments are bound by fmt: 's' const char * (NULL binds NULL), 'i'
 * int64_t.
 * step: prepare, bind and step once: SQLITE_ROW with *st_r on the first row (the caller
 * reads it, may step further, and calls sq_reset()), SQLITE_DONE (already reset), or -1
 * (logged, *error_r set when error_r != NULL).
 * exec: run for the effect: the number of changed rows, or -1.
 * int: first column of the first row: 1 found, 0 no row, -1 error.
 * each: row() for every row: 0, or -1; nested runs of the same statement are allowed. */
int store_sqlite_step(struct sq_conn *c, enum sq_id id, sqlite3_stmt **st_r, const char **error_r,
                      const char *fmt, ...);
int store_sqlite_exec(struct sq_conn *c, enum sq_id id, const char **error_r, const char *fmt, ...);
int store_sqlite_int(struct sq_conn *c, enum sq_id id, int64_t *value_r, const char **error_r,
                     const char *fmt, ...);
int store_sqlite_each(struct sq_conn *c, enum sq_id id, void (*row)(void *ctx, sqlite3_stmt *st),
                      void *ctx, const char *fmt, ...);
/* This thread's query-only connection, opened on first use; NULL on error (logged). */
struct sq_conn *store_sqlite_reader(struct store *store);
/* Commit when ret is 0, else roll back. Returns ret, or -1 when COMMIT failed. */
int store_sqlite_end(struct sq_conn *c, int ret, const char **error_r);
/* Start a read transaction on a reader unless one is open (a nested read from a callback):
 * 1 started, 0 already inside one, -1 error. store_sqlite_read_end() ends what was
 * started (ret < 0 rolls back) and returns ret, or -1. */
int store_sqlite_read_begin(struct sq_conn *c);
int store_sqlite_read_end(struct sq_conn *c, int started, int ret);
/* The next UIDVALIDITY of this store (above every earlier one; the last is kept in meta):
 * 0 with *uidvalidity_r, or -1. Inside a write transaction. */
int store_sqlite_next_uidvalidity(struct sq_conn *c, int64_t *uidvalidity_r, const char **error_r);

/* store_sqlite_mailbox.c: the writer's part of an append, flags, copy or mailbox item,
 * inside the commit's transaction (message rows to check for references go to unref).
 * 0 done or refused (item->refused set; the caller rolls the item back), -1 error. */
int store_sqlite_mailbox_commit(struct sq_conn *c, struct store_commit_item *item,
                                struct sq_ids *unref, struct store_changes *changes,
                                const char **error_r);
/* Insert (or find) the message row of a delivery or append: 0 with *id_r, or -1. */
int store_sqlite_message_row(struct sq_conn *c, const char *sha256, uint64_t size,
                             int64_t received_at, const char *mail_from, const char *hdr_from,
                             const char *subject, const char *message_id,
                             const struct store_summary *summary, int64_t *id_r,
                             const char **error_r);
/* The reads of store_private.h's vtable that store_sqlite_mailbox.c implements. */
int store_sqlite_mailbox_list(struct store *store, uint64_t account_id,
                              void (*mailbox_cb)(void *ctx, const char *name,
                                                 const char *special_use),
                              void (*subscription_cb)(void *ctx, const char *name), void *ctx);
int store_sqlite_mailbox_stats(struct store *store, uint64_t account_id, const char *mailbox,
                               struct store_mailbox_stats *stats_r);
int store_sqlite_mailbox_recent_first(struct store *store, uint64_t account_id, const char *mailbox,
                                      uint32_t *uidvalidity_r, uint32_t *first_r);
int store_sqlite_mailbox_count_from(struct store *store, uint64_t account_id, const char *mailbox,
                                    uint32_t uid, uint32_t *count_r);
int store_sqlite_mailbox_keywords(struct store *store, uint64_t account_id, const char *mailbox,
                                  char **keywords_r);
int store_sqlite_mailbox_changes(struct store *store, uint64_t account_id, const char *mailbox,
                                 uint64_t since_modseq,
                                 void (*entry_cb)(void *ctx, const struct store_entry *entry),
                                 void (*expunged_cb)(void *ctx, uint32_t uid, uint64_t modseq),
                                 void *ctx, struct store_mailbox_status *status_r);
/* store_sqlite_queue.c: the queue rows of one delivery's remote recipients (grouped by
 * destination domain), inside the commit's transaction: 0, or -1. */
int store_sqlite_queue_deliver(struct sq_conn *c, const struct store_delivery *d,
                               int64_t message_id, int64_t now, const char **error_r);
/* A queue operation inside the commit's transaction: 0 done or refused (item->refused set
 * before anything changed), -1 error. Message rows it stops referencing go to unref. */
int store_sqlite_queue_commit(struct sq_conn *c, const char *messages_dir,
                              struct store_commit_item *item, struct sq_ids *unref,
                              const char **error_r);
/* Free what queue items of a commit that did not commit collected. */
void store_sqlite_queue_rollback(struct store_commit_item *items, size_t count);
int store_sqlite_queue_list(struct store *store, const char *domain,
                            void (*cb)(void *ctx, const struct store_queue_info *info), void *ctx);
int store_sqlite_queue_show(struct store *store, uint64_t id, struct store_queue_entry **entry_r);
int store_sqlite_queue_next_due(struct store *store, int64_t *when_r);
int store_sqlite_mailbox_summary(struct store *store, uint64_t account_id, const char *mailbox,
                                 uint32_t uid, char **envelope_r, char **body_r,
                                 char **bodystructure_r);

#endif
