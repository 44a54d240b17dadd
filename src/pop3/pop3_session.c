/* POP3 sessions: connection callbacks, the RFC 1939 state machine, the maildrop lock, RETR
 * and TOP streamed from the message file with CRLF line ends and dot-stuffing, and the
 * UPDATE state (deletions at QUIT, in one store transaction). Commands: pop3_commands.c. */
#include "pop3/pop3_session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "pop3/pop3_server.h"
#include "core/banned.h"

#define POP3_STREAM_CHUNK 32768
#define POP3_OUTPUT_HIGH (256 * 1024)

struct pop3_drop {
	struct pop3_drop *next;
	uint64_t account_id;
	bool locked;
	time_t last_login;
};

static const char *const pop3_state_names[] = {
    "tls", "authorization", "sasl", "transaction", "streaming", "wait", "closing",
};

struct pop3_server *pop3_server_new(struct store *store, struct auth *auth, struct conf *conf)
{
	struct pop3_server *srv = xcalloc(1, sizeof(*srv));
	srv->store = store;
	srv->auth = auth;
	pthread_mutex_init(&srv->lock, NULL);
	conf_slot_init(&srv->conf, conf);
	srv->userip = userip_new();
	return srv;
}

void pop3_server_free(struct pop3_server **server)
{
	struct pop3_server *srv = *server;
	if (srv == NULL)
		return;
	while (srv->drops != NULL) {
		struct pop3_drop *next = srv->drops->next;
		free(srv->drops);
		srv->drops = next;
	}
	conf_slot_deinit(&srv->conf);
	userip_free(&srv->userip);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
	*server = NULL;
}

void pop3_server_set_conf(struct pop3_server *srv, struct conf *conf)
{
	conf_slot_set(&srv->conf, conf);
}

/* ---- maildrop locks (RFC 1939 §8: one POP3 session per maildrop) ----
 * In-process for this node; on a store several nodes share, a lease in the store as well
 * (pop3_snapshot_read()), which the store renews while the session holds it. */

static struct pop3_drop *pop3_drop_find(struct pop3_server *srv, uint64_t account_id)
{
	for (struct pop3_drop *d = srv->drops; d != NULL; d = d->next)
		if (d->account_id == account_id)
			return d;
	struct pop3_drop *d = xcalloc(1, sizeof(*d));
	d->account_id = account_id;
	d->next = srv->drops;
	srv->drops = d;
	return d;
}

/* 0 locked, -1 in use, -2 login delay not expired. */
static int pop3_drop_lock(struct pop3_server *srv, uint64_t account_id, unsigned delay)
{
	int ret = 0;
	time_t now = time(NULL);
	pthread_mutex_lock(&srv->lock);
	struct pop3_drop *d = pop3_drop_find(srv, account_id);
	if (d->locked)
		ret = -1;
	else if (delay > 0 && d->last_login != 0 && now - d->last_login < (time_t)delay)
		ret = -2;
	else {
		d->locked = true;
		d->last_login = now;
	}
	pthread_mutex_unlock(&srv->lock);
	return ret;
}

static void pop3_drop_unlock(struct pop3_server *srv, uint64_t account_id)
{
	pthread_mutex_lock(&srv->lock);
	pop3_drop_find(srv, account_id)->locked = false;
	pthread_mutex_unlock(&srv->lock);
}

/* ---- replies and state ---- */

void pop3_session_set_state(struct pop3_session *s, enum pop3_state state)
{
	if (log_debug_enabled())
		log_debug("session=%s proto=pop3 event=state from=%s to=%s", conn_id(s->conn),
		          pop3_state_names[s->state], pop3_state_names[state]);
	s->state = state;
}

void pop3_session_close(struct pop3_session *s, const char *reply)
{
	if (s->state == POP3_STATE_CLOSING || s->closed)
		return;
	if (reply != NULL)
		conn_printf(s->conn, "%s\r\n", reply);
	pop3_session_set_state(s, POP3_STATE_CLOSING);
	conn_close(s->conn);
}

