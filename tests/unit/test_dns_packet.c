/* Unit tests for net/dns_packet: answers built octet by octet (as a server or libunbound
 * would send them) parse to the right records; CNAME chains, negative TTLs, TXT strings,
 * TLSA data, name compression; and every malformed or truncated packet is refused without
 * reading outside it (ASan watches). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "net/dns_packet.h"
#include "core/banned.h"

struct pkt {
	unsigned char b[4096];
	size_t n;
};

static void put8(struct pkt *p, unsigned v)
{
	p->b[p->n++] = (unsigned char)v;
}

static void put16(struct pkt *p, unsigned v)
{
	put8(p, v >> 8);
	put8(p, v & 0xff);
}

static void put32(struct pkt *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p, v & 0xffff);
}

static void put_bytes(struct pkt *p, const void *d, size_t n)
{
	memcpy(p->b + p->n, d, n);
	p->n += n;
}

/* "a.b.c" in wire form, ending with the root label. */
static void put_name(struct pkt *p, const char *name)
{
	while (*name != '\0') {
		const char *dot = strchr(name, '.');
		size_t l = dot != NULL ? (size_t)(dot - name) : strlen(name);
		put8(p, (unsigned)l);
		put_bytes(p, name, l);
		name += l;
		if (*name == '.')
			name++;
	}
	put8(p, 0);
}

static void put_header(struct pkt *p, unsigned rcode, unsigned an, unsigned ns)
{
	p->n = 0;
	put16(p, 0x1234);
	put16(p, 0x8180 | rcode); /* QR RD RA */
	put16(p, 1);
	put16(p, an);
	put16(p, ns);
	put16(p, 0);
}

static void put_question(struct pkt *p, const char *name, unsigned type)
{
	put_name(p, name);
	put16(p, type);
	put16(p, 1);
}

/* Type, class IN, TTL, then the caller writes rdlength and rdata. */
static void put_rr_head(struct pkt *p, const char *name, unsigned type, uint32_t ttl)
{
	put_name(p, name);
	put16(p, type);
	put16(p, 1);
	put32(p, ttl);
}

static void put_rr(struct pkt *p, const char *name, unsigned type, uint32_t ttl, const void *rdata,
                   size_t rdlen)
{
	put_rr_head(p, name, type, ttl);
	put16(p, (unsigned)rdlen);
	put_bytes(p, rdata, rdlen);
}

/* A record whose rdata is a name (CNAME), written uncompressed. */
static void put_rr_name(struct pkt *p, const char *name, unsigned type, uint32_t ttl,
                        const char *target)
{
	struct pkt t = {.n = 0};
	put_name(&t, target);
	put_rr(p, name, type, ttl, t.b, t.n);
}

static void put_mx(struct pkt *p, const char *name, uint32_t ttl, unsigned pref, const char *host)
{
	struct pkt t = {.n = 0};
	put16(&t, pref);
	put_name(&t, host);
	put_rr(p, name, DNS_TYPE_MX, ttl, t.b, t.n);
}

static void put_soa(struct pkt *p, const char *zone, uint32_t ttl, uint32_t minimum)
{
	struct pkt t = {.n = 0};
	put_name(&t, "ns.example.test");
	put_name(&t, "hostmaster.example.test");
	put32(&t, 1);
	put32(&t, 3600);
	put32(&t, 600);
	put32(&t, 86400);
	put32(&t, minimum);
	put_rr(p, zone, DNS_TYPE_SOA, ttl, t.b, t.n);
}

struct fixture {
	struct arena *arena;
	struct dns_result res;
	const char *error;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->arena = arena_new(4096);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	arena_free(&f->arena);
	free(f);
	return 0;
}

/* Parse p from a malloc'd copy of exactly its length, so ASan sees any read past it. */
static int parse(struct fixture *f, const struct pkt *p, unsigned qtype)
{
	unsigned char *copy = malloc(p->n > 0 ? p->n : 1);
	memcpy(copy, p->b, p->n);
	int r = dns_packet_parse(copy, p->n, (uint16_t)qtype, f->arena, &f->res, &f->error);
	free(copy);
	return r;
}

