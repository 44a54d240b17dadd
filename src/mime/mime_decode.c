/* The tolerant base64 and quoted-printable decoders for MIME content (RFC 2045 §6.7, §6.8),
 * used by IMAP BINARY fetches (RFC 3516) and SEARCH. Broken input never fails: base64 ignores
 * octets outside its alphabet and ends at padding, quoted-printable keeps what it cannot
 * decode. Incremental: quoted-printable holds back the few octets whose meaning depends on
 * what follows. */
#include "mime/mime_decode.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "core/banned.h"

/* 0..63 for the base64 alphabet, -1 otherwise. */
static int mime_decode_b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* What a quoted-printable decoder holds back in hold[]. */
enum {
	QP_NORMAL, /* nothing */
	QP_WSP,    /* SP/HT: dropped if a line break or the end follows (RFC 2045 §6.7 (3)) */
	QP_WSP_CR, /* SP/HT then CR */
	QP_EQ,     /* "=" */
	QP_EQ_HEX, /* "=" and one hex digit */
	QP_EQ_WSP, /* "=" and SP/HT: a soft line break if a line break or the end follows */
	QP_EQ_CR,  /* "=", maybe SP/HT, then CR */
};

static bool mime_decode_is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static int mime_decode_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

void mime_decoder_init(struct mime_decoder *d, enum mime_encoding cte)
{
	memset(d, 0, sizeof(*d));
	d->cte = cte;
	d->state = QP_NORMAL;
}

static size_t mime_decoder_base64(struct mime_decoder *d, const unsigned char *in, size_t len,
                                  unsigned char *out)
{
	size_t n = 0;
	for (size_t i = 0; i < len && !d->ended; i++) {
		int v = mime_decode_b64_value(in[i]);
		if (v < 0) {
			d->ended = in[i] == '=';
			continue; /* RFC 2045 §6.8: outside the alphabet, ignored */
		}
		d->acc = (d->acc << 6) | (unsigned long)v;
		d->bits += 6;
		if (d->bits >= 8) {
			d->bits -= 8;
			out[n++] = (unsigned char)(d->acc >> d->bits);
			d->acc &= (1UL << d->bits) - 1;
		}
	}
	return n;
}

static size_t mime_decoder_qp_byte(struct mime_decoder *d, unsigned char c, unsigned char *out);

/* The held octets turned out to be data: the "=" stays as written, what followed it is
 * decoded again (it holds no "=", so this ends). */
static size_t mime_decoder_qp_undo(struct mime_decoder *d, unsigned char c, unsigned char *out)
{
	unsigned char again[MIME_DECODER_HOLD];
	size_t k = d->held - 1;
	memcpy(again, d->hold + 1, k);
	size_t n = 0;
	out[n++] = '=';
	d->held = 0;
	d->state = QP_NORMAL;
	for (size_t i = 0; i < k; i++)
		n += mime_decoder_qp_byte(d, again[i], out + n);
	return n + mime_decoder_qp_byte(d, c, out + n);
}

/* Hold c; a run that does not fit is let through as it is. */
static size_t mime_decoder_qp_hold(struct mime_decoder *d, unsigned char c, int state,
                                   unsigned char *out)
{
	size_t n = 0;
	if (d->held == MIME_DECODER_HOLD) {
		memcpy(out, d->hold, d->held);
		n = d->held;
		d->held = 0;
		if (state != QP_WSP) {
			state = QP_NORMAL;
			out[n++] = c;
			d->state = state;
			return n;
		}
	}
	d->hold[d->held++] = c;
	d->state = state;
	return n;
}

