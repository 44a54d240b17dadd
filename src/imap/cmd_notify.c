/* NOTIFY (RFC 5465): which changes a session hears of without asking, and when.
 *
 * One account watch on the store's change bus (store_watch_account(), the mechanism IDLE
 * uses for the selected mailbox) hands every commit's records for the account to
 * notify_watch_cb() on the writer (or notifier) thread; it queues them, merged by mailbox,
 * under the state's lock and wakes the session. Between commands or in IDLE
 * (cmd_notify_deliver(), called by imap_session.c) the loop takes the queue, reads what it
 * needs in one store read (the stats of changed mailboxes, the mailbox list for
 * subscriptions) and sends "* STATUS" for message events in other mailboxes and "* LIST"
 * for MailboxName and SubscriptionChange events. The selected mailbox keeps its own watch;
 * with (SELECTED ...) its changes go out between commands too (imap_session_sync(),
 * expunges only for SELECTED, not SELECTED-DELAYED), followed by the MessageNew fetch
 * attributes for new messages. More than imap_notify_max_pending queued mailboxes end the
 * NOTIFY with "* OK [NOTIFICATIONOVERFLOW]" (RFC 5465 §5.8).
 *
 * Shared folders (RFC 4314, "Shared/OWNER/F") named by MAILBOXES, SUBTREE or SUBSCRIBED:
 * at NOTIFY SET the folders shared with the session (store_acl_shared()) that a group with
 * message events names, and on which the session has l and r, give one more account watch
 * per owner (notify_owner); its MAILBOX records are queued under the client's name for
 * them. At each delivery the rights are read again (off the loop, with the stats): a
 * folder whose l or r was withdrawn gets no STATUS. Message events only: the owner's
 * creates, renames and deletes are not told (MailboxName is about the session's own
 * namespace here), nor are folders shared after the NOTIFY SET (a new NOTIFY SET sees
 * them). */
#include "imap/imap_commands.h"

#include "imap/imap_acl.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "imap/imap_notify.h"
#include "core/banned.h"

/* What a queued mailbox record saw (several records of one name merge). */
#define NOTIFY_SAW_DELETE 2u /* HIGHESTMODSEQ 0: gone */
#define NOTIFY_SAW_CHANGE 4u /* anything else: its messages (may have) changed */

struct notify_pending {
	char *name, *old_name;
	enum store_change_kind kind;
	uint64_t hms; /* the last record's */
	unsigned saw; /* NOTIFY_SAW_* */
};

struct notify_group {
	enum imap_notify_filter filter;
	unsigned events;
	char **names; /* normalised UTF-8 */
	size_t name_count;
};

/* The last STATUS values told (or read) of a mailbox. */
struct notify_last {
	char *name;
	struct store_mailbox_stats st;
};

/* Another account whose shared folders a group names: its watch. */
struct notify_owner {
	struct cmd_notify *n;
	uint64_t id;
	char *prefix; /* "Shared/OWNER/" */
	struct store_watch *watch;
};

struct cmd_notify {
	struct conn *conn;
	struct store_watch *watch;
	struct notify_owner *owners; /* set while NOTIFY SET reads; then fixed */
	size_t owner_count;
	bool names_shared; /* a group names something under "Shared" */
	pthread_mutex_t lock;
	/* under lock */
	struct notify_pending *pending;
	size_t pending_count, pending_cap;
	bool overflow;
	/* loop thread */
	unsigned pending_max;
	bool selected, selected_delayed;
	unsigned selected_events;
	char **fetch_atts;
	size_t fetch_att_count;
	struct notify_group *groups;
	size_t group_count;
	bool want_subscribed; /* a SUBSCRIBED filter: subscribed[] is kept */
	char **subscribed;
	size_t subscribed_count;
	struct notify_last *last;
	size_t last_count;
	bool delivering;       /* a delivery's read is out */
	unsigned synced_count; /* s->change_count at the last sync of the selected mailbox */
};

/* ---- names ---- */

/* name with a first level spelled INBOX in any case as "INBOX" (store.h), malloc'd. */
static char *notify_norm_dup(const char *name)
{
	char *out = xstrdup(name);
	if (strncasecmp(out, "INBOX", 5) == 0 && (out[5] == '\0' || out[5] == '/'))
		memcpy(out, "INBOX", 5);
	return out;
}

static bool notify_listed(char *const *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], name) == 0)
			return true;
	return false;
}

