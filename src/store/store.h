/* The one storage API. Protocol modules and the CLI use only this header; the backend
 * (sqlite/ today, pg/ later) sits behind struct store_vfuncs in store_private.h and is
 * chosen at store_open(). Nothing here is SQLite-specific.
 *
 * Threads: every function may be called from any thread. Reads are cheap and synchronous.
 * Writes of mailbox contents (deliveries, appends, expunges, flags, copies, mailbox
 * operations) go to one writer thread that commits many of them in one transaction (group
 * commit) and calls back on the writer thread; callers bounce the result to their own
 * loop. Watches (store_watch()) tell sessions which mailboxes a commit changed.
 *
 * Addresses are "local@domain"; the store compares them case-insensitively (it stores
 * them lower-cased). Returns follow STYLE.md: 0 ok / -1 error, or 1/0/-1 for yes/no/error;
 * an error_r string is static or lives until the next call on the same thread. */
#ifndef POSTHORN_STORE_STORE_H
#define POSTHORN_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct store;

/* Open (creating if needed) the store in data_dir: the database, the message directory,
 * schema migrations, removal of orphaned message files and temporary files, and the writer
 * thread. Returns 0, or -1 with *error_r. */
int store_open(const char *data_dir, struct store **store_r, const char **error_r)
    __attribute__((warn_unused_result));
/* The same with the database named: engine "sqlite" (NULL too: data_dir/posthorn.db) or
 * "postgresql" (url: a libpq connection string or URI; data_dir still holds spool files). */
int store_open_engine(const char *data_dir, const char *engine, const char *url,
                      struct store **store_r, const char **error_r)
    __attribute__((warn_unused_result));
/* Finish every queued delivery and expunge (their callbacks run), stop the writer, close. Accepts
 * NULL and sets *store to NULL. */
void store_close(struct store **store);

/* Message bodies up to this many octets are stored in the database itself (one fsync per
 * group commit for all of them); larger ones in content-addressed files. 0: every body in a
 * file. The default suits SQLite; set it right after store_open(). */
#define STORE_INLINE_MAX_DEFAULT (128 * 1024)
void store_set_inline_max(struct store *store, uint64_t max);
/* On a database that several nodes share (PostgreSQL) every body is in the database: one
 * up to this size in its message row, a larger one in rows of this size that a reader
 * fetches only as far as it needs them (store_message_open_want()). Part of the stored
 * format (chunk n holds octets from n times this size on): never change it. */
#define STORE_CHUNK_SIZE ((uint64_t)256 * 1024)

/* ---- free space (issue 13): new mail is refused before the disk is full ---- */
/* Free inodes below which the data directory counts as full whatever its free octets (a
 * file system out of inodes fails every spool file). */
#define STORE_SPACE_MIN_INODES 64
/* What the data directory's file system has free for an unprivileged writer (statvfs:
 * f_bavail x f_frsize octets, f_favail inodes; UINT64_MAX for a file system that does not
 * count inodes), measured at most once a second whichever thread asks (a busy server
 * makes one statvfs a second, not one per command). 0, or -1 when statvfs fails (logged
 * once until it works again). */
int store_space_free(struct store *store, uint64_t *avail_r, uint64_t *inodes_r);
/* Does the data directory's file system have fewer than min_free + size octets free, or
 * fewer than STORE_SPACE_MIN_INODES inodes? min_free 0: no check, never. A file system that
 * cannot be measured is not low (the writes themselves then report what fails). The
 * crossings of min_free itself are logged once each way (event=disk-low, event=disk-ok). */
bool store_space_low(struct store *store, uint64_t min_free, uint64_t size);

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
	uint64_t quota;         /* bytes, 0 = unlimited */
	uint64_t used;          /* bytes of all messages in all its mailboxes */
	uint64_t messages;      /* count in all mailboxes */
	uint64_t message_limit; /* most messages in all mailboxes, 0 = unlimited */
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
/* Set the account's message-count limit (0 = unlimited): deliveries, APPEND and COPY that
 * would take its messages in all mailboxes above it are refused like the storage quota. */
int store_account_set_message_limit(struct store *store, const char *address, uint64_t limit,
                                    const char **error_r);
struct store_account_limits {
	uint64_t quota, used;             /* bytes; quota 0 = unlimited */
	uint64_t message_limit, messages; /* messages is counted only when message_limit > 0 */
};
/* Both limits of one account by id and what uses them: 1 found, 0 not, -1 error. */
int store_account_limits(struct store *store, uint64_t account_id,
                         struct store_account_limits *limits_r);
/* Would count more messages of size octets go over one of the limits? */
bool store_account_limits_exceeded(const struct store_account_limits *l, uint64_t size,
                                   uint64_t count);
/* The address of one account by id: 1 with *address_r (malloc'd, the caller frees), 0 no
 * such account, -1 error. */
int store_account_address(struct store *store, uint64_t account_id, char **address_r)
    __attribute__((warn_unused_result));
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
/* RFC 3461 DSN parameters. RET= of MAIL (§4.3): */
enum store_dsn_ret { STORE_DSN_RET_UNSPEC = 0, STORE_DSN_RET_FULL, STORE_DSN_RET_HDRS };
/* NOTIFY= of RCPT (§4.1) as bits; 0 = not given (the DSN code then acts as for
 * FAILURE,DELAY). NEVER is never combined with the others. */
