/* The one storage API. Protocol modules and the CLI use only this header; the backend
 * (sqlite/ today, pg/ later) sits behind struct store_vfuncs in store_private.h and is
 * chosen at store_open(). Nothing here is SQLite-specific.
 *
 * Threads: every function may be called from any thread. Reads are cheap and synchronous.
 * Deliveries and expunges go to one writer thread that commits many of them in one
 * transaction (group commit) and calls back on the writer thread; callers bounce the result
 * to their own loop.
 *
 * Addresses are "local@domain"; the store compares them case-insensitively (it stores
 * them lower-cased). Returns follow STYLE.md: 0 ok / -1 error, or 1/0/-1 for yes/no/error;
 * an error_r string is static or lives until the next call on the same thread. */
#ifndef POSTHORN_STORE_STORE_H
#define POSTHORN_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/* Open (creating if needed) the store in data_dir: the database, the message directory,
 * schema migrations, removal of orphaned message files and temporary files, and the writer
 * thread. Returns 0, or -1 with *error_r. */
int store_open(const char *data_dir, struct store **store_r, const char **error_r)
    __attribute__((warn_unused_result));
/* Finish every queued delivery and expunge (their callbacks run), stop the writer, close. Accepts
 * NULL and sets *store to NULL. */
void store_close(struct store **store);

/* A path in the store's temporary directory where a caller may create a new spool file
 * (message being received). Malloc'd; unique per call. The file must be handed to
 * store_deliver() or unlinked by the caller. */
char *store_spool_path_dup(struct store *store);

/* ---- domains ---- */
/* -1 with *error_r when the name is invalid or already present. */
int store_domain_add(struct store *store, const char *domain, const char **error_r);
/* -1 when absent or still in use by accounts or aliases. */
int store_domain_del(struct store *store, const char *domain, const char **error_r);
int store_domain_list(struct store *store, void (*cb)(void *ctx, const char *domain), void *ctx);
/* 1 when domain is one of ours, 0 not, -1 error. */
int store_domain_is_local(struct store *store, const char *domain);

/* ---- accounts ---- */
struct store_account_info {
	uint64_t id;
	const char *address;
	uint64_t quota;    /* bytes, 0 = unlimited */
	uint64_t used;     /* bytes of all messages in all its mailboxes */
	uint64_t messages; /* count in all mailboxes */
};
/* Create an account in an existing domain with INBOX, Drafts, Sent, Trash, Junk, Archive.
 * Its id is new: ids of deleted accounts are never handed out again (sessions and queued
 * expunges name accounts by id).
 * password_hash is an opaque string from auth/password.h. -1 when the domain is not local,
 * the address is taken (by an account or an alias) or invalid. */
int store_account_add(struct store *store, const char *address, const char *password_hash,
                      uint64_t quota, const char **error_r);
/* Remove the account, its mailboxes and entries (message files go when unreferenced). */
int store_account_del(struct store *store, const char *address, const char **error_r);
int store_account_set_password(struct store *store, const char *address, const char *password_hash,
                               const char **error_r);
int store_account_set_quota(struct store *store, const char *address, uint64_t quota,
                            const char **error_r);
/* All accounts (domain NULL) or those of one domain, ordered by address. */
int store_account_list(struct store *store, const char *domain,
                       void (*cb)(void *ctx, const struct store_account_info *info), void *ctx);
/* 1 found (fills what is non-NULL; *password_hash_r is malloc'd), 0 no such account, -1.
 * info_r->address points to storage valid until the next store call on this thread. */
int store_account_lookup(struct store *store, const char *address, uint64_t *id_r,
                         char **password_hash_r, struct store_account_info *info_r);
/* Quota state of one account by id: 1 found, 0 not, -1 error. */
int store_account_usage(struct store *store, uint64_t account_id, uint64_t *quota_r,
                        uint64_t *used_r);

/* ---- APOP (RFC 1939 §7): a shared secret kept in clear, because APOP needs it. ---- */
/* Longest APOP secret accepted, in octets. */
#define STORE_APOP_SECRET_MAX 1024
/* Set (secret != NULL) or clear (NULL) the account's APOP secret. -1 when no such account
 * (or the secret is empty or longer than STORE_APOP_SECRET_MAX). Clearing an account that
 * has none succeeds. */
int store_account_set_apop(struct store *store, const char *address, const char *secret,
                           const char **error_r);
