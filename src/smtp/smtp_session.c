/* SMTP sessions: connection callbacks, the state machine, DATA/BDAT streaming into a spool
 * file and the hand-off of a complete message to the store. Command handlers live in
 * smtp_commands.c. */
#include "smtp/smtp_session.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/date.h"
#include "core/fault.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mime/dkim_key_cache.h"
#include "smtp/psl.h"
#include "smtp/smtp_rdns.h"
#include "smtp/smtp_server.h"
#include "core/banned.h"

#define SMTP_CHUNK 16384
#define SMTP_HEADER_FIELD_MAX 998
#define SMTP_DKIM_KEYS_MAX 256 /* decoded keys kept (a few MiB at most) */

static const char *const smtp_state_names[] = {
    "tls", "command", "auth", "data", "bdat", "wait", "closing",
};

struct smtp_server *smtp_server_new(struct store *store, struct auth *auth, struct conf *conf)
{
	struct smtp_server *srv = xcalloc(1, sizeof(*srv));
	srv->store = store;
	srv->auth = auth;
	const char *error = NULL;
	srv->psl = psl_load(conf->public_suffix_list, &error);
	if (srv->psl == NULL) {
		log_warn("event=psl path=%s error=\"%s\": DMARC takes the last two labels as the "
		         "organizational domain",
		         conf->public_suffix_list, error);
		srv->psl = psl_parse("");
	}
	smtp_dnsbl_conf_prepare(conf);
	conf_slot_init(&srv->conf, conf);
	srv->userip = userip_new();
	srv->policy = smtp_policy_new();
	srv->dkim_keys = dkim_key_cache_new(SMTP_DKIM_KEYS_MAX);
	return srv;
}

void smtp_server_free(struct smtp_server **server)
{
	if (*server == NULL)
		return;
	conf_slot_deinit(&(*server)->conf);
	userip_free(&(*server)->userip);
	psl_free(&(*server)->psl);
	smtp_policy_free(&(*server)->policy);
	dkim_key_cache_free(&(*server)->dkim_keys);
	free(*server);
	*server = NULL;
}

void smtp_server_set_conf(struct smtp_server *srv, struct conf *conf)
{
	smtp_dnsbl_conf_prepare(conf);
	conf_slot_set(&srv->conf, conf);
}

int smtp_server_check_conf(const struct conf *conf, char *error, size_t size)
{
	return smtp_dnsbl_check_conf(conf, error, size);
}

bool smtp_session_is_submission(const struct smtp_session *s)
{
	return s->kind != CONF_LISTENER_SMTP;
}

bool smtp_session_auth_offered(const struct smtp_session *s)
{
	return smtp_session_is_submission(s) &&
	       (conn_is_tls(s->conn) || s->conf->allow_plaintext_auth);
}

void smtp_session_set_state(struct smtp_session *s, enum smtp_state state)
{
	if (log_debug_enabled())
		log_debug("session=%s proto=smtp event=state from=%s to=%s", conn_id(s->conn),
		          smtp_state_names[s->state], smtp_state_names[state]);
	s->state = state;
}

void smtp_session_close(struct smtp_session *s, const char *reply)
{
	if (s->state == SMTP_STATE_CLOSING || s->closed)
		return;
	if (reply != NULL)
		conn_printf(s->conn, "%s\r\n", reply);
	smtp_session_set_state(s, SMTP_STATE_CLOSING);
	conn_close(s->conn);
}

void smtp_reply(struct smtp_session *s, const char *line)
{
	if (s->state == SMTP_STATE_CLOSING || s->closed)
		return;
	conn_printf(s->conn, "%s\r\n", line);
	if (line[0] == '4' || line[0] == '5') {
		if (++s->errors >= s->limits->errors) {
			SMTP_LOG(s, "event=disconnect reason=too-many-errors errors=%u", s->errors);
			smtp_session_close(s, "421 4.7.0 Too many errors, closing connection");
		}
	}
}

void smtp_replyf(struct smtp_session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	smtp_reply(s, line);
}

static void smtp_session_spool_drop(struct smtp_session *s)
{
	if (s->spool_fd >= 0) {
		close(s->spool_fd);
		s->spool_fd = -1;
	}
	if (s->spool_path != NULL) {
		unlink(s->spool_path);
		free(s->spool_path);
		s->spool_path = NULL;
	}
	buf_free(&s->spool_mem);
	s->spool_in_mem = false;
}

