/* libFuzzer target for MTA-STS parsing: the input as an HTTP response (and its body as a
 * policy), as a policy text directly, and as a TXT record; a parsed policy's MX patterns are
 * matched against a name taken from the input. Nothing may read out of bounds, and a
 * successful parse keeps the documented limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/mta_sts.h"

static void check_policy(const struct mta_sts_policy *p, const char *name)
{
	if (p->mx_count > MTA_STS_MX_MAX || p->max_age > MTA_STS_MAX_AGE_MAX)
		abort();
	for (size_t i = 0; i < p->mx_count; i++)
		if (strlen(p->mx[i]) >= sizeof(p->mx[i]))
			abort();
	(void)mta_sts_mx_allowed(p, name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *body;
	size_t body_len;
	const char *error;
	struct mta_sts_policy p;
	char name[64];
	size_t n = size < sizeof(name) - 1 ? size : sizeof(name) - 1;
	memcpy(name, data, n);
	name[n] = '\0';
	if (mta_sts_parse_http(data, size, &body, &body_len, &error) == 0) {
		if (body < data || body + body_len > data + size || body_len > MTA_STS_BODY_MAX)
			abort();
		if (mta_sts_parse_policy((const char *)body, body_len, &p, &error) == 0)
			check_policy(&p, name);
	}
	if (mta_sts_parse_policy((const char *)data, size, &p, &error) == 0)
		check_policy(&p, name);
	char id[MTA_STS_ID_MAX];
	if (mta_sts_parse_txt((const char *)data, size, id) == 1 && strlen(id) >= MTA_STS_ID_MAX)
		abort();
	return 0;
}
