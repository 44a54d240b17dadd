"""CONDSTORE (RFC 7162 §3.1): the capability, ENABLE CONDSTORE, HIGHESTMODSEQ in every
SELECT/EXAMINE and the (CONDSTORE) select parameter, STATUS (and LIST-STATUS) HIGHESTMODSEQ,
FETCH MODSEQ and (CHANGEDSINCE n), STORE (UNCHANGEDSINCE n) with OK [MODIFIED set], SEARCH
MODSEQ with (MODSEQ n) / ESEARCH MODSEQ, and MODSEQ in every unsolicited FETCH once a
session is CONDSTORE-aware (another session's STORE, seen at NOOP and during IDLE)."""

import itertools
import re
import smtplib

import pytest

from imap_helpers import Raw as RawClient
from conftest import HOST

# Store reads run on the store's reader threads (store_read(), the path PostgreSQL takes).
SERVER_CONF = {"store_read_threads": "2"}

PASSWORD = "cs-Secret-7"
_counter = itertools.count(1)


@pytest.fixture
def user(server):
    """A fresh account per test, so tests do not see each other's messages."""
    addr = "cs%d@example.test" % next(_counter)
    server.add_user(addr, PASSWORD)
    return addr


def deliver_n(server, user, n):
    for i in range(n):
        msg = "From: a@remote.test\r\nTo: %s\r\nSubject: message %d\r\n\r\nBody %d.\r\n" % (
            user, i + 1, i + 1)
        with smtplib.SMTP(HOST, server.smtp_port, timeout=10,
                          local_hostname="client.test") as s:
            s.sendmail("a@remote.test", [user], msg.encode())
    assert len(server.wait_mail(user, n)) == n


class Raw(RawClient):
    """The shared raw client, with this module's password."""

    def __init__(self, server, user=None):
        super().__init__(server, user, PASSWORD)


def modseqs(lines):
    """{seq: modseq} from the untagged FETCH lines that carry MODSEQ."""
    out = {}
    for l in lines:
        m = re.match(rb"\* (\d+) FETCH \(.*MODSEQ \((\d+)\)", l)
        if m:
            out[int(m.group(1))] = int(m.group(2))
    return out


def highest(lines):
    for l in lines:
        m = re.match(rb"\* OK \[HIGHESTMODSEQ (\d+)\]", l)
        if m:
            return int(m.group(1))
    return None


def select(r, params=b""):
    # Another session selects first and so takes \Recent (RFC 3501 §2.3.2): the flags
    # these tests compare are the stored ones.
    other = Raw(r.server, r.user)
    other.cmd(b"SELECT INBOX")
    other.close()
    out = r.cmd(b"SELECT INBOX" + params)
    assert out[-1].startswith(b"OK [READ-WRITE]"), out
    return out


# ---------------------------------------------------------------- capability, ENABLE

def test_capability_and_enable(server, user):
    r = Raw(server, user)
    caps = r.cmd(b"CAPABILITY")[0]
    assert b" CONDSTORE" in caps, caps
    assert r.cmd(b"ENABLE CONDSTORE") == [b"* ENABLED CONDSTORE\r\n", b"OK ENABLE completed"]
    # RFC 5161 §3.1: only what is newly enabled is listed.
    assert r.cmd(b"ENABLE CONDSTORE") == [b"* ENABLED\r\n", b"OK ENABLE completed"]
    r.close()


def test_enable_in_selected_state_reports_highestmodseq(server, user):
    deliver_n(server, user, 1)
    r = Raw(server, user)
    hm = highest(select(r))
    out = r.cmd(b"ENABLE CONDSTORE")
    assert out == [b"* ENABLED CONDSTORE\r\n", b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % hm,
                   b"OK ENABLE completed"], out
    r.close()


# ---------------------------------------------------------------- SELECT / EXAMINE / STATUS

