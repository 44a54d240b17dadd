"""Limits against hostile clients that need a server of their own (issue 13 §5): the total
connection cap, and the brute-force penalty (last in the module: it leaves a penalty).

The total connection cap: when `limit_connections` is reached, the oldest
connection that has not logged in is dropped to make room for the newcomer (with the
protocol's busy reply, or silently during a TLS handshake), so a flood of idle, slow or
half-open connections can neither lock out new clients nor touch logged-in sessions. Only
when every connection is logged in is the newcomer refused. Without the eviction, the
newcomer of each step below would get the busy reply instead of a greeting."""

import base64
import re
import socket
import time

import pytest

from conftest import HOST, USERS, make_server, reload_with
from imap_helpers import imap_ports
from pop3_helpers import pop3_ports
from test_hostile import raw
from test_slowloris import PASSWORD, in_parallel, raw_login, read_smtp_reply

CAP = 4
USER = "demo@example.test"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = make_server(tmp_path_factory, "conncap", {
        "limit_connections": CAP, "limit_connections_per_ip": 0,
        "allow_plaintext_auth": "yes", "threads": 2, "auth_cache_ttl": "0"})
    srv.start()
    yield srv
    srv.stop_and_check()


def greeted(port):
    c = raw(port)
    line = c.read_line()
    return c, line


def logged_in(port):
    c, line = greeted(port)
    assert line.startswith(b"* OK"), line
    c.send(b'a LOGIN "%s" "%s"\r\n' % (USER.encode(), USERS[USER].encode()))
    r = c.read_line()
    assert r.startswith(b"a OK"), r
    return c


def settle(server, port):
    """The start-up probes (wait_port) count until the server has seen them close: wait
    until a full set of CAP greeted connections fits, then free it."""
    deadline = time.monotonic() + 10
    while True:
        held = [greeted(port) for _ in range(CAP)]
        ok = all(line.startswith(b"* OK") for _, line in held)
        for c, _ in held:
            c.close()
        if ok:
            break
        assert time.monotonic() < deadline, server.log_text()[-3000:]
        time.sleep(0.2)
    time.sleep(0.5)  # the server sees those closes


def test_oldest_unauthenticated_is_dropped_for_a_newcomer(server):
    imap, imaps = imap_ports(server)
    settle(server, imap)
    # 1: a TLS connection that never starts its handshake (the oldest)
    half = socket.create_connection((HOST, imaps), timeout=20)
    time.sleep(0.2)
    user = logged_in(imap)          # 2: logged in
    idle1, line = greeted(imap)     # 3, 4: greeted, never log in
    assert line.startswith(b"* OK")
    idle2, line = greeted(imap)
    assert line.startswith(b"* OK")
    # The cap is reached. A newcomer is greeted; the half-open TLS connection goes silently.
    new1, line = greeted(imap)
    assert line.startswith(b"* OK"), line
    half.settimeout(20)
    try:
        assert half.recv(100) == b""
    except ConnectionResetError:
        pass
    half.close()
    # Next newcomer: the oldest greeted idle one gets the busy reply and is closed.
    new2, line = greeted(imap)
    assert line.startswith(b"* OK"), line
    assert idle1.read_line().startswith(b"* BYE [UNAVAILABLE]")
    assert idle1.is_closed(20)
    # The logged-in session was never a candidate, and the younger idle one is still there.
    user.send(b"b NOOP\r\n")
    assert user.read_line().startswith(b"b OK")
    assert idle2.no_reply(0.3)
    assert "reason=evicted" in server.log_text()
    for c in (user, idle1, idle2, new1, new2):
        c.close()


def test_newcomer_refused_when_everyone_is_logged_in(server):
    imap, _ = imap_ports(server)
    settle(server, imap)
    held = [logged_in(imap) for _ in range(CAP)]
    c, line = greeted(imap)
    assert line.startswith(b"* BYE [UNAVAILABLE]"), line
    assert c.is_closed(20)
    c.close()
    for h in held:
        h.send(b"n NOOP\r\n")
        assert h.read_line().startswith(b"n OK")
        h.close()


