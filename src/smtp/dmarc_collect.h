/* DMARC aggregate reports, collecting (RFC 7489 §7.2): each message from port 25 whose From
 * domain has a DMARC record is counted for its UTC day in the store (one writer operation,
 * STORE_QUEUE_DMARC_ADD, not waited for), with the record as published, the source, the
 * identifiers, the disposition applied and each method's result. smtp_checks.c calls it
 * once DMARC's verdict and action are known, also for a message it refuses. */
#ifndef POSTHORN_SMTP_DMARC_COLLECT_H
#define POSTHORN_SMTP_DMARC_COLLECT_H

#include <stdbool.h>

#include "smtp/spf.h"

struct smtp_session;
struct dmarc_check;
struct dkim_verify;

/* Count the message of s. action is smtp_checks' ("none", "reject", "quarantine",
 * "skipped"); spf may be NULL (no SPF check ran). Nothing happens when DMARC found no
 * record (result none) or the From domain was unusable. */
void dmarc_collect_message(struct smtp_session *s, const struct dmarc_check *dmarc,
                           const struct dkim_verify *dkim, const struct spf_check *spf,
                           enum spf_result spf_result, bool spf_helo, const char *from_domain,
                           const char *action);

#endif
