/* Unit tests for mime/address: RFC 5321 paths and mailboxes (plain, quoted, dot rules, exact
 * length boundaries, address literals, source routes, <>, <postmaster>, UTF-8), canonical
 * formatting with round trips, and domain-name validation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/arena.h"
#include "mime/address.h"
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

/* Parse in as a path that must succeed with the given parts; returns the address. */
static struct address path_ok_n(const char *in, size_t len, bool allow_null, const char *local,
                                const char *domain)
{
	struct address a;
	const char *error = NULL;
	if (address_parse_path(arena, in, len, allow_null, &a, &error) != 0)
		fail_msg("path '%.*s' refused: %s", (int)len, in, error);
	assert_string_equal(a.local, local);
	assert_string_equal(a.domain, domain);
	return a;
}

static struct address path_ok(const char *in, const char *local, const char *domain)
{
	return path_ok_n(in, strlen(in), false, local, domain);
}

static void path_bad_n(const char *in, size_t len, bool allow_null)
{
	struct address a;
	const char *error = NULL;
	if (address_parse_path(arena, in, len, allow_null, &a, &error) == 0)
		fail_msg("path '%.*s' accepted as '%s' '%s'", (int)len, in, a.local, a.domain);
	assert_non_null(error);
	assert_true(strlen(error) > 0);
	/* a refused parse leaves a zeroed address */
	assert_null(a.local);
	assert_null(a.domain);
	assert_false(a.null);
}

static void path_bad(const char *in)
{
	path_bad_n(in, strlen(in), true);
}

/* A string of n copies of c, in the arena. */
static char *repeat(char c, size_t n)
{
	char *s = arena_alloc(arena, n + 1);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* Concatenation of up to four strings, in the arena. */
static char *cat4(const char *a, const char *b, const char *c, const char *d)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c), ld = strlen(d);
	char *s = arena_alloc(arena, la + lb + lc + ld + 1);
	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	memcpy(s + la + lb, c, lc);
	memcpy(s + la + lb + lc, d, ld);
	s[la + lb + lc + ld] = '\0';
	return s;
}

static void test_plain(void **state)
{
	(void)state;
	struct address a = path_ok("<user@example.com>", "user", "example.com");
	assert_false(a.null);
	assert_false(a.utf8);
	assert_false(a.quoted);
	path_ok("<First.Last@Mail.EXAMPLE.Org>", "First.Last", "mail.example.org");
	path_ok("<!#$%&'*+-/=?^_`{|}~@x.example>", "!#$%&'*+-/=?^_`{|}~", "x.example");
	path_ok("<user+tag@example.com>", "user+tag", "example.com");
	path_ok("<a@localhost>", "a", "localhost");
	path_ok("<a@1.2.3.4>", "a", "1.2.3.4"); /* an LDH name, not a literal */
	path_ok("<a@x-y.example>", "a", "x-y.example");
	path_ok("<0@9>", "0", "9");
}

static void test_quoted(void **state)
{
	(void)state;
	struct address a = path_ok("<\"john doe\"@x.org>", "john doe", "x.org");
	assert_true(a.quoted);
	path_ok("<\"a\\\"b\\\\c\"@x>", "a\"b\\c", "x");
	path_ok("<\"\\a\"@x>", "a", "x");
	path_ok("<\"a@b\"@c>", "a@b", "c");
	path_ok("<\"a>b<c\"@c>", "a>b<c", "c");
	path_ok("<\"..\"@c>", "..", "c");
	a = path_ok("<\"\"@c>", "", "c");
	assert_true(a.quoted);
	path_ok("<\"\\ \"@c>", " ", "c");
	path_bad("<\"a\tb\"@x>");    /* HT is not qtextSMTP */
	path_bad("<\"a\x01\"@x>");   /* control character */
	path_bad("<\"a\x7f\"@x>");   /* DEL */
	path_bad("<\"abc@x>");       /* unterminated */
	path_bad("<\"abc\\\"@x>");   /* the escaped quote does not close */
	path_bad("<\"a\\\x01\"@x>"); /* quoted-pair of a control character */
	path_bad("<\"a\\\"@x>");
	path_bad("<\"a\"b@x>"); /* text after the closing quote */
	path_bad("<a\"b\"@x>");
	path_bad("<\"a\">"); /* no domain */
	path_bad("<\"a\"@>");
}

