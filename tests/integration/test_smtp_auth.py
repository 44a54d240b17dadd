"""AUTH failures on submission: 535 5.7.8, growing per-IP delays from the second failure,
421 4.7.0 and disconnect after limit_auth_failures (3), a success clears the penalty.
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
        # 1: unknown user, answered like a wrong password, no delay yet.
        r, t1 = timed(c, "AUTH PLAIN " + plain("nobody@example.test", "whatever"))
        assert r.code == 535 and r.lines[0].startswith("5.7.8"), r
        # 2: wrong password: about 1 s.
        r, t2 = timed(c, "AUTH PLAIN " + plain(DEMO, "wrong-password"))
        assert r.code == 535 and r.lines[0].startswith("5.7.8"), r
        # 3: wrong password through LOGIN: about 2 s, then 421 and close.
        assert c.cmd("AUTH LOGIN").code == 334
        assert c.cmd(base64.b64encode(DEMO.encode()).decode()).code == 334
        r, t3 = timed(c, base64.b64encode(b"still-wrong").decode())
        assert r.code == 535 and r.lines[0].startswith("5.7.8"), r
        last = c.read_reply()
        assert last.code == 421 and last.lines[0].startswith("4.7.0"), last
        assert c.is_closed(5)
    assert t1 < base + 0.7, (t1, base)
    assert 0.95 <= t2 < base + 2.5, (t2, base)
    assert 1.95 <= t3 < base + 4.0, (t3, base)


def test_success_clears_penalty(server):
    base = auth_cost(server)
    with RawSMTP(server.submissions_port, tls=True) as c:
        c.ehlo()
        r, t = timed(c, "AUTH PLAIN " + plain(DEMO, "wrong-again"))
        assert r.code == 535, r
        assert t < base + 0.7, "penalty not cleared by a successful login: %.2f s" % t
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
