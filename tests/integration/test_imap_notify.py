"""IMAP NOTIFY (RFC 5465): a delivery over SMTP and an APPEND from another session into a
mailbox that is not selected give "* STATUS" at once (no command from the client), also
during IDLE; CREATE, RENAME and DELETE by another session give "* LIST" (OLDNAME for a
rename, \\NonExistent for a delete); SUBSCRIBE gives "* LIST (\\Subscribed)"; the selected
mailbox's new messages, flag changes and expunges arrive between commands with
(SELECTED ...), with the MessageNew fetch attributes; NOTIFY SET STATUS answers STATUS
before its OK; NOTIFY NONE stops all of it; unsupported events give NO [BADEVENT], bad
syntax BAD; too many pending changes give NOTIFICATIONOVERFLOW. One server, on the store's
reader threads (the path PostgreSQL takes)."""

import itertools
import re
import select
import smtplib
import time

from conftest import HOST
from imap_helpers import Raw as RawClient

SERVER_CONF = {"store_read_threads": "2", "imap_notify_max_pending": "5"}

PASSWORD = "notify-Secret-7"
_counter = itertools.count(1)


def fresh_user(server):
    addr = "nt%d@example.test" % next(_counter)
    server.add_user(addr, PASSWORD)
    return addr


class Raw(RawClient):
    def __init__(self, server, user):
        super().__init__(server, user, PASSWORD)

    def unsolicited(self, want):
        """Untagged lines that arrive without a command, until one matches want (a regex).
        The socket's timeout (10 s) fails the test when none comes."""
        got = []
        while True:
            line = self.line()
            got.append(line)
            if re.search(want, line):
                return got

    def quiet_idle(self, wait=0.4):
        """During IDLE: nothing arrives within wait seconds."""
        r, _, _ = select.select([self.sock], [], [], wait)
        assert not r and not self.sock.pending(), self.line()

    def quiet(self, wait=0.4):
        """Nothing was told: no STATUS or LIST within wait seconds nor before a NOOP's OK."""
        time.sleep(wait)
        out = self.cmd(b"NOOP")
        assert not any(l.startswith((b"* STATUS", b"* LIST")) for l in out), out


def deliver(server, to, subject=b"hi"):
    msg = b"From: a@example.test\r\nSubject: " + subject + b"\r\n\r\nbody\r\n"
    with smtplib.SMTP(HOST, server.smtp_port, timeout=10, local_hostname="client.test") as s:
        s.sendmail("a@example.test", [to], msg)


MSG = b"From: a@example.test\r\nSubject: x\r\n\r\nhello\r\n"


def test_capability_and_syntax(server):
    r = Raw(server, fresh_user(server))
    assert b" NOTIFY" in r.cmd(b"CAPABILITY")[0]
    for bad in [b"NOTIFY", b"NOTIFY SET", b"NOTIFY FOO", b"NOTIFY SET (personal)",
                b"NOTIFY SET (selected (MessageNew))",  # without MessageExpunge
                b"NOTIFY SET (selected (FlagChange))",
                b"NOTIFY SET (mailboxes (MessageNew))",  # no mailbox
                b"NOTIFY SET (personal (MessageNew (UID)))",  # fetch-att outside selected
                b"NOTIFY SET (selected (MessageNew (NOSUCHITEM) MessageExpunge))"]:
        assert r.cmd(bad)[-1].startswith(b"BAD"), bad
    out = r.cmd(b"NOTIFY SET (personal (MessageNew AnnotationChange))")
    assert re.match(rb"NO \[BADEVENT \(MessageNew MessageExpunge FlagChange MailboxName "
                    rb"SubscriptionChange MailboxMetadataChange ServerMetadataChange\)\]",
                    out[-1]), out
    assert r.cmd(b"NOTIFY SET (inboxes (SomethingElse))")[-1].startswith(b"NO [BADEVENT")
    assert r.cmd(b"NOTIFY NONE")[-1].startswith(b"OK")
    r.close()


