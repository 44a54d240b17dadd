/* Calendar arithmetic and the date forms of the mail formats: days since the epoch of a
 * proleptic Gregorian date, English month abbreviations, and the RFC 5322 date-time that
 * headers carry (always written in UTC). Pure functions, no locale, no time zone data. */
#ifndef POSTHORN_CORE_DATE_H
#define POSTHORN_CORE_DATE_H

#include <stddef.h>
#include <stdint.h>

/* Room for date_rfc5322()'s text and its NUL: "Sun, 06 Dec 2026 23:59:60 +0000" (31
 * octets; more only for years past 9999). */
#define DATE_RFC5322_MAX 48

/* Days from 1970-01-01 to y-m-d (m 1..12; d 1..31 and may run into the next month). */
int64_t date_days(int64_t y, unsigned m, unsigned d);
/* The month (1..12) whose English three-letter abbreviation starts s (any case; s has at
 * least 3 readable octets or a NUL before them); 0 when none does. */
unsigned date_month(const char *s);
/* Its abbreviation, "Jan".."Dec", for m in 1..12. */
const char *date_month_name(unsigned m);
/* Room for date_imap()'s text and its NUL: " 6-Dec-2026 23:59:60 +0000" (26 octets). */
#define DATE_IMAP_MAX 40

/* t (seconds since the epoch) as an RFC 5322 date-time in UTC into out (DATE_RFC5322_MAX). */
void date_rfc5322(int64_t t, char out[DATE_RFC5322_MAX]);
/* t as an IMAP date-time in UTC (RFC 9051 §9: the day space-padded) into out (DATE_IMAP_MAX). */
void date_imap(int64_t t, char out[DATE_IMAP_MAX]);

#endif
