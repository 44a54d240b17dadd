/* MTA-STS parsing and matching (see mta_sts.h). */
#include "smtp/mta_sts.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/banned.h"

static bool mta_sts_wsp(char c)
{
	return c == ' ' || c == '\t';
}

int mta_sts_parse_txt(const char *txt, size_t len, char id_r[MTA_STS_ID_MAX])
{
	/* "v=STSv1" first, then "; id=..." among other fields (RFC 8461 §3.1). */
	if (len < 7 || memcmp(txt, "v=STSv1", 7) != 0)
		return 0;
	size_t i = 7;
	bool have_id = false;
	while (i < len) {
		while (i < len && mta_sts_wsp(txt[i]))
			i++;
		if (i == len)
			break;
		if (txt[i] != ';')
			return 0;
		i++;
		while (i < len && mta_sts_wsp(txt[i]))
			i++;
		size_t start = i;
		while (i < len && txt[i] != ';' && !mta_sts_wsp(txt[i]))
			i++;
		if (i - start > 3 && memcmp(txt + start, "id=", 3) == 0) {
			size_t n = i - start - 3;
			if (n == 0 || n >= MTA_STS_ID_MAX)
				return 0;
			for (size_t k = 0; k < n; k++) {
				char c = txt[start + 3 + k];
				if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				      (c >= '0' && c <= '9')))
					return 0;
			}
			memcpy(id_r, txt + start + 3, n);
			id_r[n] = '\0';
			have_id = true;
		}
	}
	return have_id ? 1 : 0;
}

/* The header line "name: value" starting at p (ending before end), case-insensitive name. */
static bool mta_sts_header_is(const char *p, const char *end, const char *name,
                              const char **value_r)
{
	size_t n = strlen(name);
	if ((size_t)(end - p) <= n || strncasecmp(p, name, n) != 0 || p[n] != ':')
		return false;
	p += n + 1;
	while (p < end && mta_sts_wsp(*p))
		p++;
	*value_r = p;
	return true;
}

int mta_sts_parse_http(const unsigned char *resp, size_t len, const unsigned char **body_r,
                       size_t *body_len_r, const char **error_r)
{
	const char *s = (const char *)resp;
	const char *end = s + len;
	/* Status line: "HTTP/1.x 200 ..." */
	if (len < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[8] != ' ') {
		*error_r = "not an HTTP response";
		return -1;
	}
	if (memcmp(s + 9, "200", 3) != 0 || (len > 12 && s[12] != ' ' && s[12] != '\r')) {
		*error_r = s[9] == '3' ? "HTTP redirect (not followed, RFC 8461 §3.3)"
		                       : "HTTP status is not 200";
		return -1;
	}
	bool text_plain = false;
	const char *p = memchr(s, '\n', len);
	while (p != NULL) {
		p++;
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			break;
		const char *line_end = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
		if (line_end == p) {
			/* The blank line: the body follows. */
			size_t body_len = (size_t)(end - (eol + 1));
			if (!text_plain) {
				*error_r = "Content-Type is not text/plain";
				return -1;
			}
			if (body_len > MTA_STS_BODY_MAX) {
				*error_r = "policy larger than 64 KiB";
				return -1;
			}
			*body_r = (const unsigned char *)eol + 1;
			*body_len_r = body_len;
			return 0;
		}
		const char *v;
		if (mta_sts_header_is(p, line_end, "Content-Type", &v))
			text_plain =
			    (size_t)(line_end - v) >= 10 && strncasecmp(v, "text/plain", 10) == 0 &&
			    ((size_t)(line_end - v) == 10 || v[10] == ';' || mta_sts_wsp(v[10]));
		p = eol;
	}
	*error_r = "HTTP header not complete";
	return -1;
}

