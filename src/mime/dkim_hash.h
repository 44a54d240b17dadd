/* The two hashes of a DKIM signature (RFC 6376 §3.7), shared by the signer and the verifier:
 * the body hash (bh=) over the canonical body, at most l= octets of it, and the header
 * fields an h= list picked, canonicalised into a running SHA-256. Pure: no I/O. */
#ifndef POSTHORN_MIME_DKIM_HASH_H
#define POSTHORN_MIME_DKIM_HASH_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "mime/dkim_canon.h"

#define DKIM_HASH_LEN 32 /* SHA-256 */

/* SHA-256 of msg[body..len) canonicalised with canon, of its first limit canonical octets
 * (UINT64_MAX: all of it). *canon_len_r (may be NULL) gets the canonical body's whole length.
 * 0, or -1 when libcrypto fails. */
int dkim_hash_body(const unsigned char *msg, size_t body, size_t len, enum dkim_canon canon,
                   uint64_t limit, unsigned char digest[DKIM_HASH_LEN], uint64_t *canon_len_r)
    __attribute__((warn_unused_result));

/* Feed the n picked fields of msg (dkim_canon_select(); SIZE_MAX entries stand for no field)
 * canonicalised with canon, each with its CRLF, into md. 0, or -1. */
int dkim_hash_fields(EVP_MD_CTX *md, enum dkim_canon canon, const unsigned char *msg,
                     const struct dkim_field *fields, const size_t *picked, size_t n)
    __attribute__((warn_unused_result));

#endif