void pop3_reply(struct pop3_session *s, const char *line)
{
	if (s->state == POP3_STATE_CLOSING || s->closed)
		return;
	if (strncmp(line, "-ERR", 4) == 0 && ++s->errors >= s->limits->errors) {
		/* One line per command: the reply that reaches the limit is the last line. */
		POP3_LOG(s, "event=disconnect reason=too-many-errors errors=%u", s->errors);
		pop3_session_close(s, line);
		return;
	}
	conn_printf(s->conn, "%s\r\n", line);
}

void pop3_replyf(struct pop3_session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pop3_reply(s, line);
}

bool pop3_session_plaintext_ok(const struct pop3_session *s)
{
	return conn_is_tls(s->conn) || s->conf->allow_plaintext_auth;
}

/* A lease release on its way to the database (store_read()). */
struct pop3_lease_release {
	struct store *store;
	char name[32], owner[96];
};

static void pop3_lease_release_run(void *ctx)
{
	struct pop3_lease_release *r = ctx;
	store_lease_release(r->store, r->name, r->owner);
}

/* Give the maildrop up: this node's lock, and the lease of a store other nodes share
 * (released where store writes may wait; nobody waits for it). */
static void pop3_maildrop_release(struct pop3_session *s)
{
	if (!s->locked)
		return;
	pop3_drop_unlock(s->server, s->account_id);
	s->locked = false;
	if (!s->leased)
		return;
	s->leased = false;
	struct pop3_lease_release *r = xcalloc(1, sizeof(*r));
	r->store = s->server->store;
	snprintf(r->name, sizeof(r->name), "pop3:%llu", (unsigned long long)s->account_id);
	snprintf(r->owner, sizeof(r->owner), "%s", s->lease_owner);
	if (store_read(r->store, pop3_lease_release_run, free, r))
		free(r);
}

static void pop3_session_free(struct pop3_session *s)
{
	pop3_maildrop_release(s);
	if (s->fd >= 0)
		close(s->fd);
	auth_login_free(&s->login);
	free(s->user);
	free(s->read_user);
	free(s->msgs);
	free(s->expunge_uids);
	arena_free(&s->cmd);
	conf_free(&s->conf);
	free(s);
}

/* ---- login: the wire side of auth/auth_login ---- */

static void pop3_login_wake(void *ctx)
{
	struct pop3_session *s = ctx;
	session_async_finished(&s->life);
}

struct auth_login *pop3_session_login_new(struct pop3_session *s)
{
	auth_login_free(&s->login);
	s->login = auth_login_new(s->server->auth, conn_remote_ip(s->conn), pop3_login_wake, s);
	return s->login;
}

static void pop3_login_done(struct pop3_session *s);

void pop3_session_login_status(struct pop3_session *s, enum auth_login_status st,
                               const char *challenge, const char *error)
{
	switch (st) {
	case AUTH_LOGIN_CHALLENGE:
		pop3_session_set_state(s, POP3_STATE_SASL);
		conn_printf(s->conn, "+ %s\r\n", challenge);
		return;
	case AUTH_LOGIN_PENDING:
		pop3_session_set_state(s, POP3_STATE_WAIT);
		session_async_start(&s->life, POP3_ASYNC_AUTH);
		return;
	case AUTH_LOGIN_DONE:
		pop3_login_done(s);
		return;
	case AUTH_LOGIN_CANCELLED:
	case AUTH_LOGIN_MALFORMED:
		auth_login_free(&s->login);
		pop3_session_set_state(s, POP3_STATE_AUTHORIZATION);
		if (st == AUTH_LOGIN_CANCELLED)
			pop3_reply(s, "-ERR Authentication cancelled");
		else
			pop3_replyf(s, "-ERR [AUTH] %s", error);
		return;
	}
}

/* ---- store reads (store_read(): off the loop when the database is remote) ---- */

