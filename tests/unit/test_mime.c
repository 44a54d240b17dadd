/* Unit tests for mime/mime: header and body offsets byte-exact (what BODY[HEADER], [TEXT],
 * [n], [n.MIME] return), section lookup including message/rfc822 nesting (RFC 3501 §6.4.5's
 * example structure), Content-* fields and RFC 2231 parameters, the recovery rules for broken
 * MIME and the limits. The expectations for broken MIME are those dovecot-imapd 2.3.19
 * answered for the same messages (BODY[n], BODY[n.MIME] and BODYSTRUCTURE sizes). */
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
#include "mime/mime.h"
#include "core/banned.h"

static struct arena *arena;

static int setup(void **state)
{
	(void)state;
	arena = arena_new(65536);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	arena_free(&arena);
	return 0;
}

static const char *cur_msg;

static struct mime_part *parse_lim(const char *msg, size_t len, const struct mime_limits *lim,
                                   int want_ret)
{
	struct mime_part *root = NULL;
	cur_msg = msg;
	assert_int_equal(mime_parse(arena, (const unsigned char *)msg, len, lim, &root), want_ret);
	assert_non_null(root);
	return root;
}

static struct mime_part *parse(const char *msg)
{
	return parse_lim(msg, strlen(msg), NULL, 0);
}

/* The octets of [start, start+len) of the current message equal want. */
static void expect_range(size_t start, size_t len, const char *want)
{
	if (len != strlen(want) || memcmp(cur_msg + start, want, len) != 0)
		fail_msg("range [%zu,+%zu) is \"%.*s\", want \"%s\"", start, len, (int)len,
		         cur_msg + start, want);
}

static void expect_header(const struct mime_part *p, const char *want)
{
	expect_range(p->header_start, p->header_len, want);
}

static void expect_body(const struct mime_part *p, const char *want)
{
	expect_range(p->body_start, p->body_len, want);
}

static const struct mime_part *find(const struct mime_part *root, const char *section)
{
	return mime_part_find(root, section);
}

static void expect_type(const struct mime_part *p, const char *type, const char *subtype)
{
	assert_non_null(p);
	assert_string_equal(p->type, type);
	assert_string_equal(p->subtype, subtype);
}

static void test_simple(void **state)
{
	(void)state;
	struct mime_part *root =
	    parse("From: a@example.org\r\nSubject: s\r\n\r\nbody\r\nline 2\r\n");
	expect_header(root, "From: a@example.org\r\nSubject: s\r\n\r\n");
	expect_body(root, "body\r\nline 2\r\n");
	assert_int_equal(root->kind, MIME_KIND_LEAF);
	expect_type(root, "text", "plain");
	assert_null(root->type_raw);
	assert_false(root->mime);
	assert_int_equal(root->cte, MIME_ENCODING_7BIT);
	assert_int_equal(root->body_lines, 2);
	assert_int_equal(root->body_size, 14);
	assert_int_equal(root->header_lines, 3);
	assert_int_equal(root->header_size, 35);
	assert_int_equal(root->depth, 0);
	assert_null(root->parent);
	assert_int_equal(root->child_count, 0);
	assert_ptr_equal(find(root, ""), root);
	assert_ptr_equal(find(root, "1"), root);
	assert_null(find(root, "2"));
	assert_null(find(root, "1.1"));
}

static void test_header_only_and_empty(void **state)
{
	(void)state;
	struct mime_part *root = parse("");
	assert_int_equal(root->header_len, 0);
	assert_int_equal(root->body_len, 0);
	assert_int_equal(root->body_size, 0);
	root = parse("Subject: no newline");
	expect_header(root, "Subject: no newline");
	assert_int_equal(root->body_start, 19);
	assert_int_equal(root->body_len, 0);
	root = parse("Subject: no blank line\r\n");
	expect_header(root, "Subject: no blank line\r\n");
	assert_int_equal(root->body_len, 0);
	root = parse("\r\nbody only");
	expect_header(root, "\r\n");
	expect_body(root, "body only");
	root = parse("Subject: lf\n\nbody\n");
	expect_header(root, "Subject: lf\n\n");
	expect_body(root, "body\n");
	assert_int_equal(root->body_size, 6);
	assert_int_equal(root->header_size, 15);
}

static const char mixed_msg[] = "Subject: mixed\r\n"
                                "MIME-Version: 1.0\r\n"
                                "Content-Type: multipart/mixed; boundary=\"=_b\"\r\n"
                                "\r\n"
                                "preamble\r\n"
                                "--=_b\r\n"
                                "Content-Type: text/plain; charset=utf-8\r\n"
                                "\r\n"
                                "one\r\n"
                                "--=_b  \r\n"
                                "\r\n"
                                "two\r\n"
                                "\r\n"
                                "--=_b--\r\n"
                                "epilogue\r\n";

