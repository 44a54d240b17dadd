/* Unit tests for imap/imap_sort and imap/imap_thread: base subject extraction (RFC 5256
 * §2.1: leaders, blobs, "(fwd)" trailers, "[fwd: ...]" wrapping, encoded words, white
 * space, empty subjects), sent dates with zones and the internal-date fallback, the sort
 * program and its errors, ordering by every key with ties in sequence order, SORT=DISPLAY,
 * and THREAD ORDEREDSUBJECT and REFERENCES on corpora with broken, missing, looping and
 * self-referencing References chains and duplicate Message-IDs, plus a long chain that
 * must not exhaust the stack. */
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
#include "imap/imap_sort.h"
#include "imap/imap_thread.h"
#include "core/banned.h"

static struct arena *arena;

static int setup(void **state)
{
	(void)state;
	arena = arena_new(4096);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	arena_free(&arena);
	return 0;
}

/* ---- base subject ---- */

static void check_base(const char *subject, const char *want, bool want_reply)
{
	bool reply = !want_reply;
	char *got = imap_sort_base_subject(arena, subject, strlen(subject), &reply);
	if (strcmp(got, want) != 0)
		fail_msg("base subject of '%s': '%s', want '%s'", subject, got, want);
	if (reply != want_reply)
		fail_msg("reply flag of '%s': %d, want %d", subject, reply, want_reply);
}

static void test_base_subject(void **state)
{
	(void)state;
	check_base("hello", "hello", false);
	check_base("Re: hello", "hello", true);
	check_base("RE:hello", "hello", true);
	check_base("re : hello", "hello", true);
	check_base("Fw: hello", "hello", true);
	check_base("FWD: hello", "hello", true);
	check_base("Re[2]: hello", "hello", true);
	check_base("Re [list]: hello", "hello", true);
	check_base("Re: Re: Fwd: hello", "hello", true);
	check_base("RE:  [list]  Re: Fwd:  hello (fwd) (FWD)  ", "hello", true);
	check_base("Re: Re: [PATCH] Re: subject", "subject", true);
	/* subj-blob alone is removed only when something is left (step 4) */
	check_base("[list] hello", "hello", false);
	check_base("[list]", "[list]", false);
	check_base("[a][b]", "[b]", false);
	check_base("[a] [b] c", "c", false);
	/* trailers (step 2) */
	check_base("hello (fwd)", "hello", true);
	check_base("hello(fwd)", "hello", true);
	check_base("hello (fwd) ", "hello", true);
	check_base("(fwd)", "", true);
	check_base("hello (fwd) x", "hello (fwd) x", false);
	/* [fwd: ...] (step 6), nested and with leaders inside */
	check_base("[fwd: hello]", "hello", true);
	check_base("[Fwd: Re: hello]", "hello", true);
	check_base("Re: [fwd: Re: x]", "x", true);
	check_base("[fwd: [fwd: x]]", "x", true);
	check_base("[fwd: x (fwd)]", "x", true);
	check_base("[fwd:x", "[fwd:x", false);
	check_base("[fwd: x] y", "y", false);
	/* not leaders */
	check_base("Reply: x", "Reply: x", false);
	check_base("Re x", "Re x", false);
	check_base("Fwdx: y", "Fwdx: y", false);
	check_base("Rex", "Rex", false);
	/* white space (step 1) and empty subjects */
	check_base("\tRe:\tfoo\t  bar ", "foo bar", true);
	check_base("", "", false);
	check_base("   ", "", false);
	check_base("Re:", "", true);
	check_base("Re: ", "", true);
	/* encoded words are decoded first: a leader inside one counts */
	check_base("=?UTF-8?B?UmU6IGjDqWxsbw==?=", "h\xc3\xa9llo", true);
	check_base("Re: =?ISO-8859-1?Q?caf=E9?=", "caf\xc3\xa9", true);
	check_base("=?UTF-8?Q?Re=3A?= =?UTF-8?Q?_x?=", "x", true);
}

