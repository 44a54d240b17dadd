"""AUTH failures on submission: 535 5.7.8, growing per-IP delays from the first failure,
one 421 4.7.0 reply and disconnect at limit_auth_failures (3), a success clears the penalty;
RFC 4954 §4 limits: SASL lines of 12,288 octets are read (longer: 500 5.5.6), malformed
base64 is 501 5.5.2, "*" is 501 5.7.0.
Kept in its own module (own server) because the penalties slow every later AUTH."""

import base64
import time

from conftest import USERS, RawSMTP

DEMO = "demo@example.test"


def plain(user, password):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()


def timed(c, line):
    t = time.monotonic()
    r = c.cmd(line, timeout=20)
    return r, time.monotonic() - t


def auth_cost(server):
    """Seconds a successful AUTH takes here (password hashing, sanitizer build, load)."""
    with RawSMTP(server.submissions_port, tls=True) as c:
        c.ehlo()
        r, t = timed(c, "AUTH PLAIN " + plain(DEMO, USERS[DEMO]))
        assert r.code == 235, r
        return t


def test_failures_delay_then_disconnect(server):
    base = auth_cost(server)     # also clears any penalty
    with RawSMTP(server.submissions_port, tls=True) as c:
        c.ehlo()
        # 1: unknown user, answered like a wrong password, already delayed (~1 s).
        r, t1 = timed(c, "AUTH PLAIN " + plain("nobody@example.test", "whatever"))
        assert r.code == 535 and r.lines[0].startswith("5.7.8"), r
        # 2: wrong password: about 2 s.
        r, t2 = timed(c, "AUTH PLAIN " + plain(DEMO, "wrong-password"))
        assert r.code == 535 and r.lines[0].startswith("5.7.8"), r
        # 3: wrong password through LOGIN: about 4 s, then one 421 reply and close.
        assert c.cmd("AUTH LOGIN").code == 334
        assert c.cmd(base64.b64encode(DEMO.encode()).decode()).code == 334
        r, t3 = timed(c, base64.b64encode(b"still-wrong").decode())
        assert r.code == 421 and r.lines[0].startswith("4.7.0"), r
        assert c.is_closed(5)
    assert 0.95 <= t1 < base + 4, (t1, base)
    assert 1.95 <= t2 < base + 5, (t2, base)
    assert 3.95 <= t3 < base + 7, (t3, base)


def test_success_clears_penalty(server):
    base = auth_cost(server)
    with RawSMTP(server.submissions_port, tls=True) as c:
        c.ehlo()
        r, t = timed(c, "AUTH PLAIN " + plain(DEMO, "wrong-again"))
        assert r.code == 535, r
        # the first failure's delay only (1 s), not the 8 s that would follow
        assert t < base + 4, "penalty not cleared by a successful login: %.2f s" % t
        # A failure does not end the session: the right password still works.
        r, t = timed(c, "AUTH PLAIN " + plain(DEMO, USERS[DEMO]))
        assert r.code == 235, r
        assert c.cmd("MAIL FROM:<%s>" % DEMO).code == 250


def test_failed_auth_does_not_authenticate(server):
    with RawSMTP(server.submission_port) as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        r = c.cmd("AUTH PLAIN " + plain(DEMO, USERS[DEMO] + "x"), timeout=20)
        assert r.code == 535, r
        r = c.cmd("MAIL FROM:<%s>" % DEMO)
        assert r.code == 530, r
    # Clear the penalty for any later test.
    with RawSMTP(server.submissions_port, tls=True) as c:
        c.ehlo()
        assert c.cmd("AUTH PLAIN " + plain(DEMO, USERS[DEMO]), timeout=30).code == 235


def test_sasl_line_limits(server):
    """RFC 4954 §4: lines of a SASL exchange up to 12,288 octets are read whole (a response
    that long is still too long for PLAIN/LOGIN: 501 5.5.2); a longer one ends the exchange
    with 500 5.5.6; malformed base64 is 501 5.5.2; "*" cancels with 501 5.7.0. The session
    goes on after each."""
    with RawSMTP(server.submissions_port, tls=True) as c:
        c.ehlo()
        # an AUTH command with a 12,000-octet initial response is read, not "line too long"
        r = c.cmd("AUTH PLAIN " + "QUFB" * 3000)
        assert r.code == 501 and r.lines[0].startswith("5.5.2"), r
        # other commands keep limit_command_line
        r = c.cmd("NOOP " + "x" * 5000)
        assert r.code == 500 and r.lines[0].startswith("5.5.2"), r
        # a continuation line of exactly 12,288 octets
        assert c.cmd("AUTH LOGIN").code == 334
        r = c.cmd("QUFB" * 3072)
        assert r.code == 501 and r.lines[0].startswith("5.5.2"), r
        # one octet more
        assert c.cmd("AUTH LOGIN").code == 334
        r = c.cmd("QUFB" * 3072 + "Q")
        assert r.code == 500 and r.lines[0].startswith("5.5.6"), r
        assert c.cmd("NOOP").code == 250
        # malformed base64
        assert c.cmd("AUTH LOGIN").code == 334
        r = c.cmd("not base64!")
        assert r.code == 501 and r.lines[0].startswith("5.5.2"), r
        r = c.cmd("AUTH PLAIN AG!!")
        assert r.code == 501 and r.lines[0].startswith("5.5.2"), r
        # cancel
        assert c.cmd("AUTH PLAIN").code == 334
        r = c.cmd("*")
        assert r.code == 501 and r.lines[0].startswith("5.7.0"), r
        # still usable
        r = c.cmd("AUTH PLAIN " + plain(DEMO, USERS[DEMO]), timeout=30)
        assert r.code == 235, r
