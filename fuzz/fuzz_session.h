/* Shared by the whole-session fuzz targets (fuzz_smtp_session, fuzz_imap_session,
 * fuzz_pop3_session): a real
 * protocol engine on one end of a socketpair, driven by a client conn on the other end, on
 * one standalone loop. Once per process: a SQLite store in a temporary directory (removed at
 * exit) with the domain example.org and the account user@example.org. The seam that is faked
 * is auth/auth_login.h (defined here, so the archive's auth_login.o is not linked): the
 * password "secret" for user@example.org logs in at once, anything else fails without the
 * penalty delay and without argon2 (which would make every execution take 100 ms and a
 * second of penalty). Everything else is the server's own code. */
#ifndef POSTHORN_FUZZ_FUZZ_SESSION_H
#define POSTHORN_FUZZ_FUZZ_SESSION_H

#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/auth_login.h"
#include "auth/sasl.h"
#include "core/buf.h"
#include "core/conf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "fuzz_chunks.h"
#include "mime/imap_structure.h"
#include "net/net_private.h" /* conn_new(): a conn over one end of the socketpair */
#include "net/server.h"
#include "store/store.h"

#define FUZZ_USER "user@example.org"
#define FUZZ_PASS "secret"
#define FUZZ_OUT_MAX ((size_t)64 << 20)

/* ---- the fake login (auth/auth_login.h) ---- */

static uint64_t fuzz_login_account; /* what FUZZ_USER logs in to */

struct auth_login {
	struct sasl_server *sasl;
	struct auth_login_result res;
	char user[SASL_FIELD_MAX + 1];
};

static void fuzz_login_verdict(struct auth_login *l, const char *authzid, const char *user,
                               const char *pass)
{
	snprintf(l->user, sizeof(l->user), "%s", user);
	bool ok = strcasecmp(user, FUZZ_USER) == 0 && strcmp(pass, FUZZ_PASS) == 0 &&
	          (authzid == NULL || authzid[0] == '\0' || strcasecmp(authzid, user) == 0);
	l->res.result = ok ? 1 : 0;
	l->res.account_id = ok ? fuzz_login_account : 0;
	l->res.delay_ms = 0;
}

struct auth_login *auth_login_new(struct auth *auth, const char *remote_ip, void (*wake)(void *ctx),
                                  void *ctx)
{
	(void)auth;
	(void)remote_ip;
	(void)wake;
	(void)ctx;
	struct auth_login *l = xcalloc(1, sizeof(*l));
	l->res.user = l->user;
	l->res.mech = "USER";
	return l;
}

void auth_login_free(struct auth_login **login)
{
	if (*login == NULL)
		return;
	sasl_server_free(&(*login)->sasl);
	free(*login);
	*login = NULL;
}

static enum auth_login_status fuzz_login_step(struct auth_login *l, int ret,
                                              const char **challenge_r, const char **error_r)
{
	if (ret == 2) { /* SCRAM: no keys for anyone here */
		sasl_server_set_credentials(l->sasl, NULL);
		ret = sasl_server_step(l->sasl, NULL, challenge_r, error_r);
	}
	if (ret == 0)
		return AUTH_LOGIN_CHALLENGE;
	if (ret < 0)
		return AUTH_LOGIN_MALFORMED;
	if (sasl_server_outcome(l->sasl) >= 0) {
		l->res.result = sasl_server_outcome(l->sasl);
		l->res.account_id = l->res.result == 1 ? fuzz_login_account : 0;
		return AUTH_LOGIN_DONE;
	}
	const char *authzid, *authcid, *password;
	sasl_server_credentials(l->sasl, &authzid, &authcid, &password);
	fuzz_login_verdict(l, authzid, authcid, password);
	return AUTH_LOGIN_DONE;
}

enum auth_login_status auth_login_sasl_start(struct auth_login *l, enum sasl_mech mech,
                                             const char *initial_b64, const char **challenge_r,
                                             const char **error_r)
{
	l->res.mech = sasl_mech_name(mech);
	l->sasl = sasl_server_new(mech, AUTH_LOGIN_LINE_MAX);
	if (initial_b64 != NULL && strcmp(initial_b64, "*") == 0) {
		*error_r = "cancelled";
		return AUTH_LOGIN_CANCELLED;
	}
	int ret = sasl_server_step(l->sasl, initial_b64, challenge_r, error_r);
	return fuzz_login_step(l, ret, challenge_r, error_r);
}