static void test_dots(void **state)
{
	(void)state;
	path_ok("<a.b.c@x>", "a.b.c", "x");
	path_bad("<.a@x>");
	path_bad("<a.@x>");
	path_bad("<a..b@x>");
	path_bad("<.@x>");
	path_bad("<a@.x>");
	path_bad("<a@x.>");
	path_bad("<a@x..y>");
}

static void test_bad_chars(void **state)
{
	(void)state;
	path_bad("<a b@x>");
	path_bad("<a(b@x>");
	path_bad("<a,b@x>");
	path_bad("<a@b@x>");
	path_bad("<a@b_c.x>");
	path_bad("<a@-b.x>");
	path_bad("<a@b-.x>");
	path_bad("<a@b x>");
	path_bad("<a@b\\x>");
	path_bad("<a\\b@x>");
	path_bad("<a@x >");
	path_bad("< a@x>");
}

static void test_local_length(void **state)
{
	(void)state;
	char *l64 = repeat('a', 64), *l65 = repeat('a', 65);
	path_ok(cat4("<", l64, "@x.example>", ""), l64, "x.example");
	path_bad(cat4("<", l65, "@x.example>", ""));
	/* quoted: 62 characters plus the two quotes is 64 octets on the wire */
	char *q62 = repeat('b', 62), *q63 = repeat('b', 63);
	path_ok(cat4("<\"", q62, "\"@x>", ""), q62, "x");
	path_bad(cat4("<\"", q63, "\"@x>", ""));
	/* the limit counts the wire form: escapes count */
	char *e = cat4("<\"", repeat('c', 60), "\\d", "\"@x>"); /* 1+60+2+1 = 64 */
	path_ok(e, cat4(repeat('c', 60), "d", "", ""), "x");
	e = cat4("<\"", repeat('c', 61), "\\d", "\"@x>"); /* 65 */
	path_bad(e);
	/* UTF-8: 32 two-octet characters = 64 octets */
	char u64[65] = {0}, u66[67] = {0};
	for (int i = 0; i < 32; i++)
		memcpy(u64 + 2 * i, "\xc3\xa9", 2);
	for (int i = 0; i < 33; i++)
		memcpy(u66 + 2 * i, "\xc3\xa9", 2);
	path_ok(cat4("<", u64, "@x>", ""), u64, "x");
	path_bad(cat4("<", u66, "@x>", ""));
	char uq[65] = {0};
	for (int i = 0; i < 31; i++)
		memcpy(uq + 2 * i, "\xc3\xa9", 2);
	path_ok(cat4("<\"", uq, "\"@x>", ""), uq, "x"); /* 62 + 2 quotes */
	memcpy(uq + 62, "\xc3\xa9", 2);
	path_bad(cat4("<\"", uq, "\"@x>", ""));
}

/* A domain of exactly n octets (n >= 1): labels of 50 octets (51 at most for the last). */
static char *domain_of(size_t n)
{
	char *d = arena_alloc(arena, n + 1);
	size_t i = 0, in_label = 0;
	while (i < n) {
		if (in_label == 50 && i + 1 < n) {
			d[i++] = '.';
			in_label = 0;
		} else {
			d[i++] = 'd';
			in_label++;
		}
	}
	d[n] = '\0';
	return d;
}

static void test_path_and_domain_length(void **state)
{
	(void)state;
	/* whole path 256 octets exactly: "<a@" + 252 + ">" */
	char *d252 = domain_of(252), *d253 = domain_of(253);
	assert_int_equal(strlen(cat4("<a@", d252, ">", "")), 256);
	path_ok(cat4("<a@", d252, ">", ""), "a", d252);
	path_bad(cat4("<a@", d253, ">", ""));                                         /* 257 */
	path_bad(cat4("<", repeat('a', 64), "@", cat4(domain_of(190), ">", "", ""))); /* 257 */
	path_ok(cat4("<", repeat('a', 64), "@", cat4(domain_of(189), ">", "", "")), repeat('a', 64),
	        domain_of(189));
	/* a label of 63 octets is fine, 64 is not */
	path_ok(cat4("<a@", repeat('e', 63), ".x>", ""), "a", cat4(repeat('e', 63), ".x", "", ""));
	path_bad(cat4("<a@", repeat('e', 64), ".x>", ""));
	/* The domain limit of 255 cannot be reached inside a 256-octet path, so a 255/256
	 * domain is refused by the path limit: any error will do. */
	path_bad(cat4("<a@", domain_of(255), ">", ""));
	path_bad(cat4("<a@", domain_of(256), ">", ""));
	/* a very long input is refused without scanning it */
	path_bad(cat4("<", repeat('a', 100000), "@x>", ""));
}