def test_select_examine_highestmodseq_and_condstore_param(server, user):
    deliver_n(server, user, 2)
    r = Raw(server, user)
    # Without any enabling command: HIGHESTMODSEQ anyway, never NOMODSEQ.
    out = select(r)
    hm = highest(out)
    assert hm is not None and hm > 0, out
    assert not any(b"NOMODSEQ" in l for l in out)
    out = r.cmd(b"EXAMINE INBOX")
    assert out[-1].startswith(b"OK [READ-ONLY]") and highest(out) == hm, out
    # Not yet CONDSTORE-aware: a flag change reported without MODSEQ.
    assert r.cmd(b"SELECT INBOX")[-1].startswith(b"OK")
    out = r.cmd(b"STORE 1 +FLAGS (\\Seen)")
    assert out[0] == b"* 1 FETCH (FLAGS (\\Seen))\r\n", out
    # (CONDSTORE) enables: the STORE's FETCH now has UID and MODSEQ, above the old value.
    out = r.cmd(b"SELECT INBOX (CONDSTORE)")
    assert out[-1].startswith(b"OK [READ-WRITE]"), out
    hm2 = highest(out)
    assert hm2 == hm + 1
    out = r.cmd(b"STORE 2 +FLAGS (\\Seen)")
    assert re.match(rb"\* 2 FETCH \(UID \d+ FLAGS \(\\Seen\) MODSEQ \((\d+)\)\)\r\n", out[0]), out
    assert modseqs(out) == {2: hm2 + 1}
    out = r.cmd(b"EXAMINE INBOX (condstore)")
    assert out[-1].startswith(b"OK [READ-ONLY]") and highest(out) == hm2 + 1, out
    for bad in (b"SELECT INBOX ()", b"SELECT INBOX (QRESYNC)", b"SELECT INBOX CONDSTORE",
                b"EXAMINE INBOX (CONDSTORE) x"):
        assert r.cmd(bad)[-1].startswith(b"BAD"), bad
    r.close()


def test_status_and_list_status_highestmodseq(server, user):
    deliver_n(server, user, 1)
    r = Raw(server, user)
    out = r.cmd(b"STATUS INBOX (MESSAGES HIGHESTMODSEQ)")
    m = re.match(rb"\* STATUS \"INBOX\" \(MESSAGES 1 HIGHESTMODSEQ (\d+)\)\r\n", out[0])
    assert m and out[-1] == b"OK STATUS completed", out
    hm = int(m.group(1))
    assert re.match(rb"\* STATUS \"Drafts\" \(HIGHESTMODSEQ \d+\)\r\n",
                    r.cmd(b"STATUS Drafts (HIGHESTMODSEQ)")[0])
    # STATUS HIGHESTMODSEQ is an enabling command: the STORE after it reports MODSEQ.
    select(r)
    out = r.cmd(b"STORE 1 +FLAGS (\\Flagged)")
    assert modseqs(out) == {1: hm + 1}, out
    out = r.cmd(b"STATUS INBOX (HIGHESTMODSEQ)")
    assert out[0] == b"* STATUS \"INBOX\" (HIGHESTMODSEQ %d)\r\n" % (hm + 1), out
    out = r.cmd(b"LIST \"\" INBOX RETURN (STATUS (HIGHESTMODSEQ))")
    assert b"* STATUS \"INBOX\" (HIGHESTMODSEQ %d)\r\n" % (hm + 1) in out, out
    r.close()


# ---------------------------------------------------------------- FETCH

