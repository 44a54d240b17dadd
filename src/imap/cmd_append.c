/* APPEND (RFC 9051 §6.3.12) with MULTIAPPEND (RFC 3502), LITERAL+ (RFC 7888), literal8
 * (RFC 3516) and APPENDLIMIT (RFC 7889). Message literals never sit in memory: the session
 * hands each one to cmd_append_literal_begin(), which refuses it before any continuation
 * when it cannot be taken (NO [TOOBIG], [TRYCREATE], [OVERQUOTA]) or streams its octets into
 * a spool file; the finished command gives them to store_append() (all or none). */
#include "imap/imap_commands.h"
#include "imap/imap_acl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/date.h"
#include "core/fault.h"
#include "core/crlf.h"
#include "core/imap_url.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mime/header.h"
#include "mime/mime_binary.h"
#include "core/banned.h"

/* Messages in one MULTIAPPEND. */
#define CMD_APPEND_MESSAGES_MAX 1000
/* Longest header field kept for the message index (as SMTP keeps it). */
#define CMD_APPEND_HEADER_FIELD_MAX 998

struct cmd_append_file {
	char *path; /* malloc'd; the spool file until the store takes it */
	int fd;     /* open while its octets arrive, else -1 */
	uint64_t size;
	bool binary, nul;
	struct crlf crlf; /* a {n} literal's bare CR / LF become CRLF; literal8 stays as sent */
	struct header_scanner *headers; /* in the spool's arena */
};

/* The message literals of the APPEND being read (s->append). */
struct cmd_append_spool {
	struct cmd_append_file *files;
	size_t count, cap;
	uint64_t remaining;  /* octets still to come for the last file */
	uint64_t total;      /* octets of all files */
	const char *error;   /* a spool file could not be written */
	const char *refusal; /* the command will be refused with it (seen before the octets of a
	                        non-synchronizing literal, which are then read and dropped) */
	bool handed;         /* the store owns the files now */
	bool replace;        /* of a REPLACE: its quota check is the store's (room is freed) */
	struct arena *arena;
	/* the checks before a literal's octets (cmd_append_check_read, off the loop where
	 * reads wait): what they look at and what they found */
	struct {
		struct imap_session *s;
		struct imap_literal lit;
		char *name;     /* the target, checked before the first message; else NULL */
		uint64_t owner; /* the account holding it (a shared mailbox's owner) */
		const char *acl_refusal; /* set on the loop: no such mailbox to see, no i right */
		uint64_t want;
		const char *refusal;
	} check;
};

static void cmd_append_spool_destroy(struct cmd_append_spool *sp)
{
	for (size_t i = 0; i < sp->count; i++) {
		struct cmd_append_file *f = &sp->files[i];
		if (f->fd >= 0)
			close(f->fd);
		if (!sp->handed && f->path != NULL)
			unlink(f->path);
		free(f->path);
	}
	free(sp->files);
	free(sp->check.name);
	arena_free(&sp->arena);
	free(sp);
}

void cmd_append_spool_free(struct imap_session *s)
{
	if (s->append != NULL)
		cmd_append_spool_destroy(s->append);
	s->append = NULL;
}

/* Refuse the literal announced (and so the whole command): before the continuation for a
 * synchronizing literal (RFC 9051 §7.1, RFC 7889 §4); a non-synchronizing one is on its
 * way already, so the connection closes (RFC 7888 §4 lets the server do that). */
static int cmd_append_refuse(struct imap_session *s, const struct imap_literal *lit,
                             const char *text)
{
	IMAP_LOG(s, "event=append result=refused size=%llu reason=\"%s\"",
	         (unsigned long long)lit->size, text);
	if (lit->sync)
		imap_tagged(s, imap_parser_tag(s->parser), "NO", "%s", text);
	else
		imap_session_close(s, text);
	imap_parser_reset(s->parser);
	arena_reset(s->cmd);
	cmd_append_spool_free(s);
	return -1;
}

/* What can be known before the octets: the target exists, the quota has room (store reads,
 * imap_session_read()): the refusal text or NULL into the spool's check. */
static void cmd_append_check_read(void *ctx)
{
	struct cmd_append_spool *sp = ctx;
	struct imap_session *s = sp->check.s;
	struct store_account_limits l;
	uint64_t want = sp->check.want;
	sp->check.refusal = sp->check.acl_refusal;
	if (sp->check.refusal != NULL)
		return;
	/* A shared mailbox's messages count against its owner's quota. */
	uint64_t owner = sp->check.name != NULL ? sp->check.owner : s->account_id;
	if (sp->check.name != NULL &&
	    store_mailbox_exists(s->server->store, owner, sp->check.name) == 0)
		sp->check.refusal = "[TRYCREATE] The mailbox does not exist";
	else if (!sp->replace && store_account_limits(s->server->store, owner, &l) == 1 &&
	         store_account_limits_exceeded(&l, want, 1))
		sp->check.refusal = "[OVERQUOTA] Quota exceeded";
}

