/* MTA-STS (RFC 8461) as pure functions: the `_mta-sts` TXT record, the HTTPS response that
 * carries the policy, the policy text, and which MX hosts a policy allows. Network input
 * all of it: bounded, and fuzzed (fuzz/fuzz_mta_sts.c). The fetch is mta_sts_fetch.h's. */
#ifndef POSTHORN_SMTP_MTA_STS_H
#define POSTHORN_SMTP_MTA_STS_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 8461 §3.2: a policy body is at most 64 KiB; we read a little more for the header. */
#define MTA_STS_BODY_MAX 65536
#define MTA_STS_RESPONSE_MAX (MTA_STS_BODY_MAX + 16384)
#define MTA_STS_MX_MAX 16
#define MTA_STS_ID_MAX 33 /* RFC 8461 §3.1: 1*32(ALPHA / DIGIT) */
/* RFC 8461 §3.2: max_age at most 31557600 (about a year). */
#define MTA_STS_MAX_AGE_MAX 31557600u

enum mta_sts_mode { MTA_STS_MODE_NONE, MTA_STS_MODE_TESTING, MTA_STS_MODE_ENFORCE };

struct mta_sts_policy {
	enum mta_sts_mode mode;
	unsigned max_age; /* seconds */
	size_t mx_count;
	char mx[MTA_STS_MX_MAX][256]; /* lower case; "*.example.net" matches one label */
};

/* The TXT record of _mta-sts.DOMAIN (RFC 8461 §3.1): "v=STSv1; id=ID; ...". 1 with the id
 * in id_r (MTA_STS_ID_MAX octets), 0 when it is not an STS record or is malformed. */
int mta_sts_parse_txt(const char *txt, size_t len, char id_r[MTA_STS_ID_MAX]);

/* The HTTP response to our GET (RFC 8461 §3.3): status 200, Content-Type text/plain, no
 * redirect followed. 0 with the body, -1 with *error_r (static text). */
int mta_sts_parse_http(const unsigned char *resp, size_t len, const unsigned char **body_r,
                       size_t *body_len_r, const char **error_r);

/* The policy text (RFC 8461 §3.2): version STSv1, mode, max_age and at least one mx (for
 * modes other than none). Unknown keys are ignored, lines end with CRLF or LF. 0 ok, -1
 * with *error_r. */
int mta_sts_parse_policy(const char *text, size_t len, struct mta_sts_policy *policy,
                         const char **error_r);

/* May host (an MX name, any case, no trailing dot) be used under the policy (RFC 8461
 * §4.1: an exact name, or "*." matching exactly one leftmost label)? */
bool mta_sts_mx_allowed(const struct mta_sts_policy *policy, const char *host);

#endif
