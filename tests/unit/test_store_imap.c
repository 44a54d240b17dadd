/* Unit tests of the store's IMAP side (store.h: mailboxes, flags, copy/move, append, changes,
 * watches, summaries) on both engines (store_engines.h: SQLite, and PostgreSQL when
 * POSTHORN_TEST_PGURL is set; file counts and notifier hints engine-aware): mailbox names, CREATE
 * with parents, DELETE (INBOX refused, children left as \Noselect, quota and files freed), RENAME
 * (with children, INBOX semantics, clashes), subscriptions of names that do not exist, STATUS
 * counts, flags with keywords and UNCHANGEDSINCE, COPY with COPYUID and quota, MOVE with
 * tombstones, APPEND with flags, dates, quota and MULTIAPPEND, changes since a MODSEQ, watch
 * callbacks (once per commit, never after unwatch), concurrency, summaries and the 2 -> 3
 * migration (SQLite only). Each test runs in a fresh mkdtemp() directory (and PostgreSQL schema);
 * the database is opened directly only to build a version-2 store. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
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
#include "store/store_private.h"
#include "store/sqlite/sql_sqlite.h"
#include "store_engines.h"
#include "core/banned.h"

struct fixture {
	struct engine eng; /* the database: SQLite in dir, or a PostgreSQL schema */
	char dir[64];      /* the data directory (on PostgreSQL: spool files only) */
	struct store *store;
	uint64_t a, b; /* a@example.org, b@example.org (quota 0) */
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

static uint64_t add_account(struct fixture *f, const char *address, uint64_t quota)
{
	const char *error = NULL;
	uint64_t id;
	if (store_account_add(f->store, address, "hash", quota, &error) < 0)
		fail_msg("account_add: %s", error);
	assert_int_equal(store_account_lookup(f->store, address, &id, NULL, NULL), 1);
	return id;
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	const char *error = NULL;
	int ret = engine_start(&f->eng, engine_kind(state), "test_store_imap");
	*state = NULL;
	if (ret <= 0) {
		free(f);
		return ret; /* 0: the test skips */
	}
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store_imap.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	open_store(f);
	assert_int_equal(store_domain_add(f->store, "example.org", &error), 0);
	f->a = add_account(f, "a@example.org", 0);
	f->b = add_account(f, "b@example.org", 0);
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

/* ---- helpers: messages ---- */

static char *spool(struct store *store, const char *data)
{
	char *path = store_spool_path_dup(store);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, strlen(data), fp), strlen(data));
	assert_int_equal(fclose(fp), 0);
	return path;
}

static void deliver(struct fixture *f, uint64_t account, const char *data)
{
	char *path = spool(f->store, data);
	struct store_delivery d = {
	    .spool_path = path,
	    .mail_from = "s@remote.example",
	    .accounts = &account,
	    .account_count = 1,
	    .received_at = 1700000000,
	};
	assert_int_equal(store_deliver_wait(f->store, &d), 0);
	free(path);
}

/* Append one message; returns the result (the spool file is always consumed). */
static int append(struct fixture *f, uint64_t account, const char *mailbox, const char *data,
                  unsigned flags, const char *const *keywords, size_t nkw, int64_t date,
                  uint32_t *uid_r, const char **error_r)
{
	char *path = spool(f->store, data);
	struct store_append_message m = {
	    .spool_path = path,
	    .flags = flags,
	    .keywords = keywords,
	    .keyword_count = nkw,
	    .internal_date = date,
	};
	struct store_append op = {
	    .account_id = account, .mailbox = mailbox, .messages = &m, .count = 1};
	int ret = store_append_wait(f->store, &op);
	assert_int_equal(access(path, F_OK), -1);
	free(path);
	if (ret == 0) {
		assert_int_equal(m.size, strlen(data));
		assert_true(op.uidvalidity != 0);
		assert_true(op.modseq != 0);
	}
	if (uid_r != NULL)
		*uid_r = m.uid;
	if (error_r != NULL)
		*error_r = op.error;
	return ret;
}

static uint32_t append_ok(struct fixture *f, uint64_t account, const char *mailbox,
                          const char *data)
{
	uint32_t uid;
	const char *error;
	if (append(f, account, mailbox, data, 0, NULL, 0, 0, &uid, &error) < 0)
		fail_msg("append to %s: %s", mailbox, error);
	return uid;
}

static uint64_t used(struct fixture *f, uint64_t account)
{
	uint64_t quota, u;
	assert_int_equal(store_account_usage(f->store, account, &quota, &u), 1);
	return u;
}

/* ---- helpers: mailboxes ---- */

static int mbox(struct fixture *f, enum store_mailbox_action action, uint64_t account,
                const char *name, const char *new_name, const char **error_r)
{
	struct store_mailbox_op op = {
	    .action = action, .account_id = account, .name = name, .new_name = new_name};
	int ret = store_mailbox_change_wait(f->store, &op);
	if (error_r != NULL)
		*error_r = op.error;
	assert_true(ret == 0 ? op.error == NULL : op.error != NULL);
	return ret;
}

static void mbox_ok(struct fixture *f, enum store_mailbox_action action, uint64_t account,
                    const char *name, const char *new_name)
{
	const char *error = NULL;
	if (mbox(f, action, account, name, new_name, &error) < 0)
		fail_msg("mailbox op %d on %s: %s", (int)action, name, error);
}

static void mbox_fails(struct fixture *f, enum store_mailbox_action action, uint64_t account,
                       const char *name, const char *new_name, const char *expect)
{
	const char *error = NULL;
	if (mbox(f, action, account, name, new_name, &error) != -1)
		fail_msg("mailbox op %d on %s succeeded", (int)action,
		         name == NULL ? "NULL" : name);
	assert_string_equal(error, expect);
}

struct listing {
	char name[64][64];
	unsigned special[64];
	bool exists[64], children[64], subscribed[64];
	int n;
};

static void collect_mailbox(void *ctx, const struct store_mailbox_info *info)
{
	struct listing *l = ctx;
	assert_true(l->n < 64);
	snprintf(l->name[l->n], sizeof(l->name[0]), "%s", info->name);
	l->special[l->n] = info->special_use;
	l->exists[l->n] = info->exists;
	l->children[l->n] = info->has_children;
	l->subscribed[l->n++] = info->subscribed;
}

static struct listing *list(struct fixture *f, uint64_t account)
{
	static struct listing l;
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_mailbox_list(f->store, account, collect_mailbox, &l), 1);
	for (int i = 1; i < l.n; i++)
		assert_true(strcmp(l.name[i - 1], l.name[i]) < 0);
	return &l;
}

/* "E" exists, "P" placeholder (\Noselect parent), "N" only subscribed; then "c" has
 * children, "s" subscribed. "" when the name is not listed. */
static const char *attrs(struct listing *l, const char *name)
{
	static char out[8];
	for (int i = 0; i < l->n; i++) {
		if (strcmp(l->name[i], name) != 0)
			continue;
		snprintf(out, sizeof(out), "%s%s%s",
		         l->exists[i]     ? "E"
		         : l->children[i] ? "P"
		                          : "N",
		         l->children[i] ? "c" : "", l->subscribed[i] ? "s" : "");
		return out;
	}
	return "";
}

static unsigned special(struct listing *l, const char *name)
{
	for (int i = 0; i < l->n; i++) {
		if (strcmp(l->name[i], name) == 0)
			return l->special[i];
	}
	fail_msg("%s not listed", name);
	return 0;
}

static struct store_mailbox_stats stats(struct fixture *f, uint64_t account, const char *name)
{
	struct store_mailbox_stats s;
	memset(&s, 0xff, sizeof(s));
	assert_int_equal(store_mailbox_stats(f->store, account, name, &s), 1);
	return s;
}

/* ---- helpers: entries ---- */

struct entry {
	uint32_t uid;
	unsigned flags;
	uint64_t modseq;
	int64_t date;
	uint64_t size;
	char keywords[256];
	int64_t save_date;
};

struct entries {
	struct entry v[600];
	int n;
	uint32_t expunged[600];
	uint64_t expunged_modseq[600];
	int nx;
};

static void collect_entry(void *ctx, const struct store_entry *e)
{
	struct entries *es = ctx;
	assert_true(es->n < 600);
	struct entry *out = &es->v[es->n++];
	out->uid = e->uid;
	out->flags = e->flags;
	out->modseq = e->modseq;
	out->date = e->internal_date;
	out->size = e->size;
	out->save_date = e->save_date;
	snprintf(out->keywords, sizeof(out->keywords), "%s", e->keywords);
}

static void collect_expunged(void *ctx, uint32_t uid, uint64_t modseq)
{
	struct entries *es = ctx;
	assert_true(es->nx < 600);
	es->expunged_modseq[es->nx] = modseq;
	es->expunged[es->nx++] = uid;
}

static struct entries *snapshot(struct fixture *f, uint64_t account, const char *name,
                                struct store_mailbox_status *st)
{
	static struct entries es;
	struct store_mailbox_status dummy;
	memset(&es, 0, sizeof(es));
	assert_int_equal(
	    store_mailbox_snapshot(f->store, account, name, st ? st : &dummy, collect_entry, &es),
	    1);
	return &es;
}

static struct entries *changes(struct fixture *f, uint64_t account, const char *name,
                               uint64_t since, struct store_mailbox_status *st)
{
	static struct entries es;
	memset(&es, 0, sizeof(es));
	assert_int_equal(store_mailbox_changes(f->store, account, name, since, collect_entry,
	                                       collect_expunged, &es, st),
	                 1);
	for (int i = 1; i < es.n; i++)
		assert_true(es.v[i - 1].uid < es.v[i].uid);
	for (int i = 1; i < es.nx; i++)
		assert_true(es.expunged[i - 1] < es.expunged[i]);
	return &es;
}

/* A flags operation's per-UID report. */
struct report {
	struct store_flags_entry v[64];
	char keywords[64][256];
	int n;
};

static void collect_report(void *ctx, const struct store_flags_entry *e)
{
	struct report *r = ctx;
	assert_true(r->n < 64);
	r->v[r->n] = *e;
	snprintf(r->keywords[r->n], sizeof(r->keywords[0]), "%s", e->keywords);
	r->v[r->n].keywords = r->keywords[r->n];
	r->n++;
}

static int flags(struct fixture *f, uint64_t account, const char *mailbox, const uint32_t *uids,
                 size_t n, enum store_flags_mode mode, unsigned bits, const char *const *kw,
                 size_t nkw, struct store_flags *op, struct report *r)
{
	memset(r, 0, sizeof(*r));
	op->account_id = account;
	op->mailbox = mailbox;
	op->uids = uids;
	op->uid_count = n;
	op->mode = mode;
	op->flags = bits;
	op->keywords = kw;
	op->keyword_count = nkw;
	op->entry_cb = collect_report;
	op->entry_ctx = r;
	int ret = store_flags_wait(f->store, op);
	for (int i = 1; i < r->n; i++)
		assert_true(r->v[i - 1].uid < r->v[i].uid);
	return ret;
}

/* ---- names ---- */

static void test_names(void **state)
{
	(void)state;
	const char *good[] = {"INBOX", "a",         "a/b/c", "Entwürfe", "日本語/メール",
	                      "a b",   "[Gmail]/x", "&-",    "a.b/..",   "x&AMk-"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (store_mailbox_name_valid(good[i]) != 1)
			fail_msg("%s should be valid", good[i]);
	}
	char long_name[STORE_MAILBOX_NAME_MAX + 2], deep[STORE_MAILBOX_DEPTH_MAX * 2 + 2];
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	for (int i = 0; i <= STORE_MAILBOX_DEPTH_MAX; i++) {
		deep[2 * i] = 'd';
		deep[2 * i + 1] = '/';
	}
	deep[2 * STORE_MAILBOX_DEPTH_MAX + 1] = '\0'; /* DEPTH_MAX + 1 levels */
	const char *bad[] = {"",     "/a",      "a/",        "a//b",  "a*",       "%",
	                     "a\tb", "a\x7f",   "a\xc2\x85", "\xc3",  "\xc0\xaf", "\xed\xa0\x80",
	                     "\xff", long_name, deep,        "a\r\nb"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (store_mailbox_name_valid(bad[i]) != 0)
			fail_msg("bad name %zu should be invalid", i);
	}
	assert_int_equal(store_mailbox_name_valid(NULL), 0);
	long_name[STORE_MAILBOX_NAME_MAX] = '\0';
	assert_int_equal(store_mailbox_name_valid(long_name), 1);
	deep[2 * STORE_MAILBOX_DEPTH_MAX - 1] = '\0';
	assert_int_equal(store_mailbox_name_valid(deep), 1);

	const char *kw_good[] = {"$Forwarded", "$MDNSent", "Junk", "NonJunk", "$label1", "a.b-c_d"};
	for (size_t i = 0; i < sizeof(kw_good) / sizeof(kw_good[0]); i++)
		assert_int_equal(store_mailbox_keyword_valid(kw_good[i]), 1);
	const char *kw_bad[] = {"",   "\\Seen", "a b", "a(", "a)", "a{",
	                        "a%", "a*",     "a\"", "a]", "ä",  "a\x01"};
	for (size_t i = 0; i < sizeof(kw_bad) / sizeof(kw_bad[0]); i++)
		assert_int_equal(store_mailbox_keyword_valid(kw_bad[i]), 0);
	char kw_long[STORE_KEYWORD_LEN_MAX + 2];
	memset(kw_long, 'k', sizeof(kw_long) - 1);
	kw_long[sizeof(kw_long) - 1] = '\0';
	assert_int_equal(store_mailbox_keyword_valid(kw_long), 0);
	kw_long[STORE_KEYWORD_LEN_MAX] = '\0';
	assert_int_equal(store_mailbox_keyword_valid(kw_long), 1);
}

/* ---- create and list ---- */

static void test_create_list(void **state)
{
	struct fixture *f = fixture_get(state);
	struct listing *l = list(f, f->a);
	assert_int_equal(l->n, 6);
	assert_string_equal(attrs(l, "INBOX"), "Es");
	assert_int_equal(special(l, "INBOX"), 0);
	assert_int_equal(special(l, "Drafts"), STORE_SPECIAL_DRAFTS);
	assert_int_equal(special(l, "Sent"), STORE_SPECIAL_SENT);
	assert_int_equal(special(l, "Trash"), STORE_SPECIAL_TRASH);
	assert_int_equal(special(l, "Junk"), STORE_SPECIAL_JUNK);
	assert_int_equal(special(l, "Archive"), STORE_SPECIAL_ARCHIVE);

	/* CREATE a/b/c creates its parents (RFC 9051 §6.3.4). */
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "a/b/c", NULL);
	l = list(f, f->a);
	assert_int_equal(l->n, 9);
	assert_string_equal(attrs(l, "a"), "Ec");
	assert_string_equal(attrs(l, "a/b"), "Ec");
	assert_string_equal(attrs(l, "a/b/c"), "E");
	assert_int_equal(stats(f, f->a, "a/b").messages, 0);

	/* Special use, UTF-8, INBOX as a parent in any case. */
	struct store_mailbox_op op = {.action = STORE_MAILBOX_CREATE,
	                              .account_id = f->a,
	                              .name = "Alles",
	                              .special_use = STORE_SPECIAL_ALL | STORE_SPECIAL_FLAGGED};
	assert_int_equal(store_mailbox_change_wait(f->store, &op), 0);
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "Entwürfe/日本", NULL);
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "inbox/Sub", NULL);
	l = list(f, f->a);
	assert_int_equal(special(l, "Alles"), STORE_SPECIAL_ALL | STORE_SPECIAL_FLAGGED);
	assert_string_equal(attrs(l, "Alles"), "E");
	assert_string_equal(attrs(l, "Entwürfe"), "Ec");
	assert_string_equal(attrs(l, "Entwürfe/日本"), "E");
	assert_string_equal(attrs(l, "INBOX"), "Ecs");
	assert_string_equal(attrs(l, "INBOX/Sub"), "E");
	assert_string_equal(attrs(l, "inbox/Sub"), "");

	/* Errors. */
	mbox_fails(f, STORE_MAILBOX_CREATE, f->a, "a/b", NULL, STORE_ERROR_EXISTS);
	mbox_fails(f, STORE_MAILBOX_CREATE, f->a, "inbox", NULL, STORE_ERROR_EXISTS);
	mbox_fails(f, STORE_MAILBOX_CREATE, f->a, "Inbox/Sub", NULL, STORE_ERROR_EXISTS);
	const char *bad[] = {"", "/x", "x/", "x//y", "x*", "x%y", "x\ty", "\xff"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		mbox_fails(f, STORE_MAILBOX_CREATE, f->a, bad[i], NULL, STORE_ERROR_BAD_NAME);
	mbox_fails(f, STORE_MAILBOX_CREATE, f->a, NULL, NULL, STORE_ERROR_BAD_NAME);
	mbox_fails(f, STORE_MAILBOX_CREATE, 999999, "x", NULL, STORE_ERROR_INVALID);
	op = (struct store_mailbox_op){
	    .action = (enum store_mailbox_action)42, .account_id = f->a, .name = "x"};
	assert_int_equal(store_mailbox_change_wait(f->store, &op), -1);
	assert_string_equal(op.error, STORE_ERROR_INVALID);
	assert_int_equal(list(f, f->a)->n, 13);

	/* Names are per account; unknown accounts list nothing. */
	assert_string_equal(attrs(list(f, f->b), "a"), "");
	struct listing none = {.n = 0};
	assert_int_equal(store_mailbox_list(f->store, 999999, collect_mailbox, &none), 0);
	assert_int_equal(none.n, 0);

	/* UIDVALIDITY differs between mailboxes; a name is exact except INBOX. */
	assert_true(stats(f, f->a, "a").uidvalidity != stats(f, f->a, "a/b").uidvalidity);
	struct store_mailbox_stats s;
	assert_int_equal(store_mailbox_stats(f->store, f->a, "A", &s), 0);
	assert_int_equal(store_mailbox_stats(f->store, f->a, "INBOX/sub", &s), 0);
	assert_int_equal(store_mailbox_stats(f->store, f->a, "INBOX/Sub", &s), 1);
	assert_int_equal(store_mailbox_stats(f->store, f->a, "a/", &s), 0);
}

