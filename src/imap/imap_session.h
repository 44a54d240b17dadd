/* Internals of an IMAP session shared by imap_session.c (I/O: lines, literals, states,
 * replies, the selected mailbox's view), imap_commands.c (the command table and dispatcher)
 * and the cmd_*.c handlers. */
#ifndef POSTHORN_IMAP_IMAP_SESSION_H
#define POSTHORN_IMAP_IMAP_SESSION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "auth/auth.h"
#include "auth/auth_login.h"
#include "auth/sasl.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/conf.h"
#include "core/userip.h"
#include "imap/imap_parser.h"
#include "imap/imap_seqset.h"
#include "net/conn.h"
#include "net/session.h"
#include "store/store.h"

struct imap_server {
	struct store *store;
	struct auth *auth;
	struct conf_slot conf; /* for new sessions */
	struct userip *userip; /* logged-in sessions per account + address */
};

/* RFC 9051 §3 states. */
enum imap_state {
	IMAP_STATE_NOT_AUTHENTICATED,
	IMAP_STATE_AUTHENTICATED,
	IMAP_STATE_SELECTED,
	IMAP_STATE_LOGOUT,
};

/* What the input side is doing. */
enum imap_io {
	IMAP_IO_TLS,          /* handshake */
	IMAP_IO_LINE,         /* reading a command line */
	IMAP_IO_LITERAL,      /* reading literal octets into the parser */
	IMAP_IO_LITERAL_FILE, /* reading an APPEND message literal into a spool file */
	IMAP_IO_SASL,         /* reading an AUTHENTICATE continuation line */
	IMAP_IO_IDLE,         /* IDLE: waiting for DONE */
	IMAP_IO_WAIT,         /* an asynchronous operation runs; input paused */
	IMAP_IO_RUN,          /* a long command runs in steps (imap_session_run); input paused */
	IMAP_IO_CLOSING,
};

enum imap_async { IMAP_ASYNC_NONE, IMAP_ASYNC_AUTH, IMAP_ASYNC_OP, IMAP_ASYNC_READ };

/* What one step of a long command says (imap_session_run). */
enum imap_step {
	IMAP_STEP_DONE, /* the command has answered (its tagged reply is queued) */
	IMAP_STEP_MORE, /* call the step again when the client can take more output */
	IMAP_STEP_WAIT, /* a store read is out (imap_session_read): call again after it */
};
struct imap_session;
typedef enum imap_step imap_step_fn(struct imap_session *s, void *ctx);
/* The loop's part of a store read (imap_session_read). */
typedef void imap_read_next_fn(struct imap_session *s, void *ctx);

/* One message of the selected mailbox as this session sees it (sequence number = index + 1). */
struct imap_msg {
	uint32_t uid;
	uint64_t size;
	int64_t date;
	int64_t save_date; /* SAVEDATE (RFC 8514) */
	unsigned flags;
	char *keywords; /* space-separated, malloc'd; NULL when none */
	uint64_t modseq;
	bool recent; /* \Recent in this session (IMAP4rev1 only, RFC 3501 §2.3.2) */
};

