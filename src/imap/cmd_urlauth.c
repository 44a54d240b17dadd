/* URLAUTH (RFC 4467): GENURLAUTH makes an IMAP URL that carries its own authorization (a
 * token over the URL's rump under the mailbox's access key, INTERNAL mechanism), URLFETCH
 * returns what such URLs name, RESETKEY makes the URLs of a mailbox (or of every mailbox)
 * stop working. The store work runs off the loop (imap_session_read()). BURL (RFC 4468) in
 * the SMTP submission server checks the same tokens through store_urlauth_verify(). */
#include "imap/imap_commands.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/imap_url.h"
#include "core/xmalloc.h"
#include "core/banned.h"

enum urlauth_kind { URLAUTH_GEN, URLAUTH_FETCH, URLAUTH_RESET };

struct urlauth_item {
	const char *text; /* the URL or rump as sent (arena) */
	struct imap_url u;
	bool ok;             /* parsed and acceptable so far */
	char *result;        /* GENURLAUTH: the authorized URL (malloc'd) */
	unsigned char *data; /* URLFETCH: the octets (malloc'd), NULL: NIL */
	size_t len;
};

struct urlauth_req {
	enum urlauth_kind kind;
	struct store *store;
	uint64_t account_id;
	char *user, *tag, *mailbox; /* mailbox: RESETKEY's, or NULL */
	uint64_t max;               /* largest URLFETCH answer */
	int64_t now;
	struct arena *arena;
	struct urlauth_item *items;
	size_t count;
	int result;  /* RESETKEY: 1, 0 no such mailbox, -1 */
	bool failed; /* GENURLAUTH: a rump was refused (the first item not ok) */
};

static void urlauth_free(struct urlauth_req *q)
{
	for (size_t i = 0; i < q->count; i++) {
		free(q->items[i].result);
		free(q->items[i].data);
	}
	free(q->items);
	free(q->user);
	free(q->tag);
	free(q->mailbox);
	arena_free(&q->arena);
	free(q);
}

/* Is the access identifier one of RFC 4467 §3's? */
static bool urlauth_access_valid(const char *access)
{
	return strcasecmp(access, "authuser") == 0 || strcasecmp(access, "anonymous") == 0 ||
	       (strncasecmp(access, "submit+", 7) == 0 && access[7] != '\0') ||
	       (strncasecmp(access, "user+", 5) == 0 && access[5] != '\0');
}

/* May this IMAP session fetch a URL with this access identifier (RFC 4467 §3)? submit+
 * URLs are the submission server's alone. */
static bool urlauth_access_ok(const char *access, const char *user)
{
	if (strcasecmp(access, "authuser") == 0 || strcasecmp(access, "anonymous") == 0)
		return true;
	return strncasecmp(access, "user+", 5) == 0 && strcasecmp(access + 5, user) == 0;
}

static void urlauth_gen_one(struct urlauth_req *q, struct urlauth_item *it)
{
	char token[STORE_URLAUTH_TOKEN_LEN + 1];
	if (store_urlauth_token(q->store, q->account_id, it->u.mailbox, it->text, it->u.rump_len,
	                        token) != 1) {
		it->ok = false;
		return;
	}
	size_t n = strlen(it->text) + STORE_URLAUTH_TOKEN_LEN + 16;
	it->result = xmalloc(n);
	snprintf(it->result, n, "%s:INTERNAL:%s", it->text, token);
}

