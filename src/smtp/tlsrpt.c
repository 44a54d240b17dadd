/* TLS-RPT (RFC 8460) as pure functions (see tlsrpt.h): the TXT record, the JSON report,
 * gzip, the report mail. */
#include "smtp/tlsrpt.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/date.h"
#include "core/base64.h"
#include "core/json.h"
#include "core/gzip.h"
#include "core/xmalloc.h"
#include "smtp/report_mail.h"
#include "core/banned.h"

/* ---- the TXT record (RFC 8460 §3) ---- */

static bool tlsrpt_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static int tlsrpt_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int tlsrpt_mailto_address(const char *uri, char *out, size_t n)
{
	if (strncasecmp(uri, "mailto:", 7) != 0 || n == 0)
		return -1;
	const char *p = uri + 7;
	size_t o = 0, at = 0, ats = 0;
	for (; *p != '\0' && *p != '?'; p++) {
		int c = (unsigned char)*p;
		if (c == '%') {
			int hi = tlsrpt_hex(p[1]), lo = hi < 0 ? -1 : tlsrpt_hex(p[2]);
			if (lo < 0)
				return -1;
			c = hi * 16 + lo;
			p += 2;
		}
		if (c <= 0x20 || c >= 0x7f || strchr("<>,;\"\\()[]", c) != NULL)
			return -1;
		if (c == '@') {
			at = o;
			ats++;
		}
		if (o + 1 >= n)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	/* One address: local@domain, both parts present. */
	return ats == 1 && at > 0 && at + 1 < o ? 0 : -1;
}

int tlsrpt_https_parse(const char *uri, char host[TLSRPT_HOST_MAX], int *port_r, char *path,
                       size_t path_size)
{
	if (strncasecmp(uri, "https://", 8) != 0 || path_size < 2)
		return -1;
	const char *p = uri + 8;
	size_t n = strcspn(p, ":/?#");
	if (n == 0 || n >= TLSRPT_HOST_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.'))
			return -1; /* userinfo ('@'), '[' literals, anything else */
		host[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	host[n] = '\0';
	p += n;
	int port = 443;
	if (*p == ':') {
		port = 0;
		p++;
		size_t digits = 0;
		for (; *p >= '0' && *p <= '9' && digits < 6; p++, digits++)
			port = port * 10 + (*p - '0');
		if (digits == 0 || port < 1 || port > 65535)
			return -1;
	}
	if (*p != '\0' && *p != '/' && *p != '?')
		return -1;
	const char *rest = *p == '\0' ? "/" : p;
	size_t len = strlen(rest);
	if (len + (rest[0] == '?' ? 1 : 0) >= path_size || strchr(rest, '#') != NULL)
		return -1;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)rest[i] <= 0x20 || (unsigned char)rest[i] >= 0x7f)
			return -1;
	snprintf(path, path_size, "%s%s", rest[0] == '?' ? "/" : "", rest);
	*port_r = port;
	return 0;
}

/* A report URI we can use: mailto: with one address, or https:// with a host. */
static bool tlsrpt_uri_usable(const char *uri)
{
	char addr[TLSRPT_URI_MAX], host[TLSRPT_HOST_MAX];
	int port;
	if (strncasecmp(uri, "mailto:", 7) == 0)
		return tlsrpt_mailto_address(uri, addr, sizeof(addr)) == 0;
	return tlsrpt_https_parse(uri, host, &port, addr, sizeof(addr)) == 0;
}

/* rua=URI *(*WSP "," *WSP URI): keep the usable ones. */
static void tlsrpt_parse_rua(const char *v, size_t len, struct tlsrpt_record *rec)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && tlsrpt_wsp(v[i]))
			i++;
		size_t start = i;
		while (i < len && v[i] != ',')
			i++;
		size_t end = i;
		while (end > start && tlsrpt_wsp(v[end - 1]))
			end--;
		i++; /* the comma */
		bool ok = end > start && end - start < TLSRPT_URI_MAX;
		for (size_t k = start; ok && k < end; k++)
			ok = (unsigned char)v[k] > 0x20 && (unsigned char)v[k] < 0x7f;
		if (!ok || rec->rua_count == TLSRPT_RUA_MAX)
			continue;
		char *dst = rec->rua[rec->rua_count];
		memcpy(dst, v + start, end - start);
		dst[end - start] = '\0';
		if (tlsrpt_uri_usable(dst))
			rec->rua_count++;
	}
}

