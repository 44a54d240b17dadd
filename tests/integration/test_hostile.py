"""Hostile clients (issue 8 §4): bounded time before login on every port, smaller limits
before login, a cap on sessions per user and address, SMTP bot checks (HELO names, xtext,
pipelining without PIPELINING, talking before the greeting).

Every test here fails without its defence: a silent or trickling client would keep its
connection for the 30-minute idle timeout, a bot would get a greeting, and so on."""

import base64
import socket
import ssl
import time

import pytest

from conftest import HOST, USERS, RawSMTP, make_server, tls_client_context
from imap_helpers import imap_ports
from pop3_helpers import pop3_ports

LOGIN_TIMEOUT = 6  # seconds; a login (argon2id) on a loaded test machine must fit well inside
TLS_TIMEOUT = 2
LOGIN_COMMANDS = 5
SESSIONS = 3

SERVER_CONF = {
    "allow_plaintext_auth": "yes",
    "limit_login_timeout": "%ds" % LOGIN_TIMEOUT,
    "limit_tls_handshake_timeout": "%ds" % TLS_TIMEOUT,
    "limit_login_commands": LOGIN_COMMANDS,
    "limit_sessions_per_user_ip": SESSIONS,
}

USER = "demo@example.test"
PASSWORD = USERS[USER]
# How long a test waits for the server to act on a deadline: far above the deadline, far
# below the idle timeouts (5 to 30 minutes) that would otherwise end the connection.
GRACE = 20


def raw(port, tls=False):
    """A raw line client without reading a greeting."""
    return RawSMTP(port, tls=tls, greeting=False, timeout=GRACE)


def ports(server):
    imap, imaps = imap_ports(server)
    pop3, pop3s = pop3_ports(server)
    return {"smtp": server.smtp_port, "submission": server.submission_port,
            "submissions": server.submissions_port, "pop3": pop3, "pop3s": pop3s,
            "imap": imap, "imaps": imaps}


def wait_log(server, text, timeout=GRACE):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in server.log_text():
            return True
        time.sleep(0.1)
    return False


def imap_login(port, user=USER, password=PASSWORD):
    c = raw(port)
    assert c.read_line().startswith(b"* OK")
    c.send(b'a LOGIN "%s" "%s"\r\n' % (user.encode(), password.encode()))
    return c, c.read_line()


# ---------------------------------------------------------------------------
# Time before login


@pytest.mark.parametrize("proto", ["smtp", "submission", "pop3", "imap"])
def test_silent_client_is_closed_at_the_login_deadline(server, proto):
    c = raw(ports(server)[proto])
    c.read_line()  # greeting
    assert c.is_closed(GRACE), "a silent client kept its connection"
    c.close()


@pytest.mark.parametrize("proto", ["smtp", "pop3", "imap"])
def test_trickle_does_not_push_the_deadline_back(server, proto):
    """One octet every 0.3 s resets an idle timer forever; the deadline is absolute."""
    c = raw(ports(server)[proto])
    c.read_line()
    start = time.monotonic()
    closed = False
    while time.monotonic() - start < GRACE:
        try:
            c.send(b"N")
        except OSError:
            closed = True
            break
        if not c.no_reply(0.3):
            closed = c.is_closed(1.0) or b"\r\n" in c.buf
            if closed:
                break
    assert closed, "a trickling client kept its connection for %d s" % GRACE
    assert wait_log(server, "reason=login-timeout")
    c.close()


@pytest.mark.parametrize("proto", ["submissions", "pop3s", "imaps"])
def test_unfinished_tls_handshake_is_dropped(server, proto):
    s = socket.create_connection((HOST, ports(server)[proto]), timeout=GRACE)
    s.settimeout(GRACE)
    try:
        assert s.recv(100) == b"", "data before any handshake"
    except ConnectionResetError:
        pass
    s.close()
    assert wait_log(server, "reason=tls-handshake-timeout")


def test_starttls_without_handshake_is_dropped(server):
    c = raw(ports(server)["imap"])
    c.read_line()
    c.send(b"a STARTTLS\r\n")
    assert c.read_line().startswith(b"a OK")
    assert c.is_closed(GRACE)
    c.close()


