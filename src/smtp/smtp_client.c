/* The SMTP client session engine (see smtp_client.h): a state machine over net/conn that
 * reads replies with smtp_reply, and a body streamer that turns the stored file into DATA
 * (CRLF lines, dot-stuffed, ending in CRLF.CRLF) or BDAT chunks block by block. */
#include "smtp/smtp_client.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base64.h"
#include "core/buf.h"
#include "core/conf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "net/tls.h"
#include "smtp/smtp_body.h"
#include "smtp/smtp_reply.h"
#include "core/banned.h"

/* Octets of the file read per block; a DATA write or one BDAT chunk. */
#define SMTP_CLIENT_BLOCK (64 * 1024)
/* Room for an encoded block and the end of the body. */
#define SMTP_CLIENT_OUT_MAX (SMTP_BODY_OUT_MAX(SMTP_CLIENT_BLOCK) + SMTP_BODY_END_MAX)
/* A first line of the file that is a Return-Path: field is looked for in this many octets. */
#define SMTP_CLIENT_RETURN_PATH_MAX 4096

enum smtp_client_state {
	SC_CONNECTING,
	SC_TLS_IMPLICIT, /* handshake before the greeting */
	SC_GREETING,
	SC_EHLO,
	SC_HELO,
	SC_STARTTLS,
	SC_TLS, /* handshake after STARTTLS */
	SC_AUTH_PLAIN,
	SC_AUTH_LOGIN_USER,
	SC_AUTH_LOGIN_PASS,
	SC_AUTH_LOGIN_DONE,
	SC_READY,     /* waiting for the caller */
	SC_REFUSED,   /* a message refused before any command: message_done on the next turn */
	SC_TXN,       /* MAIL/RCPT/DATA replies due */
	SC_BODY,      /* streaming the DATA body */
	SC_DATA_DONE, /* the reply after the final dot is due */
	SC_BDAT,      /* streaming BDAT chunks and reading their replies */
	SC_RSET,
	SC_QUIT,
	SC_CLOSING, /* conn_close() called: on_closed follows */
};

static const char *const smtp_client_state_names[] = {
    "connecting", "tls-implicit", "greeting", "ehlo", "helo",  "starttls", "tls",
    "auth",       "auth",         "auth",     "auth", "ready", "refused",  "mail/rcpt",
    "data",       "data-done",    "bdat",     "rset", "quit",  "closing",
};

/* One message in flight. */
struct smtp_client_txn {
	struct smtp_client_message *msg;
	bool *accepted; /* per recipient: RCPT got 2xx (result still pending) */
	size_t accepted_count;
	int fd;
	off_t offset, size; /* next file octet to read; file size */
	size_t next_reply;  /* 0 = MAIL, 1..n = RCPT, n + 1 = DATA */
	size_t sent;        /* commands written, same numbering */
	bool data_in_group; /* DATA was pipelined with MAIL and RCPT */
	bool bdat;
	bool mail_failed;
	struct smtp_client_reply mail_reply;
	bool dot_only; /* 354 without an accepted recipient: an empty message, then RSET */
	/* body */
	size_t prefix_pos;
	struct smtp_body_encoder enc;
	bool body_done;
	unsigned bdat_outstanding;
	bool bdat_failed, bdat_last_sent;
	struct smtp_client_reply bdat_reply;
};

struct smtp_client {
	struct conn *conn;
	enum smtp_client_state state;
	const struct smtp_client_callbacks *cb;
	void *ctx;
	char *ip, *host, *helo_name, *local_ip;
	int port;
	enum smtp_client_tls_policy tls_policy;
	enum conn_tls_verify verify;
	struct conn_tlsa *tlsa;
	size_t tlsa_count;
	struct tls_ctx *tls_ctx;
	char *auth_user, *auth_password;
	struct smtp_client_timeouts timeouts;
	struct smtp_reply_parser parser;
	struct smtp_ehlo ehlo;
	bool ehlo_done_tls; /* EHLO was said again after STARTTLS */
	bool in_txn;
	bool in_message_done; /* inside the message_done callback */
	bool quit_wanted;     /* smtp_client_quit() came from message_done: QUIT, not ready */
	struct smtp_client_txn txn;
	struct smtp_client_result result;
	bool result_set;
	unsigned char *out; /* SMTP_CLIENT_OUT_MAX */
	unsigned char *in;  /* SMTP_CLIENT_BLOCK */
	struct buf line;    /* scratch for one-line reply texts */
};

static void smtp_client_fail(struct smtp_client *c, const struct smtp_client_reply *why);
static void smtp_client_stream(struct smtp_client *c);

static void smtp_client_set_state(struct smtp_client *c, enum smtp_client_state s)
{
	if (log_debug_enabled())
		log_debug("session=%s proto=smtp-client event=state from=%s to=%s",
		          conn_id(c->conn), smtp_client_state_names[c->state],
		          smtp_client_state_names[s]);
	c->state = s;
}

static void smtp_client_timer(struct smtp_client *c, unsigned seconds)
{
	conn_set_timer(c->conn, seconds * 1000u);
}

