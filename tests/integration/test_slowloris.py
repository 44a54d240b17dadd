"""Slowloris on every port (issue 13 §5): a client that trickles an octet now and then resets
any idle timer, so each stage has a deadline that input does not push back: the TLS
handshake (limit_tls_handshake_timeout, implicit TLS and after STARTTLS/STLS), the time
before login (limit_login_timeout), each command line after login (a per-request deadline:
complete within the idle timeout of its first octet), and SMTP DATA (limit_data_min_rate).
Every scenario runs on every port it applies to, in parallel (one server, a few seconds).
Each would keep its connection for the whole GRACE without its defence."""

import base64
import socket
import ssl
import threading
import time

import pytest

from conftest import HOST, USERS, make_server, tls_client_context
from imap_helpers import imap_ports
from pop3_helpers import pop3_ports

TIMEOUT = 3  # seconds: idle timeouts and the request timeout
GRACE = 20   # what a test waits for the server: far above the deadlines
USER = "demo@example.test"
PASSWORD = USERS[USER]
TLS_PORTS = {"submissions", "pop3s", "imaps"}
# A TLS handshake record of 512 octets (RFC 8446 §5.1): the server waits for all of them.
RECORD_HEADER = b"\x16\x03\x01\x02\x00"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = make_server(tmp_path_factory, "slowloris", {
        "allow_plaintext_auth": "yes",
        "limit_login_timeout": "5s",
        "limit_tls_handshake_timeout": "2s",
        "limit_request_timeout": "%ds" % TIMEOUT,
        "limit_imap_idle_timeout": "%ds" % TIMEOUT,
        "limit_pop3_idle_timeout": "%ds" % TIMEOUT,
        "limit_login_commands": 1000,
        "limit_connections_per_ip": 0})
    srv.start()
    # Warm the authentication cache: the logins below run in parallel and must each be
    # far quicker than the 3 s idle timeout, which a queue of argon2id checks is not.
    for user in (USER, "alice@example.test"):
        s = socket.create_connection((HOST, imap_ports(srv)[0]), timeout=GRACE)
        read_line(s)
        s.sendall(b'a LOGIN "%s" "%s"\r\na LOGOUT\r\n' % (user.encode(), USERS[user].encode()))
        while b"a OK" not in read_line(s):
            pass
        s.close()
    yield srv
    srv.stop_and_check()


def ports(server):
    imap, imaps = imap_ports(server)
    pop3, pop3s = pop3_ports(server)
    return {"smtp": server.smtp_port, "submission": server.submission_port,
            "submissions": server.submissions_port, "pop3": pop3, "pop3s": pop3s,
            "imap": imap, "imaps": imaps}


def connect(server, name):
    s = socket.create_connection((HOST, ports(server)[name]), timeout=GRACE)
    if name in TLS_PORTS:
        s = tls_client_context().wrap_socket(s, server_hostname=None)
    return s


def read_line(s):
    buf = b""
    while not buf.endswith(b"\n"):
        c = s.recv(1)
        if not c:
            raise AssertionError("closed while reading a line: %r" % buf)
        buf += c
    return buf


def read_smtp_reply(s):
    while True:
        line = read_line(s)
        if line[3:4] != b"-":
            return line


def trickle(s, octet=b"N", interval=0.3):
    """Send one octet every interval until the server closes. Returns (seconds it took or
    None when it never closed, what the server sent meanwhile)."""
    start = time.monotonic()
    got = b""
    s.settimeout(interval)
    while time.monotonic() - start < GRACE:
        try:
            s.sendall(octet)
        except OSError:
            return time.monotonic() - start, got
        try:
            chunk = s.recv(4096)
            if not chunk:
                return time.monotonic() - start, got
            got += chunk
        except socket.timeout:
            pass
        except (ConnectionResetError, ssl.SSLError, OSError):
            return time.monotonic() - start, got
    return None, got


