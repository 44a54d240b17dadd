"""IMAP COMPRESS=DEFLATE (RFC 4978, issue 11): after COMPRESS both directions are raw
DEFLATE, on a plain connection, after STARTTLS and over implicit TLS. Large FETCHes arrive
byte-exact (and smaller than sent), APPEND literals are inflated, a second COMPRESS is
refused with [COMPRESSIONACTIVE], a corrupt stream ends only its own connection, a small
input that inflates to 64 MiB meets the command line limit (not the server's memory), and a
compressing client that stops reading costs the server bounded memory (as
test_imap_streaming.py measures it). The uncompressed errors are in
tests/imap_conv/13-compress.conv."""

import base64
import itertools
import os
import random
import smtplib
import socket
import time
import zlib

import pytest

from conftest import HOST, make_server
from imap_helpers import Inflating, Raw
from test_imap_streaming import big_message, vm_rss

# LOGIN on the plain port (mode "plain") needs it; nothing else depends on it.
SERVER_CONF = {"allow_plaintext_auth": "yes", "store_read_threads": "2"}

PASSWORD = "compress-Secret-11"
MIB = 1024 * 1024
_counter = itertools.count(1)


def random_message(tag, size):
    """A message of about size octets whose body (base64 of random octets) deflate can
    hardly shrink."""
    rnd = random.Random(tag)
    body = base64.encodebytes(rnd.randbytes(size * 3 // 4)).replace(b"\n", b"\r\n")
    return (b"From: r@remote.test\r\nTo: u@example.test\r\nSubject: random %s\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" % tag.encode()) + body


@pytest.fixture
def user(server):
    addr = "compress%d@example.test" % next(_counter)
    server.add_user(addr, PASSWORD)
    return addr


def fetched_bodies(out):
    """The BODY[] octets of each FETCH response in out (the tagged status last)."""
    bodies = []
    for resp in out[:-1]:
        i = resp.index(b"BODY[] {")
        j = resp.index(b"}\r\n", i)
        n = int(resp[i + 8:j])
        bodies.append(resp[j + 3:j + 3 + n])
        assert resp[j + 3 + n:] == b")\r\n", resp[-40:]
    return bodies


def test_capability_only_after_login(server, user):
    r = Raw(server)
    assert b"COMPRESS=DEFLATE" not in b"".join(r.cmd(b"CAPABILITY"))
    assert r.cmd(b"LOGIN %s %s" % (user.encode(), PASSWORD.encode()))[-1].startswith(b"OK")
    assert b" COMPRESS=DEFLATE" in b"".join(r.cmd(b"CAPABILITY"))
    r.close()


@pytest.mark.parametrize("mode", ["plain", "starttls", "tls"])
def test_large_fetch_and_append_compressed(server, user, mode):
    """Two multi-MiB messages go in compressed (APPEND literals) and come back compressed
    byte for byte; the text one travels in far fewer octets than it has."""
    text = big_message("text-" + mode, 4 * MIB)
    rand = random_message("rand-" + mode, 3 * MIB)
    r = Raw(server, user, PASSWORD, mode=mode)
    r.compress()
    for msg in (text, rand):
        assert r.append(b"INBOX", msg).startswith(b"OK"), mode
    out = r.cmd(b"SELECT INBOX")
    assert out[-1].startswith(b"OK"), out
    assert b"* 2 EXISTS\r\n" in out
    before = r.f.raw_in
    out = r.cmd(b"FETCH 1 BODY.PEEK[]")
    assert out[-1].startswith(b"OK"), out[-1]
    assert fetched_bodies(out) == [text]
    # the text message compresses: what came over the wire is much smaller
    assert r.f.raw_in - before < len(text) // 2, (r.f.raw_in - before, len(text))
    out = r.cmd(b"FETCH 1:* BODY.PEEK[]")
    assert fetched_bodies(out) == [text, rand]
    assert r.cmd(b"NOOP")[-1].startswith(b"OK")
    out = r.cmd(b"LOGOUT")
    assert out[0].startswith(b"* BYE") and out[-1].startswith(b"OK"), out
    r.close()


def test_compressed_input_right_behind_the_command(server, user):
    """Octets that arrive together with the COMPRESS line are the first compressed ones
    (RFC 4978 §3: compression starts right after the command's CRLF for the client, after
    the tagged OK's CRLF for the server)."""
    r = Raw(server, user, PASSWORD)
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    r.sock.sendall(b"z1 COMPRESS DEFLATE\r\n" + z.compress(b"n1 NOOP\r\n") +
                   z.flush(zlib.Z_SYNC_FLUSH))
    # the OK itself is not compressed (read octet by octet: what follows is not)
    raw = b""
    while not raw.endswith(b"\r\n"):
        raw += r.sock.recv(1)
    assert raw.startswith(b"z1 OK"), raw
    r.f = Inflating(r.sock)
    r.z_out = z
    assert r.f.readline().startswith(b"n1 OK")
    assert r.cmd(b"NOOP")[-1].startswith(b"OK")
    r.close()


def test_idle_updates_arrive_compressed(server, user):
    """An EXISTS pushed during IDLE (written outside any command's input) is flushed: the
    client gets it without sending anything."""
    r = Raw(server, user, PASSWORD, mode="starttls")
    r.compress()
    out = r.cmd(b"SELECT INBOX")
    n = int([l for l in out if l.endswith(b" EXISTS\r\n")][0].split()[1])
    r.send(b"i1 IDLE\r\n")
    assert r.line().startswith(b"+ ")
    with smtplib.SMTP(HOST, server.smtp_port, timeout=10, local_hostname="client.test") as c:
        c.sendmail("idle@remote.test", [user],
                   b"From: idle@remote.test\r\nSubject: idle\r\n\r\nhello\r\n")
    r.sock.settimeout(10)
    line = r.line()
    while b"EXISTS" not in line:
        line = r.line()
    assert line == b"* %d EXISTS\r\n" % (n + 1), line
    r.send(b"DONE\r\n")
    lines, status = r.until(b"i1")
    assert status.startswith(b"OK"), status
    r.close()


def test_compress_twice_is_refused(server, user):
    r = Raw(server, user, PASSWORD)
    r.compress()
    out = r.cmd(b"COMPRESS DEFLATE")
    assert out[-1].startswith(b"NO [COMPRESSIONACTIVE]"), out
    # still compressed, once: the session goes on
    assert r.cmd(b"SELECT INBOX")[-1].startswith(b"OK")
    # a reply line longer than the server's on-stack formatting buffer (512 octets)
    tag = b"T" * 900
    r.send(tag + b" NOOP\r\n")
    line = r.line()
    while not line.startswith(tag):
        line = r.line()
    assert line.startswith(tag + b" OK ") and line.endswith(b"\r\n"), line[-60:]
    r.close()


def test_corrupt_stream_closes_only_that_connection(server, user):
    r = Raw(server, user, PASSWORD)
    r.compress()
    # 0xff: a final block of the reserved type 3 (RFC 1951 §3.2.3): invalid
    r.sock.sendall(b"\xff" * 64 + os.urandom(256))
    r.sock.settimeout(10)
    data = b""
    while True:
        chunk = r.sock.recv(4096)
        if not chunk:
            break
        data += chunk
    assert len(data) < 4096  # closed, not an endless answer
    r.close()
    deadline = time.monotonic() + 5
    while "reason=bad-compressed-input" not in server.log_text():
        assert time.monotonic() < deadline, "no log line for the corrupt stream"
        time.sleep(0.1)
    other = Raw(server, user, PASSWORD)
    other.compress()
    assert other.cmd(b"NOOP")[-1].startswith(b"OK")
    other.close()


def bomb_line(tag, raw_octets):
    """A command line of raw_octets that never ends, compressed (about 1000:1)."""
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = b"x" * MIB
    parts = [z.compress(tag + b" NOOP ")]
    for _ in range(raw_octets // MIB):
        parts.append(z.compress(chunk))
    parts.append(z.flush(zlib.Z_SYNC_FLUSH))
    return b"".join(parts)


def test_inflate_bomb_in_a_command_line(server, user):
    """64 KiB of compressed input that inflates to 64 MiB without a line end: the line
    limit answers (BAD [TOOBIG], then the session ends, as for an uncompressed over-long
    line); the server inflated no more than it needed and serves others."""
    payload = bomb_line(b"b1", 64 * MIB)
    assert len(payload) < 128 * 1024
    pid = server.proc.pid
    before = vm_rss(pid)
    r = Raw(server, user, PASSWORD)
    r.compress()
    try:
        r.sock.sendall(payload)
    except OSError:
        pass  # the server may close before taking it all
    line = r.f.readline()
    assert line.startswith(b"b1 BAD [TOOBIG]"), line
    rest = b""
    while True:
        try:
            more = r.f.readline()
        except OSError:
            break
        if not more:
            break
        rest += more
    assert rest == b"" or rest.startswith(b"* BYE"), rest
    r.close()
    grown = vm_rss(pid) - before
    assert grown < 32 * MIB, "RSS grew by %d MiB" % (grown // MIB)
    other = Raw(server, user, PASSWORD)
    assert other.cmd(b"NOOP")[-1].startswith(b"OK")
    other.close()


@pytest.fixture
def fresh_server(tmp_path_factory):
    """A server of its own for an RSS measurement (see test_imap_streaming.py)."""
    srv = make_server(tmp_path_factory, "compress_rss", SERVER_CONF)
    srv.env = dict(os.environ)
    srv.env["ASAN_OPTIONS"] = srv.env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=16"
    srv.start()
    yield srv
    srv.stop_and_check()


def test_compressed_slow_reader_costs_bounded_memory(fresh_server):
    """8 messages of 16 MiB that deflate hardly shrinks (about 100 MiB compressed): while the
    compressing client reads nothing, the server's RSS grows by far less than one message;
    then every octet arrives intact."""
    server = fresh_server
    addr = "slowz@example.test"
    server.add_user(addr, PASSWORD)
    msgs = [random_message("za", 16 * MIB), random_message("zb", 16 * MIB)]
    setup = Raw(server, addr, PASSWORD)
    for m in msgs:
        assert setup.append(b"INBOX", m).startswith(b"OK")
    assert setup.cmd(b"SELECT INBOX")[-1].startswith(b"OK")
    for _ in range(2):  # 2 -> 4 -> 8
        assert setup.cmd(b"COPY 1:* INBOX")[-1].startswith(b"OK")
    setup.close()

    r = Raw(server, addr, PASSWORD, rcvbuf=64 * 1024)
    r.compress()
    out = r.cmd(b"EXAMINE INBOX")
    assert b"* 8 EXISTS\r\n" in out, out
    pid = server.proc.pid
    before = vm_rss(pid)
    tag = r.tag()
    r.send(tag + b" FETCH 1:* BODY.PEEK[]\r\n")
    peak = before
    for _ in range(8):  # 4 s of not reading
        time.sleep(0.5)
        peak = max(peak, vm_rss(pid))
    print("RSS before %d KiB, peak %d KiB" % (before // 1024, peak // 1024))
    assert peak - before < 24 * MIB, "RSS grew by %d MiB" % ((peak - before) // MIB)

    other = Raw(server, addr, PASSWORD)
    assert other.cmd(b"NOOP")[-1].startswith(b"OK")
    other.close()

    lines, status = r.until(tag)
    assert status.startswith(b"OK"), status
    assert len(lines) == 8
    assert fetched_bodies(lines + [status]) == [msgs[i % 2] for i in range(8)]
    r.close()


def test_inflate_bomb_in_a_literal(server, user):
    """A non-synchronizing APPEND literal announced at 1 GiB, its octets zeros (64 MiB of them
    sent in about 64 KiB): refused at the announcement ([TOOBIG], the session closes, RFC
    9051 §7.1 / RFC 7888), before any of it is inflated into memory."""
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [z.compress(b"L1 APPEND INBOX {1073741824+}\r\n")]
    zeros = bytes(MIB)
    for _ in range(64):
        parts.append(z.compress(zeros))
    parts.append(z.flush(zlib.Z_SYNC_FLUSH))
    payload = b"".join(parts)
    pid = server.proc.pid
    before = vm_rss(pid)
    r = Raw(server, user, PASSWORD)
    r.compress()
    try:
        r.sock.sendall(payload)
    except OSError:
        pass
    got = b""
    while True:
        try:
            line = r.f.readline()
        except OSError:
            break
        if not line:
            break
        got += line
    assert b"[TOOBIG]" in got, got
    r.close()
    grown = vm_rss(pid) - before
    assert grown < 32 * MIB, "RSS grew by %d MiB" % (grown // MIB)
    other = Raw(server, user, PASSWORD)
    other.compress()
    assert other.cmd(b"NOOP")[-1].startswith(b"OK")
    other.close()
