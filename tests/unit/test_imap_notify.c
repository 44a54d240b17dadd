/* Unit tests for imap/imap_notify (NOTIFY's arguments, RFC 5465 §8): NONE, SET with and
 * without STATUS, every filter, one or a list of mailboxes (quoted, literal), events NONE,
 * the selected filter's rules (MessageNew with MessageExpunge, FlagChange with both, only
 * message events, once), MessageNew fetch attributes (selected only), unknown events kept
 * for BADEVENT, case-insensitivity, and malformed groups. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "imap/imap_notify.h"
#include "imap/imap_parser.h"
#include "imap_args.h"
#include "core/banned.h"

/* Parse "t NOTIFY <args>" (one line, or with a literal: wire has "{n}\r\n" parts). */
static int parse(const char *args, struct imap_notify_spec *spec, const char **error)
{
	imap_parser_reset(parser);
	arena_reset(arena);
	const struct imap_arg *a = imap_args_of("NOTIFY", args);
	*error = NULL;
	return imap_notify_parse(arena, a, spec, error);
}

static void test_none_and_set(void **state)
{
	(void)state;
	struct imap_notify_spec sp;
	const char *e;
	assert_int_equal(parse("NONE", &sp, &e), 0);
	assert_false(sp.set);
	assert_int_equal(parse("none", &sp, &e), 0);
	assert_int_equal(parse("SET (personal (MessageNew MessageExpunge))", &sp, &e), 0);
	assert_true(sp.set);
	assert_false(sp.status);
	assert_int_equal(sp.group_count, 1);
	assert_int_equal(sp.groups[0].filter, IMAP_NOTIFY_PERSONAL);
	assert_int_equal(sp.groups[0].events,
	                 IMAP_NOTIFY_MESSAGE_NEW | IMAP_NOTIFY_MESSAGE_EXPUNGE);
	assert_int_equal(parse("set status (INBOXES (messagenew)) (Subscribed (MailboxName "
	                       "SubscriptionChange FlagChange))",
	                       &sp, &e),
	                 0);
	assert_true(sp.status);
	assert_int_equal(sp.group_count, 2);
	assert_int_equal(sp.groups[0].filter, IMAP_NOTIFY_INBOXES);
	assert_int_equal(sp.groups[1].filter, IMAP_NOTIFY_SUBSCRIBED);
	assert_int_equal(sp.groups[1].events, IMAP_NOTIFY_MAILBOX_NAME |
	                                          IMAP_NOTIFY_SUBSCRIPTION_CHANGE |
	                                          IMAP_NOTIFY_FLAG_CHANGE);
	assert_int_equal(sp.used_events, IMAP_NOTIFY_MESSAGE_NEW | IMAP_NOTIFY_MAILBOX_NAME |
	                                     IMAP_NOTIFY_SUBSCRIPTION_CHANGE |
	                                     IMAP_NOTIFY_FLAG_CHANGE);
	/* events NONE: a group that asks for nothing */
	assert_int_equal(parse("SET (personal NONE)", &sp, &e), 0);
	assert_int_equal(sp.groups[0].events, 0);
}

static void test_mailboxes(void **state)
{
	(void)state;
	struct imap_notify_spec sp;
	const char *e;
	assert_int_equal(parse("SET (mailboxes INBOX (MessageNew))", &sp, &e), 0);
	assert_int_equal(sp.groups[0].filter, IMAP_NOTIFY_MAILBOXES);
	assert_int_equal(sp.groups[0].name_count, 1);
	assert_string_equal(sp.groups[0].names[0], "INBOX");
	assert_int_equal(parse("SET (subtree (Lists \"a b\" {3}\r\nx y) (MailboxName))", &sp, &e),
	                 0);
	assert_int_equal(sp.groups[0].filter, IMAP_NOTIFY_SUBTREE);
	assert_int_equal(sp.groups[0].name_count, 3);
	assert_string_equal(sp.groups[0].names[1], "a b");
	assert_string_equal(sp.groups[0].names[2], "x y");
	/* no mailbox, an empty list, a nested list, a name where none goes */
	assert_int_equal(parse("SET (mailboxes (MessageNew))", &sp, &e), -1);
	assert_int_equal(parse("SET (mailboxes () (MessageNew))", &sp, &e), -1);
	assert_int_equal(parse("SET (subtree ((a)) (MessageNew))", &sp, &e), -1);
	assert_int_equal(parse("SET (personal INBOX (MessageNew))", &sp, &e), -1);
	assert_non_null(e);
}

