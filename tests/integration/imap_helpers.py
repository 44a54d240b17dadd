"""Helpers shared by the IMAP integration tests: ports, a TLS context that accepts the
self-signed test certificate, waiting for the listeners, and a raw client."""

import re
import socket
import ssl
import time

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


class Raw:
    """A raw IMAP client over implicit TLS: send bytes, read lines and whole responses.
    Logged in as user (with password) unless user is None."""

    def __init__(self, server, user=None, password=None):
        wait_imap(server)
        self.sock = tls_ctx().wrap_socket(
            socket.create_connection((HOST, imap_ports(server)[1]), timeout=10))
        self.f = self.sock.makefile("rb")
        assert self.line().startswith(b"* OK")
        self.n = 0
        self.server, self.user, self.password = server, user, password
        if user is not None:
            out = self.cmd(b"LOGIN %s \"%s\"" % (user.encode(), password.encode()))
            assert out[-1].startswith(b"OK"), out

    def send(self, data):
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