static void test_multipart_offsets(void **state)
{
	(void)state;
	struct mime_part *root = parse(mixed_msg);
	assert_int_equal(root->kind, MIME_KIND_MULTIPART);
	expect_type(root, "multipart", "mixed");
	assert_string_equal(mime_part_param(root, "BOUNDARY"), "=_b");
	assert_int_equal(root->child_count, 2);
	expect_body(root,
	            "preamble\r\n--=_b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\none\r\n"
	            "--=_b  \r\n\r\ntwo\r\n\r\n--=_b--\r\nepilogue\r\n");
	const struct mime_part *p1 = find(root, "1"), *p2 = find(root, "2");
	assert_ptr_equal(p1, &root->children[0]);
	assert_ptr_equal(p2, &root->children[1]);
	assert_null(find(root, "3"));
	expect_header(p1, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	expect_body(p1, "one");
	assert_string_equal(mime_part_param(p1, "charset"), "utf-8");
	assert_true(p1->mime);
	assert_int_equal(p1->depth, 1);
	assert_ptr_equal(p1->parent, root);
	/* an empty header: only the blank line; the body keeps its own blank line */
	expect_header(p2, "\r\n");
	expect_body(p2, "two\r\n");
	expect_type(p2, "text", "plain");
	assert_null(p2->type_raw);
	assert_true(p2->mime);
	assert_int_equal(p2->body_lines, 1);
}

/* RFC 3501 §6.4.5's example of part specifiers, in a real message. */
static const char complex_msg[] =
    "Subject: complex\r\nMIME-Version: 1.0\r\nContent-Type: MULTIPART/MIXED; boundary=a\r\n\r\n"
    "--a\r\nContent-Type: TEXT/PLAIN\r\n\r\npart 1\r\n"
    "--a\r\nContent-Type: APPLICATION/OCTET-STREAM\r\n\r\npart 2\r\n"
    "--a\r\nContent-Type: MESSAGE/RFC822\r\n\r\n"
    "Subject: part 3\r\nMIME-Version: 1.0\r\nContent-Type: MULTIPART/MIXED; boundary=b\r\n\r\n"
    "--b\r\nContent-Type: TEXT/PLAIN\r\n\r\npart 3.1\r\n"
    "--b\r\nContent-Type: APPLICATION/OCTET-STREAM\r\n\r\npart 3.2\r\n"
    "--b--\r\n"
    "--a\r\nContent-Type: MULTIPART/MIXED; boundary=c\r\n\r\n"
    "--c\r\nContent-Type: IMAGE/GIF\r\n\r\npart 4.1\r\n"
    "--c\r\nContent-Type: MESSAGE/RFC822\r\n\r\n"
    "Subject: part 4.2\r\nMIME-Version: 1.0\r\nContent-Type: MULTIPART/MIXED; boundary=d\r\n\r\n"
    "--d\r\nContent-Type: TEXT/PLAIN\r\n\r\npart 4.2.1\r\n"
    "--d\r\nContent-Type: MULTIPART/ALTERNATIVE; boundary=e\r\n\r\n"
    "--e\r\nContent-Type: TEXT/PLAIN\r\n\r\npart 4.2.2.1\r\n"
    "--e\r\nContent-Type: TEXT/RICHTEXT\r\n\r\npart 4.2.2.2\r\n"
    "--e--\r\n--d--\r\n--c--\r\n--a--\r\n";

static void test_rfc3501_sections(void **state)
{
	(void)state;
	static const struct {
		const char *section, *type, *subtype;
	} parts[] = {
	    {"1", "text", "plain"},
	    {"2", "application", "octet-stream"},
	    {"3", "message", "rfc822"},
	    {"3.1", "text", "plain"},
	    {"3.2", "application", "octet-stream"},
	    {"4", "multipart", "mixed"},
	    {"4.1", "image", "gif"},
	    {"4.2", "message", "rfc822"},
	    {"4.2.1", "text", "plain"},
	    {"4.2.2", "multipart", "alternative"},
	    {"4.2.2.1", "text", "plain"},
	    {"4.2.2.2", "text", "richtext"},
	};
	struct mime_part *root = parse(complex_msg);
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		const struct mime_part *p = find(root, parts[i].section);
		if (p == NULL)
			fail_msg("section %s not found", parts[i].section);
		expect_type(p, parts[i].type, parts[i].subtype);
		if (p->kind == MIME_KIND_LEAF) {
			char want[32];
			snprintf(want, sizeof(want), "part %s", parts[i].section);
			expect_body(p, want);
		}
	}
	/* type_raw keeps the case of the message */
	assert_string_equal(find(root, "4.2.2.2")->type_raw, "TEXT");
	assert_string_equal(find(root, "4.2.2.2")->subtype_raw, "RICHTEXT");
	/* 3.HEADER / 3.TEXT: the encapsulated message's header and body */
	const struct mime_part *p3 = find(root, "3");
	assert_int_equal(p3->kind, MIME_KIND_MESSAGE);
	assert_int_equal(p3->child_count, 1);
	assert_ptr_equal(p3->message, &p3->children[0]);
	assert_ptr_equal(p3->message->parent, p3);
	expect_header(p3, "Content-Type: MESSAGE/RFC822\r\n\r\n");
	expect_header(p3->message, "Subject: part 3\r\nMIME-Version: 1.0\r\nContent-Type: "
	                           "MULTIPART/MIXED; boundary=b\r\n\r\n");
	assert_int_equal(p3->message->body_start + p3->message->body_len,
	                 p3->body_start + p3->body_len);
	assert_int_equal(p3->message->header_start, p3->body_start);
	/* 4.1.MIME */
	expect_header(find(root, "4.1"), "Content-Type: IMAGE/GIF\r\n\r\n");
	assert_int_equal(find(root, "4.2.2.2")->depth, 5);
	static const char *const missing[] = {"5",
	                                      "3.3",
	                                      "4.3",
	                                      "4.2.3",
	                                      "4.2.2.3",
	                                      "1.1",
	                                      "4.1.1",
	                                      "4.2.1.1",
	                                      "0",
	                                      "01",
	                                      "1.",
	                                      ".1",
	                                      "1..1",
	                                      "a",
	                                      "1a",
	                                      "3.1.",
	                                      "99999999999999999999999999"};
	for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
		if (find(root, missing[i]) != NULL)
			fail_msg("section '%s' should not exist", missing[i]);
	}
}