/* STORE_MAILBOXES_MAX, with the creations queued at once (a few group commits). */
struct counter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done, failed;
	const char *last_error;
};

static void counter_init(struct counter *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
}

static void counter_done(struct counter *c, int result, const char *error)
{
	pthread_mutex_lock(&c->lock);
	c->done++;
	if (result < 0) {
		c->failed++;
		c->last_error = error;
	}
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static void counter_wait(struct counter *c, int n)
{
	pthread_mutex_lock(&c->lock);
	while (c->done < n)
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
}

static void counter_mailbox(struct store_mailbox_op *op, void *ctx)
{
	counter_done(ctx, op->result, op->error);
}

static void test_limits(void **state)
{
	struct fixture *f = fixture_get(state);
	int n = STORE_MAILBOXES_MAX - 6 + 1;
	struct store_mailbox_op *ops = xcalloc((size_t)n, sizeof(*ops));
	char(*names)[16] = xcalloc((size_t)n, sizeof(*names));
	struct counter c;
	counter_init(&c);
	for (int i = 0; i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "m%d", i);
		ops[i] = (struct store_mailbox_op){
		    .action = STORE_MAILBOX_CREATE, .account_id = f->a, .name = names[i]};
		store_mailbox_change(f->store, &ops[i], counter_mailbox, &c);
	}
	counter_wait(&c, n);
	assert_int_equal(c.failed, 1);
	assert_string_equal(c.last_error, STORE_ERROR_LIMIT);
	assert_int_equal(ops[n - 1].result, -1);
	/* A CREATE whose parents would pass the limit creates nothing. */
	mbox_ok(f, STORE_MAILBOX_DELETE, f->a, "m0", NULL);
	mbox_fails(f, STORE_MAILBOX_CREATE, f->a, "p/q", NULL, STORE_ERROR_LIMIT);
	struct store_mailbox_stats s;
	assert_int_equal(store_mailbox_stats(f->store, f->a, "p", &s), 0);
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "p", NULL);

	/* Subscriptions: the 6 defaults plus as many more as allowed. */
	c.done = c.failed = 0;
	int m = STORE_SUBSCRIPTIONS_MAX - 6 + 1;
	for (int i = 0; i < m && i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "s%d", i);
		ops[i] = (struct store_mailbox_op){
		    .action = STORE_MAILBOX_SUBSCRIBE, .account_id = f->a, .name = names[i]};
		store_mailbox_change(f->store, &ops[i], counter_mailbox, &c);
	}
	counter_wait(&c, m);
	assert_int_equal(c.failed, 1);
	assert_string_equal(c.last_error, STORE_ERROR_LIMIT);
	/* Subscribing again what is subscribed is fine at the limit. */
	mbox_ok(f, STORE_MAILBOX_SUBSCRIBE, f->a, "s0", NULL);
	free(ops);
	free(names);
	pthread_cond_destroy(&c.cond);
	pthread_mutex_destroy(&c.lock);
}

/* ---- delete ---- */

static void test_delete(void **state)
{
	struct fixture *f = fixture_get(state);
	mbox_fails(f, STORE_MAILBOX_DELETE, f->a, "INBOX", NULL, STORE_ERROR_INBOX);
	mbox_fails(f, STORE_MAILBOX_DELETE, f->a, "inbox", NULL, STORE_ERROR_INBOX);
	mbox_fails(f, STORE_MAILBOX_DELETE, f->a, "nope", NULL, STORE_ERROR_NO_MAILBOX);
	mbox_fails(f, STORE_MAILBOX_DELETE, f->a, "bad/", NULL, STORE_ERROR_BAD_NAME);

	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "a/b", NULL);
	mbox_ok(f, STORE_MAILBOX_SUBSCRIBE, f->a, "a", NULL);
	deliver(f, f->a, "shared\r\n");
	append_ok(f, f->a, "a", "only in a\r\n");
	append_ok(f, f->a, "a", "shared\r\n");
	uint32_t child_uid = append_ok(f, f->a, "a/b", "in the child\r\n");
	expect_blobs(f, 3);
	uint64_t before = used(f, f->a);
	uint32_t old_validity = stats(f, f->a, "a").uidvalidity;
	assert_int_equal(stats(f, f->a, "a").uidnext, 3);

	struct store_mailbox_op op = {
	    .action = STORE_MAILBOX_DELETE, .account_id = f->a, .name = "a"};
	assert_int_equal(store_mailbox_change_wait(f->store, &op), 0);
	assert_int_equal(op.expunged, 2);
	assert_int_equal(op.freed, strlen("only in a\r\n") + strlen("shared\r\n"));
	assert_int_equal(used(f, f->a), before - op.freed);
	/* The file only "a" referenced is gone; the shared one stays. */
	expect_blobs(f, 2);

	/* RFC 9051 §6.3.5: the name stays as a \Noselect parent of a/b; the subscription stays. */
	struct listing *l = list(f, f->a);
	assert_string_equal(attrs(l, "a"), "Pcs");
	assert_string_equal(attrs(l, "a/b"), "E");
	struct store_mailbox_status st;
	assert_int_equal(store_mailbox_snapshot(f->store, f->a, "a", &st, NULL, NULL), 0);
	assert_int_equal(snapshot(f, f->a, "a/b", NULL)->v[0].uid, child_uid);
	/* Deleting the placeholder is an error; deleting the child removes the placeholder. */
	mbox_fails(f, STORE_MAILBOX_DELETE, f->a, "a", NULL, STORE_ERROR_NO_MAILBOX);
	mbox_ok(f, STORE_MAILBOX_DELETE, f->a, "a/b", NULL);
	l = list(f, f->a);
	assert_string_equal(attrs(l, "a"), "Ns");
	assert_string_equal(attrs(l, "a/b"), "");
	expect_blobs(f, 1);

	/* A new mailbox of the same name is a new one (RFC 9051 §6.3.5). */
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "a", NULL);
	struct store_mailbox_stats s = stats(f, f->a, "a");
	assert_true(s.uidvalidity > old_validity);
	assert_int_equal(s.uidnext, 1);
	assert_int_equal(s.messages, 0);
	assert_string_equal(attrs(list(f, f->a), "a"), "Es");
	/* Default special-use mailboxes may go. */
	mbox_ok(f, STORE_MAILBOX_DELETE, f->a, "Trash", NULL);
	assert_string_equal(attrs(list(f, f->a), "Trash"), "Ns");
}

/* ---- rename ---- */

static void test_rename(void **state)
{
	struct fixture *f = fixture_get(state);
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "a/b/c", NULL);
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "ab", NULL);
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "a-b", NULL);
	mbox_ok(f, STORE_MAILBOX_SUBSCRIBE, f->a, "a/b", NULL);
	uint32_t uid = append_ok(f, f->a, "a/b", "in a/b\r\n");
	struct store_mailbox_stats ab = stats(f, f->a, "a/b");

	/* Errors first: nothing may change. */
	mbox_fails(f, STORE_MAILBOX_RENAME, f->a, "nope", "x", STORE_ERROR_NO_MAILBOX);
	mbox_fails(f, STORE_MAILBOX_RENAME, f->a, "a", "ab", STORE_ERROR_EXISTS);
	mbox_fails(f, STORE_MAILBOX_RENAME, f->a, "a", "a", STORE_ERROR_EXISTS);
	mbox_fails(f, STORE_MAILBOX_RENAME, f->a, "a", "inbox", STORE_ERROR_EXISTS);
	mbox_fails(f, STORE_MAILBOX_RENAME, f->a, "a", "a/b/x", STORE_ERROR_INFERIOR);
	mbox_fails(f, STORE_MAILBOX_RENAME, f->a, "a", "x/", STORE_ERROR_BAD_NAME);
	mbox_fails(f, STORE_MAILBOX_RENAME, f->a, "a", NULL, STORE_ERROR_BAD_NAME);
	/* A child's new name is taken (x/b/c exists below a placeholder x/b). */
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "x/b/c", NULL);
	mbox_ok(f, STORE_MAILBOX_DELETE, f->a, "x/b", NULL);
	mbox_ok(f, STORE_MAILBOX_DELETE, f->a, "x", NULL);
	mbox_fails(f, STORE_MAILBOX_RENAME, f->a, "a", "x", STORE_ERROR_EXISTS);
	struct listing *l = list(f, f->a);
	assert_string_equal(attrs(l, "a"), "Ec");
	assert_string_equal(attrs(l, "a/b/c"), "E");
	assert_string_equal(attrs(l, "x"), "Pc");

	/* Rename with children, to a name whose parents do not exist yet. */
	mbox_ok(f, STORE_MAILBOX_RENAME, f->a, "a", "n/m");
	l = list(f, f->a);
	assert_string_equal(attrs(l, "a"), "");
	assert_string_equal(attrs(l, "a/b"), "");
	assert_string_equal(attrs(l, "a/b/c"), "");
	assert_string_equal(attrs(l, "n"), "Ec");
	assert_string_equal(attrs(l, "n/m"), "Ec");
	assert_string_equal(attrs(l, "n/m/b"), "Ecs"); /* the subscription moved along */
	assert_string_equal(attrs(l, "n/m/b/c"), "E");
	assert_string_equal(attrs(l, "ab"), "E");
	assert_string_equal(attrs(l, "a-b"), "E");
	struct store_mailbox_stats moved = stats(f, f->a, "n/m/b");
	assert_int_equal(moved.uidvalidity, ab.uidvalidity);
	assert_int_equal(moved.uidnext, ab.uidnext);
	assert_int_equal(moved.highestmodseq, ab.highestmodseq);
	assert_int_equal(snapshot(f, f->a, "n/m/b", NULL)->v[0].uid, uid);

	/* Up into a placeholder parent, where a child's new name is a moving name itself. */
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "p/q/q", NULL);
	mbox_ok(f, STORE_MAILBOX_DELETE, f->a, "p", NULL);
	mbox_ok(f, STORE_MAILBOX_RENAME, f->a, "p/q", "p");
	l = list(f, f->a);
	assert_string_equal(attrs(l, "p"), "Ec");
	assert_string_equal(attrs(l, "p/q"), "E");
	assert_string_equal(attrs(l, "p/q/q"), "");

	/* Too long a new name for a child. */
	char longname[STORE_MAILBOX_NAME_MAX + 1];
	memset(longname, 'L', STORE_MAILBOX_NAME_MAX - 2);
	longname[STORE_MAILBOX_NAME_MAX - 2] = '\0';
	mbox_fails(f, STORE_MAILBOX_RENAME, f->a, "n", longname, STORE_ERROR_BAD_NAME);
}

static void test_rename_inbox(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *kw[] = {"$Forwarded"};
	uint32_t uid;
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "INBOX/keep", NULL);
	deliver(f, f->a, "one\r\n");
	deliver(f, f->a, "two\r\n");
	assert_int_equal(
	    append(f, f->a, "INBOX", "three\r\n", STORE_FLAG_SEEN, kw, 1, 1600000000, &uid, NULL),
	    0);
	assert_int_equal(uid, 3);
	struct store_mailbox_stats in = stats(f, f->a, "INBOX");
	uint64_t before = used(f, f->a);

	mbox_fails(f, STORE_MAILBOX_RENAME, f->a, "INBOX", "Sent", STORE_ERROR_EXISTS);
	/* RFC 9051 §6.3.6: the messages move to the new name; INBOX stays, empty. */
	mbox_ok(f, STORE_MAILBOX_RENAME, f->a, "inbox", "Old/inbox");
	struct store_mailbox_status st;
	struct entries *e = snapshot(f, f->a, "Old/inbox", &st);
	assert_int_equal(e->n, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(e->v[i].uid, (uint32_t)i + 1);
	assert_int_equal(e->v[2].flags, STORE_FLAG_SEEN);
	assert_string_equal(e->v[2].keywords, "$Forwarded");
	assert_int_equal(e->v[2].date, 1600000000);
	assert_true(st.uidvalidity != in.uidvalidity);
	assert_int_equal(st.uidnext, 4);
	char *keywords = NULL;
	assert_int_equal(store_mailbox_keywords(f->store, f->a, "Old/inbox", &keywords), 1);
	assert_string_equal(keywords, "$Forwarded");
	free(keywords);

	struct store_mailbox_stats now = stats(f, f->a, "INBOX");
	assert_int_equal(now.messages, 0);
	assert_int_equal(now.uidvalidity, in.uidvalidity);
	assert_int_equal(now.uidnext, in.uidnext);
	assert_true(now.highestmodseq > in.highestmodseq);
	e = changes(f, f->a, "INBOX", in.highestmodseq, NULL);
	assert_int_equal(e->n, 0);
	assert_int_equal(e->nx, 3);
	assert_int_equal(e->expunged_modseq[0], now.highestmodseq);
	assert_int_equal(used(f, f->a), before);

	struct listing *l = list(f, f->a);
	assert_string_equal(attrs(l, "INBOX"), "Ecs");
	assert_string_equal(attrs(l, "INBOX/keep"), "E");
	assert_string_equal(attrs(l, "Old"), "Ec");
	assert_string_equal(attrs(l, "Old/inbox"), "E");
	/* New mail goes to the (same) INBOX with the next UID. */
	deliver(f, f->a, "four\r\n");
	e = snapshot(f, f->a, "INBOX", NULL);
	assert_int_equal(e->n, 1);
	assert_int_equal(e->v[0].uid, 4);
	/* Renaming an empty INBOX works too and changes nothing in it. */
	mbox_ok(f, STORE_MAILBOX_RENAME, f->a, "INBOX", "Old2");
	mbox_ok(f, STORE_MAILBOX_RENAME, f->a, "INBOX", "Old3");
	assert_int_equal(stats(f, f->a, "Old3").messages, 0);
	assert_int_equal(stats(f, f->a, "Old2").messages, 1);
}

/* ---- subscriptions ---- */

static void test_subscriptions(void **state)
{
	struct fixture *f = fixture_get(state);
	/* RFC 9051 §6.3.7: a name that does not exist may be subscribed. */
	mbox_ok(f, STORE_MAILBOX_SUBSCRIBE, f->a, "nope/deeper", NULL);
	mbox_ok(f, STORE_MAILBOX_SUBSCRIBE, f->a, "nope/deeper", NULL);
	mbox_ok(f, STORE_MAILBOX_SUBSCRIBE, f->a, "inbox", NULL);
	struct listing *l = list(f, f->a);
	assert_int_equal(l->n, 7);
	assert_string_equal(attrs(l, "nope/deeper"), "Ns");
	assert_string_equal(attrs(l, "nope"), "");
	assert_string_equal(attrs(l, "INBOX"), "Es");
	mbox_fails(f, STORE_MAILBOX_SUBSCRIBE, f->a, "bad//name", NULL, STORE_ERROR_BAD_NAME);
	mbox_fails(f, STORE_MAILBOX_SUBSCRIBE, 999999, "x", NULL, STORE_ERROR_INVALID);

	/* Unsubscribing: also of a name never subscribed. */
	mbox_ok(f, STORE_MAILBOX_UNSUBSCRIBE, f->a, "nope/deeper", NULL);
	mbox_ok(f, STORE_MAILBOX_UNSUBSCRIBE, f->a, "never", NULL);
	mbox_ok(f, STORE_MAILBOX_UNSUBSCRIBE, f->a, "INBOX", NULL);
	l = list(f, f->a);
	assert_int_equal(l->n, 6);
	assert_string_equal(attrs(l, "nope/deeper"), "");
	assert_string_equal(attrs(l, "INBOX"), "E");

	/* A subscribed mailbox that goes keeps its subscription (RFC 9051 §6.3.7). */
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "p/q", NULL);
	mbox_ok(f, STORE_MAILBOX_SUBSCRIBE, f->a, "p/q", NULL);
	assert_string_equal(attrs(list(f, f->a), "p/q"), "Es");
	mbox_ok(f, STORE_MAILBOX_DELETE, f->a, "p/q", NULL);
	l = list(f, f->a);
	assert_string_equal(attrs(l, "p/q"), "Ns");
	assert_string_equal(attrs(l, "p"), "E");
	/* Created again, it is subscribed again. */
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "p/q", NULL);
	l = list(f, f->a);
	assert_string_equal(attrs(l, "p/q"), "Es");
	assert_string_equal(attrs(l, "p"), "Ec");
	/* Subscriptions are per account. */
	assert_string_equal(attrs(list(f, f->b), "p/q"), "");
}

