/* Unit tests for mime/imap_structure: ENVELOPE, BODY and BODYSTRUCTURE strings. The
 * examples of RFC 3501 §8 (also in RFC 9051) must come out exactly; the table of messages
 * below has the answers dovecot-imapd 2.3.19 (Debian 12) gave for them — captured with
 * `doveadm fetch 'imap.envelope imap.body imap.bodystructure'`, so every expectation in it is
 * verified, not guessed; the later tests check string quoting, limits and sub-trees. */
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
#include "mime/imap_structure.h"
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

static struct mime_part *parse(const char *msg, size_t len)
{
	struct mime_part *root = NULL;
	assert_int_equal(mime_parse(arena, (const unsigned char *)msg, len, NULL, &root), 0);
	return root;
}

struct dovecot_case {
	const char *name;
	const char *msg;
	const char *envelope, *body, *bodystructure;
};

/* Answers of dovecot-imapd 2.3.19 for these messages (ENVELOPE, BODY, BODYSTRUCTURE). */
static const struct dovecot_case dovecot_cases[] = {
    {
        "alternative",
        "From: Alice <alice@example.org>\r\n"
        "To: bob@example.net\r\n"
        "Subject: Alternative\r\n"
        "Date: Tue, 2 Jan 2024 10:00:00 +0100\r\n"
        "Message-ID: <alt@example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/alternative; boundary=\"b1\"\r\n"
        "\r\n"
        "preamble\r\n"
        "--b1\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "plain\r\n"
        "--b1\r\n"
        "Content-Type: text/html\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "<p>html</p>\r\n"
        "--b1--\r\n"
        "epilogue\r\n",
        "(\"Tue, 2 Jan 2024 10:00:00 +0100\" \"Alternative\" ((\"Alice\" NIL \"alice\" "
        "\"example.org\")) ((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Alice\" NIL \"alice\" "
        "\"example.org\")) ((NIL NIL \"bob\" \"example.net\")) NIL NIL NIL \"<alt@example.org>\")",
        "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 5 0)(\"text\" \"html\" "
        "(\"charset\" \"us-ascii\") NIL NIL \"quoted-printable\" 11 0) \"alternative\")",
        "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 5 0 NIL NIL NIL "
        "NIL)(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"quoted-printable\" 11 0 NIL "
        "NIL NIL NIL) \"alternative\" (\"boundary\" \"b1\") NIL NIL NIL)",
    },
    {
        "forward",
        "Subject: Fwd\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=f\r\n"
        "\r\n"
        "--f\r\n"
        "\r\n"
        "see below\r\n"
        "--f\r\n"
        "Content-Type: message/rfc822\r\n"
        "Content-Disposition: attachment; filename=\"orig.eml\"\r\n"
        "\r\n"
        "From: Carol <carol@example.com>\r\n"
        "Subject: Original\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/alternative; boundary=g\r\n"
        "\r\n"
        "--g\r\n"
        "\r\n"
        "inner text\r\n"
        "--g\r\n"
        "Content-Type: text/html\r\n"
        "\r\n"
        "<b>x</b>\r\n"
        "--g--\r\n"
        "\r\n"
        "--f--\r\n",
        "(NIL \"Fwd\" NIL NIL NIL NIL NIL NIL NIL NIL)",
        "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 9 0)(\"message\" "
        "\"rfc822\" NIL NIL NIL \"7bit\" 190 (NIL \"Original\" ((\"Carol\" NIL \"carol\" "
        "\"example.com\")) ((\"Carol\" NIL \"carol\" \"example.com\")) ((\"Carol\" NIL \"carol\" "
        "\"example.com\")) NIL NIL NIL NIL NIL) ((\"text\" \"plain\" (\"charset\" \"us-ascii\") "
        "NIL NIL \"7bit\" 10 0)(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 0) "
        "\"alternative\") 13) \"mixed\")",
        "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 9 0 NIL NIL NIL "
        "NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 190 (NIL \"Original\" ((\"Carol\" NIL "
        "\"carol\" \"example.com\")) ((\"Carol\" NIL \"carol\" \"example.com\")) ((\"Carol\" NIL "
        "\"carol\" \"example.com\")) NIL NIL NIL NIL NIL) ((\"text\" \"plain\" (\"charset\" "
        "\"us-ascii\") NIL NIL \"7bit\" 10 0 NIL NIL NIL NIL)(\"text\" \"html\" (\"charset\" "
        "\"us-ascii\") NIL NIL \"7bit\" 8 0 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"g\") "
        "NIL NIL NIL) 13 NIL (\"attachment\" (\"filename\" \"orig.eml\")) NIL NIL) \"mixed\" "
        "(\"boundary\" \"f\") NIL NIL NIL)",
    },
    {
        "digest",
        "Subject: Digest\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/digest; boundary=d\r\n"
        "\r\n"
        "--d\r\n"
        "\r\n"
        "Subject: one\r\n"
        "\r\n"
        "first\r\n"
        "--d\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "second\r\n"
        "--d--\r\n",
        "(NIL \"Digest\" NIL NIL NIL NIL NIL NIL NIL NIL)",
        "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 21 (NIL \"one\" NIL NIL NIL NIL NIL NIL NIL "
        "NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0) 2)(\"text\" "
        "\"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 0) \"digest\")",
        "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 21 (NIL \"one\" NIL NIL NIL NIL NIL NIL NIL "
        "NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0 NIL NIL NIL NIL) "
        "2 NIL NIL NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 0 NIL "
        "NIL NIL NIL) \"digest\" (\"boundary\" \"d\") NIL NIL NIL)",
    },
    {
        "rfc2231",
        "MIME-Version: 1.0\r\n"
        "Content-Type: application/octet-stream; name*=utf-8''%E2%82%AC.txt\r\n"
        "Content-Disposition: attachment; filename*0*=utf-8'en'a%20b; filename*1=\" c%\"; x*0=1; "
        "x*2=3\r\n"
        "\r\n"
        "data\r\n",
        "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        "(\"application\" \"octet-stream\" (\"name*\" \"utf-8''%E2%82%AC.txt\") NIL NIL \"7bit\" "
        "6)",
        "(\"application\" \"octet-stream\" (\"name*\" \"utf-8''%E2%82%AC.txt\") NIL NIL \"7bit\" 6 "
        "NIL (\"attachment\" (\"filename*\" \"utf-8'en'a%20b c%25\" \"x*0\" \"1\" \"x*2\" \"3\")) "
        "NIL NIL)",
    },
    {
        "broken-types",
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=x\r\n"
        "\r\n"
        "--x\r\n"
        "Content-Type: text\r\n"
        "\r\n"
        "a\r\n"
        "--x\r\n"
        "Content-Type: text; charset=utf-8\r\n"
        "\r\n"
        "b\r\n"
        "--x\r\n"
        "Content-Type: text/plain garbage\r\n"
        "\r\n"
        "c\r\n"
        "--x\r\n"
        "Content-Type:\r\n"
        "\r\n"
        "d\r\n"
        "--x\r\n"
        "Content-Type: multipart/mixed\r\n"
        "\r\n"
        "e\r\n"
        "--x--\r\n",
        "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        "((\"text\" \"\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0)(\"\" \"\" NIL NIL NIL "
        "\"7bit\" 1)(\"\" \"\" NIL NIL NIL \"7bit\" 1)(\"\" \"\" NIL NIL NIL \"7bit\" 1)((\"text\" "
        "\"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \"mixed\") \"mixed\")",
        "((\"text\" \"\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0 NIL NIL NIL NIL)(\"\" "
        "\"\" NIL NIL NIL \"7bit\" 1 NIL NIL NIL NIL)(\"\" \"\" NIL NIL NIL \"7bit\" 1 NIL NIL NIL "
        "NIL)(\"\" \"\" NIL NIL NIL \"7bit\" 1 NIL NIL NIL NIL)((\"text\" \"plain\" (\"charset\" "
        "\"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL) \"mixed\" NIL NIL NIL NIL) \"mixed\" "
        "(\"boundary\" \"x\") NIL NIL NIL)",
    },
    {
        "header-cut",
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=cut\r\n"
        "\r\n"
        "--cut\r\n"
        "Content-Type: text/plain\r\n"
        "--cut\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "--cut\r\n"
        "Content-Type: message/rfc822\r\n"
        "\r\n"
        "Subject: inner\r\n"
        "--cut--\r\n",
        "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)(\"text\" \"plain\" "
        "(\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)(\"message\" \"rfc822\" NIL NIL NIL "
        "\"7bit\" 16 (NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" "
        "(\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) 1) \"mixed\")",
        "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL "
        "NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL "
        "NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 16 (NIL \"inner\" NIL NIL NIL NIL NIL "
        "NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL "
        "NIL NIL) 1 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"cut\") NIL NIL NIL)",
    },
    {
        "groups",
        "From: Alice <alice@example.org>\r\n"
        "To: undisclosed-recipients:;\r\n"
        "Cc: Team: bob@example.net, \"Carol C.\" <carol@example.com>;, dave@example.com\r\n"
        "Bcc: Empty: ;\r\n"
        "Subject: groups\r\n"
        "\r\n"
        "x\r\n",
        "(NIL \"groups\" ((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Alice\" NIL \"alice\" "
        "\"example.org\")) ((\"Alice\" NIL \"alice\" \"example.org\")) ((NIL NIL "
        "\"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) ((NIL NIL \"Team\" NIL)(NIL NIL \"bob\" "
        "\"example.net\")(\"Carol C.\" NIL \"carol\" \"example.com\")(NIL NIL NIL NIL)(NIL NIL "
        "\"dave\" \"example.com\")) ((NIL NIL \"Empty\" NIL)(NIL NIL NIL NIL)) NIL NIL)",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1)",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1 NIL NIL NIL NIL)",
    },
    {
        "odd-addresses",
        "From: \"Smith, John\" <john@example.com> (Sales)\r\n"
        "Sender: sec@example.com (Jane)\r\n"
        "Reply-To: <@r1,@r2:routed@example.com>, \"quoted local\"@example.com\r\n"
        "To: user@[192.0.2.1], just-a-name, Display Only, <>, broken <unterminated@example.com\r\n"
        "Cc: no-domain@, @no-local.example, x@y., .x@y\r\n"
        "Subject: odd\r\n"
        "\r\n"
        "x\r\n",
        "(NIL \"odd\" ((\"Smith, John\" NIL \"john\" \"example.com\")) ((\"Jane\" NIL \"sec\" "
        "\"example.com\")) ((NIL \"@r1,@r2\" \"routed\" \"example.com\")(NIL NIL \"quoted local\" "
        "\"example.com\")) ((NIL NIL \"user\" \"[192.0.2.1]\")(NIL NIL \"just-a-name\" "
        "\"MISSING_DOMAIN\")(\"Display Only\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")(NIL NIL "
        "\"MISSING_MAILBOX\" \"MISSING_DOMAIN\")(\"broken\" NIL \"unterminated\" "
        "\"SYNTAX_ERROR\")) ((NIL NIL \"no-domain\" \"MISSING_DOMAIN\")(NIL NIL "
        "\"MISSING_MAILBOX\" \"no-local.example\")(NIL NIL \"x\" \"MISSING_DOMAIN\")(NIL NIL "
        "\".x\" \"y\")) NIL NIL NIL)",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1)",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1 NIL NIL NIL NIL)",
    },
    {
        "subjects",
        "Subject:   lots\tof   white  space  \r\n"
        "From: \"  Spaced   Name \" <s@example.org>\r\n"
        "To: =?UTF-8?Q?J=C3=B6rg?= <j@example.org>\r\n"
        "Date: Mon, 8 Jan 2024\r\n"
        " 11:22:33 +0000\r\n"
        "Message-ID:\r\n"
        " <folded@example.org>\r\n"
        "In-Reply-To: \"quoted\"\r\n"
        "\r\n"
        "x\r\n",
        "(\"Mon, 8 Jan 2024 11:22:33 +0000\" {19}\r\n"
        "lots of white space (({11}\r\n"
        "Spaced Name NIL \"s\" \"example.org\")) (({11}\r\n"
        "Spaced Name NIL \"s\" \"example.org\")) (({11}\r\n"
        "Spaced Name NIL \"s\" \"example.org\")) ((\"=?UTF-8?Q?J=C3=B6rg?=\" NIL \"j\" "
        "\"example.org\")) NIL NIL \"\\\"quoted\\\"\" \" <folded@example.org>\")",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1)",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1 NIL NIL NIL NIL)",
    },
    {
        "subject-quotes",
        "Subject: say \"hi\"\r\n"
        "\r\n"
        "x\r\n",
        "(NIL {8}\r\n"
        "say \"hi\" NIL NIL NIL NIL NIL NIL NIL NIL)",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1)",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1 NIL NIL NIL NIL)",
    },
    {
        "eight-bit",
        "From: J\xc3\xbcrgen <j@example.org>\r\n"
        "Subject: caf\xc3\xa9\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8; name=\"r\xc3\xa9sum\xc3\xa9.txt\"\r\n"
        "Content-Description: r\xc3\xa9sum\xc3\xa9\r\n"
        "\r\n"
        "x\r\n",
        "(NIL {5}\r\n"
        "caf\xc3\xa9 (({7}\r\n"
        "J\xc3\xbcrgen NIL \"j\" \"example.org\")) (({7}\r\n"
        "J\xc3\xbcrgen NIL \"j\" \"example.org\")) (({7}\r\n"
        "J\xc3\xbcrgen NIL \"j\" \"example.org\")) NIL NIL NIL NIL NIL)",
        "(\"text\" \"plain\" (\"charset\" \"utf-8\" \"name\" {12}\r\n"
        "r\xc3\xa9sum\xc3\xa9.txt) NIL {8}\r\n"
        "r\xc3\xa9sum\xc3\xa9 \"7bit\" 3 1)",
        "(\"text\" \"plain\" (\"charset\" \"utf-8\" \"name\" {12}\r\n"
        "r\xc3\xa9sum\xc3\xa9.txt) NIL {8}\r\n"
        "r\xc3\xa9sum\xc3\xa9 \"7bit\" 3 1 NIL NIL NIL NIL)",
    },
    {
        "extension-data",
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "Content-ID: <id@example.org>\r\n"
        "Content-Description: folded\r\n"
        " description\r\n"
        "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
        "Content-Language: en-US, de (German)\r\n"
        "Content-Location: https://example.org/x\r\n"
        "Content-Disposition: inline; filename=\"a.txt\"\r\n"
        "Content-Transfer-Encoding: BASE64\r\n"
        "\r\n"
        "aGVsbG8=\r\n",
        "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") \"<id@example.org>\" \"folded "
        "description\" \"BASE64\" 10 1)",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") \"<id@example.org>\" \"folded "
        "description\" \"BASE64\" 10 1 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"inline\" (\"filename\" "
        "\"a.txt\")) (\"en-US\" \"de\") \"https://example.org/x\")",
    },
    {
        "quote-limit",
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain\r\n"
        "Content-ID: a\"b\"c\"d\"\r\n"
        "Content-Description: a\"b\"c\"d\"e\r\n"
        "\r\n"
        "x\r\n",
        "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") \"a\\\"b\\\"c\\\"d\\\"\" "
        "\"a\\\"b\\\"c\\\"d\\\"e\" \"7bit\" 3 1)",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") \"a\\\"b\\\"c\\\"d\\\"\" "
        "\"a\\\"b\\\"c\\\"d\\\"e\" \"7bit\" 3 1 NIL NIL NIL NIL)",
    },
    {
        "no-mime",
        "Subject: not MIME\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "Content-Disposition: attachment\r\n"
        "\r\n"
        "x\r\n",
        "(NIL \"not MIME\" NIL NIL NIL NIL NIL NIL NIL NIL)",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1)",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1 NIL NIL NIL NIL)",
    },
    {
        "bare-lf",
        "Subject: lf\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=b\n"
        "\n"
        "--b\n"
        "\n"
        "line1\n"
        "line2\n"
        "--b--\n",
        "(NIL \"lf\" NIL NIL NIL NIL NIL NIL NIL NIL)",
        "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 1) \"mixed\")",
        "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 1 NIL NIL NIL NIL) "
        "\"mixed\" (\"boundary\" \"b\") NIL NIL NIL)",
    },
    {
        "repeated-fields",
        "From: a@example.com\r\n"
        "From: b@example.com\r\n"
        "Subject: first\r\n"
        "Subject: second\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=one\r\n"
        "Content-Type: text/html\r\n"
        "\r\n"
        "x\r\n",
        "(NIL \"second\" ((NIL NIL \"a\" \"example.com\")(NIL NIL \"b\" \"example.com\")) ((NIL "
        "NIL \"a\" \"example.com\")(NIL NIL \"b\" \"example.com\")) ((NIL NIL \"a\" "
        "\"example.com\")(NIL NIL \"b\" \"example.com\")) NIL NIL NIL NIL NIL)",
        "(\"text\" \"plain\" (\"charset\" \"one\") NIL NIL \"7bit\" 3 1)",
        "(\"text\" \"plain\" (\"charset\" \"one\") NIL NIL \"7bit\" 3 1 NIL NIL NIL NIL)",
    },
    {
        "uppercase",
        "MIME-Version: 1.0\r\n"
        "Content-Type: Multipart/Mixed; Boundary=UP\r\n"
        "\r\n"
        "--UP\r\n"
        "Content-Type: MESSAGE/RFC822\r\n"
        "\r\n"
        "Subject: inner\r\n"
        "\r\n"
        "body\r\n"
        "--UP\r\n"
        "Content-Type: TEXT/PLAIN; CHARSET=ISO-8859-1\r\n"
        "Content-Transfer-Encoding: Quoted-Printable\r\n"
        "\r\n"
        "x\r\n"
        "--UP--\r\n",
        "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 22 (NIL \"inner\" NIL NIL NIL NIL NIL NIL "
        "NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 0) 2)(\"TEXT\" "
        "\"PLAIN\" (\"CHARSET\" \"ISO-8859-1\") NIL NIL \"Quoted-Printable\" 1 0) \"Mixed\")",
        "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 22 (NIL \"inner\" NIL NIL NIL NIL NIL NIL "
        "NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 0 NIL NIL NIL "
        "NIL) 2 NIL NIL NIL NIL)(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"ISO-8859-1\") NIL NIL "
        "\"Quoted-Printable\" 1 0 NIL NIL NIL NIL) \"Mixed\" (\"Boundary\" \"UP\") NIL NIL NIL)",
    },
    {
        "empty",
        "",
        "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)",
    },
    {
        "no-body",
        "Subject: header only",
        "(NIL \"header only\" NIL NIL NIL NIL NIL NIL NIL NIL)",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)",
    },
};

