/* Unit tests for smtp/smtp_client (and the outbound parts of net/conn): the real engine on a
 * real event loop against a scripted fake server on loopback, run in a thread with blocking
 * sockets (and OpenSSL for STARTTLS). The fake server records every octet it receives, so
 * the tests compare what went over the wire: pipelining groups, dot-stuffing, the skipped
 * Return-Path line, BDAT chunks; and the results the engine reports per recipient and per
 * session: multi-line replies, 4xx/5xx per recipient, a 554 greeting, 421 mid-session, a
 * connection dropped mid-DATA, SIZE and SMTPUTF8 refusals, two messages on one connection,
 * STARTTLS with the verification policies none / PKIX / DANE, and AUTH. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/log.h"
#include "net/conn.h"
#include "net/server.h"
#include "net/tls.h"
#include "smtp/smtp_client.h"
#include "smtp/smtp_reply.h"
#include "core/banned.h"

#define TEST_HOST "mx.test.example"

static char tmpdir[64];
static char cert_path[128], key_path[128];

/* ---- the fake server ---- */

struct fake {
	int lfd, fd;
	int port;
	SSL_CTX *ssl_ctx;
	SSL *ssl;
	pthread_t thread;
	void (*script)(struct fake *f);
	char inbuf[1 << 16];
	size_t inlen;
	/* everything received, in order (decrypted after STARTTLS) */
	char *log;
	size_t log_len;
	char error[512]; /* the first script failure */
};

static void fake_fail(struct fake *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fake_fail(struct fake *f, const char *fmt, ...)
{
	if (f->error[0] != '\0')
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->error, sizeof(f->error), fmt, ap);
	va_end(ap);
}

static ssize_t fake_recv(struct fake *f)
{
	if (f->inlen == sizeof(f->inbuf))
		return -1;
	ssize_t n = f->ssl != NULL
	                ? SSL_read(f->ssl, f->inbuf + f->inlen, (int)(sizeof(f->inbuf) - f->inlen))
	                : recv(f->fd, f->inbuf + f->inlen, sizeof(f->inbuf) - f->inlen, 0);
	if (n <= 0)
		return -1;
	f->log = realloc(f->log, f->log_len + (size_t)n + 1);
	memcpy(f->log + f->log_len, f->inbuf + f->inlen, (size_t)n);
	f->log_len += (size_t)n;
	f->log[f->log_len] = '\0';
	f->inlen += (size_t)n;
	return n;
}

/* Read one line (CRLF removed) into line; false on EOF/timeout (recorded as a failure). */
static bool fake_line(struct fake *f, char *line, size_t max)
{
	for (;;) {
		char *nl = memchr(f->inbuf, '\n', f->inlen);
		if (nl != NULL) {
			size_t n = (size_t)(nl - f->inbuf);
			size_t l = n > 0 && f->inbuf[n - 1] == '\r' ? n - 1 : n;
			if (l >= max)
				l = max - 1;
			memcpy(line, f->inbuf, l);
			line[l] = '\0';
			memmove(f->inbuf, nl + 1, f->inlen - n - 1);
			f->inlen -= n + 1;
			return true;
		}
		if (fake_recv(f) < 0) {
			fake_fail(f, "connection ended or timed out waiting for a line");
			return false;
		}
	}
}

/* Expect a line starting with prefix (case-sensitive); the line is returned in *line. */
static bool fake_expect(struct fake *f, const char *prefix)
{
	char line[4096];
	if (!fake_line(f, line, sizeof(line)))
		return false;
	if (strncmp(line, prefix, strlen(prefix)) != 0) {
		fake_fail(f, "expected \"%s\", got \"%s\"", prefix, line);
		return false;
	}
	return true;
}

static void fake_send(struct fake *f, const char *text)
{
	size_t n = strlen(text);
	if (f->ssl != NULL)
		SSL_write(f->ssl, text, (int)n);
	else if (send(f->fd, text, n, MSG_NOSIGNAL) < 0)
		fake_fail(f, "send failed");
}

/* Read DATA up to CRLF.CRLF; the raw (still dot-stuffed) octets, malloc'd, in *data_r. */
static bool fake_data(struct fake *f, char **data_r, size_t *len_r)
{
	for (;;) {
		char *end = memmem(f->inbuf, f->inlen, "\r\n.\r\n", 5);
		if (f->inlen >= 3 && memcmp(f->inbuf, ".\r\n", 3) == 0)
			end = f->inbuf - 2;
		if (end != NULL) {
			size_t n = (size_t)(end - f->inbuf) + 2; /* keep the last CRLF */
			*data_r = malloc(n + 1);
			memcpy(*data_r, f->inbuf, n);
			(*data_r)[n] = '\0';
			*len_r = n;
			memmove(f->inbuf, f->inbuf + n + 3, f->inlen - n - 3);
			f->inlen -= n + 3;
			return true;
		}
		if (fake_recv(f) < 0) {
			fake_fail(f, "connection ended in DATA");
			return false;
		}
	}
}

/* Read n octets exactly (a BDAT chunk) and append them to *acc. */
static bool fake_bytes(struct fake *f, size_t n, char **acc, size_t *acc_len)
{
	while (f->inlen < n)
		if (fake_recv(f) < 0) {
			fake_fail(f, "connection ended in a BDAT chunk");
			return false;
		}
	*acc = realloc(*acc, *acc_len + n + 1);
	memcpy(*acc + *acc_len, f->inbuf, n);
	*acc_len += n;
	(*acc)[*acc_len] = '\0';
	memmove(f->inbuf, f->inbuf + n, f->inlen - n);
	f->inlen -= n;
	return true;
}

static bool fake_starttls(struct fake *f)
{
	if (f->inlen != 0) {
		fake_fail(f, "octets after STARTTLS before the handshake");
		return false;
	}
	f->ssl = SSL_new(f->ssl_ctx);
	SSL_set_fd(f->ssl, f->fd);
	if (SSL_accept(f->ssl) != 1) {
		/* the client refused our certificate: that is what some tests want */
		SSL_free(f->ssl);
		f->ssl = NULL;
		ERR_clear_error();
		return false;
	}
	return true;
}

static void *fake_thread(void *arg)
{
	struct fake *f = arg;
	f->fd = accept(f->lfd, NULL, NULL);
	if (f->fd < 0) {
		fake_fail(f, "accept failed");
		return NULL;
	}
	struct timeval tv = {5, 0};
	setsockopt(f->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	f->script(f);
	if (f->ssl != NULL) {
		SSL_shutdown(f->ssl);
		SSL_free(f->ssl);
		f->ssl = NULL;
	}
	close(f->fd);
	return NULL;
}

static struct fake *fake_start_on(void (*script)(struct fake *f), bool ipv6)
{
	struct fake *f = calloc(1, sizeof(*f));
	f->script = script;
	f->lfd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ipv6) {
		struct sockaddr_in6 sa = {.sin6_family = AF_INET6,
		                          .sin6_addr = IN6ADDR_LOOPBACK_INIT};
		assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		socklen_t sl = sizeof(sa);
		getsockname(f->lfd, (struct sockaddr *)&sa, &sl);
		f->port = ntohs(sa.sin6_port);
	} else {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		socklen_t sl = sizeof(sa);
		getsockname(f->lfd, (struct sockaddr *)&sa, &sl);
		f->port = ntohs(sa.sin_port);
	}
	assert_int_equal(listen(f->lfd, 4), 0);
	f->ssl_ctx = SSL_CTX_new(TLS_server_method());
	assert_int_equal(SSL_CTX_use_certificate_chain_file(f->ssl_ctx, cert_path), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(f->ssl_ctx, key_path, SSL_FILETYPE_PEM), 1);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_thread, f), 0);
	return f;
}

