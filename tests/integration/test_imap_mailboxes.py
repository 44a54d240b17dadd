"""IMAP mailbox management: the default mailboxes of a new account with their special-use
attributes (RFC 6154), LIST patterns and hierarchy, LIST-EXTENDED selection and return
options (RFC 5258), LIST-STATUS (RFC 5819), LSUB, CREATE (with CREATE-SPECIAL-USE), DELETE,
RENAME (INBOX semantics), SUBSCRIBE/UNSUBSCRIBE, STATUS after deliveries, the response
codes of RFC 5530, and mailbox names in modified UTF-7 (IMAP4rev1) and UTF-8 (UTF8=ACCEPT,
IMAP4rev2)."""

import base64
import imaplib
import itertools
import re
import smtplib
import socket
import time

import pytest

from imap_helpers import imap_ports, tls_ctx, wait_imap
from conftest import HOST

# Store reads run on the store's reader threads (store_read(), the path PostgreSQL takes):
# every command here answers from the read's completion, not in place.
SERVER_CONF = {"store_read_threads": "2"}

PASSWORD = "mailbox-Secret-9"
_users = itertools.count(1)






def new_user(server):
    """A fresh account, so every test starts from the default mailboxes."""
    address = "mbx%d@example.test" % next(_users)
    server.add_user(address, PASSWORD)
    return address


def deliver(server, to, subject):
    msg = "From: a@remote.test\r\nTo: %s\r\nSubject: %s\r\n\r\nBody of %s.\r\n" % (to, subject, subject)
    with smtplib.SMTP(HOST, server.smtp_port, timeout=10, local_hostname="client.test") as s:
        s.sendmail("a@remote.test", [to], msg.encode())


def mutf7(text):
    """Modified UTF-7 (RFC 3501 §5.1.3), to check the server's encoding independently."""
    out, run = [], []

    def flush():
        if run:
            b64 = base64.b64encode("".join(run).encode("utf-16-be")).decode().rstrip("=")
            out.append("&" + b64.replace("/", ",") + "-")
            run.clear()

    for ch in text:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


class Raw:
    """A raw IMAPS session: cmd() returns (untagged lines, tagged line) as str; a literal
    is joined into its line as {n}<data>."""

    def __init__(self, server, user):
        wait_imap(server)
        raw = socket.create_connection((HOST, imap_ports(server)[1]), timeout=10)
        self.sock = tls_ctx().wrap_socket(raw)
        self.f = self.sock.makefile("rb")
        assert self.f.readline().startswith(b"* OK")
        self.n = 0
        _, tagged = self.cmd('LOGIN "%s" "%s"' % (user, PASSWORD))
        assert " OK" in tagged, tagged

    def line(self):
        line = self.f.readline()
        assert line, "connection closed"
        m = re.search(rb"\{(\d+)\}\r\n$", line)
        if m:
            data = self.f.read(int(m.group(1)))
            line = line[:-2] + data + self.line().encode()
        return line.decode().rstrip("\r\n")

    def send(self, text):
        self.n += 1
        tag = "t%d" % self.n
        data = text.encode() if isinstance(text, str) else text
        self.sock.sendall(tag.encode() + b" " + data + b"\r\n")
        return tag

    def cmd(self, text):
        tag = self.send(text)
        lines = []
        while True:
            line = self.line()
            if line.startswith(tag + " "):
                return lines, line
            lines.append(line)

    def ok(self, text):
        lines, tagged = self.cmd(text)
        assert tagged.split()[1] == "OK", (text, lines, tagged)
        return lines

    def no(self, text, code):
        lines, tagged = self.cmd(text)
        assert tagged.split()[1] == "NO" and ("[%s]" % code) in tagged, (text, tagged)
        return tagged

    def bad(self, text):
        lines, tagged = self.cmd(text)
        assert tagged.split()[1] == "BAD", (text, tagged)

    def close(self):
        self.sock.close()