def test_unauthenticated_session_can_be_dropped_again(server):
    """IMAP UNAUTHENTICATE (RFC 8437) makes a session one that has not logged in again: the
    total cap may drop it for a newcomer, as the newest of the unauthenticated ones. Without
    that, the younger idle connection would be dropped in its place."""
    imap, _ = imap_ports(server)
    settle(server, imap)
    back = logged_in(imap)
    held = [logged_in(imap) for _ in range(2)]
    back.send(b"u UNAUTHENTICATE\r\n")
    assert back.read_line().startswith(b"u OK")
    idle, line = greeted(imap)  # younger than back's logout
    assert line.startswith(b"* OK")
    # the cap (4) is reached: the newcomer is greeted and back, not idle, makes room
    new, line = greeted(imap)
    assert line.startswith(b"* OK"), line
    assert back.read_line().startswith(b"* BYE [UNAVAILABLE]")
    assert back.is_closed(20)
    assert idle.no_reply(0.3)
    for h in held:
        h.send(b"h NOOP\r\n")
        assert h.read_line().startswith(b"h OK")
    for c in [back, idle, new] + held:
        c.close()


# ---------------------------------------------------------------------------
# Connection rate per client (limit_connection_rate_per_ip): new connections a minute to the
# IMAP, POP3 and submission ports together, counted per IPv4 address (or IPv6 /64) in fixed
# windows; beyond it the protocol's busy reply at once (nothing on an implicit-TLS port) and
# close, logged once per window. Set by a reload (which is what applies it), from addresses
# of their own, so the other tests' connections from 127.0.0.1 are not counted.

RATE = 3
RATE_IP = "127.0.0.3"
CALM_IP = "127.0.0.4"


def first_line(port, source):
    """The first line the server sends a new connection from source (b"" when it closes
    without a word)."""
    s = socket.create_connection((HOST, port), timeout=20, source_address=(source, 0))
    f = s.makefile("rb")
    try:
        return f.readline()
    except ConnectionResetError:
        return b""
    finally:
        f.close()
        s.close()


def test_connection_rate_per_ip(server):
    imap, imaps = imap_ports(server)
    pop3, pop3s = pop3_ports(server)
    reload_with(server, {"limit_connection_rate_per_ip": RATE})
    try:
        # RATE connections, spread over the ports: they count together
        assert first_line(imap, RATE_IP).startswith(b"* OK")
        assert first_line(pop3, RATE_IP).startswith(b"+OK")
        assert first_line(server.submission_port, RATE_IP).startswith(b"220 ")
        # one more on any of them: the busy reply at once, then close
        assert first_line(imap, RATE_IP).startswith(b"* BYE [UNAVAILABLE] ")
        assert first_line(pop3, RATE_IP).startswith(b"-ERR [SYS/TEMP] ")
        assert first_line(server.submission_port, RATE_IP).startswith(b"421 4.7.0 ")
        # implicit TLS: closed before any handshake, without a word
        for port in (imaps, pop3s, server.submissions_port):
            assert first_line(port, RATE_IP) == b""
        # port 25 has a rate of its own (smtp_connection_rate_per_ip, off here)
        assert first_line(server.smtp_port, RATE_IP).startswith(b"220 ")
        # another client is not affected
        assert first_line(imap, CALM_IP).startswith(b"* OK")
        # logged once for the window, however many were refused
        log = server.log_text()
        hits = [l for l in log.splitlines() if "event=rate-limit" in l and RATE_IP in l]
        assert len(hits) == 1, hits
        assert "limit=%d" % RATE in hits[0] and "action=refused" in hits[0], hits
    finally:
        reload_with(server, {"limit_connection_rate_per_ip": 0})
    # off again after a reload: the same client is greeted at once
    assert first_line(imap, RATE_IP).startswith(b"* OK")


# ---------------------------------------------------------------------------
# Clients that never read (moved here from test_slowloris.py: this module keeps the default
# limit_request_timeout, the write timeout)


def stall_ports(server):
    return {"smtp": server.smtp_port, "pop3": pop3_ports(server)[0],
            "imap": imap_ports(server)[0]}