static void pop3_read_finished(void *ctx)
{
	struct pop3_session *s = ctx;
	session_async_finished(&s->life);
}

/* Run fn(s) where reads may wait, then next(s) on the loop: at once when reads never
 * wait, else from the wake that ends POP3_ASYNC_READ (input is paused meanwhile). */
static void pop3_read(struct pop3_session *s, store_read_fn *fn,
                      void (*next)(struct pop3_session *s))
{
	struct store *store = s->server->store;
	if (!store_reads_wait(store)) {
		fn(s);
		next(s);
		return;
	}
	s->read_next = next;
	/* No command of a pipeline runs before this one's answer. */
	s->read_state = s->state;
	pop3_session_set_state(s, POP3_STATE_WAIT);
	session_async_start(&s->life, POP3_ASYNC_READ);
	if (store_read(store, fn, pop3_read_finished, s))
		pop3_read_finished(s);
}

static void pop3_snapshot_read(void *ctx);
static void pop3_login_snapshot_done(struct pop3_session *s);

static void pop3_snapshot_cb(void *ctx, const struct store_entry *e)
{
	struct pop3_session *s = ctx;
	if ((s->count & (s->count - 1)) == 0) /* grow at powers of two */
		s->msgs = xrealloc(s->msgs,
		                   (s->count == 0 ? 1 : 2 * (size_t)s->count) * sizeof(*s->msgs));
	s->msgs[s->count++] =
	    (struct pop3_msg){.uid = e->uid, .size = e->size, .date = e->internal_date};
}

/* The one place where a POP3 login succeeds (credentials verified): lock and snapshot
 * the maildrop, enter TRANSACTION. */
static void pop3_login_succeeded(struct pop3_session *s, uint64_t account_id, const char *user)
{
	pop3_session_set_state(s, POP3_STATE_AUTHORIZATION);
	int lock = pop3_drop_lock(s->server, account_id, s->conf->pop3_login_delay);
	if (lock == -1) {
		POP3_LOG(s, "event=login result=in-use user=%s", user);
		pop3_reply(s, "-ERR [IN-USE] Mailbox is locked by another POP3 session");
		return;
	}
	if (lock == -2) {
		POP3_LOG(s, "event=login result=login-delay user=%s", user);
		pop3_reply(s, "-ERR [LOGIN-DELAY] Login delay not expired, try again later");
		return;
	}
	/* limit_sessions_per_user_ip; the pre-login deadline ends (net/session.h) */
	if (session_admit_login(&s->life, s->server->userip, account_id,
	                        s->limits->sessions_per_user_ip) == 0) {
		pop3_drop_unlock(s->server, account_id);
		pop3_reply(s, "-ERR [IN-USE] Too many sessions of this user from this address");
		return;
	}
	s->account_id = account_id;
	s->locked = true;
	s->count = 0;
	snprintf(s->lease_owner, sizeof(s->lease_owner), "%s:%d:%s", s->conf->hostname,
	         (int)getpid(), conn_id(s->conn));
	free(s->read_user);
	s->read_user = xstrdup(user);
	pop3_read(s, pop3_snapshot_read, pop3_login_snapshot_done);
}

/* Off the loop when reads wait: the maildrop's listing. */
static void pop3_snapshot_read(void *ctx)
{
	struct pop3_session *s = ctx;
	if (store_is_shared(s->server->store)) {
		/* Other nodes: the maildrop's lease (RFC 1939 §8 across the cluster). */
		char name[32];
		snprintf(name, sizeof(name), "pop3:%llu", (unsigned long long)s->account_id);
		int r = store_lease_take(s->server->store, name, s->lease_owner, POP3_LEASE_TTL);
		if (r != 1) {
			s->read_ret = r == 0 ? -2 : -1;
			return;
		}
		s->leased = true;
	}
	s->read_ret = store_mailbox_snapshot(s->server->store, s->account_id, "INBOX",
	                                     &s->read_status, pop3_snapshot_cb, s);
}

