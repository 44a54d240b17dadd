/* SMTP policy state in the store's database logic (issue 12): junk training records written
 * in the transaction of an IMAP copy or move, greylisting triplets and per-account
 * submission counts written by the writer's policy operations, and the reads behind them.
 * Every write prunes its table's rows past their keeping time (indexed by time, so a
 * prune that finds nothing costs one index probe). The tables are the schema's (SQLite:
 * migrations 14 and 15); the statements use the common dialect of sql.h. */
#include "store/store_db.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/banned.h"

#define SQP(id) [(id)-SQ_ACL_END]

/* The LIKE pattern of a special-use list holding \Junk (RFC 6154), matched against
 * ' ' || special_use || ' ' with ESCAPE '!' (PostgreSQL's LIKE would take the backslash
 * as its escape character). */
#define SQP_JUNK_PATTERN "% \\Junk %"

const char *const store_db_policy_sql[SQ_POLICY_END - SQ_ACL_END] = {
    SQP(SQ_P_IS_JUNK) = "SELECT count(*) FROM mailboxes WHERE id = ?1"
                        " AND (' ' || special_use || ' ') LIKE ?2 ESCAPE '!'",
    SQP(SQ_P_JUNK_ADD) = "INSERT INTO junk_training (account_id, sha256, verdict, at)"
                         " SELECT ?1, sha256, ?3, ?4 FROM messages WHERE id = ?2",
    SQP(SQ_P_JUNK_PRUNE) = "DELETE FROM junk_training WHERE at < ?1",
    SQP(SQ_P_JUNK_LIST) = "SELECT j.account_id, a.address, j.sha256, j.verdict, j.at"
                          " FROM junk_training j JOIN accounts a ON a.id = j.account_id"
                          " ORDER BY j.at, a.address, j.sha256",
    SQP(SQ_P_GL_GET) = "SELECT first_seen, last_seen, passed FROM greylist WHERE triplet = ?1",
    /* New, or starting over when last seen before ?3. */
    SQP(SQ_P_GL_NEW) = "INSERT INTO greylist (triplet, first_seen, last_seen, passed)"
                       " VALUES (?1, ?2, ?2, 0) ON CONFLICT (triplet) DO UPDATE"
                       " SET first_seen = excluded.first_seen, last_seen = excluded.last_seen,"
                       " passed = 0 WHERE greylist.last_seen < ?3",
    SQP(SQ_P_GL_PASS) = "INSERT INTO greylist (triplet, first_seen, last_seen, passed)"
                        " VALUES (?1, ?2, ?2, 1) ON CONFLICT (triplet) DO UPDATE"
                        " SET last_seen = excluded.last_seen, passed = 1",
    SQP(SQ_P_GL_PRUNE) = "DELETE FROM greylist WHERE last_seen < ?1",
    /* a key range (the primary key's order: byte order on both engines) */
    SQP(SQ_P_GL_COUNT) = "SELECT count(*) FROM greylist WHERE triplet >= ?1 AND triplet < ?2",
    SQP(SQ_P_SUB_COUNT) = "SELECT count(*), CAST(coalesce(sum(new_recipients), 0) AS bigint)"
                          " FROM submissions WHERE account_id = ?1 AND at >= ?2",
    SQP(SQ_P_RCPT_KNOWN) = "SELECT count(*) FROM submission_recipients WHERE account_id = ?1"
                           " AND address = ?2 AND last_at >= ?3",
    SQP(SQ_P_RCPT_ADD) = "INSERT INTO submission_recipients (account_id, address, last_at)"
                         " VALUES (?1, ?2, ?3) ON CONFLICT (account_id, address) DO UPDATE"
                         " SET last_at = excluded.last_at",
    SQP(SQ_P_SUB_ADD) = "INSERT INTO submissions (account_id, at, new_recipients)"
                        " VALUES (?1, ?2, ?3)",
    SQP(SQ_P_SUB_PRUNE) = "DELETE FROM submissions WHERE at < ?1",
    SQP(SQ_P_RCPT_PRUNE) = "DELETE FROM submission_recipients WHERE last_at < ?1",
};

