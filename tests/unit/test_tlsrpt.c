/* Unit tests for smtp/tlsrpt (RFC 8460) and core/json: the _smtp._tls TXT record (version,
 * delimiters and whitespace, several rua URIs, bad and unsupported URIs, extensions), mailto:
 * addresses, days, the JSON writer's escaping, the report built from counted rows (field by
 * field, grouping into policies and failure details), gzip, and the report mail. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "core/json.h"
#include "smtp/tlsrpt.h"
#include "core/banned.h"

static int txt(const char *s, struct tlsrpt_record *rec)
{
	return tlsrpt_parse_txt(s, strlen(s), rec);
}

static void test_txt_basic(void **state)
{
	(void)state;
	struct tlsrpt_record rec;
	assert_int_equal(txt("v=TLSRPTv1; rua=mailto:reports@example.net", &rec), 1);
	assert_int_equal(rec.rua_count, 1);
	assert_string_equal(rec.rua[0], "mailto:reports@example.net");
	/* no spaces, a trailing delimiter, tabs */
	assert_int_equal(txt("v=TLSRPTv1;rua=mailto:a@example.net;", &rec), 1);
	assert_int_equal(txt("v=TLSRPTv1 \t;\t rua=mailto:a@example.net  ;  ", &rec), 1);
	assert_string_equal(rec.rua[0], "mailto:a@example.net");
	/* https is kept (sending to it is another matter) */
	assert_int_equal(txt("v=TLSRPTv1; rua=https://reporting.example.net/v1/tlsrpt", &rec), 1);
	assert_string_equal(rec.rua[0], "https://reporting.example.net/v1/tlsrpt");
}

static void test_txt_several_rua(void **state)
{
	(void)state;
	struct tlsrpt_record rec;
	assert_int_equal(txt("v=TLSRPTv1; rua=mailto:a@x.example , https://r.example/t,"
	                     "mailto:b@y.example",
	                     &rec),
	                 1);
	assert_int_equal(rec.rua_count, 3);
	assert_string_equal(rec.rua[0], "mailto:a@x.example");
	assert_string_equal(rec.rua[1], "https://r.example/t");
	assert_string_equal(rec.rua[2], "mailto:b@y.example");
	/* at most TLSRPT_RUA_MAX */
	assert_int_equal(txt("v=TLSRPTv1; rua=mailto:1@x.example,mailto:2@x.example,"
	                     "mailto:3@x.example,mailto:4@x.example,mailto:5@x.example",
	                     &rec),
	                 1);
	assert_int_equal(rec.rua_count, TLSRPT_RUA_MAX);
	assert_string_equal(rec.rua[3], "mailto:4@x.example");
	/* bad URIs are skipped, good ones kept */
	assert_int_equal(txt("v=TLSRPTv1; rua=ftp://x.example/r,mailto:nobody,"
	                     "mailto:ok@x.example,https://,mailto:a@b@c,https://u@x.example/",
	                     &rec),
	                 1);
	assert_int_equal(rec.rua_count, 1);
	assert_string_equal(rec.rua[0], "mailto:ok@x.example");
}

