/* Unit tests for smtp/psl and smtp/dmarc: organizational domains by the Public Suffix List's
 * rules (the real list from Debian's publicsuffix package: wildcards, exceptions, unknown
 * TLDs), DMARC records (§6.3), discovery at the From domain then at its organizational
 * domain, relaxed and strict alignment, sp= and pct=. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "smtp/dmarc.h"
#include "smtp/psl.h"
#include "core/banned.h"

static struct psl *psl;

static void org_is(const char *domain, const char *want)
{
	const char *got = psl_org_domain(psl, domain);
	if (want == NULL)
		assert_null(got);
	else
		assert_string_equal(got, want);
}

static void test_psl(void **state)
{
	(void)state;
	org_is("mail.example.com", "example.com");
	org_is("example.com", "example.com");
	org_is("Mail.Example.COM", "Example.COM");
	org_is("a.b.example.co.uk", "example.co.uk");
	org_is("co.uk", NULL);
	org_is("com", NULL);
	org_is("www.ck", "www.ck"); /* !www.ck */
	org_is("a.b.ck", "a.b.ck"); /* *.ck: b.ck is a suffix */
	org_is("b.ck", NULL);
	org_is("x.city.kawasaki.jp", "city.kawasaki.jp");        /* !city.kawasaki.jp */
	org_is("foo.kawasaki.jp", NULL);                         /* *.kawasaki.jp */
	org_is("host.example.unknowntld", "example.unknowntld"); /* the default rule "*" */
	org_is("", NULL);
	org_is("example.com.", NULL);
	struct psl *small = psl_parse("// comment\nco.uk\n*.ck\n!www.ck\n\nfoo bar\n");
	assert_string_equal(psl_org_domain(small, "a.b.co.uk"), "b.co.uk");
	assert_string_equal(psl_org_domain(small, "x.www.ck"), "www.ck");
	assert_string_equal(psl_org_domain(small, "a.b.foo"), "b.foo");
	psl_free(&small);
	assert_null(small);
	const char *error;
	assert_null(psl_load("/nonexistent/psl.dat", &error));
	assert_string_equal(error, "cannot open the public suffix list");
}

static void test_records(void **state)
{
	(void)state;
	struct dmarc_record r;
	assert_int_equal(dmarc_record_parse("v=DMARC1; p=reject; sp=none; adkim=s; pct=50; "
	                                    "rua=mailto:dmarc@example.com",
	                                    &r),
	                 0);
	assert_int_equal(r.p, DMARC_POLICY_REJECT);
	assert_true(r.sp_given);
	assert_int_equal(r.sp, DMARC_POLICY_NONE);
	assert_true(r.adkim_strict);
	assert_false(r.aspf_strict);
	assert_int_equal(r.pct, 50);
	assert_string_equal(r.rua, "mailto:dmarc@example.com");
	assert_int_equal(dmarc_record_parse("v=DMARC1;p=Quarantine;pct=500;", &r), 0);
	assert_int_equal(r.p, DMARC_POLICY_QUARANTINE);
	assert_int_equal(r.pct, 100); /* a bad pct= falls back to the default */
	/* No valid p=: only with a rua= (then none). */
	assert_int_equal(dmarc_record_parse("v=DMARC1; rua=mailto:r@example.com", &r), 0);
	assert_int_equal(r.p, DMARC_POLICY_NONE);
	assert_int_equal(dmarc_record_parse("v=DMARC1; p=bogus", &r), -1);
	assert_int_equal(dmarc_record_parse("p=reject; v=DMARC1", &r), -1);
	assert_int_equal(dmarc_record_parse("v=DMARC2; p=reject", &r), -1);
	assert_int_equal(dmarc_record_parse("v=spf1 -all", &r), -1);
	assert_int_equal(dmarc_record_parse("", &r), -1);
}

struct zone {
	const char *name;
	const char *txt; /* NULL: NXDOMAIN; "TEMP": a DNS failure */
};

static enum dmarc_result check(const struct zone *zone, size_t nz, const char *from,
                               const char *spf, const char *dkim, unsigned sample,
                               enum dmarc_policy *apply_r, const char **pdom_r)
{
	const char *d[1] = {dkim};
	struct dmarc_input in = {.from_domain = from,
	                         .spf_pass_domain = spf,
	                         .dkim_pass_domains = d,
	                         .dkim_pass_count = dkim != NULL ? 1 : 0,
	                         .sample = sample};
	struct dmarc_check *c = dmarc_check_new(psl, &in);
	int rounds = 0;
	while (dmarc_check_run(c) == 0 && rounds++ < 5) {
		const char *need = dmarc_check_need(c);
		const char *texts[4];
		size_t n = 0;
		enum dmarc_dns_status st = DMARC_DNS_NXDOMAIN;
		for (size_t i = 0; i < nz; i++) {
			if (strcmp(zone[i].name, need) != 0)
				continue;
			st = strcmp(zone[i].txt, "TEMP") == 0 ? DMARC_DNS_TEMPFAIL : DMARC_DNS_OK;
			if (st == DMARC_DNS_OK)
				texts[n++] = zone[i].txt;
		}
		dmarc_check_answer(c, need, st, texts, n);
	}
	assert_true(rounds <= 2);
	const struct dmarc_record *rec;
	enum dmarc_result r = dmarc_check_result(c, apply_r, &rec, pdom_r);
	static char pdom[300];
	pdom[0] = '\0';
	if (*pdom_r != NULL)
		strncpy(pdom, *pdom_r, sizeof(pdom) - 1);
	*pdom_r = pdom;
	dmarc_check_free(&c);
	return r;
}

