/* Internals shared by store.c and the backends (sqlite/ today, pg/ later): struct store,
 * whose first part is common to every backend, and struct store_vfuncs, the backend vtable.
 * store.c validates and normalises arguments (lower-cased addresses), store_writer.c runs
 * the writer thread, blob.c the message files; a backend only stores rows. Nothing here names a
 * database library. Only store.c, store_writer.c, blob.c and backends include this header. */
#ifndef POSTHORN_STORE_STORE_PRIVATE_H
#define POSTHORN_STORE_STORE_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/buf.h"
#include "store/blob.h"
#include "store/store.h"

/* Longest address we accept: RFC 5321 §4.5.3.1.3 limits a path to 256 octets with "<>". */
#define STORE_ADDRESS_MAX 254
/* Size of an error message buffer. */
#define STORE_ERROR_MAX 512
/* Most operations (deliveries, expunges, ...) one group commit takes from the queue. */
#define STORE_BATCH_MAX 256
/* Hash buckets of the watch list (by account id). */
#define STORE_WATCH_BUCKETS 256
/* Snapshots kept between SELECTs (store_snapcache.c): of mailboxes with at least MIN
 * entries, at most ENTRIES entries in all (about 48 octets each), dropped after IDLE
 * seconds unused. */
#define STORE_SNAPCACHE_MIN 1000
#define STORE_SNAPCACHE_ENTRIES 1000000
#define STORE_SNAPCACHE_IDLE 600
/* Hash buckets of the \Recent boundaries (by account id and mailbox name). */
#define STORE_RECENT_BUCKETS 1024
/* Alias expansion: nesting depth and number of distinct names visited per resolution. */
#define STORE_ALIAS_DEPTH_MAX 8
#define STORE_ALIAS_VISIT_MAX 256

/* A mailbox every new account gets. Names are hierarchical with delimiter '/'. */
struct store_mailbox_template {
	const char *name;
	const char *special_use; /* "\\Drafts" (RFC 6154) or NULL */
	bool subscribed;
};

/* What one writer operation is. */
enum store_op_kind {
	STORE_OP_DELIVERY,
	STORE_OP_EXPUNGE,
	STORE_OP_APPEND,
	STORE_OP_FLAGS,
	STORE_OP_COPY,
	STORE_OP_MAILBOX,
	STORE_OP_QUEUE,
	STORE_OP_POLICY,
};

/* The IMAP texts a summarizer computed for a new message row (malloc'd, or NULL). */
struct store_summary {
	char *envelope;
	char *body;
	char *bodystructure;
	char *preview; /* RFC 8970 */
	/* The search index's texts (store_search_texter_fn): search_state 1 with both set,
	 * 2 not indexable (too long, not UTF-8), 0 not computed (no row written). */
	char *search_hdr, *search_body;
	int search_state;
};

/* A delivery ready to commit: its file is already at its content address. */
struct store_commit_delivery {
	const struct store_delivery *delivery; /* mail_from, remote, received_at, headers */
	const uint64_t *accounts;              /* distinct account ids */
	size_t account_count;
	char sha256[BLOB_HEX_LEN + 1];
	uint64_t size;
	const unsigned char *content;        /* the body, stored inline; NULL: in its file */
	const char *chunk_path;              /* or: its spool file, for chunk rows */
	const struct store_summary *summary; /* for a new message row */
};

/* An expunge: the backend fills the out fields inside the transaction (they count only when
 * it commits). */
struct store_commit_expunge {
	/* in */
	uint64_t account_id;
	const char *mailbox;  /* exact stored name ("INBOX" already normalised) */
	const uint32_t *uids; /* ascending, distinct, none 0 */
	size_t uid_count;
	/* out */
	bool no_mailbox; /* the account has no such mailbox: nothing was done */
	uint32_t expunged;
	uint64_t freed;
};

/* One appended message, at its content address once placed. */
struct store_commit_message {
	char sha256[BLOB_HEX_LEN + 1];
	uint64_t size;
	unsigned char *content; /* the body, stored inline (writer's); NULL: in its file */
	const char *chunk_path; /* or: its spool file, for chunk rows */
	bool placed;            /* writer only: its file is at its content address */
	unsigned flags;
	const char *keywords;  /* valid keywords, space-separated */
	int64_t internal_date; /* never 0 */
	const char *hdr_from, *hdr_subject, *hdr_message_id;
	struct store_summary summary;
	uint32_t uid; /* out */
};

