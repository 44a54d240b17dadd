/* Unit tests for smtp/dmarc_report (RFC 7489 §7.2, Appendix C): rua= lists with size limits,
 * the external destination record (§7.1), alignment per method, the XML report built from
 * counted rows (metadata, policy_published, several rows, auth_results, escaping), the
 * file name (§7.2.1.1) and the report mail. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "smtp/dmarc_report.h"
#include "core/banned.h"

static void test_rua(void **state)
{
	(void)state;
	struct dmarc_report_rua r[DMARC_REPORT_RUA_MAX];
	assert_int_equal(dmarc_report_rua_parse("mailto:d@example.com", r, 4), 1);
	assert_string_equal(r[0].address, "d@example.com");
	assert_int_equal(r[0].max_size, 0);
	/* sizes, spaces, percent-encoding, other schemes skipped, a query dropped */
	assert_int_equal(dmarc_report_rua_parse(" mailto:a@x.example!10m , https://r.example/x,"
	                                        "MAILTO:b%2Bc@y.example!512,mailto:q@z.example?"
	                                        "subject=x!1k",
	                                        r, 4),
	                 3);
	assert_string_equal(r[0].address, "a@x.example");
	assert_int_equal(r[0].max_size, 10u << 20);
	assert_string_equal(r[1].address, "b+c@y.example");
	assert_int_equal(r[1].max_size, 512);
	assert_string_equal(r[2].address, "q@z.example");
	assert_int_equal(r[2].max_size, 1024);
	/* a bad size is no limit; malformed addresses and injected lines are skipped */
	assert_int_equal(dmarc_report_rua_parse("mailto:a@x.example!10q,mailto:@x.example,"
	                                        "mailto:a@,mailto:a%0d%0aBcc:b@x.example,"
	                                        "mailto:a@b@c,mailto:a%4@x,mailto:@b@c.x",
	                                        r, 4),
	                 1);
	assert_int_equal(r[0].max_size, 0);
	/* at most max */
	assert_int_equal(dmarc_report_rua_parse("mailto:1@x.t,mailto:2@x.t,mailto:3@x.t", r, 2), 2);
	assert_string_equal(r[1].address, "2@x.t");
	assert_int_equal(dmarc_report_rua_parse("", r, 4), 0);
}

static bool auth(const char *s)
{
	return dmarc_report_txt_authorizes(s, strlen(s));
}

static void test_external_record(void **state)
{
	(void)state;
	assert_true(auth("v=DMARC1"));
	assert_true(auth("v=DMARC1;"));
	assert_true(auth("v = DMARC1 ; rua=mailto:x@y.example"));
	assert_false(auth("v=DMARC2"));
	assert_false(auth("v=DMARC10"));
	assert_false(auth("v=spf1 -all"));
	assert_false(auth(" v=DMARC1"));
	assert_false(auth(""));
}

static struct store_dmarc_row row(const char *ip, uint64_t count, const char *disposition,
                                  const char *reason, const char *dkim)
{
	return (struct store_dmarc_row){.day = 20000,
	                                .r = {.policy_domain = "example.com",
	                                      .policy = "reject quarantine 50 s r",
	                                      .rua = "mailto:d@example.com",
	                                      .source_ip = ip,
	                                      .header_from = "example.com",
	                                      .envelope_from = "bounce.example.com",
	                                      .disposition = disposition,
	                                      .reason = reason,
	                                      .dkim_aligned = "fail",
	                                      .spf_aligned = "pass",
	                                      .dkim = dkim,
	                                      .spf = "bounce.example.com\tmfrom\tpass"},
	                                .count = count};
}

static bool has(const struct buf *b, const char *s)
{
	return strstr(buf_cstr(b), s) != NULL;
}

static size_t occurrences(const struct buf *b, const char *s)
{
	size_t n = 0;
	for (const char *p = buf_cstr(b); (p = strstr(p, s)) != NULL; p += strlen(s))
		n++;
	return n;
}

