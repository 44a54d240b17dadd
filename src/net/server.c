/* Event-loop threads, listeners and signals (see server.h). Every loop thread watches
 * every shared listening socket and accepts one connection per wake-up; the kernel wakes
 * one or more of them and the losers see EAGAIN. */
#include "net/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "core/log.h"
#include "core/rate.h"
#include "core/xmalloc.h"
#include "net/dns.h"
#include "net/net_private.h"
#include "core/banned.h"

#define NET_LISTENERS_MAX 32
#define NET_IP_BUCKETS 1024
/* Out of descriptors (EMFILE/ENFILE): a loop stops accepting this long, and the condition
 * is logged at most once per NET_ACCEPT_LOG_SECONDS with the count of refusals. */
#define NET_ACCEPT_PAUSE_MS 250
#define NET_ACCEPT_LOG_SECONDS 10
/* limit_connection_rate_per_ip: one-minute windows; at most this many clients counted at
 * once (core/rate.h: beyond, a new client is not counted). */
#define NET_RATE_WINDOW 60
#define NET_RATE_KEYS 100000

struct net_listen {
	struct net_server *server;
	int fd;
	int port;
	bool implicit_tls;
	bool rate_limited; /* counts against limit_connection_rate_per_ip */
	conn_accept_fn *accept;
	void *accept_ctx;
	char *busy_reply;
};

struct net_loop {
	struct net_server *server;
	struct event_base *base;
	pthread_t thread;
	struct event *listeners[NET_LISTENERS_MAX];
	struct net_accept_ctx *accept_ctx[NET_LISTENERS_MAX];
	struct event *shutdown_ev;
	struct event *accept_resume_ev; /* re-enables the listeners after an fd shortage */
	struct event *trim_ev;          /* net_loop_trim_soon()'s malloc_trim() */
	bool accept_paused;
	struct conn *conns;
	unsigned conn_count;
	/* conn structures not yet freed: open ones, and closed ones an operation still holds
	 * (conn_hold); a stopping loop runs until there are none, so that no operation's wake
	 * comes after its event base is gone */
	unsigned conn_structs;
	bool stopping;
	struct dns_resolver *dns; /* dns_loop_resolver(): made on first use, freed at the end */
};

struct net_ip_count {
	struct net_ip_count *next;
	unsigned count;
	char ip[INET6_ADDRSTRLEN];
};

struct net_server {
	unsigned thread_count;
	struct net_loop *loops;
	struct net_listen listens[NET_LISTENERS_MAX];
	size_t listen_count;
	pthread_mutex_t lock; /* tls, limits, ip table, total */
	struct tls_ctx *tls;
	struct limits limits;
	struct net_ip_count *ips[NET_IP_BUCKETS];
	unsigned total;
	void (*reload_hook)(void *ctx);
	void *reload_ctx;
	void (*stop_hook)(void *ctx);
	void *stop_ctx;
	struct event_base *main_base;
	int spare_fd;              /* /dev/null, given up to accept-and-close at EMFILE (lock) */
	time_t fd_shortage_logged; /* last log line about it (lock) */
	unsigned long fd_shortage_refused; /* connections closed since (lock) */
	/* Connections not logged in, oldest first (lock): at limit_connections the head is
	 * dropped to make room for a newcomer (net_server_admit). */
	struct conn *evict_head, *evict_tail;
	struct rate *rate; /* new connections per client and minute (thread-safe itself) */
};

struct dns_resolver **net_loop_dns_slot(struct net_loop *loop)
{
	return &loop->dns;
}

struct event_base *net_loop_base(struct net_loop *loop)
{
	return loop->base;
}

static unsigned net_ip_hash(const char *ip)
{
	unsigned h = 5381;
	for (; *ip != '\0'; ip++)
		h = h * 33 + (unsigned char)*ip;
	return h % NET_IP_BUCKETS;
}

/* Take the oldest connection that has not logged in off the list and have its loop drop it
 * (conn_evict_cb). Under the lock: a listed connection is alive, since it leaves the list
 * (net_loop_conn_removed) before it is freed. False when every connection is logged in. */
