/* Fault points: named places in the code where a test build can be told, through the
 * environment variable POSTHORN_FAULT, to crash, stall or make an I/O operation fail, so
 * that the crash matrix (tests/durability/) can prove that nothing acknowledged is lost.
 * They exist only in builds with POSTHORN_TEST_BUILD defined (the ASan test build); in the
 * release build FAULT_POINT() is the constant 0 and no point name is compiled in.
 *
 * POSTHORN_FAULT=point:action[:N][,point:action[:N]...]
 *   action  abort | sigkill | enospc | eio | drop | delay_MS (e.g. delay_200)
 *   N       fire on the Nth time the point is reached only (1 = the first); without N the
 *           rule fires every time.
 * The points and what each one means are listed in fault.c (fault_points[]) and in
 * tests/durability/README.md. */
#ifndef POSTHORN_CORE_FAULT_H
#define POSTHORN_CORE_FAULT_H

#include <stdbool.h>
#include <stddef.h>

/* Read POSTHORN_FAULT and set the rules up (start-up, before any thread). An unknown point
 * or action is fatal in a test build; a release build ignores the variable with a warning. */
void fault_init_env(void);

/* Replace the rules by those of spec (NULL or "" clears them). 0, or -1 with a static
 * *error_r. Start-up only (and unit tests). */
int fault_setup(const char *spec, const char **error_r) __attribute__((warn_unused_result));

/* The point was reached: carry out a matching rule. abort and sigkill do not return; delay
 * sleeps and returns 0; enospc, eio and drop return ENOSPC, EIO and ECONNRESET, which the
 * caller turns into a failure of the operation it guards. 0 when no rule fires. */
int fault_hit(const char *point);

/* Whether name is one of the points of the table (test builds; false in release builds). */
bool fault_point_known(const char *name);

#ifdef POSTHORN_TEST_BUILD
#define FAULT_POINT(name) fault_hit(name)
#else
#define FAULT_POINT(name) 0
#endif

#endif
