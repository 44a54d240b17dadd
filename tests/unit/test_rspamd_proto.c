/* Unit tests for smtp/rspamd_proto: the request head byte for byte (every rspamd field, one
 * Rcpt per recipient, the null sender, control characters made harmless), and responses:
 * each action, the score and symbols, subject and SMTP message, the milter block's
 * additions and removals with values made safe, partial input (with and without
 * Content-Length), and what is refused (status, chunked, not JSON, unknown action, too
 * large). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "smtp/rspamd_proto.h"
#include "core/banned.h"

static void test_request(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1 << 16);
	const char *rcpts[] = {"b@example.net", "c@example.net"};
	struct rspamd_request_head h = {
	    .host = "127.0.0.1:11333",
	    .path = "",
	    .client_ip = "192.0.2.7",
	    .helo = "client.example",
	    .hostname = "unknown",
	    .mail_from = "a@example.org",
	    .rcpts = rcpts,
	    .rcpt_count = 2,
	    .queue_id = "Q1",
	    .mta_name = "mx.example",
	    .body_len = 42,
	};
	assert_int_equal(rspamd_proto_request(&b, &h), 0);
	assert_string_equal(buf_cstr(&b), "POST /checkv2 HTTP/1.0\r\n"
	                                  "Content-Length: 42\r\n"
	                                  "Host: 127.0.0.1:11333\r\n"
	                                  "Ip: 192.0.2.7\r\n"
	                                  "Helo: client.example\r\n"
	                                  "Hostname: unknown\r\n"
	                                  "From: a@example.org\r\n"
	                                  "Rcpt: b@example.net\r\n"
	                                  "Rcpt: c@example.net\r\n"
	                                  "Queue-Id: Q1\r\n"
	                                  "MTA-Name: mx.example\r\n"
	                                  "\r\n");
	buf_reset(&b);
	h.path = "/rs";
	h.helo = "";
	h.mail_from = "";
	h.rcpt_count = 1;
	h.user = "demo@example.test";
	h.hostname = "mail.example.org";
	h.queue_id = "Q\r\nX: y";
	assert_int_equal(rspamd_proto_request(&b, &h), 0);
	assert_string_equal(buf_cstr(&b), "POST /rs/checkv2 HTTP/1.0\r\n"
	                                  "Content-Length: 42\r\n"
	                                  "Host: 127.0.0.1:11333\r\n"
	                                  "Ip: 192.0.2.7\r\n"
	                                  "Hostname: mail.example.org\r\n"
	                                  "From: <>\r\n"
	                                  "Rcpt: b@example.net\r\n"
	                                  "Queue-Id: Q??X: y\r\n"
	                                  "User: demo@example.test\r\n"
	                                  "MTA-Name: mx.example\r\n"
	                                  "\r\n");
	/* Not looked up: no Hostname at all. */
	buf_reset(&b);
	h.hostname = NULL;
	assert_int_equal(rspamd_proto_request(&b, &h), 0);
	assert_null(strstr(buf_cstr(&b), "Hostname"));
	buf_free(&b);
	struct buf tiny;
	buf_init(&tiny, 20);
	assert_int_equal(rspamd_proto_request(&tiny, &h), -1);
	buf_free(&tiny);
}

/* A 200 response with body (Content-Length unless without_length). */
static size_t response(char *out, size_t max, const char *body, bool with_length)
{
	int n;
	if (with_length)
		n = snprintf(
		    out, max,
		    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
		    strlen(body), body);
	else
		n = snprintf(out, max, "HTTP/1.0 200 OK\r\n\r\n%s", body);
	return (size_t)n;
}

static int parse(struct arena *a, const char *body, struct rspamd_verdict *v, const char **err)
{
	static char resp[1 << 16];
	size_t n = response(resp, sizeof(resp), body, true);
	return rspamd_proto_parse((const unsigned char *)resp, n, false, a, v, err);
}

