/* The rspamd client's exchange (see rspamd.h): the request head is built at once, sent
 * after the connect with the message behind it in chunks, and the response is collected
 * until rspamd_proto_parse() has all of it (its Content-Length, or the end of the
 * connection). */
#include "smtp/rspamd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "net/conn.h"
#include "core/banned.h"

#define RSPAMD_HEAD_MAX (64 * 1024 + 600 * 1000) /* the request head: 1000 recipients */
#define RSPAMD_CHUNK (64 * 1024)                 /* body octets per conn_write() */

struct rspamd {
	struct conn *conn;
	rspamd_done_fn *cb;
	void *ctx;
	bool done;
	unsigned timeout;
	struct buf head, in;
	const unsigned char *msg;
	size_t len, sent; /* body octets handed to the connection */
	struct arena *arena;
	char queue_id[48]; /* for the log: "SESSION.N" */
};

static void rspamd_free(struct rspamd *r)
{
	buf_free(&r->head);
	buf_free(&r->in);
	arena_free(&r->arena);
	free(r);
}

/* Decided: tell the requester (verdict or failure), then close. */
static void rspamd_finish(struct rspamd *r, const struct rspamd_verdict *v, const char *failure)
{
	if (r->done)
		return;
	r->done = true;
	if (v == NULL) {
		/* The queue id is "SESSION.N": the session's lines carry SESSION. */
		const char *dot = strrchr(r->queue_id, '.');
		int n = dot != NULL ? (int)(dot - r->queue_id) : (int)strlen(r->queue_id);
		log_warn("session=%.*s proto=smtp event=rspamd-failure id=%s reason=\"%s\" "
		         "error=\"%s\" then=default-action",
		         n, r->queue_id, r->queue_id, failure, conn_error(r->conn));
	}
	if (!conn_is_closed(r->conn))
		conn_close(r->conn);
	if (r->cb != NULL)
		r->cb(v, failure, r->ctx);
	r->cb = NULL;
}

/* Try to read the response collected so far. */
static void rspamd_try_parse(struct rspamd *r, bool eof)
{
	struct rspamd_verdict v;
	const char *error = "no response";
	int ret = rspamd_proto_parse((const unsigned char *)r->in.data, r->in.len, eof, r->arena,
	                             &v, &error);
	if (ret > 0)
		rspamd_finish(r, &v, NULL);
	else if (ret < 0 || eof)
		rspamd_finish(r, NULL, error);
}

/* Write body chunks until all is queued or the output is full. */
static void rspamd_send(struct rspamd *r)
{
	while (!r->done && r->sent < r->len) {
		if (conn_output_full(r->conn)) {
			conn_wait_writable(r->conn);
			return;
		}
		size_t n = r->len - r->sent < RSPAMD_CHUNK ? r->len - r->sent : RSPAMD_CHUNK;
		conn_write(r->conn, r->msg + r->sent, n);
		r->sent += n;
	}
}

static void rspamd_on_connected(struct conn *conn, void *ctx)
{
	struct rspamd *r = ctx;
	conn_write(conn, r->head.data, r->head.len);
	rspamd_send(r);
}

static void rspamd_on_writable(struct conn *conn, void *ctx)
{
	(void)conn;
	rspamd_send(ctx);
}

static void rspamd_on_input(struct conn *conn, void *ctx)
{
	struct rspamd *r = ctx;
	unsigned char chunk[16384];
	size_t n;
	while (!r->done && (n = conn_read_bytes(conn, chunk, sizeof(chunk))) > 0) {
		if (buf_append(&r->in, chunk, n) < 0)
			return rspamd_finish(r, NULL, "the response is larger than the limit");
		rspamd_try_parse(r, false);
	}
}

static void rspamd_on_timer(struct conn *conn, void *ctx)
{
	(void)conn;
	rspamd_finish(ctx, NULL, "rspamd did not answer in time");
}

static void rspamd_on_shutdown(struct conn *conn, void *ctx)
{
	(void)conn;
	rspamd_finish(ctx, NULL, "the server is stopping");
}

static void rspamd_on_closed(struct conn *conn, void *ctx)
{
	(void)conn;
	struct rspamd *r = ctx;
	if (!r->done && r->in.len == 0) /* conn_error() says why, logged with it */
		rspamd_finish(r, NULL, "rspamd cannot be reached or closed the connection");
	else if (!r->done)
		rspamd_try_parse(r, true);
	rspamd_free(r);
}

static const struct conn_callbacks rspamd_callbacks = {
    .on_input = rspamd_on_input,
    .on_writable = rspamd_on_writable,
    .on_timer = rspamd_on_timer,
    .on_shutdown = rspamd_on_shutdown,
    .on_closed = rspamd_on_closed,
    .on_connected = rspamd_on_connected,
};

struct rspamd *rspamd_start(struct net_loop *loop, const struct rspamd_request *req,
                            rspamd_done_fn *cb, void *ctx, const char **error_r)
{
	struct rspamd *r = xcalloc(1, sizeof(*r));
	r->cb = cb;
	r->ctx = ctx;
	r->timeout = req->timeout;
	r->msg = req->msg;
	r->len = req->len;
	snprintf(r->queue_id, sizeof(r->queue_id), "%s", req->head.queue_id);
	r->arena = arena_new(8192);
	buf_init(&r->head, RSPAMD_HEAD_MAX);
	buf_init(&r->in, RSPAMD_REPLY_MAX);
	struct rspamd_request_head head = req->head;
	head.body_len = req->len;
	if (rspamd_proto_request(&r->head, &head) < 0) {
		*error_r = "the request for rspamd is too large";
		rspamd_free(r);
		return NULL;
	}
	struct conn_connect_params cp = {.ip = req->ip, .port = req->port, .timeout = req->timeout};
	r->conn = conn_connect(loop, &cp, &rspamd_callbacks, r, error_r);
	if (r->conn == NULL) {
		rspamd_free(r);
		return NULL;
	}
	/* One limit for the whole exchange, however the octets trickle in. */
	conn_set_timer(r->conn, req->timeout * 1000u);
	return r;
}

void rspamd_cancel(struct rspamd **rp)
{
	struct rspamd *r = *rp;
	if (r == NULL)
		return;
	*rp = NULL;
	r->cb = NULL;
	if (!r->done) {
		r->done = true;
		conn_close(r->conn);
	}
}