struct imap_session {
	struct conn *conn;
	struct imap_server *server;
	struct conf *conf;
	const struct limits *limits;
	enum imap_state state;
	enum imap_io io;
	struct arena *cmd; /* one command: parser output, scratch */
	struct imap_parser *parser;
	struct buf literal; /* octets of the literal being read */
	uint64_t literal_remaining;
	struct cmd_append_spool *append; /* APPEND message literals (cmd_append.c) */
	struct session life; /* async operations, shutdown, close, login (net/session.h) */
	bool greeted, closed;
	bool rev2; /* ENABLE IMAP4rev2 */
	bool utf8; /* ENABLE UTF8=ACCEPT (or rev2) */
	/* CONDSTORE-aware (RFC 7162 §3.1): after any CONDSTORE enabling command, every
	 * untagged FETCH caused by a flag change carries UID and MODSEQ. */
	bool condstore;
	/* ENABLE QRESYNC (RFC 7162 §3.2.3; implies condstore): expunges are reported as
	 * VANISHED, SELECT/EXAMINE take the QRESYNC parameter, UID FETCH the VANISHED
	 * modifier. */
	bool qresync;
	/* ENABLE UIDONLY (RFC 9586): commands taking message numbers are BAD [UIDREQUIRED],
	 * FETCH responses are "* uid UIDFETCH (...)" and expunges are reported as VANISHED. */
	bool uidonly;
	/* MESSAGELIMIT (RFC 9738): the running command was cut to this many messages (0: not);
	 * its tagged OK carries [MESSAGELIMIT n] (imap_tagged(), imap_session_sync_ok()). */
	uint32_t msglimit_hit;
	unsigned errors, auth_failures;

	/* authentication */
	struct auth_login *login; /* LOGIN or AUTHENTICATE in progress */
	char *auth_tag;           /* its tag */
	/* the operation in flight: session_async(&s->life), an enum imap_async */
	void (*op_done)(struct imap_session *s); /* IMAP_ASYNC_OP: runs on the loop thread */
	void *op;                                /* the handler's operation, owned by op_done */
	char *op_tag;
	uint64_t account_id;
	char *user;

	/* selected mailbox: mailbox is its name in the account mailbox_owner (this session's,
	 * or another's through the shared namespace, imap_acl.h); rights are the session's
	 * STORE_ACL_* on it (every right on its own) */
	char *mailbox;
	uint64_t mailbox_owner;
	unsigned rights;
	/* another account's mailbox: store_acl_version() and the monotonic second when rights
	 * were last read (imap_acl_refresh()) */
	uint64_t acl_version;
	int64_t acl_read_at;
	bool read_only;
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	struct imap_msg *msgs;
	uint32_t count, cap;
	/* Keywords announced in the last untagged FLAGS (space-separated, malloc'd): a keyword
	 * is announced before any FETCH FLAGS shows it (RFC 9051 §7.3.5). */
	char *announced;

	/* the saved search result "$" (RFC 5182, RFC 9051 §6.4.4.1) as UIDs; NULL = empty.
	 * Owned by cmd_search.c: cmd_search_saved_reset() frees it. */
	struct cmd_search_saved *search_saved;

	/* change bus (store_watch) for the selected mailbox */
	struct store_watch *watch;
	atomic_bool changed;
	atomic_uint change_count; /* wakes of that watch so far (NOTIFY syncs once per wake) */

	/* IDLE */
	char *idle_tag;

	/* NOTIFY (RFC 5465, cmd_notify.c), NULL when none is in force */
	struct cmd_notify *notify;

	/* the store read in flight (IMAP_ASYNC_READ, imap_session_read) */
	store_read_fn *read_fn;
	imap_read_next_fn *read_next;
	void *read_ctx;
	enum imap_io read_io; /* s->io before the read */

	/* the long command running in steps (imap_session_run), NULL when none */
	imap_step_fn *step;
	void (*step_free)(void *ctx);
	void *step_ctx;
	struct timespec progress_at; /* the running step's start, or its last INPROGRESS */
	enum imap_io step_io;        /* input after the step: IMAP_IO_LINE, or IDLE */
	/* hostile-input limits before login */
	unsigned login_commands; /* commands so far in not-authenticated state */
};

/* A view of at least this many messages, freed, asks for the memory to go back to the
 * system (conn_release_memory_soon()). */
#define IMAP_VIEW_TRIM_MIN 10000

