/* The content filter seam at the end of DATA on port 25 (issue 12): the message as it will
 * be stored (our trace fields and Authentication-Results, then the client's message) goes
 * to the milter (smtp/milter), then to rspamd (smtp/rspamd) when both are set; a verdict
 * refuses, defers, discards or quarantines the message, and header changes are written
 * into a new spool file after each filter. The session waits meanwhile
 * (SMTP_ASYNC_FILTER, input paused). rspamd's verdicts are made header changes here. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mime/dkim_canon.h"
#include "smtp/milter.h"
#include "smtp/rspamd.h"
#include "smtp/smtp_rdns.h"
#include "smtp/smtp_session.h"
#include "core/banned.h"

struct smtp_filter {
	struct smtp_session *s;
	struct milter *milter; /* in flight, or NULL */
	struct rspamd *rspamd; /* in flight, or NULL */
	void (*next)(struct smtp_session *s);
	int fd;
	unsigned char *map;
	size_t map_len;
	const char *reply; /* the refusal (in s->tx), or NULL */
	bool junk, discard;
};

bool smtp_filter_active(const struct smtp_session *s)
{
	return (s->conf->milter[0] != '\0' || s->conf->rspamd_ip[0] != '\0') &&
	       s->kind == CONF_LISTENER_SMTP && !s->authenticated;
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
	rspamd_cancel(&f->rspamd);
	filter_unmap(f);
	free(f);
	*filter = NULL;
}

/* The spool file as it is now, mapped for reading: 0, or -1 (logged, f->reply set). */
static int filter_map(struct smtp_filter *f)
{
	struct smtp_session *s = f->s;
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
		return -1;
	}
	f->map_len = (size_t)st.st_size;
	return 0;
}

/* The header fields of the mapped message (in a), and where the body starts. */
static size_t filter_fields(struct smtp_filter *f, struct arena *a, struct dkim_field **fields,
                            size_t *body)
{
	return dkim_canon_fields(a, f->map, f->map_len, MILTER_FIELDS_MAX, fields, body);
}

/* Header changes into a new spool file: the edited header block, the empty line and the
 * body as they were. */
static int filter_apply_edits(struct smtp_filter *f, const struct milter_edit *edits, size_t n)
{
	struct smtp_session *s = f->s;
	struct arena *a = arena_new(4096);
	struct dkim_field *fields;
	size_t body;
	(void)filter_fields(f, a, &fields, &body);
	arena_free(&a);
	size_t block = body;
	bool empty_line =
	    body >= 2 && body <= f->map_len && f->map[body - 2] == '\r' && f->map[body - 1] == '\n';
	if (empty_line)
		block = body - 2;
	/* Room for every field the edits write: "Name: ", the value with each LF made CRLF,
	 * CRLF; and the empty line. */
	size_t room = 2;
	for (size_t i = 0; i < n; i++)
		room += strlen(edits[i].name) + 2 * strlen(edits[i].value) + 5;
	struct buf head;
	buf_init(&head, block + room);
	int ret = milter_edits_apply(f->map, block, edits, n, &head);
	if (ret == 0 && empty_line)
		ret = buf_append(&head, "\r\n", 2);
	struct smtp_span keep = {body, f->map_len - body};
	if (ret == 0)
		ret = smtp_spool_rewrite(s, f->fd, head.data, head.len, &keep, 1);
	buf_free(&head);
	return ret;
}

/* The filters are done: wake the session (smtp_filter_resume() on the wake). */
static void filter_end(struct smtp_filter *f)
{
	filter_unmap(f);
	session_async_finished(&f->s->life);
}

static const enum milter_action filter_fallback[] = {
    [CONF_MILTER_TEMPFAIL] = MILTER_TEMPFAIL,
    [CONF_MILTER_ACCEPT] = MILTER_ACCEPT,
    [CONF_MILTER_REJECT] = MILTER_REJECT,
};

/* A refusal in s->tx: text when given (after the code), else the default text. */
static const char *filter_refusal(struct smtp_session *s, const char *code, const char *text,
                                  const char *fallback)
{
	char *reply = arena_alloc(s->tx, 600);
	snprintf(reply, 600, "%s %.400s", code, text != NULL ? text : fallback);
	return reply;
}