static void test_mx_records(void **state)
{
	struct fixture *f = *state;
	struct pkt p;
	put_header(&p, 0, 3, 0);
	put_question(&p, "Example.TEST", DNS_TYPE_MX);
	put_mx(&p, "example.test", 300, 10, "MX1.Example.test.");
	put_mx(&p, "example.test", 200, 20, "mx2.example.test");
	/* compressed: "mx3" + pointer to the question's name at offset 12 */
	put_rr_head(&p, "example.test", DNS_TYPE_MX, 600);
	put16(&p, 2 + 4 + 2);
	put16(&p, 30);
	put8(&p, 3);
	put_bytes(&p, "mx3", 3);
	put16(&p, 0xC000 | 12);
	assert_int_equal(parse(f, &p, DNS_TYPE_MX), 0);
	assert_int_equal(f->res.status, DNS_STATUS_OK);
	assert_string_equal(f->res.name, "example.test");
	assert_int_equal(f->res.count, 3);
	assert_int_equal(f->res.ttl, 200);
	assert_int_equal(f->res.records[0].u.mx.preference, 10);
	assert_string_equal(f->res.records[0].u.mx.host, "mx1.example.test");
	assert_int_equal(f->res.records[1].u.mx.preference, 20);
	assert_string_equal(f->res.records[1].u.mx.host, "mx2.example.test");
	assert_int_equal(f->res.records[2].u.mx.preference, 30);
	assert_string_equal(f->res.records[2].u.mx.host, "mx3.example.test");
	assert_false(f->res.secure);
	assert_null(f->res.reason);
}

static void test_null_mx(void **state)
{
	struct fixture *f = *state;
	struct pkt p;
	put_header(&p, 0, 1, 0);
	put_question(&p, "example.test", DNS_TYPE_MX);
	put_mx(&p, "example.test", 300, 0, "");
	assert_int_equal(parse(f, &p, DNS_TYPE_MX), 0);
	assert_int_equal(f->res.count, 1);
	assert_int_equal(f->res.records[0].u.mx.preference, 0);
	assert_string_equal(f->res.records[0].u.mx.host, "");
}

static void test_addresses(void **state)
{
	struct fixture *f = *state;
	struct pkt p;
	const unsigned char a[4] = {127, 0, 0, 2};
	const unsigned char a6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
	put_header(&p, 0, 2, 0);
	put_question(&p, "mx.example.test", DNS_TYPE_A);
	put_rr(&p, "mx.example.test", DNS_TYPE_A, 60, a, 4);
	put_rr(&p, "mx.example.test", DNS_TYPE_AAAA, 60, a6, 16); /* not asked: ignored */
	assert_int_equal(parse(f, &p, DNS_TYPE_A), 0);
	assert_int_equal(f->res.count, 1);
	assert_int_equal(f->res.records[0].u.addr.family, AF_INET);
	assert_string_equal(f->res.records[0].u.addr.text, "127.0.0.2");
	struct sockaddr_storage ss;
	assert_int_equal(dns_addr_sockaddr(&f->res.records[0].u.addr, 25, &ss),
	                 sizeof(struct sockaddr_in));
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 25);

	put_header(&p, 0, 1, 0);
	put_question(&p, "mx.example.test", DNS_TYPE_AAAA);
	put_rr(&p, "mx.example.test", DNS_TYPE_AAAA, 60, a6, 16);
	assert_int_equal(parse(f, &p, DNS_TYPE_AAAA), 0);
	assert_int_equal(f->res.records[0].u.addr.family, AF_INET6);
	assert_string_equal(f->res.records[0].u.addr.text, "2001:db8::1");

	/* an A record of 5 octets is malformed */
	const unsigned char bad[5] = {1, 2, 3, 4, 5};
	put_header(&p, 0, 1, 0);
	put_question(&p, "mx.example.test", DNS_TYPE_A);
	put_rr(&p, "mx.example.test", DNS_TYPE_A, 60, bad, 5);
	assert_int_equal(parse(f, &p, DNS_TYPE_A), -1);
}