static void urlauth_fetch_one(struct urlauth_req *q, struct urlauth_item *it)
{
	const struct imap_url *u = &it->u;
	uint64_t owner;
	if (store_account_lookup(q->store, u->owner, &owner, NULL, NULL) != 1 ||
	    store_urlauth_verify(q->store, owner, u->mailbox, it->text, u->rump_len, u->token) != 1)
		return;
	int fd;
	uint64_t off, len;
	if (store_message_section(q->store, owner, u->mailbox, u->uidvalidity, u->uid, u->section,
	                          u->partial, u->partial_off, u->partial_len, &fd, &off, &len) != 1)
		return;
	if (len <= q->max) {
		it->data = xmalloc(len + 1);
		size_t got = 0;
		while (got < len) {
			ssize_t r =
			    pread(fd, it->data + got, (size_t)(len - got), (off_t)(off + got));
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		if (got < len) {
			free(it->data);
			it->data = NULL;
		}
		it->len = (size_t)len;
		for (size_t i = 0; it->data != NULL && i < it->len; i++)
			if (it->data[i] == '\0')
				it->data[i] =
				    0x80; /* a plain literal holds no NUL, as FETCH does */
	}
	close(fd);
}

static void urlauth_read(void *ctx)
{
	struct urlauth_req *q = ctx;
	if (q->kind == URLAUTH_RESET) {
		q->result = store_urlauth_reset(q->store, q->account_id, q->mailbox);
		return;
	}
	for (size_t i = 0; i < q->count; i++) {
		struct urlauth_item *it = &q->items[i];
		if (!it->ok)
			continue;
		if (q->kind == URLAUTH_GEN)
			urlauth_gen_one(q, it);
		else
			urlauth_fetch_one(q, it);
	}
}

static void urlauth_done(struct imap_session *s, void *ctx)
{
	struct urlauth_req *q = ctx;
	if (s->closed) {
		urlauth_free(q);
		return;
	}
	if (q->kind == URLAUTH_RESET) {
		if (q->result == 1)
			imap_tagged(s, q->tag, "OK", "RESETKEY completed");
		else if (q->result == 0)
			imap_tagged(s, q->tag, "NO", "[NONEXISTENT] No such mailbox");
		else
			imap_tagged(s, q->tag, "NO", "[UNAVAILABLE] RESETKEY failed");
		urlauth_free(q);
		return;
	}
	struct buf b;
	buf_init(&b, (size_t)q->max * 2 + 1024 * 1024);
	int r = 0;
	if (q->kind == URLAUTH_GEN) {
		for (size_t i = 0; i < q->count; i++)
			if (!q->items[i].ok) {
				imap_tagged(s, q->tag, "NO",
				            "[BADURL %s] Cannot authorize this URL",
				            q->items[i].text);
				buf_free(&b);
				urlauth_free(q);
				return;
			}
		r |= buf_puts(&b, "* GENURLAUTH");
		for (size_t i = 0; i < q->count; i++) {
			r |= buf_puts(&b, " ");
			imap_quote(&b, q->items[i].result);
		}
		r |= buf_puts(&b, "\r\n");
	} else {
		for (size_t i = 0; i < q->count; i++) {
			const struct urlauth_item *it = &q->items[i];
			r |= buf_puts(&b, "* URLFETCH ");
			imap_quote(&b, it->text);
			if (it->data == NULL)
				r |= buf_puts(&b, " NIL\r\n");
			else {
				r |= buf_printf(&b, " {%zu}\r\n", it->len);
				r |= buf_append(&b, it->data, it->len);
				r |= buf_puts(&b, "\r\n");
			}
		}
	}
	if (r == 0)
		conn_write(s->conn, b.data, b.len);
	buf_free(&b);
	if (r != 0)
		imap_tagged(s, q->tag, "NO", "[LIMIT] The answer would be too large");
	else
		imap_tagged(s, q->tag, "OK", "%s completed",
		            q->kind == URLAUTH_GEN ? "GENURLAUTH" : "URLFETCH");
	urlauth_free(q);
}

static struct urlauth_req *urlauth_new(struct imap_cmd *cmd, enum urlauth_kind kind, size_t count)
{
	struct imap_session *s = cmd->s;
	struct urlauth_req *q = xcalloc(1, sizeof(*q));
	q->kind = kind;
	q->store = s->server->store;
	q->account_id = s->account_id;
	q->user = xstrdup(s->user);
	q->tag = xstrdup(cmd->tag);
	q->max = s->limits->message_size;
	q->now = (int64_t)time(NULL);
	q->arena = arena_new(4096);
	q->items = xcalloc(count + 1, sizeof(*q->items));
	q->count = count;
	return q;
}

/* GENURLAUTH url-rump mechanism [url-rump mechanism ...] (RFC 4467 §7.2) */
void cmd_genurlauth(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	size_t n = imap_parser_arg_count(cmd->args);
	if (n == 0 || n % 2 != 0) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: GENURLAUTH url-rump INTERNAL ...");
		return;
	}
	struct urlauth_req *q = urlauth_new(cmd, URLAUTH_GEN, n / 2);
	for (size_t i = 0; i < n; i += 2) {
		struct urlauth_item *it = &q->items[i / 2];
		const char *text, *mech, *error;
		if (!imap_commands_astring(&cmd->args[i], &text) ||
		    !imap_commands_astring(&cmd->args[i + 1], &mech)) {
			imap_tagged(s, cmd->tag, "BAD", "Syntax: GENURLAUTH url-rump INTERNAL ...");
			urlauth_free(q);
			return;
		}
		if (strcasecmp(mech, "INTERNAL") != 0) {
			imap_tagged(s, cmd->tag, "NO", "Unknown URLAUTH mechanism");
			urlauth_free(q);
			return;
		}
		it->text = arena_strdup(q->arena, text);
		/* RFC 4467 §7.2: an absolute URL of the user's own, ending in ;URLAUTH=access */
		it->ok = imap_url_parse(q->arena, it->text, &it->u, &error) == 0 &&
		         it->u.host != NULL && it->u.owner != NULL &&
		         strcasecmp(it->u.owner, s->user) == 0 && it->u.access != NULL &&
		         it->u.mech == NULL && it->u.rump_len == strlen(it->text) &&
		         urlauth_access_valid(it->u.access);
	}
	(void)imap_session_read(s, urlauth_read, urlauth_done, q);
}

