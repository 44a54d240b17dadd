/* The tolerant base64 and quoted-printable decoders for MIME content (RFC 2045 §6.7, §6.8),
 * used by IMAP BINARY fetches (RFC 3516) and SEARCH. Broken input never fails: base64 ignores
 * octets outside its alphabet and ends at padding, quoted-printable keeps what it cannot
 * decode. Incremental: quoted-printable holds back the few octets whose meaning depends on
 * what follows. */
#include "mime/mime_decode.h"

#include <string.h>

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
	QP_NORMAL,  /* nothing */
	QP_WSP,	    /* SP/HT: dropped if a line break or the end follows (RFC 2045 §6.7 (3)) */
	QP_WSP_CR,  /* SP/HT then CR */
	QP_EQ,	    /* "=" */
	QP_EQ_HEX,  /* "=" and one hex digit */
	QP_EQ_WSP,  /* "=" and SP/HT: a soft line break if a line break or the end follows */
	QP_EQ_CR,   /* "=", maybe SP/HT, then CR */
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