/* ---- metadata (RFC 5464) ---- */

/* Set entries given as "name=value" ("name" alone removes) on mailbox ("" the server
 * entries) with at most max entries per account: 0, or -1 with *error_r. */
static int meta_set(struct fixture *f, uint64_t account, const char *mailbox, uint32_t max,
                    const char **error_r, const char *const *entries, size_t n)
{
	struct store_metadata_entry e[8];
	char names[8][64];
	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(entries[i], '=');
		size_t len = eq != NULL ? (size_t)(eq - entries[i]) : strlen(entries[i]);
		snprintf(names[i], sizeof(names[i]), "%.*s", (int)len, entries[i]);
		e[i] = (struct store_metadata_entry){
		    .name = names[i],
		    .value = eq != NULL ? eq + 1 : NULL,
		    .size = eq != NULL ? strlen(eq + 1) : 0,
		};
	}
	struct store_mailbox_op op = {
	    .action = STORE_MAILBOX_METADATA,
	    .account_id = account,
	    .name = mailbox,
	    .metadata = e,
	    .metadata_count = n,
	    .metadata_max = max,
	};
	int ret = store_mailbox_change_wait(f->store, &op);
	*error_r = op.error;
	return ret;
}

static void meta_add(void *ctx, const char *name, const void *value, size_t size)
{
	char *out = ctx;
	size_t len = strlen(out);
	snprintf(out + len, 512 - len, "%s%s=%.*s", len > 0 ? " " : "", name, (int)size,
	         (const char *)value);
}

/* "name=value ..." of store_metadata_get(), or "-" for no such mailbox, "!" an error. */
static const char *meta_get(struct fixture *f, uint64_t account, const char *mailbox,
                            const char *name, int depth)
{
	static char out[512];
	out[0] = '\0';
	int ret = store_metadata_get(f->store, account, mailbox, name, depth, meta_add, out);
	return ret == 1 ? out : ret == 0 ? "-" : "!";
}

static void test_metadata(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *error = NULL;
	const char *set1[] = {"/private/a=1", "/private/a/b=2", "/private/a/b/c=3", "/private/ab=x",
	                      "/shared/comment="};
	assert_int_equal(meta_set(f, f->a, "inbox", 0, &error, set1, 5), 0);
	const char *srv[] = {"/shared/comment=server"};
	assert_int_equal(meta_set(f, f->a, "", 0, &error, srv, 1), 0);
	/* Exact, DEPTH 1, DEPTH infinity; an empty value is a value; the root. */
	assert_string_equal(meta_get(f, f->a, "INBOX", "/private/a", 0), "/private/a=1");
	assert_string_equal(meta_get(f, f->a, "INBOX", "/private/a", 1),
	                    "/private/a=1 /private/a/b=2");
	assert_string_equal(meta_get(f, f->a, "INBOX", "/private/a", -1),
	                    "/private/a=1 /private/a/b=2 /private/a/b/c=3");
	assert_string_equal(meta_get(f, f->a, "INBOX", "/private", 1),
	                    "/private/a=1 /private/ab=x");
	assert_string_equal(meta_get(f, f->a, "INBOX", "/shared/comment", 0), "/shared/comment=");
	/* Server entries are apart from mailbox entries, and per account. */
	assert_string_equal(meta_get(f, f->a, "", "/shared/comment", 0), "/shared/comment=server");
	assert_string_equal(meta_get(f, f->b, "", "/shared/comment", 0), "");
	assert_string_equal(meta_get(f, f->b, "INBOX", "/private/a", -1), "");
	assert_string_equal(meta_get(f, f->a, "nosuch", "/private/a", 0), "-");

	/* Replace and remove in one operation. */
	const char *set2[] = {"/private/a=one", "/private/a/b"};
	assert_int_equal(meta_set(f, f->a, "INBOX", 0, &error, set2, 2), 0);
	assert_string_equal(meta_get(f, f->a, "INBOX", "/private/a", -1),
	                    "/private/a=one /private/a/b/c=3");

	/* Refusals leave nothing: too many (5 held, max 5), no mailbox, bad names. A
	 * replacement at the limit is fine. */
	const char *more[] = {"/private/n1=1", "/private/a=changed"};
	assert_int_equal(meta_set(f, f->a, "INBOX", 5, &error, more, 2), -1);
	assert_string_equal(error, STORE_ERROR_METADATA_TOOMANY);
	assert_string_equal(meta_get(f, f->a, "INBOX", "/private/a", 0), "/private/a=one");
	assert_int_equal(meta_set(f, f->a, "INBOX", 5, &error, more + 1, 1), 0);
	assert_int_equal(meta_set(f, f->a, "nosuch", 0, &error, more, 1), -1);
	assert_string_equal(error, STORE_ERROR_NO_MAILBOX);
	const char *bad[][1] = {{"/private/Upper=1"}, {"/other/x=1"},    {"/private/x/=1"},
	                        {"/private//x=1"},    {"/private/a*=1"}, {"/private=1"}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(meta_set(f, f->a, "INBOX", 0, &error, bad[i], 1), -1);
		assert_string_equal(error, STORE_ERROR_INVALID);
	}
	const char *twice[] = {"/private/t=1", "/private/t=2"};
	assert_int_equal(meta_set(f, f->a, "INBOX", 0, &error, twice, 2), -1);
	assert_int_equal(meta_set(f, 999999, "", 0, &error, twice, 1), -1);
	assert_string_equal(error, STORE_ERROR_INVALID);

	/* RENAME takes the entries along; DELETE drops them with the mailbox. */
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "p", NULL);
	const char *pe[] = {"/shared/comment=plans"};
	assert_int_equal(meta_set(f, f->a, "p", 0, &error, pe, 1), 0);
	mbox_ok(f, STORE_MAILBOX_RENAME, f->a, "p", "q/p");
	assert_string_equal(meta_get(f, f->a, "q/p", "/shared/comment", 0),
	                    "/shared/comment=plans");
	assert_string_equal(meta_get(f, f->a, "p", "/shared/comment", 0), "-");
	mbox_ok(f, STORE_MAILBOX_DELETE, f->a, "q/p", NULL);
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "q/p", NULL);
	assert_string_equal(meta_get(f, f->a, "q/p", "/shared/comment", 0), "");
	/* Renaming INBOX leaves its entries on INBOX. */
	mbox_ok(f, STORE_MAILBOX_RENAME, f->a, "INBOX", "old-inbox");
	assert_string_equal(meta_get(f, f->a, "INBOX", "/private/a", 0), "/private/a=changed");
	assert_string_equal(meta_get(f, f->a, "old-inbox", "/private/a", 0), "");
}

/* ---- snapshots kept between SELECTs (store_snapcache.c) ---- */

struct digest {
	char *s;
	size_t len, cap;
};

static void digest_entry(void *ctx, const struct store_entry *e)
{
	struct digest *d = ctx;
	char line[256];
	int n = snprintf(line, sizeof(line), "%u/%u/%llu/%llu/%lld/%s;", e->uid, e->flags,
	                 (unsigned long long)e->modseq, (unsigned long long)e->size,
	                 (long long)e->internal_date, e->keywords);
	if (d->len + (size_t)n + 1 > d->cap) {
		d->cap = (d->cap + (size_t)n + 1) * 2;
		d->s = xrealloc(d->s, d->cap);
	}
	memcpy(d->s + d->len, line, (size_t)n + 1);
	d->len += (size_t)n;
}

/* The snapshot through the store (and its cache), and read in full from the database:
 * they must be the same. Returns the number of entries. */
static uint32_t snapshot_same(struct fixture *f, const char *name)
{
	struct digest a = {0}, b = {0};
	struct store_mailbox_status sa, sb;
	assert_int_equal(store_mailbox_snapshot(f->store, f->a, name, &sa, digest_entry, &a), 1);
	assert_int_equal(f->store->v->mailbox_snapshot(f->store, f->a, name, &sb, digest_entry, &b),
	                 1);
	assert_string_equal(a.s != NULL ? a.s : "", b.s != NULL ? b.s : "");
	assert_int_equal(sa.messages, sb.messages);
	assert_int_equal(sa.uidvalidity, sb.uidvalidity);
	assert_int_equal(sa.uidnext, sb.uidnext);
	assert_int_equal(sa.highestmodseq, sb.highestmodseq);
	free(a.s);
	free(b.s);
	return sa.messages;
}

/* Append n small messages to name in one operation. */
static void append_many(struct fixture *f, const char *name, size_t n)
{
	struct store_append_message *m = xcalloc(n, sizeof(*m));
	char **paths = xcalloc(n, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		char body[64];
		snprintf(body, sizeof(body), "Subject: %zu\r\n\r\nm\r\n", i);
		paths[i] = spool(f->store, body);
		m[i] = (struct store_append_message){.spool_path = paths[i],
		                                     .internal_date = 1700000000 + (int64_t)i};
	}
	struct store_append op = {.account_id = f->a, .mailbox = name, .messages = m, .count = n};
	assert_int_equal(store_append_wait(f->store, &op), 0);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	free(m);
}

static void test_snapshot_cache(void **state)
{
	struct fixture *f = fixture_get(state);
	append_many(f, "INBOX", 1200);
	/* Small mailboxes are not kept; a large one is, after its first full read. */
	append_ok(f, f->a, "Drafts", "Subject: d\r\n\r\nd\r\n");
	assert_int_equal(snapshot_same(f, "Drafts"), 1);
	assert_int_equal(store_snapcache_entries(f->store), 0);
	assert_int_equal(snapshot_same(f, "INBOX"), 1200);
	assert_int_equal(store_snapcache_entries(f->store), 1200);
	assert_int_equal(snapshot_same(f, "INBOX"), 1200); /* unchanged */

	/* Flags and keywords, expunges (first, middle, last) and new messages merge in. */
	uint32_t flagged[] = {5, 600, 1200};
	const char *kw[] = {"$Cached"};
	struct store_flags op = {0}; /* not conditional */
	struct report r;
	assert_int_equal(
	    flags(f, f->a, "INBOX", flagged, 3, STORE_FLAGS_ADD, STORE_FLAG_SEEN, kw, 1, &op, &r),
	    0);
	uint32_t gone[] = {1, 700, 1200};
	struct store_expunge x = {
	    .account_id = f->a, .mailbox = "INBOX", .uids = gone, .uid_count = 3};
	assert_int_equal(store_expunge_wait(f->store, &x), 0);
	append_many(f, "INBOX", 4);
	assert_int_equal(snapshot_same(f, "INBOX"), 1201);
	assert_int_equal(store_snapcache_entries(f->store), 1201);
	/* Changed once more, then read twice. */
	uint32_t again[] = {600, 1201};
	assert_int_equal(flags(f, f->a, "INBOX", again, 2, STORE_FLAGS_REPLACE, STORE_FLAG_FLAGGED,
	                       NULL, 0, &op, &r),
	                 0);
	assert_int_equal(snapshot_same(f, "INBOX"), 1201);
	assert_int_equal(snapshot_same(f, "INBOX"), 1201);

	/* A mailbox renamed away, deleted, made again (a new UIDVALIDITY): never the old copy. */
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "Big", NULL);
	append_many(f, "Big", 1000);
	assert_int_equal(snapshot_same(f, "Big"), 1000);
	assert_int_equal(store_snapcache_entries(f->store), 2201);
	mbox_ok(f, STORE_MAILBOX_RENAME, f->a, "Big", "Bigger");
	struct store_mailbox_status st;
	assert_int_equal(
	    store_mailbox_snapshot(f->store, f->a, "Big", &st, digest_entry, &(struct digest){0}),
	    0);
	assert_int_equal(store_snapcache_entries(f->store), 1201); /* dropped */
	assert_int_equal(snapshot_same(f, "Bigger"), 1000);
	mbox_ok(f, STORE_MAILBOX_DELETE, f->a, "Bigger", NULL);
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "Bigger", NULL);
	append_ok(f, f->a, "Bigger", "Subject: new\r\n\r\nn\r\n");
	assert_int_equal(snapshot_same(f, "Bigger"), 1);
	assert_int_equal(store_snapcache_entries(f->store), 1201);
}

/* ---- tombstone retention ---- */

static void expunge_ok(struct fixture *f, uint64_t account, const char *mailbox, uint32_t *uids,
                       size_t n)
{
	struct store_expunge x = {
	    .account_id = account, .mailbox = mailbox, .uids = uids, .uid_count = n};
	assert_int_equal(store_expunge_wait(f->store, &x), 0);
	assert_int_equal(x.expunged, n);
}

static struct store_prune_result prune(struct fixture *f, int64_t cutoff, size_t limit)
{
	struct store_prune_result r;
	assert_int_equal(store_tombstones_prune_wait(f->store, cutoff, limit, &r), 0);
	return r;
}

/* Pruning by age: the tombstones expunged at or before the cutoff go, oldest first and at
 * most the limit per pass; each mailbox's floor rises to the highest MODSEQ pruned from it;
 * newer tombstones, other mailboxes and other accounts keep theirs. */
static void test_tombstone_prune(void **state)
{
	struct fixture *f = fixture_get(state);
	struct store_mailbox_status st;
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "Other", NULL);
	for (int i = 0; i < 5; i++)
		append_ok(f, f->a, "INBOX", "Subject: i\r\n\r\ni\r\n");
	for (int i = 0; i < 2; i++) {
		append_ok(f, f->a, "Other", "Subject: o\r\n\r\no\r\n");
		append_ok(f, f->b, "INBOX", "Subject: b\r\n\r\nb\r\n");
	}
	assert_int_equal(prune(f, (int64_t)time(NULL) + 10, 100).removed, 0); /* none yet */
	expunge_ok(f, f->a, "INBOX", (uint32_t[]){1, 2}, 2);
	uint64_t m_inbox = changes(f, f->a, "INBOX", 0, &st)->expunged_modseq[0];
	expunge_ok(f, f->a, "Other", (uint32_t[]){1}, 1);
	uint64_t m_other = changes(f, f->a, "Other", 0, &st)->expunged_modseq[0];
	/* The next tombstones are a second younger. */
	int64_t cutoff = (int64_t)time(NULL);
	while ((int64_t)time(NULL) <= cutoff)
		usleep(20 * 1000);
	expunge_ok(f, f->a, "INBOX", (uint32_t[]){3}, 1);
	expunge_ok(f, f->b, "INBOX", (uint32_t[]){1}, 1);
	struct entries *es = changes(f, f->a, "INBOX", 0, &st);
	assert_int_equal(es->nx, 3);
	uint64_t m_inbox3 = es->expunged_modseq[2];
	assert_true(m_inbox3 > m_inbox);
	assert_int_equal(st.tombstone_floor, 0);

	assert_int_equal(prune(f, cutoff - 5, 100).removed, 0); /* older than every one */
	struct store_prune_result r = prune(f, cutoff, 100);
	assert_int_equal(r.removed, 3);
	assert_int_equal(r.mailboxes, 2);
	assert_false(r.more);
	es = changes(f, f->a, "INBOX", 0, &st);
	assert_int_equal(st.tombstone_floor, m_inbox);
	assert_int_equal(es->nx, 1);
	assert_int_equal(es->expunged[0], 3);
	assert_int_equal(es->expunged_modseq[0], m_inbox3);
	assert_int_equal(es->n, 2); /* entries untouched */
	es = changes(f, f->a, "Other", 0, &st);
	assert_int_equal(st.tombstone_floor, m_other);
	assert_int_equal(es->nx, 0);
	assert_int_equal(es->n, 1);
	es = changes(f, f->b, "INBOX", 0, &st); /* another account's, younger: kept */
	assert_int_equal(st.tombstone_floor, 0);
	assert_int_equal(es->nx, 1);
	/* The snapshot status carries the floor too. */
	snapshot(f, f->a, "Other", &st);
	assert_int_equal(st.tombstone_floor, m_other);
	assert_int_equal(prune(f, cutoff, 100).removed, 0); /* nothing left that old */

	/* A limit of one: one per pass, more said while some are due. */
	int64_t later = (int64_t)time(NULL) + 10;
	r = prune(f, later, 1);
	assert_int_equal(r.removed, 1);
	assert_true(r.more);
	r = prune(f, later, 10);
	assert_int_equal(r.removed, 1);
	assert_false(r.more);
	changes(f, f->a, "INBOX", 0, &st);
	assert_int_equal(st.tombstone_floor, m_inbox3);
	es = changes(f, f->b, "INBOX", 0, &st);
	assert_int_equal(es->nx, 0);
	assert_true(st.tombstone_floor > 0);
	changes(f, f->a, "Other", 0, &st);
	assert_int_equal(st.tombstone_floor, m_other); /* unchanged */
	assert_int_equal(prune(f, later, 0).removed, 0);
}

