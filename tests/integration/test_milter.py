"""The milter client (smtp/milter) against a real libmilter filter: Debian's python3-milter
running tests/integration/milter_server.py, driven through tests/unit/milter_check.c. Every
decision a filter can make at end of message (accept with header changes, reject with and
without its own reply, tempfail, discard, quarantine), SMFIR_SKIP in the body, a body in
several chunks, and the default action when the filter cannot be reached."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BIN

DRIVER = Path(BIN).parent / "tests" / "milter_check"
SERVER = Path(__file__).with_name("milter_server.py")


def message(subject, body=b"line one\r\nline two\r\n"):
    return (b"From: a@example.org\r\nTo: b@example.net\r\nSubject: " + subject.encode() +
            b"\r\nX-Remove-Me: one\r\nX-Remove-Me: two\r\n\r\n" + body)


@pytest.fixture(scope="module")
def filter_address():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["/usr/bin/python3", str(SERVER), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("the test filter did not start: %s" % proc.stdout.read())
    yield "inet:127.0.0.1:%d" % port
    proc.kill()
    proc.wait()


def run(tmp_path, address, msg, rcpts=("b@example.net", "c@example.net")):
    f = tmp_path / "msg.eml"
    f.write_bytes(msg)
    p = subprocess.run([str(DRIVER), address, str(f), "a@example.org", *rcpts],
                       capture_output=True, timeout=30)
    assert p.returncode == 0, (p.stdout, p.stderr)
    lines = p.stdout.decode().split("\r\n")
    first = lines[0].split("\n")
    action, reply, failure = first[0].split("\t")
    rest = first[1:] + lines[1:]
    quarantine = None
    if rest and rest[0].startswith("quarantine "):
        quarantine = rest.pop(0)[len("quarantine "):]
    return action, reply, failure, quarantine, [h for h in rest if h]


def test_accept_with_header_changes(tmp_path, filter_address):
    action, reply, failure, quarantine, headers = run(tmp_path, filter_address, message("hello"))
    assert (action, reply, failure, quarantine) == ("accept", "-", "-", None)
    assert headers[0] == "X-Milter-Top: inserted"
    assert "Subject: [filtered] hello" in headers
    assert not any(h.startswith("X-Remove-Me") for h in headers)
    seen = [h for h in headers if h.startswith("X-Milter-Seen: ")][0]
    assert ("helo=client.example from=<a@example.org> rcpts=<b@example.net>,<c@example.net> "
            "headers=5 body=20 chunks=1 first=line one macro_i=Q1234") in seen


def test_decisions(tmp_path, filter_address):
    assert run(tmp_path, filter_address, message("reject"))[:3] == (
        "reject", "550 5.7.1 Rejected by the test filter", "-")
    assert run(tmp_path, filter_address, message("plainreject"))[:3] == ("reject", "-", "-")
    assert run(tmp_path, filter_address, message("tempfail"))[:3] == (
        "tempfail", "451 4.7.1 Try again, says the test filter", "-")
    assert run(tmp_path, filter_address, message("discard"))[:3] == ("discard", "-", "-")
    assert run(tmp_path, filter_address, message("quarantine"))[:4] == (
        "quarantine", "-", "-", "held by test")


def test_body_chunks_and_skip(tmp_path, filter_address):
    body = b"".join(b"%05d %s\r\n" % (i, b"x" * 90) for i in range(2000))  # 194 KB: 3 chunks
    seen = [h for h in run(tmp_path, filter_address, message("big", body))[4]
            if h.startswith("X-Milter-Seen")][0]
    assert "body=%d chunks=3 first=00000 " % len(body) in seen
    # SMFIR_SKIP after the first chunk: the rest of the body is not sent.
    seen = [h for h in run(tmp_path, filter_address, message("skip", body))[4]
            if h.startswith("X-Milter-Seen")][0]
    assert "body=65535 chunks=1 " in seen


def test_unreachable_filter_gets_the_default_action(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    action, reply, failure, _, headers = run(tmp_path, "inet:127.0.0.1:%d" % port,
                                             message("hello"))
    assert (action, reply) == ("tempfail", "-")
    assert failure == "the filter cannot be reached or closed the connection"
    assert "Subject: hello" in headers