/* An append: every message or none. */
struct store_commit_append {
	uint64_t account_id;
	const char *mailbox; /* exact stored name */
	struct store_commit_message *messages;
	size_t count;
	const char *replace_mailbox; /* exact stored name, or NULL (store_append's) */
	uint32_t replace_uid;
	/* out */
	uint32_t uidvalidity;
	uint64_t modseq;
};

/* Collects the entries a flags operation leaves, for its entry_cb (store_writer.c). */
struct store_flags_report {
	struct store_flags_entry *v;
	size_t count, cap;
};
/* Forget what an earlier attempt collected; add one entry (keywords copied). */
void store_writer_report_reset(struct store_flags_report *report);
void store_writer_report_add(struct store_flags_report *report,
                             const struct store_flags_entry *entry);

struct store_commit_flags {
	uint64_t account_id;
	const char *mailbox;  /* exact stored name */
	const uint32_t *uids; /* ascending, distinct, none 0 */
	size_t uid_count;
	enum store_flags_mode mode;
	unsigned flags;
	const char *keywords; /* valid keywords, space-separated */
	bool conditional;
	uint64_t unchanged_since;
	/* out */
	uint64_t modseq;
	uint32_t changed, modified;
	struct store_flags_report *report; /* every present UID, ascending */
};

struct store_commit_copy {
	uint64_t account_id;
	const char *mailbox, *target; /* exact stored names */
	const uint32_t *uids;         /* ascending, distinct, none 0 */
	size_t uid_count;
	bool move;
	uint64_t target_account_id; /* of target: account_id unless a shared mailbox's */
	/* out */
	uint32_t uidvalidity;
	size_t count;
	uint32_t *source_uids, *target_uids; /* room for uid_count each */
};

struct store_commit_mailbox {
	enum store_mailbox_action action;
	uint64_t account_id;
	const char *name, *new_name;                 /* valid, normalised */
	const char *special_use;                     /* "\\Drafts \\Sent" or NULL */
	const struct store_metadata_entry *metadata; /* METADATA: names valid, lower-case */
	size_t metadata_count;
	uint32_t metadata_max;
	const char *acl_identifier; /* ACL: valid, lower-case */
	unsigned acl_rights;
	enum store_acl_mode acl_mode;
	/* out */
	uint32_t expunged;
	uint64_t freed;
	char objectid[STORE_OBJECTID_MAX + 1]; /* CREATE: the new mailbox's MAILBOXID */
};

/* An outbound queue operation (store.h). The backend resets the out fields at the start
 * of every attempt (freeing entries a rolled-back attempt left). */
struct store_commit_queue {
	const struct store_queue_op *op; /* in fields */
	int64_t now;                     /* op->now or the clock */
	const char *owner;               /* op->owner or "" */
	/* out */
	struct store_queue_entry *entries; /* CLAIM, DELETE */
	size_t count;
	size_t changed, pending;
	bool lease_lost;
	bool due; /* entries became due: call the queue hook */
};

/* An SMTP policy write (store.h's store_policy_*_note()): the pending owns it. */
enum store_policy_action { STORE_POLICY_GREYLIST, STORE_POLICY_SUBMISSION };
struct store_commit_policy {
	enum store_policy_action action;
	int64_t now;
	/* GREYLIST */
	char *triplet;
	bool passed;
	int64_t expired_before;
	/* SUBMISSION: lower-cased addresses */
	uint64_t account_id;
	char **recipients;
	size_t count;
};

/* One operation of a writer batch, in queue order. */
struct store_commit_item {
	enum store_op_kind kind;
	/* out, every kind but delivery and expunge: a STORE_ERROR_* string when the backend
	 * refused the operation (it then changed nothing), else NULL. */
	const char *refused;
	union {
		struct store_commit_delivery delivery;
		struct store_commit_expunge expunge;
		struct store_commit_append append;
		struct store_commit_flags flags;
		struct store_commit_copy copy;
		struct store_commit_mailbox mailbox;
		struct store_commit_queue queue;
		struct store_commit_policy policy;
	};
};