static void test_cname_chain(void **state)
{
	struct fixture *f = *state;
	struct pkt p;
	const unsigned char a[4] = {192, 0, 2, 7};
	put_header(&p, 0, 4, 0);
	put_question(&p, "www.example.test", DNS_TYPE_A);
	put_rr(&p, "other.example.test", DNS_TYPE_A, 5, a, 4); /* not on the chain */
	put_rr_name(&p, "www.example.test", DNS_TYPE_CNAME, 100, "Web.example.test");
	put_rr_name(&p, "web.example.test", DNS_TYPE_CNAME, 50, "host.example.test");
	put_rr(&p, "host.example.test", DNS_TYPE_A, 300, a, 4);
	assert_int_equal(parse(f, &p, DNS_TYPE_A), 0);
	assert_int_equal(f->res.status, DNS_STATUS_OK);
	assert_string_equal(f->res.name, "www.example.test");
	assert_string_equal(f->res.canonical, "host.example.test");
	assert_int_equal(f->res.count, 1);
	assert_int_equal(f->res.ttl, 50);
	assert_string_equal(f->res.records[0].u.addr.text, "192.0.2.7");
}

static void test_cname_loop(void **state)
{
	struct fixture *f = *state;
	struct pkt p;
	put_header(&p, 0, 2, 0);
	put_question(&p, "a.example.test", DNS_TYPE_A);
	put_rr_name(&p, "a.example.test", DNS_TYPE_CNAME, 100, "b.example.test");
	put_rr_name(&p, "b.example.test", DNS_TYPE_CNAME, 100, "a.example.test");
	assert_int_equal(parse(f, &p, DNS_TYPE_A), -1);
}

static void test_negative(void **state)
{
	struct fixture *f = *state;
	struct pkt p;
	put_header(&p, 3, 0, 1);
	put_question(&p, "nx.example.test", DNS_TYPE_MX);
	put_soa(&p, "example.test", 3600, 120);
	assert_int_equal(parse(f, &p, DNS_TYPE_MX), 0);
	assert_int_equal(f->res.status, DNS_STATUS_NXDOMAIN);
	assert_int_equal(f->res.count, 0);
	assert_int_equal(f->res.ttl, 120); /* RFC 2308 §5: min(SOA TTL, MINIMUM) */

	put_header(&p, 0, 0, 1);
	put_question(&p, "example.test", DNS_TYPE_TLSA);
	put_soa(&p, "example.test", 60, 300);
	assert_int_equal(parse(f, &p, DNS_TYPE_TLSA), 0);
	assert_int_equal(f->res.status, DNS_STATUS_NODATA);
	assert_int_equal(f->res.ttl, 60);

	/* no SOA: TTL unknown */
	put_header(&p, 0, 0, 0);
	put_question(&p, "example.test", DNS_TYPE_TXT);
	assert_int_equal(parse(f, &p, DNS_TYPE_TXT), 0);
	assert_int_equal(f->res.status, DNS_STATUS_NODATA);
	assert_int_equal(f->res.ttl, 0);
}

static void test_servfail(void **state)
{
	struct fixture *f = *state;
	struct pkt p;
	put_header(&p, 2, 0, 0);
	put_question(&p, "example.test", DNS_TYPE_MX);
	assert_int_equal(parse(f, &p, DNS_TYPE_MX), 0);
	assert_int_equal(f->res.status, DNS_STATUS_TEMPFAIL);
	assert_string_equal(f->res.reason, "SERVFAIL");
	put_header(&p, 5, 0, 0);
	put_question(&p, "example.test", DNS_TYPE_MX);
	assert_int_equal(parse(f, &p, DNS_TYPE_MX), 0);
	assert_string_equal(f->res.reason, "REFUSED");
}