/* Every change of s->state (RFC 9051 §3) goes through here: it is logged at debug level. */
void imap_session_set_state(struct imap_session *s, enum imap_state state);
/* Untagged or continuation text: the line as given plus CRLF. */
void imap_send(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Tagged completion: "<tag> <status> <text>". BAD counts as an error (NO is a normal answer:
 * a message expunged meanwhile, a missing mailbox; Dovecot counts bad commands); at the limit the
 * session says BYE and closes. */
void imap_tagged(struct imap_session *s, const char *tag, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void imap_session_close(struct imap_session *s, const char *bye);
/* The CAPABILITY list for the current state (without "* CAPABILITY"). */
const char *imap_session_capabilities(struct imap_session *s);
/* A CONDSTORE enabling command (RFC 7162 §3.1: ENABLE CONDSTORE, SELECT/EXAMINE
 * (CONDSTORE), FETCH MODSEQ or CHANGEDSINCE, STORE UNCHANGEDSINCE, SEARCH MODSEQ, STATUS
 * HIGHESTMODSEQ) ran: the session becomes CONDSTORE-aware. The first time, with a mailbox
 * selected, "* OK [HIGHESTMODSEQ n]" tells the view's HIGHESTMODSEQ (SELECT/EXAMINE send
 * it anyway). true when it was enabled now (false: it was already). */
bool imap_session_condstore_enable(struct imap_session *s);
/* Plaintext authentication (LOGIN, AUTHENTICATE PLAIN/LOGIN) allowed now? */
bool imap_session_plaintext_ok(const struct imap_session *s);
/* A login succeeded for account: count it against limit_sessions_per_user_ip (false: over
 * the cap, logged; the caller answers NO [LIMIT]), end the pre-login deadline and give the
 * parser the limits of a logged-in session. */
bool imap_session_admit_login(struct imap_session *s, uint64_t account);
/* Start an asynchronous store operation for the command tagged tag: input pauses until the
 * store's callback (any thread) calls imap_session_op_finished(); then done(s) runs on the
 * loop thread (it answers the command and frees s->op), and input resumes. */
void imap_session_op_start(struct imap_session *s, const char *tag,
                           void (*done)(struct imap_session *s), void *op);
void imap_session_op_finished(struct imap_session *s);
/* Run store reads off the loop where they may wait (store.h, store_read()): fn(ctx) runs
 * the reads (on a reader thread when store_reads_wait(), so it may touch only ctx and what
 * nothing on the loop touches meanwhile), then next(s, ctx) runs on the loop. When reads
 * never wait both run here at once and it returns true. Else it returns false: input is
 * paused (s->io is IMAP_IO_WAIT: no pipelined command, IDLE line or change-bus sync runs;
 * a running step returns IMAP_STEP_WAIT) until next(s, ctx) runs from the wake that ends
 * the read; then s->io is restored, input resumes and a step goes on. If the connection
 * closed meanwhile, next runs with s->closed set: it must only release what the read owns
 * and start nothing. */
bool imap_session_read(struct imap_session *s, store_read_fn *fn, imap_read_next_fn *next,
                       void *ctx);
/* Run a long command (FETCH, SEARCH, ...) as resumable steps, the one mechanism for every
 * command whose work or output may be large (Dovecot's command_func_t model). step(s, ctx)
 * runs at once and then again until it returns IMAP_STEP_DONE; each call must do a bounded
 * amount of work and return IMAP_STEP_MORE as soon as conn_output_full() is true (or its
 * time slice is used up). The next call comes when the unsent output has fallen to
 * CONN_OUTPUT_LOW, at the earliest on a later loop turn (conn_wait_writable()). Input is
 * paused meanwhile: the next pipelined command runs only after this one answered, and the
 * view of the selected mailbox does not change under the step. ctx_free(ctx) runs exactly
 * once: after IMAP_STEP_DONE, or when the session ends first (then the step is not called
 * again). Only one command runs at a time; a step may be started from an operation's done
 * function (imap_session_op_start). While s->step is set, nothing but the step may write to
 * the connection (the output may be inside a literal): a handler's caller that wants to add
 * untagged responses after a command must check it (imap_session_close() then sends no
 * BYE). */
void imap_session_run(struct imap_session *s, imap_step_fn *step, void (*ctx_free)(void *ctx),
                      void *ctx);
/* A step that pauses (IMAP_STEP_MORE or IMAP_STEP_WAIT) before it has written any of its
 * answer may call this: once the command has run imap_progress_interval, and again each
 * interval, "* OK [INPROGRESS ("tag" done total)]" (RFC 9585) goes out. */
void imap_session_progress(struct imap_session *s, const char *tag, uint64_t done, uint64_t total);
/* A message-by-message step (SEARCH, SORT, THREAD) pausing at view index done: its
 * progress over the view, then IMAP_STEP_MORE / IMAP_STEP_WAIT. */
enum imap_step imap_progress_more(struct imap_session *s, const char *tag, uint32_t done);
enum imap_step imap_progress_wait(struct imap_session *s, const char *tag, uint32_t done);
/* Bring the client's view of the selected mailbox up to date with the store: untagged
 * EXPUNGE (only when expunges may be sent now, RFC 9051 §7.5.1), EXISTS and FETCH FLAGS;
 * then next(s, ctx) (NULL: nothing). The read goes through imap_session_read(): next may
 * run later, and runs with s->closed set when the connection closed meanwhile. */
void imap_session_sync(struct imap_session *s, bool expunges, imap_read_next_fn *next, void *ctx);
/* The same, then the tagged "tag OK text" (formatted now) is sent. */
void imap_session_sync_ok(struct imap_session *s, bool expunges, const char *tag, const char *fmt,
                          ...) __attribute__((format(printf, 4, 5)));
/* Start watching the selected mailbox (SELECT/EXAMINE). */
void imap_session_watch(struct imap_session *s);
/* "* n FETCH (UID u FLAGS (...))" for view entry idx (0-based), with "MODSEQ (m)" once
 * the session is CONDSTORE-aware: the unsolicited report of a flag change. */
void imap_session_send_fetch_flags(struct imap_session *s, long idx);
/* Remove the view entries of uids (any order; UIDs not in the view are skipped) and tell
 * the client: "* n EXPUNGE" for each, in the order given, or, once QRESYNC is enabled, one
 * "* VANISHED uid-set" (RFC 7162 §3.2.10). Only where expunges may be sent (RFC 9051
 * §7.5.1). Returns the number of entries removed. */
uint32_t imap_session_view_expunge(struct imap_session *s, const uint32_t *uids, size_t count);
/* "* VANISHED uid-set" (or "* VANISHED (EARLIER) uid-set" with earlier) for uids, which
 * must be ascending, in as few lines as fit RFC 7162 §4's 8192-octet recommendation.
 * Nothing for count 0. */
void imap_session_send_vanished(struct imap_session *s, bool earlier, const uint32_t *uids,
                                size_t count);
/* The head of a FETCH response for view entry idx (0-based) into b: "* n FETCH (", or
 * "* uid UIDFETCH (" once UIDONLY is enabled (RFC 9586 §3.3). 0 ok, -1 b is full. */
int imap_session_fetch_head(const struct imap_session *s, struct buf *b, long idx);
/* "* VANISHED (EARLIER)" for every UID of ranges (sorted, disjoint) up to top that is not in
 * the view: what a QRESYNC client older than the mailbox's tombstone floor gets (RFC 7162
 * §3.2.5), in ranges, so a set like 1:4294967295 costs what the view holds. Nothing when
 * no UID qualifies. */
void imap_session_send_vanished_absent(struct imap_session *s,
                                       const struct imap_seqset_range *ranges, size_t count,
                                       uint32_t top);
/* Remove view entry idx (0-based) after its EXPUNGE was sent. */
void imap_session_view_remove(struct imap_session *s, long idx);
/* Set the keywords of view entry idx (copied; "" or NULL = none). */
void imap_session_view_keywords(struct imap_session *s, long idx, const char *keywords);
/* The flag list of view entry m (system flags, \Recent for IMAP4rev1, keywords), without
 * the parentheses, appended to b. */
void imap_session_flags_text(struct imap_session *s, struct buf *b, const struct imap_msg *m);
/* MESSAGELIMIT (RFC 9738) for a command naming count messages: 1 within the limit; 0
 * with *count_r cut to the limit (a UID form: the lowest UIDs are processed; the tagged OK
 * will say [MESSAGELIMIT n]); -1 after answering NO [MESSAGELIMIT n] (message numbers). */
int imap_session_message_limit(struct imap_session *s, const char *tag, bool uid, size_t *count_r);
/* Untagged FLAGS and OK [PERMANENTFLAGS] with every keyword in s->announced. */
void imap_session_send_flags(struct imap_session *s);
/* \Recent of view entries up to UID upto - 1: claim them (read-write IMAP4rev1 session) or
 * look (EXAMINE). A store read (runs inside imap_session_read()'s fn): 1 with *first_r the
 * lowest UID recent to this session, else 0. */
int imap_session_recent_read(struct imap_session *s, uint32_t upto, uint32_t *first_r);
/* Mark view entries from index from on recent when their UID is at least first. */
void imap_session_recent_mark(struct imap_session *s, uint32_t from, uint32_t first);
/* Number of view entries with \Recent. */
uint32_t imap_session_recent_count(const struct imap_session *s);
/* Back to not-authenticated (UNAUTHENTICATE, RFC 8437 §3): the selected mailbox and its
 * watch are released, the per-user count ends, ENABLEd extensions are off, the parser has
 * the pre-login limits again. TLS stays. */
void imap_session_unauthenticate(struct imap_session *s);
/* Forget the selected mailbox (CLOSE, UNSELECT, a new SELECT). */
void imap_session_unselect(struct imap_session *s);
/* Execute a complete command from the parser. */
void imap_commands_execute(struct imap_session *s);
/* An AUTHENTICATE continuation line. */
void imap_commands_sasl_continue(struct imap_session *s, const char *line);
/* An AUTHENTICATE continuation line over AUTH_LOGIN_LINE_MAX: tagged BAD, exchange over. */
void imap_commands_sasl_too_long(struct imap_session *s);
/* The password check of a LOGIN/AUTHENTICATE finished (on_wake): answer or wait. */
void imap_commands_login_resume(struct imap_session *s);
/* The penalty delay of a failed login is over: the tagged NO (and BYE at the limit). */
void imap_commands_login_failed_answer(struct imap_session *s);
/* A line during IDLE ("DONE" ends it, RFC 2177). */
void imap_commands_idle_line(struct imap_session *s, const char *line);
/* A literal was announced (the parser returned 0): when it is a message of the APPEND being
 * parsed, refuse it before any continuation (NO [TOOBIG] above the message size, RFC 7889;
 * [TRYCREATE], [OVERQUOTA]; a refused non-synchronizing one closes the connection) and
 * return -1 (answered, parser reset), or accept it: "+ OK" when synchronizing, s->io becomes
 * IMAP_IO_LITERAL_FILE, return 1. 0 when it is no APPEND message: handle it as usual. */
int cmd_append_literal_begin(struct imap_session *s, const struct imap_literal *lit);
/* IMAP_IO_LITERAL_FILE: write what is buffered to the spool file; s->io becomes
 * IMAP_IO_LINE when the literal is complete. */
void cmd_append_literal_input(struct imap_session *s);
/* Remove the spool files of a command that ended without handing them to the store (or the
 * session ends). Accepts s->append NULL. */
void cmd_append_spool_free(struct imap_session *s);
/* Quote text as an IMAP string (quoted when possible, else a literal) into out. */
void imap_quote(struct buf *out, const char *text);

#define IMAP_LOG(s, fmt, ...)                                                                      \
	log_info("session=%s proto=imap " fmt, conn_id((s)->conn), __VA_ARGS__)

#endif