def test_logged_in_sessions_outlive_the_deadline(server):
    """... and one that logged out again with IMAP UNAUTHENTICATE (RFC 8437) does not: the
    deadline runs again from the UNAUTHENTICATE."""
    p = ports(server)
    c, r = imap_login(p["imap"])
    assert r.startswith(b"a OK"), r
    out, r = imap_login(p["imap"])
    assert r.startswith(b"a OK"), r
    out.send(b"u UNAUTHENTICATE\r\n")
    assert out.read_line().startswith(b"u OK")
    pop = raw(p["pop3"])
    assert pop.read_line().startswith(b"+OK")
    pop.send(b"USER %s\r\n" % USER.encode())
    assert pop.read_line().startswith(b"+OK")
    pop.send(b"PASS %s\r\n" % PASSWORD.encode())
    assert pop.read_line().startswith(b"+OK")
    sub = RawSMTP(p["submission"], timeout=GRACE)
    sub.ehlo()
    token = base64.b64encode(b"\0" + USER.encode() + b"\0" + PASSWORD.encode()).decode()
    assert sub.cmd("AUTH PLAIN " + token).code == 235
    mx = RawSMTP(p["smtp"], timeout=GRACE)
    mx.ehlo()
    assert mx.cmd("MAIL FROM:<a@remote.test>").code == 250
    time.sleep(LOGIN_TIMEOUT + 2)
    c.send(b"b NOOP\r\n")
    assert c.read_line().startswith(b"b OK")
    pop.send(b"NOOP\r\n")
    assert pop.read_line().startswith(b"+OK")
    assert sub.cmd("NOOP").code == 250
    assert mx.cmd("RCPT TO:<%s>" % USER).code == 250
    # logged out again: the deadline (it would otherwise wait for the idle timeout)
    assert out.read_line().startswith(b"* BYE")
    assert out.is_closed(GRACE)
    for x in (c, pop, sub, mx, out):
        x.close()


# ---------------------------------------------------------------------------
# Smaller limits before login


def test_imap_commands_before_login_are_capped(server):
    c = raw(ports(server)["imap"])
    c.read_line()
    for i in range(LOGIN_COMMANDS):
        c.send(b"n%d NOOP\r\n" % i)
        assert c.read_line().startswith(b"n%d OK" % i)
    c.send(b"x NOOP\r\n")
    assert c.read_line().startswith(b"* BYE")
    assert c.is_closed()
    c.close()
    # once logged in, no such cap
    c, r = imap_login(ports(server)["imap"])
    assert r.startswith(b"a OK")
    for i in range(LOGIN_COMMANDS * 2):
        c.send(b"n%d NOOP\r\n" % i)
        assert c.read_line().startswith(b"n%d OK" % i)
    c.close()


def test_unauthenticate_restarts_the_login_commands(server):
    """After IMAP UNAUTHENTICATE (RFC 8437) limit_login_commands counts again from 0 (the
    login deadline's restart is checked in test_logged_in_sessions_outlive_the_deadline)."""
    c, r = imap_login(ports(server)["imap"])
    assert r.startswith(b"a OK"), r
    for i in range(LOGIN_COMMANDS * 2):  # logged in: no cap
        c.send(b"n%d NOOP\r\n" % i)
        assert c.read_line().startswith(b"n%d OK" % i)
    c.send(b"u UNAUTHENTICATE\r\n")
    assert c.read_line().startswith(b"u OK")
    for i in range(LOGIN_COMMANDS):
        c.send(b"m%d NOOP\r\n" % i)
        assert c.read_line().startswith(b"m%d OK" % i)
    c.send(b"x NOOP\r\n")
    assert c.read_line().startswith(b"* BYE")
    assert c.is_closed()
    c.close()


def test_pop3_commands_before_login_are_capped(server):
    c = raw(ports(server)["pop3"])
    c.read_line()
    for _ in range(LOGIN_COMMANDS):
        c.send(b"NOOP\r\n")
        c.read_line()  # -ERR: NOOP is a TRANSACTION command; counted all the same
    c.send(b"QUIT\r\n")
    assert c.read_line() == b"-ERR Too many commands before login"
    assert c.is_closed()
    c.close()


