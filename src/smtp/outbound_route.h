/* Pure decisions of outbound delivery, kept apart from the engine so they are unit-tested:
 * which MX hosts to try in which order (RFC 5321 §5.1, RFC 7505), and how long to wait
 * before the next attempt. */
#ifndef POSTHORN_SMTP_OUTBOUND_ROUTE_H
#define POSTHORN_SMTP_OUTBOUND_ROUTE_H

#include <stdbool.h>
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

/* How a next hop is spoken to (outbound_routes' /MODE, smarthost_tls). */
enum outbound_tls_mode {
	OUTBOUND_TLS_STARTTLS, /* STARTTLS when offered (opportunistic): the default */
	OUTBOUND_TLS_REQUIRE,  /* STARTTLS must be offered and succeed */
	OUTBOUND_TLS_IMPLICIT, /* TLS from the first octet (port 465) */
	OUTBOUND_TLS_NONE,     /* never TLS */
};

/* A host given by configuration instead of the domain's MX records. */
struct outbound_hop {
	char host[256]; /* a name, or a numeric address (brackets removed) */
	int port;       /* 0 when not given */
	bool numeric;   /* host is an IPv4/IPv6 address: no DNS lookup */
	enum outbound_tls_mode tls;
};

/* Parse "HOST[:PORT][/MODE]" (HOST a name, an IPv4 address, or "[IPv6]"; MODE one of
 * starttls, require-tls, tls, none) from s[0..len). 0 ok, -1 malformed. */
int outbound_route_parse_hop(const char *s, size_t len, struct outbound_hop *hop)
    __attribute__((warn_unused_result));
/* Find domain (case-insensitive) in routes, a list of "DOMAIN=HOST[:PORT][/MODE]" separated
 * by spaces or commas. 1 with *hop, 0 no route, -1 the list is malformed. */
int outbound_route_lookup(const char *routes, const char *domain, struct outbound_hop *hop)
    __attribute__((warn_unused_result));
/* Is domain (case-insensitive) in list (domains separated by spaces or commas)? */
bool outbound_route_listed(const char *list, const char *domain);

/* Seconds to wait after the attempts-th failed attempt (1 = the first): min doubled per
 * attempt, at most max (Postfix's minimal/maximal backoff). */
unsigned outbound_route_backoff(unsigned attempts, unsigned min, unsigned max);

#endif