/* The writer thread's periodic pass (store_set_tombstone_retention(), as `posthorn serve`
 * with imap_expunge_retention, here 1 s every second): a tombstone goes once it is older
 * than the retention, and the floor rises. Waits for the pass (at most 10 s). */
static void test_tombstone_prune_periodic(void **state)
{
	struct fixture *f = fixture_get(state);
	struct store_mailbox_status st;
	for (int i = 0; i < 3; i++)
		append_ok(f, f->a, "INBOX", "Subject: i\r\n\r\ni\r\n");
	expunge_ok(f, f->a, "INBOX", (uint32_t[]){2}, 1);
	uint64_t m = changes(f, f->a, "INBOX", 0, &st)->expunged_modseq[0];
	store_set_tombstone_retention(f->store, 1, 1);
	struct entries *es = NULL;
	for (int i = 0; i < 200; i++) {
		es = changes(f, f->a, "INBOX", 0, &st);
		if (es->nx == 0)
			break;
		usleep(50 * 1000);
	}
	assert_int_equal(es->nx, 0);
	assert_int_equal(st.tombstone_floor, m);
	assert_int_equal(es->n, 2);
}

/* A cached snapshot older than the floor is not merged (the pruned tombstones would be
 * missing from the changes) but read again in full: the same answer as a full read. */
static void test_tombstone_prune_snapcache(void **state)
{
	struct fixture *f = fixture_get(state);
	append_many(f, "INBOX", 1000);
	assert_int_equal(snapshot_same(f, "INBOX"), 1000);
	assert_int_equal(store_snapcache_entries(f->store), 1000);
	expunge_ok(f, f->a, "INBOX", (uint32_t[]){10, 500}, 2);
	assert_int_equal(prune(f, (int64_t)time(NULL) + 10, 100).removed, 2);
	assert_int_equal(snapshot_same(f, "INBOX"), 998);
}

/* ---- status ---- */

static void test_status(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *m1 = "first\r\n", *m2 = "second!\r\n", *m3 = "third ...\r\n";
	struct store_mailbox_stats s = stats(f, f->a, "INBOX");
	assert_int_equal(s.messages, 0);
	assert_int_equal(s.uidnext, 1);
	assert_int_equal(s.unseen, 0);
	assert_int_equal(s.deleted, 0);
	assert_int_equal(s.recent, 0);
	assert_int_equal(s.size, 0);
	assert_int_equal(s.highestmodseq, 1);
	assert_int_equal(s.deleted_size, 0);
	deliver(f, f->a, m1);
	assert_int_equal(append(f, f->a, "INBOX", m2, STORE_FLAG_SEEN | STORE_FLAG_DELETED, NULL, 0,
	                        0, NULL, NULL),
	                 0);
	assert_int_equal(append(f, f->a, "INBOX", m3, STORE_FLAG_DELETED, NULL, 0, 0, NULL, NULL),
	                 0);
	s = stats(f, f->a, "inbox");
	assert_int_equal(s.messages, 3);
	assert_int_equal(s.uidnext, 4);
	assert_int_equal(s.unseen, 2);
	assert_int_equal(s.deleted, 2);
	assert_int_equal(s.recent, 3); /* no session has claimed them */
	assert_int_equal(s.size, strlen(m1) + strlen(m2) + strlen(m3));
	assert_int_equal(s.deleted_size, strlen(m2) + strlen(m3)); /* STATUS DELETED-STORAGE */
	assert_int_equal(s.highestmodseq, 4);
	struct store_mailbox_status st;
	snapshot(f, f->a, "INBOX", &st);
	assert_int_equal(st.uidvalidity, s.uidvalidity);
	assert_int_equal(st.highestmodseq, s.highestmodseq);
	assert_int_equal(store_mailbox_stats(f->store, f->a, "nope", &s), 0);
	assert_int_equal(store_mailbox_stats(f->store, 999999, "INBOX", &s), 0);
	char *kw;
	assert_int_equal(store_mailbox_keywords(f->store, f->a, "nope", &kw), 0);
	assert_int_equal(store_mailbox_keywords(f->store, f->a, "INBOX", &kw), 1);
	assert_string_equal(kw, "");
	free(kw);
}

/* \Recent: a claim moves the boundary once; a look does not; new entries after it are
 * recent again; a reopened store starts after what it already held; a recreated mailbox
 * (new UIDVALIDITY) starts over. */
static void test_recent(void **state)
{
	struct fixture *f = fixture_get(state);
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "R", NULL);
	append_ok(f, f->a, "R", "one\r\n");
	append_ok(f, f->a, "R", "two\r\n");
	struct store_mailbox_stats s = stats(f, f->a, "R");
	assert_int_equal(s.recent, 2);
	uint32_t first = 0;
	assert_int_equal(store_recent_claim(f->store, f->a, "R", s.uidvalidity, 3, false, &first),
	                 1);
	assert_int_equal(first, 1);
	assert_int_equal(store_recent_claim(f->store, f->a, "R", s.uidvalidity, 3, true, &first),
	                 1);
	assert_int_equal(first, 1); /* this caller: UIDs 1 and 2 */
	assert_int_equal(store_recent_claim(f->store, f->a, "R", s.uidvalidity, 3, true, &first),
	                 1);
	assert_int_equal(first, 3); /* any later caller: none */
	assert_int_equal(stats(f, f->a, "R").recent, 0);
	append_ok(f, f->a, "R", "three\r\n");
	assert_int_equal(stats(f, f->a, "R").recent, 1);
	assert_int_equal(store_recent_claim(f->store, f->a, "nope", 1, 3, true, &first), 0);
	/* reopened: what the store held before is not recent any more */
	store_close(&f->store);
	open_store(f);
	assert_int_equal(stats(f, f->a, "R").recent, 0);
	append_ok(f, f->a, "R", "four\r\n");
	s = stats(f, f->a, "R");
	assert_int_equal(s.recent, 1);
	assert_int_equal(store_recent_claim(f->store, f->a, "R", s.uidvalidity, 5, true, &first),
	                 1);
	assert_int_equal(first, 4);
	/* recreated: everything in the new mailbox is recent */
	mbox_ok(f, STORE_MAILBOX_DELETE, f->a, "R", NULL);
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "R", NULL);
	append_ok(f, f->a, "R", "five\r\n");
	s = stats(f, f->a, "R");
	assert_int_equal(s.recent, 1);
	assert_int_equal(
	    store_recent_claim(f->store, f->a, "R", s.uidvalidity, s.uidnext, true, &first), 1);
	assert_int_equal(first, 1);
}

/* ---- flags ---- */

static void test_flags(void **state)
{
	struct fixture *f = fixture_get(state);
	struct store_flags op = {0}; /* not conditional until the UNCHANGEDSINCE part */
	struct report r;
	for (int i = 0; i < 4; i++)
		deliver(f, f->a, i == 0 ? "1\r\n" : i == 1 ? "2\r\n" : i == 2 ? "3\r\n" : "4\r\n");
	uint64_t m0 = stats(f, f->a, "INBOX").highestmodseq;
	uint32_t uids[] = {3, 1, 99, 2, 1, 0};

	/* +FLAGS with keywords: one new MODSEQ for every changed entry. */
	const char *kw1[] = {"$Label1", "Work"};
	memset(&op, 0, sizeof(op));
	assert_int_equal(
	    flags(f, f->a, "INBOX", uids, 6, STORE_FLAGS_ADD, STORE_FLAG_SEEN, kw1, 2, &op, &r), 0);
	assert_int_equal(op.changed, 3);
	assert_int_equal(op.modified, 0);
	assert_int_equal(op.modseq, m0 + 1);
	assert_int_equal(r.n, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r.v[i].uid, (uint32_t)i + 1);
		assert_int_equal(r.v[i].flags, STORE_FLAG_SEEN);
		assert_string_equal(r.v[i].keywords, "$Label1 Work");
		assert_int_equal(r.v[i].modseq, m0 + 1);
		assert_true(r.v[i].changed);
		assert_false(r.v[i].modified);
	}
	struct entries *e = snapshot(f, f->a, "INBOX", NULL);
	assert_string_equal(e->v[0].keywords, "$Label1 Work");
	assert_string_equal(e->v[3].keywords, "");
	assert_int_equal(e->v[3].flags, 0);
	assert_int_equal(stats(f, f->a, "INBOX").highestmodseq, m0 + 1);
	char *kw;
	assert_int_equal(store_mailbox_keywords(f->store, f->a, "INBOX", &kw), 1);
	assert_string_equal(kw, "$Label1 Work");
	free(kw);

	/* The same again changes nothing: no new MODSEQ; keywords match case-insensitively
	 * and keep the mailbox's first spelling. */
	const char *kw1b[] = {"$label1", "WORK", "work"};
	assert_int_equal(
	    flags(f, f->a, "INBOX", uids, 4, STORE_FLAGS_ADD, STORE_FLAG_SEEN, kw1b, 3, &op, &r),
	    0);
	assert_int_equal(op.changed, 0);
	assert_int_equal(op.modseq, 0);
	assert_int_equal(r.n, 3);
	assert_false(r.v[0].changed);
	assert_int_equal(r.v[0].modseq, m0 + 1);
	assert_int_equal(stats(f, f->a, "INBOX").highestmodseq, m0 + 1);

	/* -FLAGS: removes a system flag and a keyword given in another case. */
	const char *kw2[] = {"work", "Unknown"};
	uint32_t one = 1;
	assert_int_equal(
	    flags(f, f->a, "INBOX", &one, 1, STORE_FLAGS_REMOVE, STORE_FLAG_SEEN, kw2, 2, &op, &r),
	    0);
	assert_int_equal(op.changed, 1);
	assert_int_equal(op.modseq, m0 + 2);
	assert_int_equal(r.v[0].flags, 0);
	assert_string_equal(r.v[0].keywords, "$Label1");
	/* Removing never shrinks the mailbox's keyword list; unknown ones do not join it. */
	assert_int_equal(store_mailbox_keywords(f->store, f->a, "INBOX", &kw), 1);
	assert_string_equal(kw, "$Label1 Work");
	free(kw);

	/* FLAGS (replace): new keyword spelled like the mailbox's, system flags replaced. */
	const char *kw3[] = {"WORK", "$Junk"};
	uint32_t two = 2;
	assert_int_equal(flags(f, f->a, "INBOX", &two, 1, STORE_FLAGS_REPLACE,
	                       STORE_FLAG_FLAGGED | STORE_FLAG_ANSWERED | (1u << 20), kw3, 2, &op,
	                       &r),
	                 0);
	assert_int_equal(r.v[0].flags, STORE_FLAG_FLAGGED | STORE_FLAG_ANSWERED);
	assert_string_equal(r.v[0].keywords, "Work $Junk");
	assert_int_equal(r.v[0].modseq, m0 + 3);
	assert_int_equal(flags(f, f->a, "INBOX", &two, 1, STORE_FLAGS_REPLACE, 0, NULL, 0, &op, &r),
	                 0);
	assert_int_equal(r.v[0].flags, 0);
	assert_string_equal(r.v[0].keywords, "");

	/* UNCHANGEDSINCE (RFC 7162 §3.1.3): entries changed after it are reported, not changed. */
	e = snapshot(f, f->a, "INBOX", NULL);
	uint64_t mod3 = e->v[2].modseq; /* uid 3: m0 + 1 */
	uint32_t all[] = {1, 2, 3, 4};
	memset(&op, 0, sizeof(op));
	op.conditional = true;
	op.unchanged_since = mod3;
	assert_int_equal(
	    flags(f, f->a, "INBOX", all, 4, STORE_FLAGS_ADD, STORE_FLAG_DELETED, NULL, 0, &op, &r),
	    0);
	assert_int_equal(op.modified, 2); /* uids 1 and 2 */
	assert_int_equal(op.changed, 2);  /* uids 3 and 4 */
	assert_true(r.v[0].modified && !r.v[0].changed);
	assert_true(r.v[1].modified && !r.v[1].changed);
	assert_true(r.v[2].changed && r.v[3].changed);
	assert_int_equal(r.v[0].flags, 0);
	assert_int_equal(r.v[2].flags, STORE_FLAG_SEEN | STORE_FLAG_DELETED);
	e = snapshot(f, f->a, "INBOX", NULL);
	assert_int_equal(e->v[0].flags & STORE_FLAG_DELETED, 0);
	assert_int_equal(e->v[3].flags, STORE_FLAG_DELETED);
	/* UNCHANGEDSINCE 0 fails for every message. */
	memset(&op, 0, sizeof(op));
	op.conditional = true;
	assert_int_equal(flags(f, f->a, "INBOX", all, 4, STORE_FLAGS_REPLACE, 0, NULL, 0, &op, &r),
	                 0);
	assert_int_equal(op.modified, 4);
	assert_int_equal(op.changed, 0);
	assert_int_equal(op.modseq, 0);
	/* A UID that is not (or no longer) there gets no report and is not counted: IMAP's
	 * conditional STORE lists such a message in [MODIFIED] itself. */
	uint32_t with_gone[] = {2, 99};
	memset(&op, 0, sizeof(op));
	op.conditional = true;
	op.unchanged_since = UINT64_C(9223372036854775807);
	assert_int_equal(flags(f, f->a, "INBOX", with_gone, 2, STORE_FLAGS_ADD, STORE_FLAG_DRAFT,
	                       NULL, 0, &op, &r),
	                 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.v[0].uid, 2);
	assert_true(r.v[0].changed && !r.v[0].modified);
	assert_int_equal(op.changed, 1);
	assert_int_equal(op.modified, 0);
	assert_int_equal(r.v[0].modseq, op.modseq);

	/* Errors: nothing changes. */
	uint64_t before = stats(f, f->a, "INBOX").highestmodseq;
	memset(&op, 0, sizeof(op));
	const char *bad_kw[] = {"ok", "\\Seen"};
	assert_int_equal(flags(f, f->a, "INBOX", all, 4, STORE_FLAGS_ADD, 0, bad_kw, 2, &op, &r),
	                 -1);
	assert_string_equal(op.error, STORE_ERROR_BAD_KEYWORD);
	assert_int_equal(r.n, 0);
	assert_int_equal(flags(f, f->a, "Nope", all, 4, STORE_FLAGS_ADD, 1, NULL, 0, &op, &r), -1);
	assert_string_equal(op.error, STORE_ERROR_NO_MAILBOX);
	assert_int_equal(flags(f, f->a, "bad/", all, 4, STORE_FLAGS_ADD, 1, NULL, 0, &op, &r), -1);
	assert_string_equal(op.error, STORE_ERROR_NO_MAILBOX);
	assert_int_equal(flags(f, f->b, "INBOX", all, 4, STORE_FLAGS_ADD, 1, NULL, 0, &op, &r), 0);
	assert_int_equal(r.n, 0); /* b's INBOX is empty */
	assert_int_equal(
	    flags(f, f->a, "INBOX", all, 4, (enum store_flags_mode)7, 1, NULL, 0, &op, &r), -1);
	assert_string_equal(op.error, STORE_ERROR_INVALID);

	/* STORE_KEYWORDS_MAX keywords per mailbox: 3 used, 61 more fit, then no more. */
	char names[80][16];
	const char *many[80];
	for (int i = 0; i < 80; i++) {
		snprintf(names[i], sizeof(names[i]), "k%d", i);
		many[i] = names[i];
	}
	assert_int_equal(flags(f, f->a, "INBOX", all, 4, STORE_FLAGS_ADD, 0, many,
	                       STORE_KEYWORDS_MAX + 1, &op, &r),
	                 -1);
	assert_string_equal(op.error, STORE_ERROR_LIMIT);
	assert_int_equal(flags(f, f->a, "INBOX", &one, 1, STORE_FLAGS_ADD, 0, many, 62, &op, &r),
	                 -1);
	assert_string_equal(op.error, STORE_ERROR_LIMIT);
	assert_int_equal(stats(f, f->a, "INBOX").highestmodseq, before);
	assert_int_equal(flags(f, f->a, "INBOX", &one, 1, STORE_FLAGS_ADD, 0, many, 61, &op, &r),
	                 0);
	assert_int_equal(store_mailbox_keywords(f->store, f->a, "INBOX", &kw), 1);
	int words = 1;
	for (const char *p = kw; *p != '\0'; p++)
		words += *p == ' ';
	assert_int_equal(words, STORE_KEYWORDS_MAX);
	free(kw);
	assert_int_equal(
	    flags(f, f->a, "INBOX", &one, 1, STORE_FLAGS_ADD, 0, &many[61], 1, &op, &r), -1);
	assert_string_equal(op.error, STORE_ERROR_LIMIT);
	/* Known ones still work at the limit, in any case. */
	const char *known[] = {"K60", "$junk"};
	assert_int_equal(flags(f, f->a, "INBOX", &two, 1, STORE_FLAGS_ADD, 0, known, 2, &op, &r),
	                 0);
	assert_string_equal(r.v[0].keywords, "k60 $Junk");
	assert_int_equal(op.changed, 1);
}

