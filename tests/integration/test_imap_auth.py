"""IMAP LOGIN/AUTHENTICATE through the shared login driver: RFC 4954 §4's 12,288-octet SASL
line for AUTHENTICATE continuations (longer: a tagged BAD that ends the exchange, never only
an untagged one), malformed base64 is a tagged BAD, failures answer NO [AUTHENTICATIONFAILED]
after the per-IP delay from the first failure, and the limit adds BYE and closes.
Its own module (own server): the penalties slow later logins from 127.0.0.1."""

import base64
import socket
import time

from imap_helpers import imap_ports, tls_ctx, wait_imap
from conftest import HOST, USERS

DEMO = "demo@example.test"


def raw(server):
    wait_imap(server)
    sock = tls_ctx().wrap_socket(socket.create_connection((HOST, imap_ports(server)[1]), timeout=30))
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    return sock, f


def login_ok(server):
    """A successful login (clears the penalty of 127.0.0.1)."""
    sock, f = raw(server)
    sock.sendall(b"z1 LOGIN %s %s\r\n" % (DEMO.encode(), USERS[DEMO].encode()))
    assert f.readline().startswith(b"z1 OK"), "login failed"
    sock.close()


def test_authenticate_line_limits(server):
    login_ok(server)
    sock, f = raw(server)
    # a continuation of exactly 12,288 octets is read (and too long for PLAIN: BAD)
    sock.sendall(b"a1 AUTHENTICATE PLAIN\r\n")
    assert f.readline() == b"+ \r\n"
    sock.sendall(b"QUFB" * 3072 + b"\r\n")
    line = f.readline()
    assert line.startswith(b"a1 BAD "), line
    # one octet more: a tagged BAD [TOOBIG], and the exchange is over
    sock.sendall(b"a2 AUTHENTICATE PLAIN\r\n")
    assert f.readline() == b"+ \r\n"
    sock.sendall(b"QUFB" * 3072 + b"Q\r\n")
    line = f.readline()
    assert line.startswith(b"a2 BAD [TOOBIG]"), line
    sock.sendall(b"a3 NOOP\r\n")
    assert f.readline().startswith(b"a3 OK"), "session did not go on"
    # malformed base64: tagged BAD
    sock.sendall(b"a4 AUTHENTICATE PLAIN\r\n")
    assert f.readline() == b"+ \r\n"
    sock.sendall(b"not base64!\r\n")
    line = f.readline()
    assert line.startswith(b"a4 BAD "), line
    sock.sendall(b"a5 AUTHENTICATE PLAIN AG!!\r\n")
    line = f.readline()
    assert line.startswith(b"a5 BAD "), line
    # still usable
    ir = base64.b64encode(b"\0" + DEMO.encode() + b"\0" + USERS[DEMO].encode())
    sock.sendall(b"a6 AUTHENTICATE PLAIN " + ir + b"\r\n")
    line = f.readline()
    assert line.startswith(b"a6 OK [CAPABILITY "), line
    sock.close()


def timed(sock, f, line):
    t = time.monotonic()
    sock.sendall(line + b"\r\n")
    r = f.readline()
    return r, time.monotonic() - t


def test_failures_delay_from_the_first_then_bye(server):
    login_ok(server)
    sock, f = raw(server)
    r, t1 = timed(sock, f, b"a1 LOGIN nobody@example.test whatever")
    assert r.startswith(b"a1 NO [AUTHENTICATIONFAILED]"), r
    r, t2 = timed(sock, f, b"a2 LOGIN %s wrong" % DEMO.encode())
    assert r.startswith(b"a2 NO [AUTHENTICATIONFAILED]"), r
    ir = base64.b64encode(b"\0" + DEMO.encode() + b"\0still-wrong")
    r, t3 = timed(sock, f, b"a3 AUTHENTICATE PLAIN " + ir)
    assert r.startswith(b"a3 NO [AUTHENTICATIONFAILED]"), r
    assert f.readline().startswith(b"* BYE "), "no BYE at the limit"
    assert f.readline() == b"", "connection not closed"
    sock.close()
    assert t1 >= 0.95, t1
    assert t2 >= 1.95, t2
    assert t3 >= 3.95, t3
    login_ok(server)


def test_client_gone_while_its_password_is_checked(server):
    """A client that closes its connection while its password is being hashed: the session
    is freed when the check ends (no crash, no leak under ASan), in all three protocols."""
    from pop3_helpers import pop3s_port, wait_pop3
    from conftest import RawSMTP
    wait_pop3(server)
    for i in range(3):
        sock, f = raw(server)
        sock.sendall(b"a1 LOGIN %s wrong-%d\r\n" % (DEMO.encode(), i))
        sock.close()
        p = socket.create_connection((HOST, pop3s_port(server)), timeout=30)
        p = tls_ctx().wrap_socket(p)
        p.recv(512)
        p.sendall(b"USER %s\r\nPASS wrong-%d\r\n" % (DEMO.encode(), i))
        p.close()
        with RawSMTP(server.submissions_port, tls=True) as c:
            c.ehlo()
            ir = base64.b64encode(b"\0" + DEMO.encode() + b"\0wrong-%d" % i).decode()
            c.send("AUTH PLAIN %s\r\n" % ir)
    time.sleep(2)
    login_ok(server)  # the server is alive (and the penalty cleared)