static void notify_names_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static bool notify_group_matches(const struct cmd_notify *n, const struct notify_group *g,
                                 const char *name)
{
	switch (g->filter) {
	case IMAP_NOTIFY_INBOXES:
		return strcmp(name, "INBOX") == 0;
	case IMAP_NOTIFY_PERSONAL:
		return !imap_acl_is_shared(name);
	case IMAP_NOTIFY_SUBSCRIBED:
		return notify_listed(n->subscribed, n->subscribed_count, name);
	case IMAP_NOTIFY_MAILBOXES:
		return notify_listed(g->names, g->name_count, name);
	case IMAP_NOTIFY_SUBTREE:
		for (size_t i = 0; i < g->name_count; i++) {
			size_t len = strlen(g->names[i]);
			if (strncmp(name, g->names[i], len) == 0 &&
			    (name[len] == '\0' || name[len] == '/'))
				return true;
		}
		return false;
	}
	return false;
}

/* The events every group that names the mailbox asks for (they add up). */
static unsigned notify_events_of(const struct cmd_notify *n, const char *name)
{
	unsigned ev = 0;
	for (size_t i = 0; i < n->group_count; i++)
		if (notify_group_matches(n, &n->groups[i], name))
			ev |= n->groups[i].events;
	return ev;
}

/* The owner's name of a shared name ("Shared/OWNER/F" gives "F"), or NULL. */
static const char *notify_shared_rest(const char *name)
{
	if (!imap_acl_is_shared(name) || name[strlen(IMAP_ACL_SHARED)] == '\0')
		return NULL;
	const char *sl = strchr(name + strlen(IMAP_ACL_SHARED_PREFIX), '/');
	return sl != NULL && sl[1] != '\0' ? sl + 1 : NULL;
}

/* Is the mailbox the client calls name selected? owner: the account a shared name was
 * resolved to (0: not resolved yet, taken as not selected). */
static bool notify_is_selected(const struct imap_session *s, const char *name, uint64_t owner)
{
	if (s->state != IMAP_STATE_SELECTED || s->mailbox == NULL)
		return false;
	const char *rest = notify_shared_rest(name);
	if (imap_acl_is_shared(name))
		return rest != NULL && owner != 0 && s->mailbox_owner == owner &&
		       strcmp(s->mailbox, rest) == 0;
	return s->mailbox_owner == s->account_id && strcmp(s->mailbox, name) == 0;
}

/* ---- the queue (writer or notifier thread) ---- */

static void notify_pending_free(struct notify_pending *v, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(v[i].name);
		free(v[i].old_name);
	}
	free(v);
}

static unsigned notify_saw(uint64_t hms)
{
	return hms == 0 ? NOTIFY_SAW_DELETE : NOTIFY_SAW_CHANGE;
}

/* Under n->lock. */
static void notify_pending_add(struct cmd_notify *n, const struct store_change_info *c)
{
	if (c->kind == STORE_CHANGE_MAILBOX) {
		for (size_t i = 0; i < n->pending_count; i++) {
			struct notify_pending *p = &n->pending[i];
			if (p->kind == STORE_CHANGE_MAILBOX && strcmp(p->name, c->mailbox) == 0) {
				p->hms = c->highestmodseq;
				p->saw |= notify_saw(c->highestmodseq);
				return;
			}
		}
	}
	if (n->pending_count >= n->pending_max) {
		n->overflow = true;
		notify_pending_free(n->pending, n->pending_count);
		n->pending = NULL;
		n->pending_count = n->pending_cap = 0;
		return;
	}
	if (n->pending_count == n->pending_cap) {
		n->pending_cap = n->pending_cap == 0 ? 8 : 2 * n->pending_cap;
		n->pending = xrealloc(n->pending, n->pending_cap * sizeof(*n->pending));
	}
	n->pending[n->pending_count++] = (struct notify_pending){
	    .name = xstrdup(c->mailbox),
	    .old_name = c->old_name != NULL ? xstrdup(c->old_name) : NULL,
	    .kind = c->kind,
	    .hms = c->highestmodseq,
	    .saw = c->kind == STORE_CHANGE_MAILBOX ? notify_saw(c->highestmodseq) : 0,
	};
}

static void notify_watch_cb(void *ctx, const struct store_change_info *c)
{
	struct cmd_notify *n = ctx;
	pthread_mutex_lock(&n->lock);
	if (!n->overflow)
		notify_pending_add(n, c);
	pthread_mutex_unlock(&n->lock);
	conn_wake(n->conn); /* the loop delivers (imap_after_wake) */
}

/* An owner's watch: its mailboxes' message changes, under the client's names. */
static void notify_owner_cb(void *ctx, const struct store_change_info *c)
{
	struct notify_owner *o = ctx;
	if (c->kind != STORE_CHANGE_MAILBOX || c->highestmodseq == 0)
		return;
	size_t a = strlen(o->prefix), b = strlen(c->mailbox);
	char *name = xmalloc(a + b + 1);
	memcpy(name, o->prefix, a);
	memcpy(name + a, c->mailbox, b + 1);
	struct store_change_info info = *c;
	info.mailbox = name;
	notify_watch_cb(o->n, &info);
	free(name);
}

