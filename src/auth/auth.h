/* Credential verification for SMTP, POP3 and IMAP: password checks run on a small pool of
 * worker threads (argon2id costs ~50-100 ms and 64 MiB, which must never stall an event
 * loop), unknown users cost the same as wrong passwords, and failures from one remote IP
 * earn growing delays. The account store is reached only through the lookup callback, so
 * auth/ never depends on store/ and could move into a separate login process later. */
#ifndef POSTHORN_AUTH_AUTH_H
#define POSTHORN_AUTH_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/sasl.h"

/* The account lookup the store provides (wired by cli_serve.c). Called on worker threads
 * and, for SCRAM, on event-loop threads, possibly several at once, with username already
 * lower-cased (ASCII). Returns 1 found (*account_id_r set, *password_hash_r the malloc'd
 * credentials string of password_hash_dup(), opaque to the store, that auth frees), 0 no
 * such user, -1 temporary error. */
typedef int auth_lookup_fn(void *ctx, const char *username, uint64_t *account_id_r,
                           char **password_hash_r);

/* The APOP secret lookup (RFC 1939 §7 needs the shared secret in clear). Same contract as
 * auth_lookup_fn; *secret_r is malloc'd and wiped by auth. Returns 1 found (the account has a
 * secret), 0 no such account or no secret, -1 temporary error. */
typedef int auth_apop_lookup_fn(void *ctx, const char *username, uint64_t *account_id_r,
                                char **secret_r);

/* Penalty schedule (per remote IP, see auth_verify()). */
#define AUTH_PENALTY_SLOTS 4096            /* remembered IPs; the oldest in a set is overwritten */
#define AUTH_PENALTY_FORGET_SECS (15 * 60) /* failures older than this are forgotten */
#define AUTH_PENALTY_FIRST_MS 1000         /* delay of the first failure; doubles each time */
#define AUTH_PENALTY_MAX_MS 15000          /* ceiling of the delay */

struct auth;

/* Scheduling of the worker threads: password hashing must not delay the event loops of
 * sessions that are already working, nor starve when other programs keep the cores busy.
 * Workers run AUTH_WORKER_NICE above the loops (a tenth of their share: a loop thread
 * that wakes runs first; a login under full load still takes a few hash times, where
 * SCHED_IDLE's tiny weight made it take tens of seconds). */
#define AUTH_WORKER_NICE 10

/* The default number of workers: one less than the online cores, at least 1. argon2id is
 * memory-bound (64 MiB per hash): hashing on every core slows the loops through the shared
 * caches and memory bus even at the lowest priority (bench/auth_bench.py measured a
 * session's p99 at 25-35 ms with 2 workers on 2 cores, 5-8 ms with 1). */
unsigned auth_default_workers(void);

/* Start worker_threads workers (0 means auth_default_workers(); at most 64: each hash
 * needs 64 MiB), so at most that many hashes run at once and further requests wait in a
 * FIFO. Workers run at nice AUTH_WORKER_NICE. Prepares the dummy hash used for
 * unknown users
 * (costs one hash). Aborts via log_fatal() when libsodium or the threads cannot start.
 * The authentication cache is off until auth_set_cache(). Never NULL. */
struct auth *auth_new(auth_lookup_fn *lookup, void *lookup_ctx, unsigned worker_threads);
/* Finish every queued request (their callbacks run), join the workers, free. No
 * auth_verify() may be called concurrently or afterwards. Accepts NULL; sets *auth NULL. */
void auth_free(struct auth **auth);

/* Test seam: replace the monotonic clock (seconds) used for forgetting penalties. Call
 * before the first request; NULL restores the real clock. */
void auth_set_clock(struct auth *auth, uint64_t (*now_fn)(void));
/* How many password checks ran against the dummy hash (an unknown user, or a locked or
 * corrupt stored hash): each such refusal costs one full argon2id run, like a wrong
 * password of a real account, so response times do not tell which accounts exist. For
 * tests and statistics; thread-safe. */
unsigned long auth_dummy_checks(struct auth *auth);

/* Turn the authentication cache on (ttl_secs > 0 and size > 0 entries) or off. Call at
 * start-up, before the first request. See auth_cache.h for what is remembered. */
void auth_set_cache(struct auth *auth, unsigned ttl_secs, unsigned size);
/* Whether the account look-ups may wait (a database over the network). Then a login's
 * cache check runs on one of AUTH_LOOKUP_THREADS look-up threads at normal priority (started
 * here), never on the caller's loop, and only a cache miss goes on to the hashing workers;
 * auth_login runs APOP's and SCRAM's look-ups there too. Call at start-up. */
#define AUTH_LOOKUP_THREADS 2
void auth_set_lookups_wait(struct auth *auth, bool wait);
bool auth_lookups_wait(struct auth *auth);

/* Run fn(ctx) on a look-up thread (only after auth_set_lookups_wait(true)): for a look-up
 * that must not run on a loop. fn signals its own completion. */
