/* Internals shared by the files of the store's database logic: store_db.c (statements,
 * connections, domains, accounts, aliases, the writer's transaction with deliveries and
 * expunges, POP3 reads), store_db_mailbox.c (IMAP: mailboxes, flags, copies, appends,
 * changes) and store_db_queue.c (the outbound queue). They talk to the engine only through
 * sql.h. Only these files (and tests) include it. */
#ifndef POSTHORN_STORE_STORE_DB_H
#define POSTHORN_STORE_STORE_DB_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "store/sql.h"
#include "store/store_private.h"

/* Tables a dump holds (store_db_dump.c). */
#define STORE_DB_DUMP_TABLES 17

/* Every statement, prepared once per connection on first use. The SQL of the ids before
 * SQ_CORE_COUNT is in store_db.c, of the others in store_db_mailbox.c and
 * store_db_queue.c. */
enum sq_id {
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
	SQ_ACCOUNT_LIMITS,
	SQ_ACCOUNT_SET_MESSAGE_LIMIT,
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
	SQ_JUNK_NEXT,
	SQ_ENTRY_INSERT,
	SQ_ACCOUNT_ADD_USED,
	SQ_MAILBOX_FIND,
	SQ_ENTRY_LIST,
	SQ_ENTRY_LOCATE,
	SQ_MESSAGE_GC,
	SQ_MESSAGE_EXISTS,
	SQ_MAILBOX_STATUS,
	SQ_ENTRY_SNAPSHOT,
	SQ_MESSAGE_LOCATE,
	SQ_MAILBOX_ID,
	SQ_ENTRY_TAKE,
	SQ_MESSAGE_SIZE,
	SQ_MAILBOX_BUMP_MODSEQ,
	SQ_TOMBSTONE_INSERT,
	SQ_ACCOUNT_SUB_USED,
	SQ_MAX_ENTRY,
	SQ_NOTIFY,
	SQ_LEASE_TAKE,
	SQ_LEASE_RELEASE,
	SQ_TOMBSTONE_PRUNE,
	SQ_MB_FLOOR_RAISE,
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
	SQ_MB_OBJECTID,
	SQ_MB_OBJECTS,
	SQ_MB_EMAILID_UIDS,
	SQ_MB_SEARCH_INSERT,
	SQ_MB_SEARCH_INDEXED,
	SQ_MB_SEARCH_SCAN,
	SQ_MB_SEARCH_UNINDEXED,
	SQ_MB_SEARCH_PENDING,
	SQ_MB_SEARCH_BEYOND,
	SQ_MB_SEARCH_CONTENT,
	SQ_MB_SEARCH_BACKFILL,
	SQ_MB_SEARCH_HDR_ALL,
	SQ_MB_SEARCH_HDR_SCAN,
	SQ_MB_SEARCH_HDR_INDEXED,
	SQ_MB_SEARCH_HDR_UNINDEXED,
	SQ_MB_SEARCH_REDO,
	SQ_MAILBOX_END,
	/* store_db_queue.c */
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
	SQ_QUEUE_END,
	/* store_db_tlsrpt.c */
	SQ_T_ADD = SQ_QUEUE_END,
	SQ_T_CLAIM,
	SQ_T_PRUNE,
	SQ_T_PRUNE_DAYS,
	SQ_T_LIST,
	SQ_T_LIST_DOMAIN,
	SQ_TLSRPT_END,
	/* store_db_chunks.c (only where bodies are kept in chunk rows: PostgreSQL) */
	SQ_C_COUNT = SQ_TLSRPT_END,
	SQ_C_PUT,
	SQ_C_GET,
	SQ_CHUNKS_END,
	/* store_db_metadata.c */
	SQ_MD_DELETE = SQ_CHUNKS_END,
	SQ_MD_INSERT,
	SQ_MD_COUNT,
	SQ_MD_GET,
	SQ_METADATA_END,
	/* store_db_acl.c */
	SQ_ACL_DELETE = SQ_METADATA_END,
	SQ_ACL_INSERT,
	SQ_ACL_COUNT,
	SQ_ACL_ONE,
	SQ_ACL_GET,
	SQ_ACL_SHARED,
	SQ_ACL_END,
	/* store_db_policy.c */
	SQ_P_IS_JUNK = SQ_ACL_END,
	SQ_P_JUNK_ADD,
	SQ_P_JUNK_PRUNE,
	SQ_P_JUNK_LIST,
	SQ_P_GL_GET,
	SQ_P_GL_NEW,
	SQ_P_GL_PASS,
	SQ_P_GL_PRUNE,
	SQ_P_GL_COUNT,
	SQ_P_SUB_COUNT,
	SQ_P_RCPT_KNOWN,
	SQ_P_RCPT_ADD,
	SQ_P_SUB_ADD,
	SQ_P_SUB_PRUNE,
	SQ_P_RCPT_PRUNE,
	SQ_POLICY_END,
	/* store_db_dmarc.c */
	SQ_D_UPDATE = SQ_POLICY_END,
	SQ_D_INSERT,
	SQ_D_CLAIM,
	SQ_D_PRUNE,
	SQ_D_PRUNE_DAYS,
	SQ_D_LIST,
	SQ_D_LIST_DOMAIN,
	SQ_DMARC_END,
	/* store_db_check.c */
	SQ_CHECK_ENGINE = SQ_DMARC_END,
	SQ_CHECK_FOREIGN,
	SQ_CHECK_UIDNEXT,
	SQ_CHECK_TOMBSTONES,
	SQ_CHECK_ENTRIES,
	SQ_CHECK_USED,
	SQ_CHECK_FILES,
	SQ_CHECK_END,
	/* store_db_dump.c: whether the store is empty, then SELECT and INSERT of each table */
	SQ_DUMP_EMPTY = SQ_CHECK_END,
	SQ_DUMP_FIRST,
	SQ_COUNT = SQ_DUMP_FIRST + 2 * STORE_DB_DUMP_TABLES
};

