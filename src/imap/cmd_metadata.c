/* METADATA (RFC 5464): GETMETADATA and SETMETADATA, for mailboxes and the server.
 *
 * Entries live in the store (store_metadata_get(), STORE_MAILBOX_METADATA): a mailbox's go
 * with it when it is deleted and follow it when it is renamed; server entries (mailbox "")
 * are per account, as Dovecot keeps them. /private/ and /shared/ entries are both kept;
 * with no other user able to see a mailbox, they differ only by name. Names are
 * case-insensitive (§3.2) and stored lower-case. Limits: a value of at most
 * limit_metadata_size octets (else NO [METADATA MAXSIZE n]), at most
 * limit_metadata_entries entries per account (else NO [METADATA TOOMANY]); so what one
 * GETMETADATA holds and writes is bounded, and it writes one entry per step under the
 * connection's output flow control. Unsolicited METADATA responses need NOTIFY (RFC 5465)
 * and are not sent.
 *
 * Shared folders (RFC 4314, "Shared/OWNER/F"): a session with l and any one of r, s, w, i,
 * p on the folder reads and sets its /shared/ entries (RFC 5464 §3.2's rule, as Dovecot
 * checks it); they are the owner's entries, counted in the owner's limit. /private/ entries
 * are the owner's own and stay so: a grantee reads them as NIL and cannot set them
 * (NO [CANNOT]): they are kept per mailbox, not per user of it. */
#include "imap/imap_commands.h"

#include "imap/imap_acl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "core/banned.h"

/* One entry of a GETMETADATA answer: a value, or NIL for a named entry that has none. */
struct md_item {
	char *name;
	unsigned char *value; /* NULL: NIL */
	size_t size;
};

/* A GETMETADATA from its read to its last output step. */
struct md_get {
	struct imap_session *s;
	char *tag;
	char *mailbox;     /* UTF-8; "" for the server; the owner's name for a shared folder */
	char *client_name; /* the mailbox as the client named it */
	uint64_t owner;    /* the account whose entries they are */
	bool shared;       /* another account's folder: its /private/ entries are not shown */
	char **names;      /* lower-case, valid */
	size_t name_count;
	int depth;        /* 0, 1, or -1 for infinity */
	uint64_t maxsize; /* UINT64_MAX: no MAXSIZE */
	/* the read's result */
	int ret; /* 1, 0 no such mailbox, -1 error */
	struct md_item *items;
	size_t count, cap;
	uint64_t longest; /* the largest value MAXSIZE left out, 0 none */
	size_t cur;       /* the name being read */
	bool found;       /* it had an entry itself */
	/* output */
	size_t next;  /* the next item to write */
	bool started; /* "* METADATA mailbox (" written */
};

static void md_get_free(void *ctx)
{
	struct md_get *g = ctx;
	for (size_t i = 0; i < g->count; i++) {
		free(g->items[i].name);
		free(g->items[i].value);
	}
	free(g->items);
	for (size_t i = 0; i < g->name_count; i++)
		free(g->names[i]);
	free(g->names);
	free(g->mailbox);
	free(g->client_name);
	free(g->tag);
	free(g);
}

static void md_get_add(struct md_get *g, const char *name, const void *value, size_t size)
{
	if (g->count == g->cap) {
		g->cap = g->cap == 0 ? 8 : g->cap * 2;
		g->items = xrealloc(g->items, g->cap * sizeof(*g->items));
	}
	struct md_item *it = &g->items[g->count++];
	it->name = xstrdup(name);
	it->size = size;
	it->value = NULL;
	if (value != NULL) {
		it->value = xmalloc(size + 1);
		memcpy(it->value, value, size);
	}
}

/* store_metadata_get()'s callback, on the reading thread. */
static void md_get_entry(void *ctx, const char *name, const void *value, size_t size)
{
	struct md_get *g = ctx;
	if (strcmp(name, g->names[g->cur]) == 0)
		g->found = true;
	if (size > g->maxsize) {
		if (size > g->longest)
			g->longest = size;
		return;
	}
	md_get_add(g, name, value, size);
}

/* Is name (lower-case) "/private" or below it? */
static bool md_private(const char *name)
{
	return strncmp(name, "/private", 8) == 0 && (name[8] == '\0' || name[8] == '/');
}

/* The read (imap_session_read): every requested name with what lies below it. A named
 * entry that does not exist is answered NIL, before its children, as Dovecot does. */
