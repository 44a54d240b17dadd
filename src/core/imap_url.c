/* IMAP URL parsing (RFC 5092 §11 grammar, the message-part subset; RFC 4467 §3 for
 * ;EXPIRE= and ;URLAUTH=). */
#include "core/imap_url.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/banned.h"

static int imap_url_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Characters a URL may carry as they are (RFC 3986 unreserved, sub-delims, ":" "@" "/"),
 * less the ones that end a component here (";" "?" "#"). */
static bool imap_url_char(char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("-._~!$'()*+,=&:@/", c) != NULL;
}

/* Decode [p, p+n) (percent-escapes) into arena; NULL when an escape is malformed, a
 * character is not allowed, the result is empty or holds NUL, or slash is false and a "/"
 * occurs unescaped. */
static char *imap_url_decode(struct arena *a, const char *p, size_t n, bool slash)
{
	if (n == 0)
		return NULL;
	char *out = arena_alloc(a, n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '%') {
			int h = i + 2 < n ? imap_url_hex(p[i + 1]) : -1;
			int l = h >= 0 ? imap_url_hex(p[i + 2]) : -1;
			if (h < 0 || l < 0 || (h == 0 && l == 0))
				return NULL;
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else if (!imap_url_char(p[i]) || (!slash && p[i] == '/')) {
			return NULL;
		} else {
			out[o++] = p[i];
		}
	}
	out[o] = '\0';
	return out;
}

/* nz-number / number of RFC 9051 at *p (advanced), checked before every digit. */
static bool imap_url_number(const char **p, uint64_t max, bool nz, uint64_t *v_r)
{
	const char *s = *p;
	uint64_t v = 0;
	if (*s < '0' || *s > '9' || (nz && *s == '0'))
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (max - (uint64_t)(*s - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*v_r = v;
	return true;
}

static bool imap_url_prefix(const char **p, const char *prefix)
{
	size_t n = strlen(prefix);
	if (strncasecmp(*p, prefix, n) != 0)
		return false;
	*p += n;
	return true;
}

/* Exactly n digits. */
static bool imap_url_digits(const char **p, int n, int *v_r)
{
	int v = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (**p < '0' || **p > '9')
			return false;
		v = v * 10 + (**p - '0');
	}
	*v_r = v;
	return true;
}

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM). */
static bool imap_url_datetime(const char **p, int64_t *t_r)
{
	int y, mo, d, h, mi, s, zh = 0, zm = 0, sign = 1;
	const char *c = *p;
	if (!imap_url_digits(&c, 4, &y) || *c++ != '-' || !imap_url_digits(&c, 2, &mo) ||
	    *c++ != '-' || !imap_url_digits(&c, 2, &d) || (*c != 'T' && *c != 't'))
		return false;
	c++;
	if (!imap_url_digits(&c, 2, &h) || *c++ != ':' || !imap_url_digits(&c, 2, &mi) ||
	    *c++ != ':' || !imap_url_digits(&c, 2, &s))
		return false;
	if (*c == '.') {
		c++;
		if (*c < '0' || *c > '9')
			return false;
		while (*c >= '0' && *c <= '9')
			c++;
	}
	if (*c == 'Z' || *c == 'z') {
		c++;
	} else if (*c == '+' || *c == '-') {
		sign = *c++ == '-' ? -1 : 1;
		if (!imap_url_digits(&c, 2, &zh) || *c++ != ':' || !imap_url_digits(&c, 2, &zm))
			return false;
	} else {
		return false;
	}
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60 ||
	    zh > 23 || zm > 59)
		return false;
	struct tm tm = {.tm_year = y - 1900,
	                .tm_mon = mo - 1,
	                .tm_mday = d,
	                .tm_hour = h,
	                .tm_min = mi,
	                .tm_sec = s > 59 ? 59 : s};
	*t_r = (int64_t)timegm(&tm) - sign * ((int64_t)zh * 3600 + (int64_t)zm * 60);
	*p = c;
	return true;
}

/* "imap://" iserver: user, host, port; *p is left at the "/" of the path. */
static const char *imap_url_server(struct arena *a, const char **p, struct imap_url *u)
{
	const char *s = *p;
	const char *end = strchr(s, '/');
	if (end == NULL)
		return "No path in the URL";
	const char *at = memchr(s, '@', (size_t)(end - s));
	if (at != NULL) {
		const char *semi = memchr(s, ';', (size_t)(at - s));
		const char *user_end = semi != NULL ? semi : at;
		if (semi != NULL && strncasecmp(semi, ";AUTH=", 6) != 0)
			return "Invalid user information in the URL";
		if (user_end > s &&
		    (u->user = imap_url_decode(a, s, (size_t)(user_end - s), false)) == NULL)
			return "Invalid user in the URL";
		s = at + 1;
	}
	const char *colon = memchr(s, ':', (size_t)(end - s));
	const char *host_end = colon != NULL ? colon : end;
	if (host_end == s)
		return "No host in the URL";
	for (const char *c = s; c < host_end; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '-' || *c == '.' || *c == '[' || *c == ']'))
			return "Invalid host in the URL";
	u->host = arena_strndup(a, s, (size_t)(host_end - s));
	if (colon != NULL) {
		const char *c = colon + 1;
		uint64_t port;
		if (!imap_url_number(&c, 65535, true, &port) || c != end)
			return "Invalid port in the URL";
		u->port = (unsigned)port;
	}
	*p = end;
	return NULL;
}