LIST_RE = re.compile(r'^\* (LIST|LSUB) \(([^)]*)\) "/" "((?:[^"\\]|\\.)*)"(.*)$')


def listing(lines, kind="LIST"):
    """{name: (set of attributes, extended data text)} of the LIST/LSUB responses."""
    out = {}
    for line in lines:
        m = LIST_RE.match(line)
        if m and m.group(1) == kind:
            name = re.sub(r"\\(.)", r"\1", m.group(3))
            assert name not in out, "name listed twice: %r" % line
            out[name] = (set(m.group(2).split()), m.group(4).strip())
    return out


def names(lines, kind="LIST"):
    return set(listing(lines, kind))


def status_of(lines):
    """{name: {item: value}} of the STATUS responses."""
    out = {}
    for line in lines:
        m = re.match(r'^\* STATUS "((?:[^"\\]|\\.)*)" \((.*)\)$', line)
        if m:
            words = m.group(2).split()
            out[m.group(1)] = {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}
    return out


DEFAULTS = {"INBOX": None, "Drafts": "\\Drafts", "Sent": "\\Sent", "Trash": "\\Trash",
            "Junk": "\\Junk", "Archive": "\\Archive"}


def test_default_mailboxes_of_a_new_account(server):
    c = Raw(server, new_user(server))
    got = listing(c.ok('LIST "" "*"'))
    assert set(got) == set(DEFAULTS), got
    for name, use in DEFAULTS.items():
        attrs = got[name][0]
        assert "\\HasNoChildren" in attrs
        specials = attrs & {"\\Drafts", "\\Sent", "\\Trash", "\\Junk", "\\Archive", "\\All",
                            "\\Flagged"}
        assert specials == ({use} if use else set()), (name, attrs)
    # RFC 6154: the SPECIAL-USE selection option lists only special-use mailboxes.
    got = listing(c.ok('LIST (SPECIAL-USE) "" "*"'))
    assert set(got) == set(DEFAULTS) - {"INBOX"}
    got = listing(c.ok('LIST "" "*" RETURN (SPECIAL-USE)'))
    assert "\\Sent" in got["Sent"][0]
    # The delimiter request.
    assert c.ok('LIST "" ""') == ['* LIST (\\Noselect) "/" ""']
    c.close()