static void test_xml(void **state)
{
	(void)state;
	struct store_dmarc_row rows[3] = {
	    row("192.0.2.1", 3, "none", "", "example.com\tsel\tpass\nother.example\ts2\tfail"),
	    row("192.0.2.2", 1, "quarantine", "sampled_out", ""),
	    row("2001:db8::1", 7, "reject", "", "example.com\t\tfail"),
	};
	struct dmarc_report_meta meta = {.org_name = "Org <&> \"Q\" 'A'",
	                                 .email = "postmaster@mx.example.org",
	                                 .report_id = "2024-10-05.example.com@mx.example.org",
	                                 .begin = 20000 * 86400LL,
	                                 .end = 20000 * 86400LL + 86399};
	struct buf b;
	buf_init(&b, DMARC_REPORT_XML_MAX);
	assert_int_equal(dmarc_report_xml(&meta, rows, 3, &b), 0);
	assert_int_equal(
	    strncmp(buf_cstr(&b), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>", 48), 0);
	assert_true(has(&b, "<org_name>Org &lt;&amp;&gt; &quot;Q&quot; &apos;A&apos;</org_name>"));
	assert_true(has(&b, "<email>postmaster@mx.example.org</email>"));
	assert_true(has(&b, "<report_id>2024-10-05.example.com@mx.example.org</report_id>"));
	assert_true(has(&b, "<begin>1728000000</begin>"));
	assert_true(has(&b, "<end>1728086399</end>"));
	assert_true(has(&b, "<policy_published>\n    <domain>example.com</domain>\n"
	                    "    <adkim>s</adkim>\n    <aspf>r</aspf>\n    <p>reject</p>\n"
	                    "    <sp>quarantine</sp>\n    <pct>50</pct>\n  </policy_published>"));
	assert_int_equal(occurrences(&b, "<record>"), 3);
	assert_int_equal(occurrences(&b, "</record>"), 3);
	assert_true(has(&b, "<source_ip>192.0.2.1</source_ip>\n      <count>3</count>\n"
	                    "      <policy_evaluated>\n        <disposition>none</disposition>\n"
	                    "        <dkim>fail</dkim>\n        <spf>pass</spf>\n"
	                    "      </policy_evaluated>"));
	assert_true(has(&b, "<disposition>quarantine</disposition>\n        <dkim>fail</dkim>\n"
	                    "        <spf>pass</spf>\n        <reason>\n"
	                    "          <type>sampled_out</type>\n        </reason>"));
	assert_int_equal(occurrences(&b, "<reason>"), 1);
	assert_true(has(&b, "<envelope_from>bounce.example.com</envelope_from>\n"
	                    "      <header_from>example.com</header_from>"));
	/* two signatures in the first row, none in the second, one without selector */
	assert_true(has(&b, "<dkim>\n        <domain>example.com</domain>\n"
	                    "        <selector>sel</selector>\n        <result>pass</result>\n"
	                    "      </dkim>\n      <dkim>\n        <domain>other.example</domain>\n"
	                    "        <selector>s2</selector>\n        <result>fail</result>"));
	assert_true(has(&b, "<dkim>\n        <domain>example.com</domain>\n"
	                    "        <result>fail</result>"));
	assert_int_equal(occurrences(&b, "<selector>"), 2);
	assert_int_equal(occurrences(&b,
	                             "<spf>\n        <domain>bounce.example.com</domain>\n"
	                             "        <scope>mfrom</scope>\n        <result>pass</result>"),
	                 3);
	assert_true(has(&b, "<count>7</count>"));
	assert_int_equal(strcmp(buf_cstr(&b) + b.len - 12, "</feedback>\n"), 0);

	/* text from the network is escaped, controls replaced */
	buf_reset(&b);
	rows[0].r.header_from = "a<b>&\x01.example";
	assert_int_equal(dmarc_report_xml(&meta, rows, 1, &b), 0);
	assert_true(has(&b, "<header_from>a&lt;b&gt;&amp;?.example</header_from>"));
	/* no rows, or no room */
	assert_int_equal(dmarc_report_xml(&meta, rows, 0, &b), -1);
	struct buf small;
	buf_init(&small, 100);
	assert_int_equal(dmarc_report_xml(&meta, rows, 1, &small), -1);
	buf_free(&small);
	buf_free(&b);
}

/* A day at the row cap: STORE_DMARC_DAY_ROWS_MAX rows of one domain build, compress and
 * come back whole. */
static void test_full_day(void **state)
{
	(void)state;
	size_t n = STORE_DMARC_DAY_ROWS_MAX;
	struct store_dmarc_row *rows = calloc(n, sizeof(*rows));
	char(*ips)[48] = calloc(n, sizeof(*ips));
	assert_non_null(rows);
	assert_non_null(ips);
	for (size_t i = 0; i < n; i++) {
		snprintf(ips[i], sizeof(ips[i]), "2001:db8:ffff:ffff:ffff:ffff:%x:%x",
		         (unsigned)(i >> 16), (unsigned)(i & 0xffff));
		rows[i] = row(ips[i], i + 1, "quarantine", "local_policy",
		              "a-rather-long-signing-domain.example.com\tselector-2024-10\tfail\n"
		              "another-signing-domain.example.net\tselector-2024-11\tpass");
		rows[i].r.header_from = "a-rather-long-header-from-domain.example.com";
		rows[i].r.envelope_from = "bounces.a-rather-long-envelope-domain.example.com";
	}
	struct dmarc_report_meta meta = {"org", "postmaster@mx.example.org", "id", 0, 86399};
	struct buf xml, gz;
	buf_init(&xml, DMARC_REPORT_XML_MAX);
	buf_init(&gz, DMARC_REPORT_XML_MAX);
	assert_int_equal(dmarc_report_xml(&meta, rows, n, &xml), 0);
	assert_int_equal(dmarc_report_gzip(xml.data, xml.len, &gz), 0);
	assert_true(gz.len < xml.len / 4);
	unsigned char *back = malloc(xml.len);
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
	zs.next_in = (unsigned char *)gz.data;
	zs.avail_in = (unsigned)gz.len;
	zs.next_out = back;
	zs.avail_out = (unsigned)xml.len;
	assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
	assert_int_equal(zs.total_out, xml.len);
	assert_memory_equal(back, xml.data, xml.len);
	inflateEnd(&zs);
	/* more than the limit is refused */
	assert_int_equal(dmarc_report_gzip(xml.data, DMARC_REPORT_XML_MAX + 1, &gz), -1);
	free(back);
	buf_free(&xml);
	buf_free(&gz);
	free(ips);
	free(rows);
}

static void test_filename(void **state)
{
	(void)state;
	char name[200];
	dmarc_report_filename("mx.example.org", "example.com", 1728000000, 1728086399, name,
	                      sizeof(name));
	assert_string_equal(name, "mx.example.org!example.com!1728000000!1728086399.xml.gz");
}

static void test_mail(void **state)
{
	(void)state;
	const unsigned char gz[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
	struct dmarc_report_mail m = {.from = "postmaster@mx.example.org",
	                              .to = "d@example.com",
	                              .domain = "example.com",
	                              .submitter = "mx.example.org",
	                              .report_id = "2024-10-05.example.com@mx.example.org",
	                              .begin = 1728000000,
	                              .end = 1728086399,
	                              .now = 1728090000,
	                              .gz = gz,
	                              .gz_len = sizeof(gz)};
	struct buf b;
	buf_init(&b, 65536);
	assert_int_equal(dmarc_report_mail_build(&m, &b), 0);
	assert_int_equal(strncmp(buf_cstr(&b),
	                         "From: <postmaster@mx.example.org>\r\nTo: "
	                         "<d@example.com>\r\n",
	                         52),
	                 0);
	assert_true(has(&b, "\r\nSubject: Report Domain: example.com Submitter: mx.example.org "
	                    "Report-ID: <2024-10-05.example.com@mx.example.org>\r\n"));
	assert_true(has(&b, "\r\nContent-Type: multipart/mixed;\r\n\tboundary=\""));
	assert_true(has(&b, "\r\nContent-Type: application/gzip;\r\n\tname=\"mx.example.org!"
	                    "example.com!1728000000!1728086399.xml.gz\"\r\n"));
	assert_true(
	    has(&b, "filename=\"mx.example.org!example.com!1728000000!1728086399.xml.gz\""));
	assert_true(has(&b, "\r\n\r\nH4sIAAAAAAAAAw==\r\n"));
	/* every line ends with CRLF */
	for (size_t i = 0; i < b.len; i++)
		if (b.data[i] == '\n')
			assert_int_equal(b.data[i - 1], '\r');
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rua),      cmocka_unit_test(test_external_record),
	    cmocka_unit_test(test_xml),      cmocka_unit_test(test_full_day),
	    cmocka_unit_test(test_filename), cmocka_unit_test(test_mail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
