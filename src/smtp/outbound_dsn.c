/* Reports to senders (see outbound_private.h): which recipients want one, building it with
 * dsn.c, and handing it to the store as a message from MAILER-DAEMON with the null sender.
 * Shared by the engine (outbound_report.c) and `posthorn queue delete`
 * (outbound_bounce_entry()). */
#include "smtp/outbound_private.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "smtp/smtp_body.h"
#include "core/banned.h"

int outbound_map_message(const struct store_queue_entry *e, unsigned char **map_r, size_t *len_r,
                         size_t *skip_r)
{
	int fd = store_queue_entry_open(e);
	struct stat st;
	void *m = MAP_FAILED;
	if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0)
		m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (fd >= 0)
		close(fd);
	if (m == MAP_FAILED)
		return -1;
	*map_r = m;
	*len_r = (size_t)st.st_size;
	*skip_r = smtp_body_return_path_len(m, *len_r);
	return 0;
}

bool outbound_dsn_wanted(unsigned notify, unsigned bit)
{
	if (notify & STORE_NOTIFY_NEVER)
		return false;
	if (notify == 0)
		return bit != STORE_NOTIFY_SUCCESS;
	return (notify & bit) != 0;
}

const char *outbound_dsn_kind_name(enum dsn_action kind)
{
	return kind == DSN_ACTION_FAILED    ? "failure"
	       : kind == DSN_ACTION_DELAYED ? "delay"
	                                    : "success";
}

int outbound_dsn_build(const struct conf *conf, const struct store_queue_entry *e,
                       const struct dsn_recipient *list, size_t n, bool utf8,
                       const unsigned char *original, size_t original_len, int64_t now,
                       struct buf *out)
{
	char unique[64];
	snprintf(unique, sizeof(unique), "%llu.%lld.%d", (unsigned long long)e->id, (long long)now,
	         (int)list[0].action);
	struct dsn_report rep = {.reporting_mta = conf->hostname,
	                         .sender = e->mail_from,
	                         .envid = e->envid,
	                         .arrival = e->created,
	                         .now = now,
	                         .rcpts = list,
	                         .rcpt_count = n,
	                         /* RFC 8689 §5: a REQUIRETLS message's report carries its
	                          * header only (the report itself may travel without TLS). */
	                         .ret = e->ret == STORE_DSN_RET_HDRS || e->requiretls ? DSN_RET_HDRS
	                                : e->ret == STORE_DSN_RET_FULL                ? DSN_RET_FULL
	                                                               : DSN_RET_DEFAULT,
	                         .utf8 = utf8,
	                         .original = original,
	                         .original_len = original_len,
	                         .full_limit = 1024 * 1024,
	                         .unique = unique};
	return dsn_build(&rep, out);
}

void outbound_dsn_release(struct ob_dsn *dsn)
{
	free(dsn->path);
	free(dsn->to);
	free(dsn->subject);
	free(dsn->from);
	dsn->path = dsn->to = dsn->subject = dsn->from = NULL;
}

/* Where the report goes: the sender's account (1), the queue (0), nowhere (-1, logged). */
static int outbound_dsn_route(struct store *store, const char *sender, struct ob_dsn *dsn)
{
	const char *at = strrchr(sender, '@');
	if (at == NULL || store_domain_is_local(store, at + 1) != 1) {
		dsn->remote[0] = dsn->to;
		dsn->d.remote = dsn->remote;
		dsn->d.remote_count = 1;
		return 0;
	}
	struct store_rcpt rcpt;
	if (store_resolve(store, sender, &rcpt) != 1) {
		log_warn("event=dsn-dropped to=<%s> reason=no-such-local-sender", sender);
		return -1;
	}
	dsn->account = rcpt.account_ids[0];
	dsn->d.accounts = &dsn->account;
	dsn->d.account_count = 1;
	return 1;
}

int outbound_dsn_prepare(struct store *store, const char *hostname, const char *sender,
                         const struct buf *bytes, enum dsn_action kind, int64_t now,
                         struct ob_dsn *dsn)
{
	dsn->to = xstrdup(sender);
	if (outbound_dsn_route(store, sender, dsn) < 0)
		return 0;
	dsn->path = store_spool_path_dup(store);
	int fd =
	    dsn->path == NULL ? -1 : open(dsn->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	static const char rp[] = "Return-Path: <>\r\n";
	if (fd < 0 || write(fd, rp, sizeof(rp) - 1) != (ssize_t)(sizeof(rp) - 1) ||
	    write(fd, bytes->data, bytes->len) != (ssize_t)bytes->len) {
		log_error("event=dsn-failed to=<%s> error=\"cannot write the spool file\"", sender);
		if (fd >= 0) {
			close(fd);
			unlink(dsn->path);
		}
		return -1;
	}
	close(fd);
	size_t n = strlen(hostname) + 16;
	dsn->from = xmalloc(n);
	snprintf(dsn->from, n, "MAILER-DAEMON@%s", hostname);
	dsn->subject = xstrdup(dsn_subject(kind));
	dsn->d.spool_path = dsn->path;
	dsn->d.mail_from = "";
	dsn->d.received_at = now;
	dsn->d.hdr_from = dsn->from;
	dsn->d.hdr_subject = dsn->subject;
	return 1;
}

int outbound_bounce_entry(struct store *store, const struct conf *conf,
                          const struct store_queue_entry *e, const char *reason,
                          const char **error_r)
{
	if (e->mail_from[0] == '\0')
		return 0; /* never a bounce of a bounce */
	int64_t now = (int64_t)time(NULL);
	struct dsn_recipient *list = xcalloc(e->rcpt_count > 0 ? e->rcpt_count : 1, sizeof(*list));
	char diag[600];
	snprintf(diag, sizeof(diag), "550 5.0.0 %s", reason);
	size_t n = 0;
	for (size_t i = 0; i < e->rcpt_count; i++) {
		const struct store_queue_rcpt *r = &e->rcpts[i];
		if (r->status != STORE_QUEUE_PENDING ||
		    !outbound_dsn_wanted(r->notify, STORE_NOTIFY_FAILURE))
			continue;
		list[n++] = (struct dsn_recipient){.address = r->address,
		                                   .orcpt = r->orcpt,
		                                   .action = DSN_ACTION_FAILED,
		                                   .status = "5.0.0",
		                                   .diagnostic = diag,
		                                   .last_attempt = r->last_attempt};
	}
	int ret = 0;
	if (n > 0) {
		/* The original, when its file is still there. */
		unsigned char *map = NULL;
		size_t len = 0, skip = 0;
		if (outbound_map_message(e, &map, &len, &skip) < 0)
			map = NULL;
		struct buf out;
		buf_init(&out, OB_DSN_MAX);
		struct ob_dsn dsn = {0};
		if (outbound_dsn_build(conf, e, list, n, e->smtputf8,
		                       map != NULL ? map + skip : NULL, len - skip, now,
		                       &out) < 0) {
			*error_r = "the report is too large";
			ret = -1;
		} else if (outbound_dsn_prepare(store, conf->hostname, e->mail_from, &out,
		                                DSN_ACTION_FAILED, now, &dsn) != 1) {
			*error_r = "the report could not be stored (see the log)";
			ret = -1;
		} else if (store_deliver_wait(store, &dsn.d) < 0) {
			*error_r = dsn.d.error;
			ret = -1;
		} else {
			ret = 1;
		}
		outbound_dsn_release(&dsn);
		buf_free(&out);
		if (map != NULL)
			munmap(map, len);
	}
	free(list);
	return ret;
}
