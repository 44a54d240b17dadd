/* Unit tests for core/fault (built with POSTHORN_TEST_BUILD, as the ASan build is): the syntax
 * of POSTHORN_FAULT, errors for unknown points and actions, the Nth-hit rule, the errno
 * values of enospc/eio/drop, a delay that returns 0, and abort/sigkill in a child. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fault.h"
#include "core/banned.h"

static void test_no_rules(void **state)
{
	(void)state;
	const char *error = NULL;
	assert_int_equal(fault_setup(NULL, &error), 0);
	assert_int_equal(fault_hit("smtp.data.mid"), 0);
	assert_int_equal(fault_setup("", &error), 0);
	assert_int_equal(FAULT_POINT("smtp.data.before_commit"), 0);
}

static void test_bad_specs(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "smtp.data.mid",                          /* no action */
	    "nosuch.point:eio",                       /* unknown point */
	    "smtp.data.mid:explode",                  /* unknown action */
	    "smtp.data.mid:eio:0",                    /* N from 1 */
	    "smtp.data.mid:eio:x",                    /* N a number */
	    "smtp.data.mid:eio:1:2",                  /* one N */
	    "smtp.data.mid:delay_",                   /* delay needs ms */
	    "smtp.data.mid:delay_9999999",            /* above the maximum */
	    "smtp.data.mid:eio,,imap.append.mid:eio", /* empty rule */
	    ":eio",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *error = NULL;
		assert_int_equal(fault_setup(bad[i], &error), -1);
		assert_non_null(error);
		/* A refused spec arms nothing. */
		assert_int_equal(fault_hit("smtp.data.mid"), 0);
	}
}

static void test_every_hit_and_errnos(void **state)
{
	(void)state;
	const char *error;
	assert_int_equal(
	    fault_setup("smtp.data.mid:enospc,imap.append.mid:eio,pg.txn.lost:drop", &error), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(fault_hit("smtp.data.mid"), ENOSPC);
		assert_int_equal(fault_hit("imap.append.mid"), EIO);
		assert_int_equal(fault_hit("pg.txn.lost"), ECONNRESET);
		assert_int_equal(fault_hit("smtp.data.after_250"), 0); /* not armed */
	}
	assert_int_equal(fault_setup(NULL, &error), 0);
}

static void test_nth_hit(void **state)
{
	(void)state;
	const char *error;
	assert_int_equal(fault_setup("store.blob.before_row:eio:3", &error), 0);
	assert_int_equal(fault_hit("store.blob.before_row"), 0);
	assert_int_equal(fault_hit("store.blob.before_row"), 0);
	assert_int_equal(fault_hit("store.blob.before_row"), EIO);
	assert_int_equal(fault_hit("store.blob.before_row"), 0);
	/* Setting up again starts counting again. */
	assert_int_equal(fault_setup("store.blob.before_row:eio:1", &error), 0);
	assert_int_equal(fault_hit("store.blob.before_row"), EIO);
	assert_int_equal(fault_hit("store.blob.before_row"), 0);
	assert_int_equal(fault_setup(NULL, &error), 0);
}

static void test_delay(void **state)
{
	(void)state;
	const char *error;
	assert_int_equal(fault_setup("smtp.data.after_commit:delay_1", &error), 0);
	assert_int_equal(fault_hit("smtp.data.after_commit"), 0);
	assert_int_equal(fault_setup(NULL, &error), 0);
}

static void test_points_known(void **state)
{
	(void)state;
	static const char *const points[] = {
	    "smtp.data.mid",
	    "smtp.data.before_commit",
	    "smtp.data.after_commit",
	    "smtp.data.after_250",
	    "queue.after_remote_250",
	    "imap.append.mid",
	    "store.expunge.mid",
	    "store.move.between",
	    "store.blob.before_row",
	    "store.wal.checkpoint",
	    "pg.txn.lost",
	    "pg.commit.lost",
	    "pg.listen.lost",
	};
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++)
		assert_true(fault_point_known(points[i]));
	assert_false(fault_point_known("smtp.data"));
	assert_false(fault_point_known(""));
}

/* The exit signal of a child that arms spec and reaches point. */
static int child_signal(const char *spec, const char *point)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const char *error;
		/* abort() under ASan: no report, just the signal. */
		signal(SIGABRT, SIG_DFL);
		if (fault_setup(spec, &error) < 0)
			_exit(2);
		(void)fault_hit(point);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFSIGNALED(status) ? WTERMSIG(status) : -WEXITSTATUS(status);
}

static void test_crash_actions(void **state)
{
	(void)state;
	assert_int_equal(child_signal("smtp.data.mid:sigkill", "smtp.data.mid"), SIGKILL);
	assert_int_equal(child_signal("smtp.data.mid:abort", "smtp.data.mid"), SIGABRT);
	/* Not reached on the first hit: the child exits normally. */
	assert_int_equal(child_signal("smtp.data.mid:sigkill:2", "smtp.data.mid"), 0);
	assert_int_equal(child_signal("smtp.data.mid:sigkill", "imap.append.mid"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_rules),
	    cmocka_unit_test(test_bad_specs),
	    cmocka_unit_test(test_every_hit_and_errnos),
	    cmocka_unit_test(test_nth_hit),
	    cmocka_unit_test(test_delay),
	    cmocka_unit_test(test_points_known),
	    cmocka_unit_test(test_crash_actions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