def test_list_patterns_and_hierarchy(server):
    c = Raw(server, new_user(server))
    c.ok('CREATE "Projects/Alpha/Docs"')  # the parents come too (RFC 9051 §6.3.4)
    c.ok("CREATE Projects/Beta")
    c.ok('CREATE "Foo/"')                # trailing delimiter: just a declaration
    every = listing(c.ok('LIST "" "*"'))
    assert {"Projects", "Projects/Alpha", "Projects/Alpha/Docs", "Projects/Beta",
            "Foo"} <= set(every)
    assert "\\HasChildren" in every["Projects"][0]
    assert "\\Noselect" not in every["Projects"][0]   # created as a real mailbox
    assert "\\HasNoChildren" in every["Projects/Beta"][0]
    assert c.ok("SELECT Projects/Alpha")[-1] != ""   # selectable
    top = names(c.ok('LIST "" "%"'))
    assert top == set(DEFAULTS) | {"Projects", "Foo"}
    assert names(c.ok('LIST "" "Projects/%"')) == {"Projects/Alpha", "Projects/Beta"}
    assert names(c.ok('LIST "Projects/" "%"')) == {"Projects/Alpha", "Projects/Beta"}
    assert names(c.ok('LIST "" "Projects/*"')) == {"Projects/Alpha", "Projects/Alpha/Docs",
                                                  "Projects/Beta"}
    assert names(c.ok('LIST "" "*/Docs"')) == {"Projects/Alpha/Docs"}
    assert names(c.ok('LIST "" "%/Docs"')) == set()
    assert names(c.ok('LIST "" "P%a"')) == set()
    assert names(c.ok('LIST "" "P*a"')) == {"Projects/Alpha", "Projects/Beta"}
    # INBOX is case-insensitive.
    assert names(c.ok('LIST "" "inbox"')) == {"INBOX"}
    assert names(c.ok('LIST "" "iNbOx"')) == {"INBOX"}
    # Several patterns (RFC 5258 §3), each name once.
    assert names(c.ok('LIST "" ("INBOX" "Drafts" "Projects/%" "Pro*")')) == {
        "INBOX", "Drafts", "Projects", "Projects/Alpha", "Projects/Beta", "Projects/Alpha/Docs"}
    # INBOX comes first.
    assert c.ok('LIST "" "*"')[0].endswith('"/" "INBOX"')
    # Quotes and backslashes are data, escaped in quoted strings.
    c.ok('CREATE "Say \\"hi\\" \\\\ bye"')
    assert 'Say "hi" \\ bye' in names(c.ok('LIST "" "Say*"'))
    c.ok('DELETE {14+}\r\nSay "hi" \\ bye')   # a literal names it too
    assert names(c.ok('LIST "" "Say*"')) == set()
    # Long wildcard-heavy patterns are cheap (runs of wildcards collapse).
    start = time.monotonic()
    assert names(c.ok('LIST "" "%s"' % ("*%" * 20000 + "Beta"))) == {"Projects/Beta"}
    assert names(c.ok('LIST "" "%s"' % ("*j" * 15000))) == set()
    assert time.monotonic() - start < 5
    # Syntax errors are BAD.
    c.bad('LIST "" "*" RETURN (BOGUS)')
    c.bad('LIST (BOGUS) "" "*"')
    c.bad('LIST (RECURSIVEMATCH) "" "*"')
    c.bad('LIST "" "*" RETURN (STATUS (NOSUCH))')
    c.bad('LIST ""')
    c.close()


def test_create_delete_and_error_codes(server):
    c = Raw(server, new_user(server))
    c.ok("CREATE Work")
    c.no("CREATE Work", "ALREADYEXISTS")
    c.no("CREATE INBOX", "ALREADYEXISTS")
    c.no("CREATE inbox", "ALREADYEXISTS")
    c.no('CREATE "a//b"', "CANNOT")
    c.no('CREATE "/abs"', "CANNOT")
    c.no('CREATE "star*"', "CANNOT")
    c.no("DELETE INBOX", "CANNOT")
    c.no("DELETE Nowhere", "NONEXISTENT")
    c.bad("CREATE")
    c.bad("DELETE a b")
    # Deleting a parent keeps its children; it stays as a \Noselect name (RFC 9051 §6.3.5).
    c.ok("CREATE Work/Reports")
    c.ok("DELETE Work")
    got = listing(c.ok('LIST "" "Work*"'))
    assert got["Work"][0] >= {"\\Noselect", "\\HasChildren"}
    assert "Work/Reports" in got
    c.no("SELECT Work", "NONEXISTENT")
    c.no("DELETE Work", "NONEXISTENT")
    c.no("STATUS Work (MESSAGES)", "NONEXISTENT")
    c.ok("CREATE Work")        # a placeholder can become a mailbox again
    assert "\\Noselect" not in listing(c.ok('LIST "" "Work"'))["Work"][0]
    c.ok("DELETE Work/Reports")
    assert "\\HasNoChildren" in listing(c.ok('LIST "" "Work"'))["Work"][0]
    # CREATE-SPECIAL-USE (RFC 6154 §3).
    c.ok("CREATE Outbox (USE (\\Sent))")
    assert "\\Sent" in listing(c.ok('LIST "" "Outbox"'))["Outbox"][0]
    c.ok("CREATE Bin (USE (\\Trash \\Junk))")
    assert {"\\Trash", "\\Junk"} <= listing(c.ok('LIST "" "Bin"'))["Bin"][0]
    c.no("CREATE Everything (USE (\\All))", "USEATTR")
    c.no("CREATE Odd (USE (\\Bogus))", "USEATTR")
    assert names(c.ok('LIST "" "Everything"')) == set()
    c.bad("CREATE Odd (NOTUSE (\\Sent))")
    c.bad("CREATE Odd (USE \\Sent)")
    c.close()


