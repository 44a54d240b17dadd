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
    # No confirmed name: "[ip]" at connect, and Postfix's "_" (one macro packet per step:
    # a second would replace the first in libmilter).
    assert seen.endswith("host=[192.0.2.7] macro__=unknown [192.0.2.7]"), seen


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


@pytest.mark.parametrize("scheme", ["unix", "local"])
def test_unix_socket(tmp_path, scheme):
    """The filter on a UNIX-domain socket: Postfix's unix:/PATH and Sendmail's local:/PATH."""
    path = tmp_path / "milter.sock"
    proc = subprocess.Popen(["/usr/bin/python3", str(SERVER), str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while not path.exists():
            assert time.monotonic() < deadline and proc.poll() is None, proc.stdout.read()
            time.sleep(0.05)
        action, reply, failure, _, headers = run(tmp_path, "%s:%s" % (scheme, path),
                                                 message("hello"))
        assert (action, reply, failure) == ("accept", "-", "-")
        assert "Subject: [filtered] hello" in headers
        assert run(tmp_path, "%s:%s" % (scheme, path), message("reject"))[:2] == (
            "reject", "550 5.7.1 Rejected by the test filter")
    finally:
        proc.kill()
        proc.wait()
    # Nobody listens there any more: the default action.
    path.unlink(missing_ok=True)
    action, _, failure, _, _ = run(tmp_path, "unix:%s" % path, message("hello"))
    assert (action, failure) == ("tempfail",
                                 "the filter cannot be reached or closed the connection")
    # The log line names the socket (not "unix:0"), key=value.
    p = subprocess.run([str(DRIVER), "unix:%s" % path, str(tmp_path / "msg.eml"), "a@b", "c@d"],
                       capture_output=True, timeout=30)
    assert ('event=milter-failure id=Q1234 reason="the filter cannot be reached or closed '
            'the connection" error="connect to unix:%s: No such file or directory" '
            'then=tempfail' % path) in p.stderr.decode(), p.stderr


def test_unreachable_filter_gets_the_default_action(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    action, reply, failure, _, headers = run(tmp_path, "inet:127.0.0.1:%d" % port,
                                             message("hello"))
    assert (action, reply) == ("tempfail", "-")
    assert failure == "the filter cannot be reached or closed the connection"
    assert "Subject: hello" in headers


# ---------------------------------------------------------------------------
# The milter on port 25 (smtp/smtp_filter.c): `milter = inet:...` in the configuration.

import imaplib  # noqa: E402
import smtplib  # noqa: E402

from conftest import HOST, USERS, make_server, unique  # noqa: E402
from imap_helpers import imap_ports, tls_ctx, wait_imap  # noqa: E402

DEMO = "demo@example.test"


@pytest.fixture(scope="module")
def server(tmp_path_factory, filter_address):
    srv = make_server(tmp_path_factory, "milter", {"milter": filter_address,
                                                   "milter_timeout": "5s"})
    srv.start()
    yield srv
    srv.stop_and_check()


def smtp_send(server, subject, extra=b""):
    msg = (b"From: <a@example.org>\r\nTo: <" + DEMO.encode() + b">\r\nSubject: " +
           subject.encode() + b"\r\n" + extra + b"\r\nBody of " + subject.encode() + b".\r\n")
    with smtplib.SMTP(HOST, server.smtp_port, timeout=30, local_hostname="client.test") as s:
        s.sendmail("a@example.org", [DEMO], msg)


def stored(server, subject):
    """{mailbox: raw message} of the messages whose body names subject (INBOX and Junk)."""
    wait_imap(server)
    m = imaplib.IMAP4(HOST, imap_ports(server)[0], timeout=30)
    m.starttls(ssl_context=tls_ctx())
    m.login(DEMO, USERS[DEMO])
    out = {}
    try:
        for box in ("INBOX", "Junk"):
            m.select(box, readonly=True)
            uids = m.uid("SEARCH", "BODY", '"Body of %s."' % subject)[1][0].split()
            for uid in uids:
                out[box] = m.uid("FETCH", uid, "(BODY.PEEK[])")[1][0][1]
    finally:
        m.logout()
    return out


def test_port25_message_with_the_filters_changes(server):
    subject = unique("hello")
    smtp_send(server, subject, b"X-Remove-Me: gone\r\n")
    raw = stored(server, subject)["INBOX"]
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("X-Milter-Top: inserted\r\n")
    assert "Subject: [filtered] %s\r\n" % subject in head
    assert "X-Remove-Me" not in head
    seen = [l for l in head.split("\r\n") if l.startswith("X-Milter-Seen: ")][0]
    assert "helo=client.test from=<a@example.org> rcpts=<%s>" % DEMO in seen
    # 127.0.0.1's name, confirmed (libunbound answers for the loopback itself)
    assert seen.endswith("host=localhost macro__=localhost [127.0.0.1]"), seen
    assert "Received: from client.test" in head  # the filter saw our trace fields too
    assert raw.endswith(b"\r\n\r\nBody of %s.\r\n" % subject.encode())
    assert "event=milter" in server.log_text() and "action=accept changes=4" in server.log_text()


def test_port25_filter_decisions(server):
    for subject, code, text in [("reject", 550, b"5.7.1 Rejected by the test filter"),
                                ("tempfail", 451, b"4.7.1 Try again, says the test filter"),
                                ("plainreject", 550, b"5.7.1 Message content rejected")]:
        with pytest.raises(smtplib.SMTPDataError) as e:
            smtp_send(server, subject)
        assert (e.value.smtp_code, e.value.smtp_error) == (code, text)
    # discard: the client hears 250, nothing is stored; quarantine: the Junk folder
    smtp_send(server, "discard")
    smtp_send(server, "quarantine")
    assert stored(server, "discard") == {}
    assert list(stored(server, "quarantine")) == ["Junk"]