static struct fake *fake_start(void (*script)(struct fake *f))
{
	return fake_start_on(script, false);
}

static void fake_finish(struct fake *f)
{
	pthread_join(f->thread, NULL);
	close(f->lfd);
	SSL_CTX_free(f->ssl_ctx);
	if (f->error[0] != '\0')
		fail_msg("fake server: %s\nreceived:\n%s", f->error, f->log != NULL ? f->log : "");
}

static void fake_free(struct fake *f)
{
	free(f->log);
	free(f);
}

/* ---- driving the engine ---- */

struct run {
	struct net_loop *loop;
	struct smtp_client_message *msgs[4];
	size_t msg_count, next_msg, done_count;
	struct smtp_client_result result;
	bool closed;
	bool quit_in_done; /* quit from message_done of the last message, not from ready */
	unsigned ready_count;
	char tls_desc[200], tls_verify[200];
};

static void run_ready(struct smtp_client *c, void *ctx)
{
	struct run *r = ctx;
	r->ready_count++;
	snprintf(r->tls_desc, sizeof(r->tls_desc), "%s", smtp_client_tls_description(c));
	snprintf(r->tls_verify, sizeof(r->tls_verify), "%s", smtp_client_tls_verification(c));
	if (r->next_msg < r->msg_count)
		assert_int_equal(smtp_client_send(c, r->msgs[r->next_msg++]), 0);
	else
		smtp_client_quit(c);
}

static void run_message_done(struct smtp_client *c, struct smtp_client_message *msg, void *ctx)
{
	(void)c;
	struct run *r = ctx;
	assert_ptr_equal(msg, r->msgs[r->done_count]);
	r->done_count++;
	for (size_t i = 0; i < msg->rcpt_count; i++)
		assert_int_not_equal(msg->rcpts[i].result.status, SMTP_CLIENT_PENDING);
	if (r->quit_in_done && r->done_count == r->msg_count)
		smtp_client_quit(c);
}

static void run_closed(struct smtp_client *c, const struct smtp_client_result *result, void *ctx)
{
	(void)c;
	struct run *r = ctx;
	r->result = *result;
	r->closed = true;
	net_loop_stop(r->loop);
}

static const struct smtp_client_callbacks run_callbacks = {
    .ready = run_ready, .message_done = run_message_done, .closed = run_closed};

static struct smtp_client_params test_params(int port)
{
	struct smtp_client_params p = {
	    .ip = "127.0.0.1",
	    .port = port,
	    .host = TEST_HOST,
	    .helo_name = "client.posthorn.test",
	    .tls = SMTP_CLIENT_TLS_DISABLED,
	    .verify = CONN_TLS_VERIFY_NONE,
	    .timeouts = {10, 10, 10, 10, 10, 10},
	};
	return p;
}

/* Run a session with params over the messages; returns when closed came. */
static void run_session(struct run *r, const struct smtp_client_params *p)
{
	r->loop = net_loop_new();
	const char *error = NULL;
	struct smtp_client *c = smtp_client_start(r->loop, p, &run_callbacks, r, &error);
	assert_non_null(c);
	while (!r->closed)
		net_loop_run_once(r->loop);
	/* let the conn structure be freed (it is, right after on_closed) */
	net_loop_free(&r->loop);
}

static char *write_file(const char *name, const char *content, size_t len)
{
	char *path = malloc(256);
	snprintf(path, 256, "%s/%s", tmpdir, name);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(content, 1, len, fp), len);
	fclose(fp);
	return path;
}

static bool has(const char *hay, const char *needle)
{
	return hay != NULL && strstr(hay, needle) != NULL;
}

/* ---- the tests ---- */

static char *got_data; /* the last DATA/BDAT body the fake server read */
static size_t got_len;
static char got_mail[512];

static void ehlo_reply(struct fake *f, const char *ext)
{
	if (!fake_expect(f, "EHLO client.posthorn.test"))
		return;
	fake_send(f, "250-" TEST_HOST " hello\r\n");
	fake_send(f, ext);
}

/* PIPELINING: MAIL, RCPT, RCPT and DATA arrive before any reply (the server reads all four
 * first, so a client that waited for replies would stall and fail the test). */
static void script_pipelining(struct fake *f)
{
	fake_send(f, "220 " TEST_HOST " ESMTP\r\n");
	ehlo_reply(f, "250-PIPELINING\r\n250-SIZE 100000\r\n250 8BITMIME\r\n");
	char line[512];
	if (!fake_line(f, got_mail, sizeof(got_mail)) ||
	    !fake_expect(f, "RCPT TO:<a@dest.example>") ||
	    !fake_expect(f, "RCPT TO:<b@dest.example>") || !fake_expect(f, "DATA"))
		return;
	fake_send(f, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550-5.1.1 no such\r\n550 5.1.1 user here\r\n"
	             "354 go ahead\r\n");
	if (!fake_data(f, &got_data, &got_len))
		return;
	fake_send(f, "250 2.0.0 queued as 1234\r\n");
	if (fake_line(f, line, sizeof(line)) && strcmp(line, "QUIT") == 0)
		fake_send(f, "221 2.0.0 bye\r\n");
	else
		fake_fail(f, "expected QUIT");
}

static const char body_in[] = "Return-Path: <sender@posthorn.test>\r\n"
                              "From: sender@posthorn.test\r\n"
                              "Subject: dots\r\n"
                              "\r\n"
                              ".leading dot\r\n"
                              "..two\r\n"
                              ".\r\n"
                              "bare lf\n"
                              "bare cr\rend\r\n"
                              "last line without crlf";
static const char body_out[] = "DKIM-Signature: v=1; test\r\n"
                               "From: sender@posthorn.test\r\n"
                               "Subject: dots\r\n"
                               "\r\n"
                               "..leading dot\r\n"
                               "...two\r\n"
                               "..\r\n"
                               "bare lf\r\n"
                               "bare cr\r\nend\r\n"
                               "last line without crlf\r\n";

static void test_pipelining_dot_stuffing(void **state)
{
	(void)state;
	struct fake *f = fake_start(script_pipelining);
	char *path = write_file("m1", body_in, sizeof(body_in) - 1);
	struct smtp_client_rcpt rc[2] = {{.address = "a@dest.example"},
	                                 {.address = "b@dest.example"}};
	const char prefix[] = "DKIM-Signature: v=1; test\r\n";
	struct smtp_client_message m = {.path = path,
	                                .prefix = prefix,
	                                .prefix_len = sizeof(prefix) - 1,
	                                .mail_from = "sender@posthorn.test",
	                                .eightbit = true,
	                                .rcpts = rc,
	                                .rcpt_count = 2};
	struct run r = {.msgs = {&m}, .msg_count = 1};
	struct smtp_client_params p = test_params(f->port);
	run_session(&r, &p);
	fake_finish(f);
	/* the envelope: SIZE (prefix + file - Return-Path line), BODY=8BITMIME */
	char expect_mail[200];
	size_t size = sizeof(prefix) - 1 + sizeof(body_in) - 1 -
	              strlen("Return-Path: <sender@posthorn.test>\r\n");
	snprintf(expect_mail, sizeof(expect_mail),
	         "MAIL FROM:<sender@posthorn.test> SIZE=%zu BODY=8BITMIME", size);
	assert_string_equal(got_mail, expect_mail);
	/* the body: prefix first, Return-Path gone, dots doubled, line ends CRLF */
	assert_int_equal(got_len, sizeof(body_out) - 1);
	assert_memory_equal(got_data, body_out, got_len);
	assert_false(has(f->log, "Return-Path"));
	/* per recipient: delivered with the final reply; 550 with its multi-line text */
	assert_int_equal(rc[0].result.status, SMTP_CLIENT_DELIVERED);
	assert_int_equal(rc[0].result.code, 250);
	assert_string_equal(rc[0].result.enhanced, "2.0.0");
	assert_string_equal(rc[0].result.text, "queued as 1234");
	assert_true(rc[0].result.remote);
	assert_int_equal(rc[1].result.status, SMTP_CLIENT_PERMFAIL);
	assert_int_equal(rc[1].result.code, 550);
	assert_string_equal(rc[1].result.enhanced, "5.1.1");
	assert_string_equal(rc[1].result.text, "no such user here");
	assert_int_equal(r.done_count, 1);
	assert_int_equal(r.result.reply.status, SMTP_CLIENT_DELIVERED);
	assert_true(r.result.was_ready);
	free(got_data);
	got_data = NULL;
	free(path);
	fake_free(f);
}

