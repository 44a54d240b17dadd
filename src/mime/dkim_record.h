/* The tag-list records that DKIM (RFC 6376) and ARC (RFC 8617) share: tag lists (§3.2), the
 * key record (§3.6.1, RFC 8463 §4) and the check of a signature over a SHA-256 digest with
 * RSA (RFC 8301: 1024 bits and more) or Ed25519. Used by mime/dkim_verify and
 * mime/arc_verify. Pure: no I/O; libcrypto (EVP) for keys and signatures. */
#ifndef POSTHORN_MIME_DKIM_RECORD_H
#define POSTHORN_MIME_DKIM_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>

#include "mime/dkim_key_cache.h"

#define DKIM_TAGS_MAX 32
#define DKIM_KEY_MAX 2048 /* decoded public key octets (RSA 8192 fits) */
#define DKIM_SIG_MAX 1024 /* decoded signature octets */

/* One tag of a tag list: offsets into the text parsed. */
struct dkim_tag {
	size_t name, name_len;   /* the tag name */
	size_t value, value_len; /* the value without FWS around it */
	size_t eq, end;          /* after '=', and the ';' or the end */
};

/* Parse s[0..n) into at most max tags. Returns the count, or -1 on a syntax error or a
 * repeated tag. */
int dkim_tags_parse(const char *s, size_t n, struct dkim_tag *tags, size_t max)
    __attribute__((warn_unused_result));
/* The tag named name among the n tags of s, or NULL. */
const struct dkim_tag *dkim_tag_find(const char *s, const struct dkim_tag *tags, int n,
                                     const char *name);
/* A tag's value as written (malloc'd), and with every FWS octet removed (base64 values, h=
 * lists). */
char *dkim_tag_dup(const char *s, const struct dkim_tag *t);
char *dkim_tag_compact_dup(const char *s, const struct dkim_tag *t);
/* Decode a base64 tag value (FWS allowed inside) into out: the length, or -1. */
ssize_t dkim_tag_base64(const char *s, const struct dkim_tag *t, unsigned char *out, size_t max);
/* A decimal number (t=, x=, l=, i=): 0, or -1 when v is empty, not digits or too large. */
int dkim_tag_number(const char *v, uint64_t *out) __attribute__((warn_unused_result));

/* A key record for a signature of the given algorithm. */
struct dkim_key {
	EVP_PKEY *pkey;
	bool testing; /* t=y */
	bool strict;  /* t=s */
};

/* Parse the key record s[0..n) for an ed25519 (else RSA) signature: 0 with key->pkey (free
 * it with EVP_PKEY_free), or -1 with *problem_r (static text): a permanent error. The key
 * comes from cache (NULL: none) when it holds the same p= text, and goes into it. */
int dkim_key_parse(struct dkim_key_cache *cache, const char *s, size_t n, bool ed25519,
                   struct dkim_key *key, const char **problem_r)
    __attribute__((warn_unused_result));

/* True when sig[0..len) is pkey's signature of the SHA-256 digest (RSA PKCS#1 v1.5 with
 * SHA-256, or Ed25519 over the digest as RFC 8463 §3 signs it). */
bool dkim_signature_ok(EVP_PKEY *pkey, bool ed25519, const unsigned char *sig, size_t len,
                       const unsigned char digest[32]);

/* Key records looked up so far, by name (what a verifier needs from DNS). */
enum dkim_dns_status { DKIM_DNS_OK, DKIM_DNS_NXDOMAIN, DKIM_DNS_TEMPFAIL };

struct dkim_key_answer {
	char *name;
	enum dkim_dns_status status;
	size_t n;
	char **texts;
	size_t *lens;
};

struct dkim_key_answers {
	struct dkim_key_answer *v;
	size_t n;
};

/* Add the answer for name (copied; lens may be NULL for NUL-terminated texts). */
void dkim_key_answers_add(struct dkim_key_answers *a, const char *name, enum dkim_dns_status status,
                          const char *const *texts, const size_t *lens, size_t n);
/* The answer for name (any case), or NULL. */
const struct dkim_key_answer *dkim_key_answers_find(const struct dkim_key_answers *a,
                                                    const char *name);
void dkim_key_answers_free(struct dkim_key_answers *a);

/* The key for an answer: 0 with key->pkey, or -1 with *tempfail_r (a DNS failure: a
 * temporary error) and *problem_r. The answer's first record decides; cache as for
 * dkim_key_parse(). */
int dkim_key_from_answer(struct dkim_key_cache *cache, const struct dkim_key_answer *a,
                         bool ed25519, struct dkim_key *key, bool *tempfail_r,
                         const char **problem_r) __attribute__((warn_unused_result));

#endif
