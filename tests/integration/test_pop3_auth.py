"""POP3 TLS and login on the configuration `posthorn init` writes (allow_plaintext_auth = no,
pop3_apop = no): STLS on 110 and implicit TLS on 995, plaintext USER/PASS/AUTH refused
before STLS with -ERR [AUTH], CAPA before/after TLS and in TRANSACTION (RFC 2449), AUTH
PLAIN/LOGIN with and without initial response and the "+ " continuation (RFC 5034),
cancel with "*", failures answered with -ERR [AUTH] after the shared penalty delay and a
disconnect at limit_auth_failures, APOP refused while disabled, STLS injection.
Kept apart from other modules: auth penalties slow every later login from 127.0.0.1."""

import poplib
import time

import pytest

from conftest import USERS
from pop3_helpers import (ALICE, DEMO, GREETING, PLAINTEXT_REFUSED, RawPOP3, b64, connect_ssl,
                          connect_stls, login_ssl, login_stls, plain_b64, pop3_port, pop3s_port,
                          wait_pop3)

MECHS = "SCRAM-SHA-256 PLAIN LOGIN"


@pytest.fixture(scope="module", autouse=True)
def pop3_ready(server):
    wait_pop3(server)


def base_caps():
    return ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER",
            "IMPLEMENTATION Posthorn"]


def timed(c, line, timeout=30):
    t = time.monotonic()
    r = c.cmd(line, timeout)
    return r, time.monotonic() - t


def login_cost(server):
    """Seconds a good AUTH PLAIN takes here (hashing, sanitizers, load); clears penalties."""
    with RawPOP3(pop3s_port(server), tls=True) as c:
        r, t = timed(c, "AUTH PLAIN " + plain_b64(DEMO, USERS[DEMO]))
        assert r.startswith(b"+OK Logged in"), r
        c.cmd("QUIT")
        return t


# ---------------------------------------------------------------------------
# TLS and CAPA


def test_greeting_without_apop_banner(server):
    with RawPOP3(pop3_port(server)) as c:
        assert c.greeting == GREETING
    with RawPOP3(pop3s_port(server), tls=True) as c:
        assert c.greeting == GREETING


def test_capa_before_tls(server):
    with RawPOP3(pop3_port(server)) as c:
        caps = c.capa()
        for cap in base_caps() + ["STLS"]:
            assert cap in caps, caps
        # no plaintext mechanisms advertised before TLS (issue 4: USER not advertised; a
        # SASL line, if any, may only offer mechanisms that do not reveal the password)
        assert not any(l.split()[0] == "USER" for l in caps), caps
        for l in caps:
            if l.split()[0] == "SASL":
                assert not {"PLAIN", "LOGIN"} & set(l.split()[1:]), caps
        assert caps.count("STLS") == 1


def test_capa_after_stls(server):
    with RawPOP3(pop3_port(server)) as c:
        assert c.stls() == b"+OK Begin TLS negotiation"
        caps = c.capa()
        for cap in base_caps() + ["USER", "SASL " + MECHS]:
            assert cap in caps, caps
        assert "STLS" not in caps


def test_capa_on_995_and_in_transaction(server):
    with RawPOP3(pop3s_port(server), tls=True) as c:
        caps = c.capa()
        for cap in base_caps() + ["USER", "SASL " + MECHS]:
            assert cap in caps, caps
        assert "STLS" not in caps
        assert c.user_pass().startswith(b"+OK Logged in")
        caps = c.capa()
        for cap in base_caps():
            assert cap in caps, caps
        for cap in ("STLS", "USER", "SASL", "LOGIN-DELAY"):
            assert not any(l.split()[0] == cap for l in caps), caps
        assert c.cmd("QUIT") == b"+OK Logging out"


def test_poplib_capa_parses(server):
    p = connect_ssl(server)
    caps = p.capa()
    assert caps["SASL"] == MECHS.split()
    assert caps["EXPIRE"] == ["NEVER"]
    assert "RESP-CODES" in caps and "TOP" in caps and "UIDL" in caps
    p.quit()


