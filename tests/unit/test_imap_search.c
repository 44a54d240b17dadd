/* Unit tests for imap/imap_search and imap/imap_search_doc: parsing every search key, RETURN
 * options and CHARSET, the errors (unknown keys, missing or malformed arguments, too deep nesting),
 * and matching: flags, keywords, sizes, internal and sent dates at day boundaries, sequence and UID
 * sets with '*' and "$", header keys on unfolded and RFC 2047 decoded values, BODY and TEXT through
 * base64, quoted-printable, charsets and nested MIME, case folding beyond ASCII, three-valued logic
 * (data asked for only when a key needs it), and broken input. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "imap/imap_parser.h"
#include "imap/imap_search.h"
#include "imap/imap_search_doc.h"
#include "mime/mime.h"
#include "store/store.h"
#include "imap_args.h"
#include "core/banned.h"

static struct imap_search *parse_ok(const char *criteria)
{
	struct imap_search *search = NULL;
	const char *error = NULL;
	if (imap_search_parse(arena, imap_args_of("SEARCH", criteria), &search, &error) != 0)
		fail_msg("'%s' refused: %s", criteria, error);
	assert_non_null(search);
	return search;
}

static void parse_bad(const char *criteria)
{
	struct imap_search *search = NULL;
	const char *error = NULL;
	if (imap_search_parse(arena, imap_args_of("SEARCH", criteria), &search, &error) == 0)
		fail_msg("'%s' accepted", criteria);
	assert_non_null(error);
	assert_null(search);
}

/* A message for matching: defaults that the tests change. */
static struct imap_search_msg msg_default(void)
{
	return (struct imap_search_msg){
	    .seq = 2,
	    .uid = 20,
	    .size = 1000,
	    .internal_date = 1700000000, /* 2023-11-14 22:13:20 UTC */
	    .flags = 0,
	    .keywords = NULL,
	};
}

static const struct imap_search_context ctx_default = {.count = 5, .max_uid = 50};

/* Match criteria against msg and text (NULL: the octets are not needed, and must not be:
 * -1 fails the test). */
static int match_full(const char *criteria, const struct imap_search_msg *m,
                      const struct imap_search_context *ctx, const char *text)
{
	struct imap_search *search = parse_ok(criteria);
	int r = imap_search_match(search, ctx, m, NULL, 0);
	if (text == NULL) {
		if (r < 0)
			fail_msg("'%s' wants the message's octets", criteria);
		return r;
	}
	int full = imap_search_match(search, ctx, m, (const unsigned char *)text, strlen(text));
	assert_true(full == 0 || full == 1);
	if (r >= 0) /* known without the octets: the same answer with them */
		assert_int_equal(r, full);
	return full;
}

static int match(const char *criteria, const char *text)
{
	struct imap_search_msg m = msg_default();
	return match_full(criteria, &m, &ctx_default, text);
}

static int match_msg(const char *criteria, const struct imap_search_msg *m)
{
	return match_full(criteria, m, &ctx_default, NULL);
}

static const char *simple_msg = "From: \"Alice Example\" <alice@example.test>\r\n"
                                "To: bob@example.test,\r\n"
                                "\tcarol@example.test\r\n"
                                "Cc: dave@example.test\r\n"
                                "Bcc: eve@example.test\r\n"
                                "Subject: Quarterly report\r\n"
                                " for Q3\r\n"
                                "Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
                                "X-Custom: Special-Value\r\n"
                                "\r\n"
                                "Hello Bob,\r\n"
                                "the numbers are in.\r\n";

/* ---- parsing ---- */

static void test_parse_keys(void **state)
{
	(void)state;
	static const char *const ok[] = {
	    "ALL",
	    "all",
	    "ANSWERED",
	    "BCC x",
	    "BEFORE 1-Feb-1994",
	    "BODY \"some text\"",
	    "CC x",
	    "DELETED",
	    "DRAFT",
	    "FLAGGED",
	    "FROM x",
	    "HEADER X-Foo bar",
	    "HEADER \"X-Foo\" \"\"",
	    "KEYWORD $Forwarded",
	    "LARGER 100",
	    "NEW",
	    "NOT SEEN",
	    "OLD",
	    "ON \"01-Feb-1994\"",
	    "OR SEEN FLAGGED",
	    "RECENT",
	    "SEEN",
	    "SENTBEFORE 1-Feb-1994",
	    "SENTON 1-feb-1994",
	    "SENTSINCE 31-Dec-1999",
	    "SINCE 1-Jan-2000",
	    "SMALLER 9223372036854775807",
	    "SUBJECT x",
	    "TEXT x",
	    "TO x",
	    "UID 1:*",
	    "UNANSWERED",
	    "UNDELETED",
	    "UNDRAFT",
	    "UNFLAGGED",
	    "UNKEYWORD foo",
	    "UNSEEN",
	    "1:3,5",
	    "*",
	    "$",
	    "UID $",
	    "(SEEN FLAGGED)",
	    "((SEEN))",
	    "OR (SEEN DRAFT) NOT (FLAGGED)",
	    "SUBJECT NIL", /* literals: see test_parse_literal */
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		parse_ok(ok[i]);
}

static void test_parse_literal(void **state)
{
	(void)state;
	struct imap_literal lit;
	const char *error = NULL;
	const char *l1 = "t SEARCH CHARSET UTF-8 SUBJECT {6}";
	assert_int_equal(imap_parser_feed_line(parser, l1, strlen(l1), &lit, &error), 0);
	assert_int_equal(
	    imap_parser_feed_literal(parser, (const unsigned char *)"Gr\xC3\xBC\xC3\x9F", 6), 1);
	assert_int_equal(imap_parser_feed_line(parser, " SEEN", 5, &lit, &error), 1);
	struct imap_search *search = NULL;
	assert_int_equal(imap_search_parse(arena, imap_parser_args(parser), &search, &error), 0);
	assert_string_equal(search->charset, "UTF-8");
	struct imap_search_msg m = msg_default();
	m.flags = STORE_FLAG_SEEN;
	const char *text = "Subject: GR\xC3\x9C\xC3\x9F"
	                   "e\r\n\r\n";
	assert_int_equal(
	    imap_search_match(search, &ctx_default, &m, (const unsigned char *)text, strlen(text)),
	    1);
}

static void test_parse_errors(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "",
	    "FOO",
	    "BEFORE",
	    "BEFORE 1-Foo-1994",
	    "BEFORE 32-Jan-1994",
	    "BEFORE 1-Jan-94",
	    "BEFORE 0-Jan-1994",
	    "BEFORE 1-Jan-1994x",
	    "LARGER",
	    "LARGER -1",
	    "LARGER 1x",
	    "LARGER 9223372036854775808",
	    "LARGER 18446744073709551616",
	    "SMALLER abc",
	    "HEADER",
	    "HEADER X-Foo",
	    "SUBJECT",
	    "BODY",
	    "TEXT",
	    "FROM",
	    "KEYWORD",
	    "KEYWORD \"x\"",
	    "UID",
	    "UID x",
	    "UID 0",
	    "1:x",
	    "0",
	    "NOT",
	    "OR SEEN",
	    "()",
	    "(SEEN",
	    "RETURN (FOO) ALL",
	    "RETURN ALL",
	    "RETURN (MIN)",
	    "CHARSET",
	    "CHARSET UTF-8",
	    "SEEN \"quoted\"",
	    "(SEEN) ()",
	    "$:3",
	    "ON (1-Jan-2000)",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct imap_literal lit;
		const char *error = NULL;
		char line[256];
		snprintf(line, sizeof(line), "t SEARCH %s", bad[i]);
		int r = imap_parser_feed_line(parser, line, strlen(line), &lit, &error);
		if (r < 0)
			continue; /* the command parser refuses it already */
		assert_int_equal(r, 1);
		struct imap_search *search = NULL;
		error = NULL;
		if (imap_search_parse(arena, imap_parser_args(parser), &search, &error) == 0)
			fail_msg("'%s' accepted", bad[i]);
		assert_non_null(error);
	}
}

