/* Access control entries (RFC 4314) in the acl table: the writer's side of SETACL and
 * DELETEACL (inside the group commit's transaction, under the item's savepoint) and the reads
 * behind GETACL, MYRIGHTS and the shared namespace. An entry hangs on its mailbox's row (it
 * follows a RENAME and goes with a DELETE, ON DELETE CASCADE); rights are kept as letters in
 * STORE_ACL_LETTERS order, so that a dump reads like a GETACL. */
#include "store/store_db.h"

#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "core/banned.h"

#define SQD(id) [(id)-SQ_METADATA_END]

const char *const store_db_acl_sql[SQ_ACL_END - SQ_METADATA_END] = {
    SQD(SQ_ACL_DELETE) = "DELETE FROM acl WHERE mailbox_id = ?1 AND identifier = ?2",
    SQD(SQ_ACL_INSERT) = "INSERT INTO acl (mailbox_id, identifier, rights) VALUES (?1, ?2, ?3)",
    SQD(SQ_ACL_COUNT) = "SELECT count(*) FROM acl WHERE mailbox_id = ?1",
    SQD(SQ_ACL_ONE) = "SELECT rights FROM acl WHERE mailbox_id = ?1 AND identifier = ?2",
    SQD(SQ_ACL_GET) = "SELECT identifier, rights FROM acl WHERE mailbox_id = ?1"
                      " ORDER BY identifier",
    /* The entries naming ?2 on mailboxes of other accounts than ?1. */
    SQD(SQ_ACL_SHARED) = "SELECT m.account_id, a.address, m.name, l.rights FROM acl l"
                         " JOIN mailboxes m ON m.id = l.mailbox_id"
                         " JOIN accounts a ON a.id = m.account_id"
                         " WHERE l.identifier IN (?2, ?3, 'anyone', 'authenticated')"
                         " AND m.account_id <> ?1 ORDER BY a.address, m.name",
};

static unsigned sqa_bits(const char *text)
{
	unsigned bits = 0;
	if (store_acl_rights_parse(text, &bits) < 0)
		bits = 0; /* the store writes only letters: a row it did not write grants nothing */
	return bits;
}

static void sqa_one_row(void *ctx, struct sql_row *st)
{
	unsigned *bits = ctx;
	*bits = sqa_bits(sql_col_text0(st, 0));
}

int store_db_acl_commit(struct sql_conn *c, struct store_commit_item *item,
                        struct store_changes *changes, const char **error_r)
{
	const struct store_commit_mailbox *m = &item->mailbox;
	int64_t mailbox_id, count;
	int ret =
	    sql_int(c, SQ_MAILBOX_ID, &mailbox_id, error_r, "is", (int64_t)m->account_id, m->name);
	if (ret <= 0) {
		item->refused = ret < 0 ? NULL : STORE_ERROR_NO_MAILBOX;
		return ret;
	}
	unsigned old = 0, bits;
	if (sql_each(c, SQ_ACL_ONE, sqa_one_row, &old, "is", mailbox_id, m->acl_identifier) < 0)
		return -1;
	switch (m->acl_mode) {
	case STORE_ACL_ADD:
		bits = old | m->acl_rights;
		break;
	case STORE_ACL_REMOVE:
		bits = old & ~m->acl_rights;
		break;
	default:
		bits = m->acl_rights;
		break;
	}
	if (sql_exec(c, SQ_ACL_DELETE, error_r, "is", mailbox_id, m->acl_identifier) < 0)
		return -1;
	/* sessions holding rights read before read them again (store_acl_version()) */
	store_watch_changed_kind(changes, m->account_id, m->name, STORE_CHANGE_ACL, NULL);
	if (bits == 0)
		return 0;
	char text[sizeof(STORE_ACL_LETTERS)];
	store_acl_rights_string(bits, text);
	if (sql_exec(c, SQ_ACL_INSERT, error_r, "iss", mailbox_id, m->acl_identifier, text) < 0 ||
	    sql_int(c, SQ_ACL_COUNT, &count, error_r, "i", mailbox_id) < 0)
		return -1;
	if (count > STORE_ACL_MAX)
		item->refused = STORE_ERROR_LIMIT;
	return 0;
}

struct sqa_get {
	void (*cb)(void *ctx, const char *identifier, unsigned rights);
	void *ctx;
};

static void sqa_get_row(void *ctx, struct sql_row *st)
{
	struct sqa_get *g = ctx;
	g->cb(g->ctx, sql_col_text0(st, 0), sqa_bits(sql_col_text0(st, 1)));
}

int store_db_acl_get(struct store *store, uint64_t account_id, const char *mailbox,
                     void (*cb)(void *ctx, const char *identifier, unsigned rights), void *ctx)
{
	struct sql_conn *c = store_db_reader(store);
	int started = c == NULL ? -1 : store_db_read_begin(c);
	if (started < 0)
		return -1;
	int64_t mailbox_id;
	int ret = sql_int(c, SQ_MAILBOX_ID, &mailbox_id, NULL, "is", (int64_t)account_id, mailbox);
	struct sqa_get g = {cb, ctx};
	if (ret == 1 && sql_each(c, SQ_ACL_GET, sqa_get_row, &g, "i", mailbox_id) < 0)
		ret = -1;
	return store_db_read_end(c, started, ret);
}

/* Rows come per (mailbox, identifier): the entries of one mailbox are merged into one call. */
struct sqa_shared {
	void (*cb)(void *ctx, uint64_t owner_id, const char *owner, const char *mailbox,
	           unsigned rights);
	void *ctx;
	uint64_t owner_id;
	char *owner, *mailbox;
	unsigned rights;
};

static void sqa_shared_flush(struct sqa_shared *s)
{
	if (s->mailbox != NULL)
		s->cb(s->ctx, s->owner_id, s->owner, s->mailbox, s->rights);
	free(s->owner);
	free(s->mailbox);
	s->owner = s->mailbox = NULL;
	s->rights = 0;
}

static void sqa_shared_row(void *ctx, struct sql_row *st)
{
	struct sqa_shared *s = ctx;
	uint64_t owner_id = (uint64_t)sql_col_int(st, 0);
	const char *mailbox = sql_col_text0(st, 2);
	if (s->mailbox == NULL || owner_id != s->owner_id || strcmp(mailbox, s->mailbox) != 0) {
		sqa_shared_flush(s);
		s->owner_id = owner_id;
		s->owner = xstrdup(sql_col_text0(st, 1));
		s->mailbox = xstrdup(mailbox);
	}
	s->rights |= sqa_bits(sql_col_text0(st, 3));
}

int store_db_acl_shared(struct store *store, uint64_t account_id, const char *address,
                        const char *domain,
                        void (*cb)(void *ctx, uint64_t owner_id, const char *owner,
                                   const char *mailbox, unsigned rights),
                        void *ctx)
{
	struct sql_conn *c = store_db_reader(store);
	int started = c == NULL ? -1 : store_db_read_begin(c);
	if (started < 0)
		return -1;
	struct sqa_shared s = {.cb = cb, .ctx = ctx};
	int ret = sql_each(c, SQ_ACL_SHARED, sqa_shared_row, &s, "iss", (int64_t)account_id,
	                   address, domain);
	if (ret == 0)
		sqa_shared_flush(&s);
	free(s.owner);
	free(s.mailbox);
	return store_db_read_end(c, started, ret == 0 ? 1 : -1) < 0 ? -1 : 0;
}
