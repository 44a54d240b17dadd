/* Unit tests of the search index (store.h: store_set_search_texter(),
 * store_search_text_uids(), store_search_unindexed_uids(); imap_search_doc_index()) on both
 * engines (store_engines.h): texts built at delivery and APPEND from quoted-printable,
 * base64 and ISO-8859-1 bodies and RFC 2047 headers, substring hits inside words, needles of
 * one and two characters (no trigram), BODY versus TEXT, the cap (search_index_max_text),
 * messages stored before the index (listed as unindexed, never as hits), copies sharing one
 * text, and the text removed with the content's last message. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/xmalloc.h"
#include "imap/imap_search_doc.h"
#include "store/store.h"
#include "store_engines.h"
#include "core/banned.h"

struct fixture {
	struct engine eng;
	char dir[64];
	struct store *store;
	uint64_t a;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	const char *error = NULL;
	int ret = engine_start(&f->eng, engine_kind(state), "test_store_search");
	*state = NULL;
	if (ret <= 0) {
		free(f);
		return ret;
	}
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store_search.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	if (store_open_engine(f->dir, engine_name(&f->eng), f->eng.target, &f->store, &error) < 0)
		fail_msg("store_open_engine: %s", error);
	store_set_inline_max(f->store, 0);
	store_set_search_texter(f->store, imap_search_doc_index_fd, NULL, 1 << 20);
	assert_int_equal(store_domain_add(f->store, "example.org", &error), 0);
	assert_int_equal(store_account_add(f->store, "a@example.org", "hash", 0, &error), 0);
	assert_int_equal(store_account_lookup(f->store, "a@example.org", &f->a, NULL, NULL), 1);
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

static uint32_t append(struct fixture *f, const char *mailbox, const char *data)
{
	char *path = store_spool_path_dup(f->store);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, strlen(data), fp), strlen(data));
	assert_int_equal(fclose(fp), 0);
	struct store_append_message m = {.spool_path = path};
	struct store_append op = {
	    .account_id = f->a, .mailbox = mailbox, .messages = &m, .count = 1};
	if (store_append_wait(f->store, &op) < 0)
		fail_msg("append: %s", op.error);
	free(path);
	return m.uid;
}

static void deliver(struct fixture *f, const char *data)
{
	char *path = store_spool_path_dup(f->store);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, strlen(data), fp), strlen(data));
	assert_int_equal(fclose(fp), 0);
	struct store_delivery d = {.spool_path = path,
	                           .mail_from = "s@remote.example",
	                           .accounts = &f->a,
	                           .account_count = 1,
	                           .received_at = 1700000000};
	assert_int_equal(store_deliver_wait(f->store, &d), 0);
	free(path);
}

/* The UIDs of INBOX holding needle, as "1 3" ("" none, "-" error or no mailbox). */
static const char *hits(struct fixture *f, const char *mailbox, const char *needle, bool body)
{
	static char out[256];
	uint32_t *uids;
	size_t n;
	int r = store_search_text_uids(f->store, f->a, mailbox, needle, body, &uids, &n);
	out[0] = '\0';
	if (r != 1)
		return "-";
	for (size_t i = 0; i < n; i++)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%u", i > 0 ? " " : "",
		         uids[i]);
	free(uids);
	return out;
}

static const char *unindexed(struct fixture *f, const char *mailbox)
{
	static char out[256];
	uint32_t *uids;
	size_t n;
	out[0] = '\0';
	if (store_search_unindexed_uids(f->store, f->a, mailbox, &uids, &n) != 1)
		return "-";
	for (size_t i = 0; i < n; i++)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%u", i > 0 ? " " : "",
		         uids[i]);
	free(uids);
	return out;
}

