/* Unit tests for smtp/smtp_parser: every verb, case-insensitivity, every error reply, MAIL
 * parameters (SIZE with overflow, BODY, SMTPUTF8, AUTH, repeats, unknown), RCPT, the DSN
 * parameters of RFC 3461 (RET, ENVID, NOTIFY, ORCPT: syntax and limits), BDAT LAST,
 * AUTH with and without initial response, NUL/CR/LF in the line and very long lines. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "smtp/smtp_parser.h"
#include "core/banned.h"

static const char ERR_500[] = "500 5.5.2 Syntax error, command unrecognized";
static const char ERR_MAIL[] = "501 5.5.4 Syntax: MAIL FROM:<address>";
static const char ERR_RCPT[] = "501 5.5.4 Syntax: RCPT TO:<address>";
static const char ERR_SENDER[] = "501 5.1.7 Bad sender address syntax";
static const char ERR_RECIPIENT[] = "501 5.1.3 Bad recipient address syntax";
static const char ERR_MAIL_PARAM[] = "501 5.5.4 Bad MAIL parameter syntax";
static const char ERR_RCPT_PARAM[] = "501 5.5.4 Bad RCPT parameter syntax";
static const char ERR_SIZE[] = "501 5.5.4 Syntax: SIZE=<number>";
static const char ERR_REPEATED[] = "501 5.5.4 Repeated MAIL parameter";
static const char ERR_MAIL_555[] = "555 5.5.4 Unsupported MAIL parameter";
static const char ERR_RCPT_555[] = "555 5.5.4 Unsupported RCPT parameter";
static const char ERR_BODY_555[] = "555 5.5.4 Unsupported BODY value";
static const char ERR_BDAT[] = "501 5.5.4 Syntax: BDAT chunk-size [LAST]";
static const char ERR_XTEXT[] = "501 5.5.4 Invalid xtext in MAIL parameter";
static const char ERR_HELO[] = "501 5.5.2 Invalid name";
static const char ERR_RET[] = "501 5.5.4 Syntax: RET=FULL or RET=HDRS";
static const char ERR_ENVID[] = "501 5.5.4 Invalid ENVID parameter";
static const char ERR_NOTIFY[] = "501 5.5.4 Syntax: NOTIFY=NEVER or NOTIFY=SUCCESS,FAILURE,DELAY";
static const char ERR_ORCPT[] = "501 5.5.4 Invalid ORCPT parameter";
static const char ERR_RCPT_REPEATED[] = "501 5.5.4 Repeated RCPT parameter";
static const char ERR_AUTH[] = "501 5.5.4 Syntax: AUTH mechanism [initial-response]";

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

static struct smtp_command ok_n(const char *line, size_t len, enum smtp_verb verb, const char *arg)
{
	struct smtp_command cmd;
	const char *error = NULL;
	if (smtp_parser_parse(arena, line, len, &cmd, &error) != 0)
		fail_msg("'%.*s' refused: %s", (int)len, line, error);
	assert_int_equal(cmd.verb, verb);
	if (arg != NULL)
		assert_string_equal(cmd.arg, arg);
	return cmd;
}

static struct smtp_command ok(const char *line, enum smtp_verb verb, const char *arg)
{
	return ok_n(line, strlen(line), verb, arg);
}

static void bad_n(const char *line, size_t len, const char *want)
{
	struct smtp_command cmd;
	const char *error = NULL;
	if (smtp_parser_parse(arena, line, len, &cmd, &error) == 0)
		fail_msg("'%.*s' accepted, expected '%s'", (int)len, line, want);
	assert_string_equal(error, want);
	/* nothing but verb and arg survives an error */
	assert_false(cmd.size_set);
	assert_null(cmd.mechanism);
	assert_null(cmd.path.local);
	assert_non_null(cmd.arg);
}

static void bad(const char *line, const char *want)
{
	bad_n(line, strlen(line), want);
}

static void test_simple_verbs(void **state)
{
	(void)state;
	ok("HELO mx.example.com", SMTP_VERB_HELO, "mx.example.com");
	ok("EHLO [192.0.2.1]", SMTP_VERB_EHLO, "[192.0.2.1]");
	ok("EHLO   spaced.out  ", SMTP_VERB_EHLO, "spaced.out");
	ok("DATA", SMTP_VERB_DATA, "");
	ok("RSET", SMTP_VERB_RSET, "");
	ok("QUIT", SMTP_VERB_QUIT, "");
	ok("STARTTLS", SMTP_VERB_STARTTLS, "");
	ok("NOOP", SMTP_VERB_NOOP, "");
	ok("NOOP anything at all", SMTP_VERB_NOOP, "anything at all");
	ok("HELP", SMTP_VERB_HELP, "");
	ok("HELP MAIL", SMTP_VERB_HELP, "MAIL");
	ok("VRFY", SMTP_VERB_VRFY, "");
	ok("VRFY user", SMTP_VERB_VRFY, "user");
	ok("EXPN list", SMTP_VERB_EXPN, "list");
	ok("DATA   ", SMTP_VERB_DATA, "");
	ok("QUIT \t ", SMTP_VERB_QUIT, "");
}

