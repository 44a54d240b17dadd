"""IMAP BINARY (RFC 3516): BINARY[section]<partial>, BINARY.PEEK and BINARY.SIZE on a multipart
message with a base64 attachment holding NUL octets (sent as literal8), a quoted-printable text
part and an 8bit part; \\Seen set by BINARY but not by .PEEK; NO [UNKNOWN-CTE] for an
encoding that cannot be decoded; parts that do not exist; bad BINARY syntax."""

import base64
import itertools
import re
import socket

import pytest

from imap_helpers import imap_ports, tls_ctx, wait_imap
from conftest import HOST

# Store reads run on the store's reader threads (store_read(), the path PostgreSQL takes):
# every command here answers from the read's completion, not in place.
SERVER_CONF = {"store_read_threads": "2"}

PASSWORD = "bin-Secret-7"
_counter = itertools.count(1)

ATTACHMENT = bytes(range(256)) * 3 + b"\x00\x00\r\nend"
QP_BODY = b"caf=C3=A9 soft=\r\nbreak =3D done=ZZ"
QP_DECODED = b"caf\xc3\xa9 softbreak = done=ZZ"
EIGHTBIT = b"Gr\xc3\xbc\xc3\x9fe\r\nline two"


def crlf_base64(data):
    return base64.encodebytes(data).replace(b"\n", b"\r\n").rstrip(b"\r\n")


MULTIPART = (
    b"From: a@remote.test\r\nTo: b@example.test\r\nSubject: binary\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XyZ\"\r\n\r\n"
    b"preamble\r\n--XyZ\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n" + QP_BODY + b"\r\n--XyZ\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + crlf_base64(ATTACHMENT) + b"\r\n--XyZ\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    + EIGHTBIT + b"\r\n--XyZ--\r\n")

UNKNOWN = (
    b"From: a@remote.test\r\nSubject: uu\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
    b"Content-Type: text/plain\r\n\r\nplain\r\n--b\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
    b"begin 644 x\r\nend\r\n--b--\r\n")


@pytest.fixture
def user(server):
    addr = "bin%d@example.test" % next(_counter)
    server.add_user(addr, PASSWORD)
    return addr


class Raw:
    """A raw IMAP client over implicit TLS that reads literals and literal8s."""

    def __init__(self, server, user):
        wait_imap(server)
        self.sock = tls_ctx().wrap_socket(
            socket.create_connection((HOST, imap_ports(server)[1]), timeout=10))
        self.f = self.sock.makefile("rb")
        assert self.f.readline().startswith(b"* OK")
        self.n = 0
        assert self.cmd(b"LOGIN %s \"%s\"" % (user.encode(), PASSWORD.encode()))[-1] \
            .startswith(b"OK")

    def line(self):
        line = self.f.readline()
        assert line, "connection closed"
        return line

    def cmd(self, text):
        self.n += 1
        tag = b"t%d" % self.n
        self.sock.sendall(tag + b" " + text + b"\r\n")
        lines = []
        while True:
            line = self.line()
            while True:
                m = re.search(rb"~?\{(\d+)\}\r\n$", line)
                if not m:
                    break
                line += self.f.read(int(m.group(1)))
                line += self.line()
            if line.startswith(tag + b" "):
                return lines + [line[len(tag) + 1:].rstrip(b"\r\n")]
            lines.append(line)

    def append(self, msg):
        out = self.cmd(b"APPEND INBOX {%d+}\r\n" % len(msg) + msg)
        assert out[-1].startswith(b"OK"), out

    def close(self):
        self.f.close()
        self.sock.close()


def item(resp, label):
    """(literal marker "~" or "", octets) of the item label in one FETCH response."""
    i = resp.index(label + b" ")
    m = re.match(rb"(~?)\{(\d+)\}\r\n", resp[i + len(label) + 1:])
    assert m, resp
    start = i + len(label) + 1 + m.end()
    return m.group(1), resp[start:start + int(m.group(2))]


@pytest.fixture
def raw(server, user):
    r = Raw(server, user)
    r.append(MULTIPART)
    r.append(UNKNOWN)
    out = r.cmd(b"SELECT INBOX")
    assert out[-1].startswith(b"OK [READ-WRITE]"), out
    yield r
    r.close()


def fetch1(r, items):
    out = r.cmd(b"FETCH 1 " + items)
    assert out[-1].startswith(b"OK"), out
    assert len(out) == 2, out
    return out[0]


def test_capability(raw):
    out = raw.cmd(b"CAPABILITY")
    assert b" BINARY" in out[0], out


def test_binary_peek_base64_attachment_literal8(raw):
    resp = fetch1(raw, b"(BINARY.PEEK[2])")
    marker, data = item(resp, b"BINARY[2]")
    assert marker == b"~"
    assert data == ATTACHMENT
    assert b"FLAGS" not in resp
    assert b"\\Seen" not in fetch1(raw, b"(FLAGS)")


def test_binary_qp_and_8bit_parts(raw):
    resp = fetch1(raw, b"(BINARY.PEEK[1] BINARY.PEEK[3])")
    assert item(resp, b"BINARY[1]") == (b"", QP_DECODED)
    assert item(resp, b"BINARY[3]") == (b"", EIGHTBIT)