static void test_dovecot_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(dovecot_cases) / sizeof(dovecot_cases[0]); i++) {
		const struct dovecot_case *c = &dovecot_cases[i];
		const unsigned char *m = (const unsigned char *)c->msg;
		size_t len = strlen(c->msg);
		struct mime_part *root = parse(c->msg, len);
		const char *env = imap_envelope(arena, m, len, root);
		const char *body = imap_bodystructure(arena, m, len, root, false);
		const char *bs = imap_bodystructure(arena, m, len, root, true);
		if (strcmp(env, c->envelope) != 0)
			fail_msg("%s ENVELOPE\n got: %s\nwant: %s", c->name, env, c->envelope);
		if (strcmp(body, c->body) != 0)
			fail_msg("%s BODY\n got: %s\nwant: %s", c->name, body, c->body);
		if (strcmp(bs, c->bodystructure) != 0)
			fail_msg("%s BODYSTRUCTURE\n got: %s\nwant: %s", c->name, bs,
			         c->bodystructure);
	}
}

/* count lines of total octets (CRLF included), as RFC examples need exact sizes */
static void add_lines(struct buf *b, unsigned count, size_t total)
{
	size_t each = total / count, last = total - each * (count - 1);
	for (unsigned i = 0; i < count; i++) {
		size_t n = i + 1 < count ? each : last;
		for (size_t k = 0; k + 2 < n; k++)
			assert_int_equal(buf_append(b, "abcdefghij" + k % 10, 1), 0);
		assert_int_equal(buf_append(b, "\r\n", 2), 0);
	}
}