static void test_case(void **state)
{
	(void)state;
	ok("ehlo x", SMTP_VERB_EHLO, "x");
	ok("HeLo x", SMTP_VERB_HELO, "x");
	ok("data", SMTP_VERB_DATA, "");
	ok("starttls", SMTP_VERB_STARTTLS, "");
	struct smtp_command c = ok("Mail From:<a@B>", SMTP_VERB_MAIL, "From:<a@B>");
	assert_string_equal(c.path.domain, "b");
	ok("rcpt to:<a@b>", SMTP_VERB_RCPT, "to:<a@b>");
	ok("mail from:<> size=10 body=8bitmime smtputf8", SMTP_VERB_MAIL, NULL);
	c = ok("bdat 5 last", SMTP_VERB_BDAT, "5 last");
	assert_true(c.last);
}

static void test_verb_names(void **state)
{
	(void)state;
	const char *names[] = {"UNKNOWN", "HELO",     "EHLO", "MAIL", "RCPT", "DATA",
	                       "BDAT",    "RSET",     "NOOP", "QUIT", "HELP", "VRFY",
	                       "EXPN",    "STARTTLS", "AUTH", "BURL"};
	assert_int_equal(sizeof(names) / sizeof(names[0]), SMTP_VERB_COUNT);
	for (int v = 0; v < SMTP_VERB_COUNT; v++)
		assert_string_equal(smtp_parser_verb_name((enum smtp_verb)v), names[v]);
	assert_string_equal(smtp_parser_verb_name(SMTP_VERB_COUNT), "UNKNOWN");
	assert_string_equal(smtp_parser_verb_name((enum smtp_verb)1000), "UNKNOWN");
}

static void test_unrecognized(void **state)
{
	(void)state;
	bad("", ERR_500);
	bad("   ", ERR_500);
	bad(" HELO x", ERR_500);
	bad("FOO", ERR_500);
	bad("FOO bar", ERR_500);
	bad("MAI", ERR_500);
	bad("MAILX FROM:<>", ERR_500);
	bad("MAIL\tFROM:<>", ERR_500);
	bad("HELO\tx", ERR_500);
	bad("UNKNOWN", ERR_500);
	bad("\xc3\x89HLO x", ERR_500);
	bad("EHL\xc3\x93 x", ERR_500);
	bad("GET / HTTP/1.0", ERR_500);
	bad_n("NOOP\0x", 6, ERR_500);
	bad_n("\0", 1, ERR_500);
	bad_n("DATA\0", 5, ERR_500);
	bad_n("MAIL FROM:<a@b>\0", 16, ERR_500);
	bad("NOOP\rx", ERR_500);
	bad("NOOP x\ny", ERR_500);
	bad("DATA\r", ERR_500);
	bad("QUIT\n", ERR_500);
}

static void test_argument_rules(void **state)
{
	(void)state;
	bad("HELO", "501 5.5.4 Syntax: HELO hostname");
	bad("HELO    ", "501 5.5.4 Syntax: HELO hostname");
	bad("EHLO", "501 5.5.4 Syntax: EHLO hostname");
	bad("DATA x", "501 5.5.4 Syntax: DATA (no arguments)");
	bad("RSET x", "501 5.5.4 Syntax: RSET (no arguments)");
	bad("QUIT now", "501 5.5.4 Syntax: QUIT (no arguments)");
	bad("STARTTLS x", "501 5.5.4 Syntax: STARTTLS (no arguments)");
	/* the verb stays known after an argument error */
	struct smtp_command cmd;
	const char *error;
	assert_int_equal(smtp_parser_parse(arena, "DATA x", 6, &cmd, &error), -1);
	assert_int_equal(cmd.verb, SMTP_VERB_DATA);
	assert_string_equal(cmd.arg, "x");
	assert_int_equal(smtp_parser_parse(arena, "XYZZY", 5, &cmd, &error), -1);
	assert_int_equal(cmd.verb, SMTP_VERB_UNKNOWN);
	assert_string_equal(cmd.arg, "");
}