/* ---- copy and move ---- */

static void test_copy(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *kw[] = {"$Label2"};
	uint32_t uid;
	deliver(f, f->a, "m1\r\n");
	assert_int_equal(append(f, f->a, "INBOX", "m2 ..\r\n", STORE_FLAG_FLAGGED, kw, 1,
	                        1500000000, &uid, NULL),
	                 0);
	deliver(f, f->a, "m3 ....\r\n");
	append_ok(f, f->a, "Archive", "already there\r\n");
	uint64_t before = used(f, f->a);
	int blobs = count_blobs(f);
	struct store_mailbox_stats arch = stats(f, f->a, "Archive");

	uint32_t uids[] = {3, 2, 7, 3};
	struct store_copy op = {.account_id = f->a,
	                        .mailbox = "inbox",
	                        .target = "Archive",
	                        .uids = uids,
	                        .uid_count = 4};
	assert_int_equal(store_copy_wait(f->store, &op), 0);
	assert_int_equal(op.count, 2);
	assert_int_equal(op.uidvalidity, arch.uidvalidity);
	/* COPYUID (RFC 4315): sources ascending, new UIDs ascending in the target. */
	assert_int_equal(op.source_uids[0], 2);
	assert_int_equal(op.source_uids[1], 3);
	assert_int_equal(op.target_uids[0], 2);
	assert_int_equal(op.target_uids[1], 3);
	free(op.source_uids);
	free(op.target_uids);
	expect_blobs(f, blobs);
	assert_int_equal(used(f, f->a), before + strlen("m2 ..\r\n") + strlen("m3 ....\r\n"));
	struct store_mailbox_status st;
	struct entries *e = snapshot(f, f->a, "Archive", &st);
	assert_int_equal(e->n, 3);
	assert_int_equal(st.uidnext, 4);
	assert_int_equal(e->v[1].flags, STORE_FLAG_FLAGGED);
	assert_string_equal(e->v[1].keywords, "$Label2");
	assert_int_equal(e->v[1].date, 1500000000);
	assert_int_equal(e->v[1].modseq, e->v[2].modseq);
	assert_int_equal(e->v[1].modseq, st.highestmodseq);
	char *kwl;
	assert_int_equal(store_mailbox_keywords(f->store, f->a, "Archive", &kwl), 1);
	assert_string_equal(kwl, "$Label2");
	free(kwl);
	assert_int_equal(snapshot(f, f->a, "INBOX", NULL)->n, 3);

	/* Nothing present: ok, nothing changes. */
	uint32_t absent = 42;
	op = (struct store_copy){.account_id = f->a,
	                         .mailbox = "INBOX",
	                         .target = "Archive",
	                         .uids = &absent,
	                         .uid_count = 1};
	assert_int_equal(store_copy_wait(f->store, &op), 0);
	assert_int_equal(op.count, 0);
	assert_null(op.source_uids);
	assert_int_equal(stats(f, f->a, "Archive").highestmodseq, st.highestmodseq);

	/* Errors. */
	op.target = "Nope";
	assert_int_equal(store_copy_wait(f->store, &op), -1);
	assert_string_equal(op.error, STORE_ERROR_NO_TARGET);
	op.target = "Nope/";
	assert_int_equal(store_copy_wait(f->store, &op), -1);
	assert_string_equal(op.error, STORE_ERROR_NO_TARGET);
	op.mailbox = "Nope";
	op.target = "Archive";
	assert_int_equal(store_copy_wait(f->store, &op), -1);
	assert_string_equal(op.error, STORE_ERROR_NO_MAILBOX);
	op.account_id = f->b;
	op.mailbox = "INBOX";
	assert_int_equal(store_copy_wait(f->store, &op), 0);
	assert_int_equal(op.count, 0);

	/* Quota: the whole copy is refused when it would go over. */
	const char *error;
	uint64_t u = used(f, f->a);
	assert_int_equal(store_account_set_quota(f->store, "a@example.org", u + 5, &error), 0);
	uint32_t both[] = {1, 3};
	op = (struct store_copy){.account_id = f->a,
	                         .mailbox = "INBOX",
	                         .target = "Trash",
	                         .uids = both,
	                         .uid_count = 2};
	assert_int_equal(store_copy_wait(f->store, &op), -1);
	assert_string_equal(op.error, STORE_ERROR_OVERQUOTA);
	assert_int_equal(op.count, 0);
	assert_null(op.source_uids);
	assert_int_equal(stats(f, f->a, "Trash").messages, 0);
	assert_int_equal(stats(f, f->a, "Trash").uidnext, 1);
	assert_int_equal(used(f, f->a), u);
	/* One fits exactly. */
	op.uid_count = 1;
	assert_int_equal(store_copy_wait(f->store, &op), 0);
	assert_int_equal(op.count, 1);
	assert_int_equal(op.target_uids[0], 1);
	free(op.source_uids);
	free(op.target_uids);
	assert_int_equal(used(f, f->a), u + 4);
	/* Copy into the same mailbox. */
	assert_int_equal(store_account_set_quota(f->store, "a@example.org", 0, &error), 0);
	op.target = "INBOX";
	assert_int_equal(store_copy_wait(f->store, &op), 0);
	assert_int_equal(op.target_uids[0], 4);
	free(op.source_uids);
	free(op.target_uids);
}

/* The message-count limit (RFC 9208 RES-MESSAGE): store_account_limits() reports it with the
 * count over all mailboxes; APPEND and COPY that would pass it are refused whole with
 * OVERQUOTA; a MOVE is not; the storage quota is unchanged by it. */
static void test_message_limit(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *error;
	struct store_account_limits l;
	assert_int_equal(store_account_limits(f->store, f->a, &l), 1);
	assert_int_equal(l.message_limit, 0);
	assert_int_equal(l.quota, 0);
	assert_int_equal(store_account_limits(f->store, 999999, &l), 0);
	assert_int_equal(store_account_set_message_limit(f->store, "a@example.org", 3, &error), 0);
	assert_int_equal(store_account_set_message_limit(f->store, "nobody@example.org", 3, &error),
	                 -1);
	deliver(f, f->a, "one\r\n");
	assert_int_equal(append(f, f->a, "Archive", "two\r\n", 0, NULL, 0, 0, NULL, NULL), 0);
	assert_int_equal(store_account_limits(f->store, f->a, &l), 1);
	assert_int_equal(l.message_limit, 3);
	assert_int_equal(l.messages, 2);
	assert_int_equal(l.used, 10);
	assert_false(store_account_limits_exceeded(&l, 100, 1));
	assert_true(store_account_limits_exceeded(&l, 100, 2));
	/* The account list shows it; the other account has none. */
	struct store_account_info info;
	assert_int_equal(store_account_lookup(f->store, "a@example.org", NULL, NULL, &info), 1);
	assert_int_equal(info.message_limit, 3);
	assert_int_equal(store_account_lookup(f->store, "b@example.org", NULL, NULL, &info), 1);
	assert_int_equal(info.message_limit, 0);
	/* A copy of both would make 4: refused whole. */
	uint32_t uids[] = {1};
	struct store_copy op = {.account_id = f->a,
	                        .mailbox = "INBOX",
	                        .target = "Trash",
	                        .uids = uids,
	                        .uid_count = 1};
	assert_int_equal(store_copy_wait(f->store, &op), 0); /* 3: fits */
	free(op.source_uids);
	free(op.target_uids);
	assert_int_equal(store_copy_wait(f->store, &op), -1);
	assert_string_equal(op.error, STORE_ERROR_OVERQUOTA);
	assert_int_equal(append(f, f->a, "INBOX", "three\r\n", 0, NULL, 0, 0, NULL, &error), -1);
	assert_string_equal(error, STORE_ERROR_OVERQUOTA);
	assert_int_equal(stats(f, f->a, "INBOX").messages, 1);
	/* A move keeps the count. */
	op.move = true;
	assert_int_equal(store_copy_wait(f->store, &op), 0);
	free(op.source_uids);
	free(op.target_uids);
	/* Unlimited again. */
	assert_int_equal(store_account_set_message_limit(f->store, "a@example.org", 0, &error), 0);
	assert_int_equal(append(f, f->a, "INBOX", "three\r\n", 0, NULL, 0, 0, NULL, NULL), 0);
	assert_int_equal(store_account_limits(f->store, f->a, &l), 1);
	assert_int_equal(l.messages, 0); /* not counted without a limit */
}

static void test_move(void **state)
{
	struct fixture *f = fixture_get(state);
	deliver(f, f->a, "move me\r\n");
	deliver(f, f->a, "and me\r\n");
	deliver(f, f->a, "stay\r\n");
	struct store_mailbox_stats in = stats(f, f->a, "INBOX");
	uint64_t u = used(f, f->a);
	int blobs = count_blobs(f);
	const char *error;
	/* A move needs no space: a full quota does not stop it. */
	assert_int_equal(store_account_set_quota(f->store, "a@example.org", u, &error), 0);

	uint32_t uids[] = {2, 1};
	struct store_copy op = {.account_id = f->a,
	                        .mailbox = "INBOX",
	                        .target = "Junk",
	                        .uids = uids,
	                        .uid_count = 2,
	                        .move = true};
	assert_int_equal(store_copy_wait(f->store, &op), 0);
	assert_int_equal(op.count, 2);
	assert_int_equal(op.source_uids[0], 1);
	assert_int_equal(op.target_uids[1], 2);
	free(op.source_uids);
	free(op.target_uids);
	assert_int_equal(used(f, f->a), u);
	expect_blobs(f, blobs);

	/* RFC 6851: the sources are expunged, with tombstones at one new MODSEQ. */
	struct store_mailbox_status st;
	struct entries *e = changes(f, f->a, "INBOX", in.highestmodseq, &st);
	assert_int_equal(e->n, 0);
	assert_int_equal(e->nx, 2);
	assert_int_equal(e->expunged[0], 1);
	assert_int_equal(e->expunged[1], 2);
	assert_int_equal(e->expunged_modseq[0], in.highestmodseq + 1);
	assert_int_equal(st.highestmodseq, in.highestmodseq + 1);
	assert_int_equal(st.messages, 0); /* changes do not count the entries */
	e = snapshot(f, f->a, "INBOX", &st);
	assert_int_equal(st.messages, 1);
	e = snapshot(f, f->a, "Junk", &st);
	assert_int_equal(e->n, 2);
	assert_int_equal(st.messages, 2);

	/* Move within one mailbox: new UIDs, old ones expunged. */
	uint32_t three = 3;
	op = (struct store_copy){.account_id = f->a,
	                         .mailbox = "INBOX",
	                         .target = "INBOX",
	                         .uids = &three,
	                         .uid_count = 1,
	                         .move = true};
	assert_int_equal(store_copy_wait(f->store, &op), 0);
	assert_int_equal(op.target_uids[0], 4);
	free(op.source_uids);
	free(op.target_uids);
	e = snapshot(f, f->a, "INBOX", NULL);
	assert_int_equal(e->n, 1);
	assert_int_equal(e->v[0].uid, 4);
	assert_int_equal(used(f, f->a), u);
	/* Expunging the moved copies frees space and files. */
	uint32_t junk[] = {1, 2};
	struct store_expunge x = {
	    .account_id = f->a, .mailbox = "Junk", .uids = junk, .uid_count = 2};
	assert_int_equal(store_expunge_wait(f->store, &x), 0);
	expect_blobs(f, blobs - 2);
	assert_int_equal(used(f, f->a), strlen("stay\r\n"));
}

/* ---- append ---- */

static void test_append(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *kw[] = {"$MDNSent", "Private", "private"};
	const char *error = NULL;
	uint32_t uid;
	assert_int_equal(append(f, f->a, "Sent", "sent mail\r\n",
	                        STORE_FLAG_SEEN | STORE_FLAG_DRAFT, kw, 3, 1234567890, &uid,
	                        &error),
	                 0);
	assert_int_equal(uid, 1);
	struct store_mailbox_status st;
	struct entries *e = snapshot(f, f->a, "Sent", &st);
	assert_int_equal(e->n, 1);
	assert_int_equal(e->v[0].flags, STORE_FLAG_SEEN | STORE_FLAG_DRAFT);
	assert_string_equal(e->v[0].keywords, "$MDNSent Private");
	assert_int_equal(e->v[0].date, 1234567890);
	assert_int_equal(e->v[0].size, strlen("sent mail\r\n"));
	assert_int_equal(e->v[0].modseq, st.highestmodseq);
	int fd;
	uint64_t size;
	char buf[64];
	assert_int_equal(store_message_open(f->store, f->a, "Sent", 1, &fd, &size), 1);
	assert_int_equal(read(fd, buf, sizeof(buf)), (ssize_t)size);
	close(fd);
	assert_memory_equal(buf, "sent mail\r\n", size);
	assert_int_equal(used(f, f->a), size);
	/* A date of 0 is now. */
	time_t now = time(NULL);
	assert_int_equal(append(f, f->a, "Sent", "later\r\n", 0, NULL, 0, 0, &uid, NULL), 0);
	assert_int_equal(uid, 2);
	e = snapshot(f, f->a, "Sent", NULL);
	assert_true(e->v[1].date >= now && e->v[1].date <= now + 5);

	/* MULTIAPPEND (RFC 3502): consecutive UIDs, one MODSEQ, all or nothing. */
	const char *bodies[3] = {"ma 1\r\n", "ma 2\r\n", "sent mail\r\n"};
	char *paths[3];
	struct store_append_message msgs[3];
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < 3; i++) {
		paths[i] = spool(f->store, bodies[i]);
		msgs[i].spool_path = paths[i];
		msgs[i].flags = (unsigned)i;
	}
	struct store_append op = {
	    .account_id = f->a, .mailbox = "Drafts", .messages = msgs, .count = 3};
	int blobs = count_blobs(f);
	assert_int_equal(store_append_wait(f->store, &op), 0);
	assert_int_equal(msgs[0].uid, 1);
	assert_int_equal(msgs[2].uid, 3);
	expect_blobs(f, blobs + 2); /* the third is stored once */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(access(paths[i], F_OK), -1);
		free(paths[i]);
	}
	e = snapshot(f, f->a, "Drafts", &st);
	assert_int_equal(e->n, 3);
	assert_int_equal(e->v[0].modseq, e->v[2].modseq);
	assert_int_equal(st.uidvalidity, op.uidvalidity);
	assert_int_equal(st.highestmodseq, op.modseq);

	/* Quota: refused whole, spool consumed, no file left, nothing counted. */
	uint64_t u = used(f, f->a);
	assert_int_equal(store_account_set_quota(f->store, "a@example.org", u + 10, &error), 0);
	blobs = count_blobs(f);
	for (int i = 0; i < 3; i++) {
		paths[i] = spool(f->store, i == 0 ? "fits\r\n" : "does not fit\r\n");
		msgs[i] = (struct store_append_message){.spool_path = paths[i]};
	}
	op = (struct store_append){
	    .account_id = f->a, .mailbox = "Drafts", .messages = msgs, .count = 2};
	assert_int_equal(store_append_wait(f->store, &op), -1);
	assert_string_equal(op.error, STORE_ERROR_OVERQUOTA);
	assert_int_equal(msgs[0].uid, 0);
	expect_blobs(f, blobs);
	assert_int_equal(used(f, f->a), u);
	assert_int_equal(stats(f, f->a, "Drafts").uidnext, 4);
	op.messages = &msgs[2];
	op.count = 1;
	assert_int_equal(store_append_wait(f->store, &op), -1);
	assert_string_equal(op.error, STORE_ERROR_OVERQUOTA);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(access(paths[i], F_OK), -1);
		free(paths[i]);
	}
	assert_int_equal(append(f, f->a, "Drafts", "fits\r\n", 0, NULL, 0, 0, &uid, NULL), 0);
	assert_int_equal(uid, 4);
	assert_int_equal(used(f, f->a), u + 6);
	assert_int_equal(store_account_set_quota(f->store, "a@example.org", 0, &error), 0);

	/* Errors: the spool file is consumed either way. */
	blobs = count_blobs(f);
	assert_int_equal(append(f, f->a, "Nope", "x1\r\n", 0, NULL, 0, 0, NULL, &error), -1);
	assert_string_equal(error, STORE_ERROR_NO_MAILBOX);
	assert_int_equal(append(f, f->a, "Nope/", "x2\r\n", 0, NULL, 0, 0, NULL, &error), -1);
	assert_string_equal(error, STORE_ERROR_NO_MAILBOX);
	assert_int_equal(append(f, 999999, "INBOX", "x3\r\n", 0, NULL, 0, 0, NULL, &error), -1);
	assert_string_equal(error, STORE_ERROR_NO_MAILBOX);
	const char *bad[] = {"fine", "not fine"};
	assert_int_equal(append(f, f->a, "INBOX", "x4\r\n", 0, bad, 2, 0, NULL, &error), -1);
	assert_string_equal(error, STORE_ERROR_BAD_KEYWORD);
	expect_blobs(f, blobs);
	op = (struct store_append){.account_id = f->a, .mailbox = "INBOX", .count = 0};
	assert_int_equal(store_append_wait(f->store, &op), -1);
	assert_string_equal(op.error, STORE_ERROR_INVALID);
	struct store_append_message nopath = {.spool_path = NULL};
	op = (struct store_append){
	    .account_id = f->a, .mailbox = "INBOX", .messages = &nopath, .count = 1};
	assert_int_equal(store_append_wait(f->store, &op), -1);
	assert_string_equal(op.error, STORE_ERROR_INVALID);
	/* Keyword limit. */
	char names[70][16];
	const char *many[70];
	for (int i = 0; i < 70; i++) {
		snprintf(names[i], sizeof(names[i]), "w%d", i);
		many[i] = names[i];
	}
	assert_int_equal(append(f, f->a, "INBOX", "k\r\n", 0, many, 64, 0, NULL, &error), 0);
	assert_int_equal(append(f, f->a, "INBOX", "k2\r\n", 0, &many[64], 1, 0, NULL, &error), -1);
	assert_string_equal(error, STORE_ERROR_LIMIT);
	assert_int_equal(append(f, f->a, "INBOX", "k3\r\n", 0, many, 65, 0, NULL, &error), -1);
	assert_string_equal(error, STORE_ERROR_LIMIT);
	expect_blobs(f, blobs + 1);
}

