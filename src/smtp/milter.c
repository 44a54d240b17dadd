/* The milter client's conversation (see milter.h): a step machine that sends the next
 * packet and waits for its reply where one is due. */
#include "smtp/milter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mime/dkim_canon.h"
#include "net/conn.h"
#include "core/banned.h"

#define MILTER_EDITS_MAX 256
#define MILTER_OUT_MAX (4 * 1024 * 1024)

enum milter_step {
	MS_OPTNEG,
	MS_CONNECT,
	MS_HELO,
	MS_MAIL,
	MS_RCPT,
	MS_DATA,
	MS_HEADER,
	MS_EOH,
	MS_BODY,
	MS_EOB,
};

struct milter {
	struct conn *conn;
	milter_done_fn *cb;
	void *ctx;
	bool done;
	enum milter_step step;
	size_t idx;     /* the recipient, header field or body offset next */
	bool waiting;   /* a reply is due */
	bool skip_body; /* the filter answered SMFIR_SKIP */
	uint32_t version, proto, actions;
	unsigned timeout;
	enum milter_action fallback;
	char *client_ip, *client_name, *client_ptr, *client_resolve, *helo, *mail_from, *queue_id,
	    *our_name;
	char **rcpts;
	size_t rcpt_count;
	const unsigned char *msg;
	size_t len, body;
	struct arena *arena;
	struct dkim_field *fields;
	size_t nfields;
	struct buf out, in;
	struct milter_result result;
	bool quarantine;
	bool overflow; /* a packet did not fit m->out */
};

const char *milter_action_name(enum milter_action action)
{
	static const char *const names[] = {"accept", "reject", "tempfail", "discard",
	                                    "quarantine"};
	return (unsigned)action < 5 ? names[action] : "tempfail";
}

static void milter_free(struct milter *m)
{
	free(m->client_ip);
	free(m->client_name);
	free(m->client_ptr);
	free(m->client_resolve);
	free(m->helo);
	free(m->mail_from);
	free(m->queue_id);
	free(m->our_name);
	for (size_t i = 0; i < m->rcpt_count; i++)
		free(m->rcpts[i]);
	free(m->rcpts);
	for (size_t i = 0; i < m->result.edit_count; i++) {
		free(m->result.edits[i].name);
		free(m->result.edits[i].value);
	}
	free(m->result.edits);
	arena_free(&m->arena);
	buf_free(&m->out);
	buf_free(&m->in);
	free(m);
}

/* The conversation is decided: tell the requester, then say goodbye and close. */
static void milter_finish(struct milter *m, enum milter_action action, const char *reply)
{
	if (m->done)
		return;
	m->done = true;
	m->result.action = action;
	snprintf(m->result.reply, sizeof(m->result.reply), "%s", reply != NULL ? reply : "");
	if (m->result.failure != NULL) {
		/* The queue id is "SESSION.N": the session's lines carry SESSION. */
		const char *dot = strrchr(m->queue_id, '.');
		int n = dot != NULL ? (int)(dot - m->queue_id) : (int)strlen(m->queue_id);
		log_warn("session=%.*s proto=smtp event=milter-failure id=%s reason=\"%s\" "
		         "error=\"%s\" then=%s",
		         n, m->queue_id, m->queue_id, m->result.failure, conn_error(m->conn),
		         milter_action_name(action));
	}
	if (!conn_is_closed(m->conn)) {
		buf_reset(&m->out);
		bool abort_first = action != MILTER_ACCEPT && action != MILTER_QUARANTINE;
		if ((!abort_first || milter_put(&m->out, MILTER_CMD_ABORT, NULL, 0) == 0) &&
		    milter_put(&m->out, MILTER_CMD_QUIT, NULL, 0) == 0)
			conn_write(m->conn, m->out.data, m->out.len);
		conn_close(m->conn);
	}
	if (m->cb != NULL)
		m->cb(&m->result, m->ctx);
	m->cb = NULL;
}

static void milter_fail(struct milter *m, const char *why)
{
	if (m->done)
		return;
	m->result.failure = why;
	milter_finish(m, m->fallback, NULL);
}

/* A packet could not be built (m->out is full). */
static void milter_check(struct milter *m, int put_result)
{
	if (put_result < 0)
		m->overflow = true;
}

