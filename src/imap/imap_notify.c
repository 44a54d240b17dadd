/* NOTIFY's arguments (RFC 5465 §8 formal syntax):
 *   notify = "NOTIFY" SP (notify-set / notify-none)
 *   notify-set = "SET" [SP "STATUS"] SP event-groups
 *   event-group = "(" filter-mailboxes SP events ")"
 *   events = ("(" event *(SP event) ")") / "NONE"
 * Pure: argument tree in, struct imap_notify_spec out. */
#include "imap/imap_notify.h"

#include <string.h>
#include <strings.h>

#include "core/banned.h"

static const struct {
	const char *name;
	unsigned bit;
} imap_notify_events[] = {
    {"MessageNew", IMAP_NOTIFY_MESSAGE_NEW},
    {"MessageExpunge", IMAP_NOTIFY_MESSAGE_EXPUNGE},
    {"FlagChange", IMAP_NOTIFY_FLAG_CHANGE},
    {"AnnotationChange", IMAP_NOTIFY_ANNOTATION_CHANGE},
    {"MailboxName", IMAP_NOTIFY_MAILBOX_NAME},
    {"SubscriptionChange", IMAP_NOTIFY_SUBSCRIPTION_CHANGE},
    {"MailboxMetadataChange", IMAP_NOTIFY_MAILBOX_METADATA_CHANGE},
    {"ServerMetadataChange", IMAP_NOTIFY_SERVER_METADATA_CHANGE},
};

static bool imap_notify_is_atom(const struct imap_arg *a, const char *word)
{
	return a->type == IMAP_ARG_ATOM && strcasecmp(a->str, word) == 0;
}

static bool imap_notify_astring(const struct imap_arg *a)
{
	return a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_STRING ||
	       (a->type == IMAP_ARG_LITERAL && strlen(a->str) == a->len);
}

static size_t imap_notify_count(const struct imap_arg *list)
{
	size_t n = 0;
	while (list[n].type != IMAP_ARG_EOL)
		n++;
	return n;
}

/* The events of a group into *events_r; a fetch-att list after MessageNew into the spec
 * when selected. 0, or -1 with *error_r. */
static int imap_notify_events_parse(struct arena *arena, const struct imap_arg *a, bool selected,
                                    struct imap_notify_spec *spec, unsigned *events_r,
                                    const char **error_r)
{
	*events_r = 0;
	if (imap_notify_is_atom(a, "NONE"))
		return 0;
	if (a->type != IMAP_ARG_LIST || a->list[0].type == IMAP_ARG_EOL) {
		*error_r = "Expected a list of events or NONE";
		return -1;
	}
	for (const struct imap_arg *e = a->list; e->type != IMAP_ARG_EOL; e++) {
		if (e->type != IMAP_ARG_ATOM) {
			*error_r = "Invalid event";
			return -1;
		}
		unsigned bit = IMAP_NOTIFY_UNKNOWN;
		for (size_t i = 0; i < sizeof(imap_notify_events) / sizeof(imap_notify_events[0]);
		     i++)
			if (strcasecmp(e->str, imap_notify_events[i].name) == 0)
				bit = imap_notify_events[i].bit;
		*events_r |= bit;
		if (bit != IMAP_NOTIFY_MESSAGE_NEW || e[1].type != IMAP_ARG_LIST)
			continue;
		/* MessageNew (fetch-att ...): only where FETCH responses can go. */
		if (!selected) {
			*error_r = "MessageNew fetch attributes are for the selected mailbox only";
			return -1;
		}
		e++;
		size_t n = imap_notify_count(e->list);
		if (n == 0 || spec->fetch_att_count > 0) {
			*error_r = "Invalid MessageNew fetch attributes";
			return -1;
		}
		spec->fetch_atts = arena_alloc(arena, n * sizeof(*spec->fetch_atts));
		for (size_t i = 0; i < n; i++) {
			if (e->list[i].type != IMAP_ARG_ATOM) {
				*error_r = "Invalid MessageNew fetch attributes";
				return -1;
			}
			spec->fetch_atts[i] = e->list[i].str;
		}
		spec->fetch_att_count = n;
	}
	return 0;
}

/* RFC 5465 §5.1/§6: the selected mailbox's message events come in the combinations a
 * client can keep a view with. */
static int imap_notify_selected_check(unsigned ev, const char **error_r)
{
	const unsigned both = IMAP_NOTIFY_MESSAGE_NEW | IMAP_NOTIFY_MESSAGE_EXPUNGE;
	if ((ev & ~(IMAP_NOTIFY_MESSAGE_EVENTS | IMAP_NOTIFY_UNKNOWN)) != 0) {
		*error_r = "Only message events apply to the selected mailbox";
		return -1;
	}
	if ((ev & both) != 0 && (ev & both) != both) {
		*error_r = "MessageNew and MessageExpunge must be given together";
		return -1;
	}
	if ((ev & (IMAP_NOTIFY_FLAG_CHANGE | IMAP_NOTIFY_ANNOTATION_CHANGE)) != 0 &&
	    (ev & both) != both) {
		*error_r = "FlagChange needs MessageNew and MessageExpunge";
		return -1;
	}
	return 0;
}