static void test_actions(void **state)
{
	(void)state;
	struct arena *a = arena_new(4096);
	struct rspamd_verdict v;
	const char *err = NULL;
	static const struct {
		const char *name;
		enum rspamd_action action;
	} cases[] = {
	    {"no action", RSPAMD_NO_ACTION},     {"greylist", RSPAMD_GREYLIST},
	    {"add header", RSPAMD_ADD_HEADER},   {"rewrite subject", RSPAMD_REWRITE_SUBJECT},
	    {"soft reject", RSPAMD_SOFT_REJECT}, {"reject", RSPAMD_REJECT},
	    {"discard", RSPAMD_DISCARD},         {"quarantine", RSPAMD_QUARANTINE}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char body[200];
		snprintf(body, sizeof(body), "{\"action\": \"%s\", \"score\": 3}", cases[i].name);
		assert_int_equal(parse(a, body, &v, &err), 1);
		assert_int_equal(v.action, cases[i].action);
		assert_string_equal(rspamd_action_name(v.action), cases[i].name);
		assert_true(v.score == 3.0);
	}
	assert_int_equal(parse(a, "{\"action\": \"explode\"}", &v, &err), -1);
	assert_string_equal(err, "unknown action");
	assert_int_equal(parse(a, "{\"score\": 1}", &v, &err), -1);
	assert_string_equal(err, "the response has no action");
	assert_int_equal(parse(a, "{\"action\": 5}", &v, &err), -1);
	assert_int_equal(parse(a, "[\"reject\"]", &v, &err), -1);
	assert_string_equal(err, "the response is not a JSON object");
	assert_int_equal(parse(a, "{\"action\": \"reject\"", &v, &err), -1);
	assert_int_equal(parse(a, "", &v, &err), -1);
	arena_free(&a);
}

static void test_members(void **state)
{
	(void)state;
	struct arena *a = arena_new(4096);
	struct rspamd_verdict v;
	const char *err = NULL;
	const char *body =
	    "{\"is_skipped\": false, \"score\": 7.5, \"required_score\": 15.0,"
	    " \"action\": \"rewrite subject\", \"subject\": \"*** SPAM *** hi\\r\\nBcc: x\","
	    " \"symbols\": {\"GTUBE\": {\"name\": \"GTUBE\", \"score\": 0.5},"
	    "   \"BAD(\": {\"score\": 1}, \"R_X\": {\"score\": -1.25}, \"NOT_OBJ\": 3},"
	    " \"messages\": {\"smtp_message\": \"Go away\\nnow\"},"
	    " \"milter\": {\"add_headers\": {\"X-One\": \"v1\","
	    "   \"X-Two\": {\"value\": \"line1\\n\\tline2\\nX-Evil: yes\\r\\n\", \"order\": 0},"
	    "   \"X-Many\": [{\"value\": \"a\"}, \"b\", 7],"
	    "   \"Bad Name\": \"x\", \"X-Num\": 5},"
	    "  \"remove_headers\": {\"X-Spam\": 0, \"X-Old\": -1, \"X-Str\": \"1\"}}}";
	assert_int_equal(parse(a, body, &v, &err), 1);
	assert_int_equal(v.action, RSPAMD_REWRITE_SUBJECT);
	assert_true(v.score == 7.5 && v.required_score == 15.0);
	assert_string_equal(v.subject, "*** SPAM *** hi  Bcc: x");
	assert_string_equal(v.message, "Go away?now");
	assert_int_equal(v.symbol_count, 2);
	assert_string_equal(v.symbols[0].name, "GTUBE");
	assert_true(v.symbols[0].score == 0.5);
	assert_string_equal(v.symbols[1].name, "R_X");
	assert_true(v.symbols[1].score == -1.25);
	assert_int_equal(v.add_count, 4);
	assert_string_equal(v.add[0].name, "X-One");
	assert_string_equal(v.add[0].value, "v1");
	assert_false(v.add[0].has_order);
	assert_string_equal(v.add[1].name, "X-Two");
	assert_string_equal(v.add[1].value, "line1\n\tline2 X-Evil: yes");
	assert_true(v.add[1].has_order);
	assert_int_equal(v.add[1].order, 0);
	assert_string_equal(v.add[2].value, "a");
	assert_string_equal(v.add[3].value, "b");
	assert_int_equal(v.remove_count, 2);
	assert_string_equal(v.remove[0].name, "X-Spam");
	assert_int_equal(v.remove[0].index, 0);
	assert_string_equal(v.remove[1].name, "X-Old");
	assert_int_equal(v.remove[1].index, -1);
	/* A continuation line of white space alone is not written (RFC 5322 §3.2.2). */
	assert_int_equal(parse(a,
	                       "{\"action\": \"no action\", \"milter\": {\"add_headers\":"
	                       " {\"X-Ws\": \"a\\n \\n b\\n\\t\\t\\n\\tc\\n \"}}}",
	                       &v, &err),
	                 1);
	assert_int_equal(v.add_count, 1);
	assert_string_equal(v.add[0].value, "a  \n b \t\t\n\tc");
	/* Nor one of white space and controls or DEL, which become spaces (fuzz_rspamd, the
	 * campaign: DEL counted as visible, so the fold stayed and its line was blank). */
	assert_int_equal(parse(a,
	                       "{\"action\": \"no action\", \"milter\": {\"add_headers\":"
	                       " {\"X-Ws\": \"a\\n\\t \\u007f\\u0001\\n\\tb\\n \\u007f\"}}}",
	                       &v, &err),
	                 1);
	assert_int_equal(v.add_count, 1);
	assert_string_equal(v.add[0].value, "a \t   \n\tb");
	/* rspamd's SMTP message: ASCII only, 8-bit octets and controls made '?'. */
	assert_int_equal(parse(a,
	                       "{\"action\": \"reject\", \"messages\": {\"smtp_message\":"
	                       " \"\u00e9t\u00e9\\u0007 ok\\t!\"}}",
	                       &v, &err),
	                 1);
	assert_string_equal(v.message, "??t??? ok?!");
	/* Nothing but the action: the rest is empty. */
	assert_int_equal(
	    parse(a, "{\"action\": \"no action\", \"milter\": 3, \"symbols\": []}", &v, &err), 1);
	assert_null(v.subject);
	assert_null(v.message);
	assert_int_equal(v.symbol_count + v.add_count + v.remove_count, 0);
	arena_free(&a);
}

