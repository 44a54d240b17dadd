/* Connections over libevent bufferevents (see conn.h). TLS is an OpenSSL bufferevent: over
 * the socket for implicit TLS, or a filter over the plain one after STARTTLS. */
#include "net/net_private.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg);

static void conn_maybe_free(struct conn *c)
{
	if (!c->dead || c->holds > 0)
		return;
	event_free(c->wake_ev);
	event_free(c->timer_ev);
	event_free(c->close_ev);
	event_free(c->writable_ev);
	event_free(c->deadline_ev);
	event_free(c->tls_deadline_ev);
	event_free(c->evict_ev);
	event_free(c->write_ev);
	if (c->connect_ev != NULL)
		event_free(c->connect_ev);
	free(c->line);
	struct net_loop *loop = c->loop;
	free(c);
	net_loop_conn_freed(loop);
}

/* The connection is over: drop the socket, tell the engine once. */
/* Seconds on a clock that does not jump (the write timeout's). */
static time_t conn_mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void conn_destroy(struct conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	if (c->bev != NULL) {
		/* The buffers may outlive this structure (libevent finalizes lazily). */
		struct bufferevent *under = bufferevent_get_underlying(c->bev);
		evbuffer_remove_cb(bufferevent_get_output(c->bev), conn_output_cb, c);
		if (under != NULL)
			evbuffer_remove_cb(bufferevent_get_output(under), conn_output_cb, c);
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	conn_compress_free(c);
	if (c->connect_fd >= 0) {
		close(c->connect_fd);
		c->connect_fd = -1;
	}
	if (c->connect_ev != NULL)
		event_del(c->connect_ev);
	tls_ctx_unref(&c->tls);
	evtimer_del(c->timer_ev);
	event_del(c->close_ev);
	event_del(c->writable_ev);
	c->writable_wanted = c->drained_pending = false;
	evtimer_del(c->deadline_ev);
	evtimer_del(c->tls_deadline_ev);
	event_del(c->evict_ev);
	evtimer_del(c->write_ev);
	net_loop_conn_removed(c->loop, c);
	c->holds++;
	if (c->cb != NULL && c->cb->on_closed != NULL)
		c->cb->on_closed(c, c->ctx);
	c->holds--;
	conn_maybe_free(c);
}

static void conn_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	c->holds++;
	if (c->cb != NULL && c->cb->on_wake != NULL)
		c->cb->on_wake(c, c->ctx);
	c->holds--;
	conn_maybe_free(c);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	if (!c->dead && c->cb->on_timer != NULL)
		c->cb->on_timer(c, c->ctx);
}

/* Octets not yet handed to the kernel: with TLS over a filter, also those the filter has
 * already encrypted into the socket bufferevent below it; with COMPRESS, one more while
 * deflated output awaits its flush (held in zlib). */
static size_t conn_unsent(const struct conn *c)
{
	if (c->bev == NULL)
		return 0;
	size_t n = evbuffer_get_length(bufferevent_get_output(c->bev));
	if (conn_compress_pending(c))
		n++;
	struct bufferevent *under = bufferevent_get_underlying(c->bev);
	if (under != NULL)
		n += evbuffer_get_length(bufferevent_get_output(under));
	return n;
}

/* conn_wait_writable(): the event runs on_writable from the loop. */
static void conn_writable_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	if (c->dead || c->closing)
		return;
	size_t unsent = conn_unsent(c);
	if (c->drained_pending && unsent == 0) {
		c->drained_pending = false;
		if (c->cb != NULL && c->cb->on_drained != NULL)
			c->cb->on_drained(c, c->ctx);
		if (c->dead || c->closing)
			return;
		unsent = conn_unsent(c);
	}
	if (!c->writable_wanted || unsent > CONN_OUTPUT_LOW)
		return; /* an output buffer callback activates us again */
	c->writable_wanted = false;
	if (c->cb != NULL && c->cb->on_writable != NULL)
		c->cb->on_writable(c, c->ctx);
}

/* What the peer has taken of our output so far, roughly: the octets the socket took less
 * those still in the kernel's send queue (TIOCOUTQ), which go only once acknowledged. (Over
 * implicit TLS the first count is of cleartext, the second of records, so the value is off
 * by the records' overhead; only its growth between two looks matters.) False when the
 * queue cannot be read. */
static bool conn_acked(struct conn *c, int64_t *acked_r)
{
	struct bufferevent *under = bufferevent_get_underlying(c->bev);
	int fd = (int)bufferevent_getfd(under != NULL ? under : c->bev);
	int n = 0;
	if (fd < 0 || ioctl(fd, TIOCOUTQ, &n) < 0 || n < 0)
		return false;
	*acked_r = (int64_t)c->write_sent - n;
	return true;
}

/* Look at what the peer took: true when it took more since the last look. */
static bool conn_peer_took_more(struct conn *c)
{
	int64_t acked;
	if (!conn_acked(c, &acked))
		return false;
	bool more = c->write_acked_known && acked > c->write_acked;
	c->write_acked = acked;
	c->write_acked_known = true;
	return more;
}

/* The next look at a waiting output: when the timeout would end (left seconds from now), or
 * sooner, at a quarter of the timeout, so that when the peer took something (seen only at
 * these looks) is known to that precision and a client that stopped reading is cut at most
 * a quarter late. */