/* SQL of the ids from SQ_CORE_COUNT to SQ_MAILBOX_END, indexed by id - SQ_CORE_COUNT, and
 * of the queue's from SQ_MAILBOX_END on, indexed by id - SQ_MAILBOX_END. */
extern const char *const store_db_mailbox_sql[SQ_MAILBOX_END - SQ_CORE_COUNT];
extern const char *const store_db_queue_sql[SQ_QUEUE_END - SQ_MAILBOX_END];
extern const char *const store_db_tlsrpt_sql[SQ_TLSRPT_END - SQ_QUEUE_END];
extern const char *const store_db_chunks_sql[SQ_CHUNKS_END - SQ_TLSRPT_END];
extern const char *const store_db_metadata_sql[SQ_METADATA_END - SQ_CHUNKS_END];
extern const char *const store_db_acl_sql[SQ_ACL_END - SQ_METADATA_END];
extern const char *const store_db_policy_sql[SQ_POLICY_END - SQ_ACL_END];

/* store_db_policy.c: inside the writer's transaction, a policy write; and the junk
 * training records of a copy of the messages (message row ids) from mailbox src_id of
 * account src_account to dst_id of dst_account (nothing unless exactly one of them has
 * \Junk special use). 0, or -1. */
int store_db_policy_commit(struct sql_conn *c, const struct store_commit_policy *p,
                           const char **error_r);
int store_db_policy_junk_copy(struct sql_conn *c, uint64_t src_account, int64_t src_id,
                              uint64_t dst_account, int64_t dst_id, const int64_t *message_ids,
                              size_t count, int64_t now, const char **error_r);
/* The reads of store.h's store_policy_*() (on this thread's reader). */
int store_db_policy_junk_list(struct store *store,
                              void (*cb)(void *ctx, const struct store_policy_junk_row *row),
                              void *ctx);
int store_db_policy_greylist_get(struct store *store, const char *triplet,
                                 struct store_policy_greylist *entry_r);
