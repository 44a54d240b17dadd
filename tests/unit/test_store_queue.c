/* Unit tests of the store's outbound queue (store.h "outbound queue") on both engines
 * (store_engines.h: SQLite, and PostgreSQL when POSTHORN_TEST_PGURL is set, where bodies are
 * rows, not files): entries per message and destination domain with their DSN parameters,
 * claims under leases (two owners never share an entry, expired leases are reclaimable, held
 * entries are never claimed), renewals, attempt results (the entry and its message file go when
 * no recipient is pending), hold/release/flush/delete/unlease, the queue hook, the next due
 * time, and migration 4 of version-3 per-recipient rows (SQLite only). Each test runs in a
 * fresh mkdtemp() directory (and PostgreSQL schema); clocks are passed explicitly (op.now). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/xmalloc.h"
#include "store/blob.h"
#include "store/store_db.h"
#include "store/store.h"
#include "store/sqlite/sql_sqlite.h"
#include "store_engines.h"
#include "core/banned.h"

struct fixture {
	struct engine eng; /* the database: SQLite in dir, or a PostgreSQL schema */
	char dir[128];     /* the data directory (on PostgreSQL: spool files only) */
	struct store *store;
	uint64_t local; /* account a@example.org */
};

/* What open_store() sets as the store's inline limit. */
static uint64_t fixture_inline_max;

static void open_dir(const struct engine *eng, const char *dir, struct store **store_r)
{
	const char *error = NULL;
	if (store_open_engine(dir, engine_name(eng), eng->target, store_r, &error) < 0)
		fail_msg("store_open_engine: %s", error);
	/* Bodies in files unless a test asks for them inline (test_inline_*). */
	store_set_inline_max(*store_r, fixture_inline_max);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	const char *error = NULL;
	int ret = engine_start(&f->eng, engine_kind(state), "test_store_queue");
	*state = NULL;
	if (ret <= 0) {
		free(f);
		return ret; /* 0: the test skips */
	}
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store_queue.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	open_dir(&f->eng, f->dir, &f->store);
	assert_int_equal(store_domain_add(f->store, "example.org", &error), 0);
	assert_int_equal(store_account_add(f->store, "a@example.org", "h", 0, &error), 0);
	assert_int_equal(store_account_lookup(f->store, "a@example.org", &f->local, NULL, NULL), 1);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f == NULL)
		return 0;
	store_close(&f->store);
	engine_rm_tree(f->dir);
	engine_stop(&f->eng);
	free(f);
	return 0;
}

static char *spool(struct store *store, const char *data)
{
	char *path = store_spool_path_dup(store);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, strlen(data), fp), strlen(data));
	assert_int_equal(fclose(fp), 0);
	return path;
}

/* Deliver data to the remote recipients (with their DSN parameters, may be NULL) and,
 * when local, to a@example.org. */
static void deliver(struct fixture *f, const char *data, const char *const *remote, size_t n,
                    const struct store_remote_dsn *dsn, bool local)
{
	char *path = spool(f->store, data);
	struct store_delivery d = {
	    .spool_path = path,
	    .mail_from = "a@example.org",
	    .accounts = &f->local,
	    .account_count = local ? 1 : 0,
	    .remote = remote,
	    .remote_count = n,
	    .remote_dsn = dsn,
	    .ret = STORE_DSN_RET_HDRS,
	    .envid = dsn == NULL ? NULL : "env+2Bid-1",
	    .smtputf8 = dsn != NULL,
	    .eightbit = dsn != NULL,
	    .received_at = 1700000000,
	};
	assert_int_equal(store_deliver_wait(f->store, &d), 0);
	free(path);
}

/* ---- listing ---- */

struct ids {
	uint64_t v[32];
	char domain[32][64];
	unsigned pending[32], rcpts[32], attempts[32];
	bool held[32];
	int n;
};

static void collect(void *ctx, const struct store_queue_info *info)
{
	struct ids *ids = ctx;
	assert_true(ids->n < 32);
	ids->v[ids->n] = info->id;
	snprintf(ids->domain[ids->n], sizeof(ids->domain[0]), "%s", info->domain);
	ids->pending[ids->n] = info->pending;
	ids->rcpts[ids->n] = info->rcpts;
	ids->attempts[ids->n] = info->attempts;
	ids->held[ids->n] = info->held;
	ids->n++;
}

static struct ids *list(struct fixture *f, const char *domain)
{
	static struct ids ids;
	memset(&ids, 0, sizeof(ids));
	assert_int_equal(store_queue_list(f->store, domain, collect, &ids), 0);
	return &ids;
}

/* A queue operation, waited for. */
static struct store_queue_op qop(struct fixture *f, enum store_queue_action action, uint64_t id,
                                 const char *owner, int64_t now)
{
	struct store_queue_op op = {
	    .action = action,
	    .id = id,
	    .owner = owner,
	    .lease = 60,
	    .max = 10,
	    .now = now,
	};
	(void)store_queue_wait(f->store, &op);
	return op;
}

/* Claim at now for owner; returns the number of entries (ids in ids_r when not NULL). */
static size_t claim(struct fixture *f, const char *owner, int64_t now, size_t max, uint64_t *ids_r)
{
	struct store_queue_op op = {
	    .action = STORE_QUEUE_CLAIM, .owner = owner, .lease = 60, .max = max, .now = now};
	assert_int_equal(store_queue_wait(f->store, &op), 0);
	for (size_t i = 0; ids_r != NULL && i < op.count; i++)
		ids_r[i] = op.entries[i].id;
	size_t n = op.count;
	store_queue_entries_free(op.entries, op.count);
	return n;
}

/* Claim the one due entry as n:1; the op holds it (free its entries). */
static struct store_queue_op claim_one(struct fixture *f)
{
	struct store_queue_op op = {.action = STORE_QUEUE_CLAIM,
	                            .owner = "n:1",
	                            .lease = 60,
	                            .max = 10,
	                            .now = (int64_t)time(NULL) + 1};
	assert_int_equal(store_queue_wait(f->store, &op), 0);
	assert_int_equal(op.count, 1);
	return op;
}

static struct store_queue_entry *show(struct fixture *f, uint64_t id)
{
	struct store_queue_entry *e = NULL;
	assert_int_equal(store_queue_show(f->store, id, &e), 1);
	return e;
}

