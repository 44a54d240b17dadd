/* COMPRESS=DEFLATE on a connection (conn_start_compress in conn.h): the protocol reads the
 * inflated input from an evbuffer of our own, filled lazily from the raw input (socket or
 * TLS) as the protocol reads, never more than it asks for plus one step; its output is
 * deflated straight into the raw output, and a sync flush runs once per loop turn after
 * output was added, so the peer never waits on octets held in zlib. The raw output is
 * what conn_output_length() counts: flow control sees the compressed octets queued. */
#include "net/net_private.h"

#include <stdio.h>
#include <stdlib.h>

#include <event2/buffer.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "net/compress.h"
#include "core/banned.h"

/* Octets inflated or deflated per zlib call. */
#define CONN_COMPRESS_STEP ((size_t)16 * 1024)

struct conn_compress {
	struct compress *z;
	struct evbuffer *in; /* inflated input the protocol reads */
	struct event *flush_ev;
	bool dirty;  /* output was deflated without a flush since */
	bool broken; /* the peer's stream is corrupt: the connection is closing */
};

static void conn_compress_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	if (c->dead || c->z == NULL)
		return;
	conn_compress_flush(c);
	/* The raw output may already be empty: let on_drained / on_writable see it. */
	if (c->writable_wanted || c->drained_pending)
		event_active(c->writable_ev, EV_WRITE, 0);
}

int conn_start_compress(struct conn *c)
{
	if (c->z != NULL || c->bev == NULL || c->dead || c->closing || c->tls_pending)
		return -1;
	struct conn_compress *cz = xcalloc(1, sizeof(*cz));
	cz->z = compress_new();
	cz->in = evbuffer_new();
	cz->flush_ev = event_new(net_loop_base(c->loop), -1, 0, conn_compress_flush_cb, c);
	if (cz->in == NULL || cz->flush_ev == NULL)
		log_panic("out of memory");
	c->z = cz;
	/* Input already buffered after the command line is the peer's first compressed
	 * octets (RFC 4978 §3): it is inflated at the next read. */
	return 0;
}

bool conn_is_compressed(const struct conn *c)
{
	return c->z != NULL;
}

struct evbuffer *conn_compress_input(struct conn *c)
{
	return c->z->in;
}

/* The peer's stream is broken: log once, close (our queued output still goes out). */
static void conn_compress_broken(struct conn *c)
{
	if (c->z->broken)
		return;
	c->z->broken = true;
	log_info("session=%s event=disconnect reason=bad-compressed-input ip=%s", c->id, c->ip);
	if (c->error[0] == '\0')
		snprintf(c->error, sizeof(c->error), "corrupt DEFLATE stream");
	conn_close(c);
}

int conn_compress_fill(struct conn *c, size_t target)
{
	struct conn_compress *cz = c->z;
	if (cz->broken || c->bev == NULL)
		return cz->broken ? -1 : 0;
	struct evbuffer *raw = bufferevent_get_input(c->bev);
	int added = 0;
	while (evbuffer_get_length(cz->in) < target && evbuffer_get_length(raw) > 0) {
		struct evbuffer_iovec src, dst;
		if (evbuffer_peek(raw, -1, NULL, &src, 1) < 1 ||
		    evbuffer_reserve_space(cz->in, CONN_COMPRESS_STEP, &dst, 1) < 1)
			break;
		size_t used, made;
		int r = compress_inflate(cz->z, src.iov_base, src.iov_len, &used, dst.iov_base,
		                         dst.iov_len, &made);
		dst.iov_len = made;
		evbuffer_commit_space(cz->in, &dst, 1);
		evbuffer_drain(raw, used);
		if (r < 0) {
			conn_compress_broken(c);
			return -1;
		}
		if (r == 0)
			break;
		if (made > 0)
			added = 1;
	}
	return added;
}

/* Deflate len octets (0 with flush: just flush) into the raw output. */
static void conn_compress_put(struct conn *c, const unsigned char *data, size_t len, bool flush)
{
	struct conn_compress *cz = c->z;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	for (;;) {
		struct evbuffer_iovec dst;
		if (evbuffer_reserve_space(out, CONN_COMPRESS_STEP, &dst, 1) < 1)
			log_panic("out of memory");
		size_t used, made;
		int r = compress_deflate(cz->z, data, len, &used, flush, dst.iov_base, dst.iov_len,
		                         &made);
		dst.iov_len = made;
		evbuffer_commit_space(out, &dst, 1);
		if (r < 0)
			log_panic("session=%s deflate failed", c->id);
		data += used;
		len -= used;
		if (r == 0)
			return;
	}
}

void conn_compress_write(struct conn *c, const void *data, size_t len)
{
	if (len == 0 || c->bev == NULL)
		return;
	conn_compress_put(c, data, len, false);
	if (!c->z->dirty) {
		c->z->dirty = true;
		event_active(c->z->flush_ev, EV_WRITE, 0);
	}
}

void conn_compress_flush(struct conn *c)
{
	if (c->z == NULL || !c->z->dirty || c->bev == NULL)
		return;
	c->z->dirty = false;
	conn_compress_put(c, NULL, 0, true);
}

bool conn_compress_pending(const struct conn *c)
{
	return c->z != NULL && c->z->dirty;
}

void conn_compress_free(struct conn *c)
{
	struct conn_compress *cz = c->z;
	if (cz == NULL)
		return;
	unsigned long long in_raw, in_plain, out_plain, out_raw;
	compress_totals(cz->z, &in_raw, &in_plain, &out_plain, &out_raw);
	log_debug("session=%s event=compress-end in_raw=%llu in=%llu out=%llu out_raw=%llu", c->id,
	          in_raw, in_plain, out_plain, out_raw);
	event_free(cz->flush_ev);
	evbuffer_free(cz->in);
	compress_free(&cz->z);
	free(cz);
	c->z = NULL;
}
