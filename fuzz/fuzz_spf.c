/* libFuzzer target for the SPF evaluator (smtp/spf): the input is the SPF record that every
 * TXT lookup answers (so include and redirect recurse into it again) and the explanation;
 * A/AAAA lookups answer addresses taken from the input, MX and PTR one name each. The check
 * must end with a result within a bounded number of answers, and never read out of bounds. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "smtp/spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *record = malloc(size + 8);
	memcpy(record, "v=spf1 ", 7);
	memcpy(record + 7, data, size);
	record[size + 7] = '\0';
	size_t lens[1] = {size + 7};
	const char *texts[1] = {record};
	const char *names[1] = {"host.example.com"};
	unsigned char addrs[1][16] = {{0}};
	memcpy(addrs[0], data, size < 16 ? size : 16);
	struct spf_request req = {.family = size > 0 && (data[0] & 1) ? AF_INET6 : AF_INET,
	                          .ip = {1, 2, 3, 4},
	                          .sender = "user@example.com",
	                          .helo = "helo.example.org",
	                          .receiver = "mx.test",
	                          .now = 0};
	struct spf_check *c = spf_check_new(&req);
	enum spf_result r = SPF_PENDING;
	int rounds = 0;
	for (; rounds < 2000 && (r = spf_check_run(c)) == SPF_PENDING; rounds++) {
		enum spf_dns_type type;
		const char *name = spf_check_need(c, &type);
		struct spf_dns_answer a = {.status = SPF_DNS_OK, .count = 1};
		if (type == SPF_DNS_TXT) {
			a.texts = texts;
			a.lens = lens;
		} else if (type == SPF_DNS_A || type == SPF_DNS_AAAA) {
			a.addrs = (const unsigned char(*)[16])addrs;
		} else {
			a.texts = names;
		}
		char copy[300];
		strncpy(copy, name, sizeof(copy) - 1);
		copy[sizeof(copy) - 1] = '\0';
		spf_check_answer(c, copy, type, &a);
	}
	if (r == SPF_PENDING || rounds >= 2000)
		abort(); /* the answers limit must end every check */
	const char *problem;
	const char *exp = spf_check_explanation(c, &problem);
	if (exp != NULL && strlen(exp) > 4096)
		abort();
	spf_check_free(&c);
	free(record);
	return 0;
}
