/* RFC 5321 §4.1.2 path and mailbox parsing (see address.h). Every scan is bounded by the
 * caller's length, which is capped first (RFC 5321 §4.5.3.1), so no input makes the parser
 * do more than a few hundred octets of work; UTF-8 follows RFC 6531 and RFC 3629. */
#include "mime/address.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "core/banned.h"

#define ADDRESS_LABEL_MAX 63
#define ADDRESS_DOMAIN_NAME_MAX 253
/* A bare mailbox is a path without its two brackets. */
#define ADDRESS_MAILBOX_MAX (ADDRESS_PATH_MAX - 2)
/* "IPv6:" + the longest textual IPv6 address (INET6_ADDRSTRLEN - 1). */
#define ADDRESS_IPV6_TEXT_MAX 45

/* Length of the valid UTF-8 sequence that starts with the non-ASCII octet s[0], or 0 when it
 * is not valid: no overlong forms, no surrogates, nothing above U+10FFFF (RFC 3629 §4). */
static size_t address_utf8_len(const unsigned char *s, size_t len)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xBF;
	size_t n;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++) {
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	}
	return n;
}

static bool address_is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* atext of RFC 5322 §3.2.3 (ASCII part; UTF-8 is handled by the callers). */
static bool address_is_atext(unsigned char c)
{
	return address_is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Scan a Dot-string (RFC 5321 §4.1.2, atext extended with UTF-8 by RFC 6531) from *pos; it
 * ends at the first octet that cannot continue it. Length is not checked here. Returns 0
 * with *pos advanced, or -1 with *error_r. */
static int address_scan_dot_string(const char *s, size_t len, size_t *pos, bool *utf8_r,
                                   const char **error_r)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t p = *pos;
	bool need_atom = true; /* at the start or just after a dot */
	while (p < len) {
		if (u[p] == '.') {
			if (need_atom) {
				*error_r = p == *pos ? "local part starts with a dot"
				                     : "local part has consecutive dots";
				return -1;
			}
			need_atom = true;
			p++;
		} else if (u[p] >= 0x80) {
			size_t n = address_utf8_len(u + p, len - p);
			if (n == 0) {
				*error_r = "invalid UTF-8 in local part";
				return -1;
			}
			*utf8_r = true;
			need_atom = false;
			p += n;
		} else if (address_is_atext(u[p])) {
			need_atom = false;
			p++;
		} else {
			break;
		}
	}
	if (p == *pos) {
		*error_r = "empty local part";
		return -1;
	}
	if (need_atom) {
		*error_r = "local part ends with a dot";
		return -1;
	}
	*pos = p;
	return 0;
}

/* Append n octets to the unquoted local part being built in out[ADDRESS_LOCAL_MAX]. */
static int address_local_put(char *out, size_t *o, const char *p, size_t n, const char **error_r)
{
	if (n > ADDRESS_LOCAL_MAX - *o) {
		*error_r = "local part too long";
		return -1;
	}
	memcpy(out + *o, p, n);
	*o += n;
	return 0;
}

/* Scan a Quoted-string (RFC 5321 §4.1.2: qtextSMTP / quoted-pairSMTP, plus UTF-8 per RFC 6531)
 * starting at the DQUOTE at *pos. Stores the unquoted text in the arena. Returns 0 or -1. */
static int address_scan_quoted(struct arena *arena, const char *s, size_t len, size_t *pos,
                               struct address *addr, const char **error_r)
{
	const unsigned char *u = (const unsigned char *)s;
	char out[ADDRESS_LOCAL_MAX];
	size_t o = 0, p = *pos + 1;
	for (;;) {
		if (p >= len) {
			*error_r = "unterminated quoted string";
			return -1;
		}
		if (p - *pos >= ADDRESS_LOCAL_MAX) {
			*error_r = "local part too long";
			return -1;
		}
		size_t n = 1;
		const char *src = s + p;
		if (u[p] == '"') {
			p++;
			break;
		} else if (u[p] == '\\') {
			if (p + 1 >= len || u[p + 1] < 32 || u[p + 1] > 126) {
				*error_r = "invalid quoted-pair in local part";
				return -1;
			}
			src++;
			p++;
		} else if (u[p] >= 0x80) {
			n = address_utf8_len(u + p, len - p);
			if (n == 0) {
				*error_r = "invalid UTF-8 in local part";
				return -1;
			}
			addr->utf8 = true;
		} else if (u[p] < 32 || u[p] == 127) {
			*error_r = "control character in quoted local part";
			return -1;
		}
		if (address_local_put(out, &o, src, n, error_r) < 0)
			return -1;
		p += n;
	}
	if (p - *pos > ADDRESS_LOCAL_MAX) {
		*error_r = "local part too long";
		return -1;
	}
	addr->local = arena_strndup(arena, out, o);
	addr->quoted = true;
	*pos = p;
	return 0;
}