static int mta_sts_policy_line(struct mta_sts_policy *pol, const char *k, size_t klen,
                               const char *v, size_t vlen, bool *version_r, bool *age_r,
                               const char **error_r)
{
	if (klen == 7 && memcmp(k, "version", 7) == 0) {
		*version_r = vlen == 5 && memcmp(v, "STSv1", 5) == 0;
	} else if (klen == 4 && memcmp(k, "mode", 4) == 0) {
		if (vlen == 7 && memcmp(v, "enforce", 7) == 0)
			pol->mode = MTA_STS_MODE_ENFORCE;
		else if (vlen == 7 && memcmp(v, "testing", 7) == 0)
			pol->mode = MTA_STS_MODE_TESTING;
		else if (vlen == 4 && memcmp(v, "none", 4) == 0)
			pol->mode = MTA_STS_MODE_NONE;
		else {
			*error_r = "bad mode";
			return -1;
		}
	} else if (klen == 7 && memcmp(k, "max_age", 7) == 0) {
		unsigned long age = 0;
		if (vlen == 0 || vlen > 10) {
			*error_r = "bad max_age";
			return -1;
		}
		for (size_t i = 0; i < vlen; i++) {
			if (v[i] < '0' || v[i] > '9') {
				*error_r = "bad max_age";
				return -1;
			}
			age = age * 10 + (unsigned long)(v[i] - '0');
		}
		pol->max_age = age > MTA_STS_MAX_AGE_MAX ? MTA_STS_MAX_AGE_MAX : (unsigned)age;
		*age_r = true;
	} else if (klen == 2 && memcmp(k, "mx", 2) == 0) {
		if (vlen == 0 || vlen >= sizeof(pol->mx[0])) {
			*error_r = "bad mx";
			return -1;
		}
		if (pol->mx_count < MTA_STS_MX_MAX) {
			char *d = pol->mx[pol->mx_count++];
			for (size_t i = 0; i < vlen; i++)
				d[i] = v[i] >= 'A' && v[i] <= 'Z' ? (char)(v[i] - 'A' + 'a') : v[i];
			d[vlen] = '\0';
			if (vlen > 1 && d[vlen - 1] == '.')
				d[vlen - 1] = '\0';
		}
	}
	return 0;
}

int mta_sts_parse_policy(const char *text, size_t len, struct mta_sts_policy *pol,
                         const char **error_r)
{
	*pol = (struct mta_sts_policy){.mode = MTA_STS_MODE_NONE};
	bool version = false, age = false, mode = false;
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = eol != NULL ? eol : end;
		const char *le = line_end > p && line_end[-1] == '\r' ? line_end - 1 : line_end;
		size_t line_len = le > p ? (size_t)(le - p) : 0;
		const char *colon = line_len > 0 ? memchr(p, ':', line_len) : NULL;
		if (colon != NULL) {
			const char *v = colon + 1;
			while (v < le && mta_sts_wsp(*v))
				v++;
			const char *ve = le;
			while (ve > v && mta_sts_wsp(ve[-1]))
				ve--;
			size_t klen = (size_t)(colon - p);
			if (klen == 4 && memcmp(p, "mode", 4) == 0)
				mode = true;
			if (mta_sts_policy_line(pol, p, klen, v, (size_t)(ve - v), &version, &age,
			                        error_r) < 0)
				return -1;
		} else if (le > p) {
			*error_r = "a line without ':'";
			return -1;
		}
		p = eol != NULL ? eol + 1 : end;
	}
	if (!version || !mode || !age) {
		*error_r = !version ? "no version: STSv1" : !mode ? "no mode" : "no max_age";
		return -1;
	}
	if (pol->mode != MTA_STS_MODE_NONE && pol->mx_count == 0) {
		*error_r = "no mx";
		return -1;
	}
	return 0;
}

bool mta_sts_mx_allowed(const struct mta_sts_policy *pol, const char *host)
{
	for (size_t i = 0; i < pol->mx_count; i++) {
		const char *pat = pol->mx[i];
		if (pat[0] == '*' && pat[1] == '.') {
			/* One label, not empty, then exactly the rest. */
			const char *dot = strchr(host, '.');
			if (dot != NULL && dot > host && strcasecmp(dot + 1, pat + 2) == 0)
				return true;
		} else if (strcasecmp(host, pat) == 0) {
			return true;
		}
	}
	return false;
}
