/* The outbound body encoder (see smtp_body.h). */
#include "smtp/smtp_body.h"

#include <string.h>
#include <strings.h>

#include "core/banned.h"

void smtp_body_encoder_init(struct smtp_body_encoder *e, bool dot_stuff)
{
	e->stuff = dot_stuff;
	e->line_start = true;
	e->prev_cr = false;
}

size_t smtp_body_encode(struct smtp_body_encoder *e, const unsigned char *in, size_t len,
                        unsigned char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char b = in[i];
		if (e->prev_cr) {
			/* the CR before this octet ends a line, with or without its LF */
			e->prev_cr = false;
			out[o++] = '\r';
			out[o++] = '\n';
			e->line_start = true;
			if (b == '\n')
				continue;
		}
		if (b == '\r') {
			e->prev_cr = true;
			continue;
		}
		if (b == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			e->line_start = true;
			continue;
		}
		if (e->line_start && e->stuff && b == '.')
			out[o++] = '.';
		out[o++] = b;
		e->line_start = false;
	}
	return o;
}

size_t smtp_body_encode_end(struct smtp_body_encoder *e, unsigned char *out)
{
	size_t o = 0;
	if (e->prev_cr || !e->line_start) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	e->prev_cr = false;
	e->line_start = true;
	if (e->stuff) {
		memcpy(out + o, ".\r\n", 3);
		o += 3;
	}
	return o;
}

size_t smtp_body_return_path_len(const char *head, size_t len)
{
	static const char name[] = "Return-Path:";
	if (len < sizeof(name) - 1 || strncasecmp(head, name, sizeof(name) - 1) != 0)
		return 0;
	const char *lf = memchr(head, '\n', len);
	return lf != NULL ? (size_t)(lf - head) + 1 : 0;
}