/* No EHLO (5xx): HELO and no extensions, so no SIZE/BODY and one command at a time (the
 * server answers each before it reads the next); a multi-line greeting and 4xx per RCPT. */
static void script_helo(struct fake *f)
{
	fake_send(f, "220-" TEST_HOST " first line\r\n220 second line\r\n");
	if (!fake_expect(f, "EHLO "))
		return;
	fake_send(f, "502 5.5.2 what is EHLO\r\n");
	if (!fake_expect(f, "HELO client.posthorn.test"))
		return;
	fake_send(f, "250 hi\r\n");
	if (!fake_line(f, got_mail, sizeof(got_mail)))
		return;
	fake_send(f, "250 ok\r\n");
	if (!fake_expect(f, "RCPT TO:<a@dest.example>"))
		return;
	fake_send(f, "450-4.2.0 mailbox busy\r\n450 4.2.0 try later\r\n");
	if (!fake_expect(f, "RCPT TO:<b@dest.example>"))
		return;
	fake_send(f, "250 ok\r\n");
	if (!fake_expect(f, "DATA"))
		return;
	fake_send(f, "354 go\r\n");
	if (!fake_data(f, &got_data, &got_len))
		return;
	fake_send(f, "250 done\r\n");
	if (fake_expect(f, "QUIT"))
		fake_send(f, "221 bye\r\n");
}

static void test_helo_one_at_a_time(void **state)
{
	(void)state;
	struct fake *f = fake_start(script_helo);
	char *path = write_file("m2", "Subject: x\r\n\r\nbody\r\n", 20);
	struct smtp_client_rcpt rc[2] = {{.address = "a@dest.example", .notify = "NEVER"},
	                                 {.address = "b@dest.example"}};
	struct smtp_client_message m = {.path = path,
	                                .mail_from = "",
	                                .eightbit = true,
	                                .dsn_ret = "HDRS",
	                                .rcpts = rc,
	                                .rcpt_count = 2};
	struct run r = {.msgs = {&m}, .msg_count = 1, .quit_in_done = true};
	struct smtp_client_params p = test_params(f->port);
	run_session(&r, &p);
	fake_finish(f);
	/* QUIT from message_done: a clean end, and no ready after the message */
	assert_int_equal(r.result.reply.status, SMTP_CLIENT_DELIVERED);
	assert_int_equal(r.ready_count, 1);
	/* the null sender; no SIZE, BODY or DSN parameters to a HELO server */
	assert_string_equal(got_mail, "MAIL FROM:<>");
	assert_false(has(f->log, "NOTIFY"));
	assert_int_equal(got_len, 20);
	assert_int_equal(rc[0].result.status, SMTP_CLIENT_TEMPFAIL);
	assert_int_equal(rc[0].result.code, 450);
	assert_string_equal(rc[0].result.enhanced, "4.2.0");
	assert_string_equal(rc[0].result.text, "mailbox busy try later");
	assert_int_equal(rc[1].result.status, SMTP_CLIENT_DELIVERED);
	free(got_data);
	got_data = NULL;
	free(path);
	fake_free(f);
}

static void script_554(struct fake *f)
{
	fake_send(f, "554 5.7.1 " TEST_HOST " does not want you\r\n");
	if (fake_expect(f, "QUIT"))
		fake_send(f, "221 bye\r\n");
}

static void test_greeting_554(void **state)
{
	(void)state;
	struct fake *f = fake_start(script_554);
	struct run r = {.msg_count = 0};
	struct smtp_client_params p = test_params(f->port);
	run_session(&r, &p);
	fake_finish(f);
	assert_false(r.result.was_ready);
	assert_int_equal(r.result.reply.status, SMTP_CLIENT_PERMFAIL);
	assert_int_equal(r.result.reply.code, 554);
	assert_string_equal(r.result.reply.enhanced, "5.7.1");
	assert_true(r.result.reply.remote);
	assert_true(has(r.result.reply.text, "does not want you"));
	assert_false(has(f->log, "EHLO"));
	fake_free(f);
}

/* 421 in the middle: the accepted and the unanswered recipients are deferred with it. */
static void script_421(struct fake *f)
{
	fake_send(f, "220 hi\r\n");
	ehlo_reply(f, "250 DSN\r\n");
	if (!fake_expect(f, "MAIL FROM:<s@posthorn.test> RET=FULL ENVID=abc"))
		return;
	fake_send(f, "250 ok\r\n");
	if (!fake_expect(
	        f, "RCPT TO:<a@dest.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@dest.example"))
		return;
	fake_send(f, "250 ok\r\n");
	if (!fake_expect(f, "RCPT TO:<b@dest.example>"))
		return;
	fake_send(f, "421 4.3.0 shutting down\r\n");
	char line[100];
	if (fake_line(f, line, sizeof(line)))
		fake_fail(f, "a command after 421: %s", line);
	f->error[0] = '\0'; /* the EOF is what we want */
}

static void test_421_mid_session(void **state)
{
	(void)state;
	struct fake *f = fake_start(script_421);
	char *path = write_file("m3", "x\r\n", 3);
	struct smtp_client_rcpt rc[3] = {{.address = "a@dest.example",
	                                  .notify = "SUCCESS,FAILURE",
	                                  .orcpt = "rfc822;a@dest.example"},
	                                 {.address = "b@dest.example"},
	                                 {.address = "c@dest.example"}};
	struct smtp_client_message m = {.path = path,
	                                .mail_from = "s@posthorn.test",
	                                .dsn_ret = "FULL",
	                                .dsn_envid = "abc",
	                                .rcpts = rc,
	                                .rcpt_count = 3};
	struct run r = {.msgs = {&m}, .msg_count = 1};
	struct smtp_client_params p = test_params(f->port);
	run_session(&r, &p);
	fake_finish(f);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(rc[i].result.status, SMTP_CLIENT_TEMPFAIL);
		assert_int_equal(rc[i].result.code, 421);
		assert_string_equal(rc[i].result.enhanced, "4.3.0");
	}
	assert_int_equal(r.result.reply.status, SMTP_CLIENT_TEMPFAIL);
	assert_int_equal(r.result.reply.code, 421);
	assert_int_equal(r.done_count, 1);
	free(path);
	fake_free(f);
}

/* The connection drops in the middle of the body: every recipient deferred, by us. */
static void script_drop(struct fake *f)
{
	fake_send(f, "220 hi\r\n");
	ehlo_reply(f, "250 PIPELINING\r\n");
	if (!fake_expect(f, "MAIL") || !fake_expect(f, "RCPT") || !fake_expect(f, "RCPT") ||
	    !fake_expect(f, "DATA"))
		return;
	fake_send(f, "250 ok\r\n550 no\r\n250 ok\r\n354 go\r\n");
	char line[100];
	fake_line(f, line, sizeof(line)); /* one line of the body, then hang up */
	shutdown(f->fd, SHUT_RDWR);
}

