/* libFuzzer target for DMARC (smtp/dmarc): the input is a policy record, parsed on its own
 * (its fields must stay in range) and then answered to every TXT lookup of a check, split at
 * newlines into several records (more than one is "no policy", RFC 7489 §6.6.3). The check
 * must end within its two lookups with a result and a policy that fits it. A parsed rua=
 * goes through smtp/dmarc_report's list parser (plain addresses only), and the input
 * through its external destination record check. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/dmarc.h"
#include "smtp/dmarc_report.h"
#include "smtp/psl.h"

static struct psl *fuzz_psl;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fuzz_psl == NULL)
		fuzz_psl = psl_parse("com\n*.ck\n!www.ck\nexample.net\n");
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	struct dmarc_record rec;
	if (dmarc_record_parse(text, &rec) == 0) {
		if (rec.pct > 100 || memchr(rec.rua, '\0', sizeof(rec.rua)) == NULL)
			abort();
		struct dmarc_report_rua rua[DMARC_REPORT_RUA_MAX];
		size_t k = dmarc_report_rua_parse(rec.rua, rua, DMARC_REPORT_RUA_MAX);
		for (size_t i = 0; i < k; i++) {
			const char *a = rua[i].address, *at = strchr(a, '@');
			if (at == NULL || at == a || at[1] == '\0' || strchr(at + 1, '@') != NULL)
				abort();
			for (; *a != '\0'; a++)
				if ((unsigned char)*a <= 0x20 || *a == 0x7f || *a == ',' ||
				    *a == '<')
					abort();
		}
	}
	(void)dmarc_report_txt_authorizes(text, size);
	const char *texts[8];
	size_t n = 0;
	for (char *p = text; n < 8;) {
		texts[n++] = p;
		char *nl = strchr(p, '\n');
		if (nl == NULL)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	const char *dkim[2] = {"example.com", "other.example.net"};
	struct dmarc_input in = {
	    .from_domain = size > 0 && (data[0] & 1) ? "a.b.mail.example.com" : "x.www.ck",
	    .spf_pass_domain = size > 1 && (data[1] & 1) ? "example.com" : NULL,
	    .dkim_pass_domains = dkim,
	    .dkim_pass_count = size > 2 ? data[2] % 3 : 0,
	    .sample = size > 3 ? data[3] % 100 : 0};
	struct dmarc_check *c = dmarc_check_new(fuzz_psl, &in);
	int rounds = 0;
	for (; rounds < 10 && dmarc_check_run(c) == 0; rounds++) {
		const char *name = dmarc_check_need(c);
		char copy[300];
		strncpy(copy, name, sizeof(copy) - 1);
		copy[sizeof(copy) - 1] = '\0';
		enum dmarc_dns_status st = size > 4 && data[4] == 'T'   ? DMARC_DNS_TEMPFAIL
		                           : size > 4 && data[4] == 'N' ? DMARC_DNS_NXDOMAIN
		                                                        : DMARC_DNS_OK;
		dmarc_check_answer(c, copy, st, texts, n);
	}
	if (rounds >= 10)
		abort(); /* two lookups at most: the From domain's and the organizational one */
	enum dmarc_policy apply;
	const struct dmarc_record *found;
	const char *domain;
	enum dmarc_result r = dmarc_check_result(c, &apply, &found, &domain);
	if (r != DMARC_RESULT_FAIL && apply != DMARC_POLICY_NONE)
		abort();
	if (dmarc_result_name(r) == NULL || dmarc_policy_name(apply) == NULL)
		abort();
	dmarc_check_free(&c);
	free(text);
	return 0;
}
