/* Line-end normalisation to CRLF across chunk boundaries (crlf.h). */
#include "core/crlf.h"

#include "core/banned.h"

void crlf_init(struct crlf *st)
{
	st->cr = false;
}

size_t crlf_convert(struct crlf *st, const unsigned char *in, size_t n, unsigned char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = in[i];
		if (st->cr) {
			out[o++] = '\r';
			out[o++] = '\n';
			st->cr = false;
			if (c == '\n')
				continue; /* CRLF as it came */
		}
		if (c == '\r')
			st->cr = true;
		else if (c == '\n') {
			out[o++] = '\r'; /* bare LF */
			out[o++] = '\n';
		} else
			out[o++] = c;
	}
	return o;
}

size_t crlf_finish(struct crlf *st, unsigned char *out)
{
	if (!st->cr)
		return 0;
	st->cr = false;
	out[0] = '\r';
	out[1] = '\n';
	return 2;
}