/* URLFETCH url [url ...] (RFC 4467 §7.3): NIL for what cannot be fetched. */
void cmd_urlfetch(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	size_t n = imap_parser_arg_count(cmd->args);
	if (n == 0) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: URLFETCH url ...");
		return;
	}
	struct urlauth_req *q = urlauth_new(cmd, URLAUTH_FETCH, n);
	for (size_t i = 0; i < n; i++) {
		struct urlauth_item *it = &q->items[i];
		const char *text, *error;
		if (!imap_commands_astring(&cmd->args[i], &text)) {
			imap_tagged(s, cmd->tag, "BAD", "Syntax: URLFETCH url ...");
			urlauth_free(q);
			return;
		}
		it->text = arena_strdup(q->arena, text);
		const struct imap_url *u = &it->u;
		it->ok = imap_url_parse(q->arena, it->text, &it->u, &error) == 0 &&
		         u->host != NULL && u->user != NULL && u->token != NULL &&
		         strcasecmp(u->mech, "INTERNAL") == 0 &&
		         (!u->expire || u->expire_time > q->now) &&
		         urlauth_access_ok(u->access, s->user);
	}
	(void)imap_session_read(s, urlauth_read, urlauth_done, q);
}

/* RESETKEY [mailbox [mechanism ...]] (RFC 4467 §7.1) */
void cmd_resetkey(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const char *raw = NULL, *name = NULL;
	if (cmd->args[0].type != IMAP_ARG_EOL) {
		if (!imap_commands_astring(&cmd->args[0], &raw)) {
			imap_tagged(s, cmd->tag, "BAD", "Syntax: RESETKEY [mailbox [INTERNAL]]");
			return;
		}
		for (const struct imap_arg *a = &cmd->args[1]; a->type != IMAP_ARG_EOL; a++)
			if (a->type != IMAP_ARG_ATOM || strcasecmp(a->str, "INTERNAL") != 0) {
				imap_tagged(s, cmd->tag, "NO", "Unknown URLAUTH mechanism");
				return;
			}
		name = imap_commands_mailbox_name(s, raw);
		if (name == NULL) {
			imap_tagged(s, cmd->tag, "NO", "[NONEXISTENT] No such mailbox");
			return;
		}
	}
	struct urlauth_req *q = urlauth_new(cmd, URLAUTH_RESET, 0);
	q->mailbox = name != NULL ? xstrdup(name) : NULL;
	(void)imap_session_read(s, urlauth_read, urlauth_done, q);
}