static void pop3_login_snapshot_done(struct pop3_session *s)
{
	const char *user = s->read_user;
	if (s->read_ret == -2) {
		pop3_maildrop_release(s);
		POP3_LOG(s, "event=login result=in-use user=%s node=other", user);
		pop3_reply(s, "-ERR [IN-USE] Mailbox is locked by another POP3 session");
		return;
	}
	if (s->read_ret != 1) {
		pop3_maildrop_release(s);
		log_error("session=%s proto=pop3 event=login error=snapshot user=%s",
		          conn_id(s->conn), user);
		pop3_reply(s, "-ERR [SYS/TEMP] Cannot open the mailbox, try again later");
		return;
	}
	s->uidvalidity = s->read_status.uidvalidity;
	uint64_t total = 0;
	for (uint32_t i = 0; i < s->count; i++)
		total += s->msgs[i].size;
	POP3_LOG(s, "event=login result=ok user=%s messages=%u", user, s->count);
	pop3_session_set_state(s, POP3_STATE_TRANSACTION);
	pop3_replyf(s, "+OK Logged in, %u messages (%llu octets)", s->count,
	            (unsigned long long)total);
}

static void pop3_login_done(struct pop3_session *s)
{
	const struct auth_login_result *res = auth_login_result(s->login);
	pop3_session_set_state(s, POP3_STATE_AUTHORIZATION);
	if (res->result == 1) {
		POP3_LOG(s, "event=auth result=ok user=%s mech=%s cached=%s", res->user, res->mech,
		         res->cached ? "yes" : "no");
		char *user = xstrdup(res->user);
		uint64_t account_id = res->account_id;
		auth_login_free(&s->login);
		pop3_login_succeeded(s, account_id, user);
		free(user);
		return;
	}
	if (res->result < 0) {
		POP3_LOG(s, "event=login result=tempfail user=%s mech=%s", res->user, res->mech);
		auth_login_free(&s->login);
		pop3_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure");
		return;
	}
	s->auth_failures++;
	POP3_LOG(s, "event=login result=fail user=%s mech=%s delay_ms=%u", res->user, res->mech,
	         res->delay_ms);
	unsigned delay = res->delay_ms;
	auth_login_free(&s->login);
	/* Answer from the timer, after the penalty; input stays paused meanwhile. */
	pop3_session_set_state(s, POP3_STATE_WAIT);
	conn_pause(s->conn);
	conn_set_timer(s->conn, delay > 0 ? delay : 1);
}

/* The reply to a failed login, after its delay: exactly one line, also when the failure
 * ends the session. */
static void pop3_login_failed_answer(struct pop3_session *s)
{
	pop3_session_set_state(s, POP3_STATE_AUTHORIZATION);
	if (s->auth_failures >= s->limits->auth_failures) {
		POP3_LOG(s, "event=disconnect reason=too-many-auth-failures failures=%u",
		         s->auth_failures);
		pop3_session_close(s,
		                   "-ERR [AUTH] Authentication failed; too many failures, closing");
		return;
	}
	pop3_reply(s, "-ERR [AUTH] Authentication failed");
	if (s->state == POP3_STATE_AUTHORIZATION)
		conn_resume(s->conn);
}

/* ---- RETR / TOP ---- */

/* CRLF line ends (a bare CR or LF becomes CRLF) and dot-stuffing (RFC 1939 §3); for TOP,
 * stop after the header and the requested body lines (§7). Returns false once the response
 * is complete. */
static bool pop3_transform_bytes(struct pop3_session *s, const unsigned char *in, size_t n,
                                 unsigned char *out, size_t *out_len);

/* RETR's common case, a line at a time: lines that already end in CRLF (as stored mail
 * does) are copied whole, with a dot prepended when they start with one. Anything unusual
 * (a bare CR, TOP's line counting) goes to the octet-by-octet path. */