static void filter_rspamd_start(struct smtp_filter *f);

static void filter_done(const struct milter_result *r, void *ctx)
{
	struct smtp_filter *f = ctx;
	struct smtp_session *s = f->s;
	f->milter = NULL;
	if (s->closed) {
		filter_end(f);
		return;
	}
	const char *reply = NULL;
	if (r->action == MILTER_REJECT || r->action == MILTER_TEMPFAIL) {
		if (r->reply[0] != '\0')
			reply = arena_strdup(s->tx, r->reply);
		else if (r->action == MILTER_REJECT)
			reply = "550 5.7.1 Message content rejected";
		else
			reply = "451 4.7.1 Message content cannot be checked now, try again later";
	}
	f->reply = reply;
	f->discard = r->action == MILTER_DISCARD;
	f->junk = r->action == MILTER_QUARANTINE;
	if (f->reply == NULL && !f->discard && r->edit_count > 0 &&
	    filter_apply_edits(f, r->edits, r->edit_count) != 0)
		f->reply = "451 4.3.0 Local error: cannot write spool file";
	SMTP_LOG(s, "event=milter id=%s action=%s changes=%zu reply=\"%.60s\" failure=\"%s\"%s%s",
	         s->msgid, milter_action_name(r->action), r->edit_count, reply != NULL ? reply : "",
	         r->failure != NULL ? r->failure : "",
	         r->quarantine[0] != '\0' ? " quarantine_reason=" : "",
	         r->quarantine[0] != '\0' ? "given" : "");
	filter_unmap(f);
	if (f->reply == NULL && !f->discard && s->conf->rspamd_ip[0] != '\0') {
		filter_rspamd_start(f);
		return;
	}
	filter_end(f);
}

/* ---- rspamd's verdict as header changes ---- */

/* The fields we write from rspamd's verdict; copies in the message are removed first. */
static const char *const filter_spam_fields[] = {"X-Spam", "X-Spamd-Result", "X-Rspamd-Score"};

struct filter_edits {
	struct arena *a;
	struct milter_edit *e;
	size_t n, cap, dropped;
	const unsigned char *map;
	struct dkim_field *fields;
	size_t nfields;
	size_t trace; /* our trace fields at the top, which rspamd's positions skip */
};

static void filter_edit(struct filter_edits *ed, char cmd, uint32_t index, const char *name,
                        const char *value)
{
	if (ed->n == ed->cap) {
		ed->dropped++; /* more than the room computed: counted and logged */
		return;
	}
	ed->e[ed->n++] = (struct milter_edit){.cmd = cmd,
	                                      .index = index,
	                                      .name = arena_strdup(ed->a, name),
	                                      .value = arena_strdup(ed->a, value)};
}

/* How many fields of the message have this name (any case). */
static uint32_t filter_count(const struct filter_edits *ed, const char *name)
{
	uint32_t n = 0;
	size_t len = strlen(name);
	for (size_t i = 0; i < ed->nfields; i++)
		if (ed->fields[i].name_len == len &&
		    strncasecmp((const char *)ed->map + ed->fields[i].start, name, len) == 0)
			n++;
	return n;
}

/* How many fields at the top are our own trace fields: Return-Path, our Received and our
 * Authentication-Results, each at most once, in any order (a milter's insertion above them
 * ends the run). rspamd's insertion positions count after them, as Postfix hides its own
 * Received field from filters. */
static size_t filter_trace_fields(const struct filter_edits *ed)
{
	static const char *const names[] = {"Return-Path", "Received", "Authentication-Results"};
	bool seen[3] = {false, false, false};
	size_t i = 0;
	for (; i < ed->nfields; i++) {
		size_t k = 0;
		while (k < 3 && !(ed->fields[i].name_len == strlen(names[k]) &&
		                  strncasecmp((const char *)ed->map + ed->fields[i].start, names[k],
		                              strlen(names[k])) == 0))
			k++;
		if (k == 3 || seen[k])
			break;
		seen[k] = true;
	}
	return i;
}

