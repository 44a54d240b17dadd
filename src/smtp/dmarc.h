/* DMARC (RFC 7489): the policy record (§6.3), its discovery at the From domain and else at
 * its organizational domain (§6.6.3), identifier alignment (§3.1) and the policy to apply
 * (§6.6.4, §6.6.2 pct). Without I/O, in the style of smtp/spf: dmarc_check_run() names the
 * TXT lookup it needs (dmarc_check_need()) until it has the record it looks for. */
#ifndef POSTHORN_SMTP_DMARC_H
#define POSTHORN_SMTP_DMARC_H

#include <stdbool.h>
#include <stddef.h>

struct psl;

enum dmarc_policy { DMARC_POLICY_NONE, DMARC_POLICY_QUARANTINE, DMARC_POLICY_REJECT };

enum dmarc_result {
	DMARC_RESULT_NONE,      /* no policy record */
	DMARC_RESULT_PASS,      /* an aligned SPF or DKIM pass */
	DMARC_RESULT_FAIL,      /* neither */
	DMARC_RESULT_TEMPERROR, /* the record could not be looked up */
	DMARC_RESULT_PERMERROR, /* the From domain is unusable */
};

struct dmarc_record {
	enum dmarc_policy p, sp;
	bool sp_given;
	bool adkim_strict, aspf_strict;
	unsigned pct;  /* 0..100 */
	char rua[256]; /* the aggregate report addresses as written, or "" */
};

/* Parse a record (§6.3): 0, or -1 when it is not a DMARC record or is malformed. A record
 * with a missing or unknown p= but a valid rua= is p=none (§6.6.3). */
int dmarc_record_parse(const char *text, struct dmarc_record *rec)
    __attribute__((warn_unused_result));

/* What was verified about the message: the SPF result's domain (MAIL FROM's, or HELO's)
 * when SPF passed, and each DKIM signature that passed (d=). */
struct dmarc_input {
	const char *from_domain;     /* RFC5322.From's domain */
	const char *spf_pass_domain; /* NULL unless SPF passed */
	const char *const *dkim_pass_domains;
	size_t dkim_pass_count;
	unsigned sample; /* 0..99: a random draw for pct (§6.6.4) */
};

enum dmarc_dns_status { DMARC_DNS_OK, DMARC_DNS_NXDOMAIN, DMARC_DNS_TEMPFAIL };

struct dmarc_check;

/* A check; psl must outlive it. The input's strings are copied. Never NULL. */
struct dmarc_check *dmarc_check_new(const struct psl *psl, const struct dmarc_input *in);
void dmarc_check_free(struct dmarc_check **check);
/* 1 with the result ready, or 0 when dmarc_check_need() names a TXT lookup. */
int dmarc_check_run(struct dmarc_check *check);
const char *dmarc_check_need(const struct dmarc_check *check);
void dmarc_check_answer(struct dmarc_check *check, const char *name, enum dmarc_dns_status status,
                        const char *const *texts, size_t n);
/* After 1: the result, the policy to apply (after pct; none unless the result is fail), the
 * record found (NULL when none) and the domain whose record it is. */
enum dmarc_result dmarc_check_result(const struct dmarc_check *check, enum dmarc_policy *apply_r,
                                     const struct dmarc_record **rec_r,
                                     const char **policy_domain_r);
/* §3.1 identifier alignment of one authenticated domain (SPF's, a DKIM d=) with the From
 * domain: relaxed compares the organizational domains (psl), strict the names, without
 * case. False when either is NULL or empty. */
bool dmarc_aligned(const struct psl *psl, const char *from_domain, const char *domain, bool strict);
const char *dmarc_result_name(enum dmarc_result result);
const char *dmarc_policy_name(enum dmarc_policy policy);

#endif