def test_pipelined_mailbox_commands(server):
    """Commands sent together while a store operation runs are answered in order."""
    c = Raw(server, new_user(server))
    tags = []
    batch = b""
    for i, text in enumerate(["CREATE P1", "CREATE P1/P2", "SUBSCRIBE P1/P2", "RENAME P1 Q1",
                              'LIST "" "Q1*"', "DELETE Q1/P2", "STATUS Q1 (MESSAGES)",
                              "DELETE Q1", 'LSUB "" "Q1*"']):
        tag = "p%d" % i
        tags.append(tag)
        batch += ("%s %s\r\n" % (tag, text)).encode()
    c.sock.sendall(batch)
    seen = []
    untagged = []
    while len(seen) < len(tags):
        line = c.line()
        if line.startswith("* "):
            untagged.append(line)
        else:
            seen.append(line)
    assert [l.split()[0] for l in seen] == tags
    assert all(l.split()[1] == "OK" for l in seen), seen
    assert '* LIST (\\HasChildren) "/" "Q1"' in untagged
    assert '* LSUB (\\Noselect) "/" "Q1/P2"' in untagged   # the subscription moved along
    c.close()


def test_delete_of_the_selected_mailbox(server):
    c = Raw(server, new_user(server))
    c.ok("CREATE Doomed")
    c.ok("SELECT Doomed")
    lines = c.ok("DELETE Doomed")
    assert any("[CLOSED]" in l for l in lines), lines
    _, tagged = c.cmd("FETCH 1 FLAGS")
    assert "BAD" in tagged            # no mailbox selected any more
    c.ok("SELECT INBOX")
    c.close()


def test_rename_and_inbox_rename(server):
    user = new_user(server)
    c = Raw(server, user)
    c.ok("CREATE Old/Child")
    c.ok("SUBSCRIBE Old/Child")
    c.ok("RENAME Old New")
    every = names(c.ok('LIST "" "*"'))
    assert {"New", "New/Child"} <= every and not {"Old", "Old/Child"} & every
    assert "New/Child" in names(c.ok('LSUB "" "*"'), "LSUB")      # subscription moved along
    c.no("RENAME Old Other", "NONEXISTENT")
    c.no("RENAME New Drafts", "ALREADYEXISTS")
    c.no("RENAME New INBOX", "ALREADYEXISTS")
    c.no("RENAME New New/Below", "CANNOT")
    c.no('RENAME New "bad//name"', "CANNOT")
    c.bad("RENAME New")
    c.ok("RENAME New/Child Deep/Er/Child")   # missing parents are created
    assert {"Deep", "Deep/Er", "Deep/Er/Child"} <= names(c.ok('LIST "" "Deep*"'))
    # Renaming the selected mailbox keeps it selected under the new name.
    c.ok("SELECT Deep/Er/Child")
    c.ok("RENAME Deep Shallow")
    c.ok("NOOP")
    assert "Shallow/Er/Child" in names(c.ok('LIST "" "Shallow/*"'))
    c.ok("UNSELECT")

    # RFC 9051 §6.3.6: renaming INBOX moves its messages to the new name, INBOX stays, empty.
    for i in range(2):
        deliver(server, user, "inbox rename %d" % i)
    server.wait_mail(user, 2)
    before = status_of(c.ok("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY)"))["INBOX"]
    assert before["MESSAGES"] == 2
    c.ok("CREATE INBOX/Sub")
    c.ok('RENAME INBOX "Old Mail"')
    st = status_of(c.ok('STATUS "Old Mail" (MESSAGES UIDNEXT UIDVALIDITY)'))["Old Mail"]
    assert st["MESSAGES"] == 2 and st["UIDNEXT"] == before["UIDNEXT"]
    assert st["UIDVALIDITY"] != before["UIDVALIDITY"]
    st = status_of(c.ok("STATUS INBOX (MESSAGES UIDNEXT)"))["INBOX"]
    assert st["MESSAGES"] == 0 and st["UIDNEXT"] == before["UIDNEXT"]
    assert {"INBOX", "INBOX/Sub", "Old Mail"} <= names(c.ok('LIST "" "*"'))
    c.close()