/* A non-multipart message has part 1 (itself); message/rfc822 nests (RFC 9051 §6.4.5). */
static void test_single_part_message_sections(void **state)
{
	(void)state;
	struct mime_part *root = parse("MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n"
	                               "Subject: inner\r\nMIME-Version: 1.0\r\n"
	                               "Content-Type: message/rfc822\r\n\r\n"
	                               "Subject: innermost\r\n\r\ntext\r\n");
	assert_int_equal(root->kind, MIME_KIND_MESSAGE);
	assert_ptr_equal(find(root, "1"), root);
	assert_ptr_equal(find(root, "1.1"), root->message);
	assert_ptr_equal(find(root, "1.1.1"), root->message->message);
	assert_null(find(root, "1.1.1.1"));
	assert_null(find(root, "1.2"));
	expect_header(root->message->message, "Subject: innermost\r\n\r\n");
	expect_body(root->message->message, "text\r\n");
	assert_int_equal(root->message->message->depth, 2);
	/* the message/rfc822 line count and size cover the whole encapsulated message */
	assert_int_equal(root->body_lines, 7);
	assert_int_equal(root->body_size, root->body_len);
}

static void test_digest_defaults(void **state)
{
	(void)state;
	struct mime_part *root =
	    parse("MIME-Version: 1.0\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n"
	          "--d\r\n\r\nSubject: one\r\n\r\nfirst\r\n"
	          "--d\r\nContent-Type: text/plain\r\n\r\nsecond\r\n"
	          "--d--\r\n");
	assert_int_equal(root->child_count, 2);
	const struct mime_part *p1 = find(root, "1");
	expect_type(p1, "message", "rfc822");
	assert_null(p1->type_raw);
	assert_int_equal(p1->kind, MIME_KIND_MESSAGE);
	expect_header(p1->message, "Subject: one\r\n\r\n");
	expect_body(p1->message, "first");
	assert_ptr_equal(find(root, "1.1"), p1->message);
	expect_type(find(root, "2"), "text", "plain");
	assert_int_equal(find(root, "2")->kind, MIME_KIND_LEAF);
}

static void expect_param(const struct mime_param *p, const char *name, const char *value)
{
	assert_string_equal(p->name, name);
	assert_string_equal(p->value, value);
}

/* RFC 2231 sections are merged, not decoded (as Dovecot reports them in BODYSTRUCTURE). */
static void test_params_rfc2231(void **state)
{
	(void)state;
	struct mime_part *root =
	    parse("MIME-Version: 1.0\r\n"
	          "Content-Type: Application/X-Test; Z=\"q \\\"x\\\" y\"; title*1=\" two\"; "
	          "title*0=one;\r\n"
	          " name*0*=utf-8'en'%E2%82%AC; name*1=\"%rest\"; gap*0=a; gap*2=c; "
	          "ext*=us-ascii''x%20y\r\n"
	          "Content-Disposition: attachment; filename=\"a;b.txt\"; size=12\r\n"
	          "\r\n"
	          "x");
	expect_type(root, "application", "x-test");
	assert_string_equal(root->type_raw, "Application");
	assert_int_equal(root->param_count, 6);
	expect_param(&root->params[0], "Z", "q \"x\" y");
	/* the sections come after the plain parameters, sorted by name; "ext*" has no number
	 * and inherits the previous section's (2), so it stands alone as "ext*2*" — Dovecot's
	 * parser does exactly this (checked against dovecot-imapd) */
	expect_param(&root->params[1], "ext*2*", "us-ascii''x%20y");
	expect_param(&root->params[2], "gap*0", "a");
	expect_param(&root->params[3], "gap*2", "c");
	expect_param(&root->params[4], "name*", "utf-8'en'%E2%82%AC%25rest");
	expect_param(&root->params[5], "title", "one two");
	assert_string_equal(mime_part_param(root, "z"), "q \"x\" y");
	assert_null(mime_part_param(root, "boundary"));
	assert_string_equal(root->disposition, "attachment");
	assert_int_equal(root->disposition_param_count, 2);
	expect_param(&root->disposition_params[0], "filename", "a;b.txt");
	expect_param(&root->disposition_params[1], "size", "12");
}