static bool net_server_evict_oldest(struct net_server *s)
{
	struct conn *c = s->evict_head;
	if (c == NULL)
		return false;
	s->evict_head = c->evict_next;
	if (s->evict_head != NULL)
		s->evict_head->evict_prev = NULL;
	else
		s->evict_tail = NULL;
	c->evict_prev = c->evict_next = NULL;
	c->evictable = false;
	c->evict_pending = true;
	event_active(c->evict_ev, EV_READ, 0);
	return true;
}

/* Count a new connection from ip. Returns false when a limit refuses it. At the total cap
 * the oldest connection that has not logged in makes room (a flood of idle or slow
 * connections cannot lock out the newest client, nor any logged-in one); the newcomer is
 * refused only when every connection is logged in. */
static bool net_server_admit(struct net_server *s, const char *ip, bool *evicted_r)
{
	bool ok = true;
	*evicted_r = false;
	pthread_mutex_lock(&s->lock);
	struct net_ip_count **slot = &s->ips[net_ip_hash(ip)];
	struct net_ip_count *e = *slot;
	while (e != NULL && strcmp(e->ip, ip) != 0)
		e = e->next;
	if (s->limits.connections_per_ip > 0 && e != NULL &&
	    e->count >= s->limits.connections_per_ip)
		ok = false;
	else if (s->total >= s->limits.connections)
		ok = *evicted_r = net_server_evict_oldest(s);
	if (ok) {
		if (e == NULL) {
			e = xcalloc(1, sizeof(*e));
			snprintf(e->ip, sizeof(e->ip), "%s", ip);
			e->next = *slot;
			*slot = e;
		}
		e->count++;
		s->total++;
	}
	pthread_mutex_unlock(&s->lock);
	return ok;
}

/* A connection not logged in (new, or logged out again) at the tail of the eviction list,
 * unless it is in it. Caller holds the lock. */
static void net_server_list(struct net_server *s, struct conn *c)
{
	/* One being dropped already freed its slot for a newcomer: listed again (logged in
	 * and out meanwhile), a second newcomer could take the same slot. */
	if (c->evictable || c->evict_pending)
		return;
	c->evict_prev = s->evict_tail;
	c->evict_next = NULL;
	if (s->evict_tail != NULL)
		s->evict_tail->evict_next = c;
	else
		s->evict_head = c;
	s->evict_tail = c;
	c->evictable = true;
}

/* A new accepted connection, not logged in yet: at the tail of the eviction list. */
static void net_server_listed(struct net_server *s, struct conn *c)
{
	pthread_mutex_lock(&s->lock);
	net_server_list(s, c);
	pthread_mutex_unlock(&s->lock);
}

/* Off the eviction list (logged in, or gone). Caller holds the lock. */
static void net_server_unlist(struct net_server *s, struct conn *c)
{
	if (!c->evictable)
		return;
	if (c->evict_prev != NULL)
		c->evict_prev->evict_next = c->evict_next;
	else
		s->evict_head = c->evict_next;
	if (c->evict_next != NULL)
		c->evict_next->evict_prev = c->evict_prev;
	else
		s->evict_tail = c->evict_prev;
	c->evict_prev = c->evict_next = NULL;
	c->evictable = false;
}

void net_loop_conn_authenticated(struct net_loop *loop, struct conn *c)
{
	struct net_server *s = loop->server;
	if (s == NULL || !c->counted)
		return;
	pthread_mutex_lock(&s->lock);
	net_server_unlist(s, c);
	pthread_mutex_unlock(&s->lock);
}

unsigned net_loop_conn_unauthenticated(struct net_loop *loop, struct conn *c)
{
	struct net_server *s = loop->server;
	if (s == NULL || !c->counted)
		return 0;
	pthread_mutex_lock(&s->lock);
	unsigned login_timeout = s->limits.login_timeout;
	net_server_list(s, c);
	pthread_mutex_unlock(&s->lock);
	return login_timeout;
}

/* Uncount one connection from ip. Caller holds the lock. */
static void net_server_uncount(struct net_server *s, const char *ip)
{
	struct net_ip_count **p = &s->ips[net_ip_hash(ip)];
	while (*p != NULL && strcmp((*p)->ip, ip) != 0)
		p = &(*p)->next;
	if (*p != NULL && --(*p)->count == 0) {
		struct net_ip_count *dead = *p;
		*p = dead->next;
		free(dead);
	}
	s->total--;
}