static void test_drop_mid_data(void **state)
{
	(void)state;
	struct fake *f = fake_start(script_drop);
	size_t big = 3 * 1024 * 1024;
	char *content = malloc(big);
	for (size_t i = 0; i < big; i++)
		content[i] = i % 80 == 79 ? '\n' : 'a' + (char)(i % 26);
	char *path = write_file("m4", content, big);
	free(content);
	struct smtp_client_rcpt rc[2] = {{.address = "a@dest.example"},
	                                 {.address = "b@dest.example"}};
	struct smtp_client_message m = {
	    .path = path, .mail_from = "s@posthorn.test", .rcpts = rc, .rcpt_count = 2};
	struct run r = {.msgs = {&m}, .msg_count = 1};
	struct smtp_client_params p = test_params(f->port);
	run_session(&r, &p);
	fake_finish(f);
	assert_int_equal(rc[0].result.status, SMTP_CLIENT_PERMFAIL); /* its 550 stands */
	assert_int_equal(rc[1].result.status, SMTP_CLIENT_TEMPFAIL);
	assert_false(rc[1].result.remote);
	assert_string_equal(rc[1].result.enhanced, "4.4.2");
	assert_true(has(rc[1].result.text, "lost connection with " TEST_HOST "[127.0.0.1]"));
	assert_int_equal(r.result.reply.status, SMTP_CLIENT_TEMPFAIL);
	free(path);
	fake_free(f);
}

/* SIZE and SMTPUTF8 refusals happen before MAIL; the connection goes on to the next message,
 * and a message whose recipients all failed is followed by RSET before the next MAIL. */
static void script_refusals(struct fake *f)
{
	fake_send(f, "220 hi\r\n");
	ehlo_reply(f, "250-PIPELINING\r\n250 SIZE 1000\r\n");
	/* the third message (the first two never reach the wire) */
	if (!fake_expect(f, "MAIL FROM:<s@posthorn.test> SIZE=") || !fake_expect(f, "RCPT") ||
	    !fake_expect(f, "DATA"))
		return;
	fake_send(f, "250 ok\r\n550 5.1.1 nobody\r\n503 5.5.1 no valid recipients\r\n");
	if (!fake_expect(f, "RSET"))
		return;
	fake_send(f, "250 reset\r\n");
	/* the fourth */
	if (!fake_expect(f, "MAIL") || !fake_expect(f, "RCPT") || !fake_expect(f, "DATA"))
		return;
	fake_send(f, "250 ok\r\n250 ok\r\n354 go\r\n");
	if (!fake_data(f, &got_data, &got_len))
		return;
	fake_send(f, "250 2.0.0 fine\r\n");
	if (fake_expect(f, "QUIT"))
		fake_send(f, "221 bye\r\n");
}

static void test_refusals_and_reuse(void **state)
{
	(void)state;
	struct fake *f = fake_start(script_refusals);
	char big[2000];
	memset(big, 'x', sizeof(big));
	char *p_big = write_file("big", big, sizeof(big));
	char *p_small = write_file("small", "Subject: s\r\n\r\nhi\r\n", 18);
	struct smtp_client_rcpt r1[1] = {{.address = "a@dest.example"}};
	struct smtp_client_rcpt r2[1] = {{.address = "\xc3\xa9@dest.example"}};
	struct smtp_client_rcpt r3[1] = {{.address = "nobody@dest.example"}};
	struct smtp_client_rcpt r4[1] = {{.address = "d@dest.example"}};
	struct smtp_client_message m1 = {
	    .path = p_big, .mail_from = "s@posthorn.test", .rcpts = r1, .rcpt_count = 1};
	struct smtp_client_message m2 = {.path = p_small,
	                                 .mail_from = "s@posthorn.test",
	                                 .smtputf8 = true,
	                                 .rcpts = r2,
	                                 .rcpt_count = 1};
	struct smtp_client_message m3 = {
	    .path = p_small, .mail_from = "s@posthorn.test", .rcpts = r3, .rcpt_count = 1};
	struct smtp_client_message m4 = {
	    .path = p_small, .mail_from = "s@posthorn.test", .rcpts = r4, .rcpt_count = 1};
	struct run r = {.msgs = {&m1, &m2, &m3, &m4}, .msg_count = 4};
	struct smtp_client_params p = test_params(f->port);
	run_session(&r, &p);
	fake_finish(f);
	assert_int_equal(r.done_count, 4);
	assert_int_equal(r1[0].result.status, SMTP_CLIENT_PERMFAIL);
	assert_false(r1[0].result.remote);
	assert_int_equal(r1[0].result.code, 552);
	assert_string_equal(r1[0].result.enhanced, "5.3.4");
	assert_int_equal(r2[0].result.status, SMTP_CLIENT_PERMFAIL);
	assert_string_equal(r2[0].result.enhanced, "5.6.7");
	assert_int_equal(r3[0].result.status, SMTP_CLIENT_PERMFAIL);
	assert_int_equal(r3[0].result.code, 550);
	assert_int_equal(r4[0].result.status, SMTP_CLIENT_DELIVERED);
	assert_string_equal(r4[0].result.text, "fine");
	/* exactly two MAIL commands went out: the refused messages never reached the wire */
	const char *s = f->log;
	int mails = 0;
	while ((s = strstr(s, "MAIL FROM")) != NULL) {
		mails++;
		s++;
	}
	assert_int_equal(mails, 2);
	assert_false(has(f->log, "\xc3\xa9"));
	assert_int_equal(r.result.reply.status, SMTP_CLIENT_DELIVERED);
	free(got_data);
	got_data = NULL;
	free(p_big);
	free(p_small);
	fake_free(f);
}

/* CHUNKING: BDAT chunks, no dot-stuffing, the RCPT replies read before any body is sent. */
static char *bdat_body;
static size_t bdat_len;
static unsigned bdat_chunks;
static bool bdat_pipelining;

static void script_bdat(struct fake *f)
{
	fake_send(f, "220 hi\r\n");
	ehlo_reply(f, bdat_pipelining ? "250-PIPELINING\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n"
	                              : "250-CHUNKING\r\n250 SMTPUTF8\r\n");
	if (!fake_expect(f, "MAIL FROM:<s@posthorn.test> SMTPUTF8"))
		return;
	if (!bdat_pipelining)
		fake_send(f, "250 ok\r\n");
	if (!fake_expect(f, "RCPT"))
		return;
	if (f->inlen != 0) {
		fake_fail(f, "body sent before the RCPT reply");
		return;
	}
	fake_send(f, bdat_pipelining ? "250 ok\r\n250 ok\r\n" : "250 ok\r\n");
	for (;;) {
		char line[200];
		if (!fake_line(f, line, sizeof(line)))
			return;
		size_t n;
		char last[8] = "";
		if (sscanf(line, "BDAT %zu %7s", &n, last) < 1) {
			fake_fail(f, "expected BDAT, got %s", line);
			return;
		}
		if (!fake_bytes(f, n, &bdat_body, &bdat_len))
			return;
		if (!bdat_pipelining && f->inlen != 0) {
			fake_fail(f,
			          "the next chunk came before this one's reply without PIPELINING");
			return;
		}
		bdat_chunks++;
		fake_send(f, strcmp(last, "LAST") == 0 ? "250 2.0.0 all of it\r\n"
		                                       : "250 2.0.0 chunk\r\n");
		if (strcmp(last, "LAST") == 0)
			break;
	}
	if (fake_expect(f, "QUIT"))
		fake_send(f, "221 bye\r\n");
}

