/* MTA-STS policy fetch (see mta_sts_fetch.h): the address of mta-sts.DOMAIN, a TLS
 * connection that must verify (PKIX, the host name), one HTTP/1.0 GET (so the answer is
 * never chunked and ends with the connection), the response read up to its limit. */
#include "smtp/mta_sts_fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/xmalloc.h"
#include "net/conn.h"
#include "net/dns.h"
#include "net/net_event.h"
#include "core/banned.h"

struct mta_sts_fetch {
	struct net_loop *loop;
	struct tls_ctx *tls;
	mta_sts_fetch_fn *fn;
	void *ctx;
	char host[300];
	int port;
	unsigned timeout;
	struct dns_lookup *lookup;
	struct conn *conn;
	struct net_event *later; /* a failure found inside mta_sts_fetch_start() */
	struct buf resp;
	const char *error;
	char error_text[700];
	bool cancelled;
};

static void fetch_free(struct mta_sts_fetch *f)
{
	dns_lookup_cancel(&f->lookup);
	net_event_free(&f->later);
	buf_free(&f->resp);
	free(f);
}

/* Report and free (the connection, if any, is already gone). */
static void fetch_finish(struct mta_sts_fetch *f)
{
	struct mta_sts_policy policy;
	const unsigned char *body;
	size_t body_len;
	const char *error = f->error;
	int r = -1;
	if (error == NULL &&
	    mta_sts_parse_http((const unsigned char *)f->resp.data, f->resp.len, &body, &body_len,
	                       &error) == 0 &&
	    mta_sts_parse_policy((const char *)body, body_len, &policy, &error) == 0)
		r = 0;
	f->fn(f->ctx, r, r == 0 ? &policy : NULL, error);
	fetch_free(f);
}

/* The first failure is the one reported: "what" (and the host when with_host). */
static void fetch_fail(struct mta_sts_fetch *f, const char *what, bool with_host)
{
	if (f->error != NULL)
		return;
	snprintf(f->error_text, sizeof(f->error_text), "%.300s%s%.300s", with_host ? f->host : "",
	         with_host ? ": " : "", what);
	f->error = f->error_text;
}

static void fetch_on_connected(struct conn *conn, void *ctx)
{
	struct mta_sts_fetch *f = ctx;
	conn_set_timeout(conn, f->timeout);
	struct conn_tls_client_params p = {.host = f->host, .verify = CONN_TLS_VERIFY_PKIX};
	if (conn_start_tls_client(conn, f->tls, &p) < 0) {
		fetch_fail(f, "cannot start TLS", true);
		conn_close(conn);
	}
}

static void fetch_on_tls_ready(struct conn *conn, void *ctx)
{
	struct mta_sts_fetch *f = ctx;
	char req[512];
	int n = snprintf(req, sizeof(req),
	                 "GET /.well-known/mta-sts.txt HTTP/1.0\r\nHost: %s\r\n"
	                 "User-Agent: Posthorn\r\nConnection: close\r\n\r\n",
	                 f->host);
	conn_write(conn, req, (size_t)n);
}

static void fetch_on_input(struct conn *conn, void *ctx)
{
	struct mta_sts_fetch *f = ctx;
	unsigned char chunk[16384];
	size_t n;
	while ((n = conn_read_bytes(conn, chunk, sizeof(chunk))) > 0) {
		if (buf_append(&f->resp, chunk, n) < 0) {
			fetch_fail(f, "response larger than the limit", true);
			conn_close(conn);
			return;
		}
	}
}

static void fetch_on_timeout(struct conn *conn, void *ctx)
{
	struct mta_sts_fetch *f = ctx;
	fetch_fail(f, "timeout", true);
	conn_close(conn);
}

static void fetch_on_shutdown(struct conn *conn, void *ctx)
{
	struct mta_sts_fetch *f = ctx;
	fetch_fail(f, "shutting down", true);
	conn_close(conn);
}

static void fetch_on_closed(struct conn *conn, void *ctx)
{
	struct mta_sts_fetch *f = ctx;
	f->conn = NULL;
	if (f->cancelled) {
		fetch_free(f);
		return;
	}
	/* Before TLS was up, the close is a connect or handshake failure: say why. */
	if (f->resp.len == 0 && f->error == NULL)
		fetch_fail(f, conn_error(conn)[0] != '\0' ? conn_error(conn) : "no response", true);
	fetch_finish(f);
}

static const struct conn_callbacks fetch_callbacks = {
    .on_input = fetch_on_input,
    .on_tls_ready = fetch_on_tls_ready,
    .on_timeout = fetch_on_timeout,
    .on_shutdown = fetch_on_shutdown,
    .on_closed = fetch_on_closed,
    .on_connected = fetch_on_connected,
};

static void fetch_addr_done(const struct dns_result *res, void *ctx)
{
	struct mta_sts_fetch *f = ctx;
	f->lookup = NULL;
	if (res->status != DNS_STATUS_OK || res->count == 0) {
		fetch_fail(f, "no address", true);
		fetch_finish(f);
		return;
	}
	const char *error;
	struct conn_connect_params p = {
	    .ip = res->records[0].u.addr.text, .port = f->port, .timeout = f->timeout};
	f->conn = conn_connect(f->loop, &p, &fetch_callbacks, f, &error);
	if (f->conn == NULL) {
		fetch_fail(f, error, true);
		fetch_finish(f);
	}
}

static void fetch_later(void *ctx)
{
	fetch_finish(ctx);
}

struct mta_sts_fetch *mta_sts_fetch_start(struct net_loop *loop, struct dns_resolver *dns,
                                          struct tls_ctx *tls, const char *domain, int port,
                                          unsigned timeout, mta_sts_fetch_fn *fn, void *ctx)
{
	struct mta_sts_fetch *f = xcalloc(1, sizeof(*f));
	f->loop = loop;
	f->tls = tls;
	f->fn = fn;
	f->ctx = ctx;
	f->port = port;
	f->timeout = timeout;
	buf_init(&f->resp, MTA_STS_RESPONSE_MAX);
	snprintf(f->host, sizeof(f->host), "mta-sts.%.*s", 250, domain);
	const char *error;
	f->lookup = dns_lookup(dns, f->host, DNS_TYPE_A, fetch_addr_done, f, &error);
	if (f->lookup == NULL) {
		fetch_fail(f, error, true);
		f->later = net_event_new(loop, fetch_later, f);
		net_event_schedule(f->later, 0);
	}
	return f;
}

void mta_sts_fetch_cancel(struct mta_sts_fetch **fp)
{
	struct mta_sts_fetch *f = *fp;
	if (f == NULL)
		return;
	*fp = NULL;
	if (f->conn != NULL) {
		/* Its on_closed frees us. */
		f->cancelled = true;
		conn_close(f->conn);
		return;
	}
	fetch_free(f);
}