/* ---- state ---- */

static void notify_state_free(struct cmd_notify *n)
{
	if (n == NULL)
		return;
	store_unwatch(&n->watch); /* no callback runs after this */
	for (size_t i = 0; i < n->owner_count; i++) {
		store_unwatch(&n->owners[i].watch);
		free(n->owners[i].prefix);
	}
	free(n->owners);
	pthread_mutex_destroy(&n->lock);
	notify_pending_free(n->pending, n->pending_count);
	notify_names_free(n->fetch_atts, n->fetch_att_count);
	for (size_t i = 0; i < n->group_count; i++)
		notify_names_free(n->groups[i].names, n->groups[i].name_count);
	free(n->groups);
	notify_names_free(n->subscribed, n->subscribed_count);
	for (size_t i = 0; i < n->last_count; i++)
		free(n->last[i].name);
	free(n->last);
	free(n);
}

void cmd_notify_free(struct imap_session *s)
{
	struct cmd_notify *n = s->notify;
	s->notify = NULL;
	if (n != NULL && n->delivering)
		n->delivering = false; /* the read's continuation sees s->notify changed */
	notify_state_free(n);
}

static struct notify_last *notify_last_find(struct cmd_notify *n, const char *name)
{
	for (size_t i = 0; i < n->last_count; i++)
		if (strcmp(n->last[i].name, name) == 0)
			return &n->last[i];
	return NULL;
}

static void notify_last_set(struct cmd_notify *n, const char *name,
                            const struct store_mailbox_stats *st)
{
	struct notify_last *l = notify_last_find(n, name);
	if (l == NULL) {
		n->last = xrealloc(n->last, (n->last_count + 1) * sizeof(*n->last));
		l = &n->last[n->last_count++];
		l->name = xstrdup(name);
	}
	l->st = *st;
}

static void notify_last_drop(struct cmd_notify *n, const char *name)
{
	struct notify_last *l = notify_last_find(n, name);
	if (l == NULL)
		return;
	free(l->name);
	*l = n->last[--n->last_count];
}

static void notify_last_rename(struct cmd_notify *n, const char *from, const char *to)
{
	notify_last_drop(n, to);
	struct notify_last *l = notify_last_find(n, from);
	if (l != NULL) {
		free(l->name);
		l->name = xstrdup(to);
	}
}

/* ---- what is sent ---- */

/* RFC 5465 §5.2-5.4: a STATUS for the events asked, when they happened since the last
 * values told (always when none were). */
static bool notify_status_due(const struct notify_last *l, unsigned ev,
                              const struct store_mailbox_stats *st)
{
	if (l == NULL || l->st.uidvalidity != st->uidvalidity)
		return true;
	const struct store_mailbox_stats *o = &l->st;
	if ((ev & IMAP_NOTIFY_MESSAGE_NEW) && st->uidnext != o->uidnext)
		return true;
	if ((ev & IMAP_NOTIFY_MESSAGE_EXPUNGE) &&
	    (uint64_t)st->messages < (uint64_t)o->messages + (st->uidnext - o->uidnext))
		return true;
	return (ev & IMAP_NOTIFY_FLAG_CHANGE) &&
	       (st->highestmodseq != o->highestmodseq || st->unseen != o->unseen);
}

static void notify_send_list(struct imap_session *s, const char *attrs, const char *name,
                             const char *old_name)
{
	struct buf b;
	buf_init(&b, 32 * STORE_MAILBOX_NAME_MAX);
	int r = buf_printf(&b, "* LIST (%s) \"/\" ", attrs);
	cmd_status_mailbox_name(s, &b, name);
	if (old_name != NULL) { /* RFC 5465 §5.4, RFC 5258 §9 OLDNAME */
		r |= buf_puts(&b, " (\"OLDNAME\" (");
		cmd_status_mailbox_name(s, &b, old_name);
		r |= buf_puts(&b, "))");
	}
	if (r == 0)
		imap_send(s, "%s", buf_cstr(&b));
	buf_free(&b);
}

static bool notify_any_event(const struct cmd_notify *n, unsigned event)
{
	for (size_t i = 0; i < n->group_count; i++)
		if (n->groups[i].events & event)
			return true;
	return false;
}

static void notify_send_metadata(struct imap_session *s, const char *mailbox, const char *entry)
{
	struct buf b;
	buf_init(&b, 16 * STORE_MAILBOX_NAME_MAX + 2 * STORE_METADATA_NAME_MAX);
	int r = buf_puts(&b, "* METADATA ");
	cmd_status_mailbox_name(s, &b, mailbox);
	r |= buf_puts(&b, " ");
	imap_quote(&b, entry);
	if (r == 0)
		imap_send(s, "%s", buf_cstr(&b));
	buf_free(&b);
}