static void run_bdat(bool pipelining)
{
	bdat_pipelining = pipelining;
	bdat_chunks = 0;
	bdat_len = 0;
	struct fake *f = fake_start(script_bdat);
	const char *rp = "Return-Path: <s@posthorn.test>\r\n";
	size_t lines = 20000;
	size_t cap = strlen(rp) + lines * 40;
	char *content = malloc(cap), *expect = malloc(cap);
	size_t n = 0, e = 0;
	memcpy(content, rp, strlen(rp));
	n = strlen(rp);
	for (size_t i = 0; i < lines; i++) {
		int k =
		    snprintf(content + n, cap - n, "%s line %zu\r\n", i % 3 == 0 ? "." : "x", i);
		memcpy(expect + e, content + n, (size_t)k);
		n += (size_t)k;
		e += (size_t)k;
	}
	char *path = write_file("m5", content, n);
	struct smtp_client_rcpt rc[1] = {{.address = "a@dest.example"}};
	struct smtp_client_message m = {.path = path,
	                                .mail_from = "s@posthorn.test",
	                                .smtputf8 = true,
	                                .rcpts = rc,
	                                .rcpt_count = 1};
	struct run r = {.msgs = {&m}, .msg_count = 1};
	struct smtp_client_params p = test_params(f->port);
	run_session(&r, &p);
	fake_finish(f);
	assert_true(bdat_chunks >= 2); /* bigger than one block */
	assert_int_equal(bdat_len, e);
	assert_memory_equal(bdat_body, expect, e);
	assert_int_equal(rc[0].result.status, SMTP_CLIENT_DELIVERED);
	assert_string_equal(rc[0].result.text, "all of it");
	free(bdat_body);
	bdat_body = NULL;
	free(content);
	free(expect);
	free(path);
	fake_free(f);
}

static void test_bdat(void **state)
{
	(void)state;
	run_bdat(true);
	run_bdat(false);
}

/* ---- TLS ---- */

static char auth_line[256];
static bool tls_handshake_done;

/* STARTTLS, EHLO again over TLS (then AUTH when the client wants it), QUIT. */
static void script_starttls(struct fake *f)
{
	fake_send(f, "220 hi\r\n");
	ehlo_reply(f, "250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n");
	char line[256];
	if (!fake_line(f, line, sizeof(line)))
		return;
	if (strcmp(line, "STARTTLS") != 0) {
		snprintf(auth_line, sizeof(auth_line), "%s", line); /* e.g. AUTH before TLS */
		fake_send(f, "503 no\r\n");
		return;
	}
	fake_send(f, "220 2.0.0 ready\r\n");
	if (!fake_starttls(f))
		return;
	tls_handshake_done = true;
	ehlo_reply(f, "250 AUTH PLAIN LOGIN\r\n");
	if (!fake_line(f, line, sizeof(line)))
		return;
	if (strncmp(line, "AUTH", 4) == 0) {
		snprintf(auth_line, sizeof(auth_line), "%s", line);
		fake_send(f, "235 2.7.0 ok\r\n");
		if (!fake_line(f, line, sizeof(line)))
			return;
	}
	if (strcmp(line, "QUIT") == 0)
		fake_send(f, "221 bye\r\n");
	else
		fake_fail(f, "expected QUIT, got %s", line);
}

static struct tls_ctx *client_ctx(const char *ca_file)
{
	const char *error = NULL;
	struct tls_ctx *t = tls_client_ctx_new(ca_file, &error);
	assert_non_null(t);
	return t;
}

static void run_tls(struct run *r, void (*script)(struct fake *f),
                    enum smtp_client_tls_policy policy, enum conn_tls_verify verify,
                    const struct conn_tlsa *tlsa, size_t tlsa_count, const char *ca_file,
                    const char *host, const char *user)
{
	tls_handshake_done = false;
	auth_line[0] = '\0';
	struct fake *f = fake_start(script);
	struct tls_ctx *t = client_ctx(ca_file);
	struct smtp_client_params p = test_params(f->port);
	p.tls = policy;
	p.verify = verify;
	p.tlsa = tlsa;
	p.tlsa_count = tlsa_count;
	p.tls_ctx = t;
	if (host != NULL)
		p.host = host;
	if (user != NULL) {
		p.auth_user = user;
		p.auth_password = "secret";
	}
	run_session(r, &p);
	tls_ctx_unref(&t);
	fake_finish(f);
	fake_free(f);
}

static void test_starttls_opportunistic_auth(void **state)
{
	(void)state;
	struct run r = {0};
	run_tls(&r, script_starttls, SMTP_CLIENT_TLS_OPPORTUNISTIC, CONN_TLS_VERIFY_NONE, NULL, 0,
	        NULL, NULL, "user");
	assert_true(tls_handshake_done);
	assert_int_equal(r.result.reply.status, SMTP_CLIENT_DELIVERED);
	assert_true(has(r.tls_desc, "TLSv1."));
	assert_true(has(r.tls_desc, "with cipher"));
	assert_string_equal(r.tls_verify, "not verified: self-signed certificate");
	/* AUTH PLAIN over TLS: base64("\0user\0secret") */
	assert_string_equal(auth_line, "AUTH PLAIN AHVzZXIAc2VjcmV0");
}

static void test_starttls_pkix_fails_on_self_signed(void **state)
{
	(void)state;
	struct run r = {0};
	run_tls(&r, script_starttls, SMTP_CLIENT_TLS_MANDATORY, CONN_TLS_VERIFY_PKIX, NULL, 0, NULL,
	        NULL, NULL);
	assert_false(tls_handshake_done);
	assert_false(r.result.was_ready);
	assert_int_equal(r.result.reply.status, SMTP_CLIENT_TEMPFAIL);
	assert_true(r.result.tls_failed);
	assert_string_equal(r.result.reply.enhanced, "4.7.5");
	assert_true(
	    has(r.result.reply.text, "certificate verification failed: self-signed certificate"));
}

static void test_starttls_pkix_with_trusted_ca(void **state)
{
	(void)state;
	struct run r = {0};
	run_tls(&r, script_starttls, SMTP_CLIENT_TLS_MANDATORY, CONN_TLS_VERIFY_PKIX, NULL, 0,
	        cert_path, NULL, NULL);
	assert_true(tls_handshake_done);
	assert_int_equal(r.result.reply.status, SMTP_CLIENT_DELIVERED);
	assert_string_equal(r.tls_verify, "verified (CA chain, host name)");
	/* the same CA, another host name: the name check fails the handshake */
	struct run r2 = {0};
	run_tls(&r2, script_starttls, SMTP_CLIENT_TLS_MANDATORY, CONN_TLS_VERIFY_PKIX, NULL, 0,
	        cert_path, "other.test.example", NULL);
	assert_false(tls_handshake_done);
	assert_true(r2.result.tls_failed);
	assert_true(has(r2.result.reply.text, "certificate verification failed"));
	/* an address literal as the host: checked against the certificate's IP addresses */
	struct run r3 = {0};
	run_tls(&r3, script_starttls, SMTP_CLIENT_TLS_MANDATORY, CONN_TLS_VERIFY_PKIX, NULL, 0,
	        cert_path, "127.0.0.1", NULL);
	assert_false(tls_handshake_done);
	assert_true(has(r3.result.reply.text, "IP address mismatch"));
}

