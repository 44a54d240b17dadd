/* DNS response parser (see dns_packet.h). Every offset into the packet is checked against
 * its length before it is read: the packet is network input, even when libunbound built it
 * from what an upstream server sent. */
#include "net/dns_packet.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/banned.h"

#define DNS_HEADER_LEN 12
#define DNS_RR_FIXED_LEN 10 /* type, class, ttl, rdlength after the owner name */
#define DNS_CLASS_IN 1
#define DNS_RCODE_NXDOMAIN 3
#define DNS_CNAME_HOPS_MAX 16
#define DNS_POINTER_HOPS_MAX 128
#define DNS_WIRE_NAME_MAX 255

/* One answer-section record, before its rdata is interpreted. */
struct dns_rr {
	const char *owner;
	uint16_t type;
	uint32_t ttl;
	size_t rdata; /* offset into the packet */
	size_t rdlen;
};

static uint16_t dns_u16(const unsigned char *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t dns_u32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* RFC 2181 §8: a TTL with the top bit set is treated as 0. */
static uint32_t dns_ttl(const unsigned char *p)
{
	uint32_t t = dns_u32(p);
	return (t & 0x80000000u) != 0 ? 0 : t;
}

/* Append one label octet in presentation form; false when text is full. */
static bool dns_name_put(char *text, size_t *n, unsigned char c)
{
	if (*n + 5 >= DNS_NAME_TEXT_MAX)
		return false;
	if (c >= 'A' && c <= 'Z') {
		text[(*n)++] = (char)(c - 'A' + 'a');
	} else if (c > 0x20 && c < 0x7f && c != '.' && c != '\\') {
		text[(*n)++] = (char)c;
	} else {
		snprintf(text + *n, 5, "\\%03u", (unsigned)c);
		*n += 4;
	}
	return true;
}

int dns_packet_read_name(const unsigned char *pkt, size_t len, size_t *pos,
                         char text[DNS_NAME_TEXT_MAX])
{
	size_t p = *pos, n = 0, wire = 0, end = 0;
	size_t limit = *pos; /* a pointer must go before the name that uses it */
	bool jumped = false;
	unsigned hops = 0;
	text[0] = '\0';
	for (;;) {
		if (p >= len)
			return -1;
		unsigned char l = pkt[p];
		if ((l & 0xC0) == 0xC0) {
			if (p + 1 >= len || ++hops > DNS_POINTER_HOPS_MAX)
				return -1;
			size_t target = (size_t)((l & 0x3F) << 8) | pkt[p + 1];
			if (target >= limit)
				return -1;
			if (!jumped)
				end = p + 2;
			jumped = true;
			limit = target;
			p = target;
			continue;
		}
		if ((l & 0xC0) != 0) /* 0x40 and 0x80: extended label types, obsolete */
			return -1;
		wire += (size_t)l + 1;
		if (wire > DNS_WIRE_NAME_MAX)
			return -1;
		if (l == 0) {
			if (!jumped)
				end = p + 1;
			break;
		}
		if (p + 1 + l > len)
			return -1;
		if (n > 0)
			text[n++] = '.';
		for (size_t i = 0; i < l; i++)
			if (!dns_name_put(text, &n, pkt[p + 1 + i]))
				return -1;
		p += (size_t)l + 1;
	}
	text[n] = '\0';
	*pos = end;
	return (int)n;
}

/* Read a name into the arena; NULL when malformed. */
static const char *dns_name_dup(const unsigned char *pkt, size_t len, size_t *pos,
                                struct arena *arena)
{
	char text[DNS_NAME_TEXT_MAX];
	int n = dns_packet_read_name(pkt, len, pos, text);
	if (n < 0)
		return NULL;
	return arena_strndup(arena, text, (size_t)n);
}

/* The name in rdata [pos, end): it must end exactly at end. */
static const char *dns_rdata_name(const unsigned char *pkt, size_t pos, size_t end,
                                  struct arena *arena)
{
	/* Parse within the rdata's bounds for the in-place part; a pointer may reach back
	 * into the whole packet, which is fine (it must point backwards). */
	const char *name = dns_name_dup(pkt, end, &pos, arena);
	if (name == NULL || pos != end)
		return NULL;
	return name;
}

static int dns_parse_mx(const unsigned char *pkt, const struct dns_rr *rr, struct arena *arena,
                        struct dns_record *rec)
{
	if (rr->rdlen < 3)
		return -1;
	rec->u.mx.preference = dns_u16(pkt + rr->rdata);
	const char *host = dns_rdata_name(pkt, rr->rdata + 2, rr->rdata + rr->rdlen, arena);
	if (host == NULL)
		return -1;
	rec->u.mx.host = (char *)host;
	return 0;
}

static int dns_parse_addr(const unsigned char *pkt, const struct dns_rr *rr, struct dns_record *rec)
{
	size_t want = rr->type == DNS_TYPE_A ? 4 : 16;
	if (rr->rdlen != want)
		return -1;
	rec->u.addr.family = rr->type == DNS_TYPE_A ? AF_INET : AF_INET6;
	memcpy(rec->u.addr.bytes, pkt + rr->rdata, want);
	if (inet_ntop(rec->u.addr.family, rec->u.addr.bytes, rec->u.addr.text,
	              sizeof(rec->u.addr.text)) == NULL)
		return -1;
	return 0;
}

static int dns_parse_tlsa(const unsigned char *pkt, const struct dns_rr *rr, struct arena *arena,
                          struct dns_record *rec)
{
	if (rr->rdlen < 3)
		return -1;
	const unsigned char *p = pkt + rr->rdata;
	rec->u.tlsa.usage = p[0];
	rec->u.tlsa.selector = p[1];
	rec->u.tlsa.matching_type = p[2];
	rec->u.tlsa.data_len = rr->rdlen - 3;
	unsigned char *data = arena_alloc(arena, rr->rdlen - 3 + 1);
	memcpy(data, p + 3, rr->rdlen - 3);
	rec->u.tlsa.data = data;
	return 0;
}

/* RFC 1035 §3.3.14: one or more <character-string>s, each a length octet and that many
 * octets. SPF (RFC 7208 §3.3) and DKIM (RFC 6376 §3.6.2.2) join them without separator.
 * An empty rdata is taken as one empty string. */
static int dns_parse_txt(const unsigned char *pkt, const struct dns_rr *rr, struct arena *arena,
                         struct dns_record *rec)
{
	const unsigned char *p = pkt + rr->rdata;
	size_t i = 0, n = 0;
	char *text = arena_alloc(arena, rr->rdlen + 1);
	while (i < rr->rdlen) {
		size_t l = p[i++];
		if (l > rr->rdlen - i)
			return -1;
		memcpy(text + n, p + i, l);
		n += l;
		i += l;
	}
	text[n] = '\0';
	rec->u.txt.text = text;
	rec->u.txt.len = n;
	return 0;
}

static int dns_parse_record(const unsigned char *pkt, const struct dns_rr *rr, struct arena *arena,
                            struct dns_record *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->type = rr->type;
	rec->ttl = rr->ttl;
	switch (rr->type) {
	case DNS_TYPE_MX:
		return dns_parse_mx(pkt, rr, arena, rec);
	case DNS_TYPE_A:
	case DNS_TYPE_AAAA:
		return dns_parse_addr(pkt, rr, rec);
	case DNS_TYPE_TLSA:
		return dns_parse_tlsa(pkt, rr, arena, rec);
	case DNS_TYPE_TXT:
		return dns_parse_txt(pkt, rr, arena, rec);
	case DNS_TYPE_PTR:
		/* RFC 1035 §3.3.12: one domain name (compression allowed). */
		rec->u.ptr = (char *)dns_rdata_name(pkt, rr->rdata, rr->rdata + rr->rdlen, arena);
		return rec->u.ptr == NULL ? -1 : 0;
	default:
		return -1;
	}
}

/* Read one resource record's header at *pos; the rdata is bounds-checked, not parsed. */
static int dns_read_rr(const unsigned char *pkt, size_t len, size_t *pos, struct arena *arena,
                       struct dns_rr *rr, uint16_t *class_r)
{
	rr->owner = dns_name_dup(pkt, len, pos, arena);
	if (rr->owner == NULL || len - *pos < DNS_RR_FIXED_LEN)
		return -1;
	const unsigned char *p = pkt + *pos;
	rr->type = dns_u16(p);
	*class_r = dns_u16(p + 2);
	rr->ttl = dns_ttl(p + 4);
	rr->rdlen = dns_u16(p + 8);
	rr->rdata = *pos + DNS_RR_FIXED_LEN;
	if (rr->rdlen > len - rr->rdata)
		return -1;
	*pos = rr->rdata + rr->rdlen;
	return 0;
}

static uint32_t dns_min_ttl(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* RFC 2308 §5: the negative answer's TTL is the smaller of the SOA record's TTL and its
 * MINIMUM field. Walks the whole authority section (a truncated one makes the packet
 * malformed); 0 when it has no SOA. */
static int dns_negative_ttl(const unsigned char *pkt, size_t len, size_t pos, unsigned nscount,
                            struct arena *arena, uint32_t *ttl_r)
{
	*ttl_r = 0;
	bool found = false;
	for (unsigned i = 0; i < nscount; i++) {
		struct dns_rr rr;
		uint16_t cls;
		if (dns_read_rr(pkt, len, &pos, arena, &rr, &cls) < 0)
			return -1;
		if (rr.type != DNS_TYPE_SOA || found)
			continue;
		size_t p = rr.rdata, end = rr.rdata + rr.rdlen;
		char skip[DNS_NAME_TEXT_MAX];
		if (dns_packet_read_name(pkt, end, &p, skip) < 0 ||
		    dns_packet_read_name(pkt, end, &p, skip) < 0 || end - p != 20)
			return -1;
		*ttl_r = dns_min_ttl(rr.ttl, dns_ttl(pkt + p + 16));
		found = true;
	}
	return 0;
}

/* The question: exactly one, of class IN and type qtype. */
static int dns_read_question(const unsigned char *pkt, size_t len, size_t *pos, uint16_t qtype,
                             struct arena *arena, const char **name_r)
{
	*name_r = dns_name_dup(pkt, len, pos, arena);
	if (*name_r == NULL || len - *pos < 4)
		return -1;
	if (dns_u16(pkt + *pos) != qtype || dns_u16(pkt + *pos + 2) != DNS_CLASS_IN)
		return -1;
	*pos += 4;
	return 0;
}

/* Follow the CNAME chain from the question's name and collect the qtype records of the name
 * it ends at (RFC 1034 §3.6.2). */
static int dns_collect(const unsigned char *pkt, const struct dns_rr *rrs, size_t n, uint16_t qtype,
                       struct arena *arena, struct dns_result *res)
{
	const char *cur = res->name;
	uint32_t ttl = UINT32_MAX;
	for (unsigned hop = 0; hop <= DNS_CNAME_HOPS_MAX; hop++) {
		size_t found = 0;
		for (size_t i = 0; i < n; i++)
			if (rrs[i].type == qtype && strcmp(rrs[i].owner, cur) == 0)
				found++;
		if (found > 0) {
			res->records = arena_alloc(arena, found * sizeof(*res->records));
			for (size_t i = 0; i < n; i++) {
				if (rrs[i].type != qtype || strcmp(rrs[i].owner, cur) != 0)
					continue;
				if (dns_parse_record(pkt, &rrs[i], arena,
				                     &res->records[res->count]) < 0)
					return -1;
				ttl = dns_min_ttl(ttl, rrs[i].ttl);
				res->count++;
			}
			break;
		}
		const struct dns_rr *cname = NULL;
		for (size_t i = 0; i < n && cname == NULL; i++)
			if (rrs[i].type == DNS_TYPE_CNAME && strcmp(rrs[i].owner, cur) == 0)
				cname = &rrs[i];
		if (cname == NULL)
			break;
		if (hop == DNS_CNAME_HOPS_MAX)
			return -1;
		cur = dns_rdata_name(pkt, cname->rdata, cname->rdata + cname->rdlen, arena);
		if (cur == NULL)
			return -1;
		ttl = dns_min_ttl(ttl, cname->ttl);
	}
	res->canonical = cur;
	res->ttl = ttl == UINT32_MAX ? 0 : ttl;
	return 0;
}

static const char *dns_rcode_reason(unsigned rcode)
{
	switch (rcode) {
	case 1:
		return "FORMERR";
	case 2:
		return "SERVFAIL";
	case 4:
		return "NOTIMP";
	case 5:
		return "REFUSED";
	default:
		return "unexpected rcode";
	}
}

int dns_packet_parse(const unsigned char *pkt, size_t len, uint16_t qtype, struct arena *arena,
                     struct dns_result *res, const char **error_r)
{
	memset(res, 0, sizeof(*res));
	res->type = qtype;
	*error_r = "malformed DNS answer";
	if (len < DNS_HEADER_LEN)
		return -1;
	unsigned rcode = pkt[3] & 0x0F;
	unsigned qdcount = dns_u16(pkt + 4), ancount = dns_u16(pkt + 6);
	unsigned nscount = dns_u16(pkt + 8);
	size_t pos = DNS_HEADER_LEN;
	if (qdcount != 1 || dns_read_question(pkt, len, &pos, qtype, arena, &res->name) < 0)
		return -1;
	res->canonical = res->name;
	/* every record takes at least 11 octets: bound the allocation by the packet */
	if (ancount > (len - pos) / (1 + DNS_RR_FIXED_LEN))
		return -1;
	struct dns_rr *rrs = arena_alloc(arena, (ancount + 1) * sizeof(*rrs));
	size_t n = 0;
	for (unsigned i = 0; i < ancount; i++) {
		uint16_t cls;
		if (dns_read_rr(pkt, len, &pos, arena, &rrs[n], &cls) < 0)
			return -1;
		if (cls == DNS_CLASS_IN)
			n++;
	}
	if (rcode != 0 && rcode != DNS_RCODE_NXDOMAIN) {
		res->status = DNS_STATUS_TEMPFAIL;
		res->reason = dns_rcode_reason(rcode);
		return 0;
	}
	if (dns_collect(pkt, rrs, n, qtype, arena, res) < 0)
		return -1;
	uint32_t negative_ttl;
	if (dns_negative_ttl(pkt, len, pos, nscount, arena, &negative_ttl) < 0)
		return -1;
	if (res->count > 0) {
		res->status = DNS_STATUS_OK;
		return 0;
	}
	res->status = rcode == DNS_RCODE_NXDOMAIN ? DNS_STATUS_NXDOMAIN : DNS_STATUS_NODATA;
	res->ttl = negative_ttl;
	return 0;
}

socklen_t dns_addr_sockaddr(const struct dns_addr *addr, uint16_t port, struct sockaddr_storage *sa)
{
	memset(sa, 0, sizeof(*sa));
	if (addr->family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)sa;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		memcpy(&in->sin_addr, addr->bytes, 4);
		return sizeof(*in);
	}
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	memcpy(&in6->sin6_addr, addr->bytes, 16);
	return sizeof(*in6);
}

const char *dns_status_name(enum dns_status status)
{
	switch (status) {
	case DNS_STATUS_OK:
		return "ok";
	case DNS_STATUS_NXDOMAIN:
		return "nxdomain";
	case DNS_STATUS_NODATA:
		return "nodata";
	case DNS_STATUS_TEMPFAIL:
		return "tempfail";
	case DNS_STATUS_BOGUS:
		return "bogus";
	}
	return "tempfail";
}

static const struct {
	const char *name;
	uint16_t type;
} dns_types[] = {
    {"MX", DNS_TYPE_MX},       {"A", DNS_TYPE_A},     {"AAAA", DNS_TYPE_AAAA},
    {"TLSA", DNS_TYPE_TLSA},   {"TXT", DNS_TYPE_TXT}, {"PTR", DNS_TYPE_PTR},
    {"CNAME", DNS_TYPE_CNAME}, {"SOA", DNS_TYPE_SOA},
};

const char *dns_type_name(uint16_t type)
{
	for (size_t i = 0; i < sizeof(dns_types) / sizeof(dns_types[0]); i++)
		if (dns_types[i].type == type)
			return dns_types[i].name;
	return NULL;
}

uint16_t dns_type_parse(const char *name)
{
	for (size_t i = 0; i < 6; i++) /* the first six: the types the resolver parses */
		if (strcasecmp(dns_types[i].name, name) == 0)
			return dns_types[i].type;
	return 0;
}