def test_smtp_commands_before_mail_are_capped(server):
    c = RawSMTP(ports(server)["smtp"], timeout=GRACE)
    for _ in range(LOGIN_COMMANDS):
        assert c.cmd("NOOP").code == 250
    r = c.cmd("NOOP")
    assert r.code == 421 and r.lines[0].startswith("4.7.0"), r
    assert c.is_closed()
    c.close()


def test_imap_literal_before_login_is_small(server):
    port = ports(server)["imap"]
    c = raw(port)
    c.read_line()
    c.send(b"a LOGIN {5000}\r\n")
    r = c.read_line()
    assert r.startswith(b"a NO [TOOBIG]"), r
    c.send(b"b LOGIN {4096}\r\n")
    assert c.read_line().startswith(b"+")  # within the limit: go ahead
    c.send(b"x" * 4096 + b" y\r\n")
    assert c.read_line().startswith(b"b NO")  # a wrong login, but read
    # the literals of one command together: at most two of that size (user and password)
    c.send(b"d X {4000}\r\n")
    assert c.read_line().startswith(b"+")
    c.send(b"x" * 4000 + b" {4000}\r\n")
    assert c.read_line().startswith(b"+")
    c.send(b"x" * 4000 + b" {500}\r\n")
    r = c.read_line()
    assert r.startswith(b"d NO [TOOBIG]"), r
    # LITERAL+ (RFC 7888 §4: LITERAL- semantics before login): over 4096 ends the session
    c.send(b"c LOGIN {5000+}\r\n")
    assert c.read_line().startswith(b"* BYE")
    assert c.is_closed()
    c.close()
    # after login, big literals are fine
    c, r = imap_login(port)
    assert r.startswith(b"a OK")
    c.send(b"b SELECT {5000}\r\n")
    assert c.read_line().startswith(b"+")
    c.close()


def test_imap_line_before_login_is_small(server):
    port = ports(server)["imap"]
    c = raw(port)
    c.read_line()
    # an ID of RFC 2971's largest values (30 pairs, 1024 octets each) fits
    pairs = b" ".join(b'"k%02d" "%s"' % (i, b"v" * 1024) for i in range(30))
    c.send(b"i ID (" + pairs + b")\r\n")
    r = c.read_line()
    while r.startswith(b"* "):
        r = c.read_line()
    assert r.startswith(b"i OK"), r
    c.send(b"a NOOP " + b"x" * 40000 + b"\r\n")
    r = c.read_line()
    assert b"[TOOBIG]" in r, r
    c.close()
    c, r = imap_login(port)
    assert r.startswith(b"a OK")
    c.send(b"b NOOP " + b"x" * 40000 + b"\r\n")
    r = c.read_line()
    assert b"[TOOBIG]" not in r, r
    c.close()


# ---------------------------------------------------------------------------
# Sessions per user and address


def login_when_free(port):
    """A login of USER that earlier tests' sessions, closed by the client but perhaps not
    yet seen closed by a busy server, may hold up for a moment (never past GRACE)."""
    deadline = time.monotonic() + GRACE
    while True:
        c, r = imap_login(port)
        if not r.startswith(b"a NO [LIMIT]") or time.monotonic() > deadline:
            return c, r
        c.close()
        time.sleep(0.1)


def test_sessions_per_user_ip_are_capped(server):
    port = ports(server)["imap"]
    held = []
    for _ in range(SESSIONS):
        c, r = login_when_free(port)
        assert r.startswith(b"a OK"), r
        held.append(c)
    extra, r = imap_login(port)
    assert r.startswith(b"a NO [LIMIT]"), r
    # another account from the same address is not affected
    other, r = imap_login(port, "alice@example.test", USERS["alice@example.test"])
    assert r.startswith(b"a OK"), r
    other.close()
    # one session ends: the next login gets its place
    held.pop().close()
    deadline = time.monotonic() + GRACE
    while True:
        extra.send(b'b LOGIN "%s" "%s"\r\n' % (USER.encode(), PASSWORD.encode()))
        r = extra.read_line()
        if r.startswith(b"b OK") or time.monotonic() > deadline:
            break
        assert r.startswith(b"b NO [LIMIT]"), r
        time.sleep(0.2)
    assert r.startswith(b"b OK"), r
    for c in held + [extra]:
        c.close()