int store_db_policy_greylist_count(struct store *store, const char *from, const char *to,
                                   uint64_t *count_r);
int store_db_policy_submissions(struct store *store, uint64_t account_id, int64_t since,
                                uint64_t *messages_r, uint64_t *new_recipients_r);
int store_db_policy_recipient_known(struct store *store, uint64_t account_id, const char *address);
extern const char *const store_db_dmarc_sql[SQ_DMARC_END - SQ_POLICY_END];
extern const char *const store_db_check_sql[SQ_CHECK_END - SQ_DMARC_END];

/* A reading thread's connection, in store_db.readers. */
struct db_reader {
	struct sql_conn *c;
	struct db_reader *next;
	struct store_db *owner;
};

extern const struct store_vfuncs store_db_vfuncs;

struct store_db {
	struct store store; /* first: the common part */
	struct sql *sql;
	struct sql_conn *writer; /* the writer thread's */
	struct sql_conn *admin;  /* admin writes, under admin_lock */
	pthread_mutex_t admin_lock;
	pthread_key_t read_key; /* this thread's struct db_reader */
	bool read_key_created;
	pthread_mutex_t read_lock;
	struct db_reader *readers;
	/* \Recent: entries with a higher row id, and mailboxes with a higher UIDVALIDITY
	 * (created since), are new since the store was opened. Row ids of deleted top rows
	 * can be reused, so the UIDVALIDITY covers recreated mailboxes. */
	int64_t open_max_entry;
	int64_t open_uidvalidity;
	/* store_db_notify.c: this node's random id, and the thread that listens for the
	 * other nodes' changes (only on a database several nodes share) */
	char node[17];
	pthread_t notifier;
	atomic_bool notify_stop;
	struct store_changes notify_changes; /* the notifier thread's */
};

static inline struct store_db *db_store(struct store *store)
{
	return (struct store_db *)store;
}

/* Growing list of row ids (message rows to check for references, ...). */
struct sq_ids {
	int64_t *v;
	size_t count, cap;
};
void store_db_ids_add(struct sq_ids *ids, int64_t id);

/* This thread's query-only connection, opened on first use; NULL on error (logged). */
struct sql_conn *store_db_reader(struct store *store);
/* store_account_limits() on connection c (the writer's inside its transaction). */
int store_db_account_limits(struct sql_conn *c, uint64_t account_id,
                            struct store_account_limits *limits_r, const char **error_r);
/* Start a read transaction on a reader unless one is open (a nested read from a callback):
 * 1 started, 0 already inside one, -1 error. store_db_read_end() ends what was
 * started (ret < 0 rolls back) and returns ret, or -1. */
int store_db_read_begin(struct sql_conn *c);
/* A mailbox's status row (SQ_MAILBOX_STATUS) by owner and name: 1 found (*mailbox_id_r,
 * *status_r), 0 no such mailbox, -1 error. */
int store_db_mailbox_status_row(struct sql_conn *c, uint64_t account_id, const char *mailbox,
                                int64_t *mailbox_id_r, struct store_mailbox_status *status_r);
/* An entry from a row whose columns 0-5 are uid, size, internal_date, flags, modseq,
 * keywords (SQ_ENTRY_SNAPSHOT, SQ_MB_CHANGED); keywords point into the row. */
void store_db_entry_row(struct sql_row *st, struct store_entry *entry_r);
/* A new MAILBOXID: 32 random hex digits into out. */
void store_db_objectid(char out[STORE_OBJECTID_MAX + 1]);
int store_db_read_end(struct sql_conn *c, int started, int ret);
/* The next UIDVALIDITY of this store (above every earlier one; the last is kept in meta):
 * 0 with *uidvalidity_r, or -1. Inside a write transaction. */
int store_db_next_uidvalidity(struct sql_conn *c, int64_t *uidvalidity_r, const char **error_r);

/* URLAUTH (RFC 4467): the 128-bit key kept in meta rows "name:0" and "name:1", made (or
 * with reset made anew) with random octets. 0, or -1 (logged). store_db.c. */