/* A counted connection that never became a conn. */
static void net_server_release_ip(struct net_server *s, const char *ip)
{
	pthread_mutex_lock(&s->lock);
	net_server_uncount(s, ip);
	pthread_mutex_unlock(&s->lock);
}

static void net_server_release(struct net_server *s, struct conn *c)
{
	pthread_mutex_lock(&s->lock);
	net_server_unlist(s, c);
	net_server_uncount(s, c->ip);
	pthread_mutex_unlock(&s->lock);
}

void net_loop_conn_added(struct net_loop *loop, struct conn *c)
{
	c->next = loop->conns;
	if (loop->conns != NULL)
		loop->conns->prev = c;
	loop->conns = c;
	loop->conn_count++;
	loop->conn_structs++;
}

void net_loop_conn_removed(struct net_loop *loop, struct conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		loop->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	loop->conn_count--;
	if (c->counted)
		net_server_release(loop->server, c);
}

void net_loop_conn_freed(struct net_loop *loop)
{
	loop->conn_structs--;
	if (loop->stopping && loop->conn_structs == 0)
		event_base_loopexit(loop->base, NULL);
}

/* One loop's readiness watch on one listening socket. */
struct net_accept_ctx {
	struct net_loop *loop;
	struct net_listen *li;
};

static void net_accept_cb(struct net_loop *loop, struct net_listen *li, int fd,
                          struct sockaddr *sa);
static void net_listen_refuse(const struct net_listen *li, int fd);

/* Every loop watches every listening socket and takes ONE connection per wake-up, so a
 * burst of connections spreads over the loops instead of landing on whichever woke first
 * (accepting in a loop until EAGAIN would give it all of them). */
static void net_loop_pause_accept(struct net_loop *loop);

/* Out of descriptors: the pending connection would make every loop wake at once, again and
 * again. Give up the spare descriptor to accept that one connection and close it (the peer
 * gets the busy reply instead of a hang), stop accepting on this loop for a while, and log
 * at most once per interval. */
static void net_accept_fd_shortage(struct net_loop *loop, struct net_listen *li, int err)
{
	struct net_server *s = loop->server;
	pthread_mutex_lock(&s->lock);
	if (s->spare_fd >= 0) {
		close(s->spare_fd);
		s->spare_fd = -1;
		int fd = accept4(li->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			net_listen_refuse(li, fd);
			s->fd_shortage_refused++;
		}
		s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	time_t now = time(NULL);
	bool log_now = now - s->fd_shortage_logged >= NET_ACCEPT_LOG_SECONDS;
	unsigned long refused = s->fd_shortage_refused;
	if (log_now) {
		s->fd_shortage_logged = now;
		s->fd_shortage_refused = 0;
	}
	pthread_mutex_unlock(&s->lock);
	if (log_now)
		log_error("event=accept-error port=%d error=\"%s\" action=pause pause_ms=%d "
		          "refused=%lu",
		          li->port, strerror(err), NET_ACCEPT_PAUSE_MS, refused);
	net_loop_pause_accept(loop);
}

static void net_loop_resume_accept(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct net_loop *loop = arg;
	struct net_server *s = loop->server;
	loop->accept_paused = false;
	if (loop->stopping)
		return;
	pthread_mutex_lock(&s->lock);
	if (s->spare_fd < 0)
		s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pthread_mutex_unlock(&s->lock);
	for (size_t j = 0; j < NET_LISTENERS_MAX; j++)
		if (loop->listeners[j] != NULL)
			event_add(loop->listeners[j], NULL);
}

static void net_loop_pause_accept(struct net_loop *loop)
{
	if (loop->accept_paused)
		return;
	loop->accept_paused = true;
	for (size_t j = 0; j < NET_LISTENERS_MAX; j++)
		if (loop->listeners[j] != NULL)
			event_del(loop->listeners[j]);
	struct timeval tv = {0, NET_ACCEPT_PAUSE_MS * 1000};
	event_add(loop->accept_resume_ev, &tv);
}

/* Every loop watches every listening socket and takes ONE connection per wake-up, so a
 * burst of connections spreads over the loops instead of landing on whichever woke first
 * (accepting in a loop until EAGAIN would give it all of them). */
static void net_accept_ready(evutil_socket_t lfd, short what, void *arg)
{
	(void)what;
	struct net_accept_ctx *ctx = arg;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
			net_accept_fd_shortage(ctx->loop, ctx->li, err);
		else if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR && err != ECONNABORTED)
			log_warn("event=accept-error port=%d error=%s", ctx->li->port,
			         strerror(err));
		return;
	}
	net_accept_cb(ctx->loop, ctx->li, fd, (struct sockaddr *)&ss);
}

