"""IMAP commands that change messages: STORE (every form, keywords, .SILENT), EXPUNGE and
UID EXPUNGE, COPY/MOVE with COPYUID (RFC 4315, RFC 6851), and APPEND (sync literals,
LITERAL+, literal8, a streamed 3 MiB message, MULTIAPPEND, APPENDUID, OVERQUOTA, TRYCREATE,
a 2 GB announcement refused before any continuation). Changes reach a second session at its
next NOOP and at once while it IDLEs."""

import base64
import imaplib
import itertools
import re
import smtplib
import time

import pytest

from imap_helpers import Raw as RawClient, imap_ports, tls_ctx, wait_imap
from conftest import HOST

# Store reads run on the store's reader threads (store_read(), the path PostgreSQL takes):
# every command here answers from the read's completion, not in place.
SERVER_CONF = {"store_read_threads": "2"}

PASSWORD = "msg-Secret-9"
_counter = itertools.count(1)






@pytest.fixture
def user(server):
    """A fresh account per test, so tests do not see each other's messages."""
    addr = "m%d@example.test" % next(_counter)
    server.add_user(addr, PASSWORD)
    return addr


def deliver(server, user, subject, body="Hello IMAP.\r\n"):
    msg = "From: a@remote.test\r\nTo: %s\r\nSubject: %s\r\n\r\n%s" % (user, subject, body)
    with smtplib.SMTP(HOST, server.smtp_port, timeout=10, local_hostname="client.test") as s:
        s.sendmail("a@remote.test", [user], msg.encode())


def deliver_n(server, user, n):
    for i in range(n):
        deliver(server, user, "message %d" % (i + 1), "Body %d.\r\n" % (i + 1))
    assert len(server.wait_mail(user, n)) == n


def login(server, user):
    wait_imap(server)
    m = imaplib.IMAP4_SSL(HOST, imap_ports(server)[1], ssl_context=tls_ctx(), timeout=30)
    m.login(user, PASSWORD)
    return m


class Raw(RawClient):
    """The shared raw client, with this module's password."""

    def __init__(self, server, user=None):
        super().__init__(server, user, PASSWORD)


def fetch_flags(m, seq):
    typ, data = m.fetch(str(seq), "(FLAGS)")
    assert typ == "OK"
    return set(imaplib.ParseFlags(data[0]))


# ---------------------------------------------------------------- STORE

def test_store_forms_keywords_and_silent(server, user):
    deliver_n(server, user, 3)
    r = Raw(server, user)
    assert r.select() == 3
    out = r.cmd(b"STORE 1 +FLAGS (\\Seen)")
    assert out == [b"* 1 FETCH (FLAGS (\\Seen))\r\n", b"OK STORE completed"], out
    out = r.cmd(b"STORE 1:2 +FLAGS (\\Flagged $Label1)")
    assert out[0] == b"* 1 FETCH (FLAGS (\\Seen \\Flagged $Label1))\r\n", out
    assert out[1] == b"* 2 FETCH (FLAGS (\\Flagged $Label1))\r\n", out
    assert out[-1] == b"OK STORE completed"
    out = r.cmd(b"STORE 1 -FLAGS (\\Seen $Label1)")
    assert out == [b"* 1 FETCH (FLAGS (\\Flagged))\r\n", b"OK STORE completed"], out
    # Space-separated flags without parentheses (RFC 9051 §6.4.6 grammar).
    out = r.cmd(b"STORE 3 FLAGS \\Answered \\Draft")
    assert out == [b"* 3 FETCH (FLAGS (\\Answered \\Draft))\r\n", b"OK STORE completed"], out
    out = r.cmd(b"STORE 3 FLAGS ()")
    assert out == [b"* 3 FETCH (FLAGS ())\r\n", b"OK STORE completed"], out
    # .SILENT: no untagged FETCH, and the change is real.
    out = r.cmd(b"STORE 2:3 +FLAGS.SILENT (\\Deleted)")
    assert out == [b"OK STORE completed"], out
    out = r.cmd(b"FETCH 1:3 (FLAGS)")
    assert out[:3] == [b"* 1 FETCH (FLAGS (\\Flagged))\r\n",
                       b"* 2 FETCH (FLAGS (\\Flagged \\Deleted $Label1))\r\n",
                       b"* 3 FETCH (FLAGS (\\Deleted))\r\n"], out
    out = r.cmd(b"STORE 2:3 -FLAGS.SILENT (\\Deleted)")
    assert out == [b"OK STORE completed"], out
    # The session's own change is not reported again at the next NOOP.
    assert r.cmd(b"NOOP") == [b"OK NOOP completed"]
    # UID STORE names the UID in its FETCH responses.
    uids = [m["uid"] for m in server.mail_list(user)]
    out = r.cmd(b"UID STORE %d +FLAGS (\\Answered)" % uids[1])
    assert out == [b"* 2 FETCH (UID %d FLAGS (\\Answered \\Flagged $Label1))\r\n" % uids[1],
                   b"OK UID STORE completed"], out
    out = r.cmd(b"UID STORE 999999 +FLAGS (\\Seen)")   # no such UID: nothing, OK
    assert out == [b"OK UID STORE completed"], out
    r.close()


