"""AUTH SCRAM-SHA-256 (RFC 5802, RFC 7677, SMTP per RFC 4954) on submission, with a small
SCRAM client written here (hashlib.pbkdf2_hmac, hmac): success on 587 after STARTTLS and on
465 (with and without an initial response) followed by a delivery, server-final checked
against the client's own ServerSignature, wrong password and unknown user answered 535
after a server-first that looks the same, channel binding and cancel refused with 501.
Its own module (own server) because failures earn per-IP delays for later AUTHs."""

import base64
import hashlib
import hmac
import os
import time

from conftest import USERS, RawSMTP, unique

# Look-ups leave the loop (the path PostgreSQL takes): the SCRAM keys are looked up on an auth
# look-up thread, and the 334 server-first is sent from the login's resume.
SERVER_CONF = {"store_read_threads": "2"}

DEMO = "demo@example.test"
ALICE = "alice@example.test"   # password with spaces: still plain ASCII, so SCRAM works


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def saslname(name):
    return name.replace("=", "=3D").replace(",", "=2C")


class ScramClient:
    """The client side of one SCRAM-SHA-256 exchange (no channel binding)."""

    def __init__(self, user, password, gs2="n,,"):
        self.password = password
        self.gs2 = gs2
        self.nonce = b64(os.urandom(18))
        self.bare = "n=%s,r=%s" % (saslname(user), self.nonce)
        self.server_final = None

    def first(self):
        return b64(self.gs2 + self.bare)

    def final(self, challenge):
        """client-final for the base64 server-first; remembers the expected server-final."""
        server_first = base64.b64decode(challenge).decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        assert attrs["r"].startswith(self.nonce) and len(attrs["r"]) > len(self.nonce), attrs
        salt = base64.b64decode(attrs["s"])
        iterations = int(attrs["i"])
        assert iterations >= 4096, attrs         # RFC 7677 section 4
        self.salt, self.iterations = salt, iterations
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = "c=%s,r=%s" % (b64(self.gs2), attrs["r"])
        auth_message = ",".join([self.bare, server_first, without_proof]).encode()
        signature = hmac.new(stored_key, auth_message, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        self.server_final = "v=" + b64(hmac.new(server_key, auth_message, "sha256").digest())
        return b64(without_proof + ",p=" + b64(proof))


def tls587(server):
    c = RawSMTP(server.submission_port)
    c.ehlo()
    c.starttls()
    return c


def scram_auth(c, user, password, initial=True, gs2="n,,"):
    """Run AUTH SCRAM-SHA-256 on c; returns (final reply, client). A right proof must get
    334 with our own expected server-final, then 235 after the empty answer."""
    client = ScramClient(user, password, gs2)
    if initial:
        r = c.cmd("AUTH SCRAM-SHA-256 " + client.first(), timeout=20)
    else:
        r = c.cmd("AUTH SCRAM-SHA-256", timeout=20)
        assert r.code == 334 and r.lines == [""], r
        r = c.cmd(client.first(), timeout=20)
    assert r.code == 334, r
    r = c.cmd(client.final(r.lines[0]), timeout=20)
    if r.code == 334:
        assert base64.b64decode(r.lines[0]).decode() == client.server_final, r
        r = c.cmd("", timeout=20)
    return r, client


def deliver(c, server, subject):
    before = len(server.mail_list(ALICE))
    assert c.cmd("MAIL FROM:<%s>" % DEMO).code == 250
    assert c.cmd("RCPT TO:<%s>" % ALICE).code == 250
    assert c.cmd("DATA").code == 354
    c.send("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nSCRAM body.\r\n.\r\n"
           % (DEMO, ALICE, subject))
    r = c.read_reply()
    assert r.code == 250, r
    found = [m for m in server.wait_mail(ALICE, before + 1) if m["subject"] == subject]
    assert len(found) == 1, found


def test_ehlo_advertises_scram_first(server):
    with tls587(server) as c:
        r = c.ehlo()
        assert "AUTH SCRAM-SHA-256 PLAIN LOGIN" in r.lines, r


def test_587_starttls_success_then_delivery(server):
    with tls587(server) as c:
        c.ehlo()
        r, client = scram_auth(c, DEMO, USERS[DEMO])
        assert r.code == 235 and r.lines[0].startswith("2.7.0"), r
        assert client.iterations == 4096 and len(client.salt) == 16
        deliver(c, server, unique("scram587"))
        # Authenticated once per session.
        assert c.cmd("AUTH SCRAM-SHA-256").code == 503


def test_465_success_without_initial_response(server):
    with RawSMTP(server.submissions_port, tls=True) as c:
        c.ehlo()
        r, _ = scram_auth(c, ALICE, USERS[ALICE], initial=False)
        assert r.code == 235, r
        assert c.cmd("MAIL FROM:<%s>" % ALICE).code == 250


def test_465_success_then_delivery_with_gs2_y_and_authzid(server):
    with RawSMTP(server.submissions_port, tls=True) as c:
        c.ehlo()
        r, _ = scram_auth(c, DEMO, USERS[DEMO], gs2="y,a=%s," % DEMO)
        assert r.code == 235, r
        deliver(c, server, unique("scram465"))


def test_case_insensitive_user(server):
    with RawSMTP(server.submissions_port, tls=True) as c:
        c.ehlo()
        r, _ = scram_auth(c, DEMO.upper(), USERS[DEMO])
        assert r.code == 235, r


def test_channel_binding_and_cancel_refused(server):
    with RawSMTP(server.submissions_port, tls=True) as c:
        c.ehlo()
        r = c.cmd("AUTH SCRAM-SHA-256 " + b64("p=tls-server-end-point,,n=x,r=abc"))
        assert r.code == 501, r
        client = ScramClient(DEMO, USERS[DEMO])
        r = c.cmd("AUTH SCRAM-SHA-256 " + client.first())
        assert r.code == 334, r
        r = c.cmd("*")
        assert r.code == 501 and r.lines[0].startswith("5.7.0"), r
        # Neither counts as a failed login: the next exchange still works.
        r, _ = scram_auth(c, DEMO, USERS[DEMO])
        assert r.code == 235, r


def test_wrong_password_and_unknown_user(server):
    with RawSMTP(server.submissions_port, tls=True) as c:
        c.ehlo()
        r, known = scram_auth(c, DEMO, USERS[DEMO] + "x")
        assert r.code == 535 and r.lines[0].startswith("5.7.8"), r
        assert known.server_final is not None          # got as far as the proof
        # Unknown user: a normal-looking server-first (16-byte salt, 4096 iterations),
        # failure only at the end; answered after the penalty of a second failure (2 s).
        t = time.monotonic()
        r, unknown = scram_auth(c, "nobody@example.test", "whatever")
        elapsed = time.monotonic() - t
        assert r.code == 535 and r.lines[0].startswith("5.7.8"), r
        assert len(unknown.salt) == len(known.salt) == 16
        assert unknown.iterations == known.iterations == 4096
        assert elapsed >= 1.95, elapsed
        # Still not authenticated.
        assert c.cmd("MAIL FROM:<%s>" % DEMO).code == 530
    # The fake salt of an unknown user is stable, like a real one.
    with RawSMTP(server.submissions_port, tls=True) as c:
        c.ehlo()
        r, again = scram_auth(c, "nobody@example.test", "whatever")
        assert r.code == 535, r
        assert again.salt == unknown.salt


def test_success_clears_penalty(server):
    with RawSMTP(server.submissions_port, tls=True) as c:
        c.ehlo()
        r, _ = scram_auth(c, DEMO, USERS[DEMO])
        assert r.code == 235, r
    with RawSMTP(server.submissions_port, tls=True) as c:
        c.ehlo()
        t = time.monotonic()
        r, _ = scram_auth(c, DEMO, "wrong")
        assert r.code == 535, r
        # only the first failure's delay (1 s), not a later one (2 s and more)
        assert time.monotonic() - t < 1.9, "penalty not cleared by a SCRAM success"
    with RawSMTP(server.submissions_port, tls=True) as c:
        c.ehlo()
        r, _ = scram_auth(c, DEMO, USERS[DEMO])
        assert r.code == 235, r