static void md_get_read(void *ctx)
{
	struct md_get *g = ctx;
	struct store *store = g->s->server->store;
	g->ret = 1;
	for (g->cur = 0; g->cur < g->name_count && g->ret == 1; g->cur++) {
		size_t start = g->count;
		g->found = false;
		if (!g->shared || !md_private(g->names[g->cur]))
			g->ret = store_metadata_get(store, g->owner, g->mailbox, g->names[g->cur],
			                            g->depth, md_get_entry, g);
		if (g->ret != 1 || g->found)
			continue;
		md_get_add(g, g->names[g->cur], NULL, 0);
		struct md_item nil = g->items[g->count - 1];
		memmove(&g->items[start + 1], &g->items[start],
		        (g->count - 1 - start) * sizeof(*g->items));
		g->items[start] = nil;
	}
}

/* One step: the items while the client takes output, then ")" and the tagged answer. A
 * value goes out as a literal (literal8 when it holds a NUL), or NIL. */
static enum imap_step md_get_step(struct imap_session *s, void *ctx)
{
	struct md_get *g = ctx;
	struct buf b;
	buf_init(&b, 2 * STORE_METADATA_NAME_MAX + 16 * STORE_MAILBOX_NAME_MAX + 64);
	while (g->next < g->count && !conn_output_full(s->conn)) {
		const struct md_item *it = &g->items[g->next++];
		buf_reset(&b);
		int r = 0;
		if (!g->started) {
			r |= buf_puts(&b, "* METADATA ");
			if (g->client_name[0] == '\0')
				r |= buf_puts(&b, "\"\"");
			else
				cmd_status_mailbox_name(s, &b, g->client_name);
			r |= buf_puts(&b, " (");
			g->started = true;
		} else {
			r |= buf_puts(&b, " ");
		}
		imap_quote(&b, it->name);
		if (it->value == NULL)
			r |= buf_puts(&b, " NIL");
		else
			r |= buf_printf(&b, " %s{%zu}\r\n",
			                memchr(it->value, '\0', it->size) != NULL ? "~" : "",
			                it->size);
		ASSERT(r == 0); /* b is sized for two names and the frame */
		conn_write(s->conn, b.data, b.len);
		if (it->value != NULL)
			conn_write(s->conn, it->value, it->size);
	}
	buf_free(&b);
	if (g->next < g->count)
		return IMAP_STEP_MORE;
	if (g->started)
		conn_write(s->conn, ")\r\n", 3);
	if (g->longest > 0)
		imap_tagged(s, g->tag, "OK",
		            "[METADATA LONGENTRIES %" PRIu64 "] GETMETADATA completed", g->longest);
	else
		imap_tagged(s, g->tag, "OK", "GETMETADATA completed");
	return IMAP_STEP_DONE;
}

static void md_get_done(struct imap_session *s, void *ctx)
{
	struct md_get *g = ctx;
	if (s->closed) {
		md_get_free(g);
		return;
	}
	if (g->ret == 0) {
		imap_tagged(s, g->tag, "NO", "[NONEXISTENT] No such mailbox");
		md_get_free(g);
	} else if (g->ret < 0) {
		imap_tagged(s, g->tag, "NO", "[UNAVAILABLE] Cannot read the metadata");
		md_get_free(g);
	} else {
		imap_session_run(s, md_get_step, md_get_free, g);
	}
}

/* An entry name argument (root_ok: "/private" and "/shared" too), lower-cased into the
 * arena; NULL when it is not one. */
static char *md_entry_name(struct imap_cmd *cmd, const struct imap_arg *arg, bool root_ok)
{
	const char *raw;
	if (!imap_commands_astring(arg, &raw) || arg->type == IMAP_ARG_NIL ||
	    !store_metadata_name_valid(raw, root_ok))
		return NULL;
	char *name = arena_strndup(cmd->s->cmd, raw, strlen(raw));
	for (char *c = name; *c != '\0'; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	return name;
}

/* GETMETADATA's options (RFC 5464 §4.2): MAXSIZE n, DEPTH 0 / 1 / infinity. */
static bool md_get_options(const struct imap_arg *a, struct md_get *g)
{
	for (; a->type != IMAP_ARG_EOL; a += 2) {
		if (a->type != IMAP_ARG_ATOM || a[1].type != IMAP_ARG_ATOM)
			return false;
		const char *v = a[1].str;
		if (strcasecmp(a->str, "MAXSIZE") == 0) {
			char *end;
			errno = 0;
			unsigned long long n = strtoull(v, &end, 10);
			if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 ||
			    n > UINT32_MAX)
				return false;
			g->maxsize = n;
		} else if (strcasecmp(a->str, "DEPTH") == 0) {
			if (strcmp(v, "0") == 0)
				g->depth = 0;
			else if (strcmp(v, "1") == 0)
				g->depth = 1;
			else if (strcasecmp(v, "infinity") == 0)
				g->depth = -1;
			else
				return false;
		} else {
			return false;
		}
	}
	return true;
}

