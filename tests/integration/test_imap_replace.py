"""IMAP REPLACE and UID REPLACE (RFC 8508): one message appended to a mailbox and one of the
selected mailbox expunged in one store transaction. The untagged OK [APPENDUID] comes first,
then EXPUNGE (VANISHED once QRESYNC is enabled) and EXISTS; refusals leave the old message in
place: [TRYCREATE], [OVERQUOTA] (the replaced message's octets count as freed), [TOOBIG],
[READ-ONLY], a message expunged meanwhile ([EXPUNGEISSUED]), bad message numbers (BAD)."""

import itertools
import re

from imap_helpers import Raw as RawClient

PASSWORD = "replace-Secret-5"
SERVER_CONF = {"store_read_threads": "2"}
_counter = itertools.count(1)


def fresh_user(server, quota=None):
    addr = "rp%d@example.test" % next(_counter)
    server.add_user(addr, PASSWORD, quota=quota)
    return addr


def draft(subject, pad=0):
    return (b"From: a@example.test\r\nSubject: %s\r\n\r\n" % subject) + b"y" * pad + b"body\r\n"


class Raw(RawClient):
    def __init__(self, server, user):
        super().__init__(server, user, PASSWORD)

    def replace(self, cmd, box, msg, flags=b""):
        """The response lines without IMAP4rev1's RECENT."""
        out = self.cmd(b"%s %s %s{%d+}\r\n" % (cmd, box, flags, len(msg)) + msg)
        return [l for l in out if not l.endswith(b" RECENT\r\n")]

    def uids(self):
        out = self.cmd(b"UID SEARCH ALL")
        return [int(x) for x in out[0].split()[2:]]

    def subjects(self):
        out = self.cmd(b"FETCH 1:* BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
        return re.findall(rb"Subject: (\S+)", b"".join(out))


def drafts(server, *subjects):
    """A new user's session with the given drafts appended and Drafts selected:
    (user, session)."""
    user = fresh_user(server)
    r = Raw(server, user)
    for subject in subjects:
        assert r.append(b"Drafts", draft(subject)).startswith(b"OK")
    assert r.select(b"Drafts") == len(subjects)
    return user, r


def test_capability(server):
    r = Raw(server, fresh_user(server))
    assert b"REPLACE" in r.cmd(b"CAPABILITY")[0].split()
    r.close()


def test_replace_in_the_same_mailbox(server):
    user, r = drafts(server, b"d1", b"d2", b"d3")
    watcher = Raw(server, user)
    watcher.cmd(b"SELECT Drafts")
    out = r.replace(b"REPLACE 2", b"Drafts", draft(b"d2new"), b"(\\Draft) ")
    assert out[0].startswith(b"* OK [APPENDUID "), out
    assert out[0].endswith(b" 4] Replacement Message ID\r\n"), out
    assert out[1:] == [b"* 2 EXPUNGE\r\n", b"* 3 EXISTS\r\n", b"OK REPLACE completed"], out
    assert r.uids() == [1, 3, 4]
    assert r.subjects() == [b"d1", b"d3", b"d2new"]
    assert b"FLAGS (\\Draft" in r.cmd(b"UID FETCH 4 FLAGS")[0]
    # Another session on the mailbox learns both changes.
    seen = b"".join(watcher.cmd(b"NOOP"))
    assert b"* 2 EXPUNGE\r\n" in seen and b"* 3 EXISTS\r\n" in seen, seen
    r.close()
    watcher.close()


def test_uid_replace_into_another_mailbox_with_qresync(server):
    user = fresh_user(server)
    r = Raw(server, user)
    for s in (b"a", b"b"):
        assert r.append(b"Drafts", draft(s)).startswith(b"OK")
    r.cmd(b"ENABLE QRESYNC")
    r.select(b"Drafts")
    out = r.replace(b"UID REPLACE 1", b"Sent", draft(b"sent-a"))
    assert re.match(rb"\* OK \[APPENDUID \d+ 1\] Replacement Message ID\r\n", out[0]), out
    assert out[1:] == [b"* VANISHED 1\r\n", b"OK REPLACE completed"], out
    assert r.uids() == [2]
    st = b"".join(r.cmd(b"STATUS Sent (MESSAGES)"))
    assert b"MESSAGES 1" in st, st
    r.close()


def test_trycreate_and_the_old_message_stays(server):
    _, r = drafts(server, b"keep")
    out = r.replace(b"REPLACE 1", b"Nowhere", draft(b"x"))
    assert out == [b"NO [TRYCREATE] The mailbox does not exist"], out
    assert r.uids() == [1]
    assert r.subjects() == [b"keep"]
    r.close()


def test_replacing_an_expunged_message(server):
    user, r = drafts(server, b"gone")
    # Another session expunges it; this session's view still has it (no NOOP yet).
    other = Raw(server, user)
    other.cmd(b"SELECT Drafts")
    other.cmd(b"STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert other.cmd(b"EXPUNGE")[-1].startswith(b"OK")
    other.close()
    out = r.replace(b"UID REPLACE 1", b"Drafts", draft(b"new"))
    assert out[-1].startswith(b"NO [EXPUNGEISSUED]"), out
    # Nothing was appended.
    r.cmd(b"NOOP")
    assert r.uids() == []
    # A UID that never was there.
    assert r.replace(b"UID REPLACE 99", b"Drafts", draft(b"n"))[-1].startswith(b"NO ")
    assert r.uids() == []
    r.close()


def test_bad_numbers_and_read_only(server):
    _, r = drafts(server, b"one")
    assert r.replace(b"REPLACE 2", b"Drafts", draft(b"x"))[-1] == b"BAD Invalid sequence number"
    assert r.replace(b"REPLACE 0", b"Drafts", draft(b"x"))[-1].startswith(b"BAD")
    assert r.replace(b"REPLACE 1:2", b"Drafts", draft(b"x"))[-1].startswith(b"BAD")
    assert r.cmd(b"EXAMINE Drafts")[-1].startswith(b"OK [READ-ONLY]")
    assert r.replace(b"REPLACE 1", b"Drafts", draft(b"x"))[-1].startswith(b"NO [READ-ONLY]")
    assert r.cmd(b"UNSELECT")[-1].startswith(b"OK")
    # Not in the authenticated state.
    assert r.replace(b"REPLACE 1", b"Drafts", draft(b"x"))[-1].startswith(b"BAD")
    r.cmd(b"SELECT Drafts")
    assert r.uids() == [1]
    r.close()


def test_quota_counts_the_replaced_message_as_freed(server):
    user = fresh_user(server, quota="2K")
    r = Raw(server, user)
    assert r.append(b"Drafts", draft(b"big", 1500)).startswith(b"OK")
    # APPEND of another 1000 octets does not fit ...
    assert r.append(b"Drafts", draft(b"more", 1000)).startswith(b"NO [OVERQUOTA]")
    r.select(b"Drafts")
    # ... REPLACE of the 1500-octet draft with a 1600-octet one does.
    out = r.replace(b"REPLACE 1", b"Drafts", draft(b"bigger", 1600))
    assert out[-1] == b"OK REPLACE completed", out
    # One that would go over even so is refused, and the old draft stays.
    out = r.replace(b"REPLACE 1", b"Drafts", draft(b"huge", 2500))
    assert out[-1] == b"NO [OVERQUOTA] Quota exceeded", out
    assert r.subjects() == [b"bigger"]
    r.close()


def test_toobig_before_the_literal(server):
    _, r = drafts(server, b"one")
    tag = r.tag()
    r.send(tag + b" REPLACE 1 Drafts {4000000000}\r\n")
    lines, status = r.until(tag)
    assert status.startswith(b"NO [TOOBIG]"), (lines, status)
    assert r.uids() == [1]
    r.close()
