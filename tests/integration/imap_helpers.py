"""Helpers shared by the IMAP integration tests: ports, a TLS context that accepts the
self-signed test certificate, waiting for the listeners, and a raw client."""

import re
import socket
import ssl
import time
import zlib

from conftest import HOST


def imap_ports(server):
    """(IMAP with STARTTLS, IMAP over TLS) of a server made by `posthorn init --port-base`."""
    return server.base + 143, server.base + 993


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def wait_imap(server):
    """Wait until both IMAP listeners accept connections."""
    for port in imap_ports(server):
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("IMAP port %d not open" % port)
                time.sleep(0.05)


class Inflating:
    """The reading side of COMPRESS=DEFLATE (RFC 4978): readline() and read(n) over the
    inflated stream of sock. raw_in counts the compressed octets received."""

    def __init__(self, sock):
        self.sock, self.z, self.buf, self.raw_in = sock, zlib.decompressobj(-15), bytearray(), 0

    def _more(self):
        data = self.sock.recv(256 * 1024)
        if not data:
            return False
        self.raw_in += len(data)
        self.buf += self.z.decompress(data)
        return True

    def _take(self, n):
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def readline(self):
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i >= 0:
                return self._take(i + 1)
            start = len(self.buf)
            if not self._more():
                return self._take(len(self.buf))

    def read(self, n):
        while len(self.buf) < n and self._more():
            pass
        return self._take(n)

    def close(self):
        pass


class Raw:
    """A raw IMAP client: send bytes, read lines and whole responses. Logged in as user
    (with password) unless user is None. mode: "tls" (implicit TLS, 993), "starttls" (143,
    then STARTTLS) or "plain" (143 without TLS: LOGIN needs allow_plaintext_auth). After
    compress() (or COMPRESS sent by hand and start_deflate()) everything goes both ways
    through raw DEFLATE, the client flushing after each send."""

    def __init__(self, server, user=None, password=None, mode="tls", rcvbuf=None):
        wait_imap(server)
        port = imap_ports(server)[1 if mode == "tls" else 0]
        sock = socket.create_connection((HOST, port), timeout=10)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.z_out = None
        if mode == "starttls":
            f = sock.makefile("rb")
            assert f.readline().startswith(b"* OK")
            sock.sendall(b"s STARTTLS\r\n")
            assert f.readline().startswith(b"s OK")
            f.close()
        self.sock = tls_ctx().wrap_socket(sock) if mode in ("tls", "starttls") else sock
        self.f = self.sock.makefile("rb")
        if mode != "starttls":
            assert self.line().startswith(b"* OK")
        self.n = 0
        self.server, self.user, self.password = server, user, password
        if user is not None:
            out = self.cmd(b"LOGIN %s \"%s\"" % (user.encode(), password.encode()))
            assert out[-1].startswith(b"OK"), out

    def compress(self):
        """COMPRESS DEFLATE; the tagged OK, then compression both ways."""
        out = self.cmd(b"COMPRESS DEFLATE")
        assert out[-1].startswith(b"OK"), out
        self.start_deflate()

    def start_deflate(self):
        # The server says nothing after its OK until asked: nothing is read ahead.
        self.f.close()
        self.f = Inflating(self.sock)
        self.z_out = zlib.compressobj(6, zlib.DEFLATED, -15)

    def send(self, data):
        if self.z_out is not None:
            data = self.z_out.compress(data) + self.z_out.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def line(self):
        line = self.f.readline()
        assert line, "connection closed"
        return line

    def tag(self):
        self.n += 1
        return b"t%d" % self.n

    def until(self, tag):
        """Lines (literal octets included in the line they follow) up to the tagged one.
        Returns (untagged lines, tagged status text)."""
        lines = []
        while True:
            line = self.line()
            while True:  # a response may carry several literals
                m = re.search(rb"\{(\d+)\}\r\n$", line)
                if not m:
                    break
                line += self.f.read(int(m.group(1)))
                line += self.line()
            if line.startswith(tag + b" "):
                return lines, line[len(tag) + 1:].rstrip(b"\r\n")
            lines.append(line)

    def cmd(self, text):
        """Untagged lines and the tagged status text last. New keywords are announced with
        FLAGS/PERMANENTFLAGS before a FETCH shows them (test_imap_rev1.py checks that):
        outside SELECT/EXAMINE those lines are left out."""
        tag = self.tag()
        self.send(tag + b" " + text + b"\r\n")
        lines, status = self.until(tag)
        if not re.match(rb"(?i)(SELECT|EXAMINE) ", text):
            lines = [l for l in lines if not l.startswith((b"* FLAGS ", b"* OK [PERMANENTFLAGS"))]
        return lines + [status]

    def append(self, box, msg):
        """APPEND with a non-synchronizing literal: the tagged status text."""
        return self.cmd(b"APPEND %s {%d+}\r\n" % (box, len(msg)) + msg)[-1]

    def select(self, box=b"INBOX"):
        """SELECT after another session has selected (and so taken \\Recent, RFC 3501
        §2.3.2; see test_imap_rev1.py): the flags tests compare are the stored ones. The
        number of messages."""
        other = Raw(self.server, self.user, self.password)
        other.cmd(b"SELECT " + box)
        other.close()
        out = self.cmd(b"SELECT " + box)
        assert out[-1].startswith(b"OK [READ-WRITE]"), out
        return int([l for l in out if l.endswith(b" EXISTS\r\n")][0].split()[1])

    def close(self):
        self.f.close()  # the socket stays open while its file object lives
        self.sock.close()
