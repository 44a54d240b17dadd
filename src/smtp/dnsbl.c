/* DNS block and allow lists (see dnsbl.h). */
#include "smtp/dnsbl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/banned.h"

static void dnsbl_bit(unsigned char set[32], unsigned v)
{
	set[v / 8] |= (unsigned char)(1u << (v % 8));
}

static bool dnsbl_has(const unsigned char set[32], unsigned v)
{
	return (set[v / 8] >> (v % 8)) & 1u;
}

/* A number 0..255 at *p; advances *p. -1 when there is none. */
static int dnsbl_number(const char **p)
{
	const char *s = *p;
	unsigned v = 0;
	size_t digits = 0;
	while (*s >= '0' && *s <= '9' && digits < 4) {
		v = v * 10 + (unsigned)(*s++ - '0');
		digits++;
	}
	if (digits == 0 || digits > 3 || v > 255)
		return -1;
	*p = s;
	return (int)v;
}

/* One octet pattern at *p: N, [N..M] or [N;M;...] (the elements may be ranges). */
static int dnsbl_octet(const char **p, unsigned char set[32])
{
	if (**p != '[') {
		int v = dnsbl_number(p);
		if (v < 0)
			return -1;
		dnsbl_bit(set, (unsigned)v);
		return 0;
	}
	(*p)++;
	for (;;) {
		int lo = dnsbl_number(p), hi = lo;
		if (lo < 0)
			return -1;
		if ((*p)[0] == '.' && (*p)[1] == '.') {
			*p += 2;
			hi = dnsbl_number(p);
			if (hi < lo)
				return -1;
		}
		for (int v = lo; v <= hi; v++)
			dnsbl_bit(set, (unsigned)v);
		if (**p == ']') {
			(*p)++;
			return 0;
		}
		if (**p != ';')
			return -1;
		(*p)++;
	}
}

/* One "zone[=filter]" of len octets. */
static int dnsbl_zone_parse(const char *s, size_t len, struct dnsbl_zone *z, const char **error_r)
{
	memset(z, 0, sizeof(*z));
	const char *eq = memchr(s, '=', len);
	size_t nlen = eq != NULL ? (size_t)(eq - s) : len;
	while (nlen > 0 && s[nlen - 1] == '.')
		nlen--;
	if (nlen == 0 || nlen >= DNSBL_NAME_MAX - 80) { /* room for 64 nibbles and dots */
		*error_r = "a DNS list zone is empty or too long";
		return -1;
	}
	for (size_t i = 0; i < nlen; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_')) {
			*error_r = "a DNS list zone is not a domain name";
			return -1;
		}
		z->name[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	if (eq == NULL) {
		dnsbl_bit(z->octets[0], 127);
		for (int o = 1; o < 4; o++)
			memset(z->octets[o], 0xff, sizeof(z->octets[o]));
		return 0;
	}
	char filter[128];
	size_t flen = len - nlen - 1;
	if (flen >= sizeof(filter)) {
		*error_r = "a DNS list filter is too long";
		return -1;
	}
	memcpy(filter, eq + 1, flen);
	filter[flen] = '\0';
	const char *p = filter;
	z->filtered = true;
	for (int o = 0; o < 4; o++) {
		if ((o > 0 && *p++ != '.') || dnsbl_octet(&p, z->octets[o]) < 0) {
			*error_r = "a DNS list filter is not like 127.0.0.[2..11]";
			return -1;
		}
	}
	if (*p != '\0') {
		*error_r = "a DNS list filter is not like 127.0.0.[2..11]";
		return -1;
	}
	return 0;
}

int dnsbl_zones_parse(const char *text, struct dnsbl_zone *zones, size_t max, size_t *n_r,
                      const char **error_r)
{
	size_t n = 0;
	const char *p = text;
	for (;;) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		size_t len = strcspn(p, " ,\t");
		if (n == max) {
			*error_r = "too many DNS list zones";
			return -1;
		}
		if (dnsbl_zone_parse(p, len, &zones[n], error_r) < 0)
			return -1;
		n++;
		p += len;
	}
	*n_r = n;
	return 0;
}

int dnsbl_query_name(int family, const unsigned char ip[16], const struct dnsbl_zone *zone,
                     char *out, size_t out_len)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	char rev[80];
	size_t r = 0;
	if (family == AF_INET6 && memcmp(ip, mapped, 12) != 0) {
		static const char hex[] = "0123456789abcdef";
		for (int i = 15; i >= 0; i--) {
			rev[r++] = hex[ip[i] & 0xf];
			rev[r++] = '.';
			rev[r++] = hex[ip[i] >> 4];
			rev[r++] = '.';
		}
		rev[r] = '\0';
	} else {
		const unsigned char *v4 = family == AF_INET6 ? ip + 12 : ip;
		snprintf(rev, sizeof(rev), "%u.%u.%u.%u.", v4[3], v4[2], v4[1], v4[0]);
	}
	int n = snprintf(out, out_len, "%s%s", rev, zone->name);
	return n < 0 || (size_t)n >= out_len ? -1 : 0;
}

enum dnsbl_verdict dnsbl_verdict(const struct dnsbl_zone *zone, const unsigned char (*addrs)[4],
                                 size_t n)
{
	bool refused = false;
	for (size_t i = 0; i < n; i++) {
		const unsigned char *a = addrs[i];
		if (a[0] == 127 && a[1] == 255 && a[2] == 255) {
			refused = true;
			continue;
		}
		bool match = true;
		for (int o = 0; o < 4 && match; o++)
			match = dnsbl_has(zone->octets[o], a[o]);
		if (match)
			return DNSBL_LISTED;
	}
	return refused ? DNSBL_REFUSED : DNSBL_NOT_LISTED;
}