static void test_mail(void **state)
{
	(void)state;
	struct smtp_command c = ok("MAIL FROM:<alice@Example.COM>", SMTP_VERB_MAIL, NULL);
	assert_string_equal(c.path.local, "alice");
	assert_string_equal(c.path.domain, "example.com");
	assert_false(c.path.null);
	assert_false(c.size_set);
	assert_int_equal(c.body, SMTP_BODY_UNSPEC);
	assert_false(c.smtputf8);
	assert_null(c.auth_param);
	c = ok("MAIL FROM:<>", SMTP_VERB_MAIL, "FROM:<>");
	assert_true(c.path.null);
	c = ok("MAIL FROM: <a@b>", SMTP_VERB_MAIL, NULL); /* Postfix-style leniency */
	assert_string_equal(c.path.local, "a");
	c = ok("MAIL FROM:   <a@b>   ", SMTP_VERB_MAIL, "FROM:   <a@b>");
	c = ok("MAIL   FROM:<a@b>", SMTP_VERB_MAIL, "FROM:<a@b>");
	c = ok("MAIL FROM:<postmaster>", SMTP_VERB_MAIL, NULL);
	assert_string_equal(c.path.local, "postmaster");
	c = ok("MAIL FROM:<@relay.example:a@b>", SMTP_VERB_MAIL, NULL);
	assert_string_equal(c.path.local, "a");
	c = ok("MAIL FROM:<\"x> y\"@b> SIZE=5", SMTP_VERB_MAIL, NULL);
	assert_string_equal(c.path.local, "x> y");
	assert_int_equal(c.size, 5);
	c = ok("MAIL FROM:<jos\xc3\xa9@b> SMTPUTF8", SMTP_VERB_MAIL, NULL);
	assert_true(c.path.utf8);
	assert_true(c.smtputf8);
	/* a UTF-8 path without SMTPUTF8 parses: refusing it is the server's policy */
	c = ok("MAIL FROM:<jos\xc3\xa9@b>", SMTP_VERB_MAIL, NULL);
	assert_true(c.path.utf8);
	assert_false(c.smtputf8);
	/* RFC 8689 REQUIRETLS: a keyword without value */
	c = ok("MAIL FROM:<a@b> requiretls SMTPUTF8", SMTP_VERB_MAIL, NULL);
	assert_true(c.requiretls);
	c = ok("MAIL FROM:<a@b>", SMTP_VERB_MAIL, NULL);
	assert_false(c.requiretls);
}

static void test_mail_errors(void **state)
{
	(void)state;
	bad("MAIL", ERR_MAIL);
	bad("MAIL FROM", ERR_MAIL);
	bad("MAIL FROM:", ERR_MAIL);
	bad("MAIL FROM:   ", ERR_MAIL);
	bad("MAIL TO:<a@b>", ERR_MAIL);
	bad("MAIL FROM <a@b>", ERR_MAIL);
	bad("MAIL FRO:<a@b>", ERR_MAIL);
	bad("MAIL FROM:a@b", ERR_SENDER);
	bad("MAIL FROM:<a@b", ERR_SENDER);
	bad("MAIL FROM:<a b@c>", ERR_SENDER);
	bad("MAIL FROM:<a@b>x", ERR_SENDER);
	bad("MAIL FROM:<a@b>\tSIZE=1", ERR_SENDER);
	bad("MAIL FROM:<a@@b>", ERR_SENDER);
	bad("MAIL FROM:<\xff@b>", ERR_SENDER);
	bad("MAIL FROM:<\"a@b>", ERR_SENDER);
	bad("MAIL FROM:<<>>", ERR_SENDER);
	bad("MAIL FROM:<user>", ERR_SENDER);
}