def test_store_errors(server, user):
    deliver_n(server, user, 2)
    r = Raw(server, user)
    r.select()
    assert r.cmd(b"STORE 1 +FLAGS (\\Recent)")[-1].startswith(b"BAD")
    assert r.cmd(b"STORE 1 +FLAGS (\\Bogus)")[-1].startswith(b"BAD")
    assert r.cmd(b"STORE 1 +FLAGS (bad\"kw)")[-1].startswith(b"BAD")
    assert r.cmd(b"STORE 1 FROBNICATE (\\Seen)")[-1].startswith(b"BAD")
    assert r.cmd(b"STORE 5 +FLAGS (\\Seen)")[-1].startswith(b"BAD")
    assert r.cmd(b"STORE 0 +FLAGS (\\Seen)")[-1].startswith(b"BAD")
    out = r.cmd(b"EXAMINE INBOX")
    assert out[-1].startswith(b"OK [READ-ONLY]")
    out = r.cmd(b"STORE 1 +FLAGS (\\Seen)")
    assert out[-1].startswith(b"NO [READ-ONLY]"), out
    assert r.cmd(b"EXPUNGE")[-1].startswith(b"NO [READ-ONLY]")
    assert r.cmd(b"MOVE 1 Archive")[-1].startswith(b"NO [READ-ONLY]")
    # COPY from a read-only mailbox is fine.
    assert r.cmd(b"COPY 1 Archive")[-1].startswith(b"OK [COPYUID ")
    r.close()


def test_imaplib_store_and_fetch(server, user):
    deliver_n(server, user, 2)
    m = login(server, user)
    m.select("INBOX")
    typ, data = m.store("1:2", "+FLAGS", "(\\Seen \\Flagged)")
    assert typ == "OK" and len(data) == 2
    # new mail seen first by this IMAP4rev1 session is \Recent too
    assert fetch_flags(m, 1) - {b"\\Recent"} == {b"\\Seen", b"\\Flagged"}
    m.store("2", "-FLAGS.SILENT", "(\\Seen)")
    assert fetch_flags(m, 2) - {b"\\Recent"} == {b"\\Flagged"}
    m.logout()


# ---------------------------------------------------------------- live updates

