/* The user+IP session registry (see userip.h): a chained hash table under one mutex. An
 * entry exists only while its count is above zero, so memory follows the sessions. */
#include "core/userip.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

#define USERIP_BUCKETS 1024
#define USERIP_IP_MAX 64

struct userip_entry {
	struct userip_entry *next;
	uint64_t account;
	unsigned count;
	char ip[USERIP_IP_MAX];
};

struct userip {
	pthread_mutex_t lock;
	struct userip_entry *buckets[USERIP_BUCKETS];
};

struct userip *userip_new(void)
{
	struct userip *reg = xcalloc(1, sizeof(*reg));
	pthread_mutex_init(&reg->lock, NULL);
	return reg;
}

void userip_free(struct userip **reg_p)
{
	struct userip *reg = *reg_p;
	if (reg == NULL)
		return;
	for (size_t b = 0; b < USERIP_BUCKETS; b++) {
		while (reg->buckets[b] != NULL) {
			struct userip_entry *next = reg->buckets[b]->next;
			free(reg->buckets[b]);
			reg->buckets[b] = next;
		}
	}
	pthread_mutex_destroy(&reg->lock);
	free(reg);
	*reg_p = NULL;
}

static struct userip_entry **userip_slot(struct userip *reg, uint64_t account, const char *ip)
{
	uint64_t h = 1469598103934665603ull ^ account;
	for (const unsigned char *p = (const unsigned char *)ip; *p != '\0'; p++)
		h = (h ^ *p) * 1099511628211ull;
	struct userip_entry **slot = &reg->buckets[h % USERIP_BUCKETS];
	while (*slot != NULL && ((*slot)->account != account || strcmp((*slot)->ip, ip) != 0))
		slot = &(*slot)->next;
	return slot;
}

int userip_acquire(struct userip *reg, uint64_t account, const char *ip, unsigned limit)
{
	pthread_mutex_lock(&reg->lock);
	struct userip_entry **slot = userip_slot(reg, account, ip);
	struct userip_entry *e = *slot;
	if (e != NULL && limit > 0 && e->count >= limit) {
		pthread_mutex_unlock(&reg->lock);
		return 0;
	}
	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		e->account = account;
		snprintf(e->ip, sizeof(e->ip), "%s", ip);
		*slot = e;
	}
	e->count++;
	pthread_mutex_unlock(&reg->lock);
	return 1;
}

void userip_release(struct userip *reg, uint64_t account, const char *ip)
{
	pthread_mutex_lock(&reg->lock);
	struct userip_entry **slot = userip_slot(reg, account, ip);
	struct userip_entry *e = *slot;
	ASSERT(e != NULL && e->count > 0);
	if (--e->count == 0) {
		*slot = e->next;
		free(e);
	}
	pthread_mutex_unlock(&reg->lock);
}

unsigned userip_count(struct userip *reg, uint64_t account, const char *ip)
{
	pthread_mutex_lock(&reg->lock);
	struct userip_entry *e = *userip_slot(reg, account, ip);
	unsigned n = e != NULL ? e->count : 0;
	pthread_mutex_unlock(&reg->lock);
	return n;
}
