/* Change notifications: sessions watch a mailbox by (account id, name); the writer thread,
 * after the commits of a batch, calls every matching watch once per changed mailbox with
 * its new HIGHESTMODSEQ (store.h, store_watch()). An account watch (store_watch_account(),
 * IMAP NOTIFY) is called once per record of its account instead, kinds included. The watch list has
 * its own lock, which is not held while callbacks run; a busy count per watch lets store_unwatch()
 * wait for a running callback, so none comes after it returns. */
#include "store/store_private.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

struct store_watch {
	struct store_watch *next; /* in its bucket */
	struct store *store;
	uint64_t account_id;
	char *mailbox; /* normalised; "" for an account watch */
	store_watch_cb *cb;
	store_watch_account_cb *account_cb; /* an account watch (store_watch_account()) */
	void *ctx;
	/* Under watch_lock: */
	unsigned busy;         /* the dispatcher holds it for its current round */
	bool dead;             /* removed: its callback is not called any more */
	bool dispatcher_frees; /* removed on the writer thread while busy */
};

/* A watch to call in one round, with the record it is called for. */
struct store_watch_call {
	struct store_watch *watch;
	const struct store_change *change;
};

static size_t store_watch_bucket(uint64_t account_id)
{
	return (size_t)(account_id % STORE_WATCH_BUCKETS);
}

void store_watch_init(struct store *store)
{
	pthread_mutex_init(&store->watch_lock, NULL);
	pthread_cond_init(&store->watch_cond, NULL);
	store->watches = xcalloc(STORE_WATCH_BUCKETS, sizeof(*store->watches));
}

void store_watch_deinit(struct store *store)
{
	if (store->watches == NULL)
		return;
	/* A watch left over is a caller's bug; its handle must not be used any more. */
	size_t left = 0;
	for (size_t i = 0; i < STORE_WATCH_BUCKETS; i++) {
		while (store->watches[i] != NULL) {
			struct store_watch *w = store->watches[i];
			store->watches[i] = w->next;
			free(w->mailbox);
			free(w);
			left++;
		}
	}
	if (left > 0)
		log_error("store: closed with %zu watches still registered", left);
	free(store->watches);
	store->watches = NULL;
	pthread_cond_destroy(&store->watch_cond);
	pthread_mutex_destroy(&store->watch_lock);
}

static void store_watch_add(struct store *store, struct store_watch *w)
{
	size_t b = store_watch_bucket(w->account_id);
	pthread_mutex_lock(&store->watch_lock);
	w->next = store->watches[b];
	store->watches[b] = w;
	pthread_mutex_unlock(&store->watch_lock);
}

struct store_watch *store_watch_account(struct store *store, uint64_t account_id,
                                        store_watch_account_cb *cb, void *ctx)
{
	struct store_watch *w = xcalloc(1, sizeof(*w));
	w->store = store;
	w->account_id = account_id;
	w->mailbox = xstrdup("");
	w->account_cb = cb;
	w->ctx = ctx;
	store_watch_add(store, w);
	return w;
}

struct store_watch *store_watch(struct store *store, uint64_t account_id, const char *mailbox,
                                store_watch_cb *cb, void *ctx)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	struct store_watch *w = xcalloc(1, sizeof(*w));
	w->store = store;
	w->account_id = account_id;
	/* An invalid name never matches a change, which always names a valid mailbox. */
	w->mailbox = xstrdup(store_mailbox_norm(mailbox, name) == 0 ? name : "");
	w->cb = cb;
	w->ctx = ctx;
	store_watch_add(store, w);
	return w;
}

static void store_watch_free(struct store_watch *w)
{
	free(w->mailbox);
	free(w);
}

void store_watch_remove(struct store_watch **watchp)
{
	struct store_watch *w = watchp == NULL ? NULL : *watchp;
	if (w == NULL)
		return;
	*watchp = NULL;
	struct store *store = w->store;
	pthread_mutex_lock(&store->watch_lock);
	for (struct store_watch **p = &store->watches[store_watch_bucket(w->account_id)];
	     *p != NULL; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			break;
		}
	}
	w->dead = true;
	bool dispatcher =
	    (store->writer_started && pthread_equal(pthread_self(), store->writer)) ||
	    (store->notifier_started && pthread_equal(pthread_self(), store->notifier));
	if (w->busy > 0 && dispatcher) {
		/* From a callback: the dispatcher is this thread; it frees w after its round. */
		w->dispatcher_frees = true;
		pthread_mutex_unlock(&store->watch_lock);
		return;
	}
	while (w->busy > 0)
		pthread_cond_wait(&store->watch_cond, &store->watch_lock);
	pthread_mutex_unlock(&store->watch_lock);
	store_watch_free(w);
}

/* ---- the changes of a commit ---- */

void store_watch_changed(struct store_changes *changes, uint64_t account_id, const char *mailbox,
                         uint64_t highestmodseq)
{
	if (changes->count == changes->cap) {
		changes->cap = changes->cap == 0 ? 16 : changes->cap * 2;
		changes->v = xrealloc(changes->v, changes->cap * sizeof(*changes->v));
	}
	changes->v[changes->count++] = (struct store_change){
	    .account_id = account_id,
	    .mailbox = xstrdup(mailbox),
	    .highestmodseq = highestmodseq,
	    .kind = STORE_CHANGE_MAILBOX,
	};
}