static void test_mail_params(void **state)
{
	(void)state;
	struct smtp_command c =
	    ok("MAIL FROM:<a@b> SIZE=1000 BODY=8BITMIME SMTPUTF8 AUTH=<>", SMTP_VERB_MAIL,
	       "FROM:<a@b> SIZE=1000 BODY=8BITMIME SMTPUTF8 AUTH=<>");
	assert_true(c.size_set);
	assert_int_equal(c.size, 1000);
	assert_int_equal(c.body, SMTP_BODY_8BITMIME);
	assert_true(c.smtputf8);
	assert_string_equal(c.auth_param, "<>");
	c = ok("MAIL FROM:<a@b>   size=0    body=7bit   ", SMTP_VERB_MAIL, NULL);
	assert_true(c.size_set);
	assert_int_equal(c.size, 0);
	assert_int_equal(c.body, SMTP_BODY_7BIT);
	c = ok("MAIL FROM:<> AUTH=alice+40example.com", SMTP_VERB_MAIL, NULL);
	assert_string_equal(c.auth_param, "alice@example.com"); /* xtext decoded */
	c = ok("MAIL FROM:<> AUTH=a+2Bb+3Dc@d", SMTP_VERB_MAIL, NULL);
	assert_string_equal(c.auth_param, "a+b=c@d");
	c = ok("MAIL FROM:<> SIZE=18446744073709551615", SMTP_VERB_MAIL, NULL);
	assert_true(c.size == UINT64_MAX);
	c = ok("MAIL FROM:<> SIZE=00000000000000000001", SMTP_VERB_MAIL, NULL); /* 20 digits */
	assert_int_equal(c.size, 1);

	bad("MAIL FROM:<> SIZE=99999999999999999999999", ERR_SIZE);
	bad("MAIL FROM:<> SIZE=18446744073709551616", ERR_SIZE);
	bad("MAIL FROM:<> SIZE=99999999999999999999", ERR_SIZE);
	bad("MAIL FROM:<> SIZE=000000000000000000001", ERR_SIZE); /* 21 digits */
	bad("MAIL FROM:<> SIZE=abc", ERR_SIZE);
	bad("MAIL FROM:<> SIZE=-1", ERR_SIZE);
	bad("MAIL FROM:<> SIZE=1k", ERR_SIZE);
	bad("MAIL FROM:<> SIZE", ERR_MAIL_PARAM);
	bad("MAIL FROM:<> SIZE=", ERR_MAIL_PARAM);
	bad("MAIL FROM:<> SIZE=1 SIZE=2", ERR_REPEATED);
	bad("MAIL FROM:<> BODY=7BIT body=8BITMIME", ERR_REPEATED);
	bad("MAIL FROM:<> SMTPUTF8 smtputf8", ERR_REPEATED);
	bad("MAIL FROM:<> AUTH=<> AUTH=<>", ERR_REPEATED);
	bad("MAIL FROM:<> BODY=BINARYMIME", ERR_BODY_555);
	bad("MAIL FROM:<> BODY=8BIT", ERR_BODY_555);
	bad("MAIL FROM:<> BODY", ERR_MAIL_PARAM);
	bad("MAIL FROM:<> SMTPUTF8=yes", ERR_MAIL_PARAM);
	bad("MAIL FROM:<> REQUIRETLS=yes", ERR_MAIL_PARAM);
	bad("MAIL FROM:<> REQUIRETLS REQUIRETLS", ERR_REPEATED);
	bad("MAIL FROM:<> AUTH", ERR_MAIL_PARAM);
	bad("MAIL FROM:<> AUTH=a=b", ERR_MAIL_PARAM);
	bad("MAIL FROM:<> AUTH=\xc3\xa9", ERR_MAIL_PARAM);
	/* RFC 3461 §4 xtext: "+" and two upper-case hex digits, nothing decoding to a control */
	bad("MAIL FROM:<> AUTH=a+4", ERR_XTEXT);
	bad("MAIL FROM:<> AUTH=a+", ERR_XTEXT);
	bad("MAIL FROM:<> AUTH=a+2b", ERR_XTEXT);
	bad("MAIL FROM:<> AUTH=a+G0", ERR_XTEXT);
	bad("MAIL FROM:<> AUTH=a+00b", ERR_XTEXT);
	bad("MAIL FROM:<> AUTH=a+0D+0Ab", ERR_XTEXT);
	bad("MAIL FROM:<> AUTH=+7F", ERR_XTEXT);
	bad("MAIL FROM:<> FOO=bar", ERR_MAIL_555);
	bad("MAIL FROM:<> X-EXT", ERR_MAIL_555);
	bad("MAIL FROM:<> 8BIT", ERR_MAIL_555);
	bad("MAIL FROM:<> -X", ERR_MAIL_PARAM);
	bad("MAIL FROM:<> =x", ERR_MAIL_PARAM);
	bad("MAIL FROM:<> A_B=1", ERR_MAIL_PARAM);
	bad("MAIL FROM:<> SIZE=1 ==", ERR_MAIL_PARAM);
	/* the first bad parameter decides */
	bad("MAIL FROM:<> FOO=1 SIZE=x", ERR_MAIL_555);
	bad("MAIL FROM:<> SIZE=x FOO=1", ERR_SIZE);
}

