/* Reads that may wait (store.h, store_read()): on a database reached over the network
 * (PostgreSQL) a read is a round trip, which must not stall an event loop, so loop threads
 * hand such reads to a few reader threads of the store; each has its own database
 * connection (store_db_reader()). Where reads never wait (SQLite) they run in place and
 * the pool is not started, unless store_set_read_threads() asks for it (tests drive the
 * queued path on SQLite that way). */
#include "store/store_private.h"

#include <stdlib.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

struct store_read_job {
	struct store_read_job *next;
	store_read_fn *fn, *done;
	void *ctx;
};

/* Reader threads for a shared (networked) database when not configured. */
#define STORE_READ_THREADS_SHARED 4

static void *store_reader_main(void *arg)
{
	struct store *store = arg;
	if (store->v->reader_start != NULL)
		store->v->reader_start(store);
	pthread_mutex_lock(&store->pool_lock);
	for (;;) {
		while (store->pool_head == NULL && !store->pool_stopping)
			pthread_cond_wait(&store->pool_cond, &store->pool_lock);
		struct store_read_job *job = store->pool_head;
		if (job == NULL)
			break; /* stopping, and every job is done */
		store->pool_head = job->next;
		if (store->pool_head == NULL)
			store->pool_tail = NULL;
		pthread_mutex_unlock(&store->pool_lock);
		job->fn(job->ctx);
		job->done(job->ctx);
		free(job);
		pthread_mutex_lock(&store->pool_lock);
	}
	pthread_mutex_unlock(&store->pool_lock);
	return NULL;
}

void store_reader_init(struct store *store)
{
	pthread_mutex_init(&store->pool_lock, NULL);
	pthread_cond_init(&store->pool_cond, NULL);
}

void store_set_read_threads(struct store *store, unsigned n)
{
	pthread_mutex_lock(&store->pool_lock);
	if (store->pool_count == 0)
		store->pool_wanted = n;
	pthread_mutex_unlock(&store->pool_lock);
}

/* Start the pool if reads should leave the loop: true when they do. Under pool_lock. */
static bool store_reader_pool(struct store *store)
{
	if (store->pool_count > 0)
		return true;
	unsigned n = store->pool_wanted > 0 ? store->pool_wanted
	             : store->shared        ? STORE_READ_THREADS_SHARED
	                                    : 0;
	if (n > STORE_READ_THREADS_MAX)
		n = STORE_READ_THREADS_MAX;
	for (unsigned i = 0; i < n; i++) {
		if (pthread_create(&store->pool_tids[i], NULL, store_reader_main, store) != 0) {
			log_error("store: cannot start reader thread %u", i);
			break;
		}
		store->pool_count++;
	}
	return store->pool_count > 0;
}

bool store_reads_wait(struct store *store)
{
	pthread_mutex_lock(&store->pool_lock);
	bool wait = !store->pool_stopping && store_reader_pool(store);
	pthread_mutex_unlock(&store->pool_lock);
	return wait;
}

bool store_read(struct store *store, store_read_fn *fn, store_read_fn *done, void *ctx)
{
	pthread_mutex_lock(&store->pool_lock);
	if (store->pool_stopping || !store_reader_pool(store)) {
		pthread_mutex_unlock(&store->pool_lock);
		fn(ctx);
		return true;
	}
	struct store_read_job *job = xcalloc(1, sizeof(*job));
	*job = (struct store_read_job){.fn = fn, .done = done, .ctx = ctx};
	if (store->pool_tail != NULL)
		store->pool_tail->next = job;
	else
		store->pool_head = job;
	store->pool_tail = job;
	pthread_cond_signal(&store->pool_cond);
	pthread_mutex_unlock(&store->pool_lock);
	return false;
}

void store_reader_stop(struct store *store)
{
	pthread_mutex_lock(&store->pool_lock);
	store->pool_stopping = true;
	pthread_cond_broadcast(&store->pool_cond);
	unsigned n = store->pool_count;
	pthread_mutex_unlock(&store->pool_lock);
	for (unsigned i = 0; i < n; i++)
		pthread_join(store->pool_tids[i], NULL);
	pthread_cond_destroy(&store->pool_cond);
	pthread_mutex_destroy(&store->pool_lock);
}
