/* Unit tests for net/session, the lifecycle shared by SMTP, POP3 and IMAP, driven without
 * sockets: the conn verbs are a fake that counts holds, pauses and wakes. The rules: an
 * operation in flight keeps the session alive after on_closed and its wake frees it; a wake
 * that is no operation's end does nothing to it; shutdown during an operation waits for its
 * answer; a login ends the pre-login deadline and counts the session per user+IP until it is
 * freed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/userip.h"
#include "net/session.h"
#include "core/banned.h"

/* ---- a fake conn ---- */

struct fake_conn {
	int holds, pauses, wakes, deadline_cleared, login_restarted;
	bool closed;
};

static struct fake_conn *fake(const struct conn *c)
{
	return (struct fake_conn *)(uintptr_t)c;
}
static void fake_pause(struct conn *c)
{
	fake(c)->pauses++;
}
static void fake_hold(struct conn *c)
{
	fake(c)->holds++;
}
static void fake_unhold(struct conn *c)
{
	assert_true(fake(c)->holds > 0);
	fake(c)->holds--;
}
static void fake_wake(struct conn *c)
{
	fake(c)->wakes++;
}
static bool fake_is_closed(const struct conn *c)
{
	return fake(c)->closed;
}
static void fake_clear_deadline(struct conn *c)
{
	fake(c)->deadline_cleared++;
}
static void fake_restart_login(struct conn *c)
{
	fake(c)->login_restarted++;
}
static const char *fake_ip(const struct conn *c)
{
	(void)c;
	return "192.0.2.9";
}
static const char *fake_id(const struct conn *c)
{
	(void)c;
	return "testsession1";
}

static const struct session_conn_ops fake_ops = {
    .pause = fake_pause,
    .hold = fake_hold,
    .unhold = fake_unhold,
    .wake = fake_wake,
    .is_closed = fake_is_closed,
    .clear_deadline = fake_clear_deadline,
    .restart_login = fake_restart_login,
    .remote_ip = fake_ip,
    .id = fake_id,
};

/* ---- a fake protocol session: records what the lifecycle asked of it ---- */

struct proto {
	struct session life;
	struct fake_conn conn;
	char trace[256]; /* "done1 abandon1 wake bye free" */
	int chain_kind;  /* async_done starts this operation next (0 none) */
	bool *freed;
};

static void trace(struct proto *p, const char *what)
{
	size_t n = strlen(p->trace);
	snprintf(p->trace + n, sizeof(p->trace) - n, "%s%s", n > 0 ? " " : "", what);
}

static void p_async_done(void *ctx, int kind)
{
	struct proto *p = ctx;
	char t[16];
	snprintf(t, sizeof(t), "done%d", kind);
	trace(p, t);
	if (p->chain_kind != 0) {
		int k = p->chain_kind;
		p->chain_kind = 0;
		session_async_start(&p->life, k);
	}
}
static void p_async_abandoned(void *ctx, int kind)
{
	char t[16];
	snprintf(t, sizeof(t), "abandon%d", kind);
	trace(ctx, t);
}
static void p_wake(void *ctx)
{
	trace(ctx, "wake");
}
static void p_goodbye(void *ctx)
{
	trace(ctx, "bye");
}
static void p_free(void *ctx)
{
	struct proto *p = ctx;
	*p->freed = true;
	/* the struct session dies here: poison it, so a later use shows under ASan/asserts */
	memset(&p->life, 0xa5, sizeof(p->life));
}

static const struct session_hooks hooks = {
    .async_done = p_async_done,
    .async_abandoned = p_async_abandoned,
    .wake = p_wake,
    .goodbye = p_goodbye,
    .free = p_free,
};

static struct proto *proto_new(bool *freed)
{
	struct proto *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	*freed = false;
	p->freed = freed;
	session_init(&p->life, (struct conn *)&p->conn, "test", &hooks, p);
	p->life.io = &fake_ops;
	return p;
}

