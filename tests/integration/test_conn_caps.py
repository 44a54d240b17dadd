"""The total connection cap (issue 13 §5): when `limit_connections` is reached, the oldest
connection that has not logged in is dropped to make room for the newcomer (with the
protocol's busy reply, or silently during a TLS handshake), so a flood of idle, slow or
half-open connections can neither lock out new clients nor touch logged-in sessions. Only
when every connection is logged in is the newcomer refused. Without the eviction, the
newcomer of each step below would get the busy reply instead of a greeting."""

import socket
import time

import pytest

from conftest import HOST, USERS, make_server
from imap_helpers import imap_ports
from test_hostile import raw

CAP = 4
USER = "demo@example.test"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = make_server(tmp_path_factory, "conncap", {
        "limit_connections": CAP, "limit_connections_per_ip": 0,
        "allow_plaintext_auth": "yes", "threads": 2})
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