static void test_rcpt(void **state)
{
	(void)state;
	struct smtp_command c = ok("RCPT TO:<bob@Example.com>", SMTP_VERB_RCPT, NULL);
	assert_string_equal(c.path.local, "bob");
	assert_string_equal(c.path.domain, "example.com");
	c = ok("RCPT TO: <bob@b>  ", SMTP_VERB_RCPT, "TO: <bob@b>");
	c = ok("RCPT TO:<Postmaster>", SMTP_VERB_RCPT, NULL);
	assert_string_equal(c.path.local, "postmaster");
	assert_string_equal(c.path.domain, "");
	c = ok("RCPT TO:<\"a b\"@[192.0.2.1]>", SMTP_VERB_RCPT, NULL);
	assert_string_equal(c.path.local, "a b");
	assert_string_equal(c.path.domain, "[192.0.2.1]");

	bad("RCPT", ERR_RCPT);
	bad("RCPT TO:", ERR_RCPT);
	bad("RCPT FROM:<a@b>", ERR_RCPT);
	bad("RCPT TO <a@b>", ERR_RCPT);
	bad("RCPT TO:<>", ERR_RECIPIENT);
	bad("RCPT TO:a@b", ERR_RECIPIENT);
	bad("RCPT TO:<a@b", ERR_RECIPIENT);
	bad("RCPT TO:<a@b>x", ERR_RECIPIENT);
	bad("RCPT TO:<a..b@c>", ERR_RECIPIENT);
	bad("RCPT TO:<a@b> X", ERR_RCPT_555);
	bad("RCPT TO:<a@b> =x", ERR_RCPT_PARAM);
	bad("RCPT TO:<a@b> X=", ERR_RCPT_PARAM);
}

/* RFC 3461 on MAIL: RET=FULL|HDRS (§4.3), ENVID=xtext of at most 100 characters (§4.4). */
static void test_dsn_mail(void **state)
{
	(void)state;
	struct smtp_command c = ok("MAIL FROM:<a@b>", SMTP_VERB_MAIL, NULL);
	assert_int_equal(c.ret, SMTP_RET_UNSPEC);
	assert_null(c.envid);
	c = ok("MAIL FROM:<a@b> RET=FULL ENVID=QQ314159", SMTP_VERB_MAIL, NULL);
	assert_int_equal(c.ret, SMTP_RET_FULL);
	assert_string_equal(c.envid, "QQ314159");
	c = ok("MAIL FROM:<> ret=hdrs envid=a+2Bb+3Dc SIZE=10", SMTP_VERB_MAIL, NULL);
	assert_int_equal(c.ret, SMTP_RET_HDRS);
	assert_string_equal(c.envid, "a+2Bb+3Dc"); /* as sent: the next hop gets it so */
	assert_true(c.size_set && c.size == 10);

	char line[300], id[128];
	memset(id, 'x', 100);
	id[100] = '\0';
	snprintf(line, sizeof(line), "MAIL FROM:<> ENVID=%s", id);
	c = ok(line, SMTP_VERB_MAIL, NULL);
	assert_int_equal(strlen(c.envid), 100);
	snprintf(line, sizeof(line), "MAIL FROM:<> ENVID=%sy", id);
	bad(line, ERR_ENVID);

	bad("MAIL FROM:<> RET=ALL", ERR_RET);
	bad("MAIL FROM:<> RET=FULLHDRS", ERR_RET);
	bad("MAIL FROM:<> RET", ERR_MAIL_PARAM);
	bad("MAIL FROM:<> RET=", ERR_MAIL_PARAM);
	bad("MAIL FROM:<> RET=FULL RET=HDRS", ERR_REPEATED);
	bad("MAIL FROM:<> ENVID=a+0Db", ERR_ENVID);
	bad("MAIL FROM:<> ENVID=a+zz", ERR_ENVID);
	bad("MAIL FROM:<> ENVID", ERR_MAIL_PARAM);
	bad("MAIL FROM:<> ENVID=a ENVID=b", ERR_REPEATED);
}

/* RFC 3461 on RCPT: NOTIFY=NEVER or a list of SUCCESS, FAILURE, DELAY (§4.1), ORCPT=
 * addr-type;xtext of at most 500 characters (§4.2). */
