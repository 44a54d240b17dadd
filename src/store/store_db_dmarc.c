/* DMARC aggregate reports (RFC 7489 §7.2) in the store's database logic: each message
 * from port 25 with a DMARC record is counted per UTC day and distinct set of values (the
 * rows of Appendix C's report), at most STORE_DMARC_DAY_ROWS_MAX rows a day; the daily
 * claim that lets one process of one node send a day's reports once, pruning, and the read
 * that builds reports. Tables: SQLite migration 16, PostgreSQL 12. */
#include "store/store_db.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/banned.h"

#define SQD(id) [(id)-SQ_POLICY_END]

#define SQD_KEY                                                                                    \
	"day = ?1 AND policy_domain = ?2 AND policy = ?3 AND rua = ?4 AND source_ip = ?5"          \
	" AND header_from = ?6 AND envelope_from = ?7 AND disposition = ?8 AND reason = ?9"        \
	" AND dkim_aligned = ?10 AND spf_aligned = ?11 AND dkim = ?12 AND spf = ?13"
#define SQD_COLUMNS                                                                                \
	"day, policy_domain, policy, rua, source_ip, header_from, envelope_from, disposition,"     \
	" reason, dkim_aligned, spf_aligned, dkim, spf"

const char *const store_db_dmarc_sql[SQ_DMARC_END - SQ_POLICY_END] = {
    SQD(SQ_D_UPDATE) = "UPDATE dmarc SET messages = messages + 1 WHERE " SQD_KEY,
    /* A new row only while the day has fewer than ?14 rows. */
    SQD(SQ_D_INSERT) = "INSERT INTO dmarc (" SQD_COLUMNS ", messages)"
                       " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 1"
                       " WHERE (SELECT count(*) FROM dmarc WHERE day = ?1) < ?14",
    SQD(SQ_D_CLAIM) = "INSERT INTO dmarc_days (day, claimed) VALUES (?1, ?2)"
                      " ON CONFLICT (day) DO NOTHING",
    SQD(SQ_D_PRUNE) = "DELETE FROM dmarc WHERE day < ?1",
    SQD(SQ_D_PRUNE_DAYS) = "DELETE FROM dmarc_days WHERE day < ?1",
    SQD(SQ_D_LIST) = "SELECT " SQD_COLUMNS ", messages FROM dmarc WHERE day = ?1"
                     " ORDER BY policy_domain, policy, rua, source_ip, header_from,"
                     " envelope_from, disposition, reason, dkim_aligned, spf_aligned, dkim, spf",
    SQD(SQ_D_LIST_DOMAIN) = "SELECT " SQD_COLUMNS ", messages FROM dmarc WHERE day = ?1"
                            " AND policy_domain = lower(?2)"
                            " ORDER BY policy_domain, policy, rua, source_ip, header_from,"
                            " envelope_from, disposition, reason, dkim_aligned, spf_aligned,"
                            " dkim, spf",
};

static int sqd_add(struct sql_conn *c, const struct store_queue_op *op, int64_t now,
                   const char **error_r)
{
	const struct store_dmarc_record *r = op->dmarc;
	int64_t day = now / 86400;
	const char *fmt = "issssssssssss";
#define SQD_ARGS                                                                                   \
	day, r->policy_domain, r->policy, r->rua, r->source_ip, r->header_from, r->envelope_from,  \
	    r->disposition, r->reason, r->dkim_aligned, r->spf_aligned, r->dkim, r->spf
	int64_t n = sql_exec(c, SQ_D_UPDATE, error_r, fmt, SQD_ARGS);
	if (n != 0)
		return n < 0 ? -1 : 0;
	n = sql_exec(c, SQ_D_INSERT, error_r, "issssssssssssi", SQD_ARGS,
	             (int64_t)(op->max > 0 ? op->max : STORE_DMARC_DAY_ROWS_MAX));
#undef SQD_ARGS
	if (n == 0)
		log_debug("event=dmarc-record result=capped domain=%s", r->policy_domain);
	return n < 0 ? -1 : 0;
}

static int sqd_claim(struct sql_conn *c, struct store_commit_queue *q, const char **error_r)
{
	const struct store_queue_op *op = q->op;
	int64_t day = (int64_t)op->id;
	int64_t keep_from = day + 1 - (int64_t)op->dmarc_keep_days;
	int64_t n = sql_exec(c, SQ_D_CLAIM, error_r, "ii", day, q->now);
	if (n < 0 || sql_exec(c, SQ_D_PRUNE, error_r, "i", keep_from) < 0 ||
	    sql_exec(c, SQ_D_PRUNE_DAYS, error_r, "i", keep_from) < 0)
		return -1;
	q->changed = (size_t)n;
	return 0;
}

int store_db_dmarc_commit(struct sql_conn *c, struct store_commit_item *item, const char **error_r)
{
	struct store_commit_queue *q = &item->queue;
	if (q->op->action == STORE_QUEUE_DMARC_DAY)
		return sqd_claim(c, q, error_r);
	return sqd_add(c, q->op, q->now, error_r);
}

struct sqd_list {
	void (*cb)(void *ctx, const struct store_dmarc_row *row);
	void *ctx;
};

static void sqd_list_row(void *ctx, struct sql_row *st)
{
	struct sqd_list *l = ctx;
	struct store_dmarc_row row = {
	    .day = sql_col_int(st, 0),
	    .r = {.policy_domain = sql_col_text0(st, 1),
	          .policy = sql_col_text0(st, 2),
	          .rua = sql_col_text0(st, 3),
	          .source_ip = sql_col_text0(st, 4),
	          .header_from = sql_col_text0(st, 5),
	          .envelope_from = sql_col_text0(st, 6),
	          .disposition = sql_col_text0(st, 7),
	          .reason = sql_col_text0(st, 8),
	          .dkim_aligned = sql_col_text0(st, 9),
	          .spf_aligned = sql_col_text0(st, 10),
	          .dkim = sql_col_text0(st, 11),
	          .spf = sql_col_text0(st, 12)},
	    .count = (uint64_t)sql_col_int(st, 13),
	};
	l->cb(l->ctx, &row);
}

int store_db_dmarc_list(struct store *store, int64_t day, const char *domain,
                        void (*cb)(void *ctx, const struct store_dmarc_row *row), void *ctx)
{
	struct sql_conn *c = store_db_reader(store);
	struct sqd_list l = {cb, ctx};
	if (c == NULL)
		return -1;
	if (domain == NULL)
		return sql_each(c, SQ_D_LIST, sqd_list_row, &l, "i", day);
	return sql_each(c, SQ_D_LIST_DOMAIN, sqd_list_row, &l, "is", day, domain);
}
