/* Unit tests of the store (store.h) on both engines (store_engines.h: SQLite, and
 * PostgreSQL when POSTHORN_TEST_PGURL is set): domains, accounts, aliases, recipient
 * resolution, group-committed delivery (content-addressed files on SQLite, rows on
 * PostgreSQL; UID order under concurrency, the outbound queue), APOP secrets, mailbox
 * snapshots by account id, expunges (alone, mixed with deliveries, concurrent), reopening,
 * reads, leases; on SQLite only, orphan cleanup and migrations of old SQLite files. Each test
 * runs in a fresh mkdtemp() directory (and PostgreSQL schema). The database is inspected
 * directly only where the API has no window (journal mode, UIDVALIDITY, tombstones, a
 * planted orphan row, a version-1 database); the writer's blob_lock is held from here only
 * to make one batch's contents deterministic. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/xmalloc.h"
#include "store/blob.h"
#include "store/pg/sql_pg.h"
#include "store/sqlite/sql_sqlite.h"
#include "store/store_db.h"
#include "store/store.h"
#include "store/store_private.h"
#include "store_engines.h"
#include "core/banned.h"

struct fixture {
	struct engine eng; /* the database: SQLite in dir, or a PostgreSQL schema */
	char dir[64];      /* the data directory (on PostgreSQL: spool files only) */
	struct store *store;
};

/* What open_store() sets as the store's inline limit. */
static uint64_t fixture_inline_max;

static void open_store(struct fixture *f)
{
	const char *error = NULL;
	if (store_open_engine(f->dir, engine_name(&f->eng), f->eng.target, &f->store, &error) < 0)
		fail_msg("store_open_engine: %s", error);
	/* Bodies in files unless a test asks for them inline (test_inline_*). */
	store_set_inline_max(f->store, fixture_inline_max);
}

static void reopen_store(struct fixture *f)
{
	store_close(&f->store);
	assert_null(f->store);
	open_store(f);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	int ret = engine_start(&f->eng, engine_kind(state), "test_store");
	*state = NULL;
	if (ret <= 0) {
		free(f);
		return ret; /* 0: the test skips */
	}
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	open_store(f);
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

/* The schema version of a current store: each engine numbers its own migrations. */
static int latest_schema(const struct fixture *f)
{
	return on_pg(f) ? SQL_PG_MIGRATION_COUNT : SQL_SQLITE_MIGRATION_COUNT;
}

/* A fixture with domain example.org and accounts a@, b@, c@ (ids in ids[]). */
static void add_accounts(struct fixture *f, uint64_t ids[3])
{
	const char *error = NULL;
	const char *names[3] = {"a@example.org", "b@example.org", "c@example.org"};
	assert_int_equal(store_domain_add(f->store, "example.org", &error), 0);
	for (int i = 0; i < 3; i++) {
		if (store_account_add(f->store, names[i], "hash", 0, &error) < 0)
			fail_msg("account_add: %s", error);
		assert_int_equal(store_account_lookup(f->store, names[i], &ids[i], NULL, NULL), 1);
	}
}

/* Write bytes to a new spool file; returns its malloc'd path. */
static char *spool(struct store *store, const char *data)
{
	char *path = store_spool_path_dup(store);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, strlen(data), fp), strlen(data));
	assert_int_equal(fclose(fp), 0);
	return path;
}

static int deliver(struct store *store, const char *data, const uint64_t *accounts, size_t n,
                   const char *const *remote, size_t nremote)
{
	char *path = spool(store, data);
	struct store_delivery d = {
	    .spool_path = path,
	    .mail_from = "sender@remote.example",
	    .accounts = accounts,
	    .account_count = n,
	    .remote = remote,
	    .remote_count = nremote,
	    .received_at = 1700000000,
	    .hdr_from = "Sender <sender@remote.example>",
	    .hdr_subject = "hello",
	};
	int ret = store_deliver_wait(store, &d);
	if (ret == 0)
		assert_int_equal(d.size, strlen(data));
	assert_int_equal(access(path, F_OK), -1); /* the store took the file */
	free(path);
	return ret;
}

/* ---- collectors ---- */

struct strings {
	char v[32][128];
	int n;
};

static void collect_domain(void *ctx, const char *domain)
{
	struct strings *s = ctx;
	snprintf(s->v[s->n++], sizeof(s->v[0]), "%s", domain);
}

static void collect_alias(void *ctx, const char *alias, const char *target)
{
	struct strings *s = ctx;
	snprintf(s->v[s->n++], sizeof(s->v[0]), "%s>%s", alias, target);
}

static void collect_account(void *ctx, const struct store_account_info *info)
{
	struct strings *s = ctx;
	snprintf(s->v[s->n++], sizeof(s->v[0]), "%s q=%llu u=%llu m=%llu", info->address,
	         (unsigned long long)info->quota, (unsigned long long)info->used,
	         (unsigned long long)info->messages);
}

struct uids {
	uint32_t v[512];
	uint64_t size[512];
	char flags[512][64];
	char from[512][32];
	int64_t date[512];
	int n;
};

static void collect_uid(void *ctx, const struct store_message_info *info)
{
	struct uids *u = ctx;
	assert_true(u->n < 512);
	u->size[u->n] = info->size;
	snprintf(u->flags[u->n], sizeof(u->flags[0]), "%s", info->flags);
	snprintf(u->from[u->n], sizeof(u->from[0]), "%s", info->mail_from);
	u->date[u->n] = info->internal_date;
	u->v[u->n++] = info->uid;
}

static void collect_queue(void *ctx, const struct store_queue_info *info)
{
	struct strings *s = ctx;
	snprintf(s->v[s->n++], sizeof(s->v[0]), "%s>%s %llu %u/%u %u '%s'", info->mail_from,
	         info->domain, (unsigned long long)info->size, info->pending, info->rcpts,
	         info->attempts, info->last_error);
	assert_true(info->created > 0 && info->next_attempt == info->created);
}

static struct uids *list_inbox(struct fixture *f, const char *address, int expect)
{
	static struct uids u;
	memset(&u, 0, sizeof(u));
	assert_int_equal(store_mail_list(f->store, address, "INBOX", collect_uid, &u), expect);
	return &u;
}

/* ---- domains ---- */

static void test_domains(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *error = NULL;
	struct strings s = {.n = 0};
	assert_int_equal(store_domain_add(f->store, "Example.ORG", &error), 0);
	assert_int_equal(store_domain_add(f->store, "b.example", &error), 0);
	assert_int_equal(store_domain_add(f->store, "example.org", &error), -1);
	assert_non_null(strstr(error, "exists"));
	assert_int_equal(store_domain_add(f->store, "bad domain", &error), -1);
	assert_int_equal(store_domain_add(f->store, "-x.example", &error), -1);
	assert_int_equal(store_domain_add(f->store, "", &error), -1);
	assert_int_equal(store_domain_list(f->store, collect_domain, &s), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.v[0], "b.example");
	assert_string_equal(s.v[1], "example.org");
	assert_int_equal(store_domain_is_local(f->store, "EXAMPLE.org"), 1);
	assert_int_equal(store_domain_is_local(f->store, "other.org"), 0);

	assert_int_equal(store_account_add(f->store, "u@example.org", "h", 0, &error), 0);
	assert_int_equal(store_alias_add(f->store, "x@b.example", "u@example.org", &error), 0);
	assert_int_equal(store_domain_del(f->store, "example.org", &error), -1);
	assert_non_null(strstr(error, "used"));
	assert_int_equal(store_domain_del(f->store, "b.example", &error), -1);
	assert_int_equal(store_alias_del(f->store, "x@b.example", NULL, &error), 0);
	assert_int_equal(store_domain_del(f->store, "b.example", &error), 0);
	assert_int_equal(store_domain_del(f->store, "b.example", &error), -1);
	assert_int_equal(store_account_del(f->store, "u@example.org", &error), 0);
	assert_int_equal(store_domain_del(f->store, "example.org", &error), 0);
	s.n = 0;
	assert_int_equal(store_domain_list(f->store, collect_domain, &s), 0);
	assert_int_equal(s.n, 0);
}

/* ---- accounts ---- */