/* The mailbox argument: "" (the server) or a valid name as UTF-8, resolved (a shared
 * folder needs l, else it does not exist, and one of r s w i p, RFC 5464 §3.2); NULL after
 * answering. */
static const char *md_mailbox(struct imap_cmd *cmd, const char *raw, struct imap_acl_mbox *mb)
{
	*mb = (struct imap_acl_mbox){.owner = cmd->s->account_id, .name = ""};
	if (raw[0] == '\0')
		return "";
	const char *name = imap_commands_mailbox_name(cmd->s, raw);
	if (name == NULL || store_mailbox_name_valid(name) != 1) {
		imap_tagged(cmd->s, cmd->tag, "NO", "[NONEXISTENT] No such mailbox (invalid name)");
		return NULL;
	}
	int r = imap_acl_resolve(cmd->s, name, mb);
	if (r <= 0) {
		imap_tagged(cmd->s, cmd->tag, "NO",
		            r == 0 ? "[NONEXISTENT] No such mailbox"
		                   : "[UNAVAILABLE] Cannot read the mailbox's rights");
		return NULL;
	}
	unsigned any =
	    STORE_ACL_READ | STORE_ACL_SEEN | STORE_ACL_WRITE | STORE_ACL_INSERT | STORE_ACL_POST;
	if ((mb->rights & any) == 0) {
		imap_acl_deny(cmd->s, cmd->tag, STORE_ACL_READ);
		return NULL;
	}
	return name;
}

void cmd_getmetadata(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const struct imap_arg *a = cmd->args;
	struct md_get *g = xcalloc(1, sizeof(*g));
	g->maxsize = UINT64_MAX;
	const char *raw;
	bool ok = true;
	if (a->type == IMAP_ARG_LIST)
		ok = md_get_options((a++)->list, g);
	ok = ok && imap_commands_astring(a, &raw) && a->type != IMAP_ARG_NIL;
	const struct imap_arg *names = NULL;
	if (ok && a[1].type == IMAP_ARG_LIST && a[2].type == IMAP_ARG_EOL)
		names = a[1].list;
	else if (ok && a[1].type != IMAP_ARG_EOL && a[1].type != IMAP_ARG_LIST &&
	         a[2].type == IMAP_ARG_EOL)
		names = &a[1];
	size_t n = 0;
	for (const struct imap_arg *e = names; ok && e != NULL && e->type != IMAP_ARG_EOL; e++)
		n++;
	if (!ok || n == 0) {
		md_get_free(g);
		imap_tagged(s, cmd->tag, "BAD",
		            "Syntax: GETMETADATA [(options)] mailbox (entry ...)");
		return;
	}
	g->names = xcalloc(n, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		char *name = md_entry_name(cmd, &names[i], true);
		if (name == NULL) {
			md_get_free(g);
			imap_tagged(s, cmd->tag, "BAD", "Invalid entry name (RFC 5464 §3.2)");
			return;
		}
		g->names[g->name_count++] = xstrdup(name);
	}
	struct imap_acl_mbox mb;
	const char *mailbox = md_mailbox(cmd, raw, &mb);
	if (mailbox == NULL) {
		md_get_free(g);
		return;
	}
	g->s = s;
	g->tag = xstrdup(cmd->tag);
	g->client_name = xstrdup(mailbox);
	g->mailbox = xstrdup(mailbox[0] != '\0' ? mb.name : "");
	g->owner = mb.owner;
	g->shared = mb.shared;
	(void)imap_session_read(s, md_get_read, md_get_done, g);
}

/* ---- SETMETADATA ---- */

struct md_set {
	struct store_mailbox_op op;
	struct store_metadata_entry *entries; /* names and values copied below */
	char *mailbox;
};