def test_delivery_to_unselected_inbox_gives_status(server):
    user = fresh_user(server)
    r = Raw(server, user)
    assert r.cmd(b"CREATE Work")[-1].startswith(b"OK")
    r.cmd(b"SELECT Work")
    assert r.cmd(b"NOTIFY SET (selected (MessageNew MessageExpunge)) "
                 b"(inboxes (MessageNew MessageExpunge))")[-1].startswith(b"OK")
    deliver(server, user)
    got = r.unsolicited(rb'^\* STATUS "?INBOX"? ')
    assert re.search(rb"MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)", got[-1]), got
    # From another session: APPEND, then a flag change (not asked for: no STATUS).
    o = Raw(server, user)
    assert o.append(b"INBOX", MSG).startswith(b"OK")
    got = r.unsolicited(rb'^\* STATUS "?INBOX"? ')
    assert b"MESSAGES 2 UIDNEXT 3" in got[-1], got
    o.cmd(b"SELECT INBOX")
    o.cmd(b"STORE 1 +FLAGS (\\Seen)")
    r.quiet()
    # Expunge is asked for: STATUS with the new count.
    o.cmd(b"STORE 2 +FLAGS (\\Deleted)")
    o.cmd(b"EXPUNGE")
    got = r.unsolicited(rb'^\* STATUS "?INBOX"? ')
    assert b"MESSAGES 1 UIDNEXT 3" in got[-1], got
    # NOTIFY NONE: nothing more.
    assert r.cmd(b"NOTIFY NONE")[-1].startswith(b"OK")
    deliver(server, user)
    r.quiet()
    o.close()
    r.close()


def test_status_during_idle_and_set_status(server):
    user = fresh_user(server)
    r = Raw(server, user)
    r.cmd(b"CREATE Lists/a")
    r.cmd(b"CREATE Lists/b")
    o = Raw(server, user)
    assert o.append(b"Lists/b", MSG).startswith(b"OK")
    out = r.cmd(b"NOTIFY SET STATUS (subtree Lists (MessageNew MessageExpunge FlagChange))")
    assert out[-1].startswith(b"OK"), out
    status = [l for l in out[:-1] if l.startswith(b"* STATUS")]
    assert len(status) == 3, out  # Lists, Lists/a, Lists/b
    assert any(re.match(rb'\* STATUS "?Lists/b"? \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ '
                        rb'UNSEEN 1 HIGHESTMODSEQ \d+\)', l) for l in status), status
    r.send(b"i IDLE\r\n")
    assert r.line().startswith(b"+ ")
    assert o.append(b"Lists/a", MSG).startswith(b"OK")
    got = r.unsolicited(rb'^\* STATUS "?Lists/a"? ')
    assert b"MESSAGES 1 UIDNEXT 2" in got[-1], got
    o.cmd(b"SELECT Lists/b")
    o.cmd(b"STORE 1 +FLAGS (\\Seen)")  # FlagChange asked for
    got = r.unsolicited(rb'^\* STATUS "?Lists/b"? ')
    assert b"UNSEEN 0" in got[-1], got
    assert o.append(b"INBOX", MSG).startswith(b"OK")  # not in the filter
    r.quiet_idle()
    r.send(b"DONE\r\n")
    assert r.until(b"i")[1].startswith(b"OK")
    o.close()
    r.close()


def test_mailbox_names_and_subscriptions(server):
    user = fresh_user(server)
    r = Raw(server, user)
    assert r.cmd(b"NOTIFY SET (personal (MailboxName SubscriptionChange))")[-1].startswith(b"OK")
    o = Raw(server, user)
    o.cmd(b"CREATE Projects")
    assert r.unsolicited(rb'^\* LIST \(\) "/" "?Projects"?\r\n')
    assert o.cmd(b"RENAME Projects Done")[-1].startswith(b"OK")
    got = r.unsolicited(rb'^\* LIST ')
    assert re.match(rb'\* LIST \(\) "/" "?Done"? \("OLDNAME" \("Projects"\)\)\r\n',
                    got[-1]), got
    o.cmd(b"SUBSCRIBE Done")
    assert r.unsolicited(rb'^\* LIST \(\\Subscribed\) "/" "?Done"?\r\n')
    o.cmd(b"UNSUBSCRIBE Done")
    assert r.unsolicited(rb'^\* LIST \(\) "/" "?Done"?\r\n')
    o.cmd(b"DELETE Done")
    assert r.unsolicited(rb'^\* LIST \(\\NonExistent\) "/" "?Done"?\r\n')
    # Metadata (RFC 5464 §4.4.2): the entry's name, not its value.
    assert r.cmd(b"NOTIFY SET (inboxes (MailboxMetadataChange)) (personal "
                 b"(ServerMetadataChange))")[-1].startswith(b"OK")
    assert o.cmd(b"SETMETADATA INBOX (/private/comment \"x\")")[-1].startswith(b"OK")
    assert r.unsolicited(rb'^\* METADATA "INBOX" "/private/comment"\r\n')
    assert o.cmd(b"SETMETADATA \"\" (/shared/admin \"y\")")[-1].startswith(b"OK")
    assert r.unsolicited(rb'^\* METADATA "" "/shared/admin"\r\n')
    # Another account's changes never show.
    other = Raw(server, fresh_user(server))
    other.cmd(b"CREATE Projects")
    r.quiet()
    other.close()
    o.close()
    r.close()