static void test_accounts(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *error = NULL;
	const char *boxes[] = {"INBOX", "inbox", "Drafts", "Sent", "Trash", "Junk", "Archive"};
	uint64_t id = 0, quota = 1, used = 1;
	char *hash = NULL;
	struct store_account_info info;

	assert_int_equal(store_account_add(f->store, "u@example.org", "h", 0, &error), -1);
	assert_non_null(strstr(error, "not local"));
	assert_int_equal(store_domain_add(f->store, "example.org", &error), 0);
	assert_int_equal(store_account_add(f->store, "User@Example.org", "h1", 1000, &error), 0);
	assert_int_equal(store_account_add(f->store, "user@example.org", "h2", 0, &error), -1);
	assert_non_null(strstr(error, "exists"));
	assert_int_equal(store_account_add(f->store, "no-at.example.org", "h", 0, &error), -1);
	assert_int_equal(store_account_add(f->store, "a@b@example.org", "h", 0, &error), -1);
	assert_int_equal(store_account_add(f->store, "@example.org", "h", 0, &error), -1);
	assert_int_equal(store_account_add(f->store, "v@example.org", "h", 0, &error), 0);

	for (size_t i = 0; i < sizeof(boxes) / sizeof(boxes[0]); i++) {
		struct uids u = {.n = 0};
		assert_int_equal(
		    store_mail_list(f->store, "user@example.org", boxes[i], collect_uid, &u), 1);
		assert_int_equal(u.n, 0);
	}
	assert_int_equal(store_mail_list(f->store, "user@example.org", "drafts", collect_uid, NULL),
	                 0);
	assert_int_equal(
	    store_mail_list(f->store, "nobody@example.org", "INBOX", collect_uid, NULL), 0);

	assert_int_equal(store_account_lookup(f->store, "USER@example.org", &id, &hash, &info), 1);
	assert_string_equal(hash, "h1");
	free(hash);
	assert_string_equal(info.address, "user@example.org");
	assert_int_equal(info.id, id);
	assert_int_equal(info.quota, 1000);
	assert_int_equal(info.used, 0);
	assert_int_equal(info.messages, 0);
	assert_int_equal(store_account_lookup(f->store, "nobody@example.org", &id, NULL, NULL), 0);

	assert_int_equal(store_account_set_password(f->store, "user@example.org", "h3", &error), 0);
	assert_int_equal(store_account_set_quota(f->store, "user@example.org", 5, &error), 0);
	assert_int_equal(store_account_set_quota(f->store, "nobody@example.org", 5, &error), -1);
	assert_int_equal(store_account_lookup(f->store, "user@example.org", &id, &hash, NULL), 1);
	assert_string_equal(hash, "h3");
	free(hash);
	assert_int_equal(store_account_usage(f->store, id, &quota, &used), 1);
	assert_int_equal(quota, 5);
	assert_int_equal(used, 0);
	assert_int_equal(store_account_usage(f->store, id + 100, &quota, &used), 0);

	struct strings s = {.n = 0};
	assert_int_equal(store_account_list(f->store, NULL, collect_account, &s), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.v[0], "user@example.org q=5 u=0 m=0");
	assert_string_equal(s.v[1], "v@example.org q=0 u=0 m=0");
	s.n = 0;
	assert_int_equal(store_account_list(f->store, "other.org", collect_account, &s), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(store_account_list(f->store, "example.org", collect_account, &s), 0);
	assert_int_equal(s.n, 2);

	assert_int_equal(store_account_del(f->store, "user@example.org", &error), 0);
	assert_int_equal(store_account_del(f->store, "user@example.org", &error), -1);
	assert_int_equal(store_account_lookup(f->store, "user@example.org", &id, NULL, NULL), 0);
	assert_int_equal(store_mail_list(f->store, "user@example.org", "INBOX", collect_uid, NULL),
	                 0);
	/* The address is free again. */
	assert_int_equal(store_account_add(f->store, "user@example.org", "h", 0, &error), 0);

	/* Account ids are never handed out twice, not even the highest after its deletion. */
	uint64_t v_id, w_id;
	assert_int_equal(store_account_lookup(f->store, "user@example.org", &v_id, NULL, NULL), 1);
	assert_true(v_id > id);
	assert_int_equal(store_account_del(f->store, "user@example.org", &error), 0);
	assert_int_equal(store_account_add(f->store, "w@example.org", "h", 0, &error), 0);
	assert_int_equal(store_account_lookup(f->store, "w@example.org", &w_id, NULL, NULL), 1);
	assert_true(w_id > v_id);
}

static sqlite3 *db_open(const char *dir);
static int db_rows(struct fixture *f, const char *sql, int64_t *v, int ncols, int max);

static void test_uidvalidity_increases(void **state)
{
	struct fixture *f = fixture_get(state);
	uint64_t ids[3];
	static int64_t v[32 * 3];
	int64_t last = 0;

	add_accounts(f, ids);
	int rows = db_rows(f,
	                   "SELECT uidvalidity, uidnext, (SELECT count(*)"
	                   " FROM subscriptions s WHERE s.account_id ="
	                   " b.account_id AND s.name = b.name)"
	                   " FROM mailboxes b ORDER BY id",
	                   v, 3, 32);
	assert_int_equal(rows, 18);
	for (int i = 0; i < rows; i++) {
		assert_true(v[3 * i] > last);
		last = v[3 * i];
		assert_int_equal(v[3 * i + 1], 1);
		assert_int_equal(v[3 * i + 2], 1);
	}
	if (!on_pg(f)) {
		sqlite3 *db = db_open(f->dir);
		sqlite3_stmt *st;
		assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL),
		                 SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
}

/* ---- aliases and resolution ---- */

static void expect_resolve(struct fixture *f, const char *address, int ret, size_t count,
                           const uint64_t *expect)
{
	struct store_rcpt rcpt;
	assert_int_equal(store_resolve(f->store, address, &rcpt), ret);
	assert_int_equal(rcpt.count, count);
	for (size_t i = 0; i < count; i++) {
		bool found = false;
		for (size_t k = 0; k < rcpt.count; k++)
			found = found || rcpt.account_ids[k] == expect[i];
		assert_true(found);
	}
}

static void test_aliases(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *error = NULL;
	uint64_t ids[3];
	struct strings s = {.n = 0};

	add_accounts(f, ids);
	assert_int_equal(store_alias_add(f->store, "info@example.org", "a@example.org", &error), 0);
	assert_int_equal(store_alias_add(f->store, "team@example.org", "a@example.org", &error), 0);
	assert_int_equal(store_alias_add(f->store, "Team@example.org", "B@example.org", &error), 0);
	assert_int_equal(store_alias_add(f->store, "team@example.org", "b@example.org", &error),
	                 -1);
	assert_int_equal(store_alias_add(f->store, "all@example.org", "team@example.org", &error),
	                 0);
	assert_int_equal(store_alias_add(f->store, "all@example.org", "c+x@example.org", &error),
	                 0);
	/* An account address cannot be an alias and vice versa; domains must be local. */
	assert_int_equal(store_alias_add(f->store, "a@example.org", "b@example.org", &error), -1);
	assert_int_equal(store_account_add(f->store, "info@example.org", "h", 0, &error), -1);
	assert_int_equal(store_alias_add(f->store, "x@other.org", "a@example.org", &error), -1);
	assert_int_equal(store_alias_add(f->store, "x@example.org", "a@other.org", &error), -1);
	assert_int_equal(store_alias_add(f->store, "x@example.org", "@example.org", &error), -1);
	assert_int_equal(store_alias_add(f->store, "x@example.org", "x@example.org", &error), -1);

	assert_int_equal(store_alias_list(f->store, collect_alias, &s), 0);
	assert_int_equal(s.n, 5);
	assert_string_equal(s.v[0], "all@example.org>c+x@example.org");
	assert_string_equal(s.v[4], "team@example.org>b@example.org");

	expect_resolve(f, "a@example.org", 1, 1, &ids[0]);
	expect_resolve(f, "A@EXAMPLE.ORG", 1, 1, &ids[0]);
	expect_resolve(f, "info@example.org", 1, 1, &ids[0]);
	expect_resolve(f, "team@example.org", 1, 2, ids);
	expect_resolve(f, "all@example.org", 1, 3, ids);
	expect_resolve(f, "a+tag@example.org", 1, 1, &ids[0]);
	expect_resolve(f, "team+x@example.org", 1, 2, ids);
	expect_resolve(f, "nobody@example.org", 0, 0, NULL);
	expect_resolve(f, "a@other.org", 0, 0, NULL);
	expect_resolve(f, "garbage", 0, 0, NULL);

	/* An alias must point at something that exists. */
	assert_int_equal(store_alias_add(f->store, "z@example.org", "nobody@example.org", &error),
	                 -1);
	assert_non_null(strstr(error, "not an account or alias"));
	/* A loop with an exit still finds the account. */
	assert_int_equal(store_alias_add(f->store, "y@example.org", "c@example.org", &error), 0);
	assert_int_equal(store_alias_add(f->store, "x@example.org", "y@example.org", &error), 0);
	assert_int_equal(store_alias_add(f->store, "y@example.org", "x@example.org", &error), 0);
	expect_resolve(f, "x@example.org", 1, 1, &ids[2]);
	/* Once the exit is gone, the loop resolves to nothing and does not hang. */
	assert_int_equal(store_alias_del(f->store, "y@example.org", "c@example.org", &error), 0);
	expect_resolve(f, "x@example.org", 0, 0, NULL);
	assert_int_equal(store_alias_add(f->store, "y@example.org", "c@example.org", &error), 0);

	/* Catch-all for whatever nothing else takes. */
	assert_int_equal(store_alias_add(f->store, "@example.org", "b@example.org", &error), 0);
	expect_resolve(f, "nobody@example.org", 1, 1, &ids[1]);
	expect_resolve(f, "a@example.org", 1, 1, &ids[0]);

	assert_int_equal(store_address_owned(f->store, ids[0], "a@example.org"), 1);
	assert_int_equal(store_address_owned(f->store, ids[0], "A+lists@example.org"), 1);
	assert_int_equal(store_address_owned(f->store, ids[0], "info@example.org"), 1);
	assert_int_equal(store_address_owned(f->store, ids[0], "team@example.org"), 1);
	assert_int_equal(store_address_owned(f->store, ids[1], "a@example.org"), 0);
	assert_int_equal(store_address_owned(f->store, ids[1], "nobody@example.org"), 0);
	assert_int_equal(store_address_owned(f->store, ids[0], "a@other.org"), 0);

	assert_int_equal(store_alias_del(f->store, "team@example.org", "a@example.org", &error), 0);
	expect_resolve(f, "team@example.org", 1, 1, &ids[1]);
	assert_int_equal(store_alias_del(f->store, "team@example.org", "a@example.org", &error),
	                 -1);
	assert_int_equal(store_alias_del(f->store, "all@example.org", NULL, &error), 0);
	assert_int_equal(store_alias_del(f->store, "all@example.org", NULL, &error), -1);
	assert_int_equal(store_alias_del(f->store, "@example.org", NULL, &error), 0);
	expect_resolve(f, "all@example.org", 0, 0, NULL);
}

/* ---- delivery ---- */

static void test_deliver_three(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *msg = "From: s@remote.example\r\nSubject: hello\r\n\r\nbody\r\n";
	uint64_t ids[3], accounts[4];
	const char *names[3] = {"a@example.org", "b@example.org", "c@example.org"};

	add_accounts(f, ids);
	accounts[0] = ids[0];
	accounts[1] = ids[1];
	accounts[2] = ids[2];
	accounts[3] = ids[0]; /* duplicate: ignored */
	assert_int_equal(deliver(f->store, msg, accounts, 4, NULL, 0), 0);
	expect_blobs(f, 1);

	for (int i = 0; i < 3; i++) {
		struct uids *u = list_inbox(f, names[i], 1);
		assert_int_equal(u->n, 1);
		assert_int_equal(u->v[0], 1);
		assert_int_equal(u->size[0], strlen(msg));
		assert_string_equal(u->flags[0], "");
		assert_string_equal(u->from[0], "sender@remote.example");
		assert_int_equal(u->date[0], 1700000000);

		int fd = -1;
		uint64_t size = 0;
		char buf[256];
		assert_int_equal(store_mail_open(f->store, names[i], "inbox", 1, &fd, &size), 1);
		assert_int_equal(size, strlen(msg));
		assert_int_equal(read(fd, buf, sizeof(buf)), (ssize_t)strlen(msg));
		assert_memory_equal(buf, msg, strlen(msg));
		close(fd);
		assert_int_equal(store_mail_open(f->store, names[i], "INBOX", 2, &fd, &size), 0);

		uint64_t quota, used;
		assert_int_equal(store_account_usage(f->store, ids[i], &quota, &used), 1);
		assert_int_equal(used, strlen(msg));
	}
	/* The same bytes again share the file; UIDs ascend. */
	assert_int_equal(deliver(f->store, msg, ids, 1, NULL, 0), 0);
	assert_int_equal(deliver(f->store, "other\r\n", ids, 1, NULL, 0), 0);
	expect_blobs(f, 2);
	struct uids *u = list_inbox(f, "a@example.org", 1);
	assert_int_equal(u->n, 3);
	assert_int_equal(u->v[0], 1);
	assert_int_equal(u->v[1], 2);
	assert_int_equal(u->v[2], 3);

	struct store_account_info info;
	uint64_t id;
	assert_int_equal(store_account_lookup(f->store, "a@example.org", &id, NULL, &info), 1);
	assert_int_equal(info.messages, 3);
	assert_int_equal(info.used, 2 * strlen(msg) + strlen("other\r\n"));

	/* Deleting a keeps the file b and c still use, and drops the one only a had. */
	const char *error;
	assert_int_equal(store_account_del(f->store, "a@example.org", &error), 0);
	expect_blobs(f, 1);
	u = list_inbox(f, "b@example.org", 1);
	assert_int_equal(u->n, 1);
	assert_int_equal(store_account_del(f->store, "b@example.org", &error), 0);
	assert_int_equal(store_account_del(f->store, "c@example.org", &error), 0);
	expect_blobs(f, 0);
}

/* A junk delivery goes to each account's \Junk special-use folder whatever its name: a@
 * keeps the "Junk" every account is created with, b@ renamed it "Spam" (special use kept),
 * c@ deleted it and gets the message in INBOX. A normal delivery still goes to INBOX. */
static void test_deliver_junk(void **state)
{
	struct fixture *f = fixture_get(state);
	uint64_t ids[3];
	add_accounts(f, ids);
	struct store_mailbox_op rename = {.action = STORE_MAILBOX_RENAME,
	                                  .account_id = ids[1],
	                                  .name = "Junk",
	                                  .new_name = "Spam"};
	assert_int_equal(store_mailbox_change_wait(f->store, &rename), 0);
	struct store_mailbox_op del = {
	    .action = STORE_MAILBOX_DELETE, .account_id = ids[2], .name = "Junk"};
	assert_int_equal(store_mailbox_change_wait(f->store, &del), 0);

	char *path = spool(f->store, "Subject: buy now\r\n\r\nspam\r\n");
	struct store_delivery d = {
	    .spool_path = path, .mail_from = "", .accounts = ids, .account_count = 3, .junk = true};
	assert_int_equal(store_deliver_wait(f->store, &d), 0);
	free(path);
	assert_int_equal(deliver(f->store, "ham\r\n", ids, 3, NULL, 0), 0);

	static struct uids u;
	memset(&u, 0, sizeof(u));
	assert_int_equal(store_mail_list(f->store, "a@example.org", "Junk", collect_uid, &u), 1);
	assert_int_equal(u.n, 1);
	assert_int_equal(u.size[0], strlen("Subject: buy now\r\n\r\nspam\r\n"));
	assert_int_equal(list_inbox(f, "a@example.org", 1)->n, 1);
	memset(&u, 0, sizeof(u));
	assert_int_equal(store_mail_list(f->store, "b@example.org", "Spam", collect_uid, &u), 1);
	assert_int_equal(u.n, 1);
	assert_int_equal(u.v[0], 1);
	struct uids *in = list_inbox(f, "b@example.org", 1);
	assert_int_equal(in->n, 1);
	assert_int_equal(in->size[0], strlen("ham\r\n"));
	in = list_inbox(f, "c@example.org", 1);
	assert_int_equal(in->n, 2); /* no \Junk folder: both in INBOX */
	assert_int_equal(in->size[0], strlen("Subject: buy now\r\n\r\nspam\r\n"));
}

static void collect_junk(void *ctx, const struct store_policy_junk_row *row)
{
	struct strings *s = ctx;
	snprintf(s->v[s->n++], sizeof(s->v[0]), "%s %s %d", row->address, row->verdict,
	         row->at > 0 && strlen(row->sha256) == 64);
}

/* Copying into \Junk records "junk" for the target's account, moving out of it "ham"; a
 * copy between two ordinary folders, or from Junk to Junk, records nothing. */
static void test_junk_training(void **state)
{
	struct fixture *f = fixture_get(state);
	uint64_t ids[3];
	add_accounts(f, ids);
	assert_int_equal(deliver(f->store, "one\r\n", ids, 1, NULL, 0), 0);
	assert_int_equal(deliver(f->store, "two\r\n", ids, 1, NULL, 0), 0);
	uint32_t uids[2] = {1, 2};
	struct store_copy cp = {.account_id = ids[0],
	                        .mailbox = "INBOX",
	                        .target = "Archive",
	                        .uids = uids,
	                        .uid_count = 2};
	assert_int_equal(store_copy_wait(f->store, &cp), 0);
	free(cp.source_uids);
	free(cp.target_uids);
	cp = (struct store_copy){.account_id = ids[0],
	                         .mailbox = "INBOX",
	                         .target = "Junk",
	                         .uids = uids,
	                         .uid_count = 2};
	assert_int_equal(store_copy_wait(f->store, &cp), 0);
	assert_int_equal(cp.count, 2);
	free(cp.source_uids);
	free(cp.target_uids);
	cp = (struct store_copy){.account_id = ids[0],
	                         .mailbox = "Junk",
	                         .target = "INBOX",
	                         .uids = uids,
	                         .uid_count = 1,
	                         .move = true};
	assert_int_equal(store_copy_wait(f->store, &cp), 0);
	assert_int_equal(cp.count, 1);
	free(cp.source_uids);
	free(cp.target_uids);
	static struct strings got;
	memset(&got, 0, sizeof(got));
	assert_int_equal(store_policy_junk_list(f->store, collect_junk, &got), 0);
	assert_int_equal(got.n, 3);
	int junk = 0, ham = 0;
	for (int i = 0; i < got.n; i++) {
		junk += strcmp(got.v[i], "a@example.org junk 1") == 0;
		ham += strcmp(got.v[i], "a@example.org ham 1") == 0;
	}
	assert_int_equal(junk, 2);
	assert_int_equal(ham, 1);
}

/* Policy writes have no callback: a waited-for write behind them shows they are done. */
static void policy_flush(struct fixture *f, uint64_t account)
{
	struct store_mailbox_op op = {
	    .action = STORE_MAILBOX_SUBSCRIBE, .account_id = account, .name = "INBOX"};
	assert_int_equal(store_mailbox_change_wait(f->store, &op), 0);
}

/* Greylisting triplets: new, passed, started over once expired; submissions counted with
 * their new recipients (a repeated one is not new). */
static void test_policy_state(void **state)
{
	struct fixture *f = fixture_get(state);
	uint64_t ids[3];
	add_accounts(f, ids);
	struct store_policy_greylist g;
	assert_int_equal(store_policy_greylist_get(f->store, "s|r|192.0.2", &g), 0);
	store_policy_greylist_note(f->store, "s|r|192.0.2", false, 1000, 0);
	store_policy_greylist_note(f->store, "s|r|192.0.2", false, 1100, 0); /* kept */
	policy_flush(f, ids[0]);
	assert_int_equal(store_policy_greylist_get(f->store, "s|r|192.0.2", &g), 1);
	assert_int_equal(g.first_seen, 1000);
	assert_false(g.passed);
	store_policy_greylist_note(f->store, "s|r|192.0.2", true, 1400, 0);
	policy_flush(f, ids[0]);
	assert_int_equal(store_policy_greylist_get(f->store, "s|r|192.0.2", &g), 1);
	assert_int_equal(g.first_seen, 1000);
	assert_int_equal(g.last_seen, 1400);
	assert_true(g.passed);
	/* Seen last before expired_before: a new sighting starts over, and the old go. */
	store_policy_greylist_note(f->store, "x|y|198.51.100", false, 1500, 0);
	store_policy_greylist_note(f->store, "s|r|192.0.2", false, 9000, 1450);
	policy_flush(f, ids[0]);
	assert_int_equal(store_policy_greylist_get(f->store, "s|r|192.0.2", &g), 1);
	assert_int_equal(g.first_seen, 9000);
	assert_false(g.passed);
	store_policy_greylist_note(f->store, "s|r|192.0.2", true, 9001, 1600);
	policy_flush(f, ids[0]);
	assert_int_equal(store_policy_greylist_get(f->store, "x|y|198.51.100", &g), 0);
	/* key ranges: Postgrey's client auto-whitelist counts "client NET|..." keys */
	store_policy_greylist_note(f->store, "client 192.0.2|a", true, 9002, 0);
	store_policy_greylist_note(f->store, "client 192.0.2|b", true, 9002, 0);
	store_policy_greylist_note(f->store, "client 192.0.20|c", true, 9002, 0);
	policy_flush(f, ids[0]);
	uint64_t passes = 9;
	assert_int_equal(store_policy_greylist_count(f->store, "client 192.0.2|", &passes), 0);
	assert_int_equal(passes, 2);
	assert_int_equal(store_policy_greylist_count(f->store, "client 198.51.100|", &passes), 0);
	assert_int_equal(passes, 0);

	int64_t now = (int64_t)time(NULL);
	const char *r1[] = {"x@remote.example", "y@remote.example", "x@remote.example"};
	const char *r2[] = {"x@remote.example", "z@remote.example"};
	store_policy_submission_note(f->store, ids[0], r1, 3, now - 10);
	store_policy_submission_note(f->store, ids[0], r2, 2, now - 5);
	store_policy_submission_note(f->store, ids[1], r2, 2, now - 5);
	policy_flush(f, ids[0]);
	uint64_t msgs, fresh;
	assert_int_equal(store_policy_submissions(f->store, ids[0], now - 86400, &msgs, &fresh), 0);
	assert_int_equal(msgs, 2);
	assert_int_equal(fresh, 3);
	assert_int_equal(store_policy_submissions(f->store, ids[0], now - 7, &msgs, &fresh), 0);
	assert_int_equal(msgs, 1);
	assert_int_equal(fresh, 1);
	assert_int_equal(store_policy_recipient_known(f->store, ids[0], "y@remote.example"), 1);
	assert_int_equal(store_policy_recipient_known(f->store, ids[0], "q@remote.example"), 0);
	assert_int_equal(store_policy_recipient_known(f->store, ids[2], "y@remote.example"), 0);
}

static void test_deliver_remote(void **state)
{
	struct fixture *f = fixture_get(state);
	uint64_t ids[3];
	const char *remote[2] = {"Bob@Remote.example", "carol@remote.example"};
	struct strings s = {.n = 0};

	add_accounts(f, ids);
	assert_int_equal(deliver(f->store, "remote only\r\n", NULL, 0, remote, 2), 0);
	assert_int_equal(deliver(f->store, "mixed\r\n", ids, 1, remote + 1, 1), 0);
	assert_int_equal(store_queue_list(f->store, NULL, collect_queue, &s), 0);
	/* One entry per message and destination domain (any case). */
	assert_int_equal(s.n, 2);
	assert_string_equal(s.v[0], "sender@remote.example>remote.example 13 2/2 0 ''");
	assert_string_equal(s.v[1], "sender@remote.example>remote.example 7 1/1 0 ''");
	expect_blobs(f, 2);
	/* Queued messages survive the deletion of every local recipient. */
	const char *error;
	assert_int_equal(store_account_del(f->store, "a@example.org", &error), 0);
	expect_blobs(f, 2);
	reopen_store(f);
	expect_blobs(f, 2);
}

struct async {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done, ok, failed, failed_without_error;
};

static void async_done(struct store_delivery *d, void *ctx)
{
	struct async *a = ctx;
	pthread_mutex_lock(&a->lock);
	a->done++;
	if (d->result == 0)
		a->ok++;
	else {
		a->failed++;
		a->failed_without_error += d->error == NULL;
	}
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

/* The null sender is stored as "". */
static const char *u_from_empty_check(struct fixture *f)
{
	static struct uids u;
	memset(&u, 0, sizeof(u));
	assert_int_equal(store_mail_list(f->store, "b@example.org", "INBOX", collect_uid, &u), 1);
	assert_true(u.n > 0);
	assert_true(u.date[0] > 1700000000);
	return u.from[0];
}

static void test_deliver_failures(void **state)
{
	struct fixture *f = fixture_get(state);
	uint64_t ids[3];
	enum { N = 40 };
	struct store_delivery d[N];
	char *paths[N];
	uint64_t bad = 999999;
	const char *bad_remote[1] = {"no-at-sign"};
	struct async a = {.done = 0};
	pthread_mutex_init(&a.lock, NULL);
	pthread_cond_init(&a.cond, NULL);

	add_accounts(f, ids);
	for (int i = 0; i < N; i++) {
		char body[64];
		snprintf(body, sizeof(body), "message %d\r\n", i);
		paths[i] = spool(f->store, body);
		d[i] = (struct store_delivery){.spool_path = paths[i],
		                               .mail_from = "",
		                               .accounts = &ids[1],
		                               .account_count = 1};
		if (i == 5)
			d[i].accounts = &bad; /* no such account: only this one fails */
		if (i == 9) {
			d[i].remote = bad_remote;
			d[i].remote_count = 1;
		}
		if (i == 13)
			d[i].account_count = 0; /* no recipients */
	}
	for (int i = 0; i < N; i++)
		store_deliver(f->store, &d[i], async_done, &a);
	pthread_mutex_lock(&a.lock);
	while (a.done < N)
		pthread_cond_wait(&a.cond, &a.lock);
	pthread_mutex_unlock(&a.lock);
	assert_int_equal(a.ok, N - 3);
	assert_int_equal(a.failed, 3);
	assert_int_equal(a.failed_without_error, 0);
	assert_string_equal(u_from_empty_check(f), "");
	assert_int_equal(d[5].result, -1);
	assert_int_equal(d[9].result, -1);
	assert_int_equal(d[13].result, -1);
	/* Error strings stay valid after the callback (callers read them on their own loop). */
	assert_string_equal(d[5].error, "database error");
	assert_string_equal(d[9].error, "invalid remote recipient");
	assert_string_equal(d[13].error, "no recipients");
	for (int i = 0; i < N; i++) {
		assert_int_equal(access(paths[i], F_OK), -1);
		free(paths[i]);
	}
	/* The file of the delivery that failed in the database went with it. */
	expect_blobs(f, N - 3);
	struct uids *u = list_inbox(f, "b@example.org", 1);
	assert_int_equal(u->n, N - 3);
	for (int i = 0; i < u->n; i++)
		assert_int_equal(u->v[i], (uint32_t)i + 1);

	/* A missing spool file fails that delivery only. */
	struct store_delivery missing = {
	    .spool_path = "/nonexistent/spool", .accounts = ids, .account_count = 1};
	assert_int_equal(store_deliver_wait(f->store, &missing), -1);
	assert_string_equal(missing.error, "storing the message file failed");
	pthread_cond_destroy(&a.cond);
	pthread_mutex_destroy(&a.lock);
}

struct worker {
	struct store *store;
	uint64_t account;
	int index;
	int failures;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < 50; i++) {
		char body[64];
		snprintf(body, sizeof(body), "worker %d message %d\r\n", w->index, i);
		char *path = store_spool_path_dup(w->store);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd < 0 || write(fd, body, strlen(body)) != (ssize_t)strlen(body))
			w->failures++;
		close(fd);
		struct store_delivery d = {.spool_path = path,
		                           .mail_from = "sender@remote.example",
		                           .accounts = &w->account,
		                           .account_count = 1,
		                           .received_at = 1700000000};
		if (store_deliver_wait(w->store, &d) != 0)
			w->failures++;
		free(path);
	}
	return NULL;
}

