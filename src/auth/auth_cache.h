/* The authentication cache (like Dovecot's auth_cache): a successful password check is
 * remembered for a TTL under a keyed BLAKE2b hash of the account id, the account's stored
 * credentials string and the password, so a repeat login with the same password costs one
 * account look-up instead of an argon2id hash. The password is never stored; a changed
 * password (another credentials string) or a removed account (no look-up result) simply
 * misses. Bounded: a set-associative table of a fixed number of entries, the least recently
 * used of a set evicted. Thread-safe. */
#ifndef POSTHORN_AUTH_AUTH_CACHE_H
#define POSTHORN_AUTH_AUTH_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#define AUTH_CACHE_KEY_LEN 32

struct auth_cache;

/* ttl_secs 0 = the cache is off (lookups miss, inserts do nothing). size = number of
 * entries (rounded up to a multiple of the associativity; 0 also means off). Never NULL. */
struct auth_cache *auth_cache_new(unsigned ttl_secs, unsigned size);
/* Accepts NULL; sets *cache NULL. */
void auth_cache_free(struct auth_cache **cache);
/* Is the cache on (ttl and size both above 0)? */
bool auth_cache_enabled(const struct auth_cache *cache);

/* The cache key of (account, stored credentials, password): BLAKE2b keyed with a random
 * per-process secret, so a key reveals nothing and cannot be computed elsewhere. */
void auth_cache_key(const struct auth_cache *cache, uint64_t account_id, const char *credentials,
                    const char *password, unsigned char key[AUTH_CACHE_KEY_LEN]);
/* true when key was inserted less than ttl seconds before now (clock seconds, monotonic)
 * and has not been evicted; *account_id_r is then the account it was inserted with. */
bool auth_cache_lookup(struct auth_cache *cache, const unsigned char key[AUTH_CACHE_KEY_LEN],
                       uint64_t now, uint64_t *account_id_r);
/* Remember a successful check at now. */
void auth_cache_insert(struct auth_cache *cache, const unsigned char key[AUTH_CACHE_KEY_LEN],
                       uint64_t account_id, uint64_t now);

#endif
