/* The outbound body encoder: turns the octets of a stored message into what goes over the wire
 * after DATA or in BDAT chunks: every line end CRLF (a bare LF or a bare CR becomes CRLF, RFC
 * 5321 §2.3.8, so no receiver can see a line end we did not mean), a '.' starting a line
 * doubled for DATA (§4.5.2), a last line without its line end completed, and DATA's final
 * ".". Pure and incremental: the input may be split anywhere. The first-line Return-Path
 * check lives here too. Used by smtp_client; unit-tested in tests/unit/test_smtp_body.c. */
#ifndef POSTHORN_SMTP_SMTP_BODY_H
#define POSTHORN_SMTP_SMTP_BODY_H

#include <stdbool.h>
#include <stddef.h>

struct smtp_body_encoder {
	bool stuff;      /* DATA: dot-stuffing and the final "." */
	bool line_start; /* the next octet starts a line */
	bool prev_cr;    /* a CR was seen, the octet after it not yet */
};

/* Output room smtp_body_encode() needs for len input octets, and smtp_body_encode_end(). */
#define SMTP_BODY_OUT_MAX(len) (2 * (len) + 2)
#define SMTP_BODY_END_MAX 5

void smtp_body_encoder_init(struct smtp_body_encoder *enc, bool dot_stuff);
/* Encode len octets of in into out (room for SMTP_BODY_OUT_MAX(len)); returns the count. */
size_t smtp_body_encode(struct smtp_body_encoder *enc, const unsigned char *in, size_t len,
                        unsigned char *out);
/* The end of the body: CRLF when the last line lacks one, then "." CRLF for DATA. Returns the
 * count written to out (room for SMTP_BODY_END_MAX). */
size_t smtp_body_encode_end(struct smtp_body_encoder *enc, unsigned char *out);

/* When head (the first len octets of a stored message) starts with a "Return-Path:" field
 * (any case) whose line end is within head, the octets of that line with its LF; else 0.
 * RFC 5321 §4.4: the trace line we stored at delivery is never sent on. */
size_t smtp_body_return_path_len(const char *head, size_t len);

#endif