/* ---- one delivery: a read, then the responses ---- */

struct notify_listed {
	char *name;
	bool exists, has_children, subscribed;
};

struct notify_item {
	struct notify_pending p;
	uint64_t owner; /* a shared name's owner once resolved, else 0 */
	unsigned events;
	bool stats; /* read its stats */
	int stats_r;
	struct store_mailbox_stats st;
};

struct notify_batch {
	struct store *store;
	uint64_t account_id;
	char *user;           /* the session's address, lower-case: its rights on shared folders */
	struct cmd_notify *n; /* to check it is still the session's */
	struct notify_item *items;
	size_t count;
	bool list;
	int list_r;
	struct notify_listed *listed;
	size_t listed_count, listed_cap;
};

static void notify_listed_cb(void *ctx, const struct store_mailbox_info *info)
{
	struct notify_batch *b = ctx;
	if (b->listed_count == b->listed_cap) {
		b->listed_cap = b->listed_cap == 0 ? 32 : 2 * b->listed_cap;
		b->listed = xrealloc(b->listed, b->listed_cap * sizeof(*b->listed));
	}
	b->listed[b->listed_count++] = (struct notify_listed){xstrdup(info->name), info->exists,
	                                                      info->has_children, info->subscribed};
}

/* The stats of a shared name's folder when the session still has l and r on it (0 when
 * not, or no such owner or folder): its owner in it->owner. */
static int notify_shared_stats(struct notify_batch *b, struct notify_item *it)
{
	const char *name = it->p.name, *rest = notify_shared_rest(name);
	if (rest == NULL)
		return 0;
	size_t skip = strlen(IMAP_ACL_SHARED_PREFIX);
	char *owner = xstrndup(name + skip, (size_t)(rest - 1 - (name + skip)));
	uint64_t id;
	unsigned rights = 0;
	int r = store_account_lookup(b->store, owner, &id, NULL, NULL);
	free(owner);
	if (r == 1)
		r = store_acl_rights(b->store, id, rest, b->account_id, b->user, &rights);
	if (r != 1)
		return r;
	unsigned need = STORE_ACL_LOOKUP | STORE_ACL_READ;
	if ((rights & need) != need)
		return 0;
	it->owner = id;
	return store_mailbox_stats(b->store, id, rest, &it->st);
}

static void notify_batch_read(void *ctx)
{
	struct notify_batch *b = ctx;
	if (b->list)
		b->list_r = store_mailbox_list(b->store, b->account_id, notify_listed_cb, b);
	for (size_t i = 0; i < b->count; i++) {
		struct notify_item *it = &b->items[i];
		if (!it->stats)
			continue;
		it->stats_r =
		    imap_acl_is_shared(it->p.name)
		        ? notify_shared_stats(b, it)
		        : store_mailbox_stats(b->store, b->account_id, it->p.name, &it->st);
	}
}

static void notify_batch_free(struct notify_batch *b)
{
	for (size_t i = 0; i < b->count; i++) {
		free(b->items[i].p.name);
		free(b->items[i].p.old_name);
	}
	free(b->items);
	for (size_t i = 0; i < b->listed_count; i++)
		free(b->listed[i].name);
	free(b->listed);
	free(b->user);
	free(b);
}

static const struct notify_listed *notify_batch_listed(const struct notify_batch *b,
                                                       const char *name)
{
	for (size_t i = 0; i < b->listed_count; i++)
		if (strcmp(b->listed[i].name, name) == 0)
			return &b->listed[i];
	return NULL;
}

/* A record of kind in this batch for name (its old name for a rename with old)? */
static bool notify_batch_has(const struct notify_pending *v, size_t count,
                             enum store_change_kind kind, const char *name, bool old)
{
	for (size_t i = 0; i < count; i++) {
		const struct notify_pending *p = &v[i];
		if (p->kind == kind && strcmp(old ? p->old_name : p->name, name) == 0)
			return true;
	}
	return false;
}

static bool notify_batch_renamed(const struct notify_batch *b, const char *name, bool old)
{
	for (size_t i = 0; i < b->count; i++)
		if (notify_batch_has(&b->items[i].p, 1, STORE_CHANGE_RENAME, name, old))
			return true;
	return false;
}

static void notify_subscribed_load(struct cmd_notify *n, const struct notify_batch *b)
{
	notify_names_free(n->subscribed, n->subscribed_count);
	n->subscribed = NULL;
	n->subscribed_count = 0;
	for (size_t i = 0; i < b->listed_count; i++) {
		if (!b->listed[i].subscribed)
			continue;
		n->subscribed =
		    xrealloc(n->subscribed, (n->subscribed_count + 1) * sizeof(*n->subscribed));
		n->subscribed[n->subscribed_count++] = xstrdup(b->listed[i].name);
	}
}

