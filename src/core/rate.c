/* Fixed-window event counters per key (rate.h): a chained hash table under one mutex.
 * A key's window starts at its first event and lasts window seconds; the next event after
 * that starts a new window at 1. */
#include "core/rate.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "core/banned.h"

#define RATE_BUCKETS 4096

struct rate_entry {
	struct rate_entry *next;
	time_t start;
	unsigned count;
	char key[]; /* NUL-terminated */
};

struct rate {
	pthread_mutex_t lock;
	unsigned window;
	size_t max_keys, keys;
	time_t swept; /* a full table is swept at most once a second (the sweep visits all) */
	struct rate_entry *buckets[RATE_BUCKETS];
};

struct rate *rate_new(unsigned window, size_t max_keys)
{
	struct rate *r = xcalloc(1, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->window = window > 0 ? window : 1;
	r->max_keys = max_keys > 0 ? max_keys : 1;
	return r;
}

void rate_free(struct rate **rate)
{
	struct rate *r = *rate;
	if (r == NULL)
		return;
	for (size_t i = 0; i < RATE_BUCKETS; i++) {
		while (r->buckets[i] != NULL) {
			struct rate_entry *e = r->buckets[i];
			r->buckets[i] = e->next;
			free(e);
		}
	}
	pthread_mutex_destroy(&r->lock);
	free(r);
	*rate = NULL;
}

static size_t rate_bucket(const char *key)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	return h % RATE_BUCKETS;
}

static bool rate_expired(const struct rate *r, const struct rate_entry *e, time_t now)
{
	return now - e->start >= (time_t)r->window || now < e->start;
}

/* Under the lock: drop every key whose window is over. */
static void rate_sweep(struct rate *r, time_t now)
{
	for (size_t i = 0; i < RATE_BUCKETS; i++) {
		struct rate_entry **p = &r->buckets[i];
		while (*p != NULL) {
			struct rate_entry *e = *p;
			if (rate_expired(r, e, now)) {
				*p = e->next;
				free(e);
				r->keys--;
			} else {
				p = &e->next;
			}
		}
	}
}

/* Under the lock: the key's entry, created when there is room; NULL when full. */
static struct rate_entry *rate_find(struct rate *r, const char *key, time_t now)
{
	size_t b = rate_bucket(key);
	for (struct rate_entry *e = r->buckets[b]; e != NULL; e = e->next) {
		if (strcmp(e->key, key) == 0)
			return e;
	}
	if (r->keys >= r->max_keys && now != r->swept) {
		r->swept = now;
		rate_sweep(r, now);
	}
	if (r->keys >= r->max_keys)
		return NULL;
	size_t len = strlen(key);
	struct rate_entry *e = xmalloc(sizeof(*e) + len + 1);
	memcpy(e->key, key, len + 1);
	e->start = now;
	e->count = 0;
	e->next = r->buckets[b];
	r->buckets[b] = e;
	r->keys++;
	return e;
}

unsigned rate_count(struct rate *rate, const char *key, unsigned limit, time_t now)
{
	if (limit == 0)
		return 0;
	pthread_mutex_lock(&rate->lock);
	struct rate_entry *e = rate_find(rate, key, now);
	unsigned count = 0;
	if (e != NULL) {
		if (rate_expired(rate, e, now)) {
			e->start = now;
			e->count = 0;
		}
		if (e->count < UINT32_MAX)
			e->count++;
		count = e->count;
	}
	pthread_mutex_unlock(&rate->lock);
	return count;
}

int rate_hit(struct rate *rate, const char *key, unsigned limit, time_t now)
{
	return rate_count(rate, key, limit, now) <= limit;
}

size_t rate_keys(struct rate *rate)
{
	pthread_mutex_lock(&rate->lock);
	size_t n = rate->keys;
	pthread_mutex_unlock(&rate->lock);
	return n;
}

void rate_ip_key(const char *ip, char *out, size_t size)
{
	unsigned char a[16];
	if (size == 0)
		return;
	if (inet_pton(AF_INET6, ip, a) == 1) {
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		if (memcmp(a, mapped, sizeof(mapped)) != 0) {
			snprintf(out, size, "%x:%x:%x:%x", a[0] << 8 | a[1], a[2] << 8 | a[3],
			         a[4] << 8 | a[5], a[6] << 8 | a[7]);
			return;
		}
		memmove(a, a + 12, 4);
	} else if (inet_pton(AF_INET, ip, a) != 1) {
		snprintf(out, size, "%s", ip);
		return;
	}
	snprintf(out, size, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
}
