/* The authentication cache (see auth_cache.h): a set-associative table under one mutex.
 * Keys are keyed BLAKE2b digests, so their first octets pick the set and nobody can aim a
 * flood of entries at one set without knowing the per-process secret. */
#include "auth/auth_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/xmalloc.h"
#include "core/banned.h"

#define AUTH_CACHE_WAYS 8

struct auth_cache_entry {
	unsigned char key[AUTH_CACHE_KEY_LEN];
	uint64_t account_id;
	uint64_t inserted; /* clock seconds */
	uint64_t last_use; /* tick: the LRU order within a set */
	bool used;
};

struct auth_cache {
	unsigned ttl;
	size_t sets;
	struct auth_cache_entry *entries; /* sets * AUTH_CACHE_WAYS */
	unsigned char secret[crypto_generichash_KEYBYTES];
	pthread_mutex_t lock;
	uint64_t tick;
};

struct auth_cache *auth_cache_new(unsigned ttl_secs, unsigned size)
{
	struct auth_cache *cache = xcalloc(1, sizeof(*cache));
	cache->ttl = ttl_secs;
	if (ttl_secs > 0 && size > 0) {
		cache->sets = (size + AUTH_CACHE_WAYS - 1) / AUTH_CACHE_WAYS;
		cache->entries = xcalloc(cache->sets * AUTH_CACHE_WAYS, sizeof(*cache->entries));
	}
	randombytes_buf(cache->secret, sizeof(cache->secret));
	pthread_mutex_init(&cache->lock, NULL);
	return cache;
}

void auth_cache_free(struct auth_cache **cachep)
{
	struct auth_cache *cache = *cachep;
	if (cache == NULL)
		return;
	pthread_mutex_destroy(&cache->lock);
	free(cache->entries);
	xmemzero(cache, sizeof(*cache));
	free(cache);
	*cachep = NULL;
}

bool auth_cache_enabled(const struct auth_cache *cache)
{
	return cache->sets > 0;
}

void auth_cache_key(const struct auth_cache *cache, uint64_t account_id, const char *credentials,
                    const char *password, unsigned char key[AUTH_CACHE_KEY_LEN])
{
	crypto_generichash_state st;
	unsigned char id[8];
	for (int i = 0; i < 8; i++)
		id[i] = (unsigned char)(account_id >> (8 * i));
	crypto_generichash_init(&st, cache->secret, sizeof(cache->secret), AUTH_CACHE_KEY_LEN);
	crypto_generichash_update(&st, id, sizeof(id));
	/* Both strings end with their NUL, so no two (credentials, password) pairs collide by
	 * shifting octets from one into the other. */
	crypto_generichash_update(&st, (const unsigned char *)credentials, strlen(credentials) + 1);
	crypto_generichash_update(&st, (const unsigned char *)password, strlen(password) + 1);
	crypto_generichash_final(&st, key, AUTH_CACHE_KEY_LEN);
	sodium_memzero(&st, sizeof(st));
}

static struct auth_cache_entry *auth_cache_set(const struct auth_cache *cache,
                                               const unsigned char *key)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)key[i] << (8 * i);
	return cache->entries + (size_t)(v % cache->sets) * AUTH_CACHE_WAYS;
}

bool auth_cache_lookup(struct auth_cache *cache, const unsigned char key[AUTH_CACHE_KEY_LEN],
                       uint64_t now, uint64_t *account_id_r)
{
	if (cache->sets == 0)
		return false;
	bool hit = false;
	pthread_mutex_lock(&cache->lock);
	struct auth_cache_entry *set = auth_cache_set(cache, key);
	for (unsigned i = 0; i < AUTH_CACHE_WAYS; i++) {
		struct auth_cache_entry *e = &set[i];
		if (!e->used || sodium_memcmp(e->key, key, AUTH_CACHE_KEY_LEN) != 0)
			continue;
		if (now - e->inserted >= cache->ttl) {
			e->used = false; /* expired */
			break;
		}
		e->last_use = ++cache->tick;
		*account_id_r = e->account_id;
		hit = true;
		break;
	}
	pthread_mutex_unlock(&cache->lock);
	return hit;
}

void auth_cache_insert(struct auth_cache *cache, const unsigned char key[AUTH_CACHE_KEY_LEN],
                       uint64_t account_id, uint64_t now)
{
	if (cache->sets == 0)
		return;
	pthread_mutex_lock(&cache->lock);
	struct auth_cache_entry *set = auth_cache_set(cache, key);
	struct auth_cache_entry *victim = NULL;
	for (unsigned i = 0; i < AUTH_CACHE_WAYS && victim == NULL; i++) {
		if (set[i].used && memcmp(set[i].key, key, AUTH_CACHE_KEY_LEN) == 0)
			victim = &set[i]; /* refresh */
	}
	for (unsigned i = 0; i < AUTH_CACHE_WAYS && victim == NULL; i++) {
		if (!set[i].used || now - set[i].inserted >= cache->ttl)
			victim = &set[i];
	}
	if (victim == NULL) {
		victim = &set[0];
		for (unsigned i = 1; i < AUTH_CACHE_WAYS; i++)
			if (set[i].last_use < victim->last_use)
				victim = &set[i];
	}
	memcpy(victim->key, key, AUTH_CACHE_KEY_LEN);
	victim->account_id = account_id;
	victim->inserted = now;
	victim->last_use = ++cache->tick;
	victim->used = true;
	pthread_mutex_unlock(&cache->lock);
}