static size_t mime_decoder_qp_byte(struct mime_decoder *d, unsigned char c, unsigned char *out)
{
	size_t n = 0;
	switch (d->state) {
	case QP_NORMAL:
		if (mime_decode_is_wsp(c))
			return mime_decoder_qp_hold(d, c, QP_WSP, out);
		if (c == '=')
			return mime_decoder_qp_hold(d, c, QP_EQ, out);
		out[0] = d->q_word && c == '_' ? ' ' : c;
		return 1;
	case QP_WSP:
		if (mime_decode_is_wsp(c))
			return mime_decoder_qp_hold(d, c, QP_WSP, out);
		if (c == '\r')
			return mime_decoder_qp_hold(d, c, QP_WSP_CR, out);
		if (c != '\n') {
			memcpy(out, d->hold, d->held);
			n = d->held;
		}
		d->held = 0;
		d->state = QP_NORMAL;
		return n + mime_decoder_qp_byte(d, c, out + n);
	case QP_WSP_CR:
		if (c == '\n') {
			out[0] = '\r';
			out[1] = '\n';
			d->held = 0;
			d->state = QP_NORMAL;
			return 2;
		}
		memcpy(out, d->hold, d->held);
		n = d->held;
		d->held = 0;
		d->state = QP_NORMAL;
		return n + mime_decoder_qp_byte(d, c, out + n);
	case QP_EQ:
		if (mime_decode_hex(c) >= 0)
			return mime_decoder_qp_hold(d, c, QP_EQ_HEX, out);
		if (mime_decode_is_wsp(c))
			return mime_decoder_qp_hold(d, c, QP_EQ_WSP, out);
		if (c == '\r')
			return mime_decoder_qp_hold(d, c, QP_EQ_CR, out);
		if (c == '\n') {
			d->held = 0; /* soft line break */
			d->state = QP_NORMAL;
			return 0;
		}
		return mime_decoder_qp_undo(d, c, out);
	case QP_EQ_HEX:
		if (mime_decode_hex(c) < 0)
			return mime_decoder_qp_undo(d, c, out);
		out[0] = (unsigned char)(mime_decode_hex(d->hold[1]) * 16 + mime_decode_hex(c));
		d->held = 0;
		d->state = QP_NORMAL;
		return 1;
	case QP_EQ_WSP:
		if (mime_decode_is_wsp(c))
			return mime_decoder_qp_hold(d, c, QP_EQ_WSP, out);
		if (c == '\r')
			return mime_decoder_qp_hold(d, c, QP_EQ_CR, out);
		if (c == '\n') {
			d->held = 0;
			d->state = QP_NORMAL;
			return 0;
		}
		return mime_decoder_qp_undo(d, c, out);
	default: /* QP_EQ_CR */
		if (c == '\n') {
			d->held = 0;
			d->state = QP_NORMAL;
			return 0;
		}
		return mime_decoder_qp_undo(d, c, out);
	}
}

size_t mime_decoder_feed(struct mime_decoder *d, const unsigned char *in, size_t len,
                         unsigned char *out)
{
	if (d->cte == MIME_ENCODING_BASE64)
		return mime_decoder_base64(d, in, len, out);
	if (d->cte != MIME_ENCODING_QUOTED_PRINTABLE) {
		if (len > 0)
			memcpy(out, in, len);
		return len;
	}
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += mime_decoder_qp_byte(d, in[i], out + n);
	return n;
}

size_t mime_decoder_finish(struct mime_decoder *d, unsigned char *out)
{
	size_t n = 0;
	if (d->cte == MIME_ENCODING_QUOTED_PRINTABLE) {
		/* Trailing SP/HT and "=" + SP/HT at the end vanish; anything else was data. */
		if (d->state != QP_WSP && d->state != QP_EQ_WSP) {
			memcpy(out, d->hold, d->held);
			n = d->held;
		}
	}
	enum mime_encoding cte = d->cte;
	bool q_word = d->q_word;
	mime_decoder_init(d, cte);
	d->q_word = q_word;
	return n;
}

size_t mime_decode_base64(const unsigned char *in, size_t len, unsigned char *out)
{
	struct mime_decoder d;
	mime_decoder_init(&d, MIME_ENCODING_BASE64);
	return mime_decoder_feed(&d, in, len, out);
}

/* Whole-buffer quoted-printable: the output never exceeds the input. */
static size_t mime_decode_qp_all(const unsigned char *in, size_t len, unsigned char *out,
                                 bool q_word)
{
	struct mime_decoder d;
	mime_decoder_init(&d, MIME_ENCODING_QUOTED_PRINTABLE);
	d.q_word = q_word;
	size_t n = mime_decoder_feed(&d, in, len, out);
	return n + mime_decoder_finish(&d, out + n);
}

