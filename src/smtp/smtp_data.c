/* DATA body decoder: a five-state machine over octets (see smtp_data.h). */
#include "smtp/smtp_data.h"

#include "core/banned.h"

enum {
	D_LINE_START, /* after CRLF (or at the start): a '.' here is special */
	D_DOT,        /* "." at line start */
	D_DOT_CR,     /* ".\r" at line start: LF now ends the data */
	D_MID,        /* inside a line */
	D_CR,         /* "\r" inside a line */
};

void smtp_data_init(struct smtp_data *d, bool normalize)
{
	d->state = D_LINE_START;
	d->normalize = normalize;
	d->bare_seen = false;
}

/* A bare CR or LF: flag it, and write CRLF (normalize) or the octet itself. */
static size_t smtp_data_bare(struct smtp_data *d, unsigned char c, unsigned char *o)
{
	d->bare_seen = true;
	if (d->normalize) {
		o[0] = '\r';
		o[1] = '\n';
		return 2;
	}
	o[0] = c;
	return 1;
}

size_t smtp_data_decode(struct smtp_data *d, const unsigned char *in, size_t in_len,
                        unsigned char *out, size_t *out_len, bool *end_r)
{
	size_t o = 0, i = 0;
	*end_r = false;
	while (i < in_len) {
		unsigned char c = in[i++];
		switch (d->state) {
		case D_LINE_START:
			if (c == '.') {
				d->state = D_DOT;
				continue;
			}
			break;
		case D_DOT:
			if (c == '\r') {
				d->state = D_DOT_CR;
				continue;
			}
			/* Dot-stuffing: the leading '.' of a longer line is dropped (§4.5.2).
			 * ".\n" keeps its dot: it is a bare LF, never an end of data. */
			if (c == '\n')
				out[o++] = '.';
			break;
		case D_DOT_CR:
			if (c == '\n') {
				*end_r = true;
				*out_len = o;
				return i;
			}
			/* ".\r" then something else: the CR was bare; the dot was stuffing. */
			o += smtp_data_bare(d, '\r', out + o);
			d->state = D_MID;
			break;
		case D_CR:
			if (c == '\n') {
				out[o++] = '\r';
				out[o++] = '\n';
				d->state = D_LINE_START;
				continue;
			}
			o += smtp_data_bare(d, '\r', out + o);
			break;
		default:
			break;
		}
		/* c is an ordinary octet inside a line. */
		if (c == '\r') {
			d->state = D_CR;
		} else if (c == '\n') {
			o += smtp_data_bare(d, '\n', out + o);
			d->state =
			    D_MID; /* a bare LF never starts a line that could end the data */
		} else {
			out[o++] = c;
			d->state = D_MID;
		}
	}
	*out_len = o;
	return i;
}