def test_flags_reach_other_session_at_noop_and_during_idle(server, user):
    deliver_n(server, user, 2)
    a = Raw(server, user)
    b = Raw(server, user)
    a.select()
    b.select()
    uids = [m["uid"] for m in server.mail_list(user)]
    # At the next NOOP.
    assert a.cmd(b"STORE 2 +FLAGS (\\Seen)")[-1] == b"OK STORE completed"
    out = b.cmd(b"NOOP")
    assert out == [b"* 2 FETCH (UID %d FLAGS (\\Seen))\r\n" % uids[1], b"OK NOOP completed"], out
    # At once during IDLE.
    b.send(b"i1 IDLE\r\n")
    assert b.line() == b"+ idling\r\n"
    start = time.monotonic()
    assert a.cmd(b"STORE 1 +FLAGS.SILENT (\\Flagged)")[-1] == b"OK STORE completed"
    b.sock.settimeout(3)
    assert b.line() == b"* 1 FETCH (UID %d FLAGS (\\Flagged))\r\n" % uids[0]
    assert time.monotonic() - start < 1.5
    b.send(b"DONE\r\n")
    assert b.line() == b"i1 OK IDLE terminated\r\n"
    # The other session's EXPUNGE reaches b with the right numbers.
    assert a.cmd(b"STORE 1 +FLAGS.SILENT (\\Deleted)")[-1].startswith(b"OK")
    assert a.cmd(b"EXPUNGE") == [b"* 1 EXPUNGE\r\n", b"OK EXPUNGE completed"]
    out = b.cmd(b"NOOP")
    assert b"* 1 EXPUNGE\r\n" in out and out[-1] == b"OK NOOP completed", out
    assert b.cmd(b"FETCH 1 (UID)")[0] == b"* 1 FETCH (UID %d)\r\n" % uids[1]
    a.close()
    b.close()


# ---------------------------------------------------------------- EXPUNGE

def test_expunge_sequence_numbers(server, user):
    deliver_n(server, user, 5)
    r = Raw(server, user)
    assert r.select() == 5
    uids = [m["uid"] for m in server.mail_list(user)]
    assert r.cmd(b"STORE 2,4 +FLAGS.SILENT (\\Deleted)")[-1].startswith(b"OK")
    out = r.cmd(b"EXPUNGE")
    # Descending numbers: each is right when the client reads it.
    assert out == [b"* 4 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n", b"OK EXPUNGE completed"], out
    left = [m["uid"] for m in server.mail_list(user)]
    assert left == [uids[0], uids[2], uids[4]]
    # Nothing \Deleted: OK with no responses.
    assert r.cmd(b"EXPUNGE") == [b"OK EXPUNGE completed"]
    # UID EXPUNGE removes only \Deleted messages inside its set (RFC 4315 §2.1).
    assert r.cmd(b"STORE 1:3 +FLAGS.SILENT (\\Deleted)")[-1].startswith(b"OK")
    out = r.cmd(b"UID EXPUNGE %d" % uids[2])
    assert out == [b"* 2 EXPUNGE\r\n", b"OK UID EXPUNGE completed"], out
    assert [m["uid"] for m in server.mail_list(user)] == [uids[0], uids[4]]
    out = r.cmd(b"UID EXPUNGE %d:%d" % (uids[0], uids[4]))
    assert out == [b"* 2 EXPUNGE\r\n", b"* 1 EXPUNGE\r\n", b"OK UID EXPUNGE completed"], out
    assert server.mail_list(user) == []
    assert r.cmd(b"UID EXPUNGE")[-1].startswith(b"BAD")
    r.close()


def test_imaplib_expunge(server, user):
    deliver_n(server, user, 3)
    m = login(server, user)
    m.select("INBOX")
    m.store("1,3", "+FLAGS", "(\\Deleted)")
    typ, data = m.expunge()
    assert typ == "OK" and data == [b"3", b"1"]
    typ, data = m.select("INBOX")
    assert data == [b"1"]
    m.logout()


# ---------------------------------------------------------------- COPY / MOVE

