/* Logging to stderr (and optionally syslog). Session lines start with the session id and use
 * key=value fields: "session=8f3a proto=smtp event=rcpt to=<a@b> result=250". */
#ifndef POSTHORN_CORE_LOG_H
#define POSTHORN_CORE_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Set the threshold and whether lines also go to syslog. Call before threads start. */
void log_setup(enum log_level level, bool use_syslog);
/* Parse "error", "warn", "info", "debug". Returns 0, -1 for an unknown name. */
int log_level_parse(const char *name, enum log_level *level_r);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool log_debug_enabled(void);
/* Log and exit(1): for unrecoverable start-up errors. */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Log and abort(): for broken invariants. */
void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Stays on in release builds (a silent invariant violation in a mail server loses mail). */
#define ASSERT(expr)                                                                               \
	do {                                                                                       \
		if (!(expr))                                                                       \
			log_panic("assertion failed: %s (%s:%d)", #expr, __FILE__, __LINE__);      \
	} while (0)

#endif
