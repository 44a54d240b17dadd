/* An rspamd client: one POST /checkv2 per message to rspamd's normal worker, at the end of
 * DATA, over a TCP connection on the session's loop (non-blocking; the body is written
 * under output flow control). The whole exchange (connect, request, answer) has one time
 * limit; a reply is read up to RSPAMD_REPLY_MAX. rspamd that cannot be reached, times out
 * or answers something unusable gets no verdict: the caller takes its default action.
 * Codec: smtp/rspamd_proto. */
#ifndef POSTHORN_SMTP_RSPAMD_H
#define POSTHORN_SMTP_RSPAMD_H

#include <stddef.h>

#include "smtp/rspamd_proto.h"

struct net_loop;
struct rspamd;

/* What rspamd is told. Strings are copied by rspamd_start(); msg is kept by pointer and
 * must stay valid until the callback or rspamd_cancel(). */
struct rspamd_request {
	const char *ip; /* rspamd's numeric address */
	int port;
	unsigned timeout;                /* seconds for the whole exchange */
	struct rspamd_request_head head; /* body_len is filled in from len */
	const unsigned char *msg;        /* the message as it will be stored */
	size_t len;
};

/* Called once, on the loop, never from inside rspamd_start(): the verdict, or NULL with
 * failure (static text) saying why there is none. Both are valid during the call only; the
 * handle is gone once it runs. */
typedef void rspamd_done_fn(const struct rspamd_verdict *verdict, const char *failure, void *ctx);

/* Start a check on loop (call on its thread). NULL with *error_r (static) when the address
 * is not usable; then the callback never runs. */
struct rspamd *rspamd_start(struct net_loop *loop, const struct rspamd_request *req,
                            rspamd_done_fn *cb, void *ctx, const char **error_r)
    __attribute__((warn_unused_result));
/* The requester went away: the callback never runs. Sets *r to NULL; accepts NULL. Not after
 * the callback ran. */
void rspamd_cancel(struct rspamd **r);

#endif
