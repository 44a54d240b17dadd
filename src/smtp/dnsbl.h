/* DNS block and allow lists (RFC 5782) for port 25, as Postfix's postscreen and mox query
 * them: the client's address reversed under a list's zone (4.3.2.1.zone for 1.2.3.4, 32
 * nibbles for IPv6), and an A answer that says listed. Pure: the caller looks the names up.
 * A zone may restrict what counts as listed, in postscreen's syntax:
 * `zen.spamhaus.org=127.0.0.[2..11]` (each octet N, [N..M] or [N;M;...]); without a filter
 * any 127.0.0.0/8 answer counts. Answers in 127.255.255.0/24 never count: Spamhaus and
 * others answer there when they refuse the query (public resolver, too many queries). */
#ifndef POSTHORN_SMTP_DNSBL_H
#define POSTHORN_SMTP_DNSBL_H

#include <stdbool.h>
#include <stddef.h>

#define DNSBL_ZONES_MAX 16
#define DNSBL_NAME_MAX 256

struct dnsbl_zone {
	char name[DNSBL_NAME_MAX];   /* the zone, lower case, no trailing dot */
	unsigned char octets[4][32]; /* a bit per value allowed in each octet */
	bool filtered;               /* a filter was given */
};

/* Parse a list of zones separated by spaces or commas, at most max. 0 with *n_r, or -1 with
 * *error_r (static text). */
int dnsbl_zones_parse(const char *text, struct dnsbl_zone *zones, size_t max, size_t *n_r,
                      const char **error_r) __attribute__((warn_unused_result));

/* The name to look up for the client ip (family AF_INET or AF_INET6, network order; an
 * IPv4-mapped IPv6 address counts as IPv4) in zone: 0, or -1 when it does not fit out. */
int dnsbl_query_name(int family, const unsigned char ip[16], const struct dnsbl_zone *zone,
                     char *out, size_t out_len) __attribute__((warn_unused_result));

enum dnsbl_verdict {
	DNSBL_NOT_LISTED,
	DNSBL_LISTED,
	DNSBL_REFUSED, /* only 127.255.255.x answers: the list refuses our queries */
};

/* The verdict of zone's A answer of n addresses (4 octets each; none: not listed). */
enum dnsbl_verdict dnsbl_verdict(const struct dnsbl_zone *zone, const unsigned char (*addrs)[4],
                                 size_t n);

#endif