static void add(struct buf *b, const char *s)
{
	assert_int_equal(buf_puts(b, s), 0);
}

/* RFC 3501 §8 (RFC 9051 §8 has the same with "IMAP4rev2"). */
static void test_rfc3501_example(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1 << 20);
	add(&b, "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
	        "From: Terry Gray <gray@cac.washington.edu>\r\n"
	        "Subject: IMAP4rev1 WG mtg summary and minutes\r\n"
	        "To: imap@cac.washington.edu\r\n"
	        "cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n"
	        "Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
	        "MIME-Version: 1.0\r\n"
	        "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
	        "Content-Transfer-Encoding: 7BIT\r\n"
	        "\r\n");
	add_lines(&b, 92, 3028);
	const unsigned char *m = (const unsigned char *)b.data;
	struct mime_part *root = parse(b.data, b.len);
	assert_string_equal(
	    imap_envelope(arena, m, b.len, root),
	    "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" "
	    "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
	    "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
	    "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
	    "((NIL NIL \"imap\" \"cac.washington.edu\")) "
	    "((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" "
	    "\"MIT.EDU\")) "
	    "NIL NIL \"<B27397-0100000@cac.washington.edu>\")");
	assert_string_equal(
	    imap_bodystructure(arena, m, b.len, root, false),
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92)");
	assert_string_equal(imap_bodystructure(arena, m, b.len, root, true),
	                    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 "
	                    "92 NIL NIL NIL NIL)");
	buf_free(&b);
}