static void test_txt(void **state)
{
	struct fixture *f = *state;
	struct pkt p;
	const unsigned char several[] = "\x07v=spf1 \x04-all";
	const unsigned char empty_string[] = {0};
	const unsigned char with_nul[] = {3, 'a', 0, 'b'};
	put_header(&p, 0, 4, 0);
	put_question(&p, "example.test", DNS_TYPE_TXT);
	put_rr(&p, "example.test", DNS_TYPE_TXT, 300, several, sizeof(several) - 1);
	put_rr(&p, "example.test", DNS_TYPE_TXT, 300, empty_string, 1);
	put_rr(&p, "example.test", DNS_TYPE_TXT, 300, "", 0);
	put_rr(&p, "example.test", DNS_TYPE_TXT, 300, with_nul, 4);
	assert_int_equal(parse(f, &p, DNS_TYPE_TXT), 0);
	assert_int_equal(f->res.count, 4);
	assert_string_equal(f->res.records[0].u.txt.text, "v=spf1 -all");
	assert_int_equal(f->res.records[0].u.txt.len, 11);
	assert_int_equal(f->res.records[1].u.txt.len, 0);
	assert_string_equal(f->res.records[1].u.txt.text, "");
	assert_int_equal(f->res.records[2].u.txt.len, 0);
	assert_int_equal(f->res.records[3].u.txt.len, 3);
	assert_memory_equal(f->res.records[3].u.txt.text, "a\0b", 3);

	/* a character-string longer than what is left of the rdata */
	const unsigned char overrun[] = {5, 'a', 'b'};
	put_header(&p, 0, 1, 0);
	put_question(&p, "example.test", DNS_TYPE_TXT);
	put_rr(&p, "example.test", DNS_TYPE_TXT, 300, overrun, 3);
	assert_int_equal(parse(f, &p, DNS_TYPE_TXT), -1);
}

static void test_tlsa(void **state)
{
	struct fixture *f = *state;
	struct pkt p;
	unsigned char rd[3 + 32];
	rd[0] = 3;
	rd[1] = 1;
	rd[2] = 1;
	for (unsigned i = 0; i < 32; i++)
		rd[3 + i] = (unsigned char)(i * 7);
	put_header(&p, 0, 1, 0);
	put_question(&p, "_25._tcp.mx.example.test", DNS_TYPE_TLSA);
	put_rr(&p, "_25._tcp.mx.example.test", DNS_TYPE_TLSA, 300, rd, sizeof(rd));
	assert_int_equal(parse(f, &p, DNS_TYPE_TLSA), 0);
	const struct dns_tlsa *t = &f->res.records[0].u.tlsa;
	assert_int_equal(t->usage, 3);
	assert_int_equal(t->selector, 1);
	assert_int_equal(t->matching_type, 1);
	assert_int_equal(t->data_len, 32);
	assert_memory_equal(t->data, rd + 3, 32);

	put_header(&p, 0, 1, 0);
	put_question(&p, "_25._tcp.mx.example.test", DNS_TYPE_TLSA);
	put_rr(&p, "_25._tcp.mx.example.test", DNS_TYPE_TLSA, 300, rd, 2);
	assert_int_equal(parse(f, &p, DNS_TYPE_TLSA), -1);
}

/* Every strict prefix of a valid answer is refused; the whole one parses. */
static void test_truncated(void **state)
{
	struct fixture *f = *state;
	struct pkt p;
	const unsigned char a[4] = {127, 0, 0, 3};
	const unsigned char txt[] = "\x03"
	                            "abc";
	put_header(&p, 0, 4, 1);
	put_question(&p, "www.example.test", DNS_TYPE_A);
	put_rr_name(&p, "www.example.test", DNS_TYPE_CNAME, 100, "host.example.test");
	put_rr(&p, "host.example.test", DNS_TYPE_A, 300, a, 4);
	put_rr(&p, "host.example.test", DNS_TYPE_TXT, 300, txt, 4);
	put_mx(&p, "host.example.test", 300, 5, "mx.example.test");
	put_soa(&p, "example.test", 60, 60);
	struct pkt cut = p;
	for (size_t n = 0; n < p.n; n++) {
		cut.n = n;
		assert_int_equal(parse(f, &cut, DNS_TYPE_A), -1);
	}
	assert_int_equal(parse(f, &p, DNS_TYPE_A), 0);
	assert_int_equal(f->res.count, 1);
}