static void conn_arm_write_check(struct conn *c, unsigned left)
{
	unsigned step = c->write_timeout / 4 > 0 ? c->write_timeout / 4 : 1;
	struct timeval tv = {left < step ? left : step, 0};
	evtimer_add(c->write_ev, &tv);
}

/* The write timeout's bookkeeping, for each change of an output buffer: output queued while
 * everything had been sent starts a new wait (and arms the timer unless it runs); the
 * socket taking output (a drain of the lowest buffer: the socket's, or the one under a TLS
 * filter, whose drain is the only progress that reaches the client) is progress. Moving
 * output from a TLS filter into the layer below is not. */
static void conn_note_output(struct conn *c, struct evbuffer *buf,
                             const struct evbuffer_cb_info *info)
{
	if (info->n_added > 0) {
		if (c->write_idle) {
			c->write_idle = false;
			c->write_progress = conn_mono_now();
		}
		if (!evtimer_pending(c->write_ev, NULL)) {
			(void)conn_peer_took_more(c); /* the mark to compare with */
			conn_arm_write_check(c, c->write_timeout);
		}
	}
	if (info->n_deleted == 0)
		return;
	struct bufferevent *under = bufferevent_get_underlying(c->bev);
	if (buf != bufferevent_get_output(under != NULL ? under : c->bev))
		return;
	c->write_sent += info->n_deleted;
	c->write_progress = conn_mono_now();
	if (conn_unsent(c) == 0)
		c->write_idle = true;
}

/* The write timeout ran out (conn_set_write_timeout): unless everything was sent meanwhile,
 * or the socket took some of it since, or the peer acknowledged some of what the kernel
 * holds (with a large socket buffer a slow reader frees room, and so lets us write, only
 * now and then), the client has stopped reading; the output can never leave, so the
 * connection is dropped at once (conn_close() would wait for it). */
static void conn_write_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	if (c->dead || c->bev == NULL || c->write_timeout == 0)
		return;
	size_t unsent = conn_unsent(c);
	if (unsent == 0) {
		c->write_idle = true;
		return; /* the next output arms the timer again */
	}
	time_t now = conn_mono_now();
	if (conn_peer_took_more(c))
		c->write_progress = now;
	time_t stalled = now - c->write_progress;
	if (stalled < (time_t)c->write_timeout) {
		conn_arm_write_check(c, c->write_timeout - (unsigned)stalled);
		return;
	}
	log_info("session=%s event=disconnect reason=write-timeout ip=%s seconds=%u unsent=%zu",
	         c->id, c->ip, c->write_timeout, unsent);
	if (c->error[0] == '\0')
		snprintf(c->error, sizeof(c->error), "write timed out");
	/* Reset, not closed: a plain close leaves the unsent octets to the kernel, which
	 * would keep the socket and probe the client's closed window for minutes. */
	evutil_socket_t sock = bufferevent_getfd(c->bev);
	struct linger reset = {.l_onoff = 1, .l_linger = 0};
	if (sock >= 0)
		(void)setsockopt(sock, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
	conn_destroy(c);
}

/* An output evbuffer changed (of the top bufferevent, or of the socket one under a TLS
 * filter, whose drain the filter reports only to itself): when a drain took the unsent
 * output to the low-water mark, schedule on_writable (and on_drained when it is empty). Runs inside
 * libevent, so it only activates an event. */
static void conn_output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct conn *c = arg;
	if (!c->dead && c->write_timeout > 0 && c->bev != NULL)
		conn_note_output(c, buf, info);
	if (info->n_deleted == 0 || c->dead ||
	    (!c->writable_wanted && !c->drained_pending && !c->output_blocked))
		return;
	size_t unsent = conn_unsent(c);
	if (c->output_blocked && unsent <= CONN_OUTPUT_LOW) {
		c->output_blocked = false;
		event_active(c->close_ev, EV_READ, 0); /* reads again, runs on_input */
	}
	if ((c->writable_wanted && unsent <= CONN_OUTPUT_LOW) ||
	    (c->drained_pending && unsent == 0))
		event_active(c->writable_ev, EV_WRITE, 0);
}

/* Back-pressure for clients that never read: while an accepted connection's unsent output
 * is at CONN_OUTPUT_HIGH, its input is neither read nor handed to the protocol, so a client
 * that pipelines small commands (NOOP, RSET, bad ones) without reading the replies cannot
 * make the server queue replies without bound; it stalls on its own full socket instead.
 * Reading resumes once the output is at CONN_OUTPUT_LOW (conn_output_cb). Outbound
 * connections are not held: their peer's replies may come while our DATA is still queued.
 * True when input is held now. */
static bool conn_input_held(struct conn *c)
{
	if (!c->counted || c->bev == NULL)
		return false;
	if (!c->output_blocked && conn_unsent(c) < CONN_OUTPUT_HIGH)
		return false;
	if (!c->output_blocked) {
		c->output_blocked = true;
		log_debug("session=%s event=input-held unsent=%zu", c->id, conn_unsent(c));
	}
	bufferevent_disable(c->bev, EV_READ);
	return true;
}