/* ---- junk training ---- */

/* Has the mailbox \Junk special use? 1 yes, 0 no, -1. */
static int sqp_is_junk(struct sql_conn *c, int64_t mailbox_id, const char **error_r)
{
	int64_t n = 0;
	if (sql_int(c, SQ_P_IS_JUNK, &n, error_r, "is", mailbox_id, SQP_JUNK_PATTERN) < 0)
		return -1;
	return n > 0 ? 1 : 0;
}

int store_db_policy_junk_copy(struct sql_conn *c, uint64_t src_account, int64_t src_id,
                              uint64_t dst_account, int64_t dst_id, const int64_t *message_ids,
                              size_t count, int64_t now, const char **error_r)
{
	if (count == 0)
		return 0;
	int from = sqp_is_junk(c, src_id, error_r);
	int to = from < 0 ? -1 : sqp_is_junk(c, dst_id, error_r);
	if (to < 0)
		return -1;
	if (from == to)
		return 0;
	/* Into Junk: the target's owner calls it junk; out of it: the source's owner says ham. */
	uint64_t account = to ? dst_account : src_account;
	const char *verdict = to ? "junk" : "ham";
	for (size_t i = 0; i < count; i++) {
		if (sql_exec(c, SQ_P_JUNK_ADD, error_r, "iisi", (int64_t)account, message_ids[i],
		             verdict, now) < 0)
			return -1;
	}
	return sql_exec(c, SQ_P_JUNK_PRUNE, error_r, "i", now - STORE_POLICY_JUNK_KEEP) < 0 ? -1
	                                                                                    : 0;
}

struct sqp_junk_list {
	void (*cb)(void *ctx, const struct store_policy_junk_row *row);
	void *ctx;
};

static void sqp_junk_row(void *ctx, struct sql_row *r)
{
	struct sqp_junk_list *l = ctx;
	struct store_policy_junk_row row = {
	    .account_id = (uint64_t)sql_col_int(r, 0),
	    .address = sql_col_text0(r, 1),
	    .sha256 = sql_col_text0(r, 2),
	    .verdict = sql_col_text0(r, 3),
	    .at = sql_col_int(r, 4),
	};
	l->cb(l->ctx, &row);
}

int store_db_policy_junk_list(struct store *store,
                              void (*cb)(void *ctx, const struct store_policy_junk_row *row),
                              void *ctx)
{
	struct sql_conn *c = store_db_reader(store);
	int started = c == NULL ? -1 : store_db_read_begin(c);
	if (started < 0)
		return -1;
	struct sqp_junk_list l = {cb, ctx};
	int ret = sql_each(c, SQ_P_JUNK_LIST, sqp_junk_row, &l, "");
	return store_db_read_end(c, started, ret);
}

/* ---- greylisting ---- */

int store_db_policy_greylist_get(struct store *store, const char *triplet,
                                 struct store_policy_greylist *entry_r)
{
	struct sql_conn *c = store_db_reader(store);
	int started = c == NULL ? -1 : store_db_read_begin(c);
	if (started < 0)
		return -1;
	struct sql_row *st;
	int ret = sql_step(c, SQ_P_GL_GET, &st, NULL, "s", triplet);
	if (ret == SQL_ROW) {
		entry_r->first_seen = sql_col_int(st, 0);
		entry_r->last_seen = sql_col_int(st, 1);
		entry_r->passed = sql_col_int(st, 2) != 0;
		sql_row_done(st);
		ret = 1;
	} else {
		ret = ret < 0 ? -1 : 0;
	}
	return store_db_read_end(c, started, ret);
}

int store_db_policy_greylist_count(struct store *store, const char *from, const char *to,
                                   uint64_t *count_r)
{
	struct sql_conn *c = store_db_reader(store);
	int started = c == NULL ? -1 : store_db_read_begin(c);
	if (started < 0)
		return -1;
	int64_t n = 0;
	int ret = sql_int(c, SQ_P_GL_COUNT, &n, NULL, "ss", from, to);
	if (ret == 1)
		*count_r = (uint64_t)n;
	return store_db_read_end(c, started, ret == 1 ? 0 : -1);
}