void smtp_session_reset_tx(struct smtp_session *s)
{
	smtp_session_spool_drop(s);
	smtp_checks_free(&s->checks);
	smtp_filter_free(&s->filter);
	arena_reset(s->tx);
	s->have_mail = false;
	s->mail_from = NULL;
	s->smtputf8 = false;
	s->requiretls = false;
	s->declared_size = 0;
	s->body_8bit = false;
	s->dsn_ret = STORE_DSN_RET_UNSPEC;
	s->dsn_envid = NULL;
	s->rcpts = NULL;
	s->rcpt_count = s->rcpt_cap = 0;
	s->body_started = false;
	s->bdat = false;
	s->bdat_last = false;
	s->bdat_discard = false;
	s->body_error = NULL;
	s->bdat_remaining = 0;
	s->body_size = 0;
	s->trace_size = 0;
	s->headers = NULL;
}

static void smtp_session_free(struct smtp_session *s)
{
	smtp_burl_free(s);
	smtp_session_spool_drop(s);
	smtp_checks_free(&s->checks);
	smtp_filter_free(&s->filter);
	smtp_dnsbl_free(s);
	smtp_rdns_free(s);
	auth_login_free(&s->login);
	free(s->delivery_accounts);
	free(s->delivery_remote);
	free(s->delivery_dsn);
	arena_free(&s->arena);
	arena_free(&s->tx);
	arena_free(&s->cmd);
	conf_free(&s->conf);
	free(s);
}

/* ---- trace headers ---- */

/* Printable ASCII only, at most 64 octets: client text that goes into a header. */
static const char *smtp_header_safe(struct arena *a, const char *text)
{
	size_t n = strlen(text);
	if (n > 64)
		n = 64;
	char *out = arena_strndup(a, text, n);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)out[i];
		if (c <= 0x20 || c >= 0x7f || c == '(' || c == ')' || c == ';')
			out[i] = '_';
	}
	return out;
}

static int smtp_trace_headers(struct smtp_session *s, struct buf *b)
{
	char date[DATE_RFC5322_MAX];
	date_rfc5322((int64_t)time(NULL), date);
	/* RFC 3848 protocol keywords: ESMTP + S (TLS) + A (authenticated). */
	const char *proto = !s->esmtp              ? "SMTP"
	                    : conn_is_tls(s->conn) ? (s->authenticated ? "ESMTPSA" : "ESMTPS")
	                    : s->authenticated     ? "ESMTPA"
	                                           : "ESMTP";
	int r = buf_printf(b, "Return-Path: <%s>\r\n", s->mail_from);
	/* Each folded line starts with a tab; the date ends the last one (RFC 5322 §3.6.7). */
	/* The client's confirmed name, or "unknown", as Postfix writes it (smtp_rdns.c). */
	r |= buf_printf(b, "Received: from %s (%s [%s])\r\n\tby %s (Posthorn) with %s id %s",
	                smtp_header_safe(s->tx, s->helo != NULL ? s->helo : "unknown"),
	                smtp_rdns_name(s), conn_remote_ip(s->conn), s->conf->hostname, proto,
	                s->msgid);
	if (conn_is_tls(s->conn))
		r |= buf_printf(b, "\r\n\t(using %s)", conn_tls_description(s->conn));
	if (s->rcpt_count == 1)
		r |= buf_printf(b, "\r\n\tfor <%s>", s->rcpts[0].address);
	r |= buf_printf(b, ";\r\n\t%s\r\n", date);
	return r;
}

