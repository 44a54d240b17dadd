"""POP3 with the settings a loopback test setup may choose: allow_plaintext_auth = yes
(USER/PASS and SASL advertised and accepted before TLS), pop3_apop = yes (timestamp banner,
APOP with a secret set by `posthorn user apop`), and small limits: limit_errors = 6,
limit_pop3_idle_timeout = 2s, over-long command lines (limit_command_line = 2048).
The tests that send over-long lines come last: they have crashed the server before."""

import hashlib
import poplib
import re
import time

import pytest

from conftest import USERS, unique
from pop3_helpers import (ALICE, DEMO, RawPOP3, deliver_all, login_plain, message, pop3_port,
                          pop3s_port, wait_pop3)

SERVER_CONF = {
    "allow_plaintext_auth": "yes",
    "pop3_apop": "yes",
    "limit_errors": "6",
    "limit_pop3_idle_timeout": "2s",
    # Look-ups leave the loop (the path PostgreSQL takes): APOP's secret is looked up on an
    # auth look-up thread and the login resumes from its wake.
    "store_read_threads": "2",
}
APOP_SECRET = "apop shared secret"
MECHS = "SCRAM-SHA-256 PLAIN LOGIN"
BANNER = re.compile(rb"^\+OK Posthorn POP3 ready (<[^<>\s]+@mx\.example\.test>)$")


def server_setup(srv):
    p = srv.cli("user", "apop", DEMO, input=APOP_SECRET + "\n", check=False)
    srv.apop_error = None if p.returncode == 0 else (p.stderr.strip() or "exit %d" % p.returncode)


@pytest.fixture(scope="module", autouse=True)
def pop3_ready(server):
    wait_pop3(server)


@pytest.fixture
def apop_secret(server):
    if server.apop_error:
        pytest.skip("`posthorn user apop` is not available: %s" % server.apop_error)
    return APOP_SECRET


def apop_digest(greeting, secret):
    m = BANNER.match(greeting)
    assert m, greeting
    return hashlib.md5(m.group(1) + secret.encode()).hexdigest()


def timed(c, line, timeout=30):
    t = time.monotonic()
    r = c.cmd(line, timeout)
    return r, time.monotonic() - t


def clear_penalty(server):
    with RawPOP3(pop3_port(server)) as c:
        assert c.user_pass(DEMO, timeout=30).startswith(b"+OK Logged in")
        c.cmd("QUIT")


# ---------------------------------------------------------------------------
# Plaintext allowed


def test_capa_lists_user_and_sasl_before_tls(server):
    with RawPOP3(pop3_port(server)) as c:
        caps = c.capa()
        for cap in ("USER", "SASL " + MECHS, "STLS", "TOP", "UIDL", "RESP-CODES",
                    "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER", "IMPLEMENTATION Posthorn"):
            assert cap in caps, caps


def test_user_pass_in_clear(server):
    deliver_all(server, [message(unique("clear"), to=ALICE)], rcpt=ALICE)
    p = login_plain(server, ALICE)            # a password with spaces in it
    assert p.stat()[0] >= 1
    assert p.quit().startswith(b"+OK Logging out")


def test_auth_plain_in_clear(server):
    with RawPOP3(pop3_port(server)) as c:
        r = c.auth_plain(ALICE)
        assert r.startswith(b"+OK Logged in"), r
        assert c.cmd("QUIT").startswith(b"+OK Logging out")


def test_user_forgotten_after_stls(server):
    with RawPOP3(pop3_port(server)) as c:
        assert c.cmd("USER " + DEMO) == b"+OK"
        c.stls()
        assert c.cmd("PASS " + USERS[DEMO]) == b"-ERR No user name given (USER first)"
        assert c.user_pass().startswith(b"+OK Logged in")
        c.cmd("QUIT")


def test_pass_without_user(server):
    with RawPOP3(pop3_port(server)) as c:
        assert c.cmd("PASS " + USERS[DEMO]) == b"-ERR No user name given (USER first)"


