/* Line-end normalisation for message octets that arrive in chunks: every bare LF and every
 * bare CR becomes CRLF (RFC 5322 §2.3: CR and LF occur only together), CRLF stays. IMAP
 * APPEND uses it, so that a message stored through IMAP has the same line ends as one
 * SMTP normalised (smtp_bare_lf = normalize). */
#ifndef POSTHORN_CORE_CRLF_H
#define POSTHORN_CORE_CRLF_H

#include <stdbool.h>
#include <stddef.h>

struct crlf {
	bool cr; /* the last input octet was a CR whose CRLF is not written yet */
};

/* Start a stream. */
void crlf_init(struct crlf *st);
/* Convert n octets of in (any octets) into out, which has room for 2 * n + 1 octets;
 * returns the number written. A CR at the end of in is held back until the next call (or
 * crlf_finish()) shows whether an LF follows. */
size_t crlf_convert(struct crlf *st, const unsigned char *in, size_t n, unsigned char *out);
/* End of the stream: write what is held back into out (room for 2 octets); returns the
 * number written (0 or 2). */
size_t crlf_finish(struct crlf *st, unsigned char *out);

#endif
