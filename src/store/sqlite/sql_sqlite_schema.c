/* The SQLite schema: numbered migrations (a database's PRAGMA user_version says how many it
 * has), and the statements whose SQLite text differs from the common one. */
#include "store/sqlite/sql_sqlite.h"

#include "store/store_db.h"

#include "core/banned.h"

/* Migration 1: the whole model of DESIGN.md. Mailbox hierarchy is by name with delimiter
 * '/'. A message row is one stored body (content address); it is referenced by mailbox
 * entries and queue rows, and removed when neither is left. */
static const char sqlite_migration_1[] =
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
static const char sqlite_migration_2[] =
    "ALTER TABLE accounts ADD COLUMN apop_secret TEXT;"
    "CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);"
    "INSERT INTO meta (key, value) SELECT 'account_id', coalesce(max(id), 0) FROM accounts"
    " WHERE true ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value);";

/* Migration 3, for IMAP: the ENVELOPE, BODY and BODYSTRUCTURE texts of a message (NULL:
 * compute on demand), the keywords a mailbox holds (space-separated, first spelling
 * kept), and subscriptions as their own table, since a subscription may name a mailbox
 * that does not exist (RFC 9051 §6.3.7); the old per-mailbox column goes. */
static const char sqlite_migration_3[] =
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
static const char sqlite_migration_4[] =
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

/* Migration 5, for issue 10: small message bodies stored in the row itself (NULL: in the
 * content-addressed file), so that a group commit of them costs one fsync. */
static const char sqlite_migration_5[] = "ALTER TABLE messages ADD COLUMN content BLOB;";

/* Migration 6, TLS-RPT (RFC 8460, store_db_tlsrpt.c): results per UTC day (days since
 * 1970-01-01) and distinct values with their session count (result_type '' for a
 * success), and the days whose reports were claimed. */
static const char sqlite_migration_6[] =
    "CREATE TABLE tlsrpt (day INTEGER NOT NULL, policy_domain TEXT NOT NULL,"
    " policy_type TEXT NOT NULL, policy_string TEXT NOT NULL, mx_host TEXT NOT NULL,"
    " result_type TEXT NOT NULL, sending_ip TEXT NOT NULL, receiving_mx TEXT NOT NULL,"
    " receiving_ip TEXT NOT NULL, sessions INTEGER NOT NULL,"
    " PRIMARY KEY (day, policy_domain, policy_type, policy_string, mx_host, result_type,"
    " sending_ip, receiving_mx, receiving_ip)) WITHOUT ROWID;"
    "CREATE TABLE tlsrpt_days (day INTEGER PRIMARY KEY, claimed INTEGER NOT NULL);";

/* Migration 7: leases, one holder at a time across the nodes of a store (a POP3 maildrop
 * while a session holds it). */
static const char sqlite_migration_7[] =
    "CREATE TABLE leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until INTEGER NOT NULL);";

/* Migration 8: the account's message-count limit (IMAP QUOTA RES-MESSAGE, RFC 9208 §5.2),
 * 0 = unlimited. */
static const char sqlite_migration_8[] =
    "ALTER TABLE accounts ADD COLUMN message_limit INTEGER NOT NULL DEFAULT 0;";

/* Migration 9: IMAP METADATA entries (RFC 5464) of a mailbox, or of the account itself
 * (server entries: mailbox_id NULL); names lower-case, values as set (binary allowed). */
static const char sqlite_migration_9[] =
    "CREATE TABLE metadata (account_id INTEGER NOT NULL REFERENCES accounts(id)"
    " ON DELETE CASCADE, mailbox_id INTEGER REFERENCES mailboxes(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL, value BLOB NOT NULL);"
    "CREATE UNIQUE INDEX metadata_key ON metadata(account_id, coalesce(mailbox_id, 0), name);";

/* Migration 10, IMAP OBJECTID (RFC 8474), SAVEDATE (RFC 8514) and PREVIEW (RFC 8970): a
 * mailbox's MAILBOXID (128 random bits in hex; the store sets it on every insert, so a
 * mailbox deleted and created again gets a new one, and a rename keeps it), the time an
 * entry was saved into its mailbox (rows from before: their internal date), and the
 * message's preview text (NULL: not computed, e.g. stored before this migration). */