def test_stls_then_login(server):
    p = login_stls(server)
    assert p.noop() == b"+OK"
    assert p.quit().startswith(b"+OK Logging out")


def test_implicit_tls_login(server):
    p = login_ssl(server)
    count, size = p.stat()
    assert count >= 0 and size >= 0
    assert p.quit().startswith(b"+OK Logging out")


def test_stls_twice_and_on_995(server):
    with RawPOP3(pop3_port(server)) as c:
        c.stls()
        assert c.cmd("STLS") == b"-ERR TLS is already active"
    with RawPOP3(pop3s_port(server), tls=True) as c:
        assert c.cmd("STLS") == b"-ERR TLS is already active"


def test_plaintext_refused_before_stls(server):
    with RawPOP3(pop3_port(server)) as c:
        assert c.cmd("USER " + DEMO) == PLAINTEXT_REFUSED
        assert c.cmd("PASS " + USERS[DEMO]) == PLAINTEXT_REFUSED
        assert c.cmd("AUTH PLAIN " + plain_b64(DEMO, USERS[DEMO])) == PLAINTEXT_REFUSED
        assert c.cmd("AUTH PLAIN") == PLAINTEXT_REFUSED
        assert c.cmd("AUTH LOGIN") == PLAINTEXT_REFUSED
        assert c.cmd("STAT") == b"-ERR Not logged in"
        # the same connection logs in after STLS
        c.stls()
        assert c.user_pass().startswith(b"+OK Logged in")
        assert c.cmd("QUIT").startswith(b"+OK Logging out")


def test_poplib_refused_before_stls(server):
    p = poplib.POP3("127.0.0.1", pop3_port(server), timeout=30)
    with pytest.raises(poplib.error_proto) as e:
        p.user(DEMO)
    assert e.value.args[0] == PLAINTEXT_REFUSED
    p.quit()


def test_stls_discards_pipelined_cleartext(server):
    """RFC 2595 §4 / STARTTLS injection: commands sent in clear after STLS, in the same
    packet, must be discarded, not run inside the TLS session."""
    with RawPOP3(pop3_port(server)) as c:
        c.send("STLS\r\nUSER %s\r\n" % DEMO)
        assert c.read_line() == b"+OK Begin TLS negotiation"
        c.wrap_tls()
        assert c.cleartext_leftover == b""
        # had the injected USER been run after the handshake, PASS would be checked
        assert c.cmd("PASS " + USERS[DEMO]) == b"-ERR No user name given (USER first)"
        assert c.user_pass().startswith(b"+OK Logged in")
        c.cmd("QUIT")


def test_user_name_forgotten_at_stls(server):
    """UTF8 before STLS is accepted; after STLS, PASS still needs a USER sent inside TLS."""
    with RawPOP3(pop3_port(server)) as c:
        assert c.cmd("UTF8") == b"+OK UTF8 enabled"
        c.stls()
        assert c.cmd("PASS x") == b"-ERR No user name given (USER first)"


def test_apop_disabled(server):
    with RawPOP3(pop3s_port(server), tls=True) as c:
        assert b"<" not in c.greeting
        assert c.cmd("APOP %s %s" % (DEMO, "0" * 32)) == b"-ERR APOP is not enabled on this server"
        assert c.user_pass().startswith(b"+OK Logged in")
        c.cmd("QUIT")
    p = connect_ssl(server)
    with pytest.raises(poplib.error_proto):
        p.apop(DEMO, "whatever")
    p.quit()


# ---------------------------------------------------------------------------
# AUTH (RFC 5034)


def test_auth_lists_mechanisms(server):
    with RawPOP3(pop3s_port(server), tls=True) as c:
        status, lines = c.multi("AUTH")
        assert status == b"+OK"
        assert lines == [m.encode() for m in MECHS.split()]


