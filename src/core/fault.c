/* Fault points (see fault.h): the table of points, the parser of POSTHORN_FAULT and the
 * actions. Everything but a stub is compiled only with POSTHORN_TEST_BUILD (the test build), so
 * the release binary holds neither the point names nor the code that crashes on purpose. */
#include "core/fault.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/banned.h"

#ifdef POSTHORN_TEST_BUILD

/* Every point: its name and where it sits. Keep in step with tests/durability/README.md. */
static const struct fault_point {
	const char *name;
	const char *where;
} fault_points[] = {
    {"smtp.data.mid", "SMTP DATA/BDAT: before each write of message octets to the spool file"},
    {"smtp.data.before_commit", "SMTP: end of data, before the message goes to the store"},
    {"smtp.data.after_commit", "SMTP: the store committed the message, before the 250"},
    {"smtp.data.after_250", "SMTP: the next command after a message's 250 (client has it)"},
    {"queue.after_remote_250",
     "outbound: the remote server said 250, before the queue records the delivery"},
    {"imap.append.mid", "IMAP APPEND: before each write of literal octets to the spool file"},
    {"store.expunge.mid", "store: an expunge transaction after its first UID (IMAP EXPUNGE, "
                          "CLOSE, POP3 UPDATE)"},
    {"store.move.between", "store: a MOVE transaction between the copy and the delete"},
    {"store.blob.before_row", "store: message files written and synced, before the commit"},
    {"store.wal.checkpoint", "SQLite: before a WAL checkpoint of the writer"},
    {"pg.txn.lost", "PostgreSQL: connection lost inside a write transaction"},
    {"pg.commit.lost", "PostgreSQL: connection lost after COMMIT was sent, before its reply"},
    {"pg.listen.lost", "PostgreSQL: the LISTEN connection lost while it waits"},
};
#define FAULT_POINT_COUNT (sizeof(fault_points) / sizeof(fault_points[0]))

enum fault_action { FAULT_ABORT, FAULT_SIGKILL, FAULT_ENOSPC, FAULT_EIO, FAULT_DROP, FAULT_DELAY };

#define FAULT_RULES_MAX 16

static struct fault_rule {
	size_t point; /* index into fault_points */
	enum fault_action action;
	unsigned delay_ms;
	unsigned nth; /* 0: every hit */
	atomic_uint hits;
} fault_rules[FAULT_RULES_MAX];
static size_t fault_rule_count;

static const char *const fault_action_names[] = {"abort", "sigkill", "enospc",
                                                 "eio",   "drop",    "delay"};

static int fault_point_index(const char *name, size_t len)
{
	for (size_t i = 0; i < FAULT_POINT_COUNT; i++) {
		if (strlen(fault_points[i].name) == len &&
		    memcmp(fault_points[i].name, name, len) == 0)
			return (int)i;
	}
	return -1;
}

bool fault_point_known(const char *name)
{
	return fault_point_index(name, strlen(name)) >= 0;
}

/* A decimal number of at most 9 digits in [p, end); -1 when not one. */
static long fault_number(const char *p, const char *end)
{
	long v = 0;
	if (p == end || end - p > 9)
		return -1;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v;
}

static int fault_parse_action(const char *p, const char *end, struct fault_rule *r)
{
	size_t len = (size_t)(end - p);
	for (size_t i = 0; i < sizeof(fault_action_names) / sizeof(fault_action_names[0]); i++) {
		if (i != FAULT_DELAY && strlen(fault_action_names[i]) == len &&
		    memcmp(fault_action_names[i], p, len) == 0) {
			r->action = (enum fault_action)i;
			return 0;
		}
	}
	if (len > 6 && memcmp(p, "delay_", 6) == 0) {
		long ms = fault_number(p + 6, end);
		if (ms < 0 || ms > 600000)
			return -1;
		r->action = FAULT_DELAY;
		r->delay_ms = (unsigned)ms;
		return 0;
	}
	return -1;
}