static void test_bare_length(void **state)
{
	(void)state;
	struct address a;
	const char *error;
	char *s254 = cat4("a@", domain_of(252), "", ""), *s255 = cat4("a@", domain_of(253), "", "");
	assert_int_equal(address_parse(arena, s254, 254, &a, &error), 0);
	assert_string_equal(a.domain, domain_of(252));
	assert_int_equal(address_parse(arena, s255, 255, &a, &error), -1);
	char *l65 = cat4(repeat('l', 65), "@x", "", "");
	assert_int_equal(address_parse(arena, l65, strlen(l65), &a, &error), -1);
	assert_string_equal(error, "local part too long");
}

static void test_literals(void **state)
{
	(void)state;
	path_ok("<a@[192.0.2.1]>", "a", "[192.0.2.1]");
	path_ok("<a@[0.0.0.0]>", "a", "[0.0.0.0]");
	path_ok("<a@[255.255.255.255]>", "a", "[255.255.255.255]");
	path_ok("<a@[010.001.1.1]>", "a", "[010.001.1.1]"); /* Snum = 1*3DIGIT */
	path_ok("<a@[IPv6:2001:db8::1]>", "a", "[IPv6:2001:db8::1]");
	path_ok("<a@[ipv6:::1]>", "a", "[ipv6:::1]");
	path_ok("<a@[IPv6:2001:DB8::1]>", "a", "[IPv6:2001:DB8::1]"); /* not lower-cased */
	path_ok("<a@[IPv6:::ffff:192.0.2.1]>", "a", "[IPv6:::ffff:192.0.2.1]");
	path_ok("<a@[IPv6:1:2:3:4:5:6:7:8]>", "a", "[IPv6:1:2:3:4:5:6:7:8]");
	path_bad("<a@[256.1.1.1]>");
	path_bad("<a@[1.2.3]>");
	path_bad("<a@[1.2.3.4.5]>");
	path_bad("<a@[1.2.3.4.]>");
	path_bad("<a@[0001.2.3.4]>");
	path_bad("<a@[1..3.4]>");
	path_bad("<a@[-1.2.3.4]>");
	path_bad("<a@[1.2.3.4>");
	path_bad("<a@[]>");
	path_bad("<a@[>");
	path_bad("<a@[IPv6:]>");
	path_bad("<a@[IPv6:zz::1]>");
	path_bad("<a@[IPv6:1.2.3.4]>");
	path_bad("<a@[IPv6:2001:db8::1%eth0]>");
	path_bad("<a@[IPv6:1:2:3:4:5:6:7:8:9]>");
	path_bad("<a@[x-tag:foo]>"); /* General-address-literal: refused */
	path_bad("<a@[192.0.2.1]x>");
	path_bad("<a@x[192.0.2.1]>");
	path_bad_n("<a@[IPv6:::1\0]>", 15, true);
	path_bad_n("<a@[1.2.3.4\0]>", 14, true);
	char *long6 = cat4("<a@[IPv6:", repeat('1', 100), "]>", "");
	path_bad(long6);
}

static void test_source_route(void **state)
{
	(void)state;
	path_ok("<@a.example,@b.example:user@d.example>", "user", "d.example");
	path_ok("<@a.example:user@d.example>", "user", "d.example");
	path_ok("<@a:postmaster>", "postmaster", "");
	path_bad("<@:u@d>");
	path_bad("<@a u@d>");
	path_bad("<@a,u@d>");
	path_bad("<@a.example:>");
	path_bad("<@a,@:u@d>");
	path_bad("<@a,:u@d>");
	path_bad("<@a_b:u@d>");
	path_bad("<@a>");
	path_bad("<@>");
	path_bad("<@a:@b:u@d>");
	path_bad("<@[1.2.3.4]:u@d>");
}