/* Message files go right after the writer's callbacks: wait up to 2 s for it. */
static bool file_gone(const char *path)
{
	for (int i = 0; i < 200; i++) {
		if (access(path, F_OK) != 0)
			return true;
		usleep(10000);
	}
	return false;
}

/* Rows in the messages table of the fixture's PostgreSQL schema. */
static int64_t pg_messages(struct fixture *f)
{
	PGconn *c = PQconnectdb(f->eng.target);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect: %s", PQerrorMessage(c));
	PGresult *r = PQexec(c, "SELECT count(*) FROM messages");
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("count: %s", PQerrorMessage(c));
	int64_t n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	PQfinish(c);
	return n;
}

/* Whether a message body is still stored. SQLite: its file at path exists (or is gone,
 * waiting up to 2 s). PostgreSQL, where every body is in its messages row (path NULL):
 * the schema holds rows messages (waiting up to 2 s). */
static void expect_body(struct fixture *f, const char *path, bool stored, int64_t rows)
{
	if (!on_pg(f)) {
		assert_non_null(path);
		if (stored)
			assert_int_equal(access(path, R_OK), 0);
		else
			assert_true(file_gone(path));
		return;
	}
	assert_null(path);
	int64_t n = pg_messages(f);
	for (int i = 0; i < 200 && n != rows; i++) {
		usleep(10000);
		n = pg_messages(f);
	}
	assert_int_equal(n, rows);
}

/* ---- tests ---- */

/* a@x.test, b@X.TEST and c@y.test make two entries; DSN parameters are kept per recipient
 * and per entry. */
static void test_entries_per_domain(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *remote[3] = {"a@x.test", "b@X.TEST", "c@y.test"};
	const struct store_remote_dsn dsn[3] = {
	    {STORE_NOTIFY_SUCCESS | STORE_NOTIFY_FAILURE, "rfc822;orig-a@x.test"},
	    {STORE_NOTIFY_NEVER, NULL},
	    {0, NULL},
	};
	deliver(f, "Subject: grouped\r\n\r\nbody\r\n", remote, 3, dsn, false);
	struct ids *ids = list(f, NULL);
	assert_int_equal(ids->n, 2);
	assert_string_equal(ids->domain[0], "x.test");
	assert_int_equal(ids->rcpts[0], 2);
	assert_int_equal(ids->pending[0], 2);
	assert_string_equal(ids->domain[1], "y.test");
	assert_int_equal(ids->rcpts[1], 1);
	uint64_t x = ids->v[0], y = ids->v[1];

	ids = list(f, "X.Test");
	assert_int_equal(ids->n, 1);
	assert_int_equal(ids->v[0], x);
	assert_int_equal(list(f, "z.test")->n, 0);

	struct store_queue_entry *e = show(f, x);
	assert_string_equal(e->mail_from, "a@example.org");
	assert_int_equal(e->ret, STORE_DSN_RET_HDRS);
	assert_string_equal(e->envid, "env+2Bid-1");
	assert_true(e->smtputf8);
	assert_true(e->eightbit);
	assert_int_equal(e->size, strlen("Subject: grouped\r\n\r\nbody\r\n"));
	expect_body(f, e->path, true, 1);
	assert_false(e->held);
	assert_null(e->lease_owner);
	assert_int_equal(e->rcpt_count, 2);
	assert_string_equal(e->rcpts[0].address, "a@x.test");
	assert_int_equal(e->rcpts[0].notify, STORE_NOTIFY_SUCCESS | STORE_NOTIFY_FAILURE);
	assert_string_equal(e->rcpts[0].orcpt, "rfc822;orig-a@x.test");
	assert_int_equal(e->rcpts[0].status, STORE_QUEUE_PENDING);
	assert_string_equal(e->rcpts[1].address, "b@X.TEST");
	assert_int_equal(e->rcpts[1].notify, STORE_NOTIFY_NEVER);
	assert_null(e->rcpts[1].orcpt);
	store_queue_entries_free(e, 1);
	e = show(f, y);
	assert_int_equal(e->rcpt_count, 1);
	assert_int_equal(e->rcpts[0].notify, 0);
	store_queue_entries_free(e, 1);
	struct store_queue_entry *none = NULL;
	assert_int_equal(store_queue_show(f->store, y + 100, &none), 0);
	assert_null(none);

	/* A delivery with bad DSN parameters is refused whole. */
	const struct store_remote_dsn bad = {STORE_NOTIFY_NEVER | STORE_NOTIFY_DELAY, NULL};
	char *path = spool(f->store, "x\r\n");
	struct store_delivery d = {.spool_path = path,
	                           .mail_from = "",
	                           .remote = remote,
	                           .remote_count = 1,
	                           .remote_dsn = &bad};
	assert_int_equal(store_deliver_wait(f->store, &d), -1);
	free(path);
	assert_int_equal(list(f, NULL)->n, 2);
}