size_t mime_decode_qp(const unsigned char *in, size_t len, unsigned char *out)
{
	return mime_decode_qp_all(in, len, out, false);
}

size_t mime_decode_qword(const unsigned char *in, size_t len, unsigned char *out)
{
	return mime_decode_qp_all(in, len, out, true);
}

int mime_decode_body(struct arena *arena, enum mime_encoding cte, const unsigned char *in,
                     size_t len, const unsigned char **out_r, size_t *len_r)
{
	*out_r = NULL;
	*len_r = 0;
	switch (cte) {
	case MIME_ENCODING_7BIT:
	case MIME_ENCODING_8BIT:
	case MIME_ENCODING_BINARY:
		*out_r = in;
		*len_r = len;
		return 0;
	case MIME_ENCODING_BASE64:
	case MIME_ENCODING_QUOTED_PRINTABLE: {
		unsigned char *out = arena_alloc(arena, MIME_DECODE_MAX_OUT(len) + 1);
		*len_r = cte == MIME_ENCODING_BASE64 ? mime_decode_base64(in, len, out)
		                                     : mime_decode_qp(in, len, out);
		*out_r = out;
		return 0;
	}
	case MIME_ENCODING_OTHER:
		break;
	}
	return -1;
}

/* ---- charsets and header words ---- */

static size_t mime_decode_utf8_put(uint32_t cp, unsigned char *out)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	out[0] = (unsigned char)(0xC0 | cp >> 6); /* ISO-8859-1: below U+0100 */
	out[1] = (unsigned char)(0x80 | (cp & 0x3F));
	return 2;
}

/* iconv(3) from cd over s[0..len): octets it cannot convert become U+FFFD. In arena. */
static const char *mime_decode_iconv(struct arena *arena, iconv_t cd, const unsigned char *s,
                                     size_t len, size_t *len_r)
{
	/* An input octet gives at most 3 UTF-8 octets (a BMP character from one octet, or
	 * U+FFFD for one that is skipped); longer sequences come from longer input. */
	size_t cap = 3 * len + 4;
	char *out = arena_alloc(arena, cap + 1), *o = out;
	char *in = (char *)s;
	size_t in_left = len, out_left = cap;
	while (in_left > 0) {
		if (iconv(cd, &in, &in_left, &o, &out_left) != (size_t)-1)
			break;
		if (errno == E2BIG || out_left < 3)
			break;
		memcpy(o, "\xEF\xBF\xBD", 3); /* EILSEQ / EINVAL: skip one octet */
		o += 3;
		out_left -= 3;
		in++;
		in_left--;
	}
	*o = '\0';
	*len_r = (size_t)(o - out);
	return out;
}

const char *mime_decode_charset(struct arena *arena, const char *charset, size_t charset_len,
                                const unsigned char *s, size_t len, size_t *len_r)
{
	char name[64];
	size_t n = 0;
	for (; n < charset_len && n + 1 < sizeof(name) && charset[n] != '*'; n++)
		name[n] =
		    (char)(charset[n] >= 'A' && charset[n] <= 'Z' ? charset[n] + 32 : charset[n]);
	name[n] = '\0';
	*len_r = len;
	if (n == 0 || strcmp(name, "utf-8") == 0 || strcmp(name, "us-ascii") == 0 ||
	    strcmp(name, "utf8") == 0 || strcmp(name, "ascii") == 0)
		return (const char *)s;
	if (strcmp(name, "iso-8859-1") == 0 || strcmp(name, "latin1") == 0 ||
	    strcmp(name, "iso8859-1") == 0) {
		unsigned char *out = arena_alloc(arena, 2 * len + 1);
		size_t o = 0;
		for (size_t i = 0; i < len; i++)
			o += mime_decode_utf8_put(s[i], out + o);
		out[o] = '\0';
		*len_r = o;
		return (const char *)out;
	}
	iconv_t cd = iconv_open("UTF-8", name);
	if (cd == (iconv_t)-1)
		return (const char *)s; /* unknown: as it is */
	const char *out = mime_decode_iconv(arena, cd, s, len, len_r);
	iconv_close(cd);
	return out;
}