static void conn_close_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	struct conn *c = arg;
	if (what & EV_TIMEOUT) {
		/* Closing: wait (polling, since the layer below a TLS filter reports its drain to
		 * the filter, not to us) until our last words are out, or the deadline passed. */
		struct timeval now;
		evutil_gettimeofday(&now, NULL);
		if (conn_unsent(c) == 0 || evutil_timercmp(&now, &c->close_deadline, >)) {
			conn_destroy(c);
			return;
		}
		struct timeval again = {0, 20000};
		event_add(c->close_ev, &again);
	} else {
		/* conn_resume(), or the output drained after conn_input_held(): run the input
		 * handler once. */
		if (c->dead || c->paused || c->closing || conn_input_held(c))
			return;
		if (c->bev != NULL)
			bufferevent_enable(c->bev, EV_READ);
		if (c->cb->on_input != NULL)
			c->cb->on_input(c, c->ctx);
	}
}

static void conn_deadline_cb(evutil_socket_t fd, short what, void *arg);
static void conn_tls_deadline_cb(evutil_socket_t fd, short what, void *arg);
static void conn_arm_tls_deadline(struct conn *c);
static void conn_evict_cb(evutil_socket_t fd, short what, void *arg);

static void conn_setup_bev(struct conn *c)
{
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	evbuffer_add_cb(bufferevent_get_output(c->bev), conn_output_cb, c);
	/* libevent writes at most 16 KiB per readiness event by default: large responses
	 * (FETCH, RETR) would take a loop turn per 16 KiB. */
	bufferevent_set_max_single_write(c->bev, CONN_OUTPUT_LOW);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (c->timeout > 0) {
		struct timeval tv = {c->timeout, 0};
		bufferevent_set_timeouts(c->bev, &tv, NULL);
	}
}

static struct conn *conn_alloc(struct net_loop *loop, const char *ip, int local_port)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->local_port = local_port;
	c->connect_fd = -1;
	snprintf(c->ip, sizeof(c->ip), "%s", ip);
	unsigned char rnd[6];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(c->id + 2 * i, 3, "%02x", rnd[i]);
	return c;
}

static void conn_new_events(struct conn *c)
{
	struct event_base *base = net_loop_base(c->loop);
	c->wake_ev = event_new(base, -1, 0, conn_wake_cb, c);
	c->timer_ev = evtimer_new(base, conn_timer_cb, c);
	c->close_ev = event_new(base, -1, 0, conn_close_cb, c);
	c->writable_ev = event_new(base, -1, 0, conn_writable_cb, c);
	c->deadline_ev = evtimer_new(base, conn_deadline_cb, c);
	c->tls_deadline_ev = evtimer_new(base, conn_tls_deadline_cb, c);
	c->evict_ev = event_new(base, -1, 0, conn_evict_cb, c);
	c->write_ev = evtimer_new(base, conn_write_deadline_cb, c);
}

struct conn *conn_new(struct net_loop *loop, int fd, const char *ip, int local_port,
                      struct tls_ctx *tls, bool tls_now)
{
	struct event_base *base = net_loop_base(loop);
	struct conn *c = conn_alloc(loop, ip, local_port);
	c->tls = tls != NULL ? tls_ctx_ref(tls) : NULL;
	if (tls_now) {
		SSL *ssl = c->tls != NULL ? SSL_new(tls_ctx_ssl_ctx(c->tls)) : NULL;
		if (ssl != NULL)
			c->bev = bufferevent_openssl_socket_new(
			    base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		c->tls_pending = true;
	} else {
		c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	if (c->bev == NULL) {
		close(fd);
		tls_ctx_unref(&c->tls);
		free(c);
		return NULL;
	}
	conn_new_events(c);
	conn_setup_bev(c);
	net_loop_conn_added(loop, c);
	return c;
}

void conn_set_callbacks(struct conn *c, const struct conn_callbacks *cb, void *ctx)
{
	c->cb = cb;
	c->ctx = ctx;
}

/* A command line whose first octet came an idle timeout ago and is still not complete: a
 * client that trickles an octet now and then (each resets the idle timer) is cut here, as
 * by Postfix's per-request deadline. Checked when input arrives (a silent client meets the
 * idle timer itself). */
static bool conn_request_overdue(struct conn *c)
{
	if (c->partial_since == 0 || c->timeout == 0)
		return false;
	return time(NULL) - c->partial_since >= (time_t)c->timeout;
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct conn *c = arg;
	if (c->paused || c->closing || c->tls_pending || c->cb->on_input == NULL)
		return;
	if (conn_input_held(c))
		return;
	if (conn_request_overdue(c)) {
		log_info("session=%s event=request-deadline ip=%s seconds=%u", c->id, c->ip,
		         c->timeout);
		c->partial_since = 0;
		if (c->cb->on_timeout != NULL)
			c->cb->on_timeout(c, c->ctx);
		else
			conn_close(c);
		return;
	}
	c->cb->on_input(c, c->ctx);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct conn *c = arg;
	if (c->closing) {
		if (conn_unsent(c) == 0)
			conn_destroy(c);
		return;
	}
	if (c->cb == NULL || c->cb->on_drained == NULL)
		return;
	if (conn_unsent(c) > 0) {
		/* A TLS filter has moved our output into the socket layer below it: "drained"
		 * only once that is empty too (conn_output_cb sees it). */
		c->drained_pending = true;
		return;
	}
	c->cb->on_drained(c, c->ctx);
}

/* A client handshake finished: was the certificate authenticated, and how. */
static int conn_tls_failure_kind(long vr, int mode);

/* The local address of a connected outbound socket, for conn_local_ip(). */
static void conn_note_local_ip(struct conn *c, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	c->local_ip[0] = '\0';
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	char host[INET6_ADDRSTRLEN];
	if (getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), NULL, 0, NI_NUMERICHOST) ==
	    0)
		snprintf(c->local_ip, sizeof(c->local_ip), "%s", host);
}