static void test_bad_compression(void **state)
{
	struct fixture *f = *state;
	struct pkt p;
	/* a question name that points forward (to itself: offset 12) */
	put_header(&p, 0, 0, 0);
	put16(&p, 0xC000 | 12);
	put16(&p, DNS_TYPE_A);
	put16(&p, 1);
	assert_int_equal(parse(f, &p, DNS_TYPE_A), -1);
	/* a pointer beyond the packet */
	put_header(&p, 0, 0, 0);
	put16(&p, 0xC000 | 0x3ff);
	put16(&p, DNS_TYPE_A);
	put16(&p, 1);
	assert_int_equal(parse(f, &p, DNS_TYPE_A), -1);
	/* two pointers that point at each other: the second must be before the first */
	put_header(&p, 0, 1, 0);
	put_question(&p, "example.test", DNS_TYPE_MX);
	size_t at = p.n;
	put16(&p, 0xC000 | (unsigned)(at + 2)); /* owner: points forward to the next pointer */
	put16(&p, 0xC000 | (unsigned)at);
	put16(&p, DNS_TYPE_MX);
	put16(&p, 1);
	put32(&p, 60);
	put16(&p, 0);
	assert_int_equal(parse(f, &p, DNS_TYPE_MX), -1);
	/* the obsolete extended label type 0x40 */
	put_header(&p, 0, 0, 0);
	put8(&p, 0x41);
	put8(&p, 'a');
	put8(&p, 0);
	put16(&p, DNS_TYPE_A);
	put16(&p, 1);
	assert_int_equal(parse(f, &p, DNS_TYPE_A), -1);
	/* a name of more than 255 octets: five labels of 63 */
	put_header(&p, 0, 0, 0);
	for (int i = 0; i < 5; i++) {
		put8(&p, 63);
		for (int j = 0; j < 63; j++)
			put8(&p, 'a');
	}
	put8(&p, 0);
	put16(&p, DNS_TYPE_A);
	put16(&p, 1);
	assert_int_equal(parse(f, &p, DNS_TYPE_A), -1);
	/* an MX host name that goes past its rdata into the next record */
	put_header(&p, 0, 1, 0);
	put_question(&p, "example.test", DNS_TYPE_MX);
	put_rr_head(&p, "example.test", DNS_TYPE_MX, 60);
	put16(&p, 4);
	put16(&p, 10);
	put8(&p, 3);
	put_bytes(&p, "mxa", 3);
	put8(&p, 0);
	assert_int_equal(parse(f, &p, DNS_TYPE_MX), -1);
}

static void test_name_escapes(void **state)
{
	(void)state;
	struct pkt p = {.n = 0};
	put8(&p, 4);
	put_bytes(&p, "a.B ", 4);
	put8(&p, 2);
	put_bytes(&p, "\\\x80", 2);
	put8(&p, 0);
	char text[DNS_NAME_TEXT_MAX];
	size_t pos = 0;
	assert_int_equal(dns_packet_read_name(p.b, p.n, &pos, text), 19);
	assert_string_equal(text, "a\\046b\\032.\\092\\128");
	assert_int_equal(pos, p.n);
	pos = 0;
	unsigned char root = 0;
	assert_int_equal(dns_packet_read_name(&root, 1, &pos, text), 0);
	assert_string_equal(text, "");
}

static void test_wrong_question(void **state)
{
	struct fixture *f = *state;
	struct pkt p;
	put_header(&p, 0, 0, 0);
	put_question(&p, "example.test", DNS_TYPE_A);
	assert_int_equal(parse(f, &p, DNS_TYPE_MX), -1);
	/* two questions */
	put_header(&p, 0, 0, 0);
	p.b[5] = 2;
	put_question(&p, "example.test", DNS_TYPE_MX);
	put_question(&p, "example.test", DNS_TYPE_MX);
	assert_int_equal(parse(f, &p, DNS_TYPE_MX), -1);
	/* an answer count the packet cannot hold */
	put_header(&p, 0, 60000, 0);
	put_question(&p, "example.test", DNS_TYPE_MX);
	assert_int_equal(parse(f, &p, DNS_TYPE_MX), -1);
}

