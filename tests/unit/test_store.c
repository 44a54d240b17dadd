/* Unit tests of the store (store.h) on the SQLite backend: domains, accounts, aliases,
 * recipient resolution, group-committed delivery (content-addressed files, UID order under
 * concurrency, the outbound queue), reopening, orphan cleanup and migrations. Each test
 * runs in a fresh mkdtemp() directory. The database is inspected directly only where the
 * API has no window (journal mode, UIDVALIDITY, a planted orphan row). */
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
#include <unistd.h>

#include <sqlite3.h>

#include "core/xmalloc.h"
#include "store/store.h"
#include "core/banned.h"

struct fixture {
	char dir[64];
	struct store *store;
};

static void open_store(struct fixture *f)
{
	const char *error = NULL;
	if (store_open(f->dir, &f->store, &error) < 0)
		fail_msg("store_open: %s", error);
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
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	open_store(f);
	*state = f;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	store_close(&f->store);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
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

static int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n;
}

/* Files in messages/xx/ over all fan-out directories. */
static int count_blobs(struct fixture *f)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/messages", f->dir);
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char sub[1024];
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		n += count_files(sub);
	}
	closedir(d);
	return n;
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
	snprintf(s->v[s->n++], sizeof(s->v[0]), "%s>%s %llu %u '%s'", info->mail_from, info->rcpt,
	         (unsigned long long)info->size, info->attempts, info->last_error);
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
	struct fixture *f = *state;
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
	struct fixture *f = *state;
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
}

static void test_uidvalidity_increases(void **state)
{
	struct fixture *f = *state;
	uint64_t ids[3];
	sqlite3 *db;
	sqlite3_stmt *st;
	char path[512];
	int64_t last = 0;
	int rows = 0;

	add_accounts(f, ids);
	snprintf(path, sizeof(path), "%s/posthorn.db", f->dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
	                                    "SELECT uidvalidity, uidnext, subscribed,"
	                                    " special_use FROM mailboxes ORDER BY id",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		assert_true(sqlite3_column_int64(st, 0) > last);
		last = sqlite3_column_int64(st, 0);
		assert_int_equal(sqlite3_column_int64(st, 1), 1);
		assert_int_equal(sqlite3_column_int64(st, 2), 1);
		rows++;
	}
	sqlite3_finalize(st);
	assert_int_equal(rows, 18);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(db);
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
	struct fixture *f = *state;
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
	struct fixture *f = *state;
	const char *msg = "From: s@remote.example\r\nSubject: hello\r\n\r\nbody\r\n";
	uint64_t ids[3], accounts[4];
	const char *names[3] = {"a@example.org", "b@example.org", "c@example.org"};

	add_accounts(f, ids);
	accounts[0] = ids[0];
	accounts[1] = ids[1];
	accounts[2] = ids[2];
	accounts[3] = ids[0]; /* duplicate: ignored */
	assert_int_equal(deliver(f->store, msg, accounts, 4, NULL, 0), 0);
	assert_int_equal(count_blobs(f), 1);

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
	assert_int_equal(count_blobs(f), 2);
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
	assert_int_equal(count_blobs(f), 1);
	u = list_inbox(f, "b@example.org", 1);
	assert_int_equal(u->n, 1);
	assert_int_equal(store_account_del(f->store, "b@example.org", &error), 0);
	assert_int_equal(store_account_del(f->store, "c@example.org", &error), 0);
	assert_int_equal(count_blobs(f), 0);
}

static void test_deliver_remote(void **state)
{
	struct fixture *f = *state;
	uint64_t ids[3];
	const char *remote[2] = {"Bob@Remote.example", "carol@remote.example"};
	struct strings s = {.n = 0};

	add_accounts(f, ids);
	assert_int_equal(deliver(f->store, "remote only\r\n", NULL, 0, remote, 2), 0);
	assert_int_equal(deliver(f->store, "mixed\r\n", ids, 1, remote + 1, 1), 0);
	assert_int_equal(store_queue_list(f->store, collect_queue, &s), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.v[0], "sender@remote.example>Bob@Remote.example 13 0 ''");
	assert_string_equal(s.v[1], "sender@remote.example>carol@remote.example 13 0 ''");
	assert_string_equal(s.v[2], "sender@remote.example>carol@remote.example 7 0 ''");
	assert_int_equal(count_blobs(f), 2);
	/* Queued messages survive the deletion of every local recipient. */
	const char *error;
	assert_int_equal(store_account_del(f->store, "a@example.org", &error), 0);
	assert_int_equal(count_blobs(f), 2);
	reopen_store(f);
	assert_int_equal(count_blobs(f), 2);
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
	struct fixture *f = *state;
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
	for (int i = 0; i < N; i++) {
		assert_int_equal(access(paths[i], F_OK), -1);
		free(paths[i]);
	}
	/* The file of the delivery that failed in the database went with it. */
	assert_int_equal(count_blobs(f), N - 3);
	struct uids *u = list_inbox(f, "b@example.org", 1);
	assert_int_equal(u->n, N - 3);
	for (int i = 0; i < u->n; i++)
		assert_int_equal(u->v[i], (uint32_t)i + 1);

	/* A missing spool file fails that delivery only. */
	struct store_delivery missing = {
	    .spool_path = "/nonexistent/spool", .accounts = ids, .account_count = 1};
	assert_int_equal(store_deliver_wait(f->store, &missing), -1);
	assert_non_null(missing.error);
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
	struct fixture *f = *state;
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
	assert_int_equal(count_blobs(f), 200);
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
	struct fixture *f = *state;
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

/* ---- reopening, cleanup, migrations ---- */

static void test_reopen(void **state)
{
	struct fixture *f = *state;
	const char *error;
	uint64_t ids[3], id;
	struct strings s = {.n = 0};

	add_accounts(f, ids);
	assert_int_equal(store_schema_version(f->store), 1);
	assert_int_equal(store_alias_add(f->store, "info@example.org", "a@example.org", &error), 0);
	assert_int_equal(deliver(f->store, "kept\r\n", ids, 3, NULL, 0), 0);
	reopen_store(f);
	assert_int_equal(store_schema_version(f->store), 1);
	reopen_store(f);
	assert_int_equal(store_schema_version(f->store), 1);

	assert_int_equal(store_domain_list(f->store, collect_domain, &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(store_account_lookup(f->store, "b@example.org", &id, NULL, NULL), 1);
	assert_int_equal(id, ids[1]);
	expect_resolve(f, "info@example.org", 1, 1, &ids[0]);
	struct uids *u = list_inbox(f, "c@example.org", 1);
	assert_int_equal(u->n, 1);
	assert_int_equal(count_blobs(f), 1);
	/* UIDs continue after a reopen. */
	assert_int_equal(deliver(f->store, "next\r\n", &ids[2], 1, NULL, 0), 0);
	u = list_inbox(f, "c@example.org", 1);
	assert_int_equal(u->n, 2);
	assert_int_equal(u->v[1], 2);
}

static void test_orphans(void **state)
{
	struct fixture *f = *state;
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
	assert_int_equal(count_blobs(f), 3);

	open_store(f);
	assert_int_equal(count_blobs(f), 1);
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

static void test_spool_paths(void **state)
{
	struct fixture *f = *state;
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_domains, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_accounts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_uidvalidity_increases, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_aliases, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deliver_three, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deliver_remote, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deliver_failures, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deliver_concurrent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_readers_during_delivery, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_orphans, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_spool_paths, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