void auth_run_lookup(struct auth *auth, void (*fn)(void *ctx), void *ctx);

/* Wire the APOP secret lookup (start-up, before the first request). Without it every APOP
 * login fails. */
void auth_set_apop_lookup(struct auth *auth, auth_apop_lookup_fn *lookup, void *ctx);

/* Check an APOP digest (hex MD5 of banner + secret, either case) for username on the
 * calling thread (cheap). Returns 1 ok (*account_id_r set), 0 wrong digest, unknown user or
 * no APOP secret, -1 temporary error. No penalty is recorded (auth_record_result()). */
int auth_verify_apop(struct auth *auth, const char *banner, const char *username,
                     const char *digest, uint64_t *account_id_r)
    __attribute__((warn_unused_result));

struct auth_request {
	/* in: owned by the caller, valid until the callback */
	const char *authzid;  /* NULL or "" = none; otherwise must equal username (compared
	                         case-insensitively): proxy authorization is not supported and
	                         gives result 0 */
	const char *username; /* authentication id; lower-cased (ASCII) before lookup */
	const char *password;
	const char *remote_ip; /* text form; IPv6 addresses share a penalty per /64. NULL = not
	                          from the network (CLI): no penalty is tracked */
	/* out */
	int result;          /* 1 ok, 0 bad credentials, -1 temporary failure */
	uint64_t account_id; /* when result 1 */
	unsigned delay_ms;   /* when result != 1: how long the protocol waits before answering
	                        (1000 for the first failure from remote_ip within 15 min, then
	                        2000, 4000, 8000, 15000, 15000...; 0 for result -1 and when
	                        remote_ip is NULL) */
	bool cached;         /* result 1 came from the authentication cache (no hash ran) */
};

/* Verify req on a worker thread; cb(req, ctx) runs on that worker thread when done (bounce
 * to your loop from there; req and its strings must stay valid until then). The delay is the
 * protocol's to apply: nothing sleeps here. Unknown users and unusable stored hashes are
 * checked against a dummy hash so they cost the same time as a wrong password. A success
 * clears the penalty of remote_ip. */
void auth_verify(struct auth *auth, struct auth_request *req,
                 void (*cb)(struct auth_request *req, void *ctx), void *ctx);

/* Answer req from the authentication cache on the calling thread (one account look-up,
 * no hashing; fine on a loop thread). Returns 1 answered: req->result 1, account_id set,
 * cached true, the penalty of remote_ip cleared, no callback will run. Returns 0 not in the
 * cache (or the cache is off, or the look-up failed): call auth_verify(), which pays the
 * full price. Failures are never cached. */
int auth_verify_cached(struct auth *auth, struct auth_request *req)
    __attribute__((warn_unused_result));

/* Synchronous form (CLI, tests): queue req, wait for it, return req->result. Never call it
 * from an event-loop thread. */
int auth_verify_wait(struct auth *auth, struct auth_request *req);

/* Look a user up synchronously through the lookup callback (cheap: no hashing; fine on a
 * loop thread). username is lower-cased (ASCII) first. Returns 1 found (*account_id_r set,
 * *credentials_r the malloc'd credentials string: release it with auth_credentials_free()),
 * 0 no such user or empty name (*credentials_r NULL), -1 temporary error (logged). */
int auth_lookup_credentials(struct auth *auth, const char *username, uint64_t *account_id_r,
                            char **credentials_r) __attribute__((warn_unused_result));
/* Wipe and free credentials from auth_lookup_credentials(). Accepts NULL; sets *c NULL. */
void auth_credentials_free(char **credentials);

/* For a SCRAM exchange whose sasl_server_step() returned 2: look up
 * sasl_server_username(sasl) and hand its SCRAM keys to sasl_server_set_credentials() (no
 * keys for an unknown user, a locked account or credentials without a SCRAM part: the
 * exchange then fails at its end, like a wrong password). Then call
 * sasl_server_step(sasl, NULL, ...) for the server-first challenge. Returns 0 with
 * *account_id_r the account that a successful exchange authenticates (0 when none), or -1
 * temporary failure: the exchange cannot go on (answer 454 / NO [UNAVAILABLE] / -ERR
 * [SYS/TEMP] and free sasl). */
int auth_sasl_set_credentials(struct auth *auth, struct sasl_server *sasl, uint64_t *account_id_r)
    __attribute__((warn_unused_result));

/* Feed the outcome of an exchange that was verified outside auth_verify() (SCRAM) into the
 * per-IP penalty, exactly as auth_verify() does for PLAIN and LOGIN: a success clears the
 * penalty of remote_ip (*delay_ms_r 0); a failure counts and *delay_ms_r is how long the
 * protocol waits before answering (1000, 2000, ... 15000). remote_ip NULL: nothing is
 * tracked, delay 0. Thread-safe. */
void auth_record_result(struct auth *auth, const char *remote_ip, bool success,
                        unsigned *delay_ms_r);

#endif