def test_copy_copyuid_and_identical_bytes(server, user):
    deliver_n(server, user, 3)
    r = Raw(server, user)
    r.select()
    src = [m["uid"] for m in server.mail_list(user)]
    assert r.cmd(b"STORE 1 +FLAGS.SILENT (\\Flagged $Work)")[-1].startswith(b"OK")
    out = r.cmd(b"COPY 1:2 Archive")
    m = re.match(rb"OK \[COPYUID (\d+) (\S+) (\S+)\] COPY completed$", out[-1])
    assert m, out
    assert m.group(2) == b"%d:%d" % (src[0], src[1])
    dst = [x["uid"] for x in server.mail_list(user, "Archive")]
    assert len(dst) == 2
    assert m.group(3) == b"%d:%d" % (dst[0], dst[1])
    for s_uid, d_uid in zip(src, dst):
        assert server.mail_cat(user, d_uid, "Archive") == server.mail_cat(user, s_uid)
    # Flags come along; the source is untouched.
    out = r.cmd(b"EXAMINE Archive")
    assert out[-1].startswith(b"OK [READ-ONLY]")
    uidvalidity = [l for l in out if b"UIDVALIDITY" in l][0]
    assert b"[UIDVALIDITY %s]" % m.group(1) in uidvalidity
    out = r.cmd(b"FETCH 1 (FLAGS)")
    # EXAMINE shows the copies \Recent: no session has selected Archive yet
    assert out[0] == b"* 1 FETCH (FLAGS (\\Flagged \\Recent $Work))\r\n", out
    r.select()
    assert len(server.mail_list(user)) == 3
    # A copy into the selected mailbox itself shows as EXISTS.
    out = r.cmd(b"COPY 3 INBOX")
    assert b"* 4 EXISTS\r\n" in out and out[-1].startswith(b"OK [COPYUID "), out
    # UID COPY of UIDs that do not exist: OK without COPYUID.
    assert r.cmd(b"UID COPY 999999 Archive") == [b"OK UID COPY completed"]
    r.close()


def test_copy_trycreate_and_bad_set(server, user):
    deliver_n(server, user, 1)
    r = Raw(server, user)
    r.select()
    out = r.cmd(b"COPY 1 No/Such/Box")
    assert out[-1].startswith(b"NO [TRYCREATE]"), out
    out = r.cmd(b"MOVE 1 Nowhere")
    assert out[-1].startswith(b"NO [TRYCREATE]"), out
    assert len(server.mail_list(user)) == 1
    assert r.cmd(b"COPY 2 Archive")[-1].startswith(b"BAD")
    assert r.cmd(b"COPY 1")[-1].startswith(b"BAD")
    r.close()


def test_move(server, user):
    deliver_n(server, user, 4)
    r = Raw(server, user)
    r.select()
    src = [m["uid"] for m in server.mail_list(user)]
    body = server.mail_cat(user, src[2])
    out = r.cmd(b"MOVE 2:3 Trash")
    assert out[0].startswith(b"* OK [COPYUID "), out
    m = re.match(rb"\* OK \[COPYUID \d+ (\S+) (\S+)\]", out[0])
    assert m.group(1) == b"%d:%d" % (src[1], src[2])
    assert out[1:] == [b"* 3 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n", b"OK MOVE completed"], out
    assert [x["uid"] for x in server.mail_list(user)] == [src[0], src[3]]
    moved = server.mail_list(user, "Trash")
    assert m.group(2) == b"%d:%d" % (moved[0]["uid"], moved[1]["uid"])
    assert server.mail_cat(user, moved[1]["uid"], "Trash") == body
    out = r.cmd(b"UID MOVE %d Trash" % src[3])
    assert out[0].startswith(b"* OK [COPYUID ") and out[1] == b"* 2 EXPUNGE\r\n", out
    assert out[-1] == b"OK UID MOVE completed"
    assert r.cmd(b"FETCH 1 (UID)")[0] == b"* 1 FETCH (UID %d)\r\n" % src[0]
    r.close()


def test_imaplib_copy_move(server, user):
    deliver_n(server, user, 2)
    m = login(server, user)
    m.select("INBOX")
    typ, data = m.copy("1", "Archive")
    assert typ == "OK" and b"COPYUID" in data[0]
    typ, data = m._simple_command("MOVE", "1", "Archive")
    assert typ == "OK"
    typ, data = m.select("INBOX")
    assert data == [b"1"]
    typ, data = m.select("Archive")
    assert data == [b"2"]
    m.logout()


# ---------------------------------------------------------------- APPEND

MSG = b"From: me@example.test\r\nSubject: appended\r\n\r\nAppended body.\r\n"


def appenduid(status):
    m = re.match(rb"OK \[APPENDUID (\d+) (\S+)\] APPEND completed$", status)
    assert m, status
    return int(m.group(1)), m.group(2)


