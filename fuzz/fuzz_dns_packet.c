/* libFuzzer target for net/dns_packet: any octets, parsed as the answer to each of the five
 * types the resolver asks for, must not crash or read outside the input; an accepted answer
 * keeps the contract of dns_packet.h (status with records only when OK, records of the type
 * asked, lower-case MX hosts, address text that matches the family). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "net/dns_packet.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint16_t fuzz_dns_types[] = {DNS_TYPE_MX, DNS_TYPE_A, DNS_TYPE_AAAA, DNS_TYPE_TLSA,
                                          DNS_TYPE_TXT};

static void fuzz_dns_check(const struct dns_result *res, uint16_t type)
{
	if ((res->status == DNS_STATUS_OK) != (res->count > 0))
		abort();
	if (res->name == NULL || res->canonical == NULL || res->type != type)
		abort();
	for (size_t i = 0; i < res->count; i++) {
		const struct dns_record *r = &res->records[i];
		if (r->type != type)
			abort();
		if (type == DNS_TYPE_MX)
			for (const char *p = r->u.mx.host; *p != '\0'; p++)
				if (*p >= 'A' && *p <= 'Z')
					abort();
		if ((type == DNS_TYPE_A && r->u.addr.family != AF_INET) ||
		    (type == DNS_TYPE_AAAA && r->u.addr.family != AF_INET6))
			abort();
		if (type == DNS_TYPE_TXT && r->u.txt.text[r->u.txt.len] != '\0')
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy so that a read past the end is caught */
	unsigned char *pkt = malloc(size > 0 ? size : 1);
	memcpy(pkt, data, size);
	struct arena *arena = arena_new(4096);
	for (size_t t = 0; t < sizeof(fuzz_dns_types) / sizeof(fuzz_dns_types[0]); t++) {
		struct dns_result res;
		const char *error;
		if (dns_packet_parse(pkt, size, fuzz_dns_types[t], arena, &res, &error) == 0)
			fuzz_dns_check(&res, fuzz_dns_types[t]);
		arena_reset(arena);
	}
	arena_free(&arena);
	free(pkt);
	return 0;
}