/* The checks are done: refuse the literal or take it into a new spool file. */
static int cmd_append_literal_accept(struct imap_session *s, const struct imap_literal *lit)
{
	struct cmd_append_spool *sp = s->append;
	if (sp->refusal != NULL && lit->sync)
		return cmd_append_refuse(s, lit, sp->refusal);
	if (sp->error != NULL && lit->sync)
		return cmd_append_refuse(s, lit, "[UNAVAILABLE] Cannot store the message now");
	/* A non-synchronizing literal of a command already doomed goes nowhere. */
	char *path = NULL;
	int fd = -1;
	if (sp->refusal == NULL && sp->error == NULL) {
		path = store_spool_path_dup(s->server->store);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			log_error("session=%s proto=imap event=spool-open path=%s error=%s",
			          conn_id(s->conn), path, strerror(errno));
			free(path);
			path = NULL;
			if (lit->sync)
				return cmd_append_refuse(
				    s, lit, "[UNAVAILABLE] Cannot store the message now");
			sp->error = "cannot create a spool file";
		}
	}
	if (sp->count == sp->cap) {
		sp->cap = sp->cap == 0 ? 4 : 2 * sp->cap;
		sp->files = xrealloc(sp->files, sp->cap * sizeof(*sp->files));
	}
	sp->files[sp->count++] = (struct cmd_append_file){
	    .path = path,
	    .fd = fd,
	    .size = lit->size,
	    .binary = lit->binary,
	    .headers =
	        header_scanner_new(sp->arena, CMD_APPEND_HEADER_FIELD_MAX, s->limits->header_lines),
	};
	sp->remaining = lit->size;
	sp->total += lit->size;
	imap_parser_literal_external(s->parser);
	if (lit->sync)
		conn_printf(s->conn, "+ OK\r\n");
	s->io = IMAP_IO_LITERAL_FILE;
	return 1;
}

static void cmd_append_check_done(struct imap_session *s, void *ctx)
{
	struct cmd_append_spool *sp = ctx;
	free(sp->check.name);
	sp->check.name = NULL;
	if (s->closed)
		return; /* the spool goes with the session */
	sp->refusal = sp->check.refusal;
	(void)cmd_append_literal_accept(s, &sp->check.lit); /* a refusal frees sp */
}

int cmd_append_literal_begin(struct imap_session *s, const struct imap_literal *lit)
{
	/* Before login nothing touches the store or the disk: the dispatcher answers BAD. */
	const char *command = imap_parser_command(s->parser);
	/* REPLACE (RFC 8508) takes its message as APPEND does, after a message number. */
	bool replace = command != NULL &&
	               (strcmp(command, "REPLACE") == 0 || strcmp(command, "UID REPLACE") == 0);
	size_t name_arg = replace ? 1 : 0;
	/* REPLACE by message number under UIDONLY: the dispatcher answers BAD [UIDREQUIRED] */
	if (replace && s->uidonly && strcmp(command, "REPLACE") == 0)
		return 0;
	/* A literal inside a list (CATENATE's TEXT parts, RFC 4469) stays in memory */
	if (command != NULL && imap_parser_depth(s->parser) > 0)
		return 0;
	if (command == NULL || (strcmp(command, "APPEND") != 0 && !replace) ||
	    (s->state != IMAP_STATE_AUTHENTICATED && s->state != IMAP_STATE_SELECTED) ||
	    (replace && s->state != IMAP_STATE_SELECTED))
		return 0;
	/* Only the mailbox name (REPLACE: the message number and the mailbox name) comes
	 * before the first message; everything else that may be a literal at the top level is
	 * a message (flags are atoms in a list, the date-time a quoted string). */
	const struct imap_arg *args = imap_parser_args_so_far(s->parser);
	if (imap_parser_arg_count(args) <= name_arg)
		return 0;
	if (s->append == NULL) {
		s->append = xcalloc(1, sizeof(*s->append));
		s->append->arena = arena_new(4096);
	}
	struct cmd_append_spool *sp = s->append;
	if (lit->size > s->limits->message_size)
		return cmd_append_refuse(s, lit, "[TOOBIG] Message too large");
	/* Below min_free_space the message is refused before its octets (a non-synchronizing
	 * literal is read and dropped, then the command answered): temporary, not OVERQUOTA,
	 * which is the account's quota (Dovecot answers [OVERQUOTA] for both). */
	if (sp->refusal == NULL &&
	    store_space_low(s->server->store, conf_min_free_space(s->conf), lit->size)) {
		sp->replace = replace;
		sp->refusal = "[UNAVAILABLE] Insufficient system storage, try again later";
		IMAP_LOG(s, "event=append result=refused size=%llu reason=disk-space",
		         (unsigned long long)lit->size);
	}
	if (sp->count >= (replace ? 1 : CMD_APPEND_MESSAGES_MAX))
		return cmd_append_refuse(s, lit, "[LIMIT] Too many messages in one APPEND");
	sp->replace = replace;
	if (sp->refusal != NULL)
		return cmd_append_literal_accept(s, lit);
	const char *raw, *name;
	free(sp->check.name);
	sp->check.name = NULL;
	sp->check.acl_refusal = NULL;
	struct imap_acl_mbox mb;
	if (sp->count == 0 && imap_commands_astring(&args[name_arg], &raw) &&
	    (name = imap_commands_mailbox_name(s, raw)) != NULL &&
	    store_mailbox_name_valid(name) == 1) {
		/* RFC 4314 §4: APPEND needs i; a shared mailbox the session may not look up is
		 * answered as a missing one. */
		int r = imap_acl_resolve(s, name, &mb);
		if (r <= 0)
			sp->check.acl_refusal = r == 0
			                            ? "[TRYCREATE] The mailbox does not exist"
			                            : "[UNAVAILABLE] Cannot store the message now";
		else if ((mb.rights & STORE_ACL_INSERT) == 0)
			sp->check.acl_refusal = "[NOPERM] Permission denied (right i needed)";
		sp->check.name = xstrdup(r == 1 ? mb.name : name);
		sp->check.owner = r == 1 ? mb.owner : s->account_id;
	}
	sp->check.s = s;
	sp->check.lit = *lit;
	sp->check.want = sp->total + lit->size;
	/* Where reads wait, input pauses until the checks answer (s->io IMAP_IO_WAIT): 1. */
	if (!imap_session_read(s, cmd_append_check_read, cmd_append_check_done, sp))
		return 1;
	return s->append != NULL ? 1 : -1; /* taken, or refused (the spool is gone) */
}