enum auth_login_status auth_login_sasl_continue(struct auth_login *l, const char *line,
                                                const char **challenge_r, const char **error_r)
{
	if (strcmp(line, "*") == 0) {
		*error_r = "cancelled";
		return AUTH_LOGIN_CANCELLED;
	}
	if (strlen(line) > AUTH_LOGIN_LINE_MAX) {
		*error_r = "response too long";
		return AUTH_LOGIN_MALFORMED;
	}
	int ret = sasl_server_step(l->sasl, line, challenge_r, error_r);
	return fuzz_login_step(l, ret, challenge_r, error_r);
}

enum auth_login_status auth_login_password(struct auth_login *l, const char *authzid,
                                           const char *user, const char *password)
{
	fuzz_login_verdict(l, authzid, user, password);
	return AUTH_LOGIN_DONE;
}

enum auth_login_status auth_login_apop(struct auth_login *l, const char *banner, const char *user,
                                       const char *digest)
{
	(void)banner;
	(void)digest;
	l->res.mech = "APOP";
	snprintf(l->user, sizeof(l->user), "%s", user);
	l->res.result = 0;
	return AUTH_LOGIN_DONE;
}

enum auth_login_status auth_login_resume(struct auth_login *l, const char **challenge_r,
                                         const char **error_r)
{
	(void)l;
	(void)challenge_r;
	(void)error_r;
	return AUTH_LOGIN_DONE;
}

const struct auth_login_result *auth_login_result(const struct auth_login *l)
{
	return &l->res;
}

/* ---- the environment: store, conf, loop ---- */

struct fuzz_env {
	struct store *store;
	struct conf *conf;
	struct net_loop *loop;
	char dir[64];
};
static struct fuzz_env fuzz_env;