/* The mailboxes one commit changed, for the watches (store_watch.c). */
struct store_change {
	uint64_t account_id;
	char *mailbox;
	uint64_t highestmodseq; /* 0: no mailbox of that name any more */
	enum store_change_kind kind;
	char *old_name; /* STORE_CHANGE_RENAME: the old name; METADATA: the entry */
};
struct store_changes {
	struct store_change *v;
	size_t count, cap;
};
/* Record that a mailbox changed (name copied). Backends call it inside the transaction. */
void store_watch_changed(struct store_changes *changes, uint64_t account_id, const char *mailbox,
                         uint64_t highestmodseq);
/* Record a subscription change of mailbox (old_name NULL) or a rename of old_name to
 * mailbox (kind STORE_CHANGE_RENAME), for account watches; mailbox watches ignore them. */
void store_watch_changed_kind(struct store_changes *changes, uint64_t account_id,
                              const char *mailbox, enum store_change_kind kind,
                              const char *old_name);
/* Record every watched mailbox as changed (another node's changes may have been missed:
 * every view looks). */
void store_watch_changed_all(struct store *store, struct store_changes *changes);
/* Drop the records after the first count (a rolled-back part). */
void store_watch_truncate(struct store_changes *changes, size_t count);
/* Writer thread, after the commits of a batch: call every matching watch once per changed
 * mailbox (the last record of a name wins), then empty changes. */
void store_watch_notify(struct store *store, struct store_changes *changes);
void store_watch_changes_free(struct store_changes *changes);
/* Set up and tear down the watch list of a store. */
void store_watch_init(struct store *store);
void store_watch_deinit(struct store *store);
/* store_unwatch(). */
void store_watch_remove(struct store_watch **watch);

/* Mailbox names and keywords (store_mailbox.c). Copy name to out (STORE_MAILBOX_NAME_MAX
 * + 1 octets) with its first level "INBOX" normalised: 0, or -1 when invalid. */
int store_mailbox_norm(const char *name, char out[STORE_MAILBOX_NAME_MAX + 1]);
/* The special-use text for bits ("\\Archive \\Sent"), malloc'd; NULL for 0. */
char *store_mailbox_special_dup(unsigned bits);
/* Bits of a special-use text (unknown words ignored). */
unsigned store_mailbox_special_bits(const char *text);
/* Check keywords and join them with spaces into *joined_r (malloc'd): NULL, or the
 * STORE_ERROR_* string (BAD_KEYWORD, LIMIT when more than STORE_KEYWORDS_MAX) and
 * *joined_r NULL. */
const char *store_mailbox_keywords_join(const char *const *keywords, size_t count, char **joined_r);
/* Keyword lists are space-separated text; keywords compare case-insensitively.
 * canon: for each word of words (duplicates dropped), its spelling in dict, else itself,
 * appended to canon_out; with add, the new ones are also appended to dict_out (which
 * starts as a copy of dict). Returns the number of keywords in dict_out, or -1 when a
 * buffer is full. */
int store_mailbox_kw_canon(const char *dict, const char *words, bool add, struct buf *dict_out,
                           struct buf *canon_out);
/* The keywords of an entry after a flags operation with canonical keywords canon. 0, or
 * -1 when out is full. */
int store_mailbox_kw_apply(const char *current, enum store_flags_mode mode, const char *canon,
                           struct buf *out);
/* Largest keyword list text a backend builds. */
#define STORE_KEYWORDS_TEXT_MAX 65536

/* One mailbox entry as a backend reports it; store.c turns flags into text. Strings live
 * until the callback returns. */
struct store_entry_row {
	uint32_t uid;
	uint32_t flags;       /* STORE_FLAG_* */
	const char *keywords; /* space-separated, "" when none */
	uint64_t size;
	int64_t internal_date;
	const char *mail_from;
	const char *hdr_from;
	const char *subject;
};

/* Called with the content address of each message row a backend removed, after its commit. */
typedef void store_blob_removed_cb(void *ctx, const char *sha256);

/* Every string argument is already validated and lower-cased by store.c. Returns as in
 * store.h; error strings come from store_error_fmt(). */