static void cmd_append_write_raw(struct cmd_append_spool *sp, struct cmd_append_file *f,
                                 const unsigned char *data, size_t n)
{
	(void)header_scanner_feed(f->headers, data, n);
	while (n > 0 && f->fd >= 0) {
		int fault = FAULT_POINT("imap.append.mid");
		ssize_t w = fault != 0 ? (errno = fault, -1) : write(f->fd, data, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_error("proto=imap event=spool-write path=%s error=%s", f->path,
			          strerror(errno));
			sp->error = "cannot write the spool file";
			close(f->fd);
			f->fd = -1; /* the octets still arrive: they are read and dropped */
			return;
		}
		data += w;
		n -= (size_t)w;
	}
}

/* Octets of the message literal: a {n} literal's line ends become CRLF on the way to the
 * spool file, as Dovecot does and as SMTP's smtp_bare_lf = normalize does (IMAP clients
 * expect CRLF); a literal8 (RFC 3516) is stored as sent, since a binary part may hold any
 * octet. The stored size (RFC822.SIZE, quota) is the file's, after conversion. */
static void cmd_append_write(struct cmd_append_spool *sp, struct cmd_append_file *f,
                             const unsigned char *data, size_t n)
{
	if (f->path == NULL)
		return; /* dropped: the command is refused anyway */
	if (f->binary) {
		cmd_append_write_raw(sp, f, data, n);
		return;
	}
	/* RFC 9051 §9: a literal is CHAR8, no NUL; literal8 (RFC 3516) may hold any octet. */
	if (memchr(data, '\0', n) != NULL)
		f->nul = true;
	unsigned char out[2 * 4096 + 2];
	while (n > 0) {
		size_t step = n < 4096 ? n : 4096;
		cmd_append_write_raw(sp, f, out, crlf_convert(&f->crlf, data, step, out));
		data += step;
		n -= step;
	}
}

struct cmd_append_out {
	int fd;
	bool failed;
};

static void cmd_append_out_write(void *ctx, const void *data, size_t n)
{
	struct cmd_append_out *w = ctx;
	const unsigned char *p = data;
	while (n > 0 && !w->failed) {
		ssize_t r = write(w->fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			w->failed = true;
			return;
		}
		p += r;
		n -= (size_t)r;
	}
}

/* A literal8 message (RFC 3516 §4.4): its binary parts are stored as base64, as Dovecot
 * stores them, so that BODY[] never puts NUL octets into a {n} literal; BINARY[] decodes
 * them back (mime_binary.h). The converted copy replaces the spool file. */
static void cmd_append_binary(struct imap_session *s, struct cmd_append_spool *sp,
                              struct cmd_append_file *f)
{
	int fd = open(f->path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0) {
		if (fd >= 0)
			close(fd);
		return;
	}
	size_t len = (size_t)st.st_size;
	void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return; /* stored as sent */
	if (mime_binary_count(map, len) > 0) {
		char *path = store_spool_path_dup(s->server->store);
		struct cmd_append_out w = {
		    .fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)};
		w.failed = w.fd < 0;
		if (!w.failed)
			(void)mime_binary_convert(map, len, cmd_append_out_write, &w);
		if (w.fd >= 0 && close(w.fd) != 0)
			w.failed = true;
		if (w.failed) {
			log_error("session=%s proto=imap event=spool-write path=%s error=%s",
			          conn_id(s->conn), path, strerror(errno));
			(void)unlink(path);
			free(path);
			sp->error = "cannot write the spool file";
		} else {
			(void)unlink(f->path);
			free(f->path);
			f->path = path;
		}
	}
	munmap(map, len);
}

void cmd_append_literal_input(struct imap_session *s)
{
	struct cmd_append_spool *sp = s->append;
	struct cmd_append_file *f = &sp->files[sp->count - 1];
	while (sp->remaining > 0) {
		const unsigned char *data;
		size_t n = conn_peek(s->conn, &data);
		if (n == 0)
			return; /* the rest comes with a later on_input */
		if (n > sp->remaining)
			n = (size_t)sp->remaining;
		cmd_append_write(sp, f, data, n);
		conn_consume(s->conn, n);
		sp->remaining -= n;
	}
	if (f->path != NULL && !f->binary) {
		unsigned char end[2];
		cmd_append_write_raw(sp, f, end, crlf_finish(&f->crlf, end));
	}
	if (f->fd >= 0 && close(f->fd) != 0 && sp->error == NULL)
		sp->error = "cannot close the spool file";
	f->fd = -1;
	if (f->binary && f->path != NULL && sp->error == NULL)
		cmd_append_binary(s, sp, f);
	s->io = IMAP_IO_LINE;
}

/* ---- the command ---- */

/* Exactly n digits at *p into *v_r; advances *p. 0, or -1. */
static int cmd_append_digits(const char **p, int n, int *v_r)
{
	int v = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (**p < '0' || **p > '9')
			return -1;
		v = v * 10 + (**p - '0');
	}
	*v_r = v;
	return 0;
}

/* RFC 9051 §9 date-time: "dd-Mon-yyyy hh:mm:ss +zzzz" (the day also " d", and "d" as many
 * servers accept). 0 with unix seconds, -1 when invalid. */