/* ---- changes since a MODSEQ ---- */

static void test_changes(void **state)
{
	struct fixture *f = fixture_get(state);
	for (int i = 0; i < 5; i++)
		deliver(f, f->a,
		        i == 0   ? "c0\r\n"
		        : i == 1 ? "c1\r\n"
		        : i == 2 ? "c2\r\n"
		        : i == 3 ? "c3\r\n"
		                 : "c4\r\n");
	struct store_mailbox_status st;
	struct entries *e = changes(f, f->a, "INBOX", 0, &st);
	assert_int_equal(e->n, 5);
	assert_int_equal(e->nx, 0);
	uint64_t m = st.highestmodseq;
	e = changes(f, f->a, "INBOX", m, &st);
	assert_int_equal(e->n, 0);
	assert_int_equal(e->nx, 0);

	struct store_flags op = {.conditional = false};
	struct report r;
	uint32_t two = 2, four = 4;
	assert_int_equal(
	    flags(f, f->a, "INBOX", &four, 1, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, &op, &r),
	    0);
	uint32_t gone[] = {1, 3};
	struct store_expunge x = {
	    .account_id = f->a, .mailbox = "INBOX", .uids = gone, .uid_count = 2};
	assert_int_equal(store_expunge_wait(f->store, &x), 0);
	assert_int_equal(
	    flags(f, f->a, "INBOX", &two, 1, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, &op, &r),
	    0);
	deliver(f, f->a, "c5\r\n");

	e = changes(f, f->a, "INBOX", m, &st);
	assert_int_equal(st.highestmodseq, m + 4);
	assert_int_equal(st.messages, 0); /* changes do not count the entries */
	assert_int_equal(e->n, 3);        /* 2, 4, 6 */
	assert_int_equal(e->v[0].uid, 2);
	assert_int_equal(e->v[0].modseq, m + 3);
	assert_int_equal(e->v[0].flags, STORE_FLAG_SEEN);
	assert_int_equal(e->v[1].uid, 4);
	assert_int_equal(e->v[1].modseq, m + 1);
	assert_int_equal(e->v[2].uid, 6);
	assert_int_equal(e->nx, 2);
	assert_int_equal(e->expunged[0], 1);
	assert_int_equal(e->expunged[1], 3);
	assert_int_equal(e->expunged_modseq[1], m + 2);
	e = changes(f, f->a, "INBOX", m + 2, NULL);
	assert_int_equal(e->n, 2);
	assert_int_equal(e->nx, 0);
	e = changes(f, f->a, "INBOX", m + 1, NULL);
	assert_int_equal(e->n, 2);
	assert_int_equal(e->nx, 2);
	e = changes(f, f->a, "INBOX", UINT64_MAX, NULL);
	assert_int_equal(e->n + e->nx, 0);
	/* Only one of the callbacks, or none. */
	struct entries only = {.n = 0};
	assert_int_equal(
	    store_mailbox_changes(f->store, f->a, "INBOX", m, NULL, collect_expunged, &only, NULL),
	    1);
	assert_int_equal(only.nx, 2);
	assert_int_equal(only.n, 0);
	assert_int_equal(store_mailbox_changes(f->store, f->a, "INBOX", 0, NULL, NULL, NULL, &st),
	                 1);
	assert_int_equal(st.highestmodseq, m + 4);
	assert_int_equal(store_mailbox_changes(f->store, f->a, "Nope", 0, NULL, NULL, NULL, &st),
	                 0);
	assert_int_equal(
	    store_mailbox_changes(f->store, f->b + 100, "INBOX", 0, NULL, NULL, NULL, &st), 0);
}

/* ---- watches ---- */

struct watched {
	pthread_mutex_t lock;
	int calls;
	uint64_t last;
	uint64_t values[4096];
	bool decreasing;           /* a value not above the previous one (0 excepted) */
	struct store_watch **self; /* unwatch from the callback when set */
	int hints;                 /* calls without a commit (below), not in calls */
};

static void watched_init(struct watched *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
}

static void watched_cb(void *ctx, uint64_t highestmodseq)
{
	struct watched *w = ctx;
	pthread_mutex_lock(&w->lock);
	if (highestmodseq == UINT64_MAX) {
		/* On PostgreSQL the notifier thread tells every watch to look (after it
		 * connects, and every 30 s) with UINT64_MAX: no commit of ours, not counted. */
		w->hints++;
		pthread_mutex_unlock(&w->lock);
		return;
	}
	if (highestmodseq != 0 && highestmodseq <= w->last)
		w->decreasing = true;
	if (w->calls < 4096)
		w->values[w->calls] = highestmodseq;
	w->calls++;
	if (highestmodseq != 0)
		w->last = highestmodseq;
	pthread_mutex_unlock(&w->lock);
	if (w->self != NULL)
		store_unwatch(w->self);
}

static int watched_calls(struct watched *w)
{
	pthread_mutex_lock(&w->lock);
	int n = w->calls;
	pthread_mutex_unlock(&w->lock);
	return n;
}

/* Every call, hints included. */
static int watched_all_calls(struct watched *w)
{
	pthread_mutex_lock(&w->lock);
	int n = w->calls + w->hints;
	pthread_mutex_unlock(&w->lock);
	return n;
}

static void counter_delivered(struct store_delivery *d, void *ctx)
{
	counter_done(ctx, d->result, d->error);
}

static void counter_flags(struct store_flags *op, void *ctx)
{
	counter_done(ctx, op->result, op->error);
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

/* What an account watch (store_watch_account()) was told, one line per record:
 * "KIND name[<old] hms" with KIND M(ailbox), C(reate), S(ubscription), R(ename). */
struct account_watched {
	pthread_mutex_t lock;
	char text[8192];
};

static void account_watched_cb(void *ctx, const struct store_change_info *c)
{
	struct account_watched *w = ctx;
	static const char kinds[] = {
	    [STORE_CHANGE_MAILBOX] = 'M',      [STORE_CHANGE_CREATE] = 'C',
	    [STORE_CHANGE_SUBSCRIPTION] = 'S', [STORE_CHANGE_RENAME] = 'R',
	    [STORE_CHANGE_METADATA] = 'D',
	};
	pthread_mutex_lock(&w->lock);
	size_t len = strlen(w->text);
	snprintf(w->text + len, sizeof(w->text) - len, "%c %s%s%s %s\n", kinds[c->kind], c->mailbox,
	         c->old_name != NULL ? "<" : "", c->old_name != NULL ? c->old_name : "",
	         c->highestmodseq == 0 ? "0" : "n");
	pthread_mutex_unlock(&w->lock);
}

/* The records so far, then forget them. */
static void account_watched_expect(struct account_watched *w, const char *want)
{
	pthread_mutex_lock(&w->lock);
	assert_string_equal(w->text, want);
	w->text[0] = '\0';
	pthread_mutex_unlock(&w->lock);
}

static void test_watch_account(void **state)
{
	struct fixture *f = fixture_get(state);
	struct account_watched aw = {.text = ""};
	pthread_mutex_init(&aw.lock, NULL);
	struct watched mailbox;
	watched_init(&mailbox);
	struct store_watch *w = store_watch_account(f->store, f->a, account_watched_cb, &aw);
	struct store_watch *w_box = store_watch(f->store, f->a, "n2", watched_cb, &mailbox);
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "n1/c", NULL);
	account_watched_expect(&aw, "C n1 0\nM n1 n\nC n1/c 0\nM n1/c n\n");
	deliver(f, f->a, "to INBOX\r\n");
	deliver(f, f->b, "to b\r\n"); /* another account: nothing */
	account_watched_expect(&aw, "M INBOX n\n");
	mbox_ok(f, STORE_MAILBOX_RENAME, f->a, "n1", "n2");
	account_watched_expect(&aw,
	                       "R n2<n1 0\nM n1 0\nM n2 n\nR n2/c<n1/c 0\nM n1/c 0\nM n2/c n\n");
	mbox_ok(f, STORE_MAILBOX_SUBSCRIBE, f->a, "n2", NULL);
	mbox_ok(f, STORE_MAILBOX_SUBSCRIBE, f->a, "n2", NULL); /* no change: no record */
	mbox_ok(f, STORE_MAILBOX_UNSUBSCRIBE, f->a, "n2", NULL);
	mbox_ok(f, STORE_MAILBOX_UNSUBSCRIBE, f->a, "n2", NULL);
	account_watched_expect(&aw, "S n2 0\nS n2 0\n");
	/* The mailbox watch heard the rename only, not the subscriptions. */
	assert_int_equal(watched_calls(&mailbox), 1);
	/* Metadata: one record per entry, mailbox "" for server entries; none when refused. */
	const char *error;
	const char *set[] = {"/private/comment=x", "/shared/y"};
	assert_int_equal(meta_set(f, f->a, "n2", 0, &error, set, 2), 0);
	const char *server[] = {"/shared/admin=z"};
	assert_int_equal(meta_set(f, f->a, "", 0, &error, server, 1), 0);
	const char *many[] = {"/private/a=1", "/private/b=2", "/private/c=3"};
	assert_int_equal(meta_set(f, f->a, "n2", 2, &error, many, 3), -1);
	account_watched_expect(&aw,
	                       "D n2</private/comment 0\nD n2</shared/y 0\nD </shared/admin 0\n");
	assert_int_equal(watched_calls(&mailbox), 1);
	mbox_ok(f, STORE_MAILBOX_DELETE, f->a, "n2/c", NULL);
	account_watched_expect(&aw, "M n2/c 0\n");
	store_unwatch(&w);
	assert_null(w);
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "after", NULL);
	account_watched_expect(&aw, "");
	store_unwatch(&w_box);
	pthread_mutex_destroy(&aw.lock);
	pthread_mutex_destroy(&mailbox.lock);
}

/* Another node's commits reach an account watch through PostgreSQL's notifications, the
 * new kinds too (create, rename with its old name, subscription): a second store on the
 * same database is the other node. */
static void test_watch_account_other_node(void **state)
{
	struct fixture *f = fixture_get(state);
	struct account_watched aw = {.text = ""};
	pthread_mutex_init(&aw.lock, NULL);
	struct store_watch *w = store_watch_account(f->store, f->a, account_watched_cb, &aw);
	struct fixture other = *f;
	snprintf(other.dir, sizeof(other.dir), "/tmp/test_store_imap.XXXXXX");
	assert_non_null(mkdtemp(other.dir));
	open_store(&other);
	mbox_ok(&other, STORE_MAILBOX_CREATE, f->a, "x1", NULL);
	mbox_ok(&other, STORE_MAILBOX_RENAME, f->a, "x1", "x2");
	mbox_ok(&other, STORE_MAILBOX_SUBSCRIBE, f->a, "x2", NULL);
	const char *error;
	const char *entries[] = {"/private/c=1"};
	assert_int_equal(meta_set(&other, f->a, "", 0, &error, entries, 1), 0);
	const char *want = "C x1 0\nM x1 n\nR x2<x1 0\nM x1 0\nM x2 n\nS x2 0\nD </private/c 0\n";
	for (int i = 0; i < 1000; i++) { /* up to 10 s */
		pthread_mutex_lock(&aw.lock);
		bool done = strlen(aw.text) >= strlen(want);
		pthread_mutex_unlock(&aw.lock);
		if (done)
			break;
		usleep(10000);
	}
	account_watched_expect(&aw, want);
	store_unwatch(&w);
	store_close(&other.store);
	engine_rm_tree(other.dir);
	pthread_mutex_destroy(&aw.lock);
}

static void test_watch(void **state)
{
	struct fixture *f = fixture_get(state);
	struct watched inbox, sent, other, gone, self;
	watched_init(&inbox);
	watched_init(&sent);
	watched_init(&other);
	watched_init(&gone);
	watched_init(&self);
	struct store_watch *w_inbox = store_watch(f->store, f->a, "inbox", watched_cb, &inbox);
	struct store_watch *w_sent = store_watch(f->store, f->a, "Sent", watched_cb, &sent);
	struct store_watch *w_other = store_watch(f->store, f->b, "INBOX", watched_cb, &other);
	struct store_watch *w_gone = store_watch(f->store, f->a, "later/x", watched_cb, &gone);

	deliver(f, f->a, "w1\r\n");
	assert_int_equal(watched_calls(&inbox), 1);
	assert_int_equal(inbox.values[0], stats(f, f->a, "INBOX").highestmodseq);
	assert_int_equal(watched_calls(&sent), 0);
	assert_int_equal(watched_calls(&other), 0);

	/* Flags, append, copy into Sent, expunge: one call per commit per mailbox. */
	struct store_flags op = {.conditional = false};
	struct report r;
	uint32_t one = 1;
	assert_int_equal(
	    flags(f, f->a, "INBOX", &one, 1, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, &op, &r),
	    0);
	assert_int_equal(watched_calls(&inbox), 2);
	assert_int_equal(inbox.values[1], op.modseq);
	/* No change, no call. */
	assert_int_equal(
	    flags(f, f->a, "INBOX", &one, 1, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, &op, &r),
	    0);
	assert_int_equal(watched_calls(&inbox), 2);
	append_ok(f, f->a, "Sent", "w2\r\n");
	assert_int_equal(watched_calls(&sent), 1);
	struct store_copy cp = {.account_id = f->a,
	                        .mailbox = "INBOX",
	                        .target = "Sent",
	                        .uids = &one,
	                        .uid_count = 1,
	                        .move = true};
	assert_int_equal(store_copy_wait(f->store, &cp), 0);
	free(cp.source_uids);
	free(cp.target_uids);
	assert_int_equal(watched_calls(&inbox), 3);
	assert_int_equal(watched_calls(&sent), 2);
	assert_int_equal(sent.values[1], stats(f, f->a, "Sent").highestmodseq);
	uint32_t sent_uids[] = {1, 2};
	struct store_expunge x = {
	    .account_id = f->a, .mailbox = "Sent", .uids = sent_uids, .uid_count = 2};
	assert_int_equal(store_expunge_wait(f->store, &x), 0);
	assert_int_equal(watched_calls(&sent), 3);
	assert_int_equal(watched_calls(&inbox), 3);

	/* Mailbox operations: created, renamed away (0), renamed back. */
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "later/x", NULL);
	assert_int_equal(watched_calls(&gone), 1);
	assert_int_equal(gone.values[0], 1);
	mbox_ok(f, STORE_MAILBOX_RENAME, f->a, "later", "sooner");
	assert_int_equal(watched_calls(&gone), 2);
	assert_int_equal(gone.values[1], 0);
	mbox_ok(f, STORE_MAILBOX_RENAME, f->a, "sooner/x", "later/x");
	assert_int_equal(watched_calls(&gone), 3);
	assert_int_equal(gone.values[2], 1);
	mbox_ok(f, STORE_MAILBOX_DELETE, f->a, "later/x", NULL);
	assert_int_equal(watched_calls(&gone), 4);
	assert_int_equal(gone.values[3], 0);
	/* Subscriptions change no mailbox. */
	mbox_ok(f, STORE_MAILBOX_SUBSCRIBE, f->a, "later/x", NULL);
	assert_int_equal(watched_calls(&gone), 4);
	assert_int_equal(watched_calls(&other), 0);
	assert_false(inbox.decreasing || sent.decreasing);
	if (!on_pg(f)) /* one node: nothing but commits calls a watch */
		assert_int_equal(inbox.hints + sent.hints + other.hints + gone.hints, 0);

	/* One group commit with several deliveries and a flag change: one call. */
	struct counter c;
	counter_init(&c);
	char *paths[4];
	struct store_delivery d[4];
	uint64_t ab[2] = {f->a, f->b};
	pthread_mutex_lock(&f->store->blob_lock);
	paths[0] = spool(f->store, "first of the batch\r\n");
	d[0] = (struct store_delivery){.spool_path = paths[0], .accounts = ab, .account_count = 1};
	store_deliver(f->store, &d[0], counter_delivered, &c);
	writer_took_all(f->store); /* d[0] alone; the writer waits for blob_lock */
	for (int i = 1; i < 4; i++) {
		char body[32];
		snprintf(body, sizeof(body), "batched %d\r\n", i);
		paths[i] = spool(f->store, body);
		d[i] = (struct store_delivery){
		    .spool_path = paths[i], .accounts = ab, .account_count = 2};
		store_deliver(f->store, &d[i], counter_delivered, &c);
	}
	uint32_t two = 2;
	struct store_flags fl = {.account_id = f->a,
	                         .mailbox = "INBOX",
	                         .uids = &two,
	                         .uid_count = 1,
	                         .mode = STORE_FLAGS_ADD,
	                         .flags = STORE_FLAG_FLAGGED};
	store_flags(f->store, &fl, counter_flags, &c);
	pthread_mutex_unlock(&f->store->blob_lock);
	counter_wait(&c, 5);
	assert_int_equal(c.failed, 0);
	assert_int_equal(watched_calls(&inbox), 5); /* d[0]'s commit, then the batch's */
	assert_int_equal(watched_calls(&other), 1);
	assert_int_equal(inbox.values[4], stats(f, f->a, "INBOX").highestmodseq);
	assert_int_equal(other.values[0], stats(f, f->b, "INBOX").highestmodseq);
	for (int i = 0; i < 4; i++)
		free(paths[i]);

	/* Never after unwatch; NULL is fine. */
	store_unwatch(&w_inbox);
	assert_null(w_inbox);
	store_unwatch(&w_inbox);
	deliver(f, f->a, "after\r\n");
	assert_int_equal(watched_calls(&inbox), 5);

	/* Unwatch from inside the callback (its own watch). */
	struct store_watch *w_self = store_watch(f->store, f->a, "INBOX", watched_cb, &self);
	self.self = &w_self;
	deliver(f, f->a, "self 1\r\n");
	deliver(f, f->a, "self 2\r\n");
	assert_int_equal(watched_calls(&self), 1);
	assert_null(w_self);

	/* Two watches on one mailbox both fire. */
	struct watched twin1, twin2;
	watched_init(&twin1);
	watched_init(&twin2);
	struct store_watch *t1 = store_watch(f->store, f->b, "INBOX", watched_cb, &twin1);
	struct store_watch *t2 = store_watch(f->store, f->b, "INBOX", watched_cb, &twin2);
	deliver(f, f->b, "twins\r\n");
	assert_int_equal(watched_calls(&twin1), 1);
	assert_int_equal(watched_calls(&twin2), 1);
	store_unwatch(&t1);
	store_unwatch(&t2);

	store_unwatch(&w_sent);
	store_unwatch(&w_other);
	store_unwatch(&w_gone);
	pthread_cond_destroy(&c.cond);
	pthread_mutex_destroy(&c.lock);
}

