/* Mail the server writes itself (TLS-RPT and DMARC aggregate reports): stored for a local
 * recipient's account, or queued for a remote one, like any other message (see
 * outbound_own_mail() in outbound_private.h). */
#include "smtp/outbound_private.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

struct own_delivery {
	struct store_delivery d;
	struct outbound *ob;
	const char *event;
	char *path, *to, *from, *subject;
	const char *remote[1];
	uint64_t account;
};

static void own_delivery_free(struct own_delivery *t)
{
	free(t->path);
	free(t->to);
	free(t->from);
	free(t->subject);
	free(t);
}

/* The writer thread, after the commit. */
static void own_delivered(struct store_delivery *d, void *ctx)
{
	struct own_delivery *t = ctx;
	struct outbound *ob = t->ob;
	if (d->result < 0)
		log_error("event=%s-failed to=<%s> error=\"%s\"", t->event, t->to, d->error);
	own_delivery_free(t);
	if (ob != NULL) {
		pthread_mutex_lock(&ob->lock);
		ob->in_flight--;
		pthread_cond_broadcast(&ob->idle);
		pthread_mutex_unlock(&ob->lock);
	}
}

int outbound_own_mail(struct store *store, struct outbound *ob, const char *event, const char *from,
                      const char *rcpt, const char *subject, const struct buf *mail, int64_t now)
{
	struct own_delivery *t = xcalloc(1, sizeof(*t));
	t->ob = ob;
	t->event = event;
	t->to = xstrdup(rcpt);
	t->from = xstrdup(from);
	t->subject = xstrdup(subject);
	const char *at = strrchr(rcpt, '@');
	struct store_rcpt local;
	if (at != NULL && store_domain_is_local(store, at + 1) == 1) {
		if (store_resolve(store, rcpt, &local) != 1) {
			log_warn("event=%s-dropped to=<%s> reason=no-such-local-recipient", event,
			         rcpt);
			own_delivery_free(t);
			return -1;
		}
		t->account = local.account_ids[0];
		t->d.accounts = &t->account;
		t->d.account_count = 1;
	} else {
		t->remote[0] = t->to;
		t->d.remote = t->remote;
		t->d.remote_count = 1;
	}
	t->path = store_spool_path_dup(store);
	int fd =
	    t->path == NULL ? -1 : open(t->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	struct buf rp;
	buf_init(&rp, 1024);
	bool ok = fd >= 0 && buf_printf(&rp, "Return-Path: <%s>\r\n", from) == 0 &&
	          write(fd, rp.data, rp.len) == (ssize_t)rp.len &&
	          write(fd, mail->data, mail->len) == (ssize_t)mail->len;
	buf_free(&rp);
	if (fd >= 0)
		close(fd);
	if (!ok) {
		log_error("event=%s-failed to=<%s> error=\"cannot write the spool file\"", event,
		          rcpt);
		if (t->path != NULL)
			unlink(t->path);
		own_delivery_free(t);
		return -1;
	}
	t->d.spool_path = t->path;
	t->d.mail_from = t->from;
	t->d.received_at = now;
	t->d.hdr_from = t->from;
	t->d.hdr_subject = t->subject;
	if (ob != NULL) {
		pthread_mutex_lock(&ob->lock);
		ob->in_flight++;
		pthread_mutex_unlock(&ob->lock);
	}
	store_deliver(store, &t->d, own_delivered, t);
	return 0;
}