/* What conn.c does around on_closed: the conn is dead first, then the callback runs. */
static void proto_closed(struct proto *p)
{
	p->conn.closed = true;
	session_on_closed(&p->life);
}

/* ---- the rules ---- */

static void test_close_without_operation_frees(void **state)
{
	(void)state;
	bool freed;
	struct proto *p = proto_new(&freed);
	proto_closed(p);
	assert_true(freed);
	assert_string_equal(p->trace, "");
	assert_int_equal(p->conn.holds, 0);
	free(p);
}

static void test_operation_pauses_holds_and_answers(void **state)
{
	(void)state;
	bool freed;
	struct proto *p = proto_new(&freed);
	session_async_start(&p->life, 2);
	assert_int_equal(session_async(&p->life), 2);
	assert_int_equal(p->conn.pauses, 1);
	assert_int_equal(p->conn.holds, 1);
	session_async_finished(&p->life); /* from the writer thread, in real life */
	assert_int_equal(p->conn.wakes, 1);
	session_on_wake(&p->life);
	assert_string_equal(p->trace, "done2 wake");
	assert_int_equal(session_async(&p->life), 0);
	assert_int_equal(p->conn.holds, 0);
	assert_false(freed);
	proto_closed(p);
	assert_true(freed);
	free(p);
}

/* The operation's thread may finish before the loop gets to session_async_start(): the
 * protocols queue a password check first and start the operation when the driver says
 * PENDING, and a cache hit on the worker is over in microseconds. That finish must still end
 * the operation (it was lost once, and the session waited for ever). */
static void test_finish_before_start_is_kept(void **state)
{
	(void)state;
	bool freed;
	struct proto *p = proto_new(&freed);
	session_async_finished(&p->life); /* the worker, before the loop starts the operation */
	session_async_start(&p->life, 1);
	assert_int_equal(p->conn.holds, 1);
	session_on_wake(&p->life); /* the wake the worker sent */
	assert_string_equal(p->trace, "done1 wake");
	assert_int_equal(session_async(&p->life), 0);
	assert_int_equal(p->conn.holds, 0);
	/* and shutdown now finds nothing in flight */
	session_on_shutdown(&p->life);
	assert_string_equal(p->trace, "done1 wake bye");
	proto_closed(p);
	assert_true(freed);
	free(p);
}

/* The rule every protocol had its own copy of: on_closed during an operation leaves the
 * session alive (the store or auth worker still writes into it), and the wake frees it. */
static void test_close_during_operation_defers_free_to_the_wake(void **state)
{
	(void)state;
	bool freed;
	struct proto *p = proto_new(&freed);
	session_async_start(&p->life, 1);
	proto_closed(p);
	assert_false(freed);
	assert_int_equal(p->conn.holds, 1); /* the conn structure lives on too */
	session_async_finished(&p->life);
	session_on_wake(&p->life);
	assert_true(freed);
	assert_string_equal(p->trace, "abandon1"); /* not done: nobody to answer */
	assert_int_equal(p->conn.holds, 0);
	free(p);
}

/* A wake that is no operation's end (IMAP's change bus) must neither answer the operation
 * nor release its hold, also after the connection closed. */
static void test_foreign_wake_leaves_the_operation_alone(void **state)
{
	(void)state;
	bool freed;
	struct proto *p = proto_new(&freed);
	session_async_start(&p->life, 1);
	session_on_wake(&p->life); /* change bus */
	assert_string_equal(p->trace, "wake");
	assert_int_equal(session_async(&p->life), 1);
	assert_int_equal(p->conn.holds, 1);
	proto_closed(p);
	session_on_wake(&p->life); /* a change-bus wake queued before the close */
	assert_false(freed);
	assert_int_equal(p->conn.holds, 1);
	session_async_finished(&p->life);
	session_on_wake(&p->life);
	assert_true(freed);
	assert_string_equal(p->trace, "wake abandon1");
	assert_int_equal(p->conn.holds, 0);
	free(p);
}

