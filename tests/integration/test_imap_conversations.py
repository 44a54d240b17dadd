"""Scripted IMAP conversations (tests/imap_conv/*.conv) run against a live server.

Format, one directive per line:
  # text             a comment
  @deliver N         deliver N test messages to the conversation's fresh user first
  @quota ARGS...     posthorn user quota USER ARGS... (e.g. "@quota 10K --messages 3")
  @share ARGS...     posthorn share ARGS... ($USER replaced; e.g. "@share grant
                     demo@example.test Junk $USER lr")
  C: line            send the line (CRLF added); $USER and $PASS are replaced
  S: pattern         the next line from the server must match; "*" matches any text
  S~ pattern         skip server lines until one matches
Every conversation gets a new account, and must end with the server's last line read.
"""

import itertools
import re
import smtplib
import socket
from pathlib import Path

import pytest

from conftest import HOST
from imap_helpers import imap_ports, tls_ctx, wait_imap

CONV_DIR = Path(__file__).resolve().parents[1] / "imap_conv"
CONVERSATIONS = sorted(CONV_DIR.glob("*.conv"))
_ids = itertools.count(1)


def matches(line, pattern):
    return re.fullmatch(".*".join(re.escape(p) for p in pattern.split("*")), line) is not None


def deliver(server, user, n):
    with smtplib.SMTP(HOST, server.smtp_port, timeout=10, local_hostname="client.test") as s:
        for i in range(n):
            msg = ("From: Sender %d <s%d@remote.test>\r\nTo: %s\r\nSubject: test %d\r\n"
                   "Date: Tue, 2 Jan 2024 10:00:0%d +0000\r\n\r\nbody %d\r\n"
                   % (i, i, user, i + 1, i % 10, i + 1))
            s.sendmail("s%d@remote.test" % i, [user], msg.encode())


@pytest.mark.parametrize("conv", CONVERSATIONS, ids=lambda p: p.stem)
def test_conversation(server, conv):
    user = "conv%d@example.test" % next(_ids)
    password = "conv-Secret-%d" % next(_ids)
    server.add_user(user, password)
    wait_imap(server)
    sock = tls_ctx().wrap_socket(socket.create_connection((HOST, imap_ports(server)[1]),
                                                          timeout=10))
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    transcript = []

    def next_line():
        line = f.readline()
        assert line, "connection closed; transcript:\n" + "\n".join(transcript)
        text = line.decode("utf-8", errors="replace").rstrip("\r\n")
        transcript.append("S: " + text)
        return text

    for n, raw in enumerate(conv.read_text().splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        where = "%s:%d" % (conv.name, n)
        if raw.startswith("@deliver "):
            deliver(server, user, int(raw.split()[1]))
        elif raw.startswith("@quota "):
            server.cli("user", "quota", user, *raw.split()[1:])
        elif raw.startswith("@share "):
            server.cli("share", *raw.replace("$USER", user).split()[1:])
        elif raw.startswith("C: "):
            line = raw[3:].replace("$USER", user).replace("$PASS", password)
            transcript.append("C: " + line)
            sock.sendall(line.encode() + b"\r\n")
        elif raw.startswith("S: "):
            got = next_line()
            assert matches(got, raw[3:]), "%s: expected %r, got %r\n%s" % (
                where, raw[3:], got, "\n".join(transcript))
        elif raw.startswith("S~ "):
            while not matches(next_line(), raw[3:]):
                pass
        else:
            raise AssertionError("%s: bad directive %r" % (where, raw))
    sock.close()
