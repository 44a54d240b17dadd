/* The end of an attempt (see outbound_private.h): one log line per recipient, the DSNs the
 * sender asked for or gets by default (failure, delay warning, success through a host
 * without DSN), and the outcome recorded in the store, which schedules the next attempt or
 * lets the entry go. DSNs are built before the record, while the message is still mapped,
 * and never for a message with the null sender (no bounce of a bounce). */
#include "smtp/outbound_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "smtp/dsn.h"
#include "core/banned.h"

/* What this attempt means for a recipient, in the store's terms. */
static enum store_queue_status report_status(const struct ob_job *job, const struct ob_rcpt *r)
{
	switch (r->status) {
	case SMTP_CLIENT_DELIVERED:
		return STORE_QUEUE_DELIVERED;
	case SMTP_CLIENT_PERMFAIL:
		return STORE_QUEUE_FAILED;
	default:
		break;
	}
	int64_t expires = job->entry->created + (int64_t)job->conf->queue_lifetime;
	return job->now >= expires ? STORE_QUEUE_EXPIRED : STORE_QUEUE_PENDING;
}

static const char *report_status_name(enum store_queue_status s)
{
	switch (s) {
	case STORE_QUEUE_DELIVERED:
		return "sent";
	case STORE_QUEUE_FAILED:
		return "bounced";
	case STORE_QUEUE_EXPIRED:
		return "expired";
	default:
		return "deferred";
	}
}

/* The reply as one log-safe value (no quotes or line ends). */
static void report_safe(const char *in, char *out, size_t n)
{
	size_t o = 0;
	for (; *in != '\0' && o + 1 < n; in++)
		out[o++] = *in == '"' ? '\'' : (unsigned char)*in < 0x20 ? ' ' : *in;
	out[o] = '\0';
}

static void report_log(const struct ob_job *job, const struct ob_rcpt *r, enum store_queue_status s)
{
	char text[SMTP_CLIENT_TEXT_MAX];
	report_safe(r->reply.text, text, sizeof(text));
	log_info("event=outbound queue=%llu to=<%s> relay=%s tls=\"%s\" verify=\"%s\" status=%s "
	         "code=%d dsn=%s reply=\"%s\"",
	         (unsigned long long)job->entry->id, r->q->address, r->relay[0] ? r->relay : "none",
	         job->tls_desc, job->tls_verify, report_status_name(s), r->reply.code,
	         r->reply.enhanced[0]                 ? r->reply.enhanced
	         : r->status == SMTP_CLIENT_DELIVERED ? "2.0.0"
	         : r->status == SMTP_CLIENT_PERMFAIL  ? "5.0.0"
	                                              : "4.0.0",
	         text);
}

/* ---- DSNs ---- */

static void report_dsn_stored(struct store_delivery *d, void *ctx)
{
	struct ob_dsn *dsn = ctx;
	struct outbound *ob = dsn->ob;
	if (d->result < 0)
		log_error("event=dsn-failed to=<%s> error=\"%s\"", dsn->to, d->error);
	outbound_dsn_release(dsn);
	free(dsn);
	pthread_mutex_lock(&ob->lock);
	ob->in_flight--;
	pthread_cond_broadcast(&ob->idle);
	pthread_mutex_unlock(&ob->lock);
}

/* A report on its way: made ready where store reads may wait, then delivered. */
struct report_dsn_job {
	struct ob_dsn *dsn;
	struct buf bytes;
	char *hostname, *sender;
	enum dsn_action kind;
	int64_t now, queue_id;
	int ready;
};

/* Where store reads may wait: route the report (is the sender local?), write its spool. */
static void report_dsn_prepare(void *ctx)
{
	struct report_dsn_job *r = ctx;
	r->ready = outbound_dsn_prepare(r->dsn->ob->store, r->hostname, r->sender, &r->bytes,
	                                r->kind, r->now, r->dsn);
}