static bool pop3_transform(struct pop3_session *s, const unsigned char *in, size_t n,
                           unsigned char *out, size_t *out_len)
{
	size_t i = 0, o = 0;
	while (i < n && !s->top && !s->pending_cr) {
		const unsigned char *lf = memchr(in + i, '\n', n - i);
		size_t end = lf != NULL ? (size_t)(lf - in) : n;
		const unsigned char *cr = memchr(in + i, '\r', end - i);
		if (cr != NULL && (lf == NULL || cr != lf - 1))
			break; /* a bare CR, or a CR at the end of this chunk */
		if (s->at_line_start && in[i] == '.')
			out[o++] = '.';
		if (lf == NULL) {
			memcpy(out + o, in + i, n - i);
			o += n - i;
			s->at_line_start = false;
			i = n;
			break;
		}
		size_t line = end - i; /* without the LF */
		memcpy(out + o, in + i, line);
		o += line;
		if (cr == NULL)
			out[o++] = '\r'; /* a bare LF becomes CRLF */
		out[o++] = '\n';
		s->at_line_start = true;
		s->line_len = 0;
		i = end + 1;
	}
	if (i == n) {
		*out_len = o;
		return true;
	}
	size_t rest;
	bool more = pop3_transform_bytes(s, in + i, n - i, out + o, &rest);
	*out_len = o + rest;
	return more;
}

static bool pop3_transform_bytes(struct pop3_session *s, const unsigned char *in, size_t n,
                                 unsigned char *out, size_t *out_len)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = in[i];
		if (s->pending_cr) {
			s->pending_cr = false;
			if (c == '\n')
				continue; /* the LF of a CRLF already written */
		}
		if (c != '\r' && c != '\n') {
			if (s->at_line_start && c == '.')
				out[o++] = '.';
			out[o++] = c;
			s->at_line_start = false;
			s->line_len++;
			continue;
		}
		out[o++] = '\r';
		out[o++] = '\n';
		s->pending_cr = c == '\r';
		if (!s->in_body && s->line_len == 0)
			s->in_body = true; /* the empty line that ends the header */
		else if (s->in_body && s->top && s->top_lines > 0)
			s->top_lines--;
		s->at_line_start = true;
		s->line_len = 0;
		if (s->top && s->in_body && s->top_lines == 0) {
			*out_len = o;
			return false;
		}
	}
	*out_len = o;
	return true;
}

static void pop3_stream_finish(struct pop3_session *s)
{
	if (!s->at_line_start)
		conn_write(s->conn, "\r\n", 2);
	conn_write(s->conn, ".\r\n", 3);
	close(s->fd);
	s->fd = -1;
	pop3_session_set_state(s, POP3_STATE_TRANSACTION);
	conn_resume(s->conn);
}

static void pop3_stream_continue(struct pop3_session *s)
{
	unsigned char in[POP3_STREAM_CHUNK];
	unsigned char out[2 * POP3_STREAM_CHUNK];
	while (s->state == POP3_STATE_STREAMING && conn_output_length(s->conn) < POP3_OUTPUT_HIGH) {
		ssize_t n = read(s->fd, in, sizeof(in));
		if (n < 0) {
			/* The +OK is out: all we can do is end the connection (RFC 1939 has no
			 * way to abort a multi-line response). */
			log_error("session=%s proto=pop3 event=read-error", conn_id(s->conn));
			pop3_session_close(s, NULL);
			return;
		}
		size_t out_len = 0;
		bool more = n > 0 && pop3_transform(s, in, (size_t)n, out, &out_len);
		conn_write(s->conn, out, out_len);
		if (!more) {
			pop3_stream_finish(s);
			return;
		}
	}
}

/* Off the loop when reads wait: open the message being sent. */
static void pop3_stream_read(void *ctx)
{
	struct pop3_session *s = ctx;
	uint64_t size;
	s->read_ret = store_message_open(s->server->store, s->account_id, "INBOX",
	                                 s->msgs[s->stream_n - 1].uid, &s->fd, &size);
}

