/* The outbound engine's queue side (see outbound.h): it claims due entries under a lease,
 * keeps the concurrency limits, hands store completions from the writer thread to its loop,
 * and frees each attempt when it is recorded. One attempt is outbound_attempt.c's; how it
 * is recorded and reported, outbound_report.c's. */
#include "smtp/outbound_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "mime/dkim_keys.h"
#include "net/net_event.h"
#include "net/server.h"
#include "net/tls.h"
#include "core/banned.h"

static void outbound_claim(struct outbound *ob);
static void outbound_due_read(void *ctx);
static void outbound_due_done(void *ctx);
static void outbound_due_answer(struct outbound *ob);

bool outbound_stopping(struct outbound *ob)
{
	pthread_mutex_lock(&ob->lock);
	bool stopping = ob->stopping;
	pthread_mutex_unlock(&ob->lock);
	return stopping;
}

/* Writer thread: hand the completed operation to the loop. */
static void outbound_op_done(struct store_queue_op *op, void *ctx)
{
	(void)op;
	struct ob_op *o = ctx;
	struct outbound *ob = o->ob;
	pthread_mutex_lock(&ob->lock);
	o->next = ob->done;
	ob->done = o;
	net_event_wake(ob->wake);
	pthread_cond_broadcast(&ob->idle); /* outbound_free() may be waiting */
	pthread_mutex_unlock(&ob->lock);
}

void outbound_queue_op(struct outbound *ob, struct ob_op *op)
{
	op->ob = ob;
	if (op->op.owner == NULL)
		op->op.owner = ob->owner;
	pthread_mutex_lock(&ob->lock);
	ob->in_flight++;
	pthread_mutex_unlock(&ob->lock);
	store_queue(ob->store, &op->op, outbound_op_done, op);
}

static size_t outbound_domain_active(struct outbound *ob, const char *domain)
{
	size_t n = 0;
	for (struct ob_job *j = ob->jobs; j != NULL; j = j->next)
		if (j->state == OB_JOB_RUNNING && strcmp(j->entry->domain, domain) == 0)
			n++;
	return n;
}

/* Start every waiting job whose domain has a free slot. */
static void outbound_start_waiting(struct outbound *ob)
{
	for (struct ob_job *j = ob->jobs; j != NULL; j = j->next) {
		if (j->state != OB_JOB_WAITING)
			continue;
		if (outbound_domain_active(ob, j->entry->domain) >=
		    j->conf->outbound_domain_concurrency)
			continue;
		j->state = OB_JOB_RUNNING;
		outbound_attempt_start(j);
	}
}

static void outbound_batch_unref(struct ob_batch *b)
{
	if (--b->refs > 0)
		return;
	store_queue_entries_free(b->entries, b->count);
	free(b);
}

void outbound_job_done(struct ob_job *job)
{
	struct outbound *ob = job->ob;
	for (struct ob_job **p = &ob->jobs; *p != NULL; p = &(*p)->next) {
		if (*p == job) {
			*p = job->next;
			break;
		}
	}
	if (!job->slot_freed)
		ob->active--;
	outbound_attempt_free(job);
	net_event_free(&job->renew);
	outbound_batch_unref(job->batch);
	conf_free(&job->conf);
	free(job);
	if (!outbound_stopping(ob)) {
		outbound_start_waiting(ob);
		outbound_claim(ob);
	}
}

void outbound_slot_free(struct ob_job *job)
{
	if (job->slot_freed)
		return;
	job->slot_freed = true;
	job->ob->active--;
	net_event_wake(job->ob->wake);
}

/* A lease is renewed every third of its length: an attempt keeps it however long it runs. */
static unsigned outbound_renew_ms(const struct conf *conf)
{
	return conf->queue_lease_time * 1000u / 3u;
}

/* Keep the lease while an attempt runs longer than a lease. */
static void outbound_renew(void *ctx)
{
	struct ob_job *job = ctx;
	struct ob_op *o = xcalloc(1, sizeof(*o));
	o->op.action = STORE_QUEUE_RENEW;
	o->op.id = job->entry->id;
	o->op.lease = job->conf->queue_lease_time;
	outbound_queue_op(job->ob, o);
	net_event_schedule(job->renew, outbound_renew_ms(job->conf));
}