def in_parallel(fn, names):
    """fn(name) for each name on its own thread; returns {name: result or exception}."""
    results = {}

    def run(name):
        try:
            results[name] = fn(name)
        except Exception as e:  # reported by the caller with its name
            results[name] = e

    threads = [threading.Thread(target=run, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(GRACE + 10)
    return results


def check(results):
    for name, r in results.items():
        assert not isinstance(r, Exception), "%s: %r" % (name, r)
        took, got = r
        assert took is not None, "%s: a trickling client kept its connection %d s (%r)" % (
            name, GRACE, got[-200:])


def test_trickle_before_login_is_cut_on_every_port(server):
    def one(name):
        s = connect(server, name)
        read_line(s)  # greeting (after the TLS handshake on the implicit ports)
        r = trickle(s)
        s.close()
        return r
    check(in_parallel(one, list(ports(server))))


def test_half_done_starttls_is_cut(server):
    """STARTTLS / STLS answered, then no handshake (or a trickle of it): dropped after
    limit_tls_handshake_timeout."""
    commands = {"smtp": b"STARTTLS\r\n", "submission": b"STARTTLS\r\n",
                "pop3": b"STLS\r\n", "imap": b"a STARTTLS\r\n"}
    before = server.log_text().count("reason=tls-handshake-timeout")

    def one(name):
        s = connect(server, name)
        read_line(s)
        if name in ("smtp", "submission"):
            s.sendall(b"EHLO c.test\r\n")
            read_smtp_reply(s)
        s.sendall(commands[name])
        line = read_line(s)
        assert line[:3] in (b"220", b"+OK", b"a O"), line
        s.sendall(RECORD_HEADER)
        r = trickle(s, octet=b"\x00")  # the ClientHello's record, one octet at a time
        s.close()
        return r
    check(in_parallel(one, list(commands)))
    deadline = time.monotonic() + GRACE
    while server.log_text().count("reason=tls-handshake-timeout") < before + len(commands):
        assert time.monotonic() < deadline, server.log_text()[-3000:]
        time.sleep(0.1)


def test_unfinished_implicit_tls_handshake_is_cut(server):
    def one(name):
        s = socket.create_connection((HOST, ports(server)[name]), timeout=GRACE)
        s.sendall(RECORD_HEADER)
        r = trickle(s, octet=b"\x00")
        s.close()
        return r
    check(in_parallel(one, sorted(TLS_PORTS)))


def logged_in(server, name):
    """A session past its login deadline: logged in (port 25: MAIL accepted)."""
    s = connect(server, name)
    if name in ("smtp", "submission", "submissions"):
        read_smtp_reply(s)
        s.sendall(b"EHLO c.test\r\n")
        read_smtp_reply(s)
        if name == "smtp":
            s.sendall(b"MAIL FROM:<a@remote.test>\r\n")
        else:
            token = base64.b64encode(b"\0" + USER.encode() + b"\0" + PASSWORD.encode())
            s.sendall(b"AUTH PLAIN " + token + b"\r\n")
        line = read_smtp_reply(s)
        assert line[:1] == b"2", line
    elif name.startswith("pop3"):
        # one POP3 session per maildrop: another account on the second port
        user = USER if name == "pop3" else "alice@example.test"
        read_line(s)
        s.sendall(b"USER %s\r\n" % user.encode())
        read_line(s)
        s.sendall(b"PASS %s\r\n" % USERS[user].encode())
        line = read_line(s)
        assert line.startswith(b"+OK"), line
    else:
        read_line(s)
        s.sendall(b'a LOGIN "%s" "%s"\r\n' % (USER.encode(), PASSWORD.encode()))
        line = read_line(s)
        while line.startswith(b"* "):
            line = read_line(s)
        assert line.startswith(b"a OK"), line
    return s


def test_trickled_command_line_after_login_is_cut(server):
    """After login only the idle timer was left, and every octet reset it: a command line
    must now be complete within the idle timeout of its first octet."""
    names = ["smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps"]
    before = server.log_text().count("event=request-deadline")

    def one(name):
        s = logged_in(server, name)
        took, got = trickle(s, octet=b"X")
        s.close()
        return took, got
    results = in_parallel(one, names)
    check(results)
    for name in names:
        got = results[name][1]
        want = b"421 4.4.2" if name.startswith("s") else b"* BYE" if "imap" in name else b""
        assert want in got, (name, got)
    assert server.log_text().count("event=request-deadline") >= before + len(names)


def test_data_below_the_minimum_rate_is_cut(server):
    """limit_data_min_rate (500 octets/s by default): 5 octets/s of DATA gets 421 4.4.2
    once limit_request_timeout (here shorter than 60 s) has passed."""
    s = connect(server, "smtp")
    read_smtp_reply(s)
    for cmd in (b"EHLO c.test", b"MAIL FROM:<a@remote.test>", b"RCPT TO:<%s>" % USER.encode()):
        s.sendall(cmd + b"\r\n")
        assert read_smtp_reply(s)[:1] == b"2"
    s.sendall(b"DATA\r\n")
    assert read_smtp_reply(s).startswith(b"354")
    took, got = trickle(s, octet=b"x", interval=0.2)
    s.close()
    assert took is not None, "a DATA trickle kept its connection"
    assert b"421 4.4.2 Data rate too low" in got, got
    assert "reason=data-rate-too-low" in server.log_text()


def test_client_that_never_reads_stalls_on_its_own_output(server):
    """Pipelined small commands whose replies are never read: once a session's unsent output
    reaches 1 MiB the server stops reading its input, so the client's sends block instead
    of the server queueing replies without bound (FETCH and RETR of big messages are
    covered by test_imap_streaming.py). Without the hold, the server would read and answer
    all 64 MiB (and queue some 2.5 times as much in replies); with it the client is
    blocked after what the kernel's socket buffers hold (a few MiB). (Server RSS is not
    asserted: under ASan its quarantine of freed blocks grows with every command.)"""
    flood_max = 64 << 20
    commands = {"smtp": b"NOOP\r\n", "pop3": b"NOOP\r\n", "imap": b"a NOOP\r\n"}

    def one(name):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((HOST, ports(server)[name]))
        s.settimeout(GRACE)
        # past login (and so past limit_login_commands)
        if name == "smtp":
            read_smtp_reply(s)
            s.sendall(b"EHLO c.test\r\n")
            read_smtp_reply(s)
            s.sendall(b"MAIL FROM:<a@remote.test>\r\n")
            assert read_smtp_reply(s).startswith(b"250")
        elif name == "pop3":
            read_line(s)
            s.sendall(b"USER %s\r\n" % USER.encode())
            read_line(s)
            s.sendall(b"PASS %s\r\n" % PASSWORD.encode())
            assert read_line(s).startswith(b"+OK")
        else:
            read_line(s)
            s.sendall(b'a LOGIN "%s" "%s"\r\n' % (USER.encode(), PASSWORD.encode()))
            line = read_line(s)
            while line.startswith(b"* "):
                line = read_line(s)
            assert line.startswith(b"a OK"), line
        chunk = commands[name] * 10000
        sent = 0
        s.settimeout(2.0)  # blocked this long: the server holds our input
        try:
            while sent < flood_max:
                sent += s.send(chunk)
        except socket.timeout:
            return s, sent
        s.close()
        return None, sent
    results = in_parallel(one, list(commands))
    socks = [r[0] for r in results.values() if not isinstance(r, Exception) and r[0]]
    try:
        for name, r in results.items():
            assert not isinstance(r, Exception), "%s: %r" % (name, r)
            sock, sent = r
            assert sock is not None, "%s: the server read %d octets of unread commands" % (
                name, sent)
        # Reading resumes as the client reads: well over the 1 MiB held comes out.
        for name, (sock, sent) in results.items():
            sock.settimeout(GRACE)
            got = 0
            while got < 3 << 20:
                data = sock.recv(1 << 20)
                assert data, "%s: closed after %d octets of replies" % (name, got)
                got += len(data)
    finally:
        for sock in socks:
            sock.close()
