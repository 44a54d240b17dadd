/* DMARC aggregate reports: rua= lists, the external destination record, the XML report,
 * its file name and mail (see dmarc_report.h). */
#include "smtp/dmarc_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base64.h"
#include "core/date.h"
#include "core/gzip.h"
#include "core/xmalloc.h"
#include "smtp/report_mail.h"
#include "core/banned.h"

/* ---- rua= ---- */

static bool rua_space(char c)
{
	return c == ' ' || c == '\t';
}

/* "!size[unit]" (§6.4) of s[0..n): octets, or 0 when malformed (no limit). */
static uint64_t rua_size(const char *s, size_t n)
{
	uint64_t v = 0;
	size_t i = 0;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == 0)
		return 0;
	unsigned shift = 0;
	if (i < n) {
		switch (s[i] | 0x20) {
		case 'k':
			shift = 10;
			break;
		case 'm':
			shift = 20;
			break;
		case 'g':
			shift = 30;
			break;
		case 't':
			shift = 40;
			break;
		default:
			return 0;
		}
		if (i + 1 != n)
			return 0;
	}
	return v > (UINT64_MAX >> shift) ? 0 : v << shift;
}

static int rua_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One URI (trimmed) into r: 0, or -1 when it is not a usable mailto: URI. */
static int rua_one(const char *s, size_t n, struct dmarc_report_rua *r)
{
	if (n < 7 || strncasecmp(s, "mailto:", 7) != 0)
		return -1;
	s += 7;
	n -= 7;
	/* §6.4: '!' is not allowed in the URI itself (it is percent-encoded there). */
	const char *bang = memchr(s, '!', n);
	size_t an = bang != NULL ? (size_t)(bang - s) : n;
	r->max_size = bang != NULL ? rua_size(bang + 1, n - an - 1) : 0;
	const char *q = memchr(s, '?', an);
	if (q != NULL)
		an = (size_t)(q - s);
	size_t k = 0;
	size_t at = 0;
	bool seen_at = false;
	for (size_t i = 0; i < an; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			int hi = i + 2 < an ? rua_hex(s[i + 1]) : -1;
			int lo = i + 2 < an ? rua_hex(s[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
		}
		if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == ',' || c == '"' ||
		    k + 1 >= sizeof(r->address))
			return -1;
		if (c == '@') {
			if (seen_at || k == 0)
				return -1; /* one address, one '@', a local part */
			seen_at = true;
			at = k;
		}
		r->address[k++] = (char)c;
	}
	r->address[k] = '\0';
	if (at == 0 || at + 1 >= k)
		return -1;
	return 0;
}

size_t dmarc_report_rua_parse(const char *rua, struct dmarc_report_rua *out, size_t max)
{
	size_t count = 0;
	const char *p = rua;
	while (*p != '\0' && count < max) {
		const char *end = strchr(p, ',');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
		const char *s = p;
		while (n > 0 && rua_space(*s)) {
			s++;
			n--;
		}
		while (n > 0 && rua_space(s[n - 1]))
			n--;
		if (rua_one(s, n, &out[count]) == 0)
			count++;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return count;
}

bool dmarc_report_txt_authorizes(const char *text, size_t len)
{
	size_t i = 0;
	if (len < 1 || text[i] != 'v')
		return false;
	i++;
	while (i < len && rua_space(text[i]))
		i++;
	if (i >= len || text[i++] != '=')
		return false;
	while (i < len && rua_space(text[i]))
		i++;
	if (len - i < 6 || memcmp(text + i, "DMARC1", 6) != 0)
		return false;
	i += 6;
	while (i < len && rua_space(text[i]))
		i++;
	return i == len || text[i] == ';';
}

/* ---- the XML document ---- */

/* Text of s[0..n) escaped into out. */
static int xml_text(struct buf *out, const char *s, size_t n)
{
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '&':
			r = buf_puts(out, "&amp;");
			break;
		case '<':
			r = buf_puts(out, "&lt;");
			break;
		case '>':
			r = buf_puts(out, "&gt;");
			break;
		case '"':
			r = buf_puts(out, "&quot;");
			break;
		case '\'':
			r = buf_puts(out, "&apos;");
			break;
		default:
			r = buf_append(out, c < 0x20 || c == 0x7f ? "?" : (const char *)&s[i], 1);
		}
	}
	return r < 0 ? -1 : 0;
}

/* <name>text</name> on its own line, indented. */
static int xml_el(struct buf *out, int indent, const char *name, const char *s, size_t n)
{
	if (buf_printf(out, "%*s<%s>", indent, "", name) < 0 || xml_text(out, s, n) < 0 ||
	    buf_printf(out, "</%s>\n", name) < 0)
		return -1;
	return 0;
}

static int xml_str(struct buf *out, int indent, const char *name, const char *s)
{
	return xml_el(out, indent, name, s, strlen(s));
}

/* The n-th (0-based) field of s split by sep, as a pointer and a length; "" when absent. */
static const char *field(const char *s, size_t slen, char sep, unsigned n, size_t *len_r)
{
	const char *p = s, *end = s + slen;
	for (; n > 0; n--) {
		const char *q = memchr(p, sep, (size_t)(end - p));
		if (q == NULL) {
			*len_r = 0;
			return "";
		}
		p = q + 1;
	}
	const char *q = memchr(p, sep, (size_t)(end - p));
	*len_r = q != NULL ? (size_t)(q - p) : (size_t)(end - p);
	return p;
}

static int xml_field(struct buf *out, int indent, const char *name, const char *s, size_t slen,
                     char sep, unsigned n)
{
	size_t len;
	const char *f = field(s, slen, sep, n, &len);
	return xml_el(out, indent, name, f, len);
}

