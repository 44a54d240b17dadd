/* Per-key event counters in fixed time windows (as Postfix's anvil): how many connections
 * or messages one client sent in the current minute or hour. In memory, per process
 * (several nodes each count their own), thread-safe (sessions of every loop thread count
 * in one table), and bounded: at most max_keys keys; when full, keys whose window is over
 * are dropped (one sweep a second at most), and if none is, a new key is not counted (the
 * event passes). Used for
 * smtp_connection_rate_per_ip and smtp_message_rate_per_ip (smtp/smtp_policy.c) and for
 * limit_connection_rate_per_ip (net/server.c). */
#ifndef POSTHORN_CORE_RATE_H
#define POSTHORN_CORE_RATE_H

#include <stddef.h>
#include <time.h>

struct rate;

/* window: seconds of one counting window (> 0). */
struct rate *rate_new(unsigned window, size_t max_keys);
/* Accepts NULL; sets *rate to NULL. */
void rate_free(struct rate **rate);

/* Count one event of key at now (refused events count too, so a client that keeps trying
 * stays refused until its window ends). Returns the events of key in its window, this one
 * included; 0 when the event was not counted (limit 0, or the table is full). The event
 * is over a limit L when the result is > L, and it is the first one over it in this
 * window when the result is L + 1 (for logging once per window). */
unsigned rate_count(struct rate *rate, const char *key, unsigned limit, time_t now)
    __attribute__((warn_unused_result));
/* rate_count() as a verdict: 1 when the count is at most limit (or limit is 0: no limit,
 * nothing counted), 0 over it. */
int rate_hit(struct rate *rate, const char *key, unsigned limit, time_t now)
    __attribute__((warn_unused_result));
/* Keys held now. */
size_t rate_keys(struct rate *rate);

/* The key of a client address (numeric IPv4 or IPv6 text) in out (at least 40 octets for
 * any result): the IPv4 address itself (also for an IPv4-mapped IPv6 address), or an IPv6
 * address's /64 ("2001:db8:1:2"), since one IPv6 client usually holds a whole /64.
 * Anything else is copied as it is. */
void rate_ip_key(const char *ip, char *out, size_t size);

#endif