static void test_aligned(void **state)
{
	(void)state;
	struct psl *small = psl_parse("com\nco.uk\n");
	assert_true(dmarc_aligned(small, "example.com", "mail.example.com", false));
	assert_false(dmarc_aligned(small, "example.com", "mail.example.com", true));
	assert_true(dmarc_aligned(small, "Example.COM", "example.com", true));
	assert_false(dmarc_aligned(small, "a.co.uk", "b.co.uk", false));
	assert_false(dmarc_aligned(small, "example.com", "", false));
	assert_false(dmarc_aligned(small, "example.com", NULL, false));
	psl_free(&small);
}

static void test_checks(void **state)
{
	(void)state;
	static const struct zone zone[] = {
	    {"_dmarc.example.com", "v=DMARC1; p=reject; sp=quarantine; pct=50"},
	    {"_dmarc.example.com", "some other text"},
	    {"_dmarc.strict.org", "v=DMARC1; p=reject; aspf=s; adkim=s"},
	    {"_dmarc.two.net", "v=DMARC1; p=reject"},
	    {"_dmarc.two.net", "v=DMARC1; p=none"},
	    {"_dmarc.temp.net", "TEMP"},
	};
	size_t nz = sizeof(zone) / sizeof(zone[0]);
	enum dmarc_policy apply;
	const char *pdom;
	/* Relaxed: SPF for a subdomain of the same organization aligns. */
	assert_int_equal(
	    check(zone, nz, "example.com", "bounce.example.com", NULL, 0, &apply, &pdom),
	    DMARC_RESULT_PASS);
	assert_int_equal(apply, DMARC_POLICY_NONE);
	assert_string_equal(pdom, "example.com");
	/* DKIM of another organization does not; within pct the policy is p=. */
	assert_int_equal(check(zone, nz, "example.com", NULL, "example.net", 10, &apply, &pdom),
	                 DMARC_RESULT_FAIL);
	assert_int_equal(apply, DMARC_POLICY_REJECT);
	/* Outside pct: the next lower policy (§6.6.4). */
	check(zone, nz, "example.com", NULL, NULL, 60, &apply, &pdom);
	assert_int_equal(apply, DMARC_POLICY_QUARANTINE);
	/* A subdomain without its own record: the organizational domain's, with sp=. */
	assert_int_equal(check(zone, nz, "news.example.com", NULL, NULL, 0, &apply, &pdom),
	                 DMARC_RESULT_FAIL);
	assert_int_equal(apply, DMARC_POLICY_QUARANTINE);
	assert_string_equal(pdom, "example.com");
	assert_int_equal(check(zone, nz, "news.example.com", NULL, "example.com", 0, &apply, &pdom),
	                 DMARC_RESULT_PASS);
	/* Strict: only the very name aligns. */
	assert_int_equal(
	    check(zone, nz, "strict.org", "mail.strict.org", "strict.org", 0, &apply, &pdom),
	    DMARC_RESULT_PASS);
	assert_int_equal(
	    check(zone, nz, "strict.org", "mail.strict.org", "a.strict.org", 0, &apply, &pdom),
	    DMARC_RESULT_FAIL);
	assert_int_equal(apply, DMARC_POLICY_REJECT);
	/* Two records: as if none; no record anywhere: none; a DNS failure; no usable From. */
	assert_int_equal(check(zone, nz, "two.net", NULL, NULL, 0, &apply, &pdom),
	                 DMARC_RESULT_NONE);
	assert_int_equal(check(zone, nz, "a.b.nothing.org", NULL, NULL, 0, &apply, &pdom),
	                 DMARC_RESULT_NONE);
	assert_int_equal(check(zone, nz, "temp.net", NULL, NULL, 0, &apply, &pdom),
	                 DMARC_RESULT_TEMPERROR);
	assert_int_equal(check(zone, nz, "co.uk", NULL, NULL, 0, &apply, &pdom),
	                 DMARC_RESULT_PERMERROR);
	assert_string_equal(dmarc_result_name(DMARC_RESULT_FAIL), "fail");
	assert_string_equal(dmarc_policy_name(DMARC_POLICY_QUARANTINE), "quarantine");
}

static int setup(void **state)
{
	(void)state;
	const char *error;
	psl = psl_load(PSL_DEFAULT_PATH, &error);
	return psl != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	psl_free(&psl);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_psl),
	    cmocka_unit_test(test_records),
	    cmocka_unit_test(test_checks),
	    cmocka_unit_test(test_aligned),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