static void test_shutdown_without_operation_says_goodbye(void **state)
{
	(void)state;
	bool freed;
	struct proto *p = proto_new(&freed);
	session_on_shutdown(&p->life);
	assert_true(session_shutting_down(&p->life));
	assert_string_equal(p->trace, "bye");
	proto_closed(p);
	assert_true(freed);
	free(p);
}

/* Shutdown during an operation (a QUIT's deletions, an APPEND's commit, DATA's delivery):
 * no goodbye yet; the answer comes first, then the goodbye, and no plain wake. */
static void test_shutdown_waits_for_the_operation(void **state)
{
	(void)state;
	bool freed;
	struct proto *p = proto_new(&freed);
	session_async_start(&p->life, 3);
	session_on_shutdown(&p->life);
	assert_string_equal(p->trace, "");
	session_async_finished(&p->life);
	session_on_wake(&p->life);
	assert_string_equal(p->trace, "done3 bye");
	assert_int_equal(p->conn.holds, 0);
	proto_closed(p);
	assert_true(freed);
	free(p);
}

/* An answer that starts the next operation (IMAP FETCH after \Seen): the goodbye waits for
 * that one too. */
static void test_shutdown_waits_for_a_chained_operation(void **state)
{
	(void)state;
	bool freed;
	struct proto *p = proto_new(&freed);
	p->chain_kind = 4;
	session_async_start(&p->life, 3);
	session_on_shutdown(&p->life);
	session_async_finished(&p->life);
	session_on_wake(&p->life);
	assert_string_equal(p->trace, "done3 wake"); /* no goodbye while op 4 runs */
	assert_int_equal(session_async(&p->life), 4);
	assert_int_equal(p->conn.holds, 1);
	session_async_finished(&p->life);
	session_on_wake(&p->life);
	assert_string_equal(p->trace, "done3 wake done4 bye");
	assert_int_equal(p->conn.holds, 0);
	proto_closed(p);
	assert_true(freed);
	free(p);
}

/* Shutdown, then the client goes away before the operation ends: freed by the wake, no
 * goodbye to a closed connection. */
static void test_shutdown_then_close_during_operation(void **state)
{
	(void)state;
	bool freed;
	struct proto *p = proto_new(&freed);
	session_async_start(&p->life, 1);
	session_on_shutdown(&p->life);
	proto_closed(p);
	assert_false(freed);
	session_async_finished(&p->life);
	session_on_wake(&p->life);
	assert_true(freed);
	assert_string_equal(p->trace, "abandon1");
	free(p);
}

/* The completing thread really is another thread: the flag it sets is seen by the loop. */
static void *finisher(void *arg)
{
	session_async_finished(arg);
	return NULL;
}

static void test_finished_from_another_thread(void **state)
{
	(void)state;
	bool freed;
	struct proto *p = proto_new(&freed);
	session_async_start(&p->life, 1);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, finisher, &p->life), 0);
	pthread_join(t, NULL);
	assert_int_equal(p->conn.wakes, 1);
	session_on_wake(&p->life);
	assert_string_equal(p->trace, "done1 wake");
	proto_closed(p);
	assert_true(freed);
	free(p);
}

/* Login: the deadline ends once; the per-user+IP count is taken once and released when the
 * session is freed (also by an operation's late wake); over the cap nothing changes. */
