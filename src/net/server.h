/* The network server: event-loop threads (one libevent base each), listening sockets shared
 * by all loops, per-IP and total connection limits, TLS context (reloadable), and signal
 * handling: SIGTERM/SIGINT shut down gracefully, SIGHUP calls the reload hook. */
#ifndef POSTHORN_NET_SERVER_H
#define POSTHORN_NET_SERVER_H

#include <stdbool.h>

#include "core/conf.h"
#include "net/conn.h"

struct net_server;
struct net_loop;

/* threads 0 = one per core. Once per process, before any other thread exists. */
struct net_server *net_server_new(unsigned threads, const struct limits *limits);
void net_server_free(struct net_server **server);
/* Bind and listen on host:port ("*" = all IPv6 and IPv4 addresses). Connections are handed to
 * accept with accept_ctx; implicit_tls starts TLS at once. rate_limited: new connections
 * count against limit_connection_rate_per_ip (one count per client over every such
 * listener). busy_reply (a full protocol line with CRLF) is sent to a connection refused by
 * a limit (on an implicit-TLS port nothing is sent: the connection just closes). 0 ok, -1
 * with *error_r. */
int net_server_listen(struct net_server *server, const char *host, int port, bool implicit_tls,
                      bool rate_limited, conn_accept_fn *accept, void *accept_ctx,
                      const char *busy_reply, const char **error_r)
    __attribute__((warn_unused_result));
/* Load (or reload) the TLS certificate and key used by new connections, and the
 * certificates chosen by SNI name (tls_sni). All or nothing: when any file fails, the
 * context in use stays (a SIGHUP with a broken new certificate keeps the old one). Running
 * sessions keep the context they started with. 0 / -1 + error. */
int net_server_load_tls(struct net_server *server, const char *cert, const char *key,
                        const struct conf_tls_sni *sni, size_t sni_count, const char **error_r)
    __attribute__((warn_unused_result));
/* Replace the limits for new connections (SIGHUP). */
void net_server_set_limits(struct net_server *server, const struct limits *limits);
/* Called on the main thread on SIGHUP. */
void net_server_set_reload_hook(struct net_server *server, void (*hook)(void *ctx), void *ctx);
/* Run the loops until SIGTERM/SIGINT; then stop accepting, ask every session to finish
 * (on_shutdown), and return when all are closed (or after a 30 s deadline). 0 ok, -1 error. */
int net_server_run(struct net_server *server);
/* Call hook(ctx) on the main thread when SIGTERM or SIGINT starts the shutdown, before the
 * sessions are told (work that is not a session, such as outbound delivery, stops there). */
void net_server_set_stop_hook(struct net_server *server, void (*hook)(void *ctx), void *ctx);

/* The server's event loops (one per thread), for work that starts outside an accepted
 * connection, such as outbound connections (conn_connect). index < net_server_loop_count().
 * Everything done on a loop must happen on its thread (or through conn_wake). */
unsigned net_server_loop_count(const struct net_server *server);
struct net_loop *net_server_loop(struct net_server *server, unsigned index);
/* Run fn(ctx) soon on loop's thread. Thread-safe: callable from any thread. */
void net_loop_call(struct net_loop *loop, void (*fn)(void *ctx), void *ctx);

/* A standalone loop on the calling thread, without a server (unit tests, command-line tools
 * that speak to a remote server). net_loop_run() dispatches until net_loop_stop() (or until
 * no event is left); net_loop_run_once() runs one turn, waiting for at least one event. Free
 * it only after every connection on it is closed and freed. */
struct net_loop *net_loop_new(void);
void net_loop_free(struct net_loop **loop);
int net_loop_run(struct net_loop *loop);
void net_loop_run_once(struct net_loop *loop);
void net_loop_stop(struct net_loop *loop);

#endif