/* Every line of a field "Name: value" at most max octets, and each continuation line
 * starts with white space and holds a visible character. */
static void assert_lines(const char *name, const char *value, size_t max)
{
	size_t col = strlen(name) + 2;
	for (const char *p = value;; p++) {
		if (*p == '\0' || *p == '\n') {
			assert_true(col <= max);
			if (*p == '\0')
				return;
			assert_true(p[1] == ' ' || p[1] == '\t');
			col = 0;
			continue;
		}
		col++;
	}
}

static void test_folding(void **state)
{
	(void)state;
	struct arena *a = arena_new(4096);
	struct rspamd_verdict v;
	const char *err = NULL;
	static char body[40000], words[8000], solid[8001];
	for (size_t i = 0; i + 5 < sizeof(words); i += 5)
		memcpy(words + i, "word ", 5);
	words[sizeof(words) - 6] = '\0';
	memset(solid, 'x', sizeof(solid) - 1);
	snprintf(body, sizeof(body),
	         "{\"action\": \"rewrite subject\", \"subject\": \"%s\", \"milter\":"
	         " {\"add_headers\": {\"X-Words\": \"%s\", \"X-Solid\": \"%s\"}}}",
	         words, words, solid);
	assert_int_equal(parse(a, body, &v, &err), 1);
	assert_int_equal(v.add_count, 2);
	/* At white space: lines of about 78 octets, and nothing lost but the folds. */
	assert_lines("X-Words", v.add[0].value, 84);
	assert_lines("Subject", v.subject, 84);
	assert_non_null(strchr(v.add[0].value, '\n'));
	size_t letters = 0;
	for (const char *p = v.add[0].value; *p != '\0'; p++)
		letters += *p == 'w';
	assert_int_equal(letters, 1599);
	/* No white space: a fold inserted before RFC 5322's 998. */
	assert_lines("X-Solid", v.add[1].value, RSPAMD_LINE_MAX + 1);
	assert_true(strlen(v.add[1].value) > 8000);
	arena_free(&a);
}

