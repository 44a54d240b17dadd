/* Internals shared by net/conn.c and net/server.c; nothing outside net/ includes this. */
#ifndef POSTHORN_NET_NET_PRIVATE_H
#define POSTHORN_NET_NET_PRIVATE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "net/conn.h"
#include "net/tls.h"

struct net_loop;
struct net_server;

struct conn {
	struct net_loop *loop;
	struct bufferevent *bev; /* top of the stack: socket, or TLS over socket */
	struct event *wake_ev;
	struct event *timer_ev;
	struct event *close_ev;
	struct event *writable_ev; /* on_writable and a late on_drained, run from the loop */
	const struct conn_callbacks *cb;
	void *ctx;
	struct tls_ctx *tls; /* for STARTTLS / implicit TLS; NULL when not configured */
	struct conn *prev, *next;
	char *line;
	size_t line_cap;
	unsigned timeout;
	unsigned holds;
	struct timeval close_deadline;
	bool tls_active, tls_pending, closing, dead, paused, discarding;
	bool counted;
	bool output_blocked;  /* input held until the output drains (conn_input_held) */
	bool writable_wanted; /* conn_wait_writable(): on_writable at the low-water mark */
	bool drained_pending; /* on_drained once the layer below a TLS filter is empty too */
	int local_port;
	char id[13];
	char ip[INET6_ADDRSTRLEN];
	char tls_desc[160];
	struct event *deadline_ev;     /* conn_set_deadline(): absolute, not reset by input */
	struct event *tls_deadline_ev; /* a handshake in progress must end by then */
	unsigned tls_timeout;          /* seconds per handshake (0: none) */
	/* Outbound connections (conn_connect) and client-side TLS. */
	struct event *connect_ev; /* the socket became writable, or the connect timed out */
	int connect_fd;           /* the socket while connecting (bev is NULL until then) */
	bool connecting, client_tls, tls_verified;
	int tls_verify_mode; /* enum conn_tls_verify of the client handshake */
	char error[256];     /* conn_error() */
	char peer[120];      /* where an outbound connection goes, for errors: "IP:PORT", or
	                        "unix:PATH" (ip is then "unix" and local_port 0) */
	char tls_verify[200];
	int tls_failure;                 /* enum conn_tls_failure of a failed client handshake */
	char local_ip[INET6_ADDRSTRLEN]; /* conn_local_ip() of an outbound connection */
	struct conn_compress *z;         /* COMPRESS=DEFLATE, NULL when off (conn_compress.c) */
	/* The server's list of connections not logged in yet, oldest first (server.c, under
	 * the server's lock): at the total cap the oldest is dropped for a newcomer. */
	struct conn *evict_prev, *evict_next;
	bool evictable;         /* in that list */
	bool evict_pending;     /* taken off it to be dropped: never listed again */
	struct event *evict_ev; /* activated (from any loop) to drop this connection */
	const char *busy_reply; /* the listener's, sent when dropped */
	/* When the line being read began (its first octet was seen without its LF); 0 when no
	 * line is partly read. A line must be complete within the idle timeout of that, however
	 * the octets trickle in (conn_read_cb). */
	time_t partial_since;
	/* conn_set_write_timeout(): output queued and none of it taken by the socket for
	 * write_timeout seconds closes the connection (conn_output_cb, conn_write_deadline_cb) */
	struct event *write_ev;
	unsigned write_timeout; /* 0: none */
	time_t write_progress;  /* CLOCK_MONOTONIC s: the socket last took output, or output was
	                           queued anew */
	uint64_t write_sent;    /* octets the socket took (drains of the lowest buffer) */
	int64_t write_acked;    /* write_sent less the kernel's send queue when last looked */
	bool write_acked_known; /* write_acked was measured */
	bool write_idle;        /* everything sent: the next output starts a new wait */
};

/* Create a connection on loop for an accepted socket (implicit TLS when tls_now). Returns
 * NULL when the socket could not be set up (fd closed). */
struct conn *conn_new(struct net_loop *loop, int fd, const char *ip, int local_port,
                      struct tls_ctx *tls, bool tls_now);
/* Loop-side hooks implemented in server.c. */
struct event_base *net_loop_base(struct net_loop *loop);
/* NET_TRIM_DELAY seconds from now (once, however often it is asked meanwhile),
 * malloc_trim(): after a session freed a lot of memory. */
#define NET_TRIM_DELAY 5
void net_loop_trim_soon(struct net_loop *loop);
/* The loop's own resolver slot (dns_loop_resolver(), dns.c); freed when the loop ends. */
struct dns_resolver **net_loop_dns_slot(struct net_loop *loop);
void net_loop_conn_added(struct net_loop *loop, struct conn *conn);
/* The connection logged in (conn_clear_deadline): never dropped for a newcomer now. */
void net_loop_conn_authenticated(struct net_loop *loop, struct conn *conn);
/* It logged out again (conn_restart_login): at the tail of the list of connections the
 * total cap may drop. Returns the server's limit_login_timeout (0 without a server). */
unsigned net_loop_conn_unauthenticated(struct net_loop *loop, struct conn *conn);
void net_loop_conn_removed(struct net_loop *loop, struct conn *conn);
/* COMPRESS (conn_compress.c), only while c->z is set. The inflated input the protocol
 * reads; fill it from the raw input up to target octets (1 added, 0 nothing, -1 the peer's
 * stream is corrupt: the connection is closing). */
struct evbuffer *conn_compress_input(struct conn *c);
int conn_compress_fill(struct conn *c, size_t target);
/* Deflate output into the raw output; a flush follows on this loop turn. */
void conn_compress_write(struct conn *c, const void *data, size_t len);
/* Sync-flush what was deflated since the last flush (nothing when nothing was). */
void conn_compress_flush(struct conn *c);
/* Output was deflated and not yet flushed. */
bool conn_compress_pending(const struct conn *c);
/* At destroy (NULL z: nothing). */
void conn_compress_free(struct conn *c);
/* The conn structure was freed (after on_closed and the last conn_unhold). */
void net_loop_conn_freed(struct net_loop *loop);

#endif