static void test_txt_invalid(void **state)
{
	(void)state;
	struct tlsrpt_record rec;
	/* missing or wrong version, wrong case, version not first */
	assert_int_equal(txt("rua=mailto:a@example.net", &rec), 0);
	assert_int_equal(txt("v=tlsrptv1; rua=mailto:a@example.net", &rec), 0);
	assert_int_equal(txt("v=TLSRPTv2; rua=mailto:a@example.net", &rec), 0);
	assert_int_equal(txt("v=TLSRPTv10; rua=mailto:a@example.net", &rec), 0);
	assert_int_equal(txt("rua=mailto:a@example.net; v=TLSRPTv1", &rec), 0);
	assert_int_equal(txt(" v=TLSRPTv1; rua=mailto:a@example.net", &rec), 0);
	/* no rua, an empty rua, two rua fields, only unusable URIs */
	assert_int_equal(txt("v=TLSRPTv1", &rec), 0);
	assert_int_equal(txt("v=TLSRPTv1;", &rec), 0);
	assert_int_equal(txt("v=TLSRPTv1; rua=", &rec), 0);
	assert_int_equal(txt("v=TLSRPTv1; rua=mailto:a@x.example; rua=mailto:b@x.example", &rec),
	                 0);
	assert_int_equal(txt("v=TLSRPTv1; rua=http://x.example/r", &rec), 0);
	assert_int_equal(txt("v=TLSRPTv1; rua=mailto:a b@x.example", &rec), 0);
	/* a field without '=', a bad extension value, junk */
	assert_int_equal(txt("v=TLSRPTv1; rua=mailto:a@x.example; junk", &rec), 0);
	assert_int_equal(txt("v=TLSRPTv1; rua=mailto:a@x.example; ext=", &rec), 0);
	assert_int_equal(txt("v=TLSRPTv1; rua=mailto:a@x.example; ext=a=b", &rec), 0);
	assert_int_equal(txt("v=TLSRPTv1; rua=mailto:a@x.example; _x=1", &rec), 0);
	/* NUL inside */
	assert_int_equal(tlsrpt_parse_txt("v=TLSRPTv1; rua=mailto:a@x.example\0x", 36, &rec), 0);
	/* extensions are ignored */
	assert_int_equal(txt("v=TLSRPTv1; ext-1.a=v; rua=mailto:a@x.example; z=9", &rec), 1);
	assert_int_equal(rec.rua_count, 1);
}

static void test_mailto(void **state)
{
	(void)state;
	char a[64];
	assert_int_equal(tlsrpt_mailto_address("mailto:tls@example.net", a, sizeof(a)), 0);
	assert_string_equal(a, "tls@example.net");
	assert_int_equal(
	    tlsrpt_mailto_address("MAILTO:tls%2Brpt@example.net?subject=x", a, sizeof(a)), 0);
	assert_string_equal(a, "tls+rpt@example.net");
	assert_int_equal(tlsrpt_mailto_address("mailto:tls%0d%0aBcc:x@example.net", a, sizeof(a)),
	                 -1);
	assert_int_equal(tlsrpt_mailto_address("mailto:a@b,c@d", a, sizeof(a)), -1);
	assert_int_equal(tlsrpt_mailto_address("mailto:@example.net", a, sizeof(a)), -1);
	assert_int_equal(tlsrpt_mailto_address("mailto:a@", a, sizeof(a)), -1);
	assert_int_equal(tlsrpt_mailto_address("mailto:a%4@x", a, sizeof(a)), -1);
	assert_int_equal(tlsrpt_mailto_address("https://x", a, sizeof(a)), -1);
	assert_int_equal(tlsrpt_mailto_address("mailto:averylongaddress@example.net", a, 8), -1);
}

static void test_https(void **state)
{
	(void)state;
	char host[TLSRPT_HOST_MAX], path[64];
	int port;
	assert_int_equal(tlsrpt_https_parse("https://Reports.Example.NET/v1/tlsrpt", host, &port,
	                                    path, sizeof(path)),
	                 0);
	assert_string_equal(host, "reports.example.net");
	assert_int_equal(port, 443);
	assert_string_equal(path, "/v1/tlsrpt");
	assert_int_equal(
	    tlsrpt_https_parse("HTTPS://r.example:8443", host, &port, path, sizeof(path)), 0);
	assert_int_equal(port, 8443);
	assert_string_equal(path, "/");
	assert_int_equal(
	    tlsrpt_https_parse("https://r.example?x=1", host, &port, path, sizeof(path)), 0);
	assert_string_equal(path, "/?x=1");
	assert_int_equal(tlsrpt_https_parse("https://", host, &port, path, sizeof(path)), -1);
	assert_int_equal(tlsrpt_https_parse("https:///x", host, &port, path, sizeof(path)), -1);
	assert_int_equal(tlsrpt_https_parse("http://r.example/", host, &port, path, sizeof(path)),
	                 -1);
	assert_int_equal(
	    tlsrpt_https_parse("https://u@r.example/", host, &port, path, sizeof(path)), -1);
	assert_int_equal(tlsrpt_https_parse("https://[::1]/", host, &port, path, sizeof(path)), -1);
	assert_int_equal(
	    tlsrpt_https_parse("https://r.example:0/", host, &port, path, sizeof(path)), -1);
	assert_int_equal(
	    tlsrpt_https_parse("https://r.example:65536/", host, &port, path, sizeof(path)), -1);
	assert_int_equal(tlsrpt_https_parse("https://r.example:/", host, &port, path, sizeof(path)),
	                 -1);
	assert_int_equal(
	    tlsrpt_https_parse("https://r.example/a#frag", host, &port, path, sizeof(path)), -1);
	assert_int_equal(
	    tlsrpt_https_parse("https://r.example/a\x7f", host, &port, path, sizeof(path)), -1);
	assert_int_equal(tlsrpt_https_parse("https://r.example/0123456789012345678901234567890123"
	                                    "4567890123456789012345678901234567890123456789",
	                                    host, &port, path, sizeof(path)),
	                 -1);
}

