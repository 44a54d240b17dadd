/* Unit tests for core/date: day numbers against timegm() over four centuries (leap years,
 * centuries, dates before 1970), month names in any case, and the RFC 5322 and IMAP forms
 * of known instants. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "core/date.h"
#include "core/banned.h"

static void test_days(void **state)
{
	(void)state;
	assert_int_equal(date_days(1970, 1, 1), 0);
	assert_int_equal(date_days(1969, 12, 31), -1);
	assert_int_equal(date_days(2000, 3, 1), 11017);
	assert_int_equal(date_days(2024, 2, 29) + 1, date_days(2024, 3, 1));
	assert_int_equal(date_days(1900, 2, 28) + 1, date_days(1900, 3, 1)); /* no 29 Feb 1900 */
	assert_int_equal(date_days(2023, 1, 32), date_days(2023, 2, 1));     /* days run over */
	/* Every first and last of a month from 1800 to 2199 agrees with the C library. */
	for (int y = 1800; y < 2200; y++)
		for (int m = 1; m <= 12; m++) {
			struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = 1};
			int64_t want = (int64_t)timegm(&tm) / 86400;
			assert_int_equal(date_days(y, (unsigned)m, 1), want);
			tm = (struct tm){.tm_year = y - 1900, .tm_mon = m, .tm_mday = 0};
			want = (int64_t)timegm(&tm) / 86400; /* the day before the next month */
			assert_int_equal(date_days(y, (unsigned)m, (unsigned)tm.tm_mday), want);
		}
}

static void test_months(void **state)
{
	(void)state;
	assert_int_equal(date_month("Jan"), 1);
	assert_int_equal(date_month("dec"), 12);
	assert_int_equal(date_month("JULY"), 7);
	assert_int_equal(date_month("Sep-2020"), 9);
	assert_int_equal(date_month("Jux"), 0);
	assert_int_equal(date_month("Ja"), 0); /* stops at the NUL */
	assert_int_equal(date_month(""), 0);
	assert_string_equal(date_month_name(1), "Jan");
	assert_string_equal(date_month_name(12), "Dec");
	assert_string_equal(date_month_name(0), "???");
	for (unsigned m = 1; m <= 12; m++)
		assert_int_equal(date_month(date_month_name(m)), m);
}

static void test_forms(void **state)
{
	(void)state;
	char r[DATE_RFC5322_MAX], i[DATE_IMAP_MAX];
	date_rfc5322(0, r);
	assert_string_equal(r, "Thu, 01 Jan 1970 00:00:00 +0000");
	date_imap(0, i);
	assert_string_equal(i, " 1-Jan-1970 00:00:00 +0000");
	int64_t t = date_days(2026, 12, 6) * 86400 + 23 * 3600 + 59 * 60 + 9;
	date_rfc5322(t, r);
	assert_string_equal(r, "Sun, 06 Dec 2026 23:59:09 +0000");
	date_imap(t, i);
	assert_string_equal(i, " 6-Dec-2026 23:59:09 +0000");
	date_imap(date_days(2000, 2, 29) * 86400, i);
	assert_string_equal(i, "29-Feb-2000 00:00:00 +0000");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_days),
	    cmocka_unit_test(test_months),
	    cmocka_unit_test(test_forms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
