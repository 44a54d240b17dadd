/* Pure decisions of outbound delivery, kept apart from the engine so they are unit-tested:
 * which MX hosts to try in which order (RFC 5321 §5.1, RFC 7505), and how long to wait
 * before the next attempt. */
#ifndef POSTHORN_SMTP_OUTBOUND_ROUTE_H
#define POSTHORN_SMTP_OUTBOUND_ROUTE_H

#include <stddef.h>
#include <stdint.h>

struct outbound_mx {
	uint16_t preference;
	const char *host; /* lower case, no trailing dot; "" is the null MX (RFC 7505) */
};

/* What outbound_route_order() decided besides the list. */
enum outbound_route_verdict {
	OUTBOUND_ROUTE_OK,        /* try the hosts in order */
	OUTBOUND_ROUTE_NULL_MX,   /* the domain accepts no mail (RFC 7505 §3): bounce, 5.1.10 */
	OUTBOUND_ROUTE_LOOPS_BACK /* we are its best MX but not its final destination: 5.4.6 */
};

/* Order n MX records into out (room for n): ascending preference, equal preferences in a
 * random order (rnd() gives random numbers, rnd_ctx its argument), at most max hosts
 * (0: all). A null MX record among others is ignored; alone it gives NULL_MX. When
 * self (our host name, case-insensitive) is among the hosts, only hosts more preferred
 * than it remain (RFC 5321 §5.1); none left gives LOOPS_BACK. *count_r is the number in
 * out. */
enum outbound_route_verdict outbound_route_order(const struct outbound_mx *mx, size_t n, size_t max,
                                                 const char *self, uint32_t (*rnd)(void *),
                                                 void *rnd_ctx, struct outbound_mx *out,
                                                 size_t *count_r);

/* Seconds to wait after the attempts-th failed attempt (1 = the first): min doubled per
 * attempt, at most max (Postfix's minimal/maximal backoff). */
unsigned outbound_route_backoff(unsigned attempts, unsigned min, unsigned max);

#endif