static void test_parse_depth(void **state)
{
	(void)state;
	char crit[2048] = "";
	for (int i = 0; i < IMAP_SEARCH_DEPTH_MAX; i++)
		strncat(crit, "NOT ", sizeof(crit) - strlen(crit) - 1);
	strncat(crit, "SEEN", sizeof(crit) - strlen(crit) - 1);
	parse_ok(crit);
	char deeper[2100];
	snprintf(deeper, sizeof(deeper), "NOT %s", crit);
	parse_bad(deeper);
	/* OR chains count too */
	crit[0] = '\0';
	for (int i = 0; i < IMAP_SEARCH_DEPTH_MAX + 1; i++)
		strncat(crit, "OR SEEN ", sizeof(crit) - strlen(crit) - 1);
	strncat(crit, "SEEN", sizeof(crit) - strlen(crit) - 1);
	parse_bad(crit);
}

static void test_parse_return_and_charset(void **state)
{
	(void)state;
	struct imap_search *s = parse_ok("ALL");
	assert_false(s->has_return);
	assert_null(s->charset);
	assert_int_equal(s->needs, 0);
	s = parse_ok("RETURN () ALL");
	assert_true(s->has_return);
	assert_int_equal(s->ret, IMAP_SEARCH_RETURN_ALL);
	s = parse_ok("RETURN (min MAX Count) SEEN");
	assert_int_equal(s->ret, IMAP_SEARCH_RETURN_MIN | IMAP_SEARCH_RETURN_MAX |
	                             IMAP_SEARCH_RETURN_COUNT);
	s = parse_ok("RETURN (SAVE) CHARSET us-ascii 1:*");
	assert_int_equal(s->ret, IMAP_SEARCH_RETURN_SAVE);
	assert_string_equal(s->charset, "us-ascii");
	assert_true(imap_search_charset_supported(s->charset));
	s = parse_ok("CHARSET \"ISO-8859-1\" ALL");
	assert_false(imap_search_charset_supported(s->charset));
	assert_true(imap_search_charset_supported("utf-8"));
	assert_false(imap_search_charset_supported("UTF8"));
	assert_false(parse_ok("UID 1:3")->uses_saved);
	assert_true(parse_ok("NOT $")->uses_saved);
	assert_true(parse_ok("UID $")->uses_saved);
	/* UIDONLY (RFC 9586 §3): message numbers in the criteria are refused */
	assert_false(parse_ok("UID 1:3")->uses_seq);
	assert_false(parse_ok("NOT $")->uses_seq);
	assert_true(parse_ok("SEEN OR 1:3 UID 5")->uses_seq);
	assert_true(parse_ok("NOT (*)")->uses_seq);
	assert_int_equal(parse_ok("FROM x")->needs, IMAP_SEARCH_NEED_HEADER);
	assert_int_equal(parse_ok("SENTON 1-Jan-2000")->needs, IMAP_SEARCH_NEED_HEADER);
	assert_int_equal(parse_ok("OR SEEN BODY x")->needs,
	                 IMAP_SEARCH_NEED_HEADER | IMAP_SEARCH_NEED_BODY);
	assert_int_equal(parse_ok("TEXT x")->needs,
	                 IMAP_SEARCH_NEED_HEADER | IMAP_SEARCH_NEED_BODY);
	assert_int_equal(parse_ok("LARGER 5 ON 1-Jan-2000 KEYWORD x 1:2")->needs, 0);
}

/* ---- matching without the octets ---- */

static void test_flags(void **state)
{
	(void)state;
	struct imap_search_msg m = msg_default();
	m.flags = STORE_FLAG_SEEN | STORE_FLAG_FLAGGED;
	assert_int_equal(match_msg("ALL", &m), 1);
	assert_int_equal(match_msg("SEEN", &m), 1);
	assert_int_equal(match_msg("FLAGGED", &m), 1);
	assert_int_equal(match_msg("ANSWERED", &m), 0);
	assert_int_equal(match_msg("DELETED", &m), 0);
	assert_int_equal(match_msg("DRAFT", &m), 0);
	assert_int_equal(match_msg("UNSEEN", &m), 0);
	assert_int_equal(match_msg("UNFLAGGED", &m), 0);
	assert_int_equal(match_msg("UNANSWERED", &m), 1);
	assert_int_equal(match_msg("UNDELETED", &m), 1);
	assert_int_equal(match_msg("UNDRAFT", &m), 1);
	assert_int_equal(match_msg("seen flagged", &m), 1);
	assert_int_equal(match_msg("SEEN DRAFT", &m), 0);
	assert_int_equal(match_msg("OR DRAFT SEEN", &m), 1);
	assert_int_equal(match_msg("OR DRAFT DELETED", &m), 0);
	assert_int_equal(match_msg("NOT (SEEN DRAFT)", &m), 1);
	assert_int_equal(match_msg("NOT NOT SEEN", &m), 1);
	/* not \Recent in this session */
	assert_int_equal(match_msg("RECENT", &m), 0);
	assert_int_equal(match_msg("NEW", &m), 0);
	assert_int_equal(match_msg("OLD", &m), 1);
	/* \Recent (RFC 3501 §6.4.4): NEW = RECENT UNSEEN, OLD = NOT RECENT */
	m.flags |= IMAP_SEARCH_FLAG_RECENT;
	assert_int_equal(match_msg("RECENT", &m), 1);
	assert_int_equal(match_msg("NEW", &m), 0); /* seen */
	assert_int_equal(match_msg("OLD", &m), 0);
	m.flags &= ~STORE_FLAG_SEEN;
	assert_int_equal(match_msg("NEW", &m), 1);
	assert_int_equal(match_msg("NOT NEW", &m), 0);
	m.flags &= ~IMAP_SEARCH_FLAG_RECENT;
	assert_int_equal(match_msg("NEW", &m), 0);
	m.flags = STORE_FLAG_DELETED | STORE_FLAG_DRAFT | STORE_FLAG_ANSWERED;
	assert_int_equal(match_msg("DELETED DRAFT ANSWERED UNSEEN UNFLAGGED", &m), 1);
}

static void test_keywords(void **state)
{
	(void)state;
	struct imap_search_msg m = msg_default();
	assert_int_equal(match_msg("KEYWORD $Forwarded", &m), 0);
	assert_int_equal(match_msg("UNKEYWORD $Forwarded", &m), 1);
	m.keywords = "$Forwarded Work $Junk";
	assert_int_equal(match_msg("KEYWORD $forwarded", &m), 1);
	assert_int_equal(match_msg("KEYWORD work", &m), 1);
	assert_int_equal(match_msg("KEYWORD $Junk", &m), 1);
	assert_int_equal(match_msg("KEYWORD Wor", &m), 0);
	assert_int_equal(match_msg("KEYWORD Work2", &m), 0);
	assert_int_equal(match_msg("UNKEYWORD Work", &m), 0);
	assert_int_equal(match_msg("UNKEYWORD Personal", &m), 1);
}

/* A search outlives its command (it runs in steps, and on the store's reader threads it
 * waits for reads): the criteria keep no pointer into the command's arguments, whose arena
 * is reset for the next command. */
static void test_criteria_outlive_the_command(void **state)
{
	(void)state;
	struct arena *keep = arena_new(4096);
	struct imap_search *search = NULL;
	const char *error = NULL;
	assert_int_equal(
	    imap_search_parse(keep, imap_args_of("SEARCH", "KEYWORD Work"), &search, &error), 0);
	imap_parser_reset(parser);
	arena_reset(arena);
	(void)imap_args_of("SEARCH", "KEYWORD Xxxx UNKEYWORD Yyyy"); /* reuses the arena's memory */
	struct imap_search_msg m = msg_default();
	m.keywords = "Work";
	assert_int_equal(imap_search_match(search, &ctx_default, &m, NULL, 0), 1);
	arena_free(&keep);
}