/* ---- concurrency ---- */

#define CONC_APPENDERS 3
#define CONC_APPENDS 40
#define CONC_FLAGGERS 2
#define CONC_FLAGS 40
#define CONC_WATCHERS 2

struct conc {
	struct fixture *f;
	int index;
	uint32_t uids[CONC_APPENDS];
	uint64_t modseqs[CONC_APPENDS + CONC_FLAGS];
	int n_modseqs;
	bool failed;
	atomic_bool *stop;
};

static void *conc_appender(void *arg)
{
	struct conc *c = arg;
	for (int i = 0; i < CONC_APPENDS; i++) {
		char body[64];
		snprintf(body, sizeof(body), "from %d, number %d\r\n", c->index, i);
		char *path = spool(c->f->store, body);
		struct store_append_message m = {.spool_path = path};
		struct store_append op = {
		    .account_id = c->f->a, .mailbox = "INBOX", .messages = &m, .count = 1};
		if (store_append_wait(c->f->store, &op) < 0)
			c->failed = true;
		c->uids[i] = m.uid;
		c->modseqs[c->n_modseqs++] = op.modseq;
		free(path);
	}
	return NULL;
}

static void *conc_flagger(void *arg)
{
	struct conc *c = arg;
	for (int i = 0; i < CONC_FLAGS; i++) {
		uint32_t uids[8];
		for (int k = 0; k < 8; k++)
			uids[k] = (uint32_t)(1 + (i * 7 + k * 13 + c->index) % 100);
		const char *kw[] = {i % 2 ? "$odd" : "$even"};
		struct store_flags op = {.account_id = c->f->a,
		                         .mailbox = "INBOX",
		                         .uids = uids,
		                         .uid_count = 8,
		                         .mode = i % 3 == 0 ? STORE_FLAGS_REPLACE : STORE_FLAGS_ADD,
		                         .flags = (unsigned)(i % 32),
		                         .keywords = kw,
		                         .keyword_count = 1};
		if (store_flags_wait(c->f->store, &op) < 0)
			c->failed = true;
		if (op.modseq != 0)
			c->modseqs[c->n_modseqs++] = op.modseq;
	}
	return NULL;
}

/* Watches come and go while the others write; every value it sees rises. */
static void *conc_watcher(void *arg)
{
	struct conc *c = arg;
	while (!atomic_load(c->stop)) {
		struct watched w;
		watched_init(&w);
		struct store_watch *h = store_watch(c->f->store, c->f->a, "INBOX", watched_cb, &w);
		usleep(2000);
		store_unwatch(&h);
		int calls = watched_all_calls(&w);
		usleep(1000);
		/* Nothing after store_unwatch() returned. */
		if (watched_all_calls(&w) != calls || w.decreasing)
			c->failed = true;
		pthread_mutex_destroy(&w.lock);
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void test_concurrency(void **state)
{
	struct fixture *f = fixture_get(state);
	struct conc app[CONC_APPENDERS], flg[CONC_FLAGGERS], wat[CONC_WATCHERS];
	pthread_t threads[CONC_APPENDERS + CONC_FLAGGERS + CONC_WATCHERS];
	atomic_bool stop = false;
	struct watched all;
	watched_init(&all);
	struct store_watch *w = store_watch(f->store, f->a, "INBOX", watched_cb, &all);
	int t = 0;
	for (int i = 0; i < CONC_APPENDERS; i++) {
		app[i] = (struct conc){.f = f, .index = i, .stop = &stop};
		assert_int_equal(pthread_create(&threads[t++], NULL, conc_appender, &app[i]), 0);
	}
	for (int i = 0; i < CONC_FLAGGERS; i++) {
		flg[i] = (struct conc){.f = f, .index = i, .stop = &stop};
		assert_int_equal(pthread_create(&threads[t++], NULL, conc_flagger, &flg[i]), 0);
	}
	for (int i = 0; i < CONC_WATCHERS; i++) {
		wat[i] = (struct conc){.f = f, .index = i, .stop = &stop};
		assert_int_equal(pthread_create(&threads[t++], NULL, conc_watcher, &wat[i]), 0);
	}
	for (int i = 0; i < CONC_APPENDERS + CONC_FLAGGERS; i++)
		pthread_join(threads[i], NULL);
	atomic_store(&stop, true);
	for (int i = CONC_APPENDERS + CONC_FLAGGERS; i < t; i++)
		pthread_join(threads[i], NULL);

	/* Each appender's UIDs rise; all UIDs are distinct and dense. */
	bool seen[CONC_APPENDERS * CONC_APPENDS + 1] = {false};
	for (int i = 0; i < CONC_APPENDERS; i++) {
		assert_false(app[i].failed);
		for (int k = 0; k < CONC_APPENDS; k++) {
			uint32_t uid = app[i].uids[k];
			assert_true(uid >= 1 && uid <= CONC_APPENDERS * CONC_APPENDS);
			assert_false(seen[uid]);
			seen[uid] = true;
			assert_true(k == 0 || uid > app[i].uids[k - 1]);
		}
	}
	/* Every operation that changed the mailbox got its own MODSEQ; each thread's rise. */
	uint64_t mods[CONC_APPENDERS * CONC_APPENDS + CONC_FLAGGERS * CONC_FLAGS];
	int nm = 0;
	struct conc *writers[CONC_APPENDERS + CONC_FLAGGERS];
	for (int i = 0; i < CONC_APPENDERS; i++)
		writers[i] = &app[i];
	for (int i = 0; i < CONC_FLAGGERS; i++)
		writers[CONC_APPENDERS + i] = &flg[i];
	for (int i = 0; i < CONC_APPENDERS + CONC_FLAGGERS; i++) {
		assert_false(writers[i]->failed);
		for (int k = 0; k < writers[i]->n_modseqs; k++) {
			assert_true(k == 0 || writers[i]->modseqs[k] > writers[i]->modseqs[k - 1]);
			mods[nm++] = writers[i]->modseqs[k];
		}
	}
	qsort(mods, (size_t)nm, sizeof(mods[0]), cmp_u64);
	for (int i = 1; i < nm; i++)
		assert_true(mods[i] > mods[i - 1]);
	for (int i = 0; i < CONC_WATCHERS; i++)
		assert_false(wat[i].failed);
	/* The long-lived watch saw rising values, the last being the mailbox's. */
	store_unwatch(&w);
	assert_false(all.decreasing);
	assert_true(all.calls >= 1);
	struct store_mailbox_status st;
	struct entries *e = changes(f, f->a, "INBOX", 0, &st);
	assert_int_equal(all.last, st.highestmodseq);
	assert_int_equal(e->n, CONC_APPENDERS * CONC_APPENDS);
	assert_int_equal(st.highestmodseq, 1 + (uint64_t)nm);
	for (int i = 0; i < e->n; i++)
		assert_true(e->v[i].modseq <= st.highestmodseq);
	pthread_mutex_destroy(&all.lock);
}

/* ---- summaries ---- */

struct summarizer {
	pthread_mutex_t lock;
	int calls;
	bool fail;
};

static int summarize(void *ctx, const char *path, char **envelope_r, char **body_r,
                     char **bodystructure_r, char **preview_r)
{
	struct summarizer *s = ctx;
	char buf[128];
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	pthread_mutex_lock(&s->lock);
	s->calls++;
	bool fail = s->fail;
	pthread_mutex_unlock(&s->lock);
	if (fail) {
		*envelope_r = xstrdup("partial");
		return -1;
	}
	char text[192];
	snprintf(text, sizeof(text), "(ENVELOPE of %s)", buf);
	*envelope_r = xstrdup(text);
	*body_r = NULL;
	*bodystructure_r = xstrdup("(\"TEXT\" \"PLAIN\")");
	snprintf(text, sizeof(text), "preview of %s", buf);
	*preview_r = xstrdup(text);
	return 0;
}

static void test_summary(void **state)
{
	struct fixture *f = fixture_get(state);
	char *env = NULL, *body = NULL, *bs = NULL;
	/* Without a summarizer the columns stay NULL: compute on demand. */
	deliver(f, f->a, "before\r\n");
	assert_int_equal(store_message_summary(f->store, f->a, "INBOX", 1, &env, &body, &bs), 1);
	assert_null(env);
	assert_null(body);
	assert_null(bs);

	struct summarizer s = {.calls = 0};
	pthread_mutex_init(&s.lock, NULL);
	store_set_summarizer(f->store, summarize, &s);
	deliver(f, f->a, "delivered\r\n");
	append_ok(f, f->a, "Sent", "appended\r\n");
	assert_int_equal(s.calls, 2);
	assert_int_equal(store_message_summary(f->store, f->a, "inbox", 2, &env, &body, &bs), 1);
	assert_string_equal(env, "(ENVELOPE of delivered)");
	assert_null(body);
	assert_string_equal(bs, "(\"TEXT\" \"PLAIN\")");
	free(env);
	free(bs);
	assert_int_equal(store_message_summary(f->store, f->a, "Sent", 1, &env, NULL, NULL), 1);
	assert_string_equal(env, "(ENVELOPE of appended)");
	free(env);
	/* The PREVIEW text (RFC 8970) is kept too; a message from before has none. */
	struct store_message_objects obj;
	assert_int_equal(store_message_objects(f->store, f->a, "Sent", 1, &obj), 1);
	assert_string_equal(obj.preview, "preview of appended");
	free(obj.preview);
	assert_int_equal(store_message_objects(f->store, f->a, "INBOX", 1, &obj), 1);
	assert_null(obj.preview);
	/* A message stored already is not summarized again; a copy shares the texts. */
	append_ok(f, f->a, "Drafts", "delivered\r\n");
	assert_int_equal(s.calls, 2);
	assert_int_equal(store_message_summary(f->store, f->a, "Drafts", 1, &env, NULL, NULL), 1);
	assert_string_equal(env, "(ENVELOPE of delivered)");
	free(env);
	/* One stored before the summarizer gets its texts when it is stored again. */
	deliver(f, f->a, "before\r\n");
	assert_int_equal(s.calls, 2); /* its row existed: not summarized (on demand instead) */
	/* A failing summarizer leaves NULL (its partial results freed). */
	s.fail = true;
	deliver(f, f->a, "fails\r\n");
	assert_int_equal(s.calls, 3);
	assert_int_equal(store_message_summary(f->store, f->a, "INBOX", 4, &env, &body, &bs), 1);
	assert_null(env);
	assert_null(bs);
	/* Absent messages and mailboxes. */
	assert_int_equal(store_message_summary(f->store, f->a, "INBOX", 99, &env, &body, &bs), 0);
	assert_int_equal(store_message_summary(f->store, f->a, "Nope", 1, &env, &body, &bs), 0);
	store_set_summarizer(f->store, NULL, NULL);
	deliver(f, f->a, "after\r\n");
	assert_int_equal(s.calls, 3);
	pthread_mutex_destroy(&s.lock);
}

/* ---- OBJECTID, SAVEDATE (RFC 8474, RFC 8514) and REPLACE (RFC 8508) ---- */

static bool hex32(const char *s)
{
	return strlen(s) == 32 && strspn(s, "0123456789abcdef") == 32;
}

static void test_objectids(void **state)
{
	struct fixture *f = fixture_get(state);
	/* MAILBOXID: one per mailbox, kept by a rename, new for a name created again. */
	struct store_mailbox_stats in = stats(f, f->a, "INBOX"), sent = stats(f, f->a, "Sent");
	assert_true(hex32(in.mailboxid));
	assert_string_not_equal(in.mailboxid, sent.mailboxid);
	assert_string_not_equal(in.mailboxid, stats(f, f->b, "INBOX").mailboxid);
	struct store_mailbox_op op = {
	    .action = STORE_MAILBOX_CREATE, .account_id = f->a, .name = "Box"};
	assert_int_equal(store_mailbox_change_wait(f->store, &op), 0);
	char box[STORE_OBJECTID_MAX + 1];
	memcpy(box, op.mailboxid, sizeof(box));
	assert_true(hex32(box));
	assert_string_equal(stats(f, f->a, "Box").mailboxid, box);
	mbox_ok(f, STORE_MAILBOX_RENAME, f->a, "Box", "Moved");
	assert_string_equal(stats(f, f->a, "Moved").mailboxid, box);
	struct store_mailbox_status st;
	snapshot(f, f->a, "Moved", &st);
	assert_string_equal(st.mailboxid, box);
	mbox_ok(f, STORE_MAILBOX_DELETE, f->a, "Moved", NULL);
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "Moved", NULL);
	assert_string_not_equal(stats(f, f->a, "Moved").mailboxid, box);

	/* EMAILID: the content address; shared by equal octets and by copies. */
	int64_t t0 = (int64_t)time(NULL);
	deliver(f, f->a, "same\r\n");
	uint32_t uid;
	assert_int_equal(append(f, f->a, "Sent", "same\r\n", 0, NULL, 0, 1234567890, &uid, NULL),
	                 0);
	append_ok(f, f->a, "Sent", "other\r\n");
	struct store_message_objects o1, o2, o3;
	assert_int_equal(store_message_objects(f->store, f->a, "INBOX", 1, &o1), 1);
	assert_int_equal(store_message_objects(f->store, f->a, "Sent", 1, &o2), 1);
	assert_int_equal(store_message_objects(f->store, f->a, "Sent", 2, &o3), 1);
	assert_int_equal(strlen(o1.emailid), 65);
	assert_int_equal(o1.emailid[0], 'M');
	assert_string_equal(o1.emailid, o2.emailid);
	assert_string_not_equal(o1.emailid, o3.emailid);
	/* SAVEDATE: when it was saved, not its internal date. */
	assert_true(o2.save_date >= t0 && o2.save_date <= t0 + 5);
	struct entries *e = snapshot(f, f->a, "Sent", NULL);
	assert_int_equal(e->v[0].date, 1234567890);
	assert_int_equal(e->v[0].save_date, o2.save_date);
	uint32_t uids[] = {1};
	struct store_copy cp = {.account_id = f->a,
	                        .mailbox = "Sent",
	                        .target = "Archive",
	                        .uids = uids,
	                        .uid_count = 1};
	assert_int_equal(store_copy_wait(f->store, &cp), 0);
	free(cp.source_uids);
	free(cp.target_uids);
	struct store_message_objects oc;
	assert_int_equal(store_message_objects(f->store, f->a, "Archive", 1, &oc), 1);
	assert_string_equal(oc.emailid, o1.emailid);
	/* SEARCH EMAILID's lookup. */
	uint32_t *found;
	size_t n;
	assert_int_equal(store_mailbox_emailid_uids(f->store, f->a, "Sent", o1.emailid, &found, &n),
	                 1);
	assert_int_equal(n, 1);
	assert_int_equal(found[0], 1);
	free(found);
	assert_int_equal(store_mailbox_emailid_uids(f->store, f->a, "Sent", "Mzz", &found, &n), 1);
	assert_int_equal(n, 0);
	assert_null(found);
	assert_int_equal(store_mailbox_emailid_uids(f->store, f->a, "Nope", o1.emailid, &found, &n),
	                 0);
	assert_int_equal(store_message_objects(f->store, f->a, "Sent", 99, &oc), 0);
	free(o1.preview);
	free(o2.preview);
	free(o3.preview);
}

/* store_append with replace_uid: one transaction; nothing happens when the old message is
 * gone. */
static void test_replace(void **state)
{
	struct fixture *f = fixture_get(state);
	append_ok(f, f->a, "Drafts", "draft 1\r\n");
	uint64_t u = used(f, f->a);
	char *path = spool(f->store, "draft 2, longer\r\n");
	struct store_append_message m = {.spool_path = path};
	struct store_append op = {.account_id = f->a,
	                          .mailbox = "Drafts",
	                          .messages = &m,
	                          .count = 1,
	                          .replace_mailbox = "Drafts",
	                          .replace_uid = 1};
	assert_int_equal(store_append_wait(f->store, &op), 0);
	free(path);
	assert_int_equal(m.uid, 2);
	struct entries *e = changes(f, f->a, "Drafts", 0, NULL);
	assert_int_equal(e->n, 1);
	assert_int_equal(e->v[0].uid, 2);
	assert_int_equal(e->nx, 1);
	assert_int_equal(e->expunged[0], 1);
	assert_int_equal(used(f, f->a), u - strlen("draft 1\r\n") + strlen("draft 2, longer\r\n"));
	/* The old one is gone now: refused, nothing stored. */
	u = used(f, f->a);
	path = spool(f->store, "draft 3\r\n");
	m = (struct store_append_message){.spool_path = path};
	op.replace_mailbox = "Drafts";
	assert_int_equal(store_append_wait(f->store, &op), -1);
	assert_string_equal(op.error, STORE_ERROR_EXPUNGED);
	assert_int_equal(access(path, F_OK), -1); /* consumed either way */
	free(path);
	assert_int_equal(used(f, f->a), u);
	assert_int_equal(stats(f, f->a, "Drafts").messages, 1);
	assert_int_equal(stats(f, f->a, "Drafts").uidnext, 3);
	/* Into another mailbox, and from a mailbox that does not exist. */
	path = spool(f->store, "draft 4\r\n");
	m = (struct store_append_message){.spool_path = path};
	op = (struct store_append){.account_id = f->a,
	                           .mailbox = "Sent",
	                           .messages = &m,
	                           .count = 1,
	                           .replace_mailbox = "Drafts",
	                           .replace_uid = 2};
	assert_int_equal(store_append_wait(f->store, &op), 0);
	free(path);
	assert_int_equal(stats(f, f->a, "Drafts").messages, 0);
	assert_int_equal(stats(f, f->a, "Sent").messages, 1);
	path = spool(f->store, "draft 5\r\n");
	m = (struct store_append_message){.spool_path = path};
	op.replace_mailbox = "Nope";
	op.replace_uid = 1;
	assert_int_equal(store_append_wait(f->store, &op), -1);
	assert_string_equal(op.error, STORE_ERROR_EXPUNGED);
	free(path);
	assert_int_equal(stats(f, f->a, "Sent").messages, 1);
}

/* ---- migration 2 -> 3 ---- */

static sqlite3 *db_open(const char *dir)
{
	char path[512];
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/posthorn.db", dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	return db;
}

static void db_exec(sqlite3 *db, const char *sql)
{
	char *error = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &error) != SQLITE_OK)
		fail_msg("%s: %s", sql, error);
}

