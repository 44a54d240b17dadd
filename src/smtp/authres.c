/* Authentication-Results (RFC 8601): the field we write and the incoming ones we remove. */
#include "smtp/authres.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"
#include "core/banned.h"

#define AUTHRES_FIELD "Authentication-Results"

/* RFC 2045 §5.1 token: printable ASCII except SP and tspecials. */
static bool authres_token_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static bool authres_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool authres_is_token(const char *v)
{
	if (*v == '\0')
		return false;
	for (; *v != '\0'; v++)
		if (!authres_token_char((unsigned char)*v))
			return false;
	return true;
}

/* [local-part] "@" domain-name (RFC 8601 §2.2 pvalue), with a dot-atom local part and a
 * domain of letters, digits, '-' and inner dots. */
static bool authres_is_addr(const char *v)
{
	const char *at = strrchr(v, '@');
	if (at == NULL)
		return false;
	bool dot_ok = false; /* a dot may follow an atext octet only */
	for (const char *p = v; p < at; p++) {
		if (*p == '.' && dot_ok)
			dot_ok = false;
		else if (authres_atext((unsigned char)*p))
			dot_ok = true;
		else
			return false;
	}
	if (at > v && !dot_ok)
		return false;
	const char *d = at + 1;
	if (*d == '\0' || *d == '.' || d[strlen(d) - 1] == '.' || strstr(d, "..") != NULL)
		return false;
	for (; *d != '\0'; d++) {
		unsigned char c = (unsigned char)*d;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.'))
			return false;
	}
	return true;
}

int authres_append_value(struct buf *b, const char *value)
{
	if (authres_is_token(value) || authres_is_addr(value))
		return buf_puts(b, value);
	int r = buf_puts(b, "\"");
	for (const char *p = value; *p != '\0' && r == 0; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			r = buf_append(b, esc, 2);
		} else if (c < 0x20 || c == 0x7f) {
			r = buf_puts(b, "?");
		} else {
			r = buf_append(b, p, 1);
		}
	}
	return r != 0 ? r : buf_puts(b, "\"");
}

int authres_format(struct buf *b, const char *authserv_id, const struct authres_method *m,
                   size_t count)
{
	int r = buf_puts(b, AUTHRES_FIELD ": ");
	r |= authres_append_value(b, authserv_id);
	if (count == 0)
		r |= buf_puts(b, "; none");
	for (size_t i = 0; i < count && r == 0; i++) {
		r |= buf_printf(b, ";\r\n\t%s=%s", m[i].method, m[i].result);
		if (m[i].reason != NULL) {
			r |= buf_puts(b, " reason=");
			r |= authres_append_value(b, m[i].reason);
		}
		for (size_t j = 0; j < m[i].prop_count && j < AUTHRES_PROPS_MAX; j++) {
			r |= buf_printf(b, " %s=", m[i].props[j].name);
			r |= authres_append_value(b, m[i].props[j].value);
		}
	}
	r |= buf_puts(b, "\r\n");
	return r != 0 ? -1 : 0;
}

static unsigned char authres_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Skip white space, line breaks and (nested) comments. */
static size_t authres_skip_cfws(const unsigned char *p, size_t len, size_t i)
{
	unsigned depth = 0;
	for (; i < len; i++) {
		if (depth > 0 && p[i] == '\\' && i + 1 < len)
			i++;
		else if (p[i] == '(')
			depth++;
		else if (p[i] == ')' && depth > 0)
			depth--;
		else if (depth == 0 && p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			break;
	}
	return i;
}

bool authres_claims(const unsigned char *body, size_t len, const char *authserv_id)
{
	size_t i = authres_skip_cfws(body, len, 0);
	size_t idlen = strlen(authserv_id);
	if (i < len && body[i] == '"') {
		/* quoted-string: compare its content, quoted-pairs unescaped */
		size_t k = 0;
		for (i++; i < len && body[i] != '"'; i++) {
			if (body[i] == '\\' && i + 1 < len)
				i++;
			if (k >= idlen ||
			    authres_lower(body[i]) != authres_lower((unsigned char)authserv_id[k]))
				return false;
			k++;
		}
		return i < len && k == idlen;
	}
	size_t start = i;
	while (i < len && authres_token_char(body[i]))
		i++;
	return i - start == idlen && idlen > 0 &&
	       strncasecmp((const char *)body + start, authserv_id, idlen) == 0;
}

/* The end of the line that starts at i (after its LF), or len. */
static size_t authres_line_end(const unsigned char *msg, size_t len, size_t i)
{
	const unsigned char *nl = memchr(msg + i, '\n', len - i);
	return nl == NULL ? len : (size_t)(nl - msg) + 1;
}

size_t authres_find_claims(const unsigned char *msg, size_t len, const char *authserv_id,
                           struct authres_span **spans_r, size_t *header_len_r)
{
	static const size_t name_len = sizeof(AUTHRES_FIELD) - 1;
	size_t count = 0, cap = 0;
	*spans_r = NULL;
	size_t i = 0;
	while (i < len) {
		if (msg[i] == '\n' || (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n')) {
			*header_len_r = authres_line_end(msg, len, i);
			return count;
		}
		/* one field: its first line, then continuation lines starting with SP or HT */
		size_t end = authres_line_end(msg, len, i);
		while (end < len && (msg[end] == ' ' || msg[end] == '\t'))
			end = authres_line_end(msg, len, end);
		size_t n = i + name_len;
		if (n <= end && strncasecmp((const char *)msg + i, AUTHRES_FIELD, name_len) == 0) {
			while (n < end && (msg[n] == ' ' || msg[n] == '\t'))
				n++;
			if (n < end && msg[n] == ':' &&
			    authres_claims(msg + n + 1, end - n - 1, authserv_id)) {
				if (count == cap) {
					cap = cap == 0 ? 4 : cap * 2;
					*spans_r = xrealloc(*spans_r, cap * sizeof(**spans_r));
				}
				(*spans_r)[count++] = (struct authres_span){i, end - i};
			}
		}
		i = end;
	}
	*header_len_r = len;
	return count;
}