static void conn_tls_describe_verification(struct conn *c, SSL *ssl)
{
	long vr = SSL_get_verify_result(ssl);
	X509 *peer = SSL_get0_peer_certificate(ssl);
	c->tls_verified = false;
	if (peer == NULL) {
		snprintf(c->tls_verify, sizeof(c->tls_verify), "not verified: no certificate");
		c->tls_failure = CONN_TLS_FAIL_OTHER;
		return;
	}
	if (vr != X509_V_OK) {
		snprintf(c->tls_verify, sizeof(c->tls_verify), "not verified: %s",
		         X509_verify_cert_error_string(vr));
		c->tls_failure = conn_tls_failure_kind(vr, c->tls_verify_mode);
		return;
	}
	c->tls_verified = true;
	uint8_t usage, selector, mtype;
	if (c->tls_verify_mode == CONN_TLS_VERIFY_DANE &&
	    SSL_get0_dane_authority(ssl, NULL, NULL) >= 0 &&
	    SSL_get0_dane_tlsa(ssl, &usage, &selector, &mtype, NULL, NULL) >= 0)
		snprintf(c->tls_verify, sizeof(c->tls_verify), "verified (DANE TLSA %u %u %u)",
		         usage, selector, mtype);
	else
		snprintf(c->tls_verify, sizeof(c->tls_verify), "verified (CA chain, host name)");
}

static void conn_tls_describe(struct conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	if (ssl == NULL)
		return;
	int alg_bits = 0;
	int bits = SSL_get_cipher_bits(ssl, &alg_bits);
	snprintf(c->tls_desc, sizeof(c->tls_desc), "%s with cipher %s (%d/%d bits)",
	         SSL_get_version(ssl), SSL_get_cipher_name(ssl), bits, alg_bits);
	if (c->client_tls)
		conn_tls_describe_verification(c, ssl);
}

/* What a failed client handshake's verification result means (TLS-RPT, RFC 8460 §4.3). */
static int conn_tls_failure_kind(long vr, int mode)
{
	switch (vr) {
	case X509_V_OK:
		return CONN_TLS_FAIL_HANDSHAKE;
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return CONN_TLS_FAIL_EXPIRED;
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		return CONN_TLS_FAIL_HOST;
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED:
		return mode == CONN_TLS_VERIFY_DANE ? CONN_TLS_FAIL_DANE : CONN_TLS_FAIL_UNTRUSTED;
	case X509_V_ERR_DANE_NO_MATCH:
		return CONN_TLS_FAIL_DANE;
	default:
		return CONN_TLS_FAIL_OTHER;
	}
}

/* Remember why the connection ends (conn_error), unless a reason is already known. */
static void conn_note_error(struct conn *c, short what)
{
	if (c->error[0] != '\0')
		return;
	int err = EVUTIL_SOCKET_ERROR();
	if (c->tls_pending && c->client_tls) {
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
		long vr = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
		unsigned long e = bufferevent_get_openssl_error(c->bev);
		char detail[160] = "";
		c->tls_failure = conn_tls_failure_kind(
		    c->tls_verify_mode != CONN_TLS_VERIFY_NONE ? vr : X509_V_OK,
		    c->tls_verify_mode);
		if (vr != X509_V_OK && c->tls_verify_mode != CONN_TLS_VERIFY_NONE)
			snprintf(detail, sizeof(detail), "certificate verification failed: %s",
			         X509_verify_cert_error_string(vr));
		else if (e != 0)
			ERR_error_string_n(e, detail, sizeof(detail));
		else if (what & BEV_EVENT_EOF)
			snprintf(detail, sizeof(detail), "connection closed by peer");
		else
			snprintf(detail, sizeof(detail), "%s", strerror(err));
		ERR_clear_error();
		snprintf(c->error, sizeof(c->error), "TLS handshake failed: %s", detail);
		return;
	}
	if (what & BEV_EVENT_EOF)
		snprintf(c->error, sizeof(c->error), "connection closed by peer");
	else if (err != 0)
		snprintf(c->error, sizeof(c->error), "%s", strerror(err));
	else
		snprintf(c->error, sizeof(c->error), "connection error");
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct conn *c = arg;
	if (what & BEV_EVENT_CONNECTED) {
		c->tls_pending = false;
		evtimer_del(c->tls_deadline_ev);
		c->tls_active = true;
		conn_tls_describe(c);
		if (c->cb->on_tls_ready != NULL)
			c->cb->on_tls_ready(c, c->ctx);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		bufferevent_enable(c->bev, EV_READ);
		if (c->closing) {
			conn_destroy(c);
			return;
		}
		if (c->cb->on_timeout != NULL)
			c->cb->on_timeout(c, c->ctx);
		else
			conn_close(c);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		conn_note_error(c, what);
		if (c->tls_pending)
			log_info("session=%s event=tls-failed ip=%s error=\"%s\"", c->id, c->ip,
			         c->error);
		conn_destroy(c);
	}
}

/* The input the protocol reads: the inflated one under COMPRESS, filled up to want octets
 * (what the read needs; never more plus one step, whatever the peer's compressed input
 * inflates to). NULL when there is none (or the compressed stream broke). */
static struct evbuffer *conn_input(struct conn *c, size_t want)
{
	if (c->bev == NULL || c->dead)
		return NULL;
	if (c->z == NULL)
		return bufferevent_get_input(c->bev);
	if (conn_compress_fill(c, want) < 0)
		return NULL;
	return conn_compress_input(c);
}