static void test_base_subject_nul(void **state)
{
	(void)state;
	/* a NUL octet is not a BLOBCHAR: "[a\0]" is no blob */
	const char s[] = "[a\0] x";
	char *got = imap_sort_base_subject(arena, s, sizeof(s) - 1, NULL);
	assert_int_equal(got[0], '[');
}

static void test_collate(void **state)
{
	(void)state;
	const char *a = imap_sort_collate(arena, "abc", 3);
	const char *b = imap_sort_collate(arena, "ABC", 3);
	assert_string_equal(a, b);
	/* titlecase order: letters before "_" (0x5F) as i;unicode-casemap has it */
	assert_true(strcmp(imap_sort_collate(arena, "z", 1), imap_sort_collate(arena, "_", 1)) < 0);
	assert_string_equal(imap_sort_collate(arena, "\xc3\x89t\xc3\xa9", 5),
	                    imap_sort_collate(arena, "\xc3\xa9T\xc3\x89", 5));
	/* decomposed: an accented letter sorts next to its base letter, after it */
	const char *e_acute = imap_sort_collate(arena, "\xc3\x89ve", 4);
	assert_string_equal(e_acute, "E\xcc\x81VE");
	assert_true(strcmp(imap_sort_collate(arena, "dave", 4), e_acute) < 0);
	assert_true(strcmp(e_acute, imap_sort_collate(arena, "frank", 5)) < 0);
	assert_true(strcmp(imap_sort_collate(arena, "eve", 3), e_acute) < 0);
	assert_string_equal(imap_sort_collate(arena, "\xc3\xa6\xc3\xb8", 4), "\xc3\xa6\xc3\xb8");
	char big[IMAP_SORT_STRING_MAX + 100];
	memset(big, 'x', sizeof(big));
	assert_int_equal(strlen(imap_sort_collate(arena, big, sizeof(big))), IMAP_SORT_STRING_MAX);
}

/* ---- dates ---- */

static void check_date(const char *s, int64_t want)
{
	int64_t t = 0;
	if (!imap_sort_parse_date(s, strlen(s), &t))
		fail_msg("'%s' not parsed", s);
	if (t != want)
		fail_msg("'%s': %lld, want %lld", s, (long long)t, (long long)want);
}

static void test_dates(void **state)
{
	(void)state;
	check_date("Tue, 1 Jul 2003 10:52:37 +0200", 1057049557);
	check_date("1 Jul 2003 08:52:37 +0000", 1057049557);
	check_date("1 Jul 2003 03:52:37 -0500", 1057049557);
	check_date("1 Jul 03 10:52 EST", 1057074720);
	check_date("Fri, 31 Dec 1999 23:00:00 GMT (comment)", 946681200);
	check_date("  Fri ,31 Dec 1999 23:00:00 XYZ", 946681200); /* unknown zone: +0000 */
	int64_t t;
	assert_false(imap_sort_parse_date("garbage", 7, &t));
	assert_false(imap_sort_parse_date("", 0, &t));
	assert_false(imap_sort_parse_date("32 Jan 2003 10:00 +0000", 23, &t));
	assert_false(imap_sort_parse_date("1 Foo 2003 10:00 +0000", 22, &t));
	assert_false(imap_sort_parse_date("1 Jan 2003", 10, &t));
}

/* ---- the program ---- */

static struct imap_parser *parser;

/* The first argument (a list) of "t SORT <program>". */
static const struct imap_arg *program_args(const char *program)
{
	char line[512];
	snprintf(line, sizeof(line), "t SORT %s", program);
	struct imap_literal lit;
	const char *error = NULL;
	if (imap_parser_feed_line(parser, line, strlen(line), &lit, &error) != 1)
		fail_msg("parser refused '%s'", line);
	const struct imap_arg *a = imap_parser_args(parser);
	assert_int_equal(a->type, IMAP_ARG_LIST);
	return a->list;
}

static int parse_program(const char *program, struct imap_sort_crit *v, size_t *n)
{
	parser = imap_parser_new(arena, NULL);
	const char *error = NULL;
	int r = imap_sort_parse_program(program_args(program), v, n, &error);
	if (r < 0)
		assert_non_null(error);
	imap_parser_free(&parser);
	return r;
}