def test_selected_mailbox_events_between_commands(server):
    user = fresh_user(server)
    r = Raw(server, user)
    assert r.append(b"INBOX", MSG).startswith(b"OK")
    r.cmd(b"SELECT INBOX")
    out = r.cmd(b"NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge FlagChange))")
    assert out[-1].startswith(b"OK"), out
    o = Raw(server, user)
    assert o.append(b"INBOX", MSG).startswith(b"OK")
    got = r.unsolicited(rb"^\* 2 FETCH ")
    assert b"* 2 EXISTS\r\n" in got, got
    assert re.match(rb"\* 2 FETCH \(UID 2 FLAGS \(.*\)\)\r\n", got[-1]), got
    o.cmd(b"SELECT INBOX")
    o.cmd(b"STORE 1 +FLAGS (\\Flagged)")
    got = r.unsolicited(rb"^\* 1 FETCH ")
    assert b"\\Flagged" in got[-1], got
    o.cmd(b"STORE 1 +FLAGS (\\Deleted)")
    r.unsolicited(rb"^\* 1 FETCH ")
    o.cmd(b"EXPUNGE")
    assert r.unsolicited(rb"^\* 1 EXPUNGE\r\n")
    # SELECTED-DELAYED: new messages at once, the expunge only at NOOP.
    assert r.cmd(b"NOTIFY SET (selected-delayed (MessageNew MessageExpunge))")[-1] \
        .startswith(b"OK")
    o.cmd(b"STORE 1 +FLAGS (\\Deleted)")
    o.cmd(b"EXPUNGE")
    assert o.append(b"INBOX", MSG).startswith(b"OK")
    got = r.unsolicited(rb"^\* 2 EXISTS")
    assert not any(b"EXPUNGE" in l for l in got), got
    out = r.cmd(b"NOOP")
    assert b"* 1 EXPUNGE\r\n" in out, out
    # During IDLE: the new message's EXISTS and its fetch attributes, then DONE works.
    assert r.cmd(b"NOTIFY SET (selected (MessageNew (UID RFC822.SIZE) MessageExpunge))")[-1] \
        .startswith(b"OK")
    r.send(b"i IDLE\r\n")
    assert r.line().startswith(b"+ ")
    assert o.append(b"INBOX", MSG).startswith(b"OK")
    got = r.unsolicited(rb"^\* 2 FETCH ")
    assert b"* 2 EXISTS\r\n" in got, got
    assert re.match(rb"\* 2 FETCH \(UID \d+ RFC822.SIZE %d\)\r\n" % len(MSG), got[-1]), got
    r.send(b"DONE\r\n")
    assert r.until(b"i")[1].startswith(b"OK")
    o.close()
    r.close()


def test_overflow(server):
    """Changes pile up while a command is half sent (nothing is delivered then); more
    mailboxes than imap_notify_max_pending (5) end the NOTIFY."""
    user = fresh_user(server)
    r = Raw(server, user)
    o = Raw(server, user)
    assert r.cmd(b"NOTIFY SET (personal (MessageNew MessageExpunge MailboxName))")[-1] \
        .startswith(b"OK")
    r.send(b"s1 STATUS {5}\r\n")
    assert r.line().startswith(b"+ ")
    for i in range(7):
        assert o.cmd(b"CREATE box%d" % i)[-1].startswith(b"OK")
    time.sleep(0.3)
    r.send(b"INBOX (MESSAGES)\r\n")
    lines, status = r.until(b"s1")
    assert status.startswith(b"OK"), (lines, status)
    assert not any(l.startswith(b"* LIST") for l in lines), lines
    got = r.unsolicited(rb"^\* OK \[NOTIFICATIONOVERFLOW\]")
    assert not any(l.startswith(b"* LIST") for l in got), got
    o.cmd(b"CREATE after")
    r.quiet()
    o.close()
    r.close()