void store_watch_changed_kind(struct store_changes *changes, uint64_t account_id,
                              const char *mailbox, enum store_change_kind kind,
                              const char *old_name)
{
	store_watch_changed(changes, account_id, mailbox, 0);
	struct store_change *c = &changes->v[changes->count - 1];
	c->kind = kind;
	c->old_name = old_name != NULL ? xstrdup(old_name) : NULL;
}

void store_watch_changed_all(struct store *store, struct store_changes *changes)
{
	pthread_mutex_lock(&store->watch_lock);
	for (size_t b = 0; b < STORE_WATCH_BUCKETS; b++) {
		for (struct store_watch *w = store->watches[b]; w != NULL; w = w->next) {
			if (!w->dead && w->mailbox[0] != '\0')
				store_watch_changed(changes, w->account_id, w->mailbox, UINT64_MAX);
		}
	}
	pthread_mutex_unlock(&store->watch_lock);
}

void store_watch_truncate(struct store_changes *changes, size_t count)
{
	while (changes->count > count) {
		struct store_change *c = &changes->v[--changes->count];
		free(c->mailbox);
		free(c->old_name);
	}
}

void store_watch_changes_free(struct store_changes *changes)
{
	store_watch_truncate(changes, 0);
	free(changes->v);
	changes->v = NULL;
	changes->cap = 0;
}

/* The last record of w's mailbox in changes, or NULL. */
static const struct store_change *store_watch_match(const struct store_watch *w,
                                                    const struct store_changes *changes)
{
	for (size_t i = changes->count; i > 0; i--) {
		const struct store_change *c = &changes->v[i - 1];
		if (c->account_id == w->account_id && c->kind == STORE_CHANGE_MAILBOX &&
		    strcmp(c->mailbox, w->mailbox) == 0)
			return c;
	}
	return NULL;
}

static void store_watch_call_add(struct store_watch_call **calls, size_t *count, size_t *cap,
                                 struct store_watch *w, const struct store_change *c)
{
	if (*count == *cap) {
		*cap = *cap == 0 ? 16 : *cap * 2;
		*calls = xrealloc(*calls, *cap * sizeof(**calls));
	}
	(*calls)[(*count)++] = (struct store_watch_call){w, c};
	w->busy++;
}

/* Under watch_lock: the watches that changes concern, each marked busy once per call. */
static struct store_watch_call *
store_watch_collect(struct store *store, const struct store_changes *changes, size_t *count_r)
{
	struct store_watch_call *calls = NULL;
	size_t count = 0, cap = 0;
	for (size_t i = 0; i < changes->count; i++) {
		size_t b = store_watch_bucket(changes->v[i].account_id);
		bool seen = false;
		for (size_t k = 0; k < i && !seen; k++)
			seen = store_watch_bucket(changes->v[k].account_id) == b;
		for (struct store_watch *w = seen ? NULL : store->watches[b]; w != NULL;
		     w = w->next) {
			if (w->account_cb != NULL) {
				/* Not the notifier's "look again" records: they name other
				 * watches' mailboxes, not changes. */
				for (size_t k = 0; k < changes->count; k++)
					if (changes->v[k].account_id == w->account_id &&
					    changes->v[k].highestmodseq != UINT64_MAX &&
					    changes->v[k].kind != STORE_CHANGE_ACL)
						store_watch_call_add(&calls, &count, &cap, w,
						                     &changes->v[k]);
				continue;
			}
			const struct store_change *c = store_watch_match(w, changes);
			if (c != NULL)
				store_watch_call_add(&calls, &count, &cap, w, c);
		}
	}
	*count_r = count;
	return calls;
}

void store_watch_notify(struct store *store, struct store_changes *changes)
{
	size_t count;
	if (changes->count == 0)
		return;
	for (size_t i = 0; i < changes->count; i++) {
		if (changes->v[i].kind == STORE_CHANGE_ACL) {
			atomic_fetch_add(&store->acl_version, 1);
			break;
		}
	}
	pthread_mutex_lock(&store->watch_lock);
	struct store_watch_call *calls = store_watch_collect(store, changes, &count);
	pthread_mutex_unlock(&store->watch_lock);
	if (count == 0) {
		store_watch_truncate(changes, 0);
		return;
	}

	/* The records stay until the callbacks ran (account watches read them). */
	for (size_t i = 0; i < count; i++) {
		struct store_watch *w = calls[i].watch;
		const struct store_change *c = calls[i].change;
		pthread_mutex_lock(&store->watch_lock);
		bool dead = w->dead;
		pthread_mutex_unlock(&store->watch_lock);
		if (dead)
			continue;
		if (w->account_cb != NULL)
			w->account_cb(w->ctx, &(struct store_change_info){
			                          .mailbox = c->mailbox,
			                          .old_name = c->old_name,
			                          .highestmodseq = c->highestmodseq,
			                          .kind = c->kind,
			                      });
		else
			w->cb(w->ctx, c->highestmodseq);
	}
	store_watch_truncate(changes, 0);

	pthread_mutex_lock(&store->watch_lock);
	for (size_t i = 0; i < count; i++) {
		struct store_watch *w = calls[i].watch;
		if (--w->busy == 0 && w->dispatcher_frees)
			store_watch_free(w);
	}
	pthread_cond_broadcast(&store->watch_cond);
	pthread_mutex_unlock(&store->watch_lock);
	free(calls);
}