static void test_days(void **state)
{
	(void)state;
	char t[11];
	int64_t day;
	assert_int_equal(tlsrpt_day_parse("2026-12-06", &day), 0);
	assert_int_equal(day, 20793);
	tlsrpt_day_text(day, t);
	assert_string_equal(t, "2026-12-06");
	assert_int_equal(tlsrpt_day_parse("1970-01-01", &day), 0);
	assert_int_equal(day, 0);
	assert_int_equal(tlsrpt_day_parse("2026-02-30", &day), -1);
	assert_int_equal(tlsrpt_day_parse("2026-12-6", &day), -1);
	assert_int_equal(tlsrpt_day_parse("2026-12-06x", &day), -1);
	assert_int_equal(tlsrpt_day_parse("today", &day), -1);
}

static void test_json_string(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1024);
	assert_int_equal(json_string(&b, "a\"b\\c\n\r\t\x01\x7f/é"), 0);
	assert_string_equal(buf_cstr(&b), "\"a\\\"b\\\\c\\n\\r\\t\\u0001\\u007f/é\"");
	buf_reset(&b);
	/* invalid UTF-8: a stray continuation octet, an overlong, a surrogate, a cut sequence */
	assert_int_equal(json_string(&b, "x\x80y\xc0\xafz\xed\xa0\x80w\xe2\x82"), 0);
	assert_string_equal(buf_cstr(&b), "\"x\xef\xbf\xbdy\xef\xbf\xbd\xef\xbf\xbdz\xef\xbf\xbd"
	                                  "\xef\xbf\xbd\xef\xbf\xbdw\xef\xbf\xbd\xef\xbf\xbd\"");
	buf_reset(&b);
	assert_int_equal(json_string(&b, NULL), 0);
	assert_string_equal(buf_cstr(&b), "\"\"");
	buf_reset(&b);
	assert_int_equal(json_key(&b, "k"), 0);
	assert_int_equal(json_uint(&b, 18446744073709551615u), 0);
	assert_string_equal(buf_cstr(&b), "\"k\": 18446744073709551615");
	buf_free(&b);
	struct buf small;
	buf_init(&small, 4);
	assert_int_equal(json_string(&small, "abcdef"), -1);
	buf_free(&small);
}

static struct store_tlsrpt_row row(const char *type, const char *policy, const char *mx,
                                   const char *result, const char *sip, const char *rmx,
                                   const char *rip, uint64_t n)
{
	return (struct store_tlsrpt_row){.day = 20793,
	                                 .policy_domain = "example.net",
	                                 .policy_type = type,
	                                 .policy_string = policy,
	                                 .mx_host = mx,
	                                 .result_type = result,
	                                 .sending_ip = sip,
	                                 .receiving_mx = rmx,
	                                 .receiving_ip = rip,
	                                 .sessions = n};
}