struct store_vfuncs {
	const char *name;
	/* Open or create the database (engine and url as store_open_engine()), apply migrations,
	 * and return a store whose common part (struct store) is zeroed except v. */
	int (*init)(const char *data_dir, const char *engine, const char *url,
	            struct store **store_r, const char **error_r);
	/* Optional: stop the backend's own threads (first thing store_close() does). */
	void (*stop)(struct store *store);
	/* Close every connection and free the store (its common part is already cleaned). */
	void (*deinit)(struct store *store);
	/* Schema version after migrations, or -1. */
	int (*schema_version)(struct store *store);
	/* Optional: run on each reader thread as it starts, before its first read (a database
	 * reached over the network is connected to ahead of need). */
	void (*reader_start)(struct store *store);

	int (*domain_add)(struct store *store, const char *domain, const char **error_r);
	int (*domain_del)(struct store *store, const char *domain, const char **error_r);
	int (*domain_list)(struct store *store, void (*cb)(void *ctx, const char *domain),
	                   void *ctx);
	int (*domain_is_local)(struct store *store, const char *domain);

	/* Create the account and the template mailboxes in one transaction; UIDVALIDITY of
	 * each new mailbox is greater than every earlier one of this store. */
	int (*account_add)(struct store *store, const char *address, const char *password_hash,
	                   uint64_t quota, const struct store_mailbox_template *mailboxes,
	                   size_t mailbox_count, const char **error_r);
	/* Remove the account with its mailboxes and entries, and the message rows nothing
	 * references any more (removed_cb names each one after the commit). */
	int (*account_del)(struct store *store, const char *address,
	                   store_blob_removed_cb *removed_cb, void *ctx, const char **error_r);
	int (*account_set_password)(struct store *store, const char *address,
	                            const char *password_hash, const char **error_r);
	int (*account_set_quota)(struct store *store, const char *address, uint64_t quota,
	                         const char **error_r);
	/* secret NULL clears it. */
	int (*account_set_apop)(struct store *store, const char *address, const char *secret,
	                        const char **error_r);
	/* 1 with *id_r and *secret_r (malloc'd), 0 no account or no secret, -1 error. */
	int (*account_get_apop)(struct store *store, const char *address, uint64_t *id_r,
	                        char **secret_r);
	int (*account_list)(struct store *store, const char *domain,
	                    void (*cb)(void *ctx, const struct store_account_info *info),
	                    void *ctx);
	/* info_r->address is left for the caller to fill. */
	int (*account_lookup)(struct store *store, const char *address, uint64_t *id_r,
	                      char **password_hash_r, struct store_account_info *info_r);
	int (*account_usage)(struct store *store, uint64_t account_id, uint64_t *quota_r,
	                     uint64_t *used_r);
	int (*account_set_message_limit)(struct store *store, const char *address, uint64_t limit,
	                                 const char **error_r);
	int (*account_limits)(struct store *store, uint64_t account_id,
	                      struct store_account_limits *limits_r);
	/* 1 with the account's address (malloc'd), 0 no such account, -1 error. */
	int (*account_address)(struct store *store, uint64_t account_id, char **address_r);
	/* 1 with the id of the account that has exactly this address, 0 none, -1 error. */
	int (*account_find)(struct store *store, const char *address, uint64_t *id_r);

	int (*alias_add)(struct store *store, const char *alias, const char *target,
	                 const char **error_r);
	int (*alias_del)(struct store *store, const char *alias, const char *target,
	                 const char **error_r);
	int (*alias_list)(struct store *store,
	                  void (*cb)(void *ctx, const char *alias, const char *target), void *ctx);
	/* Call cb for every target of exactly this alias. Returns how many (0: no such alias)
	 * or -1. The backend finishes its query before returning, so cb may not call back. */
	int (*alias_targets)(struct store *store, const char *alias,
	                     void (*cb)(void *ctx, const char *target), void *ctx);

	/* store.h's leases; now is the clock. */
	int (*lease_take)(struct store *store, const char *name, const char *owner, int64_t now,
	                  unsigned ttl);
	void (*lease_release)(struct store *store, const char *name, const char *owner);

