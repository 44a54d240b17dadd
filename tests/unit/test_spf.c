/* Unit tests for smtp/spf beyond the RFC 7208 suite (tests/integration/test_spf_suite.py):
 * the pending/answer cycle asks each answer once and in evaluation order, an IPv4-mapped
 * client is checked as IPv4, a TXT record with a NUL octet is a syntax error, the
 * explanation and the problem text, and result names. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "smtp/spf.h"
#include "core/banned.h"

struct zone_rec {
	const char *name;
	enum spf_dns_type type;
	const char *value; /* TXT text, a name, or an address */
	size_t len;        /* TXT with NUL octets: its length; else 0 */
};

/* Run the check over zone; the queries asked, in order, into asked (space-separated). */
static enum spf_result run(const struct zone_rec *zone, size_t n, const char *ip,
                           const char *sender, char *asked, size_t asked_len,
                           struct spf_check **c_r)
{
	struct spf_request req = {
	    .sender = sender, .helo = "helo.example.org", .receiver = "mx.test"};
	req.family = strchr(ip, ':') != NULL ? AF_INET6 : AF_INET;
	assert_int_equal(inet_pton(req.family, ip, req.ip), 1);
	struct spf_check *c = spf_check_new(&req);
	enum spf_result r;
	asked[0] = '\0';
	while ((r = spf_check_run(c)) == SPF_PENDING) {
		enum spf_dns_type type;
		char name[300];
		strncpy(name, spf_check_need(c, &type), sizeof(name) - 1);
		name[sizeof(name) - 1] = '\0';
		size_t used = strlen(asked);
		snprintf(asked + used, asked_len - used, "%s%s/%d", used ? " " : "", name,
		         (int)type);
		const char *texts[8];
		size_t lens[8];
		unsigned char addrs[8][16];
		struct spf_dns_answer a = {.status = SPF_DNS_NXDOMAIN,
		                           .texts = texts,
		                           .lens = lens,
		                           .addrs = (const unsigned char(*)[16])addrs};
		for (size_t i = 0; i < n && a.count < 8; i++) {
			if (strcmp(zone[i].name, name) != 0 || zone[i].type != type)
				continue;
			a.status = SPF_DNS_OK;
			texts[a.count] = zone[i].value;
			lens[a.count] = zone[i].len ? zone[i].len : strlen(zone[i].value);
			if (type == SPF_DNS_A || type == SPF_DNS_AAAA)
				inet_pton(type == SPF_DNS_A ? AF_INET : AF_INET6, zone[i].value,
				          addrs[a.count]);
			a.count++;
		}
		spf_check_answer(c, name, type, &a);
	}
	*c_r = c;
	return r;
}

static void test_pending_cycle(void **state)
{
	(void)state;
	static const struct zone_rec zone[] = {
	    {"example.com", SPF_DNS_TXT, "v=spf1 mx a:%{l}.hosts.example.com -all", 0},
	    {"example.com", SPF_DNS_MX, "mx1.example.com", 0},
	    {"mx1.example.com", SPF_DNS_A, "192.0.2.1", 0},
	    {"joe.hosts.example.com", SPF_DNS_A, "192.0.2.9", 0},
	};
	char asked[1024];
	struct spf_check *c;
	assert_int_equal(run(zone, 4, "192.0.2.9", "joe@example.com", asked, sizeof(asked), &c),
	                 SPF_PASS);
	assert_string_equal(asked, "example.com/16 example.com/15 mx1.example.com/1 "
	                           "joe.hosts.example.com/1");
	assert_string_equal(spf_check_domain(c), "example.com");
	spf_check_free(&c);
	assert_null(c);
	/* Another client: fail, and no answer is asked twice. */
	assert_int_equal(run(zone, 4, "192.0.2.77", "joe@example.com", asked, sizeof(asked), &c),
	                 SPF_FAIL);
	spf_check_free(&c);
	/* An IPv4-mapped IPv6 client is an IPv4 client: A records, not AAAA. */
	assert_int_equal(
	    run(zone, 4, "::ffff:192.0.2.1", "joe@example.com", asked, sizeof(asked), &c),
	    SPF_PASS);
	assert_non_null(strstr(asked, "mx1.example.com/1"));
	spf_check_free(&c);
}

static void test_nul_and_problems(void **state)
{
	(void)state;
	static const struct zone_rec zone[] = {
	    {"nul.example", SPF_DNS_TXT, "v=spf1 a:x.example.com\0 -all", 26},
	    {"two.example", SPF_DNS_TXT, "v=spf1 -all", 0},
	    {"two.example", SPF_DNS_TXT, "v=spf1 +all", 0},
	    {"exp.example", SPF_DNS_TXT, "v=spf1 -all exp=why.example", 0},
	    {"why.example", SPF_DNS_TXT, "%{c} may not send for %{d} (%{s})", 0},
	};
	char asked[1024];
	const char *problem;
	struct spf_check *c;
	assert_int_equal(run(zone, 5, "192.0.2.1", "a@nul.example", asked, sizeof(asked), &c),
	                 SPF_PERMERROR);
	assert_null(spf_check_explanation(c, &problem));
	assert_string_equal(problem, "syntax error in the SPF record");
	spf_check_free(&c);
	assert_int_equal(run(zone, 5, "192.0.2.1", "a@two.example", asked, sizeof(asked), &c),
	                 SPF_PERMERROR);
	spf_check_explanation(c, &problem);
	assert_string_equal(problem, "more than one SPF record");
	spf_check_free(&c);
	assert_int_equal(run(zone, 5, "2001:db8::1", "a@exp.example", asked, sizeof(asked), &c),
	                 SPF_FAIL);
	assert_string_equal(spf_check_explanation(c, &problem),
	                    "2001:db8::1 may not send for exp.example (a@exp.example)");
	spf_check_free(&c);
	/* No record at all: none; an empty sender checks postmaster@helo. */
	assert_int_equal(run(zone, 5, "192.0.2.1", "", asked, sizeof(asked), &c), SPF_NONE);
	assert_string_equal(spf_check_domain(c), "helo.example.org");
	spf_check_free(&c);
}

static void test_result_names(void **state)
{
	(void)state;
	assert_string_equal(spf_result_name(SPF_PASS), "pass");
	assert_string_equal(spf_result_name(SPF_SOFTFAIL), "softfail");
	assert_string_equal(spf_result_name(SPF_TEMPERROR), "temperror");
	assert_string_equal(spf_result_name((enum spf_result)99), "permerror");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pending_cycle),
	    cmocka_unit_test(test_nul_and_problems),
	    cmocka_unit_test(test_result_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
