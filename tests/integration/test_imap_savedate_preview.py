"""IMAP SAVEDATE (RFC 8514) and PREVIEW (RFC 8970). SAVEDATE: the time a message was saved
into its mailbox (APPEND and delivery: now, whatever the internal date; COPY and MOVE: a new
one), FETCH SAVEDATE and SEARCH SAVEDBEFORE/SAVEDON/SAVEDSINCE/SAVEDATESUPPORTED. PREVIEW:
computed at delivery and APPEND from the first text part (transfer encoding and charset
decoded, HTML without tags, white space collapsed, at most 256 characters), FETCH PREVIEW
and PREVIEW (LAZY); for a message stored without one (before the migration) it is
computed on FETCH PREVIEW and NIL with LAZY."""

import datetime
import glob
import itertools
import os
import re
import sqlite3
import subprocess
import time

from imap_helpers import Raw as RawClient
from conftest import HOST, send_message

PASSWORD = "savedate-Secret-2"
SERVER_CONF = {"store_read_threads": "2"}
_counter = itertools.count(1)


def fresh_user(server):
    addr = "sd%d@example.test" % next(_counter)
    server.add_user(addr, PASSWORD)
    return addr


def msg(subject, body=b"body", headers=b""):
    return (b"From: a@example.test\r\nSubject: %s\r\n%s\r\n" % (subject, headers)) + body


class Raw(RawClient):
    def __init__(self, server, user):
        super().__init__(server, user, PASSWORD)

    def fetch1(self, items, seq=b"1"):
        out = self.cmd(b"FETCH %s %s" % (seq, items))
        assert out[-1].startswith(b"OK"), out
        return out[0]

    def preview(self, seq=b"1", lazy=False):
        line = self.fetch1(b"(PREVIEW (LAZY))" if lazy else b"(PREVIEW)", seq)
        m = re.match(rb"\* \d+ FETCH \(PREVIEW (NIL|\"((?:[^\"\\]|\\.)*)\"|\{(\d+)\}\r\n)", line)
        assert m, line
        if m.group(1) == b"NIL":
            return None
        if m.group(3) is not None:
            start = m.end()
            return line[start:start + int(m.group(3))].decode()
        return re.sub(rb"\\(.)", rb"\1", m.group(2)).decode()