/* Refuse a connection just accepted: the listener's busy reply, then close. On an
 * implicit-TLS port nothing is said (no handshake was made, and cleartext there would only
 * look like a broken handshake to the client), as when a connection in its handshake is
 * dropped for a newcomer (conn_evict_cb). */
static void net_listen_refuse(const struct net_listen *li, int fd)
{
	if (!li->implicit_tls) {
		ssize_t ignored =
		    send(fd, li->busy_reply, strlen(li->busy_reply), MSG_DONTWAIT | MSG_NOSIGNAL);
		(void)ignored;
	}
	close(fd);
}

/* limit_connection_rate_per_ip, for the listeners it covers (IMAP, POP3, submission; port
 * 25 has smtp_connection_rate_per_ip): false when this connection is over the client's
 * rate. Refused connections count too (rate.h); the first one over the limit in a window is
 * logged, the rest of that window silently. */
static bool net_server_rate_ok(struct net_server *s, const struct net_listen *li, const char *ip)
{
	if (!li->rate_limited)
		return true;
	pthread_mutex_lock(&s->lock);
	unsigned limit = s->limits.connection_rate_per_ip;
	pthread_mutex_unlock(&s->lock);
	char key[INET6_ADDRSTRLEN];
	rate_ip_key(ip, key, sizeof(key));
	unsigned n = rate_count(s->rate, key, limit, time(NULL));
	if (n <= limit)
		return true;
	if (n == limit + 1)
		log_warn("event=rate-limit ip=%s client=%s port=%d limit=%u window=%d "
		         "action=refused",
		         ip, key, li->port, limit, NET_RATE_WINDOW);
	return false;
}

static void net_accept_cb(struct net_loop *loop, struct net_listen *li, int fd, struct sockaddr *sa)
{
	struct net_server *s = li->server;
	char ip[INET6_ADDRSTRLEN] = "unknown";
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
	else if (sa->sa_family == AF_INET6) {
		struct in6_addr *a = &((struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a))
			inet_ntop(AF_INET, &a->s6_addr[12], ip, sizeof(ip));
		else
			inet_ntop(AF_INET6, a, ip, sizeof(ip));
	}
	if (!net_server_rate_ok(s, li, ip)) {
		net_listen_refuse(li, fd);
		return;
	}
	bool evicted = false;
	if (loop == NULL || loop->stopping || !net_server_admit(s, ip, &evicted)) {
		log_warn("event=refused ip=%s port=%d reason=connection-limit", ip, li->port);
		net_listen_refuse(li, fd);
		return;
	}
	evutil_make_socket_nonblocking(fd);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof(one));
	pthread_mutex_lock(&s->lock);
	struct tls_ctx *tls = s->tls != NULL ? tls_ctx_ref(s->tls) : NULL;
	unsigned tls_timeout = s->limits.tls_handshake_timeout;
	unsigned login_timeout = s->limits.login_timeout;
	unsigned write_timeout = s->limits.request_timeout;
	pthread_mutex_unlock(&s->lock);
	struct conn *c = conn_new(loop, fd, ip, li->port, tls, li->implicit_tls && tls != NULL);
	tls_ctx_unref(&tls);
	if (c == NULL) {
		net_server_release_ip(s, ip);
		return;
	}
	c->counted = true;
	c->busy_reply = li->busy_reply;
	net_server_listed(s, c);
	if (evicted)
		log_info(
		    "session=%s event=connection-limit ip=%s action=evicted-oldest-unauthenticated",
		    c->id, ip);
	conn_set_tls_timeout(c, tls_timeout);
	conn_set_write_timeout(c, write_timeout);
	conn_set_deadline(c, login_timeout); /* the protocol clears it at login */
	if (li->implicit_tls && c->tls == NULL) {
		log_error("event=refused ip=%s port=%d reason=no-tls-configured", ip, li->port);
		conn_close(c);
	}
	li->accept(c, li->accept_ctx);
}

