"""POP3 AUTH SCRAM-SHA-256 (RFC 5034 + RFC 5802 / RFC 7677), which CAPA and AUTH advertise:
the full exchange over TLS with the server-final verified, a wrong password answered with
-ERR [AUTH], and a cancel. Its own module (own server): a broken SCRAM path has taken the
whole server down before."""

import pytest

from conftest import USERS
from pop3_helpers import (DEMO, PLAINTEXT_REFUSED, RawPOP3, ScramClient, plain_b64, pop3_port,
                          pop3s_port, wait_pop3)

# Look-ups leave the loop (the path PostgreSQL takes): the SCRAM keys are looked up on an auth
# look-up thread, and the server-first message is sent from the login's resume.
SERVER_CONF = {"store_read_threads": "2"}


@pytest.fixture(scope="module", autouse=True)
def pop3_ready(server):
    wait_pop3(server)


def scram_exchange(c, user, password, initial_response=True):
    """Run AUTH SCRAM-SHA-256 on c; returns (final status line, client)."""
    sc = ScramClient(user, password)
    if initial_response:
        r = c.cmd("AUTH SCRAM-SHA-256 " + sc.client_first(), timeout=30)
    else:
        assert c.cmd("AUTH SCRAM-SHA-256") == b"+ "
        r = c.cmd(sc.client_first(), timeout=30)
    assert r.startswith(b"+ "), "no server-first: %r" % r
    r = c.cmd(sc.client_final(r[2:].decode()), timeout=30)
    if not r.startswith(b"+ "):
        return r, sc
    assert sc.check_server_final(r[2:].decode()), "bad server signature %r" % r
    return c.cmd("", timeout=30), sc


def test_scram_is_advertised(server):
    with RawPOP3(pop3s_port(server), tls=True) as c:
        assert "SASL SCRAM-SHA-256 PLAIN LOGIN" in c.capa()


def test_scram_login(server):
    with RawPOP3(pop3s_port(server), tls=True) as c:
        r, _ = scram_exchange(c, DEMO, USERS[DEMO])
        assert r.startswith(b"+OK Logged in"), r
        assert c.cmd("QUIT").startswith(b"+OK Logging out")


def test_scram_login_without_initial_response(server):
    with RawPOP3(pop3s_port(server), tls=True) as c:
        r, _ = scram_exchange(c, DEMO, USERS[DEMO], initial_response=False)
        assert r.startswith(b"+OK Logged in"), r
        c.cmd("QUIT")


def test_scram_wrong_password(server):
    with RawPOP3(pop3s_port(server), tls=True) as c:
        r, _ = scram_exchange(c, DEMO, "not-the-password")
        assert r == b"-ERR [AUTH] Authentication failed", r
        # the session goes on
        r, _ = scram_exchange(c, DEMO, USERS[DEMO])
        assert r.startswith(b"+OK Logged in"), r
        c.cmd("QUIT")


def test_scram_cancel(server):
    with RawPOP3(pop3s_port(server), tls=True) as c:
        sc = ScramClient(DEMO, USERS[DEMO])
        r = c.cmd("AUTH SCRAM-SHA-256 " + sc.client_first(), timeout=30)
        assert r.startswith(b"+ "), r
        assert c.cmd("*") == b"-ERR Authentication cancelled"
        r = c.auth_plain(DEMO)
        assert r.startswith(b"+OK Logged in"), r
        c.cmd("QUIT")


def test_scram_before_tls(server):
    """SCRAM never sends the password, so the server accepts it without TLS (PLAIN stays
    refused there)."""
    with RawPOP3(pop3_port(server)) as c:
        assert c.cmd("AUTH PLAIN " + plain_b64(DEMO, USERS[DEMO])) == PLAINTEXT_REFUSED
        r, _ = scram_exchange(c, DEMO, USERS[DEMO])
        assert r.startswith(b"+OK Logged in"), r
        c.cmd("QUIT")