/* ---- IMAP URLs (CATENATE, URLFETCH, BURL): sections and URLAUTH keys ---- */

static char *section_text(struct fixture *f, uint64_t account, const char *mailbox,
                          uint32_t uidvalidity, uint32_t uid, const char *section, bool partial,
                          uint64_t off, uint64_t len)
{
	int fd;
	uint64_t o, n;
	int r = store_message_section(f->store, account, mailbox, uidvalidity, uid, section,
	                              partial, off, len, &fd, &o, &n);
	if (r != 1)
		return r == 0 ? NULL : xstrdup("(error)");
	char *text = xmalloc(n + 1);
	assert_int_equal(pread(fd, text, n, (off_t)o), (ssize_t)n);
	text[n] = '\0';
	close(fd);
	return text;
}

static void expect_section(struct fixture *f, const char *section, bool partial, uint64_t off,
                           uint64_t len, const char *want)
{
	char *got = section_text(f, f->a, "Sent", 0, 1, section, partial, off, len);
	if (want == NULL) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_url_sections(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *msg = "Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
	                  "--b\r\nContent-Type: text/plain\r\n\r\none\r\n"
	                  "--b\r\nContent-Type: message/rfc822\r\n\r\n"
	                  "Subject: inner\r\n\r\ninner body\r\n--b--\r\n";
	append_ok(f, f->a, "Sent", msg);
	expect_section(f, NULL, false, 0, 0, msg);
	expect_section(f, "", false, 0, 0, msg);
	expect_section(f, "HEADER", false, 0, 0,
	               "Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n");
	expect_section(f, "1", false, 0, 0, "one");
	expect_section(f, "1.MIME", false, 0, 0, "Content-Type: text/plain\r\n\r\n");
	expect_section(f, "2.HEADER", false, 0, 0, "Subject: inner\r\n\r\n");
	expect_section(f, "2.TEXT", false, 0, 0, "inner body");
	expect_section(f, "1", true, 1, 1, "n");
	expect_section(f, "1", true, 1, 0, "ne");
	expect_section(f, "1", true, 100, 5, "");
	expect_section(f, "3", false, 0, 0, NULL);        /* no such part */
	expect_section(f, "1.HEADER", false, 0, 0, NULL); /* not a message/rfc822 part */
	expect_section(f, "HEADER.FIELDS (X)", false, 0, 0, NULL);
	expect_section(f, "1.", false, 0, 0, NULL);
	expect_section(f, "MIME", false, 0, 0, NULL);
	/* the message, the mailbox, the account and the UIDVALIDITY must all be right */
	struct store_mailbox_status st;
	assert_int_equal(
	    store_mailbox_changes(f->store, f->a, "Sent", UINT64_MAX >> 1, NULL, NULL, NULL, &st),
	    1);
	char *t = section_text(f, f->a, "Sent", st.uidvalidity, 1, NULL, false, 0, 0);
	assert_string_equal(t, msg);
	free(t);
	assert_null(section_text(f, f->a, "Sent", st.uidvalidity + 1, 1, NULL, false, 0, 0));
	assert_null(section_text(f, f->a, "Sent", 0, 2, NULL, false, 0, 0));
	assert_null(section_text(f, f->a, "Nope", 0, 1, NULL, false, 0, 0));
	assert_null(section_text(f, f->b, "Sent", 0, 1, NULL, false, 0, 0));
}

static void test_urlauth_keys(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *rump = "imap://a%40example.org@h/INBOX/;UID=1;URLAUTH=anonymous";
	size_t n = strlen(rump);
	char t1[STORE_URLAUTH_TOKEN_LEN + 1], t2[STORE_URLAUTH_TOKEN_LEN + 1];
	assert_int_equal(store_urlauth_token(f->store, f->a, "INBOX", rump, n, t1), 1);
	assert_int_equal(strlen(t1), STORE_URLAUTH_TOKEN_LEN);
	/* the same key next time (it is kept), another for another mailbox, rump or account */
	assert_int_equal(store_urlauth_token(f->store, f->a, "inbox", rump, n, t2), 1);
	assert_string_equal(t1, t2);
	assert_int_equal(store_urlauth_verify(f->store, f->a, "INBOX", rump, n, t1), 1);
	for (char *c = t2; *c != '\0'; c++)
		*c = (char)toupper((unsigned char)*c);
	assert_int_equal(store_urlauth_verify(f->store, f->a, "INBOX", rump, n, t2), 1);
	assert_int_equal(store_urlauth_verify(f->store, f->a, "INBOX", rump, n - 1, t1), 0);
	assert_int_equal(store_urlauth_verify(f->store, f->a, "Sent", rump, n, t1), 0);
	assert_int_equal(store_urlauth_verify(f->store, f->b, "INBOX", rump, n, t1), 0);
	assert_int_equal(store_urlauth_verify(f->store, f->a, "INBOX", rump, n, "00"), 0);
	assert_int_equal(store_urlauth_token(f->store, f->a, "Nope", rump, n, t2), 0);
	/* RESETKEY of the mailbox, then of the account */
	assert_int_equal(store_urlauth_reset(f->store, f->a, "INBOX"), 1);
	assert_int_equal(store_urlauth_verify(f->store, f->a, "INBOX", rump, n, t1), 0);
	assert_int_equal(store_urlauth_token(f->store, f->a, "INBOX", rump, n, t1), 1);
	assert_int_equal(store_urlauth_token(f->store, f->a, "Sent", rump, n, t2), 1);
	assert_int_equal(store_urlauth_reset(f->store, f->a, NULL), 1);
	assert_int_equal(store_urlauth_verify(f->store, f->a, "INBOX", rump, n, t1), 0);
	assert_int_equal(store_urlauth_verify(f->store, f->a, "Sent", rump, n, t2), 0);
	assert_int_equal(store_urlauth_reset(f->store, f->a, "Nope"), 0);
	/* a mailbox made again under the same name has a new key */
	assert_int_equal(store_urlauth_token(f->store, f->a, "Sent", rump, n, t2), 1);
	mbox_ok(f, STORE_MAILBOX_DELETE, f->a, "Sent", NULL);
	mbox_ok(f, STORE_MAILBOX_CREATE, f->a, "Sent", NULL);
	assert_int_equal(store_urlauth_verify(f->store, f->a, "Sent", rump, n, t2), 0);
}

static void test_migration_2_to_3(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *error = NULL, *body = "Subject: version 2\r\n\r\nold\r\n";
	char dir[128], path[256], hex[BLOB_HEX_LEN + 1], sql[2048];
	uint64_t size = 0;
	bool created;

	snprintf(dir, sizeof(dir), "%s/v2", f->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(store_db_create(dir, 2, &error), 0);
	snprintf(path, sizeof(path), "%s/messages", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	char spool_path[256];
	snprintf(spool_path, sizeof(spool_path), "%s/spool", dir);
	FILE *fp = fopen(spool_path, "w");
	assert_non_null(fp);
	fputs(body, fp);
	fclose(fp);
	assert_int_equal(blob_store(path, spool_path, hex, &size, &created, &error), 0);
	snprintf(
	    sql, sizeof(sql),
	    "INSERT INTO domains (id, name, created) VALUES (1, 'example.org', 0);"
	    "INSERT INTO accounts (id, address, domain_id, password_hash, used_bytes, created)"
	    " VALUES (1, 'old@example.org', 1, 'h', %llu, 0);"
	    "INSERT INTO mailboxes (id, account_id, name, special_use, uidvalidity, uidnext,"
	    " highestmodseq, subscribed) VALUES (1, 1, 'INBOX', NULL, 1234567, 3, 5, 1),"
	    " (2, 1, 'Sent', '\\Sent', 1234568, 1, 1, 0),"
	    " (3, 1, 'Old/Stuff', NULL, 1234569, 1, 1, 1);"
	    "INSERT INTO messages (id, sha256, size, received_at, mail_from)"
	    " VALUES (1, '%s', %llu, 1600000000, 's@remote.example');"
	    "INSERT INTO mailbox_entries (mailbox_id, uid, message_id, flags, keywords, modseq,"
	    " internal_date) VALUES (1, 2, 1, 1, '$Old', 5, 1600000000);"
	    "INSERT INTO expunged (mailbox_id, uid, modseq) VALUES (1, 1, 4);"
	    "INSERT INTO meta (key, value) VALUES ('uidvalidity', 1234569);",
	    (unsigned long long)size, hex, (unsigned long long)size);
	sqlite3 *db = db_open(dir);
	db_exec(db, sql);
	sqlite3_close(db);

	struct fixture old = {.store = NULL};
	memcpy(old.dir, dir, strlen(dir) + 1);
	open_store(&old);
	assert_int_equal(store_schema_version(old.store), SQL_SQLITE_MIGRATION_COUNT);
	/* Subscriptions came from the old column; special use and hierarchy are kept. */
	struct listing *l = list(&old, 1);
	assert_int_equal(l->n, 4);
	assert_string_equal(attrs(l, "INBOX"), "Es");
	assert_string_equal(attrs(l, "Sent"), "E");
	assert_int_equal(special(l, "Sent"), STORE_SPECIAL_SENT);
	assert_string_equal(attrs(l, "Old"), "Pc");
	assert_string_equal(attrs(l, "Old/Stuff"), "Es");
	/* Entries, tombstones, flags and keywords are kept; no summary yet. */
	struct store_mailbox_status st;
	struct entries *e = changes(&old, 1, "INBOX", 0, &st);
	assert_int_equal(st.uidvalidity, 1234567);
	assert_int_equal(st.uidnext, 3);
	assert_int_equal(st.highestmodseq, 5);
	assert_int_equal(e->n, 1);
	assert_int_equal(e->v[0].uid, 2);
	assert_int_equal(e->v[0].flags, STORE_FLAG_SEEN);
	assert_string_equal(e->v[0].keywords, "$Old");
	assert_int_equal(e->nx, 1);
	assert_int_equal(e->expunged[0], 1);
	char *env = (char *)"x";
	assert_int_equal(store_message_summary(old.store, 1, "INBOX", 2, &env, NULL, NULL), 1);
	assert_null(env);
	/* It works as a version-3 store: append, flags, new mailboxes get new UIDVALIDITYs. */
	assert_int_equal(append_ok(&old, 1, "INBOX", "new\r\n"), 3);
	mbox_ok(&old, STORE_MAILBOX_CREATE, 1, "New", NULL);
	assert_true(stats(&old, 1, "New").uidvalidity > 1234569);
	int fd;
	assert_int_equal(store_message_open(old.store, 1, "INBOX", 2, &fd, &size), 1);
	char buf[128];
	assert_int_equal(read(fd, buf, sizeof(buf)), (ssize_t)strlen(body));
	close(fd);
	store_close(&old.store);
	/* Applied once. */
	open_store(&old);
	assert_int_equal(store_schema_version(old.store), SQL_SQLITE_MIGRATION_COUNT);
	assert_string_equal(attrs(list(&old, 1), "Old/Stuff"), "Es");
	store_close(&old.store);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    BOTH(test_create_list),
	    BOTH(test_limits),
	    BOTH(test_delete),
	    BOTH(test_rename),
	    BOTH(test_rename_inbox),
	    BOTH(test_subscriptions),
	    BOTH(test_metadata),
	    BOTH(test_snapshot_cache),
	    BOTH(test_tombstone_prune),
	    BOTH(test_tombstone_prune_snapcache),
	    BOTH(test_tombstone_prune_periodic),
	    BOTH(test_status),
	    BOTH(test_message_limit),
	    BOTH(test_recent),
	    BOTH(test_flags),
	    BOTH(test_copy),
	    BOTH(test_move),
	    BOTH(test_append),
	    BOTH(test_changes),
	    BOTH(test_watch),
	    BOTH(test_watch_account),
	    PG(test_watch_account_other_node),
	    BOTH(test_concurrency),
	    BOTH(test_summary),
	    BOTH(test_objectids),
	    BOTH(test_replace),
	    BOTH(test_url_sections),
	    BOTH(test_urlauth_keys),
	    SQLITE(test_migration_2_to_3), /* a version-2 SQLite file */
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