/* Two owners never get the same entry; a held entry is never claimed. */
static void test_claim_owners_and_hold(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *remote[4] = {"r@one.test", "r@two.test", "r@three.test", "r@four.test"};
	deliver(f, "claims\r\n", remote, 4, NULL, false);
	int64_t now = (int64_t)time(NULL) + 1;
	struct ids *ids = list(f, NULL);
	assert_int_equal(ids->n, 4);
	uint64_t held = ids->v[3];
	assert_int_equal(qop(f, STORE_QUEUE_HOLD, held, NULL, 0).result, 0);

	uint64_t a[10], b[10];
	assert_int_equal(claim(f, "nodeA:1", now, 2, a), 2);
	assert_int_equal(claim(f, "nodeB:2", now, 10, b), 1);
	assert_true(b[0] != a[0] && b[0] != a[1] && b[0] != held);
	assert_true(a[0] != held && a[1] != held);
	assert_int_equal(claim(f, "nodeA:1", now, 10, NULL), 0);
	assert_int_equal(claim(f, "nodeC:3", now + 30, 10, NULL), 0);

	struct store_queue_entry *e = show(f, a[0]);
	assert_string_equal(e->lease_owner, "nodeA:1");
	assert_int_equal(e->lease_until, now + 60);
	store_queue_entries_free(e, 1);
	ids = list(f, NULL);
	assert_true(ids->held[3]);

	/* Flushing everything does not touch held entries; release makes it claimable. */
	struct store_queue_op op = qop(f, STORE_QUEUE_FLUSH, 0, NULL, now);
	assert_int_equal(op.result, 0);
	assert_int_equal(op.changed, 3);
	assert_int_equal(claim(f, "nodeC:3", now + 61, 10, NULL), 3); /* leases expired */
	assert_int_equal(qop(f, STORE_QUEUE_RELEASE, held, NULL, now + 61).result, 0);
	assert_int_equal(claim(f, "nodeD:4", now + 61, 10, b), 1);
	assert_int_equal(b[0], held);

	/* Unknown ids are refused. */
	op = qop(f, STORE_QUEUE_HOLD, held + 100, NULL, 0);
	assert_int_equal(op.result, -1);
	assert_string_equal(op.error, STORE_ERROR_NO_ENTRY);
	op = qop(f, STORE_QUEUE_RELEASE, held + 100, NULL, 0);
	assert_string_equal(op.error, STORE_ERROR_NO_ENTRY);
	/* Bad arguments too. */
	op = qop(f, STORE_QUEUE_CLAIM, 0, NULL, 0);
	assert_int_equal(op.result, -1);
	assert_string_equal(op.error, STORE_ERROR_INVALID);
	op = qop(f, STORE_QUEUE_CLAIM, 0, "bad\nowner", 0);
	assert_string_equal(op.error, STORE_ERROR_INVALID);
}

/* An expired lease can be claimed by another owner; the first owner's renewal then fails,
 * and its late result records outcomes but leaves the schedule to the new owner. */
static void test_lease_expiry_and_renew(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *remote[2] = {"p@lease.test", "q@lease.test"};
	deliver(f, "leases\r\n", remote, 2, NULL, false);
	int64_t now = (int64_t)time(NULL) + 1;
	uint64_t id;
	assert_int_equal(claim(f, "A:1", now, 10, &id), 1);
	int64_t when = 0;
	assert_int_equal(store_queue_next_due(f->store, &when), 1);
	assert_int_equal(when, now + 60);

	struct store_queue_op op = qop(f, STORE_QUEUE_RENEW, id, "A:1", now + 50);
	assert_int_equal(op.result, 0);
	assert_int_equal(claim(f, "B:2", now + 100, 10, NULL), 0); /* renewed to now + 110 */
	assert_int_equal(claim(f, "B:2", now + 110, 10, NULL), 1);
	op = qop(f, STORE_QUEUE_RENEW, id, "A:1", now + 111);
	assert_int_equal(op.result, -1);
	assert_string_equal(op.error, STORE_ERROR_LEASE_LOST);
	assert_int_equal(qop(f, STORE_QUEUE_RENEW, id, "B:2", now + 111).result, 0);
	op = qop(f, STORE_QUEUE_RENEW, id + 1, "B:2", now + 111);
	assert_string_equal(op.error, STORE_ERROR_NO_ENTRY);

	struct store_queue_entry *e = show(f, id);
	struct store_queue_result r[1] = {
	    {e->rcpts[0].id, STORE_QUEUE_DELIVERED, "250 ok", "mx.lease.test", "2.0.0"}};
	store_queue_entries_free(e, 1);
	op = (struct store_queue_op){.action = STORE_QUEUE_RESULT,
	                             .id = id,
	                             .owner = "A:1",
	                             .results = r,
	                             .result_count = 1,
	                             .next_attempt = now + 500,
	                             .now = now + 112};
	assert_int_equal(store_queue_wait(f->store, &op), 0);
	assert_true(op.lease_lost);
	assert_int_equal(op.pending, 1);
	e = show(f, id);
	assert_string_equal(e->lease_owner, "B:2");
	assert_int_equal(e->attempts, 0);
	assert_int_equal(e->rcpts[0].status, STORE_QUEUE_DELIVERED);
	assert_int_equal(e->rcpts[1].status, STORE_QUEUE_PENDING);
	store_queue_entries_free(e, 1);
}

/* Results: deferred recipients stay with the entry's new schedule; when none is pending
 * the entry and its message file go. */