static void notify_send_subscription(struct imap_session *s, const struct notify_batch *b,
                                     const char *name)
{
	const struct notify_listed *l = notify_batch_listed(b, name);
	const char *attrs = l == NULL                          ? "\\NonExistent"
	                    : l->subscribed && l->exists       ? "\\Subscribed"
	                    : l->subscribed && l->has_children ? "\\Noselect \\Subscribed"
	                    : l->subscribed                    ? "\\NonExistent \\Subscribed"
	                    : l->exists                        ? ""
	                                                       : "\\Noselect";
	notify_send_list(s, attrs, name, NULL);
}

static void notify_send_item(struct imap_session *s, struct cmd_notify *n,
                             const struct notify_batch *b, struct notify_item *it)
{
	const struct notify_pending *p = &it->p;
	unsigned ev = it->events;
	if (p->kind == STORE_CHANGE_RENAME) {
		notify_last_rename(n, p->old_name, p->name);
		if (ev & IMAP_NOTIFY_MAILBOX_NAME)
			notify_send_list(s, "", p->name, p->old_name);
		return;
	}
	if (p->kind == STORE_CHANGE_CREATE) {
		if ((ev & IMAP_NOTIFY_MAILBOX_NAME) && !notify_batch_renamed(b, p->name, false))
			notify_send_list(s, "", p->name, NULL);
		return;
	}
	if (p->kind == STORE_CHANGE_SUBSCRIPTION) {
		if (ev & IMAP_NOTIFY_SUBSCRIPTION_CHANGE)
			notify_send_subscription(s, b, p->name);
		return;
	}
	if (p->kind == STORE_CHANGE_METADATA) {
		/* RFC 5464 §4.4.2: the unsolicited METADATA names the entry, without its
		 * value; server entries (mailbox "") for ServerMetadataChange in any group. */
		bool server = p->name[0] == '\0';
		if (server ? notify_any_event(n, IMAP_NOTIFY_SERVER_METADATA_CHANGE)
		           : (ev & IMAP_NOTIFY_MAILBOX_METADATA_CHANGE) != 0)
			notify_send_metadata(s, p->name, p->old_name);
		return;
	}
	if (p->hms == 0) {
		notify_last_drop(n, p->name);
		if ((ev & IMAP_NOTIFY_MAILBOX_NAME) && !notify_batch_renamed(b, p->name, true))
			notify_send_list(s, "\\NonExistent", p->name, NULL);
		return;
	}
	if (!it->stats || it->stats_r != 1 || notify_is_selected(s, p->name, it->owner))
		return;
	if (notify_status_due(notify_last_find(n, p->name), ev, &it->st))
		(void)cmd_status_send_notify(s, p->name, (ev & IMAP_NOTIFY_FLAG_CHANGE) != 0,
		                             &it->st);
	notify_last_set(n, p->name, &it->st);
}

static void notify_batch_done(struct imap_session *s, void *ctx)
{
	struct notify_batch *b = ctx;
	struct cmd_notify *n = s->notify;
	if (!s->closed && n == b->n) {
		n->delivering = false;
		if (b->list && b->list_r == 1 && n->want_subscribed)
			notify_subscribed_load(n, b);
		for (size_t i = 0; i < b->count; i++) {
			struct notify_item *it = &b->items[i];
			/* A subscription change is told when the name was or now is in a filter. */
			it->events |= notify_events_of(n, it->p.name);
			if (it->p.kind == STORE_CHANGE_RENAME)
				it->events |= notify_events_of(n, it->p.old_name);
			notify_send_item(s, n, b, it);
		}
	}
	notify_batch_free(b);
	if (!s->closed && s->notify != NULL && s->notify == n)
		cmd_notify_deliver(s); /* what came meanwhile */
}

