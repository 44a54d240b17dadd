/* The POP3 server (RFC 1939, 2449, 2595, 5034, 6856) on port 110 (STLS) and 995 (implicit
 * TLS). POP3 sees each account's INBOX. A maildrop is locked for POP3 while a session is in
 * the TRANSACTION state; deletions happen only at QUIT, in one store transaction. */
#ifndef POSTHORN_POP3_POP3_SERVER_H
#define POSTHORN_POP3_POP3_SERVER_H

#include <stdbool.h>

#include "auth/auth.h"
#include "core/conf.h"
#include "net/conn.h"
#include "store/store.h"

struct pop3_server;

/* The server keeps a reference on conf. */
struct pop3_server *pop3_server_new(struct store *store, struct auth *auth, struct conf *conf);
void pop3_server_free(struct pop3_server **server);
/* New sessions use conf from now on (SIGHUP). */
void pop3_server_set_conf(struct pop3_server *server, struct conf *conf);

/* Listener context for net_server_listen(): 110 (STLS) or 995 (implicit TLS). */
struct pop3_listener {
	struct pop3_server *server;
	bool implicit_tls;
};
/* conn_accept_fn for POP3 listeners; listener_ctx is a struct pop3_listener. */
void pop3_server_accept(struct conn *conn, void *listener_ctx);
#define POP3_SERVER_BUSY_REPLY "-ERR [SYS/TEMP] Too many connections, try again later\r\n"

#endif