static int fuzz_env_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void fuzz_env_cleanup(void)
{
	if (fuzz_env.dir[0] != '\0')
		nftw(fuzz_env.dir, fuzz_env_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static void fuzz_env_die(const char *what, const char *error)
{
	fprintf(stderr, "fuzz: %s: %s\n", what, error != NULL ? error : "?");
	abort();
}

/* Once per process; extra_conf: settings appended to the configuration. */
static void fuzz_env_init(const char *extra_conf)
{
	if (fuzz_env.store != NULL)
		return;
	log_setup(getenv("FUZZ_LOG") != NULL ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR, false);
	/* tmpfs where there is one: the store's fsyncs cost nothing there */
	snprintf(fuzz_env.dir, sizeof(fuzz_env.dir), "/dev/shm/posthorn-fuzz.XXXXXX");
	if (mkdtemp(fuzz_env.dir) == NULL) {
		snprintf(fuzz_env.dir, sizeof(fuzz_env.dir), "/tmp/posthorn-fuzz.XXXXXX");
		if (mkdtemp(fuzz_env.dir) == NULL)
			fuzz_env_die("mkdtemp", "failed");
	}
	atexit(fuzz_env_cleanup);
	char text[2048];
	snprintf(text, sizeof(text),
	         "hostname = mx.example.org\ndata_dir = %s\ninbound_checks = no\n"
	         "smtp_peername_lookup = no\n"
	         "smtp_pregreet_wait = 0\noutbound_enabled = no\nallow_plaintext_auth = yes\n"
	         "greylisting = no\n%s",
	         fuzz_env.dir, extra_conf);
	char *cerror = NULL;
	fuzz_env.conf = conf_parse("fuzz.conf", text, strlen(text), &cerror);
	if (fuzz_env.conf == NULL)
		fuzz_env_die("conf", cerror);
	const char *error = NULL;
	if (store_open(fuzz_env.dir, &fuzz_env.store, &error) < 0)
		fuzz_env_die("store", error);
	store_set_summarizer(fuzz_env.store, imap_structure_summarize, NULL);
	if (store_domain_add(fuzz_env.store, "example.org", &error) < 0)
		fuzz_env_die("domain", error);
	if (store_account_add(fuzz_env.store, FUZZ_USER, "!", 0, &error) < 0)
		fuzz_env_die("account", error);
	if (store_account_lookup(fuzz_env.store, FUZZ_USER, &fuzz_login_account, NULL, NULL) != 1)
		fuzz_env_die("account", "lookup");
	fuzz_env.loop = net_loop_new();
}

/* ---- a fresh account per run ---- */

static unsigned fuzz_env_runs;

static const char fuzz_msg_plain[] = "From: Ann <ann@example.net>\r\nTo: user@example.org\r\n"
                                     "Subject: first\r\nDate: Mon, 7 Dec 2026 10:00:00 +0100\r\n"
                                     "Message-ID: <1@example.net>\r\n\r\nHello.\r\n.dot\r\n";
static const char fuzz_msg_multi[] =
    "From: Bob <bob@example.net>\r\nTo: user@example.org\r\nSubject: =?utf-8?q?s=C3=A9cond?=\r\n"
    "In-Reply-To: <1@example.net>\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; "
    "charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9\r\n--b\r\n"
    "Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nx\r\n--b\r\n"
    "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "AAECAw==\r\n--b--\r\n";

static void fuzz_env_deliver(uint64_t account, const char *msg)
{
	char *path = store_spool_path_dup(fuzz_env.store);
	FILE *f = fopen(path, "w");
	if (f == NULL || fwrite(msg, 1, strlen(msg), f) != strlen(msg) || fclose(f) != 0)
		fuzz_env_die("spool", path);
	struct store_delivery d = {.spool_path = path,
	                           .mail_from = "ann@example.net",
	                           .accounts = &account,
	                           .account_count = 1,
	                           .received_at = 1796634000};
	if (store_deliver_wait(fuzz_env.store, &d) != 0)
		fuzz_env_die("deliver", d.error);
	free(path);
}

/* A new account with two messages in INBOX, which FUZZ_USER logs in to from now on; its
 * address (remove it with fuzz_env_account_del()) in addr. */
static void fuzz_env_account_new(char *addr, size_t size)
{
	const char *error = NULL;
	snprintf(addr, size, "run%u@example.org", fuzz_env_runs++);
	if (store_account_add(fuzz_env.store, addr, "!", 0, &error) < 0 ||
	    store_account_lookup(fuzz_env.store, addr, &fuzz_login_account, NULL, NULL) != 1)
		fuzz_env_die("account", error);
	fuzz_env_deliver(fuzz_login_account, fuzz_msg_plain);
	fuzz_env_deliver(fuzz_login_account, fuzz_msg_multi);
}

static void fuzz_env_account_del(const char *addr)
{
	const char *error = NULL;
	if (store_account_del(fuzz_env.store, addr, &error) < 0)
		fuzz_env_die("account del", error);
}

/* ---- one session ---- */

struct fuzz_client {
	struct conn *conn;
	struct buf out; /* everything the server sent */
	bool closed;
};

static void fuzz_client_input(struct conn *conn, void *ctx)
{
	struct fuzz_client *fc = ctx;
	const unsigned char *p;
	size_t n;
	while ((n = conn_peek(conn, &p)) > 0) {
		if (buf_append(&fc->out, p, n) < 0)
			abort(); /* more than FUZZ_OUT_MAX of output from a small input */
		conn_consume(conn, n);
	}
}

static void fuzz_client_closed(struct conn *conn, void *ctx)
{
	(void)conn;
	((struct fuzz_client *)ctx)->closed = true;
}

static void fuzz_client_nothing(struct conn *conn, void *ctx)
{
	(void)conn;
	(void)ctx;
}

static const struct conn_callbacks fuzz_client_cb = {
    .on_input = fuzz_client_input,
    .on_timer = fuzz_client_nothing,
    .on_closed = fuzz_client_closed,
};

/* One loop turn; a 1 ms timer makes sure it returns when nothing else happens. */
static void fuzz_pump(struct fuzz_client *fc)
{
	if (!fc->closed)
		conn_set_timer(fc->conn, 1);
	net_loop_run_once(fuzz_env.loop);
}

/* Loop turns until the server sent more than have octets (at most 2000 turns). */
static void fuzz_wait_output(struct fuzz_client *fc, size_t have)
{
	for (int i = 0; i < 2000 && !fc->closed && fc->out.len <= have; i++)
		fuzz_pump(fc);
}

/* Run a session of accept(listener_ctx) over the input: after the greeting, the first line
 * alone when first_line_alone (and its reply awaited), then the rest whole or in pieces (a
 * few loop turns after each), then end of input; *out gets what the server sent until it
 * closed. */
static void fuzz_session_run(conn_accept_fn *accept, void *listener_ctx, int port,
                             const uint8_t *data, size_t size, bool chunked, bool first_line_alone,
                             struct buf *out)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	struct conn *server = conn_new(fuzz_env.loop, sv[0], "192.0.2.1", port, NULL, false);
	struct fuzz_client fc = {0};
	fc.conn = conn_new(fuzz_env.loop, sv[1], "192.0.2.2", 0, NULL, false);
	if (server == NULL || fc.conn == NULL)
		abort();
	buf_init(&fc.out, FUZZ_OUT_MAX);
	conn_set_callbacks(fc.conn, &fuzz_client_cb, &fc);
	accept(server, listener_ctx);
	fuzz_wait_output(&fc, 0);
	const uint8_t *nl = first_line_alone ? memchr(data, '\n', size) : NULL;
	if (nl != NULL) {
		size_t n = (size_t)(nl + 1 - data);
		size_t have = fc.out.len;
		conn_write(fc.conn, data, n);
		fuzz_wait_output(&fc, have);
		data += n;
		size -= n;
	}
	if (chunked) {
		struct fuzz_chunks ch;
		fuzz_chunks_init(&ch, data, size);
		while (!fuzz_chunks_done(&ch) && !fc.closed) {
			const uint8_t *piece;
			size_t n = fuzz_chunks_next(&ch, &piece);
			conn_write(fc.conn, piece, n);
			for (int i = 0; i < 3; i++)
				fuzz_pump(&fc);
		}
	} else if (size > 0) {
		conn_write(fc.conn, data, size);
	}
	while (!fc.closed && conn_output_length(fc.conn) > 0)
		fuzz_pump(&fc);
	if (!fc.closed)
		shutdown(sv[1], SHUT_WR);
	while (!fc.closed)
		fuzz_pump(&fc);
	/* Both conns are freed by now (after their on_closed); nothing is left on the loop. */
	*out = fc.out;
}

/* Both transcripts on stderr, for a report of FUZZ_SAME(). */
static void fuzz_session_show(const struct buf *whole, const struct buf *parts)
{
	fprintf(stderr, "---- whole input:\n%.*s\n---- in pieces:\n%.*s\n----\n", (int)whole->len,
	        whole->data != NULL ? whole->data : "", (int)parts->len,
	        parts->data != NULL ? parts->data : "");
}

/* fuzz_session_run() with an account of its own (fuzz_env_account_new(): FUZZ_USER logs in
 * to it), removed afterwards, so that a run starts from the same state whatever earlier
 * runs did. */
static void fuzz_session_run_account(conn_accept_fn *accept, void *listener_ctx, int port,
                                     const uint8_t *data, size_t size, bool chunked,
                                     struct buf *out)
{
	char addr[64];
	fuzz_env_account_new(addr, sizeof(addr));
	fuzz_session_run(accept, listener_ctx, port, data, size, chunked, false, out);
	fuzz_env_account_del(addr);
}

/* Turns a transcript into one character per result (and aborts on a malformed line);
 * returns the count, at most max. */
typedef size_t fuzz_session_results_fn(const struct buf *out, char *res, size_t max);

/* The input whole and again in pieces, each with an account of its own: the results of
 * the two transcripts must be the same up to where the shorter one ends (the end of input
 * may cut a pending reply). */
static void fuzz_session_compare(conn_accept_fn *accept, void *listener_ctx, int port,
                                 const uint8_t *data, size_t size, fuzz_session_results_fn *results)
{
	struct buf whole, parts;
	fuzz_session_run_account(accept, listener_ctx, port, data, size, false, &whole);
	fuzz_session_run_account(accept, listener_ctx, port, data, size, true, &parts);
	static char a[4096], b[4096];
	size_t na = results(&whole, a, sizeof(a));
	size_t nb = results(&parts, b, sizeof(b));
	if (memcmp(a, b, na < nb ? na : nb) != 0)
		fuzz_session_show(&whole, &parts);
	FUZZ_SAME(memcmp(a, b, na < nb ? na : nb) == 0);
	buf_free(&whole);
	buf_free(&parts);
}

#endif