/* Take the queue and start its delivery: false when there was nothing to deliver. */
static bool notify_batch_start(struct imap_session *s, struct cmd_notify *n)
{
	pthread_mutex_lock(&n->lock);
	struct notify_pending *v = n->pending;
	size_t count = n->pending_count;
	bool overflow = n->overflow;
	n->pending = NULL;
	n->pending_count = n->pending_cap = 0;
	pthread_mutex_unlock(&n->lock);
	if (overflow) {
		/* RFC 5465 §5.8: as if NOTIFY NONE had been given. */
		notify_pending_free(v, count);
		IMAP_LOG(s, "event=notify-overflow max=%u", n->pending_max);
		imap_send(s, "* OK [NOTIFICATIONOVERFLOW] Too many changes: NOTIFY is off");
		cmd_notify_free(s);
		return true;
	}
	if (count == 0)
		return false;
	struct notify_batch *b = xcalloc(1, sizeof(*b));
	*b = (struct notify_batch){.store = s->server->store,
	                           .account_id = s->account_id,
	                           .user = xstrdup(imap_acl_user(s)),
	                           .n = n};
	b->items = xcalloc(count, sizeof(*b->items));
	b->count = count;
	for (size_t i = 0; i < count; i++) {
		struct notify_item *it = &b->items[i];
		it->p = v[i];
		it->events = notify_events_of(n, v[i].name);
		if (v[i].kind == STORE_CHANGE_SUBSCRIPTION ||
		    (v[i].kind == STORE_CHANGE_RENAME && n->want_subscribed))
			b->list = true;
		/* A mailbox just created (and not changed since) has no message news. */
		bool fresh = v[i].hms == 1 &&
		             notify_batch_has(v, count, STORE_CHANGE_CREATE, v[i].name, false);
		it->stats = v[i].kind == STORE_CHANGE_MAILBOX && v[i].hms != 0 && !fresh &&
		            (v[i].saw & NOTIFY_SAW_CHANGE) &&
		            (it->events & IMAP_NOTIFY_MESSAGE_EVENTS) != 0 &&
		            !notify_is_selected(s, v[i].name, 0);
	}
	free(v); /* the names moved into the items */
	n->delivering = true;
	(void)imap_session_read(s, notify_batch_read, notify_batch_done, b);
	return true;
}

/* ---- the selected mailbox ---- */

static void notify_selected_done(struct imap_session *s, void *ctx)
{
	uint32_t last_uid = (uint32_t)(uintptr_t)ctx;
	struct cmd_notify *n = s->notify;
	if (s->closed || n == NULL)
		return;
	uint32_t first = s->count;
	while (first > 0 && s->msgs[first - 1].uid > last_uid)
		first--;
	if (n->fetch_att_count > 0 && first < s->count && s->state == IMAP_STATE_SELECTED) {
		cmd_fetch_untagged(s, (const char *const *)n->fetch_atts, n->fetch_att_count,
		                   first + 1, s->count);
		if (s->step != NULL)
			return; /* the rest when the step ends (imap_session.c pokes again) */
	}
	cmd_notify_deliver(s);
}

bool cmd_notify_owns_selected(const struct imap_session *s)
{
	const struct cmd_notify *n = s->notify;
	return n != NULL && n->selected && (n->selected_events & IMAP_NOTIFY_MESSAGE_NEW) != 0;
}

void cmd_notify_deliver(struct imap_session *s)
{
	struct cmd_notify *n = s->notify;
	if (n == NULL || n->delivering || s->closed)
		return;
	unsigned changes = atomic_load(&s->change_count);
	if (s->state == IMAP_STATE_SELECTED && cmd_notify_owns_selected(s) &&
	    atomic_load(&s->changed) && changes != n->synced_count) {
		uint32_t last_uid = s->count > 0 ? s->msgs[s->count - 1].uid : 0;
		/* RFC 5465 §6: SELECTED reports expunges at once, SELECTED-DELAYED only where
		 * RFC 9051 §7.5.1 lets them go (IDLE here; NOOP and the others as before). A
		 * delayed expunge leaves s->changed set: the count stops this from syncing
		 * again before the next change. */
		n->synced_count = changes;
		imap_session_sync(s, !n->selected_delayed || s->io == IMAP_IO_IDLE,
		                  notify_selected_done, (void *)(uintptr_t)last_uid);
		return;
	}
	(void)notify_batch_start(s, n);
}

/* ---- the command ---- */

/* The spec's names as normalised UTF-8 (malloc'd), or NULL when one is invalid. */
static char **notify_names_dup(struct imap_session *s, const char **names, size_t count)
{
	char **v = xcalloc(count + 1, sizeof(*v));
	for (size_t i = 0; i < count; i++) {
		const char *u = imap_commands_mailbox_name(s, names[i]);
		if (u == NULL || store_mailbox_name_valid(u) != 1) {
			notify_names_free(v, i);
			return NULL;
		}
		v[i] = notify_norm_dup(u);
		/* a shared name's owner level is an address: lower-case, as the store's */
		if (imap_acl_is_shared(v[i]))
			for (char *c = v[i] + strlen(IMAP_ACL_SHARED); *c != '\0'; c++) {
				if (*c == '/' && c != v[i] + strlen(IMAP_ACL_SHARED))
					break;
				if (*c >= 'A' && *c <= 'Z')
					*c = (char)(*c - 'A' + 'a');
			}
	}
	return v;
}