static void test_null_path(void **state)
{
	(void)state;
	struct address a = path_ok_n("<>", 2, true, "", "");
	assert_true(a.null);
	path_bad_n("<>", 2, false);
	path_bad_n("< >", 3, true);
	path_bad_n("<<>>", 4, true);
}

static void test_postmaster(void **state)
{
	(void)state;
	struct address a = path_ok("<postmaster>", "postmaster", "");
	assert_false(a.null);
	path_ok("<PostMaster>", "postmaster", "");
	path_ok("<POSTMASTER>", "postmaster", "");
	path_ok("<Postmaster@Example.com>", "Postmaster", "example.com");
	path_bad("<postmaste>");
	path_bad("<postmasterx>");
	path_bad("<\"postmaster\">");
	path_bad("<user>");
	path_bad_n("<postmaster\0>", 12, true);
	path_bad_n("<postmast\0r>", 12, true);
}

static void test_utf8(void **state)
{
	(void)state;
	struct address a = path_ok("<jos\xc3\xa9@example.com>", "jos\xc3\xa9", "example.com");
	assert_true(a.utf8);
	a = path_ok("<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a>",
	            "\xe7\x94\xa8\xe6\x88\xb7",
	            "\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a");
	assert_true(a.utf8);
	a = path_ok("<user@B\xc3\x9c"
	            "CHER.example>",
	            "user",
	            "b\xc3\x9c"
	            "cher.example");
	assert_true(a.utf8); /* only ASCII letters are lowered */
	a = path_ok("<\"\xc3\xa9 x\"@a>", "\xc3\xa9 x", "a");
	assert_true(a.utf8);
	assert_true(a.quoted);
	a = path_ok("<\xf0\x9f\x93\xa7@a>", "\xf0\x9f\x93\xa7", "a"); /* 4-octet */
	assert_true(a.utf8);
	a = path_ok("<a@b>", "a", "b");
	assert_false(a.utf8);
	path_bad("<\xff@x>");
	path_bad("<a\xc3@x>");            /* truncated by '@' */
	path_bad("<a\xc3>");              /* truncated by the end */
	path_bad("<\xc0\xaf@x>");         /* overlong */
	path_bad("<\xe0\x80\xaf@x>");     /* overlong */
	path_bad("<\xed\xa0\x80@x>");     /* surrogate */
	path_bad("<\xf4\x90\x80\x80@x>"); /* above U+10FFFF */
	path_bad("<\x80@x>");             /* lone continuation */
	path_bad("<a@\xff.x>");
	path_bad("<a@x\xe2\x82>");
	path_bad("<\"\xc3\"@x>");
	path_bad("<\"\\\xc3\xa9\"@x>"); /* quoted-pair is ASCII only */
}

static void test_garbage(void **state)
{
	(void)state;
	path_bad("");
	path_bad("<");
	path_bad(">");
	path_bad("user@example.com");
	path_bad("<user@example.com");
	path_bad("user@example.com>");
	path_bad("<a@b>>");
	path_bad("<<a@b>");
	path_bad("<@>");
	path_bad("<a@>");
	path_bad("<@x>");
	path_bad("<a>");
	path_bad("<a@b> ");
	path_bad(" <a@b>");
	path_bad("<\"\">");
	path_bad_n("<a\0b@x>", 8, true);
	path_bad_n("<a@x\0>", 6, true);
	path_bad_n("<a@x.y\0z>", 9, true);
	path_bad_n("\0", 1, true);
	path_bad_n("<\0>", 3, true);
}