/* Is there already a delete-all edit for this name (any case)? */
static bool filter_removes_all(const struct filter_edits *ed, const char *name)
{
	for (size_t i = 0; i < ed->n; i++)
		if (ed->e[i].cmd == MILTER_EDIT_DELETE_ALL && strcasecmp(ed->e[i].name, name) == 0)
			return true;
	return false;
}

/* Remove the index-th field of name (0: all of them, one edit applied in one pass, once per
 * name whatever its case; negative: from the end). */
static void filter_remove(struct filter_edits *ed, const char *name, long index)
{
	if (index == 0) {
		if (!filter_removes_all(ed, name))
			filter_edit(ed, MILTER_EDIT_DELETE_ALL, 0, name, "");
		return;
	}
	if (filter_removes_all(ed, name))
		return;
	uint32_t count = filter_count(ed, name);
	if (index < 0)
		index = (long)count + index + 1;
	if (index >= 1 && index <= (long)count)
		filter_edit(ed, MILTER_REPLY_CHGHEADER, (uint32_t)index, name, "");
}

static bool filter_rspamd_adds(const struct rspamd_verdict *v, const char *name)
{
	for (size_t i = 0; i < v->add_count; i++)
		if (strcasecmp(v->add[i].name, name) == 0)
			return true;
	return false;
}

/* X-Spamd-Result: "default: True [score / required];" and a line per symbol. */
static void filter_result_field(struct filter_edits *ed, const struct rspamd_verdict *v, bool spam)
{
	struct buf b;
	buf_init(&b, 4096);
	int r = buf_printf(&b, "default: %s [%.2f / %.2f]", spam ? "True" : "False", v->score,
	                   v->required_score);
	for (size_t i = 0; i < v->symbol_count && r == 0; i++)
		if (b.len + strlen(v->symbols[i].name) + 32 < b.max)
			r = buf_printf(&b, ";\n\t%s(%.2f)", v->symbols[i].name,
			               v->symbols[i].score);
	if (r == 0)
		filter_edit(ed, MILTER_REPLY_ADDHEADER, 0, "X-Spamd-Result", buf_cstr(&b));
	buf_free(&b);
}

/* The changes for a message rspamd lets through: forged copies of our fields out, rspamd's
 * removals, the new Subject, rspamd's additions, then ours. */
static void filter_rspamd_edits(struct filter_edits *ed, const struct rspamd_verdict *v, bool spam)
{
	for (size_t i = 0; i < sizeof(filter_spam_fields) / sizeof(filter_spam_fields[0]); i++)
		filter_remove(ed, filter_spam_fields[i], 0);
	for (size_t i = 0; i < v->remove_count; i++)
		filter_remove(ed, v->remove[i].name, v->remove[i].index);
	/* An empty Subject from rspamd would delete ours (CHGHEADER with ""): not written. */
	if (v->action == RSPAMD_REWRITE_SUBJECT && v->subject != NULL &&
	    strspn(v->subject, " \t\n") < strlen(v->subject)) {
		if (filter_count(ed, "Subject") > 0)
			filter_edit(ed, MILTER_REPLY_CHGHEADER, 1, "Subject", v->subject);
		else
			filter_edit(ed, MILTER_REPLY_ADDHEADER, 0, "Subject", v->subject);
	}
	for (size_t i = 0; i < v->add_count; i++)
		filter_edit(ed,
		            v->add[i].has_order ? MILTER_REPLY_INSHEADER : MILTER_REPLY_ADDHEADER,
		            v->add[i].has_order ? (uint32_t)(v->add[i].order + ed->trace) : 0,
		            v->add[i].name, v->add[i].value);
	if (spam && !filter_rspamd_adds(v, "X-Spam"))
		filter_edit(ed, MILTER_REPLY_ADDHEADER, 0, "X-Spam", "Yes");
	if (!filter_rspamd_adds(v, "X-Spamd-Result"))
		filter_result_field(ed, v, spam);
	if (!filter_rspamd_adds(v, "X-Rspamd-Score")) {
		char score[64];
		snprintf(score, sizeof(score), "%.2f", v->score);
		filter_edit(ed, MILTER_REPLY_ADDHEADER, 0, "X-Rspamd-Score", score);
	}
}