/* Any thread, after report_dsn_prepare: hand the report to the writer, or drop it. */
static void report_dsn_deliver(void *ctx)
{
	struct report_dsn_job *r = ctx;
	struct ob_dsn *dsn = r->dsn;
	struct outbound *ob = dsn->ob;
	if (r->ready == 1) {
		log_info("event=dsn queue=%llu kind=%s to=<%s>", (unsigned long long)r->queue_id,
		         outbound_dsn_kind_name(r->kind), dsn->to);
		store_deliver(ob->store, &dsn->d, report_dsn_stored, dsn);
	} else {
		outbound_dsn_release(dsn);
		free(dsn);
		pthread_mutex_lock(&ob->lock);
		ob->in_flight--;
		pthread_cond_broadcast(&ob->idle);
		pthread_mutex_unlock(&ob->lock);
	}
	buf_free(&r->bytes);
	free(r->hostname);
	free(r->sender);
	free(r);
}

/* Hand a built report to the store, without waiting (the engine's loop must not). */
static void report_dsn_send(struct ob_job *job, const struct buf *bytes, enum dsn_action kind)
{
	struct outbound *ob = job->ob;
	struct report_dsn_job *r = xcalloc(1, sizeof(*r));
	r->dsn = xcalloc(1, sizeof(*r->dsn));
	r->dsn->ob = ob;
	buf_init(&r->bytes, bytes->len + 1);
	if (buf_append(&r->bytes, bytes->data, bytes->len) < 0)
		log_panic("outbound: report copy");
	r->hostname = xstrdup(job->conf->hostname);
	r->sender = xstrdup(job->entry->mail_from);
	r->kind = kind;
	r->now = job->now;
	r->queue_id = (int64_t)job->entry->id;
	pthread_mutex_lock(&ob->lock);
	ob->in_flight++; /* until the report is stored (or dropped) */
	pthread_mutex_unlock(&ob->lock);
	if (store_read(ob->store, report_dsn_prepare, report_dsn_deliver, r))
		report_dsn_deliver(r);
}

/* Is recipient i part of the report of this kind? */
static bool report_match(const struct ob_job *job, size_t i, enum store_queue_status st,
                         enum dsn_action kind)
{
	const struct ob_rcpt *r = &job->rcpts[i];
	switch (kind) {
	case DSN_ACTION_FAILED:
		return (st == STORE_QUEUE_FAILED || st == STORE_QUEUE_EXPIRED) &&
		       outbound_dsn_wanted(r->q->notify, STORE_NOTIFY_FAILURE);
	case DSN_ACTION_DELAYED:
		return st == STORE_QUEUE_PENDING &&
		       outbound_dsn_wanted(r->q->notify, STORE_NOTIFY_DELAY);
	default:
		return st == STORE_QUEUE_DELIVERED && r->relayed &&
		       outbound_dsn_wanted(r->q->notify, STORE_NOTIFY_SUCCESS);
	}
}

static const char *report_dsn_status(const struct ob_rcpt *r, enum store_queue_status st,
                                     enum dsn_action kind)
{
	if (r->reply.enhanced[0] != '\0')
		return r->reply.enhanced;
	if (st == STORE_QUEUE_EXPIRED)
		return "4.4.7";
	return kind == DSN_ACTION_FAILED ? "5.0.0" : kind == DSN_ACTION_DELAYED ? "4.0.0" : "2.0.0";
}

