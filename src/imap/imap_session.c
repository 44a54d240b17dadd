/* IMAP sessions: connection callbacks, reading command lines and literals into the parser
 * (continuation requests for synchronizing literals; too-large literals refused before any
 * octet is read), tagged and untagged replies, the password check off the loop, and the
 * state changes of RFC 9051 §3. Commands live in imap_commands.c and cmd_*.c. */
#include "imap/imap_session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "imap/imap_commands.h"
#include "imap/imap_server.h"
#include "core/banned.h"

/* Literal octets kept in memory for one command argument (APPEND streams bigger ones). */
#define IMAP_LITERAL_MAX (1024 * 1024)
/* Before login: a command of at most 32 KiB (room for an ID of 30 pairs with values of
 * RFC 2971's 1024 octets, as imaptest's "id" test sends; after login 64 KiB), and literals
 * of at most 4096 octets, the LITERAL- bound of RFC 7888 §4 that applies to
 * non-synchronizing literals too (a LOGIN needs a few hundred octets). */
#define IMAP_PRELOGIN_LINE_MAX 32768
#define IMAP_PRELOGIN_LITERAL_MAX 4096
static const struct imap_parser_limits imap_prelogin_limits = {
    .line_max = IMAP_PRELOGIN_LINE_MAX, /* all lines of one command together */
    .literal_max = IMAP_PRELOGIN_LITERAL_MAX,
    .literal_total_max = 2 * IMAP_PRELOGIN_LITERAL_MAX, /* user name and password */
    .depth_max = 8,
    .args_max = 256, /* ID (RFC 2971) has up to 30 pairs */
};
static const struct imap_parser_limits imap_session_limits = {.literal_max = IMAP_LITERAL_MAX};

struct imap_server *imap_server_new(struct store *store, struct auth *auth, struct conf *conf)
{
	struct imap_server *srv = xcalloc(1, sizeof(*srv));
	srv->store = store;
	srv->auth = auth;
	conf_slot_init(&srv->conf, conf);
	srv->userip = userip_new();
	return srv;
}

void imap_server_free(struct imap_server **server)
{
	struct imap_server *srv = *server;
	if (srv == NULL)
		return;
	conf_slot_deinit(&srv->conf);
	userip_free(&srv->userip);
	free(srv);
	*server = NULL;
}

void imap_server_set_conf(struct imap_server *srv, struct conf *conf)
{
	conf_slot_set(&srv->conf, conf);
}

/* ---- output ---- */

void imap_send(struct imap_session *s, const char *fmt, ...)
{
	if (s->closed || s->io == IMAP_IO_CLOSING)
		return;
	struct buf b;
	buf_init(&b, 1024 * 1024);
	va_list ap;
	va_start(ap, fmt);
	int r = buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (r == 0 && buf_append(&b, "\r\n", 2) == 0)
		conn_write(s->conn, b.data, b.len);
	buf_free(&b);
}

void imap_session_close(struct imap_session *s, const char *bye)
{
	if (s->closed || s->io == IMAP_IO_CLOSING)
		return;
	/* A long command may be in the middle of a literal: a BYE there would be data. */
	if (bye != NULL && s->step == NULL)
		conn_printf(s->conn, "* BYE %s\r\n", bye);
	s->io = IMAP_IO_CLOSING;
	conn_close(s->conn);
}

void imap_tagged(struct imap_session *s, const char *tag, const char *status, const char *fmt, ...)
{
	if (s->closed || s->io == IMAP_IO_CLOSING)
		return;
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	uint32_t hit = tag != NULL ? s->msglimit_hit : 0;
	if (tag != NULL)
		s->msglimit_hit = 0;
	if (hit != 0 && strcmp(status, "OK") == 0 && text[0] == '[') /* one code per response */
		conn_printf(s->conn, "* OK [MESSAGELIMIT %u] Only the first %u messages\r\n", hit,
		            hit);
	if (hit != 0 && strcmp(status, "OK") == 0 && text[0] != '[')
		conn_printf(s->conn, "%s OK [MESSAGELIMIT %u] %s\r\n", tag, hit, text);
	else
		conn_printf(s->conn, "%s %s %s\r\n", tag != NULL ? tag : "*", status, text);
	if (strcmp(status, "BAD") == 0 && ++s->errors >= s->limits->errors) {
		IMAP_LOG(s, "event=disconnect reason=too-many-errors errors=%u", s->errors);
		imap_session_close(s, "Too many invalid commands");
	}
}

void imap_quote(struct buf *out, const char *text)
{
	bool quoted = true;
	for (const char *p = text; *p != '\0' && quoted; p++)
		if (*p == '\r' || *p == '\n' || (unsigned char)*p >= 0x80)
			quoted = false;
	int r;
	if (!quoted) {
		r = buf_printf(out, "{%zu}\r\n%s", strlen(text), text);
	} else {
		r = buf_append(out, "\"", 1);
		for (const char *p = text; *p != '\0' && r == 0; p++) {
			if (*p == '"' || *p == '\\')
				r = buf_append(out, "\\", 1);
			if (r == 0)
				r = buf_append(out, p, 1);
		}
		if (r == 0)
			r = buf_append(out, "\"", 1);
	}
	(void)r; /* a full buffer truncates the reply; callers size it for their data */
}

bool imap_session_plaintext_ok(const struct imap_session *s)
{
	return conn_is_tls(s->conn) || s->conf->allow_plaintext_auth;
}

const char *imap_session_capabilities(struct imap_session *s)
{
	static _Thread_local char caps[1024];
	const char *tls = !conn_is_tls(s->conn) ? " STARTTLS" : "";
	if (s->state == IMAP_STATE_NOT_AUTHENTICATED) {
		const char *auth = imap_session_plaintext_ok(s)
		                       ? " AUTH=SCRAM-SHA-256 AUTH=PLAIN AUTH=LOGIN"
		                       : " AUTH=SCRAM-SHA-256 LOGINDISABLED";
		snprintf(caps, sizeof(caps), "IMAP4rev2 IMAP4rev1%s%s SASL-IR LITERAL+ ENABLE ID",
		         tls, auth);
	} else {
		snprintf(
		    caps, sizeof(caps),
		    "IMAP4rev2 IMAP4rev1 LITERAL+ ENABLE ID IDLE NAMESPACE UNSELECT "
		    "UTF8=ACCEPT UIDPLUS ESEARCH SEARCHRES MOVE MULTIAPPEND APPENDLIMIT=%llu "
		    "CHILDREN "
		    "SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED LIST-STATUS STATUS=SIZE BINARY "
		    "CONDSTORE QRESYNC QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE METADATA"
		    " COMPRESS=DEFLATE SORT SORT=DISPLAY ESORT THREAD=ORDEREDSUBJECT "
		    "THREAD=REFERENCES"
		    " WITHIN UNAUTHENTICATE REPLACE OBJECTID SAVEDATE PREVIEW"
		    " ACL RIGHTS=texk LIST-MYRIGHTS NOTIFY"
		    " UIDONLY CATENATE URLAUTH",
		    (unsigned long long)s->limits->message_size);
		if (s->conf->imap_message_limit != 0)
			snprintf(caps + strlen(caps), sizeof(caps) - strlen(caps),
			         " MESSAGELIMIT=%u", s->conf->imap_message_limit);
	}
	ASSERT(strlen(caps) < sizeof(caps) - 1); /* never cut short */
	return caps;
}

