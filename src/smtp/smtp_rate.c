/* Fixed-window event counters per key (smtp_rate.h): a chained hash table under one mutex.
 * A key's window starts at its first event and lasts window seconds; the next event after
 * that starts a new window at 1. */
#include "smtp/smtp_rate.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "core/banned.h"

#define SMTP_RATE_BUCKETS 4096

struct smtp_rate_entry {
	struct smtp_rate_entry *next;
	time_t start;
	unsigned count;
	char key[]; /* NUL-terminated */
};

struct smtp_rate {
	pthread_mutex_t lock;
	unsigned window;
	size_t max_keys, keys;
	struct smtp_rate_entry *buckets[SMTP_RATE_BUCKETS];
};

struct smtp_rate *smtp_rate_new(unsigned window, size_t max_keys)
{
	struct smtp_rate *r = xcalloc(1, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->window = window > 0 ? window : 1;
	r->max_keys = max_keys > 0 ? max_keys : 1;
	return r;
}

void smtp_rate_free(struct smtp_rate **rate)
{
	struct smtp_rate *r = *rate;
	if (r == NULL)
		return;
	for (size_t i = 0; i < SMTP_RATE_BUCKETS; i++) {
		while (r->buckets[i] != NULL) {
			struct smtp_rate_entry *e = r->buckets[i];
			r->buckets[i] = e->next;
			free(e);
		}
	}
	pthread_mutex_destroy(&r->lock);
	free(r);
	*rate = NULL;
}

static size_t smtp_rate_bucket(const char *key)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	return h % SMTP_RATE_BUCKETS;
}

static bool smtp_rate_expired(const struct smtp_rate *r, const struct smtp_rate_entry *e,
                              time_t now)
{
	return now - e->start >= (time_t)r->window || now < e->start;
}

/* Under the lock: drop every key whose window is over. */
static void smtp_rate_sweep(struct smtp_rate *r, time_t now)
{
	for (size_t i = 0; i < SMTP_RATE_BUCKETS; i++) {
		struct smtp_rate_entry **p = &r->buckets[i];
		while (*p != NULL) {
			struct smtp_rate_entry *e = *p;
			if (smtp_rate_expired(r, e, now)) {
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
static struct smtp_rate_entry *smtp_rate_entry(struct smtp_rate *r, const char *key, time_t now)
{
	size_t b = smtp_rate_bucket(key);
	for (struct smtp_rate_entry *e = r->buckets[b]; e != NULL; e = e->next) {
		if (strcmp(e->key, key) == 0)
			return e;
	}
	if (r->keys >= r->max_keys)
		smtp_rate_sweep(r, now);
	if (r->keys >= r->max_keys)
		return NULL;
	size_t len = strlen(key);
	struct smtp_rate_entry *e = xmalloc(sizeof(*e) + len + 1);
	memcpy(e->key, key, len + 1);
	e->start = now;
	e->count = 0;
	e->next = r->buckets[b];
	r->buckets[b] = e;
	r->keys++;
	return e;
}

int smtp_rate_hit(struct smtp_rate *rate, const char *key, unsigned limit, time_t now)
{
	if (limit == 0)
		return 1;
	pthread_mutex_lock(&rate->lock);
	struct smtp_rate_entry *e = smtp_rate_entry(rate, key, now);
	int ok = 1;
	if (e != NULL) {
		if (smtp_rate_expired(rate, e, now)) {
			e->start = now;
			e->count = 0;
		}
		if (e->count < UINT32_MAX)
			e->count++;
		ok = e->count <= limit;
	}
	pthread_mutex_unlock(&rate->lock);
	return ok;
}

size_t smtp_rate_keys(struct smtp_rate *rate)
{
	pthread_mutex_lock(&rate->lock);
	size_t n = rate->keys;
	pthread_mutex_unlock(&rate->lock);
	return n;
}