static void outbound_claimed(struct outbound *ob, struct ob_op *o)
{
	ob->claiming = false;
	if (o->op.result < 0) {
		log_error("event=outbound-claim result=failed error=\"%s\"", o->op.error);
		return;
	}
	if (o->op.count == 0) {
		free(o->op.entries);
		return;
	}
	struct ob_batch *b = xcalloc(1, sizeof(*b));
	b->entries = o->op.entries;
	b->count = o->op.count;
	b->refs = b->count;
	for (size_t i = 0; i < b->count; i++) {
		struct ob_job *job = xcalloc(1, sizeof(*job));
		job->ob = ob;
		job->batch = b;
		job->entry = &b->entries[i];
		job->conf = conf_slot_get(ob->slot);
		job->state = OB_JOB_WAITING;
		job->renew = net_event_new(ob->loop, outbound_renew, job);
		net_event_schedule(job->renew, outbound_renew_ms(job->conf));
		job->next = ob->jobs;
		ob->jobs = job;
		ob->active++;
	}
	outbound_start_waiting(ob);
	outbound_claim(ob); /* more may be due than one claim took */
}

static void outbound_completed(struct outbound *ob, struct ob_op *o)
{
	switch (o->op.action) {
	case STORE_QUEUE_CLAIM:
		outbound_claimed(ob, o);
		break;
	case STORE_QUEUE_UNLEASE:
		ob->claiming = false;
		ob->unleased = o->op.result == 0;
		if (o->op.changed > 0)
			log_info("event=outbound-unlease entries=%zu owner=%s", o->op.changed,
			         ob->owner);
		outbound_claim(ob);
		break;
	case STORE_QUEUE_RESULT:
		if (o->op.result < 0)
			log_error("event=outbound-record queue=%llu result=failed error=\"%s\"",
			          (unsigned long long)o->op.id, o->op.error);
		outbound_job_done(o->job);
		break;
	case STORE_QUEUE_TLSRPT_DAY:
		outbound_tlsrpt_claimed(ob, o);
		break;
	case STORE_QUEUE_DMARC_DAY:
		outbound_dmarc_claimed(ob, o);
		break;
	case STORE_QUEUE_RENEW:
		if (o->op.result < 0)
			log_warn("event=outbound-renew queue=%llu result=failed error=\"%s\"",
			         (unsigned long long)o->op.id, o->op.error);
		break;
	default:
		break;
	}
	free(o->results);
	free(o->tlsrpt);
	free(o);
}

/* Stopping: attempts in flight end without being recorded (their leases run out, and the
 * next start frees them); a session still open is told to quit and its closed callback
 * drops the job. */
static void outbound_drop_all(struct outbound *ob)
{
	outbound_session_sweep(ob, true);
	for (struct ob_job *j = ob->jobs, *next; j != NULL; j = next) {
		next = j->next;
		if (j->state == OB_JOB_REPORTING)
			continue;
		if (j->sess != NULL)
			smtp_client_quit(j->sess->client);
		else
			outbound_job_done(j);
	}
}

/* The loop's wake-up: store completions, and the queue hook (new or flushed entries). */
static void outbound_wake(void *ctx)
{
	struct outbound *ob = ctx;
	pthread_mutex_lock(&ob->lock);
	struct ob_op *list = ob->done;
	ob->done = NULL;
	bool stopping = ob->stopping;
	bool due = ob->due_ready;
	ob->due_ready = false;
	pthread_mutex_unlock(&ob->lock);
	/* Oldest first. */
	struct ob_op *rev = NULL;
	while (list != NULL) {
		struct ob_op *next = list->next;
		list->next = rev;
		rev = list;
		list = next;
	}
	unsigned n = 0;
	for (struct ob_op *o = rev, *next; o != NULL; o = next, n++) {
		next = o->next;
		outbound_completed(ob, o);
	}
	if (due) {
		n++;
		if (stopping)
			ob->due_reading = false;
		else
			outbound_due_answer(ob);
	}
	if (stopping) {
		outbound_drop_all(ob);
	} else {
		outbound_start_waiting(ob);
		outbound_claim(ob);
	}
	pthread_mutex_lock(&ob->lock);
	ob->in_flight -= n;
	if (ob->in_flight == 0)
		pthread_cond_broadcast(&ob->idle);
	pthread_mutex_unlock(&ob->lock);
}

