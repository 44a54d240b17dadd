/* BURL (RFC 4468) on the submission ports: "BURL imap://user@host/mailbox;UIDVALIDITY=v/
 * ;UID=n[/;SECTION=s];URLAUTH=submit+user:INTERNAL:token [LAST]" appends what the URL
 * names to the message, as a BDAT chunk would. The URL is resolved here, in the same
 * process, through the store: it must carry a URLAUTH token (RFC 4467) for the access
 * "submit+" the authenticated user, made by its owner with GENURLAUTH. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/imap_url.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "smtp/smtp_session.h"
#include "core/banned.h"

/* RFC 4468 §6 / RFC 3463: the URL could not be resolved */
#define SMTP_BURL_FAILED "554 5.6.6 IMAP URL resolution failed"

struct smtp_burl {
	struct store *store;
	struct arena *arena;
	const char *text; /* the URL as sent (arena) */
	struct imap_url u;
	bool last;
	int fd; /* what the read found: the message file, or -1 */
	uint64_t off, len;
	bool error; /* a store error (4xx), not a refusal */
};

void smtp_burl_free(struct smtp_session *s)
{
	struct smtp_burl *b = s->burl;
	if (b == NULL)
		return;
	if (b->fd >= 0)
		close(b->fd);
	arena_free(&b->arena);
	free(b);
	s->burl = NULL;
}

/* The store part (smtp_session_read(): maybe off the loop; only s->burl is touched). */
static void smtp_burl_read(void *ctx)
{
	struct smtp_session *s = ctx;
	struct smtp_burl *b = s->burl;
	const struct imap_url *u = &b->u;
	uint64_t owner;
	int r = store_account_lookup(b->store, u->owner, &owner, NULL, NULL);
	if (r == 1)
		r = store_urlauth_verify(b->store, owner, u->mailbox, b->text, u->rump_len,
		                         u->token);
	if (r == 1)
		r = store_message_section(b->store, owner, u->mailbox, u->uidvalidity, u->uid,
		                          u->section, u->partial, u->partial_off, u->partial_len,
		                          &b->fd, &b->off, &b->len);
	b->error = r < 0;
}

static void smtp_burl_next(struct smtp_session *s)
{
	struct smtp_burl *b = s->burl;
	if (s->closed || b->fd < 0) {
		if (!s->closed) {
			SMTP_LOG(s, "event=burl result=fail url=\"%s\"", b->text);
			smtp_session_reset_tx(s);
			smtp_reply(s, b->error ? "451 4.3.0 Local error: cannot read the message"
			                       : SMTP_BURL_FAILED);
		}
		smtp_burl_free(s);
		return;
	}
	unsigned char chunk[65536];
	uint64_t off = b->off, left = b->len;
	while (left > 0) {
		size_t want = left < sizeof(chunk) ? (size_t)left : sizeof(chunk);
		ssize_t r = pread(b->fd, chunk, want, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		smtp_session_body_append(s, chunk, (size_t)r);
		off += (uint64_t)r;
		left -= (uint64_t)r;
	}
	bool last = b->last;
	uint64_t len = b->len;
	smtp_burl_free(s);
	SMTP_LOG(s, "event=burl size=%llu last=%d", (unsigned long long)len, last);
	if (left > 0) {
		smtp_session_reset_tx(s);
		smtp_reply(s, "451 4.3.0 Local error: cannot read the message");
	} else if (last) {
		smtp_session_body_end(s);
	} else if (s->body_error != NULL) {
		smtp_reply(s, s->body_error);
	} else {
		smtp_replyf(s, "250 2.5.0 %llu octets added", (unsigned long long)len);
	}
}

void smtp_burl_command(struct smtp_session *s, struct smtp_command *cmd)
{
	if (!smtp_session_is_submission(s) || !s->authenticated) {
		smtp_reply(s, "502 5.5.1 BURL is offered on the submission ports after AUTH");
		return;
	}
	if (!s->have_mail) {
		smtp_reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (s->rcpt_count == 0) {
		smtp_reply(s, "554 5.5.1 Error: no valid recipients");
		return;
	}
	if (!s->body_started) {
		const char *err = smtp_session_body_begin(s);
		if (err != NULL) {
			smtp_reply(s, err);
			return;
		}
	}
	s->bdat = true; /* RFC 4468 §3.4: mixes with BDAT, not with DATA */
	struct smtp_burl *b = xcalloc(1, sizeof(*b));
	b->arena = arena_new(4096);
	b->store = s->server->store;
	b->fd = -1;
	b->last = cmd->last;
	b->text = arena_strdup(b->arena, cmd->url);
	s->burl = b;
	const char *error;
	const struct imap_url *u = &b->u;
	/* RFC 4468 §3.2/§4: an imap URL authorized for submission on behalf of this user */
	bool ok = imap_url_parse(b->arena, b->text, &b->u, &error) == 0 && u->host != NULL &&
	          u->user != NULL && u->token != NULL && strcasecmp(u->mech, "INTERNAL") == 0 &&
	          strncasecmp(u->access, "submit+", 7) == 0 &&
	          strcasecmp(u->access + 7, s->auth_user) == 0 &&
	          (!u->expire || u->expire_time > (int64_t)time(NULL));
	if (!ok) {
		smtp_burl_next(s); /* the refusal */
		return;
	}
	smtp_session_read(s, smtp_burl_read, smtp_burl_next);
}