static void test_report(void **state)
{
	(void)state;
	const char *sts = "version: STSv1\nmode: enforce\nmx: *.mx.example.net\nmax_age: 86400";
	struct store_tlsrpt_row rows[] = {
	    row("no-policy-found", "", "mx9.example.net", "", "", "", "", 2),
	    row("sts", sts, "*.mx.example.net", "", "", "", "", 10),
	    row("sts", sts, "*.mx.example.net", "certificate-expired", "192.0.2.1",
	        "a.mx.example.net", "198.51.100.7", 3),
	    row("sts", sts, "*.mx.example.net", "certificate-expired", "192.0.2.1",
	        "a.mx.example.net", "198.51.100.7", 4),
	    row("sts", sts, "*.mx.example.net", "starttls-not-supported", "192.0.2.1",
	        "b.mx.example.net", "198.51.100.8", 1),
	};
	struct tlsrpt_report_meta meta = {.organization = "Example \"Org\"",
	                                  .contact = "postmaster@mx.example.org",
	                                  .report_id = "2026-12-06.example.net@mx.example.org",
	                                  .day = 20793};
	struct buf b;
	buf_init(&b, 1 << 20);
	assert_int_equal(tlsrpt_report_json(&meta, rows, 5, &b), 0);
	assert_string_equal(
	    buf_cstr(&b),
	    "{\"organization-name\": \"Example \\\"Org\\\"\", "
	    "\"date-range\": {\"start-datetime\": \"2026-12-06T00:00:00Z\", "
	    "\"end-datetime\": \"2026-12-06T23:59:59Z\"}, "
	    "\"contact-info\": \"postmaster@mx.example.org\", "
	    "\"report-id\": \"2026-12-06.example.net@mx.example.org\", "
	    "\"policies\": ["
	    "{\"policy\": {\"policy-type\": \"no-policy-found\", \"policy-domain\": "
	    "\"example.net\", \"mx-host\": [\"mx9.example.net\"]}, "
	    "\"summary\": {\"total-successful-session-count\": 2, "
	    "\"total-failure-session-count\": 0}}, "
	    "{\"policy\": {\"policy-type\": \"sts\", \"policy-string\": [\"version: STSv1\", "
	    "\"mode: enforce\", \"mx: *.mx.example.net\", \"max_age: 86400\"], "
	    "\"policy-domain\": \"example.net\", \"mx-host\": [\"*.mx.example.net\"]}, "
	    "\"summary\": {\"total-successful-session-count\": 10, "
	    "\"total-failure-session-count\": 8}, "
	    "\"failure-details\": ["
	    "{\"result-type\": \"certificate-expired\", \"sending-mta-ip\": \"192.0.2.1\", "
	    "\"receiving-mx-hostname\": \"a.mx.example.net\", \"receiving-ip\": "
	    "\"198.51.100.7\", \"failed-session-count\": 7}, "
	    "{\"result-type\": \"starttls-not-supported\", \"sending-mta-ip\": \"192.0.2.1\", "
	    "\"receiving-mx-hostname\": \"b.mx.example.net\", \"receiving-ip\": "
	    "\"198.51.100.8\", \"failed-session-count\": 1}]}]}");
	/* too small a buffer fails */
	struct buf small;
	buf_init(&small, 100);
	assert_int_equal(tlsrpt_report_json(&meta, rows, 5, &small), -1);
	buf_free(&small);
	buf_free(&b);
}

/* TLSA: two hosts with their own mx-host; no policy found for one; mx hosts collected */
static void test_report_mx_hosts(void **state)
{
	(void)state;
	struct store_tlsrpt_row rows[] = {
	    row("tlsa", "3 1 1 AB", "mx1.example.net", "", "", "", "", 1),
	    row("tlsa", "3 1 1 AB", "mx2.example.net", "", "", "", "", 1),
	    row("tlsa", "3 1 1 AB", "mx1.example.net", "validation-failure", "", "mx1.example.net",
	        "", 5),
	};
	struct tlsrpt_report_meta meta = {
	    .organization = "o", .contact = "c", .report_id = "r", .day = 0};
	struct buf b;
	buf_init(&b, 1 << 20);
	assert_int_equal(tlsrpt_report_json(&meta, rows, 3, &b), 0);
	assert_non_null(strstr(buf_cstr(&b),
	                       "\"policy-string\": [\"3 1 1 AB\"], \"policy-domain\": "
	                       "\"example.net\", \"mx-host\": [\"mx1.example.net\", "
	                       "\"mx2.example.net\"]}"));
	assert_non_null(strstr(buf_cstr(&b), "{\"result-type\": \"validation-failure\", "
	                                     "\"receiving-mx-hostname\": \"mx1.example.net\", "
	                                     "\"failed-session-count\": 5}"));
	assert_non_null(strstr(buf_cstr(&b), "1970-01-01T00:00:00Z"));
	buf_free(&b);
}