static void test_dsn_rcpt(void **state)
{
	(void)state;
	struct smtp_command c = ok("RCPT TO:<a@b>", SMTP_VERB_RCPT, NULL);
	assert_int_equal(c.notify, 0);
	assert_null(c.orcpt);
	c = ok("RCPT TO:<a@b> NOTIFY=NEVER", SMTP_VERB_RCPT, NULL);
	assert_int_equal(c.notify, SMTP_NOTIFY_NEVER);
	c = ok("RCPT TO:<a@b> notify=success,Delay ORCPT=rfc822;Bob+2Btag@Example.org",
	       SMTP_VERB_RCPT, NULL);
	assert_int_equal(c.notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY);
	assert_string_equal(c.orcpt, "rfc822;Bob+2Btag@Example.org");
	assert_string_equal(c.path.local, "a");
	c = ok("RCPT TO:<a@b> ORCPT=utf-8;x@y NOTIFY=FAILURE,SUCCESS,DELAY", SMTP_VERB_RCPT, NULL);
	assert_int_equal(c.notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY);
	assert_string_equal(c.orcpt, "utf-8;x@y");

	bad("RCPT TO:<a@b> NOTIFY=NEVER,SUCCESS", ERR_NOTIFY);
	bad("RCPT TO:<a@b> NOTIFY=DELAY,NEVER", ERR_NOTIFY);
	bad("RCPT TO:<a@b> NOTIFY=SUCCESS,", ERR_NOTIFY);
	bad("RCPT TO:<a@b> NOTIFY=,SUCCESS", ERR_NOTIFY);
	bad("RCPT TO:<a@b> NOTIFY=SUCCESS,,DELAY", ERR_NOTIFY);
	bad("RCPT TO:<a@b> NOTIFY=ALWAYS", ERR_NOTIFY);
	bad("RCPT TO:<a@b> NOTIFY", ERR_RCPT_PARAM);
	bad("RCPT TO:<a@b> NOTIFY=NEVER NOTIFY=NEVER", ERR_RCPT_REPEATED);
	bad("RCPT TO:<a@b> ORCPT=a@b", ERR_ORCPT);
	bad("RCPT TO:<a@b> ORCPT=;a@b", ERR_ORCPT);
	bad("RCPT TO:<a@b> ORCPT=rfc822;", ERR_ORCPT);
	bad("RCPT TO:<a@b> ORCPT=rfc_822;a@b", ERR_ORCPT);
	bad("RCPT TO:<a@b> ORCPT=rfc822;a+0Ab", ERR_ORCPT);
	bad("RCPT TO:<a@b> ORCPT=rfc822;a ORCPT=rfc822;b", ERR_RCPT_REPEATED);

	char line[700], addr[600];
	memset(addr, 'a', 493);
	addr[493] = '\0'; /* "rfc822;" + 493 = 500 */
	snprintf(line, sizeof(line), "RCPT TO:<a@b> ORCPT=rfc822;%s", addr);
	c = ok(line, SMTP_VERB_RCPT, NULL);
	assert_int_equal(strlen(c.orcpt), 500);
	snprintf(line, sizeof(line), "RCPT TO:<a@b> ORCPT=rfc822;%sa", addr);
	bad(line, ERR_ORCPT);
	/* DSN parameters belong to their own command */
	bad("RCPT TO:<a@b> RET=FULL", ERR_RCPT_555);
	bad("MAIL FROM:<a@b> NOTIFY=NEVER", ERR_MAIL_555);
}

static void test_bdat(void **state)
{
	(void)state;
	struct smtp_command c = ok("BDAT 100", SMTP_VERB_BDAT, "100");
	assert_true(c.chunk_size == 100);
	assert_false(c.last);
	c = ok("BDAT 0 LAST", SMTP_VERB_BDAT, "0 LAST");
	assert_true(c.chunk_size == 0);
	assert_true(c.last);
	c = ok("bdat 5 Last  ", SMTP_VERB_BDAT, "5 Last");
	assert_true(c.last);
	c = ok("BDAT   7   LAST", SMTP_VERB_BDAT, NULL);
	assert_true(c.chunk_size == 7);
	assert_true(c.last);
	c = ok("BDAT 18446744073709551615", SMTP_VERB_BDAT, NULL);
	assert_true(c.chunk_size == UINT64_MAX);
	bad("BDAT", ERR_BDAT);
	bad("BDAT   ", ERR_BDAT);
	bad("BDAT x", ERR_BDAT);
	bad("BDAT LAST", ERR_BDAT);
	bad("BDAT -1", ERR_BDAT);
	bad("BDAT +1", ERR_BDAT);
	bad("BDAT 1x", ERR_BDAT);
	bad("BDAT 5 NOTLAST", ERR_BDAT);
	bad("BDAT 5 LASTX", ERR_BDAT);
	bad("BDAT 5 LAST x", ERR_BDAT);
	bad("BDAT 5 LAST LAST", ERR_BDAT);
	bad("BDAT 99999999999999999999999", ERR_BDAT);
	bad("BDAT 18446744073709551616", ERR_BDAT);
	bad("BDAT 5\tLAST", ERR_BDAT);
}