int store_db_urlauth_key(struct store *store, const char *name, bool reset, int64_t key[2]);

/* store_db_mailbox.c: the writer's part of an append, flags, copy or mailbox item,
 * inside the commit's transaction (message rows to check for references go to unref).
 * 0 done or refused (item->refused set; the caller rolls the item back), -1 error. */
/* store_db_metadata.c: the writer's METADATA item (inside its savepoint), and the read. */
int store_db_metadata_commit(struct sql_conn *c, struct store_commit_item *item,
                             struct store_changes *changes, const char **error_r);
int store_db_metadata_get(struct store *store, uint64_t account_id, const char *mailbox,
                          const char *name, int depth,
                          void (*cb)(void *ctx, const char *name, const void *value, size_t size),
                          void *ctx);
/* store_db_acl.c: the writer's ACL item (inside its savepoint), and the reads. */
int store_db_acl_commit(struct sql_conn *c, struct store_commit_item *item,
                        struct store_changes *changes, const char **error_r);
int store_db_acl_get(struct store *store, uint64_t account_id, const char *mailbox,
                     void (*cb)(void *ctx, const char *identifier, unsigned rights), void *ctx);
int store_db_acl_shared(struct store *store, uint64_t account_id, const char *address,
                        const char *domain,
                        void (*cb)(void *ctx, uint64_t owner_id, const char *owner,
                                   const char *mailbox, unsigned rights),
                        void *ctx);
int store_db_mailbox_commit(struct sql_conn *c, struct store_commit_item *item,
                            struct sq_ids *unref, struct store_changes *changes,
                            const char **error_r);
/* Insert (or find) the message row of a delivery or append: 0 with *id_r, or -1. The body
 * is content (kept in the row), or the file chunk_path (kept in chunk rows), or neither (a
 * message file). */
int store_db_message_row(struct sql_conn *c, const char *sha256, uint64_t size,
                         const unsigned char *content, const char *chunk_path, int64_t received_at,
                         const char *mail_from, const char *hdr_from, const char *subject,
                         const char *message_id, const struct store_summary *summary, int64_t *id_r,
                         const char **error_r);
/* The reads of store_private.h's vtable that store_db_mailbox.c implements. */
int store_db_mailbox_list(struct store *store, uint64_t account_id,
                          void (*mailbox_cb)(void *ctx, const char *name, const char *special_use),
                          void (*subscription_cb)(void *ctx, const char *name), void *ctx);
int store_db_mailbox_stats(struct store *store, uint64_t account_id, const char *mailbox,
                           struct store_mailbox_stats *stats_r);
int store_db_mailbox_recent_first(struct store *store, uint64_t account_id, const char *mailbox,
                                  uint32_t *uidvalidity_r, uint32_t *first_r);
int store_db_mailbox_count_from(struct store *store, uint64_t account_id, const char *mailbox,
                                uint32_t uid, uint32_t *count_r);
int store_db_mailbox_exists(struct store *store, uint64_t account_id, const char *mailbox);
int store_db_mailbox_keywords(struct store *store, uint64_t account_id, const char *mailbox,
                              char **keywords_r);
/* store_db_tombstones.c: one pruning pass on the writer's connection (the writer thread's
 * vfunc tombstones_prune). */
int store_db_tombstones_prune(struct store *store, int64_t cutoff, size_t limit,
                              struct store_prune_result *r);
int store_db_mailbox_changes(struct store *store, uint64_t account_id, const char *mailbox,
                             uint64_t since_modseq,
                             void (*entry_cb)(void *ctx, const struct store_entry *entry),
                             void (*expunged_cb)(void *ctx, uint32_t uid, uint64_t modseq),
                             void *ctx, struct store_mailbox_status *status_r);
/* store_db_queue.c: the queue rows of one delivery's remote recipients (grouped by
 * destination domain), inside the commit's transaction: 0, or -1. */
int store_db_queue_deliver(struct sql_conn *c, const struct store_delivery *d, int64_t message_id,
                           int64_t now, const char **error_r);