def test_auth_plain_initial_response(server):
    with RawPOP3(pop3s_port(server), tls=True) as c:
        r = c.cmd("AUTH PLAIN " + plain_b64(DEMO, USERS[DEMO]), timeout=30)
        assert r.startswith(b"+OK Logged in"), r
        assert c.cmd("QUIT").startswith(b"+OK Logging out")
    # with authzid = authcid, lower-case mechanism name, and a password with spaces
    with RawPOP3(pop3s_port(server), tls=True) as c:
        r = c.cmd("AUTH plain " + plain_b64(ALICE, USERS[ALICE], authzid=ALICE), timeout=30)
        assert r.startswith(b"+OK Logged in"), r
        assert c.cmd("QUIT").startswith(b"+OK Logging out")


def test_auth_plain_continuation(server):
    with RawPOP3(pop3_port(server)) as c:
        c.stls()
        assert c.cmd("AUTH PLAIN") == b"+ "
        r = c.cmd(plain_b64(DEMO, USERS[DEMO]), timeout=30)
        assert r.startswith(b"+OK Logged in"), r
        assert c.cmd("QUIT").startswith(b"+OK Logging out")


def test_auth_login(server):
    with RawPOP3(pop3s_port(server), tls=True) as c:
        assert c.cmd("AUTH LOGIN") == b"+ " + b64("Username:").encode()
        assert c.cmd(b64(ALICE)) == b"+ " + b64("Password:").encode()
        r = c.cmd(b64(USERS[ALICE]), timeout=30)
        assert r.startswith(b"+OK Logged in"), r
        assert c.cmd("QUIT").startswith(b"+OK Logging out")
    # user name as initial response
    with RawPOP3(pop3s_port(server), tls=True) as c:
        assert c.cmd("AUTH LOGIN " + b64(ALICE)) == b"+ " + b64("Password:").encode()
        r = c.cmd(b64(USERS[ALICE]), timeout=30)
        assert r.startswith(b"+OK Logged in"), r
        c.cmd("QUIT")


def test_auth_cancel(server):
    with RawPOP3(pop3s_port(server), tls=True) as c:
        assert c.cmd("AUTH PLAIN") == b"+ "
        assert c.cmd("*") == b"-ERR Authentication cancelled"
        assert c.cmd("AUTH LOGIN").startswith(b"+ ")
        assert c.cmd(b64(DEMO)).startswith(b"+ ")
        assert c.cmd("*") == b"-ERR Authentication cancelled"
        # back in AUTHORIZATION: a login works
        r = c.cmd("AUTH PLAIN " + plain_b64(DEMO, USERS[DEMO]), timeout=30)
        assert r.startswith(b"+OK Logged in"), r
        c.cmd("QUIT")


def test_auth_bad_input(server):
    with RawPOP3(pop3s_port(server), tls=True) as c:
        assert c.cmd("AUTH CRAM-MD5") == b"-ERR Unsupported authentication mechanism"
        assert c.cmd("AUTH PLAIN !!!notbase64").startswith(b"-ERR")
        assert c.cmd("AUTH PLAIN") == b"+ "
        assert c.cmd("%%%").startswith(b"-ERR")
        assert c.cmd("AUTH LOGIN") == b"+ " + b64("Username:").encode()
        assert c.cmd("").startswith(b"-ERR")      # empty user name
        r = c.cmd("AUTH PLAIN " + plain_b64(DEMO, USERS[DEMO]), timeout=30)
        assert r.startswith(b"+OK Logged in"), r
        c.cmd("QUIT")


def test_auth_plain_other_authzid_fails(server):
    login_cost(server)
    with RawPOP3(pop3s_port(server), tls=True) as c:
        r = c.cmd("AUTH PLAIN " + plain_b64(DEMO, USERS[DEMO], authzid=ALICE), timeout=30)
        assert r == b"-ERR [AUTH] Authentication failed", r
    login_cost(server)