/* tlsrpt-ext-name "=" tlsrpt-ext-value (§3): true when well formed. */
static bool tlsrpt_field_ok(const char *f, size_t len, size_t *eq_r)
{
	size_t i = 0;
	while (i < len && i < 32 &&
	       ((f[i] >= 'a' && f[i] <= 'z') || (f[i] >= 'A' && f[i] <= 'Z') ||
	        (f[i] >= '0' && f[i] <= '9') || (i > 0 && strchr("_-.", f[i]) != NULL)))
		i++;
	if (i == 0 || i >= len || f[i] != '=')
		return false;
	*eq_r = i;
	return true;
}

int tlsrpt_parse_txt(const char *txt, size_t len, struct tlsrpt_record *rec)
{
	static const char version[] = "v=TLSRPTv1";
	memset(rec, 0, sizeof(*rec));
	if (len < sizeof(version) - 1 || memcmp(txt, version, sizeof(version) - 1) != 0)
		return 0;
	size_t i = sizeof(version) - 1;
	bool rua = false;
	for (;;) {
		while (i < len && tlsrpt_wsp(txt[i]))
			i++;
		if (i == len)
			break;
		if (txt[i] != ';')
			return 0; /* "v=TLSRPTv10", or junk after a field */
		i++;
		while (i < len && tlsrpt_wsp(txt[i]))
			i++;
		if (i == len)
			break; /* a trailing delimiter is allowed */
		size_t start = i, eq;
		while (i < len && txt[i] != ';')
			i++;
		size_t end = i;
		while (end > start && tlsrpt_wsp(txt[end - 1]))
			end--;
		if (!tlsrpt_field_ok(txt + start, end - start, &eq))
			return 0;
		const char *v = txt + start + eq + 1;
		size_t vlen = end - start - eq - 1;
		if (eq == 3 && memcmp(txt + start, "rua", 3) == 0) {
			if (rua || vlen == 0)
				return 0; /* one rua field, not empty */
			rua = true;
			tlsrpt_parse_rua(v, vlen, rec);
			continue;
		}
		/* An extension: 1*(%x21-3A / %x3C / %x3E-7E) */
		if (vlen == 0)
			return 0;
		for (size_t k = 0; k < vlen; k++) {
			unsigned char c = (unsigned char)v[k];
			if (c <= 0x20 || c >= 0x7f || c == '=')
				return 0;
		}
	}
	return rua && rec->rua_count > 0 ? 1 : 0;
}

/* ---- days ---- */