static void test_burl(void **state)
{
	(void)state;
	static const char err[] = "501 5.5.4 Syntax: BURL absolute-URI [LAST]";
	struct smtp_command c =
	    ok("BURL imap://u@h/INBOX/;UID=1;URLAUTH=submit+u:INTERNAL:00", SMTP_VERB_BURL, NULL);
	assert_string_equal(c.url, "imap://u@h/INBOX/;UID=1;URLAUTH=submit+u:INTERNAL:00");
	assert_false(c.last);
	c = ok("burl imap://h/x/;UID=2  last", SMTP_VERB_BURL, NULL);
	assert_string_equal(c.url, "imap://h/x/;UID=2");
	assert_true(c.last);
	bad("BURL", err);
	bad("BURL a LAST x", err);
	bad("BURL a NOTLAST", err);
}

static void test_auth(void **state)
{
	(void)state;
	struct smtp_command c = ok("AUTH PLAIN", SMTP_VERB_AUTH, "PLAIN");
	assert_string_equal(c.mechanism, "PLAIN");
	assert_null(c.initial_response);
	c = ok("auth plain dGVzdAB0ZXN0AHBhc3M=", SMTP_VERB_AUTH, NULL);
	assert_string_equal(c.mechanism, "PLAIN");
	assert_string_equal(c.initial_response, "dGVzdAB0ZXN0AHBhc3M=");
	c = ok("AUTH PLAIN =", SMTP_VERB_AUTH, NULL);
	assert_string_equal(c.initial_response, "=");
	c = ok("AUTH  login  ", SMTP_VERB_AUTH, "login");
	assert_string_equal(c.mechanism, "LOGIN");
	assert_null(c.initial_response);
	c = ok("AUTH scram-sha-256", SMTP_VERB_AUTH, NULL);
	assert_string_equal(c.mechanism, "SCRAM-SHA-256");
	c = ok("AUTH x_y-z9", SMTP_VERB_AUTH, NULL);
	assert_string_equal(c.mechanism, "X_Y-Z9");
	c = ok("AUTH ABCDEFGHIJKLMNOPQRST", SMTP_VERB_AUTH, NULL); /* 20 */
	assert_string_equal(c.mechanism, "ABCDEFGHIJKLMNOPQRST");
	bad("AUTH ABCDEFGHIJKLMNOPQRSTU", ERR_AUTH); /* 21 */
	bad("AUTH", ERR_AUTH);
	bad("AUTH   ", ERR_AUTH);
	bad("AUTH PL@IN", ERR_AUTH);
	bad("AUTH PLAIN a b", ERR_AUTH);
	bad("AUTH PLAIN\tabc", ERR_AUTH);
	bad("AUTH PL\xc3\x89IN", ERR_AUTH);
}

/* A line of prefix followed by n copies of c and then suffix, malloc'd. */
static char *long_line(const char *prefix, char c, size_t n, const char *suffix, size_t *len_r)
{
	size_t pl = strlen(prefix), sl = strlen(suffix);
	char *s = malloc(pl + n + sl + 1);
	assert_non_null(s);
	memcpy(s, prefix, pl);
	memset(s + pl, c, n);
	memcpy(s + pl + n, suffix, sl + 1);
	*len_r = pl + n + sl;
	return s;
}

static void test_long_inputs(void **state)
{
	(void)state;
	size_t len;
	char *s = long_line("NOOP ", 'a', 100000, "", &len);
	struct smtp_command c = ok_n(s, len, SMTP_VERB_NOOP, NULL);
	assert_int_equal(strlen(c.arg), 100000);
	free(s);
	s = long_line("HELO ", 'h', 100000, "   ", &len);
	bad_n(s, len, ERR_HELO); /* longer than a domain can be */
	free(s);
	s = long_line("MAIL FROM:<", 'a', 100000, "@b>", &len);
	bad_n(s, len, ERR_SENDER);
	free(s);
	s = long_line("MAIL FROM:<a@b> SIZE=", '9', 100000, "", &len);
	bad_n(s, len, ERR_SIZE);
	free(s);
	s = long_line("BDAT ", '1', 100000, "", &len);
	bad_n(s, len, ERR_BDAT);
	free(s);
	s = long_line("AUTH PLAIN ", 'A', 100000, "", &len);
	c = ok_n(s, len, SMTP_VERB_AUTH, NULL);
	assert_int_equal(strlen(c.initial_response), 100000);
	free(s);
	s = long_line("AUTH ", 'A', 100000, "", &len);
	bad_n(s, len, ERR_AUTH);
	free(s);
	s = long_line("", 'M', 100000, "", &len);
	bad_n(s, len, ERR_500);
	free(s);
	s = long_line("MAIL FROM:<> ", ' ', 100000, "SIZE=1", &len);
	c = ok_n(s, len, SMTP_VERB_MAIL, NULL);
	assert_int_equal(c.size, 1);
	free(s);
	s = long_line("MAIL FROM:<> AUTH=", 'x', 100000, "", &len);
	c = ok_n(s, len, SMTP_VERB_MAIL, NULL);
	assert_int_equal(strlen(c.auth_param), 100000);
	free(s);
	s = long_line("MAIL FROM:<\"", '\\', 100000, "", &len);
	bad_n(s, len, ERR_SENDER);
	free(s);
	s = long_line("DATA", ' ', 100000, "", &len);
	ok_n(s, len, SMTP_VERB_DATA, "");
	free(s);
}