/* A queue operation inside the commit's transaction: 0 done or refused (item->refused set
 * before anything changed), -1 error. Message rows it stops referencing go to unref. */
int store_db_queue_commit(struct sql_conn *c, const struct store *store,
                          struct store_commit_item *item, struct sq_ids *unref,
                          const char **error_r);
/* Free what queue items of a commit that did not commit collected. */
void store_db_queue_rollback(struct store_commit_item *items, size_t count);
int store_db_queue_list(struct store *store, const char *domain,
                        void (*cb)(void *ctx, const struct store_queue_info *info), void *ctx);
int store_db_queue_show(struct store *store, uint64_t id, struct store_queue_entry **entry_r);
int store_db_queue_next_due(struct store *store, int64_t *when_r);
int store_db_message_objects(struct store *store, uint64_t account_id, const char *mailbox,
                             uint32_t uid, struct store_message_objects *objects_r);
/* The search index's query (store_db_mailbox.c): the indexed messages of mailbox ?1 whose
 * texts hold needle ?2 (?3 1: body texts only), by LIKE with \\, % and _ escaped. SQLite's
 * SQ_MB_SEARCH_INDEXED adds STORE_DB_SEARCH_FTS before the match. */
#define STORE_DB_SEARCH_PATTERN                                                                    \
	"('%' || replace(replace(replace(?2, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%')"
#define STORE_DB_SEARCH_SELECT                                                                     \
	"SELECT e.uid FROM mailbox_entries e JOIN search_texts t ON t.message_id = e.message_id"   \
	" WHERE e.mailbox_id = ?1 AND t.complete = 1"
#define STORE_DB_SEARCH_MATCH                                                                      \
	" AND (t.body LIKE " STORE_DB_SEARCH_PATTERN                                               \
	" ESCAPE '\\' OR (?3 = 0 AND t.hdr LIKE " STORE_DB_SEARCH_PATTERN                          \
	" ESCAPE '\\')) ORDER BY e.uid"
/* The stored header lines that hold the message's own fields apart (they begin with one
 * LF, not three: imap_search_doc.h), for store_search_hdr_each(); ?2 a needle in them. */
#define STORE_DB_SEARCH_HDR_SELECT                                                                 \
	"SELECT e.uid, t.hdr FROM mailbox_entries e JOIN search_texts t"                           \
	" ON t.message_id = e.message_id WHERE e.mailbox_id = ?1 AND t.complete = 1"               \
	" AND substr(t.hdr, 1, 1) = '\n' AND substr(t.hdr, 1, 3) <> '\n\n\n'"
#define STORE_DB_SEARCH_HDR_MATCH                                                                  \
	" AND t.hdr LIKE " STORE_DB_SEARCH_PATTERN " ESCAPE '\\' ORDER BY e.uid"
/* store.h's store_search_text_uids() and store_search_unindexed_uids() (mailbox
 * normalized). */
int store_db_search_text_uids(struct store *store, uint64_t account_id, const char *mailbox,
                              const char *needle, bool body_only, uint32_t **uids_r,
                              size_t *count_r);
int store_db_search_unindexed_uids(struct store *store, uint64_t account_id, const char *mailbox,
                                   uint32_t **uids_r, size_t *count_r);
/* store.h's store_search_hdr_each() and store_search_hdr_unindexed_uids(). */
int store_db_search_hdr_each(struct store *store, uint64_t account_id, const char *mailbox,
                             const char *prefilter, store_search_hdr_fn *fn, void *ctx);
int store_db_search_hdr_unindexed_uids(struct store *store, uint64_t account_id,
                                       const char *mailbox, uint32_t **uids_r, size_t *count_r);
/* store_private.h's search_backfill (store_db.c). */
int store_db_search_backfill(struct store *store, store_search_texter_fn *fn, void *ctx, size_t max,
                             int64_t *cursor);
int store_db_mailbox_emailid_uids(struct store *store, uint64_t account_id, const char *mailbox,
                                  const char *sha256, uint32_t **uids_r, size_t *count_r);