/* 1 with *secret_r malloc'd (caller wipes and frees), 0 when the account has none or does not
 * exist, -1 error. Looked up by address (lower-cased like the others). *account_id_r is set
 * only on 1. */
int store_account_get_apop(struct store *store, const char *address, uint64_t *account_id_r,
                           char **secret_r);

/* ---- aliases ----
 * alias is "local@domain" or "@domain" (catch-all); target is an address whose domain is
 * local (an account or another alias). Several targets per alias are allowed. */
int store_alias_add(struct store *store, const char *alias, const char *target,
                    const char **error_r);
/* Remove one target (target != NULL) or all targets of alias. -1 when nothing matched. */
int store_alias_del(struct store *store, const char *alias, const char *target,
                    const char **error_r);
int store_alias_list(struct store *store,
                     void (*cb)(void *ctx, const char *alias, const char *target), void *ctx);

/* ---- recipient resolution (SMTP RCPT) ---- */
#define STORE_RCPT_MAX 64
struct store_rcpt {
	size_t count;
	uint64_t account_ids[STORE_RCPT_MAX]; /* distinct */
};
/* Resolve an address in a local domain to accounts. Order: an account with that address;
 * an alias with that address; the same two for the address without its "+tag" (the part
 * from the first '+' to '@' of the local part); the domain's catch-all "@domain". Aliases
 * expand recursively (depth limit 8; loops ignored). Returns 1 with *rcpt_r filled (count
 * >= 1), 0 when the address resolves to no account, -1 error. */
int store_resolve(struct store *store, const char *address, struct store_rcpt *rcpt_r);
/* May account_id send as address? 1 when address is the account's own address (with or
 * without +tag) or an alias (not a catch-all) that resolves to it; 0 no; -1 error. */
int store_address_owned(struct store *store, uint64_t account_id, const char *address);

/* ---- delivery ---- */
struct store_delivery {
	/* in: set by the caller; must stay valid until the callback */
	const char *spool_path;   /* complete message bytes; the store takes the file */
	const char *mail_from;    /* envelope sender, "" for the null sender */
	const uint64_t *accounts; /* local recipients' account ids (duplicates ignored) */
	size_t account_count;
	const char *const *remote; /* non-local recipients: go to the outbound queue */
	size_t remote_count;
	int64_t received_at;        /* unix seconds: the message's internal date */
	const char *hdr_from;       /* From: header (decoded as-is, may be NULL) */
	const char *hdr_subject;    /* Subject: header (may be NULL) */
	const char *hdr_message_id; /* Message-ID: header (may be NULL) */
	/* out: valid in the callback */
	int result;        /* 0 stored durably (fsynced, committed), -1 not stored */
	const char *error; /* for result -1: a static string, valid for ever (the
	                    * details are logged) */
	uint64_t size;     /* bytes stored */
};
typedef void store_delivery_cb(struct store_delivery *delivery, void *ctx);
/* Queue a delivery to INBOX of each account (and to the outbound queue for remote). The
 * message file is fsynced, renamed to its content address (stored once however many
 * recipients) and committed in the same transaction as other pending deliveries; UIDs and
 * MODSEQs are allocated in that transaction. cb runs on the writer thread after the commit
 * is durable (or failed). The spool file is consumed either way. */
void store_deliver(struct store *store, struct store_delivery *delivery, store_delivery_cb *cb,
                   void *ctx);
/* store_deliver() and wait for the result (CLI, tests). Returns delivery->result. Never
 * call it from a writer callback (the writer thread would wait for itself). */
int store_deliver_wait(struct store *store, struct store_delivery *delivery);

/* ---- reading ---- */
struct store_message_info {
	uint32_t uid;
	const char *flags; /* space-separated, e.g. "\\Seen \\Flagged", "" when none */
	uint64_t size;
	int64_t internal_date;
	const char *mail_from; /* envelope sender */
	const char *hdr_from;
	const char *subject;
};
/* Messages of a mailbox (by name, "INBOX" case-insensitive) in UID order.
 * 1 ok, 0 no such account or mailbox, -1 error. */
int store_mail_list(struct store *store, const char *address, const char *mailbox,
                    void (*cb)(void *ctx, const struct store_message_info *info), void *ctx);
/* Open the stored bytes of one message read-only. 1 with *fd_r (caller closes) and
 * *size_r, 0 no such message (or expunged meanwhile), -1 error. */
