/* The only network API protocol engines see. A connection belongs to one loop thread for its
 * whole life; every callback runs on that thread. Limits are checked here: a line longer
 * than the caller's maximum is reported once and the rest of it is discarded up to its LF,
 * never buffered and never handed out as a command. TLS (implicit and STARTTLS) happens
 * inside; the engine only learns that it is done. */
#ifndef POSTHORN_NET_CONN_H
#define POSTHORN_NET_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct conn;
struct net_loop;
struct tls_ctx;

struct conn_callbacks {
	/* New input is buffered (or the engine asked for a re-run with conn_resume()). */
	void (*on_input)(struct conn *conn, void *ctx);
	/* Everything queued with conn_write() has been handed to the kernel, through every
	 * layer (with STARTTLS also out of the socket layer below the TLS filter); for
	 * streaming large responses without buffering them whole. Optional. */
	void (*on_drained)(struct conn *conn, void *ctx);
	/* After conn_wait_writable(): the unsent output is at or below CONN_OUTPUT_LOW (it may
	 * be that already: then on a later loop turn, after pending I/O was polled). Called
	 * once per conn_wait_writable(); optional. */
	void (*on_writable)(struct conn *conn, void *ctx);
	/* TLS handshake finished (implicit TLS at accept, or after conn_start_tls()). */
	void (*on_tls_ready)(struct conn *conn, void *ctx);
	/* No input for the timeout set with conn_set_timeout(). */
	void (*on_timeout)(struct conn *conn, void *ctx);
	/* The timer set with conn_set_timer() fired. */
	void (*on_timer)(struct conn *conn, void *ctx);
	/* conn_wake() was called (from any thread). */
	void (*on_wake)(struct conn *conn, void *ctx);
	/* The server is shutting down: say goodbye and conn_close() when it is safe. */
	void (*on_shutdown)(struct conn *conn, void *ctx);
	/* Called exactly once when the connection is gone (peer closed, error, or after
	 * conn_close() flushed). The engine frees its session here; conn is freed after. */
	void (*on_closed)(struct conn *conn, void *ctx);
	/* Outbound (conn_connect): the TCP connection is established. When it cannot be, only
	 * on_closed comes, and conn_error() says why. */
	void (*on_connected)(struct conn *conn, void *ctx);
};

/* What a listener starts: the engine creates its session and registers callbacks with
 * conn_set_callbacks() before returning. For implicit TLS the engine should greet in
 * on_tls_ready, otherwise at once. */
typedef void conn_accept_fn(struct conn *conn, void *listener_ctx);

void conn_set_callbacks(struct conn *conn, const struct conn_callbacks *cb, void *ctx);

/* Read one line ending in LF (a CR before it is removed too). Returns 1 with *line_r
 * (NUL-terminated, owned by conn, valid until the next read call) and *len_r; 0 when no
 * complete line is buffered; -1 when the line exceeds max octets (including CRLF): the
 * buffered part is dropped, and the rest up to its LF will be dropped as it arrives. */
int conn_read_line(struct conn *conn, size_t max, char **line_r, size_t *len_r)
    __attribute__((warn_unused_result));
/* Copy up to max buffered octets into dst; returns the count (0 when none). */
size_t conn_read_bytes(struct conn *conn, void *dst, size_t max);
/* Look at buffered input without taking it: *data_r points at the first contiguous run of
 * octets (returned length, 0 when none), valid until conn_consume() or the callback returns. */
size_t conn_peek(struct conn *conn, const unsigned char **data_r);
/* Drop n octets from the front of the input (n <= what conn_peek returned). */
void conn_consume(struct conn *conn, size_t n);
/* Octets buffered for reading. */
size_t conn_input_length(struct conn *conn);
/* Drop all buffered input (used by STARTTLS before the handshake). */
void conn_discard_input(struct conn *conn);