def test_client_that_never_reads_stalls_on_its_own_output(server):
    """Pipelined small commands whose replies are never read: once a session's unsent output
    reaches 1 MiB the server stops reading its input, so the client's sends block instead
    of the server queueing replies without bound (FETCH and RETR of big messages are
    covered by test_imap_streaming.py). Here, not in test_slowloris.py, because that
    module's 3 s limit_request_timeout is also the write timeout, which would cut these
    clients while they block (test_slowloris.py checks that cut). Without the hold, the server would read and answer
    all 64 MiB (and queue some 2.5 times as much in replies); with it the client is
    blocked after what the kernel's socket buffers hold (a few MiB). (Server RSS is not
    asserted: under ASan its quarantine of freed blocks grows with every command.)"""
    flood_max = 64 << 20
    commands = {"smtp": b"NOOP\r\n", "pop3": b"NOOP\r\n", "imap": b"a NOOP\r\n"}

    def one(name):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((HOST, stall_ports(server)[name]))
        s.settimeout(20)
        # past login (and so past limit_login_commands)
        if name == "smtp":
            read_smtp_reply(s)
            s.sendall(b"EHLO c.test\r\n")
            read_smtp_reply(s)
            s.sendall(b"MAIL FROM:<a@remote.test>\r\n")
            assert read_smtp_reply(s).startswith(b"250")
        else:
            raw_login(s, name, USER, PASSWORD)
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
            sock.settimeout(20)
            got = 0
            while got < 3 << 20:
                data = sock.recv(1 << 20)
                assert data, "%s: closed after %d octets of replies" % (name, got)
                got += len(data)
    finally:
        for sock in socks:
            sock.close()


# ---------------------------------------------------------------------------
# Brute-force penalty (last: it leaves this address with a penalty)
#
# Brute-force delays (issue 13 §5): one penalty per client address, shared by SMTP, IMAP and
# POP3 (a failure on one protocol makes the next one on another slower), growing 1, 2, 4, 8,
# 15 s; another address is not affected; no account is ever locked (the right password works
# at once, from any address) and a success clears the address's penalty. The delay each
# failure got is read from the server log (`delay_ms=`), not timed.

OTHER_IP = "127.0.0.2"  # loopback: a second client address


class Line:
    def __init__(self, port, source=None):
        self.s = socket.create_connection((HOST, port), timeout=30,
                                          source_address=(source, 0) if source else None)
        self.f = self.s.makefile("rb")

    def line(self):
        return self.f.readline()

    def send(self, data):
        self.s.sendall(data)

    def close(self):
        self.f.close()
        self.s.close()


def delays(server):
    return [int(d) for d in re.findall(r"result=fail .*delay_ms=(\d+)", server.log_text())]


def imap_login(server, user, password, source=None):
    c = Line(imap_ports(server)[0], source)
    assert c.line().startswith(b"* OK")
    c.send(b'a LOGIN "%s" "%s"\r\n' % (user.encode(), password.encode()))
    r = c.line()
    while r.startswith(b"* "):
        r = c.line()
    c.close()
    return r


def pop3_login(server, user, password):
    c = Line(pop3_ports(server)[0])
    assert c.line().startswith(b"+OK")
    c.send(b"USER %s\r\n" % user.encode())
    assert c.line().startswith(b"+OK")
    c.send(b"PASS %s\r\n" % password.encode())
    r = c.line()
    c.close()
    return r


def smtp_auth(server, user, password):
    c = Line(server.submission_port)
    assert c.line().startswith(b"220")
    c.send(b"EHLO client.test\r\n")
    while not c.line().startswith(b"250 "):
        pass
    token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
    c.send(b"AUTH PLAIN " + token + b"\r\n")
    r = c.line()
    c.close()
    return r


def test_penalty_is_per_address_and_shared_by_the_protocols(server):
    settle(server, imap_ports(server)[0])  # the sessions of the tests above are gone
    n = len(delays(server))
    # an unknown user on IMAP: the first failure from this address, 1 s
    assert imap_login(server, "nobody@example.test", "x").startswith(b"a NO")
    # then POP3 and SMTP from the same address: the same penalty goes on growing
    assert pop3_login(server, USER, "wrong").startswith(b"-ERR")
    assert smtp_auth(server, USER, "wrong").startswith(b"535")
    assert delays(server)[n:] == [1000, 2000, 4000], server.log_text()[-3000:]
    # another address starts from the beginning
    assert imap_login(server, USER, "wrong", source=OTHER_IP).startswith(b"a NO")
    assert delays(server)[n + 3:] == [1000]
    # no account lockout: the right password works at once, from either address ...
    assert imap_login(server, USER, USERS[USER], source=OTHER_IP).startswith(b"a OK")
    assert imap_login(server, USER, USERS[USER]).startswith(b"a OK")
    # ... and the success cleared this address's penalty
    assert pop3_login(server, USER, "wrong again").startswith(b"-ERR")
    assert delays(server)[n + 4:] == [1000]
