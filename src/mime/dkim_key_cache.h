/* Decoded DKIM/ARC public keys by the text of their key record's p= tag. Decoding a key
 * (OpenSSL's DER decoders) costs more CPU than checking a signature with it, and a server
 * sees the same few keys again and again. The text is the whole key, so an entry never goes
 * stale: the DNS layer decides which record is current, the cache only skips the decoding.
 * One cache may be shared by threads (a mutex inside; OpenSSL allows concurrent read-only
 * use of one EVP_PKEY). Pure: no I/O. */
#ifndef POSTHORN_MIME_DKIM_KEY_CACHE_H
#define POSTHORN_MIME_DKIM_KEY_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

struct dkim_key_cache;

/* A cache of at most max keys (the least recently used goes first). Never NULL. */
struct dkim_key_cache *dkim_key_cache_new(size_t max);
/* Frees the cache and drops its references to the keys; sets *cache to NULL; accepts NULL. */
void dkim_key_cache_free(struct dkim_key_cache **cache);
/* The key decoded from text[0..len) (p= without white space) for the algorithm (ed25519 or
 * RSA), with a new reference the caller frees with EVP_PKEY_free(); NULL when not cached
 * (or cache is NULL). */
EVP_PKEY *dkim_key_cache_get(struct dkim_key_cache *cache, const char *text, size_t len,
                             bool ed25519);
/* Remember pkey (a new reference is taken) as decoded from text[0..len). No-op when cache is
 * NULL or text is longer than DKIM_KEY_CACHE_TEXT_MAX. */
#define DKIM_KEY_CACHE_TEXT_MAX 8192
void dkim_key_cache_put(struct dkim_key_cache *cache, const char *text, size_t len, bool ed25519,
                        EVP_PKEY *pkey);
/* Keys held (tests). */
size_t dkim_key_cache_count(struct dkim_key_cache *cache);

#endif