def imap_date(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%d-%b-%Y").encode()


def savedate(r, seq=b"1"):
    line = r.fetch1(b"(SAVEDATE)", seq)
    m = re.search(rb'SAVEDATE "([^"]+)"', line)
    assert m, line
    return datetime.datetime.strptime(m.group(1).decode().strip(), "%d-%b-%Y %H:%M:%S %z")


def test_capabilities(server):
    r = Raw(server, fresh_user(server))
    caps = r.cmd(b"CAPABILITY")[0].split()
    assert b"SAVEDATE" in caps and b"PREVIEW" in caps, caps
    r.close()


def test_savedate_append_copy_and_search(server):
    r = Raw(server, fresh_user(server))
    before = time.time()
    out = r.cmd(b'APPEND INBOX "01-Jan-2000 10:00:00 +0000" {%d+}\r\n' % len(msg(b"old"))
                + msg(b"old"))
    assert out[-1].startswith(b"OK"), out
    r.select()
    saved = savedate(r)
    # Saved now, not at the internal date.
    assert abs(saved.timestamp() - before) < 10, saved
    assert b'INTERNALDATE " 1-Jan-2000 10:00:00 +0000"' in r.fetch1(b"INTERNALDATE")
    today = imap_date(before)
    assert r.cmd(b"SEARCH SAVEDON " + today)[0] == b"* SEARCH 1\r\n"
    assert r.cmd(b"SEARCH SAVEDSINCE " + today)[0] == b"* SEARCH 1\r\n"
    assert r.cmd(b"SEARCH SAVEDBEFORE 1-Jan-2001")[0] == b"* SEARCH\r\n"
    assert r.cmd(b"SEARCH BEFORE 1-Jan-2001")[0] == b"* SEARCH 1\r\n"
    assert r.cmd(b"SEARCH SAVEDATESUPPORTED")[0] == b"* SEARCH 1\r\n"
    assert r.cmd(b"SEARCH SAVEDON 1-Jan-2000")[0] == b"* SEARCH\r\n"
    assert r.cmd(b"SEARCH SAVEDBEFORE notadate")[-1].startswith(b"BAD")
    # A copy is saved into its new mailbox when it is copied.
    time.sleep(1.1)
    assert r.cmd(b"COPY 1 Archive")[-1].startswith(b"OK")
    r.select(b"Archive")
    assert savedate(r) > saved
    r.close()


def test_delivery_has_savedate_and_preview(server):
    user = fresh_user(server)
    body = (b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n")
    send_message(server.smtp_port, "s@remote.example", [user],
                 msg(b"delivered", b"Caf=C3=A9   au\r\n\r\n\tlait=\r\n !\r\n", body) + b".\r\n")
    server.wait_mail(user, 1)
    r = Raw(server, user)
    r.select()
    assert r.preview() == "Café au lait !"
    assert r.preview(lazy=True) == "Café au lait !"
    assert abs(savedate(r).timestamp() - time.time()) < 30
    r.close()


HTML = (b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n", b"""--b\r
Content-Type: text/plain\r
Content-Disposition: attachment; filename=a.txt\r
\r
not this one\r
--b\r
Content-Type: text/html; charset=iso-8859-1\r
\r
<html><head><title>T</title><style>p {color: red}</style></head><body>\r
<p>Gr\xfc&szlig;e &amp; <b>hello</b><br>world&#33; &lt;3</p><script>x()</script><!-- c -->end</body></html>\r
--b--\r
""")


def test_preview_html_attachment_skipped(server):
    r = Raw(server, fresh_user(server))
    assert r.append(b"INBOX", msg(b"html", HTML[1], HTML[0])).startswith(b"OK")
    r.select()
    # iso-8859-1 decoded; tags, comments, <style>, <script> gone; &szlig; is not one we
    # know, so it stays as text.
    assert r.preview() == "Grü&szlig;e & hello world! <3 end"
    r.close()


def test_preview_length_and_empty(server):
    r = Raw(server, fresh_user(server))
    words = b" ".join(b"w%03d" % i for i in range(100))  # 499 characters
    assert r.append(b"INBOX", msg(b"long", words + b"\r\n")).startswith(b"OK")
    assert r.append(b"INBOX", msg(b"empty", b"  \r\n\r\n")).startswith(b"OK")
    b64 = (b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: base64\r\n")
    assert r.append(b"INBOX", msg(b"b64", b"w6TDtsO8IMOfIOKCrA==\r\n", b64)).startswith(b"OK")
    r.select()
    p = r.preview(b"1")
    assert len(p) == 256 and words.decode().startswith(p), p
    assert r.preview(b"2") == ""
    assert r.preview(b"3") == "äöü ß €"
    # Several messages, and the other items beside it.
    out = r.cmd(b"FETCH 2:3 (UID PREVIEW)")
    assert out[0] == b'* 2 FETCH (UID 2 PREVIEW "")\r\n', out
    assert r.cmd(b"FETCH 1 (PREVIEW (EAGER))")[-1].startswith(b"BAD")
    assert r.cmd(b"FETCH 1 (PREVIEW ())")[-1].startswith(b"BAD")
    r.close()


def null_previews(server):
    """Make every stored message one from before the migration: no preview kept."""
    if getattr(server, "store_url", None):
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", server.store_url, "-c",
                        "UPDATE messages SET preview = NULL"], check=True)
        return
    paths = glob.glob(os.path.join(str(server.dir), "**", "posthorn.db"), recursive=True)
    assert paths, server.dir
    db = sqlite3.connect(paths[0], timeout=10)
    db.execute("UPDATE messages SET preview = NULL")
    db.commit()
    db.close()


def test_preview_of_a_message_stored_without_one(server):
    r = Raw(server, fresh_user(server))
    assert r.append(b"INBOX", msg(b"old", b"from  before\r\n")).startswith(b"OK")
    null_previews(server)
    r.select()
    assert r.preview(lazy=True) is None  # RFC 8970 §3.2: not computed now
    assert r.preview() == "from before"  # computed from the message
    assert r.cmd(b"FETCH 1 PREVIEW (LAZY)")[0].startswith(b"* 1 FETCH (PREVIEW NIL)")
    r.close()
