/* Unit tests of access control lists (RFC 4314) in the store on both engines
 * (store_engines.h): rights letters (parse, the obsolete "c" and "d", canonical order),
 * identifiers, SETACL with replace/add/remove, entries following RENAME and going with
 * DELETE, the union of matching entries (address, "@domain", "anyone"), the owner's
 * implicit rights, the shared-namespace listing, the per-mailbox limit, and a dump that
 * carries the entries to another store. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/xmalloc.h"
#include "store/store.h"
#include "store_engines.h"
#include "core/banned.h"

struct fixture {
	struct engine eng;
	char dir[64];
	struct store *store;
	uint64_t a, b, c, x; /* a, b, c @example.org; x@other.org */
};

static void open_store(struct fixture *f)
{
	const char *error = NULL;
	if (store_open_engine(f->dir, engine_name(&f->eng), f->eng.target, &f->store, &error) < 0)
		fail_msg("store_open_engine: %s", error);
}

static uint64_t add_account(struct fixture *f, const char *address)
{
	const char *error = NULL;
	uint64_t id;
	if (store_account_add(f->store, address, "hash", 0, &error) < 0)
		fail_msg("account_add: %s", error);
	assert_int_equal(store_account_lookup(f->store, address, &id, NULL, NULL), 1);
	return id;
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	const char *error = NULL;
	int ret = engine_start(&f->eng, engine_kind(state), "test_store_acl");
	*state = NULL;
	if (ret <= 0) {
		free(f);
		return ret; /* 0: the test skips */
	}
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store_acl.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	open_store(f);
	assert_int_equal(store_domain_add(f->store, "example.org", &error), 0);
	assert_int_equal(store_domain_add(f->store, "other.org", &error), 0);
	f->a = add_account(f, "a@example.org");
	f->b = add_account(f, "b@example.org");
	f->c = add_account(f, "c@example.org");
	f->x = add_account(f, "x@other.org");
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

/* Change the entry of identifier on account's mailbox: 0, or -1 with the store's error. */
static int acl_set(struct fixture *f, uint64_t account, const char *mailbox, const char *identifier,
                   enum store_acl_mode mode, const char *rights, const char **error_r)
{
	unsigned bits = 0;
	assert_int_equal(store_acl_rights_parse(rights, &bits), 0);
	struct store_mailbox_op op = {
	    .action = STORE_MAILBOX_ACL,
	    .account_id = account,
	    .name = mailbox,
	    .acl_identifier = identifier,
	    .acl_rights = bits,
	    .acl_mode = mode,
	};
	int ret = store_mailbox_change_wait(f->store, &op);
	*error_r = op.error;
	return ret;
}

static void acl_set_ok(struct fixture *f, uint64_t account, const char *mailbox,
                       const char *identifier, enum store_acl_mode mode, const char *rights)
{
	const char *error = NULL;
	if (acl_set(f, account, mailbox, identifier, mode, rights, &error) < 0)
		fail_msg("acl on %s for %s: %s", mailbox, identifier, error);
}

static void acl_add(void *ctx, const char *identifier, unsigned rights)
{
	char *out = ctx, text[sizeof(STORE_ACL_LETTERS)];
	size_t len = strlen(out);
	store_acl_rights_string(rights, text);
	snprintf(out + len, 512 - len, "%s%s=%s", len > 0 ? " " : "", identifier, text);
}

/* "identifier=rights ..." of store_acl_get(), "-" no such mailbox, "!" an error. */
static const char *acl_get(struct fixture *f, uint64_t account, const char *mailbox)
{
	static char out[512];
	out[0] = '\0';
	int ret = store_acl_get(f->store, account, mailbox, acl_add, out);
	return ret == 1 ? out : ret == 0 ? "-" : "!";
}

/* The rights of address on owner's mailbox as letters, "-" no such mailbox. */
static const char *rights(struct fixture *f, uint64_t owner, const char *mailbox, uint64_t id,
                          const char *address)
{
	static char out[sizeof(STORE_ACL_LETTERS)];
	unsigned bits = 0;
	int ret = store_acl_rights(f->store, owner, mailbox, id, address, &bits);
	if (ret != 1)
		return ret == 0 ? "-" : "!";
	store_acl_rights_string(bits, out);
	return out;
}

static void shared_add(void *ctx, uint64_t owner_id, const char *owner, const char *mailbox,
                       unsigned bits)
{
	char *out = ctx, text[sizeof(STORE_ACL_LETTERS)];
	size_t len = strlen(out);
	(void)owner_id;
	store_acl_rights_string(bits, text);
	snprintf(out + len, 512 - len, "%s%s:%s=%s", len > 0 ? " " : "", owner, mailbox, text);
}

static const char *shared(struct fixture *f, uint64_t id, const char *address)
{
	static char out[512];
	out[0] = '\0';
	if (store_acl_shared(f->store, id, address, shared_add, out) < 0)
		return "!";
	return out;
}

static void test_rights_letters(void **state)
{
	(void)state;
	unsigned bits = 0;
	char text[sizeof(STORE_ACL_LETTERS)];
	assert_int_equal(store_acl_rights_parse("", &bits), 0);
	assert_int_equal(bits, 0);
	assert_int_equal(store_acl_rights_parse("aeltrswipkx", &bits), 0);
	assert_int_equal(bits, STORE_ACL_ALL);
	store_acl_rights_string(bits, text);
	assert_string_equal(text, "lrswipkxtea");
	assert_int_equal(store_acl_rights_parse("rrl", &bits), 0);
	store_acl_rights_string(bits, text);
	assert_string_equal(text, "lr");
	/* RFC 4314 §2.1.1: c is k and x, d is e and t. */
	assert_int_equal(store_acl_rights_parse("c", &bits), 0);
	assert_int_equal(bits, STORE_ACL_CREATE | STORE_ACL_DELETE);
	assert_int_equal(store_acl_rights_parse("d", &bits), 0);
	assert_int_equal(bits, STORE_ACL_EXPUNGE | STORE_ACL_DELMSG);
	bits = 7;
	assert_int_equal(store_acl_rights_parse("lz", &bits), -1);
	assert_int_equal(store_acl_rights_parse("L", &bits), -1);
	assert_int_equal(store_acl_rights_parse("l r", &bits), -1);
	assert_int_equal(store_acl_rights_parse("0", &bits), -1);
	assert_int_equal(bits, 7); /* untouched on failure */
	store_acl_rights_string(0, text);
	assert_string_equal(text, "");
	store_acl_rights_string(STORE_ACL_ADMIN | STORE_ACL_LOOKUP, text);
	assert_string_equal(text, "la");
}

static void test_identifiers(void **state)
{
	(void)state;
	assert_true(store_acl_identifier_valid("anyone"));
	assert_true(store_acl_identifier_valid("authenticated"));
	assert_true(store_acl_identifier_valid("bob@example.org"));
	assert_true(store_acl_identifier_valid("@example.org"));
	assert_false(store_acl_identifier_valid(""));
	assert_false(store_acl_identifier_valid("bob"));
	assert_false(store_acl_identifier_valid("Bob@example.org"));
	assert_false(store_acl_identifier_valid("bob@"));
	assert_false(store_acl_identifier_valid("a@b@c"));
	assert_false(store_acl_identifier_valid("b ob@example.org"));
	char long_id[STORE_ACL_IDENTIFIER_MAX + 8];
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	long_id[10] = '@';
	assert_false(store_acl_identifier_valid(long_id));
	assert_true(store_acl_identifier_matches("anyone", "bob@example.org"));
	assert_true(store_acl_identifier_matches("authenticated", "bob@example.org"));
	assert_true(store_acl_identifier_matches("@example.org", "bob@example.org"));
	assert_false(store_acl_identifier_matches("@example.org", "bob@other.org"));
	assert_false(store_acl_identifier_matches("@example.org", "bob@sub.example.org"));
	assert_true(store_acl_identifier_matches("bob@example.org", "bob@example.org"));
	assert_false(store_acl_identifier_matches("bob@example.org", "bo@example.org"));
}

static void test_acl_entries(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *error = NULL;
	struct store_mailbox_op create = {
	    .action = STORE_MAILBOX_CREATE, .account_id = f->a, .name = "Team"};
	assert_int_equal(store_mailbox_change_wait(f->store, &create), 0);
	assert_string_equal(acl_get(f, f->a, "Team"), "");
	acl_set_ok(f, f->a, "Team", "b@example.org", STORE_ACL_SET, "lrs");
	acl_set_ok(f, f->a, "Team", "b@example.org", STORE_ACL_ADD, "wi");
	acl_set_ok(f, f->a, "Team", "b@example.org", STORE_ACL_REMOVE, "s");
	acl_set_ok(f, f->a, "Team", "@other.org", STORE_ACL_SET, "l");
	assert_string_equal(acl_get(f, f->a, "Team"), "@other.org=l b@example.org=lrwi");
	/* Replace; removing the last right drops the entry. */
	acl_set_ok(f, f->a, "Team", "b@example.org", STORE_ACL_SET, "lr");
	acl_set_ok(f, f->a, "Team", "@other.org", STORE_ACL_REMOVE, "l");
	assert_string_equal(acl_get(f, f->a, "Team"), "b@example.org=lr");
	acl_set_ok(f, f->a, "Team", "c@example.org", STORE_ACL_SET, "");
	assert_string_equal(acl_get(f, f->a, "Team"), "b@example.org=lr");

	/* Rights: the owner has all, a grantee the union of its entries, others none. */
	assert_string_equal(rights(f, f->a, "Team", f->a, "a@example.org"), "lrswipkxtea");
	assert_string_equal(rights(f, f->a, "Team", f->b, "b@example.org"), "lr");
	assert_string_equal(rights(f, f->a, "Team", f->c, "c@example.org"), "");
	acl_set_ok(f, f->a, "Team", "@example.org", STORE_ACL_SET, "s");
	acl_set_ok(f, f->a, "Team", "anyone", STORE_ACL_SET, "p");
	assert_string_equal(rights(f, f->a, "Team", f->b, "b@example.org"), "lrsp");
	assert_string_equal(rights(f, f->a, "Team", f->c, "c@example.org"), "sp");
	assert_string_equal(rights(f, f->a, "Team", f->x, "x@other.org"), "p");
	assert_string_equal(rights(f, f->a, "nosuch", f->b, "b@example.org"), "-");
	assert_string_equal(rights(f, f->a, "nosuch", f->a, "a@example.org"), "-");
	assert_string_equal(acl_get(f, f->a, "nosuch"), "-");

	/* Entries are per mailbox and per owner. */
	assert_string_equal(acl_get(f, f->a, "INBOX"), "");
	assert_string_equal(acl_get(f, f->b, "INBOX"), "");

	/* Refusals. */
	assert_int_equal(acl_set(f, f->a, "nosuch", "b@example.org", STORE_ACL_SET, "l", &error),
	                 -1);
	assert_string_equal(error, STORE_ERROR_NO_MAILBOX);
	assert_int_equal(acl_set(f, f->a, "Team", "Bob@example.org", STORE_ACL_SET, "l", &error),
	                 -1);
	assert_string_equal(error, STORE_ERROR_INVALID);
	assert_int_equal(acl_set(f, f->a, "Team", "bob", STORE_ACL_SET, "l", &error), -1);
	assert_string_equal(error, STORE_ERROR_INVALID);
}

/* store_acl_version(): moved by every committed ACL change (before the change's caller
 * hears of it), not by other mailbox operations; ACL changes reach no account watch; on
 * a shared store another node's change moves it too, once its notification arrives. */
static void acl_version_watch_cb(void *ctx, const struct store_change_info *c)
{
	(void)c;
	(*(int *)ctx)++;
}

static void test_acl_version(void **state)
{
	struct fixture *f = fixture_get(state);
	struct store_mailbox_op create = {
	    .action = STORE_MAILBOX_CREATE, .account_id = f->a, .name = "Ver"};
	int records = 0;
	struct store_watch *w = store_watch_account(f->store, f->a, acl_version_watch_cb, &records);
	uint64_t v0 = store_acl_version(f->store);
	assert_int_equal(store_mailbox_change_wait(f->store, &create), 0);
	assert_int_equal(store_acl_version(f->store), v0); /* CREATE: not an ACL change */
	int after_create = records;
	assert_true(after_create > 0);
	acl_set_ok(f, f->a, "Ver", "b@example.org", STORE_ACL_SET, "lr");
	uint64_t v1 = store_acl_version(f->store);
	assert_true(v1 > v0);
	acl_set_ok(f, f->a, "Ver", "b@example.org", STORE_ACL_REMOVE, "lr"); /* entry gone */
	assert_true(store_acl_version(f->store) > v1);
	assert_int_equal(records, after_create); /* no account watch record */
	store_unwatch(&w);
	if (!engine_is_pg(&f->eng))
		return;
	struct fixture other = *f;
	snprintf(other.dir, sizeof(other.dir), "/tmp/test_store_acl.XXXXXX");
	assert_non_null(mkdtemp(other.dir));
	open_store(&other);
	uint64_t v2 = store_acl_version(f->store);
	const char *error = NULL;
	assert_int_equal(acl_set(&other, f->a, "Ver", "c@example.org", STORE_ACL_SET, "l", &error),
	                 0);
	for (int i = 0; i < 1000 && store_acl_version(f->store) == v2; i++) /* up to 10 s */
		usleep(10000);
	assert_true(store_acl_version(f->store) > v2);
	store_close(&other.store);
	engine_rm_tree(other.dir);
}

static void test_acl_rename_delete_shared(void **state)
{
	struct fixture *f = fixture_get(state);
	struct store_mailbox_op op = {
	    .action = STORE_MAILBOX_CREATE, .account_id = f->a, .name = "Team/Plans"};
	assert_int_equal(store_mailbox_change_wait(f->store, &op), 0);
	acl_set_ok(f, f->a, "Team/Plans", "b@example.org", STORE_ACL_SET, "lr");
	acl_set_ok(f, f->a, "Team/Plans", "@example.org", STORE_ACL_SET, "s");
	acl_set_ok(f, f->a, "INBOX", "anyone", STORE_ACL_SET, "p");
	acl_set_ok(f, f->c, "INBOX", "b@example.org", STORE_ACL_SET, "l");
	/* Shared with b: a's two and c's, merged per mailbox; nothing of b's own. */
	acl_set_ok(f, f->b, "INBOX", "b@example.org", STORE_ACL_SET, "l");
	assert_string_equal(shared(f, f->b, "b@example.org"),
	                    "a@example.org:INBOX=p a@example.org:Team/Plans=lrs "
	                    "c@example.org:INBOX=l");
	assert_string_equal(shared(f, f->x, "x@other.org"), "a@example.org:INBOX=p");
	/* RENAME takes the entries along (also of mailboxes below the renamed one). */
	op = (struct store_mailbox_op){.action = STORE_MAILBOX_RENAME,
	                               .account_id = f->a,
	                               .name = "Team",
	                               .new_name = "Group"};
	assert_int_equal(store_mailbox_change_wait(f->store, &op), 0);
	assert_string_equal(acl_get(f, f->a, "Group/Plans"), "@example.org=s b@example.org=lr");
	assert_string_equal(rights(f, f->a, "Group/Plans", f->b, "b@example.org"), "lrs");
	assert_string_equal(acl_get(f, f->a, "Team/Plans"), "-");
	/* DELETE drops them: a new mailbox of the same name starts empty. */
	op = (struct store_mailbox_op){
	    .action = STORE_MAILBOX_DELETE, .account_id = f->a, .name = "Group/Plans"};
	assert_int_equal(store_mailbox_change_wait(f->store, &op), 0);
	op = (struct store_mailbox_op){
	    .action = STORE_MAILBOX_CREATE, .account_id = f->a, .name = "Group/Plans"};
	assert_int_equal(store_mailbox_change_wait(f->store, &op), 0);
	assert_string_equal(acl_get(f, f->a, "Group/Plans"), "");
	assert_string_equal(shared(f, f->b, "b@example.org"),
	                    "a@example.org:INBOX=p c@example.org:INBOX=l");
	/* Deleting the owner's account drops its entries. */
	const char *error = NULL;
	assert_int_equal(store_account_del(f->store, "c@example.org", &error), 0);
	assert_string_equal(shared(f, f->b, "b@example.org"), "a@example.org:INBOX=p");
}

static void test_acl_limit(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *error = NULL;
	char id[64];
	for (int i = 0; i < STORE_ACL_MAX; i++) {
		snprintf(id, sizeof(id), "u%d@example.org", i);
		acl_set_ok(f, f->a, "INBOX", id, STORE_ACL_SET, "l");
	}
	assert_int_equal(acl_set(f, f->a, "INBOX", "more@example.org", STORE_ACL_SET, "l", &error),
	                 -1);
	assert_string_equal(error, STORE_ERROR_LIMIT);
	/* Changing an existing one at the limit is fine. */
	acl_set_ok(f, f->a, "INBOX", "u0@example.org", STORE_ACL_ADD, "r");
	assert_string_equal(rights(f, f->a, "INBOX", f->b, "u0@example.org"), "lr");
}

/* One message appended to account's mailbox: its UID. */
static uint32_t append_one(struct fixture *f, uint64_t account, const char *mailbox,
                           const char *data)
{
	char *path = store_spool_path_dup(f->store);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(data, fp);
	fclose(fp);
	struct store_append_message m = {.spool_path = path};
	struct store_append op = {
	    .account_id = account, .mailbox = mailbox, .messages = &m, .count = 1};
	if (store_append_wait(f->store, &op) < 0)
		fail_msg("append: %s", op.error);
	free(path);
	return m.uid;
}

static uint64_t used(struct fixture *f, uint64_t account)
{
	uint64_t quota = 0, bytes = 0;
	assert_int_equal(store_account_usage(f->store, account, &quota, &bytes), 1);
	return bytes;
}

/* COPY and MOVE into another account's mailbox (a shared one): the target account is
 * charged, a move relieves the source's, a full target refuses, and a missing target is
 * NO_TARGET. */
static void test_copy_across_accounts(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *body = "Subject: x\r\n\r\nhello across\r\n";
	uint32_t uid = append_one(f, f->a, "INBOX", body);
	uint64_t size = used(f, f->a);
	assert_true(size > 0);
	uint32_t uids[1] = {uid};
	struct store_copy cp = {.account_id = f->a,
	                        .mailbox = "INBOX",
	                        .target = "Drafts",
	                        .target_account_id = f->b,
	                        .uids = uids,
	                        .uid_count = 1};
	assert_int_equal(store_copy_wait(f->store, &cp), 0);
	assert_int_equal(cp.count, 1);
	free(cp.source_uids);
	free(cp.target_uids);
	assert_int_equal(used(f, f->a), size);
	assert_int_equal(used(f, f->b), size);
	struct store_mailbox_stats st;
	assert_int_equal(store_mailbox_stats(f->store, f->b, "Drafts", &st), 1);
	assert_int_equal(st.messages, 1);
	assert_int_equal(store_mailbox_stats(f->store, f->a, "Drafts", &st), 1);
	assert_int_equal(st.messages, 0);
	/* A move: the octets go from a to c. */
	cp = (struct store_copy){.account_id = f->a,
	                         .mailbox = "INBOX",
	                         .target = "INBOX",
	                         .target_account_id = f->c,
	                         .uids = uids,
	                         .uid_count = 1,
	                         .move = true};
	assert_int_equal(store_copy_wait(f->store, &cp), 0);
	free(cp.source_uids);
	free(cp.target_uids);
	assert_int_equal(used(f, f->a), 0);
	assert_int_equal(used(f, f->c), size);
	assert_int_equal(store_mailbox_stats(f->store, f->a, "INBOX", &st), 1);
	assert_int_equal(st.messages, 0);
	/* The target's quota decides. */
	const char *error = NULL;
	assert_int_equal(store_account_set_quota(f->store, "x@other.org", 1, &error), 0);
	uids[0] = 1;
	cp = (struct store_copy){.account_id = f->c,
	                         .mailbox = "INBOX",
	                         .target = "INBOX",
	                         .target_account_id = f->x,
	                         .uids = uids,
	                         .uid_count = 1};
	assert_int_equal(store_copy_wait(f->store, &cp), -1);
	assert_string_equal(cp.error, STORE_ERROR_OVERQUOTA);
	cp.target = "Nosuch";
	cp.target_account_id = f->b;
	assert_int_equal(store_copy_wait(f->store, &cp), -1);
	assert_string_equal(cp.error, STORE_ERROR_NO_TARGET);
}

static void test_acl_dump(void **state)
{
	struct fixture *f = fixture_get(state);
	const char *error = NULL;
	acl_set_ok(f, f->a, "INBOX", "b@example.org", STORE_ACL_SET, "lrsa");
	char path[128];
	snprintf(path, sizeof(path), "%s/dump", f->dir);
	FILE *out = fopen(path, "w");
	assert_non_null(out);
	assert_int_equal(store_export(f->store, out, &error), 0);
	fclose(out);
	/* Into a fresh SQLite store. */
	char dir2[64];
	snprintf(dir2, sizeof(dir2), "/tmp/test_store_acl2.XXXXXX");
	assert_non_null(mkdtemp(dir2));
	struct store *s2 = NULL;
	assert_int_equal(store_open_engine(dir2, "sqlite", NULL, &s2, &error), 0);
	FILE *in = fopen(path, "r");
	assert_non_null(in);
	if (store_import(s2, in, &error) < 0)
		fail_msg("import: %s", error);
	fclose(in);
	unsigned bits = 0;
	assert_int_equal(store_acl_rights(s2, f->a, "INBOX", f->b, "b@example.org", &bits), 1);
	assert_int_equal(bits,
	                 STORE_ACL_LOOKUP | STORE_ACL_READ | STORE_ACL_SEEN | STORE_ACL_ADMIN);
	store_close(&s2);
	engine_rm_tree(dir2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rights_letters),
	    cmocka_unit_test(test_identifiers),
	    BOTH(test_acl_entries),
	    BOTH(test_acl_version),
	    BOTH(test_acl_rename_delete_shared),
	    BOTH(test_acl_limit),
	    BOTH(test_copy_across_accounts),
	    BOTH(test_acl_dump),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
