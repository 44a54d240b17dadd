/* Per-key event counters in fixed time windows (as Postfix's anvil): how many connections
 * or messages one client sent in the current minute or hour. In memory, per process
 * (several nodes each count their own), thread-safe (sessions of every loop thread count
 * in one table), and bounded: at most max_keys keys; when full, keys whose window is over
 * are dropped, and if none is, a new key is not counted (the event passes). */
#ifndef POSTHORN_SMTP_SMTP_RATE_H
#define POSTHORN_SMTP_SMTP_RATE_H

#include <stddef.h>
#include <time.h>

struct smtp_rate;

/* window: seconds of one counting window (> 0). */
struct smtp_rate *smtp_rate_new(unsigned window, size_t max_keys);
/* Accepts NULL; sets *rate to NULL. */
void smtp_rate_free(struct smtp_rate **rate);

/* Count one event of key at now (refused events count too, so a client that keeps trying
 * stays refused until its window ends). 1 when the events of key in its window, this one
 * included, are at most limit (or limit is 0: no limit, nothing counted), 0 over it. */
int smtp_rate_hit(struct smtp_rate *rate, const char *key, unsigned limit, time_t now)
    __attribute__((warn_unused_result));
/* Keys held now. */
size_t smtp_rate_keys(struct smtp_rate *rate);

#endif
