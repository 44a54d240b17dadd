/* The DATA body decoder (RFC 5321 §4.1.1.4, §4.5.2): finds the end of data, which is only
 * CRLF "." CRLF, removes dot-stuffing, and notices bare CR and bare LF, which never end a
 * message (no SMTP smuggling). Pure: bytes in, bytes out. */
#ifndef POSTHORN_SMTP_SMTP_DATA_H
#define POSTHORN_SMTP_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>

struct smtp_data {
	int state;
	bool normalize; /* turn bare CR / bare LF into CRLF (else keep them and just flag) */
	bool bare_seen; /* a bare CR or bare LF was seen */
};

/* Start decoding a message body (the first octet is at the start of a line). */
void smtp_data_init(struct smtp_data *data, bool normalize);
/* Decode up to in_len octets. Writes the message octets to out, which must hold
 * SMTP_DATA_OUT_MAX(in_len) octets, and sets *out_len. Returns the count of input octets
 * consumed; *end_r is set when the terminating CRLF.CRLF was consumed (octets after it are
 * not consumed: they are the next command). The terminating CRLF.CRLF contributes "CRLF"
 * (the line end of the last line) to the output. */
size_t smtp_data_decode(struct smtp_data *data, const unsigned char *in, size_t in_len,
                        unsigned char *out, size_t *out_len, bool *end_r);
#define SMTP_DATA_OUT_MAX(n) (2 * (n) + 4)

#endif