static void test_framing(void **state)
{
	(void)state;
	struct arena *a = arena_new(4096);
	struct rspamd_verdict v;
	const char *err = NULL;
	char resp[512];
	const char *body = "{\"action\": \"reject\", \"messages\": {\"smtp_message\": \"GTUBE\"}}";
	size_t n = response(resp, sizeof(resp), body, true);
	/* Every prefix needs more; the whole is a verdict; the end of the connection early is
	 * an error. */
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(
		    rspamd_proto_parse((const unsigned char *)resp, i, false, a, &v, &err), 0);
		assert_int_equal(
		    rspamd_proto_parse((const unsigned char *)resp, i, true, a, &v, &err), -1);
	}
	assert_int_equal(rspamd_proto_parse((const unsigned char *)resp, n, false, a, &v, &err), 1);
	assert_string_equal(v.message, "GTUBE");
	/* Without Content-Length: the body ends with the connection. */
	n = response(resp, sizeof(resp), body, false);
	assert_int_equal(rspamd_proto_parse((const unsigned char *)resp, n, false, a, &v, &err), 0);
	assert_int_equal(rspamd_proto_parse((const unsigned char *)resp, n, true, a, &v, &err), 1);
	assert_int_equal(v.action, RSPAMD_REJECT);
	/* Bare LF line ends are read too. */
	const char *lf = "HTTP/1.1 200 OK\nContent-Length: 23\n\n{\"action\": \"no action\"}";
	assert_int_equal(
	    rspamd_proto_parse((const unsigned char *)lf, strlen(lf), false, a, &v, &err), 1);
	/* Each refused for its own reason: the body alone would be a verdict. */
	static const struct {
		const char *resp, *error;
	} bad[] = {
	    {"HTTP/1.1 500 Internal error\r\nContent-Length: 22\r\n\r\n{\"action\":\"no action\"}",
	     "HTTP status is not 200"},
	    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{\"action\":\"no action\"}",
	     "the response is chunked or compressed"},
	    {"HTTP/1.1 200 OK\r\nCompression: zstd\r\nContent-Length: 22\r\n\r\n"
	     "{\"action\":\"no action\"}",
	     "the response is chunked or compressed"},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n{\"action\":\"no action\"}",
	     "bad Content-Length"},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n"
	     "{\"action\":\"no action\"}",
	     "bad Content-Length"},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 9999999\r\n\r\n{\"action\":\"no action\"}",
	     "the response is larger than the limit"},
	    {"SMTP/1.1 200 OK\r\n\r\n{\"action\":\"no action\"}", "not an HTTP response"},
	    {"HTTP/1.1 2000 OK\r\n\r\n{\"action\":\"no action\"}", "HTTP status is not 200"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		assert_int_equal(rspamd_proto_parse((const unsigned char *)bad[i].resp,
		                                    strlen(bad[i].resp), true, a, &v, &err),
		                 -1);
		assert_non_null(err);
		assert_string_equal(err, bad[i].error);
	}
	/* The same body with a plain head is a verdict. */
	const char *good =
	    "HTTP/1.1 200 OK\r\nContent-Length: 22\r\n\r\n{\"action\":\"no action\"}";
	assert_int_equal(
	    rspamd_proto_parse((const unsigned char *)good, strlen(good), true, a, &v, &err), 1);
	/* Larger than the limit, even without the end of the head. */
	static unsigned char big[RSPAMD_REPLY_MAX + 1];
	memset(big, 'x', sizeof(big));
	assert_int_equal(rspamd_proto_parse(big, sizeof(big), false, a, &v, &err), -1);
	assert_string_equal(err, "the response is larger than the limit");
	arena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request), cmocka_unit_test(test_actions),
	    cmocka_unit_test(test_members), cmocka_unit_test(test_folding),
	    cmocka_unit_test(test_framing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