int store_mail_open(struct store *store, const char *address, const char *mailbox, uint32_t uid,
                    int *fd_r, uint64_t *size_r);

/* ---- mailbox contents by account id (POP3 now, IMAP later) ---- */
struct store_entry {
	uint32_t uid;
	uint64_t size; /* octets stored (what RETR sends before CRLF/dot-stuffing) */
	int64_t internal_date;
	unsigned flags; /* STORE_FLAG_* bits */
	uint64_t modseq;
};
/* System flags (RFC 9051 §2.3.2); these are the bits the backend stores. */
#define STORE_FLAG_SEEN (1u << 0)
#define STORE_FLAG_ANSWERED (1u << 1)
#define STORE_FLAG_FLAGGED (1u << 2)
#define STORE_FLAG_DELETED (1u << 3)
#define STORE_FLAG_DRAFT (1u << 4)
struct store_mailbox_status {
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t messages;
};
/* A consistent snapshot (one read transaction) of a mailbox of account_id, by name ("INBOX"
 * case-insensitive): the status, and every entry in UID order through cb (cb may be NULL; it
 * runs inside the read transaction, so keep it short; store reads it makes on this thread see
 * the same snapshot). *status_r is filled before the first cb. 1 ok, 0 no such mailbox (or
 * account), -1 error. */
int store_mailbox_snapshot(struct store *store, uint64_t account_id, const char *mailbox,
                           struct store_mailbox_status *status_r,
                           void (*cb)(void *ctx, const struct store_entry *entry), void *ctx);
/* Open one message's stored bytes read-only. 1 (*fd_r to close, *size_r), 0 no such message
 * (e.g. expunged meanwhile), -1 error. */
int store_message_open(struct store *store, uint64_t account_id, const char *mailbox, uint32_t uid,
                       int *fd_r, uint64_t *size_r);

/* ---- expunge: removes entries atomically, through the writer thread ---- */
struct store_expunge {
	/* in (valid until the callback) */
	uint64_t account_id;
	const char *mailbox;  /* by name, "INBOX" case-insensitive */
	const uint32_t *uids; /* any order; duplicates and 0 are ignored */
	size_t uid_count;
	/* out */
	int result;        /* 0 committed (durable), -1 not */
	const char *error; /* for result -1: one of the static STORE_EXPUNGE_* strings
	                    * (details are logged), valid for ever */
	uint32_t expunged; /* entries actually removed (UIDs already gone are ignored) */
	uint64_t freed;    /* octets subtracted from the account's used bytes */
};
/* store_expunge.error values. */
#define STORE_EXPUNGE_NO_MAILBOX "no such mailbox"
#define STORE_EXPUNGE_FAILED "expunge failed (storage error)"
typedef void store_expunge_cb(struct store_expunge *op, void *ctx);
/* Queue the removal of those UIDs from the mailbox: one transaction that deletes the
 * entries, records expunge tombstones (uid, modseq) for QRESYNC, bumps the mailbox's
 * HIGHESTMODSEQ once, subtracts their sizes from the account's used bytes (quota frees at
 * once), and drops message rows/files that nothing references any more. cb runs on the
 * writer thread after the commit (same rules as store_deliver). Expunges and deliveries
 * commit in the order they were queued (they may share a group commit); a mailbox that does
 * not exist gives result -1. UIDs are never reused: UIDNEXT does not go back. With no UID to
 * remove, nothing changes (no MODSEQ bump) and result is 0. */
void store_expunge(struct store *store, struct store_expunge *op, store_expunge_cb *cb, void *ctx);
/* store_expunge() and wait for the result (CLI, tests). Returns op->result. Never call it
 * from a writer callback (the writer thread would wait for itself). */
int store_expunge_wait(struct store *store, struct store_expunge *op);

/* ---- outbound queue ---- */
struct store_queue_info {
	uint64_t id;
	const char *mail_from;
	const char *rcpt;
	uint64_t size;
	int64_t created;
	int64_t next_attempt;
	unsigned attempts;
	const char *last_error; /* "" when none */
};
int store_queue_list(struct store *store,
                     void (*cb)(void *ctx, const struct store_queue_info *info), void *ctx);

/* ---- maintenance ---- */
/* Schema version of the open store (number of migrations applied), or -1 on error. Added
 * for `posthorn init`/diagnostics and for tests that check migrations are applied once. */
int store_schema_version(struct store *store);

#endif