/* Check a domain name: LDH labels (RFC 5321 §4.1.2 sub-domain) or U-labels, 1..63 octets per
 * label, at most max octets in all. Returns NULL when valid, else the reason. */
static const char *address_domain_check(const char *s, size_t len, size_t max, bool *utf8_r)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t p = 0;
	if (len == 0)
		return "empty domain";
	if (len > max)
		return "domain too long";
	for (;;) {
		size_t start = p;
		while (p < len && u[p] != '.') {
			if (u[p] >= 0x80) {
				size_t n = address_utf8_len(u + p, len - p);
				if (n == 0)
					return "invalid UTF-8 in domain";
				*utf8_r = true;
				p += n;
			} else if (address_is_alnum(u[p]) || u[p] == '-') {
				p++;
			} else {
				return "invalid character in domain";
			}
		}
		if (p == start)
			return "empty label in domain";
		if (p - start > ADDRESS_LABEL_MAX)
			return "domain label too long";
		if (u[start] == '-' || u[p - 1] == '-')
			return "domain label starts or ends with a hyphen";
		if (p == len)
			return NULL;
		p++; /* the dot; a trailing dot gives an empty label above */
	}
}

/* IPv4-address-literal of RFC 5321 §4.1.3: four Snum (1*3DIGIT, 0..255) joined by dots. */
static bool address_ipv4_valid(const char *s, size_t len)
{
	size_t p = 0;
	for (int part = 0; part < 4; part++) {
		if (part > 0) {
			if (p >= len || s[p] != '.')
				return false;
			p++;
		}
		unsigned value = 0, digits = 0;
		while (p < len && s[p] >= '0' && s[p] <= '9' && digits < 3) {
			value = value * 10 + (unsigned)(s[p] - '0');
			digits++;
			p++;
		}
		if (digits == 0 || value > 255)
			return false;
	}
	return p == len;
}

/* Address literal "[...]" (RFC 5321 §4.1.3): IPv4 or "IPv6:" (checked with inet_pton);
 * General-address-literal is refused. Returns NULL when valid, else the reason. */
static const char *address_literal_check(const char *s, size_t len)
{
	if (len < 2 || s[len - 1] != ']')
		return "unterminated address literal";
	const char *in = s + 1;
	size_t n = len - 2;
	if (n >= 5 && strncasecmp(in, "IPv6:", 5) == 0) {
		char text[ADDRESS_IPV6_TEXT_MAX + 1];
		struct in6_addr a6;
		if (n - 5 > ADDRESS_IPV6_TEXT_MAX || memchr(in + 5, '\0', n - 5) != NULL)
			return "invalid IPv6 address literal";
		memcpy(text, in + 5, n - 5);
		text[n - 5] = '\0';
		if (inet_pton(AF_INET6, text, &a6) != 1)
			return "invalid IPv6 address literal";
		return NULL;
	}
	if (address_ipv4_valid(in, n))
		return NULL;
	if (memchr(in, ':', n) != NULL)
		return "unsupported address literal";
	return "invalid IPv4 address literal";
}

/* Parse the domain (all of s[0..len)) into addr->domain. */
static int address_parse_domain(struct arena *arena, const char *s, size_t len,
                                struct address *addr, const char **error_r)
{
	if (len == 0) {
		*error_r = "missing domain";
		return -1;
	}
	if (len > ADDRESS_DOMAIN_MAX) {
		*error_r = "domain too long";
		return -1;
	}
	const char *reason = s[0] == '['
	                         ? address_literal_check(s, len)
	                         : address_domain_check(s, len, ADDRESS_DOMAIN_MAX, &addr->utf8);
	if (reason != NULL) {
		*error_r = reason;
		return -1;
	}
	char *d = arena_strndup(arena, s, len);
	if (s[0] != '[') {
		for (size_t i = 0; i < len; i++) {
			if (d[i] >= 'A' && d[i] <= 'Z')
				d[i] = (char)(d[i] - 'A' + 'a');
		}
	}
	addr->domain = d;
	return 0;
}

/* Mailbox = Local-part "@" ( Domain / address-literal ), covering all of s[0..len); or the
 * bare "postmaster" of RFC 5321 §4.1.1.3. */
