"""UIDONLY (RFC 9586), MESSAGELIMIT (RFC 9738), CATENATE (RFC 4469) and URLAUTH/BURL (RFC
4467, RFC 4468) against one live server: what another session changes reaches a UIDONLY
session as UIDFETCH and VANISHED; the conversation script 17-uidonly.conv covers the
commands refused with [UIDREQUIRED]."""

import itertools
import re
import smtplib

from conftest import HOST
from imap_helpers import Raw

PASSWORD = "late-Secret-7"
LIMIT = 4
SERVER_CONF = {"imap_message_limit": str(LIMIT)}
_counter = itertools.count(1)


def fresh_user(server):
    addr = "lx%d@example.test" % next(_counter)
    server.add_user(addr, PASSWORD)
    return addr


def msg(subject, body=b"body\r\n"):
    return b"From: a@example.test\r\nSubject: %s\r\n\r\n" % subject + body


def test_uidonly_unsolicited_changes(server):
    user = fresh_user(server)
    a = Raw(server, user, PASSWORD)
    for i in range(3):
        assert a.append(b"INBOX", msg(b"m%d" % i)).startswith(b"OK")
    assert a.cmd(b"ENABLE UIDONLY")[0] == b"* ENABLED UIDONLY\r\n"
    a.cmd(b"SELECT INBOX")
    b = Raw(server, user, PASSWORD)
    b.cmd(b"SELECT INBOX")
    b.cmd(b"STORE 2 +FLAGS (\\Flagged)")
    b.cmd(b"STORE 1 +FLAGS (\\Deleted)")
    b.cmd(b"EXPUNGE")
    out = a.cmd(b"NOOP")
    assert out[-1].startswith(b"OK"), out
    assert b"* VANISHED 1\r\n" in out, out
    assert any(l.startswith(b"* 2 UIDFETCH (FLAGS (") and b"\\Flagged" in l for l in out), out
    assert not any(b" FETCH " in l or l.endswith(b" EXPUNGE\r\n") for l in out), out
    # with CONDSTORE the unsolicited UIDFETCH carries MODSEQ, still no UID item
    a.cmd(b"ENABLE CONDSTORE")
    b.cmd(b"STORE 1 +FLAGS (\\Seen)")  # UID 2 is number 1 for b now
    out = a.cmd(b"NOOP")
    line = [l for l in out if b"UIDFETCH" in l]
    assert len(line) == 1 and line[0].startswith(b"* 2 UIDFETCH (FLAGS (") and \
        b"MODSEQ (" in line[0] and b"UID " not in line[0], out
    # "$" is no message number: a saved result is usable
    assert a.cmd(b"UID SEARCH RETURN (SAVE) ALL")[-1].startswith(b"OK")
    out = a.cmd(b"UID FETCH $ (FLAGS)")
    assert [l.split()[1] for l in out[:-1]] == [b"2", b"3"], out
    assert a.cmd(b"UID SEARCH $")[0] == b"* SEARCH 2 3\r\n"
    a.close()
    b.close()


def test_messagelimit(server):
    user = fresh_user(server)
    a = Raw(server, user, PASSWORD)
    assert b"MESSAGELIMIT=%d" % LIMIT in a.cmd(b"CAPABILITY")[0].split()
    for i in range(6):
        assert a.append(b"INBOX", msg(b"m%d" % i)).startswith(b"OK")
    assert a.cmd(b"CREATE Other")[-1].startswith(b"OK")
    a.cmd(b"SELECT INBOX")
    # by message number: NO, nothing done
    assert a.cmd(b"FETCH 1:* (FLAGS)") == [b"NO [MESSAGELIMIT 4] Too many messages at once"]
    assert a.cmd(b"STORE 1:5 +FLAGS (\\Seen)")[-1].startswith(b"NO [MESSAGELIMIT 4]")
    assert a.cmd(b"COPY 1:* Other")[-1].startswith(b"NO [MESSAGELIMIT 4]")
    assert a.cmd(b"UID SEARCH SEEN")[0] == b"* SEARCH\r\n"
    assert len(a.cmd(b"FETCH 1:4 (FLAGS)")) == 5
    # UID forms: the lowest UIDs, then OK [MESSAGELIMIT n]
    out = a.cmd(b"UID FETCH 2:* (FLAGS)")
    assert [l.split()[4] for l in out[:-1]] == [b"2", b"3", b"4", b"5"], out
    assert out[-1].startswith(b"OK [MESSAGELIMIT 4] UID FETCH completed"), out
    out = a.cmd(b"UID STORE 1:* +FLAGS.SILENT (\\Seen)")
    assert out[-1].startswith(b"OK [MESSAGELIMIT 4]"), out
    assert a.cmd(b"UID SEARCH SEEN")[0] == b"* SEARCH 1 2 3 4\r\n"
    out = a.cmd(b"UID COPY 1:* Other")  # COPYUID keeps the tagged code
    assert out[-2].startswith(b"* OK [MESSAGELIMIT 4]"), out
    assert re.match(rb"OK \[COPYUID \d+ 1:4 1:4\]", out[-1]), out
    out = a.cmd(b"UID MOVE 2:* Other")
    assert out[-1].startswith(b"OK [MESSAGELIMIT 4]"), out
    assert any(re.match(rb"\* OK \[COPYUID \d+ 2:5 5:8\]", l) for l in out), out
    assert a.cmd(b"UID SEARCH ALL")[0] == b"* SEARCH 1 6\r\n"
    a.close()