	/* Writer thread only: apply every item in queue order in ONE write transaction,
	 * durably; all or nothing (-1: nothing committed). A delivery: per account the next
	 * INBOX UID and MODSEQ, the entry, used bytes; per remote recipient one queue row. An
	 * expunge: per UID present its entry goes and a tombstone (uid, modseq) is written, the
	 * mailbox's HIGHESTMODSEQ goes up once (the tombstones' modseq), used bytes go down by
	 * the sizes; a missing mailbox only sets no_mailbox. Appends, flags, copies and mailbox
	 * operations as store.h says; one the backend refuses (item->refused) leaves no trace.
	 * A new message row gets its summary texts. Every mailbox whose HIGHESTMODSEQ went up,
	 * or which was created, deleted or renamed, goes to changes (the writer drops them when
	 * this returns -1). Last, the message rows that expunges and deletions left
	 * unreferenced are deleted (so a delivery in the same transaction keeps its row), and
	 * after the commit removed_cb names each one. */
	int (*commit)(struct store *store, struct store_commit_item *items, size_t count,
	              store_blob_removed_cb *removed_cb, void *ctx, struct store_changes *changes,
	              const char **error_r);

	/* 1 listed (possibly nothing), 0 no such account or mailbox, -1 error. */
	int (*mail_list)(struct store *store, const char *address, const char *mailbox,
	                 void (*cb)(void *ctx, const struct store_entry_row *row), void *ctx);
	/* 1 with the message's content address and size, 0 no such message, -1 error. */
	int (*mail_locate)(struct store *store, const char *address, const char *mailbox,
	                   uint32_t uid, char sha256_r[BLOB_HEX_LEN + 1], uint64_t *size_r,
	                   int *fd_r);
	/* As store_mailbox_snapshot(); mailbox is the exact stored name. */
	int (*mailbox_snapshot)(struct store *store, uint64_t account_id, const char *mailbox,
	                        struct store_mailbox_status *status_r,
	                        void (*cb)(void *ctx, const struct store_entry *entry), void *ctx);
	/* As mail_locate, by account id; mailbox is the exact stored name; want as
	 * store_message_open_want(). Both set *fd_r to a copy of a body stored in the
	 * database (blob_memfd(), or a file of its chunks), else to -1. */
	int (*message_locate)(struct store *store, uint64_t account_id, const char *mailbox,
	                      uint32_t uid, const struct store_want *want,
	                      char sha256_r[BLOB_HEX_LEN + 1], uint64_t *size_r, int *fd_r);

