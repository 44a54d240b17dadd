/* TLS-RPT report POST (see tlsrpt_post.h): the address of the URI's host, a TLS
 * connection that must verify (PKIX, the host name), one HTTP/1.0 POST (the answer ends
 * with the connection), and the status line of the answer. */
#include "smtp/tlsrpt_post.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/xmalloc.h"
#include "net/conn.h"
#include "net/dns.h"
#include "net/net_event.h"
#include "smtp/tlsrpt.h"
#include "core/banned.h"

#define TLSRPT_POST_RESPONSE_MAX 16384 /* only the status line matters */

struct tlsrpt_post {
	struct net_loop *loop;
	struct tls_ctx *tls;
	tlsrpt_post_fn *fn;
	void *ctx;
	char host[TLSRPT_HOST_MAX];
	char path[TLSRPT_URI_MAX];
	int port;
	unsigned timeout;
	unsigned char *body;
	size_t len;
	struct dns_lookup *lookup;
	struct conn *conn;
	struct net_event *later; /* a failure found inside tlsrpt_post_start() */
	struct buf resp;
	const char *error;
	char error_text[700];
	bool cancelled;
};

static void post_free(struct tlsrpt_post *p)
{
	dns_lookup_cancel(&p->lookup);
	net_event_free(&p->later);
	buf_free(&p->resp);
	free(p->body);
	free(p);
}

/* The status of "HTTP/1.x NNN ...": 2xx is success (RFC 8460 §5.4). */
static void post_finish(struct tlsrpt_post *p)
{
	const char *r = buf_cstr(&p->resp);
	int ok = p->error == NULL && strncmp(r, "HTTP/1.", 7) == 0 && r[8] == ' ' && r[9] == '2' &&
	         r[10] >= '0' && r[10] <= '9' && r[11] >= '0' && r[11] <= '9';
	if (!ok && p->error == NULL) {
		snprintf(p->error_text, sizeof(p->error_text), "%.300s: %.*s", p->host,
		         (int)strcspn(r, "\r\n") > 100 ? 100 : (int)strcspn(r, "\r\n"),
		         r[0] != '\0' ? r : "no response");
		p->error = p->error_text;
	}
	p->fn(p->ctx, ok ? 0 : -1, p->error);
	post_free(p);
}

static void post_fail(struct tlsrpt_post *p, const char *what)
{
	if (p->error != NULL)
		return;
	snprintf(p->error_text, sizeof(p->error_text), "%.300s: %.300s", p->host, what);
	p->error = p->error_text;
}

static void post_on_connected(struct conn *conn, void *ctx)
{
	struct tlsrpt_post *p = ctx;
	conn_set_timeout(conn, p->timeout);
	struct conn_tls_client_params tp = {.host = p->host, .verify = CONN_TLS_VERIFY_PKIX};
	if (conn_start_tls_client(conn, p->tls, &tp) < 0) {
		post_fail(p, "cannot start TLS");
		conn_close(conn);
	}
}

static void post_on_tls_ready(struct conn *conn, void *ctx)
{
	struct tlsrpt_post *p = ctx;
	struct buf req;
	buf_init(&req, 4096);
	char port[16] = "";
	if (p->port != 443)
		snprintf(port, sizeof(port), ":%d", p->port);
	if (buf_printf(&req,
	               "POST %s HTTP/1.0\r\nHost: %s%s\r\nUser-Agent: Posthorn\r\n"
	               "Content-Type: application/tlsrpt+gzip\r\nContent-Length: %zu\r\n"
	               "Connection: close\r\n\r\n",
	               p->path, p->host, port, p->len) < 0) {
		buf_free(&req);
		post_fail(p, "request too long");
		conn_close(conn);
		return;
	}
	conn_write(conn, req.data, req.len);
	conn_write(conn, p->body, p->len);
	buf_free(&req);
}

static void post_on_input(struct conn *conn, void *ctx)
{
	struct tlsrpt_post *p = ctx;
	unsigned char chunk[4096];
	size_t n;
	while ((n = conn_read_bytes(conn, chunk, sizeof(chunk))) > 0) {
		size_t room = p->resp.max - p->resp.len;
		if (buf_append(&p->resp, chunk, n < room ? n : room) < 0 || n >= room) {
			conn_close(conn); /* enough to read the status */
			return;
		}
	}
}

static void post_on_timeout(struct conn *conn, void *ctx)
{
	post_fail(ctx, "timeout");
	conn_close(conn);
}

static void post_on_shutdown(struct conn *conn, void *ctx)
{
	post_fail(ctx, "shutting down");
	conn_close(conn);
}

static void post_on_closed(struct conn *conn, void *ctx)
{
	struct tlsrpt_post *p = ctx;
	p->conn = NULL;
	if (p->cancelled) {
		post_free(p);
		return;
	}
	if (p->resp.len == 0)
		post_fail(p, conn_error(conn)[0] != '\0' ? conn_error(conn) : "no response");
	post_finish(p);
}

static const struct conn_callbacks post_callbacks = {
    .on_input = post_on_input,
    .on_tls_ready = post_on_tls_ready,
    .on_timeout = post_on_timeout,
    .on_shutdown = post_on_shutdown,
    .on_closed = post_on_closed,
    .on_connected = post_on_connected,
};

static void post_addr_done(const struct dns_result *res, void *ctx)
{
	struct tlsrpt_post *p = ctx;
	p->lookup = NULL;
	if (res->status != DNS_STATUS_OK || res->count == 0) {
		post_fail(p, "no address");
		post_finish(p);
		return;
	}
	const char *error;
	struct conn_connect_params cp = {
	    .ip = res->records[0].u.addr.text, .port = p->port, .timeout = p->timeout};
	p->conn = conn_connect(p->loop, &cp, &post_callbacks, p, &error);
	if (p->conn == NULL) {
		post_fail(p, error);
		post_finish(p);
	}
}

static void post_later(void *ctx)
{
	post_finish(ctx);
}

struct tlsrpt_post *tlsrpt_post_start(struct net_loop *loop, struct dns_resolver *dns,
                                      struct tls_ctx *tls, const char *uri, const void *body,
                                      size_t len, unsigned timeout, tlsrpt_post_fn *fn, void *ctx)
{
	struct tlsrpt_post *p = xcalloc(1, sizeof(*p));
	p->loop = loop;
	p->tls = tls;
	p->fn = fn;
	p->ctx = ctx;
	p->timeout = timeout;
	p->body = xmalloc(len > 0 ? len : 1);
	memcpy(p->body, body, len);
	p->len = len;
	buf_init(&p->resp, TLSRPT_POST_RESPONSE_MAX);
	const char *error = "not an https: URI";
	if (tlsrpt_https_parse(uri, p->host, &p->port, p->path, sizeof(p->path)) == 0)
		p->lookup = dns_lookup(dns, p->host, DNS_TYPE_A, post_addr_done, p, &error);
	if (p->lookup == NULL) {
		snprintf(p->error_text, sizeof(p->error_text), "%.300s: %s", uri, error);
		p->error = p->error_text;
		p->later = net_event_new(loop, post_later, p);
		net_event_schedule(p->later, 0);
	}
	return p;
}

void tlsrpt_post_cancel(struct tlsrpt_post **pp)
{
	struct tlsrpt_post *p = *pp;
	if (p == NULL)
		return;
	*pp = NULL;
	if (p->conn != NULL) {
		/* Its on_closed frees us. */
		p->cancelled = true;
		conn_close(p->conn);
		return;
	}
	post_free(p);
}