static int address_parse_mailbox(struct arena *arena, const char *s, size_t len,
                                 struct address *addr, const char **error_r)
{
	size_t pos = 0;
	if (len == 0) {
		*error_r = "empty address";
		return -1;
	}
	if (len == 10 && strncasecmp(s, "postmaster", 10) == 0) {
		addr->local = arena_strdup(arena, "postmaster");
		addr->domain = arena_strdup(arena, "");
		return 0;
	}
	if (s[0] == '"') {
		if (address_scan_quoted(arena, s, len, &pos, addr, error_r) < 0)
			return -1;
	} else {
		if (address_scan_dot_string(s, len, &pos, &addr->utf8, error_r) < 0)
			return -1;
		if (pos > ADDRESS_LOCAL_MAX) {
			*error_r = "local part too long";
			return -1;
		}
		addr->local = arena_strndup(arena, s, pos);
	}
	if (pos >= len) {
		*error_r = "missing @domain";
		return -1;
	}
	if (s[pos] != '@') {
		*error_r = "invalid character in local part";
		return -1;
	}
	pos++;
	return address_parse_domain(arena, s + pos, len - pos, addr, error_r);
}

/* Skip an obsolete source route "@a,@b:" (RFC 5321 §4.1.2 A-d-l, which §C says to accept and
 * ignore) at the start of s; *pos ends after the colon. */
static int address_skip_route(const char *s, size_t len, size_t *pos, const char **error_r)
{
	size_t p = 0;
	bool utf8 = false;
	while (p < len && s[p] == '@') {
		size_t start = ++p;
		while (p < len && s[p] != ',' && s[p] != ':')
			p++;
		if (p >= len ||
		    address_domain_check(s + start, p - start, ADDRESS_DOMAIN_MAX, &utf8) != NULL)
			break;
		if (s[p++] == ':') {
			*pos = p;
			return 0;
		}
	}
	*error_r = "invalid source route";
	return -1;
}

int address_parse_path(struct arena *arena, const char *s, size_t len, bool allow_null,
                       struct address *addr_r, const char **error_r)
{
	memset(addr_r, 0, sizeof(*addr_r));
	if (len > ADDRESS_PATH_MAX) {
		*error_r = "path too long";
		return -1;
	}
	if (len < 2 || s[0] != '<' || s[len - 1] != '>') {
		*error_r = "path must be enclosed in <>";
		return -1;
	}
	const char *in = s + 1;
	size_t n = len - 2, pos = 0;
	if (n == 0) {
		if (!allow_null) {
			*error_r = "null path not allowed";
			return -1;
		}
		addr_r->null = true;
		addr_r->local = arena_strdup(arena, "");
		addr_r->domain = arena_strdup(arena, "");
		return 0;
	}
	if (in[0] == '@' && address_skip_route(in, n, &pos, error_r) < 0)
		return -1;
	if (address_parse_mailbox(arena, in + pos, n - pos, addr_r, error_r) < 0) {
		memset(addr_r, 0, sizeof(*addr_r));
		return -1;
	}
	return 0;
}

int address_parse(struct arena *arena, const char *s, size_t len, struct address *addr_r,
                  const char **error_r)
{
	memset(addr_r, 0, sizeof(*addr_r));
	if (len > ADDRESS_MAILBOX_MAX) {
		*error_r = "address too long";
		return -1;
	}
	if (address_parse_mailbox(arena, s, len, addr_r, error_r) < 0) {
		memset(addr_r, 0, sizeof(*addr_r));
		return -1;
	}
	return 0;
}

char *address_format(struct arena *arena, const struct address *addr)
{
	const char *local = addr->local != NULL ? addr->local : "";
	const char *domain = addr->domain != NULL ? addr->domain : "";
	if (addr->null)
		return arena_strdup(arena, "");
	if (domain[0] == '\0')
		return arena_strdup(arena, local);
	size_t llen = strlen(local), dlen = strlen(domain), pos = 0;
	bool utf8 = false;
	const char *reason;
	bool plain = address_scan_dot_string(local, llen, &pos, &utf8, &reason) == 0 && pos == llen;
	size_t need = llen + 1 + dlen + 1;
	if (!plain) {
		need += 2;
		for (size_t i = 0; i < llen; i++)
			need += local[i] == '"' || local[i] == '\\';
	}
	char *out = arena_alloc(arena, need), *w = out;
	if (plain) {
		memcpy(w, local, llen);
		w += llen;
	} else {
		*w++ = '"';
		for (size_t i = 0; i < llen; i++) {
			if (local[i] == '"' || local[i] == '\\')
				*w++ = '\\';
			*w++ = local[i];
		}
		*w++ = '"';
	}
	*w++ = '@';
	memcpy(w, domain, dlen);
	w[dlen] = '\0';
	return out;
}

bool address_domain_valid(const char *s, size_t len)
{
	bool utf8 = false;
	return address_domain_check(s, len, ADDRESS_DOMAIN_NAME_MAX, &utf8) == NULL;
}