/* Every connection is a descriptor (two under an outbound relay): the soft limit, often
 * 1024, would cap the connections long before memory does. Raise it to the hard limit,
 * which needs no privilege. */
static void net_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == rl.rlim_max)
		return;
	rlim_t was = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_warn("event=rlimit-nofile error=\"%s\" soft=%llu", strerror(errno),
		         (unsigned long long)was);
	else
		log_info("event=rlimit-nofile from=%llu to=%llu", (unsigned long long)was,
		         (unsigned long long)rl.rlim_max);
}

struct net_server *net_server_new(unsigned threads, const struct limits *limits)
{
	net_raise_nofile();
	if (evthread_use_pthreads() < 0)
		log_fatal("libevent: no pthreads support");
	if (threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n < 1 ? 1 : (unsigned)n;
	}
	struct net_server *s = xcalloc(1, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->limits = *limits;
	s->thread_count = threads;
	s->loops = xcalloc(threads, sizeof(*s->loops));
	for (unsigned i = 0; i < threads; i++) {
		s->loops[i].server = s;
		s->loops[i].base = event_base_new();
		if (s->loops[i].base == NULL)
			log_fatal("libevent: cannot create an event base");
	}
	s->main_base = event_base_new();
	s->rate = rate_new(NET_RATE_WINDOW, NET_RATE_KEYS);
	/* A descriptor in reserve for running out of them (net_accept_fd_shortage). */
	s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return s;
}

void net_server_free(struct net_server **server)
{
	struct net_server *s = *server;
	if (s == NULL)
		return;
	for (unsigned i = 0; i < s->thread_count; i++) {
		for (size_t j = 0; j < s->listen_count; j++) {
			if (s->loops[i].listeners[j] != NULL)
				event_free(s->loops[i].listeners[j]);
			free(s->loops[i].accept_ctx[j]);
		}
		if (s->loops[i].shutdown_ev != NULL)
			event_free(s->loops[i].shutdown_ev);
		if (s->loops[i].accept_resume_ev != NULL)
			event_free(s->loops[i].accept_resume_ev);
		if (s->loops[i].trim_ev != NULL)
			event_free(s->loops[i].trim_ev);
		event_base_free(s->loops[i].base);
	}
	for (size_t j = 0; j < s->listen_count; j++) {
		close(s->listens[j].fd);
		free(s->listens[j].busy_reply);
	}
	for (size_t b = 0; b < NET_IP_BUCKETS; b++) {
		while (s->ips[b] != NULL) {
			struct net_ip_count *n = s->ips[b]->next;
			free(s->ips[b]);
			s->ips[b] = n;
		}
	}
	tls_ctx_unref(&s->tls);
	rate_free(&s->rate);
	if (s->spare_fd >= 0)
		close(s->spare_fd);
	event_base_free(s->main_base);
	free(s->loops);
	pthread_mutex_destroy(&s->lock);
	free(s);
	*server = NULL;
}

static int net_bind(const char *host, int port, const char **error_r)
{
	static _Thread_local char err[160];
	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof(ss));
	bool any = strcmp(host, "*") == 0;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	if (any || strchr(host, ':') != NULL) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (!any && inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			goto bad_addr;
		sl = sizeof(*s6);
	} else {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			goto bad_addr;
		sl = sizeof(*s4);
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 && any) {
		/* No IPv6 on this host: fall back to IPv4 any. */
		memset(&ss, 0, sizeof(ss));
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		sl = sizeof(*s4);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	}
	if (fd < 0)
		goto sys_err;
	int one = 1, zero = 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, any ? &zero : &one, sizeof(int));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1024) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		goto sys_err;
	}
	return fd;
bad_addr:
	snprintf(err, sizeof(err), "%s: not a numeric address", host);
	*error_r = err;
	return -1;
sys_err:
	snprintf(err, sizeof(err), "cannot listen on %s:%d: %s", host, port, strerror(errno));
	*error_r = err;
	return -1;
}

