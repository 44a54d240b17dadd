/* The lifecycle of a protocol session over net/conn, the same for SMTP, POP3 and IMAP: an
 * asynchronous operation on another thread (store writer, password workers) that keeps the
 * session alive after its connection is gone, the wake that ends it (and frees the session
 * when the connection closed meanwhile), a server shutdown that waits for it, the login that
 * ends the pre-login deadline and the per-user+IP count released when the session is freed.
 * The protocol keeps its states and its wire format; these rules live here once.
 *
 * Use: embed a struct session in the protocol session, session_init() at accept, and let the
 * conn callbacks on_wake, on_shutdown and on_closed call session_on_wake(),
 * session_on_shutdown() and session_on_closed() (after the protocol's own logging). Every
 * callback runs on the connection's loop thread; only session_async_finished() may be called
 * from another thread. */
#ifndef POSTHORN_NET_SESSION_H
#define POSTHORN_NET_SESSION_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/userip.h"
#include "net/conn.h"

/* What the protocol does at each step; ctx is the ctx given to session_init(). */
struct session_hooks {
	/* The asynchronous operation kind (as given to session_async_start) finished and the
	 * connection is still open: answer the client. Input is still paused: resume it, or
	 * start another operation. */
	void (*async_done)(void *ctx, int kind);
	/* It finished after the connection closed: release what the operation owns (the store
	 * is done with it). Optional; the session is freed right after. */
	void (*async_abandoned)(void *ctx, int kind);
	/* A wake while the connection is open, no shutdown goodbye is due: after async_done,
	 * or a wake that was no operation's end (IMAP's change bus). Optional. */
	void (*wake)(void *ctx);
	/* The server is stopping and no operation is in flight: say goodbye and close when it
	 * is safe. May come again after a later wake (the protocol's close is idempotent). */
	void (*goodbye)(void *ctx);
	/* Free the session (and with it the struct session). The conn is valid during the
	 * call; its per-user+IP count was already released. */
	void (*free)(void *ctx);
};

/* The conn verbs the lifecycle uses; session_init() sets the real ones. A unit test may
 * point s->io at others to drive the rules without sockets. */
struct session_conn_ops {
	void (*pause)(struct conn *conn);
	void (*hold)(struct conn *conn);
	void (*unhold)(struct conn *conn);
	void (*wake)(struct conn *conn);
	bool (*is_closed)(const struct conn *conn);
	void (*clear_deadline)(struct conn *conn);
	void (*restart_login)(struct conn *conn);
	const char *(*remote_ip)(const struct conn *conn);
	const char *(*id)(const struct conn *conn);
};

/* Owned by the protocol session (embedded); fields are read-only outside session.c. */
struct session {
	struct conn *conn;
	const struct session_conn_ops *io;
	const struct session_hooks *hooks;
	void *ctx;
	const char *proto; /* "smtp", "pop3", "imap" (static): for log lines */
	int async;         /* the operation in flight (the protocol's kind); 0 none */
	/* Set by session_async_finished() together with its wake, under finish_lock: the
	 * loop that sees it set knows the other thread is done with the session and conn. */
	pthread_mutex_t finish_lock;
	bool async_finished;
	bool shutdown;         /* the server is stopping */
	bool logged_in;        /* session_logged_in() ran: the pre-login deadline is off */
	struct userip *userip; /* where this session is counted; NULL when it is not */
	uint64_t userip_account;
};

void session_init(struct session *ss, struct conn *conn, const char *proto,
                  const struct session_hooks *hooks, void *ctx);

/* Start an asynchronous operation kind (> 0, the protocol's own numbering) that ends with
 * session_async_finished(): input pauses and the conn is held, so on_closed may come first
 * and the session then lives until the operation is over. One at a time. The operation may
 * be handed to its thread before or after this call, on the same loop turn: a
 * session_async_finished() that comes first is kept for the next session_on_wake(). */
void session_async_start(struct session *ss, int kind);
/* Any thread, once per operation, as the last thing the completing thread does with the
 * session: on_wake follows on the loop thread (which may free the session as soon as this
 * returns). */
void session_async_finished(struct session *ss);
/* The kind of the operation in flight; 0 when none. */
int session_async(const struct session *ss);
bool session_shutting_down(const struct session *ss);

/* The conn callbacks' part. After on_wake and on_closed the protocol must not touch the
 * session any more: it may have been freed. */
void session_on_wake(struct session *ss);
void session_on_shutdown(struct session *ss);
void session_on_closed(struct session *ss);

/* The client is in (a login succeeded; port 25: its first transaction): the pre-login
 * deadline ends. Idempotent. */
void session_logged_in(struct session *ss);
/* A login to account succeeded: count the session in reg against max sessions of one
 * account from one address (limit_sessions_per_user_ip; the count is released when the
 * session is freed) and call session_logged_in(). Returns 1 admitted, 0 over the cap
 * (logged; nothing changed, the client may retry). A session already counted is not
 * counted again. */
int session_admit_login(struct session *ss, struct userip *reg, uint64_t account, unsigned max)
    __attribute__((warn_unused_result));
/* The client logged out without leaving (IMAP UNAUTHENTICATE, RFC 8437): the session is no
 * longer counted against its account (a later login, also as another user, is counted
 * anew), and the connection is one that has not logged in again (conn_restart_login): the
 * total cap may drop it for a newcomer, and the pre-login deadline runs again from now. A
 * later login (session_admit_login) ends both as the first one did. */
void session_logged_out(struct session *ss);

#endif
