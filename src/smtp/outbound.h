/* Outbound delivery: the engine that works the queue. On one of the server's loops it
 * claims due queue entries (store leases), finds each domain's hosts (MX in preference
 * order, A/AAAA when there is none, null MX), speaks SMTP to them (smtp_client), DKIM-signs
 * what it sends, records every attempt, retries with backoff, and tells senders what
 * happened with DSNs (failure, delay, success when asked). One log line per attempt and
 * recipient:
 *   event=outbound queue=ID to=<rcpt> relay=HOST[IP]:PORT tls="..." verify="..."
 *   status=sent|deferred|bounced|expired code=NNN dsn=X.Y.Z reply="..."
 */
#ifndef POSTHORN_SMTP_OUTBOUND_H
#define POSTHORN_SMTP_OUTBOUND_H

#include "core/conf.h"
#include "store/store.h"

struct outbound;
struct net_server;

/* The engine for store on the server's first loop, configured from slot (read for each
 * attempt, so a reload applies to the next one). Call before net_server_run(); it starts
 * working when the loops run. NULL with *error_r (static text) when DNS or TLS cannot be
 * set up. */
struct outbound *outbound_new(struct net_server *server, struct store *store,
                              struct conf_slot *slot, const char **error_r);
/* `posthorn queue delete` without --silent: tell the sender of entry (read before it is
 * deleted: the report quotes the message) that its pending recipients will not get it,
 * with reason as the diagnostic. Synchronous (the CLI), never on a loop thread. 1 a report
 * was stored, 0 none was due (the null sender, NOTIFY=NEVER, nothing pending), -1 with
 * *error_r. */
int outbound_bounce_entry(struct store *store, const struct conf *conf,
                          const struct store_queue_entry *entry, const char *reason,
                          const char **error_r);

/* Are the outbound settings that are only parsed at delivery time (outbound_routes,
 * smarthost, smarthost_tls) well formed, and is smarthost_password_file (when it exists)
 * readable by its owner only? 0 yes, -1 with
 * *error_r (static text). serve and check-config refuse a configuration that is not. */
int outbound_check_conf(const struct conf *conf, const char **error_r)
    __attribute__((warn_unused_result));

/* From the main thread when the server is told to stop: claim nothing more; attempts in
 * flight are dropped (their leases run out, and the next start frees them at once). */
void outbound_stop(struct outbound *ob);
/* After net_server_run() returned: wait for store operations in flight, free everything;
 * sets *ob to NULL, accepts NULL. */
void outbound_free(struct outbound **ob);

#endif
