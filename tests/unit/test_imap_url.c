/* IMAP URLs (RFC 5092) as CATENATE, URLAUTH and BURL use them: the absolute and the path
 * forms, percent-decoding, UIDVALIDITY, SECTION, PARTIAL, EXPIRE, URLAUTH and its rump, and
 * the forms refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/imap_url.h"

static struct arena *arena;

static struct imap_url parse_ok(const char *text)
{
	struct imap_url u;
	const char *error = NULL;
	if (imap_url_parse(arena, text, &u, &error) != 0)
		fail_msg("%s: %s", text, error);
	return u;
}

static void parse_bad(const char *text)
{
	struct imap_url u;
	const char *error = NULL;
	if (imap_url_parse(arena, text, &u, &error) == 0)
		fail_msg("accepted: %s", text);
	assert_non_null(error);
}

static void test_path_form(void **state)
{
	(void)state;
	arena = arena_new(4096);
	struct imap_url u = parse_ok("/INBOX;UIDVALIDITY=385759045/;UID=20/;SECTION=1.2");
	assert_null(u.host);
	assert_string_equal(u.mailbox, "INBOX");
	assert_int_equal(u.uidvalidity, 385759045);
	assert_int_equal(u.uid, 20);
	assert_string_equal(u.section, "1.2");
	assert_false(u.partial);
	assert_null(u.access);
	u = parse_ok("/Drafts/2024%20Q1/;UID=7");
	assert_string_equal(u.mailbox, "Drafts/2024 Q1");
	assert_int_equal(u.uidvalidity, 0);
	assert_int_equal(u.uid, 7);
	assert_null(u.section);
	u = parse_ok("/INBOX/;uid=3/;section=header");
	assert_string_equal(u.section, "HEADER");
	u = parse_ok("/INBOX/;UID=3/;PARTIAL=0.1024");
	assert_true(u.partial);
	assert_int_equal(u.partial_off, 0);
	assert_int_equal(u.partial_len, 1024);
	u = parse_ok("/INBOX/;UID=3/;SECTION=TEXT/;PARTIAL=17");
	assert_int_equal(u.partial_off, 17);
	assert_int_equal(u.partial_len, 0);
	arena_free(&arena);
}

static void test_absolute_and_urlauth(void **state)
{
	(void)state;
	arena = arena_new(4096);
	const char *url = "imap://joe%40example.test@mail.example.test:143/INBOX;UIDVALIDITY="
	                  "1/;UID=5;EXPIRE=2030-01-02T03:04:05Z;URLAUTH=submit+joe%40example."
	                  "test:INTERNAL:91354a473744909de610943775f92038";
	struct imap_url u = parse_ok(url);
	assert_string_equal(u.user, "joe@example.test");
	assert_string_equal(u.owner, "joe@example.test");
	assert_string_equal(u.host, "mail.example.test");
	assert_int_equal(u.port, 143);
	assert_string_equal(u.mailbox, "INBOX");
	assert_int_equal(u.uid, 5);
	assert_true(u.expire);
	assert_int_equal(u.expire_time, 1893553445);
	assert_string_equal(u.access, "submit+joe@example.test");
	assert_string_equal(u.mech, "INTERNAL");
	assert_string_equal(u.token, "91354a473744909de610943775f92038");
	/* the rump: everything before ":INTERNAL:" */
	assert_int_equal(u.rump_len, strstr(url, ":INTERNAL:") - url);
	u = parse_ok("IMAP://h/INBOX/;UID=1;EXPIRE=2030-01-02T03:04:05.5+01:30;URLAUTH=anonymous");
	assert_int_equal(u.expire_time, 1893553445 - 5400);
	assert_string_equal(u.access, "anonymous");
	assert_null(u.mech);
	assert_int_equal(u.rump_len, strlen("IMAP://h/INBOX/;UID=1;EXPIRE=2030-01-02T03:04:05.5+01:"
	                                    "30;URLAUTH=anonymous"));
	u = parse_ok("imap://user;AUTH=*@h/a/;UID=1");
	assert_string_equal(u.user, "user");
	assert_string_equal(u.owner, "user@h"); /* user@domain written unencoded */
	assert_null(parse_ok("/INBOX/;UID=1").owner);
	arena_free(&arena);
}

static void test_rejected(void **state)
{
	(void)state;
	arena = arena_new(4096);
	parse_bad("");
	parse_bad("http://h/INBOX/;UID=1");
	parse_bad("INBOX/;UID=1");
	parse_bad("/INBOX");                 /* no message */
	parse_bad("/INBOX;UIDVALIDITY=5");   /* no message */
	parse_bad("/;UID=1");                /* no mailbox */
	parse_bad("/INBOX/;UID=0");          /* UIDs are non-zero */
	parse_bad("/INBOX/;UID=4294967296"); /* beyond 32 bits */
	parse_bad("/INBOX;UIDVALIDITY=0/;UID=1");
	parse_bad("/IN%2/;UID=1");     /* broken escape */
	parse_bad("/IN%00BOX/;UID=1"); /* NUL */
	parse_bad("/IN BOX/;UID=1");   /* space */
	parse_bad("/INBOX/;UID=1/;SECTION=");
	parse_bad("/INBOX/;UID=1/;PARTIAL=1.0");
	parse_bad("/INBOX/;UID=1 junk");
	parse_bad("/INBOX/;UID=1;EXPIRE=2030-01-02");
	parse_bad("/INBOX/;UID=1;URLAUTH=submit+x:INTERNAL:xyz"); /* token not hex */
	parse_bad("/INBOX/;UID=1;URLAUTH=submit+x:INTERNAL");     /* no token */
	parse_bad("/INBOX/;UID=1;URLAUTH=:INTERNAL:00");          /* no access */
	parse_bad("imap:///INBOX/;UID=1");                        /* no host */
	parse_bad("imap://h:99999/INBOX/;UID=1");
	parse_bad("imap://h");
	char *big = arena_alloc(arena, IMAP_URL_MAX + 20);
	memset(big, 'a', IMAP_URL_MAX + 10);
	big[0] = '/';
	memcpy(big + IMAP_URL_MAX, "/;UID=1", 8);
	parse_bad(big);
	arena_free(&arena);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_path_form),
	    cmocka_unit_test(test_absolute_and_urlauth),
	    cmocka_unit_test(test_rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