static int sqp_greylist(struct sql_conn *c, const struct store_commit_policy *p,
                        const char **error_r)
{
	if (p->passed) {
		if (sql_exec(c, SQ_P_GL_PASS, error_r, "si", p->triplet, p->now) < 0)
			return -1;
	} else if (sql_exec(c, SQ_P_GL_NEW, error_r, "sii", p->triplet, p->now, p->expired_before) <
	           0) {
		return -1;
	}
	return sql_exec(c, SQ_P_GL_PRUNE, error_r, "i", p->expired_before) < 0 ? -1 : 0;
}

/* ---- submission counts ---- */

int store_db_policy_submissions(struct store *store, uint64_t account_id, int64_t since,
                                uint64_t *messages_r, uint64_t *new_recipients_r)
{
	struct sql_conn *c = store_db_reader(store);
	int started = c == NULL ? -1 : store_db_read_begin(c);
	if (started < 0)
		return -1;
	struct sql_row *st;
	int ret = sql_step(c, SQ_P_SUB_COUNT, &st, NULL, "ii", (int64_t)account_id, since);
	*messages_r = 0;
	*new_recipients_r = 0;
	if (ret == SQL_ROW) {
		*messages_r = (uint64_t)sql_col_int(st, 0);
		*new_recipients_r = (uint64_t)sql_col_int(st, 1);
		sql_row_done(st);
		ret = 0;
	} else {
		ret = ret < 0 ? -1 : 0;
	}
	return store_db_read_end(c, started, ret);
}

/* Is address a recipient the account used within STORE_POLICY_RECIPIENT_KEEP before now?
 * 1, 0, -1. */
static int sqp_known(struct sql_conn *c, uint64_t account_id, const char *address, int64_t now,
                     const char **error_r)
{
	int64_t n = 0;
	if (sql_int(c, SQ_P_RCPT_KNOWN, &n, error_r, "isi", (int64_t)account_id, address,
	            now - STORE_POLICY_RECIPIENT_KEEP) < 0)
		return -1;
	return n > 0 ? 1 : 0;
}

int store_db_policy_recipient_known(struct store *store, uint64_t account_id, const char *address)
{
	struct sql_conn *c = store_db_reader(store);
	int started = c == NULL ? -1 : store_db_read_begin(c);
	if (started < 0)
		return -1;
	int ret = sqp_known(c, account_id, address, (int64_t)time(NULL), NULL);
	return store_db_read_end(c, started, ret);
}

static int sqp_submission(struct sql_conn *c, const struct store_commit_policy *p,
                          const char **error_r)
{
	int64_t fresh = 0;
	for (size_t i = 0; i < p->count; i++) {
		int known = sqp_known(c, p->account_id, p->recipients[i], p->now, error_r);
		if (known < 0 || sql_exec(c, SQ_P_RCPT_ADD, error_r, "isi", (int64_t)p->account_id,
		                          p->recipients[i], p->now) < 0)
			return -1;
		fresh += known == 0;
	}
	if (sql_exec(c, SQ_P_SUB_ADD, error_r, "iii", (int64_t)p->account_id, p->now, fresh) < 0 ||
	    sql_exec(c, SQ_P_SUB_PRUNE, error_r, "i", p->now - STORE_POLICY_SUBMISSION_KEEP) < 0 ||
	    sql_exec(c, SQ_P_RCPT_PRUNE, error_r, "i", p->now - STORE_POLICY_RECIPIENT_KEEP) < 0)
		return -1;
	return 0;
}

int store_db_policy_commit(struct sql_conn *c, const struct store_commit_policy *p,
                           const char **error_r)
{
	if (p->action == STORE_POLICY_GREYLIST)
		return sqp_greylist(c, p, error_r);
	return sqp_submission(c, p, error_r);
}