# ---------------------------------------------------------------------------
# APOP (RFC 1939 §7)


def test_greeting_has_unique_timestamp(server):
    banners = set()
    for port, tls in ((pop3_port(server), False), (pop3s_port(server), True),
                      (pop3_port(server), False)):
        with RawPOP3(port, tls=tls) as c:
            m = BANNER.match(c.greeting)
            assert m, c.greeting
            banners.add(m.group(1))
    assert len(banners) == 3, banners


def test_apop_login(server, apop_secret):
    p = poplib.POP3("127.0.0.1", pop3_port(server), timeout=30)
    r = p.apop(DEMO, apop_secret)
    assert r.startswith(b"+OK Logged in"), r
    assert p.quit().startswith(b"+OK Logging out")
    # the digest in upper case is the same digest
    with RawPOP3(pop3s_port(server), tls=True) as c:
        r = c.cmd("APOP %s %s" % (DEMO, apop_digest(c.greeting, apop_secret).upper()))
        assert r.startswith(b"+OK Logged in"), r
        c.cmd("QUIT")


def test_apop_wrong_digest_then_right(server, apop_secret):
    with RawPOP3(pop3_port(server)) as c:
        r = c.cmd("APOP %s %s" % (DEMO, apop_digest(c.greeting, apop_secret + "x")), timeout=30)
        assert r == b"-ERR [AUTH] Authentication failed", r
        r = c.cmd("APOP %s %s" % (DEMO, apop_digest(c.greeting, apop_secret)), timeout=30)
        assert r.startswith(b"+OK Logged in"), r
        c.cmd("QUIT")


def test_apop_digest_of_another_greeting_fails(server, apop_secret):
    with RawPOP3(pop3_port(server)) as old:
        stale = apop_digest(old.greeting, apop_secret)
    with RawPOP3(pop3_port(server)) as c:
        r = c.cmd("APOP %s %s" % (DEMO, stale), timeout=30)
        assert r == b"-ERR [AUTH] Authentication failed", r
    clear_penalty(server)


def test_apop_failures_are_limited(server, apop_secret):
    """Wrong digest, an account without APOP secret (her password does not work as one),
    an unknown user: each -ERR [AUTH]; the third failure ends the connection."""
    with RawPOP3(pop3_port(server)) as c:
        r = c.cmd("APOP %s %s" % (DEMO, "0" * 32), timeout=30)
        assert r == b"-ERR [AUTH] Authentication failed", r
        r = c.cmd("APOP %s %s" % (ALICE, apop_digest(c.greeting, USERS[ALICE])), timeout=30)
        assert r == b"-ERR [AUTH] Authentication failed", r
        r = c.cmd("APOP nobody@example.test %s" % apop_digest(c.greeting, "x"), timeout=30)
        assert r == b"-ERR [AUTH] Authentication failed; too many failures, closing", r
        assert c.is_closed(5)
    clear_penalty(server)


def test_apop_failures_get_the_shared_penalty_delay(server, apop_secret):
    """Failed logins earn the growing per-IP delay shared by every protocol (issue: "growing
    delay after auth failures (shared with SMTP/IMAP)"); APOP is a login like any other,
    else its secret can be guessed at full speed."""
    clear_penalty(server)
    with RawPOP3(pop3_port(server)) as c:
        r, t1 = timed(c, "APOP %s %s" % (DEMO, "0" * 32))
        assert r == b"-ERR [AUTH] Authentication failed", r
        r, t2 = timed(c, "APOP %s %s" % (DEMO, "1" * 32))
        assert r == b"-ERR [AUTH] Authentication failed", r
    clear_penalty(server)
    assert t2 >= 0.95, "second APOP failure answered after %.3f s, no penalty delay" % t2