static int cmd_append_date(const char *p, int64_t *t_r)
{
	int day, month, year, hour, min, sec, zone;
	if (*p == ' ')
		p++;
	bool two = p[0] != '\0' && p[1] >= '0' && p[1] <= '9';
	if (cmd_append_digits(&p, two ? 2 : 1, &day) < 0 || *p++ != '-')
		return -1;
	month = (int)date_month(p) - 1;
	if (month < 0)
		return -1;
	p += 3;
	if (*p++ != '-' || cmd_append_digits(&p, 4, &year) < 0 || *p++ != ' ' ||
	    cmd_append_digits(&p, 2, &hour) < 0 || *p++ != ':' ||
	    cmd_append_digits(&p, 2, &min) < 0 || *p++ != ':' ||
	    cmd_append_digits(&p, 2, &sec) < 0 || *p++ != ' ' || (*p != '+' && *p != '-'))
		return -1;
	int sign = *p++ == '-' ? -1 : 1;
	if (cmd_append_digits(&p, 4, &zone) < 0 || *p != '\0')
		return -1;
	if (day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60 || zone % 100 > 59 ||
	    year < 1970)
		return -1;
	struct tm tm = {.tm_year = year - 1900,
	                .tm_mon = month,
	                .tm_mday = day,
	                .tm_hour = hour,
	                .tm_min = min,
	                .tm_sec = sec > 59 ? 59 : sec};
	time_t t = timegm(&tm);
	if (tm.tm_mday != day || tm.tm_mon != month) /* 31-Feb */
		return -1;
	*t_r = (int64_t)t - sign * ((int64_t)(zone / 100) * 3600 + (int64_t)(zone % 100) * 60);
	return 0;
}

struct cmd_append_op {
	struct store_append op;
	struct store_append_message *msgs;
	struct cmd_append_spool *spool; /* paths, keywords and header texts (its arena) */
	char *mailbox;
	char *replace_mailbox; /* REPLACE: the selected mailbox; else NULL */
};

static void cmd_append_cb(struct store_append *op, void *ctx)
{
	(void)op;
	imap_session_op_finished(ctx);
}

static void cmd_append_fail(struct imap_session *s, const char *e)
{
	if (strcmp(e, STORE_ERROR_NO_MAILBOX) == 0)
		imap_tagged(s, s->op_tag, "NO", "[TRYCREATE] The mailbox does not exist");
	else if (strcmp(e, STORE_ERROR_OVERQUOTA) == 0)
		imap_tagged(s, s->op_tag, "NO", "[OVERQUOTA] Quota exceeded");
	else if (strcmp(e, STORE_ERROR_LIMIT) == 0)
		imap_tagged(s, s->op_tag, "NO", "[LIMIT] Too many keywords or messages");
	else if (strcmp(e, STORE_ERROR_BAD_KEYWORD) == 0)
		imap_tagged(s, s->op_tag, "BAD", "Invalid keyword");
	else if (strcmp(e, STORE_ERROR_EXPUNGED) == 0)
		imap_tagged(s, s->op_tag, "NO", "[EXPUNGEISSUED] The message to replace is gone");
	else {
		IMAP_LOG(s, "event=append result=fail error=\"%s\"", e);
		imap_tagged(s, s->op_tag, "NO", "[UNAVAILABLE] APPEND failed");
	}
}

static void cmd_append_done(struct imap_session *s)
{
	struct cmd_append_op *o = s->op;
	s->op = NULL;
	if (!s->closed && o->op.result != 0)
		cmd_append_fail(s, o->op.error);
	if (!s->closed && o->op.result == 0) {
		/* RFC 4315 §3: the UIDs in order; one transaction gives them consecutively. */
		uint32_t first = o->msgs[0].uid, last = o->msgs[o->op.count - 1].uid;
		struct buf set;
		buf_init(&set, 16 * CMD_APPEND_MESSAGES_MAX);
		int r = 0;
		if (o->op.count == 1)
			r = buf_printf(&set, "%u", first);
		else if (last - first + 1 == o->op.count)
			r = buf_printf(&set, "%u:%u", first, last);
		else
			for (size_t i = 0; i < o->op.count && r == 0; i++)
				r = buf_printf(&set, "%s%u", i == 0 ? "" : ",", o->msgs[i].uid);
		IMAP_LOG(s, "event=%s mailbox=%s messages=%zu size=%llu",
		         o->replace_mailbox != NULL ? "replace" : "append", o->mailbox, o->op.count,
		         (unsigned long long)o->spool->total);
		if (o->replace_mailbox != NULL) {
			/* RFC 8508 §3.3: APPENDUID in an untagged OK (as MOVE's COPYUID), then
			 * the EXPUNGE (or VANISHED) of the old message, and EXISTS when the
			 * target is the selected mailbox. */
			imap_send(s, "* OK [APPENDUID %u %u] Replacement Message ID",
			          o->op.uidvalidity, first);
			imap_session_sync_ok(s, true, s->op_tag, "REPLACE completed");
		} else if (r == 0)
			imap_session_sync_ok(s, true, s->op_tag,
			                     "[APPENDUID %u %s] APPEND completed",
			                     o->op.uidvalidity, buf_cstr(&set));
		else
			imap_session_sync_ok(s, true, s->op_tag, "APPEND completed");
		buf_free(&set);
	}
	o->spool->handed = true; /* consumed by the store either way */
	cmd_append_spool_destroy(o->spool);
	free(o->msgs);
	free(o->mailbox);
	free(o->replace_mailbox);
	free(o);
}

/* One message's flags, date and literal from args at *i onwards into m. 0, or -1 with the
 * BAD text in *error_r. */
static int cmd_append_message(struct imap_session *s, const struct imap_arg *args, size_t *i,
                              struct store_append_message *m, const struct imap_arg **cat_r,
                              const char **error_r)
{
	struct arena *a = s->append->arena;
	size_t k = *i;
	if (args[k].type == IMAP_ARG_LIST) {
		const char **kw;
		size_t n;
		if (cmd_store_parse_flags(s->cmd, args[k].list, &m->flags, &kw, &n) < 0) {
			*error_r = "Invalid flag";
			return -1;
		}
		const char **copy = arena_alloc(a, (n + 1) * sizeof(*copy));
		for (size_t j = 0; j < n; j++)
			copy[j] = arena_strdup(a, kw[j]);
		m->keywords = copy;
		m->keyword_count = n;
		k++;
	}
	if (args[k].type == IMAP_ARG_STRING) {
		if (cmd_append_date(args[k].str, &m->internal_date) < 0) {
			*error_r = "Invalid date-time";
			return -1;
		}
		k++;
	}
	if (cat_r != NULL && args[k].type == IMAP_ARG_ATOM &&
	    strcasecmp(args[k].str, "CATENATE") == 0 && args[k + 1].type == IMAP_ARG_LIST) {
		*cat_r = args[k + 1].list; /* RFC 4469 §5 */
		*i = k + 2;
		return 0;
	}
	if (args[k].type != IMAP_ARG_LITERAL_EXTERNAL) {
		*error_r = "Syntax: APPEND mailbox [(flags)] [date-time] literal ...";
		return -1;
	}
	*i = k + 1;
	return 0;
}