def test_fetch_modseq_and_changedsince(server, user):
    deliver_n(server, user, 3)
    r = Raw(server, user)
    hm = highest(select(r))
    out = r.cmd(b"FETCH 1:3 (MODSEQ)")
    # The first enabling command with a mailbox selected tells HIGHESTMODSEQ.
    assert out[0] == b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % hm, out
    base = modseqs(out)
    assert sorted(base) == [1, 2, 3] and max(base.values()) == hm, out
    assert all(re.match(rb"\* \d FETCH \(MODSEQ \(\d+\)\)\r\n", l) for l in out[1:-1]), out
    # Change message 2: only it has a MODSEQ above hm.
    out = r.cmd(b"STORE 2 +FLAGS.SILENT (\\Answered)")
    assert modseqs(out) == {2: hm + 1}, out
    out = r.cmd(b"FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % hm)
    assert len(out) == 2 and re.match(
        rb"\* 2 FETCH \(FLAGS \(\\Answered\) MODSEQ \(%d\)\)\r\n" % (hm + 1), out[0]), out
    out = r.cmd(b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % (hm + 1))
    assert out == [b"OK UID FETCH completed"], out
    out = r.cmd(b"FETCH 1:* (UID) (CHANGEDSINCE %d)" % base[1])
    assert [l.split()[1] for l in out[:-1]] == [b"2", b"3"], out
    for bad in (b"FETCH 1 (FLAGS) (CHANGEDSINCE 0)", b"FETCH 1 (FLAGS) (CHANGEDSINCE x)",
                b"FETCH 1 (FLAGS) (CHANGEDSINCE)", b"FETCH 1 (FLAGS) ()",
                b"FETCH 1 (FLAGS) (CHANGEDSINCE 1 CHANGEDSINCE 2)",
                b"FETCH 1 (FLAGS) (CHANGEDSINCE 99999999999999999999)",
                b"FETCH 1 (FLAGS) (VANISHED)"):
        assert r.cmd(bad)[-1].startswith(b"BAD"), bad
    r.close()


def test_fetch_implicit_seen_carries_uid_and_modseq(server, user):
    deliver_n(server, user, 1)
    r = Raw(server, user)
    assert r.cmd(b"ENABLE CONDSTORE")[-1].startswith(b"OK")
    hm = highest(select(r))
    out = r.cmd(b"FETCH 1 (BODY[TEXT])")
    assert re.match(rb"\* 1 FETCH \(UID \d+ FLAGS \(\\Seen\) MODSEQ \(%d\) BODY\[TEXT\]"
                    % (hm + 1), out[0]), out
    # The view took the new MODSEQ: NOOP reports nothing more.
    assert r.cmd(b"NOOP") == [b"OK NOOP completed"]
    assert modseqs(r.cmd(b"FETCH 1 (MODSEQ)")) == {1: hm + 1}
    r.close()


# ---------------------------------------------------------------- STORE UNCHANGEDSINCE

def test_store_unchangedsince_conflict(server, user):
    deliver_n(server, user, 3)
    a = Raw(server, user)
    b = Raw(server, user)
    select(a)
    select(b)
    ms = modseqs(a.cmd(b"FETCH 1:3 (MODSEQ)")[1:])
    uids = [int(re.search(rb"UID (\d+)", l).group(1)) for l in a.cmd(b"FETCH 1:3 (UID)")[:-1]]
    # b changes message 2 after a learned the MODSEQs.
    assert b.cmd(b"STORE 2 +FLAGS.SILENT (\\Flagged)")[-1] == b"OK STORE completed"
    # a's conditional STORE: 1 and 3 change, 2 fails the test and is left alone.
    out = a.cmd(b"STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % max(ms.values()))
    assert out[-1] == b"OK [MODIFIED 2] Conditional STORE failed", out
    got = modseqs(out)
    new = max(ms.values()) + 2  # b's change took one MODSEQ, a's the next
    assert got[1] == new and got[3] == new, out
    # Message 2 is reported as it is now (b's \Flagged, not \Seen), with b's MODSEQ.
    line2 = [l for l in out if l.startswith(b"* 2 FETCH")]
    assert line2 == [b"* 2 FETCH (UID %d FLAGS (\\Flagged) MODSEQ (%d))\r\n"
                     % (uids[1], new - 1)], out
    assert b.cmd(b"NOOP")[-1] == b"OK NOOP completed"
    flags = {l.split()[1]: l for l in b.cmd(b"FETCH 1:3 (FLAGS)")[:-1]}
    assert b"\\Seen" not in flags[b"2"], flags
    assert b"\\Seen" in flags[b"1"] and b"\\Seen" in flags[b"3"], flags
    # UID STORE: the MODIFIED set names UIDs; .SILENT still sends MODSEQ of what passed.
    out = a.cmd(b"UID STORE %d,%d (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Answered)"
                % (uids[0], uids[2], new - 1))
    assert out[-1] == b"OK [MODIFIED %d,%d] Conditional UID STORE failed" \
        % (uids[0], uids[2]), out
    out = a.cmd(b"UID STORE %d:%d (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Answered)"
                % (uids[0], uids[2], new))
    assert out[-1] == b"OK UID STORE completed", out
    assert modseqs(out) == {1: new + 1, 2: new + 1, 3: new + 1}, out
    assert all(re.match(rb"\* \d FETCH \(UID \d+ MODSEQ \(\d+\)\)\r\n", l) for l in out[:-1])
    # UNCHANGEDSINCE 0 always fails (RFC 7162 §3.1.3); ranges in the set.
    out = a.cmd(b"STORE 1:3 (UNCHANGEDSINCE 0) -FLAGS (\\Answered)")
    assert out[-1] == b"OK [MODIFIED 1:3] Conditional STORE failed", out
    assert not any(l.startswith(b"* ") and b"FETCH" in l for l in out[:-1]), out
    for bad in (b"STORE 1 (UNCHANGEDSINCE) +FLAGS (\\Seen)",
                b"STORE 1 (UNCHANGEDSINCE -1) +FLAGS (\\Seen)",
                b"STORE 1 (UNCHANGEDSINCE 1 UNCHANGEDSINCE 2) +FLAGS (\\Seen)",
                b"STORE 1 (FOO 1) +FLAGS (\\Seen)", b"STORE 1 () +FLAGS (\\Seen)"):
        assert a.cmd(bad)[-1].startswith(b"BAD"), bad
    a.close()
    b.close()


def test_store_unchangedsince_expunged_elsewhere(server, user):
    deliver_n(server, user, 2)
    a = Raw(server, user)
    b = Raw(server, user)
    hm = highest(select(a))
    select(b)
    assert b.cmd(b"STORE 1 +FLAGS.SILENT (\\Deleted)")[-1].startswith(b"OK")
    assert b.cmd(b"EXPUNGE")[-1].startswith(b"OK")
    # a still sees message 1 (no EXPUNGE during STORE): it failed the test as well.
    out = a.cmd(b"STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % hm)
    assert out[-1] == b"OK [MODIFIED 1] Conditional STORE failed", out
    assert [l for l in out if l.startswith(b"* 2 FETCH")], out
    out = a.cmd(b"NOOP")
    assert b"* 1 EXPUNGE\r\n" in out, out
    a.close()
    b.close()


# ---------------------------------------------------------------- another session's changes

def test_other_sessions_store_carries_modseq_at_noop_and_idle(server, user):
    deliver_n(server, user, 2)
    a = Raw(server, user)
    b = Raw(server, user)
    select(a)
    hm = highest(select(b, b" (CONDSTORE)"))
    uids = [int(re.search(rb"UID (\d+)", l).group(1)) for l in b.cmd(b"FETCH 1:2 (UID)")[:-1]]
    assert a.cmd(b"STORE 2 +FLAGS (\\Seen)")[-1] == b"OK STORE completed"
    out = b.cmd(b"NOOP")
    assert out == [b"* 2 FETCH (UID %d FLAGS (\\Seen) MODSEQ (%d))\r\n" % (uids[1], hm + 1),
                   b"OK NOOP completed"], out
    b.send(b"i1 IDLE\r\n")
    assert b.line() == b"+ idling\r\n"
    assert a.cmd(b"STORE 1 +FLAGS.SILENT (\\Flagged)")[-1] == b"OK STORE completed"
    b.sock.settimeout(5)
    assert b.line() == b"* 1 FETCH (UID %d FLAGS (\\Flagged) MODSEQ (%d))\r\n" % (
        uids[0], hm + 2)
    b.send(b"DONE\r\n")
    assert b.line() == b"i1 OK IDLE terminated\r\n"
    # A change that ends where it began moves only the MODSEQ: still news to b.
    assert a.cmd(b"STORE 1 -FLAGS.SILENT (\\Flagged)")[-1].startswith(b"OK")
    assert a.cmd(b"STORE 1 +FLAGS.SILENT (\\Flagged)")[-1].startswith(b"OK")
    out = b.cmd(b"NOOP")
    assert out == [b"* 1 FETCH (UID %d FLAGS (\\Flagged) MODSEQ (%d))\r\n" % (uids[0], hm + 4),
                   b"OK NOOP completed"], out
    # a never enabled CONDSTORE: its NOOP shows b-side changes without MODSEQ.
    assert b.cmd(b"STORE 2 -FLAGS.SILENT (\\Seen)")[-1].startswith(b"OK")
    out = a.cmd(b"NOOP")
    assert b"* 2 FETCH (UID %d FLAGS ())\r\n" % uids[1] in out, out
    a.close()
    b.close()


# ---------------------------------------------------------------- SEARCH

def test_search_modseq(server, user):
    deliver_n(server, user, 4)
    r = Raw(server, user)
    hm = highest(select(r))
    assert r.cmd(b"STORE 2,4 +FLAGS.SILENT (\\Seen)")[-1].startswith(b"OK")
    out = r.cmd(b"SEARCH MODSEQ %d" % (hm + 1))
    assert out[0] == b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % (hm + 1), out
    assert out[1] == b"* SEARCH 2 4 (MODSEQ %d)\r\n" % (hm + 1), out
    # The entry-name form is accepted and ignored (one MODSEQ per message).
    out = r.cmd(b"SEARCH MODSEQ \"/flags/\\\\seen\" all %d" % (hm + 1))
    assert out[0] == b"* SEARCH 2 4 (MODSEQ %d)\r\n" % (hm + 1), out
    ms = modseqs(r.cmd(b"FETCH 1:4 (MODSEQ)"))
    out = r.cmd(b"SEARCH MODSEQ \"/flags/$Junk\" priv 0 UNSEEN")
    assert out[0] == b"* SEARCH 1 3 (MODSEQ %d)\r\n" % max(ms[1], ms[3]), out
    # No match: no MODSEQ part.
    assert r.cmd(b"SEARCH MODSEQ %d" % (hm + 5))[0] == b"* SEARCH\r\n"
    # Without a MODSEQ key: plain.
    assert r.cmd(b"SEARCH SEEN")[0] == b"* SEARCH 2 4\r\n"
    # ESEARCH: MODSEQ of all returned, or of MIN/MAX alone.
    assert r.cmd(b"STORE 1 +FLAGS.SILENT (\\Draft)")[-1].startswith(b"OK")
    out = r.cmd(b"SEARCH RETURN (ALL) MODSEQ 1")
    assert out[0] == b"* ESEARCH (TAG \"t%d\") ALL 1:4 MODSEQ %d\r\n" % (r.n, hm + 2), out
    out = r.cmd(b"SEARCH RETURN (MAX) MODSEQ 1")
    assert out[0] == b"* ESEARCH (TAG \"t%d\") MAX 4 MODSEQ %d\r\n" % (r.n, hm + 1), out
    out = r.cmd(b"UID SEARCH RETURN (COUNT) MODSEQ %d" % (hm + 10))
    assert out[0] == b"* ESEARCH (TAG \"t%d\") UID COUNT 0\r\n" % r.n, out
    for bad in (b"SEARCH MODSEQ", b"SEARCH MODSEQ x", b"SEARCH MODSEQ \"/flags/\\\\seen\" 5",
                b"SEARCH MODSEQ \"/x/y\" all 5", b"SEARCH MODSEQ \"/flags/a\" some 5",
                b"SEARCH MODSEQ 99999999999999999999"):
        assert r.cmd(bad)[-1].startswith(b"BAD"), bad
    r.close()