/* Octets a chunked read (conn_peek, conn_read_bytes) inflates ahead under COMPRESS. */
#define CONN_INFLATE_CHUNK ((size_t)64 * 1024)

/* Input holds the start of a line (or the rest of one being dropped): remember since when. */
static void conn_note_partial(struct conn *c)
{
	if (c->partial_since == 0 && c->bev != NULL &&
	    evbuffer_get_length(bufferevent_get_input(c->bev)) + (c->discarding ? 1 : 0) > 0)
		c->partial_since = time(NULL);
}

int conn_read_line(struct conn *c, size_t max, char **line_r, size_t *len_r)
{
	struct evbuffer *in = conn_input(c, max);
	if (in == NULL)
		return 0;
	for (;;) {
		/* under COMPRESS, inflate up to max (more may be buffered after a drain) */
		if (c->z != NULL && conn_compress_fill(c, max) < 0)
			return 0;
		struct evbuffer_ptr p = evbuffer_search(in, "\n", 1, NULL);
		if (c->discarding) {
			if (p.pos < 0) {
				evbuffer_drain(in, evbuffer_get_length(in));
				/* under COMPRESS, more may inflate from the raw input */
				if (c->z != NULL && conn_compress_fill(c, max) > 0)
					continue;
				conn_note_partial(c);
				return 0;
			}
			evbuffer_drain(in, (size_t)p.pos + 1);
			c->discarding = false;
			continue;
		}
		if (p.pos < 0) {
			if (evbuffer_get_length(in) >= max) {
				evbuffer_drain(in, evbuffer_get_length(in));
				c->discarding = true;
				conn_note_partial(c);
				return -1;
			}
			conn_note_partial(c);
			return 0;
		}
		size_t n = (size_t)p.pos + 1;
		c->partial_since = 0;
		if (n > max) {
			evbuffer_drain(in, n);
			return -1;
		}
		if (c->line_cap < n) {
			c->line = xrealloc(c->line, n);
			c->line_cap = n;
		}
		evbuffer_remove(in, c->line, n);
		n--; /* LF */
		if (n > 0 && c->line[n - 1] == '\r')
			n--;
		c->line[n] = '\0';
		*line_r = c->line;
		*len_r = n;
		return 1;
	}
}

size_t conn_read_bytes(struct conn *c, void *dst, size_t max)
{
	struct evbuffer *in = conn_input(c, max < CONN_INFLATE_CHUNK ? max : CONN_INFLATE_CHUNK);
	if (in == NULL)
		return 0;
	int n = evbuffer_remove(in, dst, max);
	if (n > 0)
		c->partial_since =
		    0; /* bytes, not a line: DATA and literals have their own rules */
	return n < 0 ? 0 : (size_t)n;
}

size_t conn_peek(struct conn *c, const unsigned char **data_r)
{
	struct evbuffer *in = conn_input(c, CONN_INFLATE_CHUNK);
	if (in == NULL)
		return 0;
	struct evbuffer_iovec v;
	if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
		return 0;
	*data_r = v.iov_base;
	return v.iov_len;
}

void conn_consume(struct conn *c, size_t n)
{
	if (c->bev == NULL)
		return;
	if (n > 0)
		c->partial_since = 0;
	evbuffer_drain(c->z != NULL ? conn_compress_input(c) : bufferevent_get_input(c->bev), n);
}

size_t conn_input_length(struct conn *c)
{
	if (c->bev == NULL)
		return 0;
	size_t n = evbuffer_get_length(bufferevent_get_input(c->bev));
	/* under COMPRESS: inflated octets, and at least one more while raw ones wait */
	if (c->z != NULL)
		n = evbuffer_get_length(conn_compress_input(c)) + (n > 0);
	return n;
}

void conn_discard_input(struct conn *c)
{
	if (c->bev == NULL)
		return;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	if (c->z != NULL)
		evbuffer_drain(conn_compress_input(c), evbuffer_get_length(conn_compress_input(c)));
	c->discarding = false;
	c->partial_since = 0;
}

void conn_write(struct conn *c, const void *data, size_t len)
{
	if (c->bev == NULL || c->dead)
		return;
	if (c->z != NULL)
		conn_compress_write(c, data, len);
	else
		bufferevent_write(c->bev, data, len);
}

void conn_printf(struct conn *c, const char *fmt, ...)
{
	if (c->bev == NULL || c->dead)
		return;
	va_list ap;
	va_start(ap, fmt);
	if (c->z == NULL) {
		evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	} else {
		/* most lines fit on the stack; a longer one is formatted again, in full */
		char small[512];
		va_list again;
		va_copy(again, ap);
		int n = vsnprintf(small, sizeof(small), fmt, ap);
		if (n >= 0 && (size_t)n < sizeof(small)) {
			conn_compress_write(c, small, (size_t)n);
		} else if (n >= 0) {
			struct evbuffer *tmp = evbuffer_new();
			if (tmp == NULL)
				log_panic("out of memory");
			evbuffer_add_vprintf(tmp, fmt, again);
			size_t len = evbuffer_get_length(tmp);
			conn_compress_write(c, evbuffer_pullup(tmp, -1), len);
			evbuffer_free(tmp);
		}
		va_end(again);
	}
	va_end(ap);
}

size_t conn_output_length(struct conn *c)
{
	return conn_unsent(c);
}