def test_apop_in_use(server, apop_secret):
    with RawPOP3(pop3_port(server)) as a:
        assert a.user_pass(DEMO).startswith(b"+OK Logged in")
        with RawPOP3(pop3_port(server)) as b:
            r = b.cmd("APOP %s %s" % (DEMO, apop_digest(b.greeting, apop_secret)), timeout=30)
            assert r.startswith(b"-ERR [IN-USE] "), r
        a.cmd("QUIT")


# ---------------------------------------------------------------------------
# Limits


def test_bad_commands_then_disconnect(server):
    with RawPOP3(pop3_port(server)) as c:
        for i in range(5):
            assert c.cmd("BOGUS %d" % i) == b"-ERR Unknown command"
        # one line per command: the reply that reaches the limit is the last one
        assert c.cmd("BOGUS 6") == b"-ERR Unknown command"
        assert c.is_closed(5)


def test_errors_in_transaction_count_too(server):
    with RawPOP3(pop3_port(server)) as c:
        assert c.user_pass(DEMO).startswith(b"+OK Logged in")
        for i in range(5):
            assert c.cmd("RETR 999999").startswith(b"-ERR")
        assert c.cmd("NOOP") == b"+OK"           # good commands do not reset or count
        assert c.cmd("DELE 0").startswith(b"-ERR")
        assert c.is_closed(5)


def test_idle_timeout(server):
    deliver_all(server, [message(unique("idle"))])
    before = server.mail_list(DEMO)
    with RawPOP3(pop3_port(server)) as c:
        assert c.user_pass(DEMO).startswith(b"+OK Logged in")
        # commands keep the session alive past the timeout
        for i in range(3):
            time.sleep(0.75)
            assert c.cmd("NOOP") == b"+OK"
        assert c.cmd("DELE 1").startswith(b"+OK")
        t = time.monotonic()
        assert c.read_line(timeout=10) == b"-ERR Disconnected for inactivity"
        waited = time.monotonic() - t
        assert c.is_closed(5)
    assert 1.5 <= waited <= 5, waited
    # an autologout is not a QUIT: nothing is deleted (RFC 1939 §3)
    time.sleep(0.3)
    assert server.mail_list(DEMO) == before
    # and the maildrop is free again
    with RawPOP3(pop3_port(server)) as c:
        assert c.user_pass(DEMO).startswith(b"+OK Logged in")
        c.cmd("QUIT")


# --- over-long lines: keep these last ------------------------------------------------


def test_line_too_long_in_authorization(server):
    with RawPOP3(pop3_port(server)) as c:
        assert c.cmd("USER " + "a" * 3000) == b"-ERR Line too long"
        caps = c.capa()                           # the session survives
        assert "TOP" in caps
        assert c.user_pass().startswith(b"+OK Logged in")
        c.cmd("QUIT")


def test_line_too_long_in_transaction_and_boundary(server):
    with RawPOP3(pop3_port(server)) as c:
        assert c.user_pass().startswith(b"+OK Logged in")
        # 2048 octets with CRLF is within the limit, 2049 is not
        assert c.cmd("NOOP" + " " * 2042) == b"+OK"
        assert c.cmd("NOOP" + " " * 2043) == b"-ERR Line too long"
        assert c.cmd("NOOP") == b"+OK"
        # a very long line sent in pieces: one error, the rest discarded up to its LF
        c.send(b"RETR 1" + b"x" * 5000)
        time.sleep(0.2)
        c.send(b"y" * 100000)
        time.sleep(0.2)
        c.send(b"z\r\nNOOP\r\n")
        assert c.read_line() == b"-ERR Line too long"
        assert c.read_line() == b"+OK"
        assert c.no_reply(0.3)
        c.cmd("QUIT")


def test_sasl_continuation_too_long(server):
    with RawPOP3(pop3_port(server)) as c:
        assert c.cmd("AUTH PLAIN") == b"+ "
        assert c.cmd("A" * 13000) == b"-ERR Line too long"
        # the exchange is over; a new one works
        r = c.auth_plain(DEMO)
        assert r.startswith(b"+OK Logged in"), r
        c.cmd("QUIT")
