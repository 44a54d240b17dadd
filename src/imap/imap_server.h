/* The IMAP server (RFC 9051 IMAP4rev2 and RFC 3501 IMAP4rev1) on port 143 (STARTTLS) and
 * 993 (implicit TLS). Sessions see the store through store.h only; changes made by other
 * sessions or by delivery reach a selected session through the store's change bus. */
#ifndef POSTHORN_IMAP_IMAP_SERVER_H
#define POSTHORN_IMAP_IMAP_SERVER_H

#include <stdbool.h>

#include "auth/auth.h"
#include "core/conf.h"
#include "net/conn.h"
#include "store/store.h"

struct imap_server;

/* The server keeps a reference on conf. */
struct imap_server *imap_server_new(struct store *store, struct auth *auth, struct conf *conf);
void imap_server_free(struct imap_server **server);
/* New sessions use conf from now on (SIGHUP). */
void imap_server_set_conf(struct imap_server *server, struct conf *conf);

/* Listener context for net_server_listen(). */
struct imap_listener {
	struct imap_server *server;
	bool implicit_tls;
};
/* conn_accept_fn for IMAP listeners; listener_ctx is a struct imap_listener. */
void imap_server_accept(struct conn *conn, void *listener_ctx);
#define IMAP_SERVER_BUSY_REPLY "* BYE [UNAVAILABLE] Too many connections, try again later\r\n"

#endif