void tlsrpt_day_text(int64_t day, char out[11])
{
	time_t t = (time_t)(day * 86400);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

int tlsrpt_day_parse(const char *text, int64_t *day_r)
{
	int y, m, d;
	char tail;
	if (strlen(text) != 10 || sscanf(text, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 ||
	    y < 1970 || m < 1 || m > 12 || d < 1 || d > 31)
		return -1;
	struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
	time_t t = timegm(&tm);
	char check[11];
	tlsrpt_day_text((int64_t)t / 86400, check);
	if (t < 0 || strcmp(check, text) != 0)
		return -1; /* 2026-02-30 */
	*day_r = (int64_t)t / 86400;
	return 0;
}

/* ---- the report (RFC 8460 §4.4) ---- */

/* Append the '\n'-separated parts of s as JSON strings, comma-separated (*first: nothing
 * written yet). */
static int tlsrpt_lines(struct buf *out, const char *s, bool *first)
{
	while (*s != '\0') {
		size_t n = strcspn(s, "\n");
		char *part = xstrndup(s, n);
		int r = buf_puts(out, *first ? "" : ", ");
		*first = false;
		r = r < 0 ? -1 : json_string(out, part);
		free(part);
		if (r < 0)
			return -1;
		s += n + (s[n] == '\n');
	}
	return 0;
}

static bool tlsrpt_same_policy(const struct store_tlsrpt_row *a, const struct store_tlsrpt_row *b)
{
	return strcmp(a->policy_type, b->policy_type) == 0 &&
	       strcmp(a->policy_string, b->policy_string) == 0;
}

static bool tlsrpt_same_detail(const struct store_tlsrpt_row *a, const struct store_tlsrpt_row *b)
{
	return strcmp(a->result_type, b->result_type) == 0 &&
	       strcmp(a->sending_ip, b->sending_ip) == 0 &&
	       strcmp(a->receiving_mx, b->receiving_mx) == 0 &&
	       strcmp(a->receiving_ip, b->receiving_ip) == 0;
}

/* Is the mx text of row k already in an earlier row of the same policy? */
static bool tlsrpt_mx_seen(const struct store_tlsrpt_row *rows, size_t k)
{
	for (size_t j = 0; j < k; j++)
		if (tlsrpt_same_policy(&rows[j], &rows[k]) &&
		    strcmp(rows[j].mx_host, rows[k].mx_host) == 0)
			return true;
	return false;
}

static int tlsrpt_policy_head(const struct store_tlsrpt_row *rows, size_t count, size_t i,
                              struct buf *out)
{
	const struct store_tlsrpt_row *p = &rows[i];
	bool first = true;
	if (buf_puts(out, "{\"policy\": {") < 0 || json_key(out, "policy-type") < 0 ||
	    json_string(out, p->policy_type) < 0)
		return -1;
	if (p->policy_string[0] != '\0' &&
	    (buf_puts(out, ", ") < 0 || json_key(out, "policy-string") < 0 ||
	     buf_puts(out, "[") < 0 || tlsrpt_lines(out, p->policy_string, &first) < 0 ||
	     buf_puts(out, "]") < 0))
		return -1;
	if (buf_puts(out, ", ") < 0 || json_key(out, "policy-domain") < 0 ||
	    json_string(out, p->policy_domain) < 0)
		return -1;
	first = true;
	for (size_t k = i; k < count; k++) {
		if (!tlsrpt_same_policy(p, &rows[k]) || rows[k].mx_host[0] == '\0' ||
		    tlsrpt_mx_seen(rows, k))
			continue;
		if (first && (buf_puts(out, ", ") < 0 || json_key(out, "mx-host") < 0 ||
		              buf_puts(out, "[") < 0))
			return -1;
		if (tlsrpt_lines(out, rows[k].mx_host, &first) < 0)
			return -1;
	}
	if (!first && buf_puts(out, "]") < 0)
		return -1;
	return buf_puts(out, "}");
}

static int tlsrpt_detail(const struct store_tlsrpt_row *d, uint64_t sessions, struct buf *out)
{
	if (buf_puts(out, "{") < 0 || json_key(out, "result-type") < 0 ||
	    json_string(out, d->result_type) < 0)
		return -1;
	const struct {
		const char *key, *value;
	} opt[] = {{"sending-mta-ip", d->sending_ip},
	           {"receiving-mx-hostname", d->receiving_mx},
	           {"receiving-ip", d->receiving_ip}};
	for (size_t i = 0; i < 3; i++)
		if (opt[i].value[0] != '\0' &&
		    (buf_puts(out, ", ") < 0 || json_key(out, opt[i].key) < 0 ||
		     json_string(out, opt[i].value) < 0))
			return -1;
	if (buf_puts(out, ", ") < 0 || json_key(out, "failed-session-count") < 0 ||
	    json_uint(out, sessions) < 0)
		return -1;
	return buf_puts(out, "}");
}

/* One policy object: the policy, its summary and failure details. */
static int tlsrpt_policy(const struct store_tlsrpt_row *rows, size_t count, size_t i,
                         struct buf *out)
{
	uint64_t ok = 0, failed = 0;
	for (size_t k = i; k < count; k++) {
		if (!tlsrpt_same_policy(&rows[i], &rows[k]))
			continue;
		if (rows[k].result_type[0] == '\0')
			ok += rows[k].sessions;
		else
			failed += rows[k].sessions;
	}
	if (tlsrpt_policy_head(rows, count, i, out) < 0 ||
	    buf_printf(out,
	               ", \"summary\": {\"total-successful-session-count\": %llu, "
	               "\"total-failure-session-count\": %llu}",
	               (unsigned long long)ok, (unsigned long long)failed) < 0)
		return -1;
	if (failed == 0)
		return buf_puts(out, "}");
	if (buf_puts(out, ", \"failure-details\": [") < 0)
		return -1;
	bool first = true;
	for (size_t k = i; k < count; k++) {
		const struct store_tlsrpt_row *d = &rows[k];
		if (!tlsrpt_same_policy(&rows[i], d) || d->result_type[0] == '\0')
			continue;
		bool seen = false;
		for (size_t j = i; j < k && !seen; j++)
			seen = tlsrpt_same_policy(&rows[i], &rows[j]) &&
			       tlsrpt_same_detail(&rows[j], d);
		if (seen)
			continue;
		uint64_t n = 0;
		for (size_t j = k; j < count; j++)
			if (tlsrpt_same_policy(&rows[i], &rows[j]) &&
			    tlsrpt_same_detail(&rows[j], d))
				n += rows[j].sessions;
		if (buf_puts(out, first ? "" : ", ") < 0 || tlsrpt_detail(d, n, out) < 0)
			return -1;
		first = false;
	}
	return buf_puts(out, "]}");
}

int tlsrpt_report_json(const struct tlsrpt_report_meta *meta, const struct store_tlsrpt_row *rows,
                       size_t count, struct buf *out)
{
	char day[11];
	tlsrpt_day_text(meta->day, day);
	if (buf_puts(out, "{") < 0 || json_key(out, "organization-name") < 0 ||
	    json_string(out, meta->organization) < 0 ||
	    buf_printf(out,
	               ", \"date-range\": {\"start-datetime\": \"%sT00:00:00Z\", "
	               "\"end-datetime\": \"%sT23:59:59Z\"}, ",
	               day, day) < 0 ||
	    json_key(out, "contact-info") < 0 || json_string(out, meta->contact) < 0 ||
	    buf_puts(out, ", ") < 0 || json_key(out, "report-id") < 0 ||
	    json_string(out, meta->report_id) < 0 || buf_puts(out, ", \"policies\": [") < 0)
		return -1;
	bool first = true;
	for (size_t i = 0; i < count; i++) {
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = tlsrpt_same_policy(&rows[j], &rows[i]);
		if (seen)
			continue;
		if (buf_puts(out, first ? "" : ", ") < 0 || tlsrpt_policy(rows, count, i, out) < 0)
			return -1;
		first = false;
	}
	return buf_puts(out, "]}");
}

/* ---- gzip and the mail ---- */

int tlsrpt_gzip(const void *data, size_t len, struct buf *out)
{
	return len > TLSRPT_REPORT_MAX ? -1 : gzip_compress(data, len, out);
}

int tlsrpt_mail_build(const struct tlsrpt_mail *m, struct buf *out)
{
	char boundary[80];
	snprintf(boundary, sizeof(boundary), "=_tlsrpt_%lld_%lld", (long long)m->day,
	         (long long)m->now);
	int64_t begin = m->day * 86400;
	struct buf name; /* as long as the submitter is */
	buf_init(&name, out->max);
	if (buf_printf(&name, "%s!%s!%lld!%lld.json.gz", m->submitter, m->domain, (long long)begin,
	               (long long)(begin + 86399)) < 0) {
		buf_free(&name);
		return -1;
	}
	struct report_mail r = {.from = m->from,
	                        .to = m->to,
	                        .domain = m->domain,
	                        .submitter = m->submitter,
	                        .report_id = m->report_id,
	                        .now = m->now,
	                        .field_prefix = "TLS-Report",
	                        .type = "multipart/report; report-type=\"tlsrpt\"",
	                        .boundary = boundary,
	                        .what = "an aggregate TLS report (RFC 8460)",
	                        .part_type = "application/tlsrpt+gzip",
	                        .filename = buf_cstr(&name),
	                        .gz = m->gz,
	                        .gz_len = m->gz_len};
	int ret = report_mail_build(&r, out);
	buf_free(&name);
	return ret;
}