int store_db_mailbox_summary(struct store *store, uint64_t account_id, const char *mailbox,
                             uint32_t uid, char **envelope_r, char **body_r,
                             char **bodystructure_r);

/* store_db_notify.c: whether the engine lets nodes notify each other; start (sets the node
 * id; the listening thread only when it does) and stop; send the changes from index from
 * on inside the writer's transaction. */
bool store_db_notifies(const struct store_db *s);
int store_db_notify_start(struct store_db *s, const char **error_r);
void store_db_notify_stop(struct store_db *s);
int store_db_notify_emit(struct store_db *s, struct sql_conn *c,
                         const struct store_changes *changes, size_t from, const char **error_r);

/* store_db_chunks.c: bodies larger than STORE_CHUNK_SIZE in a database that several nodes
 * share, kept as rows of message_chunks (PostgreSQL; see there). */
bool store_db_chunked(const struct store *store, uint64_t size);
/* Store a body (the file at path, or mem; size octets) as the chunk rows of message_id,
 * unless that message has them already or keeps its body whole in its row (the row is
 * content-addressed: same bytes). Inside the caller's write transaction. 0, or -1 with
 * *error_r. */
int store_db_chunks_put(struct sql_conn *c, int64_t message_id, const char *path,
                        const unsigned char *mem, uint64_t size, const char **error_r);
/* A new unlinked file under tmp_dir of size octets that holds what want names of
 * message_id's body (all of it when want is NULL); the rest reads as zeros and takes no
 * space. 1 with *fd_r; 0 a chunk is missing (the message row was deleted meanwhile: its
 * last entry expunged), -1; *error_r unless 1. */
int store_db_chunks_open(struct sql_conn *c, const char *tmp_dir, int64_t message_id, uint64_t size,
                         const struct store_want *want, int *fd_r, const char **error_r);
/* fn with each chunk of message_id's body (size octets in all), in order: 0, or -1 with
 * *error_r. */
int store_db_chunks_each(struct sql_conn *c, int64_t message_id, uint64_t size,
                         void (*fn)(void *ctx, const unsigned char *p, size_t n), void *ctx,
                         const char **error_r);

/* store_db_dump.c: fill in the texts of the SQ_DUMP_FIRST.. ids (generated once). */
void store_db_dump_texts(const char **texts);
/* `posthorn db export | import` (store.h). */
int store_db_export(struct store *store, FILE *out, const char **error_r);
/* store_db_check.c: the vfunc check (store_check()). */
int store_db_check(struct store *store, void (*problem)(void *ctx, const char *text), void *ctx,
                   const char **error_r);
int store_db_import(struct store *store, FILE *in, const char **error_r);

/* The common text of every statement, SQ_COUNT of them (for tests: each must prepare on
 * every engine). */
const char *const *store_db_texts(void);

/* For tests and tools: create (or migrate) the SQLite database under the existing data_dir
 * up to schema version `version` only (0..latest), without opening a store. 0, or -1 with
 * *error_r. store_open() then applies the remaining migrations. */
int store_db_create(const char *data_dir, int version, const char **error_r);
/* store_db_tlsrpt.c: TLS-RPT results. A RESULT's tlsrpt rows, or a TLSRPT_DAY claim, inside
 * the commit's transaction: 0, -1. */
int store_db_tlsrpt_commit(struct sql_conn *c, struct store_commit_item *item,
                           const char **error_r);
int store_db_tlsrpt_list(struct store *store, int64_t day, const char *domain,
                         void (*cb)(void *ctx, const struct store_tlsrpt_row *row), void *ctx);
/* store_db_dmarc.c: a DMARC_ADD or DMARC_DAY inside the commit's transaction: 0, -1. */
int store_db_dmarc_commit(struct sql_conn *c, struct store_commit_item *item, const char **error_r);
int store_db_dmarc_list(struct store *store, int64_t day, const char *domain,
                        void (*cb)(void *ctx, const struct store_dmarc_row *row), void *ctx);

#endif
