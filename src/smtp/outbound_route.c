/* Outbound routing decisions (see outbound_route.h). */
#include "smtp/outbound_route.h"

#include <stdbool.h>
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