bool conn_output_full(struct conn *c)
{
	return conn_unsent(c) >= CONN_OUTPUT_HIGH;
}

void conn_wait_writable(struct conn *c)
{
	if (c->dead || c->closing || c->writable_wanted)
		return;
	c->writable_wanted = true;
	if (conn_unsent(c) <= CONN_OUTPUT_LOW) {
		/* A zero timeout, not event_active(): timers run after the next poll for I/O,
		 * so a command that yields this way cannot starve input and other sessions. */
		struct timeval now = {0, 0};
		event_add(c->writable_ev, &now);
	}
}

void conn_release_memory_soon(struct conn *c)
{
	if (c->loop != NULL)
		net_loop_trim_soon(c->loop);
}

void conn_pause(struct conn *c)
{
	c->paused = true;
	if (c->bev != NULL)
		bufferevent_disable(c->bev, EV_READ);
}

void conn_resume(struct conn *c)
{
	if (c->dead || c->closing)
		return;
	c->paused = false;
	bufferevent_enable(c->bev, EV_READ);
	event_active(c->close_ev, EV_READ, 0);
}

int conn_start_tls(struct conn *c)
{
	if (c->tls == NULL || c->tls_active || c->tls_pending || c->bev == NULL || c->z != NULL)
		return -1;
	SSL *ssl = SSL_new(tls_ctx_ssl_ctx(c->tls));
	if (ssl == NULL)
		return -1;
	/* RFC 3207 §4 / smuggling: nothing sent before the handshake may be executed after it. */
	conn_discard_input(c);
	struct bufferevent *under = c->bev;
	struct bufferevent *top = bufferevent_openssl_filter_new(
	    net_loop_base(c->loop), under, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (top == NULL) {
		SSL_free(ssl);
		return -1;
	}
	c->bev = top;
	c->tls_pending = true;
	conn_setup_bev(c);
	conn_arm_tls_deadline(c);
	return 0;
}

bool conn_is_tls(const struct conn *c)
{
	return c->tls_active;
}

const char *conn_tls_description(const struct conn *c)
{
	return c->tls_active ? c->tls_desc : "";
}

void conn_set_timeout(struct conn *c, unsigned seconds)
{
	c->timeout = seconds;
	if (c->bev == NULL)
		return;
	struct timeval tv = {seconds, 0};
	bufferevent_set_timeouts(c->bev, seconds > 0 ? &tv : NULL, NULL);
}

void conn_set_timer(struct conn *c, unsigned ms)
{
	evtimer_del(c->timer_ev);
	if (ms == 0 || c->dead)
		return;
	struct timeval tv = {ms / 1000, (long)(ms % 1000) * 1000};
	evtimer_add(c->timer_ev, &tv);
}

void conn_wake(struct conn *c)
{
	event_active(c->wake_ev, EV_READ, 0);
}

void conn_close(struct conn *c)
{
	if (c->dead || c->closing)
		return;
	c->closing = true;
	conn_compress_flush(c); /* the last words must be decodable */
	if (c->bev != NULL)
		bufferevent_disable(c->bev, EV_READ);
	/* Give a slow reader 10 seconds to take our last words, then drop it. */
	struct timeval now, grace = {10, 0}, tv = {0, 0};
	evutil_gettimeofday(&now, NULL);
	evutil_timeradd(&now, &grace, &c->close_deadline);
	event_add(c->close_ev, &tv);
}

struct net_loop *conn_loop(const struct conn *c)
{
	return c->loop;
}

const char *conn_remote_ip(const struct conn *c)
{
	return c->ip;
}

int conn_local_port(const struct conn *c)
{
	return c->local_port;
}

const char *conn_id(const struct conn *c)
{
	return c->id;
}

void conn_hold(struct conn *c)
{
	c->holds++;
}

void conn_unhold(struct conn *c)
{
	ASSERT(c->holds > 0);
	c->holds--;
	conn_maybe_free(c);
}

bool conn_is_closed(const struct conn *c)
{
	return c->dead;
}

/* The login deadline passed: the protocol says goodbye (its on_timeout), unless a TLS
 * handshake is still running, over which nothing can be said. */
static void conn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	if (c->dead || c->closing)
		return;
	log_info("session=%s event=disconnect reason=login-timeout ip=%s", c->id, c->ip);
	if (c->tls_pending || c->cb == NULL || c->cb->on_timeout == NULL) {
		conn_destroy(c);
		return;
	}
	c->cb->on_timeout(c, c->ctx);
}

static void conn_tls_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	if (c->dead || !c->tls_pending)
		return;
	log_info("session=%s event=disconnect reason=tls-handshake-timeout ip=%s", c->id, c->ip);
	if (c->error[0] == '\0')
		snprintf(c->error, sizeof(c->error), "TLS handshake timed out");
	conn_destroy(c);
}

static void conn_arm_tls_deadline(struct conn *c)
{
	evtimer_del(c->tls_deadline_ev);
	if (c->tls_timeout == 0 || !c->tls_pending || c->dead)
		return;
	struct timeval tv = {c->tls_timeout, 0};
	evtimer_add(c->tls_deadline_ev, &tv);
}

void conn_set_deadline(struct conn *c, unsigned seconds)
{
	evtimer_del(c->deadline_ev);
	if (seconds == 0 || c->dead)
		return;
	struct timeval tv = {seconds, 0};
	evtimer_add(c->deadline_ev, &tv);
}