#define STORE_NOTIFY_SUCCESS (1u << 0)
#define STORE_NOTIFY_FAILURE (1u << 1)
#define STORE_NOTIFY_DELAY (1u << 2)
#define STORE_NOTIFY_NEVER (1u << 3)
/* Longest ENVID and ORCPT values accepted (RFC 3461 §4.4 and §4.2), in octets. */
#define STORE_ENVID_MAX 100
#define STORE_ORCPT_MAX 500
/* The DSN parameters of one remote recipient. */
struct store_remote_dsn {
	unsigned notify;   /* STORE_NOTIFY_* bits, 0 not given */
	const char *orcpt; /* ORCPT= as sent ("rfc822;" xtext), NULL none */
};
struct store_delivery {
	/* in: set by the caller; must stay valid until the callback */
	const char *spool_path;   /* complete message bytes; the store takes the file */
	const char *mail_from;    /* envelope sender, "" for the null sender */
	const uint64_t *accounts; /* local recipients' account ids (duplicates ignored) */
	size_t account_count;
	const char *const *remote; /* non-local recipients: go to the outbound queue */
	size_t remote_count;
	/* DSN parameters (RFC 3461) for the outbound queue; all optional (zero/NULL). */
	const struct store_remote_dsn *remote_dsn; /* NULL, or remote_count of them */
	enum store_dsn_ret ret;                    /* MAIL RET= */
	const char *envid;                         /* MAIL ENVID= (xtext as sent); NULL none */
	/* MAIL parameters the next hop must see again (queued with the remote recipients). */
	bool smtputf8;   /* SMTPUTF8 (RFC 6531) */
	bool eightbit;   /* BODY=8BITMIME (RFC 6152) */
	bool requiretls; /* REQUIRETLS (RFC 8689) */
	bool junk;       /* deliver to each account's \Junk special-use folder instead of INBOX */
	const uint64_t *junk_accounts; /* and these accounts' copies to \Junk (per-recipient */
	size_t junk_account_count;     /* policy); NULL/0 none */
	int64_t received_at;           /* unix seconds: the message's internal date */
	const char *hdr_from;          /* From: header (decoded as-is, may be NULL) */
	const char *hdr_subject;       /* Subject: header (may be NULL) */
	const char *hdr_message_id;    /* Message-ID: header (may be NULL) */
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
/* Longest object id (RFC 8474 objectid: 1-255 of [A-Za-z0-9_-]) the store hands out: a
 * MAILBOXID is 32 hex digits (random, set when the mailbox row is made), an EMAILID "M"
 * and the 64 hex digits of the message's content address. */
#define STORE_OBJECTID_MAX 72
struct store_entry {
	uint32_t uid;
	uint64_t size; /* octets stored (what RETR sends before CRLF/dot-stuffing) */
	int64_t internal_date;
	unsigned flags; /* STORE_FLAG_* bits */
	uint64_t modseq;
	const char *keywords; /* space-separated, "" when none; valid during the callback */
	int64_t save_date;    /* SAVEDATE (RFC 8514): when it was saved into this mailbox */
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
	uint32_t messages; /* a snapshot's entries; 0 from store_mailbox_changes() */
	char mailboxid[STORE_OBJECTID_MAX + 1]; /* MAILBOXID (RFC 8474); stays over renames */
	/* The highest MODSEQ among the mailbox's tombstones pruned so far (0: none): the
	 * tombstones above it are all kept, so only a reader whose MODSEQ is at least this
	 * learns every expunge since from store_mailbox_changes(); one below it must treat
	 * every UID it knows that is not in the mailbox as expunged (RFC 7162 §3.2.5). */
	uint64_t tombstone_floor;
};
/* A consistent snapshot (one read transaction) of a mailbox of account_id, by name ("INBOX"
 * case-insensitive, as the first level of every name): the status, and every entry in UID order
 * through cb (cb may be NULL; it runs inside the read transaction, so keep it short; store reads it
 * makes on this thread see the same snapshot). *status_r is filled before the first cb. 1 ok, 0 no
 * such mailbox (or account), -1 error. */
int store_mailbox_snapshot(struct store *store, uint64_t account_id, const char *mailbox,
                           struct store_mailbox_status *status_r,
                           void (*cb)(void *ctx, const struct store_entry *entry), void *ctx);
/* Open one message's stored bytes read-only. 1 (*fd_r to close, *size_r), 0 no such message
 * (e.g. expunged meanwhile), -1 error. */
int store_message_open(struct store *store, uint64_t account_id, const char *mailbox, uint32_t uid,
                       int *fd_r, uint64_t *size_r);
/* What a reader will read of a message: its header (through the blank line that ends it,
 * as far as the first "\n\n" or "\n\r\n"; all of a message without one) and/or the
 * octets [off, off + len). */
struct store_want {
	bool header;
	uint64_t off, len; /* len 0: no range */
};
/* As store_message_open(), for a reader that reads only what want names (NULL: all). The
 * other octets of the file may read as zeros: a body kept in chunk rows is fetched only
 * that far. */
int store_message_open_want(struct store *store, uint64_t account_id, const char *mailbox,
                            uint32_t uid, const struct store_want *want, int *fd_r,
                            uint64_t *size_r);

/* The octets an IMAP URL names (RFC 5092 §5; CATENATE, URLFETCH, BURL): message uid of
 * mailbox of account_id (whose UIDVALIDITY must be uidvalidity unless that is 0), section
 * (NULL or "" for the whole message; "HEADER", "TEXT", part numbers "1.2", and after them
 * ".MIME", ".HEADER", ".TEXT"; HEADER.FIELDS is not taken) and, with partial, the window
 * [partial_off, partial_off + partial_len) of those octets (partial_len 0: to the end). 1
 * with *fd_r (the message file, to close) and the range [*off_r, *off_r + *len_r); 0 no
 * such mailbox, UIDVALIDITY, message or section; -1 error. store_url.c. */
int store_message_section(struct store *store, uint64_t account_id, const char *mailbox,
                          uint32_t uidvalidity, uint32_t uid, const char *section, bool partial,
                          uint64_t partial_off, uint64_t partial_len, int *fd_r, uint64_t *off_r,
                          uint64_t *len_r);

/* ---- URLAUTH (RFC 4467 §6) with the INTERNAL mechanism (store_urlauth.c) ---- */
/* Each mailbox has a random 128-bit access key, and each account one more that RESETKEY
 * without a mailbox changes; both live in the store (created on first use). A token is
 * the hex HMAC-SHA256 of the URL's rump (RFC 4467 §2.1) under the two keys. */
#define STORE_URLAUTH_TOKEN_LEN 64
/* The token of rump[0..rump_len) for mailbox of account_id into token_r (hex, NUL-ended).
 * 1, 0 no such mailbox, -1 error. */
int store_urlauth_token(struct store *store, uint64_t account_id, const char *mailbox,
                        const char *rump, size_t rump_len,
                        char token_r[STORE_URLAUTH_TOKEN_LEN + 1]);
/* Is token (hex, any case) that token? 1 yes, 0 no (or no such mailbox), -1 error. */
int store_urlauth_verify(struct store *store, uint64_t account_id, const char *mailbox,
                         const char *rump, size_t rump_len, const char *token);
/* RESETKEY (RFC 4467 §7.1): a new key for mailbox, or with mailbox NULL for the account
 * (every URL of every mailbox stops working). 1, 0 no such mailbox, -1 error. */
int store_urlauth_reset(struct store *store, uint64_t account_id, const char *mailbox);

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
#define STORE_EXPUNGE_NO_MAILBOX "no such mailbox" /* = STORE_ERROR_NO_MAILBOX */
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

/* ==== IMAP: mailboxes, flags, copy/move, append, changes, watches ====
 *
 * Mailbox names are UTF-8 data (never paths) with hierarchy delimiter '/': no empty level
 * (no leading, trailing or doubled '/'), no control character (C0, DEL, C1), no '*' or '%'
 * (LIST wildcards), at most STORE_MAILBOX_NAME_MAX octets and STORE_MAILBOX_DEPTH_MAX levels.
 * A first level spelled "INBOX" in any case is INBOX ("inbox/x" is "INBOX/x"); every other
 * name is exact. The IMAP session converts modified UTF-7 and strips a trailing delimiter
 * of CREATE before calling here.
 *
 * Writes follow store_deliver(): an operation struct (in fields valid until the callback),
 * queued to the writer thread and committed in queue order with the other writes of its
 * group commit; cb runs on the writer thread after the commit (or failure) and the _wait
 * variant blocks for it (never call a _wait function from a writer callback). A refused
 * operation changes nothing and gives result -1 with error one of the STORE_ERROR_*
 * strings below (static, valid for ever; compare them with strcmp()).
 *
 * Modification sequences (RFC 7162): every commit that changes a mailbox raises its
 * HIGHESTMODSEQ; every entry it changed (new, flags, expunged) gets that value. UIDs and
 * HIGHESTMODSEQ of a mailbox only go up, UIDs are never reused. */

#define STORE_ERROR_NO_MAILBOX "no such mailbox"
#define STORE_ERROR_NO_TARGET "no such target mailbox"
#define STORE_ERROR_EXISTS "mailbox already exists"
#define STORE_ERROR_BAD_NAME "invalid mailbox name"
#define STORE_ERROR_INBOX "INBOX cannot be deleted"
#define STORE_ERROR_INFERIOR "a mailbox cannot be renamed below itself"
#define STORE_ERROR_OVERQUOTA "quota exceeded"
#define STORE_ERROR_LIMIT "too many mailboxes, subscriptions or keywords"
#define STORE_ERROR_BAD_KEYWORD "invalid keyword"
#define STORE_ERROR_INVALID "invalid request"
#define STORE_ERROR_METADATA_TOOMANY "too many metadata entries"
#define STORE_ERROR_FAILED "storage error"
#define STORE_ERROR_EXPUNGED "message already expunged"

/* Longest mailbox name in octets, deepest hierarchy in levels. */
#define STORE_MAILBOX_NAME_MAX 512
#define STORE_MAILBOX_DEPTH_MAX 32
/* Per account: mailboxes (parents included) and subscriptions. */
#define STORE_MAILBOXES_MAX 4096
#define STORE_SUBSCRIPTIONS_MAX 4096
/* Distinct keywords a mailbox may hold through store_flags()/store_append() (a copy brings
 * its keywords along even past the cap), and the longest keyword in octets. */
#define STORE_KEYWORDS_MAX 64
#define STORE_KEYWORD_LEN_MAX 128

/* Special-use attributes (RFC 6154). */
#define STORE_SPECIAL_ALL (1u << 0)
#define STORE_SPECIAL_ARCHIVE (1u << 1)
#define STORE_SPECIAL_DRAFTS (1u << 2)
#define STORE_SPECIAL_FLAGGED (1u << 3)
#define STORE_SPECIAL_JUNK (1u << 4)
#define STORE_SPECIAL_SENT (1u << 5)
#define STORE_SPECIAL_TRASH (1u << 6)

/* 1 when name is a valid mailbox name (see above), 0 not. For early checks in a session;
 * every operation checks again. */
int store_mailbox_name_valid(const char *name);
/* 1 when keyword is a valid keyword: an IMAP atom (RFC 9051 §9 flag-keyword; so no '\\'
 * anywhere: system flags are the STORE_FLAG_* bits) of at most STORE_KEYWORD_LEN_MAX
 * octets; 0 not. Keywords compare case-insensitively; a mailbox keeps the spelling it saw
 * first. */
int store_mailbox_keyword_valid(const char *keyword);

/* ---- listing ---- */
struct store_mailbox_info {
	const char *name;     /* valid during the callback */
	unsigned special_use; /* STORE_SPECIAL_* */
	/* A mailbox of that name exists (selectable). When false, the name is either a
	 * parent of existing mailboxes (has_children: \Noselect, RFC 9051 §6.3.9) or only a
	 * subscription (\NonExistent, RFC 5258). */
	bool exists;
	bool has_children; /* some existing mailbox is below it */
	bool subscribed;
};
/* Every name of the account in octet order: its mailboxes, the parents of mailboxes that
 * do not exist themselves (placeholders, e.g. after DELETE of a parent), and subscribed
 * names, from one read snapshot (cb runs after it ended). 1 ok, 0 no such account, -1. */
int store_mailbox_list(struct store *store, uint64_t account_id,
                       void (*cb)(void *ctx, const struct store_mailbox_info *info), void *ctx);

/* STATUS items (RFC 9051 §6.3.11, STATUS=SIZE RFC 8438) of one mailbox. */
struct store_mailbox_stats {
	uint32_t messages;
	uint32_t uidnext;
	uint32_t uidvalidity;
	uint32_t unseen;  /* entries without \Seen */
	uint32_t deleted; /* entries with \Deleted */
	uint32_t recent;  /* entries no session has claimed yet (store_recent_claim()) */
	uint64_t size;    /* sum of the entries' octets */
	uint64_t highestmodseq;
	uint64_t deleted_size;                  /* sum of the octets of entries with \Deleted */
	char mailboxid[STORE_OBJECTID_MAX + 1]; /* MAILBOXID (RFC 8474) */
};
/* Whether the mailbox exists, from its row alone (cheap at any size): 1, 0 no, -1 error. */
int store_mailbox_exists(struct store *store, uint64_t account_id, const char *mailbox);
/* 1 with *stats_r, 0 no such mailbox, -1 error. Reads every entry of the mailbox. */
int store_mailbox_stats(struct store *store, uint64_t account_id, const char *mailbox,
                        struct store_mailbox_stats *stats_r);
/* \Recent (RFC 3501 §2.3.2; IMAP4rev1 only, RFC 9051 dropped it). The store keeps, per
 * mailbox and in memory, the lowest UID no session has been told of yet (*first_r). With
 * claim, the boundary moves up to uidnext atomically: the caller's messages with UIDs in
 * [*first_r, uidnext) are recent to it and to no other session. Without claim (EXAMINE,
 * STATUS) nothing changes. A mailbox first met in this process starts at the first message
 * stored since the store was opened. uidvalidity is the caller's: a different one (the
 * mailbox was recreated) restarts the boundary. 1, 0 no such mailbox, -1 error. */
int store_recent_claim(struct store *store, uint64_t account_id, const char *mailbox,
                       uint32_t uidvalidity, uint32_t uidnext, bool claim, uint32_t *first_r);
/* The keywords the mailbox holds (for FLAGS/PERMANENTFLAGS), space-separated in the order
 * they were first used: 1 with *keywords_r malloc'd ("" when none), 0 no such mailbox, -1. */
int store_mailbox_keywords(struct store *store, uint64_t account_id, const char *mailbox,
                           char **keywords_r);

/* ---- creating, deleting, renaming, subscribing ---- */
enum store_mailbox_action {
	/* Create name with the special_use bits. Missing parents are created too (plain,
	 * RFC 9051 §6.3.4 SHOULD). -1 EXISTS (also for any spelling of INBOX), LIMIT, INVALID
	 * (no such account). */
	STORE_MAILBOX_CREATE,
	/* Delete name: its entries are expunged (quota freed, message files nothing else
	 * references removed) and the mailbox goes. Its children stay; the name is then listed
	 * as a \Noselect parent (RFC 9051 §6.3.5). -1 INBOX, NO_MAILBOX (also for a name that
	 * is only a parent placeholder). Subscriptions stay (RFC 9051 §6.3.7). */
	STORE_MAILBOX_DELETE,
	/* Rename name to new_name with every mailbox below it ("a/x" becomes "b/x"); missing
	 * parents of new_name are created; UIDVALIDITY, UIDs and MODSEQs stay; subscriptions of
	 * the moved names move along. Renaming INBOX (RFC 9051 §6.3.6) creates new_name with a
	 * new UIDVALIDITY, moves every INBOX entry there (same UIDs), expunges them from INBOX
	 * (tombstones) and leaves INBOX and its children in place. -1 NO_MAILBOX, EXISTS (new
	 * name or one of the moved children's new names taken), INFERIOR (new_name below
	 * name), LIMIT. */
	STORE_MAILBOX_RENAME,
	/* Subscribe name: any valid name, existing or not. Subscribing twice is ok. -1 LIMIT,
	 * INVALID (no such account). */
	STORE_MAILBOX_SUBSCRIBE,
	/* Unsubscribe name; ok also when it was not subscribed. */
	STORE_MAILBOX_UNSUBSCRIBE,
	/* Set or remove the metadata entries (RFC 5464) of name, or of the account itself
	 * (server entries) when name is "": all of them or none. -1 NO_MAILBOX,
	 * METADATA_TOOMANY (the account would hold more than metadata_max entries), INVALID
	 * (an entry name store_metadata_name_valid() refuses). */
	STORE_MAILBOX_METADATA,
	/* Change the rights (RFC 4314) of acl_identifier on name (see "access control" below):
	 * acl_mode says how acl_rights (STORE_ACL_* bits) apply; an identifier left with no
	 * rights loses its entry. -1 NO_MAILBOX, INVALID (identifier store_acl_identifier_valid()
	 * refuses, or no bits), LIMIT (more than STORE_ACL_MAX identifiers on the mailbox). */
	STORE_MAILBOX_ACL,
};
enum store_acl_mode { STORE_ACL_SET, STORE_ACL_ADD, STORE_ACL_REMOVE };
/* One metadata entry to write: value NULL removes it. Names are lower-cased by the store. */
struct store_metadata_entry {
	const char *name;
	const void *value;
	size_t size;
};
struct store_mailbox_op {
	/* in (valid until the callback) */
	enum store_mailbox_action action;
	uint64_t account_id;
	const char *name;
	const char *new_name;                        /* RENAME */
	unsigned special_use;                        /* CREATE: STORE_SPECIAL_* */
	const struct store_metadata_entry *metadata; /* METADATA */
	size_t metadata_count;
	uint32_t metadata_max;        /* METADATA: entries the account may hold in all */
	const char *acl_identifier;   /* ACL: lower-case, store_acl_identifier_valid() */
	unsigned acl_rights;          /* ACL: STORE_ACL_* bits */
	enum store_acl_mode acl_mode; /* ACL */
	/* out */
	int result;        /* 0 committed, -1 refused or failed */
	const char *error; /* for -1: a STORE_ERROR_* string (BAD_NAME for invalid names) */
	uint32_t expunged; /* DELETE: entries removed */
	uint64_t freed;    /* DELETE: octets subtracted from the account's used bytes */
	char mailboxid[STORE_OBJECTID_MAX + 1]; /* CREATE: the new mailbox's MAILBOXID */
};
typedef void store_mailbox_cb(struct store_mailbox_op *op, void *ctx);
/* Queue a mailbox operation (see enum store_mailbox_action); cb on the writer thread. */
void store_mailbox_change(struct store *store, struct store_mailbox_op *op, store_mailbox_cb *cb,
                          void *ctx);
/* store_mailbox_change() and wait. Returns op->result. */
int store_mailbox_change_wait(struct store *store, struct store_mailbox_op *op);

/* ---- metadata (RFC 5464) ---- */
/* Longest entry name in octets. */
#define STORE_METADATA_NAME_MAX 1024
/* Is name an entry name RFC 5464 §3.2 allows: "/private/" or "/shared/" (any case) and
 * more, printable US-ASCII without '*' and '%', no "//", no trailing '/', at most
 * STORE_METADATA_NAME_MAX octets? With root_ok also "/private" and "/shared" themselves
 * (what a GETMETADATA may ask for, with their children). */
bool store_metadata_name_valid(const char *name, bool root_ok);
/* The entries of mailbox (the account's server entries when mailbox is ""), in one read:
 * name itself (lower-case, valid with root_ok) and, with depth 1, the entries one level below it,
 * with depth -1 every entry below it, each through cb (name lower-case) in name order. 1 (possibly
 * none), 0 no such mailbox, -1 error. */
int store_metadata_get(struct store *store, uint64_t account_id, const char *mailbox,
                       const char *name, int depth,
                       void (*cb)(void *ctx, const char *name, const void *value, size_t size),
                       void *ctx);

/* ---- access control (RFC 4314) ----
 * Each mailbox has a list of (identifier, rights) entries; the owner has every right on
 * its mailboxes without an entry. An identifier is an account address ("bob@example.com"),
 * "@example.com" (every account of that domain), or "anyone" / "authenticated" (every
 * account: there are no anonymous sessions). A grantee's rights on a mailbox are the union
 * of the entries that name it. Entries hang on the mailbox row: they follow a RENAME and go
 * with a DELETE (and with the owner's account). */
#define STORE_ACL_LOOKUP (1u << 0)  /* l */
#define STORE_ACL_READ (1u << 1)    /* r */
#define STORE_ACL_SEEN (1u << 2)    /* s */
#define STORE_ACL_WRITE (1u << 3)   /* w */
#define STORE_ACL_INSERT (1u << 4)  /* i */
#define STORE_ACL_POST (1u << 5)    /* p */
#define STORE_ACL_CREATE (1u << 6)  /* k */
#define STORE_ACL_DELETE (1u << 7)  /* x */
#define STORE_ACL_DELMSG (1u << 8)  /* t */
#define STORE_ACL_EXPUNGE (1u << 9) /* e */
#define STORE_ACL_ADMIN (1u << 10)  /* a */
#define STORE_ACL_ALL ((1u << 11) - 1)
/* The rights in their RFC 4314 §2.1 order. */
#define STORE_ACL_LETTERS "lrswipkxtea"
/* Identifiers on one mailbox at most. */
#define STORE_ACL_MAX 256
/* Longest identifier in octets. */
#define STORE_ACL_IDENTIFIER_MAX 320
/* Parse a rights string: letters of STORE_ACL_LETTERS, and the obsolete virtual rights of
 * RFC 4314 §2.1.1 ("c" = "kx", "d" = "et"), any order, repeats allowed. 0 with *bits_r, -1
 * for any other character. */
int store_acl_rights_parse(const char *text, unsigned *bits_r) __attribute__((warn_unused_result));
/* The rights in bits as letters in STORE_ACL_LETTERS order into out (NUL-terminated). */
void store_acl_rights_string(unsigned bits, char out[sizeof(STORE_ACL_LETTERS)]);
/* Is identifier (already lower-case) one the store keeps: "anyone", "authenticated",
 * "@domain" or "local@domain", printable US-ASCII without space, at most
 * STORE_ACL_IDENTIFIER_MAX octets? */
bool store_acl_identifier_valid(const char *identifier);
/* Does identifier name the account address (lower-case)? */
bool store_acl_identifier_matches(const char *identifier, const char *address);
/* The entries of one mailbox of account_id, in identifier order, through cb (bits are
 * STORE_ACL_*). 1 (possibly none), 0 no such mailbox, -1 error. */
int store_acl_get(struct store *store, uint64_t account_id, const char *mailbox,
                  void (*cb)(void *ctx, const char *identifier, unsigned rights), void *ctx);
/* The rights of the account address (lower-case) on owner's mailbox: STORE_ACL_ALL when it
 * is the owner (account_id == owner_id), else the union of the matching entries. 1 with
 * *rights_r (possibly 0), 0 no such mailbox, -1 error. */
int store_acl_rights(struct store *store, uint64_t owner_id, const char *mailbox,
                     uint64_t account_id, const char *address, unsigned *rights_r);
/* Every mailbox of another account with an entry that names address (lower-case), ordered
 * by owner address and mailbox name; rights is the union of the entries naming it. 0 ok,
 * -1 error. */
int store_acl_shared(struct store *store, uint64_t account_id, const char *address,
                     void (*cb)(void *ctx, uint64_t owner_id, const char *owner,
                                const char *mailbox, unsigned rights),
                     void *ctx);

/* ---- reading changes ---- */
/* One read snapshot of a mailbox: *status_r (may be NULL), then through entry_cb (may be
 * NULL) every entry whose MODSEQ is above since_modseq in UID order, then through
 * expunged_cb (may be NULL) every UID expunged with a MODSEQ above since_modseq in UID
 * order (tombstones; they may name UIDs the caller never saw; complete only when
 * since_modseq is not below status_r->tombstone_floor, else pruned ones are missing: see
 * store_tombstones_prune_wait()). since_modseq 0 gives every entry. The callbacks run inside the
 * read transaction (keep them short; store reads they make on this thread see the same snapshot).
 * The IMAP session calls this after a watch notification and turns the result into FETCH and
 * EXPUNGE/VANISHED responses. 1 ok, 0 no such mailbox, -1 error. */
int store_mailbox_changes(struct store *store, uint64_t account_id, const char *mailbox,
                          uint64_t since_modseq,
                          void (*entry_cb)(void *ctx, const struct store_entry *entry),
                          void (*expunged_cb)(void *ctx, uint32_t uid, uint64_t modseq), void *ctx,
                          struct store_mailbox_status *status_r);

/* ---- tombstone retention (QRESYNC) ---- */
/* What one pruning pass did. */
struct store_prune_result {
	uint64_t removed;   /* tombstones removed */
	uint64_t mailboxes; /* mailboxes whose tombstone_floor was raised (or already there) */
	bool more;          /* the pass stopped at its limit: older tombstones may be left */
};
/* Most tombstones one periodic pass removes: one write transaction, so a backlog (the first
 * pass after an upgrade) does not hold the writer for long; the next pass follows at once. */
#define STORE_PRUNE_LIMIT 10000
/* Seconds between periodic passes, and before the first one after start. */
#define STORE_PRUNE_INTERVAL 3600
#define STORE_PRUNE_FIRST 60
/* One pruning pass, run by the writer thread in a write transaction of its own, and wait for
 * it: remove at most limit tombstones expunged at or before cutoff (unix seconds), oldest
 * first, and raise the tombstone_floor of each of their mailboxes to the highest MODSEQ
 * among them (store_mailbox_status). 0 (*result_r), -1 error (logged; nothing changed). */
int store_tombstones_prune_wait(struct store *store, int64_t cutoff, size_t limit,
                                struct store_prune_result *result_r);
/* Periodic pruning by the writer thread (`posthorn serve`, imap_expunge_retention): with
 * seconds > 0, tombstones expunged more than seconds ago go, STORE_PRUNE_LIMIT per pass,
 * every interval seconds (0: STORE_PRUNE_INTERVAL; the first pass STORE_PRUNE_FIRST
 * seconds, or interval if shorter, after the first call; a pass that hit its limit is
 * followed by the next one a second later); passes that removed something are logged.
 * 0 (the default of a store) keeps every tombstone as long as its mailbox. May be called
 * again (configuration reload). */
void store_set_tombstone_retention(struct store *store, uint64_t seconds, unsigned interval);

/* ---- flags ---- */
enum store_flags_mode {
	STORE_FLAGS_ADD,     /* +FLAGS */
	STORE_FLAGS_REMOVE,  /* -FLAGS */
	STORE_FLAGS_REPLACE, /* FLAGS */
};
/* One entry as a flags operation left it. */
struct store_flags_entry {
	uint32_t uid;
	unsigned flags;       /* STORE_FLAG_* now */
	const char *keywords; /* now, space-separated; valid during the callback */
	uint64_t modseq;      /* now */
	bool changed;         /* this operation changed it: modseq is op->modseq */
	bool modified;        /* refused by UNCHANGEDSINCE (RFC 7162 MODIFIED): not changed */
};
struct store_flags {
	/* in (valid until the callback) */
	uint64_t account_id;
	const char *mailbox;
	const uint32_t *uids; /* any order; duplicates, 0 and absent UIDs are ignored */
	size_t uid_count;
	enum store_flags_mode mode;
	unsigned flags;              /* STORE_FLAG_* */
	const char *const *keywords; /* valid keywords (else BAD_KEYWORD), any case */
	size_t keyword_count;
	bool conditional;         /* UNCHANGEDSINCE given (RFC 7162 §3.1.3) */
	uint64_t unchanged_since; /* then: entries whose MODSEQ is above it are not changed */
	/* Called once per UID present in the mailbox, ascending, after the commit and before
	 * the op callback (on the writer thread), with what the entry holds now. May be NULL. */
	void (*entry_cb)(void *entry_ctx, const struct store_flags_entry *entry);
	void *entry_ctx;
	/* out */
	int result;        /* 0 committed, -1 refused or failed (nothing changed) */
	const char *error; /* NO_MAILBOX, BAD_KEYWORD, LIMIT (more than STORE_KEYWORDS_MAX
	                    * keywords in the mailbox), INVALID, FAILED */
	uint64_t modseq;   /* the MODSEQ of the changed entries; 0 when none changed */
	uint32_t changed;  /* entries changed */
	uint32_t modified; /* entries refused by UNCHANGEDSINCE */
};
typedef void store_flags_cb(struct store_flags *op, void *ctx);
/* Queue a flag change: for each UID present, the system flags and keywords are added,
 * removed or replaced; an entry whose flags and keywords end up as they were keeps its
 * MODSEQ (changed false); all changed entries share one new MODSEQ (the mailbox's new
 * HIGHESTMODSEQ). With conditional, an entry whose MODSEQ is above unchanged_since is left
 * alone and reported modified. New keywords join the mailbox's list (case-insensitively;
 * the first spelling stays); removing a keyword never takes it off that list. */
void store_flags(struct store *store, struct store_flags *op, store_flags_cb *cb, void *ctx);
/* store_flags() and wait (entry_cb runs on the writer thread meanwhile). Returns
 * op->result. */
int store_flags_wait(struct store *store, struct store_flags *op);

/* ---- copy and move ---- */
struct store_copy {
	/* in (valid until the callback) */
	uint64_t account_id;
	const char *mailbox;  /* source */
	const char *target;   /* target mailbox of the same account (may be the source) */
	const uint32_t *uids; /* any order; duplicates, 0 and absent UIDs are ignored */
	size_t uid_count;
	bool move; /* also expunge the sources (RFC 6851), in the same transaction */
	/* The account of target when it is another one (a shared mailbox, RFC 4314), 0 for
	 * account_id. Across accounts the copies count against the target's account, and a
	 * move takes their octets off the source's. */
	uint64_t target_account_id;
	/* out */
	int result;            /* 0 committed, -1 refused or failed (nothing changed) */
	const char *error;     /* NO_MAILBOX (source), NO_TARGET, OVERQUOTA (copy only: a move
	                        * needs no space), LIMIT (UIDs exhausted), FAILED */
	uint32_t uidvalidity;  /* of the target (COPYUID, RFC 4315) */
	size_t count;          /* entries copied */
	uint32_t *source_uids; /* malloc'd, ascending, count of them (NULL when none): */
	uint32_t *target_uids; /* source_uids[i] became target_uids[i]; the caller frees both */
};
typedef void store_copy_cb(struct store_copy *op, void *ctx);
/* Queue a copy: the present UIDs get new, ascending UIDs in the target (one new MODSEQ
 * there) with their flags, keywords and internal dates; no message file is written (the
 * stored message is shared) but each copy counts against the account's quota; the whole
 * copy is refused with OVERQUOTA when it would go over (bytes or message limit). With move, the
 * sources are expunged (tombstones, one new MODSEQ in the source) and the used bytes stay. Nothing
 * present: result 0, count 0, nothing changes. */
void store_copy(struct store *store, struct store_copy *op, store_copy_cb *cb, void *ctx);
/* store_copy() and wait. Returns op->result. */
int store_copy_wait(struct store *store, struct store_copy *op);

/* ---- append ---- */
struct store_append_message {
	/* in */
	const char *spool_path;      /* complete message bytes; the store takes the file */
	unsigned flags;              /* STORE_FLAG_* */
	const char *const *keywords; /* valid keywords, any case */
	size_t keyword_count;
	int64_t internal_date; /* unix seconds; 0 = now */
	const char *hdr_from;  /* optional headers for listings (may be NULL) */
	const char *hdr_subject;
	const char *hdr_message_id;
	/* out */
	uint32_t uid;
	uint64_t size;
};
struct store_append {
	/* in (valid until the callback) */
	uint64_t account_id;
	const char *mailbox;
	struct store_append_message *messages; /* MULTIAPPEND (RFC 3502): all or none */
	size_t count;
	/* REPLACE (RFC 8508): with replace_mailbox non-NULL (one message only), the entry
	 * replace_uid of that mailbox of the account is expunged in the same transaction
	 * (tombstone, its own new MODSEQ there); the quota check counts it as gone. */
	const char *replace_mailbox;
	uint32_t replace_uid;
	/* out */
	int result;           /* 0 committed, -1 refused or failed (nothing stored) */
	const char *error;    /* NO_MAILBOX (TRYCREATE), OVERQUOTA, BAD_KEYWORD, LIMIT,
	                       * INVALID (no message or no spool path; REPLACE of more than
	                       * one), EXPUNGED (REPLACE: replace_uid is not there), FAILED */
	uint32_t uidvalidity; /* with messages[i].uid: APPENDUID (RFC 4315) */
	uint64_t modseq;
};
typedef void store_append_cb(struct store_append *op, void *ctx);
/* Queue an append of every message to one mailbox, on the delivery path: each file is
 * fsynced and placed at its content address, then the messages get ascending UIDs and one
 * new MODSEQ in one transaction with the other writes of the group commit. Refused whole
 * with OVERQUOTA when the account's used bytes plus the sizes exceed its quota, or its
 * messages plus the count exceed its message limit. The spool files are consumed either
 * way. */
void store_append(struct store *store, struct store_append *op, store_append_cb *cb, void *ctx);
/* store_append() and wait. Returns op->result. */
int store_append_wait(struct store *store, struct store_append *op);

/* ---- change notifications ---- */
struct store_watch;
/* highestmodseq is the mailbox's HIGHESTMODSEQ after the commit, or 0 when no mailbox of
 * that name exists any more (deleted, or renamed away), or UINT64_MAX: "look again" with
 * no value, from a shared store's notifier thread (another node's commit, and every watch
 * after the notifier's connection came back and every 30 s). */
typedef void store_watch_cb(void *ctx, uint64_t highestmodseq);
/* Watch a mailbox of the account by name (it need not exist yet). After every commit that
 * changes it (delivery, append, flags, copy/move into or out of it, expunge, create,
 * delete, rename from or to its name; from any caller of this store in this process), cb
 * runs once for that commit, on the writer thread; on a shared store (PostgreSQL) also on
 * the notifier thread, for other nodes' commits. It is a hint: the truth is
 * store_mailbox_changes(). Register the watch before reading the snapshot the session
 * starts from, so no change falls between them. cb must be short (bounce to the loop with
 * conn_wake()) and must not call any _wait function; it may call store_watch() and
 * store_unwatch(). A watch on an invalid name never fires. Returns the handle (never
 * fails). */
struct store_watch *store_watch(struct store *store, uint64_t account_id, const char *mailbox,
                                store_watch_cb *cb, void *ctx);
/* Stop watching; accepts NULL and sets *watch to NULL. After it returns, the callback is
 * never called again (it waits for a callback running on the writer thread to finish, so
 * do not call it while holding a lock that the callback takes); called from a watch
 * callback it does not wait. Every watch must be removed before store_close() (one left
 * is freed there and logged as an error). */
void store_unwatch(struct store_watch **watch);
/* What a record of an account watch (store_watch_account()) tells. */
enum store_change_kind {
	/* The mailbox's messages or existence changed (as for store_watch(): highestmodseq is
	 * its HIGHESTMODSEQ after the commit, 0 when no mailbox of that name exists any more,
	 * UINT64_MAX "look again"). */
	STORE_CHANGE_MAILBOX,
	/* The mailbox was created (highestmodseq 0); its MAILBOX record follows. */
	STORE_CHANGE_CREATE,
	/* The mailbox name was subscribed or unsubscribed (highestmodseq 0). */
	STORE_CHANGE_SUBSCRIPTION,
	/* The mailbox old_name was renamed to mailbox (highestmodseq 0); the MAILBOX records
	 * of both names follow it. */
	STORE_CHANGE_RENAME,
	/* The metadata entry named old_name (RFC 5464) of mailbox ("" for the account's server
	 * entries) was set or removed (highestmodseq 0); one record per entry. */
	STORE_CHANGE_METADATA,
	/* The ACL of mailbox changed (highestmodseq 0): given to no watch, it moves
	 * store_acl_version(). */
	STORE_CHANGE_ACL,
};
struct store_change_info {
	const char *mailbox;  /* valid during the callback */
	const char *old_name; /* RENAME: the old name; METADATA: the entry; else NULL */
	uint64_t highestmodseq;
	enum store_change_kind kind;
};
typedef void store_watch_account_cb(void *ctx, const struct store_change_info *change);
/* Watch every mailbox of the account (IMAP NOTIFY, RFC 5465): cb runs, on the same threads
 * and under the same rules as store_watch()'s, once per record of a commit that concerns
 * the account, in commit order (several per commit: a rename gives a RENAME record and
 * then MAILBOX records of both names). Other nodes' commits reach it on a shared store;
 * the notifier's periodic "look again" does not (it names mailboxes, and an account watch
 * has none). Remove it with store_unwatch(). Returns the handle (never fails). */
struct store_watch *store_watch_account(struct store *store, uint64_t account_id,
                                        store_watch_account_cb *cb, void *ctx);
/* A counter that moves whenever an ACL change (SETACL, DELETEACL, posthorn share) has been
 * committed, here or, on a shared store, on another node as its notification arrives;
 * before the committing operation's callback runs. A session that read rights when it was
 * v needs to read them again only once it is not v (IMAP: imap_acl_refresh()). Any
 * thread; an atomic load. */
uint64_t store_acl_version(struct store *store);

/* ---- cached IMAP data of a message ---- */
/* The ENVELOPE, BODY and BODYSTRUCTURE texts stored with the message of uid: 1 with each
 * *_r malloc'd or NULL (not computed: compute on demand), 0 no such message, -1 error. Any
 * of the _r may be NULL. */
int store_message_summary(struct store *store, uint64_t account_id, const char *mailbox,
                          uint32_t uid, char **envelope_r, char **body_r, char **bodystructure_r);
/* The function that computes those texts (and the PREVIEW text, RFC 8970) from a message
 * file: 0 with malloc'd strings (any may be NULL), -1 when it cannot (the columns stay
 * NULL). */
typedef int store_summarizer_fn(void *ctx, const char *path, char **envelope_r, char **body_r,
                                char **bodystructure_r, char **preview_r);
/* Install (fn != NULL) or remove the summarizer. The writer thread calls it once for every
 * new stored message of a delivery or append, before the commit; it must be thread-safe
 * with respect to ctx. Set it right after store_open(). */
void store_set_summarizer(struct store *store, store_summarizer_fn *fn, void *ctx);

/* ---- the search index (IMAP SEARCH BODY and TEXT) ----
 * Per stored content (so copies share it; it goes with the content's last message), two
 * texts: the header lines SEARCH TEXT looks at and the body texts BODY and TEXT look at,
 * decoded, converted to UTF-8 and case-folded once, at delivery or APPEND, each text
 * followed by LF (imap_search_doc_index()). Indexed on SQLite with FTS5's trigram
 * tokenizer, on PostgreSQL with pg_trgm where it can be installed; the answer is exact
 * either way (the index only narrows what is compared). */
/* Compute the texts of the message open for reading at fd (the caller closes it): 1 with
 * *hdr_r and *body_r malloc'd (valid UTF-8, no NUL, together at most max octets), 0 not
 * indexable (the message is searched from its file), -1 cannot read it. */
typedef int store_search_texter_fn(void *ctx, int fd, size_t max, char **hdr_r, char **body_r);
/* Install (fn != NULL, max > 0) or remove the texter; the writer thread calls it once for
 * every new stored message of a delivery or append, before the commit, and, while it has
 * nothing else to do, for the contents stored without texts (before the index existed, or
 * while no texter was set): a bounded pass of a few at a time, each batch one short
 * transaction, started again by every call of this function. Set it right after
 * store_open(). Without it no texts are stored (every message counts as not indexed).
 * Texts fn gives that would cost FTS5 more than linear work (store_trigram_indexable())
 * are recorded as not indexable. */
void store_set_search_texter(struct store *store, store_search_texter_fn *fn, void *ctx,
                             size_t max);
/* The UIDs (ascending) of the indexed messages of mailbox whose body texts (body_only) or
 * header lines or body texts contain needle, octet for octet (needle: NUL-terminated,
 * case-folded as the texts, valid UTF-8, no LF, not empty): 1 with *uids_r malloc'd (NULL
 * when none) and *count_r, 0 no such mailbox, -1 error. Messages not indexed are never
 * listed: see store_search_unindexed_uids(). */
int store_search_text_uids(struct store *store, uint64_t account_id, const char *mailbox,
                           const char *needle, bool body_only, uint32_t **uids_r, size_t *count_r);
/* The UIDs (ascending) of the messages of mailbox without indexed texts (stored before the
 * index, not indexable, or no texter): same returns. */
int store_search_unindexed_uids(struct store *store, uint64_t account_id, const char *mailbox,
                                uint32_t **uids_r, size_t *count_r);

/* Header keys (IMAP SEARCH HEADER, FROM, SUBJECT, SENT*...) from the stored header lines,
 * where they hold the message's own fields apart (those made since they do, the older
 * ones once the backfill has made them again: imap_search_doc.h). fn gets, in UID order,
 * each such message of mailbox whose header lines contain prefilter (NULL: every one;
 * else as store_search_text_uids()'s needle), and the lines (valid UTF-8, len octets, no
 * NUL); it runs inside the read, so it must be quick and not call the store. 1, 0 no such
 * mailbox, -1 error (fn may have been called already). */
typedef void store_search_hdr_fn(void *ctx, uint32_t uid, const char *hdr, size_t len);
int store_search_hdr_each(struct store *store, uint64_t account_id, const char *mailbox,
                          const char *prefilter, store_search_hdr_fn *fn, void *ctx);
/* The UIDs (ascending) of the messages of mailbox without such header lines: returns as
 * store_search_unindexed_uids(). */
int store_search_hdr_unindexed_uids(struct store *store, uint64_t account_id, const char *mailbox,
                                    uint32_t **uids_r, size_t *count_r);

/* What OBJECTID (RFC 8474), SAVEDATE (RFC 8514) and PREVIEW (RFC 8970) show of one
 * message. The EMAILID names the stored content: a COPY or MOVE keeps it, and two
 * deliveries of the same octets (which the store keeps once) share it. */
struct store_message_objects {
	char emailid[STORE_OBJECTID_MAX + 1];
	int64_t save_date; /* when it was saved into this mailbox (unix seconds) */
	char *preview;     /* malloc'd UTF-8; NULL when not stored (computed on demand) */
};
/* 1 with *objects_r (free objects_r->preview), 0 no such message, -1 error. */
int store_message_objects(struct store *store, uint64_t account_id, const char *mailbox,
                          uint32_t uid, struct store_message_objects *objects_r);
/* The UIDs (ascending) of the entries of a mailbox whose EMAILID is emailid (SEARCH
 * EMAILID): 1 with *uids_r malloc'd (NULL when none) and *count_r, 0 no such mailbox,
 * -1 error. */
int store_mailbox_emailid_uids(struct store *store, uint64_t account_id, const char *mailbox,
                               const char *emailid, uint32_t **uids_r, size_t *count_r);

/* ---- TLS-RPT (RFC 8460) ----
 * One TLS session of an outbound attempt with one MX host (RESULT's tlsrpt). Strings as
 * the report shows them. */
struct store_tlsrpt_result {
	const char *policy_domain; /* the recipient domain */
	const char *policy_type;   /* "sts", "tlsa" or "no-policy-found" (§4.5) */
	const char *policy_string; /* the policy's lines joined by '\n'; "" or NULL none */
	const char *mx_host;       /* the MX host (sts: the policy's mx patterns, '\n') */
	const char *result_type;   /* NULL or "": a successful session; else §4.3's name */
	const char *sending_ip, *receiving_mx, *receiving_ip; /* failures; NULL unknown */
};
/* The sessions of one UTC day with the same values, counted (store_tlsrpt_list()). */
struct store_tlsrpt_row {
	int64_t day; /* days since 1970-01-01 */
	const char *policy_domain, *policy_type, *policy_string, *mx_host;
	const char *result_type; /* "" for successful sessions */
	const char *sending_ip, *receiving_mx, *receiving_ip;
	uint64_t sessions;
};
/* The rows of day (of one policy domain, any case, or all when domain is NULL), ordered by
 * policy domain, policy type and string. Strings valid during the callback. 0, -1. */
int store_tlsrpt_list(struct store *store, int64_t day, const char *domain,
                      void (*cb)(void *ctx, const struct store_tlsrpt_row *row), void *ctx);

/* ---- DMARC aggregate reports (RFC 7489 §7.2, Appendix C) ----
 * One message from port 25 whose From domain had a DMARC record (STORE_QUEUE_DMARC_ADD),
 * counted per UTC day and distinct set of values. Strings as the report shows them; none
 * NULL ("" for none). At most STORE_DMARC_DAY_ROWS_MAX distinct rows a day: a message that
 * would need a new row beyond it is not counted (a flood of forged sources must not grow
 * the table without bound). */
#define STORE_DMARC_DAY_ROWS_MAX 10000
struct store_dmarc_record {
	const char *policy_domain; /* the domain whose record it is */
	const char *policy;        /* as published: "P SP PCT ADKIM ASPF" ("reject none 100 r s") */
	const char *rua;           /* the record's rua= as written */
	const char *source_ip, *header_from, *envelope_from;
	const char *disposition;                /* "none", "quarantine", "reject" (as applied) */
	const char *reason;                     /* "", "sampled_out", "local_policy" */
	const char *dkim_aligned, *spf_aligned; /* "pass", "fail" */
	/* per signature "DOMAIN\tSELECTOR\tRESULT", '\n'-separated ("" none), and
	 * "DOMAIN\tSCOPE\tRESULT" (scope mfrom or helo) */
	const char *dkim, *spf;
};
struct store_dmarc_row {
	int64_t day; /* days since 1970-01-01 */
	struct store_dmarc_record r;
	uint64_t count; /* messages */
};
/* The rows of day (of one policy domain, any case, or all when domain is NULL), ordered by
 * policy domain, then the record (policy, rua), then source IP. Strings valid during the
 * callback. 0, -1. */
int store_dmarc_list(struct store *store, int64_t day, const char *domain,
                     void (*cb)(void *ctx, const struct store_dmarc_row *row), void *ctx);

/* ---- outbound queue ----
 * One entry per submitted message and destination domain (the part after the last '@'
 * of the recipient, lower-cased), with its recipients. The delivery engine claims due
 * entries under a lease (owner, expiry) so that two workers, or two nodes on one
 * database, never work on the same entry at once; it reports each attempt, which
 * releases the lease. An entry leaves the queue when none of its recipients is pending
 * (all delivered, failed or expired) or when it is deleted; the message row goes with the
 * last reference (mailbox entry or queue entry) to it, in the same commit, and its file
 * right after that commit.
 *
 * Writes are queue operations (struct store_queue_op), committed by the writer thread in
 * queue order with the other writes (group commit); cb runs on the writer thread after
 * the commit (bounce to your loop; never call a _wait function from it). Times are unix
 * seconds. Delivery window: a crash after the remote server's 250 and before the result
 * is committed delivers that recipient once more after the lease expires, never zero
 * times. */
enum store_queue_status {
	STORE_QUEUE_PENDING = 0,
	STORE_QUEUE_DELIVERED,
	STORE_QUEUE_FAILED,  /* permanent failure (5xx, null MX, ...) */
	STORE_QUEUE_EXPIRED, /* gave up after the maximal queue time */
};
/* One recipient of an entry. Strings are owned by the entry. */
struct store_queue_rcpt {
	uint64_t id; /* names it in a result */
	const char *address;
	const char *orcpt; /* "addr-type;xtext" as sent, or NULL */
	unsigned notify;   /* STORE_NOTIFY_* bits, 0 not given */
	enum store_queue_status status;
	const char *last_error;      /* reply or reason of the last attempt, "" none */
	int64_t last_attempt;        /* 0 never tried */
	const char *remote_mta;      /* host that answered the last attempt, "" none */
	const char *enhanced_status; /* e.g. "5.1.1", "" none */
};
struct store_queue_entry {
	uint64_t id;
	const char *path; /* the message file (read-only; the queue's reference keeps it), or
	                   * NULL when the database holds the body: then fd */
	int fd;           /* an in-memory copy of a body held by the database, or -1 */
	uint64_t size;
	const char *mail_from; /* "" = null sender */
	enum store_dsn_ret ret;
	const char *envid; /* xtext as sent, NULL none */
	bool smtputf8;     /* submitted with SMTPUTF8 */
	bool eightbit;     /* submitted with BODY=8BITMIME */
	bool requiretls;   /* submitted with REQUIRETLS: verified TLS to every next hop */
	const char *domain;
	int64_t created, next_attempt;
	unsigned attempts;
	bool held, delay_warned;
	const char *lease_owner; /* NULL when not leased */
	int64_t lease_until;
	struct store_queue_rcpt *rcpts; /* CLAIM: pending only; show/DELETE: all */
	size_t rcpt_count;
};
/* Free count entries (array and strings); accepts NULL. */
void store_queue_entries_free(struct store_queue_entry *entries, size_t count);
/* A new read-only descriptor of an entry's message (read it with pread() or mmap(): it may
 * share its offset), or -1 with errno. */
int store_queue_entry_open(const struct store_queue_entry *entry);

/* The outcome of one recipient in an attempt. */
struct store_queue_result {
	uint64_t rcpt_id;
	/* PENDING = deferred (4xx, no connection: try again at next_attempt); DELIVERED,
	 * FAILED, EXPIRED are final. */
	enum store_queue_status status;
	const char *error;           /* reply text or reason, may be NULL */
	const char *remote_mta;      /* may be NULL */
	const char *enhanced_status; /* may be NULL */
};

enum store_queue_action {
	/* Lease up to max due entries (next_attempt <= now, not held, lease free or expired)
	 * to owner for lease seconds, oldest next_attempt first: entries/count (with their
	 * pending recipients). None due: result 0, count 0. */
	STORE_QUEUE_CLAIM,
	/* Extend the lease of entry id that owner holds to now + lease. -1 NO_ENTRY or
	 * LEASE_LOST (it expired and another owner took it, or nobody holds it). */
	STORE_QUEUE_RENEW,
	/* Record an attempt of entry id: each result's recipient (only recipients still
	 * pending change; unknown rcpt ids are ignored) gets its status, error, remote MTA,
	 * enhanced status and last attempt = now. When recipients remain pending, and
	 * the lease is owner's (or free): attempts + 1, next_attempt, delay_warned is set when
	 * asked, the lease is released. When none remain the entry goes (and its message row
	 * and file when nothing else references them): build DSNs that need the message
	 * before reporting. Out: pending (0: the entry is gone), lease_lost (the outcomes were
	 * recorded but the entry's schedule was left to the owner that holds it now). -1
	 * NO_ENTRY (deleted meanwhile: nothing recorded). */
	STORE_QUEUE_RESULT,
	/* Mark entry id: delay warning sent (DSN with Action: delayed). -1 NO_ENTRY. */
	STORE_QUEUE_DELAY_WARNED,
	/* Next attempt = now: id 0 every entry that is not held (changed counts them), else
	 * entry id (`queue flush ID`, `queue retry ID`; a held one stays held). -1 NO_ENTRY. */
	STORE_QUEUE_FLUSH,
	/* Hold entry id: never claimed until released (a lease already taken runs out). */
	STORE_QUEUE_HOLD,
	/* Release entry id from hold, next attempt = now. */
	STORE_QUEUE_RELEASE,
	/* Remove entry id with its recipients; entries/count (count 1) give what it was (all
	 * recipients, statuses included), for a bounce. The message file goes when nothing
	 * else references it, so a bounce quoting it must be built before. */
	STORE_QUEUE_DELETE,
	/* Free every lease whose owner starts with owner (a restarted node's own leases:
	 * "node:" frees those of every earlier process of that node); changed counts them. */
	STORE_QUEUE_UNLEASE,
	/* TLS-RPT: claim the reports of UTC day id (days since 1970-01-01) for the caller:
	 * changed 1 when it is the first to claim that day, 0 when the day was claimed before
	 * (a restart, another node). TLS-RPT results of days before id + 1 - tlsrpt_keep_days
	 * are removed. */
	STORE_QUEUE_TLSRPT_DAY,
	/* DMARC: count op->dmarc for the UTC day of now (no queue entry involved); a new row
	 * only while the day has fewer than max rows (0: STORE_DMARC_DAY_ROWS_MAX). */
	STORE_QUEUE_DMARC_ADD,
	/* DMARC: claim the aggregate reports of UTC day id, as TLSRPT_DAY; rows of days
	 * before id + 1 - dmarc_keep_days are removed. */
	STORE_QUEUE_DMARC_DAY,
};
#define STORE_ERROR_NO_ENTRY "no such queue entry"
#define STORE_ERROR_LEASE_LOST "queue entry leased by another owner"
/* Longest lease owner name. */
#define STORE_QUEUE_OWNER_MAX 255
struct store_queue_op {
	/* in (valid until the callback) */
	enum store_queue_action action;
	uint64_t id;
	const char *owner; /* CLAIM, RENEW, RESULT, UNLEASE: e.g. "node1:4242" */
	unsigned lease;    /* CLAIM, RENEW: seconds, > 0 */
	size_t max;        /* CLAIM: at most this many entries, > 0 */
	int64_t now;       /* 0 = the clock (tests set it) */
	const struct store_queue_result *results; /* RESULT */
	size_t result_count;
	int64_t next_attempt; /* RESULT: when recipients stay pending */
	bool delay_warned;    /* RESULT: also mark the delay warning sent */
	/* RESULT: the attempt's TLS sessions (RFC 8460), counted for the UTC day of now in
	 * the same commit (also when the entry is gone meanwhile). */
	const struct store_tlsrpt_result *tlsrpt;
	size_t tlsrpt_count;
	unsigned tlsrpt_keep_days;              /* TLSRPT_DAY, > 0 */
	const struct store_dmarc_record *dmarc; /* DMARC_ADD */
	unsigned dmarc_keep_days;               /* DMARC_DAY, > 0 */
	/* out */
	int result;        /* 0 committed, -1 refused or failed (nothing changed) */
	const char *error; /* NO_ENTRY, LEASE_LOST, INVALID (bad arguments), FAILED */
	struct store_queue_entry *entries; /* CLAIM, DELETE: malloc'd, the caller frees them
	                                    * with store_queue_entries_free() */
	size_t count;
	size_t changed;  /* FLUSH of all, UNLEASE: entries changed */
	size_t pending;  /* RESULT: recipients still pending */
	bool lease_lost; /* RESULT */
};
typedef void store_queue_cb(struct store_queue_op *op, void *ctx);
/* Queue the operation (see enum store_queue_action); cb on the writer thread. */
void store_queue(struct store *store, struct store_queue_op *op, store_queue_cb *cb, void *ctx);
/* store_queue() and wait. Returns op->result. */
int store_queue_wait(struct store *store, struct store_queue_op *op);

/* Install (fn != NULL) or remove the hook that the writer thread calls, once per group
 * commit, after a commit that queued new entries or made entries due (FLUSH, RELEASE,
 * UNLEASE) in this process. It must be short (wake the delivery loop) and must not call
 * a _wait function. Changes by other processes (the CLI) are not seen: poll
 * store_queue_next_due(). */
typedef void store_queue_hook_fn(void *ctx);
void store_set_queue_hook(struct store *store, store_queue_hook_fn *fn, void *ctx);

/* When the next entry can be claimed: 1 with *when_r (unix seconds, maybe in the past:
 * due now) for the earliest non-held entry (next attempt, or lease expiry when leased),
 * 0 when there is none, -1 error. A cheap indexed read, for polling. */
int store_queue_next_due(struct store *store, int64_t *when_r);

/* One line of the queue listing. Strings are valid during the callback. */
struct store_queue_info {
	uint64_t id;
	const char *mail_from;
	const char *domain;
	uint64_t size;
	int64_t created;
	int64_t next_attempt;
	unsigned attempts;
	bool held;
	const char *lease_owner; /* NULL when not leased */
	int64_t lease_until;
	unsigned rcpts, pending;
	const char *last_error; /* of a pending recipient, "" when none */
};
/* Every entry (domain NULL) or those of one destination domain (any case), by id.
 * 0 ok, -1 error. */
int store_queue_list(struct store *store, const char *domain,
                     void (*cb)(void *ctx, const struct store_queue_info *info), void *ctx);
/* One entry with every recipient: 1 with *entry_r (free with store_queue_entries_free(e,
 * 1)), 0 no such entry, -1 error. */
int store_queue_show(struct store *store, uint64_t id, struct store_queue_entry **entry_r);

/* ---- maintenance ---- */
/* ---- leases: one holder at a time across every node of the store ----
 * A named lease (e.g. "pop3:ACCOUNT-ID", a POP3 maildrop) held by owner (a node and
 * session) until now + ttl seconds. take: 1 taken or renewed (the owner held it, or
 * nobody held it, or it ran out), 0 another owner holds it, -1 error. release: give it up
 * (only its owner can). While this process holds a lease, the store renews it (on a store
 * several nodes share; elsewhere nothing else sees it). Writes on the admin connection:
 * call them where reads may wait. */
int store_lease_take(struct store *store, const char *name, const char *owner, unsigned ttl);
void store_lease_release(struct store *store, const char *name, const char *owner);
/* Whether several nodes may share this store's database (PostgreSQL): then what one node
 * keeps in memory (a POP3 maildrop lock) needs a lease as well. */
bool store_is_shared(struct store *store);

/* ---- reads that may wait ----
 * Every read above is synchronous. On SQLite none waits; on PostgreSQL each is a network
 * round trip, which must not stall an event loop. Loop threads therefore run the reads of
 * one step through store_read(): when reads never wait, fn(ctx) runs here and it returns
 * true (go on at once); else it returns false, and one of the store's reader threads runs
 * fn(ctx) and then done(ctx), where the caller hands the result back to its loop (e.g.
 * session_async_finished()). fn may call any synchronous read, and nothing that waits for
 * the writer. */
typedef void store_read_fn(void *ctx);
bool store_read(struct store *store, store_read_fn *fn, store_read_fn *done, void *ctx);
/* Whether store_read() queues (reads may wait): a caller that must prepare for an
 * asynchronous answer (session_async_start()) asks first, and runs reads in place when
 * false. store_read() may still run in place while the store closes. */
bool store_reads_wait(struct store *store);
/* Most reader threads. */
#define STORE_READ_THREADS_MAX 32
/* Reader threads: 0 (the default) leaves it to the engine (none for SQLite, 4 for
 * PostgreSQL); n > 0 starts n even on SQLite (tests drive the queued path that way). Call
 * it before the first store_read(). */
void store_set_read_threads(struct store *store, unsigned n);

/* ---- moving a whole store (posthorn db export | import) ---- */
/* Write every row of the store, with the bodies kept in files, to out as a Posthorn dump
 * (one read snapshot; the server may run). 0, or -1 with *error_r. */
int store_export(struct store *store, FILE *out, const char **error_r);
/* `posthorn db check`: the store's consistency, read in one snapshot: the engine's own check
 * (SQLite: quick_check and foreign_key_check), UIDNEXT above every stored and expunged UID
 * of its mailbox, no entry without its message, every account's used bytes equal to the
 * sizes of its entries, and every message kept in a file present with its size and its
 * SHA-256 (its name). problem(ctx, text) is called for each finding. Returns the number of
 * findings (0: consistent), or -1 with *error_r when the store could not be read. */
int store_check(struct store *store, void (*problem)(void *ctx, const char *text), void *ctx,
                const char **error_r);
/* Read a dump into this store, which must be new (no domain, account or message), in one
 * transaction: ids, UIDs, UIDVALIDITY, MODSEQs, flags, quotas and credentials as they were;
 * every body is kept in the database. 0, or -1 with *error_r (nothing imported). */
int store_import(struct store *store, FILE *in, const char **error_r);

/* Schema version of the open store (number of migrations applied), or -1 on error. Added
 * for `posthorn init`/diagnostics and for tests that check migrations are applied once. */
int store_schema_version(struct store *store);

/* ---- SMTP policy state: junk training, greylisting, submission rates (store_policy.c) ----
 * Small tables beside the mail (not in a dump: they are transient). The reads are
 * synchronous (call them where reads may wait); the writes go through the writer thread
 * without a callback (the caller does not wait; a failure is logged) and are bounded: each
 * prunes what is past its keeping time. */

/* Junk training: the store records, in the transaction of an IMAP COPY or MOVE
 * (store_copy()), each message copied from a mailbox without \Junk special use into one
 * with it (verdict "junk", for the target's account) or the other way round ("ham", for
 * the source's account). Records older than STORE_POLICY_JUNK_KEEP seconds are removed
 * whenever new ones are written. */
#define STORE_POLICY_JUNK_KEEP (30 * 86400)
struct store_policy_junk_row {
	uint64_t account_id;
	const char *address; /* the account's */
	const char *sha256;  /* content address (hex) of the message */
	const char *verdict; /* "junk" or "ham" */
	int64_t at;          /* unix seconds */
};
/* Every record, oldest first. 0, or -1 error. */
int store_policy_junk_list(struct store *store,
                           void (*cb)(void *ctx, const struct store_policy_junk_row *row),
                           void *ctx);

/* Greylisting (the SMTP side decides; the store keeps the triplets). A triplet is the
 * caller's key text (sender, recipient, client network). */
#define STORE_POLICY_TRIPLET_MAX 1100
struct store_policy_greylist {
	int64_t first_seen; /* when it was first refused */
	int64_t last_seen;  /* when it was last seen */
	bool passed;        /* it passed once: it passes again until it expires */
};
/* 1 with *entry_r, 0 unknown, -1 error. */
int store_policy_greylist_get(struct store *store, const char *triplet,
                              struct store_policy_greylist *entry_r);
/* How many keys noted start with prefix (not empty; Postgrey's client auto-whitelist counts
 * the triplets one client network passed as keys "client NET|TRIPLET"): 0 with *count_r,
 * -1 error. */
int store_policy_greylist_count(struct store *store, const char *prefix, uint64_t *count_r)
    __attribute__((warn_unused_result));
/* Record a sighting at now: passed false inserts the triplet as first seen now when it is
 * unknown or was last seen before expired_before (an older sighting starts over); passed
 * true marks it passed and seen now. Triplets last seen before expired_before are removed. */
void store_policy_greylist_note(struct store *store, const char *triplet, bool passed, int64_t now,
                                int64_t expired_before);

/* Submission rates (as mox's per-account limits): the messages an account submitted since
 * a time, and how many of their recipients were new (the account never sent to them
 * before). */
#define STORE_POLICY_SUBMISSION_KEEP 86400        /* submissions older than this are removed */
#define STORE_POLICY_RECIPIENT_KEEP (365 * 86400) /* a recipient unused this long is new again */
/* Messages since since, and their new recipients: 0, or -1 error. */
int store_policy_submissions(struct store *store, uint64_t account_id, int64_t since,
                             uint64_t *messages_r, uint64_t *new_recipients_r);
/* Has the account sent to address (lower-cased by the caller)? 1 yes, 0 no, -1 error. */
int store_policy_recipient_known(struct store *store, uint64_t account_id, const char *address);
/* Record a submitted message at now with its recipients (lower-cased addresses; the
 * unknown ones count as new). */
void store_policy_submission_note(struct store *store, uint64_t account_id,
                                  const char *const *recipients, size_t count, int64_t now);

#endif
