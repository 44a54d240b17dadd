/* Outbound routing decisions (see outbound_route.h). */
#include "smtp/outbound_route.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/banned.h"

/* Insertion sort by preference (a handful of records), then shuffle each run of equal
 * preference (Fisher-Yates), as RFC 5321 §5.1 asks for load spreading. */
static void outbound_route_sort(struct outbound_mx *a, size_t n, uint32_t (*rnd)(void *),
                                void *rnd_ctx)
{
	for (size_t i = 1; i < n; i++) {
		struct outbound_mx x = a[i];
		size_t j = i;
		for (; j > 0 && a[j - 1].preference > x.preference; j--)
			a[j] = a[j - 1];
		a[j] = x;
	}
	for (size_t start = 0; start < n;) {
		size_t end = start + 1;
		while (end < n && a[end].preference == a[start].preference)
			end++;
		for (size_t i = end - 1; i > start; i--) {
			size_t k = start + rnd(rnd_ctx) % (i - start + 1);
			struct outbound_mx t = a[i];
			a[i] = a[k];
			a[k] = t;
		}
		start = end;
	}
}

enum outbound_route_verdict outbound_route_order(const struct outbound_mx *mx, size_t n, size_t max,
                                                 const char *self, uint32_t (*rnd)(void *),
                                                 void *rnd_ctx, struct outbound_mx *out,
                                                 size_t *count_r)
{
	size_t c = 0;
	bool null_mx = false;
	for (size_t i = 0; i < n; i++) {
		if (mx[i].host[0] == '\0')
			null_mx = true;
		else
			out[c++] = mx[i];
	}
	*count_r = 0;
	if (c == 0)
		return null_mx ? OUTBOUND_ROUTE_NULL_MX : OUTBOUND_ROUTE_OK;
	outbound_route_sort(out, c, rnd, rnd_ctx);
	if (self != NULL) {
		for (size_t i = 0; i < c; i++) {
			if (strcasecmp(out[i].host, self) != 0)
				continue;
			uint16_t ours = out[i].preference;
			size_t keep = 0;
			while (keep < c && out[keep].preference < ours)
				keep++;
			if (keep == 0)
				return OUTBOUND_ROUTE_LOOPS_BACK;
			c = keep;
			break;
		}
	}
	*count_r = max > 0 && c > max ? max : c;
	return OUTBOUND_ROUTE_OK;
}

unsigned outbound_route_backoff(unsigned attempts, unsigned min, unsigned max)
{
	unsigned d = min;
	for (unsigned i = 1; i < attempts && d < max; i++)
		d = d > max / 2 ? max : d * 2;
	return d > max ? max : d;
}

static const struct {
	const char *name;
	enum outbound_tls_mode mode;
} outbound_route_modes[] = {{"starttls", OUTBOUND_TLS_STARTTLS},
                            {"require-tls", OUTBOUND_TLS_REQUIRE},
                            {"tls", OUTBOUND_TLS_IMPLICIT},
                            {"none", OUTBOUND_TLS_NONE}};

static int outbound_route_port(const char *s, size_t len, int *port_r)
{
	unsigned v = 0;
	if (len == 0 || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*port_r = (int)v;
	return 0;
}

static bool outbound_route_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_'))
			return false;
	}
	return true;
}

int outbound_route_parse_hop(const char *s, size_t len, struct outbound_hop *hop)
{
	*hop = (struct outbound_hop){.tls = OUTBOUND_TLS_STARTTLS};
	const char *slash = memchr(s, '/', len);
	if (slash != NULL) {
		size_t mlen = len - (size_t)(slash + 1 - s);
		bool found = false;
		for (size_t i = 0;
		     i < sizeof(outbound_route_modes) / sizeof(outbound_route_modes[0]); i++) {
			if (strlen(outbound_route_modes[i].name) == mlen &&
			    strncasecmp(slash + 1, outbound_route_modes[i].name, mlen) == 0) {
				hop->tls = outbound_route_modes[i].mode;
				found = true;
			}
		}
		if (!found)
			return -1;
		len = (size_t)(slash - s);
	}
	const char *host = s, *rest;
	size_t hlen;
	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (close == NULL)
			return -1;
		host = s + 1;
		hlen = (size_t)(close - host);
		rest = close + 1;
	} else {
		const char *colon = memchr(s, ':', len);
		hlen = colon != NULL ? (size_t)(colon - s) : len;
		rest = s + hlen;
	}
	size_t rlen = len - (size_t)(rest - s);
	if (rlen > 0 && (rest[0] != ':' || outbound_route_port(rest + 1, rlen - 1, &hop->port) < 0))
		return -1;
	if (hlen == 0 || hlen >= sizeof(hop->host))
		return -1;
	memcpy(hop->host, host, hlen);
	hop->host[hlen] = '\0';
	unsigned char addr[16];
	hop->numeric =
	    inet_pton(AF_INET, hop->host, addr) == 1 || inet_pton(AF_INET6, hop->host, addr) == 1;
	if (!hop->numeric && (host != s || !outbound_route_name_ok(host, hlen)))
		return -1;
	return 0;
}

/* The next item of a space/comma separated list: its start and length, or 0 at the end. */
static size_t outbound_route_item(const char **p)
{
	while (**p == ' ' || **p == ',' || **p == '\t')
		(*p)++;
	size_t n = strcspn(*p, " ,\t");
	return n;
}

int outbound_route_lookup(const char *routes, const char *domain, struct outbound_hop *hop)
{
	const char *p = routes;
	size_t dlen = strlen(domain);
	int found = 0;
	for (size_t n; (n = outbound_route_item(&p)) > 0; p += n) {
		const char *eq = memchr(p, '=', n);
		struct outbound_hop h;
		if (eq == NULL || eq == p ||
		    outbound_route_parse_hop(eq + 1, n - (size_t)(eq + 1 - p), &h) < 0)
			return -1;
		if (found == 0 && (size_t)(eq - p) == dlen && strncasecmp(p, domain, dlen) == 0) {
			*hop = h;
			found = 1;
		}
	}
	return found;
}

bool outbound_route_listed(const char *list, const char *domain)
{
	const char *p = list;
	size_t dlen = strlen(domain);
	for (size_t n; (n = outbound_route_item(&p)) > 0; p += n)
		if (n == dlen && strncasecmp(p, domain, dlen) == 0)
			return true;
	return false;
}