void conn_clear_deadline(struct conn *c)
{
	evtimer_del(c->deadline_ev);
	if (!c->dead)
		net_loop_conn_authenticated(c->loop, c);
}

void conn_restart_login(struct conn *c)
{
	if (c->dead || c->closing)
		return;
	conn_set_deadline(c, net_loop_conn_unauthenticated(c->loop, c));
}

/* The total connection cap is reached and this is the oldest connection not logged in: it
 * makes room for a newcomer (server.c took it off the list and activated this event from
 * the accepting loop). The listener's busy reply, then close; during a TLS handshake
 * nothing can be said. */
static void conn_evict_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	if (c->dead || c->closing)
		return;
	log_info("session=%s event=disconnect reason=evicted ip=%s", c->id, c->ip);
	if (c->error[0] == '\0')
		snprintf(c->error, sizeof(c->error), "dropped for a newer connection");
	if (c->tls_pending || c->busy_reply == NULL) {
		conn_destroy(c);
		return;
	}
	conn_write(c, c->busy_reply, strlen(c->busy_reply));
	conn_close(c);
}

void conn_set_write_timeout(struct conn *c, unsigned seconds)
{
	c->write_timeout = seconds;
	c->write_progress = conn_mono_now();
	c->write_idle = conn_unsent(c) == 0;
	c->write_acked_known = false;
	evtimer_del(c->write_ev);
	if (seconds > 0 && !c->write_idle && !c->dead)
		conn_arm_write_check(c, seconds);
}

void conn_set_tls_timeout(struct conn *c, unsigned seconds)
{
	c->tls_timeout = seconds;
	conn_arm_tls_deadline(c);
}

/* ---- Outbound connections ---- */

static int conn_sockaddr(const char *ip, int port, struct sockaddr_storage *ss, socklen_t *len_r)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len_r = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len_r = sizeof(*s6);
		return 0;
	}
	return -1;
}

/* The socket became writable (connected, or the attempt failed), or the timeout passed. */
static void conn_connect_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	struct conn *c = arg;
	if (c->dead || !c->connecting)
		return;
	int err = 0;
	socklen_t len = sizeof(err);
	if (c->error[0] != '\0') {
		/* failed at once in conn_connect(): reported from here, never from inside it */
	} else if (what & EV_TIMEOUT) {
		snprintf(c->error, sizeof(c->error), "connect to %s: timed out", c->peer);
	} else if (getsockopt(c->connect_fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
		snprintf(c->error, sizeof(c->error), "connect to %s: %s", c->peer,
		         strerror(err != 0 ? err : errno));
	}
	if (c->error[0] != '\0') {
		c->connecting = false;
		conn_destroy(c);
		return;
	}
	c->bev =
	    bufferevent_socket_new(net_loop_base(c->loop), c->connect_fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		snprintf(c->error, sizeof(c->error), "connect to %s: out of memory", c->peer);
		c->connecting = false;
		conn_destroy(c);
		return;
	}
	conn_note_local_ip(c, c->connect_fd);
	c->connect_fd = -1; /* the bufferevent owns it now */
	c->connecting = false;
	conn_setup_bev(c);
	if (c->closing) {
		bufferevent_disable(c->bev, EV_READ);
		return;
	}
	if (c->cb != NULL && c->cb->on_connected != NULL)
		c->cb->on_connected(c, c->ctx);
}

/* Start the connect of c to ss (the attempt's outcome comes through conn_connect_cb). */
static void conn_connect_start(struct conn *c, const struct conn_connect_params *p,
                               const struct sockaddr_storage *ss, socklen_t sl,
                               const struct sockaddr_storage *local, socklen_t ll)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(c->error, sizeof(c->error), "socket: %s", strerror(errno));
		event_active(c->connect_ev, EV_WRITE, 0);
		return;
	}
	c->connect_fd = fd;
	int one = 1;
	if (ss->ss_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (ll > 0 && bind(fd, (const struct sockaddr *)local, ll) < 0) {
		snprintf(c->error, sizeof(c->error), "bind to %s: %s", p->local_ip,
		         strerror(errno));
		event_active(c->connect_ev, EV_WRITE, 0);
		return;
	}
	/* A UNIX-domain socket whose backlog is full answers EAGAIN: a failure, as refused. */
	if (connect(fd, (const struct sockaddr *)ss, sl) < 0 && errno != EINPROGRESS) {
		snprintf(c->error, sizeof(c->error), "connect to %s: %s", c->peer, strerror(errno));
		event_active(c->connect_ev, EV_WRITE, 0);
		return;
	}
	/* Writable means connected or failed (SO_ERROR tells). */
	event_assign(c->connect_ev, net_loop_base(c->loop), fd, EV_WRITE, conn_connect_cb, c);
	struct timeval tv = {p->timeout, 0};
	event_add(c->connect_ev, p->timeout > 0 ? &tv : NULL);
}