/* Decoding state of one header value: where the last scan for a word's end started and
 * where it stopped (the first "?=" or white space), so that a run of false starts
 * ("=?a?q?=?a?q?...") is scanned once, not once per start: linear work. */
struct mime_words {
	struct arena *arena;
	const unsigned char *v;
	size_t len;
	struct buf out;
	size_t scan_from, scan_end;
};

/* The first "?=" or SP/HT at or after pos (len if none). */
static size_t mime_words_end(struct mime_words *w, size_t pos)
{
	if (w->scan_end == 0 || pos < w->scan_from || pos > w->scan_end) {
		size_t e = pos;
		while (e < w->len && w->v[e] != ' ' && w->v[e] != '\t' &&
		       !(w->v[e] == '?' && e + 1 < w->len && w->v[e + 1] == '='))
			e++;
		w->scan_from = pos;
		w->scan_end = e;
	}
	return w->scan_end;
}

/* One encoded word at v[at..): its decoded UTF-8 appended to out and the position after it
 * in *next_r; false if there is none at at. */
static bool mime_decode_word(struct mime_words *w, size_t at, size_t *next_r)
{
	const unsigned char *v = w->v;
	if (w->len - at < 8 || v[at] != '=' || v[at + 1] != '?')
		return false;
	size_t cs = at + 2, q1 = cs;
	while (q1 < w->len && v[q1] != '?' && v[q1] > ' ' && v[q1] < 0x7F)
		q1++;
	if (q1 + 3 >= w->len || v[q1] != '?' || q1 == cs || v[q1 + 2] != '?')
		return false;
	unsigned char enc = v[q1 + 1];
	size_t text = q1 + 3;
	/* an encoded word holds no white space (RFC 2047 §5) */
	size_t end = mime_words_end(w, text);
	if (end + 1 >= w->len || v[end] != '?' || v[end + 1] != '=')
		return false;
	size_t tlen = end - text, dlen, ulen;
	unsigned char *dec = arena_alloc(w->arena, MIME_DECODE_MAX_OUT(tlen) + 1);
	if (enc == 'B' || enc == 'b')
		dlen = mime_decode_base64(v + text, tlen, dec);
	else if (enc == 'Q' || enc == 'q')
		dlen = mime_decode_qword(v + text, tlen, dec);
	else
		return false;
	const char *u =
	    mime_decode_charset(w->arena, (const char *)v + cs, q1 - cs, dec, dlen, &ulen);
	if (buf_append(&w->out, u, ulen) < 0)
		return false;
	*next_r = end + 2;
	return true;
}

const char *mime_decode_words(struct arena *arena, const char *v, size_t len, size_t *len_r)
{
	*len_r = len;
	if (len < 2 || memmem(v, len, "=?", 2) == NULL)
		return v;
	struct mime_words w = {.arena = arena, .v = (const unsigned char *)v, .len = len};
	buf_init(&w.out, 4 * len + 16); /* a word's UTF-8 is at most 4 times its text */
	bool after_word = false;
	int r = 0;
	for (size_t i = 0; i < len && r == 0;) {
		size_t next, j = i;
		if (v[i] == '=' && mime_decode_word(&w, i, &next)) {
			i = next;
			after_word = true;
			continue;
		}
		while (after_word && j < len && (v[j] == ' ' || v[j] == '\t'))
			j++;
		if (j > i && j < len && v[j] == '=' && mime_decode_word(&w, j, &next)) {
			i = next; /* white space between two words goes (§6.2) */
			continue;
		}
		if (j == i)
			j = i + 1;
		r |= buf_append(&w.out, v + i, j - i);
		i = j;
		after_word = false;
	}
	const char *res = arena_strndup(arena, buf_cstr(&w.out), w.out.len);
	*len_r = w.out.len;
	buf_free(&w.out);
	return res;
}
