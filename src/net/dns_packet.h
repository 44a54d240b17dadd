/* DNS answers as the outbound code needs them: the result of one lookup (status, DNSSEC
 * verdict, TTL, records) and the pure parser that turns a DNS response packet (RFC 1035
 * §4.1 wire format, as libunbound hands it over) into that result. The parser takes bytes and
 * returns results; it never touches the network, so it is unit-tested and fuzzed
 * (fuzz/fuzz_dns_packet.c). net/dns.h runs the lookups. */
#ifndef POSTHORN_NET_DNS_PACKET_H
#define POSTHORN_NET_DNS_PACKET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct arena;

/* Record types, by their numbers (RFC 1035, RFC 3596, RFC 6698). */
enum dns_type {
	DNS_TYPE_A = 1,
	DNS_TYPE_CNAME = 5,
	DNS_TYPE_SOA = 6,
	DNS_TYPE_PTR = 12,
	DNS_TYPE_MX = 15,
	DNS_TYPE_TXT = 16,
	DNS_TYPE_AAAA = 28,
	DNS_TYPE_TLSA = 52,
};

enum dns_status {
	DNS_STATUS_OK,       /* the name has records of the type (count > 0) */
	DNS_STATUS_NXDOMAIN, /* the name does not exist */
	DNS_STATUS_NODATA,   /* the name exists, without records of the type */
	DNS_STATUS_TEMPFAIL, /* SERVFAIL, REFUSED, timeout, malformed answer: try again later */
	DNS_STATUS_BOGUS,    /* DNSSEC validation failed: the answer must not be used */
};

/* Longest presentation name we produce: 255 wire octets, every octet escaped as \DDD. */
#define DNS_NAME_TEXT_MAX 1024

struct dns_mx {
	uint16_t preference;
	char *host; /* lower case, no trailing dot; "" for the root (null MX, RFC 7505) */
};

struct dns_addr {
	int family;                  /* AF_INET or AF_INET6 */
	unsigned char bytes[16];     /* 4 or 16 octets, network order */
	char text[INET6_ADDRSTRLEN]; /* "192.0.2.1", "2001:db8::1" */
};

struct dns_tlsa {
	uint8_t usage, selector, matching_type; /* RFC 6698 §2.1 */
	const unsigned char *data;              /* certificate association data */
	size_t data_len;
};

struct dns_txt {
	char *text; /* the record's character-strings concatenated; NUL-terminated, but may
	               contain NUL octets: use len */
	size_t len;
};

struct dns_record {
	uint16_t type; /* the type asked for */
	uint32_t ttl;
	union {
		struct dns_mx mx;     /* DNS_TYPE_MX */
		struct dns_addr addr; /* DNS_TYPE_A, DNS_TYPE_AAAA */
		struct dns_tlsa tlsa; /* DNS_TYPE_TLSA */
		struct dns_txt txt;   /* DNS_TYPE_TXT */
		char *ptr;            /* DNS_TYPE_PTR: the name, lower case, no trailing dot */
	} u;
};

struct dns_result {
	enum dns_status status;
	bool secure;           /* libunbound validated the answer with DNSSEC (RFC 4035) */
	uint32_t ttl;          /* seconds the answer may be cached: the smallest TTL of the records
	                          and the CNAMEs that led to them; for NXDOMAIN/NODATA the SOA's
	                          negative TTL (RFC 2308 §5); 0 when unknown */
	uint16_t type;         /* the type asked for */
	const char *name;      /* the name asked for, lower case, no trailing dot */
	const char *canonical; /* the name the records belong to after CNAMEs (= name without) */
	const char
	    *reason; /* why, for TEMPFAIL and BOGUS ("SERVFAIL", "timeout", ...), else NULL */
	size_t count;
	struct dns_record *records; /* in the order of the answer */
};

/* Parse the response pkt (len octets) to a question for qtype. Everything the result points
 * to is allocated in arena. Sets status from the RCODE (NOERROR: OK with records or NODATA;
 * NXDOMAIN; any other: TEMPFAIL), follows CNAMEs from the question's name (at most 16), and
 * collects the qtype records of the final name (MX, A, AAAA, TLSA, TXT, PTR). secure is left
 * false. Returns 0, or -1 with *error_r when the packet is malformed (truncated, bad name, bad
 * rdata, wrong question). */
int dns_packet_parse(const unsigned char *pkt, size_t len, uint16_t qtype, struct arena *arena,
                     struct dns_result *result, const char **error_r)
    __attribute__((warn_unused_result));

/* Read the possibly compressed name at *pos of pkt into text (DNS_NAME_TEXT_MAX octets):
 * lower case, no trailing dot ("" for the root), octets outside [!-~] and '.', '\\' escaped
 * as \DDD (RFC 1035 §5.1). Compression pointers must point backwards (no loops). *pos moves
 * past the name as it is in place. Returns its length, or -1 when malformed. */
int dns_packet_read_name(const unsigned char *pkt, size_t len, size_t *pos,
                         char text[DNS_NAME_TEXT_MAX]) __attribute__((warn_unused_result));

/* Fill *sa (port in host order) from an A or AAAA record. Returns the address's length. */
socklen_t dns_addr_sockaddr(const struct dns_addr *addr, uint16_t port,
                            struct sockaddr_storage *sa);

/* "ok", "nxdomain", "nodata", "tempfail" or "bogus". */
const char *dns_status_name(enum dns_status status);
/* "MX", "A", "AAAA", "TLSA", "TXT", "PTR" (and "CNAME", "SOA"), or NULL for other types. */
const char *dns_type_name(uint16_t type);
/* The type for a name (case-insensitive, of the six the resolver looks up); 0 if unknown. */
uint16_t dns_type_parse(const char *name);

#endif