static struct cmd_notify *notify_state_new(struct imap_session *s,
                                           const struct imap_notify_spec *spec)
{
	struct cmd_notify *n = xcalloc(1, sizeof(*n));
	pthread_mutex_init(&n->lock, NULL);
	n->conn = s->conn;
	n->pending_max = s->conf->imap_notify_max_pending;
	n->selected = spec->selected && spec->selected_events != 0;
	n->selected_delayed = spec->selected_delayed;
	n->selected_events = spec->selected_events;
	n->fetch_atts = xcalloc(spec->fetch_att_count + 1, sizeof(*n->fetch_atts));
	for (size_t i = 0; i < spec->fetch_att_count; i++)
		n->fetch_atts[i] = xstrdup(spec->fetch_atts[i]);
	n->fetch_att_count = spec->fetch_att_count;
	n->groups = xcalloc(spec->group_count + 1, sizeof(*n->groups));
	for (size_t i = 0; i < spec->group_count; i++) {
		const struct imap_notify_group *g = &spec->groups[i];
		struct notify_group *d = &n->groups[n->group_count++];
		d->filter = g->filter;
		d->events = g->events;
		if (g->filter == IMAP_NOTIFY_SUBSCRIBED)
			n->want_subscribed = n->names_shared = true;
		if (g->name_count == 0)
			continue;
		d->names = notify_names_dup(s, g->names, g->name_count);
		if (d->names == NULL) {
			notify_state_free(n);
			return NULL;
		}
		d->name_count = g->name_count;
		for (size_t k = 0; k < d->name_count; k++)
			n->names_shared |= imap_acl_is_shared(d->names[k]);
	}
	return n;
}

/* NOTIFY SET between its read (the mailbox list, the stats for STATUS) and its answer. */
struct notify_set {
	char *tag;
	bool status;
	struct notify_batch *b;
	struct cmd_notify *n;
};

/* A folder shared with the session (store_acl_shared()), for NOTIFY SET. */
struct notify_shared {
	uint64_t owner_id;
	char *owner, *mailbox;
	unsigned rights;
};

struct notify_shared_list {
	struct notify_shared *v;
	size_t count;
};

static void notify_shared_cb(void *ctx, uint64_t owner_id, const char *owner, const char *mailbox,
                             unsigned rights)
{
	struct notify_shared_list *l = ctx;
	l->v = xrealloc(l->v, (l->count + 1) * sizeof(*l->v));
	l->v[l->count++] =
	    (struct notify_shared){owner_id, xstrdup(owner), xstrdup(mailbox), rights};
}

/* Off the loop, in NOTIFY SET's read: the shared folders a group with message events
 * names and the session may read; a watch on each of their owners (before their stats are
 * read: no change falls between), and with STATUS an item for each. */
static void notify_set_shared(struct notify_set *q)
{
	struct cmd_notify *n = q->n;
	struct notify_batch *b = q->b;
	struct notify_shared_list l = {0};
	if (store_acl_shared(b->store, b->account_id, b->user, notify_shared_cb, &l) < 0)
		b->list_r = -1;
	unsigned need = STORE_ACL_LOOKUP | STORE_ACL_READ;
	for (size_t i = 0; i < l.count && b->list_r == 1; i++) {
		struct notify_shared *x = &l.v[i];
		size_t pre = strlen(IMAP_ACL_SHARED_PREFIX) + strlen(x->owner) + 1;
		char *name = xmalloc(pre + strlen(x->mailbox) + 1);
		snprintf(name, pre + strlen(x->mailbox) + 1, "%s%s/%s", IMAP_ACL_SHARED_PREFIX,
		         x->owner, x->mailbox);
		unsigned ev = notify_events_of(n, name);
		if ((x->rights & need) != need || (ev & IMAP_NOTIFY_MESSAGE_EVENTS) == 0) {
			free(name);
			continue;
		}
		size_t k = 0;
		while (k < n->owner_count && n->owners[k].id != x->owner_id)
			k++;
		if (k == n->owner_count) {
			n->owners = xrealloc(n->owners, (k + 1) * sizeof(*n->owners));
			struct notify_owner *o = &n->owners[n->owner_count++];
			*o = (struct notify_owner){
			    .n = n, .id = x->owner_id, .prefix = xstrndup(name, pre)};
		}
		if (q->status) {
			b->items = xrealloc(b->items, (b->count + 1) * sizeof(*b->items));
			struct notify_item *it = &b->items[b->count++];
			*it = (struct notify_item){
			    .p.name = name, .owner = x->owner_id, .events = ev};
			name = NULL;
		}
		free(name);
	}
	/* the owners' array is complete: their watches may start (pointers stay put) */
	for (size_t k = 0; k < n->owner_count; k++)
		n->owners[k].watch =
		    store_watch_account(b->store, n->owners[k].id, notify_owner_cb, &n->owners[k]);
	for (size_t i = 0; i < b->count; i++) {
		struct notify_item *it = &b->items[i];
		if (it->owner != 0)
			it->stats_r = store_mailbox_stats(b->store, it->owner,
			                                  notify_shared_rest(it->p.name), &it->st);
	}
	for (size_t i = 0; i < l.count; i++) {
		free(l.v[i].owner);
		free(l.v[i].mailbox);
	}
	free(l.v);
}