/* HELO/EHLO take a domain or an address literal (RFC 5321 §4.1.1.1), nothing else. */
static void test_helo_names(void **state)
{
	(void)state;
	ok("EHLO mail.example.com", SMTP_VERB_EHLO, "mail.example.com");
	ok("EHLO mail.example.com.", SMTP_VERB_EHLO, NULL);
	ok("HELO localhost", SMTP_VERB_HELO, NULL);
	ok("HELO 1.0.0.127.in-addr.arpa", SMTP_VERB_HELO, NULL);
	ok("EHLO win_host-1.corp", SMTP_VERB_EHLO, NULL);
	ok("EHLO [IPv6:2001:db8::1]", SMTP_VERB_EHLO, NULL);
	ok("EHLO [ipv6:::1]", SMTP_VERB_EHLO, NULL);
	ok("EHLO [X-tag:some-text]", SMTP_VERB_EHLO, NULL);
	bad("EHLO spaced out", ERR_HELO);
	bad("EHLO ex\xc3\xa4mple.com", ERR_HELO); /* 8-bit */
	bad("EHLO \x80", ERR_HELO);
	bad("EHLO a\x01b", ERR_HELO);
	bad("HELO a..b", ERR_HELO);
	bad("HELO .a", ERR_HELO);
	ok("HELO a.", SMTP_VERB_HELO, "a.");
	bad("HELO -a.com", ERR_HELO);
	bad("HELO a-.com", ERR_HELO);
	bad("HELO a.com..", ERR_HELO);
	bad("HELO <a@b>", ERR_HELO);
	bad("HELO a/b", ERR_HELO);
	bad("EHLO [192.0.2.300]", ERR_HELO);
	bad("EHLO [192.0.2.1", ERR_HELO);
	bad("EHLO []", ERR_HELO);
	bad("EHLO [IPv6:zz]", ERR_HELO);
	bad("EHLO [:x]", ERR_HELO);
	bad("EHLO [tag:]", ERR_HELO);
	bad("EHLO [tag:a]b]", ERR_HELO);
	char line[400] = "EHLO ";
	memset(line + 5, 'a', 64);
	line[69] = '\0';
	bad(line, ERR_HELO); /* a 64-octet label */
	line[68] = '\0';
	ok(line, SMTP_VERB_EHLO, NULL); /* 63 */
	for (size_t i = 5; i < 5 + 256; i++)
		line[i] = (i - 5) % 2 == 0 ? 'a' : '.';
	line[5 + 255] = 'a';
	line[5 + 256] = '\0';
	bad(line, ERR_HELO); /* 256 octets */
	/* a NUL is refused before (500, as everywhere) */
	bad_n("EHLO a\0b", 8, ERR_500);
}

/* The xtext decoder on its own (AUTH= today, ORCPT= later). */
static void test_xtext(void **state)
{
	(void)state;
	const char *out;
	assert_int_equal(smtp_parser_xtext_decode(arena, "", 0, &out), 0);
	assert_string_equal(out, "");
	assert_int_equal(smtp_parser_xtext_decode(arena, "rfc822;a+2Bb@c", 14, &out), 0);
	assert_string_equal(out, "rfc822;a+b@c");
	assert_int_equal(smtp_parser_xtext_decode(arena, "+C3+A9", 6, &out), 0);
	assert_string_equal(out, "\xc3\xa9"); /* 8-bit is fine, encoded */
	assert_int_equal(smtp_parser_xtext_decode(arena, "a b", 3, &out), -1);
	assert_int_equal(smtp_parser_xtext_decode(arena, "a=b", 3, &out), -1);
	assert_int_equal(smtp_parser_xtext_decode(arena, "+0a", 3, &out), -1);
	assert_int_equal(smtp_parser_xtext_decode(arena, "+09", 3, &out), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_simple_verbs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_case, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verb_names, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_burl, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unrecognized, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_argument_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mail, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mail_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mail_params, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rcpt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dsn_mail, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dsn_rcpt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bdat, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_long_inputs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_helo_names, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_xtext, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