struct conn *conn_connect(struct net_loop *loop, const struct conn_connect_params *p,
                          const struct conn_callbacks *cb, void *ctx, const char **error_r)
{
	struct sockaddr_storage ss, local;
	socklen_t sl, ll = 0;
	bool unix_socket = p->unix_path != NULL && p->unix_path[0] != '\0';
	if (unix_socket) {
		struct sockaddr_un *su = (struct sockaddr_un *)&ss;
		memset(&ss, 0, sizeof(ss));
		size_t n = strlen(p->unix_path);
		if (n >= sizeof(su->sun_path)) {
			*error_r = "the socket path is too long";
			return NULL;
		}
		su->sun_family = AF_UNIX;
		memcpy(su->sun_path, p->unix_path, n + 1);
		sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	} else {
		if (p->port <= 0 || p->port > 65535) {
			*error_r = "port out of range";
			return NULL;
		}
		if (conn_sockaddr(p->ip, p->port, &ss, &sl) < 0) {
			*error_r = "not a numeric IP address";
			return NULL;
		}
		bool bind_local = p->local_ip != NULL && p->local_ip[0] != '\0';
		if (bind_local && (conn_sockaddr(p->local_ip, 0, &local, &ll) < 0 ||
		                   local.ss_family != ss.ss_family)) {
			*error_r =
			    "the local address is not a numeric IP address of the remote's family";
			return NULL;
		}
	}
	/* local_port holds the remote port for outbound connections (for log lines); 0 for a
	 * UNIX-domain socket. */
	struct conn *c = conn_alloc(loop, unix_socket ? "unix" : p->ip, unix_socket ? 0 : p->port);
	if (unix_socket)
		snprintf(c->peer, sizeof(c->peer), "unix:%s", p->unix_path);
	else
		snprintf(c->peer, sizeof(c->peer), "%s:%d", p->ip, p->port);
	conn_new_events(c);
	c->cb = cb;
	c->ctx = ctx;
	c->connecting = true;
	c->connect_ev = event_new(net_loop_base(loop), -1, 0, conn_connect_cb, c);
	net_loop_conn_added(loop, c);
	conn_connect_start(c, p, &ss, sl, &local, ll);
	return c;
}

const char *conn_error(const struct conn *c)
{
	return c->error;
}

/* ---- Client-side TLS ---- */

/* Set up DANE on ssl; returns the number of usable records added (0: none usable). */
static int conn_dane_setup(SSL *ssl, const struct conn_tls_client_params *p)
{
	if (SSL_dane_enable(ssl, p->host) <= 0)
		return -1;
	/* RFC 7672 §3.1.1: a DANE-EE(3) match authenticates the key; names are not checked. */
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	int usable = 0;
	for (size_t i = 0; i < p->tlsa_count; i++) {
		const struct conn_tlsa *t = &p->tlsa[i];
		if (t->usage != 2 && t->usage != 3)
			continue; /* RFC 7672 §3.1.3: PKIX-TA(0) and PKIX-EE(1) are unusable for
			             SMTP */
		if (SSL_dane_tlsa_add(ssl, t->usage, t->selector, t->mtype, t->data, t->len) > 0)
			usable++;
	}
	ERR_clear_error();
	return usable;
}

int conn_start_tls_client(struct conn *c, struct tls_ctx *ctx,
                          const struct conn_tls_client_params *p)
{
	if (c->tls_active || c->tls_pending || c->bev == NULL || c->dead || c->closing ||
	    c->z != NULL)
		return -1;
	SSL *ssl = SSL_new(tls_ctx_ssl_ctx(ctx));
	if (ssl == NULL)
		return -1;
	int mode = p->verify;
	bool named = p->host != NULL && p->host[0] != '\0';
	struct sockaddr_storage ss;
	socklen_t sl;
	bool literal = named && conn_sockaddr(p->host, 25, &ss, &sl) == 0;
	/* RFC 6066 §3: no SNI for an address literal (a smarthost given by IP) */
	if (named && !literal && SSL_set_tlsext_host_name(ssl, p->host) != 1)
		named = false;
	if (mode == CONN_TLS_VERIFY_DANE) {
		int usable = named ? conn_dane_setup(ssl, p) : -1;
		if (usable < 0) {
			SSL_free(ssl);
			return -1;
		}
		if (usable == 0) {
			/* no usable record: plain SSL again, encrypted without a check */
			SSL_free(ssl);
			ssl = SSL_new(tls_ctx_ssl_ctx(ctx));
			if (ssl == NULL)
				return -1;
			if (!literal)
				SSL_set_tlsext_host_name(ssl, p->host);
			mode = CONN_TLS_VERIFY_NONE;
		}
	}
	/* the check covers the name (RFC 6125), or the address of a literal */
	if (mode != CONN_TLS_VERIFY_DANE && literal)
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), p->host);
	else if (mode != CONN_TLS_VERIFY_DANE && named)
		SSL_set1_host(ssl, p->host);
	SSL_set_verify(ssl, mode == CONN_TLS_VERIFY_NONE ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	conn_discard_input(c);
	struct bufferevent *top = bufferevent_openssl_filter_new(
	    net_loop_base(c->loop), c->bev, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (top == NULL) {
		SSL_free(ssl);
		return -1;
	}
	c->bev = top;
	c->client_tls = true;
	c->tls_verify_mode = mode;
	c->tls_pending = true;
	conn_setup_bev(c);
	conn_arm_tls_deadline(c);
	return 0;
}

bool conn_tls_verified(const struct conn *c)
{
	return c->tls_active && c->client_tls && c->tls_verified;
}

const char *conn_tls_verification(const struct conn *c)
{
	return c->tls_active && c->client_tls ? c->tls_verify : "";
}

enum conn_tls_failure conn_tls_failure(const struct conn *c)
{
	return (enum conn_tls_failure)c->tls_failure;
}

const char *conn_local_ip(const struct conn *c)
{
	return c->local_ip;
}