static void test_bare(void **state)
{
	(void)state;
	struct address a;
	const char *error;
	assert_int_equal(address_parse(arena, "User@Example.COM", 16, &a, &error), 0);
	assert_string_equal(a.local, "User");
	assert_string_equal(a.domain, "example.com");
	assert_int_equal(address_parse(arena, "\"a b\"@x", 7, &a, &error), 0);
	assert_string_equal(a.local, "a b");
	assert_true(a.quoted);
	assert_int_equal(address_parse(arena, "postmaster", 10, &a, &error), 0);
	assert_string_equal(a.local, "postmaster");
	assert_string_equal(a.domain, "");
	assert_int_equal(address_parse(arena, "<a@b>", 5, &a, &error), -1);
	assert_int_equal(address_parse(arena, "", 0, &a, &error), -1);
	assert_int_equal(address_parse(arena, "a@b c", 5, &a, &error), -1);
	assert_int_equal(address_parse(arena, "@a:b@c", 6, &a, &error), -1); /* no route */
	assert_int_equal(address_parse(arena, "a@b\0", 4, &a, &error), -1);
	assert_int_equal(address_parse(arena, "user", 4, &a, &error), -1);
	assert_string_equal(error, "missing @domain");
}

static void assert_format(const char *path, const char *want)
{
	struct address a, b;
	const char *error;
	assert_int_equal(address_parse_path(arena, path, strlen(path), true, &a, &error), 0);
	char *s = address_format(arena, &a);
	assert_string_equal(s, want);
	if (a.null)
		return;
	if (address_parse(arena, s, strlen(s), &b, &error) != 0)
		fail_msg("formatted '%s' does not parse: %s", s, error);
	assert_string_equal(a.local, b.local);
	assert_string_equal(a.domain, b.domain);
}

static void test_format(void **state)
{
	(void)state;
	assert_format("<user@EXAMPLE.com>", "user@example.com");
	assert_format("<\"john doe\"@x.org>", "\"john doe\"@x.org");
	assert_format("<\"a\\\"b\\\\c\"@x>", "\"a\\\"b\\\\c\"@x");
	assert_format("<\"abc\"@x>", "abc@x");
	assert_format("<\"a.b\"@x>", "a.b@x");
	assert_format("<\"a..b\"@x>", "\"a..b\"@x");
	assert_format("<\".a\"@x>", "\".a\"@x");
	assert_format("<\"\"@x>", "\"\"@x");
	assert_format("<\"a@b\"@x>", "\"a@b\"@x");
	assert_format("<>", "");
	assert_format("<postmaster>", "postmaster");
	assert_format("<POSTMASTER>", "postmaster");
	assert_format("<@r.example:u@d>", "u@d");
	assert_format("<a@[IPv6:::1]>", "a@[IPv6:::1]");
	assert_format("<a@[192.0.2.1]>", "a@[192.0.2.1]");
	assert_format("<\"\xc3\xa9\"@x>", "\xc3\xa9@x");
	assert_format("<\"\xc3\xa9 \"@x>", "\"\xc3\xa9 \"@x");
	/* a hand-made address: NULL parts format as empty */
	struct address z = {0};
	assert_string_equal(address_format(arena, &z), "");
}

static void test_domain_valid(void **state)
{
	(void)state;
	assert_true(address_domain_valid("example.com", 11));
	assert_true(address_domain_valid("localhost", 9));
	assert_true(address_domain_valid("a-b.c0", 6));
	assert_true(address_domain_valid("EXAMPLE.COM", 11));
	assert_true(address_domain_valid("\xe4\xbe\x8b\xe5\xad\x90.cn", 9));
	assert_true(address_domain_valid(domain_of(253), 253));
	assert_false(address_domain_valid(domain_of(254), 254));
	assert_true(address_domain_valid(repeat('a', 63), 63));
	assert_false(address_domain_valid(repeat('a', 64), 64));
	assert_false(address_domain_valid("", 0));
	assert_false(address_domain_valid(".", 1));
	assert_false(address_domain_valid("example.com.", 12));
	assert_false(address_domain_valid(".example.com", 12));
	assert_false(address_domain_valid("a..b", 4));
	assert_false(address_domain_valid("-a.b", 4));
	assert_false(address_domain_valid("a-.b", 4));
	assert_false(address_domain_valid("a_b.c", 5));
	assert_false(address_domain_valid("a b", 3));
	assert_false(address_domain_valid("[1.2.3.4]", 9));
	assert_false(address_domain_valid("a\0b", 3));
	assert_false(address_domain_valid("a\xff", 2));
	assert_false(address_domain_valid("a\xc3", 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_plain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_quoted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dots, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_chars, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_local_length, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_path_and_domain_length, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bare_length, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_literals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_source_route, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_null_path, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_postmaster, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_utf8, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bare, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_format, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_domain_valid, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