/* SHA-256 of the test certificate's SubjectPublicKeyInfo: TLSA 3 1 1. */
static void spki_sha256(unsigned char out[32])
{
	FILE *fp = fopen(cert_path, "r");
	assert_non_null(fp);
	X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(x);
	unsigned char *der = NULL;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	assert_true(len > 0);
	unsigned int olen = 0;
	assert_int_equal(EVP_Digest(der, (size_t)len, out, &olen, EVP_sha256(), NULL), 1);
	OPENSSL_free(der);
	X509_free(x);
}

static void test_dane(void **state)
{
	(void)state;
	unsigned char hash[32];
	spki_sha256(hash);
	struct conn_tlsa good = {3, 1, 1, hash, sizeof(hash)};
	struct run r = {0};
	run_tls(&r, script_starttls, SMTP_CLIENT_TLS_MANDATORY, CONN_TLS_VERIFY_DANE, &good, 1,
	        NULL, NULL, NULL);
	assert_true(tls_handshake_done);
	assert_int_equal(r.result.reply.status, SMTP_CLIENT_DELIVERED);
	assert_string_equal(r.tls_verify, "verified (DANE TLSA 3 1 1)");
	/* a wrong hash (and an unusable PKIX-EE record with the right one): the handshake fails */
	unsigned char wrong[32];
	memcpy(wrong, hash, sizeof(wrong));
	wrong[0] ^= 0xff;
	struct conn_tlsa bad[2] = {{3, 1, 1, wrong, sizeof(wrong)}, {1, 1, 1, hash, sizeof(hash)}};
	struct run r2 = {0};
	run_tls(&r2, script_starttls, SMTP_CLIENT_TLS_MANDATORY, CONN_TLS_VERIFY_DANE, bad, 2, NULL,
	        NULL, NULL);
	assert_false(tls_handshake_done);
	assert_true(r2.result.tls_failed);
	assert_int_equal(r2.result.reply.status, SMTP_CLIENT_TEMPFAIL);
}

static void script_no_starttls(struct fake *f)
{
	fake_send(f, "220 hi\r\n");
	ehlo_reply(f, "250 AUTH PLAIN\r\n");
	char line[256];
	if (!fake_line(f, line, sizeof(line)))
		return;
	if (strcmp(line, "QUIT") != 0) {
		snprintf(auth_line, sizeof(auth_line), "%s", line);
		fake_send(f, "503 no\r\n");
		return;
	}
	fake_send(f, "221 bye\r\n");
}

static void test_mandatory_tls_not_offered(void **state)
{
	(void)state;
	struct run r = {0};
	run_tls(&r, script_no_starttls, SMTP_CLIENT_TLS_MANDATORY, CONN_TLS_VERIFY_NONE, NULL, 0,
	        NULL, NULL, NULL);
	assert_false(r.result.was_ready);
	assert_int_equal(r.result.reply.status, SMTP_CLIENT_TEMPFAIL);
	assert_string_equal(r.result.reply.enhanced, "4.7.10");
	assert_string_equal(auth_line, "");
	/* credentials are never sent without TLS */
	struct run r2 = {0};
	run_tls(&r2, script_no_starttls, SMTP_CLIENT_TLS_OPPORTUNISTIC, CONN_TLS_VERIFY_NONE, NULL,
	        0, NULL, NULL, "user");
	assert_false(r2.result.was_ready);
	assert_string_equal(r2.result.reply.enhanced, "4.7.10");
	assert_string_equal(auth_line, "");
}

static void script_implicit(struct fake *f)
{
	if (!fake_starttls(f)) {
		fake_fail(f, "implicit TLS handshake failed");
		return;
	}
	tls_handshake_done = true;
	fake_send(f, "220 hi over TLS\r\n");
	ehlo_reply(f, "250 AUTH LOGIN\r\n");
	/* AUTH LOGIN: user and password in two steps */
	if (!fake_expect(f, "AUTH LOGIN"))
		return;
	fake_send(f, "334 VXNlcm5hbWU6\r\n");
	if (!fake_expect(f, "dXNlcg=="))
		return;
	fake_send(f, "334 UGFzc3dvcmQ6\r\n");
	if (!fake_expect(f, "c2VjcmV0"))
		return;
	fake_send(f, "235 ok\r\n");
	if (fake_expect(f, "QUIT"))
		fake_send(f, "221 bye\r\n");
}

static void test_implicit_tls_auth_login(void **state)
{
	(void)state;
	struct run r = {0};
	run_tls(&r, script_implicit, SMTP_CLIENT_TLS_IMPLICIT, CONN_TLS_VERIFY_NONE, NULL, 0, NULL,
	        NULL, "user");
	assert_true(tls_handshake_done);
	assert_true(r.result.was_ready);
	assert_int_equal(r.result.reply.status, SMTP_CLIENT_DELIVERED);
	assert_true(has(r.tls_desc, "TLSv1."));
}

/* ---- connecting ---- */

static void test_connect_refused(void **state)
{
	(void)state;
	/* a port nobody listens on: bind one, close it */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	socklen_t sl = sizeof(sa);
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	close(fd);
	struct run r = {0};
	struct smtp_client_params p = test_params(ntohs(sa.sin_port));
	run_session(&r, &p);
	assert_false(r.result.was_ready);
	assert_int_equal(r.result.reply.status, SMTP_CLIENT_TEMPFAIL);
	assert_string_equal(r.result.reply.enhanced, "4.4.1");
	assert_true(has(r.result.reply.text, "Connection refused"));
	/* bad parameters are refused at once */
	struct net_loop *loop = net_loop_new();
	const char *error = NULL;
	p.ip = "mx.example.org";
	assert_null(smtp_client_start(loop, &p, &run_callbacks, &r, &error));
	assert_non_null(error);
	net_loop_free(&loop);
}

/* A listener whose accept queue is full drops our SYN: the connect timeout ends it. */
static void test_connect_timeout(void **state)
{
	(void)state;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	socklen_t sl = sizeof(sa);
	getsockname(lfd, (struct sockaddr *)&sa, &sl);
	assert_int_equal(listen(lfd, 0), 0);
	int filler = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(filler, (struct sockaddr *)&sa, sizeof(sa)), 0);
	struct run r = {0};
	struct smtp_client_params p = test_params(ntohs(sa.sin_port));
	p.timeouts.connect = 1;
	run_session(&r, &p);
	close(filler);
	close(lfd);
	assert_false(r.result.was_ready);
	assert_int_equal(r.result.reply.status, SMTP_CLIENT_TEMPFAIL);
	assert_string_equal(r.result.reply.enhanced, "4.4.1");
	assert_true(has(r.result.reply.text, "timed out"));
}

static void script_silent(struct fake *f)
{
	char line[100];
	fake_line(f, line, sizeof(line)); /* never greet; the client gives up first */
	f->error[0] = '\0';
}

static void test_greeting_timeout(void **state)
{
	(void)state;
	struct fake *f = fake_start(script_silent);
	struct run r = {0};
	struct smtp_client_params p = test_params(f->port);
	p.timeouts.greeting = 1;
	run_session(&r, &p);
	fake_finish(f);
	assert_int_equal(r.result.reply.status, SMTP_CLIENT_TEMPFAIL);
	assert_string_equal(r.result.reply.enhanced, "4.4.2");
	assert_true(has(r.result.reply.text, "timeout"));
	fake_free(f);
}

/* No reply after the final dot: the data_done timeout defers the recipients (never a
 * delivery counted as done, never a bounce). */
static void script_no_final_reply(struct fake *f)
{
	fake_send(f, "220 hi\r\n");
	ehlo_reply(f, "250 PIPELINING\r\n");
	if (!fake_expect(f, "MAIL") || !fake_expect(f, "RCPT") || !fake_expect(f, "DATA"))
		return;
	fake_send(f, "250 ok\r\n250 ok\r\n354 go\r\n");
	if (!fake_data(f, &got_data, &got_len))
		return;
	char line[100];
	fake_line(f, line, sizeof(line)); /* silence until the client hangs up */
	f->error[0] = '\0';
}

