/* Fetching an MTA-STS policy (RFC 8461 §3.3): HTTPS GET of
 * https://mta-sts.DOMAIN/.well-known/mta-sts.txt with the certificate checked against the
 * trusted CAs and the name mta-sts.DOMAIN, no redirects, at most 64 KiB, within a time
 * limit. Runs on one loop (DNS through its resolver, the connection through net/conn). */
#ifndef POSTHORN_SMTP_MTA_STS_FETCH_H
#define POSTHORN_SMTP_MTA_STS_FETCH_H

#include "smtp/mta_sts.h"

struct mta_sts_fetch;
struct net_loop;
struct dns_resolver;
struct tls_ctx;

/* The outcome: 0 with the policy, -1 with error (static or valid during the call). Called
 * once, on the loop, never from inside mta_sts_fetch_start(); the fetch is freed after. */
typedef void mta_sts_fetch_fn(void *ctx, int result, const struct mta_sts_policy *policy,
                              const char *error);

/* Start fetching domain's policy; port is 443 but for tests (mta_sts_port). */
struct mta_sts_fetch *mta_sts_fetch_start(struct net_loop *loop, struct dns_resolver *dns,
                                          struct tls_ctx *tls, const char *domain, int port,
                                          unsigned timeout, mta_sts_fetch_fn *fn, void *ctx);
/* The requester went away: the callback never comes; sets *fetch to NULL, accepts NULL. */
void mta_sts_fetch_cancel(struct mta_sts_fetch **fetch);

#endif
