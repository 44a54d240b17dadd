/* STATUS (RFC 9051 §6.3.11, STATUS=SIZE RFC 8438, DELETED from RFC 9051, APPENDLIMIT from
 * RFC 7889 §4, HIGHESTMODSEQ from RFC 7162 §3.1.7), and what LIST's
 * RETURN (STATUS ...) (LIST-STATUS, RFC 5819) shares with it: the item list, the untagged
 * STATUS response from one synchronous store read, and a mailbox name as the session wants
 * it sent (modified UTF-7 for IMAP4rev1 clients, UTF-8 after ENABLE UTF8=ACCEPT/IMAP4rev2). */
#include "imap/imap_commands.h"
#include "imap/imap_acl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/utf7.h"
#include "core/xmalloc.h"
#include "core/banned.h"

/* Items in the order the response lists them; HIGHESTMODSEQ is RFC 7162 §3.1.7. */
enum {
	STATUS_MESSAGES = 1u << 0,
	STATUS_RECENT = 1u << 1,
	STATUS_UIDNEXT = 1u << 2,
	STATUS_UIDVALIDITY = 1u << 3,
	STATUS_UNSEEN = 1u << 4,
	STATUS_DELETED = 1u << 5,
	STATUS_SIZE = 1u << 6,
	STATUS_APPENDLIMIT = 1u << 7,
	STATUS_HIGHESTMODSEQ = 1u << 8,
	STATUS_DELETED_STORAGE = 1u << 9, /* RFC 9208 §4.2, in units of 1024 octets */
	STATUS_MAILBOXID = 1u << 10,      /* RFC 8474 §4.3 */
};

static const struct {
	const char *name;
	unsigned bit;
} status_names[] = {
    {"MESSAGES", STATUS_MESSAGES},
    {"RECENT", STATUS_RECENT},
    {"UIDNEXT", STATUS_UIDNEXT},
    {"UIDVALIDITY", STATUS_UIDVALIDITY},
    {"UNSEEN", STATUS_UNSEEN},
    {"DELETED", STATUS_DELETED},
    {"SIZE", STATUS_SIZE},
    {"APPENDLIMIT", STATUS_APPENDLIMIT},
    {"HIGHESTMODSEQ", STATUS_HIGHESTMODSEQ},
    {"DELETED-STORAGE", STATUS_DELETED_STORAGE},
    {"MAILBOXID", STATUS_MAILBOXID},
};
#define STATUS_NAME_COUNT (sizeof(status_names) / sizeof(status_names[0]))

/* The items of a parenthesized status-att list as bits; 0 when the list is not one (empty,
 * not a list, an unknown item: all BAD). */
unsigned cmd_status_items(const struct imap_arg *list)
{
	if (list == NULL || list->type != IMAP_ARG_LIST || list->list[0].type == IMAP_ARG_EOL)
		return 0;
	unsigned items = 0;
	for (const struct imap_arg *a = list->list; a->type != IMAP_ARG_EOL; a++) {
		unsigned bit = 0;
		for (size_t i = 0; a->type == IMAP_ARG_ATOM && i < STATUS_NAME_COUNT; i++)
			if (strcasecmp(a->str, status_names[i].name) == 0)
				bit = status_names[i].bit;
		if (bit == 0)
			return 0;
		items |= bit;
	}
	return items;
}

bool cmd_status_items_modseq(unsigned items)
{
	return (items & STATUS_HIGHESTMODSEQ) != 0;
}

/* Append name (UTF-8, as the store knows it) as an IMAP string: modified UTF-7 unless the
 * session takes UTF-8 (RFC 9051 / RFC 6855 allow UTF-8 inside quoted strings), quoted. */
void cmd_status_mailbox_name(struct imap_session *s, struct buf *out, const char *name)
{
	struct buf enc;
	buf_init(&enc, 8 * STORE_MAILBOX_NAME_MAX + 16);
	const char *text = name;
	if (!(s->utf8 || s->rev2)) {
		if (utf7_from_utf8(name, &enc) < 0) {
			buf_free(&enc);
			imap_quote(out, name); /* not UTF-8 (cannot happen for stored names) */
			return;
		}
		text = buf_cstr(&enc);
	}
	int r = buf_append(out, "\"", 1);
	for (const char *p = text; *p != '\0' && r == 0; p++) {
		if (*p == '"' || *p == '\\')
			r = buf_append(out, "\\", 1);
		if (r == 0)
			r = buf_append(out, p, 1);
	}
	if (r == 0)
		r = buf_append(out, "\"", 1);
	(void)r; /* out is sized for the longest name */
	buf_free(&enc);
}