def submission_login(port):
    c = RawSMTP(port, timeout=GRACE)
    assert c.cmd("EHLO client.test").code == 250
    plain = base64.b64encode(b"\0" + USER.encode() + b"\0" + PASSWORD.encode()).decode()
    return c, c.cmd("AUTH PLAIN " + plain)


def test_submission_sessions_per_user_ip_are_capped(server):
    port = ports(server)["submission"]
    held = []
    for _ in range(SESSIONS):
        c, r = submission_login(port)
        assert r.code == 235, r
        held.append(c)
    extra, r = submission_login(port)
    assert r.code == 454 and r.lines[0].startswith("4.7.0"), r
    # not authenticated: a message from the account's address is refused
    assert extra.cmd("MAIL FROM:<%s>" % USER).code == 530
    held.pop().close()
    deadline = time.monotonic() + GRACE
    plain = base64.b64encode(b"\0" + USER.encode() + b"\0" + PASSWORD.encode()).decode()
    while True:
        r = extra.cmd("AUTH PLAIN " + plain)
        if r.code == 235 or time.monotonic() > deadline:
            break
        assert r.code == 454, r
        time.sleep(0.2)
    assert r.code == 235, r
    for c in held + [extra]:
        c.close()


# ---------------------------------------------------------------------------
# SMTP bots


def test_helo_names_are_checked(server):
    with RawSMTP(ports(server)["smtp"], timeout=GRACE) as c:
        for bad in (b"EHLO ex\xc3\xa4mple.test", b"HELO a b", b"EHLO [300.1.1.1]", b"HELO -x"):
            r = c.cmd(bad)
            assert r.code == 501 and r.lines[0].startswith("5.5.2"), (bad, r)
        assert c.cmd("EHLO [127.0.0.1]").code == 250


def test_auth_param_xtext_is_checked(server):
    with RawSMTP(ports(server)["smtp"], timeout=GRACE) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@remote.test> AUTH=a+2")
        assert r.code == 501 and r.lines[0].startswith("5.5.4"), r
        assert c.cmd("MAIL FROM:<a@remote.test> AUTH=a+40remote.test").code == 250


def test_pipelining_without_pipelining_is_a_bot_on_port_25(server):
    c = RawSMTP(ports(server)["smtp"], timeout=GRACE)
    c.send(b"HELO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<%s>\r\n" % USER.encode())
    r = c.read_reply()
    assert r.code == 554 and r.lines[0].startswith("5.5.1"), r
    assert c.is_closed()
    c.close()
    assert wait_log(server, "event=bot reason=pipelining")
    # after EHLO (PIPELINING offered) the same group is fine
    c = RawSMTP(ports(server)["smtp"], timeout=GRACE)
    c.ehlo()
    c.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<%s>\r\n" % USER.encode())
    assert c.read_reply().code == 250
    assert c.read_reply().code == 250
    c.close()


def test_submission_is_not_checked_for_pipelining(server):
    c = RawSMTP(ports(server)["submission"], timeout=GRACE)
    c.send(b"HELO client.test\r\nNOOP\r\n")
    assert c.read_reply().code == 250
    assert c.read_reply().code == 250
    c.close()


@pytest.fixture(scope="module")
def pregreet_server(tmp_path_factory):
    srv = make_server(tmp_path_factory, "pregreet", {"smtp_pregreet_wait": "1s"})
    srv.start()
    yield srv
    srv.stop_and_check()


def test_talking_before_the_greeting_is_a_bot(pregreet_server):
    c = RawSMTP(pregreet_server.smtp_port, greeting=False, timeout=GRACE)
    c.send(b"EHLO client.test\r\n")
    r = c.read_reply()
    assert r.code == 554 and r.lines[0].startswith("5.5.1"), r
    assert c.is_closed()
    c.close()
    assert wait_log(pregreet_server, "event=bot reason=pregreet")


def test_a_patient_client_gets_the_greeting(pregreet_server):
    c = RawSMTP(pregreet_server.smtp_port, greeting=False, timeout=GRACE)
    assert c.read_reply().code == 220
    c.ehlo()
    assert c.cmd("QUIT").code == 221
    c.close()
    # the submission ports never wait
    c = RawSMTP(pregreet_server.submission_port, greeting=False, timeout=GRACE)
    c.send(b"EHLO client.test\r\n")
    assert c.read_reply().code == 220
    assert c.read_reply().code == 250
    c.close()