/* Act on rspamd's verdict: a refusal, discard, or the changes (and Junk). */
static size_t filter_rspamd_apply(struct smtp_filter *f, const struct rspamd_verdict *v)
{
	struct smtp_session *s = f->s;
	switch (v->action) {
	case RSPAMD_SOFT_REJECT:
		f->reply = filter_refusal(s, "451 4.7.1", v->message, "Try again later");
		return 0;
	case RSPAMD_REJECT:
		f->reply = filter_refusal(s, "550 5.7.1", v->message, "Spam message rejected");
		return 0;
	case RSPAMD_DISCARD:
		f->discard = true;
		return 0;
	default:
		break;
	}
	/* "greylist" is accepted as rspamd's own milter proxy does: rspamd's greylisting
	 * module asks for a retry with "soft reject". */
	bool spam = v->action != RSPAMD_NO_ACTION && v->action != RSPAMD_GREYLIST;
	if (v->action == RSPAMD_QUARANTINE || (spam && s->conf->rspamd_junk))
		f->junk = true;
	struct filter_edits ed = {.a = arena_new(8192), .map = f->map};
	size_t body;
	ed.nfields = filter_fields(f, ed.a, &ed.fields, &body);
	ed.trace = filter_trace_fields(&ed);
	/* Room: one edit per removal and per addition (each at most RSPAMD_HEADERS_MAX), ours
	 * and the Subject are a few. */
	ed.cap = 2 * RSPAMD_HEADERS_MAX + 16;
	ed.e = arena_alloc(ed.a, ed.cap * sizeof(*ed.e));
	filter_rspamd_edits(&ed, v, spam);
	if (ed.dropped > 0)
		SMTP_LOG(s, "event=rspamd-edits id=%s dropped=%zu", s->msgid, ed.dropped);
	size_t n = ed.n;
	if (n > 0 && filter_apply_edits(f, ed.e, n) != 0)
		f->reply = "451 4.3.0 Local error: cannot write spool file";
	arena_free(&ed.a);
	return n;
}

/* The client left while a filter worked: say so (the message is not stored). The
 * connection may be gone: the session id comes from the message id ("SESSION.N"). */
static void filter_client_gone(struct smtp_filter *f, const char *filter, const char *action)
{
	const char *id = f->s->msgid, *dot = strrchr(id, '.');
	log_info("session=%.*s proto=smtp event=%s id=%s action=\"%s\" client=\"gone\"",
	         dot != NULL ? (int)(dot - id) : (int)strlen(id), id, filter, id, action);
	filter_end(f);
}

static void filter_rspamd_done(const struct rspamd_verdict *v, const char *failure, void *ctx)
{
	struct smtp_filter *f = ctx;
	struct smtp_session *s = f->s;
	f->rspamd = NULL;
	if (s->closed) {
		filter_client_gone(f, "rspamd", v != NULL ? rspamd_action_name(v->action) : "none");
		return;
	}
	size_t changes = 0;
	const char *action;
	if (v != NULL) {
		changes = filter_rspamd_apply(f, v);
		action = rspamd_action_name(v->action);
	} else {
		enum milter_action fb = filter_fallback[s->conf->rspamd_default_action];
		action = milter_action_name(fb);
		if (fb == MILTER_REJECT)
			f->reply = "550 5.7.1 Message content rejected";
		else if (fb == MILTER_TEMPFAIL)
			f->reply =
			    "451 4.7.1 Message content cannot be checked now, try again later";
	}
	SMTP_LOG(s,
	         "event=rspamd id=%s action=\"%s\" score=%.2f required=%.2f changes=%zu junk=%s "
	         "reply=\"%.60s\" failure=\"%s\"",
	         s->msgid, action, v != NULL ? v->score : 0.0, v != NULL ? v->required_score : 0.0,
	         changes, f->junk ? "yes" : "no", f->reply != NULL ? f->reply : "",
	         failure != NULL ? failure : "");
	filter_end(f);
}

