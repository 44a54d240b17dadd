/* Asynchronous DNS for outbound delivery: libunbound running on one of our event loops
 * (ub_ctx_create_event), never a blocking lookup on a loop thread. One resolver per loop;
 * every call on a resolver and every callback happen on that loop's thread. The results
 * (status, DNSSEC verdict, TTL, parsed MX/A/AAAA/TLSA/TXT records) are described in
 * net/dns_packet.h. Settings: dns_resolver, dns_trust_anchor, dns_timeout (docs/config.md). */
#ifndef POSTHORN_NET_DNS_H
#define POSTHORN_NET_DNS_H

#include "core/conf.h"
#include "net/dns_packet.h"

struct dns_resolver;
struct dns_lookup;
struct net_loop;

/* Called once per lookup, on the resolver's loop thread from the loop itself (never from
 * inside dns_lookup() or libunbound): it may start or cancel other lookups and may free
 * the resolver. result and everything it points to are valid only during the call (copy
 * what you keep). The lookup handle is gone once the callback runs. */
typedef void dns_lookup_fn(const struct dns_result *result, void *ctx);

/* A resolver on loop, configured from conf (dns_resolver: forward every query to that
 * server, asking also for the names libunbound would answer itself such as .test and
 * .invalid; else the servers of /etc/resolv.conf. dns_trust_anchor: validate DNSSEC with
 * that file; "none" or, with dns_resolver set, unset: no validation; else Debian's root key
 * when installed). Call on loop's thread or before the loop runs. Returns NULL with
 * *error_r (a static string) when libunbound refuses a setting or the anchor file cannot be
 * read. */
struct dns_resolver *dns_resolver_new(struct net_loop *loop, const struct conf *conf,
                                      const char **error_r) __attribute__((warn_unused_result));
/* Cancel every pending lookup (their callbacks never run) and free the resolver; sets
 * *resolver to NULL; accepts NULL. On the loop's thread, or after the loop has stopped. */
void dns_resolver_free(struct dns_resolver **resolver);

/* The resolver of loop that sessions share (inbound checks on port 25): made from conf the
 * first time it is asked for, on the loop's thread, and freed when the loop ends (its thread
 * returns, or net_loop_free()); callers never free it. Later settings (SIGHUP) do not
 * change a resolver already made. NULL with *error_r when it cannot be made (asked again
 * next time). On loop's thread only. */
struct dns_resolver *dns_loop_resolver(struct net_loop *loop, const struct conf *conf,
                                       const char **error_r) __attribute__((warn_unused_result));

/* Look up name (with or without trailing dot; CNAMEs are followed) for type, one of
 * DNS_TYPE_MX, A, AAAA, TLSA, TXT, PTR. The callback comes later on this loop: with the answer,
 * or TEMPFAIL ("timeout") when none came within dns_timeout seconds. Returns the handle for
 * dns_lookup_cancel(), or NULL with *error_r (static) when the name or type is invalid;
 * then the callback is never called. */
struct dns_lookup *dns_lookup(struct dns_resolver *resolver, const char *name, uint16_t type,
                              dns_lookup_fn *callback, void *ctx, const char **error_r)
    __attribute__((warn_unused_result));
/* The requester went away: the callback will never run. *lookup is set to NULL; accepts
 * NULL. Must not be called for a lookup whose callback has already run. */
void dns_lookup_cancel(struct dns_lookup **lookup);

/* Lookups started and not yet completed or cancelled (for tests and shutdown checks). */
unsigned dns_resolver_pending(const struct dns_resolver *resolver);

#endif