/* Claim as many due entries as there are free slots, one claim at a time. */
static void outbound_claim(struct outbound *ob)
{
	if (ob->claiming || !ob->unleased || outbound_stopping(ob))
		return;
	struct conf *conf = conf_slot_get(ob->slot);
	size_t max = conf->outbound_enabled ? conf->outbound_concurrency : 0;
	conf_free(&conf);
	if (ob->active >= max || ob->due_reading)
		return;
	/* Is anything due? A read: in place when reads never wait, else on a store thread,
	 * and the answer comes back through the wake (outbound_due_answer()). */
	ob->due_reading = true;
	if (!store_reads_wait(ob->store)) {
		outbound_due_read(ob);
		outbound_due_answer(ob);
		return;
	}
	pthread_mutex_lock(&ob->lock);
	ob->in_flight++;
	pthread_mutex_unlock(&ob->lock);
	if (store_read(ob->store, outbound_due_read, outbound_due_done, ob))
		outbound_due_done(ob);
}

/* Where reads may wait. */
static void outbound_due_read(void *ctx)
{
	struct outbound *ob = ctx;
	ob->due_ret = store_queue_next_due(ob->store, &ob->due_when);
}

/* Any thread: the answer goes to the loop. */
static void outbound_due_done(void *ctx)
{
	struct outbound *ob = ctx;
	pthread_mutex_lock(&ob->lock);
	ob->due_ready = true;
	net_event_wake(ob->wake);
	/* outbound_free() may be waiting: after the loop stopped, it takes this answer itself
	 * (without this it slept for ever on a read that finished under it). */
	pthread_cond_broadcast(&ob->idle);
	pthread_mutex_unlock(&ob->lock);
}

/* On the loop, after the due read: claim when something is due. */
static void outbound_due_answer(struct outbound *ob)
{
	ob->due_reading = false;
	struct conf *conf = conf_slot_get(ob->slot);
	size_t max = conf->outbound_enabled ? conf->outbound_concurrency : 0;
	unsigned lease = conf->queue_lease_time;
	conf_free(&conf);
	if (ob->due_ret <= 0 || ob->due_when > (int64_t)time(NULL) || ob->active >= max ||
	    ob->claiming || outbound_stopping(ob))
		return;
	ob->claiming = true;
	struct ob_op *o = xcalloc(1, sizeof(*o));
	o->op.action = STORE_QUEUE_CLAIM;
	o->op.lease = lease;
	o->op.max = max - ob->active;
	outbound_queue_op(ob, o);
}

static void outbound_timer(void *ctx)
{
	struct outbound *ob = ctx;
	if (outbound_stopping(ob))
		return;
	if (!ob->unleased && !ob->claiming) {
		/* First turn: free the leases an earlier process of this node left behind
		 * (owner "hostname:pid"; the prefix "hostname:" names all of them). */
		ob->claiming = true;
		struct ob_op *o = xcalloc(1, sizeof(*o));
		o->op.action = STORE_QUEUE_UNLEASE;
		o->op.owner = ob->owner_prefix;
		outbound_queue_op(ob, o);
		net_event_schedule(ob->timer, OB_POLL_MS);
		return;
	}
	outbound_session_sweep(ob, false);
	outbound_claim(ob);
	outbound_tlsrpt_tick(ob);
	outbound_dmarc_tick(ob);
	net_event_schedule(ob->timer, OB_POLL_MS);
}

/* Writer thread, after a commit that queued or flushed entries. */
static void outbound_hook(void *ctx)
{
	struct outbound *ob = ctx;
	net_event_wake(ob->wake);
}

