/* Tombstone retention for QRESYNC (RFC 7162 §3.2.5): one pruning pass removes the oldest
 * tombstones expunged at or before a cutoff and raises each of their mailboxes'
 * tombstone_floor to the highest MODSEQ among them, in one write transaction on the
 * writer's connection, so a reader sees either both or neither. */
#include "store/store_db.h"

#include <stdlib.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

struct tb_pruned {
	int64_t mailbox_id, modseq;
};

struct tb_rows {
	struct tb_pruned *v;
	size_t n, cap;
};

static void tb_row(void *ctx, struct sql_row *r)
{
	struct tb_rows *rows = ctx;
	if (rows->n == rows->cap) {
		rows->cap = rows->cap == 0 ? 256 : 2 * rows->cap;
		rows->v = xrealloc(rows->v, rows->cap * sizeof(*rows->v));
	}
	rows->v[rows->n++] = (struct tb_pruned){sql_col_int(r, 0), sql_col_int(r, 1)};
}

static int tb_cmp(const void *a, const void *b)
{
	const struct tb_pruned *x = a, *y = b;
	if (x->mailbox_id != y->mailbox_id)
		return x->mailbox_id < y->mailbox_id ? -1 : 1;
	return (x->modseq > y->modseq) - (x->modseq < y->modseq);
}

/* Inside the transaction: the floors of the mailboxes of the removed rows. */
static int tb_raise_floors(struct sql_conn *c, struct tb_rows *rows, struct store_prune_result *r,
                           const char **error_r)
{
	if (rows->n == 0)
		return 0;
	qsort(rows->v, rows->n, sizeof(*rows->v), tb_cmp);
	for (size_t i = 0; i < rows->n; i++) {
		if (i + 1 < rows->n && rows->v[i + 1].mailbox_id == rows->v[i].mailbox_id)
			continue; /* the last of a mailbox's rows has its highest MODSEQ */
		if (sql_exec(c, SQ_MB_FLOOR_RAISE, error_r, "ii", rows->v[i].mailbox_id,
		             rows->v[i].modseq) < 0)
			return -1;
		r->mailboxes++;
	}
	return 0;
}

int store_db_tombstones_prune(struct store *store, int64_t cutoff, size_t limit,
                              struct store_prune_result *r)
{
	struct sql_conn *c = db_store(store)->writer;
	const char *error = NULL;
	struct tb_rows rows = {0};
	*r = (struct store_prune_result){0};
	if (limit == 0)
		return 0;
	int ret = sql_begin(c, SQL_TX_WRITE, &error);
	if (ret < 0)
		return -1;
	ret = sql_each(c, SQ_TOMBSTONE_PRUNE, tb_row, &rows, "ii", cutoff, (int64_t)limit);
	if (ret == 0)
		ret = tb_raise_floors(c, &rows, r, &error);
	ret = sql_end(c, ret, &error);
	if (ret == 0) {
		r->removed = rows.n;
		r->more = rows.n >= limit;
	} else {
		*r = (struct store_prune_result){0};
	}
	free(rows.v);
	return ret;
}