static void test_sizes(void **state)
{
	(void)state;
	struct imap_search_msg m = msg_default(); /* 1000 octets */
	assert_int_equal(match_msg("LARGER 999", &m), 1);
	assert_int_equal(match_msg("LARGER 1000", &m), 0);
	assert_int_equal(match_msg("SMALLER 1001", &m), 1);
	assert_int_equal(match_msg("SMALLER 1000", &m), 0);
	assert_int_equal(match_msg("LARGER 0", &m), 1);
	assert_int_equal(match_msg("SMALLER 0", &m), 0);
	m.size = 5000000000ULL;
	assert_int_equal(match_msg("LARGER 4294967296", &m), 1);
}

/* MODSEQ (RFC 7162 §3.1.5): at least n; the entry-name form parsed and ignored. */
static void test_modseq(void **state)
{
	(void)state;
	struct imap_search_msg m = msg_default();
	m.modseq = 500;
	assert_int_equal(match_msg("MODSEQ 499", &m), 1);
	assert_int_equal(match_msg("MODSEQ 500", &m), 1); /* equal to or greater than */
	assert_int_equal(match_msg("MODSEQ 501", &m), 0);
	assert_int_equal(match_msg("MODSEQ 0", &m), 1);
	assert_int_equal(match_msg("modseq \"/flags/\\\\Seen\" all 500", &m), 1);
	assert_int_equal(match_msg("MODSEQ \"/flags/$Junk\" PRIV 501", &m), 0);
	assert_int_equal(match_msg("MODSEQ \"/flags/x\" shared 1 UNSEEN", &m), 1);
	assert_int_equal(match_msg("NOT MODSEQ 501", &m), 1);
	assert_int_equal(match_msg("OR MODSEQ 9223372036854775807 LARGER 5", &m), 1);
	assert_true(parse_ok("MODSEQ 5")->modseq);
	assert_true(parse_ok("UNSEEN (OR SEEN MODSEQ 5)")->modseq);
	assert_false(parse_ok("UNSEEN LARGER 5")->modseq);
	assert_int_equal(parse_ok("MODSEQ 5")->needs, 0);
	static const char *const bad[] = {
	    "MODSEQ",
	    "MODSEQ x",
	    "MODSEQ -1",
	    "MODSEQ 9223372036854775808",
	    "MODSEQ \"/flags/x\"",
	    "MODSEQ \"/flags/x\" all",
	    "MODSEQ \"/flags/x\" 5",
	    "MODSEQ \"/flags/x\" other 5",
	    "MODSEQ \"/flags/\" all 5",
	    "MODSEQ \"/other/x\" all 5",
	    "MODSEQ all 5",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_bad(bad[i]);
}

static void test_internal_dates(void **state)
{
	(void)state;
	struct imap_search_msg m = msg_default(); /* 14-Nov-2023 22:13:20 UTC */
	assert_int_equal(match_msg("ON 14-Nov-2023", &m), 1);
	assert_int_equal(match_msg("ON 15-Nov-2023", &m), 0);
	assert_int_equal(match_msg("BEFORE 14-Nov-2023", &m), 0);
	assert_int_equal(match_msg("BEFORE 15-Nov-2023", &m), 1);
	assert_int_equal(match_msg("SINCE 14-Nov-2023", &m), 1);
	assert_int_equal(match_msg("SINCE 15-Nov-2023", &m), 0);
	assert_int_equal(match_msg("SINCE 1-Jan-1970", &m), 1);
	assert_int_equal(match_msg("BEFORE 1-Mar-2024", &m), 1);
	m.internal_date = 1709164800; /* 29-Feb-2024 00:00:00 UTC: leap day, first second */
	assert_int_equal(match_msg("ON 29-Feb-2024", &m), 1);
	assert_int_equal(match_msg("ON 28-Feb-2024", &m), 0);
	m.internal_date = 1709164800 - 1; /* last second of 28 Feb */
	assert_int_equal(match_msg("ON 28-Feb-2024", &m), 1);
	assert_int_equal(match_msg("SINCE 29-Feb-2024", &m), 0);
	m.internal_date = -1; /* 31-Dec-1969 23:59:59 */
	assert_int_equal(match_msg("ON 31-Dec-1969", &m), 1);
	assert_int_equal(match_msg("BEFORE 1-Jan-1970", &m), 1);
	m.internal_date = 0;
	assert_int_equal(match_msg("ON 1-Jan-1970", &m), 1);
}

/* RFC 5032 WITHIN: OLDER n / YOUNGER n count seconds back from ctx->now on the internal
 * date; they are complementary, and 0 or a non-number is BAD. */
static void test_within(void **state)
{
	(void)state;
	struct imap_search_msg m = msg_default(); /* internal date 1700000000 */
	struct imap_search_context ctx = ctx_default;
	ctx.now = 1700000000 + 3600; /* an hour later */
	assert_int_equal(match_full("OLDER 3600", &m, &ctx, NULL), 1);
	assert_int_equal(match_full("OLDER 3601", &m, &ctx, NULL), 0);
	assert_int_equal(match_full("YOUNGER 3600", &m, &ctx, NULL), 0);
	assert_int_equal(match_full("YOUNGER 3601", &m, &ctx, NULL), 1);
	assert_int_equal(match_full("NOT YOUNGER 60", &m, &ctx, NULL), 1);
	assert_int_equal(match_full("OR OLDER 7200 YOUNGER 60", &m, &ctx, NULL), 0);
	assert_int_equal(match_full("older 60 younger 86400", &m, &ctx, NULL), 1);
	parse_bad("OLDER 0");
	parse_bad("YOUNGER");
	parse_bad("YOUNGER -5");
	parse_bad("OLDER 1h");
	parse_bad("OLDER 99999999999");
}

/* SAVEDBEFORE/SAVEDON/SAVEDSINCE (RFC 8514 §4.2) look at the save date, not the internal
 * date; SAVEDATESUPPORTED matches every message. */
static void test_save_dates(void **state)
{
	(void)state;
	struct imap_search_msg m = msg_default(); /* internal date 14-Nov-2023 */
	m.save_date = 1709164800;                 /* 29-Feb-2024 00:00:00 UTC */
	assert_int_equal(match_msg("SAVEDON 29-Feb-2024", &m), 1);
	assert_int_equal(match_msg("SAVEDON 14-Nov-2023", &m), 0);
	assert_int_equal(match_msg("ON 14-Nov-2023", &m), 1);
	assert_int_equal(match_msg("SAVEDBEFORE 29-Feb-2024", &m), 0);
	assert_int_equal(match_msg("SAVEDBEFORE 1-Mar-2024", &m), 1);
	assert_int_equal(match_msg("SAVEDSINCE 29-Feb-2024", &m), 1);
	assert_int_equal(match_msg("SAVEDSINCE 1-Mar-2024", &m), 0);
	m.save_date = 1709164800 - 1;
	assert_int_equal(match_msg("SAVEDON 28-Feb-2024", &m), 1);
	assert_int_equal(match_msg("SAVEDATESUPPORTED", &m), 1);
	assert_int_equal(match_msg("NOT SAVEDATESUPPORTED", &m), 0);
	parse_bad("SAVEDON");
	parse_bad("SAVEDBEFORE 2024-02-29");
	parse_bad("SAVEDSINCE (1-Jan-2024)");
}

/* EMAILID and THREADID (RFC 8474 §6): the syntax of objectid, the keys the caller resolves,
 * and THREADID matching nothing. */
static void test_object_ids(void **state)
{
	(void)state;
	struct imap_search *s = parse_ok("OR EMAILID M1_a-Z EMAILID abc");
	assert_non_null(s->emailids);
	assert_non_null(s->emailids->next);
	assert_null(s->emailids->next->next);
	assert_string_equal(s->emailids->id, "abc"); /* the last key first */
	assert_string_equal(s->emailids->next->id, "M1_a-Z");
	uint32_t uids[] = {3, 20, 40};
	s->emailids->next->uids = uids;
	s->emailids->next->count = 3;
	struct imap_search_msg m = msg_default(); /* UID 20 */
	assert_int_equal(imap_search_match(s, &ctx_default, &m, NULL, 0), 1);
	m.uid = 21;
	assert_int_equal(imap_search_match(s, &ctx_default, &m, NULL, 0), 0);
	m.uid = 40;
	assert_int_equal(imap_search_match(s, &ctx_default, &m, NULL, 0), 1);
	s->emailids->next->uids = NULL; /* the test's array */
	/* A key nobody resolved matches nothing. */
	assert_int_equal(match_msg("EMAILID Mabc", &m), 0);
	assert_int_equal(match_msg("NOT EMAILID Mabc", &m), 1);
	assert_int_equal(match_msg("THREADID T1", &m), 0);
	assert_int_equal(match_msg("NOT THREADID T1", &m), 1);
	assert_null(parse_ok("THREADID T1")->emailids);
	char id[300];
	memset(id, 'a', 255);
	snprintf(id + 255, sizeof(id) - 255, "%s", "");
	char crit[320];
	snprintf(crit, sizeof(crit), "EMAILID %s", id);
	(void)parse_ok(crit);
	snprintf(crit, sizeof(crit), "EMAILID %sa", id); /* 256 characters */
	parse_bad(crit);
	parse_bad("EMAILID");
	parse_bad("EMAILID a.b");
	parse_bad("EMAILID \"\"");
	parse_bad("THREADID a+b");
	parse_bad("EMAILID (abc)");
}

static void test_sets(void **state)
{
	(void)state;
	struct imap_search_msg m = msg_default(); /* seq 2, uid 20; 5 messages, max uid 50 */
	assert_int_equal(match_msg("2", &m), 1);
	assert_int_equal(match_msg("1,3:5", &m), 0);
	assert_int_equal(match_msg("1:3", &m), 1);
	assert_int_equal(match_msg("3:1", &m), 1);
	assert_int_equal(match_msg("*", &m), 0);
	assert_int_equal(match_msg("*:2", &m), 1);
	assert_int_equal(match_msg("100", &m), 0);
	assert_int_equal(match_msg("UID 20", &m), 1);
	assert_int_equal(match_msg("UID 1:19,21:*", &m), 0);
	assert_int_equal(match_msg("UID 10:30", &m), 1);
	assert_int_equal(match_msg("UID *", &m), 0);
	m.uid = 50;
	assert_int_equal(match_msg("UID *", &m), 1);
	assert_int_equal(match_msg("UID 60:*", &m), 1); /* 50:60 */
	/* "$": the saved UIDs, in both forms */
	static const uint32_t saved[] = {3, 20, 44};
	struct imap_search_context ctx = ctx_default;
	m.uid = 20;
	assert_int_equal(match_full("$", &m, &ctx, NULL), 0); /* nothing saved */
	ctx.saved = saved;
	ctx.saved_count = 3;
	assert_int_equal(match_full("$", &m, &ctx, NULL), 1);
	assert_int_equal(match_full("UID $", &m, &ctx, NULL), 1);
	assert_int_equal(match_full("NOT $", &m, &ctx, NULL), 0);
	m.uid = 21;
	assert_int_equal(match_full("$", &m, &ctx, NULL), 0);
	m.uid = 44;
	assert_int_equal(match_full("UID $", &m, &ctx, NULL), 1);
	/* an empty mailbox: '*' is no message */
	ctx = (struct imap_search_context){0};
	assert_int_equal(match_full("*", &m, &ctx, NULL), 0);
}

/* ---- matching on the octets ---- */

static void test_three_valued(void **state)
{
	(void)state;
	struct imap_search_msg m = msg_default();
	struct imap_search *s = parse_ok("SUBJECT report");
	assert_int_equal(imap_search_match(s, &ctx_default, &m, NULL, 0), -1);
	/* decided by a flag: no octets needed */
	s = parse_ok("SEEN SUBJECT report");
	assert_int_equal(imap_search_match(s, &ctx_default, &m, NULL, 0), 0);
	s = parse_ok("OR UNSEEN BODY x");
	assert_int_equal(imap_search_match(s, &ctx_default, &m, NULL, 0), 1);
	s = parse_ok("OR SEEN BODY x");
	assert_int_equal(imap_search_match(s, &ctx_default, &m, NULL, 0), -1);
	s = parse_ok("NOT TEXT x");
	assert_int_equal(imap_search_match(s, &ctx_default, &m, NULL, 0), -1);
	s = parse_ok("SENTON 1-Jul-2003");
	assert_int_equal(imap_search_match(s, &ctx_default, &m, NULL, 0), -1);
	s = parse_ok("(UNSEEN (SENTON 1-Jul-2003)) LARGER 5000");
	assert_int_equal(imap_search_match(s, &ctx_default, &m, NULL, 0), 0);
}

static void test_headers(void **state)
{
	(void)state;
	const char *t = simple_msg;
	assert_int_equal(match("FROM alice", t), 1);
	assert_int_equal(match("FROM ALICE@EXAMPLE", t), 1);
	assert_int_equal(match("FROM \"Alice Example\"", t), 1);
	assert_int_equal(match("FROM bob", t), 0);
	assert_int_equal(match("TO carol", t), 1); /* on a continuation line */
	assert_int_equal(match("TO \"bob@example.test, carol\"", t), 1); /* unfolded */
	/* addresses as ENVELOPE parses them: comments, quoting and spacing gone */
	const char *odd = "From: <user-from (comment)@ (comment) domain.org>\r\n"
	                  "To: user-to@domain.org (RealTo)\r\n"
	                  "Cc: \"Real  Cc\" <user-cc @ domain.org>, x@y\r\n"
	                  "Bcc: group: a@b.c, d@e.f;\r\n\r\n";
	assert_int_equal(match("FROM user-from@domain.org", odd), 1);
	assert_int_equal(match("FROM comment", odd), 0);
	assert_int_equal(match("TO realto", odd), 1);
	assert_int_equal(match("TO \"realto <user-to@domain.org>\"", odd), 1);
	assert_int_equal(match("CC \"real  cc <user-cc@domain.org>\"", odd), 1);
	assert_int_equal(match("CC \"user-cc@domain.org>, x@y\"", odd), 1);
	assert_int_equal(match("BCC group", odd), 1);
	assert_int_equal(match("BCC d@e.f", odd), 1);
	assert_int_equal(match("BCC \"group: a@b.c\"", odd), 1);
	assert_int_equal(match("HEADER From comment", odd), 1); /* HEADER: the text as written */
	assert_int_equal(match("CC dave", t), 1);
	assert_int_equal(match("CC eve", t), 0);
	assert_int_equal(match("BCC eve", t), 1);
	assert_int_equal(match("SUBJECT \"report for q3\"", t), 1);
	assert_int_equal(match("SUBJECT quarterly", t), 1);
	assert_int_equal(match("SUBJECT Hello", t), 0);
	assert_int_equal(match("HEADER X-Custom special-value", t), 1);
	assert_int_equal(match("HEADER x-custom \"\"", t), 1);
	assert_int_equal(match("HEADER X-Missing \"\"", t), 0);
	assert_int_equal(match("HEADER Subject report", t), 1);
	assert_int_equal(match("HEADER X-Custom X-Custom", t), 0); /* the value only */
	assert_int_equal(match("SUBJECT \"\"", t), 1);
	assert_int_equal(match("SUBJECT \"\"", "From: x\r\n\r\nbody\r\n"), 0);
	/* the body is no header */
	assert_int_equal(match("FROM numbers", t), 0);
	assert_int_equal(match("HEADER Hello Bob", t), 0);
	/* a header with LF line ends, no body */
	assert_int_equal(match("SUBJECT lf", "Subject: bare\n lf\nFrom: y\n"), 1);
	assert_int_equal(match("FROM y", "Subject: bare\n lf\nFrom: y\n"), 1);
	/* several fields of one name: any of them */
	assert_int_equal(match("HEADER Received mx2", "Received: mx1\r\nReceived: mx2\r\n\r\n"), 1);
}

static void test_encoded_words(void **state)
{
	(void)state;
	const char *t = "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus?= =?ISO-8859-1?B?S/Zsbg==?= now\r\n"
	                "From: =?iso-8859-1?q?J=F6rg?= <joerg@example.test>\r\n"
	                "To: =?utf-8?b?0J/RgNC40LLQtdGC?= <ivan@example.test>\r\n"
	                "Cc: =?koi8-r?b?8NLJ18XU?= <koi@example.test>\r\n"
	                "X-Broken: =?utf-8?x?abc?= and =?utf-8?q?no end\r\n"
	                "\r\nbody\r\n";
	assert_int_equal(match("SUBJECT \"Gr\xC3\xBC\xC3\x9F"
	                       "e aus\"",
	                       t),
	                 1);
	/* white space between adjacent encoded words goes */
	assert_int_equal(match("SUBJECT \"ausK\xC3\xB6ln\"", t), 1);
	assert_int_equal(match("SUBJECT \"K\xC3\x96LN NOW\"", t), 1);
	assert_int_equal(match("FROM \"J\xC3\xB6rg <joerg\"", t), 1);
	assert_int_equal(match("FROM \"J\xC3\x96RG\"", t), 1);
	/* Cyrillic, case-insensitive: "ПРИВЕТ" finds "Привет" */
	assert_int_equal(match("TO \"\xD0\x9F\xD0\xA0\xD0\x98\xD0\x92\xD0\x95\xD0\xA2\"", t), 1);
	/* KOI8-R through iconv: "Привет" */
	assert_int_equal(match("CC \"\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82\"", t), 1);
	/* the raw form is not what is searched once decoded */
	assert_int_equal(match("SUBJECT \"=?UTF-8?Q?\"", t), 0);
	/* broken words stay as they are */
	assert_int_equal(match("HEADER X-Broken \"=?utf-8?x?abc?= and =?utf-8?q?no end\"", t), 1);
}

static void test_sent_dates(void **state)
{
	(void)state;
	struct {
		const char *date;
		const char *on;
	} cases[] = {
	    {"Tue, 1 Jul 2003 10:52:37 +0200", "1-Jul-2003"},
	    {"1 Jul 2003 23:59:59 -1200", "1-Jul-2003"}, /* the date as written, zone ignored */
	    {"Sat, 09 Feb 2019 00:00:00 +0000", "9-Feb-2019"},
	    {"  Mon ,  3 Dec 18 1:02 GMT", "3-Dec-2018"}, /* obsolete 2-digit year */
	    {"Wed, 3 Dec 99 1:02 GMT", "3-Dec-1999"},
	    {"Wed, 3 Dec 102 1:02 GMT", "3-Dec-2002"}, /* 3-digit year: + 1900 */
	    {"3 december 2020", "3-Dec-2020"},
	    {"garbage", "1-Jan-1970"}, /* no valid date: 1970 */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[256], crit[64];
		snprintf(text, sizeof(text), "Subject: x\r\nDate: %s\r\n\r\nbody\r\n",
		         cases[i].date);
		snprintf(crit, sizeof(crit), "SENTON %s", cases[i].on);
		if (match(crit, text) != 1)
			fail_msg("'%s' is not on %s", cases[i].date, cases[i].on);
	}
	const char *t = simple_msg; /* 1 Jul 2003 */
	assert_int_equal(match("SENTBEFORE 1-Jul-2003", t), 0);
	assert_int_equal(match("SENTBEFORE 2-Jul-2003", t), 1);
	assert_int_equal(match("SENTSINCE 1-Jul-2003", t), 1);
	assert_int_equal(match("SENTSINCE 2-Jul-2003", t), 0);
	assert_int_equal(match("SENTON 30-Jun-2003", t), 0);
	/* no Date: header */
	assert_int_equal(match("SENTBEFORE 1-Jan-2000", "Subject: x\r\n\r\n"), 1);
	assert_int_equal(match("SENTSINCE 2-Jan-1970", "Subject: x\r\n\r\n"), 0);
	/* SENT* use Date:, BEFORE/ON/SINCE the internal date (14-Nov-2023) */
	assert_int_equal(match("ON 14-Nov-2023 SENTON 1-Jul-2003", t), 1);
}

static void test_body_and_text(void **state)
{
	(void)state;
	const char *t = simple_msg;
	assert_int_equal(match("BODY numbers", t), 1);
	assert_int_equal(match("BODY \"HELLO BOB\"", t), 1);
	assert_int_equal(match("BODY quarterly", t), 0); /* header only */
	assert_int_equal(match("TEXT quarterly", t), 1);
	assert_int_equal(match("TEXT numbers", t), 1);
	assert_int_equal(match("TEXT \"subject: quarterly\"", t), 1);
	assert_int_equal(match("TEXT absent", t), 0);
	assert_int_equal(match("BODY \"\"", t), 1);
	assert_int_equal(match("NOT BODY absent", t), 1);
	/* no header section at all */
	assert_int_equal(match("BODY hello", "\r\nhello\r\n"), 1);
	assert_int_equal(match("BODY hello", ""), 0);
}

/* The search index's side (struct imap_search_text): which BODY/TEXT keys are listed,
 * and a listed key decided from its UIDs for a message not in the unindexed list (without
 * the octets, whatever they hold), from the octets for one in it. */
static void test_index_answers(void **state)
{
	(void)state;
	struct imap_search *s = parse_ok("BODY quarterly NOT TEXT \"\" FROM alice");
	assert_non_null(s->texts);
	assert_null(s->texts->next); /* the empty TEXT needs no index */
	assert_string_equal(s->texts->needle, "quarterly");
	assert_true(s->texts->body_only && s->texts_all);
	assert_true(imap_search_needs_body(s, 20)); /* not asked yet */
	s = parse_ok("OR BODY CAFE TEXT \"\\\\\" FLAGGED");
	assert_non_null(s->texts);
	assert_string_equal(s->texts->needle, "\\"); /* TEXT, listed first */
	assert_false(s->texts->body_only);
	assert_string_equal(s->texts->next->needle, "cafe"); /* folded */
	/* a literal needle with LF, or not UTF-8: not for the index */
	struct imap_literal lit;
	const char *error = NULL;
	const char *l1 = "t SEARCH BODY {3}";
	assert_int_equal(imap_parser_feed_line(parser, l1, strlen(l1), &lit, &error), 0);
	assert_int_equal(imap_parser_feed_literal(parser, (const unsigned char *)"a\nb", 3), 1);
	assert_int_equal(imap_parser_feed_line(parser, " TEXT {5}", 9, &lit, &error), 0);
	assert_int_equal(imap_parser_feed_literal(parser, (const unsigned char *)"caf\xe9s", 5), 1);
	assert_int_equal(imap_parser_feed_line(parser, "", 0, &lit, &error), 1);
	assert_int_equal(imap_search_parse(arena, imap_parser_args(parser), &s, &error), 0);
	assert_null(s->texts);
	assert_false(s->texts_all);
	char big[IMAP_SEARCH_TEXT_NEEDLE_MAX + 64];
	snprintf(big, sizeof(big), "TEXT %0*d", IMAP_SEARCH_TEXT_NEEDLE_MAX + 1, 7);
	s = parse_ok(big);
	assert_null(s->texts);

	/* answered from the UIDs: 20 is listed, 21 is not, 22 is not indexed */
	s = parse_ok("BODY quarterly FROM alice");
	uint32_t hits[] = {20, 22}, unindexed[] = {22};
	s->texts->indexed = true;
	s->texts->uids = hits;
	s->texts->count = 2;
	s->unindexed = unindexed;
	s->unindexed_count = 1;
	const char *hdr = "From: alice@example.test\r\n\r\n";
	const char *body = "From: alice@example.test\r\n\r\nthe quarterly report\r\n";
	struct imap_search_msg m = msg_default();
	m.uid = 20; /* the index says yes, whatever the octets hold */
	assert_false(imap_search_needs_body(s, 20));
	assert_int_equal(imap_search_match(s, &ctx_default, &m, NULL, 0), -1); /* FROM */
	assert_int_equal(
	    imap_search_match(s, &ctx_default, &m, (const unsigned char *)hdr, strlen(hdr)), 1);
	m.uid = 21; /* the index says no */
	assert_int_equal(imap_search_match(s, &ctx_default, &m, NULL, 0), 0);
	assert_int_equal(
	    imap_search_match(s, &ctx_default, &m, (const unsigned char *)body, strlen(body)), 0);
	m.uid = 22; /* not indexed: the octets decide */
	assert_true(imap_search_needs_body(s, 22));
	assert_int_equal(
	    imap_search_match(s, &ctx_default, &m, (const unsigned char *)hdr, strlen(hdr)), 0);
	assert_int_equal(
	    imap_search_match(s, &ctx_default, &m, (const unsigned char *)body, strlen(body)), 1);
	s->texts->uids = NULL; /* the test's, not the arena's */
	s->unindexed = NULL;
}

/* Header keys and SENT* answered from the header lines imap_search_doc_index() stores, as
 * the store gives them (only those holding the prefilter): the same answers as from the
 * octets, without them. */
static int index_match(const char *criteria, const char *text, bool indexable)
{
	struct imap_search_msg m = msg_default();
	struct imap_search *s = parse_ok(criteria);
	int full =
	    imap_search_match(s, &ctx_default, &m, (const unsigned char *)text, strlen(text));
	char *hdr, *body;
	assert_int_equal(
	    imap_search_doc_index((const unsigned char *)text, strlen(text), 1 << 20, &hdr, &body),
	    1);
	assert_non_null(s->hdrs);
	for (struct imap_search_hdr *h = s->hdrs; h != NULL; h = h->next) {
		if (h->prefilter == NULL || strstr(hdr, h->prefilter) != NULL)
			imap_search_hdr_add(h, m.uid, hdr, strlen(hdr));
		assert_int_equal(h->broken, !indexable);
		h->indexed = !h->broken;
	}
	int quick = imap_search_match(s, &ctx_default, &m, NULL, 0);
	if (indexable && (s->needs & IMAP_SEARCH_NEED_BODY) == 0)
		assert_int_not_equal(quick, -1);
	if (quick >= 0 && quick != full)
		fail_msg("'%s': index %d, octets %d", criteria, quick, full);
	for (struct imap_search_hdr *h = s->hdrs; h != NULL; h = h->next)
		free(h->uids);
	free(hdr);
	free(body);
	return full;
}

static const char *encoded_msg =
    "From: =?ISO-8859-1?Q?Ren=E9?= Dupont (the boss) <rene@example.test>\r\n"
    "To: undisclosed:;, \"Smith, Al\" <al@example.test>\r\n"
    "Subject: =?UTF-8?B?w4dhIHZh?=\r\n"
    "  =?UTF-8?Q?_tr=C3=A8s?= bien\r\n"
    "X-Folded: first line\r\n"
    "\tsecond line\r\n"
    "X-Folded: another one\r\n"
    "Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
    "Content-Type: multipart/mixed; boundary=b\r\n"
    "\r\n"
    "--b\r\n"
    "Content-Type: text/plain\r\n"
    "Subject: in a part\r\n"
    "X-Part: part-only\r\n"
    "\r\n"
    "body words\r\n"
    "--b--\r\n";

static void test_index_header_keys(void **state)
{
	(void)state;
	static const char *const crit[] = {"FROM \"rené\"",
	                                   "FROM \"rené dupont <rene@\"",
	                                   "FROM boss",
	                                   "FROM \"rene@example.test\"",
	                                   "TO \"smith, al\"",
	                                   "TO undisclosed",
	                                   "TO \"al <al@\"",
	                                   "CC \"\"",
	                                   "SUBJECT \"ça va très bien\"",
	                                   "SUBJECT \"vatrès\"",
	                                   "SUBJECT \"in a part\"",
	                                   "HEADER X-Folded \"line second\"",
	                                   "HEADER x-folded \"line\tsecond\"",
	                                   "HEADER X-FOLDED another",
	                                   "HEADER X-Part part",
	                                   "HEADER X-Part \"\"",
	                                   "HEADER Date \"\"",
	                                   "HEADER content-type mixed",
	                                   "HEADER content-type text/plain",
	                                   "NOT SUBJECT bien",
	                                   "OR FROM nobody SUBJECT \"ça\"",
	                                   "SENTON 1-Jul-2003",
	                                   "SENTBEFORE 1-Jul-2003",
	                                   "SENTSINCE 2-Jul-2003",
	                                   "HEADER \"\" x",
	                                   "SUBJECT \"%\"",
	                                   "FROM \"\"",
	                                   "BODY words FROM \"rené\""};
	int want[] = {1, 1, 0, 1, 1, 1, 1, 0, 1, 0, 0, 0, 1, 1,
	              0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1};
	_Static_assert(sizeof(crit) / sizeof(crit[0]) == sizeof(want) / sizeof(want[0]), "");
	for (size_t i = 0; i < sizeof(crit) / sizeof(crit[0]); i++) {
		if (index_match(crit[i], encoded_msg, true) != want[i])
			fail_msg("'%s' should give %d", crit[i], want[i]);
		arena_reset(arena);
	}
	for (size_t i = 0; i < sizeof(crit) / sizeof(crit[0]); i++) {
		index_match(crit[i], simple_msg, true);
		arena_reset(arena);
	}
	/* a value that decodes to LF (or NUL): the fields cannot be told apart, the octets
	 * decide */
	const char *lf = "Subject: =?utf-8?q?a=0Ab?=\r\nFrom: x@example.test\r\n\r\nbody\r\n";
	assert_int_equal(index_match("SUBJECT b", lf, false), 1);
	arena_reset(arena);
	const char *nul = "Subject: =?utf-8?q?a=00b?=\r\n\r\n";
	assert_int_equal(index_match("SUBJECT a", nul, false), 1);
	arena_reset(arena);
	const char *eight = "Subj\xc3\xa9: x\r\n\r\n";
	assert_int_equal(index_match("HEADER \"subj\xc3\xa9\" x", eight, false), 1);
	arena_reset(arena);
	/* a message without fields; without Date: it was sent on 1 Jan 1970 */
	assert_int_equal(index_match("SUBJECT \"\"", "\r\nbody\r\n", true), 0);
	arena_reset(arena);
	assert_int_equal(index_match("SENTBEFORE 2-Jan-1970", "\r\nbody\r\n", true), 1);
	arena_reset(arena);
	assert_int_equal(index_match("SENTON 1-Jan-1970", "Subject: x\r\n\r\nbody\r\n", true), 1);
	arena_reset(arena);
	/* rows stored before the fields were held apart: not used */
	struct imap_search_doc d;
	imap_search_doc_init(&d, NULL, 0);
	assert_int_equal(imap_search_doc_stored_fields(&d, "subject: hi\n", 12), -1);
	assert_int_equal(imap_search_doc_stored_fields(&d, "\n\n\nsubject: hi\n", 15), -1);
	assert_int_equal(imap_search_doc_stored_fields(&d, "\nsubject: hi\n", 13), -1);
	imap_search_doc_deinit(&d);
	imap_search_doc_init(&d, NULL, 0);
	assert_int_equal(imap_search_doc_stored_fields(&d, "\nsubject: hi\nx: \n\ny: z\n", 23), 0);
	assert_int_equal(d.fields.count, 2);
	assert_string_equal(d.fields.v[1].s, "x: ");
	imap_search_doc_deinit(&d);
	/* the prefilter: the folded needle of SUBJECT and HEADER, else the field's name */
	struct imap_search *s =
	    parse_ok("SUBJECT \"ÇA\" FROM Bob HEADER X-A \"\" SENTON 1-Jan-2020");
	const char *pre[4] = {0};
	size_t n = 0;
	for (struct imap_search_hdr *h = s->hdrs; h != NULL; h = h->next)
		pre[n++] = h->prefilter;
	assert_int_equal(n, 4);
	assert_null(pre[0]); /* SENT*: a message without Date: may match */
	assert_string_equal(pre[1], "x-a: ");
	assert_string_equal(pre[2], "from: ");
	assert_string_equal(pre[3], "ça");
}

static const char *mime_msg =
    "From: a@example.test\r\n"
    "Subject: mime\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
    "\r\n"
    "preamble is not searched: PREAMBLEWORD\r\n"
    "--outer\r\n"
    "Content-Type: multipart/alternative; boundary=inner\r\n"
    "\r\n"
    "--inner\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "U2VjcmV0IGJhc2U2NCB3b3JkOiBaZWJyYQ==\r\n" /* "Secret base64 word: Zebra" */
    "--inner\r\n"
    "Content-Type: text/html; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "<p>Gr=FC=DFe vom soft=\r\n"
    "break</p>\r\n"
    "--inner--\r\n"
    "--outer\r\n"
    "Content-Type: application/octet-stream\r\n"
    "X-Part-Header: attachment-header-word\r\n"
    "\r\n"
    "BINARYWORD\r\n"
    "--outer\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "Subject: inner message subject INNERSUBJ\r\n"
    "Content-Type: text/plain; charset=windows-1252\r\n"
    "\r\n"
    "inner body \x93quoted\x94 INNERBODY\r\n"
    "--outer--\r\n"
    "epilogue EPILOGUEWORD\r\n";

static void test_mime(void **state)
{
	(void)state;
	const char *t = mime_msg;
	assert_int_equal(match("BODY zebra", t), 1);    /* base64 */
	assert_int_equal(match("BODY U2VjcmV0", t), 0); /* not the encoded form */
	assert_int_equal(match("BODY \"GR\xC3\x9C\xC3\x9F"
	                       "E\"",
	                       t),
	                 1);                              /* QP + Latin-1 */
	assert_int_equal(match("BODY softbreak", t), 1);  /* QP soft line break */
	assert_int_equal(match("BODY binaryword", t), 0); /* not text: skipped */
	assert_int_equal(match("BODY preambleword", t), 0);
	assert_int_equal(match("BODY epilogueword", t), 0);
	assert_int_equal(match("BODY innerbody", t), 1); /* message/rfc822 opened */
	/* windows-1252 curly quotes through iconv */
	assert_int_equal(match("BODY \"\xE2\x80\x9Cquoted\xE2\x80\x9D\"", t), 1);
	assert_int_equal(match("BODY innersubj", t), 0); /* headers are not body */
	assert_int_equal(match("TEXT innersubj", t), 1); /* but TEXT has them */
	assert_int_equal(match("TEXT attachment-header-word", t), 1);
	assert_int_equal(match("SUBJECT innersubj", t), 0); /* only the top header */
	assert_int_equal(match("HEADER Content-Type multipart/mixed", t), 1);
}

static void test_mime_digest_and_broken(void **state)
{
	(void)state;
	const char *digest = "Content-Type: multipart/digest; boundary=d\r\n\r\n"
	                     "--d\r\n\r\nSubject: in digest\r\n\r\nDIGESTBODY\r\n"
	                     "--d--\r\n";
	assert_int_equal(match("BODY digestbody", digest), 1);
	assert_int_equal(match("TEXT \"in digest\"", digest), 1);
	/* a boundary that never comes: the whole body is the one part */
	const char *unterminated = "Content-Type: multipart/mixed; boundary=zz\r\n\r\n"
	                           "--zz\r\nContent-Type: text/plain\r\n\r\nLOSTWORD\r\n";
	assert_int_equal(match("BODY lostword", unterminated), 1);
	/* multipart without a boundary parameter: searched as text */
	assert_int_equal(match("BODY rawword", "Content-Type: multipart/mixed\r\n\r\nRAWWORD\r\n"),
	                 1);
	/* a boundary that is a prefix of another */
	const char *prefix = "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
	                     "--b\r\nContent-Type: multipart/mixed; boundary=\"b-x\"\r\n\r\n"
	                     "--b-x\r\n\r\nNESTEDWORD\r\n--b-x--\r\n"
	                     "--b\r\n\r\nSECONDWORD\r\n--b--\r\n";
	assert_int_equal(match("BODY nestedword", prefix), 1);
	assert_int_equal(match("BODY secondword", prefix), 1);
	/* unknown charset and transfer encoding: taken as they are */
	const char *odd = "Content-Type: text/plain; charset=x-unknown-charset\r\n"
	                  "Content-Transfer-Encoding: x-custom\r\n\r\nODDWORD\r\n";
	assert_int_equal(match("BODY oddword", odd), 1);
	/* a NUL in the header and in the body */
	static const char nul_msg[] = "Subject: a\0b\r\n\r\nbo\0dy NULWORD\r\n";
	struct imap_search_msg m = msg_default();
	struct imap_search *s = parse_ok("SUBJECT \"a b\" BODY nulword");
	assert_int_equal(imap_search_match(s, &ctx_default, &m, (const unsigned char *)nul_msg,
	                                   sizeof(nul_msg) - 1),
	                 1);
}

/* Cases where SEARCH's former MIME walker and mime_parse() (FETCH BODYSTRUCTURE) read a
 * message differently: SEARCH now sees the parts BODYSTRUCTURE shows. */
static void test_mime_as_bodystructure(void **state)
{
	(void)state;
	/* a boundary line only needs to start with "--" boundary (Dovecot's rule, trailing
	 * junk or white space allowed): "--b junk" starts the application part, whose body
	 * is not searched, and ends the text part */
	const char *junk = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
	                   "--b \t\r\nContent-Type: text/plain\r\n\r\nFIRSTWORD\r\n"
	                   "--b junk-after-boundary\r\nContent-Type: application/octet-stream\r\n"
	                   "\r\nBINWORD\r\n--b--\r\n";
	assert_int_equal(match("BODY firstword", junk), 1);
	assert_int_equal(match("BODY binword", junk), 0);
	assert_int_equal(match("BODY junk-after-boundary", junk), 0);
	/* the same boundary nested: the inner multipart takes it until its close delimiter,
	 * then the outer one gets it back, so the third part is found */
	const char *same = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=s\r\n\r\n"
	                   "--s\r\nContent-Type: multipart/alternative; boundary=s\r\n\r\n"
	                   "--s\r\n\r\nAWORD\r\n--s\r\n\r\nBWORD\r\n--s--\r\n"
	                   "--s\r\n\r\nCWORD\r\n--s--\r\n";
	assert_int_equal(match("BODY aword", same), 1);
	assert_int_equal(match("BODY bword", same), 1);
	assert_int_equal(match("BODY cword", same), 1);
	/* RFC 2231 continuations of the boundary and the charset parameters */
	const char *cont =
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary*0=\"sp\"; boundary*1=lit\r\n\r\n"
	    "--split\r\nContent-Type: text/plain; charset*0=iso-8859; charset*1=-1\r\n"
	    "X-Part: PARTHEADERWORD\r\n\r\nGr\xFC\xDF"
	    "e\r\n--split--\r\n";
	assert_int_equal(match("BODY \"GR\xC3\x9C\xC3\x9F"
	                       "E\"",
	                       cont),
	                 1);
	assert_int_equal(match("BODY partheaderword", cont), 0); /* a header, not a body */
	assert_int_equal(match("TEXT partheaderword", cont), 1);
	/* a part header cut short by the next boundary line has no body */
	const char *cut =
	    "Content-Type: multipart/mixed; boundary=c\r\n\r\n"
	    "--c\r\nContent-Type: text/plain\r\nX-Cut: CUTWORD\r\n--c\r\n\r\nNEXTWORD\r\n"
	    "--c--\r\n";
	assert_int_equal(match("BODY cutword", cut), 0);
	assert_int_equal(match("TEXT cutword", cut), 1);
	assert_int_equal(match("BODY nextword", cut), 1);
}

/* Header values: folds and adjacent encoded words as mime_field_unfolded() and
 * mime_decode_words() read them. */
static void test_folded_encoded_words(void **state)
{
	(void)state;
	const char *t = "Subject: =?utf-8?q?Gr=C3=BC?=\r\n =?utf-8?b?w59l?=\r\n\tfolded\r\n"
	                "X-Adjacent: =?utf-8?q?one?==?utf-8?q?two?= three  \r\n"
	                "X-Lang: =?ISO-8859-1*de?Q?K=F6ln?=\r\n\r\nbody\r\n";
	assert_int_equal(match("SUBJECT \"GR\xC3\x9C\xC3\x9F"
	                       "E\tFOLDED\"",
	                       t),
	                 1);
	assert_int_equal(match("HEADER X-Adjacent \"onetwo three\"", t), 1);
	assert_int_equal(match("HEADER X-Lang \"k\xC3\xB6ln\"", t), 1);
	/* trailing white space is not part of the value */
	assert_int_equal(match("HEADER X-Adjacent \"three \"", t), 0);
}

/* doc->body walks the tree mime_parse() builds: one visit per part, and a message with
 * 100,000 parts or header fields is read within the parser's caps. */
static unsigned tree_parts(const struct mime_part *p)
{
	unsigned n = 1;
	for (size_t i = 0; i < p->child_count; i++)
		n += tree_parts(&p->children[i]);
	return n;
}

static void check_doc_parts(const char *msg, size_t len)
{
	struct imap_search_doc doc;
	struct mime_part *root;
	imap_search_doc_init(&doc, (const unsigned char *)msg, len);
	imap_search_doc_body(&doc);
	assert_true(mime_parse(arena, (const unsigned char *)msg, len, NULL, &root) >= -1);
	assert_int_equal(doc.parts, tree_parts(root));
	imap_search_doc_deinit(&doc);
}

static void test_doc_walks_mime_tree(void **state)
{
	(void)state;
	check_doc_parts(mime_msg, strlen(mime_msg));
	check_doc_parts(simple_msg, strlen(simple_msg));
	struct buf b;
	buf_init(&b, 64 << 20);
	assert_int_equal(buf_puts(&b, "Content-Type: multipart/mixed; boundary=p\r\n\r\n"), 0);
	for (int i = 0; i < 100000; i++)
		assert_int_equal(buf_puts(&b, "--p\r\n\r\nx\r\n"), 0);
	check_doc_parts(b.data, b.len);
	struct imap_search_doc doc;
	imap_search_doc_init(&doc, (const unsigned char *)b.data, b.len);
	imap_search_doc_body(&doc);
	static const struct mime_limits lim = MIME_LIMITS_DEFAULT_INIT;
	assert_int_equal(doc.parts, lim.parts_max);
	imap_search_doc_deinit(&doc);
	buf_reset(&b);
	for (int i = 0; i < 100000; i++)
		assert_int_equal(buf_printf(&b, "To: =?utf-8?q?r%d?= <r%d@example.test>\r\n", i, i),
		                 0);
	assert_int_equal(buf_puts(&b, "\r\nbody\r\n"), 0);
	imap_search_doc_init(&doc, (const unsigned char *)b.data, b.len);
	imap_search_doc_header(&doc);
	assert_int_equal(doc.fields.count, 100000);
	assert_string_equal(doc.fields.v[99999].s, "to: r99999 <r99999@example.test>");
	imap_search_doc_deinit(&doc);
	buf_free(&b);
}

static void test_header_prefix_is_enough(void **state)
{
	(void)state;
	/* header keys need only the header section (the caller may pass just that) */
	const char *t = simple_msg;
	size_t hlen = (size_t)(strstr(t, "\r\n\r\n") - t) + 4;
	struct imap_search_msg m = msg_default();
	struct imap_search *s = parse_ok("SUBJECT report SENTON 1-Jul-2003");
	assert_int_equal(imap_search_match(s, &ctx_default, &m, (const unsigned char *)t, hlen), 1);
}

static void test_fold(void **state)
{
	(void)state;
	size_t len;
	const char *in = "ABC \xC3\x84\xC3\x96\xC3\x9C \xCE\xA3\xCE\x91\xCE\xA3 "
	                 "\xD0\x9F\xD0\xA0\xD0\x98 \xD0\x81 \xC5\x81\xC5\xB9 \xC4\xB0 "
	                 "\xEF\xBC\xA1 \xC5\xBF \xFF\xC3";
	const char *want = "abc \xC3\xA4\xC3\xB6\xC3\xBC \xCF\x83\xCE\xB1\xCF\x83 "
	                   "\xD0\xBF\xD1\x80\xD0\xB8 \xD1\x91 \xC5\x82\xC5\xBA \xC4\xB0 "
	                   "\xEF\xBD\x81 s \xFF\xC3";
	char *out = imap_search_doc_fold(arena, (const unsigned char *)in, strlen(in), &len);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(out, want, len);
	/* final sigma folds like sigma */
	out = imap_search_doc_fold(arena, (const unsigned char *)"\xCF\x82", 2, &len);
	assert_memory_equal(out, "\xCF\x83", 2);
	/* case-insensitive beyond ASCII in a search */
	assert_int_equal(match("SUBJECT \"\xC3\x84RGER\"", "Subject: \xC3\xA4rger\r\n\r\n"), 1);
	assert_int_equal(match("SUBJECT \"\xCE\xA3\xCE\x9F\xCE\xA6\xCE\x99\xCE\x91\"",
	                       "Subject: \xCF\x83\xCE\xBF\xCF\x86\xCE\xB9\xCE\xB1\r\n\r\n"),
	                 1);
}

/* Random octets as messages and as criteria strings: no crash, a 0/1 answer. */
static void test_random_messages(void **state)
{
	(void)state;
	static const char *const crit[] = {"TEXT a", "BODY =", "SUBJECT ?", "SENTON 1-Jan-1970",
	                                   "HEADER content-type b"};
	static const char *const pieces[] = {"Content-Type: multipart/mixed; boundary=b\r\n",
	                                     "--b\r\n",
	                                     "--b--\r\n",
	                                     "\r\n",
	                                     "Content-Transfer-Encoding: base64\r\n",
	                                     "Content-Transfer-Encoding: quoted-printable\r\n",
	                                     "=?utf-8?q?a=",
	                                     "?=",
	                                     "=?x?b?",
	                                     "Subject: ",
	                                     " ",
	                                     "\n",
	                                     "\r",
	                                     "=",
	                                     "=4",
	                                     "\xC3",
	                                     "Content-Type: message/rfc822\r\n",
	                                     "Date: ",
	                                     "Mon, 1 ",
	                                     "Content-Type: text/plain; charset=utf-16\r\n",
	                                     "a",
	                                     "\0",
	                                     ":",
	                                     "\t"};
	unsigned seed = 12345;
	for (int iter = 0; iter < 3000; iter++) {
		char text[600];
		size_t len = 0;
		while (len < 500) {
			seed = seed * 1103515245 + 12345;
			const char *p = pieces[(seed >> 16) % (sizeof(pieces) / sizeof(pieces[0]))];
			size_t n = p[0] == '\0' ? 1 : strlen(p);
			memcpy(text + len, p, n);
			len += n;
		}
		struct imap_search_msg m = msg_default();
		struct imap_search *s = parse_ok(crit[iter % 5]);
		int r = imap_search_match(s, &ctx_default, &m, (const unsigned char *)text, len);
		assert_true(r == 0 || r == 1);
		arena_reset(arena);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_parse_keys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_index_answers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_index_header_keys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parse_literal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parse_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parse_depth, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parse_return_and_charset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flags, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keywords, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sizes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_modseq, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_internal_dates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_within, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_save_dates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_object_ids, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_three_valued, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_headers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_encoded_words, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sent_dates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_body_and_text, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mime, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mime_digest_and_broken, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mime_as_bodystructure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_folded_encoded_words, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_doc_walks_mime_tree, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_header_prefix_is_enough, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fold, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_criteria_outlive_the_command, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_random_messages, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
