"""QRESYNC (RFC 7162 §3.2): the capability, ENABLE QRESYNC (which enables CONDSTORE too),
SELECT/EXAMINE (QRESYNC (uidvalidity modseq [known-uids] [seq-match-data])) answering with
VANISHED (EARLIER) and FETCH for what changed since, BAD without ENABLE QRESYNC, VANISHED
instead of EXPUNGE once enabled (another session's expunge at NOOP and during IDLE, the
session's own EXPUNGE, UID EXPUNGE and MOVE), and UID FETCH (CHANGEDSINCE n VANISHED)."""

import itertools
import re

import pytest

from test_imap_condstore import PASSWORD, Raw, highest

# Store reads run on the store's reader threads (store_read(), the path PostgreSQL takes).
SERVER_CONF = {"store_read_threads": "2"}

_counter = itertools.count(1)


@pytest.fixture
def user(server):
    """A fresh account per test, so tests do not see each other's messages."""
    addr = "qr%d@example.test" % next(_counter)
    server.add_user(addr, PASSWORD)
    return addr


def append_n(server, user, n):
    """n messages into INBOX through APPEND (LITERAL+) on one connection."""
    r = Raw(server, user)
    for i in range(n):
        msg = b"From: a@remote.test\r\nTo: %s\r\nSubject: m%d\r\n\r\nBody %d.\r\n" % (
            user.encode(), i + 1, i + 1)
        out = r.cmd(b"APPEND INBOX {%d+}\r\n%s" % (len(msg), msg))
        assert out[-1].startswith(b"OK"), out
    r.close()


def uid_set(text):
    """The UIDs of an IMAP UID set ("3:5,9")."""
    out = set()
    for part in text.split(b","):
        lo, _, hi = part.partition(b":")
        lo, hi = int(lo), int(hi or lo)
        out.update(range(min(lo, hi), max(lo, hi) + 1))
    return out


def vanished(lines, earlier):
    """The UIDs of every VANISHED line ((EARLIER) ones when earlier, else the plain ones)."""
    pat = rb"\* VANISHED \(EARLIER\) ([0-9:,]+)\r\n" if earlier else rb"\* VANISHED ([0-9:,]+)\r\n"
    out = set()
    for l in lines:
        m = re.fullmatch(pat, l)
        if m:
            out |= uid_set(m.group(1))
    return out


def fetches(lines):
    """{uid: (flags, modseq)} of the untagged "FETCH (UID u FLAGS (...) MODSEQ (m))" lines."""
    out = {}
    for l in lines:
        m = re.fullmatch(rb"\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\) MODSEQ \((\d+)\)\)\r\n", l)
        if m:
            assert int(m.group(1)) not in out, lines
            out[int(m.group(1))] = (set(m.group(2).split()), int(m.group(3)))
    return out


def ok(r, text):
    out = r.cmd(text)
    assert out[-1].startswith(b"OK"), (text, out)
    return out


def enable(r):
    out = r.cmd(b"ENABLE QRESYNC")
    # With a mailbox selected, CONDSTORE's "* OK [HIGHESTMODSEQ n]" follows.
    if len(out) == 3:
        assert re.fullmatch(rb"\* OK \[HIGHESTMODSEQ \d+\] Highest\r\n", out.pop(1)), out
    assert out == [b"* ENABLED QRESYNC\r\n", b"OK ENABLE completed"], out


def state(r):
    """SELECT INBOX: (uidvalidity, highestmodseq, [uids])."""
    out = r.cmd(b"SELECT INBOX")
    assert out[-1].startswith(b"OK [READ-WRITE]"), out
    uv = int(re.search(rb"\[UIDVALIDITY (\d+)\]", b"".join(out)).group(1))
    search = r.cmd(b"UID SEARCH ALL")
    assert search[0].startswith(b"* SEARCH"), search
    uids = [int(x) for x in search[0].split()[2:]]
    return uv, highest(out), uids


def no_expunge(lines):
    assert not any(re.match(rb"\* \d+ EXPUNGE", l) for l in lines), lines


# ---------------------------------------------------------------- capability, ENABLE