int net_server_listen(struct net_server *s, const char *host, int port, bool implicit_tls,
                      bool rate_limited, conn_accept_fn *accept_fn, void *accept_ctx,
                      const char *busy_reply, const char **error_r)
{
	if (s->listen_count == NET_LISTENERS_MAX) {
		*error_r = "too many listeners";
		return -1;
	}
	int fd = net_bind(host, port, error_r);
	if (fd < 0)
		return -1;
	struct net_listen *li = &s->listens[s->listen_count++];
	li->server = s;
	li->fd = fd;
	li->port = port;
	li->implicit_tls = implicit_tls;
	li->rate_limited = rate_limited;
	li->accept = accept_fn;
	li->accept_ctx = accept_ctx;
	li->busy_reply = xstrdup(busy_reply);
	return 0;
}

int net_server_load_tls(struct net_server *s, const char *cert, const char *key,
                        const struct conf_tls_sni *sni, size_t sni_count, const char **error_r)
{
	struct tls_ctx *t = tls_ctx_load(cert, key, error_r);
	if (t == NULL)
		return -1;
	for (size_t i = 0; i < sni_count; i++) {
		if (tls_ctx_add_sni(t, sni[i].name, sni[i].cert, sni[i].key, error_r) < 0) {
			tls_ctx_unref(&t);
			return -1;
		}
	}
	/* Connections hold a reference to the context they started with: a reload changes
	 * the certificate for new connections only, and a running session keeps its own. */
	pthread_mutex_lock(&s->lock);
	struct tls_ctx *old = s->tls;
	s->tls = t;
	pthread_mutex_unlock(&s->lock);
	tls_ctx_unref(&old);
	return 0;
}

void net_server_set_limits(struct net_server *s, const struct limits *limits)
{
	pthread_mutex_lock(&s->lock);
	s->limits = *limits;
	pthread_mutex_unlock(&s->lock);
}

void net_server_set_reload_hook(struct net_server *s, void (*hook)(void *ctx), void *ctx)
{
	s->reload_hook = hook;
	s->reload_ctx = ctx;
}

void net_server_set_stop_hook(struct net_server *s, void (*hook)(void *ctx), void *ctx)
{
	s->stop_hook = hook;
	s->stop_ctx = ctx;
}

/* Give the memory that sessions freed back to the system. glibc keeps freed blocks in the
 * loop threads' arenas and returns only the top of an arena's top heap by itself: the views
 * of 20 sessions on a mailbox of 100,000 messages (6 MB each) left 46 MB behind. */
static void net_loop_trim_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	malloc_trim(0);
}

void net_loop_trim_soon(struct net_loop *loop)
{
	if (loop->trim_ev == NULL || evtimer_pending(loop->trim_ev, NULL))
		return;
	/* Not at once: a client that reconnects (and SELECTs the same mailbox again) would find
	 * the pages gone and fault them in anew. */
	struct timeval tv = {.tv_sec = NET_TRIM_DELAY, .tv_usec = 0};
	evtimer_add(loop->trim_ev, &tv);
}

static void net_loop_shutdown_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct net_loop *loop = arg;
	loop->stopping = true;
	event_del(loop->accept_resume_ev);
	event_del(loop->trim_ev);
	for (size_t j = 0; j < NET_LISTENERS_MAX; j++) {
		if (loop->listeners[j] != NULL) {
			event_free(loop->listeners[j]);
			loop->listeners[j] = NULL;
		}
	}
	if (loop->conn_structs == 0) {
		event_base_loopexit(loop->base, NULL);
		return;
	}
	/* Sessions may close (and unlink themselves) while we walk: take next first. */
	for (struct conn *c = loop->conns, *next; c != NULL; c = next) {
		next = c->next;
		if (c->cb != NULL && c->cb->on_shutdown != NULL)
			c->cb->on_shutdown(c, c->ctx);
		else
			conn_close(c);
	}
	struct timeval deadline = {30, 0};
	event_base_loopexit(loop->base, &deadline);
}

static void *net_loop_thread(void *arg)
{
	struct net_loop *loop = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	event_base_dispatch(loop->base);
	dns_resolver_free(&loop->dns); /* on this thread, the loop stopped */
	return NULL;
}

static void net_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct net_server *s = arg;
	if (sig == SIGHUP) {
		log_info("event=reload");
		if (s->reload_hook != NULL)
			s->reload_hook(s->reload_ctx);
		return;
	}
	log_info("event=shutdown signal=%d", (int)sig);
	if (s->stop_hook != NULL)
		s->stop_hook(s->stop_ctx);
	for (unsigned i = 0; i < s->thread_count; i++)
		event_active(s->loops[i].shutdown_ev, EV_READ, 0);
	event_base_loopbreak(s->main_base);
}

