/* A milter client (Sendmail's mail filter protocol, version 6, the subset Postfix speaks):
 * one conversation per message, run at the end of DATA over a TCP or UNIX-domain connection on the
 * session's loop: option negotiation, connect, HELO, MAIL, RCPT, DATA, the header fields,
 * end of headers, the body, end of message. The filter may accept, reject, tempfail or
 * discard at any step (a custom reply with SMFIR_REPLYCODE), and at end of message add,
 * insert or change header fields and quarantine. A filter that cannot be reached, times out
 * or breaks the protocol gets the default action (tempfail unless configured, as Postfix's
 * milter_default_action). Steps the filter declines in negotiation are not sent, and no
 * reply is awaited where it asked for none. Codec: smtp/milter_proto. */
#ifndef POSTHORN_SMTP_MILTER_H
#define POSTHORN_SMTP_MILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp/milter_proto.h"

struct net_loop;
struct milter;

enum milter_action {
	MILTER_ACCEPT,
	MILTER_REJECT,
	MILTER_TEMPFAIL,
	MILTER_DISCARD,    /* accept and drop (the client is told 250) */
	MILTER_QUARANTINE, /* accept into the recipients' Junk folder */
};

/* What the filter is told. Strings are copied by milter_start(); msg is kept by pointer and
 * must stay valid until the callback or milter_cancel(). */
struct milter_request {
	const char *address;         /* "inet:IP:PORT" or "IP:PORT" ("[IPv6]:PORT"), or a
	                              * UNIX-domain socket "unix:/PATH" ("local:/PATH") */
	unsigned timeout;            /* seconds for the connect and for each reply */
	enum milter_action fallback; /* when the filter fails */
	const char *client_ip;       /* the SMTP client */
	const char *client_name;     /* its confirmed host name, or NULL (sent as "[ip]") */
	const char *client_ptr;      /* its PTR name, confirmed or not, or "unknown" */
	const char *client_resolve;  /* "OK", "FAIL", "FORGED", "TEMP" (smtp_rdns.h) */
	const char *helo;
	const char *mail_from; /* without <> ("" for the null sender) */
	const char *const *rcpts;
	size_t rcpt_count;
	const char *queue_id;     /* macro i */
	const char *our_name;     /* macro j */
	const unsigned char *msg; /* the message as the client sent it: header fields, body */
	size_t len;
};

struct milter_result {
	enum milter_action action;
	char reply[512];           /* the filter's SMTP reply for reject/tempfail, or "" */
	struct milter_edit *edits; /* header changes to make (accept and quarantine) */
	size_t edit_count;
	char quarantine[256]; /* the reason given with quarantine */
	const char *failure;  /* why the fallback was taken (static text), or NULL */
};

/* Called once, on the loop, never from inside milter_start(). result is valid during the
 * call only. The handle is gone once it runs. */
typedef void milter_done_fn(const struct milter_result *result, void *ctx);

/* Start a conversation on loop (call on its thread). NULL with *error_r (static) when the
 * address is not usable; then the callback never runs. */
struct milter *milter_start(struct net_loop *loop, const struct milter_request *req,
                            milter_done_fn *cb, void *ctx, const char **error_r)
    __attribute__((warn_unused_result));
/* The requester went away: the callback never runs. Sets *m to NULL; accepts NULL. Not after
 * the callback ran. */
void milter_cancel(struct milter **m);

/* "accept", "reject", ... for logs. */
const char *milter_action_name(enum milter_action action);

#endif
