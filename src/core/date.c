/* Calendar arithmetic and the mail formats' dates (see date.h). */
#include "core/date.h"

#include <stdio.h>
#include <strings.h>
#include <time.h>

#include "core/banned.h"

/* Era arithmetic: 400 Gregorian years are 146097 days; years start in March so that the
 * leap day ends them. */
int64_t date_days(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	uint64_t yoe = (uint64_t)(y - era * 400);
	uint64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	uint64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static const char date_months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

unsigned date_month(const char *s)
{
	for (unsigned i = 0; i < 12; i++)
		if (strncasecmp(s, date_months[i], 3) == 0)
			return i + 1;
	return 0;
}

const char *date_month_name(unsigned m)
{
	return m >= 1 && m <= 12 ? date_months[m - 1] : "???";
}

static void date_utc(int64_t t, struct tm *tm)
{
	time_t tt = (time_t)t;
	gmtime_r(&tt, tm);
}

void date_rfc5322(int64_t t, char out[DATE_RFC5322_MAX])
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	struct tm tm;
	date_utc(t, &tm);
	snprintf(out, DATE_RFC5322_MAX, "%s, %02u %s %04d %02u:%02u:%02u +0000",
	         days[tm.tm_wday % 7], (unsigned char)tm.tm_mday, date_months[tm.tm_mon % 12],
	         tm.tm_year + 1900, (unsigned char)tm.tm_hour, (unsigned char)tm.tm_min,
	         (unsigned char)tm.tm_sec);
}

void date_imap(int64_t t, char out[DATE_IMAP_MAX])
{
	struct tm tm;
	date_utc(t, &tm);
	snprintf(out, DATE_IMAP_MAX, "%2u-%s-%04d %02u:%02u:%02u +0000", (unsigned char)tm.tm_mday,
	         date_months[tm.tm_mon % 12], tm.tm_year + 1900, (unsigned char)tm.tm_hour,
	         (unsigned char)tm.tm_min, (unsigned char)tm.tm_sec);
}