/* A local verdict (not the server's words). */
static void smtp_client_local(struct smtp_client_reply *r, enum smtp_client_status status, int code,
                              const char *enhanced, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void smtp_client_local(struct smtp_client_reply *r, enum smtp_client_status status, int code,
                              const char *enhanced, const char *fmt, ...)
{
	r->status = status;
	r->remote = false;
	r->code = code;
	snprintf(r->enhanced, sizeof(r->enhanced), "%s", enhanced);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

static void smtp_client_from_reply(struct smtp_client *c, const struct smtp_reply *reply,
                                   struct smtp_client_reply *r)
{
	int cls = reply->code / 100;
	r->status = cls == 2   ? SMTP_CLIENT_DELIVERED
	            : cls == 5 ? SMTP_CLIENT_PERMFAIL
	                       : SMTP_CLIENT_TEMPFAIL; /* 4xx, and a 3xx where none belongs */
	r->remote = true;
	r->code = reply->code;
	snprintf(r->enhanced, sizeof(r->enhanced), "%s", reply->enhanced);
	snprintf(r->text, sizeof(r->text), "%s", smtp_reply_oneline(reply, &c->line));
}

static void smtp_client_write(struct smtp_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void smtp_client_write(struct smtp_client *c, const char *fmt, ...)
{
	struct buf b;
	buf_init(&b, SMTP_REPLY_LINE_MAX * 4);
	va_list ap;
	va_start(ap, fmt);
	int r = buf_vprintf(&b, fmt, ap);
	va_end(ap);
	ASSERT(r == 0);
	if (log_debug_enabled() && strncmp(b.data, "AUTH", 4) != 0 &&
	    c->state != SC_AUTH_LOGIN_USER && c->state != SC_AUTH_LOGIN_PASS)
		log_debug("session=%s proto=smtp-client event=send line=\"%.*s\"", conn_id(c->conn),
		          (int)(b.len > 2 ? b.len - 2 : 0), b.data);
	conn_write(c->conn, b.data, b.len);
	explicit_bzero(b.data, b.len);
	buf_free(&b);
}

/* ---- session end ---- */

/* Every recipient of the message in flight without a result gets why; message_done. */
static void smtp_client_txn_fail_pending(struct smtp_client *c, const struct smtp_client_reply *why)
{
	struct smtp_client_txn *t = &c->txn;
	for (size_t i = 0; i < t->msg->rcpt_count; i++)
		if (t->msg->rcpts[i].result.status == SMTP_CLIENT_PENDING)
			t->msg->rcpts[i].result = *why;
}

static void smtp_client_txn_end(struct smtp_client *c)
{
	struct smtp_client_txn *t = &c->txn;
	if (t->fd >= 0)
		close(t->fd);
	free(t->accepted);
	struct smtp_client_message *msg = t->msg;
	memset(t, 0, sizeof(*t));
	t->fd = -1;
	c->in_txn = false;
	c->in_message_done = true;
	if (c->cb->message_done != NULL)
		c->cb->message_done(c, msg, c->ctx);
	c->in_message_done = false;
}

/* The session failed: remember why (the first reason wins), answer the message in flight,
 * close. closed follows from on_closed. */
static void smtp_client_fail(struct smtp_client *c, const struct smtp_client_reply *why)
{
	if (!c->result_set) {
		c->result.reply = *why;
		if (why->status == SMTP_CLIENT_DELIVERED)
			c->result.reply.status = SMTP_CLIENT_TEMPFAIL;
		c->result_set = true;
	}
	if (c->in_txn) {
		struct smtp_client_reply r = *why;
		if (r.status != SMTP_CLIENT_PERMFAIL)
			r.status = SMTP_CLIENT_TEMPFAIL;
		smtp_client_txn_fail_pending(c, &r);
		smtp_client_txn_end(c);
	}
	if (c->state != SC_CLOSING) {
		smtp_client_set_state(c, SC_CLOSING);
		conn_set_timer(c->conn, 0);
		conn_close(c->conn);
	}
}

/* A reply that ends the session (greeting, EHLO, STARTTLS, AUTH refused): QUIT politely. */
static void smtp_client_fail_reply(struct smtp_client *c, const struct smtp_reply *reply,
                                   const char *what)
{
	struct smtp_client_reply r;
	smtp_client_from_reply(c, reply, &r);
	if (r.status == SMTP_CLIENT_DELIVERED)
		r.status = SMTP_CLIENT_TEMPFAIL;
	struct buf b;
	buf_init(&b, sizeof(r.text) - 1);
	if (buf_printf(&b, "%s: ", what) == 0) {
		size_t n = strlen(r.text);
		if (n > b.max - b.len)
			n = b.max - b.len;
		if (buf_append(&b, r.text, n) == 0)
			memcpy(r.text, b.data, b.len + 1);
	}
	buf_free(&b);
	if (reply->code != 421)
		smtp_client_write(c, "QUIT\r\n");
	smtp_client_fail(c, &r);
}

static void smtp_client_free(struct smtp_client *c)
{
	smtp_reply_parser_deinit(&c->parser);
	buf_free(&c->line);
	if (c->auth_password != NULL) {
		explicit_bzero(c->auth_password, strlen(c->auth_password));
		free(c->auth_password);
	}
	free(c->auth_user);
	free(c->ip);
	free(c->host);
	free(c->helo_name);
	free(c->local_ip);
	free(c->tlsa);
	free(c->out);
	free(c->in);
	tls_ctx_unref(&c->tls_ctx);
	free(c);
}

/* ---- greeting, EHLO, STARTTLS, AUTH ---- */

static void smtp_client_ready(struct smtp_client *c)
{
	smtp_client_set_state(c, SC_READY);
	conn_set_timer(c->conn, 0);
	c->result.was_ready = true;
	if (c->quit_wanted) {
		smtp_client_quit(c);
		return;
	}
	if (c->cb->ready != NULL)
		c->cb->ready(c, c->ctx);
}

static void smtp_client_send_ehlo(struct smtp_client *c)
{
	smtp_client_set_state(c, SC_EHLO);
	smtp_client_timer(c, c->timeouts.command);
	smtp_client_write(c, "EHLO %s\r\n", c->helo_name);
}

static void smtp_client_auth(struct smtp_client *c)
{
	if (!conn_is_tls(c->conn)) {
		struct smtp_client_reply r;
		smtp_client_local(&r, SMTP_CLIENT_TEMPFAIL, 450, "4.7.10",
		                  "refusing to authenticate to %s without TLS", c->host);
		smtp_client_write(c, "QUIT\r\n");
		smtp_client_fail(c, &r);
		return;
	}
	smtp_client_timer(c, c->timeouts.command);
	if (c->ehlo.auth & SMTP_EHLO_AUTH_PLAIN) {
		/* RFC 4616: authzid NUL authcid NUL passwd */
		size_t ul = strlen(c->auth_user), pl = strlen(c->auth_password);
		unsigned char *raw = xmalloc(ul + pl + 2);
		raw[0] = '\0';
		memcpy(raw + 1, c->auth_user, ul);
		raw[ul + 1] = '\0';
		memcpy(raw + ul + 2, c->auth_password, pl);
		char *b64 = base64_encode_dup(raw, ul + pl + 2);
		explicit_bzero(raw, ul + pl + 2);
		free(raw);
		smtp_client_set_state(c, SC_AUTH_PLAIN);
		smtp_client_write(c, "AUTH PLAIN %s\r\n", b64);
		explicit_bzero(b64, strlen(b64));
		free(b64);
	} else if (c->ehlo.auth & SMTP_EHLO_AUTH_LOGIN) {
		smtp_client_set_state(c, SC_AUTH_LOGIN_USER);
		smtp_client_write(c, "AUTH LOGIN\r\n");
	} else {
		struct smtp_client_reply r;
		smtp_client_local(&r, SMTP_CLIENT_TEMPFAIL, 450, "4.7.0",
		                  "%s offers no AUTH mechanism we support (PLAIN, LOGIN)", c->host);
		smtp_client_write(c, "QUIT\r\n");
		smtp_client_fail(c, &r);
	}
}

/* After EHLO/HELO (and after TLS): STARTTLS, AUTH, or ready. */
static void smtp_client_after_hello(struct smtp_client *c)
{
	bool tls = conn_is_tls(c->conn);
	if (!tls && c->tls_policy != SMTP_CLIENT_TLS_DISABLED && c->ehlo.starttls) {
		smtp_client_set_state(c, SC_STARTTLS);
		smtp_client_timer(c, c->timeouts.command);
		smtp_client_write(c, "STARTTLS\r\n");
		return;
	}
	if (!tls && c->tls_policy == SMTP_CLIENT_TLS_MANDATORY) {
		struct smtp_client_reply r;
		smtp_client_local(&r, SMTP_CLIENT_TEMPFAIL, 450, "4.7.10",
		                  "TLS is required, but %s does not offer STARTTLS", c->host);
		smtp_client_write(c, "QUIT\r\n");
		smtp_client_fail(c, &r);
		return;
	}
	if (c->auth_user != NULL) {
		smtp_client_auth(c);
		return;
	}
	smtp_client_ready(c);
}

static void smtp_client_start_tls(struct smtp_client *c)
{
	struct conn_tls_client_params p = {
	    .host = c->host,
	    .verify = c->verify,
	    .tlsa = c->tlsa,
	    .tlsa_count = c->tlsa_count,
	};
	conn_set_tls_timeout(c->conn,
	                     c->timeouts.connect > 0 ? c->timeouts.connect : c->timeouts.command);
	if (c->tls_ctx == NULL || conn_start_tls_client(c->conn, c->tls_ctx, &p) < 0) {
		struct smtp_client_reply r;
		smtp_client_local(&r, SMTP_CLIENT_TEMPFAIL, 450, "4.7.5",
		                  "cannot start TLS with %s", c->host);
		c->result.tls_failed = true;
		smtp_client_fail(c, &r);
		return;
	}
	conn_set_timer(c->conn, 0);
	smtp_reply_parser_deinit(&c->parser);
	smtp_reply_parser_init(&c->parser);
}

static void smtp_client_session_reply(struct smtp_client *c, const struct smtp_reply *reply)
{
	int cls = reply->code / 100;
	switch (c->state) {
	case SC_GREETING:
		if (reply->code != 220) {
			/* RFC 5321 §3.1: 554 (or any refusal) means "do not use this host" */
			smtp_client_fail_reply(c, reply, "greeting");
			return;
		}
		smtp_client_send_ehlo(c);
		return;
	case SC_EHLO:
		if (cls == 2) {
			smtp_reply_ehlo(reply, &c->ehlo);
			smtp_client_after_hello(c);
		} else if (cls == 5 && !conn_is_tls(c->conn)) {
			/* RFC 5321 §3.2: an old server; HELO, without any extension */
			memset(&c->ehlo, 0, sizeof(c->ehlo));
			smtp_client_set_state(c, SC_HELO);
			smtp_client_timer(c, c->timeouts.command);
			smtp_client_write(c, "HELO %s\r\n", c->helo_name);
		} else {
			smtp_client_fail_reply(c, reply, "EHLO");
		}
		return;
	case SC_HELO:
		if (cls == 2)
			smtp_client_after_hello(c);
		else
			smtp_client_fail_reply(c, reply, "HELO");
		return;
	case SC_STARTTLS:
		if (reply->code == 220) {
			smtp_client_set_state(c, SC_TLS);
			smtp_client_start_tls(c);
		} else if (c->tls_policy == SMTP_CLIENT_TLS_MANDATORY || reply->code == 421) {
			smtp_client_fail_reply(c, reply, "STARTTLS");
		} else {
			/* opportunistic: go on in plain text (RFC 3207 §4.1 leaves it to us) */
			c->ehlo.starttls = false;
			smtp_client_after_hello(c);
		}
		return;
	case SC_AUTH_PLAIN:
	case SC_AUTH_LOGIN_DONE:
		if (reply->code == 235)
			smtp_client_ready(c);
		else
			smtp_client_fail_reply(c, reply, "AUTH");
		return;
	case SC_AUTH_LOGIN_USER:
	case SC_AUTH_LOGIN_PASS: {
		if (reply->code != 334) {
			smtp_client_fail_reply(c, reply, "AUTH");
			return;
		}
		bool user = c->state == SC_AUTH_LOGIN_USER;
		const char *v = user ? c->auth_user : c->auth_password;
		char *b64 = base64_encode_dup((const unsigned char *)v, strlen(v));
		smtp_client_write(c, "%s\r\n", b64);
		explicit_bzero(b64, strlen(b64));
		free(b64);
		smtp_client_set_state(c, user ? SC_AUTH_LOGIN_PASS : SC_AUTH_LOGIN_DONE);
		smtp_client_timer(c, c->timeouts.command);
		return;
	}
	case SC_RSET:
		if (cls == 2) {
			smtp_client_ready(c);
		} else {
			smtp_client_fail_reply(c, reply, "RSET");
		}
		return;
	case SC_QUIT:
		smtp_client_set_state(c, SC_CLOSING);
		conn_set_timer(c->conn, 0);
		conn_close(c->conn);
		return;
	default: {
		/* unsolicited: only a 421 (the server is going away) means something */
		if (reply->code == 421)
			smtp_client_fail_reply(c, reply, "server closing");
		return;
	}
	}
}

/* ---- one message ---- */

/* Envelope texts we put on a command line: no controls or spaces, and short enough that
 * MAIL or RCPT stays within a reply-sized line whatever the parameters. */
#define SMTP_CLIENT_ADDRESS_MAX 1000
#define SMTP_CLIENT_PARAM_MAX 500

static bool smtp_client_safe(const char *s)
{
	if (s == NULL)
		return true;
	if (strlen(s) > SMTP_CLIENT_PARAM_MAX)
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return false;
	return true;
}

static bool smtp_client_safe_address(const char *s)
{
	if (strlen(s) > SMTP_CLIENT_ADDRESS_MAX)
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '<' || *s == '>')
			return false;
	return true;
}

/* Every recipient fails the same way before anything was sent; message_done and ready
 * come from the loop (on_timer), not from inside smtp_client_send(). */
static void smtp_client_refuse_all(struct smtp_client *c, const struct smtp_client_reply *r)
{
	smtp_client_txn_fail_pending(c, r);
	smtp_client_set_state(c, SC_REFUSED);
	conn_set_timer(c->conn, 1);
}

/* Open the file, skip a first Return-Path: line; the octets to send are the prefix and the
 * rest of the file. 0 ok, -1 with the verdict in *r. */
static int smtp_client_open(struct smtp_client *c, struct smtp_client_reply *r)
{
	struct smtp_client_txn *t = &c->txn;
	t->fd = t->msg->path != NULL ? open(t->msg->path, O_RDONLY | O_CLOEXEC)
	                             : fcntl(t->msg->fd, F_DUPFD_CLOEXEC, 0);
	struct stat st;
	if (t->fd < 0 || fstat(t->fd, &st) < 0) {
		smtp_client_local(r, SMTP_CLIENT_TEMPFAIL, 451, "4.3.0", "cannot read %s: %s",
		                  t->msg->path != NULL ? t->msg->path : "the message",
		                  strerror(errno));
		return -1;
	}
	t->size = st.st_size;
	char head[SMTP_CLIENT_RETURN_PATH_MAX];
	ssize_t n = pread(t->fd, head, sizeof(head), 0);
	if (n > 0)
		t->offset = (off_t)smtp_body_return_path_len(head, (size_t)n);
	return 0;
}

static uint64_t smtp_client_msg_size(const struct smtp_client_txn *t)
{
	return (uint64_t)t->msg->prefix_len + (uint64_t)(t->size - t->offset);
}

static void smtp_client_send_mail(struct smtp_client *c)
{
	struct smtp_client_txn *t = &c->txn;
	const struct smtp_client_message *m = t->msg;
	struct buf b;
	buf_init(&b, SMTP_REPLY_LINE_MAX * 2);
	int e = buf_printf(&b, "MAIL FROM:<%s>", m->mail_from);
	if (c->ehlo.size)
		e |= buf_printf(&b, " SIZE=%llu", (unsigned long long)smtp_client_msg_size(t));
	if (m->eightbit && c->ehlo.eightbitmime)
		e |= buf_puts(&b, " BODY=8BITMIME");
	if (m->smtputf8)
		e |= buf_puts(&b, " SMTPUTF8");
	if (c->ehlo.dsn && m->dsn_ret != NULL)
		e |= buf_printf(&b, " RET=%s", m->dsn_ret);
	if (c->ehlo.dsn && m->dsn_envid != NULL)
		e |= buf_printf(&b, " ENVID=%s", m->dsn_envid);
	if (m->requiretls)
		e |= buf_puts(&b, " REQUIRETLS");
	ASSERT(e == 0);
	smtp_client_write(c, "%s\r\n", buf_cstr(&b));
	buf_free(&b);
	t->sent = 1;
}

static void smtp_client_send_rcpt(struct smtp_client *c, size_t i)
{
	const struct smtp_client_rcpt *r = &c->txn.msg->rcpts[i];
	struct buf b;
	buf_init(&b, SMTP_REPLY_LINE_MAX * 2);
	int e = buf_printf(&b, "RCPT TO:<%s>", r->address);
	if (c->ehlo.dsn && r->notify != NULL)
		e |= buf_printf(&b, " NOTIFY=%s", r->notify);
	if (c->ehlo.dsn && r->orcpt != NULL)
		e |= buf_printf(&b, " ORCPT=%s", r->orcpt);
	ASSERT(e == 0);
	smtp_client_write(c, "%s\r\n", buf_cstr(&b));
	buf_free(&b);
	c->txn.sent = i + 2;
}

static void smtp_client_send_data(struct smtp_client *c)
{
	smtp_client_write(c, "DATA\r\n");
	c->txn.sent = c->txn.msg->rcpt_count + 2;
}

/* A local check refuses the message before any command: 0 go on, -1 refused (in *r). */
static int smtp_client_check(struct smtp_client *c, struct smtp_client_reply *r)
{
	const struct smtp_client_message *m = c->txn.msg;
	bool ok = smtp_client_safe_address(m->mail_from) && smtp_client_safe(m->dsn_ret) &&
	          smtp_client_safe(m->dsn_envid) && m->rcpt_count > 0;
	for (size_t i = 0; ok && i < m->rcpt_count; i++)
		ok = smtp_client_safe_address(m->rcpts[i].address) &&
		     m->rcpts[i].address[0] != '\0' && smtp_client_safe(m->rcpts[i].notify) &&
		     smtp_client_safe(m->rcpts[i].orcpt);
	if (!ok) {
		smtp_client_local(r, SMTP_CLIENT_PERMFAIL, 501, "5.1.3",
		                  "bad envelope (address or DSN parameter)");
		return -1;
	}
	if (m->smtputf8 && !c->ehlo.smtputf8) {
		/* RFC 6531 §3.7.5 */
		smtp_client_local(r, SMTP_CLIENT_PERMFAIL, 553, "5.6.7",
		                  "%s does not support SMTPUTF8, which this message needs",
		                  c->host);
		return -1;
	}
	if (m->requiretls && (!c->ehlo.requiretls || !conn_tls_verified(c->conn))) {
		/* RFC 8689 §4.2: verified TLS to a server that offers REQUIRETLS, or no delivery */
		smtp_client_local(r, SMTP_CLIENT_PERMFAIL, 550, "5.7.30", "REQUIRETLS needed: %s",
		                  !c->ehlo.requiretls ? "the server does not offer it"
		                                      : "its certificate was not verified");
		return -1;
	}
	if (smtp_client_open(c, r) < 0)
		return -1;
	uint64_t size = smtp_client_msg_size(&c->txn);
	if (c->ehlo.size && c->ehlo.size_max > 0 && size > c->ehlo.size_max) {
		/* RFC 1870 §6: not sent at all */
		smtp_client_local(r, SMTP_CLIENT_PERMFAIL, 552, "5.3.4",
		                  "message size %llu exceeds the limit of %s (%llu)",
		                  (unsigned long long)size, c->host,
		                  (unsigned long long)c->ehlo.size_max);
		return -1;
	}
	return 0;
}

int smtp_client_send(struct smtp_client *c, struct smtp_client_message *msg)
{
	if (c->state != SC_READY || c->in_txn)
		return -1;
	struct smtp_client_txn *t = &c->txn;
	memset(t, 0, sizeof(*t));
	t->fd = -1;
	t->msg = msg;
	c->in_txn = true;
	for (size_t i = 0; i < msg->rcpt_count; i++)
		memset(&msg->rcpts[i].result, 0, sizeof(msg->rcpts[i].result));
	struct smtp_client_reply r;
	if (smtp_client_check(c, &r) < 0) {
		smtp_client_refuse_all(c, &r);
		return 0;
	}
	t->accepted = xcalloc(msg->rcpt_count, sizeof(bool));
	t->bdat = c->ehlo.chunking;
	smtp_body_encoder_init(&t->enc, !t->bdat);
	smtp_client_set_state(c, SC_TXN);
	smtp_client_timer(c, c->timeouts.command);
	smtp_client_send_mail(c);
	if (c->ehlo.pipelining) {
		/* RFC 2920 §3.1: MAIL, every RCPT and DATA in one group; BDAT waits for the
		 * RCPT replies so that no body is sent to nobody */
		for (size_t i = 0; i < msg->rcpt_count; i++)
			smtp_client_send_rcpt(c, i);
		if (!t->bdat) {
			smtp_client_send_data(c);
			t->data_in_group = true;
		}
	}
	return 0;
}

/* The transaction is over (its results set): RSET when the server may still hold parts
 * of it, message_done, then ready. */
static void smtp_client_txn_finish(struct smtp_client *c, bool rset)
{
	struct smtp_client_reply none;
	smtp_client_local(&none, SMTP_CLIENT_TEMPFAIL, 451, "4.4.0", "no reply for this recipient");
	smtp_client_txn_fail_pending(c, &none);
	if (rset) {
		smtp_client_set_state(c, SC_RSET);
		smtp_client_timer(c, c->timeouts.command);
		smtp_client_write(c, "RSET\r\n");
	}
	smtp_client_txn_end(c);
	if (!rset && c->state != SC_CLOSING)
		smtp_client_ready(c);
}

/* Every accepted recipient gets r (the final reply, or why DATA/BDAT failed). */
static void smtp_client_settle_accepted(struct smtp_client *c, const struct smtp_client_reply *r)
{
	struct smtp_client_txn *t = &c->txn;
	for (size_t i = 0; i < t->msg->rcpt_count; i++)
		if (t->accepted[i])
			t->msg->rcpts[i].result = *r;
}

static void smtp_client_begin_body(struct smtp_client *c)
{
	smtp_client_set_state(c, c->txn.bdat ? SC_BDAT : SC_BODY);
	smtp_client_timer(c, c->timeouts.data_block);
	smtp_client_stream(c);
}

/* All RCPT replies are in and DATA was not pipelined. */
static void smtp_client_after_rcpts(struct smtp_client *c)
{
	struct smtp_client_txn *t = &c->txn;
	if (t->mail_failed || t->accepted_count == 0) {
		smtp_client_txn_finish(c, true);
	} else if (t->bdat) {
		smtp_client_begin_body(c);
	} else {
		smtp_client_send_data(c);
		smtp_client_timer(c, c->timeouts.data_init);
	}
}

static void smtp_client_txn_reply(struct smtp_client *c, const struct smtp_reply *reply)
{
	struct smtp_client_txn *t = &c->txn;
	size_t n = t->msg->rcpt_count;
	size_t k = t->next_reply++;
	struct smtp_client_reply r;
	smtp_client_from_reply(c, reply, &r);
	bool ok = reply->code / 100 == 2;
	smtp_client_timer(c, c->timeouts.command);
	if (k == 0) {
		if (!ok) {
			t->mail_failed = true;
			t->mail_reply = r;
			if (!c->ehlo.pipelining) {
				for (size_t i = 0; i < n; i++)
					t->msg->rcpts[i].result = r;
				smtp_client_txn_finish(c, true);
			}
		} else if (!c->ehlo.pipelining) {
			smtp_client_send_rcpt(c, 0);
		}
		return;
	}
	if (k <= n) {
		struct smtp_client_rcpt *rc = &t->msg->rcpts[k - 1];
		if (t->mail_failed)
			rc->result =
			    t->mail_reply; /* the RCPT reply only echoes the MAIL failure */
		else if (ok) {
			t->accepted[k - 1] = true;
			t->accepted_count++;
		} else
			rc->result = r;
		if (k < n) {
			if (!c->ehlo.pipelining)
				smtp_client_send_rcpt(c, k);
		} else if (!t->data_in_group) {
			smtp_client_after_rcpts(c);
		}
		return;
	}
	/* the DATA reply */
	if (reply->code == 354) {
		if (t->mail_failed || t->accepted_count == 0) {
			/* RFC 2920 §3.1: the DATA was accepted anyway: end it empty */
			t->dot_only = true;
			smtp_client_set_state(c, SC_DATA_DONE);
			smtp_client_timer(c, c->timeouts.data_done);
			smtp_client_write(c, ".\r\n");
			return;
		}
		smtp_client_begin_body(c);
		return;
	}
	if (!ok && !t->mail_failed)
		smtp_client_settle_accepted(c, &r);
	smtp_client_txn_finish(c, true);
}

static void smtp_client_data_done_reply(struct smtp_client *c, const struct smtp_reply *reply)
{
	struct smtp_client_txn *t = &c->txn;
	if (t->dot_only) {
		smtp_client_txn_finish(c, true);
		return;
	}
	struct smtp_client_reply r;
	smtp_client_from_reply(c, reply, &r);
	smtp_client_settle_accepted(c, &r);
	smtp_client_txn_finish(c, false);
}

static void smtp_client_bdat_reply(struct smtp_client *c, const struct smtp_reply *reply)
{
	struct smtp_client_txn *t = &c->txn;
	if (t->bdat_outstanding == 0) {
		struct smtp_client_reply r;
		smtp_client_local(&r, SMTP_CLIENT_TEMPFAIL, 451, "4.5.0",
		                  "unexpected reply during BDAT from %s", c->host);
		smtp_client_fail(c, &r);
		return;
	}
	t->bdat_outstanding--;
	struct smtp_client_reply r;
	smtp_client_from_reply(c, reply, &r);
	if (reply->code / 100 != 2 && !t->bdat_failed) {
		t->bdat_failed = true;
		t->bdat_reply = r;
	}
	if (t->bdat_outstanding > 0)
		return;
	if (t->bdat_failed || t->bdat_last_sent) {
		smtp_client_settle_accepted(c, t->bdat_failed ? &t->bdat_reply : &r);
		/* after the LAST chunk's reply the transaction is over whatever it said */
		smtp_client_txn_finish(c, !t->bdat_last_sent);
		return;
	}
	smtp_client_timer(c, c->timeouts.data_block);
	smtp_client_stream(c); /* without PIPELINING: the next chunk */
}

/* ---- the body ---- */

/* Read and transform the next block (prefix first, then the file). Returns its length in
 * c->out, with *eof when it is the last; -1 when the file cannot be read. */
static ssize_t smtp_client_next_block(struct smtp_client *c, bool *eof)
{
	struct smtp_client_txn *t = &c->txn;
	const struct smtp_client_message *m = t->msg;
	size_t o = 0;
	if (t->prefix_pos < m->prefix_len) {
		size_t n = m->prefix_len - t->prefix_pos;
		if (n > SMTP_CLIENT_BLOCK)
			n = SMTP_CLIENT_BLOCK;
		o = smtp_body_encode(&t->enc, (const unsigned char *)m->prefix + t->prefix_pos, n,
		                     c->out);
		t->prefix_pos += n;
	} else if (t->offset < t->size) {
		size_t want = (size_t)(t->size - t->offset);
		if (want > SMTP_CLIENT_BLOCK)
			want = SMTP_CLIENT_BLOCK;
		ssize_t n = pread(t->fd, c->in, want, t->offset);
		if (n <= 0)
			return -1; /* the stored file changed or broke under us */
		t->offset += n;
		o = smtp_body_encode(&t->enc, c->in, (size_t)n, c->out);
	}
	*eof = t->prefix_pos >= m->prefix_len && t->offset >= t->size;
	if (*eof)
		o += smtp_body_encode_end(&t->enc, c->out + o);
	return (ssize_t)o;
}

/* Write blocks while the connection takes them (conn output flow control); resumes from
 * on_writable, or for BDAT without PIPELINING after each chunk's reply. */
static void smtp_client_stream(struct smtp_client *c)
{
	struct smtp_client_txn *t = &c->txn;
	while (!t->body_done) {
		if (t->bdat && (t->bdat_failed || (!c->ehlo.pipelining && t->bdat_outstanding > 0)))
			return;
		if (conn_output_full(c->conn)) {
			conn_wait_writable(c->conn);
			return;
		}
		bool eof = false;
		ssize_t n = smtp_client_next_block(c, &eof);
		if (n < 0) {
			struct smtp_client_reply r;
			smtp_client_local(&r, SMTP_CLIENT_TEMPFAIL, 451, "4.3.0",
			                  "cannot read the message file %s",
			                  t->msg->path != NULL ? t->msg->path
			                                       : "(in the database)");
			smtp_client_fail(c, &r);
			return;
		}
		if (t->bdat) {
			smtp_client_write(c, "BDAT %zu%s\r\n", (size_t)n, eof ? " LAST" : "");
			t->bdat_outstanding++;
			t->bdat_last_sent = eof;
		}
		conn_write(c->conn, c->out, (size_t)n);
		t->body_done = eof;
		smtp_client_timer(c, eof ? c->timeouts.data_done : c->timeouts.data_block);
	}
	if (!t->bdat)
		smtp_client_set_state(c, SC_DATA_DONE);
}

/* ---- connection callbacks ---- */

static void smtp_client_reply(struct smtp_client *c, const struct smtp_reply *reply)
{
	if (log_debug_enabled())
		log_debug("session=%s proto=smtp-client event=reply code=%d text=\"%s\"",
		          conn_id(c->conn), reply->code, smtp_reply_oneline(reply, &c->line));
	if (reply->code == 421 && c->in_txn) {
		/* RFC 5321 §3.8: the server is closing; everything unanswered is deferred */
		smtp_client_fail_reply(c, reply, "server closing");
		return;
	}
	switch (c->state) {
	case SC_TXN:
		smtp_client_txn_reply(c, reply);
		return;
	case SC_DATA_DONE:
		smtp_client_data_done_reply(c, reply);
		return;
	case SC_BDAT:
		smtp_client_bdat_reply(c, reply);
		return;
	case SC_BODY: {
		/* a reply before our final dot: the server gave up on the data */
		struct smtp_client_reply r;
		smtp_client_from_reply(c, reply, &r);
		smtp_client_fail(c, &r);
		return;
	}
	default:
		smtp_client_session_reply(c, reply);
		return;
	}
}

static void smtp_client_on_input(struct conn *conn, void *ctx)
{
	struct smtp_client *c = ctx;
	while (c->state != SC_CLOSING && c->state != SC_CONNECTING && c->state != SC_TLS &&
	       c->state != SC_TLS_IMPLICIT) {
		char *line;
		size_t len;
		int r = conn_read_line(conn, SMTP_REPLY_LINE_MAX, &line, &len);
		if (r == 0)
			return;
		const char *error = "reply line too long";
		if (r > 0)
			r = smtp_reply_parser_feed(&c->parser, line, len, &error);
		if (r < 0) {
			struct smtp_client_reply why;
			smtp_client_local(&why, SMTP_CLIENT_TEMPFAIL, 451, "4.5.0",
			                  "protocol error from %s: %s", c->host, error);
			smtp_client_fail(c, &why);
			return;
		}
		if (r == 1)
			smtp_client_reply(c, &c->parser.reply);
	}
}

static void smtp_client_on_writable(struct conn *conn, void *ctx)
{
	(void)conn;
	struct smtp_client *c = ctx;
	if (c->state == SC_BODY || c->state == SC_BDAT)
		smtp_client_stream(c);
}

static void smtp_client_on_connected(struct conn *conn, void *ctx)
{
	(void)conn;
	struct smtp_client *c = ctx;
	if (c->tls_policy == SMTP_CLIENT_TLS_IMPLICIT) {
		smtp_client_set_state(c, SC_TLS_IMPLICIT);
		smtp_client_start_tls(c);
		return;
	}
	smtp_client_set_state(c, SC_GREETING);
	smtp_client_timer(c, c->timeouts.greeting);
}

static void smtp_client_on_tls_ready(struct conn *conn, void *ctx)
{
	struct smtp_client *c = ctx;
	log_info("session=%s proto=smtp-client event=tls host=%s ip=%s tls=\"%s\" verify=\"%s\"",
	         conn_id(conn), c->host, c->ip, conn_tls_description(conn),
	         conn_tls_verification(conn));
	if (c->state == SC_TLS_IMPLICIT) {
		smtp_client_set_state(c, SC_GREETING);
		smtp_client_timer(c, c->timeouts.greeting);
		if (conn_input_length(conn) > 0)
			smtp_client_on_input(conn, c); /* the greeting came with the handshake */
		return;
	}
	/* RFC 3207 §4.2: forget everything learned before TLS, say EHLO again */
	memset(&c->ehlo, 0, sizeof(c->ehlo));
	smtp_client_send_ehlo(c);
}

static const char *smtp_client_phase(const struct smtp_client *c)
{
	switch (c->state) {
	case SC_CONNECTING:
		return "connecting";
	case SC_TLS:
	case SC_TLS_IMPLICIT:
		return "in the TLS handshake";
	case SC_BODY:
	case SC_BDAT:
		return "sending the message";
	case SC_DATA_DONE:
		return "waiting for the reply to the message";
	default:
		return c->in_txn ? "in the transaction" : "in the session";
	}
}

static void smtp_client_on_timer(struct conn *conn, void *ctx)
{
	(void)conn;
	struct smtp_client *c = ctx;
	if (c->state == SC_REFUSED) {
		smtp_client_txn_end(c);
		smtp_client_ready(c);
		return;
	}
	if (c->state == SC_CLOSING || c->state == SC_READY)
		return;
	struct smtp_client_reply r;
	smtp_client_local(&r, SMTP_CLIENT_TEMPFAIL, 451, "4.4.2", "timeout %s with %s[%s]",
	                  smtp_client_phase(c), c->host, c->ip);
	smtp_client_fail(c, &r);
}

static void smtp_client_on_shutdown(struct conn *conn, void *ctx)
{
	(void)conn;
	struct smtp_client *c = ctx;
	struct smtp_client_reply r;
	smtp_client_local(&r, SMTP_CLIENT_TEMPFAIL, 451, "4.3.2", "Posthorn is shutting down");
	if (c->state == SC_READY)
		smtp_client_write(c, "QUIT\r\n");
	smtp_client_fail(c, &r);
}

static void smtp_client_on_closed(struct conn *conn, void *ctx)
{
	struct smtp_client *c = ctx;
	bool tls_phase = c->state == SC_TLS || c->state == SC_TLS_IMPLICIT;
	if (!c->result_set) {
		struct smtp_client_reply r;
		const char *err = conn_error(conn);
		if (c->state == SC_CONNECTING)
			smtp_client_local(&r, SMTP_CLIENT_TEMPFAIL, 451, "4.4.1", "%s",
			                  err[0] != '\0' ? err : "cannot connect");
		else
			smtp_client_local(
			    &r, SMTP_CLIENT_TEMPFAIL, 451, tls_phase ? "4.7.5" : "4.4.2",
			    "lost connection with %s[%s] %s: %s", c->host, c->ip,
			    smtp_client_phase(c), err[0] != '\0' ? err : "connection closed");
		c->result.tls_failed = tls_phase;
		c->state = SC_CLOSING; /* no QUIT over a dead connection */
		smtp_client_fail(c, &r);
	}
	log_info("session=%s proto=smtp-client event=closed host=%s ip=%s status=%s code=%d "
	         "enhanced=%s reason=\"%s\"",
	         conn_id(conn), c->host, c->ip,
	         c->result.reply.status == SMTP_CLIENT_DELIVERED ? "ok" : "failed",
	         c->result.reply.code,
	         c->result.reply.enhanced[0] != '\0' ? c->result.reply.enhanced : "-",
	         c->result.reply.text);
	if (c->cb->closed != NULL)
		c->cb->closed(c, &c->result, c->ctx);
	smtp_client_free(c);
}

static const struct conn_callbacks smtp_client_conn_callbacks = {
    .on_input = smtp_client_on_input,
    .on_writable = smtp_client_on_writable,
    .on_tls_ready = smtp_client_on_tls_ready,
    .on_timer = smtp_client_on_timer,
    .on_shutdown = smtp_client_on_shutdown,
    .on_closed = smtp_client_on_closed,
    .on_connected = smtp_client_on_connected,
};

/* ---- the caller's verbs ---- */

struct smtp_client *smtp_client_start(struct net_loop *loop, const struct smtp_client_params *p,
                                      const struct smtp_client_callbacks *cb, void *ctx,
                                      const char **error_r)
{
	if (p->helo_name == NULL || !smtp_client_safe(p->helo_name) || p->helo_name[0] == '\0') {
		*error_r = "bad HELO name";
		return NULL;
	}
	if (p->tls != SMTP_CLIENT_TLS_DISABLED && p->tls_ctx == NULL) {
		*error_r = "TLS policy without a TLS context";
		return NULL;
	}
	if ((p->auth_user == NULL) != (p->auth_password == NULL)) {
		*error_r = "AUTH needs a user name and a password";
		return NULL;
	}
	struct smtp_client *c = xcalloc(1, sizeof(*c));
	c->cb = cb;
	c->ctx = ctx;
	c->ip = xstrdup(p->ip);
	c->host = xstrdup(p->host != NULL ? p->host : p->ip);
	c->helo_name = xstrdup(p->helo_name);
	c->port = p->port;
	c->tls_policy = p->tls;
	c->verify = p->verify;
	if (p->tlsa_count > 0) {
		c->tlsa = xcalloc(p->tlsa_count, sizeof(*c->tlsa));
		memcpy(c->tlsa, p->tlsa, p->tlsa_count * sizeof(*c->tlsa));
		c->tlsa_count = p->tlsa_count;
	}
	c->tls_ctx = p->tls_ctx != NULL ? tls_ctx_ref(p->tls_ctx) : NULL;
	if (p->auth_user != NULL) {
		c->auth_user = xstrdup(p->auth_user);
		c->auth_password = xstrdup(p->auth_password);
	}
	c->timeouts = p->timeouts;
	c->txn.fd = -1;
	c->out = xmalloc(SMTP_CLIENT_OUT_MAX);
	c->in = xmalloc(SMTP_CLIENT_BLOCK);
	buf_init(&c->line, SMTP_CLIENT_TEXT_MAX);
	smtp_reply_parser_init(&c->parser);
	c->state = SC_CONNECTING;
	struct conn_connect_params cp = {
	    .ip = p->ip, .port = p->port, .local_ip = p->local_ip, .timeout = p->timeouts.connect};
	c->conn = conn_connect(loop, &cp, &smtp_client_conn_callbacks, c, error_r);
	if (c->conn == NULL) {
		smtp_client_free(c);
		return NULL;
	}
	return c;
}

void smtp_client_quit(struct smtp_client *c)
{
	if (c->state == SC_CLOSING || c->state == SC_QUIT)
		return;
	if (c->in_message_done) {
		c->quit_wanted = true; /* after the RSET, if one is due, instead of ready */
		return;
	}
	if (c->state == SC_READY) {
		smtp_client_set_state(c, SC_QUIT);
		smtp_client_timer(c, c->timeouts.command);
		smtp_client_write(c, "QUIT\r\n");
		c->result.reply.status = SMTP_CLIENT_DELIVERED;
		c->result.reply.code = 221;
		c->result_set = true;
		return;
	}
	struct smtp_client_reply r;
	smtp_client_local(&r, SMTP_CLIENT_TEMPFAIL, 451, "4.3.0", "session given up");
	if (c->in_txn && c->state == SC_REFUSED) {
		smtp_client_txn_end(c);
		smtp_client_set_state(c, SC_QUIT);
		smtp_client_write(c, "QUIT\r\n");
	}
	smtp_client_fail(c, &r);
}

void smtp_client_timeouts_from_conf(const struct conf *conf, struct smtp_client_timeouts *t)
{
	t->connect = conf->outbound_connect_timeout;
	t->greeting = conf->outbound_greeting_timeout;
	t->command = conf->outbound_command_timeout;
	t->data_init = conf->outbound_data_init_timeout;
	t->data_block = conf->outbound_data_block_timeout;
	t->data_done = conf->outbound_data_done_timeout;
}

const char *smtp_client_ip(const struct smtp_client *c)
{
	return c->ip;
}

const char *smtp_client_host(const struct smtp_client *c)
{
	return c->host;
}

const char *smtp_client_id(const struct smtp_client *c)
{
	return conn_id(c->conn);
}

const char *smtp_client_tls_description(const struct smtp_client *c)
{
	return conn_tls_description(c->conn);
}

const char *smtp_client_tls_verification(const struct smtp_client *c)
{
	return conn_tls_verification(c->conn);
}

const struct smtp_ehlo *smtp_client_ehlo(const struct smtp_client *c)
{
	return &c->ehlo;
}
