/* SPF (RFC 7208): check_host() as a pure evaluator that never does I/O. The caller runs
 * spf_check_run(); when it answers SPF_PENDING the evaluator needs one DNS answer
 * (spf_check_need()), which the caller looks up however it likes (the event loop's resolver,
 * a test's zone) and hands over with spf_check_answer(); then it runs again. A run replays
 * the evaluation from the start over the answers it has, so the evaluator is written as
 * plain recursive code; a check needs a few dozen answers at most (the 10-lookup limit). */
#ifndef POSTHORN_SMTP_SPF_H
#define POSTHORN_SMTP_SPF_H

#include <stddef.h>
#include <stdint.h>

enum spf_result {
	SPF_NONE,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
	SPF_PENDING, /* spf_check_run(): a DNS answer is needed first */
};

/* The record types the evaluator asks for. */
enum spf_dns_type {
	SPF_DNS_A = 1,
	SPF_DNS_PTR = 12,
	SPF_DNS_MX = 15,
	SPF_DNS_TXT = 16,
	SPF_DNS_AAAA = 28,
};

enum spf_dns_status {
	SPF_DNS_OK,       /* records (possibly none: NODATA) */
	SPF_DNS_NXDOMAIN, /* the name does not exist */
	SPF_DNS_TEMPFAIL, /* timeout, SERVFAIL, a bad answer */
};

/* One answer. texts: TXT records (each one's strings joined), MX exchange names or PTR names;
 * lens: the TXT records' lengths (they may hold NUL octets), or NULL; addrs: A (4 octets
 * used) or AAAA records (16). Copied by spf_check_answer(). */
struct spf_dns_answer {
	enum spf_dns_status status;
	size_t count;
	const char *const *texts;
	const size_t *lens;
	const unsigned char (*addrs)[16];
};

struct spf_request {
	int family;           /* AF_INET or AF_INET6 (an IPv4-mapped IPv6 counts as IPv4) */
	unsigned char ip[16]; /* the client's address, network order */
	const char *sender;   /* MAIL FROM's address, or "" (then postmaster@helo) */
	const char *helo;     /* HELO/EHLO's argument */
	const char *receiver; /* our host name (%{r} in explanations) */
	int64_t now;          /* %{t} */
};

struct spf_check;

/* A check of request: check_host() on the sender's domain (the HELO name when the sender is
 * empty). The request's strings are copied. Never NULL. */
struct spf_check *spf_check_new(const struct spf_request *request);
/* Frees the check; sets *check to NULL; accepts NULL. */
void spf_check_free(struct spf_check **check);
/* Evaluate with the answers known so far: the result, or SPF_PENDING when
 * spf_check_need() names an answer still missing. */
enum spf_result spf_check_run(struct spf_check *check);
/* After SPF_PENDING: the name (no trailing dot) and type to look up. Valid until the next
 * call on the check. */
const char *spf_check_need(const struct spf_check *check, enum spf_dns_type *type_r);
/* The answer for name and type (copied). */
void spf_check_answer(struct spf_check *check, const char *name, enum spf_dns_type type,
                      const struct spf_dns_answer *answer);
/* After a final result: the explanation (RFC 7208 §6.2) when the result is SPF_FAIL and the
 * record gave one that could be fetched, else NULL; why a temperror/permerror came (static
 * text, else NULL) in *problem_r; the domain the verdict is about. */
const char *spf_check_explanation(const struct spf_check *check, const char **problem_r);
const char *spf_check_domain(const struct spf_check *check);
/* "pass", "fail", ... (RFC 8601 §2.7.2 result names). */
const char *spf_result_name(enum spf_result result);

#endif