def test_capability_and_enable(server, user):
    r = Raw(server, user)
    caps = r.cmd(b"CAPABILITY")[0]
    assert b" QRESYNC" in caps and b" CONDSTORE" in caps, caps
    enable(r)
    # QRESYNC enabled CONDSTORE (RFC 7162 §3.2.3): nothing new to enable, nothing listed.
    assert r.cmd(b"ENABLE CONDSTORE QRESYNC") == [b"* ENABLED\r\n", b"OK ENABLE completed"]
    r.close()


def test_qresync_parameter_and_vanished_modifier_need_enable(server, user):
    append_n(server, user, 2)
    r = Raw(server, user)
    out = r.cmd(b"SELECT INBOX (QRESYNC (1 1))")
    assert out[-1].startswith(b"BAD"), out
    assert not any(l.startswith(b"* ") for l in out[:-1]), out
    uv, hm, uids = state(r)
    out = r.cmd(b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    assert out[-1].startswith(b"BAD"), out
    enable(r)
    # VANISHED needs CHANGEDSINCE and UID FETCH; QRESYNC's own syntax is checked.
    for bad in (b"UID FETCH 1:* (FLAGS) (VANISHED)", b"FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",
                b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED VANISHED)",
                b"SELECT INBOX (QRESYNC (0 1))", b"SELECT INBOX (QRESYNC (%d))" % uv,
                b"SELECT INBOX (QRESYNC (%d x))" % uv, b"SELECT INBOX (QRESYNC (%d 1 1:*))" % uv,
                b"SELECT INBOX (QRESYNC (%d 1 1:5 (1:2)))" % uv,
                b"SELECT INBOX (QRESYNC (%d 1) QRESYNC (%d 1))" % (uv, uv),
                b"SELECT INBOX (QRESYNC)"):
        out = r.cmd(bad)
        assert out[-1].startswith(b"BAD"), (bad, out)
    r.close()


# ---------------------------------------------------------------- the acceptance case

def test_thunderbird_style_resync_after_100_flag_changes_and_50_expunges(server, user):
    append_n(server, user, 210)
    # What the client already knew: 10 expunges and a flag change before its MODSEQ.
    b = Raw(server, user)
    uv, _, uids = state(b)
    assert len(uids) == 210
    old_gone, uids = uids[:10], uids[10:]
    ok(b, b"UID STORE %d:%d +FLAGS.SILENT (\\Deleted)" % (old_gone[0], old_gone[-1]))
    ok(b, b"UID EXPUNGE %d:%d" % (old_gone[0], old_gone[-1]))
    ok(b, b"UID STORE %d +FLAGS.SILENT (\\Draft)" % uids[-1])

    # The client (Thunderbird-style) syncs, remembers UIDVALIDITY and HIGHESTMODSEQ, leaves.
    a = Raw(server, user)
    enable(a)
    out = a.cmd(b"SELECT INBOX")
    assert b"* 200 EXISTS\r\n" in out, out
    assert b"* OK [UIDVALIDITY %d] UIDs valid\r\n" % uv in out, out
    known_modseq = highest(out)
    a.close()

    # Another session: 100 flag changes (on messages that stay) and 50 expunges.
    changed, gone = uids[0:200:2], uids[1:100:2]
    assert len(changed) == 100 and len(gone) == 50 and not set(changed) & set(gone)
    want = {}
    for i, u in enumerate(changed):
        flag = [b"\\Seen", b"\\Flagged", b"\\Answered", b"$Label1"][i % 4]
        ok(b, b"UID STORE %d +FLAGS.SILENT (%s)" % (u, flag))
        want[u] = {flag} | ({b"\\Draft"} if u == uids[-1] else set())
    for u in gone:
        ok(b, b"UID STORE %d +FLAGS.SILENT (\\Deleted)" % u)
    ok(b, b"UID EXPUNGE %s" % b",".join(b"%d" % u for u in gone))
    now = highest(b.cmd(b"SELECT INBOX"))
    b.close()

    c = Raw(server, user)
    enable(c)
    out = c.cmd(b"SELECT INBOX (QRESYNC (%d %d))" % (uv, known_modseq))
    assert out[-1] == b"OK [READ-WRITE] SELECT completed", out
    assert b"* 150 EXISTS\r\n" in out, out
    assert highest(out) == now, out
    no_expunge(out)
    # Exactly the 50 UIDs expunged since (not the 10 the client saw go), before any FETCH.
    assert vanished(out, True) == set(gone), out
    first_fetch = min(i for i, l in enumerate(out) if b" FETCH " in l)
    assert max(i for i, l in enumerate(out) if l.startswith(b"* VANISHED")) < first_fetch
    # Exactly the 100 changed messages, each with its flags and a MODSEQ above the known one.
    got = fetches(out)
    assert set(got) == set(changed), sorted(set(got) ^ set(changed))
    for u, (flags, modseq) in got.items():
        assert flags == want[u] and known_modseq < modseq <= now, (u, flags, modseq)
    assert len([l for l in out if b" FETCH " in l]) == 100

    # Up to date: nothing at all.
    out = c.cmd(b"EXAMINE INBOX (QRESYNC (%d %d))" % (uv, now))
    assert not any(b"VANISHED" in l or b" FETCH " in l for l in out), out
    assert out[-1] == b"OK [READ-ONLY] EXAMINE completed", out

    # known-uids restricts both answers; seq-match-data is accepted (and not needed).
    lo, hi = uids[0], uids[59]
    seq_match = b"(1:3 %d,%d,%d)" % (uids[0], uids[2], uids[4])
    for params in (b"%d:%d" % (lo, hi), b"%d:%d %s" % (lo, hi, seq_match)):
        out = c.cmd(b"EXAMINE INBOX (QRESYNC (%d %d %s))" % (uv, known_modseq, params))
        assert out[-1].startswith(b"OK [READ-ONLY]"), out
        assert vanished(out, True) == {u for u in gone if lo <= u <= hi}, out
        assert set(fetches(out)) == {u for u in changed if lo <= u <= hi}, out

    # A different UIDVALIDITY: a plain SELECT, no VANISHED, no FETCH.
    out = c.cmd(b"SELECT INBOX (QRESYNC (%d %d))" % (uv + 1, known_modseq))
    assert out[-1] == b"OK [READ-WRITE] SELECT completed", out
    assert b"* 150 EXISTS\r\n" in out, out
    assert not any(b"VANISHED" in l or b" FETCH " in l for l in out), out
    c.close()