static void test_gzip(void **state)
{
	(void)state;
	const char *text = "{\"policies\": []} {\"policies\": []} {\"policies\": []}";
	struct buf gz;
	buf_init(&gz, 1 << 20);
	assert_int_equal(tlsrpt_gzip(text, strlen(text), &gz), 0);
	assert_true(gz.len > 18);
	assert_int_equal((unsigned char)gz.data[0], 0x1f); /* RFC 1952 magic */
	assert_int_equal((unsigned char)gz.data[1], 0x8b);
	unsigned char out[256];
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
	zs.next_in = (unsigned char *)gz.data;
	zs.avail_in = (unsigned)gz.len;
	zs.next_out = out;
	zs.avail_out = sizeof(out);
	assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
	assert_int_equal(zs.total_out, strlen(text));
	assert_memory_equal(out, text, strlen(text));
	inflateEnd(&zs);
	buf_free(&gz);
}

static void test_mail(void **state)
{
	(void)state;
	const unsigned char gz[100] = {0x1f, 0x8b};
	struct tlsrpt_mail m = {.from = "postmaster@mx.example.org",
	                        .to = "tls@example.net",
	                        .domain = "example.net",
	                        .submitter = "mx.example.org",
	                        .report_id = "2026-12-06.example.net@mx.example.org",
	                        .hostname = "mx.example.org",
	                        .day = 20793,
	                        .now = 20794 * 86400 + 60,
	                        .gz = gz,
	                        .gz_len = sizeof(gz)};
	struct buf b;
	buf_init(&b, 1 << 20);
	assert_int_equal(tlsrpt_mail_build(&m, &b), 0);
	const char *s = buf_cstr(&b);
	assert_non_null(strstr(s, "\r\nSubject: Report Domain: example.net Submitter: "
	                          "mx.example.org Report-ID: "
	                          "<2026-12-06.example.net@mx.example.org>\r\n"));
	assert_non_null(strstr(s, "\r\nTLS-Report-Domain: example.net\r\n"));
	assert_non_null(strstr(s, "\r\nTLS-Report-Submitter: mx.example.org\r\n"));
	assert_non_null(strstr(s, "\r\nDate: Mon, 07 Dec 2026 00:01:00 +0000\r\n"));
	assert_non_null(strstr(s, "Content-Type: multipart/report; report-type=\"tlsrpt\";"));
	assert_non_null(strstr(s, "\r\nContent-Type: application/tlsrpt+gzip\r\n"
	                          "Content-Transfer-Encoding: base64\r\n"));
	assert_non_null(
	    strstr(s, "filename=\"mx.example.org!example.net!1796515200!1796601599.json.gz\""));
	/* 100 octets: 136 base64 characters in lines of 76 */
	assert_non_null(strstr(s, "\r\n\r\nH4sAAAAA"));
	const char *body = strstr(s, "\r\n\r\nH4s") + 4;
	assert_int_equal(strcspn(body, "\r"), 76);
	assert_int_equal(strcspn(body + 78, "\r"), 60);
	assert_string_equal(s + b.len - 4, "--\r\n");
	/* every line ends with CRLF */
	for (size_t i = 0; i < b.len; i++)
		if (s[i] == '\n')
			assert_int_equal(s[i - 1], '\r');
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_txt_basic),
	    cmocka_unit_test(test_txt_several_rua),
	    cmocka_unit_test(test_txt_invalid),
	    cmocka_unit_test(test_mailto),
	    cmocka_unit_test(test_https),
	    cmocka_unit_test(test_days),
	    cmocka_unit_test(test_json_string),
	    cmocka_unit_test(test_report),
	    cmocka_unit_test(test_report_mx_hosts),
	    cmocka_unit_test(test_gzip),
	    cmocka_unit_test(test_mail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