bool imap_session_condstore_enable(struct imap_session *s)
{
	if (s->condstore)
		return false;
	s->condstore = true;
	/* The client learns where its view stands, as Dovecot does (RFC 7162 §3.1.2.1): the
	 * changes after it come with MODSEQ from now on. */
	if (s->state == IMAP_STATE_SELECTED)
		imap_send(s, "* OK [HIGHESTMODSEQ %llu] Highest",
		          (unsigned long long)s->highestmodseq);
	return true;
}

/* ---- authentication ---- */

void imap_session_op_finished(struct imap_session *s)
{
	session_async_finished(&s->life);
}

void imap_session_op_start(struct imap_session *s, const char *tag,
                           void (*done)(struct imap_session *s), void *op)
{
	free(s->op_tag);
	s->op_tag = xstrdup(tag);
	s->op_done = done;
	s->op = op;
	s->io = IMAP_IO_WAIT;
	session_async_start(&s->life, IMAP_ASYNC_OP);
}

/* ---- long commands in steps ---- */

static void imap_step_end(struct imap_session *s)
{
	void (*ctx_free)(void *ctx) = s->step_free;
	void *ctx = s->step_ctx;
	s->step = NULL;
	s->step_free = NULL;
	s->step_ctx = NULL;
	if (ctx_free != NULL)
		ctx_free(ctx);
}

void imap_session_run(struct imap_session *s, imap_step_fn *step, void (*ctx_free)(void *ctx),
                      void *ctx)
{
	ASSERT(s->step == NULL);
	s->step = step;
	s->step_free = ctx_free;
	s->step_ctx = ctx;
	clock_gettime(CLOCK_MONOTONIC, &s->progress_at);
	enum imap_io before = s->io;
	/* Where input goes after the step: IDLE when NOTIFY's FETCH ran during IDLE. */
	s->step_io = before == IMAP_IO_IDLE ? IMAP_IO_IDLE : IMAP_IO_LINE;
	s->io = IMAP_IO_RUN; /* what a store read of the step restores */
	enum imap_step r = step(s, ctx);
	if (r == IMAP_STEP_DONE) {
		imap_step_end(s);
		if (s->io == IMAP_IO_RUN)
			s->io = before;
		return;
	}
	if (r == IMAP_STEP_WAIT)
		return; /* the read's end goes on (imap_session_go_on) */
	conn_pause(s->conn);
	conn_wait_writable(s->conn);
}

void imap_session_progress(struct imap_session *s, const char *tag, uint64_t done, uint64_t total)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t ns = (int64_t)(now.tv_sec - s->progress_at.tv_sec) * 1000000000 +
	             (now.tv_nsec - s->progress_at.tv_nsec);
	if (s->closed || ns < (int64_t)s->conf->imap_progress_interval * 1000000000)
		return;
	s->progress_at = now;
	struct buf q;
	buf_init(&q, 2 * strlen(tag) + 16);
	imap_quote(&q, tag);
	imap_send(s, "* OK [INPROGRESS (%s %llu %llu)] Working", buf_cstr(&q),
	          (unsigned long long)done, (unsigned long long)total);
	buf_free(&q);
}

enum imap_step imap_progress_more(struct imap_session *s, const char *tag, uint32_t done)
{
	imap_session_progress(s, tag, done, s->count);
	return IMAP_STEP_MORE;
}

enum imap_step imap_progress_wait(struct imap_session *s, const char *tag, uint32_t done)
{
	imap_session_progress(s, tag, done, s->count);
	return IMAP_STEP_WAIT;
}

/* NOTIFY (RFC 5465): what is owed goes out when no command runs or is half read, or during
 * IDLE; never inside a command's answer (so never an EXPUNGE during FETCH, STORE or
 * SEARCH, RFC 9051 §7.5.1). */
static void imap_notify_poke(struct imap_session *s)
{
	if (s->notify == NULL || s->closed || s->step != NULL ||
	    session_async(&s->life) != IMAP_ASYNC_NONE)
		return;
	if (s->io == IMAP_IO_IDLE || (s->io == IMAP_IO_LINE && imap_parser_tag(s->parser) == NULL))
		cmd_notify_deliver(s);
}

/* The client took output (or a yielding step's turn came): the next step. */
static void imap_on_writable(struct conn *conn, void *ctx)
{
	struct imap_session *s = ctx;
	if (s->step == NULL || s->closed || s->io == IMAP_IO_WAIT)
		return;
	enum imap_step r = s->step(s, s->step_ctx);
	if (r == IMAP_STEP_MORE) {
		conn_wait_writable(conn);
		return;
	}
	if (r == IMAP_STEP_WAIT)
		return;
	imap_step_end(s);
	if (s->io == IMAP_IO_RUN) {
		s->io = s->step_io;
		conn_resume(conn);
	}
	imap_notify_poke(s);
}

/* ---- store reads (store_read(): off the loop where they may wait) ---- */

static void imap_read_run(void *arg)
{
	struct imap_session *s = arg;
	s->read_fn(s->read_ctx);
}

static void imap_read_finished(void *arg)
{
	struct imap_session *s = arg;
	session_async_finished(&s->life);
}

bool imap_session_read(struct imap_session *s, store_read_fn *fn, imap_read_next_fn *next,
                       void *ctx)
{
	struct store *store = s->server->store;
	if (s->closed || s->io == IMAP_IO_CLOSING || !store_reads_wait(store)) {
		fn(ctx);
		next(s, ctx);
		return true;
	}
	s->read_fn = fn;
	s->read_next = next;
	s->read_ctx = ctx;
	s->read_io = s->io;
	s->io = IMAP_IO_WAIT;
	session_async_start(&s->life, IMAP_ASYNC_READ);
	if (store_read(store, imap_read_run, imap_read_finished, s))
		imap_read_finished(s); /* ran in place (the store is closing) */
	return false;
}