static void test_results(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *remote[3] = {"ok@res.test", "later@res.test", "bad@res.test"};
	deliver(f, "Subject: results\r\n\r\nonly queued\r\n", remote, 3, NULL, false);
	int64_t now = (int64_t)time(NULL) + 1;
	struct store_queue_op op = {
	    .action = STORE_QUEUE_CLAIM, .owner = "w:1", .lease = 300, .max = 5, .now = now};
	assert_int_equal(store_queue_wait(f->store, &op), 0);
	assert_int_equal(op.count, 1);
	struct store_queue_entry *e = &op.entries[0];
	assert_int_equal(e->rcpt_count, 3);
	assert_string_equal(e->domain, "res.test");
	char *path = e->path == NULL ? NULL : xstrdup(e->path);
	uint64_t id = e->id;
	struct store_queue_result r[4] = {
	    {e->rcpts[0].id, STORE_QUEUE_DELIVERED, "250 2.0.0 queued", "mx1.res.test", "2.0.0"},
	    {e->rcpts[1].id, STORE_QUEUE_PENDING, "451 4.3.0 try later", "mx1.res.test", "4.3.0"},
	    {e->rcpts[2].id, STORE_QUEUE_FAILED, "550 5.1.1 no such user", "mx1.res.test", "5.1.1"},
	    {999999, STORE_QUEUE_DELIVERED, NULL, NULL, NULL}, /* not ours: ignored */
	};
	store_queue_entries_free(op.entries, op.count);

	op = (struct store_queue_op){.action = STORE_QUEUE_RESULT,
	                             .id = id,
	                             .owner = "w:1",
	                             .results = r,
	                             .result_count = 4,
	                             .next_attempt = now + 300,
	                             .delay_warned = true,
	                             .now = now + 5};
	assert_int_equal(store_queue_wait(f->store, &op), 0);
	assert_int_equal(op.pending, 1);
	assert_false(op.lease_lost);
	e = show(f, id);
	assert_int_equal(e->attempts, 1);
	assert_int_equal(e->next_attempt, now + 300);
	assert_true(e->delay_warned);
	assert_null(e->lease_owner);
	assert_int_equal(e->rcpts[0].status, STORE_QUEUE_DELIVERED);
	assert_int_equal(e->rcpts[1].status, STORE_QUEUE_PENDING);
	assert_string_equal(e->rcpts[1].last_error, "451 4.3.0 try later");
	assert_string_equal(e->rcpts[1].remote_mta, "mx1.res.test");
	assert_string_equal(e->rcpts[1].enhanced_status, "4.3.0");
	assert_int_equal(e->rcpts[1].last_attempt, now + 5);
	assert_int_equal(e->rcpts[2].status, STORE_QUEUE_FAILED);
	assert_string_equal(e->rcpts[2].last_error, "550 5.1.1 no such user");
	store_queue_entries_free(e, 1);
	struct ids *ids = list(f, NULL);
	assert_int_equal(ids->pending[0], 1);
	assert_int_equal(ids->rcpts[0], 3);

	/* Not due before next_attempt; then only the pending recipient comes back. */
	int64_t when;
	assert_int_equal(store_queue_next_due(f->store, &when), 1);
	assert_int_equal(when, now + 300);
	assert_int_equal(claim(f, "w:1", now + 299, 5, NULL), 0);
	op = (struct store_queue_op){
	    .action = STORE_QUEUE_CLAIM, .owner = "w:2", .lease = 300, .max = 5, .now = now + 300};
	assert_int_equal(store_queue_wait(f->store, &op), 0);
	assert_int_equal(op.count, 1);
	assert_int_equal(op.entries[0].attempts, 1);
	assert_int_equal(op.entries[0].rcpt_count, 1);
	assert_string_equal(op.entries[0].rcpts[0].address, "later@res.test");
	struct store_queue_result last = {op.entries[0].rcpts[0].id, STORE_QUEUE_EXPIRED, "gave up",
	                                  NULL, "4.4.7"};
	store_queue_entries_free(op.entries, op.count);
	expect_body(f, path, true, 1);

	op = (struct store_queue_op){.action = STORE_QUEUE_RESULT,
	                             .id = id,
	                             .owner = "w:2",
	                             .results = &last,
	                             .result_count = 1,
	                             .now = now + 301};
	assert_int_equal(store_queue_wait(f->store, &op), 0);
	assert_int_equal(op.pending, 0);
	assert_int_equal(list(f, NULL)->n, 0);
	assert_int_equal(store_queue_next_due(f->store, &when), 0);
	expect_body(f, path, false, 0);
	op = (struct store_queue_op){
	    .action = STORE_QUEUE_RESULT, .id = id, .owner = "w:2", .now = now + 302};
	assert_int_equal(store_queue_wait(f->store, &op), -1);
	assert_string_equal(op.error, STORE_ERROR_NO_ENTRY);
	free(path);
}

/* A message also delivered locally keeps its file when its queue entry goes. */
static void test_delete_keeps_local_copy(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *remote[1] = {"gone@del.test"};
	deliver(f, "Subject: both\r\n\r\nlocal and remote\r\n", remote, 1, NULL, true);
	deliver(f, "Subject: remote only\r\n\r\nremote\r\n", remote, 1, NULL, false);
	struct ids *ids = list(f, NULL);
	assert_int_equal(ids->n, 2);
	uint64_t both = ids->v[0], only = ids->v[1];
	struct store_queue_entry *e = show(f, both);
	char *both_path = e->path == NULL ? NULL : xstrdup(e->path);
	store_queue_entries_free(e, 1);

	struct store_queue_op op = qop(f, STORE_QUEUE_DELETE, only, NULL, 0);
	assert_int_equal(op.result, 0);
	assert_int_equal(op.count, 1);
	assert_int_equal(op.entries[0].id, only);
	assert_string_equal(op.entries[0].mail_from, "a@example.org");
	assert_int_equal(op.entries[0].rcpt_count, 1);
	assert_string_equal(op.entries[0].rcpts[0].address, "gone@del.test");
	char *only_path = op.entries[0].path == NULL ? NULL : xstrdup(op.entries[0].path);
	store_queue_entries_free(op.entries, op.count);
	expect_body(f, only_path, false, 1);

	op = qop(f, STORE_QUEUE_DELETE, both, NULL, 0);
	assert_int_equal(op.result, 0);
	store_queue_entries_free(op.entries, op.count);
	assert_int_equal(list(f, NULL)->n, 0);
	usleep(100000);
	expect_body(f, both_path, true, 1); /* INBOX still has it */
	op = qop(f, STORE_QUEUE_DELETE, both, NULL, 0);
	assert_int_equal(op.result, -1);
	assert_string_equal(op.error, STORE_ERROR_NO_ENTRY);
	assert_null(op.entries);
	free(both_path);
	free(only_path);
}

/* flush/retry of one entry, delay-warning mark, unlease by owner prefix. */
static void test_flush_warn_unlease(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *remote[2] = {"u@one.test", "v@two.test"};
	deliver(f, "unlease\r\n", remote, 2, NULL, false);
	int64_t now = (int64_t)time(NULL) + 1;
	uint64_t a, b;
	assert_int_equal(claim(f, "node1:100", now, 1, &a), 1);
	assert_int_equal(claim(f, "node2:200", now, 1, &b), 1);
	struct store_queue_op op = qop(f, STORE_QUEUE_UNLEASE, 0, "node1:", now);
	assert_int_equal(op.result, 0);
	assert_int_equal(op.changed, 1);
	uint64_t again;
	assert_int_equal(claim(f, "node1:101", now, 10, &again), 1);
	assert_int_equal(again, a);

	/* A deferred entry waits for its next attempt until flushed. */
	struct store_queue_op res = {.action = STORE_QUEUE_RESULT,
	                             .id = a,
	                             .owner = "node1:101",
	                             .next_attempt = now + 3600,
	                             .now = now};
	assert_int_equal(store_queue_wait(f->store, &res), 0);
	assert_int_equal(res.pending, 1);
	assert_int_equal(claim(f, "node1:101", now + 10, 10, NULL), 0);
	assert_int_equal(qop(f, STORE_QUEUE_FLUSH, a, NULL, now + 10).result, 0);
	assert_int_equal(claim(f, "node1:101", now + 10, 10, &again), 1);
	assert_int_equal(again, a);

	struct store_queue_entry *e = show(f, b);
	assert_false(e->delay_warned);
	store_queue_entries_free(e, 1);
	assert_int_equal(qop(f, STORE_QUEUE_DELAY_WARNED, b, NULL, 0).result, 0);
	e = show(f, b);
	assert_true(e->delay_warned);
	store_queue_entries_free(e, 1);
	op = qop(f, STORE_QUEUE_FLUSH, b + a + 10, NULL, 0);
	assert_string_equal(op.error, STORE_ERROR_NO_ENTRY);
}

