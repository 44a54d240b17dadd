/* The zlib side of IMAP COMPRESS=DEFLATE (RFC 4978): one raw DEFLATE stream (RFC 1951, no
 * zlib or gzip framing) in each direction. Pure byte-in/byte-out calls, no connection and no
 * loop, so they are unit-testable; net/conn_compress.c puts them between a connection's
 * protocol and its socket or TLS layer. */
#ifndef POSTHORN_NET_COMPRESS_H
#define POSTHORN_NET_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>

/* What we send is made with a 8 KiB window (2^13) and memLevel 6: about 70 KiB of zlib state
 * instead of 260 KiB at zlib's defaults, for a few per cent less compression. RFC 4978 §4
 * leaves the sender's window to the sender; what we receive may use the full 32 KiB window
 * (RFC 1951 §2.1), so inflate always takes 2^15 (about 40 KiB, allocated at first use). */
#define COMPRESS_DEFLATE_WINDOW_BITS 13
#define COMPRESS_DEFLATE_MEM_LEVEL 6
#define COMPRESS_DEFLATE_LEVEL 6
#define COMPRESS_OUT_MIN 64

struct compress;

/* Both directions ready; allocation failure aborts (xmalloc's rule). */
struct compress *compress_new(void);
void compress_free(struct compress **z);

/* Inflate the peer's stream: take octets from in (in_len), write at most out_cap octets to
 * out. *in_used_r and *out_len_r say how many were taken and made. Returns 1 when it made
 * progress (took or made octets), 0 when it needs more input to make any, -1 when the
 * stream is corrupt or ended (an IMAP stream never ends: RFC 4978 §3); after -1 the stream
 * is unusable. Output per call is bounded by out_cap whatever the input: a small input that
 * inflates to gigabytes ("bomb") is taken out_cap octets at a time. */
int compress_inflate(struct compress *z, const unsigned char *in, size_t in_len, size_t *in_used_r,
                     unsigned char *out, size_t out_cap, size_t *out_len_r)
    __attribute__((warn_unused_result));

/* Deflate our stream: take octets from in (in_len, may be 0), write compressed octets to out
 * (out_cap >= COMPRESS_OUT_MIN: with less, zlib may repeat its 5-octet flush marker forever). With
 * flush, everything taken so far is made decodable by the peer (a sync flush, RFC 1951 empty stored
 * block) once the call returns 0. Returns 1 when out was filled and the call must be repeated (with
 * the rest of in and fresh out space), 0 when all of in is taken (and, with flush, everything is
 * out), -1 on an internal zlib error. */
int compress_deflate(struct compress *z, const unsigned char *in, size_t in_len, size_t *in_used_r,
                     bool flush, unsigned char *out, size_t out_cap, size_t *out_len_r)
    __attribute__((warn_unused_result));

/* Total octets taken and made so far (inflate in/out, deflate in/out), for log lines. */
void compress_totals(const struct compress *z, unsigned long long *in_raw_r,
                     unsigned long long *in_plain_r, unsigned long long *out_plain_r,
                     unsigned long long *out_raw_r);

#endif