static void test_data_done_timeout(void **state)
{
	(void)state;
	struct fake *f = fake_start(script_no_final_reply);
	char *path = write_file("m7", "x\r\n", 3);
	struct smtp_client_rcpt rc[1] = {{.address = "a@dest.example"}};
	struct smtp_client_message m = {
	    .path = path, .mail_from = "s@posthorn.test", .rcpts = rc, .rcpt_count = 1};
	struct run r = {.msgs = {&m}, .msg_count = 1};
	struct smtp_client_params p = test_params(f->port);
	p.timeouts.data_done = 1;
	run_session(&r, &p);
	fake_finish(f);
	assert_int_equal(rc[0].result.status, SMTP_CLIENT_TEMPFAIL);
	assert_string_equal(rc[0].result.enhanced, "4.4.2");
	assert_true(has(rc[0].result.text, "timeout waiting for the reply to the message"));
	free(got_data);
	got_data = NULL;
	free(path);
	fake_free(f);
}

/* IPv6, with a source address to bind; a source of the other family is refused at once. */
static char peer_ip[64];

static void script_ipv6(struct fake *f)
{
	struct sockaddr_in6 sa;
	socklen_t sl = sizeof(sa);
	getpeername(f->fd, (struct sockaddr *)&sa, &sl);
	inet_ntop(AF_INET6, &sa.sin6_addr, peer_ip, sizeof(peer_ip));
	fake_send(f, "220 hi\r\n");
	ehlo_reply(f, "250 PIPELINING\r\n");
	if (fake_expect(f, "QUIT"))
		fake_send(f, "221 bye\r\n");
}

static void test_ipv6_local_bind(void **state)
{
	(void)state;
	struct fake *f = fake_start_on(script_ipv6, true);
	struct run r = {0};
	struct smtp_client_params p = test_params(f->port);
	p.ip = "::1";
	p.local_ip = "::1";
	run_session(&r, &p);
	fake_finish(f);
	assert_true(r.result.was_ready);
	assert_int_equal(r.result.reply.status, SMTP_CLIENT_DELIVERED);
	assert_string_equal(peer_ip, "::1");
	fake_free(f);
	struct net_loop *loop = net_loop_new();
	const char *error = NULL;
	p.local_ip = "127.0.0.1";
	assert_null(smtp_client_start(loop, &p, &run_callbacks, &r, &error));
	assert_non_null(error);
	net_loop_free(&loop);
}

/* STARTTLS refused: opportunistic goes on in plain text, mandatory gives up. */
static void script_starttls_refused(struct fake *f)
{
	fake_send(f, "220 hi\r\n");
	ehlo_reply(f, "250 STARTTLS\r\n");
	if (!fake_expect(f, "STARTTLS"))
		return;
	fake_send(f, "454 4.7.0 TLS not available now\r\n");
	char line[256];
	if (!fake_line(f, line, sizeof(line)))
		return;
	snprintf(auth_line, sizeof(auth_line), "%s", line);
	fake_send(f, "221 bye\r\n");
}

static void test_starttls_refused(void **state)
{
	(void)state;
	struct run r = {0};
	run_tls(&r, script_starttls_refused, SMTP_CLIENT_TLS_OPPORTUNISTIC, CONN_TLS_VERIFY_NONE,
	        NULL, 0, NULL, NULL, NULL);
	assert_true(r.result.was_ready);
	assert_string_equal(auth_line, "QUIT"); /* ready in plain text, then QUIT */
	assert_string_equal(r.tls_desc, "");
	struct run r2 = {0};
	run_tls(&r2, script_starttls_refused, SMTP_CLIENT_TLS_MANDATORY, CONN_TLS_VERIFY_NONE, NULL,
	        0, NULL, NULL, NULL);
	assert_false(r2.result.was_ready);
	assert_int_equal(r2.result.reply.code, 454);
	assert_true(r2.result.reply.remote);
	assert_true(has(r2.result.reply.text, "STARTTLS: TLS not available now"));
}

/* REQUIRETLS (RFC 8689) without verified TLS: refused before MAIL with 5.7.30. */
static void script_requiretls(struct fake *f)
{
	fake_send(f, "220 hi\r\n");
	ehlo_reply(f, "250 REQUIRETLS\r\n");
	if (fake_expect(f, "QUIT"))
		fake_send(f, "221 bye\r\n");
}

static void test_requiretls_needs_verified_tls(void **state)
{
	(void)state;
	struct fake *f = fake_start(script_requiretls);
	char *path = write_file("m6", "x\r\n", 3);
	struct smtp_client_rcpt rc[1] = {{.address = "a@dest.example"}};
	struct smtp_client_message m = {.path = path,
	                                .mail_from = "s@posthorn.test",
	                                .requiretls = true,
	                                .rcpts = rc,
	                                .rcpt_count = 1};
	/* and an envelope that would inject a command: refused, never written */
	struct smtp_client_rcpt rc2[1] = {{.address = "a@dest.example>\r\nRSET\r\nRCPT TO:<x@y"}};
	struct smtp_client_message m2 = {
	    .path = path, .mail_from = "s@posthorn.test", .rcpts = rc2, .rcpt_count = 1};
	struct run r = {.msgs = {&m, &m2}, .msg_count = 2};
	struct smtp_client_params p = test_params(f->port);
	run_session(&r, &p);
	fake_finish(f);
	assert_int_equal(rc[0].result.status, SMTP_CLIENT_PERMFAIL);
	assert_string_equal(rc[0].result.enhanced, "5.7.30");
	assert_int_equal(rc2[0].result.status, SMTP_CLIENT_PERMFAIL);
	assert_string_equal(rc2[0].result.enhanced, "5.1.3");
	assert_int_equal(r.done_count, 2);
	assert_false(has(f->log, "MAIL"));
	assert_false(has(f->log, "RSET"));
	free(path);
	fake_free(f);
}

/* ---- against a real server: aiosmtpd (python3-aiosmtpd) ---- */

static char *read_all(const char *path, size_t *len_r)
{
	FILE *fp = fopen(path, "rb");
	if (fp == NULL)
		return NULL;
	char *data = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = (len + 4096 + 1) * 2;
			data = realloc(data, cap);
		}
		size_t n = fread(data + len, 1, 4096, fp);
		len += n;
		if (n == 0)
			break;
	}
	fclose(fp);
	data[len] = '\0';
	*len_r = len;
	return data;
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	socklen_t sl = sizeof(sa);
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	close(fd);
	return ntohs(sa.sin_port);
}