int outbound_check_conf(const struct conf *conf, const char **error_r)
{
	struct outbound_hop hop;
	if (outbound_route_lookup(conf->outbound_routes, "", &hop) < 0) {
		*error_r = "outbound_routes: expected DOMAIN=HOST[:PORT][/MODE] entries";
		return -1;
	}
	if (conf->smarthost[0] != '\0' &&
	    outbound_route_parse_hop(conf->smarthost, strlen(conf->smarthost), &hop) < 0) {
		*error_r = "smarthost: expected HOST[:PORT]";
		return -1;
	}
	if (conf->smarthost_tls[0] != '\0' && strcmp(conf->smarthost_tls, "tls") != 0 &&
	    strcmp(conf->smarthost_tls, "starttls") != 0) {
		*error_r = "smarthost_tls: expected tls or starttls";
		return -1;
	}
	/* A password file others can read is refused, as ssh refuses a readable key. */
	struct stat st;
	if (conf->smarthost_password_file[0] != '\0' &&
	    stat(conf->smarthost_password_file, &st) == 0 && (st.st_mode & 077) != 0) {
		*error_r = "smarthost_password_file: readable by others (chmod 600 it)";
		return -1;
	}
	return 0;
}

struct outbound *outbound_new(struct net_server *server, struct store *store,
                              struct conf_slot *slot, const char **error_r)
{
	struct outbound *ob = xcalloc(1, sizeof(*ob));
	ob->server = server;
	ob->loop = net_server_loop(server, 0);
	ob->store = store;
	ob->slot = slot;
	outbound_daily_init(&ob->tlsrpt_daily);
	outbound_daily_init(&ob->dmarc_daily);
	struct conf *conf = conf_slot_get(slot);
	if (outbound_check_conf(conf, error_r) < 0) {
		conf_free(&conf);
		free(ob);
		return NULL;
	}
	snprintf(ob->owner, sizeof(ob->owner), "%s:%ld", conf->hostname, (long)getpid());
	snprintf(ob->owner_prefix, sizeof(ob->owner_prefix), "%s:", conf->hostname);
	ob->dns = dns_resolver_new(ob->loop, conf, error_r);
	ob->tls = ob->dns == NULL ? NULL : tls_client_ctx_new(conf->outbound_tls_ca_file, error_r);
	ob->dkim = dkim_keys_new(conf->data_dir);
	conf_free(&conf);
	pthread_mutex_init(&ob->lock, NULL);
	pthread_cond_init(&ob->idle, NULL);
	ob->wake = net_event_new(ob->loop, outbound_wake, ob);
	ob->timer = net_event_new(ob->loop, outbound_timer, ob);
	if (ob->dns == NULL || ob->tls == NULL) {
		outbound_free(&ob);
		return NULL;
	}
	store_set_queue_hook(store, outbound_hook, ob);
	net_event_schedule(ob->timer, 0);
	return ob;
}

void outbound_stop(struct outbound *ob)
{
	if (ob == NULL)
		return;
	pthread_mutex_lock(&ob->lock);
	ob->stopping = true;
	net_event_wake(ob->wake);
	pthread_mutex_unlock(&ob->lock);
}

void outbound_free(struct outbound **obp)
{
	struct outbound *ob = *obp;
	if (ob == NULL)
		return;
	store_set_queue_hook(ob->store, NULL, NULL);
	pthread_mutex_lock(&ob->lock);
	ob->stopping = true;
	while (ob->in_flight > 0) {
		pthread_mutex_unlock(&ob->lock);
		outbound_wake(ob); /* the loop has stopped: this thread takes the completions */
		pthread_mutex_lock(&ob->lock);
		if (ob->in_flight > 0 && ob->done == NULL && !ob->due_ready)
			pthread_cond_wait(&ob->idle, &ob->lock);
	}
	pthread_mutex_unlock(&ob->lock);
	outbound_tlsrpt_run_cancel(&ob->tlsrpt_run);
	outbound_dmarc_run_cancel(&ob->dmarc_run);
	while (ob->jobs != NULL)
		outbound_job_done(ob->jobs);
	net_event_free(&ob->wake);
	net_event_free(&ob->timer);
	while (ob->sts_cache != NULL) {
		struct ob_sts *c = ob->sts_cache;
		ob->sts_cache = c->next;
		free(c);
	}
	dns_resolver_free(&ob->dns);
	tls_ctx_unref(&ob->tls);
	dkim_keys_free(&ob->dkim);
	pthread_cond_destroy(&ob->idle);
	pthread_mutex_destroy(&ob->lock);
	free(ob);
	*obp = NULL;
}
