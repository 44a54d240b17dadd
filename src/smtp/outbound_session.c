/* SMTP sessions of the outbound engine, and their reuse (see outbound_private.h): a session
 * that delivered a message stays open for outbound_connection_cache_time, and the next attempt to
 * the same address, port, host name and TLS policy sends over it instead of connecting again
 * (Postfix's connection cache). Every client callback comes here first: the session knows
 * which attempt it works for, or that it is idle. */
#include "smtp/outbound_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

static void session_unlink_idle(struct ob_session *s)
{
	struct outbound *ob = s->ob;
	for (struct ob_session **p = &ob->idle_sessions; *p != NULL; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			ob->idle_count--;
			break;
		}
	}
	s->next = NULL;
	s->idle = false;
}

static void session_ready(struct smtp_client *c, void *ctx)
{
	struct ob_session *s = ctx;
	if (s->job != NULL) {
		attempt_session_ready(s->job, c);
		return;
	}
	/* Done with its message and able to take another: keep it, unless we stop or have
	 * enough idle ones already. */
	struct outbound *ob = s->ob;
	struct conf *conf = conf_slot_get(ob->slot);
	bool cache = conf->outbound_connection_cache_time > 0;
	conf_free(&conf);
	if (!cache || outbound_stopping(ob) || ob->idle_count >= OB_IDLE_MAX ||
	    s->uses >= OB_REUSE_MAX) {
		smtp_client_quit(c);
		return;
	}
	s->idle = true;
	s->idle_since = (int64_t)time(NULL);
	s->next = ob->idle_sessions;
	ob->idle_sessions = s;
	ob->idle_count++;
}

static void session_message_done(struct smtp_client *c, struct smtp_client_message *msg, void *ctx)
{
	struct ob_session *s = ctx;
	struct ob_job *job = s->job;
	s->job = NULL;
	if (job != NULL) {
		job->sess = NULL;
		attempt_session_message_done(job, c, msg, s->uses > 1);
	}
}

static void session_closed(struct smtp_client *c, const struct smtp_client_result *result,
                           void *ctx)
{
	struct ob_session *s = ctx;
	struct ob_job *job = s->job;
	if (s->idle)
		session_unlink_idle(s);
	free(s);
	if (job != NULL) {
		job->sess = NULL;
		attempt_session_closed(job, c, result);
	}
}

static const struct smtp_client_callbacks session_callbacks = {
    .ready = session_ready,
    .message_done = session_message_done,
    .closed = session_closed,
};

/* What must match for a session to be shared: the address, port, host name (SNI,
 * certificate, logs), TLS policy and check, and the login. */
static void session_key(const struct smtp_client_params *p, char *out, size_t n)
{
	snprintf(out, n, "%s|%d|%s|%d|%d|%zu|%s", p->ip, p->port, p->host, (int)p->tls,
	         (int)p->verify, p->tlsa_count, p->auth_user != NULL ? p->auth_user : "");
}

int outbound_session_start(struct ob_job *job, const struct smtp_client_params *p,
                           const char **error_r)
{
	struct outbound *ob = job->ob;
	char key[OB_SESSION_KEY_MAX];
	session_key(p, key, sizeof(key));
	/* An idle session to the same place: send over it at once. */
	for (struct ob_session *s = ob->idle_sessions; s != NULL; s = s->next) {
		if (strcmp(s->key, key) != 0)
			continue;
		session_unlink_idle(s);
		s->job = job;
		s->uses++;
		job->sess = s;
		attempt_session_ready(job, s->client);
		return 0;
	}
	struct ob_session *s = xcalloc(1, sizeof(*s));
	s->ob = ob;
	s->job = job;
	s->uses = 1;
	snprintf(s->key, sizeof(s->key), "%s", key);
	job->sess = s;
	s->client = smtp_client_start(ob->loop, p, &session_callbacks, s, error_r);
	if (s->client == NULL) {
		job->sess = NULL;
		free(s);
		return -1;
	}
	return 0;
}

void outbound_session_sweep(struct outbound *ob, bool all)
{
	int64_t now = (int64_t)time(NULL);
	struct conf *conf = conf_slot_get(ob->slot);
	int64_t keep = conf->outbound_connection_cache_time;
	conf_free(&conf);
	for (struct ob_session *s = ob->idle_sessions, *next; s != NULL; s = next) {
		next = s->next;
		if (all || now - s->idle_since >= keep) {
			session_unlink_idle(s);
			smtp_client_quit(s->client); /* closed frees it */
		}
	}
}