def test_append_sync_literal_flags_and_date(server, user):
    r = Raw(server, user)
    r.send(b"a1 APPEND INBOX (\\Seen $Todo) \"05-Mar-2021 10:20:30 +0200\" {%d}\r\n" % len(MSG))
    assert r.line() == b"+ OK\r\n"
    r.send(MSG + b"\r\n")
    lines, status = r.until(b"a1")
    validity, uid = appenduid(status)
    stored = server.mail_list(user)
    assert [m["uid"] for m in stored] == [int(uid)]
    assert server.mail_cat(user, int(uid)) == MSG
    assert stored[0]["subject"] == "appended"
    r.select()
    out = r.cmd(b"FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)")
    assert b"FLAGS (\\Seen $Todo)" in out[0], out
    assert b'INTERNALDATE " 5-Mar-2021 08:20:30 +0000"' in out[0], out
    assert b"RFC822.SIZE %d" % len(MSG) in out[0]
    r.close()


def test_append_literal_plus_and_literal8(server, user):
    r = Raw(server, user)
    r.send(b"a1 APPEND INBOX {%d+}\r\n" % len(MSG) + MSG + b"\r\n")
    lines, status = r.until(b"a1")
    assert lines == [], lines
    _, uid1 = appenduid(status)
    binary = b"From: me@example.test\r\nSubject: bin\r\n\r\nNUL\x00here\r\n"
    r.send(b"a2 APPEND INBOX ~{%d}\r\n" % len(binary))
    assert r.line() == b"+ OK\r\n"
    r.send(binary + b"\r\n")
    _, status = r.until(b"a2")
    _, uid2 = appenduid(status)
    assert server.mail_cat(user, int(uid1)) == MSG
    assert server.mail_cat(user, int(uid2)) == binary
    # A NUL in a plain literal is refused (RFC 9051 §9: CHAR8).
    r.send(b"a3 APPEND INBOX {%d+}\r\n" % len(binary) + binary + b"\r\n")
    _, status = r.until(b"a3")
    assert status.startswith(b"BAD"), status
    assert len(server.mail_list(user)) == 2
    r.close()