/* Queue output; it is sent as the socket allows. */
void conn_write(struct conn *conn, const void *data, size_t len);
void conn_printf(struct conn *conn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Octets queued and not yet handed to the kernel, in every layer (with STARTTLS also what
 * the TLS filter has encrypted into the socket layer below it). */
size_t conn_output_length(struct conn *conn);

/* Output flow control, for engines that produce large responses (IMAP FETCH): conn_write()
 * never refuses data, so an engine that keeps writing to a client that reads nothing grows
 * without bound. Such an engine asks conn_output_full() before producing more; when it is
 * true it stops, calls conn_wait_writable(), and continues in on_writable. What is queued
 * then stays below CONN_OUTPUT_HIGH plus what the engine writes between two questions (one
 * chunk). The count is conn_output_length(): every layer. */
#define CONN_OUTPUT_HIGH ((size_t)1024 * 1024)
#define CONN_OUTPUT_LOW ((size_t)256 * 1024)
/* True when the unsent output is at or above CONN_OUTPUT_HIGH: write no more now. */
bool conn_output_full(struct conn *conn);
/* Ask for one on_writable call: as soon as the unsent output is at or below CONN_OUTPUT_LOW,
 * never from inside this call (at the earliest on the next loop turn, so input and other
 * connections get their turn: a long computation may use it to yield). Calling it again
 * before on_writable came changes nothing; nothing comes after conn_close() or on_closed. */
void conn_wait_writable(struct conn *conn);

/* Stop / restart reading from the socket (input already buffered stays). Pausing also
 * stops on_input; conn_resume() restarts reading and runs on_input once soon. */
void conn_pause(struct conn *conn);
void conn_resume(struct conn *conn);

/* Discard buffered input, then start a server-side TLS handshake over the connection;
 * on_tls_ready follows (or on_closed when it fails). Returns -1 when TLS is not configured
 * or already active. */
int conn_start_tls(struct conn *conn) __attribute__((warn_unused_result));
bool conn_is_tls(const struct conn *conn);
/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" or "" without TLS. */
const char *conn_tls_description(const struct conn *conn);

/* COMPRESS=DEFLATE (RFC 4978): from now on input is inflated and output deflated (raw
 * DEFLATE, sync-flushed at the end of each loop turn that wrote), between the protocol and
 * the socket or TLS layer. Output queued before this call goes uncompressed (the protocol
 * writes its OK first); input buffered after the command line is taken as compressed. Reads
 * inflate only what they need (a line up to its max, a chunk of bytes), so a small input
 * that inflates hugely meets the protocol's limits, not memory. A corrupt stream closes the
 * connection (on_closed follows; conn_error() says so). conn_output_length() counts the
 * compressed octets. -1 when already active, or during a TLS handshake. STARTTLS is
 * refused once compression is on (conn_start_tls returns -1). */
int conn_start_compress(struct conn *conn) __attribute__((warn_unused_result));
bool conn_is_compressed(const struct conn *conn);
/* The session just freed a lot of memory (a large mailbox view): return free memory to the
 * system soon (net_loop_trim_soon()). */
void conn_release_memory_soon(struct conn *conn);

/* Idle timeout in seconds (0 = none) for reading. */
void conn_set_timeout(struct conn *conn, unsigned seconds);
/* One-shot timer; 0 cancels. */
void conn_set_timer(struct conn *conn, unsigned milliseconds);
/* Thread-safe: schedule on_wake on the connection's loop thread. */
void conn_wake(struct conn *conn);

/* Keep the conn structure (not the connection) alive across an asynchronous operation that
 * will end in conn_wake(): on_closed may come first, on_wake still follows, and the structure
 * is freed only after the last conn_unhold(). A stopping server keeps its loops running until
 * every held structure is freed (at most its 30 s shutdown deadline). Protocol sessions use
 * these through net/session.h. */
void conn_hold(struct conn *conn);
void conn_unhold(struct conn *conn);
/* True once on_closed has run: only conn_wake/conn_unhold remain meaningful. */
bool conn_is_closed(const struct conn *conn);

/* Flush queued output, then close; on_closed follows. Safe to call more than once. */
void conn_close(struct conn *conn);

/* Remote address text ("192.0.2.1", "2001:db8::1") and local port. */
const char *conn_remote_ip(const struct conn *conn);
/* The loop the connection belongs to (for per-loop services such as dns_loop_resolver()). */
struct net_loop *conn_loop(const struct conn *conn);
int conn_local_port(const struct conn *conn);
/* Short random session id for log lines. */
const char *conn_id(const struct conn *conn);

/* An absolute deadline, seconds from now (0 cancels): when it passes, on_timeout runs (or
 * the connection closes without one) whatever input arrived meanwhile, so a client that
 * trickles bytes cannot push it back. The server arms it at accept with
 * limit_login_timeout; a protocol calls conn_clear_deadline() once the client logged in. */
void conn_set_deadline(struct conn *conn, unsigned seconds);
void conn_clear_deadline(struct conn *conn);
/* The client logged out without leaving (IMAP UNAUTHENTICATE): undo conn_clear_deadline().
 * The connection is again one the total cap may drop for a newcomer (as the newest of
 * them), and the pre-login deadline (the server's limit_login_timeout now) runs from now. */
void conn_restart_login(struct conn *conn);
/* Seconds output may wait without the socket taking any of it (the client reads nothing):
 * then the connection is dropped at once, its output discarded, on_closed follows (logged
 * reason=write-timeout). Counted from when output was queued with nothing unsent, or from
 * the last octets the socket took; a client that reads slowly but steadily is never cut.
 * 0: none. Set by the server at accept (limit_request_timeout); outbound connections have
 * none. */
void conn_set_write_timeout(struct conn *conn, unsigned seconds);
/* Seconds a TLS handshake may take (implicit TLS at accept, and each STARTTLS); a handshake
 * still unfinished then drops the connection (no protocol can be spoken over it). 0: none.
 * Set by the server at accept (limit_tls_handshake_timeout). */
void conn_set_tls_timeout(struct conn *conn, unsigned seconds);

/* ---- Outbound connections and client-side TLS ---- */

struct conn_connect_params {
	const char *ip; /* numeric IPv4 or IPv6 address of the remote host */
	int port;
	const char *local_ip; /* numeric source address to bind, NULL or "" for any */
	unsigned timeout;     /* seconds until the connect attempt fails, 0 = the kernel's */
	/* A UNIX-domain stream socket to connect to instead (ip, port and local_ip are then
	 * not used): conn_remote_ip() is "unix", conn_local_port() 0. NULL or "": TCP. */
	const char *unix_path;
};

/* Start a non-blocking TCP (or UNIX-domain) connect on loop (call on the loop's thread); the
 * callbacks are set at once. Never calls back from inside this call: later comes on_connected, or
 * on_closed alone with conn_error() saying why ("connect to 192.0.2.1:25: Connection refused",
 * "... timed out"). Returns NULL with *error_r (static text) only when the parameters are
 * bad (not a numeric address, port out of range, a socket path too long). After on_connected the
 * conn works like an accepted one; conn_remote_ip() is the remote address and conn_local_port() the
 * port. */
struct conn *conn_connect(struct net_loop *loop, const struct conn_connect_params *params,
                          const struct conn_callbacks *cb, void *ctx, const char **error_r);
/* Why the connection failed or ended, for logs and delivery reports ("Connection reset by
 * peer", "TLS handshake failed: certificate verify failed: self-signed certificate",
 * "connection closed by peer"); "" when no reason is known (yet). */
const char *conn_error(const struct conn *conn);

/* How the server's certificate is checked in a client-side handshake. */
enum conn_tls_verify {
	/* Encrypt whatever the certificate (opportunistic TLS, RFC 7435); the result of the
	 * check is still reported by conn_tls_verification(). */
	CONN_TLS_VERIFY_NONE,
	/* The chain must lead to a trusted CA and the certificate must name the host
	 * (MTA-STS enforce, mandatory TLS): otherwise the handshake fails. */
	CONN_TLS_VERIFY_PKIX,
	/* The certificate must match one of the TLSA records (RFC 7672: usages 2 DANE-TA and
	 * 3 DANE-EE; others are unusable and ignored), otherwise the handshake fails. With no
	 * usable record this is CONN_TLS_VERIFY_NONE (RFC 7672 §2.2: encrypt, no check). */
	CONN_TLS_VERIFY_DANE
};

/* One TLSA record (RFC 6698 §2.1): usage, selector, matching type and the data (a hash, or
 * the full certificate / public key for matching type 0). */
struct conn_tlsa {
	uint8_t usage, selector, mtype;
	const unsigned char *data;
	size_t len;
};

struct conn_tls_client_params {
	const char *host; /* SNI and the name the certificate must carry (the MX host) */
	enum conn_tls_verify verify;
	const struct conn_tlsa *tlsa; /* CONN_TLS_VERIFY_DANE; copied, need not outlive the call */
	size_t tlsa_count;
};

/* Discard buffered input, then start a client-side TLS handshake with ctx (from
 * tls_client_ctx_new) over the connection: on_tls_ready follows, or on_closed with
 * conn_error() saying why (a verification failure under PKIX or DANE fails the handshake).
 * -1 when TLS is already active or the handshake cannot be set up. */
int conn_start_tls_client(struct conn *conn, struct tls_ctx *ctx,
                          const struct conn_tls_client_params *params)
    __attribute__((warn_unused_result));
/* After a client handshake: whether the certificate was authenticated, and how, as text for
 * the delivery log: "verified (CA chain, host name)", "verified (DANE TLSA 3 1 1)", or
 * "not verified: self-signed certificate"; "" without client TLS. */
bool conn_tls_verified(const struct conn *conn);
const char *conn_tls_verification(const struct conn *conn);

/* Why a client handshake failed, or (after one that succeeded without a check, VERIFY_NONE)
 * why the certificate would not have verified; for TLS-RPT (RFC 8460 §4.3). NONE: no
 * failure (or no client TLS). */
enum conn_tls_failure {
	CONN_TLS_FAIL_NONE,
	CONN_TLS_FAIL_HANDSHAKE, /* no certificate problem: the handshake itself failed */
	CONN_TLS_FAIL_EXPIRED,   /* the certificate has expired (or is not valid yet) */
	CONN_TLS_FAIL_HOST,      /* it does not name the host (PKIX) */
	CONN_TLS_FAIL_UNTRUSTED, /* no chain to a trusted CA (PKIX) */
	CONN_TLS_FAIL_DANE,      /* no TLSA record matched (DANE) */
	CONN_TLS_FAIL_OTHER,     /* another verification error */
};
enum conn_tls_failure conn_tls_failure(const struct conn *conn);
/* The local address of an outbound connection once connected ("" unknown). */
const char *conn_local_ip(const struct conn *conn);

#endif