const char *smtp_session_body_begin(struct smtp_session *s)
{
	snprintf(s->msgid, sizeof(s->msgid), "%s.%u", conn_id(s->conn), ++s->tx_count);
	if (smtp_checks_active(s)) {
		/* the checks write the file, their field first (smtp_spool.c) */
		s->spool_in_mem = true;
		buf_init(&s->spool_mem, SMTP_SPOOL_MEM_MAX);
	} else {
		s->spool_path = store_spool_path_dup(s->server->store);
		s->spool_fd = open(s->spool_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (!s->spool_in_mem && s->spool_fd < 0) {
		log_error("session=%s proto=smtp event=spool-open path=%s error=%s",
		          conn_id(s->conn), s->spool_path, strerror(errno));
		free(s->spool_path);
		s->spool_path = NULL;
		return "451 4.3.0 Local error: cannot create spool file";
	}
	struct buf b;
	buf_init(&b, 8192);
	if (smtp_trace_headers(s, &b) != 0 || smtp_spool_append(s, b.data, b.len) != 0) {
		buf_free(&b);
		smtp_session_spool_drop(s);
		return "451 4.3.0 Local error: cannot write spool file";
	}
	s->body_size = b.len;
	s->trace_size = b.len;
	buf_free(&b);
	s->body_started = true;
	s->body_error = NULL;
	s->body_start = time(NULL);
	s->headers = header_scanner_new(s->tx, SMTP_HEADER_FIELD_MAX, s->limits->header_lines);
	smtp_data_init(&s->decoder, s->conf->smtp_bare_lf == CONF_BARE_LF_NORMALIZE);
	return NULL;
}

static void smtp_body_write(struct smtp_session *s, const unsigned char *p, size_t n);

void smtp_session_body_append(struct smtp_session *s, const unsigned char *p, size_t n)
{
	smtp_body_write(s, p, n);
}

/* Append message octets to the spool, enforcing the size limit. */
static void smtp_body_write(struct smtp_session *s, const unsigned char *p, size_t n)
{
	if (s->body_error != NULL || n == 0)
		return;
	/* RFC 1870: the limit is on what the client sends, not on our trace headers. */
	uint64_t client = s->body_size - s->trace_size;
	if (n > s->limits->message_size || client > s->limits->message_size - n) {
		s->body_error = "552 5.3.4 Message size exceeds fixed maximum message size";
		return;
	}
	s->body_size += n;
	(void)header_scanner_feed(s->headers, p, n);
	int fault = FAULT_POINT("smtp.data.mid");
	if (fault != 0) {
		log_error("session=%s proto=smtp event=spool-write error=%s", conn_id(s->conn),
		          strerror(fault));
		s->body_error = "451 4.3.0 Local error: cannot write spool file";
		return;
	}
	if (smtp_spool_append(s, p, n) != 0)
		s->body_error = "451 4.3.0 Local error: cannot write spool file";
}

/* RFC 5321 §4.5.3.2.5 asks for generous data timeouts; a minimum average rate stops a
 * client that trickles a byte now and then to hold a session forever. The rate is judged
 * after 60 s, or after limit_request_timeout when that is shorter (a client may not be
 * silent longer than that anyway). */
static bool smtp_body_too_slow(struct smtp_session *s)
{
	if (s->limits->data_min_rate == 0)
		return false;
	time_t elapsed = time(NULL) - s->body_start;
	time_t grace = s->limits->request_timeout < 60 ? (time_t)s->limits->request_timeout : 60;
	if (elapsed < grace)
		return false;
	return s->body_size < (uint64_t)elapsed * s->limits->data_min_rate / 2;
}

static void smtp_data_input(struct smtp_session *s)
{
	unsigned char out[SMTP_DATA_OUT_MAX(SMTP_CHUNK)];
	for (;;) {
		const unsigned char *in;
		size_t n = conn_peek(s->conn, &in);
		if (n == 0)
			break;
		if (n > SMTP_CHUNK)
			n = SMTP_CHUNK;
		size_t out_len;
		bool end;
		size_t used = smtp_data_decode(&s->decoder, in, n, out, &out_len, &end);
		smtp_body_write(s, out, out_len);
		conn_consume(s->conn, used);
		if (end) {
			smtp_session_body_end(s);
			return;
		}
	}
	if (smtp_body_too_slow(s)) {
		SMTP_LOG(s, "event=disconnect reason=data-rate-too-low size=%llu",
		         (unsigned long long)s->body_size);
		smtp_session_close(s, "421 4.4.2 Data rate too low, closing connection");
	}
}

static void smtp_bdat_input(struct smtp_session *s)
{
	while (s->bdat_remaining > 0) {
		const unsigned char *in;
		size_t n = conn_peek(s->conn, &in);
		if (n == 0)
			break;
		if (n > s->bdat_remaining)
			n = (size_t)s->bdat_remaining;
		if (!s->bdat_discard)
			smtp_body_write(s, in, n);
		else
			s->body_size += n; /* for the rate check only: the transaction is gone */
		conn_consume(s->conn, n);
		s->bdat_remaining -= n;
	}
	if (s->bdat_remaining > 0) {
		if (smtp_body_too_slow(s))
			smtp_session_close(s, "421 4.4.2 Data rate too low, closing connection");
		return;
	}
	smtp_session_set_state(s, SMTP_STATE_COMMAND);
	if (s->bdat_discard) {
		/* RFC 3030 §2: the chunk is read, then the error for the command is given. */
		s->bdat_discard = false;
		s->body_size = 0;
		const char *err = s->body_error;
		s->body_error = NULL;
		smtp_reply(s, err);
		return;
	}
	if (s->bdat_last)
		smtp_session_body_end(s);
	else if (s->body_error != NULL)
		smtp_reply(s, s->body_error);
	else
		smtp_replyf(s, "250 2.0.0 %llu octets received",
		            (unsigned long long)(s->body_size - s->trace_size));
}

/* ---- store reads ---- */

static void smtp_read_finished(void *ctx)
{
	struct smtp_session *s = ctx;
	session_async_finished(&s->life);
}

void smtp_session_read(struct smtp_session *s, store_read_fn *fn,
                       void (*next)(struct smtp_session *s))
{
	struct store *store = s->server->store;
	if (!store_reads_wait(store)) {
		fn(s);
		next(s);
		return;
	}
	s->read_next = next;
	s->read_state = s->state;
	smtp_session_set_state(s, SMTP_STATE_WAIT);
	session_async_start(&s->life, SMTP_ASYNC_READ);
	if (store_read(store, fn, smtp_read_finished, s))
		smtp_read_finished(s);
}

/* ---- delivery ---- */

static void smtp_delivery_cb(struct store_delivery *d, void *ctx)
{
	(void)d;
	struct smtp_session *s = ctx;
	session_async_finished(&s->life); /* writer thread → the session's loop */
}

/* Recheck quota with the real size (RFC 5321 §4.5.3.1.10; RCPT only saw SIZE=), where
 * reads may wait: the refusal goes to read_reply. */
static void smtp_quota_read(void *ctx)
{
	struct smtp_session *s = ctx;
	s->read_reply = NULL;
	for (size_t i = 0; i < s->delivery_count && s->read_reply == NULL; i++) {
		struct store_account_limits l;
		if (store_account_limits(s->server->store, s->delivery_accounts[i], &l) != 1)
			continue;
		if (l.message_limit > 0 && l.messages >= l.message_limit)
			s->read_reply =
			    "452 4.2.2 Recipient's mailbox is full (message limit), try "
			    "again later";
		else if (l.quota == 0)
			continue;
		else if (s->body_size > l.quota)
			s->read_reply = "552 5.2.2 Message exceeds the recipient's mailbox quota";
		else if (l.used + s->body_size > l.quota)
			s->read_reply = "452 4.2.2 Recipient's mailbox is full, try again later";
	}
}

static size_t smtp_collect_accounts(struct smtp_session *s)
{
	size_t total = 0;
	for (size_t i = 0; i < s->rcpt_count; i++)
		total += s->rcpts[i].accounts.count;
	free(s->delivery_accounts);
	s->delivery_accounts = xcalloc(total + 1, sizeof(uint64_t));
	size_t n = 0;
	for (size_t i = 0; i < s->rcpt_count; i++) {
		for (size_t j = 0; j < s->rcpts[i].accounts.count; j++) {
			uint64_t id = s->rcpts[i].accounts.account_ids[j];
			bool dup = false;
			for (size_t k = 0; k < n && !dup; k++)
				dup = s->delivery_accounts[k] == id;
			if (!dup)
				s->delivery_accounts[n++] = id;
		}
	}
	return n;
}

static void smtp_body_deliver(struct smtp_session *s);
static void smtp_body_checked(struct smtp_session *s);

static void smtp_body_refused(struct smtp_session *s, const char *err)
{
	if (s->spool_fd >= 0)
		close(s->spool_fd);
	s->spool_fd = -1;
	SMTP_LOG(s, "event=data result=refused size=%llu reply=\"%.9s\"",
	         (unsigned long long)s->body_size, err);
	smtp_session_reset_tx(s);
	smtp_reply(s, err);
}

void smtp_session_body_end(struct smtp_session *s)
{
	smtp_session_set_state(s, SMTP_STATE_COMMAND);
	struct header_summary hs;
	header_scanner_result(s->headers, &hs);
	const char *err = s->body_error;
	if (err == NULL && s->decoder.bare_seen && !s->decoder.normalize)
		err = "550 5.5.2 Message contains bare CR or LF characters (RFC 5321 2.3.8)";
	if (err == NULL && hs.too_many)
		err = "552 5.3.4 Too many header fields";
	s->delivery_count = smtp_collect_accounts(s);
	if (err != NULL) {
		smtp_body_refused(s, err);
		return;
	}
	if (smtp_checks_data_active(s)) {
		smtp_checks_data(s, smtp_body_checked);
		return;
	}
	smtp_body_checked(s);
}

static void smtp_body_filtered(struct smtp_session *s);

/* The checks on arrival are done: refuse (DMARC), or ask the milter. */
static void smtp_body_checked(struct smtp_session *s)
{
	const char *err = smtp_checks_data_reply(s);
	if (err == NULL && smtp_spool_spill(s) != 0) /* the checks wrote no file (defensive) */
		err = "451 4.3.0 Local error: cannot write spool file";
	if (err != NULL) {
		smtp_body_refused(s, err);
		return;
	}
	if (smtp_filter_active(s)) {
		smtp_filter_data(s, smtp_body_filtered);
		return;
	}
	smtp_body_filtered(s);
}

/* The milter decided (or there is none): refuse, drop (discard: the client hears 250, as
 * from Postfix), or read the quota with the size of the spool file as it is now. */
static void smtp_body_filtered(struct smtp_session *s)
{
	const char *err = smtp_filter_reply(s);
	if (err != NULL) {
		smtp_body_refused(s, err);
		return;
	}
	if (smtp_filter_discard(s)) {
		SMTP_LOG(s, "event=data result=discarded id=%s size=%llu", s->msgid,
		         (unsigned long long)s->body_size);
		smtp_session_reset_tx(s);
		smtp_replyf(s, "250 2.0.0 Ok: queued as %s", s->msgid);
		return;
	}
	smtp_session_read(s, smtp_quota_read, smtp_body_deliver);
}

/* The end of data, once the quota was read: refuse, or hand the message to the store. */
static void smtp_body_deliver(struct smtp_session *s)
{
	size_t n = s->delivery_count;
	const char *err = s->read_reply;
	struct header_summary hs;
	header_scanner_result(s->headers, &hs);
	if (err == NULL && s->spool_fd >= 0 && close(s->spool_fd) != 0)
		err = "451 4.3.0 Local error: cannot write spool file";
	s->spool_fd = -1;
	if (err != NULL) {
		smtp_body_refused(s, err);
		return;
	}
	free(s->delivery_remote);
	free(s->delivery_dsn);
	s->delivery_remote = xcalloc(s->rcpt_count + 1, sizeof(char *));
	s->delivery_dsn = xcalloc(s->rcpt_count + 1, sizeof(*s->delivery_dsn));
	size_t r = 0;
	for (size_t i = 0; i < s->rcpt_count; i++) {
		if (!s->rcpts[i].remote)
			continue;
		s->delivery_dsn[r] = s->rcpts[i].dsn;
		s->delivery_remote[r++] = s->rcpts[i].address;
	}
	s->delivery = (struct store_delivery){
	    .spool_path = s->spool_path,
	    .mail_from = s->mail_from,
	    .accounts = s->delivery_accounts,
	    .account_count = n,
	    .remote = s->delivery_remote,
	    .remote_count = r,
	    .remote_dsn = s->delivery_dsn,
	    .ret = s->dsn_ret,
	    .envid = s->dsn_envid,
	    .smtputf8 = s->smtputf8,
	    .requiretls = s->requiretls,
	    .junk = smtp_filter_junk(s),
	    .eightbit = s->body_8bit,
	    .received_at = time(NULL),
	    .hdr_from = hs.from,
	    .hdr_subject = hs.subject,
	    .hdr_message_id = hs.message_id,
	};
	s->delivery.junk_accounts = smtp_checks_junk_accounts(s, &s->delivery.junk_account_count);
	smtp_policy_delivering(s);
	smtp_session_set_state(s, SMTP_STATE_WAIT);
	(void)FAULT_POINT("smtp.data.before_commit");
	session_async_start(&s->life, SMTP_ASYNC_DELIVERY);
	store_deliver(s->server->store, &s->delivery, smtp_delivery_cb, s);
}

static void smtp_delivery_done(struct smtp_session *s)
{
	/* The store consumed the spool file either way. */
	free(s->spool_path);
	s->spool_path = NULL;
	if (s->delivery.result == 0) {
		(void)FAULT_POINT("smtp.data.after_commit");
		s->fault_after_250 = true;
		SMTP_LOG(s, "event=delivered id=%s from=<%s> rcpts=%zu size=%llu", s->msgid,
		         s->mail_from, s->rcpt_count, (unsigned long long)s->delivery.size);
		smtp_replyf(s, "250 2.0.0 Ok: queued as %s", s->msgid);
	} else {
		log_error("session=%s proto=smtp event=delivery-failed id=%s error=%s",
		          conn_id(s->conn), s->msgid, s->delivery.error);
		smtp_reply(s, "451 4.3.0 Local error in processing, try again later");
	}
	smtp_session_reset_tx(s);
}

/* ---- hostile clients ---- */

static void smtp_greet(struct smtp_session *s);

/* A client is "in" once it authenticated (submission) or started a transaction (port 25,
 * where nobody logs in): the pre-login deadline and command count end there. */
static void smtp_session_check_login(struct smtp_session *s)
{
	if (s->life.logged_in || s->closed ||
	    !(s->authenticated || (s->kind == CONF_LISTENER_SMTP && s->have_mail)))
		return;
	session_logged_in(&s->life);
}

/* Before a command runs: false when the session was closed instead. On port 25 a client
 * that sends a command before the reply to the previous one while PIPELINING was not
 * offered (no EHLO yet in this session) is a bot (RFC 2920 §3.1; postscreen's pipelining
 * test); everywhere, commands before login are counted. */
static bool smtp_session_command_allowed(struct smtp_session *s)
{
	if (s->kind == CONF_LISTENER_SMTP && !s->esmtp && conn_input_length(s->conn) > 0) {
		log_warn("session=%s proto=smtp event=bot reason=pipelining ip=%s",
		         conn_id(s->conn), conn_remote_ip(s->conn));
		smtp_session_close(s, "554 5.5.1 Protocol error: commands sent without waiting "
		                      "for the reply");
		return false;
	}
	if (!s->life.logged_in && ++s->login_commands > s->limits->login_commands) {
		SMTP_LOG(s, "event=disconnect reason=too-many-commands-before-login count=%u",
		         s->login_commands);
		smtp_session_close(s, "421 4.7.0 Too many commands, closing connection");
		return false;
	}
	return true;
}

/* The pregreet wait on port 25 is over (postscreen's pregreet test): a client that talked
 * before the greeting is a bot; others get the greeting now. */
static void smtp_pregreet_done(struct smtp_session *s)
{
	if (conn_input_length(s->conn) > 0) {
		log_warn("session=%s proto=smtp event=bot reason=pregreet ip=%s", conn_id(s->conn),
		         conn_remote_ip(s->conn));
		s->greeted = true;
		conn_set_timer(s->conn, 0);
		smtp_session_close(s, "554 5.5.1 Protocol error: talking before the greeting");
		return;
	}
	smtp_greet(s);
}

/* ---- connection callbacks ---- */

/* RFC 4954 §4: an AUTH command with its initial response and every SASL response line may
 * hold 12,288 octets (plus CRLF), whatever the command line limit; other commands keep
 * limit_command_line (checked after reading). */
static size_t smtp_line_max(const struct smtp_session *s)
{
	size_t sasl = AUTH_LOGIN_LINE_MAX + 2;
	if (s->state == SMTP_STATE_COMMAND && !smtp_session_auth_offered(s))
		return s->limits->command_line;
	return s->limits->command_line > sasl ? s->limits->command_line : sasl;
}

static bool smtp_is_auth_line(const char *line, size_t len)
{
	return len > 5 && strncasecmp(line, "AUTH ", 5) == 0;
}

static void smtp_on_input(struct conn *conn, void *ctx)
{
	struct smtp_session *s = ctx;
	if (!s->greeted && s->kind == CONF_LISTENER_SMTP) {
		/* Input during the pregreet wait: no need to wait for the rest of it (and to
		 * buffer what a bot sends meanwhile). */
		if (conn_input_length(conn) > 0)
			smtp_pregreet_done(s);
		return;
	}
	while (!s->closed) {
		char *line;
		size_t len;
		int r;
		switch (s->state) {
		case SMTP_STATE_COMMAND:
		case SMTP_STATE_AUTH:
			/* RFC 4954 §4: SASL response lines up to 12,288 octets. */
			r = conn_read_line(conn, smtp_line_max(s), &line, &len);
			if (r == 0)
				return;
			arena_reset(s->cmd);
			if (r > 0 && s->state == SMTP_STATE_COMMAND &&
			    len + 2 > s->limits->command_line && !smtp_is_auth_line(line, len)) {
				xmemzero(line, len);
				smtp_reply(s, "500 5.5.2 Line too long");
				break;
			}
			if (r < 0 && s->state == SMTP_STATE_AUTH) {
				auth_login_free(&s->login);
				smtp_session_set_state(s, SMTP_STATE_COMMAND);
				smtp_reply(s, "500 5.5.6 Authentication Exchange line is too long");
			} else if (r < 0) {
				smtp_reply(s, "500 5.5.2 Line too long");
			} else if (s->state == SMTP_STATE_AUTH) {
				smtp_commands_auth_continue(s, line);
				xmemzero(line, len); /* a SASL response carries a password */
				smtp_session_check_login(s);
			} else if (smtp_session_command_allowed(s)) {
				/* A command after a message's 250: the client has that reply. */
				if (s->fault_after_250) {
					s->fault_after_250 = false;
					(void)FAULT_POINT("smtp.data.after_250");
				}
				smtp_commands_execute(s, line, len);
				if (len > 4 && strncasecmp(line, "AUTH", 4) == 0)
					xmemzero(line, len);
				smtp_session_check_login(s);
			} else if (len > 4 && strncasecmp(line, "AUTH", 4) == 0) {
				xmemzero(line, len);
			}
			break;
		case SMTP_STATE_DATA:
			smtp_data_input(s);
			if (s->state == SMTP_STATE_DATA)
				return;
			break;
		case SMTP_STATE_BDAT:
			smtp_bdat_input(s);
			if (s->state == SMTP_STATE_BDAT)
				return;
			break;
		default:
			return;
		}
	}
}

static void smtp_greet(struct smtp_session *s)
{
	if (smtp_dnsbl_wait(s, smtp_greet))
		return; /* the DNS lists answer first */
	if (s->kind == CONF_LISTENER_SMTP && conn_input_length(s->conn) > 0) {
		smtp_pregreet_done(s); /* it talked while the lists were asked */
		return;
	}
	const char *refusal = smtp_dnsbl_refusal(s);
	if (refusal != NULL) {
		s->greeted = true;
		log_warn("session=%s proto=smtp event=disconnect reason=dnsbl ip=%s",
		         conn_id(s->conn), conn_remote_ip(s->conn));
		smtp_session_close(s, refusal);
		return;
	}
	s->greeted = true;
	smtp_session_set_state(s, SMTP_STATE_COMMAND);
	smtp_replyf(s, "220 %s ESMTP Posthorn", s->conf->hostname);
}

static void smtp_on_tls_ready(struct conn *conn, void *ctx)
{
	struct smtp_session *s = ctx;
	SMTP_LOG(s, "event=tls %s", conn_tls_description(conn));
	if (!s->greeted) {
		/* Implicit TLS (RFC 8314 §3.3): the greeting comes after the handshake. */
		smtp_greet(s);
		return;
	}
	/* After STARTTLS the client starts over with EHLO (RFC 3207 §4.2). */
	s->helo = NULL;
	s->esmtp = false;
	s->authenticated = false;
	s->auth_user = NULL;
	smtp_session_reset_tx(s);
	smtp_session_set_state(s, SMTP_STATE_COMMAND);
	smtp_on_input(conn, ctx);
}

static void smtp_on_timeout(struct conn *conn, void *ctx)
{
	(void)conn;
	struct smtp_session *s = ctx;
	SMTP_LOG(s, "event=disconnect reason=timeout state=%s", smtp_state_names[s->state]);
	smtp_session_close(s, "421 4.4.2 Timeout exceeded, closing connection");
}

static void smtp_on_timer(struct conn *conn, void *ctx)
{
	(void)conn;
	struct smtp_session *s = ctx;
	if (!s->greeted) {
		smtp_pregreet_done(s);
		return;
	}
	smtp_commands_auth_delay_done(ctx);
}

/* ---- lifecycle (net/session.h) ---- */

static void smtp_async_done(void *ctx, int kind)
{
	struct smtp_session *s = ctx;
	if (kind == SMTP_ASYNC_DELIVERY) {
		smtp_session_set_state(s, SMTP_STATE_COMMAND);
		smtp_delivery_done(s);
	} else if (kind == SMTP_ASYNC_AUTH) {
		smtp_commands_auth_resume(s);
		smtp_session_check_login(s);
	} else if (kind == SMTP_ASYNC_READ) {
		smtp_session_set_state(s, s->read_state);
		s->read_next(s);
	} else if (kind == SMTP_ASYNC_CHECK) {
		smtp_checks_resume(s);
		smtp_session_check_login(s); /* port 25: MAIL may have been accepted */
	} else if (kind == SMTP_ASYNC_FILTER) {
		smtp_filter_resume(s);
	}
}

static void smtp_async_abandoned(void *ctx, int kind)
{
	struct smtp_session *s = ctx;
	if (kind == SMTP_ASYNC_DELIVERY) {
		/* The store consumed the spool file either way: not ours to unlink. */
		free(s->spool_path);
		s->spool_path = NULL;
	}
}

static void smtp_after_wake(void *ctx)
{
	struct smtp_session *s = ctx;
	if (s->state == SMTP_STATE_COMMAND)
		conn_resume(s->conn);
}

/* Shutdown: 421 at once, also mid-DATA (RFC 5321 §3.8 allows it at any time); a delivery
 * in flight gets its 250 first (session.c waits for it). */
static void smtp_goodbye(void *ctx)
{
	smtp_session_close(ctx, "421 4.3.2 Service shutting down, closing connection");
}

static void smtp_free_hook(void *ctx)
{
	smtp_session_free(ctx);
}

static const struct session_hooks smtp_session_hooks = {
    .async_done = smtp_async_done,
    .async_abandoned = smtp_async_abandoned,
    .wake = smtp_after_wake,
    .goodbye = smtp_goodbye,
    .free = smtp_free_hook,
};

static void smtp_on_wake(struct conn *conn, void *ctx)
{
	(void)conn;
	struct smtp_session *s = ctx;
	session_on_wake(&s->life);
}

static void smtp_on_shutdown(struct conn *conn, void *ctx)
{
	(void)conn;
	struct smtp_session *s = ctx;
	session_on_shutdown(&s->life);
}

static void smtp_on_closed(struct conn *conn, void *ctx)
{
	struct smtp_session *s = ctx;
	SMTP_LOG(s, "event=disconnect ip=%s errors=%u", conn_remote_ip(conn), s->errors);
	s->closed = true;
	session_on_closed(&s->life); /* frees s, or leaves it to the operation's wake */
}

static const struct conn_callbacks smtp_callbacks = {
    .on_input = smtp_on_input,
    .on_tls_ready = smtp_on_tls_ready,
    .on_timeout = smtp_on_timeout,
    .on_timer = smtp_on_timer,
    .on_wake = smtp_on_wake,
    .on_shutdown = smtp_on_shutdown,
    .on_closed = smtp_on_closed,
};

void smtp_server_accept(struct conn *conn, void *listener_ctx)
{
	struct smtp_listener *l = listener_ctx;
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	s->conn = conn;
	s->server = l->server;
	s->kind = l->kind;
	s->conf = conf_slot_get(&l->server->conf);
	s->limits = &s->conf->limits;
	s->arena = arena_new(1024);
	s->tx = arena_new(4096);
	s->cmd = arena_new(4096);
	s->spool_fd = -1;
	s->state = SMTP_STATE_TLS;
	session_init(&s->life, conn, "smtp", &smtp_session_hooks, s);
	conn_set_callbacks(conn, &smtp_callbacks, s);
	conn_set_timeout(conn, s->limits->request_timeout);
	SMTP_LOG(s, "event=connect ip=%s port=%d", conn_remote_ip(conn), conn_local_port(conn));
	if (smtp_policy_connect(s))
		return;
	smtp_rdns_start(s);
	smtp_dnsbl_start(s);
	if (s->kind == CONF_LISTENER_SMTP && s->conf->smtp_pregreet_wait > 0)
		conn_set_timer(conn, s->conf->smtp_pregreet_wait * 1000); /* smtp_pregreet_done */
	else if (s->kind != CONF_LISTENER_SUBMISSIONS)
		smtp_greet(s);
}