/* After a read's next: input resumes, or the step it interrupted goes on (from
 * on_writable, at the earliest on the next loop turn), unless another read is out. */
static void imap_session_go_on(struct imap_session *s)
{
	if (session_async(&s->life) != IMAP_ASYNC_NONE || s->closed)
		return;
	if (s->io == IMAP_IO_RUN && s->step != NULL)
		conn_wait_writable(s->conn);
	else if (s->io == IMAP_IO_LINE || s->io == IMAP_IO_IDLE || s->io == IMAP_IO_LITERAL_FILE)
		conn_resume(s->conn);
}

/* A login succeeded: count it against limit_sessions_per_user_ip (false: over it) and end
 * the pre-login deadline. */
bool imap_session_admit_login(struct imap_session *s, uint64_t account)
{
	if (session_admit_login(&s->life, s->server->userip, account,
	                        s->limits->sessions_per_user_ip) == 0)
		return false;
	imap_parser_set_limits(s->parser, &imap_session_limits); /* from the next command */
	return true;
}

void imap_session_unauthenticate(struct imap_session *s)
{
	imap_session_unselect(s); /* its watch (and so any IDLE/notification interest) goes */
	cmd_notify_free(s);
	session_logged_out(&s->life);
	free(s->user);
	s->user = NULL;
	s->account_id = 0;
	s->rev2 = s->utf8 = s->condstore = s->qresync = s->uidonly = false;
	s->login_commands = 0;
	imap_parser_set_limits(s->parser, &imap_prelogin_limits); /* from the next command */
	imap_session_set_state(s, IMAP_STATE_NOT_AUTHENTICATED);
}

/* ---- selected mailbox ---- */

static void imap_watch_cb(void *ctx, uint64_t highestmodseq)
{
	(void)highestmodseq;
	struct imap_session *s = ctx;
	atomic_store(&s->changed, true);
	atomic_fetch_add(&s->change_count, 1);
	conn_wake(s->conn); /* writer thread → our loop; the store stays the truth */
}

void imap_session_watch(struct imap_session *s)
{
	s->watch = store_watch(s->server->store, s->mailbox_owner, s->mailbox, imap_watch_cb, s);
}