static void test_aiosmtpd(void **state)
{
	(void)state;
	char out[160], script[512], ready[200], portbuf[16];
	snprintf(out, sizeof(out), "%s/sink", tmpdir);
	assert_int_equal(mkdir(out, 0700), 0);
	snprintf(ready, sizeof(ready), "%s/ready", out);
	/* the helper script sits beside this file */
	const char *me = __FILE__;
	const char *slash = strrchr(me, '/');
	snprintf(script, sizeof(script), "%.*saiosmtpd_sink.py",
	         slash != NULL ? (int)(slash - me + 1) : 0, me);
	int port = free_port();
	snprintf(portbuf, sizeof(portbuf), "%d", port);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/usr/bin/python3", "python3", script, portbuf, cert_path, key_path, out,
		      (char *)NULL);
		_exit(127);
	}
	struct stat st;
	for (int i = 0; i < 200 && stat(ready, &st) != 0; i++) {
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	bool up = stat(ready, &st) == 0;
	if (up) {
		char *p1 = write_file("a1", body_in, sizeof(body_in) - 1);
		const char eight[] = "Subject: caf\xc3\xa9\r\n\r\nd\xc3\xa9j\xc3\xa0 vu\r\n";
		char *p2 = write_file("a2", eight, sizeof(eight) - 1);
		struct smtp_client_rcpt r1[2] = {{.address = "a@dest.example"},
		                                 {.address = "reject@dest.example"}};
		struct smtp_client_rcpt r2[1] = {{.address = "b@dest.example"}};
		const char prefix[] = "DKIM-Signature: v=1; test\r\n";
		struct smtp_client_message m1 = {.path = p1,
		                                 .prefix = prefix,
		                                 .prefix_len = sizeof(prefix) - 1,
		                                 .mail_from = "sender@posthorn.test",
		                                 .rcpts = r1,
		                                 .rcpt_count = 2};
		struct smtp_client_message m2 = {.path = p2,
		                                 .mail_from = "sender@posthorn.test",
		                                 .eightbit = true,
		                                 .rcpts = r2,
		                                 .rcpt_count = 1};
		struct run r = {.msgs = {&m1, &m2}, .msg_count = 2};
		struct tls_ctx *t = client_ctx(NULL);
		struct smtp_client_params p = test_params(port);
		p.tls = SMTP_CLIENT_TLS_OPPORTUNISTIC;
		p.tls_ctx = t;
		run_session(&r, &p);
		tls_ctx_unref(&t);
		assert_int_equal(r.result.reply.status, SMTP_CLIENT_DELIVERED);
		assert_true(has(r.tls_desc, "TLSv1."));
		assert_int_equal(r1[0].result.status, SMTP_CLIENT_DELIVERED);
		assert_string_equal(r1[0].result.text, "OK queued as sink-1");
		assert_int_equal(r1[1].result.status, SMTP_CLIENT_PERMFAIL);
		assert_string_equal(r1[1].result.enhanced, "5.1.1");
		assert_int_equal(r2[0].result.status, SMTP_CLIENT_DELIVERED);
		free(p1);
		free(p2);
	}
	kill(pid, SIGTERM);
	int status = 0;
	waitpid(pid, &status, 0);
	assert_true(up); /* python3-aiosmtpd is in tests/deps.sh */
	char path[220];
	size_t len = 0;
	snprintf(path, sizeof(path), "%s/msg-1", out);
	char *msg = read_all(path, &len);
	assert_non_null(msg);
	/* what the server stored is the message as we mean it: un-stuffed, no Return-Path */
	char expect[sizeof(body_out) + 8];
	size_t e = 0;
	for (size_t i = 0; i < sizeof(body_out) - 1; i++) {
		if (body_out[i] == '.' && (i == 0 || body_out[i - 1] == '\n'))
			i++; /* drop the stuffing dot */
		expect[e++] = body_out[i];
	}
	assert_int_equal(len, e);
	assert_memory_equal(msg, expect, e);
	free(msg);
	snprintf(path, sizeof(path), "%s/env-1", out);
	char *env = read_all(path, &len);
	assert_non_null(env);
	assert_true(has(env, "\"tls\": true"));
	assert_true(has(env, "\"rcpt_tos\": [\"a@dest.example\"]"));
	assert_true(has(env, "SIZE="));
	free(env);
	snprintf(path, sizeof(path), "%s/env-2", out);
	env = read_all(path, &len);
	assert_non_null(env);
	assert_true(has(env, "BODY=8BITMIME"));
	free(env);
}

/* REQUIRETLS over verified TLS to a server that offers it: MAIL carries REQUIRETLS. */
static void script_requiretls_tls(struct fake *f)
{
	fake_send(f, "220 hi\r\n");
	ehlo_reply(f, "250-STARTTLS\r\n250 REQUIRETLS\r\n");
	if (!fake_expect(f, "STARTTLS"))
		return;
	fake_send(f, "220 go\r\n");
	if (!fake_starttls(f)) {
		fake_fail(f, "handshake failed");
		return;
	}
	ehlo_reply(f, "250 REQUIRETLS\r\n");
	if (!fake_line(f, got_mail, sizeof(got_mail)))
		return;
	fake_send(f, "250 ok\r\n");
	if (!fake_expect(f, "RCPT"))
		return;
	fake_send(f, "250 ok\r\n");
	if (!fake_expect(f, "DATA"))
		return;
	fake_send(f, "354 go\r\n");
	if (!fake_data(f, &got_data, &got_len))
		return;
	fake_send(f, "250 2.0.0 ok\r\n");
	if (fake_expect(f, "QUIT"))
		fake_send(f, "221 bye\r\n");
}

static void test_requiretls_over_verified_tls(void **state)
{
	(void)state;
	struct fake *f = fake_start(script_requiretls_tls);
	char *path = write_file("m8", "x\r\n", 3);
	struct smtp_client_rcpt rc[1] = {{.address = "a@dest.example"}};
	struct smtp_client_message m = {.path = path,
	                                .mail_from = "s@posthorn.test",
	                                .requiretls = true,
	                                .rcpts = rc,
	                                .rcpt_count = 1};
	struct run r = {.msgs = {&m}, .msg_count = 1};
	struct tls_ctx *t = client_ctx(cert_path);
	struct smtp_client_params p = test_params(f->port);
	p.tls = SMTP_CLIENT_TLS_MANDATORY;
	p.verify = CONN_TLS_VERIFY_PKIX;
	p.tls_ctx = t;
	run_session(&r, &p);
	tls_ctx_unref(&t);
	fake_finish(f);
	assert_string_equal(got_mail, "MAIL FROM:<s@posthorn.test> REQUIRETLS");
	assert_int_equal(rc[0].result.status, SMTP_CLIENT_DELIVERED);
	free(got_data);
	got_data = NULL;
	free(path);
	fake_free(f);
}

static int setup(void **state)
{
	(void)state;
	log_setup(LOG_LEVEL_WARN, false);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/posthorn-smtpc-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", tmpdir);
	snprintf(key_path, sizeof(key_path), "%s/key.pem", tmpdir);
	const char *error = NULL;
	assert_int_equal(tls_generate_self_signed(cert_path, key_path, TEST_HOST, &error), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pipelining_dot_stuffing),
	    cmocka_unit_test(test_helo_one_at_a_time),
	    cmocka_unit_test(test_greeting_554),
	    cmocka_unit_test(test_421_mid_session),
	    cmocka_unit_test(test_drop_mid_data),
	    cmocka_unit_test(test_refusals_and_reuse),
	    cmocka_unit_test(test_bdat),
	    cmocka_unit_test(test_starttls_opportunistic_auth),
	    cmocka_unit_test(test_starttls_pkix_fails_on_self_signed),
	    cmocka_unit_test(test_starttls_pkix_with_trusted_ca),
	    cmocka_unit_test(test_dane),
	    cmocka_unit_test(test_mandatory_tls_not_offered),
	    cmocka_unit_test(test_implicit_tls_auth_login),
	    cmocka_unit_test(test_connect_refused),
	    cmocka_unit_test(test_greeting_timeout),
	    cmocka_unit_test(test_ipv6_local_bind),
	    cmocka_unit_test(test_starttls_refused),
	    cmocka_unit_test(test_requiretls_needs_verified_tls),
	    cmocka_unit_test(test_requiretls_over_verified_tls),
	    cmocka_unit_test(test_aiosmtpd),
	    cmocka_unit_test(test_data_done_timeout),
	    cmocka_unit_test(test_connect_timeout),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