/* The multipart example of RFC 3501 §7.4.2 (BODYSTRUCTURE). */
static void test_rfc3501_multipart_example(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1 << 20);
	add(&b, "MIME-Version: 1.0\r\n"
	        "Content-Type: MULTIPART/MIXED; BOUNDARY=\"xyz\"\r\n"
	        "\r\n"
	        "--xyz\r\n"
	        "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
	        "Content-Transfer-Encoding: 7BIT\r\n"
	        "\r\n");
	add_lines(&b, 23, 1152);
	add(&b, "\r\n--xyz\r\n"
	        "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff\r\n"
	        "Content-ID: <960723163407.20117h@cac.washington.edu>\r\n"
	        "Content-Description: Compiler diff\r\n"
	        "Content-Transfer-Encoding: BASE64\r\n"
	        "\r\n");
	add_lines(&b, 73, 4554);
	add(&b, "\r\n--xyz--\r\n");
	const unsigned char *m = (const unsigned char *)b.data;
	struct mime_part *root = parse(b.data, b.len);
	assert_string_equal(
	    imap_bodystructure(arena, m, b.len, root, false),
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23)"
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") "
	    "\"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73) "
	    "\"MIXED\")");
	/* part 2 alone, and its extension data */
	assert_string_equal(
	    imap_bodystructure(arena, m, b.len, &root->children[1], true),
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") "
	    "\"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73 "
	    "NIL NIL NIL NIL)");
	buf_free(&b);
}