/* Index of uid in the view (sorted by UID), or -1. */
static long imap_view_find(const struct imap_session *s, uint32_t uid)
{
	long lo = 0, hi = (long)s->count - 1;
	while (lo <= hi) {
		long mid = (lo + hi) / 2;
		if (s->msgs[mid].uid == uid)
			return mid;
		if (s->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

static bool imap_keywords_equal(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

struct imap_sync {
	struct imap_session *s;
	bool expunges;
	imap_read_next_fn *next; /* after the sync, or NULL */
	void *next_ctx;
	char *line;        /* imap_session_sync_ok(): the tagged answer after the sync */
	uint32_t last_uid; /* the view's highest UID when the sync began */
	/* filled by the read */
	int r;
	uint64_t since; /* the MODSEQ read from */
	bool full;      /* since was below the tombstone floor: every entry was read */
	struct store_mailbox_status st;
	struct store_entry *entries;
	size_t entry_count, entry_cap;
	uint32_t *expunged;
	uint64_t *expunged_modseq; /* [i]: the MODSEQ of expunged[i]'s tombstone */
	size_t expunged_count, expunged_cap;
	int recent_r;
	uint32_t recent_first;
};

static void imap_sync_entry(void *ctx, const struct store_entry *e)
{
	struct imap_sync *y = ctx;
	if (y->entry_count == y->entry_cap) {
		y->entry_cap = y->entry_cap == 0 ? 16 : 2 * y->entry_cap;
		y->entries = xrealloc(y->entries, y->entry_cap * sizeof(*y->entries));
	}
	y->entries[y->entry_count] = *e;
	/* keywords are valid only during the callback */
	y->entries[y->entry_count++].keywords =
	    e->keywords != NULL && e->keywords[0] != '\0' ? xstrdup(e->keywords) : NULL;
}

static void imap_sync_expunged(void *ctx, uint32_t uid, uint64_t modseq)
{
	struct imap_sync *y = ctx;
	if (y->expunged_count == y->expunged_cap) {
		y->expunged_cap = y->expunged_cap == 0 ? 16 : 2 * y->expunged_cap;
		y->expunged = xrealloc(y->expunged, y->expunged_cap * sizeof(*y->expunged));
		y->expunged_modseq =
		    xrealloc(y->expunged_modseq, y->expunged_cap * sizeof(*y->expunged_modseq));
	}
	y->expunged_modseq[y->expunged_count] = modseq;
	y->expunged[y->expunged_count++] = uid;
}

/* Forget what a read collected. */
static void imap_sync_reset(struct imap_sync *y)
{
	for (size_t i = 0; i < y->entry_count; i++)
		free((char *)y->entries[i].keywords);
	y->entry_count = 0;
	y->expunged_count = 0;
}

/* After a full read: the view's UIDs the mailbox no longer has are the expunged ones, with
 * the lowest MODSEQ their pruned tombstones can have had. */
static void imap_sync_absent(struct imap_session *s, struct imap_sync *y)
{
	size_t j = 0;
	for (uint32_t i = 0; i < s->count; i++) {
		uint32_t uid = s->msgs[i].uid;
		while (j < y->entry_count && y->entries[j].uid < uid)
			j++;
		if (j < y->entry_count && y->entries[j].uid == uid)
			continue;
		imap_sync_expunged(y, uid, y->since + 1);
	}
}

/* The reads of a sync (imap_session_read): the changes, and \Recent of the new messages
 * (IMAP4rev1), which become the view's entries above its last UID. */
static void imap_sync_read(void *ctx)
{
	struct imap_sync *y = ctx;
	struct imap_session *s = y->s;
	y->since = s->highestmodseq;
	y->r = store_mailbox_changes(s->server->store, s->mailbox_owner, s->mailbox, y->since,
	                             imap_sync_entry, imap_sync_expunged, y, &y->st);
	if (y->r == 1 && y->st.tombstone_floor > y->since) {
		/* Tombstones newer than the view may be pruned (a view older than
		 * imap_expunge_retention): read every entry; imap_sync_apply() takes what the
		 * view has and the mailbox lacks for expunged. */
		imap_sync_reset(y);
		y->full = true;
		y->r = store_mailbox_changes(s->server->store, s->mailbox_owner, s->mailbox, 0,
		                             imap_sync_entry, NULL, y, &y->st);
	}
	if (y->r != 1 || y->st.uidvalidity != s->uidvalidity || s->rev2)
		return;
	uint32_t top = y->last_uid;
	for (size_t i = 0; i < y->entry_count; i++)
		if (y->entries[i].uid > top)
			top = y->entries[i].uid;
	if (top > y->last_uid)
		y->recent_r = imap_session_recent_read(s, top + 1, &y->recent_first);
}

static void imap_sync_free(struct imap_sync *y)
{
	for (size_t i = 0; i < y->entry_count; i++)
		free((char *)y->entries[i].keywords);
	free(y->entries);
	free(y->expunged);
	free(y->expunged_modseq);
	free(y->line);
	free(y);
}

/* What the sync read found, applied to the view and told to the client. */
static void imap_sync_apply(struct imap_session *s, struct imap_sync *y)
{
	if (y->r != 1 || y->st.uidvalidity != s->uidvalidity) {
		/* Deleted or renamed by another session (RFC 9051 §6.3.4 allows BYE): the view
		 * cannot be kept right any more. */
		if (y->r == 0 || (y->r == 1 && y->st.uidvalidity != s->uidvalidity))
			imap_session_close(s,
			                   "[CLOSED] The selected mailbox was deleted or renamed");
		return;
	}
	if (y->full)
		imap_sync_absent(s, y);
	bool complete = true;
	uint64_t withheld = 0; /* lowest MODSEQ of an expunge not told now, 0 none */
	uint64_t reported = 0; /* highest MODSEQ a FETCH below tells */
	/* Each EXPUNGE names the sequence number after the ones before it took effect. */
	if (y->expunges)
		(void)imap_session_view_expunge(s, y->expunged, y->expunged_count);
	else
		for (size_t i = 0; i < y->expunged_count; i++)
			if (imap_view_find(s, y->expunged[i]) >= 0) {
				complete = false;
				if (withheld == 0 || y->expunged_modseq[i] < withheld)
					withheld = y->expunged_modseq[i];
			}
	uint32_t old_count = s->count;
	for (size_t i = 0; i < y->entry_count; i++) {
		const struct store_entry *e = &y->entries[i];
		long idx = imap_view_find(s, e->uid);
		if (idx >= 0) {
			/* A CONDSTORE-aware client keeps MODSEQs: a change of the MODSEQ alone
			 * (flags set and cleared again meanwhile) is news to it too. */
			bool changed = s->msgs[idx].flags != e->flags ||
			               !imap_keywords_equal(s->msgs[idx].keywords, e->keywords);
			bool report = changed || (s->condstore && s->msgs[idx].modseq != e->modseq);
			s->msgs[idx].modseq = e->modseq;
			if (report) {
				s->msgs[idx].flags = e->flags;
				imap_session_view_keywords(s, idx, e->keywords);
				imap_session_send_fetch_flags(s, idx);
				if (e->modseq > reported)
					reported = e->modseq;
			}
		} else if (s->count == 0 || e->uid > s->msgs[s->count - 1].uid) {
			if (s->count == s->cap) {
				s->cap = s->cap == 0 ? 64 : 2 * s->cap;
				s->msgs = xrealloc(s->msgs, (size_t)s->cap * sizeof(*s->msgs));
			}
			s->msgs[s->count] = (struct imap_msg){.uid = e->uid,
			                                      .size = e->size,
			                                      .date = e->internal_date,
			                                      .save_date = e->save_date,
			                                      .flags = e->flags,
			                                      .modseq = e->modseq};
			imap_session_view_keywords(s, s->count++, e->keywords);
		}
	}
	/* RFC 7162 §3.2 (erratum 1810's rule): a FETCH MODSEQ above an expunge still owed
	 * (no VANISHED during FETCH, STORE, SEARCH) must not let a QRESYNC client believe it
	 * has everything up to that MODSEQ: HIGHESTMODSEQ just below the owed expunge. */
	if (s->qresync && withheld != 0 && reported >= withheld)
		imap_send(s, "* OK [HIGHESTMODSEQ %llu] Highest",
		          (unsigned long long)(withheld - 1));
	if (s->count != old_count) {
		imap_send(s, "* %u EXISTS", s->count);
		if (!s->rev2 && s->count > old_count) {
			if (y->recent_r == 1)
				imap_session_recent_mark(s, old_count, y->recent_first);
			imap_send(s, "* %u RECENT", imap_session_recent_count(s));
		}
	}
	if (y->st.uidnext > s->uidnext)
		s->uidnext = y->st.uidnext;
	if (complete)
		s->highestmodseq = y->st.highestmodseq;
	else
		atomic_store(&s->changed, true); /* expunges still owed */
}

static void imap_sync_done(struct imap_session *s, void *ctx)
{
	struct imap_sync *y = ctx;
	if (!s->closed)
		imap_sync_apply(s, y);
	imap_read_next_fn *next = y->next;
	void *next_ctx = y->next_ctx;
	if (y->line != NULL && !s->closed)
		imap_send(s, "%s", y->line);
	imap_sync_free(y);
	if (next != NULL)
		next(s, next_ctx);
}

static void imap_sync_start(struct imap_session *s, bool expunges, imap_read_next_fn *next,
                            void *ctx, char *line)
{
	if (s->state != IMAP_STATE_SELECTED) {
		if (line != NULL && !s->closed)
			imap_send(s, "%s", line);
		free(line);
		if (next != NULL)
			next(s, ctx);
		return;
	}
	atomic_store(&s->changed, false);
	struct imap_sync *y = xcalloc(1, sizeof(*y));
	*y = (struct imap_sync){.s = s,
	                        .expunges = expunges,
	                        .next = next,
	                        .next_ctx = ctx,
	                        .line = line,
	                        .last_uid = s->count > 0 ? s->msgs[s->count - 1].uid : 0};
	(void)imap_session_read(s, imap_sync_read, imap_sync_done, y);
}

void imap_session_sync(struct imap_session *s, bool expunges, imap_read_next_fn *next, void *ctx)
{
	imap_sync_start(s, expunges, next, ctx, NULL);
}

void imap_session_sync_ok(struct imap_session *s, bool expunges, const char *tag, const char *fmt,
                          ...)
{
	struct buf b;
	buf_init(&b, 1024 * 1024);
	va_list ap;
	va_start(ap, fmt);
	int r = buf_printf(&b, "%s OK ", tag);
	size_t text = b.len;
	r |= buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (s->msglimit_hit != 0) { /* RFC 9738: the command was cut short */
		uint32_t n = s->msglimit_hit;
		s->msglimit_hit = 0;
		if (b.len > text && b.data[text] == '[') { /* one code per response: before it */
			imap_send(s, "* OK [MESSAGELIMIT %u] Only the first %u messages", n, n);
		} else {
			char *rest = xstrdup(buf_cstr(&b) + text);
			b.len = text;
			r |= buf_printf(&b, "[MESSAGELIMIT %u] %s", n, rest);
			free(rest);
		}
	}
	(void)r; /* a full buffer truncates the text; callers size it far below */
	char *line = xstrdup(buf_cstr(&b));
	buf_free(&b);
	imap_sync_start(s, expunges, NULL, NULL, line);
}

void imap_session_send_fetch_flags(struct imap_session *s, long idx)
{
	const struct imap_msg *m = &s->msgs[idx];
	struct buf b;
	buf_init(&b, 65536);
	imap_session_flags_text(s, &b, m);
	if (s->uidonly && s->condstore) /* RFC 9586 §3.3: the UID leads the response */
		imap_send(s, "* %u UIDFETCH (FLAGS (%s) MODSEQ (%llu))", m->uid, buf_cstr(&b),
		          (unsigned long long)m->modseq);
	else if (s->uidonly)
		imap_send(s, "* %u UIDFETCH (FLAGS (%s))", m->uid, buf_cstr(&b));
	else if (s->condstore) /* RFC 7162 §3.1: UID and MODSEQ in every such FETCH */
		imap_send(s, "* %ld FETCH (UID %u FLAGS (%s) MODSEQ (%llu))", idx + 1, m->uid,
		          buf_cstr(&b), (unsigned long long)m->modseq);
	else
		imap_send(s, "* %ld FETCH (UID %u FLAGS (%s))", idx + 1, m->uid, buf_cstr(&b));
	buf_free(&b);
}

/* Longest VANISHED line we build (RFC 7162 §4: clients take lines of 8192 octets). */
#define IMAP_VANISHED_LINE_MAX 8000

/* A VANISHED response being built: lines of about IMAP_VANISHED_LINE_MAX octets. */
struct vanished_out {
	struct imap_session *s;
	const char *head;
	struct buf b;
};

static void vanished_add(struct vanished_out *v, uint32_t lo, uint32_t hi)
{
	int r = v->b.len == 0 ? buf_printf(&v->b, "%s", v->head) : buf_append(&v->b, ",", 1);
	if (lo == hi)
		r |= buf_printf(&v->b, "%u", lo);
	else
		r |= buf_printf(&v->b, "%u:%u", lo, hi);
	(void)r; /* the buffer is sized above the line limit */
	if (v->b.len >= IMAP_VANISHED_LINE_MAX) {
		imap_send(v->s, "%s", buf_cstr(&v->b));
		buf_reset(&v->b);
	}
}

static void vanished_init(struct vanished_out *v, struct imap_session *s, bool earlier)
{
	v->s = s;
	v->head = earlier ? "* VANISHED (EARLIER) " : "* VANISHED ";
	buf_init(&v->b, IMAP_VANISHED_LINE_MAX + 64);
}

static void vanished_end(struct vanished_out *v)
{
	if (v->b.len > 0)
		imap_send(v->s, "%s", buf_cstr(&v->b));
	buf_free(&v->b);
}

void imap_session_send_vanished(struct imap_session *s, bool earlier, const uint32_t *uids,
                                size_t count)
{
	struct vanished_out v;
	vanished_init(&v, s, earlier);
	size_t i = 0;
	while (i < count) {
		size_t j = i;
		while (j + 1 < count && uids[j + 1] == uids[j] + 1)
			j++;
		vanished_add(&v, uids[i], uids[j]);
		i = j + 1;
	}
	vanished_end(&v);
}

void imap_session_send_vanished_absent(struct imap_session *s,
                                       const struct imap_seqset_range *ranges, size_t count,
                                       uint32_t top)
{
	struct vanished_out v;
	vanished_init(&v, s, true);
	uint32_t k = 0; /* the first view entry not below the current range */
	for (size_t i = 0; i < count && ranges[i].lo <= top; i++) {
		uint32_t lo = ranges[i].lo, hi = ranges[i].hi < top ? ranges[i].hi : top;
		uint32_t a = 0, b = s->count; /* first entry with uid >= lo */
		while (a < b) {
			uint32_t mid = a + (b - a) / 2;
			if (s->msgs[mid].uid < lo)
				a = mid + 1;
			else
				b = mid;
		}
		k = a;
		uint64_t next = lo; /* lowest UID not yet decided */
		for (; k < s->count && s->msgs[k].uid <= hi; k++) {
			if (s->msgs[k].uid > next)
				vanished_add(&v, (uint32_t)next, s->msgs[k].uid - 1);
			next = (uint64_t)s->msgs[k].uid + 1;
		}
		if (next <= hi)
			vanished_add(&v, (uint32_t)next, hi);
	}
	vanished_end(&v);
}

static int imap_uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

uint32_t imap_session_view_expunge(struct imap_session *s, const uint32_t *uids, size_t count)
{
	/* RFC 9586 §3.2: UIDONLY reports expunges as VANISHED too */
	uint32_t *gone =
	    (s->qresync || s->uidonly) && count > 0 ? xmalloc(count * sizeof(*gone)) : NULL;
	uint32_t n = 0;
	for (size_t i = 0; i < count; i++) {
		long idx = imap_view_find(s, uids[i]);
		if (idx < 0)
			continue;
		if (gone != NULL)
			gone[n] = uids[i];
		else
			imap_send(s, "* %ld EXPUNGE", idx + 1);
		n++;
		imap_session_view_remove(s, idx);
	}
	if (gone != NULL) {
		qsort(gone, n, sizeof(*gone), imap_uid_cmp);
		imap_session_send_vanished(s, false, gone, n);
		free(gone);
	}
	return n;
}

int imap_session_message_limit(struct imap_session *s, const char *tag, bool uid, size_t *count_r)
{
	uint32_t limit = s->conf->imap_message_limit;
	if (limit == 0 || *count_r <= limit)
		return 1;
	if (!uid) { /* RFC 9738: by message number nothing is done */
		imap_tagged(s, tag, "NO", "[MESSAGELIMIT %u] Too many messages at once", limit);
		return -1;
	}
	*count_r = limit;
	s->msglimit_hit = limit;
	return 0;
}

int imap_session_fetch_head(const struct imap_session *s, struct buf *b, long idx)
{
	if (s->uidonly)
		return buf_printf(b, "* %u UIDFETCH (", s->msgs[idx].uid);
	return buf_printf(b, "* %ld FETCH (", idx + 1);
}

void imap_session_view_remove(struct imap_session *s, long idx)
{
	free(s->msgs[idx].keywords);
	memmove(&s->msgs[idx], &s->msgs[idx + 1],
	        (s->count - (uint32_t)idx - 1) * sizeof(*s->msgs));
	s->count--;
}

/* Longest tag kept for the answer to an over-long line. */
#define IMAP_OVERLONG_TAG_MAX 64

static const char *const imap_state_names[] = {
    [IMAP_STATE_NOT_AUTHENTICATED] = "not-authenticated",
    [IMAP_STATE_AUTHENTICATED] = "authenticated",
    [IMAP_STATE_SELECTED] = "selected",
    [IMAP_STATE_LOGOUT] = "logout",
};

void imap_session_set_state(struct imap_session *s, enum imap_state state)
{
	if (log_debug_enabled())
		log_debug("session=%s proto=imap event=state from=%s to=%s", conn_id(s->conn),
		          imap_state_names[s->state], imap_state_names[state]);
	s->state = state;
}

/* 1 when the space-separated list has word (len octets), compared case-insensitively. */
static bool imap_keyword_listed(const char *list, const char *word, size_t len)
{
	for (const char *p = list; p != NULL && *p != '\0';) {
		size_t n = strcspn(p, " ");
		if (n == len && strncasecmp(p, word, len) == 0)
			return true;
		p += n;
		p += strspn(p, " ");
	}
	return false;
}

/* Add the keywords of list that s->announced lacks; true when some were added. */
static bool imap_session_announce_add(struct imap_session *s, const char *list)
{
	bool added = false;
	for (const char *p = list; p != NULL && *p != '\0';) {
		size_t n = strcspn(p, " ");
		if (n > 0 && !imap_keyword_listed(s->announced, p, n)) {
			size_t old = s->announced != NULL ? strlen(s->announced) : 0;
			char *joined = xmalloc(old + 1 + n + 1);
			if (old > 0)
				memcpy(joined, s->announced, old);
			size_t at = old;
			if (old > 0)
				joined[at++] = ' ';
			memcpy(joined + at, p, n);
			joined[at + n] = '\0';
			free(s->announced);
			s->announced = joined;
			added = true;
		}
		p += n;
		p += strspn(p, " ");
	}
	return added;
}

void imap_session_send_flags(struct imap_session *s)
{
	const char *kw = s->announced != NULL ? s->announced : "";
	const char *sep = kw[0] != '\0' ? " " : "";
	imap_send(s, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft%s%s)", sep, kw);
	if (s->read_only)
		imap_send(s, "* OK [PERMANENTFLAGS ()] Read-only mailbox");
	else if ((s->rights & STORE_ACL_ALL) != STORE_ACL_ALL) {
		/* A shared mailbox (RFC 4314 §4): only the flags the session may store. */
		bool w = (s->rights & STORE_ACL_WRITE) != 0;
		struct buf b;
		buf_init(&b, 64 * 1024);
		int r = buf_puts(&b, w ? " \\Answered \\Flagged \\Draft" : "");
		if (r == 0 && (s->rights & STORE_ACL_DELMSG))
			r = buf_puts(&b, " \\Deleted");
		if (r == 0 && (s->rights & STORE_ACL_SEEN))
			r = buf_puts(&b, " \\Seen");
		if (r == 0 && w)
			r = buf_printf(&b, "%s%s \\*", sep, kw);
		imap_send(s, "* OK [PERMANENTFLAGS (%s)] Flags permitted",
		          r == 0 && b.len > 0 ? buf_cstr(&b) + 1 : "");
		buf_free(&b);
	} else
		imap_send(s,
		          "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft%s%s "
		          "\\*)] Flags permitted",
		          sep, kw);
}

void imap_session_view_keywords(struct imap_session *s, long idx, const char *keywords)
{
	free(s->msgs[idx].keywords);
	s->msgs[idx].keywords = keywords != NULL && keywords[0] != '\0' ? xstrdup(keywords) : NULL;
	/* A keyword new to this session is announced before a FETCH shows it (RFC 9051
	 * §7.3.5); during SELECT the FLAGS that SELECT sends covers it. */
	if (imap_session_announce_add(s, keywords) && s->state == IMAP_STATE_SELECTED)
		imap_session_send_flags(s);
}

void imap_session_flags_text(struct imap_session *s, struct buf *b, const struct imap_msg *m)
{
	size_t before = b->len;
	cmd_store_flags_text(b, m->flags, NULL);
	int r = 0;
	bool empty = b->len == before;
	if (m->recent && !s->rev2) {
		r |= buf_puts(b, empty ? "\\Recent" : " \\Recent");
		empty = false;
	}
	if (m->keywords != NULL && m->keywords[0] != '\0') {
		r |= buf_puts(b, empty ? "" : " ");
		r |= buf_puts(b, m->keywords);
	}
	(void)r; /* callers size b for a flag list */
}

int imap_session_recent_read(struct imap_session *s, uint32_t upto, uint32_t *first_r)
{
	/* Claim only what this session is told of: up to its last UID. */
	return store_recent_claim(s->server->store, s->mailbox_owner, s->mailbox, s->uidvalidity,
	                          upto, !s->read_only, first_r) == 1;
}

void imap_session_recent_mark(struct imap_session *s, uint32_t from, uint32_t first)
{
	for (uint32_t i = from; i < s->count; i++)
		s->msgs[i].recent = s->msgs[i].uid >= first;
}

uint32_t imap_session_recent_count(const struct imap_session *s)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < s->count; i++)
		n += s->msgs[i].recent;
	return n;
}

void imap_session_unselect(struct imap_session *s)
{
	store_unwatch(&s->watch);
	if (s->cap >= IMAP_VIEW_TRIM_MIN)
		conn_release_memory_soon(s->conn);
	for (uint32_t i = 0; i < s->count; i++)
		free(s->msgs[i].keywords);
	free(s->mailbox);
	s->mailbox = NULL;
	free(s->announced);
	s->announced = NULL;
	free(s->msgs);
	s->msgs = NULL;
	s->count = s->cap = 0;
	cmd_search_saved_reset(s); /* RFC 5182 §2.1 */
	if (s->state == IMAP_STATE_SELECTED)
		imap_session_set_state(s, IMAP_STATE_AUTHENTICATED);
}

static void imap_session_free(struct imap_session *s)
{
	imap_step_end(s); /* a long command cut short by the end of the session */
	imap_session_unselect(s);
	cmd_notify_free(s);
	auth_login_free(&s->login);
	free(s->auth_tag);
	free(s->idle_tag);
	free(s->op_tag);
	free(s->user);
	cmd_append_spool_free(s);
	buf_free(&s->literal);
	imap_parser_free(&s->parser);
	arena_free(&s->cmd);
	conf_free(&s->conf);
	free(s);
}

/* ---- input ---- */

/* A line was read: feed it to the parser and act on the answer. */
static void imap_input_line(struct imap_session *s, const char *line, size_t len)
{
	struct imap_literal lit;
	const char *error;
	int r = imap_parser_feed_line(s->parser, line, len, &lit, &error);
	if (r < 0) {
		imap_tagged(s, imap_parser_tag(s->parser), "BAD", "%s", error);
		imap_parser_reset(s->parser);
		arena_reset(s->cmd);
		cmd_append_spool_free(s);
		return;
	}
	if (r == 1 && s->state == IMAP_STATE_NOT_AUTHENTICATED &&
	    ++s->login_commands > s->limits->login_commands) {
		IMAP_LOG(s, "event=disconnect reason=too-many-commands-before-login count=%u",
		         s->login_commands);
		imap_session_close(s, "Too many commands before login");
		return;
	}
	if (r == 1) {
		/* Handlers copy whatever outlives the command (tags of asynchronous ones). */
		imap_commands_execute(s);
		imap_parser_reset(s->parser);
		arena_reset(s->cmd);
		cmd_append_spool_free(s); /* unless APPEND handed its files to the store */
		return;
	}
	/* APPEND's messages go to spool files, whatever their size (cmd_append.c). */
	if (cmd_append_literal_begin(s, &lit) != 0)
		return;
	/* A literal follows. RFC 9051 §7.1: refuse a too-large one before the client sends
	 * it (no continuation); a non-synchronizing one is already on its way: close. */
	if (lit.too_large) {
		const char *tag = imap_parser_tag(s->parser);
		if (!lit.sync) {
			imap_session_close(s, "[TOOBIG] Literal too large");
			return;
		}
		imap_tagged(s, tag, "NO", "[TOOBIG] Literal too large");
		imap_parser_reset(s->parser);
		arena_reset(s->cmd);
		return;
	}
	if (lit.sync)
		conn_printf(s->conn, "+ OK\r\n");
	buf_reset(&s->literal);
	s->literal_remaining = lit.size;
	s->io = IMAP_IO_LITERAL;
}

static void imap_input_literal(struct imap_session *s)
{
	while (s->literal_remaining > 0) {
		const unsigned char *data;
		size_t n = conn_peek(s->conn, &data);
		if (n == 0)
			return;
		if (n > s->literal_remaining)
			n = (size_t)s->literal_remaining;
		if (imap_parser_feed_literal(s->parser, data, n) < 0) {
			imap_session_close(s, "Internal error reading a literal");
			return;
		}
		conn_consume(s->conn, n);
		s->literal_remaining -= n;
	}
	s->io = IMAP_IO_LINE;
}

/* Before a line is read: the tag that an over-long line would be answered with, as far as
 * it is known now: the command's (SASL continuation, IDLE, a line after a literal), else
 * the tag at the start of the buffered input ("" when none can be seen). */
static void imap_overlong_tag_save(struct imap_session *s, char tag[IMAP_OVERLONG_TAG_MAX + 1])
{
	const char *known = s->io == IMAP_IO_SASL   ? s->auth_tag
	                    : s->io == IMAP_IO_IDLE ? s->idle_tag
	                                            : imap_parser_tag(s->parser);
	size_t n = 0;
	if (known != NULL) {
		n = strlen(known);
		if (n > IMAP_OVERLONG_TAG_MAX)
			n = 0;
		memcpy(tag, known, n);
	} else {
		const unsigned char *data;
		size_t len = conn_peek(s->conn, &data);
		/* tag = 1*<ASTRING-CHAR except "+">, then SP (RFC 9051 §9) */
		while (n < len && n < IMAP_OVERLONG_TAG_MAX && data[n] > ' ' && data[n] < 0x7f &&
		       strchr("+(){%*\"\\", data[n]) == NULL)
			n++;
		if (n == len || data[n] != ' ')
			n = 0;
		if (n > 0) /* data is NULL when nothing is buffered */
			memcpy(tag, data, n);
	}
	tag[n] = '\0';
}

/* A line went over the limit (its buffered part is gone, the rest is dropped as it comes):
 * the command ends with a tagged BAD (RFC 9051 §7.1: every command gets its completion),
 * then the session closes, because the dropped part may have announced a literal whose
 * octets would otherwise be read as commands. */
static void imap_overlong(struct imap_session *s, const char *tag)
{
	IMAP_LOG(s, "event=disconnect reason=line-too-long tag=%s", tag[0] != '\0' ? tag : "-");
	imap_tagged(s, tag[0] != '\0' ? tag : NULL, "BAD", "[TOOBIG] Command line too long");
	imap_session_close(s, "Command line too long");
}

static void imap_on_input(struct conn *conn, void *ctx)
{
	struct imap_session *s = ctx;
	char tag[IMAP_OVERLONG_TAG_MAX + 1];
	while (!s->closed) {
		size_t line_max = s->state == IMAP_STATE_NOT_AUTHENTICATED && s->io == IMAP_IO_LINE
		                      ? IMAP_PRELOGIN_LINE_MAX
		                      : IMAP_PARSER_DEFAULT_LINE_MAX;
		char *line;
		size_t len;
		int r;
		switch (s->io) {
		case IMAP_IO_LITERAL:
			imap_input_literal(s);
			if (s->io == IMAP_IO_LITERAL)
				return;
			continue;
		case IMAP_IO_LITERAL_FILE:
			cmd_append_literal_input(s);
			if (s->io == IMAP_IO_LITERAL_FILE)
				return;
			continue;
		case IMAP_IO_LINE:
		case IMAP_IO_SASL:
		case IMAP_IO_IDLE:
			imap_overlong_tag_save(s, tag);
			/* RFC 4954 §4's SASL line limit for AUTHENTICATE continuations. */
			r = conn_read_line(
			    conn, s->io == IMAP_IO_SASL ? AUTH_LOGIN_LINE_MAX + 2 : line_max, &line,
			    &len);
			if (r == 0) {
				imap_notify_poke(s); /* the commands so far have answered */
				return;
			}
			if (r < 0 && s->io == IMAP_IO_SASL) {
				/* a SASL line announces no literal: the session can go on */
				imap_parser_reset(s->parser);
				arena_reset(s->cmd);
				imap_commands_sasl_too_long(s);
				continue;
			}
			if (r < 0) {
				imap_overlong(s, tag);
				return;
			}
			if (s->io == IMAP_IO_SASL) {
				imap_commands_sasl_continue(s, line);
				xmemzero(line, len);
			} else if (s->io == IMAP_IO_IDLE) {
				imap_commands_idle_line(s, line);
			} else {
				imap_input_line(s, line, len);
				xmemzero(line, len); /* LOGIN lines carry passwords */
			}
			continue;
		default:
			return;
		}
	}
}

static void imap_greet(struct imap_session *s)
{
	s->greeted = true;
	s->io = IMAP_IO_LINE;
	imap_send(s, "* OK [CAPABILITY %s] Posthorn IMAP ready", imap_session_capabilities(s));
}

static void imap_on_tls_ready(struct conn *conn, void *ctx)
{
	struct imap_session *s = ctx;
	IMAP_LOG(s, "event=tls %s", conn_tls_description(conn));
	if (!s->greeted) {
		imap_greet(s);
		return;
	}
	s->io = IMAP_IO_LINE; /* after STARTTLS: RFC 9051 §6.2.1, the client asks CAPABILITY */
	imap_on_input(conn, ctx);
}

static void imap_on_timeout(struct conn *conn, void *ctx)
{
	(void)conn;
	struct imap_session *s = ctx;
	IMAP_LOG(s, "event=disconnect reason=timeout state=%d", (int)s->state);
	imap_session_close(s, "Autologout; idle for too long");
}

static void imap_on_timer(struct conn *conn, void *ctx)
{
	(void)conn;
	struct imap_session *s = ctx;
	if (s->io == IMAP_IO_WAIT && session_async(&s->life) == IMAP_ASYNC_NONE)
		imap_commands_login_failed_answer(s);
}

/* ---- lifecycle (net/session.h) ---- */

static void imap_async_done(void *ctx, int kind)
{
	struct imap_session *s = ctx;
	if (kind == IMAP_ASYNC_AUTH) {
		imap_commands_login_resume(s);
		return;
	}
	if (kind == IMAP_ASYNC_READ) {
		if (s->io == IMAP_IO_WAIT) /* not closing meanwhile (timeout, too many errors) */
			s->io = s->read_io;
		imap_read_next_fn *next = s->read_next;
		s->read_next = NULL;
		next(s, s->read_ctx);
		imap_session_go_on(s);
		return;
	}
	s->io = IMAP_IO_LINE;
	s->op_done(s);
	if (s->io == IMAP_IO_LINE)
		conn_resume(s->conn);
}

static void imap_async_abandoned(void *ctx, int kind)
{
	struct imap_session *s = ctx;
	if (kind == IMAP_ASYNC_OP && s->op_done != NULL)
		s->op_done(s); /* frees the op; writes go nowhere (s->closed) */
	if (kind == IMAP_ASYNC_READ && s->read_next != NULL) {
		imap_read_next_fn *next = s->read_next;
		s->read_next = NULL;
		next(s, s->read_ctx); /* releases what the read owns (s->closed) */
	}
}

/* Every wake of an open session: the change bus, or after an operation's answer. */
static void imap_after_wake(void *ctx)
{
	struct imap_session *s = ctx;
	if (s->io == IMAP_IO_IDLE && atomic_load(&s->changed) && !cmd_notify_owns_selected(s))
		imap_session_sync(s, true, NULL, NULL); /* RFC 2177: report changes while idling */
	imap_notify_poke(s);
}

/* Shutdown: BYE and close; an operation in flight (an APPEND's commit, a password check)
 * answers first (session.c waits for it); a long command's step gets no BYE inside its
 * output (imap_session_close). */
static void imap_goodbye(void *ctx)
{
	imap_session_close(ctx, "Server shutting down");
}

static void imap_free_hook(void *ctx)
{
	imap_session_free(ctx);
}

static const struct session_hooks imap_session_hooks = {
    .async_done = imap_async_done,
    .async_abandoned = imap_async_abandoned,
    .wake = imap_after_wake,
    .goodbye = imap_goodbye,
    .free = imap_free_hook,
};

static void imap_on_wake(struct conn *conn, void *ctx)
{
	(void)conn;
	struct imap_session *s = ctx;
	/* Two things wake us: an operation that finished, and the change bus. */
	session_on_wake(&s->life);
}

static void imap_on_shutdown(struct conn *conn, void *ctx)
{
	(void)conn;
	struct imap_session *s = ctx;
	session_on_shutdown(&s->life);
}

static void imap_on_closed(struct conn *conn, void *ctx)
{
	struct imap_session *s = ctx;
	store_unwatch(&s->watch); /* no change-bus wake-up may reach a freed session */
	cmd_notify_free(s);
	IMAP_LOG(s, "event=disconnect ip=%s errors=%u", conn_remote_ip(conn), s->errors);
	s->closed = true;
	session_on_closed(&s->life); /* frees s, or leaves it to the operation's wake */
}

static const struct conn_callbacks imap_callbacks = {
    .on_input = imap_on_input,
    .on_writable = imap_on_writable,
    .on_tls_ready = imap_on_tls_ready,
    .on_timeout = imap_on_timeout,
    .on_timer = imap_on_timer,
    .on_wake = imap_on_wake,
    .on_shutdown = imap_on_shutdown,
    .on_closed = imap_on_closed,
};

void imap_server_accept(struct conn *conn, void *listener_ctx)
{
	struct imap_listener *l = listener_ctx;
	struct imap_server *srv = l->server;
	struct imap_session *s = xcalloc(1, sizeof(*s));
	s->conn = conn;
	s->server = srv;
	s->conf = conf_slot_get(&srv->conf);
	s->limits = &s->conf->limits;
	s->cmd = arena_new(8192);
	s->parser = imap_parser_new(s->cmd, &imap_prelogin_limits); /* until login */
	buf_init(&s->literal, IMAP_LITERAL_MAX);
	s->io = IMAP_IO_TLS;
	s->state = IMAP_STATE_NOT_AUTHENTICATED; /* the initial state, not a transition */
	session_init(&s->life, conn, "imap", &imap_session_hooks, s);
	conn_set_callbacks(conn, &imap_callbacks, s);
	/* RFC 9051 §5.4: an autologout timer of at least 30 minutes once authenticated; the
	 * same generous value before (a login takes seconds). */
	conn_set_timeout(conn, s->limits->imap_idle_timeout);
	IMAP_LOG(s, "event=connect ip=%s port=%d", conn_remote_ip(conn), conn_local_port(conn));
	if (!l->implicit_tls)
		imap_greet(s);
}