/* Send what m->out holds. */
static void milter_flush(struct milter *m, bool wait_reply)
{
	if (m->overflow)
		return milter_fail(m, "a packet for the filter is too large");
	conn_write(m->conn, m->out.data, m->out.len);
	buf_reset(&m->out);
	m->waiting = wait_reply;
}

/* One SMFIC_MACRO packet for cmd with n name/value pairs (names[i], values[i]): a second
 * packet for the same command would replace the first one's macros in libmilter. */
static void milter_macros(struct milter *m, char cmd, const char *const *names,
                          const char *const *values, size_t n)
{
	struct buf d;
	buf_init(&d, 4096);
	int r = buf_append(&d, &cmd, 1);
	for (size_t i = 0; i < n; i++)
		r |= buf_append(&d, names[i], strlen(names[i]) + 1) |
		     buf_append(&d, values[i], strlen(values[i]) + 1);
	if (r == 0) /* else left out, as a macro too long always was */
		milter_check(m, milter_put(&m->out, MILTER_CMD_MACRO, d.data, d.len));
	buf_free(&d);
}

static void milter_macro(struct milter *m, char cmd, const char *name, const char *value)
{
	milter_macros(m, cmd, &name, &value, 1);
}

/* The macros of SMFIC_CONNECT, with Postfix's values: our name, ours as a daemon, and the
 * client: {client_name} the confirmed name or "unknown"; "_" is "PTR-NAME [IP]" with
 * " (may be forged)" when that PTR name is not {client_name}. */
static void milter_connect_macros(struct milter *m)
{
	const char *name = m->client_name[0] != '[' ? m->client_name : "unknown";
	char under[600];
	snprintf(under, sizeof(under), "%s [%s]%s", m->client_ptr, m->client_ip,
	         strcasecmp(name, m->client_ptr) == 0 ? "" : " (may be forged)");
	const char *names[] = {"j",
	                       "{daemon_name}",
	                       "_",
	                       "{client_addr}",
	                       "{client_name}",
	                       "{client_ptr}",
	                       "{client_resolve}"};
	const char *values[] = {m->our_name,   "posthorn",       under, m->client_ip, name,
	                        m->client_ptr, m->client_resolve};
	milter_macros(m, MILTER_CMD_CONNECT, names, values, 7);
}

/* A header field as SMFIC_HEADER wants it: name, NUL, value without the white space after
 * the colon and with its folds as LF, NUL. */
static int milter_put_header(struct milter *m, const struct dkim_field *f)
{
	const unsigned char *p = m->msg + f->start;
	size_t i = f->name_len, end = f->len;
	while (i < end && p[i] != ':')
		i++;
	i++;
	while (i < end && (p[i] == ' ' || p[i] == '\t'))
		i++;
	while (end > i && (p[end - 1] == '\n' || p[end - 1] == '\r'))
		end--;
	struct buf d;
	buf_init(&d, f->len + 2);
	int r = buf_append(&d, p, f->name_len) | buf_append(&d, "", 1);
	for (; i < end && r == 0; i++)
		if (p[i] != '\r')
			r = buf_append(&d, &p[i], 1);
	r = r == 0 && buf_append(&d, "", 1) == 0
	        ? milter_put(&m->out, MILTER_CMD_HEADER, d.data, d.len)
	        : -1;
	buf_free(&d);
	return r;
}

/* Send packets until one wants a reply, the body waits for the socket, or end of message
 * was sent. */
