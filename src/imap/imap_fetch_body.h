/* The octets of one FETCH literal (BODY[...], BINARY[...], RFC822...), streamed from the
 * stored message file in chunks of IMAP_FETCH_BODY_CHUNK: never the whole message in
 * memory. A range of the file is sent as it is (NUL octets as 0x80, as Dovecot does: a
 * plain literal may not hold NUL, RFC 9051 §4.3), or decoded by its Content-Transfer-Encoding
 * while streaming (BINARY, RFC 3516), with a <partial> window over the decoded octets. */
#ifndef POSTHORN_IMAP_IMAP_FETCH_BODY_H
#define POSTHORN_IMAP_IMAP_FETCH_BODY_H

#include <stdbool.h>
#include <stdint.h>

#include "mime/mime_decode.h"
#include "net/conn.h"

#define IMAP_FETCH_BODY_CHUNK ((size_t)64 * 1024)

/* Scratch space shared by the streams of one command (two chunks, allocated when first
 * needed). */
struct imap_fetch_chunk {
	unsigned char *raw;     /* IMAP_FETCH_BODY_CHUNK octets read from the file */
	unsigned char *decoded; /* MIME_DECODER_OUT_MAX(IMAP_FETCH_BODY_CHUNK) */
};

struct imap_fetch_body {
	int fd;            /* not owned */
	uint64_t pos, end; /* what is left of the file range */
	bool decode;       /* through the decoder (BINARY of an encoded part) */
	bool nul_to_8bit;  /* NUL becomes 0x80 (plain literals) */
	bool finished;     /* the decoder was flushed */
	struct mime_decoder dec;
	uint64_t skip;            /* output octets still to drop (partial offset) */
	uint64_t left;            /* output octets still to send */
	const unsigned char *mem; /* instead of the file: octets in memory (HEADER.FIELDS) */
};

void imap_fetch_chunk_init(struct imap_fetch_chunk *c);
void imap_fetch_chunk_deinit(struct imap_fetch_chunk *c);

/* Measure what decoding file range [off, off+len) by cte gives, reading it in chunks and
 * keeping nothing: *size_r the decoded size; *nul_r whether a NUL octet falls within the
 * window [win_off, win_off+win_len) of the decoded octets. 0, or -1 when the file could not
 * be read. *read_r grows by the octets read. */
int imap_fetch_body_measure(int fd, uint64_t off, uint64_t len, enum mime_encoding cte,
                            uint64_t win_off, uint64_t win_len, struct imap_fetch_chunk *c,
                            uint64_t *size_r, bool *nul_r, uint64_t *read_r)
    __attribute__((warn_unused_result));

/* Start streaming: file range [off, off+len) decoded by cte when decode (else as it is),
 * dropping skip output octets, then sending send of them (the literal's size, which the
 * caller has announced). */
void imap_fetch_body_init(struct imap_fetch_body *b, int fd, uint64_t off, uint64_t len,
                          bool decode, enum mime_encoding cte, bool nul_to_8bit, uint64_t skip,
                          uint64_t send);
/* The same from memory (mem must stay valid until the stream ends). */
void imap_fetch_body_init_mem(struct imap_fetch_body *b, const unsigned char *mem, uint64_t send);

/* Write chunks to conn until the literal is complete or conn_output_full(). 1 complete,
 * 0 more to send (call again when writable), -1 the file could not be read or ended early
 * (the literal cannot be completed: the caller must close the connection). *read_r grows by
 * the octets read from the file. */
int imap_fetch_body_pump(struct imap_fetch_body *b, struct conn *conn, struct imap_fetch_chunk *c,
                         uint64_t *read_r) __attribute__((warn_unused_result));

#endif
