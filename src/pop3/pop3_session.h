/* Internals of a POP3 session shared by pop3_session.c (I/O, states, streaming of RETR/TOP,
 * login and QUIT) and pop3_commands.c (command table and handlers). */
#ifndef POSTHORN_POP3_POP3_SESSION_H
#define POSTHORN_POP3_POP3_SESSION_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth/auth.h"
#include "auth/auth_login.h"
#include "auth/sasl.h"
#include "core/arena.h"
#include "core/conf.h"
#include "core/userip.h"
#include "net/conn.h"
#include "net/session.h"
#include "pop3/pop3_parser.h"
#include "store/store.h"

struct pop3_drop; /* a locked maildrop, or an account's last login time */

struct pop3_server {
	struct store *store;
	struct auth *auth;
	struct conf_slot conf; /* for new sessions */
	pthread_mutex_t lock;  /* drops */
	struct pop3_drop *drops;
	struct userip *userip; /* logged-in sessions per account + address */
};

/* RFC 1939 §3 states plus the waits between them. */
enum pop3_state {
	POP3_STATE_TLS,           /* handshake (implicit TLS or after STLS) */
	POP3_STATE_AUTHORIZATION, /* USER/PASS/APOP/AUTH */
	POP3_STATE_SASL,          /* reading an AUTH continuation line */
	POP3_STATE_TRANSACTION,   /* logged in, maildrop locked */
	POP3_STATE_STREAMING,     /* sending a RETR/TOP response; input paused */
	POP3_STATE_WAIT,          /* password check or QUIT's expunge in progress */
	POP3_STATE_CLOSING,
};

enum pop3_async { POP3_ASYNC_NONE, POP3_ASYNC_AUTH, POP3_ASYNC_EXPUNGE, POP3_ASYNC_READ };

struct pop3_msg {
	uint32_t uid;
	uint64_t size;
	int64_t date;
	bool deleted;
	bool retrieved;
};

struct pop3_session {
	struct conn *conn;
	struct pop3_server *server;
	struct conf *conf;
	const struct limits *limits;
	enum pop3_state state;
	struct arena *cmd;
	struct session life; /* async operations, shutdown, close, login (net/session.h) */
	bool greeted, closed, utf8;
	unsigned errors, auth_failures;
	char apop_banner[160]; /* "" when APOP is not offered */

	/* authorization */
	char *user;               /* from USER */
	struct auth_login *login; /* a login attempt in progress */

	/* transaction */
	uint64_t account_id;
	bool locked;
	uint32_t uidvalidity;
	struct pop3_msg *msgs;
	uint32_t count;

	/* RETR/TOP streaming */
	int fd;
	uint64_t top_lines; /* body lines still to send for TOP; UINT64_MAX for RETR */
	bool top, in_body, at_line_start, pending_cr;
	size_t line_len;

	/* a store read in flight (POP3_ASYNC_READ): what it found, and the next step */
	void (*read_next)(struct pop3_session *s);
	enum pop3_state read_state; /* the state to go on in */
	int read_ret;
	struct store_mailbox_status read_status;
	char *read_user;   /* login: the user name, for the log */
	uint32_t stream_n; /* RETR/TOP: the message number */

	/* QUIT (the operation in flight: session_async(&s->life)) */
	struct store_expunge expunge;
	uint32_t *expunge_uids;

	/* hostile-input limits before login */
	unsigned login_commands; /* commands so far in AUTHORIZATION state */
};

/* Send one line (CRLF added). "-ERR" replies count as errors; at the limit the session says
 * so and closes. */
void pop3_reply(struct pop3_session *s, const char *line);
void pop3_replyf(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void pop3_session_set_state(struct pop3_session *s, enum pop3_state state);
void pop3_session_close(struct pop3_session *s, const char *reply);
/* A new login attempt (replacing any previous one), owned by the session. */
struct auth_login *pop3_session_login_new(struct pop3_session *s);
/* Put what the login driver answered on the wire: a "+ " continuation, a wait for the
 * password check, or the verdict (login, or -ERR after the penalty delay). */
void pop3_session_login_status(struct pop3_session *s, enum auth_login_status st,
                               const char *challenge, const char *error);
/* Start sending message n (1-based) whole (top = false) or its header and `lines` lines. */
void pop3_session_stream(struct pop3_session *s, uint32_t n, bool top, uint64_t lines);
/* QUIT in TRANSACTION: remove the deleted messages, then say goodbye. */
void pop3_session_update(struct pop3_session *s);
/* Execute one command line / one SASL continuation line. */
void pop3_commands_execute(struct pop3_session *s, const char *line, size_t len);
void pop3_commands_sasl_continue(struct pop3_session *s, const char *line);
/* Is plaintext authentication (USER/PASS, PLAIN, LOGIN) allowed now? */
bool pop3_session_plaintext_ok(const struct pop3_session *s);

#define POP3_LOG(s, fmt, ...)                                                                      \
	log_info("session=%s proto=pop3 " fmt, conn_id((s)->conn), __VA_ARGS__)

#endif