static void milter_advance(struct milter *m)
{
	while (!m->done && !m->waiting) {
		uint32_t p = m->proto;
		switch (m->step) {
		case MS_OPTNEG:
			return;
		case MS_CONNECT:
			m->step = MS_HELO;
			if (p & MILTER_P_NOCONNECT)
				break;
			milter_connect_macros(m);
			milter_check(m, milter_put_connect(&m->out, m->client_name,
			                                   strchr(m->client_ip, ':') != NULL, 0,
			                                   m->client_ip));
			milter_flush(m, !(p & MILTER_P_NR_CONN));
			break;
		case MS_HELO: {
			m->step = MS_MAIL;
			if (p & MILTER_P_NOHELO)
				break;
			const char *h[] = {m->helo};
			milter_check(m, milter_put_strings(&m->out, MILTER_CMD_HELO, h, 1));
			milter_flush(m, !(p & MILTER_P_NR_HELO));
			break;
		}
		case MS_MAIL: {
			m->step = MS_RCPT;
			m->idx = 0;
			if (p & MILTER_P_NOMAIL)
				break;
			milter_macro(m, MILTER_CMD_MAIL, "{mail_addr}", m->mail_from);
			char from[600];
			snprintf(from, sizeof(from), "<%s>", m->mail_from);
			const char *a[] = {from};
			milter_check(m, milter_put_strings(&m->out, MILTER_CMD_MAIL, a, 1));
			milter_flush(m, !(p & MILTER_P_NR_MAIL));
			break;
		}
		case MS_RCPT: {
			if ((p & MILTER_P_NORCPT) || m->idx == m->rcpt_count) {
				m->step = MS_DATA;
				break;
			}
			const char *r = m->rcpts[m->idx++];
			milter_macro(m, MILTER_CMD_RCPT, "{rcpt_addr}", r);
			char to[600];
			snprintf(to, sizeof(to), "<%s>", r);
			const char *a[] = {to};
			milter_check(m, milter_put_strings(&m->out, MILTER_CMD_RCPT, a, 1));
			milter_flush(m, !(p & MILTER_P_NR_RCPT));
			break;
		}
		case MS_DATA:
			m->step = MS_HEADER;
			m->idx = 0;
			if ((p & MILTER_P_NODATA) || m->version < 4)
				break;
			milter_check(m, milter_put(&m->out, MILTER_CMD_DATA, NULL, 0));
			milter_flush(m, !(p & MILTER_P_NR_DATA));
			break;
		case MS_HEADER:
			if ((p & MILTER_P_NOHDRS) || m->idx == m->nfields) {
				m->step = MS_EOH;
				break;
			}
			if (m->fields[m->idx++].name_len == 0)
				break; /* a line without a colon: not a field */
			if (milter_put_header(m, &m->fields[m->idx - 1]) < 0) {
				milter_fail(m,
				            "a header field is too large for the milter protocol");
				return;
			}
			milter_flush(m, !(p & MILTER_P_NR_HDR));
			break;
		case MS_EOH:
			m->step = MS_BODY;
			m->idx = m->body;
			if (p & MILTER_P_NOEOH)
				break;
			milter_check(m, milter_put(&m->out, MILTER_CMD_EOH, NULL, 0));
			milter_flush(m, !(p & MILTER_P_NR_EOH));
			break;
		case MS_BODY: {
			if ((p & MILTER_P_NOBODY) || m->skip_body || m->idx >= m->len) {
				m->step = MS_EOB;
				milter_macro(m, MILTER_CMD_EOB, "i", m->queue_id);
				milter_check(m, milter_put(&m->out, MILTER_CMD_EOB, NULL, 0));
				milter_flush(m, true);
				return;
			}
			size_t n =
			    m->len - m->idx < MILTER_CHUNK_MAX ? m->len - m->idx : MILTER_CHUNK_MAX;
			milter_check(m, milter_put(&m->out, MILTER_CMD_BODY, m->msg + m->idx, n));
			m->idx += n;
			milter_flush(m, !(p & MILTER_P_NR_BODY));
			if (!m->waiting && conn_output_full(m->conn)) {
				conn_wait_writable(m->conn);
				return;
			}
			break;
		}
		case MS_EOB:
			return;
		}
	}
}

static void milter_add_edit(struct milter *m, const struct milter_reply *r)
{
	bool allowed = r->cmd == MILTER_REPLY_CHGHEADER ? (m->actions & MILTER_ACT_CHGHDRS)
	                                                : (m->actions & MILTER_ACT_ADDHDRS);
	if (!allowed || m->result.edit_count == MILTER_EDITS_MAX ||
	    strpbrk(r->name, ": \r\n") != NULL)
		return; /* not negotiated, too many, or not a field name: ignored, as Postfix does
		         */
	m->result.edits =
	    xrealloc(m->result.edits, (m->result.edit_count + 1) * sizeof(*m->result.edits));
	m->result.edits[m->result.edit_count++] = (struct milter_edit){
	    .cmd = r->cmd, .index = r->index, .name = xstrdup(r->name), .value = xstrdup(r->value)};
}