/* The command's messages into *msgs_r (malloc'd). 0, or -1 after answering. */
static int cmd_append_messages(struct imap_cmd *cmd, size_t first,
                               struct store_append_message **msgs_r)
{
	struct imap_session *s = cmd->s;
	struct cmd_append_spool *sp = s->append;
	struct store_append_message *msgs = xcalloc(sp->count + 1, sizeof(*msgs));
	const char *error = NULL;
	size_t i = first, n = 0;
	while (error == NULL && cmd->args[i].type != IMAP_ARG_EOL) {
		if (n == sp->count)
			error = "Syntax: APPEND mailbox [(flags)] [date-time] literal ...";
		else if (cmd_append_message(s, cmd->args, &i, &msgs[n], NULL, &error) == 0)
			n++;
	}
	if (error == NULL && n != sp->count)
		error = "Syntax: APPEND mailbox [(flags)] [date-time] literal ...";
	for (size_t k = 0; error == NULL && k < n; k++)
		if (sp->files[k].nul)
			error = "NUL octet in a literal (use literal8)";
	if (error != NULL) {
		free(msgs);
		imap_tagged(s, cmd->tag, "BAD", "%s", error);
		return -1;
	}
	for (size_t k = 0; k < n; k++) {
		struct header_summary hs;
		header_scanner_result(sp->files[k].headers, &hs);
		msgs[k].spool_path = sp->files[k].path;
		msgs[k].hdr_from = hs.from;
		msgs[k].hdr_subject = hs.subject;
		msgs[k].hdr_message_id = hs.message_id;
	}
	*msgs_r = msgs;
	return 0;
}

/* ---- CATENATE (RFC 4469): a message built from TEXT literals and IMAP URLs ---- */

struct cmd_cat_part {
	const unsigned char *text; /* TEXT: octets in the spool's arena; NULL for a URL */
	size_t len;
	const char *url_text; /* URL: as sent (for [BADURL]) */
	struct imap_url url;
};

struct cmd_cat_msg {
	size_t pos; /* among the command's messages */
	struct cmd_cat_part *parts;
	size_t count;
	struct cmd_append_file file; /* the message built (path NULL until created) */
};

struct cmd_cat {
	struct store *store;
	uint64_t account_id;
	char *user, *tag, *raw;
	char *target;                   /* the mailbox appended to (UTF-8), NULL when invalid */
	uint64_t max;                   /* the message size limit */
	size_t header_lines;            /* for the header scanner */
	struct cmd_append_spool *spool; /* owned: the literal messages and the arena */
	struct store_append_message *msgs;
	size_t msg_count;
	struct cmd_cat_msg *cats;
	size_t cat_count;
	const char *refusal; /* static text for NO, or NULL */
	const char *bad_url; /* the URL for NO [BADURL], or NULL */
};

static void cmd_cat_free(struct cmd_cat *c)
{
	for (size_t i = 0; i < c->cat_count; i++) {
		struct cmd_append_file *f = &c->cats[i].file;
		if (f->fd >= 0)
			close(f->fd);
		if (f->path != NULL) {
			(void)unlink(f->path);
			free(f->path);
		}
	}
	if (c->spool != NULL)
		cmd_append_spool_destroy(c->spool);
	free(c->cats);
	free(c->msgs);
	free(c->user);
	free(c->tag);
	free(c->raw);
	free(c->target);
	free(c);
}

/* The parts of one CATENATE list into m (in the spool's arena). 0, -1 with *error_r (BAD),
 * or 1 with *bad_url_r: a URL that is no IMAP URL (NO [BADURL]). */
static int cmd_cat_parse(struct cmd_append_spool *sp, const struct imap_arg *list,
                         struct cmd_cat_msg *m, const char **error_r, const char **bad_url_r)
{
	size_t n = imap_parser_arg_count(list);
	if (n == 0 || n % 2 != 0) {
		*error_r = "Syntax: CATENATE (TEXT literal | URL url ...)";
		return -1;
	}
	m->parts = arena_alloc(sp->arena, (n / 2) * sizeof(*m->parts));
	m->count = n / 2;
	for (size_t i = 0; i < n; i += 2) {
		struct cmd_cat_part *p = &m->parts[i / 2];
		memset(p, 0, sizeof(*p));
		const struct imap_arg *v = &list[i + 1];
		bool text = list[i].type == IMAP_ARG_ATOM && strcasecmp(list[i].str, "TEXT") == 0;
		bool url = list[i].type == IMAP_ARG_ATOM && strcasecmp(list[i].str, "URL") == 0;
		const char *u;
		if (text && v->type == IMAP_ARG_LITERAL) {
			unsigned char *copy = arena_alloc(sp->arena, v->len + 1);
			memcpy(copy, v->str, v->len);
			p->text = copy;
			p->len = v->len;
		} else if (url && imap_commands_astring(v, &u)) {
			const char *error;
			p->url_text = arena_strdup(sp->arena, u);
			if (imap_url_parse(sp->arena, p->url_text, &p->url, &error) < 0) {
				*bad_url_r = p->url_text;
				return 1;
			}
		} else {
			*error_r = "Syntax: CATENATE (TEXT literal | URL url ...)";
			return -1;
		}
	}
	return 0;
}

