/* The session lifecycle shared by SMTP, POP3 and IMAP (see session.h): asynchronous
 * operations that outlive the connection, the wake that ends them, shutdown that waits for
 * them, and what a login ends (the pre-login deadline) or starts (the per-user+IP count). */
#include "net/session.h"

#include "core/log.h"
#include "core/banned.h"

static const struct session_conn_ops session_conn_real = {
    .pause = conn_pause,
    .hold = conn_hold,
    .unhold = conn_unhold,
    .wake = conn_wake,
    .is_closed = conn_is_closed,
    .clear_deadline = conn_clear_deadline,
    .restart_login = conn_restart_login,
    .remote_ip = conn_remote_ip,
    .id = conn_id,
};

void session_init(struct session *ss, struct conn *conn, const char *proto,
                  const struct session_hooks *hooks, void *ctx)
{
	ASSERT(hooks->async_done != NULL && hooks->goodbye != NULL && hooks->free != NULL);
	*ss = (struct session){
	    .conn = conn, .io = &session_conn_real, .hooks = hooks, .ctx = ctx, .proto = proto};
	pthread_mutex_init(&ss->finish_lock, NULL);
}

void session_async_start(struct session *ss, int kind)
{
	ASSERT(kind > 0 && ss->async == 0);
	ss->async = kind;
	/* async_finished is left alone: the operation may already be over. Callers hand the
	 * work to another thread before they get here (auth_login_password() queues the check,
	 * then returns PENDING), and a fast worker (a cache hit) sets the flag and wakes us in
	 * between; clearing it here lost that finish and left the session waiting for ever. The
	 * flag is false otherwise: only a taken finish clears it, and only a finish sets it. */
	ss->io->pause(ss->conn);
	ss->io->hold(ss->conn); /* released by the wake that ends the operation */
}

void session_async_finished(struct session *ss)
{
	/* The flag and the wake under one lock: a loop woken by something else (IMAP's change
	 * bus) that sees the flag cannot free the session and the conn before this thread's
	 * conn_wake() is over (it takes the lock to look). */
	pthread_mutex_lock(&ss->finish_lock);
	ss->async_finished = true;
	ss->io->wake(ss->conn);
	pthread_mutex_unlock(&ss->finish_lock);
}

/* On the loop: did the operation in flight end? (Clears the flag.) */
static bool session_take_finished(struct session *ss)
{
	pthread_mutex_lock(&ss->finish_lock);
	bool finished = ss->async_finished;
	ss->async_finished = false;
	pthread_mutex_unlock(&ss->finish_lock);
	return finished;
}

int session_async(const struct session *ss)
{
	return ss->async;
}

bool session_shutting_down(const struct session *ss)
{
	return ss->shutdown;
}

/* The session ends: its per-user+IP count first (the address comes from the conn, which
 * outlives it), then the protocol frees everything, this structure included. */
static void session_free(struct session *ss)
{
	if (ss->userip != NULL)
		userip_release(ss->userip, ss->userip_account, ss->io->remote_ip(ss->conn));
	pthread_mutex_destroy(&ss->finish_lock);
	ss->hooks->free(ss->ctx);
}

void session_on_wake(struct session *ss)
{
	struct conn *conn = ss->conn;
	const struct session_conn_ops *io = ss->io;
	/* A wake means an operation ended only when its flag says so: IMAP's change bus wakes
	 * the session too. */
	if (ss->async != 0 && session_take_finished(ss)) {
		int kind = ss->async;
		ss->async = 0;
		if (io->is_closed(conn)) {
			/* on_closed came first and left the session to us. */
			if (ss->hooks->async_abandoned != NULL)
				ss->hooks->async_abandoned(ss->ctx, kind);
			session_free(ss);
			io->unhold(conn);
			return;
		}
		ss->hooks->async_done(ss->ctx, kind);
		io->unhold(conn); /* on_wake holds the conn itself until it returns */
	}
	if (io->is_closed(conn))
		return;
	if (ss->shutdown && ss->async == 0) {
		/* Shutdown came during the operation: its answer is out, now the goodbye. */
		ss->hooks->goodbye(ss->ctx);
		return;
	}
	if (ss->hooks->wake != NULL)
		ss->hooks->wake(ss->ctx);
}

void session_on_shutdown(struct session *ss)
{
	ss->shutdown = true;
	if (ss->async == 0)
		ss->hooks->goodbye(ss->ctx);
	/* else: the wake that ends the operation says goodbye after its answer. */
}

void session_on_closed(struct session *ss)
{
	if (ss->async == 0)
		session_free(ss);
	/* else: the operation still uses the session; its wake frees it. */
}

void session_logged_in(struct session *ss)
{
	if (ss->logged_in)
		return;
	ss->logged_in = true;
	ss->io->clear_deadline(ss->conn);
}

void session_logged_out(struct session *ss)
{
	if (ss->userip != NULL)
		userip_release(ss->userip, ss->userip_account, ss->io->remote_ip(ss->conn));
	ss->userip = NULL;
	ss->userip_account = 0;
	if (ss->logged_in) {
		ss->logged_in = false;
		ss->io->restart_login(ss->conn);
	}
}

int session_admit_login(struct session *ss, struct userip *reg, uint64_t account, unsigned max)
{
	if (ss->userip == NULL) {
		if (userip_acquire(reg, account, ss->io->remote_ip(ss->conn), max) == 0) {
			log_info("session=%s proto=%s event=login result=refused "
			         "reason=sessions-per-user-ip limit=%u",
			         ss->io->id(ss->conn), ss->proto, max);
			return 0;
		}
		ss->userip = reg;
		ss->userip_account = account;
	}
	session_logged_in(ss);
	return 1;
}