static const char sqlite_migration_10[] =
    "ALTER TABLE mailboxes ADD COLUMN objectid TEXT;"
    "UPDATE mailboxes SET objectid = lower(hex(randomblob(16)));"
    "CREATE UNIQUE INDEX mailboxes_objectid ON mailboxes(objectid);"
    "ALTER TABLE mailbox_entries ADD COLUMN save_date INTEGER;"
    "UPDATE mailbox_entries SET save_date = internal_date;"
    "ALTER TABLE messages ADD COLUMN preview TEXT;";

/* Migration 11: access control entries (RFC 4314, store_db_acl.c): the rights of an
 * identifier on a mailbox, letters in STORE_ACL_LETTERS order; the index serves the shared
 * namespace's "which mailboxes name me". */
static const char sqlite_migration_11[] =
    "CREATE TABLE acl (mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,"
    " identifier TEXT NOT NULL, rights TEXT NOT NULL, PRIMARY KEY (mailbox_id, identifier));"
    "CREATE INDEX acl_identifier ON acl(identifier);";

/* Migration 12, the search index of IMAP SEARCH BODY and TEXT (store.h): per stored
 * content, its header lines and body texts decoded, in UTF-8 and case-folded (complete 1),
 * or a row saying it is not indexable (complete 0, texts NULL); it goes with the content's
 * messages row. An FTS5 table with the trigram tokenizer (SQLite 3.34 and later) over the
 * texts, kept by triggers, narrows a search for 3 characters or more to the contents that
 * hold all its trigrams; LIKE on the texts then decides. Messages stored before have no
 * row: searched from their files. */
static const char sqlite_migration_12[] =
    "CREATE TABLE search_texts (message_id INTEGER PRIMARY KEY"
    " REFERENCES messages(id) ON DELETE CASCADE, complete INTEGER NOT NULL,"
    " hdr TEXT, body TEXT);"
    "CREATE VIRTUAL TABLE search_fts USING fts5(hdr, body, content='search_texts',"
    " content_rowid='message_id', tokenize='trigram case_sensitive 1');"
    "CREATE TRIGGER search_texts_ai AFTER INSERT ON search_texts WHEN new.complete = 1"
    " BEGIN INSERT INTO search_fts (rowid, hdr, body)"
    " VALUES (new.message_id, new.hdr, new.body); END;"
    "CREATE TRIGGER search_texts_ad AFTER DELETE ON search_texts WHEN old.complete = 1"
    " BEGIN INSERT INTO search_fts (search_fts, rowid, hdr, body)"
    " VALUES ('delete', old.message_id, old.hdr, old.body); END;";

/* Migration 13 (SQL_SQLITE_MIGRATION_TOMBSTONES), tombstone retention for
 * QRESYNC: the time of each expunge (existing tombstones get the migration's time, so they
 * live one more retention period) with an index for the pruning pass, and per mailbox the
 * highest MODSEQ among its tombstones pruned so far (0: none pruned; a client whose MODSEQ
 * is below it gets every UID that is gone). */
static const char sqlite_migration_13[] =
    "ALTER TABLE expunged ADD COLUMN expunged_at INTEGER NOT NULL DEFAULT 0;"
    "UPDATE expunged SET expunged_at = CAST(strftime('%s', 'now') AS INTEGER);"
    "CREATE INDEX expunged_time ON expunged(expunged_at);"
    "ALTER TABLE mailboxes ADD COLUMN tombstone_floor INTEGER NOT NULL DEFAULT 0;";

/* Migration 14: junk training records (store_policy.c): a message moved or copied over IMAP
 * into a \Junk folder ('junk') or out of one ('ham'), by content address, for a learning
 * filter; rows older than STORE_POLICY_JUNK_KEEP go. */
static const char sqlite_migration_14[] =
    "CREATE TABLE junk_training (account_id INTEGER NOT NULL"
    " REFERENCES accounts(id) ON DELETE CASCADE, sha256 TEXT NOT NULL,"
    " verdict TEXT NOT NULL, at INTEGER NOT NULL);"
    "CREATE INDEX junk_training_at ON junk_training(at);";