/* Copy [off, off + len) of fd into f; false on a read error. */
static bool cmd_cat_copy(struct cmd_append_spool *sp, struct cmd_append_file *f, int fd,
                         uint64_t off, uint64_t len)
{
	unsigned char chunk[65536];
	while (len > 0) {
		size_t want = len < sizeof(chunk) ? (size_t)len : sizeof(chunk);
		ssize_t r = pread(fd, chunk, want, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		cmd_append_write_raw(sp, f, chunk, (size_t)r);
		off += (uint64_t)r;
		len -= (uint64_t)r;
	}
	return true;
}

/* One URL part into f (RFC 4469 §5). false with c->bad_url or c->refusal set. */
/* The account whose message a URL part names, as this user may read it (RFC 4469 §5): a
 * plain URL of the user's own mailboxes, or a URLAUTH URL (RFC 4467 §3) whose access lets
 * this user in and whose token verifies under its owner's key. 1 with *account_r, 0 not
 * allowed, -1 error. */
static int cmd_cat_url_account(struct cmd_cat *c, const struct cmd_cat_part *p, uint64_t *account_r)
{
	const struct imap_url *u = &p->url;
	if (u->access == NULL) {
		if (u->owner != NULL && strcasecmp(u->owner, c->user) != 0)
			return 0;
		*account_r = c->account_id;
		return 1;
	}
	if (u->token == NULL || u->owner == NULL || strcasecmp(u->mech, "INTERNAL") != 0 ||
	    (u->expire && u->expire_time <= (int64_t)time(NULL)))
		return 0;
	if (strcasecmp(u->access, "authuser") != 0 && strcasecmp(u->access, "anonymous") != 0 &&
	    !(strncasecmp(u->access, "user+", 5) == 0 && strcasecmp(u->access + 5, c->user) == 0))
		return 0; /* submit+ is for the submission server */
	int r = store_account_lookup(c->store, u->owner, account_r, NULL, NULL);
	if (r != 1)
		return r;
	return store_urlauth_verify(c->store, *account_r, u->mailbox, p->url_text, u->rump_len,
	                            u->token);
}

static bool cmd_cat_url(struct cmd_cat *c, struct cmd_append_file *f, const struct cmd_cat_part *p,
                        uint64_t *total)
{
	const struct imap_url *u = &p->url;
	uint64_t account;
	int r = cmd_cat_url_account(c, p, &account);
	if (r != 1) {
		if (r == 0)
			c->bad_url = p->url_text;
		else
			c->refusal = "[UNAVAILABLE] Cannot read the message named by a URL";
		return false;
	}
	int fd;
	uint64_t off, len;
	r = store_message_section(c->store, account, u->mailbox, u->uidvalidity, u->uid, u->section,
	                          u->partial, u->partial_off, u->partial_len, &fd, &off, &len);
	if (r <= 0) {
		if (r == 0)
			c->bad_url = p->url_text;
		else
			c->refusal = "[UNAVAILABLE] Cannot read the message named by a URL";
		return false;
	}
	bool ok = *total + len <= c->max;
	if (!ok)
		c->refusal = "[TOOBIG] The message would be too large";
	else if (!cmd_cat_copy(c->spool, f, fd, off, len))
		c->refusal = "[UNAVAILABLE] Cannot read the message named by a URL";
	*total += len;
	close(fd);
	return ok && c->refusal == NULL;
}

/* Build one message into a new spool file. false with c->bad_url or c->refusal set. */
static bool cmd_cat_build(struct cmd_cat *c, struct cmd_cat_msg *m)
{
	struct cmd_append_file *f = &m->file;
	f->path = store_spool_path_dup(c->store);
	f->fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	f->headers =
	    header_scanner_new(c->spool->arena, CMD_APPEND_HEADER_FIELD_MAX, c->header_lines);
	if (f->fd < 0) {
		free(f->path);
		f->path = NULL;
		c->refusal = "[UNAVAILABLE] Cannot store the message now";
		return false;
	}
	uint64_t total = 0;
	for (size_t i = 0; i < m->count; i++) {
		const struct cmd_cat_part *p = &m->parts[i];
		if (p->text == NULL) {
			if (!cmd_cat_url(c, f, p, &total))
				return false;
			continue;
		}
		if (total + p->len > c->max) {
			c->refusal = "[TOOBIG] The message would be too large";
			return false;
		}
		total += p->len;
		cmd_append_write(c->spool, f, p->text, p->len); /* line ends become CRLF */
		unsigned char end[2];
		cmd_append_write_raw(c->spool, f, end, crlf_finish(&f->crlf, end));
	}
	struct stat st;
	if (c->spool->error != NULL || fstat(f->fd, &st) != 0 || close(f->fd) != 0) {
		f->fd = -1;
		c->refusal = "[UNAVAILABLE] Cannot store the message now";
		return false;
	}
	f->fd = -1;
	f->size = (uint64_t)st.st_size;
	if (f->size > c->max) { /* after CRLF conversion */
		c->refusal = "[TOOBIG] The message would be too large";
		return false;
	}
	return true;
}

/* The store reads (imap_session_read(): maybe on a reader thread; only c is touched). */
static void cmd_cat_read(void *ctx)
{
	struct cmd_cat *c = ctx;
	/* A missing target is [TRYCREATE] whatever the URLs say (as Dovecot answers) */
	if (c->target != NULL && store_mailbox_exists(c->store, c->account_id, c->target) == 0) {
		c->refusal = "[TRYCREATE] The mailbox does not exist";
		return;
	}
	for (size_t i = 0; i < c->cat_count; i++)
		if (!cmd_cat_build(c, &c->cats[i]))
			return;
}

static void cmd_append_start(struct imap_cmd *cmd, const char *raw,
                             struct store_append_message *msgs, uint32_t replace_uid);

/* The messages are built: put every file in message order into the spool and append. */
static void cmd_cat_done(struct imap_session *s, void *ctx)
{
	struct cmd_cat *c = ctx;
	if (s->closed || c->refusal != NULL || c->bad_url != NULL) {
		if (!s->closed && c->bad_url != NULL) {
			/* RFC 4469 §6: url-resp-text may not hold "]" */
			char *u = arena_strdup(s->cmd, c->bad_url);
			for (char *p = u; *p != '\0'; p++)
				if (*p == ']' || *p == '\r' || *p == '\n')
					*p = '?';
			imap_tagged(s, c->tag, "NO", "[BADURL %s] No such message or section", u);
		} else if (!s->closed) {
			imap_tagged(s, c->tag, "NO", "%s", c->refusal);
		}
		cmd_cat_free(c);
		return;
	}
	struct cmd_append_spool *sp = c->spool;
	struct cmd_append_file *files = xcalloc(c->msg_count + 1, sizeof(*files));
	size_t lit = 0, cat = 0;
	for (size_t k = 0; k < c->msg_count; k++) {
		if (cat < c->cat_count && c->cats[cat].pos == k) {
			files[k] = c->cats[cat].file;
			sp->total += files[k].size;
			c->cats[cat++].file.path = NULL; /* the spool owns it now */
		} else {
			files[k] = sp->files[lit++];
		}
	}
	free(sp->files);
	sp->files = files;
	sp->count = sp->cap = c->msg_count;
	for (size_t k = 0; k < c->msg_count; k++) {
		struct header_summary hs;
		header_scanner_result(files[k].headers, &hs);
		c->msgs[k].spool_path = files[k].path;
		c->msgs[k].hdr_from = hs.from;
		c->msgs[k].hdr_subject = hs.subject;
		c->msgs[k].hdr_message_id = hs.message_id;
	}
	cmd_append_spool_free(s); /* nothing of another command is left there */
	s->append = sp;
	c->spool = NULL;
	struct store_append_message *msgs = c->msgs;
	c->msgs = NULL;
	struct imap_cmd cmd = {.s = s, .tag = c->tag, .name = "APPEND"};
	cmd_append_start(&cmd, c->raw, msgs, 0);
	cmd_append_spool_free(s); /* refused: its files go now (handed: already NULL) */
	cmd_cat_free(c);
}

/* APPEND with at least one CATENATE message (RFC 4469; MULTIAPPEND may mix both kinds). */
static void cmd_catenate(struct imap_cmd *cmd, const char *raw)
{
	struct imap_session *s = cmd->s;
	if (s->append == NULL) {
		s->append = xcalloc(1, sizeof(*s->append));
		s->append->arena = arena_new(4096);
	}
	struct cmd_append_spool *sp = s->append;
	size_t max = imap_parser_arg_count(cmd->args);
	struct cmd_cat *c = xcalloc(1, sizeof(*c));
	c->msgs = xcalloc(max + 1, sizeof(*c->msgs));
	c->cats = xcalloc(max + 1, sizeof(*c->cats));
	const char *error = NULL, *bad_url = NULL;
	size_t i = 1, lits = 0;
	while (error == NULL && bad_url == NULL && cmd->args[i].type != IMAP_ARG_EOL) {
		const struct imap_arg *list = NULL;
		if (c->msg_count == CMD_APPEND_MESSAGES_MAX) {
			error = "Too many messages in one APPEND";
			break;
		}
		if (cmd_append_message(s, cmd->args, &i, &c->msgs[c->msg_count], &list, &error) < 0)
			break;
		if (list == NULL) {
			lits++;
		} else {
			struct cmd_cat_msg *m = &c->cats[c->cat_count++];
			m->pos = c->msg_count;
			m->file.fd = -1;
			(void)cmd_cat_parse(sp, list, m, &error, &bad_url);
		}
		c->msg_count++;
	}
	if (error == NULL && bad_url == NULL && lits != sp->count)
		error = "Syntax: APPEND mailbox [(flags)] [date-time] literal ...";
	for (size_t k = 0; error == NULL && k < sp->count; k++)
		if (sp->files[k].nul)
			error = "NUL octet in a literal (use literal8)";
	const char *refusal = sp->refusal != NULL ? sp->refusal
	                      : sp->error != NULL ? "[UNAVAILABLE] Cannot store the message now"
	                                          : NULL;
	if (error != NULL || bad_url != NULL || refusal != NULL) {
		if (error != NULL)
			imap_tagged(s, cmd->tag, "BAD", "%s", error);
		else if (bad_url != NULL)
			imap_tagged(s, cmd->tag, "NO", "[BADURL %s] Not an IMAP URL of a message",
			            bad_url);
		else
			imap_tagged(s, cmd->tag, "NO", "%s", refusal);
		c->spool = NULL; /* still the session's: freed after the command */
		cmd_cat_free(c);
		return;
	}
	c->store = s->server->store;
	c->account_id = s->account_id;
	c->user = xstrdup(s->user);
	c->tag = xstrdup(cmd->tag);
	c->raw = xstrdup(raw);
	const char *target = imap_commands_mailbox_name(s, raw);
	c->target =
	    target != NULL && store_mailbox_name_valid(target) == 1 ? xstrdup(target) : NULL;
	c->max = s->limits->message_size;
	c->header_lines = s->limits->header_lines;
	c->spool = sp;
	s->append = NULL; /* the command's until its messages are built */
	(void)imap_session_read(s, cmd_cat_read, cmd_cat_done, c);
}

/* Check what cmd_append_messages() left and hand the messages to the store (replace_uid:
 * REPLACE of that UID of the selected mailbox, else 0). */
static void cmd_append_start(struct imap_cmd *cmd, const char *raw,
                             struct store_append_message *msgs, uint32_t replace_uid)
{
	struct imap_session *s = cmd->s;
	const char *name = imap_commands_mailbox_name(s, raw);
	const char *refusal = NULL;
	if (name == NULL || store_mailbox_name_valid(name) != 1)
		refusal = "[CANNOT] Invalid mailbox name";
	else if (s->append->refusal != NULL)
		refusal = s->append->refusal;
	else if (s->append->error != NULL)
		refusal = "[UNAVAILABLE] Cannot store the message now";
	for (size_t k = 0; refusal == NULL && k < s->append->count; k++)
		if (s->append->files[k].size == 0)
			refusal = "[CANNOT] Empty message";
	if (refusal != NULL) {
		free(msgs);
		imap_tagged(s, cmd->tag, "NO", "%s", refusal);
		return;
	}
	/* RFC 4314 §4: the target needs i (a REPLACE also t and e on the selected mailbox,
	 * and both in one account); a shared one the session may not see is a missing one. */
	struct imap_acl_mbox mb;
	int r = imap_acl_resolve(s, name, &mb);
	unsigned need = STORE_ACL_DELMSG | STORE_ACL_EXPUNGE;
	if (r <= 0)
		refusal = r == 0 ? "[TRYCREATE] The mailbox does not exist"
		                 : "[UNAVAILABLE] Cannot store the message now";
	else if ((mb.rights & STORE_ACL_INSERT) == 0)
		refusal = "[NOPERM] Permission denied (right i needed)";
	else if (replace_uid != 0 && (s->rights & need) != need)
		refusal = "[NOPERM] Permission denied (rights te needed)";
	else if (replace_uid != 0 && mb.owner != s->mailbox_owner)
		refusal = "[CANNOT] REPLACE across accounts is not supported";
	if (refusal != NULL) {
		free(msgs);
		imap_tagged(s, cmd->tag, "NO", "%s", refusal);
		return;
	}
	struct cmd_append_op *o = xcalloc(1, sizeof(*o));
	o->spool = s->append;
	s->append = NULL; /* the operation owns the files now */
	o->msgs = msgs;
	o->mailbox = xstrdup(mb.name);
	o->replace_mailbox = replace_uid != 0 ? xstrdup(s->mailbox) : NULL;
	o->op = (struct store_append){
	    .account_id = mb.owner,
	    .mailbox = o->mailbox,
	    .messages = msgs,
	    .count = o->spool->count,
	    .replace_mailbox = o->replace_mailbox,
	    .replace_uid = replace_uid,
	};
	imap_session_op_start(s, cmd->tag, cmd_append_done, o);
	store_append(s->server->store, &o->op, cmd_append_cb, s);
}

void cmd_append(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const char *raw;
	if (cmd->args[0].type != IMAP_ARG_EOL && imap_commands_astring(&cmd->args[0], &raw))
		for (const struct imap_arg *a = &cmd->args[1]; a->type != IMAP_ARG_EOL; a++)
			if (a->type == IMAP_ARG_ATOM && strcasecmp(a->str, "CATENATE") == 0) {
				cmd_catenate(cmd, raw);
				return;
			}
	if (cmd->args[0].type == IMAP_ARG_EOL || !imap_commands_astring(&cmd->args[0], &raw) ||
	    s->append == NULL) {
		imap_tagged(s, cmd->tag, "BAD",
		            "Syntax: APPEND mailbox [(flags)] [date-time] literal");
		return;
	}
	struct store_append_message *msgs;
	if (cmd_append_messages(cmd, 1, &msgs) < 0)
		return;
	cmd_append_start(cmd, raw, msgs, 0);
}

/* The nz-number of arg (RFC 9051 §9), or 0. */
static uint32_t cmd_append_number(const struct imap_arg *arg)
{
	uint64_t v = 0;
	if (arg->type != IMAP_ARG_ATOM || arg->str[0] == '\0' || arg->str[0] == '0')
		return 0;
	for (const char *c = arg->str; *c != '\0'; c++) {
		if (*c < '0' || *c > '9' || (v = v * 10 + (uint64_t)(*c - '0')) > UINT32_MAX)
			return 0;
	}
	return (uint32_t)v;
}

/* REPLACE and UID REPLACE (RFC 8508): an APPEND of one message to the mailbox named and
 * the expunge of one message of the selected mailbox, in one store transaction (all or
 * nothing). */
void cmd_replace(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const char *raw;
	uint32_t n = cmd->args[0].type == IMAP_ARG_EOL ? 0 : cmd_append_number(&cmd->args[0]);
	if (n == 0 || cmd->args[1].type == IMAP_ARG_EOL ||
	    !imap_commands_astring(&cmd->args[1], &raw) || s->append == NULL ||
	    s->append->count != 1) {
		imap_tagged(s, cmd->tag, "BAD",
		            "Syntax: %s number mailbox [(flags)] [date-time] literal", cmd->name);
		return;
	}
	if (!cmd->uid && n > s->count) {
		imap_tagged(s, cmd->tag, "BAD", "Invalid sequence number");
		return;
	}
	if (s->read_only) {
		imap_tagged(s, cmd->tag, "NO", "[READ-ONLY] The mailbox is read-only");
		return;
	}
	uint32_t uid = cmd->uid ? n : s->msgs[n - 1].uid;
	if (cmd->uid && cmd_store_view_find(s, uid) < 0) {
		imap_tagged(s, cmd->tag, "NO", "[EXPUNGEISSUED] No message with that UID");
		return;
	}
	struct store_append_message *msgs;
	if (cmd_append_messages(cmd, 2, &msgs) < 0)
		return;
	cmd_append_start(cmd, raw, msgs, uid);
}