/* Two stores on one database (two processes or nodes in miniature), each claiming one
 * entry at a time on its own thread: every entry is claimed exactly once. */
struct racer {
	struct store *store;
	const char *owner;
	int64_t now;
	uint64_t got[64];
	size_t n;
};

/* A queued body stored in the database: the claimed entry has no path and an fd whose
 * copies (store_queue_entry_open()) read the message; show does the same. */
static void test_inline_entry(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *remote[1] = {"r@inline.test"};
	const char *body = "Subject: inline\r\n\r\nqueued in the row\r\n";
	store_set_inline_max(f->store, 1024);
	deliver(f, body, remote, 1, NULL, false);
	struct store_queue_op op = claim_one(f);
	struct store_queue_entry *e = &op.entries[0];
	assert_null(e->path);
	assert_true(e->fd >= 0);
	char buf[128];
	for (int i = 0; i < 2; i++) {
		int fd = store_queue_entry_open(e);
		assert_true(fd >= 0 && fd != e->fd);
		assert_int_equal(pread(fd, buf, sizeof(buf), 0), (ssize_t)strlen(body));
		assert_memory_equal(buf, body, strlen(body));
		close(fd);
	}
	uint64_t id = e->id;
	store_queue_entries_free(op.entries, op.count);
	e = show(f, id);
	assert_null(e->path);
	int fd = store_queue_entry_open(e);
	assert_int_equal(pread(fd, buf, sizeof(buf), 0), (ssize_t)strlen(body));
	close(fd);
	store_queue_entries_free(e, 1);
	/* A file-stored one has a path and no fd (PostgreSQL: every body is in its row). */
	store_set_inline_max(f->store, 0);
	const char *other[1] = {"r@file.test"};
	deliver(f, "in a file\r\n", other, 1, NULL, false);
	struct ids *ids = list(f, "file.test");
	assert_int_equal(ids->n, 1);
	e = show(f, ids->v[0]);
	if (on_pg(f)) {
		assert_null(e->path);
		assert_true(e->fd >= 0);
	} else {
		assert_non_null(e->path);
		assert_int_equal(e->fd, -1);
	}
	fd = store_queue_entry_open(e);
	assert_int_equal(pread(fd, buf, sizeof(buf), 0), (ssize_t)strlen("in a file\r\n"));
	close(fd);
	store_queue_entries_free(e, 1);
}

/* On PostgreSQL a body larger than STORE_CHUNK_SIZE is in chunk rows: a claimed entry and
 * `queue show` still carry all of it (a file of its own for each reader). */
static void test_pg_chunked_entry(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *remote[1] = {"r@chunked.test"};
	size_t size = STORE_CHUNK_SIZE * 2 + 17;
	char *body = xmalloc(size + 1);
	memcpy(body, "Subject: chunked\r\n\r\n", 20);
	for (size_t i = 20; i < size; i++)
		body[i] = (char)('a' + i % 26);
	body[size] = '\0';
	deliver(f, body, remote, 1, NULL, false);
	struct store_queue_op op = claim_one(f);
	uint64_t id = op.entries[0].id;
	struct store_queue_entry *show_e = show(f, id);
	const struct store_queue_entry *es[2] = {&op.entries[0], show_e};
	char *buf = xmalloc(size + 1);
	for (int i = 0; i < 2; i++) {
		assert_null(es[i]->path);
		assert_int_equal(es[i]->size, size);
		int fd = store_queue_entry_open(es[i]);
		assert_true(fd >= 0);
		assert_int_equal(pread(fd, buf, size + 1, 0), (ssize_t)size);
		assert_memory_equal(buf, body, size);
		close(fd);
	}
	free(buf);
	store_queue_entries_free(show_e, 1);
	store_queue_entries_free(op.entries, op.count);
	free(body);
}

static void *race(void *arg)
{
	struct racer *r = arg;
	for (;;) {
		struct store_queue_op op = {.action = STORE_QUEUE_CLAIM,
		                            .owner = r->owner,
		                            .lease = 600,
		                            .max = 1,
		                            .now = r->now};
		if (store_queue_wait(r->store, &op) < 0 || op.count == 0) {
			store_queue_entries_free(op.entries, op.count);
			return NULL;
		}
		if (r->n < 64)
			r->got[r->n++] = op.entries[0].id;
		store_queue_entries_free(op.entries, op.count);
	}
}

