/* The arguments of IMAP NOTIFY (RFC 5465 §8): pure, from the parser's argument tree to what
 * the client asked for. cmd_notify.c acts on it. */
#ifndef POSTHORN_IMAP_IMAP_NOTIFY_H
#define POSTHORN_IMAP_IMAP_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "imap/imap_parser.h"

/* Events (RFC 5465 §5), as bits. */
#define IMAP_NOTIFY_MESSAGE_NEW (1u << 0)
#define IMAP_NOTIFY_MESSAGE_EXPUNGE (1u << 1)
#define IMAP_NOTIFY_FLAG_CHANGE (1u << 2)
#define IMAP_NOTIFY_ANNOTATION_CHANGE (1u << 3)
#define IMAP_NOTIFY_MAILBOX_NAME (1u << 4)
#define IMAP_NOTIFY_SUBSCRIPTION_CHANGE (1u << 5)
#define IMAP_NOTIFY_MAILBOX_METADATA_CHANGE (1u << 6)
#define IMAP_NOTIFY_SERVER_METADATA_CHANGE (1u << 7)
#define IMAP_NOTIFY_UNKNOWN (1u << 8) /* an event-ext atom this parser does not know */
#define IMAP_NOTIFY_MESSAGE_EVENTS                                                                 \
	(IMAP_NOTIFY_MESSAGE_NEW | IMAP_NOTIFY_MESSAGE_EXPUNGE | IMAP_NOTIFY_FLAG_CHANGE |         \
	 IMAP_NOTIFY_ANNOTATION_CHANGE)

/* filter-mailboxes-other (RFC 5465 §6). */
enum imap_notify_filter {
	IMAP_NOTIFY_INBOXES,
	IMAP_NOTIFY_PERSONAL,
	IMAP_NOTIFY_SUBSCRIBED,
	IMAP_NOTIFY_SUBTREE,
	IMAP_NOTIFY_MAILBOXES,
};

/* One event group other than the selected mailbox's. */
struct imap_notify_group {
	enum imap_notify_filter filter;
	unsigned events;    /* IMAP_NOTIFY_* bits; 0 for NONE */
	const char **names; /* SUBTREE / MAILBOXES: the mailbox names as sent (astrings) */
	size_t name_count;
};

struct imap_notify_spec {
	bool set;    /* SET (false: NONE) */
	bool status; /* SET STATUS */
	/* (SELECTED ...) or (SELECTED-DELAYED ...): at most one */
	bool selected;
	bool selected_delayed;
	unsigned selected_events;
	const char **fetch_atts; /* MessageNew's fetch-att list for the selected mailbox: the
	                            atoms as sent (not checked here) */
	size_t fetch_att_count;
	struct imap_notify_group *groups;
	size_t group_count;
	unsigned used_events; /* every event named anywhere */
};

/* Parse the arguments after "NOTIFY" into *spec_r (everything in arena). 0 ok, -1 syntax
 * error with *error_r a static text for BAD: not NONE/SET, an empty or malformed event
 * group, a second selected filter, fetch-att outside the selected filter, a mailbox event
 * in the selected filter, MessageNew without MessageExpunge (or the reverse) or FlagChange
 * or AnnotationChange without both for the selected mailbox (RFC 5465 §5.1, §6). Unknown
 * event atoms are not an error here: they set IMAP_NOTIFY_UNKNOWN (the command answers NO
 * [BADEVENT]). */
int imap_notify_parse(struct arena *arena, const struct imap_arg *args,
                      struct imap_notify_spec *spec_r, const char **error_r)
    __attribute__((warn_unused_result));

/* The events this server supports, as RFC 5465 names them, space-separated (for BADEVENT). */
#define IMAP_NOTIFY_SUPPORTED_TEXT                                                                 \
	"MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange "                     \
	"MailboxMetadataChange ServerMetadataChange"
#define IMAP_NOTIFY_SUPPORTED                                                                      \
	(IMAP_NOTIFY_MESSAGE_NEW | IMAP_NOTIFY_MESSAGE_EXPUNGE | IMAP_NOTIFY_FLAG_CHANGE |         \
	 IMAP_NOTIFY_MAILBOX_NAME | IMAP_NOTIFY_SUBSCRIPTION_CHANGE |                              \
	 IMAP_NOTIFY_MAILBOX_METADATA_CHANGE | IMAP_NOTIFY_SERVER_METADATA_CHANGE)

#endif