def test_subscriptions_lsub_and_list_subscribed(server):
    c = Raw(server, new_user(server))
    default_subs = names(c.ok('LSUB "" "*"'), "LSUB")
    c.ok("CREATE Fruit/Apple")
    c.ok("CREATE Fruit/Banana")
    c.ok("SUBSCRIBE Fruit/Banana")
    c.ok("SUBSCRIBE Fruit/Banana")            # twice is fine
    c.no("SUBSCRIBE Ghost/Sub", "NONEXISTENT")  # a name that does not exist (as Dovecot)
    c.ok("CREATE Ghost/Sub")
    c.ok("SUBSCRIBE Ghost/Sub")
    c.ok("DELETE Ghost/Sub")                  # the subscription outlives the mailbox
    c.ok("DELETE Ghost")
    c.no('SUBSCRIBE "a//b"', "CANNOT")
    lsub = listing(c.ok('LSUB "" "*"'), "LSUB")
    assert set(lsub) == default_subs | {"Fruit/Banana", "Ghost/Sub"}
    assert "\\Noselect" in lsub["Ghost/Sub"][0] and "\\Noselect" not in lsub["Fruit/Banana"][0]
    # RFC 3501 §6.3.9: with '%', an unsubscribed parent of a subscription is \Noselect.
    lsub = listing(c.ok('LSUB "" "%"'), "LSUB")
    assert {"Fruit", "Ghost"} <= set(lsub)
    assert "\\Noselect" in lsub["Fruit"][0] and "\\Noselect" in lsub["Ghost"][0]
    # LIST-EXTENDED (RFC 5258).
    sub = listing(c.ok('LIST (SUBSCRIBED) "" "*"'))
    assert set(sub) == default_subs | {"Fruit/Banana", "Ghost/Sub"}
    assert sub["Fruit/Banana"][0] >= {"\\Subscribed"}
    assert sub["Ghost/Sub"][0] >= {"\\Subscribed", "\\NonExistent"}
    rec = listing(c.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"'))
    assert rec["Fruit"][1] == '("CHILDINFO" ("SUBSCRIBED"))'
    assert "\\Subscribed" not in rec["Fruit"][0]
    assert rec["Ghost"][0] >= {"\\NonExistent"} and "CHILDINFO" in rec["Ghost"][1]
    rec = listing(c.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"'))
    assert "Fruit" not in rec                 # its subscribed child is listed itself
    ret = listing(c.ok('LIST "" "Fruit/*" RETURN (SUBSCRIBED CHILDREN)'))
    assert "\\Subscribed" in ret["Fruit/Banana"][0]
    assert "\\Subscribed" not in ret["Fruit/Apple"][0]
    assert "Ghost/Sub" not in names(c.ok('LIST "" "*"'))   # only a subscription
    c.ok("UNSUBSCRIBE Ghost/Sub")
    c.ok("UNSUBSCRIBE Ghost/Sub")             # not subscribed: still OK
    assert "Ghost/Sub" not in names(c.ok('LSUB "" "*"'), "LSUB")
    assert "Ghost" not in names(c.ok('LSUB "" "%"'), "LSUB")
    c.close()


def test_status_after_deliveries(server):
    user = new_user(server)
    c = Raw(server, user)
    st = status_of(c.ok("STATUS INBOX (MESSAGES UNSEEN UIDNEXT)"))["INBOX"]
    assert st == {"MESSAGES": 0, "UNSEEN": 0, "UIDNEXT": st["UIDNEXT"]}
    first_uidnext = st["UIDNEXT"]
    for i in range(3):
        deliver(server, user, "status %d" % i)
    msgs = server.wait_mail(user, 3)
    assert len(msgs) == 3
    items = "MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE"
    lines = c.ok("STATUS INBOX (%s)" % items)
    assert len(lines) == 1 and lines[0].startswith('* STATUS "INBOX" (MESSAGES 3 ')
    st = status_of(lines)["INBOX"]
    assert st["MESSAGES"] == 3 and st["UNSEEN"] == 3 and st["DELETED"] == 0
    assert st["RECENT"] == 3       # no session has been told of them yet
    assert st["SIZE"] == sum(m["size"] for m in msgs)
    assert st["UIDNEXT"] == max(m["uid"] for m in msgs) + 1 >= first_uidnext + 3
    assert st["UIDVALIDITY"] > 0
    assert status_of(c.ok("STATUS inbox (MESSAGES)")) == {"inbox": {"MESSAGES": 3}}
    assert status_of(c.ok("STATUS Drafts (MESSAGES SIZE)"))["Drafts"] == {"MESSAGES": 0, "SIZE": 0}
    assert status_of(c.ok("STATUS Drafts (APPENDLIMIT)"))["Drafts"]["APPENDLIMIT"] > 0
    c.no("STATUS Nowhere (MESSAGES)", "NONEXISTENT")
    c.bad("STATUS INBOX (MESSAGES BOGUS)")
    c.bad("STATUS INBOX (MODSEQ)")            # a FETCH item, not a status item
    c.bad("STATUS INBOX ()")
    c.bad("STATUS INBOX")
    c.close()


def test_list_status(server):
    user = new_user(server)
    deliver(server, user, "list-status")
    server.wait_mail(user, 1)
    c = Raw(server, user)
    c.ok("CREATE Box/Inner")
    c.ok("DELETE Box")                        # Box is now a \Noselect parent
    lines = c.ok('LIST "" "*" RETURN (CHILDREN STATUS (MESSAGES UNSEEN SIZE))')
    lists = listing(lines)
    stats = status_of(lines)
    assert set(stats) == set(lists) - {"Box"}  # no STATUS for a \Noselect name
    assert stats["INBOX"]["MESSAGES"] == 1 and stats["INBOX"]["UNSEEN"] == 1
    assert stats["Trash"] == {"MESSAGES": 0, "UNSEEN": 0, "SIZE": 0}
    # RFC 5819 §2: each STATUS response follows the LIST response of its mailbox.
    for i, line in enumerate(lines):
        if line.startswith("* STATUS "):
            name = re.match(r'\* STATUS "([^"]*)"', line).group(1)
            assert lines[i - 1].endswith('"/" "%s"' % name), lines[i - 1:i + 1]
    c.close()


def test_mailbox_names_modified_utf7_and_utf8(server):
    user = new_user(server)
    rev1 = Raw(server, user)
    entwuerfe = mutf7("Entwürfe")
    assert entwuerfe == "Entw&APw-rfe"
    rev1.ok('CREATE "%s"' % entwuerfe)
    rev1.ok('CREATE "R&-D"')                  # "&-" is a plain "&"
    got = names(rev1.ok('LIST "" "*"'))
    assert {"Entw&APw-rfe", "R&-D"} <= got
    rev1.no('CREATE "Bad&name"', "CANNOT")     # not modified UTF-7
    rev1.no('CREATE "Bad&AGE-"', "CANNOT")     # an encoded printable ASCII character
    # Raw 8-bit in a name from a rev1 client is refused.
    _, tagged = rev1.cmd('CREATE "Gr\u00fc\u00dfe"'.encode())
    assert " NO [CANNOT]" in tagged, tagged

    # UTF8=ACCEPT (RFC 6855): names in UTF-8 both ways.
    utf = Raw(server, user)
    lines = utf.ok("ENABLE UTF8=ACCEPT")
    assert "* ENABLED UTF8=ACCEPT" in lines
    got = names(utf.ok('LIST "" "*"'))
    assert {"Entwürfe", "R&D"} <= got and "Entw&APw-rfe" not in got
    utf.ok('CREATE "Grüße/日本"'.encode())
    st = status_of(utf.ok('STATUS "Grüße/日本" (MESSAGES)'.encode()))
    assert st == {"Grüße/日本": {"MESSAGES": 0}}
    assert names(utf.ok('LIST "" "Gr%"'.encode())) == {"Grüße"}
    utf.ok('SELECT "Grüße/日本"'.encode())
    utf.ok('RENAME "Entwürfe" "Brouillons/Entwürfe"'.encode())
    utf.close()

    # The rev1 session sees them in modified UTF-7, and can use that form.
    got = names(rev1.ok('LIST "" "*"'))
    assert {mutf7("Grüße"), mutf7("Grüße/日本"), mutf7("Brouillons/Entwürfe")} <= got
    assert mutf7("Grüße/日本") == "Gr&APwA3w-e/&ZeVnLA-"
    st = status_of(rev1.ok('STATUS "Gr&APwA3w-e/&ZeVnLA-" (MESSAGES)'))
    assert st == {"Gr&APwA3w-e/&ZeVnLA-": {"MESSAGES": 0}}
    assert names(rev1.ok('LIST "" "Gr&APwA3w-e/%"')) == {"Gr&APwA3w-e/&ZeVnLA-"}
    rev1.ok('DELETE "Gr&APwA3w-e/&ZeVnLA-"')
    rev1.close()

    # IMAP4rev2 sessions use UTF-8 too.
    v2 = Raw(server, user)
    v2.ok("ENABLE IMAP4rev2")
    assert "Brouillons/Entwürfe" in names(v2.ok('LIST "" "*"'))
    v2.close()


def test_imaplib_client(server):
    user = new_user(server)
    wait_imap(server)
    m = imaplib.IMAP4_SSL(HOST, imap_ports(server)[1], ssl_context=tls_ctx(), timeout=30)
    m.login(user, PASSWORD)
    assert m.create("Lib/Child")[0] == "OK"
    typ, data = m.list()
    assert typ == "OK"
    listed = [d.decode() for d in data]
    assert any(l.endswith('"/" "Lib/Child"') for l in listed), listed
    assert any("\\Drafts" in l and l.endswith('"Drafts"') for l in listed), listed
    typ, data = m.list("Lib/", "%")
    assert typ == "OK" and len(data) == 1 and b"Lib/Child" in data[0]
    assert m.subscribe("Lib/Child")[0] == "OK"
    typ, data = m.lsub('""', "Lib/*")
    assert typ == "OK" and b"Lib/Child" in data[0]
    assert m.unsubscribe("Lib/Child")[0] == "OK"
    assert m.rename("Lib", "Book")[0] == "OK"
    typ, data = m.status("Book/Child", "(MESSAGES UIDNEXT)")
    assert typ == "OK" and b"MESSAGES 0" in data[0]
    typ, data = m.create("Book")
    assert typ == "NO" and b"ALREADYEXISTS" in data[0]
    assert m.delete("Book/Child")[0] == "OK"
    assert m.delete("Book")[0] == "OK"
    typ, data = m.delete("Book")
    assert typ == "NO" and b"NONEXISTENT" in data[0]
    m.logout()


def test_capabilities_advertised(server):
    wait_imap(server)
    m = imaplib.IMAP4_SSL(HOST, imap_ports(server)[1], ssl_context=tls_ctx(), timeout=30)
    m.login(new_user(server), PASSWORD)
    typ, data = m.capability()             # the authenticated state's list
    caps = set(data[0].decode().upper().split())
    wanted = {"CHILDREN", "SPECIAL-USE", "CREATE-SPECIAL-USE", "LIST-EXTENDED", "LIST-STATUS",
              "STATUS=SIZE"}
    m.logout()
    if not wanted & caps:
        pytest.skip("mailbox capabilities not advertised yet")
    assert wanted <= caps
