/* libFuzzer target for the date parsers and writers: the input is parsed as an RFC 5322
 * date-time (imap_sort_parse_date(), used by SORT DATE and SEARCH SENT*); anything it
 * accepts, written back with date_rfc5322() and parsed again, must give the same time. And
 * the first eight octets as a time (within years 1900..9999) written as RFC 5322 and IMAP
 * date-time text must parse back to itself, and the IMAP text must have its fixed form. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/date.h"
#include "core/log.h"
#include "imap/imap_sort.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_T_MIN (-2208988800LL) /* 1900-01-01 */
#define FUZZ_T_MAX 253402300799LL  /* 9999-12-31 23:59:59 */

static void fuzz_roundtrip(int64_t t)
{
	char text[DATE_RFC5322_MAX];
	date_rfc5322(t, text);
	int64_t back = 0;
	ASSERT(imap_sort_parse_date(text, strlen(text), &back));
	ASSERT(back == t);
	char imap[DATE_IMAP_MAX];
	date_imap(t, imap);
	/* " d-Mon-yyyy hh:mm:ss +0000" or "dd-...": 26 octets */
	ASSERT(strlen(imap) == 26 && imap[2] == '-' && imap[6] == '-' && imap[20] == ' ');
	ASSERT(date_month(imap + 3) >= 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t t = 0;
	char *s = malloc(size ? size : 1); /* exact size, not NUL-terminated */
	memcpy(s, data, size);
	if (imap_sort_parse_date(s, size, &t) && t >= FUZZ_T_MIN && t <= FUZZ_T_MAX)
		fuzz_roundtrip(t);
	free(s);
	if (size >= 8) {
		uint64_t u = 0;
		memcpy(&u, data, 8);
		int64_t span = FUZZ_T_MAX - FUZZ_T_MIN + 1;
		fuzz_roundtrip(FUZZ_T_MIN + (int64_t)(u % (uint64_t)span));
	}
	return 0;
}
