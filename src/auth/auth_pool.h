/* A FIFO of jobs served by a fixed set of threads: auth's password hashers (at idle
 * priority, so hashing never delays an event loop) and its look-up threads (at normal
 * priority, for account look-ups that may wait on a database server). */
#ifndef POSTHORN_AUTH_AUTH_POOL_H
#define POSTHORN_AUTH_AUTH_POOL_H

#include <stdbool.h>

/* Embed as the first member of a job. run(job) is called on a pool thread and owns the job
 * from then on (it frees it, or pushes it on to another pool). */
struct auth_pool_job {
	struct auth_pool_job *next;
	void (*run)(struct auth_pool_job *job);
};

struct auth_pool;

/* Start threads threads (>= 1). low_priority: at nice AUTH_WORKER_NICE (auth.h).
 * The threads block every signal. Aborts via log_fatal() when a thread cannot start. */
struct auth_pool *auth_pool_new(unsigned threads, bool low_priority);
/* Queue job (FIFO); one waiting thread wakes for it. Not after auth_pool_free() began. */
void auth_pool_push(struct auth_pool *pool, struct auth_pool_job *job);
/* Run every queued job (jobs queued meanwhile too), join the threads, free. Accepts NULL;
 * sets *pool NULL. */
void auth_pool_free(struct auth_pool **pool);

#endif