	/* In one read snapshot: every mailbox of the account (name, special-use text or
	 * NULL) and every subscribed name, in any order. 1, 0 no such account, -1. */
	int (*mailbox_list)(struct store *store, uint64_t account_id,
	                    void (*mailbox_cb)(void *ctx, const char *name,
	                                       const char *special_use),
	                    void (*subscription_cb)(void *ctx, const char *name), void *ctx);
	/* The rest as the store.h functions; mailbox is the exact stored name. */
	int (*mailbox_exists)(struct store *store, uint64_t account_id, const char *mailbox);
	int (*mailbox_stats)(struct store *store, uint64_t account_id, const char *mailbox,
	                     struct store_mailbox_stats *stats_r);
	/* \Recent: the mailbox's UIDVALIDITY and the lowest UID of its entries stored since
	 * this store was opened (UIDNEXT when none). 1, 0 no such mailbox, -1. */
	int (*mailbox_recent_first)(struct store *store, uint64_t account_id, const char *mailbox,
	                            uint32_t *uidvalidity_r, uint32_t *first_r);
	/* Number of entries with a UID of at least uid. 1, 0 no such mailbox, -1. */
	int (*mailbox_count_from)(struct store *store, uint64_t account_id, const char *mailbox,
	                          uint32_t uid, uint32_t *count_r);
	int (*mailbox_keywords)(struct store *store, uint64_t account_id, const char *mailbox,
	                        char **keywords_r);
	/* store_tombstones_prune_wait()'s pass, on the writer thread (its connection). */
	int (*tombstones_prune)(struct store *store, int64_t cutoff, size_t limit,
	                        struct store_prune_result *r);
	int (*mailbox_changes)(struct store *store, uint64_t account_id, const char *mailbox,
	                       uint64_t since_modseq,
	                       void (*entry_cb)(void *ctx, const struct store_entry *entry),
	                       void (*expunged_cb)(void *ctx, uint32_t uid, uint64_t modseq),
	                       void *ctx, struct store_mailbox_status *status_r);
	/* As store_metadata_get(); mailbox is the exact stored name or "". */
	int (*metadata_get)(struct store *store, uint64_t account_id, const char *mailbox,
	                    const char *name, int depth,
	                    void (*cb)(void *ctx, const char *name, const void *value, size_t size),
	                    void *ctx);
	/* As store_acl_get(); mailbox is the exact stored name. */
	int (*acl_get)(struct store *store, uint64_t account_id, const char *mailbox,
	               void (*cb)(void *ctx, const char *identifier, unsigned rights), void *ctx);
	/* As store_acl_shared(); domain is "@domain" of address. */
	int (*acl_shared)(struct store *store, uint64_t account_id, const char *address,
	                  const char *domain,
	                  void (*cb)(void *ctx, uint64_t owner_id, const char *owner,
	                             const char *mailbox, unsigned rights),
	                  void *ctx);
	int (*message_summary)(struct store *store, uint64_t account_id, const char *mailbox,
	                       uint32_t uid, char **envelope_r, char **body_r,
	                       char **bodystructure_r);
	/* store_message_objects() (emailid from the content address) and SEARCH EMAILID's
	 * UIDs by content address. */
	int (*message_objects)(struct store *store, uint64_t account_id, const char *mailbox,
	                       uint32_t uid, struct store_message_objects *objects_r);
	int (*emailid_uids)(struct store *store, uint64_t account_id, const char *mailbox,
	                    const char *sha256, uint32_t **uids_r, size_t *count_r);
	/* store_search_text_uids() and store_search_unindexed_uids(). */
	int (*search_text_uids)(struct store *store, uint64_t account_id, const char *mailbox,
	                        const char *needle, bool body_only, uint32_t **uids_r,
	                        size_t *count_r);
	int (*search_unindexed_uids)(struct store *store, uint64_t account_id, const char *mailbox,
	                             uint32_t **uids_r, size_t *count_r);
	/* store_search_hdr_each() and store_search_hdr_unindexed_uids(). */
	int (*search_hdr_each)(struct store *store, uint64_t account_id, const char *mailbox,
	                       const char *prefilter, store_search_hdr_fn *fn, void *ctx);
	int (*search_hdr_unindexed_uids)(struct store *store, uint64_t account_id,
	                                 const char *mailbox, uint32_t **uids_r, size_t *count_r);
	/* On the writer thread: texts for a few contents after *cursor that have no
	 * search_texts row (fn as store_set_search_texter()), in one transaction; *cursor
	 * moves past them. Returns how many were looked at (0: none left), -1 error. */
	int (*search_backfill)(struct store *store, store_search_texter_fn *fn, void *ctx,
	                       size_t max, int64_t *cursor);

	/* As store.h; domain is lower-cased or NULL. */
	int (*queue_list)(struct store *store, const char *domain,
	                  void (*cb)(void *ctx, const struct store_queue_info *info), void *ctx);
	/* 1 with *entry_r (its path set from messages_dir), 0, -1. */
	int (*queue_show)(struct store *store, uint64_t id, struct store_queue_entry **entry_r);
	int (*queue_next_due)(struct store *store, int64_t *when_r);
	/* As store.h's store_tlsrpt_list(). */
	int (*tlsrpt_list)(struct store *store, int64_t day, const char *domain,
	                   void (*cb)(void *ctx, const struct store_tlsrpt_row *row), void *ctx);
	/* As store.h's store_dmarc_list(). */
	int (*dmarc_list)(struct store *store, int64_t day, const char *domain,
	                  void (*cb)(void *ctx, const struct store_dmarc_row *row), void *ctx);

	/* Delete message rows that no mailbox entry and no queue row references. */
	int (*message_gc)(struct store *store, store_blob_removed_cb *removed_cb, void *ctx);
	/* 1 when a message row has this content address, 0 not, -1 error. */
	int (*message_exists)(struct store *store, const char *sha256);
	/* store_export() and store_import(). */
	int (*export_dump)(struct store *store, FILE *out, const char **error_r);
	int (*import_dump)(struct store *store, FILE *in, const char **error_r);
	int (*check)(struct store *store, void (*problem)(void *ctx, const char *text), void *ctx,
	             const char **error_r);
};

