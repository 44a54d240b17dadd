"""Slowloris on every port (issue 13 §5): a client that trickles an octet now and then resets
any idle timer, so each stage has a deadline that input does not push back: the TLS
handshake (limit_tls_handshake_timeout, implicit TLS and after STARTTLS/STLS), the time
before login (limit_login_timeout), each command line after login (a per-request deadline:
complete within the idle timeout of its first octet), and SMTP DATA (limit_data_min_rate).
Every scenario runs on every port it applies to, in parallel (one server, a few seconds).
Each would keep its connection for the whole GRACE without its defence."""

import base64
import os
import re
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


def raw_login(s, proto, user, password, greeting=True):
    """Logs s in over POP3 (USER, PASS) or IMAP (LOGIN), its greeting read first unless
    greeting is False; the test fails unless the login succeeds."""
    if greeting:
        read_line(s)
    if proto == "pop3":
        s.sendall(b"USER %s\r\n" % user.encode())
        read_line(s)
        s.sendall(b"PASS %s\r\n" % password.encode())
        line = read_line(s)
        assert line.startswith(b"+OK"), line
        return
    s.sendall(b'a LOGIN "%s" "%s"\r\n' % (user.encode(), password.encode()))
    line = read_line(s)
    while line.startswith(b"* "):
        line = read_line(s)
    assert line.startswith(b"a OK"), line


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
        raw_login(s, "pop3", user, USERS[user])
    else:
        raw_login(s, "imap", USER, PASSWORD)
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


# ---------------------------------------------------------------------------
# Clients that never read: a write timeout (limit_request_timeout, here TIMEOUT) with no
# octet taken by the socket drops the session; a slow but steady reader is never cut.

BIG = 4 << 20  # octets of the message fetched; far more than the socket buffers hold
READER = "reader@example.test"


def server_socket_inode(server, client):
    """The inode of the server's end of client's TCP connection (from /proc/net/tcp)."""
    local, peer = client.getsockname()[1], client.getpeername()[1]
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            lport = int(fields[1].split(":")[1], 16)
            rport = int(fields[2].split(":")[1], 16)
            if lport == peer and rport == local:
                return fields[9]
    raise AssertionError("no server socket for port %d" % local)