static void pop3_stream_opened(struct pop3_session *s)
{
	struct pop3_msg *m = &s->msgs[s->stream_n - 1];
	if (s->read_ret == 0) {
		/* Expunged by IMAP meanwhile: this message only fails, the session goes on. */
		pop3_replyf(s, "-ERR Message %u no longer exists", s->stream_n);
		return;
	}
	if (s->read_ret < 0) {
		pop3_reply(s, "-ERR [SYS/TEMP] Cannot read the message, try again later");
		return;
	}
	s->in_body = false;
	s->at_line_start = true;
	s->pending_cr = false;
	s->line_len = 0;
	if (!s->top)
		m->retrieved = true;
	if (s->top)
		conn_printf(s->conn, "+OK\r\n");
	else
		conn_printf(s->conn, "+OK %llu octets\r\n", (unsigned long long)m->size);
	pop3_session_set_state(s, POP3_STATE_STREAMING);
	conn_pause(s->conn);
	pop3_stream_continue(s);
}

void pop3_session_stream(struct pop3_session *s, uint32_t n, bool top, uint64_t lines)
{
	s->stream_n = n;
	s->top = top;
	s->top_lines = lines;
	s->fd = -1;
	pop3_read(s, pop3_stream_read, pop3_stream_opened);
}

/* ---- UPDATE (RFC 1939 §6) ---- */

static void pop3_expunge_cb(struct store_expunge *op, void *ctx)
{
	(void)op;
	struct pop3_session *s = ctx;
	session_async_finished(&s->life);
}

void pop3_session_update(struct pop3_session *s)
{
	int64_t now = time(NULL);
	size_t n = 0;
	s->expunge_uids = xcalloc(s->count + 1, sizeof(uint32_t));
	for (uint32_t i = 0; i < s->count; i++) {
		const struct pop3_msg *m = &s->msgs[i];
		/* EXPIRE (RFC 2449 §6.7): retrieved mail older than the setting goes too. */
		bool expired = s->conf->pop3_expire >= 0 && m->retrieved &&
		               now - m->date >= (int64_t)s->conf->pop3_expire * 86400;
		if (m->deleted || expired)
			s->expunge_uids[n++] = m->uid;
	}
	if (n == 0) {
		/* Release the maildrop before the goodbye, so an immediate new login works. */
		pop3_maildrop_release(s);
		POP3_LOG(s, "event=logout deleted=%u", 0);
		pop3_session_close(s, "+OK Logging out");
		return;
	}
	s->expunge = (struct store_expunge){
	    .account_id = s->account_id,
	    .mailbox = "INBOX",
	    .uids = s->expunge_uids,
	    .uid_count = n,
	};
	pop3_session_set_state(s, POP3_STATE_WAIT);
	session_async_start(&s->life, POP3_ASYNC_EXPUNGE);
	store_expunge(s->server->store, &s->expunge, pop3_expunge_cb, s);
}

static void pop3_update_done(struct pop3_session *s)
{
	pop3_maildrop_release(s);
	if (s->expunge.result != 0) {
		log_error("session=%s proto=pop3 event=logout error=\"%s\"", conn_id(s->conn),
		          s->expunge.error);
		pop3_session_close(s, "-ERR [SYS/TEMP] Deleted messages were not removed");
		return;
	}
	POP3_LOG(s, "event=logout deleted=%u freed=%llu", s->expunge.expunged,
	         (unsigned long long)s->expunge.freed);
	pop3_session_set_state(s, POP3_STATE_TRANSACTION);
	char line[96];
	snprintf(line, sizeof(line), "+OK Logging out, %u messages deleted", s->expunge.expunged);
	pop3_session_close(s, line);
}

/* ---- connection callbacks ---- */