/* Migration 15: SMTP policy state (store_policy.c): greylisting triplets, and per account
 * its submissions of the last day and the recipients it sent to, with when it last did
 * (submission rates). */
static const char sqlite_migration_15[] =
    "CREATE TABLE greylist (triplet TEXT PRIMARY KEY, first_seen INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL, passed INTEGER NOT NULL);"
    "CREATE INDEX greylist_last_seen ON greylist(last_seen);"
    "CREATE TABLE submissions (account_id INTEGER NOT NULL"
    " REFERENCES accounts(id) ON DELETE CASCADE, at INTEGER NOT NULL,"
    " new_recipients INTEGER NOT NULL);"
    "CREATE INDEX submissions_account ON submissions(account_id, at);"
    "CREATE INDEX submissions_at ON submissions(at);"
    "CREATE TABLE submission_recipients (account_id INTEGER NOT NULL"
    " REFERENCES accounts(id) ON DELETE CASCADE, address TEXT NOT NULL,"
    " last_at INTEGER NOT NULL, PRIMARY KEY (account_id, address));";

/* Migration 16, DMARC aggregate reports (RFC 7489 §7.2, store_db_dmarc.c): messages per UTC
 * day and distinct values (policy domain, record, source, identifiers, results), and the
 * days whose reports were claimed. */
static const char sqlite_migration_16[] =
    "CREATE TABLE dmarc (day INTEGER NOT NULL, policy_domain TEXT NOT NULL,"
    " policy TEXT NOT NULL, rua TEXT NOT NULL, source_ip TEXT NOT NULL,"
    " header_from TEXT NOT NULL, envelope_from TEXT NOT NULL, disposition TEXT NOT NULL,"
    " reason TEXT NOT NULL, dkim_aligned TEXT NOT NULL, spf_aligned TEXT NOT NULL,"
    " dkim TEXT NOT NULL, spf TEXT NOT NULL, messages INTEGER NOT NULL);"
    "CREATE INDEX dmarc_day ON dmarc(day, policy_domain, source_ip);"
    "CREATE TABLE dmarc_days (day INTEGER PRIMARY KEY, claimed INTEGER NOT NULL);";

/* In order; the schema version (PRAGMA user_version) is how many have been applied. */
const char *const sql_sqlite_migrations[SQL_SQLITE_MIGRATION_COUNT] = {
    sqlite_migration_1,  sqlite_migration_2,  sqlite_migration_3,  sqlite_migration_4,
    sqlite_migration_5,  sqlite_migration_6,  sqlite_migration_7,  sqlite_migration_8,
    sqlite_migration_9,  sqlite_migration_10, sqlite_migration_11, sqlite_migration_12,
    sqlite_migration_13, sqlite_migration_14, sqlite_migration_15, sqlite_migration_16};

/* Statements with more than their common text on SQLite. */
const struct sql_replacement sql_sqlite_replacements[] = {
    /* `posthorn db check` (store_db_check.c): SQLite's own checks. */
    {SQ_CHECK_ENGINE, "PRAGMA quick_check"},
    {SQ_CHECK_FOREIGN, "PRAGMA foreign_key_check"},
    /* The search index: the contents whose FTS5 trigram index holds the phrase of the
     * needle's trigrams (3 characters or more; store_db_search_text_uids()), before LIKE
     * decides. */
    {SQ_MB_SEARCH_INDEXED, STORE_DB_SEARCH_SELECT
     " AND t.message_id IN (SELECT rowid FROM search_fts WHERE"
     " search_fts MATCH (CASE WHEN ?3 = 1 THEN 'body : ' ELSE '' END"
     " || '\"' || replace(?2, '\"', '\"\"') || '\"'))" STORE_DB_SEARCH_MATCH},
    /* The same for the header keys (store_search_hdr_each()), in the header lines. */
    {SQ_MB_SEARCH_HDR_INDEXED,
     STORE_DB_SEARCH_HDR_SELECT " AND t.message_id IN (SELECT rowid FROM search_fts WHERE"
                                " search_fts MATCH ('hdr : \"' || replace(?2, '\"', '\"\"') || "
                                "'\"'))" STORE_DB_SEARCH_HDR_MATCH},
    {0, NULL},
};