static void test_program(void **state)
{
	(void)state;
	struct imap_sort_crit v[IMAP_SORT_CRITERIA_MAX];
	size_t n;
	assert_int_equal(parse_program("(REVERSE date subject displayFrom)", v, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(v[0].key, IMAP_SORT_DATE);
	assert_true(v[0].reverse);
	assert_int_equal(v[1].key, IMAP_SORT_SUBJECT);
	assert_false(v[1].reverse);
	assert_int_equal(v[2].key, IMAP_SORT_DISPLAYFROM);
	assert_int_equal(parse_program("(ARRIVAL CC DATE FROM SIZE SUBJECT TO DISPLAYTO)", v, &n),
	                 0);
	assert_int_equal(n, 8);
	assert_false(imap_sort_needs_header(v, 1)); /* ARRIVAL */
	assert_true(imap_sort_needs_header(v, 2));
	assert_int_equal(parse_program("()", v, &n), -1);
	assert_int_equal(parse_program("(REVERSE)", v, &n), -1);
	assert_int_equal(parse_program("(DATE REVERSE)", v, &n), -1);
	assert_int_equal(parse_program("(REVERSE REVERSE DATE)", v, &n), -1);
	assert_int_equal(parse_program("(FOO)", v, &n), -1);
	assert_int_equal(parse_program("(DATE (SIZE))", v, &n), -1);
	assert_int_equal(
	    parse_program("(DATE DATE DATE DATE DATE DATE DATE DATE DATE DATE DATE DATE DATE DATE "
	                  "DATE DATE DATE)",
	                  v, &n),
	    -1);
}

/* ---- sorting ---- */

#define SORT_N 6

static struct imap_sort_msg sort_msgs[SORT_N];

static void sort_load(const struct imap_sort_crit *v, size_t n, const char *const *headers)
{
	for (size_t i = 0; i < SORT_N; i++) {
		sort_msgs[i] =
		    (struct imap_sort_msg){.seq = (uint32_t)i + 1,
		                           .uid = 10 * ((uint32_t)i + 1),
		                           .size = 100 + 7 * (i % 3),
		                           .arrival = 1000000 + 60 * (int64_t)(SORT_N - i)};
		imap_sort_msg_headers(arena, v, n, (const unsigned char *)headers[i],
		                      strlen(headers[i]), &sort_msgs[i]);
	}
}

/* The sequence numbers in program order, as "a b c". */
static const char *sort_order(const char *program)
{
	struct imap_sort_crit v[IMAP_SORT_CRITERIA_MAX];
	size_t n;
	assert_int_equal(parse_program(program, v, &n), 0);
	static const char *const headers[SORT_N] = {
	    "From: \"Zed\" <bob@example.test>\r\nTo: b@x\r\nSubject: Re: beta\r\n"
	    "Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n\r\nbody",
	    "From: alice@example.test\r\nCc: =?UTF-8?Q?Z=C3=BC?= <zz@x>\r\n"
	    "Subject: [list] alpha\r\nDate: Tue, 1 Jul 2003 09:52:37 +0200\r\n\r\n",
	    "From: =?UTF-8?B?w4RsZg==?= <Carol@example.test>\r\nTo: a@x\r\n"
	    "Subject: Fwd: Alpha (fwd)\r\nDate: broken\r\n\r\n",
	    "From: Bob <bob@elsewhere.test>, x@y\r\nTo: undisclosed:;\r\nSubject: gamma\r\n\r\n",
	    "Subject: beta\r\nDate: Tue, 1 Jul 2003 10:52:37 +0200\r\nCc: _u@x\r\n\r\n",
	    "From: \"\" <_x@example.test>\r\nTo: \"Anna\" <a@x>\r\n"
	    "Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n\r\n",
	};
	sort_load(v, n, headers);
	struct imap_sort_msg *p[SORT_N];
	for (size_t i = 0; i < SORT_N; i++)
		p[i] = &sort_msgs[i];
	imap_sort_msgs(v, n, p, SORT_N);
	static char out[64];
	size_t o = 0;
	for (size_t i = 0; i < SORT_N; i++)
		o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%u", i ? " " : "", p[i]->seq);
	return out;
}

static void test_sort_keys(void **state)
{
	(void)state;
	/* arrival descends with the sequence number here */
	assert_string_equal(sort_order("(ARRIVAL)"), "6 5 4 3 2 1");
	assert_string_equal(sort_order("(REVERSE ARRIVAL)"), "1 2 3 4 5 6");
	/* sizes 100 107 114 100 107 114: ties in sequence order, also when reversed */
	assert_string_equal(sort_order("(SIZE)"), "1 4 2 5 3 6");
	assert_string_equal(sort_order("(REVERSE SIZE)"), "3 6 2 5 1 4");
	/* base subjects: beta, alpha, alpha, gamma, beta, "" */
	assert_string_equal(sort_order("(SUBJECT)"), "6 2 3 1 5 4");
	assert_string_equal(sort_order("(SUBJECT REVERSE ARRIVAL)"), "6 2 3 1 5 4");
	assert_string_equal(sort_order("(SUBJECT ARRIVAL)"), "6 3 2 5 1 4");
	/* DATE: 6 is 1970; 2 and 1,5 (equal) in 2003; 3 (broken) and 4 (none) fall back to the
	 * internal date, 1000180 and 1000120 */
	assert_string_equal(sort_order("(DATE)"), "6 4 3 2 1 5");
	assert_string_equal(sort_order("(REVERSE DATE)"), "1 5 2 3 4 6");
	/* FROM: local parts bob alice Carol bob "" _x; casemap: letters before "_" */
	assert_string_equal(sort_order("(FROM)"), "5 2 1 4 3 6");
	/* TO: b, "", a, group "undisclosed", "", a */
	assert_string_equal(sort_order("(TO)"), "2 5 3 6 1 4");
	/* CC: "", zz, "", "", _u, "" */
	assert_string_equal(sort_order("(CC)"), "1 3 4 6 2 5");
	assert_string_equal(sort_order("(REVERSE CC SIZE)"), "5 2 1 4 3 6");
	/* DISPLAYFROM (RFC 5957): Zed, alice@example.test, Älf (decoded; Ä is A + U+0308,
	 * after ALICE), Bob, "", _x@... */
	assert_string_equal(sort_order("(DISPLAYFROM)"), "5 2 3 4 1 6");
	/* DISPLAYTO: b@x, "", a@x, undisclosed, "", Anna */
	assert_string_equal(sort_order("(DISPLAYTO)"), "2 5 3 6 1 4");
}

/* Keys set before (e.g. defaults of a caller) are replaced, not kept. */
static void test_sort_msg_headers_resets(void **state)
{
	(void)state;
	struct imap_sort_crit v[2] = {{IMAP_SORT_SUBJECT, false}, {IMAP_SORT_FROM, false}};
	struct imap_sort_msg m = {.arrival = 7, .date = 99, .subject = "", .from = "old"};
	const char *h = "From: x@y\r\nSubject: Re: hi\r\n\r\n";
	imap_sort_msg_headers(arena, v, 2, (const unsigned char *)h, strlen(h), &m);
	assert_string_equal(m.subject, "HI");
	assert_string_equal(m.from, "X");
	assert_string_equal(m.to, "");
	assert_int_equal(m.date, 7);
}

static void test_sort_cmp_ties(void **state)
{
	(void)state;
	struct imap_sort_crit v[1] = {{IMAP_SORT_SUBJECT, true}};
	struct imap_sort_msg a = {.seq = 1, .subject = "X"}, b = {.seq = 2, .subject = "X"};
	assert_true(imap_sort_cmp(v, 1, &a, &b) < 0);
	assert_true(imap_sort_cmp(v, 1, &b, &a) > 0);
	assert_int_equal(imap_sort_cmp(v, 1, &a, &a), 0);
}

/* ---- threading ---- */

#define THREAD_MAX 16

struct tmsg {
	const char *headers;
	int64_t date; /* internal date */
};

static const char *thread_run(enum imap_thread_algo algo, const struct tmsg *in, size_t n, bool uid)
{
	struct imap_thread_msg m[THREAD_MAX];
	assert_true(n <= THREAD_MAX);
	for (size_t i = 0; i < n; i++) {
		m[i] = (struct imap_thread_msg){
		    .seq = (uint32_t)i + 1, .uid = 100 + (uint32_t)i, .arrival = in[i].date};
		imap_thread_msg_headers(arena, (const unsigned char *)in[i].headers,
		                        strlen(in[i].headers), &m[i]);
	}
	struct imap_thread_node *roots = imap_thread_build(arena, algo, m, n);
	static struct buf b;
	buf_free(&b);
	buf_init(&b, 1 << 20);
	assert_int_equal(imap_thread_format(roots, uid, &b), 0);
	return buf_cstr(&b);
}

static const char *refs_thread(const struct tmsg *in, size_t n)
{
	return thread_run(IMAP_THREAD_REFERENCES, in, n, false);
}

static void test_thread_simple(void **state)
{
	(void)state;
	const struct tmsg in[] = {
	    {"Message-ID: <a@x>\r\nSubject: x\r\n\r\n", 10},
	    {"Message-ID: <b@x>\r\nReferences: <a@x>\r\nSubject: Re: x\r\n\r\n", 20},
	    {"Message-ID: <c@x>\r\nReferences: <a@x> <b@x>\r\nSubject: Re: x\r\n\r\n", 30},
	    {"Message-ID: <d@x>\r\nIn-Reply-To: <a@x> (a's message)\r\nSubject: Re: x\r\n\r\n", 40},
	    {"Message-ID: <e@x>\r\nSubject: other\r\n\r\n", 5},
	};
	assert_string_equal(refs_thread(in, 5), "(5)(1 (2 3)(4))");
	assert_string_equal(thread_run(IMAP_THREAD_REFERENCES, in, 5, true),
	                    "(104)(100 (101 102)(103))");
	assert_string_equal(thread_run(IMAP_THREAD_REFERENCES, in, 0, false), "");
}

static void test_thread_siblings_by_date(void **state)
{
	(void)state;
	const struct tmsg in[] = {
	    {"Message-ID: <a@x>\r\nDate: 1 Jan 2020 00:00:10 +0000\r\n\r\n", 0},
	    {"Message-ID: <b@x>\r\nReferences: <a@x>\r\nDate: 1 Jan 2020 00:00:30 +0000\r\n\r\n",
	     0},
	    {"Message-ID: <c@x>\r\nReferences: <a@x>\r\nDate: 1 Jan 2020 00:00:20 +0000\r\n\r\n",
	     0},
	    /* equal dates: sequence order */
	    {"Message-ID: <d@x>\r\nReferences: <a@x>\r\nDate: 1 Jan 2020 00:00:20 +0000\r\n\r\n",
	     0},
	};
	assert_string_equal(refs_thread(in, 4), "(1 (3)(4)(2))");
}

static void test_thread_missing_parent(void **state)
{
	(void)state;
	/* a@x never arrived: its replies hang under a dummy kept at the root (two children) */
	const struct tmsg in[] = {
	    {"Message-ID: <b@x>\r\nReferences: <a@x>\r\nSubject: Re: hello\r\n\r\n", 10},
	    {"Message-ID: <c@x>\r\nReferences: <a@x>\r\nSubject: Re: hello\r\n\r\n", 20},
	    /* one child only: the dummy goes and the child becomes a root */
	    {"Message-ID: <e@x>\r\nReferences: <d@x>\r\nSubject: lone\r\n\r\n", 30},
	    /* a dummy in the middle of a chain is pruned: f - (g missing) - h */
	    {"Message-ID: <f@x>\r\nSubject: chain\r\n\r\n", 40},
	    {"Message-ID: <h@x>\r\nReferences: <f@x> <g@x>\r\nSubject: Re: chain\r\n\r\n", 50},
	};
	assert_string_equal(refs_thread(in, 5), "((1)(2))(3)(4 5)");
}

static void test_thread_loops(void **state)
{
	(void)state;
	/* a refers to b and b to a: the second link would close a loop and is not made */
	const struct tmsg loop[] = {
	    {"Message-ID: <a@x>\r\nReferences: <b@x>\r\nSubject: s\r\n\r\n", 10},
	    {"Message-ID: <b@x>\r\nReferences: <a@x>\r\nSubject: t\r\n\r\n", 20},
	};
	assert_string_equal(refs_thread(loop, 2), "(2 1)");
	/* self-references, in References and In-Reply-To */
	const struct tmsg self[] = {
	    {"Message-ID: <a@x>\r\nReferences: <a@x>\r\nSubject: s\r\n\r\n", 10},
	    {"Message-ID: <b@x>\r\nIn-Reply-To: <b@x>\r\nSubject: t\r\n\r\n", 20},
	    {"Message-ID: <c@x>\r\nReferences: <a@x> <c@x> <a@x>\r\nSubject: u\r\n\r\n", 30},
	};
	assert_string_equal(refs_thread(self, 3), "(1 3)(2)");
	/* a longer cycle inside one References field and across three messages */
	const struct tmsg cycle[] = {
	    {"Message-ID: <a@x>\r\nReferences: <b@x> <c@x>\r\nSubject: p\r\n\r\n", 10},
	    {"Message-ID: <b@x>\r\nReferences: <c@x> <a@x>\r\nSubject: q\r\n\r\n", 20},
	    {"Message-ID: <c@x>\r\nReferences: <a@x> <b@x> <c@x> <a@x>\r\nSubject: r\r\n\r\n", 30},
	};
	/* 1: b - c - a(1); 2: b(2), its parent a would close a loop; 3: c(3) leaves b for its
	 * own last reference a, which is below it: no link, c stays a root over a */
	assert_string_equal(refs_thread(cycle, 3), "(2)(3 1)");
}

static void test_thread_duplicates(void **state)
{
	(void)state;
	const struct tmsg in[] = {
	    {"Message-ID: <a@x>\r\nSubject: x\r\n\r\n", 10},
	    {"Message-ID: <a@x>\r\nSubject: y\r\n\r\n", 20}, /* duplicate: an id of its own */
	    {"Message-ID: <c@x>\r\nReferences: <a@x>\r\nSubject: Re: x\r\n\r\n", 30},
	    {"Subject: z\r\n\r\n", 40},                            /* no Message-ID */
	    {"Message-ID: <not valid>\r\nSubject: w\r\n\r\n", 50}, /* invalid: none */
	    {"Message-ID: <not valid>\r\nSubject: v\r\n\r\n", 60},
	};
	assert_string_equal(refs_thread(in, 6), "(1 3)(2)(4)(5)(6)");
}

static void test_thread_broken_references(void **state)
{
	(void)state;
	const struct tmsg in[] = {
	    {"Message-ID: <a@x>\r\nSubject: t\r\n\r\n", 10},
	    /* References without a valid id: In-Reply-To is used */
	    {"Message-ID: <b@x>\r\nReferences: junk <no-at> <>\r\nIn-Reply-To: <a@x>\r\n"
	     "Subject: t2\r\n\r\n",
	     20},
	    /* truncated References: the last one is the parent (1C replaces 1A's link) */
	    {"Message-ID: <c@x>\r\nReferences: <b@x>\r\nSubject: t3\r\n\r\n", 30},
	    {"Message-ID: <d@x>\r\nReferences: <a@x> <c@x>\r\nSubject: t4\r\n\r\n", 40},
	    /* unterminated and garbage ids */
	    {"Message-ID: <e@x\r\nReferences: <<<@>>> <a@x\r\nSubject: t5\r\n\r\n", 50},
	};
	assert_string_equal(refs_thread(in, 5), "(1 2 3 4)(5)");
}

static void test_thread_subjects(void **state)
{
	(void)state;
	/* step 5: roots with one base subject gathered; a reply goes under the original,
	 * two originals under a new dummy; empty subjects are never gathered */
	const struct tmsg in[] = {
	    {"Message-ID: <a@x>\r\nSubject: topic\r\n\r\n", 10},
	    {"Message-ID: <b@x>\r\nSubject: Re: topic\r\n\r\n", 20},
	    {"Message-ID: <c@x>\r\nSubject: other\r\n\r\n", 30},
	    {"Message-ID: <d@x>\r\nSubject: OTHER\r\n\r\n", 40},
	    {"Message-ID: <e@x>\r\nSubject: \r\n\r\n", 50},
	    {"Message-ID: <f@x>\r\n\r\n", 60},
	    {"Message-ID: <g@x>\r\nSubject: [fwd: topic]\r\n\r\n", 5},
	};
	assert_string_equal(refs_thread(in, 7), "(1 (7)(2))((3)(4))(5)(6)");
	/* a reply first in the table is replaced by the original (5B) */
	const struct tmsg in2[] = {
	    {"Message-ID: <a@x>\r\nSubject: Re: q\r\n\r\n", 10},
	    {"Message-ID: <b@x>\r\nSubject: q\r\n\r\n", 20},
	    {"Message-ID: <c@x>\r\nSubject: Re: q\r\n\r\n", 30},
	};
	assert_string_equal(refs_thread(in2, 3), "(2 (1)(3))");
	/* a dummy root (missing parent) takes same-subject roots as children */
	const struct tmsg in3[] = {
	    {"Message-ID: <b@x>\r\nReferences: <a@x>\r\nSubject: Re: z\r\n\r\n", 10},
	    {"Message-ID: <c@x>\r\nReferences: <a@x>\r\nSubject: Re: z\r\n\r\n", 20},
	    {"Message-ID: <d@x>\r\nSubject: z\r\n\r\n", 30},
	};
	assert_string_equal(refs_thread(in3, 3), "((1)(2)(3))");
}

static void test_thread_orderedsubject(void **state)
{
	(void)state;
	const struct tmsg in[] = {
	    {"Subject: b\r\nDate: 1 Jan 2020 00:01:40 +0000\r\n\r\n", 0},     /* 100 */
	    {"Subject: a\r\nDate: 1 Jan 2020 00:03:20 +0000\r\n\r\n", 0},     /* 200 */
	    {"Subject: Re: b\r\nDate: 1 Jan 2020 00:05:00 +0000\r\n\r\n", 0}, /* 300 */
	    {"Subject: Re: A\r\nDate: 1 Jan 2020 00:00:50 +0000\r\n\r\n", 0}, /* 50 */
	    {"Subject: b\r\nDate: 1 Jan 2020 00:06:40 +0000\r\n\r\n", 0},     /* 400 */
	    {"Subject: c\r\nIn-Reply-To: <q@x>\r\n\r\n", 1577836800 + 150},   /* internal date */
	};
	assert_string_equal(thread_run(IMAP_THREAD_ORDEREDSUBJECT, in, 6, false),
	                    "(4 2)(1 (3)(5))(6)");
	enum imap_thread_algo algo;
	assert_int_equal(imap_thread_algo_parse("orderedsubject", &algo), 0);
	assert_int_equal(algo, IMAP_THREAD_ORDEREDSUBJECT);
	assert_int_equal(imap_thread_algo_parse("REFERENCES", &algo), 0);
	assert_int_equal(algo, IMAP_THREAD_REFERENCES);
	assert_int_equal(imap_thread_algo_parse("REFS", &algo), -1);
}

static void test_thread_many_refs(void **state)
{
	(void)state;
	/* more References than are kept: the last IMAP_THREAD_REFS_MAX, so the parent is right */
	struct buf h;
	buf_init(&h, 1 << 16);
	assert_int_equal(buf_puts(&h, "Message-ID: <z@x>\r\nReferences:"), 0);
	for (int i = 0; i < IMAP_THREAD_REFS_MAX + 40; i++)
		assert_int_equal(buf_printf(&h, " <r%d@x>", i), 0);
	assert_int_equal(buf_puts(&h, " <p@x>\r\n\r\n"), 0);
	struct imap_thread_msg m = {.seq = 1};
	imap_thread_msg_headers(arena, (const unsigned char *)h.data, h.len, &m);
	assert_int_equal(m.ref_count, IMAP_THREAD_REFS_MAX);
	assert_string_equal(m.refs[IMAP_THREAD_REFS_MAX - 1], "p@x");
	assert_string_equal(m.refs[0], "r41@x"); /* REFS_MAX + 41 ids: the last REFS_MAX kept */
	buf_free(&h);
	/* an id longer than IMAP_THREAD_ID_MAX is no id */
	buf_init(&h, 1 << 16);
	assert_int_equal(buf_puts(&h, "Message-ID: <"), 0);
	for (int i = 0; i < IMAP_THREAD_ID_MAX; i++)
		assert_int_equal(buf_puts(&h, "x"), 0);
	assert_int_equal(buf_puts(&h, "@y>\r\nIn-Reply-To: <q@x>\r\n\r\n"), 0);
	imap_thread_msg_headers(arena, (const unsigned char *)h.data, h.len, &m);
	assert_null(m.message_id);
	assert_int_equal(m.ref_count, 1);
	assert_string_equal(m.refs[0], "q@x");
	buf_free(&h);
}

/* A chain of many replies: every walk is iterative, so neither the stack nor quadratic
 * loop checks get in the way. */
static void test_thread_long_chain(void **state)
{
	(void)state;
	enum { N = 50000 };
	struct imap_thread_msg *m = calloc(N, sizeof(*m));
	for (uint32_t i = 0; i < N; i++) {
		char id[32], ref[32];
		snprintf(id, sizeof(id), "m%u@x", i);
		snprintf(ref, sizeof(ref), "m%u@x", i - 1);
		m[i] =
		    (struct imap_thread_msg){.seq = i + 1, .uid = i + 1, .date = i, .subject = "s"};
		m[i].message_id = arena_strdup(arena, id);
		if (i > 0) {
			const char **r = arena_alloc(arena, sizeof(*r));
			r[0] = arena_strdup(arena, ref);
			m[i].refs = r;
			m[i].ref_count = 1;
		}
	}
	struct imap_thread_node *roots = imap_thread_build(arena, IMAP_THREAD_REFERENCES, m, N);
	struct buf b;
	buf_init(&b, 1 << 22);
	assert_int_equal(imap_thread_format(roots, false, &b), 0);
	assert_int_equal(strncmp(b.data, "(1 2 3 ", 7), 0);
	assert_int_equal(strcmp(b.data + b.len - 7, " 50000)"), 0);
	buf_free(&b);
	/* a deep branching tree: each node has a leaf child and the next node */
	for (uint32_t i = 2; i < N; i += 2) {
		const char **r = arena_alloc(arena, sizeof(*r));
		char ref[32];
		snprintf(ref, sizeof(ref), "m%u@x", i - 2);
		r[0] = arena_strdup(arena, ref);
		m[i].refs = r;
		m[i].ref_count = 1;
	}
	roots = imap_thread_build(arena, IMAP_THREAD_REFERENCES, m, N);
	buf_init(&b, 1 << 22);
	assert_int_equal(imap_thread_format(roots, false, &b), 0);
	assert_int_equal(strncmp(b.data, "(1 (2)(3 (4)(5 ", 15), 0);
	buf_free(&b);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_base_subject, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_base_subject_nul, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_collate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_program, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sort_keys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sort_msg_headers_resets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sort_cmp_ties, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_thread_simple, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_thread_siblings_by_date, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_thread_missing_parent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_thread_loops, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_thread_duplicates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_thread_broken_references, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_thread_subjects, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_thread_orderedsubject, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_thread_many_refs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_thread_long_chain, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