struct store_pending;  /* store_writer.c's queue entry */
struct store_read_job; /* store_reader.c's */
struct store_lease;    /* store.c's */

/* The common part; a backend embeds it as the first member of its own struct. */
struct store {
	const struct store_vfuncs *v;
	char *data_dir;
	char *messages_dir;
	char *tmp_dir;
	atomic_uint_fast64_t spool_seq;
	/* store_acl_version(): moved by every ACL change told (store_watch_notify()) */
	atomic_uint_fast64_t acl_version;
	int lock_fd;    /* posthorn.lock, held shared while open (see store_lock()) */
	bool exclusive; /* we were alone at open: orphan cleanup allowed */
	/* Bodies up to this size are stored in the database (store_set_inline_max()). */
	atomic_uint_fast64_t inline_max;
	/* store_space.c: when data_dir's file system was last measured (CLOCK_MONOTONIC
	 * milliseconds; 0 never) and what it had free (UINT64_MAX until known). */
	atomic_int_fast64_t space_at;
	atomic_uint_fast64_t space_avail, space_inodes;
	atomic_bool space_failing; /* the last statvfs failed (logged once per streak) */
	atomic_bool space_low;     /* below the min_free last asked about (logged when it flips) */
	/* Set by init: the database is shared by several nodes, so every body is stored in
	 * it (a file under one node's data directory would be missing on the others). */
	bool shared;

	/* Held from placing message files until their commit and from deleting message rows
	 * until their files are gone (writer batches with expunges, account deletion), so a
	 * file that a delivery reuses is never unlinked under it. Taken before any database
	 * lock. */
	pthread_mutex_t blob_lock;
	/* Writer thread only: fan-out directories (messages/xx/) whose names this process made
	 * durable by syncing messages/. One found already made is synced once too: a crash may
	 * have come between its mkdir and that sync (store_writer_place_file()). */
	bool fanout_synced[BLOB_FANOUT_COUNT];

	/* Queue of deliveries and expunges, consumed by the writer thread (store_writer.c). */
	pthread_mutex_t queue_lock;
	pthread_cond_t queue_cond;
	struct store_pending *queue_head, *queue_tail;
	bool stopping;
	bool writer_started;
	pthread_t writer;
	/* The summarizer (store_set_summarizer()), under queue_lock. */
	store_summarizer_fn *summarizer;
	void *summarizer_ctx;
	/* The search index's texter (store_set_search_texter()), under queue_lock. */
	store_search_texter_fn *search_texter;
	void *search_texter_ctx;
	size_t search_texter_max;
	/* The backfill: contents after this messages.id are still to look at; done when a
	 * pass found none (both reset by store_set_search_texter()). */
	int64_t search_backfill_cursor;
	bool search_backfill_done;
	/* The queue hook (store_set_queue_hook()), under queue_lock. */
	store_queue_hook_fn *queue_hook;
	void *queue_hook_ctx;
	/* Tombstone pruning by the writer thread (store_writer.c), under queue_lock: the
	 * retention (0 none), when the next periodic pass is due (0 never), and the passes
	 * store_tombstones_prune_wait() asked for. */
	uint64_t tombstone_retention;
	unsigned prune_interval; /* seconds */
	time_t prune_due;
	struct store_prune_req *prune_reqs;

	/* Watches (store_watch.c), under their own lock, which is never held while a watch
	 * callback runs; watch_cond signals the end of a round of callbacks. */
	pthread_mutex_t watch_lock;
	pthread_cond_t watch_cond;
	struct store_watch **watches; /* STORE_WATCH_BUCKETS lists, by account id */

	/* Reads that may wait (store_reader.c), under pool_lock: the reader threads and
	 * their queue of jobs. */
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;
	struct store_read_job *pool_head, *pool_tail;
	bool pool_stopping;
	unsigned pool_wanted; /* store_set_read_threads(); 0 = by the engine */
	unsigned pool_count;  /* threads running */
	pthread_t pool_tids[STORE_READ_THREADS_MAX];