def test_append_3mib_streamed(server, user):
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n"
    body = line * (3 * 1024 * 1024 // len(line) + 1)
    msg = b"From: me@example.test\r\nSubject: big\r\n\r\n" + body
    assert len(msg) > 3 * 1024 * 1024
    m = login(server, user)
    typ, data = m.append("INBOX", None, None, msg)
    assert typ == "OK" and b"APPENDUID" in data[0], data
    uid = int(data[0].split()[2].rstrip(b"]"))
    assert server.mail_cat(user, uid) == msg
    m.select("INBOX")
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == msg
    m.logout()


def test_fetch_parts_of_a_large_message(server, user):
    """A 900 KiB message (on PostgreSQL: four chunk rows, of which a FETCH of the header or
    of a <partial> window reads only what it needs): every part comes back exact, alone and
    together with others."""
    attachment = bytes(range(256)) * 2600
    b64 = base64.encodebytes(attachment).replace(b"\n", b"\r\n")
    header = (b"From: a@remote.test\r\nTo: %s\r\nSubject: large parts\r\n"
              b"Message-ID: <large@remote.test>\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" % user.encode())
    text = b"".join(b"text line %05d\r\n" % i for i in range(4000))
    body = (b"--b1\r\nContent-Type: text/plain\r\n\r\n" + text +
            b"\r\n--b1\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 + b"\r\n--b1--\r\n")
    msg = header + body
    assert len(msg) > 900 * 1024
    m = login(server, user)
    assert m.append("INBOX", None, None, msg)[0] == "OK"
    assert m.append("INBOX", None, None, msg.replace(b"large parts", b"second copy"))[0] == "OK"
    m.select("INBOX", readonly=True)

    def one(item, seq=b"1"):
        typ, data = m.fetch(seq, "(%s)" % item)
        assert typ == "OK", data
        return [d[1] for d in data if isinstance(d, tuple)]

    assert one("BODY.PEEK[HEADER]") == [header]
    assert one("BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID)]") == [
        b"Subject: large parts\r\nMessage-ID: <large@remote.test>\r\n\r\n"]
    assert one("BODY.PEEK[]<600000.1000>") == [msg[600000:601000]]
    assert one("BODY.PEEK[]<%d.100>" % (len(msg) - 10)) == [msg[-10:]]
    # Two windows and the header in one FETCH, of both messages.
    second = msg.replace(b"large parts", b"second copy")
    got = one("BODY.PEEK[]<10.20> BODY.PEEK[]<700000.30> BODY.PEEK[HEADER]", b"1:2")
    assert got == [msg[10:30], msg[700000:700030], header,
                   second[10:30], second[700000:700030], second[:len(header)]]
    typ, data = m.fetch("1:2", "(ENVELOPE RFC822.SIZE)")
    assert b'"large parts"' in data[0] and b'"second copy"' in data[1]
    assert b"RFC822.SIZE %d" % len(msg) in data[0]
    # What needs all of it.
    assert one("BODY.PEEK[TEXT]") == [body]
    assert one("BODY.PEEK[1]") == [text]
    assert one("BODY.PEEK[2]") == [b64]
    assert one("BINARY.PEEK[2]") == [attachment]
    assert one("BODY.PEEK[]") == [msg]
    typ, data = m.fetch("1", "(BODYSTRUCTURE)")
    assert b'("application" "octet-stream" NIL NIL NIL "base64" %d ' % len(b64) in data[0]
    m.logout()


def test_multiappend(server, user):
    r = Raw(server, user)
    m2 = MSG.replace(b"appended", b"second")
    m3 = MSG.replace(b"appended", b"third")
    r.send(b"a1 APPEND INBOX (\\Seen) {%d}\r\n" % len(MSG))
    assert r.line() == b"+ OK\r\n"
    r.send(MSG + b" (\\Flagged) \"01-Jan-2020 00:00:00 +0000\" {%d}\r\n" % len(m2))
    assert r.line() == b"+ OK\r\n"
    r.send(m2 + b" {%d+}\r\n" % len(m3) + m3 + b"\r\n")
    _, status = r.until(b"a1")
    _, uids = appenduid(status)
    first, last = map(int, uids.split(b":"))
    assert last == first + 2
    stored = server.mail_list(user)
    assert [x["uid"] for x in stored] == [first, first + 1, first + 2]
    assert [server.mail_cat(user, u) for u in (first, first + 1, first + 2)] == [MSG, m2, m3]
    r.select()
    out = r.cmd(b"FETCH 1:3 (FLAGS)")
    assert out[:3] == [b"* 1 FETCH (FLAGS (\\Seen))\r\n", b"* 2 FETCH (FLAGS (\\Flagged))\r\n",
                       b"* 3 FETCH (FLAGS ())\r\n"], out
    r.close()


def test_append_to_selected_mailbox_gives_exists(server, user):
    deliver_n(server, user, 1)
    r = Raw(server, user)
    assert r.select() == 1
    r.send(b"a1 APPEND INBOX {%d+}\r\n" % len(MSG) + MSG + b"\r\n")
    lines, status = r.until(b"a1")
    assert lines == [b"* 2 EXISTS\r\n", b"* 1 RECENT\r\n"], lines
    appenduid(status)
    # To another mailbox: no EXISTS here.
    r.send(b"a2 APPEND Drafts (\\Draft) {%d+}\r\n" % len(MSG) + MSG + b"\r\n")
    lines, status = r.until(b"a2")
    assert lines == [], lines
    appenduid(status)
    assert len(server.mail_list(user, "Drafts")) == 1
    r.close()


def test_append_trycreate_before_continuation(server, user):
    r = Raw(server, user)
    r.send(b"a1 APPEND No/Such {%d}\r\n" % len(MSG))
    assert r.line().startswith(b"a1 NO [TRYCREATE]")
    # Non-synchronizing: the octets are read (and dropped), then the command is refused.
    r.send(b"a2 APPEND Nowhere {%d+}\r\n" % len(MSG) + MSG + b"\r\n")
    _, status = r.until(b"a2")
    assert status.startswith(b"NO [TRYCREATE]"), status
    assert r.cmd(b"NOOP") == [b"OK NOOP completed"]
    r.close()


def test_append_bad_arguments(server, user):
    r = Raw(server, user)
    for args in (b"(\\Recent)", b"(\\Seen) \"31-Feb-2021 10:00:00 +0000\"",
                 b"\"1-Foo-2021 10:00:00 +0000\"", b"\"01-Jan-2021 10:00 +0000\""):
        r.send(b"b1 APPEND INBOX " + args + b" {%d+}\r\n" % len(MSG) + MSG + b"\r\n")
        _, status = r.until(b"b1")
        assert status.startswith(b"BAD"), (args, status)
    r.send(b"b2 APPEND INBOX {0+}\r\n\r\n")
    _, status = r.until(b"b2")
    assert status.startswith(b"NO"), status
    assert r.cmd(b"APPEND INBOX")[-1].startswith(b"BAD")
    assert server.mail_list(user) == []
    # A single-digit day (" 5-Mar-2021") is accepted.
    r.send(b"b3 APPEND INBOX \" 5-Mar-2021 10:20:30 -0130\" {%d+}\r\n" % len(MSG) + MSG + b"\r\n")
    _, status = r.until(b"b3")
    appenduid(status)
    r.close()


def test_append_overquota(server, user):
    server.cli("user", "quota", user, "10K")
    big = b"From: me@example.test\r\nSubject: big\r\n\r\n" + b"x" * 12000 + b"\r\n"
    r = Raw(server, user)
    # Synchronizing: refused before the continuation.
    r.send(b"a1 APPEND INBOX {%d}\r\n" % len(big))
    assert r.line().startswith(b"a1 NO [OVERQUOTA]")
    # Non-synchronizing: the octets are read (and dropped), then the command is refused.
    r.send(b"a2 APPEND INBOX {%d+}\r\n" % len(big) + big + b"\r\n")
    _, status = r.until(b"a2")
    assert status.startswith(b"NO [OVERQUOTA]"), status
    # MULTIAPPEND is all or nothing.
    half = b"From: me@example.test\r\nSubject: half\r\n\r\n" + b"y" * 6000 + b"\r\n"
    r.send(b"a3 APPEND INBOX {%d+}\r\n" % len(half) + half + b" {%d+}\r\n" % len(half) +
           half + b"\r\n")
    _, status = r.until(b"a3")
    assert status.startswith(b"NO [OVERQUOTA]"), status
    assert server.mail_list(user) == []
    # One fits; a COPY of it does not.
    r.send(b"a4 APPEND INBOX {%d+}\r\n" % len(half) + half + b"\r\n")
    _, status = r.until(b"a4")
    appenduid(status)
    r.select()
    out = r.cmd(b"COPY 1 Archive")
    assert out[-1].startswith(b"NO [OVERQUOTA]"), out
    r.close()


def test_append_2gb_refused_before_continuation(server, user):
    r = Raw(server, user)
    r.send(b"a1 APPEND INBOX (\\Seen) {2147483648}\r\n")
    line = r.line()
    assert line.startswith(b"a1 NO [TOOBIG]"), line
    # The connection stays usable: nothing of the refused command lingers.
    assert r.cmd(b"NOOP") == [b"OK NOOP completed"]
    r.send(b"a2 APPEND INBOX {%d}\r\n" % len(MSG))
    assert r.line() == b"+ OK\r\n"
    r.send(MSG + b"\r\n")
    _, status = r.until(b"a2")
    appenduid(status)
    # A non-synchronizing one cannot be refused before it is sent: the server says BYE.
    r.send(b"a3 APPEND INBOX {2147483648+}\r\n")
    assert r.line().startswith(b"* BYE [TOOBIG]")
    r.close()
    # A MULTIAPPEND whose second message is too large: nothing is stored.
    r = Raw(server, user)
    r.send(b"a1 APPEND INBOX {%d}\r\n" % len(MSG))
    assert r.line() == b"+ OK\r\n"
    r.send(MSG + b" {2147483648}\r\n")
    assert r.line().startswith(b"a1 NO [TOOBIG]")
    assert r.cmd(b"NOOP") == [b"OK NOOP completed"]
    assert len(server.mail_list(user)) == 1
    r.close()


def test_imaplib_append(server, user):
    m = login(server, user)
    typ, data = m.append("Drafts", "(\\Draft \\Seen)",
                         imaplib.Time2Internaldate(1600000000), MSG)
    assert typ == "OK" and b"APPENDUID" in data[0]
    typ, data = m.append("No/Such/Box", None, None, MSG)
    assert typ == "NO" and b"[TRYCREATE]" in data[0]
    m.select("Drafts")
    typ, data = m.fetch("1", "(FLAGS INTERNALDATE BODY.PEEK[])")
    assert b"\\Draft" in data[0][0] and b"\\Seen" in data[0][0]
    assert imaplib.Internaldate2tuple(data[0][0]) == time.localtime(1600000000)
    assert data[0][1] == MSG
    m.logout()


def spool_files(server):
    return sorted(p.name for p in (server.dir / "data" / "tmp").iterdir())


def test_spool_files_are_removed(server, user):
    before = spool_files(server)
    r = Raw(server, user)
    # Refused after the octets: NUL in a plain literal, a syntax error after the literal.
    r.send(b"a1 APPEND INBOX {3+}\r\na\x00b\r\n")
    assert r.until(b"a1")[1].startswith(b"BAD")
    r.send(b"a2 APPEND INBOX {%d+}\r\n" % len(MSG) + MSG + b" ((\r\n")
    assert r.until(b"a2")[1].startswith(b"BAD")
    # A connection that goes away in the middle of a literal.
    r.send(b"a3 APPEND INBOX {1000000}\r\n")
    assert r.line() == b"+ OK\r\n"
    r.send(b"x" * 300000)
    time.sleep(0.3)
    r.close()
    deadline = time.monotonic() + 5
    while spool_files(server) != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert spool_files(server) == before
    assert server.mail_list(user) == []


def test_append_before_login_is_not_streamed(server):
    before = spool_files(server)
    r = Raw(server)
    r.send(b"a1 APPEND INBOX {5}\r\n")
    assert r.line().startswith(b"+ ")    # an ordinary small literal, kept in memory
    r.send(b"hello\r\n")
    assert r.line() == b"a1 BAD Not logged in\r\n"
    r.send(b"a2 APPEND INBOX {20000000}\r\n")
    assert r.line().startswith(b"a2 NO [TOOBIG]")
    assert spool_files(server) == before
    r.close()


def test_fetch_body_sets_seen(server, user):
    deliver_n(server, user, 4)
    r = Raw(server, user)
    r.select()
    uids = [m["uid"] for m in server.mail_list(user)]
    # .PEEK and RFC822.HEADER leave \Seen alone.
    out = r.cmd(b"FETCH 1 (BODY.PEEK[] RFC822.HEADER)")
    assert b"FLAGS" not in out[0] and out[-1] == b"OK FETCH completed", out
    assert r.cmd(b"FETCH 1 (FLAGS)")[0] == b"* 1 FETCH (FLAGS ())\r\n"
    # BODY[TEXT] sets it, and the response says so.
    out = r.cmd(b"FETCH 1 (BODY[TEXT])")
    assert out[0].startswith(b"* 1 FETCH (FLAGS (\\Seen) BODY[TEXT] {"), out
    assert out[-1] == b"OK FETCH completed"
    # Already seen: no FLAGS added.
    out = r.cmd(b"FETCH 1 (BODY[TEXT])")
    assert out[0].startswith(b"* 1 FETCH (BODY[TEXT] {"), out
    out = r.cmd(b"UID FETCH %d:%d (RFC822)" % (uids[1], uids[2]))
    assert out[0].startswith(b"* 2 FETCH (UID %d FLAGS (\\Seen) RFC822 {" % uids[1]), out
    assert out[1].startswith(b"* 3 FETCH (UID %d FLAGS (\\Seen) RFC822 {" % uids[2]), out
    # Not reported a second time by the next NOOP.
    assert r.cmd(b"NOOP") == [b"OK NOOP completed"]
    assert [m["flags"] for m in server.mail_list(user)] == ["\\Seen"] * 3 + ["-"]
    # Read-only: nothing changes.
    r.cmd(b"EXAMINE INBOX")
    out = r.cmd(b"FETCH 4 (BODY[])")
    assert b"FLAGS" not in out[0], out
    assert r.cmd(b"FETCH 4 (FLAGS)")[0] == b"* 4 FETCH (FLAGS ())\r\n"
    r.close()