/* What could be read of a broken Content-Type is kept (Dovecot's answers). */
static void test_broken_content_type(void **state)
{
	(void)state;
	static const struct {
		const char *value, *type, *subtype;
		size_t params;
	} cases[] = {
	    {"text", "text", "", 0},
	    {"text (comment)", "text", "", 0},
	    {"text; charset=x", "", "", 0},
	    {"text/; charset=x", "", "", 0},
	    {"text/plain garbage; charset=x", "", "", 0},
	    {"", "", "", 0},
	    {"/plain", "", "", 0},
	    {"text/plain (c) ; charset=x", "text", "plain", 1},
	    {" TEXT / HTML ;charset=x", "text", "html", 1},
	    {"text/plain; charset=\"unterminated", "text", "plain", 0},
	    {"text/plain; ; a=1; b; c=\"x\" y; d=2", "text", "plain", 1}, /* only d=2 */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char msg[256];
		snprintf(msg, sizeof(msg), "MIME-Version: 1.0\r\nContent-Type: %s\r\n\r\nbody",
		         cases[i].value);
		struct mime_part *root = parse(msg);
		if (strcmp(root->type, cases[i].type) != 0 ||
		    strcmp(root->subtype, cases[i].subtype) != 0 ||
		    root->param_count != cases[i].params)
			fail_msg("'%s': got %s/%s with %zu params", cases[i].value, root->type,
			         root->subtype, root->param_count);
		assert_int_equal(root->kind, MIME_KIND_LEAF);
		assert_non_null(root->type_raw);
	}
	struct mime_part *root =
	    parse("MIME-Version: 1.0\r\nContent-Type: multipart/mixed garbage; "
	          "boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n");
	assert_int_equal(root->kind, MIME_KIND_LEAF);
	assert_int_equal(root->child_count, 0);
	assert_string_equal(root->type, "");
}

static void test_missing_or_wrong_boundary(void **state)
{
	(void)state;
	/* no boundary parameter: a multipart without parts; its body is not split */
	struct mime_part *root = parse("MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n"
	                               "--x\r\n\r\nbody\r\n--x--\r\n");
	assert_int_equal(root->kind, MIME_KIND_MULTIPART);
	assert_int_equal(root->child_count, 0);
	expect_body(root, "--x\r\n\r\nbody\r\n--x--\r\n");
	assert_null(find(root, "1"));
	/* a boundary that never comes */
	root = parse("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=right\r\n\r\n"
	             "--wrong\r\n\r\nbody\r\n");
	assert_int_equal(root->kind, MIME_KIND_MULTIPART);
	assert_int_equal(root->child_count, 0);
	/* no end boundary: the last part runs to the end of the message */
	root = parse("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
	             "--b\r\n\r\none\r\n--b\r\nContent-Type: text/html\r\n\r\ntwo\r\nthree\r\n");
	assert_int_equal(root->child_count, 2);
	expect_body(&root->children[0], "one");
	expect_body(&root->children[1], "two\r\nthree\r\n");
	/* the end boundary at the very end without a line break */
	root = parse("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
	             "--b\r\n\r\none\r\n--b--");
	assert_int_equal(root->child_count, 1);
	expect_body(&root->children[0], "one");
	/* a boundary line at the very end opens no part */
	root = parse("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
	             "--b\r\n\r\none\r\n--b");
	assert_int_equal(root->child_count, 1);
	/* the body starts with the boundary: no preamble, no line break taken */
	root = parse("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
	             "--b\r\n--b\r\n\r\nsecond\r\n--b--\r\n");
	assert_int_equal(root->child_count, 2);
	expect_header(&root->children[0], "");
	expect_body(&root->children[0], "");
	expect_body(&root->children[1], "second");
}

/* A header that a boundary line cuts short: its last line break is the boundary's, and
 * belongs to the parent's body (BODY[n] and BODY[n.MIME] as dovecot-imapd answers them). */