# ---------------------------------------------------------------- VANISHED instead of EXPUNGE

def test_live_session_gets_vanished_at_noop_and_idle(server, user):
    append_n(server, user, 6)
    a = Raw(server, user)
    b = Raw(server, user)
    plain = Raw(server, user)
    enable(b)
    _, _, uids = state(a)
    state(b)
    state(plain)
    ok(a, b"UID STORE %d,%d +FLAGS.SILENT (\\Deleted)" % (uids[1], uids[2]))
    ok(a, b"UID EXPUNGE %d,%d" % (uids[1], uids[2]))
    out = b.cmd(b"NOOP")
    assert out == [b"* VANISHED %d:%d\r\n" % (uids[1], uids[2]), b"OK NOOP completed"], out
    # A session without QRESYNC still gets EXPUNGE.
    out = plain.cmd(b"NOOP")
    assert out == [b"* 2 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n", b"OK NOOP completed"], out
    b.send(b"i1 IDLE\r\n")
    assert b.line() == b"+ idling\r\n"
    ok(a, b"UID STORE %d +FLAGS.SILENT (\\Deleted)" % uids[4])
    ok(a, b"EXPUNGE")
    b.sock.settimeout(5)
    # The \Deleted flag arrives first (its own commit), then the expunge.
    line = b.line()
    if b" FETCH " in line:
        assert b"UID %d " % uids[4] in line and b"\\Deleted" in line, line
        line = b.line()
    assert line == b"* VANISHED %d\r\n" % uids[4]
    b.send(b"DONE\r\n")
    assert b.line() == b"i1 OK IDLE terminated\r\n"
    # The view really shrank: 3 messages are left, numbered 1..3.
    out = b.cmd(b"FETCH 1:* (UID)")
    assert [int(re.search(rb"UID (\d+)", l).group(1)) for l in out[:-1]] == [
        uids[0], uids[3], uids[5]], out
    for s in (a, b, plain):
        s.close()