/* SUBTREE / MAILBOXES: one-or-more-mailbox. */
static int imap_notify_names(struct arena *arena, const struct imap_arg *a,
                             struct imap_notify_group *g, const char **error_r)
{
	if (imap_notify_astring(a)) {
		g->names = arena_alloc(arena, sizeof(*g->names));
		g->names[0] = a->str;
		g->name_count = 1;
		return 0;
	}
	size_t n = a->type == IMAP_ARG_LIST ? imap_notify_count(a->list) : 0;
	if (n == 0) {
		*error_r = "Expected a mailbox or a list of mailboxes";
		return -1;
	}
	g->names = arena_alloc(arena, n * sizeof(*g->names));
	for (size_t i = 0; i < n; i++) {
		if (!imap_notify_astring(&a->list[i])) {
			*error_r = "Invalid mailbox name";
			return -1;
		}
		g->names[i] = a->list[i].str;
	}
	g->name_count = n;
	return 0;
}

static int imap_notify_group_parse(struct arena *arena, const struct imap_arg *a,
                                   struct imap_notify_spec *spec, const char **error_r)
{
	if (a->type != IMAP_ARG_LIST || a->list[0].type != IMAP_ARG_ATOM) {
		*error_r = "Expected an event group";
		return -1;
	}
	const struct imap_arg *f = a->list;
	size_t n = imap_notify_count(f);
	bool sel = strcasecmp(f->str, "SELECTED") == 0;
	if (sel || strcasecmp(f->str, "SELECTED-DELAYED") == 0) {
		if (n != 2 || spec->selected) {
			*error_r = n != 2 ? "Invalid event group" : "Only one selected filter";
			return -1;
		}
		spec->selected = true;
		spec->selected_delayed = !sel;
		if (imap_notify_events_parse(arena, &f[1], true, spec, &spec->selected_events,
		                             error_r) < 0 ||
		    imap_notify_selected_check(spec->selected_events, error_r) < 0)
			return -1;
		spec->used_events |= spec->selected_events;
		return 0;
	}
	struct imap_notify_group g = {0};
	static const struct {
		const char *name;
		enum imap_notify_filter filter;
		bool names;
	} filters[] = {
	    {"INBOXES", IMAP_NOTIFY_INBOXES, false},
	    {"PERSONAL", IMAP_NOTIFY_PERSONAL, false},
	    {"SUBSCRIBED", IMAP_NOTIFY_SUBSCRIBED, false},
	    {"SUBTREE", IMAP_NOTIFY_SUBTREE, true},
	    {"MAILBOXES", IMAP_NOTIFY_MAILBOXES, true},
	};
	size_t k = 0;
	while (k < sizeof(filters) / sizeof(filters[0]) && strcasecmp(f->str, filters[k].name) != 0)
		k++;
	if (k == sizeof(filters) / sizeof(filters[0]) || n != (filters[k].names ? 3u : 2u)) {
		*error_r = "Invalid mailbox filter";
		return -1;
	}
	g.filter = filters[k].filter;
	if (filters[k].names && imap_notify_names(arena, &f[1], &g, error_r) < 0)
		return -1;
	if (imap_notify_events_parse(arena, &f[n - 1], false, spec, &g.events, error_r) < 0)
		return -1;
	spec->used_events |= g.events;
	spec->groups[spec->group_count++] = g;
	return 0;
}

int imap_notify_parse(struct arena *arena, const struct imap_arg *args,
                      struct imap_notify_spec *spec_r, const char **error_r)
{
	memset(spec_r, 0, sizeof(*spec_r));
	if (imap_notify_is_atom(args, "NONE") && args[1].type == IMAP_ARG_EOL)
		return 0;
	if (!imap_notify_is_atom(args, "SET")) {
		*error_r = "Syntax: NOTIFY SET [STATUS] event-group ... / NOTIFY NONE";
		return -1;
	}
	spec_r->set = true;
	args++;
	if (imap_notify_is_atom(args, "STATUS")) {
		spec_r->status = true;
		args++;
	}
	size_t n = imap_notify_count(args);
	if (n == 0) {
		*error_r = "Expected an event group";
		return -1;
	}
	spec_r->groups = arena_alloc(arena, n * sizeof(*spec_r->groups));
	for (size_t i = 0; i < n; i++)
		if (imap_notify_group_parse(arena, &args[i], spec_r, error_r) < 0)
			return -1;
	return 0;
}