def test_failures_delay_then_disconnect(server):
    base = login_cost(server)     # also clears the penalty of 127.0.0.1
    with RawPOP3(pop3s_port(server), tls=True) as c:
        # 1: unknown user through USER/PASS: the delay applies from the first failure (1 s)
        assert c.cmd("USER nobody@example.test") == b"+OK"
        r, t1 = timed(c, "PASS whatever")
        assert r == b"-ERR [AUTH] Authentication failed", r
        # 2: wrong password through AUTH PLAIN: about 2 s
        r, t2 = timed(c, "AUTH PLAIN " + plain_b64(DEMO, "wrong-password"))
        assert r == b"-ERR [AUTH] Authentication failed", r
        # 3: wrong password through AUTH LOGIN: about 4 s, one line, then the connection ends
        assert c.cmd("AUTH LOGIN").startswith(b"+ ")
        assert c.cmd(b64(DEMO)).startswith(b"+ ")
        r, t3 = timed(c, b64("still-wrong"))
        assert r == b"-ERR [AUTH] Authentication failed; too many failures, closing", r
        assert c.is_closed(5)
    assert 0.95 <= t1 < base + 4, (t1, base)
    assert 1.95 <= t2 < base + 5, (t2, base)
    assert 3.95 <= t3 < base + 7, (t3, base)
    # a success clears the penalty
    login_cost(server)
    with RawPOP3(pop3s_port(server), tls=True) as c:
        r, t = timed(c, "AUTH PLAIN " + plain_b64(DEMO, "wrong-again"))
        assert r == b"-ERR [AUTH] Authentication failed"
        assert t < base + 4, t  # the first failure's 1 s, not the 8 s that would follow
        # a failure does not end the session
        r = c.cmd("AUTH PLAIN " + plain_b64(DEMO, USERS[DEMO]), timeout=30)
        assert r.startswith(b"+OK Logged in"), r
        c.cmd("QUIT")


def test_poplib_bad_password(server):
    login_cost(server)
    p = connect_stls(server)
    p.user(DEMO)
    with pytest.raises(poplib.error_proto) as e:
        p.pass_("not the password")
    assert e.value.args[0] == b"-ERR [AUTH] Authentication failed"
    p.quit()
    login_cost(server)


def test_pipelined_failed_logins_one_line_per_command(server):
    """Issue 8 §3: a failed login that also ends the session answers exactly one line per
    command. Seven commands in one write over a raw socket: USER/PASS three times with
    wrong passwords, then NOOP. Replies: +OK, -ERR, +OK, -ERR, +OK and one closing -ERR,
    nothing else (the NOOP came after the session ended), then the connection closes."""
    login_cost(server)
    with RawPOP3(pop3s_port(server), tls=True) as c:
        c.send(b"".join(b"USER %s\r\nPASS wrong-%d\r\n" % (DEMO.encode(), i) for i in range(3))
               + b"NOOP\r\n")
        replies = []
        try:
            while len(replies) < 10:
                replies.append(c.read_line(timeout=20))
        except Exception:
            pass
        assert replies == [b"+OK", b"-ERR [AUTH] Authentication failed",
                           b"+OK", b"-ERR [AUTH] Authentication failed",
                           b"+OK", b"-ERR [AUTH] Authentication failed; too many failures, closing"], replies
        assert c.is_closed(5)
    login_cost(server)


def test_sasl_line_limits(server):
    """RFC 4954 §4's 12,288 octets for AUTH lines (RFC 5034 has no smaller limit): the line
    is read (a response that long is too long for PLAIN: -ERR [AUTH]); longer lines get
    -ERR Line too long and end the exchange; malformed base64 is -ERR. The session goes on."""
    with RawPOP3(pop3s_port(server), tls=True) as c:
        r = c.cmd("AUTH PLAIN " + "QUFB" * 3000)
        assert r.startswith(b"-ERR [AUTH] "), r
        assert c.cmd("AUTH PLAIN") == b"+ "
        r = c.cmd("QUFB" * 3072)
        assert r.startswith(b"-ERR [AUTH] "), r
        assert c.cmd("AUTH PLAIN") == b"+ "
        assert c.cmd("QUFB" * 3072 + "Q") == b"-ERR Line too long"
        assert c.cmd("AUTH PLAIN") == b"+ "
        r = c.cmd("not base64!")
        assert r.startswith(b"-ERR [AUTH] "), r
        assert c.cmd("USER " + "x" * 5000) == b"-ERR Line too long"
        r = c.cmd("AUTH PLAIN " + plain_b64(DEMO, USERS[DEMO]), timeout=30)
        assert r.startswith(b"+OK Logged in"), r
        c.cmd("QUIT")