/* Rows of search_texts in the test's database. */
static long text_rows(struct fixture *f)
{
	long n = -1;
	if (engine_is_pg(&f->eng)) {
		PGconn *c = PQconnectdb(f->eng.target);
		PGresult *r = PQexec(c, "SELECT count(*) FROM search_texts");
		if (PQresultStatus(r) == PGRES_TUPLES_OK)
			n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
		PQfinish(c);
		return n;
	}
	char path[512];
	sqlite3 *db;
	sqlite3_stmt *st;
	snprintf(path, sizeof(path), "%s/posthorn.db", f->dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM search_texts", -1, &st, NULL) ==
	        SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static const char qp_latin1[] = "From: =?ISO-8859-1?Q?Ren=E9?= <rene@example.org>\r\n"
                                "Subject: Tarif\r\n"
                                "MIME-Version: 1.0\r\n"
                                "Content-Type: text/plain; charset=ISO-8859-1\r\n"
                                "Content-Transfer-Encoding: quoted-printable\r\n"
                                "\r\n"
                                "Le caf=E9 co=FBte tr=E8s cher, Stra=DFe=\r\n"
                                "nbahn.\r\n";

static const char b64_multipart[] = "Subject: Quarterly numbers\r\n"
                                    "MIME-Version: 1.0\r\n"
                                    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
                                    "\r\n"
                                    "--b1\r\n"
                                    "Content-Type: text/plain; charset=utf-8\r\n"
                                    "Content-Transfer-Encoding: base64\r\n"
                                    "\r\n"
                                    /* "Hidden treasure: ΑΘΗΝΑ\r\n" */
                                    "SGlkZGVuIHRyZWFzdXJlOiDOkc6YzpfOnc6RDQo=\r\n"
                                    "--b1\r\n"
                                    "Content-Type: application/octet-stream\r\n"
                                    "Content-Transfer-Encoding: base64\r\n"
                                    "\r\n"
                                    "YmluYXJ5c2VjcmV0\r\n"
                                    "--b1--\r\n";

/* Texts at delivery and APPEND: decoded, converted and folded; substrings; BODY vs TEXT. */
static void test_index_at_delivery(void **state)
{
	struct fixture *f = fixture_get(state);
	deliver(f, qp_latin1);
	assert_int_equal(append(f, "INBOX", b64_multipart), 2);
	assert_string_equal(unindexed(f, "INBOX"), "");
	/* quoted-printable and ISO-8859-1, a soft line break inside a word, folded */
	assert_string_equal(hits(f, "INBOX", "café coûte", true), "1");
	assert_string_equal(hits(f, "INBOX", "straßenbahn", true), "1");
	assert_string_equal(hits(f, "INBOX", "caf=e9", false), "");
	/* base64 and UTF-8, Greek folded to lower case; inside a word */
	assert_string_equal(hits(f, "INBOX", "αθηνα", true), "2");
	assert_string_equal(hits(f, "INBOX", "idden treas", true), "2");
	/* an application/ part is not text (RFC 9051 §6.4.4 lets a server skip it) */
	assert_string_equal(hits(f, "INBOX", "binarysecret", false), "");
	/* header lines: TEXT finds them (RFC 2047 decoded), BODY does not */
	assert_string_equal(hits(f, "INBOX", "rené", false), "1");
	assert_string_equal(hits(f, "INBOX", "rené", true), "");
	assert_string_equal(hits(f, "INBOX", "subject: quarterly", false), "2");
	/* a part's header lines are TEXT's too */
	assert_string_equal(hits(f, "INBOX", "application/octet-stream", false), "2");
	assert_string_equal(hits(f, "INBOX", "application/octet-stream", true), "");
	/* the needle's characters are matched as given: quotes and LIKE's wildcards */
	assert_string_equal(hits(f, "INBOX", "\"x\"", false), "");
	assert_string_equal(hits(f, "INBOX", "caf%", true), "");
	assert_string_equal(hits(f, "INBOX", "tr_s", true), "");
	assert_string_equal(hits(f, "Nope", "café", true), "-");
}

/* Needles of one and two characters have no trigram: they scan the texts. */
static void test_short_needles(void **state)
{
	struct fixture *f = fixture_get(state);
	deliver(f, "Subject: a\r\n\r\nxq zz\r\n");
	deliver(f, "Subject: b\r\n\r\nnothing here\r\n");
	assert_string_equal(hits(f, "INBOX", "q", true), "1");
	assert_string_equal(hits(f, "INBOX", "zz", true), "1");
	assert_string_equal(hits(f, "INBOX", "xq", true), "1");
	assert_string_equal(hits(f, "INBOX", "h", true), "2");
	assert_string_equal(hits(f, "INBOX", "é", true), "");
	assert_string_equal(hits(f, "INBOX", "b", false), "1 2"); /* "subject: " */
	assert_string_equal(hits(f, "INBOX", "b", true), "");
	assert_string_equal(hits(f, "INBOX", ": b", false), "2");
}

/* Poll (up to 10 s) until the unindexed UIDs of INBOX are want: the writer backfills
 * while idle. */
static void wait_unindexed(struct fixture *f, const char *want)
{
	for (int i = 0; i < 1000 && strcmp(unindexed(f, "INBOX"), want) != 0; i++)
		usleep(10000);
	assert_string_equal(unindexed(f, "INBOX"), want);
}

/* A message stored without the texter (before the index existed) is listed as unindexed
 * and never as a hit, until the writer's backfill gives it its texts once a texter is set;
 * a message over the cap stays unindexed (recorded as not indexable). */
static void test_unindexed_and_backfill(void **state)
{
	struct fixture *f = fixture_get(state);
	store_set_search_texter(f->store, NULL, NULL, 0);
	deliver(f, "Subject: old\r\n\r\nancient words\r\n");
	char big[512];
	snprintf(big, sizeof(big), "Subject: big\r\n\r\nancient %0400d\r\n", 0);
	deliver(f, big);
	assert_string_equal(unindexed(f, "INBOX"), "1 2");
	assert_string_equal(hits(f, "INBOX", "ancient", true), "");
	assert_int_equal(text_rows(f), 0);
	store_set_search_texter(f->store, imap_search_doc_index_fd, NULL, 64);
	deliver(f, "Subject: new\r\n\r\nancient words again\r\n");
	wait_unindexed(f, "2");
	assert_string_equal(hits(f, "INBOX", "ancient", true), "1 3");
	assert_string_equal(hits(f, "INBOX", "an", true), "1 3");
	assert_int_equal(text_rows(f), 3); /* 2: a row saying it is not indexable */
}

/* A message of 200 KB of random printable ASCII (seed: its first octets differ). */
static char *noise_message(uint32_t seed)
{
	size_t n = 200000;
	char *m = malloc(n + 64);
	int o = snprintf(m, 64, "Subject: noise %u\r\n\r\n", (unsigned)seed);
	for (size_t i = 0; i < n; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 17;
		seed ^= seed << 5;
		m[(size_t)o + i] = i % 78 == 77 ? '\n' : (char)(33 + seed % 94);
	}
	m[(size_t)o + n] = '\0';
	return m;
}

/* A text whose distinct trigrams would make FTS5's insertion quadratic
 * (store_trigram.h) is recorded as not indexable, at delivery and at backfill; its
 * searches read its file. */
static void test_noise_not_indexed(void **state)
{
	struct fixture *f = fixture_get(state);
	char *a = noise_message(5), *b = noise_message(6);
	deliver(f, a);
	deliver(f, "Subject: calm\r\n\r\nquiet words\r\n");
	assert_string_equal(unindexed(f, "INBOX"), "1");
	assert_string_equal(hits(f, "INBOX", "quiet", true), "2");
	store_set_search_texter(f->store, NULL, NULL, 0);
	deliver(f, b);
	assert_string_equal(unindexed(f, "INBOX"), "1 3");
	store_set_search_texter(f->store, imap_search_doc_index_fd, NULL, 1 << 20);
	for (int i = 0; i < 1000 && text_rows(f) != 3; i++)
		usleep(10000);
	assert_int_equal(text_rows(f), 3); /* 1 and 3: rows saying they are not indexable */
	assert_string_equal(unindexed(f, "INBOX"), "1 3");
	free(a);
	free(b);
}

/* Run sql on the test's database (outside the store). */
static void db_exec(struct fixture *f, const char *sqlite_sql, const char *pg_sql)
{
	if (engine_is_pg(&f->eng)) {
		PGconn *c = PQconnectdb(f->eng.target);
		PGresult *r = PQexec(c, pg_sql);
		assert_true(PQresultStatus(r) == PGRES_TUPLES_OK ||
		            PQresultStatus(r) == PGRES_COMMAND_OK);
		PQclear(r);
		PQfinish(c);
		return;
	}
	char path[512];
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/posthorn.db", f->dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_exec(db, sqlite_sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* The backfill looks through message ids a span at a time and jumps over a gap wider
 * than a span to the next id: a message far beyond the first is reached. */
static void test_backfill_over_a_gap(void **state)
{
	struct fixture *f = fixture_get(state);
	store_set_search_texter(f->store, NULL, NULL, 0);
	deliver(f, "Subject: first\r\n\r\nfirst words\r\n");
	db_exec(f,
	        "INSERT INTO messages (id, sha256, size, received_at, mail_from)"
	        " VALUES (20000, printf('%064d', 0), 0, 0, '')",
	        "SELECT setval(pg_get_serial_sequence('messages', 'id'), 20000)");
	deliver(f, "Subject: far\r\n\r\nfar words\r\n");
	assert_string_equal(unindexed(f, "INBOX"), "1 2");
	store_set_search_texter(f->store, imap_search_doc_index_fd, NULL, 1 << 20);
	wait_unindexed(f, "");
	assert_string_equal(hits(f, "INBOX", "words", true), "1 2");
}

/* Copies share the content's text; it goes with the last message using the content. */
static void test_copies_and_expunge(void **state)
{
	struct fixture *f = fixture_get(state);
	struct store_mailbox_op mk = {
	    .action = STORE_MAILBOX_CREATE, .account_id = f->a, .name = "Archive"};
	(void)store_mailbox_change_wait(f->store, &mk); /* made with the account, or now */
	assert_int_equal(store_mailbox_exists(f->store, f->a, "Archive"), 1);
	deliver(f, "Subject: shared\r\n\r\nshared content here\r\n");
	deliver(f, "Subject: other\r\n\r\nsomething else\r\n");
	uint32_t one = 1;
	struct store_copy c = {.account_id = f->a,
	                       .mailbox = "INBOX",
	                       .target = "Archive",
	                       .uids = &one,
	                       .uid_count = 1};
	assert_int_equal(store_copy_wait(f->store, &c), 0);
	free(c.source_uids);
	free(c.target_uids);
	assert_int_equal(text_rows(f), 2);
	assert_string_equal(hits(f, "Archive", "content", true), "1");
	struct store_expunge x = {
	    .account_id = f->a, .mailbox = "INBOX", .uids = &one, .uid_count = 1};
	assert_int_equal(store_expunge_wait(f->store, &x), 0);
	assert_string_equal(hits(f, "INBOX", "content", true), "");
	assert_string_equal(hits(f, "Archive", "content", true), "1");
	assert_int_equal(text_rows(f), 2);
	x = (struct store_expunge){
	    .account_id = f->a, .mailbox = "Archive", .uids = &one, .uid_count = 1};
	assert_int_equal(store_expunge_wait(f->store, &x), 0);
	assert_string_equal(hits(f, "Archive", "content", true), "");
	assert_int_equal(text_rows(f), 1);
	/* the same octets again: a new row, indexed again */
	deliver(f, "Subject: shared\r\n\r\nshared content here\r\n");
	assert_string_equal(hits(f, "INBOX", "content", true), "3");
	assert_int_equal(text_rows(f), 2);
}

/* store_search_hdr_each(): the header lines, in UID order, of the messages whose lines
 * hold their own fields apart and contain the prefilter. */
struct hdr_seen {
	char out[512];
};

static void hdr_seen_row(void *ctx, uint32_t uid, const char *hdr, size_t len)
{
	struct hdr_seen *h = ctx;
	assert_int_equal(strlen(hdr), len);
	assert_true(hdr[0] == '\n');
	snprintf(h->out + strlen(h->out), sizeof(h->out) - strlen(h->out), "%s%u",
	         h->out[0] != '\0' ? " " : "", uid);
}

static const char *hdr_uids(struct fixture *f, const char *prefilter)
{
	static struct hdr_seen h;
	h.out[0] = '\0';
	if (store_search_hdr_each(f->store, f->a, "INBOX", prefilter, hdr_seen_row, &h) != 1)
		return "-";
	return h.out;
}

static const char *hdr_unindexed(struct fixture *f)
{
	static char out[256];
	uint32_t *uids;
	size_t n;
	out[0] = '\0';
	if (store_search_hdr_unindexed_uids(f->store, f->a, "INBOX", &uids, &n) != 1)
		return "-";
	for (size_t i = 0; i < n; i++)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%u", i > 0 ? " " : "",
		         uids[i]);
	free(uids);
	return out;
}

/* Header keys from the stored header lines; a row stored before they held the message's
 * fields apart (no LF first) is not given and is made again by the backfill. */
static void test_header_fields(void **state)
{
	struct fixture *f = fixture_get(state);
	deliver(f, qp_latin1);
	deliver(f, "Subject: =?utf-8?q?a=0Ab?=\r\n\r\nan encoded LF in a field\r\n");
	deliver(f, b64_multipart);
	assert_string_equal(hdr_unindexed(f), "2");
	assert_string_equal(hdr_uids(f, NULL), "1 3");
	assert_string_equal(hdr_uids(f, "rené"), "1");
	assert_string_equal(hdr_uids(f, "subject: "), "1 3");
	assert_string_equal(hdr_uids(f, "octet-stream"), "3"); /* a part's line: a candidate */
	assert_string_equal(hdr_uids(f, "%"), "");
	assert_string_equal(hdr_uids(f, "né"), "1");    /* under 3 characters: no trigram */
	assert_string_equal(unindexed(f, "INBOX"), ""); /* TEXT and BODY: all three */
	assert_string_equal(hits(f, "INBOX", "a", false), "1 2 3");
	/* message 1's row as an older server wrote it */
	db_exec(f,
	        "DELETE FROM search_texts WHERE message_id = (SELECT message_id FROM"
	        " mailbox_entries WHERE uid = 1);"
	        "INSERT INTO search_texts (message_id, complete, hdr, body) SELECT message_id, 1,"
	        " 'from: rené old' || char(10), 'old body' || char(10) FROM mailbox_entries"
	        " WHERE uid = 1",
	        "DELETE FROM search_texts WHERE message_id = (SELECT message_id FROM"
	        " mailbox_entries WHERE uid = 1);"
	        "INSERT INTO search_texts (message_id, complete, hdr, body) SELECT message_id, 1,"
	        " 'from: rené old' || chr(10), 'old body' || chr(10) FROM mailbox_entries"
	        " WHERE uid = 1");
	assert_string_equal(hdr_unindexed(f), "1 2");
	assert_string_equal(hdr_uids(f, "rené"), "");
	assert_string_equal(hits(f, "INBOX", "old body", true), "1");
	store_set_search_texter(f->store, imap_search_doc_index_fd, NULL, 1 << 20);
	for (int i = 0; i < 500 && strcmp(hdr_unindexed(f), "2") != 0; i++)
		usleep(10000);
	assert_string_equal(hdr_unindexed(f), "2");
	assert_string_equal(hdr_uids(f, "rené"), "1");
	assert_string_equal(hits(f, "INBOX", "old body", true), ""); /* the FTS row too */
	assert_string_equal(hits(f, "INBOX", "caf", true), "1");
	assert_int_equal(text_rows(f), 3);
}

/* imap_search_doc_index(): LF after each text, NUL as LF, the cap, UTF-8 only. */
static void test_doc_index(void **state)
{
	(void)state;
	static const unsigned char msg[] = "Subject: Hi\r\nX-A: b\r\n\r\nBody\0Text\r\n";
	char *h, *b;
	assert_int_equal(imap_search_doc_index(msg, sizeof(msg) - 1, 1000, &h, &b), 1);
	/* the message's own fields apart: LF first, an empty line after them */
	assert_string_equal(h, "\nsubject: hi\nx-a: b\n\n");
	assert_string_equal(b, "body\ntext\r\n\n");
	free(h);
	free(b);
	assert_int_equal(imap_search_doc_index(msg, sizeof(msg) - 1, 20, &h, &b), 0);
	assert_null(h);
	assert_null(b);
	static const unsigned char latin[] = "Subject: x\r\n\r\ncaf\xe9\r\n";
	assert_int_equal(imap_search_doc_index(latin, sizeof(latin) - 1, 1000, &h, &b), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH(test_index_at_delivery),      BOTH(test_short_needles),
	    BOTH(test_unindexed_and_backfill), BOTH(test_backfill_over_a_gap),
	    BOTH(test_copies_and_expunge),     BOTH(test_noise_not_indexed),
	    cmocka_unit_test(test_doc_index),  BOTH(test_header_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