def test_own_expunge_uid_expunge_and_move_report_vanished(server, user):
    append_n(server, user, 8)
    r = Raw(server, user)
    enable(r)
    _, hm, uids = state(r)
    ok(r, b"CREATE Other")
    out = r.cmd(b"UID STORE %d,%d,%d +FLAGS.SILENT (\\Deleted)" % (uids[0], uids[1], uids[5]))
    assert out[-1].startswith(b"OK")
    out = r.cmd(b"EXPUNGE")
    no_expunge(out)
    assert out[:-1] == [b"* VANISHED %d:%d,%d\r\n" % (uids[0], uids[1], uids[5])], out
    # RFC 7162 §3.2.7: the tagged OK names the HIGHESTMODSEQ after the expunge.
    m = re.fullmatch(rb"OK \[HIGHESTMODSEQ (\d+)\] EXPUNGE completed", out[-1])
    assert m and int(m.group(1)) > hm, out
    ok(r, b"UID STORE %d +FLAGS.SILENT (\\Deleted)" % uids[7])
    out = r.cmd(b"UID EXPUNGE %d" % uids[7])
    assert out[0] == b"* VANISHED %d\r\n" % uids[7], out
    assert re.fullmatch(rb"OK \[HIGHESTMODSEQ \d+\] UID EXPUNGE completed", out[-1]), out
    out = r.cmd(b"UID MOVE %d:%d Other" % (uids[2], uids[3]))
    no_expunge(out)
    assert b"* VANISHED %d:%d\r\n" % (uids[2], uids[3]) in out, out
    assert out[-1].startswith(b"OK"), out
    out = r.cmd(b"FETCH 1:* (UID)")
    assert [int(re.search(rb"UID (\d+)", l).group(1)) for l in out[:-1]] == [
        uids[4], uids[6]], out
    r.close()


# ---------------------------------------------------------------- UID FETCH VANISHED

def test_uid_fetch_changedsince_vanished(server, user):
    append_n(server, user, 10)
    a = Raw(server, user)
    _, _, uids = state(a)
    r = Raw(server, user)
    enable(r)
    _, hm, _ = state(r)
    # Another session: expunge three, flag one; r catches up at NOOP.
    gone = [uids[1], uids[2], uids[7]]
    ok(a, b"UID STORE %s +FLAGS.SILENT (\\Deleted)" % b",".join(b"%d" % u for u in gone))
    ok(a, b"EXPUNGE")
    ok(a, b"UID STORE %d +FLAGS.SILENT (\\Flagged)" % uids[4])
    out = r.cmd(b"NOOP")
    assert vanished(out, False) == set(gone), out
    out = r.cmd(b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % hm)
    assert out[0] == b"* VANISHED (EARLIER) %d:%d,%d\r\n" % (uids[1], uids[2], uids[7]), out
    assert set(fetches(out)) == {uids[4]}, out
    assert out[-1] == b"OK UID FETCH completed", out
    # Only UIDs of the set are named.
    out = r.cmd(b"UID FETCH %d:%d (FLAGS) (CHANGEDSINCE %d VANISHED)" % (uids[2], uids[6], hm))
    assert vanished(out, True) == {uids[2]}, out
    # An item that sets \Seen (a store write after the tombstone read) still answers fully.
    r.send(b"x1 UID FETCH %d:%d (BODY[]) (CHANGEDSINCE %d VANISHED)\r\n" % (uids[0], uids[4], hm))
    assert r.line() == b"* VANISHED (EARLIER) %d:%d\r\n" % (uids[1], uids[2])
    line = r.line()
    want = rb"\* 3 FETCH \(UID %d .*\\Seen.*MODSEQ \(\d+\).*BODY\[\] \{\d+\}\r\n" % uids[4]
    assert re.match(want, line), line
    while not line.startswith(b"x1 "):
        line = r.line()
    assert line == b"x1 OK UID FETCH completed\r\n", line
    # Nothing expunged after the given MODSEQ: no VANISHED.
    now = highest(r.cmd(b"SELECT INBOX"))
    out = r.cmd(b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % now)
    assert out == [b"OK UID FETCH completed"], out
    a.close()
    r.close()