/* A final reply at any step. */
static bool milter_final(struct milter *m, const struct milter_reply *r)
{
	switch (r->cmd) {
	case MILTER_REPLY_ACCEPT:
		milter_finish(m, m->quarantine ? MILTER_QUARANTINE : MILTER_ACCEPT, NULL);
		return true;
	case MILTER_REPLY_REJECT:
		milter_finish(m, MILTER_REJECT, NULL);
		return true;
	case MILTER_REPLY_TEMPFAIL:
		milter_finish(m, MILTER_TEMPFAIL, NULL);
		return true;
	case MILTER_REPLY_DISCARD:
		milter_finish(m, MILTER_DISCARD, NULL);
		return true;
	case MILTER_REPLY_REPLYCODE:
		if (!milter_replycode_ok(r->text))
			milter_fail(m, "the filter sent an unusable reply code");
		else
			milter_finish(m, r->text[0] == '4' ? MILTER_TEMPFAIL : MILTER_REJECT,
			              r->text);
		return true;
	default:
		return false;
	}
}

static void milter_reply(struct milter *m, const struct milter_reply *r)
{
	if (r->cmd == MILTER_REPLY_PROGRESS)
		return; /* the timeout starts again with the input */
	if (m->step == MS_OPTNEG) {
		if (r->cmd != MILTER_REPLY_OPTNEG || r->version < 2)
			return milter_fail(m, "the filter's option negotiation failed");
		m->version = r->version;
		m->proto = r->protocol & MILTER_PROTOCOL;
		m->actions = r->actions & MILTER_ACTIONS;
		m->waiting = false;
		m->step = MS_CONNECT;
		return;
	}
	if (!m->waiting)
		return milter_fail(m, "the filter replied when no reply was due");
	if (milter_final(m, r))
		return;
	if (m->step == MS_EOB) {
		if (r->cmd == MILTER_REPLY_ADDHEADER || r->cmd == MILTER_REPLY_INSHEADER ||
		    r->cmd == MILTER_REPLY_CHGHEADER)
			milter_add_edit(m, r);
		else if (r->cmd == MILTER_REPLY_QUARANTINE &&
		         (m->actions & MILTER_ACT_QUARANTINE)) {
			m->quarantine = true;
			snprintf(m->result.quarantine, sizeof(m->result.quarantine), "%s", r->text);
		} else if (r->cmd == MILTER_REPLY_CONTINUE)
			milter_finish(m, m->quarantine ? MILTER_QUARANTINE : MILTER_ACCEPT, NULL);
		else
			milter_fail(m, "the filter sent an unexpected reply at end of message");
		return;
	}
	if (r->cmd == MILTER_REPLY_CONTINUE ||
	    (r->cmd == MILTER_REPLY_SKIP && m->step == MS_BODY && (m->proto & MILTER_P_SKIP))) {
		m->skip_body |= r->cmd == MILTER_REPLY_SKIP;
		m->waiting = false;
		return;
	}
	milter_fail(m, "the filter sent an unexpected reply");
}

static void milter_on_input(struct conn *conn, void *ctx)
{
	struct milter *m = ctx;
	unsigned char chunk[4096];
	size_t n;
	while (!m->done && (n = conn_read_bytes(conn, chunk, sizeof(chunk))) > 0) {
		if (buf_append(&m->in, chunk, n) < 0)
			return milter_fail(m, "the filter sent too much");
		struct milter_reply r;
		size_t used;
		int ret;
		while (!m->done && (ret = milter_parse_reply((const unsigned char *)m->in.data,
		                                             m->in.len, &r, &used)) != 0) {
			if (ret < 0)
				return milter_fail(m, "the filter sent a malformed reply");
			milter_reply(m, &r);
			buf_consume(&m->in, used);
			milter_advance(m);
		}
	}
}

static void milter_on_connected(struct conn *conn, void *ctx)
{
	struct milter *m = ctx;
	conn_set_timeout(conn, m->timeout);
	milter_check(m, milter_put_optneg(&m->out));
	milter_flush(m, true);
}

static void milter_on_writable(struct conn *conn, void *ctx)
{
	(void)conn;
	milter_advance(ctx);
}

static void milter_on_timeout(struct conn *conn, void *ctx)
{
	(void)conn;
	milter_fail(ctx, "the filter did not answer in time");
}

static void milter_on_shutdown(struct conn *conn, void *ctx)
{
	(void)conn;
	milter_fail(ctx, "the server is stopping");
}