static void pop3_on_input(struct conn *conn, void *ctx)
{
	struct pop3_session *s = ctx;
	while (!s->closed && (s->state == POP3_STATE_AUTHORIZATION ||
	                      s->state == POP3_STATE_TRANSACTION || s->state == POP3_STATE_SASL)) {
		char *line;
		size_t len;
		/* AUTH lines carry SASL responses: RFC 4954's 12,288 octets apply as in SMTP
		 * (RFC 5034 §4 sets no smaller limit); other commands keep the line limit. */
		size_t max = s->limits->command_line;
		if (s->state != POP3_STATE_TRANSACTION && max < AUTH_LOGIN_LINE_MAX + 2)
			max = AUTH_LOGIN_LINE_MAX + 2;
		int r = conn_read_line(conn, max, &line, &len);
		if (r == 0)
			return;
		arena_reset(s->cmd);
		if (r < 0) {
			if (s->state == POP3_STATE_SASL) {
				auth_login_free(&s->login);
				pop3_session_set_state(s, POP3_STATE_AUTHORIZATION);
			}
			pop3_reply(s, "-ERR Line too long");
		} else if (s->state == POP3_STATE_AUTHORIZATION &&
		           len + 2 > s->limits->command_line &&
		           !(len > 5 && strncasecmp(line, "AUTH ", 5) == 0)) {
			xmemzero(line, len);
			pop3_reply(s, "-ERR Line too long");
		} else if (s->state == POP3_STATE_SASL) {
			pop3_commands_sasl_continue(s, line);
			xmemzero(line, len); /* SASL responses carry secrets */
		} else if (s->state == POP3_STATE_AUTHORIZATION &&
		           ++s->login_commands > s->limits->login_commands) {
			xmemzero(line, len);
			POP3_LOG(s,
			         "event=disconnect reason=too-many-commands-before-login count=%u",
			         s->login_commands);
			pop3_session_close(s, "-ERR Too many commands before login");
		} else {
			pop3_commands_execute(s, line, len);
			xmemzero(line, len); /* PASS, APOP and AUTH lines carry secrets */
		}
	}
}

static void pop3_greet(struct pop3_session *s)
{
	s->greeted = true;
	pop3_session_set_state(s, POP3_STATE_AUTHORIZATION);
	if (s->conf->pop3_apop) {
		/* RFC 1939 §7: a unique timestamp per greeting. */
		unsigned char r[8];
		if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
			memset(r, 0, sizeof(r));
		snprintf(s->apop_banner, sizeof(s->apop_banner),
		         "<%d.%02x%02x%02x%02x%02x%02x%02x%02x.%lld@%s>", (int)getpid(), r[0], r[1],
		         r[2], r[3], r[4], r[5], r[6], r[7], (long long)time(NULL),
		         s->conf->hostname);
		pop3_replyf(s, "+OK Posthorn POP3 ready %s", s->apop_banner);
	} else {
		pop3_reply(s, "+OK Posthorn POP3 ready");
	}
}

static void pop3_on_tls_ready(struct conn *conn, void *ctx)
{
	struct pop3_session *s = ctx;
	POP3_LOG(s, "event=tls %s", conn_tls_description(conn));
	if (!s->greeted) {
		pop3_greet(s);
		return;
	}
	/* After STLS (RFC 2595 §4): forget what was said before. */
	free(s->user);
	s->user = NULL;
	pop3_session_set_state(s, POP3_STATE_AUTHORIZATION);
	pop3_on_input(conn, ctx);
}

static void pop3_on_drained(struct conn *conn, void *ctx)
{
	(void)conn;
	struct pop3_session *s = ctx;
	if (s->state == POP3_STATE_STREAMING)
		pop3_stream_continue(s);
}

static void pop3_on_timeout(struct conn *conn, void *ctx)
{
	(void)conn;
	struct pop3_session *s = ctx;
	POP3_LOG(s, "event=disconnect reason=timeout state=%s", pop3_state_names[s->state]);
	pop3_session_close(s, "-ERR Disconnected for inactivity");
}

