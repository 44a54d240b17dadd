/* Thread pool for auth (see auth_pool.h): one mutex, one condition variable, one list. */
#include "auth/auth_pool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

struct auth_pool {
	pthread_mutex_t lock; /* protects head, tail and stopping */
	pthread_cond_t cond;
	struct auth_pool_job *head, *tail;
	bool stopping;
	bool low_priority;
	pthread_t *threads;
	unsigned count;
};

/* Linux: nice is per thread, and a new thread starts at its creator's. AUTH_WORKER_NICE
 * above the event-loop threads (at most 19), an event-loop thread that wakes preempts a
 * hashing worker, and the worker still gets a tenth of a core against a busy program of the
 * loops' priority. Relative, so that a server started under `nice` keeps the same gap. Not
 * SCHED_IDLE: its weight (3 against 1024) let two busy programs hold a login for 10 s and
 * more. Failure only costs latency. */
static void auth_pool_lower_priority(void)
{
	errno = 0;
	int base = getpriority(PRIO_PROCESS, (id_t)gettid());
	if (base == -1 && errno != 0)
		base = 0;
	int target = base + AUTH_WORKER_NICE > 19 ? 19 : base + AUTH_WORKER_NICE;
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), target) < 0)
		log_warn("auth: cannot lower the worker threads' priority");
}

static void *auth_pool_thread(void *arg)
{
	struct auth_pool *pool = arg;
	if (pool->low_priority)
		auth_pool_lower_priority();
	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (pool->head == NULL && !pool->stopping)
			pthread_cond_wait(&pool->cond, &pool->lock);
		struct auth_pool_job *job = pool->head;
		if (job == NULL)
			break; /* stopping and drained */
		pool->head = job->next;
		if (pool->head == NULL)
			pool->tail = NULL;
		pthread_mutex_unlock(&pool->lock);
		job->next = NULL;
		job->run(job);
		pthread_mutex_lock(&pool->lock);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

struct auth_pool *auth_pool_new(unsigned threads, bool low_priority)
{
	ASSERT(threads >= 1);
	struct auth_pool *pool = xcalloc(1, sizeof(*pool));
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
	pool->low_priority = low_priority;
	pool->threads = xcalloc(threads, sizeof(*pool->threads));
	/* The threads take no signals: those belong to the loop threads. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned i = 0; i < threads; i++) {
		int err = pthread_create(&pool->threads[i], NULL, auth_pool_thread, pool);
		if (err != 0)
			log_fatal("auth: cannot start a thread: %s", strerror(err));
		pool->count++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return pool;
}

void auth_pool_push(struct auth_pool *pool, struct auth_pool_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&pool->lock);
	ASSERT(!pool->stopping);
	if (pool->tail != NULL)
		pool->tail->next = job;
	else
		pool->head = job;
	pool->tail = job;
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
}

void auth_pool_free(struct auth_pool **poolp)
{
	struct auth_pool *pool = *poolp;
	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; i < pool->count; i++)
		pthread_join(pool->threads[i], NULL);
	ASSERT(pool->head == NULL);
	pthread_cond_destroy(&pool->cond);
	pthread_mutex_destroy(&pool->lock);
	free(pool->threads);
	free(pool);
	*poolp = NULL;
}