static void milter_on_closed(struct conn *conn, void *ctx)
{
	struct milter *m = ctx;
	(void)conn;
	if (!m->done) /* conn_error() says why, logged with it ("" when the filter closed) */
		milter_fail(m, "the filter cannot be reached or closed the connection");
	milter_free(m);
}

static const struct conn_callbacks milter_callbacks = {
    .on_input = milter_on_input,
    .on_writable = milter_on_writable,
    .on_timeout = milter_on_timeout,
    .on_shutdown = milter_on_shutdown,
    .on_closed = milter_on_closed,
    .on_connected = milter_on_connected,
};

/* "inet:IP:PORT", "IP:PORT" or "[IPv6]:PORT" into ip (no brackets) and port; "unix:/PATH"
 * or "local:/PATH" (Postfix's and Sendmail's spellings) into path. */
static int milter_address(const char *address, char *ip, size_t ip_len, int *port_r,
                          const char **path_r)
{
	*path_r = NULL;
	const char *colon = strchr(address, ':');
	if (colon != NULL &&
	    (strncmp(address, "unix:", 5) == 0 || strncmp(address, "local:", 6) == 0)) {
		if (colon[1] != '/')
			return -1;
		*path_r = colon + 1;
		return 0;
	}
	if (strncmp(address, "inet:", 5) == 0)
		address += 5;
	colon = strrchr(address, ':');
	if (colon == NULL || colon == address)
		return -1;
	const char *h = address;
	size_t hl = (size_t)(colon - address);
	if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (hl == 0 || hl >= ip_len || *end != '\0' || port < 1 || port > 65535)
		return -1;
	memcpy(ip, h, hl);
	ip[hl] = '\0';
	*port_r = (int)port;
	return 0;
}

struct milter *milter_start(struct net_loop *loop, const struct milter_request *req,
                            milter_done_fn *cb, void *ctx, const char **error_r)
{
	char ip[64] = "";
	int port = 0;
	const char *path;
	if (milter_address(req->address, ip, sizeof(ip), &port, &path) < 0) {
		*error_r = "milter address is not inet:IP:PORT or unix:/PATH";
		return NULL;
	}
	struct milter *m = xcalloc(1, sizeof(*m));
	m->cb = cb;
	m->ctx = ctx;
	m->timeout = req->timeout;
	m->fallback = req->fallback;
	m->client_ip = xstrdup(req->client_ip);
	/* Sendmail's and Postfix's host name of a client without a confirmed name: "[ip]". */
	if (req->client_name != NULL)
		m->client_name = xstrdup(req->client_name);
	else {
		char bracketed[80];
		snprintf(bracketed, sizeof(bracketed), "[%s]", req->client_ip);
		m->client_name = xstrdup(bracketed);
	}
	m->client_ptr = xstrdup(req->client_ptr != NULL ? req->client_ptr : "unknown");
	m->client_resolve = xstrdup(req->client_resolve != NULL ? req->client_resolve : "FAIL");
	m->helo = xstrdup(req->helo != NULL ? req->helo : "");
	m->mail_from = xstrdup(req->mail_from);
	m->queue_id = xstrdup(req->queue_id);
	m->our_name = xstrdup(req->our_name);
	m->rcpts = xcalloc(req->rcpt_count + 1, sizeof(*m->rcpts));
	for (size_t i = 0; i < req->rcpt_count; i++)
		m->rcpts[i] = xstrdup(req->rcpts[i]);
	m->rcpt_count = req->rcpt_count;
	m->msg = req->msg;
	m->len = req->len;
	m->arena = arena_new(8192);
	m->nfields =
	    dkim_canon_fields(m->arena, m->msg, m->len, MILTER_FIELDS_MAX, &m->fields, &m->body);
	buf_init(&m->out, MILTER_OUT_MAX);
	buf_init(&m->in, MILTER_REPLY_MAX + 8);
	struct conn_connect_params cp = {
	    .ip = ip, .port = port, .timeout = req->timeout, .unix_path = path};
	m->conn = conn_connect(loop, &cp, &milter_callbacks, m, error_r);
	if (m->conn == NULL) {
		milter_free(m);
		return NULL;
	}
	return m;
}

void milter_cancel(struct milter **mp)
{
	struct milter *m = *mp;
	if (m == NULL)
		return;
	*mp = NULL;
	m->cb = NULL;
	if (!m->done) {
		m->done = true;
		conn_close(m->conn);
	}
}
