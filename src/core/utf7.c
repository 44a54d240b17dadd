/* Modified UTF-7 (RFC 3501 §5.1.3) both ways. */
#include "core/utf7.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/banned.h"

static const char utf7_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* Decode one UTF-8 sequence at s; returns its length (0 = invalid) and the code point. */
static size_t utf7_utf8_decode(const unsigned char *s, uint32_t *cp_r)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp, min;
	if (c < 0x80) {
		*cp_r = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		n = 2, cp = c & 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3, cp = c & 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return n;
}

/* A shifted run being written: UTF-16 units go out as modified base64 as they come, so a
 * run of any length is one "&...-" sequence (canonical: RFC 3501 §5.1.3 permits no null
 * shift "-&" between two runs). */
struct utf7_run {
	uint32_t bits;
	int nbits;
	bool open;
};

static int utf7_run_unit(struct buf *out, struct utf7_run *r, uint16_t unit)
{
	if (!r->open && buf_append(out, "&", 1) < 0)
		return -1;
	r->open = true;
	r->bits = (r->bits << 16) | unit;
	r->nbits += 16;
	while (r->nbits >= 6) {
		r->nbits -= 6;
		if (buf_append(out, &utf7_b64[(r->bits >> r->nbits) & 0x3f], 1) < 0)
			return -1;
	}
	r->bits &= (1u << r->nbits) - 1;
	return 0;
}

/* Close an open run: the leftover bits zero-padded, then "-". */
static int utf7_run_close(struct buf *out, struct utf7_run *r)
{
	if (!r->open)
		return 0;
	if (r->nbits > 0 && buf_append(out, &utf7_b64[(r->bits << (6 - r->nbits)) & 0x3f], 1) < 0)
		return -1;
	*r = (struct utf7_run){0};
	return buf_append(out, "-", 1);
}

int utf7_from_utf8(const char *utf8, struct buf *out)
{
	const unsigned char *s = (const unsigned char *)utf8;
	struct utf7_run run = {0};
	while (*s != '\0') {
		uint32_t cp;
		size_t n = utf7_utf8_decode(s, &cp);
		if (n == 0)
			return -1;
		s += n;
		if (cp >= 0x20 && cp <= 0x7e) {
			if (utf7_run_close(out, &run) < 0 ||
			    buf_append(out, cp == '&' ? "&-" : (const char *)&s[-1],
			               cp == '&' ? 2 : 1) < 0)
				return -1;
			continue;
		}
		if (cp >= 0x10000) {
			cp -= 0x10000;
			if (utf7_run_unit(out, &run, (uint16_t)(0xd800 | (cp >> 10))) < 0 ||
			    utf7_run_unit(out, &run, (uint16_t)(0xdc00 | (cp & 0x3ff))) < 0)
				return -1;
		} else if (utf7_run_unit(out, &run, (uint16_t)cp) < 0) {
			return -1;
		}
	}
	return utf7_run_close(out, &run);
}

static int utf7_put_utf8(struct buf *out, uint32_t cp)
{
	unsigned char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (unsigned char)cp, n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | (cp >> 6)),
		b[1] = (unsigned char)(0x80 | (cp & 0x3f)), n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | (cp >> 12));
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | (cp >> 18));
		b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return buf_append(out, b, n);
}

/* Decode one shifted run s[0..len) (between "&" and "-"). */
static int utf7_decode_run(const char *s, size_t len, struct buf *out)
{
	uint32_t bits = 0, high = 0;
	int nbits = 0;
	for (size_t i = 0; i < len; i++) {
		const char *p = memchr(utf7_b64, s[i], 64);
		if (p == NULL || s[i] == '\0')
			return -1;
		bits = (bits << 6) | (uint32_t)(p - utf7_b64);
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		uint32_t unit = (bits >> nbits) & 0xffff;
		if (high != 0) {
			if (unit < 0xdc00 || unit > 0xdfff)
				return -1;
			if (utf7_put_utf8(out,
			                  0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00)) < 0)
				return -1;
			high = 0;
		} else if (unit >= 0xd800 && unit <= 0xdbff) {
			high = unit;
		} else if ((unit >= 0xdc00 && unit <= 0xdfff) || (unit >= 0x20 && unit <= 0x7e) ||
		           unit == 0) {
			/* lone low surrogate, printable ASCII that must not be encoded, or NUL,
			 * which no name (a C string) can hold */
			return -1;
		} else if (utf7_put_utf8(out, unit) < 0) {
			return -1;
		}
	}
	/* Leftover bits must be zero padding shorter than one base64 character. */
	if (high != 0 || nbits >= 6 || (bits & ((1u << nbits) - 1)) != 0)
		return -1;
	return 0;
}

int utf7_to_utf8(const char *utf7, struct buf *out)
{
	const char *s = utf7;
	while (*s != '\0') {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c > 0x7e)
			return -1;
		if (c != '&') {
			if (buf_append(out, s, 1) < 0)
				return -1;
			s++;
			continue;
		}
		const char *end = strchr(s + 1, '-');
		if (end == NULL)
			return -1;
		if (end == s + 1) {
			if (buf_append(out, "&", 1) < 0)
				return -1;
		} else if (utf7_decode_run(s + 1, (size_t)(end - s - 1), out) < 0 ||
		           (end[1] == '&' && end[2] != '-')) {
			return -1; /* a null shift "-&" joins two runs: not canonical (§5.1.3) */
		}
		s = end + 1;
	}
	return 0;
}
