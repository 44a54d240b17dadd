/* \Recent (RFC 3501 §2.3.2) for IMAP4rev1 sessions: per mailbox, a boundary UID in memory.
 * Messages at or above it have been announced to no session yet; the first session that
 * is told of them (SELECT, or a later EXISTS in a read-write session) claims them by moving
 * the boundary to UIDNEXT under one lock, so each message is recent in exactly one session
 * (Dovecot keeps the same boundary in its index). A mailbox met for the first time in this
 * process starts at the first message stored since the store opened (the backend knows):
 * after a restart, older messages are not recent any more. */
#include "store/store_private.h"

#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "core/banned.h"

struct store_recent {
	struct store_recent *next; /* in its bucket */
	uint64_t account_id;
	uint32_t uidvalidity;
	uint32_t first; /* lowest UID not yet claimed */
	char name[];    /* normalised */
};

static size_t store_recent_bucket(uint64_t account_id, const char *name)
{
	uint64_t h = account_id * 0x9e3779b97f4a7c15ULL;
	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return (size_t)(h % STORE_RECENT_BUCKETS);
}

void store_recent_init(struct store *store)
{
	pthread_mutex_init(&store->recent_lock, NULL);
	store->recent = xcalloc(STORE_RECENT_BUCKETS, sizeof(*store->recent));
}

void store_recent_deinit(struct store *store)
{
	if (store->recent == NULL)
		return;
	for (size_t i = 0; i < STORE_RECENT_BUCKETS; i++) {
		while (store->recent[i] != NULL) {
			struct store_recent *r = store->recent[i];
			store->recent[i] = r->next;
			free(r);
		}
	}
	free(store->recent);
	store->recent = NULL;
	pthread_mutex_destroy(&store->recent_lock);
}

/* Under recent_lock. */
static struct store_recent *store_recent_find(struct store *store, uint64_t account_id,
                                              const char *name)
{
	for (struct store_recent *r = store->recent[store_recent_bucket(account_id, name)];
	     r != NULL; r = r->next)
		if (r->account_id == account_id && strcmp(r->name, name) == 0)
			return r;
	return NULL;
}

int store_recent_claim(struct store *store, uint64_t account_id, const char *mailbox,
                       uint32_t uidvalidity, uint32_t uidnext, bool claim, uint32_t *first_r)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	if (store_mailbox_norm(mailbox, name) < 0)
		return 0;
	pthread_mutex_lock(&store->recent_lock);
	struct store_recent *r = store_recent_find(store, account_id, name);
	if (r == NULL || r->uidvalidity != uidvalidity) {
		/* Not known yet (or recreated): ask the backend outside the lock. */
		pthread_mutex_unlock(&store->recent_lock);
		uint32_t validity = 0, first = 0;
		int ret =
		    store->v->mailbox_recent_first(store, account_id, name, &validity, &first);
		if (ret <= 0)
			return ret;
		if (validity != uidvalidity) /* the caller's view is of another mailbox */
			first = uidnext;
		pthread_mutex_lock(&store->recent_lock);
		r = store_recent_find(store, account_id, name);
		if (r == NULL) {
			size_t len = strlen(name);
			r = xcalloc(1, sizeof(*r) + len + 1);
			memcpy(r->name, name, len + 1);
			r->account_id = account_id;
			size_t b = store_recent_bucket(account_id, name);
			r->next = store->recent[b];
			store->recent[b] = r;
			r->uidvalidity = uidvalidity;
			r->first = first;
		} else if (r->uidvalidity != uidvalidity) {
			r->uidvalidity = uidvalidity;
			r->first = first;
		}
	}
	*first_r = r->first;
	if (claim && uidnext > r->first)
		r->first = uidnext;
	pthread_mutex_unlock(&store->recent_lock);
	return 1;
}