static void pop3_on_timer(struct conn *conn, void *ctx)
{
	(void)conn;
	struct pop3_session *s = ctx;
	if (s->state == POP3_STATE_WAIT && session_async(&s->life) == POP3_ASYNC_NONE)
		pop3_login_failed_answer(s);
}

/* ---- lifecycle (net/session.h) ---- */

static void pop3_async_done(void *ctx, int kind)
{
	struct pop3_session *s = ctx;
	if (kind == POP3_ASYNC_AUTH) {
		const char *challenge, *error;
		enum auth_login_status st = auth_login_resume(s->login, &challenge, &error);
		pop3_session_login_status(s, st, challenge, error);
		if (st != AUTH_LOGIN_DONE) /* SCRAM's server-first after its look-up */
			conn_resume(s->conn);
	} else if (kind == POP3_ASYNC_EXPUNGE) {
		pop3_update_done(s);
	} else if (kind == POP3_ASYNC_READ) {
		pop3_session_set_state(s, s->read_state);
		s->read_next(s);
	}
}

static void pop3_after_wake(void *ctx)
{
	struct pop3_session *s = ctx;
	if (s->state == POP3_STATE_AUTHORIZATION || s->state == POP3_STATE_TRANSACTION)
		conn_resume(s->conn);
}

/* Shutdown: like a dropped connection, nothing marked with DELE is removed; a QUIT whose
 * deletions are being committed, or a password check, finishes first (session.c). */
static void pop3_goodbye(void *ctx)
{
	pop3_session_close(ctx, "-ERR [SYS/TEMP] Server shutting down");
}

static void pop3_free_hook(void *ctx)
{
	pop3_session_free(ctx);
}

static const struct session_hooks pop3_session_hooks = {
    .async_done = pop3_async_done,
    .wake = pop3_after_wake,
    .goodbye = pop3_goodbye,
    .free = pop3_free_hook,
};

static void pop3_on_wake(struct conn *conn, void *ctx)
{
	(void)conn;
	struct pop3_session *s = ctx;
	session_on_wake(&s->life);
}

static void pop3_on_shutdown(struct conn *conn, void *ctx)
{
	(void)conn;
	struct pop3_session *s = ctx;
	session_on_shutdown(&s->life);
}

static void pop3_on_closed(struct conn *conn, void *ctx)
{
	struct pop3_session *s = ctx;
	POP3_LOG(s, "event=disconnect ip=%s errors=%u", conn_remote_ip(conn), s->errors);
	s->closed = true;
	session_on_closed(&s->life); /* frees s, or leaves it to the operation's wake */
}

static const struct conn_callbacks pop3_callbacks = {
    .on_input = pop3_on_input,
    .on_drained = pop3_on_drained,
    .on_tls_ready = pop3_on_tls_ready,
    .on_timeout = pop3_on_timeout,
    .on_timer = pop3_on_timer,
    .on_wake = pop3_on_wake,
    .on_shutdown = pop3_on_shutdown,
    .on_closed = pop3_on_closed,
};

void pop3_server_accept(struct conn *conn, void *listener_ctx)
{
	struct pop3_listener *l = listener_ctx;
	struct pop3_server *srv = l->server;
	struct pop3_session *s = xcalloc(1, sizeof(*s));
	s->conn = conn;
	s->server = srv;
	s->conf = conf_slot_get(&srv->conf);
	s->limits = &s->conf->limits;
	s->cmd = arena_new(2048);
	s->fd = -1;
	s->state = POP3_STATE_TLS;
	session_init(&s->life, conn, "pop3", &pop3_session_hooks, s);
	conn_set_callbacks(conn, &pop3_callbacks, s);
	/* RFC 1939 §3: an autologout timer, if any, of at least 10 minutes (the default). */
	conn_set_timeout(conn, s->limits->pop3_idle_timeout);
	POP3_LOG(s, "event=connect ip=%s port=%d", conn_remote_ip(conn), conn_local_port(conn));
	if (!l->implicit_tls)
		pop3_greet(s); /* implicit TLS greets from on_tls_ready */
}
