"""UIDONLY (RFC 9586), MESSAGELIMIT (RFC 9738), CATENATE (RFC 4469) and URLAUTH/BURL (RFC
4467, RFC 4468) against one live server: what another session changes reaches a UIDONLY
session as UIDFETCH and VANISHED; the conversation script 17-uidonly.conv covers the
commands refused with [UIDREQUIRED]."""

import itertools
import smtplib

from conftest import HOST
from imap_helpers import Raw

PASSWORD = "late-Secret-7"
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