/* One "point:action[:N]" in [p, end). */
static int fault_parse_rule(const char *p, const char *end, struct fault_rule *r,
                            const char **error_r)
{
	const char *c1 = memchr(p, ':', (size_t)(end - p));
	if (c1 == NULL) {
		*error_r = "a fault rule is point:action[:N]";
		return -1;
	}
	int idx = fault_point_index(p, (size_t)(c1 - p));
	if (idx < 0) {
		*error_r = "unknown fault point";
		return -1;
	}
	const char *a = c1 + 1;
	const char *c2 = memchr(a, ':', (size_t)(end - a));
	long nth = 0;
	if (c2 != NULL && ((nth = fault_number(c2 + 1, end)) < 1)) {
		*error_r = "the N of point:action:N is a number from 1";
		return -1;
	}
	if (fault_parse_action(a, c2 != NULL ? c2 : end, r) < 0) {
		*error_r = "unknown fault action (abort, sigkill, enospc, eio, drop, delay_MS)";
		return -1;
	}
	r->point = (size_t)idx;
	r->nth = (unsigned)nth;
	atomic_store(&r->hits, 0);
	return 0;
}

int fault_setup(const char *spec, const char **error_r)
{
	fault_rule_count = 0;
	if (spec == NULL)
		return 0;
	const char *p = spec, *end = spec + strlen(spec);
	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *stop = comma != NULL ? comma : end;
		if (fault_rule_count == FAULT_RULES_MAX) {
			*error_r = "too many fault rules";
			fault_rule_count = 0;
			return -1;
		}
		if (fault_parse_rule(p, stop, &fault_rules[fault_rule_count], error_r) < 0) {
			fault_rule_count = 0;
			return -1;
		}
		fault_rule_count++;
		p = comma != NULL ? comma + 1 : end;
	}
	return 0;
}

void fault_init_env(void)
{
	const char *spec = getenv("POSTHORN_FAULT"), *error;
	if (fault_setup(spec, &error) < 0)
		log_fatal("POSTHORN_FAULT=%s: %s", spec, error);
	if (fault_rule_count > 0)
		log_warn("fault: rules armed: %s", spec);
}

static int fault_act(const struct fault_rule *r, const char *point, unsigned hit)
{
	log_warn("fault: event=fault point=%s action=%s hit=%u", point,
	         fault_action_names[r->action], hit);
	switch (r->action) {
	case FAULT_ABORT:
		abort();
	case FAULT_SIGKILL:
		(void)kill(getpid(), SIGKILL);
		for (;;)
			pause();
	case FAULT_ENOSPC:
		return ENOSPC;
	case FAULT_EIO:
		return EIO;
	case FAULT_DROP:
		return ECONNRESET;
	case FAULT_DELAY: {
		struct timespec ts = {(time_t)(r->delay_ms / 1000),
		                      (long)(r->delay_ms % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		return 0;
	}
	}
	return 0;
}

int fault_hit(const char *point)
{
	int idx = fault_point_index(point, strlen(point));
	ASSERT(idx >= 0); /* a FAULT_POINT() whose name is missing from fault_points[] */
	for (size_t i = 0; i < fault_rule_count; i++) {
		struct fault_rule *r = &fault_rules[i];
		if (r->point != (size_t)idx)
			continue;
		unsigned hit = atomic_fetch_add(&r->hits, 1) + 1;
		if (r->nth == 0 || r->nth == hit)
			return fault_act(r, point, hit);
	}
	return 0;
}

#else /* release build: no points */

void fault_init_env(void)
{
	if (getenv("POSTHORN_FAULT") != NULL)
		log_warn("POSTHORN_FAULT ignored: this build has no fault points");
}

int fault_setup(const char *spec, const char **error_r)
{
	if (spec == NULL || *spec == '\0')
		return 0;
	*error_r = "this build has no fault points";
	return -1;
}

int fault_hit(const char *point)
{
	(void)point;
	return 0;
}

bool fault_point_known(const char *name)
{
	(void)name;
	return false;
}

#endif
