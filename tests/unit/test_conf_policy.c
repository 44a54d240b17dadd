/* Unit tests for core/conf_policy: [domain] and [account] sections parsed with the rest of
 * posthorn.conf, the most specific winning (account > domain > global), the
 * inbound_checks_skip_domains shorthand, the any/all summaries, and every error with its
 * "FILE:LINE: key: reason" message. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/conf.h"
#include "conf_text.h"
#include "core/banned.h"

static void test_none(void **state)
{
	(void)state;
	struct conf *c = parse("greylisting = yes\n");
	assert_int_equal(c->policies.count, 0);
	struct conf_policy p = conf_policy_for(c, "bob@example.org");
	assert_true(p.inbound_checks && p.greylisting && p.dnsbl && p.dmarc_reject);
	assert_false(p.spf_reject_fail);
	assert_true(c->policies.any.greylisting && c->policies.all.greylisting);
	conf_free(&c);
	/* the defaults alone: the global policy everywhere */
	c = conf_new_defaults("/tmp");
	assert_true(c->policies.all.inbound_checks && c->policies.all.dnsbl);
	assert_false(c->policies.any.greylisting);
	conf_free(&c);
}

static void test_specific_wins(void **state)
{
	(void)state;
	struct conf *c = parse("dmarc_reject = yes\n"
	                       "greylisting = no\n"
	                       "[domain Example.ORG]  # comment\n"
	                       "greylisting = yes\n"
	                       "dmarc_reject = no\n"
	                       "\n"
	                       "[ account bob@example.org ]\n"
	                       "dmarc_reject = yes\n"
	                       "[domain other.org.]\n"
	                       "inbound_checks = no\n");
	assert_int_equal(c->policies.count, 3);
	struct conf_policy p = conf_policy_for(c, "alice@example.org");
	assert_true(p.greylisting);
	assert_false(p.dmarc_reject);
	p = conf_policy_for(c, "BOB@example.org"); /* account over domain, domain's greylisting */
	assert_true(p.greylisting && p.dmarc_reject);
	p = conf_policy_for(c, "carol@other.org");
	assert_false(p.inbound_checks || p.greylisting);
	assert_true(p.dmarc_reject);
	p = conf_policy_for(c, "dave@elsewhere.org"); /* global */
	assert_true(p.inbound_checks && p.dmarc_reject);
	assert_false(p.greylisting);
	/* summaries over the global policy and every section */
	assert_true(c->policies.any.greylisting && c->policies.any.inbound_checks);
	assert_false(c->policies.all.greylisting || c->policies.all.inbound_checks ||
	             c->policies.all.dmarc_reject);
	assert_true(c->policies.all.dnsbl);
	conf_free(&c);
}

static void test_skip_domains(void **state)
{
	(void)state;
	struct conf *c = parse("inbound_checks_skip_domains = a.test, B.test\n"
	                       "[domain b.test]\n"
	                       "dmarc_quarantine = yes\n");
	struct conf_policy p = conf_policy_for(c, "x@a.test");
	assert_true(p.inbound_checks);
	assert_false(p.dmarc_reject || p.dmarc_quarantine);
	p = conf_policy_for(c, "x@b.test"); /* its section's own key wins */
	assert_false(p.dmarc_reject);
	assert_true(p.dmarc_quarantine);
	p = conf_policy_for(c, "x@c.test");
	assert_true(p.dmarc_reject && p.dmarc_quarantine);
	conf_free(&c);
}

static void test_errors(void **state)
{
	(void)state;
	refuse("[domain a.test]\nhostname = x\n",
	       PATH ":2: hostname: not allowed in a section (only inbound_checks, "
	            "spf_reject_fail, dmarc_reject, dmarc_quarantine, greylisting, dnsbl; global "
	            "settings go before the first section)");
	refuse("[domain a.test]\nno_such_key = yes\n",
	       PATH ":2: no_such_key: not allowed in a section (only inbound_checks, "
	            "spf_reject_fail, dmarc_reject, dmarc_quarantine, greylisting, dnsbl; global "
	            "settings go before the first section)");
	refuse("[domain a.test]\ngreylisting = maybe\n",
	       PATH ":2: greylisting: expected yes or no");
	refuse("[domain a.test]\n[domain A.test]\n", PATH ":2: a second section for the same name");
	refuse("[zone a.test]\n",
	       PATH ":1: expected a section header '[domain NAME]' or '[account ADDRESS]'");
	refuse("[domain a.test\n",
	       PATH ":1: expected a section header '[domain NAME]' or '[account ADDRESS]'");
	refuse("[domain]\n",
	       PATH ":1: expected a section header '[domain NAME]' or '[account ADDRESS]'");
	refuse("[domain bob@a.test]\n", PATH ":1: expected a domain name");
	refuse("[domain a b]\n", PATH ":1: expected a domain name");
	refuse("[account a.test]\n", PATH ":1: expected an address local@domain");
	refuse("[account @a.test]\n", PATH ":1: expected an address local@domain");
	refuse("[account a@b@c]\n", PATH ":1: expected an address local@domain");
	/* the same name as a domain and as an account is two sections */
	struct conf *c = parse("[domain a.test]\n[account x@a.test]\n");
	assert_int_equal(c->policies.count, 2);
	conf_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_none),
	    cmocka_unit_test(test_specific_wins),
	    cmocka_unit_test(test_skip_domains),
	    cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
