/* The content filter seam at the end of DATA on port 25 (issue 12): the message as it will
 * be stored (our trace fields and Authentication-Results, then the client's message) goes
 * to the milter (smtp/milter); its verdict refuses, defers, discards or quarantines the
 * message, and its header changes are written into a new spool file. The session waits
 * meanwhile (SMTP_ASYNC_FILTER, input paused). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mime/dkim_canon.h"
#include "smtp/milter.h"
#include "smtp/smtp_session.h"
#include "core/banned.h"

struct smtp_filter {
	struct smtp_session *s;
	struct milter *milter; /* in flight, or NULL */
	void (*next)(struct smtp_session *s);
	int fd;
	unsigned char *map;
	size_t map_len;
	const char *reply; /* the refusal (in s->tx), or NULL */
	bool junk, discard;
};

bool smtp_filter_active(const struct smtp_session *s)
{
	return s->conf->milter[0] != '\0' && s->kind == CONF_LISTENER_SMTP && !s->authenticated;
}

static void filter_unmap(struct smtp_filter *f)
{
	if (f->map != NULL)
		munmap(f->map, f->map_len);
	f->map = NULL;
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

void smtp_filter_free(struct smtp_filter **filter)
{
	struct smtp_filter *f = *filter;
	if (f == NULL)
		return;
	milter_cancel(&f->milter);
	filter_unmap(f);
	free(f);
	*filter = NULL;
}

/* The filter's header changes into a new spool file: the edited header block, the empty
 * line and the body as they were. */
static int filter_apply_edits(struct smtp_filter *f, const struct milter_result *r)
{
	struct smtp_session *s = f->s;
	struct arena *a = arena_new(4096);
	struct dkim_field *fields;
	size_t body;
	(void)dkim_canon_fields(a, f->map, f->map_len, MILTER_FIELDS_MAX, &fields, &body);
	arena_free(&a);
	size_t block = body;
	bool empty_line =
	    body >= 2 && body <= f->map_len && f->map[body - 2] == '\r' && f->map[body - 1] == '\n';
	if (empty_line)
		block = body - 2;
	struct buf head;
	buf_init(&head, block + 64 * 1024);
	int ret = milter_edits_apply(f->map, block, r->edits, r->edit_count, &head);
	if (ret == 0 && empty_line)
		ret = buf_append(&head, "\r\n", 2);
	struct smtp_span keep = {body, f->map_len - body};
	if (ret == 0)
		ret = smtp_spool_rewrite(s, f->fd, head.data, head.len, &keep, 1);
	buf_free(&head);
	return ret;
}

static void filter_done(const struct milter_result *r, void *ctx)
{
	struct smtp_filter *f = ctx;
	struct smtp_session *s = f->s;
	f->milter = NULL;
	if (s->closed) {
		filter_unmap(f);
		session_async_finished(&s->life);
		return;
	}
	char *reply = NULL;
	if (r->action == MILTER_REJECT || r->action == MILTER_TEMPFAIL) {
		reply = arena_alloc(s->tx, 600);
		if (r->reply[0] != '\0')
			snprintf(reply, 600, "%s", r->reply);
		else if (r->action == MILTER_REJECT)
			snprintf(reply, 600, "550 5.7.1 Message content rejected");
		else
			snprintf(reply, 600,
			         "451 4.7.1 Message content cannot be checked now, "
			         "try again later");
	}
	f->reply = reply;
	f->discard = r->action == MILTER_DISCARD;
	f->junk = r->action == MILTER_QUARANTINE;
	if (f->reply == NULL && !f->discard && r->edit_count > 0 && filter_apply_edits(f, r) != 0)
		f->reply = "451 4.3.0 Local error: cannot write spool file";
	SMTP_LOG(s, "event=milter id=%s action=%s changes=%zu reply=\"%.60s\" failure=\"%s\"%s%s",
	         s->msgid, milter_action_name(r->action), r->edit_count, reply != NULL ? reply : "",
	         r->failure != NULL ? r->failure : "",
	         r->quarantine[0] != '\0' ? " quarantine_reason=" : "",
	         r->quarantine[0] != '\0' ? "given" : "");
	filter_unmap(f);
	session_async_finished(&s->life); /* smtp_filter_resume() on the wake */
}

void smtp_filter_data(struct smtp_session *s, void (*next)(struct smtp_session *s))
{
	smtp_filter_free(&s->filter);
	struct smtp_filter *f = xcalloc(1, sizeof(*f));
	s->filter = f;
	f->s = s;
	f->next = next;
	f->fd = open(s->spool_path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (f->fd < 0 || fstat(f->fd, &st) != 0 || st.st_size == 0 ||
	    (f->map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, f->fd, 0)) ==
	        MAP_FAILED) {
		log_error("session=%s proto=smtp event=spool-map path=%s error=%s",
		          conn_id(s->conn), s->spool_path, strerror(errno));
		f->map = NULL;
		filter_unmap(f);
		f->reply = "451 4.3.0 Local error: cannot read spool file";
		next(s);
		return;
	}
	f->map_len = (size_t)st.st_size;
	const char **rcpts = arena_alloc(s->tx, (s->rcpt_count + 1) * sizeof(*rcpts));
	for (size_t i = 0; i < s->rcpt_count; i++)
		rcpts[i] = s->rcpts[i].address;
	char client_name[80];
	snprintf(client_name, sizeof(client_name), "[%s]", conn_remote_ip(s->conn));
	static const enum milter_action fallback[] = {
	    [CONF_MILTER_TEMPFAIL] = MILTER_TEMPFAIL,
	    [CONF_MILTER_ACCEPT] = MILTER_ACCEPT,
	    [CONF_MILTER_REJECT] = MILTER_REJECT,
	};
	struct milter_request req = {
	    .address = s->conf->milter,
	    .timeout = s->conf->milter_timeout,
	    .fallback = fallback[s->conf->milter_default_action],
	    .client_ip = conn_remote_ip(s->conn),
	    .client_name = client_name,
	    .helo = s->helo != NULL ? s->helo : "",
	    .mail_from = s->mail_from != NULL ? s->mail_from : "",
	    .rcpts = rcpts,
	    .rcpt_count = s->rcpt_count,
	    .queue_id = s->msgid,
	    .our_name = s->conf->hostname,
	    .msg = f->map,
	    .len = f->map_len,
	};
	const char *error = NULL;
	smtp_session_set_state(s, SMTP_STATE_WAIT);
	session_async_start(&s->life, SMTP_ASYNC_FILTER);
	f->milter = milter_start(conn_loop(s->conn), &req, filter_done, f, &error);
	if (f->milter == NULL) {
		log_error("session=%s proto=smtp event=milter error=\"%s\"", conn_id(s->conn),
		          error);
		struct milter_result r = {.action = req.fallback, .failure = error};
		filter_done(&r, f);
	}
}

void smtp_filter_resume(struct smtp_session *s)
{
	smtp_session_set_state(s, SMTP_STATE_COMMAND);
	s->filter->next(s);
}

const char *smtp_filter_reply(const struct smtp_session *s)
{
	return s->filter != NULL ? s->filter->reply : NULL;
}

bool smtp_filter_junk(const struct smtp_session *s)
{
	return s->filter != NULL && s->filter->junk;
}

bool smtp_filter_discard(const struct smtp_session *s)
{
	return s->filter != NULL && s->filter->discard;
}