static void notify_set_read(void *ctx)
{
	struct notify_set *q = ctx;
	struct notify_batch *b = q->b;
	b->list_r = store_mailbox_list(b->store, b->account_id, notify_listed_cb, b);
	if (b->list_r == 1 && q->n->names_shared) {
		notify_subscribed_load(q->n, b); /* SUBSCRIBED may name shared folders */
		notify_set_shared(q);
	}
	if (b->list_r != 1 || !q->status)
		return;
	/* The stats of every mailbox a group with message events names (the loop does not
	 * touch n meanwhile: input waits). */
	notify_subscribed_load(q->n, b);
	b->items = xrealloc(b->items, (b->count + b->listed_count + 1) * sizeof(*b->items));
	for (size_t i = 0; i < b->listed_count; i++) {
		const struct notify_listed *l = &b->listed[i];
		unsigned ev = notify_events_of(q->n, l->name);
		if (!l->exists || (ev & IMAP_NOTIFY_MESSAGE_EVENTS) == 0)
			continue;
		struct notify_item *it = &b->items[b->count++];
		*it = (struct notify_item){.p.name = xstrdup(l->name), .events = ev};
		it->stats_r = store_mailbox_stats(b->store, b->account_id, l->name, &it->st);
	}
}

static void notify_set_done(struct imap_session *s, void *ctx)
{
	struct notify_set *q = ctx;
	struct notify_batch *b = q->b;
	if (s->closed) {
		notify_state_free(q->n);
	} else if (b->list_r != 1) {
		notify_state_free(q->n);
		imap_tagged(s, q->tag, "NO", "[UNAVAILABLE] NOTIFY failed");
	} else {
		cmd_notify_free(s); /* the NOTIFY before, if any */
		s->notify = q->n;
		notify_subscribed_load(q->n, b);
		for (size_t i = 0; i < b->count; i++) {
			struct notify_item *it = &b->items[i];
			if (it->stats_r != 1 || notify_is_selected(s, it->p.name, it->owner))
				continue;
			/* RFC 5465 §3.1: MESSAGES and UIDNEXT for MessageNew, MESSAGES for
			 * MessageExpunge, UIDVALIDITY and HIGHESTMODSEQ for FlagChange. */
			(void)cmd_status_send_notify(
			    s, it->p.name, (it->events & IMAP_NOTIFY_FLAG_CHANGE) != 0, &it->st);
			notify_last_set(q->n, it->p.name, &it->st);
		}
		imap_tagged(s, q->tag, "OK", "NOTIFY completed");
	}
	notify_batch_free(b);
	free(q->tag);
	free(q);
}

void cmd_notify(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->s;
	struct imap_notify_spec spec;
	const char *error;
	if (imap_notify_parse(s->cmd, cmd->args, &spec, &error) < 0) {
		imap_tagged(s, cmd->tag, "BAD", "%s", error);
		return;
	}
	if (!spec.set) {
		cmd_notify_free(s);
		imap_tagged(s, cmd->tag, "OK", "NOTIFY completed");
		return;
	}
	if ((spec.used_events & ~IMAP_NOTIFY_SUPPORTED) != 0) {
		/* RFC 5465 §3.1: the events this server supports. */
		imap_tagged(s, cmd->tag, "NO", "[BADEVENT (%s)] Unsupported event",
		            IMAP_NOTIFY_SUPPORTED_TEXT);
		return;
	}
	if (spec.fetch_att_count > 0 &&
	    !cmd_fetch_atts_valid((const char *const *)spec.fetch_atts, spec.fetch_att_count)) {
		imap_tagged(s, cmd->tag, "BAD", "Unsupported or invalid FETCH item");
		return;
	}
	struct cmd_notify *n = notify_state_new(s, &spec);
	if (n == NULL) {
		imap_tagged(s, cmd->tag, "BAD", "Invalid mailbox name");
		return;
	}
	/* Watch first, then read: no change falls between (store.h). */
	n->watch = store_watch_account(s->server->store, s->account_id, notify_watch_cb, n);
	struct notify_set *q = xcalloc(1, sizeof(*q));
	q->tag = xstrdup(cmd->tag);
	q->status = spec.status;
	q->n = n;
	q->b = xcalloc(1, sizeof(*q->b));
	*q->b = (struct notify_batch){.store = s->server->store,
	                              .account_id = s->account_id,
	                              .user = xstrdup(imap_acl_user(s)),
	                              .n = n};
	(void)imap_session_read(s, notify_set_read, notify_set_done, q);
}
