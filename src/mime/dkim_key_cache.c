/* The cache of decoded public keys (see dkim_key_cache.h): a small array searched by length
 * and content, evicting the least recently used entry. */
#include "mime/dkim_key_cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "core/banned.h"

struct dkim_key_cache_entry {
	char *text; /* NULL: free slot */
	size_t len;
	bool ed25519;
	EVP_PKEY *pkey;
	uint64_t used; /* the cache's clock at the last use */
};

struct dkim_key_cache {
	pthread_mutex_t lock;
	struct dkim_key_cache_entry *v;
	size_t max;
	uint64_t clock;
};

struct dkim_key_cache *dkim_key_cache_new(size_t max)
{
	struct dkim_key_cache *c = xcalloc(1, sizeof(*c));
	c->max = max > 0 ? max : 1;
	c->v = xcalloc(c->max, sizeof(*c->v));
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void dkim_key_cache_free(struct dkim_key_cache **cache)
{
	struct dkim_key_cache *c = *cache;
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->max; i++) {
		free(c->v[i].text);
		EVP_PKEY_free(c->v[i].pkey);
	}
	free(c->v);
	pthread_mutex_destroy(&c->lock);
	free(c);
	*cache = NULL;
}

/* The entry for text, or NULL; under the lock. */
static struct dkim_key_cache_entry *dkim_key_cache_find(struct dkim_key_cache *c, const char *text,
                                                        size_t len, bool ed25519)
{
	for (size_t i = 0; i < c->max; i++) {
		struct dkim_key_cache_entry *e = &c->v[i];
		if (e->text != NULL && e->len == len && e->ed25519 == ed25519 &&
		    memcmp(e->text, text, len) == 0)
			return e;
	}
	return NULL;
}

EVP_PKEY *dkim_key_cache_get(struct dkim_key_cache *cache, const char *text, size_t len,
                             bool ed25519)
{
	if (cache == NULL)
		return NULL;
	EVP_PKEY *pkey = NULL;
	pthread_mutex_lock(&cache->lock);
	struct dkim_key_cache_entry *e = dkim_key_cache_find(cache, text, len, ed25519);
	if (e != NULL && EVP_PKEY_up_ref(e->pkey) == 1) {
		pkey = e->pkey;
		e->used = ++cache->clock;
	}
	pthread_mutex_unlock(&cache->lock);
	return pkey;
}

void dkim_key_cache_put(struct dkim_key_cache *cache, const char *text, size_t len, bool ed25519,
                        EVP_PKEY *pkey)
{
	if (cache == NULL || pkey == NULL || len > DKIM_KEY_CACHE_TEXT_MAX)
		return;
	pthread_mutex_lock(&cache->lock);
	if (dkim_key_cache_find(cache, text, len, ed25519) == NULL && EVP_PKEY_up_ref(pkey) == 1) {
		struct dkim_key_cache_entry *e = &cache->v[0];
		for (size_t i = 1; i < cache->max && e->text != NULL; i++)
			if (cache->v[i].text == NULL || cache->v[i].used < e->used)
				e = &cache->v[i];
		free(e->text);
		EVP_PKEY_free(e->pkey);
		e->text = xmalloc(len + 1);
		memcpy(e->text, text, len);
		e->text[len] = '\0';
		e->len = len;
		e->ed25519 = ed25519;
		e->pkey = pkey;
		e->used = ++cache->clock;
	}
	pthread_mutex_unlock(&cache->lock);
}

size_t dkim_key_cache_count(struct dkim_key_cache *cache)
{
	size_t n = 0;
	pthread_mutex_lock(&cache->lock);
	for (size_t i = 0; i < cache->max; i++)
		n += cache->v[i].text != NULL;
	pthread_mutex_unlock(&cache->lock);
	return n;
}