static void test_header_cut_by_boundary(void **state)
{
	(void)state;
	static const char msg[] =
	    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
	    "--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n"
	    "--c\r\nContent-Type: text/plain\r\n\r\n" /* blank line, then the outer boundary */
	    "--b\r\nContent-Type: text/plain\r\n"     /* no blank line */
	    "--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n"
	    "--b\r\n\r\n--b--\r\n";
	struct mime_part *root = parse(msg);
	assert_int_equal(root->child_count, 4);
	const struct mime_part *p1 = find(root, "1"), *p11 = find(root, "1.1");
	expect_body(p1, "--c\r\nContent-Type: text/plain\r\n\r\n");
	expect_header(p11, "Content-Type: text/plain\r\n");
	expect_body(p11, "");
	const struct mime_part *p2 = find(root, "2");
	expect_header(p2, "Content-Type: text/plain");
	expect_body(p2, "");
	const struct mime_part *p3 = find(root, "3");
	assert_int_equal(p3->kind, MIME_KIND_MESSAGE);
	expect_header(p3, "Content-Type: message/rfc822\r\n\r\n");
	expect_body(p3, "Subject: inner\r\n");
	expect_header(p3->message, "Subject: inner");
	expect_body(p3->message, "");
	assert_int_equal(p3->body_lines, 1);
	/* a multipart whose header is cut has no parts */
	root = parse("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
	             "--b\r\nContent-Type: multipart/alternative; boundary=x\r\n--b--\r\n");
	assert_int_equal(root->children[0].kind, MIME_KIND_MULTIPART);
	assert_int_equal(root->children[0].child_count, 0);
}

static void test_boundary_matching(void **state)
{
	(void)state;
	/* prefixes: the longest open boundary wins, a boundary only needs to start the line */
	struct mime_part *root =
	    parse("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
	          "--b\r\nContent-Type: multipart/alternative; boundary=bb\r\n\r\n"
	          "--bb\r\n\r\nin bb\r\n--bbx\r\n\r\nalso bb\r\n--bb--\r\n"
	          "--bxyz\r\n\r\nin b\r\n-- b\r\n--B\r\n--b-- trailing\r\nepilogue\r\n--b\r\n");
	assert_int_equal(root->child_count, 2);
	const struct mime_part *alt = find(root, "1");
	assert_int_equal(alt->child_count, 2);
	expect_body(find(root, "1.1"), "in bb");
	expect_body(find(root, "1.2"), "also bb");
	expect_body(find(root, "2"), "in b\r\n-- b\r\n--B");
	/* the close delimiter ended the multipart: "--b" in the epilogue opens nothing */
	expect_body(root,
	            "--b\r\nContent-Type: multipart/alternative; boundary=bb\r\n\r\n"
	            "--bb\r\n\r\nin bb\r\n--bbx\r\n\r\nalso bb\r\n--bb--\r\n"
	            "--bxyz\r\n\r\nin b\r\n-- b\r\n--B\r\n--b-- trailing\r\nepilogue\r\n--b\r\n");
	/* the same boundary nested: the inner multipart takes it until its close delimiter, then
	 * the outer one gets it back */
	root = parse("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=s\r\n\r\n"
	             "--s\r\nContent-Type: multipart/alternative; boundary=s\r\n\r\n"
	             "--s\r\n\r\na\r\n--s\r\n\r\nb\r\n--s--\r\n--s\r\n\r\nc\r\n--s--\r\n");
	assert_int_equal(root->child_count, 2);
	assert_int_equal(root->children[0].child_count, 2);
	expect_body(&root->children[1], "c");
	/* an outer boundary closes inner parts that lack their end boundary */
	root = parse("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
	             "--o\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\r\ninner\r\n"
	             "--o\r\n\r\nouter\r\n--o--\r\n");
	assert_int_equal(root->child_count, 2);
	expect_body(find(root, "1.1"), "inner");
	expect_body(find(root, "1"), "--i\r\n\r\ninner");
	expect_body(find(root, "2"), "outer");
	/* an over-long boundary parameter is cut at 80 octets */
	char msg[512], b[91];
	memset(b, 'L', 90);
	b[90] = '\0';
	snprintf(msg, sizeof(msg),
	         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n"
	         "--%.80sX\r\n\r\nbody\r\n--%s--\r\n",
	         b, b, b);
	root = parse(msg);
	/* the 90-octet close line is the 80-octet boundary followed by "LL...", not by "--":
	 * it opens an (empty) second part */
	assert_int_equal(root->child_count, 2);
	expect_body(&root->children[0], "body");
	expect_header(&root->children[1], "");
}