static void test_login_counts_until_freed(void **state)
{
	(void)state;
	struct userip *reg = userip_new();
	bool freed1, freed2, freed3;
	struct proto *a = proto_new(&freed1), *b = proto_new(&freed2), *c = proto_new(&freed3);
	assert_int_equal(session_admit_login(&a->life, reg, 7, 2), 1);
	assert_int_equal(session_admit_login(&a->life, reg, 7, 2), 1); /* again: not counted */
	assert_int_equal(a->conn.deadline_cleared, 1);
	assert_true(a->life.logged_in);
	assert_int_equal(userip_count(reg, 7, "192.0.2.9"), 1);
	assert_int_equal(session_admit_login(&b->life, reg, 7, 2), 1);
	assert_int_equal(session_admit_login(&c->life, reg, 7, 2), 0); /* the third */
	assert_int_equal(c->conn.deadline_cleared, 0);
	assert_false(c->life.logged_in);
	assert_int_equal(userip_count(reg, 7, "192.0.2.9"), 2);

	proto_closed(a);
	assert_true(freed1);
	assert_int_equal(userip_count(reg, 7, "192.0.2.9"), 1);
	session_async_start(&b->life, 1);
	proto_closed(b);
	assert_int_equal(userip_count(reg, 7, "192.0.2.9"), 1); /* still alive */
	session_async_finished(&b->life);
	session_on_wake(&b->life);
	assert_true(freed2);
	assert_int_equal(userip_count(reg, 7, "192.0.2.9"), 0);
	proto_closed(c);
	assert_true(freed3);
	assert_int_equal(userip_count(reg, 7, "192.0.2.9"), 0);
	free(a);
	free(b);
	free(c);
	userip_free(&reg);
}

/* session_logged_out() (IMAP UNAUTHENTICATE): the count is released at once, a new login
 * (also of another account) is counted anew, and the free releases nothing twice; the
 * connection is not logged in again (the total cap may drop it, the pre-login deadline runs
 * again: conn_restart_login, once per logout), and the next login ends that again. */
static void test_logged_out_releases_the_count(void **state)
{
	(void)state;
	struct userip *reg = userip_new();
	bool freed;
	struct proto *a = proto_new(&freed);
	assert_int_equal(session_admit_login(&a->life, reg, 7, 1), 1);
	assert_int_equal(userip_count(reg, 7, "192.0.2.9"), 1);
	assert_int_equal(a->conn.deadline_cleared, 1);
	session_logged_out(&a->life);
	session_logged_out(&a->life); /* twice: nothing more */
	assert_int_equal(userip_count(reg, 7, "192.0.2.9"), 0);
	assert_false(a->life.logged_in);
	assert_int_equal(a->conn.login_restarted, 1);
	assert_int_equal(session_admit_login(&a->life, reg, 8, 1), 1);
	assert_true(a->life.logged_in);
	assert_int_equal(a->conn.deadline_cleared, 2);
	assert_int_equal(userip_count(reg, 7, "192.0.2.9"), 0);
	assert_int_equal(userip_count(reg, 8, "192.0.2.9"), 1);
	proto_closed(a);
	assert_true(freed);
	assert_int_equal(userip_count(reg, 8, "192.0.2.9"), 0);
	free(a);
	userip_free(&reg);
}

static void test_logged_in_without_registry(void **state)
{
	(void)state;
	bool freed;
	struct proto *p = proto_new(&freed);
	session_logged_in(&p->life);
	session_logged_in(&p->life);
	assert_int_equal(p->conn.deadline_cleared, 1);
	proto_closed(p);
	assert_true(freed);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_close_without_operation_frees),
	    cmocka_unit_test(test_operation_pauses_holds_and_answers),
	    cmocka_unit_test(test_close_during_operation_defers_free_to_the_wake),
	    cmocka_unit_test(test_finish_before_start_is_kept),
	    cmocka_unit_test(test_foreign_wake_leaves_the_operation_alone),
	    cmocka_unit_test(test_shutdown_without_operation_says_goodbye),
	    cmocka_unit_test(test_shutdown_waits_for_the_operation),
	    cmocka_unit_test(test_shutdown_waits_for_a_chained_operation),
	    cmocka_unit_test(test_shutdown_then_close_during_operation),
	    cmocka_unit_test(test_finished_from_another_thread),
	    cmocka_unit_test(test_login_counts_until_freed),
	    cmocka_unit_test(test_logged_out_releases_the_count),
	    cmocka_unit_test(test_logged_in_without_registry),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
