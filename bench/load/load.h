/* The shared part of posthorn-load, the benchmark load generator (bench/load/): the run
 * (one libevent loop, up to `concurrency` sessions at once, one session per user line),
 * latency samples per command, counters, and the report. A protocol mode (load_pop3.c,
 * load_imap.c) drives its sessions on the connections this part opens and says when each ends. */
#ifndef POSTHORN_BENCH_LOAD_H
#define POSTHORN_BENCH_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct bufferevent;
struct load_run;

/* One account from the users file: address and password (both NUL-terminated). */
struct load_user {
	char *name;
	char *password;
};

/* A protocol mode. cmd_names[i] labels latency samples of command i (0 <= i < cmd_count).
 * start() takes a freshly connecting bufferevent (owned by the mode from then on, freed by
 * it) and the user; the mode must call load_session_end() exactly once per started session. */
struct load_mode {
	const char *name;
	const char *const *cmd_names;
	unsigned cmd_count;
	void (*start)(struct load_run *run, struct bufferevent *bev, const struct load_user *user);
};

/* Monotonic clock in seconds. */
double load_now(void);

/* Record one latency sample of command cmd: now - t0 seconds. */
void load_sample(struct load_run *run, unsigned cmd, double t0);

/* Count one retrieved message of octets octets (after dot-unstuffing). */
void load_count_message(struct load_run *run, uint64_t octets);

/* Count one completed command of the measured part (IMAP: a tagged OK after the barrier). */
void load_count_command(struct load_run *run);

/* Count one message whose octets differ from the size the server announced. */
void load_count_size_mismatch(struct load_run *run);

/* The session on bev is over: frees bev, records success (error == NULL) or the failure
 * text (printf-style), and starts the next user's session if any is left. */
void load_session_end(struct load_run *run, struct bufferevent *bev, const char *error, ...)
    __attribute__((format(printf, 3, 4)));

/* How many times a session repeats the measured part (--cycles; imap-mixed), at least 1. */
unsigned load_cycles(const struct load_run *run);

/* Seconds of inactivity after which a session fails (the bufferevent read timeout). */
unsigned load_timeout(const struct load_run *run);

/* The session ctx is logged in and ready for the measured part (for POP3: after STAT). With
 * --barrier, go(ctx) is called once every session of the run is ready or has ended (and,
 * with --go-stdin, a line has been read from stdin); without, go(ctx) is called at once.
 * A session that ends while waiting must call load_barrier_leave() first. */
void load_barrier_wait(struct load_run *run, void (*go)(void *ctx), void *ctx);

/* Forget ctx waiting at the barrier (its session is ending). */
void load_barrier_leave(struct load_run *run, void *ctx);

/* The POP3 mode (load_pop3.c). */
extern const struct load_mode load_pop3_mode;

/* The IMAP modes (load_imap.c): the mixed session load and IDLE connections held open. */
extern const struct load_mode load_imap_mixed_mode;
extern const struct load_mode load_imap_idle_mode;

/* Options of one run, from the command line. */
struct load_options {
	const struct load_mode *mode;
	struct sockaddr_storage addr; /* the loopback target */
	socklen_t addr_len;
	char target[80]; /* "127.0.0.1:PORT" for the report */
	struct load_user *users;
	size_t user_count;
	unsigned concurrency;
	unsigned timeout_s;
	unsigned cycles; /* repetitions of the measured part per session (imap-mixed) */
	bool json;
	bool barrier;  /* log every session in first, then measure the rest apart */
	bool go_stdin; /* at the barrier, print "barrier" and wait for a line on stdin */
};

/* Run the whole load; prints the report to stdout. Returns 0 when every session succeeded
 * and every message was complete, 1 otherwise, -1 when the loop could not be set up. */
int load_run(const struct load_options *opts);

#endif