int net_server_run(struct net_server *s)
{
	signal(SIGPIPE, SIG_IGN);
	for (unsigned i = 0; i < s->thread_count; i++) {
		struct net_loop *loop = &s->loops[i];
		loop->shutdown_ev = event_new(loop->base, -1, 0, net_loop_shutdown_cb, loop);
		loop->accept_resume_ev = evtimer_new(loop->base, net_loop_resume_accept, loop);
		loop->trim_ev = evtimer_new(loop->base, net_loop_trim_cb, loop);
		for (size_t j = 0; j < s->listen_count; j++) {
			struct net_accept_ctx *ctx = xcalloc(1, sizeof(*ctx));
			ctx->loop = loop;
			ctx->li = &s->listens[j];
			loop->accept_ctx[j] = ctx;
			loop->listeners[j] = event_new(loop->base, s->listens[j].fd,
			                               EV_READ | EV_PERSIST, net_accept_ready, ctx);
			if (loop->listeners[j] == NULL || event_add(loop->listeners[j], NULL) < 0) {
				log_error("cannot start listener on port %d", s->listens[j].port);
				return -1;
			}
		}
	}
	struct event *sigs[3];
	const int signums[3] = {SIGTERM, SIGINT, SIGHUP};
	for (int i = 0; i < 3; i++) {
		sigs[i] = evsignal_new(s->main_base, signums[i], net_signal_cb, s);
		event_add(sigs[i], NULL);
	}
	for (unsigned i = 0; i < s->thread_count; i++)
		if (pthread_create(&s->loops[i].thread, NULL, net_loop_thread, &s->loops[i]) != 0)
			log_fatal("cannot start loop thread");
	event_base_dispatch(s->main_base);
	for (unsigned i = 0; i < s->thread_count; i++)
		pthread_join(s->loops[i].thread, NULL);
	for (int i = 0; i < 3; i++)
		event_free(sigs[i]);
	return 0;
}

unsigned net_server_loop_count(const struct net_server *s)
{
	return s->thread_count;
}

struct net_loop *net_server_loop(struct net_server *s, unsigned index)
{
	ASSERT(index < s->thread_count);
	return &s->loops[index];
}

struct net_loop_call_ctx {
	void (*fn)(void *ctx);
	void *ctx;
};

static void net_loop_call_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct net_loop_call_ctx call = *(struct net_loop_call_ctx *)arg;
	free(arg);
	call.fn(call.ctx);
}

void net_loop_call(struct net_loop *loop, void (*fn)(void *ctx), void *ctx)
{
	struct net_loop_call_ctx *call = xmalloc(sizeof(*call));
	call->fn = fn;
	call->ctx = ctx;
	struct timeval now = {0, 0};
	if (event_base_once(loop->base, -1, EV_TIMEOUT, net_loop_call_cb, call, &now) < 0)
		log_fatal("libevent: cannot schedule a call on a loop");
}

/* A loop without a server: no listeners, no signals; its connections are outbound ones
 * (conn_connect) and nothing counts them against the server's limits. */
struct net_loop *net_loop_new(void)
{
	if (evthread_use_pthreads() < 0)
		log_fatal("libevent: no pthreads support");
	signal(SIGPIPE, SIG_IGN); /* a peer that hung up is an error return, not a signal */
	struct net_loop *loop = xcalloc(1, sizeof(*loop));
	loop->base = event_base_new();
	if (loop->base == NULL)
		log_fatal("libevent: cannot create an event base");
	return loop;
}

void net_loop_free(struct net_loop **loop)
{
	if (*loop == NULL)
		return;
	ASSERT((*loop)->server == NULL);
	dns_resolver_free(&(*loop)->dns);
	event_base_free((*loop)->base);
	free(*loop);
	*loop = NULL;
}

int net_loop_run(struct net_loop *loop)
{
	return event_base_dispatch(loop->base) < 0 ? -1 : 0;
}

void net_loop_run_once(struct net_loop *loop)
{
	event_base_loop(loop->base, EVLOOP_ONCE);
}

void net_loop_stop(struct net_loop *loop)
{
	event_base_loopbreak(loop->base);
}
