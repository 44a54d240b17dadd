/* Sending a TLS-RPT report to an https: address (RFC 8460 §5.4): one HTTP/1.0 POST of the
 * gzip-compressed report with Content-Type application/tlsrpt+gzip, over TLS whose
 * certificate must verify for the URI's host (PKIX), within a time limit; a 2xx status is
 * success. Runs on one loop (DNS through its resolver, the connection through net/conn). */
#ifndef POSTHORN_SMTP_TLSRPT_POST_H
#define POSTHORN_SMTP_TLSRPT_POST_H

#include <stddef.h>

struct tlsrpt_post;
struct net_loop;
struct dns_resolver;
struct tls_ctx;

/* The outcome: 0 delivered (2xx), -1 with error (valid during the call). Called once, on
 * the loop, never from inside tlsrpt_post_start(); the post is freed after. */
typedef void tlsrpt_post_fn(void *ctx, int result, const char *error);

/* POST body (copied) to uri ("https://HOST[:PORT][/PATH]"). */
struct tlsrpt_post *tlsrpt_post_start(struct net_loop *loop, struct dns_resolver *dns,
                                      struct tls_ctx *tls, const char *uri, const void *body,
                                      size_t len, unsigned timeout, tlsrpt_post_fn *fn, void *ctx);
/* The requester went away: the callback never comes; sets *post to NULL, accepts NULL. */
void tlsrpt_post_cancel(struct tlsrpt_post **post);

#endif