static const char *str_of(const char *s)
{
	struct buf b;
	buf_init(&b, 4096);
	imap_structure_append_string(&b, s);
	char *r = arena_strdup(arena, b.len > 0 ? b.data : "");
	buf_free(&b);
	return r;
}

/* Quoted unless CR, LF, 8-bit or more than 4 quoted-specials: then a literal (Dovecot). */
static void test_strings(void **state)
{
	(void)state;
	assert_string_equal(str_of("abc"), "\"abc\"");
	assert_string_equal(str_of(""), "\"\"");
	assert_string_equal(str_of("NIL"), "\"NIL\"");
	assert_string_equal(str_of("a\"b\\c"), "\"a\\\"b\\\\c\"");
	assert_string_equal(str_of("\"\"\\\\"), "\"\\\"\\\"\\\\\\\\\"");
	assert_string_equal(str_of("\"\"\\\\\""), "{5}\r\n\"\"\\\\\"");
	assert_string_equal(str_of("caf\xc3\xa9"), "{5}\r\ncaf\xc3\xa9");
	assert_string_equal(str_of("a\r\nb"), "{4}\r\na\r\nb");
	assert_string_equal(str_of("a\tb ()"), "\"a\tb ()\"");
}

/* Subject and display names: whitespace folded; anything changed or escaped -> literal. */
static void test_envelope_text_for_humans(void **state)
{
	(void)state;
	static const struct {
		const char *subject, *want;
	} cases[] = {
	    {"plain words", "\"plain words\""},
	    {"  leading", "\"leading\""}, /* WSP after the colon is not part of the value */
	    {"two  spaces", "{10}\r\ntwo spaces"},
	    {"trailing ", "{8}\r\ntrailing"},
	    {"tab\there", "{8}\r\ntab here"},
	    {"folded\r\n line", "{11}\r\nfolded line"},
	    {"say \"hi\"", "{8}\r\nsay \"hi\""},
	    {"back\\slash", "{10}\r\nback\\slash"},
	    {"", "\"\""},
	    {" \r\n ", "\"\""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char msg[256];
		int n = snprintf(msg, sizeof(msg), "Subject: %s\r\n\r\n", cases[i].subject);
		struct mime_part *root = parse(msg, (size_t)n);
		const char *env = imap_envelope(arena, (const unsigned char *)msg, (size_t)n, root);
		char want[256];
		snprintf(want, sizeof(want), "(NIL %s NIL NIL NIL NIL NIL NIL NIL NIL)",
		         cases[i].want);
		if (strcmp(env, want) != 0)
			fail_msg("subject '%s'\n got: %s\nwant: %s", cases[i].subject, env, want);
	}
}

static void test_envelope_defaults(void **state)
{
	(void)state;
	static const char msg[] = "From: A <a@example.org>\r\n"
	                          "Reply-To: r@example.org\r\n"
	                          "Sender:\r\n"
	                          "Bcc: b@example.org\r\n"
	                          "\r\n";
	const unsigned char *m = (const unsigned char *)msg;
	struct mime_part *root = parse(msg, strlen(msg));
	/* an empty Sender falls back to From (RFC 9051 §7.5.2: the server defaults it) */
	assert_string_equal(imap_envelope(arena, m, strlen(msg), root),
	                    "(NIL NIL ((\"A\" NIL \"a\" \"example.org\")) "
	                    "((\"A\" NIL \"a\" \"example.org\")) ((NIL NIL \"r\" \"example.org\")) "
	                    "NIL NIL ((NIL NIL \"b\" \"example.org\")) NIL NIL)");
	root = parse("", 0);
	assert_string_equal(imap_envelope(arena, (const unsigned char *)"", 0, root),
	                    "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
}

static size_t count_of(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* 100,000 address fields (CVE-2024-23184's shape): linear work, and every list capped at
 * IMAP_STRUCTURE_ADDRESSES_MAX addresses in order. */
static void test_envelope_many_address_fields(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 64 * 1024 * 1024);
	assert_int_equal(buf_puts(&b, "From: f@example.org\r\n"), 0);
	for (unsigned i = 0; i < 100000; i++)
		assert_int_equal(buf_printf(&b, "%s: u%u@example.org\r\n", i % 2 ? "Cc" : "To", i),
		                 0);
	assert_int_equal(buf_puts(&b, "\r\nbody\r\n"), 0);
	/* the whole 2.5 MB header, not just mime's default first 1 MiB */
	struct mime_limits lim = {.header_max = 0};
	struct mime_part *root;
	assert_int_equal(mime_parse(arena, (const unsigned char *)b.data, b.len, &lim, &root), 0);
	const char *env = imap_envelope(arena, (const unsigned char *)b.data, b.len, root);
	/* From, Sender and Reply-To (the latter two default to From) */
	assert_int_equal(count_of(env, "\"f\" \"example.org\""), 3);
	assert_int_equal(count_of(env, "(NIL NIL \"u"), 2 * IMAP_STRUCTURE_ADDRESSES_MAX);
	/* the first ones, in order; nothing past the cap */
	assert_non_null(strstr(env, "((NIL NIL \"u0\" \"example.org\")(NIL NIL \"u2\""));
	assert_non_null(strstr(env, "\"u1998\" \"example.org\")) ((NIL NIL \"u1\" "));
	assert_null(strstr(env, "\"u2000\""));
	assert_null(strstr(env, "\"u2001\""));
	buf_free(&b);

	/* one field with 5000 addresses: capped the same way */
	buf_init(&b, 1024 * 1024);
	assert_int_equal(buf_puts(&b, "Bcc: "), 0);
	for (unsigned i = 0; i < 5000; i++)
		assert_int_equal(buf_printf(&b, "%sb%u@example.org", i ? ", " : "", i), 0);
	assert_int_equal(buf_puts(&b, "\r\n\r\n"), 0);
	root = parse(b.data, b.len);
	env = imap_envelope(arena, (const unsigned char *)b.data, b.len, root);
	assert_int_equal(count_of(env, "(NIL NIL \"b"), IMAP_STRUCTURE_ADDRESSES_MAX);
	assert_non_null(strstr(env, "\"b999\""));
	assert_null(strstr(env, "\"b1000\""));
	buf_free(&b);
}

/* The ENVELOPE of an attached message is built from the encapsulated header. */
static void test_encapsulated_envelope(void **state)
{
	(void)state;
	static const char msg[] = "Subject: outer\r\n"
	                          "MIME-Version: 1.0\r\n"
	                          "Content-Type: message/rfc822\r\n"
	                          "\r\n"
	                          "Subject: inner\r\n"
	                          "From: i@example.org\r\n"
	                          "\r\n"
	                          "text\r\n";
	const unsigned char *m = (const unsigned char *)msg;
	size_t len = strlen(msg);
	struct mime_part *root = parse(msg, len);
	assert_int_equal(root->kind, MIME_KIND_MESSAGE);
	assert_string_equal(imap_envelope(arena, m, len, root->message),
	                    "(NIL \"inner\" ((NIL NIL \"i\" \"example.org\")) "
	                    "((NIL NIL \"i\" \"example.org\")) ((NIL NIL \"i\" \"example.org\")) "
	                    "NIL NIL NIL NIL NIL)");
	assert_string_equal(
	    imap_bodystructure(arena, m, len, root, false),
	    "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 45 (NIL \"inner\" ((NIL NIL \"i\" "
	    "\"example.org\")) ((NIL NIL \"i\" \"example.org\")) ((NIL NIL \"i\" \"example.org\")) "
	    "NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	    "6 1) "
	    "4)");
}

/* A container that a limit left unopened is written as opaque data with its parameters,
 * the way Dovecot writes parts beyond its depth of 100 (checked with messages 100+ levels
 * deep; here the same shape with a small limit). */
static void test_overflow_is_octet_stream(void **state)
{
	(void)state;
	static const char msg[] = "MIME-Version: 1.0\r\n"
	                          "Content-Type: multipart/mixed; boundary=a\r\n"
	                          "\r\n"
	                          "--a\r\n"
	                          "Content-Type: multipart/mixed; boundary=b\r\n"
	                          "\r\n"
	                          "--b\r\n"
	                          "\r\n"
	                          "x\r\n"
	                          "--b--\r\n"
	                          "--a\r\n"
	                          "Content-Type: message/rfc822\r\n"
	                          "\r\n"
	                          "Subject: s\r\n"
	                          "\r\n"
	                          "y\r\n"
	                          "--a--\r\n";
	const unsigned char *m = (const unsigned char *)msg;
	size_t len = strlen(msg);
	struct mime_limits lim = {.depth_max = 2, .parts_max = 100, .header_max = 0};
	struct mime_part *root;
	assert_int_equal(mime_parse(arena, m, len, &lim, &root), -1);
	assert_true(root->children[0].overflow);
	assert_int_equal(root->children[0].kind, MIME_KIND_LEAF);
	assert_int_equal(root->children[1].kind, MIME_KIND_LEAF);
	assert_string_equal(
	    imap_bodystructure(arena, m, len, root, false),
	    "((\"application\" \"octet-stream\" (\"boundary\" \"b\") NIL NIL \"7bit\" 15)"
	    "(\"application\" \"octet-stream\" NIL NIL NIL \"7bit\" 15) \"mixed\")");
}

/* Sizes count a bare LF as CRLF, as IMAP sends the message (RFC 9051 §2.3.1.1 mail is
 * CRLF); lines are LFs. */
static void test_sizes_bare_lf(void **state)
{
	(void)state;
	static const char msg[] = "Subject: x\n\nline one\nline two\r\nthree";
	const unsigned char *m = (const unsigned char *)msg;
	size_t len = strlen(msg);
	struct mime_part *root = parse(msg, len);
	assert_int_equal(root->body_len, 24);
	assert_int_equal(root->body_size, 25);
	assert_int_equal(root->body_lines, 2);
	assert_string_equal(
	    imap_bodystructure(arena, m, len, root, false),
	    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 25 2)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_dovecot_cases, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rfc3501_example, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rfc3501_multipart_example, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_strings, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_envelope_text_for_humans, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_envelope_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_envelope_many_address_fields, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_encapsulated_envelope, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_overflow_is_octet_stream, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sizes_bare_lf, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
