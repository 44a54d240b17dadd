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

/* ---- TLS-RPT (RFC 8460; smtp/outbound_tlsrpt.c) ---- */
struct buf;
struct net_loop;
struct dns_resolver;
struct outbound_tlsrpt_run;
/* The policy domains with results on day (days since 1970-01-01), malloc'd strings in a
 * malloc'd array. 0, -1. */
int outbound_tlsrpt_domains(struct store *store, int64_t day, char ***domains_r, size_t *count_r);
/* The JSON report (RFC 8460 §4.4) of domain for day appended to out: 1, 0 no results, -1. */
int outbound_tlsrpt_report(struct store *store, const struct conf *conf, int64_t day,
                           const char *domain, struct buf *out);
/* Send day's reports (conf->tlsrpt_max_domains domains at most, never one of ours) to the
 * addresses of each domain's _smtp._tls record, one domain after the other on loop: a
 * mail for mailto:, a POST for https: (with tls, whose CAs check the server; NULL skips
 * them). Takes conf (conf_free at the end). done comes once, from the loop, with the
 * number of reports sent or stored (report mails' store_deliver may still be committing:
 * the CLI closes the store, which waits). ob: the engine (counts the deliveries in
 * flight), NULL for the CLI. The claim of the day is the caller's. */
typedef void outbound_tlsrpt_done_fn(void *ctx, size_t sent);
struct tls_ctx;
struct outbound_tlsrpt_run *outbound_tlsrpt_run_start(struct net_loop *loop,
                                                      struct dns_resolver *dns, struct tls_ctx *tls,
                                                      struct store *store, struct conf *conf,
                                                      int64_t day, struct outbound *ob,
                                                      outbound_tlsrpt_done_fn *done, void *ctx);
/* Stop a run (done never comes); sets *run to NULL, accepts NULL. */
void outbound_tlsrpt_run_cancel(struct outbound_tlsrpt_run **run);

/* ---- DMARC aggregate reports (RFC 7489 §7.2; smtp/outbound_dmarc.c) ---- */
struct outbound_dmarc_run;
/* The XML report (Appendix C) of domain for day appended to out: 1, 0 no rows, -1. */
int outbound_dmarc_report(struct store *store, const struct conf *conf, int64_t day,
                          const char *domain, struct buf *out);
/* Send day's reports (conf->dmarc_report_max_domains domains with rua= addresses at most)
 * to the mailto: addresses of each domain's record, one domain after the other on loop
 * (external destinations checked over dns, §7.1). Takes conf (conf_free at the end). done
 * comes once, from the loop, with the number of report mails stored (their
 * store_deliver may still be committing: the CLI closes the store, which waits). ob: the
 * engine (counts the deliveries in flight), NULL for the CLI. The claim is the caller's. */
typedef void outbound_dmarc_done_fn(void *ctx, size_t sent);
struct outbound_dmarc_run *outbound_dmarc_run_start(struct net_loop *loop, struct dns_resolver *dns,
                                                    struct store *store, struct conf *conf,
                                                    int64_t day, struct outbound *ob,
                                                    outbound_dmarc_done_fn *done, void *ctx);
/* Stop a run (done never comes); sets *run to NULL, accepts NULL. */
void outbound_dmarc_run_cancel(struct outbound_dmarc_run **run);

/* From the main thread when the server is told to stop: claim nothing more; attempts in
 * flight are dropped (their leases run out, and the next start frees them at once). */
void outbound_stop(struct outbound *ob);
/* After net_server_run() returned: wait for store operations in flight, free everything;
 * sets *ob to NULL, accepts NULL. */
void outbound_free(struct outbound **ob);

#endif