static void test_content_fields(void **state)
{
	(void)state;
	struct mime_part *root = parse("MIME-Version: 1.0\r\n"
	                               "Content-Type: text/plain\r\n"
	                               "Content-ID: <id@example.org>\r\n"
	                               "Content-ID: <second@example.org>\r\n"
	                               "Content-Description: folded\r\n\tdescription\r\n"
	                               "content-md5:  Q2hlY2s=\r\n"
	                               "Content-Language: en-US, de (German), fr\r\n"
	                               "Content-Location: https://example.org/x\r\n"
	                               "Content-Transfer-Encoding: (comment) Quoted-Printable\r\n"
	                               "Content-Disposition: inline\r\n"
	                               "Content-Disposition: attachment; filename=x\r\n"
	                               "Content-Disposition: form-data; name=y\r\n"
	                               "\r\n"
	                               "x");
	assert_string_equal(root->id, "<id@example.org>");
	assert_string_equal(root->description, "folded\n\tdescription");
	assert_string_equal(root->md5, "Q2hlY2s=");
	assert_string_equal(root->location, "https://example.org/x");
	assert_int_equal(root->language_count, 3);
	assert_string_equal(root->languages[0], "en-US");
	assert_string_equal(root->languages[1], "de");
	assert_string_equal(root->languages[2], "fr");
	assert_string_equal(root->encoding, "Quoted-Printable");
	assert_int_equal(root->cte, MIME_ENCODING_QUOTED_PRINTABLE);
	/* Dovecot reads Content-Disposition again while it has no parameters */
	assert_string_equal(root->disposition, "attachment");
	assert_int_equal(root->disposition_param_count, 1);

	static const struct {
		const char *cte;
		enum mime_encoding e;
		bool kept;
	} ctes[] = {
	    {"7bit", MIME_ENCODING_7BIT, true},
	    {"8BIT", MIME_ENCODING_8BIT, true},
	    {"binary", MIME_ENCODING_BINARY, true},
	    {"Base64", MIME_ENCODING_BASE64, true},
	    {"x-uuencode", MIME_ENCODING_OTHER, true},
	    {"base64 garbage", MIME_ENCODING_7BIT, false},
	    {"\"base64\"", MIME_ENCODING_7BIT, false},
	    {"", MIME_ENCODING_7BIT, false},
	};
	for (size_t i = 0; i < sizeof(ctes) / sizeof(ctes[0]); i++) {
		char msg[128];
		snprintf(msg, sizeof(msg),
		         "MIME-Version: 1.0\r\nContent-Transfer-Encoding: %s\r\n\r\n", ctes[i].cte);
		root = parse(msg);
		assert_int_equal(root->cte, ctes[i].e);
		assert_int_equal(root->encoding != NULL, ctes[i].kept);
	}
	/* without MIME-Version or Content-Type the Content-* fields do not count... */
	root =
	    parse("Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment\r\n\r\nx");
	assert_false(root->mime);
	assert_null(root->encoding);
	assert_null(root->disposition);
	/* ...but they do with either, or inside a multipart */
	root = parse("Content-Type: text/html\r\nContent-Transfer-Encoding: 8bit\r\n\r\nx");
	assert_true(root->mime);
	assert_int_equal(root->cte, MIME_ENCODING_8BIT);
	root = parse("MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\nx");
	assert_int_equal(root->cte, MIME_ENCODING_BASE64);
	/* the first Content-Type counts */
	root = parse(
	    "MIME-Version: 1.0\r\nContent-Type: text/html\r\nContent-Type: image/png\r\n\r\n");
	expect_type(root, "text", "html");
}

/* NUL octets and garbage, as dovecot-imapd reads them: a NUL ends a field name and a token,
 * becomes U+FFFD in quoted strings, ends the value of the "name==?..." workaround; after 128
 * parameters and unparsable spots together the rest of a parameter list is ignored. */
