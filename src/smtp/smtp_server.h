/* The SMTP server (RFC 5321) for the three listener kinds: port 25 (mail for our domains
 * only), 587 (submission with STARTTLS) and 465 (submission over implicit TLS, RFC 8314).
 * Accepted messages go to the store as one delivery; mail for other domains from
 * authenticated users goes to the outbound queue. */
#ifndef POSTHORN_SMTP_SMTP_SERVER_H
#define POSTHORN_SMTP_SMTP_SERVER_H

#include "auth/auth.h"
#include "core/conf.h"
#include "net/conn.h"
#include "store/store.h"

struct smtp_server;

/* The server keeps a reference on conf (see conf_ref()). */
struct smtp_server *smtp_server_new(struct store *store, struct auth *auth, struct conf *conf);
void smtp_server_free(struct smtp_server **server);
/* New sessions use conf from now on (SIGHUP); running sessions keep theirs. */
void smtp_server_set_conf(struct smtp_server *server, struct conf *conf);

/* Is conf's SMTP part well formed (the DNS lists)? 0, or -1 with the reason in error
 * (check-config refuses it). */
int smtp_server_check_conf(const struct conf *conf, char *error, size_t size)
    __attribute__((warn_unused_result));

/* Listener context for net_server_listen(): one per listener kind. */
struct smtp_listener {
	struct smtp_server *server;
	enum conf_listener_kind kind;
};
/* conn_accept_fn for SMTP listeners; listener_ctx is a struct smtp_listener. */
void smtp_server_accept(struct conn *conn, void *listener_ctx);
/* The reply sent when a connection limit refuses a client. */
#define SMTP_SERVER_BUSY_REPLY "421 4.7.0 Too many connections, try again later\r\n"

#endif
