/* TLS-RPT (RFC 8460) in the store's database logic: the session results an outbound attempt
 * records with its queue RESULT (counted per UTC day and distinct set of values, so a day
 * of one domain is a handful of rows however many sessions it had), the daily claim that
 * lets one process of one node send a day's reports once, pruning, and the read that
 * builds reports. The tables are the schema's (SQLite: migration 6); the statements use
 * the common dialect of sql.h. */
#include "store/store_db.h"

#include <stdlib.h>
#include <string.h>

#include "core/banned.h"

#define SQT(id) [(id)-SQ_QUEUE_END]

#define SQT_COLUMNS                                                                                \
	"day, policy_domain, policy_type, policy_string, mx_host, result_type, sending_ip,"        \
	" receiving_mx, receiving_ip"

const char *const store_db_tlsrpt_sql[SQ_TLSRPT_END - SQ_QUEUE_END] = {
    SQT(SQ_T_ADD) = "INSERT INTO tlsrpt (" SQT_COLUMNS ", sessions)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1)"
                    " ON CONFLICT (" SQT_COLUMNS ") DO UPDATE"
                    " SET sessions = tlsrpt.sessions + 1",
    SQT(SQ_T_CLAIM) = "INSERT INTO tlsrpt_days (day, claimed) VALUES (?1, ?2)"
                      " ON CONFLICT (day) DO NOTHING",
    SQT(SQ_T_PRUNE) = "DELETE FROM tlsrpt WHERE day < ?1",
    SQT(SQ_T_PRUNE_DAYS) = "DELETE FROM tlsrpt_days WHERE day < ?1",
    SQT(SQ_T_LIST) = "SELECT " SQT_COLUMNS ", sessions FROM tlsrpt WHERE day = ?1"
                     " ORDER BY policy_domain, policy_type, policy_string, result_type,"
                     " mx_host, receiving_mx, receiving_ip, sending_ip",
    SQT(SQ_T_LIST_DOMAIN) = "SELECT " SQT_COLUMNS ", sessions FROM tlsrpt WHERE day = ?1"
                            " AND policy_domain = lower(?2)"
                            " ORDER BY policy_domain, policy_type, policy_string, result_type,"
                            " mx_host, receiving_mx, receiving_ip, sending_ip",
};

static const char *sqt_text(const char *s)
{
	return s == NULL ? "" : s;
}

static int sqt_record(struct sql_conn *c, const struct store_queue_op *op, int64_t now,
                      const char **error_r)
{
	int64_t day = now / 86400;
	for (size_t i = 0; i < op->tlsrpt_count; i++) {
		const struct store_tlsrpt_result *r = &op->tlsrpt[i];
		bool failed = r->result_type != NULL && r->result_type[0] != '\0';
		/* A success is counted by its policy alone (§4.4 gives it no details). */
		if (sql_exec(c, SQ_T_ADD, error_r, "issssssss", day, sqt_text(r->policy_domain),
		             sqt_text(r->policy_type), sqt_text(r->policy_string),
		             sqt_text(r->mx_host), failed ? r->result_type : "",
		             failed ? sqt_text(r->sending_ip) : "",
		             failed ? sqt_text(r->receiving_mx) : "",
		             failed ? sqt_text(r->receiving_ip) : "") < 0)
			return -1;
	}
	return 0;
}

static int sqt_claim(struct sql_conn *c, struct store_commit_queue *q, const char **error_r)
{
	const struct store_queue_op *op = q->op;
	int64_t day = (int64_t)op->id;
	int64_t keep_from = day + 1 - (int64_t)op->tlsrpt_keep_days;
	int64_t n = sql_exec(c, SQ_T_CLAIM, error_r, "ii", day, q->now);
	if (n < 0 || sql_exec(c, SQ_T_PRUNE, error_r, "i", keep_from) < 0 ||
	    sql_exec(c, SQ_T_PRUNE_DAYS, error_r, "i", keep_from) < 0)
		return -1;
	q->changed = (size_t)n;
	return 0;
}

int store_db_tlsrpt_commit(struct sql_conn *c, struct store_commit_item *item, const char **error_r)
{
	struct store_commit_queue *q = &item->queue;
	if (q->op->action == STORE_QUEUE_TLSRPT_DAY)
		return sqt_claim(c, q, error_r);
	return sqt_record(c, q->op, q->now, error_r);
}

struct sqt_list {
	void (*cb)(void *ctx, const struct store_tlsrpt_row *row);
	void *ctx;
};

static void sqt_list_row(void *ctx, struct sql_row *st)
{
	struct sqt_list *l = ctx;
	struct store_tlsrpt_row row = {
	    .day = sql_col_int(st, 0),
	    .policy_domain = sql_col_text0(st, 1),
	    .policy_type = sql_col_text0(st, 2),
	    .policy_string = sql_col_text0(st, 3),
	    .mx_host = sql_col_text0(st, 4),
	    .result_type = sql_col_text0(st, 5),
	    .sending_ip = sql_col_text0(st, 6),
	    .receiving_mx = sql_col_text0(st, 7),
	    .receiving_ip = sql_col_text0(st, 8),
	    .sessions = (uint64_t)sql_col_int(st, 9),
	};
	l->cb(l->ctx, &row);
}

int store_db_tlsrpt_list(struct store *store, int64_t day, const char *domain,
                         void (*cb)(void *ctx, const struct store_tlsrpt_row *row), void *ctx)
{
	struct sql_conn *c = store_db_reader(store);
	struct sqt_list l = {cb, ctx};
	if (c == NULL)
		return -1;
	if (domain == NULL)
		return sql_each(c, SQ_T_LIST, sqt_list_row, &l, "i", day);
	return sql_each(c, SQ_T_LIST_DOMAIN, sqt_list_row, &l, "is", day, domain);
}