/* One item's value, as response text. */
static int status_value(struct imap_session *s, unsigned bit, const struct store_mailbox_stats *st,
                        struct buf *b)
{
	switch (bit) {
	case STATUS_MESSAGES:
		return buf_printf(b, "%" PRIu32, st->messages);
	case STATUS_RECENT:
		return buf_printf(b, "%" PRIu32, st->recent);
	case STATUS_UIDNEXT:
		return buf_printf(b, "%" PRIu32, st->uidnext);
	case STATUS_UIDVALIDITY:
		return buf_printf(b, "%" PRIu32, st->uidvalidity);
	case STATUS_UNSEEN:
		return buf_printf(b, "%" PRIu32, st->unseen);
	case STATUS_DELETED:
		return buf_printf(b, "%" PRIu32, st->deleted);
	case STATUS_SIZE:
		return buf_printf(b, "%" PRIu64, st->size);
	case STATUS_HIGHESTMODSEQ:
		return buf_printf(b, "%" PRIu64, st->highestmodseq);
	case STATUS_MAILBOXID:
		return buf_printf(b, "(%s)", st->mailboxid);
	case STATUS_DELETED_STORAGE: /* what EXPUNGE would free, rounded up as GETQUOTA's usage */
		return buf_printf(b, "%" PRIu64,
		                  st->deleted_size / 1024 + (st->deleted_size % 1024 != 0));
	default: /* APPENDLIMIT: the one limit APPEND enforces, NIL when there is none */
		if (s->limits->message_size == 0)
			return buf_puts(b, "NIL");
		return buf_printf(b, "%" PRIu64, s->limits->message_size);
	}
}

/* Send "* STATUS name (items)" for the mailbox name (UTF-8) from st. 1 sent, -1 error. */
int cmd_status_send(struct imap_session *s, const char *name, unsigned items,
                    const struct store_mailbox_stats *st)
{
	struct buf b;
	buf_init(&b, 16 * STORE_MAILBOX_NAME_MAX + 512);
	cmd_status_mailbox_name(s, &b, name);
	int w = buf_puts(&b, " (");
	bool first = true;
	for (size_t i = 0; i < STATUS_NAME_COUNT && w == 0; i++) {
		if ((items & status_names[i].bit) == 0)
			continue;
		w = buf_printf(&b, "%s%s ", first ? "" : " ", status_names[i].name);
		if (w == 0)
			w = status_value(s, status_names[i].bit, st, &b);
		first = false;
	}
	if (w == 0)
		w = buf_puts(&b, ")");
	if (w == 0)
		imap_send(s, "* STATUS %s", buf_cstr(&b));
	buf_free(&b);
	return w == 0 ? 1 : -1;
}

int cmd_status_send_notify(struct imap_session *s, const char *name, bool modseq,
                           const struct store_mailbox_stats *st)
{
	unsigned items = STATUS_MESSAGES | STATUS_UIDNEXT | STATUS_UIDVALIDITY | STATUS_UNSEEN;
	return cmd_status_send(s, name, items | (modseq ? STATUS_HIGHESTMODSEQ : 0), st);
}

/* STATUS between its read and its answer. */
struct status_req {
	struct imap_session *s;
	char *tag, *name;
	char *store_name; /* the name in owner's account */
	uint64_t owner;
	unsigned items;
	int r; /* store_mailbox_stats(): 1, 0 no such mailbox, -1 error */
	struct store_mailbox_stats st;
};

static void status_read(void *ctx)
{
	struct status_req *q = ctx;
	q->r = store_mailbox_stats(q->s->server->store, q->owner, q->store_name, &q->st);
}

static void status_done(struct imap_session *s, void *ctx)
{
	struct status_req *q = ctx;
	int r = q->r;
	if (s->closed)
		r = 2; /* nobody to answer */
	else if (r == 1)
		r = cmd_status_send(s, q->name, q->items, &q->st);
	if (r == 0)
		imap_tagged(s, q->tag, "NO", "[NONEXISTENT] Mailbox does not exist");
	else if (r < 0)
		imap_tagged(s, q->tag, "NO", "[UNAVAILABLE] Cannot read the mailbox status");
	else if (r == 1)
		imap_tagged(s, q->tag, "OK", "STATUS completed");
	free(q->tag);
	free(q->name);
	free(q->store_name);
	free(q);
}

void cmd_status(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	const char *raw;
	unsigned items;
	if (imap_parser_arg_count(cmd->args) != 2 || !imap_commands_astring(&cmd->args[0], &raw) ||
	    (items = cmd_status_items(&cmd->args[1])) == 0) {
		imap_tagged(s, cmd->tag, "BAD",
		            "Syntax: STATUS mailbox (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED "
		            "SIZE HIGHESTMODSEQ MAILBOXID)");
		return;
	}
	if (cmd_status_items_modseq(items))
		(void)imap_session_condstore_enable(s); /* RFC 7162 §3.1 */
	const char *name = imap_commands_mailbox_name(s, raw);
	if (name == NULL || store_mailbox_name_valid(name) != 1) {
		imap_tagged(s, cmd->tag, "NO", "[NONEXISTENT] No such mailbox (invalid name)");
		return;
	}
	/* RFC 4314 §4: STATUS needs r; a shared mailbox the session may not look up is a
	 * missing one. */
	struct imap_acl_mbox mb;
	int r = imap_acl_resolve(s, name, &mb);
	if (r <= 0) {
		if (r == 0)
			imap_tagged(s, cmd->tag, "NO", "[NONEXISTENT] Mailbox does not exist");
		else
			imap_tagged(s, cmd->tag, "NO",
			            "[UNAVAILABLE] Cannot read the mailbox status");
		return;
	}
	if ((mb.rights & STORE_ACL_READ) == 0) {
		imap_acl_deny(s, cmd->tag, STORE_ACL_READ);
		return;
	}
	struct status_req *q = xcalloc(1, sizeof(*q));
	q->s = s;
	q->tag = xstrdup(cmd->tag);
	q->name = xstrdup(name);
	q->store_name = xstrdup(mb.name);
	q->owner = mb.owner;
	q->items = items;
	(void)imap_session_read(s, status_read, status_done, q);
}