static int xml_head(const struct dmarc_report_meta *meta, const struct store_dmarc_row *row,
                    struct buf *out)
{
	const char *pol = row->r.policy;
	size_t pl = strlen(pol);
	int r = buf_puts(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n"
	                      "  <version>1.0</version>\n  <report_metadata>\n");
	r |= xml_str(out, 4, "org_name", meta->org_name);
	r |= xml_str(out, 4, "email", meta->email);
	r |= xml_str(out, 4, "report_id", meta->report_id);
	r |= buf_printf(out,
	                "    <date_range>\n      <begin>%lld</begin>\n      <end>%lld</end>\n"
	                "    </date_range>\n  </report_metadata>\n  <policy_published>\n",
	                (long long)meta->begin, (long long)meta->end);
	r |= xml_str(out, 4, "domain", row->r.policy_domain);
	r |= xml_field(out, 4, "adkim", pol, pl, ' ', 3);
	r |= xml_field(out, 4, "aspf", pol, pl, ' ', 4);
	r |= xml_field(out, 4, "p", pol, pl, ' ', 0);
	r |= xml_field(out, 4, "sp", pol, pl, ' ', 1);
	r |= xml_field(out, 4, "pct", pol, pl, ' ', 2);
	r |= buf_puts(out, "  </policy_published>\n");
	return r != 0 ? -1 : 0;
}

/* One auth_results entry "DOMAIN\tX\tRESULT" as <kind><domain><xname><result>. */
static int xml_auth(struct buf *out, const char *kind, const char *xname, const char *s, size_t n)
{
	int r = buf_printf(out, "      <%s>\n", kind);
	r |= xml_field(out, 8, "domain", s, n, '\t', 0);
	size_t len;
	(void)field(s, n, '\t', 1, &len);
	if (len > 0)
		r |= xml_field(out, 8, xname, s, n, '\t', 1);
	r |= xml_field(out, 8, "result", s, n, '\t', 2);
	r |= buf_printf(out, "      </%s>\n", kind);
	return r != 0 ? -1 : 0;
}

static int xml_record(const struct store_dmarc_row *row, struct buf *out)
{
	const struct store_dmarc_record *x = &row->r;
	int r = buf_puts(out, "  <record>\n    <row>\n");
	r |= xml_str(out, 6, "source_ip", x->source_ip);
	r |= buf_printf(out, "      <count>%llu</count>\n      <policy_evaluated>\n",
	                (unsigned long long)row->count);
	r |= xml_str(out, 8, "disposition", x->disposition);
	r |= xml_str(out, 8, "dkim", x->dkim_aligned);
	r |= xml_str(out, 8, "spf", x->spf_aligned);
	if (x->reason[0] != '\0') {
		r |= buf_puts(out, "        <reason>\n");
		r |= xml_str(out, 10, "type", x->reason);
		r |= buf_puts(out, "        </reason>\n");
	}
	r |= buf_puts(out, "      </policy_evaluated>\n    </row>\n    <identifiers>\n");
	r |= xml_str(out, 6, "envelope_from", x->envelope_from);
	r |= xml_str(out, 6, "header_from", x->header_from);
	r |= buf_puts(out, "    </identifiers>\n    <auth_results>\n");
	for (const char *p = x->dkim; *p != '\0' && r == 0;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		r |= xml_auth(out, "dkim", "selector", p, n);
		p += n + (nl != NULL ? 1 : 0);
	}
	r |= xml_auth(out, "spf", "scope", x->spf, strlen(x->spf));
	r |= buf_puts(out, "    </auth_results>\n  </record>\n");
	return r != 0 ? -1 : 0;
}

int dmarc_report_xml(const struct dmarc_report_meta *meta, const struct store_dmarc_row *rows,
                     size_t count, struct buf *out)
{
	if (count == 0 || xml_head(meta, &rows[0], out) < 0)
		return -1;
	for (size_t i = 0; i < count; i++)
		if (xml_record(&rows[i], out) < 0)
			return -1;
	return buf_puts(out, "</feedback>\n") < 0 ? -1 : 0;
}

int dmarc_report_gzip(const void *data, size_t len, struct buf *out)
{
	return len > DMARC_REPORT_XML_MAX ? -1 : gzip_compress(data, len, out);
}

void dmarc_report_filename(const char *receiver, const char *domain, int64_t begin, int64_t end,
                           char *out, size_t n)
{
	snprintf(out, n, "%s!%s!%lld!%lld.xml.gz", receiver, domain, (long long)begin,
	         (long long)end);
}

/* ---- the mail ---- */

int dmarc_report_mail_build(const struct dmarc_report_mail *m, struct buf *out)
{
	char boundary[80], name[600], type[640];
	snprintf(boundary, sizeof(boundary), "=_dmarc_%lld_%lld", (long long)m->begin,
	         (long long)m->now);
	dmarc_report_filename(m->submitter, m->domain, m->begin, m->end, name, sizeof(name));
	snprintf(type, sizeof(type), "application/gzip;\r\n\tname=\"%s\"", name);
	struct report_mail r = {.from = m->from,
	                        .to = m->to,
	                        .domain = m->domain,
	                        .submitter = m->submitter,
	                        .report_id = m->report_id,
	                        .now = m->now,
	                        .type = "multipart/mixed",
	                        .boundary = boundary,
	                        .what = "a DMARC aggregate report (RFC 7489)",
	                        .part_type = type,
	                        .filename = name,
	                        .gz = m->gz,
	                        .gz_len = m->gz_len};
	return report_mail_build(&r, out);
}