/* The path: "/" mailbox [;UIDVALIDITY=n] "/;UID=" n ... */
static const char *imap_url_path(struct arena *a, const char *url, const char *p,
                                 struct imap_url *u)
{
	if (*p++ != '/')
		return "The URL path must start with /";
	const char *semi = strchr(p, ';');
	if (semi == NULL)
		return "The URL names no message (;UID=)";
	const char *mbox_end = semi;
	bool validity = strncasecmp(semi, ";UIDVALIDITY=", 13) == 0;
	if (!validity) {
		if (semi == p || semi[-1] != '/')
			return "Invalid mailbox in the URL";
		mbox_end = semi - 1;
	}
	if ((u->mailbox = imap_url_decode(a, p, (size_t)(mbox_end - p), true)) == NULL)
		return "Invalid mailbox in the URL";
	p = semi;
	uint64_t v;
	if (validity) {
		p += 13;
		if (!imap_url_number(&p, UINT32_MAX, true, &v))
			return "Invalid UIDVALIDITY in the URL";
		u->uidvalidity = (uint32_t)v;
		if (*p++ != '/')
			return "The URL names no message (;UID=)";
	}
	if (!imap_url_prefix(&p, ";UID=") || !imap_url_number(&p, UINT32_MAX, true, &v))
		return "The URL names no message (;UID=)";
	u->uid = (uint32_t)v;
	if (imap_url_prefix(&p, "/;SECTION=")) {
		const char *e = p;
		while (*e != '\0' && *e != '/' && *e != ';')
			e++;
		char *sec = imap_url_decode(a, p, (size_t)(e - p), false);
		if (sec == NULL)
			return "Invalid section in the URL";
		for (char *c = sec; *c != '\0'; c++)
			if (*c >= 'a' && *c <= 'z')
				*c = (char)(*c - 32);
		u->section = sec;
		p = e;
	}
	if (imap_url_prefix(&p, "/;PARTIAL=")) {
		if (!imap_url_number(&p, UINT32_MAX, false, &u->partial_off))
			return "Invalid PARTIAL in the URL";
		if (*p == '.') {
			p++;
			if (!imap_url_number(&p, UINT32_MAX, true, &u->partial_len))
				return "Invalid PARTIAL in the URL";
		}
		u->partial = true;
	}
	if (imap_url_prefix(&p, ";EXPIRE=")) {
		if (!imap_url_datetime(&p, &u->expire_time))
			return "Invalid EXPIRE in the URL";
		u->expire = true;
	}
	if (imap_url_prefix(&p, ";URLAUTH=")) {
		/* access [":" mechanism ":" token]: GENURLAUTH takes the rump alone */
		const char *c1 = strchr(p, ':');
		if (c1 == NULL)
			c1 = p + strlen(p);
		if ((u->access = imap_url_decode(a, p, (size_t)(c1 - p), false)) == NULL)
			return "Invalid URLAUTH access in the URL";
		u->rump_len = (size_t)(c1 - url);
		p = c1;
		if (*c1 == ':') {
			const char *c2 = strchr(c1 + 1, ':');
			if (c2 == NULL || c2 == c1 + 1 || c2[1] == '\0')
				return "Invalid URLAUTH in the URL";
			for (const char *c = c1 + 1; c < c2; c++)
				if (!imap_url_char(*c) || *c == ':' || *c == '/')
					return "Invalid URLAUTH mechanism in the URL";
			u->mech = arena_strndup(a, c1 + 1, (size_t)(c2 - c1 - 1));
			for (p = c2 + 1; *p != '\0'; p++)
				if (imap_url_hex(*p) < 0)
					return "Invalid URLAUTH token in the URL";
			u->token = arena_strdup(a, c2 + 1);
		}
	}
	if (*p != '\0')
		return "Unexpected text at the end of the URL";
	return NULL;
}

int imap_url_parse(struct arena *arena, const char *url, struct imap_url *url_r,
                   const char **error_r)
{
	memset(url_r, 0, sizeof(*url_r));
	const char *error = NULL;
	if (strlen(url) > IMAP_URL_MAX)
		error = "URL too long";
	const char *p = url;
	if (error == NULL && strncasecmp(p, "imap://", 7) == 0) {
		p += 7;
		error = imap_url_server(arena, &p, url_r);
	} else if (error == NULL && p[0] != '/') {
		error = "Not an IMAP URL";
	}
	if (error == NULL)
		error = imap_url_path(arena, url, p, url_r);
	if (error == NULL && url_r->user != NULL) {
		url_r->owner = url_r->user;
		if (strchr(url_r->user, '@') == NULL && url_r->host != NULL) {
			size_t n = strlen(url_r->user) + strlen(url_r->host) + 2;
			char *o = arena_alloc(arena, n);
			snprintf(o, n, "%s@%s", url_r->user, url_r->host);
			url_r->owner = o;
		}
	}
	if (error != NULL) {
		*error_r = error;
		return -1;
	}
	return 0;
}