/* The envelope's recipients as the filters' requests take them (in s->tx). */
static const char **filter_rcpts(struct smtp_session *s)
{
	const char **rcpts = arena_alloc(s->tx, (s->rcpt_count + 1) * sizeof(*rcpts));
	for (size_t i = 0; i < s->rcpt_count; i++)
		rcpts[i] = s->rcpts[i].address;
	return rcpts;
}

/* The client's confirmed name, or NULL (smtp_rdns.c). */
static const char *filter_client_name(const struct smtp_session *s)
{
	return smtp_rdns_status(s) == SMTP_RDNS_OK ? smtp_rdns_name(s) : NULL;
}

/* Hand the spool file as it is now to rspamd. */
static void filter_rspamd_start(struct smtp_filter *f)
{
	struct smtp_session *s = f->s;
	if (filter_map(f) < 0) {
		filter_end(f);
		return;
	}
	char host[80];
	bool v6 = strchr(s->conf->rspamd_ip, ':') != NULL;
	snprintf(host, sizeof(host), "%s%s%s:%u", v6 ? "[" : "", s->conf->rspamd_ip, v6 ? "]" : "",
	         s->conf->rspamd_port);
	struct rspamd_request req = {
	    .ip = s->conf->rspamd_ip,
	    .port = (int)s->conf->rspamd_port,
	    .timeout = s->conf->rspamd_timeout,
	    .head =
	        {
	            .host = host,
	            .path = s->conf->rspamd_path,
	            .client_ip = conn_remote_ip(s->conn),
	            .helo = s->helo != NULL ? s->helo : "",
	            /* "unknown" when looked up and not confirmed; not sent when not looked up
	             * (rspamd would score "unknown", a verdict we did not reach) */
	            .hostname = s->rdns != NULL ? smtp_rdns_name(s) : NULL,
	            .mail_from = s->mail_from != NULL ? s->mail_from : "",
	            .rcpts = filter_rcpts(s),
	            .rcpt_count = s->rcpt_count,
	            .queue_id = s->msgid,
	            .user = s->authenticated ? s->auth_user : NULL,
	            .mta_name = s->conf->hostname,
	        },
	    .msg = f->map,
	    .len = f->map_len,
	};
	const char *error = NULL;
	f->rspamd = rspamd_start(conn_loop(s->conn), &req, filter_rspamd_done, f, &error);
	if (f->rspamd == NULL) {
		log_error("session=%s proto=smtp event=rspamd error=\"%s\"", conn_id(s->conn),
		          error);
		filter_rspamd_done(NULL, error, f);
	}
}

void smtp_filter_data(struct smtp_session *s, void (*next)(struct smtp_session *s))
{
	smtp_filter_free(&s->filter);
	struct smtp_filter *f = xcalloc(1, sizeof(*f));
	s->filter = f;
	f->s = s;
	f->next = next;
	f->fd = -1;
	smtp_session_set_state(s, SMTP_STATE_WAIT);
	session_async_start(&s->life, SMTP_ASYNC_FILTER);
	if (s->conf->milter[0] == '\0') {
		filter_rspamd_start(f);
		return;
	}
	if (filter_map(f) < 0) {
		filter_end(f);
		return;
	}
	struct milter_request req = {
	    .address = s->conf->milter,
	    .timeout = s->conf->milter_timeout,
	    .fallback = filter_fallback[s->conf->milter_default_action],
	    .client_ip = conn_remote_ip(s->conn),
	    .client_name = filter_client_name(s),
	    .client_ptr = smtp_rdns_ptr(s),
	    .client_resolve = smtp_rdns_status_name(smtp_rdns_status(s)),
	    .helo = s->helo != NULL ? s->helo : "",
	    .mail_from = s->mail_from != NULL ? s->mail_from : "",
	    .rcpts = filter_rcpts(s),
	    .rcpt_count = s->rcpt_count,
	    .queue_id = s->msgid,
	    .our_name = s->conf->hostname,
	    .msg = f->map,
	    .len = f->map_len,
	};
	const char *error = NULL;
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