static void test_ttl_high_bit(void **state)
{
	struct fixture *f = *state;
	struct pkt p;
	const unsigned char a[4] = {127, 0, 0, 1};
	put_header(&p, 0, 1, 0);
	put_question(&p, "example.test", DNS_TYPE_A);
	put_rr(&p, "example.test", DNS_TYPE_A, 0x80000001u, a, 4);
	assert_int_equal(parse(f, &p, DNS_TYPE_A), 0);
	assert_int_equal(f->res.ttl, 0); /* RFC 2181 §8 */
}

static void test_ptr_records(void **state)
{
	struct fixture *f = *state;
	struct pkt p;
	put_header(&p, 0, 2, 0);
	put_question(&p, "1.2.0.192.in-addr.arpa", DNS_TYPE_PTR);
	put_rr_name(&p, "1.2.0.192.in-addr.arpa", DNS_TYPE_PTR, 300, "Mail.Example.TEST.");
	/* compressed: "www" + pointer to the question's name at offset 12 */
	put_rr_head(&p, "1.2.0.192.in-addr.arpa", DNS_TYPE_PTR, 100);
	put16(&p, 1 + 3 + 2);
	put8(&p, 3);
	put_bytes(&p, "www", 3);
	put16(&p, 0xC000 | 12);
	assert_int_equal(parse(f, &p, DNS_TYPE_PTR), 0);
	assert_int_equal(f->res.status, DNS_STATUS_OK);
	assert_int_equal(f->res.count, 2);
	assert_int_equal(f->res.ttl, 100);
	assert_int_equal(f->res.records[0].type, DNS_TYPE_PTR);
	assert_string_equal(f->res.records[0].u.ptr, "mail.example.test");
	assert_string_equal(f->res.records[1].u.ptr, "www.1.2.0.192.in-addr.arpa");
	struct pkt bad;
	put_header(&bad, 0, 1, 0);
	put_question(&bad, "1.2.0.192.in-addr.arpa", DNS_TYPE_PTR);
	put_rr_head(&bad, "1.2.0.192.in-addr.arpa", DNS_TYPE_PTR, 100);
	put16(&bad, 1 + 1 + 1 + 2);
	put8(&bad, 1);
	put_bytes(&bad, "a", 1);
	put8(&bad, 0);
	put16(&bad, 0); /* two octets after the name's end */
	assert_int_equal(parse(f, &bad, DNS_TYPE_PTR), -1);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(dns_status_name(DNS_STATUS_OK), "ok");
	assert_string_equal(dns_status_name(DNS_STATUS_NXDOMAIN), "nxdomain");
	assert_string_equal(dns_status_name(DNS_STATUS_NODATA), "nodata");
	assert_string_equal(dns_status_name(DNS_STATUS_TEMPFAIL), "tempfail");
	assert_string_equal(dns_status_name(DNS_STATUS_BOGUS), "bogus");
	assert_int_equal(dns_type_parse("mx"), DNS_TYPE_MX);
	assert_int_equal(dns_type_parse("AAAA"), DNS_TYPE_AAAA);
	assert_int_equal(dns_type_parse("tlsa"), DNS_TYPE_TLSA);
	assert_int_equal(dns_type_parse("ptr"), DNS_TYPE_PTR);
	assert_string_equal(dns_type_name(DNS_TYPE_PTR), "PTR");
	assert_int_equal(dns_type_parse("cname"), 0);
	assert_int_equal(dns_type_parse("ns"), 0);
	assert_string_equal(dns_type_name(DNS_TYPE_TXT), "TXT");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_mx_records, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_null_mx, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_addresses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cname_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cname_loop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_negative, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_servfail, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_txt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tlsa, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_compression, setup, teardown),
	    cmocka_unit_test(test_name_escapes),
	    cmocka_unit_test_setup_teardown(test_wrong_question, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ttl_high_bit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ptr_records, setup, teardown),
	    cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