/* Build and send one report about the recipients whose action is kind. */
static void report_dsn(struct ob_job *job, const enum store_queue_status *st, enum dsn_action kind)
{
	const struct store_queue_entry *e = job->entry;
	struct dsn_recipient *list = xcalloc(job->rcpt_count, sizeof(*list));
	/* Diagnostic: "550 5.1.1 text" (a server's reply, or our verdict in the same form). */
	char(*diag)[SMTP_CLIENT_TEXT_MAX + 32] = xcalloc(job->rcpt_count, sizeof(*diag));
	char(*mta)[OB_RELAY_MAX] = xcalloc(job->rcpt_count, sizeof(*mta));
	size_t n = 0;
	for (size_t i = 0; i < job->rcpt_count; i++) {
		const struct ob_rcpt *r = &job->rcpts[i];
		if (!report_match(job, i, st[i], kind))
			continue;
		snprintf(diag[n], sizeof(diag[n]), "%d %s%s%s", r->reply.code, r->reply.enhanced,
		         r->reply.enhanced[0] ? " " : "", r->reply.text);
		/* Remote-MTA: the host part of "host[ip]:port", when a server answered. */
		if (r->reply.remote && r->relay[0] != '\0')
			snprintf(mta[n], sizeof(mta[n]), "%.*s", (int)strcspn(r->relay, "["),
			         r->relay);
		list[n] = (struct dsn_recipient){
		    .address = r->q->address,
		    .orcpt = r->q->orcpt,
		    .action = kind == DSN_ACTION_DELIVERED ? DSN_ACTION_RELAYED : kind,
		    .status = report_dsn_status(r, st[i], kind),
		    .remote_mta = mta[n][0] != '\0' ? mta[n] : NULL,
		    .diagnostic = diag[n],
		    .last_attempt = job->now,
		    .retry_until = e->created + (int64_t)job->conf->queue_lifetime};
		n++;
	}
	struct buf out;
	buf_init(&out, OB_DSN_MAX);
	if (n > 0 && outbound_dsn_build(job->conf, e, list, n, job->smtputf8,
	                                job->map != NULL ? job->map + job->skip : NULL,
	                                job->map != NULL ? job->map_len - job->skip : 0, job->now,
	                                &out) == 0)
		report_dsn_send(job, &out, kind);
	else if (n > 0)
		log_error("event=dsn-failed queue=%llu error=\"report too large\"",
		          (unsigned long long)e->id);
	buf_free(&out);
	free(diag);
	free(mta);
	free(list);
}

/* ---- the record ---- */

void outbound_report(struct ob_job *job)
{
	const struct store_queue_entry *e = job->entry;
	const struct conf *conf = job->conf;
	job->state = OB_JOB_REPORTING;
	enum store_queue_status *st = xcalloc(job->rcpt_count, sizeof(*st));
	bool pending = false;
	for (size_t i = 0; i < job->rcpt_count; i++) {
		st[i] = report_status(job, &job->rcpts[i]);
		pending = pending || st[i] == STORE_QUEUE_PENDING;
		report_log(job, &job->rcpts[i], st[i]);
	}
	bool warn = pending && !e->delay_warned && conf->queue_delay_warning > 0 &&
	            job->now >= e->created + (int64_t)conf->queue_delay_warning;
	if (e->mail_from[0] != '\0') {
		report_dsn(job, st, DSN_ACTION_FAILED);
		report_dsn(job, st, DSN_ACTION_DELIVERED);
		if (warn)
			report_dsn(job, st, DSN_ACTION_DELAYED);
	}
	struct ob_op *o = xcalloc(1, sizeof(*o));
	o->job = job;
	o->results = xcalloc(job->rcpt_count, sizeof(*o->results));
	for (size_t i = 0; i < job->rcpt_count; i++) {
		const struct ob_rcpt *r = &job->rcpts[i];
		o->results[i] = (struct store_queue_result){
		    .rcpt_id = r->q->id,
		    .status = st[i],
		    .error = r->reply.text,
		    .remote_mta = r->relay[0] ? r->relay : NULL,
		    .enhanced_status = r->reply.enhanced[0] ? r->reply.enhanced : NULL};
	}
	int64_t next =
	    job->now + (int64_t)outbound_route_backoff(e->attempts + 1, conf->queue_retry_min,
	                                               conf->queue_retry_max);
	int64_t expires = e->created + (int64_t)conf->queue_lifetime;
	o->op.action = STORE_QUEUE_RESULT;
	o->op.id = e->id;
	o->op.results = o->results;
	o->op.result_count = job->rcpt_count;
	o->op.next_attempt = next > expires && expires > job->now ? expires : next;
	o->op.delay_warned = warn;
	free(st);
	outbound_queue_op(job->ob, o);
	outbound_slot_free(job);
}