static void test_claim_race_two_stores(void **state)
{
	struct fixture *f = fixture_get(state);
	char names[40][32];
	const char *remote[40];
	for (int i = 0; i < 40; i++) {
		snprintf(names[i], sizeof(names[i]), "r@d%d.test", i);
		remote[i] = names[i];
	}
	deliver(f, "race\r\n", remote, 40, NULL, false);
	struct store *second = NULL;
	open_dir(&f->eng, f->dir, &second);
	int64_t now = (int64_t)time(NULL) + 1;
	struct racer a = {.store = f->store, .owner = "n1:1", .now = now};
	struct racer b = {.store = second, .owner = "n2:2", .now = now};
	pthread_t ta, tb;
	assert_int_equal(pthread_create(&ta, NULL, race, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, race, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	store_close(&second);
	assert_int_equal(a.n + b.n, 40);
	for (size_t i = 0; i < a.n; i++) {
		for (size_t k = 0; k < b.n; k++)
			assert_true(a.got[i] != b.got[k]);
		for (size_t k = i + 1; k < a.n; k++)
			assert_true(a.got[i] != a.got[k]);
	}
	for (size_t i = 0; i < b.n; i++) {
		for (size_t k = i + 1; k < b.n; k++)
			assert_true(b.got[i] != b.got[k]);
	}
}

static atomic_int hook_calls;

static void hook(void *ctx)
{
	assert_ptr_equal(ctx, &hook_calls);
	atomic_fetch_add(&hook_calls, 1);
}

/* The hook runs after commits that queue entries or make them due, not after others. */
static void test_hook(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *remote[1] = {"h@hook.test"};
	atomic_store(&hook_calls, 0);
	store_set_queue_hook(f->store, hook, &hook_calls);
	deliver(f, "local only\r\n", NULL, 0, NULL, true);
	assert_int_equal(atomic_load(&hook_calls), 0);
	deliver(f, "remote\r\n", remote, 1, NULL, false);
	assert_int_equal(atomic_load(&hook_calls), 1);
	uint64_t id = list(f, NULL)->v[0];
	assert_int_equal(qop(f, STORE_QUEUE_HOLD, id, NULL, 0).result, 0);
	assert_int_equal(atomic_load(&hook_calls), 1);
	assert_int_equal(qop(f, STORE_QUEUE_RELEASE, id, NULL, 0).result, 0);
	assert_int_equal(atomic_load(&hook_calls), 2);
	assert_int_equal(qop(f, STORE_QUEUE_FLUSH, 0, NULL, 0).result, 0);
	assert_int_equal(atomic_load(&hook_calls), 3);
	store_set_queue_hook(f->store, NULL, NULL);
	deliver(f, "remote again\r\n", remote, 1, NULL, false);
	assert_int_equal(atomic_load(&hook_calls), 3);
}

/* A version-3 database's per-recipient queue rows become entries per message, sender and
 * domain, with every recipient and its last error kept. */
static void test_migration_3_to_4(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *error = NULL, *body = "Subject: v3\r\n\r\nqueued\r\n";
	char dir[100], path[256], spool_path[256], hex[BLOB_HEX_LEN + 1], sql[2048];
	uint64_t size = 0;
	bool created;

	snprintf(dir, sizeof(dir), "%.64s/v3", f->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(store_db_create(dir, 3, &error), 0);
	snprintf(path, sizeof(path), "%s/messages", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(spool_path, sizeof(spool_path), "%s/spool", dir);
	FILE *fp = fopen(spool_path, "w");
	assert_non_null(fp);
	fputs(body, fp);
	fclose(fp);
	assert_int_equal(blob_store(path, spool_path, hex, &size, &created, &error), 0);
	snprintf(sql, sizeof(sql),
	         "INSERT INTO messages (id, sha256, size, received_at, mail_from)"
	         " VALUES (1, '%s', %llu, 1600000000, 's@example.org');"
	         "INSERT INTO queue (id, message_id, mail_from, rcpt, created, next_attempt,"
	         " attempts, last_error) VALUES"
	         " (1, 1, 's@example.org', 'a@X.test', 1600000000, 1600000300, 2, '451 busy'),"
	         " (2, 1, 's@example.org', 'c@y.test', 1600000000, 1600000000, 0, ''),"
	         " (3, 1, 's@example.org', 'b@x.TEST', 1600000000, 1600000100, 1, ''),"
	         " (4, 1, 's@example.org', '\"odd@local\"@z.test', 1600000000, 1600000000,"
	         " 0, '');",
	         hex, (unsigned long long)size);
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/posthorn.db", dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s", msg);
	sqlite3_close(db);

	struct fixture old = {.store = NULL};
	snprintf(old.dir, sizeof(old.dir), "%s", dir);
	open_dir(&f->eng, dir, &old.store);
	assert_int_equal(store_schema_version(old.store), SQL_SQLITE_MIGRATION_COUNT);
	struct ids *ids = list(&old, NULL);
	assert_int_equal(ids->n, 3);
	assert_string_equal(ids->domain[0], "x.test");
	assert_int_equal(ids->rcpts[0], 2);
	assert_int_equal(ids->attempts[0], 2);
	assert_string_equal(ids->domain[1], "y.test");
	assert_string_equal(ids->domain[2], "z.test");
	struct store_queue_entry *e = show(&old, ids->v[0]);
	assert_string_equal(e->mail_from, "s@example.org");
	assert_int_equal(e->created, 1600000000);
	assert_int_equal(e->next_attempt, 1600000100);
	assert_int_equal(e->rcpt_count, 2);
	assert_string_equal(e->rcpts[0].address, "a@X.test");
	assert_string_equal(e->rcpts[0].last_error, "451 busy");
	assert_string_equal(e->rcpts[1].address, "b@x.TEST");
	assert_int_equal(e->rcpts[1].status, STORE_QUEUE_PENDING);
	assert_int_equal(access(e->path, R_OK), 0);
	store_queue_entries_free(e, 1);
	e = show(&old, ids->v[2]);
	assert_string_equal(e->rcpts[0].address, "\"odd@local\"@z.test");
	store_queue_entries_free(e, 1);
	/* Claimable like new entries; applied once. */
	assert_int_equal(claim(&old, "m:1", (int64_t)time(NULL), 10, NULL), 3);
	store_close(&old.store);
	open_dir(&f->eng, dir, &old.store);
	assert_int_equal(store_schema_version(old.store), SQL_SQLITE_MIGRATION_COUNT);
	assert_int_equal(list(&old, NULL)->n, 3);
	store_close(&old.store);
}

/* ---- TLS-RPT ---- */

struct tlsrpt_seen {
	char text[16][200];
	uint64_t sessions[16];
	int n;
};

static void tlsrpt_collect(void *ctx, const struct store_tlsrpt_row *row)
{
	struct tlsrpt_seen *s = ctx;
	assert_true(s->n < 16);
	snprintf(s->text[s->n], sizeof(s->text[0]), "%lld|%s|%s|%s|%s|%s|%s|%s|%s",
	         (long long)row->day, row->policy_domain, row->policy_type, row->policy_string,
	         row->mx_host, row->result_type, row->sending_ip, row->receiving_mx,
	         row->receiving_ip);
	s->sessions[s->n++] = row->sessions;
}

/* RESULT carries the attempt's TLS sessions: counted per UTC day and distinct values (a
 * success without its details), also when the entry is gone; TLSRPT_DAY claims a day once
 * and prunes days older than tlsrpt_keep_days. */
static void test_tlsrpt(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *remote[1] = {"x@rpt.test"};
	deliver(f, "Subject: tlsrpt\r\n\r\nq\r\n", remote, 1, NULL, false);
	int64_t now = (int64_t)time(NULL) + 10, day = now / 86400;
	char prefix[32];
	snprintf(prefix, sizeof(prefix), "%lld|", (long long)day);
	struct store_queue_op op = {
	    .action = STORE_QUEUE_CLAIM, .owner = "w:1", .lease = 300, .max = 5, .now = now};
	assert_int_equal(store_queue_wait(f->store, &op), 0);
	assert_int_equal(op.count, 1);
	uint64_t id = op.entries[0].id, rcpt = op.entries[0].rcpts[0].id;
	store_queue_entries_free(op.entries, op.count);
	struct store_tlsrpt_result t[3] = {
	    {"rpt.test", "sts", "version: STSv1\nmode: enforce", "mx.rpt.test", NULL, "192.0.2.1",
	     "mx.rpt.test", "198.51.100.1"},
	    {"rpt.test", "sts", "version: STSv1\nmode: enforce", "mx.rpt.test",
	     "certificate-expired", "192.0.2.1", "mx.rpt.test", "198.51.100.1"},
	    {"rpt.test", "sts", "version: STSv1\nmode: enforce", "mx.rpt.test", "", NULL, NULL,
	     NULL},
	};
	struct store_queue_result r = {rcpt, STORE_QUEUE_PENDING, "451", NULL, NULL};
	for (int i = 0; i < 2; i++) {
		op = (struct store_queue_op){.action = STORE_QUEUE_RESULT,
		                             .id = id,
		                             .owner = "w:1",
		                             .results = &r,
		                             .result_count = 1,
		                             .next_attempt = now,
		                             .tlsrpt = t,
		                             .tlsrpt_count = 3,
		                             .now = now};
		assert_int_equal(store_queue_wait(f->store, &op), 0);
	}
	/* The entry is gone: the sessions are still counted. */
	op = qop(f, STORE_QUEUE_DELETE, id, NULL, now);
	store_queue_entries_free(op.entries, op.count);
	op = (struct store_queue_op){.action = STORE_QUEUE_RESULT,
	                             .id = id,
	                             .owner = "w:1",
	                             .tlsrpt = t + 1,
	                             .tlsrpt_count = 1,
	                             .now = now + 60};
	assert_int_equal(store_queue_wait(f->store, &op), -1);
	assert_string_equal(op.error, STORE_ERROR_NO_ENTRY);
	/* a missing array is refused */
	op = (struct store_queue_op){
	    .action = STORE_QUEUE_RESULT, .id = id, .owner = "w:1", .tlsrpt_count = 1};
	assert_int_equal(store_queue_wait(f->store, &op), -1);

	struct tlsrpt_seen seen = {.n = 0};
	assert_int_equal(store_tlsrpt_list(f->store, day, "RPT.test", tlsrpt_collect, &seen), 0);
	assert_int_equal(seen.n, 2);
	assert_int_equal(strncmp(seen.text[0], prefix, strlen(prefix)), 0);
	assert_string_equal(seen.text[0] + strlen(prefix), "rpt.test|sts|version: STSv1\nmode: "
	                                                   "enforce|mx.rpt.test||||");
	assert_int_equal(seen.sessions[0], 4);
	assert_string_equal(seen.text[1] + strlen(prefix),
	                    "rpt.test|sts|version: STSv1\nmode: enforce|mx.rpt.test|"
	                    "certificate-expired|192.0.2.1|mx.rpt.test|198.51.100.1");
	assert_int_equal(seen.sessions[1], 3);
	seen.n = 0;
	assert_int_equal(store_tlsrpt_list(f->store, day, "other.test", tlsrpt_collect, &seen), 0);
	assert_int_equal(store_tlsrpt_list(f->store, day + 1, NULL, tlsrpt_collect, &seen), 0);
	assert_int_equal(seen.n, 0);

	/* Claims: once per day; invalid without a day or keep_days. */
	op = (struct store_queue_op){
	    .action = STORE_QUEUE_TLSRPT_DAY, .id = (uint64_t)day, .tlsrpt_keep_days = 14};
	assert_int_equal(store_queue_wait(f->store, &op), 0);
	assert_int_equal(op.changed, 1);
	assert_int_equal(store_queue_wait(f->store, &op), 0);
	assert_int_equal(op.changed, 0);
	op = (struct store_queue_op){.action = STORE_QUEUE_TLSRPT_DAY, .id = (uint64_t)day};
	assert_int_equal(store_queue_wait(f->store, &op), -1);
	/* 13 days later the day is kept; 14 days later it goes. */
	op = (struct store_queue_op){
	    .action = STORE_QUEUE_TLSRPT_DAY, .id = (uint64_t)day + 13, .tlsrpt_keep_days = 14};
	assert_int_equal(store_queue_wait(f->store, &op), 0);
	assert_int_equal(op.changed, 1);
	assert_int_equal(store_tlsrpt_list(f->store, day, NULL, tlsrpt_collect, &seen), 0);
	assert_int_equal(seen.n, 2);
	seen.n = 0;
	op = (struct store_queue_op){
	    .action = STORE_QUEUE_TLSRPT_DAY, .id = (uint64_t)day + 14, .tlsrpt_keep_days = 14};
	assert_int_equal(store_queue_wait(f->store, &op), 0);
	assert_int_equal(store_tlsrpt_list(f->store, day, NULL, tlsrpt_collect, &seen), 0);
	assert_int_equal(seen.n, 0);
}

/* ---- DMARC aggregate reports ---- */

struct dmarc_seen {
	char text[8][300];
	uint64_t count[8];
	int n;
};

static void dmarc_collect(void *ctx, const struct store_dmarc_row *row)
{
	struct dmarc_seen *s = ctx;
	assert_true(s->n < 8);
	const struct store_dmarc_record *r = &row->r;
	snprintf(s->text[s->n], sizeof(s->text[0]), "%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s",
	         r->policy_domain, r->policy, r->rua, r->source_ip, r->header_from,
	         r->envelope_from, r->disposition, r->reason, r->dkim_aligned, r->spf_aligned,
	         r->dkim, r->spf);
	s->count[s->n++] = row->count;
}

static int dmarc_add(struct fixture *f, const struct store_dmarc_record *r, int64_t now, size_t max)
{
	struct store_queue_op op = {
	    .action = STORE_QUEUE_DMARC_ADD, .dmarc = r, .now = now, .max = max};
	return store_queue_wait(f->store, &op);
}

/* DMARC_ADD counts messages per UTC day and distinct values, new rows only under the cap;
 * DMARC_DAY claims a day once and prunes days older than dmarc_keep_days. */
static void test_dmarc(void **state)
{
	struct fixture *f = fixture_get(state);
	int64_t now = (int64_t)time(NULL), day = now / 86400;
	struct store_dmarc_record a = {"rpt.test",
	                               "reject none 100 r s",
	                               "mailto:d@rpt.test!10m",
	                               "192.0.2.1",
	                               "rpt.test",
	                               "bounce.rpt.test",
	                               "reject",
	                               "",
	                               "fail",
	                               "fail",
	                               "rpt.test\tsel\tfail\nother.test\ts2\tpass",
	                               "bounce.rpt.test\tmfrom\tsoftfail"};
	struct store_dmarc_record b = a;
	b.source_ip = "2001:db8::1";
	b.disposition = "none";
	b.dkim_aligned = "pass";
	struct store_dmarc_record c = a;
	c.policy_domain = "zzz.test";
	assert_int_equal(dmarc_add(f, &a, now, 0), 0);
	assert_int_equal(dmarc_add(f, &a, now, 0), 0);
	assert_int_equal(dmarc_add(f, &b, now, 2), 0);
	/* a third row of the day is over a cap of 2: not counted; existing rows still are */
	assert_int_equal(dmarc_add(f, &c, now, 2), 0);
	assert_int_equal(dmarc_add(f, &a, now, 2), 0);
	/* another day */
	assert_int_equal(dmarc_add(f, &c, now + 86400, 0), 0);
	/* no record: refused */
	struct store_queue_op bad = {.action = STORE_QUEUE_DMARC_ADD};
	assert_int_equal(store_queue_wait(f->store, &bad), -1);

	struct dmarc_seen seen = {.n = 0};
	assert_int_equal(store_dmarc_list(f->store, day, NULL, dmarc_collect, &seen), 0);
	assert_int_equal(seen.n, 2);
	/* ordered by domain, record, source IP ("192..." < "2001...") */
	assert_string_equal(seen.text[0],
	                    "rpt.test|reject none 100 r s|mailto:d@rpt.test!10m|192.0.2.1|rpt.test|"
	                    "bounce.rpt.test|reject||fail|fail|rpt.test\tsel\tfail\nother.test\t"
	                    "s2\tpass|bounce.rpt.test\tmfrom\tsoftfail");
	assert_int_equal(seen.count[0], 3);
	assert_int_equal(strncmp(seen.text[1],
	                         "rpt.test|reject none 100 r s|mailto:d@rpt.test!10m|"
	                         "2001:db8::1|rpt.test|bounce.rpt.test|none||pass|",
	                         90),
	                 0);
	assert_int_equal(seen.count[1], 1);
	seen.n = 0;
	assert_int_equal(store_dmarc_list(f->store, day, "RPT.Test", dmarc_collect, &seen), 0);
	assert_int_equal(seen.n, 2);
	seen.n = 0;
	assert_int_equal(store_dmarc_list(f->store, day, "zzz.test", dmarc_collect, &seen), 0);
	assert_int_equal(seen.n, 0);
	assert_int_equal(store_dmarc_list(f->store, day + 1, NULL, dmarc_collect, &seen), 0);
	assert_int_equal(seen.n, 1);
	assert_int_equal(strncmp(seen.text[0], "zzz.test|", 9), 0);
	seen.n = 0;

	/* Claims: once per day; invalid without a day or keep_days. */
	struct store_queue_op op = {
	    .action = STORE_QUEUE_DMARC_DAY, .id = (uint64_t)day, .dmarc_keep_days = 14};
	assert_int_equal(store_queue_wait(f->store, &op), 0);
	assert_int_equal(op.changed, 1);
	assert_int_equal(store_queue_wait(f->store, &op), 0);
	assert_int_equal(op.changed, 0);
	op = (struct store_queue_op){.action = STORE_QUEUE_DMARC_DAY, .id = (uint64_t)day};
	assert_int_equal(store_queue_wait(f->store, &op), -1);
	/* 13 days later the day is kept; 14 days later it goes (the next day's stays). */
	op = (struct store_queue_op){
	    .action = STORE_QUEUE_DMARC_DAY, .id = (uint64_t)day + 13, .dmarc_keep_days = 14};
	assert_int_equal(store_queue_wait(f->store, &op), 0);
	assert_int_equal(op.changed, 1);
	assert_int_equal(store_dmarc_list(f->store, day, NULL, dmarc_collect, &seen), 0);
	assert_int_equal(seen.n, 2);
	seen.n = 0;
	op = (struct store_queue_op){
	    .action = STORE_QUEUE_DMARC_DAY, .id = (uint64_t)day + 14, .dmarc_keep_days = 14};
	assert_int_equal(store_queue_wait(f->store, &op), 0);
	assert_int_equal(store_dmarc_list(f->store, day, NULL, dmarc_collect, &seen), 0);
	assert_int_equal(seen.n, 0);
	assert_int_equal(store_dmarc_list(f->store, day + 1, NULL, dmarc_collect, &seen), 0);
	assert_int_equal(seen.n, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH(test_entries_per_domain),
	    BOTH(test_claim_owners_and_hold),
	    BOTH(test_lease_expiry_and_renew),
	    BOTH(test_results),
	    BOTH(test_delete_keeps_local_copy),
	    BOTH(test_flush_warn_unlease),
	    BOTH(test_claim_race_two_stores),
	    BOTH(test_hook),
	    BOTH(test_inline_entry),
	    PG(test_pg_chunked_entry),
	    SQLITE(test_migration_3_to_4), /* a version-3 SQLite file */
	    BOTH(test_tlsrpt),
	    BOTH(test_dmarc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