static void md_set_done(struct imap_session *s)
{
	struct md_set *m = s->op;
	s->op = NULL;
	if (!s->closed && m->op.result == 0) {
		IMAP_LOG(s, "event=setmetadata mailbox=\"%s\" entries=%zu result=ok", m->mailbox,
		         m->op.metadata_count);
		imap_tagged(s, s->op_tag, "OK", "SETMETADATA completed");
	} else if (!s->closed) {
		const char *e = m->op.error != NULL ? m->op.error : STORE_ERROR_FAILED;
		if (strcmp(e, STORE_ERROR_NO_MAILBOX) == 0)
			imap_tagged(s, s->op_tag, "NO", "[NONEXISTENT] No such mailbox");
		else if (strcmp(e, STORE_ERROR_METADATA_TOOMANY) == 0)
			imap_tagged(s, s->op_tag, "NO", "[METADATA TOOMANY] At most %u entries",
			            s->limits->metadata_entries);
		else
			imap_tagged(s, s->op_tag, "NO", "[UNAVAILABLE] SETMETADATA failed: %s", e);
	}
	for (size_t i = 0; i < m->op.metadata_count; i++) {
		free((char *)m->entries[i].name);
		free((void *)m->entries[i].value);
	}
	free(m->entries);
	free(m->mailbox);
	free(m);
}

static void md_set_store_cb(struct store_mailbox_op *op, void *ctx)
{
	(void)op;
	imap_session_op_finished(ctx); /* writer thread: bounce to the loop */
}

void cmd_setmetadata(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const struct imap_arg *a = cmd->args;
	const char *raw;
	size_t n = 0;
	bool ok = imap_commands_astring(&a[0], &raw) && a[0].type != IMAP_ARG_NIL &&
	          a[1].type == IMAP_ARG_LIST && a[2].type == IMAP_ARG_EOL;
	for (const struct imap_arg *e = ok ? a[1].list : NULL; e != NULL && ok; e += 2) {
		if (e->type == IMAP_ARG_EOL)
			break;
		/* entry, then a value: NIL or a string (quoted, literal, literal8) */
		ok = e[1].type == IMAP_ARG_NIL || e[1].type == IMAP_ARG_STRING ||
		     e[1].type == IMAP_ARG_LITERAL;
		n++;
	}
	if (!ok || n == 0) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: SETMETADATA mailbox (entry value ...)");
		return;
	}
	const struct imap_arg *list = a[1].list;
	char **names = arena_alloc(s->cmd, n * sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		names[i] = md_entry_name(cmd, &list[2 * i], false);
		if (names[i] == NULL) {
			imap_tagged(s, cmd->tag, "BAD", "Invalid entry name (RFC 5464 §3.2)");
			return;
		}
		const struct imap_arg *v = &list[2 * i + 1];
		if (v->type != IMAP_ARG_NIL && v->len > s->limits->metadata_size) {
			imap_tagged(s, cmd->tag, "NO", "[METADATA MAXSIZE %zu] Value too large",
			            s->limits->metadata_size);
			return;
		}
	}
	struct imap_acl_mbox mb;
	const char *mailbox = md_mailbox(cmd, raw, &mb);
	if (mailbox == NULL)
		return;
	for (size_t i = 0; mb.shared && i < n; i++) {
		if (md_private(names[i])) {
			imap_tagged(
			    s, cmd->tag, "NO",
			    "[CANNOT] Private entries of another user's mailbox are not kept");
			return;
		}
	}
	struct md_set *m = xcalloc(1, sizeof(*m));
	m->entries = xcalloc(n, sizeof(*m->entries));
	m->mailbox = xstrdup(mailbox[0] != '\0' ? mb.name : "");
	size_t count = 0;
	for (size_t i = 0; i < n; i++) {
		/* An entry named twice: the last value counts. */
		bool later = false;
		for (size_t j = i + 1; j < n && !later; j++)
			later = strcmp(names[i], names[j]) == 0;
		if (later)
			continue;
		const struct imap_arg *v = &list[2 * i + 1];
		struct store_metadata_entry *e = &m->entries[count++];
		e->name = xstrdup(names[i]);
		if (v->type != IMAP_ARG_NIL) {
			void *copy = xmalloc(v->len + 1);
			memcpy(copy, v->str, v->len);
			e->value = copy;
			e->size = v->len;
		}
	}
	m->op = (struct store_mailbox_op){
	    .action = STORE_MAILBOX_METADATA,
	    .account_id = mb.owner,
	    .name = m->mailbox,
	    .metadata = m->entries,
	    .metadata_count = count,
	    .metadata_max = s->limits->metadata_entries,
	};
	/* Pause first: the callback may run before store_mailbox_change() returns. */
	imap_session_op_start(s, cmd->tag, md_set_done, m);
	store_mailbox_change(s->server->store, &m->op, md_set_store_cb, s);
}