static void test_deliver_concurrent(void **state)
{
	struct fixture *f = fixture_get(state);
	uint64_t ids[3];
	pthread_t threads[4];
	struct worker workers[4];

	add_accounts(f, ids);
	for (int i = 0; i < 4; i++) {
		workers[i] = (struct worker){.store = f->store, .account = ids[2], .index = i};
		assert_int_equal(pthread_create(&threads[i], NULL, worker_main, &workers[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(threads[i], NULL);
		assert_int_equal(workers[i].failures, 0);
	}
	struct uids *u = list_inbox(f, "c@example.org", 1);
	assert_int_equal(u->n, 200);
	for (int i = 0; i < 200; i++)
		assert_int_equal(u->v[i], (uint32_t)i + 1);
	expect_blobs(f, 200);
}

struct reader {
	struct store *store;
	atomic_bool *stop;
	int errors, rounds;
	uint32_t max_seen;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct uids *u = xcalloc(1, sizeof(*u));
	while (!atomic_load(r->stop)) {
		memset(u, 0, sizeof(*u));
		if (store_mail_list(r->store, "c@example.org", "INBOX", collect_uid, u) != 1)
			r->errors++;
		/* UIDs become visible in order: always exactly 1..n. */
		for (int i = 0; i < u->n; i++)
			r->errors += u->v[i] != (uint32_t)i + 1;
		if (u->n > 0 && u->v[u->n - 1] > r->max_seen)
			r->max_seen = u->v[u->n - 1];
		r->rounds++;
	}
	free(u);
	return NULL;
}

/* Readers on their own connections see consistent snapshots while the writer commits. */
static void test_readers_during_delivery(void **state)
{
	struct fixture *f = fixture_get(state);
	uint64_t ids[3];
	pthread_t writers[2], readers[2];
	struct worker workers[2];
	struct reader rd[2];
	atomic_bool stop;

	atomic_init(&stop, false);
	add_accounts(f, ids);
	for (int i = 0; i < 2; i++) {
		rd[i] = (struct reader){.store = f->store, .stop = &stop};
		assert_int_equal(pthread_create(&readers[i], NULL, reader_main, &rd[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		workers[i] = (struct worker){.store = f->store, .account = ids[2], .index = i};
		assert_int_equal(pthread_create(&writers[i], NULL, worker_main, &workers[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(writers[i], NULL);
		assert_int_equal(workers[i].failures, 0);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++) {
		pthread_join(readers[i], NULL);
		assert_int_equal(rd[i].errors, 0);
		assert_true(rd[i].rounds > 0);
	}
	struct uids *u = list_inbox(f, "c@example.org", 1);
	assert_int_equal(u->n, 100);
}

/* ---- direct database access (only where the API has no window) ---- */

static sqlite3 *db_open(const char *dir)
{
	char path[512];
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/posthorn.db", dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

/* First column of the first row of a query (which must have one). */
static int64_t db_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void db_exec(sqlite3 *db, const char *sql)
{
	char *error = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &error) != SQLITE_OK)
		fail_msg("%s: %s", sql, error);
}

/* One query or script on the fixture's database (SQLite or PostgreSQL), on a connection of
 * its own; the SQL must be valid on both. db_rows() returns up to max rows of ncols integer
 * columns in v (row-major) and the row count. */
static int db_rows(struct fixture *f, const char *sql, int64_t *v, int ncols, int max)
{
	int n = 0;
	if (!on_pg(f)) {
		sqlite3 *db = db_open(f->dir);
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
			fail_msg("%s: %s", sql, sqlite3_errmsg(db));
		while (sqlite3_step(st) == SQLITE_ROW) {
			assert_true(n < max);
			for (int c = 0; c < ncols; c++)
				v[n * ncols + c] = sqlite3_column_int64(st, c);
			n++;
		}
		sqlite3_finalize(st);
		sqlite3_close(db);
		return n;
	}
	PGconn *c = PQconnectdb(f->eng.target);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect: %s", PQerrorMessage(c));
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	n = PQntuples(r);
	assert_true(n <= max);
	for (int i = 0; i < n; i++) {
		for (int col = 0; col < ncols; col++)
			v[i * ncols + col] = strtoll(PQgetvalue(r, i, col), NULL, 10);
	}
	PQclear(r);
	PQfinish(c);
	return n;
}

static int64_t fdb_int(struct fixture *f, const char *sql)
{
	int64_t v = 0;
	assert_int_equal(db_rows(f, sql, &v, 1, 1), 1);
	return v;
}

static void fdb_exec(struct fixture *f, const char *sql)
{
	if (!on_pg(f)) {
		sqlite3 *db = db_open(f->dir);
		db_exec(db, sql);
		sqlite3_close(db);
		return;
	}
	(void)db_rows(f, sql, NULL, 0, 0);
}

/* The expunge tombstones of an account's INBOX, in UID order. */
struct tombstones {
	uint32_t uid[512];
	int64_t modseq[512];
	int n;
};

static void db_tombstones(struct fixture *f, uint64_t account, struct tombstones *t)
{
	char sql[256];
	static int64_t v[512 * 2];
	memset(t, 0, sizeof(*t));
	snprintf(sql, sizeof(sql),
	         "SELECT e.uid, e.modseq FROM expunged e JOIN mailboxes b"
	         " ON b.id = e.mailbox_id WHERE b.account_id = %llu"
	         " AND b.name = 'INBOX' ORDER BY e.uid",
	         (unsigned long long)account);
	t->n = db_rows(f, sql, v, 2, 512);
	for (int i = 0; i < t->n; i++) {
		t->uid[i] = (uint32_t)v[2 * i];
		t->modseq[i] = v[2 * i + 1];
	}
}

/* ---- APOP ---- */

static void test_apop(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *error = NULL;
	uint64_t ids[3], id = 0;
	char *secret = NULL, *hash = NULL;
	char big[STORE_APOP_SECRET_MAX + 2];

	add_accounts(f, ids);
	assert_int_equal(store_account_get_apop(f->store, "a@example.org", &id, &secret), 0);
	assert_null(secret);
	assert_int_equal(store_account_set_apop(f->store, "A@Example.ORG", "tanstaaf", &error), 0);
	assert_int_equal(store_account_get_apop(f->store, "a@EXAMPLE.org", &id, &secret), 1);
	assert_int_equal(id, ids[0]);
	assert_string_equal(secret, "tanstaaf");
	free(secret);
	secret = NULL;
	assert_int_equal(store_account_get_apop(f->store, "b@example.org", &id, &secret), 0);
	assert_null(secret);

	/* Replacing it leaves the password alone. */
	assert_int_equal(store_account_set_apop(f->store, "a@example.org", "an other one", &error),
	                 0);
	assert_int_equal(store_account_get_apop(f->store, "a@example.org", NULL, &secret), 1);
	assert_string_equal(secret, "an other one");
	free(secret);
	secret = NULL;
	assert_int_equal(store_account_lookup(f->store, "a@example.org", &id, &hash, NULL), 1);
	assert_string_equal(hash, "hash");
	free(hash);

	/* Clearing, also when there is nothing to clear. */
	assert_int_equal(store_account_set_apop(f->store, "a@example.org", NULL, &error), 0);
	assert_int_equal(store_account_get_apop(f->store, "a@example.org", &id, &secret), 0);
	assert_null(secret);
	assert_int_equal(store_account_set_apop(f->store, "a@example.org", NULL, &error), 0);

	/* Unknown accounts and bad secrets. */
	error = NULL;
	assert_int_equal(store_account_set_apop(f->store, "nobody@example.org", "x", &error), -1);
	assert_non_null(strstr(error, "no such account"));
	assert_int_equal(store_account_set_apop(f->store, "nobody@example.org", NULL, &error), -1);
	assert_int_equal(store_account_set_apop(f->store, "garbage", "x", &error), -1);
	assert_int_equal(store_account_set_apop(f->store, "a@example.org", "", &error), -1);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(store_account_set_apop(f->store, "a@example.org", big, &error), -1);
	big[STORE_APOP_SECRET_MAX] = '\0';
	assert_int_equal(store_account_set_apop(f->store, "a@example.org", big, &error), 0);
	assert_int_equal(store_account_get_apop(f->store, "nobody@example.org", &id, &secret), 0);
	assert_int_equal(store_account_get_apop(f->store, "garbage", &id, &secret), 0);
	assert_null(secret);

	/* It is stored: it survives a reopen. */
	assert_int_equal(store_account_set_apop(f->store, "c@example.org", "kept", &error), 0);
	reopen_store(f);
	assert_int_equal(store_account_get_apop(f->store, "c@example.org", &id, &secret), 1);
	assert_int_equal(id, ids[2]);
	assert_string_equal(secret, "kept");
	free(secret);
}

/* ---- snapshots by account id ---- */

struct entries {
	struct store_entry v[512];
	int n;
};

static void collect_entry(void *ctx, const struct store_entry *entry)
{
	struct entries *e = ctx;
	assert_true(e->n < 512);
	e->v[e->n++] = *entry;
}

static struct entries *snapshot(struct fixture *f, uint64_t account, const char *mailbox,
                                int expect, struct store_mailbox_status *status_r)
{
	static struct entries e;
	memset(&e, 0, sizeof(e));
	assert_int_equal(
	    store_mailbox_snapshot(f->store, account, mailbox, status_r, collect_entry, &e),
	    expect);
	return &e;
}

/* Read a whole fd (at most 4 KiB) into buf; returns the length. */
static size_t read_all(int fd, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;
	while (len < size && (n = read(fd, buf + len, size - len)) > 0)
		len += (size_t)n;
	close(fd);
	return len;
}

/* store_message_open() of account/uid yields exactly expect. */
static void expect_message(struct fixture *f, uint64_t account, uint32_t uid, const char *expect)
{
	int fd = -1;
	uint64_t size = 0;
	char buf[4096];
	assert_int_equal(store_message_open(f->store, account, "INBOX", uid, &fd, &size), 1);
	assert_int_equal(size, strlen(expect));
	assert_int_equal(read_all(fd, buf, sizeof(buf)), strlen(expect));
	assert_memory_equal(buf, expect, strlen(expect));
}

struct nested {
	struct store *store;
	uint64_t account;
	int opened, inner_ok;
};

/* Store reads from inside a snapshot callback see the same snapshot. */
static void nested_entry(void *ctx, const struct store_entry *entry)
{
	struct nested *n = ctx;
	struct store_mailbox_status st;
	int fd;
	uint64_t size;
	if (store_message_open(n->store, n->account, "INBOX", entry->uid, &fd, &size) == 1) {
		close(fd);
		n->opened += size == entry->size;
	}
	n->inner_ok += store_mailbox_snapshot(n->store, n->account, "INBOX", &st, NULL, NULL) == 1;
}

static void test_snapshot(void **state)
{
	struct fixture *f = fixture_get(state);
	uint64_t ids[3];
	const char *msgs[3] = {"first\r\n", "second message\r\n", "third, the longest one\r\n"};
	struct store_mailbox_status st, st2;
	char sql[256];

	add_accounts(f, ids);
	for (int i = 0; i < 3; i++)
		assert_int_equal(deliver(f->store, msgs[i], ids, 1, NULL, 0), 0);
	assert_int_equal(deliver(f->store, "for b\r\n", &ids[1], 1, NULL, 0), 0);

	struct entries *e = snapshot(f, ids[0], "inbox", 1, &st);
	assert_int_equal(st.messages, 3);
	assert_int_equal(st.uidnext, 4);
	assert_int_equal(e->n, 3);
	snprintf(sql, sizeof(sql),
	         "SELECT uidvalidity FROM mailboxes WHERE account_id = %llu AND name = 'INBOX'",
	         (unsigned long long)ids[0]);
	assert_int_equal(st.uidvalidity, fdb_int(f, sql));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(e->v[i].uid, (uint32_t)i + 1);
		assert_int_equal(e->v[i].size, strlen(msgs[i]));
		assert_int_equal(e->v[i].internal_date, 1700000000);
		assert_int_equal(e->v[i].flags, 0);
		assert_true(i == 0 || e->v[i].modseq > e->v[i - 1].modseq);
	}
	assert_int_equal(st.highestmodseq, e->v[2].modseq);

	/* The flag bits are the ones the backend stores. */
	snprintf(sql, sizeof(sql),
	         "UPDATE mailbox_entries SET flags = 9 WHERE uid = 2 AND mailbox_id ="
	         " (SELECT id FROM mailboxes WHERE account_id = %llu AND name = 'INBOX')",
	         (unsigned long long)ids[0]);
	fdb_exec(f, sql);
	e = snapshot(f, ids[0], "INBOX", 1, &st);
	assert_int_equal(e->v[1].flags, STORE_FLAG_SEEN | STORE_FLAG_DELETED);
	struct uids *u = list_inbox(f, "a@example.org", 1);
	assert_string_equal(u->flags[1], "\\Seen \\Deleted");

	/* Other mailboxes and accounts. */
	e = snapshot(f, ids[0], "Drafts", 1, &st2);
	assert_int_equal(e->n, 0);
	assert_int_equal(st2.messages, 0);
	assert_int_equal(st2.uidnext, 1);
	assert_true(st2.uidvalidity != st.uidvalidity);
	snapshot(f, ids[0], "drafts", 0, &st2);
	snapshot(f, ids[0], "Nope", 0, &st2);
	snapshot(f, ids[2] + 100, "INBOX", 0, &st2);
	e = snapshot(f, ids[1], "INBOX", 1, &st2);
	assert_int_equal(e->n, 1);
	assert_int_equal(store_mailbox_snapshot(f->store, ids[2], "INBOX", &st2, NULL, NULL), 1);
	assert_int_equal(st2.messages, 0);

	/* The same bytes by id as by address. */
	for (uint32_t uid = 1; uid <= 3; uid++) {
		int fd;
		uint64_t size;
		char buf[4096], buf2[4096];
		assert_int_equal(
		    store_mail_open(f->store, "a@example.org", "INBOX", uid, &fd, &size), 1);
		size_t len = read_all(fd, buf, sizeof(buf));
		assert_int_equal(len, size);
		assert_int_equal(store_message_open(f->store, ids[0], "inbox", uid, &fd, &size), 1);
		assert_int_equal(read_all(fd, buf2, sizeof(buf2)), len);
		assert_int_equal(size, len);
		assert_memory_equal(buf, buf2, len);
		expect_message(f, ids[0], uid, msgs[uid - 1]);
	}
	int fd;
	uint64_t size;
	assert_int_equal(store_message_open(f->store, ids[0], "INBOX", 4, &fd, &size), 0);
	assert_int_equal(store_message_open(f->store, ids[0], "INBOX", 0, &fd, &size), 0);
	assert_int_equal(store_message_open(f->store, ids[1], "INBOX", 2, &fd, &size), 0);
	assert_int_equal(store_message_open(f->store, ids[0], "Nope", 1, &fd, &size), 0);
	assert_int_equal(store_message_open(f->store, 999999, "INBOX", 1, &fd, &size), 0);
	expect_message(f, ids[1], 1, "for b\r\n");

	/* Reads from the callback, even another snapshot, work inside the snapshot. */
	struct nested n = {.store = f->store, .account = ids[0]};
	assert_int_equal(store_mailbox_snapshot(f->store, ids[0], "INBOX", &st, nested_entry, &n),
	                 1);
	assert_int_equal(n.opened, 3);
	assert_int_equal(n.inner_ok, 3);
}

/* ---- expunge ---- */

static void test_expunge(void **state)
{
	struct fixture *f = fixture_get(state);
	uint64_t ids[3], ab[2], used0, used, quota;
	const char *shared = "shared by a and b\r\n", *m2 = "only a, two\r\n";
	const char *m3 = "only a, three\r\n", *m4 = "only a, four\r\n";
	struct store_mailbox_status st0, st;
	struct tombstones t;

	add_accounts(f, ids);
	ab[0] = ids[0];
	ab[1] = ids[1];
	assert_int_equal(deliver(f->store, shared, ab, 2, NULL, 0), 0);
	assert_int_equal(deliver(f->store, m2, ids, 1, NULL, 0), 0);
	assert_int_equal(deliver(f->store, m3, ids, 1, NULL, 0), 0);
	assert_int_equal(deliver(f->store, m4, ids, 1, NULL, 0), 0);
	expect_blobs(f, 4);
	assert_int_equal(store_account_usage(f->store, ids[0], &quota, &used0), 1);
	snapshot(f, ids[0], "INBOX", 1, &st0);
	assert_int_equal(st0.messages, 4);

	/* 77 does not exist, 2 twice, 0 never does: all ignored. */
	uint32_t uids[] = {2, 77, 1, 2, 0};
	struct store_expunge x = {
	    .account_id = ids[0], .mailbox = "inbox", .uids = uids, .uid_count = 5};
	assert_int_equal(store_expunge_wait(f->store, &x), 0);
	assert_int_equal(x.result, 0);
	assert_null(x.error);
	assert_int_equal(x.expunged, 2);
	assert_int_equal(x.freed, strlen(shared) + strlen(m2));
	assert_int_equal(store_account_usage(f->store, ids[0], &quota, &used), 1);
	assert_int_equal(used, used0 - x.freed);

	struct entries *e = snapshot(f, ids[0], "INBOX", 1, &st);
	assert_int_equal(e->n, 2);
	assert_int_equal(e->v[0].uid, 3);
	assert_int_equal(e->v[1].uid, 4);
	assert_int_equal(st.messages, 2);
	assert_int_equal(st.uidnext, st0.uidnext);
	assert_int_equal(st.uidvalidity, st0.uidvalidity);
	assert_int_equal(st.highestmodseq, st0.highestmodseq + 1);
	db_tombstones(f, ids[0], &t);
	assert_int_equal(t.n, 2);
	assert_int_equal(t.uid[0], 1);
	assert_int_equal(t.uid[1], 2);
	assert_int_equal(t.modseq[0], (int64_t)st.highestmodseq);
	assert_int_equal(t.modseq[1], (int64_t)st.highestmodseq);
	struct store_account_info info;
	assert_int_equal(store_account_lookup(f->store, "a@example.org", NULL, NULL, &info), 1);
	assert_int_equal(info.messages, 2);

	/* m2's file went; the shared one stays for b. */
	expect_blobs(f, 3);
	int fd;
	uint64_t size;
	assert_int_equal(store_message_open(f->store, ids[0], "INBOX", 1, &fd, &size), 0);
	assert_int_equal(store_mail_open(f->store, "a@example.org", "INBOX", 2, &fd, &size), 0);
	expect_message(f, ids[1], 1, shared);
	expect_message(f, ids[0], 3, m3);

	/* b drops it too: now its file goes. */
	uint32_t one = 1;
	struct store_expunge xb = {
	    .account_id = ids[1], .mailbox = "INBOX", .uids = &one, .uid_count = 1};
	assert_int_equal(store_expunge_wait(f->store, &xb), 0);
	assert_int_equal(xb.expunged, 1);
	expect_blobs(f, 2);
	assert_int_equal(store_account_usage(f->store, ids[1], &quota, &used), 1);
	assert_int_equal(used, 0);

	/* Nothing left to remove: success, no MODSEQ bump, no new tombstone. */
	uint32_t gone[] = {1, 2, 1000};
	struct store_expunge x0 = {
	    .account_id = ids[0], .mailbox = "INBOX", .uids = gone, .uid_count = 3};
	assert_int_equal(store_expunge_wait(f->store, &x0), 0);
	assert_int_equal(x0.expunged, 0);
	assert_int_equal(x0.freed, 0);
	struct store_expunge xn = {.account_id = ids[0], .mailbox = "INBOX"};
	assert_int_equal(store_expunge_wait(f->store, &xn), 0);
	struct store_expunge xd = {
	    .account_id = ids[0], .mailbox = "Drafts", .uids = &one, .uid_count = 1};
	assert_int_equal(store_expunge_wait(f->store, &xd), 0);
	assert_int_equal(xd.expunged, 0);
	snapshot(f, ids[0], "INBOX", 1, &st0);
	assert_int_equal(st0.highestmodseq, st.highestmodseq);
	db_tombstones(f, ids[0], &t);
	assert_int_equal(t.n, 2);

	/* No such mailbox or account. */
	uint32_t three = 3;
	struct store_expunge bad[3] = {
	    {.account_id = ids[0], .mailbox = "Nope", .uids = &three, .uid_count = 1},
	    {.account_id = 999999, .mailbox = "INBOX", .uids = &three, .uid_count = 1},
	    {.account_id = ids[0], .mailbox = NULL, .uids = &three, .uid_count = 1},
	};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(store_expunge_wait(f->store, &bad[i]), -1);
		assert_non_null(bad[i].error);
		assert_string_equal(bad[i].error, STORE_EXPUNGE_NO_MAILBOX);
		assert_int_equal(bad[i].expunged, 0);
	}
	e = snapshot(f, ids[0], "INBOX", 1, &st);
	assert_int_equal(e->n, 2);

	/* UIDs are never reused: the highest goes, the next delivery gets a higher one. */
	uint32_t four = 4;
	struct store_expunge xh = {
	    .account_id = ids[0], .mailbox = "INBOX", .uids = &four, .uid_count = 1};
	assert_int_equal(store_expunge_wait(f->store, &xh), 0);
	assert_int_equal(deliver(f->store, m4, ids, 1, NULL, 0), 0);
	/* The bytes of an expunged message come back in a new file. */
	assert_int_equal(deliver(f->store, m2, ids, 1, NULL, 0), 0);
	e = snapshot(f, ids[0], "INBOX", 1, &st);
	assert_int_equal(e->n, 3);
	assert_int_equal(e->v[0].uid, 3);
	assert_int_equal(e->v[1].uid, 5);
	assert_int_equal(e->v[2].uid, 6);
	assert_int_equal(st.uidnext, 7);
	expect_message(f, ids[0], 5, m4);
	expect_message(f, ids[0], 6, m2);
	expect_blobs(f, 3);
	assert_int_equal(store_account_usage(f->store, ids[0], &quota, &used), 1);
	assert_int_equal(used, strlen(m2) + strlen(m3) + strlen(m4));

	/* Nothing the cleanup at open would have to fix. */
	reopen_store(f);
	expect_blobs(f, 3);
	expect_message(f, ids[0], 6, m2);
}

/* Completion counter for asynchronous deliveries and expunges. */
struct ops {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done;
};

static void ops_delivered(struct store_delivery *d, void *ctx)
{
	struct ops *o = ctx;
	(void)d;
	pthread_mutex_lock(&o->lock);
	o->done++;
	pthread_cond_signal(&o->cond);
	pthread_mutex_unlock(&o->lock);
}

static void ops_expunged(struct store_expunge *x, void *ctx)
{
	struct ops *o = ctx;
	(void)x;
	pthread_mutex_lock(&o->lock);
	o->done++;
	pthread_cond_signal(&o->cond);
	pthread_mutex_unlock(&o->lock);
}

static void ops_wait(struct ops *o, int n)
{
	pthread_mutex_lock(&o->lock);
	while (o->done < n)
		pthread_cond_wait(&o->cond, &o->lock);
	o->done = 0;
	pthread_mutex_unlock(&o->lock);
}

/* Wait until the writer has taken everything from its queue. */
static void writer_took_all(struct store *store)
{
	for (;;) {
		pthread_mutex_lock(&store->queue_lock);
		bool empty = store->queue_head == NULL;
		pthread_mutex_unlock(&store->queue_lock);
		if (empty)
			return;
		usleep(1000);
	}
}

/* One batch holding an expunge that drops a message's last reference and a delivery of the
 * same bytes: the file must survive, with and without the one-by-one retry that a failing
 * delivery in the batch forces. */
static void test_expunge_batch(void **state)
{
	struct fixture *f = fixture_get(state);
	uint64_t ids[3], bad = 999999;
	const char *msg = "expunged and delivered again\r\n";
	struct ops o = {.done = 0};
	pthread_mutex_init(&o.lock, NULL);
	pthread_cond_init(&o.cond, NULL);

	add_accounts(f, ids);
	assert_int_equal(deliver(f->store, msg, ids, 1, NULL, 0), 0);
	for (int round = 0; round < 2; round++) {
		uint32_t uid = (uint32_t)round + 1;
		char filler[64];
		snprintf(filler, sizeof(filler), "filler %d\r\n", round);
		char *p0 = spool(f->store, filler), *p1 = spool(f->store, msg);
		char *p2 = spool(f->store, "never stored\r\n");
		struct store_delivery d0 = {
		    .spool_path = p0, .accounts = &ids[2], .account_count = 1};
		struct store_delivery d1 = {.spool_path = p1, .accounts = ids, .account_count = 1};
		struct store_delivery d2 = {.spool_path = p2, .accounts = &bad, .account_count = 1};
		struct store_expunge x = {
		    .account_id = ids[0], .mailbox = "INBOX", .uids = &uid, .uid_count = 1};

		/* The writer takes d0 alone and waits for blob_lock; the rest queue behind it. */
		pthread_mutex_lock(&f->store->blob_lock);
		store_deliver(f->store, &d0, ops_delivered, &o);
		writer_took_all(f->store);
		store_expunge(f->store, &x, ops_expunged, &o);
		if (round == 0)
			store_deliver(f->store, &d2, ops_delivered, &o);
		store_deliver(f->store, &d1, ops_delivered, &o);
		pthread_mutex_unlock(&f->store->blob_lock);
		ops_wait(&o, round == 0 ? 4 : 3);

		assert_int_equal(d0.result, 0);
		assert_int_equal(x.result, 0);
		assert_int_equal(x.expunged, 1);
		assert_int_equal(d1.result, 0);
		if (round == 0)
			assert_int_equal(d2.result, -1);
		struct store_mailbox_status st;
		struct entries *e = snapshot(f, ids[0], "INBOX", 1, &st);
		assert_int_equal(e->n, 1);
		assert_int_equal(e->v[0].uid, uid + 1);
		expect_message(f, ids[0], uid + 1, msg);
		/* msg and the fillers; the failed delivery's file is gone. */
		expect_blobs(f, 2 + round);
		free(p0);
		free(p1);
		free(p2);
	}
	pthread_cond_destroy(&o.cond);
	pthread_mutex_destroy(&o.lock);
}

struct expunger {
	struct store *store;
	uint64_t account;
	atomic_bool *stop;
	int failures, rounds;
	uint32_t expunged; /* entries removed by this thread */
	uint32_t bumps;    /* its expunges that removed something (one MODSEQ each) */
};

static void expunger_count(struct expunger *w, const struct store_expunge *x)
{
	if (x->result != 0)
		w->failures++;
	w->expunged += x->expunged;
	w->bumps += x->expunged > 0;
}

static void *expunger_main(void *arg)
{
	struct expunger *w = arg;
	struct entries *e = xcalloc(1, sizeof(*e));
	struct ops o = {.done = 0};
	pthread_mutex_init(&o.lock, NULL);
	pthread_cond_init(&o.cond, NULL);
	while (!atomic_load(w->stop)) {
		struct store_mailbox_status st;
		e->n = 0;
		if (store_mailbox_snapshot(w->store, w->account, "INBOX", &st, collect_entry, e) !=
		    1)
			w->failures++;
		/* A consistent snapshot: the count matches, UIDs ascend below UIDNEXT. */
		w->failures += st.messages != (uint32_t)e->n;
		for (int i = 0; i < e->n; i++) {
			w->failures += i > 0 && e->v[i].uid <= e->v[i - 1].uid;
			w->failures += e->v[i].uid >= st.uidnext;
		}
		w->rounds++;
		if (e->n < 2) {
			usleep(500);
			continue;
		}
		/* The highest and the lowest, waited for; then two more queued at once. */
		uint32_t ends[2] = {e->v[e->n - 1].uid, e->v[0].uid};
		struct store_expunge x = {
		    .account_id = w->account, .mailbox = "INBOX", .uids = ends, .uid_count = 2};
		store_expunge_wait(w->store, &x);
		expunger_count(w, &x);
		uint32_t mid[2] = {e->v[e->n / 2].uid, e->v[1].uid};
		struct store_expunge y[2] = {
		    {.account_id = w->account, .mailbox = "INBOX", .uids = &mid[0], .uid_count = 1},
		    {.account_id = w->account, .mailbox = "inbox", .uids = &mid[1], .uid_count = 1},
		};
		store_expunge(w->store, &y[0], ops_expunged, &o);
		store_expunge(w->store, &y[1], ops_expunged, &o);
		ops_wait(&o, 2);
		expunger_count(w, &y[0]);
		expunger_count(w, &y[1]);
	}
	pthread_cond_destroy(&o.cond);
	pthread_mutex_destroy(&o.lock);
	free(e);
	return NULL;
}

/* Deliveries and expunges from several threads: every count adds up and no UID is used
 * twice (each of 1..N is either still there or has exactly one tombstone). */
static void test_expunge_concurrent(void **state)
{
	struct fixture *f = fixture_get(state);
	uint64_t ids[3], quota, used;
	pthread_t writers[2], expungers[2];
	struct worker workers[2];
	struct expunger ex[2];
	atomic_bool stop;

	atomic_init(&stop, false);
	add_accounts(f, ids);
	for (int i = 0; i < 2; i++) {
		ex[i] = (struct expunger){.store = f->store, .account = ids[2], .stop = &stop};
		assert_int_equal(pthread_create(&expungers[i], NULL, expunger_main, &ex[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		workers[i] = (struct worker){.store = f->store, .account = ids[2], .index = i};
		assert_int_equal(pthread_create(&writers[i], NULL, worker_main, &workers[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(writers[i], NULL);
		assert_int_equal(workers[i].failures, 0);
	}
	atomic_store(&stop, true);
	uint32_t expunged = 0, bumps = 0;
	for (int i = 0; i < 2; i++) {
		pthread_join(expungers[i], NULL);
		assert_int_equal(ex[i].failures, 0);
		assert_true(ex[i].rounds > 0);
		expunged += ex[i].expunged;
		bumps += ex[i].bumps;
	}
	assert_true(expunged > 0);

	struct store_mailbox_status st;
	struct entries *e = snapshot(f, ids[2], "INBOX", 1, &st);
	assert_int_equal(st.uidnext, 101);
	assert_int_equal((uint32_t)e->n + expunged, 100);
	assert_int_equal(st.highestmodseq, 1 + 100 + bumps);
	struct tombstones t;
	db_tombstones(f, ids[2], &t);
	assert_int_equal(t.n, expunged);
	bool seen[101] = {false};
	uint64_t sum = 0;
	for (int i = 0; i < e->n; i++) {
		assert_false(seen[e->v[i].uid]);
		seen[e->v[i].uid] = true;
		sum += e->v[i].size;
	}
	for (int i = 0; i < t.n; i++) {
		assert_true(t.uid[i] >= 1 && t.uid[i] <= 100);
		assert_false(seen[t.uid[i]]);
		seen[t.uid[i]] = true;
	}
	for (int uid = 1; uid <= 100; uid++)
		assert_true(seen[uid]);
	assert_int_equal(store_account_usage(f->store, ids[2], &quota, &used), 1);
	assert_int_equal(used, sum);
	expect_blobs(f, e->n);
}

/* A database made by migration 1 alone, with data as a version-1 store wrote it, opens with
 * migration 2 applied and every row kept. */
static void test_migration_1_to_2(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *error = NULL, *body = "Subject: from version 1\r\n\r\nold\r\n";
	char dir[128], path[256], hex[BLOB_HEX_LEN + 1], sql[1024];
	uint64_t size = 0, id = 0;
	bool created;
	sqlite3_stmt *st;

	snprintf(dir, sizeof(dir), "%s/v1", f->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(store_db_create(dir, 1, &error), 0);
	sqlite3 *db = db_open(dir);
	assert_int_equal(db_int(db, "PRAGMA user_version"), 1);
	assert_int_not_equal(
	    sqlite3_prepare_v2(db, "SELECT apop_secret FROM accounts", -1, &st, NULL), SQLITE_OK);

	/* A message file at its content address, as a delivery would have left it. */
	snprintf(path, sizeof(path), "%s/messages", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	char spool_path[256];
	snprintf(spool_path, sizeof(spool_path), "%s/spool", dir);
	FILE *fp = fopen(spool_path, "w");
	assert_non_null(fp);
	fputs(body, fp);
	fclose(fp);
	assert_int_equal(blob_store(path, spool_path, hex, &size, &created, &error), 0);
	snprintf(sql, sizeof(sql),
	         "INSERT INTO domains (id, name, created) VALUES (1, 'example.org', 0);"
	         "INSERT INTO accounts (id, address, domain_id, password_hash, used_bytes, created)"
	         " VALUES (1, 'old@example.org', 1, 'oldhash', %llu, 0),"
	         " (2, 'last@example.org', 1, 'h', 0, 0);"
	         "INSERT INTO mailboxes (id, account_id, name, uidvalidity, uidnext, highestmodseq,"
	         " subscribed) VALUES (1, 1, 'INBOX', 1234567, 2, 2, 1),"
	         " (2, 2, 'INBOX', 1234568, 1, 1, 1);"
	         "INSERT INTO messages (id, sha256, size, received_at, mail_from)"
	         " VALUES (1, '%s', %llu, 1600000000, 's@remote.example');"
	         "INSERT INTO mailbox_entries (mailbox_id, uid, message_id, modseq, internal_date)"
	         " VALUES (1, 1, 1, 2, 1600000000);"
	         "INSERT INTO meta (key, value) VALUES ('uidvalidity', 1234568);",
	         (unsigned long long)size, hex, (unsigned long long)size);
	db_exec(db, sql);
	sqlite3_close(db);

	struct fixture old = {.store = NULL};
	assert_true(strlen(dir) < sizeof(old.dir));
	memcpy(old.dir, dir, strlen(dir) + 1);
	open_store(&old);
	assert_int_equal(store_schema_version(old.store), SQL_SQLITE_MIGRATION_COUNT);
	char *hash = NULL, *secret = NULL;
	struct store_account_info info;
	assert_int_equal(store_account_lookup(old.store, "old@example.org", &id, &hash, &info), 1);
	assert_int_equal(id, 1);
	assert_string_equal(hash, "oldhash");
	free(hash);
	assert_int_equal(info.used, size);
	assert_int_equal(info.messages, 1);
	assert_int_equal(store_account_get_apop(old.store, "old@example.org", &id, &secret), 0);
	assert_int_equal(store_account_set_apop(old.store, "old@example.org", "s", &error), 0);
	assert_int_equal(store_account_get_apop(old.store, "old@example.org", &id, &secret), 1);
	assert_string_equal(secret, "s");
	free(secret);

	struct store_mailbox_status status;
	struct entries *e = snapshot(&old, 1, "INBOX", 1, &status);
	assert_int_equal(status.uidvalidity, 1234567);
	assert_int_equal(status.uidnext, 2);
	assert_int_equal(status.highestmodseq, 2);
	assert_int_equal(e->n, 1);
	assert_int_equal(e->v[0].uid, 1);
	assert_int_equal(e->v[0].size, strlen(body));
	expect_message(&old, 1, 1, body);
	uint64_t one = 1;
	assert_int_equal(deliver(old.store, "new\r\n", &one, 1, NULL, 0), 0);
	e = snapshot(&old, 1, "INBOX", 1, &status);
	assert_int_equal(e->n, 2);
	assert_int_equal(e->v[1].uid, 2);

	/* The account id high-water mark was seeded: the highest id is not handed out again. */
	assert_int_equal(store_account_del(old.store, "last@example.org", &error), 0);
	assert_int_equal(store_account_add(old.store, "new@example.org", "h", 0, &error), 0);
	assert_int_equal(store_account_lookup(old.store, "new@example.org", &id, NULL, NULL), 1);
	assert_int_equal(id, 3);

	/* Applied once. */
	reopen_store(&old);
	assert_int_equal(store_schema_version(old.store), SQL_SQLITE_MIGRATION_COUNT);
	expect_message(&old, 1, 1, body);
	store_close(&old.store);
}

/* ---- reopening, cleanup, migrations ---- */

/* Small bodies live in the database: no file, the same bytes through every read path,
 * kept across a reopen, gone with their last entry; a body above the limit is a file. */
static void test_inline_bodies(void **state)
{
	struct fixture *f = fixture_get(state);
	uint64_t ids[3];
	const char *small = "Subject: small\r\n\r\nstored in the row\r\n";
	const char *large = "Subject: large\r\n\r\nthis one is longer than the limit\r\n";
	add_accounts(f, ids);
	store_set_inline_max(f->store, strlen(small));
	assert_int_equal(deliver(f->store, small, ids, 2, NULL, 0), 0);
	expect_blobs(f, 0);
	char tmp[128];
	snprintf(tmp, sizeof(tmp), "%s/tmp", f->dir);
	assert_int_equal(count_files(tmp), 0); /* the spool file went after the commit */
	expect_message(f, ids[0], 1, small);
	expect_message(f, ids[1], 1, small);
	assert_int_equal(deliver(f->store, large, ids, 1, NULL, 0), 0);
	expect_blobs(f, 1);
	expect_message(f, ids[0], 2, large);

	/* store_mail_open() (POP3's path) reads the row too; the fd is a private copy. */
	int fd = -1;
	uint64_t size = 0;
	char buf[256];
	assert_int_equal(store_mail_open(f->store, "a@example.org", "INBOX", 1, &fd, &size), 1);
	assert_int_equal(size, strlen(small));
	assert_int_equal(pread(fd, buf, sizeof(buf), 0), (ssize_t)strlen(small));
	assert_memory_equal(buf, small, strlen(small));
	assert_int_equal(write(fd, "x", 1), 1); /* a memfd: writable, but only ours */
	close(fd);
	expect_message(f, ids[0], 1, small);

	reopen_store(f);
	store_set_inline_max(f->store, strlen(small));
	expect_message(f, ids[1], 1, small);
	/* The same bytes again: one row, referenced twice. */
	assert_int_equal(deliver(f->store, small, &ids[2], 1, NULL, 0), 0);
	expect_blobs(f, 1);
	/* On PostgreSQL the large body is in its row too (no limit on a shared store). */
	assert_int_equal(fdb_int(f, "SELECT count(*) FROM messages WHERE content IS NOT NULL"),
	                 on_pg(f) ? 2 : 1);
	assert_int_equal(fdb_int(f, "SELECT count(*) FROM messages WHERE content IS NULL"),
	                 on_pg(f) ? 0 : 1);

	/* Expunging every entry removes the row with its body. */
	uint32_t uid1 = 1;
	for (int i = 0; i < 3; i++) {
		struct store_expunge x = {
		    .account_id = ids[i], .mailbox = "INBOX", .uids = &uid1, .uid_count = 1};
		assert_int_equal(store_expunge_wait(f->store, &x), 0);
		assert_int_equal(x.expunged, 1);
	}
	assert_int_equal(fdb_int(f, "SELECT count(*) FROM messages WHERE content IS NOT NULL"),
	                 on_pg(f) ? 1 : 0);
	expect_blobs(f, 1); /* the large one's file (PostgreSQL: row) stays */
}

struct read_job {
	pthread_t fn_thread;
	int ran, done;
	struct store *store;
	int found;
};

static void read_fn(void *ctx)
{
	struct read_job *j = ctx;
	j->fn_thread = pthread_self();
	j->found = store_domain_is_local(j->store, "example.org");
	j->ran++;
}

static void read_done(void *ctx)
{
	struct read_job *j = ctx;
	__atomic_add_fetch(&j->done, 1, __ATOMIC_SEQ_CST);
}

/* Database connections of the store (readers of every thread). */
static int count_readers(struct fixture *f)
{
	struct store_db *s = db_store(f->store);
	int n = 0;
	pthread_mutex_lock(&s->read_lock);
	for (struct db_reader *r = s->readers; r != NULL; r = r->next)
		n++;
	pthread_mutex_unlock(&s->read_lock);
	return n;
}

/* Reader threads connect as they start, not at their first read. */
static void test_readers_connect_ahead(void **state)
{
	struct fixture *f = fixture_get(state);
	reopen_store(f);
	store_set_read_threads(f->store, 3);
	int before = count_readers(f);
	assert_true(store_reads_wait(f->store)); /* starts the threads; no read is queued */
	int n = count_readers(f);
	for (int i = 0; i < 1000 && n < before + 3; i++) {
		usleep(5000);
		n = count_readers(f);
	}
	assert_int_equal(n, before + 3);
}

/* store_read(): in place on SQLite by default; on reader threads when asked, with done
 * after fn; a queued read still runs when the store closes. */
static void test_store_read(void **state)
{
	struct fixture *f = fixture_get(state);
	uint64_t ids[3];
	add_accounts(f, ids);
	struct read_job a = {.store = f->store};
	/* By default reads wait (reader threads) on PostgreSQL only. */
	assert_int_equal(store_reads_wait(f->store), on_pg(f));
	if (!on_pg(f)) {
		assert_true(store_read(f->store, read_fn, read_done, &a));
		assert_int_equal(a.ran, 1);
		assert_int_equal(a.done, 0); /* done is only for queued reads */
		assert_true(pthread_equal(a.fn_thread, pthread_self()));
	} else {
		assert_false(store_read(f->store, read_fn, read_done, &a));
		for (int i = 0; i < 500 && __atomic_load_n(&a.done, __ATOMIC_SEQ_CST) == 0; i++)
			usleep(2000);
		assert_int_equal(__atomic_load_n(&a.done, __ATOMIC_SEQ_CST), 1);
		assert_int_equal(a.ran, 1);
		assert_false(pthread_equal(a.fn_thread, pthread_self()));
	}
	assert_int_equal(a.found, 1);

	reopen_store(f);
	store_set_read_threads(f->store, 2);
	assert_true(store_reads_wait(f->store));
	struct read_job b[20];
	for (int i = 0; i < 20; i++) {
		b[i] = (struct read_job){.store = f->store};
		assert_false(store_read(f->store, read_fn, read_done, &b[i]));
	}
	for (int i = 0; i < 500 && __atomic_load_n(&b[19].done, __ATOMIC_SEQ_CST) == 0; i++)
		usleep(2000);
	store_close(&f->store); /* finishes whatever is still queued */
	for (int i = 0; i < 20; i++) {
		assert_int_equal(b[i].ran, 1);
		assert_int_equal(b[i].done, 1);
		assert_int_equal(b[i].found, 1);
		assert_false(pthread_equal(b[i].fn_thread, pthread_self()));
	}
	open_store(f);
}

/* Leases: one owner at a time; the owner renews; another takes it once it ran out or was
 * released; a release by another owner does nothing. */
static void test_leases(void **state)
{
	struct fixture *f = fixture_get(state);
	assert_int_equal(store_lease_take(f->store, "pop3:1", "node-a:1", 60), 1);
	assert_int_equal(store_lease_take(f->store, "pop3:1", "node-b:7", 60), 0);
	assert_int_equal(store_lease_take(f->store, "pop3:1", "node-a:1", 60), 1); /* renew */
	assert_int_equal(store_lease_take(f->store, "pop3:2", "node-b:7", 60), 1); /* another */
	store_lease_release(f->store, "pop3:1", "node-b:7"); /* not the owner: nothing */
	assert_int_equal(store_lease_take(f->store, "pop3:1", "node-b:7", 60), 0);
	store_lease_release(f->store, "pop3:1", "node-a:1");
	/* Leases count whole seconds: a ttl of 3 holds for at least 2 s (opening a second store
	 * on a slow machine takes a while) and has run out 3 s later. A ttl of 1 could run out
	 * at once when taken just before a second boundary. */
	assert_int_equal(store_lease_take(f->store, "pop3:1", "node-b:7", 3), 1);
	/* A second store on the same database sees it too; it runs out. */
	struct fixture other = {.eng = f->eng, .store = NULL};
	memcpy(other.dir, f->dir, sizeof(f->dir));
	open_store(&other);
	assert_int_equal(store_lease_take(other.store, "pop3:1", "node-c:3", 60), 0);
	sleep(3);
	assert_int_equal(store_lease_take(other.store, "pop3:1", "node-c:3", 60), 1);
	assert_int_equal(store_lease_take(f->store, "pop3:1", "node-b:7", 60), 0);
	store_close(&other.store);
	assert_int_equal(store_is_shared(f->store), on_pg(f)); /* nodes may share a PG store */
}

static void test_reopen(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *error;
	uint64_t ids[3], id;
	struct strings s = {.n = 0};

	add_accounts(f, ids);
	assert_int_equal(store_schema_version(f->store), latest_schema(f));
	assert_int_equal(store_alias_add(f->store, "info@example.org", "a@example.org", &error), 0);
	assert_int_equal(deliver(f->store, "kept\r\n", ids, 3, NULL, 0), 0);
	reopen_store(f);
	assert_int_equal(store_schema_version(f->store), latest_schema(f));
	reopen_store(f);
	assert_int_equal(store_schema_version(f->store), latest_schema(f));

	assert_int_equal(store_domain_list(f->store, collect_domain, &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(store_account_lookup(f->store, "b@example.org", &id, NULL, NULL), 1);
	assert_int_equal(id, ids[1]);
	expect_resolve(f, "info@example.org", 1, 1, &ids[0]);
	struct uids *u = list_inbox(f, "c@example.org", 1);
	assert_int_equal(u->n, 1);
	expect_blobs(f, 1);
	/* UIDs continue after a reopen. */
	assert_int_equal(deliver(f->store, "next\r\n", &ids[2], 1, NULL, 0), 0);
	u = list_inbox(f, "c@example.org", 1);
	assert_int_equal(u->n, 2);
	assert_int_equal(u->v[1], 2);
}

static void test_orphans(void **state)
{
	struct fixture *f = fixture_get(state);
	uint64_t ids[3];
	char path[600];
	const char *orphan = "ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd";
	const char *row_orphan = "cd0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd";

	add_accounts(f, ids);
	assert_int_equal(deliver(f->store, "kept\r\n", ids, 1, NULL, 0), 0);
	store_close(&f->store);

	/* A file no row names, a spool leftover, and a row nothing references (with its file). */
	snprintf(path, sizeof(path), "%s/messages/ab", f->dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/messages/ab/%s", f->dir, orphan);
	close(open(path, O_WRONLY | O_CREAT, 0600));
	snprintf(path, sizeof(path), "%s/messages/cd", f->dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/messages/cd/%s", f->dir, row_orphan);
	close(open(path, O_WRONLY | O_CREAT, 0600));
	snprintf(path, sizeof(path), "%s/tmp/leftover", f->dir);
	close(open(path, O_WRONLY | O_CREAT, 0600));

	sqlite3 *db;
	char *sql = NULL;
	snprintf(path, sizeof(path), "%s/posthorn.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sql = sqlite3_mprintf("INSERT INTO messages (sha256, size, received_at, mail_from)"
	                      " VALUES ('%q', 0, 0, '')",
	                      row_orphan);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_free(sql);
	sqlite3_close(db);
	expect_blobs(f, 3);

	open_store(f);
	expect_blobs(f, 1);
	snprintf(path, sizeof(path), "%s/tmp", f->dir);
	assert_int_equal(count_files(path), 0);
	struct uids *u = list_inbox(f, "a@example.org", 1);
	assert_int_equal(u->n, 1);
	int fd;
	uint64_t size;
	assert_int_equal(store_mail_open(f->store, "a@example.org", "INBOX", 1, &fd, &size), 1);
	assert_int_equal(size, 6);
	close(fd);
}

/* Free space (store_space.c): what statvfs says, measured once and then taken from the
 * cache until it is a second old; too few inodes count as full. */
static void test_free_space(void **state)
{
	struct fixture *f = fixture_get(state);
	uint64_t avail, inodes;
	assert_int_equal(store_space_free(f->store, &avail, &inodes), 0);
	struct statvfs st;
	assert_int_equal(statvfs(f->dir, &st), 0);
	assert_true(avail > 0 && avail != UINT64_MAX);
	assert_true(avail / st.f_frsize <= (uint64_t)st.f_blocks);
	assert_false(store_space_low(f->store, 0, UINT64_MAX)); /* 0: no check */
	assert_false(store_space_low(f->store, 1, 0));
	assert_true(store_space_low(f->store, UINT64_MAX, 0));
	assert_true(store_space_low(f->store, 1, UINT64_MAX - 1));
	/* A measurement from the future stays fresh: the cached figures answer. */
	atomic_store(&f->store->space_at, INT64_MAX / 2);
	atomic_store(&f->store->space_avail, 5);
	assert_true(store_space_low(f->store, 10, 0));
	assert_false(store_space_low(f->store, 5, 0));
	assert_true(store_space_low(f->store, 4, 2)); /* the size counts on top */
	assert_false(store_space_low(f->store, 4, 1));
	atomic_store(&f->store->space_inodes, STORE_SPACE_MIN_INODES - 1);
	assert_true(store_space_low(f->store, 1, 0));
	/* An old one is measured again. */
	atomic_store(&f->store->space_at, 1);
	assert_false(store_space_low(f->store, 10, 0));
	assert_int_equal(store_space_free(f->store, &avail, &inodes), 0);
	assert_true(avail > 5 && inodes >= STORE_SPACE_MIN_INODES);
}

static void test_spool_paths(void **state)
{
	struct fixture *f = fixture_get(state);
	char *a = store_spool_path_dup(f->store);
	char *b = store_spool_path_dup(f->store);
	char prefix[128];
	snprintf(prefix, sizeof(prefix), "%s/tmp/", f->dir);
	assert_string_not_equal(a, b);
	assert_memory_equal(a, prefix, strlen(prefix));
	free(a);
	free(b);
	struct store *none = NULL;
	store_close(&none);
}

/* ---- bodies in chunk rows (PostgreSQL) ---- */

/* A message of size octets whose header (Subject and filler lines) ends with its blank
 * line at header_end (its "\r\n\r\n", or with lf "\n\n", ends there); the body is
 * text that names each line's offset. header_end 0: the header fills the message and never
 * ends. Malloc'd, NUL-terminated. */
static char *chunk_message(size_t size, size_t header_end, bool lf)
{
	char *m = xmalloc(size + 1);
	const char *eol = lf ? "\n" : "\r\n";
	size_t e = strlen(eol), fill_to = header_end == 0 ? size : header_end - e;
	size_t pos = (size_t)snprintf(m, size + 1, "Subject: big%s", eol);
	for (size_t r = fill_to - pos; r > 0; r = fill_to - pos) {
		/* Lines of 7 to 80 octets that fill the header exactly. */
		size_t n = r <= 80 ? r : r - 80 < 8 ? 72 : 80;
		assert_true(n >= 7);
		memcpy(m + pos, "X-F: ", 5);
		memset(m + pos + 5, 'f', n - 5 - e);
		memcpy(m + pos + n - e, eol, e);
		pos += n;
	}
	if (header_end != 0) {
		memcpy(m + pos, eol, e);
		pos += e;
	}
	while (pos < size) {
		char line[64];
		int n = snprintf(line, sizeof(line), "line at %zu\r\n", pos);
		size_t k = size - pos < (size_t)n ? size - pos : (size_t)n;
		memcpy(m + pos, line, k);
		pos += k;
	}
	m[size] = '\0';
	return m;
}

/* Open account's INBOX uid with want and check it: the octets of [lo, hi) are expect's,
 * and the file keeps at most max_alloc octets of disk (the rest is a hole); when
 * zero_from is not SIZE_MAX, octets [zero_from, zero_from + 64) read as zeros. */
static void expect_want(struct fixture *f, uint64_t account, uint32_t uid,
                        const struct store_want *want, const char *expect, size_t lo, size_t hi,
                        size_t max_alloc, size_t zero_from)
{
	int fd = -1;
	uint64_t size = 0;
	assert_int_equal(store_message_open_want(f->store, account, "INBOX", uid, want, &fd, &size),
	                 1);
	assert_int_equal(size, strlen(expect));
	char *buf = xmalloc(hi - lo + 1);
	assert_int_equal(pread(fd, buf, hi - lo, (off_t)lo), (ssize_t)(hi - lo));
	assert_memory_equal(buf, expect + lo, hi - lo);
	free(buf);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	if ((uint64_t)st.st_blocks * 512 > max_alloc)
		fail_msg("%llu octets allocated, at most %zu wanted",
		         (unsigned long long)st.st_blocks * 512, max_alloc);
	if (zero_from != SIZE_MAX) {
		char z[64], zeros[64] = {0};
		assert_int_equal(pread(fd, z, sizeof(z), (off_t)zero_from), (ssize_t)sizeof(z));
		assert_memory_equal(z, zeros, sizeof(z));
	}
	close(fd);
}

/* A body larger than STORE_CHUNK_SIZE is kept in chunk rows; a reader that wants a range
 * or the header fetches only the chunks that hold them, one that wants all gets all; the
 * same bytes again share the rows, and the rows go with the last entry. */
static void test_pg_chunked_bodies(void **state)
{
	struct fixture *f = fixture_get(state);
	uint64_t ids[3];
	add_accounts(f, ids);
	const size_t C = STORE_CHUNK_SIZE, size = 2 * C + 1000;
	char *big = chunk_message(size, 200, false);
	/* The blank line's "\r\n\r\n" split as "\r\n\r" | "\n" between chunks 0 and 1. */
	char *split = chunk_message(size, C + 1, false);
	assert_memory_equal(split + C - 3, "\r\n\r\n", 4);
	assert_int_equal(deliver(f->store, big, ids, 2, NULL, 0), 0);
	assert_int_equal(deliver(f->store, split, ids, 1, NULL, 0), 0);
	assert_int_equal(fdb_int(f, "SELECT count(*) FROM messages WHERE content IS NULL"), 2);
	assert_int_equal(fdb_int(f, "SELECT count(*) FROM message_chunks"), 6);
	assert_int_equal(fdb_int(f, "SELECT max(length(data)) FROM message_chunks"), (int64_t)C);

	/* All of it, through every open path. */
	expect_want(f, ids[0], 1, NULL, big, 0, size, size + 65536, SIZE_MAX);
	expect_want(f, ids[1], 1, NULL, big, 0, size, size + 65536, SIZE_MAX);
	int fd = -1;
	uint64_t got = 0;
	assert_int_equal(store_mail_open(f->store, "a@example.org", "INBOX", 2, &fd, &got), 1);
	char *all = xmalloc(size);
	assert_int_equal(read_all(fd, all, size), size);
	assert_memory_equal(all, split, size);
	free(all);

	/* A window in chunk 1: only its octets; chunk 0 is a hole. */
	struct store_want w = {.off = C + 100, .len = 500};
	expect_want(f, ids[0], 1, &w, big, C + 100, C + 600, 65536, 0);
	/* A window past the end is cut at the end. */
	w = (struct store_want){.off = size - 10, .len = 1000};
	expect_want(f, ids[0], 1, &w, big, size - 10, size, 65536, 0);
	/* The header: chunk 0 only. */
	w = (struct store_want){.header = true};
	expect_want(f, ids[0], 1, &w, big, 0, 200, C + 65536, C);
	/* A header whose end straddles two chunks: chunks 0 and 1, not 2. */
	expect_want(f, ids[0], 2, &w, split, 0, C + 1, 2 * C + 65536, 2 * C);
	/* Header and a window in chunk 2. */
	w = (struct store_want){.header = true, .off = 2 * C + 10, .len = 20};
	expect_want(f, ids[0], 1, &w, big, 2 * C + 10, 2 * C + 30, C + 65536, C);

	/* Where a header ends, against the chunks: on the last octets of chunk 0; "\r\n" |
	 * "\r\n"; bare LF "\n" | "\n"; never (all of it is read). */
	struct {
		size_t end;
		bool lf;
		size_t chunks;
	} ends[] = {{C, false, 1}, {C + 2, false, 2}, {C + 1, true, 2}, {0, false, 3}};
	w = (struct store_want){.header = true};
	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		char *m = chunk_message(size, ends[i].end, ends[i].lf);
		size_t hlen = ends[i].end == 0 ? size : ends[i].end;
		if (ends[i].end != 0)
			assert_memory_equal(m + hlen - (ends[i].lf ? 2 : 4),
			                    ends[i].lf ? "\n\n" : "\r\n\r\n", ends[i].lf ? 2 : 4);
		else
			assert_null(memmem(m, size, "\n\r\n", 3));
		assert_int_equal(deliver(f->store, m, &ids[2], 1, NULL, 0), 0);
		expect_want(f, ids[2], (uint32_t)(i + 1), &w, m, 0, hlen,
		            ends[i].chunks * C + 65536,
		            ends[i].chunks < 3 ? ends[i].chunks * C : SIZE_MAX);
		free(m);
	}

	/* The same bytes for c: the rows are shared. */
	int64_t rows = fdb_int(f, "SELECT count(*) FROM message_chunks");
	assert_int_equal(deliver(f->store, big, &ids[2], 1, NULL, 0), 0);
	assert_int_equal(fdb_int(f, "SELECT count(*) FROM message_chunks"), rows);
	expect_want(f, ids[2], 5, NULL, big, 0, size, size + 65536, SIZE_MAX);

	/* A body stored whole in its row (before migration 3) stays so when it comes again. */
	fdb_exec(f, "UPDATE messages m SET content = (SELECT string_agg(data, ''::bytea"
	            " ORDER BY seq) FROM message_chunks c WHERE c.message_id = m.id)"
	            " WHERE m.content IS NULL");
	fdb_exec(f, "DELETE FROM message_chunks");
	assert_int_equal(deliver(f->store, split, &ids[2], 1, NULL, 0), 0);
	assert_int_equal(fdb_int(f, "SELECT count(*) FROM message_chunks"), 0);
	expect_want(f, ids[2], 6, &w, split, 0, size, size + 65536, SIZE_MAX);

	/* Expunging every entry removes the rows (and their chunks, with a new body). */
	char *again = chunk_message(size, 300, false);
	assert_int_equal(deliver(f->store, again, ids, 1, NULL, 0), 0);
	assert_true(fdb_int(f, "SELECT count(*) FROM message_chunks") > 0);
	for (int i = 0; i < 3; i++) {
		uint32_t uids[6] = {1, 2, 3, 4, 5, 6};
		struct store_expunge x = {
		    .account_id = ids[i], .mailbox = "INBOX", .uids = uids, .uid_count = 6};
		assert_int_equal(store_expunge_wait(f->store, &x), 0);
	}
	assert_int_equal(fdb_int(f, "SELECT count(*) FROM messages"), 0);
	assert_int_equal(fdb_int(f, "SELECT count(*) FROM message_chunks"), 0);
	free(again);
	free(big);
	free(split);
}

/* ---- a group commit that loses a deadlock runs again (PostgreSQL) ---- */

static PGconn *pg_connect(struct fixture *f)
{
	PGconn *c = PQconnectdb(f->eng.target);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect: %s", PQerrorMessage(c));
	return c;
}

/* Run sql on c; its first value (NULL when none), valid until the next call. */
static const char *pg_exec(PGconn *c, const char *sql)
{
	static PGresult *r;
	PQclear(r);
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	return PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : NULL;
}

struct retry_delivery {
	struct fixture *f;
	uint64_t account;
	int ret;
};

static void *retry_deliver(void *arg)
{
	struct retry_delivery *d = arg;
	d->ret = deliver(d->f->store, "Subject: retried\r\n\r\nbody\r\n", &d->account, 1, NULL, 0);
	return NULL;
}

/* The writer's transaction and one of ours lock two rows in opposite orders: PostgreSQL
 * aborts the writer's (deadlock_timeout is 1 s there, 10 s here), whose group commit runs
 * again (logged) and delivers the message once. */
static void test_pg_commit_retry(void **state)
{
	struct fixture *f = fixture_get(state);
	uint64_t ids[3];
	char sql[256], log_path[128];
	add_accounts(f, ids);
	PGconn *t = pg_connect(f), *watch = pg_connect(f);
	pg_exec(t, "BEGIN");
	pg_exec(t, "SET LOCAL deadlock_timeout = '10s'");
	/* 1. We hold a's account row: the writer, having bumped a's INBOX, waits for it. */
	snprintf(sql, sizeof(sql), "UPDATE accounts SET used_bytes = used_bytes WHERE id = %llu",
	         (unsigned long long)ids[0]);
	pg_exec(t, sql);
	char wait_sql[256];
	snprintf(wait_sql, sizeof(wait_sql),
	         "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'"
	         " AND transactionid::text = '%s'",
	         pg_exec(t, "SELECT pg_current_xact_id()::text"));

	snprintf(log_path, sizeof(log_path), "%s/stderr.log", f->dir);
	int log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(log_fd >= 0);
	int saved = dup(STDERR_FILENO);
	assert_int_equal(dup2(log_fd, STDERR_FILENO), STDERR_FILENO);
	struct retry_delivery d = {.f = f, .account = ids[0], .ret = -2};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, retry_deliver, &d), 0);
	int waiting = 0;
	for (int i = 0; i < 1000 && waiting == 0; i++) {
		usleep(5000);
		waiting = (int)strtol(pg_exec(watch, wait_sql), NULL, 10);
	}
	/* 2. Now we want a's INBOX, which the writer holds: a deadlock; the writer loses. */
	if (waiting > 0) {
		snprintf(sql, sizeof(sql),
		         "UPDATE mailboxes SET uidnext = uidnext WHERE account_id = %llu"
		         " AND name = 'INBOX'",
		         (unsigned long long)ids[0]);
		pg_exec(t, sql);
	}
	pg_exec(t, "COMMIT");
	pthread_join(th, NULL);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	close(log_fd);
	PQfinish(watch);
	PQfinish(t);

	assert_true(waiting > 0);
	assert_int_equal(d.ret, 0);
	/* Once: UID 1, the size counted once. */
	struct uids *u = list_inbox(f, "a@example.org", 1);
	assert_int_equal(u->n, 1);
	uint64_t used = 0, quota = 0;
	assert_int_equal(store_account_usage(f->store, ids[0], &quota, &used), 1);
	assert_int_equal(used, strlen("Subject: retried\r\n\r\nbody\r\n"));
	/* The retry was logged. */
	char logged[8192] = "";
	FILE *fp = fopen(log_path, "r");
	assert_non_null(fp);
	size_t n = fread(logged, 1, sizeof(logged) - 1, fp);
	fclose(fp);
	logged[n] = '\0';
	fputs(logged, stderr);
	assert_non_null(strstr(logged, "lost to another one, running it again"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH(test_domains),
	    BOTH(test_accounts),
	    BOTH(test_uidvalidity_increases),
	    BOTH(test_aliases),
	    BOTH(test_deliver_three),
	    BOTH(test_deliver_remote),
	    BOTH(test_deliver_junk),
	    BOTH(test_junk_training),
	    BOTH(test_policy_state),
	    BOTH(test_deliver_failures),
	    BOTH(test_deliver_concurrent),
	    BOTH(test_readers_during_delivery),
	    BOTH(test_apop),
	    BOTH(test_snapshot),
	    BOTH(test_expunge),
	    BOTH(test_expunge_batch),
	    BOTH(test_expunge_concurrent),
	    BOTH(test_reopen),
	    BOTH(test_inline_bodies),
	    BOTH(test_store_read),
	    BOTH(test_readers_connect_ahead),
	    BOTH(test_leases),
	    SQLITE(test_migration_1_to_2), /* a version-1 SQLite file */
	    SQLITE(test_orphans),          /* message files and rows planted in SQLite */
	    BOTH(test_spool_paths),
	    BOTH(test_free_space),
	    PG(test_pg_commit_retry),
	    PG(test_pg_chunked_bodies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