static void test_selected(void **state)
{
	(void)state;
	struct imap_notify_spec sp;
	const char *e;
	assert_int_equal(parse("SET (selected (MessageNew (UID BODY.PEEK[HEADER.FIELDS (From)]) "
	                       "MessageExpunge FlagChange)) (personal (MailboxName))",
	                       &sp, &e),
	                 0);
	assert_true(sp.selected);
	assert_false(sp.selected_delayed);
	assert_int_equal(sp.selected_events, IMAP_NOTIFY_MESSAGE_NEW | IMAP_NOTIFY_MESSAGE_EXPUNGE |
	                                         IMAP_NOTIFY_FLAG_CHANGE);
	assert_int_equal(sp.fetch_att_count, 2);
	assert_string_equal(sp.fetch_atts[0], "UID");
	assert_string_equal(sp.fetch_atts[1], "BODY.PEEK[HEADER.FIELDS (From)]");
	assert_int_equal(sp.group_count, 1);
	assert_int_equal(parse("SET (SELECTED-DELAYED (MessageExpunge MessageNew))", &sp, &e), 0);
	assert_true(sp.selected_delayed);
	assert_int_equal(parse("SET (selected NONE)", &sp, &e), 0);
	assert_true(sp.selected);
	assert_int_equal(sp.selected_events, 0);
	/* RFC 5465 §5.1: together or not at all; FlagChange needs both */
	assert_int_equal(parse("SET (selected (MessageNew))", &sp, &e), -1);
	assert_int_equal(parse("SET (selected (MessageExpunge))", &sp, &e), -1);
	assert_int_equal(parse("SET (selected (FlagChange))", &sp, &e), -1);
	assert_int_equal(parse("SET (selected (FlagChange MessageNew))", &sp, &e), -1);
	/* only message events; only once; fetch attributes only there */
	assert_int_equal(parse("SET (selected (MailboxName))", &sp, &e), -1);
	assert_int_equal(parse("SET (selected NONE) (selected-delayed NONE)", &sp, &e), -1);
	assert_int_equal(parse("SET (personal (MessageNew (UID) MessageExpunge))", &sp, &e), -1);
	assert_int_equal(parse("SET (selected (MessageNew () MessageExpunge))", &sp, &e), -1);
	assert_int_equal(parse("SET (selected (MessageNew (UID) MessageNew (FLAGS) "
	                       "MessageExpunge))",
	                       &sp, &e),
	                 -1);
	assert_int_equal(parse("SET (selected (MessageNew (\"UID\") MessageExpunge))", &sp, &e),
	                 -1);
	assert_int_equal(parse("SET (selected)", &sp, &e), -1);
}

static void test_unknown_events_and_syntax(void **state)
{
	(void)state;
	struct imap_notify_spec sp;
	const char *e;
	/* unknown atoms are events for BADEVENT, not syntax errors */
	assert_int_equal(parse("SET (personal (MessageNew SomethingNew))", &sp, &e), 0);
	assert_true(sp.used_events & IMAP_NOTIFY_UNKNOWN);
	assert_int_equal(parse("SET (personal (AnnotationChange))", &sp, &e), 0);
	assert_int_equal(sp.used_events & IMAP_NOTIFY_SUPPORTED, 0);
	assert_int_equal(
	    parse("SET (personal (MailboxMetadataChange ServerMetadataChange))", &sp, &e), 0);
	assert_int_equal(sp.used_events & ~IMAP_NOTIFY_SUPPORTED, 0);
	const char *bad[] = {
	    "",
	    "SET",
	    "SET STATUS",
	    "NONE extra",
	    "FOO (personal (MessageNew))",
	    "SET (personal)",
	    "SET (personal ())",
	    "SET (personal (MessageNew) extra)",
	    "SET (nosuchfilter (MessageNew))",
	    "SET personal (MessageNew)",
	    "SET (\"personal\" (MessageNew))",
	    "SET (personal (\"MessageNew\"))",
	    "SET (personal ((MessageNew)))",
	    "SET ()",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (bad[i][0] == '\0') {
			/* "t NOTIFY" alone */
			struct imap_literal lit;
			const char *perr;
			imap_parser_reset(parser);
			assert_int_equal(imap_parser_feed_line(parser, "t NOTIFY", 8, &lit, &perr),
			                 1);
			assert_int_equal(
			    imap_notify_parse(arena, imap_parser_args(parser), &sp, &e), -1);
			continue;
		}
		assert_int_equal(parse(bad[i], &sp, &e), -1);
		assert_non_null(e);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_none_and_set, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mailboxes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_selected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_events_and_syntax, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