def test_binary_size(raw):
    resp = fetch1(raw, b"(BINARY.SIZE[1] BINARY.SIZE[2] BINARY.SIZE[3] BINARY.SIZE[7])")
    assert b"BINARY.SIZE[1] %d" % len(QP_DECODED) in resp
    assert b"BINARY.SIZE[2] %d" % len(ATTACHMENT) in resp
    assert b"BINARY.SIZE[3] %d" % len(EIGHTBIT) in resp
    assert b"BINARY.SIZE[7] 0" in resp
    assert b"\\Seen" not in fetch1(raw, b"(FLAGS)")


def test_binary_sets_seen(raw):
    resp = fetch1(raw, b"(BINARY[1])")
    assert item(resp, b"BINARY[1]")[1] == QP_DECODED
    assert re.search(rb"FLAGS \([^)]*\\Seen", resp), resp
    assert b"\\Seen" in fetch1(raw, b"(FLAGS)")


def test_binary_partial(raw):
    resp = fetch1(raw, b"(BINARY.PEEK[2]<10.20> BINARY.PEEK[1]<3.100>)")
    assert item(resp, b"BINARY[2]<10>") == (b"", ATTACHMENT[10:30])
    assert item(resp, b"BINARY[1]<3>") == (b"", QP_DECODED[3:103])
    resp = fetch1(raw, b"(BINARY.PEEK[2]<%d.100>)" % (len(ATTACHMENT) - 7))
    assert item(resp, b"BINARY[2]<%d>" % (len(ATTACHMENT) - 7)) == (b"~", ATTACHMENT[-7:])
    resp = fetch1(raw, b"(BINARY.PEEK[2]<100000.5>)")
    assert item(resp, b"BINARY[2]<100000>") == (b"", b"")


def test_binary_whole_message_undecoded(raw):
    resp = fetch1(raw, b"(BINARY.PEEK[])")
    assert item(resp, b"BINARY[]") == (b"", MULTIPART)


def test_uid_fetch_binary(raw):
    out = raw.cmd(b"UID FETCH 1:* (BINARY.PEEK[2])")
    # the second message's part 2 is x-uuencode: the command fails
    assert out[-1].startswith(b"NO [UNKNOWN-CTE]"), out


def test_unknown_cte(raw):
    out = raw.cmd(b"FETCH 2 (BINARY.PEEK[2])")
    assert out[-1].startswith(b"NO [UNKNOWN-CTE]"), out
    assert not any(b"FETCH" in l for l in out[:-1]), out
    out = raw.cmd(b"FETCH 2 (BINARY.SIZE[2])")
    assert out[-1].startswith(b"NO [UNKNOWN-CTE]"), out
    # the other part of that message is fine, and BODY[] is unaffected
    resp = raw.cmd(b"FETCH 2 (BINARY.PEEK[1] BODY.PEEK[2])")
    assert resp[-1].startswith(b"OK"), resp
    assert item(resp[0], b"BINARY[1]") == (b"", b"plain")
    assert item(resp[0], b"BODY[2]") == (b"", b"begin 644 x\r\nend")


def test_nonexistent_part(raw):
    resp = fetch1(raw, b"(BINARY.PEEK[9] BINARY.PEEK[1.1] BINARY.SIZE[4.2])")
    assert item(resp, b"BINARY[9]") == (b"", b"")
    assert item(resp, b"BINARY[1.1]") == (b"", b"")
    assert b"BINARY.SIZE[4.2] 0" in resp
    deep = b".".join([b"12345"] * 150)
    resp = fetch1(raw, b"(BINARY.PEEK[%s]<1.2>)" % deep)
    assert item(resp, b"BINARY[%s]<1>" % deep) == (b"", b"")


@pytest.mark.parametrize("items", [
    b"(BINARY[1.TEXT])", b"(BINARY.PEEK[HEADER])", b"(BINARY[0])", b"(BINARY[1.])",
    b"(BINARY.SIZE[1]<0.5>)", b"(BINARY[1]<0.0>)", b"(BINARY[1)", b"(BINARY.SIZE)",
])
def test_bad_syntax(raw, items):
    out = raw.cmd(b"FETCH 1 " + items)
    assert out[-1].startswith(b"BAD"), out


JUNK_B64 = (
    b"From: a@remote.test\r\nSubject: junk\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"c2VjcmV0\r\n*IHdv!cmQ\x7fgaW4g-dGhl\r\nIG1p.ZGRsZQ==\r\n")
JUNK_DECODED = b"secret word in the middle"


def test_base64_junk_ignored_by_binary_and_search(server, user):
    """RFC 2045 §6.8: octets outside the base64 alphabet are ignored, not the end of the
    data; BINARY and SEARCH use the same decoder, so they agree."""
    r = Raw(server, user)
    r.append(JUNK_B64)
    assert r.cmd(b"SELECT INBOX")[-1].startswith(b"OK")
    resp = fetch1(r, b"(BINARY.PEEK[1] BINARY.SIZE[1])")
    assert item(resp, b"BINARY[1]") == (b"", JUNK_DECODED)
    assert b"BINARY.SIZE[1] %d" % len(JUNK_DECODED) in resp
    out = r.cmd(b"SEARCH BODY \"the middle\"")
    assert out[0] == b"* SEARCH 1\r\n", out
    r.close()
