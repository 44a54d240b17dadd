/* `posthorn db check` (store_check() in store.h): the store's consistency, read in one
 * snapshot. The engine's own check comes through a statement whose common text finds
 * nothing and which SQLite replaces by its PRAGMAs (sql_sqlite_schema.c); the rest is
 * common SQL, and the files of messages kept outside the database are hashed again. */
#include "store/store_db.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "store/blob.h"
#include "core/banned.h"

#define SQC(id) [(id)-SQ_DMARC_END]

const char *const store_db_check_sql[SQ_CHECK_END - SQ_DMARC_END] = {
    /* Rows of text other than "ok" are findings (SQLite: PRAGMA quick_check). */
    SQC(SQ_CHECK_ENGINE) = "SELECT 'ok'",
    /* Every row is a finding (SQLite: PRAGMA foreign_key_check). */
    SQC(SQ_CHECK_FOREIGN) = "SELECT 'none' WHERE 1 = 0",
    SQC(SQ_CHECK_UIDNEXT) = "SELECT m.name, m.uidnext, max(e.uid) FROM mailboxes m"
                            " JOIN mailbox_entries e ON e.mailbox_id = m.id"
                            " GROUP BY m.id, m.name, m.uidnext HAVING max(e.uid) >= m.uidnext",
    SQC(SQ_CHECK_TOMBSTONES) = "SELECT m.name, m.uidnext, max(x.uid) FROM mailboxes m"
                               " JOIN expunged x ON x.mailbox_id = m.id"
                               " GROUP BY m.id, m.name, m.uidnext HAVING max(x.uid) >= m.uidnext",
    SQC(SQ_CHECK_ENTRIES) =
        "SELECT e.mailbox_id, e.uid FROM mailbox_entries e"
        " WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = e.message_id)",
    SQC(SQ_CHECK_USED) = "SELECT a.address, a.used_bytes, coalesce(sum(m.size), 0)"
                         " FROM accounts a LEFT JOIN mailboxes b ON b.account_id = a.id"
                         " LEFT JOIN mailbox_entries e ON e.mailbox_id = b.id"
                         " LEFT JOIN messages m ON m.id = e.message_id"
                         " GROUP BY a.id, a.address, a.used_bytes"
                         " HAVING a.used_bytes <> coalesce(sum(m.size), 0)",
    /* The messages kept in files: not inline (only asked where bodies are not all in the
     * database, i.e. not on a shared store). */
    SQC(SQ_CHECK_FILES) = "SELECT sha256, size FROM messages WHERE content IS NULL",
};

struct check_ctx {
	struct store *store;
	void (*problem)(void *ctx, const char *text);
	void *ctx;
	unsigned id;
	int count;
};

static void check_report(struct check_ctx *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void check_report(struct check_ctx *k, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	k->problem(k->ctx, text);
	k->count++;
}

/* A message file: present, its size and its hash as its row says. */
static void check_file(struct check_ctx *k, const char *sha256, int64_t size)
{
	char hex[BLOB_HEX_LEN + 1];
	uint64_t got;
	const char *error;
	if (!blob_name_valid(sha256)) {
		check_report(k, "message row with a bad content address \"%s\"", sha256);
		return;
	}
	char *path = blob_path_dup(k->store->messages_dir, sha256);
	if (access(path, F_OK) != 0)
		check_report(k, "message file %s is missing", sha256);
	else if (blob_hash_file(path, hex, &got, &error) < 0)
		check_report(k, "message file %s: %s", sha256, error);
	else if (got != (uint64_t)size || strcmp(hex, sha256) != 0)
		check_report(k, "message file %s: %" PRIu64 " octets hashing to %s, want %" PRId64,
		             sha256, got, hex, size);
	free(path);
}

static void check_row(void *ctx, struct sql_row *r)
{
	struct check_ctx *k = ctx;
	switch (k->id) {
	case SQ_CHECK_ENGINE:
		if (strcmp(sql_col_text0(r, 0), "ok") != 0)
			check_report(k, "database: %s", sql_col_text0(r, 0));
		break;
	case SQ_CHECK_FOREIGN:
		check_report(k, "database: a row of %s points at nothing", sql_col_text0(r, 0));
		break;
	case SQ_CHECK_UIDNEXT:
	case SQ_CHECK_TOMBSTONES:
		check_report(k, "mailbox \"%s\": UIDNEXT %" PRId64 " not above %s UID %" PRId64,
		             sql_col_text0(r, 0), sql_col_int(r, 1),
		             k->id == SQ_CHECK_UIDNEXT ? "the stored" : "the expunged",
		             sql_col_int(r, 2));
		break;
	case SQ_CHECK_ENTRIES:
		check_report(k, "mailbox %" PRId64 " UID %" PRId64 ": its message row is missing",
		             sql_col_int(r, 0), sql_col_int(r, 1));
		break;
	case SQ_CHECK_USED:
		check_report(k, "account %s: used bytes %" PRId64 ", its messages %" PRId64,
		             sql_col_text0(r, 0), sql_col_int(r, 1), sql_col_int(r, 2));
		break;
	case SQ_CHECK_FILES:
		check_file(k, sql_col_text0(r, 0), sql_col_int(r, 1));
		break;
	}
}

int store_db_check(struct store *store, void (*problem)(void *ctx, const char *text), void *ctx,
                   const char **error_r)
{
	struct sql_conn *c = store_db_reader(store);
	int started = c == NULL ? -1 : store_db_read_begin(c);
	if (started < 0) {
		*error_r = "cannot read the database";
		return -1;
	}
	struct check_ctx k = {.store = store, .problem = problem, .ctx = ctx};
	int ret = 0;
	for (unsigned id = SQ_CHECK_ENGINE; ret == 0 && id < SQ_CHECK_END; id++) {
		if (id == SQ_CHECK_FILES && store->shared)
			continue; /* every body is in the database */
		k.id = id;
		if (sql_each(c, id, check_row, &k, "") < 0) {
			*error_r = store_error_fmt("check %u failed", id - SQ_CHECK_ENGINE);
			ret = -1;
		}
	}
	ret = store_db_read_end(c, started, ret);
	return ret < 0 ? -1 : k.count;
}
