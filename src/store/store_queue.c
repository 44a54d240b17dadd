/* The outbound queue's part of the public store API (store.h): argument checks of queue
 * operations before they go to the writer thread, waiting for them, the queue hook, and
 * the reads (listing, one entry, next due time) dispatched to the backend. The SQL is the
 * backend's (sqlite/store_sqlite_queue.c). */
#include "store/store.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store_private.h"
#include "core/banned.h"

void store_queue_domain(const char *rcpt, char *out)
{
	const char *at = strrchr(rcpt, '@');
	const char *d = at == NULL ? "" : at + 1;
	size_t n = 0;
	for (; d[n] != '\0' && n < STORE_ADDRESS_MAX; n++) {
		char c = d[n];
		out[n] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	out[n] = '\0';
}

int store_queue_entry_open(const struct store_queue_entry *entry)
{
	if (entry->path == NULL)
		return fcntl(entry->fd, F_DUPFD_CLOEXEC, 0);
	return open(entry->path, O_RDONLY | O_CLOEXEC);
}

void store_queue_entries_free(struct store_queue_entry *entries, size_t count)
{
	for (size_t i = 0; entries != NULL && i < count; i++) {
		struct store_queue_entry *e = &entries[i];
		for (size_t k = 0; k < e->rcpt_count; k++) {
			struct store_queue_rcpt *r = &e->rcpts[k];
			free((char *)r->address);
			free((char *)r->orcpt);
			free((char *)r->last_error);
			free((char *)r->remote_mta);
			free((char *)r->enhanced_status);
		}
		free(e->rcpts);
		if (e->fd >= 0)
			close(e->fd);
		free((char *)e->path);
		free((char *)e->mail_from);
		free((char *)e->envid);
		free((char *)e->domain);
		free((char *)e->lease_owner);
	}
	free(entries);
}

static bool store_queue_owner_valid(const char *owner)
{
	size_t len = owner == NULL ? 0 : strlen(owner);
	if (len == 0 || len > STORE_QUEUE_OWNER_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)owner[i] < 0x20 || owner[i] == 0x7f)
			return false;
	}
	return true;
}

/* What an operation lacks before it reaches the database: NULL, or INVALID. */
static const char *store_queue_check(const struct store_queue_op *op)
{
	switch (op->action) {
	case STORE_QUEUE_CLAIM:
		return store_queue_owner_valid(op->owner) && op->lease > 0 && op->max > 0
		           ? NULL
		           : STORE_ERROR_INVALID;
	case STORE_QUEUE_RENEW:
		return store_queue_owner_valid(op->owner) && op->lease > 0 && op->id != 0
		           ? NULL
		           : STORE_ERROR_INVALID;
	case STORE_QUEUE_RESULT:
		if (!store_queue_owner_valid(op->owner) || op->id == 0 ||
		    (op->result_count > 0 && op->results == NULL))
			return STORE_ERROR_INVALID;
		for (size_t i = 0; i < op->result_count; i++) {
			if ((unsigned)op->results[i].status > STORE_QUEUE_EXPIRED)
				return STORE_ERROR_INVALID;
		}
		if (op->tlsrpt_count > 0 && op->tlsrpt == NULL)
			return STORE_ERROR_INVALID;
		return NULL;
	case STORE_QUEUE_UNLEASE:
		return store_queue_owner_valid(op->owner) ? NULL : STORE_ERROR_INVALID;
	case STORE_QUEUE_FLUSH:
		return NULL;
	case STORE_QUEUE_TLSRPT_DAY:
		return op->id != 0 && op->tlsrpt_keep_days > 0 ? NULL : STORE_ERROR_INVALID;
	case STORE_QUEUE_DMARC_ADD:
		return op->dmarc != NULL ? NULL : STORE_ERROR_INVALID;
	case STORE_QUEUE_DMARC_DAY:
		return op->id != 0 && op->dmarc_keep_days > 0 ? NULL : STORE_ERROR_INVALID;
	case STORE_QUEUE_DELAY_WARNED:
	case STORE_QUEUE_HOLD:
	case STORE_QUEUE_RELEASE:
	case STORE_QUEUE_DELETE:
		return op->id != 0 ? NULL : STORE_ERROR_INVALID;
	}
	return STORE_ERROR_INVALID;
}

void store_queue(struct store *store, struct store_queue_op *op, store_queue_cb *cb, void *ctx)
{
	op->entries = NULL;
	op->count = 0;
	store_writer_queue(store, op, store_queue_check(op), cb, ctx);
}

static void store_queue_waited(struct store_queue_op *op, void *ctx)
{
	(void)op;
	store_waiter_signal(ctx);
}

int store_queue_wait(struct store *store, struct store_queue_op *op)
{
	struct store_waiter w;
	store_waiter_init(&w);
	store_queue(store, op, store_queue_waited, &w);
	store_waiter_wait(&w);
	return op->result;
}

void store_set_queue_hook(struct store *store, store_queue_hook_fn *fn, void *ctx)
{
	pthread_mutex_lock(&store->queue_lock);
	store->queue_hook = fn;
	store->queue_hook_ctx = fn == NULL ? NULL : ctx;
	pthread_mutex_unlock(&store->queue_lock);
}

int store_queue_next_due(struct store *store, int64_t *when_r)
{
	return store->v->queue_next_due(store, when_r);
}

int store_queue_list(struct store *store, const char *domain,
                     void (*cb)(void *ctx, const struct store_queue_info *info), void *ctx)
{
	char lower[STORE_ADDRESS_MAX + 1];
	if (domain != NULL) {
		if (strlen(domain) > STORE_ADDRESS_MAX)
			return 0; /* no such domain can be queued */
		size_t n = 0;
		for (; domain[n] != '\0'; n++) {
			char c = domain[n];
			lower[n] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
		}
		lower[n] = '\0';
	}
	return store->v->queue_list(store, domain == NULL ? NULL : lower, cb, ctx);
}

int store_queue_show(struct store *store, uint64_t id, struct store_queue_entry **entry_r)
{
	*entry_r = NULL;
	if (id == 0 || id > (uint64_t)INT64_MAX)
		return 0;
	return store->v->queue_show(store, id, entry_r);
}

int store_tlsrpt_list(struct store *store, int64_t day, const char *domain,
                      void (*cb)(void *ctx, const struct store_tlsrpt_row *row), void *ctx)
{
	return store->v->tlsrpt_list(store, day, domain, cb, ctx);
}

int store_dmarc_list(struct store *store, int64_t day, const char *domain,
                     void (*cb)(void *ctx, const struct store_dmarc_row *row), void *ctx)
{
	return store->v->dmarc_list(store, day, domain, cb, ctx);
}