static void test_nul_and_garbage(void **state)
{
	(void)state;
	static const char msg[] =
	    "MIME-Version: 1.0\r\n"
	    "Content-Type\0x: text/html; a=x\0y; b=\"q\0r\"; c= =?u?q?z?=\0zz; d=1\r\n"
	    "\r\nbody";
	struct mime_part *root = parse_lim(msg, sizeof(msg) - 1, NULL, 0);
	expect_type(root, "text", "html");
	assert_int_equal(root->param_count, 4);
	expect_param(&root->params[0], "a", "x");
	expect_param(&root->params[1], "b", "q\xEF\xBF\xBDr");
	expect_param(&root->params[2], "c", "=?u?q?z?=");
	expect_param(&root->params[3], "d", "1");

	char buf[512];
	for (int n = 126; n <= 127; n++) {
		int len = snprintf(buf, sizeof(buf),
		                   "MIME-Version: 1.0\r\nContent-Type: text/plain; a=u");
		memset(buf + len, '@', (size_t)n);
		len += n;
		len += snprintf(buf + len, sizeof(buf) - (size_t)len, "; b=2\r\n\r\n");
		root = parse_lim(buf, (size_t)len, NULL, 0);
		assert_int_equal(root->param_count, n == 126 ? 2 : 1);
	}
	struct buf b;
	buf_init(&b, 8192);
	assert_int_equal(buf_puts(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain"), 0);
	for (int i = 0; i < 200; i++)
		assert_int_equal(buf_printf(&b, "; a%d=1", i), 0);
	assert_int_equal(buf_puts(&b, "\r\n\r\n"), 0);
	root = parse_lim(b.data, b.len, NULL, 0);
	assert_int_equal(root->param_count, 128);
	assert_string_equal(root->params[127].name, "a127");
	buf_free(&b);
}

static const char deep_msg[] =
    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=d0\r\n\r\n"
    "--d0\r\nContent-Type: multipart/mixed; boundary=d1\r\n\r\n"
    "--d1\r\nContent-Type: multipart/mixed; boundary=d2\r\n\r\n"
    "--d2\r\nContent-Type: message/rfc822\r\n\r\n"
    "Subject: deep\r\n\r\ntext\r\n"
    "--d2--\r\n--d1--\r\n--d0--\r\n";

static void test_limit_depth(void **state)
{
	(void)state;
	struct mime_part *root = parse(deep_msg);
	const struct mime_part *p = find(root, "1.1.1.1");
	assert_non_null(p);
	assert_int_equal(p->depth, 4);
	assert_false(p->overflow);

	/* depth_max 3: the multipart at depth 2 is not opened */
	struct mime_limits lim = {.depth_max = 3, .parts_max = 100};
	root = parse_lim(deep_msg, strlen(deep_msg), &lim, -1);
	p = find(root, "1.1");
	assert_non_null(p);
	assert_int_equal(p->depth, 2);
	assert_int_equal(p->kind, MIME_KIND_LEAF);
	assert_true(p->overflow);
	expect_type(p, "multipart", "mixed");
	assert_null(find(root, "1.1.1"));
	/* its body runs to the parent's next boundary */
	expect_body(
	    p, "--d2\r\nContent-Type: message/rfc822\r\n\r\nSubject: deep\r\n\r\ntext\r\n--d2--");

	/* depth_max 4: the message/rfc822 at depth 3 stays a leaf */
	lim.depth_max = 4;
	root = parse_lim(deep_msg, strlen(deep_msg), &lim, -1);
	p = find(root, "1.1.1");
	assert_int_equal(p->kind, MIME_KIND_LEAF);
	assert_true(p->overflow);
	expect_type(p, "message", "rfc822");
	expect_body(p, "Subject: deep\r\n\r\ntext");
	/* and a depth beyond MIME_DEPTH_HARD_MAX is capped */
	lim.depth_max = 1u << 30;
	root = parse_lim(deep_msg, strlen(deep_msg), &lim, 0);
}

static void test_limit_parts(void **state)
{
	(void)state;
	static const char msg[] =
	    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
	    "--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b\r\n\r\nthree\r\n--b--\r\n";
	struct mime_limits lim = {.depth_max = 10, .parts_max = 3};
	/* the root counts: two children, and no boundary is recognised any more after them */
	struct mime_part *root = parse_lim(msg, strlen(msg), &lim, -1);
	assert_int_equal(root->child_count, 2);
	expect_body(&root->children[0], "one");
	expect_body(&root->children[1], "two\r\n--b\r\n\r\nthree\r\n--b--\r\n");
	assert_true(root->children[1].overflow);
	/* with 4 the last part is the 4th: the close delimiter after it is not seen either */
	lim.parts_max = 4;
	root = parse_lim(msg, strlen(msg), &lim, -1);
	assert_int_equal(root->child_count, 3);
	expect_body(&root->children[2], "three\r\n--b--\r\n");
	lim.parts_max = 5;
	root = parse_lim(msg, strlen(msg), &lim, 0);
	expect_body(&root->children[2], "three");
}

static void test_limit_header(void **state)
{
	(void)state;
	static const char msg[] = "MIME-Version: 1.0\r\nX-Padding: 0123456789\r\n"
	                          "Content-Type: text/html\r\n\r\nbody";
	struct mime_limits lim = {.depth_max = 10, .parts_max = 10, .header_max = 40};
	struct mime_part *root = parse_lim(msg, strlen(msg), &lim, -1);
	expect_type(root, "text", "plain"); /* Content-Type is beyond the limit */
	assert_true(root->overflow);
	expect_body(root, "body"); /* offsets stay exact */
	lim.header_max = 0;
	root = parse_lim(msg, strlen(msg), &lim, 0);
	expect_type(root, "text", "html");
}

/* mime_field_unfolded() with CRLF and LF folds, trailing WSP and a fold at the start. */
static void test_field_unfolded(void **state)
{
	(void)state;
	static const char msg[] = "Subject:\r\n =?utf-8?q?a?=\n\t=?utf-8?q?b?=  \t\r\n"
	                          "X-A: one \r\n  two\r\n\r\n";
	const unsigned char *m = (const unsigned char *)msg;
	struct mime_field_iter it;
	struct mime_field f;
	size_t vlen;
	mime_field_iter_init(&it, m, 0, sizeof(msg) - 1);
	assert_true(mime_field_iter_next(&it, &f));
	assert_string_equal(mime_field_unfolded(arena, m, &f, &vlen),
	                    "=?utf-8?q?a?=\t=?utf-8?q?b?=");
	assert_true(mime_field_iter_next(&it, &f));
	assert_string_equal(mime_field_unfolded(arena, m, &f, &vlen), "one   two");
	assert_int_equal(vlen, 9);
	assert_false(mime_field_iter_next(&it, &f));
}

static void test_field_iterator(void **state)
{
	(void)state;
	static const char msg[] = "Subject  : folded\r\n\tsecond\r\n third\r\n"
	                          "No colon here\r\n"
	                          "X-Empty:\r\n"
	                          "X-Spaces:   \r\n"
	                          "X-Nul: a\0b\r\n"
	                          "\r\n"
	                          "Body: not a field\r\n";
	const unsigned char *m = (const unsigned char *)msg;
	size_t len = sizeof(msg) - 1;
	struct mime_part *root = parse_lim(msg, len, NULL, 0);
	struct mime_field_iter it;
	struct mime_field f;
	size_t vlen;
	mime_field_iter_init(&it, m, root->header_start, root->header_start + root->header_len);

	assert_true(mime_field_iter_next(&it, &f));
	assert_true(mime_field_is(m, &f, "SUBJECT"));
	assert_int_equal(f.start, 0);
	assert_int_equal(f.len, 36);
	assert_string_equal(mime_field_value(arena, m, &f, &vlen), "folded\n\tsecond\n third");
	assert_int_equal(vlen, 21);
	/* unfolded for matching: line breaks gone, the folds' WSP kept */
	assert_string_equal(mime_field_unfolded(arena, m, &f, &vlen), "folded\tsecond third");
	assert_int_equal(vlen, 19);

	assert_true(mime_field_iter_next(&it, &f));
	assert_false(f.has_colon);
	assert_false(mime_field_is(m, &f, "No colon here"));
	assert_int_equal(f.name_len, 13);
	assert_string_equal(mime_field_value(arena, m, &f, NULL), "");

	assert_true(mime_field_iter_next(&it, &f));
	assert_true(mime_field_is(m, &f, "x-empty"));
	assert_string_equal(mime_field_value(arena, m, &f, NULL), "");

	assert_true(mime_field_iter_next(&it, &f));
	assert_string_equal(mime_field_value(arena, m, &f, NULL), "  "); /* only WSP: one goes */
	assert_string_equal(mime_field_unfolded(arena, m, &f, &vlen), "");
	assert_int_equal(vlen, 0);

	assert_true(mime_field_iter_next(&it, &f));
	assert_string_equal(mime_field_value(arena, m, &f, NULL), "a\xEF\xBF\xBD"
	                                                          "b");
	char *raw = mime_field_value_raw(arena, m, &f, &vlen);
	assert_int_equal(vlen, 3);
	assert_memory_equal(raw, "a\0b", 3);
	raw = mime_field_unfolded(arena, m, &f, &vlen);
	assert_int_equal(vlen, 3);
	assert_memory_equal(raw, "a\0b", 4);

	assert_false(mime_field_iter_next(&it, &f));
	assert_false(mime_field_iter_next(&it, &f));
}

/* Structural invariants over varied messages: ranges nest, children are in order, every
 * part is found again by its section number. */
static void check_tree(const struct mime_part *root, const struct mime_part *p, const char *section,
                       size_t len)
{
	assert_int_equal(p->header_start + p->header_len, p->body_start);
	assert_true(p->body_start + p->body_len <= len);
	assert_true(p->body_size >= p->body_len);
	if (*section != '\0' && p->parent != NULL && p->parent->kind != MIME_KIND_MESSAGE)
		assert_ptr_equal(find(root, section), p);
	size_t pos = p->body_start;
	for (size_t i = 0; i < p->child_count; i++) {
		const struct mime_part *c = &p->children[i];
		char sub[256];
		assert_ptr_equal(c->parent, p);
		assert_int_equal(c->depth, p->depth + 1);
		assert_true(c->header_start >= pos);
		assert_true(c->body_start + c->body_len <= p->body_start + p->body_len);
		pos = c->body_start + c->body_len;
		if (p->kind == MIME_KIND_MESSAGE)
			snprintf(sub, sizeof(sub), "%s", section);
		else
			snprintf(sub, sizeof(sub), "%s%s%zu", section, *section ? "." : "", i + 1);
		check_tree(root, c, sub, len);
	}
	if (p->kind == MIME_KIND_MESSAGE) {
		assert_int_equal(p->child_count, 1);
		assert_ptr_equal(p->message, p->children);
	} else {
		assert_null(p->message);
	}
	if (p->kind == MIME_KIND_LEAF)
		assert_int_equal(p->child_count, 0);
}

static void test_tree_invariants(void **state)
{
	(void)state;
	const char *msgs[] = {
	    mixed_msg,
	    complex_msg,
	    deep_msg,
	    "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
	    "--b\n\nlf\n--b\nContent-Type: message/rfc822\n\nSubject: x\n\ny\n--b--",
	    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"\"\r\n\r\n"
	    "--\r\n\r\nx\r\n--any\r\n\r\ny\r\n----\r\n",
	    "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b\r\n--b\r\n"};
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		struct mime_part *root = parse(msgs[i]);
		check_tree(root, root, "", strlen(msgs[i]));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_simple, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_header_only_and_empty, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_multipart_offsets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rfc3501_sections, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_single_part_message_sections, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_digest_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_params_rfc2231, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_broken_content_type, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_or_wrong_boundary, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_header_cut_by_boundary, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_boundary_matching, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_content_fields, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nul_and_garbage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_limit_depth, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_limit_parts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_limit_header, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_field_iterator, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_field_unfolded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tree_invariants, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