def test_owed_vanished_keeps_highestmodseq_below_it(server, user):
    """RFC 7162 §3.2: while a VANISHED is owed (none may be sent during SEARCH), a FETCH
    with a higher MODSEQ comes with HIGHESTMODSEQ just below the owed expunge's MODSEQ."""
    append_n(server, user, 3)
    a = Raw(server, user)
    _, _, uids = state(a)
    b = Raw(server, user)
    enable(b)
    _, hm, _ = state(b)
    ok(a, b"UID STORE %d +FLAGS.SILENT (\\Deleted)" % uids[0])
    ok(a, b"EXPUNGE")  # the tombstone's MODSEQ: hm + 2
    ok(a, b"UID STORE %d +FLAGS.SILENT (\\Flagged)" % uids[2])
    out = b.cmd(b"SEARCH ALL")
    assert out == [b"* 3 FETCH (UID %d FLAGS (\\Flagged) MODSEQ (%d))\r\n" % (uids[2], hm + 3),
                   b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % (hm + 1),
                   b"* SEARCH 1 2 3\r\n", b"OK SEARCH completed"], out
    out = b.cmd(b"NOOP")
    assert out == [b"* VANISHED %d\r\n" % uids[0], b"OK NOOP completed"], out
    a.close()
    b.close()


# ---------------------------------------------------------------- tombstone retention

def test_resync_older_than_pruned_tombstones_gets_every_gone_uid(server, user):
    """imap_expunge_retention: once `posthorn db prune` (the server's hourly pass, by hand)
    has removed tombstones, a client whose MODSEQ is below the highest pruned one (the
    mailbox's floor) gets every UID it knows that is gone in VANISHED (EARLIER), also UIDs
    expunged before its MODSEQ; SELECT, UID FETCH VANISHED and a live session's sync alike.
    A MODSEQ not below the floor still gets the exact list."""
    append_n(server, user, 8)
    a = Raw(server, user)
    uv, _, uids = state(a)
    assert uids == list(range(1, 9)), uids
    ok(a, b"UID STORE 1 +FLAGS.SILENT (\\Deleted)")
    ok(a, b"EXPUNGE")
    live = Raw(server, user)  # selected now, then silent until after the prune
    enable(live)
    _, hm, _ = state(live)
    ok(a, b"UID STORE 3:4 +FLAGS.SILENT (\\Deleted)")
    ok(a, b"EXPUNGE")
    hm2 = highest(a.cmd(b"SELECT INBOX"))
    ok(a, b"UID STORE 6 +FLAGS.SILENT (\\Flagged)")

    def resync(qresync):
        c = Raw(server, user)
        enable(c)
        out = c.cmd(b"SELECT INBOX (QRESYNC (%s))" % qresync)
        assert out[-1].startswith(b"OK [READ-WRITE]"), out
        return c, out

    c, out = resync(b"%d %d" % (uv, hm))  # tombstones kept: exactly what went since
    assert vanished(out, True) == {3, 4} and set(fetches(out)) == {6}, out
    c.close()

    p = server.cli("db", "prune", "--older-than", "0")
    assert re.match(r"removed (\d+) tombstones", p.stdout), p.stdout
    assert int(p.stdout.split()[1]) >= 3, p.stdout

    c, out = resync(b"%d %d" % (uv, hm))
    assert vanished(out, True) == {1, 3, 4} and set(fetches(out)) == {6}, out
    out = c.cmd(b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % hm)
    assert out[0] == b"* VANISHED (EARLIER) 1,3:4\r\n" and set(fetches(out)) == {6}, out
    out = c.cmd(b"UID FETCH 2:5 (FLAGS) (CHANGEDSINCE %d VANISHED)" % hm)
    assert out == [b"* VANISHED (EARLIER) 3:4\r\n", b"OK UID FETCH completed"], out
    c.close()
    c, out = resync(b"%d %d 1:2,4:5" % (uv, hm))  # only known UIDs are named
    assert vanished(out, True) == {1, 4}, out
    c.close()
    c, out = resync(b"%d %d" % (uv, hm2))  # at the floor: the exact list (nothing gone since)
    assert vanished(out, True) == set() and set(fetches(out)) == {6}, out
    c.close()

    # The session selected before the pruned expunges learns them at its next sync.
    out = live.cmd(b"NOOP")
    assert vanished(out, False) == {3, 4} and set(fetches(out)) == {6}, out
    assert out[-1].startswith(b"OK"), out
    assert live.cmd(b"UID SEARCH ALL")[0] == b"* SEARCH 2 5 6 7 8\r\n"
    live.close()
    a.close()