def server_holds(server, inode):
    """True while one of the server's descriptors is that socket."""
    fd_dir = "/proc/%d/fd" % server.proc.pid
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(os.path.join(fd_dir, fd)) == "socket:[%s]" % inode:
                return True
        except OSError:
            pass
    return False


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def big_body():
    line = b"x" * 74 + b"\r\n"
    return (b"From: a@remote.test\r\nTo: %s\r\nSubject: big\r\n\r\n" % READER.encode() +
            line * (BIG // len(line)))


def ask_for_a_lot(server, name, rcvbuf=4096):
    """A session of READER on port name (imap, imaps, imap-starttls, pop3) that has just
    asked for the big message, with a tiny receive buffer; nothing of the answer is read."""
    port = ports(server)["pop3" if name == "pop3" else "imaps" if name == "imaps" else "imap"]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(GRACE)
    s.connect((HOST, port))
    if name == "imap-starttls":
        read_line(s)
        s.sendall(b"s STARTTLS\r\n")
        assert read_line(s).startswith(b"s OK")
        s = tls_client_context().wrap_socket(s, server_hostname=None)
    elif name == "imaps":
        s = tls_client_context().wrap_socket(s, server_hostname=None)
    if name == "pop3":
        raw_login(s, "pop3", READER, PASSWORD)
        s.sendall(b"RETR 1\r\n")
        return s
    raw_login(s, "imap", READER, PASSWORD, greeting=name != "imap-starttls")
    s.sendall(b"b EXAMINE INBOX\r\n")
    line = read_line(s)
    while not line.startswith(b"b "):
        line = read_line(s)
    assert line.startswith(b"b OK"), line
    s.sendall(b"c FETCH 1 BODY.PEEK[]\r\n")
    return s


def drain(s):
    """Read until the server's close (EOF or reset); the octets received."""
    got = 0
    s.settimeout(GRACE)
    while True:
        try:
            data = s.recv(1 << 20)
        except (ConnectionResetError, ssl.SSLError, OSError):
            return got
        if not data:
            return got
        got += len(data)


def test_client_that_never_reads_is_dropped_at_the_write_timeout(server):
    """A client that asks for a big message and never reads is dropped once the write
    timeout passes without the socket taking anything; a slow reader beside it is not."""
    server.add_user(READER, PASSWORD)
    setup = socket.create_connection((HOST, ports(server)["imap"]), timeout=GRACE)
    read_line(setup)
    msg = big_body()
    setup.sendall(b'a LOGIN "%s" "%s"\r\nb APPEND INBOX {%d+}\r\n' % (
        READER.encode(), PASSWORD.encode(), len(msg)) + msg + b"\r\nc LOGOUT\r\n")
    while not read_line(setup).startswith(b"c OK"):
        pass
    setup.close()
    other = logged_in(server, "imap")  # a client that is served meanwhile
    before = server.log_text().count("reason=write-timeout")
    # a slow but steady reader at the same time (it must not be cut)
    slow = {}
    slow_thread = threading.Thread(target=lambda: slow.update(r=slow_reader(server)))
    slow_thread.start()
    names = ["imap", "imaps", "pop3"]
    stalled = in_parallel(lambda name: ask_for_a_lot(server, name), names)
    for name, s in stalled.items():
        assert not isinstance(s, Exception), "%s: %r" % (name, s)
    inodes = {name: server_socket_inode(server, s) for name, s in stalled.items()}
    cpu0, t0 = cpu_seconds(server.proc.pid), time.monotonic()
    # While they are stuck, everyone else is served.
    other.sendall(b"n NOOP\r\n")
    assert read_line(other).startswith(b"n OK")
    deadline = time.monotonic() + GRACE
    while server.log_text().count("reason=write-timeout") < before + len(names):
        assert time.monotonic() < deadline, server.log_text()[-3000:]
        time.sleep(0.1)
    cpu, wall = cpu_seconds(server.proc.pid) - cpu0, time.monotonic() - t0
    # No busy loop while the output waits: the server mostly sleeps.
    assert cpu < wall / 2, "%.2f s of CPU in %.2f s" % (cpu, wall)
    for name, s in stalled.items():
        # The server's end is gone (its descriptor closed) ...
        deadline = time.monotonic() + GRACE
        while server_holds(server, inodes[name]):
            assert time.monotonic() < deadline, "%s: socket still open" % name
            time.sleep(0.1)
        # ... and what was still queued was dropped: the message never arrives whole.
        got = drain(s)
        assert got < BIG, "%s: %d octets arrived" % (name, got)
        s.close()
    other.close()
    fresh = connect(server, "imap")
    assert read_line(fresh).startswith(b"* OK")
    fresh.close()
    slow_thread.join(GRACE + 10)
    assert slow.get("r") == "ok", slow


def slow_reader(server):
    """Reading a little every half second (each pause shorter than the write timeout, the
    whole longer) keeps the session; the whole message arrives. Over STARTTLS, where the
    encrypted output waits in the socket layer under the TLS filter. "ok", or what failed."""
    try:
        s = ask_for_a_lot(server, "imap-starttls", rcvbuf=32 * 1024)
        got = b""
        start = time.monotonic()
        while time.monotonic() - start < TIMEOUT + 1.5:
            time.sleep(0.5)
            data = s.recv(64 * 1024)
            if not data:
                return "slow reader cut after %d octets" % len(got)
            got += data
        s.settimeout(GRACE)
        while not re.search(rb"\r\nc [A-Z]+[^\r\n]*\r\n$", got[-300:]):
            data = s.recv(1 << 20)
            if not data:
                return "slow reader cut after %d octets" % len(got)
            got += data
        s.close()
    except Exception as e:  # reported by the test
        return "slow reader: %r" % e
    if len(got) <= BIG or b"\r\nc OK" not in got[-300:]:
        return "slow reader: %d octets, ending %r" % (len(got), got[-300:])
    return "ok"


def test_smtp_client_that_never_reads_is_dropped_at_the_write_timeout(server):
    """SMTP has the same write timeout: a client that pipelines NOOPs and never reads the
    replies fills the server's output (whereupon the server stops reading it) and is dropped
    once the socket has taken nothing for the write timeout; the queued replies go with it.
    Without the timeout the connection would stay, stalled, for the whole GRACE."""
    before = server.log_text().count("reason=write-timeout")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(GRACE)
    s.connect((HOST, server.smtp_port))
    read_smtp_reply(s)
    s.sendall(b"EHLO c.test\r\n")
    read_smtp_reply(s)
    inode = server_socket_inode(server, s)
    s.settimeout(1.0)
    sent, flood = 0, b"NOOP\r\n" * 10000
    deadline = time.monotonic() + GRACE
    while server.log_text().count("reason=write-timeout") == before:
        assert time.monotonic() < deadline, server.log_text()[-3000:]
        try:
            sent += s.send(flood)
        except socket.timeout:
            pass  # the server holds our input: its output to us is full
        except ConnectionError:
            break
    deadline = time.monotonic() + GRACE
    while server_holds(server, inode):
        assert time.monotonic() < deadline, "socket still open"
        time.sleep(0.1)
    replies = drain(s) // len(b"250 2.0.0 Ok\r\n")
    assert replies < sent // len(b"NOOP\r\n"), (replies, sent)
    s.close()
    fresh = connect(server, "smtp")
    assert read_smtp_reply(fresh).startswith(b"220")
    fresh.close()