	/* Leases this process holds (store.c), under lease_lock. */
	pthread_mutex_t lease_lock;
	struct store_lease *leases;

	/* The thread that hands other nodes' changes to the watches, besides the writer
	 * (set by the backend; store_watch.c treats both as dispatchers). */
	pthread_t notifier;
	bool notifier_started;

	/* \Recent boundaries (store_recent.c), under recent_lock. */
	pthread_mutex_t recent_lock;
	struct store_recent **recent; /* STORE_RECENT_BUCKETS lists */

	/* Snapshots of large mailboxes kept between SELECTs (store_snapcache.c). */
	struct store_snapcache *snapcache;
};

/* Renew every lease this process holds (a thread of the backend calls it regularly; on
 * a store several nodes share). */
void store_lease_renew_all(struct store *store);
/* The reader threads (store_reader.c): set up; stop after finishing every queued read. */
void store_reader_init(struct store *store);
void store_reader_stop(struct store *store);

/* \Recent boundaries (store_recent.c): set up and tear down. */
/* store_snapcache.c: store_mailbox_snapshot() through the cache; mailbox is the exact
 * stored name, cb not NULL. */
void store_snapcache_init(struct store *store);
void store_snapcache_deinit(struct store *store);
/* Entries the cache holds (for tests). */
size_t store_snapcache_entries(struct store *store);
int store_snapcache_snapshot(struct store *store, uint64_t account_id, const char *mailbox,
                             struct store_mailbox_status *status_r,
                             void (*cb)(void *ctx, const struct store_entry *entry), void *ctx);
void store_recent_init(struct store *store);
void store_recent_deinit(struct store *store);

/* The writer thread (store_writer.c). Start it once the store is open: 0, or -1 with
 * *error_r. Stop: finish everything queued (callbacks run), then join; harmless when it
 * was never started. */
int store_writer_start(struct store *store, const char **error_r);
void store_writer_stop(struct store *store);
/* Queue a delivery (arguments unchecked: the writer checks and reports them). */
/* Queue a policy write; the writer frees item's strings (malloc'd) when done. */
void store_writer_policy(struct store *store, const struct store_commit_policy *item);
void store_writer_deliver(struct store *store, struct store_delivery *delivery,
                          store_delivery_cb *cb, void *ctx);
/* Queue an expunge of the mailbox with this exact stored name (copied). */
void store_writer_expunge(struct store *store, struct store_expunge *op, const char *mailbox,
                          store_expunge_cb *cb, void *ctx);
/* Queue the other writes. Names are normalised (copied). refuse is NULL, or the static
 * STORE_ERROR_* string of a check that already failed: then nothing is committed and the
 * writer reports it (consuming an append's spool files) in queue order. */
void store_writer_append(struct store *store, struct store_append *op, const char *mailbox,
                         const char *replace, const char *refuse, store_append_cb *cb, void *ctx);
void store_writer_flags(struct store *store, struct store_flags *op, const char *mailbox,
                        const char *refuse, store_flags_cb *cb, void *ctx);
void store_writer_copy(struct store *store, struct store_copy *op, const char *mailbox,
                       const char *target, const char *refuse, store_copy_cb *cb, void *ctx);
void store_writer_mailbox(struct store *store, struct store_mailbox_op *op, const char *name,
                          const char *new_name, const char *refuse, store_mailbox_cb *cb,
                          void *ctx);
void store_writer_queue(struct store *store, struct store_queue_op *op, const char *refuse,
                        store_queue_cb *cb, void *ctx);
/* The domain part of a recipient for the queue: after the last '@', lower-cased, into out
 * (STORE_ADDRESS_MAX + 1 octets). */
void store_queue_domain(const char *rcpt, char *out);

/* Format an error message into this thread's error buffer and return it (valid until the
 * next store call on the same thread). */
const char *store_error_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A caller of a _wait form (store_deliver_wait(), store_queue_wait(), ...) blocks on one of
 * these until the writer's callback signals it (store.c). */
struct store_waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};
void store_waiter_init(struct store_waiter *w);
/* From the writer thread's callback. */
void store_waiter_signal(struct store_waiter *w);
/* Block until signalled, then release the waiter. */
void store_waiter_wait(struct store_waiter *w);

#endif
